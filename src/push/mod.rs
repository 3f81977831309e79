//! The push stage: each image goes to the registry once, under its content
//! tag, through the engine; every other tag is then added inside the
//! registry with a manifest PUT of the very same bytes, so no layer moves
//! twice and the digest cannot change between tags.

pub(crate) mod connect;
pub(crate) mod ecr;
pub(crate) mod release;

use std::collections::HashMap;

use oci_registry::{Auth, RefreshError, Registry, RegistryError, RetryPolicy};

use crate::build::ServiceLog;
use crate::build::engine::{Engine, EngineError, PushOutput};
use crate::report::Event;

/// Why a push failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PushError {
    #[error("pushing {reference}: {source}{}", gave_up(*attempts))]
    Engine {
        reference: String,
        #[source]
        source: EngineError,
        /// Attempts made, the first one included.
        attempts: u32,
    },
    /// The engine's push failed, and the registry does not answer our own
    /// requests either.
    #[error("pushing {reference}: the registry does not answer: {source}{}", gave_up(*attempts))]
    Unreachable {
        reference: String,
        #[source]
        source: RegistryError,
        attempts: u32,
    },
    #[error("pushing {reference}: the login expired and could not be renewed: {source}")]
    Refresh {
        reference: String,
        #[source]
        source: RefreshError,
    },
    #[error("{0} is not in the registry right after its push")]
    Vanished(String),
    #[error("reading the digest of {reference}: {source}")]
    ReadBack {
        reference: String,
        #[source]
        source: RegistryError,
    },
}

fn gave_up(attempts: u32) -> String {
    match attempts {
        0 | 1 => String::new(),
        n => format!(" (gave up after {n} attempts)"),
    }
}

/// Whether a push error, as the engine words it, is worth another try: a
/// 5xx or 429 from the registry, a reset, refused or timed-out connection.
/// The daemon passes only the text on (`received unexpected HTTP status:
/// 503 Service Unavailable`, `toomanyrequests: …`), so the text decides.
pub(crate) fn transient(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    let status = ["500 ", "502 ", "503 ", "504 ", "429 "]
        .iter()
        .any(|s| m.contains(&format!("status: {s}")) || m.contains(&format!("status {s}")));
    status
        || [
            "toomanyrequests",
            "too many requests",
            "service unavailable",
            "bad gateway",
            "gateway timeout",
            "internal server error",
            "connection reset",
            "connection refused",
            "broken pipe",
            "use of closed network connection",
            "i/o timeout",
            "timeout exceeded",
            "unexpected eof",
            ": eof",
        ]
        .iter()
        .any(|s| m.contains(s))
}

/// What a push needs besides the image: where it goes and how it retries.
pub(crate) struct PushTarget<'a> {
    pub(crate) registry: &'a dyn Registry,
    pub(crate) auth: &'a Auth,
    pub(crate) host: &'a str,
    pub(crate) policy: &'a RetryPolicy,
}

