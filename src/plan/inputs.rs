//! Everything that decides an image, in one struct: the input digest and the
//! record of what the build saw are both made from a [`BuildInputs`], so a
//! new build setting is added in one place and cannot end up in one of them
//! but not the other.
//!
//! The input digest is a sha256 over the context as the build sees it (see
//! `context.rs`), the Dockerfile, target, build args, platform, the builder
//! setting, the ids of the build secrets (never their values) and the input
//! digests of required services, behind a format version so that a change
//! of this recipe changes every digest. Never times, owners or anything else
//! that two clones of one commit may disagree on. The network of `RUN`
//! steps is not an input: it decides how a step reaches the outside, not
//! what the image holds.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::discover::Service;
use crate::plan::context::{Kind, Listing};
use crate::plan::index::FileDigest;
use crate::plan::record::{InputRecord, Key};

/// Bumped whenever the recipe below changes, so old content tags are not reused.
const DIGEST_FORMAT: &[u8] = b"pipeline-input-v3\n";

/// What one build of one service depends on.
pub(crate) struct BuildInputs<'a> {
    pub(crate) service: &'a Service,
    /// What the build can see.
    pub(crate) context: &'a Listing,
    /// The content digest of every file of `context`, and of the Dockerfile.
    pub(crate) digests: &'a HashMap<PathBuf, FileDigest>,
    /// The sha256 of the Dockerfile, hex.
    pub(crate) dockerfile_sha256: String,
    /// Each required service's input digest.
    pub(crate) requires: BTreeMap<String, String>,
}

impl<'a> BuildInputs<'a> {
    /// The inputs of `service`; `required` holds the input digest of every
    /// service it requires.
    pub(crate) fn new(
        root: &Path,
        service: &'a Service,
        context: &'a Listing,
        digests: &'a HashMap<PathBuf, FileDigest>,
        required: &BTreeMap<String, String>,
    ) -> BuildInputs<'a> {
        BuildInputs {
            service,
            context,
            digests,
            dockerfile_sha256: hex::encode(digests[&root.join(&service.dockerfile)]),
            requires: service
                .requires
                .iter()
                .map(|r| (r.clone(), required[r.as_str()].clone()))
                .collect(),
        }
    }

    /// `sha256:<hex>` over every input.
    pub(crate) fn digest(&self) -> String {
        let service = self.service;
        let mut h = Sha256::new();
        h.update(DIGEST_FORMAT);
        field(&mut h, "dockerfile", &self.dockerfile_sha256);
        field(&mut h, "dockerfile-path", &self.context.dockerfile);
        field(&mut h, "target", service.target.as_deref().unwrap_or(""));
        field(
            &mut h,
            "platform",
            service.platform.as_deref().unwrap_or(""),
        );
        for (k, v) in &service.build_args {
            field(&mut h, "arg", k);
            field(&mut h, "value", v);
        }
        // The setting as written: `auto` is the same input on every engine.
        field(&mut h, "builder", service.builder.name());
        for id in service.secrets.keys() {
            field(&mut h, "secret", id);
        }
        for (name, digest) in &self.requires {
            field(&mut h, "requires", name);
            field(&mut h, "digest", digest);
        }
        h.update(b"context\0");
        self.context.hash_into(&mut h, self.digests);
        format!("sha256:{}", hex::encode(h.finalize()))
    }

    /// What the build sees, for the next plan's reasons. Build-arg values
    /// are kept only as hashes keyed by `key`.
    pub(crate) fn record(&self, key: &Key) -> InputRecord {
        let service = self.service;
        let under = |path: &str| match service.context.as_str() {
            "." => path.to_string(),
            context => format!("{context}/{path}"),
        };
        let files = self
            .context
            .entries
            .iter()
            .filter(|e| e.path != self.context.dockerfile)
            .map(|e| {
                let value = match &e.kind {
                    Kind::Dir => "d".to_string(),
                    Kind::Symlink { target } => format!("l:{target}"),
                    Kind::File { executable, .. } => format!(
                        "{}:{}",
                        if *executable { "x" } else { "f" },
                        hex::encode(self.digests[&e.source])
                    ),
                };
                (under(&e.path), value)
            })
            .collect();
        InputRecord {
            service: service.name.clone(),
            dockerfile: service.dockerfile.clone(),
            dockerfile_sha256: self.dockerfile_sha256.clone(),
            target: service.target.clone(),
            platform: service.platform.clone(),
            builder: Some(service.builder.name().to_string()),
            secrets: service.secrets.keys().cloned().collect(),
            build_args: service
                .build_args
                .iter()
                .map(|(k, v)| (k.clone(), InputRecord::hash_value(key, v)))
                .collect(),
            requires: self.requires.clone(),
            files,
        }
    }
}

fn field(h: &mut Sha256, name: &str, value: &str) {
    h.update(name.as_bytes());
    h.update(b"\0");
    h.update((value.len() as u64).to_le_bytes());
    h.update(value.as_bytes());
}
