//! The patch stage end to end: `pipeline run` and `pipeline patch` on a repo
//! with a kustomize overlay, a Helm values file and raw manifests, checked
//! with `kubectl kustomize` and `skopeo`, not with our own reader.

use std::os::unix::fs::PermissionsExt;

use crate::common::*;

const OVERLAY: &str = "k8s/overlays/prod/kustomization.yaml";
const VALUES: &str = "charts/shop/values-prod.yaml";
const RAW: &str = "k8s/raw/jobs.yaml";

fn repo(name: &str) -> Repo {
    let r = Repo::new(name);
    r.file("services/api/Dockerfile", "FROM local/busybox:1\nCOPY api.txt /\n")
        .file("services/api/api.txt", "api\n")
        .file("services/worker/Dockerfile", "FROM local/busybox:1\nCOPY w.txt /\n")
        .file("services/worker/w.txt", "worker\n")
        .file(
            "k8s/base/kustomization.yaml",
            "resources:\n  - api.yaml\n",
        )
        .file(
            "k8s/base/api.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\nspec:\n  selector:\n    matchLabels: {app: api}\n  template:\n    metadata:\n      labels: {app: api}\n    spec:\n      initContainers:\n        - name: migrate\n          image: api\n      containers:\n        - name: api\n          image: api\n        - name: sidecar\n          image: ghcr.io/acme/worker:v1\n",
        )
        .file(
            OVERLAY,
            "# prod overlay\nresources:\n  - ../../base\nimages:\n  - name: api   # the API\n    newTag: latest\n\n# end\n",
        )
        .file(
            VALUES,
            "# values\napi:\n  image:\n    repository: api\n    tag: \"latest\"   # moved by pipeline\nworker:\n  image: \"worker:latest\"\n",
        )
        .file(
            RAW,
            "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: nightly\nspec:\n  schedule: \"0 3 * * *\"\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers:\n            - name: run\n              image: worker:latest # pinned by pipeline\n          restartPolicy: Never\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: debug\nspec:\n  ephemeralContainers:\n    - name: dbg\n      image: api\n  containers:\n    - name: redis\n      image: redis:7\n",
        )
        .config(
            "tags: [latest, \"{git_short}\"]\nmanifests:\n  kustomize: [k8s/overlays/prod]\n  helm:\n    - values: charts/shop/values-prod.yaml\n      image_path: \"{service}.image\"\n  raw: [\"k8s/raw/*.yaml\"]\n",
        );
    std::fs::set_permissions(r.dir.join(VALUES), std::fs::Permissions::from_mode(0o640)).unwrap();
    r.commit();
    r
}

/// The lines of `after` that are not in `before`, and the reverse.
fn line_diff(before: &str, after: &str) -> (Vec<String>, Vec<String>) {
    let b: Vec<&str> = before.lines().collect();
    let a: Vec<&str> = after.lines().collect();
    (
        a.iter()
            .filter(|l| !b.contains(l))
            .map(|l| l.to_string())
            .collect(),
        b.iter()
            .filter(|l| !a.contains(l))
            .map(|l| l.to_string())
            .collect(),
    )
}

