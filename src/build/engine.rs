//! The Docker engine, through bollard: build from a streamed context, tag,
//! push.
//!
//! The engine is the one `DOCKER_HOST` names, else the default socket. Its
//! API version is negotiated, since Debian's engine speaks API 1.41 and
//! refuses newer clients outright. Builds use BuildKit (see `buildkit.rs`)
//! or the classic builder, as each service's `builder` and the engine
//! decide; both read the tar we stream. The classic builder pulls `FROM`
//! images with the logins passed as `X-Registry-Config`; BuildKit asks the
//! session for them.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::models::{BuildInfo, BuildInfoAux};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, BuilderVersion, PushImageOptionsBuilder, TagImageOptionsBuilder,
};
use futures::StreamExt;
use oci_registry::{Credentials, Secret};

use crate::build::buildkit::{self, Session, Trace};
use crate::plan::context::Listing;

#[derive(Debug, thiserror::Error)]
pub(crate) enum EngineError {
    #[error(
        "cannot reach the Docker engine at {endpoint} ({message}); start it or set DOCKER_HOST (e.g. unix:///var/run/docker.sock)"
    )]
    Unreachable { endpoint: String, message: String },
    /// The Docker CLI context that should name the engine is unusable.
    #[error(
        "Docker context `{name}`: {message}; choose another with `docker context use NAME` or DOCKER_CONTEXT, or set DOCKER_HOST"
    )]
    Context { name: String, message: String },
    /// A build failed: at which step (as the builder names it), why, and
    /// the step's last output lines when the builder tells them apart.
    #[error("{message}")]
    Build {
        step: Option<String>,
        message: String,
        output: Vec<String>,
    },
    #[error("{0}")]
    Session(#[from] buildkit::SessionError),
    #[error("{0}")]
    Push(String),
    /// The registry refused the login; the daemon says so only in words,
    /// which [`push_error`] reads once, here.
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Api(String),
}

/// Where the engine listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Unix(String),
    Tcp(String),
    /// `tcp://` with TLS (`DOCKER_TLS_VERIFY`, `DOCKER_CERT_PATH`, or a
    /// builder's `tls:`): the CA that signed the engine's certificate, and
    /// the client's certificate and key.
    Tls {
        address: String,
        ca: PathBuf,
        cert: PathBuf,
        key: PathBuf,
    },
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(path) => write!(f, "unix://{path}"),
            Endpoint::Tcp(address) | Endpoint::Tls { address, .. } => {
                write!(f, "tcp://{address}")
            }
        }
    }
}

const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// Where the engine's address came from, for `doctor` and error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EndpointSource {
    DockerHost,
    /// A Docker CLI context, chosen by `DOCKER_CONTEXT` or by the config's
    /// `currentContext`.
    Context {
        name: String,
        by: &'static str,
    },
    Default,
}

impl fmt::Display for EndpointSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndpointSource::DockerHost => f.write_str("DOCKER_HOST"),
            EndpointSource::Context { name, by } => write!(f, "Docker context `{name}` ({by})"),
            EndpointSource::Default => f.write_str("the default socket"),
        }
    }
}

impl Endpoint {
    /// `tcp://address` with the TLS material of `folder`: `ca.pem`,
    /// `cert.pem` and `key.pem`, as `DOCKER_CERT_PATH` holds them.
    pub(crate) fn tls_folder(address: String, folder: &Path) -> Endpoint {
        Endpoint::Tls {
            address,
            ca: folder.join("ca.pem"),
            cert: folder.join("cert.pem"),
            key: folder.join("key.pem"),
        }
    }

