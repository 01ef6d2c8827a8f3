//! A credential held in the configuration (the admin token): compared in
//! constant time, and never shown, whether by `--check-config`, a log line
//! or a `{:?}`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What `--check-config` prints in place of a set secret.
pub const REDACTED: &str = "<redacted>";

/// Shortest token accepted: 16 characters of a random token are ~96 bits.
const MIN_LEN: usize = 16;

/// A secret string; empty means unset.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// A secret with this value (for embedders and tests).
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// Whether a value is set.
    pub fn is_set(&self) -> bool {
        !self.0.is_empty()
    }

    /// Whether `presented` is the secret. Both sides are hashed first, so
    /// the comparison takes the same time whatever the lengths, and the
    /// digests are compared in constant time: a timing attacker learns
    /// nothing about how much of a guess was right. Never true when unset.
    pub fn matches(&self, presented: &str) -> bool {
        let want = Sha256::digest(self.0.as_bytes());
        let got = Sha256::digest(presented.as_bytes());
        self.is_set() && bool::from(want.as_slice().ct_eq(got.as_slice()))
    }

    /// Why this value is too weak to guard anything, if it is.
    pub(crate) fn weakness(&self) -> Option<String> {
        if !self.is_set() {
            return None;
        }
        if self.0.chars().count() < MIN_LEN {
            return Some(format!(
                "a token of fewer than {MIN_LEN} characters is guessable (use e.g. `openssl rand -hex 32`)"
            ));
        }
        if self.0.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Some(
                "must not hold spaces or control characters: it is sent in an Authorization header"
                    .into(),
            );
        }
        None
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_set() { REDACTED } else { "<unset>" })
    }
}

impl Serialize for Secret {
    /// `null` when unset, `"<redacted>"` when set: the effective
    /// configuration can be printed and logged without the credential.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.is_set() {
            s.serialize_str(REDACTED)
        } else {
            s.serialize_none()
        }
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Option::<String>::deserialize(d)?.unwrap_or_default();
        if value == REDACTED {
            return Err(serde::de::Error::custom(
                "is the `<redacted>` placeholder --check-config prints, not a token: set the real one",
            ));
        }
        Ok(Secret(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_only_the_exact_value_and_never_when_unset() {
        let s = Secret::new("0123456789abcdef0123");
        assert!(s.matches("0123456789abcdef0123"));
        assert!(!s.matches("0123456789abcdef012"));
        assert!(!s.matches("0123456789abcdef01234"));
        assert!(!s.matches(""));
        assert!(!Secret::default().matches(""));
    }

    #[test]
    fn debug_and_serialize_never_show_the_value() {
        let s = Secret::new("super-secret-token-value");
        assert_eq!(format!("{s:?}"), REDACTED);
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, "\"<redacted>\"");
        assert_eq!(serde_json::to_string(&Secret::default()).unwrap(), "null");
    }

    #[test]
    fn weak_tokens_and_the_placeholder_are_refused() {
        assert!(Secret::new("short").weakness().is_some());
        assert!(Secret::new("has a space in it, long").weakness().is_some());
        assert!(Secret::new("0123456789abcdef").weakness().is_none());
        assert!(Secret::default().weakness().is_none());
        assert!(serde_json::from_str::<Secret>("\"<redacted>\"").is_err());
        assert!(!serde_json::from_str::<Secret>("null").unwrap().is_set());
    }
}
