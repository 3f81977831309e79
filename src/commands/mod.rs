//! One file per command, each from config to output: load and check
//! everything that can be checked before a side effect (config, services,
//! plan, tags), then connect to the engine and the registry, execute, write
//! the results, render. What several commands share is here.

mod build;
pub(crate) mod doctor;
mod finish;
pub(crate) mod init;
mod lock;
mod patch;
mod plan;
mod release;
mod run;
mod services;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use oci_registry::Secret;

use crate::build::engine::{DockerEngine, Endpoint, Kind};
use crate::cli::{Cmd, Globals, Invocation, Output, Progress};
use crate::config::{BuilderSettings, Config, TlsSetting};
use crate::discover::{self, Service};
use crate::error::Error;
use crate::execute::pool::{Member, Needs, Pool};
use crate::execute::{Builders, Executor};
use crate::patch::{FileChange, Pinned};
use crate::plan::git::GitInfo;
use crate::plan::index::FileIndex;
use crate::plan::record::Key;
use crate::plan::{Plan, Previous, STATE_DIR};
use crate::report::background::Background;
use crate::report::progress;
use crate::report::render;
use crate::report::{Event, GitSummary, ManifestResult, Reporter, Results, SCHEMA, Silent};

pub(crate) async fn execute(invocation: Invocation) -> Result<(), Error> {
    let globals = &invocation.globals;
    match &invocation.command {
        Cmd::Init { services_dir } => return init::command(globals, services_dir.as_deref()).await,
        Cmd::Doctor => return doctor::command(globals).await,
        _ => {}
    }
    let config = Config::load(&globals.config)?;
    let services = discover::discover(&config)?;
    match &invocation.command {
        Cmd::Init { .. } | Cmd::Doctor => unreachable!("handled before the config is loaded"),
        Cmd::Services => services::command(globals, &services),
        Cmd::Run(options) => run::command(globals, &config, &services, options).await,
        Cmd::Plan(options) => plan::command(globals, &config, &services, options).await,
        Cmd::Release(options) => release::command(globals, &config, &services, options).await,
        Cmd::Finish { files, results } => {
            finish::command(globals, &config, &services, files, results.as_deref()).await
        }
        Cmd::Patch {
            results,
            check,
            strict,
        } => {
            patch::command(
                globals,
                &config,
                &services,
                results.as_deref(),
                *check,
                *strict,
            )
            .await
        }
        Cmd::Build {
            services: names,
            jobs,
        } => build::command(globals, &config, &services, names, *jobs).await,
    }
}

/// Data to stdout. A reader that went away (`pipeline services | head`) is
/// not an error; any other write error is, since the data is lost.
fn stdout(text: &str) -> Result<(), Error> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::Environment(format!("writing to stdout: {e}"))),
    }
}

/// Bars on a terminal; one line per event in CI, in pipes, or when asked;
/// written on a thread of its own (see `report::background`).
fn reporter(globals: &Globals, plan: &Plan) -> Box<dyn Reporter> {
    match view(globals, plan) {
        Some(view) => Box::new(Background::spawn(view)),
        None => Box::new(Silent),
    }
}

fn view(globals: &Globals, plan: &Plan) -> Option<Box<dyn Reporter>> {
    use std::io::IsTerminal;
    let names: Vec<&str> = plan.steps.iter().map(|s| s.service.name.as_str()).collect();
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false");
    let github = std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true");
    let plain = || -> Box<dyn Reporter> {
        Box::new(progress::Plain::new(
            &names,
            github,
            Box::new(std::io::stderr()),
        ))
    };
    Some(match globals.progress {
        _ if globals.quiet => return None,
        Progress::None => return None,
        Progress::Plain => plain(),
        Progress::Tty => Box::new(progress::Tty::new(globals.verbose)),
        Progress::Auto if std::io::stderr().is_terminal() && !ci => {
            Box::new(progress::Tty::new(globals.verbose))
        }
        Progress::Auto => plain(),
    })
}