    /// The engine the Docker CLI would use: `DOCKER_HOST`, then the context
    /// `DOCKER_CONTEXT` names, then the config's `currentContext`, else the
    /// default socket (https://docs.docker.com/engine/manage-resources/contexts/).
    pub(crate) fn from_env() -> Result<(Endpoint, EndpointSource), EngineError> {
        let tls = std::env::var_os("DOCKER_TLS_VERIFY").is_some_and(|v| !v.is_empty() && v != "0");
        if let Ok(host) = std::env::var("DOCKER_HOST")
            && !host.is_empty()
        {
            return Ok((Endpoint::parse(&host, tls)?, EndpointSource::DockerHost));
        }
        let chosen = match std::env::var("DOCKER_CONTEXT") {
            Ok(name) if !name.is_empty() => Some((name, "DOCKER_CONTEXT")),
            _ => {
                let config =
                    oci_registry::DockerConfig::load().map_err(|e| EngineError::Context {
                        name: "currentContext".into(),
                        message: e.to_string(),
                    })?;
                config
                    .as_ref()
                    .and_then(|c| c.current_context())
                    .map(|name| (name.to_string(), "currentContext in the Docker config"))
            }
        };
        match chosen {
            Some((name, by)) if name != "default" => {
                let endpoint = Endpoint::from_context(&name)?;
                Ok((endpoint, EndpointSource::Context { name, by }))
            }
            _ => Ok((
                Endpoint::Unix(DEFAULT_SOCKET.into()),
                EndpointSource::Default,
            )),
        }
    }

    /// The `docker` endpoint of the Docker CLI context `name`: its
    /// `meta.json` under `contexts/meta/<sha256 of the name>/`, and its TLS
    /// material under `contexts/tls/<same>/docker/`, in the Docker config
    /// folder.
    pub(crate) fn from_context(name: &str) -> Result<Endpoint, EngineError> {
        use sha2::Digest;
        let context_error = |message: String| EngineError::Context {
            name: name.to_string(),
            message,
        };
        let config_dir = oci_registry::DockerConfig::default_path()
            .and_then(|p| p.parent().map(std::path::Path::to_path_buf))
            .ok_or_else(|| {
                context_error("no Docker config folder (set DOCKER_CONFIG or HOME)".into())
            })?;
        let id = hex::encode(sha2::Sha256::digest(name.as_bytes()));
        let meta = config_dir.join("contexts/meta").join(&id).join("meta.json");
        let text = std::fs::read_to_string(&meta).map_err(|e| {
            context_error(match e.kind() {
                std::io::ErrorKind::NotFound => format!(
                    "there is no such context ({} does not exist); `docker context ls` lists the contexts",
                    meta.display()
                ),
                _ => format!("reading {}: {e}", meta.display()),
            })
        })?;
        let doc: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| context_error(format!("{}: {e}", meta.display())))?;
        let host = doc["Endpoints"]["docker"]["Host"].as_str().ok_or_else(|| {
            context_error(format!("{} names no docker endpoint Host", meta.display()))
        })?;
        let tls_dir = config_dir.join("contexts/tls").join(&id).join("docker");
        match Endpoint::parse(host, false)? {
            Endpoint::Tcp(address) if tls_dir.join("ca.pem").is_file() => {
                Ok(Endpoint::tls_folder(address, &tls_dir))
            }
            endpoint => Ok(endpoint),
        }
    }

    /// `unix:///path` or `tcp://host:port` (with TLS when `tls`).
    pub(crate) fn parse(host: &str, tls: bool) -> Result<Endpoint, EngineError> {
        let unreachable = |message: &str| EngineError::Unreachable {
            endpoint: host.to_string(),
            message: message.to_string(),
        };
        if let Some(path) = host.strip_prefix("unix://") {
            return Ok(Endpoint::Unix(path.to_string()));
        }
        let address = host
            .strip_prefix("tcp://")
            .or_else(|| host.strip_prefix("http://"))
            .ok_or_else(|| unreachable("only unix:// and tcp:// engines are supported"))?
            .trim_end_matches('/')
            .to_string();
        Ok(match tls {
            true => {
                let folder = std::env::var("DOCKER_CERT_PATH").unwrap_or_else(|_| {
                    std::env::var("HOME")
                        .map(|h| format!("{h}/.docker"))
                        .unwrap_or_default()
                });
                Endpoint::tls_folder(address, Path::new(&folder))
            }
            false => Endpoint::Tcp(address),
        })
    }
}

