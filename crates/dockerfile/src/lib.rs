//! Reads Dockerfiles and `.dockerignore` files the way Docker does, to answer
//! questions before a build: which context files the build can read, which
//! BuildKit features it needs, which secrets it mounts, which sources must exist.
//!
//! A service built from a wide context (`docker build -f services/x/Dockerfile .`)
//! would otherwise hash and send the whole monorepo, so a change in `services/a`
//! would rebuild `services/b`. [`reach()`] reads the Dockerfile the way the builder
//! does and answers which context paths its `COPY`/`ADD` instructions can touch;
//! a build then hashes and sends only those, minus what [`DockerIgnore`] excludes.
//!
//! [`Dockerfile::parse`] gives the instruction-level view the rest is built on:
//! stages, instructions with their lines and flags, heredocs, parser directives.
//! On top of it:
//!
//! - [`Dockerfile::features`]: the BuildKit-only features used, each with its line,
//!   and [`Dockerfile::unsupported_features`]: those the frontend that will read
//!   the file (its `# syntax=`, or the engine's built-in one) cannot build.
//! - [`Dockerfile::secret_mounts`]: the build-secret ids `RUN --mount` asks for.
//! - [`Dockerfile::copy_sources`]: each `COPY`/`ADD` that reads the context, with
//!   its line and its sources after `ARG`/`ENV` expansion.
//!
//! Docker behaviour this relies on is cited where it is used: parsing follows the
//! parser the daemon vendors from BuildKit; stages, variables and sources follow
//! the builder; `.dockerignore` follows moby's `patternmatcher`; globs follow Go's
//! `filepath.Match`. Every doubt in [`reach()`] widens the answer, never narrows it:
//! sending too much costs time, sending too little breaks the build or lets a cache
//! hit hide a change.
//!
//! ```
//! use std::collections::BTreeMap;
//! use dockerfile::{Dockerfile, Feature, Frontend, Reach, Source, reach};
//!
//! let text = "\
//! FROM rust:1.80 AS build
//! ARG SERVICE=payments
//! COPY Cargo.toml libs/common services/${SERVICE} /src/
//! RUN --mount=type=secret,id=cargo cargo build --release
//! FROM debian:bookworm-slim
//! COPY --link --from=build /src/target/release/app /usr/local/bin/
//! ";
//! let Reach::Sources(sources) = reach(text, &BTreeMap::new(), None) else {
//!     panic!("reaches the whole context");
//! };
//! assert!(sources.includes("services/payments/src/main.rs"));
//! assert!(!sources.includes("services/orders/src/main.rs"));
//!
//! let file = Dockerfile::parse(text)?;
//! let late: Vec<_> = file
//!     .unsupported_features(Frontend::DOCKER_20_10)
//!     .into_iter()
//!     .map(|u| (u.line, u.feature))
//!     .collect();
//! assert_eq!(late, [(6, Feature::Link)]);
//! assert_eq!(file.secret_mounts()[0].id, "cargo");
//!
//! let copies = file.copy_sources(&BTreeMap::new(), None)?;
//! assert_eq!(copies[0].line, 3);
//! assert!(matches!(&copies[0].sources[2], Source::Context { path, .. } if path == "services/payments"));
//!
//! let ignore = dockerfile::DockerIgnore::parse("target\n*.md\n!README.md\n")?;
//! assert!(ignore.excludes("target/debug/app"));
//! assert!(!ignore.excludes("README.md"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod copy;
mod expand;
mod features;
mod glob;
mod ignore;
mod parse;
mod reach;
mod secrets;

pub use copy::{CopySources, Source, UnknownTarget};

/// Whether `path` matches `pattern` as Go's `filepath.Match` decides (the
/// builder's rule for `COPY` sources): `*` and `?` stay within one path
/// component, `[...]` classes negate only with `^`. A malformed pattern
/// matches nothing.
#[must_use]
pub fn matches_go_glob(pattern: &str, path: &str) -> bool {
    let name: Vec<char> = path.chars().collect();
    glob::parse_glob(pattern).is_some_and(|tokens| glob::glob_match(&tokens, &name))
}
pub use features::{Feature, FeatureUse, Frontend, MountKind, Version};
pub use ignore::DockerIgnore;
pub use parse::{Directive, Dockerfile, Flag, Heredoc, Instruction, ParseError, Stage};
pub use reach::{Reach, Sources, reach};
pub use secrets::SecretMount;
