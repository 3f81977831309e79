//! The build context: which files the build can see, their hash, and the tar
//! stream sent to the engine.
//!
//! The listing is made once and serves both the input digest and the tar, so
//! the two cannot disagree about what the build sees. The tar is written on a
//! blocking thread into a bounded channel and streamed to the engine, so a
//! large context is never held in memory. As the Docker CLI does, the
//! Dockerfile and `.dockerignore` are always sent, owners are root, and
//! symlinks are sent as symlinks, never followed.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::Stream;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use walkdir::WalkDir;

use dockerfile::DockerIgnore;
use dockerfile::Sources;

use crate::plan::index::FileDigest;

/// The name the Dockerfile gets in the tar when it lies outside the context.
const OUTSIDE_DOCKERFILE: &str = ".pipeline.Dockerfile";

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    Dir,
    File { executable: bool, size: u64 },
    Symlink { target: String },
}

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// Path inside the context (and the tar), `/`-separated.
    pub(crate) path: String,
    /// Where the bytes come from.
    pub(crate) source: PathBuf,
    pub(crate) kind: Kind,
    pub(crate) mode: u32,
    pub(crate) mtime: u64,
}

/// What one build can see.
#[derive(Debug, Clone)]
pub(crate) struct Listing {
    pub(crate) entries: Vec<Entry>,
    /// The context's `.dockerignore`, to tell whether a path (even one that
    /// no longer exists) is something the build would see.
    pub(crate) ignore: Arc<DockerIgnore>,
    /// What the Dockerfile's `COPY`/`ADD` can reach, when narrower than the
    /// whole context.
    pub(crate) reach: Option<Arc<Sources>>,
    /// The Dockerfile's path inside the tar (the engine's `dockerfile` parameter).
    pub(crate) dockerfile: String,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ContextError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: {message}")]
    DockerIgnore { path: PathBuf, message: String },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> ContextError + '_ {
    move |source| ContextError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Listing {
    /// Lists the context `context` (absolute) after its `.dockerignore`,
    /// with `dockerfile` (absolute) always included. `state_dir` (the tool's
    /// `.pipeline/`) is never part of a context. With `reach`, only what the
    /// Dockerfile's `COPY`/`ADD` sources can reach is listed (and the folders
    /// above it); a symlink on the way to a source makes it list everything,
    /// since the builder would follow it.
    pub(crate) fn read(
        context: &Path,
        dockerfile: &Path,
        state_dir: &Path,
        reach: Option<Sources>,
    ) -> Result<Listing, ContextError> {
        // A `<Dockerfile>.dockerignore` next to the Dockerfile replaces the
        // context's `.dockerignore` for this build, as Docker does
        // (https://docs.docker.com/build/concepts/context/#filename-and-location).
        let own_ignore = {
            let mut name = dockerfile.as_os_str().to_owned();
            name.push(".dockerignore");
            PathBuf::from(name)
        };
        let own = own_ignore.is_file();
        let ignore_path = match own {
            true => own_ignore.clone(),
            false => context.join(".dockerignore"),
        };
        let ignore = match std::fs::read_to_string(&ignore_path) {
            Ok(text) => {
                DockerIgnore::parse(&text).map_err(|message| ContextError::DockerIgnore {
                    path: ignore_path.clone(),
                    message,
                })?
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => DockerIgnore::default(),
            Err(e) => return Err(io_error(&ignore_path)(e)),
        };
        let dockerfile_rel = dockerfile
            .strip_prefix(context)
            .ok()
            .map(|p| p.to_string_lossy().replace('\\', "/"));
        let own_rel = own
            .then(|| own_ignore.strip_prefix(context).ok())
            .flatten()
            .map(|p| p.to_string_lossy().replace('\\', "/"));
        let always = |rel: &str| {
            rel == ".dockerignore"
                || dockerfile_rel.as_deref() == Some(rel)
                || own_rel.as_deref() == Some(rel)
        };

        let (mut entries, reach) = match reach {
            Some(sources) => match walk(context, state_dir, &ignore, &always, Some(&sources))? {
                Some(entries) => (entries, Some(Arc::new(sources))),
                None => (
                    walk(context, state_dir, &ignore, &always, None)?.unwrap_or_default(),
                    None,
                ),
            },
            None => (
                walk(context, state_dir, &ignore, &always, None)?.unwrap_or_default(),
                None,
            ),
        };
        if own {
            // The tar's `.dockerignore` holds the rules this build used, so
            // an engine that applies the tar's `.dockerignore` again (the
            // classic builder, BuildKit's frontend) keeps what we kept.
            entries.retain(|e| e.path != ".dockerignore");
            entries.push(entry(&own_ignore, ".dockerignore".into())?);
            entries.sort_by(|a, b| walk_order(&a.path, &b.path));
        }
        // The Dockerfile is sent as a file even when it is a symlink (to a
        // file elsewhere in the repo): the builder reads it from the tar and
        // cannot follow a link out of it.
        let dockerfile_in_tar = match dockerfile_rel {
            Some(rel) => {
                entries.retain(|e| e.path != rel);
                entries.push(followed(dockerfile, rel.clone())?);
                entries.sort_by(|a, b| walk_order(&a.path, &b.path));
                rel
            }
            None => {
                entries.push(followed(dockerfile, OUTSIDE_DOCKERFILE.into())?);
                OUTSIDE_DOCKERFILE.into()
            }
        };
        Ok(Listing {
            entries,
            ignore: Arc::new(ignore),
            reach,
            dockerfile: dockerfile_in_tar,
        })
    }

    /// Whether the build would see `rel` (a path inside the context, which
    /// need not exist any more).
    pub(crate) fn sees(&self, rel: &str) -> bool {
        !self.ignore.excludes(rel) && self.reach.as_ref().is_none_or(|r| r.includes(rel))
    }

    /// The files whose contents the input digest covers.
    pub(crate) fn files(&self) -> impl Iterator<Item = &Path> {
        self.entries
            .iter()
            .filter(|e| matches!(e.kind, Kind::File { .. }))
            .map(|e| e.source.as_path())
    }

    /// The size of the tar stream [`Listing::into_tar_stream`] writes: a
    /// 512-byte header per entry (two for a GNU long name), file data padded
    /// to 512 bytes, and the two zero blocks at the end.
    pub(crate) fn tar_bytes(&self) -> u64 {
        let block = |n: u64| n.div_ceil(512) * 512;
        let entries: u64 = self
            .entries
            .iter()
            .map(|e| {
                let name = e.path.len() as u64 + u64::from(e.kind == Kind::Dir);
                let long_name = if name > 100 { 512 + block(name + 1) } else { 0 };
                let long_link = match &e.kind {
                    Kind::Symlink { target } if target.len() > 100 => {
                        512 + block(target.len() as u64 + 1)
                    }
                    _ => 0,
                };
                let data = match e.kind {
                    Kind::File { size, .. } => block(size),
                    _ => 0,
                };
                512 + long_name + long_link + data
            })
            .sum();
        entries + 1024
    }

    /// Feeds the listing into `hasher`: paths, kinds, the executable bit,
    /// link targets and each file's content digest (from `digests`, which
    /// holds every file of [`Listing::files`]); never times or owners.
    pub(crate) fn hash_into(&self, hasher: &mut Sha256, digests: &HashMap<PathBuf, FileDigest>) {
        for e in &self.entries {
            let (tag, extra): (&[u8], &[u8]) = match &e.kind {
                Kind::Dir => (b"d", b""),
                Kind::Symlink { target } => (b"l", target.as_bytes()),
                Kind::File { executable, .. } => (
                    if *executable { b"x" } else { b"f" },
                    &digests[&e.source][..],
                ),
            };
            hasher.update(tag);
            hasher.update((e.path.len() as u64).to_le_bytes());
            hasher.update(e.path.as_bytes());
            hasher.update((extra.len() as u64).to_le_bytes());
            hasher.update(extra);
        }
    }

    /// The context as a tar stream, written on a blocking thread.
    pub(crate) fn into_tar_stream(
        self,
    ) -> impl Stream<Item = Result<Bytes, io::Error>> + Send + 'static {
        let (tx, rx) = mpsc::channel::<Result<Bytes, io::Error>>(8);
        tokio::task::spawn_blocking(move || {
            let writer = ChannelWriter {
                tx: tx.clone(),
                buf: Vec::with_capacity(CHUNK),
            };
            if let Err(e) = write_tar(&self, writer) {
                let _ = tx.blocking_send(Err(e));
            }
        });
        tokio_stream::wrappers::ReceiverStream::new(rx)
    }
}

/// The entries of `context` after `ignore` (and `reach`, when given).
/// `None` when `reach` meets a symlink on the way to a source.
fn walk(
    context: &Path,
    state_dir: &Path,
    ignore: &DockerIgnore,
    always: &dyn Fn(&str) -> bool,
    reach: Option<&Sources>,
) -> Result<Option<Vec<Entry>>, ContextError> {
    let walker = WalkDir::new(context)
        .follow_links(false)
        .sort_by_file_name()
        .min_depth(1)
        .into_iter()
        .filter_entry(|e| {
            if e.path() == state_dir {
                return false;
            }
            let rel = rel_path(context, e.path());
            !(e.file_type().is_dir()
                && (ignore.skips_dir(&rel) || reach.is_some_and(|r| !r.may_contain(&rel))))
        });
    // (entry, only listed as the folder above something reached)
    let mut listed: Vec<(Entry, bool)> = Vec::new();
    for item in walker {
        let item = item.map_err(|e| {
            let path = e.path().unwrap_or(context).to_path_buf();
            ContextError::Io {
                path,
                source: e.into(),
            }
        })?;
        let rel = rel_path(context, item.path());
        if ignore.excludes(&rel) && !always(&rel) {
            continue;
        }
        let mut above = false;
        if let Some(reach) = reach {
            let on_the_way = reach.may_contain(&rel);
            if item.path_is_symlink() && (on_the_way || reach.includes(&rel)) {
                return Ok(None);
            }
            if !reach.includes(&rel) && !always(&rel) {
                if !(item.file_type().is_dir() && on_the_way) {
                    continue;
                }
                above = true;
            }
        }
        listed.push((entry(item.path(), rel)?, above));
    }
    let reached: Vec<&str> = listed
        .iter()
        .filter(|(_, above)| !above)
        .map(|(e, _)| e.path.as_str())
        .collect();
    let keep: Vec<bool> = listed
        .iter()
        .map(|(e, above)| {
            !above || {
                let prefix = format!("{}/", e.path);
                reached.iter().any(|p| p.starts_with(&prefix))
            }
        })
        .collect();
    Ok(Some(
        listed
            .into_iter()
            .zip(keep)
            .filter(|(_, keep)| *keep)
            .map(|((e, _), _)| e)
            .collect(),
    ))
}

fn rel_path(context: &Path, path: &Path) -> String {
    path.strip_prefix(context)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

fn entry(path: &Path, rel: String) -> Result<Entry, ContextError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = std::fs::symlink_metadata(path).map_err(io_error(path))?;
    let mode = meta.permissions().mode() & 0o7777;
    let kind = if meta.file_type().is_symlink() {
        let target = std::fs::read_link(path).map_err(io_error(path))?;
        Kind::Symlink {
            target: target.to_string_lossy().into_owned(),
        }
    } else if meta.is_dir() {
        Kind::Dir
    } else {
        Kind::File {
            executable: mode & 0o111 != 0,
            size: meta.len(),
        }
    };
    Ok(Entry {
        path: rel,
        source: path.to_path_buf(),
        kind,
        mode,
        mtime: meta.mtime().max(0) as u64,
    })
}

/// `path` as an entry, following a symlink to the file it names.
fn followed(path: &Path, rel: String) -> Result<Entry, ContextError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = std::fs::metadata(path).map_err(io_error(path))?;
    let mode = meta.permissions().mode() & 0o7777;
    Ok(Entry {
        path: rel,
        source: path.to_path_buf(),
        kind: Kind::File {
            executable: mode & 0o111 != 0,
            size: meta.len(),
        },
        mode,
        mtime: meta.mtime().max(0) as u64,
    })
}

