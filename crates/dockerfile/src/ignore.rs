//! `.dockerignore`, with the rules of moby's `patternmatcher` (the Docker CLI and
//! BuildKit both use it) rather than gitignore's or a generic glob library's.
//!
//! Reading the file (`ignorefile.ReadAll`): a BOM is dropped; a line whose very
//! first character is `#` is a comment (checked before trimming, so `  # x` is a
//! pattern); each line is trimmed; `!` makes an exception; the pattern is cleaned
//! like Go's `filepath.Clean` and one leading `/` dropped, so `/foo`, `./foo` and
//! `foo/` all mean `foo`.
//!
//! Matching (`patternmatcher.go`, `Pattern.compile`): a pattern is checked with Go's
//! `filepath.Match` for syntax errors, then turned into a Go regexp, not matched
//! with `filepath.Match`. So `*` is `[^/]*`, `?` is `[^/]`, `**` spans folders, a
//! `[...]` class is passed through to the regexp (only `[^...]` negates; `[!a]` is
//! the set `!`, `a`), and `{`, `}`, `,`, `.`, `+`, `(`, `)`, `|`, `$` are literal
//! text: `{a,b}` is no alternation. The regexp's quirks are kept where they can be:
//!
//! - `**` followed by more pattern is `(.*/)?`, so `a**b` matches `ab` and `ax/b`
//!   but not `axb`; a trailing `**` is `.*`. A pattern that starts with `**` and has
//!   no other wildcard is a plain suffix test (`**file` matches `myfile`), one that
//!   ends in `**` after plain text a prefix test, and plain text an exact test.
//! - `^` is not escaped, so in a regexp pattern it anchors: it matches only at the
//!   start of the path (`a^b` never matches; `^a*` is `a*`).
//! - Go's `.` does not match a newline, so `**` does not cross one.
//!
//! Where the regexp means something `filepath.Match` syntax cannot say, the pattern
//! is refused with its line instead of guessed: `\` before a letter, digit or
//! non-ASCII character (a regexp escape such as `\d`, or a regexp error), `*` or `?`
//! inside `[...]` (moby writes a nested class into the class), `[:` inside `[...]`
//! (a POSIX class) and a range such as `[z-a]` (a regexp error). Docker fails such a
//! build when it matches the first path; here the error names the line.
//!
//! A path is excluded when the last rule that matches it or one of its parent
//! folders is not an exception, decided the way the context walk decides it
//! (`MatchesUsingParentResults`, as go-archive's `TarWithOptions` and fsutil call
//! it): folder by folder from the top, where a rule that matched a parent folder
//! stays matched, and a rule that was skipped for a parent (it could not change the
//! outcome there) is then tried on the path alone. This differs from
//! `MatchesOrParentMatches` only in odd files such as `a`, `!a/b`, `a`, where the
//! walk sends `a/b`.
//!
//! The layering is ours rather than the `ignore` crate's: that crate implements
//! gitignore, where a bare `foo` matches at any depth (in Docker only at the root)
//! and `dir/` matches only folders (Docker has no such rule).

use crate::glob::{Token, glob_match, parse_glob};

/// The compiled rules of one `.dockerignore`.
#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
struct Rule {
    exception: bool,
    /// The cleaned pattern, for the folder-skipping rule.
    pattern: String,
    matcher: Matcher,
}

/// moby's four kinds of pattern (`exactMatch`, `prefixMatch`, `suffixMatch`,
/// `regexpMatch`).
#[derive(Debug, Clone)]
enum Matcher {
    Exact(String),
    /// A trailing `**` after plain text: the text before it.
    Prefix(String),
    /// A leading `**` before plain text: the text after it.
    Suffix(String),
    Regexp(Vec<Token>),
}

