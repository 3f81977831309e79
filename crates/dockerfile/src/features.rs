//! Which BuildKit-only features a Dockerfile uses, and which Dockerfile frontend
//! can build them.
//!
//! Every feature here fails (or silently does something else) with the classic
//! builder. With BuildKit, the Dockerfile is read by a *frontend*: the one compiled
//! into the daemon, or the image a `# syntax=` directive names. A frontend older
//! than a feature rejects its flag ("unknown flag") or misreads its syntax (a
//! heredoc body becomes instructions). Docker Engine 20.10 embeds BuildKit v0.8,
//! whose frontend is `docker/dockerfile` 1.2 ([`Frontend::DOCKER_20_10`]).
//!
//! Versions come from the Dockerfile frontend release notes
//! (<https://docs.docker.com/build/buildkit/dockerfile-release-notes/>), the
//! "Minimum Dockerfile version" tables of the Dockerfile reference, and the labs
//! build tags of the `dockerfile/X.Y.Z` tags in moby/buildkit
//! (`frontend/dockerfile/release/labs/tags`).

use std::fmt;

use crate::parse::{Dockerfile, Instruction, json_array, unquote, whitespace_words};
use crate::secrets::{MountOptions, is_git_source};

/// A feature that needs BuildKit, and a recent enough Dockerfile frontend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Feature {
    /// `RUN --mount=type=…`: stable in 1.2 for every type (bind, cache, tmpfs,
    /// secret, ssh; "RUN --mount syntax … moved to mainline channel").
    RunMount(MountKind),
    /// Variables in `RUN --mount` values: expanded since 1.3 ("Values for RUN
    /// --mount flag now support variable expansion"); taken literally before.
    MountVariables,
    /// `RUN --mount=type=secret,env=…`: 1.10 ("Build secrets can now be mounted as
    /// environment variables").
    SecretEnv,
    /// `RUN --network`: stable in 1.3, labs since 1.2.
    RunNetwork,
    /// `RUN --security`: stable in 1.20 (moby/buildkit "promote RUN --security flag
    /// from labs"), labs since 1.1 (`1.1.2-experimental`).
    RunSecurity,
    /// `RUN --device`: labs only, since 1.14-labs.
    RunDevice,
    /// `COPY --chmod` / `ADD --chmod`: 1.2 (reference: minimum version 1.2).
    Chmod,
    /// A variable in `--chmod`: 1.10 ("ADD and COPY instructions now support
    /// variable interpolation … for the --chmod option values").
    ChmodVariable,
    /// A non-octal `--chmod` such as `u+x`: stable in 1.14, labs since 1.11.
    ChmodNonOctal,
    /// `COPY --link` / `ADD --link`: 1.4.
    Link,
    /// Here-documents: stable in 1.4 ("Heredocs support have been promoted from
    /// labs channel to stable"), labs since 1.3.
    Heredoc,
    /// `COPY --parents`: stable in 1.20, labs since 1.7.
    Parents,
    /// `COPY --exclude` / `ADD --exclude`: stable in 1.19, labs since 1.7.
    Exclude,
    /// `ADD --checksum`: stable in 1.6, labs since 1.5.
    AddChecksum,
    /// `ADD` of a Git repository, or `ADD --keep-git-dir`: 1.5.
    AddGit,
    /// `ADD --checksum` of a Git repository: 1.16.
    AddGitChecksum,
    /// `ADD --unpack`: 1.17.
    AddUnpack,
    /// The automatic platform `ARG`s (`BUILDPLATFORM`, `TARGETARCH`, …) in a `FROM`
    /// or declared in a stage: BuildKit only (reference: "This feature is only
    /// available when using the BuildKit backend"); the classic builder leaves them
    /// empty. Every BuildKit frontend has them (1.0).
    PlatformArgs,
}

/// The `type` of a `RUN --mount`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MountKind {
    Bind,
    Cache,
    Tmpfs,
    Secret,
    Ssh,
}

/// One use of a feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub struct FeatureUse {
    /// 1-based line of the instruction (of the `ONBUILD`, for a trigger).
    pub line: usize,
    pub feature: Feature,
}

