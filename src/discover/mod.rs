//! Discovery: the services of the repo, with defaults and per-service settings
//! resolved and checked against the file system.
//!
//! A service is a direct child of `services_dir` that holds a `Dockerfile`,
//! or a name under `services:` (which then must say where its Dockerfile is
//! when no such folder exists). Every path must stay inside the repo root, so
//! that nothing outside the repo is ever sent to the engine; `requires` must
//! name services and form no cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path};

use serde::Serialize;

use crate::config::{
    At, Builder, Config, ConfigError, Loc, Network, SecretSource, ServiceSettings,
};

/// One service, ready to plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Service {
    pub(crate) name: String,
    /// Relative to the repo root, `/`-separated.
    pub(crate) dockerfile: String,
    /// Relative to the repo root, `/`-separated; `.` is the root.
    pub(crate) context: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) target: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) build_args: BTreeMap<String, String>,
    pub(crate) requires: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) platform: Option<String>,
    /// The repository path inside the registry, e.g. `shop/orders`.
    pub(crate) repository: String,
    pub(crate) builder: Builder,
    pub(crate) network: Network,
    /// Build secrets by id (where their values come from, never the values).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) secrets: BTreeMap<String, SecretSource>,
}

pub(crate) fn image_arg(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    s.push_str("_IMAGE");
    s
}

/// The Dockerfile names a service folder may hold, in the order they are
/// taken.
pub(crate) const DOCKERFILES: [&str; 2] = ["Dockerfile", "Containerfile"];

/// A service folder found under `services_dir`.
struct Found {
    /// Relative to the repo root.
    folder: String,
    /// `Dockerfile` or `Containerfile`.
    dockerfile: &'static str,
}

/// All services, sorted by name.
pub(crate) fn discover(config: &Config) -> Result<Vec<Service>, ConfigError> {
    let services_dir = relative_path(config, &config.services_dir)?;
    let dir = config.root.join(&services_dir);
    let explicit = config.services_dir.loc != Loc::default();
    let mut found: BTreeMap<String, Vec<Found>> = BTreeMap::new();
    if dir.is_dir() {
        let root = config
            .root
            .canonicalize()
            .map_err(|e| config.error(Loc::default(), format!("cannot read the repo root: {e}")))?;
        scan(config, &root, &services_dir, 1, &mut found)?;
    } else if explicit || config.services.is_empty() {
        return Err(config.error(
            config.services_dir.loc,
            format!(
                "services_dir `{services_dir}` is not a folder under {}; create it or set services_dir to the folder that holds the service folders",
                config.root.display()
            ),
        ));
    }
    // A configured `folder` claims a discovered folder under its own name.
    for settings in config.services.values() {
        if let Some(folder) = &settings.value.folder {
            let folder = relative_path(config, folder)?;
            for folders in found.values_mut() {
                folders.retain(|f| f.folder != folder);
            }
        }
    }
    found.retain(|_, folders| !folders.is_empty());
    // Nested folders are named by their path with `-`: `payments/api` and
    // `payments-api` would both be `payments-api`, and one would vanish.
    if let Some((name, folders)) = found.iter_mut().find(|(_, folders)| folders.len() > 1) {
        folders.sort_by(|a, b| a.folder.cmp(&b.folder));
        return Err(config.error(
            config.services_dir.loc,
            format!(
                "the folders `{}` and `{}` would both be the service `{name}`; rename one, or give one a name of its own in pipeline.yaml (services: <name>: folder: {})",
                folders[0].folder, folders[1].folder, folders[1].folder
            ),
        ));
    }
    if found.is_empty() && config.services.is_empty() {
        return Err(config.error(
            config.services_dir.loc,
            format!(
                "no services: no folder under `{services_dir}` (at most {} deep, discover.depth) holds a {}, and pipeline.yaml configures none under services:; point services_dir at the folder that holds the service folders, raise discover.depth, or run `pipeline init`",
                config.discover.depth.value,
                DOCKERFILES.join(" or ")
            ),
        ));
    }
    let mut names: BTreeSet<String> = found.keys().cloned().collect();
    names.extend(config.services.keys().cloned());

    let mut services = Vec::new();
    for name in names {
        let configured = config.services.get(&name);
        let loc = configured.map(|c| c.loc).unwrap_or_default();
        let empty = ServiceSettings::default();
        let settings = configured
            .map(|c| &c.value)
            .unwrap_or(&empty)
            .or(&config.defaults);
        let (folder, dockerfile) = match (&settings.folder, found.get(&name)) {
            (Some(folder), _) => {
                let folder = relative_path(config, folder)?;
                let dockerfile = DOCKERFILES
                    .into_iter()
                    .find(|d| config.root.join(&folder).join(d).is_file())
                    .unwrap_or("Dockerfile");
                (folder, dockerfile)
            }
            (None, Some(f)) => (f[0].folder.clone(), f[0].dockerfile),
            (None, None) => (format!("{services_dir}/{name}"), "Dockerfile"),
        };
        services.push(resolve(config, &folder, dockerfile, &name, loc, settings)?);
    }
    check_requires(config, &services)?;
    check_repositories(config, &services)?;
    check_manifest_services(config, &services)?;
    Ok(services)
}

