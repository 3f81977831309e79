//! Amazon ECR through aws-sdk-ecr: the registry login and its repositories.
//!
//! Configuration is the AWS standard chain (`AWS_REGION`, `AWS_PROFILE`,
//! `AWS_ACCESS_KEY_ID`…, SSO, instance roles) and the SDK's endpoint
//! conventions (`AWS_ENDPOINT_URL_ECR`, `AWS_ENDPOINT_URL`), so moto is just
//! another endpoint. The login is `AWS` plus the token from
//! `GetAuthorizationToken`; see `auth.rs` for when it is refreshed.

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_sdk_ecr::config::ProvideCredentials;
use aws_sdk_ecr::error::DisplayErrorContext;

use oci_registry::Credentials;
use oci_registry::{BoxError, Refresh, decode_basic};

use crate::config::{EcrSettings, NewRepository, TagMutability};
use aws_sdk_ecr::types::{ImageScanningConfiguration, ImageTagMutability};

#[derive(Debug, thiserror::Error)]
pub(crate) enum EcrError {
    #[error(
        "no AWS region: set AWS_REGION (or registry.ecr.region in pipeline.yaml, or a profile's region)"
    )]
    NoRegion,
    #[error(
        "no AWS credentials ({0}): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"
    )]
    NoCredentials(String),
    #[error("ECR {call}: {message}")]
    Call { call: &'static str, message: String },
    #[error(
        "repository `{0}` does not exist and registry.ecr.create_repositories is false; create it or set create_repositories: true"
    )]
    Missing(String),
}

/// The part of ECR the executor and the plan need, behind a narrow trait
/// so that they can be tested with a fake: a repository's tag mutability
/// (`None` when it does not exist), and creating one.
#[async_trait]
pub(crate) trait Repositories: Send + Sync {
    async fn tag_mutability(&self, name: &str) -> Result<Option<TagMutability>, EcrError>;
    /// Creates repository `name` with `settings`; returns its tag
    /// mutability (that of the existing one when it appeared meanwhile).
    async fn create(&self, name: &str, settings: NewRepository) -> Result<TagMutability, EcrError>;
}

/// What `GetAuthorizationToken` gives: the registry host and its login.
#[derive(Debug, Clone)]
pub(crate) struct Login {
    /// `123456789012.dkr.ecr.us-east-1.amazonaws.com`
    pub(crate) host: String,
    pub(crate) credentials: Credentials,
}

#[derive(Clone)]
pub(crate) struct Ecr {
    client: aws_sdk_ecr::Client,
    account: Option<String>,
}

