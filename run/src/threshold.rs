//! Threshold expressions: `peak_rss_percent < 80`, `login.p99_ms < 80`,
//! `error_rate < 1%`, `peak_allocated_bytes < 200Mi`, `verdict != leak`.
//!
//! One parser serves the scenario's `[thresholds]` table, `--threshold`
//! flags, the gate and merged runs, so a threshold reads the same wherever
//! it is written. The grammar is small enough that a hand-written scanner
//! gives better errors (a column and what was expected there) than a
//! parser-combinator crate would for the same size:
//!
//! ```text
//! threshold := [step "."] metric op value
//!            | metric "=" number            (the old NAME=LIMIT form)
//! op        := "<" | "<=" | ">" | ">=" | "==" | "!="
//! value     := number [unit] | verdict
//! unit      := "%" | size suffix (K, Ki, M, Mi, G, Gi, ...) | "ms" | "s"
//! ```

use std::fmt;

use crate::RunSummary;

/// What a threshold is checked against: one figure of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    PeakRssPercent,
    PeakRssBytes,
    PeakAllocatedPercent,
    PeakAllocatedBytes,
    RetainedBytesPerLogin,
    SlopeBytesPerS,
    P50Ms,
    P90Ms,
    P99Ms,
    P999Ms,
    MaxMs,
    ErrorRate,
    ThroughputRps,
    Verdict,
}

/// How a figure's value is written, which decides what units it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A percentage (`80`, `80%`).
    Percent,
    /// A fraction (`0.01`, `1%`).
    Fraction,
    /// Bytes (`64`, `200Mi`).
    Bytes,
    /// Milliseconds (`50`, `50ms`, `0.05s`).
    Millis,
    /// A plain number.
    Number,
    /// `leak`, `bounded` or `inconclusive`.
    Verdict,
}

impl Metric {
    /// Every metric with its name; aliases come after the canonical name.
    const NAMES: [(&'static str, Metric); 16] = [
        ("peak_rss_percent", Metric::PeakRssPercent),
        ("peak_rss_bytes", Metric::PeakRssBytes),
        ("peak_allocated_percent", Metric::PeakAllocatedPercent),
        ("peak_allocated_bytes", Metric::PeakAllocatedBytes),
        ("retained_bytes_per_login", Metric::RetainedBytesPerLogin),
        ("slope_bytes_per_s", Metric::SlopeBytesPerS),
        ("p50_ms", Metric::P50Ms),
        ("p90_ms", Metric::P90Ms),
        ("p99_ms", Metric::P99Ms),
        ("p999_ms", Metric::P999Ms),
        ("max_ms", Metric::MaxMs),
        ("error_rate", Metric::ErrorRate),
        ("throughput_rps", Metric::ThroughputRps),
        ("verdict", Metric::Verdict),
        // summary.json's own name for the same figure.
        ("retained_bytes_per_session", Metric::RetainedBytesPerLogin),
        // The old floor, `min_throughput_rps=1000`.
        ("min_throughput_rps", Metric::ThroughputRps),
    ];

    /// The canonical name.
    pub fn as_str(self) -> &'static str {
        Metric::NAMES
            .iter()
            .find(|(_, m)| *m == self)
            .map(|(n, _)| *n)
            .expect("every metric is named")
    }

    fn from_name(name: &str) -> Option<Metric> {
        Metric::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, m)| *m)
    }

    fn kind(self) -> Kind {
        match self {
            Metric::PeakRssPercent | Metric::PeakAllocatedPercent => Kind::Percent,
            Metric::ErrorRate => Kind::Fraction,
            Metric::PeakRssBytes
            | Metric::PeakAllocatedBytes
            | Metric::RetainedBytesPerLogin
            | Metric::SlopeBytesPerS => Kind::Bytes,
            Metric::P50Ms | Metric::P90Ms | Metric::P99Ms | Metric::P999Ms | Metric::MaxMs => {
                Kind::Millis
            }
            Metric::ThroughputRps => Kind::Number,
            Metric::Verdict => Kind::Verdict,
        }
    }

    /// Only latency and request figures exist per step.
    fn per_step(self) -> bool {
        matches!(
            self,
            Metric::P50Ms
                | Metric::P90Ms
                | Metric::P99Ms
                | Metric::P999Ms
                | Metric::MaxMs
                | Metric::ErrorRate
                | Metric::ThroughputRps
        )
    }
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }

    fn holds<T: PartialOrd>(self, actual: T, limit: T) -> bool {
        match self {
            Op::Lt => actual < limit,
            Op::Le => actual <= limit,
            Op::Gt => actual > limit,
            Op::Ge => actual >= limit,
            Op::Eq => actual == limit,
            Op::Ne => actual != limit,
        }
    }
}

