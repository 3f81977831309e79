//! Which `COPY`/`ADD` instructions read the build context, and their sources after
//! `ARG`/`ENV` expansion: the evaluation both [`reach`](crate::reach()) and
//! [`Dockerfile::copy_sources`] rest on.
//!
//! - `--target` runs every stage up to and including the target, in file order, not
//!   only the stages it depends on (moby `builder/dockerfile/builder.go`:
//!   `stages = stages[:targetIx+1]`). Those stages' `COPY`s all read the context, so
//!   all of them count; later stages do not.
//! - `ONBUILD` instructions run where the stage is used as a base: in a later stage
//!   of this Dockerfile (`FROM <stage>`) they count, otherwise they don't.
//! - `COPY --from` reads another stage or an image, except when its value is empty
//!   or cannot be resolved: then it might mean the context, so it counts.
//! - An `ADD` source that is a URL or Git remote is fetched, not read from the
//!   context; a heredoc source (`COPY <<EOF /dst`) is no file at all.

use std::collections::BTreeMap;

use crate::expand::{Scope, Val};
use crate::parse::{Dockerfile, Instruction, Stage, heredoc_word, json_array, whitespace_words};

/// One `COPY` or `ADD` that reads the build context, its sources expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CopySources {
    /// 1-based line of the instruction (of the `ONBUILD`, for a trigger).
    pub line: usize,
    /// 1-based last line, continuations and heredoc bodies included.
    pub end_line: usize,
    /// `copy` or `add`.
    pub keyword: String,
    /// The instruction as written, continuation lines joined.
    pub text: String,
    /// Index of the stage whose build runs it.
    pub stage: usize,
    /// For an `ONBUILD` trigger, the line of the `FROM` whose stage runs it.
    pub triggered_by: Option<usize>,
    /// The sources, in order (the destination is not one).
    pub sources: Vec<Source>,
}

/// One source of a `COPY`/`ADD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A path in the build context: expanded, then cleaned the way the builder
    /// resolves it (`/`-separated, relative to the context root, `..` cannot climb
    /// out; `""` is the root itself). With `glob`, it holds an unescaped `*`, `?` or
    /// `[` and the builder matches it with Go's `filepath.Match` against every
    /// context path.
    Context {
        written: String,
        path: String,
        glob: bool,
    },
    /// An `ADD` source fetched from a URL or a Git remote.
    Remote { written: String, url: String },
    /// A heredoc (`COPY <<EOF /dst/`): its body, not a file.
    Heredoc { name: String },
    /// A variable in it cannot be resolved here (it may come from the base image)
    /// or the word is malformed; `why` says which.
    Unresolved { written: String, why: String },
}

/// The `--target` names no stage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("target stage `{0}` is not defined")]
pub struct UnknownTarget(pub String);

impl Dockerfile {
    /// Every `COPY`/`ADD` that reads the build context when built with
    /// `build_args` up to stage `target` (the last stage when `None`), in the order
    /// the builder runs them, with its sources after `ARG`/`ENV` expansion. For
    /// checking that the sources exist before building.
    pub fn copy_sources(
        &self,
        build_args: &BTreeMap<String, String>,
        target: Option<&str>,
    ) -> Result<Vec<CopySources>, UnknownTarget> {
        let escape = self.escape;
        let mut global = Scope::new(build_args);
        for instruction in self.global.iter().filter(|i| i.keyword == "arg") {
            global.declare_args(instruction, escape, None);
        }

        let count = match target {
            None => self.stages.len(),
            Some(target) => match self.stage(target) {
                Some(stage) => stage.index + 1,
                None => return Err(UnknownTarget(target.to_string())),
            },
        };

        let mut built: Vec<Built> = Vec::new();
        let mut out = Vec::new();
        for stage in &self.stages[..count] {
            let (env, triggers) = inherited(stage, &built, &global, escape);
            let mut run = Run {
                scope: Scope::with_env(build_args, env),
                escape,
                global: &global,
                stage,
                triggers: Vec::new(),
                out: &mut out,
            };
            for trigger in &triggers {
                run.dispatch(trigger, Some(stage.from.line));
            }
            for instruction in &stage.body {
                run.dispatch(instruction, None);
            }
            let Run {
                scope, triggers, ..
            } = run;
            built.push(Built {
                name: stage.name(),
                env: scope.env,
                triggers,
            });
        }
        Ok(out)
    }
}

