//! The collector's files in the run folder: latency.csv, latency.hlog, and
//! the atomic writes of summary.json. Formats are in docs/run-folder.md.
//! Every interval is flushed as soon as it is written, so a run killed midway
//! leaves readable files up to that second.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::Histogram;

use crate::stats::{IntervalStats, Percentiles, StepStats};

/// Header of latency.csv (docs/run-folder.md).
pub(crate) const LATENCY_CSV_HEADER: [&str; 11] = [
    "t_s", "step", "count", "p50_ms", "p90_ms", "p99_ms", "max_ms", "cp50_ms", "cp90_ms",
    "cp99_ms", "cmax_ms",
];

/// A failure to write one of the run folder's files.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}: {source}")]
pub(crate) struct OutputError {
    pub(crate) path: PathBuf,
    #[source]
    pub(crate) source: io::Error,
}

fn at(path: &Path) -> impl FnOnce(io::Error) -> OutputError + '_ {
    move |source| OutputError {
        path: path.to_path_buf(),
        source,
    }
}

/// latency.csv: one row per step per interval, plus an `all` row.
pub(crate) struct LatencyCsv {
    path: PathBuf,
    out: csv::Writer<File>,
    /// Whether the `c*` columns are filled (open model).
    corrected: bool,
}

impl LatencyCsv {
    pub(crate) fn create(path: &Path, corrected: bool) -> Result<LatencyCsv, OutputError> {
        let file = File::create(path).map_err(at(path))?;
        let mut out = csv::Writer::from_writer(file);
        out.write_record(LATENCY_CSV_HEADER)
            .map_err(|e| at(path)(e.into()))?;
        out.flush().map_err(at(path))?;
        Ok(LatencyCsv {
            path: path.to_path_buf(),
            out,
            corrected,
        })
    }

    /// Write the rows of the interval ending at `t_s` and flush them.
    pub(crate) fn write_interval(
        &mut self,
        t_s: f64,
        step_names: &[String],
        stats: &IntervalStats,
    ) -> Result<(), OutputError> {
        for (name, step) in step_names.iter().zip(&stats.steps) {
            if step.requests > 0 {
                self.row(t_s, name, step)?;
            }
        }
        self.row(t_s, "all", &stats.all_steps())?;
        self.out.flush().map_err(at(&self.path))
    }

    fn row(&mut self, t_s: f64, step: &str, s: &StepStats) -> Result<(), OutputError> {
        let cell = |p: Option<f64>| p.map(|v| format!("{v:.3}")).unwrap_or_default();
        let plain = Percentiles::of(&s.latency);
        let corr = if self.corrected {
            Percentiles::of(&s.corrected)
        } else {
            None
        };
        let record = [
            format!("{t_s:.3}"),
            step.to_string(),
            s.requests.to_string(),
            cell(plain.map(|p| p.p50)),
            cell(plain.map(|p| p.p90)),
            cell(plain.map(|p| p.p99)),
            cell(plain.map(|p| p.max)),
            cell(corr.map(|p| p.p50)),
            cell(corr.map(|p| p.p90)),
            cell(corr.map(|p| p.p99)),
            cell(corr.map(|p| p.max)),
        ];
        self.out
            .write_record(&record)
            .map_err(|e| at(&self.path)(e.into()))
    }
}

/// latency.hlog: an HdrHistogram interval log (V2 deflate), readable by
/// HistogramLogProcessor and hdrhistogram's `IntervalLogIterator`. Values are
/// microseconds; the max column is scaled to milliseconds. Tags are step
/// names (spaces and commas replaced); corrected histograms are tagged
/// `<step>.corrected`.
pub(crate) struct HdrLog {
    path: PathBuf,
    out: BufWriter<File>,
    serializer: V2DeflateSerializer,
}

