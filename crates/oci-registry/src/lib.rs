//! A small client for OCI registries (the distribution API), made for tools
//! that build and push images: does a tag exist and at which digest, fetch a
//! manifest exactly as the registry holds it, and put it under another tag.
//!
//! # Why not `oci-client`
//!
//! Re-tagging inside the registry (a manifest `PUT`, no layer traffic) must
//! send back the manifest's exact bytes with its exact `Content-Type`:
//! re-serialising the JSON, or guessing the media type of an index versus an
//! image, changes the digest or gets the `PUT` refused. `oci-client`'s raw
//! pull does not return the media type, so this crate is written on reqwest
//! and does only what such a tool needs, in three requests (`HEAD`, `GET`,
//! `PUT` of `/v2/<repository>/manifests/<reference>`).
//!
//! # Design
//!
//! - [`Registry`] is the narrow trait callers depend on, so their tests can
//!   use a small fake; [`HttpRegistry`] is the real one.
//! - **Auth** ([`Auth`]): basic credentials (ECR, distribution with
//!   htpasswd), upgraded to a bearer token when the registry challenges with
//!   one (Docker Hub, GHCR), a token cached per scope. When the registry
//!   refuses the credentials, one [`Refresh`] (ECR's `GetAuthorizationToken`)
//!   is shared by every request that saw them refused, at most once per run:
//!   never a loop, whatever a token says about its expiry.
//! - **Retries** ([`RetryPolicy`], [`retry`]): 5xx, 429 (honouring
//!   `Retry-After`), refused or reset connections and timeouts are retried
//!   with exponential backoff and jitter, within a number of retries and a
//!   window of time; the final error says how many attempts were made. The
//!   same policy and helper retry the caller's other operations.
//! - **Logins** ([`DockerConfig`]): read from the Docker config the way the
//!   Docker CLI reads them (credential helpers, store, `auths`), never
//!   written.
//! - **Secrets** ([`Secret`], [`Credentials`]) print as `<redacted>`; no
//!   error message ever holds a credential or token.
//! - **Typed errors** ([`RegistryError`]) say what failed and where: the
//!   method and URL, the status and the registry's own error.
//!
//! # Example
//!
//! Adding the tag `v1.2.0` to the image a content tag points to:
//!
//! ```no_run
//! use std::sync::Arc;
//! use oci_registry::{Auth, HttpRegistry, Registry, RetryPolicy, docker_login};
//!
//! # async fn release() -> Result<(), Box<dyn std::error::Error>> {
//! let host = "registry.example.com";
//! let login = docker_login(host)?; // `docker login` once, read-only here
//! let auth = Arc::new(Auth::new(login.credentials, None));
//! let registry = HttpRegistry::new(host, auth).with_retry(RetryPolicy::default());
//!
//! let manifest = registry.manifest("shop/orders", "in-0123456789abcdef0123").await?;
//! let digest = registry.put_manifest("shop/orders", "v1.2.0", &manifest).await?;
//! assert_eq!(digest, manifest.digest); // same bytes, same image
//! # Ok(())
//! # }
//! ```
//!
//! Credentials never show in output:
//!
//! ```
//! use oci_registry::{Credentials, decode_basic};
//!
//! let login = decode_basic("QVdTOmh1bnRlcjI=").unwrap(); // AWS:hunter2
//! assert_eq!(login, Credentials::new("AWS", "hunter2"));
//! assert_eq!(login.to_string(), "AWS:<redacted>");
//! assert!(!format!("{login:?}").contains("hunter2"));
//! assert_eq!(login.password.expose(), "hunter2");
//! ```

mod auth;
mod docker_config;
mod registry;
mod retry;
mod secret;
mod token;

pub use auth::{Auth, BoxError, Refresh, RefreshError, Snapshot};
pub use docker_config::{DockerConfig, DockerConfigError, DockerLogin, LoginSource, docker_login};
pub use registry::{
    HttpRegistry, MANIFEST_TYPES, Manifest, Registry, RegistryError, TransportKind, is_loopback,
};
pub use retry::{
    Attempts, RetryError, RetryObserver, RetryPolicy, Retrying, Transient, parse_retry_after, retry,
};
pub use secret::{Credentials, Secret, decode_basic};

/// The README's example compiles.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExample;
