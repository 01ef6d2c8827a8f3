//! Helpers shared by the integration tests: the `clw-cli auth
//! load-test` argument list, run folders, and the real clw-auth binary.

pub mod prometheus;
/// clw-auth's promtool helper, one copy for both crates' tests.
#[path = "../../../../auth-server/tests/common/promtool.rs"]
pub mod promtool;

use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::Parser;
use serde_json::Value;

/// An in-process clw-auth on 127.0.0.1 and a free port, with the test
/// configuration (16 users, cheap password hashing), on the test's runtime.
pub async fn start_auth() -> clw_auth::ServerHandle {
    clw_auth::Server::bind(clw_auth::Config::for_tests())
        .await
        .unwrap()
        .spawn()
}

/// The clw-cli binary as `clw-cli auth load-test --quiet --target TARGET
/// --scenario SCENARIO --out OUT`; the caller adds the run's flags and its
/// stdio.
pub fn load_test_command(target: &str, scenario: &Path, out: &Path) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_clw-cli"));
    c.args([
        "auth",
        "load-test",
        "--quiet",
        "--target",
        target,
        "--scenario",
    ])
    .arg(scenario)
    .arg("--out")
    .arg(out);
    c
}

/// `clw-cli auth load-test --quiet --no-report` followed by `args`, parsed.
pub fn opts(args: &[&str]) -> clw_cli::Opts {
    let mut all = vec!["clw-cli", "auth", "load-test", "--quiet", "--no-report"];
    all.extend_from_slice(args);
    clw_cli::Opts::try_parse_from(all).expect("valid options")
}

/// One load test's inputs and run folder: a fresh temporary directory that
/// lives as long as this value, the run folder `out` inside it, the target
/// URL and the scenario file.
pub struct LoadTest {
    pub dir: tempfile::TempDir,
    pub out: PathBuf,
    pub target: String,
    pub scenario: PathBuf,
}

impl LoadTest {
    /// A load test of an existing scenario file (`scenarios/...` under the
    /// workspace root) against `target`.
    pub fn new(target: String, scenario: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run");
        let scenario = workspace().join(scenario);
        Self {
            dir,
            out,
            target,
            scenario,
        }
    }

    /// A load test of a scenario given as TOML text, written to
    /// `scenario.toml` in the temporary directory.
    pub fn with_scenario_text(target: String, text: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let scenario = write_scenario(dir.path(), text);
        let out = dir.path().join("run");
        Self {
            dir,
            out,
            target,
            scenario,
        }
    }

    /// The options for this test, `flags` being the options that differ from
    /// test to test, separated by whitespace (so no value may hold a space).
    pub fn opts(&self, flags: &str) -> clw_cli::Opts {
        self.opts_with(&[], flags)
    }

    /// As [`LoadTest::opts`], with `--spawn-server command` as well.
    pub fn spawn_opts(&self, command: &str, flags: &str) -> clw_cli::Opts {
        self.opts_with(&["--spawn-server", command], flags)
    }

    fn opts_with(&self, args: &[&str], flags: &str) -> clw_cli::Opts {
        let mut all = vec![
            "--target",
            &self.target,
            "--scenario",
            self.scenario.to_str().unwrap(),
            "--out",
            self.out.to_str().unwrap(),
        ];
        all.extend_from_slice(args);
        all.extend(flags.split_whitespace());
        opts(&all)
    }
}

/// Writes `text` to `scenario.toml` in `dir`, replacing what was there.
pub fn write_scenario(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("scenario.toml");
    std::fs::File::create(&path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    path
}

/// The run folder's summary.json; panics if it is missing or not JSON.
pub fn summary(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap()
}

/// The workspace root, where `profiles/` and `scenarios/` live.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A port nothing listens on at the moment.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The run folder's summary.json, or `None` while it is not (fully) written.
pub fn read_summary(dir: &Path) -> Option<Value> {
    serde_json::from_slice(&std::fs::read(dir.join("summary.json")).ok()?).ok()
}

/// The clw-auth binary next to this test's target dir, built if missing.
pub fn clw_auth_binary() -> PathBuf {
    static BUILT: std::sync::Once = std::sync::Once::new();
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let bin = profile_dir.join("clw-auth");
    // Built (or found up to date) once per test binary, even when it
    // exists: `cargo test -p clw-cli` does not rebuild another package's
    // binary, and a stale clw-auth fails tests of features it predates.
    BUILT.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = std::process::Command::new(cargo)
            .args(["build", "-p", "clw-auth", "--bin", "clw-auth"])
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building clw-auth failed");
    });
    bin
}

