//! `pipeline run` end to end on the real Docker engine, the real registry
//! and moto's ECR API, checked with skopeo, docker and boto3.

use crate::common::*;

/// base ← app (requires), a multi-stage web with a target and a build arg,
/// and a .dockerignore'd secret.
fn shop(name: &str) -> Repo {
    let r = Repo::new(name);
    r.file("services/base/Dockerfile", "FROM local/busybox:1\nCOPY base.txt /etc/base.txt\n")
        .file("services/base/base.txt", "base v1\n")
        .file(
            "services/app/Dockerfile",
            "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY . /app/\nCMD [\"cat\", \"/app/main.txt\"]\n",
        )
        .file("services/app/main.txt", "app v1\n")
        .file("services/app/secret.env", "TOKEN=do-not-ship\n")
        .file("services/app/.dockerignore", "secret.env\n*.tmp\n")
        .file("services/app/scratch.tmp", "tmp\n")
        .file(
            "services/web/Dockerfile",
            "FROM local/busybox:1 AS build\nARG GREETING\nRUN mkdir /out && echo \"$GREETING\" > /out/greeting\n\nFROM local/busybox:1 AS runtime\nCOPY --from=build /out/greeting /greeting\n\nFROM runtime AS debug\nRUN echo debug > /mode\n",
        )
        .config(
            "services:\n  app:\n    requires: [base]\n  web:\n    target: runtime\n    build_args: { GREETING: hello }\ntags: [latest, \"{git_short}\"]\n",
        );
    r
}

#[test]
fn every_tag_resolves_to_the_digest_in_results() {
    let r = shop("tags");
    let short = r.commit();
    let out = r.pipeline().args(["run", "--output", "json"]).expect(0);
    let results = r.results();
    let printed: serde_json::Value =
        serde_json::from_str(&out.stdout).expect("stdout is one JSON document");
    assert_eq!(printed, results, "--output json prints the results file");
    assert_eq!(results["schema"], 1);
    assert_eq!(results["registry"], registry());
    for service in ["base", "app", "web"] {
        let s = &results["services"][service];
        assert_eq!(s["status"], "built", "{service}: {s}");
        let digest = s["digest"].as_str().unwrap();
        let content = format!(
            "in-{}",
            &s["input_digest"].as_str().unwrap()["sha256:".len()..][..20]
        );
        let tags: Vec<&str> = s["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        assert_eq!(
            tags,
            [content.as_str(), "latest", short.as_str()],
            "{service}"
        );
        assert_eq!(s["repository"], r.repository(service));
        for tag in &tags {
            let got = skopeo_digest(&format!("{}:{tag}", r.repository(service)));
            assert_eq!(got.as_deref(), Some(digest), "{service}:{tag}");
        }
    }
    let repos = ecr_repositories();
    for service in ["base", "app", "web"] {
        let name = format!("{}{service}", r.prefix);
        assert!(
            repos.contains(&name),
            "ECR repository {name} created; moto has {repos:?}"
        );
    }
}

#[test]
fn requires_builds_from_the_base_of_this_run_and_ignored_files_stay_out() {
    let r = shop("requires");
    r.commit();
    let out = r
        .pipeline()
        .args(["run", "app", "--progress", "plain"])
        .expect(0);
    let results = r.results();
    let services = results["services"].as_object().unwrap();
    assert_eq!(
        services.keys().collect::<Vec<_>>(),
        ["app", "base"],
        "app and what it requires"
    );
    // base was built before app started building.
    let base_done = event_line(&out.stderr, "base", "push").expect("base pushed");
    let app_build = event_line(&out.stderr, "app", "build").expect("app built");
    assert!(base_done < app_build, "{}", out.stderr);

    let app = format!(
        "{}@{}",
        r.repository("app"),
        services["app"]["digest"].as_str().unwrap()
    );
    let base = format!(
        "{}@{}",
        r.repository("base"),
        services["base"]["digest"].as_str().unwrap()
    );
    let layers =
        |image: &str| docker(&["image", "inspect", "-f", "{{json .RootFS.Layers}}", image]);
    let (app_layers, base_layers) = (layers(&app), layers(&base));
    assert!(
        app_layers.starts_with(base_layers.trim_end_matches(']')),
        "app is built FROM this run's base:\n app {app_layers}\nbase {base_layers}"
    );
    let files = docker(&["run", "--rm", "--network", "none", &app, "ls", "-a", "/app"]);
    assert!(files.contains("main.txt"), "{files}");
    assert!(
        !files.contains("secret.env"),
        ".dockerignore'd file in the image: {files}"
    );
    assert!(!files.contains("scratch.tmp"), "{files}");
    assert_eq!(
        docker(&[
            "run",
            "--rm",
            "--network",
            "none",
            &app,
            "cat",
            "/etc/base.txt"
        ]),
        "base v1"
    );
}

