//! errors.csv: failed requests per 1 s interval by error kind, with the
//! failures of requests sent after the server's death counted apart
//! (docs/run-folder.md). One `all` row per interval, written even when
//! nothing failed, so the file alone gives the time axis of the errors
//! chart; a row per kind that failed in that interval.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::RunFileError;
use crate::table::{complete_rows, Table};

/// errors.csv's header, in the documented order.
pub const ERRORS_HEADER: [&str; 4] = ["t_s", "kind", "errors", "after_death"];

/// One row of errors.csv.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorsRow {
    /// End of the interval, seconds since load start (written with 3
    /// decimals, read back as written).
    pub t_ms: u64,
    /// An error kind as `requests.by_error` names it, or `all`.
    pub kind: String,
    /// Failures of requests sent while the server lived.
    pub errors: u64,
    /// Failures of requests sent after the server died.
    pub after_death: u64,
}

impl ErrorsRow {
    /// The interval's end in seconds.
    pub fn t_s(&self) -> f64 {
        self.t_ms as f64 / 1000.0
    }
}

/// errors.csv being written; [`ErrorsWriter::flush`] after each interval.
pub struct ErrorsWriter {
    path: PathBuf,
    out: csv::Writer<File>,
}

impl ErrorsWriter {
    /// Creates the file and writes (and flushes) the header.
    pub fn create(path: &Path) -> Result<ErrorsWriter, RunFileError> {
        let file = File::create(path).map_err(RunFileError::write(path))?;
        let mut out = csv::Writer::from_writer(file);
        out.write_record(ERRORS_HEADER)
            .map_err(|e| RunFileError::write(path)(e.into()))?;
        out.flush().map_err(RunFileError::write(path))?;
        Ok(ErrorsWriter {
            path: path.to_path_buf(),
            out,
        })
    }

    pub fn write(&mut self, r: &ErrorsRow) -> Result<(), RunFileError> {
        let record = [
            format!("{}.{:03}", r.t_ms / 1000, r.t_ms % 1000),
            r.kind.clone(),
            r.errors.to_string(),
            r.after_death.to_string(),
        ];
        self.out
            .write_record(&record)
            .map_err(|e| RunFileError::write(&self.path)(e.into()))
    }

    pub fn flush(&mut self) -> Result<(), RunFileError> {
        self.out.flush().map_err(RunFileError::write(&self.path))
    }
}

/// errors.csv as read back: every row with a time, and whether a cut-off
/// last row was dropped.
pub fn read_errors(path: &Path) -> Result<(Vec<ErrorsRow>, bool), RunFileError> {
    let bytes = crate::bounded::read_table(path)?;
    let (complete, truncated_tail) = complete_rows(&bytes);
    let mut table = Table::new(complete, path)?;
    let t_col = table.require("t_s")?;
    let kind_col = table.require("kind")?;
    let mut rows = Vec::new();
    while let Some(record) = table.next_record()? {
        let Some(t_s) = table.float(&record, Some(t_col), "t_s")? else {
            continue;
        };
        if t_s < 0.0 {
            return Err(table.error(&record, format!("column `t_s`: {t_s} is negative")));
        }
        rows.push(ErrorsRow {
            t_ms: (t_s * 1000.0).round() as u64,
            kind: table.text(&record, Some(kind_col)).to_string(),
            errors: table.uint(&record, "errors")?.unwrap_or(0),
            after_death: table.uint(&record, "after_death")?.unwrap_or(0),
        });
    }
    Ok((rows, truncated_tail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_contract_header_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("errors.csv");
        let mut w = ErrorsWriter::create(&path).unwrap();
        let rows = [
            ErrorsRow {
                t_ms: 1000,
                kind: "all".into(),
                errors: 0,
                after_death: 0,
            },
            ErrorsRow {
                t_ms: 2500,
                kind: "connect".into(),
                errors: 3,
                after_death: 40,
            },
        ];
        for r in &rows {
            w.write(r).unwrap();
        }
        w.flush().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "t_s,kind,errors,after_death\n1.000,all,0,0\n2.500,connect,3,40\n"
        );
        let (back, truncated) = read_errors(&path).unwrap();
        assert_eq!((back, truncated), (rows.to_vec(), false));
    }

    #[test]
    fn a_cut_last_row_is_dropped_and_columns_are_read_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("errors.csv");
        std::fs::write(&path, "kind,t_s,errors\nall,1.0,2\nconn").unwrap();
        let (rows, truncated) = read_errors(&path).unwrap();
        assert!(truncated);
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].t_ms, rows[0].errors, rows[0].after_death),
            (1000, 2, 0)
        );
    }
}
