//! The build stage of one service: build args, labels, the streamed context,
//! and a log that goes to `.pipeline/logs/<service>.log`.

pub(crate) mod buildkit;
pub(crate) mod engine;
pub(crate) mod secrets;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{LineWriter, Write};
use std::path::{Path, PathBuf};

use oci_registry::Credentials;

use dockerfile::{FeatureUse, Frontend};
use oci_registry::Secret;

use crate::build::engine::{BuildLine, BuildRequest, Engine, EngineError, Kind, StepInfo};
use crate::plan::Step;
use crate::plan::git::GitInfo;
use crate::report::{Event, Reporter};

/// How many log lines a failure message carries.
pub(crate) const TAIL_LINES: usize = 12;

/// A service's log: the file (written line by line, so `tail -f` follows it),
/// the last lines for a failure message, and the reporter.
pub(crate) struct ServiceLog<'a> {
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
    pub(crate) fn open(
        logs_dir: &Path,
        service: &'a str,
        reporter: &'a dyn Reporter,
    ) -> ServiceLog<'a> {
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

    pub(crate) fn line(&mut self, line: &str) {
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
    pub(crate) fn pushed(&self, sent: u64, total: u64) {
        self.reporter.event(Event::Pushed {
            service: self.service.to_string(),
            sent,
            total,
        });
    }

    pub(crate) fn reporter(&self) -> &'a dyn Reporter {
        self.reporter
    }

    pub(crate) fn service(&self) -> &'a str {
        self.service
    }

    pub(crate) fn tail(&self) -> Vec<String> {
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
pub(crate) fn labels(
    git: &GitInfo,
    configured: &BTreeMap<String, String>,
) -> HashMap<String, String> {
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
pub(crate) struct BuildInputs<'a> {
    pub(crate) tag: String,
    /// `<NAME>_IMAGE` for each requirement.
    pub(crate) required_images: HashMap<String, String>,
    pub(crate) labels: &'a HashMap<String, String>,
    pub(crate) registries: HashMap<String, Credentials>,
    pub(crate) builder: Kind,
    /// Build secret values by id.
    pub(crate) secrets: HashMap<String, Secret>,
}

/// The features of `step`'s Dockerfile that only BuildKit builds, each
/// with its line, in file order: what the classic builder refuses (see
/// [`unsupported`]), and why a `builder: auto` service goes to an engine
/// that offers BuildKit (see `execute::pool`). Empty when the Dockerfile
/// does not parse.
pub(crate) fn buildkit_features(step: &Step) -> Vec<FeatureUse> {
    step.dockerfile
        .as_ref()
        .map(|d| d.features())
        .unwrap_or_default()
}

/// Why `step`'s Dockerfile cannot be built by `builder` (with `frontend`
/// built into the engine), naming the line, the feature and what it needs;
/// `None` when it can. Checked before the build so the message is ours,
/// not the parser's bare "unknown instruction".
pub(crate) fn unsupported(step: &Step, builder: Kind, frontend: &Frontend) -> Option<String> {
    let dockerfile = step.dockerfile.as_ref()?;
    let path = &step.service.dockerfile;
    match builder {
        Kind::Classic => {
            let uses = buildkit_features(step);
            let first = uses.first()?;
            Some(format!(
                "{path}:{} uses {}, which needs BuildKit, and this service builds with the classic builder{}; set `builder: buildkit` (or `auto`, with an engine that offers BuildKit)",
                first.line,
                first.feature,
                match uses.len() {
                    1 => String::new(),
                    n => format!(" ({} more such lines)", n - 1),
                }
            ))
        }
        Kind::BuildKit => {
            let uses = dockerfile.unsupported_features(frontend.clone());
            let first = uses.first()?;
            let since = first
                .feature
                .since()
                .map_or("a labs frontend".to_string(), |v| {
                    format!("Dockerfile frontend {v}")
                });
            let builtin = match frontend {
                Frontend::Release { version, .. } => {
                    format!("this engine's built-in frontend is {version}")
                }
                _ => "this engine's built-in frontend lacks it".to_string(),
            };
            Some(format!(
                "{path}:{} uses {}, which needs {since} or later, and {builtin}; add `# syntax=docker/dockerfile:{}` as the Dockerfile's first line (with an engine that can pull that image) or use a newer engine",
                first.line,
                first.feature,
                first
                    .feature
                    .since()
                    .map_or("1-labs".to_string(), |v| v.to_string()),
            ))
        }
    }
}

/// Builds one service; returns the image ID.
pub(crate) async fn build(
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
        builder: inputs.builder,
        network: service.network.mode(),
        secrets: inputs.secrets,
    };
    let reporter = log.reporter;
    let name = log.service;
    let mut last_step: Option<StepInfo> = None;
    let mut on_line = |l: BuildLine| {
        if l.step != last_step
            && let Some(s) = &l.step
        {
            reporter.event(Event::Step {
                service: name.to_string(),
                index: s.index,
                count: s.count,
                instruction: s.instruction.clone(),
            });
            last_step = l.step.clone();
        }
        log.line(&l.line);
    };
    engine
        .build(request, step.listing.clone(), &mut on_line)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

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
