//! Captures: values a step takes from its response for later steps (a
//! token, a CSRF field, a session cookie, a redirect's `Location`).
//!
//! A capture reads one place of the response: a JSON field or pointer
//! (`token = "access_token"`, the form API clients need), a header
//! (`{ header = "Location" }`), a cookie as the virtual user's jar holds it
//! after the response (`{ cookie = "session" }`), or the body
//! (`{ regex = '...' }`, for HTML forms). A `regex` may narrow any of them:
//! the first group when it has one, else the whole match, as k6's and
//! Gatling's extractors do.

use regex::bytes::Regex;

use super::vars::{Slot, VarStore};

/// Where in the response a capture reads.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// RFC 6901 pointer into the JSON body (a bare field name `token` is
    /// normalised to `/token`).
    Json(String),
    /// The first response header of this name (case-insensitive).
    Header(String),
    /// The cookie of this name after the response was stored.
    Cookie(String),
    /// The whole body (with a regex).
    Body,
}

impl Source {
    /// The place as messages name it: `JSON field /token`, `header
    /// Location`, `cookie session`, `the body`.
    fn place(&self) -> String {
        match self {
            Source::Json(p) => format!("JSON field {p}"),
            Source::Header(h) => format!("header {h}"),
            Source::Cookie(k) => format!("cookie {k}"),
            Source::Body => "the body".to_string(),
        }
    }
}

/// "Put what `source` (narrowed by `regex`) holds into variable `slot`".
#[derive(Debug, Clone)]
pub(crate) struct Capture {
    /// Where the value goes.
    pub(crate) slot: Slot,
    /// The variable's name, for error messages.
    pub(crate) name: String,
    pub(crate) source: Source,
    /// Applied to what `source` read: first group, or the whole match.
    pub(crate) regex: Option<Regex>,
    /// The selector as the scenario wrote it (`cookie "session"`,
    /// `regex 'name="csrf"...'`), for the run's error line.
    pub(crate) selector: String,
}

/// The response as captures see it; the engine's response type and a
/// test's stand-in both implement it.
pub(crate) trait Reply {
    fn body(&self) -> &[u8];
    /// The first header named `name` (case-insensitive).
    fn header(&self, name: &str) -> Option<&[u8]>;
    /// The value of cookie `name` as the jar holds it after this response
    /// (or as the response set it, when the jar is off).
    fn cookie(&self, name: &str) -> Option<Vec<u8>>;
}

/// A reply that is only a body, for tests of JSON captures.
#[cfg(test)]
pub(crate) struct BodyOnly<'a>(pub(crate) &'a [u8]);

#[cfg(test)]
impl Reply for BodyOnly<'_> {
    fn body(&self) -> &[u8] {
        self.0
    }
    fn header(&self, _: &str) -> Option<&[u8]> {
        None
    }
    fn cookie(&self, _: &str) -> Option<Vec<u8>> {
        None
    }
}

/// Why a capture failed; the engine counts it as a failed request of kind
/// `capture-failed` and keeps the first reason per capture for the run's
/// error line.
#[derive(Debug, thiserror::Error, PartialEq)]
pub(crate) enum CaptureError {
    #[error("the response body is not JSON ({0})")]
    NotJson(String),
    #[error("the response has no {0}")]
    Missing(String),
    #[error("the regex did not match {0}")]
    NoMatch(String),
}

