//! Image tags: the content tag, tag templates (`{git_short}`, `{date}`…) and
//! the OCI tag grammar every tag is checked against before anything is built.
//!
//! Grammar, from the OCI distribution spec: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.

/// The variables a tag template may use.
pub(crate) const VARIABLES: &[&str] = &["git_sha", "git_short", "content", "date", "branch"];

/// `in-` and the first 20 hex digits of an input digest (`sha256:…`).
pub(crate) fn content_tag(input_digest: &str) -> String {
    let hex = input_digest.strip_prefix("sha256:").unwrap_or(input_digest);
    format!("in-{}", &hex[..20.min(hex.len())])
}

/// Whether `tag` is a valid OCI tag.
pub(crate) fn is_valid(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes[1..]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Checks a template's variables, so a typo is a config error with a line,
/// not a failed push.
pub(crate) fn check_template(template: &str) -> Result<(), String> {
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            return Err(format!("tag template `{template}` has an unclosed `{{`"));
        };
        let name = &rest[open + 1..open + close];
        if !VARIABLES.contains(&name) {
            return Err(format!(
                "tag template `{template}` uses unknown variable `{{{name}}}`; known: {}",
                VARIABLES
                    .iter()
                    .map(|v| format!("{{{v}}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        rest = &rest[open + close + 1..];
    }
    Ok(())
}

/// The values a template is rendered with, for one service.
#[derive(Debug, Clone, Default)]
pub(crate) struct TagValues {
    pub(crate) git_sha: Option<String>,
    pub(crate) git_short: Option<String>,
    pub(crate) content: String,
    pub(crate) date: String,
    pub(crate) branch: Option<String>,
}

/// Renders `template`; an error names the template and what is missing.
pub(crate) fn render(template: &str, values: &TagValues) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| format!("tag template `{template}` has an unclosed `{{`"))?;
        let name = &rest[open + 1..open + close];
        let value = match name {
            "git_sha" => values.git_sha.as_deref(),
            "git_short" => values.git_short.as_deref(),
            "content" => Some(values.content.as_str()),
            "date" => Some(values.date.as_str()),
            "branch" => values.branch.as_deref(),
            _ => return Err(format!("tag template `{template}`: unknown `{{{name}}}`")),
        };
        let value = value.ok_or_else(|| {
            format!("tag template `{template}` needs `{{{name}}}`, but the repo is not a git checkout with a commit")
        })?;
        out.push_str(value);
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    if !is_valid(&out) {
        return Err(format!(
            "tag `{out}` (from template `{template}`) is not a valid tag: use letters, digits, `_`, `.`, `-`, at most 128, not starting with `.` or `-`"
        ));
    }
    Ok(out)
}

/// A branch name made into something the tag grammar accepts.
pub(crate) fn sanitize(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    while s.starts_with(['.', '-']) {
        s.remove(0);
    }
    s.truncate(128);
    if s.is_empty() { "_".into() } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar() {
        for ok in ["latest", "v1.2.3", "_x", "a-b_c.d", &"a".repeat(128)] {
            assert!(is_valid(ok), "{ok}");
        }
        for bad in ["", ".x", "-x", "a/b", "a:b", "ü", &"a".repeat(129)] {
            assert!(!is_valid(bad), "{bad}");
        }
    }

    #[test]
    fn content_tag_is_20_hex() {
        let d = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(content_tag(&d), "in-abababababababababab");
    }

    #[test]
    fn templates_render_and_check() {
        let v = TagValues {
            git_sha: Some("0123456789abcdef".into()),
            git_short: Some("0123456-dirty".into()),
            content: "in-1".into(),
            date: "20261126".into(),
            branch: Some("feature-x".into()),
        };
        assert_eq!(render("{git_short}", &v).unwrap(), "0123456-dirty");
        assert_eq!(
            render("rel-{date}-{branch}", &v).unwrap(),
            "rel-20261126-feature-x"
        );
        assert_eq!(render("latest", &v).unwrap(), "latest");
        assert!(check_template("{git_sha}").is_ok());
        assert!(
            check_template("{sha}")
                .unwrap_err()
                .contains("unknown variable")
        );
        assert!(check_template("{git_sha").unwrap_err().contains("unclosed"));
        assert!(render("a/b", &v).unwrap_err().contains("not a valid tag"));
        let no_git = TagValues::default();
        assert!(render("{git_sha}", &no_git).unwrap_err().contains("git"));
    }

    #[test]
    fn branch_is_sanitized() {
        assert_eq!(sanitize("feature/Foo bar"), "feature-Foo-bar");
        assert_eq!(sanitize("--x"), "x");
        assert_eq!(sanitize("///"), "_");
    }
}