#[test]
fn run_pins_every_manifest_kind_and_kubectl_renders_the_digests() {
    let r = repo("kinds");
    let before_overlay = r.read(OVERLAY);
    let before_values = r.read(VALUES);
    let before_raw = r.read(RAW);
    r.pipeline().args(["run"]).expect(0);
    let (api, worker) = (r.digest("api"), r.digest("worker"));
    let (api_repo, worker_repo) = (r.repository("api"), r.repository("worker"));
    // The registry itself says these are the digests.
    assert_eq!(
        skopeo_digest(&format!("{api_repo}:latest")).as_deref(),
        Some(api.as_str())
    );

    let (added, removed) = line_diff(&before_overlay, &r.read(OVERLAY));
    assert_eq!(removed, ["    newTag: latest"]);
    assert_eq!(
        added,
        [
            format!("    newName: {api_repo}"),
            format!("    digest: {api}"),
            "  - name: ghcr.io/acme/worker".to_string(),
            format!("    newName: {worker_repo}"),
            format!("    digest: {worker}"),
        ]
    );
    let rendered = std::process::Command::new("kubectl")
        .args(["kustomize", "k8s/overlays/prod"])
        .current_dir(&r.dir)
        .output()
        .expect("kubectl is on the machine (scripts/stack installs it)");
    assert!(
        rendered.status.success(),
        "{}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    let rendered = String::from_utf8_lossy(&rendered.stdout);
    let images: Vec<&str> = rendered
        .lines()
        .filter_map(|l| l.trim().trim_start_matches("- ").strip_prefix("image: "))
        .collect();
    assert_eq!(
        images,
        [
            format!("{api_repo}@{api}"),
            format!("{worker_repo}@{worker}"),
            format!("{api_repo}@{api}"),
        ],
        "containers, the ghcr.io sidecar and the init container: {rendered}"
    );

    let (added, removed) = line_diff(&before_values, &r.read(VALUES));
    let short = r.git(&["rev-parse", "--short=7", "HEAD"]);
    assert_eq!(
        removed,
        [
            "    repository: api",
            "    tag: \"latest\"   # moved by pipeline",
            "  image: \"worker:latest\""
        ]
    );
    assert_eq!(
        added,
        [
            format!("    repository: {api_repo}"),
            format!("    tag: \"{short}\"   # moved by pipeline"),
            format!("    digest: {api}"),
            format!("  image: \"{worker_repo}@{worker}\""),
        ]
    );
    let mode = std::fs::metadata(r.dir.join(VALUES))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640, "the file keeps its mode");

    let (added, removed) = line_diff(&before_raw, &r.read(RAW));
    assert_eq!(
        removed,
        [
            "              image: worker:latest # pinned by pipeline",
            "      image: api"
        ]
    );
    assert_eq!(
        added,
        [
            format!("              image: {worker_repo}@{worker} # pinned by pipeline"),
            format!("      image: {api_repo}@{api}"),
        ]
    );
    let manifests = &r.results()["manifests"];
    assert_eq!(manifests.as_array().unwrap().len(), 3);
    assert!(
        manifests
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["changed"] == true)
    );

    // A second run changes nothing and touches nothing.
    let mtimes: Vec<_> = [OVERLAY, VALUES, RAW]
        .iter()
        .map(|f| {
            std::fs::metadata(r.dir.join(f))
                .unwrap()
                .modified()
                .unwrap()
        })
        .collect();
    let texts: Vec<String> = [OVERLAY, VALUES, RAW].iter().map(|f| r.read(f)).collect();
    std::thread::sleep(std::time::Duration::from_millis(20));
    r.pipeline().args(["run"]).expect(0);
    for (i, f) in [OVERLAY, VALUES, RAW].iter().enumerate() {
        assert_eq!(r.read(f), texts[i], "{f}");
        assert_eq!(
            std::fs::metadata(r.dir.join(f))
                .unwrap()
                .modified()
                .unwrap(),
            mtimes[i],
            "{f}"
        );
    }
    assert!(
        r.results()["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["changed"] == false)
    );
}

#[test]
fn a_failed_run_touches_no_manifest() {
    let r = repo("failed");
    r.file(
        "services/worker/Dockerfile",
        "FROM local/busybox:1\nRUN exit 3\n",
    );
    r.commit();
    let before: Vec<String> = [OVERLAY, VALUES, RAW].iter().map(|f| r.read(f)).collect();
    r.pipeline().args(["run", "--keep-going"]).expect(1);
    assert_eq!(r.results()["services"]["api"]["status"], "built");
    for (i, f) in [OVERLAY, VALUES, RAW].iter().enumerate() {
        assert_eq!(
            r.read(f),
            before[i],
            "{f} must not change when a service failed"
        );
    }
    assert_eq!(r.results()["manifests"], serde_json::json!([]));
}

