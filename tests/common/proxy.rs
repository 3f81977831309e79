//! A fault-injecting HTTP/1.1 proxy that stands in front of the stack's real
//! registry, so that tests can watch how the pipeline (and the engine it
//! drives) copes with a registry that answers 503, 429 + `Retry-After`,
//! drops connections, or is down for a while.
//!
//! Clients talk to the proxy as if it were the registry (`docker push
//! 127.0.0.1:PORT/repo:tag` works: the engine treats 127.0.0.0/8 registries as
//! plain HTTP). Everything the registry protocol needs passes through
//! untouched: the `Host` header is forwarded unchanged, because the registry
//! builds the `Location` of an upload from it and that URL must point back at
//! the proxy; `WWW-Authenticate` challenges and `Authorization` go both ways;
//! bodies stream in both directions with their own framing (`Content-Length`
//! or chunked), so a blob upload is never buffered; keep-alive connections
//! are kept.
//!
//! It is built on hyper's server and hyper-util's pooled client rather than
//! written by hand: HTTP/1.1 framing (chunked bodies, HEAD responses that
//! carry a `Content-Length` but no body, `Expect: 100-continue`) is a solved
//! problem. It runs on its own tokio runtime, so synchronous `#[test]`s that
//! spawn `pipeline`, `docker` or `skopeo` can use it; dropping the
//! [`FaultProxy`] stops it.
//!
//! A [policy](FaultProxy::start) decides for every request whether to inject
//! a [`Fault`]. It sees a [`RequestInfo`] whose `kind` has the repository,
//! digests, upload ids and tags replaced by placeholders, and whose `nth`
//! counts the requests of that kind, so "every 3rd request of each kind"
//! ([`FaultProxy::every_nth`]) is deterministic however many layers an image
//! has. An injected status reads the whole request body before it answers,
//! so the client sees a clean HTTP error rather than a broken pipe.
//!
//! What the Docker engine (20.10) does with injected faults, which decides
//! how a test reads: it retries a layer's upload (POST, PATCH, PUT) up to 5
//! times, waiting 5, 10, 15 and 20 s, after a 5xx or a dropped connection,
//! so a push through a proxy that stays down fails only after about 50 s;
//! it retries nothing else (the config blob's HEAD, the manifest PUT) and
//! never a 429 with a `TOOMANYREQUESTS` body. A fault on the `/v2/` ping
//! makes it push without credentials, so the push fails as
//! `unauthorized: authentication required`. Once a push has failed, its
//! other layers' uploads can still reach the proxy for a moment.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Request, Response, StatusCode, Version};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// What the proxy does with one request instead of forwarding it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Forward the request to the registry.
    None,
    /// Answer this status (e.g. 503) with a registry-style JSON error body,
    /// without forwarding (a code outside 100..=999 answers 500).
    Status(u16),
    /// Answer 429 with `Retry-After: <retry_after_secs>` and a
    /// `TOOMANYREQUESTS` error body, the way a rate-limiting registry does.
    TooMany { retry_after_secs: u64 },
    /// Close the connection without answering, with a TCP reset (the
    /// request body is not read).
    Reset,
}

/// One request, as a [policy](FaultProxy::start) sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestInfo {
    /// `GET`, `HEAD`, `POST`, `PATCH`, `PUT`, …
    pub method: String,
    /// The request path, without the query (`/v2/it-x/app/blobs/uploads/5f…`).
    pub path: String,
    /// The query without its `?` (`digest=sha256:…`, `mount=…&from=…`), if any.
    pub query: Option<String>,
    /// The method and the path with the repository, digests, upload ids and
    /// tags replaced by placeholders:
    /// `GET /v2/`, `POST /v2/<repo>/blobs/uploads/`,
    /// `PATCH /v2/<repo>/blobs/uploads/<id>`, `PUT /v2/<repo>/blobs/uploads/<id>`,
    /// `HEAD /v2/<repo>/blobs/<digest>`, `PUT /v2/<repo>/manifests/<tag>`,
    /// `GET /v2/<repo>/manifests/<digest>`, `GET /v2/<repo>/tags/list`.
    /// Any other path is kept as it is.
    pub kind: String,
    /// 1-based: this is the `nth` request of its `kind` the proxy received
    /// (since it started or since [`FaultProxy::reset_stats`]), counting those
    /// answered while down and those given a fault.
    pub nth: usize,
}

/// What became of one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The registry answered with this status.
    Forwarded(u16),
    /// The policy's fault was injected.
    Injected(Fault),
    /// Answered 503 because the proxy was [down](FaultProxy::set_down).
    Down,
    /// Answered 502: the registry could not be reached (the message says why).
    BadGateway(String),
}

/// One request and what became of it, in the order the answers were decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exchange {
    pub info: RequestInfo,
    pub answer: Answer,
}