impl DockerIgnore {
    /// Parses the text of a `.dockerignore`; an error names the line.
    pub fn parse(text: &str) -> Result<DockerIgnore, String> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut rules = Vec::new();
        for (n, raw) in text.lines().enumerate() {
            let number = n + 1;
            if raw.starts_with('#') {
                continue;
            }
            let line = raw.trim();
            if line.is_empty() {
                continue;
            }
            let (exception, pattern) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            if pattern.is_empty() {
                return Err(format!("line {number}: `!` with no pattern"));
            }
            let pattern = normalize(pattern);
            // `patternmatcher.New` cleans `!` + pattern once more, which turns `!/`
            // into `!` and refuses it.
            if exception && pattern == "/" {
                return Err(format!("line {number}: `{line}`: `!` with no pattern"));
            }
            let matcher =
                compile(&pattern).map_err(|why| format!("line {number}: `{line}`: {why}"))?;
            rules.push(Rule {
                exception,
                pattern,
                matcher,
            });
        }
        Ok(DockerIgnore { rules })
    }

    /// Whether `path` (relative to the context, `/`-separated) is excluded.
    #[must_use]
    pub fn excludes(&self, path: &str) -> bool {
        let mut parent: Option<Vec<bool>> = None;
        let mut excluded = false;
        let ends = path.match_indices('/').map(|(at, _)| at);
        for end in ends.chain([path.len()]) {
            let (now, matched) = self.step(&path[..end], parent.as_deref());
            excluded = now;
            parent = Some(matched);
        }
        excluded
    }

    /// Whether the walk may skip the folder `dir` whole: it is excluded and
    /// no exception pattern starts inside it. This is the Docker CLI's own
    /// rule (go-archive `TarWithOptions`), so `*` + `!src` never walks `target/`.
    /// An exception that starts with a wildcard (`!**/keep`) does not stop the
    /// skip, in Docker as here.
    #[must_use]
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

    /// One step of moby's `MatchesUsingParentResults`: whether `file` is excluded,
    /// and which rules matched it (or a parent), for its children.
    fn step(&self, file: &str, parent: Option<&[bool]>) -> (bool, Vec<bool>) {
        let mut excluded = false;
        let mut matched = vec![false; self.rules.len()];
        for (i, rule) in self.rules.iter().enumerate() {
            let mut hit = parent.is_some_and(|p| p[i]);
            if !hit {
                if rule.exception != excluded {
                    continue; // this rule cannot change the outcome
                }
                hit = rule.matcher.matches(file);
            }
            matched[i] = hit;
            if hit {
                excluded = !rule.exception;
            }
        }
        (excluded, matched)
    }
}

impl Matcher {
    fn matches(&self, path: &str) -> bool {
        match self {
            Matcher::Exact(exact) => path == exact,
            Matcher::Prefix(prefix) => path.starts_with(prefix.as_str()),
            // `**/foo` matches `foo` too.
            Matcher::Suffix(suffix) => {
                path.ends_with(suffix.as_str()) || suffix.strip_prefix('/') == Some(path)
            }
            Matcher::Regexp(tokens) => glob_match(tokens, &path.chars().collect::<Vec<_>>()),
        }
    }
}

/// Go's `filepath.Clean`, then one leading `/` dropped unless that is all there is.
fn normalize(pattern: &str) -> String {
    let rooted = pattern.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in pattern.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            p => parts.push(p),
        }
    }
    match (rooted, parts.is_empty()) {
        (true, true) => "/".into(),
        (false, true) => ".".into(),
        _ => parts.join("/"),
    }
}

