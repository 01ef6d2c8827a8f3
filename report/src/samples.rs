//! samples.csv: the memory and cache time series (docs/run-folder.md), read
//! through clw-run and kept column by column for the charts.

use std::path::Path;

use clw_run::RunFileError;

use crate::error::ReportError;

/// One column of samples.csv, aligned with [`Samples::t_s`]; `None` = unknown.
pub(crate) type Series = Vec<Option<f64>>;

/// The samples of one run, column by column.
#[derive(Debug, Default)]
pub(crate) struct Samples {
    pub(crate) t_s: Vec<f64>,
    pub(crate) rss: Series,
    pub(crate) cgroup: Series,
    pub(crate) allocated: Series,
    pub(crate) resident: Series,
    pub(crate) sessions: Series,
    pub(crate) evictions: Series,
    pub(crate) rps: Series,
    pub(crate) errors: Series,
}

impl Samples {
    /// Reads `dir/samples.csv` through clw-run; `Ok(None)` when the file is
    /// absent. A cut-off last row and rows without a time are notices.
    pub(crate) fn read(
        dir: &Path,
        notices: &mut Vec<String>,
    ) -> Result<Option<Samples>, ReportError> {
        let path = dir.join(clw_run::files::SAMPLES);
        let file = match clw_run::read_samples(&path) {
            Ok(file) => file,
            Err(RunFileError::Read { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                return Ok(None)
            }
            Err(e) => return Err(e.into()),
        };
        if file.truncated_tail {
            notices.push("samples.csv truncated: last row ignored".into());
        }
        for line in &file.blank_t_s_lines {
            // A sample without a time cannot be placed on any chart.
            notices.push(format!("samples.csv:{line}: blank t_s, row ignored"));
        }
        let bytes = |v: Option<u64>| v.map(|v| v as f64);
        let mut out = Samples::default();
        for r in &file.rows {
            out.t_s.push(r.t_s);
            out.rss.push(bytes(r.rss_bytes));
            out.cgroup.push(bytes(r.cgroup_bytes));
            out.allocated.push(bytes(r.allocated_bytes));
            out.resident.push(bytes(r.resident_bytes));
            out.sessions.push(bytes(r.sessions));
            out.evictions.push(bytes(r.evictions));
            out.rps.push(r.rps);
            out.errors.push(bytes(r.errors));
        }
        Ok(Some(out))
    }

    /// The best single memory series for overlays and peaks: RSS, else the
    /// cgroup's usage, else jemalloc's resident, else allocated bytes.
    pub(crate) fn primary_memory(&self) -> Option<(&'static str, &Series)> {
        [
            ("RSS", &self.rss),
            ("cgroup usage", &self.cgroup),
            ("jemalloc resident", &self.resident),
            ("jemalloc allocated", &self.allocated),
        ]
        .into_iter()
        .find(|(_, s)| s.iter().any(Option::is_some))
    }
}

/// The largest known value of a series.
pub(crate) fn peak(series: &Series) -> Option<f64> {
    series.iter().flatten().copied().reduce(f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_columns_by_name_in_any_order_and_extra_columns() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("samples.csv"),
            "rss_bytes,t_s,future_col,sessions\n100,0.5,x,3\n,1.0,y,\n",
        )
        .unwrap();
        let mut notices = Vec::new();
        let s = Samples::read(dir.path(), &mut notices).unwrap().unwrap();
        assert_eq!(s.t_s, vec![0.5, 1.0]);
        assert_eq!(s.rss, vec![Some(100.0), None]);
        assert_eq!(s.sessions, vec![Some(3.0), None]);
        assert_eq!(s.cgroup, vec![None, None], "absent column is unknown");
        assert_eq!(peak(&s.rss), Some(100.0));
        assert_eq!(s.primary_memory().unwrap().0, "RSS");
    }

    #[test]
    fn missing_t_s_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("samples.csv"), "rss_bytes\n1\n").unwrap();
        let err = Samples::read(dir.path(), &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("`t_s`"), "{err}");
    }
}
