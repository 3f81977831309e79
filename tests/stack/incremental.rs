//! Incremental runs on the real engine and registry: what a change rebuilds,
//! what it does not, and why `pipeline plan` says so. "Nothing built" is
//! checked on the engine's image list and "nothing pushed" on the registry's
//! own access log, not only on the status field.

use crate::common::*;

/// base ← app (requires base), and an independent web.
fn repo(name: &str) -> Repo {
    let r = Repo::new(name);
    r.file(
        "services/base/Dockerfile",
        "FROM local/busybox:1\nCOPY *.txt /etc/\n",
    )
    .file("services/base/base.txt", "base v1\n")
    .file(
        "services/app/Dockerfile",
        "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY . /app/\n",
    )
    .file("services/app/main.txt", "app v1\n")
    .file(
        "services/web/Dockerfile",
        "FROM local/busybox:1\nCOPY . /web/\n",
    )
    .file("services/web/index.html", "<h1>v1</h1>\n")
    .file("services/web/css/site.css", "body {}\n")
    .config("services:\n  app:\n    requires: [base]\ntags: [latest]\n");
    r.commit();
    r
}

fn statuses(r: &Repo) -> Vec<(String, String)> {
    let results = r.results();
    results["services"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v["status"].as_str().unwrap().to_string()))
        .collect()
}

fn expect_statuses(r: &Repo, want: &[(&str, &str)]) {
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(statuses(r), want);
}

