//! `pipeline build SERVICE...`: a local rebuild into the engine, tagged
//! `<repository>:dev`; no AWS, no registry, nothing patched.

use std::time::Instant;

use super::lock::Lock;
use super::{
    announce, builders, connect_engine, execute_plan, finish, make_plan, reporter, results_path,
    secrets, state_dir, stdout,
};
use crate::cli::{Globals, Output};
use crate::config::Config;
use crate::discover::Service;
use crate::error::Error;
use crate::execute::{Executor, LocalTags, Options, Target};
use crate::plan::resolve::{self, Force, Store};

pub(super) async fn command(
    globals: &Globals,
    config: &Config,
    services: &[Service],
    names: &[String],
    jobs: Option<usize>,
) -> Result<(), Error> {
    let started = Instant::now();
    let state = state_dir(config)?;
    let _lock = Lock::take(&state, "build", !globals.no_wait).await?;
    let plan = make_plan(config, services, names, &results_path(config, None))?;
    // Every secret is read before anything else happens.
    let secrets = secrets(config, &plan)?;
    let engine = connect_engine().await?;
    let reporter = reporter(globals, &plan);
    announce(reporter.as_ref(), &plan);
    let builders = builders(&engine, &plan, reporter.as_ref())?;
    // The named services are rebuilt; their requirements come from the
    // engine when it has them.
    let force = Force {
        all: false,
        services: names,
    };
    let store = Store::Local { engine: &engine };
    let found = resolve::look_up(&plan, &store, &force, reporter.as_ref()).await;
    let decided = resolve::decide(&plan, found, &store, &force);
    let executor = Executor {
        plan: &plan,
        engine: &engine,
        target: Target::Local {
            tags: LocalTags::Dev,
        },
        options: Options {
            jobs: jobs.unwrap_or(config.build.jobs),
            push_jobs: 1,
            keep_going: false,
            builders,
            secrets,
            retry: config.push.policy(),
            logs_dir: state.join("logs"),
            labels: config.build.labels.clone(),
        },
        reporter: reporter.as_ref(),
    };
    let results = execute_plan(&executor, decided, None).await?;
    reporter.done();
    if globals.output == Output::Text && !globals.quiet {
        for (name, r) in &results.services {
            if let Some(id) = &r.image_id {
                stdout(&format!(
                    "{name}: image {id}\n  docker run --rm {}:dev\n",
                    r.repository
                ))?;
            }
        }
    }
    finish(globals, &results, &state, started, false)
}
