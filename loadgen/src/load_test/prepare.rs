//! The validate phase: every option resolved and checked before any side
//! effect, so bad input exits 2 before a folder, a server or a request.
//! Its product, [`RunConfig`], is all the later phases see of the flags.

use std::path::PathBuf;
use std::time::SystemTime;

use clw_run::threshold::Threshold;

use super::config::{RunConfig, SpawnConfig};
use crate::load::shape::{self, LoadFlags};
use crate::memory::heap_profiles::HeapSettings;
use crate::memory::source::{SourceFlags, SourceSpec};
use crate::memory::LimitRule;
use crate::opts::{LoadTestOpts, OnServerExit};
use crate::outcome::{usage, Error};
use crate::scenario::{HeaderFlag, Scenario};
use crate::server;
use crate::target::Target;
use crate::watched::Watched;

/// The scenario's defaults overridden by the flags, each checked; the
/// thresholds with the flag-made ones and the defaults; the run folder.
pub(super) fn prepare(opts: &LoadTestOpts) -> Result<RunConfig, Error> {
    let reach = crate::target::Reach {
        tls: crate::tls::for_urls(&crate::tls::TlsFlags {
            urls: std::iter::once(opts.target.as_str())
                .chain(opts.metrics_url.as_deref())
                .chain(opts.heap_profile_url.as_deref())
                .collect(),
            cacert: opts.cacert.as_deref(),
            insecure: opts.insecure,
            cert: opts.cert.as_deref(),
            key: opts.key.as_deref(),
        })
        .map_err(usage)?,
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
    let readiness =
        server::Readiness::from_flags(opts.ready_path.as_deref(), opts.ready_tcp).map_err(usage)?;
    let spawn = match (&opts.spawn_server, opts.memory_limit) {
        (Some(command), Some(limit_bytes)) => {
            server::split_command(command).map_err(usage)?;
            Some(SpawnConfig {
                command: command.clone(),
                limit_bytes,
                readiness,
                ready_timeout: opts.ready_timeout,
            })
        }
        // clap requires --memory-limit with --spawn-server.
        _ => None,
    };
    super::disk::check_floor(&out, opts.min_free_space).map_err(crate::outcome::setup)?;
    let (watched, memory_source, metrics_url) = memory_side(opts, &target, part.samples_memory)?;
    let gauges = crate::memory::selector::Gauges::parse(
        opts.heap_metric.as_deref(),
        opts.logins_metric.as_deref(),
    )
    .map_err(usage)?;
    // `--header 'Host: ...'` names the virtual host.
    let authority = match HeaderFlag::effective(&opts.headers)
        .into_iter()
        .find(|h| h.is_host())
    {
        Some(host) => host.value.clone(),
        None => target.authority.clone(),
    };
    Ok(RunConfig {
        scenario,
        scenario_file: opts.scenario.clone(),
        target,
        reach,
        authority,
        users: shape.users,
        duration: shape.duration,
        ramp_up: shape.ramp_up,
        model: shape.model,
        warm_up: shape.warm_up(),
        stages: shape.stages,
        threads: opts.threads.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        }),
        timeout: opts.timeout,
        seed: opts.seed.unwrap_or(0x5eed),
        load_notes: shape
            .notes
            .into_iter()
            .chain(header_note(&opts.headers))
            .collect(),
        thresholds,
        abort_on_fail: opts.abort_on_fail,
        out,
        quiet: opts.quiet,
        report: !opts.no_report,
        server_pid: opts.server_pid.filter(|_| part.samples_memory),
        part,
        start_at: opts.start_at,
        spawn,
        watched,
        stop_after_death: opts.on_server_exit == OnServerExit::Stop,
        measure_memory: !opts.no_memory,
        limit: LimitRule::given(opts.memory_limit),
        sample_interval: opts.sample_interval,
        metrics_url_given: opts.metrics_url.is_some() && metrics_url.is_some(),
        metrics_url,
        memory_source,
        gauges,
        heap: HeapSettings {
            off: opts.no_heap_profile,
            asked: opts.heap_profile,
            url: opts.heap_profile_url.clone(),
            token: opts.heap_profile_token.clone(),
            every: opts.heap_profile_every,
            symbols: opts.heap_profile_symbols.clone(),
        },
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
    let memory_source = SourceSpec::from_flags(&source_flags(opts)).map_err(usage)?;
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

/// The flags that choose the memory source, borrowed from the options.
pub(crate) fn source_flags(opts: &LoadTestOpts) -> SourceFlags<'_> {
    SourceFlags {
        memory_metric: opts.memory_metric.as_deref(),
        limit_metric: opts.limit_metric.as_deref(),
        memory_aggregate: opts.memory_aggregate,
        prometheus_url: opts.prometheus_url.as_deref(),
        memory_query: opts.memory_query.as_deref(),
        limit_query: opts.limit_query.as_deref(),
        cgroup: opts.cgroup.as_deref(),
        container: opts.container.as_deref(),
    }
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
