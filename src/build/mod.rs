//! The build stage of one service: build args, labels, the streamed context,
//! and a log that goes to `.pipeline/logs/<service>.log`.

pub mod engine;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::Write;
use std::path::Path;

use oci_registry::Credentials;

use crate::build::engine::{BuildLine, BuildRequest, Engine, EngineError};
use crate::plan::Step;
use crate::plan::git::GitInfo;
use crate::report::{Event, Reporter};

/// How many log lines a failure message carries.
pub const TAIL_LINES: usize = 12;

/// A service's log: the file, the last lines for a failure message, and the
/// reporter.
pub struct ServiceLog<'a> {
    service: &'a str,
    file: Option<std::fs::File>,
    tail: VecDeque<String>,
    reporter: &'a dyn Reporter,
}

impl<'a> ServiceLog<'a> {
    /// Opens (truncates) `<logs_dir>/<service>.log`. A log that cannot be
    /// written is not a reason to fail the build; the tail is still kept.
    pub fn open(logs_dir: &Path, service: &'a str, reporter: &'a dyn Reporter) -> ServiceLog<'a> {
        let file = std::fs::create_dir_all(logs_dir)
            .and_then(|_| std::fs::File::create(logs_dir.join(format!("{service}.log"))))
            .ok();
        ServiceLog {
            service,
            file,
            tail: VecDeque::new(),
            reporter,
        }
    }

    pub fn line(&mut self, line: &str) {
        if let Some(f) = &mut self.file {
            let _ = writeln!(f, "{line}");
        }
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(line.to_string());
        self.reporter.event(Event::Log {
            service: self.service,
            line,
        });
    }

    /// Push progress, for the progress view only (not the log).
    pub fn pushed(&self, sent: u64, total: u64) {
        self.reporter.event(Event::Pushed {
            service: self.service,
            sent,
            total,
        });
    }

    pub fn tail(&self) -> Vec<String> {
        self.tail.iter().cloned().collect()
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
                service: name,
                index,
                count,
                instruction,
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