/// Pushes `<host>/<repository>:<tag>` and returns the digest the registry
/// holds for it, read back after the push: that digest, not what the engine
/// said, is the one recorded, tagged and pinned. A content tag that another
/// run (another machine, another CI job) pushed while this one built is
/// not pushed over: its digest is taken. Transient failures are retried
/// with `policy` (the log and the view say each retry and its cause); an
/// expired login is refreshed once, shared with every request that saw it.
pub(crate) async fn push_content(
    engine: &dyn Engine,
    target: &PushTarget<'_>,
    repository: &str,
    tag: &str,
    log: &mut ServiceLog<'_>,
) -> Result<String, PushError> {
    let full = format!("{}/{repository}", target.host);
    let reference = format!("{full}:{tag}");
    let read_back = |source| PushError::ReadBack {
        reference: reference.clone(),
        source,
    };
    if let Some(digest) = target
        .registry
        .digest(repository, tag)
        .await
        .map_err(read_back)?
    {
        log.line(&format!(
            "{reference} appeared in the registry while this run built it (another run pushed the same inputs); using its digest {digest}"
        ));
        return Ok(digest);
    }
    // Bytes per layer, summed into one figure for the progress view.
    let mut layers: HashMap<String, (u64, u64)> = HashMap::new();
    let reporter = log.reporter();
    let service = log.service().to_string();
    let mut attempts = target.policy.attempts();
    let mut refreshed = false;
    loop {
        let seen = target.auth.snapshot();
        let mut on_output = |out: PushOutput| match out {
            PushOutput::Line(line) => log.line(&line),
            PushOutput::Layer { id, current, total } => {
                layers.insert(id, (current, total));
                let (sent, total) = layers
                    .values()
                    .fold((0, 0), |(s, t), (c, l)| (s + c.min(l), t + l));
                log.pushed(sent, total);
            }
        };
        let result = engine
            .push(&full, tag, seen.credentials().cloned(), &mut on_output)
            .await;
        let error = match result {
            Ok(()) => break,
            Err(e) => e,
        };
        // Another run pushed the content tag first, into an IMMUTABLE
        // repository: its image is the one of these inputs.
        if let EngineError::Push(m) = &error
            && m.to_ascii_lowercase().contains("immutable")
            && let Ok(Some(digest)) = target.registry.digest(repository, tag).await
        {
            log.line(&format!(
                "{reference} was pushed by another run meanwhile and the repository is immutable; using its digest {digest}"
            ));
            return Ok(digest);
        }
        // An expired login is refreshed once, shared with every request
        // that saw it expire; then the push is tried again.
        if let EngineError::Unauthorized(_) = &error
            && !refreshed
        {
            refreshed = true;
            match target.auth.refresh(&seen).await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(source) => return Err(PushError::Refresh { reference, source }),
            }
        }
        // The engine calls a failed `/v2/` ping (a 503 there) a login
        // failure and pushes without credentials. Our own client, with the
        // same login, tells which it was: it gets in (a hiccup: try again),
        // the registry is unreachable (try again, and say so if it stays
        // that way), or it is refused too (the login is wrong: stop).
        let mut unreachable = None;
        let mut error = error;
        let is_transient = match &error {
            EngineError::Push(m) => transient(m),
            EngineError::Unauthorized(m) => match target.registry.digest(repository, tag).await {
                Ok(_) => {
                    error = EngineError::Push(format!(
                        "{m} (the engine's login failed, but the same login works for pipeline's own requests: the registry faltered)"
                    ));
                    true
                }
                Err(e) if e.is_transient() || matches!(e, RegistryError::GaveUp { .. }) => {
                    unreachable = Some(e);
                    true
                }
                Err(_) => false,
            },
            _ => false,
        };
        log.line(&format!("push failed: {error}"));
        let observer = |r: &oci_registry::Retrying<'_>| {
            reporter.event(Event::Retry {
                service: service.clone(),
                attempt: r.attempt,
                cause: r.cause.to_string(),
                delay_ms: r.delay.as_millis() as u64,
            });
        };
        if let Err(e) = attempts
            .failed(
                error,
                is_transient.then_some(oci_registry::Transient::default()),
                Some(&observer),
            )
            .await
        {
            return Err(match unreachable {
                Some(source) => PushError::Unreachable {
                    reference,
                    attempts: e.attempts,
                    source,
                },
                None => PushError::Engine {
                    reference,
                    attempts: e.attempts,
                    source: e.error,
                },
            });
        }
    }
    match target.registry.digest(repository, tag).await {
        Ok(Some(digest)) => Ok(digest),
        Ok(None) => Err(PushError::Vanished(reference)),
        Err(source) => Err(read_back(source)),
    }
}

/// The tags that point to the image after [`add_tags`], and the error that
/// stopped it, naming the tag.
#[derive(Debug, Default)]
pub(crate) struct Tagged {
    pub(crate) tags: Vec<String>,
    pub(crate) error: Option<TagError>,
}

/// Why adding a tag failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TagError {
    #[error("tag `{tag}`: {source}")]
    LookUp {
        tag: String,
        #[source]
        source: RegistryError,
    },
    #[error("fetching {repository}@{digest}: {source}")]
    Fetch {
        repository: String,
        digest: String,
        #[source]
        source: RegistryError,
    },
    /// The repository's tags are immutable and the tag exists.
    #[error(
        "tag `{tag}` was refused: the repository's tags are immutable and `{tag}` already points to another image ({source})"
    )]
    Immutable {
        tag: String,
        #[source]
        source: RegistryError,
    },
    #[error("adding tag `{tag}`: {source}")]
    Put {
        tag: String,
        #[source]
        source: RegistryError,
    },
}

