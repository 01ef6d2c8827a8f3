//! The server's death as the load engine sees it: a clock set once (the
//! instant the server died), and the requests sent after it, counted apart.
//!
//! The supervisor sets the clock when the server's exit is reported, a
//! couple of milliseconds after the port closed; at ~50,000 refusals a
//! second that is a hundred refusals counted as the server's. So a worker
//! whose request is refused (`connect`) while the clock is unset checks the
//! server's process at once: a dead one sets the clock to that request's
//! send time, the first moment the port was seen closed.
//!
//! A dead server refuses connections in a tenth of a millisecond, so a
//! closed-model load sends hundreds of thousands of requests in the seconds
//! between the death and the load's stop. Counted with the rest they would
//! multiply the throughput and pull every latency percentile down to the
//! refusal time; counted apart, the headline figures stay the server's
//! (docs/loadgen.md, "When the server dies").

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::watched::Watched;

/// When the server died; unset while it lives. Shared by the supervisor
/// and every worker thread (which read it once per request: one
/// uncontended atomic load, as cheap as a plain read).
#[derive(Debug, Default)]
pub(crate) struct DeathClock {
    died: OnceLock<Instant>,
    /// The server's process, when clw-cli knows it (spawned, or
    /// `--server-pid`): checked when a connection is refused.
    server: Option<Watched>,
}

impl DeathClock {
    /// A clock for the server running as `pid` (None: unknown, so only the
    /// supervisor's report of a death sets the clock).
    pub(crate) fn of_server(pid: Option<u32>) -> DeathClock {
        DeathClock {
            died: OnceLock::new(),
            server: pid.and_then(|pid| Watched::new(pid).ok()),
        }
    }

    /// The server died at `at`. Only the first call counts: the supervisor's
    /// (the exit as its waiter saw it) comes after a refusal's, if any.
    pub(crate) fn set(&self, at: Instant) {
        let _ = self.died.set(at);
    }

    /// When the server died, once known.
    pub(crate) fn died_at(&self) -> Option<Instant> {
        self.died.get().copied()
    }

    /// A request sent `latency_us` ago was refused a connection: if the
    /// server's process is gone, it died no later than that request's send
    /// time. A refusal while the server lives (rare: a full backlog drops,
    /// it does not refuse) costs one read of /proc/PID/stat.
    pub(crate) fn refused(&self, latency_us: u64) {
        if self.died.get().is_some() {
            return;
        }
        if self.server.as_ref().is_some_and(|s| !s.alive()) {
            self.set(sent_at(latency_us));
        }
    }

    /// Whether a request that just ended after `latency_us` was sent after
    /// the death. A request the death caught in flight was sent while the
    /// server lived: it counts with the server's figures (its reset is the
    /// death's own toll). Requests that end between the death and the
    /// moment the supervisor learns of it (milliseconds for a spawned
    /// server, one poll for `--server-pid`) still count as sent before.
    pub(crate) fn sent_after_death(&self, latency_us: u64) -> bool {
        let Some(died) = self.died.get() else {
            return false;
        };
        sent_at(latency_us) >= *died
    }
}

/// When a request that just ended after `latency_us` was sent.
fn sent_at(latency_us: u64) -> Instant {
    let now = Instant::now();
    now.checked_sub(Duration::from_micros(latency_us))
        .unwrap_or(now)
}

/// Requests sent after the server's death: counts only, no latency (they
/// measure the refusal, not the server).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct AfterDeath {
    pub(crate) requests: u64,
    pub(crate) failed: u64,
    /// Failures by kind, named as `IntervalStats::by_error` names them.
    pub(crate) by_error: BTreeMap<String, u64>,
}

impl AfterDeath {
    pub(crate) fn add(&mut self, other: &AfterDeath) {
        self.requests += other.requests;
        self.failed += other.failed;
        for (kind, n) in &other.by_error {
            *self.by_error.entry(kind.clone()).or_default() += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_sent_before_the_death_are_not_after_it() {
        let clock = DeathClock::default();
        assert!(!clock.sent_after_death(0), "alive: nothing is after death");
        clock.set(Instant::now());
        std::thread::sleep(Duration::from_millis(20));
        assert!(clock.sent_after_death(100), "sent 0.1 ms ago, after death");
        assert!(
            !clock.sent_after_death(10_000_000),
            "sent 10 s ago: in flight when the server died"
        );
        // A later death does not move the first.
        clock.set(Instant::now() + Duration::from_secs(60));
        assert!(clock.sent_after_death(100));
    }

    #[test]
    fn a_refusal_from_a_dead_server_is_its_death() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let clock = DeathClock::of_server(Some(child.id()));
        clock.refused(100);
        assert_eq!(clock.died_at(), None, "alive: a refusal is not a death");
        child.kill().unwrap();
        child.wait().unwrap();
        let before = Instant::now();
        clock.refused(1_000);
        let died = clock.died_at().expect("dead: the refusal dates the death");
        assert!(died <= before, "the refused request's send time");
        assert!(clock.sent_after_death(0));
        let unknown = DeathClock::of_server(None);
        unknown.refused(100);
        assert_eq!(unknown.died_at(), None, "no process to check");
    }
}
