//! The OCI distribution API, just the part this tool needs: does a tag
//! exist and at which digest (`HEAD`), fetch a manifest with its exact media
//! type (`GET`), and put it under another tag (`PUT`). Adding a tag this way
//! moves no layer: the registry already has every blob the manifest names.
//!
//! Written on reqwest rather than `oci-client` because re-tagging must send
//! back the manifest's own `Content-Type` byte for byte, and oci-client's raw
//! pull does not return it. Auth: HTTP basic (ECR, distribution with
//! htpasswd), upgraded to a bearer token when the registry challenges with
//! one (Docker Hub, GHCR), per <https://distribution.github.io/distribution/spec/auth/token/>.
//! Transient failures (5xx, 429, resets) are retried with exponential backoff.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use backon::{ExponentialBuilder, Retryable};
use bytes::Bytes;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};
use sha2::{Digest, Sha256};

use crate::auth::Auth;

/// Every manifest media type we accept and re-tag unchanged.
pub const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json";

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{method} {url}: the registry refused the credentials (HTTP {status})")]
    Unauthorized {
        method: Method,
        url: String,
        status: u16,
    },
    #[error("{method} {url}: HTTP {status}: {body}")]
    Status {
        method: Method,
        url: String,
        status: u16,
        body: String,
    },
    #[error("{method} {url}: {message}")]
    Transport {
        method: Method,
        url: String,
        message: String,
    },
    #[error("{url}: the registry sent no Docker-Content-Digest header")]
    NoDigest { url: String },
}

impl RegistryError {
    /// 5xx, 429 and connection failures are worth another try.
    pub fn is_transient(&self) -> bool {
        match self {
            RegistryError::Status { status, .. } => *status >= 500 || *status == 429,
            RegistryError::Transport { .. } => true,
            _ => false,
        }
    }
}

/// A manifest as the registry holds it.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub bytes: Bytes,
    pub media_type: String,
    pub digest: String,
}

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
    async fn manifest(&self, repository: &str, reference: &str) -> Result<Manifest, RegistryError>;
    /// Puts `manifest` under `tag`; returns the digest the registry reports.
    async fn put_manifest(
        &self,
        repository: &str,
        tag: &str,
        manifest: &Manifest,
    ) -> Result<String, RegistryError>;
}

/// A registry spoken to over HTTP(S).
pub struct HttpRegistry {
    base: String,
    client: reqwest::Client,
    auth: Arc<Auth>,
    /// Bearer tokens by scope, when the registry uses token auth.
    tokens: Mutex<HashMap<String, String>>,
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

impl HttpRegistry {
    pub fn new(host: &str, auth: Arc<Auth>) -> HttpRegistry {
        let scheme = if is_loopback(host) { "http" } else { "https" };
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .user_agent(concat!("pipeline/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a TLS backend is compiled in");
        HttpRegistry {
            base: format!("{scheme}://{host}"),
            client,
            auth,
            tokens: Mutex::new(HashMap::new()),
        }
    }

    fn url(&self, repository: &str, reference: &str) -> String {
        format!("{}/v2/{repository}/manifests/{reference}", self.base)
    }

    /// One request with auth, bearer upgrade and the once-per-run credential
    /// refresh; transient failures are retried by the caller.
    async fn send_once(
        &self,
        method: Method,
        url: &str,
        scope: &str,
        headers: HeaderMap,
        body: Option<Bytes>,
    ) -> Result<reqwest::Response, RegistryError> {
        let mut upgraded = false;
        loop {
            let mut req = self
                .client
                .request(method.clone(), url)
                .headers(headers.clone());
            if let Some(body) = &body {
                req = req.body(body.clone());
            }
            let token = self.tokens.lock().expect("token lock").get(scope).cloned();
            if let Some(token) = token {
                req = req.bearer_auth(token);
            } else if let Some(c) = self.auth.credentials() {
                req = req.basic_auth(&c.username, Some(c.password.expose()));
            }
            let resp = req.send().await.map_err(|e| RegistryError::Transport {
                method: method.clone(),
                url: url.to_string(),
                message: error_chain(&e),
            })?;
            if resp.status() != StatusCode::UNAUTHORIZED {
                return Ok(resp);
            }
            let challenge = resp
                .headers()
                .get(WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            if !upgraded && challenge.to_ascii_lowercase().starts_with("bearer ") {
                upgraded = true;
                if let Some(token) = self.fetch_token(&challenge, scope).await? {
                    self.tokens
                        .lock()
                        .expect("token lock")
                        .insert(scope.to_string(), token);
                    continue;
                }
            }
            if self.auth.refresh_once().await {
                self.tokens.lock().expect("token lock").clear();
                upgraded = false;
                continue;
            }
            return Err(RegistryError::Unauthorized {
                method,
                url: url.to_string(),
                status: 401,
            });
        }
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        scope: &str,
        headers: HeaderMap,
        body: Option<Bytes>,
    ) -> Result<reqwest::Response, RegistryError> {
        let attempt = || async {
            let resp = self
                .send_once(method.clone(), url, scope, headers.clone(), body.clone())
                .await?;
            let status = resp.status();
            if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                return Err(status_error(&method, url, resp).await);
            }
            Ok(resp)
        };
        attempt
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(200))
                    .with_max_delay(Duration::from_secs(5))
                    .with_max_times(4),
            )
            .when(RegistryError::is_transient)
            .await
    }