/// Finds service folders under `rel` (relative to the repo root), at most
/// `discover.depth` deep: a folder holding a Dockerfile or Containerfile is
/// a service, named by its path below `services_dir` with `-`
/// (`services/payments/api` is `payments-api`); its own subfolders are its
/// sources, not services. A folder that cannot be read is an error naming
/// it, and so is one whose real location is outside the repo (a symlink):
/// its files would be sent to the engine.
fn scan(
    config: &Config,
    root: &Path,
    rel: &str,
    depth: usize,
    found: &mut BTreeMap<String, Vec<Found>>,
) -> Result<(), ConfigError> {
    let dir = config.root.join(rel);
    let unreadable = |e: std::io::Error| {
        config.error(
            config.services_dir.loc,
            format!("cannot read the folder `{rel}`: {e}; fix its permissions, or move it out of services_dir"),
        )
    };
    let mut entries: Vec<std::fs::DirEntry> = std::fs::read_dir(&dir)
        .map_err(unreadable)?
        .collect::<Result<_, _>>()
        .map_err(unreadable)?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if file_name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        // `services_dir: .` lists `x`, as a configured `folder: x` reads.
        let child = match rel {
            "." => file_name.clone(),
            _ => format!("{rel}/{file_name}"),
        };
        if entry.file_type().is_ok_and(|t| t.is_symlink()) {
            let real = path.canonicalize().map_err(|e| {
                config.error(
                    config.services_dir.loc,
                    format!("cannot resolve the symlink `{child}`: {e}"),
                )
            })?;
            if !real.starts_with(root) {
                return Err(config.error(
                    config.services_dir.loc,
                    format!(
                        "the service folder `{child}` is a symlink to {}, outside the repo; its files would be sent to the engine. Move it into the repo, or out of services_dir",
                        real.display()
                    ),
                ));
            }
        }
        // `is_file` would call an unreadable folder one without a
        // Dockerfile, and the service would vanish from the plan.
        let mut dockerfile = None;
        for name in DOCKERFILES {
            match std::fs::metadata(path.join(name)) {
                Ok(m) if m.is_file() => {
                    dockerfile = Some(name);
                    break;
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(config.error(
                        config.services_dir.loc,
                        format!("cannot read the folder `{child}`: {e}; fix its permissions, or move it out of services_dir"),
                    ));
                }
            }
        }
        match dockerfile {
            Some(dockerfile) => {
                let services_dir = config.root.join(&config.services_dir.value);
                let below = path
                    .strip_prefix(&services_dir)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .replace('/', "-");
                found.entry(below).or_default().push(Found {
                    folder: child,
                    dockerfile,
                });
            }
            None if depth < config.discover.depth.value => {
                scan(config, root, &child, depth + 1, found)?;
            }
            None => {}
        }
    }
    Ok(())
}

