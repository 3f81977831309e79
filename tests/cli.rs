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
        "finish",
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
        .file("k8s/base/kustomization.yaml", "resources: [orders.yaml]\n")
        .file(
            "k8s/base/orders.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: orders}\nspec:\n  template:\n    spec:\n      containers:\n        - name: orders\n          image: orders:1\n",
        )
        .file(
            "k8s/overlays/production/kustomization.yaml",
            "resources: [../../base]\n",
        )
        .file(
            "k8s/overlays/staging/kustomization.yml",
            "resources: [../../base]\n",
        )
        .file(
            "charts/shop/Chart.yaml",
            "apiVersion: v2\nname: shop\nversion: 0.1.0\n",
        )
        .file(
            "charts/shop/values-production.yaml",
            "orders:\n  image:\n    repository: orders\npayments:\n  image: payments:1\n",
        );
    // A commit, so that the tags can use {git_short}.
    r.commit();
    let out = r
        .pipeline()
        .args(["init"])
        .env("AWS_REGION", "eu-west-1")
        .expect(0);
    assert!(out.stderr.contains("3 services"), "{}", out.stderr);
    let written = r.read("pipeline.yaml");
    insta::assert_snapshot!(written);
    // It ends with the offline plan of what it wrote.
    for service in ["base", "orders", "payments"] {
        assert!(out.stdout.contains(service), "{}", out.stdout);
    }
    assert!(!out.stdout.contains("WILL FAIL"), "{}", out.stdout);
    // The file is a working config: discovery and an offline plan accept it.
    r.pipeline().args(["plan", "--offline"]).expect(0);
    // And init never overwrites it.
    let out = r.pipeline().args(["init"]).expect(2);
    assert!(out.stderr.contains("never overwrites"), "{}", out.stderr);
    assert_eq!(r.read("pipeline.yaml"), written);
}

