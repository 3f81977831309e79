//! The manifests that deploy the services' images, found the way the patch
//! stage would pin them: an image belongs to a service by the rule of
//! `Pinned::owns` (its name is the service's name or repository, or ends in
//! `/<service>`), so what init writes is what `run` pins.
//!
//! - Kustomize: an overlay is a kustomization that is not a `Component` and
//!   either lives under an `overlays/` folder or is one nothing else in the
//!   repo builds on (what `kubectl apply -k` is pointed at), and whose local
//!   inputs use a service's image. Bases other kustomizations use are not
//!   listed: the overlays on top of them pin their images.
//! - Helm: values files next to or below a `Chart.yaml`, with the services
//!   they hold at `{service}.image`, or one service at `image`.
//! - Raw: any other YAML file, outside charts and not used by a
//!   kustomization, with a workload whose container image belongs to a
//!   service.
//!
//! Images that look like a service's but belong to none (one repository
//! with a tag per service, `ghcr.io/acme/demo:1.0-cart`) are collected, so
//! the written file can say that they will not be pinned.

use std::collections::BTreeSet;
use std::path::Path;

use yamledit::Node;

use super::compose::normalize;
use crate::patch::{KUSTOMIZATION_FILES, Pinned, image_name, kustomize};

/// Folders never worth walking into.
const SKIP: &[&str] = &["target", "node_modules", "vendor"];

/// How deep the repo is searched for manifests.
const MAX_DEPTH: usize = 12;

/// A Helm values file and where the services' images are in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Values {
    pub(crate) file: String,
    pub(crate) image_path: String,
    pub(crate) services: Vec<String>,
}

/// What `init` found to pin.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Manifests {
    /// Overlay folders, relative to the root.
    pub(crate) overlays: Vec<String>,
    pub(crate) values: Vec<Values>,
    /// Raw manifest files.
    pub(crate) raw: Vec<String>,
    /// Per file, the images that look like a service's but belong to none.
    pub(crate) lookalikes: Vec<(String, Vec<String>)>,
    /// Chart folders none of whose values files holds a service's image
    /// where init looks.
    pub(crate) other_charts: Vec<String>,
}

/// One kustomization, as far as init cares.
struct Kustomization {
    dir: String,
    component: bool,
}

