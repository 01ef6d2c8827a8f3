//! latency.hlog: an HdrHistogram interval log (V2 deflate), readable by
//! HistogramLogProcessor and hdrhistogram's `IntervalLogIterator`. Values are
//! microseconds; the max column is scaled to milliseconds. Tags are step
//! names (spaces and commas replaced); corrected histograms are tagged
//! `<step>.corrected`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriterBuilder, LogEntry, Tag,
};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};
use hdrhistogram::Histogram;

use crate::error::RunFileError;

/// latency.hlog being written; [`HdrLog::flush`] after each interval.
pub struct HdrLog {
    path: PathBuf,
    out: BufWriter<File>,
    serializer: V2DeflateSerializer,
}

impl HdrLog {
    /// Creates the log with its header; `start` is the load's start.
    pub fn create(path: &Path, start: SystemTime) -> Result<HdrLog, RunFileError> {
        let err = RunFileError::write;
        let mut out = BufWriter::new(File::create(path).map_err(err(path))?);
        let mut serializer = V2DeflateSerializer::new();
        IntervalLogWriterBuilder::new()
            .add_comment("clw-cli latency log: values in microseconds, tag = scenario step")
            .with_start_time(start)
            .with_base_time(start)
            .with_max_value_divisor(1000.0)
            .begin_log_with(&mut out, &mut serializer)
            .map_err(err(path))?;
        out.write_all(b"\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n")
            .map_err(err(path))?;
        out.flush().map_err(err(path))?;
        Ok(HdrLog {
            path: path.to_path_buf(),
            out,
            serializer,
        })
    }

    /// Appends one histogram covering `[start, start + length)` since load start.
    pub fn write(
        &mut self,
        start: Duration,
        length: Duration,
        tag: &str,
        hist: &Histogram<u64>,
    ) -> Result<(), RunFileError> {
        let tag = sanitize_tag(tag);
        let mut writer = IntervalLogWriterBuilder::new()
            .with_max_value_divisor(1000.0)
            .begin_log_with(&mut self.out, &mut self.serializer)
            .map_err(RunFileError::write(&self.path))?;
        writer
            .write_histogram(hist, start, length, Tag::new(&tag))
            .map_err(|e| RunFileError::write(&self.path)(std::io::Error::other(e.to_string())))
    }

    pub fn flush(&mut self) -> Result<(), RunFileError> {
        self.out.flush().map_err(RunFileError::write(&self.path))
    }
}

/// latency.hlog's `StartTime`: the wall-clock instant of the load's start
/// (millisecond precision), or None when the log has none.
pub fn read_hlog_start(path: &Path) -> Result<Option<SystemTime>, RunFileError> {
    let bytes = crate::bounded::read_table(path)?;
    let (complete, _) = crate::table::complete_rows(&bytes);
    for entry in IntervalLogIterator::new(complete) {
        match entry {
            Ok(LogEntry::StartTime(since_epoch)) => {
                return Ok(Some(SystemTime::UNIX_EPOCH + since_epoch))
            }
            Ok(LogEntry::Interval(_)) | Err(_) => break,
            Ok(LogEntry::BaseTime(_)) => {}
        }
    }
    Ok(None)
}

