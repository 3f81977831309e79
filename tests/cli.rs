//! The command line as people meet it, with no stack: `--help` of every
//! command (each teaches by example), completions, and `pipeline init` on a
//! fixture repo, pinned by snapshots (insta).

mod common;

use common::*;

#[test]
fn help_of_every_command() {
    let r = Repo::new("help");
    for command in [
        "",
        "run",
        "plan",
        "build",
        "patch",
        "release",
        "init",
        "doctor",
        "completions",
        "services",
    ] {
        let mut run = r.pipeline();
        if !command.is_empty() {
            run = run.args([command]);
        }
        let out = run.args(["--help"]).expect(0);
        assert!(
            out.stdout.contains("Example"),
            "`{command} --help` teaches by example:\n{}",
            out.stdout
        );
        let name = if command.is_empty() {
            "pipeline"
        } else {
            command
        };
        insta::assert_snapshot!(format!("help_{name}"), out.stdout);
    }
}

#[test]
fn completions_are_printed() {
    let r = Repo::new("completions");
    let out = r.pipeline().args(["completions", "bash"]).expect(0);
    assert!(
        out.stdout.contains("complete -F") && out.stdout.contains("release"),
        "{}",
        out.stdout
    );
    r.pipeline().args(["completions", "nosh"]).expect(2);
}

#[test]
fn init_on_a_fixture_repo() {
    let parent = Repo::new("init");
    let r = Repo {
        dir: parent.dir.join("shop"),
        prefix: parent.prefix.clone(),
    };
    r.file("services/base/Dockerfile", "FROM local/busybox:1\n")
        .file(
            "services/orders/Dockerfile",
            "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY app.sh /app/\n",
        )
        .file("services/orders/app.sh", "#!/bin/sh\n")
        .file(
            "services/payments/Dockerfile",
            "FROM local/busybox:1\nCOPY libs/common /lib\nCOPY services/payments/ /app\n",
        )
        .file("libs/common/util.txt", "u\n")
        .file(
            "k8s/overlays/production/kustomization.yaml",
            "resources: []\n",
        )
        .file("k8s/overlays/staging/kustomization.yml", "resources: []\n")
        .file(
            "charts/shop/Chart.yaml",
            "apiVersion: v2\nname: shop\nversion: 0.1.0\n",
        )
        .file(
            "charts/shop/values-production.yaml",
            "orders:\n  image:\n    repository: orders\npayments:\n  image: payments:1\n",
        );
    let out = r
        .pipeline()
        .args(["init"])
        .env("AWS_REGION", "eu-west-1")
        .expect(0);
    assert!(out.stderr.contains("3 services"), "{}", out.stderr);
    let written = r.read("pipeline.yaml");
    insta::assert_snapshot!(written);
    // The file is a working config: discovery and an offline plan accept it.
    r.commit();
    r.pipeline().args(["plan", "--offline"]).expect(0);
    // And init never overwrites it.
    let out = r.pipeline().args(["init"]).expect(2);
    assert!(out.stderr.contains("never overwrites"), "{}", out.stderr);
    assert_eq!(r.read("pipeline.yaml"), written);
}

/// A fixture repo that plans offline, with no stack: `base`, and `app`
/// built from it with a `.dockerignore`.
fn planned_repo(name: &str) -> Repo {
    let r = Repo::new(name);
    r.file(
        "pipeline.yaml",
        "version: 1\nregistry:\n  host: 127.0.0.1:5999\n  repository_prefix: shop/\nservices:\n  app:\n    requires: [base]\n",
    )
    .file("services/base/Dockerfile", "FROM scratch\nCOPY lib.txt /\n")
    .file("services/base/lib.txt", "lib\n")
    .file(
        "services/app/Dockerfile",
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY src/ /app/\n",
    )
    .file("services/app/src/main.txt", "main\n")
    .file("services/app/.dockerignore", "notes.md\n")
    .file("services/app/notes.md", "notes\n");
    r
}

