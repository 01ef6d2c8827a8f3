//! Tolerant CSV reading shared by samples.csv and latency.csv: columns by
//! name, blank cells unknown, a last row cut off by a kill dropped (and
//! reported) rather than an error.

use std::collections::HashMap;
use std::path::Path;

use crate::error::RunFileError;

/// The bytes up to the last newline, and whether anything followed it.
/// Rows are written and flushed whole, newline last: text after the last
/// newline is a row the writer was killed in the middle of.
pub(crate) fn complete_rows(bytes: &[u8]) -> (&[u8], bool) {
    match bytes.iter().rposition(|&b| b == b'\n') {
        Some(end) if end + 1 < bytes.len() => {
            let tail_blank = bytes[end + 1..].iter().all(u8::is_ascii_whitespace);
            (&bytes[..=end], !tail_blank)
        }
        Some(_) => (bytes, false),
        None => (&bytes[..0], !bytes.iter().all(u8::is_ascii_whitespace)),
    }
}

/// A CSV file read by column name, with errors that name file, line and
/// column. Shared by samples.csv and latency.csv.
pub(crate) struct Table<'a> {
    path: &'a Path,
    index: HashMap<String, usize>,
    reader: csv::Reader<&'a [u8]>,
}

impl<'a> Table<'a> {
    pub(crate) fn new(bytes: &'a [u8], path: &'a Path) -> Result<Table<'a>, RunFileError> {
        // Not flexible: a row with more or fewer cells than the header breaks
        // the contract (a cut-off last row was already set aside).
        let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(bytes);
        let headers = reader.headers().map_err(|e| RunFileError::Parse {
            path: path.to_path_buf(),
            line: 1,
            reason: e.to_string(),
        })?;
        let index = headers
            .iter()
            .enumerate()
            .map(|(i, h)| (h.trim().to_string(), i))
            .collect();
        Ok(Table {
            path,
            index,
            reader,
        })
    }

    pub(crate) fn column(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    pub(crate) fn require(&self, name: &'static str) -> Result<usize, RunFileError> {
        self.column(name)
            .ok_or_else(|| RunFileError::MissingColumn {
                path: self.path.to_path_buf(),
                column: name,
            })
    }

    pub(crate) fn next_record(&mut self) -> Result<Option<csv::StringRecord>, RunFileError> {
        let mut record = csv::StringRecord::new();
        match self.reader.read_record(&mut record) {
            Ok(true) => Ok(Some(record)),
            Ok(false) => Ok(None),
            Err(e) => Err(RunFileError::Parse {
                path: self.path.to_path_buf(),
                line: e.position().map_or(0, |p| p.line()),
                reason: e.to_string(),
            }),
        }
    }

    pub(crate) fn error(&self, record: &csv::StringRecord, reason: String) -> RunFileError {
        RunFileError::Parse {
            path: self.path.to_path_buf(),
            line: record.position().map_or(0, |p| p.line()),
            reason,
        }
    }

    pub(crate) fn text<'r>(&self, record: &'r csv::StringRecord, col: Option<usize>) -> &'r str {
        col.and_then(|c| record.get(c)).map_or("", str::trim)
    }

    /// A number cell; blank or an absent column is `None`.
    pub(crate) fn float(
        &self,
        record: &csv::StringRecord,
        col: Option<usize>,
        name: &str,
    ) -> Result<Option<f64>, RunFileError> {
        let text = self.text(record, col);
        if text.is_empty() {
            return Ok(None);
        }
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(Some(v)),
            _ => Err(self.error(record, format!("column `{name}`: `{text}` is not a number"))),
        }
    }

    /// A count or byte cell. Written as integers; a float (a hand-made
    /// file) is rounded, a negative number is an error.
    pub(crate) fn uint(
        &self,
        record: &csv::StringRecord,
        name: &str,
    ) -> Result<Option<u64>, RunFileError> {
        match self.float(record, self.column(name), name)? {
            None => Ok(None),
            Some(v) if v >= 0.0 => Ok(Some(v.round() as u64)),
            Some(v) => Err(self.error(record, format!("column `{name}`: {v} is negative"))),
        }
    }
}
