//! Atomic replacement of output files: each is written to a temporary file
//! in the same directory and renamed over the old one, so a reader (a
//! browser refreshing index.html, a script polling summary.json) sees the
//! old file or the new one, never an empty or half-written one. The one
//! helper for every clw output that is rewritten whole (summary.json here,
//! clw-report's pages and charts); the streaming files (samples.csv,
//! latency.csv, latency.hlog) are appended and flushed instead.

use std::fs::Permissions;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use tempfile::NamedTempFile;

/// A new version of `path` being written beside it, invisible to readers
/// of `path` until [`Staged::commit`]. Dropped uncommitted, it is removed.
pub struct Staged<'a> {
    tmp: NamedTempFile,
    path: &'a Path,
}

impl<'a> Staged<'a> {
    /// A hidden temporary file (`.NAME.XXXXXX.tmp.EXT`, so tools that pick
    /// a format by extension still do) in `path`'s directory: a rename
    /// within one file system is atomic.
    pub fn beside(path: &'a Path) -> io::Result<Staged<'a>> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let suffix = match path.extension() {
            Some(ext) => format!(".tmp.{}", ext.to_string_lossy()),
            None => ".tmp".into(),
        };
        // Readable like a file made by fs::write (umask applies), not the
        // 0600 of a private temporary file: reports are served and shared.
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(&suffix)
            .permissions(Permissions::from_mode(0o666))
            .tempfile_in(dir)?;
        Ok(Staged { tmp, path })
    }

    /// The temporary file's path, for writers that open the file
    /// themselves (plotters' PNG backend).
    pub fn tmp_path(&self) -> &Path {
        self.tmp.path()
    }

    /// The temporary file, to write the new content into.
    pub fn file(&mut self) -> &mut std::fs::File {
        self.tmp.as_file_mut()
    }

    /// Rename the new version over `path`.
    pub fn commit(self) -> io::Result<()> {
        self.tmp.persist(self.path).map(drop).map_err(|e| e.error)
    }
}

/// Replace `path` with `contents` atomically (see the module docs).
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut staged = Staged::beside(path)?;
    staged.file().write_all(contents)?;
    staged.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.json");
        write_atomic(&path, b"{\"a\": 1}").unwrap();
        write_atomic(&path, b"{}").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"{}");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["summary.json"]);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_ne!(mode & 0o044, 0, "group/other may read it: {mode:o}");
    }

    #[test]
    fn an_uncommitted_version_never_reaches_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.html");
        std::fs::write(&path, "old").unwrap();
        {
            let mut staged = Staged::beside(&path).unwrap();
            staged.file().write_all(b"half").unwrap();
        }
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
