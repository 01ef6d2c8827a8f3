//! What a baseline records it was measured on: the runs' setup, plus the
//! commit, the date and the machine's memory, which summary.json lacks.

use clw_run::baseline::Setup;
use clw_run::RunSummary;

/// The setup of `runs` (the first one's load, every run counted).
pub(super) fn measured_on(runs: &[RunSummary]) -> Setup {
    let mut setup = runs.first().map(Setup::of).unwrap_or_default();
    setup.runs = runs.len();
    setup.commit = commit();
    setup.date = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    setup.memory_bytes = machine_memory();
    setup
}

/// CI's commit (`GITHUB_SHA`, `CI_COMMIT_SHA`), else `git rev-parse HEAD`
/// in the working directory, else None.
fn commit() -> Option<String> {
    for var in ["GITHUB_SHA", "CI_COMMIT_SHA"] {
        if let Some(sha) = std::env::var(var).ok().filter(|s| !s.is_empty()) {
            return Some(sha);
        }
    }
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let sha = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !sha.is_empty()).then_some(sha)
}

/// MemTotal from /proc/meminfo.
fn machine_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
