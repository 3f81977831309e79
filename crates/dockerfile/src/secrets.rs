//! The build secrets a Dockerfile mounts (`RUN --mount=type=secret,…`), and the
//! small parsers of BuildKit's `--mount` options and Git sources.
//!
//! BuildKit (`dockerfile2llb/convert_secrets.go`, `dispatchSecret`): the secret's
//! id is `id` (or `source`/`src`, its alias), else the base name of `target`
//! (the reference: "ID of the secret. Defaults to basename of the target path").
//! A secret is optional unless `required` (or `required=true`) is given: a missing
//! optional secret mounts nothing, a missing required one fails the step.

use crate::parse::Dockerfile;

/// One `RUN --mount=type=secret`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SecretMount {
    /// 1-based line of the `RUN` (of the `ONBUILD`, for a trigger).
    pub line: usize,
    /// Index of the stage it is in.
    pub stage: usize,
    /// The id the build must be given, as written. BuildKit expands variables in
    /// mount options (frontend 1.3 and later); an id with `$` is returned unexpanded.
    pub id: String,
    /// `target`, as written; `None` mounts the file at `/run/secrets/<id>` (or
    /// nowhere, with `env`).
    pub target: Option<String>,
    /// `env=NAME`: the secret is exposed as this environment variable.
    pub env: Option<String>,
    /// `required`: the step fails when the build is not given the secret. A value
    /// Go's `strconv.ParseBool` rejects fails the build; it counts as `true` here.
    pub required: bool,
}

impl Dockerfile {
    /// Each `RUN --mount=type=secret` in file order, `ONBUILD RUN` included. A
    /// secret mount with neither `id`, `source` nor `target` is a build error and
    /// is left out.
    #[must_use]
    pub fn secret_mounts(&self) -> Vec<SecretMount> {
        let mut found = Vec::new();
        for stage in &self.stages {
            for instruction in stage.instructions() {
                let run = instruction.trigger().unwrap_or(instruction);
                if run.keyword != "run" {
                    continue;
                }
                let mounts = run
                    .flags
                    .iter()
                    .filter(|f| f.name() == "mount")
                    .map(|f| MountOptions::parse(f.value().unwrap_or_default()));
                for options in mounts {
                    let is_secret = options
                        .value("type")
                        .is_some_and(|t| t.eq_ignore_ascii_case("secret"));
                    if !is_secret {
                        continue;
                    }
                    let target = options.value("target").map(str::to_string);
                    let id = options
                        .value("source")
                        .or_else(|| options.value("id"))
                        .map(str::to_string)
                        .or_else(|| target.as_deref().map(base_name));
                    let Some(id) = id else { continue };
                    let required = match options.last("required") {
                        None => false,
                        Some(None) => true,
                        Some(Some(value)) => {
                            !matches!(value, "0" | "f" | "F" | "false" | "FALSE" | "False")
                        }
                    };
                    found.push(SecretMount {
                        line: instruction.line,
                        stage: stage.index,
                        id,
                        target,
                        env: options.value("env").map(str::to_string),
                        required,
                    });
                }
            }
        }
        found
    }
}

/// The comma-separated `key=value` fields of a `--mount` value, keys lower-cased
/// and aliases (`src`, `dst`, `destination`) folded, read as BuildKit reads them
/// (CSV: a field may be double-quoted, `""` inside is a quote).
pub(crate) struct MountOptions {
    fields: Vec<(String, Option<String>)>,
}

impl MountOptions {
    pub(crate) fn parse(value: &str) -> MountOptions {
        let fields = csv_fields(value)
            .into_iter()
            .map(|field| {
                let (key, value) = match field.split_once('=') {
                    Some((key, value)) => (key, Some(value.to_string())),
                    None => (field.as_str(), None),
                };
                let key = match key.to_ascii_lowercase().as_str() {
                    "src" => "source".to_string(),
                    "dst" | "destination" => "target".to_string(),
                    key => key.to_string(),
                };
                (key, value)
            })
            .collect();
        MountOptions { fields }
    }

    /// The value of the last `key=value`.
    pub(crate) fn value(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .rev()
            .filter(|(k, _)| k == key)
            .find_map(|(_, v)| v.as_deref())
    }

    /// The last field named `key`: `Some(None)` when it has no `=value`.
    fn last(&self, key: &str) -> Option<Option<&str>> {
        self.fields
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_deref())
    }
}

fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            '"' if quoted => quoted = false,
            '"' if at_start => quoted = true,
            ',' if !quoted => {
                fields.push(std::mem::take(&mut field));
                at_start = true;
                continue;
            }
            c => field.push(c),
        }
        at_start = false;
    }
    fields.push(field);
    fields.retain(|f| !f.is_empty());
    fields
}

/// Go's `path.Base`: the last element, trailing slashes ignored.
fn base_name(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/".into();
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed).to_string()
}

/// Whether an `ADD` source is a Git repository to BuildKit
/// (`dfgitutil.ParseGitRef`): a `git://` or `ssh://` URL, an `http(s)://` URL whose
/// path ends in `.git`, or an scp-like `user@host:path`.
pub(crate) fn is_git_source(source: &str) -> bool {
    if let Some((scheme, rest)) = source.split_once("://")
        && !scheme.is_empty()
        && scheme.chars().all(|c| c.is_ascii_alphanumeric())
    {
        return match scheme.to_ascii_lowercase().as_str() {
            "git" | "ssh" => true,
            "http" | "https" => {
                let end = rest.find(['?', '#']).unwrap_or(rest.len());
                let path = rest[..end].find('/').map_or("", |at| &rest[at..end]);
                path.ends_with(".git")
            }
            _ => false,
        };
    }
    // `^([a-zA-Z0-9-_]+)@([a-zA-Z0-9-.]+):(.*?)…$` (sshutil.gitSSHRegex)
    let Some((user, rest)) = source.split_once('@') else {
        return false;
    };
    let Some((host, _path)) = rest.split_once(':') else {
        return false;
    };
    let word = |s: &str, extra: char| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == extra)
    };
    word(user, '_') && word(host, '.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(text: &str) -> Vec<SecretMount> {
        Dockerfile::parse(text).expect("parses").secret_mounts()
    }

    #[test]
    fn ids_targets_and_required() {
        let text = "\
FROM node AS deps
RUN --mount=type=secret,id=npmrc,target=/root/.npmrc \\
    --mount=type=cache,target=/root/.npm npm ci
FROM alpine
RUN --mount=type=secret,target=/run/secrets/aws/credentials,required=true \\
    --mount=type=secret,src=token,required cat /run/secrets/token
RUN --mount=TYPE=Secret,ID=gh,Required=false,env=GH_TOKEN gh auth status
";
        let found = secrets(text);
        let summary: Vec<_> = found
            .iter()
            .map(|s| (s.line, s.stage, s.id.as_str(), s.required))
            .collect();
        assert_eq!(
            summary,
            [
                (2, 0, "npmrc", false),
                (5, 1, "credentials", true),
                (5, 1, "token", true),
                (7, 1, "gh", false),
            ]
        );
        assert_eq!(found[0].target.as_deref(), Some("/root/.npmrc"));
        assert_eq!(found[2].target, None);
        assert_eq!(found[3].env.as_deref(), Some("GH_TOKEN"));
    }

    #[test]
    fn onbuild_quoted_fields_and_invalid_mounts() {
        let text = "\
FROM alpine
ONBUILD RUN --mount=type=secret,id=later true
RUN --mount='type=secret,\"id=a,b\"' --mount=type=secret,env=X true
RUN --mount=type=ssh --mount=type=secret,id=x,required=yes true
";
        let found = secrets(text);
        let summary: Vec<_> = found
            .iter()
            .map(|s| (s.line, s.id.as_str(), s.required))
            .collect();
        assert_eq!(
            summary,
            [(2, "later", false), (3, "a,b", false), (4, "x", true)]
        );
    }

    #[test]
    fn base_name_is_go_path_base() {
        assert_eq!(base_name("/run/secrets/npmrc"), "npmrc");
        assert_eq!(base_name("dir/"), "dir");
        assert_eq!(base_name("/"), "/");
        assert_eq!(base_name("plain"), "plain");
    }

    #[test]
    fn git_sources_as_buildkit_tells_them() {
        for git in [
            "git@github.com:moby/buildkit.git",
            "deploy_bot@git.example.com:repo",
            "git://example.com/repo",
            "ssh://git@example.com/repo",
            "https://github.com/moby/buildkit.git",
            "https://github.com/moby/buildkit.git#v0.10.1:docs",
            "HTTPS://example.com/r.git?ref=main",
        ] {
            assert!(is_git_source(git), "{git}");
        }
        for not in [
            "https://example.com/archive.tgz",
            "https://example.com/.git/x",
            "ftp://example.com/r.git",
            "local/file.git",
            "user@host",
            "a b@host:x",
        ] {
            assert!(!is_git_source(not), "{not}");
        }
    }
}