impl fmt::Display for Exchange {
    /// `PATCH /v2/<repo>/blobs/uploads/<id> #2 -> 503 injected`, then the
    /// request's own path and query (cut at 60 characters: upload URLs
    /// carry a long `_state`) after two spaces.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} #{} -> ", self.info.kind, self.info.nth)?;
        match &self.answer {
            Answer::Forwarded(status) => write!(f, "{status}"),
            Answer::Injected(Fault::None) => write!(f, "forwarded"),
            Answer::Injected(Fault::Status(status)) => write!(f, "{status} injected"),
            Answer::Injected(Fault::TooMany { retry_after_secs }) => {
                write!(f, "429 injected (Retry-After: {retry_after_secs})")
            }
            Answer::Injected(Fault::Reset) => write!(f, "reset injected"),
            Answer::Down => write!(f, "503 down"),
            Answer::BadGateway(why) => write!(f, "502 ({why})"),
        }?;
        write!(f, "  {}", self.info.path)?;
        match &self.info.query {
            Some(query) if query.chars().count() > 60 => {
                write!(f, "?{}…", query.chars().take(60).collect::<String>())
            }
            Some(query) => write!(f, "?{query}"),
            None => Ok(()),
        }
    }
}

/// Counts since the proxy started (or since [`FaultProxy::reset_stats`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests the registry answered.
    pub forwarded: usize,
    /// Injected statuses by code ([`Fault::TooMany`] counts under 429).
    pub injected_status: BTreeMap<u16, usize>,
    /// Injected [`Fault::Reset`]s.
    pub injected_resets: usize,
    /// Requests answered 503 while the proxy was down.
    pub down: usize,
    /// Requests answered 502 because the registry could not be reached.
    pub bad_gateway: usize,
    /// Requests received, by [`RequestInfo::kind`].
    pub by_kind: BTreeMap<String, usize>,
    /// Every request and its answer, in order.
    pub log: Vec<Exchange>,
}

impl Stats {
    /// All injected faults (statuses and resets), not counting `down`.
    pub fn injected(&self) -> usize {
        self.injected_status.values().sum::<usize>() + self.injected_resets
    }

    /// The log, one [`Exchange`] a line, for assertion messages.
    pub fn log_text(&self) -> String {
        self.log.iter().map(|e| format!("{e}\n")).collect()
    }
}

type Policy = Arc<dyn Fn(&RequestInfo) -> Fault + Send + Sync>;
type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// A fault-injecting proxy on `127.0.0.1`, in front of a registry. Stops
/// when dropped.
pub struct FaultProxy {
    /// `127.0.0.1:PORT`: use it wherever the registry's address would go.
    pub addr: String,
    shared: Arc<Shared>,
    runtime: Option<tokio::runtime::Runtime>,
}

struct Shared {
    /// `host:port` of the registry.
    target: String,
    client: Client<HttpConnector, Incoming>,
    policy: RwLock<Policy>,
    down: Mutex<Down>,
    stats: Mutex<Stats>,
}

#[derive(Clone, Copy)]
enum Down {
    Up,
    Until(Instant),
    Indefinitely,
}