/// The right-hand side, already in the metric's own unit.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Number(f64),
    Verdict(String),
}

/// One parsed threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// `login` in `login.p99_ms < 80`: the figure of that step only.
    pub step: Option<String>,
    pub metric: Metric,
    pub op: Op,
    pub value: Value,
    /// The text as written, for messages and summary.json.
    pub source: String,
}

/// A threshold that could not be parsed: where, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at column {column} of `{text}`)")]
pub struct ParseError {
    /// 1-based character column in `text`.
    pub column: usize,
    pub message: String,
    pub text: String,
}

const VERDICTS: [&str; 3] = ["leak", "bounded", "inconclusive"];

/// Parses one threshold expression.
pub fn parse(text: &str) -> Result<Threshold, ParseError> {
    let mut s = Scanner { text, pos: 0 };
    s.skip_ws();
    let name_at = s.pos;
    let name = s.take_while(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-');
    if name.is_empty() {
        return Err(s.error(name_at, "expected a metric name such as `p99_ms`"));
    }
    let (step, metric_name, metric_at) = match name.rsplit_once('.') {
        Some((step, m)) if !step.is_empty() => {
            (Some(step.to_string()), m, name_at + step.len() + 1)
        }
        Some(_) => return Err(s.error(name_at, "a step name is missing before `.`")),
        None => (None, name, name_at),
    };
    let metric = Metric::from_name(metric_name).ok_or_else(|| {
        s.error(
            metric_at,
            format!(
                "unknown metric `{metric_name}`; known: {}",
                Metric::NAMES[..14]
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })?;
    if step.is_some() && !metric.per_step() {
        return Err(s.error(
            name_at,
            format!("`{metric_name}` is a whole-run figure; it has no per-step value"),
        ));
    }
    s.skip_ws();
    let op_at = s.pos;
    let op = match s.take_while(|c| matches!(c, '<' | '>' | '=' | '!')) {
        "<" => Op::Lt,
        "<=" => Op::Le,
        ">" => Op::Gt,
        ">=" => Op::Ge,
        "==" => Op::Eq,
        "!=" => Op::Ne,
        // The old form: NAME=LIMIT, a ceiling (a floor for throughput).
        "=" if metric_name == "min_throughput_rps" => Op::Ge,
        "=" if metric != Metric::Verdict => Op::Le,
        "" => return Err(s.error(op_at, "expected a comparison: <, <=, >, >=, == or !=")),
        other => {
            return Err(s.error(
                op_at,
                format!("`{other}` is not a comparison; use <, <=, >, >=, == or !="),
            ))
        }
    };
    s.skip_ws();
    let value_at = s.pos;
    let value = if metric.kind() == Kind::Verdict {
        let word = s.take_while(|c| c.is_ascii_alphabetic());
        if !VERDICTS.contains(&word) {
            return Err(s.error(
                value_at,
                "expected a verdict: leak, bounded or inconclusive",
            ));
        }
        if !matches!(op, Op::Eq | Op::Ne) {
            return Err(s.error(op_at, "a verdict is compared with == or !="));
        }
        Value::Verdict(word.to_string())
    } else {
        let number = s.take_while(|c| {
            c.is_ascii_digit() || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E'
        });
        let n: f64 = number
            .parse()
            .ok()
            .filter(|n: &f64| n.is_finite())
            .ok_or_else(|| s.error(value_at, "expected a number"))?;
        let unit_at = s.pos;
        let unit = s.take_while(|c| c.is_ascii_alphabetic() || c == '%');
        Value::Number(scale(metric.kind(), n, unit).map_err(|m| s.error(unit_at, m))?)
    };
    s.skip_ws();
    if s.pos < text.len() {
        return Err(s.error(s.pos, "unexpected text after the value"));
    }
    Ok(Threshold {
        step,
        metric,
        op,
        value,
        source: text.trim().to_string(),
    })
}

/// `n` written with `unit`, in the metric kind's own unit.
fn scale(kind: Kind, n: f64, unit: &str) -> Result<f64, String> {
    match (kind, unit) {
        (_, "") => Ok(n),
        (Kind::Percent, "%") => Ok(n),
        (Kind::Fraction, "%") => Ok(n / 100.0),
        (Kind::Millis, "ms") => Ok(n),
        (Kind::Millis, "s") => Ok(n * 1000.0),
        (Kind::Millis, "us" | "µs") => Ok(n / 1000.0),
        (Kind::Bytes, u) => clw_units::parse_size(&format!("1{u}"))
            .map(|m| n * m as f64)
            .map_err(|_| format!("`{u}` is not a size unit (B, K, Ki, M, Mi, G, Gi)")),
        (Kind::Percent, u) => Err(format!(
            "`{u}`: this figure is a percentage; write 80 or 80%"
        )),
        (Kind::Fraction, u) => Err(format!(
            "`{u}`: this figure is a fraction; write 0.01 or 1%"
        )),
        (Kind::Millis, u) => Err(format!("`{u}` is not a time unit (ms, s)")),
        (_, u) => Err(format!("`{u}`: this figure takes a plain number")),
    }
}

struct Scanner<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn skip_ws(&mut self) {
        self.take_while(char::is_whitespace);
    }

    fn take_while(&mut self, f: impl Fn(char) -> bool) -> &'a str {
        let rest = &self.text[self.pos..];
        let len = rest.find(|c: char| !f(c)).unwrap_or(rest.len());
        self.pos += len;
        &rest[..len]
    }

    fn error(&self, at: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            column: self.text[..at].chars().count() + 1,
            message: message.into(),
            text: self.text.to_string(),
        }
    }
}

