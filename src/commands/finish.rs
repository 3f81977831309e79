//! `pipeline finish FILE...`: the shards of one run (`run --shard K/N`)
//! become one release. Their results files are merged, refusing what does
//! not add up (a shard twice or missing, a service in two shards or in none,
//! another commit, config or registry); then, only if every service
//! succeeded, the other tags are added and the manifests patched, exactly as
//! one `run` would; the merged results file is written either way.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use oci_registry::Registry;

use super::lock::Lock;
use super::run::config_digest;
use super::{finish, load_results, make_plan, patch_all, reporter, results_path, state_dir};
use crate::cli::Globals;
use crate::config::Config;
use crate::discover::Service;
use crate::error::Error;
use crate::execute;
use crate::push::connect;
use crate::report::{Results, SCHEMA, ShardInfo};

pub(super) async fn command(
    globals: &Globals,
    config: &Config,
    services: &[Service],
    files: &[PathBuf],
    results: Option<&Path>,
) -> Result<(), Error> {
    let started = Instant::now();
    let state = state_dir(config)?;
    let results_file = results_path(config, results);
    let _lock = Lock::take(&state, "finish", !globals.no_wait).await?;
    let text = std::fs::read(&config.file)
        .map_err(|e| Error::Environment(format!("reading {}: {e}", config.file.display())))?;
    let mut merged = merge(files, &config_digest(&text))?;

    // The checkout must be the tree the shards built: same commit, and
    // every service's inputs as they hashed them.
    let selected: Vec<String> = merged.services.keys().cloned().collect();
    let plan = make_plan(config, services, &selected, &results_file)?;
    if plan.git.sha != merged.git.sha {
        return Err(Error::Usage(format!(
            "the shards ran on commit {}, this checkout is {}; run finish on the shards' commit",
            merged.git.sha.as_deref().unwrap_or("(none)"),
            plan.git.sha.as_deref().unwrap_or("(none)")
        )));
    }
    for step in &plan.steps {
        let name = &step.service.name;
        let theirs = &merged.services[name].input_digest;
        if *theirs != step.input_digest {
            return Err(Error::Usage(format!(
                "service `{name}` has other inputs here ({}) than the shard that built it ({theirs}); run finish on the tree the shards built",
                step.input_digest
            )));
        }
    }

    let reporter = reporter(globals, &plan);
    let patched = if merged.all_succeeded() {
        let connection = connect::connect(config)
            .await
            .map_err(|e| Error::Environment(e.to_string()))?;
        if merged.registry.as_deref() != Some(connection.host.as_str()) {
            return Err(Error::Usage(format!(
                "the shards pushed to {}, pipeline.yaml names {}",
                merged.registry.as_deref().unwrap_or("(none)"),
                connection.host
            )));
        }
        let registry: Arc<dyn Registry> = Arc::new(connection.registry());
        execute::add_tags(
            &plan,
            registry.as_ref(),
            reporter.as_ref(),
            config.build.push_jobs.value,
            &mut merged.services,
        )
        .await;
        // A tag the registry refused fails its service, and nothing is
        // patched, as in a run.
        match merged.all_succeeded() && config.manifests.configured() {
            true => patch_all(config, services, &mut merged, reporter.as_ref()),
            false => Ok(()),
        }
    } else {
        Ok(())
    };
    merged
        .write(&results_file)
        .map_err(|e| Error::Environment(format!("writing {}: {e}", results_file.display())))?;
    reporter.done();
    let finished = finish(globals, &merged, &state, started, true);
    patched.map_err(Error::Unpatched)?;
    finished
}

/// Merges the shards' results files, checking that they are the shards of
/// one run of this config, each once, and cover its selection exactly.
fn merge(files: &[PathBuf], config: &str) -> Result<Results, Error> {
    let refuse = |file: &Path, why: String| Error::Usage(format!("{}: {why}", file.display()));
    let mut shards: BTreeMap<usize, (&PathBuf, Results, ShardInfo)> = BTreeMap::new();
    let mut first: Option<(&PathBuf, ShardInfo, Results)> = None;
    for file in files {
        let results = load_results(file)?;
        let Some(info) = results.shard.clone() else {
            return Err(refuse(
                file,
                "not the results of a `run --shard K/N`; finish merges shards".into(),
            ));
        };
        if info.config != config {
            return Err(refuse(
                file,
                format!(
                    "written with another pipeline.yaml ({}, this one is {config}); every shard and finish must run with the same config",
                    info.config
                ),
            ));
        }
        if let Some((first_file, f, r)) = &first {
            let differs = |what: &str, a: String, b: String| {
                refuse(
                    file,
                    format!(
                        "{what} {a} differs from {b} in {}; these are not shards of one run",
                        first_file.display()
                    ),
                )
            };
            if info.of != f.of {
                return Err(differs(
                    "shard count",
                    info.of.to_string(),
                    f.of.to_string(),
                ));
            }
            if info.selected != f.selected {
                return Err(differs(
                    "the selected services",
                    info.selected.join(", "),
                    f.selected.join(", "),
                ));
            }
            if results.git != r.git {
                return Err(differs(
                    "commit",
                    format!("{:?}", results.git.sha),
                    format!("{:?}", r.git.sha),
                ));
            }
            if results.registry != r.registry {
                return Err(differs(
                    "registry",
                    format!("{:?}", results.registry),
                    format!("{:?}", r.registry),
                ));
            }
        } else {
            first = Some((file, info.clone(), results.clone()));
        }
        if let Some((other, _, _)) = shards.get(&info.index) {
            return Err(refuse(
                file,
                format!(
                    "shard {}/{} is given twice (also {})",
                    info.index,
                    info.of,
                    other.display()
                ),
            ));
        }
        shards.insert(info.index, (file, results, info));
    }
    let (_, info, template) = first.expect("clap requires at least one file");
    let missing: Vec<String> = (1..=info.of)
        .filter(|k| !shards.contains_key(k))
        .map(|k| format!("{k}/{}", info.of))
        .collect();
    let mut services = BTreeMap::new();
    let mut from: BTreeMap<String, &PathBuf> = BTreeMap::new();
    for (file, results, _) in shards.values() {
        for (name, result) in &results.services {
            if let Some(other) = from.insert(name.clone(), file) {
                return Err(refuse(
                    file,
                    format!("service `{name}` is also in {}", other.display()),
                ));
            }
            if !info.selected.contains(name) {
                return Err(refuse(
                    file,
                    format!("service `{name}` is not in the shards' selection"),
                ));
            }
            services.insert(name.clone(), result.clone());
        }
    }
    let absent: Vec<&String> = info
        .selected
        .iter()
        .filter(|n| !services.contains_key(*n))
        .collect();
    if !absent.is_empty() || !missing.is_empty() {
        return Err(Error::Usage(format!(
            "no results for {}{}; give every shard's results file",
            absent
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", "),
            match missing.is_empty() {
                true => String::new(),
                false => format!(" (shard {} missing)", missing.join(", ")),
            }
        )));
    }
    Ok(Results {
        schema: SCHEMA,
        git: template.git,
        registry: template.registry,
        services,
        manifests: Vec::new(),
        shard: None,
    })
}