impl FaultProxy {
    /// Starts a proxy on a free port of 127.0.0.1 that forwards to `target`
    /// (`127.0.0.1:5000`); `policy` decides for each request whether to inject
    /// a fault. It accepts connections as soon as this returns.
    pub fn start(
        target: &str,
        policy: impl Fn(&RequestInfo) -> Fault + Send + Sync + 'static,
    ) -> FaultProxy {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("fault-proxy")
            .enable_all()
            .build()
            .expect("a tokio runtime for the fault proxy");
        // Bound before this returns, so a client started right after never
        // finds the port closed.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener
            .local_addr()
            .expect("the proxy's address")
            .to_string();
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");

        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        let shared = Arc::new(Shared {
            target: target.to_string(),
            client,
            policy: RwLock::new(Arc::new(policy)),
            down: Mutex::new(Down::Up),
            stats: Mutex::new(Stats::default()),
        });

        let accepting = shared.clone();
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        tokio::spawn(serve(stream, accepting.clone()));
                    }
                    // Out of file descriptors and the like: try again soon.
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
        });
        FaultProxy {
            addr,
            shared,
            runtime: Some(runtime),
        }
    }

    /// A proxy that forwards everything (until [`FaultProxy::set_policy`]).
    pub fn passthrough(target: &str) -> FaultProxy {
        FaultProxy::start(target, |_| Fault::None)
    }

    /// A policy: the n-th, 2n-th, 3n-th… request of each kind gets `fault`,
    /// the others are forwarded.
    pub fn every_nth(n: usize, fault: Fault) -> impl Fn(&RequestInfo) -> Fault + Send + Sync {
        assert!(n > 0, "every_nth(0) would never fire");
        move |info| match info.nth % n {
            0 => fault.clone(),
            _ => Fault::None,
        }
    }

    /// Replaces the policy for the requests that arrive from now on (the
    /// per-kind counts go on; see [`FaultProxy::reset_stats`]).
    pub fn set_policy(&self, policy: impl Fn(&RequestInfo) -> Fault + Send + Sync + 'static) {
        *self.shared.policy.write().unwrap() = Arc::new(policy);
    }

    /// Answers every request with 503 until `until`, then forwards again
    /// (requests still reach the policy's counts, not the policy).
    pub fn down(&self, until: Instant) {
        *self.shared.down.lock().unwrap() = Down::Until(until);
    }

    /// Answers every request with 503 (`true`) until set back (`false`).
    pub fn set_down(&self, down: bool) {
        *self.shared.down.lock().unwrap() = match down {
            true => Down::Indefinitely,
            false => Down::Up,
        };
    }

    /// A snapshot of the counts and the log.
    pub fn stats(&self) -> Stats {
        self.shared.stats.lock().unwrap().clone()
    }

    /// Clears the counts and the log, so the next request of each kind is
    /// its kind's 1st again.
    pub fn reset_stats(&self) {
        *self.shared.stats.lock().unwrap() = Stats::default();
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // Waiting for the runtime's threads closes the port before this
        // returns, so a client that comes after finds it refused; inside an
        // async test blocking would panic, so there it only starts closing.
        if let Some(runtime) = self.runtime.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(_) => runtime.shutdown_background(),
                Err(_) => runtime.shutdown_timeout(Duration::from_secs(5)),
            }
        }
    }
}

/// The error that makes hyper drop a connection without answering.
#[derive(Debug)]
struct ResetConnection;

impl fmt::Display for ResetConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection reset by the fault proxy")
    }
}

impl std::error::Error for ResetConnection {}

async fn serve(stream: TcpStream, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let reset = Arc::new(AtomicBool::new(false));
    let io = TokioIo::new(Resettable {
        stream,
        reset: reset.clone(),
    });
    let service =
        hyper::service::service_fn(move |request| handle(shared.clone(), reset.clone(), request));
    // No header-read timeout: an idle keep-alive connection stays open for
    // as long as the client keeps it, as the registry's does.
    let _ = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .header_read_timeout(None)
        .serve_connection(io, service)
        .await;
}

async fn handle(
    shared: Arc<Shared>,
    reset: Arc<AtomicBool>,
    request: Request<Incoming>,
) -> Result<Response<ProxyBody>, ResetConnection> {
    let info = shared.admit(&request);
    if shared.is_down() {
        drain(request).await;
        shared.record(info, Answer::Down);
        return Ok(error_response(503, None));
    }
    let policy = shared.policy.read().unwrap().clone();
    let fault = policy(&info);
    match fault {
        Fault::None => Ok(shared.forward(info, request).await),
        Fault::Status(status) => {
            drain(request).await;
            shared.record(info, Answer::Injected(fault));
            Ok(error_response(status, None))
        }
        Fault::TooMany { retry_after_secs } => {
            drain(request).await;
            shared.record(info, Answer::Injected(fault));
            Ok(error_response(429, Some(retry_after_secs)))
        }
        Fault::Reset => {
            shared.record(info, Answer::Injected(fault));
            reset.store(true, Ordering::SeqCst);
            Err(ResetConnection)
        }
    }
}

impl Shared {
    /// Counts the request under its kind and describes it.
    fn admit(&self, request: &Request<Incoming>) -> RequestInfo {
        let method = request.method().as_str().to_string();
        let path = request.uri().path().to_string();
        let kind = kind_of(&method, &path);
        let mut stats = self.stats.lock().unwrap();
        let nth = stats.by_kind.entry(kind.clone()).or_default();
        *nth += 1;
        RequestInfo {
            method,
            query: request.uri().query().map(str::to_string),
            path,
            kind,
            nth: *nth,
        }
    }

    fn is_down(&self) -> bool {
        let mut down = self.down.lock().unwrap();
        match *down {
            Down::Up => false,
            Down::Indefinitely => true,
            Down::Until(until) if Instant::now() < until => true,
            Down::Until(_) => {
                *down = Down::Up;
                false
            }
        }
    }

