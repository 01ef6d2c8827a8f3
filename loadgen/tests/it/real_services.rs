//! clw-cli against real services nobody here wrote (services/, on
//! loopback): Express with express-session's MemoryStore and its bounded
//! twin memorystore, a Go service with net/http/pprof, and panva's
//! oidc-provider as an OAuth 2.0 token endpoint. Each is started by the test
//! (or by `--spawn-server`) on a free port and killed by its PID after.
//! `make real-services` installs them (services/install.sh) and runs this
//! file; without the install each test prints why it skips.

use serde_json::Value;

use crate::common;
use crate::common::{read_summary, LoadTest};
use crate::real;
use crate::real::{exclusive, free_addr, get, go_service, node_service, sample, Service};

/// Runs the load test to its end on a runtime of its own (the tests are
/// plain #[test]s so that [`exclusive`]'s guard is never held across an
/// await).
fn run(test: &LoadTest, opts: clw_cli::Opts) -> (clw_cli::Outcome, Value, String) {
    let out = &test.out;
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(clw_cli::run(opts))
        .expect("the load test runs");
    let s = read_summary(out).expect("summary.json");
    let log = std::fs::read_to_string(out.join("server.log")).unwrap_or_default();
    (outcome, s, log)
}

/// The `--spawn-server` command for the Express app with `store` and the
/// environment assignments `env` ("A=1 B=2").
fn express_command(dir: &std::path::Path, port: u16, store: &str, env: &str) -> String {
    express_command_with(dir, port, store, env, "")
}

/// As [`express_command`], with flags for node itself.
fn express_command_with(
    dir: &std::path::Path,
    port: u16,
    store: &str,
    env: &str,
    node_flags: &str,
) -> String {
    format!(
        "env PORT={port} SESSION_STORE={store} {env} node {node_flags} '{}'",
        dir.join("server.js").display()
    )
}

