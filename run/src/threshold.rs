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

    /// A figure of the server's memory (a peak, a slope, the verdict): only
    /// a run that sampled memory has it.
    pub fn is_memory(self) -> bool {
        !self.per_step()
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
// Long: a hand-written scanner for the threshold grammar, one branch per
// form (the old NAME=LIMIT included), each error with its column.
pub fn parse(text: &str) -> Result<Threshold, ParseError> {
    let mut s = Scanner { text, pos: 0 };
    // A rule is shown on one line everywhere (console, JUnit, a Markdown
    // table): a newline or control character would break out of it.
    if let Some(at) = text.find(char::is_control) {
        return Err(s.error(at, "a rule is one line: no newline or control character"));
    }
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
    /// Why the rule was judged without a figure: [`NO_LIMIT`] (skipped),
    /// [`NO_MEMORY_SAMPLES`] (failed), [`MEMORY_OPTED_OUT`] (skipped).
    pub why: Option<&'static str>,
}

/// A percentage of the limit when no limit is known: the rule is skipped.
pub const NO_LIMIT: &str = "no memory limit known";
/// A memory rule on a run whose memory could not be measured at all: it
/// fails, so that a mistyped or dead memory source cannot turn the memory
/// gate off without a word.
pub const NO_MEMORY_SAMPLES: &str = "no memory samples";
/// A memory rule on a run the user told not to measure memory
/// (`--no-memory`): skipped, and said so in every output.
pub const MEMORY_OPTED_OUT: &str = "memory not measured (--no-memory)";

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
        let memory_rule = self.metric.is_memory();
        let (passed, why) = if memory_rule && run.no_memory {
            (None, Some(MEMORY_OPTED_OUT))
        } else if memory_rule && !run.memory_measured() {
            (Some(false), Some(NO_MEMORY_SAMPLES))
        } else if of_limit && run.limit_bytes().is_none() {
            (None, Some(NO_LIMIT))
        } else {
            let passed = actual.as_ref().and_then(|a| self.passes(a));
            (Some(passed.unwrap_or(false)), None)
        };
        Judged {
            threshold: self.clone(),
            actual,
            passed,
            why,
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
mod tests;
