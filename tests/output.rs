//! What people read, pinned by snapshots (insta): the plain progress lines,
//! the GitHub Actions output, the run summary, `--help` of every command and
//! `pipeline init` on a fixture repo. Durations and digests are fixed by
//! construction or filtered.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use pipeline::report::progress::Plain;
use pipeline::report::render;
use pipeline::report::{
    Event, GitSummary, ManifestResult, Reporter, Results, SCHEMA, ServiceResult, Stage, Status,
};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

fn result(status: Status, reason: &str, error: Option<&str>, ms: u64) -> ServiceResult {
    let n = ms % 7;
    ServiceResult {
        status,
        repository: "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop/x".into(),
        digest: matches!(status, Status::Built | Status::Cached)
            .then(|| format!("sha256:{n}{}", "ab".repeat(31) + "c")),
        tags: match status {
            Status::Built | Status::Cached => {
                vec![
                    "in-0123456789abcdef0123".into(),
                    "latest".into(),
                    "1a2b3c4".into(),
                ]
            }
            _ => vec![],
        },
        input_digest: "sha256:00".into(),
        duration_ms: ms,
        error: error.map(str::to_string),
        reason: Some(reason.into()),
        image_id: None,
        log_tail: vec![],
    }
}

fn results() -> Results {
    let mut services = BTreeMap::new();
    services.insert(
        "base".to_string(),
        result(
            Status::Cached,
            "tag in-0123456789abcdef0123 in registry",
            None,
            40,
        ),
    );
    services.insert(
        "orders".to_string(),
        result(
            Status::Built,
            "files changed: services/orders/app.sh (+2 more)",
            None,
            5230,
        ),
    );
    services.insert(
        "gateway".to_string(),
        result(
            Status::Failed,
            "Dockerfile changed",
            Some("build failed: at `Step 3/5 : RUN make`: The command '/bin/sh -c make' returned a non-zero code: 2"),
            2100,
        ),
    );
    services.insert(
        "payments".to_string(),
        result(
            Status::Skipped,
            "",
            Some("not started: another service failed (use --keep-going to go on)"),
            0,
        ),
    );
    Results {
        schema: SCHEMA,
        git: GitSummary {
            sha: Some("1a2b3c4d".into()),
            dirty: false,
        },
        registry: Some("127.0.0.1:5000".into()),
        services,
        manifests: vec![ManifestResult {
            path: "k8s/overlays/production/kustomization.yaml".into(),
            changed: true,
        }],
    }
}

/// The events of a small run, in the order the executor emits them.
fn replay(r: &dyn Reporter) {
    let results = results();
    r.event(Event::Queued {
        services: &["base", "gateway", "orders", "payments"],
    });
    r.event(Event::Hashed {
        files: 42,
        millis: 3,
    });
    for s in ["base", "gateway", "orders"] {
        r.event(Event::Stage {
            service: s,
            stage: Stage::CacheCheck,
        });
    }
    r.event(Event::Stage {
        service: "gateway",
        stage: Stage::Build,
    });
    r.event(Event::Step {
        service: "gateway",
        index: 1,
        count: 5,
        instruction: "FROM local/busybox:1",
    });
    r.event(Event::Log {
        service: "gateway",
        line: " ---> 3f57d9401f8d",
    });
    r.event(Event::Stage {
        service: "orders",
        stage: Stage::Build,
    });
    r.event(Event::Log {
        service: "orders",
        line: "Successfully built 0123abcd",
    });
    r.event(Event::Step {
        service: "gateway",
        index: 3,
        count: 5,
        instruction: "RUN make",
    });
    r.event(Event::Log {
        service: "gateway",
        line: "make: *** [all] Error 2",
    });
    r.event(Event::Stage {
        service: "orders",
        stage: Stage::Push,
    });
    r.event(Event::Pushed {
        service: "orders",
        sent: 1024,
        total: 4096,
    });
    for name in ["base", "gateway", "orders", "payments"] {
        r.event(Event::Finished {
            service: name,
            result: &results.services[name],
        });
    }
    r.event(Event::Patched {
        path: "k8s/overlays/production/kustomization.yaml",
        changed: true,
    });
}

#[test]
fn plain_progress() {
    let out = Captured::default();
    let names = ["base", "gateway", "orders", "payments"];
    replay(&Plain::frozen(&names, false, Box::new(out.clone())));
    insta::assert_snapshot!(out.text());
}

#[test]
fn github_actions_progress() {
    let out = Captured::default();
    let names = ["base", "gateway", "orders", "payments"];
    replay(&Plain::frozen(&names, true, Box::new(out.clone())));
    // The stop-commands token is random on purpose.
    insta::with_settings!({filters => vec![(r"[0-9a-f]{24}", "[token]")]}, {
        insta::assert_snapshot!(out.text());
    });
}

#[test]
fn github_commands_are_escaped_and_logs_cannot_issue_commands() {
    let out = Captured::default();
    let r = Plain::frozen(&["web"], true, Box::new(out.clone()));
    r.event(Event::Log {
        service: "web",
        line: "::error::forged by the build",
    });
    let mut failed = result(Status::Failed, "", Some("exit 1: 100%\nat step, 3"), 10);
    failed.reason = None;
    r.event(Event::Finished {
        service: "web",
        result: &failed,
    });
    let text = out.text();
    let lines: Vec<&str> = text.lines().collect();
    let token = lines[1].strip_prefix("::stop-commands::").expect(&text);
    assert_eq!(token.len(), 24, "{text}");
    assert_eq!(lines[2], "::error::forged by the build");
    assert_eq!(
        lines[3],
        format!("::{token}::"),
        "commands resume after the log"
    );
    assert_eq!(
        lines.last().unwrap(),
        &"::error title=web failed::exit 1: 100%25%0Aat step, 3"
    );
}

#[test]
fn summary() {
    insta::assert_snapshot!(render::summary(&results(), 8400, None));
}

#[test]
fn summary_fits_a_narrow_terminal() {
    let text = render::summary(&results(), 8400, Some(120));
    let rows: Vec<&str> = text.lines().collect();
    assert!(
        rows[..rows.len() - 1]
            .iter()
            .all(|l| l.chars().count() <= 120),
        "{text}"
    );
    assert!(
        text.contains("build failed: at `Step 3/5"),
        "the start of the cause stays: {text}"
    );
    assert!(text.contains('…'), "{text}");
}

#[test]
fn github_step_summary() {
    insta::assert_snapshot!(render::markdown_summary(&results(), 8400));
}

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
