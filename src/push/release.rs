//! `pipeline release VERSION`: the tested images get the version tag inside
//! the registry, so the released bytes are exactly the tested bytes.
//!
//! Each image's manifest is fetched by digest and PUT under the new tag with
//! its own media type (Docker v2, OCI manifest, manifest list or OCI index):
//! no layer moves and no digest changes. Everything is checked before
//! anything is tagged: if one service's VERSION already points elsewhere
//! (without `--force`), or its source image is missing, nothing is tagged.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use futures::StreamExt;

use oci_registry::{Registry, RegistryError};

/// Where the digests to release come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Source {
    /// A results file (its path as given).
    Results(String),
    /// The digest a tag points to now in the registry.
    Tag(String),
}

/// One service to release.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub(crate) service: String,
    /// The repository without host (`shop/orders`).
    pub(crate) repository: String,
    /// The full repository URI, for records and manifests.
    pub(crate) uri: String,
    /// The digest to tag; `None` when the source has no image for it.
    pub(crate) digest: Option<String>,
    /// Why there is no digest, for the refusal (`no tag `latest` in …`).
    pub(crate) missing: String,
}

/// What the release does to one service's VERSION tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Action {
    /// The tag is new.
    Tagged,
    /// The tag already points to this digest: nothing to do.
    Unchanged,
    /// The tag pointed to another digest and was moved (`--force`).
    Moved,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Released {
    pub(crate) repository: String,
    pub(crate) digest: String,
    pub(crate) tag: String,
    pub(crate) action: Action,
    /// The digest the tag pointed to before, when it was moved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) previous: Option<String>,
}

/// `.pipeline/release-VERSION.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Record {
    pub(crate) version: String,
    pub(crate) source: Source,
    /// When, UTC, RFC 3339.
    pub(crate) created: String,
    pub(crate) services: BTreeMap<String, Released>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ReleaseError {
    /// Some services cannot be tagged; nothing was tagged.
    #[error("{}", .0.join("\n"))]
    Refused(Vec<String>),
    /// The registry stored the manifest under another digest: the bytes
    /// were not kept (a registry that converts media types).
    #[error("{service}: the registry stored {got} instead of {wanted}")]
    Changed {
        service: String,
        wanted: String,
        got: String,
    },
    #[error("{service}: {source}")]
    Registry {
        service: String,
        #[source]
        source: RegistryError,
    },
}

/// How many registry calls run at once.
const PARALLEL: usize = 8;

/// What a release did: every service tagged, or, when a PUT failed half-way,
/// the services tagged before it and the error.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) released: BTreeMap<String, Released>,
    pub(crate) error: Option<ReleaseError>,
}

