//! `--header 'Name: value'` (wrk's, oha's and curl's `-H`): a header sent
//! with every request of the run, for what a staging deployment asks of
//! every client and no scenario file should carry (an API gateway's key, a
//! tenant or routing header, a `Host` for virtual hosting).

use super::template::{Builder, Escape, Template};
use super::Scenario;

/// Headers the engine writes itself from the request: a second copy would
/// make the request ambiguous to the server.
const ENGINE_HEADERS: [&str; 4] = [
    "content-length",
    "transfer-encoding",
    "connection",
    "content-type",
];

/// One `--header`. The value is sent as written (no `{placeholders}`), and
/// never recorded in the run folder: it may be a credential.
#[derive(Clone, PartialEq, Eq)]
pub struct HeaderFlag {
    pub name: String,
    pub value: String,
}

impl std::fmt::Debug for HeaderFlag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: <{} bytes>", self.name, self.value.len())
    }
}

impl HeaderFlag {
    /// `Host` replaces the target's authority in the Host header.
    pub(crate) fn is_host(&self) -> bool {
        self.name.eq_ignore_ascii_case("host")
    }

    /// The flags that take effect: one per name (compared without case),
    /// the last flag's value in the first one's place, as curl lets a later
    /// `-H` replace an earlier one. Every reader of `--header` goes by it.
    pub(crate) fn effective(headers: &[HeaderFlag]) -> Vec<&HeaderFlag> {
        let mut out: Vec<&HeaderFlag> = Vec::new();
        for h in headers {
            match out
                .iter_mut()
                .find(|o| o.name.eq_ignore_ascii_case(&h.name))
            {
                Some(earlier) => *earlier = h,
                None => out.push(h),
            }
        }
        out
    }
}

impl std::str::FromStr for HeaderFlag {
    type Err = String;

    fn from_str(text: &str) -> Result<HeaderFlag, String> {
        let Some((name, value)) = text.split_once(':') else {
            return Err("it is not `Name: value` (no `:`)".into());
        };
        let name = name.trim();
        if !super::parse::is_header_name(name) {
            return Err(format!("`{name}` is not a valid header name"));
        }
        if ENGINE_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name)) {
            return Err(format!(
                "header `{name}` is set by clw-cli itself from each request"
            ));
        }
        let value = value.trim();
        if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(format!(
                "the value of header `{name}` contains a line break or NUL"
            ));
        }
        Ok(HeaderFlag {
            name: name.to_string(),
            value: value.to_string(),
        })
    }
}

impl Scenario {
    /// Add each `--header` (but `Host`) to every step that does not set
    /// that header itself: a step's own header is the more specific, as a
    /// k6 request's params override the defaults. A later flag of the same
    /// name replaces an earlier one, as curl does.
    pub(crate) fn with_headers(mut self, headers: &[HeaderFlag]) -> Scenario {
        let last: Vec<&HeaderFlag> = HeaderFlag::effective(headers)
            .into_iter()
            .filter(|h| !h.is_host())
            .collect();
        for step in self.flows.iter_mut().flat_map(|f| f.steps.iter_mut()) {
            for h in &last {
                if !step
                    .headers
                    .iter()
                    .any(|(n, _)| n.eq_ignore_ascii_case(&h.name))
                {
                    step.headers.push((h.name.clone(), literal(&h.value)));
                }
            }
            step.headers.sort_by(|a, b| a.0.cmp(&b.0));
        }
        self
    }
}

/// A template that renders `text` as is (a `{` in it is not a placeholder).
fn literal(text: &str) -> Template {
    let mut b = Builder::new(Escape::Verbatim);
    b.push_raw(text.as_bytes());
    b.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn parses_name_and_value_and_refuses_what_would_break_the_request() {
        let h: HeaderFlag = "X-Api-Key:  k{1} ".parse().unwrap();
        assert_eq!((h.name.as_str(), h.value.as_str()), ("X-Api-Key", "k{1}"));
        assert!(!format!("{h:?}").contains("k{1}"), "Debug hides the value");
        assert!("Host: a.example".parse::<HeaderFlag>().unwrap().is_host());
        for (text, why) in [
            ("X-Api-Key k1", "is not `Name: value`"),
            ("Bad Name: x", "not a valid header name"),
            (": x", "not a valid header name"),
            ("content-length: 3", "set by clw-cli itself"),
            ("Connection: close", "set by clw-cli itself"),
        ] {
            let err = text.parse::<HeaderFlag>().unwrap_err();
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn every_step_gets_the_header_unless_it_sets_its_own() {
        let src = r#"
name = "h"
[[steps]]
name = "own"
method = "GET"
path = "/a"
headers = { x-api-key = "step", B = "1" }
[[steps]]
name = "plain"
method = "GET"
path = "/b"
"#;
        let s = Scenario::parse(src, Path::new("h.toml")).unwrap();
        let flags: Vec<HeaderFlag> = ["X-Api-Key: old", "Host: h.example", "X-Api-Key: {new}"]
            .iter()
            .map(|t| t.parse().unwrap())
            .collect();
        let effective: Vec<(&str, &str)> = HeaderFlag::effective(&flags)
            .iter()
            .map(|h| (h.name.as_str(), h.value.as_str()))
            .collect();
        assert_eq!(
            effective,
            [("X-Api-Key", "{new}"), ("Host", "h.example")],
            "one per name, the last value in the first place"
        );
        let s = s.with_headers(&flags);
        let rendered = |step: usize| -> Vec<(String, String)> {
            s.flows[0].steps[step]
                .headers
                .iter()
                .map(|(n, t)| {
                    let text = t.as_static().expect("literal values");
                    (n.clone(), String::from_utf8(text.to_vec()).unwrap())
                })
                .collect()
        };
        assert_eq!(
            rendered(0),
            [
                ("B".into(), "1".into()),
                ("x-api-key".into(), "step".into())
            ],
            "the step's own header wins"
        );
        assert_eq!(
            rendered(1),
            [("X-Api-Key".into(), "{new}".into())],
            "the last flag, literally; Host is not a step header"
        );
    }
}
