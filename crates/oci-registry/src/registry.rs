//! The OCI distribution API, just the part a build-and-push tool needs:
//! does a tag exist and at which digest (`HEAD`), fetch a manifest with its
//! exact media type (`GET`), and put it under another tag (`PUT`). Adding a
//! tag this way moves no layer: the registry already has every blob the
//! manifest names.
//!
//! Every request goes through one path: basic credentials (or none), upgraded
//! to a bearer token when the registry challenges with one; a refusal asks
//! [`Auth`] for its one, shared refresh; 5xx, 429 and broken connections are
//! retried under the registry's [`RetryPolicy`], honouring `Retry-After`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use reqwest::header::{
    ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE,
};
use reqwest::{Method, StatusCode};
use sha2::{Digest, Sha256};

use crate::auth::{Auth, RefreshError, Snapshot};
use crate::retry::{self, RetryError, RetryObserver, RetryPolicy, Retrying, Transient};
use crate::secret::Secret;
use crate::token::{self, TokenCache};

/// Every manifest media type we accept and re-tag unchanged: OCI and
/// Docker, images and indexes (multi-platform lists).
pub const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// How far an error response's body is quoted in an error.
const BODY_LIMIT: usize = 500;

/// How a request failed before any response came.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportKind {
    /// The connection or the whole request took too long.
    Timeout,
    /// Nothing listens there (yet): connection refused.
    Refused,
    /// The connection broke: reset, aborted, or closed before the response.
    Reset,
    /// Anything else: a name that does not resolve, a TLS failure, an
    /// unreadable body. Not retried: waiting does not fix these.
    Other,
}

impl TransportKind {
    pub fn is_transient(self) -> bool {
        self != TransportKind::Other
    }
}

/// What went wrong talking to the registry. Messages name the method and
/// URL; none ever holds a credential or token.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry refused the credentials (or asked for some and there
    /// were none), and no refresh could help.
    #[error("{method} {url}: the registry refused the credentials (HTTP {status})")]
    Unauthorized {
        method: Method,
        url: String,
        status: u16,
    },
    /// The registry refused the credentials and fetching new ones failed.
    #[error("{method} {url}: the registry refused the credentials, and {source}")]
    Refresh {
        method: Method,
        url: String,
        #[source]
        source: RefreshError,
    },
    /// The registry answered with an unexpected status.
    #[error("{method} {url}: HTTP {status}{}", quoted(.body))]
    Status {
        method: Method,
        url: String,
        status: u16,
        /// The start of the response body (the registry's error JSON).
        body: String,
        /// The delay a 429 or 503 asked for in `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// No response: the connection failed or timed out.
    #[error("{method} {url}: {message}")]
    Transport {
        method: Method,
        url: String,
        kind: TransportKind,
        message: String,
    },
    /// The registry answered in a way the protocol does not allow.
    #[error("{method} {url}: {message}")]
    Protocol {
        method: Method,
        url: String,
        message: String,
    },
    #[error("{url}: the registry sent no Docker-Content-Digest header")]
    NoDigest { url: String },
    /// The manifest's bytes do not hash to the digest they were asked for
    /// by (or that the registry announced).
    #[error("{url}: the manifest's bytes hash to {actual}, not to {expected}")]
    DigestMismatch {
        url: String,
        expected: String,
        actual: String,
    },
    /// A manifest whose media type cannot be sent as a `Content-Type`.
    #[error("{url}: unusable manifest media type `{media_type}`")]
    MediaType { url: String, media_type: String },
    /// A transient error that outlasted the retry policy.
    #[error("{last} ({})", retry::gave_up(*.attempts, *.elapsed))]
    GaveUp {
        last: Box<RegistryError>,
        attempts: u32,
        elapsed: Duration,
    },
}

impl RegistryError {
    /// Whether the error is worth another try, and how long the registry
    /// asked to wait: 5xx and 429 (with their `Retry-After`), connections
    /// refused or reset, timeouts. An error that already outlasted the
    /// retries ([`RegistryError::GaveUp`]) is not.
    pub fn transient(&self) -> Option<Transient> {
        match self {
            RegistryError::Status {
                status,
                retry_after,
                ..
            } if *status >= 500 || *status == 429 => Some(Transient {
                retry_after: *retry_after,
            }),
            RegistryError::Transport { kind, .. } if kind.is_transient() => {
                Some(Transient::default())
            }
            _ => None,
        }
    }