/// Tags may not hold ',', ' ', '\r' or '\n'.
pub(crate) fn sanitize_tag(tag: &str) -> String {
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

/// One interval of latency.hlog, decoded.
#[derive(Debug, Clone)]
pub struct HlogInterval {
    /// The step (or `<step>.corrected`), as sanitized when written.
    pub tag: Option<String>,
    /// Since the log's base time (the load's start).
    pub start: Duration,
    pub length: Duration,
    /// Microseconds.
    pub histogram: Histogram<u64>,
}

/// Reads every interval of latency.hlog. A last line cut off by a kill is
/// dropped, as in the CSV files; the flag says whether that happened.
pub fn read_hlog(path: &Path) -> Result<(Vec<HlogInterval>, bool), RunFileError> {
    let bytes = crate::bounded::read_table(path)?;
    let (complete, truncated) = crate::table::complete_rows(&bytes);
    let parse = |reason: String| RunFileError::Parse {
        path: path.to_path_buf(),
        line: 0,
        reason,
    };
    let mut out = Vec::new();
    let mut deserializer = Deserializer::new();
    for entry in IntervalLogIterator::new(complete) {
        let LogEntry::Interval(i) = entry.map_err(|e| parse(format!("{e:?}")))? else {
            continue;
        };
        let raw = base64::engine::general_purpose::STANDARD
            .decode(i.encoded_histogram())
            .map_err(|e| parse(format!("interval at {:?}: {e}", i.start_timestamp())))?;
        let raw = within_histogram_cap(&raw)
            .map_err(|e| parse(format!("interval at {:?}: {e}", i.start_timestamp())))?;
        let histogram: Histogram<u64> = deserializer
            .deserialize(&mut &raw[..])
            .map_err(|e| parse(format!("interval at {:?}: {e:?}", i.start_timestamp())))?;
        // No interval of a real run holds 2^48 recordings; one that claims
        // to (counts of u64::MAX, saturated) would make percentiles lie.
        if histogram.len() >= crate::merge::MAX_REQUESTS {
            return Err(parse(format!(
                "interval at {:?} claims {} recordings: impossible",
                i.start_timestamp(),
                histogram.len()
            )));
        }
        out.push(HlogInterval {
            tag: i.tag().map(|t| t.as_str().to_string()),
            start: i.start_timestamp(),
            length: i.duration(),
            histogram,
        });
    }
    Ok((out, truncated))
}

/// The V2 cookies of hdrhistogram's serialization (plain and deflated).
const V2_COOKIE: u32 = 0x1c84_9313;
const V2_COMPRESSED_COOKIE: u32 = 0x1c84_9314;
/// A plain V2 header: cookie, payload length, offset, digits, low, high, ratio.
const V2_HEADER: usize = 40;

/// One encoded interval histogram as a plain V2 buffer whose claimed
/// payload is really there and within [`crate::bounded::HISTOGRAM_CAP`].
/// hdrhistogram's deserializer allocates the header's claimed payload
/// length before reading it, so a ~100-byte line claiming 2 GB would
/// allocate 2 GB; this inflates at most the cap and checks the claim first.
fn within_histogram_cap(raw: &[u8]) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let cap = crate::bounded::HISTOGRAM_CAP;
    let word = |b: &[u8], at: usize| -> Option<u32> {
        Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
    };
    let plain = match word(raw, 0) {
        Some(V2_COMPRESSED_COOKIE) => {
            let mut out = Vec::new();
            flate2::read::ZlibDecoder::new(raw.get(8..).unwrap_or_default())
                .take(cap as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| format!("cannot inflate the histogram: {e}"))?;
            if out.len() > cap {
                return Err(format!(
                    "the histogram inflates past the {cap} bytes an interval may hold"
                ));
            }
            out
        }
        _ => raw.to_vec(),
    };
    // Other cookies are left to the deserializer, which refuses them.
    if word(&plain, 0) == Some(V2_COOKIE) {
        let claimed = word(&plain, 4).ok_or("histogram header cut short")? as usize;
        let present = plain.len().saturating_sub(V2_HEADER);
        if claimed > present || claimed > cap {
            return Err(format!(
                "histogram claims a {claimed}-byte payload but holds {present} bytes"
            ));
        }
    }
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_log_reads_back_with_tags_and_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("latency.hlog");
        let mut log = HdrLog::create(&path, SystemTime::now()).unwrap();
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        for v in [100, 200, 300, 40_000] {
            h.record(v).unwrap();
        }
        log.write(Duration::ZERO, Duration::from_secs(1), "log in", &h)
            .unwrap();
        log.write(Duration::from_secs(1), Duration::from_secs(1), "all", &h)
            .unwrap();
        log.flush().unwrap();
        let (intervals, truncated) = read_hlog(&path).unwrap();
        assert!(!truncated);
        assert_eq!(intervals.len(), 2);
        assert_eq!(intervals[0].tag.as_deref(), Some("log_in"));
        assert_eq!(intervals[1].start, Duration::from_secs(1));
        assert_eq!(intervals[0].histogram.len(), 4);
        assert_eq!(intervals[0].histogram.max(), h.max());
    }

    #[test]
    fn the_start_time_reads_back_to_the_millisecond() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("latency.hlog");
        let start = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_000_000_123);
        HdrLog::create(&path, start).unwrap();
        assert_eq!(read_hlog_start(&path).unwrap(), Some(start));
    }

    /// A ~100-byte interval whose header claims a 2 GiB payload, plain and
    /// deflated: refused naming the file, without allocating the claim.
    #[test]
    fn a_histogram_claiming_more_than_it_holds_is_refused() {
        use base64::Engine;
        use hdrhistogram::serialization::{Serializer, V2Serializer};
        use std::io::Write;
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        h.record(100).unwrap();
        let mut plain = Vec::new();
        V2Serializer::new().serialize(&h, &mut plain).unwrap();
        plain[4..8].copy_from_slice(&(1u32 << 31).to_be_bytes());
        let mut deflater =
            flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        deflater.write_all(&plain).unwrap();
        let deflated = deflater.finish().unwrap();
        let mut compressed = V2_COMPRESSED_COOKIE.to_be_bytes().to_vec();
        compressed.extend((deflated.len() as u32).to_be_bytes());
        compressed.extend(deflated);
        let dir = tempfile::tempdir().unwrap();
        for raw in [plain, compressed] {
            let path = dir.path().join("latency.hlog");
            let b64 = base64::engine::general_purpose::STANDARD.encode(&raw);
            std::fs::write(&path, format!("0.000,1.000,0.100,{b64}\n")).unwrap();
            let err = read_hlog(&path).unwrap_err().to_string();
            assert!(
                err.contains("latency.hlog") && err.contains("claims a 2147483648-byte payload"),
                "{err}"
            );
        }
    }
}
