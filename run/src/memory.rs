//! summary.json's `memory` block: the memory figures of a run and the
//! verdict on them (docs/memory.md says how the verdict is reached).

use serde::{Deserialize, Deserializer, Serialize};

/// Does the server leak? Serialized as `leak`, `bounded`, `inconclusive`:
/// the strings users (and the Makefile's jq) match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Memory grew without levelling off (or climbed into an OOM kill).
    Leak,
    /// Memory levelled off or fell.
    Bounded,
    /// Too few samples, or growth without a steady trend: run longer.
    Inconclusive,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Leak => "leak",
            Verdict::Bounded => "bounded",
            Verdict::Inconclusive => "inconclusive",
        }
    }

    /// Case-insensitive; `None` for anything else.
    pub fn parse(text: &str) -> Option<Verdict> {
        [Verdict::Leak, Verdict::Bounded, Verdict::Inconclusive]
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(text.trim()))
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `memory.sources`: which source each figure came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemorySources {
    /// `proc` (/proc/PID/status) or `metrics` (process_resident_memory_bytes).
    pub rss: Option<String>,
    /// What `proc` measured when it was more than one process: `process
    /// tree of PID (N processes)`. Absent for one process.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_scope: Option<String>,
    /// `metrics` (clw_jemalloc_* gauges).
    pub allocator: Option<String>,
    /// The limit method (`cgroup-v1`, ...) whose usage file was read.
    pub cgroup: Option<String>,
    /// Where the limit came from: `--memory-limit`, or `metrics` (the
    /// service's own `clw_memory_limit_bytes`). Absent when unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
    /// The `--heap-metric` selector whose series is the allocated bytes
    /// (the service's own heap gauge); absent for clw-auth's allocator.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heap_metric: Option<String>,
}

/// summary.json's `memory` block. Unknown numbers are `None` (null), never 0.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemoryReport {
    /// Rows of samples.csv the figures come from.
    pub samples: usize,
    pub limit_bytes: Option<u64>,
    #[serde(deserialize_with = "crate::de::null_default")]
    pub sources: MemorySources,
    pub peak_rss_bytes: Option<u64>,
    /// The peak's share of the limit: of the figure `peak_percent_of`
    /// names (the cgroup's charged memory when the server ran in one, else
    /// `peak_rss_bytes`). The field guide's 80% rule reads it.
    pub peak_rss_percent: Option<f64>,
    /// What `peak_rss_percent` is a share of: `cgroup working set` (usage
    /// less inactive file cache), `cgroup usage`, `RSS` or `server memory`.
    /// Absent in summaries written before it (then: RSS).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_percent_of: Option<String>,
    /// The peak of the cgroup's charged memory (`peak_percent_of`), when
    /// the server ran in a memory cgroup: what the kernel charged against
    /// the limit and OOM-kills on. RSS can exceed it (file pages the cgroup
    /// does not charge).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_charged_bytes: Option<u64>,
    pub peak_allocated_bytes: Option<u64>,
    pub peak_allocated_percent: Option<f64>,
    pub slope_bytes_per_s: Option<f64>,
    pub r_squared: Option<f64>,
    /// Memory levelled off after ramp-up. Never `true` beside a `leak`.
    pub plateau: Option<bool>,
    pub retained_bytes_per_session: Option<f64>,
    /// `None` only when read from a summary.json that lacks it (a run killed
    /// before its verdict, or an unknown word): readers recompute it from
    /// samples.csv. clw-cli always writes one.
    #[serde(deserialize_with = "lenient_verdict")]
    pub verdict: Option<Verdict>,
    /// One sentence per fact the verdict rests on, in the order decided.
    #[serde(deserialize_with = "crate::de::null_default")]
    pub evidence: Vec<String>,
    pub projected_time_to_limit_s: Option<f64>,
    /// The rank-based growth test the verdict rests on (docs/memory.md);
    /// absent when too few samples were taken to run it.
    pub trend: Option<TrendReport>,
    /// Seconds after load start at which the live verdict first said
    /// `leak` (clw-cli decides it while the load runs); null if never.
    pub leak_detected_at_s: Option<f64>,
    /// The allocation sites that grew most between the run's first and last
    /// heap profile (`heap/*.pb.gz`), largest first; absent when fewer than
    /// two profiles were taken (docs/memory.md, "Growth sites").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub growth_sites: Option<Vec<crate::GrowthSite>>,
}

/// `memory.trend`: Mann–Kendall on block maxima, with a Theil–Sen slope.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrendReport {
    /// The column tested: `allocated`, `RSS` or `cgroup usage`.
    pub series: String,
    /// `mann-kendall`.
    pub test: String,
    /// Points tested: the maximum of each block of `block_s` seconds.
    pub blocks: usize,
    pub block_s: f64,
    /// One-sided p-value of "memory rises" (1 - confidence).
    pub p_value: f64,
    /// Kendall's tau: -1 (always falling) to 1 (always rising).
    pub tau: f64,
    /// Theil–Sen slope and its interval at `slope_confidence`; a bound is
    /// null when too few blocks bound it.
    pub slope_bytes_per_s: f64,
    pub slope_low_bytes_per_s: Option<f64>,
    pub slope_high_bytes_per_s: Option<f64>,
    pub slope_confidence: f64,
    /// Significant, and large at the slope's lower bound: a real rise.
    pub rising: bool,
}

impl MemoryReport {
    /// The block when nothing is known yet (or ever): nulls and an
    /// `inconclusive` verdict. summary.json holds it until the run ends.
    pub fn placeholder(limit_bytes: Option<u64>) -> MemoryReport {
        MemoryReport {
            limit_bytes,
            verdict: Some(Verdict::Inconclusive),
            evidence: vec!["no memory samples".into()],
            ..MemoryReport::default()
        }
    }
}

/// An unknown verdict word reads as "no verdict" (recomputed), not as a
/// summary.json that cannot be read at all.
fn lenient_verdict<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Verdict>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.and_then(|s| Verdict::parse(&s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_strings_are_todays() {
        for (v, s) in [
            (Verdict::Leak, "\"leak\""),
            (Verdict::Bounded, "\"bounded\""),
            (Verdict::Inconclusive, "\"inconclusive\""),
        ] {
            assert_eq!(serde_json::to_string(&v).unwrap(), s);
        }
    }

    #[test]
    fn placeholder_serializes_as_before() {
        let v = serde_json::to_value(MemoryReport::placeholder(Some(5))).unwrap();
        let before = serde_json::json!({
            "samples": 0, "limit_bytes": 5,
            "sources": {"rss": null, "allocator": null, "cgroup": null},
            "peak_rss_bytes": null, "peak_rss_percent": null,
            "peak_allocated_bytes": null, "peak_allocated_percent": null,
            "slope_bytes_per_s": null, "r_squared": null, "plateau": null,
            "retained_bytes_per_session": null,
            "verdict": "inconclusive", "evidence": ["no memory samples"],
            "projected_time_to_limit_s": null,
            "trend": null, "leak_detected_at_s": null
        });
        assert_eq!(v, before);
    }

    #[test]
    fn missing_null_or_unknown_verdict_reads_as_none() {
        for text in [r#"{}"#, r#"{"verdict": null}"#, r#"{"verdict": "maybe"}"#] {
            let m: MemoryReport = serde_json::from_str(text).unwrap();
            assert_eq!(m.verdict, None, "{text}");
        }
        let m: MemoryReport =
            serde_json::from_str(r#"{"verdict": "LEAK", "sources": null}"#).unwrap();
        assert_eq!(m.verdict, Some(Verdict::Leak));
    }
}
