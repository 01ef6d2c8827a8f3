//! One run from the run folders of a sharded run (`clw-cli merge`,
//! docs/loadgen.md "Sharded runs").
//!
//! Exact, not averaged: counts are summed, and the latency histograms of
//! latency.hlog are added bucket by bucket (`Histogram::add`), so the merged
//! percentiles are those of every request of every shard together.
//! Intervals are aligned by their start in latency.hlog (seconds since each
//! shard's load start); shards started with one `--start-at` share that
//! start, and the merge records how far apart they really began
//! (`merged.start_spread_s`). Memory (samples, verdict, heap profiles) comes
//! from the one shard that sampled it.
//!
//! [`check`] and [`merge_summary`], [`merge_intervals`], [`latency_rows`]
//! are pure functions over the typed model; [`load`] and [`write_files`]
//! are the only ones that touch the file system.

mod errors;
mod latency;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::error::RunFileError;
use crate::hlog::HlogInterval;
use crate::summary::{MergeInfo, RunSummary, ShardInfo};
use crate::threshold::Threshold;

pub use errors::merge_errors;
pub use latency::{latency_rows, merge_intervals, step_histograms, write_files, IntervalSum};

/// One shard's run folder, read.
#[derive(Debug, Clone)]
pub struct ShardRun {
    pub dir: PathBuf,
    pub summary: RunSummary,
    pub shard: ShardInfo,
    /// latency.hlog's `StartTime`: the instant the shard's load began.
    pub start: Option<SystemTime>,
}

/// Why shards cannot be merged: always naming the folder and the problem.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error(transparent)]
    File(#[from] RunFileError),
    #[error("no run folders to merge")]
    Empty,
    #[error("{0}: not a shard's run folder (its summary.json has no `shard`: the run was not made with --shard I/N)")]
    NotAShard(PathBuf),
    #[error("{dir}: scenario `{found}`, but {first} ran `{expected}`: shards of different scenarios do not merge")]
    Scenario {
        dir: PathBuf,
        found: String,
        first: PathBuf,
        expected: String,
    },
    #[error("{dir}: shard {index}/{found}, but {first} is one of {expected} shards")]
    Count {
        dir: PathBuf,
        index: u32,
        found: u32,
        first: PathBuf,
        expected: u32,
    },
    #[error("{dir} and {other} are both shard {index}/{count}: each shard may be merged once")]
    Duplicate {
        dir: PathBuf,
        other: PathBuf,
        index: u32,
        count: u32,
    },
    #[error("{dir}: {what} differs from {first}'s: shards of one run share it")]
    Mismatch {
        dir: PathBuf,
        first: PathBuf,
        what: &'static str,
    },
    #[error("{dir} (shard {index}) and {other} (shard {other_index}) both sampled the server's memory: give every shard the same --shard-samples-memory")]
    TwoSamplers {
        dir: PathBuf,
        index: u32,
        other: PathBuf,
        other_index: u32,
    },
    #[error("shard{} {} of {count} missing: merge every shard's folder, or pass --allow-partial for a partial result", if .missing.len() > 1 { "s" } else { "" }, list(.missing))]
    Missing { missing: Vec<u32>, count: u32 },
    /// Request counts no run can have: a sum that does not add up, or
    /// figures so large that adding the shards' would overflow.
    #[error(
        "{dir}: impossible request counts ({why}): this folder was not written by a clw-cli run"
    )]
    Impossible { dir: PathBuf, why: String },
}

/// The most requests one shard may claim: 2^48, some nine years at a
/// million requests per second. Any real run is far below, and so no sum
/// of shards' figures can overflow.
pub const MAX_REQUESTS: u64 = 1 << 48;

/// A shard's request counts add up and stay below [`MAX_REQUESTS`].
fn plausible(s: &ShardRun) -> Result<(), MergeError> {
    let r = &s.summary.requests;
    let impossible = |why: String| MergeError::Impossible {
        dir: s.dir.clone(),
        why,
    };
    let big = [
        ("total", r.total),
        ("ok", r.ok),
        ("failed", r.failed),
        ("dropped_iterations", s.summary.dropped_iterations),
        ("connections_opened", s.summary.connections_opened),
    ];
    if let Some((name, n)) = big.iter().find(|(_, n)| *n > MAX_REQUESTS) {
        return Err(impossible(format!("{name} {n} is above {MAX_REQUESTS}")));
    }
    if r.ok + r.failed != r.total {
        return Err(impossible(format!(
            "ok {} + failed {} is not total {}",
            r.ok, r.failed, r.total
        )));
    }
    Ok(())
}

