//! The patch stage: pins the configured manifests (kustomize overlays, Helm
//! values, raw manifests) to the digests of a run, changing only the bytes of
//! the values it sets (see `yamledit.rs`).
//!
//! Every file is computed first, from the text on disk to the text to write;
//! then every changed one is written to a synced temp file beside it (same
//! mode), and only then are they all renamed into place. An error in any file
//! means no file is replaced. A file whose patch changes nothing is never
//! touched.

#[cfg(test)]
mod golden;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use yamledit::{Edits, Node, NodeKind, YamlError};

use crate::config::{Config, HelmTarget, Pin};

/// One service's image as the manifests should reference it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pinned {
    pub(crate) service: String,
    /// The repository without the registry host (`shop/orders`).
    pub(crate) repository: String,
    /// The full repository URI (`123….dkr.ecr….amazonaws.com/shop/orders`).
    pub(crate) uri: String,
    /// `sha256:…`.
    pub(crate) digest: String,
    /// The tag written next to the digest (`pin: tag+digest`, Helm's `tag`).
    pub(crate) tag: String,
}

impl Pinned {
    /// A pin with an all-zero digest: patching with it before a run or a
    /// release shows that every manifest can take the real one.
    pub(crate) fn placeholder(service: &str, repository: &str, uri: String, tag: String) -> Pinned {
        Pinned {
            service: service.to_string(),
            repository: repository.to_string(),
            uri,
            digest: format!("sha256:{}", "0".repeat(64)),
            tag,
        }
    }

    /// The whole reference: `uri@digest`, or `uri:tag@digest`.
    pub(crate) fn reference(&self, pin: Pin) -> String {
        match pin {
            Pin::Digest => format!("{}@{}", self.uri, self.digest),
            Pin::TagAndDigest => format!("{}:{}@{}", self.uri, self.tag, self.digest),
        }
    }

    /// Whether image `reference` (with or without tag and digest) belongs to
    /// this service: its name is the service name, the repository, the full
    /// URI, or ends in `/<last component of the repository>` (SPEC.md).
    pub(crate) fn owns(&self, reference: &str) -> bool {
        let name = image_name(reference);
        let last = self
            .repository
            .rsplit('/')
            .next()
            .unwrap_or(&self.repository);
        name == self.service
            || name == self.repository
            || name == self.uri
            || name
                .strip_suffix(last)
                .is_some_and(|head| head.ends_with('/'))
    }
}

/// The tag to write next to a digest: the first configured tag that is not
/// `latest`, else the content tag (`tags` is a service's tags, content tag first).
pub(crate) fn pinned_tag(tags: &[String]) -> Option<String> {
    tags.iter()
        .skip(1)
        .find(|t| *t != "latest")
        .or(tags.first())
        .cloned()
}