/// The manifests under `root` that deploy the images of `pins`; `ignore`
/// holds files that are not manifests (the Compose and Skaffold files).
pub(super) fn scan(root: &Path, pins: &[Pinned], ignore: &[String]) -> Manifests {
    let mut yaml_files = Vec::new();
    let mut kustomizations = Vec::new();
    let mut charts = Vec::new();
    let walker = walkdir::WalkDir::new(root)
        .max_depth(MAX_DEPTH)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| {
            let name = e.file_name().to_string_lossy();
            e.depth() == 0
                || !(name.starts_with('.')
                    || (e.file_type().is_dir() && SKIP.contains(&name.as_ref())))
        });
    for entry in walker.flatten() {
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = relative(root, entry.path());
        let name = entry.file_name().to_string_lossy();
        let dir = parent(&rel);
        if KUSTOMIZATION_FILES.contains(&name.as_ref()) {
            kustomizations.push(rel);
        } else if name == "Chart.yaml" {
            charts.push(dir);
        } else if (name.ends_with(".yaml") || name.ends_with(".yml"))
            && !ignore.contains(&rel)
            && name != "pipeline.yaml"
        {
            yaml_files.push(rel);
        }
    }
    let mut found = Manifests::default();

    // Kustomize: what each kustomization uses, then the overlays.
    let mut used_dirs = BTreeSet::new();
    let mut used_files = BTreeSet::new();
    let mut all = Vec::new();
    for file in &kustomizations {
        let dir = parent(file);
        let Some(docs) = std::fs::read_to_string(root.join(file))
            .ok()
            .and_then(|t| yamledit::parse(&t).ok())
        else {
            continue;
        };
        let Some(doc) = docs.first() else { continue };
        let k = doc.root();
        for entry in local_entries(k) {
            let Some(path) = normalize(&dir, &entry) else {
                continue;
            };
            if root.join(&path).is_dir() {
                used_dirs.insert(path);
            } else {
                used_files.insert(path);
            }
        }
        all.push(Kustomization {
            component: k.get("kind").and_then(|v| v.as_str()) == Some("Component"),
            dir,
        });
    }
    for k in &all {
        let under_overlays = k.dir.split('/').any(|c| c == "overlays");
        // A base another kustomization builds on is pinned by that one.
        let base = used_dirs.contains(&k.dir) && !under_overlays;
        if k.component || base {
            continue;
        }
        let Ok(inputs) = kustomize::inputs(root, &root.join(&k.dir)) else {
            continue;
        };
        let owned = inputs.images.iter().any(|i| pins.iter().any(|p| p.owns(i)));
        if owned || (under_overlays && !inputs.remote.is_empty()) {
            found.overlays.push(k.dir.clone());
        } else {
            let file = kustomization_file(root, &k.dir);
            lookalikes(
                &mut found,
                &file,
                inputs.images.iter().map(String::as_str),
                pins,
            );
        }
    }

    // Helm: values files by their nearest chart.
    let chart_of = |file: &str| -> Option<String> {
        let mut dir = parent(file);
        loop {
            if charts.contains(&dir) {
                return Some(dir);
            }
            if dir == "." {
                return None;
            }
            dir = parent(&dir);
        }
    };
    let mut matched_charts = BTreeSet::new();
    for file in &yaml_files {
        let Some(chart) = chart_of(file) else {
            continue;
        };
        let inside = match chart.as_str() {
            "." => file.as_str(),
            c => file
                .strip_prefix(c)
                .map_or("", |r| r.trim_start_matches('/')),
        };
        let first = inside.split('/').next().unwrap_or("");
        let name = inside.rsplit('/').next().unwrap_or("");
        let is_values = !["templates", "charts", "crds"].contains(&first)
            && (name.contains("values") || inside.split('/').any(|c| c == "values"));
        if !is_values {
            continue;
        }
        if let Some(values) = values_file(root, file, &chart, pins) {
            matched_charts.insert(chart.clone());
            found.values.push(values);
        }
    }
    found.other_charts = charts
        .iter()
        .filter(|c| !matched_charts.contains(*c))
        .cloned()
        .collect();

    // Raw: the rest. A file beside a kustomization that it does not use
    // is deployed some other way (skaffold's `rawYaml`, `kubectl apply`).
    let below_chart = |file: &str| {
        charts
            .iter()
            .any(|d| d == "." || file.starts_with(&format!("{d}/")))
    };
    for file in &yaml_files {
        if below_chart(file) || used_files.contains(file) {
            continue;
        }
        let Some(docs) = std::fs::read_to_string(root.join(file))
            .ok()
            .and_then(|t| yamledit::parse(&t).ok())
        else {
            continue;
        };
        let mut images = Vec::new();
        for doc in &docs {
            workload_images(doc.root(), &mut images);
        }
        if images.iter().any(|i| pins.iter().any(|p| p.owns(i))) {
            found.raw.push(file.clone());
        }
        lookalikes(&mut found, file, images.iter().map(String::as_str), pins);
    }
    found
}

/// The local files and folders a kustomization uses: resources, bases,
/// components and patch files (remote ones left out).
fn local_entries(k: Node<'_>) -> Vec<String> {
    let mut entries = Vec::new();
    for key in ["resources", "bases", "components", "patchesStrategicMerge"] {
        for item in k.get(key).iter().flat_map(|l| l.items()) {
            if let Some(entry) = item.as_str().filter(|e| !e.contains('\n')) {
                entries.push(entry.to_string());
            }
        }
    }
    for key in ["patches", "patchesJson6902"] {
        for item in k.get(key).iter().flat_map(|l| l.items()) {
            if let Some(path) = item.get("path").and_then(|p| p.as_str()) {
                entries.push(path.to_string());
            }
        }
    }
    entries
        .retain(|e| !(e.contains("://") || e.starts_with("git@") || e.starts_with("github.com")));
    entries
}

