//! One whole line per event, for CI logs and pipes (see the module above).

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::sync::Mutex;
use std::time::Instant;

use super::{github_escape, github_property, outcome, stop_token};
use crate::report::{Event, Reporter, Status};

/// How many lines of one service's build output a GitHub Actions group
/// holds; earlier ones are in the service's log file.
const HELD_LINES: usize = 2000;

/// The service column for lines that belong to no service.
const RUN: &str = "pipeline";

/// One line per event.
pub(crate) struct Plain {
    start: Instant,
    width: usize,
    out: Mutex<Box<dyn Write + Send>>,
    /// GitHub Actions: build output held per service until it finishes.
    github: Option<Mutex<HashMap<String, Held>>>,
    /// Elapsed time as printed; fixed in snapshot tests.
    clock: fn(Instant) -> f64,
}

/// The last [`HELD_LINES`] lines of a service's output, and how many came
/// before them.
#[derive(Default)]
struct Held {
    lines: VecDeque<String>,
    earlier: u64,
}

impl Plain {
    pub(crate) fn new(names: &[&str], github: bool, out: Box<dyn Write + Send>) -> Plain {
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
    #[cfg(test)]
    pub(crate) fn frozen(names: &[&str], github: bool, out: Box<dyn Write + Send>) -> Plain {
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

impl Reporter for Plain {
    fn event(&self, event: Event) {
        match event {
            Event::Queued { services } => self.line(
                RUN,
                &format!("{} services: {}", services.len(), services.join(", ")),
            ),
            Event::Hashed { files, millis } => {
                self.line(RUN, &format!("hashed {files} files in {millis} ms"))
            }
            Event::Note { text } => self.line(RUN, &text),
            Event::Stage { service, stage } => self.line(&service, stage.name()),
            Event::Step {
                service,
                index,
                count,
                instruction,
            } => self.line(&service, &format!("step {index}/{count}: {instruction}")),
            Event::Log { service, line } => {
                if let Some(held) = &self.github {
                    let mut held = held.lock().expect("log lock");
                    let held = held.entry(service).or_default();
                    if held.lines.len() == HELD_LINES {
                        held.lines.pop_front();
                        held.earlier += 1;
                    }
                    held.lines.push_back(line);
                } else if !line.starts_with("Step ") {
                    self.line(&service, &format!("| {line}"));
                }
            }
            Event::Pushed { .. } => {}
            Event::Retry {
                service,
                attempt,
                cause,
                delay_ms,
            } => self.line(
                &service,
                &format!(
                    "attempt {attempt} failed ({cause}); retrying in {:.1}s",
                    delay_ms as f64 / 1000.0
                ),
            ),
            Event::Tagged { service, tag } => self.line(&service, &format!("tagged {tag}")),
            Event::Finished { service, result } => {
                let mut text = String::new();
                if let Some(held) = &self.github {
                    let held = held
                        .lock()
                        .expect("log lock")
                        .remove(&service)
                        .unwrap_or_default();
                    if !held.lines.is_empty() {
                        let token = stop_token(&service);
                        text.push_str(&format!("::group::{service}: build log\n"));
                        text.push_str(&format!("::stop-commands::{token}\n"));
                        if held.earlier > 0 {
                            text.push_str(&format!(
                                "… {} earlier lines are in .pipeline/logs/{service}.log\n",
                                held.earlier
                            ));
                        }
                        for l in held.lines {
                            text.push_str(&l);
                            text.push('\n');
                        }
                        text.push_str(&format!("::{token}::\n::endgroup::\n"));
                    }
                }
                text.push_str(&self.prefixed(&service, &outcome(&result)));
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
            Event::Patched {
                path,
                changed,
                report,
            } => {
                let mut text = self.prefixed(
                    RUN,
                    &format!(
                        "{} {path}: {}",
                        if changed { "patched" } else { "unchanged" },
                        report.summary()
                    ),
                );
                for warning in &report.warnings {
                    text.push_str(&self.prefixed(RUN, &format!("warning: {path}: {warning}")));
                    if self.github.is_some() {
                        text.push_str(&format!(
                            "::warning title={}::{}\n",
                            github_property(&path),
                            github_escape(warning)
                        ));
                    }
                }
                self.write(&text);
            }
        }
    }
}
