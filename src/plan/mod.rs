//! The plan: which services to run, in which order, with which input digest
//! and tags. [`plan`] reads only the file system and git; [`resolve`] then
//! decides each step against the image store, once, as typed actions that
//! `pipeline plan` prints and `pipeline run` executes.
//!
//! - `context`: what a build can see, its hash and its tar stream;
//! - `index`: file digests, remembered across runs;
//! - `inputs`: everything that decides an image, the one source of the input
//!   digest and of the record;
//! - `record`: what each build saw, for the next plan's reasons;
//! - `tags`, `git`: tag templates and the commit they are rendered from.

pub(crate) mod context;
pub(crate) mod git;
pub(crate) mod index;
pub(crate) mod inputs;
pub(crate) mod record;
pub(crate) mod resolve;
pub(crate) mod shard;
pub(crate) mod sources;
pub(crate) mod tags;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use dockerfile::Reach;

use crate::config::Config;
use crate::discover::Service;
use crate::plan::context::{ContextError, Listing};
use crate::plan::git::GitInfo;
use crate::plan::index::{FileIndex, HashError};
use crate::plan::inputs::BuildInputs;
use crate::plan::record::{Change, InputRecord, Key};
use crate::plan::tags::TagValues;
use crate::report::{Results, Status};

/// The tool's state folder at the repo root; never part of a context.
pub(crate) const STATE_DIR: &str = ".pipeline";

#[derive(Debug, thiserror::Error)]
pub(crate) enum PlanError {
    #[error("unknown service `{name}`; known services: {known}")]
    UnknownService { name: String, known: String },
    /// A tag template renders to no valid tag for a service; the error
    /// points at the template's line.
    #[error(transparent)]
    Tag(crate::config::ConfigError),
    #[error("service `{service}`: reading the build context: {source}")]
    Context {
        service: String,
        #[source]
        source: ContextError,
    },
    #[error("hashing {0}")]
    Hash(#[source] HashError),
}

/// One service's place in the plan.
#[derive(Debug, Clone)]
pub(crate) struct Step {
    pub(crate) service: Service,
    /// `sha256:<hex>`.
    pub(crate) input_digest: String,
    /// `in-<20 hex>`, always pushed.
    pub(crate) content_tag: String,
    /// Every tag, the content tag first.
    pub(crate) tags: Vec<String>,
    pub(crate) listing: Listing,
    /// What the build sees, for the next plan's reasons.
    pub(crate) record: InputRecord,
    /// This service in the last results file, when it was there.
    pub(crate) last: Option<Last>,
    /// The Dockerfile as read, for the features and secrets it uses; `None`
    /// when it does not parse (the builder then says why).
    pub(crate) dockerfile: Option<std::sync::Arc<dockerfile::Dockerfile>>,
    /// `COPY`/`ADD` sources the build will not find in its context.
    pub(crate) missing_sources: Vec<sources::MissingSource>,
}

/// A service as the last results file saw it.
#[derive(Debug, Clone)]
pub(crate) struct Last {
    pub(crate) input_digest: String,
    pub(crate) succeeded: bool,
    /// What changed since, when the last inputs were recorded.
    pub(crate) changes: Option<Vec<Change>>,
}

/// The services to run, requirements before the services that need them.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) steps: Vec<Step>,
    pub(crate) git: GitInfo,
    /// How many files were hashed (or found in the index), and how long it took.
    pub(crate) hashed: (usize, u64),
}

/// What the plan compares against: the last results and the state folder
/// holding their input records.
pub(crate) struct Previous<'a> {
    pub(crate) results: Option<&'a Results>,
    pub(crate) state_dir: &'a Path,
    /// The key build-arg values are hashed with in records.
    pub(crate) key: &'a Key,
}

