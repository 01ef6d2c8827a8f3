//! Run folders other jobs wrote, read in bounded memory and time (docs/run-folder.md,
//! "Reading"): a file linked to /dev/zero, a FIFO where summary.json should
//! be, are refused with exit 2 naming the file, by `report` and `merge`,
//! instead of filling memory or hanging.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common;

/// Runs clw-cli with `args`, killed (by its PID, through its handle) if
/// it is still running after 20 s: (exit code, stderr, seconds taken).
fn clw_cli(args: &[&str]) -> (Option<i32>, String, f64) {
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_clw-cli"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            return (status.code(), stderr, start.elapsed().as_secs_f64());
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("clw-cli {args:?} still running after 20 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success());
}

#[test]
fn endless_files_and_fifos_are_refused_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();

    let zero = tmp.path().join("zero");
    std::fs::create_dir(&zero).unwrap();
    std::os::unix::fs::symlink("/dev/zero", zero.join("samples.csv")).unwrap();
    let (code, stderr, _) = clw_cli(&["report", zero.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("samples.csv") && stderr.contains("symbolic link"),
        "{stderr}"
    );

    let fifo = tmp.path().join("fifo");
    std::fs::create_dir(&fifo).unwrap();
    mkfifo(&fifo.join("summary.json"));
    // report takes an unreadable summary.json for a killed run's (a note,
    // figures from the CSVs); what matters is that it returns at once.
    let (_, stderr, _) = clw_cli(&["report", fifo.to_str().unwrap()]);
    assert!(
        stderr.contains("summary.json") && stderr.contains("not a regular file"),
        "{stderr}"
    );

    let out = tmp.path().join("merged");
    let (code, stderr, _) = clw_cli(&[
        "merge",
        fifo.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("not a regular file"), "{stderr}");

    let urandom = tmp.path().join("urandom");
    std::fs::create_dir(&urandom).unwrap();
    std::os::unix::fs::symlink("/dev/urandom", urandom.join("latency.hlog")).unwrap();
    std::fs::write(urandom.join("latency.csv"), "t_s\n").unwrap();
    let (code, stderr, _) = clw_cli(&["report", urandom.to_str().unwrap()]);
    assert_ne!(code, Some(0), "{stderr}");
}

/// Nothing is written through, or copied from, a link that leaves the
/// folder: a `charts` symlink makes `report` refuse (exit 2), and a shard's
/// symlinked server.log is not copied into the merge.
#[test]
fn links_out_of_the_folder_are_neither_written_through_nor_copied() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), "s3cr3t-from-outside").unwrap();

    let run = tmp.path().join("run");
    clw_report::fixtures::bounded_sawtooth(&run).unwrap();
    std::os::unix::fs::symlink(&outside, run.join("charts")).unwrap();
    let (code, stderr, _) = clw_cli(&["report", run.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("charts") && stderr.contains("symbolic link"),
        "{stderr}"
    );
    let written: Vec<_> = std::fs::read_dir(&outside).unwrap().collect();
    assert_eq!(written.len(), 1, "nothing written outside: {written:?}");

    // A one-shard run of a spawned Python server (so it has a server.log),
    // whose server.log is then a link to a file outside.
    let Some(python) = common::python3() else {
        return;
    };
    let port = common::free_port();
    let scenario = common::write_scenario(tmp.path(), common::ROOT_ONLY);
    let shard = tmp.path().join("shard");
    let server = common::http_server_command(python, tmp.path(), port);
    let target = format!("http://127.0.0.1:{port}");
    let (code, stderr, _) = clw_cli(&[
        "auth",
        "load-test",
        "--quiet",
        "--no-report",
        "--target",
        &target,
        "--scenario",
        scenario.to_str().unwrap(),
        "--out",
        shard.to_str().unwrap(),
        "--spawn-server",
        &server,
        "--memory-limit",
        "256M",
        "--ready-tcp",
        "--no-metrics",
        "--duration",
        "1s",
        "--concurrent-users",
        "1",
        "--shard",
        "1/1",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(shard.join("server.log").is_file());
    std::fs::remove_file(shard.join("server.log")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret.txt"), shard.join("server.log")).unwrap();
    let out = tmp.path().join("merged");
    let (code, stderr, _) = clw_cli(&[
        "merge",
        shard.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--no-report",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(out.join("summary.json").is_file(), "{stderr}");
    assert!(
        !out.join("server.log").exists(),
        "a linked server.log is not copied"
    );
}

/// A single line past the 1 MiB line cap (random bytes with no newline,
/// say) is refused naming the file and the line, before any parser
/// buffers it: exit 2.
#[test]
fn a_line_past_the_cap_is_refused_naming_file_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    clw_report::fixtures::bounded_sawtooth(&run).unwrap();
    let samples = run.join("samples.csv");
    let mut body = std::fs::read(&samples).unwrap();
    let line = body.iter().filter(|&&b| b == b'\n').count() + 1;
    body.extend(std::iter::repeat_n(b'7', (1 << 20) + 1));
    body.push(b'\n');
    std::fs::write(&samples, &body).unwrap();
    let (code, stderr, _) = clw_cli(&["report", run.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("samples.csv:{line}:")) && stderr.contains("longer than"),
        "{stderr}"
    );
}

/// Heap profiles are run-folder files too: `heap/*.pb.gz` linked to
/// /dev/zero (an endless read) or a FIFO (a read that never returns) make
/// `report` say so, naming the file, and finish; before, it read
/// /dev/zero until memory ran out.
#[test]
fn heap_profiles_linked_to_devices_or_fifos_are_not_read() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    clw_report::fixtures::bounded_sawtooth(&run).unwrap();
    let heap = run.join("heap");
    std::fs::create_dir_all(&heap).unwrap();
    std::os::unix::fs::symlink("/dev/zero", heap.join("0.000.pb.gz")).unwrap();
    mkfifo(&heap.join("9.000.pb.gz"));
    let (code, stderr, secs) = clw_cli(&["report", run.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("0.000.pb.gz") && stderr.contains("symbolic link"),
        "{stderr}"
    );
    assert!(secs < 15.0, "report took {secs:.1} s");
}