/// Store every capture's value into `vars`; stops at the first that
/// fails, returning its index in `captures` with the reason.
///
/// JSON strings are stored without quotes; numbers and booleans as their
/// JSON text; objects, arrays and null as their JSON text too (rarely
/// useful, but never silently empty). The body is parsed as JSON at most
/// once, and only when a capture reads JSON.
pub(crate) fn capture_into(
    captures: &[Capture],
    reply: &dyn Reply,
    vars: &mut VarStore,
) -> Result<(), (usize, CaptureError)> {
    let mut doc: Option<serde_json::Value> = None;
    for (i, c) in captures.iter().enumerate() {
        let owned: Vec<u8>;
        let read: &[u8] = match &c.source {
            Source::Json(pointer) => {
                if doc.is_none() {
                    doc = Some(
                        serde_json::from_slice(reply.body())
                            .map_err(|e| (i, CaptureError::NotJson(e.to_string())))?,
                    );
                }
                match doc.as_ref().and_then(|d| d.pointer(pointer)) {
                    Some(serde_json::Value::String(s)) => {
                        owned = s.as_bytes().to_vec();
                        &owned
                    }
                    Some(other) => {
                        owned = other.to_string().into_bytes();
                        &owned
                    }
                    None => return Err((i, CaptureError::Missing(c.source.place()))),
                }
            }
            Source::Header(name) => reply
                .header(name)
                .ok_or_else(|| (i, CaptureError::Missing(c.source.place())))?,
            Source::Cookie(name) => {
                owned = reply
                    .cookie(name)
                    .ok_or_else(|| (i, CaptureError::Missing(c.source.place())))?;
                &owned
            }
            Source::Body => reply.body(),
        };
        let value = match &c.regex {
            None => read,
            Some(re) => {
                let caps = re
                    .captures(read)
                    .ok_or_else(|| (i, CaptureError::NoMatch(c.source.place())))?;
                caps.get(1)
                    .or_else(|| caps.get(0))
                    .map_or(&b""[..], |m| m.as_bytes())
            }
        };
        vars.set(c.slot, value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake {
        body: &'static [u8],
        headers: Vec<(&'static str, &'static [u8])>,
        cookies: Vec<(&'static str, &'static str)>,
    }

    impl Reply for Fake {
        fn body(&self) -> &[u8] {
            self.body
        }
        fn header(&self, name: &str) -> Option<&[u8]> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| *v)
        }
        fn cookie(&self, name: &str) -> Option<Vec<u8>> {
            self.cookies
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_bytes().to_vec())
        }
    }

    fn cap(slot: u16, source: Source, regex: Option<&str>) -> Capture {
        Capture {
            slot: Slot(slot),
            name: format!("v{slot}"),
            source,
            regex: regex.map(|r| Regex::new(r).unwrap()),
            selector: String::new(),
        }
    }

    fn reply() -> Fake {
        Fake {
            body: br#"<form><input type="hidden" name="csrf_token" value="t0k3n"></form>"#,
            headers: vec![
                ("Location", b"/me"),
                ("Set-Cookie", b"sid=abc123; Path=/; HttpOnly"),
            ],
            cookies: vec![("session", "s%3Aabc")],
        }
    }

    #[test]
    fn header_cookie_and_regex_captures_read_their_place() {
        let mut vars = VarStore::new(5);
        capture_into(
            &[
                cap(0, Source::Header("location".into()), None),
                cap(1, Source::Cookie("session".into()), None),
                cap(
                    2,
                    Source::Body,
                    Some(r#"name="csrf_token" value="([^"]+)""#),
                ),
                cap(3, Source::Header("set-cookie".into()), Some("sid=([^;]+)")),
                // No group: the whole match.
                cap(4, Source::Body, Some("t0k[0-9]n")),
            ],
            &reply(),
            &mut vars,
        )
        .unwrap();
        assert_eq!(vars.get(Slot(0)), Some(&b"/me"[..]));
        assert_eq!(vars.get(Slot(1)), Some(&b"s%3Aabc"[..]));
        assert_eq!(vars.get(Slot(2)), Some(&b"t0k3n"[..]));
        assert_eq!(vars.get(Slot(3)), Some(&b"abc123"[..]));
        assert_eq!(vars.get(Slot(4)), Some(&b"t0k3n"[..]));
    }

    #[test]
    fn json_captures_top_level_and_nested_fields() {
        let mut vars = VarStore::new(2);
        let r = Fake {
            body: br#"{"token":"abc","data":{"n":5}}"#,
            headers: vec![],
            cookies: vec![],
        };
        capture_into(
            &[
                cap(0, Source::Json("/token".into()), None),
                cap(1, Source::Json("/data/n".into()), None),
            ],
            &r,
            &mut vars,
        )
        .unwrap();
        assert_eq!(vars.get(Slot(0)), Some(&b"abc"[..]));
        assert_eq!(vars.get(Slot(1)), Some(&b"5"[..]));
    }

    #[test]
    fn misses_say_which_capture_and_why() {
        let mut vars = VarStore::new(3);
        let r = reply();
        let e = capture_into(
            &[
                cap(0, Source::Header("location".into()), None),
                cap(1, Source::Cookie("sid".into()), None),
            ],
            &r,
            &mut vars,
        )
        .unwrap_err();
        assert_eq!(e, (1, CaptureError::Missing("cookie sid".into())));
        let e = capture_into(&[cap(2, Source::Body, Some("nope(x)"))], &r, &mut vars).unwrap_err();
        assert_eq!(e, (0, CaptureError::NoMatch("the body".into())));
        let e =
            capture_into(&[cap(2, Source::Json("/t".into()), None)], &r, &mut vars).unwrap_err();
        assert!(matches!(e, (0, CaptureError::NotJson(_))), "{e:?}");
        assert_eq!(vars.get(Slot(2)), None);
    }
}
