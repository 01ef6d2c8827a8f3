//! Memory from where the service really runs (docs/memory.md, Sources):
//! a series of its metrics page picked by a selector, a real Prometheus
//! server (Debian's `prometheus`) scraping a spawned clw-auth, and a
//! memory cgroup the test creates. Each run's samples say their source.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::prometheus::{get, Prometheus};
use crate::common::{clw_auth_binary, free_port, read_summary, wait_until, workspace, LoadTest};

/// A process this test started, killed (by its PID, through its handle)
/// and reaped when dropped.
struct Started(Child);

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// clw-auth (fixed profile) on a free port, optionally started inside a
/// cgroup (its shell joins it, then execs the server).
fn spawn_clw_auth(log: &Path, cgroup: Option<&Path>) -> (std::net::SocketAddr, Started) {
    let bin = clw_auth_binary();
    let port = free_port();
    let config = workspace().join("profiles/fixed.json");
    let mut command = match cgroup {
        Some(dir) => {
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg("echo $$ > \"$0/cgroup.procs\" && exec \"$1\" --config \"$2\" --host 127.0.0.1 --port \"$3\"")
                .arg(dir)
                .arg(&bin)
                .arg(&config)
                .arg(port.to_string());
            c
        }
        None => {
            let mut c = Command::new(&bin);
            c.arg("--config").arg(&config).args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
            ]);
            c
        }
    };
    let out = std::fs::File::create(log).unwrap();
    let child = command
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("start clw-auth");
    let child = Started(child);
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_until(Duration::from_secs(30), "clw-auth answers /ready", || {
        get(addr, "/ready").is_some_and(|(status, _)| status == 200)
    });
    (addr, child)
}

