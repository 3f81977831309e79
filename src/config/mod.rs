//! `pipeline.yaml`: parsed once into plain types, with every value that a later
//! check may reject kept together with its line and column.
//!
//! The file is read with `serde-saphyr` (see the README for why not
//! `serde_yaml`): `deny_unknown_fields` gives unknown keys with their line and
//! column, and `Spanned` keeps the position of paths, names and tags so that
//! discovery can say "pipeline.yaml:12:14: context `../x` escapes the repo root"
//! long after parsing.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

/// A position in the config file, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Loc {
    pub(crate) line: u64,
    pub(crate) column: u64,
}

/// A value from the config file together with where it was written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct At<T> {
    pub(crate) value: T,
    pub(crate) loc: Loc,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for At<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<T>::deserialize(d)?;
        let loc = Loc {
            line: spanned.referenced.line(),
            column: spanned.referenced.column(),
        };
        Ok(At {
            value: spanned.value,
            loc,
        })
    }
}

/// A config error: the file, where in it, and what to do.
#[derive(Debug, thiserror::Error)]
pub(crate) struct ConfigError {
    pub(crate) file: PathBuf,
    pub(crate) loc: Option<Loc>,
    pub(crate) message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.loc {
            Some(loc) => write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                loc.line,
                loc.column,
                self.message
            ),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EcrSettings {
    pub(crate) region: Option<String>,
    pub(crate) account: Option<At<String>>,
    #[serde(default)]
    pub(crate) create_repositories: CreateRepositories,
}

impl EcrSettings {
    /// How to create a missing repository; `None` when missing ones are errors.
    pub(crate) fn create(&self) -> Option<NewRepository> {
        match &self.create_repositories {
            CreateRepositories::Enabled(false) => None,
            CreateRepositories::Enabled(true) => Some(NewRepository::default()),
            CreateRepositories::With(settings) => Some(*settings),
        }
    }
}

/// `create_repositories: true | false | {tag_mutability, scan_on_push}`.
#[derive(Debug, Clone)]
pub(crate) enum CreateRepositories {
    Enabled(bool),
    With(NewRepository),
}

/// By hand rather than `untagged`, so that a mistake inside the mapping is
/// reported with its key (`unknown field tag_mutabilty`) instead of "did
/// not match any variant".
impl<'de> Deserialize<'de> for CreateRepositories {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = CreateRepositories;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "true, false, or a mapping with tag_mutability (MUTABLE or IMMUTABLE) and scan_on_push",
                )
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(CreateRepositories::Enabled(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                NewRepository::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(CreateRepositories::With)
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl Default for CreateRepositories {
    fn default() -> Self {
        CreateRepositories::Enabled(true)
    }
}

/// Settings of the ECR repositories the tool creates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewRepository {
    #[serde(default)]
    pub(crate) tag_mutability: TagMutability,
    #[serde(default)]
    pub(crate) scan_on_push: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub(crate) enum TagMutability {
    #[default]
    #[serde(rename = "MUTABLE")]
    Mutable,
    #[serde(rename = "IMMUTABLE")]
    Immutable,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegistrySettings {
    pub(crate) ecr: Option<EcrSettings>,
    pub(crate) host: Option<At<String>>,
    #[serde(default)]
    pub(crate) repository_prefix: Option<At<String>>,
}

/// Declares the per-service keys once: the struct (also the shape of
/// `defaults`), and how a service's settings fall back to the defaults key
/// by key. A new key is one line here.
macro_rules! service_settings {
    ($($(#[$doc:meta])* $key:ident: $type:ty,)*) => {
        /// The per-service keys; also the shape of `defaults`.
        #[derive(Debug, Clone, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(crate) struct ServiceSettings {
            $($(#[$doc])* pub $key: Option<$type>,)*
        }

        impl ServiceSettings {
            /// `self` with every key it leaves unset taken from `defaults`.
            pub(crate) fn or(&self, defaults: &ServiceSettings) -> ServiceSettings {
                ServiceSettings {
                    $($key: self.$key.clone().or_else(|| defaults.$key.clone()),)*
                }
            }
        }
    };
}

service_settings! {
    /// The service's folder, when it is not `services_dir/<name>` (a nested
    /// folder gets a name of its own this way).
    folder: At<String>,
    dockerfile: At<String>,
    context: At<String>,
    target: String,
    build_args: BTreeMap<String, String>,
    requires: Vec<At<String>>,
    platform: At<String>,
    repository: At<String>,
    /// `auto`, `buildkit` or `classic`; default `build.builder`.
    builder: Builder,
    /// The network of `RUN` steps; default `build.network`.
    network: Network,
    /// Build secrets by id, served to `RUN --mount=type=secret,id=…`.
    secrets: BTreeMap<String, At<SecretSource>>,
}

/// How pushes and registry requests are retried on transient errors.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PushSettings {
    /// Retries after the first attempt.
    #[serde(default = "default_retries")]
    pub(crate) retries: u32,
    /// No retry starts later than this after the first attempt: `90s`,
    /// `2m`, `1m30s`.
    #[serde(default = "default_retry_window")]
    pub(crate) retry_window: At<String>,
}

fn default_retries() -> u32 {
    5
}

fn default_retry_window() -> At<String> {
    At {
        value: "2m".into(),
        loc: Loc::default(),
    }
}

impl Default for PushSettings {
    fn default() -> Self {
        PushSettings {
            retries: default_retries(),
            retry_window: default_retry_window(),
        }
    }
}

/// `90s`, `2m`, `1m30s`, `500ms`.
pub(crate) fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let mut total = std::time::Duration::ZERO;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        let (number, tail) = rest.split_at(digits);
        let number: u64 = number.parse().ok()?;
        let unit = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit);
        total += match unit {
            "ms" => std::time::Duration::from_millis(number),
            "s" => std::time::Duration::from_secs(number),
            "m" => std::time::Duration::from_secs(number * 60),
            "h" => std::time::Duration::from_secs(number * 3600),
            _ => return None,
        };
        rest = tail;
    }
    Some(total)
}

impl PushSettings {
    /// The retry policy these settings describe (checked at load).
    pub(crate) fn policy(&self) -> oci_registry::RetryPolicy {
        oci_registry::RetryPolicy {
            retries: self.retries,
            window: parse_duration(&self.retry_window.value)
                .unwrap_or(std::time::Duration::from_secs(120)),
            ..oci_registry::RetryPolicy::default()
        }
    }
}

/// One Docker engine of the pool (`builders:`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BuilderSettings {
    /// `unix:///var/run/docker.sock` or `tcp://build-2.internal:2376`.
    pub(crate) host: At<String>,
    /// TLS for a `tcp://` engine: a folder holding `ca.pem`, `cert.pem` and
    /// `key.pem` (as `DOCKER_CERT_PATH`), or the three files.
    pub(crate) tls: Option<At<TlsSetting>>,
    /// Builds at once on this engine (default `build.jobs`).
    pub(crate) jobs: Option<At<usize>>,
    /// The platforms it builds (`linux/arm64`); a service with `platform:`
    /// goes only to builders that list it, or that list none.
    #[serde(default)]
    pub(crate) platforms: Vec<String>,
}

/// Where a builder's TLS material is, relative to the repo root.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub(crate) enum TlsSetting {
    Folder(String),
    Files {
        ca: String,
        cert: String,
        key: String,
    },
}

/// How services are found under `services_dir`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DiscoverSettings {
    /// How deep service folders may be nested: 1 is `services/<name>`, 2
    /// also `services/<group>/<name>` (named `<group>-<name>`).
    #[serde(default = "default_depth")]
    pub(crate) depth: At<usize>,
}