/// A `docker/dockerfile` frontend version, `major.minor` (patch releases add no
/// features).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
}

/// The Dockerfile frontend that reads a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frontend {
    /// A known release: the one built into an engine, or `docker/dockerfile:1.4`.
    /// `labs` is the labs channel (`docker/dockerfile:1.4-labs`).
    Release { version: Version, labs: bool },
    /// The newest release (`docker/dockerfile:1`, `:latest`, `-upstream:master`),
    /// which has every stable feature, and labs ones on the labs channel.
    Latest { labs: bool },
    /// Another frontend image, or one pinned by digest only: its features are
    /// unknown.
    Other(String),
}

impl Version {
    #[must_use]
    pub const fn new(major: u32, minor: u32) -> Version {
        Version { major, minor }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl Feature {
    /// The first `docker/dockerfile` release with the feature on the stable channel;
    /// `None` when it is on the labs channel only.
    #[must_use]
    pub fn since(self) -> Option<Version> {
        let (major, minor) = match self {
            Feature::PlatformArgs => (1, 0),
            Feature::RunMount(_) | Feature::Chmod => (1, 2),
            Feature::MountVariables | Feature::RunNetwork => (1, 3),
            Feature::Link | Feature::Heredoc => (1, 4),
            Feature::AddGit => (1, 5),
            Feature::AddChecksum => (1, 6),
            Feature::SecretEnv | Feature::ChmodVariable => (1, 10),
            Feature::ChmodNonOctal => (1, 14),
            Feature::AddGitChecksum => (1, 16),
            Feature::AddUnpack => (1, 17),
            Feature::Exclude => (1, 19),
            Feature::Parents | Feature::RunSecurity => (1, 20),
            Feature::RunDevice => return None,
        };
        Some(Version::new(major, minor))
    }

    /// The first release with the feature on the labs channel (which has every
    /// stable feature too).
    #[must_use]
    pub fn labs_since(self) -> Version {
        match self {
            Feature::RunSecurity => Version::new(1, 1),
            Feature::RunNetwork => Version::new(1, 2),
            Feature::Heredoc => Version::new(1, 3),
            Feature::AddChecksum => Version::new(1, 5),
            Feature::Parents | Feature::Exclude => Version::new(1, 7),
            Feature::ChmodNonOctal => Version::new(1, 11),
            Feature::RunDevice => Version::new(1, 14),
            other => other.since().unwrap_or(Version::new(1, 0)),
        }
    }
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Feature::RunMount(kind) => {
                return write!(f, "RUN --mount=type={kind}");
            }
            Feature::MountVariables => "a variable in RUN --mount",
            Feature::SecretEnv => "RUN --mount=type=secret,env=…",
            Feature::RunNetwork => "RUN --network",
            Feature::RunSecurity => "RUN --security",
            Feature::RunDevice => "RUN --device",
            Feature::Chmod => "COPY/ADD --chmod",
            Feature::ChmodVariable => "a variable in --chmod",
            Feature::ChmodNonOctal => "a non-octal --chmod",
            Feature::Link => "COPY/ADD --link",
            Feature::Heredoc => "a heredoc",
            Feature::Parents => "COPY --parents",
            Feature::Exclude => "COPY/ADD --exclude",
            Feature::AddChecksum => "ADD --checksum",
            Feature::AddGit => "ADD of a Git repository",
            Feature::AddGitChecksum => "ADD --checksum of a Git repository",
            Feature::AddUnpack => "ADD --unpack",
            Feature::PlatformArgs => "an automatic platform ARG (BUILDPLATFORM, TARGETARCH, …)",
        };
        f.write_str(text)
    }
}

impl MountKind {
    fn parse(value: &str) -> Option<MountKind> {
        Some(match value.to_ascii_lowercase().as_str() {
            "bind" => MountKind::Bind,
            "cache" => MountKind::Cache,
            "tmpfs" => MountKind::Tmpfs,
            "secret" => MountKind::Secret,
            "ssh" => MountKind::Ssh,
            _ => return None,
        })
    }
}

impl fmt::Display for MountKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MountKind::Bind => "bind",
            MountKind::Cache => "cache",
            MountKind::Tmpfs => "tmpfs",
            MountKind::Secret => "secret",
            MountKind::Ssh => "ssh",
        })
    }
}

