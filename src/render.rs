//! How results and progress look: the plain progress reporter (one whole
//! line per event on stderr), the text summary and the services table on
//! stdout. JSON output is the serialized result types themselves.

use std::io::Write;
use std::sync::Mutex;
use std::time::Instant;

use crate::discover::Service;
use crate::report::{Event, PlanReport, Reporter, Results, Status};

/// One line per event on stderr, prefixed with the elapsed time and the
/// service. A line is written whole under a lock, so parallel builds never
/// interleave mid-line.
pub struct PlainReporter {
    start: Instant,
    verbose: bool,
    width: usize,
    out: Mutex<std::io::Stderr>,
}

impl PlainReporter {
    pub fn new(verbose: bool, names: &[&str]) -> PlainReporter {
        PlainReporter {
            start: Instant::now(),
            verbose,
            width: names.iter().map(|n| n.len()).max().unwrap_or(0),
            out: Mutex::new(std::io::stderr()),
        }
    }

    fn line(&self, service: &str, text: &str) {
        let secs = self.start.elapsed().as_secs_f64();
        let line = format!("[{secs:7.1}s] {service:<w$}  {text}\n", w = self.width);
        let mut out = self.out.lock().expect("stderr lock");
        let _ = out.write_all(line.as_bytes());
    }
}

impl Reporter for PlainReporter {
    fn event(&self, event: Event<'_>) {
        match event {
            Event::Stage { service, stage } => self.line(service, stage.name()),
            Event::Step { service, step } => self.line(service, step),
            Event::Log { service, line } => {
                if self.verbose && !line.starts_with("Step ") {
                    self.line(service, &format!("| {line}"));
                }
            }
            Event::Tagged { service, tag } => self.line(service, &format!("tagged {tag}")),
            Event::Finished { service, result } => {
                let text = match result.status {
                    Status::Built | Status::Cached => format!(
                        "{} {}",
                        status_word(result.status),
                        result.digest.as_deref().map(short_digest).unwrap_or("")
                    ),
                    Status::Failed | Status::Skipped => format!(
                        "{}: {}",
                        status_word(result.status),
                        result.error.as_deref().unwrap_or("")
                    ),
                };
                self.line(service, &text);
            }
        }
    }
}

fn status_word(s: Status) -> &'static str {
    match s {
        Status::Built => "built",
        Status::Cached => "cached",
        Status::Failed => "FAILED",
        Status::Skipped => "skipped",
    }
}

/// `sha256:` and the first 12 hex digits.
pub fn short_digest(d: &str) -> &str {
    &d[..d.len().min(19)]
}

fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut push = |cells: Vec<String>| {
        let line: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    };
    push(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        push(row.clone());
    }
    out
}

/// The run summary for stdout.
pub fn summary(results: &Results, wall_ms: u128) -> String {
    let rows: Vec<Vec<String>> = results
        .services
        .iter()
        .map(|(name, r)| {
            vec![
                name.clone(),
                status_word(r.status).to_string(),
                r.digest
                    .as_deref()
                    .map(short_digest)
                    .unwrap_or("-")
                    .to_string(),
                if r.tags.is_empty() {
                    "-".into()
                } else {
                    r.tags.join(",")
                },
                format!("{:.1}s", r.duration_ms as f64 / 1000.0),
            ]
        })
        .collect();
    let mut out = table(&["SERVICE", "STATUS", "DIGEST", "TAGS", "TIME"], &rows);
    let count = |s: Status| results.services.values().filter(|r| r.status == s).count();
    out.push_str(&format!(
        "{} built, {} cached, {} failed, {} skipped in {:.1}s\n",
        count(Status::Built),
        count(Status::Cached),
        count(Status::Failed),
        count(Status::Skipped),
        wall_ms as f64 / 1000.0
    ));
    out
}

/// Each failure with its cause and the last lines of its log, for stderr.
pub fn failures(results: &Results, logs_dir: &std::path::Path) -> String {
    let mut out = String::new();
    for (name, r) in results.failed() {
        out.push_str(&format!(
            "error: service `{name}`: {}\n",
            r.error.as_deref().unwrap_or("failed")
        ));
        if !r.log_tail.is_empty() {
            out.push_str(&format!(
                "  last lines of {}:\n",
                logs_dir.join(format!("{name}.log")).display()
            ));
            for line in &r.log_tail {
                out.push_str(&format!("  | {line}\n"));
            }
        }
    }
    out
}

/// The `services` table.
pub fn services(services: &[Service]) -> String {
    let rows: Vec<Vec<String>> = services
        .iter()
        .map(|s| {
            vec![
                s.name.clone(),
                s.dockerfile.clone(),
                s.context.clone(),
                s.repository.clone(),
                if s.requires.is_empty() {
                    "-".into()
                } else {
                    s.requires.join(",")
                },
            ]
        })
        .collect();
    table(
        &["NAME", "DOCKERFILE", "CONTEXT", "REPOSITORY", "REQUIRES"],
        &rows,
    )
}

/// A release: what happened to each service's tag.
pub fn release(record: &crate::release::Record) -> String {
    use crate::release::Action;
    let rows: Vec<Vec<String>> = record
        .services
        .iter()
        .map(|(name, r)| {
            vec![
                name.clone(),
                match r.action {
                    Action::Tagged => "tagged".into(),
                    Action::Unchanged => "already there".into(),
                    Action::Moved => format!(
                        "moved from {}",
                        r.previous.as_deref().map(short_digest).unwrap_or("?")
                    ),
                },
                format!("{}:{}", r.repository, r.tag),
                short_digest(&r.digest).to_string(),
            ]
        })
        .collect();
    table(&["SERVICE", "RELEASE", "IMAGE", "DIGEST"], &rows)
}

/// The plan as a table in build order, then a one-line count.
pub fn plan(report: &PlanReport) -> String {
    let rows: Vec<Vec<String>> = report
        .services
        .iter()
        .map(|s| {
            vec![
                s.order.to_string(),
                s.name.clone(),
                if s.build { "build" } else { "cached" }.into(),
                short_digest(&s.input_digest).to_string(),
                s.tags.join(","),
                match &s.problem {
                    Some(problem) => format!("{}; WILL FAIL: {problem}", s.reason),
                    None => s.reason.clone(),
                },
            ]
        })
        .collect();
    let builds = report.services.iter().filter(|s| s.build).count();
    let mut out = table(&["#", "SERVICE", "STATE", "INPUT", "TAGS", "WHY"], &rows);
    out.push_str(&format!(
        "{builds} to build, {} cached{}\n",
        report.services.len() - builds,
        match (&report.registry, report.checked) {
            (Some(host), true) => format!(" (looked up in {host})"),
            _ => " (registry not checked)".into(),
        }
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let t = table(&["A", "B"], &[vec!["long-name".into(), "x".into()]]);
        assert_eq!(t, "A          B\nlong-name  x\n");
    }
}
