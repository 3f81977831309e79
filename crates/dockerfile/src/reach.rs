//! Which files of a build context a Dockerfile can read.
//!
//! [`reach()`] turns the `COPY`/`ADD` sources of [`Dockerfile::copy_sources`] into
//! patterns over context paths, for a walk that hashes and sends only those.
//!
//! Every doubt widens the answer, never narrows it: an unresolvable variable, a
//! source that is the context root or a malformed line gives [`Reach::All`] with the
//! reason; a glob we cannot mirror exactly is cut back to its directory prefix;
//! `--exclude` is ignored. Sending too much costs time, sending too little breaks the
//! build or lets a cache hit hide a change.
//!
//! Sources (moby `builder/dockerfile/copy.go`): one with an unescaped `*`, `?` or
//! `[` is matched with Go's `filepath.Match` against every path of the context, and
//! a matched directory is copied whole; any other source is a literal path.

use std::collections::BTreeMap;

use crate::copy::{Source, clean, contains_wildcards};
use crate::glob::{Token, glob_could_extend, glob_match, parse_glob};
use crate::parse::Dockerfile;

/// What a Dockerfile can read from its build context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// Everything (a source is `.`, or something could not be resolved); `why` says
    /// which instruction/line, for diagnostics.
    All { why: String },
    /// Only paths matched by these cleaned, context-relative patterns (and everything
    /// below a matched directory).
    Sources(Sources),
}

/// The context paths that `COPY`/`ADD` sources can reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sources {
    patterns: Vec<String>,
    compiled: Vec<Pattern>,
}

/// Works out what `dockerfile` can read from its context when built with
/// `build_args` up to stage `target` (the last stage when `None`).
#[must_use]
pub fn reach(
    dockerfile: &str,
    build_args: &BTreeMap<String, String>,
    target: Option<&str>,
) -> Reach {
    match context_patterns(dockerfile, build_args, target) {
        Ok(patterns) => Reach::Sources(Sources::new(patterns)),
        Err(why) => Reach::All { why },
    }
}

impl Sources {
    fn new(mut patterns: Vec<String>) -> Sources {
        patterns.sort();
        patterns.dedup();
        // A pattern below a literal one adds nothing: `libs` already brings `libs/x`.
        // Literals with `\` are left alone, as `\` means something else in a glob.
        let literals: Vec<String> = patterns
            .iter()
            .filter(|p| !contains_wildcards(p) && !p.contains('\\'))
            .cloned()
            .collect();
        patterns.retain(|p| !literals.iter().any(|l| is_below(p, l)));
        let compiled = patterns.iter().map(|p| Pattern::new(p)).collect();
        Sources { patterns, compiled }
    }

    /// The cleaned, context-relative, `/`-separated source patterns, sorted.
    #[must_use]
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// The context-relative `/`-separated path is itself matched, or lies under a
    /// matched path.
    #[must_use]
    pub fn includes(&self, path: &str) -> bool {
        let path = clean(path);
        !path.is_empty() && self.compiled.iter().any(|p| p.includes(&path))
    }

    /// Walking into directory `dir` can find something included (dir is an ancestor
    /// of, equal to, or under a match). Used to prune the walk and to keep parent
    /// directory entries.
    #[must_use]
    pub fn may_contain(&self, dir: &str) -> bool {
        let dir = clean(dir);
        if dir.is_empty() {
            return !self.compiled.is_empty();
        }
        self.compiled.iter().any(|p| p.may_contain(&dir))
    }
}

fn context_patterns(
    dockerfile: &str,
    build_args: &BTreeMap<String, String>,
    target: Option<&str>,
) -> Result<Vec<String>, String> {
    let file = Dockerfile::parse(dockerfile).map_err(|e| e.to_string())?;
    let copies = file
        .copy_sources(build_args, target)
        .map_err(|e| e.to_string())?;
    let mut patterns = Vec::new();
    for copy in copies {
        let here = |why: &str| {
            let short = match copy.text.char_indices().nth(100) {
                Some((at, _)) => format!("{}…", &copy.text[..at]),
                None => copy.text.clone(),
            };
            let why = format!("line {}: `{short}`: {why}", copy.line);
            match copy.triggered_by {
                Some(from) => format!("{why} (ONBUILD run by the stage at line {from})"),
                None => why,
            }
        };
        for source in &copy.sources {
            match source {
                Source::Context { written, path, .. } => match context_pattern(path) {
                    Some(pattern) => patterns.push(pattern),
                    None => {
                        return Err(here(&format!(
                            "source `{written}` is the whole build context"
                        )));
                    }
                },
                Source::Unresolved { why, .. } => return Err(here(why)),
                Source::Remote { .. } | Source::Heredoc { .. } => {}
            }
        }
    }
    Ok(patterns)
}