/// Which builder of the engine builds an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    BuildKit,
    Classic,
}

/// What an engine is and offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EngineInfo {
    pub(crate) endpoint: String,
    /// Where the endpoint came from (`DOCKER_HOST`, a context, the default).
    pub(crate) source: String,
    /// `20.10.24`.
    pub(crate) version: String,
    /// The API version spoken, after negotiation.
    pub(crate) api: String,
    /// `linux`, `windows`.
    pub(crate) os: String,
    /// Why BuildKit is not offered, when it is not.
    pub(crate) no_buildkit: Option<String>,
}

impl EngineInfo {
    /// The Dockerfile frontend built into this engine's BuildKit: 20.10
    /// embeds 1.2; later engines newer ones (23.0 embeds BuildKit 0.10 with
    /// frontend 1.4, 24 → 1.5, 25 → 1.6, 26 → 1.7, 27 → 1.9, 28 → 1.14).
    pub(crate) fn frontend(&self) -> dockerfile::Frontend {
        use dockerfile::{Frontend, Version};
        let major: u32 = self
            .version
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or(0);
        let minor = match major {
            0..=22 => return Frontend::DOCKER_20_10,
            23 => 4,
            24 => 5,
            25 => 6,
            26 => 7,
            27 => 9,
            28 => 14,
            _ => return Frontend::Latest { labs: false },
        };
        Frontend::Release {
            version: Version::new(1, minor),
            labs: false,
        }
    }

    /// One line for people: which builder a setting gets here, and why.
    pub(crate) fn builder_note(&self, kind: Kind) -> String {
        match (kind, &self.no_buildkit) {
            (Kind::BuildKit, _) => format!(
                "builder: BuildKit (Docker {} on {}, API {})",
                self.version, self.os, self.api
            ),
            (Kind::Classic, Some(why)) => {
                format!("builder: the classic builder ({why})")
            }
            (Kind::Classic, None) => "builder: the classic builder (build.builder: classic)".into(),
        }
    }
}

/// What to build.
#[derive(Debug, Clone)]
pub(crate) struct BuildRequest {
    /// The Dockerfile's path inside the context tar.
    pub(crate) dockerfile: String,
    /// The tag the image gets locally, `repo:tag`.
    pub(crate) tag: String,
    pub(crate) target: Option<String>,
    pub(crate) platform: Option<String>,
    pub(crate) build_args: HashMap<String, String>,
    /// Image labels, set by the builder from the request (no extra step with
    /// BuildKit).
    pub(crate) labels: HashMap<String, String>,
    /// Logins for registries that `FROM` may pull from, by host.
    pub(crate) registries: HashMap<String, Credentials>,
    pub(crate) builder: Kind,
    /// The network of `RUN` steps (`host`, `none`); `None` for the default.
    pub(crate) network: Option<&'static str>,
    /// Build secrets by id (BuildKit only).
    pub(crate) secrets: HashMap<String, Secret>,
}

/// A build step: `2/5 RUN make`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StepInfo {
    pub(crate) index: usize,
    pub(crate) count: usize,
    pub(crate) instruction: String,
}

/// One line of build output, with the step it belongs to.
#[derive(Debug, Clone)]
pub(crate) struct BuildLine {
    pub(crate) line: String,
    /// The step running when the line came.
    pub(crate) step: Option<StepInfo>,
}

