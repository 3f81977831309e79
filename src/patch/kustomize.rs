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
//!
//! The names are the ones the overlay's own `images:` entries meet, so the
//! `images:` renames (`name` → `newName`) of the kustomizations below it
//! are applied the way kustomize builds each kustomization: first its
//! resources (a folder is built on its own, its renames applied, before its
//! names are added), then its components in order (each acts on everything
//! accumulated so far: it adds its resources and patches, then renames all
//! of it), then its own patches, then its own renames. The overlay's own
//! renames are not applied: those are the entries being patched. An entry
//! with only `newTag` or `digest` renames nothing. A kustomization used by
//! two others counts under each, as each may rename its images otherwise;
//! one that includes itself (a cycle), or lies deeper than `MAX_DEPTH`, is
//! not followed.

use std::collections::HashMap;
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
    /// Image names (tag and digest stripped) the inputs use, as they reach
    /// the overlay's own `images:` entries: nested renames applied.
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
    let mut walk = Walk {
        root,
        remote: Vec::new(),
        open: Vec::new(),
        built: HashMap::new(),
        cuts: 0,
    };
    let mut images = Vec::new();
    walk.follow(dir, &mut images, 0, OwnRenames::Skip)?;
    Ok(Inputs {
        images,
        remote: walk.remote,
    })
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

/// Whether a kustomization's own `images:` renames apply to the names it
/// accumulates: they do for every nested one, not for the overlay, whose
/// entries are the ones patched.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OwnRenames {
    Apply,
    Skip,
}

/// The walk of an overlay's kustomizations.
struct Walk<'a> {
    root: &'a Path,
    remote: Vec<String>,
    /// The kustomization files being read, from the overlay down: one met
    /// again is a cycle, not followed.
    open: Vec<PathBuf>,
    /// The names of each resource folder built so far, its renames applied:
    /// a folder built on its own gives the same names wherever it is used.
    built: HashMap<PathBuf, Vec<String>>,
    /// How often a cycle or `MAX_DEPTH` cut the walk short: a folder whose
    /// build was cut is not kept in `built`.
    cuts: usize,
}

/// The images an inline patch mentions; one that does not parse is left to
/// kustomize to refuse.
fn inline(text: &str, names: &mut Vec<String>) {
    if let Ok(docs) = yamledit::parse(text) {
        for doc in &docs {
            mentioned_images(doc.root(), names);
        }
    }
}

fn add(names: &mut Vec<String>, name: String) {
    if !names.contains(&name) {
        names.push(name);
    }
}

/// The same path for every spelling of it (`base`, `x/../base`), where the
/// file system can tell.
fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The `images:` renames of a kustomization, as kustomize runs them: one
/// entry after the other, each replacing an image whose name is exactly its
/// `name` with its `newName` (so `a` → `b` then `b` → `c` ends at `c`). An
/// entry with only `newTag` or `digest` renames nothing.
fn rename(kustomization: yamledit::Node<'_>, names: &mut Vec<String>) {
    for item in kustomization.get("images").iter().flat_map(|l| l.items()) {
        let (Some(name), Some(new)) = (
            item.get("name").and_then(|n| n.as_str()),
            item.get("newName")
                .and_then(|n| n.as_str())
                .filter(|n| !n.is_empty()),
        ) else {
            continue;
        };
        for n in names.iter_mut().filter(|n| *n == name) {
            *n = new.to_string();
        }
    }
    let mut unique = Vec::with_capacity(names.len());
    for n in names.drain(..) {
        add(&mut unique, n);
    }
    *names = unique;
}

