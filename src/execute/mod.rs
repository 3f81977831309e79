//! Executes a plan. First one parallel batch of registry look-ups (and ECR
//! repository checks) decides what is cached; then every service runs as its
//! own future, waiting for its requirements' images, bounded by one semaphore
//! for builds (`build.jobs`) and one for pushes (`build.push_jobs`), so pushes
//! overlap other services' builds. After every service has its content tag,
//! the other tags are added; when any service failed they are not, so a
//! failed run leaves `latest` where it was.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use futures::StreamExt;
use tokio::sync::{Semaphore, watch};

use crate::auth::Auth;
use crate::build::engine::{Engine, EngineError};
use crate::build::{self, BuildInputs, ServiceLog};
use crate::config::{NewRepository, TagMutability};
use crate::plan::{Found, Plan, Step};
use crate::push;
use crate::push::ecr::Ecr;
use crate::registry::{Registry, RegistryError};
use crate::report::{Event, Reporter, ServiceResult, Stage, Status};

/// Where images go.
pub enum Target {
    /// Build, push content tags, then add the other tags in the registry.
    Registry {
        host: String,
        registry: Arc<dyn Registry>,
        auth: Arc<Auth>,
        /// ECR, to make sure repositories exist, and how to create missing
        /// ones (`None`: do not).
        ecr: Option<(Ecr, Option<NewRepository>)>,
    },
    /// Build into the local engine only; each image is also tagged
    /// `<repository>:<tag>` for every tag here (`dev` for `pipeline build`).
    Local { tags: LocalTags },
}

/// Which tags a local build gets besides its content tag.
pub enum LocalTags {
    /// `<repository>:dev`.
    Dev,
    /// The plan's tags (`run --no-push`).
    Planned,
}

pub struct Options {
    pub jobs: usize,
    pub push_jobs: usize,
    pub force: bool,
    /// Services built even when their image exists (`pipeline build NAME`).
    pub rebuild: Vec<String>,
    pub keep_going: bool,
    pub logs_dir: PathBuf,
    /// Configured image labels, besides the OCI ones.
    pub labels: BTreeMap<String, String>,
}

pub struct Executor<'a> {
    pub plan: &'a Plan,
    pub engine: &'a dyn Engine,
    pub target: Target,
    pub options: Options,
    pub reporter: &'a dyn Reporter,
}

/// A service's state before building: `Some` when its content tag is
/// already there, or the stage that failed and why.
type Prepared = Result<Option<Cached>, (Stage, String)>;