#[async_trait]
pub(crate) trait Engine: Send + Sync {
    /// Builds `context` and returns the image ID.
    async fn build(
        &self,
        request: BuildRequest,
        context: Listing,
        on_line: &mut (dyn FnMut(BuildLine) + Send),
    ) -> Result<String, EngineError>;
    async fn tag(&self, image: &str, repository: &str, tag: &str) -> Result<(), EngineError>;
    /// The ID of the local image `reference`, when the engine has it.
    async fn image_id(&self, reference: &str) -> Result<Option<String>, EngineError>;
    /// Whether the engine still answers (a failed build may have lost it).
    async fn alive(&self) -> bool;
    /// Pushes `repository:tag` (repository includes the registry host).
    async fn push(
        &self,
        repository: &str,
        tag: &str,
        credentials: Option<Credentials>,
        on_output: &mut (dyn FnMut(PushOutput) + Send),
    ) -> Result<(), EngineError>;
}

/// What a push reports while it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PushOutput {
    /// A status line worth a log (`Pushed`, `latest: digest: …`).
    Line(String),
    /// Bytes of one layer sent so far, of its total.
    Layer {
        id: String,
        current: u64,
        total: u64,
    },
}

pub(crate) struct DockerEngine {
    docker: Docker,
    endpoint: Endpoint,
    info: EngineInfo,
}

fn docker_credentials(host: &str, c: &Credentials) -> DockerCredentials {
    DockerCredentials {
        username: Some(c.username.clone()),
        password: Some(c.password.expose().to_string()),
        serveraddress: Some(host.to_string()),
        ..Default::default()
    }
}

/// bollard's request timeout, which covers only the wait for the response
/// headers; builds send progress from the start.
const TIMEOUT_SECS: u64 = 120;

impl DockerEngine {
    /// Connects to the engine the environment names, negotiates the API
    /// version and reads what the engine offers.
    pub(crate) async fn connect() -> Result<DockerEngine, EngineError> {
        let (endpoint, source) = Endpoint::from_env()?;
        let mut engine = DockerEngine::connect_to(endpoint)
            .await
            .map_err(|e| match e {
                EngineError::Unreachable { endpoint, message } => EngineError::Unreachable {
                    endpoint,
                    message: format!("{message}; the address came from {source}"),
                },
                other => other,
            })?;
        engine.info.source = source.to_string();
        Ok(engine)
    }

