//! Live bars on a terminal (see the module above).

use std::collections::HashMap;
use std::sync::Mutex;

use console::Style;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::outcome;
use crate::report::{Event, Reporter, Status};

/// Live bars on a terminal.
pub(crate) struct Tty {
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
    pub(crate) fn new(verbose: bool) -> Tty {
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
    fn event(&self, event: Event) {
        match event {
            Event::Queued { services } => {
                let width = services.iter().map(|s| s.len()).max().unwrap_or(0);
                let style = ProgressStyle::with_template(&format!(
                    "{{spinner:.cyan}} {{prefix:<{width}.bold}}  {{wide_msg}} {{elapsed:>4}}"
                ))
                .expect("static template")
                .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ ");
                let mut bars = self.bars.lock().expect("bars lock");
                for service in &services {
                    let bar = self
                        .multi
                        .insert_before(&self.overall, ProgressBar::new_spinner());
                    bar.set_style(style.clone());
                    bar.set_prefix(service.to_string());
                    bar.set_message("queued");
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
            Event::Note { text } => {
                let _ = self.multi.println(text);
            }
            Event::Hashed { files, millis } => {
                let _ = self
                    .multi
                    .println(format!("hashed {files} files in {millis} ms"));
            }
            Event::Stage { service, stage } => self.update(&service, |l| {
                l.stage = stage.name().to_string();
                l.step = None;
            }),
            Event::Step {
                service,
                index,
                count,
                instruction,
            } => self.update(&service, |l| {
                l.step = Some(format!("{index}/{count} {instruction}"));
            }),
            Event::Pushed {
                service,
                sent,
                total,
            } => self.update(&service, |l| l.pushed = Some((sent, total))),
            Event::Log { service, line } if self.verbose => {
                let _ = self.multi.println(format!("{service} | {line}"));
            }
            Event::Retry {
                service,
                attempt,
                cause,
                delay_ms,
            } => self.update(&service, |l| {
                l.step = Some(format!(
                    "retry {} in {:.1}s ({cause})",
                    attempt + 1,
                    delay_ms as f64 / 1000.0
                ));
            }),
            Event::Log { .. } | Event::Tagged { .. } => {}
            Event::Finished { service, result } => {
                let bars = self.bars.lock().expect("bars lock");
                let Some(line) = bars.get(&service) else {
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
                        outcome(&result),
                        line.step.as_deref().unwrap_or("")
                    ),
                    _ => outcome(&result),
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
            Event::Patched {
                path,
                changed,
                report,
            } => {
                let _ = self.multi.println(format!(
                    "{} {path}: {}",
                    if changed { "patched" } else { "unchanged" },
                    report.summary()
                ));
                for warning in &report.warnings {
                    let _ = self.multi.println(format!(
                        "{} {path}: {warning}",
                        Style::new().yellow().apply_to("warning:")
                    ));
                }
            }
        }
    }

    /// The one ticker of the view: spinners turn, and an update the draw
    /// rate held back is drawn, while no event comes.
    fn tick(&self) {
        for line in self.bars.lock().expect("bars lock").values() {
            if !line.bar.is_finished() {
                line.bar.tick();
            }
        }
        self.overall.tick();
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
