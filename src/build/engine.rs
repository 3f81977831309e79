//! The Docker engine, through bollard: build from a streamed context, tag,
//! push.
//!
//! The engine follows `DOCKER_HOST`. Its API version is negotiated, since
//! Debian's engine speaks API 1.41 and refuses newer clients outright. Builds
//! use the engine's classic builder (no BuildKit session): it reads the tar we
//! stream, and pulls `FROM` images with the credentials passed as
//! `X-Registry-Config`.

use std::collections::HashMap;

use async_trait::async_trait;
use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::query_parameters::{
    BuildImageOptionsBuilder, PushImageOptionsBuilder, TagImageOptionsBuilder,
};
use futures::StreamExt;

use oci_registry::Credentials;

use crate::plan::context::Listing;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(
        "cannot reach the Docker engine ({0}); start it or set DOCKER_HOST (e.g. unix:///var/run/docker.sock)"
    )]
    Unreachable(String),
    #[error("{message}")]
    Build {
        step: Option<String>,
        message: String,
    },
    #[error("{0}")]
    Push(String),
    /// The registry refused the login; the daemon says so only in words,
    /// which [`push_error`] reads once, here.
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Api(String),
}

/// What to build.
#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    /// The Dockerfile's path inside the context tar.
    pub dockerfile: String,
    /// The tag the image gets locally, `repo:tag`.
    pub tag: String,
    pub target: Option<String>,
    pub platform: Option<String>,
    pub build_args: HashMap<String, String>,
    pub labels: HashMap<String, String>,
    /// Logins for registries that `FROM` may pull from, by host.
    pub registries: HashMap<String, Credentials>,
}

/// One line of build output, with the step it belongs to.
#[derive(Debug, Clone)]
pub struct BuildLine {
    pub line: String,
    /// `Step 2/5 : RUN make` while that step runs.
    pub step: Option<String>,
}

#[async_trait]
pub trait Engine: Send + Sync {
    /// Builds `context` and returns the image ID.
    async fn build(
        &self,
        request: BuildRequest,
        context: Listing,
        on_line: &mut (dyn FnMut(BuildLine) + Send),
    ) -> Result<String, EngineError>;
    async fn tag(&self, image: &str, repository: &str, tag: &str) -> Result<(), EngineError>;
    /// The ID of the local image `reference`, when the engine has it.
    async fn image_id(&self, reference: &str) -> Result<Option<String>, EngineError>;
    /// Pushes `repository:tag` (repository includes the registry host).
    async fn push(
        &self,
        repository: &str,
        tag: &str,
        credentials: Option<Credentials>,
        on_output: &mut (dyn FnMut(PushOutput) + Send),
    ) -> Result<(), EngineError>;
}

/// What a push reports while it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutput {
    /// A status line worth a log (`Pushed`, `latest: digest: …`).
    Line(String),
    /// Bytes of one layer sent so far, of its total.
    Layer {
        id: String,
        current: u64,
        total: u64,
    },
}

pub struct DockerEngine {
    docker: Docker,
}

fn docker_credentials(host: &str, c: &Credentials) -> DockerCredentials {
    DockerCredentials {
        username: Some(c.username.clone()),
        password: Some(c.password.expose().to_string()),
        serveraddress: Some(host.to_string()),
        ..Default::default()
    }
}

impl DockerEngine {
    /// Connects (following `DOCKER_HOST`) and negotiates the API version.
    pub async fn connect() -> Result<DockerEngine, EngineError> {
        let docker =
            Docker::connect_with_defaults().map_err(|e| EngineError::Unreachable(e.to_string()))?;
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|e| EngineError::Unreachable(e.to_string()))?;
        Ok(DockerEngine { docker })
    }

    /// The engine's version and the API version spoken, for `doctor`.
    pub async fn version(&self) -> Result<(String, String), EngineError> {
        let v = self
            .docker
            .version()
            .await
            .map_err(|e| EngineError::Unreachable(e.to_string()))?;
        Ok((
            v.version.unwrap_or_else(|| "?".into()),
            self.docker.client_version().to_string(),
        ))
    }
}

