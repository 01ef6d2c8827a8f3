//! Compile a scenario file: TOML -> raw serde types -> checked `Scenario`.
//!
//! Every error is turned into `path:line:column: message`. serde/toml
//! errors carry a byte span; template errors carry an offset within a
//! string value, which is mapped back into the file through the value's
//! span.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;

use toml::Spanned;

use super::error::{ScenarioError, Source};
use super::model::{Flow, Scenario};
use super::raw::{RawFlow, RawScenario, RawStep, RawThresholds};
use super::template::Template;
use super::vars::Slot;
use clw_run::threshold::Threshold;

/// Name of the single flow of a file with top-level `[[steps]]`.
const MAIN_FLOW: &str = "main";
/// Redirects followed when neither the step nor `[http]` says: k6's
/// default, and what a browser user never notices.
const DEFAULT_FOLLOW_REDIRECTS: u32 = 10;
/// Headers the HTTP client writes itself; a scenario setting them would
/// corrupt the framing of the connection.
const RESERVED_HEADERS: [&str; 4] = ["host", "content-length", "transfer-encoding", "connection"];

/// An HTTP header name: a non-empty token (RFC 9110). For a step's
/// `headers` and for `--header` alike.
pub(super) fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

pub(crate) fn parse(text: &str, path: &Path) -> Result<Scenario, ScenarioError> {
    let src = Source { text, path };
    let raw: RawScenario = toml::from_str(text)
        .map_err(|e| src.error_at(e.span().map_or(0, |s| s.start), e.message()))?;
    let mut c = Compiler {
        src: &src,
        vars: Vec::new(),
        columns: Vec::new(),
        follow_redirects: DEFAULT_FOLLOW_REDIRECTS,
    };

    let name = raw.name.get_ref();
    if name.is_empty()
        || !name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch))
    {
        return Err(c.at(
            &raw.name,
            "`name` must be non-empty letters, digits, `-`, `_` or `.` (it names the run folder)",
        ));
    }
    let defaults = c.load(&raw)?;
    let users = c.users(&raw.users)?;
    let http = c.http(&raw.http)?;
    let flows = match (&raw.steps, &raw.flows) {
        (Some(_), Some(flows)) => {
            return Err(c.at(
                flows,
                "use either top-level [[steps]] (one flow) or [[flows]], not both",
            ))
        }
        (None, None) => {
            return Err(src.error_at(
                0,
                "expected [[steps]] or [[flows]]: a scenario needs at least one step",
            ))
        }
        (Some(steps), None) => vec![c.flow(MAIN_FLOW, 1, steps)?],
        (None, Some(flows)) => c.flows(flows)?,
    };
    let total_weight = flows.iter().map(|f| u64::from(f.weight)).sum();
    Ok(Scenario {
        name: name.clone(),
        defaults,
        users,
        http,
        flows,
        thresholds: c.thresholds(&raw.thresholds)?,
        vars: c.vars,
        total_weight,
    })
}

struct Compiler<'a> {
    src: &'a Source<'a>,
    /// Captured variable names; the index is the slot.
    vars: Vec<String>,
    /// `[users] file` columns: variables every step may read, set at the
    /// start of each iteration (their slots are in `vars` too).
    columns: Vec<String>,
    /// `[http] follow_redirects`: the steps' default.
    follow_redirects: u32,
}

