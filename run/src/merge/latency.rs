//! The merged latency: latency.hlog's intervals added per start and tag,
//! the latency.csv rows made from them, and the merged folder's files.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;

use super::{MergeInfo, ShardRun};
use crate::error::RunFileError;
use crate::hlog::{sanitize_tag, HdrLog, HlogInterval};
use crate::latency::{LatencyRow, LatencyWriter};
use crate::Percentiles;

/// The tag suffix of open-model histograms measured from the schedule.
const CORRECTED: &str = ".corrected";

/// A fresh auto-resizing histogram with the writers' precision, so any
/// shard's histogram adds to it.
fn empty() -> Histogram<u64> {
    Histogram::new(3).expect("3 significant digits is valid")
}

fn add(into: &mut Histogram<u64>, from: &Histogram<u64>) {
    into.add(from)
        .expect("an auto-resizing histogram takes any other");
}

/// Shards' intervals added up one shard at a time, so only one shard's
/// latency.hlog is decoded at once: memory grows with the run's seconds
/// and steps, not with the number of shards.
#[derive(Debug, Default)]
pub struct IntervalSum {
    merged: BTreeMap<(u128, Option<String>), HlogInterval>,
}

impl IntervalSum {
    /// Adds one shard's intervals: each to the one with its start (to the
    /// millisecond, the log's precision) and tag.
    pub fn add(&mut self, intervals: &[HlogInterval]) {
        for interval in intervals {
            let key = (interval.start.as_millis(), interval.tag.clone());
            let into = self.merged.entry(key).or_insert_with(|| HlogInterval {
                tag: interval.tag.clone(),
                start: interval.start,
                length: Duration::ZERO,
                histogram: empty(),
            });
            into.length = into.length.max(interval.length);
            add(&mut into.histogram, &interval.histogram);
        }
    }

    /// One interval per (start, tag), its histogram the exact sum of the
    /// shards' with that start and tag, its length the longest of theirs;
    /// sorted by start, then tag.
    pub fn finish(self) -> Vec<HlogInterval> {
        self.merged.into_values().collect()
    }
}

/// Every shard's intervals added together ([`IntervalSum`] over `shards`).
pub fn merge_intervals(shards: &[&[HlogInterval]]) -> Vec<HlogInterval> {
    let mut sum = IntervalSum::default();
    for s in shards {
        sum.add(s);
    }
    sum.finish()
}

/// One step's latency, plain and (open model) corrected.
#[derive(Debug, Clone)]
pub struct StepHistograms {
    pub plain: Histogram<u64>,
    pub corrected: Histogram<u64>,
}

impl Default for StepHistograms {
    fn default() -> StepHistograms {
        StepHistograms {
            plain: empty(),
            corrected: empty(),
        }
    }
}

impl StepHistograms {
    fn add(&mut self, tag: &str, h: &Histogram<u64>) {
        match tag.strip_suffix(CORRECTED) {
            Some(_) => add(&mut self.corrected, h),
            None => add(&mut self.plain, h),
        }
    }
}

/// The step (sanitized tag) an interval's tag belongs to.
fn step_of(tag: &str) -> &str {
    tag.strip_suffix(CORRECTED).unwrap_or(tag)
}

/// `intervals` summed over time: all steps together, and per step (keyed
/// by tag, i.e. the step name as latency.hlog writes it).
pub fn step_histograms(
    intervals: &[HlogInterval],
) -> (StepHistograms, BTreeMap<String, StepHistograms>) {
    let mut all = StepHistograms::default();
    let mut steps: BTreeMap<String, StepHistograms> = BTreeMap::new();
    for i in intervals {
        let tag = i.tag.as_deref().unwrap_or("");
        all.add(tag, &i.histogram);
        steps
            .entry(step_of(tag).to_string())
            .or_default()
            .add(tag, &i.histogram);
    }
    (all, steps)
}

