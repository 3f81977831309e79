//! The results file (schema 1 in SPEC.md): the hand-off between stages, CI
//! jobs and shards, and what `--output json` prints; and what `plan` prints.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub(crate) const SCHEMA: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    Built,
    Cached,
    Failed,
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ServiceResult {
    pub(crate) status: Status,
    pub(crate) repository: String,
    pub(crate) digest: Option<String>,
    pub(crate) tags: Vec<String>,
    pub(crate) input_digest: String,
    pub(crate) duration_ms: u64,
    pub(crate) error: Option<String>,
    /// Why the service was built or taken from the cache (`plan`'s reason).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<String>,
    /// The engine that built it (`unix:///var/run/docker.sock`); none when
    /// it was not built in this run.
    #[serde(default)]
    pub(crate) builder: Option<String>,
    /// The local image ID, when this run built the image.
    #[serde(skip)]
    pub(crate) image_id: Option<String>,
    /// The last lines of the build log, for a failure message.
    #[serde(skip)]
    pub(crate) log_tail: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct GitSummary {
    pub(crate) sha: Option<String>,
    pub(crate) dirty: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ManifestResult {
    pub(crate) path: String,
    pub(crate) changed: bool,
    /// The services pinned in this file.
    #[serde(default)]
    pub(crate) pinned: Vec<String>,
    /// The services this file does not deploy.
    #[serde(default)]
    pub(crate) not_deployed: Vec<String>,
    #[serde(default)]
    pub(crate) warnings: Vec<String>,
}

/// What `pipeline plan` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct PlanReport {
    /// The registry looked up; none with `--offline`.
    pub(crate) registry: Option<String>,
    /// Whether the registry was asked (false: `--offline` or `--force`).
    pub(crate) checked: bool,
    /// In build order.
    pub(crate) services: Vec<PlannedService>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct PlannedService {
    pub(crate) order: usize,
    pub(crate) name: String,
    /// `build` when true, `cached` otherwise.
    #[serde(serialize_with = "state")]
    #[serde(rename = "state")]
    pub(crate) build: bool,
    pub(crate) reason: String,
    /// Why the run will fail this service before building it, if it will.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) problem: Option<String>,
    /// The typed decision behind `state`, `reason` and `problem`.
    pub(crate) decision: crate::plan::resolve::Action,
    pub(crate) input_digest: String,
    pub(crate) tags: Vec<String>,
    pub(crate) requires: Vec<String>,
    /// Files the build sees, and the size of the tar stream sent to the engine.
    pub(crate) context_files: usize,
    pub(crate) context_bytes: u64,
}

fn state<S: serde::Serializer>(build: &bool, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(if *build { "build" } else { "cached" })
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Results {
    pub(crate) schema: u32,
    pub(crate) git: GitSummary,
    pub(crate) registry: Option<String>,
    pub(crate) services: BTreeMap<String, ServiceResult>,
    pub(crate) manifests: Vec<ManifestResult>,
    /// Written by `run --shard K/N`, for `finish`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) shard: Option<ShardInfo>,
}

/// What `finish` needs to know of a shard's results file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ShardInfo {
    /// K of K/N.
    pub(crate) index: usize,
    /// N of K/N.
    pub(crate) of: usize,
    /// Every service of the selection the shards split, in all shards.
    pub(crate) selected: Vec<String>,
    /// `sha256:` of the config file the shard ran with.
    pub(crate) config: String,
}

/// Whether `digest` is an OCI digest this tool writes: `sha256:` and 64
/// lowercase hex digits.
pub(crate) fn is_digest(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// Whether `repository` is a full repository reference: a registry host
/// (with an optional port) and `/`-separated path components of the OCI
/// grammar, nothing else (no whitespace, no tag, no digest).
pub(crate) fn is_repository(repository: &str) -> bool {
    let Some((host, path)) = repository.split_once('/') else {
        return false;
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    let component = |c: &str| {
        let b = c.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_lowercase() | b[0].is_ascii_digit()
            && (b[b.len() - 1].is_ascii_lowercase() || b[b.len() - 1].is_ascii_digit())
            && b.iter().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-')
            })
    };
    host_ok && path.split('/').all(component)
}

impl Results {
    /// Checks a results file read back from disk before anything uses it:
    /// the schema, and per service its repository, digest, tags and input
    /// digest. The error names the field.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.schema != SCHEMA {
            return Err(format!(
                "schema: {} is not a results schema this pipeline reads (it reads {SCHEMA}); write it again with this version",
                self.schema
            ));
        }
        for (name, r) in &self.services {
            let field = |f: &str| format!("services.{name}.{f}");
            // `run --no-push` and `build` results may name a local
            // repository (no host); they hold no digest to pin.
            let local = r.digest.is_none()
                && !r.repository.is_empty()
                && !r
                    .repository
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control());
            if !local && !is_repository(&r.repository) {
                return Err(format!(
                    "{}: `{}` is not a repository (host/path)",
                    field("repository"),
                    r.repository.escape_debug()
                ));
            }
            if let Some(digest) = &r.digest
                && !is_digest(digest)
            {
                return Err(format!(
                    "{}: `{}` is not a digest (sha256: and 64 hex digits)",
                    field("digest"),
                    digest.escape_debug()
                ));
            }
            if let Some(tag) = r.tags.iter().find(|t| !crate::plan::tags::is_valid(t)) {
                return Err(format!(
                    "{}: `{}` is not a valid tag",
                    field("tags"),
                    tag.escape_debug()
                ));
            }
            if !r.input_digest.is_empty() && !is_digest(&r.input_digest) {
                return Err(format!(
                    "{}: `{}` is not a digest",
                    field("input_digest"),
                    r.input_digest.escape_debug()
                ));
            }
        }
        Ok(())
    }

    pub(crate) fn failed(&self) -> impl Iterator<Item = (&String, &ServiceResult)> {
        self.services
            .iter()
            .filter(|(_, r)| r.status == Status::Failed)
    }

    pub(crate) fn all_succeeded(&self) -> bool {
        self.services
            .values()
            .all(|r| matches!(r.status, Status::Built | Status::Cached))
    }

    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("results serialize") + "\n"
    }

    /// Writes the file atomically: a temp file in the same folder, renamed.
    pub(crate) fn write(&self, path: &Path) -> std::io::Result<()> {
        write_atomic(path, self.to_json().as_bytes())
    }
}

