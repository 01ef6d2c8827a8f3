//! Tolerant CSV reading shared by samples.csv and latency.csv: columns are
//! looked up by name, blank cells are "unknown", and a last line cut short by
//! a kill (no trailing newline) is dropped with a notice instead of failing.

use std::path::Path;

use crate::error::ReportError;

/// A CSV file read as text cells, with its header kept for lookups by name.
#[derive(Debug, Default)]
pub(crate) struct Table {
    headers: Vec<String>,
    rows: Vec<Row>,
}

#[derive(Debug)]
pub(crate) struct Row {
    /// 1-based line number in the file, for error messages.
    pub(crate) line: u64,
    cells: Vec<String>,
}

impl Table {
    /// Reads `path`; `Ok(None)` when it does not exist. Notices about a cut
    /// last line are pushed to `notices`.
    pub(crate) fn read(
        path: &Path,
        notices: &mut Vec<String>,
    ) -> Result<Option<Table>, ReportError> {
        let text = match std::fs::read(path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(ReportError::io(path, e)),
        };
        let name = file_name(path);
        let complete = match text.rfind('\n') {
            // The writer ends every row with a newline: anything after the
            // last one was cut mid-write.
            Some(end) => {
                if end + 1 < text.len() && !text[end + 1..].trim().is_empty() {
                    notices.push(format!("{name} truncated: last row ignored"));
                }
                &text[..=end]
            }
            None => {
                if !text.trim().is_empty() {
                    notices.push(format!("{name} truncated: header incomplete, file ignored"));
                }
                ""
            }
        };
        Self::parse(path, complete).map(Some)
    }

    fn parse(path: &Path, text: &str) -> Result<Table, ReportError> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .from_reader(text.as_bytes());
        let csv_err = |e: csv::Error| ReportError::Csv {
            path: path.to_path_buf(),
            line: e.position().map(|p| p.line()).unwrap_or(0),
            reason: e.to_string(),
        };
        let headers = reader
            .headers()
            .map_err(csv_err)?
            .iter()
            .map(|h| h.trim().to_string())
            .collect();
        let mut rows = Vec::new();
        for record in reader.records() {
            let record = record.map_err(csv_err)?;
            let line = record.position().map(|p| p.line()).unwrap_or(0);
            rows.push(Row {
                line,
                cells: record.iter().map(|c| c.trim().to_string()).collect(),
            });
        }
        Ok(Table { headers, rows })
    }

    pub(crate) fn rows(&self) -> &[Row] {
        &self.rows
    }

    pub(crate) fn column(&self, name: &str) -> Option<usize> {
        self.headers.iter().position(|h| h == name)
    }

    /// Like [`Table::column`] but a missing column is an error naming the file.
    pub(crate) fn require(&self, path: &Path, name: &str) -> Result<usize, ReportError> {
        self.column(name).ok_or_else(|| ReportError::Csv {
            path: path.to_path_buf(),
            line: 1,
            reason: format!("required column `{name}` missing from the header"),
        })
    }
}

impl Row {
    pub(crate) fn text(&self, column: Option<usize>) -> &str {
        column
            .and_then(|c| self.cells.get(c))
            .map(String::as_str)
            .unwrap_or("")
    }

    /// The number in `column`; blank (or an absent column) is `None`, a cell
    /// that is not a number is an error naming file, line and column.
    pub(crate) fn number(
        &self,
        path: &Path,
        column: Option<usize>,
        column_name: &str,
    ) -> Result<Option<f64>, ReportError> {
        let cell = self.text(column);
        if cell.is_empty() {
            return Ok(None);
        }
        match cell.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(Some(v)),
            Ok(_) => Ok(None),
            Err(_) => Err(ReportError::Csv {
                path: path.to_path_buf(),
                line: self.line,
                reason: format!("column `{column_name}`: `{cell}` is not a number"),
            }),
        }
    }
}

pub(crate) fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> (Result<Option<Table>, ReportError>, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("samples.csv");
        std::fs::write(&path, text).unwrap();
        let mut notices = Vec::new();
        (Table::read(&path, &mut notices), notices)
    }

    #[test]
    fn cut_last_line_is_dropped_with_a_notice() {
        let (table, notices) = read("t_s,rss_bytes\n0.0,10\n0.5,2");
        let table = table.unwrap().unwrap();
        assert_eq!(table.rows().len(), 1);
        assert_eq!(notices, vec!["samples.csv truncated: last row ignored"]);
    }

    #[test]
    fn complete_file_has_no_notice_and_blank_is_unknown() {
        let (table, notices) = read("t_s,rss_bytes\n0.0,\n0.5,20\n");
        let table = table.unwrap().unwrap();
        assert!(notices.is_empty());
        let col = table.column("rss_bytes");
        let p = Path::new("samples.csv");
        assert_eq!(table.rows()[0].number(p, col, "rss_bytes").unwrap(), None);
        assert_eq!(
            table.rows()[1].number(p, col, "rss_bytes").unwrap(),
            Some(20.0)
        );
    }

    #[test]
    fn garbage_in_the_middle_names_line_and_column() {
        let (table, _) = read("t_s,rss_bytes\n0.0,1\n0.5,abc\n1.0,3\n");
        let table = table.unwrap().unwrap();
        let col = table.column("rss_bytes");
        let err = table.rows()[1]
            .number(Path::new("samples.csv"), col, "rss_bytes")
            .unwrap_err()
            .to_string();
        assert!(err.contains("samples.csv:3"), "{err}");
        assert!(err.contains("`abc` is not a number"), "{err}");
    }

    #[test]
    fn short_row_in_the_middle_is_an_error_with_its_line() {
        let (table, _) = read("t_s,rss_bytes\n0.0,1\n0.5\n1.0,3\n");
        let err = table.unwrap_err().to_string();
        assert!(err.contains("samples.csv:3"), "{err}");
    }

    #[test]
    fn missing_file_is_none() {
        let mut notices = Vec::new();
        let t = Table::read(Path::new("/nonexistent/x.csv"), &mut notices).unwrap();
        assert!(t.is_none());
    }
}
