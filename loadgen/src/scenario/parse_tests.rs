//! Unit tests for scenario compilation: positions of errors, defaults,
//! variable resolution and flow selection.

use std::path::Path;
use std::time::Duration;

use super::super::{Method, Rng, Scenario, ScenarioError};
use crate::scenario::model::{LoadModel, UserPick};
use crate::scenario::template::RenderCtx;
use crate::scenario::vars::VarStore;

const LOGIN: &str = r#"
name = "t"

[[steps]]
method = "POST"
path = "/auth/login"
body = { username = "{user}", password = "{password}" }
capture = { token = "token" }

[[steps]]
method = "GET"
path = "/auth/validate"
headers = { Authorization = "Bearer {token}" }
repeat = 3
think_time = "100ms"
"#;

fn parse(src: &str) -> Result<Scenario, ScenarioError> {
    Scenario::parse(src, Path::new("s.toml"))
}

/// The error's `(line, column, message)`.
fn err(src: &str) -> (usize, usize, String) {
    match parse(src).expect_err("should not parse") {
        ScenarioError::Invalid {
            line,
            column,
            message,
            ..
        } => (line, column, message),
        other => panic!("unexpected {other}"),
    }
}

fn assert_err(src: &str, line: usize, column: usize, needle: &str) {
    let (l, c, m) = err(src);
    assert_eq!((l, c), (line, column), "message: {m}");
    assert!(m.contains(needle), "`{m}` lacks `{needle}`");
}

#[test]
fn minimal_scenario_gets_defaults() {
    let s = parse(LOGIN).unwrap();
    assert_eq!(s.name, "t");
    assert_eq!(s.defaults.users, 10);
    assert_eq!(s.defaults.duration, Duration::from_secs(60));
    assert_eq!(s.defaults.ramp_up, Duration::ZERO);
    assert_eq!(s.defaults.model, LoadModel::Closed);
    assert_eq!(s.users.count, 16);
    assert_eq!(s.users.pick, UserPick::PerVu);
    assert!(s.thresholds.is_empty());
    assert_eq!(s.flows.len(), 1);
    let f = &s.flows[0];
    assert_eq!((f.name.as_str(), f.weight), ("main", 1));
    let [login, validate] = &f.steps[..] else {
        panic!("two steps")
    };
    assert_eq!((login.name.as_str(), login.method), ("login", Method::Post));
    assert!(
        login.expect.contains(200) && login.expect.contains(204) && !login.expect.contains(401)
    );
    assert!(
        matches!(&login.captures[0].source, crate::scenario::capture::Source::Json(p) if p == "/token")
    );
    assert!(!login.uses_vars());
    assert_eq!((validate.name.as_str(), validate.repeat), ("validate", 3));
    assert_eq!(validate.think_time, Duration::from_millis(100));
    assert!(validate.uses_vars());
    assert_eq!(validate.reauth, Some(0));
    assert_eq!(validate.reauth_on(401), Some(0));
    assert_eq!(validate.reauth_on(503), None);
    assert_eq!(s.vars, vec!["token".to_string()]);
}

#[test]
fn renders_a_full_step() {
    let s = parse(LOGIN).unwrap();
    let mut vars = VarStore::new(s.vars.len());
    let rng = Rng::for_vu(7, 3);
    let idx = s.users.pick_index(3, &rng);
    let render = |t: &crate::scenario::template::Template, vars: &VarStore, user: &[u8]| {
        let ctx = RenderCtx {
            vu: 3,
            iter: 0,
            user_index: idx,
            user,
            password: b"",
            vars,
            rng: &rng,
            host: b"127.0.0.1:8443",
        };
        let mut out = Vec::new();
        t.render(&ctx, &mut out);
        out
    };
    let user = render(&s.users.username, &vars, b"");
    let password = render(&s.users.password, &vars, b"");
    assert_eq!(
        (&user[..], &password[..]),
        (&b"user-3"[..], &b"clw-load-test"[..])
    );
    let login = &s.flows[0].steps[0];
    let ctx = RenderCtx {
        vu: 3,
        iter: 0,
        user_index: idx,
        user: &user,
        password: &password,
        vars: &vars,
        rng: &rng,
        host: b"127.0.0.1:8443",
    };
    let mut body = Vec::new();
    login
        .body
        .as_ref()
        .unwrap()
        .template
        .render(&ctx, &mut body);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"username": "user-3", "password": "clw-load-test"})
    );
    crate::scenario::capture_into(
        &login.captures,
        &crate::scenario::capture::BodyOnly(br#"{"token":"t0k","expires_in":5}"#),
        &mut vars,
    )
    .unwrap();
    let (_, auth) = &s.flows[0].steps[1].headers[0];
    assert_eq!(render(auth, &vars, &user), b"Bearer t0k");
}

