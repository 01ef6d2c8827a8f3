//! What the load's workers share: the [`Plan`] (the run's settings,
//! read-only but for the stop flag) and, per worker thread, the [`Local`]
//! state its virtual users record into. Both the engine (which builds them)
//! and the virtual users (which read them) use this module, so neither
//! imports the other's internals.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::counters::LoadCounters;
use super::death::DeathClock;
use super::stages::Stages;
use super::stats::IntervalStats;
use crate::scenario::{LoadModel, Scenario};

/// Everything the workers share, read-only except the stop flag and the
/// death clock.
pub(crate) struct Plan {
    pub(crate) scenario: Scenario,
    /// Statistics index of `flows[f].steps[s]`: `step_ids[f][s]`. Steps of
    /// different flows with the same name share an index (and a histogram).
    pub(crate) step_ids: Vec<Vec<usize>>,
    pub(crate) step_names: Vec<String>,
    pub(crate) addr: SocketAddr,
    /// Host header value.
    pub(crate) authority: String,
    /// Prefix for every step's path.
    pub(crate) base_path: String,
    /// `scheme://authority/`: the origin cookies are kept for and
    /// redirects are resolved against.
    pub(crate) origin: url::Url,
    /// Other origins a redirect may lead to: those a `--connect-to` rule
    /// sends to the target's own address, reached over the same
    /// connection.
    pub(crate) also: Vec<url::Origin>,
    /// `https://` targets: how each user's connection speaks TLS.
    pub(crate) tls: Option<crate::tls::TlsDial>,
    /// The whole run's users (every shard's): the ramp-up and the arrival
    /// schedule are laid out over all of them.
    pub(crate) users: u32,
    /// The global indexes of the users this process runs: all of them, or
    /// its shard's (`--shard`, src/shard.rs).
    pub(crate) own_users: std::ops::Range<u32>,
    pub(crate) threads: usize,
    pub(crate) duration: Duration,
    pub(crate) ramp_up: Duration,
    pub(crate) model: LoadModel,
    /// A load that changes over time: it replaces `ramp_up`, `users` is
    /// its peak (closed model) or the pool (open model), and `duration` is
    /// the stages' sum.
    pub(crate) stages: Option<Stages>,
    pub(crate) timeout: Duration,
    pub(crate) seed: u64,
    pub(crate) counters: Arc<LoadCounters>,
    /// Set to end the load early (server died, Ctrl-C).
    pub(crate) stop: AtomicBool,
    /// Set by the supervisor when the server dies: requests sent from then
    /// on are counted apart from the server's figures.
    pub(crate) death: Arc<DeathClock>,
}

impl Plan {
    /// Map each flow's steps to statistics indexes, merging equal names.
    pub(crate) fn index_steps(scenario: &Scenario) -> (Vec<Vec<usize>>, Vec<String>) {
        let mut names: Vec<String> = Vec::new();
        let ids = scenario
            .flows
            .iter()
            .map(|flow| {
                flow.steps
                    .iter()
                    .map(|step| match names.iter().position(|n| *n == step.name) {
                        Some(i) => i,
                        None => {
                            names.push(step.name.clone());
                            names.len() - 1
                        }
                    })
                    .collect()
            })
            .collect();
        (ids, names)
    }
}

/// Per-worker state the users share on their thread.
pub(crate) struct Local {
    pub(crate) plan: Arc<Plan>,
    pub(crate) stats: RefCell<IntervalStats>,
    pub(crate) completed: Cell<u64>,
    pub(crate) failed: Cell<u64>,
    pub(crate) connects: Cell<u64>,
    /// Virtual users on this thread that are running (started and not
    /// stopped), sent with each interval report.
    pub(crate) active: Cell<u32>,
    /// When no new request may start (load start + duration, or earlier
    /// after a stop).
    pub(crate) deadline: Cell<Instant>,
    /// Wakes sleeping users when the load is stopped early.
    pub(crate) stopped: Notify,
    pub(crate) t0: Instant,
}

impl Local {
    /// True once no new request may start.
    pub(crate) fn over(&self) -> bool {
        Instant::now() >= self.deadline.get()
    }

    /// Sleep until `at`, or until the deadline or a stop, whichever is
    /// first. Returns false when the load is over.
    pub(crate) async fn sleep_until(&self, at: Instant) -> bool {
        let deadline = self.deadline.get();
        tokio::select! {
            _ = tokio::time::sleep_until(at.min(deadline)) => {}
            _ = self.stopped.notified() => {}
        }
        !self.over()
    }

    /// Add this thread's completed/failed counts to the shared counters.
    pub(crate) fn flush_counters(&self) {
        let c = &self.plan.counters;
        c.completed
            .fetch_add(self.completed.replace(0), Ordering::Relaxed);
        c.failed
            .fetch_add(self.failed.replace(0), Ordering::Relaxed);
    }
}
