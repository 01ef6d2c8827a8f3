//! Compile a scenario file: TOML -> raw serde types -> checked `Scenario`.
//!
//! Every error is turned into `path:line:column: message`. serde/toml
//! errors carry a byte span; template errors carry an offset within a
//! string value, which is mapped back into the file through the value's
//! span.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use toml::Spanned;

use super::body;
use super::error::{ScenarioError, Source};
use super::model::{Flow, Scenario, StatusSet, Step, UserPick, UserPool};
use super::raw::{RawFlow, RawPick, RawScenario, RawStep, RawThresholds, RawUsers};
use super::template::{is_builtin, is_identifier, Template, BUILTINS};
use super::vars::{Capture, Slot};
use clw_run::threshold::Threshold;

/// Name of the single flow of a file with top-level `[[steps]]`.
const MAIN_FLOW: &str = "main";
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

    fn users(&self, raw: &RawUsers) -> Result<UserPool, ScenarioError> {
        let count = raw.count.as_ref().map_or(Ok(16), |c| match *c.get_ref() {
            0 => Err(self.at(c, "`count` must be at least 1")),
            n => Ok(n),
        })?;
        let mut no_vars = |name: &str| {
            Err(format!(
                "`{name}` is not available in [users]: use vu, iter, index or random_hex:N (captured variables exist only in steps)"
            ))
        };
        let mut template =
            |value: &Option<Spanned<String>>, default: &str| -> Result<Template, ScenarioError> {
                let Some(s) = value else {
                    return Ok(Template::compile(default, &mut no_vars)
                        .expect("default user template compiles"));
                };
                let t = self.template(s, &mut no_vars)?;
                if t.reads_user() {
                    return Err(self.at(
                        s,
                        "[users] templates cannot use {user} or {password}: they define them",
                    ));
                }
                Ok(t)
            };
        Ok(UserPool {
            count,
            username: template(&raw.username, "user-{index}")?,
            password: template(&raw.password, "clw-load-test")?,
            pick: match raw.pick {
                None | Some(RawPick::PerVu) => UserPick::PerVu,
                Some(RawPick::Random) => UserPick::Random,
            },
        })
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

    fn step(
        &mut self,
        flow: &str,
        index: usize,
        raw: &RawStep,
        captured_at: &HashMap<String, usize>,
    ) -> Result<Step, ScenarioError> {
        // Resolve names against this flow's earlier captures. Slots are
        // allocated up front so the closure needs no `&mut self`.
        let known: HashMap<&str, (Slot, usize)> = captured_at
            .iter()
            .filter(|(_, &at)| at < index)
            .map(|(name, &at)| (name.as_str(), (self.slot(name), at)))
            .collect();
        let mut uses: Vec<(Slot, usize)> = Vec::new();
        let mut resolve = |name: &str| -> Result<Slot, String> {
            if let Some(&(slot, at)) = known.get(name) {
                uses.push((slot, at));
                return Ok(slot);
            }
            Err(match captured_at.get(name) {
                Some(&at) if at == index => {
                    format!("`{name}` is captured by this same step, so it is not set yet when the request is built")
                }
                Some(&at) => format!("`{name}` is captured only by a later step (step {}); a step can use only variables captured before it", at + 1),
                None => format!("undefined variable `{name}`: no earlier step in flow `{flow}` captures it; expected one of {BUILTINS}"),
            })
        };

        let path = self.step_path(&raw.path, &mut resolve)?;
        let headers = self.step_headers(&raw.headers, &mut resolve)?;
        let body = self.step_body(raw.body.as_ref(), &mut resolve)?;
        let captures = self.step_captures(&raw.capture)?;

        let expect = raw.expect.as_ref().map_or_else(
            || {
                let mut s = StatusSet::new("2xx");
                s.insert_class(2);
                s
            },
            |e| e.get_ref().0.clone(),
        );
        let repeat = raw.repeat.as_ref().map_or(Ok(1), |r| match *r.get_ref() {
            0 => Err(self.at(
                r,
                "`repeat` must be at least 1 (remove the step to skip it)",
            )),
            n => Ok(n),
        })?;
        let name = match &raw.name {
            Some(n) if n.get_ref().is_empty() || n.get_ref() == "all" => {
                return Err(self.at(
                    n,
                    "step name must be non-empty and not `all` (latency.csv's overall row)",
                ))
            }
            Some(n) => n.get_ref().clone(),
            None => default_step_name(raw.path.get_ref(), raw.method.get_ref().as_str()),
        };
        uses.sort_unstable_by_key(|&(slot, _)| slot.0);
        uses.dedup_by_key(|&mut (slot, _)| slot);
        Ok(Step {
            name,
            method: *raw.method.get_ref(),
            path,
            headers,
            body,
            captures,
            expect,
            repeat,
            think_time: raw
                .think_time
                .as_ref()
                .map_or(Duration::ZERO, |t| t.get_ref().0),
            reauth: uses.iter().map(|&(_, at)| at).min(),
            #[cfg(test)]
            uses: uses.into_iter().map(|(slot, _)| slot).collect(),
        })
    }

    /// A step's `path`: starts with `/`, no spaces or control characters,
    /// compiled as a template.
    fn step_path(
        &self,
        raw: &Spanned<String>,
        resolve: &mut dyn FnMut(&str) -> Result<Slot, String>,
    ) -> Result<Template, ScenarioError> {
        let src = raw.get_ref();
        if !src.starts_with('/') {
            return Err(self.at(raw, format!("`path` must start with `/`, found \"{src}\"")));
        }
        if let Some(bad) = src.find(|c: char| c.is_whitespace() || c.is_control()) {
            let at = self.string_pos(raw.span(), src, bad);
            return Err(self.src.error_at(
                at,
                "`path` cannot contain spaces or control characters: percent-encode them",
            ));
        }
        self.template(raw, resolve)
    }

    /// A step's `headers`: valid names that clw-cli does not set itself,
    /// values without line breaks, each compiled as a template.
    fn step_headers(
        &self,
        raw: &BTreeMap<String, Spanned<String>>,
        resolve: &mut dyn FnMut(&str) -> Result<Slot, String>,
    ) -> Result<Vec<(String, Template)>, ScenarioError> {
        let mut headers = Vec::with_capacity(raw.len());
        for (name, value) in raw {
            if !is_header_name(name) {
                return Err(self.at(value, format!("`{name}` is not a valid header name")));
            }
            if RESERVED_HEADERS
                .iter()
                .any(|r| r.eq_ignore_ascii_case(name))
            {
                return Err(self.at(value, format!("header `{name}` is set by clw-cli itself")));
            }
            if let Some(bad) = value.get_ref().find(['\r', '\n']) {
                let at = self.string_pos(value.span(), value.get_ref(), bad);
                return Err(self
                    .src
                    .error_at(at, "header values cannot contain line breaks"));
            }
            headers.push((name.clone(), self.template(value, resolve)?));
        }
        Ok(headers)
    }

    /// A step's JSON `body`, compiled with its templates; errors point at
    /// the offending string inside the body table when it can be found.
    fn step_body(
        &self,
        raw: Option<&Spanned<toml::Value>>,
        resolve: &mut dyn FnMut(&str) -> Result<Slot, String>,
    ) -> Result<Option<Template>, ScenarioError> {
        let Some(b) = raw else {
            return Ok(None);
        };
        body::compile(b.get_ref(), resolve).map(Some).map_err(|e| {
            let at = match &e.value {
                Some(v) => self
                    .find_in(b.span(), v)
                    .map_or(b.span().start, |p| p + e.error.offset),
                None => b.span().start,
            };
            self.src.error_at(at, e.error.message)
        })
    }

    /// A step's `capture` table: variable names that are not built-ins,
    /// each with a field name or JSON pointer into the response.
    fn step_captures(
        &mut self,
        raw: &BTreeMap<String, Spanned<String>>,
    ) -> Result<Vec<Capture>, ScenarioError> {
        let mut captures = Vec::with_capacity(raw.len());
        for (name, selector) in raw {
            if !is_identifier(name) || is_builtin(name) {
                return Err(self.at(
                    selector,
                    format!("cannot capture into `{name}`: expected a name of letters, digits and `_` that is not a built-in ({BUILTINS})"),
                ));
            }
            let pointer = match selector.get_ref().as_str() {
                "" => return Err(self.at(selector, "empty capture selector: expected a field name such as \"token\" or a JSON pointer such as \"/data/token\"")),
                s if s.starts_with('/') => s.to_string(),
                s => format!("/{}", s.replace('~', "~0").replace('/', "~1")),
            };
            captures.push(Capture {
                slot: self.slot(name),
                name: name.clone(),
                pointer,
            });
        }
        Ok(captures)
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

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
