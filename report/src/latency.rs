//! latency.csv: per-second latency percentiles, per step and for `all`.

use std::path::Path;

use crate::error::ReportError;
use crate::samples::Column;

/// The `all` rows of latency.csv (the whole load per interval), column by
/// column, plus the request count per step for when summary.json is missing.
#[derive(Debug, Default)]
pub(crate) struct Latency {
    pub(crate) t_s: Vec<f64>,
    pub(crate) count: Column,
    /// Requests per second of each interval: `count` over the interval's
    /// length (from the previous row's end), so the series integrates to
    /// the requests counted: summary.json's `requests.total`.
    pub(crate) rps: Column,
    pub(crate) p50: Column,
    pub(crate) p90: Column,
    pub(crate) p99: Column,
    pub(crate) max: Column,
    pub(crate) cp50: Column,
    pub(crate) cp90: Column,
    pub(crate) cp99: Column,
    pub(crate) cmax: Column,
    /// Step names in order of first appearance, without `all`.
    pub(crate) steps: Vec<String>,
}

impl Latency {
    /// Reads `dir/latency.csv` through clw-run; `Ok(None)` when the file is
    /// absent. A cut-off last row is a notice.
    pub(crate) fn read(
        dir: &Path,
        notices: &mut Vec<String>,
    ) -> Result<Option<Latency>, ReportError> {
        let path = dir.join(clw_run::files::LATENCY);
        let Some((rows, truncated)) = crate::error::unless_absent(clw_run::read_latency(&path))?
        else {
            return Ok(None);
        };
        if truncated {
            notices.push("latency.csv truncated: last row ignored".into());
        }
        let mut out = Latency::default();
        for r in rows {
            if r.step != "all" {
                if !r.step.is_empty() && !out.steps.contains(&r.step) {
                    out.steps.push(r.step);
                }
                continue;
            }
            let start = out.t_s.last().copied().unwrap_or(0.0);
            let length = r.t_s - start;
            out.t_s.push(r.t_s);
            out.count.push(Some(r.count as f64));
            out.rps
                .push((length > 0.0).then(|| r.count as f64 / length));
            out.p50.push(r.p50_ms);
            out.p90.push(r.p90_ms);
            out.p99.push(r.p99_ms);
            out.max.push(r.max_ms);
            out.cp50.push(r.cp50_ms);
            out.cp90.push(r.cp90_ms);
            out.cp99.push(r.cp99_ms);
            out.cmax.push(r.cmax_ms);
        }
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throughput_integrates_to_the_requests_counted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("latency.csv"),
            "t_s,step,count\n1.000,all,100\n2.000,all,300\n2.250,all,50\n",
        )
        .unwrap();
        let l = Latency::read(dir.path(), &mut Vec::new()).unwrap().unwrap();
        assert_eq!(l.rps, vec![Some(100.0), Some(300.0), Some(200.0)]);
        let mut start = 0.0;
        let integral: f64 = l
            .t_s
            .iter()
            .zip(&l.rps)
            .map(|(t, r)| {
                let area = r.unwrap() * (t - start);
                start = *t;
                area
            })
            .sum();
        assert_eq!(integral, 450.0);
    }

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
        assert_eq!(l.rps, vec![Some(5.0), Some(6.0)]);
    }
}