fn default_depth() -> At<usize> {
    At {
        value: 1,
        loc: Loc::default(),
    }
}

impl Default for DiscoverSettings {
    fn default() -> Self {
        DiscoverSettings {
            depth: default_depth(),
        }
    }
}

/// Which builder of the engine builds an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Builder {
    /// BuildKit when the engine offers it (a Linux engine, API 1.39 or
    /// later), else the classic builder.
    #[default]
    Auto,
    #[serde(rename = "buildkit")]
    BuildKit,
    Classic,
}

impl Builder {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Builder::Auto => "auto",
            Builder::BuildKit => "buildkit",
            Builder::Classic => "classic",
        }
    }
}

/// The network `RUN` steps get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Network {
    /// The engine's default (its bridge network).
    #[default]
    Default,
    Host,
    None,
}

impl Network {
    /// The engine's `networkmode` for this setting; `None` for its default.
    pub(crate) fn mode(self) -> Option<&'static str> {
        match self {
            Network::Default => None,
            Network::Host => Some("host"),
            Network::None => Some("none"),
        }
    }
}

/// Where a build secret's value comes from: exactly one of an environment
/// variable or a file (`~/` is the home folder). The value is read when a
/// run starts and never stored.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SecretSource {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) env: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) file: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BuildSettings {
    #[serde(default = "default_jobs")]
    pub(crate) jobs: At<usize>,
    #[serde(default = "default_push_jobs")]
    pub(crate) push_jobs: At<usize>,
    #[serde(default)]
    pub(crate) labels: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) builder: Builder,
    #[serde(default)]
    pub(crate) network: Network,
}

