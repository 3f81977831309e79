//! `pipeline init`: a first, commented `pipeline.yaml` written from what the
//! repo already holds, then the offline plan of it, so the user sees at
//! once what a run would build.
//!
//! What it reads, in order of trust:
//!
//! 1. The images the repo's Compose files and `skaffold.yaml` build
//!    (`compose`): each is a service with their context, Dockerfile,
//!    target and build args. A build whose Dockerfile is missing is
//!    reported, never written.
//! 2. Folders holding a `Dockerfile` or `Containerfile` under the usual
//!    roots (`services/`, `src/`, `apps/`, `cmd/`, `packages/`, or
//!    `--services-dir`). The root holding most services becomes
//!    `services_dir`, deep enough (`discover.depth`) for the folders found
//!    there; a service that discovery would not find under its name gets
//!    `folder:` (or `dockerfile:` when its Dockerfile has another name).
//!    When none of these roots holds a service, the folders at the repo
//!    root are the services, each with its `folder:`. Discovery is simulated here rather than called, because its errors
//!    (a folder name that is no repository name) are what init must avoid.
//! 3. For each service, the plan's own COPY-source check
//!    (`plan::sources`): a folder service whose sources exist only in a
//!    wider folder builds from there (`context: .`), as `plan` would tell
//!    the user to do; a Dockerfile that takes `<NAME>_IMAGE` of another
//!    service requires it.
//! 4. The manifests that deploy the services' images (`manifests`).
//!
//! It never overwrites a file. When the written file does not plan (a
//! discovery or plan error), the file stays and the error is the exit code
//! 2: it is a first draft, and the error says what to change.

mod compose;
mod manifests;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::cli::{Globals, PlanOptions};
use crate::config::Config;
use crate::discover::{self, DOCKERFILES, image_arg};
use crate::error::Error;
use crate::patch::{Pinned, image_name};
use crate::plan::context::Listing;
use crate::plan::sources::{self, MissingSource};

use manifests::Manifests;

/// Where service folders usually live, in the order a tie is decided.
const ROOTS: [&str; 5] = ["services", "src", "apps", "cmd", "packages"];

/// How deep service folders are looked for under a root.
const MAX_DEPTH: usize = 4;

/// One service as init writes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Planned {
    pub(crate) name: String,
    /// The Compose or Skaffold file that builds it (`compose.yaml`, or
    /// `compose.tests.yaml: frontendTests` when the name changed).
    pub(crate) origin: Option<String>,
    /// The folder of its Dockerfile, relative to the root.
    pub(crate) folder: String,
    pub(crate) dockerfile: String,
    pub(crate) context: String,
    pub(crate) target: Option<String>,
    pub(crate) build_args: BTreeMap<String, String>,
    pub(crate) requires: Vec<String>,
    /// The repository, when not `repository_prefix` + name.
    pub(crate) repository: Option<String>,
    /// The image the Compose file tags it with.
    pub(crate) image: Option<String>,
    /// `folder:` is written: discovery would not find it under this name.
    pub(crate) write_folder: bool,
    /// `dockerfile:` is written: its Dockerfile is not the one its folder
    /// would give.
    pub(crate) write_dockerfile: bool,
    /// `context:` is written: it is not the one pipeline.yaml would give.
    pub(crate) write_context: bool,
    /// The COPY source that made a folder service build from a wider context.
    pub(crate) context_why: Option<String>,
    /// What the plan's COPY check will call WILL FAIL.
    pub(crate) missing: Vec<String>,
}

/// What `init` found.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Found {
    pub(crate) services_dir: String,
    /// The service folders are at the root: `services_dir` is not written
    /// (discovery under `.` would name them `./x`, which a `folder:` does
    /// not claim), and each service names its folder.
    pub(crate) at_root: bool,
    pub(crate) depth: usize,
    /// Sorted by name.
    pub(crate) services: Vec<Planned>,
    /// The Compose and Skaffold files read.
    pub(crate) read: Vec<String>,
    /// Builds and folders that are not services, with why.
    pub(crate) skipped: Vec<String>,
    /// An image name several Compose services share (a tag each), and them.
    pub(crate) shared_images: Vec<(String, Vec<String>)>,
    /// `defaults: {context: …}` when most services build from there.
    pub(crate) default_context: Option<String>,
    pub(crate) manifests: Manifests,
}