#[test]
fn multi_stage_target_and_build_args_apply() {
    let r = shop("target");
    r.commit();
    r.pipeline().args(["run", "web"]).expect(0);
    let web = format!(
        "{}@{}",
        r.repository("web"),
        r.results()["services"]["web"]["digest"].as_str().unwrap()
    );
    assert_eq!(
        docker(&["run", "--rm", "--network", "none", &web, "cat", "/greeting"]),
        "hello"
    );
    let mode = std::process::Command::new("docker")
        .args(["run", "--rm", "--network", "none", &web, "cat", "/mode"])
        .output()
        .unwrap();
    assert!(
        !mode.status.success(),
        "the debug stage after the target must not be built"
    );
    let labels = docker(&["image", "inspect", "-f", "{{json .Config.Labels}}", &web]);
    let sha = r.git(&["rev-parse", "HEAD"]);
    assert!(
        labels.contains(&format!("\"org.opencontainers.image.revision\":\"{sha}\"")),
        "{labels}"
    );
    assert!(
        labels.contains("org.opencontainers.image.created"),
        "{labels}"
    );
}

#[test]
fn a_broken_dockerfile_fails_alone_and_latest_does_not_move() {
    let r = shop("broken");
    r.commit();
    r.pipeline().args(["run"]).expect(0);
    let latest_before = skopeo_digest(&format!("{}:latest", r.repository("web"))).unwrap();

    r.file(
        "services/base/Dockerfile",
        "FROM local/busybox:1\nRUN echo about to fail && exit 3\n",
    );
    r.file(
        "services/web/Dockerfile",
        "FROM local/busybox:1 AS runtime\nRUN echo v2 > /greeting\n",
    );
    r.commit();
    let out = r.pipeline().args(["run", "--keep-going"]).expect(1);
    let results = r.results();
    let s = &results["services"];
    assert_eq!(s["base"]["status"], "failed");
    assert_eq!(
        s["app"]["status"], "skipped",
        "app requires the failed base"
    );
    assert_eq!(
        s["web"]["status"], "built",
        "web is independent and goes on"
    );
    let error = s["base"]["error"].as_str().unwrap();
    assert!(
        error.contains("build failed") && error.contains("RUN echo about to fail"),
        "{error}"
    );
    assert!(out.stderr.contains("service `base`"), "{}", out.stderr);
    assert!(
        out.stderr.contains("about to fail"),
        "the log tail is shown: {}",
        out.stderr
    );
    assert!(r.read(".pipeline/logs/base.log").contains("about to fail"));

    let web_digest = s["web"]["digest"].as_str().unwrap();
    assert_eq!(
        s["web"]["tags"].as_array().unwrap().len(),
        1,
        "only the content tag: {}",
        s["web"]
    );
    let content = s["web"]["tags"][0].as_str().unwrap();
    assert_eq!(
        skopeo_digest(&format!("{}:{content}", r.repository("web"))).as_deref(),
        Some(web_digest)
    );
    assert_ne!(web_digest, latest_before);
    assert_eq!(
        skopeo_digest(&format!("{}:latest", r.repository("web"))).as_deref(),
        Some(latest_before.as_str()),
        "a failed run leaves latest where it was"
    );
}

#[test]
fn without_keep_going_unstarted_services_are_skipped() {
    let r = Repo::new("stop");
    r.file(
        "services/a/Dockerfile",
        "FROM local/busybox:1\nRUN exit 1\n",
    )
    .file(
        "services/b/Dockerfile",
        "FROM local/busybox:1\nRUN echo b > /b\n",
    )
    .config("build:\n  jobs: 1\n");
    r.commit();
    r.pipeline().args(["run"]).expect(1);
    let s = &r.results()["services"];
    assert_eq!(s["a"]["status"], "failed");
    assert_eq!(s["b"]["status"], "skipped", "{}", s["b"]);
}

#[test]
fn a_second_run_is_cached_and_builds_nothing() {
    let r = shop("cached");
    r.commit();
    r.pipeline().args(["run"]).expect(0);
    let first = r.results();
    let out = r.pipeline().args(["run", "--progress", "plain"]).expect(0);
    let second = r.results();
    for service in ["base", "app", "web"] {
        assert_eq!(second["services"][service]["status"], "cached");
        assert_eq!(
            second["services"][service]["digest"],
            first["services"][service]["digest"]
        );
    }
    assert!(
        !out.stderr.contains("step 1/"),
        "nothing was built: {}",
        out.stderr
    );
}

