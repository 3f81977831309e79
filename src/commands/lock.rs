//! One run at a time per checkout: `.pipeline/lock`, made with `O_EXCL`,
//! names its holder (pid, host, since when, which command). A second run
//! waits for it, saying who holds it, or with `--no-wait` exits 3. A lock
//! whose holder is a process that no longer exists on this host (killed,
//! crashed) is taken over, so nothing can block the next run for good. The
//! lock is removed when its holder ends, Ctrl-C included.
//!
//! Runs on other machines (two CI jobs on one commit) do not share a
//! `.pipeline/`; the registry is where they meet, and the executor makes
//! them agree there (see `execute`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Who holds the lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Holder {
    pid: u32,
    host: String,
    /// RFC 3339.
    since: String,
    command: String,
}

/// The lock, held until dropped.
pub(crate) struct Lock {
    path: PathBuf,
    pid: u32,
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown-host".into())
}

/// Whether process `pid` exists on this host.
fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

impl Lock {
    /// Takes the lock of the state folder `state`, waiting for its holder
    /// (unless `wait` is false: exit 3 then).
    pub(crate) async fn take(state: &Path, command: &str, wait: bool) -> Result<Lock, Error> {
        let path = state.join("lock");
        let me = Holder {
            pid: std::process::id(),
            host: hostname(),
            since: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            command: command.to_string(),
        };
        let mut said = false;
        loop {
            match Lock::create(&path, &me) {
                Ok(lock) => return Ok(lock),
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                    return Err(Error::Environment(format!(
                        "taking the lock {}: {e}",
                        path.display()
                    )));
                }
                Err(_) => {}
            }
            let holder: Option<Holder> = std::fs::read(&path)
                .ok()
                .and_then(|bytes| serde_json::from_slice(&bytes).ok());
            // Unreadable: half-written by a holder that is starting (look
            // again), or left so by one that died right then (stale after
            // a few seconds).
            match holder {
                None if older_than_5s(&path) => {
                    if remove_stale(&path, None)? {
                        eprintln!(
                            "took over {}: it named no holder and was older than 5 s",
                            path.display()
                        );
                    }
                    continue;
                }
                None => {}
                Some(h) if h.host == me.host && !alive(h.pid) => {
                    if remove_stale(&path, Some(&h))? {
                        eprintln!(
                            "took over {}: its holder (pid {}, {} since {}) is gone",
                            path.display(),
                            h.pid,
                            h.command,
                            h.since
                        );
                    }
                    continue;
                }
                Some(h) => {
                    let who = format!(
                        "`pipeline {}` (pid {} on {}, since {})",
                        h.command, h.pid, h.host, h.since
                    );
                    if !wait {
                        return Err(Error::Environment(format!(
                            "another run holds {}: {who}; wait for it (run without --no-wait), or remove the file if that run is gone",
                            path.display()
                        )));
                    }
                    if !said {
                        eprintln!("waiting for {who} to release {}", path.display());
                        said = true;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn create(path: &Path, me: &Holder) -> std::io::Result<Lock> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)?;
        let written = serde_json::to_vec(me)
            .map_err(std::io::Error::other)
            .and_then(|json| file.write_all(&json));
        if let Err(e) = written {
            let _ = std::fs::remove_file(path);
            return Err(e);
        }
        Ok(Lock {
            path: path.to_path_buf(),
            pid: me.pid,
        })
    }
}

/// Whether the file at `path` was last written more than 5 s ago.
fn older_than_5s(path: &Path) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > Duration::from_secs(5)))
}

