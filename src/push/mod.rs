//! The push stage: each image goes to the registry once, under its content
//! tag, through the engine; every other tag is then added inside the
//! registry with a manifest PUT of the very same bytes, so no layer moves
//! twice and the digest cannot change between tags.

pub(crate) mod connect;
pub(crate) mod ecr;
pub(crate) mod release;

use std::collections::HashMap;

use oci_registry::Auth;
use oci_registry::{RefreshError, Registry, RegistryError};

use crate::build::ServiceLog;
use crate::build::engine::{Engine, EngineError, PushOutput};

/// Why a push failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PushError {
    #[error("pushing {reference}: {source}")]
    Engine {
        reference: String,
        #[source]
        source: EngineError,
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

/// Pushes `<host>/<repository>:<tag>` and returns the digest the registry
/// holds for it. An authentication failure refreshes the login once.
pub(crate) async fn push_content(
    engine: &dyn Engine,
    registry: &dyn Registry,
    auth: &Auth,
    host: &str,
    repository: &str,
    tag: &str,
    log: &mut ServiceLog<'_>,
) -> Result<String, PushError> {
    let full = format!("{host}/{repository}");
    // Bytes per layer, summed into one figure for the progress view.
    let mut layers: HashMap<String, (u64, u64)> = HashMap::new();
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
    let reference = format!("{full}:{tag}");
    let seen = auth.snapshot();
    let mut result = engine
        .push(&full, tag, seen.credentials().cloned(), &mut on_output)
        .await;
    // An expired login is refreshed once, shared with every request that
    // saw it expire.
    if let Err(EngineError::Unauthorized(_)) = &result {
        match auth.refresh(&seen).await {
            Ok(true) => {
                result = engine
                    .push(&full, tag, auth.credentials(), &mut on_output)
                    .await;
            }
            Ok(false) => {}
            Err(source) => return Err(PushError::Refresh { reference, source }),
        }
    }
    if let Err(source) = result {
        return Err(PushError::Engine { reference, source });
    }
    match registry.digest(repository, tag).await {
        Ok(Some(digest)) => Ok(digest),
        Ok(None) => Err(PushError::Vanished(reference)),
        Err(source) => Err(PushError::ReadBack { reference, source }),
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
}