/// `pipeline plan --output json` as (name, state, reason) in plan order.
fn plan(r: &Repo, args: &[&str]) -> Vec<(String, String, String)> {
    let mut run = r.pipeline().args(["plan", "--output", "json"]);
    for a in args {
        run = run.args([*a]);
    }
    let out = run.expect(0);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    v["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["state"].as_str().unwrap().to_string(),
                s["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_second_run_and_an_mtime_only_change_build_and_push_nothing() {
    let r = repo("noop");
    let out = r.pipeline().args(["run"]).expect(0);
    assert!(
        out.stderr.contains("step 1/"),
        "a build shows its steps: {}",
        out.stderr
    );
    let first = r.results();
    let images = local_images(&r.prefix);
    assert_eq!(
        images.len(),
        3,
        "one local image per service, under its content tag: {images:?}"
    );
    let requests = registry_requests(&r.prefix).len();

    // Same files, new mtimes: the input digest ignores times.
    for f in [
        "services/app/main.txt",
        "services/web/index.html",
        "services/base/base.txt",
    ] {
        std::fs::File::options()
            .write(true)
            .open(r.dir.join(f))
            .unwrap()
            .set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(60))
            .unwrap();
    }
    for _ in 0..2 {
        let out = r.pipeline().args(["run", "--progress", "plain"]).expect(0);
        expect_statuses(
            &r,
            &[("app", "cached"), ("base", "cached"), ("web", "cached")],
        );
        assert!(!out.stderr.contains("step 1/"), "{}", out.stderr);
    }
    assert_eq!(
        local_images(&r.prefix),
        images,
        "the engine has no new image"
    );
    let later = registry_requests(&r.prefix);
    assert!(later.len() > requests, "the run did look up the registry");
    let written = writes(&later[requests..]);
    assert!(
        written.is_empty(),
        "no blob and no manifest written: {written:?}"
    );
    let second = r.results();
    for s in ["app", "base", "web"] {
        assert_eq!(
            second["services"][s]["digest"],
            first["services"][s]["digest"]
        );
        assert_eq!(
            second["services"][s]["input_digest"],
            first["services"][s]["input_digest"]
        );
    }
}

#[test]
fn one_changed_file_rebuilds_its_service_and_a_base_change_cascades() {
    let r = repo("cascade");
    r.pipeline().args(["run"]).expect(0);

    r.file("services/web/css/site.css", "body { color: red }\n");
    let row = |n: &str, state: &str, reason: String| (n.to_string(), state.to_string(), reason);
    assert_eq!(
        plan(&r, &[]),
        [
            row(
                "base",
                "cached",
                format!("tag {} in registry", tag(&r, "base"))
            ),
            row(
                "app",
                "cached",
                format!("tag {} in registry", tag(&r, "app"))
            ),
            row(
                "web",
                "build",
                "files changed: services/web/css/site.css".into()
            ),
        ]
    );
    assert_eq!(
        plan(&r, &["--offline"])[2],
        row(
            "web",
            "build",
            "files changed: services/web/css/site.css".into()
        )
    );
    assert_eq!(
        plan(&r, &["--offline"])[0],
        row(
            "base",
            "cached",
            "same inputs as the last results (registry not checked)".into()
        )
    );
    r.pipeline().args(["run"]).expect(0);
    expect_statuses(
        &r,
        &[("app", "cached"), ("base", "cached"), ("web", "built")],
    );

    r.file("services/base/base.txt", "base v2\n");
    r.file("services/base/extra.txt", "new\n");
    let planned = plan(&r, &[]);
    assert_eq!(planned[0].1, "build");
    assert_eq!(
        planned[0].2,
        "files changed: services/base/base.txt (+1 more)"
    );
    assert_eq!(
        planned[1],
        (
            "app".into(),
            "build".into(),
            "requires base (rebuilt)".into()
        )
    );
    assert_eq!(planned[2].1, "cached");
    r.pipeline().args(["run"]).expect(0);
    expect_statuses(
        &r,
        &[("app", "built"), ("base", "built"), ("web", "cached")],
    );
    assert_eq!(
        docker(&[
            "run",
            "--rm",
            &format!(
                "{}:{}",
                r.repository("app"),
                r.results()["services"]["app"]["tags"][0].as_str().unwrap()
            ),
            "cat",
            "/etc/base.txt"
        ]),
        "base v2",
        "app was rebuilt on the new base"
    );
}

/// The content tag `plan` shows for `service`.
fn tag(r: &Repo, service: &str) -> String {
    let out = r
        .pipeline()
        .args(["plan", "--offline", "--output", "json"])
        .expect(0);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let s = v["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == service)
        .unwrap()
        .clone();
    s["tags"][0].as_str().unwrap().to_string()
}

#[test]
fn a_same_size_rewrite_is_seen_even_with_the_old_mtime() {
    let r = repo("index");
    // Old enough that the index stores the files' digests.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    r.pipeline().args(["run", "--no-push"]).expect(0);
    assert!(
        r.read(".pipeline/index")
            .contains("services/web/index.html"),
        "the index remembers settled files"
    );
    let path = r.dir.join("services/web/index.html");
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    std::fs::write(&path, "<h1>v2</h1>\n").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    assert_eq!(
        plan(&r, &["--offline"])[2],
        (
            "web".to_string(),
            "build".to_string(),
            "files changed: services/web/index.html".to_string()
        )
    );
}

#[test]
fn build_takes_unchanged_requirements_from_the_local_engine() {
    let r = repo("local");
    let out = r.pipeline().args(["build", "app"]).expect(0);
    assert!(out.stdout.contains("docker run --rm"), "{}", out.stdout);
    let out = r
        .pipeline()
        .args(["build", "app", "--progress", "plain", "--output", "json"])
        .expect(0);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["services"]["base"]["status"], "cached", "{}", out.stdout);
    assert_eq!(
        v["services"]["app"]["status"], "built",
        "the named service is rebuilt"
    );
    assert_eq!(
        docker(&[
            "run",
            "--rm",
            &format!("{}app:dev", r.prefix),
            "cat",
            "/app/main.txt"
        ]),
        "app v1"
    );
}

/// Two services built from the repo root, like
/// `docker build -f services/a/Dockerfile .`, each reading its own folder and
/// a shared library.
fn root_contexts(name: &str) -> Repo {
    let r = Repo::new(name);
    for s in ["a", "b"] {
        r.file(
            &format!("services/{s}/Dockerfile"),
            &format!(
                "FROM local/busybox:1 AS build\nCOPY libs/common /lib/common\nCOPY services/{s}/*.txt /app/\nCOPY services/{s}/conf/ /app/conf/\n\nFROM build\nCOPY --from=build /app/main.txt /main.txt\n"
            ),
        )
        .file(&format!("services/{s}/main.txt"), &format!("{s} v1\n"))
        .file(&format!("services/{s}/more.txt"), "more\n")
        .file(&format!("services/{s}/notes.md"), "not copied\n")
        .file(&format!("services/{s}/conf/app.ini"), "[app]\n");
    }
    r.file("libs/common/util.txt", "util v1\n")
        .file("libs/unused/x.txt", "x\n")
        .file("README.md", "# repo\n")
        .config("defaults:\n  context: .\ntags: [latest]\n");
    r.commit();
    r
}

#[test]
fn root_contexts_rebuild_only_what_their_copies_reach() {
    let r = root_contexts("reach");
    r.pipeline().args(["run"]).expect(0);
    let states = |r: &Repo| -> Vec<String> {
        plan(r, &[])
            .into_iter()
            .map(|p| format!("{} {} {}", p.0, p.1, p.2))
            .collect()
    };

    r.file("services/a/main.txt", "a v2\n");
    r.file("services/a/notes.md", "unreached change\n");
    r.file("README.md", "# changed\n");
    r.file("libs/unused/x.txt", "changed\n");
    let planned = states(&r);
    assert_eq!(
        planned[0], "a build files changed: services/a/main.txt",
        "{planned:?}"
    );
    assert!(planned[1].starts_with("b cached"), "{planned:?}");
    r.pipeline().args(["run"]).expect(0);
    expect_statuses(&r, &[("a", "built"), ("b", "cached")]);

    r.file("libs/common/util.txt", "util v2\n");
    r.pipeline().args(["run"]).expect(0);
    expect_statuses(&r, &[("a", "built"), ("b", "built")]);
}

#[test]
fn a_reached_context_builds_the_same_files_as_docker_build() {
    let r = root_contexts("same");
    r.pipeline().args(["run", "a", "--no-push"]).expect(0);
    let ours = format!(
        "{}a:{}",
        r.prefix,
        r.results()["services"]["a"]["tags"][0].as_str().unwrap()
    );
    // The same Dockerfile and the whole root context, by the docker CLI.
    let theirs = format!("{}docker-a:check", r.prefix);
    let out = std::process::Command::new("docker")
        .args([
            "build",
            "-q",
            "-f",
            "services/a/Dockerfile",
            "-t",
            &theirs,
            ".",
        ])
        .current_dir(&r.dir)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let files = |image: &str| {
        docker(&[
            "run",
            "--rm",
            image,
            "sh",
            "-c",
            "find /app /lib /main.txt | sort | while read f; do if [ -f \"$f\" ]; then md5sum \"$f\"; else echo \"dir $f\"; fi; done",
        ])
    };
    let ours_files = files(&ours);
    assert!(ours_files.contains("/app/conf/app.ini"), "{ours_files}");
    assert!(ours_files.contains("/lib/common/util.txt"), "{ours_files}");
    assert_eq!(ours_files, files(&theirs));
    docker(&["rmi", &theirs]);
}
