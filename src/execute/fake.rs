//! A fake engine and a fake registry sharing one world, for tests of the
//! executor and of what people see of a run: builds that succeed or fail by
//! name, pushes that land in the fake registry, tags it refuses.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;

use oci_registry::Credentials;
use oci_registry::{Manifest, RegistryError};

use super::{Executor, Options, Target};
use crate::build::engine::{BuildLine, BuildRequest, PushOutput, StepInfo};
use crate::build::engine::{Engine, EngineError};
use crate::discover::Service;
use crate::plan::context::Listing;
use crate::plan::git::GitInfo;
use crate::plan::record::InputRecord;
use crate::plan::resolve::{self, Force, Store};
use crate::plan::{Plan, Step};
use crate::report::Silent;
use crate::report::{Reporter, ServiceResult};
use oci_registry::{Auth, Registry};
use std::sync::atomic::Ordering;

/// What both fakes share: the registry's tags, and what happened.
#[derive(Default)]
pub(crate) struct World {
    /// (repository, tag) -> digest.
    pub(crate) tags: HashMap<(String, String), String>,
    /// Events in order: `build a`, `push a`, `put a:latest`.
    pub(crate) log: Vec<String>,
    /// Services whose build fails.
    pub(crate) broken: Vec<String>,
    /// Tags the registry refuses, as `repository:tag`.
    pub(crate) refused: Vec<String>,
    /// Per repository, the errors its next pushes fail with, in order
    /// (`unauthorized…` is a login failure, anything else the engine's
    /// push error text).
    pub(crate) push_errors: HashMap<String, Vec<String>>,
    /// Per repository, a digest another run pushes to the content tag
    /// right after ours lands (the cross-machine race).
    pub(crate) pushed_over: HashMap<String, String>,
    /// Per repository, a digest another run pushed to the content tag
    /// just before ours (after our check that it is not there).
    pub(crate) pushed_first: HashMap<String, String>,
    /// How long a build that succeeds takes (default 60 ms).
    pub(crate) build_ms: Option<u64>,
    /// How pushes are retried (default: never).
    pub(crate) retry: Option<oci_registry::RetryPolicy>,
}

#[derive(Clone, Default)]
pub(crate) struct Fakes {
    pub(crate) world: Arc<Mutex<World>>,
    /// Notified when a build starts; a push may wait for it.
    pub(crate) build_started: Arc<Notify>,
    /// The first push waits for another build to start.
    pub(crate) push_waits_for_a_build: Arc<std::sync::atomic::AtomicBool>,
}

impl Fakes {
    pub(crate) fn log(&self) -> Vec<String> {
        self.world.lock().unwrap().log.clone()
    }
}

/// What the fake engine says it is.
pub(crate) fn info() -> crate::build::engine::EngineInfo {
    crate::build::engine::EngineInfo {
        endpoint: "unix:///fake.sock".into(),
        source: "the test".into(),
        version: "20.10.24".into(),
        api: "1.41".into(),
        os: "linux".into(),
        no_buildkit: None,
    }
}

/// What a fake engine without BuildKit says it is (as a `tls:` engine).
pub(crate) fn info_without_buildkit() -> crate::build::engine::EngineInfo {
    crate::build::engine::EngineInfo {
        no_buildkit: Some(
            "pipeline does not open BuildKit sessions over TLS yet; the classic builder works"
                .into(),
        ),
        ..info()
    }
}

/// A digest made from `text`, so each repository has its own.
pub(crate) fn digest_of(text: &str) -> String {
    use sha2::Digest;
    format!(
        "sha256:{}",
        hex::encode(sha2::Sha256::digest(text.as_bytes()))
    )
}

/// `repo/name:tag` → (`repo/name` without the registry host, tag).
fn split(reference: &str) -> (String, String) {
    let (repo, tag) = reference.rsplit_once(':').unwrap();
    let repo = repo.split_once('/').map_or(repo, |(_, r)| r);
    (repo.to_string(), tag.to_string())
}

