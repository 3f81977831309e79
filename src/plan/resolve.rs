//! The plan decided: one typed [`Action`] per step, made once from the plan
//! and what the image store answers. `pipeline plan` prints these actions
//! and `pipeline run` executes them, so the two cannot disagree.
//!
//! Deciding is split from looking up: [`look_up`] asks the registry (or the
//! local engine) about every step at once, a bounded batch, and [`decide`]
//! turns the answers into actions in plan order, so that a dependent knows
//! whether its requirement is rebuilt. Looking up has no side effect:
//! repositories are created by the executor, only for steps it builds.

use std::collections::HashMap;

use futures::StreamExt;
use serde::Serialize;

use oci_registry::{Registry, RegistryError};

use crate::build::engine::{Engine, EngineError};
use crate::config::TagMutability;
use crate::plan::record::Change;
use crate::plan::{Plan, Step};
use crate::push::ecr::{EcrError, Repositories};
use crate::report::render::short_digest;
use crate::report::{Event, Reporter, Stage};

/// Where the images of a plan are looked up.
pub(crate) enum Store<'a> {
    /// A registry, with ECR's repository settings when it is ECR.
    Registry {
        registry: &'a dyn Registry,
        repositories: Option<&'a dyn Repositories>,
    },
    /// The local engine (`pipeline build`, `run --no-push`): images are
    /// tagged `<repository>:<content tag>` there.
    Local { engine: &'a dyn Engine },
    /// Nothing is asked (`plan --offline`): the last results stand in.
    Offline,
}

impl Store<'_> {
    fn place(&self) -> Place {
        match self {
            Store::Registry { .. } | Store::Offline => Place::Registry,
            Store::Local { .. } => Place::LocalEngine,
        }
    }
}

/// Where a content tag was (or was not) found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Place {
    Registry,
    LocalEngine,
}

impl Place {
    fn words(self) -> &'static str {
        match self {
            Place::Registry => "registry",
            Place::LocalEngine => "the local engine",
        }
    }
}

/// What the store said about one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Found {
    /// The registry holds the content tag, at this manifest digest.
    Registry { digest: String },
    /// The local engine has an image with the content tag.
    Local { image_id: String },
    /// Not there. For ECR, what the repository is like: `None` when it
    /// does not exist yet; and, in an IMMUTABLE repository, a tag of the
    /// step that already points elsewhere.
    Missing {
        repository: Option<TagMutability>,
        stuck: Option<Problem>,
    },
    /// Not asked (`--offline`, `--force`, or a service `build` rebuilds).
    Unchecked,
}

/// A look-up that failed, and the stage it failed in.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LookupError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Repository(#[from] EcrError),
}

impl LookupError {
    pub(crate) fn stage(&self) -> Stage {
        match self {
            LookupError::Repository(_) => Stage::Repository,
            _ => Stage::CacheCheck,
        }
    }
}

/// Why a step is built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Why {
    /// `--force`, or `pipeline build NAME`.
    Forced,
    /// Its inputs differ from those of the last results; `rebuilt` names
    /// the required services that this run builds.
    Changed {
        changes: Vec<Change>,
        rebuilt: Vec<String>,
    },
    /// No image with its content tag, and nothing to compare with.
    Missing { content_tag: String, place: Place },
    /// `--offline` and not in the last results.
    NotInLastResults,
}

/// Why a run will fail a step before building it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Problem {
    /// A tag of the step exists in an IMMUTABLE ECR repository and points
    /// to another image, so it cannot move to the new one.
    ImmutableTag {
        repository: String,
        tag: String,
        digest: String,
    },
    /// `COPY`/`ADD` sources the build will not find in its context.
    MissingSources {
        sources: Vec<crate::plan::sources::MissingSource>,
    },
}

/// Where a cached image is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "in", rename_all = "snake_case")]
pub(crate) enum Cached {
    Registry {
        digest: String,
    },
    LocalEngine {
        image_id: String,
    },
    /// `--offline`: the last results had these very inputs.
    LastResults,
}

/// What happens to one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub(crate) enum Action {
    Cached {
        #[serde(flatten)]
        cached: Cached,
    },
    Build {
        why: Why,
        /// The ECR repository does not exist yet and is created first.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        create_repository: bool,
    },
    WillFail {
        why: Why,
        problem: Problem,
    },
}

impl Action {
    pub(crate) fn builds(&self) -> bool {
        !matches!(self, Action::Cached { .. })
    }
}

