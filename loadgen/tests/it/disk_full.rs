//! A full disk is told plainly (docs/loadgen.md, Exit codes): below the
//! free-space floor the run refuses to start (exit 3); a disk that fills
//! during the run still gets the console summary, and the outputs it could
//! not write are exit 4, never a pass. On a real tmpfs the test mounts (it
//! skips, saying why, where it may not mount one), against Python's
//! `http.server`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{
    load_test_command, python3, python_http_server, wait_until, write_scenario, ROOT_ONLY,
};

/// A tmpfs of `size` mounted on a fresh directory, unmounted when dropped.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Result<Tmpfs, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs(dir))
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

fn clw_cli(target: &str, scenario: &Path, out: &Path, flags: &[&str]) -> Command {
    let mut c = load_test_command(target, scenario, out);
    c.args(["--no-memory", "--concurrent-users", "2"])
        .args(flags)
        .stdin(Stdio::null());
    c
}

/// Fills `dir`'s filesystem to the last byte.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let block = vec![0u8; 4096];
    while f.write_all(&block).is_ok() {}
    let _ = f.write_all(&[0u8]);
    path
}

#[test]
fn a_full_disk_refuses_at_start_or_fails_with_exit_4_keeping_the_console() {
    let Some(python) = python3() else {
        return;
    };
    let tmpfs = match Tmpfs::mount("4m") {
        Ok(t) => t,
        Err(why) => {
            println!("SKIPPED a_full_disk_refuses_at_start_or_fails_with_exit_4_keeping_the_console: {why}");
            return;
        }
    };
    let work = tempfile::tempdir().unwrap();
    let scenario = write_scenario(work.path(), ROOT_ONLY);
    let (target, _server) = python_http_server(python, work.path());

    // 4 MiB is below the default floor of 64 MiB: refused before the load.
    let out = tmpfs.path().join("refused");
    let run = clw_cli(&target, &scenario, &out, &["--duration", "2s"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("free on the filesystem of") && stderr.contains("--min-free-space"),
        "{stderr}"
    );
    assert!(!out.exists(), "nothing was written");

    // Past the floor (lowered), the disk fills during the load: the console
    // summary is printed, and the outputs that could not be written are
    // named with exit 4.
    let out = tmpfs.path().join("filled");
    let child = clw_cli(
        &target,
        &scenario,
        &out,
        &["--duration", "3s", "--min-free-space", "1Mi"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    wait_until(Duration::from_secs(10), "the run folder exists", || {
        out.join("latency.hlog").exists()
    });
    std::thread::sleep(Duration::from_millis(500));
    let filler = fill(tmpfs.path());
    let run = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(
        run.status.code(),
        Some(4),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(
        stdout.contains("  requests ") && stdout.contains("  result "),
        "the console summary: {stdout}"
    );
    assert!(stderr.contains("outputs not written"), "{stderr}");
    assert!(
        stderr.contains("summary.json") || stderr.contains("report"),
        "{stderr}"
    );

    // `report` on the full disk: its page is an output not written (4).
    let report = Command::new(env!("CARGO_BIN_EXE_clw-cli"))
        .arg("report")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&report.stderr);
    assert_eq!(report.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("cannot write"), "{stderr}");
    std::fs::remove_file(filler).unwrap();

    // A 0-byte latency.csv (what a full disk leaves) is bad input: 2.
    let broken = work.path().join("broken");
    std::fs::create_dir(&broken).unwrap();
    std::fs::write(broken.join("latency.csv"), "").unwrap();
    let report = Command::new(env!("CARGO_BIN_EXE_clw-cli"))
        .arg("report")
        .arg(&broken)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&report.stderr);
    assert_eq!(report.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("latency.csv"), "{stderr}");
}
