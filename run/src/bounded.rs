//! Reading run-folder files that other jobs wrote, in bounded memory. A
//! shared CI runner's run folder may hold anything: `samples.csv` linked to
//! /dev/zero (an endless read), a FIFO for `summary.json` (a read that
//! never returns), a 10 GB `latency.hlog`. Every reader of clw-run opens
//! its file here: regular files only, not through a symbolic link, and no
//! larger than a cap stated per kind of file; anything else is an error
//! naming the file, which clw-cli turns into exit 2.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::RunFileError;

/// The largest summary.json or baseline read: far above any real one
/// (tens of KiB), far below what would hurt.
pub const JSON_CAP: u64 = 16 << 20;

/// The largest CSV (samples.csv, latency.csv, errors.csv) or latency.hlog
/// read: a day-long run at one row per step per second is a few hundred
/// MiB at most.
pub const TABLE_CAP: u64 = 512 << 20;

/// `path` opened for reading if it is a regular file: not a FIFO, a
/// device, a directory, or a symbolic link (the last component is opened
/// with `O_NOFOLLOW`). Opened non-blocking, so a FIFO cannot hang the
/// open; checked on the opened handle, so the file cannot be swapped
/// between a check and the read. The one way clw-run opens a file another
/// job may have written (read or copied).
pub fn open_regular(path: &Path) -> Result<File, RunFileError> {
    let invalid = |message: String| RunFileError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => invalid(
                "is a symbolic link: run-folder files are read only as regular files".into(),
            ),
            _ => RunFileError::Read {
                path: path.to_path_buf(),
                source: e,
            },
        })?;
    let meta = file.metadata().map_err(RunFileError::read(path))?;
    if !meta.is_file() {
        return Err(invalid(
            "is not a regular file (a FIFO, device or directory): run-folder files must be regular files"
                .into(),
        ));
    }
    Ok(file)
}

/// The whole file at `path`, opened by [`open_regular`], refused if it is
/// larger than `cap` bytes (or grows past it while being read).
pub fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>, RunFileError> {
    let invalid = |message: String| RunFileError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let file = open_regular(path)?;
    let meta = file.metadata().map_err(RunFileError::read(path))?;
    if meta.len() > cap {
        return Err(invalid(format!(
            "is {} bytes, larger than the {} bytes a run-folder file of this kind may be",
            meta.len(),
            cap
        )));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(RunFileError::read(path))?;
    if bytes.len() as u64 > cap {
        return Err(invalid(format!(
            "grew past the {cap} bytes a run-folder file of this kind may be while being read"
        )));
    }
    Ok(bytes)
}

/// The largest heap profile file (`heap/*.pb.gz`): real ones are a few
/// hundred KiB gzipped.
pub const PROFILE_CAP: u64 = 64 << 20;

/// The largest a heap profile may inflate to (file or served body): real
/// ones are a few MiB; a gzip bomb stops here.
pub const PROFILE_INFLATED_CAP: u64 = 256 << 20;

/// The longest line of a CSV or latency.hlog: a real row is under 1 KiB
/// and an hlog interval line a few KiB; a single "line" of hundreds of MiB
/// (random bytes, no newline) is refused before any parser buffers it.
pub const LINE_CAP: usize = 1 << 20;

/// The largest histogram an hlog interval may decode to (its V2 payload,
/// after inflating): a real one is tens of KiB. The header's claimed
/// length is checked against what is actually there, so a 100-byte line
/// claiming a 2 GB payload allocates nothing.
pub const HISTOGRAM_CAP: usize = 8 << 20;

/// A CSV or latency.hlog, read as [`read_capped`] with [`TABLE_CAP`],
/// refused if any line is longer than [`LINE_CAP`] (the error names the
/// file and the line).
pub fn read_table(path: &Path) -> Result<Vec<u8>, RunFileError> {
    let bytes = read_capped(path, TABLE_CAP)?;
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.len() > LINE_CAP {
            return Err(RunFileError::Parse {
                path: path.to_path_buf(),
                line: i as u64 + 1,
                reason: format!(
                    "line is {} bytes, longer than the {LINE_CAP} bytes a run-folder line may be",
                    line.len()
                ),
            });
        }
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_past_the_cap_is_refused_naming_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("latency.csv");
        let mut body = b"t_s\n1\n".to_vec();
        body.extend(std::iter::repeat_n(b'x', LINE_CAP + 1));
        body.push(b'\n');
        std::fs::write(&file, &body).unwrap();
        let err = read_table(&file).unwrap_err().to_string();
        assert!(
            err.contains("latency.csv:3:") && err.contains("longer than"),
            "{err}"
        );
        body.truncate(4 + 2 + LINE_CAP);
        std::fs::write(&file, &body).unwrap();
        assert!(read_table(&file).is_ok());
    }

    #[test]
    fn only_regular_files_within_the_cap_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("samples.csv");
        std::fs::write(&file, "t_s\n1\n").unwrap();
        assert_eq!(read_capped(&file, 100).unwrap(), b"t_s\n1\n");
        let err = read_capped(&file, 3).unwrap_err().to_string();
        assert!(err.contains("larger than the 3 bytes"), "{err}");

        let zero = dir.path().join("zero.csv");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let err = read_capped(&zero, TABLE_CAP).unwrap_err().to_string();
        assert!(
            err.contains("symbolic link") && err.contains("zero.csv"),
            "{err}"
        );

        let fifo = dir.path().join("summary.json");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo(3) on a path in our own temporary directory.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let err = read_capped(&fifo, JSON_CAP).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");

        let missing = read_capped(&dir.path().join("absent"), 10).unwrap_err();
        assert!(
            matches!(&missing, RunFileError::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound),
            "{missing}"
        );
    }
}