#[async_trait]
impl Engine for Fakes {
    async fn build(
        &self,
        request: BuildRequest,
        _context: Listing,
        on_line: &mut (dyn FnMut(BuildLine) + Send),
    ) -> Result<String, EngineError> {
        let (repo, _) = split(&request.tag);
        let name = repo.rsplit('/').next().unwrap().to_string();
        self.world.lock().unwrap().log.push(format!("build {name}"));
        self.build_started.notify_waiters();
        let step = |index, instruction: &str| {
            Some(StepInfo {
                index,
                count: 2,
                instruction: instruction.into(),
            })
        };
        let from = step(1, "FROM local/busybox:1");
        let run = step(2, "RUN make");
        on_line(BuildLine {
            line: "Step 1/2 : FROM local/busybox:1".into(),
            step: from.clone(),
        });
        on_line(BuildLine {
            line: " ---> 3f57d9401f8d".into(),
            step: from,
        });
        on_line(BuildLine {
            line: "Step 2/2 : RUN make".into(),
            step: run.clone(),
        });
        // A broken build fails after a moment; the others take longer, so
        // that builds started together are still running when one fails.
        let broken = self.world.lock().unwrap().broken.contains(&name);
        if broken {
            tokio::time::sleep(Duration::from_millis(10)).await;
            on_line(BuildLine {
                line: "make: *** [all] Error 2".into(),
                step: run.clone(),
            });
            return Err(EngineError::Build {
                step: run.map(|s| format!("Step {}/{} : {}", s.index, s.count, s.instruction)),
                message: "The command '/bin/sh -c make' returned a non-zero code: 2".into(),
                output: Vec::new(),
            });
        }
        let ms = self.world.lock().unwrap().build_ms.unwrap_or(60);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        on_line(BuildLine {
            line: format!("Successfully built {}", &digest_of(&name)[7..19]),
            step: run,
        });
        Ok(format!("sha256:image-{name}"))
    }

    async fn tag(&self, _: &str, _: &str, _: &str) -> Result<(), EngineError> {
        Ok(())
    }

    async fn image_id(&self, _: &str) -> Result<Option<String>, EngineError> {
        Ok(None)
    }

    async fn alive(&self) -> bool {
        true
    }

    async fn push(
        &self,
        repository: &str,
        tag: &str,
        _: Option<Credentials>,
        _: &mut (dyn FnMut(PushOutput) + Send),
    ) -> Result<(), EngineError> {
        if self.push_waits_for_a_build.swap(false, Ordering::SeqCst) {
            tokio::time::timeout(Duration::from_secs(5), self.build_started.notified())
                .await
                .map_err(|_| EngineError::Push("no other build started while pushing".into()))?;
        }
        let (repo, _) = split(&format!("{repository}:{tag}"));
        let mut world = self.world.lock().unwrap();
        world.log.push(format!("push {repo}"));
        if let Some(other) = world.pushed_first.remove(&repo) {
            world.tags.insert((repo.clone(), tag.to_string()), other);
        }
        if let Some(errors) = world.push_errors.get_mut(&repo)
            && !errors.is_empty()
        {
            let error = errors.remove(0);
            return Err(match error.starts_with("unauthorized") {
                true => EngineError::Unauthorized(error),
                false => EngineError::Push(error),
            });
        }
        world
            .tags
            .insert((repo.clone(), tag.to_string()), digest_of(&repo));
        if let Some(other) = world.pushed_over.remove(&repo) {
            world.tags.insert((repo.clone(), tag.to_string()), other);
        }
        Ok(())
    }
}

#[async_trait]
impl Registry for Fakes {
    async fn ping(&self) -> Result<(), RegistryError> {
        Ok(())
    }

    async fn digest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<String>, RegistryError> {
        let world = self.world.lock().unwrap();
        Ok(world
            .tags
            .get(&(repository.to_string(), reference.to_string()))
            .cloned())
    }

    async fn manifest(&self, _: &str, reference: &str) -> Result<Manifest, RegistryError> {
        Ok(Manifest {
            bytes: bytes::Bytes::from_static(b"{}"),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            digest: reference.to_string(),
        })
    }

    async fn put_manifest(
        &self,
        repository: &str,
        tag: &str,
        manifest: &Manifest,
    ) -> Result<String, RegistryError> {
        let mut world = self.world.lock().unwrap();
        if world.refused.contains(&format!("{repository}:{tag}")) {
            return Err(RegistryError::Status {
                method: reqwest::Method::PUT,
                url: format!("http://fake/v2/{repository}/manifests/{tag}"),
                status: 400,
                retry_after: None,
                body: "ImageTagAlreadyExists".into(),
            });
        }
        world.log.push(format!("put {repository}:{tag}"));
        world.tags.insert(
            (repository.to_string(), tag.to_string()),
            manifest.digest.clone(),
        );
        Ok(manifest.digest.clone())
    }
}

