//! samples.csv for the charts: clw-run's column-of-samples type
//! ([`Series`], the one the verdict's analysis reads too), read with the
//! report's notices, and the names the charts give its memory columns.

use std::path::Path;

pub(crate) use clw_run::analysis::{Column, Series};

use crate::error::ReportError;

/// Reads `dir/samples.csv` through clw-run; `Ok(None)` when the file is
/// absent. A cut-off last row and rows without a time are notices.
pub(crate) fn read(dir: &Path, notices: &mut Vec<String>) -> Result<Option<Series>, ReportError> {
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
    Ok(Some(Series::from_file(&file)))
}

/// The legend of the server-memory curve, naming its source: "RSS (from
/// proc)", "server memory (from prometheus)"; plain "RSS" for a file that
/// does not say.
pub(crate) fn memory_label(s: &Series) -> String {
    let what = s.memory_noun();
    let sources = s.sources();
    if sources.is_empty() {
        return what.into();
    }
    let from: Vec<&str> = sources.iter().map(|s| s.as_str()).collect();
    format!("{what} (from {})", from.join(", "))
}

/// The best single memory column for overlays and peaks: the server's
/// memory (named by [`Series::memory_noun`]), else the cgroup's usage, else
/// jemalloc's resident, else allocated bytes.
pub(crate) fn primary_memory(s: &Series) -> Option<(&'static str, &Column)> {
    [
        (s.memory_noun(), &s.rss),
        ("cgroup usage", &s.cgroup),
        ("jemalloc resident", &s.resident),
        ("jemalloc allocated", &s.allocated),
    ]
    .into_iter()
    .find(|(_, c)| c.iter().any(Option::is_some))
}

/// The largest known value of a column.
pub(crate) fn peak(column: &Column) -> Option<f64> {
    column.iter().flatten().copied().reduce(f64::max)
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
        let s = read(dir.path(), &mut notices).unwrap().unwrap();
        assert_eq!(s.t_s, vec![0.5, 1.0]);
        assert_eq!(s.rss, vec![Some(100.0), None]);
        assert_eq!(s.sessions, vec![Some(3.0), None]);
        assert_eq!(s.cgroup, vec![None, None], "absent column is unknown");
        assert_eq!(peak(&s.rss), Some(100.0));
        assert_eq!(primary_memory(&s).unwrap().0, "RSS");
    }

    #[test]
    fn the_memory_curve_is_labelled_with_its_source() {
        let dir = tempfile::tempdir().unwrap();
        let read = |text: &str| {
            std::fs::write(dir.path().join("samples.csv"), text).unwrap();
            super::read(dir.path(), &mut Vec::new()).unwrap().unwrap()
        };
        assert_eq!(memory_label(&read("t_s,rss_bytes\n0,1\n")), "RSS");
        let proc = read("t_s,rss_bytes,source\n0,1,proc\n0.5,,\n");
        assert_eq!(memory_label(&proc), "RSS (from proc)");
        let prom = read("t_s,rss_bytes,source\n0,1,prometheus\n0.5,2,prometheus\n");
        assert_eq!(memory_label(&prom), "server memory (from prometheus)");
        assert_eq!(primary_memory(&prom).unwrap().0, "server memory");
        assert_eq!(primary_memory(&proc).unwrap().0, "RSS");
        let mixed = read("t_s,rss_bytes,source\n0,1,cgroup\n0.5,2,metrics\n1,3,cgroup\n");
        assert_eq!(memory_label(&mixed), "server memory (from cgroup, metrics)");
    }

    #[test]
    fn missing_t_s_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("samples.csv"), "rss_bytes\n1\n").unwrap();
        let err = read(dir.path(), &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("`t_s`"), "{err}");
    }
}