    pub(crate) async fn connect_to(endpoint: Endpoint) -> Result<DockerEngine, EngineError> {
        let unreachable = |e: bollard::errors::Error| EngineError::Unreachable {
            endpoint: endpoint.to_string(),
            message: e.to_string(),
        };
        let docker = match &endpoint {
            Endpoint::Unix(path) => {
                Docker::connect_with_socket(path, TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
            }
            Endpoint::Tcp(address) => Docker::connect_with_http(
                &format!("tcp://{address}"),
                TIMEOUT_SECS,
                bollard::API_DEFAULT_VERSION,
            ),
            Endpoint::Tls {
                address,
                ca,
                cert,
                key,
            } => Docker::connect_with_ssl(
                &format!("tcp://{address}"),
                key,
                cert,
                ca,
                TIMEOUT_SECS,
                bollard::API_DEFAULT_VERSION,
            ),
        }
        .map_err(unreachable)?;
        let docker = docker.negotiate_version().await.map_err(unreachable)?;
        let version = docker.version().await.map_err(unreachable)?;
        let api = docker.client_version().to_string();
        let os = version.os.clone().unwrap_or_else(|| "?".into());
        // BuildKit through the API needs a Linux engine and API 1.39 or later
        // (https://docs.docker.com/engine/api/version-history/#v139-api-changes).
        let api_ok = api
            .split_once('.')
            .and_then(|(major, minor)| {
                Some((major.parse::<u32>().ok()?, minor.parse::<u32>().ok()?))
            })
            .is_some_and(|v| v >= (1, 39));
        let no_buildkit = match (os.as_str(), api_ok) {
            ("linux", true) if matches!(endpoint, Endpoint::Tls { .. }) => Some(
                "pipeline does not open BuildKit sessions over TLS yet; the classic builder works"
                    .into(),
            ),
            ("linux", true) => None,
            ("linux", false) => Some(format!(
                "the engine speaks API {api}; BuildKit needs 1.39 or later"
            )),
            (os, _) => Some(format!(
                "the engine runs on {os}; BuildKit needs a Linux engine"
            )),
        };
        let info = EngineInfo {
            endpoint: endpoint.to_string(),
            source: "the caller".into(),
            version: version.version.unwrap_or_else(|| "?".into()),
            api,
            os,
            no_buildkit,
        };
        Ok(DockerEngine {
            docker,
            endpoint,
            info,
        })
    }

    pub(crate) fn info(&self) -> &EngineInfo {
        &self.info
    }

    fn options(
        request: &BuildRequest,
        credentials: &HashMap<String, DockerCredentials>,
    ) -> (BuildImageOptionsBuilder, HashMap<String, DockerCredentials>) {
        let mut options = BuildImageOptionsBuilder::default()
            .dockerfile(&request.dockerfile)
            .t(&request.tag)
            .rm(true)
            .forcerm(true)
            .buildargs(&request.build_args)
            .labels(&request.labels);
        if let Some(target) = &request.target {
            options = options.target(target);
        }
        if let Some(platform) = &request.platform {
            options = options.platform(platform);
        }
        if let Some(network) = request.network {
            options = options.networkmode(network);
        }
        (options, credentials.clone())
    }

    async fn build_classic(
        &self,
        request: BuildRequest,
        context: Listing,
        on_line: &mut (dyn FnMut(BuildLine) + Send),
    ) -> Result<String, EngineError> {
        let credentials: HashMap<String, DockerCredentials> = request
            .registries
            .iter()
            .map(|(host, c)| (host.clone(), docker_credentials(host, c)))
            .collect();
        let (options, credentials) = Self::options(&request, &credentials);
        let body = bollard::body_try_stream(context.into_tar_stream());
        let mut stream = self
            .docker
            .build_image(options.build(), Some(credentials), Some(body));
        let mut step: Option<StepInfo> = None;
        let mut step_line: Option<String> = None;
        let mut image_id: Option<String> = None;
        let mut partial = String::new();
        let failed = |step_line: &Option<String>, message: String| EngineError::Build {
            step: step_line.clone(),
            message,
            output: Vec::new(),
        };
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| failed(&step_line, e.to_string()))?;
            if let Some(text) = info.stream {
                partial.push_str(&text);
                while let Some(nl) = partial.find('\n') {
                    let line: String = partial.drain(..=nl).collect();
                    let line = buildkit::strip_ansi(line.trim_end());
                    if let Some(parsed) = parse_step(&line) {
                        step = Some(parsed);
                        step_line = Some(line.clone());
                    }
                    on_line(BuildLine {
                        line,
                        step: step.clone(),
                    });
                }
            }
            if let Some(detail) = info.error_detail {
                let message = detail.message.unwrap_or_else(|| "build failed".into());
                return Err(failed(&step_line, message));
            }
            if let Some(BuildInfoAux::Default(image)) = info.aux
                && let Some(id) = image.id
            {
                image_id = Some(id);
            }
        }
        if !partial.trim().is_empty() {
            on_line(BuildLine {
                line: partial.trim_end().to_string(),
                step: step.clone(),
            });
        }
        self.built_image(image_id, &request.tag, &step_line).await
    }

    async fn build_buildkit(
        &self,
        request: BuildRequest,
        context: Listing,
        on_line: &mut (dyn FnMut(BuildLine) + Send),
    ) -> Result<String, EngineError> {
        let session = Session::start(
            &self.endpoint,
            &self.info.api,
            request.registries.clone(),
            request.secrets.clone(),
        )
        .await?;
        let (options, _) = Self::options(&request, &HashMap::new());
        // bollard's classic path (it opens no session of its own, and sends
        // no logins: BuildKit asks our session for them), with `version=2`
        // on the wire; bollard still decodes the BuildKit trace.
        let options = options
            .session(&session.id)
            .version(BuilderVersion::BuilderV1)
            .build();
        let docker = self
            .docker
            .clone()
            .with_request_modifier(buildkit_on_the_wire);
        let body = bollard::body_try_stream(context.into_tar_stream());
        let mut stream = docker.build_image(options, None, Some(body));
        let mut trace = Trace::new(&request.secrets);
        let mut image_id: Option<String> = None;
        let mut error: Option<String> = None;
        while let Some(item) = stream.next().await {
            match item {
                Ok(BuildInfo {
                    aux: Some(BuildInfoAux::BuildKit(status)),
                    ..
                }) => trace.feed(&status, on_line),
                Ok(BuildInfo {
                    aux: Some(BuildInfoAux::Default(image)),
                    ..
                }) => image_id = image.id.or(image_id),
                Ok(BuildInfo {
                    error_detail: Some(detail),
                    ..
                }) => error = detail.message.or(Some("build failed".into())),
                Ok(_) => {}
                Err(e) => {
                    error = Some(match e {
                        bollard::errors::Error::DockerStreamError { error } => error,
                        other => other.to_string(),
                    });
                    break;
                }
            }
        }
        session.close().await;
        if let Some(error) = error {
            return Err(match trace.failed() {
                Some(step) => EngineError::Build {
                    message: match buildkit::exit_code(&step.error) {
                        Some(code) => format!("exit code {code}"),
                        None => step.error.clone(),
                    },
                    step: Some(step.name),
                    output: step.output,
                },
                None => EngineError::Build {
                    step: None,
                    message: error,
                    output: Vec::new(),
                },
            });
        }
        self.built_image(image_id, &request.tag, &None).await
    }

    async fn built_image(
        &self,
        image_id: Option<String>,
        tag: &str,
        step: &Option<String>,
    ) -> Result<String, EngineError> {
        match image_id {
            Some(id) => Ok(id),
            // Older engines announce the ID only in the last stream line.
            None => self
                .docker
                .inspect_image(tag)
                .await
                .ok()
                .and_then(|i| i.id)
                .ok_or(EngineError::Build {
                    step: step.clone(),
                    message: "the engine reported no image ID".into(),
                    output: Vec::new(),
                }),
        }
    }
}

