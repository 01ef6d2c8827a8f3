//! One virtual user: a keep-alive connection running scenario iterations.
//!
//! Per iteration it picks a flow and a pool user, then sends each step's
//! request `repeat` times, capturing values (the token) from expected
//! responses and pausing `think_time` after each. A 401 on a step that sends
//! a captured token re-runs the step that captured it (the login) and
//! retries once, as a real client does. If a step whose captures later
//! steps need fails, the rest of the iteration is skipped.
//!
//! Latency is measured from just before the request's first byte is written
//! (connect included when a new connection is needed) to the last byte of
//! the response. In the open model the corrected figure adds how late the
//! iteration started compared with its schedule, so a stalled server shows
//! up in the percentiles instead of silently thinning the samples.

use std::rc::Rc;
use std::time::Duration;

use tokio::time::Instant;

use base64::Engine as _;

use super::jar::{self, Jar};
use super::plan::Local;
use super::redirect::{self, Hop};
use crate::load::http::{self, Conn, Response};
use crate::load::stats::{error_kind, RequestOutcome};
use crate::scenario::LoadModel;
use crate::scenario::{capture_into, RenderCtx, Reply, Rng, Step, VarStore};

/// What happened to one request, for the iteration's control flow.
enum Sent {
    /// The step's expected status (and captures succeeded).
    Ok,
    /// The server refused the token: re-run step `usize`, then retry.
    Reauth(usize),
    /// Any other failure.
    Failed,
}

pub(crate) struct VirtualUser {
    vu: u32,
    local: Rc<Local>,
    conn: Conn,
    resp: Response,
    rng: Rng,
    vars: VarStore,
    iter: u64,
    user_index: u64,
    user: Vec<u8>,
    password: Vec<u8>,
    request: Vec<u8>,
    body: Vec<u8>,
    /// `user:password` of `basic_auth`, before base64.
    credentials: Vec<u8>,
    /// Path and query of the request last rendered, for the jar and for
    /// resolving a relative `Location`.
    path: Vec<u8>,
    /// `[http] cookies`: the user's cookie jar.
    jar: Option<Jar>,
    scratch: String,
}

/// A response as captures read it: headers and body from the response,
/// cookies from the jar (or the response's own `Set-Cookie` without one).
struct Answer<'a> {
    resp: &'a Response,
    jar: Option<&'a Jar>,
}

impl Reply for Answer<'_> {
    fn body(&self) -> &[u8] {
        &self.resp.body
    }
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.resp.header(name)
    }
    fn cookie(&self, name: &str) -> Option<Vec<u8>> {
        match self.jar {
            Some(jar) => jar.get(name).map(|v| v.as_bytes().to_vec()),
            None => jar::set_by(self.resp, name),
        }
    }
}

impl VirtualUser {
    pub(crate) fn new(vu: u32, local: Rc<Local>) -> VirtualUser {
        let plan = &local.plan;
        VirtualUser {
            vu,
            conn: Conn::new(plan.addr).with_tls(plan.tls.clone()),
            resp: Response::default(),
            rng: Rng::for_vu(plan.seed, vu),
            vars: VarStore::new(plan.scenario.vars.len()),
            iter: 0,
            user_index: 0,
            user: Vec::new(),
            password: Vec::new(),
            request: Vec::with_capacity(512),
            body: Vec::new(),
            credentials: Vec::new(),
            path: Vec::new(),
            jar: plan
                .scenario
                .http
                .cookies
                .then(|| Jar::new(plan.origin.scheme() == "https", &plan.authority)),
            scratch: String::new(),
            local,
        }
    }

    pub(crate) async fn run(mut self) {
        let plan = self.local.plan.clone();
        let users = u64::from(plan.users.max(1));
        match (&plan.stages, plan.model) {
            (Some(stages), LoadModel::Closed) => {
                let windows = stages.windows(self.vu);
                self.run_windows(&windows).await;
            }
            (Some(_), LoadModel::Open { .. }) => {
                // The rate ramps, not the pool: every user serves from 0.
                let _running = plan.counters.user_running();
                self.set_active(true);
                self.run_open(users, self.local.t0).await;
                self.set_active(false);
            }
            (None, model) => {
                // Ramp-up: user i starts at i/N of the ramp-up time.
                let start = self.local.t0 + plan.ramp_up.mul_f64(self.vu as f64 / users as f64);
                if !self.local.sleep_until(start).await {
                    return;
                }
                let _running = plan.counters.user_running();
                self.set_active(true);
                match model {
                    LoadModel::Closed => {
                        while !self.local.over() {
                            self.iteration(Duration::ZERO).await;
                        }
                    }
                    LoadModel::Open { .. } => self.run_open(users, start).await,
                }
                self.set_active(false);
            }
        }
        self.local
            .connects
            .set(self.local.connects.get() + self.conn.connects);
    }