impl Problem {
    /// The problem in words, with what to do.
    pub(crate) fn message(&self) -> String {
        match self {
            Problem::ImmutableTag {
                repository,
                tag,
                digest,
            } => format!(
                "tag `{tag}` already points to {} in the IMMUTABLE repository {repository} and cannot move to the new image; remove `{tag}` from `tags:` or make the repository's tags MUTABLE",
                short_digest(digest)
            ),
            Problem::MissingSources { sources } => sources
                .iter()
                .map(|s| s.message())
                .collect::<Vec<_>>()
                .join("; "),
        }
    }

    /// The stage a run fails the service in.
    pub(crate) fn stage(&self) -> Stage {
        match self {
            Problem::ImmutableTag { .. } => Stage::Tag,
            Problem::MissingSources { .. } => Stage::Build,
        }
    }
}

impl Why {
    pub(crate) fn words(&self) -> String {
        match self {
            Why::Forced => "--force".into(),
            Why::Changed { changes, rebuilt } => changes
                .iter()
                .map(|c| match c {
                    Change::Dockerfile => "Dockerfile changed".into(),
                    Change::Target => "target changed".into(),
                    Change::Platform => "platform changed".into(),
                    Change::Builder => "builder changed".into(),
                    Change::Secrets => "secret ids changed".into(),
                    Change::BuildArgs { names } => {
                        format!("build args changed: {}", names.join(", "))
                    }
                    Change::Requires { name } if rebuilt.contains(name) => {
                        format!("requires {name} (rebuilt)")
                    }
                    Change::Requires { name } => format!("requires {name} (changed)"),
                    Change::Files { paths } => match paths.len() {
                        1 => format!("files changed: {}", paths[0]),
                        n => format!("files changed: {} (+{} more)", paths[0], n - 1),
                    },
                })
                .collect::<Vec<String>>()
                .join("; "),
            Why::Missing { content_tag, place } => {
                format!("no image with tag {content_tag} in {}", place.words())
            }
            Why::NotInLastResults => "not in the last results (registry not checked)".into(),
        }
    }
}

impl Cached {
    fn words(&self, content_tag: &str) -> String {
        match self {
            Cached::Registry { .. } => format!("tag {content_tag} in registry"),
            Cached::LocalEngine { .. } => format!("tag {content_tag} in the local engine"),
            Cached::LastResults => "same inputs as the last results (registry not checked)".into(),
        }
    }
}

/// An action with the step it belongs to.
#[derive(Debug, Clone)]
pub(crate) struct Decided<'p> {
    pub(crate) step: &'p Step,
    pub(crate) action: Action,
}

impl Decided<'_> {
    /// Why, in words for people: the reason shown by `plan`, the progress
    /// view and the results file.
    pub(crate) fn reason(&self) -> String {
        match &self.action {
            Action::Cached { cached } => cached.words(&self.step.content_tag),
            Action::Build { why, .. } | Action::WillFail { why, .. } => why.words(),
        }
    }
}

/// Which steps are built whatever the store holds.
#[derive(Debug, Clone, Default)]
pub(crate) struct Force<'a> {
    /// `--force`: every step.
    pub(crate) all: bool,
    /// `pipeline build NAME`: these.
    pub(crate) services: &'a [String],
}

impl Force<'_> {
    fn forces(&self, name: &str) -> bool {
        self.all || self.services.iter().any(|s| s == name)
    }
}

/// Looks up every step of `plan` in `store`, at most 8 at a time (ECR
/// throttles bursts), reporting the stage of each look-up. A forced step's
/// content tag is not looked up, but its ECR repository still is: it must
/// exist before the push, and an IMMUTABLE one may refuse its tags.
pub(crate) async fn look_up(
    plan: &Plan,
    store: &Store<'_>,
    force: &Force<'_>,
    reporter: &dyn Reporter,
) -> Vec<Result<Found, LookupError>> {
    futures::stream::iter(&plan.steps)
        .map(|step| look_up_step(step, store, force.forces(&step.service.name), reporter))
        .buffered(8)
        .collect()
        .await
}

