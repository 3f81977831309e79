//! The images other tools in the repo already build: the services with a
//! `build:` in the Compose files at the root, and the Docker artifacts of
//! `skaffold.yaml`. Each becomes a service with the build context,
//! Dockerfile, target and build args those files give, and the image name
//! they tag it with (manifests reference that name).
//!
//! Compose files are read as `docker compose -f a -f b` layers them: the
//! first of `compose.yaml`, `compose.yml`, `docker-compose.yaml`,
//! `docker-compose.yml`, then the other `compose.*.yaml` /
//! `docker-compose.*.yml` files at the root (overrides, profiles) in name
//! order, a later file's keys winning. Variables (`${VAR}`, `${VAR:-default}`,
//! `$VAR`, `$$`) come from the `.env` next to them, then the environment:
//! the repo's own file decides what is written, a shell variable only fills
//! what it leaves out. Paths are relative to the root, as Compose resolves
//! them against the project folder, and the Dockerfile against the context
//! (https://docs.docker.com/reference/compose-file/build/).

use std::collections::BTreeMap;
use std::path::Path;

use yamledit::{Node, NodeKind};

/// One image a Compose file or Skaffold builds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Build {
    /// The service name: the Compose service (or the Skaffold image's last
    /// path component) as a repository component (`frontendTests` is
    /// `frontend-tests`).
    pub(super) name: String,
    /// Where it was read: `compose.yaml` or `compose.tests.yaml: frontendTests`.
    pub(super) origin: String,
    /// The Dockerfile, relative to the root.
    pub(super) dockerfile: String,
    /// The build context, relative to the root (`.` is the root).
    pub(super) context: String,
    pub(super) target: Option<String>,
    pub(super) args: BTreeMap<String, String>,
    /// The image it is tagged with, variables expanded.
    pub(super) image: Option<String>,
}

/// What the Compose and Skaffold files hold.
#[derive(Debug, Default)]
pub(super) struct Builds {
    /// The files read, relative to the root.
    pub(super) files: Vec<String>,
    pub(super) builds: Vec<Build>,
    /// Builds that are not services, each with why (a Dockerfile that does
    /// not exist, a remote context, another builder than Docker).
    pub(super) skipped: Vec<String>,
}

/// The Compose and Skaffold builds of the repo at `root`.
pub(super) fn read(root: &Path) -> Builds {
    let mut found = Builds::default();
    let vars = dotenv(root);
    compose(root, &vars, &mut found);
    skaffold(root, &mut found);
    found
}

/// The Compose service fields init reads, merged over the layered files.
#[derive(Debug, Default)]
struct Entry {
    file: String,
    build: bool,
    context: Option<String>,
    dockerfile: Option<String>,
    inline: bool,
    target: Option<String>,
    args: BTreeMap<String, Option<String>>,
    image: Option<String>,
}

/// The Compose files at the root, the one `docker compose` picks first.
fn compose_files(root: &Path) -> Vec<String> {
    const BASE: [&str; 4] = [
        "compose.yaml",
        "compose.yml",
        "docker-compose.yaml",
        "docker-compose.yml",
    ];
    let mut others: Vec<String> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            !BASE.contains(&n.as_str())
                && (n.starts_with("compose.") || n.starts_with("docker-compose."))
                && (n.ends_with(".yaml") || n.ends_with(".yml"))
        })
        .collect();
    others.sort();
    let mut files: Vec<String> = BASE
        .iter()
        .filter(|n| root.join(n).is_file())
        .map(|n| n.to_string())
        .collect();
    files.append(&mut others);
    files
}

/// The documents of the YAML file `file`; one that cannot be read or
/// parsed is noted as skipped.
fn read_yaml(root: &Path, file: &str, found: &mut Builds) -> Option<Vec<yamledit::Document>> {
    let docs = std::fs::read_to_string(root.join(file))
        .ok()
        .and_then(|t| yamledit::parse(&t).ok());
    if docs.is_none() {
        found
            .skipped
            .push(format!("{file}: not read (not valid YAML)"));
    }
    docs
}