impl Frontend {
    /// The frontend built into Docker Engine 20.10, which vendors BuildKit v0.8:
    /// `docker/dockerfile` 1.2 (in moby/buildkit the `v0.8.0` and `dockerfile/1.2.0`
    /// tags differ in `frontend/dockerfile` only by a release script).
    pub const DOCKER_20_10: Frontend = Frontend::Release {
        version: Version::new(1, 2),
        labs: false,
    };

    /// What a `# syntax=` value names: `docker/dockerfile:1.4`,
    /// `docker.io/docker/dockerfile:1.7-labs`, `docker/dockerfile-upstream:master`,
    /// `docker/dockerfile:1.4.3@sha256:…`, or any other image.
    #[must_use]
    pub fn from_syntax(reference: &str) -> Frontend {
        let other = || Frontend::Other(reference.to_string());
        let (name, digest) = match reference.split_once('@') {
            Some((name, digest)) => (name, Some(digest)),
            None => (reference, None),
        };
        let (repository, tag) = match name.rsplit_once(':') {
            Some((repository, tag)) if !tag.contains('/') => (repository, Some(tag)),
            _ => (name, None),
        };
        let repository = ["docker.io/", "index.docker.io/"]
            .iter()
            .find_map(|host| repository.strip_prefix(host))
            .unwrap_or(repository);
        if !matches!(
            repository,
            "docker/dockerfile" | "docker/dockerfile-upstream"
        ) {
            return other();
        }
        let Some(tag) = tag else {
            // A digest alone pins some release we cannot tell.
            return match digest {
                Some(_) => other(),
                None => Frontend::Latest { labs: false },
            };
        };
        let (tag, labs) = match tag
            .strip_suffix("-labs")
            .or_else(|| tag.strip_suffix("-experimental"))
        {
            Some(tag) => (tag, true),
            None => (tag, matches!(tag, "labs" | "experimental")),
        };
        if matches!(tag, "latest" | "master" | "labs" | "experimental") {
            return Frontend::Latest { labs };
        }
        // `1`, `1.4`, `1.4.3`, `1.4.0-rc1`.
        let tag = tag.split_once('-').map_or(tag, |(version, _)| version);
        let mut parts = tag.split('.').map(str::parse::<u32>);
        match (parts.next(), parts.next()) {
            (Some(Ok(_)), None) => Frontend::Latest { labs },
            (Some(Ok(major)), Some(Ok(minor))) => Frontend::Release {
                version: Version::new(major, minor),
                labs,
            },
            _ => other(),
        }
    }

    /// Whether this frontend can build `feature`; `None` when unknown.
    #[must_use]
    pub fn supports(&self, feature: Feature) -> Option<bool> {
        match self {
            Frontend::Release {
                version,
                labs: false,
            } => Some(feature.since().is_some_and(|since| since <= *version)),
            Frontend::Release {
                version,
                labs: true,
            } => Some(feature.labs_since() <= *version),
            Frontend::Latest { labs } => Some(*labs || feature.since().is_some()),
            Frontend::Other(_) => None,
        }
    }
}

impl Dockerfile {
    /// The BuildKit-only features the file uses, each with its line, in file order.
    /// `ONBUILD` triggers count: they need BuildKit wherever they run.
    #[must_use]
    pub fn features(&self) -> Vec<FeatureUse> {
        let mut uses = Vec::new();
        for instruction in self.instructions() {
            let mut add = |feature| {
                uses.push(FeatureUse {
                    line: instruction.line,
                    feature,
                });
            };
            if !instruction.heredocs.is_empty() {
                add(Feature::Heredoc);
            }
            features_of(instruction.trigger().unwrap_or(instruction), &mut add);
        }
        uses.sort();
        uses.dedup();
        uses
    }

    /// The frontend that reads this file under BuildKit: the image its
    /// `# syntax=` names, else `builtin` (for Docker 20.10,
    /// [`Frontend::DOCKER_20_10`]).
    #[must_use]
    pub fn frontend(&self, builtin: Frontend) -> Frontend {
        match self.syntax() {
            Some(reference) => Frontend::from_syntax(reference),
            None => builtin,
        }
    }

