//! Go's `path/filepath.Match`, the matcher the builder uses for `COPY`/`ADD`
//! sources, plus the few regular-expression pieces moby's `.dockerignore` matcher
//! adds on top (`**` and the `^` anchor; see [`crate::ignore`]).
//!
//! Hand-written rather than `globset`: globset lets `*` cross `/` unless told
//! otherwise, and knows `**`, `{a,b}` and `[!...]`, none of which Go's
//! `filepath.Match` has (it negates with `[^...]` only, `!` is literal). Nor can
//! globset answer "can anything below this directory match?", which the pruned walk
//! asks through [`Sources::may_contain`](crate::Sources::may_contain).
//!
//! Patterns run as an automaton over the name (one set of live states per
//! character), so many stars against a long name stay linear.

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    Char(char),
    /// `?`: one character but `/`.
    AnyChar,
    /// `*`: any run of characters without `/`.
    Star,
    /// `[a-z]`, `[^a-z]`. Go (and a Go regexp class) lets a class match `/`.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// Regexp `.*`: any run of characters but `\n` (Go's `.` does not match a
    /// newline).
    AnyRun,
    /// Regexp `(.*/)?`: nothing, or any run of characters (no `\n`) ending in `/`.
    /// Always followed by [`Token::InDirPrefix`], the state inside the group.
    DirPrefix,
    InDirPrefix,
    /// Regexp `^`: matches nothing, and only at the start of the name.
    Start,
}

impl Token {
    fn matches(&self, c: char) -> bool {
        match self {
            Token::Char(x) => *x == c,
            Token::AnyChar => c != '/',
            Token::Class { negated, ranges } => {
                ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
            }
            Token::Star | Token::AnyRun | Token::DirPrefix | Token::InDirPrefix | Token::Start => {
                false
            }
        }
    }
}

/// Parses Go `filepath.Match` syntax; `None` where Go reports `ErrBadPattern`.
pub(crate) fn parse_glob(pattern: &str) -> Option<Vec<Token>> {
    let mut tokens = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        let token = match c {
            '*' if tokens.last() == Some(&Token::Star) => continue,
            '*' => Token::Star,
            '?' => Token::AnyChar,
            '\\' => Token::Char(chars.next()?),
            '[' => {
                let negated = chars.next_if_eq(&'^').is_some();
                let mut ranges = Vec::new();
                loop {
                    if !ranges.is_empty() && chars.next_if_eq(&']').is_some() {
                        break;
                    }
                    let lo = class_char(&mut chars)?;
                    let hi = match chars.next_if_eq(&'-') {
                        Some(_) => class_char(&mut chars)?,
                        None => lo,
                    };
                    ranges.push((lo, hi));
                }
                Token::Class { negated, ranges }
            }
            c => Token::Char(c),
        };
        tokens.push(token);
    }
    Some(tokens)
}

/// One possibly escaped character of a class; a bare `-` or `]` is malformed.
fn class_char(chars: &mut impl Iterator<Item = char>) -> Option<char> {
    match chars.next()? {
        '-' | ']' => None,
        '\\' => chars.next(),
        c => Some(c),
    }
}

/// Whole-name match. This explores every way to place the stars, where Go's Match
/// commits to the first place a chunk fits, so it matches at least what Go does.
pub(crate) fn glob_match(tokens: &[Token], name: &[char]) -> bool {
    glob_states(tokens, name)[tokens.len()]
}

/// Whether some name starting with `prefix` can match: the prefix leaves the
/// pattern in some live state, and the rest of the pattern is taken to match
/// something.
pub(crate) fn glob_could_extend(tokens: &[Token], prefix: &[char]) -> bool {
    glob_states(tokens, prefix).contains(&true)
}

