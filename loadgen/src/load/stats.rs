//! Latency histograms and outcome counts.
//!
//! Each engine worker thread owns one [`IntervalStats`] that its virtual users
//! record into without locks; once per second the worker hands it to the
//! collector and starts a fresh one. Nothing is stored per request: memory
//! depends on the number of steps and distinct error kinds, never on the
//! run's length. Histograms auto-resize, so a run whose latencies stay in
//! milliseconds keeps them a few kilobytes each.

use std::collections::BTreeMap;
use std::sync::Arc;

use clw_run::Percentiles;
use hdrhistogram::Histogram;

use super::death::{AfterDeath, DeathClock};

/// Significant digits kept by every histogram (0.1% value precision).
pub(crate) const SIGFIGS: u8 = 3;

/// Distinct error kinds counted by name; beyond this many, the rest are
/// counted as `other` so a server inventing codes cannot grow our memory.
const MAX_ERROR_KINDS: usize = 64;

/// A fresh, empty, auto-resizing microsecond histogram.
pub(crate) fn new_histogram() -> Histogram<u64> {
    Histogram::new(SIGFIGS).expect("3 significant digits is valid")
}

/// Record `us` into an auto-resizing histogram (which grows as needed;
/// `saturating_record` would clamp to its current, tiny, bound instead).
fn record(h: &mut Histogram<u64>, us: u64) {
    // Values beyond the histogram's absolute range are clamped, not lost.
    if h.record(us.max(1)).is_err() {
        h.saturating_record(us);
    }
}

/// One step's figures over some span of time.
#[derive(Debug, Clone)]
pub(crate) struct StepStats {
    /// Latency from when the request was sent, in microseconds.
    pub(crate) latency: Histogram<u64>,
    /// Latency from when the request should have been sent (open model).
    pub(crate) corrected: Histogram<u64>,
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    /// Requests by response status; 0 counts those that got no response
    /// (a transport error). For the live metrics' `code` label.
    pub(crate) by_status: BTreeMap<u16, u64>,
    /// Errors by [`ErrorKind`], a fixed set, for the live metrics' `kind`
    /// label (the run-wide `by_error` keeps the server's own words).
    pub(crate) by_kind: BTreeMap<ErrorKind, u64>,
}

impl StepStats {
    pub(crate) fn new() -> StepStats {
        StepStats {
            latency: new_histogram(),
            corrected: new_histogram(),
            requests: 0,
            errors: 0,
            by_status: BTreeMap::new(),
            by_kind: BTreeMap::new(),
        }
    }

    pub(crate) fn add(&mut self, other: &StepStats) {
        self.latency
            .add(&other.latency)
            .expect("auto-resizing histograms always merge");
        self.corrected
            .add(&other.corrected)
            .expect("auto-resizing histograms always merge");
        self.requests += other.requests;
        self.errors += other.errors;
        for (status, n) in &other.by_status {
            *self.by_status.entry(*status).or_default() += n;
        }
        for (kind, n) in &other.by_kind {
            *self.by_kind.entry(*kind).or_default() += n;
        }
    }
}

/// What went wrong with a request, folded into a fixed set so a server
/// inventing error codes cannot grow the live metrics' label values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum ErrorKind {
    /// A transport error's name, `capture-failed`, or one of clw-auth's
    /// codes ([`SERVER_CODES`]).
    Named(&'static str),
    /// An unexpected status whose body carried no known code: `http-<status>`.
    Http(u16),
    /// A code clw-cli does not know.
    Other,
}

/// The kinds the engine itself gives a response it refuses: a capture that
/// found nothing, a redirect it could not follow.
pub(crate) const ENGINE_KINDS: [&str; 4] = [
    "capture-failed",
    "redirect-without-location",
    "redirect-bad-location",
    "redirect-off-origin",
];

