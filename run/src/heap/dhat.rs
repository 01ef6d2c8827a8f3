//! The top allocation sites of a dhat heap profile (`dhat-heap.json`,
//! DHAT's JSON format version 2, as written by clw-auth built with
//! `--features dhat-heap`), at the heap's peak and at exit: what `clw-cli
//! dhat FILE` prints. It sits with the pprof reader, in the one home for
//! heap profiles, though its site rule is its own (below): dhat's frames
//! are text dhat already symbolized, judged by function name.
//!
//! The file lists program points (`pps`: one allocation stack each, with
//! the bytes it held at the global peak, `gb`, and at exit, `eb`) whose
//! frames index a frame table (`ftbl`, "0xADDR: function (file:line:col)").
//! A site here is the first frame of a stack that is not allocator or
//! standard-library plumbing, so `Vec::push` inside a cache's `insert` is
//! counted under the cache. DHAT's viewer (dh_view.html) shows full stacks.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use clw_units::format_size;
use serde::Deserialize;

/// Why a file could not be read as a dhat heap profile.
#[derive(Debug, thiserror::Error)]
pub enum DhatError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Not DHAT JSON, or not a version this reads.
    #[error("{path}: not a dhat heap profile: {why}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong, with the line and column where serde saw it.
        why: String,
    },
}

#[derive(Debug, Deserialize)]
struct DhatFile {
    #[serde(rename = "dhatFileVersion")]
    version: u32,
    mode: String,
    /// Time unit, e.g. "µs".
    #[serde(default)]
    tu: String,
    /// Time of the global heap peak.
    tg: Option<u64>,
    /// Time at exit.
    te: u64,
    pps: Vec<ProgramPoint>,
    ftbl: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct ProgramPoint {
    /// Bytes and blocks live at the global peak.
    gb: Option<u64>,
    gbk: Option<u64>,
    /// Bytes and blocks live at exit.
    eb: Option<u64>,
    ebk: Option<u64>,
    /// Frame-table indices, innermost first.
    fs: Vec<usize>,
}

/// One allocation site and what it held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// The function, demangled as dhat wrote it.
    pub function: String,
    /// `file:line`, or empty when the binary had no debug info for it.
    pub location: String,
    /// Bytes live.
    pub bytes: u64,
    /// Blocks live.
    pub blocks: u64,
}

/// The top sites at the peak and at exit.
#[derive(Debug, Clone)]
pub struct HeapSites {
    /// Total bytes live at the peak, and the sites holding most of them.
    pub peak_bytes: u64,
    /// Largest first.
    pub at_peak: Vec<Site>,
    /// Total bytes live at exit.
    pub exit_bytes: u64,
    /// Largest first.
    pub at_exit: Vec<Site>,
    /// When the peak was, and when the program ended, in `time_unit`.
    pub peak_time: Option<u64>,
    /// End time.
    pub end_time: u64,
    /// The time unit (dhat writes µs).
    pub time_unit: String,
}

/// Frames of allocator and standard-library plumbing, skipped to reach
/// the code that asked for the memory.
const PLUMBING: [&str; 6] = [
    "alloc::",
    "core::",
    "std::",
    "dhat::",
    "hashbrown::",
    "[root]",
];

fn is_plumbing(function: &str) -> bool {
    let f = function.trim_start_matches('<');
    PLUMBING.iter().any(|p| f.starts_with(p)) || f.starts_with("__rust")
}

/// Splits "0x5f1c: clw_auth::cache::insert (auth-server/src/cache/mod.rs:120:9)"
/// into the function and "file:line".
fn parse_frame(frame: &str) -> (String, String) {
    let rest = match frame.split_once(": ") {
        Some((addr, rest)) if addr.starts_with("0x") => rest,
        _ => frame,
    };
    if let Some((function, loc)) = rest.strip_suffix(')').and_then(|r| r.rsplit_once(" (")) {
        // file:line:col -> file:line
        let loc = match loc.rsplit_once(':') {
            Some((file_line, col)) if col.chars().all(|c| c.is_ascii_digit()) => file_line,
            _ => loc,
        };
        (function.to_string(), loc.to_string())
    } else {
        (rest.to_string(), String::new())
    }
}

impl HeapSites {
    /// Reads `path`; `top` sites are kept for each moment.
    pub fn read(path: &Path, top: usize) -> Result<HeapSites, DhatError> {
        let text = std::fs::read_to_string(path).map_err(|source| DhatError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, top).map_err(|why| DhatError::Format {
            path: path.display().to_string(),
            why,
        })
    }

