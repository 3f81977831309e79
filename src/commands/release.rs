//! `pipeline release VERSION`: check every service, then tag all of them
//! inside the registry; record the release; optionally pin the manifests.

use oci_registry::Registry;

use super::lock::Lock;
use super::{load_results, names, refuse_warnings, results_path, state_dir, stdout};
use crate::cli::{Globals, Output, ReleaseOptions};
use crate::config::{Config, Pin};
use crate::discover::Service;
use crate::error::Error;
use crate::patch::{self, Pinned};
use crate::plan::tags;
use crate::push::connect;
use crate::push::release;
use crate::report::render;

/// `pipeline release VERSION`: check every service, then tag all of them
/// inside the registry; record the release; optionally pin the manifests.
pub(super) async fn command(
    globals: &Globals,
    config: &Config,
    services: &[Service],
    options: &ReleaseOptions,
) -> Result<(), Error> {
    let version = options.version.as_str();
    if !tags::is_valid(version) {
        return Err(Error::Usage(format!(
            "`{version}` is not a valid tag: it must match [A-Za-z0-9_][A-Za-z0-9._-]{{0,127}}"
        )));
    }
    if let Some(tag) = &options.from_tag
        && !tags::is_valid(tag)
    {
        return Err(Error::Usage(format!(
            "--from-tag `{tag}` is not a valid tag"
        )));
    }
    for name in &options.only {
        if !services.iter().any(|s| &s.name == name) {
            return Err(Error::Usage(format!(
                "--only: `{name}` is not a service (known: {})",
                services
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    let chosen = |name: &str| options.only.is_empty() || options.only.iter().any(|o| o == name);
    let results_file = results_path(config, options.results.as_deref());
    let _lock = Lock::take(&state_dir(config)?, "release", !globals.no_wait).await?;
    let results = match &options.from_tag {
        Some(_) => None,
        None => Some(load_results(&results_file)?),
    };
    let connection = connect::connect(config)
        .await
        .map_err(|e| Error::Environment(e.to_string()))?;
    let host = connection.host.clone();
    let registry = connection.registry();
    let mut candidates = Vec::new();
    for service in services.iter().filter(|s| chosen(&s.name)) {
        let uri = format!("{host}/{}", service.repository);
        let digest = match (&results, &options.from_tag) {
            (Some(results), _) => match results.services.get(&service.name) {
                Some(r) => r.digest.clone(),
                None if options.only.is_empty() => continue,
                None => {
                    return Err(Error::Usage(format!(
                        "--only: `{}` is not in {}",
                        service.name,
                        results_file.display()
                    )));
                }
            },
            (None, Some(tag)) => registry
                .digest(&service.repository, tag)
                .await
                .map_err(|e| Error::Environment(format!("registry {host}: {e}")))?,
            (None, None) => unreachable!("results are loaded without --from-tag"),
        };
        let missing = match &options.from_tag {
            Some(tag) => format!("no tag `{tag}` in {uri}"),
            None => format!(
                "no pushed image in {} (failed, skipped, or built with --no-push)",
                results_file.display()
            ),
        };
        candidates.push(release::Candidate {
            service: service.name.clone(),
            repository: service.repository.clone(),
            uri,
            digest,
            missing,
        });
    }
    let mut pinned_config = config.clone();
    pinned_config.manifests.pin = Pin::TagAndDigest;
    if options.patch {
        // The manifests must take the release before anything is tagged.
        let placeholders: Vec<Pinned> = candidates
            .iter()
            .map(|c| {
                Pinned::placeholder(
                    &c.service,
                    &c.repository,
                    c.uri.clone(),
                    version.into(),
                    version.into(),
                )
            })
            .collect();
        let changes = patch::compute(&pinned_config, &placeholders, &names(services))?;
        refuse_warnings(options.strict || config.manifests.strict, &changes)?;
    }
    let outcome = match release::release(&registry, version, &candidates, options.force).await {
        Ok(outcome) => outcome,
        Err(release::ReleaseError::Refused(refusals)) => {
            eprintln!("error: nothing was tagged:");
            for r in &refusals {
                eprintln!("  {r}");
            }
            return Err(Error::Failed(refusals.len()));
        }
        Err(e) => return Err(Error::Environment(format!("registry {host}: {e}"))),
    };
    let record = release::Record {
        version: version.to_string(),
        source: match &options.from_tag {
            Some(tag) => release::Source::Tag(tag.clone()),
            None => release::Source::Results(results_file.display().to_string()),
        },
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        services: outcome.released,
    };
    let state = state_dir(config)?;
    let record_path = state.join(format!("release-{version}.json"));
    let json = serde_json::to_string_pretty(&record).expect("record serializes") + "\n";
    // A release that changed nothing keeps the record of the one that did.
    let changed = record
        .services
        .values()
        .any(|r| r.action != release::Action::Unchanged);
    if changed || !record_path.exists() {
        crate::report::write_atomic(&record_path, json.as_bytes())
            .map_err(|e| Error::Environment(format!("writing {}: {e}", record_path.display())))?;
    }
    if let Some(e) = outcome.error {
        eprintln!(
            "error: tagging stopped: {e}; what was tagged is in {}",
            record_path.display()
        );
        return Err(Error::Environment(format!("registry {host}: {e}")));
    }
    let mut changes = Vec::new();
    if options.patch {
        let pins: Vec<Pinned> = candidates
            .iter()
            .filter_map(|c| {
                let r = record.services.get(&c.service)?;
                Some(Pinned {
                    service: c.service.clone(),
                    repository: c.repository.clone(),
                    uri: r.repository.clone(),
                    digest: r.digest.clone(),
                    tag: version.to_string(),
                    content_tag: version.to_string(),
                })
            })
            .collect();
        changes = patch::compute(&pinned_config, &pins, &names(services))
            .and_then(|changes| patch::write(&changes).map(|()| changes))
            .map_err(Error::Unpatched)?;
    }
    match globals.output {
        Output::Json => stdout(&json),
        Output::Text if !globals.quiet => {
            stdout(&render::release(&record))?;
            stdout(&render::patched(&changes))
        }
        Output::Text => Ok(()),
    }
}