/// Removes the lock at `path` if it still is the stale one a taker saw:
/// the lock of the dead holder `seen`, or (None) one that names no holder.
/// Returns whether it did.
///
/// Two takers may see the same stale lock; the first removes it and takes
/// the lock, and the second must not then remove that new, live lock. So
/// the look and the removal happen under `lock.takeover`, made with
/// `O_EXCL`: whoever holds it reads the lock again and removes it only if
/// it is unchanged. A takeover file older than 5 s belongs to a taker that
/// died in those few instructions, and is removed.
fn remove_stale(path: &Path, seen: Option<&Holder>) -> Result<bool, Error> {
    let guard = path.with_extension("takeover");
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&guard)
    {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            // Another taker is at it: look again shortly.
            if older_than_5s(&guard) {
                let _ = std::fs::remove_file(&guard);
            }
            return Ok(false);
        }
        Err(e) => {
            return Err(Error::Environment(format!(
                "taking over the lock {}: {e}",
                path.display()
            )));
        }
    }
    let now: Option<Holder> = std::fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    // Unreadable and fresh is a holder still writing it, not the one seen.
    let unchanged =
        path.exists() && now.as_ref() == seen && (seen.is_some() || older_than_5s(path));
    if unchanged {
        let _ = std::fs::remove_file(path);
    }
    let _ = std::fs::remove_file(&guard);
    Ok(unchanged)
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Removed only while it is still ours.
        let ours = std::fs::read(&self.path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Holder>(&b).ok())
            .is_some_and(|h| h.pid == self.pid);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_taker_waits_or_refuses_and_a_dead_holder_is_replaced() {
        let dir = std::env::temp_dir().join(format!("pipeline-lock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let first = Lock::take(&dir, "run", true).await.unwrap();
        let e = Lock::take(&dir, "run", false)
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("another run holds") && e.contains("`pipeline run` (pid"),
            "{e}"
        );
        // A waiting taker gets it once the holder lets go.
        let waiting = tokio::spawn({
            let dir = dir.clone();
            async move { Lock::take(&dir, "build", true).await.map(|_| ()) }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!waiting.is_finished());
        drop(first);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        // A lock whose holder is gone is taken over.
        let dead = Holder {
            pid: u32::MAX - 1,
            host: hostname(),
            since: "2026-01-01T00:00:00Z".into(),
            command: "run".into(),
        };
        std::fs::write(dir.join("lock"), serde_json::to_vec(&dead).unwrap()).unwrap();
        let taken = Lock::take(&dir, "run", false).await.unwrap();
        drop(taken);
        assert!(!dir.join("lock").exists(), "released on drop");
        // One that names no holder: being written (fresh), or abandoned.
        let file = std::fs::File::create(dir.join("lock")).unwrap();
        let waiting = tokio::spawn({
            let dir = dir.clone();
            async move { Lock::take(&dir, "run", true).await.map(|_| ()) }
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            !waiting.is_finished(),
            "a fresh empty lock is being written"
        );
        file.set_modified(std::time::SystemTime::now() - Duration::from_secs(10))
            .unwrap();
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn two_takers_of_one_dead_lock_do_not_both_get_it() {
        let dir = std::env::temp_dir().join(format!("pipeline-lock-race-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let dead = Holder {
            pid: u32::MAX - 1,
            host: hostname(),
            since: "2026-01-01T00:00:00Z".into(),
            command: "run".into(),
        };
        for round in 0..40 {
            std::fs::write(dir.join("lock"), serde_json::to_vec(&dead).unwrap()).unwrap();
            let start = std::sync::Arc::new(std::sync::Barrier::new(6));
            let takers: Vec<_> = (0..6)
                .map(|_| {
                    let (dir, start) = (dir.clone(), start.clone());
                    std::thread::spawn(move || {
                        let runtime = tokio::runtime::Builder::new_current_thread()
                            .enable_time()
                            .build()
                            .unwrap();
                        start.wait();
                        // Held until every taker has tried.
                        runtime.block_on(Lock::take(&dir, "run", false)).ok()
                    })
                })
                .collect();
            let held: Vec<Lock> = takers
                .into_iter()
                .filter_map(|t| t.join().unwrap())
                .collect();
            assert_eq!(held.len(), 1, "round {round}: {} holders", held.len());
            drop(held);
            assert!(!dir.join("lock").exists(), "round {round}: released");
            assert!(!dir.join("lock.takeover").exists(), "round {round}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
