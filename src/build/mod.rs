//! The build stage of one service: build args, labels, the streamed context,
//! and a log that goes to `.pipeline/logs/<service>.log`.

pub mod engine;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{LineWriter, Write};
use std::path::{Path, PathBuf};

use oci_registry::Credentials;

use crate::build::engine::{BuildLine, BuildRequest, Engine, EngineError};
use crate::plan::Step;
use crate::plan::git::GitInfo;
use crate::report::{Event, Reporter};

/// How many log lines a failure message carries.
pub const TAIL_LINES: usize = 12;

/// A service's log: the file (written line by line, so `tail -f` follows it),
/// the last lines for a failure message, and the reporter.
pub struct ServiceLog<'a> {
    service: &'a str,
    path: PathBuf,
    file: Option<LineWriter<std::fs::File>>,
    tail: VecDeque<String>,
    reporter: &'a dyn Reporter,
}

impl<'a> ServiceLog<'a> {
    /// Opens (truncates) `<logs_dir>/<service>.log`. A log that cannot be
    /// written is not a reason to fail the build: the view says so once,
    /// and the tail is still kept for the failure message.
    pub fn open(logs_dir: &Path, service: &'a str, reporter: &'a dyn Reporter) -> ServiceLog<'a> {
        let path = logs_dir.join(format!("{service}.log"));
        let mut log = ServiceLog {
            service,
            path,
            file: None,
            tail: VecDeque::new(),
            reporter,
        };
        match std::fs::create_dir_all(logs_dir).and_then(|_| std::fs::File::create(&log.path)) {
            Ok(file) => log.file = Some(LineWriter::new(file)),
            Err(e) => log.lost(e),
        }
        log
    }

    fn lost(&mut self, e: std::io::Error) {
        self.file = None;
        self.reporter.event(Event::Log {
            service: self.service.to_string(),
            line: format!(
                "warning: cannot write {}: {e}; the log is shown here only",
                self.path.display()
            ),
        });
    }

    pub fn line(&mut self, line: &str) {
        if let Some(f) = &mut self.file
            && let Err(e) = writeln!(f, "{line}")
        {
            self.lost(e);
        }
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(line.to_string());
        self.reporter.event(Event::Log {
            service: self.service.to_string(),
            line: line.to_string(),
        });
    }

    /// Push progress, for the progress view only (not the log).
    pub fn pushed(&self, sent: u64, total: u64) {
        self.reporter.event(Event::Pushed {
            service: self.service.to_string(),
            sent,
            total,
        });
    }

    pub fn tail(&self) -> Vec<String> {
        self.tail.iter().cloned().collect()
    }
}

impl Drop for ServiceLog<'_> {
    fn drop(&mut self) {
        if let Some(f) = &mut self.file
            && let Err(e) = f.flush()
        {
            self.lost(e);
        }
    }
}

/// The OCI labels every image gets, plus the configured ones.
pub fn labels(git: &GitInfo, configured: &BTreeMap<String, String>) -> HashMap<String, String> {
    let mut labels: HashMap<String, String> = configured.clone().into_iter().collect();
    labels.insert(
        "org.opencontainers.image.created".into(),
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    );
    if let Some(sha) = &git.sha {
        labels.insert("org.opencontainers.image.revision".into(), sha.clone());
    }
    if let Some(origin) = &git.origin {
        labels.insert("org.opencontainers.image.source".into(), redact_url(origin));
    }
    labels
}

/// An origin URL without a password in it (`https://user:token@host/…`).
fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((userinfo, host)) = rest.split_once('@')
        && !userinfo.contains('/')
    {
        return format!("{scheme}://{host}");
    }
    url.to_string()
}

/// Everything one build needs besides the plan step.
pub struct BuildInputs<'a> {
    pub tag: String,
    /// `<NAME>_IMAGE` for each requirement.
    pub required_images: HashMap<String, String>,
    pub labels: &'a HashMap<String, String>,
    pub registries: HashMap<String, Credentials>,
}

/// Builds one service; returns the image ID.
pub async fn build(
    engine: &dyn Engine,
    step: &Step,
    inputs: BuildInputs<'_>,
    log: &mut ServiceLog<'_>,
) -> Result<String, EngineError> {
    let service = &step.service;
    let mut build_args: HashMap<String, String> = service.build_args.clone().into_iter().collect();
    build_args.extend(inputs.required_images);
    let request = BuildRequest {
        dockerfile: step.listing.dockerfile.clone(),
        tag: inputs.tag,
        target: service.target.clone(),
        platform: service.platform.clone(),
        build_args,
        labels: inputs.labels.clone(),
        registries: inputs.registries,
    };
    let reporter = log.reporter;
    let name = log.service;
    let mut last_step: Option<String> = None;
    let mut on_line = |l: BuildLine| {
        if l.step != last_step
            && let Some(s) = &l.step
        {
            let (index, count, instruction) = parse_step(s);
            reporter.event(Event::Step {
                service: name.to_string(),
                index,
                count,
                instruction: instruction.to_string(),
            });
            last_step = l.step.clone();
        }
        log.line(&l.line);
    };
    engine
        .build(request, step.listing.clone(), &mut on_line)
        .await
}

/// `Step 2/5 : RUN make` as (2, 5, "RUN make"); (0, 0, line) when the
/// classic builder's format is not recognised.
pub fn parse_step(line: &str) -> (usize, usize, &str) {
    let parsed = line.strip_prefix("Step ").and_then(|rest| {
        let (numbers, instruction) = rest.split_once(" : ")?;
        let (i, n) = numbers.split_once('/')?;
        Some((
            i.trim().parse().ok()?,
            n.trim().parse().ok()?,
            instruction.trim(),
        ))
    });
    parsed.unwrap_or((0, 0, line))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_parsed() {
        assert_eq!(
            parse_step("Step 2/5 : RUN make all"),
            (2, 5, "RUN make all")
        );
        assert_eq!(parse_step("something else"), (0, 0, "something else"));
    }

    #[test]
    fn origin_credentials_never_reach_a_label() {
        assert_eq!(
            redact_url("https://user:tok@github.com/a/b.git"),
            "https://github.com/a/b.git"
        );
        assert_eq!(
            redact_url("git@github.com:a/b.git"),
            "git@github.com:a/b.git"
        );
        let git = GitInfo {
            sha: Some("abc".into()),
            origin: Some("https://x:secret@example.com/r".into()),
            ..GitInfo::default()
        };
        let l = labels(
            &git,
            &BTreeMap::from([("team".to_string(), "shop".to_string())]),
        );
        assert_eq!(l["org.opencontainers.image.revision"], "abc");
        assert_eq!(l["team"], "shop");
        assert!(!l.values().any(|v| v.contains("secret")));
    }
}
