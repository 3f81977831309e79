//! `pipeline doctor`: every outside thing a run needs, checked in the order a
//! run needs it, each with one pass/fail line and, on failure, the fix. A
//! check whose prerequisite failed is reported as skipped, not as a second
//! failure.

use std::path::Path;

use oci_registry::Registry;

use super::stdout;
use crate::build::engine::{DockerEngine, EngineError, EngineInfo, Kind};
use crate::cli::{Globals, Output};
use crate::config::{Builder, Config};
use crate::discover::{self, Service};
use crate::error::Error;
use crate::patch::{self, Pinned};
use crate::push::connect::{self, Connection, Login};
use crate::push::ecr::Ecr;

/// `pipeline doctor`: the checks, as text or JSON; exit 1 when one failed.
pub(super) async fn command(globals: &Globals) -> Result<(), Error> {
    let checks = run(&globals.config).await;
    match globals.output {
        Output::Json => stdout(&to_json(&checks))?,
        Output::Text => stdout(&render(&checks))?,
    }
    let failed = checks
        .iter()
        .filter(|(_, c)| matches!(c, Check::Fail { .. }))
        .count();
    match failed {
        0 => Ok(()),
        n => Err(Error::Checks(n)),
    }
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Check {
    Pass(String),
    Fail { problem: String, fix: String },
    Skipped(String),
}

/// Runs every check; `(name, outcome)` in order.
pub(crate) async fn run(config_file: &Path) -> Vec<(String, Check)> {
    let mut checks = Vec::new();
    let fail = |problem: String, fix: &str| Check::Fail {
        problem,
        fix: fix.to_string(),
    };

    let loaded = Config::load(config_file)
        .map_err(|e| e.to_string())
        .and_then(|c| {
            discover::discover(&c)
                .map(|s| (c, s))
                .map_err(|e| e.to_string())
        });
    checks.push((
        "config".to_string(),
        match &loaded {
            Ok((c, services)) => {
                Check::Pass(format!("{}: {} services", c.file.display(), services.len()))
            }
            Err(e) => fail(
                e.clone(),
                "fix the place shown, or write one with `pipeline init`",
            ),
        },
    ));

    checks.push((
        "git".to_string(),
        git(loaded.as_ref().map(|(c, _)| c.root.as_path()).ok()),
    ));

    // A pool: each builder, as a run would meet it.
    if let Ok((config, services)) = &loaded
        && !config.builders.is_empty()
    {
        for b in &config.builders {
            let host = &b.value.host.value;
            let engine = match super::builder_endpoint(config, &b.value) {
                Ok(endpoint) => DockerEngine::connect_to(endpoint)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e),
            };
            checks.push((
                format!("builder {host}"),
                match engine {
                    Ok(engine) => match builder(engine.info(), services) {
                        Check::Pass(note) => {
                            let info = engine.info();
                            Check::Pass(format!(
                                "Docker {} on {}, API {}; {note}",
                                info.version, info.os, info.api
                            ))
                        }
                        other => other,
                    },
                    Err(e) => fail(
                        e,
                        "start it, or remove it from builders: (a run leaves an unreachable builder out)",
                    ),
                },
            ));
        }
    }
    // Without one, the engine the environment names.
    let pool = loaded.as_ref().is_ok_and(|(c, _)| !c.builders.is_empty());
    if !pool {
        let engine = DockerEngine::connect().await;
        checks.push(("docker engine".to_string(),
            match &engine {
                Ok(engine) => {
                    let info = engine.info();
                    Check::Pass(format!(
                        "Docker {} on {}, API {}, at {} (from {})",
                        info.version, info.os, info.api, info.endpoint, info.source
                    ))
                }
                Err(e @ EngineError::Context { .. }) => fail(
                    e.to_string(),
                    "`docker context ls` lists the contexts; `docker context use NAME` (or DOCKER_CONTEXT) picks one, DOCKER_HOST overrides them",
                ),
                Err(e) => fail(
                    e.to_string(),
                    "start the engine, or point DOCKER_HOST (or the Docker context) at it",
                ),
            },
        ));
        checks.push((
            "builder".to_string(),
            match (&engine, &loaded) {
                (Ok(engine), Ok((_, services))) => builder(engine.info(), services),
                (Err(_), _) => Check::Skipped("needs the engine".into()),
                (_, Err(_)) => Check::Skipped("needs a valid pipeline.yaml".into()),
            },
        ));
    }
    checks.push((
        "secrets".to_string(),
        match &loaded {
            Ok((config, services)) => secrets(config, services),
            Err(_) => Check::Skipped("needs a valid pipeline.yaml".into()),
        },
    ));

    let Ok((config, services)) = &loaded else {
        for name in ["aws", "ecr", "registry", "manifests"] {
            checks.push((
                name.to_string(),
                Check::Skipped("needs a valid pipeline.yaml".into()),
            ));
        }
        return checks;
    };

    let mut login: Result<Connection, Check> = Err(Check::Skipped("needs an ECR login".into()));
    let configured_host = config.registry.host.as_ref().map(|h| h.value.as_str());
    match &config.registry.ecr {
        Some(settings) => match Ecr::connect(settings).await {
            Ok(_) => {
                checks.push((
                    "aws".to_string(),
                    Check::Pass(aws_source(settings.region.as_deref())),
                ));
                match connect::ecr(settings, configured_host, &config.push.policy()).await {
                    Ok(connection) => {
                        checks.push(("ecr".to_string(),
                            Check::Pass(format!("login; images go to {}", connection.host)),
                        ));
                        login = Ok(connection);
                    }
                    Err(e) => checks.push(("ecr".to_string(),
                        fail(
                            e.to_string(),
                            "check AWS_ENDPOINT_URL_ECR / the region, and that the credentials may call ecr:GetAuthorizationToken",
                        ),
                    )),
                }
            }
            Err(e) => {
                checks.push((
                    "aws".to_string(),
                    fail(e.to_string(), "set the region and credentials"),
                ));
                checks.push((
                    "ecr".to_string(),
                    Check::Skipped("needs AWS credentials".into()),
                ));
            }
        },
        None => {
            checks.push((
                "aws".to_string(),
                Check::Skipped("no registry.ecr: a plain registry".into()),
            ));
            checks.push(("ecr".to_string(), Check::Skipped("no registry.ecr".into())));
            login = connect::plain(configured_host.unwrap_or_default(), &config.push.policy())
                .map_err(|e| {
                    fail(
                        e.to_string(),
                        "fix the Docker config, or the credential helper it names",
                    )
                });
        }
    }
    checks.push((
        "registry".to_string(),
        match &login {
            Ok(connection) => match connection.registry().ping().await {
                Ok(()) => Check::Pass(format!(
                    "{} accepts the login from {}",
                    connection.host, connection.login
                )),
                Err(e) => Check::Fail {
                    problem: format!("{}: {e} (login from {})", connection.host, connection.login),
                    fix: registry_fix(&connection.host, &connection.login, &e),
                },
            },
            Err(check) => check.clone(),
        },
    ));

    checks.push((
        "manifests".to_string(),
        if !config.manifests.configured() {
            Check::Pass("none configured (manifests: in pipeline.yaml)".into())
        } else {
            let host = login
                .as_ref()
                .map(|c| c.host.as_str())
                .unwrap_or("registry");
            let pins: Vec<Pinned> = services
                .iter()
                .map(|s| {
                    let uri = format!("{host}/{}", s.repository);
                    Pinned::placeholder(
                        &s.name,
                        &s.repository,
                        uri,
                        "doctor".into(),
                        "in-doctor".into(),
                    )
                })
                .collect();
            let names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
            match patch::compute(config, &pins, &names) {
                Ok(changes) => {
                    let warnings = crate::patch::warnings(&changes);
                    match (warnings.is_empty(), config.manifests.strict) {
                        (true, _) => Check::Pass(format!("{} files can be patched", changes.len())),
                        (false, false) => Check::Pass(format!(
                            "{} files can be patched, with {} warning(s): {}",
                            changes.len(),
                            warnings.len(),
                            warnings.join("; ")
                        )),
                        (false, true) => fail(
                            warnings.join("; "),
                            "manifests.strict is set: fix what each warning names",
                        ),
                    }
                }
                Err(e) => fail(
                    e.to_string(),
                    "fix the file, or manifests: in pipeline.yaml",
                ),
            }
        },
    ));
    checks
}

