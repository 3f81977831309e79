//! The executor against a fake engine and a fake registry: the scheduling
//! rules that the stack tests can only show one at a time, each checked on
//! what the fakes saw.

use std::sync::atomic::Ordering;

use super::fake::{
    FakeEngine, Fakes, digest_of, plan, pool, preferring, run, run_on, step, with_dockerfile,
};
use crate::report::{Silent, Status};

#[tokio::test]
async fn a_failed_requirement_skips_its_dependents() {
    let fakes = Fakes::default();
    fakes.world.lock().unwrap().broken.push("base".into());
    let plan = plan(vec![step("base", &[]), step("app", &["base"])]);
    let results = run(&fakes, &plan, 2, true).await;
    assert_eq!(results["base"].status, Status::Failed);
    assert_eq!(
        results["base"].error.as_deref(),
        Some(
            "build failed: at `Step 2/2 : RUN make`: The command '/bin/sh -c make' returned a non-zero code: 2"
        )
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
    assert_eq!(results["a"].digest, Some(digest_of("shop/a")));
    assert_eq!(results["b"].status, Status::Built);
    assert_eq!(results["b"].tags, ["in-b", "latest"]);
}

/// Quick retries, for the tests of them.
fn quick(retries: u32) -> oci_registry::RetryPolicy {
    use std::time::Duration;
    oci_registry::RetryPolicy {
        retries,
        window: Duration::from_secs(10),
        min_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
    }
}

fn pushes(fakes: &Fakes, repository: &str) -> usize {
    let push = format!("push {repository}");
    fakes.log().iter().filter(|l| **l == push).count()
}

#[tokio::test]
async fn transient_push_errors_are_retried_and_final_ones_are_not() {
    let fakes = Fakes::default();
    {
        let mut world = fakes.world.lock().unwrap();
        world.retry = Some(quick(3));
        world.push_errors.insert(
            "shop/a".into(),
            vec![
                "received unexpected HTTP status: 503 Service Unavailable".into(),
                "toomanyrequests: Rate exceeded".into(),
            ],
        );
        world.push_errors.insert(
            "shop/b".into(),
            vec!["denied: requested access to the resource is denied".into()],
        );
        world.push_errors.insert(
            "shop/c".into(),
            vec!["read: connection reset by peer".into(); 9],
        );
    }
    let plan = plan(vec![step("a", &[]), step("b", &[]), step("c", &[])]);
    let results = run(&fakes, &plan, 3, true).await;
    assert_eq!(
        results["a"].status,
        Status::Built,
        "{:?}",
        results["a"].error
    );
    assert_eq!(pushes(&fakes, "shop/a"), 3);
    // Final: one attempt, and no "gave up".
    let b = results["b"].error.as_deref().unwrap();
    assert_eq!(pushes(&fakes, "shop/b"), 1);
    assert!(b.contains("denied") && !b.contains("attempts"), "{b}");
    // Transient for longer than the retries: the count is in the error.
    let c = results["c"].error.as_deref().unwrap();
    assert_eq!(pushes(&fakes, "shop/c"), 4);
    assert!(c.ends_with("(gave up after 4 attempts)"), "{c}");
}

#[tokio::test]
async fn an_engine_login_failure_is_retried_when_our_login_works() {
    // The engine calls a 503 on its `/v2/` ping "unauthorized"; the fake
    // registry (our own client) answers, so the push is tried again.
    let fakes = Fakes::default();
    {
        let mut world = fakes.world.lock().unwrap();
        world.retry = Some(quick(2));
        world.push_errors.insert(
            "shop/a".into(),
            vec!["unauthorized: authentication required".into()],
        );
    }
    let results = run(&fakes, &plan(vec![step("a", &[])]), 1, false).await;
    assert_eq!(
        results["a"].status,
        Status::Built,
        "{:?}",
        results["a"].error
    );
    assert_eq!(pushes(&fakes, "shop/a"), 2);
}

#[tokio::test]
async fn a_content_tag_another_run_pushed_is_the_one_recorded_and_tagged() {
    let fakes = Fakes::default();
    let theirs = digest_of("the other run's image");
    {
        let mut world = fakes.world.lock().unwrap();
        // a: replaced right after our push lands.
        world.pushed_over.insert("shop/a".into(), theirs.clone());
        // b: theirs lands just before ours, and the IMMUTABLE repository
        // refuses ours.
        world.pushed_first.insert("shop/b".into(), theirs.clone());
        world.push_errors.insert(
            "shop/b".into(),
            vec!["tag invalid: The image tag 'in-b' already exists in the 'shop/b' repository and cannot be overwritten because the repository is immutable.".into()],
        );
    }
    let plan = plan(vec![step("a", &[]), step("b", &[])]);
    let results = run(&fakes, &plan, 2, false).await;
    let world = fakes.world.lock().unwrap();
    for name in ["a", "b"] {
        let r = &results[name];
        assert_eq!(r.status, Status::Built, "{name}: {:?}", r.error);
        assert_eq!(r.digest.as_deref(), Some(theirs.as_str()), "{name}");
        assert_eq!(
            world.tags.get(&(format!("shop/{name}"), "latest".into())),
            Some(&theirs),
            "{name}: latest is tagged with the registry's digest, not ours"
        );
    }
}

#[tokio::test]
async fn duration_is_the_time_a_service_took_not_its_wait_for_a_slot() {
    // One slot, three builds of 200 ms: the last waits 400 ms for the slot,
    // which is no part of its duration (`--weights` balances shards by it).
    let fakes = Fakes::default();
    fakes.world.lock().unwrap().build_ms = Some(200);
    let plan = plan(vec![step("a", &[]), step("b", &[]), step("c", &[])]);
    let results = run(&fakes, &plan, 1, false).await;
    for (name, r) in &results {
        assert!(
            (200..390).contains(&r.duration_ms),
            "{name}: {} ms",
            r.duration_ms
        );
    }
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

const WITH_BUILDKIT: FakeEngine = FakeEngine {
    name: "unix:///buildkit.sock",
    buildkit: true,
};
const WITHOUT_BUILDKIT: FakeEngine = FakeEngine {
    name: "tcp://tls-engine:2376",
    buildkit: false,
};

const CACHE_MOUNT: &str = "FROM local/busybox:1\nRUN --mount=type=cache,target=/root/.cache make\n";

#[tokio::test]
async fn an_auto_service_needing_buildkit_builds_on_an_engine_that_offers_it() {
    // `builder: auto` (the default) with `RUN --mount=type=cache`, its name
    // hashed to the engine without BuildKit: built on the other one.
    // Plain services stay on the engine their name picks, either one.
    let fakes = Fakes::default();
    let pool = pool(&fakes, &[WITH_BUILDKIT, WITHOUT_BUILDKIT], 2);
    let mounts = preferring(&pool, "cached-", 1);
    let plain_here = preferring(&pool, "plain-", 0);
    let plain_there = preferring(&pool, "other-", 1);
    let plan = plan(vec![
        with_dockerfile(step(&mounts, &[]), CACHE_MOUNT),
        step(&plain_here, &[]),
        step(&plain_there, &[]),
    ]);
    let results = run_on(&fakes, &plan, &pool, false, &Silent).await;
    for (name, builder) in [
        (&mounts, WITH_BUILDKIT.name),
        (&plain_here, WITH_BUILDKIT.name),
        (&plain_there, WITHOUT_BUILDKIT.name),
    ] {
        let r = &results[name];
        assert_eq!(r.status, Status::Built, "{name}: {:?}", r.error);
        assert_eq!(r.builder.as_deref(), Some(builder), "{name}");
    }
}

#[tokio::test]
async fn with_no_engine_offering_buildkit_the_service_fails_naming_the_need() {
    // One engine or two, none with BuildKit: the service goes where its
    // name says and fails there before the build, naming the line.
    for engines in [
        &[WITHOUT_BUILDKIT][..],
        &[WITHOUT_BUILDKIT, WITHOUT_BUILDKIT],
    ] {
        let fakes = Fakes::default();
        let pool = pool(&fakes, engines, 1);
        let plan = plan(vec![
            with_dockerfile(step("cached", &[]), CACHE_MOUNT),
            step("plain", &[]),
        ]);
        let results = run_on(&fakes, &plan, &pool, true, &Silent).await;
        assert_eq!(results["cached"].status, Status::Failed);
        assert_eq!(
            results["cached"].error.as_deref(),
            Some(
                "build failed: services/cached/Dockerfile:2 uses RUN --mount=type=cache, which needs BuildKit, and this service builds with the classic builder; set `builder: buildkit` (or `auto`, with an engine that offers BuildKit)"
            ),
            "{} engines",
            engines.len()
        );
        assert_eq!(results["plain"].status, Status::Built);
        assert!(!fakes.log().contains(&"build cached".to_string()));
    }
}

#[tokio::test]
async fn a_dependent_builds_next_to_its_requirement_when_that_engine_has_a_free_slot() {
    // base's name picks engine 0, app's engine 1; engine 0 has a slot free
    // once base is built, so app is built there, on base as built in place.
    const OTHER: FakeEngine = FakeEngine {
        name: "unix:///other.sock",
        buildkit: true,
    };
    let fakes = Fakes::default();
    let pool = pool(&fakes, &[WITH_BUILDKIT, OTHER], 2);
    let base = preferring(&pool, "base-", 0);
    let app = preferring(&pool, "app-", 1);
    let loner = preferring(&pool, "loner-", 1);
    let plan = plan(vec![
        step(&base, &[]),
        step(&app, &[&base]),
        step(&loner, &[]),
    ]);
    let results = run_on(&fakes, &plan, &pool, false, &Silent).await;
    for (name, builder) in [
        (&base, WITH_BUILDKIT.name),
        (&app, WITH_BUILDKIT.name),
        (&loner, OTHER.name),
    ] {
        let r = &results[name];
        assert_eq!(r.status, Status::Built, "{name}: {:?}", r.error);
        assert_eq!(r.builder.as_deref(), Some(builder), "{name}");
    }
}
