//! `pipeline build SERVICE...`: a local rebuild into the engine, tagged
//! `<repository>:dev`; no AWS, no registry, nothing patched.

use std::time::Instant;

use super::lock::Lock;
use super::{
    announce, connect_pool, execute_plan, finish, make_plan, reporter, results_path, secrets,
    state_dir, stdout,
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
    let reporter = reporter(globals, &plan);
    announce(reporter.as_ref(), &plan);
    // The images must end up in one engine: the first builder.
    let pool = connect_pool(config, &plan, jobs, true, reporter.as_ref()).await?;
    // The named services are rebuilt; their requirements come from the
    // engine when it has them.
    let force = Force {
        all: false,
        services: names,
    };
    let store = Store::Local {
        engine: pool.first().engine.as_ref(),
    };
    let found = resolve::look_up(&plan, &store, &force, reporter.as_ref()).await;
    let decided = resolve::decide(&plan, found, &store, &force);
    let executor = Executor {
        plan: &plan,
        pool: &pool,
        target: Target::Local {
            tags: LocalTags::Dev,
        },
        options: Options {
            push_jobs: 1,
            content_tags_only: false,
            keep_going: false,
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
