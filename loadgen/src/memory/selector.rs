//! `--memory-metric` / `--limit-metric`: a Prometheus series selector
//! (`container_memory_working_set_bytes{pod=~"auth-.*",container="auth"}`)
//! picking the service's memory out of a /metrics page, and the rule that
//! turns several matching series into one figure.
//!
//! The selector is parsed by promql-parser, so it means what it means to
//! Prometheus: `=`, `!=`, `=~`, `!~`, regexes anchored at both ends, an
//! absent label equal to "".

use promql_parser::label::Matcher;
use promql_parser::parser::Expr;

use super::exposition::{self, Sample};
use crate::memory::MemoryAggregate;
use crate::outcome::FlagError;

/// A parsed instant-vector selector.
#[derive(Debug, Clone)]
pub(crate) struct Selector {
    /// As the user wrote it, for messages.
    text: String,
    name: Option<String>,
    /// All must match...
    matchers: Vec<Matcher>,
    /// ...or all of one of these groups (`{a="x" or b="y"}`).
    or_matchers: Vec<Vec<Matcher>>,
}

/// No series on the page matched: says which selector, and what was there.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("`{selector}` matched no series; the page had {}", present_list(.present, *.more))]
pub(crate) struct NoMatch {
    pub(crate) selector: String,
    /// A few metric names that were present (memory-looking ones first).
    pub(crate) present: Vec<String>,
    /// How many other names were present.
    pub(crate) more: usize,
}

fn present_list(present: &[String], more: usize) -> String {
    match (present.is_empty(), more) {
        (true, _) => "no samples at all".into(),
        (false, 0) => present.join(", "),
        (false, more) => format!("{} and {more} more", present.join(", ")),
    }
}

/// Names listed in a [`NoMatch`].
const LISTED: usize = 6;

/// Why a text is not a selector of one /metrics page.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SelectorError {
    #[error("`{text}` is not a Prometheus selector: {reason}")]
    NotPromQl { text: String, reason: String },
    #[error("`{0}` is not a series selector such as `name{{label=\"value\"}}` (no functions, operators, offset or @ on a /metrics page)")]
    NotASelector(String),
}

impl Selector {
    /// Parses `text` as a PromQL instant-vector selector (no offset, no @,
    /// no functions: one /metrics page has no history).
    pub(crate) fn parse(text: &str) -> Result<Selector, SelectorError> {
        let expr =
            promql_parser::parser::parse(text).map_err(|reason| SelectorError::NotPromQl {
                text: text.to_string(),
                reason,
            })?;
        match expr {
            Expr::VectorSelector(vs) if vs.offset.is_none() && vs.at.is_none() => Ok(Selector {
                text: text.trim().to_string(),
                name: vs.name,
                matchers: vs.matchers.matchers,
                or_matchers: vs.matchers.or_matchers,
            }),
            _ => Err(SelectorError::NotASelector(text.to_string())),
        }
    }

    /// As written.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    pub(crate) fn matches(&self, sample: &Sample) -> bool {
        let all = |ms: &[Matcher]| ms.iter().all(|m| m.is_match(sample.label(&m.name)));
        self.name.as_deref().is_none_or(|n| n == sample.name)
            && all(&self.matchers)
            && (self.or_matchers.is_empty() || self.or_matchers.iter().any(|g| all(g)))
    }

    /// The matching series of a /metrics page, aggregated.
    pub(crate) fn pick(&self, text: &str, how: MemoryAggregate) -> Result<f64, NoMatch> {
        let values = exposition::samples(text)
            .filter(|s| self.matches(s))
            .map(|s| s.value);
        aggregate(values, how).ok_or_else(|| self.no_match(text))
    }

    fn no_match(&self, text: &str) -> NoMatch {
        let mut names: Vec<&str> = exposition::samples(text).map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        // Memory series first: they are what the user was looking for.
        names.sort_by_key(|n| !n.contains("memory"));
        let more = names.len().saturating_sub(LISTED);
        NoMatch {
            selector: self.text.clone(),
            present: names.into_iter().take(LISTED).map(String::from).collect(),
            more,
        }
    }
}

/// `--heap-metric` / `--logins-metric`: a service's own gauges that stand
/// in for clw-auth's allocator gauge and login counter. Matching series are
/// summed (a JVM has one heap series per pool).
#[derive(Debug, Clone, Default)]
pub(crate) struct Gauges {
    pub(crate) heap: Option<Selector>,
    pub(crate) logins: Option<Selector>,
}

impl Gauges {
    /// Parsed from the flags; `Err` names the flag.
    pub(crate) fn parse(heap: Option<&str>, logins: Option<&str>) -> Result<Gauges, FlagError> {
        let parse = |flag: &'static str, text: Option<&str>| {
            text.map(|t| Selector::parse(t).map_err(|e| FlagError::new(flag, e)))
                .transpose()
        };
        Ok(Gauges {
            heap: parse("--heap-metric", heap)?,
            logins: parse("--logins-metric", logins)?,
        })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.heap.is_none() && self.logins.is_none()
    }

    /// The heap and login figures of a page, each summed over the series
    /// its selector matches; a selector matching nothing is an error naming
    /// its flag and what the page had.
    pub(crate) fn pick(&self, text: &str) -> Result<(Option<f64>, Option<f64>), String> {
        let pick = |flag: &str, sel: &Option<Selector>| {
            sel.as_ref()
                .map(|s| s.pick(text, MemoryAggregate::Sum))
                .transpose()
                .map_err(|e| format!("{flag}: {e}"))
        };
        Ok((
            pick("--heap-metric", &self.heap)?,
            pick("--logins-metric", &self.logins)?,
        ))
    }
}

