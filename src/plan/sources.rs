//! `COPY`/`ADD` sources that are not in the build context: found before
//! building, so a Dockerfile written for another context (`COPY
//! src/cart/…` with the context `src/cart`) is `WILL FAIL` in the plan and
//! fails before its build in a run, naming the Dockerfile line and the
//! context that would have the file.
//!
//! A source is there when it exists in the context and the ignore file in
//! force does not exclude it; a glob needs one match among what the build
//! sees. Only the stages a build needs are checked: the target and what it
//! is built `FROM` or copies `--from`, as BuildKit builds them (the classic
//! builder builds every stage up to the target, so it may still fail on an
//! unused stage; the Dockerfile's own error then says so).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use dockerfile::{Dockerfile, Source};
use serde::Serialize;

use crate::plan::context::Listing;

/// One source the build will not find.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct MissingSource {
    /// The Dockerfile, relative to the repo root.
    pub(crate) dockerfile: String,
    pub(crate) line: usize,
    /// `COPY` or `ADD`.
    pub(crate) keyword: String,
    /// The source as written.
    pub(crate) source: String,
    /// It exists, but the ignore file excludes it.
    pub(crate) ignored: bool,
    /// A context (relative to the repo root) that holds it, when one of
    /// the folders above the current context does.
    pub(crate) context: Option<String>,
}

impl MissingSource {
    pub(crate) fn message(&self) -> String {
        let why = match self.ignored {
            true => "is excluded by the ignore file of the build context".to_string(),
            false => "does not exist in the build context".to_string(),
        };
        let fix = match &self.context {
            Some(context) => {
                format!("; it is in `{context}`: set `context: {context}` for this service")
            }
            None => "; add it, or fix the Dockerfile".to_string(),
        };
        format!(
            "{}:{}: {} source `{}` {why}{fix}",
            self.dockerfile, self.line, self.keyword, self.source
        )
    }
}

/// The indices of the stages a build of `target` (the last stage when
/// `None`) needs: the target, and recursively every stage it is built
/// `FROM` or copies or mounts `--from`.
fn needed_stages(dockerfile: &Dockerfile, target: Option<&str>) -> BTreeSet<usize> {
    let stages = dockerfile.stages();
    let find = |name: &str| -> Option<usize> {
        let lower = name.to_ascii_lowercase();
        stages
            .iter()
            .find(|s| s.name().as_deref() == Some(lower.as_str()))
            .map(|s| s.index())
            .or_else(|| name.parse::<usize>().ok().filter(|i| *i < stages.len()))
    };
    let start = match target {
        Some(t) => find(t),
        None => stages.len().checked_sub(1),
    };
    let mut needed = BTreeSet::new();
    let mut todo: Vec<usize> = start.into_iter().collect();
    while let Some(i) = todo.pop() {
        if !needed.insert(i) {
            continue;
        }
        let stage = &stages[i];
        if let Some(j) = find(stage.base()).filter(|j| *j < i) {
            todo.push(j);
        }
        for instruction in stage.body() {
            let run = instruction.trigger().unwrap_or(instruction);
            if let Some(from) = run.flag("from")
                && let Some(j) = find(from)
            {
                todo.push(j);
            }
            // `RUN --mount=…,from=stage`.
            for flag in run.flags().iter().filter(|f| f.name() == "mount") {
                for option in flag.value().unwrap_or("").split(',') {
                    if let Some(from) = option.strip_prefix("from=")
                        && let Some(j) = find(from)
                    {
                        todo.push(j);
                    }
                }
            }
        }
    }
    needed
}