/// A folder discovery would find: its name, folder and Dockerfile's name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Discovered {
    name: String,
    folder: String,
    file: &'static str,
}

/// Reads the repo at `root`; `services_dir` is `--services-dir`, relative
/// to the root; `prefix` the repository prefix and `repo_name` the name a
/// lone Dockerfile at the root gets.
pub(crate) fn scan(
    root: &Path,
    services_dir: Option<&str>,
    prefix: &str,
    repo_name: &str,
) -> Found {
    let builds = compose::read(root);
    let mut found = Found {
        read: builds.files.clone(),
        skipped: builds.skipped.clone(),
        ..Found::default()
    };
    let build_folders: BTreeSet<String> = builds
        .builds
        .iter()
        .map(|b| parent(&b.dockerfile))
        .collect();

    // The root holding most services becomes services_dir.
    let roots: Vec<String> = match services_dir {
        Some(dir) => vec![dir.to_string()],
        None => ROOTS
            .iter()
            .filter(|r| root.join(r).is_dir())
            .map(|r| r.to_string())
            .chain(std::iter::once(".".to_string()))
            .collect(),
    };
    // (how many services, the root, its Dockerfile folders with their depth)
    type Candidate = (usize, String, Vec<(String, usize)>);
    let mut best: Option<Candidate> = None;
    for candidate in &roots {
        let folders = dockerfile_folders(root, candidate);
        let mut all: BTreeSet<&str> = folders.iter().map(|(f, _)| f.as_str()).collect();
        all.extend(
            build_folders
                .iter()
                .filter(|f| within(f, candidate))
                .map(String::as_str),
        );
        let count = all.len();
        // The repo root only when no usual root holds anything.
        let root_too_late = candidate == "." && best.is_some();
        if best.as_ref().is_none_or(|(n, _, _)| count > *n)
            && (count > 0 || services_dir.is_some())
            && !root_too_late
        {
            best = Some((count, candidate.clone(), folders));
        }
    }
    let (_, services_dir, folders) = best.unwrap_or((0, "services".into(), Vec::new()));
    // Deep enough for the folders no build describes; a build's folder
    // gets `folder:` instead, so that discovery does not walk deeper
    // everywhere for one service.
    found.depth = folders
        .iter()
        .filter(|(f, _)| !build_folders.contains(f))
        .map(|(_, depth)| *depth)
        .max()
        .unwrap_or(1)
        .clamp(1, 8);
    let discovered = match root.join(&services_dir).is_dir() {
        true => discover_folders(root, &services_dir, found.depth),
        false => Vec::new(),
    };
    found.at_root = services_dir == ".";
    found.services_dir = services_dir;

    // Builds first, then the folders discovery finds that no build claimed.
    let mut claimed: BTreeSet<String> = BTreeSet::new();
    for b in &builds.builds {
        let folder = parent(&b.dockerfile);
        let file = b.dockerfile.rsplit('/').next().unwrap_or(&b.dockerfile);
        let picked = DOCKERFILES
            .into_iter()
            .find(|d| root.join(&folder).join(d).is_file());
        let by_folder = picked == Some(file) && !claimed.contains(&folder);
        let same_name = discovered
            .iter()
            .any(|d| d.folder == folder && d.name == b.name);
        if by_folder {
            claimed.insert(folder.clone());
        }
        found.services.push(Planned {
            name: b.name.clone(),
            origin: Some(b.origin.clone()),
            folder,
            dockerfile: b.dockerfile.clone(),
            context: b.context.clone(),
            target: b.target.clone(),
            build_args: b.args.clone(),
            image: b.image.clone(),
            write_folder: by_folder && (!same_name || found.at_root),
            write_dockerfile: !by_folder,
            ..Planned::default()
        });
    }
    for d in &discovered {
        if claimed.contains(&d.folder) {
            continue;
        }
        // A valid name is its own; another (`Legacy`) gets `folder:`.
        let Some(name) = compose::service_name(&d.name) else {
            found.skipped.push(format!(
                "{}: its name cannot be made an image repository name",
                d.folder
            ));
            continue;
        };
        if let Some(other) = found.services.iter().find(|s| s.name == name) {
            found.skipped.push(format!(
                "{}: `{name}` is already the service {} builds from {}; set services.<another name>.folder: {} to build it too",
                d.folder,
                other.origin.as_deref().unwrap_or("found"),
                other.dockerfile,
                d.folder
            ));
            continue;
        }
        found.services.push(Planned {
            write_folder: name != d.name || found.at_root,
            name,
            folder: d.folder.clone(),
            dockerfile: format!("{}/{}", d.folder, d.file),
            context: d.folder.clone(),
            ..Planned::default()
        });
    }
    // A lone Dockerfile at the root is the repo's one service.
    if found.services.is_empty()
        && let Some(file) = DOCKERFILES.into_iter().find(|d| root.join(d).is_file())
        && let Some(name) = compose::service_name(repo_name)
    {
        found.at_root = true;
        found.services.push(Planned {
            name,
            folder: ".".into(),
            dockerfile: file.into(),
            context: ".".into(),
            write_dockerfile: true,
            ..Planned::default()
        });
    }
    found.services.sort_by(|a, b| a.name.cmp(&b.name));

    // Requirements, then the context each Dockerfile needs.
    let names: Vec<String> = found.services.iter().map(|s| s.name.clone()).collect();
    for s in &mut found.services {
        let text = std::fs::read_to_string(root.join(&s.dockerfile)).unwrap_or_default();
        s.requires = names
            .iter()
            .filter(|other| **other != s.name && takes_arg(&text, &image_arg(other)))
            .cloned()
            .collect();
        for r in &s.requires {
            s.build_args.remove(&image_arg(r));
        }
        let mut missing = missing_sources(root, s);
        if s.origin.is_none() {
            // The widest folder that has a source the folder lacks.
            let wider = missing
                .iter()
                .filter_map(|m| m.context.as_ref().map(|c| (c, &m.source)))
                .min_by_key(|(c, _)| if *c == "." { 0 } else { c.len() + 1 });
            if let Some((context, source)) = wider {
                s.context_why = Some(source.clone());
                s.context = context.clone();
                missing = missing_sources(root, s);
            }
        }
        s.missing = missing.iter().map(MissingSource::message).collect();
    }

    // One image name for several services is a tag per service: noted,
    // not used. A service's own image name decides its repository, so
    // manifests that use it are pinned.
    let mut by_image: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in &found.services {
        if let Some(image) = &s.image {
            by_image
                .entry(image_name(image).to_string())
                .or_default()
                .push(s.name.clone());
        }
    }
    found.shared_images = by_image
        .iter()
        .filter(|(_, names)| names.len() > 1)
        .map(|(i, n)| (i.clone(), n.clone()))
        .collect();
    let mut taken: BTreeSet<String> = found
        .services
        .iter()
        .map(|s| format!("{prefix}{}", s.name))
        .collect();
    for s in &mut found.services {
        let Some(image) = &s.image else { continue };
        let name = image_name(image);
        let last = name.rsplit('/').next().unwrap_or(name);
        let own = by_image.get(name).is_some_and(|n| n.len() == 1);
        let repository = format!("{prefix}{last}");
        if own
            && last != s.name
            && compose::service_name(last).as_deref() == Some(last)
            && taken.insert(repository.clone())
        {
            s.repository = Some(repository);
        }
    }

    let from_root = found.services.iter().filter(|s| s.context == ".").count();
    if from_root >= 2 && from_root * 2 > found.services.len() {
        found.default_context = Some(".".into());
    }
    // `context:` where it differs from what pipeline.yaml would give.
    for i in 0..found.services.len() {
        let s = &found.services[i];
        let default = match (&found.default_context, s.write_folder) {
            (Some(c), _) => c.clone(),
            (None, true) => s.folder.clone(),
            (None, false) => discovered
                .iter()
                .find(|d| d.name == s.name)
                .map(|d| d.folder.clone())
                .unwrap_or_else(|| format!("{}/{}", found.services_dir, s.name)),
        };
        found.services[i].write_context = found.services[i].context != default;
    }

    let pins: Vec<Pinned> = found
        .services
        .iter()
        .map(|s| {
            let repository = s
                .repository
                .clone()
                .unwrap_or_else(|| format!("{prefix}{}", s.name));
            Pinned::placeholder(
                &s.name,
                &repository,
                repository.clone(),
                "latest".into(),
                "in-init".into(),
            )
        })
        .collect();
    found.manifests = manifests::scan(root, &pins, &found.read);
    found
}

