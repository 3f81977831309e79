//! The results file (schema 1 in SPEC.md): the hand-off between stages, CI
//! jobs and shards, and what `--output json` prints; and what `plan` prints.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub const SCHEMA: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Built,
    Cached,
    Failed,
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceResult {
    pub status: Status,
    pub repository: String,
    pub digest: Option<String>,
    pub tags: Vec<String>,
    pub input_digest: String,
    pub duration_ms: u64,
    pub error: Option<String>,
    /// Why the service was built or taken from the cache (`plan`'s reason).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The local image ID, when this run built the image.
    #[serde(skip)]
    pub image_id: Option<String>,
    /// The last lines of the build log, for a failure message.
    #[serde(skip)]
    pub log_tail: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GitSummary {
    pub sha: Option<String>,
    pub dirty: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestResult {
    pub path: String,
    pub changed: bool,
}

/// What `pipeline plan` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanReport {
    /// The registry looked up; none with `--offline`.
    pub registry: Option<String>,
    /// Whether the registry was asked (false: `--offline` or `--force`).
    pub checked: bool,
    /// In build order.
    pub services: Vec<PlannedService>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedService {
    pub order: usize,
    pub name: String,
    /// `build` when true, `cached` otherwise.
    #[serde(serialize_with = "state")]
    #[serde(rename = "state")]
    pub build: bool,
    pub reason: String,
    /// Why the run will fail this service before building it, if it will.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// The typed decision behind `state`, `reason` and `problem`.
    pub decision: crate::plan::resolve::Action,
    pub input_digest: String,
    pub tags: Vec<String>,
    pub requires: Vec<String>,
    /// Files the build sees, and the size of the tar stream sent to the engine.
    pub context_files: usize,
    pub context_bytes: u64,
}

fn state<S: serde::Serializer>(build: &bool, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(if *build { "build" } else { "cached" })
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    pub schema: u32,
    pub git: GitSummary,
    pub registry: Option<String>,
    pub services: BTreeMap<String, ServiceResult>,
    pub manifests: Vec<ManifestResult>,
}

impl Results {
    pub fn failed(&self) -> impl Iterator<Item = (&String, &ServiceResult)> {
        self.services
            .iter()
            .filter(|(_, r)| r.status == Status::Failed)
    }

    pub fn all_succeeded(&self) -> bool {
        self.services
            .values()
            .all(|r| matches!(r.status, Status::Built | Status::Cached))
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("results serialize") + "\n"
    }

    /// Writes the file atomically: a temp file in the same folder, renamed.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        write_atomic(path, self.to_json().as_bytes())
    }
}

/// Replaces `path` with `bytes` atomically (temp file in the same folder,
/// then rename), creating the folder when needed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_matches_the_spec() {
        let mut services = BTreeMap::new();
        services.insert(
            "orders".to_string(),
            ServiceResult {
                status: Status::Built,
                repository: "h/shop/orders".into(),
                digest: Some("sha256:ab".into()),
                tags: vec!["in-1".into(), "latest".into()],
                input_digest: "sha256:cd".into(),
                duration_ms: 5,
                error: None,
                reason: Some("files changed: a.txt".into()),
                image_id: Some("sha256:ef".into()),
                log_tail: vec!["x".into()],
            },
        );
        let r = Results {
            schema: SCHEMA,
            git: GitSummary {
                sha: Some("1a".into()),
                dirty: false,
            },
            registry: Some("h".into()),
            services,
            manifests: vec![],
        };
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["schema"], 1);
        assert_eq!(v["services"]["orders"]["status"], "built");
        assert_eq!(v["services"]["orders"]["error"], serde_json::Value::Null);
        assert!(v["services"]["orders"].get("image_id").is_none());
        let keys: Vec<&String> = v["services"]["orders"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        // The SPEC's seven keys plus `reason`, which explains the status.
        assert_eq!(keys.len(), 8, "{keys:?}");
        assert_eq!(v["services"]["orders"]["reason"], "files changed: a.txt");
        let back: Results = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(back.services["orders"].digest, r.services["orders"].digest);
    }
}
