//! The collector's rows for latency.csv (one per step per interval plus an
//! `all` row) and errors.csv (an `all` row per interval plus one per error
//! kind), from the interval's merged stats. The file formats and their
//! writers (latency.csv, latency.hlog, summary.json) are clw-run's
//! (docs/run-folder.md); this module only turns histograms into rows.
//! Every interval is flushed as soon as it is written, so a run killed
//! midway leaves readable files up to that second.

use std::path::Path;

use std::collections::BTreeSet;
use std::time::Duration;

use clw_run::{ErrorsRow, ErrorsWriter, LatencyRow, LatencyWriter, RunFileError};

use crate::load::stats::{percentiles, IntervalStats, StepStats};

/// latency.csv: one row per step per interval, plus an `all` row.
pub(crate) struct LatencyCsv {
    out: LatencyWriter,
    /// Whether the `c*` columns are filled (open model).
    corrected: bool,
}

impl LatencyCsv {
    pub(crate) fn create(path: &Path, corrected: bool) -> Result<LatencyCsv, RunFileError> {
        Ok(LatencyCsv {
            out: LatencyWriter::create(path)?,
            corrected,
        })
    }

    /// Write the rows of the interval ending at `t_s` and flush them.
    /// Write the rows of the interval ending at `t_s`, in which `users`
    /// virtual users were running at its end, and flush them.
    pub(crate) fn write_interval(
        &mut self,
        t_s: f64,
        step_names: &[String],
        stats: &IntervalStats,
        users: u32,
    ) -> Result<(), RunFileError> {
        for (name, step) in step_names.iter().zip(&stats.steps) {
            if step.requests > 0 {
                self.row(t_s, name, step, users)?;
            }
        }
        self.row(t_s, "all", &stats.all_steps(), users)?;
        self.out.flush()
    }

    fn row(&mut self, t_s: f64, step: &str, s: &StepStats, users: u32) -> Result<(), RunFileError> {
        let corrected = if self.corrected {
            percentiles(&s.corrected)
        } else {
            None
        };
        self.out.write(&LatencyRow {
            users: Some(u64::from(users)),
            ..LatencyRow::new(t_s, step, s.requests, percentiles(&s.latency), corrected)
        })
    }
}

/// errors.csv: what failed in each interval, by kind, the failures of
/// requests sent after the server's death apart.
pub(crate) struct ErrorsCsv {
    out: ErrorsWriter,
}

impl ErrorsCsv {
    pub(crate) fn create(path: &Path) -> Result<ErrorsCsv, RunFileError> {
        Ok(ErrorsCsv {
            out: ErrorsWriter::create(path)?,
        })
    }

    /// Write the rows of the interval ending at `end` (since load start)
    /// and flush them: the `all` row always, a row per kind that failed.
    pub(crate) fn write_interval(
        &mut self,
        end: Duration,
        stats: &IntervalStats,
    ) -> Result<(), RunFileError> {
        let t_ms = end.as_millis() as u64;
        let dead = &stats.after_death;
        self.out.write(&ErrorsRow {
            t_ms,
            kind: "all".into(),
            errors: stats.errors(),
            after_death: dead.failed,
        })?;
        let kinds: BTreeSet<&String> = stats.by_error.keys().chain(dead.by_error.keys()).collect();
        for kind in kinds {
            let n = |m: &std::collections::BTreeMap<String, u64>| m.get(kind).copied().unwrap_or(0);
            self.out.write(&ErrorsRow {
                t_ms,
                kind: kind.clone(),
                errors: n(&stats.by_error),
                after_death: n(&dead.by_error),
            })?;
        }
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::stats::RequestOutcome;
    use clw_run::LATENCY_HEADER;

    #[test]
    fn latency_csv_has_the_contract_header_and_blank_unknowns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("latency.csv");
        let mut csv = LatencyCsv::create(&path, false).unwrap();
        let mut s = IntervalStats::new(2);
        s.record(0, 2000, None, RequestOutcome::Ok { status: 200 });
        csv.write_interval(1.0, &["login".into(), "validate".into()], &s, 4)
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], LATENCY_HEADER.join(","));
        assert_eq!(lines[1], "1.000,login,1,2.000,2.000,2.000,2.000,,,,,4");
        assert_eq!(lines[2], "1.000,all,1,2.000,2.000,2.000,2.000,,,,,4");
        assert_eq!(lines.len(), 3, "steps without requests get no row");
    }

    #[test]
    fn errors_csv_has_an_all_row_per_interval_and_a_row_per_kind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("errors.csv");
        let mut csv = ErrorsCsv::create(&path).unwrap();
        csv.write_interval(Duration::from_secs(1), &IntervalStats::new(1))
            .unwrap();
        let mut s = IntervalStats::new(1);
        s.record(0, 10, None, RequestOutcome::Transport { kind: "reset" });
        s.record(0, 10, None, RequestOutcome::Ok { status: 200 });
        s.after_death.requests = 5;
        s.after_death.failed = 5;
        s.after_death.by_error.insert("connect".into(), 5);
        csv.write_interval(Duration::from_millis(2500), &s).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "t_s,kind,errors,after_death\n1.000,all,0,0\n\
             2.500,all,1,5\n2.500,connect,0,5\n2.500,reset,1,0\n"
        );
    }

    #[test]
    fn hdr_log_of_a_step_reads_back_with_its_tag() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("latency.hlog");
        let mut log = clw_run::HdrLog::create(&path, std::time::SystemTime::now()).unwrap();
        let mut h = crate::load::stats::new_histogram();
        for v in [100, 200, 300, 40_000] {
            h.record(v).unwrap();
        }
        let second = std::time::Duration::from_secs(1);
        log.write(std::time::Duration::ZERO, second, "log in", &h)
            .unwrap();
        log.flush().unwrap();
        let (intervals, _) = clw_run::read_hlog(&path).unwrap();
        assert_eq!(intervals[0].tag.as_deref(), Some("log_in"));
        assert_eq!(intervals[0].histogram.max(), h.max());
    }
}
