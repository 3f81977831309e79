//! `pipeline`: from a monorepo of services to pushed images and pinned
//! Kubernetes manifests. The modules follow the stages:
//!
//! config → discover → plan (context, input digest, tags) → build (engine)
//! → push (ECR, registry) → report; `run` executes a plan, `commands` ties
//! each command together, and `cli` is the only place that knows clap.

pub mod build;
pub mod cli;
pub mod commands;
pub mod config;
pub mod discover;
pub mod error;
pub mod execute;
pub mod patch;
pub mod plan;
pub mod push;
pub mod report;

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
