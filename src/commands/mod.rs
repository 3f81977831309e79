//! Each command from config to output: load and check everything that can be
//! checked before a side effect (config, services, plan, tags), then connect
//! to the engine and the registry, execute, write the results, render.

pub mod doctor;
pub mod init;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;

use crate::auth::{self, Auth};
use crate::cli::{
    Cmd, Globals, Invocation, Output, PlanOptions, Progress, ReleaseOptions, RunOptions,
};
use crate::config::{Config, Pin, TagMutability};
use crate::discover::{self, Service};

use crate::build::engine::DockerEngine;
use crate::error::Error;
use crate::execute::{Executor, LocalTags, Options, Target};
use crate::patch::{self, FileChange, Pinned};
use crate::plan::git::GitInfo;
use crate::plan::index::FileIndex;
use crate::plan::record;
use crate::plan::tags;
use crate::plan::{self, Found, Plan, Previous, STATE_DIR};
use crate::push::ecr::Ecr;
use crate::push::release;
use crate::registry::{HttpRegistry, Registry, RegistryError};
use crate::report::progress;
use crate::report::render;
use crate::report::{
    Event, GitSummary, ManifestResult, PlanReport, PlannedService, Reporter, Results, SCHEMA,
    Silent,
};

pub async fn execute(invocation: Invocation) -> Result<(), Error> {
    let globals = &invocation.globals;
    match &invocation.command {
        Cmd::Init => return init(globals),
        Cmd::Doctor => {
            let checks = doctor::run(&globals.config).await;
            match globals.output {
                Output::Json => stdout(&doctor::to_json(&checks)),
                Output::Text => stdout(&doctor::render(&checks)),
            }
            let failed = checks
                .iter()
                .filter(|(_, c)| matches!(c, doctor::Check::Fail { .. }))
                .count();
            return if failed == 0 {
                Ok(())
            } else {
                Err(Error::Checks(failed))
            };
        }
        _ => {}
    }
    let config = Config::load(&globals.config)?;
    let services = discover::discover(&config)?;
    match &invocation.command {
        Cmd::Init | Cmd::Doctor => unreachable!("handled before the config is loaded"),
        Cmd::Services => {
            print_services(globals, &services);
            Ok(())
        }
        Cmd::Run(options) => run(globals, &config, &services, options).await,
        Cmd::Plan(options) => show_plan(globals, &config, &services, options).await,
        Cmd::Release(options) => release_command(globals, &config, &services, options).await,
        Cmd::Patch { results, check } => {
            patch_command(globals, &config, &services, results.as_deref(), *check)
        }
        Cmd::Build {
            services: names,
            jobs,
        } => build(globals, &config, &services, names, *jobs).await,
    }
}

/// `pipeline init`: writes the config file, never over an existing one.
fn init(globals: &Globals) -> Result<(), Error> {
    let path = &globals.config;
    if path.exists() {
        return Err(Error::Usage(format!(
            "{} already exists; init never overwrites it (remove it, or pass --config NEW.yaml)",
            path.display()
        )));
    }
    let root = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let found = crate::commands::init::scan(root);
    let name = std::fs::canonicalize(root)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().to_lowercase()))
        .map(|n| {
            n.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' {
                        c
                    } else {
                        '-'
                    }
                })
                .collect::<String>()
        })
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "app".into());
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into());
    let text = crate::commands::init::render(&found, &format!("{name}/"), &region);
    // `create_new`: a file that appeared meanwhile is still not overwritten.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
        .map_err(|e| Error::Environment(format!("writing {}: {e}", path.display())))?;
    if !globals.quiet {
        eprintln!(
            "wrote {}: {} services, {} overlays, {} values files; check it, then `pipeline plan --offline`",
            path.display(),
            found.services.len(),
            found.overlays.len(),
            found.values.len()
        );
    }
    Ok(())
}