/// A repo shaped like the OpenTelemetry demo: a Compose file builds
/// `src/<name>` from the root (`context: ./`), some Dockerfiles named by
/// `.env` variables, every one copying `./src/<name>/…` and `./pb/…`.
/// The repo is `demo/` in the first (kept alive alongside), so that its
/// name, and the repository prefix init derives from it, is stable.
fn otel_shaped_repo(name: &str) -> (Repo, Repo) {
    let parent = Repo::new(name);
    let r = Repo {
        dir: parent.dir.join("demo"),
        prefix: parent.prefix.clone(),
    };
    r.file(
        ".env",
        "# Demo App version\nIMAGE_NAME=ghcr.io/open-telemetry/demo\nDEMO_VERSION=latest\nCART_DOCKERFILE=./src/cart/src/Dockerfile\nCHECKOUT_DOCKERFILE=./src/checkout/Dockerfile\nOTEL_JAVA_AGENT_VERSION=2.30.0    # build arg\n",
    )
    .file(
        "docker-compose.yml",
        r#"x-default-logging: &logging
  driver: "json-file"

services:
  ad:
    image: ${IMAGE_NAME}:${DEMO_VERSION}-ad
    build:
      context: ./
      dockerfile: ./src/ad/Dockerfile
      target: runtime
      cache_from:
        - ${IMAGE_NAME}:${IMAGE_VERSION:-2.0}-ad
      args:
        OTEL_JAVA_AGENT_VERSION: ${OTEL_JAVA_AGENT_VERSION}
    logging: *logging
  cart:
    image: ${IMAGE_NAME}:${DEMO_VERSION}-cart
    build:
      context: ./
      dockerfile: ${CART_DOCKERFILE}
    depends_on: [valkey-cart]
  checkout:
    image: ${IMAGE_NAME}:${DEMO_VERSION}-checkout
    build:
      context: ./
      dockerfile: ${CHECKOUT_DOCKERFILE}
  frontend:
    image: ${IMAGE_NAME}:${DEMO_VERSION}-frontend
    build:
      context: ./
      dockerfile: ./src/frontend/Dockerfile
  frontendTests:
    build:
      context: ./
      dockerfile: ./src/frontend/Dockerfile.cypress
  payment:
    image: acme/payments-api:${DEMO_VERSION}
    build:
      context: ./
      dockerfile: ./src/payment/Dockerfile
      args: ["NODE_ENV=production"]
  postgresql:
    build:
      context: ./
      dockerfile: ${POSTGRES_DOCKERFILE:-./src/postgresql/Dockerfile}
  valkey-cart:
    image: valkey/valkey:8.1-alpine
"#,
    )
    .file("pb/demo.proto", "syntax = \"proto3\";\n")
    .file(
        "src/ad/Dockerfile",
        "FROM local/busybox:1 AS builder\nCOPY ./src/ad/build.gradle ./src/ad/gradlew* /build/\nCOPY ./pb/ /build/proto/\n\nFROM local/busybox:1 AS runtime\nARG OTEL_JAVA_AGENT_VERSION\nCOPY --from=builder /build /app\n",
    )
    .file("src/ad/build.gradle", "plugins {}\n")
    .file("src/ad/gradlew", "#!/bin/sh\n")
    .file(
        "src/cart/src/Dockerfile",
        "FROM local/busybox:1\nCOPY ./src/cart/ /app/\nCOPY ./pb/ /app/pb/\n",
    )
    .file("src/cart/src/cart.csproj", "<Project/>\n")
    .file(
        "src/checkout/Dockerfile",
        "FROM local/busybox:1\nCOPY ./src/checkout/main.go /app/\nCOPY ./pb/demo.proto /app/pb/\n",
    )
    .file("src/checkout/main.go", "package main\n")
    .file(
        "src/frontend/Dockerfile",
        "FROM local/busybox:1\nCOPY ./src/frontend/ /app/\n",
    )
    .file(
        "src/frontend/Dockerfile.cypress",
        "FROM local/busybox:1\nCOPY ./src/frontend/cypress /e2e/\n",
    )
    .file("src/frontend/cypress/e2e.cy.ts", "it('loads')\n")
    .file(
        "src/payment/Dockerfile",
        "FROM local/busybox:1\nARG NODE_ENV\nCOPY ./src/payment/index.js ./pb/demo.proto /app/\n",
    )
    .file("src/payment/index.js", "console.log(1)\n")
    // Not built by Compose: a folder of its own, built from itself.
    .file("src/docs/Dockerfile", "FROM local/busybox:1\nCOPY index.html /srv/\n")
    .file("src/docs/index.html", "<h1>docs</h1>\n")
    .file("src/postgresql/init.sql", "create table t();\n")
    // A raw manifest: payment's own image is pinned, the per-service tags
    // of one repository are not.
    .file(
        "kubernetes/demo.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: cart}\nspec:\n  template:\n    spec:\n      containers:\n        - name: cart\n          image: 'ghcr.io/open-telemetry/demo:2.0-cart'\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: payment}\nspec:\n  template:\n    spec:\n      containers:\n        - name: payment\n          image: registry.example.com/acme/payments-api:2.0\n        - name: cache\n          image: valkey/valkey:8.1-alpine\n",
    )
    // A kustomize base, its overlay and a component.
    .file("k8s/base/kustomization.yaml", "resources: [checkout.yaml]\n")
    .file(
        "k8s/base/checkout.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: checkout}\nspec:\n  template:\n    spec:\n      containers:\n        - name: checkout\n          image: checkout\n",
    )
    .file(
        "k8s/prod/kustomization.yaml",
        "resources: [../base]\ncomponents: [../components/debug]\n",
    )
    .file(
        "k8s/components/debug/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\npatches:\n  - patch: |-\n      apiVersion: apps/v1\n      kind: Deployment\n      metadata: {name: checkout}\n      spec: {replicas: 1}\n",
    )
    // A chart with per-service values.
    .file(
        "charts/demo/Chart.yaml",
        "apiVersion: v2\nname: demo\nversion: 0.1.0\n",
    )
    .file(
        "charts/demo/values.yaml",
        "frontend:\n  image:\n    repository: ghcr.io/acme/frontend\n    tag: \"1.0\"\ncheckout:\n  image: checkout:1.0\nvalkey:\n  image: valkey/valkey:8\n",
    )
    .file(
        "charts/demo/templates/deployment.yaml",
        "{{- range $name, $s := .Values }}\nimage: {{ $s.image.repository }}{{ with $s.image.digest }}@{{ . }}{{ end }}\n{{- end }}\n",
    );
    (parent, r)
}