/// Which builder each service gets on this engine, and why; a service
/// that asks for BuildKit where there is none fails.
fn builder(info: &EngineInfo, services: &[Service]) -> Check {
    let buildkit = info.no_buildkit.is_none();
    if let (Some(why), Some(s)) = (
        &info.no_buildkit,
        services.iter().find(|s| s.builder == Builder::BuildKit),
    ) {
        return Check::Fail {
            problem: format!("service `{}` sets builder: buildkit, but {why}", s.name),
            fix: "use builder: auto or classic, or an engine that offers BuildKit".into(),
        };
    }
    let classic: Vec<&str> = services
        .iter()
        .filter(|s| s.builder == Builder::Classic || (s.builder == Builder::Auto && !buildkit))
        .map(|s| s.name.as_str())
        .collect();
    let kind = match buildkit {
        true => Kind::BuildKit,
        false => Kind::Classic,
    };
    let mut text = info.builder_note(kind);
    if buildkit && !classic.is_empty() {
        text.push_str(&format!(
            "; the classic builder for {} (builder: classic)",
            classic.join(", ")
        ));
    }
    Check::Pass(text)
}

/// The build secrets each service's Dockerfile mounts, and which of them
/// `secrets:` does not configure or cannot read.
fn secrets(config: &Config, services: &[Service]) -> Check {
    let mut needed = Vec::new();
    let mut problems = Vec::new();
    for service in services {
        let text =
            std::fs::read_to_string(config.root.join(&service.dockerfile)).unwrap_or_default();
        let Ok(dockerfile) = dockerfile::Dockerfile::parse(&text) else {
            continue;
        };
        let mut ids: Vec<String> = dockerfile
            .secret_mounts()
            .into_iter()
            .map(|m| {
                if !service.secrets.contains_key(&m.id) {
                    problems.push(format!(
                        "{}:{} mounts secret `{}`{}, which services.{}.secrets does not configure",
                        service.dockerfile,
                        m.line,
                        m.id,
                        if m.required { " (required)" } else { "" },
                        service.name
                    ));
                }
                m.id
            })
            .collect();
        ids.sort();
        ids.dedup();
        if let Err(e) = crate::build::secrets::load(service, &config.root) {
            problems.push(e.to_string());
        }
        if !ids.is_empty() {
            needed.push(format!("{}: {}", service.name, ids.join(", ")));
        }
    }
    match (problems.is_empty(), needed.is_empty()) {
        (false, _) => Check::Fail {
            problem: problems.join("; "),
            fix: "add each id under the service's `secrets:` as {env: VARIABLE} or {file: PATH}, and make the variable or file exist".into(),
        },
        (true, true) => Check::Pass("no Dockerfile mounts a build secret".into()),
        (true, false) => Check::Pass(format!("configured and readable: {}", needed.join("; "))),
    }
}

