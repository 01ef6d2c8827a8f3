//! Cgroups left behind by a clw-limit whose process was SIGKILLed (no drop
//! ran) are removed by the next spawn, with any orphan still inside (a
//! wrapper's server that outlived the harness) killed first; nothing else
//! is: not another tool's cgroup, not one of a live clw-limit.
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
        // An orphan of the dead run still inside: killed, and its cgroup
        // removed (the cgroup is the server's unit). It moves in the moment
        // `busy` exists: a spawn by another test of this binary removes
        // empty stale cgroups too.
        let inside = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let orphan = inside.id().to_string();
        let mut cleanup = Cleanup(
            vec![stale.clone(), busy.clone(), live.clone(), foreign.clone()],
            Some(inside),
        );
        for d in &cleanup.0 {
            std::fs::create_dir(d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
            if *d == busy {
                std::fs::write(busy.join("cgroup.procs"), &orphan).unwrap();
            }
        }

        let second = sleeper(&dir, method).unwrap();
        for gone in [&stale, &busy] {
            assert!(!gone.exists(), "{method}: {} was left", gone.display());
        }
        let status = cleanup.1.as_mut().unwrap().wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "{method}: the orphan was killed");
        for kept in [&live, &foreign] {
            assert!(kept.exists(), "{method}: {} was removed", kept.display());
        }
        drop((first, second));
        drop(cleanup);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if !tested {
        eprintln!("SKIP: neither cgroup v2 nor v1 memory cgroups can be created here");
    }
}