fn compose(root: &Path, vars: &BTreeMap<String, String>, found: &mut Builds) {
    let mut entries: Vec<(String, Entry)> = Vec::new();
    for file in compose_files(root) {
        let Some(docs) = read_yaml(root, &file, found) else {
            continue;
        };
        let Some(services) = docs.first().and_then(|d| d.root().get("services")) else {
            continue;
        };
        // Only the files that say how something is built are named.
        if services.entries().any(|(_, v)| v.get("build").is_some()) {
            found.files.push(file.clone());
        }
        for (key, value) in services.entries() {
            let Some(name) = key.as_str() else { continue };
            let index = match entries.iter().position(|(n, _)| n == name) {
                Some(i) => i,
                None => {
                    entries.push((name.to_string(), Entry::default()));
                    entries.len() - 1
                }
            };
            merge(&mut entries[index].1, &file, value);
        }
    }
    for (compose_name, entry) in entries {
        if !entry.build {
            continue;
        }
        let origin = |name: &str| match name == compose_name {
            true => entry.file.clone(),
            false => format!("{}: {compose_name}", entry.file),
        };
        let Some(name) = service_name(&compose_name) else {
            found.skipped.push(format!(
                "{}: service `{compose_name}`: its name cannot be made an image repository name",
                entry.file
            ));
            continue;
        };
        let mut unset = Vec::new();
        let mut ex = |text: &str| expand(text, vars, &mut unset);
        let context = ex(entry.context.as_deref().unwrap_or("."));
        let dockerfile = ex(entry.dockerfile.as_deref().unwrap_or("Dockerfile"));
        let target = entry.target.as_deref().map(&mut ex);
        let image = entry.image.as_deref().map(&mut ex);
        let args: BTreeMap<String, String> = entry
            .args
            .iter()
            // An arg without a value is taken from the shell at build time:
            // nothing to write.
            .filter_map(|(k, v)| Some((k.clone(), ex(v.as_deref()?))))
            .collect();
        let unset_note = match unset.is_empty() {
            true => String::new(),
            false => format!(" (unset: {})", unset.join(", ")),
        };
        let skip = |why: String| format!("{}: service `{compose_name}`: {why}", entry.file);
        if entry.inline {
            found.skipped.push(skip(
                "its Dockerfile is inline (dockerfile_inline); write it to a file".into(),
            ));
            continue;
        }
        if is_remote(&context) {
            found
                .skipped
                .push(skip(format!("its context `{context}` is remote")));
            continue;
        }
        let Some(context) = normalize(".", &context) else {
            found.skipped.push(skip(format!(
                "its context `{context}` is outside the repo{unset_note}"
            )));
            continue;
        };
        let Some(dockerfile_path) = normalize(&context, &dockerfile) else {
            found.skipped.push(skip(format!(
                "its Dockerfile `{dockerfile}` is outside the repo{unset_note}"
            )));
            continue;
        };
        if !root.join(&dockerfile_path).is_file() {
            found.skipped.push(skip(format!(
                "its Dockerfile `{dockerfile_path}` does not exist{unset_note}"
            )));
            continue;
        }
        let build = Build {
            origin: origin(&name),
            name,
            dockerfile: dockerfile_path,
            context,
            target: target.filter(|t| !t.is_empty()),
            args,
            image: image.filter(|i| !i.is_empty()),
        };
        add(found, build);
    }
}

/// Adds `build` unless a service of that name is there already (Compose
/// first, then Skaffold): the same image described twice is one service.
fn add(found: &mut Builds, build: Build) {
    match found.builds.iter().find(|b| b.name == build.name) {
        Some(first) if first.dockerfile == build.dockerfile => {}
        Some(first) => found.skipped.push(format!(
            "{}: `{}` builds {}, but {} already has a service of that name building {}",
            build.origin, build.name, build.dockerfile, first.origin, first.dockerfile
        )),
        None => found.builds.push(build),
    }
}

/// Layers one file's service `value` over what earlier files said.
fn merge(entry: &mut Entry, file: &str, value: Node<'_>) {
    if let Some(image) = value.get("image").and_then(|i| i.as_str()) {
        entry.image = Some(image.to_string());
    }
    let Some(build) = value.get("build") else {
        return;
    };
    if !entry.build {
        entry.file = file.to_string();
    }
    entry.build = true;
    if let Some(context) = build.as_str() {
        entry.context = Some(context.to_string());
        return;
    }
    let text = |key: &str| build.get(key).and_then(|v| v.as_str()).map(str::to_string);
    if let Some(context) = text("context") {
        entry.context = Some(context);
    }
    if let Some(dockerfile) = text("dockerfile") {
        entry.dockerfile = Some(dockerfile);
    }
    if build.get("dockerfile_inline").is_some() {
        entry.inline = true;
    }
    if let Some(target) = text("target") {
        entry.target = Some(target);
    }
    if let Some(args) = build.get("args") {
        match args.resolve().kind() {
            NodeKind::Mapping(_) => {
                for (k, v) in args.entries() {
                    if let Some(k) = k.as_str() {
                        let v = (!v.is_null()).then(|| v.as_str().unwrap_or_default());
                        entry.args.insert(k.to_string(), v.map(str::to_string));
                    }
                }
            }
            NodeKind::Sequence(_) => {
                for item in args.items() {
                    if let Some(item) = item.as_str() {
                        let (k, v) = match item.split_once('=') {
                            Some((k, v)) => (k, Some(v.to_string())),
                            None => (item, None),
                        };
                        entry.args.insert(k.to_string(), v);
                    }
                }
            }
            _ => {}
        }
    }
}