/// Runs the pattern as an automaton over `name`: `states[i]` says whether the first
/// `i` tokens can have consumed all of it. Linear in pattern times name length.
fn glob_states(tokens: &[Token], name: &[char]) -> Vec<bool> {
    // Steps that consume nothing. They only go forward, so one pass in order is
    // enough.
    let skip_empty = |states: &mut Vec<bool>, at_start: bool| {
        for (i, token) in tokens.iter().enumerate() {
            if !states[i] {
                continue;
            }
            match token {
                Token::Star | Token::AnyRun => states[i + 1] = true,
                Token::Start if at_start => states[i + 1] = true,
                Token::DirPrefix => states[i + 2] = true,
                _ => {}
            }
        }
    };
    let mut states = vec![false; tokens.len() + 1];
    states[0] = true;
    skip_empty(&mut states, true);
    for &c in name {
        let mut next = vec![false; tokens.len() + 1];
        for (i, token) in tokens.iter().enumerate().filter(|&(i, _)| states[i]) {
            match token {
                Token::Star => next[i] |= c != '/',
                Token::AnyRun => next[i] |= c != '\n',
                Token::DirPrefix => {
                    next[i + 1] |= c != '\n';
                    next[i + 2] |= c == '/';
                }
                Token::InDirPrefix => {
                    next[i] |= c != '\n';
                    next[i + 1] |= c == '/';
                }
                Token::Start => {}
                token => next[i + 1] |= token.matches(c),
            }
        }
        skip_empty(&mut next, false);
        states = next;
    }
    states
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(p: &str, name: &str) -> bool {
        let tokens = parse_glob(p).expect("valid pattern");
        glob_match(&tokens, &name.chars().collect::<Vec<_>>())
    }

    #[test]
    fn go_match_semantics() {
        assert!(glob("a*b*c", "axxbyyc"));
        assert!(!glob("a*c", "ab/c"));
        assert!(glob("a[/]b", "a/b"));
        assert!(glob("[a-c]x", "bx"));
        assert!(glob("[\\]]", "]"));
        assert!(glob("\\[x", "[x"));
        // Many stars against a long name stay linear.
        let long = format!("{}c", "a".repeat(500));
        assert!(!glob(&"*a".repeat(20), &long));
        let extend = |p: &str, prefix: &str| {
            let tokens = parse_glob(p).expect("valid pattern");
            glob_could_extend(&tokens, &prefix.chars().collect::<Vec<_>>())
        };
        assert!(extend("src/*/x", "src/"));
        assert!(extend("src/*/x", "src/lib/"));
        assert!(!extend("src/*/x", "src/lib/y/"));
        assert!(!extend("src/*/x", "docs/"));
        for bad in ["[", "[]", "[^]", "[a-]", "[-a]", "a\\", "[a"] {
            assert!(parse_glob(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn go_match_table() {
        // From Go's path/filepath match_test.go (as moby's patternmatcher copies it).
        let cases = [
            ("abc", "abc", true),
            ("*", "abc", true),
            ("*c", "abc", true),
            ("a*", "a", true),
            ("a*", "abc", true),
            ("a*", "ab/c", false),
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
            ("a\\*b", "a*b", true),
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
        for (pattern, name, want) in cases {
            assert_eq!(glob(pattern, name), want, "{pattern} vs {name}");
        }
        for bad in [
            "[]a]", "[-]", "[x-]", "[-x]", "\\", "[a-b-c]", "[^", "[^bc", "a[",
        ] {
            assert!(parse_glob(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn regexp_pieces() {
        let run =
            |tokens: &[Token], name: &str| glob_match(tokens, &name.chars().collect::<Vec<_>>());
        // `(.*/)?x`
        let dir_x = [Token::DirPrefix, Token::InDirPrefix, Token::Char('x')];
        assert!(run(&dir_x, "x"));
        assert!(run(&dir_x, "a/x"));
        assert!(run(&dir_x, "a/b/x"));
        assert!(run(&dir_x, "/x"));
        assert!(!run(&dir_x, "ax"));
        assert!(!run(&dir_x, "a\n/x"));
        // `a.*`
        let a_any = [Token::Char('a'), Token::AnyRun];
        assert!(run(&a_any, "a/b/c"));
        assert!(!run(&a_any, "a\nb"));
        // `^` only at the start.
        assert!(run(&[Token::Start, Token::Char('a')], "a"));
        assert!(!run(
            &[Token::Char('a'), Token::Start, Token::Char('b')],
            "ab"
        ));
        assert!(run(
            &[
                Token::DirPrefix,
                Token::InDirPrefix,
                Token::Start,
                Token::Char('a')
            ],
            "a"
        ));
        assert!(!run(
            &[
                Token::DirPrefix,
                Token::InDirPrefix,
                Token::Start,
                Token::Char('a')
            ],
            "d/a"
        ));
    }
}