/// The value of an unlabelled series on a metrics page.
fn metric(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// samples.csv rows as (t_s, rss_bytes, column by name) maps.
fn rows(out: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let mut reader = csv::Reader::from_path(out.join("samples.csv")).unwrap();
    let headers = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            headers
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

fn num(row: &std::collections::HashMap<String, String>, column: &str) -> Option<f64> {
    row.get(column)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_metric_picks_its_series_and_no_match_says_what_was_there() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, _server) = spawn_clw_auth(&dir.path().join("server.log"), None);
    let target = format!("http://{addr}");

    // The allocator's resident bytes, picked by name and label matchers:
    // the same scrape writes them to resident_bytes, so every row agrees.
    let test = LoadTest::new(target.clone(), "scenarios/login-storm.toml");
    let opts = test.opts(
        "--concurrent-users 2 --ramp-up 0s --duration 2s --sample-interval 200ms \
         --memory-metric {__name__=~\"clw_jemalloc_res.*\",job!=\"other\"}",
    );
    clw_cli::run(opts).await.expect("the run completes");
    let rows = rows(&test.out);
    assert!(rows.len() >= 5, "{} rows", rows.len());
    for row in &rows {
        assert_eq!(row["source"], "metrics", "{row:?}");
        assert_eq!(num(row, "rss_bytes"), num(row, "resident_bytes"), "{row:?}");
        assert!(num(row, "rss_bytes").unwrap() > 1e6, "{row:?}");
    }
    let s = read_summary(&test.out).unwrap();
    assert_eq!(s["memory"]["sources"]["rss"], "metrics");

    // A selector that matches nothing stops the run before the load
    // (exit 3), naming the selector and a few series that were there.
    let test = LoadTest::new(target, "scenarios/login-storm.toml");
    let opts = test.opts(
        "--concurrent-users 1 --duration 2s --memory-metric container_memory_working_set_bytes{container=\"auth\"}",
    );
    let err = clw_cli::run(opts).await.expect_err("no series matched");
    let text = err.to_string();
    assert_eq!(err.exit_code(), 3, "{text}");
    assert!(
        text.contains(
            r#"`container_memory_working_set_bytes{container="auth"}` matched no series"#
        ) && text.contains("process_resident_memory_bytes"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_query_agrees_with_the_services_own_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, _server) = spawn_clw_auth(&dir.path().join("server.log"), None);
    let test_name = "prometheus_query_agrees_with_the_services_own_metrics";
    let Some(prometheus) = Prometheus::start(test_name, &[addr]) else {
        return;
    };
    // The service's own figure, read directly every 50 ms while the load runs.
    let direct: Arc<Mutex<Vec<(Instant, f64)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let (direct, stop) = (Arc::clone(&direct), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Some((200, page)) = get(addr, "/metrics") {
                    if let Some(v) = metric(&page, "process_resident_memory_bytes") {
                        direct.lock().unwrap().push((Instant::now(), v));
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let query = r#"process_resident_memory_bytes{job="clw-test"}"#;
    wait_until(
        Duration::from_secs(30),
        "prometheus scraped clw-auth",
        || prometheus.value(query).is_some(),
    );

    let test = LoadTest::new(format!("http://{addr}"), "scenarios/login-storm.toml");
    // --no-heap-profile: a profile's dump lifts RSS for a moment that a
    // 50 ms poll can miss and a scrape can catch.
    let opts = test.opts(&format!(
        "--concurrent-users 4 --ramp-up 0s --duration 8s --sample-interval 250ms \
         --prometheus-url http://{} --memory-query {query} --limit-query vector(1073741824) \
         --no-heap-profile",
        prometheus.addr
    ));
    let called = Instant::now();
    clw_cli::run(opts).await.expect("the run completes");
    let returned = Instant::now();
    stop.store(true, Ordering::Relaxed);
    poller.join().unwrap();
    let direct = direct.lock().unwrap().clone();

    let s = read_summary(&test.out).unwrap();
    assert_eq!(
        s["memory"]["sources"]["rss"], "prometheus",
        "{}",
        s["memory"]
    );
    assert_eq!(s["memory"]["sources"]["limit"], "prometheus");
    assert_eq!(s["memory"]["limit_bytes"], 1u64 << 30);

    let rows = rows(&test.out);
    // The run's clock started within its set-up after `called`; a value
    // Prometheus holds is at most one scrape interval (1 s) plus the
    // scrape's own time old.
    let setup = returned.duration_since(called).as_secs_f64() - 8.0;
    let lag = 1.0 + 0.5;
    let mut values = Vec::new();
    for row in &rows {
        assert_eq!(row["source"], "prometheus", "{row:?}");
        let (t, v) = (num(row, "t_s").unwrap(), num(row, "rss_bytes").unwrap());
        values.push(v);
        let from = (called + Duration::from_secs_f64(t))
            .checked_sub(Duration::from_secs_f64(lag))
            .unwrap();
        let to = called + Duration::from_secs_f64(t + setup.clamp(0.05, 1.0) + 0.1);
        let seen: Vec<f64> = direct
            .iter()
            .filter(|(at, _)| *at >= from && *at <= to)
            .map(|(_, v)| *v)
            .collect();
        assert!(!seen.is_empty(), "no direct reading around t = {t}");
        let lo = seen.iter().cloned().fold(f64::MAX, f64::min);
        let hi = seen.iter().cloned().fold(0.0, f64::max);
        let slack = (0.02 * hi).max(512.0 * 1024.0);
        assert!(
            v >= lo - slack && v <= hi + slack,
            "t = {t}: Prometheus gave {v}, the service said {lo}..{hi} in the window"
        );
    }
    values.dedup();
    assert!(
        values.len() >= 2,
        "one value all run: the query was not repeated ({values:?})"
    );
}

/// A fresh v1 memory cgroup with a 512 MiB limit, removed on drop; None
/// (with the reason) where it cannot be made.
struct TestCgroup(PathBuf);

impl TestCgroup {
    fn create() -> Result<TestCgroup, String> {
        let base = Path::new("/sys/fs/cgroup/memory");
        if !base.join("memory.usage_in_bytes").is_file() {
            return Err("no cgroup v1 memory hierarchy at /sys/fs/cgroup/memory".into());
        }
        let dir = base.join(format!("clw-memsrc-test-{}", std::process::id()));
        std::fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let cgroup = TestCgroup(dir);
        std::fs::write(cgroup.0.join("memory.limit_in_bytes"), "536870912")
            .map_err(|e| format!("cannot set the limit: {e}"))?;
        Ok(cgroup)
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        // The server (killed first, declared later) has left it by now.
        for _ in 0..50 {
            if std::fs::remove_dir(&self.0).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cgroup_is_read_as_docker_stats_does() {
    let cgroup = match TestCgroup::create() {
        Ok(c) => c,
        Err(why) => {
            eprintln!("SKIPPED a_cgroup_is_read_as_docker_stats_does: {why}");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let (addr, server) = spawn_clw_auth(&dir.path().join("server.log"), Some(&cgroup.0));
    let test = LoadTest::new(format!("http://{addr}"), "scenarios/login-storm.toml");
    let opts = test.opts(&format!(
        "--concurrent-users 2 --ramp-up 0s --duration 3s --sample-interval 250ms --cgroup {}",
        cgroup.0.display()
    ));
    clw_cli::run(opts).await.expect("the run completes");
    let usage: f64 = std::fs::read_to_string(cgroup.0.join("memory.usage_in_bytes"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    drop(server);

    let s = read_summary(&test.out).unwrap();
    let m = &s["memory"];
    assert_eq!(m["sources"]["rss"], "cgroup", "{m}");
    assert_eq!(m["sources"]["cgroup"], "cgroup-v1", "{m}");
    assert_eq!(m["sources"]["limit"], "cgroup", "{m}");
    assert_eq!(m["limit_bytes"], 512u64 << 20, "{m}");
    let rows = rows(&test.out);
    assert!(rows.len() >= 8, "{} rows", rows.len());
    for row in &rows {
        assert_eq!(row["source"], "cgroup", "{row:?}");
        let (ws, used) = (
            num(row, "rss_bytes").unwrap(),
            num(row, "cgroup_bytes").unwrap(),
        );
        assert!(ws > 1e6 && ws <= used, "{row:?}");
        // The server's memory, not the machine's: well under a GiB.
        assert!(used < 1e9 && used < usage * 4.0, "{row:?}");
    }
}

#[tokio::test]
async fn a_container_that_is_nowhere_is_bad_input() {
    let test = LoadTest::new("http://127.0.0.1:9".into(), "scenarios/login-storm.toml");
    let err = clw_cli::run(test.opts("--duration 1s --container clw-no-such-container"))
        .await
        .expect_err("no such container");
    let text = err.to_string();
    assert_eq!(err.exit_code(), 2, "{text}");
    assert!(
        text.contains("--container: no cgroup found for container `clw-no-such-container`"),
        "{text}"
    );
}
