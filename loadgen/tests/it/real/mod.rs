//! The real services of `services/` (docs/real-services.md): where they are
//! installed, whether they can run here, and the processes the tests start
//! themselves. `services/install.sh` (run by `make real-services`) installs
//! them; without it every test says why it skips, and with
//! `CLW_REQUIRE_REAL_SERVICES=1` (what `make real-services` sets) a missing
//! service fails the test instead.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::common::workspace;

/// One load test at a time: each judges memory, and two at once on a
/// 2-core machine would starve each other's servers.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

pub fn exclusive() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// The real services' tests run in `make real-services` (which sets
/// REAL_SERVICES_DIR), one at a time with the cores to themselves: in a
/// plain `cargo test` they would judge memory beside the whole suite.
fn run_here(test: &str) -> Option<()> {
    match std::env::var_os("REAL_SERVICES_DIR") {
        Some(_) => Some(()),
        None => skip(
            test,
            "the real services run in make real-services, one at a time (REAL_SERVICES_DIR is unset)",
        ),
    }
}

/// `Some(dir)` of a Node service (`services/<name>`) that can run: node on
/// the PATH and `npm ci` done from the committed lock file. `None` after
/// printing why the test skips (or panics under CLW_REQUIRE_REAL_SERVICES).
pub fn node_service(test: &str, name: &str) -> Option<PathBuf> {
    run_here(test)?;
    let dir = workspace().join("services").join(name);
    if !on_path("node") {
        return skip(
            test,
            "node is not on the PATH (the Node services need Node.js 18+)",
        );
    }
    let lock = std::fs::read(dir.join("package-lock.json")).expect("committed lock file");
    let installed = std::fs::read_to_string(dir.join("node_modules/.clw-installed-lock"));
    match installed {
        Ok(sum) if sum.trim() == sha256_hex(&lock) => Some(dir),
        Ok(_) => skip(
            test,
            &format!("services/{name}/node_modules is not the committed package-lock.json: run services/install.sh (or make real-services)"),
        ),
        Err(_) => skip(
            test,
            &format!("services/{name} is not installed: run services/install.sh (or make real-services)"),
        ),
    }
}

/// The Go service's binary, built by services/install.sh from the current
/// source; `None` after printing why not.
pub fn go_service(test: &str) -> Option<PathBuf> {
    run_here(test)?;
    let dir = std::env::var_os("REAL_SERVICES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/real-services"));
    let dir = if dir.is_absolute() {
        dir
    } else {
        workspace().join(dir)
    };
    let bin = dir.join("go-sessions");
    let source = workspace().join("services/go-sessions/main.go");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    match (modified(&bin), modified(&source)) {
        (None, _) => {
            let go = if on_path("go") {
                "go is installed"
            } else {
                "go is not on the PATH either"
            };
            skip(
                test,
                &format!(
                    "{} is not built ({go}): run services/install.sh (or make real-services)",
                    bin.display()
                ),
            )
        }
        (Some(built), Some(src)) if built < src => skip(
            test,
            &format!(
                "{} is older than services/go-sessions/main.go: run services/install.sh",
                bin.display()
            ),
        ),
        _ => Some(bin),
    }
}

fn skip<T>(test: &str, why: &str) -> Option<T> {
    if std::env::var_os("CLW_REQUIRE_REAL_SERVICES").is_some_and(|v| v == "1") {
        panic!("{test}: {why} (CLW_REQUIRE_REAL_SERVICES=1)");
    }
    say_skip(test, why);
    None
}

/// Prints `SKIP test: why` on the real stderr: a write to the handle, not
/// eprintln!, which the test harness captures and hides for passing tests.
pub fn say_skip(test: &str, why: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "SKIP {test}: {why}");
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|p| p.join(program).is_file()))
}

fn sha256_hex(bytes: &[u8]) -> String {
    let out = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write as _;
            c.stdin.take().unwrap().write_all(bytes)?;
            c.wait_with_output()
        })
        .expect("sha256sum (coreutils), as services/install.sh uses");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// A service process this test started; killed by its PID when dropped.
pub struct Service {
    child: Child,
    pub log: PathBuf,
}

impl Service {
    /// Starts `program args` with `env` (stdout and stderr to `log`) and
    /// waits until `GET /ready` on `addr` answers 200.
    pub fn start(
        program: &str,
        args: &[&str],
        env: &[(&str, String)],
        addr: SocketAddr,
        log: PathBuf,
    ) -> Service {
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(program)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("start {program}: {e}"));
        let mut service = Service { child, log };
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = service.child.try_wait() {
                panic!(
                    "{program} exited ({status}) before it was ready: {}",
                    service.log_text()
                );
            }
            if get(addr, "/ready").is_some_and(|(status, _)| status == 200) {
                return service;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{program} not ready within 30 s: {}",
                service.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        // Child::kill sends SIGKILL to this child's own PID; wait reaps it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` on `addr` over a fresh connection: status and body, or `None`
/// when nothing answers.
pub fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    use std::io::{Read as _, Write as _};
    let mut sock = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    sock.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        sock,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    sock.read_to_string(&mut text).ok()?;
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

/// The value of the unlabelled sample `name` on a Prometheus text page.
pub fn sample(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// A free loopback address.
pub fn free_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], crate::common::free_port()))
}