impl HdrLog {
    pub(crate) fn create(path: &Path, start: SystemTime) -> Result<HdrLog, OutputError> {
        let mut out = BufWriter::new(File::create(path).map_err(at(path))?);
        let mut serializer = V2DeflateSerializer::new();
        IntervalLogWriterBuilder::new()
            .add_comment("clw-cli latency log: values in microseconds, tag = scenario step")
            .with_start_time(start)
            .with_base_time(start)
            .with_max_value_divisor(1000.0)
            .begin_log_with(&mut out, &mut serializer)
            .map_err(at(path))?;
        out.write_all(b"\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n")
            .map_err(at(path))?;
        out.flush().map_err(at(path))?;
        Ok(HdrLog {
            path: path.to_path_buf(),
            out,
            serializer,
        })
    }

    /// Append one histogram covering `[start, start + length)` since load start.
    pub(crate) fn write(
        &mut self,
        start: Duration,
        length: Duration,
        tag: &str,
        hist: &Histogram<u64>,
    ) -> Result<(), OutputError> {
        let tag = sanitize_tag(tag);
        let mut writer = IntervalLogWriterBuilder::new()
            .with_max_value_divisor(1000.0)
            .begin_log_with(&mut self.out, &mut self.serializer)
            .map_err(at(&self.path))?;
        writer
            .write_histogram(hist, start, length, Tag::new(&tag))
            .map_err(|e| at(&self.path)(io::Error::other(e.to_string())))
    }

    pub(crate) fn flush(&mut self) -> Result<(), OutputError> {
        self.out.flush().map_err(at(&self.path))
    }
}

/// Tags may not hold ',', ' ', '\r' or '\n'.
fn sanitize_tag(tag: &str) -> String {
    tag.chars()
        .map(|c| {
            if matches!(c, ',' | ' ' | '\r' | '\n') {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// Write `value` as pretty JSON to `path` through a temporary file and a
/// rename, so a reader never sees half a summary.
pub(crate) fn write_json_atomic(
    path: &Path,
    value: &impl serde::Serialize,
) -> Result<(), OutputError> {
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_vec_pretty(value).map_err(|e| at(path)(e.into()))?;
    std::fs::write(&tmp, text).map_err(at(&tmp))?;
    std::fs::rename(&tmp, path).map_err(at(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Outcome;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    use hdrhistogram::serialization::Deserializer;

    #[test]
    fn hdr_log_reads_back_with_tags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("latency.hlog");
        let mut log = HdrLog::create(&path, SystemTime::now()).unwrap();
        let mut h = crate::stats::new_histogram();
        for v in [100, 200, 300, 40_000] {
            h.record(v).unwrap();
        }
        log.write(Duration::ZERO, Duration::from_secs(1), "log in", &h)
            .unwrap();
        log.write(Duration::from_secs(1), Duration::from_secs(1), "all", &h)
            .unwrap();
        log.flush().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let intervals: Vec<_> = IntervalLogIterator::new(&bytes)
            .filter_map(|e| match e.unwrap() {
                LogEntry::Interval(i) => Some(i),
                _ => None,
            })
            .collect();
        assert_eq!(intervals.len(), 2);
        assert_eq!(intervals[0].tag().unwrap().as_str(), "log_in");
        assert_eq!(intervals[1].start_timestamp(), Duration::from_secs(1));
        assert!(
            (intervals[0].max() - 40.0).abs() < 0.1,
            "max in ms: {}",
            intervals[0].max()
        );
        use base64::Engine as _;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(intervals[0].encoded_histogram())
            .unwrap();
        let back: Histogram<u64> = Deserializer::new().deserialize(&mut &raw[..]).unwrap();
        assert_eq!(back.len(), 4);
        assert_eq!(back.max(), h.max());
    }

    #[test]
    fn latency_csv_has_the_contract_header_and_blank_unknowns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("latency.csv");
        let mut csv = LatencyCsv::create(&path, false).unwrap();
        let mut s = IntervalStats::new(2);
        s.record(0, 2000, None, Outcome::Ok { status: 200 });
        csv.write_interval(1.0, &["login".into(), "validate".into()], &s)
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], LATENCY_CSV_HEADER.join(","));
        assert_eq!(lines[1], "1.000,login,1,2.000,2.000,2.000,2.000,,,,");
        assert_eq!(lines[2], "1.000,all,1,2.000,2.000,2.000,2.000,,,,");
        assert_eq!(lines.len(), 3, "steps without requests get no row");
    }
}