/// The kustomization file of `dir`, relative to the root.
fn kustomization_file(root: &Path, dir: &str) -> String {
    let name = KUSTOMIZATION_FILES
        .iter()
        .find(|n| root.join(dir).join(n).is_file())
        .unwrap_or(&KUSTOMIZATION_FILES[0]);
    match dir {
        "." => name.to_string(),
        d => format!("{d}/{name}"),
    }
}

/// The values file `file` of `chart`, when it holds services' images at
/// `{service}.image` (a mapping with `repository`, or a string), or one
/// service's at `image`: the service its reference belongs to, or the one
/// the chart is named after.
fn values_file(root: &Path, file: &str, chart: &str, pins: &[Pinned]) -> Option<Values> {
    let text = std::fs::read_to_string(root.join(file)).ok()?;
    let docs = yamledit::parse(&text).ok()?;
    let doc = docs.first()?;
    let reference = |node: Node<'_>| -> Option<String> {
        let node = node.resolve();
        if let Some(s) = node.as_str() {
            return Some(s.to_string());
        }
        let repository = node.get("repository")?.as_str()?;
        Some(match node.get("registry").and_then(|r| r.as_str()) {
            Some(registry) if !registry.is_empty() => format!("{registry}/{repository}"),
            _ => repository.to_string(),
        })
    };
    let services: Vec<String> = pins
        .iter()
        .filter(|p| {
            doc.lookup(&[&p.service, "image"])
                .and_then(reference)
                .is_some()
        })
        .map(|p| p.service.clone())
        .collect();
    if !services.is_empty() {
        return Some(Values {
            file: file.to_string(),
            image_path: "{service}.image".into(),
            services,
        });
    }
    let image = doc.lookup(&["image"]).and_then(reference)?;
    let chart_name = std::fs::read_to_string(root.join(chart).join("Chart.yaml"))
        .ok()
        .and_then(|t| yamledit::parse(&t).ok())
        .and_then(|d| {
            d.first()
                .and_then(|d| d.lookup(&["name"]))
                .and_then(|n| n.as_str().map(str::to_string))
        });
    let owner = pins.iter().find(|p| p.owns(&image)).or_else(|| {
        pins.iter()
            .find(|p| Some(&p.service) == chart_name.as_ref())
    })?;
    Some(Values {
        file: file.to_string(),
        image_path: "image".into(),
        services: vec![owner.service.clone()],
    })
}

/// Notes the images among `images` that look like a service's but belong
/// to none.
fn lookalikes<'a>(
    found: &mut Manifests,
    file: &str,
    images: impl Iterator<Item = &'a str>,
    pins: &[Pinned],
) {
    let mut like: Vec<String> = images
        .filter(|i| !pins.iter().any(|p| p.owns(i)) && pins.iter().any(|p| p.looks_like(i)))
        .map(str::to_string)
        .collect();
    like.sort();
    like.dedup();
    if !like.is_empty() {
        found.lookalikes.push((file.to_string(), like));
    }
}

/// The container images of the workload `object` (or of each item of a
/// `…List`), as written.
fn workload_images(object: Node<'_>, out: &mut Vec<String>) {
    let Some(kind) = object.get("kind").and_then(|k| k.as_str()) else {
        return;
    };
    if kind.ends_with("List") {
        for item in object.get("items").iter().flat_map(|i| i.items()) {
            workload_images(item, out);
        }
        return;
    }
    let Some(spec) = crate::patch::raw::pod_spec_path(kind).and_then(|path| object.lookup(path))
    else {
        return;
    };
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for container in spec.get(list).iter().flat_map(|c| c.items()) {
            if let Some(image) = container.get("image").and_then(|i| i.as_str())
                && !image_name(image).is_empty()
            {
                out.push(image.to_string());
            }
        }
    }
}

/// `path` relative to `root`, `/`-separated.
fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

/// The folder of `rel`, `.` for the root.
fn parent(rel: &str) -> String {
    match rel.rsplit_once('/') {
        Some((dir, _)) => dir.to_string(),
        None => ".".to_string(),
    }
}
