//! Registry credentials for one run: where they come from, and the one
//! refresh allowed after an authentication failure.
//!
//! ECR tokens come from one `GetAuthorizationToken` per run, shared by every
//! push and manifest request. A 401 refreshes them once; a second 401 is an
//! error, never a loop (moto's tokens say they expired in 2015, so the
//! expiry time is not trusted to decide anything). Without ECR, credentials
//! come from the Docker config's `auths` (read, never written), or none.

use std::path::PathBuf;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use base64::Engine as _;

use crate::secret::{Credentials, Secret};

/// Fetches fresh credentials (ECR's `GetAuthorizationToken`).
#[async_trait]
pub trait Refresh: Send + Sync {
    async fn refresh(&self) -> Result<Credentials, String>;
}

pub struct Auth {
    current: RwLock<Option<Credentials>>,
    source: Option<Box<dyn Refresh>>,
    refreshed: AtomicBool,
}

impl Auth {
    pub fn new(credentials: Option<Credentials>, source: Option<Box<dyn Refresh>>) -> Auth {
        Auth {
            current: RwLock::new(credentials),
            source,
            refreshed: AtomicBool::new(false),
        }
    }

    pub fn credentials(&self) -> Option<Credentials> {
        self.current.read().expect("auth lock").clone()
    }

    /// After an authentication failure: fetches new credentials, once per
    /// run. Returns whether the caller should try again.
    pub async fn refresh_once(&self) -> bool {
        let Some(source) = &self.source else {
            return false;
        };
        if self.refreshed.swap(true, Ordering::SeqCst) {
            return false;
        }
        match source.refresh().await {
            Ok(creds) => {
                *self.current.write().expect("auth lock") = Some(creds);
                true
            }
            Err(_) => false,
        }
    }
}

/// Decodes a base64 `user:password` pair, as ECR tokens and Docker config
/// `auth` fields are written.
pub fn decode_basic(encoded: &str) -> Option<Credentials> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (user, password) = text.split_once(':')?;
    Some(Credentials {
        username: user.to_string(),
        password: Secret::new(password),
    })
}

/// The Docker config file: `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`.
fn docker_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json"))
}

/// The credentials for `host` in the Docker config's `auths`, if any.
/// Credential helpers (`credsStore`) are not run; see the README.
pub fn from_docker_config(host: &str) -> Option<Credentials> {
    let text = std::fs::read_to_string(docker_config_path()?).ok()?;
    lookup_docker_config(&text, host)
}

fn lookup_docker_config(text: &str, host: &str) -> Option<Credentials> {
    let doc: serde_json::Value = serde_json::from_str(text).ok()?;
    let auths = doc.get("auths")?.as_object()?;
    let entry = auths.iter().find_map(|(key, value)| {
        let key = key
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .trim_end_matches("/v1")
            .trim_end_matches("/v2");
        (key == host).then_some(value)
    })?;
    if let Some(auth) = entry.get("auth").and_then(|a| a.as_str()) {
        return decode_basic(auth);
    }
    let user = entry.get("username")?.as_str()?;
    let password = entry.get("password")?.as_str()?;
    Some(Credentials {
        username: user.to_string(),
        password: Secret::new(password),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn docker_config_auths() {
        let text = r#"{"auths":{"https://reg.example:5000/v2/":{"auth":"dTpwYXNz"},"other":{"username":"a","password":"b"}}}"#;
        let c = lookup_docker_config(text, "reg.example:5000").unwrap();
        assert_eq!((c.username.as_str(), c.password.expose()), ("u", "pass"));
        assert_eq!(lookup_docker_config(text, "other").unwrap().username, "a");
        assert!(lookup_docker_config(text, "missing").is_none());
    }

    struct Counting(AtomicUsize);

    #[async_trait]
    impl Refresh for &'static Counting {
        async fn refresh(&self) -> Result<Credentials, String> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(Credentials {
                username: "AWS".into(),
                password: Secret::new("new"),
            })
        }
    }

    #[tokio::test]
    async fn refreshes_once_never_in_a_loop() {
        static COUNT: Counting = Counting(AtomicUsize::new(0));
        let auth = Auth::new(None, Some(Box::new(&COUNT)));
        assert!(auth.refresh_once().await);
        assert!(!auth.refresh_once().await);
        assert!(!auth.refresh_once().await);
        assert_eq!(COUNT.0.load(Ordering::SeqCst), 1);
        assert_eq!(auth.credentials().unwrap().password.expose(), "new");
    }
}
