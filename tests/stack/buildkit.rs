//! Builds with BuildKit on the real engine: what modern Dockerfiles use
//! (cache and secret mounts, `COPY --chmod`, the platform arguments,
//! `FROM --platform`), per-Dockerfile ignore files, failures that name their
//! step, and Dockerfiles that need more than the builder offers. Each image
//! is read back from the registry by the digest in the results file, with
//! `docker run` and `skopeo`, not with our code.

use crate::common::*;

/// The test config, with BuildKit chosen whatever `PIPELINE_TEST_BUILDER` says.
fn buildkit(r: &Repo, extra: &str) {
    r.config(&format!("build:\n  builder: buildkit\n{extra}"));
}

/// `docker run --rm <image> sh -c <script>` of the service's pushed digest.
fn run_in(r: &Repo, service: &str, script: &str) -> String {
    let image = format!("{}@{}", r.repository(service), r.digest(service));
    assert_eq!(
        skopeo_digest(&image).as_deref(),
        Some(r.digest(service).as_str())
    );
    docker(&["run", "--rm", &image, "sh", "-c", script])
}

#[test]
fn a_cache_mount_lasts_from_one_build_to_the_next() {
    let r = Repo::new("bk-cache");
    // The cache id is the repo's own: other tests' builds share the engine.
    r.file(
        "services/app/Dockerfile",
        &format!(
            "FROM local/busybox:1\nCOPY version.txt /\nRUN --mount=type=cache,id={},target=/cache sh -c 'echo x >> /cache/count; wc -l < /cache/count > /builds'\n",
            r.prefix.trim_end_matches('/')
        ),
    )
    .file("services/app/version.txt", "1\n");
    buildkit(&r, "");
    r.commit();
    r.pipeline().args(["run"]).expect(0);
    let first: u32 = run_in(&r, "app", "cat /builds").parse().unwrap();
    r.file("services/app/version.txt", "2\n");
    r.commit();
    r.pipeline().args(["run"]).expect(0);
    let second: u32 = run_in(&r, "app", "cat /builds").parse().unwrap();
    assert!(
        second > first,
        "the counter in the cache mount grows: {first} then {second}"
    );
}

#[test]
fn a_secret_is_read_during_the_build_and_found_nowhere_after() {
    let r = Repo::new("bk-secret");
    let value = "s3cret-value-7f3a9";
    // The nonce makes the step new: BuildKit's cache key has the secret's
    // id, never its value, so an earlier test run's step would be reused.
    r.file(
        "services/app/Dockerfile",
        &format!(
            "FROM local/busybox:1\nRUN --mount=type=secret,id=token,required sh -c 'echo {}; wc -c < /run/secrets/token > /length; echo \"printed: $(cat /run/secrets/token)\"'\n",
            r.prefix
        ),
    );
    buildkit(
        &r,
        "services:\n  app:\n    secrets:\n      token: { env: PIPELINE_TEST_TOKEN }\n",
    );
    r.commit();
    let out = r
        .pipeline()
        .args(["run", "--progress", "plain"])
        .env("PIPELINE_TEST_TOKEN", value)
        .expect(0);
    assert_eq!(
        run_in(&r, "app", "cat /length").trim(),
        value.len().to_string()
    );
    assert_eq!(
        run_in(&r, "app", "ls /run/secrets 2>/dev/null | wc -l"),
        "0"
    );
    let image = format!("{}@{}", r.repository("app"), r.digest("app"));
    let history = docker(&["history", "--no-trunc", &image]);
    let inspect = docker(&["image", "inspect", &image]);
    let log = r.read(".pipeline/logs/app.log");
    assert!(
        log.contains("printed: ****"),
        "the build's echo is masked: {log}"
    );
    for (what, text) in [
        ("history", history.as_str()),
        ("inspect", inspect.as_str()),
        ("log", log.as_str()),
        ("stdout", out.stdout.as_str()),
        ("stderr", out.stderr.as_str()),
        ("results", &r.read(".pipeline/results.json")),
    ] {
        assert!(!text.contains(value), "the secret is in the {what}");
    }
    let grep = std::process::Command::new("grep")
        .args(["-rl", value, ".pipeline"])
        .current_dir(&r.dir)
        .output()
        .unwrap();
    assert!(grep.stdout.is_empty(), "in .pipeline/: {grep:?}");

    // A required secret that is not there stops the run before any build,
    // naming the service and the id.
    let out = r
        .pipeline()
        .args(["run", "--force"])
        .env_remove("PIPELINE_TEST_TOKEN")
        .expect(2);
    assert!(
        out.stderr
            .contains("service `app`: secret `token`: the environment variable `PIPELINE_TEST_TOKEN` is not set"),
        "{}",
        out.stderr
    );
}