/// Whether the Dockerfile `text` declares `ARG <arg>` (with or without a
/// default).
fn takes_arg(text: &str, arg: &str) -> bool {
    text.lines().any(|line| {
        let mut words = line.split_whitespace();
        words.next().is_some_and(|w| w.eq_ignore_ascii_case("ARG"))
            && words.any(|w| w.split('=').next() == Some(arg))
    })
}

/// The plan's COPY-source check of `s` at its context.
fn missing_sources(root: &Path, s: &Planned) -> Vec<MissingSource> {
    let Ok(text) = std::fs::read_to_string(root.join(&s.dockerfile)) else {
        return Vec::new();
    };
    let Ok(parsed) = dockerfile::Dockerfile::parse(&text) else {
        return Vec::new();
    };
    let reach = match dockerfile::reach(&text, &s.build_args, s.target.as_deref()) {
        dockerfile::Reach::Sources(sources) => Some(sources),
        dockerfile::Reach::All { .. } => None,
    };
    let Ok(listing) = Listing::read(
        &root.join(&s.context),
        &root.join(&s.dockerfile),
        &root.join(crate::plan::STATE_DIR),
        reach,
    ) else {
        return Vec::new();
    };
    sources::missing(
        root,
        &parsed,
        &s.dockerfile,
        &s.context,
        &listing,
        &s.build_args,
        s.target.as_deref(),
    )
}

