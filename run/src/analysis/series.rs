//! samples.csv column by column, with blanks kept as unknowns and a note
//! of a final row cut off mid-write: the one column-of-samples type, which
//! the analysis judges and clw-report charts.

use std::path::Path;

use crate::error::RunFileError;
use crate::samples::{read_samples, MemorySource, SampleRow, SamplesFile};

/// One column of samples, aligned with [`Series::t_s`]; `None` is a blank
/// cell (source absent or scrape failed).
pub type Column = Vec<Option<f64>>;

/// The columns of samples.csv, one entry per row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    pub t_s: Vec<f64>,
    pub rss: Column,
    pub hwm: Column,
    pub cgroup: Column,
    /// The cgroup's working set (`cgroup_working_set_bytes`).
    pub working_set: Column,
    pub allocated: Column,
    /// jemalloc's resident bytes (`resident_bytes`).
    pub resident: Column,
    pub sessions: Column,
    pub evictions: Column,
    /// Requests completed per second in the interval ending at `t_s`.
    pub rps: Column,
    /// Requests failed in that interval.
    pub errors: Column,
    pub logins: Column,
    pub capacity: Column,
    /// Where each row's `rss` came from (samples.csv's `source`).
    pub source: Vec<Option<MemorySource>>,
    /// The final row was incomplete (no trailing newline) and was dropped.
    pub truncated_tail: bool,
}

impl Series {
    pub fn len(&self) -> usize {
        self.t_s.len()
    }

    pub fn is_empty(&self) -> bool {
        self.t_s.is_empty()
    }

    /// "RSS", or "server memory" when some `rss` samples came from another
    /// source ([`crate::samples::memory_noun`]).
    pub fn memory_noun(&self) -> &'static str {
        crate::samples::memory_noun(self.source.iter().flatten().copied())
    }

    /// Where `rss` came from, each source once in order of first
    /// appearance; empty for files written before the `source` column.
    pub fn sources(&self) -> Vec<MemorySource> {
        let mut seen = Vec::new();
        for s in self.source.iter().flatten() {
            if !seen.contains(s) {
                seen.push(*s);
            }
        }
        seen
    }

    /// Reads samples.csv (columns by name, tolerant of a cut-off last row).
    pub fn read(path: &Path) -> Result<Series, RunFileError> {
        read_samples(path).map(|file| Series::from_file(&file))
    }

    pub fn from_file(file: &SamplesFile) -> Series {
        let mut s = Series {
            truncated_tail: file.truncated_tail,
            ..Series::default()
        };
        for r in &file.rows {
            s.push(r);
        }
        s
    }

    /// Appends one sample (the live verdict grows its series this way).
    pub fn push(&mut self, r: &SampleRow) {
        let f = |v: Option<u64>| v.map(|v| v as f64);
        self.t_s.push(r.t_s);
        self.rss.push(f(r.rss_bytes));
        self.hwm.push(f(r.hwm_bytes));
        self.cgroup.push(f(r.cgroup_bytes));
        self.working_set.push(f(r.cgroup_working_set_bytes));
        self.allocated.push(f(r.allocated_bytes));
        self.resident.push(f(r.resident_bytes));
        self.sessions.push(f(r.sessions));
        self.evictions.push(f(r.evictions));
        self.rps.push(r.rps);
        self.errors.push(f(r.errors));
        self.logins.push(f(r.logins));
        self.capacity.push(f(r.capacity));
        self.source.push(r.source);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_become_columns_with_blanks_kept() {
        let file = SamplesFile {
            rows: vec![
                SampleRow {
                    t_s: 0.25,
                    rss_bytes: Some(1000),
                    hwm_bytes: Some(1200),
                    logins: Some(3),
                    resident_bytes: Some(900),
                    rps: Some(12.5),
                    errors: Some(2),
                    source: Some(MemorySource::Proc),
                    ..SampleRow::default()
                },
                SampleRow {
                    t_s: 0.5,
                    ..SampleRow::default()
                },
            ],
            truncated_tail: true,
            blank_t_s_lines: Vec::new(),
        };
        let series = Series::from_file(&file);
        assert_eq!(series.t_s, [0.25, 0.5]);
        assert_eq!(series.rss, [Some(1000.0), None]);
        assert_eq!(series.hwm, [Some(1200.0), None]);
        assert_eq!(series.cgroup, [None, None]);
        assert_eq!(series.logins, [Some(3.0), None]);
        assert_eq!(series.resident, [Some(900.0), None]);
        assert_eq!(series.rps, [Some(12.5), None]);
        assert_eq!(series.errors, [Some(2.0), None]);
        assert_eq!(series.sources(), [MemorySource::Proc]);
        assert!(series.truncated_tail);
    }
}
