//! Docker config logins with real files and fake credential helpers (small
//! shell scripts), the way `docker-credential-*` programs are run.
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use oci_registry::{Credentials, DockerConfig, DockerConfigError, LoginSource};

/// The fake helpers, by name (`docker-credential-<name>`).
const HELPERS: &[(&str, &str)] = &[
    // A login for reg.example only, as real helpers answer.
    (
        "good",
        r#"host=$(cat)
if [ "$1" = get ] && [ "$host" = reg.example ]; then
  printf '{"ServerURL":"%s","Username":"helper-user","Secret":"helper-secret"}' "$host"
else
  echo "credentials not found in native keychain"; exit 1
fi"#,
    ),
    (
        "store",
        r#"host=$(cat)
if [ "$host" = store.example ]; then
  printf '{"ServerURL":"%s","Username":"store-user","Secret":"store-secret"}' "$host"
else
  echo "credentials not found in native keychain"; exit 1
fi"#,
    ),
    // Says what it was asked: its argument as Username, stdin as Secret.
    (
        "echo",
        r#"host=$(cat); printf '{"Username":"%s","Secret":"%s"}' "$1" "$host""#,
    ),
    (
        "broken",
        r#"cat >/dev/null; echo "error talking to the keychain" >&2; exit 2"#,
    ),
    (
        "oauth",
        r#"cat >/dev/null; printf '{"Username":"<token>","Secret":"identity-secret"}'"#,
    ),
    ("garbage", r#"cat >/dev/null; printf 'Secret: hunter2'"#),
];

/// The helpers' folder, written once before any test runs one: a script
/// still open for writing in this process cannot be executed (ETXTBSY).
fn helpers() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = scratch("helpers");
        for (name, body) in HELPERS {
            let path = dir.join(format!("docker-credential-{name}"));
            std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        dir
    })
}

/// A fresh folder for this test process.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("oci-registry-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn config(text: &str) -> DockerConfig {
    DockerConfig::parse("/home/u/.docker/config.json", text)
        .unwrap()
        .with_helper_dir(helpers())
}

fn login(text: &str, host: &str) -> (Option<(String, String)>, LoginSource) {
    let l = config(text).login(host).unwrap();
    let pair = l
        .credentials
        .map(|c| (c.username, c.password.expose().to_string()));
    (pair, l.source)
}

fn pair(user: &str, password: &str) -> Option<(String, String)> {
    Some((user.into(), password.into()))
}

const ALL_THREE: &str = r#"{
  "credHelpers": {"reg.example": "good"},
  "credsStore": "store",
  "auths": {"reg.example": {"auth": "dTpwYXNz"}, "store.example": {"auth": "dTpwYXNz"}, "plain.example": {"auth": "dTpwYXNz"}}
}"#;

#[test]
fn the_host_s_helper_comes_first() {
    assert_eq!(
        login(ALL_THREE, "reg.example"),
        (
            pair("helper-user", "helper-secret"),
            LoginSource::Helper("good".into())
        )
    );
}

#[test]
fn then_the_store() {
    assert_eq!(
        login(ALL_THREE, "store.example"),
        (
            pair("store-user", "store-secret"),
            LoginSource::Store("store".into())
        )
    );
}

#[test]
fn then_auths_when_helper_and_store_have_no_login() {
    assert_eq!(
        login(ALL_THREE, "plain.example"),
        (pair("u", "pass"), LoginSource::Auths)
    );
    assert_eq!(
        login(ALL_THREE, "nowhere.example"),
        (None, LoginSource::None)
    );
}

#[test]
fn a_helper_is_asked_with_get_and_the_host_on_stdin() {
    let text = r#"{"credHelpers": {"https://reg.example:5000/v2/": "echo"}}"#;
    assert_eq!(
        login(text, "reg.example:5000"),
        (
            pair("get", "reg.example:5000"),
            LoginSource::Helper("echo".into())
        )
    );
}

fn helper_error(text: &str, host: &str) -> String {
    let e = config(text).login(host).unwrap_err();
    assert!(matches!(e, DockerConfigError::Helper { .. }), "{e:?}");
    e.to_string()
}

#[test]
fn a_failing_helper_is_an_error_saying_why() {
    let message = helper_error(r#"{"credsStore": "broken"}"#, "reg.example");
    assert!(
        message.starts_with(
            "the Docker config /home/u/.docker/config.json names docker-credential-broken for reg.example, which failed: exit status: 2: error talking to the keychain; `echo reg.example | "
        ) && message.ends_with("docker-credential-broken get` shows the same, and `docker login reg.example` stores a new login"),
        "{message}"
    );
}

#[test]
fn a_missing_helper_is_an_error() {
    let message = helper_error(
        r#"{"credHelpers": {"reg.example": "nosuch"}}"#,
        "reg.example",
    );
    assert!(message.contains("docker-credential-nosuch"), "{message}");
    assert!(
        message.contains("is not installed (not found on PATH); install it")
            && message.ends_with("`docker login reg.example`"),
        "{message}"
    );
}

#[test]
fn helper_answers_are_never_quoted() {
    let message = helper_error(r#"{"credsStore": "garbage"}"#, "reg.example");
    assert!(
        message.ends_with("which failed: its answer is not JSON"),
        "{message}"
    );
    assert!(!message.contains("hunter2"));

    let message = helper_error(r#"{"credsStore": "oauth"}"#, "reg.example");
    assert!(message.contains("identity token"), "{message}");
    assert!(!message.contains("identity-secret"));
}

#[test]
fn a_config_file_is_read_and_never_written() {
    let dir = scratch("readonly");
    let path = dir.join("config.json");
    std::fs::write(&path, ALL_THREE).unwrap();
    let before = std::fs::metadata(&path).unwrap().modified().unwrap();
    let config = DockerConfig::read(&path)
        .unwrap()
        .unwrap()
        .with_helper_dir(helpers());
    assert_eq!(config.path(), path);
    for host in ["reg.example", "store.example", "plain.example", "none"] {
        config.login(host).unwrap();
    }
    assert_eq!(std::fs::read_to_string(&path).unwrap(), ALL_THREE);
    assert_eq!(
        std::fs::metadata(&path).unwrap().modified().unwrap(),
        before
    );
    let entries: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(entries.len(), 1, "nothing written next to it");
}

#[test]
fn a_malformed_file_is_an_error_naming_it() {
    let dir = scratch("malformed");
    let path = dir.join("config.json");
    std::fs::write(
        &path,
        "{\n  \"auths\": {\"reg.example\": {\"auth\": \"dTpwYXNz\"}\n",
    )
    .unwrap();
    let e = DockerConfig::read(&path).unwrap_err();
    assert!(matches!(e, DockerConfigError::Json { .. }), "{e:?}");
    let message = e.to_string();
    assert!(
        message.starts_with(&format!(
            "the Docker config {} is not valid JSON: EOF while parsing an object at line 3",
            path.display()
        )),
        "{message}"
    );
    assert!(!message.contains("dTpwYXNz"));
}

#[test]
fn credentials_are_usable_as_basic_auth() {
    let c = config(ALL_THREE)
        .login("plain.example")
        .unwrap()
        .credentials;
    assert_eq!(c, Some(Credentials::new("u", "pass")));
}