/// A figure as a run reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum Actual {
    Number(f64),
    Verdict(String),
}

impl fmt::Display for Actual {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actual::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => write!(f, "{n:.0}"),
            Actual::Number(n) => write!(f, "{n:.3}"),
            Actual::Verdict(v) => f.write_str(v),
        }
    }
}

/// One threshold judged against one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    pub threshold: Threshold,
    /// The run's figure; None when the run lacks it.
    pub actual: Option<Actual>,
    /// None when the rule does not apply: a percentage of the memory limit
    /// when no limit is known. A figure that should exist but does not
    /// fails, since a gate that passes on missing data passes broken runs.
    pub passed: Option<bool>,
}

impl Threshold {
    /// This threshold's figure in `run`.
    pub fn actual(&self, run: &RunSummary) -> Option<Actual> {
        let memory = run.memory.as_ref();
        let number = |v: Option<f64>| v.map(Actual::Number);
        let step = self.step.as_ref().map(|name| run.steps.get(name));
        let latency = match step {
            Some(s) => s.and_then(|s| s.latency_ms),
            None => run.latency_ms,
        };
        match self.metric {
            Metric::PeakRssPercent => number(memory?.peak_rss_percent),
            Metric::PeakRssBytes => number(memory?.peak_rss_bytes.map(|b| b as f64)),
            Metric::PeakAllocatedPercent => number(memory?.peak_allocated_percent),
            Metric::PeakAllocatedBytes => number(memory?.peak_allocated_bytes.map(|b| b as f64)),
            Metric::RetainedBytesPerLogin => number(memory?.retained_bytes_per_session),
            Metric::SlopeBytesPerS => number(memory?.slope_bytes_per_s),
            Metric::P50Ms => number(latency.map(|l| l.p50)),
            Metric::P90Ms => number(latency.map(|l| l.p90)),
            Metric::P99Ms => number(latency.map(|l| l.p99)),
            Metric::P999Ms => number(latency.map(|l| l.p999)),
            Metric::MaxMs => number(latency.map(|l| l.max)),
            Metric::ErrorRate => {
                let (failed, total) = match step {
                    Some(s) => s.map(|s| (s.errors, s.requests))?,
                    None => (run.requests.failed, run.requests.total),
                };
                (total > 0).then(|| Actual::Number(failed as f64 / total as f64))
            }
            Metric::ThroughputRps => match step {
                Some(s) => {
                    let elapsed = run.elapsed_s.filter(|e| *e > 0.0)?;
                    Some(Actual::Number(s?.requests as f64 / elapsed))
                }
                None => number(run.throughput_rps),
            },
            Metric::Verdict => memory?.verdict.map(|v| Actual::Verdict(v.as_str().into())),
        }
    }