/// Plans `selected` (all services when empty) and everything they require.
/// Every file is hashed once, in parallel, through `index`.
pub(crate) fn plan(
    config: &Config,
    services: &[Service],
    selected: &[String],
    git: GitInfo,
    index: &FileIndex,
    previous: Previous<'_>,
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

    let state_dir = config.root.join(STATE_DIR);
    let mut listings = Vec::new();
    for name in &order {
        let service = by_name[name.as_str()];
        let context_error = |source| PlanError::Context {
            service: name.clone(),
            source,
        };
        let dockerfile = config.root.join(&service.dockerfile);
        let text = std::fs::read_to_string(&dockerfile).map_err(|source| {
            context_error(ContextError::Io {
                path: dockerfile.clone(),
                source,
            })
        })?;
        let reach = match dockerfile::reach(&text, &service.build_args, service.target.as_deref()) {
            Reach::Sources(sources) => Some(sources),
            Reach::All { .. } => None,
        };
        let listing = Listing::read(
            &config.root.join(&service.context),
            &dockerfile,
            &state_dir,
            reach,
        )
        .map_err(context_error)?;
        let parsed = dockerfile::Dockerfile::parse(&text)
            .ok()
            .map(std::sync::Arc::new);
        let missing = parsed
            .as_ref()
            .map(|d| {
                sources::missing(
                    &config.root,
                    d,
                    &service.dockerfile,
                    &service.context,
                    &listing,
                    &service.build_args,
                    service.target.as_deref(),
                )
            })
            .unwrap_or_default();
        listings.push((listing, parsed, missing));
    }
    let mut files: Vec<PathBuf> = listings
        .iter()
        .flat_map(|(l, _, _)| l.files().map(Path::to_path_buf))
        .chain(
            order
                .iter()
                .map(|n| config.root.join(&by_name[n.as_str()].dockerfile)),
        )
        .collect();
    files.sort();
    files.dedup();
    let hashing = std::time::Instant::now();
    let digests = index.digests(&files).map_err(PlanError::Hash)?;
    let hashed = (files.len(), hashing.elapsed().as_millis() as u64);

    let key = previous.key;
    let date = chrono::Utc::now().format("%Y%m%d").to_string();
    let mut input_digests: BTreeMap<String, String> = BTreeMap::new();
    let mut steps = Vec::new();
    for (name, (listing, parsed, missing_sources)) in order.into_iter().zip(listings) {
        let service = by_name[name.as_str()].clone();
        let inputs = BuildInputs::new(&config.root, &service, &listing, &digests, &input_digests);
        let record = inputs.record(key);
        let input_digest = inputs.digest();
        let content_tag = tags::content_tag(&input_digest);
        let state = format!("{STATE_DIR}/");
        let dirty = git.changed.iter().any(|path| {
            !path.starts_with(&state)
                && (path == &service.dockerfile
                    || in_context(&service.context, path).is_some_and(|rel| listing.sees(rel)))
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
            let tag = tags::render(&template.value, &values).map_err(|message| {
                PlanError::Tag(config.error(template.loc, format!("service `{name}`: {message}")))
            })?;
            if !all_tags.contains(&tag) {
                all_tags.push(tag);
            }
        }
        let last = previous
            .results
            .and_then(|r| r.services.get(&name))
            .map(|last| Last {
                input_digest: last.input_digest.clone(),
                // Pushed: a `--no-push` build is not in any registry.
                succeeded: matches!(last.status, Status::Built | Status::Cached)
                    && last.digest.is_some(),
                changes: record::load(previous.state_dir, &last.input_digest)
                    .map(|before| record.changes_since(&before)),
            });
        input_digests.insert(name.clone(), input_digest.clone());
        steps.push(Step {
            service,
            input_digest,
            content_tag,
            tags: all_tags,
            listing,
            record,
            last,
            dockerfile: parsed,
            missing_sources,
        });
    }
    Ok(Plan { steps, git, hashed })
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    const CONFIG: &str = "version: 1\nregistry:\n  host: 127.0.0.1:5000\nservices:\n  app:\n    requires: [base]\n    build_args: { A: \"1\" }\n";

    fn fixture(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pipeline-plan-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        for (path, text) in [
            ("pipeline.yaml", CONFIG),
            ("services/base/Dockerfile", "FROM scratch\nCOPY . /\n"),
            ("services/base/lib.txt", "lib"),
            (
                "services/app/Dockerfile",
                "ARG BASE_IMAGE\nFROM ${BASE_IMAGE} AS build\nFROM scratch AS runtime\nCOPY . /app\n",
            ),
            ("services/app/src/main.txt", "main"),
            ("services/app/run.sh", "#!/bin/sh\n"),
            ("services/app/.dockerignore", "notes.md\n"),
            ("services/app/notes.md", "notes"),
            ("README.md", "outside every context"),
        ] {
            let p = dir.join(path);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
        }
        std::os::unix::fs::symlink("src/main.txt", dir.join("services/app/link")).unwrap();
        dir
    }

    /// The plan of the fixture in `dir`, with `git` as its checkout.
    fn plan_in(dir: &Path, git: GitInfo) -> Plan {
        let config = Config::load(&dir.join("pipeline.yaml")).unwrap();
        let services = crate::discover::discover(&config).unwrap();
        plan(
            &config,
            &services,
            &[],
            git,
            &FileIndex::in_memory(),
            Previous {
                results: None,
                state_dir: &dir.join(STATE_DIR),
                key: &Key::fixed([7; 32]),
            },
        )
        .unwrap()
    }

    fn digests(dir: &Path) -> BTreeMap<String, String> {
        plan_in(dir, GitInfo::default())
            .steps
            .into_iter()
            .map(|s| (s.service.name, s.input_digest))
            .collect()
    }

    fn edit(dir: &Path, path: &str, text: &str) {
        fs::write(dir.join(path), text).unwrap();
    }

    fn git(dir: &Path, args: &[&str]) {
        let out = std::process::Command::new("git")
            .args([
                "-c",
                "user.email=t@t",
                "-c",
                "user.name=t",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
    }

    /// Each service's tags, planned with `tags: ["{git_short}"]` in a git
    /// checkout of the fixture.
    fn git_tags(dir: &Path) -> BTreeMap<String, Vec<String>> {
        plan_in(dir, GitInfo::read(dir))
            .steps
            .into_iter()
            .map(|s| (s.service.name, s.tags))
            .collect()
    }

    #[test]
    fn git_short_is_dirty_only_for_a_service_whose_inputs_changed() {
        let dir = fixture("dirty");
        edit(
            &dir,
            "pipeline.yaml",
            &format!("{CONFIG}tags: [\"{{git_short}}\"]\n"),
        );
        git(&dir, &["init", "-q"]);
        git(&dir, &["add", "-A"]);
        git(&dir, &["commit", "-qm", "fixture"]);
        let info = GitInfo::read(&dir);
        let short = info.short().unwrap();
        let clean = git_tags(&dir);
        assert_eq!(clean["app"][1], short);
        assert_eq!(clean["base"][1], short);

        // Outside every context, an ignored file: still clean.
        edit(&dir, "README.md", "changed");
        edit(&dir, "services/app/notes.md", "changed");
        let tags = git_tags(&dir);
        assert_eq!(
            tags["app"][1], short,
            "ignored and outside files do not count"
        );

        // A file app's build sees; base does not see it.
        edit(&dir, "services/app/src/main.txt", "changed");
        let tags = git_tags(&dir);
        assert_eq!(tags["app"][1], format!("{short}-dirty"));
        assert_eq!(tags["base"][1], short);

        // An untracked file the build would copy counts too.
        git(&dir, &["checkout", "-q", "--", "services/app/src/main.txt"]);
        edit(&dir, "services/base/new.txt", "new");
        let tags = git_tags(&dir);
        assert_eq!(tags["base"][1], format!("{short}-dirty"));
        assert_eq!(tags["app"][1], short);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn equal_inputs_give_equal_digests_across_clones() {
        let a = digests(&fixture("clone-a"));
        let b = digests(&fixture("clone-b"));
        assert_eq!(a, b);
        assert_ne!(a["app"], a["base"]);
    }

    type Change = (&'static str, fn(&Path), bool, bool);

    #[test]
    fn each_input_changes_the_digest_and_nothing_else_does() {
        // (what, change, app's digest changes, base's digest changes)
        let rows: &[Change] = &[
            (
                "file content",
                |d| edit(d, "services/app/src/main.txt", "MAIN"),
                true,
                false,
            ),
            (
                "new file",
                |d| edit(d, "services/app/src/new.txt", ""),
                true,
                false,
            ),
            (
                "removed file",
                |d| fs::remove_file(d.join("services/app/run.sh")).unwrap(),
                true,
                false,
            ),
            (
                "empty folder",
                |d| fs::create_dir(d.join("services/app/empty")).unwrap(),
                true,
                false,
            ),
            (
                "executable bit",
                |d| {
                    let p = d.join("services/app/run.sh");
                    fs::set_permissions(p, fs::Permissions::from_mode(0o755)).unwrap()
                },
                true,
                false,
            ),
            (
                "symlink target",
                |d| {
                    fs::remove_file(d.join("services/app/link")).unwrap();
                    std::os::unix::fs::symlink("run.sh", d.join("services/app/link")).unwrap()
                },
                true,
                false,
            ),
            (
                "Dockerfile",
                |d| edit(d, "services/app/Dockerfile", "FROM scratch\n"),
                true,
                false,
            ),
            (
                "target",
                |d| edit(d, "pipeline.yaml", &format!("{CONFIG}    target: build\n")),
                true,
                false,
            ),
            (
                "build arg value",
                |d| edit(d, "pipeline.yaml", &CONFIG.replace("\"1\"", "\"2\"")),
                true,
                false,
            ),
            (
                "build arg name",
                |d| edit(d, "pipeline.yaml", &CONFIG.replace("{ A:", "{ B:")),
                true,
                false,
            ),
            (
                "platform",
                |d| {
                    edit(
                        d,
                        "pipeline.yaml",
                        &format!("{CONFIG}    platform: linux/arm64\n"),
                    )
                },
                true,
                false,
            ),
            (
                "builder",
                |d| {
                    edit(
                        d,
                        "pipeline.yaml",
                        &format!("{CONFIG}    builder: classic\n"),
                    )
                },
                true,
                false,
            ),
            (
                "secret id",
                |d| {
                    edit(
                        d,
                        "pipeline.yaml",
                        &format!("{CONFIG}    secrets: {{ npmrc: {{ env: NPM_TOKEN }} }}\n"),
                    )
                },
                true,
                false,
            ),
            (
                // How RUN steps reach the network is not what they build.
                "network",
                |d| edit(d, "pipeline.yaml", &format!("{CONFIG}    network: host\n")),
                false,
                false,
            ),
            (
                "required service",
                |d| edit(d, "services/base/lib.txt", "LIB"),
                true,
                true,
            ),
            (
                ".dockerignore reveals a file",
                |d| edit(d, "services/app/.dockerignore", ""),
                true,
                false,
            ),
            (
                "ignored file",
                |d| edit(d, "services/app/notes.md", "other"),
                false,
                false,
            ),
            (
                "mtime only",
                |d| {
                    fs::File::options()
                        .write(true)
                        .open(d.join("services/app/src/main.txt"))
                        .unwrap()
                        .set_modified(std::time::SystemTime::UNIX_EPOCH)
                        .unwrap()
                },
                false,
                false,
            ),
            (
                "file outside the context",
                |d| edit(d, "README.md", "changed"),
                false,
                false,
            ),
        ];
        for (i, (what, change, app, base)) in rows.iter().enumerate() {
            let dir = fixture(&format!("row{i}"));
            let before = digests(&dir);
            change(&dir);
            let after = digests(&dir);
            assert_eq!(before["app"] != after["app"], *app, "{what}: app");
            assert_eq!(before["base"] != after["base"], *base, "{what}: base");
            fs::remove_dir_all(&dir).unwrap();
        }
    }
}
