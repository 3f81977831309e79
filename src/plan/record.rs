//! What each build saw, remembered so that the next plan can say why a
//! service must be built (`files changed: services/orders/a.txt (+2 more)`)
//! instead of only that its content tag is missing.
//!
//! A record is stored per input digest in `.pipeline/inputs/<hex>.json` when a
//! run executes; the plan compares the current inputs with the record of the
//! input digest in the last results file. Build-arg values may be secrets:
//! they are stored only as hashes keyed by a random per-repo key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Folder inside the state folder.
const DIR: &str = "inputs";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct InputRecord {
    pub(crate) service: String,
    /// The Dockerfile, relative to the repo root.
    pub(crate) dockerfile: String,
    pub(crate) dockerfile_sha256: String,
    pub(crate) target: Option<String>,
    pub(crate) platform: Option<String>,
    /// The builder setting (`auto`, `buildkit`, `classic`); absent in
    /// records written before it was an input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) builder: Option<String>,
    /// The ids of the build secrets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) secrets: Vec<String>,
    /// Build-arg name to the sha256 of its value.
    pub(crate) build_args: BTreeMap<String, String>,
    /// Required service to its input digest.
    pub(crate) requires: BTreeMap<String, String>,
    /// Every entry the build sees, relative to the repo root: `d` for a
    /// folder, `f:<sha256>` / `x:<sha256>` for a (executable) file, `l:<target>`
    /// for a symlink.
    pub(crate) files: BTreeMap<String, String>,
}

/// Why a service's inputs differ from the last run's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Change {
    Dockerfile,
    Target,
    Platform,
    Builder,
    /// The ids of the build secrets.
    Secrets,
    BuildArgs {
        names: Vec<String>,
    },
    /// A required service's input digest changed.
    Requires {
        name: String,
    },
    /// Added, removed or modified paths, sorted.
    Files {
        paths: Vec<String>,
    },
}

impl InputRecord {
    /// A build-arg value as stored: keyed by the repo's [`Key`], so a short
    /// secret cannot be guessed from the record alone.
    pub(crate) fn hash_value(key: &Key, value: &str) -> String {
        let mut h = Sha256::new();
        h.update(key.0);
        h.update(value.as_bytes());
        hex::encode(h.finalize())
    }

    /// What changed from `before` to `self`, in a fixed order.
    pub(crate) fn changes_since(&self, before: &InputRecord) -> Vec<Change> {
        let mut changes = Vec::new();
        if self.dockerfile != before.dockerfile
            || self.dockerfile_sha256 != before.dockerfile_sha256
        {
            changes.push(Change::Dockerfile);
        }
        if self.target != before.target {
            changes.push(Change::Target);
        }
        if self.platform != before.platform {
            changes.push(Change::Platform);
        }
        if self.builder != before.builder {
            changes.push(Change::Builder);
        }
        if self.secrets != before.secrets {
            changes.push(Change::Secrets);
        }
        let args = changed_keys(&self.build_args, &before.build_args);
        if !args.is_empty() {
            changes.push(Change::BuildArgs { names: args });
        }
        for name in changed_keys(&self.requires, &before.requires) {
            changes.push(Change::Requires { name });
        }
        let files = changed_keys(&self.files, &before.files);
        if !files.is_empty() {
            changes.push(Change::Files { paths: files });
        }
        changes
    }
}

/// Keys added, removed or with another value, sorted.
fn changed_keys(now: &BTreeMap<String, String>, before: &BTreeMap<String, String>) -> Vec<String> {
    let mut keys: Vec<String> = now
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .chain(before.keys().filter(|k| !now.contains_key(*k)).cloned())
        .collect();
    keys.sort();
    keys
}

/// The per-repo random key for [`InputRecord::hash_value`], in
/// `.pipeline/inputs.key` (mode 0600).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key([u8; 32]);

impl Key {
    /// The repo's key, created on first use. A key that can be neither read
    /// nor created is an error naming the file: falling back to a fixed key
    /// would make short secrets guessable from the records.
    pub(crate) fn load(state_dir: &Path) -> std::io::Result<Key> {
        use std::io::{Read, Write};
        use std::os::unix::fs::OpenOptionsExt;
        let file = state_dir.join("inputs.key");
        let named =
            |e: std::io::Error| std::io::Error::new(e.kind(), format!("{}: {e}", file.display()));
        let read = |file: &Path| -> std::io::Result<Option<Key>> {
            match std::fs::read(file) {
                Ok(bytes) => Ok(<[u8; 32]>::try_from(bytes.as_slice()).ok().map(Key)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            }
        };
        if let Some(key) = read(&file).map_err(named)? {
            return Ok(key);
        }
        let mut key = [0u8; 32];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut key))
            .map_err(named)?;
        std::fs::create_dir_all(state_dir).map_err(named)?;
        // A file of the wrong length is replaced; `create_new` keeps a key
        // another process made meanwhile.
        let _ = std::fs::remove_file(&file);
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&file)
            .and_then(|mut f| f.write_all(&key));
        match created {
            Ok(()) => Ok(Key(key)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read(&file)
                .map_err(named)?
                .ok_or_else(|| named(std::io::Error::other("the key file has the wrong length"))),
            Err(e) => Err(named(e)),
        }
    }

    /// A key with the given bytes, for tests.
    #[cfg(test)]
    pub(crate) fn fixed(bytes: [u8; 32]) -> Key {
        Key(bytes)
    }
}