/// The error codes clw-auth answers with (auth-server/src/error.rs, checked
/// by a test), the ones a load test of it can meet.
pub(crate) const SERVER_CODES: [&str; 17] = [
    "clw-auth-invalid-credentials",
    "clw-session-expired",
    "clw-session-evicted",
    "clw-session-unknown",
    "clw-session-overflow",
    "clw-session-too-large",
    "clw-memory-pressure",
    "clw-auth-503",
    "clw-auth-timeout",
    "clw-auth-throttled",
    "clw-bad-request",
    "clw-payload-too-large",
    "clw-not-found",
    "clw-method-not-allowed",
    "clw-forbidden",
    "clw-heap-profile-off",
    "clw-heap-profile-failed",
];

impl ErrorKind {
    /// Fold the `kind` of a response with an unexpected status (see
    /// [`error_kind`]).
    fn of_response(status: u16, kind: &str) -> ErrorKind {
        if let Some(engine) = ENGINE_KINDS.iter().find(|k| **k == kind) {
            return ErrorKind::Named(engine);
        }
        if let Some(known) = SERVER_CODES.iter().find(|c| **c == kind) {
            return ErrorKind::Named(known);
        }
        match kind.strip_prefix("http-") {
            Some(n) if n.parse() == Ok(status) => ErrorKind::Http(status),
            _ => ErrorKind::Other,
        }
    }
}

