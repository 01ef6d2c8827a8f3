//! Cgroups left behind by a clw-limit whose process was SIGKILLed (no drop
//! ran) are removed by the next spawn, and nothing else is: not another
//! tool's cgroup, not one of a live process, not one with processes in it.
//! Prints why it skips where no memory cgroup can be created here.

use std::path::PathBuf;
use std::time::Duration;

use clw_limit::{spawn, Enforcement, LimitError, SpawnSpec};

/// A PID no process has now: a child that ran and was reaped.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

fn sleeper(dir: &tempfile::TempDir, method: Enforcement) -> Result<clw_limit::Limited, LimitError> {
    let mut spec = SpawnSpec::new("sleep", ["30"], 64 << 20, dir.path().join("log"));
    spec.prefer = Some(method);
    spawn(spec)
}

/// Removes what the test made, whatever the assertions said.
struct Cleanup(Vec<PathBuf>, Option<std::process::Child>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(mut child) = self.1.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for dir in &self.0 {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

#[tokio::test]
async fn stale_cgroups_of_killed_runs_are_removed_by_the_next_spawn() {
    let dir = tempfile::tempdir().unwrap();
    let mut tested = false;
    for method in [Enforcement::CgroupV2, Enforcement::CgroupV1] {
        let first = match sleeper(&dir, method) {
            Ok(limited) => limited,
            Err(LimitError::Unavailable { reason, .. }) => {
                eprintln!("SKIP {method}: no memory cgroup can be created here: {reason}");
                continue;
            }
            Err(other) => panic!("{method}: {other}"),
        };
        tested = true;
        let base: PathBuf = first.cgroup_dir().unwrap().parent().unwrap().to_path_buf();
        let dead = dead_pid();
        let stale = base.join(format!("clw-limit-{dead}-0"));
        let busy = base.join(format!("clw-limit-{dead}-1"));
        let live = base.join(format!("clw-limit-{}-999", std::process::id()));
        let foreign = base.join(format!("other-tool-{dead}-0"));
        let mut cleanup = Cleanup(
            vec![stale.clone(), busy.clone(), live.clone(), foreign.clone()],
            None,
        );
        for d in &cleanup.0 {
            std::fs::create_dir(d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        }
        // A process still inside: its cgroup is not stale, whoever made it.
        let inside = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        std::fs::write(busy.join("cgroup.procs"), inside.id().to_string()).unwrap();
        cleanup.1 = Some(inside);

        let second = sleeper(&dir, method).unwrap();
        assert!(!stale.exists(), "{method}: {} was left", stale.display());
        for kept in [&busy, &live, &foreign] {
            assert!(kept.exists(), "{method}: {} was removed", kept.display());
        }
        drop((first, second));
        // Move the sleeper out, so its cgroup can go.
        let _ = std::fs::write(
            base.join("cgroup.procs"),
            cleanup.1.as_ref().unwrap().id().to_string(),
        );
        drop(cleanup);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if !tested {
        eprintln!("SKIP: neither cgroup v2 nor v1 memory cgroups can be created here");
    }
}
