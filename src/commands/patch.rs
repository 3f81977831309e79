//! `pipeline patch`: applies a results file to the configured manifests,
//! or with `--check` shows what would change and fails on drift.

use std::path::Path;

use super::lock::Lock;
use super::{
    load_results, manifest_results, names, pins, refuse_warnings, results_path, state_dir, stdout,
};
use crate::cli::{Globals, Output};
use crate::config::Config;
use crate::discover::Service;
use crate::error::Error;
use crate::patch::{self, FileChange};
use crate::report::render;

/// `pipeline patch`: applies a results file to the configured manifests, or
/// with `check` shows what would change and fails on drift.
pub(super) async fn command(
    globals: &Globals,
    config: &Config,
    services: &[Service],
    results: Option<&Path>,
    check: bool,
    strict: bool,
) -> Result<(), Error> {
    let path = results_path(config, results);
    // Manifests and the results file are written: one at a time.
    let _lock = match check {
        true => None,
        false => Some(Lock::take(&state_dir(config)?, "patch", !globals.no_wait).await?),
    };
    let mut results = load_results(&path)?;
    if !config.manifests.configured() {
        return Err(Error::Usage(
            "pipeline.yaml configures no manifests (manifests.kustomize, .helm or .raw)".into(),
        ));
    }
    let unfinished: Vec<&String> = results
        .services
        .iter()
        .filter(|(_, r)| r.digest.is_none())
        .map(|(name, _)| name)
        .collect();
    if !unfinished.is_empty() {
        eprintln!(
            "error: not patching: {} has no pushed image in {} (failed, skipped, or built with --no-push)",
            unfinished
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            path.display()
        );
        return Err(Error::Failed(unfinished.len()));
    }
    let changes = patch::compute(config, &pins(services, &results), &names(services))?;
    refuse_warnings(strict || config.manifests.strict, &changes)?;
    let drifted: Vec<&FileChange> = changes.iter().filter(|c| c.changed()).collect();
    if check {
        if globals.output == Output::Json {
            stdout(&format!(
                "{}\n",
                serde_json::to_string_pretty(&manifest_results(&changes)).expect("serializes")
            ))?;
        } else {
            for c in &drifted {
                stdout(&c.diff())?;
            }
        }
        for c in &drifted {
            eprintln!("drift: {}", c.path);
        }
        return match drifted.len() {
            0 => Ok(()),
            n => Err(Error::Drift(n)),
        };
    }
    patch::write(&changes)?;
    results.manifests = manifest_results(&changes);
    results
        .write(&path)
        .map_err(|e| Error::Environment(format!("writing {}: {e}", path.display())))?;
    match globals.output {
        Output::Json => stdout(&format!(
            "{}\n",
            serde_json::to_string_pretty(&results.manifests).expect("serializes")
        )),
        Output::Text if !globals.quiet => stdout(&render::patched(&changes)),
        Output::Text => Ok(()),
    }
}