#[test]
fn chmod_platform_arguments_and_from_platform_build() {
    let r = Repo::new("bk-modern");
    r.file(
        "services/app/Dockerfile",
        "FROM --platform=$BUILDPLATFORM local/busybox:1 AS build\nARG TARGETARCH\nARG BUILDPLATFORM\nRUN echo \"$TARGETARCH $BUILDPLATFORM\" > /arch\n\nFROM local/busybox:1\nCOPY --from=build /arch /arch\nCOPY --chmod=755 run.sh /run.sh\n",
    )
    .file("services/app/run.sh", "#!/bin/sh\necho hi\n");
    buildkit(&r, "");
    r.commit();
    r.pipeline().args(["run"]).expect(0);
    assert_eq!(run_in(&r, "app", "cat /arch"), "amd64 linux/amd64");
    assert_eq!(run_in(&r, "app", "stat -c %a /run.sh"), "755");
    // Labels come with the request: no history entry for them.
    let image = format!("{}@{}", r.repository("app"), r.digest("app"));
    let history = docker(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        &image,
    ]);
    assert!(!history.contains("org.opencontainers"), "{history}");
    let labels = docker(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Labels}}",
        &image,
    ]);
    assert!(
        labels.contains("org.opencontainers.image.created"),
        "{labels}"
    );
}

#[test]
fn a_dockerfile_ignore_file_replaces_the_context_one_with_either_builder() {
    for builder in ["buildkit", "classic"] {
        let r = Repo::new(&format!("ignore-{builder}"));
        r.file(
            "services/app/Dockerfile",
            "FROM local/busybox:1\nCOPY . /app/\n",
        )
        .file("services/app/Dockerfile.dockerignore", "secret.env\n")
        .file("services/app/.dockerignore", "kept.txt\n")
        .file("services/app/secret.env", "TOKEN=1\n")
        .file("services/app/kept.txt", "kept\n")
        .config(&format!("build:\n  builder: {builder}\n"));
        r.commit();
        r.pipeline().args(["run"]).expect(0);
        let files = run_in(&r, "app", "ls -a /app");
        assert!(!files.contains("secret.env"), "{builder}: {files}");
        assert!(
            files.contains("kept.txt"),
            "{builder}: the context's .dockerignore does not apply: {files}"
        );
        let before = r.digest("app");
        // The excluded file is not an input: editing it rebuilds nothing.
        r.file("services/app/secret.env", "TOKEN=2\n");
        let out = r.pipeline().args(["plan", "--output", "json"]).expect(0);
        let plan: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(
            plan["services"][0]["state"], "cached",
            "{builder}: {}",
            out.stdout
        );
        r.pipeline().args(["run"]).expect(0);
        assert_eq!(r.digest("app"), before, "{builder}");
    }
}

#[test]
fn a_failing_run_names_its_step_exit_code_and_output() {
    let r = Repo::new("bk-fail");
    r.file(
        "services/app/Dockerfile",
        "FROM local/busybox:1\nRUN sh -c 'echo oops; echo to-stderr >&2; exit 3'\n",
    );
    buildkit(&r, "");
    r.commit();
    let out = r.pipeline().args(["run", "--progress", "plain"]).expect(1);
    let error = r.results()["services"]["app"]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        error.starts_with(
            "build failed: at `[2/2] RUN sh -c 'echo oops; echo to-stderr >&2; exit 3'`"
        ),
        "{error}"
    );
    assert!(error.ends_with("exit code 3"), "{error}");
    assert!(
        out.stderr.contains("oops") && out.stderr.contains("to-stderr"),
        "the step's output is shown: {}",
        out.stderr
    );
}

