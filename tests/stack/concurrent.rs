//! Runs side by side: two in one checkout take turns through
//! `.pipeline/lock`; two checkouts of one commit (two CI jobs, two
//! machines) meet only in the registry and must agree with it. Whatever the
//! timing, the results file, every tag (read with skopeo) and the pinned
//! manifest name the same digest.

use crate::common::*;

/// Two services whose images differ on every build (a timestamp inside),
/// so a run that pushes over another is visible as a different digest.
fn racing(name: &str) -> Repo {
    let r = Repo::new(name);
    for service in ["cart", "orders"] {
        r.file(
            &format!("services/{service}/Dockerfile"),
            "FROM local/busybox:1\nCOPY app.txt /app.txt\nRUN sleep 1 && date +%s%N > /built-at\n",
        )
        .file(&format!("services/{service}/app.txt"), service);
    }
    r.file(
        "k8s/app.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  template:\n    spec:\n      containers:\n        - name: cart\n          image: cart:latest\n        - name: orders\n          image: orders:latest\n",
    )
    .config("tags: [latest, \"{git_short}\"]\nmanifests:\n  raw: [k8s/app.yaml]\n");
    r
}

/// The results file, the content tag, `latest`, the git tag and the
/// manifest all name the digest the registry holds.
fn agrees_with_the_registry(r: &Repo, results: &serde_json::Value, short: &str) {
    let manifest = r.read("k8s/app.yaml");
    for service in ["cart", "orders"] {
        let s = &results["services"][service];
        let digest = s["digest"].as_str().unwrap_or_else(|| panic!("{s}"));
        let tags: Vec<&str> = s["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        assert_eq!(tags.len(), 3, "{service}: {tags:?}");
        assert!(
            tags.contains(&"latest") && tags.contains(&short),
            "{tags:?}"
        );
        for tag in tags {
            let registry = skopeo_digest(&format!("{}:{tag}", r.repository(service)));
            assert_eq!(registry.as_deref(), Some(digest), "{service}:{tag}");
        }
        assert!(
            manifest.contains(&format!("{}@{digest}", r.repository(service))),
            "{service} pinned to {digest}:\n{manifest}"
        );
    }
}

#[test]
fn two_runs_in_one_checkout_take_turns() {
    for delay_ms in [0, 700] {
        let r = racing(&format!("turns-{delay_ms}"));
        let short = r.commit();
        let first = r.pipeline().args(["run", "--output", "json"]).start();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let second = r.pipeline().args(["run", "--output", "json"]).start();
        let (a, b) = (first.finish(), second.finish());
        assert_eq!((a.code, b.code), (0, 0), "{}\n---\n{}", a.stderr, b.stderr);
        // Exactly one waited, saying for whom; it found everything cached.
        let (ran, waited) = match b.stderr.contains("waiting for `pipeline run` (pid") {
            true => (a, b),
            false => (b, a),
        };
        assert!(
            waited.stderr.contains("waiting for `pipeline run` (pid")
                && waited.stderr.contains(".pipeline/lock"),
            "one run waits for the other ({delay_ms} ms apart):\n{}\n---\n{}",
            ran.stderr,
            waited.stderr
        );
        assert!(!ran.stderr.contains("waiting for"), "{}", ran.stderr);
        let ran: serde_json::Value = serde_json::from_str(&ran.stdout).unwrap();
        let waited: serde_json::Value = serde_json::from_str(&waited.stdout).unwrap();
        for service in ["cart", "orders"] {
            assert_eq!(ran["services"][service]["status"], "built");
            assert_eq!(waited["services"][service]["status"], "cached");
            assert_eq!(
                ran["services"][service]["digest"],
                waited["services"][service]["digest"]
            );
        }
        assert_eq!(r.results(), waited, "the results file is the last run's");
        agrees_with_the_registry(&r, &waited, &short);
        assert!(
            !r.dir.join(".pipeline/lock").exists(),
            "the lock is released"
        );
    }
}

#[test]
fn a_run_that_may_not_wait_exits_3_naming_the_holder() {
    let r = racing("no-wait");
    r.commit();
    let first = r.pipeline().args(["run"]).start();
    let lock = r.dir.join(".pipeline/lock");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !lock.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the lock never appeared"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = r.pipeline().args(["run", "--no-wait"]).expect(3);
    assert!(
        out.stderr.contains("another run holds")
            && out.stderr.contains(".pipeline/lock")
            && out.stderr.contains("`pipeline run` (pid"),
        "{}",
        out.stderr
    );
    assert_eq!(first.finish().code, 0);
}

#[test]
fn two_checkouts_of_one_commit_agree_with_the_registry() {
    for trial in 0..3 {
        let a = racing(&format!("checkouts-{trial}"));
        let short = a.commit();
        let b = Repo {
            dir: a.dir.with_extension("clone"),
            prefix: a.prefix.clone(),
        };
        let cloned = std::process::Command::new("git")
            .args(["clone", "-q"])
            .arg(&a.dir)
            .arg(&b.dir)
            .status()
            .unwrap();
        assert!(cloned.success());
        let (ra, rb) = (
            a.pipeline().args(["run"]).start(),
            b.pipeline().args(["run"]).start(),
        );
        let (oa, ob) = (ra.finish(), rb.finish());
        assert_eq!(
            (oa.code, ob.code),
            (0, 0),
            "{}\n---\n{}",
            oa.stderr,
            ob.stderr
        );
        // The run that finished last agrees with the registry in full. The
        // other does too, unless it had finished before the last one's push
        // of a content tag landed: no registry lets a client make a tag
        // write conditional, so that one cannot know (README, "Two machines
        // on one commit"). Its image is still there, by digest.
        let finished = |r: &Repo| {
            std::fs::metadata(r.dir.join(".pipeline/results.json"))
                .and_then(|m| m.modified())
                .unwrap()
        };
        let (last, first) = match finished(&a) >= finished(&b) {
            true => (&a, &b),
            false => (&b, &a),
        };
        let (results_last, results_first) = (last.results(), first.results());
        agrees_with_the_registry(last, &results_last, &short);
        let overtaken: Vec<&str> = ["cart", "orders"]
            .into_iter()
            .filter(|s| {
                results_first["services"][s]["digest"] != results_last["services"][s]["digest"]
            })
            .collect();
        if overtaken.is_empty() {
            agrees_with_the_registry(first, &results_first, &short);
        }
        for service in overtaken {
            let digest = results_first["services"][service]["digest"]
                .as_str()
                .unwrap();
            let image = format!("{}@{digest}", first.repository(service));
            assert_eq!(skopeo_digest(&image).as_deref(), Some(digest), "{image}");
            eprintln!(
                "trial {trial}: {service} of the run that finished first was pushed over after it finished"
            );
        }
    }
}