pub(crate) fn step(name: &str, requires: &[&str]) -> Step {
    let digest = format!("sha256:{:0>64}", name.len());
    Step {
        service: Service {
            name: name.into(),
            dockerfile: format!("services/{name}/Dockerfile"),
            context: format!("services/{name}"),
            target: None,
            build_args: BTreeMap::new(),
            requires: requires.iter().map(|r| r.to_string()).collect(),
            platform: None,
            repository: format!("shop/{name}"),
            builder: Default::default(),
            network: Default::default(),
            secrets: BTreeMap::new(),
        },
        content_tag: format!("in-{name}"),
        tags: vec![format!("in-{name}"), "latest".into()],
        input_digest: digest,
        listing: Listing {
            entries: Vec::new(),
            ignore: Default::default(),
            reach: None,
            dockerfile: "Dockerfile".into(),
        },
        record: InputRecord {
            service: name.into(),
            dockerfile: String::new(),
            dockerfile_sha256: String::new(),
            target: None,
            platform: None,
            builder: None,
            secrets: Vec::new(),
            build_args: BTreeMap::new(),
            requires: BTreeMap::new(),
            files: BTreeMap::new(),
        },
        last: None,
        dockerfile: None,
        missing_sources: Vec::new(),
    }
}

pub(crate) fn plan(steps: Vec<Step>) -> Plan {
    Plan {
        steps,
        git: GitInfo::default(),
        hashed: (0, 0),
    }
}

/// `step` with this Dockerfile, read as the plan reads it.
pub(crate) fn with_dockerfile(mut step: Step, text: &str) -> Step {
    step.dockerfile = Some(Arc::new(
        dockerfile::Dockerfile::parse(text).expect("the test's Dockerfile parses"),
    ));
    step
}

/// One fake engine of a pool: its name, and whether it offers BuildKit.
pub(crate) struct FakeEngine {
    pub(crate) name: &'static str,
    pub(crate) buildkit: bool,
}

/// A service name (`prefix` and a number) whose hash picks engine `index`
/// of `pool`.
pub(crate) fn preferring(pool: &super::pool::Pool, prefix: &str, index: usize) -> String {
    (0..)
        .map(|i| format!("{prefix}{i}"))
        .find(|n| pool.preferred(n) == index)
        .unwrap()
}

/// A pool of fake engines sharing `fakes`' world, `jobs` slots each.
pub(crate) fn pool(fakes: &Fakes, engines: &[FakeEngine], jobs: usize) -> super::pool::Pool {
    super::pool::Pool::new(
        engines
            .iter()
            .map(|e| {
                super::pool::Member::new(
                    e.name.into(),
                    Arc::new(fakes.clone()),
                    match e.buildkit {
                        true => info(),
                        false => info_without_buildkit(),
                    },
                    super::Builders {
                        buildkit: e.buildkit,
                        frontend: dockerfile::Frontend::DOCKER_20_10,
                    },
                    jobs,
                    Vec::new(),
                )
            })
            .collect(),
    )
}

/// Looks the plan up in the fake registry, decides and executes it on one
/// engine with BuildKit, reporting to `reporter`.
pub(crate) async fn run_reported(
    fakes: &Fakes,
    plan: &Plan,
    jobs: usize,
    keep_going: bool,
    reporter: &dyn Reporter,
) -> BTreeMap<String, ServiceResult> {
    let pool = pool(
        fakes,
        &[FakeEngine {
            name: "unix:///fake.sock",
            buildkit: true,
        }],
        jobs,
    );
    run_on(fakes, plan, &pool, keep_going, reporter).await
}

/// [`run_reported`] on `pool`.
pub(crate) async fn run_on(
    fakes: &Fakes,
    plan: &Plan,
    pool: &super::pool::Pool,
    keep_going: bool,
    reporter: &dyn Reporter,
) -> BTreeMap<String, ServiceResult> {
    let registry: Arc<dyn Registry> = Arc::new(fakes.clone());
    let store = Store::Registry {
        registry: registry.as_ref(),
        repositories: None,
    };
    let force = Force::default();
    let found = resolve::look_up(plan, &store, &force, reporter).await;
    let decided = resolve::decide(plan, found, &store, &force);
    let logs = std::env::temp_dir().join(format!("pipeline-exec-test-{}", std::process::id()));
    let executor = Executor {
        plan,
        pool,
        target: Target::Registry {
            host: "registry.test".into(),
            registry,
            auth: Arc::new(Auth::new(None, None)),
            repositories: None,
        },
        options: Options {
            push_jobs: 2,
            content_tags_only: false,
            keep_going,
            secrets: HashMap::new(),
            retry: fakes
                .world
                .lock()
                .unwrap()
                .retry
                .clone()
                .unwrap_or_else(oci_registry::RetryPolicy::never),
            logs_dir: logs,
            labels: BTreeMap::new(),
        },
        reporter,
    };
    tokio::time::timeout(Duration::from_secs(20), executor.execute(decided))
        .await
        .expect("the executor finishes")
}

/// [`run_reported`] with no view.
pub(crate) async fn run(
    fakes: &Fakes,
    plan: &Plan,
    jobs: usize,
    keep_going: bool,
) -> BTreeMap<String, ServiceResult> {
    run_reported(fakes, plan, jobs, keep_going, &Silent).await
}
