//! Kustomize overlays: which images an overlay deploys, read from all its
//! local inputs, and the `images:` entries that pin them.
//!
//! kustomize replaces an image by exact name, wherever it appears in a
//! container, so an overlay needs an entry for every name its inputs use for
//! a service's image. Those inputs are `resources` (and the old `bases`),
//! `components`, and patches: `patches` (a `path` or an inline `patch`),
//! `patchesStrategicMerge` and `patchesJson6902`, followed into local
//! folders recursively. A resource kustomize would fetch (a URL or a git
//! repo spec such as `github.com/org/repo//dir?ref=v1`) cannot be seen
//! here: it is reported, and entries are appended for the services the
//! local files do not explain, in case it deploys them.

use std::path::{Path, PathBuf};

use yamledit::{Edits, NodeKind, YamlError};

use super::raw::{lookalike, mentioned_images};
use super::report::{FileReport, How};
use super::{PatchError, Pinned};
use crate::config::Pin;

/// The names kustomize accepts for a kustomization file, in its order.
pub(crate) const KUSTOMIZATION_FILES: [&str; 3] =
    ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// How deep kustomizations may nest before we stop following them.
const MAX_DEPTH: usize = 16;

/// The kustomization file of an overlay folder, under any of the names
/// kustomize accepts.
pub(super) fn file(root: &Path, overlay: &str) -> Result<PathBuf, PatchError> {
    let dir = root.join(overlay);
    for name in KUSTOMIZATION_FILES {
        if dir.join(name).is_file() {
            return Ok(dir.join(name));
        }
    }
    Err(PatchError::Invalid {
        path: overlay.to_string(),
        message: "no kustomization.yaml, kustomization.yml or Kustomization in this folder (manifests.kustomize)".into(),
    })
}

/// What an overlay's local inputs show.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Inputs {
    /// Image names (tag and digest stripped) the inputs use.
    pub(crate) images: Vec<String>,
    /// Remote resources, as `url (in path/to/kustomization.yaml)`.
    pub(crate) remote: Vec<String>,
}

/// Whether a kustomization entry that is not a local path names a remote
/// resource: kustomize tries the local path first, then a URL or a git repo
/// spec (`https://…`, `git@host:…`, `github.com/org/repo//dir?ref=v1`).
fn is_remote(entry: &str) -> bool {
    let first = entry.split('/').next().unwrap_or("");
    entry.contains("://")
        || entry.starts_with("git@")
        || (entry.contains('/') && first.contains('.') && !first.starts_with('.'))
}

/// Reads the local inputs of the overlay in `dir` (see the module comment).
/// A local input that cannot be read or parsed is an error naming it:
/// kustomize would fail on it too, and without its images an appended
/// entry could match nothing.
pub(crate) fn inputs(root: &Path, dir: &Path) -> Result<Inputs, PatchError> {
    let mut found = Inputs::default();
    let mut seen = Vec::new();
    follow(root, dir, &mut found, &mut seen, 0)?;
    Ok(found)
}

