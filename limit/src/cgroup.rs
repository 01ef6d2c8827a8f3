//! Fresh memory cgroups (v2 or v1): find a writable place, create one with a
//! limit and swap off, read its usage and oom_kill count, remove it.

use std::ffi::CString;
use std::fs::{self, File};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::Enforcement;

/// Which cgroup hierarchy a [`Cgroup`] (or a read one,
/// [`crate::CgroupMemory`]) lives in; decides the file names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

impl Version {
    /// `cgroup-v1` / `cgroup-v2`, as summary.json names limit methods.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V1 => "cgroup-v1",
            Version::V2 => "cgroup-v2",
        }
    }

    pub(crate) fn limit_file(self) -> &'static str {
        match self {
            Version::V1 => "memory.limit_in_bytes",
            Version::V2 => "memory.max",
        }
    }

    /// memory.stat's key for the file cache the kernel reclaims first.
    pub(crate) fn inactive_file_key(self) -> &'static str {
        match self {
            Version::V1 => "total_inactive_file",
            Version::V2 => "inactive_file",
        }
    }

    pub(crate) fn usage_file(self) -> &'static str {
        match self {
            Version::V1 => "memory.usage_in_bytes",
            Version::V2 => "memory.current",
        }
    }

    fn oom_file(self) -> &'static str {
        match self {
            Version::V1 => "memory.oom_control",
            Version::V2 => "memory.events",
        }
    }
}

/// A memory cgroup directory. When `owned` (we created it), drop kills what
/// is left inside and removes the directory.
#[derive(Debug)]
pub(crate) struct Cgroup {
    dir: PathBuf,
    version: Version,
    enforcement: Enforcement,
    owned: bool,
}

impl Cgroup {
    /// Create a fresh cgroup limited to `limit` bytes with swap off, in the
    /// first writable place of the given hierarchy. Err says why none worked.
    pub(crate) fn create(version: Version, limit: u64) -> Result<Cgroup, String> {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
        let own = fs::read_to_string("/proc/self/cgroup")
            .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
        let bases = candidate_bases(version, &mountinfo, &own);
        if bases.is_empty() {
            return Err(match version {
                Version::V2 => "no cgroup2 mount".to_string(),
                Version::V1 => "no cgroup v1 memory mount".to_string(),
            });
        }
        let mut reasons = Vec::new();
        for base in bases {
            for dir in remove_stale(&base) {
                tracing::info!(dir = %dir.display(), "removed a memory cgroup left by an earlier clw-limit");
            }
            match create_in(version, &base, limit) {
                Ok(cgroup) => return Ok(cgroup),
                Err(reason) => reasons.push(format!("{}: {reason}", base.display())),
            }
        }
        Err(reasons.join("; "))
    }

    /// A cgroup someone else manages (a systemd scope): read, never removed.
    pub(crate) fn existing(dir: PathBuf, version: Version, enforcement: Enforcement) -> Cgroup {
        Cgroup {
            dir,
            version,
            enforcement,
            owned: false,
        }
    }

    /// `cgroup.procs` as a C string, prepared before fork so the child can
    /// join the cgroup without allocating.
    pub(crate) fn procs_path(&self) -> CString {
        CString::new(self.dir.join("cgroup.procs").as_os_str().as_bytes())
            .expect("cgroup paths contain no NUL")
    }