/// `reference` without `@digest` and `:tag`.
fn image_name(reference: &str) -> &str {
    let name = reference.split('@').next().unwrap_or(reference);
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[slash..].find(':') {
        Some(colon) => &name[..slash + colon],
        None => name,
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum PatchError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Yaml {
        path: String,
        #[source]
        source: YamlError,
    },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

/// One manifest file: its text now and after the patch.
#[derive(Debug, Clone)]
pub(crate) struct FileChange {
    /// Relative to the repo root, `/`-separated.
    pub(crate) path: String,
    pub(crate) absolute: PathBuf,
    pub(crate) before: String,
    pub(crate) after: String,
}

impl FileChange {
    pub(crate) fn changed(&self) -> bool {
        self.before != self.after
    }

    /// A unified diff of the change (empty when nothing changes).
    pub(crate) fn diff(&self) -> String {
        if !self.changed() {
            return String::new();
        }
        similar::TextDiff::from_lines(&self.before, &self.after)
            .unified_diff()
            .context_radius(2)
            .header(&format!("a/{}", self.path), &format!("b/{}", self.path))
            .to_string()
    }
}

/// Computes the patch of every configured manifest for `pins`; writes nothing.
pub(crate) fn compute(config: &Config, pins: &[Pinned]) -> Result<Vec<FileChange>, PatchError> {
    let pin = config.manifests.pin;
    let mut changes = Vec::new();
    for overlay in &config.manifests.kustomize {
        let path = kustomization_file(&config.root, &overlay.value)?;
        let mut used = Vec::new();
        overlay_images(
            &config.root,
            &config.root.join(&overlay.value),
            &mut used,
            0,
        )?;
        changes.push(change(&config.root, &path, |text, rel| {
            kustomization(text, pins, pin, &used).map_err(|e| yaml_error(rel, e))
        })?);
    }
    for target in &config.manifests.helm {
        let path = config.root.join(&target.values.value);
        changes.push(change(&config.root, &path, |text, rel| {
            helm_values(text, target, pins, pin, rel)
        })?);
    }
    let mut seen = BTreeSet::new();
    for pattern in &config.manifests.raw {
        let files = raw_files(&config.root, &pattern.value)?;
        if files.is_empty() {
            return Err(PatchError::Invalid {
                path: "pipeline.yaml".into(),
                message: format!(
                    "manifests.raw: `{}` matches no file; fix the pattern or remove it",
                    pattern.value
                ),
            });
        }
        for path in files {
            if seen.insert(path.clone()) {
                changes.push(change(&config.root, &path, |text, rel| {
                    raw(text, pins, pin).map_err(|e| yaml_error(rel, e))
                })?);
            }
        }
    }
    Ok(changes)
}

fn yaml_error(path: &str, source: YamlError) -> PatchError {
    PatchError::Yaml {
        path: path.to_string(),
        source,
    }
}

fn change(
    root: &Path,
    path: &Path,
    patch: impl FnOnce(&str, &str) -> Result<String, PatchError>,
) -> Result<FileChange, PatchError> {
    let rel = path
        .strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned();
    let before = std::fs::read_to_string(path).map_err(|source| PatchError::Io {
        path: rel.clone(),
        source,
    })?;
    let after = patch(&before, &rel)?;
    Ok(FileChange {
        path: rel,
        absolute: path.to_path_buf(),
        before,
        after,
    })
}

/// The names kustomize accepts for a kustomization file, in its order.
pub(crate) const KUSTOMIZATION_FILES: [&str; 3] =
    ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// The kustomization file of an overlay folder, under any of the names
/// kustomize accepts.
fn kustomization_file(root: &Path, overlay: &str) -> Result<PathBuf, PatchError> {
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

/// Replaces the changed files; unchanged files are not touched. Every new
/// text is first written and synced to a temp file next to its file (with
/// the file's mode and, where allowed, owner); only when all of them are on
/// disk are they renamed over the originals, so a failure while writing
/// leaves every manifest as it was. A symlinked manifest is replaced at its
/// target, and the link stays.
pub(crate) fn write(changes: &[FileChange]) -> Result<(), PatchError> {
    let io = |c: &FileChange| {
        let path = c.path.clone();
        move |source| PatchError::Io { path, source }
    };
    // Staged in parallel: the syncs, not the CPU, are what a big patch waits on.
    use rayon::prelude::*;
    let outcomes: Vec<Result<(PathBuf, PathBuf), PatchError>> = changes
        .par_iter()
        .filter(|c| c.changed())
        .map(|c| stage(&c.absolute, c.after.as_bytes()).map_err(io(c)))
        .collect();
    let mut staged: Vec<(PathBuf, PathBuf)> = Vec::new();
    let mut failed = None;
    for outcome in outcomes {
        match outcome {
            Ok(pair) => staged.push(pair),
            Err(e) => failed = failed.or(Some(e)),
        }
    }
    if let Some(e) = failed {
        for (tmp, _) in &staged {
            let _ = std::fs::remove_file(tmp);
        }
        return Err(e);
    }
    for (tmp, target) in &staged {
        std::fs::rename(tmp, target).map_err(|source| PatchError::Io {
            path: target.display().to_string(),
            source,
        })?;
    }
    Ok(())
}

/// Writes `bytes` to a synced temp file beside `path`'s real file; returns
/// (temp file, file to replace).
fn stage(path: &Path, bytes: &[u8]) -> std::io::Result<(PathBuf, PathBuf)> {
    use std::os::unix::fs::MetadataExt;
    let target = std::fs::canonicalize(path)?;
    let dir = target.parent().unwrap_or(Path::new("."));
    let name = target.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.pipeline-{}.tmp", std::process::id()));
    let meta = std::fs::metadata(&target)?;
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.set_permissions(meta.permissions())?;
        // Keeping the owner needs privileges we may not have; the mode is kept.
        let _ = std::os::unix::fs::fchown(&f, Some(meta.uid()), Some(meta.gid()));
        f.write_all(bytes)?;
        f.sync_all()
    })();
    match written {
        Ok(()) => Ok((tmp, target)),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// The image names (tag and digest stripped) the containers of an overlay's
/// resources use, following `resources`, `bases` and `components` into
/// local folders and files; remote resources are not fetched. A local
/// resource that cannot be read or parsed is an error naming it: kustomize
/// would fail on it too, and without its images an appended entry could
/// match nothing.
pub(crate) fn overlay_images(
    root: &Path,
    dir: &Path,
    out: &mut Vec<String>,
    depth: usize,
) -> Result<(), PatchError> {
    let rel = |p: &Path| p.strip_prefix(root).unwrap_or(p).display().to_string();
    let Some(file) = KUSTOMIZATION_FILES
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
    else {
        return Ok(());
    };
    let read = |path: &Path| -> Result<Vec<yamledit::Document>, PatchError> {
        let text = std::fs::read_to_string(path).map_err(|source| PatchError::Io {
            path: rel(path),
            source,
        })?;
        yamledit::parse(&text).map_err(|source| PatchError::Yaml {
            path: rel(path),
            source,
        })
    };
    let docs = read(&file)?;
    let Some(doc) = docs.first() else {
        return Ok(());
    };
    for key in ["resources", "bases", "components"] {
        let Some(list) = doc.root().get(key) else {
            continue;
        };
        for item in list.items() {
            let Some(entry) = item.as_str() else {
                continue;
            };
            let path = dir.join(entry);
            if !path.exists() && is_remote(entry) {
                continue;
            }
            if path.is_dir() {
                if depth < 16 {
                    overlay_images(root, &path, out, depth + 1)?;
                }
                continue;
            }
            let docs = read(&path).map_err(|e| PatchError::Invalid {
                path: rel(&file),
                message: format!("{key}: `{entry}`: {e}"),
            })?;
            for doc in &docs {
                let mut images = Vec::new();
                image_nodes(doc.root(), &mut images);
                for image in images {
                    if let Some(reference) = image.as_str() {
                        let name = image_name(reference).to_string();
                        if !out.contains(&name) {
                            out.push(name);
                        }
                    }
                }
            }
        }
    }
    Ok(())
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

/// Patches a kustomization: each `images:` entry whose `name` belongs to a
/// service gets `newName` and `digest` (and `newTag` removed, or set with
/// `tag+digest`). A service with no entry gets one appended for each image
/// name of its own that `used` (the overlay's resources, see
/// [`overlay_images`]) holds, so kustomize matches it, or one with
/// `name: <service>` when the resources show none.
pub(crate) fn kustomization(
    text: &str,
    pins: &[Pinned],
    pin: Pin,
    used: &[String],
) -> Result<String, YamlError> {
    let docs = yamledit::parse(text)?;
    let Some(doc) = docs.first() else {
        return Ok(text.to_string());
    };
    let root = doc.root();
    if !matches!(root.kind(), NodeKind::Mapping(_)) {
        return Err(YamlError::WrongKind {
            line: root.line(),
            column: root.column(),
            expected: "mapping (a kustomization)",
            found: kind_name(&root),
        });
    }
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
        // kustomize matches names exactly: every name the resources use for
        // this service needs its own entry.
        let uncovered: Vec<&str> = used
            .iter()
            .filter(|n| p.owns(n) && !existing.contains(n))
            .map(String::as_str)
            .collect();
        if uncovered.is_empty() && !found {
            missing.push((p.service.as_str(), p));
        }
        missing.extend(uncovered.into_iter().map(|n| (n, p)));
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
    edits.apply(text)
}

/// Patches a Helm values file: at `image_path` (with `{service}`) of each
/// service, a mapping gets `repository`, `tag` and `digest`; a string becomes
/// the whole reference. A missing path is an error naming file and path.
fn helm_values(
    text: &str,
    target: &HelmTarget,
    pins: &[Pinned],
    pin: Pin,
    rel: &str,
) -> Result<String, PatchError> {
    let docs = yamledit::parse(text).map_err(|e| yaml_error(rel, e))?;
    let doc = docs.first();
    let mut edits = Edits::new();
    for p in pins {
        if let Some(only) = &target.services
            && !only.iter().any(|s| s.value == p.service)
        {
            continue;
        }
        let path = target.image_path.value.replace("{service}", &p.service);
        let keys: Vec<&str> = path.split('.').collect();
        let node = doc.and_then(|d| d.lookup(&keys)).ok_or_else(|| PatchError::Invalid {
            path: rel.to_string(),
            message: format!(
                "no `{path}` for service `{}` (manifests.helm image_path `{}`); add it to the values file, or list the services this file deploys under `services:`",
                p.service, target.image_path.value
            ),
        })?;
        let result = match node.resolve().kind() {
            NodeKind::Mapping(_) => edits
                .set_key(node, "repository", &p.uri)
                .and_then(|e| e.set_key(node, "tag", &p.tag))
                .and_then(|e| e.set_key(node, "digest", &p.digest))
                .map(|_| ()),
            NodeKind::Scalar { .. } => edits.set_scalar(node, &p.reference(pin)).map(|_| ()),
            _ => Err(YamlError::WrongKind {
                line: node.line(),
                column: node.column(),
                expected: "mapping or string",
                found: kind_name(&node),
            }),
        };
        result.map_err(|e| yaml_error(rel, e))?;
    }
    edits.apply(text).map_err(|e| yaml_error(rel, e))
}

#[cfg(test)]
/// Patches one Helm values file `text` (shown as `rel` in errors) as
/// [`compute`] does for a `manifests.helm` entry with this `image_path` and
/// `services`.
pub(crate) fn helm(
    text: &str,
    image_path: &str,
    services: Option<&[String]>,
    pins: &[Pinned],
    pin: Pin,
    rel: &str,
) -> Result<String, PatchError> {
    let at = |value: &str| crate::config::At {
        value: value.to_string(),
        loc: Default::default(),
    };
    let target = HelmTarget {
        values: at(rel),
        image_path: at(image_path),
        services: services.map(|s| s.iter().map(|v| at(v)).collect()),
    };
    helm_values(text, &target, pins, pin, rel)
}

/// Where the pod spec lives, by workload kind.
fn pod_spec_path(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "Pod" => &["spec"],
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "Job"
        | "ReplicationController" => &["spec", "template", "spec"],
        "CronJob" => &["spec", "jobTemplate", "spec", "template", "spec"],
        _ => return None,
    })
}

/// Patches raw manifests: every container image (containers,
/// initContainers, ephemeralContainers) of every workload in every document
/// that belongs to a service becomes `repository@digest`.
pub(crate) fn raw(text: &str, pins: &[Pinned], pin: Pin) -> Result<String, YamlError> {
    let docs = yamledit::parse(text)?;
    let mut edits = Edits::new();
    for doc in &docs {
        let mut images = Vec::new();
        image_nodes(doc.root(), &mut images);
        let mut edited = Vec::new();
        for image in images {
            let Some(reference) = image.as_str() else {
                continue;
            };
            // An image shared through an anchor (`image: *img`, a `<<` merge,
            // an aliased container list) is edited once, at the anchor: every
            // sharer is a container of this same image.
            let image = image.owner();
            if edited.contains(&image.span()) {
                continue;
            }
            if let Some(p) = pins.iter().find(|p| p.owns(reference)) {
                let wanted = p.reference(pin);
                if reference != wanted {
                    edits.set_scalar(image, &wanted)?;
                    edited.push(image.span());
                }
            }
        }
    }
    edits.apply(text)
}

/// The `image` nodes of every container (`initContainers`, `containers`,
/// `ephemeralContainers`) of a workload object, or of each object of a
/// `List`.
fn image_nodes<'a>(object: Node<'a>, out: &mut Vec<Node<'a>>) {
    let Some(kind) = object.get("kind").and_then(|k| k.as_str()) else {
        return;
    };
    if kind.ends_with("List") {
        if let Some(items) = object.get("items") {
            for item in items.items() {
                image_nodes(item, out);
            }
        }
        return;
    }
    let Some(spec) = pod_spec_path(kind).and_then(|path| object.lookup(path)) else {
        return;
    };
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        let Some(containers) = spec.get(list) else {
            continue;
        };
        for container in containers.items() {
            if let Some(image) = container.get("image") {
                out.push(image);
            }
        }
    }
}

