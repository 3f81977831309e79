//! CI shards: `run --shard K/N` on each of N jobs, then `pipeline finish`
//! on their results files. Checked against one `run` of the same tree, with
//! skopeo for the tags and `kubectl kustomize` for the overlay.

use crate::common::*;

const OVERLAY: &str = "k8s/overlays/prod";
const SERVICES: [&str; 5] = ["base", "app", "web", "cart", "mail"];

/// Five services, `app` requiring `base`, and a kustomize overlay and a raw
/// manifest deploying them.
fn shop(name: &str) -> Repo {
    let r = Repo::new(name);
    r.file(
        "services/base/Dockerfile",
        "FROM local/busybox:1\nCOPY base.txt /etc/base.txt\n",
    )
    .file("services/base/base.txt", "base\n")
    .file(
        "services/app/Dockerfile",
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY app.txt /app.txt\n",
    )
    .file("services/app/app.txt", "app\n");
    for name in ["web", "cart", "mail"] {
        r.file(
            &format!("services/{name}/Dockerfile"),
            "FROM local/busybox:1\nCOPY app.txt /app.txt\n",
        )
        .file(&format!("services/{name}/app.txt"), name);
    }
    let containers: String = SERVICES
        .iter()
        .map(|s| format!("        - name: {s}\n          image: {s}:latest\n"))
        .collect();
    r.file(
        "k8s/base/shop.yaml",
        &format!("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: shop\nspec:\n  template:\n    spec:\n      containers:\n{containers}"),
    )
    .file("k8s/base/kustomization.yaml", "resources:\n  - shop.yaml\n")
    .file(
        &format!("{OVERLAY}/kustomization.yaml"),
        "# production\nresources:\n  - ../../base\n",
    )
    .file(
        "k8s/raw/cron.yaml",
        "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: mail\nspec:\n  schedule: \"0 3 * * *\"\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers:\n            - name: mail\n              image: mail:latest # pinned by pipeline\n          restartPolicy: Never\n",
    )
    .config(&format!(
        "services:\n  app:\n    requires: [base]\ntags: [latest, \"{{git_short}}\"]\nmanifests:\n  kustomize: [{OVERLAY}]\n  raw: [k8s/raw/cron.yaml]\n"
    ));
    r
}

/// Runs the three shards into `results/shard-K.json`; their outcomes.
fn shards(r: &Repo, extra: &[&str]) -> Vec<Outcome> {
    (1..=3)
        .map(|k| {
            let file = format!("results/shard-{k}.json");
            let shard = format!("{k}/3");
            let mut run = r
                .pipeline()
                .args(["run", "--shard", &shard, "--results", &file]);
            for a in extra {
                run = run.args([*a]);
            }
            run.output()
        })
        .collect()
}

fn shard_services(r: &Repo, k: usize) -> Vec<String> {
    let v: serde_json::Value =
        serde_json::from_str(&r.read(&format!("results/shard-{k}.json"))).unwrap();
    v["services"].as_object().unwrap().keys().cloned().collect()
}