/// Folders holding a Dockerfile or Containerfile under `dir` (relative to
/// the root), at most `MAX_DEPTH` deep, with their depth; a service
/// folder's own subfolders are its sources. Dependency and build folders
/// are not looked into.
fn dockerfile_folders(root: &Path, dir: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut todo = vec![(dir.to_string(), 0)];
    while let Some((rel, depth)) = todo.pop() {
        for (name, child) in subfolders(root, &rel) {
            if ["node_modules", "vendor", "target"].contains(&name.as_str()) {
                continue;
            }
            if DOCKERFILES
                .iter()
                .any(|d| root.join(&child).join(d).is_file())
            {
                out.push((child, depth + 1));
            } else if depth + 1 < MAX_DEPTH {
                todo.push((child, depth + 1));
            }
        }
    }
    out.sort();
    out
}

/// The folders discovery finds under `services_dir` at most `depth` deep,
/// named as it names them (`services/payments/api` is `payments-api`).
fn discover_folders(root: &Path, services_dir: &str, depth: usize) -> Vec<Discovered> {
    let mut out = Vec::new();
    let mut todo = vec![(services_dir.to_string(), 1)];
    while let Some((rel, level)) = todo.pop() {
        for (_, child) in subfolders(root, &rel) {
            match DOCKERFILES
                .into_iter()
                .find(|d| root.join(&child).join(d).is_file())
            {
                Some(file) => {
                    let below = match services_dir {
                        "." => child.as_str(),
                        dir => child
                            .strip_prefix(dir)
                            .unwrap_or(&child)
                            .trim_start_matches('/'),
                    };
                    out.push(Discovered {
                        name: below.replace('/', "-"),
                        folder: child.clone(),
                        file,
                    });
                }
                None if level < depth => todo.push((child, level + 1)),
                None => {}
            }
        }
    }
    out.sort_by(|a, b| a.folder.cmp(&b.folder));
    out
}

/// The visible subfolders of `rel`: (name, path relative to the root).
fn subfolders(root: &Path, rel: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(root.join(rel))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .map(|n| {
            let child = match rel {
                "." => n.clone(),
                _ => format!("{rel}/{n}"),
            };
            (n, child)
        })
        .collect();
    out.sort();
    out
}

