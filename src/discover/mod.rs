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

/// All services, sorted by name.
pub(crate) fn discover(config: &Config) -> Result<Vec<Service>, ConfigError> {
    let services_dir = relative_path(config, &config.services_dir)?;
    let mut names: BTreeSet<String> = BTreeSet::new();
    let dir = config.root.join(&services_dir);
    if dir.is_dir() {
        let entries = std::fs::read_dir(&dir).map_err(|e| {
            config.error(
                config.services_dir.loc,
                format!("cannot read services_dir `{}`: {e}", services_dir),
            )
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() && path.join("Dockerfile").is_file() {
                names.insert(entry.file_name().to_string_lossy().into_owned());
            }
        }
    } else if config.services.is_empty() {
        return Err(config.error(
            config.services_dir.loc,
            format!(
                "services_dir `{services_dir}` is not a folder under {}; create it or set services_dir",
                config.root.display()
            ),
        ));
    }
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
        services.push(resolve(config, &services_dir, &name, loc, settings)?);
    }
    check_requires(config, &services)?;
    check_repositories(config, &services)?;
    check_manifest_services(config, &services)?;
    Ok(services)
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
    services_dir: &str,
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
    let folder = format!("{services_dir}/{name}");
    let dockerfile = match &s.dockerfile {
        Some(d) => relative_path(config, d)?,
        None => format!("{folder}/Dockerfile"),
    };
    let context = match &s.context {
        Some(c) => relative_path(config, c)?,
        None => folder.clone(),
    };
    let at = |field: &Option<At<String>>| field.as_ref().map(|f| f.loc).unwrap_or(loc);
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
