//! The plan: which services to run, in which order, with which input digest
//! and tags. It is data; nothing here talks to the engine or a registry.
//!
//! The input digest is a sha256 over everything that decides the image: the
//! context as the build sees it (see `context.rs`), the Dockerfile, target,
//! build args, platform and the input digests of required services, behind a
//! format version so that a change of this recipe changes every digest.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::context::{ContextError, Listing};
use crate::discover::Service;
use crate::git::GitInfo;
use crate::tags::{self, TagValues};

/// Bumped whenever the recipe below changes, so old content tags are not reused.
const DIGEST_FORMAT: &[u8] = b"pipeline-input-v1\n";

/// The tool's state folder at the repo root; never part of a context.
pub const STATE_DIR: &str = ".pipeline";

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("unknown service `{name}`; known services: {known}")]
    UnknownService { name: String, known: String },
    #[error("service `{service}`: {message}")]
    Tag { service: String, message: String },
    #[error("service `{service}`: reading the build context: {source}")]
    Context {
        service: String,
        #[source]
        source: ContextError,
    },
}

/// One service's place in the plan.
#[derive(Debug, Clone)]
pub struct Step {
    pub service: Service,
    /// `sha256:<hex>`.
    pub input_digest: String,
    /// `in-<20 hex>`, always pushed.
    pub content_tag: String,
    /// Every tag, the content tag first.
    pub tags: Vec<String>,
    pub listing: Listing,
}

/// The services to run, requirements before the services that need them.
#[derive(Debug, Clone)]
pub struct Plan {
    pub steps: Vec<Step>,
    pub git: GitInfo,
}

impl Plan {
    pub fn step(&self, name: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.service.name == name)
    }
}

/// Plans `selected` (all services when empty) and everything they require.
pub fn plan(
    config: &Config,
    services: &[Service],
    selected: &[String],
    git: GitInfo,
) -> Result<Plan, PlanError> {
    let by_name: BTreeMap<&str, &Service> = services.iter().map(|s| (s.name.as_str(), s)).collect();
    for name in selected {
        if !by_name.contains_key(name.as_str()) {
            return Err(PlanError::UnknownService {
                name: name.clone(),
                known: by_name.keys().copied().collect::<Vec<_>>().join(", "),
            });
        }
    }
    let wanted = closure(&by_name, selected);
    let order = topological(&by_name, &wanted);

    let date = chrono::Utc::now().format("%Y%m%d").to_string();
    let state_dir = config.root.join(STATE_DIR);
    let mut digests: BTreeMap<String, String> = BTreeMap::new();
    let mut steps = Vec::new();
    for name in order {
        let service = by_name[name.as_str()].clone();
        let context_error = |source| PlanError::Context {
            service: name.clone(),
            source,
        };
        let listing = Listing::read(
            &config.root.join(&service.context),
            &config.root.join(&service.dockerfile),
            &state_dir,
        )
        .map_err(context_error)?;
        let input_digest =
            input_digest(&config.root, &service, &listing, &digests).map_err(context_error)?;
        let content_tag = tags::content_tag(&input_digest);
        let dirty = git.changed.iter().any(|path| {
            path == &service.dockerfile
                || in_context(&service.context, path)
                    .is_some_and(|rel| !listing.ignore.excludes(rel))
        });
        let values = TagValues {
            git_sha: git.sha.clone(),
            git_short: git
                .short()
                .map(|s| if dirty { format!("{s}-dirty") } else { s }),
            content: content_tag.clone(),
            date: date.clone(),
            branch: git.branch.as_deref().map(tags::sanitize),
        };
        let mut all_tags = vec![content_tag.clone()];
        for template in &config.tags {
            let tag = tags::render(&template.value, &values).map_err(|message| PlanError::Tag {
                service: name.clone(),
                message,
            })?;
            if !all_tags.contains(&tag) {
                all_tags.push(tag);
            }
        }
        digests.insert(name.clone(), input_digest.clone());
        steps.push(Step {
            service,
            input_digest,
            content_tag,
            tags: all_tags,
            listing,
        });
    }
    Ok(Plan { steps, git })
}

/// `path` relative to the context folder `context`, when it lies inside it.
fn in_context<'p>(context: &str, path: &'p str) -> Option<&'p str> {
    if context == "." {
        return Some(path);
    }
    path.strip_prefix(context)?.strip_prefix('/')
}

/// `selected` and everything it requires, transitively; all when empty.
fn closure(by_name: &BTreeMap<&str, &Service>, selected: &[String]) -> BTreeSet<String> {
    if selected.is_empty() {
        return by_name.keys().map(|s| s.to_string()).collect();
    }
    let mut wanted = BTreeSet::new();
    let mut todo: Vec<String> = selected.to_vec();
    while let Some(name) = todo.pop() {
        if wanted.insert(name.clone()) {
            todo.extend(by_name[name.as_str()].requires.iter().cloned());
        }
    }
    wanted
}

/// Kahn's algorithm; ties broken by name so the order is stable. Discovery
/// has already refused cycles.
fn topological(by_name: &BTreeMap<&str, &Service>, wanted: &BTreeSet<String>) -> Vec<String> {
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut order = Vec::new();
    while order.len() < wanted.len() {
        let next = wanted
            .iter()
            .find(|n| {
                !done.contains(*n)
                    && by_name[n.as_str()]
                        .requires
                        .iter()
                        .all(|r| done.contains(r))
            })
            .expect("requires has no cycle (checked by discovery)")
            .clone();
        done.insert(next.clone());
        order.push(next);
    }
    order
}

fn input_digest(
    root: &Path,
    service: &Service,
    listing: &Listing,
    required: &BTreeMap<String, String>,
) -> Result<String, ContextError> {
    let mut h = Sha256::new();
    h.update(DIGEST_FORMAT);
    let dockerfile_path = root.join(&service.dockerfile);
    let dockerfile = std::fs::read(&dockerfile_path).map_err(|source| ContextError::Io {
        path: dockerfile_path,
        source,
    })?;
    field(
        &mut h,
        "dockerfile",
        &hex::encode(Sha256::digest(&dockerfile)),
    );
    field(&mut h, "dockerfile-path", &listing.dockerfile);
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
    let mut requires: Vec<&String> = service.requires.iter().collect();
    requires.sort();
    for r in requires {
        field(&mut h, "requires", r);
        field(&mut h, "digest", &required[r.as_str()]);
    }
    h.update(b"context\0");
    listing.hash_into(&mut h)?;
    Ok(format!("sha256:{}", hex::encode(h.finalize())))
}

fn field(h: &mut Sha256, name: &str, value: &str) {
    h.update(name.as_bytes());
    h.update(b"\0");
    h.update((value.len() as u64).to_le_bytes());
    h.update(value.as_bytes());
}