/// moby's `Pattern.compile`, into our tokens.
fn compile(pattern: &str) -> Result<Matcher, String> {
    #[derive(PartialEq)]
    enum Kind {
        Exact,
        Prefix,
        Suffix,
        Regexp,
    }
    // `patternmatcher.New` runs `filepath.Match(pattern, ".")` for its syntax check.
    if parse_glob(pattern).is_none() {
        return Err("syntax error in pattern (Go's filepath.Match rejects it)".into());
    }
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut kind = Kind::Exact;
    let mut at = 0;
    while let Some(&c) = chars.get(at) {
        let start = at;
        at += 1;
        match c {
            '*' if chars.get(at) == Some(&'*') => {
                at += 1;
                // `**/` is read as `**`.
                if chars.get(at) == Some(&'/') {
                    at += 1;
                }
                if at == chars.len() {
                    if kind == Kind::Exact {
                        kind = Kind::Prefix;
                    } else {
                        tokens.push(Token::AnyRun);
                        kind = Kind::Regexp;
                    }
                } else {
                    tokens.extend([Token::DirPrefix, Token::InDirPrefix]);
                    kind = Kind::Regexp;
                }
                if start == 0 {
                    kind = Kind::Suffix;
                }
            }
            '*' => {
                tokens.push(Token::Star);
                kind = Kind::Regexp;
            }
            '?' => {
                tokens.push(Token::AnyChar);
                kind = Kind::Regexp;
            }
            '\\' => {
                tokens.push(Token::Char(escaped(&chars, &mut at)?));
                kind = Kind::Regexp;
            }
            '[' => {
                tokens.push(class(&chars, &mut at)?);
                kind = Kind::Regexp;
            }
            ']' => {
                tokens.push(Token::Char(']'));
                kind = Kind::Regexp;
            }
            '^' => tokens.push(Token::Start),
            c => tokens.push(Token::Char(c)),
        }
    }
    Ok(match kind {
        Kind::Exact => Matcher::Exact(pattern.to_string()),
        Kind::Prefix => Matcher::Prefix(pattern[..pattern.len() - 2].to_string()),
        Kind::Suffix => Matcher::Suffix(pattern[2..].to_string()),
        Kind::Regexp => Matcher::Regexp(tokens),
    })
}

/// The character after a `\` (at `at`, consumed). moby writes `\` and the
/// character into the regexp, where only ASCII punctuation stands for itself.
fn escaped(chars: &[char], at: &mut usize) -> Result<char, String> {
    let c = *chars.get(*at).ok_or("syntax error in pattern")?;
    *at += 1;
    if c.is_ascii() && !c.is_ascii_alphanumeric() {
        Ok(c)
    } else {
        Err(format!(
            "`\\{c}`: Docker hands `\\` and a letter, digit or non-ASCII character to a \
             Go regexp (moby patternmatcher), where it is a class like `\\d` or an error; \
             write the character without `\\`"
        ))
    }
}

/// A `[...]` class, `at` just past its `[`, as Go's regexp reads it once moby has
/// copied it in. The syntax is known to be valid for `filepath.Match`.
fn class(chars: &[char], at: &mut usize) -> Result<Token, String> {
    let negated = chars.get(*at) == Some(&'^');
    if negated {
        *at += 1;
    }
    let mut ranges = Vec::new();
    loop {
        if !ranges.is_empty() && chars.get(*at) == Some(&']') {
            *at += 1;
            return Ok(Token::Class { negated, ranges });
        }
        let lo = class_char(chars, at)?;
        let hi = if chars.get(*at) == Some(&'-') {
            *at += 1;
            class_char(chars, at)?
        } else {
            lo
        };
        if lo > hi {
            return Err(format!(
                "`{lo}-{hi}` is an empty range, which Docker's Go regexp refuses"
            ));
        }
        ranges.push((lo, hi));
    }
}