#[test]
fn init_reads_a_compose_file_like_the_opentelemetry_demo() {
    let (_parent, r) = otel_shaped_repo("init-otel");
    r.commit();
    let out = r
        .pipeline()
        .args(["init"])
        .env("AWS_REGION", "eu-west-1")
        .env_remove("POSTGRES_DOCKERFILE")
        .expect(0);
    // Every service the Compose file builds, and the folder it does not.
    assert!(
        out.stderr.contains(
            "built by docker-compose.yml: 6 (ad, cart, checkout, frontend, frontend-tests, payment)"
        ),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("folders holding a Dockerfile: 1 (docs)"),
        "{}",
        out.stderr
    );
    // One whose Dockerfile is missing is reported, not written.
    assert!(
        out.stderr.contains(
            "not a service: docker-compose.yml: service `postgresql`: its Dockerfile `src/postgresql/Dockerfile` does not exist"
        ),
        "{}",
        out.stderr
    );
    let written = r.read("pipeline.yaml");
    assert!(
        written.contains("defaults:\n  context: .  "),
        "built from the root, as Compose does:\n{written}"
    );
    assert!(written.contains("    context: src/docs\n"), "{written}");
    insta::assert_snapshot!(written);
    // The offline plan of the written file: every service, none WILL FAIL.
    for service in [
        "ad",
        "cart",
        "checkout",
        "docs",
        "frontend",
        "frontend-tests",
        "payment",
    ] {
        assert!(
            out.stdout.contains(&format!(" {service} ")),
            "{service}:\n{}",
            out.stdout
        );
    }
    assert!(!out.stdout.contains("WILL FAIL"), "{}", out.stdout);
    assert!(out.stdout.contains("7 to build"), "{}", out.stdout);
    // The manifests it found can be patched, each pinning what it deploys.
    for pinned in [
        "k8s/prod/kustomization.yaml: pinned checkout (digest)",
        "charts/demo/values.yaml: pinned checkout, frontend (digest)",
        "kubernetes/demo.yaml: pinned payment (digest)",
    ] {
        assert!(out.stderr.contains(pinned), "{pinned}:\n{}", out.stderr);
    }
    // And so does `plan` itself, for each service.
    let out = r
        .pipeline()
        .args(["plan", "--offline", "--output", "json"])
        .expect(0);
    let plan: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    for service in plan["services"].as_array().unwrap() {
        assert_eq!(service["decision"]["action"], "build", "{service}");
    }
}

#[test]
fn init_finds_nested_service_folders_and_containerfiles() {
    let r = Repo::new("init-nested");
    r.file("services/base/Containerfile", "FROM local/busybox:1\n")
        .file(
            "services/payments/api/Containerfile",
            "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY main.go /app/\n",
        )
        .file("services/payments/api/main.go", "package main\n")
        .file(
            "services/payments/worker/Dockerfile",
            "FROM local/busybox:1\nCOPY worker.sh /app/\n",
        )
        .file("services/payments/worker/worker.sh", "#!/bin/sh\n")
        .file("services/Legacy/Dockerfile", "FROM local/busybox:1\n")
        // A service's own subfolders are its sources, not services.
        .file(
            "services/web/Dockerfile",
            "FROM local/busybox:1\nCOPY . /srv/\n",
        )
        .file("services/web/admin/Dockerfile", "FROM local/busybox:1\n");
    r.commit();
    let out = r.pipeline().args(["init"]).expect(0);
    let written = r.read("pipeline.yaml");
    assert!(written.contains("discover:\n  depth: 2 "), "{written}");
    assert!(
        written.contains("  legacy:\n    folder: services/Legacy\n"),
        "an invalid folder name gets a valid service name:\n{written}"
    );
    assert!(
        written.contains("  payments-api:\n    requires: [base] "),
        "{written}"
    );
    assert!(
        out.stderr.contains(
            "folders holding a Dockerfile: 5 (base, legacy, payments-api, payments-worker, web)"
        ),
        "{}",
        out.stderr
    );
    assert!(out.stdout.contains("5 to build"), "{}", out.stdout);
    let services = r.pipeline().args(["services"]).expect(0).stdout;
    assert!(
        services.contains("services/payments/api/Containerfile"),
        "{services}"
    );

    // When the written file does not plan, it stays, and the error says why.
    let outside = Repo::new("init-outside");
    outside.file("Dockerfile", "FROM local/busybox:1\n");
    let r = Repo::new("init-broken");
    r.file("services/web/Dockerfile", "FROM local/busybox:1\n");
    std::os::unix::fs::symlink(&outside.dir, r.dir.join("services/ext")).unwrap();
    r.commit();
    let out = r.pipeline().args(["init"]).expect(2);
    assert!(
        out.stderr
            .contains("pipeline.yaml is written, but `pipeline plan --offline` fails on it")
            && out.stderr.contains("outside the repo"),
        "{}",
        out.stderr
    );
    assert!(r.dir.join("pipeline.yaml").is_file());
}

