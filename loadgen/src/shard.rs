//! `--shard I/N` and `--start-at`: one process's part of a run spread over
//! several (docs/loadgen.md, "Sharded runs").
//!
//! Like k6's execution segments, but simpler: the whole run's users are
//! numbered 0..U and shard I of N runs a contiguous block of them, the
//! first `U mod N` shards one more than the rest (100 over 3: 34, 33, 33).
//! Each user keeps its global index, so its ramp-up slot, its random seed,
//! its generated user names and (open model) its share of the arrival
//! schedule are the ones it has in the unsharded run: the N shards
//! together send exactly that run's load, and the arrival rate splits by
//! the same fractions (a shard's rate is `rate * users / U`).

use std::ops::Range;
use std::time::{Duration, SystemTime};

/// How far ahead `--start-at` may be: further is a typo (a wrong day).
const MAX_WAIT: Duration = Duration::from_secs(24 * 3600);
/// How late `--start-at` may already be when the shard is ready: a pod
/// scheduled a little late still starts (at once) with the others.
const MAX_LATE: Duration = Duration::from_secs(5);

/// Why `--shard`, `--shard-samples-memory` or `--start-at` is refused (bad
/// usage, exit 2).
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    #[error("`{0}` is not a shard I/N (1-based, e.g. 2/3)")]
    NotAShard(String),
    #[error("`{text}`: the shard number must be between 1 and N ({count})")]
    OutOfRange { text: String, count: u32 },
    #[error("`{text}` is not an RFC 3339 UTC time such as 2026-11-25T21:30:00Z ({source})")]
    NotATime {
        text: String,
        #[source]
        source: humantime::TimestampError,
    },
    #[error("--start-at {at} is {ahead} ahead: more than 24 h away, is the date right?")]
    TooFarAhead { at: String, ahead: String },
    #[error("--start-at {at} passed {ago_s:.1} s ago: give a time a few seconds ahead (every shard waits for it)")]
    Passed { at: String, ago_s: f64 },
    #[error("--shard-samples-memory {samples}: there is no shard {samples} of {count}")]
    NoSamplingShard { samples: u32, count: u32 },
    #[error("--shard {index}/{count}: {total} users cannot be split over {count} shards (each needs at least one; raise --concurrent-users or lower N)")]
    TooFewUsers { index: u32, count: u32, total: u32 },
    #[error("--spawn-server on shard {index}/{count}: only the shard that samples memory (--shard-samples-memory, {samples}) may start the server; the others load the one it started")]
    SpawnOffTheSamplingShard {
        index: u32,
        count: u32,
        samples: u32,
    },
}

/// Shard `index` (1-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// `I/N` with 1 <= I <= N.
    pub fn parse(text: &str) -> Result<Shard, ShardError> {
        let bad = || ShardError::NotAShard(text.to_string());
        let (i, n) = text.trim().split_once('/').ok_or_else(bad)?;
        let index: u32 = i.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index == 0 || index > count {
            return Err(ShardError::OutOfRange {
                text: text.to_string(),
                count,
            });
        }
        Ok(Shard { index, count })
    }

    /// The global indexes of the users this shard runs, out of `total`.
    pub fn users(self, total: u32) -> Range<u32> {
        let (n, i) = (self.count, self.index - 1);
        let (base, extra) = (total / n, total % n);
        let start = i * base + i.min(extra);
        start..start + base + u32::from(i < extra)
    }
}

/// `--start-at`: RFC 3339 in UTC (`2026-11-25T21:30:00Z`, fractions of a
/// second allowed), as `date -u +%FT%TZ` prints it.
pub fn parse_start_at(text: &str) -> Result<SystemTime, ShardError> {
    let t = text.trim();
    let t = t
        .strip_suffix("+00:00")
        .map_or(t.to_string(), |s| format!("{s}Z"));
    humantime::parse_rfc3339(&t).map_err(|source| ShardError::NotATime {
        text: text.to_string(),
        source,
    })
}

/// How long to wait for `at` from `now`; refuses an instant more than a
/// day ahead or already more than a few seconds past.
pub fn wait_for(at: SystemTime, now: SystemTime) -> Result<Duration, ShardError> {
    let shown = || humantime::format_rfc3339_millis(at).to_string();
    match at.duration_since(now) {
        Ok(wait) if wait > MAX_WAIT => Err(ShardError::TooFarAhead {
            at: shown(),
            ahead: humantime::format_duration(Duration::from_secs(wait.as_secs())).to_string(),
        }),
        Ok(wait) => Ok(wait),
        Err(e) if e.duration() > MAX_LATE => Err(ShardError::Passed {
            at: shown(),
            ago_s: e.duration().as_secs_f64(),
        }),
        Err(_) => Ok(Duration::ZERO),
    }
}

/// What this process runs of the whole load, resolved from the options.
#[derive(Debug, Clone)]
pub(crate) struct Part {
    /// summary.json's `shard` (None when not sharded).
    pub(crate) info: Option<clw_run::ShardInfo>,
    /// Global indexes of the users this process runs.
    pub(crate) users: Range<u32>,
    /// This process samples the server's memory (and may spawn it).
    pub(crate) samples_memory: bool,
}