    pub fn is_transient(&self) -> bool {
        self.transient().is_some()
    }

    /// The HTTP status the registry answered with, also through
    /// [`RegistryError::GaveUp`].
    pub fn status(&self) -> Option<u16> {
        match self {
            RegistryError::Unauthorized { status, .. } | RegistryError::Status { status, .. } => {
                Some(*status)
            }
            RegistryError::GaveUp { last, .. } => last.status(),
            _ => None,
        }
    }
}

impl From<RetryError<RegistryError>> for RegistryError {
    fn from(e: RetryError<RegistryError>) -> RegistryError {
        if e.exhausted {
            RegistryError::GaveUp {
                last: Box::new(e.error),
                attempts: e.attempts,
                elapsed: e.elapsed,
            }
        } else {
            e.error
        }
    }
}

/// A manifest as the registry holds it: its exact bytes and media type,
/// and the sha256 digest of those bytes.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub bytes: Bytes,
    pub media_type: String,
    pub digest: String,
}

/// The registry operations a build-and-push tool needs; a trait so tests of
/// its callers can use a small fake.
#[async_trait]
pub trait Registry: Send + Sync {
    /// Whether the registry answers `/v2/` and accepts our login.
    async fn ping(&self) -> Result<(), RegistryError>;
    /// The digest `reference` (a tag or digest) resolves to, or `None` when
    /// the repository or tag does not exist.
    async fn digest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<String>, RegistryError>;
    /// The manifest `reference` resolves to, byte for byte.
    async fn manifest(&self, repository: &str, reference: &str) -> Result<Manifest, RegistryError>;
    /// Puts `manifest` under `tag`; returns the digest the registry reports.
    async fn put_manifest(
        &self,
        repository: &str,
        tag: &str,
        manifest: &Manifest,
    ) -> Result<String, RegistryError>;
}

/// Loopback registries are spoken to over plain HTTP, any other over HTTPS,
/// as the Docker engine does by default.
pub fn is_loopback(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A registry spoken to over HTTP(S).
pub struct HttpRegistry {
    base: String,
    client: reqwest::Client,
    auth: Arc<Auth>,
    tokens: TokenCache,
    policy: RetryPolicy,
    observer: Option<RetryObserver>,
}

/// One request, as sent again on a retry.
struct Request<'a> {
    method: Method,
    url: &'a str,
    /// The token scope it needs, when the registry uses token auth.
    scope: &'a str,
    headers: HeaderMap,
    body: Option<Bytes>,
}

fn client(user_agent: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(120))
        .user_agent(user_agent)
        .build()
        .expect("a TLS backend is compiled in")
}

impl HttpRegistry {
    /// A client for the registry at `host` (`host[:port]`), over HTTP when
    /// the host is loopback and HTTPS otherwise, with the default
    /// [`RetryPolicy`].
    ///
    /// # Panics
    ///
    /// When the TLS backend cannot be initialised, as `reqwest::Client::new`.
    pub fn new(host: &str, auth: Arc<Auth>) -> HttpRegistry {
        let scheme = if is_loopback(host) { "http" } else { "https" };
        HttpRegistry {
            base: format!("{scheme}://{host}"),
            client: client(concat!("oci-registry/", env!("CARGO_PKG_VERSION"))),
            auth,
            tokens: TokenCache::default(),
            policy: RetryPolicy::default(),
            observer: None,
        }
    }

    /// Retries transient failures under `policy`.
    pub fn with_retry(mut self, policy: RetryPolicy) -> HttpRegistry {
        self.policy = policy;
        self
    }

    /// Tells `observer` about each retry, before waiting.
    pub fn on_retry(mut self, observer: RetryObserver) -> HttpRegistry {
        self.observer = Some(observer);
        self
    }

    /// Sends `user_agent` (default `oci-registry/<version>`).
    pub fn with_user_agent(mut self, user_agent: &str) -> HttpRegistry {
        self.client = client(user_agent);
        self
    }

