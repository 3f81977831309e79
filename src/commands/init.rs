//! `pipeline init`: a first, commented `pipeline.yaml` written from what the
//! repo already holds: `services/<name>/Dockerfile`, kustomize overlays and
//! Helm values files. It guesses only what the files show (a Dockerfile that
//! takes `BASE_IMAGE` requires `base`; one that copies from outside its folder
//! builds from the repo root) and never overwrites an existing file.

use std::collections::BTreeMap;
use std::path::Path;

use dockerfile::Reach;

use crate::cli::Globals;
use crate::discover::image_arg;
use crate::error::Error;

/// What `init` found.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Found {
    /// Service name → (requires, builds from the repo root).
    pub(crate) services: BTreeMap<String, (Vec<String>, bool)>,
    /// Overlay folders, relative to the root.
    pub(crate) overlays: Vec<String>,
    /// Values files and the services they hold an `image` for.
    pub(crate) values: Vec<(String, Vec<String>)>,
}

/// Folders never worth walking into.
const SKIP: &[&str] = &[".git", ".pipeline", "target", "node_modules", "vendor"];

pub(crate) fn scan(root: &Path) -> Found {
    let mut found = Found::default();
    let mut dockerfiles = BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir(root.join("services")) {
        for entry in entries.flatten() {
            let file = entry.path().join("Dockerfile");
            if let Ok(text) = std::fs::read_to_string(&file) {
                dockerfiles.insert(entry.file_name().to_string_lossy().into_owned(), text);
            }
        }
    }
    for (name, text) in &dockerfiles {
        let requires = dockerfiles
            .keys()
            .filter(|other| *other != name && text.contains(&format!("ARG {}", image_arg(other))))
            .cloned()
            .collect();
        // Sources that exist at the root and not in the service's folder
        // mean `docker build -f services/x/Dockerfile .`.
        let from_root = match dockerfile::reach(text, &BTreeMap::new(), None) {
            Reach::Sources(sources) => sources.patterns().iter().any(|p| {
                let first = p.split('/').next().unwrap_or(p);
                !first.contains(['*', '?', '['])
                    && root.join(first).exists()
                    && !root.join("services").join(name).join(first).exists()
            }),
            Reach::All { .. } => false,
        };
        found.services.insert(name.clone(), (requires, from_root));
    }
    let walker = walkdir::WalkDir::new(root)
        .max_depth(6)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| !SKIP.iter().any(|s| e.file_name() == *s));
    for entry in walker.flatten() {
        let rel = entry
            .path()
            .strip_prefix(root)
            .unwrap_or(entry.path())
            .to_string_lossy()
            .replace('\\', "/");
        let name = entry.file_name().to_string_lossy();
        if crate::patch::KUSTOMIZATION_FILES.contains(&name.as_ref()) && rel.contains("overlays/") {
            found.overlays.push(
                rel.rsplit_once('/')
                    .map_or(String::new(), |(d, _)| d.to_string()),
            );
        }
        let is_values = name.starts_with("values")
            && (name.ends_with(".yaml") || name.ends_with(".yml"))
            && entry
                .path()
                .parent()
                .is_some_and(|d| d.join("Chart.yaml").exists());
        if is_values {
            let services = values_services(entry.path(), &found);
            if !services.is_empty() {
                found.values.push((rel, services));
            }
        }
    }
    found
}

/// The services that have an `<service>.image` in a values file.
fn values_services(path: &Path, found: &Found) -> Vec<String> {
    let Some(docs) = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| yamledit::parse(&t).ok())
    else {
        return Vec::new();
    };
    let Some(doc) = docs.first() else {
        return Vec::new();
    };
    found
        .services
        .keys()
        .filter(|s| doc.lookup(&[s.as_str(), "image"]).is_some())
        .cloned()
        .collect()
}

/// `text` with `# comment` at a fixed column, so the file reads as a table.
fn commented(text: &str, comment: &str) -> String {
    format!("{text:<36}# {comment}\n")
}

