//! The scenario file exactly as written: serde types that reject unknown
//! keys and keep the spans the compiler needs to point at mistakes.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;

use super::model::{Method, StatusSet};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawScenario {
    pub(crate) name: Spanned<String>,
    /// For people reading the file; accepted so that `deny_unknown_fields`
    /// does not reject it, never used by the engine.
    #[allow(dead_code)]
    pub(crate) description: Option<String>,
    #[serde(default)]
    pub(crate) load: RawLoad,
    #[serde(default)]
    pub(crate) users: RawUsers,
    #[serde(default)]
    pub(crate) http: RawHttp,
    pub(crate) steps: Option<Spanned<Vec<RawStep>>>,
    pub(crate) flows: Option<Spanned<Vec<RawFlow>>>,
    #[serde(default)]
    pub(crate) thresholds: RawThresholds,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLoad {
    pub(crate) users: Option<Spanned<u32>>,
    pub(crate) duration: Option<Spanned<DurationValue>>,
    pub(crate) ramp_up: Option<Spanned<DurationValue>>,
    pub(crate) model: Option<Spanned<RawModel>>,
    pub(crate) arrival_rate: Option<Spanned<f64>>,
    pub(crate) stages: Option<Spanned<Vec<Spanned<RawStage>>>>,
}

/// `[[load.stages]]`: `duration` and `target` (users, or iterations per
/// second in the open model), both required.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStage {
    pub(crate) duration: Spanned<DurationValue>,
    pub(crate) target: Spanned<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawModel {
    Closed,
    Open,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUsers {
    pub(crate) count: Option<Spanned<u64>>,
    pub(crate) username: Option<Spanned<String>>,
    pub(crate) password: Option<Spanned<String>>,
    pub(crate) pick: Option<RawPick>,
    /// A CSV file of accounts, relative to the scenario file.
    pub(crate) file: Option<Spanned<String>>,
}

/// `[http]`: how the virtual users' HTTP clients behave, as a browser or
/// an API client would.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHttp {
    pub(crate) cookies: Option<bool>,
    pub(crate) keep_cookies: Option<Spanned<bool>>,
    pub(crate) follow_redirects: Option<Spanned<u32>>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum RawPick {
    PerVu,
    Random,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFlow {
    pub(crate) name: Spanned<String>,
    pub(crate) weight: Option<Spanned<u32>>,
    pub(crate) steps: Spanned<Vec<RawStep>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStep {
    pub(crate) name: Option<Spanned<String>>,
    pub(crate) method: Spanned<Method>,
    pub(crate) path: Spanned<String>,
    #[serde(default)]
    pub(crate) headers: BTreeMap<String, Spanned<String>>,
    pub(crate) body: Option<Spanned<toml::Value>>,
    pub(crate) form: Option<Spanned<BTreeMap<String, Spanned<toml::Value>>>>,
    pub(crate) raw: Option<Spanned<String>>,
    pub(crate) content_type: Option<Spanned<String>>,
    pub(crate) basic_auth: Option<Spanned<RawBasicAuth>>,
    pub(crate) follow_redirects: Option<Spanned<u32>>,
    /// `name = "field"` or `name = { header | cookie | regex ... }`; kept
    /// as TOML values so the compiler can say which form it expected.
    #[serde(default)]
    pub(crate) capture: BTreeMap<String, Spanned<toml::Value>>,
    pub(crate) expect: Option<Spanned<ExpectValue>>,
    pub(crate) repeat: Option<Spanned<u32>>,
    pub(crate) think_time: Option<Spanned<DurationValue>>,
}

/// `basic_auth = { username = "...", password = "..." }`, both templates.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBasicAuth {
    pub(crate) username: Spanned<String>,
    pub(crate) password: Spanned<String>,
}

/// `[thresholds]`: figure = rule. The figure is a metric or `step.metric`
/// (quoted, or a `[thresholds.<step>]` table); the rule a number (the old
/// form, a ceiling; a floor for `min_throughput_rps`), a condition such as
/// `"< 80"` or `"!= leak"`, or a list of conditions. Kept as TOML values
/// with their spans; the compiler parses each through
/// `clw_run::threshold` and points errors into the file.
pub(crate) type RawThresholds = BTreeMap<Spanned<String>, Spanned<toml::Value>>;

/// A duration written as `"100ms"`/`"5m 30s"` (humantime) or as a number of
/// seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct DurationValue(pub(crate) Duration);

impl<'de> Deserialize<'de> for DurationValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = DurationValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"100ms\", \"30s\", \"5m\" or a number of seconds")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<DurationValue, E> {
                u64::try_from(v)
                    .map(|s| DurationValue(Duration::from_secs(s)))
                    .map_err(|_| E::custom(format!("a duration cannot be negative, found {v}")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<DurationValue, E> {
                Ok(DurationValue(Duration::from_secs(v)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<DurationValue, E> {
                Duration::try_from_secs_f64(v)
                    .map(DurationValue)
                    .map_err(|_| {
                        E::custom(format!(
                            "expected a non-negative number of seconds, found {v}"
                        ))
                    })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DurationValue, E> {
                humantime::parse_duration(v)
                    .map(DurationValue)
                    .map_err(|e| {
                        E::custom(format!(
                        "invalid duration \"{v}\" ({e}): expected e.g. \"100ms\", \"30s\", \"5m\""
                    ))
                    })
            }
        }
        d.deserialize_any(V)
    }
}

/// `expect`: `200`, `"2xx"`, or a list of either.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ExpectValue(pub(crate) StatusSet);

const EXPECT_HINT: &str = "a status (100..=599), a class such as \"2xx\", or a list of those";

fn add_code<E: de::Error>(set: &mut StatusSet, v: i64) -> Result<(), E> {
    match u16::try_from(v) {
        Ok(s) if (100..=599).contains(&s) => {
            set.insert(s);
            Ok(())
        }
        _ => Err(E::custom(format!(
            "status {v} is out of range: expected {EXPECT_HINT}"
        ))),
    }
}

fn add_class<E: de::Error>(set: &mut StatusSet, v: &str) -> Result<(), E> {
    match v.as_bytes() {
        [c @ b'1'..=b'5', b'x' | b'X', b'x' | b'X'] => {
            set.insert_class(u16::from(c - b'0'));
            Ok(())
        }
        _ => match v.parse::<i64>() {
            Ok(n) => add_code(set, n),
            Err(_) => Err(E::custom(format!(
                "invalid status \"{v}\": expected {EXPECT_HINT}"
            ))),
        },
    }
}

impl<'de> Deserialize<'de> for ExpectValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// One list item.
        struct Item(StatusSet);
        impl<'de> Deserialize<'de> for Item {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_any(V { top: false }).map(|e| Item(e.0))
            }
        }
        struct V {
            top: bool,
        }
        impl<'de> Visitor<'de> for V {
            type Value = ExpectValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(EXPECT_HINT)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ExpectValue, E> {
                let mut set = StatusSet::new(v.to_string());
                add_code(&mut set, v)?;
                Ok(ExpectValue(set))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ExpectValue, E> {
                self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ExpectValue, E> {
                let mut set = StatusSet::new(v);
                add_class(&mut set, v)?;
                Ok(ExpectValue(set))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ExpectValue, A::Error> {
                if !self.top {
                    return Err(de::Error::custom(format!(
                        "nested lists are not allowed: expected {EXPECT_HINT}"
                    )));
                }
                let mut set = StatusSet::new("");
                let mut labels = Vec::new();
                while let Some(Item(one)) = seq.next_element()? {
                    set.merge(&one);
                    labels.push(one.label().to_string());
                }
                if labels.is_empty() {
                    return Err(de::Error::custom(format!(
                        "empty list: expected {EXPECT_HINT}"
                    )));
                }
                set.relabel(format!("[{}]", labels.join(", ")));
                Ok(ExpectValue(set))
            }
        }
        d.deserialize_any(V { top: true })
    }
}