#[test]
fn patch_check_reports_drift_and_patch_fixes_it() {
    let r = repo("check");
    r.pipeline().args(["run", "--no-patch"]).expect(0);
    let before = r.read(OVERLAY);
    let out = r.pipeline().args(["patch", "--check"]).expect(1);
    assert!(
        out.stdout.contains(&format!("--- a/{OVERLAY}")),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("-    newTag: latest"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains(&format!("+    digest: {}", r.digest("api"))),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains(&format!("drift: {VALUES}")),
        "{}",
        out.stderr
    );
    assert_eq!(r.read(OVERLAY), before, "--check writes nothing");

    let out = r.pipeline().args(["patch"]).expect(0);
    assert!(
        out.stdout.contains(&format!("patched   {OVERLAY}")),
        "{}",
        out.stdout
    );
    r.pipeline().args(["patch", "--check"]).expect(0);
    assert_eq!(r.results()["manifests"].as_array().unwrap().len(), 3);
}

#[test]
fn a_service_listed_for_a_values_file_without_its_path_is_an_error_before_anything_is_built() {
    let r = repo("helm-path");
    r.file(VALUES, "# values\napi:\n  image:\n    repository: api\n")
        .config(
            "manifests:\n  helm:\n    - values: charts/shop/values-prod.yaml\n      image_path: \"{service}.image\"\n      services: [api, worker]\n",
        );
    r.commit();
    let out = r.pipeline().args(["run"]).expect(2);
    assert!(
        out.stderr.contains(VALUES) && out.stderr.contains("worker.image"),
        "names file and path: {}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("step 1/"),
        "nothing was built: {}",
        out.stderr
    );
    assert_eq!(
        skopeo_digest(&format!("{}:latest", r.repository("api"))),
        None
    );
}

#[test]
fn a_new_service_without_a_values_entry_warns_and_the_run_goes_on() {
    let r = repo("new-service");
    r.file(VALUES, "# values\napi:\n  image:\n    repository: api\n");
    r.commit();
    let out = r.pipeline().args(["run", "--progress", "plain"]).expect(0);
    assert!(
        out.stderr.contains(&format!(
            "warning: {VALUES}: no `worker.image`: this file does not deploy service `worker`"
        )),
        "{}",
        out.stderr
    );
    let results = r.results();
    let values = results["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["path"] == VALUES)
        .unwrap()
        .clone();
    assert_eq!(values["pinned"], serde_json::json!(["api"]));
    assert_eq!(values["not_deployed"], serde_json::json!(["worker"]));
    assert_eq!(values["warnings"].as_array().unwrap().len(), 1, "{values}");
    // And the file took api's digest.
    assert!(r.read(VALUES).contains(&r.digest("api")));
    // With manifests.strict the same warning stops the run before any build.
    let strict = repo("new-service-strict");
    strict
        .file(VALUES, "# values\napi:\n  image:\n    repository: api\n")
        .config(
            "manifests:\n  strict: true\n  helm:\n    - values: charts/shop/values-prod.yaml\n      image_path: \"{service}.image\"\n",
        );
    strict.commit();
    let out = strict.pipeline().args(["run"]).expect(1);
    assert!(out.stderr.contains("manifests.strict"), "{}", out.stderr);
    assert!(
        !strict.dir.join(".pipeline/logs/api.log").exists(),
        "nothing was built"
    );
}

#[test]
fn the_pin_report_names_raw_images_that_match_no_service() {
    let r = repo("lookalikes");
    // One repository with a tag per service, as the OpenTelemetry demo
    // publishes its images: none of them is a service's repository.
    r.file(
        RAW,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api}\nspec:\n  template:\n    spec:\n      containers:\n        - name: api\n          image: ghcr.io/acme/demo:1.10.0-api\n        - name: worker\n          image: ghcr.io/acme/demo:1.10.0-worker\n",
    );
    r.commit();
    let out = r.pipeline().args(["run", "--progress", "plain"]).expect(0);
    for service in ["api", "worker"] {
        assert!(
            out.stderr.contains(&format!(
                "warning: {RAW}: line {}: image `ghcr.io/acme/demo:1.10.0-{service}` looks like service `{service}`'s",
                if service == "api" { 9 } else { 11 }
            )),
            "{service}: {}",
            out.stderr
        );
    }
    let raw = r.results()["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["path"] == RAW)
        .unwrap()
        .clone();
    assert_eq!(raw["pinned"], serde_json::json!([]));
    assert_eq!(raw["not_deployed"], serde_json::json!(["api", "worker"]));
    assert_eq!(raw["warnings"].as_array().unwrap().len(), 2);
    // `patch --strict` turns the warnings into exit 1 and writes nothing,
    // not even the overlay it could pin.
    let unpinned = "# prod overlay\nresources:\n  - ../../base\nimages:\n  - name: api   # the API\n    newTag: latest\n\n# end\n";
    r.file(OVERLAY, unpinned);
    let out = r.pipeline().args(["patch", "--strict"]).expect(1);
    assert!(out.stderr.contains("2 patch warning(s)"), "{}", out.stderr);
    assert_eq!(r.read(OVERLAY), unpinned, "nothing was written");
    r.pipeline().args(["patch"]).expect(0);
    assert_ne!(r.read(OVERLAY), unpinned);
}

#[test]
fn an_edit_through_an_alias_is_refused_with_its_line() {
    let r = repo("alias");
    r.file(
        VALUES,
        "defaults: &img\n  repository: api\n  tag: latest\napi:\n  image: *img\nworker:\n  image: worker\n",
    );
    r.commit();
    let out = r.pipeline().args(["run"]).expect(2);
    assert!(
        out.stderr.contains(VALUES) && out.stderr.contains("line 5"),
        "{}",
        out.stderr
    );
}