    /// The token flow: GET the realm with service and scope, with basic
    /// credentials when we have them.
    async fn fetch_token(
        &self,
        challenge: &str,
        scope: &str,
    ) -> Result<Option<String>, RegistryError> {
        let params = parse_challenge(challenge);
        let Some(realm) = params.get("realm") else {
            return Ok(None);
        };
        let mut query: Vec<(&str, &str)> = vec![("scope", scope)];
        if let Some(service) = params.get("service") {
            query.push(("service", service));
        }
        let mut req = self.client.get(realm).query(&query);
        if let Some(c) = self.auth.credentials() {
            req = req.basic_auth(&c.username, Some(c.password.expose()));
        }
        let resp = req.send().await.map_err(|e| RegistryError::Transport {
            method: Method::GET,
            url: realm.clone(),
            message: error_chain(&e),
        })?;
        if !resp.status().is_success() {
            return Ok(None);
        }
        let doc: serde_json::Value = resp.json().await.map_err(|e| RegistryError::Transport {
            method: Method::GET,
            url: realm.clone(),
            message: error_chain(&e),
        })?;
        Ok(doc
            .get("token")
            .or_else(|| doc.get("access_token"))
            .and_then(|t| t.as_str())
            .map(str::to_string))
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
    h.insert(ACCEPT, MANIFEST_TYPES.parse().expect("static header"));
    h
}

async fn status_error(method: &Method, url: &str, resp: reqwest::Response) -> RegistryError {
    let status = resp.status().as_u16();
    let mut body = resp.text().await.unwrap_or_default();
    body.truncate(500);
    RegistryError::Status {
        method: method.clone(),
        url: url.to_string(),
        status,
        body: body.trim().to_string(),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}

fn parse_challenge(header: &str) -> HashMap<String, String> {
    let rest = header.split_once(' ').map(|(_, r)| r).unwrap_or("");
    let mut out = HashMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        let key: String = chars
            .by_ref()
            .take_while(|c| *c != '=')
            .collect::<String>()
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_string();
        if key.is_empty() {
            break;
        }
        let value: String = if chars.peek() == Some(&'"') {
            chars.next();
            let v = chars.by_ref().take_while(|c| *c != '"').collect();
            while chars.peek().is_some_and(|c| *c != ',') {
                chars.next();
            }
            chars.next();
            v
        } else {
            chars.by_ref().take_while(|c| *c != ',').collect()
        };
        out.insert(key.to_ascii_lowercase(), value);
    }
    out
}

#[async_trait]
impl Registry for HttpRegistry {
    async fn ping(&self) -> Result<(), RegistryError> {
        let url = format!("{}/v2/", self.base);
        // Logged in as this run will be: a wrong or missing login shows
        // here, before anything is built, not as a failed push later.
        let resp = self
            .send(
                Method::GET,
                &url,
                "registry:catalog:*",
                HeaderMap::new(),
                None,
            )
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
            .send(
                Method::HEAD,
                &url,
                &scope(repository, false),
                accept(),
                None,
            )
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => resp
                .headers()
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok())
                .map(|d| Some(d.to_string()))
                .ok_or(RegistryError::NoDigest { url }),
            _ => Err(status_error(&Method::HEAD, &url, resp).await),
        }
    }

    async fn manifest(&self, repository: &str, reference: &str) -> Result<Manifest, RegistryError> {
        let url = self.url(repository, reference);
        let resp = self
            .send(Method::GET, &url, &scope(repository, false), accept(), None)
            .await?;
        if !resp.status().is_success() {
            return Err(status_error(&Method::GET, &url, resp).await);
        }
        let media_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let bytes = resp.bytes().await.map_err(|e| RegistryError::Transport {
            method: Method::GET,
            url: url.clone(),
            message: error_chain(&e),
        })?;
        // The digest of the bytes themselves: that is what a PUT of these
        // bytes under another tag will point to.
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
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
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            manifest
                .media_type
                .parse()
                .map_err(|_| RegistryError::Status {
                    method: Method::PUT,
                    url: url.clone(),
                    status: 0,
                    body: format!("unusable media type `{}`", manifest.media_type),
                })?,
        );
        let resp = self
            .send(
                Method::PUT,
                &url,
                &scope(repository, true),
                headers,
                Some(manifest.bytes.clone()),
            )
            .await?;
        if !resp.status().is_success() {
            return Err(status_error(&Method::PUT, &url, resp).await);
        }
        Ok(resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
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

    #[test]
    fn bearer_challenge() {
        let p = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull""#,
        );
        assert_eq!(p["realm"], "https://auth.docker.io/token");
        assert_eq!(p["service"], "registry.docker.io");
        assert_eq!(p["scope"], "repository:a/b:pull");
    }

    #[test]
    fn transient_errors() {
        let status = |s| RegistryError::Status {
            method: Method::GET,
            url: "u".into(),
            status: s,
            body: String::new(),
        };
        assert!(status(503).is_transient());
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
    }
}
