//! What people read of a run, pinned by snapshots (insta): the plain
//! progress lines and the GitHub Actions output of a run of the executor on
//! the fake engine and registry, and the summaries of a results file.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use crate::execute::fake::{self, Fakes};
use crate::report::events::Recorder;
use crate::report::progress::Plain;
use crate::report::render;
use crate::report::{
    Event, GitSummary, ManifestResult, Reporter, Results, SCHEMA, ServiceResult, Status,
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
        builder: None,
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
            pinned: vec!["orders".into()],
            not_deployed: vec!["base".into()],
            warnings: vec![],
        }],
        shard: None,
    }
}

/// The events of a run of four services on the fakes (base cached, gateway
/// failing at its `RUN`, orders built while gateway fails, payments not
/// started), in a canonical order: the run's own events first, then each
/// service's in plan order, then the patch. Within a service the order is
/// the executor's; across services it depends on scheduling, which a
/// snapshot must not. Durations are set to zero.
fn executed_run() -> Vec<Event> {
    let fakes = Fakes::default();
    {
        let mut world = fakes.world.lock().unwrap();
        world.broken.push("gateway".into());
        world.tags.insert(
            ("shop/base".into(), "in-base".into()),
            fake::digest_of("shop/base"),
        );
    }
    let plan = fake::plan(
        ["base", "gateway", "orders", "payments"]
            .iter()
            .map(|n| fake::step(n, &[]))
            .collect(),
    );
    let recorder = Recorder::default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    recorder.event(Event::Queued {
        services: plan.steps.iter().map(|s| s.service.name.clone()).collect(),
    });
    recorder.event(Event::Hashed {
        files: 42,
        millis: 3,
    });
    runtime.block_on(fake::run_reported(&fakes, &plan, 2, false, &recorder));
    // What the patch stage reports after a run, from a real patch of a
    // small overlay.
    let pins: Vec<crate::patch::Pinned> = ["orders", "gateway", "payments"]
        .iter()
        .map(|s| crate::patch::Pinned {
            service: s.to_string(),
            repository: format!("shop/{s}"),
            uri: format!("registry.test/shop/{s}"),
            digest: fake::digest_of(s),
            tag: "in-x".into(),
            content_tag: "in-x".into(),
        })
        .collect();
    let inputs = crate::patch::kustomize::Inputs {
        images: vec!["orders".into(), "ghcr.io/acme/demo:1-gateway".into()],
        remote: Vec::new(),
    };
    let (_, report) = crate::patch::kustomize::patch(
        "resources: [../base]\n",
        &pins,
        crate::config::Pin::Digest,
        &inputs,
    )
    .unwrap();
    recorder.event(Event::Patched {
        path: "k8s/overlays/production/kustomization.yaml".into(),
        changed: true,
        report: Box::new(report),
    });
    let events = recorder.0.into_inner().unwrap();
    let service = |e: &Event| -> Option<String> {
        match e {
            Event::Stage { service, .. }
            | Event::Step { service, .. }
            | Event::Log { service, .. }
            | Event::Pushed { service, .. }
            | Event::Tagged { service, .. }
            | Event::Retry { service, .. }
            | Event::Finished { service, .. } => Some(service.clone()),
            Event::Queued { .. }
            | Event::Hashed { .. }
            | Event::Note { .. }
            | Event::Patched { .. } => None,
        }
    };
    let rank = |e: &Event| match (e, service(e)) {
        (Event::Patched { .. }, _) => usize::MAX,
        (_, None) => 0,
        (_, Some(s)) => 1 + plan.steps.iter().position(|p| p.service.name == s).unwrap(),
    };
    let mut events: Vec<Event> = events
        .into_iter()
        .map(|mut e| {
            if let Event::Finished { result, .. } = &mut e {
                result.duration_ms = 0;
            }
            e
        })
        .collect();
    events.sort_by_key(rank);
    events
}

#[test]
fn results_file() {
    let fakes = Fakes::default();
    fakes.world.lock().unwrap().broken.push("gateway".into());
    let plan = fake::plan(vec![
        fake::step("base", &[]),
        fake::step("gateway", &["base"]),
        fake::step("orders", &["base"]),
    ]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut services = runtime.block_on(fake::run(&fakes, &plan, 2, true));
    for r in services.values_mut() {
        r.duration_ms = 0;
    }
    let results = Results {
        schema: SCHEMA,
        git: GitSummary {
            sha: Some("1a2b3c4d".into()),
            dirty: false,
        },
        registry: Some("registry.test".into()),
        services,
        manifests: vec![],
        shard: None,
    };
    let json = results.to_json();
    let back: Results = serde_json::from_str(&json).unwrap();
    assert_eq!(
        back.services["orders"].digest,
        results.services["orders"].digest
    );
    insta::assert_snapshot!(json);
}

fn replay(events: Vec<Event>, github: bool) -> String {
    let out = Captured::default();
    let r = Plain::frozen(
        &["base", "gateway", "orders", "payments"],
        github,
        Box::new(out.clone()),
    );
    for e in events {
        r.event(e);
    }
    out.text()
}

#[test]
fn plain_progress() {
    let text = replay(executed_run(), false);
    // What the run did, whatever the snapshot says.
    assert!(text.contains("base      cached"), "{text}");
    assert!(
        text.contains("gateway   FAILED: build failed: at `Step 2/2 : RUN make`"),
        "{text}"
    );
    assert!(text.contains("orders    built"), "{text}");
    assert!(text.contains("payments  skipped: not started"), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn github_actions_progress() {
    let text = replay(executed_run(), true);
    // The stop-commands token is random on purpose.
    insta::with_settings!({filters => vec![(r"[0-9a-f]{24}", "[token]")]}, {
        insta::assert_snapshot!(text);
    });
}

#[test]
fn github_commands_are_escaped_and_logs_cannot_issue_commands() {
    let out = Captured::default();
    let r = Plain::frozen(&["web"], true, Box::new(out.clone()));
    r.event(Event::Log {
        service: "web".into(),
        line: "::error::forged by the build".into(),
    });
    let mut failed = result(Status::Failed, "", Some("exit 1: 100%\nat step, 3"), 10);
    failed.reason = None;
    r.event(Event::Finished {
        service: "web".into(),
        result: Box::new(failed),
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