/// Whether `path` is `dir` or below it (both relative to the root).
fn within(path: &str, dir: &str) -> bool {
    dir == "." || path == dir || path.starts_with(&format!("{dir}/"))
}

/// The folder of `rel`, `.` for the root.
fn parent(rel: &str) -> String {
    match rel.rsplit_once('/') {
        Some((dir, _)) => dir.to_string(),
        None => ".".to_string(),
    }
}

/// `text` with `# comment` at a fixed column, so the file reads as a table.
fn commented(text: &str, comment: &str) -> String {
    format!("{:<36}# {comment}\n", format!("{text} "))
}

/// `text` as comment lines of at most 80 columns, continued lines indented.
fn comment_block(text: &str) -> String {
    wrapped("#", "#  ", text)
}

/// `text` as a commented list item.
fn comment_item(text: &str) -> String {
    wrapped("#   -", "#    ", text)
}

/// `text` wrapped at 80 columns, the first line starting with `first`,
/// the others with `rest`.
fn wrapped(first: &str, rest: &str, text: &str) -> String {
    let mut out = String::new();
    let mut line = String::from(first);
    for word in text.split_whitespace() {
        if line.len() + 1 + word.len() > 80 && line.len() > rest.len() {
            out.push_str(&line);
            out.push('\n');
            line = String::from(rest);
        }
        line.push(' ');
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
    out
}

/// `s` as a YAML scalar: plain when it reads back as this very string,
/// double-quoted (JSON's escaping is YAML's) otherwise.
fn scalar(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-'))
        && s.starts_with(|c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/'))
        && s.parse::<f64>().is_err()
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true"
                | "false"
                | "yes"
                | "no"
                | "on"
                | "off"
                | "y"
                | "n"
                | "null"
                | "~"
                | ".inf"
                | ".nan"
        );
    match plain {
        true => s.to_string(),
        false => serde_json::to_string(s).expect("a string serializes"),
    }
}

/// `names` joined, the first `n` of them and how many more.
fn some(names: &[String], n: usize) -> String {
    let shown: Vec<&str> = names.iter().take(n).map(String::as_str).collect();
    match names.len() > n {
        true => format!("{} (+{} more)", shown.join(", "), names.len() - n),
        false => shown.join(", "),
    }
}

/// The commented `pipeline.yaml`; `git_commit`: the repo has a commit, so
/// `{git_short}` can be rendered.
pub(crate) fn render(found: &Found, prefix: &str, region: &str, git_commit: bool) -> String {
    let mut out = String::new();
    out.push_str("# pipeline.yaml, written by `pipeline init` from what this repo holds.\n");
    out.push_str("# Check it, then `pipeline plan --offline` shows what a run would build.\n");
    if !found.read.is_empty() {
        out.push_str(&comment_block(&format!(
            "Services are the images {} build{}, and the folders holding a Dockerfile.",
            found.read.join(", "),
            if found.read.len() == 1 { "s" } else { "" }
        )));
    }
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
        &format!("  repository_prefix: {}", scalar(prefix)),
        "repository = prefix + service name",
    ));
    let names: Vec<String> = found.services.iter().map(|s| s.name.clone()).collect();
    let services_dir = format!("services_dir: {}", scalar(&found.services_dir));
    let inline = commented(&services_dir, &format!("found: {}", names.join(", ")));
    if names.is_empty() {
        out.push_str(&commented(
            &services_dir,
            "no service found yet: no Compose build, no folder holding a Dockerfile",
        ));
    } else if found.at_root {
        out.push_str(&commented(
            "# services_dir: services",
            &format!(
                "found at the root, each with its folder: {}",
                names.join(", ")
            ),
        ));
    } else if inline.len() <= 101 {
        out.push_str(&inline);
    } else {
        out.push_str(&comment_block(&format!(
            "{} services: {}.",
            names.len(),
            names.join(", ")
        )));
        out.push_str(&commented(
            &services_dir,
            "each folder under it holding a Dockerfile is a service",
        ));
    }
    if found.depth > 1 && !found.at_root {
        out.push_str("discover:\n");
        out.push_str(&commented(
            &format!("  depth: {}", found.depth),
            "services/<group>/<name> is <group>-<name>",
        ));
    }
    if let Some(context) = &found.default_context {
        let n = found
            .services
            .iter()
            .filter(|s| &s.context == context)
            .count();
        out.push_str("defaults:\n");
        out.push_str(&commented(
            &format!("  context: {}", scalar(context)),
            &format!("{n} of {} services build from the repo root", names.len()),
        ));
    }
    let special: Vec<&Planned> = found
        .services
        .iter()
        .filter(|s| {
            s.write_folder
                || s.write_dockerfile
                || s.write_context
                || s.target.is_some()
                || !s.build_args.is_empty()
                || !s.requires.is_empty()
                || s.repository.is_some()
        })
        .collect();
    if special.is_empty() {
        out.push_str(&commented(
            "services: {}",
            "per-service settings, when needed",
        ));
    } else {
        out.push_str("services:\n");
        for s in special {
            let key = format!("  {}:", scalar(&s.name));
            match &s.origin {
                Some(origin) => out.push_str(&commented(&key, origin)),
                None => {
                    out.push_str(&key);
                    out.push('\n');
                }
            }
            if s.write_folder {
                out.push_str(&format!("    folder: {}\n", scalar(&s.folder)));
            }
            if s.write_dockerfile {
                out.push_str(&format!("    dockerfile: {}\n", scalar(&s.dockerfile)));
            }
            if s.write_context {
                let line = format!("    context: {}", scalar(&s.context));
                match &s.context_why {
                    Some(source) => out.push_str(&commented(
                        &line,
                        &format!("its Dockerfile copies {source} from here"),
                    )),
                    None => {
                        out.push_str(&line);
                        out.push('\n');
                    }
                }
            }
            if let Some(target) = &s.target {
                out.push_str(&format!("    target: {}\n", scalar(target)));
            }
            if !s.build_args.is_empty() {
                let args: Vec<String> = s
                    .build_args
                    .iter()
                    .map(|(k, v)| {
                        format!(
                            "{}: {}",
                            scalar(k),
                            serde_json::to_string(v).expect("a string serializes")
                        )
                    })
                    .collect();
                out.push_str(&format!("    build_args: {{{}}}\n", args.join(", ")));
            }
            if !s.requires.is_empty() {
                let args: Vec<String> = s.requires.iter().map(|r| image_arg(r)).collect();
                out.push_str(&commented(
                    &format!("    requires: [{}]", s.requires.join(", ")),
                    &format!("its Dockerfile takes {}", args.join(", ")),
                ));
            }
            if let (Some(repository), Some(image)) = (&s.repository, &s.image) {
                out.push_str(&commented(
                    &format!("    repository: {}", scalar(repository)),
                    &format!("it is tagged {image}"),
                ));
            }
        }
    }
    if !found.skipped.is_empty() {
        out.push_str("# Not services:\n");
        for why in &found.skipped {
            out.push_str(&comment_item(why));
        }
    }
    for (image, services) in &found.shared_images {
        out.push_str(&comment_block(&format!(
            "{} are all tagged {image}:<tag>, one repository with a tag per service; here each service has a repository of its own (prefix + name), and manifests that use {image} are not pinned.",
            some(services, 4)
        )));
    }
    match git_commit {
        true => out.push_str(&commented(
            "tags: [latest, \"{git_short}\"]",
            "the content tag in-<hex> is always pushed too",
        )),
        false => out.push_str(&commented(
            "tags: [latest]",
            "add \"{git_short}\" once the repo has a commit",
        )),
    }
    out.push_str("build:\n  jobs: 2\n  push_jobs: 4\n");
    let m = &found.manifests;
    if m.overlays.is_empty() && m.values.is_empty() && m.raw.is_empty() {
        out.push_str("# manifests:                        # what `run` pins to the new digests\n");
        out.push_str("#   kustomize: [k8s/overlays/production]\n");
    } else {
        out.push_str(&commented(
            "manifests:",
            "pinned to the new digests by `run`",
        ));
        if !m.overlays.is_empty() {
            out.push_str("  kustomize:\n");
            for o in &m.overlays {
                out.push_str(&format!("    - {}\n", scalar(o)));
            }
        }
        if !m.values.is_empty() {
            out.push_str("  helm:\n");
            for v in &m.values {
                out.push_str(&format!(
                    "    - values: {}\n      image_path: \"{}\"\n      services: [{}]\n",
                    scalar(&v.file),
                    v.image_path,
                    v.services.join(", ")
                ));
            }
        }
        if !m.raw.is_empty() {
            out.push_str("  raw:\n");
            for r in &m.raw {
                out.push_str(&format!("    - {}\n", scalar(r)));
            }
        }
        out.push_str(&commented("  pin: digest", "or tag+digest"));
    }
    if !m.lookalikes.is_empty() {
        out.push_str("# Not pinned: images that look like a service's but belong to none:\n");
        for (file, images) in &m.lookalikes {
            out.push_str(&comment_item(&format!("{file}: {}", some(images, 2))));
        }
    }
    if !m.other_charts.is_empty() {
        out.push_str(&comment_block(&format!(
            "No values file of {} holds a service's image at {{service}}.image or image; add a manifests.helm entry with its image_path by hand.",
            m.other_charts.join(", ")
        )));
    }
    out
}

