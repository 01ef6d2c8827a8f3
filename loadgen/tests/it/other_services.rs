//! A service that is not clw-auth (tests/fixtures/plain_service.py, a
//! Python HTTP server with a Node/Go/JVM-style /metrics page): the share of
//! a cgroup limit is what the cgroup charges, not RSS; `--heap-metric`
//! reads the service's own heap gauge; the words and the report fit it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common;
use crate::common::{free_port, read_summary, workspace, LoadTest};

/// `python3` and the fixture, or why this machine cannot run it.
fn plain_service() -> Result<(String, PathBuf), String> {
    let script = workspace().join("loadgen/tests/fixtures/plain_service.py");
    match Command::new("python3").arg("--version").output() {
        Ok(out) if out.status.success() => Ok(("python3".into(), script)),
        Ok(out) => Err(format!("python3 --version failed: {:?}", out.status)),
        Err(e) => Err(format!("no python3 to run the fixture service: {e}")),
    }
}

/// samples.csv's column `name`, blanks skipped.
fn column(out: &Path, name: &str) -> Vec<f64> {
    let mut reader = csv::Reader::from_path(out.join("samples.csv")).unwrap();
    let at = reader
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name}"));
    reader
        .records()
        .filter_map(|r| r.unwrap().get(at)?.parse().ok())
        .collect()
}

fn peak(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

/// The server maps a 96 MiB file whose pages this test (another cgroup)
/// cached: its RSS passes the 64 MiB limit, the cgroup never charges it.
/// The headline share is the cgroup working set's peak over the limit, is
/// under 100% for the live server, and RSS is shown beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_a_cgroup_limit_the_share_is_what_the_cgroup_charges() {
    let (python, script) = match plain_service() {
        Ok(found) => found,
        Err(why) => {
            eprintln!("SKIPPED under_a_cgroup_limit_the_share_is_what_the_cgroup_charges: {why}");
            return;
        }
    };
    let port = free_port();
    let test = LoadTest::new(
        format!("http://127.0.0.1:{port}"),
        "scenarios/ready-only.toml",
    );
    let big = test.dir.path().join("big.bin");
    let chunk: Vec<u8> = (0..1u32 << 20)
        .map(|i| i.wrapping_mul(2654435761) as u8)
        .collect();
    let mut data = Vec::with_capacity(96 << 20);
    for _ in 0..96 {
        data.extend_from_slice(&chunk);
    }
    std::fs::write(&big, &data).unwrap();
    drop(data);
    let command = format!(
        "{python} {} --port {port} --map {}",
        script.display(),
        big.display()
    );
    let opts = test.spawn_opts(
        &command,
        "--concurrent-users 1 --ramp-up 0s --duration 3s --sample-interval 200ms \
         --memory-limit 64M --no-metrics",
    );
    let _ = clw_cli::run(opts).await.expect("the run completes");
    let s = read_summary(&test.out).unwrap();
    let enforcement = s["server"]["limit_enforcement"].as_str().unwrap_or("");
    if !enforcement.starts_with("cgroup") {
        eprintln!(
            "SKIPPED under_a_cgroup_limit_the_share_is_what_the_cgroup_charges: no memory cgroup could be created (limit by {enforcement}; notes {})",
            s["notes"]
        );
        return;
    }
    let m = &s["memory"];
    assert!(s["server"]["exit"].is_null(), "the server lived: {s}");
    assert_eq!(m["peak_percent_of"], "cgroup working set", "{m}");
    let working_set = column(&test.out, "cgroup_working_set_bytes");
    assert!(working_set.len() >= 10, "{} samples", working_set.len());
    let limit = (64u64 << 20) as f64;
    let expected = (peak(&working_set) * 100.0 / limit * 100.0).round() / 100.0;
    let percent = m["peak_rss_percent"].as_f64().unwrap();
    assert_eq!(percent, expected, "{m}");
    assert!(percent < 100.0, "a live server under 100%: {m}");
    assert_eq!(m["peak_charged_bytes"].as_f64(), Some(peak(&working_set)));
    // RSS counts the mapped file: past the limit, yet never the share.
    let rss = m["peak_rss_bytes"].as_f64().unwrap();
    assert!(rss > limit, "RSS {rss} counts the 96 MiB mapping: {m}");
    let said = m["evidence"][0].as_str().unwrap();
    assert!(
        said.starts_with("peak cgroup working set ") && said.contains("(RSS "),
        "{said}"
    );
    assert!(!said.contains("above the"), "{said}");
    println!("{said}");
}