fn kustomize(r: &Repo) -> String {
    let out = std::process::Command::new("kubectl")
        .args(["kustomize", OVERLAY])
        .current_dir(&r.dir)
        .output()
        .expect("kubectl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn three_shards_then_finish_give_what_one_run_gives() {
    let r = shop("shards");
    // results/ holds the shards' files: outside the build contexts, and
    // not a change to the tree (`{git_short}` stays clean).
    r.file(".gitignore", "results/\n");
    let short = r.commit();
    let manifest_before = r.read("k8s/raw/cron.yaml");
    for (k, out) in shards(&r, &[]).iter().enumerate() {
        assert_eq!(out.code, 0, "shard {}: {}", k + 1, out.stderr);
    }
    // Content tags only, nothing patched yet.
    assert_eq!(r.read("k8s/raw/cron.yaml"), manifest_before);
    for s in SERVICES {
        assert_eq!(
            skopeo_digest(&format!("{}:latest", r.repository(s))),
            None,
            "{s}"
        );
    }
    // Each service in exactly one shard, base and app together, and the
    // same split again.
    let split: Vec<Vec<String>> = (1..=3).map(|k| shard_services(&r, k)).collect();
    let mut all: Vec<&String> = split.iter().flatten().collect();
    all.sort();
    let mut expected: Vec<&str> = SERVICES.to_vec();
    expected.sort();
    assert_eq!(all, expected);
    assert!(
        split
            .iter()
            .any(|s| s.contains(&"base".into()) && s.contains(&"app".into())),
        "{split:?}"
    );
    assert!(split.iter().all(|s| !s.is_empty()), "{split:?}");
    r.pipeline()
        .args(["run", "--shard", "2/3", "--results", "results/again.json"])
        .expect(0);
    let again: serde_json::Value = serde_json::from_str(&r.read("results/again.json")).unwrap();
    let again: Vec<String> = again["services"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(again, split[1], "the same tree gives the same shard");

    r.pipeline()
        .args([
            "finish",
            "results/shard-1.json",
            "results/shard-2.json",
            "results/shard-3.json",
        ])
        .expect(0);
    let finished = r.results();
    let overlay = kustomize(&r);
    for s in SERVICES {
        let digest = r.digest(s);
        let tags: Vec<&str> = finished["services"][s]["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        assert_eq!(&tags[1..], ["latest", short.as_str()], "{s}");
        for tag in &tags {
            let reference = format!("{}:{tag}", r.repository(s));
            assert_eq!(
                skopeo_digest(&reference).as_deref(),
                Some(digest.as_str()),
                "{reference}"
            );
        }
        assert!(
            overlay.contains(&format!("image: {}@{digest}", r.repository(s))),
            "{overlay}"
        );
    }

    // One `run` of the same tree, in another checkout: nothing to build,
    // and the same digests, tags and manifests.
    let one = Repo {
        dir: r.dir.with_extension("one-run"),
        prefix: r.prefix.clone(),
    };
    let cloned = std::process::Command::new("git")
        .args(["clone", "-q"])
        .arg(&r.dir)
        .arg(&one.dir)
        .status()
        .unwrap();
    assert!(cloned.success());
    one.pipeline().args(["run"]).expect(0);
    let single = one.results();
    for s in SERVICES {
        assert_eq!(single["services"][s]["status"], "cached", "{s}");
        assert_eq!(
            single["services"][s]["digest"],
            finished["services"][s]["digest"]
        );
        assert_eq!(
            single["services"][s]["tags"],
            finished["services"][s]["tags"]
        );
    }
    assert_eq!(one.read("k8s/raw/cron.yaml"), r.read("k8s/raw/cron.yaml"));
    assert_eq!(kustomize(&one), overlay);
    assert_eq!(single["manifests"], finished["manifests"]);

    // The next run's shards, balanced by this run's durations: all cached.
    r.pipeline()
        .args([
            "run",
            "--shard",
            "1/3",
            "--weights",
            ".pipeline/results.json",
            "--results",
            "results/weighted.json",
        ])
        .expect(0);
    let weighted: serde_json::Value =
        serde_json::from_str(&r.read("results/weighted.json")).unwrap();
    let services = weighted["services"].as_object().unwrap();
    assert!(!services.is_empty());
    assert!(
        services.values().all(|s| s["status"] == "cached"),
        "{weighted}"
    );
}

#[test]
fn a_failing_shard_leaves_latest_and_the_manifests_where_they_were() {
    let r = shop("shard-fails");
    r.file(".gitignore", "results/\n");
    r.commit();
    r.pipeline().args(["run"]).expect(0);
    let cron = r.read("k8s/raw/cron.yaml");
    let overlay = r.read(&format!("{OVERLAY}/kustomization.yaml"));
    let latest = |s: &str| skopeo_digest(&format!("{}:latest", r.repository(s)));
    let before: Vec<Option<String>> = SERVICES.iter().map(|s| latest(s)).collect();

    // web breaks, cart changes.
    r.file(
        "services/web/Dockerfile",
        "FROM local/busybox:1\nRUN exit 3\n",
    )
    .file("services/cart/app.txt", "cart v2");
    r.commit();
    let outcomes = shards(&r, &["--keep-going"]);
    assert!(outcomes.iter().any(|o| o.code == 1), "one shard fails");
    let out = r
        .pipeline()
        .args([
            "finish",
            "results/shard-1.json",
            "results/shard-2.json",
            "results/shard-3.json",
        ])
        .expect(1);
    assert!(out.stderr.contains("web"), "{}", out.stderr);
    let merged = r.results();
    assert_eq!(merged["services"]["web"]["status"], "failed");
    assert_eq!(merged["services"]["cart"]["status"], "built");
    assert_eq!(
        SERVICES.iter().map(|s| latest(s)).collect::<Vec<_>>(),
        before
    );
    assert_eq!(r.read("k8s/raw/cron.yaml"), cron);
    assert_eq!(r.read(&format!("{OVERLAY}/kustomization.yaml")), overlay);
}
