//! Build secrets: read once when a run starts, from the environment or a
//! file as `secrets:` says, held as [`Secret`]s (never printed), and served
//! to the builds through the BuildKit session only. Their values are never
//! written anywhere: not in the image, the logs, the results or
//! `.pipeline/`; only their ids are an input of the image.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use oci_registry::Secret;

use crate::config::SecretSource;
use crate::discover::Service;

/// A secret that cannot be read, named by service and id.
#[derive(Debug, thiserror::Error)]
#[error("service `{service}`: secret `{id}`: {message}")]
pub(crate) struct SecretError {
    pub(crate) service: String,
    pub(crate) id: String,
    pub(crate) message: String,
}

/// Reads the values of `service`'s secrets; a relative `file` is relative
/// to `root`, the folder that holds pipeline.yaml.
pub(crate) fn load(service: &Service, root: &Path) -> Result<HashMap<String, Secret>, SecretError> {
    let mut values = HashMap::new();
    for (id, source) in &service.secrets {
        let error = |message: String| SecretError {
            service: service.name.clone(),
            id: id.clone(),
            message,
        };
        let value = match source {
            SecretSource { env: Some(var), .. } => std::env::var(var).map_err(|e| {
                error(format!(
                    "the environment variable `{var}` is {}; set it, or change secrets.{id}",
                    match e {
                        std::env::VarError::NotPresent => "not set",
                        std::env::VarError::NotUnicode(_) => "not valid UTF-8",
                    }
                ))
            })?,
            SecretSource {
                file: Some(path), ..
            } => {
                let full = root.join(expand_home(path));
                std::fs::read_to_string(&full).map_err(|e| {
                    error(format!(
                        "reading {}: {e}; create it, or change secrets.{id}",
                        full.display()
                    ))
                })?
            }
            SecretSource {
                env: None,
                file: None,
            } => return Err(error("names neither `env` nor `file`".into())),
        };
        values.insert(id.clone(), Secret::new(value));
    }
    Ok(values)
}

/// `~/x` in the home folder; any other path as written.
fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn service(secrets: &[(&str, SecretSource)]) -> Service {
        Service {
            name: "api".into(),
            dockerfile: "services/api/Dockerfile".into(),
            context: "services/api".into(),
            target: None,
            build_args: BTreeMap::new(),
            requires: Vec::new(),
            platform: None,
            repository: "shop/api".into(),
            builder: Default::default(),
            network: Default::default(),
            secrets: secrets
                .iter()
                .map(|(id, s)| (id.to_string(), s.clone()))
                .collect(),
        }
    }

    #[test]
    fn values_come_from_the_environment_or_a_file_and_a_missing_one_is_named() {
        let dir = std::env::temp_dir().join(format!("pipeline-secrets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("npmrc");
        std::fs::write(&file, "//registry/:_authToken=t0ken\n").unwrap();
        // Present in every test environment; a variable set here would need
        // `unsafe` (edition 2024), which the crate forbids.
        let ok = service(&[
            (
                "npmrc",
                SecretSource {
                    env: None,
                    file: Some(file.display().to_string()),
                },
            ),
            (
                "home",
                SecretSource {
                    env: Some("HOME".into()),
                    file: None,
                },
            ),
        ]);
        let values = load(&ok, Path::new("/nonexistent")).unwrap();
        assert_eq!(values["npmrc"].expose(), "//registry/:_authToken=t0ken\n");
        assert_eq!(values["home"].expose(), std::env::var("HOME").unwrap());
        let var = format!("PIPELINE_TEST_UNSET_{}", std::process::id());
        let s = service(&[
            (
                "npmrc",
                SecretSource {
                    env: None,
                    file: Some(file.display().to_string()),
                },
            ),
            (
                "tok",
                SecretSource {
                    env: Some(var.clone()),
                    file: None,
                },
            ),
        ]);
        let e = load(&s, Path::new("/nonexistent")).unwrap_err();
        assert_eq!((e.service.as_str(), e.id.as_str()), ("api", "tok"));
        assert!(
            e.to_string().contains(&format!("`{var}` is not set")),
            "{e}"
        );
        let missing = service(&[(
            "aws",
            SecretSource {
                env: None,
                file: Some("~/no/such/credentials".into()),
            },
        )]);
        let e = load(&missing, Path::new("/nonexistent"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("service `api`: secret `aws`: reading "),
            "{e}"
        );
        assert!(!e.contains('~'), "the home folder is expanded: {e}");
        // A relative file is read from the folder of pipeline.yaml, not the
        // current one.
        let relative = service(&[(
            "npmrc",
            SecretSource {
                env: None,
                file: Some("npmrc".into()),
            },
        )]);
        let values = load(&relative, &dir).unwrap();
        assert_eq!(values["npmrc"].expose(), "//registry/:_authToken=t0ken\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
