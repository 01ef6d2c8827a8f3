//! The collector: merges the workers' per-second reports into one row per
//! interval (latency.csv, latency.hlog), keeps the run's totals, and
//! publishes a live snapshot for the progress line.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::load::engine::{WorkerMsg, INTERVAL};
use clw_run::{HdrLog, RunFileError};

use crate::load::stats::{percentiles, IntervalStats};
use crate::results::output::{ErrorsCsv, LatencyCsv};

/// What the progress line shows; updated once per interval.
#[derive(Debug, Clone, Default)]
pub(crate) struct Live {
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    /// Requests per second over the last complete interval.
    pub(crate) rps: f64,
    /// p99 of the last complete interval, ms.
    pub(crate) p99_ms: Option<f64>,
    /// Virtual users running at the end of the last complete interval.
    pub(crate) users: u32,
}

/// The collector's result: the whole run merged.
#[derive(Debug)]
pub(crate) struct Totals {
    pub(crate) stats: IntervalStats,
    pub(crate) connects: u64,
    /// When the last worker finished (load start + duration + drain).
    pub(crate) finished: Instant,
}

pub(crate) struct Collector {
    step_names: Vec<String>,
    csv: LatencyCsv,
    hlog: HdrLog,
    errors: ErrorsCsv,
    open_model: bool,
    live: Arc<Mutex<Live>>,
    /// The run's totals so far, for readers outside the collector (the live
    /// metrics endpoint); added to once per interval.
    totals_out: Option<Arc<Mutex<IntervalStats>>>,
}

struct WorkerState {
    next_index: u64,
    done: bool,
    connects: u64,
}

impl Collector {
    pub(crate) fn new(
        step_names: Vec<String>,
        csv: LatencyCsv,
        hlog: HdrLog,
        errors: ErrorsCsv,
        open_model: bool,
        live: Arc<Mutex<Live>>,
    ) -> Collector {
        Collector {
            step_names,
            csv,
            hlog,
            errors,
            open_model,
            live,
            totals_out: None,
        }
    }

    /// Also keep `shared` equal to the run's totals so far (complete
    /// intervals only): a reader locks it once per read, the collector once
    /// per interval, and the workers never.
    pub(crate) fn share_totals(mut self, shared: Arc<Mutex<IntervalStats>>) -> Collector {
        self.totals_out = Some(shared);
        self
    }

    /// Receive until every one of `workers` has sent its last report.
    /// `t0` is load start. A write error stops the output files but not the
    /// run's totals; it is returned with them.
    pub(crate) async fn run(
        mut self,
        workers: usize,
        t0: Instant,
        mut rx: mpsc::UnboundedReceiver<WorkerMsg>,
    ) -> (Totals, Option<RunFileError>) {
        let steps = self.step_names.len();
        let mut state: Vec<WorkerState> = (0..workers)
            .map(|_| WorkerState {
                next_index: 0,
                done: false,
                connects: 0,
            })
            .collect();
        // Per interval: the merged stats and the running users summed over
        // the workers that reported it.
        let mut pending: BTreeMap<u64, (IntervalStats, u32)> = BTreeMap::new();
        let mut totals = IntervalStats::new(steps);
        let mut error = None;
        while let Some(msg) = rx.recv().await {
            let w = &mut state[msg.worker];
            w.next_index = msg.index + 1;
            w.done |= msg.last;
            w.connects = msg.connects;
            let (stats, users) = pending
                .entry(msg.index)
                .or_insert_with(|| (IntervalStats::new(steps), 0));
            stats.add(&msg.stats);
            *users += msg.users;
            let all_done = state.iter().all(|w| w.done);
            // An interval is complete once no worker can still report it.
            while let Some((&index, _)) = pending.first_key_value() {
                if !all_done && state.iter().any(|w| !w.done && w.next_index <= index) {
                    break;
                }
                let (stats, users) = pending.remove(&index).expect("first key exists");
                let start = INTERVAL * index as u32;
                let mut end = start + INTERVAL;
                if all_done && pending.is_empty() {
                    // The final, partial interval ends when the load did.
                    end = t0.elapsed().max(start + Duration::from_millis(1));
                }
                if error.is_none() {
                    error = self.write_interval(start, end, &stats, users).err();
                }
                totals.add(&stats);
                if let Some(shared) = &self.totals_out {
                    shared.lock().expect("totals lock").add(&stats);
                }
                self.publish(&totals, &stats, end - start, users);
            }
            if all_done {
                break;
            }
        }
        let totals = Totals {
            stats: totals,
            connects: state.iter().map(|w| w.connects).sum(),
            finished: Instant::now(),
        };
        (totals, error)
    }

    fn write_interval(
        &mut self,
        start: Duration,
        end: Duration,
        stats: &IntervalStats,
        users: u32,
    ) -> Result<(), RunFileError> {
        self.csv
            .write_interval(end.as_secs_f64(), &self.step_names, stats, users)?;
        self.errors.write_interval(end, stats)?;
        let length = end - start;
        for (name, step) in self.step_names.iter().zip(&stats.steps) {
            if step.requests == 0 {
                continue;
            }
            self.hlog.write(start, length, name, &step.latency)?;
            if self.open_model {
                self.hlog
                    .write(start, length, &format!("{name}.corrected"), &step.corrected)?;
            }
        }
        self.hlog.flush()
    }

    fn publish(&self, totals: &IntervalStats, last: &IntervalStats, length: Duration, users: u32) {
        let all = last.all_steps();
        let mut live = self.live.lock().expect("live lock");
        live.requests = totals.requests();
        live.errors = totals.errors();
        live.rps = last.requests() as f64 / length.as_secs_f64().max(1e-3);
        live.p99_ms = percentiles(&all.latency).map(|p| p.p99);
        live.users = users;
    }
}