/// Checks every candidate (its source manifest can be read; VERSION is
/// absent, already on that digest, or `force`), then tags them; tags nothing
/// when any check fails.
pub(crate) async fn release(
    registry: &dyn Registry,
    version: &str,
    candidates: &[Candidate],
    force: bool,
) -> Result<Outcome, ReleaseError> {
    let registry_error = |service: &str| {
        let service = service.to_string();
        move |source| ReleaseError::Registry {
            service: service.clone(),
            source,
        }
    };
    // Check: where VERSION points now, and the manifest to put under it.
    let checked: Vec<_> = futures::stream::iter(candidates)
        .map(|c| async move {
            let now = registry
                .digest(&c.repository, version)
                .await
                .map_err(registry_error(&c.service))?;
            let manifest = match &c.digest {
                Some(d) if now.as_deref() != Some(d.as_str()) => {
                    match registry.manifest(&c.repository, d).await {
                        Ok(m) => Some(Ok(m)),
                        Err(RegistryError::Status { status: 404, .. }) => Some(Err(())),
                        Err(e) => return Err(registry_error(&c.service)(e)),
                    }
                }
                _ => None,
            };
            Ok((c, now, manifest))
        })
        .buffered(PARALLEL)
        .collect()
        .await;

    let mut refusals = Vec::new();
    let mut plan = Vec::new();
    for item in checked {
        let (c, now, manifest) = item?;
        let Some(digest) = &c.digest else {
            refusals.push(format!("{}: nothing to release: {}", c.service, c.missing));
            continue;
        };
        if let Some(Err(())) = manifest {
            refusals.push(format!(
                "{}: {digest} is no longer in {} (deleted or expired?)",
                c.service, c.repository
            ));
            continue;
        }
        let action = match &now {
            None => Action::Tagged,
            Some(d) if d == digest => Action::Unchanged,
            Some(_) if force => Action::Moved,
            Some(d) => {
                refusals.push(format!(
                    "{}: tag `{version}` points to {d}, the release is {digest}; pass --force to move it",
                    c.service
                ));
                continue;
            }
        };
        plan.push((
            c,
            digest.clone(),
            action,
            now,
            manifest.and_then(Result::ok),
        ));
    }
    if !refusals.is_empty() {
        return Err(ReleaseError::Refused(refusals));
    }

    // Tag: every PUT, then what happened to each.
    let results: Vec<_> = futures::stream::iter(plan)
        .map(|(c, digest, action, now, manifest)| async move {
            if let Some(manifest) = manifest {
                let put = registry
                    .put_manifest(&c.repository, version, &manifest)
                    .await
                    .map_err(registry_error(&c.service))?;
                if put != digest {
                    return Err(ReleaseError::Changed {
                        service: c.service.clone(),
                        wanted: digest,
                        got: put,
                    });
                }
            }
            Ok::<_, ReleaseError>((
                c.service.clone(),
                Released {
                    repository: c.uri.clone(),
                    digest,
                    tag: version.to_string(),
                    action,
                    previous: now.filter(|_| action == Action::Moved),
                },
            ))
        })
        .buffered(PARALLEL)
        .collect()
        .await;
    let mut outcome = Outcome {
        released: BTreeMap::new(),
        error: None,
    };
    for r in results {
        match r {
            Ok((name, released)) => {
                outcome.released.insert(name, released);
            }
            Err(e) => outcome.error = outcome.error.or(Some(e)),
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use oci_registry::Manifest;
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// An in-memory registry: (repository, reference) → manifest.
    #[derive(Default)]
    struct Fake {
        manifests: Mutex<HashMap<(String, String), Manifest>>,
        puts: Mutex<usize>,
        /// Report another digest for every PUT, like a converting registry.
        converts: bool,
    }

    impl Fake {
        fn with(self, repo: &str, tags: &[&str], digest: &str) -> Fake {
            let m = Manifest {
                bytes: bytes::Bytes::from(digest.to_string()),
                media_type: "application/vnd.oci.image.index.v1+json".into(),
                digest: digest.into(),
            };
            let mut map = self.manifests.lock().unwrap();
            map.insert((repo.into(), digest.into()), m.clone());
            for t in tags {
                map.insert((repo.into(), t.to_string()), m.clone());
            }
            drop(map);
            self
        }
    }

    #[async_trait]
    impl Registry for Fake {
        async fn ping(&self) -> Result<(), RegistryError> {
            Ok(())
        }
        async fn digest(&self, repo: &str, r: &str) -> Result<Option<String>, RegistryError> {
            let map = self.manifests.lock().unwrap();
            Ok(map.get(&(repo.into(), r.into())).map(|m| m.digest.clone()))
        }
        async fn manifest(&self, repo: &str, r: &str) -> Result<Manifest, RegistryError> {
            let map = self.manifests.lock().unwrap();
            map.get(&(repo.to_string(), r.to_string()))
                .cloned()
                .ok_or(RegistryError::Status {
                    method: reqwest::Method::GET,
                    url: format!("{repo}/{r}"),
                    status: 404,
                    retry_after: None,
                    body: "MANIFEST_UNKNOWN".into(),
                })
        }
        async fn put_manifest(
            &self,
            repo: &str,
            tag: &str,
            m: &Manifest,
        ) -> Result<String, RegistryError> {
            *self.puts.lock().unwrap() += 1;
            self.manifests
                .lock()
                .unwrap()
                .insert((repo.into(), tag.into()), m.clone());
            Ok(if self.converts {
                "sha256:converted".into()
            } else {
                m.digest.clone()
            })
        }
    }

    fn candidate(service: &str, digest: &str) -> Candidate {
        Candidate {
            service: service.into(),
            repository: format!("shop/{service}"),
            uri: format!("h/shop/{service}"),
            digest: Some(digest.into()),
            missing: String::new(),
        }
    }

    #[tokio::test]
    async fn one_refusal_tags_nothing_and_force_moves() {
        let fake = Fake::default()
            .with("shop/a", &[], "sha256:a1")
            .with("shop/b", &["v1"], "sha256:b0")
            .with("shop/b", &[], "sha256:b1");
        let wanted = [candidate("a", "sha256:a1"), candidate("b", "sha256:b1")];
        let err = release(&fake, "v1", &wanted, false).await.unwrap_err();
        assert!(
            err.to_string().contains("b: tag `v1` points to sha256:b0"),
            "{err}"
        );
        assert_eq!(*fake.puts.lock().unwrap(), 0, "nothing tagged");
        assert_eq!(fake.digest("shop/a", "v1").await.unwrap(), None);

        let done = release(&fake, "v1", &wanted, true).await.unwrap().released;
        assert_eq!(done["a"].action, Action::Tagged);
        assert_eq!(done["b"].action, Action::Moved);
        assert_eq!(done["b"].previous.as_deref(), Some("sha256:b0"));
        assert_eq!(
            fake.digest("shop/b", "v1").await.unwrap().as_deref(),
            Some("sha256:b1")
        );

        let again = release(&fake, "v1", &wanted, false).await.unwrap().released;
        assert!(again.values().all(|r| r.action == Action::Unchanged));
        assert_eq!(
            *fake.puts.lock().unwrap(),
            2,
            "a second release puts nothing"
        );
    }

    #[tokio::test]
    async fn a_missing_source_image_is_refused_before_any_tag() {
        let fake = Fake::default().with("shop/a", &[], "sha256:a1");
        let wanted = [candidate("a", "sha256:a1"), candidate("b", "sha256:gone")];
        let err = release(&fake, "v1", &wanted, false).await.unwrap_err();
        assert!(
            err.to_string()
                .contains("b: sha256:gone is no longer in shop/b"),
            "{err}"
        );
        assert_eq!(*fake.puts.lock().unwrap(), 0);
    }

    #[tokio::test]
    async fn a_registry_that_changes_the_digest_is_an_error() {
        let fake = Fake {
            converts: true,
            ..Fake::default()
        }
        .with("shop/a", &[], "sha256:a1");
        let out = release(&fake, "v1", &[candidate("a", "sha256:a1")], false)
            .await
            .unwrap();
        assert!(out.released.is_empty());
        let err = out.error.unwrap().to_string();
        assert!(
            err.contains("stored sha256:converted instead of sha256:a1"),
            "{err}"
        );
    }
}
