//! The HTTP client against a local mock registry (wiremock): auth, the
//! shared refresh, retries, and manifests byte for byte. No real registry.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use oci_registry::{
    Auth, BoxError, Credentials, HttpRegistry, MANIFEST_TYPES, Manifest, Refresh, Registry,
    RegistryError, RetryPolicy, Retrying, TransportKind,
};
use sha2::{Digest, Sha256};
use wiremock::matchers::{
    basic_auth, bearer_token, body_bytes, header, header_exists, headers, method, path, query_param,
};
use wiremock::{Mock, MockServer, ResponseTemplate};

const DIGEST: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000001";
const MANIFEST_PATH: &str = "/v2/shop/a/manifests/latest";

/// Quick retries, so tests that exhaust them stay fast.
fn quick() -> RetryPolicy {
    RetryPolicy {
        retries: 3,
        window: Duration::from_secs(10),
        min_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    }
}

fn host(server: &MockServer) -> String {
    server.address().to_string()
}

fn registry(server: &MockServer, auth: Auth) -> HttpRegistry {
    HttpRegistry::new(&host(server), Arc::new(auth)).with_retry(quick())
}

fn login(password: &str) -> Option<Credentials> {
    Some(Credentials::new("AWS", password))
}

fn found() -> ResponseTemplate {
    ResponseTemplate::new(200).insert_header("docker-content-digest", DIGEST)
}

/// `Accept` with every type of [`MANIFEST_TYPES`], in order (wiremock
/// splits header values at commas).
fn accepts_every_manifest_type() -> wiremock::matchers::HeaderExactMatcher {
    headers("accept", MANIFEST_TYPES.split(", ").collect())
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A refresh source that counts its calls and takes a while, so requests
/// can pile up behind it.
struct Source {
    calls: Arc<AtomicUsize>,
    result: Result<&'static str, &'static str>,
}

#[async_trait]
impl Refresh for Source {
    async fn refresh(&self) -> Result<Credentials, BoxError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(200)).await;
        match self.result {
            Ok(password) => Ok(Credentials::new("AWS", password)),
            Err(cause) => Err(cause.into()),
        }
    }
}

fn refreshing(start: &str, result: Result<&'static str, &'static str>) -> (Auth, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let source = Source {
        calls: calls.clone(),
        result,
    };
    (Auth::new(login(start), Some(Box::new(source))), calls)
}

async fn requests(server: &MockServer) -> usize {
    server.received_requests().await.unwrap_or_default().len()
}

#[tokio::test]
async fn basic_auth_is_sent() {
    let server = MockServer::start().await;
    Mock::given(method("HEAD"))
        .and(path(MANIFEST_PATH))
        .and(basic_auth("AWS", "token"))
        .and(accepts_every_manifest_type())
        .respond_with(found())
        .expect(1)
        .mount(&server)
        .await;
    let r = registry(&server, Auth::new(login("token"), None));
    assert_eq!(
        r.digest("shop/a", "latest").await.unwrap().as_deref(),
        Some(DIGEST)
    );
}