fn default_jobs() -> At<usize> {
    At {
        value: 2,
        loc: Loc::default(),
    }
}

fn default_push_jobs() -> At<usize> {
    At {
        value: 4,
        loc: Loc::default(),
    }
}

impl Default for BuildSettings {
    fn default() -> Self {
        BuildSettings {
            jobs: default_jobs(),
            push_jobs: default_push_jobs(),
            labels: BTreeMap::new(),
            builder: Builder::default(),
            network: Network::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub(crate) enum Pin {
    #[default]
    #[serde(rename = "digest")]
    Digest,
    #[serde(rename = "tag+digest")]
    TagAndDigest,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HelmTarget {
    pub(crate) values: At<String>,
    /// Dotted path to a service's image, usually with `{service}`.
    pub(crate) image_path: At<String>,
    /// The services this values file deploys (default: every service); each
    /// must have `image_path` in the file.
    #[serde(default)]
    pub(crate) services: Option<Vec<At<String>>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ManifestSettings {
    #[serde(default)]
    pub(crate) kustomize: Vec<At<String>>,
    #[serde(default)]
    pub(crate) helm: Vec<HelmTarget>,
    #[serde(default)]
    pub(crate) raw: Vec<At<String>>,
    #[serde(default)]
    pub(crate) pin: Pin,
    /// A patch warning fails the run (exit 1), as `patch --strict` does.
    #[serde(default)]
    pub(crate) strict: bool,
}

impl ManifestSettings {
    /// Whether any manifest is configured for patching.
    pub(crate) fn configured(&self) -> bool {
        !(self.kustomize.is_empty() && self.helm.is_empty() && self.raw.is_empty())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    version: At<u32>,
    #[serde(default)]
    registry: RegistrySettings,
    services_dir: Option<At<String>>,
    #[serde(default)]
    discover: DiscoverSettings,
    #[serde(default)]
    push: PushSettings,
    #[serde(default)]
    defaults: ServiceSettings,
    #[serde(default)]
    services: BTreeMap<String, At<ServiceSettings>>,
    #[serde(default)]
    tags: Vec<At<String>>,
    #[serde(default)]
    build: BuildSettings,
    #[serde(default)]
    manifests: ManifestSettings,
    #[serde(default)]
    builders: Vec<At<BuilderSettings>>,
}

/// The whole of `pipeline.yaml`, checked for shape but not yet against the
/// file system (that is discovery's job).
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// The folder that holds pipeline.yaml; every path is relative to it.
    pub(crate) root: PathBuf,
    /// The config file as the user named it, for messages.
    pub(crate) file: PathBuf,
    pub(crate) registry: RegistrySettings,
    pub(crate) services_dir: At<String>,
    pub(crate) discover: DiscoverSettings,
    pub(crate) push: PushSettings,
    pub(crate) defaults: ServiceSettings,
    pub(crate) services: BTreeMap<String, At<ServiceSettings>>,
    pub(crate) tags: Vec<At<String>>,
    pub(crate) build: BuildSettings,
    pub(crate) manifests: ManifestSettings,
    /// The pool of engines; empty: the engine the environment names.
    pub(crate) builders: Vec<At<BuilderSettings>>,
}

impl Config {
    /// Reads and checks `file`.
    pub(crate) fn load(file: &Path) -> Result<Config, ConfigError> {
        let bytes = std::fs::read(file).map_err(|e| ConfigError {
            file: file.to_path_buf(),
            loc: None,
            message: format!("cannot read the config file: {e}; run pipeline in the repo root or pass -C DIR / --config FILE"),
        })?;
        let text = String::from_utf8(bytes).map_err(|e| {
            // Where the bad byte is, in the terms editors use.
            let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = good.iter().filter(|b| **b == b'\n').count() + 1;
            let column =
                good.len() - good.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1) + 1;
            ConfigError {
                file: file.to_path_buf(),
                loc: Some(Loc {
                    line: line as u64,
                    column: column as u64,
                }),
                message: format!(
                    "byte {} is not valid UTF-8; save the file as UTF-8",
                    good.len()
                ),
            }
        })?;
        Config::parse(file, &text)
    }

    /// Parses `text` as the contents of `file`.
    pub(crate) fn parse(file: &Path, text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = serde_saphyr::from_str(text).map_err(|e| {
            let loc = e.location().map(|l| Loc {
                line: l.line(),
                column: l.column(),
            });
            // The message without the source snippet: the location is ours.
            let message = e.without_snippet().to_string();
            let mut message = strip_location_prefix(&message);
            if let Some(path) = loc.and_then(|l| key_path_at(text, l)) {
                message = format!("{path}: {message}");
            }
            ConfigError {
                file: file.to_path_buf(),
                loc,
                message,
            }
        })?;
        let root = file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let config = Config {
            root,
            file: file.to_path_buf(),
            registry: raw.registry,
            discover: raw.discover,
            push: raw.push,
            services_dir: raw.services_dir.unwrap_or(At {
                value: "services".into(),
                loc: Loc::default(),
            }),
            defaults: raw.defaults,
            services: raw.services,
            tags: raw.tags,
            build: raw.build,
            manifests: raw.manifests,
            builders: raw.builders,
        };
        if raw.version.value != 1 {
            return Err(config.error(
                raw.version.loc,
                format!(
                    "unsupported version {}; this pipeline reads version: 1",
                    raw.version.value
                ),
            ));
        }
        config.check()?;
        Ok(config)
    }

    /// An error at `loc` in this config file.
    pub(crate) fn error(&self, loc: Loc, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.clone(),
            loc: (loc != Loc::default()).then_some(loc),
            message: message.into(),
        }
    }

    fn check(&self) -> Result<(), ConfigError> {
        let window = &self.push.retry_window;
        if parse_duration(&window.value).is_none() {
            return Err(self.error(
                window.loc,
                format!(
                    "push.retry_window `{}` is not a duration: write it like 90s, 2m or 1m30s",
                    window.value
                ),
            ));
        }
        let depth = &self.discover.depth;
        if !(1..=8).contains(&depth.value) {
            return Err(self.error(
                depth.loc,
                format!("discover.depth {} must be between 1 and 8", depth.value),
            ));
        }
        for (key, jobs) in [
            ("build.jobs", &self.build.jobs),
            ("build.push_jobs", &self.build.push_jobs),
        ] {
            if jobs.value == 0 {
                return Err(self.error(jobs.loc, format!("{key} must be at least 1")));
            }
        }
        if let Some(host) = &self.registry.host
            && (host.value.is_empty() || host.value.contains('/') || host.value.contains("://"))
        {
            return Err(self.error(
                host.loc,
                format!(
                    "registry.host `{}` must be a bare host[:port], like 127.0.0.1:5000",
                    host.value
                ),
            ));
        }
        if self.registry.ecr.is_none() && self.registry.host.is_none() {
            return Err(self.error(
                Loc::default(),
                "no registry configured: set registry.ecr (ECR) and/or registry.host (a plain OCI registry)",
            ));
        }
        if let Some(account) = self.registry.ecr.as_ref().and_then(|e| e.account.as_ref())
            && (account.value.len() != 12 || !account.value.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(self.error(
                account.loc,
                format!(
                    "registry.ecr.account `{}` is not a 12-digit AWS account id (quote it: \"123456789012\")",
                    account.value
                ),
            ));
        }
        for tag in &self.tags {
            crate::plan::tags::check_template(&tag.value).map_err(|m| self.error(tag.loc, m))?;
        }
        self.check_builders()
    }

    fn check_builders(&self) -> Result<(), ConfigError> {
        let mut seen: Vec<&str> = Vec::new();
        for b in &self.builders {
            let host = &b.value.host;
            let tcp = host.value.starts_with("tcp://");
            if !tcp && !host.value.starts_with("unix://") {
                return Err(self.error(
                    host.loc,
                    format!(
                        "builders: host `{}` must be unix:///path/to/docker.sock or tcp://host:port",
                        host.value
                    ),
                ));
            }
            if seen.contains(&host.value.as_str()) {
                return Err(self.error(
                    host.loc,
                    format!("builders: host `{}` is listed twice", host.value),
                ));
            }
            seen.push(&host.value);
            if let Some(tls) = &b.value.tls
                && !tcp
            {
                return Err(self.error(
                    tls.loc,
                    format!(
                        "builders: tls is for tcp:// engines; `{}` is a socket",
                        host.value
                    ),
                ));
            }
            if let Some(jobs) = &b.value.jobs
                && jobs.value == 0
            {
                return Err(self.error(jobs.loc, "builders: jobs must be at least 1"));
            }
        }
        // A service's platform must have a builder that builds it.
        let offered: Option<Vec<&str>> = (!self.builders.is_empty()
            && self.builders.iter().all(|b| !b.value.platforms.is_empty()))
        .then(|| {
            self.builders
                .iter()
                .flat_map(|b| b.value.platforms.iter().map(String::as_str))
                .collect()
        });
        if let Some(offered) = offered {
            let settings = self
                .services
                .iter()
                .map(|(name, s)| (name.as_str(), s.value.platform.as_ref()))
                .chain([("defaults", self.defaults.platform.as_ref())]);
            for (name, platform) in settings {
                if let Some(p) = platform
                    && !offered.contains(&p.value.as_str())
                {
                    return Err(self.error(
                        p.loc,
                        format!(
                            "{name}: platform `{}` is built by none of the builders (they list {}); add it to a builder's platforms",
                            p.value,
                            offered.join(", ")
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The repository prefix (`shop/`), empty when unset.
    pub(crate) fn repository_prefix(&self) -> &str {
        self.registry
            .repository_prefix
            .as_ref()
            .map(|p| p.value.as_str())
            .unwrap_or("")
    }
}

/// The dotted key path (`build.jobs`) of the block-style mapping entry on
/// the line of `loc`, found by walking up to less-indented keys. Parse errors
/// name a position; people think in keys.
fn key_path_at(text: &str, loc: Loc) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let key_of = |line: &str| -> Option<(usize, String)> {
        let indent = line.len() - line.trim_start().len();
        let body = line.trim_start().trim_start_matches("- ");
        let (key, _) = body.split_once(':')?;
        let key = key.trim().trim_matches(['"', '\'']);
        let plain = !key.is_empty() && !key.starts_with('#') && !key.contains([' ', '{', '[', ',']);
        plain.then(|| (indent, key.to_string()))
    };
    let index = usize::try_from(loc.line).ok()?.checked_sub(1)?;
    let (mut indent, key) = key_of(lines.get(index)?)?;
    let mut path = vec![key];
    for line in lines[..index].iter().rev() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        if let Some((i, k)) = key_of(line)
            && i < indent
        {
            path.push(k);
            indent = i;
            if i == 0 {
                break;
            }
        }
    }
    path.reverse();
    Some(path.join("."))
}

/// serde-saphyr's message starts with `error: line L column C: ` and may
/// end with ` at line L, column C`; we print the location ourselves, as
/// `file:L:C:`.
fn strip_location_prefix(message: &str) -> String {
    let mut m = message.strip_prefix("error: ").unwrap_or(message);
    if let Some(rest) = m.strip_prefix("line ")
        && let Some(idx) = rest.find(": ")
        && rest[..idx].contains("column")
    {
        m = &rest[idx + 2..];
    }
    if let Some(idx) = m.rfind(" at line ")
        && m[idx..].contains(", column ")
    {
        m = &m[..idx];
    }
    m.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("pipeline.yaml"), text)
    }

    const MINIMAL: &str = "version: 1\nregistry:\n  host: 127.0.0.1:5000\n";

    #[test]
    fn minimal_config_has_defaults() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.services_dir.value, "services");
        assert_eq!(c.build.jobs.value, 2);
        assert_eq!(c.build.push_jobs.value, 4);
        assert_eq!(c.manifests.pin, Pin::Digest);
        assert_eq!(c.repository_prefix(), "");
    }

    #[test]
    fn unknown_key_names_key_line_and_column() {
        let e = parse(
            "version: 1\nregistry:\n  host: 127.0.0.1:5000\nservices:\n  api:\n    contxt: x\n",
        )
        .unwrap_err();
        assert_eq!(e.loc, Some(Loc { line: 6, column: 5 }));
        let text = e.to_string();
        assert!(text.starts_with("pipeline.yaml:6:5: "), "{text}");
        assert!(text.contains("unknown field `contxt`"), "{text}");
        assert!(
            !text.contains("at line"),
            "the location is said once: {text}"
        );
    }

    #[test]
    fn unknown_top_level_key() {
        let e = parse("version: 1\nregistry:\n  host: h:1\nservics: {}\n").unwrap_err();
        assert_eq!(e.loc.map(|l| l.line), Some(4));
        assert!(e.message.contains("servics"), "{}", e.message);
    }

    #[test]
    fn wrong_type_is_an_error_with_position() {
        let e = parse("version: 1\nregistry:\n  host: h:1\nbuild:\n  jobs: many\n").unwrap_err();
        assert_eq!(e.loc, Some(Loc { line: 5, column: 9 }));
        assert!(e.message.starts_with("build.jobs: "), "names the key: {e}");
        let e = parse("version: 1\nregistry:\n  host: h:1\nservices:\n  a:\n    requires: b\n")
            .unwrap_err();
        assert_eq!(e.loc.map(|l| l.line), Some(6), "{e}");
    }

    #[test]
    fn bad_values_are_rejected() {
        let e = parse("version: 2\nregistry:\n  host: h:1\n").unwrap_err();
        assert!(e.to_string().contains("unsupported version 2"), "{e}");
        let e = parse("version: 1\nregistry:\n  host: https://h\n").unwrap_err();
        assert!(e.to_string().contains("bare host"), "{e}");
        let e = parse("version: 1\nregistry:\n  ecr:\n    account: 1234\n").unwrap_err();
        assert!(e.to_string().starts_with("pipeline.yaml:4:14"), "{e}");
        let e = parse("version: 1\nregistry:\n  host: h:1\nbuild:\n  jobs: 0\n").unwrap_err();
        assert!(e.to_string().contains("at least 1"), "{e}");
        let e = parse("version: 1\n").unwrap_err();
        assert!(e.to_string().contains("no registry configured"), "{e}");
        let e = parse("version: 1\nregistry:\n  host: h:1\nmanifests:\n  pin: tag\n").unwrap_err();
        assert_eq!(e.loc.map(|l| l.line), Some(5), "{e}");
    }

    #[test]
    fn create_repositories_takes_a_bool_or_settings() {
        let ecr = |v: &str| {
            parse(&format!(
                "version: 1\nregistry:\n  ecr:\n    region: r\n    create_repositories: {v}\n"
            ))
            .map(|c| c.registry.ecr.unwrap().create())
        };
        assert_eq!(ecr("true").unwrap(), Some(NewRepository::default()));
        assert_eq!(ecr("false").unwrap(), None);
        assert_eq!(
            ecr("{tag_mutability: IMMUTABLE, scan_on_push: true}").unwrap(),
            Some(NewRepository {
                tag_mutability: TagMutability::Immutable,
                scan_on_push: true
            })
        );
        let e = ecr("{tag_mutabilty: IMMUTABLE}").unwrap_err().to_string();
        assert!(
            e.starts_with("pipeline.yaml:5:") && e.contains("tag_mutabilty"),
            "{e}"
        );
        let e = ecr("{tag_mutability: immutable}").unwrap_err().to_string();
        assert!(e.contains("MUTABLE, IMMUTABLE"), "{e}");
    }

    #[test]
    fn bad_tag_template_names_its_line() {
        let e =
            parse("version: 1\nregistry:\n  host: h:1\ntags: [latest, \"{nope}\"]\n").unwrap_err();
        assert_eq!(e.loc.map(|l| l.line), Some(4));
        assert!(e.message.contains("{nope}"), "{}", e.message);
    }

    #[test]
    fn builders_are_checked_at_their_line() {
        let head = "version: 1\nregistry:\n  host: h:1\n";
        let ok = parse(&format!(
            "{head}builders:\n  - host: unix:///var/run/docker.sock\n    jobs: 2\n  - host: tcp://b:2376\n    tls: certs/b\n  - host: tcp://c:2376\n    tls: {{ca: c/ca.pem, cert: c/cert.pem, key: c/key.pem}}\n    platforms: [linux/arm64]\n"
        ))
        .unwrap();
        assert_eq!(ok.builders.len(), 3);
        assert_eq!(
            ok.builders[1].value.tls.as_ref().unwrap().value,
            TlsSetting::Folder("certs/b".into())
        );
        for (builders, line, says) in [
            (
                "  - host: ssh://me@b\n",
                5,
                "must be unix:///path/to/docker.sock or tcp://host:port",
            ),
            (
                "  - host: unix:///a.sock\n    tls: certs\n",
                6,
                "tls is for tcp:// engines",
            ),
            (
                "  - host: tcp://b:1\n    jobs: 0\n",
                6,
                "jobs must be at least 1",
            ),
            (
                "  - host: tcp://b:1\n  - host: tcp://b:1\n",
                6,
                "listed twice",
            ),
        ] {
            let e = parse(&format!("{head}builders:\n{builders}")).unwrap_err();
            assert_eq!(e.loc.map(|l| l.line), Some(line), "{e}");
            assert!(e.message.contains(says), "{e}");
        }
        // A platform no builder lists is named at the service's line.
        let e = parse(&format!(
            "{head}builders:\n  - host: tcp://b:1\n    platforms: [linux/amd64]\nservices:\n  api:\n    platform: linux/arm64\n"
        ))
        .unwrap_err();
        assert_eq!(e.loc.map(|l| l.line), Some(9), "{e}");
        assert!(
            e.message
                .contains("api: platform `linux/arm64` is built by none of the builders"),
            "{e}"
        );
    }

    #[test]
    fn per_service_settings_fall_back_to_defaults() {
        let c = parse(
            "version: 1\nregistry:\n  host: h:1\ndefaults:\n  context: .\n  target: prod\nservices:\n  a:\n    target: dev\n",
        )
        .unwrap();
        let a = c.services["a"].value.or(&c.defaults);
        assert_eq!(a.context.unwrap().value, ".");
        assert_eq!(a.target.as_deref(), Some("dev"));
    }
}