    /// The actual value when this threshold already fails for good on a
    /// run still going: a peak only grows, so a ceiling on one that is
    /// passed stays failed; a `leak` verdict is said only at 99.9%
    /// confidence, so a rule it breaks stays broken. Anything else (latency,
    /// error rate, a verdict still `inconclusive`) may yet recover, and is
    /// None. `--abort-on-fail` stops the load on the first Some.
    pub fn fails_for_good(&self, run: &RunSummary) -> Option<Actual> {
        let peak = matches!(
            self.metric,
            Metric::PeakRssPercent
                | Metric::PeakRssBytes
                | Metric::PeakAllocatedPercent
                | Metric::PeakAllocatedBytes
        );
        let ceiling = matches!(self.op, Op::Lt | Op::Le);
        let judged = self.judge(run);
        let actual = judged.actual.filter(|_| judged.passed == Some(false))?;
        let settled = match &actual {
            Actual::Number(_) => peak && ceiling,
            Actual::Verdict(v) => self.metric == Metric::Verdict && v == "leak",
        };
        settled.then_some(actual)
    }

    /// Judges this threshold on `run`.
    pub fn judge(&self, run: &RunSummary) -> Judged {
        let actual = self.actual(run);
        let of_limit = matches!(
            self.metric,
            Metric::PeakRssPercent | Metric::PeakAllocatedPercent
        );
        let passed = if of_limit && run.limit_bytes().is_none() {
            None
        } else {
            Some(
                actual
                    .as_ref()
                    .and_then(|a| self.passes(a))
                    .unwrap_or(false),
            )
        };
        Judged {
            threshold: self.clone(),
            actual,
            passed,
        }
    }
}

/// The rules every run is held to unless the user states the same metric:
/// the field guide's `peak_rss_percent < 80` (when a limit is known; it
/// does not apply otherwise) and `verdict != leak`.
pub fn defaults() -> Vec<Threshold> {
    ["peak_rss_percent < 80", "verdict != leak"]
        .into_iter()
        .map(|t| parse(t).expect("built-in thresholds parse"))
        .collect()
}

/// The user's thresholds (scenario first, then flags; a flag replaces a
/// scenario rule on the same metric and step with the same direction),
/// then each default whose metric the user did not state.
pub fn with_defaults(scenario: &[Threshold], flags: &[Threshold]) -> Vec<Threshold> {
    let mut out: Vec<Threshold> = scenario.to_vec();
    for t in flags {
        let same =
            |o: &Threshold| o.metric == t.metric && o.step == t.step && same_direction(o.op, t.op);
        match out.iter_mut().find(|o| same(o)) {
            Some(o) => *o = t.clone(),
            None => out.push(t.clone()),
        }
    }
    for d in defaults() {
        if !out.iter().any(|o| o.metric == d.metric && o.step.is_none()) {
            out.push(d);
        }
    }
    out
}

fn same_direction(a: Op, b: Op) -> bool {
    let side = |op: Op| match op {
        Op::Lt | Op::Le => 0,
        Op::Gt | Op::Ge => 1,
        Op::Eq | Op::Ne => 2,
    };
    side(a) == side(b)
}

impl Threshold {
    /// Does `actual` pass? None when the kinds differ (a bug in the caller).
    pub fn passes(&self, actual: &Actual) -> Option<bool> {
        match (&self.value, actual) {
            (Value::Number(limit), Actual::Number(a)) => Some(self.op.holds(*a, *limit)),
            (Value::Verdict(limit), Actual::Verdict(a)) => {
                Some(self.op.holds(a.as_str(), limit.as_str()))
            }
            _ => None,
        }
    }

