//! What a person sees: the live view in a real terminal (tmux), and plain
//! CI lines from parallel builds that print a lot.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::*;

fn slow_repo(name: &str) -> Repo {
    let r = Repo::new(name);
    for (s, secs) in [("alpha", 1), ("bravo", 2), ("charlie", 6)] {
        r.file(
            &format!("services/{s}/Dockerfile"),
            &format!(
                "FROM local/busybox:1\nRUN sleep {secs} # {}\nCOPY {s}.txt /\nRUN sleep 1\n",
                r.prefix
            ),
        )
        .file(&format!("services/{s}/{s}.txt"), &format!("{s}\n"));
    }
    r.config("tags: [latest]\n");
    r.commit();
    r
}

struct Tmux {
    socket: String,
}

impl Tmux {
    /// A tmux server of its own, so the session gets this process's
    /// environment (the stack's variables), not an older server's.
    fn start(dir: &std::path::Path, command: &str) -> Tmux {
        static SERVERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = SERVERS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let tmux = Tmux {
            socket: format!("pipeline-test-{}-{n}", std::process::id()),
        };
        let out = Command::new("tmux")
            .args([
                "-L",
                &tmux.socket,
                "new-session",
                "-d",
                "-s",
                "t",
                "-x",
                "120",
                "-y",
                "30",
            ])
            .arg("-c")
            .arg(dir)
            .arg(command)
            .env_remove("CI")
            .env_remove("GITHUB_ACTIONS")
            .output()
            .expect("tmux is installed by scripts/stack");
        assert!(
            out.status.success(),
            "tmux: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tmux
    }

    fn screen(&self) -> String {
        self.capture(false)
    }

    /// The screen with its colours, as SGR escape sequences (`-e`).
    fn capture(&self, escapes: bool) -> String {
        let mut args = vec!["-L", &self.socket, "capture-pane", "-p", "-t", "t"];
        if escapes {
            args.push("-e");
        }
        let out = Command::new("tmux").args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The screen once `ready` holds, or a panic with the last screen.
    fn wait_for(&self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let screen = self.screen();
            if ready(&screen) {
                return screen;
            }
            assert!(Instant::now() < deadline, "never saw {what}:\n{screen}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

#[test]
fn the_live_view_in_a_real_terminal() {
    let r = slow_repo("tty");
    let bin = env!("CARGO_BIN_EXE_pipeline");
    let tmux = Tmux::start(&r.dir, &format!("{bin} run; echo EXIT=$?; sleep 600"));

    // Mid-run: a line per service with its stage, and the overall bar.
    let mid = tmux.wait_for("a build step", |s| {
        s.contains(" build ") && s.contains("RUN sleep")
    });
    eprintln!("--- mid-run screen\n{mid}");
    for s in ["alpha", "bravo", "charlie"] {
        let line = mid
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(s))
            .unwrap_or_else(|| panic!("no line for {s}:\n{mid}"));
        assert!(
            [
                "queued",
                "waiting",
                "build",
                "push",
                "repository",
                "cache",
                "tag"
            ]
            .iter()
            .any(|stage| line.contains(stage))
                || line.starts_with('✓'),
            "{line}"
        );
    }
    assert!(mid.contains("/3 services"), "overall bar:\n{mid}");
    assert!(
        mid.lines()
            .any(|l| l.contains(" build ") && l.contains("RUN sleep")),
        "the step being built is shown:\n{mid}"
    );
    // A finished service collapses while the others still run.
    let collapsed = tmux.wait_for("alpha done while charlie builds", |s| {
        s.contains("✓ alpha") && s.contains("/3 services")
    });
    eprintln!("--- alpha done, charlie still building\n{collapsed}");
    assert!(
        collapsed
            .lines()
            .any(|l| l.contains("charlie") && !l.starts_with('✓')),
        "{collapsed}"
    );

    // The end: one collapsed line per service, then the summary table.
    let end = tmux.wait_for("the end of the run", |s| s.contains("EXIT="));
    eprintln!("--- final screen\n{end}");
    assert!(end.contains("EXIT=0"), "{end}");
    for s in ["alpha", "bravo", "charlie"] {
        assert!(
            end.lines()
                .any(|l| l.starts_with(&format!("✓ {s}")) && l.contains("built sha256:")),
            "{s} collapsed to one line:\n{end}"
        );
        assert!(
            end.lines().any(|l| l.starts_with(s) && l.contains("built")),
            "{s} in the summary:\n{end}"
        );
    }
    assert!(
        end.lines()
            .any(|l| l.starts_with("SERVICE") && l.contains("STATUS") && l.contains("WHY")),
        "{end}"
    );
    assert!(
        end.contains("3 built, 0 cached, 0 failed, 0 skipped"),
        "{end}"
    );
    assert!(
        !end.contains("/3 services"),
        "the overall bar is cleared at the end:\n{end}"
    );
    let colours = tmux.capture(true);
    assert!(
        colours.contains("\u{1b}[32m"),
        "built is green:\n{colours:?}"
    );
    drop(tmux);

    // NO_COLOR: the same view without colours (a second, all-cached run).
    let tmux = Tmux::start(
        &r.dir,
        &format!("NO_COLOR=1 {bin} run; echo EXIT=$?; sleep 600"),
    );
    let end = tmux.wait_for("the cached run", |s| s.contains("EXIT="));
    assert!(end.contains("3 cached"), "{end}");
    let plain = tmux.capture(true);
    assert!(
        !plain
            .lines()
            .any(|l| l.starts_with('✓') && l.contains("\u{1b}[3")),
        "NO_COLOR: no colour codes:\n{plain:?}"
    );
}

#[test]
fn parallel_plain_lines_are_whole_and_belong_to_one_service() {
    let r = Repo::new("parallel");
    let names = ["one", "two", "three", "four"];
    for s in names {
        r.file(
            &format!("services/{s}/Dockerfile"),
            &format!(
                "FROM local/busybox:1\nRUN echo {nonce}; i=0; while [ $i -lt 400 ]; do i=$((i+1)); echo \"{s}-says-line-$i of a long line that fills the pipe buffer quickly\"; if [ $((i % 50)) -eq 0 ]; then sleep 0.2; fi; done\n",
                // A fresh step each time: the engine's cache would skip it.
                nonce = r.prefix
            ),
        );
    }
    r.config("tags: [latest]\n");
    r.commit();
    let out = r
        .pipeline()
        .args(["run", "--no-push", "--jobs", "4", "--progress", "plain"])
        .expect(0);
    let mut per_service = std::collections::BTreeMap::new();
    let mut order = Vec::new();
    for line in out.stderr.lines() {
        let (time, rest) = line
            .split_once("s] ")
            .unwrap_or_else(|| panic!("not a whole progress line: {line:?}"));
        assert!(
            time.starts_with('[') && time[1..].trim().parse::<f64>().is_ok(),
            "{line:?}"
        );
        let (service, text) = rest.split_once(' ').unwrap();
        let text = text.trim_start();
        if let Some(output) = text.strip_prefix("| ")
            && output.contains("-says-line-")
        {
            // BuildKit's plain lines carry the step number: `#5 <output>`.
            let output = match output.split_once(' ') {
                Some((step, rest)) if step.starts_with('#') => rest,
                _ => output,
            };
            // The step's own name (`[2/2] RUN …`, `Step 2/2 : RUN …`) is no output.
            if output.starts_with('[') || output.starts_with("Step ") {
                continue;
            }
            let speaker = output.split("-says-").next().unwrap();
            assert_eq!(
                speaker, service,
                "a line of {speaker} under {service}: {line:?}"
            );
            assert!(
                output.ends_with("fills the pipe buffer quickly"),
                "torn: {line:?}"
            );
            *per_service.entry(service.to_string()).or_insert(0) += 1;
            order.push(service.to_string());
        }
    }
    for s in names {
        assert_eq!(per_service.get(s), Some(&400), "{s}: {per_service:?}");
    }
    let switches = order.windows(2).filter(|w| w[0] != w[1]).count();
    assert!(
        switches > 3,
        "the builds ran in parallel ({switches} switches between services)"
    );
}

#[test]
fn on_github_actions_logs_are_grouped_and_the_summary_is_appended() {
    let r = Repo::new("github");
    r.file(
        "services/ok/Dockerfile",
        &format!("FROM local/busybox:1\nRUN echo built-ok # {}\n", r.prefix),
    )
    .file(
        "services/bad/Dockerfile",
        &format!(
            "FROM local/busybox:1\nRUN echo about to fail {} && exit 4\n",
            r.prefix
        ),
    )
    .config("tags: [latest]\n");
    r.commit();
    let summary = r.dir.join("step-summary.md");
    std::fs::write(&summary, "earlier step\n").unwrap();
    let out = r
        .pipeline()
        .args(["run", "--no-push", "--keep-going"])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", summary.to_str().unwrap())
        .expect(1);
    let group = out
        .stderr
        .find("::group::bad: build log")
        .expect(&out.stderr);
    let end = out.stderr[group..].find("::endgroup::").expect(&out.stderr) + group;
    assert!(
        out.stderr[group..end].contains("about to fail"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("::error title=bad failed::build failed"),
        "{}",
        out.stderr
    );
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(
        md.starts_with("earlier step\n### pipeline run"),
        "appended, not replaced: {md}"
    );
    assert!(
        md.contains("| bad | FAILED |") && md.contains("| ok | built |"),
        "{md}"
    );
}
