//! `pipeline release` on the real registry (and moto for the ECR calls),
//! checked with skopeo and the registry's own access log.

use crate::common::*;

fn repo(name: &str) -> Repo {
    let r = Repo::new(name);
    r.file(
        "services/api/Dockerfile",
        "FROM local/busybox:1\nCOPY api.txt /\n",
    )
    .file("services/api/api.txt", "api v1\n")
    .file(
        "services/web/Dockerfile",
        "FROM local/busybox:1\nCOPY web.txt /\n",
    )
    .file("services/web/web.txt", "web v1\n")
    .file(
        "k8s/prod/kustomization.yaml",
        "resources: []\nimages:\n  - name: api\n    newTag: latest\n",
    )
    .config("tags: [latest]\nmanifests:\n  kustomize: [k8s/prod]\n");
    r.commit();
    r
}

/// The media type of the raw manifest `reference` resolves to (skopeo).
fn raw_media_type(reference: &str) -> String {
    let v: serde_json::Value = serde_json::from_slice(&skopeo_raw(reference)).unwrap();
    v["mediaType"].as_str().unwrap().to_string()
}

#[test]
fn release_tags_the_tested_digests_without_moving_a_layer() {
    let r = repo("basic");
    r.pipeline().args(["run", "--no-patch"]).expect(0);
    let before = registry_requests(&r.prefix).len();
    let out = r.pipeline().args(["release", "v1.0.0"]).expect(0);
    assert!(out.stdout.contains("tagged"), "{}", out.stdout);
    for s in ["api", "web"] {
        assert_eq!(
            skopeo_digest(&format!("{}:v1.0.0", r.repository(s))),
            Some(r.digest(s)),
            "{s}"
        );
    }
    let requests = registry_requests(&r.prefix);
    let written: Vec<&String> = writes(&requests[before..]);
    assert_eq!(
        written.len(),
        2,
        "one manifest PUT per service: {written:?}"
    );
    assert!(
        written
            .iter()
            .all(|w| w.starts_with("PUT ") && w.contains("/manifests/v1.0.0")),
        "no blob upload: {written:?}"
    );
    let record: serde_json::Value =
        serde_json::from_str(&r.read(".pipeline/release-v1.0.0.json")).unwrap();
    assert_eq!(record["version"], "v1.0.0");
    assert!(
        record["source"]["results"]
            .as_str()
            .unwrap()
            .ends_with("results.json")
    );
    assert_eq!(record["services"]["api"]["digest"], r.digest("api"));
    assert_eq!(record["services"]["api"]["tag"], "v1.0.0");
    assert!(record["created"].as_str().unwrap().ends_with('Z'));

    // Again: a no-op, not a single write.
    let before = registry_requests(&r.prefix).len();
    let out = r.pipeline().args(["release", "v1.0.0"]).expect(0);
    assert!(out.stdout.contains("already there"), "{}", out.stdout);
    assert!(writes(&registry_requests(&r.prefix)[before..]).is_empty());
}

#[test]
fn a_tag_on_another_digest_is_refused_and_nothing_is_tagged() {
    let r = repo("refused");
    r.pipeline().args(["run", "--no-patch"]).expect(0);
    // v2 of web already points to another image (api's).
    let out = std::process::Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false", "--dest-tls-verify=false"])
        .args([
            "--src-creds",
            &registry_creds(),
            "--dest-creds",
            &registry_creds(),
        ])
        .arg(format!("docker://{}:latest", r.repository("api")))
        .arg(format!("docker://{}:v2", r.repository("web")))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let other = skopeo_digest(&format!("{}:v2", r.repository("web"))).unwrap();

    let out = r.pipeline().args(["release", "v2"]).expect(1);
    assert!(
        out.stderr.contains("web: tag `v2` points to") && out.stderr.contains(&other),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains(&r.digest("web")), "{}", out.stderr);
    assert_eq!(
        skopeo_digest(&format!("{}:v2", r.repository("api"))),
        None,
        "nothing tagged"
    );

    let out = r.pipeline().args(["release", "v2", "--force"]).expect(0);
    assert!(out.stdout.contains("moved from"), "{}", out.stdout);
    for s in ["api", "web"] {
        assert_eq!(
            skopeo_digest(&format!("{}:v2", r.repository(s))),
            Some(r.digest(s))
        );
    }
}

