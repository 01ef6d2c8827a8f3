//! One step, compiled: the request it sends (path, headers, one body of
//! three kinds, basic auth, how many redirects it follows) and what it
//! captures from the response.
//!
//! The request is fixed here so the engine never decides anything per
//! request: which `Content-Type` goes on the wire (the step's own header
//! replaces the engine's, never joins it), whether an `Authorization`
//! header is the step's or `basic_auth`'s (not both), which variables are
//! known.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use toml::Spanned;

use super::super::body;
use super::super::capture::{Capture, Source};
use super::super::error::ScenarioError;
use super::super::model::{BasicAuth, Body, StatusSet, Step};
use super::super::raw::RawStep;
use super::super::template::{is_builtin, is_identifier, Builder, Escape, Template, BUILTINS};
use super::super::vars::Slot;
use super::{default_step_name, is_header_name, Compiler, RESERVED_HEADERS};

/// A template resolver: variable name to slot, or why not.
type Resolve<'r> = dyn FnMut(&str) -> Result<Slot, String> + 'r;

/// Keys of a capture table.
const CAPTURE_KEYS: &str = "`header`, `cookie` or `regex` (a regex alone reads the body)";

impl Compiler<'_> {
    pub(super) fn step(
        &mut self,
        flow: &str,
        index: usize,
        raw: &RawStep,
        captured_at: &HashMap<String, usize>,
    ) -> Result<Step, ScenarioError> {
        // Resolve names against this flow's earlier captures and the users
        // file's columns. Slots are allocated up front so the closure needs
        // no `&mut self`.
        let known: HashMap<&str, (Slot, usize)> = captured_at
            .iter()
            .filter(|(_, &at)| at < index)
            .map(|(name, &at)| (name.as_str(), (self.slot(name), at)))
            .collect();
        let columns: HashMap<String, Slot> = self
            .columns
            .clone()
            .into_iter()
            .map(|c| {
                let slot = self.slot(&c);
                (c, slot)
            })
            .collect();
        let mut uses: Vec<(Slot, usize)> = Vec::new();
        let mut resolve = |name: &str| -> Result<Slot, String> {
            if let Some(&(slot, at)) = known.get(name) {
                uses.push((slot, at));
                return Ok(slot);
            }
            if let Some(&slot) = columns.get(name) {
                return Ok(slot);
            }
            Err(match captured_at.get(name) {
                Some(&at) if at == index => {
                    format!("`{name}` is captured by this same step, so it is not set yet when the request is built")
                }
                Some(&at) => format!("`{name}` is captured only by a later step (step {}); a step can use only variables captured before it", at + 1),
                None => format!("undefined variable `{name}`: no earlier step in flow `{flow}` captures it and no [users] file column has that name; expected one of {BUILTINS}"),
            })
        };

        let path = self.step_path(&raw.path, &mut resolve)?;
        let headers = self.step_headers(&raw.headers, &mut resolve)?;
        let body = self.step_body(raw, &headers, &mut resolve)?;
        let basic_auth = self.step_basic_auth(raw, &headers, &mut resolve)?;
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
            path_from_var: raw.path.get_ref().starts_with('{')
                && !raw.path.get_ref().starts_with("{{"),
            path,
            headers,
            body,
            basic_auth,
            follow_redirects: raw
                .follow_redirects
                .as_ref()
                .map_or(self.follow_redirects, |n| *n.get_ref()),
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

    /// A step's `path`: starts with `/` (or a variable holding a captured
    /// `Location`), no spaces or control characters, compiled as a template.
    fn step_path(
        &self,
        raw: &Spanned<String>,
        resolve: &mut Resolve<'_>,
    ) -> Result<Template, ScenarioError> {
        let src = raw.get_ref();
        // `{next}`: a captured `Location`, relative or absolute on the
        // target's origin (the engine keeps its path and query).
        let from_var = src.starts_with('{') && !src.starts_with("{{");
        if !src.starts_with('/') && !from_var {
            return Err(self.at(
                raw,
                format!("`path` must start with `/` or with a variable such as `{{next}}`, found \"{src}\""),
            ));
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
        resolve: &mut Resolve<'_>,
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
            if name.eq_ignore_ascii_case("cookie") {
                return Err(self.at(
                    value,
                    "header `Cookie` is the cookie jar's: capture the value and send it under another name, or set `[http] cookies = false` and use `{ cookie = ... }` captures",
                ));
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

    /// A step's body: JSON `body`, urlencoded `form` or `raw` text (at most
    /// one), and the Content-Type the engine sends with it, unless the
    /// step's headers carry their own.
    fn step_body(
        &self,
        raw: &RawStep,
        headers: &[(String, Template)],
        resolve: &mut Resolve<'_>,
    ) -> Result<Option<Body>, ScenarioError> {
        let mut given: Vec<usize> = [
            raw.body.as_ref().map(|b| b.span().start),
            raw.form.as_ref().map(|f| f.span().start),
            raw.raw.as_ref().map(|r| r.span().start),
        ]
        .into_iter()
        .flatten()
        .collect();
        // Point at the second one in the file.
        given.sort_unstable();
        if given.len() > 1 {
            return Err(self.src.error_at(
                given[1],
                "a step has one body: `body` (JSON), `form` (urlencoded) or `raw` (with `content_type`), not several",
            ));
        }
        let (template, content_type) = if let Some(b) = &raw.body {
            (self.json_body(b, resolve)?, Some("application/json"))
        } else if let Some(f) = &raw.form {
            (
                self.form_body(f.get_ref(), resolve)?,
                Some("application/x-www-form-urlencoded"),
            )
        } else if let Some(r) = &raw.raw {
            (
                self.template_as(r, Escape::Verbatim, resolve)?,
                raw.content_type.as_ref().map(|c| c.get_ref().as_str()),
            )
        } else {
            if let Some(c) = &raw.content_type {
                return Err(self.at(c, "`content_type` without a body: add `raw`, `form` or `body`, or send the header with `headers`"));
            }
            return Ok(None);
        };
        let content_type = match &raw.content_type {
            Some(c) if c.get_ref().contains(['\r', '\n']) || c.get_ref().is_empty() => {
                return Err(self.at(c, "`content_type` must be one non-empty line"))
            }
            Some(c) => Some(c.get_ref().as_str()),
            None => content_type,
        };
        let own = headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-type"));
        if let (true, Some(c)) = (own, &raw.content_type) {
            return Err(self.at(
                c,
                "both `content_type` and a `Content-Type` header: keep one",
            ));
        }
        Ok(Some(Body {
            template,
            content_type: if own {
                None
            } else {
                content_type.map(Into::into)
            },
        }))
    }

    /// A step's JSON `body`, compiled with its templates; errors point at
    /// the offending string inside the body table when it can be found.
    fn json_body(
        &self,
        b: &Spanned<toml::Value>,
        resolve: &mut Resolve<'_>,
    ) -> Result<Template, ScenarioError> {
        body::compile(b.get_ref(), resolve).map_err(|e| {
            let at = match &e.value {
                Some(v) => self
                    .find_in(b.span(), v)
                    .map_or(b.span().start, |p| p + e.error.offset),
                None => b.span().start,
            };
            self.src.error_at(at, e.error.message)
        })
    }

    /// `form = { name = "value", ... }`: `name=value&...` with names and
    /// every templated value percent-encoded as a browser encodes a form.
    fn form_body(
        &self,
        fields: &BTreeMap<String, Spanned<toml::Value>>,
        resolve: &mut Resolve<'_>,
    ) -> Result<Template, ScenarioError> {
        let encode = |text: &str| -> Vec<u8> {
            form_urlencoded::byte_serialize(text.as_bytes())
                .flat_map(str::bytes)
                .collect()
        };
        let mut b = Builder::new(Escape::Form);
        for (i, (name, value)) in fields.iter().enumerate() {
            if i > 0 {
                b.push_raw(b"&");
            }
            b.push_raw(&encode(name));
            b.push_raw(b"=");
            let text = match value.get_ref() {
                toml::Value::String(s) => {
                    b.push_template(s, resolve).map_err(|e| {
                        self.src
                            .error_at(self.string_pos(value.span(), s, e.offset), e.message)
                    })?;
                    continue;
                }
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(v) => v.to_string(),
                other => {
                    return Err(self.at(
                        value,
                        format!(
                            "form field `{name}` must be a string, number or boolean, not {}",
                            other.type_str()
                        ),
                    ))
                }
            };
            b.push_raw(&encode(&text));
        }
        Ok(b.finish())
    }

    /// `basic_auth = { username, password }`; a step that also sets
    /// `Authorization` would send two.
    fn step_basic_auth(
        &self,
        raw: &RawStep,
        headers: &[(String, Template)],
        resolve: &mut Resolve<'_>,
    ) -> Result<Option<BasicAuth>, ScenarioError> {
        let Some(b) = &raw.basic_auth else {
            return Ok(None);
        };
        if headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("authorization"))
        {
            return Err(self.at(
                b,
                "both `basic_auth` and an `Authorization` header: keep one",
            ));
        }
        let b = b.get_ref();
        Ok(Some(BasicAuth {
            username: self.template(&b.username, resolve)?,
            password: self.template(&b.password, resolve)?,
        }))
    }

    /// A step's `capture` table: variable names that are not built-ins or
    /// users file columns, each with a selector.
    fn step_captures(
        &mut self,
        raw: &BTreeMap<String, Spanned<toml::Value>>,
    ) -> Result<Vec<Capture>, ScenarioError> {
        let mut captures = Vec::with_capacity(raw.len());
        for (name, selector) in raw {
            if !is_identifier(name) || is_builtin(name) {
                return Err(self.at(
                    selector,
                    format!("cannot capture into `{name}`: expected a name of letters, digits and `_` that is not a built-in ({BUILTINS})"),
                ));
            }
            if self.columns.iter().any(|c| c == name) {
                return Err(self.at(
                    selector,
                    format!("cannot capture into `{name}`: it is a column of the [users] file"),
                ));
            }
            let (source, regex, label) = self.selector(selector)?;
            captures.push(Capture {
                slot: self.slot(name),
                name: name.clone(),
                source,
                regex,
                selector: label,
            });
        }
        Ok(captures)
    }

    /// One capture's selector: `"field"` / `"/json/pointer"`, or a table of
    /// `header`, `cookie` and `regex`. Returns the source, the regex and the
    /// selector as written, for messages.
    fn selector(
        &self,
        selector: &Spanned<toml::Value>,
    ) -> Result<(Source, Option<regex::bytes::Regex>, String), ScenarioError> {
        let table = match selector.get_ref() {
            toml::Value::String(s) => {
                let pointer = match s.as_str() {
                    "" => return Err(self.at(selector, "empty capture selector: expected a field name such as \"token\" or a JSON pointer such as \"/data/token\"")),
                    s if s.starts_with('/') => s.to_string(),
                    s => format!("/{}", s.replace('~', "~0").replace('/', "~1")),
                };
                return Ok((Source::Json(pointer), None, format!("JSON field \"{s}\"")));
            }
            toml::Value::Table(t) => t,
            other => {
                return Err(self.at(
                    selector,
                    format!("a capture is a JSON field name (a string) or a table of {CAPTURE_KEYS}, not {}", other.type_str()),
                ))
            }
        };
        let mut source = None;
        let mut regex = None;
        let mut label = Vec::new();
        for (key, value) in table {
            let toml::Value::String(text) = value else {
                return Err(self.at(selector, format!("capture `{key}` must be a string")));
            };
            if text.is_empty() {
                return Err(self.at(selector, format!("capture `{key}` is empty")));
            }
            match key.as_str() {
                "header" | "cookie" if source.is_some() => {
                    return Err(self.at(
                        selector,
                        "a capture reads one place: `header` or `cookie`, not both",
                    ))
                }
                "header" => source = Some(Source::Header(text.clone())),
                "cookie" => source = Some(Source::Cookie(text.clone())),
                "regex" => {
                    regex = Some(regex::bytes::Regex::new(text).map_err(|e| {
                        self.at(selector, format!("capture regex does not compile: {e}"))
                    })?)
                }
                _ => {
                    return Err(self.at(
                        selector,
                        format!("unknown capture key `{key}`: expected {CAPTURE_KEYS}"),
                    ))
                }
            }
            label.push(format!("{key} {text:?}"));
        }
        let source = match (source, &regex) {
            (Some(s), _) => s,
            (None, Some(_)) => Source::Body,
            (None, None) => {
                return Err(self.at(selector, format!("empty capture: expected {CAPTURE_KEYS}")))
            }
        };
        // `header` / `cookie` first, then `regex`, whatever the key order.
        label.sort_by_key(|l| l.starts_with("regex"));
        Ok((source, regex, label.join(" ")))
    }

    /// Compile string value `s` as a template escaping as `escape` says,
    /// pointing errors at the offending character.
    fn template_as(
        &self,
        s: &Spanned<String>,
        escape: Escape,
        resolve: &mut Resolve<'_>,
    ) -> Result<Template, ScenarioError> {
        Template::compile_as(s.get_ref(), escape, resolve).map_err(|e| {
            self.src
                .error_at(self.string_pos(s.span(), s.get_ref(), e.offset), e.message)
        })
    }
}
