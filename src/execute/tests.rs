//! The executor against a fake engine and a fake registry: the scheduling
//! rules that the stack tests can only show one at a time, each checked on
//! what the fakes saw.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;

use oci_registry::Credentials;
use oci_registry::{Manifest, RegistryError};

use super::*;
use crate::build::engine::{BuildLine, BuildRequest, PushOutput};
use crate::discover::Service;
use crate::plan::context::Listing;
use crate::plan::git::GitInfo;
use crate::plan::record::InputRecord;
use crate::plan::resolve::{self, Force, Store};
use crate::report::Silent;

/// What both fakes share: the registry's tags, and what happened.
#[derive(Default)]
struct World {
    /// (repository, tag) -> digest.
    tags: HashMap<(String, String), String>,
    /// Events in order: `build a`, `push a`, `put a:latest`.
    log: Vec<String>,
    /// Services whose build fails.
    broken: Vec<String>,
    /// Tags the registry refuses, as `repository:tag`.
    refused: Vec<String>,
}

#[derive(Clone, Default)]
struct Fakes {
    world: Arc<Mutex<World>>,
    /// Notified when a build starts; a push may wait for it.
    build_started: Arc<Notify>,
    /// The first push waits for another build to start.
    push_waits_for_a_build: Arc<std::sync::atomic::AtomicBool>,
}

