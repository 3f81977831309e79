//! The command line. Clap lives here and only here: the arguments are turned
//! into a plain [`Invocation`] that the rest of the tool reads.

use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Output {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Progress {
    Auto,
    Tty,
    Plain,
    None,
}

#[derive(Debug, Parser)]
#[command(
    name = "pipeline",
    version,
    about = "Build, push and pin every service of a monorepo: from services/ to deployable Kubernetes manifests.",
    after_help = "Examples:\n  pipeline init                write a pipeline.yaml for this repo\n  pipeline plan                what would be built, and why\n  pipeline run                 build, push and tag every service, pin the manifests\n  pipeline build orders        rebuild one service into the local engine as <repository>:dev\n  pipeline patch --check       fail when the manifests are not pinned to the last run\n  pipeline release v1.4.0      tag the tested images, in the registry"
)]
struct Cli {
    /// Run as if started in DIR.
    #[arg(short = 'C', value_name = "DIR", global = true)]
    dir: Option<PathBuf>,
    /// The config file.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "pipeline.yaml",
        global = true
    )]
    config: PathBuf,
    /// The format of stdout: text for people, json for programs (one document).
    #[arg(long, value_enum, default_value_t = Output::Text, global = true)]
    output: Output,
    /// Progress on stderr: bars on a terminal, one line per event otherwise or when CI is set.
    #[arg(long, value_enum, default_value_t = Progress::Auto, global = true)]
    progress: Progress,
    /// Less output.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// More output: build log lines on a terminal too (plain output always has them).
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The whole pipeline for all services, or the named ones and what they require.
    #[command(after_help = "Example:\n  pipeline run --keep-going --results out/results.json")]
    Run(RunArgs),
    /// Rebuild services into the local engine only, tagged <repository>:dev. No AWS, no registry.
    #[command(after_help = "Example:\n  pipeline build orders && docker run --rm shop/orders:dev")]
    Build {
        /// The services to build (their requirements are built too).
        #[arg(required = true, value_name = "SERVICE")]
        services: Vec<String>,
        /// Parallel builds (default: build.jobs).
        #[arg(long, value_name = "N")]
        jobs: Option<usize>,
        #[command(flatten)]
        wait: Wait,
    },
    /// What `run` would do: per service its input digest, cached or build and why, tags, order.
    #[command(
        after_help = "Examples:\n  pipeline plan                  look up every content tag in the registry\n  pipeline plan orders --offline compare with the last results only\n  pipeline plan --output json"
    )]
    Plan {
        /// Services to plan (default: all); their requirements are planned too.
        #[arg(value_name = "SERVICE")]
        services: Vec<String>,
        /// No registry look-ups: decide from the last results file.
        #[arg(long)]
        offline: bool,
        /// Plan as `run --force` would: build every selected service.
        #[arg(long)]
        force: bool,
        /// The results file to compare with (default .pipeline/results.json).
        #[arg(long, value_name = "FILE")]
        results: Option<PathBuf>,
    },
    /// Pin the configured manifests to the digests of a results file.
    #[command(
        after_help = "Examples:\n  pipeline patch                          apply .pipeline/results.json\n  pipeline patch --check                  exit 1 and show the diff if the manifests drifted\n  pipeline patch --results ci/results.json"
    )]
    Patch {
        /// The results file to apply (default .pipeline/results.json).
        #[arg(long, value_name = "FILE")]
        results: Option<PathBuf>,
        /// Write nothing: print a unified diff of what would change, exit 1 if anything would.
        #[arg(long)]
        check: bool,
        /// A patch warning (an image left unpinned, a chart that never reads the digest) is exit 1, and nothing is written.
        #[arg(long)]
        strict: bool,
        #[command(flatten)]
        wait: Wait,
    },
    /// Add tag VERSION to every service's tested image, inside the registry: no build, no pull.
    #[command(
        after_help = "Examples:\n  pipeline release v1.4.0                     the digests of .pipeline/results.json\n  pipeline release v1.4.0 --from-tag latest   whatever latest points to now\n  pipeline release v1.4.0 --only orders --patch"
    )]
    Release {
        /// The tag to add ([A-Za-z0-9_][A-Za-z0-9._-]{0,127}).
        version: String,
        /// The results file whose digests are released (default .pipeline/results.json).
        #[arg(long, value_name = "FILE", conflicts_with = "from_tag")]
        results: Option<PathBuf>,
        /// Release the digest TAG points to now in the registry, for every service.
        #[arg(long, value_name = "TAG")]
        from_tag: Option<String>,
        /// Move VERSION when it already points to another digest.
        #[arg(long)]
        force: bool,
        /// Release only these services.
        #[arg(long, value_name = "SERVICE", num_args = 1..)]
        only: Vec<String>,
        /// Then pin the configured manifests to repository:VERSION@digest.
        #[arg(long)]
        patch: bool,
        /// With --patch: a patch warning is exit 1, and nothing is tagged or written.
        #[arg(long, requires = "patch")]
        strict: bool,
        #[command(flatten)]
        wait: Wait,
    },
    /// Merge the results files of `run --shard K/N` jobs; if every service succeeded, add the tags and patch the manifests.
    #[command(
        after_help = "Examples:\n  pipeline finish results/shard-*.json\n  pipeline finish a.json b.json c.json --results merged.json"
    )]
    Finish {
        /// The shards' results files, one per shard.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Where to write the merged results file (default .pipeline/results.json).
        #[arg(long, value_name = "FILE")]
        results: Option<PathBuf>,
        #[command(flatten)]
        wait: Wait,
    },
    /// Write a commented pipeline.yaml from the repo's Compose builds, Dockerfile folders and manifests, then plan it offline.
    #[command(
        after_help = "Examples:\n  pipeline init                         write pipeline.yaml, then show its offline plan\n  pipeline init --services-dir images   the service folders are under images/"
    )]
    Init {
        /// The folder holding the service folders, relative to the repo root (default: the one of services/, src/, apps/, cmd/, packages/ holding most).
        #[arg(long, value_name = "DIR")]
        services_dir: Option<PathBuf>,
    },
    /// Check the engine, AWS, ECR, the registry login, the manifests and git, each with a fix.
    #[command(after_help = "Example:\n  pipeline doctor")]
    Doctor,
    /// Print shell completions.
    #[command(
        after_help = "Examples:\n  pipeline completions bash > /etc/bash_completion.d/pipeline\n  pipeline completions zsh > \"${fpath[1]}/_pipeline\""
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// The discovered services: name, Dockerfile, context, repository, requires.
    #[command(after_help = "Example:\n  pipeline services --output json")]
    Services,
}

