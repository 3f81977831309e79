//! Executes a decided plan (see `plan::resolve`): every service runs as its
//! own future, waiting for its requirements' images, bounded by the build
//! slots of the engines (see `pool`: `build.jobs`, or each builder's `jobs`)
//! and one semaphore for pushes (`build.push_jobs`), so pushes overlap other
//! services' builds. Missing
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
pub(crate) mod pool;
#[cfg(test)]
mod tests;

use pool::{NoBuilder, Pool, Slot};

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
    pub(crate) push_jobs: usize,
    pub(crate) keep_going: bool,
    /// Push content tags only, add no other tag (`run --shard`: `finish`
    /// adds them).
    pub(crate) content_tags_only: bool,
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
    /// The engines builds run on.
    pub(crate) pool: &'a Pool,
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
    #[error(transparent)]
    NoBuilder(#[from] NoBuilder),
}

impl Failure {
    pub(crate) fn stage(&self) -> Stage {
        match self {
            Failure::LookUp(e) => e.stage(),
            Failure::Repository(_) => Stage::Repository,
            Failure::Build(_) | Failure::Unsupported(_) | Failure::NoBuilder(_) => Stage::Build,
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
    /// The engine it failed on, when it got one.
    builder: Option<String>,
}

fn failed(failure: impl Into<Failure>, tail: Vec<String>) -> Box<Failed> {
    Box::new(Failed {
        failure: failure.into(),
        tail,
        builder: None,
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

/// A required image, as its dependents may use it.
#[derive(Debug, Clone)]
struct Made {
    /// The engine that built it in this run, where it is under `local`.
    built_on: Option<usize>,
    local: Option<String>,
    /// `host/repository@digest`, once the registry has it.
    pushed: Option<String>,
}

/// What dependents get from a required service, or an error when it failed
/// or was skipped; updated once more when a built image is pushed.
type Available = Option<Result<Made, ()>>;

/// Why a build found no engine.
enum Placed {
    /// A requirement's push failed while this waited for it.
    RequirementFailed(String),
    NoBuilder(NoBuilder),
}

/// A requirement of the service being built.
struct Required {
    service: String,
    made: Made,
}

struct Shared<'a> {
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
        let mut required = Vec::new();
        for r in &step.service.requires {
            let mut rx = shared.senders[r.as_str()].subscribe();
            let available = rx
                .wait_for(|v| v.is_some())
                .await
                .map(|v| v.clone())
                .ok()
                .flatten();
            match available {
                Some(Ok(made)) => required.push(Required {
                    service: r.clone(),
                    made,
                }),
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
        // Reset when a build slot is taken: `duration_ms` is the time the
        // service took, not its wait in the queue (`--weights` reads it).
        let mut start = Instant::now();
        let mut result = match ready {
            Ok(decided) => {
                self.produce(step, decided.action, required, shared, &mut start)
                    .await
            }
            Err(failure) => Err(failed(failure, Vec::new())),
        }
        .unwrap_or_else(|failed| {
            let mut r = self.result(step, Status::Failed, start, Some(failed.failure.message()));
            r.log_tail = failed.tail;
            r.builder = failed.builder;
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
            builder: None,
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
    /// A build whose engine is found dead afterwards goes once more to
    /// another engine.
    async fn produce(
        &self,
        step: &Step,
        action: Action,
        mut required: Vec<Required>,
        shared: &Shared<'_>,
        start: &mut Instant,
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
                // A registry image is usable anywhere; a local one is in the
                // first engine, where local look-ups are made.
                let made = match &image_id {
                    Some(_) => Made {
                        built_on: Some(0),
                        local: Some(reference),
                        pushed: None,
                    },
                    None => Made {
                        built_on: None,
                        local: None,
                        pushed: Some(reference),
                    },
                };
                sender.send_replace(Some(Ok(made)));
                let mut r = self.result(step, Status::Cached, *start, None);
                r.digest = digest;
                r.tags = vec![step.content_tag.clone()];
                if let (Some(id), Target::Local { tags }) = (&image_id, &self.target) {
                    r.tags = self
                        .tag_locally(self.pool.first().engine.as_ref(), step, id, tags)
                        .await
                        .map_err(|e| failed(Failure::LocalTag(e), Vec::new()))?;
                }
                r.image_id = image_id;
                return Ok(r);
            }
            Action::Build { .. } => {}
        }

        let skipped = |start: Instant| {
            Ok(self.result(
                step,
                Status::Skipped,
                start,
                Some("not started: another service failed (use --keep-going to go on)".into()),
            ))
        };
        // Opened when a build starts: a service refused before has none.
        let mut log = None;
        let mut avoid = None;
        loop {
            if shared.stop.load(Ordering::SeqCst) {
                return skipped(*start);
            }
            self.stage(step, Stage::Waiting);
            let slot = match self.place(step, &mut required, avoid, shared).await {
                Ok(slot) => slot,
                Err(Placed::RequirementFailed(r)) => {
                    return Ok(self.result(
                        step,
                        Status::Skipped,
                        *start,
                        Some(format!("requirement `{r}` failed or was skipped")),
                    ));
                }
                Err(Placed::NoBuilder(e)) => {
                    return Err(failed(
                        e,
                        log.as_ref().map(ServiceLog::tail).unwrap_or_default(),
                    ));
                }
            };
            if shared.stop.load(Ordering::SeqCst) {
                return skipped(*start);
            }
            *start = Instant::now();
            let member = slot.member;
            match self
                .build_and_push(step, slot, &required, shared, &mut log, *start)
                .await
            {
                Ok(result) => return Ok(result),
                Err(mut f) => {
                    f.builder = Some(self.pool.member(member).name.clone());
                    // Lost with its engine? Once more elsewhere. A
                    // Dockerfile the builder cannot build never reached it.
                    let engine = &self.pool.member(member);
                    if avoid.is_some()
                        || self.pool.len() == 1
                        || matches!(f.failure, Failure::Unsupported(_))
                        || !self.lost(member).await
                    {
                        return Err(f);
                    }
                    self.pool.lose(member);
                    let line = format!(
                        "engine {} does not answer any more ({}); building again on another",
                        engine.name,
                        f.failure.message()
                    );
                    if let Some(log) = log.as_mut() {
                        log.line(&line);
                    }
                    self.reporter.event(Event::Note {
                        text: format!("{name}: {line}"),
                    });
                    avoid = Some(member);
                }
            }
        }
    }

    /// Whether engine `index` is gone (already known, or it does not
    /// answer now). An engine that is shutting down may fail its builds
    /// (their containers stopped) a moment before it stops answering, so
    /// one that answers is asked again a second later.
    async fn lost(&self, index: usize) -> bool {
        if self.pool.is_lost(index) {
            return true;
        }
        let engine = &self.pool.member(index).engine;
        if !engine.alive().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        self.pool.is_lost(index) || !engine.alive().await
    }

    /// Chooses the engine for `step` among those that build what it needs
    /// (`Pool::needs`) and waits for a slot there: the one that built its
    /// requirements when it has a free slot (they are used in place), else
    /// the pool's choice. Requirements built on another engine are then
    /// used by their registry reference, so this waits for their pushes.
    async fn place<'p>(
        &'p self,
        step: &Step,
        required: &mut [Required],
        avoid: Option<usize>,
        shared: &Shared<'_>,
    ) -> Result<Slot<'p>, Placed> {
        let name = step.service.name.as_str();
        // BuildKit too for an `auto` service whose Dockerfile needs it.
        let needs = self.pool.needs(step);
        let built: Vec<usize> = required.iter().filter_map(|r| r.made.built_on).collect();
        let near = built
            .first()
            .copied()
            .filter(|n| built.iter().all(|b| b == n) && Some(*n) != avoid);
        if let Some(slot) = near
            .filter(|n| self.pool.member(*n).builds(&needs))
            .and_then(|n| self.pool.try_slot(n))
        {
            return Ok(slot);
        }
        // Anywhere else, the requirements come from the registry: waited
        // for before a slot is taken when the choice is open, and after,
        // for those built elsewhere than the engine it got.
        let registry = matches!(self.target, Target::Registry { .. });
        if registry && (self.pool.shared(name, &needs) || avoid.is_some()) {
            Self::wait_for_pushes(required, shared, |_| true).await?;
        }
        let slot = self
            .pool
            .slot(name, &needs, avoid)
            .await
            .map_err(Placed::NoBuilder)?;
        if registry {
            let here = slot.member;
            Self::wait_for_pushes(required, shared, |made| made.built_on != Some(here)).await?;
        }
        Ok(slot)
    }

    /// Waits until every requirement that `which` picks and that is not in
    /// the registry yet has been pushed.
    async fn wait_for_pushes(
        required: &mut [Required],
        shared: &Shared<'_>,
        which: impl Fn(&Made) -> bool,
    ) -> Result<(), Placed> {
        for r in required
            .iter_mut()
            .filter(|r| r.made.pushed.is_none() && which(&r.made))
        {
            let mut rx = shared.senders[r.service.as_str()].subscribe();
            let pushed = rx
                .wait_for(|v| !matches!(v, Some(Ok(Made { pushed: None, .. }))))
                .await
                .map(|v| v.clone())
                .ok()
                .flatten();
            match pushed {
                Some(Ok(made)) => r.made = made,
                _ => return Err(Placed::RequirementFailed(r.service.clone())),
            }
        }
        Ok(())
    }

    /// Builds `step` on the engine of `slot`, then pushes it from there
    /// (or tags it locally). The error says which engine it was on.
    async fn build_and_push<'l>(
        &'l self,
        step: &'l Step,
        slot: Slot<'_>,
        required: &[Required],
        shared: &Shared<'_>,
        log: &mut Option<ServiceLog<'l>>,
        start: Instant,
    ) -> Result<ServiceResult, Box<Failed>> {
        let name = step.service.name.as_str();
        let sender = &shared.senders[name];
        let repository = self.repository(step);
        let index = slot.member;
        let member = self.pool.member(index);
        let engine = member.engine.as_ref();
        let builder = member.builders.kind(step.service.builder);
        if let Some(message) = build::unsupported(step, builder, &member.builders.frontend) {
            return Err(failed(Failure::Unsupported(message), Vec::new()));
        }
        self.stage(step, Stage::Build);
        let log = log
            .get_or_insert_with(|| ServiceLog::open(&self.options.logs_dir, name, self.reporter));
        if self.pool.len() > 1 {
            log.line(&format!("building on {}", member.name));
        }
        // In place on the engine that built it, else from the registry.
        let required_images = required
            .iter()
            .map(|r| {
                let here = (r.made.built_on == Some(index))
                    .then(|| r.made.local.clone())
                    .flatten();
                let reference = here
                    .or_else(|| r.made.pushed.clone())
                    .or_else(|| r.made.local.clone())
                    .expect("a requirement is built or pushed");
                (crate::discover::image_arg(&r.service), reference)
            })
            .collect();
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
            required_images,
            labels: &shared.labels,
            registries,
            builder,
            secrets: self.options.secrets.get(name).cloned().unwrap_or_default(),
        };
        let image_id = build::build(engine, step, inputs, log).await.map_err(|e| {
            // BuildKit tells the failing step's own output apart.
            let tail = match &e {
                EngineError::Build { output, .. } if !output.is_empty() => output.clone(),
                _ => log.tail(),
            };
            failed(Failure::Build(e), tail)
        })?;
        // The build slot is free before the push waits for its own.
        drop(slot);
        // Dependents on this engine may start now: the image is here under
        // its content tag, which names exactly these inputs.
        sender.send_replace(Some(Ok(Made {
            built_on: Some(index),
            local: Some(local_ref),
            pushed: None,
        })));

        let mut result = self.result(step, Status::Built, start, None);
        result.image_id = Some(image_id.clone());
        result.builder = Some(member.name.clone());
        match &self.target {
            Target::Local { tags } => {
                result.tags = self
                    .tag_locally(engine, step, &image_id, tags)
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
                    engine,
                    &target,
                    &step.service.repository,
                    &step.content_tag,
                    log,
                )
                .await
                .map_err(|e| failed(e, log.tail()))?;
                sender.send_modify(|v| {
                    if let Some(Ok(made)) = v {
                        made.pushed = Some(format!("{repository}@{digest}"));
                    }
                });
                result.digest = Some(digest);
                result.tags = vec![step.content_tag.clone()];
            }
        }
        Ok(result)
    }

    /// Tags a local image `<repository>:<tag>` for the local tags.
    async fn tag_locally(
        &self,
        engine: &dyn Engine,
        step: &Step,
        image_id: &str,
        tags: &LocalTags,
    ) -> Result<Vec<String>, EngineError> {
        let extra: Vec<String> = match tags {
            LocalTags::Dev => vec!["dev".into()],
            LocalTags::Planned => step.tags.clone(),
        };
        for tag in &extra {
            engine.tag(image_id, &self.repository(step), tag).await?;
        }
        Ok(extra)
    }

    /// Adds the other tags (see [`add_tags`]) unless this run pushes
    /// content tags only (`run --shard`).
    async fn add_tags(&self, results: &mut BTreeMap<String, ServiceResult>) {
        let Target::Registry { registry, .. } = &self.target else {
            return;
        };
        if self.options.content_tags_only {
            return;
        }
        add_tags(
            self.plan,
            registry.as_ref(),
            self.reporter,
            self.options.push_jobs,
            results,
        )
        .await;
    }
}

/// Adds every tag besides the content tag, only when every service has
/// its content tag. Results, tags and manifests agree with the
/// registry: each content tag is read again first, and when another run
/// (another machine on the same commit) replaced it since our push,
/// its digest is the one recorded and tagged. Read once more after
/// tagging, and tagged again if it moved meanwhile (a few rounds).
pub(crate) async fn add_tags(
    plan: &Plan,
    registry: &dyn Registry,
    reporter: &dyn Reporter,
    push_jobs: usize,
    results: &mut BTreeMap<String, ServiceResult>,
) {
    if !results.values().all(|r| r.digest.is_some()) {
        return;
    }
    let mut to_tag: Vec<&Step> = plan.steps.iter().collect();
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
                reporter.event(Event::Stage {
                    service: step.service.name.clone(),
                    stage: Stage::Tag,
                });
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
                    reporter.event(Event::Log {
                        service: step.service.name.clone(),
                        line: format!(
                            "{} now points to {current}, pushed by another run from the same inputs; that digest is the one recorded, tagged and pinned",
                            step.content_tag
                        ),
                    });
                    current.clone()
                });
                let out =
                    push::add_tags(registry, repository, &current, &step.tags[1..])
                        .await;
                (step.service.name.clone(), adopted, out)
            })
            .buffer_unordered(push_jobs)
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
                    reporter.event(Event::Tagged {
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
        for step in &plan.steps {
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