#[test]
fn init_takes_the_services_dir_it_is_given() {
    let r = Repo::new("init-dir");
    r.file("apps/web/Dockerfile", "FROM local/busybox:1\n")
        .file("images/base/Dockerfile", "FROM local/busybox:1\n")
        .file("images/tools/Dockerfile", "FROM local/busybox:1\n");
    r.commit();
    let out = r
        .pipeline()
        .args(["init", "--services-dir", "images"])
        .expect(0);
    let written = r.read("pipeline.yaml");
    assert!(
        written.contains("services_dir: images   ") && written.contains("found: base, tools"),
        "{written}"
    );
    assert!(out.stdout.contains("2 to build"), "{}", out.stdout);

    // Without it, the usual root that holds services.
    std::fs::remove_file(r.dir.join("pipeline.yaml")).unwrap();
    r.pipeline().args(["init"]).expect(0);
    assert!(r.read("pipeline.yaml").contains("services_dir: apps "));

    // A folder that is not there is a usage error, and nothing is written.
    std::fs::remove_file(r.dir.join("pipeline.yaml")).unwrap();
    let out = r
        .pipeline()
        .args(["init", "--services-dir", "nope"])
        .expect(2);
    assert!(
        out.stderr.contains("--services-dir nope: not a folder"),
        "{}",
        out.stderr
    );
    assert!(!r.dir.join("pipeline.yaml").exists());
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

/// A repo with one service and one raw manifest that deploys it, for the
/// tests of inputs that must be refused before anything is written.
fn one_service_repo(name: &str) -> Repo {
    let r = Repo::new(name);
    r.file(
        "pipeline.yaml",
        "version: 1\nregistry:\n  host: registry.test\n  repository_prefix: shop/\nservices_dir: services\nmanifests:\n  raw: [k8s/cart.yaml]\n",
    )
    .file("services/cart/Dockerfile", "FROM scratch\n")
    .file(
        "k8s/cart.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: cart\nspec:\n  template:\n    spec:\n      containers:\n        - name: cart\n          image: registry.test/shop/cart:latest # pinned by pipeline\n",
    );
    r
}

/// A results file for `one_service_repo`, with `edit` applied to its JSON.
fn results_with(edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut results = serde_json::json!({
        "schema": 1,
        "git": { "sha": "1a2b3c4", "dirty": false },
        "registry": "registry.test",
        "services": {
            "cart": {
                "status": "built",
                "repository": "registry.test/shop/cart",
                "digest": format!("sha256:{}", "ab".repeat(32)),
                "tags": ["latest"],
                "input_digest": format!("sha256:{}", "cd".repeat(32)),
                "duration_ms": 10,
                "error": null,
                "reason": "no image with tag latest in registry"
            }
        },
        "manifests": []
    });
    edit(&mut results);
    serde_json::to_string_pretty(&results).unwrap()
}

#[test]
fn a_results_file_is_checked_before_it_reaches_a_manifest() {
    let r = one_service_repo("hostile-results");
    let manifest = r.read("k8s/cart.yaml");
    let cart = |f: &str, v: serde_json::Value| {
        let f = f.to_string();
        move |j: &mut serde_json::Value| j["services"]["cart"][f] = v
    };
    let cases: Vec<(&str, String)> = vec![
        (
            "schema: 99 is not a results schema",
            results_with(|j| j["schema"] = 99.into()),
        ),
        (
            "services.cart.digest: `sha256:zz` is not a digest",
            results_with(cart("digest", "sha256:zz".into())),
        ),
        (
            "services.cart.repository: `registry.test/shop/cart\\nimage: evil` is not a repository",
            results_with(cart(
                "repository",
                "registry.test/shop/cart\nimage: evil".into(),
            )),
        ),
        (
            "services.cart.tags: `la test` is not a valid tag",
            results_with(cart("tags", serde_json::json!(["la test"]))),
        ),
        (
            "services.cart.status: unknown variant `pushed`",
            results_with(cart("status", "pushed".into())),
        ),
    ];
    for (expected, text) in cases {
        r.file("ci/results.json", &text);
        for command in [
            &["patch", "--results", "ci/results.json"][..],
            &["patch", "--check", "--results", "ci/results.json"][..],
            &["release", "v1.0.0", "--results", "ci/results.json"][..],
            &["finish", "ci/results.json"][..],
        ] {
            let mut run = r.pipeline();
            for a in command {
                run = run.args([*a]);
            }
            let out = run.expect(2);
            assert!(
                out.stderr.contains("ci/results.json") && out.stderr.contains(expected),
                "{command:?}: want `{expected}` in\n{}",
                out.stderr
            );
        }
        assert_eq!(r.read("k8s/cart.yaml"), manifest, "nothing written");
    }
    // The same file, valid, is patched in: the checks refuse only the bad.
    r.file("ci/results.json", &results_with(|_| {}));
    r.pipeline()
        .args(["patch", "--results", "ci/results.json"])
        .expect(0);
    assert!(
        r.read("k8s/cart.yaml").contains(&format!(
            "registry.test/shop/cart@sha256:{}",
            "ab".repeat(32)
        )),
        "{}",
        r.read("k8s/cart.yaml")
    );
}

#[test]
fn config_errors_name_their_line() {
    let r = one_service_repo("config-lines");
    let base = r.read("pipeline.yaml");
    let expect = |config: Vec<u8>, want: &[&str]| {
        std::fs::write(r.dir.join("pipeline.yaml"), config).unwrap();
        let out = r.pipeline().args(["plan", "--offline"]).expect(2);
        for w in want {
            assert!(out.stderr.contains(w), "want `{w}` in\n{}", out.stderr);
        }
        out.stderr
    };
    // Invalid UTF-8 on line 3: its line, column and byte offset, no hint
    // about -C.
    let mut bytes = b"version: 1\nregistry:\n  host: regis\xfftry.test\n".to_vec();
    bytes.extend_from_slice(&base.as_bytes()[base.find("  repository_prefix").unwrap()..]);
    let stderr = expect(bytes, &["pipeline.yaml:3:14: byte 34 is not valid UTF-8"]);
    assert!(!stderr.contains("-C"), "{stderr}");
    // An invalid tag template at its line.
    expect(
        format!("{base}tags: [latest, \"{{nope}}\"]\n").into_bytes(),
        &["pipeline.yaml:8", "{nope}"],
    );
    // services_dir missing, or a file: its own line, not a service.
    expect(
        base.replace("services_dir: services", "services_dir: srv")
            .into_bytes(),
        &["pipeline.yaml:5", "services_dir `srv` is not a folder"],
    );
    r.file("srv", "a file\n");
    expect(
        base.replace("services_dir: services", "services_dir: srv")
            .into_bytes(),
        &["pipeline.yaml:5", "services_dir `srv` is not a folder"],
    );
    std::fs::remove_file(r.dir.join("srv")).unwrap();
    // No parallelism: the key's own line.
    expect(
        format!("{base}build:\n  jobs: 0\n").into_bytes(),
        &["pipeline.yaml:9:9", "build.jobs must be at least 1"],
    );
    expect(
        format!("{base}build:\n  jobs: 2\n  push_jobs: 0\n").into_bytes(),
        &["pipeline.yaml:10:14", "build.push_jobs must be at least 1"],
    );
}

#[test]
fn service_folders_and_dockerfiles_outside_the_repo_are_refused() {
    let r = one_service_repo("outside-links");
    let outside = Repo::new("outside-links-elsewhere");
    outside
        .file("api/Dockerfile", "FROM scratch\nCOPY secret.txt /\n")
        .file("api/secret.txt", "not for the image\n")
        .file("orders.Dockerfile", "FROM scratch\n");
    std::os::unix::fs::symlink(outside.dir.join("api"), r.dir.join("services/api")).unwrap();
    let out = r.pipeline().args(["plan", "--offline"]).expect(2);
    assert!(
        out.stderr.contains("pipeline.yaml:5")
            && out
                .stderr
                .contains("the service folder `services/api` is a symlink to")
            && out.stderr.contains("outside the repo"),
        "{}",
        out.stderr
    );
    std::fs::remove_file(r.dir.join("services/api")).unwrap();

    // A Dockerfile linked out of the repo: refused, naming it.
    std::fs::create_dir_all(r.dir.join("services/orders")).unwrap();
    std::os::unix::fs::symlink(
        outside.dir.join("orders.Dockerfile"),
        r.dir.join("services/orders/Dockerfile"),
    )
    .unwrap();
    let out = r.pipeline().args(["plan", "--offline"]).expect(2);
    assert!(
        out.stderr.contains("services/orders/Dockerfile")
            && out.stderr.contains("outside the repo"),
        "{}",
        out.stderr
    );
    // Linked within the repo, it is a service like any other.
    std::fs::remove_file(r.dir.join("services/orders/Dockerfile")).unwrap();
    r.file("docker/orders", "FROM scratch\n");
    std::os::unix::fs::symlink(
        "../../docker/orders",
        r.dir.join("services/orders/Dockerfile"),
    )
    .unwrap();
    let out = r.pipeline().args(["plan", "--offline"]).expect(0);
    assert!(
        out.stdout.lines().any(|l| l.contains(" orders ")),
        "{}",
        out.stdout
    );
}

#[test]
fn an_unreadable_service_folder_is_an_error_naming_it() {
    let r = one_service_repo("unreadable");
    r.file("services/orders/Dockerfile", "FROM scratch\n");
    let folder = r.dir.join("services/orders");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o000)).unwrap();
    let out = r
        .pipeline()
        .without_root_override()
        .args(["plan", "--offline"])
        .output();
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("cannot read the folder `services/orders`")
            && out.stderr.contains("Permission denied"),
        "{}",
        out.stderr
    );
}

