//! Helm values files: at `image_path`, the image of each service the file
//! holds, in the conventions charts use, and what the chart does with it.
//!
//! - A mapping with a `registry` key is the Bitnami convention
//!   (`common.images.image` renders `registry/repository:tag`, or
//!   `@digest` when `digest` is set): `registry` gets the host and
//!   `repository` the path without it. Without `registry`, `repository` gets
//!   the whole repository URI. `tag` and `digest` are set next to it.
//! - A string at `image_path` becomes the whole reference.
//! - `global.imageRegistry`, set in the values file or in the chart's own
//!   `values.yaml`, is put in front of `repository` by the Bitnami helper
//!   instead of `registry`: the report names the reference that renders.
//! - When the chart is found (a `Chart.yaml` next to or above the values
//!   file) and none of its templates, nor those of its unpacked subcharts,
//!   mentions a digest, the chart deploys by tag (`helm create`'s
//!   `"{{ .Values.image.repository }}:{{ .Values.image.tag }}"`): with
//!   `pin: digest`, `tag` then gets the content tag, which names exactly
//!   these inputs, and the report says so, naming the template.
//!
//! A service the file does not hold is not deployed by it (reported); that
//! is an error only when `services:` lists it. An `image_path` that matches
//! no service at all is an error: a typo.

use std::path::{Path, PathBuf};

use yamledit::{Edits, NodeKind, YamlError};

use super::report::{FileReport, How};
use super::{PatchError, Pinned};
use crate::config::{HelmTarget, Pin};

/// What the chart of a values file does with images.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Chart {
    /// The chart folder, relative to the repo root.
    pub(crate) dir: String,
    /// `Some(false)`: no template reads a digest; `None`: cannot tell (a
    /// packaged dependency).
    pub(crate) reads_digest: Option<bool>,
    /// The template that renders an image (`templates/deployment.yaml`).
    pub(crate) image_template: Option<String>,
    /// `global.imageRegistry` in the chart's own `values.yaml`.
    pub(crate) global_registry: Option<String>,
}

/// The chart of the values file `values` (absolute): the nearest folder at
/// or above it, up to `root`, holding a `Chart.yaml`.
pub(crate) fn chart(root: &Path, values: &Path) -> Option<Chart> {
    let mut dir = values.parent()?;
    let dir = loop {
        if dir.join("Chart.yaml").is_file() {
            break dir;
        }
        if dir == root || !dir.starts_with(root) {
            return None;
        }
        dir = dir.parent()?;
    };
    let mut templates: Vec<PathBuf> = Vec::new();
    let mut packaged = false;
    collect(&dir.join("templates"), &mut templates);
    if let Ok(subcharts) = std::fs::read_dir(dir.join("charts")) {
        for sub in subcharts.flatten() {
            let path = sub.path();
            if path.is_dir() {
                collect(&path.join("templates"), &mut templates);
            } else if path.extension().is_some_and(|e| e == "tgz") {
                packaged = true;
            }
        }
    }
    templates.sort();
    // A dependency that is not unpacked here (`helm dependency build`
    // fetches it) holds templates we cannot read.
    let chart_yaml = std::fs::read_to_string(dir.join("Chart.yaml")).unwrap_or_default();
    if let Ok(docs) = yamledit::parse(&chart_yaml)
        && let Some(dependencies) = docs.first().and_then(|d| d.lookup(&["dependencies"]))
    {
        for dependency in dependencies.items() {
            let name = dependency
                .get("name")
                .and_then(|n| n.as_str())
                .unwrap_or("");
            if !dir.join("charts").join(name).is_dir() {
                packaged = true;
            }
        }
    }
    let mut reads_digest = false;
    let mut image_template = None;
    let mut defined = Vec::new();
    let mut used = Vec::new();
    for template in &templates {
        let Ok(text) = std::fs::read_to_string(template) else {
            continue;
        };
        reads_digest |= text.contains("digest");
        defined.extend(quoted_after(&text, "define \""));
        used.extend(quoted_after(&text, "include \""));
        used.extend(quoted_after(&text, "template \""));
        if image_template.is_none() && text.contains("image:") {
            image_template = Some(
                template
                    .strip_prefix(root)
                    .unwrap_or(template)
                    .display()
                    .to_string(),
            );
        }
    }
    // A helper used but defined nowhere here comes from a chart we cannot
    // read, and may well read the digest (Bitnami's `common.images.image`).
    if used.iter().any(|name| !defined.contains(name)) {
        packaged = true;
    }
    let global_registry = std::fs::read_to_string(dir.join("values.yaml"))
        .ok()
        .and_then(|text| global_registry(&text));
    Some(Chart {
        dir: dir.strip_prefix(root).unwrap_or(dir).display().to_string(),
        reads_digest: match (reads_digest, packaged) {
            (true, _) => Some(true),
            (false, true) => None,
            (false, false) => Some(false),
        },
        image_template,
        global_registry,
    })
}