/// The order of the walk (sorted by file name, depth first), so that a
/// folder comes before what it holds: compares path components.
fn walk_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.split('/').cmp(b.split('/'))
}

/// A file's bytes, exactly as many as its tar header announced: a file
/// that shrank since its size was read fails the build naming it, rather
/// than leaving a torn tar entry; one that grew is cut at that size.
struct Exact<R> {
    inner: R,
    left: u64,
    path: PathBuf,
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let max = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{} shrank by {} bytes while it was sent to the engine; run again once it is written",
                    self.path.display(),
                    self.left
                ),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

const CHUNK: usize = 64 * 1024;

/// An `io::Write` that hands 64 KiB chunks to the async side.
struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes, io::Error>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the engine stopped reading the context",
            )
        })
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

fn write_tar<W: Write>(listing: &Listing, writer: W) -> io::Result<()> {
    let mut tar = tar::Builder::new(writer);
    tar.follow_symlinks(false);
    for e in &listing.entries {
        let mut header = tar::Header::new_gnu();
        header.set_mode(e.mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(e.mtime);
        match &e.kind {
            Kind::Dir => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                tar.append_data(&mut header, format!("{}/", e.path), io::empty())?;
            }
            Kind::Symlink { target } => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                tar.append_link(&mut header, &e.path, target)?;
            }
            Kind::File { .. } => {
                let file = std::fs::File::open(&e.source)?;
                // The size is taken now: a file that changed since the listing
                // is sent as it is now, never as a torn tar entry.
                let size = file.metadata()?.len();
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(size);
                let exact = Exact {
                    inner: file,
                    left: size,
                    path: e.source.clone(),
                };
                tar.append_data(&mut header, &e.path, exact)?;
            }
        }
    }
    let mut writer = tar.into_inner()?;
    writer.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::index::FileIndex;
    use std::fs;

    fn tree(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("pipeline-context-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("src/deep")).unwrap();
        fs::write(dir.join("Dockerfile"), "FROM scratch\nCOPY . /\n").unwrap();
        fs::write(dir.join("src/a.txt"), "a").unwrap();
        fs::write(dir.join("src/deep/b.txt"), "b").unwrap();
        fs::write(dir.join("secret.env"), "TOKEN=x").unwrap();
        dir
    }

    fn paths(l: &Listing) -> Vec<&str> {
        l.entries.iter().map(|e| e.path.as_str()).collect()
    }

    fn digest(l: &Listing) -> String {
        let files: Vec<PathBuf> = l.files().map(Path::to_path_buf).collect();
        let digests = FileIndex::in_memory().digests(&files).unwrap();
        let mut h = Sha256::new();
        l.hash_into(&mut h, &digests);
        hex::encode(h.finalize())
    }

    #[test]
    fn dockerignore_applies_but_dockerfile_is_always_sent() {
        let dir = tree("ignore");
        fs::write(
            dir.join(".dockerignore"),
            "secret.env\nsrc/deep\nDockerfile\n",
        )
        .unwrap();
        let l = Listing::read(&dir, &dir.join("Dockerfile"), &dir.join(".pipeline"), None).unwrap();
        assert_eq!(
            paths(&l),
            [".dockerignore", "Dockerfile", "src", "src/a.txt"]
        );
        assert_eq!(l.dockerfile, "Dockerfile");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn state_dir_and_outside_dockerfile() {
        let dir = tree("state");
        fs::create_dir_all(dir.join(".pipeline/logs")).unwrap();
        fs::write(dir.join(".pipeline/results.json"), "{}").unwrap();
        let l = Listing::read(
            &dir.join("src"),
            &dir.join("Dockerfile"),
            &dir.join(".pipeline"),
            None,
        )
        .unwrap();
        assert_eq!(
            paths(&l),
            ["a.txt", "deep", "deep/b.txt", OUTSIDE_DOCKERFILE]
        );
        assert_eq!(l.dockerfile, OUTSIDE_DOCKERFILE);
        let l = Listing::read(&dir, &dir.join("Dockerfile"), &dir.join(".pipeline"), None).unwrap();
        assert!(!paths(&l).iter().any(|p| p.starts_with(".pipeline")));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn hash_sees_content_mode_and_links_not_mtime() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tree("hash");
        let read =
            || Listing::read(&dir, &dir.join("Dockerfile"), &dir.join(".pipeline"), None).unwrap();
        let d0 = digest(&read());
        let f = dir.join("src/a.txt");
        fs::File::options()
            .write(true)
            .open(&f)
            .unwrap()
            .set_modified(std::time::SystemTime::UNIX_EPOCH)
            .unwrap();
        assert_eq!(digest(&read()), d0, "mtime must not count");
        fs::write(&f, "A").unwrap();
        let d1 = digest(&read());
        assert_ne!(d1, d0, "content counts");
        fs::set_permissions(&f, fs::Permissions::from_mode(0o755)).unwrap();
        let d2 = digest(&read());
        assert_ne!(d2, d1, "the executable bit counts");
        std::os::unix::fs::symlink("a.txt", dir.join("src/link")).unwrap();
        let d3 = digest(&read());
        assert_ne!(d3, d2);
        fs::remove_file(dir.join("src/link")).unwrap();
        std::os::unix::fs::symlink("deep/b.txt", dir.join("src/link")).unwrap();
        assert_ne!(digest(&read()), d3, "the link target counts");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reach_lists_what_copy_can_read_and_the_folders_above_it() {
        let dir = tree("reach");
        for (path, text) in [
            (
                "services/a/Dockerfile",
                "FROM scratch\nCOPY libs/common /lib\nCOPY services/a/ /app\n",
            ),
            ("services/a/main.txt", "a"),
            ("services/b/Dockerfile", "FROM scratch\n"),
            ("services/b/main.txt", "b"),
            ("libs/common/c.txt", "c"),
            ("libs/other/o.txt", "o"),
        ] {
            fs::create_dir_all(dir.join(path).parent().unwrap()).unwrap();
            fs::write(dir.join(path), text).unwrap();
        }
        let dockerfile = dir.join("services/a/Dockerfile");
        let reach = || match dockerfile::reach(
            &fs::read_to_string(&dockerfile).unwrap(),
            &Default::default(),
            None,
        ) {
            dockerfile::Reach::Sources(s) => Some(s),
            dockerfile::Reach::All { why } => panic!("{why}"),
        };
        let l = Listing::read(&dir, &dockerfile, &dir.join(".pipeline"), reach()).unwrap();
        assert_eq!(
            paths(&l),
            [
                "libs",
                "libs/common",
                "libs/common/c.txt",
                "services",
                "services/a",
                "services/a/Dockerfile",
                "services/a/main.txt"
            ]
        );
        assert!(l.sees("services/a/new.txt") && !l.sees("services/b/main.txt"));
        // A symlink on the way to a source is followed by the builder: send everything.
        std::os::unix::fs::symlink("../libs/other", dir.join("libs/common/other")).unwrap();
        let l = Listing::read(&dir, &dockerfile, &dir.join(".pipeline"), reach()).unwrap();
        assert!(l.reach.is_none());
        assert!(paths(&l).contains(&"services/b/main.txt"));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_dockerfile_symlink_is_sent_as_the_file_it_names() {
        use futures::TryStreamExt;
        let dir = tree("dockerfile-link");
        fs::create_dir_all(dir.join("docker")).unwrap();
        fs::write(
            dir.join("docker/app.Dockerfile"),
            "FROM scratch\nCOPY src /\n",
        )
        .unwrap();
        fs::remove_file(dir.join("Dockerfile")).unwrap();
        std::os::unix::fs::symlink("docker/app.Dockerfile", dir.join("Dockerfile")).unwrap();
        let l = Listing::read(&dir, &dir.join("Dockerfile"), &dir.join(".pipeline"), None).unwrap();
        let entry = l.entries.iter().find(|e| e.path == "Dockerfile").unwrap();
        assert!(
            matches!(entry.kind, Kind::File { size: 24, .. }),
            "{entry:?}"
        );
        let paths: Vec<&str> = paths(&l);
        let mut sorted = paths.clone();
        sorted.sort_by(|a, b| walk_order(a, b));
        assert_eq!(paths, sorted, "the walk's order");
        let bytes: Vec<u8> = l
            .into_tar_stream()
            .try_collect::<Vec<Bytes>>()
            .await
            .unwrap()
            .concat();
        let mut archive = tar::Archive::new(&bytes[..]);
        let mut found = false;
        for e in archive.entries().unwrap() {
            let mut e = e.unwrap();
            if e.path().unwrap().to_str() == Some("Dockerfile") {
                assert_eq!(e.header().entry_type(), tar::EntryType::Regular);
                let mut text = String::new();
                e.read_to_string(&mut text).unwrap();
                assert_eq!(text, "FROM scratch\nCOPY src /\n");
                found = true;
            }
        }
        assert!(found);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_that_shrinks_while_it_is_sent_fails_naming_it() {
        let mut exact = Exact {
            inner: &b"abc"[..],
            left: 5,
            path: PathBuf::from("services/a/big.bin"),
        };
        let mut out = Vec::new();
        let e = std::io::copy(&mut exact, &mut out).unwrap_err();
        assert!(
            e.to_string()
                .contains("services/a/big.bin shrank by 2 bytes"),
            "{e}"
        );
        let mut grown = Exact {
            inner: &b"abcdef"[..],
            left: 4,
            path: PathBuf::from("x"),
        };
        let mut out = Vec::new();
        std::io::copy(&mut grown, &mut out).unwrap();
        assert_eq!(out, b"abcd", "cut at the announced size");
    }

    #[tokio::test]
    async fn tar_stream_holds_the_listing() {
        use futures::TryStreamExt;
        let dir = tree("tar");
        std::os::unix::fs::symlink("/etc/passwd", dir.join("src/abs-link")).unwrap();
        let long = "d".repeat(120);
        fs::create_dir_all(dir.join("src").join(&long)).unwrap();
        fs::write(dir.join("src").join(&long).join("f.txt"), "x".repeat(700)).unwrap();
        let l = Listing::read(&dir, &dir.join("Dockerfile"), &dir.join(".pipeline"), None).unwrap();
        let expected = l.tar_bytes();
        let chunks: Vec<Bytes> = l.into_tar_stream().try_collect().await.unwrap();
        let bytes: Vec<u8> = chunks.concat();
        assert_eq!(
            bytes.len() as u64,
            expected,
            "tar_bytes predicts the stream"
        );
        let mut archive = tar::Archive::new(&bytes[..]);
        let mut seen = Vec::new();
        for e in archive.entries().unwrap() {
            let e = e.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            assert_eq!(e.header().uid().unwrap(), 0);
            if path == "src/abs-link" {
                assert_eq!(e.header().entry_type(), tar::EntryType::Symlink);
                assert_eq!(
                    e.link_name().unwrap().unwrap().to_str(),
                    Some("/etc/passwd")
                );
            }
            seen.push(path);
        }
        assert!(seen.contains(&"src/deep/b.txt".to_string()), "{seen:?}");
        assert!(seen.contains(&"src/".to_string()), "{seen:?}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