/// A shard's results file for a repo whose pipeline.yaml is `config`.
fn shard_file(config: &str, index: usize, services: &[&str], sha: &str) -> String {
    use sha2::Digest;
    let results: serde_json::Map<String, serde_json::Value> = services
        .iter()
        .map(|s| {
            (
                s.to_string(),
                serde_json::json!({
                    "status": "built",
                    "repository": format!("registry.test/shop/{s}"),
                    "digest": format!("sha256:{}", "ab".repeat(32)),
                    "tags": [format!("in-{s}")],
                    "input_digest": format!("sha256:{}", "cd".repeat(32)),
                    "duration_ms": 10,
                    "error": null
                }),
            )
        })
        .collect();
    serde_json::to_string_pretty(&serde_json::json!({
        "schema": 1,
        "git": { "sha": sha, "dirty": false },
        "registry": "registry.test",
        "services": results,
        "manifests": [],
        "shard": {
            "index": index,
            "of": 2,
            "selected": ["cart", "orders"],
            "config": format!("sha256:{}", hex::encode(sha2::Sha256::digest(config.as_bytes())))
        }
    }))
    .unwrap()
}

#[test]
fn finish_refuses_shards_that_do_not_add_up() {
    let r = one_service_repo("finish-refuses");
    r.file("services/orders/Dockerfile", "FROM scratch\n");
    let config = r.read("pipeline.yaml");
    let manifest = r.read("k8s/cart.yaml");
    let sha = "1a2b3c4d5e6f";
    r.file("s1.json", &shard_file(&config, 1, &["cart"], sha))
        .file("s2.json", &shard_file(&config, 2, &["orders"], sha))
        .file(
            "both.json",
            &shard_file(&config, 2, &["cart", "orders"], sha),
        )
        .file(
            "other-commit.json",
            &shard_file(&config, 2, &["orders"], "9f9f9f9f"),
        )
        .file(
            "other-config.json",
            &shard_file("version: 1\n", 2, &["orders"], sha),
        )
        .file("plain.json", &results_with(|_| {}));
    for (files, says) in [
        (
            &["plain.json"][..],
            "plain.json: not the results of a `run --shard K/N`",
        ),
        (
            &["s1.json", "s1.json"][..],
            "s1.json: shard 1/2 is given twice (also s1.json)",
        ),
        (
            &["s1.json"][..],
            "no results for `orders` (shard 2/2 missing)",
        ),
        (
            &["s1.json", "both.json"][..],
            "both.json: service `cart` is also in s1.json",
        ),
        (
            &["s1.json", "other-config.json"][..],
            "other-config.json: written with another pipeline.yaml",
        ),
        (
            &["s1.json", "other-commit.json"][..],
            "other-commit.json: commit Some(\"9f9f9f9f\") differs",
        ),
        // Every shard there, but this checkout is another commit.
        (
            &["s1.json", "s2.json"][..],
            "the shards ran on commit 1a2b3c4d5e6f, this checkout is",
        ),
    ] {
        let mut run = r.pipeline().args(["finish"]);
        for f in files {
            run = run.args([*f]);
        }
        let out = run.expect(2);
        assert!(
            out.stderr.contains(says),
            "{files:?}: want `{says}` in\n{}",
            out.stderr
        );
    }
    assert_eq!(r.read("k8s/cart.yaml"), manifest, "nothing written");
    assert!(!r.dir.join(".pipeline/results.json").exists());
}

