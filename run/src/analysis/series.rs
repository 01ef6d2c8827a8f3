//! samples.csv as the columns the analysis uses, with blanks kept as
//! unknowns and a note of a final row cut off mid-write.

use std::path::Path;

use crate::error::RunFileError;
use crate::samples::{read_samples, MemorySource, SampleRow, SamplesFile};

/// The sample columns the analysis uses, one entry per row; `None` is a
/// blank cell (source absent or scrape failed).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    pub t_s: Vec<f64>,
    pub rss: Vec<Option<f64>>,
    pub hwm: Vec<Option<f64>>,
    pub cgroup: Vec<Option<f64>>,
    /// The cgroup's working set (`cgroup_working_set_bytes`).
    pub working_set: Vec<Option<f64>>,
    pub allocated: Vec<Option<f64>>,
    pub sessions: Vec<Option<f64>>,
    pub evictions: Vec<Option<f64>>,
    pub logins: Vec<Option<f64>>,
    pub capacity: Vec<Option<f64>>,
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
        self.sessions.push(f(r.sessions));
        self.evictions.push(f(r.evictions));
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
        assert!(series.truncated_tail);
    }
}