    /// `http://host` or `https://host`.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.policy
    }

    fn url(&self, repository: &str, reference: &str) -> String {
        format!("{}/v2/{repository}/manifests/{reference}", self.base)
    }

    /// `req` with retries: transient failures (see
    /// [`RegistryError::transient`]) are sent again under the policy.
    async fn send(&self, req: Request<'_>) -> Result<reqwest::Response, RegistryError> {
        let attempt = || async {
            let resp = self.send_once(&req).await?;
            let status = resp.status();
            if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                return Err(status_error(&req.method, req.url, resp).await);
            }
            Ok(resp)
        };
        let observer: Option<&(dyn Fn(&Retrying<'_>) + Send + Sync)> = self.observer.as_deref();
        Ok(retry::retry(&self.policy, observer, RegistryError::transient, attempt).await?)
    }

    /// One attempt at `req`, with auth: basic credentials or a cached token;
    /// on a 401, a token fetched for a `Bearer` challenge, then the shared
    /// credential refresh. Neither can loop: a token is fetched once per
    /// generation of credentials, and there are at most two generations.
    async fn send_once(&self, req: &Request<'_>) -> Result<reqwest::Response, RegistryError> {
        let mut seen = self.auth.snapshot();
        let mut fetched_token = false;
        loop {
            let mut builder = self
                .client
                .request(req.method.clone(), req.url)
                .headers(req.headers.clone());
            if let Some(body) = &req.body {
                builder = builder.body(body.clone());
            }
            if let Some(token) = self.tokens.get(req.scope, seen.generation()) {
                builder = builder.bearer_auth(token.expose());
            } else if let Some(c) = seen.credentials() {
                builder = builder.basic_auth(&c.username, Some(c.password.expose()));
            }
            let resp = builder
                .send()
                .await
                .map_err(|e| transport(&req.method, req.url, &e))?;
            if resp.status() != StatusCode::UNAUTHORIZED {
                return Ok(resp);
            }
            let challenge = token::bearer_challenge(
                resp.headers()
                    .get_all(WWW_AUTHENTICATE)
                    .iter()
                    .filter_map(|v| v.to_str().ok()),
            );
            if let (false, Some(challenge)) = (fetched_token, challenge) {
                fetched_token = true;
                let realm = challenge.get("realm").map(String::as_str);
                let service = challenge.get("service").map(String::as_str);
                if let Some(realm) = realm
                    && let Some(token) = self.fetch_token(realm, service, req.scope, &seen).await?
                {
                    self.tokens.insert(req.scope, seen.generation(), token);
                    continue;
                }
            }
            match self.auth.refresh(&seen).await {
                Ok(true) => {
                    seen = self.auth.snapshot();
                    fetched_token = false;
                }
                Ok(false) => {
                    return Err(RegistryError::Unauthorized {
                        method: req.method.clone(),
                        url: req.url.to_string(),
                        status: StatusCode::UNAUTHORIZED.as_u16(),
                    });
                }
                Err(source) => {
                    return Err(RegistryError::Refresh {
                        method: req.method.clone(),
                        url: req.url.to_string(),
                        source,
                    });
                }
            }
        }
    }

    /// The token flow: `GET realm?scope=…&service=…`, with the basic
    /// credentials of `seen` when there are some. `None` when the token
    /// server refuses them (a refresh may help).
    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &str,
        seen: &Snapshot,
    ) -> Result<Option<Secret>, RegistryError> {
        let mut query = vec![("scope", scope)];
        if let Some(service) = service {
            query.push(("service", service));
        }
        let mut req = self.client.get(realm).query(&query);
        // The realm comes from the registry's answer: a password goes there
        // only over TLS, or to this machine.
        let safe = realm.starts_with("https://")
            || reqwest::Url::parse(realm)
                .ok()
                .and_then(|u| u.host_str().map(is_loopback))
                .unwrap_or(false);
        if let (true, Some(c)) = (safe, seen.credentials()) {
            req = req.basic_auth(&c.username, Some(c.password.expose()));
        }
        let resp = req
            .send()
            .await
            .map_err(|e| transport(&Method::GET, realm, &e))?;
        match resp.status() {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => return Ok(None),
            s if !s.is_success() => return Err(status_error(&Method::GET, realm, resp).await),
            _ => {}
        }
        let protocol = |message: String| RegistryError::Protocol {
            method: Method::GET,
            url: realm.to_string(),
            message,
        };
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| transport(&Method::GET, realm, &e))?;
        // Parse errors name a line and column, never the text (a token).
        let doc: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| protocol(format!("the token server's answer is not JSON: {e}")))?;
        doc.get("token")
            .or_else(|| doc.get("access_token"))
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
            .map(|t| Some(Secret::new(t)))
            .ok_or_else(|| protocol("the token server's answer holds no `token`".into()))
    }
}