impl Fakes {
    fn log(&self) -> Vec<String> {
        self.world.lock().unwrap().log.clone()
    }
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
        on_line(BuildLine {
            line: format!("building {name}"),
            step: Some("Step 1/1 : RUN true".into()),
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        if self.world.lock().unwrap().broken.contains(&name) {
            return Err(EngineError::Build {
                step: Some("Step 1/1 : RUN false".into()),
                message: "exit code 1".into(),
            });
        }
        Ok(format!("sha256:image-{name}"))
    }

    async fn tag(&self, _: &str, _: &str, _: &str) -> Result<(), EngineError> {
        Ok(())
    }

    async fn image_id(&self, _: &str) -> Result<Option<String>, EngineError> {
        Ok(None)
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
        world
            .tags
            .insert((repo.clone(), tag.to_string()), format!("sha256:{repo}"));
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

fn step(name: &str, requires: &[&str]) -> Step {
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
            build_args: BTreeMap::new(),
            requires: BTreeMap::new(),
            files: BTreeMap::new(),
        },
        last: None,
    }
}

fn plan(steps: Vec<Step>) -> Plan {
    Plan {
        steps,
        git: GitInfo::default(),
        hashed: (0, 0),
    }
}

/// Looks the plan up in the fake registry, decides and executes it.
async fn run(
    fakes: &Fakes,
    plan: &Plan,
    jobs: usize,
    keep_going: bool,
) -> BTreeMap<String, ServiceResult> {
    let registry: Arc<dyn Registry> = Arc::new(fakes.clone());
    let store = Store::Registry {
        registry: registry.as_ref(),
        repositories: None,
    };
    let force = Force::default();
    let found = resolve::look_up(plan, &store, &force, &Silent).await;
    let decided = resolve::decide(plan, found, &store, &force);
    let logs = std::env::temp_dir().join(format!("pipeline-exec-test-{}", std::process::id()));
    let executor = Executor {
        plan,
        engine: fakes,
        target: Target::Registry {
            host: "registry.test".into(),
            registry,
            auth: Arc::new(Auth::new(None, None)),
            repositories: None,
        },
        options: Options {
            jobs,
            push_jobs: 2,
            keep_going,
            logs_dir: logs,
            labels: BTreeMap::new(),
        },
        reporter: &Silent,
    };
    tokio::time::timeout(Duration::from_secs(20), executor.execute(decided))
        .await
        .expect("the executor finishes")
}

#[tokio::test]
async fn a_failed_requirement_skips_its_dependents() {
    let fakes = Fakes::default();
    fakes.world.lock().unwrap().broken.push("base".into());
    let plan = plan(vec![step("base", &[]), step("app", &["base"])]);
    let results = run(&fakes, &plan, 2, true).await;
    assert_eq!(results["base"].status, Status::Failed);
    assert_eq!(
        results["base"].error.as_deref(),
        Some("build failed: at `Step 1/1 : RUN false`: exit code 1")
    );
    assert_eq!(results["app"].status, Status::Skipped);
    assert!(
        results["app"]
            .error
            .as_deref()
            .unwrap()
            .contains("requirement `base` failed"),
    );
    assert!(!fakes.log().contains(&"build app".to_string()));
}

#[tokio::test]
async fn without_keep_going_a_failure_stops_services_not_yet_started() {
    let fakes = Fakes::default();
    fakes.world.lock().unwrap().broken.push("a".into());
    // One build slot: b and c wait behind a, which fails.
    let plan = plan(vec![step("a", &[]), step("b", &[]), step("c", &[])]);
    let results = run(&fakes, &plan, 1, false).await;
    assert_eq!(results["a"].status, Status::Failed);
    for name in ["b", "c"] {
        assert_eq!(results[name].status, Status::Skipped, "{name}");
        assert!(
            results[name]
                .error
                .as_deref()
                .unwrap()
                .contains("--keep-going")
        );
    }
    assert_eq!(fakes.log(), ["build a"]);

    // With --keep-going they are built and pushed under their content tag.
    let fakes = Fakes::default();
    fakes.world.lock().unwrap().broken.push("a".into());
    let results = run(&fakes, &plan, 1, true).await;
    assert_eq!(results["b"].status, Status::Built);
    assert_eq!(results["c"].status, Status::Built);
}

#[tokio::test]
async fn other_tags_only_when_every_service_succeeded() {
    let fakes = Fakes::default();
    fakes.world.lock().unwrap().broken.push("b".into());
    let plan = plan(vec![step("a", &[]), step("b", &[])]);
    let results = run(&fakes, &plan, 2, true).await;
    assert_eq!(results["a"].status, Status::Built);
    assert_eq!(results["a"].tags, ["in-a"]);
    assert!(
        !fakes.log().iter().any(|l| l.starts_with("put ")),
        "no tag was added: {:?}",
        fakes.log()
    );

    let fakes = Fakes::default();
    let results = run(&fakes, &plan, 2, false).await;
    assert_eq!(results["a"].tags, ["in-a", "latest"]);
    assert_eq!(results["b"].tags, ["in-b", "latest"]);
    let log = fakes.log();
    let last_push = log.iter().rposition(|l| l.starts_with("push ")).unwrap();
    let first_put = log.iter().position(|l| l.starts_with("put ")).unwrap();
    assert!(
        last_push < first_put,
        "latest moves after every push: {log:?}"
    );
}

#[tokio::test]
async fn a_refused_tag_fails_its_service_only() {
    let fakes = Fakes::default();
    fakes
        .world
        .lock()
        .unwrap()
        .refused
        .push("shop/a:latest".into());
    let plan = plan(vec![step("a", &[]), step("b", &[])]);
    let results = run(&fakes, &plan, 2, false).await;
    assert_eq!(results["a"].status, Status::Failed);
    let error = results["a"].error.as_deref().unwrap();
    assert!(
        error.starts_with(
            "tag failed: tag `latest` was refused: the repository's tags are immutable"
        ),
        "{error}"
    );
    assert_eq!(results["a"].digest.as_deref(), Some("sha256:shop/a"));
    assert_eq!(results["b"].status, Status::Built);
    assert_eq!(results["b"].tags, ["in-b", "latest"]);
}

#[tokio::test]
async fn the_build_slot_is_free_before_the_push() {
    // One build slot, and a's push only finishes once another build has
    // started: were the slot held through the push, b could never start.
    let fakes = Fakes::default();
    fakes.push_waits_for_a_build.store(true, Ordering::SeqCst);
    let plan = plan(vec![step("a", &[]), step("b", &[])]);
    let results = run(&fakes, &plan, 1, false).await;
    assert_eq!(
        results["a"].status,
        Status::Built,
        "{:?}",
        results["a"].error
    );
    let log = fakes.log();
    let b_build = log.iter().position(|l| l == "build b").unwrap();
    let a_push = log.iter().position(|l| l == "push shop/a").unwrap();
    assert!(b_build < a_push, "{log:?}");
}

#[tokio::test]
async fn a_cached_service_is_neither_built_nor_pushed() {
    let fakes = Fakes::default();
    fakes.world.lock().unwrap().tags.insert(
        ("shop/base".into(), "in-base".into()),
        "sha256:cached".into(),
    );
    let plan = plan(vec![step("base", &[]), step("app", &["base"])]);
    let results = run(&fakes, &plan, 2, false).await;
    assert_eq!(results["base"].status, Status::Cached);
    assert_eq!(results["base"].digest.as_deref(), Some("sha256:cached"));
    assert_eq!(
        results["base"].reason.as_deref(),
        Some("tag in-base in registry")
    );
    assert_eq!(results["app"].status, Status::Built);
    assert!(!fakes.log().contains(&"build base".to_string()));
    assert!(fakes.log().contains(&"put shop/base:latest".to_string()));
}