/// The fix for a registry that refused a ping, by where the login came from.
fn registry_fix(host: &str, login: &Login, e: &oci_registry::RegistryError) -> String {
    use oci_registry::LoginSource;
    if !matches!(e, oci_registry::RegistryError::Unauthorized { .. }) {
        return format!("check registry.host `{host}` and that the registry runs");
    }
    match login {
        Login::Ecr => "check that registry.host is the registry of this AWS account, and that the credentials may push there".into(),
        Login::DockerConfig(LoginSource::None) => format!(
            "there is no login for {host}: `docker login {host}` (pipeline reads the Docker config: credHelpers, credsStore, then auths)"
        ),
        Login::DockerConfig(LoginSource::Helper(name) | LoginSource::Store(name)) => format!(
            "docker-credential-{name} answered with a login the registry refuses: `docker login {host}` stores a new one"
        ),
        Login::DockerConfig(LoginSource::Auths) => format!(
            "the Docker config's auths entry for {host} is refused: `docker login {host}` again"
        ),
    }
}

fn git(root: Option<&Path>) -> Check {
    let version = std::process::Command::new("git").arg("--version").output();
    let Some(version) = version.ok().filter(|o| o.status.success()) else {
        return Check::Fail {
            problem: "git is not installed".into(),
            fix: "install git: tags like {git_short} and labels need it".into(),
        };
    };
    let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
    let head = root.and_then(|root| {
        let out = std::process::Command::new("git")
            .args(["rev-parse", "--short=7", "HEAD"])
            .current_dir(root)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    });
    match head {
        Some(head) => Check::Pass(format!("{version}, HEAD {head}")),
        None => Check::Fail {
            problem: format!("{version}, but no commit here"),
            fix: "run in a git repository with a commit ({git_sha} and {git_short} tags need one)"
                .into(),
        },
    }
}

/// Where the AWS credentials come from, as far as the environment tells.
fn aws_source(configured_region: Option<&str>) -> String {
    let region = configured_region
        .map(|r| format!("{r} (pipeline.yaml)"))
        .or_else(|| {
            std::env::var("AWS_REGION")
                .ok()
                .map(|r| format!("{r} (AWS_REGION)"))
        })
        .unwrap_or_else(|| "from the profile".into());
    let credentials = if std::env::var_os("AWS_ACCESS_KEY_ID").is_some() {
        "AWS_ACCESS_KEY_ID (environment)".to_string()
    } else if let Ok(profile) = std::env::var("AWS_PROFILE") {
        format!("profile {profile}")
    } else {
        "the default chain (profile, SSO, web identity or instance role)".into()
    };
    format!("region {region}; credentials from {credentials}")
}

/// The report as one JSON document: `[{name, status, detail, fix}]`.
pub(crate) fn to_json(checks: &[(String, Check)]) -> String {
    let items: Vec<serde_json::Value> = checks
        .iter()
        .map(|(name, check)| match check {
            Check::Pass(detail) => {
                serde_json::json!({"name": name, "status": "pass", "detail": detail})
            }
            Check::Fail { problem, fix } => {
                serde_json::json!({"name": name, "status": "fail", "detail": problem, "fix": fix})
            }
            Check::Skipped(why) => {
                serde_json::json!({"name": name, "status": "skip", "detail": why})
            }
        })
        .collect();
    serde_json::to_string_pretty(&items).expect("checks serialize") + "\n"
}

/// The report, one line per check, a fix under each failure.
pub(crate) fn render(checks: &[(String, Check)]) -> String {
    let mut out = String::new();
    for (name, check) in checks {
        match check {
            Check::Pass(detail) => out.push_str(&format!("ok    {name:<14} {detail}\n")),
            Check::Fail { problem, fix } => {
                out.push_str(&format!("FAIL  {name:<14} {problem}\n"));
                out.push_str(&format!("      {:<14} fix: {fix}\n", ""));
            }
            Check::Skipped(why) => out.push_str(&format!("skip  {name:<14} {why}\n")),
        }
    }
    out
}