/// The commented `pipeline.yaml`.
pub(crate) fn render(found: &Found, prefix: &str, region: &str) -> String {
    let mut out = String::new();
    out.push_str("# pipeline.yaml, written by `pipeline init` from what this repo holds.\n");
    out.push_str("# Check it, then `pipeline plan --offline` shows what a run would build.\n");
    out.push_str("version: 1\nregistry:\n  ecr:\n");
    out.push_str(&commented(
        &format!("    region: {region}"),
        "or leave out: AWS_REGION / the profile decide",
    ));
    out.push_str(&commented(
        "    create_repositories: true",
        "or {tag_mutability: IMMUTABLE, scan_on_push: true}",
    ));
    out.push_str(&commented(
        "  # host: 127.0.0.1:5000",
        "push here instead of the ECR endpoint",
    ));
    out.push_str(&commented(
        &format!("  repository_prefix: {prefix}"),
        "repository = prefix + service name",
    ));
    let names: Vec<&str> = found.services.keys().map(String::as_str).collect();
    out.push_str(&commented(
        "services_dir: services",
        &if names.is_empty() {
            "no services/<name>/Dockerfile found yet".to_string()
        } else {
            format!("found: {}", names.join(", "))
        },
    ));
    let special: Vec<_> = found
        .services
        .iter()
        .filter(|(_, (requires, root))| !requires.is_empty() || *root)
        .collect();
    if special.is_empty() {
        out.push_str(&commented(
            "services: {}",
            "per-service settings, when needed",
        ));
    } else {
        out.push_str("services:\n");
        for (name, (requires, root)) in special {
            out.push_str(&format!("  {name}:\n"));
            if !requires.is_empty() {
                let args: Vec<String> = requires.iter().map(|r| image_arg(r)).collect();
                out.push_str(&commented(
                    &format!("    requires: [{}]", requires.join(", ")),
                    &format!("its Dockerfile takes {}", args.join(", ")),
                ));
            }
            if *root {
                out.push_str(&commented(
                    "    context: .",
                    "its Dockerfile copies from outside its folder",
                ));
            }
        }
    }
    out.push_str(&commented(
        "tags: [latest, \"{git_short}\"]",
        "the content tag in-<hex> is always pushed too",
    ));
    out.push_str("build:\n  jobs: 2\n  push_jobs: 4\n");
    if found.overlays.is_empty() && found.values.is_empty() {
        out.push_str("# manifests:                        # what `run` pins to the new digests\n");
        out.push_str("#   kustomize: [k8s/overlays/production]\n");
        return out;
    }
    out.push_str(&commented(
        "manifests:",
        "pinned to the new digests by `run`",
    ));
    if !found.overlays.is_empty() {
        out.push_str("  kustomize:\n");
        for o in &found.overlays {
            out.push_str(&format!("    - {o}\n"));
        }
    }
    if !found.values.is_empty() {
        out.push_str("  helm:\n");
        for (file, services) in &found.values {
            out.push_str(&format!(
                "    - values: {file}\n      image_path: \"{{service}}.image\"\n      services: [{}]\n",
                services.join(", ")
            ));
        }
    }
    out.push_str(&commented("  pin: digest", "or tag+digest"));
    out
}

/// `pipeline init`: writes the config file, never over an existing one.
pub(super) fn command(globals: &Globals) -> Result<(), Error> {
    let path = &globals.config;
    if path.exists() {
        return Err(Error::Usage(format!(
            "{} already exists; init never overwrites it (remove it, or pass --config NEW.yaml)",
            path.display()
        )));
    }
    let root = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let found = scan(root);
    let name = std::fs::canonicalize(root)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().to_lowercase()))
        .map(|n| {
            n.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' {
                        c
                    } else {
                        '-'
                    }
                })
                .collect::<String>()
        })
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "app".into());
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into());
    let text = render(&found, &format!("{name}/"), &region);
    // `create_new`: a file that appeared meanwhile is still not overwritten.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
        .map_err(|e| Error::Environment(format!("writing {}: {e}", path.display())))?;
    if !globals.quiet {
        eprintln!(
            "wrote {}: {} services, {} overlays, {} values files; check it, then `pipeline plan --offline`",
            path.display(),
            found.services.len(),
            found.overlays.len(),
            found.values.len()
        );
    }
    Ok(())
}