/// The run starts: the services in plan order, and what hashing took.
fn announce(reporter: &dyn Reporter, plan: &Plan) {
    let services = plan.steps.iter().map(|s| s.service.name.clone()).collect();
    reporter.event(Event::Queued { services });
    let (files, millis) = plan.hashed;
    reporter.event(Event::Hashed { files, millis });
}

/// The state folder, with a `.gitignore` that keeps it out of commits.
fn state_dir(config: &Config) -> Result<PathBuf, Error> {
    let dir = config.root.join(STATE_DIR);
    let ignore = dir.join(".gitignore");
    if !ignore.exists() {
        std::fs::create_dir_all(&dir)
            .and_then(|_| std::fs::write(&ignore, "*\n"))
            .map_err(|e| Error::Environment(format!("creating {}: {e}", ignore.display())))?;
    }
    Ok(dir)
}

/// The engines builds run on: each of `builders:` that answers (one that
/// does not is reported and left out; none left is exit 3), or the one the
/// environment names. `local`: only the first that answers, for builds
/// whose images must end up in one engine (`pipeline build`, `run
/// --no-push`). `jobs`
/// (`--jobs`) overrides every engine's own.
async fn connect_pool(
    config: &Config,
    plan: &Plan,
    jobs: Option<usize>,
    local: bool,
    reporter: &dyn Reporter,
) -> Result<Pool, Error> {
    let mut members = Vec::new();
    if config.builders.is_empty() {
        let engine = DockerEngine::connect()
            .await
            .map_err(|e| Error::Environment(e.to_string()))?;
        members.push(member(
            engine,
            jobs.unwrap_or(config.build.jobs.value),
            Vec::new(),
        ));
    } else {
        let chosen = &config.builders[..];
        let connected = futures::future::join_all(chosen.iter().map(|b| async move {
            let endpoint = builder_endpoint(config, &b.value)?;
            DockerEngine::connect_to(endpoint)
                .await
                .map_err(|e| e.to_string())
        }))
        .await;
        let mut unreachable = Vec::new();
        for (b, engine) in chosen.iter().zip(connected) {
            let b = &b.value;
            match engine {
                Ok(engine) => {
                    let jobs = jobs
                        .unwrap_or(b.jobs.as_ref().map_or(config.build.jobs.value, |j| j.value));
                    members.push(member(engine, jobs, b.platforms.clone()));
                }
                Err(message) => {
                    reporter.event(Event::Note {
                        text: format!("builder {} is left out: {message}", b.host.value),
                    });
                    unreachable.push(format!("{}: {message}", b.host.value));
                }
            }
        }
        if members.is_empty() {
            return Err(Error::Environment(format!(
                "no builder could be reached ({}); start one, or fix builders: in {}",
                unreachable.join("; "),
                config.file.display()
            )));
        }
        if local {
            members.truncate(1);
        }
    }
    let pool = Pool::new(members);
    describe_builders(&pool, plan, reporter)?;
    Ok(pool)
}

/// A connected engine as a pool member.
fn member(engine: DockerEngine, jobs: usize, platforms: Vec<String>) -> Member {
    let info = engine.info().clone();
    let builders = Builders {
        buildkit: info.no_buildkit.is_none(),
        frontend: info.frontend(),
    };
    Member::new(
        info.endpoint.clone(),
        std::sync::Arc::new(engine),
        info,
        builders,
        jobs,
        platforms,
    )
}

