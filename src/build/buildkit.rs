//! Builds with BuildKit through the Engine API: a session of our own, and
//! the decoding of BuildKit's progress.
//!
//! `POST /build?version=2` makes the engine build with BuildKit; it then
//! asks the client for what only the client has (registry logins for `FROM`
//! pulls, build secrets) over a *session*: an HTTP/1.1 connection to
//! `POST /session` upgraded to HTTP/2, on which the engine is the gRPC
//! client and we are the server. bollard 0.21.1 opens such a session itself
//! only with an auth service, and keeps its secrets provider private (its
//! gRPC "Moby driver" serves secrets from files or variables only, gives no
//! progress, and cannot set the network mode). So [`Session`] serves the
//! generated gRPC services bollard ships (health, auth, secrets) with
//! tonic, on a connection we open; `build_image` is then called with our
//! session id and bollard's classic path, and one request modifier turns
//! `version=1` into `version=2` on the wire. bollard still decodes the
//! progress, which arrives as `moby.buildkit.trace` messages (protobuf
//! `StatusResponse`: vertexes, statuses, logs).
//!
//! The protocol, as the Docker CLI speaks it: the `X-Docker-Expose-Session-*`
//! headers name the session and each gRPC method it serves (the engine
//! calls nothing else); the engine pings `Health/Check` about once a second
//! and ends the session when it fails; logins are answered per registry host
//! (`Auth/Credentials`), and the engine does the token exchange itself.

use std::collections::HashMap;
use std::pin::Pin;
use std::time::Duration;

use bollard::health::health_check_response::ServingStatus;
use bollard::health::health_server::{Health, HealthServer};
use bollard::health::{
    HealthCheckRequest, HealthCheckResponse, HealthListRequest, HealthListResponse,
};
use bollard::moby::buildkit::secrets::v1::secrets_server::{Secrets, SecretsServer};
use bollard::moby::buildkit::secrets::v1::{GetSecretRequest, GetSecretResponse};
use bollard::moby::buildkit::v1::StatusResponse;
use bollard::moby::filesync::v1::auth_server::{Auth, AuthServer};
use bollard::moby::filesync::v1::{
    CredentialsRequest, CredentialsResponse, FetchTokenRequest, FetchTokenResponse,
    GetTokenAuthorityRequest, GetTokenAuthorityResponse, VerifyTokenAuthorityRequest,
    VerifyTokenAuthorityResponse,
};
use futures::StreamExt;
use oci_registry::{Credentials, Secret};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tonic::{Request, Response, Status};

use crate::build::engine::{BuildLine, Endpoint, StepInfo};

/// The gRPC methods the session serves, announced to the engine.
const METHODS: &[&str] = &[
    "/grpc.health.v1.Health/Check",
    "/moby.filesync.v1.Auth/Credentials",
    "/moby.filesync.v1.Auth/FetchToken",
    "/moby.filesync.v1.Auth/GetTokenAuthority",
    "/moby.filesync.v1.Auth/VerifyTokenAuthority",
    "/moby.buildkit.secrets.v1.Secrets/GetSecret",
];

/// How long the engine may take to accept a session.
const HANDSHAKE: Duration = Duration::from_secs(30);

struct Healthy;

#[tonic::async_trait]
impl Health for Healthy {
    async fn check(
        &self,
        _: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        Ok(Response::new(HealthCheckResponse {
            status: ServingStatus::Serving as i32,
        }))
    }

    async fn list(
        &self,
        _: Request<HealthListRequest>,
    ) -> Result<Response<HealthListResponse>, Status> {
        Err(Status::unimplemented("list"))
    }

    type WatchStream =
        Pin<Box<dyn futures::Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

    async fn watch(
        &self,
        _: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        Err(Status::unimplemented("watch"))
    }
}

/// Registry logins by host, as the engine names the host
/// (`127.0.0.1:5000`, `123456789012.dkr.ecr.eu-west-1.amazonaws.com`).
struct Logins(HashMap<String, Credentials>);

#[tonic::async_trait]
impl Auth for Logins {
    async fn credentials(
        &self,
        request: Request<CredentialsRequest>,
    ) -> Result<Response<CredentialsResponse>, Status> {
        // No login for a host: empty answers, an anonymous pull, as the
        // Docker CLI answers.
        let (username, secret) = match self.0.get(&request.get_ref().host) {
            Some(c) => (c.username.clone(), c.password.expose().to_string()),
            None => Default::default(),
        };
        Ok(Response::new(CredentialsResponse { username, secret }))
    }