    /// Count this user in (or out of) its thread's running users.
    fn set_active(&self, running: bool) {
        let active = &self.local.active;
        active.set(if running {
            active.get() + 1
        } else {
            active.get().saturating_sub(1)
        });
    }

    /// Closed model with stages: run iterations within each of this user's
    /// windows (seconds since load start, from `Stages::windows`). At a
    /// window's end the user finishes its iteration, closes its connection
    /// (a user who leaves takes its connection along) and waits for the
    /// next window, if any.
    async fn run_windows(&mut self, windows: &[(f64, f64)]) {
        let t0 = self.local.t0;
        let plan = self.local.plan.clone();
        for &(start, end) in windows {
            if !self
                .local
                .sleep_until(t0 + Duration::from_secs_f64(start))
                .await
            {
                return;
            }
            let end = t0 + Duration::from_secs_f64(end);
            let running = plan.counters.user_running();
            self.set_active(true);
            while !self.local.over() && Instant::now() < end {
                self.iteration(Duration::ZERO).await;
            }
            self.set_active(false);
            drop(running);
            self.conn.close();
        }
    }

    /// Open model, wrk2-style: user `i` owns iterations `i, i+N, i+2N...`
    /// of the global schedule: iteration `k` is due `k / rate` seconds after
    /// load start, or with stages when the arrivals reach `k`
    /// (`Stages::arrival_s`). A late user runs its overdue iterations back
    /// to back, each measured from its scheduled time; one overdue by more
    /// than the request timeout is dropped and counted instead, so a dead
    /// server cannot queue up work.
    async fn run_open(&mut self, users: u64, start: Instant) {
        let plan = self.local.plan.clone();
        let t0 = self.local.t0;
        let rate = match plan.model {
            LoadModel::Open { arrival_rate } => arrival_rate,
            LoadModel::Closed => return,
        };
        let due = |k: u64| -> Option<Instant> {
            let s = match &plan.stages {
                Some(stages) => stages.arrival_s(k)?,
                None => k as f64 / rate,
            };
            Some(t0 + Duration::from_secs_f64(s))
        };
        let timeout = plan.timeout;
        // First slot at or after this user's ramp-up start.
        let mut k = u64::from(self.vu);
        while due(k).is_some_and(|slot| slot < start) {
            k += users;
        }
        loop {
            let Some(slot) = due(k) else {
                return;
            };
            if slot >= self.local.deadline.get() {
                return;
            }
            k += users;
            let now = Instant::now();
            if slot > now {
                if !self.local.sleep_until(slot).await {
                    return;
                }
            } else if now - slot > timeout {
                self.local.stats.borrow_mut().dropped_iterations += 1;
                continue;
            }
            if self.local.over() {
                return;
            }
            let late = Instant::now().saturating_duration_since(slot);
            self.iteration(late).await;
        }
    }

