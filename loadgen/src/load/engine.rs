//! The load engine: worker threads that run the virtual users.
//!
//! Like wrk, the engine runs one OS thread per core, each with its own
//! single-threaded tokio runtime, and spreads the virtual users over them.
//! A user never changes thread, so its thread's statistics are plain
//! `RefCell`s: recording a request costs no lock and no allocation (one
//! relaxed read of the death clock, which is written once). Once per second (aligned on load start) each worker sends the
//! second's [`IntervalStats`] to the collector and starts afresh; every 50 ms
//! it adds its completed/failed counts to the shared [`LoadCounters`] the
//! sampler reads.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;

use super::plan::{Local, Plan};
use super::stats::IntervalStats;
use super::vu::VirtualUser;

/// Length of one statistics interval (a latency.csv row, an hlog entry).
pub(crate) const INTERVAL: Duration = Duration::from_secs(1);
const FLUSH_TICK: Duration = Duration::from_millis(50);
const TICKS_PER_INTERVAL: u64 = 20;

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
    /// This worker's running virtual users at the report's time.
    pub(crate) users: u32,
}

/// Start the worker threads; load starts at `t0`. Each sends its interval
/// reports to `tx` and a final one with `last` set.
pub(crate) fn start(
    plan: Arc<Plan>,
    t0: std::time::Instant,
    tx: mpsc::UnboundedSender<WorkerMsg>,
) -> std::io::Result<Vec<std::thread::JoinHandle<()>>> {
    let own = plan.own_users.end.saturating_sub(plan.own_users.start);
    let threads = plan.threads.clamp(1, own.max(1) as usize);
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

// Long: the worker's runtime and per-thread state, then its ticker loop over
// that state; split apart they would pass half a dozen locals back and forth.
fn run_worker(
    worker: usize,
    threads: usize,
    plan: Arc<Plan>,
    t0: std::time::Instant,
    tx: mpsc::UnboundedSender<WorkerMsg>,
) {
    if let Err(e) = super::sched::batch_current_thread() {
        // Only the sharing of the CPU changes; the load runs either way.
        tracing::debug!("load worker {worker} stays SCHED_OTHER: {e}");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds");
    let local_set = tokio::task::LocalSet::new();
    local_set.block_on(&rt, async move {
        let t0 = Instant::from_std(t0);
        let steps = plan.step_names.len();
        let death = plan.death.clone();
        let fresh = move || IntervalStats::watching(steps, death.clone());
        let local = Rc::new(Local {
            plan: plan.clone(),
            stats: RefCell::new(fresh()),
            completed: Cell::new(0),
            failed: Cell::new(0),
            connects: Cell::new(0),
            active: Cell::new(0),
            deadline: Cell::new(t0 + plan.duration),
            stopped: Notify::new(),
            t0,
        });
        let users: Vec<u32> = plan
            .own_users
            .clone()
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
                        let stats = local.stats.replace(fresh());
                        let msg = WorkerMsg {
                            worker,
                            index: n / TICKS_PER_INTERVAL - 1,
                            stats,
                            last: false,
                            connects: local.connects.get(),
                            users: local.active.get(),
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
            users: local.active.get(),
        });
    });
}
