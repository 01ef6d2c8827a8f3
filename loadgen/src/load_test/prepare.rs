//! The validate phase: every option resolved and checked before any side
//! effect, so bad input exits 2 before a folder, a server or a request.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use clw_run::threshold::Threshold;

use crate::load::shape::{self, LoadFlags};
use crate::load::stages::Stages;
use crate::memory::source::SourceSpec;
use crate::opts::LoadTestOpts;
use crate::outcome::{usage, Error};
use crate::scenario::{LoadModel, Scenario};
use crate::server;
use crate::target::Target;
use crate::watched::Watched;

/// Everything resolved from the options before any side effect.
pub(super) struct Prepared {
    pub(super) scenario: Scenario,
    pub(super) target: Target,
    /// The run's TLS settings (when any URL of it is https) and its
    /// `--connect-to` rules, for every URL.
    pub(super) reach: crate::target::Reach,
    pub(super) users: u32,
    pub(super) duration: Duration,
    pub(super) ramp_up: Duration,
    pub(super) model: LoadModel,
    /// A load that changes over time (replaces `ramp_up`).
    pub(super) stages: Option<Stages>,
    /// Until when memory is not judged: the ramp-up, or the time the
    /// stages first reach their peak.
    pub(super) warm_up: Duration,
    /// How flags and the scenario's `[load]` combined, when worth saying.
    pub(super) load_notes: Vec<String>,
    pub(super) thresholds: Vec<Threshold>,
    pub(super) out: PathBuf,
    pub(super) metrics_url: Option<String>,
    /// `--server-pid`: the process whose death fails the run.
    pub(super) watched: Option<Watched>,
    /// `--shard`: this process's part of the run.
    pub(super) part: crate::shard::Part,
    /// Where the service's memory is read from.
    pub(super) memory_source: SourceSpec,
    /// When a spawned server is ready (`--ready-path`, `--ready-tcp`).
    pub(super) readiness: server::Readiness,
    /// `--heap-metric` / `--logins-metric`.
    pub(super) gauges: crate::memory::selector::Gauges,
}

impl Prepared {
    /// summary.json in the run folder: written at the start, at a server's
    /// death and at the end.
    pub(super) fn summary_path(&self) -> PathBuf {
        self.out.join("summary.json")
    }
}

/// The scenario's defaults overridden by the flags, each checked; the
/// thresholds with the flag-made ones and the defaults; the run folder.
pub(super) fn prepare(opts: &LoadTestOpts) -> Result<Prepared, Error> {
    let reach = crate::target::Reach {
        tls: crate::tls::for_urls(opts).map_err(usage)?,
        connect_to: opts.connect_to.clone(),
    };
    let target = reach.url(&opts.target).map_err(usage)?;
    let scenario = Scenario::load(&opts.scenario)
        .map_err(usage)?
        .with_headers(&opts.headers);
    let flags = LoadFlags {
        users: opts.concurrent_users,
        duration: opts.duration,
        ramp_up: opts.ramp_up,
        arrival_rate: opts.arrival_rate,
        stages: opts
            .stages
            .iter()
            .map(|s| crate::scenario::Stage {
                duration: s.duration,
                target: s.target,
            })
            .collect(),
    };
    let shape = shape::resolve(&opts.scenario, &scenario.defaults, &flags).map_err(usage)?;
    if opts.timeout.is_zero() || opts.sample_interval.is_zero() {
        return Err(usage("--timeout and --sample-interval must be above 0"));
    }
    let mut thresholds = thresholds(opts, &scenario)?;
    let part = crate::shard::resolve(
        opts.shard,
        opts.shard_samples_memory,
        shape.users,
        opts.start_at,
        opts.spawn_server.is_some(),
    )
    .map_err(usage)?;
    if let Some(at) = opts.start_at {
        crate::shard::wait_for(at, SystemTime::now()).map_err(usage)?;
    }
    // A shard that does not sample memory has no memory figures to judge:
    // the merged run judges them on the sampling shard's.
    thresholds.retain(|t| part.samples_memory || !t.metric.is_memory());
    let out = opts.out.clone().unwrap_or_else(|| {
        PathBuf::from("reports").join(format!(
            "{}-{}",
            super::folder_stamp(SystemTime::now()),
            scenario.name
        ))
    });
    if let Some(command) = &opts.spawn_server {
        server::split_command(command).map_err(usage)?;
    }
    super::disk::check_floor(&out, opts.min_free_space).map_err(crate::outcome::setup)?;
    let readiness =
        server::Readiness::from_flags(opts.ready_path.as_deref(), opts.ready_tcp).map_err(usage)?;
    let (watched, memory_source, metrics_url) = memory_side(opts, &target, part.samples_memory)?;
    let gauges = crate::memory::selector::Gauges::parse(
        opts.heap_metric.as_deref(),
        opts.logins_metric.as_deref(),
    )
    .map_err(usage)?;
    Ok(Prepared {
        scenario,
        target,
        reach,
        users: shape.users,
        duration: shape.duration,
        ramp_up: shape.ramp_up,
        model: shape.model,
        warm_up: shape.warm_up(),
        stages: shape.stages,
        load_notes: shape
            .notes
            .into_iter()
            .chain(header_note(&opts.headers))
            .collect(),
        thresholds,
        out,
        metrics_url,
        watched,
        part,
        memory_source,
        readiness,
        gauges,
    })
}

