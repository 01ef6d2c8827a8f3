//! errors.csv: failures per interval by kind (docs/run-folder.md), column
//! by column for the errors chart. Its figures add up to summary.json's
//! `requests.by_error` (and `after_death.by_error`), so the chart and the
//! key figures cannot disagree.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::ReportError;
use crate::samples::Column;

/// Kinds drawn as their own line; the rest are summed as "other kinds".
const MAX_LINES: usize = 6;

/// The errors of one run, interval by interval (the `all` rows' times).
#[derive(Debug, Default)]
pub(crate) struct Errors {
    pub(crate) t_s: Vec<f64>,
    /// Failures of requests sent while the server lived, per kind, most
    /// frequent first (at most [`MAX_LINES`], the rest as "other kinds").
    pub(crate) kinds: Vec<(String, Column)>,
    /// The `all` rows' `errors`: the sum of every kind.
    pub(crate) all: Column,
    /// Failures of requests sent after the server's death, over the run.
    pub(crate) after_death: u64,
}

impl Errors {
    /// Reads `dir/errors.csv` through clw-run; `Ok(None)` when the file is
    /// absent (a run folder written before it existed). A cut-off last row
    /// is a notice.
    pub(crate) fn read(
        dir: &Path,
        notices: &mut Vec<String>,
    ) -> Result<Option<Errors>, ReportError> {
        let path = dir.join(clw_run::files::ERRORS);
        let Some((rows, truncated)) = crate::error::unless_absent(clw_run::read_errors(&path))?
        else {
            return Ok(None);
        };
        if truncated {
            notices.push("errors.csv truncated: last row ignored".into());
        }
        let mut out = Errors::default();
        // Each kind's count at each interval (index into t_s).
        let mut by_kind: BTreeMap<String, BTreeMap<usize, u64>> = BTreeMap::new();
        for r in rows {
            if r.kind == "all" {
                out.after_death += r.after_death;
                out.t_s.push(r.t_s());
                out.all.push(Some(r.errors as f64));
                continue;
            }
            // A kind row belongs to the `all` row before it, of the same time.
            let Some(at) = out.t_s.len().checked_sub(1) else {
                continue;
            };
            if r.errors > 0 {
                *by_kind.entry(r.kind).or_default().entry(at).or_default() += r.errors;
            }
        }
        let mut kinds: Vec<(String, BTreeMap<usize, u64>)> = by_kind.into_iter().collect();
        kinds.sort_by_key(|(_, counts)| std::cmp::Reverse(counts.values().sum::<u64>()));
        if kinds.len() > MAX_LINES {
            let mut other = BTreeMap::new();
            for (_, counts) in kinds.drain(MAX_LINES - 1..) {
                for (at, n) in counts {
                    *other.entry(at).or_default() += n;
                }
            }
            kinds.push(("other kinds".into(), other));
        }
        let n = out.t_s.len();
        out.kinds = kinds
            .into_iter()
            .map(|(kind, counts)| {
                let series = (0..n)
                    .map(|i| Some(counts.get(&i).copied().unwrap_or(0) as f64))
                    .collect();
                (kind, series)
            })
            .collect();
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_become_series_on_the_all_rows_time_axis() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("errors.csv"),
            "t_s,kind,errors,after_death\n1.000,all,0,0\n\
             2.000,all,3,0\n2.000,reset,2,0\n2.000,clw-session-evicted,1,0\n\
             3.000,all,1,500\n3.000,connect,0,500\n3.000,reset,1,0\n",
        )
        .unwrap();
        let e = Errors::read(dir.path(), &mut Vec::new()).unwrap().unwrap();
        assert_eq!(e.t_s, vec![1.0, 2.0, 3.0]);
        assert_eq!(e.all, vec![Some(0.0), Some(3.0), Some(1.0)]);
        assert_eq!(e.after_death, 500);
        let names: Vec<&str> = e.kinds.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            ["reset", "clw-session-evicted"],
            "connect never failed in life"
        );
        assert_eq!(e.kinds[0].1, vec![Some(0.0), Some(2.0), Some(1.0)]);
    }

    #[test]
    fn beyond_six_kinds_the_rarest_are_summed() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::from("t_s,kind,errors,after_death\n1.000,all,36,0\n");
        for i in 1..=8 {
            text.push_str(&format!("1.000,k{i},{i},0\n"));
        }
        std::fs::write(dir.path().join("errors.csv"), text).unwrap();
        let e = Errors::read(dir.path(), &mut Vec::new()).unwrap().unwrap();
        assert_eq!(e.kinds.len(), 6);
        assert_eq!(e.kinds[0].0, "k8");
        assert_eq!(e.kinds[5], ("other kinds".into(), vec![Some(6.0)]));
        let total: f64 = e.kinds.iter().map(|(_, s)| s[0].unwrap()).sum();
        assert_eq!(total, 36.0);
        assert!(Errors::read(&dir.path().join("none"), &mut Vec::new())
            .unwrap()
            .is_none());
    }
}
