//! The error a command ends with, and the exit code it maps to (SPEC.md:
//! 0 success, 1 services failed, 2 usage or config, 3 environment, 130
//! interrupted). Library parts have their own typed errors; this is the edge.

use crate::config::ConfigError;
use crate::patch::PatchError;
use crate::plan::PlanError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// A build secret cannot be read.
    #[error(transparent)]
    Secret(#[from] crate::build::secrets::SecretError),
    /// A manifest cannot be patched (unreadable, invalid, a missing Helm
    /// path, an edit through an alias).
    #[error("patching manifests: {0}")]
    Patch(#[from] PatchError),
    /// The images are pushed (or tagged), but the manifests could not be
    /// patched afterwards: not a config error, the run did happen.
    #[error(
        "the images are pushed, but patching the manifests failed: {0}; fix it, then run `pipeline patch`"
    )]
    Unpatched(#[source] PatchError),
    /// `doctor` found problems; each was printed with its fix.
    #[error("{0} check(s) failed")]
    Checks(usize),
    /// `--strict` (or `manifests.strict`) and the patch warned.
    #[error(
        "{0} patch warning(s), and manifests.strict (or --strict) makes them errors; nothing was patched"
    )]
    Warnings(usize),
    /// `patch --check` found manifests that would change.
    #[error("{0} manifest(s) are not pinned to the results (run `pipeline patch`)")]
    Drift(usize),
    /// The Docker engine, AWS or the registry is missing or unreachable.
    #[error("{0}")]
    Environment(String),
    /// One or more services failed; the details were already reported.
    #[error("{0} service(s) failed")]
    Failed(usize),
    #[error("interrupted")]
    Interrupted,
}

impl Error {
    pub(crate) fn exit_code(&self) -> i32 {
        match self {
            Error::Failed(_)
            | Error::Drift(_)
            | Error::Checks(_)
            | Error::Unpatched(_)
            | Error::Warnings(_) => 1,
            Error::Usage(_)
            | Error::Config(_)
            | Error::Plan(_)
            | Error::Secret(_)
            | Error::Patch(_) => 2,
            Error::Environment(_) => 3,
            Error::Interrupted => 130,
        }
    }
}
