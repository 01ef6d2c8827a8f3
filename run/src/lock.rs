//! One writer per run folder. Two clw-cli processes writing the same folder
//! at once interleave rows in latency.csv, cut samples.csv mid-line and
//! replace each other's summary.json without a word; so each command that
//! writes a folder (a load test's `--out`, `merge --out`, `report`, the
//! folder of `gate --update-baseline`'s baseline) holds an advisory lock on
//! it for as long as it writes, and a second one is refused at start.
//!
//! The lock is `flock(2)` on the folder itself (on the directory's own
//! descriptor, through rustix: std's `File::try_lock` is newer than the
//! workspace's MSRV): nothing is left behind in the folder, and
//! the kernel releases it when the process dies, however it dies (`kill
//! -9` included), so a crashed run never blocks the next.

use std::fs::File;

use rustix::fs::{flock, FlockOperation};
use std::path::{Path, PathBuf};

/// Why a folder could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds the folder's lock: it is writing there now.
    #[error(
        "{} is in use by another clw-cli run (it holds the folder's lock): wait for it to finish, or choose another folder",
        path.display()
    )]
    Busy { path: PathBuf },
    /// The folder could not be opened or locked at all.
    #[error("cannot lock {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The held lock on one folder; released when dropped (or when the process
/// ends).
#[derive(Debug)]
pub struct FolderLock {
    _dir: File,
    path: PathBuf,
}

impl FolderLock {
    /// Takes the lock on `dir` (which must exist) without waiting.
    pub fn acquire(dir: &Path) -> Result<FolderLock, LockError> {
        let io = |source| LockError::Io {
            path: dir.to_path_buf(),
            source,
        };
        let handle = File::open(dir).map_err(io)?;
        match flock(&handle, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(FolderLock {
                _dir: handle,
                path: dir.to_path_buf(),
            }),
            Err(rustix::io::Errno::WOULDBLOCK) => Err(LockError::Busy {
                path: dir.to_path_buf(),
            }),
            Err(e) => Err(io(e.into())),
        }
    }

    /// The folder held.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_folder_is_refused_until_its_lock_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let held = FolderLock::acquire(dir.path()).unwrap();
        let err = FolderLock::acquire(dir.path()).unwrap_err();
        assert!(matches!(err, LockError::Busy { .. }), "{err}");
        assert!(
            err.to_string().contains("in use by another clw-cli run"),
            "{err}"
        );
        assert_eq!(held.path(), dir.path());
        drop(held);
        FolderLock::acquire(dir.path()).expect("free again");
        assert!(
            std::fs::read_dir(dir.path()).unwrap().next().is_none(),
            "nothing left behind"
        );
        let missing = FolderLock::acquire(&dir.path().join("nope")).unwrap_err();
        assert!(matches!(missing, LockError::Io { .. }), "{missing}");
    }
}