/// The sources of `dockerfile` (at `dockerfile_path`, relative to `root`)
/// that a build with `build_args` and `target` will not find in `listing`,
/// the context at `context` (relative to `root`).
pub(crate) fn missing(
    root: &Path,
    dockerfile: &Dockerfile,
    dockerfile_path: &str,
    context: &str,
    listing: &Listing,
    build_args: &BTreeMap<String, String>,
    target: Option<&str>,
) -> Vec<MissingSource> {
    let Ok(copies) = dockerfile.copy_sources(build_args, target) else {
        return Vec::new(); // an unknown target: the builder says so
    };
    let needed = needed_stages(dockerfile, target);
    let context_dir = root.join(context);
    let mut missing = Vec::new();
    for copy in copies.iter().filter(|c| needed.contains(&c.stage)) {
        for source in &copy.sources {
            let Source::Context {
                written,
                path,
                glob,
            } = source
            else {
                continue;
            };
            if path.is_empty() {
                continue; // the context itself
            }
            let (exists, ignored) = match glob {
                true => {
                    let seen = listing
                        .entries
                        .iter()
                        .any(|e| dockerfile::matches_go_glob(path, &e.path));
                    (seen, false)
                }
                false => {
                    let exists = std::fs::symlink_metadata(context_dir.join(path)).is_ok();
                    (exists && !listing.ignore.excludes(path), exists)
                }
            };
            if exists {
                continue;
            }
            missing.push(MissingSource {
                dockerfile: dockerfile_path.to_string(),
                line: copy.line,
                keyword: copy.keyword.to_ascii_uppercase(),
                source: written.clone(),
                ignored,
                context: match (glob, ignored) {
                    (false, false) => wider_context(root, context, path),
                    _ => None,
                },
            });
        }
    }
    missing
}

/// The nearest folder above `context` (up to the repo root, `.`) in which
/// `path` exists.
fn wider_context(root: &Path, context: &str, path: &str) -> Option<String> {
    let mut current = Path::new(context);
    while let Some(parent) = current.parent() {
        let candidate = match parent.as_os_str().is_empty() {
            true => ".".to_string(),
            false => parent.to_string_lossy().into_owned(),
        };
        if root.join(&candidate).join(path).exists() {
            return Some(candidate);
        }
        if candidate == "." {
            break;
        }
        current = parent;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn listing(root: &Path, context: &str, dockerfile: &str) -> Listing {
        Listing::read(
            &root.join(context),
            &root.join(dockerfile),
            &root.join(".pipeline"),
            None,
        )
        .unwrap()
    }

    #[test]
    fn a_source_outside_the_context_is_named_with_the_context_that_has_it() {
        let root = std::env::temp_dir().join(format!("pipeline-sources-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        for (path, text) in [
            (
                "src/cart/Dockerfile",
                "FROM busybox AS unused\nCOPY nowhere.txt /\n\nFROM busybox\nCOPY ./src/cart/app.txt /app/\nCOPY pb/ /pb/\nCOPY *.md /docs/\nCOPY local.txt secret.env /\n",
            ),
            ("src/cart/app.txt", "app"),
            ("src/cart/local.txt", "x"),
            ("src/cart/secret.env", "x"),
            ("src/cart/.dockerignore", "secret.env\n"),
            ("pb/demo.proto", "syntax"),
        ] {
            let p = root.join(path);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
        }
        let text = fs::read_to_string(root.join("src/cart/Dockerfile")).unwrap();
        let dockerfile = Dockerfile::parse(&text).unwrap();
        let found = missing(
            &root,
            &dockerfile,
            "src/cart/Dockerfile",
            "src/cart",
            &listing(&root, "src/cart", "src/cart/Dockerfile"),
            &BTreeMap::new(),
            None,
        );
        let messages: Vec<String> = found.iter().map(MissingSource::message).collect();
        assert_eq!(
            messages,
            [
                "src/cart/Dockerfile:5: COPY source `./src/cart/app.txt` does not exist in the build context; it is in `.`: set `context: .` for this service",
                "src/cart/Dockerfile:6: COPY source `pb/` does not exist in the build context; it is in `.`: set `context: .` for this service",
                "src/cart/Dockerfile:7: COPY source `*.md` does not exist in the build context; add it, or fix the Dockerfile",
                "src/cart/Dockerfile:8: COPY source `secret.env` is excluded by the ignore file of the build context; add it, or fix the Dockerfile",
            ],
            "the unused first stage is not checked"
        );
        // From the root, all of it is there but the ignored file and the glob.
        let found = missing(
            &root,
            &dockerfile,
            "src/cart/Dockerfile",
            ".",
            &listing(&root, ".", "src/cart/Dockerfile"),
            &BTreeMap::new(),
            None,
        );
        assert_eq!(
            found.iter().map(|m| m.line).collect::<Vec<_>>(),
            [7, 8, 8],
            "{found:?}"
        );
        fs::remove_dir_all(&root).unwrap();
    }
}