#[test]
fn a_dockerfile_beyond_the_builder_fails_saying_what_it_needs() {
    let r = Repo::new("bk-needs");
    r.file(
        "services/heredoc/Dockerfile",
        "FROM local/busybox:1\nRUN <<EOF\necho hi > /hi\nEOF\n",
    )
    .file(
        "services/mount/Dockerfile",
        "FROM local/busybox:1\nRUN --mount=type=cache,target=/c true\n",
    )
    .config("services:\n  mount:\n    builder: classic\n");
    r.commit();
    let out = r
        .pipeline()
        .args(["run", "--keep-going", "--progress", "plain"])
        .expect(1);
    let results = r.results();
    let heredoc = results["services"]["heredoc"]["error"].as_str().unwrap();
    assert!(
        heredoc.contains("services/heredoc/Dockerfile:2 uses a heredoc, which needs Dockerfile frontend 1.4 or later")
            && heredoc.contains("built-in frontend is 1.2")
            && heredoc.contains("# syntax=docker/dockerfile:1.4"),
        "{heredoc}"
    );
    let mount = results["services"]["mount"]["error"].as_str().unwrap();
    assert!(
        mount.contains(
            "services/mount/Dockerfile:2 uses RUN --mount=type=cache, which needs BuildKit"
        ),
        "{mount}"
    );
    assert!(
        !out.stderr.contains("unknown instruction"),
        "{}",
        out.stderr
    );
    // Neither reached the engine.
    assert!(!r.dir.join(".pipeline/logs/heredoc.log").exists());
}

#[test]
fn the_network_setting_reaches_run_steps() {
    let r = Repo::new("bk-network");
    r.file(
        "services/app/Dockerfile",
        "FROM local/busybox:1\nRUN ls /sys/class/net > /nets\n",
    );
    buildkit(&r, "services:\n  app:\n    network: none\n");
    r.commit();
    r.pipeline().args(["run"]).expect(0);
    assert_eq!(run_in(&r, "app", "cat /nets"), "lo");
}

#[test]
fn doctor_names_the_builder_and_the_secrets_each_dockerfile_needs() {
    let r = Repo::new("bk-doctor");
    r.file(
        "services/web/Dockerfile",
        "FROM local/busybox:1\nRUN --mount=type=secret,id=npmrc,required true\nRUN --mount=type=secret,id=aws true\n",
    )
    .config("services:\n  web:\n    secrets:\n      npmrc: { env: PIPELINE_TEST_NPM_TOKEN }\n");
    r.commit();
    let out = r
        .pipeline()
        .args(["doctor"])
        .env_remove("PIPELINE_TEST_NPM_TOKEN")
        .expect(1);
    let line = |name: &str| {
        out.stdout
            .lines()
            .find(|l| l.contains(name))
            .unwrap_or_default()
            .to_string()
    };
    assert!(line("builder").starts_with("ok"), "{}", out.stdout);
    assert!(
        line("builder").contains("BuildKit (Docker 20.10"),
        "{}",
        out.stdout
    );
    let secrets = line("secrets");
    assert!(secrets.starts_with("FAIL"), "{}", out.stdout);
    assert!(
        secrets.contains("services/web/Dockerfile:3 mounts secret `aws`"),
        "{secrets}"
    );
    assert!(
        secrets.contains("`PIPELINE_TEST_NPM_TOKEN` is not set"),
        "{secrets}"
    );
    let out = r
        .pipeline()
        .args(["doctor"])
        .env("PIPELINE_TEST_NPM_TOKEN", "x")
        .output();
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("FAIL") && l.contains("`aws`") && !l.contains("NPM")),
        "{}",
        out.stdout
    );
}

#[test]
fn a_run_says_once_which_builder_each_service_gets_and_why() {
    let r = Repo::new("bk-note");
    r.file(
        "services/new/Dockerfile",
        "FROM local/busybox:1\nRUN true\n",
    )
    .file(
        "services/old/Dockerfile",
        "FROM local/busybox:1\nRUN true\n",
    );
    r.config("build:\n  builder: auto\nservices:\n  old:\n    builder: classic\n");
    r.commit();
    let out = r.pipeline().args(["run", "--progress", "plain"]).expect(0);
    let notes: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("builder:"))
        .collect();
    assert_eq!(notes.len(), 1, "{}", out.stderr);
    assert!(
        notes[0].contains("builder: BuildKit (Docker 20.10")
            && notes[0].contains("on linux, API 1.41) for new")
            && notes[0].contains("builder: the classic builder (build.builder: classic) for old"),
        "{}",
        notes[0]
    );
}