/// Every manifest path stays inside the repo (a patch writes there), and
/// the services a Helm values file lists exist.
fn check_manifest_services(config: &Config, services: &[Service]) -> Result<(), ConfigError> {
    let manifests = &config.manifests;
    for path in manifests
        .kustomize
        .iter()
        .chain(manifests.helm.iter().map(|h| &h.values))
    {
        relative_path(config, path)?;
    }
    for pattern in &manifests.raw {
        // The part before the first wildcard is where the glob walks.
        let literal: Vec<&str> = pattern
            .value
            .split('/')
            .take_while(|c| !c.contains(['*', '?', '[', '{']))
            .collect();
        let literal = At {
            value: match literal.join("/") {
                l if l.is_empty() => ".".to_string(),
                l => l,
            },
            loc: pattern.loc,
        };
        if pattern.value.starts_with('/') {
            relative_path(config, &pattern.clone())?;
        }
        relative_path(config, &literal)?;
    }
    for target in &config.manifests.helm {
        for name in target.services.iter().flatten() {
            if !services.iter().any(|s| s.name == name.value) {
                return Err(config.error(
                    name.loc,
                    format!(
                        "manifests.helm: `{}` is not a service (known: {})",
                        name.value,
                        services
                            .iter()
                            .map(|s| s.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn resolve(
    config: &Config,
    folder: &str,
    dockerfile_name: &str,
    name: &str,
    loc: Loc,
    s: ServiceSettings,
) -> Result<Service, ConfigError> {
    if !is_repository_component(name) {
        return Err(config.error(
            loc,
            format!("service name `{name}` cannot be part of an image repository: use lowercase letters, digits, `.`, `_`, `-`"),
        ));
    }
    let dockerfile = match &s.dockerfile {
        Some(d) => relative_path(config, d)?,
        None => format!("{folder}/{dockerfile_name}"),
    };
    let context = match &s.context {
        Some(c) => relative_path(config, c)?,
        None => folder.to_string(),
    };
    let at = |field: &Option<At<String>>| field.as_ref().map(|f| f.loc).unwrap_or(loc);
    // A Dockerfile may be a symlink within the repo, not out of it: what
    // it says is sent to the engine.
    if let (Ok(root), Ok(real)) = (
        config.root.canonicalize(),
        config.root.join(&dockerfile).canonicalize(),
    ) && !real.starts_with(&root)
    {
        return Err(config.error(
            at(&s.dockerfile),
            format!(
                "service `{name}`: the Dockerfile `{dockerfile}` is a symlink to {}, outside the repo; copy it into the repo",
                real.display()
            ),
        ));
    }
    if !config.root.join(&dockerfile).is_file() {
        return Err(config.error(
            at(&s.dockerfile),
            format!("service `{name}`: Dockerfile `{dockerfile}` does not exist; create it or set services.{name}.dockerfile"),
        ));
    }
    if !config.root.join(&context).is_dir() {
        return Err(config.error(
            at(&s.context),
            format!(
                "service `{name}`: context `{context}` is not a folder; set services.{name}.context"
            ),
        ));
    }
    let repository = match &s.repository {
        Some(r) => r.value.clone(),
        None => format!("{}{name}", config.repository_prefix()),
    };
    if repository.is_empty() || !repository.split('/').all(is_repository_component) {
        return Err(config.error(
            s.repository
                .as_ref()
                .or(config.registry.repository_prefix.as_ref())
                .map(|r| r.loc)
                .unwrap_or(loc),
            format!("service `{name}`: repository `{repository}` is not a valid repository path (lowercase, `/`-separated)"),
        ));
    }
    let mut build_args = s.build_args.unwrap_or_default();
    let requires: Vec<String> = s
        .requires
        .unwrap_or_default()
        .into_iter()
        .map(|r| r.value)
        .collect();
    for r in &requires {
        // The requirement's image is passed as a build argument; a user value
        // for it would be silently replaced, so it is an error instead.
        if build_args.remove(&image_arg(r)).is_some() {
            return Err(config.error(
                loc,
                format!("service `{name}`: build arg `{}` is set by `requires: [{r}]`; remove it from build_args", image_arg(r)),
            ));
        }
    }
    let mut secrets = BTreeMap::new();
    for (id, source) in s.secrets.unwrap_or_default() {
        let valid_id = !id.is_empty()
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !valid_id {
            return Err(config.error(
                source.loc,
                format!("service `{name}`: secret id `{id}` may only hold letters, digits, `_`, `-` and `.`"),
            ));
        }
        match (&source.value.env, &source.value.file) {
            (Some(_), None) | (None, Some(_)) => {}
            _ => {
                return Err(config.error(
                    source.loc,
                    format!("service `{name}`: secret `{id}` needs exactly one of `env: VARIABLE` or `file: PATH`"),
                ));
            }
        }
        secrets.insert(id, source.value);
    }
    Ok(Service {
        name: name.to_string(),
        dockerfile,
        context,
        target: s.target.filter(|t| !t.is_empty()),
        build_args,
        requires,
        platform: s.platform.map(|p| p.value).filter(|p| !p.is_empty()),
        repository,
        builder: s.builder.unwrap_or(config.build.builder),
        network: s.network.unwrap_or(config.build.network),
        secrets,
    })
}

/// A config path made relative to the repo root and checked not to escape
/// it, neither by `..` nor through a symlink.
fn relative_path(config: &Config, path: &At<String>) -> Result<String, ConfigError> {
    let raw = Path::new(&path.value);
    let escape = || {
        config.error(
            path.loc,
            format!(
                "path `{}` escapes the repo root {}; paths are relative to the folder of pipeline.yaml and must stay inside it",
                path.value,
                config.root.display()
            ),
        )
    };
    if raw.is_absolute() {
        return Err(escape());
    }
    let mut parts: Vec<String> = Vec::new();
    for c in raw.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir => {
                if parts.pop().is_none() {
                    return Err(escape());
                }
            }
            Component::RootDir | Component::Prefix(_) => return Err(escape()),
        }
    }
    let rel = if parts.is_empty() {
        ".".to_string()
    } else {
        parts.join("/")
    };
    // A symlink inside the repo may still point outside it.
    let full = config.root.join(&rel);
    if let (Ok(root), Ok(resolved)) = (config.root.canonicalize(), full.canonicalize())
        && !resolved.starts_with(&root)
    {
        return Err(escape());
    }
    Ok(rel)
}

/// Lowercase alphanumerics separated by `.`, `_`, `__` or `-`, as the OCI
/// distribution spec allows in a repository path component.
fn is_repository_component(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_lowercase() | b[0].is_ascii_digit()
        && (b[b.len() - 1].is_ascii_lowercase() || b[b.len() - 1].is_ascii_digit())
        && b.iter().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-')
        })
}

/// No two services share a repository: their images would overwrite each
/// other's tags, and every manifest image of that repository would be pinned
/// to one of the two.
fn check_repositories(config: &Config, services: &[Service]) -> Result<(), ConfigError> {
    let mut seen: BTreeMap<&str, &Service> = BTreeMap::new();
    for s in services {
        if let Some(first) = seen.insert(&s.repository, s) {
            let loc = |name: &str| {
                config
                    .services
                    .get(name)
                    .map(|c| c.value.repository.as_ref().map(|r| r.loc).unwrap_or(c.loc))
            };
            let at = loc(&s.name)
                .or_else(|| loc(&first.name))
                .unwrap_or_default();
            return Err(config.error(
                at,
                format!(
                    "services `{}` and `{}` both push to repository `{}`; give one of them another `repository:`",
                    first.name, s.name, s.repository
                ),
            ));
        }
    }
    Ok(())
}

/// Every `requires` names a service, and they form no cycle.
fn check_requires(config: &Config, services: &[Service]) -> Result<(), ConfigError> {
    let by_name: BTreeMap<&str, &Service> = services.iter().map(|s| (s.name.as_str(), s)).collect();
    let loc_of = |name: &str| config.services.get(name).map(|c| c.loc).unwrap_or_default();
    for s in services {
        for r in &s.requires {
            if !by_name.contains_key(r.as_str()) {
                return Err(config.error(
                    loc_of(&s.name),
                    format!(
                        "service `{}` requires `{r}`, which is not a service (known: {})",
                        s.name,
                        by_name.keys().copied().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
    }
    if let Some(cycle) = find_cycle(services) {
        return Err(config.error(
            loc_of(&cycle[0]),
            format!("`requires` forms a cycle: {}", cycle.join(" -> ")),
        ));
    }
    Ok(())
}

/// A cycle in `requires`, as the list of names from a service back to itself.
pub(crate) fn find_cycle(services: &[Service]) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let index: BTreeMap<&str, usize> = services
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    let mut marks = vec![Mark::New; services.len()];
    let mut stack: Vec<usize> = Vec::new();

    fn visit(
        i: usize,
        services: &[Service],
        index: &BTreeMap<&str, usize>,
        marks: &mut [Mark],
        stack: &mut Vec<usize>,
    ) -> Option<Vec<String>> {
        marks[i] = Mark::Active;
        stack.push(i);
        for r in &services[i].requires {
            let Some(&j) = index.get(r.as_str()) else {
                continue;
            };
            match marks[j] {
                Mark::Active => {
                    let from = stack.iter().position(|&k| k == j).unwrap_or(0);
                    let mut cycle: Vec<String> = stack[from..]
                        .iter()
                        .map(|&k| services[k].name.clone())
                        .collect();
                    cycle.push(services[j].name.clone());
                    return Some(cycle);
                }
                Mark::New => {
                    if let Some(c) = visit(j, services, index, marks, stack) {
                        return Some(c);
                    }
                }
                Mark::Done => {}
            }
        }
        stack.pop();
        marks[i] = Mark::Done;
        None
    }

    for i in 0..services.len() {
        if marks[i] == Mark::New
            && let Some(c) = visit(i, services, &index, &mut marks, &mut stack)
        {
            return Some(c);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::PathBuf;

    struct Repo(PathBuf);

    impl Repo {
        fn new(name: &str) -> Repo {
            let dir = std::env::temp_dir()
                .join(format!("pipeline-discover-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Repo(dir)
        }
        fn file(&self, path: &str, text: &str) -> &Repo {
            let p = self.0.join(path);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
            self
        }
        fn discover(&self, yaml: &str) -> Result<Vec<Service>, ConfigError> {
            self.file("pipeline.yaml", yaml);
            let config = Config::load(&self.0.join("pipeline.yaml"))?;
            discover(&config)
        }
    }

    impl Drop for Repo {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    const HEAD: &str =
        "version: 1\nregistry:\n  host: 127.0.0.1:5000\n  repository_prefix: shop/\n";

    #[test]
    fn folders_with_a_dockerfile_are_services() {
        let r = Repo::new("folders");
        r.file("services/a/Dockerfile", "FROM scratch\n")
            .file("services/b/Dockerfile", "FROM scratch\n")
            .file("services/notes/README", "no dockerfile here\n");
        let s = r.discover(HEAD).unwrap();
        assert_eq!(
            s.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(s[0].dockerfile, "services/a/Dockerfile");
        assert_eq!(s[0].context, "services/a");
        assert_eq!(s[0].repository, "shop/a");
    }

    #[test]
    fn defaults_and_overrides() {
        let r = Repo::new("overrides");
        r.file("services/a/Dockerfile", "FROM scratch\n")
            .file("services/b/Dockerfile.prod", "FROM scratch\n")
            .file("services/b/Dockerfile", "FROM scratch\n");
        let s = r
            .discover(&format!("{HEAD}defaults:\n  context: .\nservices:\n  b:\n    dockerfile: services/b/Dockerfile.prod\n    repository: custom/b\n    requires: [a]\n    build_args: {{X: y}}\n"))
            .unwrap();
        assert_eq!(s[0].context, ".");
        assert_eq!(s[1].dockerfile, "services/b/Dockerfile.prod");
        assert_eq!(s[1].repository, "custom/b");
        assert_eq!(s[1].requires, ["a"]);
        assert_eq!(s[1].build_args["X"], "y");
    }

    #[test]
    fn escaping_paths_are_rejected_with_their_line() {
        let r = Repo::new("escape");
        r.file("services/a/Dockerfile", "FROM scratch\n");
        let e = r
            .discover(&format!("{HEAD}services:\n  a:\n    context: ../..\n"))
            .unwrap_err();
        assert_eq!(
            e.loc,
            Some(Loc {
                line: 7,
                column: 14
            }),
            "{e}"
        );
        assert!(e.message.contains("escapes the repo root"), "{e}");
        let e = r
            .discover(&format!(
                "{HEAD}services:\n  a:\n    dockerfile: /etc/passwd\n"
            ))
            .unwrap_err();
        assert!(e.message.contains("escapes"), "{e}");
    }

    #[test]
    fn symlink_out_of_the_repo_is_an_escape() {
        let r = Repo::new("symlink");
        r.file("services/a/Dockerfile", "FROM scratch\n");
        std::os::unix::fs::symlink("/tmp", r.0.join("outside")).unwrap();
        let e = r
            .discover(&format!("{HEAD}services:\n  a:\n    context: outside\n"))
            .unwrap_err();
        assert!(e.message.contains("escapes"), "{e}");
    }

    #[test]
    fn manifest_paths_must_stay_in_the_repo() {
        let r = Repo::new("manifests");
        r.file("services/a/Dockerfile", "FROM scratch\n");
        for (manifests, line) in [
            ("manifests:\n  kustomize: [../elsewhere]\n", 6),
            (
                "manifests:\n  helm:\n    - values: ../../values.yaml\n      image_path: x\n",
                7,
            ),
            ("manifests:\n  raw: [\"../other/*.yaml\"]\n", 6),
            ("manifests:\n  raw: [\"/etc/*.yaml\"]\n", 6),
        ] {
            let e = r.discover(&format!("{HEAD}{manifests}")).unwrap_err();
            assert!(e.message.contains("escapes the repo root"), "{e}");
            assert_eq!(e.loc.map(|l| l.line), Some(line), "{e}");
        }
        r.discover(&format!("{HEAD}manifests:\n  raw: [\"k8s/**/*.yaml\"]\n"))
            .unwrap();
    }

    #[test]
    fn two_services_may_not_share_a_repository() {
        let r = Repo::new("same-repo");
        r.file("services/a/Dockerfile", "FROM scratch\n")
            .file("services/b/Dockerfile", "FROM scratch\n");
        let e = r
            .discover(&format!("{HEAD}services:\n  b:\n    repository: shop/a\n"))
            .unwrap_err();
        assert!(
            e.message
                .contains("services `a` and `b` both push to repository `shop/a`"),
            "{e}"
        );
        assert_eq!(e.loc.map(|l| l.line), Some(7), "{e}");
    }

    #[test]
    fn services_dir_dot_and_a_folder_override_name_one_service() {
        let r = Repo::new("dot");
        r.file("cart/Dockerfile", "FROM scratch\n")
            .file("web/Dockerfile", "FROM scratch\n");
        let head = format!("{HEAD}services_dir: .\n");
        let s = r
            .discover(&format!(
                "{head}services:\n  shop-cart:\n    folder: cart\n"
            ))
            .unwrap();
        let names: Vec<_> = s
            .iter()
            .map(|s| (s.name.as_str(), s.dockerfile.as_str()))
            .collect();
        assert_eq!(
            names,
            [("shop-cart", "cart/Dockerfile"), ("web", "web/Dockerfile")]
        );
    }

    #[test]
    fn nested_folders_containerfiles_depth_and_names() {
        let r = Repo::new("nested");
        r.file("services/payments/api/Dockerfile", "FROM scratch\n")
            .file("services/payments/worker/Containerfile", "FROM scratch\n")
            .file("services/web/Dockerfile", "FROM scratch\n")
            .file("services/web/sub/Dockerfile", "FROM scratch\n")
            .file("services/a/b/c/Dockerfile", "FROM scratch\n")
            .file("services/.hidden/Dockerfile", "FROM scratch\n");
        // depth 1 (the default): only services/<name>.
        let names = |s: &[Service]| s.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&r.discover(HEAD).unwrap()), ["web"]);
        let s = r
            .discover(&format!("{HEAD}discover:\n  depth: 2\n"))
            .unwrap();
        assert_eq!(names(&s), ["payments-api", "payments-worker", "web"]);
        let worker = s.iter().find(|s| s.name == "payments-worker").unwrap();
        assert_eq!(worker.dockerfile, "services/payments/worker/Containerfile");
        assert_eq!(worker.context, "services/payments/worker");
        assert_eq!(worker.repository, "shop/payments-worker");
        let s = r
            .discover(&format!("{HEAD}discover:\n  depth: 3\n"))
            .unwrap();
        assert!(names(&s).contains(&"a-b-c".to_string()), "{:?}", names(&s));
        // A configured folder gives a nested service a name of its own.
        let s = r
            .discover(&format!(
                "{HEAD}discover:\n  depth: 2\nservices:\n  pay-api:\n    folder: services/payments/api\n"
            ))
            .unwrap();
        assert_eq!(names(&s), ["pay-api", "payments-worker", "web"]);
        assert_eq!(s[0].dockerfile, "services/payments/api/Dockerfile");
        let e = r
            .discover(&format!("{HEAD}discover:\n  depth: 0\n"))
            .unwrap_err();
        assert!(e.message.contains("discover.depth 0"), "{e}");
        // Two folders that would have one name: an error naming both, until
        // one is given a name of its own.
        r.file("services/payments-api/Dockerfile", "FROM scratch\n");
        let e = r
            .discover(&format!("{HEAD}discover:\n  depth: 2\n"))
            .unwrap_err();
        assert!(
            e.message
                .contains("`services/payments-api` and `services/payments/api`")
                && e.message.contains("both be the service `payments-api`"),
            "{e}"
        );
        let s = r
            .discover(&format!(
                "{HEAD}discover:\n  depth: 2\nservices:\n  pay-api:\n    folder: services/payments/api\n"
            ))
            .unwrap();
        assert_eq!(
            names(&s),
            ["pay-api", "payments-api", "payments-worker", "web"]
        );
    }

    #[test]
    fn zero_services_is_an_error_saying_where_it_looked() {
        let r = Repo::new("zero");
        r.file("services/readme/README.md", "no Dockerfile here\n");
        let e = r.discover(HEAD).unwrap_err();
        assert!(
            e.message.contains("no services: no folder under `services` (at most 1 deep, discover.depth) holds a Dockerfile or Containerfile"),
            "{e}"
        );
        // services_dir set but missing: the key's line is named.
        let e = r
            .discover(&format!(
                "{HEAD}services_dir: apps\nservices:\n  x:\n    dockerfile: x/Dockerfile\n"
            ))
            .unwrap_err();
        assert_eq!(e.loc.map(|l| l.line), Some(5), "{e}");
        assert!(
            e.message.contains("services_dir `apps` is not a folder"),
            "{e}"
        );
    }

    #[test]
    fn a_service_folder_linked_from_outside_the_repo_is_refused() {
        let r = Repo::new("outside");
        r.file("services/a/Dockerfile", "FROM scratch\n");
        let outside = std::env::temp_dir().join(format!("pipeline-outside-{}", std::process::id()));
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("Dockerfile"), "FROM scratch\nCOPY . /\n").unwrap();
        std::os::unix::fs::symlink(&outside, r.0.join("services/evil")).unwrap();
        let e = r.discover(HEAD).unwrap_err();
        assert!(
            e.message.contains("`services/evil` is a symlink to")
                && e.message.contains("outside the repo"),
            "{e}"
        );
        // A link that stays inside the repo is a service like any other.
        std::fs::remove_file(r.0.join("services/evil")).unwrap();
        r.file("shared/b/Dockerfile", "FROM scratch\n");
        std::os::unix::fs::symlink(r.0.join("shared/b"), r.0.join("services/b")).unwrap();
        let s = r.discover(HEAD).unwrap();
        assert_eq!(
            s.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        std::fs::remove_dir_all(&outside).unwrap();
    }

    #[test]
    fn a_dockerfile_may_link_within_the_repo_but_not_out_of_it() {
        let r = Repo::new("dockerfile-link");
        r.file("docker/orders", "FROM scratch\n");
        std::fs::create_dir_all(r.0.join("services/orders")).unwrap();
        std::os::unix::fs::symlink(
            "../../docker/orders",
            r.0.join("services/orders/Dockerfile"),
        )
        .unwrap();
        let s = r.discover(HEAD).unwrap();
        assert_eq!(s[0].dockerfile, "services/orders/Dockerfile");
        let outside = std::env::temp_dir().join(format!("pipeline-df-{}", std::process::id()));
        std::fs::write(&outside, "FROM scratch\n").unwrap();
        std::fs::remove_file(r.0.join("services/orders/Dockerfile")).unwrap();
        std::os::unix::fs::symlink(&outside, r.0.join("services/orders/Dockerfile")).unwrap();
        let e = r.discover(HEAD).unwrap_err();
        assert!(
            e.message.contains("is a symlink to") && e.message.contains("outside the repo"),
            "{e}"
        );
        std::fs::remove_file(&outside).unwrap();
    }

    #[test]
    fn cycles_are_named() {
        let r = Repo::new("cycle");
        for n in ["a", "b", "c"] {
            r.file(&format!("services/{n}/Dockerfile"), "FROM scratch\n");
        }
        let e = r
            .discover(&format!("{HEAD}services:\n  a:\n    requires: [b]\n  b:\n    requires: [c]\n  c:\n    requires: [a]\n"))
            .unwrap_err();
        assert!(e.message.contains("cycle: a -> b -> c -> a"), "{e}");
        let e = r
            .discover(&format!("{HEAD}services:\n  a:\n    requires: [a]\n"))
            .unwrap_err();
        assert!(e.message.contains("cycle: a -> a"), "{e}");
    }

    #[test]
    fn unknown_requirement_and_missing_dockerfile() {
        let r = Repo::new("unknown");
        r.file("services/a/Dockerfile", "FROM scratch\n");
        let e = r
            .discover(&format!("{HEAD}services:\n  a:\n    requires: [nope]\n"))
            .unwrap_err();
        assert!(e.message.contains("requires `nope`"), "{e}");
        let e = r
            .discover(&format!("{HEAD}services:\n  ghost:\n    target: x\n"))
            .unwrap_err();
        assert!(
            e.message
                .contains("services/ghost/Dockerfile` does not exist"),
            "{e}"
        );
    }

    #[test]
    fn image_arg_names() {
        assert_eq!(image_arg("base"), "BASE_IMAGE");
        assert_eq!(image_arg("auth-api.v2"), "AUTH_API_V2_IMAGE");
    }
}