/// An image that need not be built.
struct Cached {
    /// The reference dependents build `FROM`.
    reference: String,
    /// The registry's manifest digest (none for an image in the local engine).
    digest: Option<String>,
    /// The local image ID (only for an image in the local engine).
    image_id: Option<String>,
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

impl Executor<'_> {
    /// Runs every step; returns one result per service.
    pub async fn execute(&self) -> BTreeMap<String, ServiceResult> {
        let names: Vec<&str> = self
            .plan
            .steps
            .iter()
            .map(|s| s.service.name.as_str())
            .collect();
        self.reporter.event(Event::Queued { services: &names });
        let (files, millis) = self.plan.hashed;
        self.reporter.event(Event::Hashed { files, millis });
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
        let prepared: Vec<Prepared> = futures::stream::iter(&self.plan.steps)
            .map(|step| self.prepare(step))
            .buffered(self.options.push_jobs.max(8))
            .collect()
            .await;
        let rebuilt: HashMap<&str, bool> = self
            .plan
            .steps
            .iter()
            .zip(&prepared)
            .map(|(s, p)| (s.service.name.as_str(), !matches!(p, Ok(Some(_)))))
            .collect();
        let place = match self.target {
            Target::Registry { .. } => "registry",
            Target::Local { .. } => "the local engine",
        };
        let shared = &shared;
        let results: Vec<ServiceResult> =
            futures::future::join_all(self.plan.steps.iter().zip(&prepared).map(
                |(step, prepared)| {
                    let found = match prepared {
                        Ok(Some(_)) => Found::Yes,
                        _ => Found::No,
                    };
                    let force =
                        self.options.force || self.options.rebuild.contains(&step.service.name);
                    let decision = step.decide(found, place, force, &|name| rebuilt[name]);
                    async move {
                        let mut result = self.run_service(step, prepared, shared).await;
                        result.reason = Some(decision.reason);
                        // Reported as soon as it is done, not when all are.
                        self.reporter.event(Event::Finished {
                            service: &step.service.name,
                            result: &result,
                        });
                        result
                    }
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
                    service: name,
                    result,
                });
            }
        }
        results
    }

    async fn run_service(
        &self,
        step: &Step,
        prepared: &Prepared,
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
        let mut result = self.produce(step, prepared, required, shared, start).await;
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
            service: &step.service.name,
            stage,
        });
    }

    /// Looks up the content tag: the digest when the image is already there
    /// (`cached`); otherwise makes sure the repository exists and returns
    /// `None`: it must be built. Done for every service in one parallel
    /// batch before any build, so builds then start in plan order.
    async fn prepare(&self, step: &Step) -> Prepared {
        let (registry, ecr) = match &self.target {
            Target::Registry { registry, ecr, .. } => (registry, ecr),
            Target::Local { .. } => return self.prepare_local(step).await,
        };
        if !self.options.force {
            self.stage(step, Stage::CacheCheck);
            let digest = registry
                .digest(&step.service.repository, &step.content_tag)
                .await
                .map_err(|e| (Stage::CacheCheck, e.to_string()))?;
            if let Some(digest) = digest {
                // The image is there, so is its repository: no ECR call.
                return Ok(Some(Cached {
                    reference: format!("{}@{digest}", self.repository(step)),
                    digest: Some(digest),
                    image_id: None,
                }));
            }
        }
        if let Some((ecr, create)) = ecr {
            self.stage(step, Stage::Repository);
            let mutability = ecr
                .ensure_repository(&step.service.repository, *create)
                .await
                .map_err(|e| (Stage::Repository, e.to_string()))?;
            if mutability == TagMutability::Immutable {
                let stuck = stuck_tag(registry.as_ref(), step)
                    .await
                    .map_err(|e| (Stage::CacheCheck, e.to_string()))?;
                if let Some(message) = stuck {
                    return Err((Stage::Tag, message));
                }
            }
        }
        Ok(None)
    }

    /// For local builds the engine is the cache: an image tagged with the
    /// content tag was built from exactly these inputs.
    async fn prepare_local(&self, step: &Step) -> Prepared {
        if self.options.force || self.options.rebuild.contains(&step.service.name) {
            return Ok(None);
        }
        self.stage(step, Stage::CacheCheck);
        let reference = format!("{}:{}", self.repository(step), step.content_tag);
        let id = self
            .engine
            .image_id(&reference)
            .await
            .map_err(|e| (Stage::CacheCheck, e.to_string()))?;
        Ok(id.map(|id| Cached {
            reference,
            digest: None,
            image_id: Some(id),
        }))
    }

    /// Build and push of one service whose requirements are available,
    /// unless it is cached.
    async fn produce(
        &self,
        step: &Step,
        prepared: &Prepared,
        required: HashMap<String, String>,
        shared: &Shared<'_>,
        start: Instant,
    ) -> ServiceResult {
        let name = step.service.name.as_str();
        let sender = &shared.senders[name];
        let repository = self.repository(step);
        let fail = |stage: Stage, message: String, tail: Vec<String>| {
            let mut r = self.result(
                step,
                Status::Failed,
                start,
                Some(format!("{} failed: {message}", stage.name())),
            );
            r.log_tail = tail;
            r
        };

        match prepared {
            Err((stage, message)) => return fail(*stage, message.clone(), vec![]),
            Ok(Some(cached)) => {
                sender.send_replace(Some(Ok(cached.reference.clone())));
                let mut r = self.result(step, Status::Cached, start, None);
                r.digest = cached.digest.clone();
                r.image_id = cached.image_id.clone();
                r.tags = vec![step.content_tag.clone()];
                if let (Some(id), Target::Local { tags }) = (&cached.image_id, &self.target) {
                    match self.tag_locally(step, id, tags).await {
                        Ok(tags) => r.tags = tags,
                        Err(message) => return fail(Stage::Tag, message, vec![]),
                    }
                }
                return r;
            }
            Ok(None) => {}
        }

        let skipped = || {
            self.result(
                step,
                Status::Skipped,
                start,
                Some("not started: another service failed (use --keep-going to go on)".into()),
            )
        };
        if shared.stop.load(Ordering::SeqCst) {
            return skipped();
        }
        self.stage(step, Stage::Waiting);
        let permit = shared.builds.acquire().await.expect("semaphore open");
        if shared.stop.load(Ordering::SeqCst) {
            return skipped();
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
        };
        let image_id = match build::build(self.engine, step, inputs, &mut log).await {
            Ok(id) => id,
            Err(e) => {
                let message = match &e {
                    EngineError::Build {
                        step: Some(s),
                        message,
                    } => format!("at `{s}`: {message}"),
                    other => other.to_string(),
                };
                return fail(Stage::Build, message, log.tail());
            }
        };
        drop(permit);
        // Dependents may start now: the image is in the local engine under
        // its content tag, which names exactly these inputs.
        sender.send_replace(Some(Ok(local_ref)));

        let mut result = self.result(step, Status::Built, start, None);
        result.image_id = Some(image_id.clone());
        match &self.target {
            Target::Local { tags } => match self.tag_locally(step, &image_id, tags).await {
                Ok(tags) => result.tags = tags,
                Err(message) => return fail(Stage::Tag, message, log.tail()),
            },
            Target::Registry {
                host,
                registry,
                auth,
                ..
            } => {
                let _push = shared.pushes.acquire().await.expect("semaphore open");
                self.stage(step, Stage::Push);
                match push::push_content(
                    self.engine,
                    registry.as_ref(),
                    auth,
                    host,
                    &step.service.repository,
                    &step.content_tag,
                    &mut log,
                )
                .await
                {
                    Ok(digest) => {
                        result.digest = Some(digest);
                        result.tags = vec![step.content_tag.clone()];
                    }
                    Err(message) => return fail(Stage::Push, message, log.tail()),
                }
            }
        }
        result
    }

    /// Tags a local image `<repository>:<tag>` for the local tags.
    async fn tag_locally(
        &self,
        step: &Step,
        image_id: &str,
        tags: &LocalTags,
    ) -> Result<Vec<String>, String> {
        let extra: Vec<String> = match tags {
            LocalTags::Dev => vec!["dev".into()],
            LocalTags::Planned => step.tags.clone(),
        };
        for tag in &extra {
            self.engine
                .tag(image_id, &self.repository(step), tag)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(extra)
    }

    /// Adds every tag besides the content tag, only when every service has
    /// its content tag.
    async fn add_tags(&self, results: &mut BTreeMap<String, ServiceResult>) {
        let Target::Registry { registry, .. } = &self.target else {
            return;
        };
        if !results.values().all(|r| r.digest.is_some()) {
            return;
        }
        let jobs: Vec<(&Step, String)> = self
            .plan
            .steps
            .iter()
            .map(|s| {
                (
                    s,
                    results[&s.service.name]
                        .digest
                        .clone()
                        .expect("checked above"),
                )
            })
            .collect();
        let outcomes: Vec<(String, push::Tagged)> = futures::stream::iter(jobs)
            .map(|(step, digest)| async move {
                self.stage(step, Stage::Tag);
                let out = push::add_tags(
                    registry.as_ref(),
                    &step.service.repository,
                    &digest,
                    &step.tags[1..],
                )
                .await;
                for tag in &out.tags {
                    self.reporter.event(Event::Tagged {
                        service: &step.service.name,
                        tag,
                    });
                }
                (step.service.name.clone(), out)
            })
            .buffer_unordered(self.options.push_jobs)
            .collect()
            .await;
        for (name, tagged) in outcomes {
            let r = results.get_mut(&name).expect("every step has a result");
            r.tags.extend(tagged.tags);
            if let Some(message) = tagged.error {
                r.status = Status::Failed;
                r.error = Some(format!("{} failed: {message}", Stage::Tag.name()));
            }
        }
    }
}

/// For a step about to be built into an IMMUTABLE repository: the first of
/// its tags (besides the content tag) that already exists and so cannot move
/// to the new image, as a message naming it and what to do.
pub async fn stuck_tag(
    registry: &dyn Registry,
    step: &Step,
) -> Result<Option<String>, RegistryError> {
    let repository = &step.service.repository;
    for tag in &step.tags[1..] {
        if let Some(digest) = registry.digest(repository, tag).await? {
            return Ok(Some(immutable_message(repository, tag, &digest)));
        }
    }
    Ok(None)
}

/// Why a tag cannot be added in an IMMUTABLE repository, and what to do.
fn immutable_message(repository: &str, tag: &str, digest: &str) -> String {
    format!(
        "tag `{tag}` already points to {} in the IMMUTABLE repository {repository} and cannot move to the new image; remove `{tag}` from `tags:` or make the repository's tags MUTABLE",
        crate::report::render::short_digest(digest)
    )
}