/// The fixture service started by the test on 127.0.0.1:0, killed (by its
/// handle) and reaped when dropped.
struct Fixture {
    child: std::process::Child,
    addr: std::net::SocketAddr,
}

impl Fixture {
    fn start(python: &str, script: &Path, args: &[&str]) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let port_file = dir.path().join("port");
        let child = Command::new(python)
            .arg(script)
            .args(["--port", "0", "--port-file", port_file.to_str().unwrap()])
            .args(args)
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("start the fixture service");
        let mut fixture = Fixture {
            child,
            addr: "127.0.0.1:0".parse().unwrap(),
        };
        common::wait_until(
            std::time::Duration::from_secs(20),
            "the fixture writes its port",
            || std::fs::read_to_string(&port_file).is_ok(),
        );
        let port = std::fs::read_to_string(&port_file).unwrap();
        fixture.addr = format!("127.0.0.1:{}", port.trim()).parse().unwrap();
        fixture
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const LOGIN_ONLY: &str = r#"
name = "login-only"
description = "POST /login every iteration"

[load]
users = 2
duration = "10s"
ramp_up = "0s"
model = "closed"

[[steps]]
name = "login"
method = "POST"
path = "/login"
body = { username = "u", password = "p" }
expect = 200
"#;

/// `--heap-metric` reads the service's own heap gauge (prom-client's, a
/// JVM's pools summed) as the verdict's steady series: 64 KiB more heap
/// per login is a leak of 64 KiB per login, counted by `--logins-metric`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heap_metric_is_the_verdicts_series_and_a_jvms_pools_are_summed() {
    let (python, script) = match plain_service() {
        Ok(found) => found,
        Err(why) => {
            eprintln!(
                "SKIPPED heap_metric_is_the_verdicts_series_and_a_jvms_pools_are_summed: {why}"
            );
            return;
        }
    };
    let service = Fixture::start(&python, &script, &["--heap-per-login", "65536"]);
    let target = format!("http://{}", service.addr);
    let logins = r#"--logins-metric http_requests_total{route="/login"}"#;

    let test = LoadTest::with_scenario_text(target.clone(), LOGIN_ONLY);
    let opts = test.opts(&format!(
        "--sample-interval 250ms --heap-metric nodejs_heap_size_used_bytes {logins}"
    ));
    clw_cli::run(opts).await.expect("the run completes");
    let s = read_summary(&test.out).unwrap();
    let m = &s["memory"];
    assert_eq!(m["verdict"], "leak", "{m}");
    assert_eq!(
        m["sources"]["heap_metric"], "nodejs_heap_size_used_bytes",
        "{m}"
    );
    assert_eq!(m["trend"]["series"], "heap", "{m}");
    let retained = m["retained_bytes_per_session"].as_f64().unwrap();
    assert!((retained - 65536.0).abs() < 1000.0, "{retained}: {m}");
    let notes = s["notes"].to_string();
    assert!(
        notes.contains(&format!(
            "heap: nodejs_heap_size_used_bytes from {target}/metrics (--heap-metric)"
        )),
        "{notes}"
    );
    let heap = column(&test.out, "allocated_bytes");
    let logins_seen = column(&test.out, "logins");
    assert!(heap.len() >= 20 && heap.len() == logins_seen.len());
    for (h, l) in heap.iter().zip(&logins_seen) {
        assert_eq!(*h, (20u64 << 20) as f64 + l * 65536.0);
    }

    // A JVM: one series per heap pool, summed; non-heap left out.
    let test = LoadTest::with_scenario_text(target.clone(), LOGIN_ONLY);
    let opts = test.opts(&format!(
        "--duration 2s --sample-interval 250ms --heap-metric jvm_memory_used_bytes{{area=\"heap\"}} {logins}"
    ));
    clw_cli::run(opts).await.expect("the run completes");
    let heap = column(&test.out, "allocated_bytes");
    let logins_seen = column(&test.out, "logins");
    assert!(heap.len() >= 5 && heap.len() == logins_seen.len());
    for (h, l) in heap.iter().zip(&logins_seen) {
        assert_eq!(
            *h,
            (20u64 << 20) as f64 + l * 65536.0,
            "the three pools' sum"
        );
    }

