//! The data directory's lock: one `hutong run` per node home.
//!
//! Both engines lock their files (redb its database file, sled its `db` file), but each says
//! so in its own words, and only once the store is being opened. The node takes an advisory
//! lock of its own first, on `LOCK` in the data directory, the same for either engine: a
//! second process started on the same home stops before it touches the store or the signing
//! state, and names the process that holds it. The lock is the operating system's (`flock`),
//! released when the process ends however it ends, so a crashed node leaves no stale lock;
//! the file itself stays, holding the last holder's process id.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::limits::LOCK_FILE_BYTES_MAX;

/// The lock file's name inside the data directory.
pub const LOCK_FILE: &str = "LOCK";

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another process holds {path}{holder}", holder = describe(*pid))]
    Held { path: PathBuf, pid: Option<u32> },
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
}

fn describe(pid: Option<u32>) -> String {
    match pid {
        Some(pid) => format!(" (pid {pid})"),
        None => String::new(),
    }
}

/// The lock on a data directory, held while this value lives.
#[derive(Debug)]
pub struct HomeLock {
    // Never read: holding the open file holds the lock.
    _file: File,
}

impl HomeLock {
    /// Takes the lock on `data_dir/LOCK` without waiting, and writes this process's id into
    /// the file for whoever finds it held.
    pub fn take(data_dir: &Path) -> Result<Self, LockError> {
        let path = data_dir.join(LOCK_FILE);
        let io = |error| LockError::Io {
            path: path.clone(),
            error,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(LockError::Held {
                    pid: holder_pid(&mut file),
                    path,
                });
            }
            Err(TryLockError::Error(error)) => return Err(io(error)),
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(HomeLock { _file: file })
    }
}

/// The process id the holder wrote into the file, if it is there and readable.
fn holder_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.take(LOCK_FILE_BYTES_MAX)
        .read_to_string(&mut text)
        .ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_directory_is_refused_with_the_holders_pid() {
        let dir = tempfile::tempdir().unwrap();
        let first = HomeLock::take(dir.path()).unwrap();
        match HomeLock::take(dir.path()) {
            Err(LockError::Held { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("expected the lock to be held, got {other:?}"),
        }
        drop(first);
        // Released with its holder: taken again at once.
        let again = HomeLock::take(dir.path()).unwrap();
        drop(again);
    }

    #[test]
    fn a_lock_file_of_garbage_is_taken_and_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LOCK_FILE), b"not a pid at all\n").unwrap();
        let lock = HomeLock::take(dir.path()).unwrap();
        let text = std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap();
        assert_eq!(text.trim(), std::process::id().to_string());
        drop(lock);
    }
}
