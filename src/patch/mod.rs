//! The patch stage: pins the configured manifests (kustomize overlays, Helm
//! values, raw manifests) to the digests of a run, changing only the bytes of
//! the values it sets (the `yamledit` crate), and reports per file what was
//! pinned, how, and what was not (`report`).
//!
//! Every file is computed first, from the text on disk to the text to write;
//! then every changed one is written to a synced temp file beside it (same
//! mode), and only then are they all renamed into place. An error in any file
//! means no file is replaced. A file whose patch changes nothing is never
//! touched.

#[cfg(test)]
mod golden;
mod helm;
pub(crate) mod kustomize;
pub(crate) mod raw;
mod report;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use yamledit::{Node, NodeKind, YamlError};

pub(crate) use kustomize::KUSTOMIZATION_FILES;
pub(crate) use report::FileReport;

use crate::config::{Config, Pin};

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
    /// The content tag (`in-…`): the tag a chart that never reads the
    /// digest gets.
    pub(crate) content_tag: String,
}

impl Pinned {
    /// A pin with an all-zero digest: patching with it before a run or a
    /// release shows that every manifest can take the real one.
    pub(crate) fn placeholder(
        service: &str,
        repository: &str,
        uri: String,
        tag: String,
        content_tag: String,
    ) -> Pinned {
        Pinned {
            service: service.to_string(),
            repository: repository.to_string(),
            uri,
            digest: format!("sha256:{}", "0".repeat(64)),
            tag,
            content_tag,
        }
    }

    /// The registry host: the URI without `/<repository>`.
    pub(crate) fn host(&self) -> &str {
        self.uri
            .strip_suffix(&self.repository)
            .and_then(|h| h.strip_suffix('/'))
            .unwrap_or(&self.uri)
    }