#[test]
fn load_users_and_thresholds_sections() {
    let s = parse(&format!(
        "{LOGIN}\n[load]\nusers = 100\nduration = \"5m\"\nramp_up = 10\nmodel = \"open\"\narrival_rate = 250\n\
         [users]\ncount = 10000\nusername = \"acct{{index}}\"\npick = \"random\"\n\
         [thresholds]\npeak_rss_percent = 80\np99_ms = 50\nerror_rate = 0.01\nmin_throughput_rps = 100\n"
    ))
    .unwrap();
    assert_eq!(s.defaults.users, 100);
    assert_eq!(s.defaults.duration, Duration::from_secs(300));
    assert_eq!(s.defaults.ramp_up, Duration::from_secs(10));
    assert_eq!(
        s.defaults.model,
        LoadModel::Open {
            arrival_rate: 250.0
        }
    );
    assert_eq!((s.users.count, s.users.pick), (10000, UserPick::Random));
    // The old NAME = LIMIT form: a ceiling, a floor for min_throughput_rps
    // (a table's keys come sorted).
    let t: Vec<String> = s.thresholds.iter().map(|t| t.to_string()).collect();
    assert_eq!(
        t,
        [
            "error_rate <= 0.01",
            "throughput_rps >= 100",
            "p99_ms <= 50",
            "peak_rss_percent <= 80"
        ]
    );
    use clw_run::threshold::Actual;
    assert_eq!(s.thresholds[3].passes(&Actual::Number(80.0)), Some(true));
    assert_eq!(s.thresholds[3].passes(&Actual::Number(80.1)), Some(false));
    assert_eq!(s.thresholds[1].passes(&Actual::Number(99.0)), Some(false));
}

#[test]
fn threshold_expressions_in_every_form() {
    let s = parse(&format!(
        "{LOGIN}[thresholds]\npeak_rss_percent = \"< 80\"\nverdict = \"!= leak\"\n\
         error_rate = [\"< 1%\", \">= 0\"]\n\"login.p99_ms\" = \"< 80\"\npeak_allocated_bytes = \"< 200Mi\"\n\
         [thresholds.logout]\np99_ms = \"<= 20ms\"\n"
    ))
    .unwrap();
    let t: Vec<String> = s.thresholds.iter().map(|t| t.to_string()).collect();
    assert_eq!(
        t,
        [
            "error_rate < 0.01",
            "error_rate >= 0",
            "login.p99_ms < 80",
            "logout.p99_ms <= 20",
            "peak_allocated_bytes < 209715200",
            "peak_rss_percent < 80",
            "verdict != leak"
        ]
    );
}

#[test]
fn a_bad_threshold_points_at_the_fault_in_the_file() {
    // Line 17 is the first line after LOGIN's 16; the value starts at
    // column 8 (`p99_ms = "< fast"`): the quote, then `< `.
    assert_err(
        &format!("{LOGIN}[thresholds]\np99_ms = \"< fast\"\n"),
        17,
        13,
        "expected a number",
    );
    assert_err(
        &format!("{LOGIN}[thresholds]\np99 = \"< 5\"\n"),
        17,
        7,
        "unknown metric `p99`",
    );
    assert_err(
        &format!("{LOGIN}[thresholds]\nerror_rate = \"< 1Mi\"\n"),
        17,
        18,
        "fraction",
    );
    assert_err(
        &format!("{LOGIN}[thresholds]\nverdict = true\n"),
        17,
        11,
        "must be a number (a ceiling) or a condition",
    );
}