#[tokio::test]
async fn a_missing_tag_is_none_and_ping_checks_the_login() {
    let server = MockServer::start().await;
    Mock::given(method("HEAD"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/"))
        .and(basic_auth("AWS", "token"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/"))
        .respond_with(ResponseTemplate::new(401).insert_header("www-authenticate", "Basic"))
        .with_priority(10)
        .mount(&server)
        .await;
    let r = registry(&server, Auth::new(login("token"), None));
    assert_eq!(r.digest("shop/a", "nope").await.unwrap(), None);
    r.ping().await.unwrap();

    let anonymous = registry(&server, Auth::new(None, None));
    let e = anonymous.ping().await.unwrap_err();
    assert!(matches!(e, RegistryError::Unauthorized { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!(
            "GET http://{}/v2/: the registry refused the credentials (HTTP 401)",
            host(&server)
        )
    );
}

/// A registry with token auth: the manifest answers a bearer `tok-<scope>`,
/// anything else gets a challenge to the token server at `/token`.
async fn token_registry(server: &MockServer) {
    let challenge = format!(
        r#"Bearer realm="{}/token",service="test-registry",scope="repository:shop/a:pull""#,
        server.uri()
    );
    for (scope, token) in [
        ("repository:shop/a:pull", "tok-pull"),
        ("repository:shop/a:pull,push", "tok-push"),
    ] {
        Mock::given(method("GET"))
            .and(path("/token"))
            .and(query_param("scope", scope))
            .and(query_param("service", "test-registry"))
            .and(basic_auth("u", "p"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(serde_json::json!({ "token": token })),
            )
            .mount(server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(401))
        .with_priority(10)
        .mount(server)
        .await;
    Mock::given(method("HEAD"))
        .and(path(MANIFEST_PATH))
        .and(bearer_token("tok-pull"))
        .respond_with(found())
        .with_priority(1)
        .mount(server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/v2/shop/a/manifests/v1"))
        .and(bearer_token("tok-push"))
        .respond_with(ResponseTemplate::new(201).insert_header("docker-content-digest", DIGEST))
        .with_priority(1)
        .mount(server)
        .await;
    Mock::given(path_starts_with_v2())
        .respond_with(ResponseTemplate::new(401).insert_header("www-authenticate", challenge))
        .with_priority(10)
        .mount(server)
        .await;
}

fn path_starts_with_v2() -> wiremock::matchers::PathRegexMatcher {
    wiremock::matchers::path_regex("^/v2/")
}

#[tokio::test]
async fn a_bearer_challenge_fetches_a_token_and_retries_with_it() {
    let server = MockServer::start().await;
    token_registry(&server).await;
    let r = registry(&server, Auth::new(Some(Credentials::new("u", "p")), None));
    assert_eq!(
        r.digest("shop/a", "latest").await.unwrap().as_deref(),
        Some(DIGEST)
    );
    let log = server.received_requests().await.unwrap();
    let kinds: Vec<String> = log
        .iter()
        .map(|r| format!("{} {}", r.method, r.url.path()))
        .collect();
    assert_eq!(
        kinds,
        [
            "HEAD /v2/shop/a/manifests/latest", // basic → 401 Bearer
            "GET /token",
            "HEAD /v2/shop/a/manifests/latest", // with the bearer
        ]
    );
    let retried = &log[2];
    assert_eq!(retried.headers["authorization"], "Bearer tok-pull");
}

#[tokio::test]
async fn tokens_are_cached_per_scope() {
    let server = MockServer::start().await;
    token_registry(&server).await;
    let r = registry(&server, Auth::new(Some(Credentials::new("u", "p")), None));
    r.digest("shop/a", "latest").await.unwrap();
    let before = requests(&server).await;
    r.digest("shop/a", "latest").await.unwrap();
    assert_eq!(
        requests(&server).await,
        before + 1,
        "the second request goes straight out with the cached token"
    );
    // Another scope (pull,push for a PUT) needs its own token, once.
    let manifest = Manifest {
        bytes: "{}".into(),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        digest: DIGEST.into(),
    };
    assert_eq!(
        r.put_manifest("shop/a", "v1", &manifest).await.unwrap(),
        DIGEST
    );
    r.put_manifest("shop/a", "v1", &manifest).await.unwrap();
    let scopes: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/token")
        .flat_map(|r| {
            r.url
                .query_pairs()
                .filter(|(k, _)| k == "scope")
                .map(|(_, v)| v.into_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(
        scopes,
        ["repository:shop/a:pull", "repository:shop/a:pull,push"],
        "one token per scope"
    );
}

#[tokio::test]
async fn a_token_server_refusing_the_login_is_unauthorized() {
    let server = MockServer::start().await;
    token_registry(&server).await;
    let r = registry(
        &server,
        Auth::new(Some(Credentials::new("u", "wrong")), None),
    );
    let e = r.digest("shop/a", "latest").await.unwrap_err();
    assert!(matches!(e, RegistryError::Unauthorized { .. }), "{e:?}");
    assert!(!e.to_string().contains("wrong"));
}

/// Old credentials get 401, `new` ones 200.
async fn rotating_registry(server: &MockServer, old_refusals: u64) {
    Mock::given(method("HEAD"))
        .and(basic_auth("AWS", "new"))
        .respond_with(found())
        .mount(server)
        .await;
    Mock::given(method("HEAD"))
        .and(basic_auth("AWS", "old"))
        .respond_with(ResponseTemplate::new(401).insert_header("www-authenticate", "Basic"))
        .expect(old_refusals)
        .named("refused old credentials")
        .mount(server)
        .await;
}

#[tokio::test]
async fn a_refusal_refreshes_once_then_succeeds() {
    let server = MockServer::start().await;
    rotating_registry(&server, 1).await;
    let (auth, calls) = refreshing("old", Ok("new"));
    let r = registry(&server, auth);
    assert_eq!(
        r.digest("shop/a", "latest").await.unwrap().as_deref(),
        Some(DIGEST)
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // Later requests use the new credentials straight away.
    r.digest("shop/a", "other").await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    server.verify().await;
}

#[tokio::test]
async fn concurrent_refusals_share_one_refresh() {
    let server = MockServer::start().await;
    rotating_registry(&server, 2).await;
    let (auth, calls) = refreshing("old", Ok("new"));
    let r = registry(&server, auth);
    let (a, b) = tokio::join!(r.digest("shop/a", "latest"), r.digest("shop/b", "latest"));
    assert_eq!(a.unwrap().as_deref(), Some(DIGEST));
    assert_eq!(b.unwrap().as_deref(), Some(DIGEST));
    assert_eq!(calls.load(Ordering::SeqCst), 1, "one refresh for both");
    // Both were refused with the old credentials, then retried with the new.
    server.verify().await;
}

#[tokio::test]
async fn refreshed_credentials_refused_again_fail_without_a_loop() {
    let server = MockServer::start().await;
    Mock::given(method("HEAD"))
        .respond_with(ResponseTemplate::new(401).insert_header("www-authenticate", "Basic"))
        .mount(&server)
        .await;
    let (auth, calls) = refreshing("old", Ok("still-refused"));
    let r = registry(&server, auth);
    let e = r.digest("shop/a", "latest").await.unwrap_err();
    assert!(matches!(e, RegistryError::Unauthorized { .. }), "{e:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(requests(&server).await, 2, "old, then refreshed, then stop");
    // The run's one refresh is spent: the next refusal fails at once.
    let e = r.digest("shop/a", "latest").await.unwrap_err();
    assert!(matches!(e, RegistryError::Unauthorized { .. }), "{e:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(!e.to_string().contains("still-refused"));
}

#[tokio::test]
async fn a_failing_refresh_is_reported_with_its_cause() {
    let server = MockServer::start().await;
    rotating_registry(&server, 2).await;
    let (auth, calls) = refreshing("old", Err("GetAuthorizationToken: ExpiredTokenException"));
    let r = registry(&server, auth);
    let (a, b) = tokio::join!(r.digest("shop/a", "latest"), r.digest("shop/b", "latest"));
    for e in [a.unwrap_err(), b.unwrap_err()] {
        assert!(matches!(e, RegistryError::Refresh { .. }), "{e:?}");
        let message = e.to_string();
        assert!(
            message.ends_with(
                "the registry refused the credentials, and refreshing the registry credentials failed: GetAuthorizationToken: ExpiredTokenException"
            ),
            "{message}"
        );
        assert!(!message.contains("old"), "{message}");
        let cause = std::error::Error::source(&e).unwrap();
        assert!(cause.to_string().contains("ExpiredTokenException"));
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_503_is_retried_and_the_observer_told() {
    let server = MockServer::start().await;
    Mock::given(method("HEAD"))
        .respond_with(ResponseTemplate::new(503).set_body_string("busy"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("HEAD"))
        .respond_with(found())
        .mount(&server)
        .await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let r = registry(&server, Auth::new(None, None)).on_retry(Arc::new(move |r: &Retrying<'_>| {
        log.lock().unwrap().push((r.attempt, r.cause.to_string()));
    }));
    assert_eq!(
        r.digest("shop/a", "latest").await.unwrap().as_deref(),
        Some(DIGEST)
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        [(
            1,
            format!("HEAD http://{}{MANIFEST_PATH}: HTTP 503", host(&server))
        )]
    );
    assert_eq!(requests(&server).await, 2);
}

#[tokio::test]
async fn a_429_with_retry_after_waits_that_long() {
    let server = MockServer::start().await;
    Mock::given(method("HEAD"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("HEAD"))
        .respond_with(found())
        .mount(&server)
        .await;
    let delays = Arc::new(Mutex::new(Vec::new()));
    let log = delays.clone();
    let r = registry(&server, Auth::new(None, None)).on_retry(Arc::new(move |r: &Retrying<'_>| {
        log.lock().unwrap().push(r.delay);
    }));
    let started = Instant::now();
    r.digest("shop/a", "latest").await.unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert_eq!(*delays.lock().unwrap(), [Duration::from_secs(1)]);
}

#[tokio::test]
async fn exhausted_retries_say_how_many_attempts() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(502).set_body_string("bad gateway"))
        .expect(4)
        .mount(&server)
        .await;
    let r = registry(&server, Auth::new(None, None));
    let e = r.manifest("shop/a", "latest").await.unwrap_err();
    let RegistryError::GaveUp { attempts, last, .. } = &e else {
        panic!("{e:?}");
    };
    assert_eq!(*attempts, 4, "the first attempt and 3 retries");
    assert_eq!(last.status(), Some(502));
    let message = e.to_string();
    assert!(
        message.starts_with(&format!(
            "GET http://{}{MANIFEST_PATH}: HTTP 502: bad gateway (gave up after 4 attempts in ",
            host(&server)
        )),
        "{message}"
    );
    server.verify().await;
}

#[tokio::test]
async fn the_window_is_respected() {
    let server = MockServer::start().await;
    Mock::given(method("HEAD"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let policy = RetryPolicy {
        retries: 100,
        window: Duration::from_millis(800),
        min_delay: Duration::from_millis(100),
        max_delay: Duration::from_millis(100),
    };
    let r = HttpRegistry::new(&host(&server), Arc::new(Auth::new(None, None))).with_retry(policy);
    let started = Instant::now();
    let e = r.digest("shop/a", "latest").await.unwrap_err();
    let took = started.elapsed();
    // The last attempt starts within the window; only its own time (and a
    // busy machine) goes past it.
    assert!(took < Duration::from_secs(2), "{took:?}");
    let RegistryError::GaveUp { attempts, .. } = e else {
        panic!("{e:?}");
    };
    // 100 to 200 ms apart (jitter) within 800 ms: at most 9 attempts.
    assert!((2..=9).contains(&attempts), "{attempts}");
    assert_eq!(requests(&server).await, attempts as usize);
}

#[tokio::test]
async fn a_refused_connection_is_retried() {
    // A port nothing listens on: bind, note, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let r = HttpRegistry::new(
        &format!("127.0.0.1:{port}"),
        Arc::new(Auth::new(None, None)),
    )
    .with_retry(quick());
    let e = r.digest("shop/a", "latest").await.unwrap_err();
    let RegistryError::GaveUp { attempts, last, .. } = &e else {
        panic!("{e:?}");
    };
    assert_eq!(*attempts, 4);
    assert!(
        matches!(
            **last,
            RegistryError::Transport {
                kind: TransportKind::Refused,
                ..
            }
        ),
        "{last:?}"
    );
}

#[tokio::test]
async fn a_reset_connection_is_retried() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // The first connection is dropped unanswered; the second gets a 200.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (first, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        let mut first = first;
        let _ = first.read(&mut buf).await;
        drop(first);
        let (mut second, _) = listener.accept().await.unwrap();
        let _ = second.read(&mut buf).await;
        let answer = format!(
            "HTTP/1.1 200 OK\r\ndocker-content-digest: {DIGEST}\r\ncontent-length: 0\r\n\r\n"
        );
        second.write_all(answer.as_bytes()).await.unwrap();
        second.shutdown().await.unwrap();
    });
    let retries = Arc::new(AtomicUsize::new(0));
    let counted = retries.clone();
    let r = HttpRegistry::new(&addr.to_string(), Arc::new(Auth::new(None, None)))
        .with_retry(quick())
        .on_retry(Arc::new(move |_: &Retrying<'_>| {
            counted.fetch_add(1, Ordering::SeqCst);
        }));
    let digest = tokio::time::timeout(Duration::from_secs(10), r.digest("shop/a", "latest"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(digest.as_deref(), Some(DIGEST));
    assert_eq!(retries.load(Ordering::SeqCst), 1, "the reset was retried");
    server.await.unwrap();
}

/// An index as a registry might store it: odd spacing and key order that
/// any re-serialisation would change.
const INDEX: &str = "{\n  \"schemaVersion\" : 2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\n\t\"manifests\":[]}\n";
const INDEX_TYPE: &str = "application/vnd.oci.image.index.v1+json";

#[tokio::test]
async fn a_manifest_comes_with_its_exact_bytes_and_type_and_goes_back_unchanged() {
    let server = MockServer::start().await;
    let digest = sha256(INDEX.as_bytes());
    Mock::given(method("GET"))
        .and(path("/v2/shop/a/manifests/in-0123"))
        .and(accepts_every_manifest_type())
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(INDEX, INDEX_TYPE)
                .insert_header("docker-content-digest", digest.as_str()),
        )
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/v2/shop/a/manifests/v1.2.0"))
        .and(header("content-type", INDEX_TYPE))
        .and(body_bytes(INDEX.as_bytes()))
        .respond_with(
            ResponseTemplate::new(201).insert_header("docker-content-digest", digest.as_str()),
        )
        .expect(1)
        .mount(&server)
        .await;
    let r = registry(&server, Auth::new(None, None));
    let m = r.manifest("shop/a", "in-0123").await.unwrap();
    assert_eq!(&m.bytes[..], INDEX.as_bytes());
    assert_eq!(m.media_type, INDEX_TYPE);
    assert_eq!(m.digest, digest);
    assert_eq!(
        r.put_manifest("shop/a", "v1.2.0", &m).await.unwrap(),
        digest
    );
    server.verify().await;
}

#[tokio::test]
async fn a_manifest_asked_for_by_digest_must_hash_to_it() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(INDEX, INDEX_TYPE))
        .mount(&server)
        .await;
    let r = registry(&server, Auth::new(None, None));
    let good = sha256(INDEX.as_bytes());
    assert_eq!(r.manifest("shop/a", &good).await.unwrap().digest, good);
    let e = r.manifest("shop/a", DIGEST).await.unwrap_err();
    assert!(
        matches!(&e, RegistryError::DigestMismatch { expected, actual, .. } if expected == DIGEST && *actual == good),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_put_without_a_media_type_is_refused_before_sending() {
    let server = MockServer::start().await;
    let r = registry(&server, Auth::new(None, None));
    let m = Manifest {
        bytes: INDEX.into(),
        media_type: String::new(),
        digest: DIGEST.into(),
    };
    let e = r.put_manifest("shop/a", "v1", &m).await.unwrap_err();
    assert!(matches!(e, RegistryError::MediaType { .. }), "{e:?}");
    assert_eq!(requests(&server).await, 0);
}

#[tokio::test]
async fn a_head_without_a_digest_header_is_no_digest() {
    let server = MockServer::start().await;
    Mock::given(method("HEAD"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let r = registry(&server, Auth::new(None, None));
    let e = r.digest("shop/a", "latest").await.unwrap_err();
    assert!(matches!(e, RegistryError::NoDigest { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!(
            "http://{}{MANIFEST_PATH}: the registry sent no Docker-Content-Digest header",
            host(&server)
        )
    );
}

#[tokio::test]
async fn errors_never_show_the_password() {
    let server = MockServer::start().await;
    Mock::given(header_exists("authorization"))
        .respond_with(ResponseTemplate::new(400).set_body_string("{\"errors\":[]}"))
        .mount(&server)
        .await;
    let r = registry(&server, Auth::new(login("hunter2"), None));
    let e = r.digest("shop/a", "latest").await.unwrap_err();
    assert_eq!(e.status(), Some(400));
    assert!(!format!("{e} {e:?}").contains("hunter2"));
}
