//! The two ways progress is shown on stderr while a run works; the core only
//! emits [`Event`]s and never knows which one is listening.
//!
//! - [`Plain`]: one whole line per event, prefixed with the elapsed time and
//!   the service, written under a lock so parallel builds never interleave
//!   mid-line. For CI logs and pipes. On GitHub Actions each service's build
//!   output is held back and printed as one `::group::` when the service is
//!   done (parallel groups cannot nest), and failures become `::error`
//!   annotations.
//! - [`Tty`]: indicatif bars, one line per service (stage, build step `i/n`,
//!   bytes pushed, elapsed) and an overall bar; a finished service collapses
//!   to one line with its status, short digest and duration. Redrawn at most
//!   8 times a second, so two cores are not spent on drawing.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use console::Style;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::report::render::short_digest;
use crate::report::{Event, Reporter, ServiceResult, Status};

/// The service column for lines that belong to no service.
const RUN: &str = "pipeline";

/// One line per event.
pub struct Plain {
    start: Instant,
    width: usize,
    out: Mutex<Box<dyn Write + Send>>,
    /// GitHub Actions: build output held per service until it finishes.
    github: Option<Mutex<HashMap<String, Vec<String>>>>,
    /// Elapsed time as printed; fixed in snapshot tests.
    clock: fn(Instant) -> f64,
}

impl Plain {
    pub fn new(names: &[&str], github: bool, out: Box<dyn Write + Send>) -> Plain {
        Plain {
            start: Instant::now(),
            width: names
                .iter()
                .map(|n| n.len())
                .chain([RUN.len()])
                .max()
                .unwrap_or(0),
            out: Mutex::new(out),
            github: github.then(|| Mutex::new(HashMap::new())),
            clock: |start| start.elapsed().as_secs_f64(),
        }
    }

    /// A reporter whose clock always reads zero, for tests.
    pub fn frozen(names: &[&str], github: bool, out: Box<dyn Write + Send>) -> Plain {
        Plain {
            clock: |_| 0.0,
            ..Plain::new(names, github, out)
        }
    }

    fn prefixed(&self, service: &str, text: &str) -> String {
        let secs = (self.clock)(self.start);
        format!("[{secs:7.1}s] {service:<w$}  {text}\n", w = self.width)
    }

    fn write(&self, text: &str) {
        let mut out = self.out.lock().expect("stderr lock");
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }

    fn line(&self, service: &str, text: &str) {
        self.write(&self.prefixed(service, text));
    }
}

/// `built sha256:abc… in 3.2s (files changed: …)` and the like.
fn outcome(result: &ServiceResult) -> String {
    let secs = result.duration_ms as f64 / 1000.0;
    match result.status {
        Status::Built | Status::Cached => format!(
            "{} {} in {secs:.1}s{}",
            if result.status == Status::Built {
                "built"
            } else {
                "cached"
            },
            result
                .digest
                .as_deref()
                .map(short_digest)
                .unwrap_or("(local)"),
            result
                .reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ),
        Status::Failed => format!("FAILED: {}", result.error.as_deref().unwrap_or("failed")),
        Status::Skipped => format!("skipped: {}", result.error.as_deref().unwrap_or("")),
    }
}

/// A GitHub Actions workflow command argument: `%`, CR and LF escaped.
fn github_escape(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow command property (`title=`): also `:` and `,` escaped.
fn github_property(text: &str) -> String {
    github_escape(text).replace(':', "%3A").replace(',', "%2C")
}

/// A token for `::stop-commands::`, so build output cannot issue workflow
/// commands; not guessable by what the build prints before it.
fn stop_token(service: &str) -> String {
    use sha2::{Digest, Sha256};
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seed = format!("{service}{nanos}{}", std::process::id());
    hex::encode(&Sha256::digest(seed.as_bytes())[..12])
}

impl Reporter for Plain {
    fn event(&self, event: Event<'_>) {
        match event {
            Event::Queued { services } => self.line(
                RUN,
                &format!("{} services: {}", services.len(), services.join(", ")),
            ),
            Event::Hashed { files, millis } => {
                self.line(RUN, &format!("hashed {files} files in {millis} ms"))
            }
            Event::Stage { service, stage } => self.line(service, stage.name()),
            Event::Step {
                service,
                index,
                count,
                instruction,
            } => self.line(service, &format!("step {index}/{count}: {instruction}")),
            Event::Log { service, line } => {
                if let Some(held) = &self.github {
                    held.lock()
                        .expect("log lock")
                        .entry(service.to_string())
                        .or_default()
                        .push(line.to_string());
                } else if !line.starts_with("Step ") {
                    self.line(service, &format!("| {line}"));
                }
            }
            Event::Pushed { .. } => {}
            Event::Tagged { service, tag } => self.line(service, &format!("tagged {tag}")),
            Event::Finished { service, result } => {
                let mut text = String::new();
                if let Some(held) = &self.github {
                    let lines = held
                        .lock()
                        .expect("log lock")
                        .remove(service)
                        .unwrap_or_default();
                    if !lines.is_empty() {
                        let token = stop_token(service);
                        text.push_str(&format!("::group::{service}: build log\n"));
                        text.push_str(&format!("::stop-commands::{token}\n"));
                        for l in lines {
                            text.push_str(&l);
                            text.push('\n');
                        }
                        text.push_str(&format!("::{token}::\n::endgroup::\n"));
                    }
                }
                text.push_str(&self.prefixed(service, &outcome(result)));
                if self.github.is_some() && result.status == Status::Failed {
                    text.push_str(&format!(
                        "::error title={}::{}\n",
                        github_property(&format!("{service} failed")),
                        github_escape(result.error.as_deref().unwrap_or("failed"))
                    ));
                }
                // One write: the group, the line and the annotation stay together.
                self.write(&text);
            }
            Event::Patched { path, changed } => self.line(
                RUN,
                &format!("{} {path}", if changed { "patched" } else { "unchanged" }),
            ),
        }
    }
}

/// Live bars on a terminal.
pub struct Tty {
    multi: MultiProgress,
    /// Print build output lines above the bars.
    verbose: bool,
    overall: ProgressBar,
    bars: Mutex<HashMap<String, Line>>,
}

struct Line {
    bar: ProgressBar,
    stage: String,
    step: Option<String>,
    pushed: Option<(u64, u64)>,
}

impl Line {
    fn message(&self) -> String {
        let mut m = self.stage.clone();
        if let Some(step) = &self.step {
            m = format!("{m} {step}");
        }
        if let Some((sent, total)) = self.pushed {
            m = format!(
                "{m} {}/{}",
                indicatif::HumanBytes(sent),
                indicatif::HumanBytes(total)
            );
        }
        m
    }
}

impl Tty {
    pub fn new(verbose: bool) -> Tty {
        if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
            console::set_colors_enabled_stderr(false);
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(8));
        let overall = multi.add(ProgressBar::new(0));
        overall.set_style(
            ProgressStyle::with_template("{bar:30.cyan/blue} {pos}/{len} services  {elapsed}")
                .expect("static template")
                .progress_chars("━╸ "),
        );
        // Redrawn on its own too, so a rate-limited update is never lost.
        overall.enable_steady_tick(Duration::from_millis(250));
        Tty {
            multi,
            verbose,
            overall,
            bars: Mutex::new(HashMap::new()),
        }
    }

    fn update(&self, service: &str, change: impl FnOnce(&mut Line)) {
        let mut bars = self.bars.lock().expect("bars lock");
        // A collapsed line stays as it is (tags are added after it finished).
        if let Some(line) = bars.get_mut(service).filter(|l| !l.bar.is_finished()) {
            change(line);
            line.bar.set_message(line.message());
        }
    }
}

