//! latency.csv: per-second latency percentiles, per step and for `all`.

use std::path::Path;

use crate::error::ReportError;
use crate::samples::Series;
use crate::table::Table;

/// The `all` rows of latency.csv (the whole load per interval), column by
/// column, plus the request count per step for when summary.json is missing.
#[derive(Debug, Default)]
pub(crate) struct Latency {
    pub(crate) t_s: Vec<f64>,
    pub(crate) count: Series,
    pub(crate) p50: Series,
    pub(crate) p90: Series,
    pub(crate) p99: Series,
    pub(crate) max: Series,
    pub(crate) cp50: Series,
    pub(crate) cp90: Series,
    pub(crate) cp99: Series,
    pub(crate) cmax: Series,
    /// Step names in order of first appearance, without `all`.
    pub(crate) steps: Vec<String>,
}

const COLUMNS: [&str; 9] = [
    "count", "p50_ms", "p90_ms", "p99_ms", "max_ms", "cp50_ms", "cp90_ms", "cp99_ms", "cmax_ms",
];

impl Latency {
    /// Reads `dir/latency.csv`; `Ok(None)` when the file is absent.
    pub(crate) fn read(
        dir: &Path,
        notices: &mut Vec<String>,
    ) -> Result<Option<Latency>, ReportError> {
        let path = dir.join("latency.csv");
        let Some(table) = Table::read(&path, notices)? else {
            return Ok(None);
        };
        let t_col = table.require(&path, "t_s")?;
        let step_col = table.require(&path, "step")?;
        let cols: Vec<Option<usize>> = COLUMNS.iter().map(|n| table.column(n)).collect();
        let mut out = Latency::default();
        for row in table.rows() {
            let step = row.text(Some(step_col));
            if step != "all" {
                if !step.is_empty() && !out.steps.iter().any(|s| s == step) {
                    out.steps.push(step.to_string());
                }
                continue;
            }
            let Some(t) = row.number(&path, Some(t_col), "t_s")? else {
                continue;
            };
            out.t_s.push(t);
            let mut values = Vec::with_capacity(COLUMNS.len());
            for (name, col) in COLUMNS.iter().zip(&cols) {
                values.push(row.number(&path, *col, name)?);
            }
            let targets = [
                &mut out.count,
                &mut out.p50,
                &mut out.p90,
                &mut out.p99,
                &mut out.max,
                &mut out.cp50,
                &mut out.cp90,
                &mut out.cp99,
                &mut out.cmax,
            ];
            for (target, value) in targets.into_iter().zip(values) {
                target.push(value);
            }
        }
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_all_rows_and_lists_steps() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("latency.csv"),
            "t_s,step,count,p50_ms,p90_ms,p99_ms,max_ms,cp50_ms,cp90_ms,cp99_ms,cmax_ms\n\
             1.0,login,5,1,2,3,4,,,,\n1.0,all,5,1,2,3,4,,,,\n2.0,validate,6,1,1,1,1,,,,\n2.0,all,6,1.5,2,3,9,2,3,4,10\n",
        )
        .unwrap();
        let l = Latency::read(dir.path(), &mut Vec::new()).unwrap().unwrap();
        assert_eq!(l.t_s, vec![1.0, 2.0]);
        assert_eq!(l.steps, vec!["login", "validate"]);
        assert_eq!(l.max, vec![Some(4.0), Some(9.0)]);
        assert_eq!(l.cp99, vec![None, Some(4.0)]);
    }
}