#[test]
fn a_helm_image_path_that_matches_no_service_is_an_error_naming_it() {
    let r = one_service_repo("helm-typo");
    let values = "# production values\ncart:\n  image:\n    repository: registry.test/shop/cart\n    tag: latest # pinned by pipeline\n";
    r.file("charts/shop/values.yaml", values);
    let config = r.read("pipeline.yaml");
    let with_path = |path: &str| {
        config.replace(
            "manifests:\n",
            &format!("manifests:\n  helm:\n    - values: charts/shop/values.yaml\n      image_path: \"{path}\"\n"),
        )
    };
    r.file("pipeline.yaml", &with_path("{service}.imag"));
    r.file("ci/results.json", &results_with(|_| {}));
    let manifest = r.read("k8s/cart.yaml");
    let out = r
        .pipeline()
        .args(["patch", "--results", "ci/results.json"])
        .expect(2);
    assert!(
        out.stderr.contains("charts/shop/values.yaml")
            && out
                .stderr
                .contains("image_path `{service}.imag` matches no service")
            && out.stderr.contains("`cart.imag`"),
        "{}",
        out.stderr
    );
    assert_eq!(r.read("charts/shop/values.yaml"), values, "nothing written");
    assert_eq!(r.read("k8s/cart.yaml"), manifest, "nothing written");
    // The right path pins it.
    r.file("pipeline.yaml", &with_path("{service}.image"));
    r.pipeline()
        .args(["patch", "--results", "ci/results.json"])
        .expect(0);
    let patched = r.read("charts/shop/values.yaml");
    assert!(
        patched.contains(&format!("digest: sha256:{}", "ab".repeat(32)))
            && patched.starts_with("# production values\n"),
        "{patched}"
    );
}