fn class_char(chars: &[char], at: &mut usize) -> Result<char, String> {
    let c = *chars.get(*at).ok_or("syntax error in pattern")?;
    *at += 1;
    match c {
        '\\' => escaped(chars, at),
        '*' | '?' => Err(format!(
            "`{c}` inside `[...]`: Docker writes it into the class as a nested regexp \
             class, which matches something else; write `\\{c}`"
        )),
        '[' if chars.get(*at) == Some(&':') => Err(
            "`[:` inside `[...]` starts a POSIX class in Docker's Go regexp; write `\\[`".into(),
        ),
        c => Ok(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignore(text: &str) -> DockerIgnore {
        DockerIgnore::parse(text).unwrap()
    }

    /// moby's test helper: a single pattern against a path.
    fn matches(pattern: &str, path: &str) -> bool {
        ignore(pattern).excludes(path)
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
        assert_eq!(normalize("/a/./b/"), "a/b");
        assert_eq!(normalize("a/../b"), "b");
        assert_eq!(normalize("./"), ".");
        assert_eq!(normalize("../x"), "../x");
        assert_eq!(normalize("/../x"), "x");
        assert_eq!(normalize("/"), "/");
    }

    #[test]
    fn braces_are_literal_text() {
        let i = ignore("{a,b}.txt\n*.{js,ts}\n");
        assert!(i.excludes("{a,b}.txt"));
        assert!(!i.excludes("a.txt"));
        assert!(i.excludes("app.{js,ts}"));
        assert!(!i.excludes("app.js"));
    }

    #[test]
    fn only_caret_negates_a_class() {
        // `[!a]` is the set {!, a}, as in a Go regexp.
        let i = ignore("file[!a].txt\n");
        assert!(i.excludes("file!.txt"));
        assert!(i.excludes("filea.txt"));
        assert!(!i.excludes("fileb.txt"));
        let i = ignore("file[^a].txt\n");
        assert!(i.excludes("fileb.txt"));
        assert!(!i.excludes("filea.txt"));
        assert!(i.excludes("file!.txt"));
    }

    #[test]
    fn double_star_at_the_start() {
        let i = ignore("**/dist\n");
        assert!(i.excludes("dist"));
        assert!(i.excludes("a/b/dist"));
        assert!(i.excludes("a/dist/x.js"));
        assert!(!i.excludes("a/mydist"));
        // moby `suffixMatch`: `**` then plain text is an ends-with test.
        let i = ignore("**file\n");
        assert!(i.excludes("file"));
        assert!(i.excludes("myfile"));
        assert!(i.excludes("d/myfile"));
        // ... unless another wildcard makes it a regexp, `(.*/)?file[^/]*`.
        let i = ignore("**file*\n");
        assert!(i.excludes("d/file.txt"));
        assert!(!i.excludes("d/myfile.txt"));
    }

    #[test]
    fn double_star_in_the_middle() {
        let i = ignore("a/**/b\n");
        assert!(i.excludes("a/b"));
        assert!(i.excludes("a/x/b"));
        assert!(i.excludes("a/x/y/b"));
        assert!(!i.excludes("a/xb"));
        // `a**b` is `a(.*/)?b`: a folder boundary before `b`, or nothing.
        let i = ignore("a**b\n");
        assert!(i.excludes("ab"));
        assert!(i.excludes("ax/b"));
        assert!(!i.excludes("axb"));
    }

    #[test]
    fn double_star_at_the_end() {
        let i = ignore("dir/**\n");
        assert!(i.excludes("dir/x"));
        assert!(i.excludes("dir/x/y"));
        assert!(!i.excludes("dir"), "the folder itself stays");
        let i = ignore("abc**\n");
        assert!(i.excludes("abc"));
        assert!(i.excludes("abcdef"));
        assert!(i.excludes("abc/d"));
        let i = ignore("*.txt**\n");
        assert!(i.excludes("a.txt"));
        assert!(i.excludes("a.txt.bak"));
    }

    #[test]
    fn a_pattern_that_is_just_double_star() {
        let i = ignore("**\n");
        for path in ["a", "a/b", ".git", "x/.hidden"] {
            assert!(i.excludes(path), "{path}");
        }
        let i = ignore("**\n!keep\n");
        assert!(!i.excludes("keep"));
        assert!(!i.excludes("keep/a"));
        assert!(i.excludes("other"));
        assert!(!i.skips_dir("keep"));
        assert!(i.skips_dir("other"));
    }

    #[test]
    fn escapes() {
        let i = ignore("a\\*b\n\\[x\\]\nback\\\\slash\n");
        assert!(i.excludes("a*b"));
        assert!(!i.excludes("axb"));
        assert!(i.excludes("[x]"));
        assert!(i.excludes("back\\slash"));
        for bad in ["\\d", "a\\b", "\\1", "x\\é", "[\\w]"] {
            let err = DockerIgnore::parse(bad).unwrap_err();
            assert!(
                err.contains("line 1") && err.contains("regexp"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn regexp_quirks_that_can_be_mirrored() {
        // `^` is no literal in a regexp pattern: it anchors.
        assert!(matches("^a*", "abc"));
        assert!(!matches("x^a*", "x^abc"));
        // In a pattern without wildcards it is plain text (an exact match).
        assert!(matches("a^b", "a^b"));
        // Regexp specials that filepath.Match reads as text are escaped by moby.
        assert!(matches("a.|)$(}+{bc", "a.|)$(}+{bc"));
        assert!(matches("a(b)c/*", "a(b)c/def"));
        assert!(!matches("abc.def", "abcZdef"));
    }

    #[test]
    fn class_contents_that_cannot_be_mirrored_are_refused() {
        for bad in ["[*]", "x[a?]", "[[:alpha:]]", "[z-a]"] {
            let err = DockerIgnore::parse(&format!("ok\n{bad}\n")).unwrap_err();
            assert!(err.starts_with("line 2"), "{bad}: {err}");
        }
        assert!(matches("[\\*]", "*"));
        assert!(matches("[[]", "["));
    }

    #[test]
    fn comments_only_at_the_very_start_of_a_line() {
        let i = ignore("# comment\n  # not a comment\n");
        assert!(!i.excludes("comment"));
        assert!(i.excludes("# not a comment"));
    }

    #[test]
    fn byte_order_mark_and_crlf() {
        let i = ignore("\u{feff}secret\r\n*.log\r\n");
        assert!(i.excludes("secret"));
        assert!(i.excludes("a.log"));
    }

    #[test]
    fn exception_of_the_root_is_refused() {
        let err = DockerIgnore::parse("*\n!/\n").unwrap_err();
        assert!(err.starts_with("line 2"), "{err}");
    }

    #[test]
    fn a_rule_skipped_for_a_parent_is_tried_on_the_path_alone() {
        // The walk (MatchesUsingParentResults) sends `a/b`: the last `a` was skipped
        // at `a` (already excluded) and does not match `a/b` itself.
        // MatchesOrParentMatches would exclude it.
        let i = ignore("a\n!a/b\na\n");
        assert!(i.excludes("a"));
        assert!(!i.excludes("a/b"));
        assert!(i.excludes("a/c"));
    }

    #[test]
    fn a_wildcard_exception_does_not_stop_a_skip() {
        // go-archive compares exception patterns as prefixes, so Docker never walks
        // `target/` to find `target/keep`.
        let i = ignore("*\n!**/keep\n");
        assert!(!i.excludes("target/keep"));
        assert!(i.skips_dir("target"));
    }

    #[test]
    fn moby_match_table() {
        // moby patternmatcher_test.go TestMatches, trailing-slash cases left out
        // (the walk never yields them).
        let cases = [
            ("**", "file", true),
            ("**/", "file", true),
            ("**", "dir/file", true),
            ("**/", "dir/file", true),
            ("**/**", "dir/file", true),
            ("dir/**", "dir/file", true),
            ("dir/**", "dir/dir2/file", true),
            ("**/dir", "dir", true),
            ("**/dir", "dir/file", true),
            ("**/dir2/*", "dir/dir2/file", true),
            ("**/dir2/**", "dir/dir2/dir3/file", true),
            ("**file", "file", true),
            ("**file", "dir/file", true),
            ("**/file", "dir/file", true),
            ("**file", "dir/dir/file", true),
            ("**/file", "dir/dir/file", true),
            ("**/file*", "dir/dir/file", true),
            ("**/file*", "dir/dir/file.txt", true),
            ("**/file*txt", "dir/dir/file.txt", true),
            ("**/file*.txt", "dir/dir/file.txt", true),
            ("**/file*.txt*", "dir/dir/file.txt", true),
            ("**/**/*.txt", "dir/dir/file.txt", true),
            ("**/**/*.txt2", "dir/dir/file.txt", false),
            ("**/*.txt", "file.txt", true),
            ("**/**/*.txt", "file.txt", true),
            ("a**/*.txt", "a/file.txt", true),
            ("a**/*.txt", "a/dir/file.txt", true),
            ("a**/*.txt", "a/dir/dir/file.txt", true),
            ("a/*.txt", "a/dir/file.txt", false),
            ("a/*.txt", "a/file.txt", true),
            ("a/*.txt**", "a/file.txt", true),
            ("a[b-d]e", "ae", false),
            ("a[b-d]e", "ace", true),
            ("a[b-d]e", "aae", false),
            ("a[^b-d]e", "aze", true),
            (".*", ".foo", true),
            (".*", "foo", false),
            ("abc.def", "abcdef", false),
            ("abc.def", "abc.def", true),
            ("abc.def", "abcZdef", false),
            ("abc?def", "abcZdef", true),
            ("abc?def", "abcdef", false),
            ("a\\\\", "a\\", true),
            ("**/foo/bar", "foo/bar", true),
            ("**/foo/bar", "dir/foo/bar", true),
            ("**/foo/bar", "dir/dir2/foo/bar", true),
            ("abc/**", "abc", false),
            ("abc/**", "abc/def", true),
            ("abc/**", "abc/def/ghi", true),
            ("**/.foo", ".foo", true),
            ("**/.foo", "bar.foo", false),
            ("a(b)c/def", "a(b)c/def", true),
            ("a(b)c/def", "a(b)c/xyz", false),
            ("a.|)$(}+{bc", "a.|)$(}+{bc", true),
            (
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                true,
            ),
            (
                "dist/*.whl",
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                true,
            ),
            ("a\\*b", "a*b", true),
        ];
        for (pattern, path, want) in cases {
            assert_eq!(matches(pattern, path), want, "{pattern} vs {path}");
        }
        let multi = [
            ("**\n!util/docker/web", "util/docker/web/foo", false),
            (
                "**\n!util/docker/web\nutil/docker/web/foo",
                "util/docker/web/foo",
                true,
            ),
            (
                "**\n!dist/*.whl",
                "dist/proxy.py-2.4.0-py3-none-any.whl",
                false,
            ),
        ];
        for (patterns, path, want) in multi {
            assert_eq!(
                ignore(patterns).excludes(path),
                want,
                "{patterns:?} vs {path}"
            );
        }
    }

    #[test]
    fn moby_filepath_match_table() {
        // moby patternmatcher_test.go matchTests (Go's own Match tests), through
        // the parent-folder rule: `a*` excludes `ab/c` because it excludes `ab`.
        let cases = [
            ("abc", "abc", true),
            ("*", "abc", true),
            ("*c", "abc", true),
            ("a*", "a", true),
            ("a*", "abc", true),
            ("a*", "ab/c", true),
            ("a*/b", "abc/b", true),
            ("a*/b", "a/c/b", false),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", false),
            ("a*b?c*x", "abxbbxdbxebxczzx", true),
            ("a*b?c*x", "abxbbxdbxebxczzy", false),
            ("ab[c]", "abc", true),
            ("ab[b-d]", "abc", true),
            ("ab[e-g]", "abc", false),
            ("ab[^c]", "abc", false),
            ("ab[^b-d]", "abc", false),
            ("ab[^e-g]", "abc", true),
            ("a\\*b", "ab", false),
            ("a?b", "a☺b", true),
            ("a[^a]b", "a☺b", true),
            ("a???b", "a☺b", false),
            ("a[^a][^a][^a]b", "a☺b", false),
            ("[a-ζ]*", "α", true),
            ("*[a-ζ]", "A", false),
            ("a?b", "a/b", false),
            ("a*b", "a/b", false),
            ("[\\]a]", "]", true),
            ("[\\-]", "-", true),
            ("[x\\-]", "x", true),
            ("[x\\-]", "-", true),
            ("[x\\-]", "z", false),
            ("[\\-x]", "x", true),
            ("[\\-x]", "-", true),
            ("[\\-x]", "a", false),
            ("*x", "xxx", true),
        ];
        for (pattern, path, want) in cases {
            assert_eq!(matches(pattern, path), want, "{pattern} vs {path}");
        }
        for bad in [
            "[]a]", "[-]", "[x-]", "[-x]", "\\", "[a-b-c]", "[", "[^", "[^bc", "a[",
        ] {
            assert!(DockerIgnore::parse(bad).is_err(), "{bad}");
        }
    }
}
