//! Where the service's memory is read from, as the flags chose it, checked
//! before anything starts (bad input exits 2): a local PID or the metrics
//! page's `process_resident_memory_bytes` (the default), a series of the
//! metrics page (`--memory-metric`), a Prometheus query
//! (`--prometheus-url --memory-query`), or a cgroup (`--cgroup`,
//! `--container`). clap keeps them mutually exclusive; this module parses
//! what each one needs.

use clw_limit::CgroupMemory;

use super::sampler::scrape::Picks;
use super::selector::Selector;
use super::MemoryAggregate;
use crate::outcome::FlagError;
use crate::target::Target;

/// The chosen source of the service's memory (and, with it, its limit).
#[derive(Debug, Clone, Default)]
pub(crate) enum SourceSpec {
    /// /proc of the PID when known, else `process_resident_memory_bytes`;
    /// the limit from `clw_memory_limit_bytes`.
    #[default]
    Default,
    /// Series of the metrics page picked by selectors.
    Metrics(Picks),
    /// Instant queries of a Prometheus server.
    Prometheus {
        server: Target,
        memory: String,
        limit: Option<String>,
        how: MemoryAggregate,
    },
    /// A cgroup read as `docker stats` does.
    Cgroup(CgroupMemory),
}

/// The flags that choose the source, as given (each names itself in
/// errors). clap keeps the sources mutually exclusive.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SourceFlags<'a> {
    pub(crate) memory_metric: Option<&'a str>,
    pub(crate) limit_metric: Option<&'a str>,
    pub(crate) memory_aggregate: MemoryAggregate,
    pub(crate) prometheus_url: Option<&'a str>,
    pub(crate) memory_query: Option<&'a str>,
    pub(crate) limit_query: Option<&'a str>,
    pub(crate) cgroup: Option<&'a std::path::Path>,
    pub(crate) container: Option<&'a str>,
}

impl SourceSpec {
    /// The source the flags ask for; `Err` says which flag is wrong and why.
    pub(crate) fn from_flags(opts: &SourceFlags<'_>) -> Result<SourceSpec, FlagError> {
        let how = opts.memory_aggregate;
        let selector = |flag: &'static str, text: Option<&str>| {
            text.map(|t| Selector::parse(t).map_err(|e| FlagError::new(flag, e)))
                .transpose()
        };
        let limit = selector("--limit-metric", opts.limit_metric)?;
        if let Some(memory) = selector("--memory-metric", opts.memory_metric)? {
            return Ok(SourceSpec::Metrics(Picks {
                memory: Some(memory),
                limit,
                how,
            }));
        }
        if let (Some(url), Some(memory)) = (opts.prometheus_url, opts.memory_query) {
            let server = Target::parse(url).map_err(|e| FlagError::new("--prometheus-url", e))?;
            check_promql("--memory-query", memory)?;
            if let Some(limit) = opts.limit_query {
                check_promql("--limit-query", limit)?;
            }
            return Ok(SourceSpec::Prometheus {
                server,
                memory: memory.to_string(),
                limit: opts.limit_query.map(str::to_string),
                how,
            });
        }
        if let Some(dir) = opts.cgroup {
            return open_cgroup("--cgroup", dir);
        }
        if let Some(container) = opts.container {
            let dir = clw_limit::find_container(container)
                .map_err(|e| FlagError::new("--container", e))?;
            return open_cgroup("--container", &dir);
        }
        Ok(match limit {
            // The default memory, with the limit from a selector.
            Some(limit) => SourceSpec::Metrics(Picks {
                memory: None,
                limit: Some(limit),
                how,
            }),
            None => SourceSpec::Default,
        })
    }

    /// Chosen by a flag: a source that gives nothing is then a setup error
    /// rather than a note.
    pub(crate) fn is_explicit(&self) -> bool {
        !matches!(self, SourceSpec::Default)
    }

    /// `memory.sources.limit` for a limit this source reads.
    pub(crate) fn limit_word(&self) -> &'static str {
        match self {
            SourceSpec::Prometheus { .. } => "prometheus",
            SourceSpec::Cgroup(_) => "cgroup",
            SourceSpec::Default | SourceSpec::Metrics(_) => "metrics",
        }
    }

    /// Series picks for the metrics scraper, if any.
    pub(crate) fn picks(&self) -> Option<&Picks> {
        match self {
            SourceSpec::Metrics(picks) => Some(picks),
            _ => None,
        }
    }
}

fn check_promql(flag: &'static str, query: &str) -> Result<(), FlagError> {
    promql_parser::parser::parse(query)
        .map(drop)
        .map_err(|e| FlagError::new(flag, format!("`{query}` is not PromQL: {e}")))
}

