//! Lenient reading for summary.json: a partial or hand-edited file may hold
//! `null` where clw-cli writes an object, and a reader should still get the
//! rest of the figures rather than nothing.

use serde::{Deserialize, Deserializer};

/// `null` (or a missing key, with `#[serde(default)]`) reads as `T::default()`.
pub(crate) fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}