/// Sends bollard's classic build request as a BuildKit one: `version=1` in
/// the query of `/build` becomes `version=2`; nothing else changes.
fn buildkit_on_the_wire(mut request: bollard::BollardRequest) -> bollard::BollardRequest {
    if !request.uri().path().ends_with("/build") {
        return request;
    }
    let Some(query) = request.uri().query() else {
        return request;
    };
    let query: Vec<&str> = query
        .split('&')
        .map(|kv| if kv == "version=1" { "version=2" } else { kv })
        .collect();
    let path_and_query = format!("{}?{}", request.uri().path(), query.join("&"));
    let mut parts = request.uri().clone().into_parts();
    if let Ok(pq) = path_and_query.parse() {
        parts.path_and_query = Some(pq);
        if let Ok(uri) = http::Uri::from_parts(parts) {
            *request.uri_mut() = uri;
        }
    }
    request
}

/// `Step 2/5 : RUN make`, as the classic builder prints a step.
pub(crate) fn parse_step(line: &str) -> Option<StepInfo> {
    let rest = line.strip_prefix("Step ")?;
    let (numbers, instruction) = rest.split_once(" : ")?;
    let (i, n) = numbers.split_once('/')?;
    Some(StepInfo {
        index: i.trim().parse().ok()?,
        count: n.trim().parse().ok()?,
        instruction: instruction.trim().to_string(),
    })
}

#[async_trait]
impl Engine for DockerEngine {
    async fn build(
        &self,
        request: BuildRequest,
        context: Listing,
        on_line: &mut (dyn FnMut(BuildLine) + Send),
    ) -> Result<String, EngineError> {
        match request.builder {
            Kind::BuildKit => self.build_buildkit(request, context, on_line).await,
            Kind::Classic => self.build_classic(request, context, on_line).await,
        }
    }

