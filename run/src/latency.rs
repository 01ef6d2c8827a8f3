//! latency.csv: per-second latency percentiles, one row per step per
//! interval plus an `all` row (docs/run-folder.md).

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::RunFileError;
use crate::summary::Percentiles;
use crate::table::{complete_rows, Table};

/// latency.csv's header, in the documented order.
pub const LATENCY_HEADER: [&str; 12] = [
    "t_s", "step", "count", "p50_ms", "p90_ms", "p99_ms", "max_ms", "cp50_ms", "cp90_ms",
    "cp99_ms", "cmax_ms", "users",
];

/// One row of latency.csv. The `c*` figures are corrected for coordinated
/// omission (open model); `None` in the closed model. Milliseconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LatencyRow {
    /// End of the interval, seconds since load start.
    pub t_s: f64,
    /// A step name, or `all`.
    pub step: String,
    pub count: u64,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub cp50_ms: Option<f64>,
    pub cp90_ms: Option<f64>,
    pub cp99_ms: Option<f64>,
    pub cmax_ms: Option<f64>,
    /// Virtual users running at the interval's end (the same on every row
    /// of an interval); `None` in files written before the column existed.
    pub users: Option<u64>,
}

impl LatencyRow {
    /// A row from the interval's percentiles (`None`: no responses).
    pub fn new(
        t_s: f64,
        step: &str,
        count: u64,
        plain: Option<Percentiles>,
        corrected: Option<Percentiles>,
    ) -> LatencyRow {
        LatencyRow {
            t_s,
            step: step.to_string(),
            count,
            p50_ms: plain.map(|p| p.p50),
            p90_ms: plain.map(|p| p.p90),
            p99_ms: plain.map(|p| p.p99),
            max_ms: plain.map(|p| p.max),
            cp50_ms: corrected.map(|p| p.p50),
            cp90_ms: corrected.map(|p| p.p90),
            cp99_ms: corrected.map(|p| p.p99),
            cmax_ms: corrected.map(|p| p.max),
            users: None,
        }
    }
}

/// latency.csv being written; [`LatencyWriter::flush`] after each interval.
pub struct LatencyWriter {
    path: PathBuf,
    out: csv::Writer<File>,
}

impl LatencyWriter {
    /// Creates the file and writes (and flushes) the header.
    pub fn create(path: &Path) -> Result<LatencyWriter, RunFileError> {
        let file = File::create(path).map_err(RunFileError::write(path))?;
        let mut out = csv::Writer::from_writer(file);
        out.write_record(LATENCY_HEADER)
            .map_err(|e| RunFileError::write(path)(e.into()))?;
        out.flush().map_err(RunFileError::write(path))?;
        Ok(LatencyWriter {
            path: path.to_path_buf(),
            out,
        })
    }

    pub fn write(&mut self, r: &LatencyRow) -> Result<(), RunFileError> {
        let ms = |v: Option<f64>| v.map(|v| format!("{v:.3}")).unwrap_or_default();
        let record = [
            format!("{:.3}", r.t_s),
            r.step.clone(),
            r.count.to_string(),
            ms(r.p50_ms),
            ms(r.p90_ms),
            ms(r.p99_ms),
            ms(r.max_ms),
            ms(r.cp50_ms),
            ms(r.cp90_ms),
            ms(r.cp99_ms),
            ms(r.cmax_ms),
            r.users.map(|u| u.to_string()).unwrap_or_default(),
        ];
        self.out
            .write_record(&record)
            .map_err(|e| RunFileError::write(&self.path)(e.into()))
    }

    pub fn flush(&mut self) -> Result<(), RunFileError> {
        self.out.flush().map_err(RunFileError::write(&self.path))
    }
}

/// latency.csv as read back: every row with a time, and whether a cut-off
/// last row was dropped.
pub fn read_latency(path: &Path) -> Result<(Vec<LatencyRow>, bool), RunFileError> {
    let bytes = crate::bounded::read_table(path)?;
    let (complete, truncated_tail) = complete_rows(&bytes);
    let mut table = Table::new(complete, path)?;
    let t_col = table.require("t_s")?;
    let step_col = table.require("step")?;
    let mut rows = Vec::new();
    while let Some(record) = table.next_record()? {
        // A row without a time cannot be placed on any chart.
        let Some(t_s) = table.float(&record, Some(t_col), "t_s")? else {
            continue;
        };
        let ms = |name: &str| table.float(&record, table.column(name), name);
        rows.push(LatencyRow {
            t_s,
            step: table.text(&record, Some(step_col)).to_string(),
            count: table.uint(&record, "count")?.unwrap_or(0),
            p50_ms: ms("p50_ms")?,
            p90_ms: ms("p90_ms")?,
            p99_ms: ms("p99_ms")?,
            max_ms: ms("max_ms")?,
            cp50_ms: ms("cp50_ms")?,
            cp90_ms: ms("cp90_ms")?,
            cp99_ms: ms("cp99_ms")?,
            cmax_ms: ms("cmax_ms")?,
            users: table.uint(&record, "users")?,
        });
    }
    Ok((rows, truncated_tail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_contract_header_and_blank_unknowns_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("latency.csv");
        let mut w = LatencyWriter::create(&path).unwrap();
        let p = Percentiles {
            p50: 2.0,
            p90: 2.0,
            p99: 2.0,
            p999: 2.0,
            max: 2.0,
        };
        let row = LatencyRow::new(1.0, "login", 1, Some(p), None);
        w.write(&row).unwrap();
        w.flush().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            format!(
                "{}\n1.000,login,1,2.000,2.000,2.000,2.000,,,,,\n",
                LATENCY_HEADER.join(",")
            )
        );
        let (rows, truncated) = read_latency(&path).unwrap();
        assert_eq!((rows, truncated), (vec![row], false));
    }
}