#[async_trait]
impl Engine for DockerEngine {
    async fn build(
        &self,
        request: BuildRequest,
        context: Listing,
        on_line: &mut (dyn FnMut(BuildLine) + Send),
    ) -> Result<String, EngineError> {
        let mut options = BuildImageOptionsBuilder::default()
            .dockerfile(&request.dockerfile)
            .t(&request.tag)
            .rm(true)
            .forcerm(true)
            .buildargs(&request.build_args)
            .labels(&request.labels);
        if let Some(target) = &request.target {
            options = options.target(target);
        }
        if let Some(platform) = &request.platform {
            options = options.platform(platform);
        }
        let credentials: HashMap<String, DockerCredentials> = request
            .registries
            .iter()
            .map(|(host, c)| (host.clone(), docker_credentials(host, c)))
            .collect();
        let body = bollard::body_try_stream(context.into_tar_stream());
        let mut stream = self
            .docker
            .build_image(options.build(), Some(credentials), Some(body));
        let mut step: Option<String> = None;
        let mut image_id: Option<String> = None;
        let mut partial = String::new();
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| EngineError::Build {
                step: step.clone(),
                message: e.to_string(),
            })?;
            if let Some(text) = info.stream {
                partial.push_str(&text);
                while let Some(nl) = partial.find('\n') {
                    let line: String = partial.drain(..=nl).collect();
                    let line = strip_ansi(line.trim_end());
                    if line.starts_with("Step ") {
                        step = Some(line.clone());
                    }
                    on_line(BuildLine {
                        line,
                        step: step.clone(),
                    });
                }
            }
            if let Some(detail) = info.error_detail {
                let message = detail.message.unwrap_or_else(|| "build failed".into());
                return Err(EngineError::Build { step, message });
            }
            if let Some(aux) = info.aux
                && let Some(id) = aux.id
            {
                image_id = Some(id);
            }
        }
        if !partial.trim().is_empty() {
            on_line(BuildLine {
                line: partial.trim_end().to_string(),
                step: step.clone(),
            });
        }
        match image_id {
            Some(id) => Ok(id),
            // Older engines announce the ID only in the last stream line.
            None => self
                .docker
                .inspect_image(&request.tag)
                .await
                .ok()
                .and_then(|i| i.id)
                .ok_or(EngineError::Build {
                    step,
                    message: "the engine reported no image ID".into(),
                }),
        }
    }

    async fn tag(&self, image: &str, repository: &str, tag: &str) -> Result<(), EngineError> {
        let options = TagImageOptionsBuilder::default()
            .repo(repository)
            .tag(tag)
            .build();
        self.docker
            .tag_image(image, Some(options))
            .await
            .map_err(|e| EngineError::Api(format!("tagging {image} as {repository}:{tag}: {e}")))
    }

    async fn image_id(&self, reference: &str) -> Result<Option<String>, EngineError> {
        match self.docker.inspect_image(reference).await {
            Ok(image) => Ok(image.id),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(EngineError::Api(format!("inspecting {reference}: {e}"))),
        }
    }

    async fn push(
        &self,
        repository: &str,
        tag: &str,
        credentials: Option<Credentials>,
        on_output: &mut (dyn FnMut(PushOutput) + Send),
    ) -> Result<(), EngineError> {
        let host = repository.split('/').next().unwrap_or_default();
        let options = PushImageOptionsBuilder::default().tag(tag).build();
        let creds = credentials.map(|c| docker_credentials(host, &c));
        let mut stream = self.docker.push_image(repository, Some(options), creds);
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| push_error(e.to_string()))?;
            if let Some(detail) = info.error_detail {
                let message = detail.message.unwrap_or_else(|| "push failed".into());
                return Err(push_error(message));
            }
            // Per-layer progress is for the progress view; the log gets the
            // rest. bollard's type drops the layer id, so layers are told
            // apart by their size: two same-sized layers in flight at once
            // are counted as one, which only makes the figure approximate.
            match info.progress_detail {
                Some(detail) if detail.total.is_some_and(|t| t > 0) => {
                    let total = detail.total.unwrap_or(0).max(0) as u64;
                    on_output(PushOutput::Layer {
                        id: total.to_string(),
                        current: detail.current.unwrap_or(0).max(0) as u64,
                        total,
                    });
                }
                _ => {
                    if let Some(status) = info.status {
                        on_output(PushOutput::Line(status));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Build output carries the terminal colours of `RUN` stderr; logs and
/// messages get the text alone.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters final-byte (a letter).
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// A push failure as the daemon words it, typed.
fn push_error(message: String) -> EngineError {
    let m = message.to_ascii_lowercase();
    let unauthorized = m.contains("unauthorized")
        || m.contains("authentication required")
        || m.contains("no basic auth credentials");
    match unauthorized {
        true => EngineError::Unauthorized(message),
        false => EngineError::Push(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ansi_colours_are_stripped() {
        assert_eq!(
            strip_ansi("\u{1b}[91m/bin/sh: x: not found"),
            "/bin/sh: x: not found"
        );
        assert_eq!(strip_ansi("\u{1b}[0mRemoving"), "Removing");
        assert_eq!(strip_ansi("plain"), "plain");
    }
}