fn list(indexes: &[u32]) -> String {
    indexes
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads a shard's summary.json and latency.hlog's start time (its
/// intervals are read one shard at a time by [`read_intervals`]).
pub fn load(dir: &Path) -> Result<ShardRun, MergeError> {
    let summary = RunSummary::read(&dir.join(crate::files::SUMMARY))?;
    let shard = summary
        .shard
        .clone()
        .ok_or_else(|| MergeError::NotAShard(dir.to_path_buf()))?;
    let hlog = dir.join(crate::files::HLOG);
    let start = crate::hlog::read_hlog_start(&hlog)?;
    Ok(ShardRun {
        dir: dir.to_path_buf(),
        summary,
        shard,
        start,
    })
}

/// A shard's latency.hlog intervals.
pub fn read_intervals(shard: &ShardRun) -> Result<Vec<HlogInterval>, MergeError> {
    let (intervals, _) = crate::hlog::read_hlog(&shard.dir.join(crate::files::HLOG))?;
    Ok(intervals)
}

/// Checks that `shards` are parts of one run, each once, and (unless
/// `allow_partial`) all of them; returns what the merge is made of.
pub fn check(shards: &[ShardRun], allow_partial: bool) -> Result<MergeInfo, MergeError> {
    let first = shards.first().ok_or(MergeError::Empty)?;
    let count = first.shard.count;
    let mut seen: BTreeMap<u32, &ShardRun> = BTreeMap::new();
    let mut sampler: Option<&ShardRun> = None;
    for s in shards {
        plausible(s)?;
        if s.summary.scenario != first.summary.scenario {
            return Err(MergeError::Scenario {
                dir: s.dir.clone(),
                found: s.summary.scenario.clone(),
                first: first.dir.clone(),
                expected: first.summary.scenario.clone(),
            });
        }
        if s.shard.count != count || s.shard.index == 0 || s.shard.index > count {
            return Err(MergeError::Count {
                dir: s.dir.clone(),
                index: s.shard.index,
                found: s.shard.count,
                first: first.dir.clone(),
                expected: count,
            });
        }
        let (a, b) = (&s.summary, &first.summary);
        let what = if a.concurrent_users != b.concurrent_users {
            Some("the whole run's --concurrent-users")
        } else if a.arrival_rate != b.arrival_rate || a.model != b.model {
            Some("the load model (--arrival-rate)")
        } else if a.duration_s != b.duration_s {
            Some("--duration")
        } else if a.shard.as_ref().map(|s| &s.start_at) != b.shard.as_ref().map(|s| &s.start_at) {
            Some("--start-at")
        } else {
            None
        };
        if let Some(what) = what {
            return Err(MergeError::Mismatch {
                dir: s.dir.clone(),
                first: first.dir.clone(),
                what,
            });
        }
        if let Some(other) = seen.insert(s.shard.index, s) {
            return Err(MergeError::Duplicate {
                dir: s.dir.clone(),
                other: other.dir.clone(),
                index: s.shard.index,
                count,
            });
        }
        if s.shard.samples_memory {
            if let Some(other) = sampler {
                return Err(MergeError::TwoSamplers {
                    dir: s.dir.clone(),
                    index: s.shard.index,
                    other: other.dir.clone(),
                    other_index: other.shard.index,
                });
            }
            sampler = Some(s);
        }
    }
    let missing: Vec<u32> = (1..=count).filter(|i| !seen.contains_key(i)).collect();
    if !missing.is_empty() && !allow_partial {
        return Err(MergeError::Missing { missing, count });
    }
    let starts: Vec<SystemTime> = shards.iter().filter_map(|s| s.start).collect();
    let start_spread_s = match (starts.iter().min(), starts.iter().max()) {
        (Some(lo), Some(hi)) => Some(hi.duration_since(*lo).unwrap_or_default().as_secs_f64()),
        _ => None,
    };
    Ok(MergeInfo {
        count,
        shards: seen.keys().copied().collect(),
        partial: !missing.is_empty(),
        missing,
        memory_from: sampler.map(|s| s.shard.index),
        start_spread_s,
    })
}

/// The shard whose memory the merged run carries, else the first.
fn base<'a>(shards: &'a [ShardRun], info: &MergeInfo) -> &'a ShardRun {
    shards
        .iter()
        .find(|s| Some(s.shard.index) == info.memory_from)
        .or_else(|| shards.iter().min_by_key(|s| s.shard.index))
        .expect("check() refuses an empty merge")
}

