//! Registry logins from the Docker config, read the way the Docker CLI reads
//! them, and never written.
//!
//! The file is `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
//! For a registry host, the login comes from the first of these that has
//! one (<https://docs.docker.com/reference/cli/docker/login/#credential-stores>):
//!
//! 1. `credHelpers[host]`: the credential helper named for that host;
//! 2. `credsStore`: the credential store for every host;
//! 3. `auths[host]`: `auth` (base64 `user:password`) or `username` and
//!    `password` in the file itself.
//!
//! Helpers and stores run as `docker-credential-<name> get`, with the host
//! on standard input and a JSON `{"Username", "Secret"}` on standard output
//! (<https://github.com/docker/docker-credential-helpers>). One that says it
//! has no login for the host ("credentials not found") passes the question
//! on to the next source, where the Docker CLI would stop: a login in
//! `auths` is never ignored because a store is configured too.
//!
//! Keys may be written with or without a scheme and with a `/v1/` or
//! `/v2/` path (`https://index.docker.io/v1/`), as `docker login` writes
//! them. A file that does not exist means no login; a file that exists but
//! cannot be used (not JSON, an entry of the wrong shape, an `auth` that is
//! not base64, a helper that fails) is an error naming the file, never a
//! silent "no login". No error quotes a value from the file or a helper's
//! answer, since those are credentials.

use std::ffi::OsString;
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Map, Value};

use crate::secret::{Credentials, decode_basic};

/// Where a login came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoginSource {
    /// `credHelpers[host]`: the helper's name (`ecr-login` for
    /// `docker-credential-ecr-login`).
    Helper(String),
    /// `credsStore`: the store's name (`desktop`, `pass`, `osxkeychain`).
    Store(String),
    /// `auths[host]` in the file itself.
    Auths,
    /// No login for the host: requests go out anonymously.
    None,
}

impl fmt::Display for LoginSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoginSource::Helper(name) => write!(f, "credential helper docker-credential-{name}"),
            LoginSource::Store(name) => write!(f, "credential store docker-credential-{name}"),
            LoginSource::Auths => f.write_str("auths in the Docker config"),
            LoginSource::None => f.write_str("no login"),
        }
    }
}

/// The login for one host, and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DockerLogin {
    pub credentials: Option<Credentials>,
    pub source: LoginSource,
}

impl DockerLogin {
    fn none() -> DockerLogin {
        DockerLogin {
            credentials: None,
            source: LoginSource::None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DockerConfigError {
    #[error("reading the Docker config {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not JSON; `message` is the parser's, with line and column.
    #[error("the Docker config {} is not valid JSON: {message}", path.display())]
    Json { path: PathBuf, message: String },
    /// JSON, but an entry does not have the shape Docker writes.
    #[error("the Docker config {}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    /// A credential helper or store could not be run or failed.
    #[error(
        "the Docker config {} names docker-credential-{helper} for {host}, which failed: {message}",
        path.display()
    )]
    Helper {
        path: PathBuf,
        helper: String,
        host: String,
        message: String,
    },
}

/// A Docker config file, read once.
#[derive(Clone, Debug)]
pub struct DockerConfig {
    path: PathBuf,
    doc: Map<String, Value>,
    /// Where `docker-credential-*` programs are looked for; `None`: `PATH`.
    helper_dir: Option<PathBuf>,
}

/// The login for `host` from the user's Docker config
/// ([`DockerConfig::default_path`]); no config file means no login.
pub fn docker_login(host: &str) -> Result<DockerLogin, DockerConfigError> {
    match DockerConfig::load()? {
        Some(config) => config.login(host),
        None => Ok(DockerLogin::none()),
    }
}

/// `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
fn config_path(docker_config: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    match docker_config {
        Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir).join("config.json")),
        _ => home.map(|h| PathBuf::from(h).join(".docker").join("config.json")),
    }
}

/// A key of `auths` or `credHelpers` as a bare host: without scheme, path
/// `/v1/` or `/v2/`, or trailing slash.
fn key_host(key: &str) -> &str {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let key = key.trim_end_matches('/');
    key.strip_suffix("/v1")
        .or_else(|| key.strip_suffix("/v2"))
        .unwrap_or(key)
}

impl DockerConfig {
    /// Where the Docker CLI looks: `$DOCKER_CONFIG/config.json`, else
    /// `~/.docker/config.json`; `None` without either variable.
    pub fn default_path() -> Option<PathBuf> {
        config_path(std::env::var_os("DOCKER_CONFIG"), std::env::var_os("HOME"))
    }

