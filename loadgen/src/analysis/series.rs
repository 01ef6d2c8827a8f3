//! samples.csv read back into columns, tolerant of what a killed run leaves:
//! blank cells (unknown figures) and a final row cut off mid-write.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The sample columns the analysis uses, one entry per row; `None` is a
/// blank cell (source absent or scrape failed).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Series {
    pub(crate) t_s: Vec<f64>,
    pub(crate) rss: Vec<Option<f64>>,
    pub(crate) hwm: Vec<Option<f64>>,
    pub(crate) cgroup: Vec<Option<f64>>,
    pub(crate) allocated: Vec<Option<f64>>,
    pub(crate) sessions: Vec<Option<f64>>,
    pub(crate) evictions: Vec<Option<f64>>,
    pub(crate) logins: Vec<Option<f64>>,
    /// The final row was incomplete (no trailing newline) and was dropped.
    pub(crate) truncated_tail: bool,
}

impl Series {
    pub(crate) fn len(&self) -> usize {
        self.t_s.len()
    }
}

/// Why samples.csv could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AnalysisError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: line {line}: {reason}")]
    Parse {
        path: PathBuf,
        line: u64,
        reason: String,
    },
    #[error("{path}: no `{column}` column in the header")]
    MissingColumn { path: PathBuf, column: &'static str },
}

/// Read samples.csv, looking columns up by name (columns may be appended or
/// missing; a missing one reads as all blank, except `t_s`, which is needed).
pub(crate) fn read_samples(path: &Path) -> Result<Series, AnalysisError> {
    let bytes = std::fs::read(path).map_err(|source| AnalysisError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_samples(&bytes, path)
}

pub(crate) fn parse_samples(bytes: &[u8], path: &Path) -> Result<Series, AnalysisError> {
    // Rows are written and flushed whole, newline last: text after the last
    // newline is a row the writer was killed in the middle of.
    let (complete, truncated_tail) = match bytes.iter().rposition(|&b| b == b'\n') {
        Some(end) if end + 1 < bytes.len() => (&bytes[..=end], true),
        Some(_) => (bytes, false),
        None => (&bytes[..0], !bytes.is_empty()),
    };
    let parse_err = |line: u64, reason: String| AnalysisError::Parse {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(complete);
    let headers = reader
        .headers()
        .map_err(|e| parse_err(1, e.to_string()))?
        .clone();
    let index: HashMap<&str, usize> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| (h.trim(), i))
        .collect();
    let t_col = *index
        .get("t_s")
        .ok_or_else(|| AnalysisError::MissingColumn {
            path: path.to_path_buf(),
            column: "t_s",
        })?;
    let mut series = Series {
        truncated_tail,
        ..Series::default()
    };
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            parse_err(line, e.to_string())
        })?;
        let line = record.position().map_or(0, |p| p.line());
        let cell = |name: &'static str| -> Result<Option<f64>, AnalysisError> {
            let Some(&i) = index.get(name) else {
                return Ok(None);
            };
            match record.get(i).map(str::trim) {
                None | Some("") => Ok(None),
                Some(text) => text
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .map(Some)
                    .ok_or_else(|| {
                        parse_err(line, format!("column `{name}`: `{text}` is not a number"))
                    }),
            }
        };
        let t = match record.get(t_col).map(str::trim) {
            Some(text) if !text.is_empty() => text
                .parse::<f64>()
                .map_err(|_| parse_err(line, format!("column `t_s`: `{text}` is not a number")))?,
            _ => return Err(parse_err(line, "`t_s` is blank".into())),
        };
        series.t_s.push(t);
        series.rss.push(cell("rss_bytes")?);
        series.hwm.push(cell("hwm_bytes")?);
        series.cgroup.push(cell("cgroup_bytes")?);
        series.allocated.push(cell("allocated_bytes")?);
        series.sessions.push(cell("sessions")?);
        series.evictions.push(cell("evictions")?);
        series.logins.push(cell("logins")?);
    }
    Ok(series)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "t_s,rss_bytes,hwm_bytes,cgroup_bytes,allocated_bytes,active_bytes,resident_bytes,sessions,evictions,rps,errors,logins\n";

    #[test]
    fn reads_columns_by_name_with_blanks() {
        let text = format!("{HEADER}0.250,1000,1200,,500,,,3,0,10.0,0,3\n0.500,,,,,,,,,,,\n");
        let series = parse_samples(text.as_bytes(), Path::new("samples.csv")).unwrap();
        assert_eq!(series.t_s, [0.25, 0.5]);
        assert_eq!(series.rss, [Some(1000.0), None]);
        assert_eq!(series.hwm, [Some(1200.0), None]);
        assert_eq!(series.cgroup, [None, None]);
        assert_eq!(series.logins, [Some(3.0), None]);
        assert!(!series.truncated_tail);
    }

    #[test]
    fn reordered_and_missing_columns() {
        let text = "logins,t_s,rss_bytes,extra\n5,1.0,42,x\n";
        let series = parse_samples(text.as_bytes(), Path::new("s.csv")).unwrap();
        assert_eq!(
            (series.t_s[0], series.rss[0], series.logins[0]),
            (1.0, Some(42.0), Some(5.0))
        );
        assert_eq!(series.allocated, [None]);
    }

    #[test]
    fn truncated_final_line_is_dropped_and_reported() {
        let text = format!("{HEADER}0.250,1000,1200,,500,,,3,0,10.0,0,3\n0.500,10");
        let series = parse_samples(text.as_bytes(), Path::new("s.csv")).unwrap();
        assert_eq!(series.len(), 1);
        assert!(series.truncated_tail);
    }

    #[test]
    fn bad_cell_names_line_and_column() {
        let text = format!("{HEADER}0.250,lots,,,,,,,,,,\n");
        let err = parse_samples(text.as_bytes(), Path::new("run/samples.csv")).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("run/samples.csv: line 2") && msg.contains("rss_bytes"),
            "{msg}"
        );
        let err = parse_samples(b"rss_bytes\n1\n", Path::new("s.csv")).unwrap_err();
        assert!(matches!(
            err,
            AnalysisError::MissingColumn { column: "t_s", .. }
        ));
    }
}