fn scope(repository: &str, push: bool) -> String {
    format!(
        "repository:{repository}:{}",
        if push { "pull,push" } else { "pull" }
    )
}

fn accept() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(ACCEPT, HeaderValue::from_static(MANIFEST_TYPES));
    h
}

fn header<'a>(resp: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The error for an unexpected status, quoting the start of the body, with
/// the `Retry-After` of a 429 or 503.
async fn status_error(method: &Method, url: &str, resp: reqwest::Response) -> RegistryError {
    let status = resp.status();
    let retry_after = match status {
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(retry::parse_retry_after),
        _ => None,
    };
    let body = resp.text().await.unwrap_or_default();
    RegistryError::Status {
        method: method.clone(),
        url: url.to_string(),
        status: status.as_u16(),
        body: truncate(body.trim(), BODY_LIMIT).to_string(),
        retry_after,
    }
}

/// `: body`, or nothing for an empty body.
fn quoted(body: &str) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!(": {body}")
    }
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn transport(method: &Method, url: &str, e: &reqwest::Error) -> RegistryError {
    RegistryError::Transport {
        method: method.clone(),
        url: url.to_string(),
        kind: transport_kind(e),
        message: error_chain(e),
    }
}

/// Which failures are worth retrying: timeouts, refused connections (a
/// registry restarting), and connections that broke, including hyper's
/// "connection closed before message completed", which is a kept-alive
/// connection the server closed just as we reused it.
fn transport_kind(e: &reqwest::Error) -> TransportKind {
    if e.is_timeout() {
        return TransportKind::Timeout;
    }
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            match io.kind() {
                TimedOut => return TransportKind::Timeout,
                ConnectionRefused => return TransportKind::Refused,
                ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof => {
                    return TransportKind::Reset;
                }
                _ => {}
            }
        }
        if let Some(h) = err.downcast_ref::<hyper::Error>() {
            if h.is_timeout() {
                return TransportKind::Timeout;
            }
            if h.is_incomplete_message() || h.is_closed() || h.is_canceled() {
                return TransportKind::Reset;
            }
        }
        cur = err.source();
    }
    TransportKind::Other
}

/// `e: its source: its source's source`, as reqwest's own message is
/// often just "error sending request".
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        let text = inner.to_string();
        if !s.ends_with(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cur = inner.source();
    }
    s
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