    /// Whether image `reference`, which this service does not own, looks
    /// like its image: its last path component is the service's name (the
    /// service's repository is named otherwise), or its tag names the
    /// service (`ghcr.io/acme/demo:1.10.0-adservice`, one repository with a
    /// tag per service).
    pub(crate) fn looks_like(&self, reference: &str) -> bool {
        if self.owns(reference) {
            return false;
        }
        let name = image_name(reference);
        let last = name.rsplit('/').next().unwrap_or(name);
        let without_digest = reference.split('@').next().unwrap_or(reference);
        let tag = without_digest
            .rsplit('/')
            .next()
            .and_then(|l| l.split_once(':'))
            .map(|(_, tag)| tag)
            .unwrap_or("");
        let service = self.service.as_str();
        last == service
            || tag == service
            || tag.ends_with(&format!("-{service}"))
            || tag.ends_with(&format!("_{service}"))
            || tag.starts_with(&format!("{service}-"))
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
pub(crate) fn image_name(reference: &str) -> &str {
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
    /// What was pinned here, and what was not.
    pub(crate) report: FileReport,
}

/// Every warning of `changes`, each with its file.
pub(crate) fn warnings(changes: &[FileChange]) -> Vec<String> {
    changes
        .iter()
        .flat_map(|c| {
            c.report
                .warnings
                .iter()
                .map(move |w| format!("{}: {w}", c.path))
        })
        .collect()
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

/// Computes the patch of every configured manifest for `pins`; writes
/// nothing. `all` names every discovered service (a Helm `image_path` that
/// matches none of them is a typo).
pub(crate) fn compute(
    config: &Config,
    pins: &[Pinned],
    all: &[&str],
) -> Result<Vec<FileChange>, PatchError> {
    let pin = config.manifests.pin;
    let mut changes = Vec::new();
    for overlay in &config.manifests.kustomize {
        let path = kustomize::file(&config.root, &overlay.value)?;
        let inputs = kustomize::inputs(&config.root, &config.root.join(&overlay.value))?;
        changes.push(change(&config.root, &path, |text, rel| {
            kustomize::patch(text, pins, pin, &inputs).map_err(|e| yaml_error(rel, e))
        })?);
    }
    for target in &config.manifests.helm {
        let path = config.root.join(&target.values.value);
        let chart = helm::chart(&config.root, &path);
        changes.push(change(&config.root, &path, |text, rel| {
            helm::patch(text, target, pins, pin, rel, chart.as_ref(), all)
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
                    raw::patch(text, pins, pin).map_err(|e| yaml_error(rel, e))
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
    patch: impl FnOnce(&str, &str) -> Result<(String, FileReport), PatchError>,
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
    let (after, report) = patch(&before, &rel)?;
    Ok(FileChange {
        path: rel,
        absolute: path.to_path_buf(),
        before,
        after,
        report,
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

pub(crate) fn kind_name(node: &Node<'_>) -> &'static str {
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
            content_tag: format!("in-{service}"),
        }
    }

    /// The kustomize patch of `text` with inputs that use `used`.
    fn kustomization(
        text: &str,
        pins: &[Pinned],
        pin: Pin,
        used: &[String],
    ) -> Result<String, YamlError> {
        let inputs = kustomize::Inputs {
            images: used.to_vec(),
            remote: Vec::new(),
        };
        kustomize::patch(text, pins, pin, &inputs).map(|(text, _)| text)
    }

    fn raw(text: &str, pins: &[Pinned], pin: Pin) -> Result<String, YamlError> {
        raw::patch(text, pins, pin).map(|(text, _)| text)
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
    fn an_unreadable_overlay_input_is_an_error_and_a_remote_one_is_reported() {
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
        let inputs = kustomize::inputs(&dir, &dir.join("overlay")).unwrap();
        assert_eq!(inputs.images, ["ghcr.io/x/app"]);
        assert_eq!(
            inputs.remote,
            [
                "github.com/org/repo//base?ref=v1 (in overlay/kustomization.yaml)",
                "https://example.com/x.yaml (in overlay/kustomization.yaml)"
            ]
        );

        write("  - app.yaml\n  - missing.yaml\n");
        let e = kustomize::inputs(&dir, &dir.join("overlay"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("overlay/kustomization.yaml: resources: `missing.yaml`"),
            "{e}"
        );

        std::fs::write(dir.join("overlay/broken.yaml"), "a: [\n").unwrap();
        write("  - broken.yaml\n");
        let e = kustomize::inputs(&dir, &dir.join("overlay")).unwrap_err();
        assert!(e.to_string().contains("broken.yaml"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn images_of_components_and_patches_count_as_used() {
        let dir = std::env::temp_dir().join(format!("pipeline-inputs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (path, text) in [
            ("base/kustomization.yaml", "resources: [api.yaml]\n"),
            (
                "base/api.yaml",
                "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers: [{name: api, image: api:1}]\n",
            ),
            (
                "components/cache/kustomization.yaml",
                "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources: [cache.yaml]\n",
            ),
            (
                "components/cache/cache.yaml",
                "kind: StatefulSet\nspec:\n  template:\n    spec:\n      containers: [{name: c, image: cache}]\n",
            ),
            (
                "overlay/init.yaml",
                "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api}\nspec:\n  template:\n    spec:\n      initContainers: [{name: migrate, image: migrate:2}]\n",
            ),
            (
                "overlay/json.yaml",
                "- op: add\n  path: /spec/template/spec/containers/-\n  value: {name: sidecar, image: ghcr.io/x/sidecar:1}\n- op: replace\n  path: /spec/template/spec/containers/0/image\n  value: api:2\n",
            ),
            (
                "overlay/kustomization.yaml",
                "resources: [../base]\ncomponents: [../components/cache]\npatches:\n  - path: init.yaml\n  - patch: |-\n      kind: Deployment\n      metadata: {name: api}\n      spec:\n        template:\n          spec:\n            containers: [{name: log, image: logger}]\npatchesJson6902:\n  - target: {kind: Deployment, name: api}\n    path: json.yaml\n",
            ),
        ] {
            let p = dir.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let inputs = kustomize::inputs(&dir, &dir.join("overlay")).unwrap();
        let mut images = inputs.images.clone();
        images.sort();
        assert_eq!(
            images,
            ["api", "cache", "ghcr.io/x/sidecar", "logger", "migrate"]
        );
        assert!(inputs.remote.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Writes `files` (path, text) under a fresh temp folder named after `name`.
    fn tree(name: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pipeline-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (path, text) in files {
            let p = dir.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        dir
    }

    /// The inputs' image names of the overlay in `dir/overlay`, sorted.
    fn used(dir: &Path) -> Vec<String> {
        let mut images = kustomize::inputs(dir, &dir.join("overlay")).unwrap().images;
        images.sort();
        images
    }

    const ORDERS: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: orders}\nspec:\n  template:\n    spec:\n      containers: [{name: orders, image: \"orders:1\"}]\n";

    #[test]
    fn renames_of_a_base_apply_to_the_names_it_gives() {
        let dir = tree(
            "base-renames",
            &[
                ("base/kustomization.yaml", "resources: [orders.yaml]\n"),
                ("base/orders.yaml", ORDERS),
                (
                    "registry/gateway.yaml",
                    "kind: Pod\nmetadata: {name: gateway}\nspec:\n  containers: [{name: g, image: \"ghcr.io/acme/gateway:2\"}]\n",
                ),
                // Innermost first: the mirror renames what `registry` gives
                // it, entry after entry (orders → REG/orders → MIRROR/orders);
                // an entry with only a tag or digest renames nothing.
                (
                    "registry/kustomization.yaml",
                    "resources: [../base, gateway.yaml]\nimages:\n  - {name: orders, newName: REG/orders}\n  - {name: ghcr.io/acme/gateway, newTag: \"3\"}\n",
                ),
                (
                    "mirror/kustomization.yaml",
                    "resources: [../registry]\nnamePrefix: m-\nimages:\n  - {name: REG/orders, newName: REG2/orders}\n  - {name: REG2/orders, newName: MIRROR/orders}\n",
                ),
                // The same base again, without the renames (a diamond): its
                // names reach the overlay as they are.
                (
                    "plain/kustomization.yaml",
                    "resources: [../base]\nnamePrefix: p-\n",
                ),
                (
                    "overlay/kustomization.yaml",
                    "resources: [../mirror, ../plain]\nimages:\n  - name: orders\n    newTag: \"1.0\"\n",
                ),
            ],
        );
        assert_eq!(
            used(&dir),
            ["MIRROR/orders", "ghcr.io/acme/gateway", "orders"]
        );

        // The overlay's `orders` entry meets only the plain copy: the
        // mirrored one gets its own entry, so both render pinned.
        let text = std::fs::read_to_string(dir.join("overlay/kustomization.yaml")).unwrap();
        let inputs = kustomize::inputs(&dir, &dir.join("overlay")).unwrap();
        let pins = [pin("orders")];
        let (out, report) = kustomize::patch(&text, &pins, Pin::Digest, &inputs).unwrap();
        let uri = &pins[0].uri;
        assert!(
            out.contains("  - name: orders\n    newName: ")
                && out.contains(&format!("  - name: MIRROR/orders\n    newName: {uri}\n")),
            "{out}"
        );
        assert_eq!(report.pinned.keys().collect::<Vec<_>>(), ["orders"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn renames_of_a_component_apply_to_all_its_parent_gathered_before_it() {
        let dir = tree(
            "component-renames",
            &[
                ("base/kustomization.yaml", "resources: [orders.yaml]\n"),
                ("base/orders.yaml", ORDERS),
                (
                    "overlay/gateway.yaml",
                    "kind: Pod\nmetadata: {name: gateway}\nspec:\n  containers: [{name: g, image: \"gateway:1\"}]\n",
                ),
                // After the components: not renamed by them.
                (
                    "overlay/late.yaml",
                    "kind: Pod\nmetadata: {name: gateway}\nspec:\n  initContainers: [{name: i, image: \"gateway:2\"}]\n",
                ),
                (
                    "components/registry/ads.yaml",
                    "kind: Pod\nmetadata: {name: ads}\nspec:\n  containers: [{name: a, image: \"adservice:1\"}]\n",
                ),
                (
                    "components/registry/kustomization.yaml",
                    "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources: [ads.yaml]\nimages:\n  - {name: orders, newName: REG/orders}\n  - {name: gateway, newName: REG/gateway}\n  - {name: adservice, newName: REG/adservice}\n",
                ),
                // A later component renames what an earlier one gave.
                (
                    "components/mirror/kustomization.yaml",
                    "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nimages:\n  - {name: REG/orders, newName: MIRROR/orders}\n",
                ),
                // Components come after every resource, wherever the key is.
                (
                    "overlay/kustomization.yaml",
                    "components: [../components/registry, ../components/mirror]\nresources: [../base, gateway.yaml]\npatches:\n  - path: late.yaml\n",
                ),
            ],
        );
        assert_eq!(
            used(&dir),
            ["MIRROR/orders", "REG/adservice", "REG/gateway", "gateway"]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_overlays_own_renames_are_not_applied() {
        let dir = tree(
            "own-renames",
            &[
                ("overlay/orders.yaml", ORDERS),
                (
                    "overlay/kustomization.yaml",
                    "resources: [orders.yaml]\nimages:\n  - {name: orders, newName: REG/orders}\n",
                ),
            ],
        );
        assert_eq!(used(&dir), ["orders"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn kustomizations_that_include_themselves_are_not_followed_again() {
        let dir = tree(
            "kustomize-cycle",
            &[
                ("overlay/orders.yaml", ORDERS),
                (
                    "overlay/kustomization.yaml",
                    "resources: [orders.yaml, ../a]\ncomponents: [../c]\n",
                ),
                (
                    "a/kustomization.yaml",
                    "resources: [../overlay, ../a, gateway.yaml]\nimages: [{name: orders, newName: A/orders}]\n",
                ),
                (
                    "a/gateway.yaml",
                    "kind: Pod\nmetadata: {name: gateway}\nspec:\n  containers: [{name: g, image: gateway}]\n",
                ),
                (
                    "c/kustomization.yaml",
                    "kind: Component\ncomponents: [../c]\nimages: [{name: orders, newName: C/orders}]\n",
                ),
            ],
        );
        // The cycles are cut where they close: `a` gives only its own file.
        assert_eq!(used(&dir), ["C/orders", "gateway"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_kustomize_report_says_what_is_pinned_and_what_is_not() {
        let pins = [pin("orders"), pin("gateway"), pin("base")];
        let inputs = kustomize::Inputs {
            images: vec!["orders".into(), "ghcr.io/acme/demo:1.0-gateway".into()],
            remote: Vec::new(),
        };
        let (text, report) =
            kustomize::patch("resources: [../base]\n", &pins, Pin::Digest, &inputs).unwrap();
        assert!(text.contains("- name: orders"), "{text}");
        assert!(
            !text.contains("name: base") && !text.contains("name: gateway"),
            "{text}"
        );
        assert_eq!(report.pinned.keys().collect::<Vec<_>>(), ["orders"]);
        assert_eq!(report.not_deployed, ["gateway", "base"]);
        assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
        assert!(report.warnings[0].contains("looks like service `gateway`'s"));

        // A remote base may deploy what the local files do not show.
        let inputs = kustomize::Inputs {
            images: vec!["orders".into()],
            remote: vec!["github.com/acme/base?ref=v1 (in k8s/kustomization.yaml)".into()],
        };
        let (text, report) =
            kustomize::patch("resources: [../base]\n", &pins, Pin::Digest, &inputs).unwrap();
        assert!(
            text.contains("- name: gateway") && text.contains("- name: base"),
            "{text}"
        );
        assert!(report.not_deployed.is_empty());
        assert!(
            report.warnings[0].contains("github.com/acme/base?ref=v1")
                && report.warnings[0].contains("entries were appended for gateway, base"),
            "{:?}",
            report.warnings
        );
    }

    #[test]
    fn lookalikes() {
        let p = pin("adservice");
        assert!(p.looks_like("ghcr.io/open-telemetry/demo:1.10.0-adservice"));
        let frontend = pin("frontend");
        assert!(!frontend.looks_like("ghcr.io/open-telemetry/demo:2.1.3-frontend-proxy"));
        assert!(frontend.looks_like("ghcr.io/open-telemetry/demo:2.1.3-frontend"));
        assert!(!p.looks_like("other/adservice-x:1"));
        assert!(
            !p.looks_like("us-docker.pkg.dev/x/adservice:1"),
            "owned, not a lookalike"
        );
        let mut custom = pin("gateway");
        custom.repository = "shop/gw".into();
        custom.uri = "1.dkr.ecr.us-east-1.amazonaws.com/shop/gw".into();
        assert!(custom.looks_like("ghcr.io/acme/gateway:2"));
        assert_eq!(custom.host(), "1.dkr.ecr.us-east-1.amazonaws.com");
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
                "# overlay\nimages:\n  - name: orders # the API\n    newName: 1.dkr.ecr.us-east-1.amazonaws.com/shop/orders\n    digest: sha256:{d}\n  - {{name: ghcr.io/x/gateway, newName: 1.dkr.ecr.us-east-1.amazonaws.com/shop/gateway, digest: sha256:{d}}}\n"
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
            report: FileReport::default(),
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