/// The context pattern for a cleaned source; `None` when it is the whole context.
fn context_pattern(cleaned: &str) -> Option<String> {
    if cleaned.is_empty() {
        return None;
    }
    if !contains_wildcards(cleaned) {
        return Some(cleaned.to_string());
    }
    // Cut at the first segment we cannot mirror: `**` (Go reads it as `*`, but with
    // `--parents` BuildKit gives it its recursive meaning) or a malformed glob
    // (Go's Match then fails, the build fails, and guessing small is not worth it).
    let segments: Vec<&str> = cleaned.split('/').collect();
    let keep = segments
        .iter()
        .position(|s| s.contains("**") || parse_glob(s).is_none())
        .unwrap_or(segments.len());
    let mut pattern = segments[..keep].join("/");
    if keep < segments.len() && !contains_wildcards(&pattern) {
        // What is left was part of a glob, where `\x` means `x`.
        pattern = unescape(&pattern);
    }
    // A lone `*` matches every top-level entry: that is the whole context.
    if pattern.is_empty() || pattern.chars().all(|c| c == '*') {
        return None;
    }
    Some(pattern)
}

fn is_below(path: &str, dir: &str) -> bool {
    path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/'
}

fn unescape(pattern: &str) -> String {
    let mut out = String::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

/// One source pattern, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Literal(String),
    Glob(Vec<Token>),
}

impl Pattern {
    fn new(pattern: &str) -> Pattern {
        match contains_wildcards(pattern)
            .then(|| parse_glob(pattern))
            .flatten()
        {
            Some(tokens) => Pattern::Glob(tokens),
            None => Pattern::Literal(pattern.to_string()),
        }
    }

    /// `path` or one of its ancestors matches (the builder copies a matched
    /// directory whole).
    fn includes(&self, path: &str) -> bool {
        match self {
            Pattern::Literal(literal) => path == literal || is_below(path, literal),
            Pattern::Glob(tokens) => {
                let chars: Vec<char> = path.chars().collect();
                (0..chars.len())
                    .filter(|&i| chars[i] == '/')
                    .chain([chars.len()])
                    .any(|end| glob_match(tokens, &chars[..end]))
            }
        }
    }