/// How one request ended.
#[derive(Debug, Clone, Copy)]
pub(crate) enum RequestOutcome<'a> {
    /// A response whose status the step expects.
    Ok { status: u16 },
    /// A response whose status the step does not expect; `kind` is the
    /// server's JSON `code` when it sent one, else `http-<status>`.
    BadStatus { status: u16, kind: &'a str },
    /// No response; `kind` is a [`crate::load::http::TransportError`] name.
    Transport { kind: &'static str },
}

/// Everything recorded by one worker (or merged over all workers) in one span.
/// `steps`, `by_error` and the histograms hold the requests sent while the
/// server lived; those sent after its death are in `after_death` only.
#[derive(Debug, Clone, Default)]
pub(crate) struct IntervalStats {
    /// Indexed by the scenario's step index.
    pub(crate) steps: Vec<StepStats>,
    pub(crate) by_error: BTreeMap<String, u64>,
    pub(crate) dropped_iterations: u64,
    /// TLS handshakes of the load's connections (µs); `None` until one.
    pub(crate) handshakes: Option<Histogram<u64>>,
    /// `capture-failed` requests by (flow, step, capture): how many, and
    /// the first one's reason (`step login: capture sid = cookie "session":
    /// the response has no cookie session`), for the run's error line.
    pub(crate) capture_misses: BTreeMap<(usize, usize, usize), (u64, String)>,
    /// Requests sent after the server's death, counted apart.
    pub(crate) after_death: AfterDeath,
    /// Where a worker's stats learn of the death; `None` for merged stats
    /// (and tests), which only add up what workers recorded.
    clock: Option<Arc<DeathClock>>,
}

impl IntervalStats {
    pub(crate) fn new(steps: usize) -> IntervalStats {
        IntervalStats {
            steps: (0..steps).map(|_| StepStats::new()).collect(),
            ..IntervalStats::default()
        }
    }

    /// A worker's stats: requests sent after `clock`'s death go to
    /// `after_death` instead of the server's figures.
    pub(crate) fn watching(steps: usize, clock: Arc<DeathClock>) -> IntervalStats {
        IntervalStats {
            clock: Some(clock),
            ..IntervalStats::new(steps)
        }
    }

    /// Record one request of step `step`. `corrected_us` is given in the open
    /// model only.
    pub(crate) fn record(
        &mut self,
        step: usize,
        latency_us: u64,
        corrected_us: Option<u64>,
        outcome: RequestOutcome<'_>,
    ) {
        if let Some(clock) = &self.clock {
            if matches!(outcome, RequestOutcome::Transport { kind: "connect" }) {
                clock.refused(latency_us);
            }
            if clock.sent_after_death(latency_us) {
                self.record_after_death(outcome);
                return;
            }
        }
        let s = &mut self.steps[step];
        s.requests += 1;
        record(&mut s.latency, latency_us);
        if let Some(c) = corrected_us {
            record(&mut s.corrected, c.max(latency_us));
        }
        let status = match outcome {
            RequestOutcome::Ok { status } => status,
            RequestOutcome::BadStatus { status, kind } => {
                s.errors += 1;
                *s.by_kind
                    .entry(ErrorKind::of_response(status, kind))
                    .or_default() += 1;
                self.count_error(kind);
                status
            }
            RequestOutcome::Transport { kind } => {
                s.errors += 1;
                *s.by_kind.entry(ErrorKind::Named(kind)).or_default() += 1;
                *s.by_status.entry(0).or_default() += 1;
                self.count_error(kind);
                return;
            }
        };
        *self.steps[step].by_status.entry(status).or_default() += 1;
    }

    /// Count a `capture-failed` request (already [`record`](Self::record)ed)
    /// against its capture; `reason` is called only for the first one.
    pub(crate) fn record_capture_miss(
        &mut self,
        key: (usize, usize, usize),
        reason: impl FnOnce() -> String,
    ) {
        self.capture_misses
            .entry(key)
            .or_insert_with(|| (0, reason()))
            .0 += 1;
    }

    /// `capture-failed` requests by reason, for the summary.
    pub(crate) fn capture_failures(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for (n, reason) in self.capture_misses.values() {
            *out.entry(reason.clone()).or_default() += n;
        }
        out
    }

    /// A request sent after the server's death: counted, no latency.
    fn record_after_death(&mut self, outcome: RequestOutcome<'_>) {
        let d = &mut self.after_death;
        d.requests += 1;
        let kind = match outcome {
            RequestOutcome::Ok { .. } => return,
            RequestOutcome::BadStatus { kind, .. } => kind,
            RequestOutcome::Transport { kind } => kind,
        };
        d.failed += 1;
        count_kind(&mut d.by_error, kind);
    }

    /// Record one TLS handshake that took `us`.
    pub(crate) fn record_handshake(&mut self, us: u64) {
        record(self.handshakes.get_or_insert_with(new_histogram), us);
    }

    fn count_error(&mut self, kind: &str) {
        count_kind(&mut self.by_error, kind);
    }

    /// Responses by status over all steps (requests that got none are not
    /// here). Kept per step only, so recording a request updates one map.
    pub(crate) fn by_status(&self) -> BTreeMap<u16, u64> {
        let mut all = BTreeMap::new();
        for (status, n) in self.steps.iter().flat_map(|s| &s.by_status) {
            if *status != 0 {
                *all.entry(*status).or_default() += n;
            }
        }
        all
    }

    pub(crate) fn requests(&self) -> u64 {
        self.steps.iter().map(|s| s.requests).sum()
    }

    pub(crate) fn errors(&self) -> u64 {
        self.steps.iter().map(|s| s.errors).sum()
    }

    /// All steps' figures merged: the `all` row.
    pub(crate) fn all_steps(&self) -> StepStats {
        let mut all = StepStats::new();
        for s in &self.steps {
            all.add(s);
        }
        all
    }

    pub(crate) fn add(&mut self, other: &IntervalStats) {
        if self.steps.len() < other.steps.len() {
            self.steps.resize_with(other.steps.len(), StepStats::new);
        }
        for (mine, theirs) in self.steps.iter_mut().zip(&other.steps) {
            mine.add(theirs);
        }
        for (kind, n) in &other.by_error {
            *self.by_error.entry(kind.clone()).or_default() += n;
        }
        for (key, (n, reason)) in &other.capture_misses {
            self.capture_misses
                .entry(*key)
                .or_insert_with(|| (0, reason.clone()))
                .0 += n;
        }
        self.dropped_iterations += other.dropped_iterations;
        self.after_death.add(&other.after_death);
        if let Some(theirs) = &other.handshakes {
            self.handshakes
                .get_or_insert_with(new_histogram)
                .add(theirs)
                .expect("auto-resizing histograms always merge");
        }
    }
}

/// Count one failure of `kind`, beyond [`MAX_ERROR_KINDS`] names as `other`.
fn count_kind(by_error: &mut BTreeMap<String, u64>, kind: &str) {
    if let Some(n) = by_error.get_mut(kind) {
        *n += 1;
    } else if by_error.len() < MAX_ERROR_KINDS {
        by_error.insert(kind.to_string(), 1);
    } else {
        *by_error.entry("other".to_string()).or_default() += 1;
    }
}

/// The error kind of a response with an unexpected status: its JSON `code`
/// (`clw-session-expired`, ...) when the body has one, else `http-<status>`.
pub(crate) fn error_kind<'b>(status: u16, body: &'b [u8], scratch: &'b mut String) -> &'b str {
    if let Some(code) = json_code(body) {
        return code;
    }
    scratch.clear();
    use std::fmt::Write as _;
    let _ = write!(scratch, "http-{status}");
    scratch.as_str()
}

/// The string value of a top-level `"code"` key, found without building a
/// JSON tree (error bodies are small and flat).
fn json_code(body: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(body).ok()?;
    let at = text.find("\"code\"")?;
    let rest = text[at + 6..].trim_start().strip_prefix(':')?.trim_start();
    let rest = rest.strip_prefix('"')?;
    let end = rest.find('"')?;
    let code = &rest[..end];
    let valid = !code.is_empty()
        && code.len() <= 64
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    valid.then_some(code)
}

/// Percentiles in milliseconds, as summary.json and latency.csv report them;
/// `None` for an empty histogram: unknown, not zero.
pub(crate) fn percentiles(h: &Histogram<u64>) -> Option<Percentiles> {
    Percentiles::of(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_outcomes_by_status_and_kind() {
        let mut s = IntervalStats::new(2);
        s.record(0, 1500, None, RequestOutcome::Ok { status: 200 });
        s.record(
            1,
            900,
            Some(5000),
            RequestOutcome::BadStatus {
                status: 401,
                kind: "clw-session-expired",
            },
        );
        s.record(
            1,
            5_000_000,
            None,
            RequestOutcome::Transport {
                kind: "clw-auth-timeout",
            },
        );
        assert_eq!(s.requests(), 3);
        assert_eq!(s.errors(), 2);
        assert_eq!(s.by_status().get(&200), Some(&1));
        assert_eq!(s.by_status().get(&401), Some(&1));
        assert_eq!(s.by_error.get("clw-session-expired"), Some(&1));
        assert_eq!(s.by_error.get("clw-auth-timeout"), Some(&1));
        assert_eq!(s.steps[1].corrected.len(), 1);
        assert_eq!(s.steps[0].corrected.len(), 0);

        let mut total = IntervalStats::new(2);
        total.add(&s);
        total.add(&s);
        assert_eq!(total.requests(), 6);
        assert_eq!(total.all_steps().latency.len(), 6);
        let p = percentiles(&total.steps[0].latency).unwrap();
        assert!((p.p50 - 1.5).abs() < 0.01, "{p:?}");
    }

    #[test]
    fn steps_count_statuses_and_folded_error_kinds() {
        let mut s = IntervalStats::new(2);
        s.record(0, 10, None, RequestOutcome::Ok { status: 200 });
        s.record(0, 10, None, RequestOutcome::Ok { status: 200 });
        let bad = |status, kind| RequestOutcome::BadStatus { status, kind };
        s.record(1, 10, None, bad(401, "clw-session-evicted"));
        s.record(1, 10, None, bad(502, "http-502"));
        s.record(1, 10, None, bad(500, "made-up-by-the-server"));
        s.record(1, 10, None, bad(200, "capture-failed"));
        s.record(1, 10, None, RequestOutcome::Transport { kind: "reset" });
        assert_eq!(s.steps[0].by_status, BTreeMap::from([(200, 2)]));
        assert!(s.steps[0].by_kind.is_empty());
        assert_eq!(
            s.steps[1].by_status,
            BTreeMap::from([(0, 1), (200, 1), (401, 1), (500, 1), (502, 1)]),
            "0 counts the request that got no response"
        );
        assert_eq!(
            s.steps[1].by_kind,
            BTreeMap::from([
                (ErrorKind::Named("clw-session-evicted"), 1),
                (ErrorKind::Named("capture-failed"), 1),
                (ErrorKind::Named("reset"), 1),
                (ErrorKind::Http(502), 1),
                (ErrorKind::Other, 1),
            ])
        );
        // The run-wide figures are as before: no status for no response.
        assert_eq!(s.by_status().values().sum::<u64>(), 6);
        assert_eq!(s.by_error["made-up-by-the-server"], 1);
        let mut all = IntervalStats::new(2);
        all.add(&s);
        all.add(&s);
        assert_eq!(all.steps[1].by_kind[&ErrorKind::Other], 2);
        assert_eq!(all.steps[1].by_status[&0], 2);
    }

    #[test]
    fn requests_sent_after_the_death_are_counted_apart() {
        let clock = Arc::new(DeathClock::default());
        let mut s = IntervalStats::watching(1, clock.clone());
        s.record(0, 20_000, None, RequestOutcome::Ok { status: 200 });
        clock.set(std::time::Instant::now());
        std::thread::sleep(std::time::Duration::from_millis(5));
        // In flight at the death (sent 1 s ago): the server's figures.
        let reset = RequestOutcome::Transport { kind: "reset" };
        s.record(0, 1_000_000, None, reset);
        // Sent after it: refused in 0.1 ms, counted apart.
        let refused = RequestOutcome::Transport { kind: "connect" };
        for _ in 0..3 {
            s.record(0, 100, Some(100), refused);
        }
        assert_eq!((s.requests(), s.errors()), (2, 1));
        assert_eq!(s.steps[0].latency.len(), 2, "no refusal in the histogram");
        assert_eq!(s.steps[0].corrected.len(), 0);
        assert_eq!(s.by_error, BTreeMap::from([("reset".into(), 1)]));
        assert_eq!(
            s.after_death,
            AfterDeath {
                requests: 3,
                failed: 3,
                by_error: BTreeMap::from([("connect".into(), 3)]),
            }
        );
        let mut total = IntervalStats::new(1);
        total.add(&s);
        total.add(&s);
        assert_eq!((total.requests(), total.after_death.failed), (4, 6));
    }

    #[test]
    fn server_codes_are_clw_auths() {
        let source = include_str!("../../../auth-server/src/error.rs");
        let mut theirs: Vec<&str> = source
            .lines()
            .filter_map(|l| l.trim().strip_prefix("ErrorCode::"))
            .filter_map(|l| l.split_once("=> \"")?.1.strip_suffix("\","))
            .collect();
        theirs.sort_unstable();
        let mut ours = SERVER_CODES.to_vec();
        ours.sort_unstable();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn error_kinds_are_bounded() {
        let mut s = IntervalStats::new(1);
        for i in 0..200 {
            let kind = format!("code-{i}");
            s.record(
                0,
                10,
                None,
                RequestOutcome::BadStatus {
                    status: 500,
                    kind: &kind,
                },
            );
        }
        assert_eq!(s.by_error.len(), MAX_ERROR_KINDS + 1);
        assert_eq!(s.by_error["other"], 200 - MAX_ERROR_KINDS as u64);
    }

    #[test]
    fn error_kind_prefers_the_json_code() {
        let mut scratch = String::new();
        let body = br#"{"code": "clw-session-evicted","message":"gone"}"#;
        assert_eq!(error_kind(401, body, &mut scratch), "clw-session-evicted");
        assert_eq!(
            error_kind(502, b"<html>bad gateway</html>", &mut scratch),
            "http-502"
        );
        assert!(percentiles(&new_histogram()).is_none());
    }
}