    /// The canonical name, with its step: `login.p99_ms`.
    pub fn name(&self) -> String {
        match &self.step {
            Some(step) => format!("{step}.{}", self.metric.as_str()),
            None => self.metric.as_str().to_string(),
        }
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = match &self.value {
            Value::Number(n) => format!("{n}"),
            Value::Verdict(v) => v.clone(),
        };
        write!(f, "{} {} {value}", self.name(), self.op.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(t: &Threshold) -> f64 {
        match t.value {
            Value::Number(n) => n,
            _ => panic!("not a number"),
        }
    }

    #[test]
    fn the_issues_examples_parse_to_their_units() {
        let t = parse("peak_rss_percent < 80").unwrap();
        assert_eq!(
            (t.metric, t.op, n(&t)),
            (Metric::PeakRssPercent, Op::Lt, 80.0)
        );
        assert_eq!(
            n(&parse("peak_allocated_bytes < 200Mi").unwrap()),
            200.0 * 1048576.0
        );
        assert_eq!(n(&parse("p99_ms < 50").unwrap()), 50.0);
        let step = parse("login.p99_ms < 80").unwrap();
        assert_eq!(step.step.as_deref(), Some("login"));
        assert_eq!(step.name(), "login.p99_ms");
        assert_eq!(n(&parse("error_rate < 1%").unwrap()), 0.01);
        let v = parse("verdict != leak").unwrap();
        assert_eq!((v.op, v.value), (Op::Ne, Value::Verdict("leak".into())));
        assert_eq!(n(&parse("retained_bytes_per_login < 64").unwrap()), 64.0);
        assert_eq!(n(&parse("p99_ms<0.05s").unwrap()), 50.0);
    }

    #[test]
    fn the_old_name_equals_limit_form_keeps_its_meaning() {
        let t = parse("p99_ms=250").unwrap();
        assert_eq!((t.op, n(&t)), (Op::Le, 250.0));
        let floor = parse("min_throughput_rps=1000").unwrap();
        assert_eq!((floor.metric, floor.op), (Metric::ThroughputRps, Op::Ge));
        assert_eq!(parse("error_rate=0.01").unwrap().op, Op::Le);
    }

    #[test]
    fn every_bad_form_points_at_its_column() {
        let cases = [
            ("", 1, "metric name"),
            ("  < 80", 3, "metric name"),
            ("p99 < 5", 1, "unknown metric `p99`"),
            ("login.verdict != leak", 1, "whole-run figure"),
            (".p99_ms < 5", 1, "step name is missing"),
            ("p99_ms 50", 8, "expected a comparison"),
            ("p99_ms => 50", 8, "`=>` is not a comparison"),
            ("p99_ms < ", 10, "expected a number"),
            ("p99_ms < fast", 10, "expected a number"),
            ("p99_ms < 50 ms extra", 13, "unexpected text"),
            ("p99_ms < 50kg", 12, "not a time unit"),
            ("error_rate < 1Mi", 15, "fraction"),
            ("peak_rss_percent < 80Mi", 22, "percentage"),
            ("peak_allocated_bytes < 200Xi", 27, "not a size unit"),
            ("verdict < leak", 9, "compared with == or !="),
            ("verdict != leaky", 12, "expected a verdict"),
            ("verdict = leak", 9, "`=` is not a comparison"),
            ("p99_ms < inf", 10, "expected a number"),
        ];
        for (text, column, needle) in cases {
            let e = parse(text).expect_err(text);
            assert_eq!(e.column, column, "{text}: {e}");
            assert!(e.message.contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn evaluation_compares_in_the_metrics_unit() {
        let t = parse("peak_rss_percent < 80").unwrap();
        assert_eq!(t.passes(&Actual::Number(79.9)), Some(true));
        assert_eq!(t.passes(&Actual::Number(80.0)), Some(false));
        let v = parse("verdict != leak").unwrap();
        assert_eq!(v.passes(&Actual::Verdict("bounded".into())), Some(true));
        assert_eq!(v.passes(&Actual::Verdict("leak".into())), Some(false));
        assert_eq!(v.passes(&Actual::Number(1.0)), None);
        assert_eq!(
            parse("throughput_rps >= 100")
                .unwrap()
                .passes(&Actual::Number(100.0)),
            Some(true)
        );
    }

    fn run() -> RunSummary {
        let mut run: RunSummary = serde_json::from_value(serde_json::json!({
            "requests": {"total": 200, "ok": 198, "failed": 2},
            "throughput_rps": 100.0, "elapsed_s": 2.0,
            "latency_ms": {"p50": 1.0, "p90": 2.0, "p99": 40.0, "p999": 60.0, "max": 90.0},
            "steps": {"login": {"requests": 100, "errors": 2,
                                "latency_ms": {"p50": 1.0, "p90": 2.0, "p99": 85.0, "p999": 90.0, "max": 90.0}}},
            "memory": {"limit_bytes": 268435456, "peak_rss_percent": 45.5, "peak_allocated_bytes": 1000,
                       "retained_bytes_per_session": 12.5, "verdict": "leak"}
        }))
        .unwrap();
        run.complete = true;
        run
    }

    #[test]
    fn judged_against_a_run_each_with_its_actual_value() {
        let run = run();
        let judge = |text: &str| parse(text).unwrap().judge(&run);
        let j = judge("peak_rss_percent < 80");
        assert_eq!(
            (j.actual, j.passed),
            (Some(Actual::Number(45.5)), Some(true))
        );
        assert_eq!(judge("p99_ms < 50").passed, Some(true));
        let step = judge("login.p99_ms < 80");
        assert_eq!(
            (step.actual, step.passed),
            (Some(Actual::Number(85.0)), Some(false))
        );
        assert_eq!(judge("error_rate < 1%").actual, Some(Actual::Number(0.01)));
        assert_eq!(
            judge("error_rate < 1%").passed,
            Some(false),
            "1% is not under 1%"
        );
        assert_eq!(judge("login.error_rate < 5%").passed, Some(true));
        assert_eq!(judge("login.throughput_rps >= 50").passed, Some(true));
        let v = judge("verdict != leak");
        assert_eq!(
            (v.actual, v.passed),
            (Some(Actual::Verdict("leak".into())), Some(false))
        );
        assert_eq!(judge("retained_bytes_per_login < 64").passed, Some(true));
        assert_eq!(judge("peak_allocated_bytes < 1Ki").passed, Some(true));
        let missing = judge("nostep.p99_ms < 80");
        assert_eq!(
            (missing.actual, missing.passed),
            (None, Some(false)),
            "a figure the run lacks fails"
        );
    }

    #[test]
    fn only_failures_no_later_sample_can_undo_are_for_good() {
        let mut run = run();
        let for_good = |text: &str, run: &RunSummary| parse(text).unwrap().fails_for_good(run);
        assert_eq!(
            for_good("verdict != leak", &run),
            Some(Actual::Verdict("leak".into()))
        );
        assert_eq!(
            for_good("peak_rss_percent < 40", &run),
            Some(Actual::Number(45.5))
        );
        assert_eq!(for_good("peak_rss_percent < 80", &run), None, "passing");
        assert_eq!(
            for_good("peak_rss_percent > 80", &run),
            None,
            "a floor on a peak may still be reached"
        );
        assert_eq!(for_good("p99_ms < 10", &run), None, "latency may recover");
        run.memory.as_mut().unwrap().verdict = Some(crate::Verdict::Inconclusive);
        assert_eq!(
            for_good("verdict == bounded", &run),
            None,
            "inconclusive may still settle"
        );
        assert_eq!(for_good("verdict != leak", &run), None);
    }

    #[test]
    fn a_percentage_of_an_unknown_limit_does_not_apply() {
        let mut run = run();
        run.memory.as_mut().unwrap().limit_bytes = None;
        assert_eq!(
            parse("peak_rss_percent < 80").unwrap().judge(&run).passed,
            None
        );
        run.memory = None;
        assert_eq!(
            parse("verdict != leak").unwrap().judge(&run).passed,
            Some(false),
            "no verdict at all fails"
        );
    }

    #[test]
    fn defaults_apply_unless_the_user_states_the_metric() {
        let names = |v: Vec<Threshold>| v.iter().map(|t| t.to_string()).collect::<Vec<_>>();
        assert_eq!(
            names(with_defaults(&[], &[])),
            ["peak_rss_percent < 80", "verdict != leak"]
        );
        let scenario = [
            parse("p99_ms < 100").unwrap(),
            parse("peak_rss_percent < 70").unwrap(),
        ];
        let flags = [
            parse("p99_ms <= 50").unwrap(),
            parse("throughput_rps > 10").unwrap(),
        ];
        assert_eq!(
            names(with_defaults(&scenario, &flags)),
            [
                "p99_ms <= 50",
                "peak_rss_percent < 70",
                "throughput_rps > 10",
                "verdict != leak"
            ]
        );
        let floor_and_ceiling = [parse("p99_ms > 0.001").unwrap()];
        assert_eq!(
            with_defaults(&scenario, &floor_and_ceiling).len(),
            4,
            "a floor does not replace a ceiling"
        );
    }

    #[test]
    fn display_round_trips() {
        for text in ["login.p99_ms < 80", "verdict != leak", "error_rate <= 0.01"] {
            let t = parse(text).unwrap();
            assert_eq!(parse(&t.to_string()).unwrap().value, t.value);
            assert_eq!(t.to_string(), text);
        }
    }
}