/// The merged summary.json, not yet judged (the caller evaluates
/// [`thresholds`] on it): counts summed, percentiles from the merged
/// histograms (`intervals`, from [`merge_intervals`]), memory and server
/// from the sampling shard.
pub fn merge_summary(
    shards: &[ShardRun],
    info: &MergeInfo,
    intervals: &[HlogInterval],
) -> RunSummary {
    let base = base(shards, info);
    let mut out = base.summary.clone();
    out.shard = None;
    out.merged = Some(info.clone());
    out.complete = shards.iter().all(|s| s.summary.complete);
    out.started_at = shards
        .iter()
        .map(|s| s.summary.started_at.clone())
        .min()
        .unwrap_or_default();
    out.elapsed_s = shards
        .iter()
        .filter_map(|s| s.summary.elapsed_s)
        .reduce(f64::max);
    out.requests = Default::default();
    out.after_death = None;
    out.dropped_iterations = 0;
    out.connections_opened = 0;
    out.steps = BTreeMap::new();
    out.notes = Vec::new();
    out.interrupted = false;
    out.interrupted_by = None;
    out.aborted = None;
    out.thresholds = Vec::new();
    out.passed = None;
    out.failures = Vec::new();
    if info.memory_from.is_none() {
        out.memory = Some(crate::MemoryReport::placeholder(base.summary.limit_bytes()));
        out.server.exit = None;
        out.notes.push(
            "memory not sampled: no merged shard sampled it (the sampling shard is missing)".into(),
        );
    }
    for s in shards {
        let r = &s.summary.requests;
        out.requests.total += r.total;
        out.requests.ok += r.ok;
        out.requests.failed += r.failed;
        for (k, n) in &r.by_status {
            *out.requests.by_status.entry(k.clone()).or_default() += n;
        }
        for (k, n) in &r.by_error {
            *out.requests.by_error.entry(k.clone()).or_default() += n;
        }
        if let Some(theirs) = &s.summary.after_death {
            add_after_death(&mut out.after_death, theirs);
        }
        out.dropped_iterations += s.summary.dropped_iterations;
        if let (Some(tls), Some(theirs)) = (out.tls.as_mut(), &s.summary.tls) {
            // Every shard's connections shook hands with the one server.
            if s.shard.index != base.shard.index {
                tls.handshakes += theirs.handshakes;
            }
            // One shard's percentiles are not the run's, and shards'
            // percentiles do not add up: unknown rather than wrong.
            tls.handshake_ms = None;
        }
        out.connections_opened += s.summary.connections_opened;
        for (name, step) in &s.summary.steps {
            let merged = out.steps.entry(name.clone()).or_default();
            merged.requests += step.requests;
            merged.errors += step.errors;
        }
        let label = format!("shard {}/{}", s.shard.index, s.shard.count);
        if s.summary.interrupted && !out.interrupted {
            out.interrupted = true;
            out.interrupted_by = s.summary.interrupted_by.clone();
        }
        if let (None, Some(why)) = (&out.aborted, &s.summary.aborted) {
            out.aborted = Some(format!("{label}: {why}"));
        }
        out.notes
            .extend(s.summary.notes.iter().map(|n| format!("{label}: {n}")));
    }
    out.throughput_rps = out
        .life_s()
        .filter(|e| *e > 0.0)
        .map(|e| out.requests.total as f64 / e);
    let open = out.model == crate::Model::Open;
    let (all, per_step) = step_histograms(intervals);
    let corrected = |h: Option<&hdrhistogram::Histogram<u64>>| {
        h.filter(|_| open).and_then(crate::Percentiles::of)
    };
    out.latency_ms = crate::Percentiles::of(&all.plain);
    out.latency_corrected_ms = corrected(Some(&all.corrected));
    for (name, step) in out.steps.iter_mut() {
        let hist = per_step.get(&crate::hlog::sanitize_tag(name));
        step.latency_ms = hist.and_then(|h| crate::Percentiles::of(&h.plain));
        step.latency_corrected_ms = corrected(hist.map(|h| &h.corrected));
    }
    if let Some(spread) = info.start_spread_s.filter(|s| *s > 1.0) {
        out.notes.push(format!(
            "the shards' loads began {spread:.1} s apart (start them with one --start-at): their seconds are merged by offset from each one's own start"
        ));
    }
    out
}

/// The failure a partial merge carries: it measured only part of the load.
pub fn partial_failure(info: &MergeInfo) -> String {
    format!(
        "partial result: shard{} {} of {} missing (merged with --allow-partial)",
        if info.missing.len() > 1 { "s" } else { "" },
        list(&info.missing),
        info.count
    )
}

/// The thresholds to judge the merged run on: every rule any shard was
/// held to (a shard that does not sample memory leaves out the memory
/// rules), each once, in the order first seen.
pub fn thresholds(shards: &[ShardRun]) -> Vec<Threshold> {
    let mut exprs: Vec<&str> = Vec::new();
    let mut ordered: Vec<&ShardRun> = shards.iter().collect();
    ordered.sort_by_key(|s| (!s.shard.samples_memory, s.shard.index));
    for s in ordered {
        for t in &s.summary.thresholds {
            if !exprs.contains(&t.expr.as_str()) {
                exprs.push(&t.expr);
            }
        }
    }
    exprs
        .into_iter()
        .filter_map(|e| crate::threshold::parse(e).ok())
        .collect()
}

/// Sum a shard's requests sent after the server's death into the merged
/// run's; the death is the earliest any shard saw.
fn add_after_death(out: &mut Option<crate::AfterDeath>, theirs: &crate::AfterDeath) {
    let out = out.get_or_insert_with(|| crate::AfterDeath {
        from_s: theirs.from_s,
        ..Default::default()
    });
    out.from_s = out.from_s.min(theirs.from_s);
    out.requests += theirs.requests;
    out.failed += theirs.failed;
    for (k, n) in &theirs.by_error {
        *out.by_error.entry(k.clone()).or_default() += n;
    }
}

#[cfg(test)]
mod tests;
