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

use super::plan::Local;
use crate::load::http::{self, Conn, Response};
use crate::load::stats::{error_kind, RequestOutcome};
use crate::scenario::LoadModel;
use crate::scenario::{capture_into, RenderCtx, Rng, Step, VarStore};

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
    vu: u64,
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
    scratch: String,
}

impl VirtualUser {
    pub(crate) fn new(vu: u64, local: Rc<Local>) -> VirtualUser {
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
            scratch: String::new(),
            local,
        }
    }

    pub(crate) async fn run(mut self) {
        let plan = self.local.plan.clone();
        let users = u64::from(plan.users.max(1));
        match (&plan.stages, plan.model) {
            (Some(stages), LoadModel::Closed) => {
                let windows = stages.windows(u32::try_from(self.vu).unwrap_or(u32::MAX));
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
        let mut k = self.vu;
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
        self.render_credentials();
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
        };
        users.username.render(&ctx, &mut self.user);
        users.password.render(&ctx, &mut self.password);
    }

    /// Render `flows[flow].steps[step]`'s request into the reused buffer.
    fn render(&mut self, step: &Step) {
        let plan = &self.local.plan;
        let ctx = RenderCtx {
            vu: self.vu,
            iter: self.iter,
            user_index: self.user_index,
            user: &self.user,
            password: &self.password,
            vars: &self.vars,
            rng: &self.rng,
        };
        let out = &mut self.request;
        out.clear();
        let method = step.method.as_str();
        http::begin_request(out, method);
        out.extend_from_slice(plan.base_path.as_bytes());
        step.path.render(&ctx, out);
        http::end_request_line(out, &plan.authority);
        for (name, value) in &step.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            value.render(&ctx, out);
            out.extend_from_slice(b"\r\n");
        }
        let body = step.body.as_ref().map(|template| {
            self.body.clear();
            template.render(&ctx, &mut self.body);
            &self.body[..]
        });
        http::finish_request(out, method, body);
    }

    /// Send one request of `flows[flow].steps[s]` and record it.
    async fn send(&mut self, flow: usize, s: usize, late: Option<Duration>) -> Sent {
        let plan = self.local.plan.clone();
        let step = &plan.scenario.flows[flow].steps[s];
        let id = plan.step_ids[flow][s];
        self.render(step);
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
        let (sent, outcome_ok) = match result {
            Err(err) => {
                local.stats.borrow_mut().record(
                    id,
                    us,
                    corrected,
                    RequestOutcome::Transport { kind: err.as_str() },
                );
                (Sent::Failed, false)
            }
            Ok(()) => {
                let status = self.resp.status;
                if step.expect.contains(status) {
                    match capture_into(&step.captures, &self.resp.body, &mut self.vars) {
                        Ok(()) => {
                            local.stats.borrow_mut().record(
                                id,
                                us,
                                corrected,
                                RequestOutcome::Ok { status },
                            );
                            (Sent::Ok, true)
                        }
                        Err(_) => {
                            let outcome = RequestOutcome::BadStatus {
                                status,
                                kind: "capture-failed",
                            };
                            local.stats.borrow_mut().record(id, us, corrected, outcome);
                            (Sent::Failed, false)
                        }
                    }
                } else {
                    let kind = error_kind(status, &self.resp.body, &mut self.scratch);
                    local.stats.borrow_mut().record(
                        id,
                        us,
                        corrected,
                        RequestOutcome::BadStatus { status, kind },
                    );
                    match step.reauth_on(status) {
                        Some(login) => (Sent::Reauth(login), false),
                        None => (Sent::Failed, false),
                    }
                }
            }
        };
        if !outcome_ok {
            local.failed.set(local.failed.get() + 1);
        }
        sent
    }
}
