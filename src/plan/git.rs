//! What git says about the repo: the commit, the branch, the origin URL and
//! which paths have uncommitted changes. One `git status` per run; a repo
//! that is not a git checkout simply has no commit (templates that need one
//! then fail with a config error). Any other git failure (git missing, a
//! checkout owned by another user, a broken repository) is kept as a
//! `problem` to report: reading it as "not a checkout" would send the user
//! looking for the wrong fix.

use std::path::Path;
use std::process::Command;

#[derive(Debug, Clone, Default)]
pub(crate) struct GitInfo {
    pub(crate) sha: Option<String>,
    pub(crate) branch: Option<String>,
    pub(crate) origin: Option<String>,
    /// Paths (relative to the repo root, `/`-separated) with uncommitted
    /// changes, untracked files included.
    pub(crate) changed: Vec<String>,
    /// Why git could not be read, when it failed for another reason than
    /// "not a git repository" or "no commit yet".
    pub(crate) problem: Option<String>,
}

fn git(root: &Path, args: &[&str]) -> Option<String> {
    run(root, args).ok()
}

/// Runs git; `Err` holds its stderr (or why it could not start).
fn run(root: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    match out.status.success() {
        true => Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string()),
        false => Err(String::from_utf8_lossy(&out.stderr).trim().to_string()),
    }
}

impl GitInfo {
    /// Reads the repo at `root` (the folder of pipeline.yaml).
    pub(crate) fn read(root: &Path) -> GitInfo {
        // `rev-parse --is-inside-work-tree` fails quietly outside a repo and
        // loudly for everything else (e.g. "detected dubious ownership").
        if let Err(stderr) = run(root, &["rev-parse", "--is-inside-work-tree"]) {
            let not_a_repo = stderr.contains("not a git repository");
            return GitInfo {
                problem: (!not_a_repo).then(|| {
                    format!(
                        "git cannot read {}: {}; {{git_sha}}/{{git_short}} tags and the revision label are unavailable",
                        root.display(),
                        stderr.lines().next().unwrap_or("unknown error")
                    )
                }),
                ..GitInfo::default()
            };
        }
        let Some(sha) = git(root, &["rev-parse", "--verify", "-q", "HEAD"]) else {
            return GitInfo::default();
        };
        // Paths from `git status` are relative to the top of the work tree,
        // which may be above the pipeline root.
        let prefix = git(root, &["rev-parse", "--show-prefix"]).unwrap_or_default();
        let (status, problem) = match run(
            root,
            &["status", "--porcelain", "-z", "--untracked-files=all", "."],
        ) {
            Ok(status) => (status, None),
            Err(stderr) => (
                String::new(),
                Some(format!(
                    "git status failed in {}: {}; which files are uncommitted is unknown, so {{git_short}} tags carry no -dirty",
                    root.display(),
                    stderr.lines().next().unwrap_or("unknown error")
                )),
            ),
        };
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
            problem,
        }
    }

    /// The short commit (7 hex), as `git rev-parse --short` prints by default.
    pub(crate) fn short(&self) -> Option<String> {
        self.sha.as_ref().map(|s| s[..7.min(s.len())].to_string())
    }

    pub(crate) fn dirty(&self) -> bool {
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

    #[test]
    fn a_failing_git_status_is_a_problem_not_a_clean_checkout() {
        let dir = std::env::temp_dir().join(format!("pipeline-git-status-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let git = |args: &[&str]| {
            let out = Command::new("git")
                .args(["-c", "user.email=t@t", "-c", "user.name=t"])
                .args(["-c", "commit.gpgsign=false"])
                .args(args)
                .current_dir(&dir)
                .output()
                .unwrap();
            assert!(out.status.success(), "git {args:?}: {out:?}");
        };
        git(&["init", "-q"]);
        std::fs::write(dir.join("a.txt"), "a\n").unwrap();
        git(&["add", "a.txt"]);
        git(&["commit", "-qm", "a"]);
        std::fs::write(dir.join("b.txt"), "uncommitted\n").unwrap();
        let read = GitInfo::read(&dir);
        assert_eq!(
            (read.changed.as_slice(), &read.problem),
            (&["b.txt".to_string()][..], &None)
        );
        // HEAD still reads, the index does not.
        std::fs::write(dir.join(".git/index"), "not an index").unwrap();
        let read = GitInfo::read(&dir);
        assert!(read.sha.is_some());
        let problem = read.problem.expect("git status failed");
        assert!(
            problem.contains("git status failed") && problem.contains("-dirty"),
            "{problem}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
