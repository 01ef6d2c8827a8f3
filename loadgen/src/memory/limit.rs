//! The memory limit a run is judged against, decided in one place: the one
//! given (`--memory-limit`), else the one the service advertises
//! (`clw_memory_limit_bytes`, `--limit-metric`, `--limit-query`, or the
//! cgroup's), learnt as samples see it. The sampler's live verdict, the
//! heap profiles' pressure trigger, the final memory block and the live
//! metrics all ask this rule, so they cannot disagree on which limit a
//! percentage is of.

/// See the module documentation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LimitRule {
    given: Option<u64>,
}

impl LimitRule {
    /// `--memory-limit` (None: take the one the service advertises).
    pub(crate) fn given(bytes: Option<u64>) -> LimitRule {
        LimitRule { given: bytes }
    }

    /// The limit given on the command line, if any.
    pub(crate) fn given_bytes(self) -> Option<u64> {
        self.given
    }

    /// The limit in force: the one given, else `advertised`.
    pub(crate) fn resolve(self, advertised: Option<u64>) -> Option<u64> {
        self.given.or(advertised)
    }

    /// Where the limit in force comes from (`memory.sources.limit`):
    /// `--memory-limit`, else `advertised`, the word for the source that
    /// advertises it.
    pub(crate) fn source(self, advertised: &'static str) -> &'static str {
        match self.given {
            Some(_) => "--memory-limit",
            None => advertised,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_given_limit_wins_over_the_advertised_one() {
        let given = LimitRule::given(Some(256 << 20));
        assert_eq!(given.resolve(Some(1 << 30)), Some(256 << 20));
        assert_eq!(given.source("metrics"), "--memory-limit");
        let learnt = LimitRule::given(None);
        assert_eq!(learnt.resolve(Some(1 << 30)), Some(1 << 30));
        assert_eq!(learnt.resolve(None), None);
        assert_eq!(learnt.source("cgroup"), "cgroup");
    }
}