    /// The cgroup's directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn usage_probe(&self) -> Option<UsageProbe> {
        UsageProbe::open(&self.dir.join(self.version.usage_file()), self.enforcement)
    }

    pub(crate) fn oom_kill_count(&self) -> Option<u64> {
        let text = fs::read_to_string(self.dir.join(self.version.oom_file())).ok()?;
        keyed_value(&text, "oom_kill")
    }

    /// Kill whatever is still inside (descendants of the child we started:
    /// the cgroup was empty when we made it), then remove the directory.
    fn remove(&self) {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            if let Ok(procs) = fs::read_to_string(self.dir.join("cgroup.procs")) {
                for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                    // SAFETY: plain syscall; the pid is inside our own fresh cgroup.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
            match fs::remove_dir(&self.dir) {
                Ok(()) => return,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
                Err(e) if Instant::now() >= deadline => {
                    tracing::warn!(dir = %self.dir.display(), error = %e, "cannot remove memory cgroup");
                    return;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        if self.owned {
            self.remove();
        }
    }
}

/// The prefix of every cgroup [`create_in`] makes: `clw-limit-<pid>-<n>`,
/// `<pid>` being the creating process.
const NAME_PREFIX: &str = "clw-limit-";

/// Remove the cgroups in `base` that an earlier clw-limit made and left
/// behind (its process was SIGKILLed, so no drop ran): named by
/// [`create_in`] and their creator no longer running. A server still
/// inside (a wrapper's child that outlived the harness, holding its port)
/// is an orphan of that dead run: every task in it is killed first, the
/// cgroup being the unit of the server. Anything else is left alone: other
/// tools' cgroups, ours of a live process. Returns the removed ones.
pub(crate) fn remove_stale(base: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(base) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|entry| {
            let name = entry.file_name();
            let Some((pid, n)) = name
                .to_str()
                .and_then(|n| n.strip_prefix(NAME_PREFIX))
                .and_then(|rest| rest.split_once('-'))
            else {
                return false;
            };
            let (Ok(pid), true) = (pid.parse::<u32>(), n.parse::<u64>().is_ok()) else {
                return false;
            };
            pid != std::process::id() && !process_exists(pid) && empty_by_kill(&entry.path())
        })
        .filter_map(|entry| fs::remove_dir(entry.path()).ok().map(|()| entry.path()))
        .collect()
}

/// Every leftover of a dead clw-limit in every place one could have been
/// made (both versions): removed, its orphans killed (see [`remove_stale`]).
pub(crate) fn sweep() -> Vec<PathBuf> {
    let (Ok(mountinfo), Ok(own)) = (
        fs::read_to_string("/proc/self/mountinfo"),
        fs::read_to_string("/proc/self/cgroup"),
    ) else {
        return Vec::new();
    };
    [Version::V2, Version::V1]
        .into_iter()
        .flat_map(|v| candidate_bases(v, &mountinfo, &own))
        .flat_map(|base| remove_stale(&base))
        .collect()
}

/// Kills every task of the cgroup at `dir` and waits (up to 2 s) for it to
/// be empty; true once it is.
fn empty_by_kill(dir: &Path) -> bool {
    let procs = dir.join("cgroup.procs");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let Ok(text) = fs::read_to_string(&procs) else {
            return false;
        };
        let pids: Vec<i32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
        if pids.is_empty() {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        for pid in pids {
            // SAFETY: kill(2) of a task listed in our own leftover cgroup.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Whether a process with this PID runs (possibly someone else's).
fn process_exists(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the PID exists and may be signalled.
    if unsafe { libc::kill(pid, 0) } == 0 {
        return true;
    }
    std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// The places to try creating a cgroup in, best first: the hierarchy's root
/// (needs root), then beside and below our own cgroup (a delegated subtree).
fn candidate_bases(version: Version, mountinfo: &str, own_cgroups: &str) -> Vec<PathBuf> {
    let Some((mount_root, mount_point)) = find_mount(version, mountinfo) else {
        return Vec::new();
    };
    let own = own_cgroup_path(version, own_cgroups).unwrap_or_default();
    // /proc/self/cgroup paths are relative to the hierarchy root; the mount
    // may show only a subtree of it (containers).
    let relative = own
        .strip_prefix(mount_root.trim_end_matches('/'))
        .unwrap_or(&own)
        .trim_start_matches('/')
        .to_string();
    let mut bases = vec![mount_point.clone()];
    if !relative.is_empty() {
        let own_dir = mount_point.join(&relative);
        if version == Version::V2 {
            if let Some(parent) = own_dir.parent() {
                bases.push(parent.to_path_buf());
            }
        }
        bases.push(own_dir);
    }
    bases.dedup();
    bases
}

/// (root within the hierarchy, mount point) of the cgroup2 mount or of the
/// v1 mount carrying the memory controller.
fn find_mount(version: Version, mountinfo: &str) -> Option<(String, PathBuf)> {
    mountinfo.lines().find_map(|line| {
        let (pre, post) = line.split_once(" - ")?;
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        let (root, point) = (pre.get(3)?, pre.get(4)?);
        let (fstype, options) = (post.first()?, post.get(2).copied().unwrap_or(""));
        let matches = match version {
            Version::V2 => *fstype == "cgroup2",
            Version::V1 => *fstype == "cgroup" && options.split(',').any(|o| o == "memory"),
        };
        matches.then(|| (root.to_string(), PathBuf::from(unescape_mount(point))))
    })
}

/// mountinfo escapes spaces and the like as \ooo octal.
fn unescape_mount(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let digits = std::str::from_utf8(&bytes[i + 1..i + 4]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(digits, 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Our own cgroup path in the hierarchy from /proc/self/cgroup text.
fn own_cgroup_path(version: Version, text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let matches = match version {
            Version::V2 => id == "0" && controllers.is_empty(),
            Version::V1 => controllers.split(',').any(|c| c == "memory"),
        };
        matches.then(|| path.to_string())
    })
}

fn create_in(version: Version, base: &Path, limit: u64) -> Result<Cgroup, String> {
    if version == Version::V2 {
        let controllers = fs::read_to_string(base.join("cgroup.subtree_control"))
            .map_err(|e| format!("cannot read cgroup.subtree_control: {e}"))?;
        if !controllers.split_whitespace().any(|c| c == "memory") {
            return Err("memory controller not enabled for children".into());
        }
    }
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "{NAME_PREFIX}{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let dir = base.join(name);
    fs::create_dir(&dir).map_err(|e| format!("cannot create a cgroup: {e}"))?;
    let cgroup = Cgroup {
        dir,
        version,
        enforcement: match version {
            Version::V1 => Enforcement::CgroupV1,
            Version::V2 => Enforcement::CgroupV2,
        },
        owned: true,
    };
    let write = |file: &str, value: &str| {
        fs::write(cgroup.dir.join(file), value).map_err(|e| format!("cannot write {file}: {e}"))
    };
    let optional = |file: &str, value: &str| {
        // Absent without swap accounting (or on older kernels); swap is then
        // either off or not chargeable, and the limit still holds for RAM.
        if cgroup.dir.join(file).exists() {
            if let Err(e) = fs::write(cgroup.dir.join(file), value) {
                tracing::debug!(file, error = %e, "optional cgroup setting refused");
            }
        }
    };
    match version {
        Version::V2 => {
            write("memory.max", &limit.to_string())?;
            optional("memory.swap.max", "0");
            // One OOM kill takes the whole group, like a container.
            optional("memory.oom.group", "1");
        }
        Version::V1 => {
            write("memory.limit_in_bytes", &limit.to_string())?;
            // memsw (RAM + swap) must be >= the RAM limit; equal means no swap.
            optional("memory.memsw.limit_in_bytes", &limit.to_string());
            optional("memory.swappiness", "0");
        }
    }
    Ok(cgroup)
}

/// The value of `key` in a "key value" per line file (memory.events,
/// memory.oom_control).
pub(crate) fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(char::is_whitespace)?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// A cheap, cloneable handle on a cgroup's memory usage for the sampler:
/// the usage file stays open and each read is one pread.
#[derive(Debug, Clone)]
pub struct UsageProbe {
    file: Arc<File>,
    source: Enforcement,
}

impl UsageProbe {
    fn open(path: &Path, source: Enforcement) -> Option<UsageProbe> {
        let file = File::open(path).ok()?;
        Some(UsageProbe {
            file: Arc::new(file),
            source,
        })
    }

    /// Bytes charged to the cgroup now; None once the cgroup is gone.
    pub fn read(&self) -> Option<u64> {
        let mut buf = [0u8; 32];
        let n = self.file.read_at(&mut buf, 0).ok()?;
        std::str::from_utf8(&buf[..n]).ok()?.trim().parse().ok()
    }

    /// Which method made the cgroup (`memory.sources.cgroup` in summary.json).
    pub fn source(&self) -> Enforcement {
        self.source
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    const UNIFIED: &str = "\
30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate
";

    #[test]
    fn finds_mounts_in_hybrid_and_unified_layouts() {
        let (root, point) = find_mount(Version::V1, HYBRID).unwrap();
        assert_eq!(
            (root.as_str(), point),
            ("/", PathBuf::from("/sys/fs/cgroup/memory"))
        );
        let (_, point) = find_mount(Version::V2, HYBRID).unwrap();
        assert_eq!(point, PathBuf::from("/sys/fs/cgroup/unified"));
        assert!(find_mount(Version::V1, UNIFIED).is_none());
        assert_eq!(
            find_mount(Version::V2, UNIFIED).unwrap().1,
            PathBuf::from("/sys/fs/cgroup")
        );
    }

    #[test]
    fn candidates_include_delegated_user_subtree() {
        let own = "0::/user.slice/user-1000.slice/user@1000.service/app.slice/term.scope\n";
        let bases = candidate_bases(Version::V2, UNIFIED, own);
        assert_eq!(
            bases,
            [
                PathBuf::from("/sys/fs/cgroup"),
                PathBuf::from("/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/app.slice"),
                PathBuf::from(
                    "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/app.slice/term.scope"
                ),
            ]
        );
        let own = "4:memory:/process_api/abc\n0::/\n";
        assert_eq!(
            candidate_bases(Version::V1, HYBRID, own),
            [
                PathBuf::from("/sys/fs/cgroup/memory"),
                PathBuf::from("/sys/fs/cgroup/memory/process_api/abc")
            ]
        );
    }

    #[test]
    fn reads_oom_kill_from_v2_events_and_v1_oom_control() {
        let events = "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(keyed_value(events, "oom_kill"), Some(1));
        assert_eq!(keyed_value(events, "oom"), Some(1));
        let control = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(keyed_value(control, "oom_kill"), Some(3));
        assert_eq!(keyed_value("oom_kill_disable 0\n", "oom_kill"), None);
    }

    #[test]
    fn unescapes_mount_points() {
        assert_eq!(unescape_mount(r"/mnt/my\040cgroup"), "/mnt/my cgroup");
        assert_eq!(unescape_mount("/sys/fs/cgroup"), "/sys/fs/cgroup");
    }
}