#[test]
fn unknown_keys_point_at_the_key() {
    assert_err(
        &LOGIN.replace("repeat = 3", "repaet = 3"),
        14,
        1,
        "unknown field `repaet`, expected one of",
    );
    assert_err(
        &format!("{LOGIN}[thresholds]\npeak_rss = 80\n"),
        17,
        12,
        "unknown metric `peak_rss`",
    );
    assert_err(
        &format!("bogus = 1\n{LOGIN}"),
        1,
        1,
        "unknown field `bogus`",
    );
}

#[test]
fn bad_values_point_at_the_value() {
    assert_err(
        &LOGIN.replace("\"GET\"", "\"FETCH\""),
        11,
        10,
        "unknown variant `FETCH`",
    );
    assert_err(
        &LOGIN.replace("\"100ms\"", "\"soon\""),
        15,
        14,
        "invalid duration",
    );
    assert_err(
        &LOGIN.replace("repeat = 3", "repeat = 0"),
        14,
        10,
        "at least 1",
    );
    assert_err(
        &LOGIN.replace("repeat = 3", "expect = \"6xx\""),
        14,
        10,
        "invalid status",
    );
    assert_err(
        &LOGIN.replace("repeat = 3", "expect = [200, 99]"),
        14,
        16,
        "out of range",
    );
    assert_err(
        &format!("{LOGIN}[load]\nmodel = \"open\"\n"),
        17,
        9,
        "needs `arrival_rate`",
    );
    assert_err(
        &format!("{LOGIN}[load]\narrival_rate = 5\n"),
        17,
        16,
        "only to model = \"open\"",
    );
    assert_err(
        &LOGIN.replace("\"/auth/validate\"", "\"auth/validate\""),
        12,
        8,
        "must start with `/`",
    );
    assert_err(
        &LOGIN.replace("name = \"t\"", "name = \"a b\""),
        2,
        8,
        "`name` must be",
    );
}

#[test]
fn bad_templates_point_into_the_string() {
    // `Bearer {nope}`: column of `{`+1 inside the header string.
    assert_err(
        &LOGIN.replace("{token}\"", "{nope}\""),
        13,
        38,
        "undefined variable `nope`",
    );
    assert_err(
        &LOGIN.replace("/auth/validate", "/auth/{pad:x}"),
        12,
        20,
        "expected a byte count",
    );
    assert_err(
        &LOGIN.replace("/auth/validate", "/auth/{vu"),
        12,
        15,
        "unclosed `{`",
    );
    // Inside a body string.
    assert_err(
        &LOGIN.replace("password = \"{password}\"", "password = \"{pad:9x}\""),
        7,
        48,
        "expected a byte count",
    );
}

#[test]
fn variables_must_be_captured_earlier_in_the_same_flow() {
    let later = r#"
name = "t"
[[steps]]
method = "GET"
path = "/a/{tok}"
[[steps]]
method = "GET"
path = "/b"
capture = { tok = "token" }
"#;
    assert_err(later, 5, 13, "captured only by a later step (step 2)");
    let same =
        "name = \"t\"\n[[steps]]\nmethod = \"GET\"\npath = \"/{tok}\"\ncapture = { tok = \"t\" }\n";
    assert_err(same, 4, 11, "captured by this same step");
    let other_flow = r#"
name = "t"
[[flows]]
name = "a"
steps = [{ method = "POST", path = "/login", capture = { tok = "token" } }]
[[flows]]
name = "b"
steps = [{ method = "GET", path = "/x", headers = { A = "{tok}" } }]
"#;
    assert_err(other_flow, 8, 59, "no earlier step in flow `b` captures it");
    let builtin =
        "name = \"t\"\n[[steps]]\nmethod = \"GET\"\npath = \"/\"\ncapture = { vu = \"x\" }\n";
    assert_err(builtin, 5, 18, "cannot capture into `vu`");
}