/// latency.csv's rows from merged intervals: per interval start, one row
/// per step that had responses (in `steps` order; a tag no step name
/// matches keeps its tag) and an `all` row. `count` is the responses in
/// the interval (every request's latency is recorded, failed ones too).
pub fn latency_rows(intervals: &[HlogInterval], steps: &[String], open: bool) -> Vec<LatencyRow> {
    let mut by_start: BTreeMap<u128, Vec<&HlogInterval>> = BTreeMap::new();
    for i in intervals {
        by_start.entry(i.start.as_millis()).or_default().push(i);
    }
    let mut rows = Vec::new();
    for group in by_start.values() {
        let owned: Vec<HlogInterval> = group.iter().map(|i| (*i).clone()).collect();
        let (all, per_step) = step_histograms(&owned);
        let end = group
            .iter()
            .map(|i| i.start + i.length)
            .max()
            .expect("a group has an interval");
        let t_s = end.as_secs_f64();
        let row = |name: &str, h: &StepHistograms| {
            let corrected = if open {
                Percentiles::of(&h.corrected)
            } else {
                None
            };
            LatencyRow::new(
                t_s,
                name,
                h.plain.len(),
                Percentiles::of(&h.plain),
                corrected,
            )
        };
        let mut named: Vec<(String, &StepHistograms)> = steps
            .iter()
            .filter_map(|s| per_step.get(&sanitize_tag(s)).map(|h| (s.clone(), h)))
            .collect();
        for (tag, h) in &per_step {
            if !steps.iter().any(|s| sanitize_tag(s) == *tag) {
                named.push((tag.clone(), h));
            }
        }
        for (name, h) in named {
            if !h.plain.is_empty() {
                rows.push(row(&name, h));
            }
        }
        rows.push(row("all", &all));
    }
    rows
}

/// Writes the merged folder's streamed files: latency.hlog (its start the
/// earliest shard's), latency.csv, and the sampling shard's samples.csv,
/// server.log and heap/ profiles copied as they are. summary.json is the
/// caller's, once judged.
pub fn write_files(
    out: &Path,
    shards: &[ShardRun],
    info: &MergeInfo,
    intervals: &[HlogInterval],
    steps: &[String],
    open: bool,
) -> Result<(), RunFileError> {
    std::fs::create_dir_all(out).map_err(RunFileError::write(out))?;
    let start = shards
        .iter()
        .filter_map(|s| s.start)
        .min()
        .unwrap_or_else(SystemTime::now);
    let mut hlog = HdrLog::create(&out.join(crate::files::HLOG), start)?;
    for i in intervals {
        hlog.write(
            i.start,
            i.length,
            i.tag.as_deref().unwrap_or(""),
            &i.histogram,
        )?;
    }
    hlog.flush()?;
    let mut csv = LatencyWriter::create(&out.join(crate::files::LATENCY))?;
    let rows = latency_rows(intervals, steps, open);
    for row in &rows {
        csv.write(row)?;
    }
    csv.flush()?;
    let dirs: Vec<&Path> = shards.iter().map(|s| s.dir.as_path()).collect();
    super::errors::write_merged_errors(&dirs, out)?;
    let Some(sampler) = shards
        .iter()
        .find(|s| Some(s.shard.index) == info.memory_from)
    else {
        return Ok(());
    };
    let samples = sampler.dir.join(crate::files::SAMPLES);
    if samples.is_file() {
        write_merged_samples(&samples, &out.join(crate::files::SAMPLES), &rows)?;
    }
    copy_if_there(&sampler.dir.join("server.log"), &out.join("server.log"))?;
    let heap = sampler.dir.join("heap");
    if real(&heap).is_some_and(|t| t.is_dir()) {
        let to = out.join("heap");
        std::fs::create_dir_all(&to).map_err(RunFileError::write(&to))?;
        for entry in std::fs::read_dir(&heap).map_err(RunFileError::read(&heap))? {
            let entry = entry.map_err(RunFileError::read(&heap))?;
            // file_type() does not follow a link.
            if entry.file_type().is_ok_and(|t| t.is_file()) {
                copy_if_there(&entry.path(), &to.join(entry.file_name()))?;
            }
        }
    }
    Ok(())
}

