//! The verdict while the load runs: the same [`analyze`] over the samples
//! taken so far, after every sample.
//!
//! One function decides both the live verdict and the final one, so the
//! two cannot disagree about the same samples; the live tracker only adds
//! when `leak` was first said (`memory.leak_detected_at_s`), which is what
//! `--abort-on-fail` acts on. Re-analysing is cheap: linear in the samples,
//! plus the rank test on at most about forty blocks.

use super::{analyze, AnalysisInput, Series};
use crate::memory::{MemoryReport, Verdict};
use crate::samples::SampleRow;

/// Samples in, a verdict after each.
#[derive(Debug, Clone)]
pub struct LiveVerdict {
    input: AnalysisInput,
    series: Series,
    report: MemoryReport,
    leak_at: Option<f64>,
}

impl LiveVerdict {
    /// A tracker for a run with these settings (limit, ramp-up, sources).
    pub fn new(input: AnalysisInput) -> LiveVerdict {
        LiveVerdict {
            report: MemoryReport::placeholder(input.limit_bytes),
            input,
            series: Series::default(),
            leak_at: None,
        }
    }

    /// The limit may only be learnt during the run (from the service's
    /// metrics); later verdicts use it.
    pub fn set_limit(&mut self, limit_bytes: Option<u64>) {
        self.input.limit_bytes = limit_bytes;
    }

    /// Adds one sample and re-decides; returns the verdict now.
    pub fn push(&mut self, row: &SampleRow) -> Verdict {
        self.series.push(row);
        self.report = analyze(&self.series, &self.input);
        let verdict = self.report.verdict.unwrap_or(Verdict::Inconclusive);
        if verdict == Verdict::Leak && self.leak_at.is_none() {
            self.leak_at = Some(row.t_s);
        }
        self.report.leak_detected_at_s = self.leak_at;
        verdict
    }

    /// The latest report, with `leak_detected_at_s` filled in.
    pub fn report(&self) -> &MemoryReport {
        &self.report
    }

    /// When `leak` was first said, in seconds after load start.
    pub fn leak_detected_at_s(&self) -> Option<f64> {
        self.leak_at
    }
}

/// The final report, given when the live verdict first said `leak`: a leak
/// once called stays called when the final samples are merely
/// `inconclusive` (the load stopped at the call, so the last block is flat;
/// a table that grows in steps sat between two). A final `bounded` (memory
/// levelled off after all) or `leak` stands as it is.
pub fn settle(mut report: MemoryReport, leak_detected_at_s: Option<f64>) -> MemoryReport {
    report.leak_detected_at_s = leak_detected_at_s;
    if let (Some(at), Some(Verdict::Inconclusive)) = (leak_detected_at_s, report.verdict) {
        report.verdict = Some(Verdict::Leak);
        report.plateau = Some(false);
        report.evidence.push(format!(
            "the live verdict called leak at {at:.1} s (rising at 99.9% confidence); the samples after it do not overturn it"
        ));
    }
    report
}
