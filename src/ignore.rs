//! `.dockerignore` with Docker's semantics (moby's `patternmatcher`).
//!
//! The `ignore` crate implements gitignore, which differs in ways that matter
//! here (a bare `foo` matches at any depth in git, only at the root in Docker;
//! Docker has no `dir/` only-directory rule). So the layering is ours and the
//! glob matching is `globset`'s with a literal separator, which is Go's
//! `filepath.Match` plus `**`:
//!
//! - each line is trimmed; blank lines and `#` comments are skipped;
//! - `!` makes an exception; the pattern is cleaned like Go's `filepath.Clean`
//!   and a leading `/` dropped, so `/foo`, `./foo` and `foo/` all mean `foo`;
//! - a pattern excludes a path when it matches the path or any of its parent
//!   folders, so `node_modules` excludes everything below it;
//! - the last matching line decides.

use globset::{Glob, GlobBuilder, GlobMatcher};

#[derive(Debug)]
struct Rule {
    matcher: GlobMatcher,
    exception: bool,
    /// The cleaned pattern, for the folder-skipping rule below.
    pattern: String,
}

/// The compiled rules of one `.dockerignore`.
#[derive(Debug, Default)]
pub struct DockerIgnore {
    rules: Vec<Rule>,
}

impl DockerIgnore {
    /// Parses the text of a `.dockerignore`; an error names the line.
    pub fn parse(text: &str) -> Result<DockerIgnore, String> {
        let mut rules = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exception, pattern) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            if pattern.is_empty() {
                return Err(format!("line {}: `!` with no pattern", n + 1));
            }
            let cleaned = clean(pattern);
            let glob: Glob = GlobBuilder::new(&cleaned)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| format!("line {}: `{line}`: {e}", n + 1))?;
            rules.push(Rule {
                matcher: glob.compile_matcher(),
                exception,
                pattern: cleaned,
            });
        }
        Ok(DockerIgnore { rules })
    }

    /// Whether `path` (relative to the context, `/`-separated) is excluded.
    pub fn excludes(&self, path: &str) -> bool {
        let mut excluded = false;
        for rule in &self.rules {
            if rule.exception != excluded {
                continue; // this rule cannot change the outcome
            }
            if matches_self_or_parent(&rule.matcher, path) {
                excluded = !rule.exception;
            }
        }
        excluded
    }

    /// Whether the walk may skip the folder `dir` whole: it is excluded and
    /// no exception pattern starts inside it. This is the Docker CLI's own
    /// rule, so `*` + `!src` never walks `target/`.
    pub fn skips_dir(&self, dir: &str) -> bool {
        if !self.excludes(dir) {
            return false;
        }
        let prefix = format!("{dir}/");
        !self
            .rules
            .iter()
            .any(|r| r.exception && format!("{}/", r.pattern).starts_with(&prefix))
    }
}

fn matches_self_or_parent(matcher: &GlobMatcher, path: &str) -> bool {
    if matcher.is_match(path) {
        return true;
    }
    path.match_indices('/')
        .any(|(i, _)| matcher.is_match(&path[..i]))
}

/// Go's `filepath.Clean` for relative patterns, without the leading `/`.
fn clean(pattern: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in pattern.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !pattern.starts_with('/') {
                    parts.push("..");
                }
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignore(text: &str) -> DockerIgnore {
        DockerIgnore::parse(text).unwrap()
    }

    #[test]
    fn root_relative_not_anywhere() {
        let i = ignore("secret.txt\n");
        assert!(i.excludes("secret.txt"));
        assert!(
            !i.excludes("sub/secret.txt"),
            "unlike git, a bare name is root-only"
        );
    }

    #[test]
    fn folder_excludes_its_contents() {
        let i = ignore("node_modules\n/build/\n./tmp\n");
        assert!(i.excludes("node_modules/a/b.js"));
        assert!(i.excludes("build/out.o"));
        assert!(i.excludes("tmp"));
        assert!(!i.excludes("src/node_modules/x"));
    }

    #[test]
    fn star_stays_in_one_segment_double_star_does_not() {
        let i = ignore("*.log\n**/*.tmp\ndocs/*/draft\n");
        assert!(i.excludes("a.log"));
        assert!(!i.excludes("sub/a.log"));
        assert!(i.excludes("x.tmp"));
        assert!(i.excludes("a/b/c/x.tmp"));
        assert!(i.excludes("docs/v1/draft"));
        assert!(!i.excludes("docs/v1/v2/draft"));
    }

    #[test]
    fn last_match_wins_with_exceptions() {
        let i = ignore("# comment\n\n*.md\n!README.md\n");
        assert!(i.excludes("CHANGES.md"));
        assert!(!i.excludes("README.md"));
        let i = ignore("!keep\n*\n");
        assert!(i.excludes("keep"), "a later rule overrides the exception");
    }

    #[test]
    fn folders_are_skipped_unless_an_exception_starts_inside() {
        let i = ignore("*\n!services/api\n");
        assert!(i.skips_dir("target"));
        assert!(!i.skips_dir("services"), "services/api is re-included");
        assert!(!i.excludes("services/api/main.go"));
        assert!(i.excludes("services/web/main.go"));
        assert!(!ignore("").skips_dir("src"));
    }

    #[test]
    fn bad_lines_are_errors() {
        assert!(DockerIgnore::parse("!\n").unwrap_err().contains("line 1"));
        assert!(
            DockerIgnore::parse("ok\n[z-a\n")
                .unwrap_err()
                .contains("line 2")
        );
    }

    #[test]
    fn clean_matches_go() {
        assert_eq!(clean("/a/./b/"), "a/b");
        assert_eq!(clean("a/../b"), "b");
        assert_eq!(clean("./"), ".");
    }
}
