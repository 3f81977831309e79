//! Content digests of the files the builds can see, hashed in parallel and
//! remembered across runs in `.pipeline/index`, so a no-op run reads no file
//! twice.
//!
//! An index entry is trusted only when the file's size, mtime, ctime and inode
//! all still match. ctime cannot be set by a program (`touch -d` moves mtime,
//! and sets ctime to now), so rewriting a file with the same size and putting
//! its mtime back is still seen. The remaining hole is the one git calls
//! "racily clean": a file changed within the timestamp granularity of the
//! moment it was hashed. Entries whose mtime or ctime is not at least
//! [`SETTLED`] older than the start of the hashing are therefore never stored;
//! such a file is simply read again next time.

use std::collections::HashMap;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rayon::prelude::*;
use sha2::{Digest, Sha256};

/// File name inside the state folder.
const FILE: &str = "index";
/// First line of the file; a different line means an unreadable index,
/// which is discarded (it is only a cache).
const HEADER: &str = "pipeline-index-v1";
/// How old a timestamp must be before an entry is stored (see the module
/// comment); covers filesystems with one-second timestamps.
const SETTLED: Duration = Duration::from_secs(2);

pub(crate) type FileDigest = [u8; 32];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    ino: u64,
}

impl Stat {
    fn of(meta: &std::fs::Metadata) -> Stat {
        Stat {
            size: meta.size(),
            mtime_ns: meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128,
            ctime_ns: meta.ctime() as i128 * 1_000_000_000 + meta.ctime_nsec() as i128,
            ino: meta.ino(),
        }
    }
}

/// The per-repo digest cache.
#[derive(Debug)]
pub(crate) struct FileIndex {
    path: Option<PathBuf>,
    entries: Mutex<HashMap<PathBuf, (Stat, FileDigest)>>,
    changed: Mutex<bool>,
}

impl FileIndex {
    /// The index in `state_dir`; empty when missing or unreadable.
    pub(crate) fn load(state_dir: &Path) -> FileIndex {
        let path = state_dir.join(FILE);
        let entries = std::fs::read_to_string(&path)
            .ok()
            .and_then(|text| parse(&text))
            .unwrap_or_default();
        FileIndex {
            path: Some(path),
            entries: Mutex::new(entries),
            changed: Mutex::new(false),
        }
    }

    /// An index that remembers nothing between runs.
    #[cfg(test)]
    pub(crate) fn in_memory() -> FileIndex {
        FileIndex {
            path: None,
            entries: Mutex::new(HashMap::new()),
            changed: Mutex::new(false),
        }
    }

    /// The digests of `files`, read in parallel; files whose index entry
    /// still matches are not read.
    pub(crate) fn digests(
        &self,
        files: &[PathBuf],
    ) -> Result<HashMap<PathBuf, FileDigest>, HashError> {
        let started = SystemTime::now();
        files
            .par_iter()
            .map(|path| Ok((path.clone(), self.digest(path, started)?)))
            .collect()
    }

    fn digest(&self, path: &Path, started: SystemTime) -> Result<FileDigest, HashError> {
        let error = |source| HashError {
            path: path.to_path_buf(),
            source,
        };
        let mut file = std::fs::File::open(path).map_err(error)?;
        let before = Stat::of(&file.metadata().map_err(error)?);
        if let Some((stat, digest)) = self.lock().get(path)
            && *stat == before
        {
            return Ok(*digest);
        }
        let digest = hash_reader(&mut file).map_err(error)?;
        let after = Stat::of(&file.metadata().map_err(error)?);
        if after == before && settled(&after, started) {
            self.lock().insert(path.to_path_buf(), (after, digest));
            *self.changed.lock().expect("index lock") = true;
        }
        Ok(digest)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, (Stat, FileDigest)>> {
        self.entries.lock().expect("index lock")
    }

    /// Writes the index when it learned something, atomically. Entries of
    /// files that no longer exist are dropped.
    pub(crate) fn save(&self) -> io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        if !*self.changed.lock().expect("index lock") {
            return Ok(());
        }
        let entries = self.lock();
        let mut text = String::with_capacity(entries.len() * 120);
        text.push_str(HEADER);
        text.push('\n');
        let mut sorted: Vec<_> = entries.iter().filter(|(p, _)| p.exists()).collect();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        for (file, (stat, digest)) in sorted {
            let Some(name) = file.to_str().filter(|n| !n.contains(['\t', '\n'])) else {
                continue;
            };
            text.push_str(&format!(
                "{}\t{}\t{}\t{}\t{}\t{name}\n",
                hex::encode(digest),
                stat.size,
                stat.mtime_ns,
                stat.ctime_ns,
                stat.ino
            ));
        }
        crate::report::write_atomic(path, text.as_bytes())
    }
}