    // Absent at the first sample: exit 3, naming the flag and the URL.
    let test = LoadTest::with_scenario_text(target.clone(), LOGIN_ONLY);
    let opts = test.opts("--duration 2s --heap-metric go_memstats_heap_inuse_bytes");
    let err = clw_cli::run(opts).await.expect_err("no such series");
    let text = err.to_string();
    assert_eq!(err.exit_code(), 3, "{text}");
    assert!(
        text.contains(&format!("{target}/metrics"))
            && text.contains("--heap-metric: `go_memstats_heap_inuse_bytes` matched no series"),
        "{text}"
    );
}

/// `text` as the report's HTML writes it.
fn html_escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
}

/// The report of a run against a service without clw-auth's session
/// metrics leaves the session-cache chart out, saying why, and shows every
/// note the console printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_of_another_service_fits_it() {
    let (python, script) = match plain_service() {
        Ok(found) => found,
        Err(why) => {
            eprintln!("SKIPPED the_report_of_another_service_fits_it: {why}");
            return;
        }
    };
    let service = Fixture::start(&python, &script, &["--heap-per-login", "1024"]);
    let test = LoadTest::with_scenario_text(format!("http://{}", service.addr), LOGIN_ONLY);
    let opts = test
        .opts("--duration 2s --sample-interval 250ms --heap-metric nodejs_heap_size_used_bytes");
    clw_cli::run(opts).await.expect("the run completes");
    clw_report::render_run(&test.out).expect("the report renders");
    let html = std::fs::read_to_string(test.out.join("index.html")).unwrap();
    assert!(
        !html.contains("id=\"cache\""),
        "no empty session-cache chart"
    );
    assert!(
        html.contains("The session cache chart is left out because this service exported no session-cache metrics"),
        "the reason is on the page"
    );
    assert!(!test.out.join("charts/cache.svg").exists());
    let s = read_summary(&test.out).unwrap();
    let notes: Vec<&str> = s["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n.as_str())
        .collect();
    assert!(notes.iter().any(|n| n.starts_with("heap: ")), "{notes:?}");
    for note in notes {
        assert!(
            html.contains(&html_escaped(note)),
            "note not in the report: {note}"
        );
    }
    for e in s["memory"]["evidence"].as_array().unwrap() {
        let e = html_escaped(e.as_str().unwrap());
        assert!(html.contains(&e), "evidence not in the report: {e}");
    }
}

/// A service that is not clw-auth, OOM-killed: clw-cli says so in its own
/// words with the real exit code and limit, never clw-auth's log lines; the
/// same line is in summary.json and the report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_service_killed_at_its_limit_is_told_plainly() {
    let (python, script) = match plain_service() {
        Ok(found) => found,
        Err(why) => {
            eprintln!("SKIPPED another_service_killed_at_its_limit_is_told_plainly: {why}");
            return;
        }
    };
    let port = free_port();
    let test = LoadTest::new(
        format!("http://127.0.0.1:{port}"),
        "scenarios/ready-only.toml",
    );
    let command = format!(
        "{python} {} --port {port} --grow-mib-per-s 16",
        script.display()
    );
    let opts = test.spawn_opts(
        &command,
        "--concurrent-users 1 --ramp-up 0s --duration 30s --sample-interval 200ms \
         --memory-limit 64M --no-metrics",
    );
    let started = std::time::Instant::now();
    let _ = clw_cli::run(opts).await.expect("the run completes");
    assert!(started.elapsed().as_secs() < 25, "killed within seconds");
    let s = read_summary(&test.out).unwrap();
    let exit = &s["server"]["exit"];
    assert_eq!(exit["oom_killed"], true, "{s}");
    let pid = s["server"]["pid"].as_u64().unwrap();
    let message = exit["message"].as_str().unwrap();
    let how = if exit["emulated"] == true {
        "was killed by clw-cli's watchdog at its memory limit (an emulated OOM kill: no memory cgroup was available)"
    } else {
        "was killed by the kernel OOM killer"
    };
    let at = exit["at_s"].as_f64().unwrap();
    assert_eq!(
        message,
        format!("clw-cli: the server (pid {pid}) {how} at {at:.1}s (exit code 137, limit 64 MiB)"),
        "{s}"
    );
    assert!(!message.contains("clw-auth") && !message.contains("authentication service"));
    clw_report::render_run(&test.out).expect("the report renders");
    let html = std::fs::read_to_string(test.out.join("index.html")).unwrap();
    assert!(
        html.contains(&html_escaped(message)),
        "the death line is in the report"
    );
}
