//! samples.csv: the memory and cache time series (docs/run-folder.md), read
//! through clw-run and kept column by column for the charts.

use std::path::Path;

use clw_run::MemorySource;

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
    /// Where the server's memory (`rss`) came from, each source once in
    /// order of first appearance; empty for files written before the
    /// `source` column.
    pub(crate) sources: Vec<MemorySource>,
}

impl Samples {
    /// Reads `dir/samples.csv` through clw-run; `Ok(None)` when the file is
    /// absent. A cut-off last row and rows without a time are notices.
    pub(crate) fn read(
        dir: &Path,
        notices: &mut Vec<String>,
    ) -> Result<Option<Samples>, ReportError> {
        let path = dir.join(clw_run::files::SAMPLES);
        let Some(file) = crate::error::unless_absent(clw_run::read_samples(&path))? else {
            return Ok(None);
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
            if let Some(source) = r.source.filter(|s| !out.sources.contains(s)) {
                out.sources.push(source);
            }
        }
        Ok(Some(out))
    }

    /// The legend of the server-memory curve, naming its source: "RSS
    /// (from proc)", "server memory (from prometheus)"; plain "RSS" for a
    /// file that does not say.
    pub(crate) fn memory_label(&self) -> String {
        let what = self.memory_noun();
        if self.sources.is_empty() {
            return what.into();
        }
        let from: Vec<&str> = self.sources.iter().map(|s| s.as_str()).collect();
        format!("{what} (from {})", from.join(", "))
    }

    /// What the server-memory column holds: "RSS" when every sample came
    /// from /proc (or the file does not say), else "server memory" (a
    /// cgroup's working set, a Prometheus query, a chosen series), so no
    /// page calls a container's working set its RSS.
    pub(crate) fn memory_noun(&self) -> &'static str {
        clw_run::memory_noun(self.sources.iter().copied())
    }

    /// The best single memory series for overlays and peaks: the server's
    /// memory (named by [`Samples::memory_noun`]), else the cgroup's usage,
    /// else jemalloc's resident, else allocated bytes.
    pub(crate) fn primary_memory(&self) -> Option<(&'static str, &Series)> {
        [
            (self.memory_noun(), &self.rss),
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
    fn the_memory_curve_is_labelled_with_its_source() {
        let dir = tempfile::tempdir().unwrap();
        let read = |text: &str| {
            std::fs::write(dir.path().join("samples.csv"), text).unwrap();
            Samples::read(dir.path(), &mut Vec::new()).unwrap().unwrap()
        };
        assert_eq!(read("t_s,rss_bytes\n0,1\n").memory_label(), "RSS");
        let proc = read("t_s,rss_bytes,source\n0,1,proc\n0.5,,\n");
        assert_eq!(proc.memory_label(), "RSS (from proc)");
        let prom = read("t_s,rss_bytes,source\n0,1,prometheus\n0.5,2,prometheus\n");
        assert_eq!(prom.memory_label(), "server memory (from prometheus)");
        assert_eq!(prom.primary_memory().unwrap().0, "server memory");
        assert_eq!(proc.primary_memory().unwrap().0, "RSS");
        let mixed = read("t_s,rss_bytes,source\n0,1,cgroup\n0.5,2,metrics\n1,3,cgroup\n");
        assert_eq!(mixed.memory_label(), "server memory (from cgroup, metrics)");
    }

    #[test]
    fn missing_t_s_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("samples.csv"), "rss_bytes\n1\n").unwrap();
        let err = Samples::read(dir.path(), &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("`t_s`"), "{err}");
    }
}