impl Ecr {
    /// Loads the AWS configuration and checks that a region and credentials
    /// resolve, so a missing one is an environment error before any build.
    pub(crate) async fn connect(settings: &EcrSettings) -> Result<Ecr, EcrError> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(region) = &settings.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        let sdk = loader.load().await;
        if sdk.region().is_none() {
            return Err(EcrError::NoRegion);
        }
        let provider = sdk
            .credentials_provider()
            .ok_or_else(|| EcrError::NoCredentials("no provider".into()))?;
        provider
            .provide_credentials()
            .await
            .map_err(|e| EcrError::NoCredentials(e.to_string()))?;
        Ok(Ecr {
            client: aws_sdk_ecr::Client::new(&sdk),
            account: settings.account.as_ref().map(|a| a.value.clone()),
        })
    }

    pub(crate) async fn login(&self) -> Result<Login, EcrError> {
        let call = |message: String| EcrError::Call {
            call: "GetAuthorizationToken",
            message,
        };
        let out = self
            .client
            .get_authorization_token()
            .send()
            .await
            .map_err(|e| call(DisplayErrorContext(&e).to_string()))?;
        let data = out
            .authorization_data()
            .first()
            .ok_or_else(|| call("no authorization data in the answer".into()))?;
        let credentials = data
            .authorization_token()
            .and_then(decode_basic)
            .ok_or_else(|| call("the authorization token is not base64 of user:password".into()))?;
        let endpoint = data
            .proxy_endpoint()
            .ok_or_else(|| call("no proxy endpoint in the answer".into()))?;
        let host = endpoint
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        // The token opens every registry the caller may use; the endpoint
        // names the caller's own. Another account's registry differs only in
        // its first label.
        let host = match (&self.account, host.split_once('.')) {
            (Some(account), Some((_, rest))) => format!("{account}.{rest}"),
            _ => host,
        };
        Ok(Login { host, credentials })
    }

    async fn create_repository(
        &self,
        name: &str,
        settings: NewRepository,
    ) -> Result<TagMutability, EcrError> {
        let mutability = match settings.tag_mutability {
            TagMutability::Mutable => ImageTagMutability::Mutable,
            TagMutability::Immutable => ImageTagMutability::Immutable,
        };
        let mut req = self
            .client
            .create_repository()
            .repository_name(name)
            .image_tag_mutability(mutability)
            .image_scanning_configuration(
                ImageScanningConfiguration::builder()
                    .scan_on_push(settings.scan_on_push)
                    .build(),
            );
        if let Some(account) = &self.account {
            req = req.registry_id(account);
        }
        match req.send().await {
            Ok(_) => Ok(settings.tag_mutability),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_repository_already_exists_exception()) =>
            {
                Ok(self.describe(name).await?.unwrap_or_default())
            }
            Err(e) => Err(EcrError::Call {
                call: "CreateRepository",
                message: DisplayErrorContext(&e).to_string(),
            }),
        }
    }

    /// ECR API calls retry as `policy` says: the SDK's standard retry mode
    /// (exponential backoff with jitter, throttling and 5xx retried), with
    /// the attempts set explicitly rather than left to the SDK's default.
    pub(crate) fn retry_with(&mut self, policy: &oci_registry::RetryPolicy) {
        let retry = aws_config::retry::RetryConfig::standard()
            .with_max_attempts(policy.retries + 1)
            .with_initial_backoff(policy.min_delay)
            .with_max_backoff(policy.max_delay);
        let config = self
            .client
            .config()
            .to_builder()
            .retry_config(retry)
            .build();
        self.client = aws_sdk_ecr::Client::from_conf(config);
    }

    /// The tag mutability of repository `name`, `None` when it does not exist
    /// (DescribeRepositories).
    async fn describe(&self, name: &str) -> Result<Option<TagMutability>, EcrError> {
        let mut req = self.client.describe_repositories().repository_names(name);
        if let Some(account) = &self.account {
            req = req.registry_id(account);
        }
        match req.send().await {
            Ok(out) => Ok(Some(
                match out
                    .repositories()
                    .first()
                    .and_then(|r| r.image_tag_mutability())
                {
                    // IMMUTABLE_WITH_EXCLUSION usually exempts `latest`: there
                    // the registry's own refusal, naming the tag, decides.
                    Some(ImageTagMutability::Immutable) => TagMutability::Immutable,
                    _ => TagMutability::Mutable,
                },
            )),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_repository_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(EcrError::Call {
                call: "DescribeRepositories",
                message: DisplayErrorContext(&e).to_string(),
            }),
        }
    }
}

#[async_trait]
impl Repositories for Ecr {
    async fn tag_mutability(&self, name: &str) -> Result<Option<TagMutability>, EcrError> {
        self.describe(name).await
    }

    async fn create(&self, name: &str, settings: NewRepository) -> Result<TagMutability, EcrError> {
        self.create_repository(name, settings).await
    }
}

#[async_trait]
impl Refresh for Ecr {
    async fn refresh(&self) -> Result<Credentials, BoxError> {
        Ok(self.login().await.map(|l| l.credentials)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// An endpoint that answers every request with a 500, counting them.
    async fn failing_endpoint() -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let count = Arc::new(AtomicUsize::new(0));
        let seen = count.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                seen.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = [0; 8192];
                    let _ = socket.read(&mut buf).await;
                    let body = r#"{"__type":"ServerException","message":"down"}"#;
                    let answer = format!(
                        "HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(answer.as_bytes()).await;
                });
            }
        });
        (url, count)
    }

    #[tokio::test]
    async fn ecr_calls_retry_by_the_configured_policy() {
        let (url, count) = failing_endpoint().await;
        let config = aws_sdk_ecr::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(aws_sdk_ecr::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_ecr::config::Credentials::new(
                "AKIDTEST",
                "not-a-secret",
                None,
                None,
                "test",
            ))
            .endpoint_url(&url)
            .build();
        let mut ecr = Ecr {
            client: aws_sdk_ecr::Client::from_conf(config),
            account: None,
        };
        ecr.retry_with(&oci_registry::RetryPolicy {
            retries: 4,
            window: Duration::from_secs(30),
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
        });
        let e = ecr.login().await.expect_err("the endpoint only fails");
        assert!(e.to_string().contains("GetAuthorizationToken"), "{e}");
        assert_eq!(count.load(Ordering::SeqCst), 5, "1 attempt + 4 retries");
    }
}