fn kind_name(node: &Node<'_>) -> &'static str {
    match node.kind() {
        NodeKind::Scalar { .. } => "scalar",
        NodeKind::Mapping(_) => "mapping",
        NodeKind::Sequence(_) => "sequence",
        NodeKind::Alias { .. } => "alias",
    }
}

/// The files a `manifests.raw` glob matches, sorted; the walk starts at the
/// pattern's literal folder so a glob never scans the whole repo.
fn raw_files(root: &Path, pattern: &str) -> Result<Vec<PathBuf>, PatchError> {
    let invalid = |message: String| PatchError::Invalid {
        path: "pipeline.yaml".into(),
        message: format!("manifests.raw: `{pattern}`: {message}"),
    };
    let glob = globset::GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map_err(|e| invalid(e.to_string()))?
        .compile_matcher();
    let literal: Vec<&str> = pattern
        .split('/')
        .take_while(|c| !c.contains(['*', '?', '[', '{']))
        .collect();
    let base = root.join(literal[..literal.len().min(pattern.split('/').count() - 1)].join("/"));
    let mut files = Vec::new();
    let walker = walkdir::WalkDir::new(&base)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.file_name() != ".git" && e.file_name() != crate::plan::STATE_DIR);
    for entry in walker {
        let entry = entry.map_err(|e| invalid(e.to_string()))?;
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry.path().strip_prefix(root).unwrap_or(entry.path());
        if glob.is_match(rel) {
            files.push(entry.path().to_path_buf());
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pin(service: &str) -> Pinned {
        Pinned {
            service: service.into(),
            repository: format!("shop/{service}"),
            uri: format!("1.dkr.ecr.us-east-1.amazonaws.com/shop/{service}"),
            digest: format!("sha256:{}", "a".repeat(64)),
            tag: "1a2b3c4".into(),
        }
    }

    #[test]
    fn owns_follows_the_spec() {
        let p = pin("adservice");
        for yes in [
            "adservice",
            "adservice:v1",
            "shop/adservice",
            "1.dkr.ecr.us-east-1.amazonaws.com/shop/adservice@sha256:00",
            "us-central1-docker.pkg.dev/proj/demo/adservice:v0.10.6",
            "localhost:5000/adservice",
        ] {
            assert!(p.owns(yes), "{yes}");
        }
        for no in [
            "ad",
            "myadservice",
            "adservice-canary",
            "adservice/other",
            "x/myadservice:1",
        ] {
            assert!(!p.owns(no), "{no}");
        }
    }

    #[test]
    fn an_unreadable_overlay_resource_is_an_error_and_a_remote_one_is_skipped() {
        let dir = std::env::temp_dir().join(format!("pipeline-overlay-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("overlay")).unwrap();
        let write = |resources: &str| {
            std::fs::write(
                dir.join("overlay/kustomization.yaml"),
                format!("resources:\n{resources}"),
            )
            .unwrap()
        };
        std::fs::write(
            dir.join("overlay/app.yaml"),
            "kind: Pod\nspec:\n  containers:\n    - image: ghcr.io/x/app:1\n",
        )
        .unwrap();
        write(
            "  - app.yaml\n  - github.com/org/repo//base?ref=v1\n  - https://example.com/x.yaml\n",
        );
        let mut used = Vec::new();
        overlay_images(&dir, &dir.join("overlay"), &mut used, 0).unwrap();
        assert_eq!(used, ["ghcr.io/x/app"]);

        write("  - app.yaml\n  - missing.yaml\n");
        let e = overlay_images(&dir, &dir.join("overlay"), &mut Vec::new(), 0).unwrap_err();
        let e = e.to_string();
        assert!(
            e.starts_with("overlay/kustomization.yaml: resources: `missing.yaml`"),
            "{e}"
        );

        std::fs::write(dir.join("overlay/broken.yaml"), "a: [\n").unwrap();
        write("  - broken.yaml\n");
        let e = overlay_images(&dir, &dir.join("overlay"), &mut Vec::new(), 0).unwrap_err();
        assert!(e.to_string().contains("broken.yaml"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn image_name_strips_tag_and_digest_not_the_port() {
        assert_eq!(image_name("host:5000/a/b:1.0@sha256:x"), "host:5000/a/b");
        assert_eq!(image_name("host:5000/a/b"), "host:5000/a/b");
        assert_eq!(image_name("b:1"), "b");
    }

    #[test]
    fn pinned_tag_skips_latest() {
        let tags = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            pinned_tag(&tags(&["in-1", "latest", "abc"])),
            Some("abc".into())
        );
        assert_eq!(pinned_tag(&tags(&["in-1", "latest"])), Some("in-1".into()));
    }

    #[test]
    fn kustomization_sets_removes_and_appends() {
        let text = "# overlay\nimages:\n  - name: orders # the API\n    newTag: latest\n  - {name: ghcr.io/x/gateway, newTag: v1}\n";
        let out = kustomization(
            text,
            &[pin("orders"), pin("gateway"), pin("base")],
            Pin::Digest,
            &[],
        )
        .unwrap();
        let d = "a".repeat(64);
        assert_eq!(
            out,
            format!(
                "# overlay\nimages:\n  - name: orders # the API\n    newName: 1.dkr.ecr.us-east-1.amazonaws.com/shop/orders\n    digest: sha256:{d}\n  - {{name: ghcr.io/x/gateway, newName: 1.dkr.ecr.us-east-1.amazonaws.com/shop/gateway, digest: sha256:{d}}}\n  - name: base\n    newName: 1.dkr.ecr.us-east-1.amazonaws.com/shop/base\n    digest: sha256:{d}\n"
            )
        );
        let again = kustomization(
            &out,
            &[pin("orders"), pin("gateway"), pin("base")],
            Pin::Digest,
            &[],
        )
        .unwrap();
        assert_eq!(again, out, "a second patch changes nothing");
    }

    #[test]
    fn kustomization_without_images_gets_the_key() {
        let out = kustomization(
            "resources:\n  - ../base\n",
            &[pin("orders")],
            Pin::TagAndDigest,
            &["ghcr.io/x/orders".into(), "redis".into()],
        )
        .unwrap();
        assert_eq!(
            out,
            format!(
                "resources:\n  - ../base\nimages:\n  - name: ghcr.io/x/orders\n    newName: 1.dkr.ecr.us-east-1.amazonaws.com/shop/orders\n    newTag: \"1a2b3c4\"\n    digest: sha256:{}\n",
                "a".repeat(64)
            )
        );
    }

    #[test]
    fn every_name_the_resources_use_gets_an_entry() {
        let d = "a".repeat(64);
        let uri = "1.dkr.ecr.us-east-1.amazonaws.com/shop/orders";
        let out = kustomization(
            "images:\n  - name: orders\n    newTag: v1.8.0\n",
            &[pin("orders")],
            Pin::Digest,
            &["orders".into(), "shop/orders".into()],
        )
        .unwrap();
        assert_eq!(
            out,
            format!(
                "images:\n  - name: orders\n    newName: {uri}\n    digest: sha256:{d}\n  - name: shop/orders\n    newName: {uri}\n    digest: sha256:{d}\n"
            )
        );
        let out = kustomization(
            "images:\n  - name: ghcr.io/other/orders\n",
            &[pin("orders")],
            Pin::Digest,
            &["orders".into()],
        )
        .unwrap();
        assert_eq!(
            out,
            format!(
                "images:\n  - name: ghcr.io/other/orders\n    newName: {uri}\n    digest: sha256:{d}\n  - name: orders\n    newName: {uri}\n    digest: sha256:{d}\n"
            )
        );
    }

    #[test]
    fn raw_images_shared_through_anchors_are_pinned_at_the_anchor() {
        let r = pin("orders").reference(Pin::Digest);
        for (text, want) in [
            (
                "kind: Pod\nspec:\n  containers: [{name: api, image: &img orders:1.0.0}, {name: worker, image: *img}]\n",
                format!(
                    "kind: Pod\nspec:\n  containers: [{{name: api, image: &img {r}}}, {{name: worker, image: *img}}]\n"
                ),
            ),
            (
                "kind: Pod\nspec:\n  initContainers: &c [{name: a, image: orders}]\n  containers: *c\n",
                format!(
                    "kind: Pod\nspec:\n  initContainers: &c [{{name: a, image: {r}}}]\n  containers: *c\n"
                ),
            ),
            (
                "kind: Pod\nspec:\n  containers: [&base {name: a, image: orders}, {<<: *base, name: b}]\n",
                format!(
                    "kind: Pod\nspec:\n  containers: [&base {{name: a, image: {r}}}, {{<<: *base, name: b}}]\n"
                ),
            ),
        ] {
            assert_eq!(raw(text, &[pin("orders")], Pin::Digest).unwrap(), want);
        }
    }

    #[test]
    fn write_replaces_through_symlinks_and_keeps_the_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("pipeline-write-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("real")).unwrap();
        let target = dir.join("real/values.yaml");
        std::fs::write(&target, "a: 1\n").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o640)).unwrap();
        std::os::unix::fs::symlink("real/values.yaml", dir.join("values.yaml")).unwrap();
        let untouched = dir.join("same.yaml");
        std::fs::write(&untouched, "b: 2\n").unwrap();
        let mtime = std::fs::metadata(&untouched).unwrap().modified().unwrap();
        let change = |path: &Path, before: &str, after: &str| FileChange {
            path: path.display().to_string(),
            absolute: path.to_path_buf(),
            before: before.into(),
            after: after.into(),
        };
        write(&[
            change(&dir.join("values.yaml"), "a: 1\n", "a: 2\n"),
            change(&untouched, "b: 2\n", "b: 2\n"),
        ])
        .unwrap();
        assert!(
            std::fs::symlink_metadata(dir.join("values.yaml"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "a: 2\n");
        let mode = std::fs::metadata(&target).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
        assert_eq!(
            std::fs::metadata(&untouched).unwrap().modified().unwrap(),
            mtime
        );
        // A file that cannot be staged: nothing is replaced, no temp file is left.
        let err = write(&[
            change(&dir.join("values.yaml"), "a: 2\n", "a: 3\n"),
            change(&dir.join("missing/x.yaml"), "", "x: 1\n"),
        ]);
        assert!(err.is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "a: 2\n");
        let leftovers: Vec<_> = std::fs::read_dir(dir.join("real"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn raw_pins_every_container_kind() {
        let text = "kind: CronJob\nspec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          initContainers:\n            - image: orders:latest\n          containers:\n            - image: \"orders\"\n            - image: redis:7\n---\nkind: Service\nspec: {}\n";
        let out = raw(text, &[pin("orders")], Pin::Digest).unwrap();
        let r = pin("orders").reference(Pin::Digest);
        assert_eq!(
            out,
            format!(
                "kind: CronJob\nspec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          initContainers:\n            - image: {r}\n          containers:\n            - image: \"{r}\"\n            - image: redis:7\n---\nkind: Service\nspec: {{}}\n"
            )
        );
    }
}