    async fn fetch_token(
        &self,
        _: Request<FetchTokenRequest>,
    ) -> Result<Response<FetchTokenResponse>, Status> {
        Err(Status::unimplemented("fetch_token"))
    }

    async fn get_token_authority(
        &self,
        _: Request<GetTokenAuthorityRequest>,
    ) -> Result<Response<GetTokenAuthorityResponse>, Status> {
        // Unavailable: the engine then fetches tokens itself with Credentials.
        Err(Status::unavailable(
            "client-side token authority not offered",
        ))
    }

    async fn verify_token_authority(
        &self,
        _: Request<VerifyTokenAuthorityRequest>,
    ) -> Result<Response<VerifyTokenAuthorityResponse>, Status> {
        Err(Status::unavailable(
            "client-side token authority not offered",
        ))
    }
}

/// Build secrets by id; values leave this process only towards the engine.
struct SecretValues(HashMap<String, Secret>);

#[tonic::async_trait]
impl Secrets for SecretValues {
    async fn get_secret(
        &self,
        request: Request<GetSecretRequest>,
    ) -> Result<Response<GetSecretResponse>, Status> {
        let id = &request.get_ref().id;
        match self.0.get(id) {
            Some(value) => Ok(Response::new(GetSecretResponse {
                data: value.expose().as_bytes().to_vec(),
            })),
            // BuildKit's "not found": an optional mount is skipped, a
            // `required` one fails its step naming the id.
            None => Err(Status::not_found(format!("secret {id} not found"))),
        }
    }
}

/// A session the engine can call back during one build.
pub(crate) struct Session {
    pub(crate) id: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum SessionError {
    #[error("opening a BuildKit session on {endpoint}: {message}")]
    Open { endpoint: String, message: String },
    #[error(
        "BuildKit sessions over a TLS engine connection are not supported yet; set build.builder: classic for {0}"
    )]
    Tls(String),
}

/// A fresh session id: 25 hex digits, like BuildKit's own ids.
fn new_id() -> String {
    use sha2::Digest;
    let seed = format!(
        "{:?}{}{:?}",
        std::time::SystemTime::now(),
        std::process::id(),
        std::thread::current().id()
    );
    let counter = {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        N.fetch_add(1, Ordering::SeqCst)
    };
    let digest = sha2::Sha256::digest(format!("{seed}{counter}").as_bytes());
    hex::encode(digest)[..25].to_string()
}

impl Session {
    /// Opens `/session` on the engine at `endpoint` (API `api_version`),
    /// serving `logins` and `secrets`; returns once the engine has accepted
    /// it, so the build can name it right away.
    pub(crate) async fn start(
        endpoint: &Endpoint,
        api_version: &str,
        logins: HashMap<String, Credentials>,
        secrets: HashMap<String, Secret>,
    ) -> Result<Session, SessionError> {
        let id = new_id();
        let open = |message: String| SessionError::Open {
            endpoint: endpoint.to_string(),
            message,
        };
        let handshake = async {
            match endpoint {
                Endpoint::Unix(path) => {
                    let stream = tokio::net::UnixStream::connect(path)
                        .await
                        .map_err(|e| open(e.to_string()))?;
                    Self::serve(stream, api_version, id.clone(), logins, secrets)
                        .await
                        .map_err(|e| open(e.to_string()))
                }
                Endpoint::Tcp(address) => {
                    let stream = tokio::net::TcpStream::connect(address)
                        .await
                        .map_err(|e| open(e.to_string()))?;
                    Self::serve(stream, api_version, id.clone(), logins, secrets)
                        .await
                        .map_err(|e| open(e.to_string()))
                }
                Endpoint::Tls { .. } => Err(SessionError::Tls(endpoint.to_string())),
            }
        };
        let (shutdown, server) = tokio::time::timeout(HANDSHAKE, handshake)
            .await
            .map_err(|_| open(format!("no answer within {}s", HANDSHAKE.as_secs())))??;
        Ok(Session {
            id,
            shutdown: Some(shutdown),
            server,
        })
    }