fn path(state_dir: &Path, input_digest: &str) -> PathBuf {
    let hex = input_digest.strip_prefix("sha256:").unwrap_or(input_digest);
    state_dir.join(DIR).join(format!("{hex}.json"))
}

/// The record of `input_digest`, when one was stored and is readable.
pub(crate) fn load(state_dir: &Path, input_digest: &str) -> Option<InputRecord> {
    let text = std::fs::read(path(state_dir, input_digest)).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Stores the records of one run and drops those no digest in `keep` names,
/// so the folder holds the inputs of the latest results only.
pub(crate) fn store<'a>(
    state_dir: &Path,
    records: impl IntoIterator<Item = (&'a str, &'a InputRecord)>,
    keep: &[&str],
) -> std::io::Result<()> {
    let mut kept: Vec<PathBuf> = keep.iter().map(|d| path(state_dir, d)).collect();
    for (digest, record) in records {
        let file = path(state_dir, digest);
        if !file.exists() {
            let json = serde_json::to_vec(record).expect("record serializes");
            crate::report::write_atomic(&file, &json)?;
        }
        kept.push(file);
    }
    if let Ok(dir) = std::fs::read_dir(state_dir.join(DIR)) {
        for entry in dir.flatten() {
            if !kept.contains(&entry.path()) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: Key = Key([7; 32]);

    #[test]
    fn the_key_is_made_once_and_kept_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("pipeline-key-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let key = Key::load(&dir).unwrap();
        assert_ne!(key, Key([0; 32]));
        assert_eq!(Key::load(&dir).unwrap(), key);
        let mode = std::fs::metadata(dir.join("inputs.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_ne!(
            InputRecord::hash_value(&key, "hunter2"),
            hex::encode(Sha256::digest(b"hunter2")),
            "not a plain hash"
        );
        // A folder that cannot take the key is an error naming the file.
        let blocked = dir.join("blocked");
        std::fs::write(&blocked, "a file where a folder should be").unwrap();
        let e = Key::load(&blocked).unwrap_err();
        assert!(e.to_string().contains("blocked/inputs.key"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn record() -> InputRecord {
        InputRecord {
            service: "orders".into(),
            dockerfile: "services/orders/Dockerfile".into(),
            dockerfile_sha256: "aa".into(),
            target: None,
            platform: None,
            builder: None,
            secrets: Vec::new(),
            build_args: BTreeMap::from([("A".into(), InputRecord::hash_value(&KEY, "1"))]),
            requires: BTreeMap::from([("base".into(), "sha256:1".into())]),
            files: BTreeMap::from([
                ("services/orders/a.txt".into(), "f:1".into()),
                ("services/orders/b.txt".into(), "f:2".into()),
            ]),
        }
    }

    #[test]
    fn each_kind_of_change_is_named() {
        let before = record();
        assert_eq!(record().changes_since(&before), vec![]);
        let mut now = record();
        now.dockerfile_sha256 = "bb".into();
        now.target = Some("runtime".into());
        now.build_args
            .insert("A".into(), InputRecord::hash_value(&KEY, "2"));
        now.build_args
            .insert("B".into(), InputRecord::hash_value(&KEY, "2"));
        now.requires.insert("base".into(), "sha256:2".into());
        now.files.remove("services/orders/a.txt");
        now.files
            .insert("services/orders/b.txt".into(), "x:2".into());
        now.files
            .insert("services/orders/c.txt".into(), "f:3".into());
        assert_eq!(
            now.changes_since(&before),
            vec![
                Change::Dockerfile,
                Change::Target,
                Change::BuildArgs {
                    names: vec!["A".into(), "B".into()]
                },
                Change::Requires {
                    name: "base".into()
                },
                Change::Files {
                    paths: vec![
                        "services/orders/a.txt".into(),
                        "services/orders/b.txt".into(),
                        "services/orders/c.txt".into(),
                    ]
                },
            ]
        );
    }

    #[test]
    fn store_keeps_only_the_latest_records() {
        let dir = std::env::temp_dir().join(format!("pipeline-inputs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let r = record();
        store(&dir, [("sha256:old", &r)], &[]).unwrap();
        assert_eq!(load(&dir, "sha256:old"), Some(r.clone()));
        store(&dir, [("sha256:new", &r)], &["sha256:kept"]).unwrap();
        assert_eq!(load(&dir, "sha256:old"), None);
        assert!(load(&dir, "sha256:new").is_some());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
