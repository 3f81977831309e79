//! Raw manifests: every container `image:` of every workload that belongs to
//! a service becomes `repository@digest` (or `repository:tag@digest`), and
//! where the images live in a manifest.

use yamledit::{Edits, Node, NodeKind, YamlError};

use super::report::{FileReport, How};
use super::{Pinned, image_name};
use crate::config::Pin;

/// Where the pod spec lives, by workload kind (`init` reads it too).
pub(crate) fn pod_spec_path(kind: &str) -> Option<&'static [&'static str]> {
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
/// that belongs to a service becomes `repository@digest`. The report names
/// the services pinned, those the file does not hold, and images that look
/// like a service's but belong to none.
pub(crate) fn patch(
    text: &str,
    pins: &[Pinned],
    pin: Pin,
) -> Result<(String, FileReport), YamlError> {
    let docs = yamledit::parse(text)?;
    let mut edits = Edits::new();
    let mut report = FileReport::default();
    let how = match pin {
        Pin::Digest => How::Digest,
        Pin::TagAndDigest => How::TagAndDigest,
    };
    for doc in &docs {
        let mut images = Vec::new();
        image_nodes(doc.root(), &mut images);
        let mut edited = Vec::new();
        for image in images {
            let Some(reference) = image.as_str() else {
                continue;
            };
            let line = image.line();
            // An image shared through an anchor (`image: *img`, a `<<` merge,
            // an aliased container list) is edited once, at the anchor: every
            // sharer is a container of this same image.
            let image = image.owner();
            match pins.iter().find(|p| p.owns(reference)) {
                Some(p) => {
                    report.pin(&p.service, how);
                    let wanted = p.reference(pin);
                    if reference != wanted && !edited.contains(&image.span()) {
                        edits.set_scalar(image, &wanted)?;
                        edited.push(image.span());
                    }
                }
                None => {
                    if let Some(p) = pins.iter().find(|p| p.looks_like(reference)) {
                        report.warn(lookalike(&format!("line {line}"), reference, p));
                    }
                }
            }
        }
    }
    report.not_deployed = pins
        .iter()
        .filter(|p| !report.pinned.contains_key(&p.service))
        .map(|p| p.service.clone())
        .collect();
    Ok((edits.apply(text)?, report))
}

/// The warning for an image that looks like `p`'s but is not its.
pub(super) fn lookalike(at: &str, reference: &str, p: &Pinned) -> String {
    format!(
        "{at}: image `{reference}` looks like service `{}`'s but is not its repository (`{}` or a name ending in `/{}`); it is left as it is",
        p.service,
        p.repository,
        p.repository.rsplit('/').next().unwrap_or(&p.repository),
    )
}

/// The `image` nodes of every container (`initContainers`, `containers`,
/// `ephemeralContainers`) of a workload object, or of each object of a
/// `List`.
pub(super) fn image_nodes<'a>(object: Node<'a>, out: &mut Vec<Node<'a>>) {
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

/// Every image a document may bring into an overlay, wherever it sits: the
/// `image` of any item of a `containers`, `initContainers` or
/// `ephemeralContainers` list at any depth (any kind, also a custom
/// resource or a strategic-merge patch), and the image a JSON 6902 patch
/// operation adds (`path: …/image`, or a `value` holding containers).
/// Names only, tag and digest stripped.
pub(super) fn mentioned_images(node: Node<'_>, out: &mut Vec<String>) {
    let mut add = |reference: &str| {
        let name = image_name(reference).to_string();
        if !name.is_empty() && !out.contains(&name) {
            out.push(name);
        }
    };
    let mut stack = vec![node.resolve()];
    while let Some(node) = stack.pop() {
        match node.kind() {
            NodeKind::Mapping(_) => {
                // A JSON 6902 operation setting an image, or adding a
                // container (`path: /spec/template/spec/initContainers/-`).
                if let (Some(path), Some(value)) = (
                    node.get("path").and_then(|p| p.as_str()),
                    node.get("value").map(|v| v.resolve()),
                ) {
                    if let Some(image) = value.as_str().filter(|_| path.ends_with("/image")) {
                        add(image);
                    } else if path.contains("ontainers")
                        && let Some(image) = value.get("image").and_then(|i| i.as_str())
                    {
                        add(image);
                    }
                }
                for (key, value) in node.entries() {
                    let value = value.resolve();
                    if matches!(
                        key.as_str(),
                        Some("containers" | "initContainers" | "ephemeralContainers")
                    ) {
                        for item in value.items() {
                            if let Some(image) =
                                item.resolve().get("image").and_then(|i| i.as_str())
                            {
                                add(image);
                            }
                        }
                    }
                    stack.push(value);
                }
            }
            NodeKind::Sequence(_) => stack.extend(node.items().map(|n| n.resolve())),
            NodeKind::Scalar { .. } | NodeKind::Alias { .. } => {}
        }
    }
}