#[async_trait]
impl Registry for HttpRegistry {
    async fn ping(&self) -> Result<(), RegistryError> {
        let url = format!("{}/v2/", self.base);
        // Logged in as the run will be: a wrong or missing login shows
        // here, before anything is built, not as a failed push later.
        let resp = self
            .send(Request {
                method: Method::GET,
                url: &url,
                scope: "registry:catalog:*",
                headers: HeaderMap::new(),
                body: None,
            })
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(()),
            _ => Err(status_error(&Method::GET, &url, resp).await),
        }
    }

    async fn digest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<String>, RegistryError> {
        let url = self.url(repository, reference);
        let resp = self
            .send(Request {
                method: Method::HEAD,
                url: &url,
                scope: &scope(repository, false),
                headers: accept(),
                body: None,
            })
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => header(&resp, "docker-content-digest")
                .map(|d| Some(d.to_string()))
                .ok_or(RegistryError::NoDigest { url }),
            _ => Err(status_error(&Method::HEAD, &url, resp).await),
        }
    }

    async fn manifest(&self, repository: &str, reference: &str) -> Result<Manifest, RegistryError> {
        let url = self.url(repository, reference);
        let resp = self
            .send(Request {
                method: Method::GET,
                url: &url,
                scope: &scope(repository, false),
                headers: accept(),
                body: None,
            })
            .await?;
        if !resp.status().is_success() {
            return Err(status_error(&Method::GET, &url, resp).await);
        }
        let content_type = header(&resp, CONTENT_TYPE.as_str()).map(str::to_string);
        let announced = header(&resp, "docker-content-digest").map(str::to_string);
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| transport(&Method::GET, &url, &e))?;
        // The digest of the bytes themselves: that is what a PUT of these
        // bytes under another tag will point to. Asked for by digest, or
        // announced by the registry, it must be that one.
        let digest = sha256(&bytes);
        let expected = [Some(reference), announced.as_deref()]
            .into_iter()
            .flatten()
            .find(|d| d.starts_with("sha256:") && *d != digest);
        if let Some(expected) = expected {
            return Err(RegistryError::DigestMismatch {
                url,
                expected: expected.to_string(),
                actual: digest,
            });
        }
        // A registry that sends no Content-Type: the manifest says its own
        // type (both OCI and Docker v2 manifests carry `mediaType`).
        let media_type = content_type
            .or_else(|| {
                serde_json::from_slice::<serde_json::Value>(&bytes)
                    .ok()?
                    .get("mediaType")?
                    .as_str()
                    .map(str::to_string)
            })
            .unwrap_or_default();
        Ok(Manifest {
            bytes,
            media_type,
            digest,
        })
    }

    async fn put_manifest(
        &self,
        repository: &str,
        tag: &str,
        manifest: &Manifest,
    ) -> Result<String, RegistryError> {
        let url = self.url(repository, tag);
        let content_type = HeaderValue::from_str(&manifest.media_type)
            .ok()
            .filter(|_| !manifest.media_type.is_empty())
            .ok_or_else(|| RegistryError::MediaType {
                url: url.clone(),
                media_type: manifest.media_type.clone(),
            })?;
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, content_type);
        let resp = self
            .send(Request {
                method: Method::PUT,
                url: &url,
                scope: &scope(repository, true),
                headers,
                body: Some(manifest.bytes.clone()),
            })
            .await?;
        if !resp.status().is_success() {
            return Err(status_error(&Method::PUT, &url, resp).await);
        }
        Ok(header(&resp, "docker-content-digest")
            .map(str::to_string)
            .unwrap_or_else(|| manifest.digest.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for h in [
            "127.0.0.1:5000",
            "localhost",
            "localhost:5000",
            "[::1]:5000",
            "127.1.2.3",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in [
            "123456789012.dkr.ecr.us-east-1.amazonaws.com",
            "10.0.0.1:5000",
            "ghcr.io",
        ] {
            assert!(!is_loopback(h), "{h}");
        }
    }

    fn status(s: u16) -> RegistryError {
        RegistryError::Status {
            method: Method::GET,
            url: "u".into(),
            status: s,
            body: String::new(),
            retry_after: None,
        }
    }

    #[test]
    fn transient_errors() {
        assert!(status(503).is_transient());
        assert!(status(500).is_transient());
        assert!(status(429).is_transient());
        assert!(!status(404).is_transient());
        assert!(
            !RegistryError::Unauthorized {
                method: Method::GET,
                url: "u".into(),
                status: 401
            }
            .is_transient()
        );
        let transport = |kind| RegistryError::Transport {
            method: Method::GET,
            url: "u".into(),
            kind,
            message: String::new(),
        };
        assert!(transport(TransportKind::Reset).is_transient());
        assert!(transport(TransportKind::Refused).is_transient());
        assert!(transport(TransportKind::Timeout).is_transient());
        assert!(!transport(TransportKind::Other).is_transient());
        let gave_up = RegistryError::GaveUp {
            last: Box::new(status(503)),
            attempts: 6,
            elapsed: Duration::from_secs(118),
        };
        assert!(!gave_up.is_transient(), "already retried");
        assert_eq!(gave_up.status(), Some(503));
        assert_eq!(
            gave_up.to_string(),
            "GET u: HTTP 503 (gave up after 6 attempts in 1m58s)"
        );
    }

    #[test]
    fn retry_after_is_kept() {
        let e = RegistryError::Status {
            method: Method::GET,
            url: "u".into(),
            status: 429,
            body: "slow down".into(),
            retry_after: Some(Duration::from_secs(3)),
        };
        assert_eq!(
            e.transient().unwrap().retry_after,
            Some(Duration::from_secs(3))
        );
        assert_eq!(e.to_string(), "GET u: HTTP 429: slow down");
    }

    #[test]
    fn bodies_are_cut_at_a_character_boundary() {
        let body = "é".repeat(300);
        let cut = truncate(&body, BODY_LIMIT);
        assert_eq!(cut.len(), BODY_LIMIT);
        assert_eq!(truncate(&body[..4], BODY_LIMIT).len(), 4);
        assert_eq!(truncate("aé", 2), "a");
    }
}