/// Replaces `path` with `bytes` atomically (temp file in the same folder,
/// then rename), creating the folder when needed.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod validation {
    use super::*;

    fn results(edit: impl FnOnce(&mut ServiceResult)) -> Results {
        let mut r = ServiceResult {
            status: Status::Built,
            repository: "127.0.0.1:5000/shop/orders".into(),
            digest: Some(format!("sha256:{}", "a".repeat(64))),
            tags: vec!["in-1".into(), "latest".into()],
            input_digest: format!("sha256:{}", "b".repeat(64)),
            duration_ms: 1,
            error: None,
            reason: None,
            image_id: None,
            log_tail: vec![],
            builder: None,
        };
        edit(&mut r);
        Results {
            schema: SCHEMA,
            git: GitSummary::default(),
            registry: None,
            services: BTreeMap::from([("orders".to_string(), r)]),
            manifests: vec![],
            shard: None,
        }
    }

    #[test]
    fn every_field_a_patch_or_a_tag_uses_is_checked_and_named() {
        assert_eq!(results(|_| {}).validate(), Ok(()));
        let mut future = results(|_| {});
        future.schema = 99;
        assert!(future.validate().unwrap_err().starts_with("schema: 99"));
        for (edit, field) in [
            (
                Box::new(|r: &mut ServiceResult| r.digest = Some("sha256:zz".into()))
                    as Box<dyn FnOnce(&mut ServiceResult)>,
                "services.orders.digest: `sha256:zz`",
            ),
            (
                Box::new(|r: &mut ServiceResult| r.repository = "127.0.0.1:5000/shop\nevil".into()),
                "services.orders.repository",
            ),
            (
                Box::new(|r: &mut ServiceResult| r.tags.push("a b".into())),
                "services.orders.tags: `a b`",
            ),
            (
                Box::new(|r: &mut ServiceResult| r.input_digest = "md5:1".into()),
                "services.orders.input_digest",
            ),
        ] {
            let e = results(edit).validate().unwrap_err();
            assert!(e.starts_with(field), "{e}");
        }
        // A local build's repository has no host and no digest.
        let local = results(|r| {
            r.repository = "orders".into();
            r.digest = None;
        });
        assert_eq!(local.validate(), Ok(()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_matches_the_spec() {
        let mut services = BTreeMap::new();
        services.insert(
            "orders".to_string(),
            ServiceResult {
                status: Status::Built,
                repository: "h/shop/orders".into(),
                digest: Some("sha256:ab".into()),
                tags: vec!["in-1".into(), "latest".into()],
                input_digest: "sha256:cd".into(),
                duration_ms: 5,
                error: None,
                reason: Some("files changed: a.txt".into()),
                image_id: Some("sha256:ef".into()),
                log_tail: vec!["x".into()],
                builder: Some("unix:///var/run/docker.sock".into()),
            },
        );
        let r = Results {
            schema: SCHEMA,
            git: GitSummary {
                sha: Some("1a".into()),
                dirty: false,
            },
            registry: Some("h".into()),
            services,
            manifests: vec![],
            shard: None,
        };
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["schema"], 1);
        assert_eq!(v["services"]["orders"]["status"], "built");
        assert_eq!(v["services"]["orders"]["error"], serde_json::Value::Null);
        assert!(v["services"]["orders"].get("image_id").is_none());
        let keys: Vec<&String> = v["services"]["orders"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        // The SPEC's eight keys (`builder` included) plus `reason`, which
        // explains the status.
        assert_eq!(keys.len(), 9, "{keys:?}");
        assert_eq!(v["services"]["orders"]["reason"], "files changed: a.txt");
        assert_eq!(
            v["services"]["orders"]["builder"],
            "unix:///var/run/docker.sock"
        );
        let back: Results = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(back.services["orders"].digest, r.services["orders"].digest);
    }
}
