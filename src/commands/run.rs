//! `pipeline run`: plan, decide against the registry, build, push, tag,
//! patch the manifests when every service succeeded, write the results.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use oci_registry::Registry;

use super::lock::Lock;
use super::{
    announce, connect_pool, execute_plan, finish, load_results, make_plan, names, patch_all,
    refuse_warnings, reporter, results_path, secrets, state_dir,
};
use crate::cli::{Globals, RunOptions};
use crate::config::Config;
use crate::discover::Service;
use crate::error::Error;
use crate::execute::{Executor, LocalTags, Options, Target};
use crate::patch::{self, Pinned};
use crate::plan::Plan;
use crate::plan::record;
use crate::plan::resolve::{self, Force, Store};
use crate::plan::shard::{self, Shard};
use crate::push::connect;
use crate::push::ecr::Repositories;
use crate::report::ShardInfo;

pub(super) async fn command(
    globals: &Globals,
    config: &Config,
    services: &[Service],
    options: &RunOptions,
) -> Result<(), Error> {
    let started = Instant::now();
    let results_file = results_path(config, options.results.as_deref());
    let state = state_dir(config)?;
    // One run per checkout; a waiting run plans once it has the lock.
    let _lock = Lock::take(&state, "run", !globals.no_wait).await?;
    let mut plan = make_plan(config, services, &options.services, &results_file)?;
    let shard = match options.shard {
        Some(shard) => Some(take_shard(
            config,
            &mut plan,
            shard,
            options.weights.as_deref(),
        )?),
        None => None,
    };
    // Every secret is read before anything else happens.
    let secrets = secrets(config, &plan)?;
    let connection = match options.push {
        true => {
            let connection = connect::connect(config)
                .await
                .map_err(|e| Error::Environment(e.to_string()))?;
            let registry: Arc<dyn Registry> = Arc::new(connection.registry());
            connection
                .check(registry.as_ref())
                .await
                .map_err(|e| Error::Environment(e.to_string()))?;
            Some((connection, registry))
        }
        false => None,
    };
    let patching = options.patch && config.manifests.configured();
    if let (true, Some((connection, _))) = (patching, &connection) {
        // Every manifest must be patchable before anything is built: the
        // same patch with placeholder digests.
        let placeholders: Vec<Pinned> = plan
            .steps
            .iter()
            .map(|s| {
                let repository = &s.service.repository;
                let tag = patch::pinned_tag(&s.tags).unwrap_or_default();
                Pinned::placeholder(
                    &s.service.name,
                    repository,
                    format!("{}/{repository}", connection.host),
                    tag,
                    s.content_tag.clone(),
                )
            })
            .collect();
        let changes = patch::compute(config, &placeholders, &names(services))?;
        // With manifests.strict, what would warn after the run stops it now.
        refuse_warnings(config.manifests.strict, &changes)?;
    }
    let reporter = reporter(globals, &plan);
    announce(reporter.as_ref(), &plan);
    // Without a registry the images must end up in one engine.
    let pool = connect_pool(
        config,
        &plan,
        options.jobs,
        connection.is_none(),
        reporter.as_ref(),
    )
    .await?;
    let force = Force {
        all: options.force,
        services: &[],
    };
    let repositories: Option<Arc<dyn Repositories>> = connection
        .as_ref()
        .and_then(|(c, _)| c.ecr.clone())
        .map(|ecr| Arc::new(ecr) as Arc<dyn Repositories>);
    let store = match &connection {
        Some((_, registry)) => Store::Registry {
            registry: registry.as_ref(),
            repositories: repositories.as_deref(),
        },
        None => Store::Local {
            engine: pool.first().engine.as_ref(),
        },
    };
    let found = resolve::look_up(&plan, &store, &force, reporter.as_ref()).await;
    let decided = resolve::decide(&plan, found, &store, &force);
    let (target, registry_host) = match connection {
        Some((connection, registry)) => {
            let create = config.registry.ecr.as_ref().and_then(|e| e.create());
            (
                Target::Registry {
                    host: connection.host.clone(),
                    registry,
                    auth: connection.auth,
                    repositories: repositories.map(|r| (r, create)),
                },
                Some(connection.host),
            )
        }
        None => (
            Target::Local {
                tags: LocalTags::Planned,
            },
            None,
        ),
    };
    let executor = Executor {
        plan: &plan,
        pool: &pool,
        target,
        options: Options {
            push_jobs: options.push_jobs.unwrap_or(config.build.push_jobs.value),
            content_tags_only: shard.is_some(),
            keep_going: options.keep_going,
            secrets,
            retry: config.push.policy(),
            logs_dir: state.join("logs"),
            labels: config.build.labels.clone(),
        },
        reporter: reporter.as_ref(),
    };
    let mut results = execute_plan(&executor, decided, registry_host).await?;
    // Manifests change only when every selected service succeeded.
    let patched = match patching && results.all_succeeded() {
        true => patch_all(config, services, &mut results, reporter.as_ref()),
        false => Ok(()),
    };
    results.shard = shard;
    results
        .write(&results_file)
        .map_err(|e| Error::Environment(format!("writing {}: {e}", results_file.display())))?;
    // What each build saw, so the next plan can say what changed.
    let records = plan
        .steps
        .iter()
        .map(|s| (s.input_digest.as_str(), &s.record));
    if let Err(e) = record::store(&state, records, &[]) {
        eprintln!("warning: recording the inputs in {}: {e}", state.display());
    }
    reporter.done();
    // The summary and failures are shown either way; a patch that failed
    // after the push makes the exit code.
    let finished = finish(globals, &results, &state, started, true);
    patched.map_err(Error::Unpatched)?;
    finished
}

/// Narrows `plan` to shard `shard` of its services (see `plan::shard`),
/// balanced by the durations in `weights`; says which it got.
fn take_shard(
    config: &Config,
    plan: &mut Plan,
    shard: Shard,
    weights: Option<&std::path::Path>,
) -> Result<ShardInfo, Error> {
    let durations = match weights {
        Some(file) => load_results(file)?
            .services
            .into_iter()
            .map(|(name, r)| (name, r.duration_ms))
            .collect(),
        None => HashMap::new(),
    };
    let selected: BTreeMap<String, Vec<String>> = plan
        .steps
        .iter()
        .map(|s| (s.service.name.clone(), s.service.requires.clone()))
        .collect();
    let mine = shard::assign(&selected, &durations, shard.of).swap_remove(shard.index - 1);
    plan.steps.retain(|s| mine.contains(&s.service.name));
    let text = std::fs::read(&config.file)
        .map_err(|e| Error::Environment(format!("reading {}: {e}", config.file.display())))?;
    Ok(ShardInfo {
        index: shard.index,
        of: shard.of,
        selected: selected.into_keys().collect(),
        config: config_digest(&text),
    })
}

/// `sha256:` of a config file's bytes: shards of one run agree on it.
pub(super) fn config_digest(text: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(text)))
}