    fn record(&self, info: RequestInfo, answer: Answer) {
        let mut stats = self.stats.lock().unwrap();
        match &answer {
            Answer::Forwarded(_) => stats.forwarded += 1,
            Answer::Injected(Fault::None) => {}
            Answer::Injected(Fault::Status(status)) => {
                *stats.injected_status.entry(*status).or_default() += 1
            }
            Answer::Injected(Fault::TooMany { .. }) => {
                *stats.injected_status.entry(429).or_default() += 1
            }
            Answer::Injected(Fault::Reset) => stats.injected_resets += 1,
            Answer::Down => stats.down += 1,
            Answer::BadGateway(_) => stats.bad_gateway += 1,
        }
        stats.log.push(Exchange { info, answer });
    }

    /// Sends the request on to the registry, its body streaming, and streams
    /// the registry's answer back.
    async fn forward(&self, info: RequestInfo, request: Request<Incoming>) -> Response<ProxyBody> {
        let (mut parts, body) = request.into_parts();
        let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        parts.uri = match format!("http://{}{path_and_query}", self.target).parse() {
            Ok(uri) => uri,
            Err(e) => {
                self.record(info, Answer::BadGateway(e.to_string()));
                return error_response(502, None);
            }
        };
        parts.version = Version::HTTP_11;
        remove_hop_by_hop(&mut parts.headers);
        // hyper answers `Expect: 100-continue` itself when the body is
        // first read; passed on, it would make the registry answer it again.
        parts.headers.remove(header::EXPECT);
        // `Host` stays as the client sent it (hyper-util adds one only when
        // it is missing), so the registry's `Location`s name the proxy.
        match self.client.request(Request::from_parts(parts, body)).await {
            Ok(response) => {
                self.record(info, Answer::Forwarded(response.status().as_u16()));
                let (mut parts, body) = response.into_parts();
                remove_hop_by_hop(&mut parts.headers);
                Response::from_parts(parts, body.boxed())
            }
            Err(e) => {
                self.record(info, Answer::BadGateway(e.to_string()));
                error_response(502, None)
            }
        }
    }
}

/// The `kind` of a request: see [`RequestInfo::kind`].
fn kind_of(method: &str, path: &str) -> String {
    let segments: Vec<&str> = match path.strip_prefix("/v2/") {
        Some(rest) => rest.split('/').collect(),
        None => return format!("{method} {path}"),
    };
    // The repository name may have slashes; digests, tags and upload ids
    // never do, so the route is read from the end.
    let route = match segments.as_slice() {
        [_, .., "blobs", "uploads", ""] => "blobs/uploads/",
        [_, .., "blobs", "uploads", _] => "blobs/uploads/<id>",
        [_, .., "blobs", _] => "blobs/<digest>",
        [_, .., "manifests", reference] if reference.contains(':') => "manifests/<digest>",
        [_, .., "manifests", _] => "manifests/<tag>",
        [_, .., "tags", "list"] => "tags/list",
        [_, .., "referrers", _] => "referrers/<digest>",
        _ => return format!("{method} {path}"),
    };
    format!("{method} /v2/<repo>/{route}")
}

/// Reads and discards the request body, so that an injected answer reaches
/// a client that is still sending (a blob PATCH) as an HTTP answer.
async fn drain(request: Request<Incoming>) {
    let _ = request.into_body().collect().await;
}

/// An answer in the registry's error format
/// (<https://distribution.github.io/distribution/spec/api/#errors>): the
/// Docker engine parses the body of a 4xx, and its `code` decides the message
/// it shows (`toomanyrequests: …`) and whether it retries.
fn error_response(status: u16, retry_after_secs: Option<u64>) -> Response<ProxyBody> {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let code = match status.as_u16() {
        401 => "UNAUTHORIZED",
        403 => "DENIED",
        429 => "TOOMANYREQUESTS",
        503 => "UNAVAILABLE",
        _ => "UNKNOWN",
    };
    let body = format!(
        r#"{{"errors":[{{"code":"{code}","message":"{} (injected by the test proxy)"}}]}}"#,
        status.canonical_reason().unwrap_or("error").to_lowercase()
    );
    let mut response = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never: Infallible| match never {})
            .boxed(),
    );
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    if let Some(secs) = retry_after_secs {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// Drops the headers that describe one connection rather than the message
/// (RFC 9110 §7.6.1). `Transfer-Encoding` and `Content-Length` stay: hyper
/// frames the body by them on the other side.
fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .collect();
    for name in named {
        headers.remove(name.as_str());
    }
    for name in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
    ] {
        headers.remove(name);
    }
}

/// The client's socket, which is reset (`SO_LINGER` 0, so closing sends a
/// RST rather than a FIN) when a [`Fault::Reset`] drops its connection.
struct Resettable {
    stream: TcpStream,
    reset: Arc<AtomicBool>,
}

impl Drop for Resettable {
    fn drop(&mut self) {
        if self.reset.load(Ordering::SeqCst) {
            let _ = self.stream.set_zero_linger();
        }
    }
}

impl AsyncRead for Resettable {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Resettable {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
