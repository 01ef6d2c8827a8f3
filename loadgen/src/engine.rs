//! The load engine: worker threads that run the virtual users.
//!
//! Like wrk, the engine runs one OS thread per core, each with its own
//! single-threaded tokio runtime, and spreads the virtual users over them.
//! A user never changes thread, so its thread's statistics are plain
//! `RefCell`s: recording a request costs no lock, no atomic and no
//! allocation. Once per second (aligned on load start) each worker sends the
//! second's [`IntervalStats`] to the collector and starts afresh; every 50 ms
//! it adds its completed/failed counts to the shared [`LoadCounters`] the
//! sampler reads.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;

use crate::counters::LoadCounters;
use crate::scenario::Scenario;
use crate::stats::IntervalStats;
use crate::vu::VirtualUser;

/// Length of one statistics interval (a latency.csv row, an hlog entry).
pub(crate) const INTERVAL: Duration = Duration::from_secs(1);
const FLUSH_TICK: Duration = Duration::from_millis(50);
const TICKS_PER_INTERVAL: u64 = 20;

/// How iterations are started.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Model {
    /// Each user starts its next iteration when the previous one ends.
    Closed,
    /// `rate` iterations per second in total, on a fixed schedule.
    Open { rate: f64 },
}

/// Everything the workers share, read-only except the stop flag.
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
    pub(crate) users: u32,
    pub(crate) threads: usize,
    pub(crate) duration: Duration,
    pub(crate) ramp_up: Duration,
    pub(crate) model: Model,
    pub(crate) timeout: Duration,
    pub(crate) seed: u64,
    pub(crate) counters: Arc<LoadCounters>,
    /// Set to end the load early (server died, Ctrl-C).
    pub(crate) stop: AtomicBool,
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

/// One worker's report to the collector.
#[derive(Debug)]
pub(crate) struct WorkerMsg {
    pub(crate) worker: usize,
    /// The interval (second since load start) these stats belong to.
    pub(crate) index: u64,
    pub(crate) stats: IntervalStats,
    /// The worker's users have all finished; no more messages from it.
    pub(crate) last: bool,
    /// Connections opened by this worker's users so far.
    pub(crate) connects: u64,
}

/// Per-worker state the users share on their thread.
pub(crate) struct Local {
    pub(crate) plan: Arc<Plan>,
    pub(crate) stats: RefCell<IntervalStats>,
    pub(crate) completed: Cell<u64>,
    pub(crate) failed: Cell<u64>,
    pub(crate) connects: Cell<u64>,
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

    fn flush_counters(&self) {
        let c = &self.plan.counters;
        c.completed
            .fetch_add(self.completed.replace(0), Ordering::Relaxed);
        c.failed
            .fetch_add(self.failed.replace(0), Ordering::Relaxed);
    }
}

/// Start the worker threads; load starts at `t0`. Each sends its interval
/// reports to `tx` and a final one with `last` set.
pub(crate) fn start(
    plan: Arc<Plan>,
    t0: std::time::Instant,
    tx: mpsc::UnboundedSender<WorkerMsg>,
) -> std::io::Result<Vec<std::thread::JoinHandle<()>>> {
    let threads = plan.threads.clamp(1, plan.users.max(1) as usize);
    (0..threads)
        .map(|worker| {
            let plan = plan.clone();
            let tx = tx.clone();
            std::thread::Builder::new()
                .name(format!("clw-load-{worker}"))
                .spawn(move || run_worker(worker, threads, plan, t0, tx))
        })
        .collect()
}

fn run_worker(
    worker: usize,
    threads: usize,
    plan: Arc<Plan>,
    t0: std::time::Instant,
    tx: mpsc::UnboundedSender<WorkerMsg>,
) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds");
    let local_set = tokio::task::LocalSet::new();
    local_set.block_on(&rt, async move {
        let t0 = Instant::from_std(t0);
        let steps = plan.step_names.len();
        let local = Rc::new(Local {
            plan: plan.clone(),
            stats: RefCell::new(IntervalStats::new(steps)),
            completed: Cell::new(0),
            failed: Cell::new(0),
            connects: Cell::new(0),
            deadline: Cell::new(t0 + plan.duration),
            stopped: Notify::new(),
            t0,
        });
        let users: Vec<u64> = (0..u64::from(plan.users))
            .filter(|vu| *vu as usize % threads == worker)
            .collect();
        let mut tasks = tokio::task::JoinSet::new();
        for vu in users {
            let local = local.clone();
            tasks.spawn_local(async move { VirtualUser::new(vu, local).run().await });
        }
        // The ticker: counters every 50 ms, an interval report every second,
        // the stop flag checked on each tick.
        let ticker = {
            let local = local.clone();
            let tx = tx.clone();
            async move {
                let mut tick = tokio::time::interval_at(t0 + FLUSH_TICK, FLUSH_TICK);
                let mut n: u64 = 0;
                loop {
                    tick.tick().await;
                    n += 1;
                    local.flush_counters();
                    if local.plan.stop.load(Ordering::Relaxed) && !local.over() {
                        local.deadline.set(Instant::now());
                        local.stopped.notify_waiters();
                    }
                    if n % TICKS_PER_INTERVAL == 0 {
                        let stats = local.stats.replace(IntervalStats::new(steps));
                        let msg = WorkerMsg {
                            worker,
                            index: n / TICKS_PER_INTERVAL - 1,
                            stats,
                            last: false,
                            connects: local.connects.get(),
                        };
                        if tx.send(msg).is_err() {
                            return;
                        }
                    }
                }
            }
        };
        tokio::select! {
            _ = async { while tasks.join_next().await.is_some() {} } => {}
            _ = ticker => {}
        }
        local.flush_counters();
        let index = (Instant::now().saturating_duration_since(t0).as_millis()
            / INTERVAL.as_millis()) as u64;
        let stats = local.stats.replace(IntervalStats::new(0));
        let _ = tx.send(WorkerMsg {
            worker,
            index,
            stats,
            last: true,
            connects: local.connects.get(),
        });
    });
}