/// For the commands that take the checkout's lock.
#[derive(Debug, Args)]
struct Wait {
    /// When another run of this checkout holds its lock, exit 3 instead of waiting.
    #[arg(long)]
    no_wait: bool,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Services to run (default: all); their requirements are resolved too.
    #[arg(value_name = "SERVICE")]
    services: Vec<String>,
    /// Build only: no AWS, no registry, no patch.
    #[arg(long)]
    no_push: bool,
    /// Do not patch manifests.
    #[arg(long)]
    no_patch: bool,
    /// Parallel builds (default: build.jobs).
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// Parallel pushes (default: build.push_jobs).
    #[arg(long, value_name = "N")]
    push_jobs: Option<usize>,
    /// Ignore the cache: build every selected service.
    #[arg(long)]
    force: bool,
    /// Independent services go on after a failure.
    #[arg(long)]
    keep_going: bool,
    /// Where to write the results file (default .pipeline/results.json).
    #[arg(long, value_name = "FILE")]
    results: Option<PathBuf>,
    /// Build and push shard K of N of the selected services, content tags only, no patch; `pipeline finish` merges the shards.
    #[arg(long, value_name = "K/N", conflicts_with = "no_push")]
    shard: Option<crate::plan::shard::Shard>,
    /// With --shard: balance the shards by the durations in this earlier results file.
    #[arg(long, value_name = "FILE", requires = "shard")]
    weights: Option<PathBuf>,
    #[command(flatten)]
    wait: Wait,
}