/// What a later stage inherits from a built one.
struct Built {
    name: Option<String>,
    env: BTreeMap<String, Val>,
    triggers: Vec<Instruction>,
}

/// The `ENV` and `ONBUILD` triggers a stage starts with: those of the earlier stage
/// it is built `FROM`, if any.
fn inherited(
    stage: &Stage,
    built: &[Built],
    global: &Scope,
    escape: char,
) -> (BTreeMap<String, Val>, Vec<Instruction>) {
    match global.expand(stage.base(), escape) {
        Ok(image) => {
            let image = image.to_ascii_lowercase();
            match built
                .iter()
                .rev()
                .find(|b| b.name.as_deref() == Some(image.as_str()))
            {
                Some(base) => (base.env.clone(), base.triggers.clone()),
                None => (BTreeMap::new(), Vec::new()),
            }
        }
        // Could be any earlier stage: run every ONBUILD seen so far.
        Err(_) => (
            BTreeMap::new(),
            built
                .iter()
                .flat_map(|b| b.triggers.iter().cloned())
                .collect(),
        ),
    }
}

/// The evaluation of one stage.
struct Run<'a, 'b> {
    scope: Scope<'a>,
    escape: char,
    global: &'b Scope<'a>,
    stage: &'b Stage,
    /// The stage's own `ONBUILD` triggers, for stages built from it.
    triggers: Vec<Instruction>,
    out: &'b mut Vec<CopySources>,
}

impl Run<'_, '_> {
    fn dispatch(&mut self, instruction: &Instruction, triggered_by: Option<usize>) {
        match instruction.keyword.as_str() {
            "arg" => self
                .scope
                .declare_args(instruction, self.escape, Some(self.global)),
            "env" => self.scope.set_env(instruction, self.escape),
            "copy" | "add" => {
                if let Some(copy) = self.context_copy(instruction, triggered_by) {
                    self.out.push(copy);
                }
            }
            "onbuild" => self
                .triggers
                .extend(instruction.trigger.as_deref().cloned()),
            _ => {}
        }
    }

    /// The sources of one `COPY`/`ADD`, unless it reads another stage or an image.
    fn context_copy(
        &self,
        instruction: &Instruction,
        triggered_by: Option<usize>,
    ) -> Option<CopySources> {
        let escape = self.escape;
        if let Some(from) = instruction.flag("from") {
            // Another stage or an image. An empty or unresolvable name might mean the
            // context, so those keep their sources.
            if self
                .scope
                .expand(from, escape)
                .is_ok_and(|from| !from.is_empty())
            {
                return None;
            }
        }
        let (words, json) = match json_array(&instruction.args) {
            Some(words) => (words, true),
            None => (
                whitespace_words(&instruction.args)
                    .into_iter()
                    .map(String::from)
                    .collect(),
                false,
            ),
        };
        let sources = match words.split_last() {
            Some((_destination, sources)) => sources
                .iter()
                .map(|written| self.source(instruction, written, json))
                .collect(),
            None => Vec::new(),
        };
        Some(CopySources {
            line: instruction.line,
            end_line: instruction.end_line,
            keyword: instruction.keyword.clone(),
            text: instruction.text.clone(),
            stage: self.stage.index,
            triggered_by,
            sources,
        })
    }

    fn source(&self, instruction: &Instruction, written: &str, json: bool) -> Source {
        if !json && let Some(heredoc) = heredoc_word(written) {
            return Source::Heredoc {
                name: heredoc.name().to_string(),
            };
        }
        let written = written.to_string();
        match self.scope.expand(&written, self.escape) {
            Err(why) => Source::Unresolved { written, why },
            Ok(url) if instruction.keyword == "add" && is_remote(&url) => {
                Source::Remote { written, url }
            }
            Ok(expanded) => Source::Context {
                written,
                glob: contains_wildcards(&expanded),
                path: clean(&expanded),
            },
        }
    }
}

/// `ADD` sources the builder fetches instead of reading the context.
fn is_remote(source: &str) -> bool {
    ["http://", "https://", "git://", "ssh://", "git@"]
        .iter()
        .any(|scheme| source.starts_with(scheme))
}