    /// The [`features`](Self::features) that [`frontend(builtin)`](Self::frontend)
    /// cannot build. Empty when that frontend is an image of unknown features.
    #[must_use]
    pub fn unsupported_features(&self, builtin: Frontend) -> Vec<FeatureUse> {
        let frontend = self.frontend(builtin);
        self.features()
            .into_iter()
            .filter(|u| frontend.supports(u.feature) == Some(false))
            .collect()
    }
}

/// The automatic platform `ARG`s of BuildKit.
const PLATFORM_ARGS: [&str; 8] = [
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETARCH",
    "TARGETVARIANT",
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDARCH",
    "BUILDVARIANT",
];

fn features_of(instruction: &Instruction, add: &mut impl FnMut(Feature)) {
    match instruction.keyword.as_str() {
        "run" => {
            for flag in &instruction.flags {
                match flag.name() {
                    "mount" => {
                        let value = flag.value().unwrap_or_default();
                        let options = MountOptions::parse(value);
                        let kind = options
                            .value("type")
                            .map_or(Some(MountKind::Bind), MountKind::parse);
                        // An unknown type is a build error, not a feature.
                        if let Some(kind) = kind {
                            add(Feature::RunMount(kind));
                            if kind == MountKind::Secret && options.value("env").is_some() {
                                add(Feature::SecretEnv);
                            }
                        }
                        if value.contains('$') {
                            add(Feature::MountVariables);
                        }
                    }
                    "network" => add(Feature::RunNetwork),
                    "security" => add(Feature::RunSecurity),
                    "device" => add(Feature::RunDevice),
                    _ => {}
                }
            }
        }
        "copy" | "add" => {
            let add_instruction = instruction.keyword == "add";
            for flag in &instruction.flags {
                match flag.name() {
                    "chmod" => {
                        add(Feature::Chmod);
                        let value = flag.value().unwrap_or_default();
                        if value.contains('$') {
                            add(Feature::ChmodVariable);
                        } else if !value.chars().all(|c| ('0'..='7').contains(&c)) {
                            add(Feature::ChmodNonOctal);
                        }
                    }
                    "link" => add(Feature::Link),
                    "parents" => add(Feature::Parents),
                    "exclude" => add(Feature::Exclude),
                    "checksum" if add_instruction => add(Feature::AddChecksum),
                    "keep-git-dir" if add_instruction => add(Feature::AddGit),
                    "unpack" if add_instruction => add(Feature::AddUnpack),
                    _ => {}
                }
            }
            if add_instruction && add_has_git_source(instruction) {
                add(Feature::AddGit);
                if instruction.has_flag("checksum") {
                    add(Feature::AddGitChecksum);
                }
            }
        }
        "from" => {
            let text = format!(
                "{} {}",
                instruction.flag("platform").unwrap_or_default(),
                instruction.args
            );
            if PLATFORM_ARGS.iter().any(|name| mentions(&text, name)) {
                add(Feature::PlatformArgs);
            }
        }
        "arg" => {
            let declared = whitespace_words(&instruction.args);
            if declared.iter().any(|word| PLATFORM_ARGS.contains(word)) {
                add(Feature::PlatformArgs);
            }
        }
        _ => {}
    }
}

/// Whether an `ADD` source, as written, is a Git repository.
fn add_has_git_source(instruction: &Instruction) -> bool {
    let words = json_array(&instruction.args).unwrap_or_else(|| {
        whitespace_words(&instruction.args)
            .into_iter()
            .map(unquote)
            .collect()
    });
    match words.split_last() {
        Some((_destination, sources)) => sources.iter().any(|s| is_git_source(s)),
        None => false,
    }
}