#[test]
fn structure_errors() {
    assert_err("name = \"t\"\n", 1, 1, "expected [[steps]] or [[flows]]");
    let both = format!("{LOGIN}[[flows]]\nname = \"x\"\nsteps = []\n");
    assert!(err(&both).2.contains("not both"));
    assert_err(
        "name = \"t\"\n[[flows]]\nname = \"x\"\nsteps = []\n",
        4,
        9,
        "has no steps",
    );
    assert_err(
        "name = \"t\"\n[[flows]]\nname = \"x\"\nweight = 0\nsteps = [{ method = \"GET\", path = \"/\" }]\n",
        4,
        10,
        "`weight` must be at least 1",
    );
    assert_err(
        &LOGIN.replace("headers = {", "headers = { Host = \"x\", "),
        13,
        20,
        "set by clw-cli",
    );
}

#[test]
fn weighted_flow_choice_follows_weights_deterministically() {
    let src = r#"
name = "w"
[[flows]]
name = "heavy"
weight = 3
steps = [{ method = "GET", path = "/ready" }]
[[flows]]
name = "light"
weight = 1
steps = [{ method = "GET", path = "/health" }]
"#;
    let s = parse(src).unwrap();
    let count = |seed| {
        let rng = Rng::for_vu(seed, 0);
        (0..40_000)
            .filter(|_| s.flows[s.pick_flow_index(&rng)].name == "heavy")
            .count()
    };
    let heavy = count(1);
    assert!(
        (29_000..31_000).contains(&heavy),
        "3:1 weights gave {heavy}/40000 heavy"
    );
    assert_eq!(heavy, count(1), "the same seed picks the same flows");
    assert_ne!(heavy, count(2), "another seed gives another sequence");
}

#[test]
fn io_error_names_the_file() {
    let e = Scenario::load(Path::new("/nonexistent/x.toml")).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/nonexistent/x.toml: no such scenario file"),
        "{e}"
    );
    let dir = tempfile::tempdir().unwrap();
    let e = Scenario::load(dir.path()).unwrap_err();
    assert!(
        e.to_string()
            .starts_with(&format!("{}: cannot read scenario", dir.path().display())),
        "{e}"
    );
}

#[test]
fn table_forms_work_and_keep_positions() {
    let src = r#"
name = "t"
[[flows]]
name = "f"
[[flows.steps]]
method = "POST"
path = "/auth/login"
capture = { token = "token" }
[flows.steps.body]
username = "{user}"
claims = { blob = "{pad:2}" }
[[flows.steps]]
method = "GET"
path = "/auth/validate"
[flows.steps.headers]
Authorization = "Bearer {token}"
"#;
    let s = parse(src).unwrap();
    let steps = &s.flows[0].steps;
    assert_eq!(steps.len(), 2);
    assert!(steps[0].body.is_some());
    assert_eq!(steps[1].reauth, Some(0));
    assert_err(
        &src.replace("{pad:2}", "{pad:z}"),
        11,
        25,
        "expected a byte count",
    );
    assert_err(
        &src.replace("Bearer {token}", "Bearer {tok}"),
        16,
        26,
        "undefined variable `tok`",
    );
}

