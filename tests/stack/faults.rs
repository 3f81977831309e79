//! A flaky registry, as CI meets one: the fault proxy of `common::proxy`
//! stands on 127.0.0.1 in front of the stack's real registry and answers
//! 503, 429 with `Retry-After`, or nothing at all. Every request of the run
//! goes through it: the engine's pushes, the plan's look-ups, the tags.
//! What the registry holds afterwards is read around the proxy, with skopeo.

use crate::common::proxy::{Fault, FaultProxy};
use crate::common::*;

fn two_services(name: &str, host: &str, extra: &str) -> Repo {
    let r = Repo::new(name);
    for service in ["cart", "orders"] {
        r.file(
            &format!("services/{service}/Dockerfile"),
            "FROM local/busybox:1\nCOPY app.txt /app.txt\n",
        )
        .file(&format!("services/{service}/app.txt"), service);
    }
    r.file(
        "k8s/app.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  template:\n    spec:\n      containers:\n        - name: cart\n          image: cart:latest\n        - name: orders\n          image: orders:latest\n",
    )
    .config_at(
        host,
        &format!("tags: [latest, \"{{git_short}}\"]\nmanifests:\n  raw: [k8s/app.yaml]\n{extra}"),
    );
    r
}

#[test]
fn a_flaky_registry_costs_retries_not_the_run() {
    // Every 3rd request of each kind is a 503 while the registry is flaky
    // (the first 6 requests of each kind); the first blob upload and the
    // first manifest PUT of each kind are a 429 with Retry-After.
    //
    // Flaky for a while, not for ever: a push through the engine is
    // retried whole, and an image whose push sends exactly three blob
    // HEADs (two layers and the config) would meet a 503 on the same one
    // in every attempt of an endless every-3rd pattern; a real registry's
    // failures are not periodic.
    let proxy = FaultProxy::start(&registry(), |info| {
        let upload = info.kind.starts_with("POST ") && info.kind.contains("/blobs/uploads/");
        let manifest_put = info.kind.starts_with("PUT ") && info.kind.contains("/manifests/");
        match info.nth {
            1 if upload || manifest_put => Fault::TooMany {
                retry_after_secs: 1,
            },
            n if n <= 6 && n % 3 == 0 => Fault::Status(503),
            _ => Fault::None,
        }
    });
    let r = two_services("flaky", &proxy.addr, "");
    let short = r.commit();
    let out = r.pipeline().args(["run"]).expect(0);
    let stats = proxy.stats();
    assert!(
        stats.injected_status.get(&503).copied().unwrap_or(0) >= 3
            && stats.injected_status.get(&429).copied().unwrap_or(0) >= 2,
        "the proxy injected faults: {:?}",
        stats.injected_status
    );
    assert!(
        out.stderr.contains("failed (") && out.stderr.contains("retrying in"),
        "progress shows the retries and their causes:\n{}",
        out.stderr
    );
    let results = r.results();
    let manifest = r.read("k8s/app.yaml");
    for service in ["cart", "orders"] {
        let s = &results["services"][service];
        assert_eq!(s["status"], "built", "{s}");
        let digest = s["digest"].as_str().unwrap();
        let tags = s["tags"].as_array().unwrap();
        assert_eq!(tags.len(), 3, "{service}: {tags:?}");
        assert!(tags.iter().any(|t| t == short.as_str()), "{tags:?}");
        for tag in tags {
            let reference = format!("{}:{}", r.repository(service), tag.as_str().unwrap());
            assert_eq!(
                skopeo_digest(&reference).as_deref(),
                Some(digest),
                "{reference}"
            );
        }
        assert!(
            manifest.contains(&format!("{}/{}{service}@{digest}", proxy.addr, r.prefix)),
            "{manifest}"
        );
    }
}

#[test]
fn a_registry_down_longer_than_the_window_fails_naming_it_and_moves_nothing() {
    let proxy = FaultProxy::passthrough(&registry());
    let r = two_services(
        "down",
        &proxy.addr,
        "push:\n  retries: 3\n  retry_window: 4s\n",
    );
    r.commit();
    r.pipeline().args(["run"]).expect(0);
    let before = r.results();
    let manifest = r.read("k8s/app.yaml");
    let latest = |service: &str| skopeo_digest(&format!("{}:latest", r.repository(service)));
    let latest_before = (latest("cart"), latest("orders"));

    // New inputs, and the registry gone from the first manifest the
    // engine writes (its blobs went in) for longer than the window.
    r.file("services/cart/app.txt", "cart v2");
    r.commit();
    let gone = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    proxy.set_policy({
        let gone = gone.clone();
        move |info| {
            if info.kind.starts_with("PUT ") && info.kind.contains("/manifests/") {
                gone.store(true, std::sync::atomic::Ordering::SeqCst);
            }
            match gone.load(std::sync::atomic::Ordering::SeqCst) {
                true => Fault::Status(503),
                false => Fault::None,
            }
        }
    });
    let started = std::time::Instant::now();
    let out = r.pipeline().args(["run"]).expect(1);
    let took = started.elapsed();
    assert!(
        gone.load(std::sync::atomic::Ordering::SeqCst),
        "the run reached the push"
    );
    proxy.set_policy(|_| Fault::None);
    assert!(
        out.stderr.contains(&proxy.addr) && out.stderr.contains("503"),
        "the error names the registry and what it said:\n{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("attempts"),
        "and how often it tried:\n{}",
        out.stderr
    );
    assert!(
        took < std::time::Duration::from_secs(60),
        "gave up within the window, not forever: {took:?}"
    );
    assert_eq!(
        r.read("k8s/app.yaml"),
        manifest,
        "the manifest is untouched"
    );
    assert_eq!(
        (latest("cart"), latest("orders")),
        latest_before,
        "latest did not move"
    );
    assert_eq!(
        before["services"]["cart"]["digest"],
        serde_json::Value::from(latest_before.0.clone().unwrap())
    );
    // Once it is back, a rerun converges.
    r.pipeline().args(["run"]).expect(0);
    assert_ne!(latest("cart"), latest_before.0);
    assert_eq!(latest("orders"), latest_before.1);
}