    async fn serve<S>(
        mut stream: S,
        api_version: &str,
        id: String,
        logins: HashMap<String, Credentials>,
        secrets: HashMap<String, Secret>,
    ) -> std::io::Result<(
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
    )>
    where
        S: AsyncRead + AsyncWrite + tonic::transport::server::Connected + Unpin + Send + 'static,
    {
        let mut request = format!(
            "POST /v{api_version}/session HTTP/1.1\r\nHost: docker\r\nUser-Agent: pipeline/{}\r\n\
             Content-Length: 0\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\
             X-Docker-Expose-Session-Uuid: {id}\r\n\
             X-Docker-Expose-Session-Name: pipeline\r\n\
             X-Docker-Expose-Session-Sharedkey: pipeline\r\n",
            env!("CARGO_PKG_VERSION")
        );
        for method in METHODS {
            request.push_str(&format!(
                "X-Docker-Expose-Session-Grpc-Method: {method}\r\n"
            ));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).await?;
        // The response head is read byte by byte: the engine's HTTP/2
        // preface follows the 101 at once and must stay for the server.
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if stream.read(&mut byte).await? == 0 || head.len() > 16 * 1024 {
                return Err(std::io::Error::other(format!(
                    "the engine closed the connection: {}",
                    String::from_utf8_lossy(&head).trim()
                )));
            }
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head);
        if !head.starts_with("HTTP/1.1 101") {
            let status = head.lines().next().unwrap_or_default().to_string();
            let mut body = vec![0u8; 4096];
            let n = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut body))
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or(0);
            return Err(std::io::Error::other(format!(
                "{status}: {}",
                String::from_utf8_lossy(&body[..n]).trim()
            )));
        }
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        // One connection, then an incoming stream that never ends: tonic
        // takes an ended stream for a shutdown and would close at once.
        let incoming = futures::stream::iter(vec![Ok::<_, std::io::Error>(stream)])
            .chain(futures::stream::pending());
        let server = tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(HealthServer::new(Healthy))
                .add_service(AuthServer::new(Logins(logins)))
                .add_service(SecretsServer::new(SecretValues(secrets)))
                .serve_with_incoming_shutdown(incoming, async {
                    let _ = stop.await;
                }),
        );
        Ok((shutdown, server))
    }

    /// Ends the session (the engine has finished the build by now).
    pub(crate) async fn close(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if tokio::time::timeout(Duration::from_secs(5), &mut self.server)
            .await
            .is_err()
        {
            self.server.abort();
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A BuildKit step name, `[stage 2/5] RUN make` or `[2/5] RUN make`, as
/// (stage, index, count, instruction).
pub(crate) fn parse_vertex(name: &str) -> Option<(Option<&str>, usize, usize, &str)> {
    let rest = name.strip_prefix('[')?;
    let (inside, instruction) = rest.split_once("] ")?;
    let (stage, numbers) = match inside.rsplit_once(' ') {
        Some((stage, numbers)) => (Some(stage), numbers),
        None => (None, inside),
    };
    let (index, count) = numbers.split_once('/')?;
    Some((stage, index.parse().ok()?, count.parse().ok()?, instruction))
}

/// One vertex (a step) as the trace has shown it so far.
#[derive(Debug, Default)]
struct Vertex {
    number: usize,
    name: String,
    started: bool,
    done: bool,
    /// Output not yet ended by a newline.
    partial: Vec<u8>,
    /// The last lines of its output, for a failure message.
    tail: std::collections::VecDeque<String>,
    error: Option<String>,
}

/// Lines of output kept per step for a failure message.
const STEP_TAIL: usize = 12;

/// Turns the BuildKit trace into log lines in the format of
/// `docker build --progress=plain` (`#5 [2/3] RUN make`, `#5 CACHED`,
/// `#5 <output>`, `#5 ERROR: …`), with the step each belongs to, and
/// remembers the failing step with its last output lines. Values of build
/// secrets are masked in every line.
pub(crate) struct Trace {
    vertexes: HashMap<String, Vertex>,
    next: usize,
    current: Option<StepInfo>,
    secrets: Vec<String>,
}

/// The step that failed: its name, the error, its last output lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FailedStep {
    pub(crate) name: String,
    pub(crate) error: String,
    pub(crate) output: Vec<String>,
}

impl Trace {
    pub(crate) fn new(secrets: &HashMap<String, Secret>) -> Trace {
        Trace {
            vertexes: HashMap::new(),
            next: 1,
            current: None,
            secrets: secrets
                .values()
                .map(|s| s.expose().to_string())
                .filter(|s| s.len() >= 3)
                .collect(),
        }
    }

    fn mask(&self, line: &str) -> String {
        let mut line = line.to_string();
        for secret in &self.secrets {
            if line.contains(secret.as_str()) {
                line = line.replace(secret.as_str(), "****");
            }
        }
        line
    }

    /// Feeds one trace message; `on_line` gets each new log line.
    pub(crate) fn feed(
        &mut self,
        status: &StatusResponse,
        on_line: &mut (dyn FnMut(BuildLine) + Send),
    ) {
        let mut emit = |trace: &Trace, text: String| {
            on_line(BuildLine {
                line: trace.mask(&text),
                step: trace.current.clone(),
            })
        };
        for v in &status.vertexes {
            let next = &mut self.next;
            let vertex = self.vertexes.entry(v.digest.clone()).or_insert_with(|| {
                let number = *next;
                *next += 1;
                Vertex {
                    number,
                    name: v.name.clone(),
                    ..Vertex::default()
                }
            });
            let number = vertex.number;
            let mut lines = Vec::new();
            if v.started.is_some() && !vertex.started {
                vertex.started = true;
                lines.push(format!("#{number} {}", v.name));
                if let Some((_, index, count, instruction)) = parse_vertex(&v.name) {
                    self.current = Some(StepInfo {
                        index,
                        count,
                        instruction: instruction.to_string(),
                    });
                }
            }
            if v.cached && !vertex.done {
                vertex.done = true;
                if !vertex.started {
                    lines.push(format!("#{number} {}", v.name));
                }
                lines.push(format!("#{number} CACHED"));
            }
            if !v.error.is_empty() && vertex.error.is_none() {
                vertex.error = Some(v.error.clone());
                lines.push(format!("#{number} ERROR: {}", v.error));
            } else if v.completed.is_some() && !vertex.done {
                vertex.done = true;
                lines.push(format!("#{number} DONE"));
            }
            for line in lines {
                emit(self, line);
            }
        }
        for log in &status.logs {
            let Some(vertex) = self.vertexes.get_mut(&log.vertex) else {
                continue;
            };
            vertex.partial.extend_from_slice(&log.msg);
            let mut complete = Vec::new();
            while let Some(nl) = vertex.partial.iter().position(|b| *b == b'\n') {
                let bytes: Vec<u8> = vertex.partial.drain(..=nl).collect();
                let text = String::from_utf8_lossy(&bytes);
                complete.push(strip_ansi(text.trim_end_matches(['\n', '\r'])));
            }
            let number = vertex.number;
            for text in complete {
                let text = self.mask(&text);
                let vertex = self.vertexes.get_mut(&log.vertex).expect("looked up above");
                if vertex.tail.len() == STEP_TAIL {
                    vertex.tail.pop_front();
                }
                vertex.tail.push_back(text.clone());
                emit(self, format!("#{number} {text}"));
            }
        }
        for s in &status.statuses {
            if s.completed.is_some() && s.total > 0 {
                let number = self.vertexes.get(&s.vertex).map_or(0, |v| v.number);
                emit(self, format!("#{number} {} {} bytes done", s.id, s.total));
            }
        }
    }

    /// The step that failed, when the trace showed one.
    pub(crate) fn failed(&self) -> Option<FailedStep> {
        let vertex = self
            .vertexes
            .values()
            .filter(|v| v.error.is_some())
            .min_by_key(|v| v.number)?;
        let mut output: Vec<String> = vertex.tail.iter().cloned().collect();
        if !vertex.partial.is_empty() {
            output.push(self.mask(&strip_ansi(&String::from_utf8_lossy(&vertex.partial))));
        }
        Some(FailedStep {
            name: vertex.name.clone(),
            error: self.mask(vertex.error.as_deref().unwrap_or_default()),
            output,
        })
    }
}

/// The exit code in BuildKit's error for a failed `RUN`
/// (`… did not complete successfully: exit code: 3`, or
/// `executor failed running […]: exit code: 3` in older engines).
pub(crate) fn exit_code(error: &str) -> Option<i64> {
    let (_, rest) = error.rsplit_once("exit code: ")?;
    rest.split(|c: char| !c.is_ascii_digit() && c != '-')
        .next()?
        .parse()
        .ok()
}

/// Build output carries the terminal colours of `RUN` stderr; logs and
/// messages get the text alone.
pub(crate) fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters final-byte (a letter).
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::moby::buildkit::v1::{Vertex as V, VertexLog};

    fn started(digest: &str, name: &str) -> V {
        V {
            digest: digest.into(),
            name: name.into(),
            started: Some(Default::default()),
            ..Default::default()
        }
    }

    #[test]
    fn vertex_names() {
        assert_eq!(
            parse_vertex("[build 2/5] RUN make all"),
            Some((Some("build"), 2, 5, "RUN make all"))
        );
        assert_eq!(
            parse_vertex("[3/4] RUN sh -c 'exit 3'"),
            Some((None, 3, 4, "RUN sh -c 'exit 3'"))
        );
        assert_eq!(parse_vertex("[internal] load metadata for x"), None);
        assert_eq!(parse_vertex("exporting to image"), None);
    }

    #[test]
    fn exit_codes() {
        assert_eq!(
            exit_code(
                "executor failed running [/bin/sh -c sh -c 'echo oops; exit 3']: exit code: 3"
            ),
            Some(3)
        );
        assert_eq!(
            exit_code("process \"/bin/sh -c false\" did not complete successfully: exit code: 1"),
            Some(1)
        );
        assert_eq!(exit_code("failed to solve: no such file"), None);
    }

    #[test]
    fn the_trace_becomes_plain_lines_and_names_the_failing_step() {
        let secrets = HashMap::from([("tok".to_string(), Secret::new("s3cr3t-value"))]);
        let mut trace = Trace::new(&secrets);
        let mut lines: Vec<BuildLine> = Vec::new();
        let mut on_line = |l: BuildLine| lines.push(l);
        trace.feed(
            &StatusResponse {
                vertexes: vec![
                    started("sha256:a", "[1/3] FROM local/busybox:1"),
                    V {
                        digest: "sha256:b".into(),
                        name: "[2/3] COPY app /app".into(),
                        cached: true,
                        ..Default::default()
                    },
                    started("sha256:c", "[3/3] RUN sh -c 'echo oops; exit 3'"),
                ],
                ..Default::default()
            },
            &mut on_line,
        );
        trace.feed(
            &StatusResponse {
                logs: vec![
                    VertexLog {
                        vertex: "sha256:c".into(),
                        stream: 1,
                        msg: b"oo".to_vec(),
                        ..Default::default()
                    },
                    VertexLog {
                        vertex: "sha256:c".into(),
                        stream: 1,
                        msg: b"ps\nthe token is s3cr3t-value\n\x1b[31mred\x1b[0m\n".to_vec(),
                        ..Default::default()
                    },
                ],
                vertexes: vec![V {
                    digest: "sha256:c".into(),
                    name: "[3/3] RUN sh -c 'echo oops; exit 3'".into(),
                    started: Some(Default::default()),
                    completed: Some(Default::default()),
                    error: "executor failed running [/bin/sh -c sh -c 'echo oops; exit 3']: exit code: 3".into(),
                    ..Default::default()
                }],
                ..Default::default()
            },
            &mut on_line,
        );
        let text: Vec<&str> = lines.iter().map(|l| l.line.as_str()).collect();
        assert_eq!(
            text,
            [
                "#1 [1/3] FROM local/busybox:1",
                "#2 [2/3] COPY app /app",
                "#2 CACHED",
                "#3 [3/3] RUN sh -c 'echo oops; exit 3'",
                "#3 ERROR: executor failed running [/bin/sh -c sh -c 'echo oops; exit 3']: exit code: 3",
                "#3 oops",
                "#3 the token is ****",
                "#3 red",
            ]
        );
        assert_eq!(
            lines.last().unwrap().step,
            Some(StepInfo {
                index: 3,
                count: 3,
                instruction: "RUN sh -c 'echo oops; exit 3'".into()
            })
        );
        let failed = trace.failed().unwrap();
        assert_eq!(failed.name, "[3/3] RUN sh -c 'echo oops; exit 3'");
        assert_eq!(failed.output, ["oops", "the token is ****", "red"]);
        assert_eq!(exit_code(&failed.error), Some(3));
    }
}