#[test]
fn session_and_form_mistakes_point_at_the_value() {
    let step = |extra: &str| {
        format!("name = \"t\"\n[[steps]]\nmethod = \"POST\"\npath = \"/x\"\n{extra}\n")
    };
    for (extra, line, needle) in [
        ("body = { a = 1 }\nform = { b = \"2\" }", 6, "a step has one body"),
        ("raw = \"x\"\nform = { b = \"2\" }", 6, "a step has one body"),
        ("content_type = \"text/plain\"", 5, "`content_type` without a body"),
        ("form = { a = [1] }", 5, "form field `a` must be a string, number or boolean"),
        ("form = { a = \"{nope}\" }", 5, "undefined variable `nope`"),
        ("headers = { Cookie = \"a=b\" }", 5, "the cookie jar's"),
        (
            "basic_auth = { username = \"u\", password = \"p\" }\nheaders = { Authorization = \"x\" }",
            5,
            "both `basic_auth` and an `Authorization` header",
        ),
        ("basic_auth = { username = \"u\" }", 5, "missing field `password`"),
        ("capture = { a = { header = \"X\", cookie = \"y\" } }", 5, "`header` or `cookie`, not both"),
        ("capture = { a = { regex = \"(\" } }", 5, "capture regex does not compile"),
        ("capture = { a = { query = \"x\" } }", 5, "unknown capture key `query`"),
        ("capture = { a = 5 }", 5, "a capture is a JSON field name"),
        ("capture = { host = \"x\" }", 5, "cannot capture into `host`"),
        ("follow_redirects = -1", 5, "invalid value"),
    ] {
        let (l, _, message) = err(&step(extra));
        assert_eq!(l, line, "{extra}: {message}");
        assert!(message.contains(needle), "{extra}: {message}");
    }
    let (l, _, message) = err("name = \"t\"\n[http]\ncookies = false\nkeep_cookies = true\n[[steps]]\nmethod = \"GET\"\npath = \"/\"\n");
    assert_eq!(l, 4);
    assert!(
        message.contains("`keep_cookies` needs the cookie jar"),
        "{message}"
    );
    let (l, _, message) = err("name = \"t\"\n[users]\nfile = \"no-such.csv\"\n[[steps]]\nmethod = \"GET\"\npath = \"/\"\n");
    assert_eq!(l, 3);
    assert!(
        message.contains("cannot read users file no-such.csv"),
        "{message}"
    );
}

#[test]
fn a_users_file_sets_the_pool_and_its_columns() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("u.csv"),
        "username,password,tenant\nalice,pw-a,blue\nbob,pw-b,green\n",
    )
    .unwrap();
    let path = dir.path().join("s.toml");
    let src = "name = \"t\"\n[users]\nfile = \"u.csv\"\n[[steps]]\nmethod = \"GET\"\npath = \"/{tenant}/{user}\"\n";
    let s = Scenario::parse(src, &path).unwrap();
    assert_eq!(s.users.count, 2);
    let table = s.users.table.as_ref().unwrap();
    let mut vars = VarStore::new(s.vars.len());
    table.set_row(1, &mut vars);
    let rng = Rng::for_vu(0, 0);
    let ctx = |user: &'static [u8]| RenderCtx {
        vu: 0,
        iter: 0,
        user_index: 1,
        user,
        password: b"",
        vars: &vars,
        rng: &rng,
        host: b"h:1",
    };
    let mut user = Vec::new();
    s.users.username.render(&ctx(b""), &mut user);
    assert_eq!(user, b"bob");
    let mut password = Vec::new();
    s.users.password.render(&ctx(b""), &mut password);
    assert_eq!(password, b"pw-b");
    let mut path = Vec::new();
    s.flows[0].steps[0].path.render(&ctx(b"bob"), &mut path);
    assert_eq!(path, b"/green/bob");
    // A bad row names the file and line.
    std::fs::write(dir.path().join("u.csv"), "username,password\nalice\n").unwrap();
    match Scenario::parse(src, &path_of(&dir)) {
        Err(ScenarioError::Invalid {
            path,
            line,
            message,
            ..
        }) => {
            assert!(path.ends_with("u.csv"), "{path:?}");
            assert_eq!(line, 2, "{message}");
        }
        other => panic!("{other:?}"),
    }
}

fn path_of(dir: &tempfile::TempDir) -> std::path::PathBuf {
    dir.path().join("s.toml")
}