fn rel(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

fn read(root: &Path, path: &Path) -> Result<Vec<yamledit::Document>, PatchError> {
    let text = std::fs::read_to_string(path).map_err(|source| PatchError::Io {
        path: rel(root, path),
        source,
    })?;
    yamledit::parse(&text).map_err(|source| PatchError::Yaml {
        path: rel(root, path),
        source,
    })
}

fn follow(
    root: &Path,
    dir: &Path,
    found: &mut Inputs,
    seen: &mut Vec<PathBuf>,
    depth: usize,
) -> Result<(), PatchError> {
    let Some(file) = KUSTOMIZATION_FILES
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
    else {
        return Ok(());
    };
    if seen.contains(&file) || depth > MAX_DEPTH {
        return Ok(());
    }
    seen.push(file.clone());
    let docs = read(root, &file)?;
    let Some(doc) = docs.first() else {
        return Ok(());
    };
    let kustomization = doc.root();
    // Files and folders: resources, bases, components; patch files.
    let mut entries: Vec<(&str, String)> = Vec::new();
    for key in ["resources", "bases", "components", "patchesStrategicMerge"] {
        for item in kustomization.get(key).iter().flat_map(|l| l.items()) {
            if let Some(entry) = item.as_str() {
                entries.push((key, entry.to_string()));
            }
        }
    }
    for key in ["patches", "patchesJson6902"] {
        for item in kustomization.get(key).iter().flat_map(|l| l.items()) {
            if let Some(path) = item.get("path").and_then(|p| p.as_str()) {
                entries.push((key, path.to_string()));
            }
            // An inline patch is YAML (or JSON) in a string.
            if let Some(inline) = item.get("patch").and_then(|p| p.as_str())
                && let Ok(docs) = yamledit::parse(inline)
            {
                for doc in &docs {
                    mentioned_images(doc.root(), &mut found.images);
                }
            }
        }
    }
    for item in kustomization
        .get("patchesStrategicMerge")
        .iter()
        .flat_map(|l| l.items())
    {
        // An inline strategic-merge patch, rather than a file name.
        if let Some(text) = item.as_str().filter(|t| t.contains('\n'))
            && let Ok(docs) = yamledit::parse(text)
        {
            for doc in &docs {
                mentioned_images(doc.root(), &mut found.images);
            }
        }
    }
    for (key, entry) in entries {
        if entry.contains('\n') {
            continue; // an inline patch, read above
        }
        let path = dir.join(&entry);
        if !path.exists() && is_remote(&entry) {
            found
                .remote
                .push(format!("{entry} (in {})", rel(root, &file)));
            continue;
        }
        if path.is_dir() {
            follow(root, &path, found, seen, depth + 1)?;
            continue;
        }
        let docs = read(root, &path).map_err(|e| PatchError::Invalid {
            path: rel(root, &file),
            message: format!("{key}: `{entry}`: {e}"),
        })?;
        for doc in &docs {
            mentioned_images(doc.root(), &mut found.images);
        }
    }
    Ok(())
}

/// Patches a kustomization: each `images:` entry whose `name` belongs to a
/// service gets `newName` and `digest` (and `newTag` removed, or set with
/// `tag+digest`). An entry is appended for every name of a service's image
/// that the overlay's inputs use and no entry covers; a service they do not
/// use is not deployed here, unless a remote resource might deploy it.
pub(crate) fn patch(
    text: &str,
    pins: &[Pinned],
    pin: Pin,
    inputs: &Inputs,
) -> Result<(String, FileReport), YamlError> {
    let mut report = FileReport::default();
    let docs = yamledit::parse(text)?;
    let Some(doc) = docs.first() else {
        return Ok((text.to_string(), report));
    };
    let root = doc.root();
    if !matches!(root.kind(), NodeKind::Mapping(_)) {
        return Err(YamlError::WrongKind {
            line: root.line(),
            column: root.column(),
            expected: "mapping (a kustomization)",
            found: super::kind_name(&root),
        });
    }
    let how = match pin {
        Pin::Digest => How::Digest,
        Pin::TagAndDigest => How::TagAndDigest,
    };
    let images = root.get("images").filter(|n| !n.is_null());
    let mut edits = Edits::new();
    let existing: Vec<String> = images
        .iter()
        .flat_map(|seq| seq.items())
        .filter_map(|item| {
            item.get("name")
                .and_then(|n| n.as_str())
                .map(str::to_string)
        })
        .collect();
    // (entry name, pin) for every image name of a service that no entry covers.
    let mut missing: Vec<(&str, &Pinned)> = Vec::new();
    let mut for_remote: Vec<&str> = Vec::new();
    for p in pins {
        let mut found = false;
        if let Some(images) = images {
            for item in images.items() {
                let Some(name) = item.get("name").and_then(|n| n.as_str()) else {
                    continue;
                };
                if !p.owns(name) {
                    continue;
                }
                found = true;
                edits.set_key(item, "newName", &p.uri)?;
                match pin {
                    Pin::Digest => edits.remove_key(item, "newTag")?,
                    Pin::TagAndDigest => edits.set_key(item, "newTag", &p.tag)?,
                };
                edits.set_key(item, "digest", &p.digest)?;
            }
        }
        // kustomize matches names exactly: every name the inputs use for
        // this service needs its own entry.
        let uncovered: Vec<&str> = inputs
            .images
            .iter()
            .filter(|n| p.owns(n) && !existing.contains(n))
            .map(String::as_str)
            .collect();
        if found || !uncovered.is_empty() {
            report.pin(&p.service, how);
        } else if !inputs.remote.is_empty() {
            // A remote base may deploy it under the short name bases
            // conventionally use.
            missing.push((p.service.as_str(), p));
            for_remote.push(&p.service);
            report.pin(&p.service, how);
        } else {
            report.not_deployed.push(p.service.clone());
        }
        missing.extend(uncovered.into_iter().map(|n| (n, p)));
    }
    for name in inputs.images.iter().chain(&existing) {
        if pins.iter().any(|p| p.owns(name)) {
            continue;
        }
        if let Some(p) = pins.iter().find(|p| p.looks_like(name)) {
            report.warn(lookalike("in the overlay's inputs", name, p));
        }
    }
    if !inputs.remote.is_empty() {
        report.warn(format!(
            "remote resources cannot be seen here: {}; {}",
            inputs.remote.join(", "),
            match for_remote.is_empty() {
                true => "every service's image the local files show is pinned".to_string(),
                false => format!(
                    "entries were appended for {}, which the local files do not show, in case a remote resource deploys them",
                    for_remote.join(", ")
                ),
            }
        ));
    }
    let entries: Vec<Vec<(&str, &str)>> = missing
        .iter()
        .map(|(name, p)| {
            let mut e = vec![("name", *name), ("newName", p.uri.as_str())];
            if pin == Pin::TagAndDigest {
                e.push(("newTag", p.tag.as_str()));
            }
            e.push(("digest", p.digest.as_str()));
            e
        })
        .collect();
    if !entries.is_empty() {
        match images {
            Some(seq) => {
                for e in &entries {
                    edits.append_item(seq, e)?;
                }
            }
            None => {
                let items: Vec<&[(&str, &str)]> = entries.iter().map(Vec::as_slice).collect();
                edits.insert_key_with_sequence(root, "images", &items)?;
            }
        }
    }
    Ok((edits.apply(text)?, report))
}