/// Options common to every command.
#[derive(Debug, Clone)]
pub(crate) struct Globals {
    pub(crate) config: PathBuf,
    pub(crate) output: Output,
    pub(crate) progress: Progress,
    pub(crate) quiet: bool,
    pub(crate) verbose: bool,
    pub(crate) no_wait: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct RunOptions {
    pub(crate) services: Vec<String>,
    pub(crate) push: bool,
    pub(crate) patch: bool,
    pub(crate) jobs: Option<usize>,
    pub(crate) push_jobs: Option<usize>,
    pub(crate) force: bool,
    pub(crate) keep_going: bool,
    pub(crate) results: Option<PathBuf>,
    pub(crate) shard: Option<crate::plan::shard::Shard>,
    pub(crate) weights: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub(crate) struct PlanOptions {
    pub(crate) services: Vec<String>,
    pub(crate) offline: bool,
    pub(crate) force: bool,
    pub(crate) results: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub(crate) struct ReleaseOptions {
    pub(crate) version: String,
    pub(crate) results: Option<PathBuf>,
    pub(crate) from_tag: Option<String>,
    pub(crate) force: bool,
    pub(crate) only: Vec<String>,
    pub(crate) patch: bool,
    pub(crate) strict: bool,
}

#[derive(Debug, Clone)]
pub(crate) enum Cmd {
    Run(RunOptions),
    Plan(PlanOptions),
    Patch {
        results: Option<PathBuf>,
        check: bool,
        strict: bool,
    },
    Release(ReleaseOptions),
    Finish {
        files: Vec<PathBuf>,
        results: Option<PathBuf>,
    },
    Init {
        services_dir: Option<PathBuf>,
    },
    Doctor,
    Build {
        services: Vec<String>,
        jobs: Option<usize>,
    },
    Services,
}

#[derive(Debug, Clone)]
pub(crate) struct Invocation {
    pub(crate) globals: Globals,
    pub(crate) command: Cmd,
}

/// Parses the process arguments; on `--help`, `--version` or a usage error
/// clap has printed what it needs to and this returns the exit code (2 for
/// usage errors, as SPEC.md says).
pub(crate) fn parse() -> Result<Invocation, i32> {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return Err(if e.use_stderr() { 2 } else { 0 });
        }
    };
    if let Some(dir) = &cli.dir
        && let Err(e) = std::env::set_current_dir(dir)
    {
        eprintln!("error: -C {}: {e}", dir.display());
        return Err(2);
    }
    let positive = |n: Option<usize>, flag: &str| -> Result<Option<usize>, i32> {
        if n == Some(0) {
            eprintln!("error: {flag} must be at least 1");
            return Err(2);
        }
        Ok(n)
    };
    let mut no_wait = false;
    let command = match cli.command {
        Command::Run(a) => {
            no_wait = a.wait.no_wait;
            Cmd::Run(RunOptions {
                services: a.services,
                push: !a.no_push,
                patch: !a.no_patch && !a.no_push && a.shard.is_none(),
                jobs: positive(a.jobs, "--jobs")?,
                push_jobs: positive(a.push_jobs, "--push-jobs")?,
                force: a.force,
                keep_going: a.keep_going,
                results: a.results,
                shard: a.shard,
                weights: a.weights,
            })
        }
        Command::Build {
            services,
            jobs,
            wait,
        } => {
            no_wait = wait.no_wait;
            Cmd::Build {
                services,
                jobs: positive(jobs, "--jobs")?,
            }
        }
        Command::Plan {
            services,
            offline,
            force,
            results,
        } => Cmd::Plan(PlanOptions {
            services,
            offline,
            force,
            results,
        }),
        Command::Patch {
            results,
            check,
            strict,
            wait,
        } => {
            no_wait = wait.no_wait;
            Cmd::Patch {
                results,
                check,
                strict,
            }
        }
        Command::Release {
            version,
            results,
            from_tag,
            force,
            only,
            patch,
            strict,
            wait,
        } => {
            no_wait = wait.no_wait;
            Cmd::Release(ReleaseOptions {
                version,
                results,
                from_tag,
                force,
                only,
                patch,
                strict,
            })
        }
        Command::Finish {
            files,
            results,
            wait,
        } => {
            no_wait = wait.no_wait;
            Cmd::Finish { files, results }
        }
        Command::Init { services_dir } => Cmd::Init { services_dir },
        Command::Doctor => Cmd::Doctor,
        Command::Completions { shell } => {
            let mut command = Cli::command();
            clap_complete::generate(shell, &mut command, "pipeline", &mut std::io::stdout());
            return Err(0);
        }
        Command::Services => Cmd::Services,
    };
    Ok(Invocation {
        globals: Globals {
            config: cli.config,
            output: cli.output,
            progress: cli.progress,
            quiet: cli.quiet,
            verbose: cli.verbose,
            no_wait,
        },
        command,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }
}
