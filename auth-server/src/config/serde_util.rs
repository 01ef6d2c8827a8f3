//! Lenient field readers: the same key may come from a JSON file (numbers,
//! booleans) or from an environment variable or flag (always a string), so
//! numeric, boolean, size and duration fields accept both forms.

use std::fmt::Display;
use std::str::FromStr;
use std::time::Duration;

use serde::de::{Deserializer, Error};
use serde::{Deserialize, Serializer};
use serde_json::Value;

use crate::units::{parse_duration, parse_size};

fn scalar_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(D::Error::custom(format!(
            "expected a number or string, found {other}"
        ))),
    }
}

/// A number, or a string holding one.
pub(super) fn de_num<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: Display,
{
    let text = scalar_text(d)?;
    text.trim()
        .parse()
        .map_err(|e| D::Error::custom(format!("`{text}` is not a valid number: {e}")))
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" | "enabled" => Some(true),
        "false" | "0" | "no" | "off" | "disabled" => Some(false),
        _ => None,
    }
}

/// A boolean, or `enabled`/`disabled`, `yes`/`no`, `1`/`0` (the guide sets
/// `CLAW_SESSION_CACHE=enabled`).
pub(super) fn de_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let text = scalar_text(d)?;
    parse_bool(&text).ok_or_else(|| {
        D::Error::custom(format!(
            "`{text}` is not a boolean: expected true/false or enabled/disabled"
        ))
    })
}

/// An optional boolean (`null` leaves it unset).
pub(super) fn de_opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        v => de_bool(v).map(Some).map_err(D::Error::custom),
    }
}

/// A size: bytes as a number, or text such as `1536M` or `2Gi`.
pub(super) fn de_size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let text = scalar_text(d)?;
    parse_size(&text).map_err(D::Error::custom)
}

/// An optional size (`null` leaves it unset).
pub(super) fn de_opt_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        v => de_size(v).map(Some).map_err(D::Error::custom),
    }
}

/// A duration: seconds as a number (the guide's `max_age: 3600`), or text
/// such as `30s`.
pub(super) fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    match Value::deserialize(d)? {
        Value::Number(n) => n
            .as_f64()
            .filter(|s| *s >= 0.0)
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .ok_or_else(|| {
                D::Error::custom(format!(
                    "`{n}` is not a non-negative number of seconds that fits a duration"
                ))
            }),
        Value::String(s) => parse_duration(&s).map_err(D::Error::custom),
        other => Err(D::Error::custom(format!(
            "expected seconds or a duration such as 30s, found {other}"
        ))),
    }
}

/// Durations print the way people write them (`1h`, `30s`), and read back.
pub(super) fn ser_duration<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_duration(*d).to_string())
}