async fn look_up_step(
    step: &Step,
    store: &Store<'_>,
    forced: bool,
    reporter: &dyn Reporter,
) -> Result<Found, LookupError> {
    let repository = &step.service.repository;
    let stage = |stage| {
        reporter.event(Event::Stage {
            service: step.service.name.clone(),
            stage,
        })
    };
    match store {
        Store::Offline => Ok(Found::Unchecked),
        Store::Local { .. } if forced => Ok(Found::Unchecked),
        Store::Local { engine } => {
            stage(Stage::CacheCheck);
            let reference = format!("{repository}:{}", step.content_tag);
            Ok(match engine.image_id(&reference).await? {
                Some(image_id) => Found::Local { image_id },
                None => Found::Missing {
                    repository: None,
                    stuck: None,
                },
            })
        }
        Store::Registry {
            registry,
            repositories,
        } => {
            if !forced {
                stage(Stage::CacheCheck);
                if let Some(digest) = registry.digest(repository, &step.content_tag).await? {
                    // The image is there, so is its repository: no ECR call.
                    return Ok(Found::Registry { digest });
                }
            }
            let Some(repositories) = repositories else {
                return Ok(Found::Missing {
                    repository: Some(TagMutability::Mutable),
                    stuck: None,
                });
            };
            stage(Stage::Repository);
            let mutability = repositories.tag_mutability(repository).await?;
            let stuck = match mutability {
                Some(TagMutability::Immutable) => stuck_tag(*registry, step).await?,
                _ => None,
            };
            Ok(Found::Missing {
                repository: mutability,
                stuck,
            })
        }
    }
}

/// For a step about to be built into an IMMUTABLE repository: the first of
/// its tags (besides the content tag) that already exists, and so cannot
/// move to the new image.
async fn stuck_tag(registry: &dyn Registry, step: &Step) -> Result<Option<Problem>, RegistryError> {
    let repository = &step.service.repository;
    for tag in &step.tags[1..] {
        if let Some(digest) = registry.digest(repository, tag).await? {
            return Ok(Some(Problem::ImmutableTag {
                repository: repository.clone(),
                tag: tag.clone(),
                digest,
            }));
        }
    }
    Ok(None)
}

/// Decides every step of `plan` from what [`look_up`] found, in plan
/// order. A step whose look-up failed keeps its error; its dependents
/// count it as rebuilt.
pub(crate) fn decide<'p>(
    plan: &'p Plan,
    found: Vec<Result<Found, LookupError>>,
    store: &Store<'_>,
    force: &Force<'_>,
) -> Vec<Result<Decided<'p>, LookupError>> {
    let place = store.place();
    let mut rebuilt: HashMap<&str, bool> = HashMap::new();
    let mut out = Vec::new();
    for (step, found) in plan.steps.iter().zip(found) {
        let decided = found.map(|found| Decided {
            step,
            action: action(step, found, place, force, &rebuilt),
        });
        let builds = decided.as_ref().map_or(true, |d| d.action.builds());
        rebuilt.insert(step.service.name.as_str(), builds);
        out.push(decided);
    }
    out
}

/// The action for one step: what the store says, and a build that will
/// not find a `COPY` source fails before it starts.
fn action(
    step: &Step,
    found: Found,
    place: Place,
    force: &Force<'_>,
    rebuilt: &HashMap<&str, bool>,
) -> Action {
    match decided(step, found, place, force, rebuilt) {
        Action::Build { why, .. } if !step.missing_sources.is_empty() => Action::WillFail {
            why,
            problem: Problem::MissingSources {
                sources: step.missing_sources.clone(),
            },
        },
        action => action,
    }
}

fn decided(
    step: &Step,
    found: Found,
    place: Place,
    force: &Force<'_>,
    rebuilt: &HashMap<&str, bool>,
) -> Action {
    let changed = || {
        let changes = step.last.as_ref()?.changes.clone()?;
        if changes.is_empty() {
            return None;
        }
        let rebuilt = step
            .service
            .requires
            .iter()
            .filter(|r| rebuilt.get(r.as_str()).copied().unwrap_or(false))
            .cloned()
            .collect();
        Some(Why::Changed { changes, rebuilt })
    };
    let missing = || Why::Missing {
        content_tag: step.content_tag.clone(),
        place,
    };
    let build = |why: Why| Action::Build {
        why,
        create_repository: false,
    };
    let forced = force.forces(&step.service.name);
    match found {
        Found::Registry { .. } | Found::Local { .. } | Found::Unchecked if forced => {
            build(Why::Forced)
        }
        Found::Registry { digest } => Action::Cached {
            cached: Cached::Registry { digest },
        },
        Found::Local { image_id } => Action::Cached {
            cached: Cached::LocalEngine { image_id },
        },
        Found::Unchecked => {
            let same = step
                .last
                .as_ref()
                .is_some_and(|l| l.succeeded && l.input_digest == step.input_digest);
            if same {
                Action::Cached {
                    cached: Cached::LastResults,
                }
            } else {
                build(changed().unwrap_or(Why::NotInLastResults))
            }
        }
        Found::Missing { repository, stuck } => {
            let why = match forced {
                true => Why::Forced,
                false => changed().unwrap_or_else(missing),
            };
            match stuck {
                Some(problem) => Action::WillFail { why, problem },
                None => Action::Build {
                    why,
                    create_repository: repository.is_none() && place == Place::Registry,
                },
            }
        }
    }
}