/// Adds `tags` to the manifest `digest` in `repository`; a tag already on
/// that digest is left as it is.
pub(crate) async fn add_tags(
    registry: &dyn Registry,
    repository: &str,
    digest: &str,
    tags: &[String],
) -> Tagged {
    let mut out = Tagged::default();
    let mut manifest = None;
    for tag in tags {
        match registry.digest(repository, tag).await {
            Ok(Some(current)) if current == digest => {
                out.tags.push(tag.clone());
                continue;
            }
            Ok(_) => {}
            Err(source) => {
                out.error = Some(TagError::LookUp {
                    tag: tag.clone(),
                    source,
                });
                return out;
            }
        }
        if manifest.is_none() {
            match registry.manifest(repository, digest).await {
                Ok(m) => manifest = Some(m),
                Err(source) => {
                    out.error = Some(TagError::Fetch {
                        repository: repository.to_string(),
                        digest: digest.to_string(),
                        source,
                    });
                    return out;
                }
            }
        }
        let m = manifest.as_ref().expect("fetched above");
        if let Err(e) = registry.put_manifest(repository, tag, m).await {
            out.error = Some(refused(tag, e));
            return out;
        }
        out.tags.push(tag.clone());
    }
    out
}

/// ECR answers a moving tag in an IMMUTABLE repository with a 400 whose
/// body names `ImageTagAlreadyExists` or says the repository is immutable.
fn refused(tag: &str, source: RegistryError) -> TagError {
    let tag = tag.to_string();
    match &source {
        RegistryError::Status { body, .. }
            if body.contains("ImageTagAlreadyExists") || body.contains("immutable") =>
        {
            TagError::Immutable { tag, source }
        }
        _ => TagError::Put { tag, source },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_immutable_refusal_names_the_tag() {
        let e = RegistryError::Status {
            method: reqwest::Method::PUT,
            url: "https://x/v2/shop/a/manifests/latest".into(),
            status: 400,
            retry_after: None,
            body: r#"{"errors":[{"code":"TAG_INVALID","message":"The image tag 'latest' already exists in the 'shop/a' repository and cannot be overwritten because the repository is immutable."}]}"#.into(),
        };
        let m = refused("latest", e).to_string();
        assert!(
            m.starts_with("tag `latest` was refused: the repository's tags are immutable"),
            "{m}"
        );
        let other = RegistryError::Status {
            method: reqwest::Method::PUT,
            url: "u".into(),
            status: 500,
            retry_after: None,
            body: "boom".into(),
        };
        assert!(
            refused("v1", other)
                .to_string()
                .starts_with("adding tag `v1`")
        );
    }

    /// The engine's own words (Docker 20.10, as seen through the fault
    /// proxy of the stack tests): which are worth another try.
    #[test]
    fn transient_push_errors_as_the_engine_words_them() {
        for m in [
            "received unexpected HTTP status: 503 Service Unavailable",
            "received unexpected HTTP status: 502 Bad Gateway",
            "toomanyrequests: too many requests (injected by the test proxy)",
            "toomanyrequests: Rate exceeded",
            r#"Put "http://127.0.0.1:45751/v2/x/manifests/26": read tcp 127.0.0.1:52856->127.0.0.1:45751: read: connection reset by peer"#,
            "write tcp 127.0.0.1:56578->127.0.0.1:45751: use of closed network connection",
            r#"Head "https://r/v2/x/blobs/sha256:ab": dial tcp 10.0.0.1:443: connect: connection refused"#,
            r#"Patch "https://r/v2/x/blobs/uploads/1": net/http: request canceled (Client.Timeout exceeded while awaiting headers)"#,
            r#"Get "https://r/v2/": dial tcp 10.0.0.1:443: i/o timeout"#,
        ] {
            assert!(transient(m), "transient: {m}");
        }
        for m in [
            "denied: requested access to the resource is denied",
            "name unknown: repository name not known to registry",
            "manifest invalid: manifest invalid",
            "received unexpected HTTP status: 404 Not Found",
            "tag invalid: The image tag '1' already exists and cannot be overwritten because the repository is immutable",
        ] {
            assert!(!transient(m), "final: {m}");
        }
    }
}
