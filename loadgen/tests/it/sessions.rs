//! Cookie sessions, HTML form logins, OAuth2-style token requests and
//! redirects, read off the wire: a small session server on 127.0.0.1:0
//! behaves as Express/Rails/Spring login pages do (a CSRF field in the
//! form, a session cookie set by the login, a 302 to /me, a logout that
//! deletes the cookie) and records every request, so the tests check
//! what clw-cli really sent, not what it meant to send.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use crate::common;
use crate::common::{summary, LoadTest};
use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One request as the server read it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Seen {
    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
    fn one(&self, name: &str) -> Option<&str> {
        self.all(name).first().copied()
    }
}

#[derive(Default)]
struct State {
    seen: Vec<Seen>,
    /// session id -> user, for sessions logged in and not logged out.
    sessions: HashMap<String, String>,
    next: u64,
}

type Shared = Arc<Mutex<State>>;

/// The server's answer to `req`.
fn route(state: &Shared, req: &Seen) -> String {
    let mut st = state.lock().unwrap();
    st.seen.push(req.clone());
    let cookie = |name: &str| {
        req.one("cookie").and_then(|c| {
            c.split("; ")
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    };
    let reply = |status: &str, extra: &str, body: &str| {
        format!(
            "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/login") => {
            st.next += 1;
            let csrf = format!("c{}", st.next);
            reply(
                "200 OK",
                &format!(
                    "Set-Cookie: csrf={csrf}; Path=/; HttpOnly\r\nContent-Type: text/html\r\n"
                ),
                &format!(
                    r#"<form method="post"><input type="hidden" name="csrf_token" value="{csrf}"><input name="username"></form>"#
                ),
            )
        }
        ("POST", "/login") => {
            let form: HashMap<String, String> = form_urlencoded::parse(req.body.as_bytes())
                .into_owned()
                .collect();
            let csrf_ok = cookie("csrf").is_some_and(|c| form.get("csrf_token") == Some(&c));
            let type_ok = req.all("content-type") == ["application/x-www-form-urlencoded"];
            if !csrf_ok || !type_ok {
                return reply("403 Forbidden", "", "bad csrf or content type");
            }
            if !matches!(
                form.get("password").map(String::as_str),
                Some("pa ss&word=1" | "clw-load-test")
            ) {
                return reply("401 Unauthorized", "", "bad password");
            }
            st.next += 1;
            let sid = format!("s{}", st.next);
            let user = form.get("username").cloned().unwrap_or_default();
            st.sessions.insert(sid.clone(), user);
            reply(
                "302 Found",
                // Absolute, as Spring and Rails write it: a client must
                // see it is the same origin.
                &format!(
                    "Set-Cookie: session={sid}; Path=/; HttpOnly\r\nLocation: http://{}/me\r\n",
                    req.one("host").unwrap_or_default()
                ),
                "",
            )
        }
        ("GET", "/me") => match cookie("session").and_then(|s| st.sessions.get(&s).cloned()) {
            Some(user) => reply("200 OK", "", &format!(r#"{{"user":"{user}"}}"#)),
            None => reply("401 Unauthorized", "", "no session"),
        },
        ("POST", "/logout") => {
            if let Some(s) = cookie("session") {
                st.sessions.remove(&s);
            }
            reply(
                "302 Found",
                "Set-Cookie: session=; Path=/; Max-Age=0\r\nLocation: http://elsewhere.invalid/bye\r\n",
                "",
            )
        }
        ("POST", "/token") => {
            let basic = |creds: &str| {
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(creds)
                )
            };
            let clients = [basic("client-7:s3cr3t:x"), basic("clw-cli:clw-cli-secret")];
            let form: HashMap<String, String> = form_urlencoded::parse(req.body.as_bytes())
                .into_owned()
                .collect();
            if !req
                .one("authorization")
                .is_some_and(|a| clients.iter().any(|c| c == a))
                || form.get("grant_type").map(String::as_str) != Some("client_credentials")
            {
                return reply("401 Unauthorized", "", r#"{"error":"invalid_client"}"#);
            }
            reply(
                "200 OK",
                "Content-Type: application/json\r\n",
                r#"{"access_token":"at-1","token_type":"Bearer"}"#,
            )
        }
        _ => reply("404 Not Found", "", ""),
    }
}

/// The session server; returns its address and state.
async fn session_server() -> (SocketAddr, Shared) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state: Shared = Arc::default();
    let shared = state.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let state = shared.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    while let Some((req, used)) = parse(&buf) {
                        buf.drain(..used);
                        let answer = route(&state, &req);
                        if sock.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    (addr, state)
}

/// One complete request at the start of `buf`, and its length.
fn parse(buf: &[u8]) -> Option<(Seen, usize)> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(head) = req.parse(buf).ok()? else {
        return None;
    };
    let headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let len: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, v)| v.parse().unwrap());
    if buf.len() < head + len {
        return None;
    }
    Some((
        Seen {
            method: req.method?.to_string(),
            path: req.path?.to_string(),
            headers,
            body: String::from_utf8_lossy(&buf[head..head + len]).into_owned(),
        },
        head + len,
    ))
}

const FORM_LOGIN: &str = r#"
name = "form-login"
[users]
count = 3
password = "pa ss&word=1"

[[steps]]
name = "login-form"
method = "GET"
path = "/login"
capture = { csrf = { regex = 'name="csrf_token" value="([^"]+)"' } }

[[steps]]
name = "login"
method = "POST"
path = "/login"
form = { username = "{user}", password = "{password}", csrf_token = "{csrf}" }
headers = { Referer = "http://{host}/login" }
follow_redirects = 0
expect = 302
capture = { next = { header = "Location" }, sid = { cookie = "session" } }

[[steps]]
name = "me"
method = "GET"
path = "{next}"
headers = { X-Session = "{sid}", X-Next = "{next}" }

[[steps]]
name = "logout"
method = "POST"
path = "/logout"
follow_redirects = 0
expect = 302
"#;

fn by_step(s: &serde_json::Value, step: &str, field: &str) -> u64 {
    s["steps"][step][field]
        .as_u64()
        .unwrap_or_else(|| panic!("steps.{step}.{field} in {s}"))
}

fn seen(state: &Shared) -> Vec<Seen> {
    state.lock().unwrap().seen.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_login_keeps_its_session_cookie_and_logs_out() {
    let (addr, state) = session_server().await;
    let test = LoadTest::with_scenario_text(format!("http://{addr}"), FORM_LOGIN);
    let outcome = clw_cli::run(test.opts("--concurrent-users 3 --duration 1s --no-memory"))
        .await
        .expect("the run completes");
    let s = summary(&test.out);
    assert_eq!(outcome.exit_code, 0, "{s}");
    assert_eq!(s["requests"]["failed"], 0, "{s}");
    let me = by_step(&s, "me", "requests");
    assert!(me > 10, "{s}");
    let seen = seen(&state);
    // Every /me carried the session cookie its iteration's login set (the
    // server answered 200 only then), and the captured value matches it.
    for r in seen.iter().filter(|r| r.path == "/me") {
        let cookie = r.one("cookie").expect("a Cookie header on /me");
        let sid = r.one("x-session").unwrap();
        assert!(
            cookie.contains(&format!("session={sid}")),
            "{cookie} vs {sid}"
        );
        assert_eq!(r.all("cookie").len(), 1);
        // The captured absolute Location, cut to its path for `{next}`.
        assert_eq!(r.one("x-next"), Some(format!("http://{addr}/me").as_str()));
    }
    // The login form: urlencoded, one Content-Type, the CSRF of the page,
    // the password encoded, Referer rendered with {host}.
    let login = seen
        .iter()
        .find(|r| r.method == "POST" && r.path == "/login")
        .unwrap();
    assert_eq!(
        login.all("content-type"),
        ["application/x-www-form-urlencoded"]
    );
    assert!(
        login.body.contains("password=pa+ss%26word%3D1"),
        "{}",
        login.body
    );
    assert_eq!(
        login.one("referer"),
        Some(format!("http://{addr}/login").as_str())
    );
    // A new browser session each iteration: the first request of an
    // iteration carries no cookie.
    assert!(seen
        .iter()
        .filter(|r| r.path == "/login" && r.method == "GET")
        .all(|r| r.one("cookie").is_none()));
    // Logouts reached their sessions: at most the in-flight ones remain.
    let left = state.lock().unwrap().sessions.len();
    assert!(left <= 3, "{left} sessions left after {me} logins");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_jar_the_csrf_cookie_never_comes_back() {
    let (addr, state) = session_server().await;
    let text = FORM_LOGIN.replace("[users]", "[http]\ncookies = false\n\n[users]");
    let test = LoadTest::with_scenario_text(format!("http://{addr}"), &text);
    let outcome = clw_cli::run(test.opts("--concurrent-users 2 --duration 1s --no-memory"))
        .await
        .expect("the run completes");
    let s = summary(&test.out);
    assert_eq!(outcome.exit_code, 0, "errors alone do not fail a run: {s}");
    // No jar: the CSRF cookie never comes back, so the login is refused.
    assert!(seen(&state).iter().all(|r| r.one("cookie").is_none()));
    assert!(
        s["requests"]["by_error"]["http-403"].as_u64().unwrap() > 0,
        "{s}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_that_misses_names_its_step_and_selector() {
    let (addr, _state) = session_server().await;
    let text = FORM_LOGIN.replace("cookie = \"session\"", "cookie = \"sessionid\"");
    let test = LoadTest::with_scenario_text(format!("http://{addr}"), &text);
    let outcome = clw_cli::run(test.opts("--concurrent-users 1 --duration 1s --no-memory"))
        .await
        .expect("the run completes");
    let s = summary(&test.out);
    assert_eq!(outcome.exit_code, 0, "{s}");
    let failed = s["requests"]["by_error"]["capture-failed"]
        .as_u64()
        .unwrap();
    let why = &s["requests"]["capture_failed"];
    let (reason, n) = why.as_object().unwrap().iter().next().unwrap();
    assert_eq!(n.as_u64(), Some(failed));
    assert_eq!(
        reason,
        "step login: capture sid = cookie \"sessionid\": the response has no cookie sessionid"
    );
    // The later steps never ran without the value.
    assert_eq!(s["steps"]["me"]["requests"].as_u64().unwrap_or(0), 0, "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_followed_with_their_cookies_and_judged_at_the_end() {
    let (addr, state) = session_server().await;
    // Follow the login's 302 to /me (default 10 hops), judged on the 200.
    let text = r#"
name = "follow"
[users]
password = "pa ss&word=1"
[[steps]]
name = "login-form"
method = "GET"
path = "/login"
capture = { csrf = { regex = 'value="([^"]+)"' } }
[[steps]]
name = "login"
method = "POST"
path = "/login"
form = { username = "{user}", password = "{password}", csrf_token = "{csrf}" }
capture = { who = "user" }
[[steps]]
name = "logout"
method = "POST"
path = "/logout"
"#;
    let test = LoadTest::with_scenario_text(format!("http://{addr}"), text);
    let outcome = clw_cli::run(test.opts("--concurrent-users 1 --duration 1s --no-memory"))
        .await
        .expect("the run completes");
    let s = summary(&test.out);
    // Logins: each a 302 hop and a 200 from /me, both in the step's
    // figures; the logout's redirect leaves the origin: an error.
    let logins = by_step(&s, "login", "requests");
    let seen = seen(&state);
    let posts = seen
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/login")
        .count() as u64;
    let mes = seen.iter().filter(|r| r.path == "/me").count() as u64;
    assert_eq!(logins, posts + mes, "{s}");
    assert!(posts > 0 && posts.abs_diff(mes) <= 1, "{posts} {mes}");
    // The hop was a GET carrying the cookie the 302 set, without the body.
    let hop = seen.iter().find(|r| r.path == "/me").unwrap();
    assert_eq!(hop.method, "GET");
    assert!(hop.one("cookie").unwrap().contains("session="));
    assert!(hop.one("content-type").is_none() && hop.body.is_empty());
    assert_eq!(by_step(&s, "login", "errors"), 0, "{s}");
    assert_eq!(
        s["requests"]["by_error"]["redirect-off-origin"].as_u64(),
        Some(by_step(&s, "logout", "requests")),
        "{s}"
    );
    assert_eq!(outcome.exit_code, 0, "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_from_a_users_file_with_basic_auth() {
    let (addr, state) = session_server().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("clients.csv"),
        "client_id,client_secret\nclient-7,s3cr3t:x\n",
    )
    .unwrap();
    let text = r#"
name = "client-credentials"
[users]
file = "clients.csv"
[[steps]]
name = "token"
method = "POST"
path = "/token"
basic_auth = { username = "{client_id}", password = "{client_secret}" }
form = { grant_type = "client_credentials", scope = "api:read" }
capture = { token = "access_token" }
[[steps]]
name = "api"
method = "GET"
path = "/me"
headers = { Authorization = "Bearer {token}" }
expect = 401
"#;
    let scenario = common::write_scenario(dir.path(), text);
    let out = dir.path().join("run");
    let flags = format!(
        "--concurrent-users 2 --duration 1s --no-memory \
         --target http://{addr} --scenario {} --out {}",
        scenario.display(),
        out.display()
    );
    let args: Vec<&str> = flags.split_whitespace().collect();
    let outcome = clw_cli::run(common::opts(&args)).await.expect("runs");
    let s = summary(&out);
    assert_eq!(outcome.exit_code, 0, "{s}");
    assert!(by_step(&s, "token", "requests") > 10);
    let seen = seen(&state);
    let token = seen.iter().find(|r| r.path == "/token").unwrap();
    assert_eq!(
        token.all("content-type"),
        ["application/x-www-form-urlencoded"]
    );
    assert_eq!(token.body, "grant_type=client_credentials&scope=api%3Aread");
    let api = seen.iter().find(|r| r.path == "/me").unwrap();
    assert_eq!(api.one("authorization"), Some("Bearer at-1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_content_type_on_the_wire_whoever_sets_it() {
    let (addr, state) = session_server().await;
    let text = r#"
name = "bodies"
[[steps]]
name = "json-own-type"
method = "POST"
path = "/a"
headers = { Content-Type = "application/vnd.api+json" }
body = { user = "{user}" }
expect = 404
[[steps]]
name = "raw"
method = "POST"
path = "/b"
raw = "<q user=\"{user}\"/>"
content_type = "application/xml"
expect = 404
[[steps]]
name = "json"
method = "PUT"
path = "/c"
body = { n = 1 }
expect = 404
"#;
    let test = LoadTest::with_scenario_text(format!("http://{addr}"), text);
    let outcome = clw_cli::run(test.opts("--concurrent-users 1 --duration 1s --no-memory"))
        .await
        .expect("the run completes");
    assert_eq!(outcome.exit_code, 0, "{}", summary(&test.out));
    let seen = seen(&state);
    let first = |path: &str| seen.iter().find(|r| r.path == path).unwrap().clone();
    let a = first("/a");
    assert_eq!(a.all("content-type"), ["application/vnd.api+json"]);
    assert_eq!(a.body, r#"{"user":"user-0"}"#);
    let b = first("/b");
    assert_eq!(b.all("content-type"), ["application/xml"]);
    assert_eq!(b.body, r#"<q user="user-0"/>"#);
    assert_eq!(first("/c").all("content-type"), ["application/json"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_cookies_carries_the_jar_across_iterations() {
    let (addr, state) = session_server().await;
    let text = r#"
name = "keep"
[http]
keep_cookies = true
[[steps]]
name = "login-form"
method = "GET"
path = "/login"
"#;
    let test = LoadTest::with_scenario_text(format!("http://{addr}"), text);
    clw_cli::run(test.opts("--concurrent-users 1 --duration 1s --no-memory"))
        .await
        .expect("the run completes");
    let seen = seen(&state);
    assert!(seen.len() > 2);
    // The first iteration had no cookie; every later one sent the CSRF
    // cookie the one before it set.
    assert!(seen[0].one("cookie").is_none());
    assert!(seen[1..]
        .iter()
        .all(|r| r.one("cookie").is_some_and(|c| c.starts_with("csrf=c"))));
}

/// The shipped scenarios for these flows, unedited, against the session
/// server: what a user copying them gets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_form_login_and_client_credentials_scenarios_run_as_written() {
    for scenario in [
        "scenarios/form-login.toml",
        "scenarios/oauth2-client-credentials.toml",
    ] {
        let (addr, state) = session_server().await;
        let test = LoadTest::new(format!("http://{addr}"), scenario);
        let outcome = clw_cli::run(test.opts("--concurrent-users 2 --duration 1s --no-memory"))
            .await
            .expect("the run completes");
        let s = summary(&test.out);
        assert_eq!(outcome.exit_code, 0, "{scenario}: {s}");
        assert_eq!(s["requests"]["failed"], 0, "{scenario}: {s}");
        assert!(
            s["requests"]["total"].as_u64().unwrap() > 10,
            "{scenario}: {s}"
        );
        assert!(
            state.lock().unwrap().sessions.len() <= 2,
            "{scenario}: logouts arrived"
        );
    }
}