impl Reporter for Tty {
    fn event(&self, event: Event<'_>) {
        match event {
            Event::Queued { services } => {
                let width = services.iter().map(|s| s.len()).max().unwrap_or(0);
                let style = ProgressStyle::with_template(&format!(
                    "{{spinner:.cyan}} {{prefix:<{width}.bold}}  {{wide_msg}} {{elapsed:>4}}"
                ))
                .expect("static template")
                .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ ");
                let mut bars = self.bars.lock().expect("bars lock");
                for service in services {
                    let bar = self
                        .multi
                        .insert_before(&self.overall, ProgressBar::new_spinner());
                    bar.set_style(style.clone());
                    bar.set_prefix(service.to_string());
                    bar.set_message("queued");
                    bar.enable_steady_tick(Duration::from_millis(120));
                    bars.insert(
                        service.to_string(),
                        Line {
                            bar,
                            stage: "queued".into(),
                            step: None,
                            pushed: None,
                        },
                    );
                }
                self.overall.set_length(services.len() as u64);
            }
            Event::Hashed { files, millis } => {
                let _ = self
                    .multi
                    .println(format!("hashed {files} files in {millis} ms"));
            }
            Event::Stage { service, stage } => self.update(service, |l| {
                l.stage = stage.name().to_string();
                l.step = None;
            }),
            Event::Step {
                service,
                index,
                count,
                instruction,
            } => self.update(service, |l| {
                l.step = Some(format!("{index}/{count} {instruction}"));
            }),
            Event::Pushed {
                service,
                sent,
                total,
            } => self.update(service, |l| l.pushed = Some((sent, total))),
            Event::Log { service, line } if self.verbose => {
                let _ = self.multi.println(format!("{service} | {line}"));
            }
            Event::Log { .. } | Event::Tagged { .. } => {}
            Event::Finished { service, result } => {
                let bars = self.bars.lock().expect("bars lock");
                let Some(line) = bars.get(service) else {
                    return;
                };
                let (mark, style) = match result.status {
                    Status::Built => ("✓", Style::new().green()),
                    Status::Cached => ("✓", Style::new().dim()),
                    Status::Failed => ("✗", Style::new().red().bold()),
                    Status::Skipped => ("-", Style::new().yellow()),
                };
                let width = bars.keys().map(|k| k.len()).max().unwrap_or(0);
                line.bar.set_style(
                    ProgressStyle::with_template("{wide_msg}").expect("static template"),
                );
                let text = match result.status {
                    Status::Failed if line.step.is_some() => format!(
                        "{}; at step {}",
                        outcome(result),
                        line.step.as_deref().unwrap_or("")
                    ),
                    _ => outcome(result),
                };
                let again = line.bar.is_finished();
                line.bar.finish_with_message(format!(
                    "{} {service:<width$}  {}",
                    style.apply_to(mark),
                    style.apply_to(text)
                ));
                if !again {
                    self.overall.inc(1);
                }
            }
            Event::Patched { path, changed } => {
                let _ = self.multi.println(format!(
                    "{} {path}",
                    if changed { "patched" } else { "unchanged" }
                ));
            }
        }
    }

    fn done(&self) {
        self.overall.finish_and_clear();
        for line in self.bars.lock().expect("bars lock").values() {
            if !line.bar.is_finished() {
                line.bar.finish();
            }
        }
    }
}