/// The Docker artifacts of `skaffold.yaml` (every config in it).
fn skaffold(root: &Path, found: &mut Builds) {
    let Some(file) = ["skaffold.yaml", "skaffold.yml"]
        .into_iter()
        .find(|f| root.join(f).is_file())
    else {
        return;
    };
    let Some(docs) = read_yaml(root, file, found) else {
        return;
    };
    found.files.push(file.to_string());
    for doc in &docs {
        let Some(artifacts) = doc.lookup(&["build", "artifacts"]) else {
            continue;
        };
        for artifact in artifacts.items() {
            let Some(image) = artifact.get("image").and_then(|i| i.as_str()) else {
                continue;
            };
            let last = crate::patch::image_name(image)
                .rsplit('/')
                .next()
                .unwrap_or(image);
            let skip = |why: &str| format!("{file}: image `{image}`: {why}");
            let Some(name) = service_name(last) else {
                found.skipped.push(skip("not a repository name"));
                continue;
            };
            let other = ["jib", "bazel", "ko", "buildpacks", "custom", "kaniko"]
                .into_iter()
                .find(|b| artifact.get(b).is_some());
            if let Some(builder) = other {
                found
                    .skipped
                    .push(skip(&format!("built by {builder}, not from a Dockerfile")));
                continue;
            }
            let context = artifact
                .get("context")
                .and_then(|c| c.as_str())
                .unwrap_or(".");
            let docker = artifact.get("docker");
            let field = |key: &str| {
                docker
                    .and_then(|d| d.get(key))
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
            };
            let dockerfile = field("dockerfile").unwrap_or_else(|| "Dockerfile".into());
            let (Some(context), Some(dockerfile_path)) = (
                normalize(".", context),
                normalize(&normalize(".", context).unwrap_or_default(), &dockerfile),
            ) else {
                found.skipped.push(skip("its context is outside the repo"));
                continue;
            };
            if !root.join(&dockerfile_path).is_file() {
                found.skipped.push(skip(&format!(
                    "its Dockerfile `{dockerfile_path}` does not exist"
                )));
                continue;
            }
            let args = docker
                .and_then(|d| d.get("buildArgs"))
                .map(|a| {
                    a.entries()
                        .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.as_str()?)))
                        // A template (`{{.IMAGE_TAG}}`) is filled by skaffold.
                        .filter(|(_, v)| !v.contains("{{"))
                        .map(|(k, v)| (k, v.to_string()))
                        .collect()
                })
                .unwrap_or_default();
            add(
                found,
                Build {
                    name,
                    origin: file.to_string(),
                    dockerfile: dockerfile_path,
                    context,
                    target: field("target"),
                    args,
                    image: Some(image.to_string()),
                },
            );
        }
    }
}

/// A context Compose would fetch: a git or HTTP URL.
fn is_remote(context: &str) -> bool {
    context.contains("://")
        || context.starts_with("git@")
        || context.starts_with("github.com/")
        || context.ends_with(".git")
}

