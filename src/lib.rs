//! `pipeline`: from a monorepo of services to pushed images and pinned
//! Kubernetes manifests. The folders follow the stages a run goes through:
//!
//! config → discover → plan (what each build sees, its input digest and
//! tags; `resolve` decides each step once) → execute (the decided plan,
//! with `build` and `push`) → patch (the manifests) → report (results,
//! progress). `commands` has one file per command, and `cli` is the only
//! place that knows clap. Everything but [`main`] is internal; the reusable
//! parts are the workspace's crates (`yamledit`, `dockerfile`,
//! `oci-registry`).

mod build;
mod cli;
mod commands;
mod config;
mod discover;
mod error;
mod execute;
mod patch;
mod plan;
mod push;
mod report;

/// Entry points for the fuzz targets in `fuzz/`, and for nothing else: they
/// reach internal parsers that have no public API.
#[doc(hidden)]
pub mod fuzzing {
    /// Parses `text` as `pipeline.yaml` and renders any error; an error is
    /// a fine outcome, a panic is a bug.
    pub fn config(text: &str) {
        let parsed = crate::config::Config::parse(std::path::Path::new("pipeline.yaml"), text);
        drop(parsed.map_err(|e| e.to_string()));
    }
}

/// Parses the command line, runs the command, and returns the exit code.
pub fn main() -> i32 {
    let invocation = match cli::parse() {
        Ok(i) => i,
        Err(code) => return code,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return 3;
        }
    };
    match runtime.block_on(commands::execute(invocation)) {
        Ok(()) => 0,
        Err(error) => {
            if !matches!(error, error::Error::Failed(_)) {
                eprintln!("error: {error}");
            }
            error.exit_code()
        }
    }
}