/// `$NAME` or `${NAME…}` in `text`.
fn mentions(text: &str, name: &str) -> bool {
    text.match_indices('$').any(|(at, _)| {
        let rest = &text[at + 1..];
        let rest = rest.strip_prefix('{').unwrap_or(rest);
        rest.strip_prefix(name)
            .is_some_and(|after| !after.starts_with(|c: char| c.is_alphanumeric() || c == '_'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn features(text: &str) -> Vec<(usize, Feature)> {
        Dockerfile::parse(text)
            .expect("parses")
            .features()
            .into_iter()
            .map(|u| (u.line, u.feature))
            .collect()
    }

    #[test]
    fn each_feature_with_its_line() {
        let text = "\
# syntax=docker/dockerfile:1
FROM --platform=$BUILDPLATFORM golang AS build
ARG TARGETOS TARGETARCH
RUN --mount=type=cache,target=/root/.cache \\
    --mount=type=secret,id=npm \\
    --mount=target=/src,source=. go build
RUN --network=none --security=insecure true
COPY --chmod=755 --link a /a
COPY --chmod=u+x --parents --exclude=*.md b /b
ADD --checksum=sha256:00 https://example.com/x.tgz /x
ADD --keep-git-dir=true git@github.com:org/repo.git /repo
RUN <<EOF
echo hi
EOF
ONBUILD RUN --mount=type=ssh ssh -T git@github.com
";
        assert_eq!(
            features(text),
            [
                (2, Feature::PlatformArgs),
                (3, Feature::PlatformArgs),
                (4, Feature::RunMount(MountKind::Bind)),
                (4, Feature::RunMount(MountKind::Cache)),
                (4, Feature::RunMount(MountKind::Secret)),
                (7, Feature::RunNetwork),
                (7, Feature::RunSecurity),
                (8, Feature::Chmod),
                (8, Feature::Link),
                (9, Feature::Chmod),
                (9, Feature::ChmodNonOctal),
                (9, Feature::Parents),
                (9, Feature::Exclude),
                (10, Feature::AddChecksum),
                (11, Feature::AddGit),
                (12, Feature::Heredoc),
                (15, Feature::RunMount(MountKind::Ssh)),
            ]
        );
    }

    #[test]
    fn finer_points_of_mounts_chmod_and_git() {
        let text = "\
FROM alpine
RUN --mount=type=secret,id=$ID,env=TOKEN --mount=type=tmpfs,target=/t x
COPY --chmod=$MODE a /a
ADD --checksum=abc https://github.com/moby/buildkit.git#v0.1 /b
ADD --unpack=false https://example.com/a.tar /c
ADD https://example.com/not-git /d
RUN --mount=type=bogus x
FROM alpine:$TARGETARCHIVE
";
        assert_eq!(
            features(text),
            [
                (2, Feature::RunMount(MountKind::Tmpfs)),
                (2, Feature::RunMount(MountKind::Secret)),
                (2, Feature::MountVariables),
                (2, Feature::SecretEnv),
                (3, Feature::Chmod),
                (3, Feature::ChmodVariable),
                (4, Feature::AddChecksum),
                (4, Feature::AddGit),
                (4, Feature::AddGitChecksum),
                (5, Feature::AddUnpack),
            ]
        );
    }

    #[test]
    fn nothing_beyond_the_classic_builder() {
        let text = "FROM alpine\nARG V=1\nCOPY --chown=1:1 --from=x a /a\nRUN echo $TARGETARCH\n";
        assert!(features(text).is_empty());
    }

    #[test]
    fn docker_20_10_builds_mounts_and_chmod_but_not_heredocs_or_link() {
        let docker = Frontend::DOCKER_20_10;
        for kind in [
            MountKind::Bind,
            MountKind::Cache,
            MountKind::Tmpfs,
            MountKind::Secret,
            MountKind::Ssh,
        ] {
            assert_eq!(docker.supports(Feature::RunMount(kind)), Some(true));
        }
        assert_eq!(docker.supports(Feature::Chmod), Some(true));
        assert_eq!(docker.supports(Feature::PlatformArgs), Some(true));
        for newer in [
            Feature::Heredoc,
            Feature::Link,
            Feature::RunNetwork,
            Feature::MountVariables,
            Feature::AddGit,
            Feature::AddChecksum,
            Feature::Parents,
            Feature::Exclude,
            Feature::RunSecurity,
            Feature::RunDevice,
        ] {
            assert_eq!(docker.supports(newer), Some(false), "{newer}");
        }
    }

    #[test]
    fn syntax_directive_picks_the_frontend() {
        let release = |major, minor, labs| Frontend::Release {
            version: Version::new(major, minor),
            labs,
        };
        assert_eq!(
            Frontend::from_syntax("docker/dockerfile:1.4"),
            release(1, 4, false)
        );
        assert_eq!(
            Frontend::from_syntax("docker.io/docker/dockerfile:1.4.3@sha256:ab"),
            release(1, 4, false)
        );
        assert_eq!(
            Frontend::from_syntax("docker/dockerfile-upstream:1.7.0-rc1-labs"),
            release(1, 7, true)
        );
        assert_eq!(
            Frontend::from_syntax("docker/dockerfile:1.1-experimental"),
            release(1, 1, true)
        );
        assert_eq!(
            Frontend::from_syntax("docker/dockerfile:1"),
            Frontend::Latest { labs: false }
        );
        assert_eq!(
            Frontend::from_syntax("docker/dockerfile:1-labs"),
            Frontend::Latest { labs: true }
        );
        assert_eq!(
            Frontend::from_syntax("docker/dockerfile"),
            Frontend::Latest { labs: false }
        );
        assert_eq!(
            Frontend::from_syntax("docker/dockerfile-upstream:master-labs"),
            Frontend::Latest { labs: true }
        );
        for other in [
            "docker/dockerfile@sha256:ab",
            "example.com/my/frontend:1.4",
            "localhost:5000/docker/dockerfile",
            "docker/dockerfile:nightly",
        ] {
            assert_eq!(
                Frontend::from_syntax(other),
                Frontend::Other(other.into()),
                "{other}"
            );
        }
    }

    #[test]
    fn unsupported_features_follow_the_syntax_directive() {
        let body = "FROM alpine\nCOPY --link a /a\nRUN <<EOF\nx\nEOF\nRUN --mount=type=cache,target=/c x\n";
        let file = Dockerfile::parse(body).unwrap();
        let lines: Vec<_> = file
            .unsupported_features(Frontend::DOCKER_20_10)
            .iter()
            .map(|u| (u.line, u.feature))
            .collect();
        assert_eq!(lines, [(2, Feature::Link), (3, Feature::Heredoc)]);

        let pinned = Dockerfile::parse(&format!("# syntax=docker/dockerfile:1.4\n{body}")).unwrap();
        assert!(
            pinned
                .unsupported_features(Frontend::DOCKER_20_10)
                .is_empty()
        );
        let old = Dockerfile::parse(&format!("# syntax=docker/dockerfile:1.3\n{body}")).unwrap();
        assert_eq!(old.unsupported_features(Frontend::DOCKER_20_10).len(), 2);
        let custom = Dockerfile::parse(&format!("# syntax=example.com/fe\n{body}")).unwrap();
        assert!(
            custom
                .unsupported_features(Frontend::DOCKER_20_10)
                .is_empty()
        );
    }

    #[test]
    fn stable_and_labs_channels() {
        let labs_1_7 = Frontend::Release {
            version: Version::new(1, 7),
            labs: true,
        };
        let stable_1_7 = Frontend::Release {
            version: Version::new(1, 7),
            labs: false,
        };
        assert_eq!(labs_1_7.supports(Feature::Parents), Some(true));
        assert_eq!(stable_1_7.supports(Feature::Parents), Some(false));
        assert_eq!(labs_1_7.supports(Feature::Link), Some(true));
        assert_eq!(
            Frontend::Latest { labs: false }.supports(Feature::RunDevice),
            Some(false)
        );
        assert_eq!(
            Frontend::Latest { labs: true }.supports(Feature::RunDevice),
            Some(true)
        );
        assert_eq!(Frontend::Other("x".into()).supports(Feature::Link), None);
        assert_eq!(Feature::Heredoc.since(), Some(Version::new(1, 4)));
        assert_eq!(Feature::Heredoc.labs_since(), Version::new(1, 3));
        assert_eq!(Version::new(1, 20).to_string(), "1.20");
        assert!(Version::new(1, 4) < Version::new(1, 20));
        assert_eq!(
            Feature::RunMount(MountKind::Cache).to_string(),
            "RUN --mount=type=cache"
        );
    }
}