fn count(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// Requests of `step` and its errors, from summary.json's `steps`.
fn step(s: &Value, name: &str) -> (u64, u64) {
    let st = &s["steps"][name];
    (count(&st["requests"]), count(&st["errors"]))
}

const EXPRESS_STORM: &str = "services/express-session/scenarios/express-login-storm.toml";
const EXPRESS_FLOW: &str = "services/express-session/scenarios/express-login-logout.toml";

/// express-session's MemoryStore keeps every session of a login storm: the
/// verdict is `leak`, with every login a 302 and every /me a 200 through the
/// cookie jar (regex capture of the CSRF field, form body, no redirect
/// followed).
#[test]
fn express_memory_store_login_storm_is_a_leak() {
    let Some(dir) = node_service(
        "express_memory_store_login_storm_is_a_leak",
        "express-session",
    ) else {
        return;
    };
    let _one = exclusive();
    let port = common::free_port();
    let test = LoadTest::new(format!("http://127.0.0.1:{port}"), EXPRESS_STORM);
    let command = express_command(&dir, port, "memory", "SESSION_PROFILE_BYTES=2048");
    let (outcome, s, log) = run(
        &test,
        test.spawn_opts(
            &command,
            "--concurrent-users 20 --duration 15s --memory-limit 2G",
        ),
    );
    println!("{}", s["memory"]["evidence"]);
    assert_eq!(s["server"]["exit"], Value::Null, "node died: {log}");
    let (forms, form_errors) = step(&s, "login-form");
    let (logins, login_errors) = step(&s, "login");
    let (mes, me_errors) = step(&s, "me");
    assert!(logins > 1000, "a storm, not a trickle: {}", s["requests"]);
    assert_eq!(
        (form_errors, login_errors, me_errors),
        (0, 0, 0),
        "{}",
        s["requests"]
    );
    assert!(
        forms >= logins && logins >= mes && logins - mes <= 20,
        "{}",
        s["steps"]
    );
    assert_eq!(count(&s["requests"]["by_status"]["302"]), logins);
    assert_eq!(s["memory"]["verdict"], "leak", "{}", s["memory"]);
    assert_eq!(outcome.exit_code, 1, "verdict != leak fails the run");
}

/// The same storm under a small cgroup limit: the kernel OOM-kills node
/// (exit 137 in summary.json) and the verdict is still `leak`. Where no
/// cgroup can be made (clw-limit falls back to its watchdog), the kill would
/// be clw-limit's own and the test says it skips.
#[test]
fn express_memory_store_under_a_small_limit_is_oom_killed() {
    let name = "express_memory_store_under_a_small_limit_is_oom_killed";
    let Some(dir) = node_service(name, "express-session") else {
        return;
    };
    let _one = exclusive();
    let port = common::free_port();
    let test = LoadTest::new(format!("http://127.0.0.1:{port}"), EXPRESS_STORM);
    // V8 sizes its heap from the machine: a heap limit far above the
    // cgroup's makes the kernel's OOM killer, not V8's "heap out of memory"
    // abort (exit 134), end the leaking node, as in a container.
    let command = express_command_with(
        &dir,
        port,
        "memory",
        "SESSION_PROFILE_BYTES=2048",
        "--max-old-space-size=8192",
    );
    let (outcome, s, log) = run(
        &test,
        test.spawn_opts(
            &command,
            "--concurrent-users 20 --duration 90s --memory-limit 128M --sample-interval 100ms",
        ),
    );
    let enforcement = s["server"]["limit_enforcement"].as_str().unwrap_or("?");
    if enforcement == "watchdog" {
        real::say_skip(
            name,
            &format!(
                "no memory cgroup could be made here (the limit was clw-limit's watchdog): {}",
                s["notes"]
            ),
        );
        return;
    }
    let exit = &s["server"]["exit"];
    assert_eq!(exit["oom_killed"], true, "{exit} {log}");
    assert_eq!(exit["shell_code"], 137, "{exit}");
    assert_eq!(exit["emulated"], false, "{exit}");
    assert!(
        exit["at_s"].as_f64().unwrap() < 80.0,
        "killed well before the end: {exit}"
    );
    assert!(count(&s["requests"]["ok"]) > 1000, "{}", s["requests"]);
    assert_eq!(s["memory"]["verdict"], "leak", "{}", s["memory"]);
    assert_eq!(outcome.exit_code, 1, "a server that died fails the run");
    println!(
        "node OOM-killed at {:.1} s under 128 MiB ({enforcement}), peak RSS {}%",
        exit["at_s"].as_f64().unwrap(),
        s["memory"]["peak_rss_percent"]
    );
}

/// memorystore (an LRU of SESSION_MAX sessions) under the same storm holds
/// its memory: `bounded`. The verdict reads node's own heap gauge
/// (`--heap-metric nodejs_heap_size_used_bytes`, prom-client), as it reads
/// jemalloc's allocated bytes for clw-auth: node's RSS creeps and jitters by
/// more than 1% of its level (on RSS alone this test read `bounded` in 4 of
/// 6 runs, `inconclusive` once, `leak` once), the heap V8 reports does not
/// once the store is full. The window after ramp-up is 45 s.
#[test]
fn express_memorystore_login_storm_is_bounded() {
    let Some(dir) = node_service(
        "express_memorystore_login_storm_is_bounded",
        "express-session",
    ) else {
        return;
    };
    let _one = exclusive();
    let port = common::free_port();
    let test = LoadTest::new(format!("http://127.0.0.1:{port}"), EXPRESS_STORM);
    let command = express_command(
        &dir,
        port,
        "memorystore",
        "SESSION_PROFILE_BYTES=2048 SESSION_MAX=2000",
    );
    let (outcome, s, log) = run(
        &test,
        test.spawn_opts(
            &command,
            "--concurrent-users 20 --ramp-up 15s --duration 60s --memory-limit 2G \
             --heap-metric nodejs_heap_size_used_bytes",
        ),
    );
    println!("{}", s["memory"]["evidence"]);
    assert_eq!(s["server"]["exit"], Value::Null, "node died: {log}");
    let (logins, login_errors) = step(&s, "login");
    let (_, me_errors) = step(&s, "me");
    assert!(logins > 1000, "{}", s["requests"]);
    // With its LRU full, memorystore now and then loses a session it just
    // made: the next request of the same iteration then finds none (a login
    // with the form's CSRF token answers 403, a /me after a login 401).
    // Seen here in every 60 s run: 2 of 23,597 /me, then 10 of 33,917, then
    // 4 /me and 1 login of 27,209; never with express-session's MemoryStore
    // and never with the store below its bound. Counted, as a real client
    // would see them, and held to 0.1%; any other error fails.
    let by_error = &s["requests"]["by_error"];
    let lost = count(&by_error["http-401"]) + count(&by_error["http-403"]);
    assert_eq!(count(&s["requests"]["failed"]), lost, "{}", s["requests"]);
    assert_eq!(login_errors + me_errors, lost, "{}", s["steps"]);
    assert!(
        lost * 1000 <= logins,
        "at most 0.1% of sessions lost: {}",
        s["requests"]
    );
    assert!(
        logins > 2 * 2000,
        "the storm made more sessions than the store may hold: {logins}"
    );
    assert_eq!(s["memory"]["verdict"], "bounded", "{}", s["memory"]);
    assert_eq!(outcome.exit_code, 0, "{}", s["failures"]);
}

/// The cookie flow login -> /me -> logout: /me answers 200 every time with
/// the jar's session cookie, and once the load stops the store holds no
/// more sessions than there were users mid-iteration (each iteration
/// destroys its session), against thousands of logins.
#[test]
fn express_login_me_logout_gets_200_and_the_store_empties() {
    let Some(dir) = node_service(
        "express_login_me_logout_gets_200_and_the_store_empties",
        "express-session",
    ) else {
        return;
    };
    let _one = exclusive();
    let addr = free_addr();
    let tmp = tempfile::tempdir().unwrap();
    let server = dir.join("server.js");
    let service = Service::start(
        "node",
        &[server.to_str().unwrap()],
        &[
            ("PORT", addr.port().to_string()),
            ("SESSION_STORE", "memory".into()),
        ],
        addr,
        tmp.path().join("express.log"),
    );
    let test = LoadTest::new(format!("http://{addr}"), EXPRESS_FLOW);
    let pid = service.pid().to_string();
    let (outcome, s, _) = run(
        &test,
        test.opts(&format!(
            "--concurrent-users 10 --duration 8s --server-pid {pid}"
        )),
    );
    let (logins, login_errors) = step(&s, "login");
    let (mes, me_errors) = step(&s, "me");
    let (logouts, logout_errors) = step(&s, "logout");
    assert!(logins > 200, "{}", s["steps"]);
    assert_eq!(
        (login_errors, me_errors, logout_errors),
        (0, 0, 0),
        "{}",
        s["requests"]
    );
    assert!(mes + 10 >= logins && logouts + 10 >= mes, "{}", s["steps"]);
    let (forms, _) = step(&s, "login-form");
    let by_status = &s["requests"]["by_status"];
    assert_eq!(count(&by_status["200"]), forms + mes, "{by_status}");
    assert_eq!(count(&by_status["302"]), logins + logouts, "{by_status}");
    let (status, page) = get(addr, "/metrics").expect("metrics after the run");
    assert_eq!(status, 200);
    let active = sample(&page, "sessions_active").expect("sessions_active");
    let ok_logins = page
        .lines()
        .find_map(|l| l.strip_prefix("logins_total{outcome=\"ok\"} "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .expect("logins_total");
    assert_eq!(
        ok_logins as u64, logins,
        "the server counted the same logins"
    );
    assert!(
        active <= 10.0,
        "at most one session per user left mid-iteration, got {active} after {logins} logins"
    );
    assert_eq!(outcome.exit_code, 0, "{}", s["failures"]);
    println!("{logins} logins, {logouts} logouts, sessions_active {active} after the run");
    drop(service);
}

/// `[users] file`: the accounts of services/express-session/users.csv, which
/// are not user-N, all log in.
#[test]
fn express_users_from_a_csv_file_log_in() {
    let Some(dir) = node_service("express_users_from_a_csv_file_log_in", "express-session") else {
        return;
    };
    let _one = exclusive();
    let port = common::free_port();
    let test = LoadTest::new(
        format!("http://127.0.0.1:{port}"),
        "services/express-session/scenarios/express-csv-users.toml",
    );
    let command = express_command(&dir, port, "memory", "");
    let (outcome, s, log) = run(
        &test,
        test.spawn_opts(
            &command,
            "--concurrent-users 3 --duration 3s --memory-limit 1G --no-heap-profile",
        ),
    );
    let (logins, login_errors) = step(&s, "login");
    assert!(logins > 30, "{}", s["steps"]);
    assert_eq!(login_errors, 0, "{} {log}", s["requests"]);
    assert_eq!(count(&s["requests"]["failed"]), 0, "{}", s["requests"]);
    assert_eq!(outcome.exit_code, 0, "{}", s["failures"]);
}

/// Go's session map never forgets: `leak`, and the growth site that Go's
/// own heap profiler names first is the map insert, main.(*store).insert.
#[test]
fn go_session_map_leaks_and_its_heap_profile_names_the_insert() {
    let Some(bin) = go_service("go_session_map_leaks_and_its_heap_profile_names_the_insert") else {
        return;
    };
    let _one = exclusive();
    let port = common::free_port();
    let test = LoadTest::new(
        format!("http://127.0.0.1:{port}"),
        "services/go-sessions/scenarios/go-login-storm.toml",
    );
    let command = format!("'{}' -addr 127.0.0.1:{port}", bin.display());
    let (outcome, s, log) = run(
        &test,
        test.spawn_opts(
            &command,
            // The target's /debug/pprof/heap, found by default. Go's profile
            // is as of the last GC, which this allocation rate runs often.
            "--concurrent-users 20 --duration 12s --memory-limit 2G --heap-profile-every 4s",
        ),
    );
    assert_eq!(s["server"]["exit"], Value::Null, "{log}");
    assert_eq!(count(&s["requests"]["failed"]), 0, "{}", s["requests"]);
    assert_eq!(s["memory"]["verdict"], "leak", "{}", s["memory"]);
    let sites = s["memory"]["growth_sites"]
        .as_array()
        .expect("growth sites");
    let top = &sites[0];
    assert_eq!(top["function"], "main.(*store).insert", "{sites:?}");
    assert!(
        top["file"]
            .as_str()
            .unwrap()
            .ends_with("services/go-sessions/main.go"),
        "{top}"
    );
    // The insert's lines together hold most of the growth.
    let insert: f64 = sites
        .iter()
        .filter(|site| site["function"] == "main.(*store).insert")
        .map(|site| site["share_percent"].as_f64().unwrap())
        .sum();
    assert!(
        insert > 60.0,
        "insert holds {insert}% of the growth: {sites:?}"
    );
    assert!(
        std::fs::read_dir(test.out.join("heap")).unwrap().count() >= 3,
        "profiles at ramp-up, every 4 s and at the end"
    );
    assert_eq!(outcome.exit_code, 1, "verdict != leak fails the run");
    println!("top growth site {top}");
}

/// client_credentials at a real token endpoint (oidc-provider): the client
/// authenticates with HTTP Basic and a form body, the access token is
/// captured and introspected (RFC 7662), and every answer is 2xx.
#[test]
fn oauth2_client_credentials_are_all_2xx_and_the_token_is_captured() {
    let Some(dir) = node_service(
        "oauth2_client_credentials_are_all_2xx_and_the_token_is_captured",
        "oauth2",
    ) else {
        return;
    };
    let _one = exclusive();
    let port = common::free_port();
    let test = LoadTest::new(
        format!("http://127.0.0.1:{port}"),
        "services/oauth2/scenarios/oauth2-client-credentials.toml",
    );
    let command = format!("env PORT={port} node '{}'", dir.join("server.js").display());
    let (outcome, s, log) = run(
        &test,
        test.spawn_opts(
            &command,
            "--concurrent-users 5 --duration 6s --memory-limit 1G --no-heap-profile",
        ),
    );
    assert_eq!(s["server"]["exit"], Value::Null, "{log}");
    let (tokens, token_errors) = step(&s, "token");
    let (checks, check_errors) = step(&s, "introspect");
    assert!(tokens > 100, "{}", s["steps"]);
    assert_eq!((token_errors, check_errors), (0, 0), "{}", s["requests"]);
    assert!(
        tokens - checks <= 5,
        "each token was introspected: {}",
        s["steps"]
    );
    let by_status = s["requests"]["by_status"].as_object().unwrap();
    assert!(
        by_status.keys().all(|code| code.starts_with('2')),
        "{by_status:?}"
    );
    assert_eq!(count(&s["requests"]["total"]), tokens + checks);
    assert_eq!(outcome.exit_code, 0, "{}", s["failures"]);
}