    async fn tag(&self, image: &str, repository: &str, tag: &str) -> Result<(), EngineError> {
        let options = TagImageOptionsBuilder::default()
            .repo(repository)
            .tag(tag)
            .build();
        self.docker
            .tag_image(image, Some(options))
            .await
            .map_err(|e| EngineError::Api(format!("tagging {image} as {repository}:{tag}: {e}")))
    }

    async fn image_id(&self, reference: &str) -> Result<Option<String>, EngineError> {
        match self.docker.inspect_image(reference).await {
            Ok(image) => Ok(image.id),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(EngineError::Api(format!("inspecting {reference}: {e}"))),
        }
    }

    async fn alive(&self) -> bool {
        let ping = self.docker.ping();
        matches!(
            tokio::time::timeout(std::time::Duration::from_secs(5), ping).await,
            Ok(Ok(_))
        )
    }

    async fn push(
        &self,
        repository: &str,
        tag: &str,
        credentials: Option<Credentials>,
        on_output: &mut (dyn FnMut(PushOutput) + Send),
    ) -> Result<(), EngineError> {
        let host = repository.split('/').next().unwrap_or_default();
        let options = PushImageOptionsBuilder::default().tag(tag).build();
        let creds = credentials.map(|c| docker_credentials(host, &c));
        let mut stream = self.docker.push_image(repository, Some(options), creds);
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| push_error(e.to_string()))?;
            if let Some(detail) = info.error_detail {
                let message = detail.message.unwrap_or_else(|| "push failed".into());
                return Err(push_error(message));
            }
            // Per-layer progress is for the progress view; the log gets the
            // rest. bollard's type drops the layer id, so layers are told
            // apart by their size: two same-sized layers in flight at once
            // are counted as one, which only makes the figure approximate.
            match info.progress_detail {
                Some(detail) if detail.total.is_some_and(|t| t > 0) => {
                    let total = detail.total.unwrap_or(0).max(0) as u64;
                    on_output(PushOutput::Layer {
                        id: total.to_string(),
                        current: detail.current.unwrap_or(0).max(0) as u64,
                        total,
                    });
                }
                _ => {
                    if let Some(status) = info.status {
                        on_output(PushOutput::Line(status));
                    }
                }
            }
        }
        Ok(())
    }
}

/// A push failure as the daemon words it, typed.
fn push_error(message: String) -> EngineError {
    let m = message.to_ascii_lowercase();
    let unauthorized = m.contains("unauthorized")
        || m.contains("authentication required")
        || m.contains("no basic auth credentials");
    match unauthorized {
        true => EngineError::Unauthorized(message),
        false => EngineError::Push(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ansi_colours_are_stripped() {
        use crate::build::buildkit::strip_ansi;
        assert_eq!(
            strip_ansi("\u{1b}[91m/bin/sh: x: not found"),
            "/bin/sh: x: not found"
        );
        assert_eq!(strip_ansi("\u{1b}[0mRemoving"), "Removing");
        assert_eq!(strip_ansi("plain"), "plain");
    }

    #[test]
    fn classic_steps_are_parsed() {
        assert_eq!(
            parse_step("Step 2/5 : RUN make all"),
            Some(StepInfo {
                index: 2,
                count: 5,
                instruction: "RUN make all".into()
            })
        );
        assert_eq!(parse_step("something else"), None);
    }

    #[test]
    fn endpoints() {
        assert_eq!(
            Endpoint::parse("unix:///run/d.sock", false).unwrap(),
            Endpoint::Unix("/run/d.sock".into())
        );
        assert_eq!(
            Endpoint::parse("tcp://10.0.0.2:2375", false).unwrap(),
            Endpoint::Tcp("10.0.0.2:2375".into())
        );
        assert!(matches!(
            Endpoint::parse("tcp://h:2376", true).unwrap(),
            Endpoint::Tls { .. }
        ));
        assert!(Endpoint::parse("ssh://me@h", false).is_err());
    }
}