impl Compiler<'_> {
    fn at<T>(&self, spanned: &Spanned<T>, message: impl Into<String>) -> ScenarioError {
        self.src.error_at(spanned.span().start, message)
    }

    fn slot(&mut self, name: &str) -> Slot {
        let i = self.vars.iter().position(|v| v == name).unwrap_or_else(|| {
            self.vars.push(name.to_string());
            self.vars.len() - 1
        });
        Slot(u16::try_from(i).expect("fewer than 65536 variables"))
    }

    /// Compile the template in string value `s`, pointing errors at the
    /// offending character.
    fn template(
        &self,
        s: &Spanned<String>,
        resolve: &mut dyn FnMut(&str) -> Result<Slot, String>,
    ) -> Result<Template, ScenarioError> {
        Template::compile(s.get_ref(), resolve).map_err(|e| {
            self.src
                .error_at(self.string_pos(s.span(), s.get_ref(), e.offset), e.message)
        })
    }

    /// File offset of byte `offset` of string value `value` whose TOML
    /// literal spans `span`. Exact unless an escape sequence precedes the
    /// spot, in which case it falls back to the literal's start.
    fn string_pos(&self, span: Range<usize>, value: &str, offset: usize) -> usize {
        let text = self.src.text;
        let literal = text.get(span.clone()).unwrap_or("");
        let mut start = span.start;
        if literal.starts_with("\"\"\"") || literal.starts_with("'''") {
            start += 3;
            let rest = &text[start..];
            start += if rest.starts_with("\r\n") {
                2
            } else {
                usize::from(rest.starts_with('\n'))
            };
        } else if literal.starts_with('"') || literal.starts_with('\'') {
            start += 1;
        }
        match (value.get(..offset), text.get(start..)) {
            (Some(prefix), Some(rest)) if rest.starts_with(prefix) => start + offset,
            _ => span.start,
        }
    }

    fn flows(&mut self, raw: &Spanned<Vec<RawFlow>>) -> Result<Vec<Flow>, ScenarioError> {
        if raw.get_ref().is_empty() {
            return Err(self.at(
                raw,
                "[[flows]] is empty: a scenario needs at least one flow",
            ));
        }
        let mut flows: Vec<Flow> = Vec::new();
        for f in raw.get_ref() {
            let name = f.name.get_ref();
            if name.is_empty() || flows.iter().any(|g| &g.name == name) {
                return Err(self.at(
                    &f.name,
                    format!("flow names must be non-empty and unique; `{name}` is not"),
                ));
            }
            let weight = f.weight.as_ref().map_or(Ok(1), |w| match *w.get_ref() {
                0 => Err(self.at(
                    w,
                    "`weight` must be at least 1 (remove the flow to disable it)",
                )),
                n => Ok(n),
            })?;
            flows.push(self.flow(name, weight, &f.steps)?);
        }
        Ok(flows)
    }

    fn flow(
        &mut self,
        name: &str,
        weight: u32,
        raw: &Spanned<Vec<RawStep>>,
    ) -> Result<Flow, ScenarioError> {
        if raw.get_ref().is_empty() {
            return Err(self.at(raw, format!("flow `{name}` has no steps")));
        }
        // Where each variable is captured in this flow: first capturer, for
        // "defined?" and for re-authentication.
        let mut captured_at: HashMap<String, usize> = HashMap::new();
        for (i, s) in raw.get_ref().iter().enumerate() {
            for var in s.capture.keys() {
                captured_at.entry(var.clone()).or_insert(i);
            }
        }
        let mut steps = Vec::with_capacity(raw.get_ref().len());
        for (i, s) in raw.get_ref().iter().enumerate() {
            steps.push(self.step(name, i, s, &captured_at)?);
        }
        Ok(Flow {
            name: name.to_string(),
            weight,
            steps,
        })
    }

    /// Offset of the content of a string literal equal to `value` inside
    /// `span` (a body table), if it is written without escapes.
    fn find_in(&self, span: Range<usize>, value: &str) -> Option<usize> {
        let text = self.src.text.get(span.clone())?;
        text.match_indices(value)
            .find(|(i, _)| text[..*i].ends_with(['"', '\'']))
            .map(|(i, _)| span.start + i)
    }

    fn thresholds(&self, raw: &RawThresholds) -> Result<Vec<Threshold>, ScenarioError> {
        let mut out = Vec::new();
        for (key, value) in raw {
            match value.get_ref() {
                toml::Value::Table(step) => {
                    for (metric, v) in step {
                        let name = format!("{}.{metric}", key.get_ref());
                        self.threshold_rules(&name, v, value.span().start, false, &mut out)?;
                    }
                }
                v => self.threshold_rules(key.get_ref(), v, value.span().start, true, &mut out)?,
            }
        }
        Ok(out)
    }

    /// One `[thresholds]` entry: `name` and its rule (or rules). `at` is
    /// where the value starts in the file; `exact` says whether a string
    /// value starts there (then errors point at the character).
    fn threshold_rules(
        &self,
        name: &str,
        value: &toml::Value,
        at: usize,
        exact: bool,
        out: &mut Vec<Threshold>,
    ) -> Result<(), ScenarioError> {
        let rules: Vec<(String, bool)> = match value {
            // The old form is shown as the rule it means (`p99_ms <= 50`).
            toml::Value::Integer(n) => vec![(format!("{name}={n}"), false)],
            toml::Value::Float(n) => vec![(format!("{name}={n}"), false)],
            toml::Value::String(rule) => vec![(format!("{name} {rule}"), exact)],
            toml::Value::Array(items) => items
                .iter()
                .map(|i| match i {
                    toml::Value::String(rule) => Ok((format!("{name} {rule}"), false)),
                    other => Err(self.src.error_at(
                        at,
                        format!("threshold `{name}`: a list holds conditions such as \"< 80\", not {}", other.type_str()),
                    )),
                })
                .collect::<Result<_, _>>()?,
            other => {
                return Err(self.src.error_at(
                    at,
                    format!(
                        "threshold `{name}` must be a number (a ceiling) or a condition such as \"< 80\", not {}",
                        other.type_str()
                    ),
                ))
            }
        };
        for (text, exact) in rules {
            let t = clw_run::threshold::parse(&text).map_err(|e| {
                // Column of the fault inside the value: after `name `, plus
                // the opening quote.
                let offset = e.column.saturating_sub(name.chars().count() + 2);
                let pos = if exact && e.column > name.chars().count() + 1 {
                    at + 1 + offset
                } else {
                    at
                };
                self.src
                    .error_at(pos, format!("threshold `{text}`: {}", e.message))
            })?;
            let mut t = t;
            if matches!(value, toml::Value::Integer(_) | toml::Value::Float(_)) {
                // The old form is shown as the rule it means: `p99_ms <= 50`.
                t.source = t.to_string();
            }
            out.push(t);
        }
        Ok(())
    }
}

/// `/auth/login` -> `login`; a path without a usable last segment falls back
/// to the lowercase method.
fn default_step_name(path: &str, method: &str) -> String {
    let path = path
        .split('?')
        .next()
        .unwrap_or_default()
        .trim_end_matches('/');
    match path.rsplit('/').next() {
        Some(seg) if !seg.is_empty() && !seg.contains('{') => seg.to_string(),
        _ => method.to_ascii_lowercase(),
    }
}

/// `[load]`, stages included: a child module so it shares the compiler's
/// error helpers.
#[path = "load.rs"]
mod load;

/// One step: its request (path, headers, body, basic auth, redirects) and
/// its captures.
#[path = "step.rs"]
mod step;

/// `[users]` (a CSV file of accounts included) and `[http]`.
#[path = "users.rs"]
mod users;

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