#[test]
fn no_credential_is_printed_or_written() {
    let r = shop("secrets");
    r.commit();
    let home = r.dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let out = r
        .pipeline()
        .args(["run", "-v", "--progress", "plain"])
        .env("HOME", home.to_str().unwrap())
        .expect(0);
    let password = env("PIPELINE_TEST_REGISTRY_PASSWORD");
    let encoded = "QVdTOjEyMzQ1Njc4OTAxMi1hdXRoLXRva2Vu"; // base64 of AWS:<password>, as ECR hands it out
    let mut texts = vec![
        ("stdout".to_string(), out.stdout),
        ("stderr".to_string(), out.stderr),
    ];
    for entry in walk(&r.dir.join(".pipeline")) {
        texts.push((
            entry.display().to_string(),
            std::fs::read_to_string(&entry).unwrap_or_default(),
        ));
    }
    assert!(texts.len() > 3, "logs and results were written");
    for (name, text) in &texts {
        assert!(
            !text.contains(&password),
            "the registry password appears in {name}"
        );
        assert!(!text.contains(encoded), "the ECR token appears in {name}");
    }
    assert!(
        !home.join(".docker").exists(),
        "~/.docker must not be written"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

#[test]
fn environment_and_config_errors_have_their_exit_codes() {
    let r = shop("errors");
    r.commit();
    let out = r
        .pipeline()
        .args(["run"])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .expect(3);
    assert!(out.stderr.contains("AWS_ACCESS_KEY_ID"), "{}", out.stderr);
    let out = r
        .pipeline()
        .args(["run"])
        .env("DOCKER_HOST", "unix:///nonexistent.sock")
        .expect(3);
    assert!(out.stderr.contains("DOCKER_HOST"), "{}", out.stderr);

    let good = r.read("pipeline.yaml");
    let broken = good.replace("  app:\n", "  app:\n    contxt: .\n");
    r.file("pipeline.yaml", &broken);
    let out = r.pipeline().args(["run"]).expect(2);
    assert!(
        out.stderr
            .contains("pipeline.yaml:9:5: services.app.contxt: unknown field `contxt`"),
        "{}",
        out.stderr
    );
    assert!(
        !r.dir.join(".pipeline/results.json").exists(),
        "nothing done on a config error"
    );
    r.file("pipeline.yaml", &good);
    let out = r.pipeline().args(["run", "nope"]).expect(2);
    assert!(
        out.stderr.contains("unknown service `nope`"),
        "{}",
        out.stderr
    );
}

#[test]
fn local_build_needs_no_registry_and_no_aws() {
    let r = shop("local");
    r.commit();
    let out = r
        .pipeline()
        .args(["build", "app"])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_ENDPOINT_URL_ECR", "http://127.0.0.1:9")
        .expect(0);
    let dev = format!("{}app:dev", r.prefix);
    assert!(out.stdout.contains(&dev), "{}", out.stdout);
    assert_eq!(
        docker(&[
            "run",
            "--rm",
            "--network",
            "none",
            &dev,
            "cat",
            "/etc/base.txt"
        ]),
        "base v1"
    );
    docker(&["image", "inspect", &format!("{}base:dev", r.prefix)]);
}

#[test]
fn a_plain_registry_uses_the_docker_config_login() {
    let r = Repo::new("plain");
    r.file(
        "services/solo/Dockerfile",
        "FROM local/busybox:1\nRUN echo solo > /solo\n",
    );
    r.file(
        "pipeline.yaml",
        &format!(
            "version: 1\nregistry:\n  host: {}\n  repository_prefix: {}\ntags: [latest]\nbuild:\n  network: host\n",
            registry(),
            r.prefix
        ),
    );
    r.commit();
    let docker_config = r.dir.join("docker-config");
    std::fs::create_dir_all(&docker_config).unwrap();
    let config_json = docker_config.join("config.json");

    // No login at all: an environment error before anything is built.
    let out = r
        .pipeline()
        .args(["run"])
        .env("DOCKER_CONFIG", docker_config.to_str().unwrap())
        .env_remove("AWS_ENDPOINT_URL_ECR")
        .expect(3);
    assert!(out.stderr.contains("docker login"), "{}", out.stderr);

    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(registry_creds());
    let text = format!(
        "{{\"auths\":{{\"{}\":{{\"auth\":\"{auth}\"}}}}}}",
        registry()
    );
    std::fs::write(&config_json, &text).unwrap();
    r.pipeline()
        .args(["run"])
        .env("DOCKER_CONFIG", docker_config.to_str().unwrap())
        .env_remove("AWS_ENDPOINT_URL_ECR")
        .expect(0);
    let digest = r.results()["services"]["solo"]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        skopeo_digest(&format!("{}:latest", r.repository("solo"))),
        Some(digest)
    );
    assert_eq!(
        std::fs::read_to_string(&config_json).unwrap(),
        text,
        "the Docker config is read, never written"
    );
}

#[test]
fn an_interrupted_run_exits_130() {
    let r = Repo::new("interrupt");
    r.file(
        "services/slow/Dockerfile",
        "FROM local/busybox:1\nRUN sleep 20\n",
    )
    .config("");
    r.commit();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pipeline"))
        .arg("run")
        .current_dir(&r.dir)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the build runs, then interrupt it as Ctrl-C would.
    let log = r.dir.join(".pipeline/logs/slow.log");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("sleep 20")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the build never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(
        !r.dir.join(".pipeline/lock").exists(),
        "an interrupted run releases the checkout's lock"
    );
}

#[test]
fn a_dockerfile_linked_within_the_repo_builds() {
    // As teams keep Dockerfiles in one folder: services/orders/Dockerfile
    // -> ../../docker/orders.
    let r = Repo::new("dockerfile-link");
    r.file(
        "docker/orders",
        "FROM local/busybox:1\nCOPY app.txt /app.txt\nCMD [\"cat\", \"/app.txt\"]\n",
    )
    .file(
        "services/orders/app.txt",
        "orders via a linked Dockerfile\n",
    )
    .config("tags: [latest]\n");
    std::os::unix::fs::symlink(
        "../../docker/orders",
        r.dir.join("services/orders/Dockerfile"),
    )
    .unwrap();
    r.commit();
    r.pipeline().args(["run"]).expect(0);
    let digest = r.digest("orders");
    let image = format!("{}@{digest}", r.repository("orders"));
    assert_eq!(
        skopeo_digest(&format!("{}:latest", r.repository("orders"))).as_deref(),
        Some(digest.as_str())
    );
    let out = docker(&["run", "--rm", "--network", "none", &image]);
    assert_eq!(out.trim(), "orders via a linked Dockerfile");
}

#[test]
fn doctor_checks_everything_and_names_the_fix() {
    let r = shop("doctor");
    r.commit();
    let out = r.pipeline().args(["doctor"]).expect(0);
    for check in [
        "config",
        "git",
        "docker engine",
        "builder",
        "secrets",
        "aws",
        "ecr",
        "registry",
        "manifests",
    ] {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.starts_with("ok") && l.contains(check)),
            "{check}: {}",
            out.stdout
        );
    }
    let out = r
        .pipeline()
        .args(["doctor", "--output", "json"])
        .env("DOCKER_HOST", "tcp://127.0.0.1:1")
        .expect(1);
    let checks: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let engine = checks
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "docker engine")
        .unwrap();
    assert_eq!(engine["status"], "fail");
    assert!(
        engine["fix"].as_str().unwrap().contains("DOCKER_HOST"),
        "{engine}"
    );
    assert!(
        checks
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["status"] == "pass")
            .count()
            >= 5,
        "the other checks still pass: {checks}"
    );
}