fn open_cgroup(flag: &'static str, dir: &std::path::Path) -> Result<SourceSpec, FlagError> {
    let cgroup = CgroupMemory::open(dir).map_err(|e| FlagError::new(flag, e))?;
    cgroup.read().map_err(|e| FlagError::new(flag, e))?;
    Ok(SourceSpec::Cgroup(cgroup))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::opts::{AuthCommand, Command, Opts};

    fn spec(extra: &[&str]) -> Result<SourceSpec, String> {
        let mut args = vec!["clw-cli", "auth", "load-test", "--target", "http://x"];
        args.extend_from_slice(extra);
        let opts = Opts::try_parse_from(args).map_err(|e| format!("clap: {e}"))?;
        let Command::Auth {
            command: AuthCommand::LoadTest(lt),
        } = opts.command
        else {
            panic!()
        };
        SourceSpec::from_flags(&crate::load_test::source_flags(&lt)).map_err(|e| e.to_string())
    }

    #[test]
    fn each_flag_gives_its_source() {
        assert!(matches!(spec(&[]), Ok(SourceSpec::Default)));
        let sel = r#"container_memory_working_set_bytes{container="auth"}"#;
        let Ok(SourceSpec::Metrics(picks)) =
            spec(&["--memory-metric", sel, "--memory-aggregate", "sum"])
        else {
            panic!()
        };
        assert!(picks.memory.is_some() && picks.limit.is_none());
        assert_eq!(picks.how, MemoryAggregate::Sum);
        let Ok(SourceSpec::Metrics(picks)) =
            spec(&["--limit-metric", "container_spec_memory_limit_bytes"])
        else {
            panic!()
        };
        assert!(picks.memory.is_none() && picks.limit.is_some());
        assert_eq!(picks.how, MemoryAggregate::Max, "max is the default");
        let prom = spec(&[
            "--prometheus-url",
            "http://127.0.0.1:9090",
            "--memory-query",
            "max(process_resident_memory_bytes)",
        ]);
        assert!(
            matches!(prom, Ok(SourceSpec::Prometheus { limit: None, .. })),
            "{prom:?}"
        );
    }

    #[test]
    fn bad_values_name_their_flag() {
        let err = spec(&["--memory-metric", "sum(up)"]).unwrap_err();
        assert!(err.starts_with("--memory-metric: `sum(up)`"), "{err}");
        let err = spec(&["--limit-metric", "up{"]).unwrap_err();
        assert!(err.starts_with("--limit-metric: "), "{err}");
        let err = spec(&[
            "--prometheus-url",
            "http://p:9090",
            "--memory-query",
            "rate(x[5m]",
        ])
        .unwrap_err();
        assert!(
            err.starts_with("--memory-query: `rate(x[5m]` is not PromQL"),
            "{err}"
        );
        let err = spec(&["--prometheus-url", "ftp://p", "--memory-query", "up"]).unwrap_err();
        assert!(err.starts_with("--prometheus-url: "), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let err = spec(&["--cgroup", dir.path().to_str().unwrap()]).unwrap_err();
        assert!(
            err.starts_with("--cgroup: ") && err.contains("not a memory cgroup"),
            "{err}"
        );
        let err = spec(&["--container", "0123456789ab"]).unwrap_err();
        assert!(err.starts_with("--container: no cgroup found"), "{err}");
    }

    #[test]
    fn sources_exclude_each_other_and_a_local_pid() {
        let sel = "x";
        let prom = ["--prometheus-url", "http://p:9090", "--memory-query", "up"];
        let clashes: Vec<Vec<&str>> = vec![
            vec!["--memory-metric", sel, "--server-pid", "1"],
            vec!["--memory-metric", sel, "--no-metrics"],
            vec!["--memory-metric", sel, "--cgroup", "/tmp"],
            vec!["--memory-metric", sel, "--container", "abc"],
            [&prom[..], &["--memory-metric", sel]].concat(),
            [&prom[..], &["--cgroup", "/tmp"]].concat(),
            [&prom[..], &["--server-pid", "1"]].concat(),
            [&prom[..], &["--limit-metric", sel]].concat(),
            vec!["--cgroup", "/tmp", "--container", "abc"],
            vec!["--cgroup", "/tmp", "--server-pid", "1"],
            vec![
                "--container",
                "abc",
                "--spawn-server",
                "x",
                "--memory-limit",
                "1G",
            ],
            vec!["--prometheus-url", "http://p:9090"],
            vec!["--memory-query", "up"],
            vec!["--limit-query", "up"],
        ];
        for args in clashes {
            let err = spec(&args).unwrap_err();
            assert!(err.starts_with("clap: "), "{args:?} was accepted: {err}");
        }
    }
}
