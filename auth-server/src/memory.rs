//! What the service knows about its own memory: jemalloc's statistics, the
//! process RSS, and the limit it will be killed at.
//!
//! The limit comes from the process's own memory cgroup when one applies
//! (v2 `memory.max`, v1 `memory.limit_in_bytes`, the tightest along the
//! path to the root), else from config, else physical memory: the same
//! order in which the kernel would enforce them.

use std::path::{Path, PathBuf};

use serde::Serialize;
use tikv_jemalloc_ctl::{epoch, stats};

/// jemalloc's view of the heap, in bytes.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct AllocStats {
    /// Bytes handed to the application.
    pub allocated: u64,
    /// Bytes in active pages (allocated plus fragmentation in those pages).
    pub active: u64,
    /// Bytes in physically resident data pages mapped by the allocator.
    pub resident: u64,
    /// Bytes in chunks mapped by the allocator.
    pub mapped: u64,
    /// Bytes retained (virtual memory kept for reuse, not resident).
    pub retained: u64,
}

/// Reads jemalloc's statistics after advancing its epoch, so the figures are
/// current. Costs a few microseconds: cheap enough for a 100 ms scrape.
/// In a process whose global allocator is not jemalloc the figures are
/// jemalloc's own (near zero), not the process heap.
pub fn alloc_stats() -> AllocStats {
    let _ = epoch::advance();
    AllocStats {
        allocated: stats::allocated::read().unwrap_or(0) as u64,
        active: stats::active::read().unwrap_or(0) as u64,
        resident: stats::resident::read().unwrap_or(0) as u64,
        mapped: stats::mapped::read().unwrap_or(0) as u64,
        retained: stats::retained::read().unwrap_or(0) as u64,
    }
}

/// Asks jemalloc to return every arena's dirty pages to the OS now, so RSS
/// falls back to what is allocated (the guide's `gc_frequency`).
pub fn purge() {
    // MALLCTL_ARENAS_ALL is 4096: "arena.4096.purge" purges every arena.
    let name = b"arena.4096.purge\0";
    // SAFETY: a void mallctl; jemalloc reads no old/new value pointers when
    // they are null, and the name is NUL-terminated.
    unsafe {
        tikv_jemalloc_sys::mallctl(
            name.as_ptr() as *const _,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        );
    }
}

/// The process's resident set size, from /proc/self/statm.
pub fn rss_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = text.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * page.max(1) as u64)
}

/// Where the memory limit came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LimitSource {
    /// cgroup v2 `memory.max`.
    CgroupV2,
    /// cgroup v1 `memory.limit_in_bytes`.
    CgroupV1,
    /// `authentication.memory.limit`.
    Config,
    /// No limit applies: physical memory (MemTotal).
    Physical,
}

/// The memory limit and its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MemoryLimit {
    /// Bytes.
    pub bytes: u64,
    /// Where it came from.
    pub source: LimitSource,
}

/// v1 reports "no limit" as a page-rounded i64::MAX; anything this large is none.
const UNLIMITED: u64 = 1 << 60;

/// Finds the limit for this process (see the module docs).
pub fn detect_limit(configured: Option<u64>) -> MemoryLimit {
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    if let Some(limit) = cgroup_limit(&cgroup, Path::new("/sys/fs/cgroup")) {
        return limit;
    }
    if let Some(bytes) = configured {
        return MemoryLimit {
            bytes,
            source: LimitSource::Config,
        };
    }
    MemoryLimit {
        bytes: physical_memory().unwrap_or(UNLIMITED),
        source: LimitSource::Physical,
    }
}

/// The tightest limit on the way from the process's cgroup to the root.
/// `proc_cgroup` is /proc/self/cgroup's text; `root` the cgroup mount.
pub(crate) fn cgroup_limit(proc_cgroup: &str, root: &Path) -> Option<MemoryLimit> {
    let mut best: Option<MemoryLimit> = None;
    let mut consider = |bytes: u64, source| {
        if bytes < UNLIMITED && best.is_none_or(|b| bytes < b.bytes) {
            best = Some(MemoryLimit { bytes, source });
        }
    };
    for line in proc_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (
            parts.next(),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
        );
        let (base, file, source) = if controllers.is_empty() {
            (root.to_path_buf(), "memory.max", LimitSource::CgroupV2)
        } else if controllers.split(',').any(|c| c == "memory") {
            (
                root.join("memory"),
                "memory.limit_in_bytes",
                LimitSource::CgroupV1,
            )
        } else {
            continue;
        };
        for dir in ancestors(&base, path) {
            if let Some(bytes) = read_limit(&dir.join(file)) {
                consider(bytes, source);
            }
        }
    }
    best
}

fn ancestors(base: &Path, path: &str) -> Vec<PathBuf> {
    let mut dirs = vec![base.to_path_buf()];
    let mut cur = base.to_path_buf();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        cur = cur.join(part);
        dirs.push(cur.clone());
    }
    dirs
}

fn read_limit(file: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(file).ok()?;
    let t = text.trim();
    if t == "max" {
        return None;
    }
    t.parse().ok()
}

fn physical_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_limit_is_the_tightest_on_the_path() {
        let root = tempfile::tempdir().unwrap();
        let leaf = root.path().join("a/b");
        std::fs::create_dir_all(&leaf).unwrap();
        std::fs::write(root.path().join("a/memory.max"), "268435456\n").unwrap();
        std::fs::write(leaf.join("memory.max"), "max\n").unwrap();
        let limit = cgroup_limit("0::/a/b\n", root.path()).unwrap();
        assert_eq!(
            limit,
            MemoryLimit {
                bytes: 256 << 20,
                source: LimitSource::CgroupV2
            }
        );
    }

    #[test]
    fn v1_unlimited_is_no_limit() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("memory/clw");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("memory.limit_in_bytes"), "9223372036854771712\n").unwrap();
        assert_eq!(
            cgroup_limit("5:memory:/clw\n3:cpu,cpuacct:/clw\n", root.path()),
            None
        );
        std::fs::write(dir.join("memory.limit_in_bytes"), "134217728\n").unwrap();
        let limit = cgroup_limit("5:memory:/clw\n", root.path()).unwrap();
        assert_eq!(
            limit,
            MemoryLimit {
                bytes: 128 << 20,
                source: LimitSource::CgroupV1
            }
        );
    }

    #[test]
    fn config_then_physical_when_no_cgroup_limit() {
        // Whatever cgroup this test runs in, a configured limit smaller than
        // any plausible cgroup limit is reported, or the cgroup's if tighter.
        let limit = detect_limit(Some(1 << 20));
        assert!(limit.bytes <= 1 << 20);
        let phys = physical_memory().unwrap();
        assert!(detect_limit(None).bytes <= phys);
    }

    #[test]
    fn rss_is_readable() {
        assert!(rss_bytes().unwrap() > 1 << 20);
    }
}