/// The sampling shard's samples.csv with its load columns made the whole
/// run's: `rps` is every shard's responses between a sample and the one
/// before it (the merged latency.csv's `all` counts of the intervals that
/// ended in that span), and `errors`, which no other shard recorded per
/// sample, is left blank (unknown) rather than one shard's share. The
/// memory columns are the sampling shard's, as they must be.
fn write_merged_samples(
    from: &Path,
    to: &Path,
    latency: &[LatencyRow],
) -> Result<(), RunFileError> {
    let file = crate::samples::read_samples(from)?;
    let mut all: Vec<(f64, u64)> = latency
        .iter()
        .filter(|r| r.step == "all")
        .map(|r| (r.t_s, r.count))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Responses up to each interval's end, so a span's count is one
    // subtraction: linear in samples and intervals, not their product.
    let mut upto = Vec::with_capacity(all.len() + 1);
    upto.push(0u64);
    for (_, n) in &all {
        upto.push(upto.last().copied().unwrap_or(0).saturating_add(*n));
    }
    let done_by = |t: f64| upto[all.partition_point(|(at, _)| *at <= t)];
    let mut out = crate::samples::SamplesWriter::create(to)?;
    let mut before: Option<f64> = None;
    for mut row in file.rows {
        row.rps = before.filter(|b| row.t_s > *b).map(|b| {
            let done = done_by(row.t_s) - done_by(b);
            done as f64 / (row.t_s - b)
        });
        row.errors = None;
        before = Some(row.t_s);
        out.write(&row)?;
    }
    Ok(())
}

/// What `path` itself is, without following a symbolic link.
fn real(path: &Path) -> Option<std::fs::FileType> {
    std::fs::symlink_metadata(path).ok().map(|m| m.file_type())
}

/// Copies `from` when it is a regular file of the shard's folder; a
/// symbolic link (which may lead anywhere: `server.log -> /etc/shadow`) is
/// not copied, nor is anything else that is no regular file. The source is
/// opened by [`crate::bounded::open_regular`] and copied from that handle,
/// so it cannot be swapped for a link between a check and the copy; the
/// copy is staged beside `to` and renamed over it, so a link already at
/// `to` is replaced, never written through.
fn copy_if_there(from: &Path, to: &Path) -> Result<(), RunFileError> {
    let mut source = match crate::bounded::open_regular(from) {
        Ok(file) => file,
        Err(RunFileError::Read { source, .. }) if source.kind() != std::io::ErrorKind::NotFound => {
            return Err(RunFileError::Read {
                path: from.to_path_buf(),
                source,
            })
        }
        // Absent, a link, or no regular file: nothing to copy.
        Err(_) => return Ok(()),
    };
    let mut staged = crate::atomic::Staged::beside(to).map_err(RunFileError::write(to))?;
    std::io::copy(&mut source, staged.file()).map_err(RunFileError::write(to))?;
    staged.commit().map_err(RunFileError::write(to))
}

#[cfg(test)]
mod copy_tests {
    use super::copy_if_there;

    /// A shard's linked server.log is not copied, and a link already at
    /// the destination is replaced, not written through.
    #[test]
    fn links_are_neither_copied_from_nor_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside.txt");
        std::fs::write(&outside, "outside").unwrap();
        let (shard, out) = (dir.path().join("shard"), dir.path().join("out"));
        std::fs::create_dir(&shard).unwrap();
        std::fs::create_dir(&out).unwrap();

        std::os::unix::fs::symlink(&outside, shard.join("server.log")).unwrap();
        copy_if_there(&shard.join("server.log"), &out.join("server.log")).unwrap();
        assert!(
            !out.join("server.log").exists(),
            "a linked source is not copied"
        );
        copy_if_there(&shard.join("absent.log"), &out.join("absent.log")).unwrap();

        std::fs::remove_file(shard.join("server.log")).unwrap();
        std::fs::write(shard.join("server.log"), "shard's own log").unwrap();
        std::os::unix::fs::symlink(&outside, out.join("server.log")).unwrap();
        copy_if_there(&shard.join("server.log"), &out.join("server.log")).unwrap();
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "outside");
        let copied = out.join("server.log");
        assert!(!std::fs::symlink_metadata(&copied).unwrap().is_symlink());
        assert_eq!(std::fs::read_to_string(&copied).unwrap(), "shard's own log");
    }
}
