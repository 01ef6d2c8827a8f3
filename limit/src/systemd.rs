//! The `systemd-run --scope` method: systemd creates the cgroup, we find it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::cgroup::{Cgroup, Version};
use crate::Enforcement;

/// The systemd-run command line that runs `program args` in a transient
/// scope with the limit and no swap. `--user` unless we are root (root's
/// scopes go to the system manager, which needs no user session).
pub(crate) fn command_line(program: &Path, args: &[String], limit: u64) -> Vec<String> {
    let mut line = vec!["--scope".to_string(), "--quiet".to_string()];
    // SAFETY: getuid cannot fail.
    if unsafe { libc::getuid() } != 0 {
        line.insert(0, "--user".to_string());
    }
    line.extend([
        "-p".to_string(),
        format!("MemoryMax={limit}"),
        "-p".to_string(),
        "MemorySwapMax=0".to_string(),
        "--".to_string(),
        program.display().to_string(),
    ]);
    line.extend(args.iter().cloned());
    line
}

/// Wait until systemd-run (pid) has moved itself into its `.scope` and
/// return a read-only view of that cgroup. `exited` says whether the process
/// has already ended (systemd unreachable), which ends the wait.
pub(crate) fn find_scope(
    pid: u32,
    exited: impl Fn() -> bool,
    timeout: Duration,
) -> Result<Cgroup, String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(cgroup) = scope_of(pid) {
            return Ok(cgroup);
        }
        if exited() {
            return Err("systemd-run exited before the scope was created".into());
        }
        if Instant::now() >= deadline {
            return Err(format!("no systemd scope for pid {pid} after {timeout:?}"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn scope_of(pid: u32) -> Option<Cgroup> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        if !path.ends_with(".scope") || !path.contains("run-") {
            continue;
        }
        let rel = path.trim_start_matches('/');
        if id == "0" && controllers.is_empty() {
            for mount in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
                let dir = PathBuf::from(mount).join(rel);
                if dir.join("memory.max").exists() {
                    return Some(Cgroup::existing(dir, Version::V2, Enforcement::SystemdRun));
                }
            }
        } else if controllers.split(',').any(|c| c == "memory") {
            let dir = PathBuf::from("/sys/fs/cgroup/memory").join(rel);
            if dir.exists() {
                return Some(Cgroup::existing(dir, Version::V1, Enforcement::SystemdRun));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_sets_limit_and_no_swap() {
        let line = command_line(
            Path::new("clw-auth"),
            &["--port".into(), "0".into()],
            1 << 28,
        );
        let joined = line.join(" ");
        assert!(
            joined.contains(
                "--scope --quiet -p MemoryMax=268435456 -p MemorySwapMax=0 -- clw-auth --port 0"
            ),
            "{joined}"
        );
    }
}