    /// Parses dhat JSON text.
    pub fn parse(text: &str, top: usize) -> Result<HeapSites, String> {
        let file: DhatFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if file.version != 2 {
            return Err(format!(
                "dhatFileVersion is {}, this reads version 2",
                file.version
            ));
        }
        if file.mode != "rust-heap" && file.mode != "heap" {
            return Err(format!(
                "mode is `{}`: an ad-hoc or copy profile has no live heap to list (build with --features dhat-heap)",
                file.mode
            ));
        }
        let mut site_of = Vec::with_capacity(file.pps.len());
        for (i, pp) in file.pps.iter().enumerate() {
            let mut frames = Vec::with_capacity(pp.fs.len());
            for &f in &pp.fs {
                let frame = file.ftbl.get(f).ok_or_else(|| {
                    format!(
                        "pps[{i}] names frame {f}, past the frame table's {} entries",
                        file.ftbl.len()
                    )
                })?;
                frames.push(parse_frame(frame));
            }
            let site = frames
                .iter()
                .find(|(function, _)| !is_plumbing(function))
                .or(frames.first())
                .cloned()
                .unwrap_or_else(|| ("[unknown]".into(), String::new()));
            site_of.push(site);
        }
        let rank = |bytes: &dyn Fn(&ProgramPoint) -> (u64, u64)| {
            let mut by_site: HashMap<&(String, String), (u64, u64)> = HashMap::new();
            for (pp, site) in file.pps.iter().zip(&site_of) {
                let (b, k) = bytes(pp);
                let e = by_site.entry(site).or_default();
                e.0 += b;
                e.1 += k;
            }
            let total = by_site.values().map(|v| v.0).sum::<u64>();
            let mut sites: Vec<Site> = by_site
                .into_iter()
                .filter(|(_, (b, _))| *b > 0)
                .map(|((function, location), (bytes, blocks))| Site {
                    function: function.clone(),
                    location: location.clone(),
                    bytes,
                    blocks,
                })
                .collect();
            sites.sort_by(|a, b| {
                b.bytes
                    .cmp(&a.bytes)
                    .then_with(|| a.function.cmp(&b.function))
            });
            sites.truncate(top);
            (total, sites)
        };
        let (peak_bytes, at_peak) = rank(&|pp| (pp.gb.unwrap_or(0), pp.gbk.unwrap_or(0)));
        let (exit_bytes, at_exit) = rank(&|pp| (pp.eb.unwrap_or(0), pp.ebk.unwrap_or(0)));
        Ok(HeapSites {
            peak_bytes,
            at_peak,
            exit_bytes,
            at_exit,
            peak_time: file.tg,
            end_time: file.te,
            time_unit: file.tu,
        })
    }

    /// The console listing.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let when =
            |t: Option<u64>| t.map_or(String::new(), |t| format!(" at {t} {}", self.time_unit));
        let mut table = |title: String, total: u64, sites: &[Site]| {
            let _ = writeln!(out, "{title}: {} live", format_size(total));
            if sites.is_empty() {
                let _ = writeln!(out, "  (nothing)");
            }
            for (i, s) in sites.iter().enumerate() {
                let share = s.bytes as f64 * 100.0 / total.max(1) as f64;
                let _ = writeln!(
                    out,
                    "  {:>2}. {:>10} {:>5.1}% {:>8} blocks  {}  {}",
                    i + 1,
                    format_size(s.bytes),
                    share,
                    s.blocks,
                    s.function,
                    if s.location.is_empty() {
                        "(no debug info)"
                    } else {
                        &s.location
                    }
                );
            }
        };
        table(
            format!("At the heap's peak{}", when(self.peak_time)),
            self.peak_bytes,
            &self.at_peak,
        );
        table(
            format!("At exit{}", when(Some(self.end_time))),
            self.exit_bytes,
            &self.at_exit,
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = include_str!("../../tests/fixtures/dhat-heap.json");

    #[test]
    fn ranks_sites_by_bytes_at_peak_and_at_exit_past_the_allocator_frames() {
        let sites = HeapSites::parse(FIXTURE, 5).unwrap();
        assert_eq!(sites.peak_bytes, 6_000 + 2_000 + 500);
        assert_eq!(sites.exit_bytes, 4_000);
        let top = &sites.at_peak[0];
        assert_eq!(top.function, "clw_auth::cache::leaky::LeakyCache::insert");
        assert_eq!(top.location, "auth-server/src/cache/leaky.rs:120");
        // Two program points under the same site add up.
        assert_eq!((top.bytes, top.blocks), (6_000, 30));
        assert_eq!(
            sites.at_peak[1].function,
            "clw_auth::routes::login::{{closure}}"
        );
        // A stack of plumbing only is named by its innermost frame.
        assert_eq!(sites.at_peak[2].function, "std::rt::lang_start_internal");
        assert_eq!(
            sites.at_exit.len(),
            1,
            "sites with nothing left are not listed"
        );
        assert_eq!(sites.at_exit[0].bytes, 4_000);
        let text = sites.render();
        assert!(
            text.contains("At the heap's peak at 1500 µs: 8.3 KiB live"),
            "{text}"
        );
        assert!(
            text.contains(
                "clw_auth::cache::leaky::LeakyCache::insert  auth-server/src/cache/leaky.rs:120"
            ),
            "{text}"
        );
    }

    #[test]
    fn frames_split_into_function_and_file_line() {
        assert_eq!(
            parse_frame("0x55d0: clw_auth::x::y (src/a.rs:12:5)"),
            ("clw_auth::x::y".into(), "src/a.rs:12".into())
        );
        assert_eq!(parse_frame("[root]"), ("[root]".into(), String::new()));
        assert_eq!(
            parse_frame("0x1: <alloc::vec::Vec<T> as core::clone::Clone>::clone (x.rs:3:1)").0,
            "<alloc::vec::Vec<T> as core::clone::Clone>::clone"
        );
    }

    #[test]
    fn other_files_are_refused_with_the_reason() {
        let err = HeapSites::parse("{\"dhatFileVersion\":1}", 5).unwrap_err();
        assert!(
            err.contains("missing field") || err.contains("version"),
            "{err}"
        );
        let adhoc = FIXTURE.replace("\"rust-heap\"", "\"rust-ad-hoc\"");
        assert!(HeapSites::parse(&adhoc, 5).unwrap_err().contains("ad-hoc"));
        let bad_frame = FIXTURE.replace("\"fs\": [1, 2, 3]", "\"fs\": [99]");
        assert!(HeapSites::parse(&bad_frame, 5)
            .unwrap_err()
            .contains("frame 99"));
    }
}