/// The scenario's thresholds with those the flags add (`--threshold`,
/// `--max-peak-rss-percent`) and the defaults.
fn thresholds(opts: &LoadTestOpts, scenario: &Scenario) -> Result<Vec<Threshold>, Error> {
    let mut flags = opts.threshold.clone();
    if let Some(limit) = opts.max_peak_rss_percent {
        flags.push(
            clw_run::threshold::parse(&format!("peak_rss_percent <= {limit}"))
                .map_err(|e| usage(format!("--max-peak-rss-percent: {e}")))?,
        );
    }
    Ok(clw_run::threshold::with_defaults(
        &scenario.thresholds,
        &flags,
    ))
}

/// Where memory is read from: the watched process (`--server-pid`), the
/// memory source and the metrics page. A shard that does not sample memory
/// reads none of them (the source is still checked in every shard).
fn memory_side(
    opts: &LoadTestOpts,
    target: &Target,
    samples_memory: bool,
) -> Result<(Option<Watched>, SourceSpec, Option<String>), Error> {
    let watched = opts
        .server_pid
        .filter(|_| samples_memory)
        .map(Watched::new)
        .transpose()
        .map_err(usage)?;
    let memory_source = SourceSpec::from_opts(opts).map_err(usage)?;
    let memory_source = if samples_memory {
        memory_source
    } else {
        SourceSpec::Default
    };
    // A mistyped page is bad input, in every shard, before anything runs.
    for (flag, url) in [
        ("--metrics-url", &opts.metrics_url),
        ("--heap-profile-url", &opts.heap_profile_url),
    ] {
        if let Some(url) = url {
            Target::parse(url).map_err(|e| usage(format!("{flag}: {e}")))?;
        }
    }
    let metrics_url = if opts.no_metrics || opts.no_memory || !samples_memory {
        None
    } else {
        Some(
            opts.metrics_url
                .clone()
                .unwrap_or_else(|| target.join("/metrics")),
        )
    };
    Ok((watched, memory_source, metrics_url))
}

/// Which `--header`s every request carried, by name only: a value may be a
/// credential, and the run folder is shared.
fn header_note(headers: &[crate::scenario::HeaderFlag]) -> Option<String> {
    let names: Vec<&str> = crate::scenario::HeaderFlag::effective(headers)
        .iter()
        .map(|h| h.name.as_str())
        .collect();
    (!names.is_empty()).then(|| {
        format!(
            "--header on every request: {} (values not recorded)",
            names.join(", ")
        )
    })
}