/// `path` (relative to `base`, both relative to the root) as a clean path
/// relative to the root, `.` for the root; `None` when it leaves the root
/// or is absolute.
pub(super) fn normalize(base: &str, path: &str) -> Option<String> {
    if path.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in base.split('/').chain(path.split('/')) {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(match parts.is_empty() {
        true => ".".into(),
        false => parts.join("/"),
    })
}

/// `raw` as an image repository component: lowercase, a camelCase word
/// break as `-`, anything else outside `[a-z0-9._-]` as `-`.
pub(super) fn service_name(raw: &str) -> Option<String> {
    let mut out = String::new();
    let mut previous: Option<char> = None;
    for c in raw.chars() {
        let lower_before = previous.is_some_and(|p| p.is_ascii_lowercase() || p.is_ascii_digit());
        if c.is_ascii_uppercase() && lower_before {
            out.push('-');
        }
        match c {
            'a'..='z' | '0'..='9' | '.' | '_' | '-' => out.push(c),
            'A'..='Z' => out.push(c.to_ascii_lowercase()),
            _ => out.push('-'),
        }
        previous = Some(c);
    }
    let trimmed = out.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}

/// The variables of the `.env` file at `root` (Compose's default
/// `--env-file`): `KEY=VALUE` lines, `export` allowed, values quoted or
/// not, an unquoted value ending at ` #`; a value may use the variables
/// defined above it, and single quotes keep it literal.
fn dotenv(root: &Path) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    let Ok(text) = std::fs::read_to_string(root.join(".env")) else {
        return vars;
    };
    for line in text.lines() {
        let line = line.trim();
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        if line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        let value = value.trim_start();
        let value = if let Some(rest) = value.strip_prefix('\'') {
            rest.split('\'').next().unwrap_or("").to_string()
        } else if let Some(rest) = value.strip_prefix('"') {
            let inner = rest.rsplit_once('"').map_or(rest, |(v, _)| v);
            let inner = inner.replace("\\n", "\n").replace("\\\"", "\"");
            expand(&inner, &vars, &mut Vec::new())
        } else {
            let bare = match value.find(" #").or_else(|| value.find("\t#")) {
                Some(i) => &value[..i],
                None => value,
            };
            expand(bare.trim_end(), &vars, &mut Vec::new())
        };
        vars.insert(key.to_string(), value);
    }
    vars
}

