//! One run folder loaded into memory (`LoadedRun`): the three files plus the notices that
//! reading them produced, and the memory verdict (summary.json's, or
//! recomputed from samples.csv when the run died before writing one).

use std::path::{Path, PathBuf};

use clw_run::analysis::{self, AnalysisInput};
use clw_run::{
    LimitEnforcement, MemoryReport, Percentiles, Requests, RunFileError, RunSummary, StageSummary,
};

use crate::error::ReportError;
use crate::errors::Errors;
use crate::latency::Latency;
use crate::samples::{self, Column, Series};

/// Everything a page or chart needs from one run folder.
#[derive(Debug)]
pub(crate) struct LoadedRun {
    pub(crate) dir: PathBuf,
    pub(crate) name: String,
    pub(crate) samples: Series,
    pub(crate) latency: Latency,
    /// errors.csv; `None` in run folders written before it existed.
    pub(crate) errors: Option<Errors>,
    pub(crate) summary: Option<RunSummary>,
    /// summary.json `stages[]`, with figures (recomputed for a killed run);
    /// empty for a constant load.
    pub(crate) stages: Vec<StageSummary>,
    /// The memory block to show: summary.json's, or [`LoadedRun::recomputed`].
    memory: Option<MemoryReport>,
    /// Why the verdict was recomputed from samples.csv (summary.json had
    /// none: partial, or no memory block), when it was.
    pub(crate) recomputed: Option<&'static str>,
    pub(crate) notices: Vec<String>,
}

impl LoadedRun {
    pub(crate) fn load(dir: &Path) -> Result<LoadedRun, ReportError> {
        let meta = std::fs::metadata(dir).map_err(|e| ReportError::io(dir, e))?;
        if !meta.is_dir() {
            return Err(ReportError::NotARunFolder(dir.to_path_buf()));
        }
        let mut notices = Vec::new();
        let samples = samples::read(dir, &mut notices)?;
        let latency = Latency::read(dir, &mut notices)?;
        let errors = Errors::read(dir, &mut notices)?;
        let summary = read_summary(dir, &mut notices);
        let summary_present = dir.join(clw_run::files::SUMMARY).exists();
        if samples.is_none() && latency.is_none() && !summary_present {
            return Err(ReportError::NotARunFolder(dir.to_path_buf()));
        }
        for (present, file) in [
            (samples.is_some(), "samples.csv"),
            (latency.is_some(), "latency.csv"),
            (summary_present, "summary.json"),
        ] {
            if !present {
                notices.push(format!("{file} missing: its charts and figures are empty"));
            }
        }
        let samples = samples.unwrap_or_default();
        if samples.t_s.is_empty() && dir.join("samples.csv").exists() {
            notices.push("samples.csv has no complete rows".into());
        }
        let (memory, recomputed) = memory_verdict(&samples, summary.as_ref(), &mut notices);
        let stages = crate::stages::load(dir, summary.as_ref(), &mut notices);
        let canonical = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        Ok(LoadedRun {
            name: file_name(&canonical),
            dir: dir.to_path_buf(),
            samples,
            latency: latency.unwrap_or_default(),
            errors,
            summary,
            stages,
            memory,
            recomputed,
            notices,
        })
    }

    /// Requests per second over time, and where they come from: latency.csv's
    /// exact per-second counts (the requests summary.json counts, so the
    /// chart integrates to its figures), else samples.csv's sampled rate.
    pub(crate) fn throughput(&self) -> (&[f64], &Column, &'static str) {
        if self.latency.t_s.is_empty() {
            (&self.samples.t_s, &self.samples.rps, "samples.csv")
        } else {
            (&self.latency.t_s, &self.latency.rps, "latency.csv")
        }
    }

    /// summary.json's requests sent after the server's death (a finished
    /// run's; they are in no other figure).
    pub(crate) fn after_death(&self) -> Option<&clw_run::AfterDeath> {
        self.finished().and_then(|s| s.after_death.as_ref())
    }

    /// When the server died (OOM kill or otherwise), seconds since load
    /// start, when known.
    pub(crate) fn death_at(&self) -> Option<f64> {
        self.summary.as_ref()?.server.exit.as_ref()?.at_s
    }

    /// The memory figures and verdict (see [`LoadedRun::recomputed`]).
    pub(crate) fn memory(&self) -> Option<&MemoryReport> {
        self.memory.as_ref()
    }

    /// A finished run's summary: the figures measured at the end (requests,
    /// latency, steps) are only known once `complete` is true.
    pub(crate) fn finished(&self) -> Option<&RunSummary> {
        self.summary.as_ref().filter(|s| s.complete)
    }

    pub(crate) fn requests(&self) -> Option<&Requests> {
        self.finished().map(|s| &s.requests)
    }

    pub(crate) fn latency_ms(&self) -> Option<&Percentiles> {
        self.finished().and_then(|s| s.latency_ms.as_ref())
    }

    pub(crate) fn latency_corrected_ms(&self) -> Option<&Percentiles> {
        self.finished()
            .and_then(|s| s.latency_corrected_ms.as_ref())
    }

    /// summary.json describes a server: clw-cli always writes a `server`
    /// block, but an empty (or null) one names no server it spawned or was
    /// told about.
    pub(crate) fn server_known(&self) -> bool {
        self.summary.as_ref().is_some_and(|s| {
            s.server.limit_enforcement != LimitEnforcement::Unrecorded
                || s.server.pid.is_some()
                || s.server.command.is_some()
        })
    }

    pub(crate) fn limit_bytes(&self) -> Option<f64> {
        self.memory
            .as_ref()
            .and_then(|m| m.limit_bytes)
            .or_else(|| self.summary.as_ref()?.limit_bytes())
            .map(|l| l as f64)
    }