#[test]
fn plan_as_json() {
    let r = planned_repo("plan-json");
    let out = r
        .pipeline()
        .args(["plan", "--offline", "--output", "json"])
        .expect(0);
    let plan: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(plan["services"][0]["name"], "base");
    assert_eq!(
        plan["services"][1]["decision"]["why"]["kind"],
        "not_in_last_results"
    );
    insta::assert_snapshot!("plan_json_nothing_built_yet", out.stdout);

    // With a results file in which base succeeded with these very inputs,
    // base is cached and app, which requires it, is not in the results.
    let base_input = plan["services"][0]["input_digest"].as_str().unwrap();
    r.file(
        ".pipeline/results.json",
        &serde_json::json!({
            "schema": 1,
            "git": {"sha": null, "dirty": false},
            "registry": "127.0.0.1:5999",
            "services": {"base": {
                "status": "built",
                "repository": "127.0.0.1:5999/shop/base",
                "digest": format!("sha256:{}", "1".repeat(64)),
                "tags": ["in-x"],
                "input_digest": base_input,
                "duration_ms": 1,
                "error": null
            }},
            "manifests": []
        })
        .to_string(),
    );
    let out = r
        .pipeline()
        .args(["plan", "--offline", "--output", "json"])
        .expect(0);
    let plan: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(plan["services"][0]["state"], "cached");
    assert_eq!(plan["services"][0]["decision"]["in"], "last_results");
    insta::assert_snapshot!("plan_json_base_in_last_results", out.stdout);
}

#[test]
fn two_services_with_one_repository_are_a_config_error_naming_both() {
    let r = Repo::new("same-repository");
    r.file(
        "pipeline.yaml",
        "version: 1\nregistry:\n  host: 127.0.0.1:5999\n  repository_prefix: shop/\nservices:\n  checkout:\n    repository: shop/cart\n",
    )
    .file("services/cart/Dockerfile", "FROM scratch\n")
    .file("services/checkout/Dockerfile", "FROM scratch\n");
    let out = r.pipeline().args(["plan", "--offline"]).expect(2);
    assert!(
        out.stderr.contains(
            "pipeline.yaml:7:17: services `cart` and `checkout` both push to repository `shop/cart`"
        ),
        "{}",
        out.stderr
    );
}

#[test]
fn a_copy_source_outside_the_context_will_fail_and_names_the_context_that_has_it() {
    let r = Repo::new("copy-sources");
    r.file(
        "pipeline.yaml",
        "version: 1\nregistry:\n  host: 127.0.0.1:5999\nservices_dir: src\n",
    )
    // Written for the repo root as context, as a compose file builds it.
    .file(
        "src/cart/Dockerfile",
        "FROM scratch\nCOPY ./src/cart/app.txt /app/\nCOPY ./pb/ /pb/\n",
    )
    .file("src/cart/app.txt", "app\n")
    .file("pb/demo.proto", "syntax = \"proto3\";\n")
    .file("src/ok/Dockerfile", "FROM scratch\nCOPY run.sh /\n")
    .file("src/ok/run.sh", "#!/bin/sh\n");
    let out = r.pipeline().args(["plan", "--offline"]).expect(0);
    let cart = out.stdout.lines().find(|l| l.contains(" cart ")).unwrap();
    assert!(
        cart.contains("WILL FAIL: src/cart/Dockerfile:2: COPY source `./src/cart/app.txt` does not exist in the build context; it is in `.`: set `context: .` for this service"),
        "{}",
        out.stdout
    );
    assert!(
        cart.contains("src/cart/Dockerfile:3: COPY source `./pb/`"),
        "{cart}"
    );
    let ok = out.stdout.lines().find(|l| l.contains(" ok ")).unwrap();
    assert!(!ok.contains("WILL FAIL"), "{ok}");
    // With the context the message suggests, the plan is clean.
    r.file(
        "pipeline.yaml",
        "version: 1\nregistry:\n  host: 127.0.0.1:5999\nservices_dir: src\nservices:\n  cart:\n    context: .\n",
    );
    let out = r.pipeline().args(["plan", "--offline"]).expect(0);
    assert!(!out.stdout.contains("WILL FAIL"), "{}", out.stdout);
}