    fn may_contain(&self, dir: &str) -> bool {
        if self.includes(dir) {
            return true;
        }
        match self {
            Pattern::Literal(literal) => is_below(literal, dir),
            Pattern::Glob(tokens) => {
                let chars: Vec<char> = dir.chars().chain(['/']).collect();
                glob_could_extend(tokens, &chars)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn sources_of(dockerfile: &str, build_args: &[(&str, &str)], target: Option<&str>) -> Sources {
        match reach(dockerfile, &args(build_args), target) {
            Reach::Sources(sources) => sources,
            Reach::All { why } => panic!("expected sources, got All: {why}"),
        }
    }

    fn sources(dockerfile: &str) -> Sources {
        sources_of(dockerfile, &[], None)
    }

    fn patterns(dockerfile: &str) -> Vec<String> {
        sources(dockerfile).patterns().to_vec()
    }

    fn whole_context(dockerfile: &str) -> String {
        whole_context_with(dockerfile, &[], None)
    }

    fn whole_context_with(
        dockerfile: &str,
        build_args: &[(&str, &str)],
        target: Option<&str>,
    ) -> String {
        match reach(dockerfile, &args(build_args), target) {
            Reach::All { why } => why,
            Reach::Sources(sources) => panic!("expected All, got {:?}", sources.patterns()),
        }
    }

    #[test]
    fn realistic_monorepo_service_reaches_only_its_own_files() {
        let dockerfile = "\
# syntax=docker/dockerfile:1
FROM rust:1.80 AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY libs/common /src/libs/common
COPY services/payments/ /src/
RUN cargo build --release

FROM debian:bookworm-slim
COPY --from=build /src/target/release/payments /usr/local/bin/
CMD [\"payments\"]
";
        let s = sources(dockerfile);
        assert_eq!(
            s.patterns(),
            [
                "Cargo.lock",
                "Cargo.toml",
                "libs/common",
                "services/payments"
            ]
        );
        assert!(s.includes("services/payments/src/main.rs"));
        assert!(s.includes("libs/common"));
        assert!(s.includes("Cargo.toml"));
        assert!(!s.includes("services/orders/src/main.rs"));
        assert!(!s.includes("libs/commonx/lib.rs"));
        assert!(!s.includes("libs"));
        assert!(!s.includes("README.md"));
        assert!(s.may_contain(""));
        assert!(s.may_contain("libs"));
        assert!(s.may_contain("services"));
        assert!(s.may_contain("services/payments/src"));
        assert!(!s.may_contain("services/orders"));
        assert!(!s.may_contain("docs"));
    }

    #[test]
    fn copy_from_another_stage_or_image_is_not_the_context() {
        let dockerfile = "\
FROM golang:1.22 AS build
COPY go.mod go.sum /src/
FROM alpine
ARG STAGE=build
COPY --from=build /out/app /app
COPY --from=nginx:1.27 /etc/nginx/nginx.conf /etc/nginx/
COPY --from=0 /src/go.mod /tmp/
COPY --chown=1:1 --from=${STAGE} /out/x /x
COPY config.yaml /etc/app/
";
        assert_eq!(patterns(dockerfile), ["config.yaml", "go.mod", "go.sum"]);
    }

    #[test]
    fn every_stage_counts_without_a_target() {
        let dockerfile = "\
FROM node:20 AS web
COPY web/ /web/
FROM golang:1.22 AS api
COPY api/ /api/
FROM alpine AS test
COPY tests/ /tests/
";
        assert_eq!(patterns(dockerfile), ["api", "tests", "web"]);
    }

    #[test]
    fn a_target_counts_every_stage_up_to_it_in_file_order() {
        // The classic builder runs stages[..=target]: `web` runs although `api`
        // does not depend on it; `test` does not run.
        let dockerfile = "\
FROM node:20 AS web
COPY web/ /web/
FROM golang:1.22 AS API
COPY api/ /api/
FROM alpine AS test
COPY tests/ /tests/
";
        let s = sources_of(dockerfile, &[], Some("api"));
        assert_eq!(s.patterns(), ["api", "web"]);
        let s = sources_of(dockerfile, &[], Some("Web"));
        assert_eq!(s.patterns(), ["web"]);
        let why = whole_context_with(dockerfile, &[], Some("lint"));
        assert!(why.contains("`lint`"), "{why}");
    }

    #[test]
    fn heredoc_bodies_are_not_instructions_and_heredoc_sources_not_files() {
        let dockerfile = "\
FROM alpine
RUN <<EOF
COPY . /everything
echo hi
EOF
COPY <<EOF /etc/config
FROM scratch
ADD . /
EOF
COPY <<-\"EOT\" app.conf /etc/
\tCOPY . /
\tEOT
RUN <<A cat - && sh <<'B'
COPY . /a
A
COPY . /b
B
ADD <<EOF1 <<EOF2 /dst/
ADD . /c
EOF1
ADD . /d
EOF2
COPY real.txt /real
";
        assert_eq!(patterns(dockerfile), ["app.conf", "real.txt"]);
    }

    #[test]
    fn an_unterminated_heredoc_reaches_everything() {
        let why = whole_context("FROM alpine\nRUN <<EOF\necho hi\n");
        assert!(why.contains("line 2") && why.contains("EOF"), "{why}");
    }

    #[test]
    fn json_form_keeps_spaces_and_flags() {
        let dockerfile = r#"
FROM alpine
COPY ["my dir/a b.txt", "./docs/", "/dst/"]
COPY --chown=1:1 [ "x y" , "/z" ]
ADD ["<<EOF", "/literal/"]
"#;
        assert_eq!(
            patterns(dockerfile),
            ["<<EOF", "docs", "my dir/a b.txt", "x y"]
        );
    }

    #[test]
    fn escape_directive_switches_continuation_to_backtick() {
        let dockerfile = "\
# escape=`
FROM alpine
COPY services/a `
     libs/x /app/
COPY back\\slash /b/
";
        assert_eq!(
            patterns(dockerfile),
            ["back\\slash", "libs/x", "services/a"]
        );
    }

    #[test]
    fn directives_after_a_comment_are_plain_comments() {
        let dockerfile = "\
# a comment first
# escape=`
FROM alpine
COPY a `
  b /c/
";
        // `\` is still the escape: the backtick line is complete, `b /c/` is an
        // unknown instruction.
        assert_eq!(patterns(dockerfile), ["a"]);
    }

    #[test]
    fn syntax_and_escape_directives_in_any_order() {
        let dockerfile =
            "# syntax=docker/dockerfile:1\n# ESCAPE = `\nFROM alpine\nCOPY a `\n b /c/\n";
        assert_eq!(patterns(dockerfile), ["a", "b"]);
        let why = whole_context("# escape=`\n# escape=\\\nFROM alpine\n");
        assert!(why.contains("only one"), "{why}");
    }

    #[test]
    fn continuations_skip_comment_and_blank_lines() {
        let dockerfile = "\
FROM alpine
# COPY . /ignored
   # indented comment COPY . /
COPY \\
    # a comment inside the continuation
    libs/one \\

    libs/two \\
    /dst/
RUN echo done \\\\
COPY libs/three /x
";
        // `\\` at the end is an escaped escape, not a continuation.
        assert_eq!(patterns(dockerfile), ["libs/one", "libs/three", "libs/two"]);
    }

    #[test]
    fn crlf_and_byte_order_mark() {
        let dockerfile = "\u{feff}FROM alpine\r\nCOPY a \\\r\n b /c/\r\n";
        assert_eq!(patterns(dockerfile), ["a", "b"]);
    }

    #[test]
    fn flags_other_than_from_are_ignored_and_exclude_widens() {
        let dockerfile = "\
FROM alpine
COPY --chown=app:app --chmod=755 --link --parents --exclude=*.md src/ /app/
ADD --checksum=sha256:0123 --keep-git-dir=true vendor.tar /v/
COPY --exclude=node_modules --link=false web /web
COPY -- --weird /w/
";
        assert_eq!(
            patterns(dockerfile),
            ["--weird", "src", "vendor.tar", "web"]
        );
    }

    #[test]
    fn add_of_a_url_or_git_remote_is_not_the_context() {
        let dockerfile = "\
FROM alpine
ADD https://example.com/a.tgz /a
ADD http://example.com/b /b
ADD git@github.com:org/repo.git /repo
ADD git://example.com/repo.git /r
ADD https://github.com/org/repo.git#v1.0 /r2
ADD local.tgz https://example.com/c.tgz /dst/
";
        assert_eq!(patterns(dockerfile), ["local.tgz"]);
    }

    #[test]
    fn onbuild_copy_runs_in_child_builds_not_this_one() {
        let dockerfile = "\
FROM alpine
ONBUILD COPY . /app
ONBUILD ADD src /src
COPY a /a
";
        assert_eq!(patterns(dockerfile), ["a"]);
    }

    #[test]
    fn onbuild_runs_in_a_later_stage_built_from_this_one() {
        let dockerfile = "\
FROM alpine AS base
ENV PART=child
ONBUILD COPY ${PART}-src /app
FROM base
COPY x /x
";
        assert_eq!(patterns(dockerfile), ["child-src", "x"]);
        let why = whole_context("FROM alpine AS base\nONBUILD COPY . /app\nFROM base\n");
        assert!(why.contains("ONBUILD"), "{why}");
    }

    #[test]
    fn arg_default_drives_the_path_and_a_build_arg_overrides_it() {
        let dockerfile = "\
FROM alpine
ARG SERVICE=orders
COPY services/${SERVICE} .
";
        assert_eq!(patterns(dockerfile), ["services/orders"]);
        let s = sources_of(dockerfile, &[("SERVICE", "payments")], None);
        assert_eq!(s.patterns(), ["services/payments"]);
        assert!(s.includes("services/payments/main.go"));
        assert!(!s.includes("services/orders/main.go"));
    }

    #[test]
    fn global_arg_needs_redeclaring_inside_the_stage() {
        let redeclared = "\
ARG SERVICE=orders
FROM alpine
ARG SERVICE
COPY services/$SERVICE/ /app/
";
        assert_eq!(patterns(redeclared), ["services/orders"]);
        let s = sources_of(redeclared, &[("SERVICE", "billing")], None);
        assert_eq!(s.patterns(), ["services/billing"]);

        let not_redeclared = "ARG SERVICE=orders\nFROM alpine\nCOPY services/$SERVICE/ /app/\n";
        let why = whole_context(not_redeclared);
        assert!(why.contains("line 3") && why.contains("SERVICE"), "{why}");
    }

    #[test]
    fn global_args_resolve_from_and_each_other() {
        let dockerfile = "\
ARG ROOT=services
ARG SVC=${ROOT}/api
ARG BASE=builder
FROM alpine AS builder
ENV OUT=dist
FROM ${BASE}
ARG SVC
COPY $SVC/$OUT /app/
";
        assert_eq!(patterns(dockerfile), ["services/api/dist"]);
    }

    #[test]
    fn default_and_alternative_substitutions() {
        let dockerfile = "\
FROM alpine
ARG UNSET
ARG EMPTY=
ARG SET=x
COPY ${UNSET:-fallback} ${SET:+alt} ${UNSET:+never}z ${EMPTY-kept}e ${EMPTY:-dflt} /d/
COPY ${SET:-$NOT_NEEDED} /e/
";
        assert_eq!(
            patterns(dockerfile),
            ["alt", "dflt", "e", "fallback", "x", "z"]
        );
        let why = whole_context("FROM alpine\nARG UNSET\nCOPY ${UNSET:-$NOWHERE} /d/\n");
        assert!(why.contains("NOWHERE"), "{why}");
    }

    #[test]
    fn env_resolves_shadows_arg_and_is_inherited_by_child_stages() {
        let dockerfile = "\
FROM alpine AS base
ARG X=from-arg
ENV X=from-env APP_DIR=apps/web
ENV LEGACY some/dir
COPY $X $APP_DIR/package.json $LEGACY /d/
FROM base
COPY ${APP_DIR}/src /src
";
        assert_eq!(
            patterns(dockerfile),
            [
                "apps/web/package.json",
                "apps/web/src",
                "from-env",
                "some/dir"
            ]
        );
    }

    #[test]
    fn an_unresolvable_variable_reaches_everything() {
        let why = whole_context("FROM golang\nCOPY ${GOPATH}/src/app /app\n");
        assert!(why.contains("line 2") && why.contains("GOPATH"), "{why}");
        let why = whole_context("FROM alpine\nENV D=$HOME/x\nCOPY $D /d\n");
        assert!(why.contains("HOME"), "{why}");
        let why = whole_context("FROM alpine\nARG X=a\nCOPY ${X#a} /d\n");
        assert!(why.contains("unsupported"), "{why}");
    }

    #[test]
    fn quotes_and_escapes_in_sources() {
        let dockerfile = "\
FROM alpine
ARG SVC=api
COPY \"services/$SVC\" 'lit$X' \\$HOME /d/
";
        assert_eq!(patterns(dockerfile), ["$HOME", "lit$X", "services/api"]);
    }

    #[test]
    fn sources_are_cleaned_within_the_context() {
        let dockerfile = "\
FROM alpine
COPY /abs/path ./rel/path ../../escape a/./b/../c dir/ dir2/. /dst/
";
        assert_eq!(
            patterns(dockerfile),
            ["a/c", "abs/path", "dir", "dir2", "escape", "rel/path"]
        );
    }

    #[test]
    fn a_source_that_is_the_context_root_reaches_everything() {
        for source in [".", "./", "/", "..", "a/..", "../.", "*", "**", "**/*.go"] {
            let why = whole_context(&format!("FROM alpine\nCOPY {source} /app/\n"));
            assert!(why.contains("line 2"), "{source}: {why}");
        }
    }

    #[test]
    fn star_and_question_mark_do_not_cross_slashes() {
        let s = sources("FROM alpine\nCOPY services/*/package.json *.txt file?.cfg /x/\n");
        assert!(s.includes("services/a/package.json"));
        assert!(!s.includes("services/a/b/package.json"));
        assert!(!s.includes("services/package.json"));
        assert!(s.includes("a.txt"));
        assert!(!s.includes("dir/a.txt"));
        assert!(s.includes("file1.cfg"));
        assert!(!s.includes("file10.cfg"));
        assert!(!s.includes("file/.cfg"));
        assert!(s.may_contain("services"));
        assert!(s.may_contain("services/a"));
        assert!(!s.may_contain("services/a/b"));
        assert!(!s.may_contain("dir"));
    }

    #[test]
    fn character_classes_follow_go() {
        let s = sources("FROM alpine\nCOPY conf[0-9].yml [^.]*.lock file[!a].txt /x/\n");
        assert!(s.includes("conf3.yml"));
        assert!(!s.includes("confa.yml"));
        assert!(s.includes("yarn.lock"));
        assert!(!s.includes(".lock"));
        // Go negates with `^` only: `[!a]` is the set {!, a}.
        assert!(s.includes("file!.txt"));
        assert!(s.includes("filea.txt"));
        assert!(!s.includes("fileb.txt"));
    }

    #[test]
    fn backslash_escapes_a_wildcard_in_a_glob() {
        // The Dockerfile lexer turns `\\` into `\`, which filepath.Match then reads
        // as an escape.
        let s = sources("FROM alpine\nCOPY weird\\\\*name* /x/\n");
        assert_eq!(s.patterns(), ["weird\\*name*"]);
        assert!(s.includes("weird*name1"));
        assert!(!s.includes("weirdXname1"));
    }

    #[test]
    fn a_matched_directory_brings_everything_below_it() {
        let s = sources("FROM alpine\nCOPY lib? /l/\n");
        assert!(s.includes("lib1"));
        assert!(s.includes("lib1/deep/file.rs"));
        assert!(s.may_contain("lib1/deep"));
        assert!(!s.includes("lib12/file.rs"));
        assert!(!s.may_contain("lib12"));
    }

    #[test]
    fn globs_we_cannot_mirror_are_cut_to_their_directory() {
        let s = sources("FROM alpine\nCOPY --parents src/**/*.go conf/[abc /app/\n");
        assert_eq!(s.patterns(), ["conf", "src"]);
        assert!(s.includes("src/a/b/c.go"));
        assert!(s.includes("conf/x"));
    }

    #[test]
    fn nested_literals_and_path_normalisation() {
        let s = sources("FROM alpine\nCOPY libs/common/src /x\n");
        assert!(s.may_contain("libs"));
        assert!(s.may_contain("libs/common"));
        assert!(s.may_contain("./libs/common/"));
        assert!(!s.may_contain("libs/other"));
        assert!(!s.may_contain("libs/commonx"));
        assert!(!s.includes("libs/common"));
        assert!(s.includes("libs/common/src"));
        assert!(s.includes("./libs/common/src/"));
        assert!(s.includes("libs/common/src/a/b.rs"));
        assert!(s.may_contain("libs/common/src/a"));
    }

    #[test]
    fn redundant_patterns_are_dropped() {
        let s = sources("FROM alpine\nCOPY libs /a\nCOPY libs/common libs/*/x libsx /b/\n");
        assert_eq!(s.patterns(), ["libs", "libsx"]);
    }

    #[test]
    fn nothing_copied_means_nothing_reached() {
        let s = sources("FROM alpine\nRUN echo hi\nCOPY --from=alpine /etc/hosts /h\n");
        assert!(s.patterns().is_empty());
        assert!(!s.includes("anything"));
        assert!(!s.may_contain(""));
    }

    #[test]
    fn heredocs_under_onbuild_and_not_in_json_form() {
        let dockerfile = "\
FROM alpine
ONBUILD RUN <<EOF
COPY . /
EOF
RUN [\"sh\", \"-c\", \"cat <<EOF\"]
COPY b /b
";
        assert_eq!(patterns(dockerfile), ["b"]);
    }

    #[test]
    fn an_env_that_cannot_be_resolved_shadows_a_known_arg() {
        let why = whole_context("FROM alpine\nARG D=ok\nENV D=$HOME\nCOPY $D /d\n");
        assert!(why.contains("ENV D (line 3)"), "{why}");
    }
}
