//! Executes a decided plan (see `plan::resolve`): every service runs as its
//! own future, waiting for its requirements' images, bounded by one
//! semaphore for builds (`build.jobs`) and one for pushes
//! (`build.push_jobs`), so pushes overlap other services' builds. Missing
//! ECR repositories are created first, in one batch, so builds start in plan
//! order. After every service has its content tag, the other tags are added;
//! when any service failed they are not, so a failed run leaves `latest`
//! where it was.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use futures::StreamExt;
use tokio::sync::{Semaphore, watch};

use oci_registry::Auth;
use oci_registry::{Registry, Secret};

use crate::build::engine::{Engine, EngineError, Kind};
use crate::build::{self, BuildInputs, ServiceLog};
use crate::config::{Builder, NewRepository};
use crate::plan::resolve::{Action, Cached, Decided, LookupError};
use crate::plan::{Plan, Step};
use crate::push::ecr::{EcrError, Repositories};
use crate::push::{self, PushError, TagError};
use crate::report::{Event, Reporter, ServiceResult, Stage, Status};

#[cfg(test)]
pub(crate) mod fake;
#[cfg(test)]
mod tests;

/// Where images go.
pub(crate) enum Target {
    /// Build, push content tags, then add the other tags in the registry.
    Registry {
        host: String,
        registry: Arc<dyn Registry>,
        auth: Arc<Auth>,
        /// ECR, to create missing repositories, and how (`None`: do not).
        repositories: Option<(Arc<dyn Repositories>, Option<NewRepository>)>,
    },
    /// Build into the local engine only; each image is also tagged
    /// `<repository>:<tag>` for every tag here (`dev` for `pipeline build`).
    Local { tags: LocalTags },
}

/// Which tags a local build gets besides its content tag.
pub(crate) enum LocalTags {
    /// `<repository>:dev`.
    Dev,
    /// The plan's tags (`run --no-push`).
    Planned,
}

pub(crate) struct Options {
    pub(crate) jobs: usize,
    pub(crate) push_jobs: usize,
    pub(crate) keep_going: bool,
    /// What the engine's builders can do.
    pub(crate) builders: Builders,
    /// Build secret values, by service and id.
    pub(crate) secrets: HashMap<String, HashMap<String, Secret>>,
    /// How pushes through the engine are retried (`push.retries`,
    /// `push.retry_window`).
    pub(crate) retry: oci_registry::RetryPolicy,
    pub(crate) logs_dir: PathBuf,
    /// Configured image labels, besides the OCI ones.
    pub(crate) labels: BTreeMap<String, String>,
}

pub(crate) struct Executor<'a> {
    pub(crate) plan: &'a Plan,
    pub(crate) engine: &'a dyn Engine,
    pub(crate) target: Target,
    pub(crate) options: Options,
    pub(crate) reporter: &'a dyn Reporter,
}

/// What the engine offers its builds.
#[derive(Debug, Clone)]
pub(crate) struct Builders {
    /// Whether BuildKit is there.
    pub(crate) buildkit: bool,
    /// The Dockerfile frontend built into the engine's BuildKit.
    pub(crate) frontend: dockerfile::Frontend,
}

impl Builders {
    /// The builder a service's setting gets on this engine. `buildkit` on
    /// an engine without it is refused before the run (see `commands`).
    pub(crate) fn kind(&self, setting: Builder) -> Kind {
        match setting {
            Builder::Classic => Kind::Classic,
            Builder::BuildKit => Kind::BuildKit,
            Builder::Auto if self.buildkit => Kind::BuildKit,
            Builder::Auto => Kind::Classic,
        }
    }
}