/// Both timestamps lie far enough before the hashing started that a later
/// change cannot share them.
fn settled(stat: &Stat, started: SystemTime) -> bool {
    let Ok(limit) = (started - SETTLED).duration_since(UNIX_EPOCH) else {
        return false;
    };
    let limit = limit.as_nanos() as i128;
    stat.mtime_ns < limit && stat.ctime_ns < limit
}

fn parse(text: &str) -> Option<HashMap<PathBuf, (Stat, FileDigest)>> {
    let mut lines = text.lines();
    if lines.next()? != HEADER {
        return None;
    }
    let mut entries = HashMap::new();
    for line in lines {
        let mut f = line.splitn(6, '\t');
        let digest: FileDigest = hex::decode(f.next()?).ok()?.try_into().ok()?;
        let stat = Stat {
            size: f.next()?.parse().ok()?,
            mtime_ns: f.next()?.parse().ok()?,
            ctime_ns: f.next()?.parse().ok()?,
            ino: f.next()?.parse().ok()?,
        };
        entries.insert(PathBuf::from(f.next()?), (stat, digest));
    }
    Some(entries)
}

/// sha256 of everything `reader` yields.
pub(crate) fn hash_reader(reader: &mut impl Read) -> io::Result<FileDigest> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().into())
}

#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub(crate) struct HashError {
    pub(crate) path: PathBuf,
    #[source]
    pub(crate) source: io::Error,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("pipeline-index-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn sha(bytes: &[u8]) -> FileDigest {
        Sha256::digest(bytes).into()
    }

    /// Makes a file look old enough to be stored.
    fn age(path: &Path, secs: u64) {
        let when = SystemTime::now() - Duration::from_secs(secs);
        fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(when)
            .unwrap();
    }

    #[test]
    fn digests_equal_sha256_and_survive_a_reload() {
        let d = dir("reload");
        let files: Vec<PathBuf> = (0..20)
            .map(|i| {
                let p = d.join(format!("f{i}"));
                fs::write(&p, format!("content {i}")).unwrap();
                p
            })
            .collect();
        let index = FileIndex::load(&d.join("state"));
        let got = index.digests(&files).unwrap();
        for (i, p) in files.iter().enumerate() {
            assert_eq!(got[p], sha(format!("content {i}").as_bytes()));
        }
        // Fresh files (ctime is now) are not stored: a same-second change could hide.
        assert!(index.lock().is_empty());
        index.save().unwrap();
        assert!(
            !d.join("state/index").exists(),
            "nothing learned, nothing written"
        );
    }

    #[test]
    fn stored_entries_are_used_and_a_rewrite_is_seen() {
        let d = dir("rewrite");
        let p = d.join("a.txt");
        fs::write(&p, "aaaa").unwrap();
        // ctime cannot be moved back, so store the entry by hand as if the
        // file had been hashed long ago with a stat that still matches.
        let index = FileIndex::load(&d.join("state"));
        let stat = Stat::of(&fs::metadata(&p).unwrap());
        let fake = sha(b"remembered");
        index.lock().insert(p.clone(), (stat, fake));
        *index.changed.lock().unwrap() = true;
        index.save().unwrap();
        let index = FileIndex::load(&d.join("state"));
        assert_eq!(
            index.digests(std::slice::from_ref(&p)).unwrap()[&p],
            fake,
            "a matching entry is trusted (that is what saves the reads)"
        );
        // Same size, same mtime, same inode: only ctime tells.
        let mtime = fs::metadata(&p).unwrap().modified().unwrap();
        fs::write(&p, "bbbb").unwrap();
        fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        let after = Stat::of(&fs::metadata(&p).unwrap());
        assert_eq!(
            (after.size, after.mtime_ns, after.ino),
            (stat.size, stat.mtime_ns, stat.ino)
        );
        assert_eq!(
            index.digests(std::slice::from_ref(&p)).unwrap()[&p],
            sha(b"bbbb")
        );
    }

    #[test]
    fn settled_needs_both_times_old() {
        let now = SystemTime::now();
        let ns = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap().as_nanos() as i128;
        let old = ns(now - Duration::from_secs(10));
        let fresh = ns(now - Duration::from_millis(500));
        let stat = |m, c| Stat {
            size: 1,
            mtime_ns: m,
            ctime_ns: c,
            ino: 1,
        };
        assert!(settled(&stat(old, old), now));
        assert!(!settled(&stat(old, fresh), now));
        assert!(!settled(&stat(fresh, old), now));
        let p = dir("settled").join("x");
        fs::write(&p, "x").unwrap();
        age(&p, 10);
        assert!(
            !settled(&Stat::of(&fs::metadata(&p).unwrap()), now),
            "ctime is now"
        );
    }

    #[test]
    fn a_corrupt_index_is_ignored() {
        let d = dir("corrupt");
        fs::create_dir_all(d.join("state")).unwrap();
        fs::write(d.join("state/index"), "pipeline-index-v1\nnot\ta\tline\n").unwrap();
        let index = FileIndex::load(&d.join("state"));
        assert!(index.lock().is_empty());
    }
}