/// What init found, for stderr.
fn summary(path: &Path, found: &Found) -> String {
    let m = &found.manifests;
    let mut out = format!(
        "wrote {}: {} services, {} overlays, {} values files, {} raw manifests\n",
        path.display(),
        found.services.len(),
        m.overlays.len(),
        m.values.len(),
        m.raw.len()
    );
    let built: Vec<String> = found
        .services
        .iter()
        .filter(|s| s.origin.is_some())
        .map(|s| s.name.clone())
        .collect();
    if !found.read.is_empty() {
        out.push_str(&format!(
            "  built by {}: {} ({})\n",
            found.read.join(", "),
            built.len(),
            built.join(", ")
        ));
    }
    let folders: Vec<String> = found
        .services
        .iter()
        .filter(|s| s.origin.is_none())
        .map(|s| s.name.clone())
        .collect();
    if !folders.is_empty() {
        out.push_str(&format!(
            "  folders holding a Dockerfile: {} ({})\n",
            folders.len(),
            folders.join(", ")
        ));
    }
    for why in &found.skipped {
        out.push_str(&format!("  not a service: {why}\n"));
    }
    for (file, images) in &m.lookalikes {
        out.push_str(&format!(
            "  not pinned in {file}: {} look like services' images but belong to none\n",
            some(images, 2)
        ));
    }
    for s in &found.services {
        for problem in &s.missing {
            out.push_str(&format!("  will fail: {problem}\n"));
        }
    }
    out
}