/// Why a service failed, and so the stage it failed in.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    #[error(transparent)]
    LookUp(#[from] LookupError),
    #[error(transparent)]
    Repository(#[from] EcrError),
    /// The plan already knew: a tag that cannot move, a `COPY` source that
    /// is not there.
    #[error("{message}")]
    Refused { stage: Stage, message: String },
    #[error("{}", build_message(.0))]
    Build(EngineError),
    /// The Dockerfile needs more than the builder offers.
    #[error("{0}")]
    Unsupported(String),
    #[error(transparent)]
    Push(#[from] PushError),
    #[error("{0}")]
    LocalTag(EngineError),
    #[error(transparent)]
    Tag(#[from] TagError),
}

impl Failure {
    pub(crate) fn stage(&self) -> Stage {
        match self {
            Failure::LookUp(e) => e.stage(),
            Failure::Repository(_) => Stage::Repository,
            Failure::Build(_) | Failure::Unsupported(_) => Stage::Build,
            Failure::Push(_) => Stage::Push,
            Failure::Refused { stage, .. } => *stage,
            Failure::LocalTag(_) | Failure::Tag(_) => Stage::Tag,
        }
    }

    /// `build failed: at `Step 3/5 : RUN make`: …`, as the results file says it.
    pub(crate) fn message(&self) -> String {
        format!("{} failed: {self}", self.stage().name())
    }
}

/// A failure with the last lines of the service's log.
pub(crate) struct Failed {
    failure: Failure,
    tail: Vec<String>,
}

fn failed(failure: impl Into<Failure>, tail: Vec<String>) -> Box<Failed> {
    Box::new(Failed {
        failure: failure.into(),
        tail,
    })
}

fn build_message(e: &EngineError) -> String {
    match e {
        EngineError::Build {
            step: Some(s),
            message,
            ..
        } => format!("at `{s}`: {message}"),
        other => other.to_string(),
    }
}

/// What dependents get from a required service: the reference to build
/// `FROM`, or nothing when it failed.
type Available = Option<Result<String, ()>>;

struct Shared<'a> {
    builds: Semaphore,
    pushes: Semaphore,
    stop: AtomicBool,
    senders: HashMap<&'a str, watch::Sender<Available>>,
    labels: HashMap<String, String>,
}

/// A decided step, or the look-up that failed for it.
pub(crate) type Decision<'p> = Result<Decided<'p>, LookupError>;

impl Executor<'_> {
    /// Executes `decided` (one per step of the plan, in plan order, from
    /// `plan::resolve::decide`); returns one result per service.
    pub(crate) async fn execute(
        &self,
        decided: Vec<Decision<'_>>,
    ) -> BTreeMap<String, ServiceResult> {
        let shared = Shared {
            builds: Semaphore::new(self.options.jobs),
            pushes: Semaphore::new(self.options.push_jobs),
            stop: AtomicBool::new(false),
            senders: self
                .plan
                .steps
                .iter()
                .map(|s| (s.service.name.as_str(), watch::channel(None).0))
                .collect(),
            labels: build::labels(&self.plan.git, &self.options.labels),
        };
        let reasons: Vec<Option<String>> = decided
            .iter()
            .map(|d| d.as_ref().ok().map(Decided::reason))
            .collect();
        let ready: Vec<Result<Decided<'_>, Failure>> = futures::stream::iter(decided)
            .map(|d| self.create_repository(d))
            .buffered(self.options.push_jobs.max(8))
            .collect()
            .await;
        let shared = &shared;
        let results: Vec<ServiceResult> =
            futures::future::join_all(self.plan.steps.iter().zip(ready).zip(reasons).map(
                |((step, ready), reason)| async move {
                    let mut result = self.run_service(step, ready, shared).await;
                    result.reason = reason;
                    // Reported as soon as it is done, not when all are.
                    self.reporter.event(Event::Finished {
                        service: step.service.name.clone(),
                        result: Box::new(result.clone()),
                    });
                    result
                },
            ))
            .await;
        let mut results: BTreeMap<String, ServiceResult> = self
            .plan
            .steps
            .iter()
            .map(|s| s.service.name.clone())
            .zip(results)
            .collect();
        let before = results.clone();
        self.add_tags(&mut results).await;
        // A tag the registry refused fails its service after all.
        for (name, result) in &results {
            if result.status != before[name].status {
                self.reporter.event(Event::Finished {
                    service: name.clone(),
                    result: Box::new(result.clone()),
                });
            }
        }
        results
    }

    /// Creates the ECR repository of a step about to be built when the
    /// look-up found none; done for every step in one batch before any
    /// build, so builds then start in plan order.
    async fn create_repository<'p>(&self, decision: Decision<'p>) -> Result<Decided<'p>, Failure> {
        let decided = decision?;
        let (
            Action::Build {
                create_repository: true,
                ..
            },
            Target::Registry {
                repositories: Some((repositories, create)),
                ..
            },
        ) = (&decided.action, &self.target)
        else {
            return Ok(decided);
        };
        let name = &decided.step.service.repository;
        self.stage(decided.step, Stage::Repository);
        let Some(settings) = create else {
            return Err(EcrError::Missing(name.clone()).into());
        };
        repositories.create(name, *settings).await?;
        Ok(decided)
    }

    async fn run_service(
        &self,
        step: &Step,
        ready: Result<Decided<'_>, Failure>,
        shared: &Shared<'_>,
    ) -> ServiceResult {
        let name = step.service.name.as_str();
        let sender = &shared.senders[name];
        let mut required = HashMap::new();
        for r in &step.service.requires {
            let mut rx = shared.senders[r.as_str()].subscribe();
            let available = rx
                .wait_for(|v| v.is_some())
                .await
                .map(|v| v.clone())
                .ok()
                .flatten();
            match available {
                Some(Ok(reference)) => {
                    required.insert(crate::discover::image_arg(r), reference);
                }
                _ => {
                    sender.send_replace(Some(Err(())));
                    return self.result(
                        step,
                        Status::Skipped,
                        Instant::now(),
                        Some(format!("requirement `{r}` failed or was skipped")),
                    );
                }
            }
        }
        let start = Instant::now();
        let mut result = match ready {
            Ok(decided) => {
                self.produce(step, decided.action, required, shared, start)
                    .await
            }
            Err(failure) => Err(failed(failure, Vec::new())),
        }
        .unwrap_or_else(|failed| {
            let mut r = self.result(step, Status::Failed, start, Some(failed.failure.message()));
            r.log_tail = failed.tail;
            r
        });
        result.duration_ms = start.elapsed().as_millis() as u64;
        if matches!(result.status, Status::Failed | Status::Skipped) {
            sender.send_replace(Some(Err(())));
            if result.status == Status::Failed && !self.options.keep_going {
                shared.stop.store(true, Ordering::SeqCst);
            }
        }
        result
    }

    fn result(
        &self,
        step: &Step,
        status: Status,
        start: Instant,
        error: Option<String>,
    ) -> ServiceResult {
        ServiceResult {
            status,
            repository: self.repository(step),
            digest: None,
            tags: Vec::new(),
            input_digest: step.input_digest.clone(),
            duration_ms: start.elapsed().as_millis() as u64,
            error,
            reason: None,
            image_id: None,
            log_tail: Vec::new(),
        }
    }

    fn repository(&self, step: &Step) -> String {
        match &self.target {
            Target::Registry { host, .. } => format!("{host}/{}", step.service.repository),
            Target::Local { .. } => step.service.repository.clone(),
        }
    }

    fn stage(&self, step: &Step, stage: Stage) {
        self.reporter.event(Event::Stage {
            service: step.service.name.clone(),
            stage,
        });
    }

    /// One service whose requirements are available: taken from the cache,
    /// or built and pushed. A failure carries the last lines of its log.
    async fn produce(
        &self,
        step: &Step,
        action: Action,
        required: HashMap<String, String>,
        shared: &Shared<'_>,
        start: Instant,
    ) -> Result<ServiceResult, Box<Failed>> {
        let name = step.service.name.as_str();
        let sender = &shared.senders[name];
        let repository = self.repository(step);
        match action {
            Action::WillFail { problem, .. } => {
                return Err(failed(
                    Failure::Refused {
                        stage: problem.stage(),
                        message: problem.message(),
                    },
                    Vec::new(),
                ));
            }
            Action::Cached { cached } => {
                let (reference, digest, image_id) = match cached {
                    Cached::Registry { digest } => {
                        (format!("{repository}@{digest}"), Some(digest), None)
                    }
                    Cached::LocalEngine { image_id } => (
                        format!("{repository}:{}", step.content_tag),
                        None,
                        Some(image_id),
                    ),
                    // Only `plan --offline` decides from the last results.
                    Cached::LastResults => unreachable!("a run looks its images up"),
                };
                sender.send_replace(Some(Ok(reference)));
                let mut r = self.result(step, Status::Cached, start, None);
                r.digest = digest;
                r.tags = vec![step.content_tag.clone()];
                if let (Some(id), Target::Local { tags }) = (&image_id, &self.target) {
                    r.tags = self
                        .tag_locally(step, id, tags)
                        .await
                        .map_err(|e| failed(Failure::LocalTag(e), Vec::new()))?;
                }
                r.image_id = image_id;
                return Ok(r);
            }
            Action::Build { .. } => {}
        }

        let skipped = || {
            Ok(self.result(
                step,
                Status::Skipped,
                start,
                Some("not started: another service failed (use --keep-going to go on)".into()),
            ))
        };
        if shared.stop.load(Ordering::SeqCst) {
            return skipped();
        }
        self.stage(step, Stage::Waiting);
        let permit = shared.builds.acquire().await.expect("semaphore open");
        if shared.stop.load(Ordering::SeqCst) {
            return skipped();
        }
        let builder = self.options.builders.kind(step.service.builder);
        if let Some(message) = build::unsupported(step, builder, &self.options.builders.frontend) {
            return Err(failed(Failure::Unsupported(message), Vec::new()));
        }
        self.stage(step, Stage::Build);
        let mut log = ServiceLog::open(&self.options.logs_dir, name, self.reporter);
        let local_ref = format!("{repository}:{}", step.content_tag);
        let registries = match &self.target {
            Target::Registry { host, auth, .. } => auth
                .credentials()
                .map(|c| HashMap::from([(host.clone(), c)]))
                .unwrap_or_default(),
            Target::Local { .. } => HashMap::new(),
        };
        let inputs = BuildInputs {
            tag: local_ref.clone(),
            required_images: required,
            labels: &shared.labels,
            registries,
            builder,
            secrets: self.options.secrets.get(name).cloned().unwrap_or_default(),
        };
        let image_id = build::build(self.engine, step, inputs, &mut log)
            .await
            .map_err(|e| {
                // BuildKit tells the failing step's own output apart.
                let tail = match &e {
                    EngineError::Build { output, .. } if !output.is_empty() => output.clone(),
                    _ => log.tail(),
                };
                failed(Failure::Build(e), tail)
            })?;
        // The build slot is free before the push waits for its own.
        drop(permit);
        // Dependents may start now: the image is in the local engine under
        // its content tag, which names exactly these inputs.
        sender.send_replace(Some(Ok(local_ref)));

        let mut result = self.result(step, Status::Built, start, None);
        result.image_id = Some(image_id.clone());
        match &self.target {
            Target::Local { tags } => {
                result.tags = self
                    .tag_locally(step, &image_id, tags)
                    .await
                    .map_err(|e| failed(Failure::LocalTag(e), log.tail()))?;
            }
            Target::Registry {
                host,
                registry,
                auth,
                ..
            } => {
                let _push = shared.pushes.acquire().await.expect("semaphore open");
                self.stage(step, Stage::Push);
                let target = push::PushTarget {
                    registry: registry.as_ref(),
                    auth,
                    host,
                    policy: &self.options.retry,
                };
                let digest = push::push_content(
                    self.engine,
                    &target,
                    &step.service.repository,
                    &step.content_tag,
                    &mut log,
                )
                .await
                .map_err(|e| failed(e, log.tail()))?;
                result.digest = Some(digest);
                result.tags = vec![step.content_tag.clone()];
            }
        }
        Ok(result)
    }

    /// Tags a local image `<repository>:<tag>` for the local tags.
    async fn tag_locally(
        &self,
        step: &Step,
        image_id: &str,
        tags: &LocalTags,
    ) -> Result<Vec<String>, EngineError> {
        let extra: Vec<String> = match tags {
            LocalTags::Dev => vec!["dev".into()],
            LocalTags::Planned => step.tags.clone(),
        };
        for tag in &extra {
            self.engine
                .tag(image_id, &self.repository(step), tag)
                .await?;
        }
        Ok(extra)
    }

    /// Adds every tag besides the content tag, only when every service has
    /// its content tag. Results, tags and manifests agree with the
    /// registry: each content tag is read again first, and when another run
    /// (another machine on the same commit) replaced it since our push,
    /// its digest is the one recorded and tagged. Read once more after
    /// tagging, and tagged again if it moved meanwhile (a few rounds).
    async fn add_tags(&self, results: &mut BTreeMap<String, ServiceResult>) {
        let Target::Registry { registry, .. } = &self.target else {
            return;
        };
        if !results.values().all(|r| r.digest.is_some()) {
            return;
        }
        let mut to_tag: Vec<&Step> = self.plan.steps.iter().collect();
        let mut tagged: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for _round in 0..3 {
            if to_tag.is_empty() {
                break;
            }
            let outcomes: Vec<(String, Option<String>, push::Tagged)> =
                futures::stream::iter(to_tag.iter().map(|step| {
                    let recorded = results[&step.service.name]
                        .digest
                        .clone()
                        .expect("checked above");
                    (*step, recorded)
                }))
                .map(|(step, recorded)| async move {
                    self.stage(step, Stage::Tag);
                    let repository = &step.service.repository;
                    let current = match registry.digest(repository, &step.content_tag).await {
                        Ok(Some(current)) => current,
                        Ok(None) => recorded.clone(),
                        Err(source) => {
                            let out = push::Tagged {
                                tags: Vec::new(),
                                error: Some(TagError::LookUp {
                                    tag: step.content_tag.clone(),
                                    source,
                                }),
                            };
                            return (step.service.name.clone(), None, out);
                        }
                    };
                    let adopted = (current != recorded).then(|| {
                        self.reporter.event(Event::Log {
                            service: step.service.name.clone(),
                            line: format!(
                                "{} now points to {current}, pushed by another run from the same inputs; that digest is the one recorded, tagged and pinned",
                                step.content_tag
                            ),
                        });
                        current.clone()
                    });
                    let out =
                        push::add_tags(registry.as_ref(), repository, &current, &step.tags[1..])
                            .await;
                    (step.service.name.clone(), adopted, out)
                })
                .buffer_unordered(self.options.push_jobs)
                .collect()
                .await;
            for (name, adopted, out) in outcomes {
                let r = results.get_mut(&name).expect("every step has a result");
                if let Some(digest) = adopted {
                    r.digest = Some(digest);
                }
                let tags = tagged.entry(name.clone()).or_default();
                for tag in out.tags {
                    if !tags.contains(&tag) {
                        self.reporter.event(Event::Tagged {
                            service: name.clone(),
                            tag: tag.clone(),
                        });
                        tags.push(tag);
                    }
                }
                if let Some(error) = out.error {
                    r.status = Status::Failed;
                    r.error = Some(Failure::Tag(error).message());
                }
            }
            // Once the tags are on, did a content tag move again?
            let mut again = Vec::new();
            for step in &self.plan.steps {
                let r = &results[&step.service.name];
                if r.status == Status::Failed {
                    continue;
                }
                if let Ok(Some(now)) = registry
                    .digest(&step.service.repository, &step.content_tag)
                    .await
                    && Some(&now) != r.digest.as_ref()
                {
                    again.push(step);
                }
            }
            to_tag = again;
        }
        for (name, tags) in tagged {
            let r = results.get_mut(&name).expect("every step has a result");
            for tag in tags {
                if !r.tags.contains(&tag) {
                    r.tags.push(tag);
                }
            }
        }
    }
}