#[test]
fn from_tag_releases_what_a_tag_points_to_even_an_oci_index() {
    let r = repo("index");
    r.pipeline().args(["run", "--no-patch"]).expect(0);
    let first = r.digest("web");
    r.file("services/web/web.txt", "web v2\n");
    r.commit();
    r.pipeline().args(["run", "--no-patch"]).expect(0);
    let second = r.digest("web");
    assert_ne!(first, second);

    r.pipeline()
        .args(["release", "stable", "--from-tag", "latest"])
        .expect(0);
    assert_eq!(
        skopeo_digest(&format!("{}:stable", r.repository("web"))),
        Some(second.clone())
    );

    // An OCI index over both images, put by hand (no code of ours).
    let size = |d: &str| skopeo_raw(&format!("{}@{d}", r.repository("web"))).len();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "digest": first, "size": size(&first),
             "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "digest": second, "size": size(&second),
             "platform": {"architecture": "arm64", "os": "linux"}}
        ]
    })
    .to_string();
    let out = std::process::Command::new("curl")
        .args(["-fsS", "-X", "PUT", "-u", &registry_creds()])
        .args([
            "-H",
            "Content-Type: application/vnd.oci.image.index.v1+json",
            "--data-binary",
            &index,
        ])
        .arg(format!(
            "http://{}/v2/{}web/manifests/multi",
            registry(),
            r.prefix
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let index_digest = skopeo_digest(&format!("{}:multi", r.repository("web"))).unwrap();

    r.pipeline()
        .args(["release", "v3", "--from-tag", "multi", "--only", "web"])
        .expect(0);
    let v3 = format!("{}:v3", r.repository("web"));
    assert_eq!(skopeo_digest(&v3), Some(index_digest));
    assert_eq!(
        raw_media_type(&v3),
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(
        skopeo_digest(&format!("{}:v3", r.repository("api"))),
        None,
        "--only"
    );

    // A tag that a service does not have: refused, nothing tagged.
    let out = r
        .pipeline()
        .args(["release", "v4", "--from-tag", "multi"])
        .expect(1);
    assert!(
        out.stderr
            .contains("api: nothing to release: no tag `multi` in"),
        "{}",
        out.stderr
    );
    assert_eq!(skopeo_digest(&format!("{}:v4", r.repository("web"))), None);
}

#[test]
fn release_patch_pins_repository_version_and_digest() {
    let r = repo("patch");
    r.pipeline().args(["run", "--no-patch"]).expect(0);
    let out = r.pipeline().args(["release", "v5", "--patch"]).expect(0);
    let text = r.read("k8s/prod/kustomization.yaml");
    let api = r.repository("api");
    // The overlay deploys api only (its entry); web gets no entry there.
    assert_eq!(
        text,
        format!(
            "resources: []\nimages:\n  - name: api\n    newTag: v5\n    newName: {api}\n    digest: {}\n",
            r.digest("api"),
        )
    );
    assert!(
        out.stdout.contains(
            "k8s/prod/kustomization.yaml: pinned api (tag+digest); not deployed here: web"
        ),
        "{}",
        out.stdout
    );
}

#[test]
fn an_invalid_version_is_a_usage_error() {
    let r = repo("invalid");
    for bad in ["-v1", "v1/2", ".hidden", &"x".repeat(129)] {
        let out = r.pipeline().args(["release", "--", bad]).expect(2);
        assert!(
            out.stderr.contains("not a valid tag"),
            "{bad}: {}",
            out.stderr
        );
    }
}

#[test]
fn an_immutable_repository_fails_a_moving_latest_before_building() {
    let r = repo("immutable");
    let repository = format!("{}web", r.prefix);
    boto3(
        "c.create_repository(repositoryName=sys.argv[1],imageTagMutability='IMMUTABLE')",
        &[&repository],
    );
    r.pipeline().args(["run", "--no-patch"]).expect(0);

    r.file("services/web/web.txt", "web v2\n");
    r.commit();
    let plan = r.pipeline().args(["plan"]).expect(0);
    assert!(
        plan.stdout.contains("WILL FAIL: tag `latest`"),
        "{}",
        plan.stdout
    );
    let out = r
        .pipeline()
        .args(["run", "--no-patch", "--progress", "plain"])
        .expect(1);
    let results = r.results();
    assert_eq!(results["services"]["web"]["status"], "failed");
    let error = results["services"]["web"]["error"].as_str().unwrap();
    assert!(
        error.contains("tag `latest`") && error.contains("IMMUTABLE"),
        "{error}"
    );
    assert!(
        !out.stderr
            .lines()
            .any(|l| l.contains("web") && l.contains("step 1/")),
        "web was not built: {}",
        out.stderr
    );
}
