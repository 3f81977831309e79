//! How results look on stdout: the run summary, the plan, the services and
//! release tables, the failures on stderr, and the Markdown summary for
//! GitHub Actions. JSON output is the serialized result types themselves;
//! live progress is `progress.rs`.

use crate::discover::Service;
use crate::report::{PlanReport, Results, ServiceResult, Status};

/// `sha256:` and the first 12 hex digits.
pub(crate) fn short_digest(d: &str) -> &str {
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

fn status_word(s: Status) -> &'static str {
    match s {
        Status::Built => "built",
        Status::Cached => "cached",
        Status::Failed => "FAILED",
        Status::Skipped => "skipped",
    }
}

/// Why a service ended as it did: the plan's reason, or the failure.
fn why(r: &ServiceResult) -> String {
    match r.status {
        Status::Built | Status::Cached => r.reason.clone().unwrap_or_default(),
        Status::Failed | Status::Skipped => r.error.clone().unwrap_or_default(),
    }
}

fn summary_rows(results: &Results) -> Vec<Vec<String>> {
    results
        .services
        .iter()
        .map(|(name, r)| {
            vec![
                name.clone(),
                status_word(r.status).to_string(),
                why(r),
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
        .collect()
}

const SUMMARY_HEADER: [&str; 6] = ["SERVICE", "STATUS", "WHY", "DIGEST", "TAGS", "TIME"];

fn totals(results: &Results, wall_ms: u128) -> String {
    let count = |s: Status| results.services.values().filter(|r| r.status == s).count();
    let patched = results.manifests.iter().filter(|m| m.changed).count();
    format!(
        "{} built, {} cached, {} failed, {} skipped{} in {:.1}s",
        count(Status::Built),
        count(Status::Cached),
        count(Status::Failed),
        count(Status::Skipped),
        if results.manifests.is_empty() {
            String::new()
        } else {
            format!(
                "; {patched} of {} manifests changed",
                results.manifests.len()
            )
        },
        wall_ms as f64 / 1000.0
    )
}

/// The run summary for stdout: a row per service, then the totals. With a
/// terminal `width`, the WHY column is shortened so rows do not wrap.
pub(crate) fn summary(results: &Results, wall_ms: u128, width: Option<usize>) -> String {
    let mut rows = summary_rows(results);
    if let Some(width) = width {
        let widest = |i: usize| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([SUMMARY_HEADER[i].len()])
                .max()
                .unwrap_or(0)
        };
        let others: usize = (0..SUMMARY_HEADER.len())
            .filter(|&i| i != 2)
            .map(widest)
            .sum();
        let room = width
            .saturating_sub(others + 2 * (SUMMARY_HEADER.len() - 1))
            .max(24);
        for row in &mut rows {
            if row[2].chars().count() > room {
                row[2] = row[2].chars().take(room - 1).collect::<String>() + "…";
            }
        }
    }
    let mut out = table(&SUMMARY_HEADER, &rows);
    out.push_str(&totals(results, wall_ms));
    out.push('\n');
    out
}

/// The same summary as a Markdown table, for `$GITHUB_STEP_SUMMARY`.
pub(crate) fn markdown_summary(results: &Results, wall_ms: u128) -> String {
    let cell = |c: &str| c.replace('|', "\\|").replace('\n', " ");
    let mut out = String::from("### pipeline run\n\n");
    out.push_str(&format!("| {} |\n", SUMMARY_HEADER.join(" | ")));
    out.push_str(&format!("|{}\n", "---|".repeat(SUMMARY_HEADER.len())));
    for row in summary_rows(results) {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, c)| match i {
                3 | 4 if c != "-" => format!("`{}`", cell(c)),
                _ => cell(c),
            })
            .collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out.push_str(&format!("\n{}\n", totals(results, wall_ms)));
    out
}

/// Each failure with its cause and the last lines of its log, for stderr.
pub(crate) fn failures(results: &Results, logs_dir: &std::path::Path) -> String {
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
pub(crate) fn services(services: &[Service]) -> String {
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

/// One line per manifest (`patched` or `unchanged`, what was pinned and
/// what is not deployed there), then its warnings.
pub(crate) fn patched(changes: &[crate::patch::FileChange]) -> String {
    let mut out = String::new();
    for c in changes {
        let word = if c.changed() {
            "patched  "
        } else {
            "unchanged"
        };
        out.push_str(&format!("{word} {}: {}\n", c.path, c.report.summary()));
        for warning in &c.report.warnings {
            out.push_str(&format!("  warning: {warning}\n"));
        }
    }
    out
}

/// A release: what happened to each service's tag.
pub(crate) fn release(record: &crate::push::release::Record) -> String {
    use crate::push::release::Action;
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
pub(crate) fn plan(report: &PlanReport) -> String {
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