/// `--services-dir DIR` as a path relative to `root`, checked to be a
/// folder inside it.
fn services_dir_arg(root: &Path, dir: &Path) -> Result<String, Error> {
    let bad = |why: &str| {
        Error::Usage(format!(
            "--services-dir {}: {why}; give the folder that holds the service folders, relative to {}",
            dir.display(),
            root.display()
        ))
    };
    let rel = match dir.is_absolute() {
        true => {
            let real_root = std::fs::canonicalize(root).map_err(|e| bad(&e.to_string()))?;
            let real = std::fs::canonicalize(dir).map_err(|e| bad(&e.to_string()))?;
            real.strip_prefix(&real_root)
                .map_err(|_| bad("it is outside the repo"))?
                .to_string_lossy()
                .into_owned()
        }
        false => dir.to_string_lossy().into_owned(),
    };
    let rel = compose::normalize(".", &rel).ok_or_else(|| bad("it is outside the repo"))?;
    if !root.join(&rel).is_dir() {
        return Err(bad("not a folder"));
    }
    Ok(rel)
}

/// `pipeline init`: writes the config file, never over an existing one,
/// then plans it offline.
pub(super) async fn command(globals: &Globals, services_dir: Option<&Path>) -> Result<(), Error> {
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
    let services_dir = services_dir
        .map(|d| services_dir_arg(root, d))
        .transpose()?;
    let name = std::fs::canonicalize(root)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .and_then(|n| compose::service_name(&n))
        .unwrap_or_else(|| "app".into());
    let prefix = format!("{name}/");
    let found = scan(root, services_dir.as_deref(), &prefix, &name);
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into());
    let git = crate::plan::git::GitInfo::read(root);
    let text = render(&found, &prefix, &region, git.sha.is_some());
    // `create_new`: a file that appeared meanwhile is still not overwritten.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
        .map_err(|e| Error::Environment(format!("writing {}: {e}", path.display())))?;
    if !globals.quiet {
        eprint!("{}", summary(path, &found));
    }
    if found.services.is_empty() {
        return Err(Error::Usage(format!(
            "{} is written, but it has no service: no Compose file builds one, and no folder under {} holds a Dockerfile or Containerfile; pass --services-dir DIR, or add services: to it",
            path.display(),
            ROOTS.join("/, ") + "/"
        )));
    }
    check(globals).await.map_err(|e| {
        Error::Usage(format!(
            "{} is written, but `pipeline plan --offline` fails on it: {e}",
            path.display()
        ))
    })
}

