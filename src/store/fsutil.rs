//! Durable file operations: the only places hort writes index state.
//!
//! Every file that is part of a commit is written to a temporary name,
//! fsynced, then renamed into place, and the directory is fsynced, so a crash
//! leaves either the old or the new file, never a torn one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
#[cfg(debug_assertions)]
use std::sync::OnceLock;

/// Writes `bytes` to `path` atomically (temp file, fsync, rename, fsync dir).
pub fn atomic_write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = tmp_path(path);
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    fsync_dir(parent_of(path))
}

/// A sibling temporary name for `path` (same directory, so rename is atomic).
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Makes a rename or file creation in `dir` durable.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// An exclusive advisory lock on `<index>/LOCK`, held for the life of a writer.
/// The kernel drops it when the process dies, so a `kill -9` never leaves a
/// stale lock behind.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl DirLock {
    /// Takes the lock or fails at once (a second writer must not wait silently).
    pub fn try_acquire(dir: &Path) -> io::Result<Option<DirLock>> {
        let path = dir.join("LOCK");
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)?;
        // SAFETY: flock on a file descriptor we own; no memory is shared.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Ok(None);
            }
            return Err(err);
        }
        file.set_len(0)?;
        writeln!(file, "{}", std::process::id())?;
        Ok(Some(DirLock { _file: file }))
    }

    /// The pid written by the current holder, for the error message.
    pub fn holder(dir: &Path) -> Option<u32> {
        fs::read_to_string(dir.join("LOCK"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }
}

/// Named points in the commit sequence where tests make the process die,
/// to prove that a crash anywhere leaves a consistent index
/// (`HORT_CRASHPOINT=<name>`). A hook that aborts the process on an
/// environment variable has no place in a release build: there it is
/// compiled to nothing (tests run debug builds).
#[cfg(debug_assertions)]
pub fn crashpoint(name: &str) {
    static POINT: OnceLock<Option<String>> = OnceLock::new();
    let point = POINT.get_or_init(|| std::env::var("HORT_CRASHPOINT").ok());
    if point.as_deref() == Some(name) {
        eprintln!("hort: crashpoint {name} reached, aborting (test hook)");
        std::process::abort();
    }
}

/// Release builds have no crash points.
#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn crashpoint(_name: &str) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_content() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("MANIFEST");
        atomic_write(&p, b"one").unwrap();
        atomic_write(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        // no temporary files are left behind
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn lock_is_exclusive_across_opens() {
        let d = tempfile::tempdir().unwrap();
        let a = DirLock::try_acquire(d.path()).unwrap();
        assert!(a.is_some());
        // flock locks belong to the open file description: a second open conflicts.
        assert!(DirLock::try_acquire(d.path()).unwrap().is_none());
        assert_eq!(DirLock::holder(d.path()), Some(std::process::id()));
        drop(a);
        assert!(DirLock::try_acquire(d.path()).unwrap().is_some());
    }
}