/// The builder's test for a glob source (moby `containsWildcards`): an unescaped
/// `*`, `?` or `[`.
pub(crate) fn contains_wildcards(source: &str) -> bool {
    let mut chars = source.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '*' | '?' | '[' => return true,
            _ => {}
        }
    }
    false
}

/// Cleans a path rooted at the context, as Go's `filepath.Clean("/" + p)` would,
/// without the leading `/`: `..` cannot climb out, `.` and empty segments go.
pub(crate) fn clean(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            segment => segments.push(segment),
        }
    }
    segments.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copies(text: &str, build_args: &[(&str, &str)], target: Option<&str>) -> Vec<CopySources> {
        let build_args = build_args
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Dockerfile::parse(text)
            .expect("parses")
            .copy_sources(&build_args, target)
            .expect("target exists")
    }

    fn context(written: &str, path: &str, glob: bool) -> Source {
        Source::Context {
            written: written.into(),
            path: path.into(),
            glob,
        }
    }

    #[test]
    fn lines_and_expanded_sources_of_each_copy() {
        let text = "\
FROM golang:1.22 AS build
ARG SVC=api
COPY go.mod go.sum ./
COPY services/$SVC \\
     libs/*.go /src/
FROM alpine
COPY --from=build /out/app /app
ADD https://example.com/a.tgz ./etc/../conf/ /x/
COPY <<EOF /etc/motd
hi
EOF
";
        let found = copies(text, &[("SVC", "web")], None);
        assert_eq!(found.len(), 4);
        assert_eq!(
            (found[0].line, found[0].end_line, found[0].stage),
            (3, 3, 0)
        );
        assert_eq!(found[0].keyword, "copy");
        assert_eq!(
            found[0].sources,
            [
                context("go.mod", "go.mod", false),
                context("go.sum", "go.sum", false)
            ]
        );
        assert_eq!((found[1].line, found[1].end_line), (4, 5));
        assert_eq!(
            found[1].sources,
            [
                context("services/$SVC", "services/web", false),
                context("libs/*.go", "libs/*.go", true)
            ]
        );
        assert_eq!(found[1].text, "COPY services/$SVC      libs/*.go /src/");
        assert_eq!((found[2].line, found[2].stage), (8, 1));
        assert_eq!(found[2].keyword, "add");
        assert_eq!(
            found[2].sources,
            [
                Source::Remote {
                    written: "https://example.com/a.tgz".into(),
                    url: "https://example.com/a.tgz".into()
                },
                context("./etc/../conf/", "conf", false)
            ]
        );
        assert_eq!((found[3].line, found[3].end_line), (9, 11));
        assert_eq!(found[3].sources, [Source::Heredoc { name: "EOF".into() }]);
    }

    #[test]
    fn stops_at_the_target_and_reports_an_unknown_one() {
        let text = "FROM a AS one\nCOPY x /\nFROM b AS two\nCOPY y /\n";
        let found = copies(text, &[], Some("ONE"));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].sources, [context("x", "x", false)]);
        let file = Dockerfile::parse(text).unwrap();
        let err = file
            .copy_sources(&BTreeMap::new(), Some("three"))
            .unwrap_err();
        assert_eq!(err.to_string(), "target stage `three` is not defined");
    }

    #[test]
    fn unresolved_sources_say_why_and_the_root_is_an_empty_path() {
        let found = copies("FROM a\nCOPY $NOPE . /d/\n", &[], None);
        let Source::Unresolved { written, why } = &found[0].sources[0] else {
            panic!("{:?}", found[0].sources);
        };
        assert_eq!(written, "$NOPE");
        assert!(why.contains("NOPE"), "{why}");
        assert_eq!(found[0].sources[1], context(".", "", false));
    }

    #[test]
    fn onbuild_triggers_name_the_stage_that_runs_them() {
        let text = "FROM a AS base\nONBUILD COPY src /src\nFROM base\nCOPY x /x\n";
        let found = copies(text, &[], None);
        assert_eq!(found.len(), 2);
        assert_eq!((found[0].line, found[0].stage), (2, 1));
        assert_eq!(found[0].triggered_by, Some(3));
        assert_eq!(found[0].text, "COPY src /src");
        assert_eq!(found[1].triggered_by, None);
    }
}