    /// When the server was OOM-killed: `Some(at_s)` (at_s may be unknown).
    pub(crate) fn oom_kill(&self) -> Option<Option<f64>> {
        let exit = self.summary.as_ref()?.server.exit.as_ref()?;
        exit.oom_killed.then_some(exit.at_s)
    }

    /// Whether the server's death was clw-limit's watchdog standing in for
    /// the kernel's OOM killer (no cgroup could enforce the limit): banner and
    /// chart marker both say so, so that nobody reads it as a kernel kill.
    pub(crate) fn oom_kill_emulated(&self) -> bool {
        self.summary
            .as_ref()
            .and_then(|s| s.server.exit.as_ref())
            .is_some_and(|e| e.emulated)
    }

    pub(crate) fn ramp_up_s(&self) -> Option<f64> {
        self.summary
            .as_ref()
            .map(|s| s.ramp_up_s)
            .filter(|r| *r > 0.0)
    }

    /// Peak memory in bytes and what it measured: summary.json's peak of
    /// the server-memory series when present (RSS, or a container's memory
    /// from another source), else the highest sample of the best series.
    pub(crate) fn peak_memory(&self) -> Option<(f64, &'static str)> {
        // Under a memory cgroup: what the cgroup charged, which the share
        // of the limit is of (RSS is then shown beside it).
        if let Some((p, what)) = self.peak_charged() {
            return Some((p, what));
        }
        if let Some(p) = self.memory().and_then(|m| m.peak_rss_bytes) {
            return Some((p as f64, self.samples.memory_noun()));
        }
        let (label, column) = samples::primary_memory(&self.samples)?;
        samples::peak(column).map(|p| (p, label))
    }

    /// The peak of the cgroup's charged memory and its name (`cgroup
    /// working set`, `cgroup usage`), when the server ran in one.
    pub(crate) fn peak_charged(&self) -> Option<(f64, &'static str)> {
        let m = self.memory()?;
        let what = match m.peak_percent_of.as_deref()? {
            "cgroup working set" => "cgroup working set",
            "cgroup usage" => "cgroup usage",
            _ => return None,
        };
        Some((m.peak_charged_bytes? as f64, what))
    }

    /// Peak RSS, when a cgroup's charged memory is the headline figure.
    pub(crate) fn rss_beside_charged(&self) -> Option<f64> {
        self.peak_charged()?;
        let m = self.memory()?;
        m.peak_rss_bytes
            .filter(|_| self.samples.memory_noun() == "RSS")
            .map(|b| b as f64)
    }

    /// Peak as % of the limit: summary.json's figure, else computed.
    pub(crate) fn peak_percent(&self) -> Option<f64> {
        let from_summary = self.memory().and_then(|m| m.peak_rss_percent);
        from_summary.or_else(|| {
            let limit = self.limit_bytes().filter(|l| *l > 0.0)?;
            self.peak_memory().map(|(p, _)| p * 100.0 / limit)
        })
    }
}

/// Reads `dir/summary.json`. Absent: `None`. Unreadable (a kill in the
/// middle of a rewrite): `None` plus a notice, so the CSVs still render.
fn read_summary(dir: &Path, notices: &mut Vec<String>) -> Option<RunSummary> {
    match RunSummary::read(&dir.join(clw_run::files::SUMMARY)) {
        Ok(s) => {
            if !s.complete {
                notices.push(
                    "summary.json is partial (\"complete\": false): the run did not finish".into(),
                );
            }
            Some(s)
        }
        Err(RunFileError::Read { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            None
        }
        Err(RunFileError::Json { source, .. }) => {
            notices.push(format!(
                "summary.json is not valid ({source}): figures from the CSV files only"
            ));
            None
        }
        Err(e) => {
            notices.push(format!(
                "summary.json unreadable ({e}): figures from the CSV files only"
            ));
            None
        }
    }
}

/// summary.json's memory block when it holds a final verdict; otherwise
/// (no summary, a partial one, no memory block or no verdict) the verdict
/// recomputed from samples.csv with the same analysis clw-cli runs, with the
/// limit, ramp-up and OOM kill that summary.json does know, and why it was
/// recomputed.
fn memory_verdict(
    series: &Series,
    summary: Option<&RunSummary>,
    notices: &mut Vec<String>,
) -> (Option<MemoryReport>, Option<&'static str>) {
    let written = summary.and_then(|s| s.memory.clone());
    let final_verdict = summary.is_some_and(|s| s.complete)
        && written.as_ref().is_some_and(|m| m.verdict.is_some());
    if final_verdict {
        return (written, None);
    }
    // No samples.csv, or none of its rows complete.
    if series.is_empty() {
        return (written, None);
    }
    let input = AnalysisInput {
        limit_bytes: summary.and_then(RunSummary::limit_bytes),
        ramp_up_s: summary.map_or(0.0, |s| s.ramp_up_s),
        sources: written
            .as_ref()
            .map(|m| m.sources.clone())
            .filter(|s| s.rss.is_some() || s.allocator.is_some() || s.cgroup.is_some()),
        oom_killed: summary.is_some_and(RunSummary::oom_killed),
        server_died: summary.is_some_and(|s| s.server.exit.is_some()),
    };
    let report = analysis::analyze(series, &input);
    let why = match summary {
        None => "no summary.json",
        Some(s) if !s.complete => "the run did not finish",
        Some(_) => "summary.json has none",
    };
    notices.push(format!(
        "verdict recomputed from samples.csv ({why}): {}",
        report.verdict.map_or("none", |v| v.as_str())
    ));
    (Some(report), Some(why))
}

/// The last component of `path`, for names and messages.
pub(crate) fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}