/// Compose interpolation of `text`: `$$`, `$VAR`, `${VAR}`, `${VAR:-d}`,
/// `${VAR-d}`, `${VAR:+a}`, `${VAR+a}`, `${VAR:?e}`, `${VAR?e}`, with `vars`
/// first and then the environment; a variable set nowhere is empty and is
/// added to `unset`.
pub(super) fn expand(
    text: &str,
    vars: &BTreeMap<String, String>,
    unset: &mut Vec<String>,
) -> String {
    let lookup = |name: &str| vars.get(name).cloned().or_else(|| std::env::var(name).ok());
    let mut out = String::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '$' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        match chars.get(i + 1) {
            Some('$') => {
                out.push('$');
                i += 2;
            }
            Some('{') => {
                // The matching `}`, counting nested `${…}` in a default.
                let mut depth = 0;
                let mut end = None;
                for (j, c) in chars.iter().enumerate().skip(i + 2) {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => {
                            end = Some(j);
                            break;
                        }
                        '}' => depth -= 1,
                        _ => {}
                    }
                }
                let Some(end) = end else {
                    out.extend(&chars[i..]);
                    break;
                };
                let inner: String = chars[i + 2..end].iter().collect();
                let name_end = inner
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(inner.len());
                let (name, op) = inner.split_at(name_end);
                let value = lookup(name);
                let set_nonempty = value.as_deref().is_some_and(|v| !v.is_empty());
                let mut rest = |s: &str| expand(s, vars, unset);
                let expanded = match op {
                    "" => value.clone(),
                    _ if op.starts_with(":-") => Some(if set_nonempty {
                        value.clone().unwrap_or_default()
                    } else {
                        rest(&op[2..])
                    }),
                    _ if op.starts_with('-') => {
                        Some(value.clone().unwrap_or_else(|| rest(&op[1..])))
                    }
                    _ if op.starts_with(":+") => Some(if set_nonempty {
                        rest(&op[2..])
                    } else {
                        String::new()
                    }),
                    _ if op.starts_with('+') => Some(if value.is_some() {
                        rest(&op[1..])
                    } else {
                        String::new()
                    }),
                    _ if op.starts_with(":?") || op.starts_with('?') => value.clone(),
                    _ => value.clone(),
                };
                if value.is_none() && (op.is_empty() || op.starts_with(":?") || op.starts_with('?'))
                {
                    unset.push(name.to_string());
                }
                out.push_str(&expanded.unwrap_or_default());
                i = end + 1;
            }
            Some(c) if c.is_ascii_alphabetic() || *c == '_' => {
                let mut j = i + 1;
                while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                    j += 1;
                }
                let name: String = chars[i + 1..j].iter().collect();
                match lookup(&name) {
                    Some(v) => out.push_str(&v),
                    None => unset.push(name),
                }
                i = j;
            }
            _ => {
                out.push('$');
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn compose_interpolation() {
        let v = vars(&[("A", "x"), ("EMPTY", "")]);
        let mut unset = Vec::new();
        let mut e = |t: &str| expand(t, &v, &mut unset);
        assert_eq!(e("${A}/$A/$$A"), "x/x/$A");
        assert_eq!(e("${EMPTY:-d} ${EMPTY-d} ${NOPE_INIT_TEST-d}"), "d  d");
        assert_eq!(e("${A:+alt}|${EMPTY:+alt}|${EMPTY+alt}"), "alt||alt");
        assert_eq!(e("${NOPE_INIT_TEST:-${A}-y}"), "x-y");
        assert_eq!(e("a$"), "a$");
        assert_eq!(e("${NOPE_INIT_TEST}"), "");
        assert_eq!(unset, ["NOPE_INIT_TEST"]);
    }

    #[test]
    fn dotenv_values() {
        let dir = std::env::temp_dir().join(format!("pipeline-init-env-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(".env"),
            "# c\nIMAGE_NAME=ghcr.io/acme/demo\nexport PORT=80\nADDR=cart:${PORT}\nPW=secret    # a comment\nQ=\"a b\"\nS='${PORT}'\nHASH=a#b\n",
        )
        .unwrap();
        let v = dotenv(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(v["IMAGE_NAME"], "ghcr.io/acme/demo");
        assert_eq!(v["ADDR"], "cart:80");
        assert_eq!(v["PW"], "secret");
        assert_eq!(v["Q"], "a b");
        assert_eq!(v["S"], "${PORT}");
        assert_eq!(v["HASH"], "a#b");
    }

    #[test]
    fn names_and_paths() {
        assert_eq!(
            service_name("frontendTests").as_deref(),
            Some("frontend-tests")
        );
        assert_eq!(service_name("Web_API").as_deref(), Some("web_api"));
        assert_eq!(service_name("--").as_deref(), None);
        assert_eq!(normalize(".", "./").as_deref(), Some("."));
        assert_eq!(
            normalize("./", "./src/cart/src/Dockerfile").as_deref(),
            Some("src/cart/src/Dockerfile")
        );
        assert_eq!(
            normalize("src/a", "../b/Dockerfile").as_deref(),
            Some("src/b/Dockerfile")
        );
        assert_eq!(normalize(".", "../x"), None);
    }

    #[test]
    fn compose_build_forms_and_layers() {
        let dir =
            std::env::temp_dir().join(format!("pipeline-init-compose-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (path, text) in [
            ("a/Dockerfile", "FROM scratch\n"),
            ("b/Dockerfile.prod", "FROM scratch\n"),
            (".env", "B_FILE=Dockerfile.prod\n"),
            (
                "docker-compose.yml",
                "x-build: &b\n  context: b\nservices:\n  a:\n    build: ./a\n    image: acme/a:1\n  bApp:\n    build:\n      <<: *b\n      dockerfile: ${B_FILE}\n      args: [K=v, FROM_SHELL]\n  db:\n    image: postgres\n  gone:\n    build:\n      context: ./gone\n",
            ),
            (
                "docker-compose.override.yml",
                "services:\n  a:\n    build:\n      target: dev\n      args:\n        X: \"1\"\n",
            ),
        ] {
            let p = dir.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let found = read(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            found.files,
            ["docker-compose.yml", "docker-compose.override.yml"]
        );
        let a = &found.builds[0];
        assert_eq!(
            (
                a.name.as_str(),
                a.dockerfile.as_str(),
                a.context.as_str(),
                a.target.as_deref()
            ),
            ("a", "a/Dockerfile", "a", Some("dev"))
        );
        assert_eq!(a.image.as_deref(), Some("acme/a:1"));
        assert_eq!(a.args, vars(&[("X", "1")]));
        let b = &found.builds[1];
        assert_eq!(
            (
                b.name.as_str(),
                b.origin.as_str(),
                b.dockerfile.as_str(),
                b.context.as_str()
            ),
            (
                "b-app",
                "docker-compose.yml: bApp",
                "b/Dockerfile.prod",
                "b"
            )
        );
        assert_eq!(b.args, vars(&[("K", "v")]));
        assert_eq!(found.builds.len(), 2);
        assert_eq!(
            found.skipped,
            ["docker-compose.yml: service `gone`: its Dockerfile `gone/Dockerfile` does not exist"]
        );
    }
}