/// The names in `"…"` after each `prefix` (`define "`) in a template.
fn quoted_after(text: &str, prefix: &str) -> Vec<String> {
    text.match_indices(prefix)
        .filter_map(|(i, _)| {
            let rest = &text[i + prefix.len()..];
            rest.find('"').map(|end| rest[..end].to_string())
        })
        // A template name, not `{{ … }}` text that happens to follow.
        .filter(|name| {
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'))
        })
        .collect()
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// A non-empty `global.imageRegistry` in values `text`.
fn global_registry(text: &str) -> Option<String> {
    let docs = yamledit::parse(text).ok()?;
    docs.first()?
        .lookup(&["global", "imageRegistry"])?
        .as_str()
        .filter(|r| !r.is_empty())
        .map(str::to_string)
}

/// Patches the values file `text` (shown as `rel`) for `target`; `all` are
/// every service's names, for telling a typo from a file that deploys only
/// services outside this run.
pub(crate) fn patch(
    text: &str,
    target: &HelmTarget,
    pins: &[Pinned],
    pin: Pin,
    rel: &str,
    chart: Option<&Chart>,
    all: &[&str],
) -> Result<(String, FileReport), PatchError> {
    let yaml = |source: YamlError| PatchError::Yaml {
        path: rel.to_string(),
        source,
    };
    let docs = yamledit::parse(text).map_err(yaml)?;
    let doc = docs.first();
    let mut edits = Edits::new();
    let mut report = FileReport::default();
    let by_tag = chart.is_some_and(|c| c.reads_digest == Some(false));
    let listed = |service: &str| {
        target
            .services
            .as_ref()
            .is_some_and(|only| only.iter().any(|s| s.value == service))
    };
    let mut looked_up = Vec::new();
    for p in pins {
        if target.services.is_some() && !listed(&p.service) {
            report.not_deployed.push(p.service.clone());
            continue;
        }
        let path = target.image_path.value.replace("{service}", &p.service);
        let keys: Vec<&str> = path.split('.').collect();
        looked_up.push(path.clone());
        let Some(node) = doc.and_then(|d| d.lookup(&keys)) else {
            if listed(&p.service) {
                return Err(PatchError::Invalid {
                    path: rel.to_string(),
                    message: format!(
                        "no `{path}` for service `{}`, which manifests.helm lists under `services:`; add it to the values file, or remove the service from `services:`",
                        p.service
                    ),
                });
            }
            report.not_deployed.push(p.service.clone());
            // A new service folder must not break everyone's runs; the
            // values file can be fixed afterwards (or say which services it
            // deploys under `services:`).
            report.warn(format!(
                "no `{path}`: this file does not deploy service `{}`; add it, or list the services this file deploys under manifests.helm `services:`",
                p.service
            ));
            continue;
        };
        let how = match (pin, by_tag) {
            (Pin::Digest, true) => How::ContentTag,
            (Pin::Digest, false) => How::Digest,
            (Pin::TagAndDigest, _) => How::TagAndDigest,
        };
        match node.resolve().kind() {
            NodeKind::Mapping(_) => {
                let resolved = node.resolve();
                if resolved.get("registry").is_some() {
                    edits
                        .set_key(node, "registry", p.host())
                        .and_then(|e| e.set_key(node, "repository", &p.repository))
                        .map_err(yaml)?;
                } else {
                    edits.set_key(node, "repository", &p.uri).map_err(yaml)?;
                }
                let tag = match how {
                    How::ContentTag => &p.content_tag,
                    _ => &p.tag,
                };
                edits.set_key(node, "tag", tag).map_err(yaml)?;
                // A chart that never reads the digest gets none added.
                if !by_tag || resolved.get("digest").is_some() {
                    edits.set_key(node, "digest", &p.digest).map_err(yaml)?;
                }
            }
            NodeKind::Scalar { .. } => {
                edits.set_scalar(node, &p.reference(pin)).map_err(yaml)?;
            }
            _ => {
                return Err(yaml(YamlError::WrongKind {
                    line: node.line(),
                    column: node.column(),
                    expected: "mapping or string",
                    found: super::kind_name(&node),
                }));
            }
        }
        report.pin(&p.service, how);
    }
    // A typo matches no service at all, not even one outside this run.
    let matches_any = |names: &[&str]| {
        names.iter().any(|name| {
            let path = target.image_path.value.replace("{service}", name);
            let keys: Vec<&str> = path.split('.').collect();
            doc.and_then(|d| d.lookup(&keys)).is_some()
        })
    };
    if report.pinned.is_empty() && target.services.is_none() && !matches_any(all) {
        return Err(PatchError::Invalid {
            path: rel.to_string(),
            message: format!(
                "manifests.helm image_path `{}` matches no service in this file (looked for {}); check the path, or remove this entry",
                target.image_path.value,
                looked_up
                    .iter()
                    .take(3)
                    .map(|p| format!("`{p}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
                    + if looked_up.len() > 3 { ", …" } else { "" }
            ),
        });
    }
    if by_tag && !report.pinned.is_empty() {
        let chart = chart.expect("by_tag needs a chart");
        report.warn(format!(
            "the chart {} deploys by tag: no template reads a digest{}; {}",
            chart.dir,
            chart
                .image_template
                .as_deref()
                .map(|t| format!(" ({t} renders the image from repository and tag)"))
                .unwrap_or_default(),
            match pin {
                Pin::Digest =>
                    "`tag` is set to each image's content tag, which names exactly the image built",
                Pin::TagAndDigest =>
                    "it runs `repository:tag`, and the digest next to it is not used",
            }
        ));
    }
    let global = doc
        .and_then(|d| d.lookup(&["global", "imageRegistry"]))
        .and_then(|n| n.as_str())
        .filter(|r| !r.is_empty())
        .map(|r| (r.to_string(), rel.to_string()))
        .or_else(|| {
            let chart = chart?;
            let registry = chart.global_registry.clone()?;
            Some((registry, format!("{}/values.yaml", chart.dir)))
        });
    if let Some((registry, set_in)) = global {
        let pinned: Vec<&Pinned> = pins
            .iter()
            .filter(|p| report.pinned.contains_key(&p.service))
            .collect();
        for p in pinned {
            if registry == p.host() {
                continue;
            }
            // The Bitnami helper puts global.imageRegistry in front of
            // `repository`, in place of `registry`.
            let repository = match doc
                .and_then(|d| {
                    let path = target.image_path.value.replace("{service}", &p.service);
                    let keys: Vec<&str> = path.split('.').collect();
                    d.lookup(&keys)
                })
                .is_some_and(|n| n.resolve().get("registry").is_some())
            {
                true => p.repository.as_str(),
                false => p.uri.as_str(),
            };
            report.warn(format!(
                "global.imageRegistry `{registry}` (set in {set_in}) comes first in charts that use it: `{}` renders as `{registry}/{repository}@{}`, not `{}`; remove it or set it to `{}`",
                p.service,
                p.digest,
                p.reference(Pin::Digest),
                p.host()
            ));
        }
    }
    Ok((edits.apply(text).map_err(yaml)?, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart_with(name: &str, files: &[(&str, &str)]) -> Option<Chart> {
        let root =
            std::env::temp_dir().join(format!("pipeline-chart-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for (path, text) in files {
            let p = root.join("chart").join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let found = chart(&root, &root.join("chart/values-prod.yaml"));
        std::fs::remove_dir_all(&root).unwrap();
        found
    }

    const CHART: (&str, &str) = ("Chart.yaml", "apiVersion: v2\nname: x\nversion: 1.0.0\n");

    #[test]
    fn what_the_chart_reads_is_told_from_its_templates() {
        let by_tag = chart_with(
            "tag",
            &[
                CHART,
                ("templates/_helpers.tpl", "{{- define \"x.name\" -}}x{{- end }}\n"),
                (
                    "templates/deployment.yaml",
                    "name: {{ include \"x.name\" . }}\nimage: \"{{ .Values.image.repository }}:{{ .Values.image.tag }}\"\n",
                ),
                ("templates/NOTES.txt", "{{- template \"{{ not a name\" }}\n"),
            ],
        )
        .unwrap();
        assert_eq!(by_tag.reads_digest, Some(false));
        assert_eq!(by_tag.dir, "chart");
        assert!(
            by_tag
                .image_template
                .unwrap()
                .ends_with("templates/deployment.yaml")
        );

        let digest = chart_with(
            "digest",
            &[
                CHART,
                (
                    "templates/d.yaml",
                    "image: {{ .Values.image.repository }}@{{ .Values.image.digest }}\n",
                ),
            ],
        )
        .unwrap();
        assert_eq!(digest.reads_digest, Some(true));

        // A helper from a dependency that is not unpacked: cannot tell.
        let helper = chart_with(
            "helper",
            &[
                CHART,
                (
                    "templates/d.yaml",
                    "image: {{ include \"common.images.image\" (dict) }}\n",
                ),
            ],
        )
        .unwrap();
        assert_eq!(helper.reads_digest, None);
        let dependency = chart_with(
            "dependency",
            &[
                (
                    "Chart.yaml",
                    "apiVersion: v2\nname: x\nversion: 1.0.0\ndependencies:\n  - name: common\n    repository: oci://registry-1.docker.io/bitnamicharts\n",
                ),
                ("templates/d.yaml", "image: {{ .Values.image.repository }}\n"),
                ("values.yaml", "global:\n  imageRegistry: mirror.example\n"),
            ],
        )
        .unwrap();
        assert_eq!(dependency.reads_digest, None);
        assert_eq!(
            dependency.global_registry.as_deref(),
            Some("mirror.example")
        );
        assert!(chart_with("none", &[("values.yaml", "a: 1\n")]).is_none());
    }
}
