//! Where images go: the registry host, its login and, for ECR, the ECR
//! client. Shared by the commands that push or tag and by `doctor`, which
//! checks the same steps one at a time.

use std::sync::Arc;

use oci_registry::{
    Auth, DockerConfigError, HttpRegistry, LoginSource, Registry, RegistryError, docker_login,
};

use crate::config::{Config, EcrSettings};
use crate::push::ecr::{Ecr, EcrError};

/// A registry to push to, logged in.
pub(crate) struct Connection {
    pub(crate) host: String,
    pub(crate) auth: Arc<Auth>,
    /// ECR, when `registry.ecr` is configured.
    pub(crate) ecr: Option<Ecr>,
    /// Where the login came from (ECR's token, or the Docker config).
    pub(crate) login: Login,
    /// How its requests are retried.
    pub(crate) retry: oci_registry::RetryPolicy,
}

/// Where a registry login came from, for `doctor` and error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Login {
    /// ECR's `GetAuthorizationToken`.
    Ecr,
    /// The Docker config: a credential helper, the credential store, its
    /// `auths`, or none.
    DockerConfig(LoginSource),
}

impl std::fmt::Display for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Login::Ecr => f.write_str("ECR (GetAuthorizationToken)"),
            Login::DockerConfig(source) => write!(f, "{source}"),
        }
    }
}

/// Why a registry cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    #[error(transparent)]
    Ecr(#[from] EcrError),
    #[error(transparent)]
    DockerConfig(#[from] DockerConfigError),
    #[error(
        "registry {host} refused the login from {login} ({source}); log in with `docker login {host}` (pipeline reads the Docker config: credHelpers, credsStore, then auths)"
    )]
    DockerLogin {
        host: String,
        login: LoginSource,
        #[source]
        source: RegistryError,
    },
    #[error(
        "registry {host} refused the ECR login ({source}); check that registry.host is the registry of this AWS account"
    )]
    EcrLogin {
        host: String,
        #[source]
        source: RegistryError,
    },
    #[error(
        "registry {host} is unreachable ({source}); check registry.host and that the registry runs"
    )]
    Unreachable {
        host: String,
        #[source]
        source: RegistryError,
    },
}

/// Connects to ECR and logs in: one `GetAuthorizationToken`, refreshed once
/// when a request finds it expired. The host is `registry.host` when set,
/// else the account's ECR registry. Every ECR call, the login and its
/// refreshes included, retries by `retry` (`push.retries`,
/// `push.retry_window`'s delays), as do the registry requests.
pub(crate) async fn ecr(
    settings: &EcrSettings,
    configured_host: Option<&str>,
    retry: &oci_registry::RetryPolicy,
) -> Result<Connection, EcrError> {
    let mut ecr = Ecr::connect(settings).await?;
    ecr.retry_with(retry);
    let login = ecr.login().await?;
    let host = configured_host.map_or(login.host, str::to_string);
    let auth = Auth::new(Some(login.credentials), Some(Box::new(ecr.clone())));
    Ok(Connection {
        host,
        auth: Arc::new(auth),
        ecr: Some(ecr),
        login: Login::Ecr,
        retry: retry.clone(),
    })
}

/// A plain registry, with the Docker config's login for it (or none). The
/// config is read, never written; a credential helper runs as a child
/// process, which is why this is called once, at start.
pub(crate) fn plain(
    host: &str,
    retry: &oci_registry::RetryPolicy,
) -> Result<Connection, DockerConfigError> {
    let login = docker_login(host)?;
    Ok(Connection {
        host: host.to_string(),
        auth: Arc::new(Auth::new(login.credentials, None)),
        ecr: None,
        login: Login::DockerConfig(login.source),
        retry: retry.clone(),
    })
}

/// The configured registry, logged in.
pub(crate) async fn connect(config: &Config) -> Result<Connection, ConnectError> {
    let configured_host = config.registry.host.as_ref().map(|h| h.value.as_str());
    let retry = config.push.policy();
    Ok(match &config.registry.ecr {
        Some(settings) => ecr(settings, configured_host, &retry).await?,
        None => plain(
            configured_host.expect("config check: ecr or host is set"),
            &retry,
        )?,
    })
}

impl Connection {
    pub(crate) fn registry(&self) -> HttpRegistry {
        HttpRegistry::new(&self.host, self.auth.clone())
            .with_user_agent(concat!("pipeline/", env!("CARGO_PKG_VERSION")))
            .with_retry(self.retry.clone())
    }

    /// Asks the registry whether it answers and takes the login, so a bad
    /// one is an environment error before anything is built.
    pub(crate) async fn check(&self, registry: &dyn Registry) -> Result<(), ConnectError> {
        let host = self.host.clone();
        registry.ping().await.map_err(|source| match source {
            RegistryError::Unauthorized { .. } if self.ecr.is_none() => ConnectError::DockerLogin {
                host,
                login: match &self.login {
                    Login::DockerConfig(source) => source.clone(),
                    Login::Ecr => LoginSource::None,
                },
                source,
            },
            RegistryError::Unauthorized { .. } => ConnectError::EcrLogin { host, source },
            _ => ConnectError::Unreachable { host, source },
        })
    }
}