impl Walk<'_> {
    /// Adds to `names` what the kustomization in `dir` brings, in kustomize's
    /// order: its resources (a folder built on its own), then its components
    /// (each acting on everything accumulated so far, `names` included),
    /// then its patches, then its own `images:` renames unless `own` skips
    /// them.
    fn follow(
        &mut self,
        dir: &Path,
        names: &mut Vec<String>,
        depth: usize,
        own: OwnRenames,
    ) -> Result<(), PatchError> {
        let Some(file) = KUSTOMIZATION_FILES
            .iter()
            .map(|n| dir.join(n))
            .find(|p| p.is_file())
        else {
            return Ok(());
        };
        let key = canonical(&file);
        if self.open.contains(&key) || depth > MAX_DEPTH {
            self.cuts += 1;
            return Ok(());
        }
        self.open.push(key);
        let result = self.build(dir, &file, names, depth, own);
        self.open.pop();
        result
    }

    fn build(
        &mut self,
        dir: &Path,
        file: &Path,
        names: &mut Vec<String>,
        depth: usize,
        own: OwnRenames,
    ) -> Result<(), PatchError> {
        let docs = read(self.root, file)?;
        let Some(doc) = docs.first() else {
            return Ok(());
        };
        let kustomization = doc.root();
        let listed = |key: &str| -> Vec<String> {
            kustomization
                .get(key)
                .iter()
                .flat_map(|l| l.items())
                .filter_map(|item| item.as_str().map(str::to_string))
                .collect()
        };
        for key in ["resources", "bases"] {
            for entry in listed(key) {
                self.entry(dir, file, key, &entry, names, depth)?;
            }
        }
        for entry in listed("components") {
            self.entry(dir, file, "components", &entry, names, depth)?;
        }
        // Patches: files, and inline ones (YAML or JSON in a string).
        for entry in listed("patchesStrategicMerge") {
            match entry.contains('\n') {
                true => inline(&entry, names),
                false => self.entry(dir, file, "patchesStrategicMerge", &entry, names, depth)?,
            }
        }
        for key in ["patches", "patchesJson6902"] {
            for item in kustomization.get(key).iter().flat_map(|l| l.items()) {
                if let Some(path) = item.get("path").and_then(|p| p.as_str()) {
                    self.entry(dir, file, key, path, names, depth)?;
                }
                if let Some(text) = item.get("patch").and_then(|p| p.as_str()) {
                    inline(text, names);
                }
            }
        }
        if own == OwnRenames::Apply {
            rename(kustomization, names);
        }
        Ok(())
    }

    /// One entry of `key` in the kustomization `file` of `dir`: a remote
    /// resource is noted, a folder followed (a component on `names`, any
    /// other built on its own and its names added), a file read.
    fn entry(
        &mut self,
        dir: &Path,
        file: &Path,
        key: &str,
        entry: &str,
        names: &mut Vec<String>,
        depth: usize,
    ) -> Result<(), PatchError> {
        let path = dir.join(entry);
        if !path.exists() && is_remote(entry) {
            add(
                &mut self.remote,
                format!("{entry} (in {})", rel(self.root, file)),
            );
            return Ok(());
        }
        if path.is_dir() {
            if key == "components" {
                return self.follow(&path, names, depth + 1, OwnRenames::Apply);
            }
            for name in self.resource(&path, depth + 1)? {
                add(names, name);
            }
            return Ok(());
        }
        let docs = read(self.root, &path).map_err(|e| PatchError::Invalid {
            path: rel(self.root, file),
            message: format!("{key}: `{entry}`: {e}"),
        })?;
        for doc in &docs {
            mentioned_images(doc.root(), names);
        }
        Ok(())
    }

    /// The names a resource folder gives its parent: built on its own, its
    /// own renames applied.
    fn resource(&mut self, dir: &Path, depth: usize) -> Result<Vec<String>, PatchError> {
        let key = canonical(dir);
        if let Some(names) = self.built.get(&key) {
            return Ok(names.clone());
        }
        let cuts = self.cuts;
        let mut names = Vec::new();
        self.follow(dir, &mut names, depth, OwnRenames::Apply)?;
        if self.cuts == cuts {
            self.built.insert(key, names.clone());
        }
        Ok(names)
    }
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