/// Data to stdout. A reader that went away (`pipeline services | head`) is
/// not an error worth a panic.
fn stdout(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

fn print_services(globals: &Globals, services: &[Service]) {
    match globals.output {
        Output::Json => stdout(&format!(
            "{}\n",
            serde_json::to_string_pretty(services).expect("services serialize")
        )),
        Output::Text => stdout(&render::services(services)),
    }
}

/// Bars on a terminal; one line per event in CI, in pipes, or when asked.
fn reporter(globals: &Globals, plan: &Plan) -> Box<dyn Reporter> {
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
    match globals.progress {
        _ if globals.quiet => Box::new(Silent),
        Progress::None => Box::new(Silent),
        Progress::Plain => plain(),
        Progress::Tty => Box::new(progress::Tty::new(globals.verbose)),
        Progress::Auto if std::io::stderr().is_terminal() && !ci => {
            Box::new(progress::Tty::new(globals.verbose))
        }
        Progress::Auto => plain(),
    }
}

fn state_dir(config: &Config) -> PathBuf {
    let dir = config.root.join(STATE_DIR);
    // Keep the tool's state out of the user's commits.
    let ignore = dir.join(".gitignore");
    if !ignore.exists() {
        let _ = std::fs::create_dir_all(&dir).and_then(|_| std::fs::write(&ignore, "*\n"));
    }
    dir
}

async fn connect_engine() -> Result<DockerEngine, Error> {
    DockerEngine::connect()
        .await
        .map_err(|e| Error::Environment(e.to_string()))
}

/// The registry host, its login, and ECR when configured.
async fn connect_registry(config: &Config) -> Result<(String, Arc<Auth>, Option<Ecr>), Error> {
    let configured_host = config.registry.host.as_ref().map(|h| h.value.clone());
    match &config.registry.ecr {
        Some(settings) => {
            let env = |e: crate::push::ecr::EcrError| Error::Environment(e.to_string());
            let ecr = Ecr::connect(settings).await.map_err(env)?;
            let login = ecr.login().await.map_err(env)?;
            let host = configured_host.unwrap_or(login.host);
            let auth = Auth::new(Some(login.credentials), Some(Box::new(ecr.clone())));
            Ok((host, Arc::new(auth), Some(ecr)))
        }
        None => {
            let host = configured_host.expect("config check: ecr or host is set");
            let auth = Auth::new(auth::from_docker_config(&host), None);
            Ok((host, Arc::new(auth), None))
        }
    }
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
                tag: patch::pinned_tag(&r.tags)?,
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
        })
        .collect()
}

