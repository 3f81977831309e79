//! What git says about the repo: the commit, the branch, the origin URL and
//! which paths have uncommitted changes. One `git status` per run; a repo
//! that is not a git checkout simply has no commit (templates that need one
//! then fail with a config error).

use std::path::Path;
use std::process::Command;

#[derive(Debug, Clone, Default)]
pub struct GitInfo {
    pub sha: Option<String>,
    pub branch: Option<String>,
    pub origin: Option<String>,
    /// Paths (relative to the repo root, `/`-separated) with uncommitted
    /// changes, untracked files included.
    pub changed: Vec<String>,
}

fn git(root: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim_end().to_string())
}

impl GitInfo {
    /// Reads the repo at `root` (the folder of pipeline.yaml).
    pub fn read(root: &Path) -> GitInfo {
        let Some(sha) = git(root, &["rev-parse", "--verify", "-q", "HEAD"]) else {
            return GitInfo::default();
        };
        // Paths from `git status` are relative to the top of the work tree,
        // which may be above the pipeline root.
        let prefix = git(root, &["rev-parse", "--show-prefix"]).unwrap_or_default();
        let status = git(
            root,
            &["status", "--porcelain", "-z", "--untracked-files=all", "."],
        )
        .unwrap_or_default();
        let mut changed = Vec::new();
        let mut fields = status.split('\0');
        while let Some(field) = fields.next() {
            if field.len() < 4 {
                continue;
            }
            let (code, path) = field.split_at(3);
            if code.starts_with('R') || code.starts_with('C') {
                fields.next(); // the rename's source
            }
            if let Some(rel) = path.strip_prefix(&prefix) {
                changed.push(rel.to_string());
            }
        }
        GitInfo {
            branch: git(root, &["symbolic-ref", "--short", "-q", "HEAD"]),
            origin: git(root, &["config", "--get", "remote.origin.url"]),
            sha: Some(sha),
            changed,
        }
    }

    /// The short commit (7 hex), as `git rev-parse --short` prints by default.
    pub fn short(&self) -> Option<String> {
        self.sha.as_ref().map(|s| s[..7.min(s.len())].to_string())
    }

    pub fn dirty(&self) -> bool {
        !self.changed.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_sha() {
        let g = GitInfo {
            sha: Some("0123456789".into()),
            ..GitInfo::default()
        };
        assert_eq!(g.short().as_deref(), Some("0123456"));
        assert!(!g.dirty());
    }
}
