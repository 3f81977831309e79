//! A pool of two Docker engines on this machine: the stack's engine and a
//! second `dockerd` with its own data root and socket (`scripts/stack`
//! starts it; `PIPELINE_TEST_ENGINE_B`). Checked with each engine's own
//! image list and with skopeo. These tests stop engine B, so they take
//! turns.

use std::sync::Mutex;

use crate::common::*;

static ENGINE_B: Mutex<()> = Mutex::new(());

const ENGINE_A: &str = "unix:///var/run/docker.sock";

fn engine_b() -> String {
    env("PIPELINE_TEST_ENGINE_B")
}

/// Runs `docker` against the engine at `host`.
fn docker_on(host: &str, args: &[&str]) -> String {
    let mut all = vec!["-H", host];
    all.extend_from_slice(args);
    docker(&all)
}

/// The repositories of this test's images that `host` holds, with tags.
fn images_on(host: &str, r: &Repo) -> Vec<String> {
    let mut images: Vec<String> =
        docker_on(host, &["images", "--format", "{{.Repository}}:{{.Tag}}"])
            .lines()
            .filter(|l| l.contains(&r.prefix))
            .map(str::to_string)
            .collect();
    images.sort();
    images
}

fn stack(command: &str) {
    let status = std::process::Command::new("scripts/stack")
        .arg(command)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("scripts/stack");
    assert!(status.success(), "scripts/stack {command}");
}

/// Starts engine B again when the test that stopped it ends, failed or not.
struct RestartB;

impl Drop for RestartB {
    fn drop(&mut self) {
        stack("engine-b-start");
    }
}

fn pool_config(r: &Repo, builders: &str, extra: &str) {
    r.config(&format!("builders:\n{builders}{extra}"));
}

fn two_engines(jobs: usize) -> String {
    format!(
        "  - host: {ENGINE_A}\n    jobs: {jobs}\n  - host: {}\n    jobs: {jobs}\n",
        engine_b()
    )
}

#[test]
fn services_are_spread_over_both_engines_and_each_holds_its_share() {
    let _turn = ENGINE_B.lock().unwrap_or_else(|e| e.into_inner());
    let r = Repo::new("pool-spread");
    let names = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"];
    for name in names {
        r.file(
            &format!("services/{name}/Dockerfile"),
            "FROM local/busybox:1\nCOPY app.txt /app.txt\nRUN sleep 1\n",
        )
        .file(&format!("services/{name}/app.txt"), name);
    }
    pool_config(&r, &two_engines(1), "tags: [latest]\n");
    r.commit();
    r.pipeline().args(["run"]).expect(0);
    let results = r.results();
    let on = |host: &str| -> Vec<String> {
        let mut expected: Vec<String> = names
            .iter()
            .filter(|n| results["services"][**n]["builder"] == host)
            .map(|n| {
                let s = &results["services"][*n];
                format!(
                    "{}:{}",
                    s["repository"].as_str().unwrap(),
                    s["tags"][0].as_str().unwrap()
                )
            })
            .collect();
        expected.sort();
        expected
    };
    let (on_a, on_b) = (on(ENGINE_A), on(&engine_b()));
    assert_eq!(on_a.len() + on_b.len(), names.len(), "{results}");
    assert!(
        !on_a.is_empty() && !on_b.is_empty(),
        "both engines built: A {on_a:?}, B {on_b:?}"
    );
    // Each engine holds exactly the images the results say it built.
    assert_eq!(images_on(ENGINE_A, &r), on_a);
    assert_eq!(images_on(&engine_b(), &r), on_b);
    for name in names {
        let digest = r.digest(name);
        for tag in [
            "latest",
            results["services"][name]["tags"][0].as_str().unwrap(),
        ] {
            let reference = format!("{}:{tag}", r.repository(name));
            assert_eq!(skopeo_digest(&reference).as_deref(), Some(digest.as_str()));
        }
    }
    // The same tree again: nothing to build, wherever it was built.
    let out = r.pipeline().args(["run", "--output", "json"]).expect(0);
    let again: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    for name in names {
        assert_eq!(again["services"][name]["status"], "cached");
    }
}

#[test]
fn a_requirement_built_on_one_engine_is_pulled_by_its_dependent_on_the_other() {
    let _turn = ENGINE_B.lock().unwrap_or_else(|e| e.into_inner());
    let r = Repo::new("pool-requires");
    r.file(
        "services/base/Dockerfile",
        "FROM local/busybox:1\nCOPY base.txt /etc/base.txt\n",
    )
    .file("services/base/base.txt", "base from engine A\n")
    .file(
        "services/app/Dockerfile",
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN cat /etc/base.txt > /app.txt\n",
    );
    // Platforms pin base to A and app to B: `linux/x86_64` is the engine's
    // alias of `linux/amd64`, so both build natively, but only B lists it.
    pool_config(
        &r,
        &format!(
            "  - host: {ENGINE_A}\n    platforms: [linux/amd64]\n  - host: {}\n    platforms: [linux/x86_64]\n",
            engine_b()
        ),
        "services:\n  base:\n    platform: linux/amd64\n  app:\n    requires: [base]\n    platform: linux/x86_64\n",
    );
    r.commit();
    r.pipeline().args(["run"]).expect(0);
    let results = r.results();
    assert_eq!(results["services"]["base"]["builder"], ENGINE_A);
    assert_eq!(results["services"]["app"]["builder"], engine_b());
    // B pulled base from the registry, by digest: app, on B, is built on
    // the layers base has on A (layer ids are content digests).
    let base = format!("{}@{}", r.repository("base"), r.digest("base"));
    let app = format!("{}@{}", r.repository("app"), r.digest("app"));
    let layers = |host: &str, image: &str| {
        docker_on(
            host,
            &["image", "inspect", "-f", "{{json .RootFS.Layers}}", image],
        )
    };
    let (base_layers, app_layers) = (layers(ENGINE_A, &base), layers(&engine_b(), &app));
    let content_tag = results["services"]["base"]["tags"][0].as_str().unwrap();
    let built_on_b = format!("{}:{content_tag}", r.repository("base"));
    assert!(
        !images_on(&engine_b(), &r).contains(&built_on_b),
        "B never built base itself: {:?}",
        images_on(&engine_b(), &r)
    );
    assert!(
        app_layers.starts_with(base_layers.trim_end_matches(']')),
        "app is built FROM this run's base:\n app {app_layers}\nbase {base_layers}"
    );
    let log = r.read(".pipeline/logs/app.log");
    assert!(
        log.contains(&format!("building on {}", engine_b())),
        "{log}"
    );
    assert_eq!(
        docker_on(
            &engine_b(),
            &["run", "--rm", "--network", "none", &app, "cat", "/app.txt"]
        ),
        "base from engine A"
    );
}