    /// One iteration; `late` is how far behind schedule it started (open
    /// model; zero in the closed model).
    async fn iteration(&mut self, late: Duration) {
        let plan = self.local.plan.clone();
        let scenario = &plan.scenario;
        let flow_index = scenario.pick_flow_index(&self.rng);
        let flow = &scenario.flows[flow_index];
        self.user_index = scenario.users.pick_index(self.vu, &self.rng);
        if let Some(table) = &scenario.users.table {
            table.set_row(self.user_index, &mut self.vars);
        }
        self.render_credentials();
        if let Some(jar) = &mut self.jar {
            if !scenario.http.keep_cookies {
                // Each iteration is a new browser session.
                jar.clear();
            }
        }
        let corrected = matches!(plan.model, LoadModel::Open { .. }).then_some(late);
        'steps: for (s, step) in flow.steps.iter().enumerate() {
            for _ in 0..step.repeat.max(1) {
                if self.local.over() {
                    break 'steps;
                }
                let mut sent = self.send(flow_index, s, corrected).await;
                if let Sent::Reauth(login) = sent {
                    if !matches!(self.send(flow_index, login, corrected).await, Sent::Ok)
                        || self.local.over()
                    {
                        break 'steps;
                    }
                    sent = self.send(flow_index, s, corrected).await;
                }
                if !matches!(sent, Sent::Ok) && !step.captures.is_empty() {
                    // Later steps need what this one failed to capture.
                    break 'steps;
                }
                if !step.think_time.is_zero()
                    && !self
                        .local
                        .sleep_until(Instant::now() + step.think_time)
                        .await
                {
                    break 'steps;
                }
            }
        }
        self.iter += 1;
    }

    fn render_credentials(&mut self) {
        let users = &self.local.plan.scenario.users;
        self.user.clear();
        self.password.clear();
        let ctx = RenderCtx {
            vu: self.vu,
            iter: self.iter,
            user_index: self.user_index,
            user: b"",
            password: b"",
            vars: &self.vars,
            rng: &self.rng,
            host: self.local.plan.authority.as_bytes(),
        };
        users.username.render(&ctx, &mut self.user);
        users.password.render(&ctx, &mut self.password);
    }

    /// Render the request of `step` into the reused buffer: the step's
    /// own, or the redirect `hop` it led to.
    fn render(&mut self, step: &Step, hop: Option<&Hop>) {
        let plan = &self.local.plan;
        let ctx = RenderCtx {
            vu: self.vu,
            iter: self.iter,
            user_index: self.user_index,
            user: &self.user,
            password: &self.password,
            vars: &self.vars,
            rng: &self.rng,
            host: plan.authority.as_bytes(),
        };
        self.path.clear();
        let method = match hop {
            Some(h) => {
                self.path.extend_from_slice(&h.path);
                h.method
            }
            None => {
                if step.path_from_var {
                    // A captured `Location` (`path = "{next}"`): as the
                    // server gave it; an absolute URL on the target's
                    // origin is cut to its path and query.
                    step.path.render(&ctx, &mut self.path);
                    if self.path.starts_with(b"http") {
                        if let Some(rest) = same_origin_path(&plan.origin, &self.path) {
                            self.path = rest;
                        }
                    }
                } else {
                    self.path.extend_from_slice(plan.base_path.as_bytes());
                    step.path.render(&ctx, &mut self.path);
                }
                step.method.as_str()
            }
        };
        let out = &mut self.request;
        out.clear();
        http::begin_request(out, method);
        out.extend_from_slice(&self.path);
        let other_origin = hop.and_then(Hop::authority);
        http::end_request_line(out, other_origin.as_deref().unwrap_or(&plan.authority));
        let body = step
            .body
            .as_ref()
            .filter(|_| hop.is_none_or(|h| h.keep_body));
        for (name, value) in &step.headers {
            if body.is_none() && name.eq_ignore_ascii_case("content-type") {
                continue;
            }
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            value.render(&ctx, out);
            out.extend_from_slice(b"\r\n");
        }
        if let Some(auth) = step.basic_auth.as_ref().filter(|_| other_origin.is_none()) {
            // RFC 7617: base64 of `user:password`.
            self.credentials.clear();
            auth.username.render(&ctx, &mut self.credentials);
            self.credentials.push(b':');
            auth.password.render(&ctx, &mut self.credentials);
            out.extend_from_slice(b"Authorization: Basic ");
            let at = out.len();
            let n = base64::encoded_len(self.credentials.len(), true).unwrap_or(0);
            out.resize(at + n, 0);
            let written = base64::engine::general_purpose::STANDARD
                .encode_slice(&self.credentials, &mut out[at..])
                .unwrap_or(0);
            out.truncate(at + written);
            out.extend_from_slice(b"\r\n");
        }
        if let Some(jar) = &mut self.jar {
            if !jar.is_empty() {
                jar.at(hop.and_then(|h| h.origin.as_ref()), &self.path);
                jar.write_header(out);
            }
        }
        let body = body.map(|b| {
            self.body.clear();
            b.template.render(&ctx, &mut self.body);
            (&self.body[..], b.content_type.as_deref().map(str::as_bytes))
        });
        match body {
            Some((bytes, ct)) => http::finish_request_as(out, method, Some(bytes), ct),
            None => http::finish_request_as(out, method, None, None),
        }
    }

    /// Send one request of `flows[flow].steps[s]`, following its
    /// redirects, and record each (hops count as the step's requests).
    async fn send(&mut self, flow: usize, s: usize, late: Option<Duration>) -> Sent {
        let plan = self.local.plan.clone();
        let step = &plan.scenario.flows[flow].steps[s];
        let id = plan.step_ids[flow][s];
        let mut hop: Option<Hop> = None;
        let mut hops = 0;
        loop {
            self.render(step, hop.as_ref());
            let started = Instant::now();
            let result = self
                .conn
                .send(&self.request, &mut self.resp, plan.timeout)
                .await;
            let latency = started.elapsed();
            let us = latency.as_micros() as u64;
            let corrected = late.map(|late| (latency + late).as_micros() as u64);
            let local = &self.local;
            if let Some(handshake) = self.conn.take_handshake() {
                local.stats.borrow_mut().record_handshake(handshake);
            }
            local.completed.set(local.completed.get() + 1);
            let record = |outcome| {
                local.stats.borrow_mut().record(id, us, corrected, outcome);
                if !matches!(outcome, RequestOutcome::Ok { .. }) {
                    local.failed.set(local.failed.get() + 1);
                }
            };
            if let Err(err) = result {
                record(RequestOutcome::Transport { kind: err.as_str() });
                return Sent::Failed;
            }
            let status = self.resp.status;
            if let Some(jar) = &mut self.jar {
                jar.store(
                    &self.resp,
                    hop.as_ref().and_then(|h| h.origin.as_ref()),
                    &self.path,
                );
            }
            if redirect::is_redirect(status) && hops < step.follow_redirects {
                let method = hop.as_ref().map_or(step.method.as_str(), |h| h.method);
                let base = hop
                    .as_ref()
                    .and_then(|h| h.origin.as_ref())
                    .unwrap_or(&plan.origin);
                match redirect::next_hop(
                    base,
                    &plan.origin,
                    &plan.also,
                    &self.path,
                    method,
                    status,
                    self.resp.header("location"),
                ) {
                    Ok(next) => {
                        record(RequestOutcome::Ok { status });
                        hop = Some(next);
                        hops += 1;
                        if self.local.over() {
                            return Sent::Failed;
                        }
                        continue;
                    }
                    Err(e) => {
                        record(RequestOutcome::BadStatus {
                            status,
                            kind: e.as_str(),
                        });
                        return Sent::Failed;
                    }
                }
            }
            if !step.expect.contains(status) {
                let kind = error_kind(status, &self.resp.body, &mut self.scratch);
                record(RequestOutcome::BadStatus { status, kind });
                return match step.reauth_on(status) {
                    Some(login) => Sent::Reauth(login),
                    None => Sent::Failed,
                };
            }
            let answer = Answer {
                resp: &self.resp,
                jar: self.jar.as_ref(),
            };
            return match capture_into(&step.captures, &answer, &mut self.vars) {
                Ok(()) => {
                    record(RequestOutcome::Ok { status });
                    Sent::Ok
                }
                Err((c, why)) => {
                    record(RequestOutcome::BadStatus {
                        status,
                        kind: "capture-failed",
                    });
                    let capture = &step.captures[c];
                    local
                        .stats
                        .borrow_mut()
                        .record_capture_miss((flow, s, c), || {
                            format!(
                                "step {}: capture {} = {}: {why}",
                                step.name, capture.name, capture.selector
                            )
                        });
                    Sent::Failed
                }
            };
        }
    }
}

/// The path and query of `url` when it is an absolute URL on `origin`'s
/// origin (a captured `Location` header), else `None`.
fn same_origin_path(origin: &url::Url, url: &[u8]) -> Option<Vec<u8>> {
    let url = url::Url::parse(std::str::from_utf8(url).ok()?).ok()?;
    (url.origin() == origin.origin()).then(|| redirect::path_and_query(&url))
}