/// The endpoint of one of `builders:`, its TLS paths relative to the repo.
fn builder_endpoint(config: &Config, b: &BuilderSettings) -> Result<Endpoint, String> {
    let endpoint = Endpoint::parse(&b.host.value, false).map_err(|e| e.to_string())?;
    let (Endpoint::Tcp(address), Some(tls)) = (&endpoint, &b.tls) else {
        return Ok(endpoint);
    };
    let path = |p: &str| config.root.join(p);
    let endpoint = match &tls.value {
        TlsSetting::Folder(folder) => Endpoint::tls_folder(address.clone(), &path(folder)),
        TlsSetting::Files { ca, cert, key } => Endpoint::Tls {
            address: address.clone(),
            ca: path(ca),
            cert: path(cert),
            key: path(key),
        },
    };
    if let Endpoint::Tls { ca, cert, key, .. } = &endpoint {
        for file in [ca, cert, key] {
            if !file.is_file() {
                return Err(format!("its TLS file {} does not exist", file.display()));
            }
        }
    }
    Ok(endpoint)
}

/// Says which builder each planned service gets, once; a service that
/// asks for BuildKit where no engine offers it is an environment error
/// before anything is built.
fn describe_builders(pool: &Pool, plan: &Plan, reporter: &dyn Reporter) -> Result<(), Error> {
    for step in &plan.steps {
        let needs = pool.needs(step);
        if !(0..pool.len()).any(|i| pool.member(i).builds(&needs)) {
            let why = (0..pool.len())
                .map(|i| {
                    let m = pool.member(i);
                    format!(
                        "{}: {}",
                        m.name,
                        m.info
                            .no_buildkit
                            .clone()
                            .unwrap_or_else(|| format!("builds {}", m.platforms.join(", ")))
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            return Err(Error::Environment(format!(
                "service `{}` needs {}, which no builder offers ({why}); use builder: auto or classic, or another engine",
                step.service.name,
                describe_needs(&needs)
            )));
        }
    }
    for i in 0..pool.len() {
        let member = pool.member(i);
        let info = &member.info;
        let mut kinds: Vec<(Kind, Vec<&str>)> = Vec::new();
        for step in &plan.steps {
            // Not here: a platform or BuildKit this engine does not offer.
            if !member.builds(&pool.needs(step)) {
                continue;
            }
            let kind = member.builders.kind(step.service.builder);
            match kinds.iter_mut().find(|(k, _)| *k == kind) {
                Some((_, names)) => names.push(&step.service.name),
                None => kinds.push((kind, vec![&step.service.name])),
            }
        }
        let text = match kinds.as_slice() {
            [] => "none of the planned services (their platform or BuildKit)".to_string(),
            [(kind, _)] => info.builder_note(*kind),
            _ => kinds
                .iter()
                .map(|(kind, names)| {
                    format!("{} for {}", info.builder_note(*kind), names.join(", "))
                })
                .collect::<Vec<_>>()
                .join("; "),
        };
        let text = match pool.len() {
            1 => text,
            _ => format!("{} ({} jobs): {text}", member.name, member.jobs),
        };
        reporter.event(Event::Note { text });
    }
    Ok(())
}

fn describe_needs(needs: &Needs) -> String {
    match (&needs.platform, needs.buildkit) {
        (Some(p), true) => format!("BuildKit on {p}"),
        (Some(p), false) => format!("platform {p}"),
        (None, _) => "BuildKit".into(),
    }
}

/// The values of every planned service's build secrets, read before
/// anything is built; a secret a Dockerfile requires but the service does
/// not configure is an error too.
fn secrets(
    config: &Config,
    plan: &Plan,
) -> Result<HashMap<String, HashMap<String, Secret>>, Error> {
    let mut all = HashMap::new();
    for step in &plan.steps {
        if let Some(dockerfile) = &step.dockerfile {
            for mount in dockerfile.secret_mounts() {
                if mount.required && !step.service.secrets.contains_key(&mount.id) {
                    return Err(Error::Usage(format!(
                        "{}:{}: `RUN --mount=type=secret,id={}` is required, but service `{}` configures no secret `{}`; add `secrets: {{{}: {{env: VARIABLE}}}}` to services.{} in {}",
                        step.service.dockerfile,
                        mount.line,
                        mount.id,
                        step.service.name,
                        mount.id,
                        mount.id,
                        step.service.name,
                        config.file.display(),
                    )));
                }
            }
        }
        all.insert(
            step.service.name.clone(),
            crate::build::secrets::load(&step.service, &config.root)?,
        );
    }
    Ok(all)
}

fn results_path(config: &Config, given: Option<&Path>) -> PathBuf {
    given
        .map(Path::to_path_buf)
        .unwrap_or_else(|| config.root.join(STATE_DIR).join("results.json"))
}

/// The images of the succeeded services of `results`, as manifests pin them.
fn pins(services: &[Service], results: &Results) -> Vec<Pinned> {
    results
        .services
        .iter()
        .filter_map(|(name, r)| {
            let service = services.iter().find(|s| &s.name == name)?;
            Some(Pinned {
                service: name.clone(),
                repository: service.repository.clone(),
                uri: r.repository.clone(),
                digest: r.digest.clone()?,
                tag: crate::patch::pinned_tag(&r.tags)?,
                content_tag: r.tags.first()?.clone(),
            })
        })
        .collect()
}

fn manifest_results(changes: &[FileChange]) -> Vec<ManifestResult> {
    changes
        .iter()
        .map(|c| ManifestResult {
            path: c.path.clone(),
            changed: c.changed(),
            pinned: c.report.pinned.keys().cloned().collect(),
            not_deployed: c.report.not_deployed.clone(),
            warnings: c.report.warnings.clone(),
        })
        .collect()
}

/// Every discovered service's name.
fn names(services: &[Service]) -> Vec<&str> {
    services.iter().map(|s| s.name.as_str()).collect()
}

/// With `strict` (`manifests.strict`, `--strict`), a patch warning is an
/// error: the warnings are printed and nothing is written.
fn refuse_warnings(strict: bool, changes: &[FileChange]) -> Result<(), Error> {
    let warnings = crate::patch::warnings(changes);
    if !strict || warnings.is_empty() {
        return Ok(());
    }
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    Err(Error::Warnings(warnings.len()))
}

fn load_results(path: &Path) -> Result<Results, Error> {
    let bytes = std::fs::read(path).map_err(|e| {
        Error::Usage(format!(
            "reading the results file {}: {e}; run `pipeline run` first or pass --results FILE",
            path.display()
        ))
    })?;
    // The error names the field (`services.cart.status: unknown variant`).
    let results: Results =
        serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_slice(&bytes))
            .map_err(|e| Error::Usage(format!("{}: not a results file: {e}", path.display())))?;
    // Read back from disk, maybe from another job: checked before its
    // digests reach a manifest or a tag.
    results
        .validate()
        .map_err(|e| Error::Usage(format!("{}: {e}", path.display())))?;
    Ok(results)
}

/// Plans `names`, comparing with the results file `results` when it exists,
/// with file digests from (and into) the repo's index.
fn make_plan(
    config: &Config,
    services: &[Service],
    names: &[String],
    results: &Path,
) -> Result<Plan, Error> {
    // Creates `.pipeline/.gitignore` before the index is written there.
    let state = state_dir(config)?;
    let index = FileIndex::load(&state);
    let last = std::fs::read(results)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Results>(&bytes).ok());
    let key = Key::load(&state).map_err(|e| {
        Error::Environment(format!(
            "the key for input records: {e}; check that {} is writable",
            state.display()
        ))
    })?;
    let git = GitInfo::read(&config.root);
    if let Some(problem) = &git.problem {
        eprintln!("warning: {problem}");
    }
    let plan = crate::plan::plan(
        config,
        services,
        names,
        git,
        &index,
        Previous {
            results: last.as_ref(),
            state_dir: &state,
            key: &key,
        },
    )?;
    // The index is a cache: failing to write it costs time next run, so a
    // warning, not an error.
    if let Err(e) = index.save() {
        eprintln!("warning: saving the file index in {}: {e}", state.display());
    }
    Ok(plan)
}

/// Pins every configured manifest to the digests of `results` (all
/// succeeded), written atomically, and records what each file got.
fn patch_all(
    config: &Config,
    services: &[Service],
    results: &mut Results,
    reporter: &dyn Reporter,
) -> Result<(), crate::patch::PatchError> {
    let changes = crate::patch::compute(config, &pins(services, results), &names(services))?;
    crate::patch::write(&changes)?;
    for c in &changes {
        reporter.event(Event::Patched {
            path: c.path.clone(),
            changed: c.changed(),
            report: Box::new(c.report.clone()),
        });
    }
    results.manifests = manifest_results(&changes);
    Ok(())
}

/// Executes the decided plan, or stops at Ctrl-C, and gathers the results.
async fn execute_plan(
    executor: &Executor<'_>,
    decided: Vec<crate::execute::Decision<'_>>,
    registry: Option<String>,
) -> Result<Results, Error> {
    let services = tokio::select! {
        results = executor.execute(decided) => results,
        _ = tokio::signal::ctrl_c() => return Err(Error::Interrupted),
    };
    Ok(Results {
        schema: SCHEMA,
        git: GitSummary {
            sha: executor.plan.git.sha.clone(),
            dirty: executor.plan.git.dirty(),
        },
        registry,
        services,
        manifests: Vec::new(),
        shard: None,
    })
}

/// Prints the results (`summary`: the text table too) and turns failures
/// into the exit code.
fn finish(
    globals: &Globals,
    results: &Results,
    state: &Path,
    started: Instant,
    summary: bool,
) -> Result<(), Error> {
    let wall = started.elapsed().as_millis();
    match globals.output {
        Output::Json => stdout(&results.to_json())?,
        Output::Text if summary && !globals.quiet => {
            use std::io::IsTerminal;
            let width = std::io::stdout()
                .is_terminal()
                .then(|| console::Term::stdout().size().1 as usize);
            stdout(&render::summary(results, wall, width))?
        }
        Output::Text => {}
    }
    // GitHub Actions shows this file on the run's page.
    if summary
        && std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true")
        && let Some(file) = std::env::var_os("GITHUB_STEP_SUMMARY")
    {
        use std::io::Write;
        let appended = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&file)
            .and_then(|mut f| f.write_all(render::markdown_summary(results, wall).as_bytes()));
        if let Err(e) = appended {
            eprintln!("warning: writing $GITHUB_STEP_SUMMARY: {e}");
        }
    }
    eprint!("{}", render::failures(results, &state.join("logs")));
    match results.failed().count() {
        0 => Ok(()),
        n => Err(Error::Failed(n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_tls_paths_are_relative_to_the_repo_and_must_exist() {
        let root = std::env::temp_dir().join(format!("pipeline-tls-{}", std::process::id()));
        std::fs::create_dir_all(root.join("certs/b")).unwrap();
        for f in ["ca.pem", "cert.pem", "key.pem"] {
            std::fs::write(root.join("certs/b").join(f), "pem").unwrap();
        }
        let config = Config::parse(
            &root.join("pipeline.yaml"),
            "version: 1\nregistry:\n  host: h:1\nbuilders:\n  - host: tcp://b:2376\n    tls: certs/b\n  - host: tcp://c:2376\n    tls: {ca: certs/b/ca.pem, cert: certs/b/cert.pem, key: certs/c/key.pem}\n  - host: unix:///run/a.sock\n",
        )
        .unwrap();
        match builder_endpoint(&config, &config.builders[0].value).unwrap() {
            Endpoint::Tls {
                address, ca, key, ..
            } => {
                assert_eq!(address, "b:2376");
                assert_eq!(ca, root.join("certs/b/ca.pem"));
                assert_eq!(key, root.join("certs/b/key.pem"));
            }
            other => panic!("{other:?}"),
        }
        let e = builder_endpoint(&config, &config.builders[1].value).unwrap_err();
        assert!(e.contains("certs/c/key.pem does not exist"), "{e}");
        assert_eq!(
            builder_endpoint(&config, &config.builders[2].value).unwrap(),
            Endpoint::Unix("/run/a.sock".into())
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