/// This process's part of a run of `total` users: refuses a shard left
/// without users, a sampling shard out of range, and a shard that would
/// spawn a server it does not sample (a second server, unwatched).
pub(crate) fn resolve(
    shard: Option<Shard>,
    samples: u32,
    total: u32,
    start_at: Option<SystemTime>,
    spawns_server: bool,
) -> Result<Part, ShardError> {
    let Some(shard) = shard else {
        return Ok(Part {
            info: None,
            users: 0..total,
            samples_memory: true,
        });
    };
    if samples == 0 || samples > shard.count {
        return Err(ShardError::NoSamplingShard {
            samples,
            count: shard.count,
        });
    }
    if total < shard.count {
        return Err(ShardError::TooFewUsers {
            index: shard.index,
            count: shard.count,
            total,
        });
    }
    let samples_memory = shard.index == samples;
    if spawns_server && !samples_memory {
        return Err(ShardError::SpawnOffTheSamplingShard {
            index: shard.index,
            count: shard.count,
            samples,
        });
    }
    let users = shard.users(total);
    Ok(Part {
        info: Some(clw_run::ShardInfo {
            index: shard.index,
            count: shard.count,
            first_user: u64::from(users.start),
            users: users.end - users.start,
            samples_memory,
            start_at: start_at.map(|t| humantime::format_rfc3339_millis(t).to_string()),
        }),
        users,
        samples_memory,
    })
}

/// `--start-at`: wait for the instant (after every check and setup, just
/// before the load's clock starts), then date the summary from it. A
/// signal during the wait ends the run before any load (130 / 143).
pub(crate) async fn wait_start(
    at: Option<SystemTime>,
    interrupts: &mut crate::signals::Interrupts,
    summary: &mut clw_run::RunSummary,
) -> Result<(), crate::outcome::Error> {
    let Some(at) = at else {
        return Ok(());
    };
    let wait = wait_for(at, SystemTime::now()).map_err(crate::outcome::usage)?;
    tokio::select! {
        _ = tokio::time::sleep(wait) => {}
        signal = interrupts.recv() => {
            return Err(crate::outcome::Error::Interrupted(signal.name(), signal.exit_code()));
        }
    }
    summary.started_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_split_exactly_disjoint_and_covering() {
        let shares = |total, n| -> Vec<u32> {
            (1..=n)
                .map(|index| Shard { index, count: n }.users(total))
                .map(|r| r.end - r.start)
                .collect()
        };
        assert_eq!(shares(100, 3), [34, 33, 33]);
        assert_eq!(shares(10, 4), [3, 3, 2, 2]);
        // Every split of up to 300 users over up to 12 shards: consecutive
        // blocks from 0 to the total (so disjoint, covering, sum exact),
        // sizes differing by at most one.
        for total in 0..=300u32 {
            for count in 1..=12u32 {
                let mut next = 0;
                let mut sizes = Vec::new();
                for index in 1..=count {
                    let r = Shard { index, count }.users(total);
                    assert_eq!(r.start, next, "{index}/{count} of {total}");
                    next = r.end;
                    sizes.push(r.end - r.start);
                }
                assert_eq!(next, total, "{count} shards of {total}");
                let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
                assert!(hi - lo <= 1, "{sizes:?}");
            }
        }
    }

    #[test]
    fn only_the_sampling_shard_samples_or_spawns() {
        let two = Some(Shard { index: 2, count: 3 });
        let part = resolve(two, 1, 100, None, false).unwrap();
        assert_eq!(part.users, 34..67);
        assert!(!part.samples_memory);
        let info = part.info.unwrap();
        assert_eq!(
            (info.index, info.count, info.first_user, info.users),
            (2, 3, 34, 33)
        );
        assert!(resolve(two, 2, 100, None, false).unwrap().samples_memory);
        let e = resolve(two, 1, 100, None, true).unwrap_err().to_string();
        assert!(e.contains("--spawn-server on shard 2/3"), "{e}");
        assert!(resolve(two, 2, 100, None, true).is_ok());
        let e = resolve(two, 4, 100, None, false).unwrap_err().to_string();
        assert!(e.contains("no shard 4 of 3"), "{e}");
        let e = resolve(two, 1, 2, None, false).unwrap_err().to_string();
        assert!(e.contains("2 users cannot be split over 3"), "{e}");
        let whole = resolve(None, 1, 10, None, true).unwrap();
        assert_eq!(
            (whole.users, whole.samples_memory, whole.info),
            (0..10, true, None)
        );
    }

    #[test]
    fn shard_numbers_parse_one_based() {
        assert_eq!(Shard::parse("2/3").unwrap(), Shard { index: 2, count: 3 });
        assert_eq!(
            Shard::parse(" 1 / 1 ").unwrap(),
            Shard { index: 1, count: 1 }
        );
        for bad in ["0/3", "4/3", "1/0", "3", "a/b", "1/3/5", ""] {
            let err = Shard::parse(bad).unwrap_err().to_string();
            assert!(err.contains(bad.trim()), "{bad}: {err}");
        }
    }

    #[test]
    fn start_at_is_utc_rfc3339_and_near() {
        let at = parse_start_at("2026-11-25T21:30:00Z").unwrap();
        assert_eq!(parse_start_at("2026-11-25T21:30:00+00:00").unwrap(), at);
        assert_eq!(
            parse_start_at("2026-11-25T21:30:00.250Z").unwrap(),
            at + Duration::from_millis(250)
        );
        assert!(parse_start_at("in 5 minutes").is_err());
        assert!(parse_start_at("2026-11-25T21:30:00+02:00").is_err());
        let s = Duration::from_secs;
        assert_eq!(wait_for(at, at - s(10)).unwrap(), s(10));
        assert_eq!(wait_for(at, at + s(2)).unwrap(), Duration::ZERO);
        let late = wait_for(at, at + s(60)).unwrap_err().to_string();
        assert!(late.contains("passed 60.0 s ago"), "{late}");
        let far = wait_for(at, at - s(25 * 3600)).unwrap_err().to_string();
        assert!(far.contains("more than 24 h"), "{far}");
    }
}