/// Sum or max of `values`; `None` when there are none.
pub(crate) fn aggregate(values: impl Iterator<Item = f64>, how: MemoryAggregate) -> Option<f64> {
    values.fold(None, |acc, v| {
        Some(match (acc, how) {
            (None, _) => v,
            (Some(a), MemoryAggregate::Sum) => a + v,
            (Some(a), MemoryAggregate::Max) => a.max(v),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kubelet's cAdvisor page: two replicas of auth (each with its
    /// container, the pause container and the pod-level cgroup) and another
    /// service.
    const CADVISOR: &str = r#"
# TYPE container_memory_working_set_bytes gauge
container_memory_working_set_bytes{container="",id="/kubepods/pod1",namespace="prod",pod="auth-7f9-abc"} 210000000
container_memory_working_set_bytes{container="auth",id="/kubepods/pod1/c1",namespace="prod",pod="auth-7f9-abc"} 200000000
container_memory_working_set_bytes{container="POD",id="/kubepods/pod1/p",namespace="prod",pod="auth-7f9-abc"} 700000
container_memory_working_set_bytes{container="auth",id="/kubepods/pod2/c1",namespace="prod",pod="auth-7f9-def"} 150000000
container_memory_working_set_bytes{container="auth",id="/kubepods/pod3/c1",namespace="prod",pod="oauth-1"} 999000000
container_spec_memory_limit_bytes{container="auth",namespace="prod",pod="auth-7f9-abc"} 268435456
container_spec_memory_limit_bytes{container="auth",namespace="prod",pod="auth-7f9-def"} 268435456
machine_memory_bytes 2.5e10
up 1
"#;

    fn pick(selector: &str, how: MemoryAggregate) -> Result<f64, NoMatch> {
        Selector::parse(selector).unwrap().pick(CADVISOR, how)
    }

    #[test]
    fn matchers_are_prometheus_matchers_regexes_anchored() {
        let sel = r#"container_memory_working_set_bytes{pod=~"auth-.*",container="auth"}"#;
        // Anchored: `auth-.*` does not match `oauth-1`.
        assert_eq!(pick(sel, MemoryAggregate::Max), Ok(200e6));
        assert_eq!(pick(sel, MemoryAggregate::Sum), Ok(350e6));
        let not = r#"container_memory_working_set_bytes{pod!~"auth-.*",container!=""}"#;
        assert_eq!(pick(not, MemoryAggregate::Sum), Ok(999e6));
        let pods = r#"container_memory_working_set_bytes{pod="auth-7f9-abc",container!="",container!="POD"}"#;
        assert_eq!(pick(pods, MemoryAggregate::Sum), Ok(200e6));
        let by_name = r#"{__name__=~"machine_.*"}"#;
        assert_eq!(pick(by_name, MemoryAggregate::Max), Ok(2.5e10));
        let limit = r#"container_spec_memory_limit_bytes{pod=~"auth-.*"}"#;
        assert_eq!(pick(limit, MemoryAggregate::Max), Ok(268435456.0));
    }

    #[test]
    fn no_match_names_the_selector_and_what_was_there() {
        let err = pick(r#"container_memory_rss{pod="auth"}"#, MemoryAggregate::Max).unwrap_err();
        assert_eq!(err.selector, r#"container_memory_rss{pod="auth"}"#);
        assert_eq!(
            err.present,
            [
                "container_memory_working_set_bytes",
                "container_spec_memory_limit_bytes",
                "machine_memory_bytes",
                "up"
            ]
        );
        let text = err.to_string();
        assert!(
            text.starts_with(r#"`container_memory_rss{pod="auth"}` matched no series; the page had container_memory_working_set_bytes, "#),
            "{text}"
        );
        let empty = Selector::parse("up")
            .unwrap()
            .pick("", MemoryAggregate::Max);
        assert!(empty
            .unwrap_err()
            .to_string()
            .ends_with("no samples at all"));
    }

    #[test]
    fn only_plain_selectors_parse() {
        assert!(Selector::parse(r#"up{job="x"}"#).is_ok());
        for bad in [
            "sum(up)",
            "up offset 5m",
            "up[5m]",
            "up{",
            r#"up{a=~"("}"#,
            "1 + 1",
        ] {
            let err = Selector::parse(bad).unwrap_err().to_string();
            assert!(err.contains(bad), "{bad}: {err}");
        }
    }

    #[test]
    fn heap_gauges_sum_every_matching_series() {
        let jvm = r#"
jvm_memory_used_bytes{area="heap",id="G1 Eden Space"} 1000
jvm_memory_used_bytes{area="heap",id="G1 Old Gen"} 2500
jvm_memory_used_bytes{area="nonheap",id="Metaspace"} 90000
http_requests_total{route="/login",code="200"} 7
http_requests_total{route="/login",code="401"} 2
"#;
        let g = Gauges::parse(
            Some(r#"jvm_memory_used_bytes{area="heap"}"#),
            Some(r#"http_requests_total{route="/login",code="200"}"#),
        )
        .unwrap();
        assert_eq!(g.pick(jvm), Ok((Some(3500.0), Some(7.0))));
        let g = Gauges::parse(Some("nodejs_heap_size_used_bytes"), None).unwrap();
        let err = g.pick(jvm).unwrap_err();
        assert!(
            err.starts_with("--heap-metric: `nodejs_heap_size_used_bytes` matched no series; the page had jvm_memory_used_bytes"),
            "{err}"
        );
        let err = Gauges::parse(None, Some("sum(x)")).unwrap_err().to_string();
        assert!(err.starts_with("--logins-metric: "), "{err}");
    }
}
