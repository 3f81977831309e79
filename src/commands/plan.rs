//! `pipeline plan`: the plan, each service decided against the registry (or,
//! `--offline`, the last results) by the same `plan::resolve` that `run`
//! executes. Changes nothing but the hash index.

use super::{make_plan, results_path, stdout};
use crate::cli::{Globals, Output, PlanOptions};
use crate::config::Config;
use crate::discover::Service;
use crate::error::Error;
use crate::plan::resolve::{self, Action, Force, Store};
use crate::push::connect;
use crate::push::ecr::Repositories;
use crate::report::render;
use crate::report::{PlanReport, PlannedService, Silent};

pub(super) async fn command(
    globals: &Globals,
    config: &Config,
    services: &[Service],
    options: &PlanOptions,
) -> Result<(), Error> {
    let results_file = results_path(config, options.results.as_deref());
    let plan = make_plan(config, services, &options.services, &results_file)?;
    let force = Force {
        all: options.force,
        services: &[],
    };
    // `--force` builds everything, so there is nothing to look up.
    let checked = !options.offline && !options.force;
    let connection = match checked {
        true => Some(
            connect::connect(config)
                .await
                .map_err(|e| Error::Environment(e.to_string()))?,
        ),
        false => None,
    };
    let registry = connection.as_ref().map(|c| c.registry());
    let store = match (&connection, &registry) {
        (Some(connection), Some(registry)) => Store::Registry {
            registry,
            repositories: connection.ecr.as_ref().map(|e| e as &dyn Repositories),
        },
        _ => Store::Offline,
    };
    let found = resolve::look_up(&plan, &store, &force, &Silent).await;
    let mut planned: Vec<PlannedService> = Vec::new();
    for decided in resolve::decide(&plan, found, &store, &force) {
        let step = match &decided {
            Ok(d) => d.step,
            Err(_) => &plan.steps[planned.len()],
        };
        let decided = decided.map_err(|e| {
            Error::Environment(format!(
                "registry {}: looking up {}: {e}",
                connection.as_ref().map_or("", |c| c.host.as_str()),
                step.service.repository
            ))
        })?;
        planned.push(PlannedService {
            order: planned.len() + 1,
            name: step.service.name.clone(),
            build: decided.action.builds(),
            reason: decided.reason(),
            problem: match &decided.action {
                Action::WillFail { problem, .. } => Some(problem.message()),
                _ => None,
            },
            decision: decided.action.clone(),
            input_digest: step.input_digest.clone(),
            tags: step.tags.clone(),
            requires: step.service.requires.clone(),
            context_files: step.listing.files().count(),
            context_bytes: step.listing.tar_bytes(),
        });
    }
    let report = PlanReport {
        registry: connection.map(|c| c.host),
        checked,
        services: planned,
    };
    match globals.output {
        Output::Json => stdout(&format!(
            "{}\n",
            serde_json::to_string_pretty(&report).expect("plan serializes")
        )),
        Output::Text => stdout(&render::plan(&report)),
    }
}
