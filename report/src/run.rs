//! One run folder loaded into memory: the three files plus the notices that
//! reading them produced.

use std::path::{Path, PathBuf};

use crate::error::ReportError;
use crate::latency::Latency;
use crate::samples::{self, Samples};
use crate::summary::Summary;
use crate::table::file_name;

/// Everything a page or chart needs from one run folder.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) dir: PathBuf,
    pub(crate) name: String,
    pub(crate) samples: Samples,
    pub(crate) latency: Latency,
    pub(crate) summary: Option<Summary>,
    pub(crate) notices: Vec<String>,
}

impl Run {
    pub(crate) fn load(dir: &Path) -> Result<Run, ReportError> {
        let meta = std::fs::metadata(dir).map_err(|e| ReportError::io(dir, e))?;
        if !meta.is_dir() {
            return Err(ReportError::NotARunFolder(dir.to_path_buf()));
        }
        let mut notices = Vec::new();
        let samples = Samples::read(dir, &mut notices)?;
        let latency = Latency::read(dir, &mut notices)?;
        let summary = Summary::read(dir, &mut notices);
        let summary_present = dir.join("summary.json").exists();
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
        let canonical = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        Ok(Run {
            name: file_name(&canonical),
            dir: dir.to_path_buf(),
            samples,
            latency: latency.unwrap_or_default(),
            summary,
            notices,
        })
    }

    pub(crate) fn limit_bytes(&self) -> Option<f64> {
        self.summary.as_ref().and_then(Summary::limit_bytes)
    }

    pub(crate) fn oom_kill(&self) -> Option<Option<f64>> {
        self.summary.as_ref().and_then(Summary::oom_kill)
    }

    /// Whether the server's death was clw-limit's watchdog standing in for
    /// the kernel's OOM killer (no cgroup could enforce the limit): banner and
    /// chart marker both say so, so that nobody reads it as a kernel kill.
    pub(crate) fn oom_kill_emulated(&self) -> bool {
        self.summary
            .as_ref()
            .and_then(|s| s.exit())
            .and_then(|e| e.emulated)
            .unwrap_or(false)
    }

    pub(crate) fn ramp_up_s(&self) -> Option<f64> {
        self.summary
            .as_ref()
            .and_then(|s| s.ramp_up_s)
            .filter(|r| *r > 0.0)
    }

    /// Peak memory in bytes and what it measured: summary.json's peak RSS
    /// when present, else the highest sample of the best memory series.
    pub(crate) fn peak_memory(&self) -> Option<(f64, &'static str)> {
        let from_summary = self
            .summary
            .as_ref()
            .and_then(|s| s.memory())
            .and_then(|m| m.peak_rss_bytes);
        if let Some(p) = from_summary {
            return Some((p, "RSS"));
        }
        let (label, series) = self.samples.primary_memory()?;
        samples::peak(series).map(|p| (p, label))
    }

    /// Peak as % of the limit: summary.json's figure, else computed.
    pub(crate) fn peak_percent(&self) -> Option<f64> {
        let from_summary = self
            .summary
            .as_ref()
            .and_then(|s| s.memory())
            .and_then(|m| m.peak_rss_percent);
        from_summary.or_else(|| {
            let limit = self.limit_bytes().filter(|l| *l > 0.0)?;
            self.peak_memory().map(|(p, _)| p * 100.0 / limit)
        })
    }
}
