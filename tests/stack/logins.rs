//! Logins and engines the way users have them: credential helpers and
//! stores named by the Docker config, and Docker CLI contexts.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::common::*;

/// A repo pushing to the plain registry (no ECR), with a Docker config of
/// its own in `docker/`.
fn plain_repo(name: &str, docker_config: &str) -> Repo {
    let r = Repo::new(name);
    r.file(
        "pipeline.yaml",
        &format!(
            "version: 1\nregistry:\n  host: {}\n  repository_prefix: {}\ntags: [latest]\nbuild:\n  network: host\n",
            registry(),
            r.prefix
        ),
    )
    .file("services/app/Dockerfile", "FROM local/busybox:1\nCOPY a.txt /\n")
    .file("services/app/a.txt", &format!("{}\n", r.prefix))
    .file("docker/config.json", docker_config);
    r.commit();
    r
}

/// A `docker-credential-<name>` in `dir` that logs each call to
/// `dir/<name>.log` and answers with the stack registry's login.
fn fake_helper(dir: &Path, name: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(format!("docker-credential-{name}"));
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nread host\necho \"$1 $host\" >> {log}\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"{user}\",\"Secret\":\"{password}\"}}' \"$host\"\n",
            log = dir.join(format!("{name}.log")).display(),
            user = env("PIPELINE_TEST_REGISTRY_USER"),
            password = env("PIPELINE_TEST_REGISTRY_PASSWORD"),
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn path_with(dir: &Path) -> String {
    format!("{}:{}", dir.display(), std::env::var("PATH").unwrap())
}

fn no_secret_anywhere(r: &Repo, out: &Outcome) {
    let password = env("PIPELINE_TEST_REGISTRY_PASSWORD");
    assert!(!out.stdout.contains(&password) && !out.stderr.contains(&password));
    let grep = std::process::Command::new("grep")
        .args(["-rl", &password, ".pipeline"])
        .current_dir(&r.dir)
        .output()
        .unwrap();
    assert!(
        grep.stdout.is_empty(),
        "the password is in .pipeline/: {grep:?}"
    );
}

#[test]
fn a_credential_store_and_a_credential_helper_give_the_login() {
    for (kind, config) in [
        ("store", r#"{"credsStore": "fake"}"#.to_string()),
        // A helper for this host wins over the store, which would fail.
        (
            "helper",
            format!(
                r#"{{"credsStore": "missing", "credHelpers": {{"{}": "fake"}}}}"#,
                registry()
            ),
        ),
    ] {
        let r = plain_repo(&format!("creds-{kind}"), &config);
        let bin = r.dir.join("bin");
        fake_helper(&bin, "fake");
        let before = r.read("docker/config.json");
        let out = r
            .pipeline()
            .args(["run", "--progress", "plain"])
            .env("DOCKER_CONFIG", &r.dir.join("docker").display().to_string())
            .env("PATH", &path_with(&bin))
            .expect(0);
        assert_eq!(
            skopeo_digest(&format!("{}:latest", r.repository("app"))).as_deref(),
            Some(r.digest("app").as_str()),
            "{kind}"
        );
        let calls = std::fs::read_to_string(bin.join("fake.log")).unwrap();
        assert!(
            calls.lines().any(|l| l == format!("get {}", registry())),
            "{kind}: the helper was asked: {calls}"
        );
        no_secret_anywhere(&r, &out);
        assert_eq!(r.read("docker/config.json"), before, "never written");
        // doctor says where the login came from.
        let doctor = r
            .pipeline()
            .args(["doctor"])
            .env("DOCKER_CONFIG", &r.dir.join("docker").display().to_string())
            .env("PATH", &path_with(&bin))
            .output();
        let line = doctor
            .stdout
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some("registry"))
            .unwrap_or_default()
            .to_string();
        let want = match kind {
            "store" => "credential store docker-credential-fake",
            _ => "credential helper docker-credential-fake",
        };
        assert!(
            line.starts_with("ok") && line.contains(want),
            "{kind}: {line}"
        );
    }
}

#[test]
fn a_missing_or_failing_helper_is_an_environment_error_naming_it() {
    let r = plain_repo(
        "creds-missing",
        &format!(r#"{{"credHelpers": {{"{}": "nosuch"}}}}"#, registry()),
    );
    let out = r
        .pipeline()
        .args(["run"])
        .env("DOCKER_CONFIG", &r.dir.join("docker").display().to_string())
        .expect(3);
    assert!(
        out.stderr
            .contains("docker-credential-nosuch is not installed")
            && out.stderr.contains("install it"),
        "{}",
        out.stderr
    );
    let bin = r.dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let broken = bin.join("docker-credential-nosuch");
    std::fs::write(
        &broken,
        "#!/bin/sh\necho 'the keychain is locked' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&broken, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = r
        .pipeline()
        .args(["run"])
        .env("DOCKER_CONFIG", &r.dir.join("docker").display().to_string())
        .env("PATH", &path_with(&bin))
        .expect(3);
    assert!(
        out.stderr.contains("the keychain is locked")
            && out.stderr.contains(&format!("docker login {}", registry())),
        "{}",
        out.stderr
    );
}

/// A TCP port that forwards every connection to the engine's socket,
/// recording the requests sent through it (`POST /v1.41/build`: method and
/// path, no query).
fn forwarder() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let recorded = requests.clone();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(engine) = std::os::unix::net::UnixStream::connect("/var/run/docker.sock") else {
                continue;
            };
            let (mut c_read, mut e_write) =
                (client.try_clone().unwrap(), engine.try_clone().unwrap());
            let (mut e_read, mut c_write) = (engine, client);
            let recorded = recorded.clone();
            std::thread::spawn(move || {
                let _ = pipe(&mut c_read, &mut e_write, |chunk| {
                    // A request starts a read: its request line is whole.
                    let text = String::from_utf8_lossy(chunk);
                    let mut words = text.split(' ');
                    if let (
                        Some(method @ ("GET" | "HEAD" | "POST" | "PUT" | "DELETE")),
                        Some(target),
                    ) = (words.next(), words.next())
                    {
                        let path = target.split('?').next().unwrap_or(target);
                        recorded.lock().unwrap().push(format!("{method} {path}"));
                    }
                });
                let _ = e_write.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = pipe(&mut e_read, &mut c_write, |_| {});
                let _ = c_write.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    (port, requests)
}

fn pipe(
    from: &mut impl Read,
    to: &mut impl Write,
    mut seen: impl FnMut(&[u8]),
) -> std::io::Result<()> {
    let mut buf = [0u8; 64 * 1024];
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        seen(&buf[..n]);
        to.write_all(&buf[..n])?;
    }
}

/// A Docker CLI context named `name` whose engine is `host`, in the Docker
/// config folder `dir`, laid out as the CLI writes it.
fn context(dir: &Path, name: &str, host: &str) -> PathBuf {
    use sha2::Digest;
    let id = hex::encode(sha2::Sha256::digest(name.as_bytes()));
    let meta = dir.join("contexts/meta").join(id);
    std::fs::create_dir_all(&meta).unwrap();
    std::fs::write(
        meta.join("meta.json"),
        format!(
            r#"{{"Name":"{name}","Metadata":{{}},"Endpoints":{{"docker":{{"Host":"{host}","SkipTLSVerify":false}}}}}}"#
        ),
    )
    .unwrap();
    meta
}

#[test]
fn the_docker_context_decides_the_engine() {
    let (port, requests) = forwarder();
    // Logins come from ECR (moto); the Docker config only picks the context.
    let r = Repo::new("context");
    r.file(
        "services/app/Dockerfile",
        "FROM local/busybox:1\nRUN echo built\n",
    )
    .file("docker/config.json", r#"{"currentContext": "forwarded"}"#)
    .config("");
    r.commit();
    let docker = r.dir.join("docker");
    context(&docker, "forwarded", &format!("tcp://127.0.0.1:{port}"));
    let out = r
        .pipeline()
        .args(["run", "--progress", "plain"])
        .env("DOCKER_CONFIG", &docker.display().to_string())
        .env_remove("DOCKER_HOST")
        .expect(0);
    // The build and the push went through the context's endpoint.
    let requests = requests.lock().unwrap().clone();
    let sent = |method: &str, end: &str| {
        requests
            .iter()
            .any(|r| r.starts_with(&format!("{method} /")) && r.ends_with(end))
    };
    assert!(
        sent("POST", "/build") && sent("POST", "/push"),
        "requests through the context: {requests:?}\n{}",
        out.stderr
    );
    let doctor = r
        .pipeline()
        .args(["doctor"])
        .env("DOCKER_CONFIG", &docker.display().to_string())
        .env_remove("DOCKER_HOST")
        .output();
    assert!(
        doctor.stdout.contains(&format!(
            "at tcp://127.0.0.1:{port} (from Docker context `forwarded` (currentContext in the Docker config))"
        )),
        "{}",
        doctor.stdout
    );
    // DOCKER_CONTEXT wins over currentContext; a context that does not
    // exist is an environment error saying what to run.
    let out = r
        .pipeline()
        .args(["run", "--force"])
        .env("DOCKER_CONFIG", &docker.display().to_string())
        .env("DOCKER_CONTEXT", "nosuch")
        .env_remove("DOCKER_HOST")
        .expect(3);
    assert!(
        out.stderr
            .contains("Docker context `nosuch`: there is no such context")
            && out.stderr.contains("docker context ls"),
        "{}",
        out.stderr
    );
}