    /// The config at [`DockerConfig::default_path`]; `None` when there is
    /// no such file.
    pub fn load() -> Result<Option<DockerConfig>, DockerConfigError> {
        match DockerConfig::default_path() {
            Some(path) => DockerConfig::read(path),
            None => Ok(None),
        }
    }

    /// The config at `path`; `None` when there is no such file.
    pub fn read(path: impl Into<PathBuf>) -> Result<Option<DockerConfig>, DockerConfigError> {
        let path = path.into();
        match std::fs::read_to_string(&path) {
            Ok(text) => DockerConfig::parse(path, &text).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(DockerConfigError::Read { path, source }),
        }
    }

    /// The config in `text`, read from `path` (named in errors).
    pub fn parse(path: impl Into<PathBuf>, text: &str) -> Result<DockerConfig, DockerConfigError> {
        let path = path.into();
        // serde_json's syntax errors name a line and column, never the text.
        let doc: Value = serde_json::from_str(text).map_err(|e| DockerConfigError::Json {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let Value::Object(doc) = doc else {
            return Err(DockerConfigError::Invalid {
                path,
                message: "the top level is not a JSON object".into(),
            });
        };
        Ok(DockerConfig {
            path,
            doc,
            helper_dir: None,
        })
    }

    /// Runs credential helpers from `dir` instead of looking them up on
    /// `PATH`.
    pub fn with_helper_dir(mut self, dir: impl Into<PathBuf>) -> DockerConfig {
        self.helper_dir = Some(dir.into());
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The Docker CLI context the file selects (`currentContext`), when it
    /// names one other than `default`.
    #[must_use]
    pub fn current_context(&self) -> Option<&str> {
        self.doc
            .get("currentContext")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty() && *c != "default")
    }

    /// The login for `host` (`host[:port]`): from `credHelpers[host]`, else
    /// `credsStore`, else `auths[host]`, else none.
    pub fn login(&self, host: &str) -> Result<DockerLogin, DockerConfigError> {
        if let Some(helper) = self.cred_helper(host)?
            && let Some(credentials) = self.run_helper(helper, host)?
        {
            return Ok(DockerLogin {
                credentials: Some(credentials),
                source: LoginSource::Helper(helper.to_string()),
            });
        }
        if let Some(store) = self.string("credsStore")?
            && let Some(credentials) = self.run_helper(store, host)?
        {
            return Ok(DockerLogin {
                credentials: Some(credentials),
                source: LoginSource::Store(store.to_string()),
            });
        }
        Ok(match self.in_auths(host)? {
            Some(credentials) => DockerLogin {
                credentials: Some(credentials),
                source: LoginSource::Auths,
            },
            None => DockerLogin::none(),
        })
    }

    fn invalid(&self, message: impl Into<String>) -> DockerConfigError {
        DockerConfigError::Invalid {
            path: self.path.clone(),
            message: message.into(),
        }
    }

    /// The top-level string `key`, if present and not empty.
    fn string(&self, key: &str) -> Result<Option<&str>, DockerConfigError> {
        match self.doc.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str()).filter(|s| !s.is_empty())),
            Some(_) => Err(self.invalid(format!("`{key}` is not a string"))),
        }
    }

    /// The top-level object `key`, if present.
    fn object(&self, key: &str) -> Result<Option<&Map<String, Value>>, DockerConfigError> {
        match self.doc.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(map)) => Ok(Some(map)),
            Some(_) => Err(self.invalid(format!("`{key}` is not an object"))),
        }
    }

    /// The entry of the object `key` whose key names `host`.
    fn entry(&self, key: &str, host: &str) -> Result<Option<(&str, &Value)>, DockerConfigError> {
        Ok(self.object(key)?.and_then(|map| {
            map.iter()
                .find(|(k, _)| key_host(k) == host)
                .map(|(k, v)| (k.as_str(), v))
        }))
    }

    fn cred_helper(&self, host: &str) -> Result<Option<&str>, DockerConfigError> {
        match self.entry("credHelpers", host)? {
            None => Ok(None),
            Some((_, Value::String(name))) if !name.is_empty() => Ok(Some(name)),
            Some((key, _)) => Err(self.invalid(format!(
                "`credHelpers.{key}` is not the name of a credential helper"
            ))),
        }
    }

    fn in_auths(&self, host: &str) -> Result<Option<Credentials>, DockerConfigError> {
        let Some((key, entry)) = self.entry("auths", host)? else {
            return Ok(None);
        };
        let Value::Object(entry) = entry else {
            return Err(self.invalid(format!("`auths.{key}` is not an object")));
        };
        let field = |name: &str| match entry.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str()).filter(|s| !s.is_empty())),
            Some(_) => Err(self.invalid(format!("`auths.{key}.{name}` is not a string"))),
        };
        if let Some(auth) = field("auth")? {
            return decode_basic(auth).map(Some).ok_or_else(|| {
                self.invalid(format!(
                    "`auths.{key}.auth` is not a base64 `user:password` pair"
                ))
            });
        }
        match (field("username")?, field("password")?) {
            (Some(user), Some(password)) => Ok(Some(Credentials::new(user, password))),
            (None, None) => Ok(None),
            _ => Err(self.invalid(format!(
                "`auths.{key}` has a username or a password, not both"
            ))),
        }
    }

    /// Runs `docker-credential-<name> get` for `host`: its login, or `None`
    /// when it has none for the host.
    fn run_helper(&self, name: &str, host: &str) -> Result<Option<Credentials>, DockerConfigError> {
        let fail = |message: String| DockerConfigError::Helper {
            path: self.path.clone(),
            helper: name.to_string(),
            host: host.to_string(),
            message,
        };
        let program = format!("docker-credential-{name}");
        let program = match &self.helper_dir {
            Some(dir) => dir.join(&program),
            None => PathBuf::from(&program),
        };
        let mut child = Command::new(&program)
            .arg("get")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => fail(format!(
                    "{} is not installed (not found on PATH); install it, or remove it from the Docker config's credsStore/credHelpers and `docker login {host}`",
                    program.display()
                )),
                _ => fail(format!("cannot run {}: {e}", program.display())),
            })?;
        if let Some(mut stdin) = child.stdin.take() {
            // A helper that exits without reading says why in its output.
            let _ = stdin.write_all(host.as_bytes());
        }
        let out = child
            .wait_with_output()
            .map_err(|e| fail(format!("waiting for {}: {e}", program.display())))?;
        if !out.status.success() {
            // Helpers report errors on stdout, some on stderr; neither
            // holds the secret when the helper failed.
            let said = format!(
                "{} {}",
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
            let said = said.trim();
            if said.to_ascii_lowercase().contains("credentials not found") {
                return Ok(None);
            }
            let said: String = said.chars().take(300).collect();
            return Err(fail(format!(
                "{}: {said}; `echo {host} | {} get` shows the same, and `docker login {host}` stores a new login",
                out.status,
                program.display()
            )));
        }
        // A successful answer holds the secret: errors describe its shape
        // only, never quote it.
        let answer: Value = serde_json::from_slice(&out.stdout)
            .map_err(|_| fail("its answer is not JSON".into()))?;
        let field = |name: &str| answer.get(name).and_then(Value::as_str);
        match (field("Username"), field("Secret")) {
            (_, None | Some("")) => Ok(None),
            (Some("<token>"), Some(_)) => Err(fail(
                "it holds an identity token (OAuth), which is not supported; log in with a user name and password or token".into(),
            )),
            (Some(user), Some(secret)) => Ok(Some(Credentials::new(user, secret))),
            (None, Some(_)) => Err(fail("its answer has a Secret but no Username".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> DockerConfig {
        DockerConfig::parse("/home/u/.docker/config.json", text).unwrap()
    }

    fn login(text: &str, host: &str) -> Result<DockerLogin, DockerConfigError> {
        config(text).login(host)
    }

    #[test]
    fn docker_config_auths() {
        let text = r#"{"auths":{"https://reg.example:5000/v2/":{"auth":"dTpwYXNz"},"other":{"username":"a","password":"b"}}}"#;
        let l = login(text, "reg.example:5000").unwrap();
        let c = l.credentials.unwrap();
        assert_eq!((c.username.as_str(), c.password.expose()), ("u", "pass"));
        assert_eq!(l.source, LoginSource::Auths);
        let other = login(text, "other").unwrap().credentials.unwrap();
        assert_eq!(other.username, "a");
        assert_eq!(login(text, "missing").unwrap(), DockerLogin::none());
    }

    #[test]
    fn keys_with_scheme_and_api_paths() {
        for key in [
            "reg.example",
            "reg.example/",
            "https://reg.example",
            "http://reg.example/v1/",
            "https://reg.example/v2",
        ] {
            assert_eq!(key_host(key), "reg.example", "{key}");
        }
        assert_eq!(key_host("https://index.docker.io/v1/"), "index.docker.io");
        assert_eq!(key_host("reg.example:5000/v2/"), "reg.example:5000");
    }

    #[test]
    fn empty_entries_are_no_login() {
        // What `docker login` leaves in `auths` when a store holds the login.
        let text = r#"{"auths":{"reg.example":{}, "b":{"auth":""}}}"#;
        assert_eq!(login(text, "reg.example").unwrap(), DockerLogin::none());
        assert_eq!(login(text, "b").unwrap(), DockerLogin::none());
        assert_eq!(login("{}", "b").unwrap(), DockerLogin::none());
    }

    #[test]
    fn malformed_config_is_an_error_naming_the_file() {
        let e = DockerConfig::parse("/cfg/config.json", r#"{"auths": {"#).unwrap_err();
        let message = e.to_string();
        assert!(
            message.starts_with("the Docker config /cfg/config.json is not valid JSON: "),
            "{message}"
        );
        assert!(message.contains("line 1"), "{message}");

        let e = DockerConfig::parse("/cfg/config.json", "[]").unwrap_err();
        assert!(e.to_string().contains("not a JSON object"), "{e}");
    }

    #[test]
    fn entries_of_the_wrong_shape_are_errors_without_their_values() {
        let cases = [
            (
                r#"{"auths":"c2VjcmV0OnZhbHVl"}"#,
                "`auths` is not an object",
            ),
            (
                r#"{"auths":{"h":"c2VjcmV0OnZhbHVl"}}"#,
                "`auths.h` is not an object",
            ),
            (
                r#"{"auths":{"h":{"auth":"c2VjcmV0dmFsdWU="}}}"#,
                "`auths.h.auth` is not a base64 `user:password` pair",
            ),
            (
                r#"{"auths":{"h":{"auth":12345}}}"#,
                "`auths.h.auth` is not a string",
            ),
            (
                r#"{"auths":{"h":{"username":"secretvalue"}}}"#,
                "`auths.h` has a username or a password, not both",
            ),
            (
                r#"{"credsStore":["secretvalue"]}"#,
                "`credsStore` is not a string",
            ),
            (
                r#"{"credHelpers":{"h":{"secretvalue":1}}}"#,
                "`credHelpers.h` is not the name of a credential helper",
            ),
        ];
        for (text, expected) in cases {
            let message = login(text, "h").unwrap_err().to_string();
            assert_eq!(
                message,
                format!("the Docker config /home/u/.docker/config.json: {expected}"),
            );
            assert!(!message.contains("secret"), "{message}");
            assert!(!message.contains("c2VjcmV0"), "{message}");
        }
    }

    #[test]
    fn other_hosts_entries_are_not_judged() {
        let text = r#"{"auths":{"broken":"x","h":{"auth":"dTpwYXNz"}}}"#;
        assert!(login(text, "h").unwrap().credentials.is_some());
    }

    #[test]
    fn config_path_follows_docker_config_then_home() {
        assert_eq!(
            config_path(Some("/cfg".into()), Some("/home/u".into())),
            Some(PathBuf::from("/cfg/config.json"))
        );
        assert_eq!(
            config_path(None, Some("/home/u".into())),
            Some(PathBuf::from("/home/u/.docker/config.json"))
        );
        assert_eq!(
            config_path(Some("".into()), Some("/home/u".into())),
            Some(PathBuf::from("/home/u/.docker/config.json"))
        );
        assert_eq!(config_path(None, None), None);
    }

    #[test]
    fn a_missing_file_is_no_login() {
        let path = std::env::temp_dir().join("oci-registry-no-such-dir/config.json");
        assert!(DockerConfig::read(path).unwrap().is_none());
    }

    #[test]
    fn sources_read_well() {
        assert_eq!(
            LoginSource::Helper("ecr-login".into()).to_string(),
            "credential helper docker-credential-ecr-login"
        );
        assert_eq!(
            LoginSource::Store("desktop".into()).to_string(),
            "credential store docker-credential-desktop"
        );
    }
}