fn load_results(path: &Path) -> Result<Results, Error> {
    let bytes = std::fs::read(path).map_err(|e| {
        Error::Usage(format!(
            "reading the results file {}: {e}; run `pipeline run` first or pass --results FILE",
            path.display()
        ))
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::Usage(format!("{}: not a results file: {e}", path.display())))
}

/// `pipeline release VERSION`: check every service, then tag all of them
/// inside the registry; record the release; optionally pin the manifests.
async fn release_command(
    globals: &Globals,
    config: &Config,
    services: &[Service],
    options: &ReleaseOptions,
) -> Result<(), Error> {
    let version = options.version.as_str();
    if !tags::is_valid(version) {
        return Err(Error::Usage(format!(
            "`{version}` is not a valid tag: it must match [A-Za-z0-9_][A-Za-z0-9._-]{{0,127}}"
        )));
    }
    if let Some(tag) = &options.from_tag
        && !tags::is_valid(tag)
    {
        return Err(Error::Usage(format!(
            "--from-tag `{tag}` is not a valid tag"
        )));
    }
    for name in &options.only {
        if !services.iter().any(|s| &s.name == name) {
            return Err(Error::Usage(format!(
                "--only: `{name}` is not a service (known: {})",
                services
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    let chosen = |name: &str| options.only.is_empty() || options.only.iter().any(|o| o == name);
    let results_file = results_path(config, options.results.as_deref());
    let results = match &options.from_tag {
        Some(_) => None,
        None => Some(load_results(&results_file)?),
    };
    let (host, auth, _) = connect_registry(config).await?;
    let registry = HttpRegistry::new(&host, auth);
    let mut candidates = Vec::new();
    for service in services.iter().filter(|s| chosen(&s.name)) {
        let uri = format!("{host}/{}", service.repository);
        let digest = match (&results, &options.from_tag) {
            (Some(results), _) => match results.services.get(&service.name) {
                Some(r) => r.digest.clone(),
                None if options.only.is_empty() => continue,
                None => {
                    return Err(Error::Usage(format!(
                        "--only: `{}` is not in {}",
                        service.name,
                        results_file.display()
                    )));
                }
            },
            (None, Some(tag)) => registry
                .digest(&service.repository, tag)
                .await
                .map_err(|e| Error::Environment(format!("registry {host}: {e}")))?,
            (None, None) => unreachable!("results are loaded without --from-tag"),
        };
        let missing = match &options.from_tag {
            Some(tag) => format!("no tag `{tag}` in {uri}"),
            None => format!(
                "no pushed image in {} (failed, skipped, or built with --no-push)",
                results_file.display()
            ),
        };
        candidates.push(release::Candidate {
            service: service.name.clone(),
            repository: service.repository.clone(),
            uri,
            digest,
            missing,
        });
    }
    let mut pinned_config = config.clone();
    pinned_config.manifests.pin = Pin::TagAndDigest;
    if options.patch {
        // The manifests must take the release before anything is tagged.
        let placeholders: Vec<Pinned> = candidates
            .iter()
            .map(|c| Pinned::placeholder(&c.service, &c.repository, c.uri.clone(), version.into()))
            .collect();
        patch::compute(&pinned_config, &placeholders)?;
    }
    let outcome = match release::release(&registry, version, &candidates, options.force).await {
        Ok(outcome) => outcome,
        Err(release::ReleaseError::Refused(refusals)) => {
            eprintln!("error: nothing was tagged:");
            for r in &refusals {
                eprintln!("  {r}");
            }
            return Err(Error::Failed(refusals.len()));
        }
        Err(e) => return Err(Error::Environment(format!("registry {host}: {e}"))),
    };
    let record = release::Record {
        version: version.to_string(),
        source: match &options.from_tag {
            Some(tag) => release::Source::Tag(tag.clone()),
            None => release::Source::Results(results_file.display().to_string()),
        },
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        services: outcome.released,
    };
    let state = state_dir(config);
    let record_path = state.join(format!("release-{version}.json"));
    let json = serde_json::to_string_pretty(&record).expect("record serializes") + "\n";
    // A release that changed nothing keeps the record of the one that did.
    let changed = record
        .services
        .values()
        .any(|r| r.action != release::Action::Unchanged);
    if changed || !record_path.exists() {
        crate::report::write_atomic(&record_path, json.as_bytes())
            .map_err(|e| Error::Environment(format!("writing {}: {e}", record_path.display())))?;
    }
    if let Some(e) = outcome.error {
        eprintln!(
            "error: tagging stopped: {e}; what was tagged is in {}",
            record_path.display()
        );
        return Err(Error::Environment(format!("registry {host}: {e}")));
    }
    let mut changes = Vec::new();
    if options.patch {
        let pins: Vec<Pinned> = candidates
            .iter()
            .filter_map(|c| {
                let r = record.services.get(&c.service)?;
                Some(Pinned {
                    service: c.service.clone(),
                    repository: c.repository.clone(),
                    uri: r.repository.clone(),
                    digest: r.digest.clone(),
                    tag: version.to_string(),
                })
            })
            .collect();
        changes = patch::compute(&pinned_config, &pins)
            .and_then(|changes| patch::write(&changes).map(|()| changes))
            .map_err(Error::Unpatched)?;
    }
    match globals.output {
        Output::Json => stdout(&json),
        Output::Text if !globals.quiet => {
            stdout(&render::release(&record));
            stdout(&render::patched(&changes));
        }
        Output::Text => {}
    }
    Ok(())
}

/// `pipeline patch`: applies a results file to the configured manifests, or
/// with `check` shows what would change and fails on drift.
fn patch_command(
    globals: &Globals,
    config: &Config,
    services: &[Service],
    results: Option<&Path>,
    check: bool,
) -> Result<(), Error> {
    let path = results_path(config, results);
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
    let changes = patch::compute(config, &pins(services, &results))?;
    let drifted: Vec<&FileChange> = changes.iter().filter(|c| c.changed()).collect();
    if check {
        if globals.output == Output::Json {
            stdout(&format!(
                "{}\n",
                serde_json::to_string_pretty(&manifest_results(&changes)).expect("serializes")
            ));
        } else {
            for c in &drifted {
                stdout(&c.diff());
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
        Output::Text => {}
    }
    Ok(())
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
    let state = state_dir(config);
    let index = FileIndex::load(&state);
    let last = std::fs::read(results)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Results>(&bytes).ok());
    let plan = plan::plan(
        config,
        services,
        names,
        GitInfo::read(&config.root),
        &index,
        Previous {
            results: last.as_ref(),
            state_dir: &state,
        },
    )?;
    // The index is a cache: failing to write it costs time next run, nothing else.
    let _ = std::fs::create_dir_all(&state).and_then(|_| index.save());
    Ok(plan)
}

async fn run(
    globals: &Globals,
    config: &Config,
    services: &[Service],
    options: &RunOptions,
) -> Result<(), Error> {
    let started = Instant::now();
    let results_file = results_path(config, options.results.as_deref());
    let state = state_dir(config);
    let plan = make_plan(config, services, &options.services, &results_file)?;
    let engine = connect_engine().await?;
    let (target, registry_host) = if options.push {
        let (host, auth, ecr) = connect_registry(config).await?;
        let registry: Arc<dyn Registry> = Arc::new(HttpRegistry::new(&host, auth.clone()));
        registry.ping().await.map_err(|e| match e {
            RegistryError::Unauthorized { .. } if ecr.is_none() => Error::Environment(format!(
                "registry {host} refused the login ({e}); log in with `docker login {host}` (pipeline reads the Docker config's auths)"
            )),
            RegistryError::Unauthorized { .. } => Error::Environment(format!(
                "registry {host} refused the ECR login ({e}); check that registry.host is the registry of this AWS account"
            )),
            _ => Error::Environment(format!(
                "registry {host} is unreachable ({e}); check registry.host and that the registry runs"
            )),
        })?;
        let create = config.registry.ecr.as_ref().and_then(|e| e.create());
        (
            Target::Registry {
                host: host.clone(),
                registry,
                auth,
                ecr: ecr.map(|e| (e, create)),
            },
            Some(host),
        )
    } else {
        (
            Target::Local {
                tags: LocalTags::Planned,
            },
            None,
        )
    };
    let patching = options.patch && config.manifests.configured();
    if let (true, Some(host)) = (patching, &registry_host) {
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
                    format!("{host}/{repository}"),
                    tag,
                )
            })
            .collect();
        patch::compute(config, &placeholders)?;
    }
    let reporter = reporter(globals, &plan);
    let executor = Executor {
        plan: &plan,
        engine: &engine,
        target,
        options: Options {
            jobs: options.jobs.unwrap_or(config.build.jobs),
            push_jobs: options.push_jobs.unwrap_or(config.build.push_jobs),
            force: options.force,
            rebuild: Vec::new(),
            keep_going: options.keep_going,
            logs_dir: state.join("logs"),
            labels: config.build.labels.clone(),
        },
        reporter: reporter.as_ref(),
    };
    let mut results = execute_plan(&executor, registry_host).await?;
    // Manifests change only when every selected service succeeded.
    let patched = if patching && results.all_succeeded() {
        let changes = patch::compute(config, &pins(services, &results))
            .and_then(|changes| patch::write(&changes).map(|()| changes));
        match changes {
            Ok(changes) => {
                for c in &changes {
                    reporter.event(Event::Patched {
                        path: &c.path,
                        changed: c.changed(),
                    });
                }
                results.manifests = manifest_results(&changes);
                Ok(())
            }
            Err(e) => Err(e),
        }
    } else {
        Ok(())
    };
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

/// Executes the plan, or stops at Ctrl-C, and gathers the results.
async fn execute_plan(executor: &Executor<'_>, registry: Option<String>) -> Result<Results, Error> {
    let services = tokio::select! {
        results = executor.execute() => results,
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
        Output::Json => stdout(&results.to_json()),
        Output::Text if summary && !globals.quiet => {
            use std::io::IsTerminal;
            let width = std::io::stdout()
                .is_terminal()
                .then(|| console::Term::stdout().size().1 as usize);
            stdout(&render::summary(results, wall, width))
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

async fn build(
    globals: &Globals,
    config: &Config,
    services: &[Service],
    names: &[String],
    jobs: Option<usize>,
) -> Result<(), Error> {
    let started = Instant::now();
    let state = state_dir(config);
    let plan = make_plan(config, services, names, &results_path(config, None))?;
    let engine = connect_engine().await?;
    let reporter = reporter(globals, &plan);
    let executor = Executor {
        plan: &plan,
        engine: &engine,
        target: Target::Local {
            tags: LocalTags::Dev,
        },
        options: Options {
            jobs: jobs.unwrap_or(config.build.jobs),
            push_jobs: 1,
            force: false,
            rebuild: names.to_vec(),
            keep_going: false,
            logs_dir: state.join("logs"),
            labels: config.build.labels.clone(),
        },
        reporter: reporter.as_ref(),
    };
    let results = execute_plan(&executor, None).await?;
    reporter.done();
    if globals.output == Output::Text && !globals.quiet {
        for (name, r) in &results.services {
            if let Some(id) = &r.image_id {
                stdout(&format!(
                    "{name}: image {id}\n  docker run --rm {}:dev\n",
                    r.repository
                ));
            }
        }
    }
    finish(globals, &results, &state, started, false)
}

/// `pipeline plan`: the plan, each service decided against the registry
/// (or, `--offline`, the last results). Changes nothing but the hash index.
async fn show_plan(
    globals: &Globals,
    config: &Config,
    services: &[Service],
    options: &PlanOptions,
) -> Result<(), Error> {
    let results_file = results_path(config, options.results.as_deref());
    let plan = make_plan(config, services, &options.services, &results_file)?;
    let (found, registry) = if options.offline || options.force {
        let unchecked = (Found::Unchecked, None);
        (vec![unchecked; plan.steps.len()], None)
    } else {
        let (host, auth, ecr) = connect_registry(config).await?;
        let registry = HttpRegistry::new(&host, auth);
        let env = |step: &plan::Step, e: String| {
            Error::Environment(format!(
                "registry {host}: looking up {}: {e}",
                step.service.repository
            ))
        };
        // A bounded batch, as `run` does: ECR throttles bursts.
        let found = futures::stream::iter(plan.steps.iter().map(|step| {
            let (registry, ecr, env) = (&registry, &ecr, &env);
            async move {
                let repository = &step.service.repository;
                let digest = registry
                    .digest(repository, &step.content_tag)
                    .await
                    .map_err(|e| env(step, e.to_string()))?;
                if digest.is_some() {
                    return Ok((Found::Yes, None));
                }
                // A build whose tags cannot land: say so now.
                let immutable = match ecr {
                    Some(ecr) => {
                        ecr.tag_mutability(repository)
                            .await
                            .map_err(|e| env(step, e.to_string()))?
                            == Some(TagMutability::Immutable)
                    }
                    None => false,
                };
                let problem = match immutable {
                    true => crate::execute::stuck_tag(registry, step)
                        .await
                        .map_err(|e| env(step, e.to_string()))?,
                    false => None,
                };
                Ok::<_, Error>((Found::No, problem))
            }
        }))
        .buffered(8)
        .collect::<Vec<Result<_, Error>>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>, Error>>()?;
        (found, Some(host))
    };
    let mut planned: Vec<PlannedService> = Vec::new();
    for (step, (found, problem)) in plan.steps.iter().zip(found) {
        let rebuilt = |name: &str| planned.iter().any(|p| p.name == name && p.build);
        let decision = step.decide(found, "registry", options.force, &rebuilt);
        planned.push(PlannedService {
            order: planned.len() + 1,
            name: step.service.name.clone(),
            build: decision.build,
            reason: decision.reason,
            problem,
            input_digest: step.input_digest.clone(),
            tags: step.tags.clone(),
            requires: step.service.requires.clone(),
            context_files: step.listing.files().count(),
            context_bytes: step.listing.tar_bytes(),
        });
    }
    let report = PlanReport {
        registry,
        checked: !options.offline && !options.force,
        services: planned,
    };
    match globals.output {
        Output::Json => stdout(&format!(
            "{}\n",
            serde_json::to_string_pretty(&report).expect("plan serializes")
        )),
        Output::Text => stdout(&render::plan(&report)),
    }
    Ok(())
}