#[test]
fn new_repositories_get_the_configured_mutability_and_scanning() {
    let r = Repo::new("create-settings");
    r.file("services/api/Dockerfile", "FROM local/busybox:1\n")
        .file(
            "pipeline.yaml",
            &format!(
                "version: 1\nregistry:\n  ecr:\n    region: us-east-1\n    create_repositories: {{tag_mutability: IMMUTABLE, scan_on_push: true}}\n  host: {}\n  repository_prefix: {}\n",
                registry(),
                r.prefix
            ),
        );
    r.commit();
    r.pipeline().args(["run"]).expect(0);
    assert_eq!(
        r.read(".pipeline/.gitignore"),
        "*\n",
        "the state folder keeps itself out of commits"
    );
    let settings = boto3(
        "r=c.describe_repositories(repositoryNames=[sys.argv[1]])['repositories'][0]\nprint(r['imageTagMutability'], r['imageScanningConfiguration']['scanOnPush'])",
        &[&format!("{}api", r.prefix)],
    );
    assert_eq!(settings, "IMMUTABLE True");
}

#[test]
fn a_missing_copy_source_fails_its_service_before_building() {
    let r = Repo::new("missing-source");
    r.file(
        "services/cart/Dockerfile",
        "FROM local/busybox:1\nCOPY services/cart/app.txt /app/\n",
    )
    .file("services/cart/app.txt", "app\n")
    .file(
        "services/ok/Dockerfile",
        "FROM local/busybox:1\nCOPY ok.txt /\n",
    )
    .file("services/ok/ok.txt", "ok\n")
    .config("");
    r.commit();
    let out = r.pipeline().args(["run", "--keep-going"]).expect(1);
    let error = r.results()["services"]["cart"]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        error.starts_with("build failed: services/cart/Dockerfile:2: COPY source `services/cart/app.txt` does not exist in the build context; it is in `.`"),
        "{error}"
    );
    assert!(
        !r.dir.join(".pipeline/logs/cart.log").exists(),
        "no build was started: {}",
        out.stderr
    );
    assert_eq!(r.results()["services"]["ok"]["status"], "built");
}