#[test]
fn an_engine_lost_mid_run_has_its_builds_retried_on_the_other() {
    let _turn = ENGINE_B.lock().unwrap_or_else(|e| e.into_inner());
    let _restart = RestartB;
    let r = Repo::new("pool-lost");
    let names = ["one", "two", "three", "four"];
    for name in names {
        r.file(
            &format!("services/{name}/Dockerfile"),
            "FROM local/busybox:1\nCOPY app.txt /app.txt\nRUN echo started && sleep 4\n",
        )
        // Unique to this run, so nothing comes from an earlier run's cache.
        .file(
            &format!("services/{name}/app.txt"),
            &format!("{name} {}", r.prefix),
        );
    }
    pool_config(&r, &two_engines(2), "tags: [latest]\n");
    r.commit();
    let run = r.pipeline().args(["run", "--progress", "plain"]).start();
    // Once a build runs on B, B goes away.
    let on_b = format!("building on {}", engine_b());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    'wait: loop {
        for name in names {
            let log = std::fs::read_to_string(r.dir.join(format!(".pipeline/logs/{name}.log")))
                .unwrap_or_default();
            if log.contains(&on_b) && log.contains("started") {
                break 'wait;
            }
        }
        assert!(std::time::Instant::now() < deadline, "no build ran on B");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    stack("engine-b-stop");
    let out = run.finish();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("engine {} does not answer any more", engine_b()))
            && out.stderr.contains("building again on another"),
        "{}",
        out.stderr
    );
    let results = r.results();
    for name in names {
        let s = &results["services"][name];
        assert_eq!(s["status"], "built", "{name}: {s}");
        let digest = s["digest"].as_str().unwrap();
        let latest = skopeo_digest(&format!("{}:latest", r.repository(name)));
        assert_eq!(latest.as_deref(), Some(digest), "{name}");
    }
    // What B was building was built again on A.
    let retried: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| {
            std::fs::read_to_string(r.dir.join(format!(".pipeline/logs/{n}.log")))
                .unwrap_or_default()
                .contains(&on_b)
        })
        .collect();
    assert!(!retried.is_empty());
    for name in retried {
        assert_eq!(results["services"][name]["builder"], ENGINE_A, "{name}");
    }
}

#[test]
fn an_unreachable_builder_is_reported_and_left_out() {
    let _turn = ENGINE_B.lock().unwrap_or_else(|e| e.into_inner());
    let r = Repo::new("pool-unreachable");
    r.file(
        "services/solo/Dockerfile",
        "FROM local/busybox:1\nRUN true\n",
    );
    let gone = "unix:///var/tmp/pipeline-stack/no-such-engine.sock";
    pool_config(&r, &format!("  - host: {gone}\n  - host: {ENGINE_A}\n"), "");
    r.commit();
    let out = r.pipeline().args(["run"]).expect(0);
    assert!(
        out.stderr.contains(&format!("builder {gone} is left out")),
        "{}",
        out.stderr
    );
    assert_eq!(r.results()["services"]["solo"]["builder"], ENGINE_A);
    // A local build takes the first builder that answers.
    r.pipeline().args(["build", "solo"]).expect(0);
    // doctor checks each builder, and says what to do about the dead one.
    let doctor = r.pipeline().args(["doctor", "--output", "json"]).expect(1);
    let checks: serde_json::Value = serde_json::from_str(&doctor.stdout).unwrap();
    let check = |name: String| {
        checks
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name.as_str())
            .unwrap_or_else(|| panic!("no check {name}: {checks}"))
            .clone()
    };
    let dead = check(format!("builder {gone}"));
    assert_eq!(dead["status"], "fail", "{dead}");
    assert!(
        dead["fix"]
            .as_str()
            .unwrap()
            .contains("remove it from builders:"),
        "{dead}"
    );
    let alive = check(format!("builder {ENGINE_A}"));
    assert_eq!(alive["status"], "pass", "{alive}");
    assert!(
        alive["detail"].as_str().unwrap().contains("API 1."),
        "{alive}"
    );
    // With none left: exit 3, naming it.
    pool_config(&r, &format!("  - host: {gone}\n"), "");
    let out = r.pipeline().args(["run"]).expect(3);
    assert!(
        out.stderr.contains("no builder could be reached") && out.stderr.contains(gone),
        "{}",
        out.stderr
    );
}
