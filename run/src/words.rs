//! summary.json's words with a fixed vocabulary (`model`,
//! `server.limit_enforcement`) as types, so readers compare variants and
//! never spell the words again.
//!
//! Each is written as exactly the word clw-cli has always written. Reading
//! follows summary.json's leniency (a partial or hand-edited file still
//! gives what it has): a missing key, `null` or `""` is
//! `Unrecorded` (written back as `""`, as before), and a word this version
//! does not know, say one a newer clw-cli wrote, is kept as written
//! (`Other`) rather than failing the read or being lost when the summary is
//! merged or rewritten.

use clw_units::Enforcement;

/// `model`: how the load was offered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Model {
    /// Not recorded (written as `""`).
    #[default]
    Unrecorded,
    /// `closed`: each virtual user starts its next iteration when the
    /// last ends.
    Closed,
    /// `open`: iterations start on a fixed schedule (`arrival_rate`).
    Open,
    /// A word this version does not know, kept as written.
    Other(String),
}

impl Model {
    /// The word in summary.json (`""` when unrecorded).
    pub fn as_str(&self) -> &str {
        match self {
            Model::Unrecorded => "",
            Model::Closed => "closed",
            Model::Open => "open",
            Model::Other(word) => word,
        }
    }

    fn known(word: &str) -> Option<Model> {
        [Model::Unrecorded, Model::Closed, Model::Open]
            .into_iter()
            .find(|m| m.as_str() == word)
    }
}

/// `server.limit_enforcement`: how the server's memory limit was enforced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum LimitEnforcement {
    /// Not recorded (written as `""`): no `server` block, or a summary
    /// written by hand.
    #[default]
    Unrecorded,
    /// `none`: clw-cli spawned no server, so it enforced no limit.
    None,
    /// The server ran under this clw-limit method (`cgroup-v2`, ...).
    By(Enforcement),
    /// A word this version does not know, kept as written.
    Other(String),
}

impl LimitEnforcement {
    /// The word in summary.json (`""` when unrecorded).
    pub fn as_str(&self) -> &str {
        match self {
            LimitEnforcement::Unrecorded => "",
            LimitEnforcement::None => "none",
            LimitEnforcement::By(method) => method.as_str(),
            LimitEnforcement::Other(word) => word,
        }
    }

    fn known(word: &str) -> Option<LimitEnforcement> {
        match word {
            "" => Some(LimitEnforcement::Unrecorded),
            "none" => Some(LimitEnforcement::None),
            _ => Enforcement::parse(word).map(LimitEnforcement::By),
        }
    }
}

impl From<Enforcement> for LimitEnforcement {
    fn from(method: Enforcement) -> LimitEnforcement {
        LimitEnforcement::By(method)
    }
}

/// Display, and serde as the bare word, for a word type with `as_str`,
/// `known` and an `Other(String)` variant (see the module's doc).
macro_rules! word_type {
    ($ty:ident) => {
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
                let word = Option::<String>::deserialize(d)?.unwrap_or_default();
                Ok($ty::known(&word).unwrap_or($ty::Other(word)))
            }
        }
    };
}

word_type!(Model);
word_type!(LimitEnforcement);

#[cfg(test)]
mod tests {
    use super::*;

    fn read<T: serde::de::DeserializeOwned>(json: &str) -> T {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn todays_words_read_as_variants_and_write_back_unchanged() {
        for (word, model) in [
            ("closed", Model::Closed),
            ("open", Model::Open),
            ("", Model::Unrecorded),
        ] {
            let json = format!("\"{word}\"");
            assert_eq!(read::<Model>(&json), model);
            assert_eq!(serde_json::to_string(&model).unwrap(), json);
        }
        for (word, method) in [
            ("cgroup-v2", LimitEnforcement::By(Enforcement::CgroupV2)),
            ("cgroup-v1", LimitEnforcement::By(Enforcement::CgroupV1)),
            ("systemd-run", LimitEnforcement::By(Enforcement::SystemdRun)),
            ("watchdog", LimitEnforcement::By(Enforcement::Watchdog)),
            ("none", LimitEnforcement::None),
            ("", LimitEnforcement::Unrecorded),
        ] {
            let json = format!("\"{word}\"");
            assert_eq!(read::<LimitEnforcement>(&json), method);
            assert_eq!(serde_json::to_string(&method).unwrap(), json);
            assert_eq!(method.to_string(), word);
        }
    }

    #[test]
    fn null_reads_as_unrecorded() {
        assert_eq!(read::<Model>("null"), Model::Unrecorded);
        assert_eq!(
            read::<LimitEnforcement>("null"),
            LimitEnforcement::Unrecorded
        );
    }

    #[test]
    fn an_unknown_word_is_kept_as_written() {
        let model: Model = read("\"poisson\"");
        assert_eq!(model, Model::Other("poisson".into()));
        assert_eq!(serde_json::to_string(&model).unwrap(), "\"poisson\"");
        // The words are exact, as clw-cli writes them.
        assert_eq!(read::<Model>("\"Open\""), Model::Other("Open".into()));
        let method: LimitEnforcement = read("\"cgroup-v3\"");
        assert_eq!(method, LimitEnforcement::Other("cgroup-v3".into()));
        assert_eq!(method.as_str(), "cgroup-v3");
    }

    #[test]
    fn a_word_that_is_not_a_string_is_an_error() {
        assert!(serde_json::from_str::<Model>("3").is_err());
        assert!(serde_json::from_str::<LimitEnforcement>("{}").is_err());
    }
}