/// A free port and the `--spawn-server` command line that runs clw-auth with
/// `profile` (a file under `profiles/`) on it. The binary is built first, so
/// the port is picked as late as possible.
pub fn clw_auth_command(profile: &str) -> (u16, String) {
    let bin = clw_auth_binary();
    let port = free_port();
    let command = format!(
        "'{}' --config '{}' --host 127.0.0.1 --port {port}",
        bin.display(),
        workspace().join("profiles").join(profile).display()
    );
    (port, command)
}

/// Polls `done` every 50 ms; panics saying `what` did not happen within
/// `limit`.
pub fn wait_until(limit: std::time::Duration, what: &str, mut done: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "{what} within {limit:?}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Logins then validations with the captured token: every request is
/// one clw-auth counts under its route.
pub const SESSIONS: &str = r#"
name = "sessions"
[users]
count = 16
[[steps]]
name = "login"
method = "POST"
path = "/auth/login"
body = { username = "{user}", password = "{password}" }
capture = { token = "token" }
[[steps]]
name = "validate"
method = "GET"
path = "/auth/validate"
headers = { Authorization = "Bearer {token}" }
repeat = 3
"#;

/// Sum of `clw_http_requests_total` samples whose labels contain `filter`.
pub fn server_count(metrics: &str, filter: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("clw_http_requests_total{") && l.contains(filter))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// GET /metrics of the server at `addr`, as text (status line and headers
/// included: callers look for sample lines).
pub async fn scrape(addr: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    sock.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    sock.read_to_string(&mut text).await.unwrap();
    text
}

/// `python3`, for a plain HTTP server without /ready or /metrics
/// (`python3 -m http.server`); `None`, with the reason printed, where the
/// machine has none (the test then skips, saying so).
pub fn python3() -> Option<&'static str> {
    let found = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        println!("SKIPPED: no python3 on this machine (it serves the plain HTTP server)");
    }
    found.then_some("python3")
}

/// `python3 -m http.server` on 127.0.0.1:`port`, serving `dir` (200 on
/// `/`, 404 on anything it does not hold, /ready included), as a command
/// line.
pub fn http_server_command(python: &str, dir: &Path, port: u16) -> String {
    format!(
        "{python} -m http.server --bind 127.0.0.1 --directory '{}' {port}",
        dir.display()
    )
}

/// GET / and nothing else: a server that has no route of clw-auth's.
pub const ROOT_ONLY: &str = r#"
name = "root-only"
[[steps]]
name = "root"
method = "GET"
path = "/"
expect = 200
"#;

/// A `sh -c` wrapper around `command` that runs it in the background and
/// waits, as `npm start` or a supervisor script would (the server is the
/// wrapper's child, not the wrapper), passing SIGTERM on.
pub fn wrapped(command: &str) -> String {
    format!("trap 'kill $!' TERM; {command} & wait")
}

/// The children of `pid`, from /proc.
pub fn children(pid: u32) -> Vec<u32> {
    procfs::process::all_processes()
        .unwrap()
        .flatten()
        .filter(|p| p.stat().is_ok_and(|s| s.ppid == pid as i32))
        .map(|p| p.pid() as u32)
        .collect()
}

/// VmRSS of `pid` in bytes, from /proc/PID/status.
pub fn rss_bytes(pid: u32) -> u64 {
    procfs::process::Process::new(pid as i32)
        .unwrap()
        .status()
        .unwrap()
        .vmrss
        .unwrap()
        * 1024
}

/// A process a test started, killed (by its PID, through its handle) and
/// reaped when dropped, whatever the assertions said.
pub struct Started(pub std::process::Child);

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `python -m http.server` serving `root` on a free 127.0.0.1 port, once
/// it listens: its URL and the process. `root` must outlive it.
pub fn python_http_server(python: &str, root: &Path) -> (String, Started) {
    let port = free_port();
    let child = std::process::Command::new(python)
        .args(["-m", "http.server", "--bind", "127.0.0.1", "--directory"])
        .arg(root)
        .arg(port.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start python3 -m http.server");
    let started = Started(child);
    wait_until(
        std::time::Duration::from_secs(20),
        "http.server listens",
        || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
    );
    (format!("http://127.0.0.1:{port}"), started)
}
