//! Helpers for the integration tests: a fixture monorepo in a temp folder
//! (a git repo with its own repository prefix, so tests running in parallel
//! never share registry repositories), a runner for the real binary, and
//! independent checks through `skopeo`, `docker` and boto3 on moto.
//!
//! These tests need the real stack that `scripts/stack up` starts (the
//! README's test command does). Without it they fail with a message saying
//! so; they never skip.

#![allow(dead_code)]

pub mod proxy;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: these tests need the local stack; run scripts/test, which starts it"
        )
    })
}

pub fn registry() -> String {
    env("PIPELINE_TEST_REGISTRY")
}

pub fn registry_creds() -> String {
    format!(
        "{}:{}",
        env("PIPELINE_TEST_REGISTRY_USER"),
        env("PIPELINE_TEST_REGISTRY_PASSWORD")
    )
}

pub struct Repo {
    pub dir: PathBuf,
    pub prefix: String,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl Repo {
    /// An empty fixture repo; `name` keeps registry repositories apart.
    pub fn new(name: &str) -> Repo {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let unique = format!("{name}-{}-{n}-{nanos:x}", std::process::id());
        let dir = std::env::temp_dir().join(format!("pipeline-it-{unique}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Repo {
            dir,
            prefix: format!("it-{unique}/"),
        }
    }

    pub fn file(&self, path: &str, text: &str) -> &Repo {
        let p = self.dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
        self
    }

    pub fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.dir.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// `pipeline.yaml` with ECR (moto) and the local registry, plus `extra`.
    /// `RUN` steps get the host network: the stack's engine runs with
    /// `--bridge=none`, where BuildKit finds no default network.
    ///
    /// `PIPELINE_TEST_BUILDER=classic` runs every test that does not choose
    /// a builder itself on the classic builder (scripts/test does both).
    pub fn config(&self, extra: &str) -> &Repo {
        self.config_at(&registry(), extra)
    }

    /// [`Repo::config`] with the registry at `host` (a proxy in front of
    /// the stack's registry).
    pub fn config_at(&self, host: &str, extra: &str) -> &Repo {
        let mut build = "build:\n  network: host\n".to_string();
        if let Ok(builder) = std::env::var("PIPELINE_TEST_BUILDER")
            && !extra.contains("builder:")
        {
            build.push_str(&format!("  builder: {builder}\n"));
        }
        let extra = match extra.contains("build:\n") {
            true => extra.replacen("build:\n", &build, 1),
            false => format!("{extra}{build}"),
        };
        self.file(
            "pipeline.yaml",
            &format!(
                "version: 1\nregistry:\n  ecr:\n    region: us-east-1\n  host: {host}\n  repository_prefix: {}\n{extra}",
                self.prefix
            ),
        )
    }

    pub fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .args([
                "-c",
                "user.email=t@t",
                "-c",
                "user.name=t",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .current_dir(&self.dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// `git init` and commit everything; returns the short sha.
    pub fn commit(&self) -> String {
        if !self.dir.join(".git").exists() {
            self.git(&["init", "-q"]);
        }
        self.git(&["add", "-A"]);
        self.git(&["commit", "-qm", "fixture", "--allow-empty"]);
        self.git(&["rev-parse", "--short=7", "HEAD"])
    }

    pub fn pipeline(&self) -> Run {
        Run {
            cmd: {
                let mut c = Command::new(env!("CARGO_BIN_EXE_pipeline"));
                c.current_dir(&self.dir)
                    .env("CI", "true")
                    .env("AWS_EC2_METADATA_DISABLED", "true");
                c
            },
        }
    }

    pub fn repository(&self, service: &str) -> String {
        format!("{}/{}{service}", registry(), self.prefix)
    }

    /// The registry digest of `service` in the results file.
    pub fn digest(&self, service: &str) -> String {
        self.results()["services"][service]["digest"]
            .as_str()
            .unwrap_or_else(|| panic!("{service} has no digest"))
            .to_string()
    }

    pub fn results(&self) -> serde_json::Value {
        serde_json::from_str(&self.read(".pipeline/results.json")).unwrap()
    }
}

impl Drop for Repo {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The real binary, run like a user would.
pub struct Run {
    cmd: Command,
}

pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn args<const N: usize>(mut self, args: [&str; N]) -> Run {
        self.cmd.args(args);
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Run {
        self.cmd.env(k, v);
        self
    }

    /// Runs without root's power to read any file, so that permissions
    /// bite as they do for a CI user: as root, through `setpriv` with the
    /// two capabilities that override them dropped.
    pub fn without_root_override(self) -> Run {
        let uid = Command::new("id").arg("-u").output().expect("id -u");
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            return self;
        }
        let mut cmd = Command::new("setpriv");
        cmd.args(["--bounding-set", "-dac_override,-dac_read_search"])
            .arg(self.cmd.get_program())
            .args(self.cmd.get_args());
        if let Some(dir) = self.cmd.get_current_dir() {
            cmd.current_dir(dir);
        }
        for (k, v) in self.cmd.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        Run { cmd }
    }

    pub fn env_remove(mut self, k: &str) -> Run {
        self.cmd.env_remove(k);
        self
    }

    pub fn output(mut self) -> Outcome {
        let out: Output = self.cmd.output().expect("run pipeline");
        Outcome {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Starts it, for runs side by side; [`Started::finish`] waits.
    pub fn start(mut self) -> Started {
        self.cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        Started(self.cmd.spawn().expect("start pipeline"))
    }

    /// Runs and asserts the exit code.
    pub fn expect(self, code: i32) -> Outcome {
        let out = self.output();
        assert_eq!(
            out.code, code,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            out.stdout, out.stderr
        );
        out
    }
}

/// A run started with [`Run::start`].
pub struct Started(std::process::Child);

impl Started {
    /// Waits for it to end.
    pub fn finish(self) -> Outcome {
        let out = self.0.wait_with_output().expect("wait for pipeline");
        Outcome {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// The digest the registry holds for `reference`, read by skopeo; `None`
/// when the registry says the tag is unknown.
pub fn skopeo_digest(reference: &str) -> Option<String> {
    let out = Command::new("skopeo")
        .args([
            "inspect",
            "--tls-verify=false",
            "--creds",
            &registry_creds(),
            "--format",
            "{{.Digest}}",
        ])
        .arg(format!("docker://{reference}"))
        .output()
        .expect("skopeo is installed by scripts/stack");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && stderr.contains("manifest unknown") {
        return None;
    }
    assert!(out.status.success(), "skopeo inspect {reference}: {stderr}");
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker client");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Runs a boto3 script against moto's ECR (`c` is the client; `sys.argv[1:]`
/// are `args`) and returns what it printed: ECR as AWS tools see it, no code
/// of ours.
pub fn boto3(script: &str, args: &[&str]) -> String {
    let python = Path::new(&env("PIPELINE_STACK_DIR")).join("venv/bin/python");
    let code = format!(
        "import boto3,os,sys\nc=boto3.client('ecr',region_name='us-east-1',endpoint_url=os.environ['AWS_ENDPOINT_URL_ECR'])\n{script}"
    );
    let out = Command::new(python)
        .arg("-c")
        .arg(code)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "boto3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The repositories moto's ECR knows.
pub fn ecr_repositories() -> Vec<String> {
    boto3(
        "for r in c.describe_repositories()['repositories']: print(r['repositoryName'])",
        &[],
    )
    .lines()
    .map(str::to_string)
    .collect()
}

/// The raw manifest `reference` resolves to, read by skopeo.
pub fn skopeo_raw(reference: &str) -> Vec<u8> {
    let out = Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            "--creds",
            &registry_creds(),
        ])
        .arg(format!("docker://{reference}"))
        .output()
        .expect("skopeo is installed by scripts/stack");
    assert!(
        out.status.success(),
        "skopeo inspect --raw {reference}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Requests the registry logged so far for repositories under `prefix`, as
/// `METHOD /v2/...` (from its access log, which no code of ours writes).
pub fn registry_requests(prefix: &str) -> Vec<String> {
    let log = Path::new(&env("PIPELINE_STACK_DIR")).join("registry.log");
    let text = std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
    let needle = format!(" /v2/{prefix}");
    text.lines()
        .filter_map(|line| {
            // Access log: ... "PUT /v2/it-x/app/manifests/latest HTTP/1.1" 201 ...
            let (_, rest) = line.split_once('"')?;
            let request = rest.split_once(" HTTP/")?.0;
            request.contains(&needle).then(|| request.to_string())
        })
        .collect()
}

/// The requests that write anything (a blob upload or a manifest PUT).
pub fn writes(requests: &[String]) -> Vec<&String> {
    requests
        .iter()
        .filter(|r| r.starts_with("PUT ") || r.starts_with("POST ") || r.starts_with("PATCH "))
        .collect()
}

/// `repository:tag image-id` for every local image under `prefix`.
pub fn local_images(prefix: &str) -> Vec<String> {
    let all = docker(&[
        "image",
        "ls",
        "--no-trunc",
        "--format",
        "{{.Repository}}:{{.Tag}} {{.ID}}",
    ]);
    let mut lines: Vec<String> = all
        .lines()
        .filter(|l| l.contains(prefix))
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

/// The line number of the first plain-progress line of `service` whose text
/// starts with `text` (`[   1.2s] base      push`).
pub fn event_line(stderr: &str, service: &str, text: &str) -> Option<usize> {
    stderr.lines().position(|line| {
        let Some((_, rest)) = line.split_once("s] ") else {
            return false;
        };
        let mut words = rest.splitn(2, ' ');
        words.next() == Some(service)
            && words
                .next()
                .is_some_and(|t| t.trim_start().starts_with(text))
    })
}