/// `pipeline plan --offline` of the written file, and the manifests
/// patched with placeholder digests (nothing written), as `run` checks
/// them before building.
async fn check(globals: &Globals) -> Result<(), Error> {
    let config = Config::load(&globals.config)?;
    let services = discover::discover(&config)?;
    if !globals.quiet {
        eprintln!("pipeline plan --offline:");
    }
    let options = PlanOptions {
        services: Vec::new(),
        offline: true,
        force: false,
        results: None,
    };
    super::plan::command(globals, &config, &services, &options).await?;
    if !config.manifests.configured() {
        return Ok(());
    }
    let pins: Vec<Pinned> = services
        .iter()
        .map(|s| {
            Pinned::placeholder(
                &s.name,
                &s.repository,
                format!("registry.invalid/{}", s.repository),
                "latest".into(),
                "in-init".into(),
            )
        })
        .collect();
    let names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
    let changes = crate::patch::compute(&config, &pins, &names)?;
    if !globals.quiet {
        eprintln!("manifests, patched with placeholder digests (nothing written):");
        for c in &changes {
            eprintln!("  {}: {}", c.path, c.report.summary());
            // A long file may warn about each of its images: the first few
            // tell what it is about; `pipeline patch --check` lists them all.
            for w in c.report.warnings.iter().take(3) {
                eprintln!("    warning: {w}");
            }
            if c.report.warnings.len() > 3 {
                eprintln!("    (+{} more warnings)", c.report.warnings.len() - 3);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_stay_plain_only_when_they_read_back_as_strings() {
        assert_eq!(scalar("src/cart/src"), "src/cart/src");
        assert_eq!(scalar("."), ".");
        assert_eq!(scalar("1.27.0"), "1.27.0");
        assert_eq!(scalar("1.27"), "\"1.27\"");
        assert_eq!(scalar("yes"), "\"yes\"");
        assert_eq!(scalar("a b: c"), "\"a b: c\"");
        assert_eq!(scalar(""), "\"\"");
    }

    #[test]
    fn comments_wrap_at_80_columns() {
        let text = comment_item(&"word ".repeat(30));
        assert!(text.lines().all(|l| l.len() <= 80), "{text}");
        assert!(text.starts_with("#   - word"), "{text}");
        assert!(
            text.lines().skip(1).all(|l| l.starts_with("#     word")),
            "{text}"
        );
        assert_eq!(
            commented("services: {}", "x"),
            format!("{:<36}# x\n", "services: {}")
        );
        assert!(commented(&"k".repeat(40), "x").contains("k # x"));
    }

    #[test]
    fn an_arg_is_taken_with_or_without_a_default() {
        assert!(takes_arg(
            "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n",
            "BASE_IMAGE"
        ));
        assert!(takes_arg("arg  BASE_IMAGE=local/base:1\n", "BASE_IMAGE"));
        assert!(!takes_arg("ARG BASE_IMAGE_TAG\n", "BASE_IMAGE"));
        assert!(!takes_arg("RUN echo ARG BASE_IMAGE\n", "BASE_IMAGE"));
    }
}
