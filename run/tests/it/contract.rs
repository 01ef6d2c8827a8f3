//! docs/run-folder.md is the contract for summary.json: its field table must
//! list exactly the fields `RunSummary` writes, so the doc cannot drift from
//! the code (a field added to the types without a line in the doc, or a
//! documented field nobody writes, fails here).

use std::collections::{BTreeMap, BTreeSet};

use clw_run::*;
use serde_json::Value;

fn doc() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/run-folder.md");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The `summary.json` section of the doc.
fn summary_section(doc: &str) -> &str {
    let start = doc
        .find("## summary.json")
        .expect("a `## summary.json` section");
    let rest = &doc[start + 3..];
    let end = rest.find("\n## ").map_or(rest.len(), |i| i);
    &rest[..end]
}

/// `a.{b,c}.d` -> `a.b.d`, `a.c.d` (one brace group per path is enough).
fn expand(path: &str) -> Vec<String> {
    match (path.find('{'), path.find('}')) {
        (Some(open), Some(close)) if open < close => path[open + 1..close]
            .split(',')
            .map(|part| format!("{}{}{}", &path[..open], part.trim(), &path[close + 1..]))
            .collect(),
        _ => vec![path.to_string()],
    }
}

/// The first backticked cell of every row of the field table.
fn documented_fields(doc: &str) -> BTreeSet<String> {
    let section = summary_section(doc);
    let listed: Vec<String> = section
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split('`').next())
        .flat_map(expand)
        .collect();
    // An entry that only heads others (`server.exit`, an object that may be
    // null) is not a leaf of its own.
    listed
        .iter()
        .filter(|p| !listed.iter().any(|q| q.starts_with(&format!("{p}."))))
        .cloned()
        .collect()
}

/// Dotted paths of every leaf: `a.b`, `list[].field`, `list[]`.
fn flatten(prefix: &str, value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&path, v, out);
            }
        }
        Value::Array(items) => {
            let path = format!("{prefix}[]");
            assert!(!items.is_empty(), "populate {path} so its fields are seen");
            for item in items {
                flatten(&path, item, out);
            }
        }
        _ => {
            out.insert(prefix.to_string());
        }
    }
}

fn p(v: f64) -> Option<Percentiles> {
    Some(Percentiles {
        p50: v,
        p90: v,
        p99: v,
        p999: v,
        max: v,
    })
}

/// Every optional field set, every map and list with one entry (named as
/// the doc names map keys), so the serializer shows every field.
fn fully_populated() -> RunSummary {
    RunSummary {
        schema_version: SCHEMA_VERSION,
        complete: true,
        clw_version: "0.1.0".into(),
        scenario: "s".into(),
        scenario_file: "s.toml".into(),
        target: "http://127.0.0.1:1".into(),
        metrics_url: Some("http://127.0.0.1:1/metrics".into()),
        concurrent_users: 1,
        duration_s: 1.0,
        ramp_up_s: 0.0,
        model: Model::Open,
        arrival_rate: Some(1.0),
        started_at: "2026-11-24T06:00:00Z".into(),
        elapsed_s: Some(1.0),
        host: Host::this(),
        requests: Requests {
            total: 1,
            ok: 1,
            failed: 0,
            by_status: BTreeMap::from([("<status>".into(), 1)]),
            by_error: BTreeMap::from([("<kind>".into(), 1)]),
            capture_failed: BTreeMap::from([("<reason>".into(), 1)]),
        },
        after_death: Some(AfterDeath {
            from_s: 1.0,
            requests: 1,
            failed: 1,
            by_error: BTreeMap::from([("<kind>".into(), 1)]),
        }),
        dropped_iterations: 0,
        connections_opened: 1,
        tls: Some(TlsSummary {
            handshakes: 2,
            handshake_ms: p(1.0),
            verified: false,
            cacert: Some("ca.pem".into()),
            client_cert: Some("client.pem".into()),
            warning: Some("WARNING: ...".into()),
        }),
        throughput_rps: Some(1.0),
        latency_ms: p(1.0),
        latency_corrected_ms: p(1.0),
        latency_note: "note".into(),
        steps: BTreeMap::from([(
            "<step>".into(),
            StepSummary {
                requests: 1,
                errors: 0,
                latency_ms: p(1.0),
                latency_corrected_ms: p(1.0),
            },
        )]),
        stages: Some(vec![StageSummary {
            start_s: 0.0,
            end_s: 1.0,
            from: 0.0,
            target: 1.0,
            requests: Some(1),
            throughput_rps: Some(1.0),
            p99_ms: Some(1.0),
            peak_rss_bytes: Some(1),
            peak_allocated_bytes: Some(1),
            memory_slope_bytes_per_s: Some(1.0),
        }]),
        memory: Some(MemoryReport {
            samples: 1,
            limit_bytes: Some(1),
            sources: MemorySources {
                rss: Some("proc".into()),
                rss_scope: Some("process tree of 1 (2 processes)".into()),
                allocator: Some("metrics".into()),
                cgroup: Some("cgroup-v2".into()),
                limit: Some("--memory-limit".into()),
                heap_metric: Some("nodejs_heap_size_used_bytes".into()),
            },
            peak_rss_bytes: Some(1),
            peak_rss_percent: Some(1.0),
            peak_percent_of: Some("cgroup working set".into()),
            peak_charged_bytes: Some(1),
            peak_allocated_bytes: Some(1),
            peak_allocated_percent: Some(1.0),
            slope_bytes_per_s: Some(1.0),
            r_squared: Some(1.0),
            plateau: Some(false),
            retained_bytes_per_session: Some(1.0),
            verdict: Some(Verdict::Leak),
            evidence: vec!["e".into()],
            projected_time_to_limit_s: Some(1.0),
            trend: Some(TrendReport {
                series: "allocated".into(),
                test: "mann-kendall".into(),
                blocks: 1,
                block_s: 1.0,
                p_value: 0.5,
                tau: 0.0,
                slope_bytes_per_s: 1.0,
                slope_low_bytes_per_s: Some(1.0),
                slope_high_bytes_per_s: Some(1.0),
                slope_confidence: 0.99,
                rising: true,
            }),
            leak_detected_at_s: Some(1.0),
            growth_sites: Some(vec![GrowthSite {
                function: "app::cache::insert".into(),
                file: Some("src/cache.rs".into()),
                line: Some(1),
                bytes_grown: 1,
                share_percent: 100.0,
            }]),
        }),
        server: ServerInfo {
            pid: Some(1),
            command: Some("c".into()),
            config: Some("f".into()),
            limit_enforcement: LimitEnforcement::By(Enforcement::CgroupV2),
            limit_bytes: Some(1),
            exit: Some(ServerExit {
                code: Some(0),
                signal: Some(9),
                shell_code: Some(137),
                at_s: Some(1.0),
                oom_killed: true,
                emulated: false,
                vanished: false,
                message: Some("m".into()),
            }),
        },
        thresholds: vec![ThresholdResult {
            name: "verdict".into(),
            limit: Some(80.0),
            op: "!=".into(),
            actual: Some(1.0),
            limit_verdict: Some("leak".into()),
            actual_verdict: Some("bounded".into()),
            expr: "verdict != leak".into(),
            passed: Some(true),
            why: Some("no memory limit known".into()),
        }],
        passed: Some(false),
        failures: vec!["f".into()],
        interrupted: true,
        interrupted_by: Some("SIGINT".into()),
        aborted: Some("a".into()),
        shard: Some(ShardInfo {
            index: 1,
            count: 2,
            first_user: 0,
            users: 1,
            samples_memory: true,
            start_at: Some("2026-11-24T06:00:00Z".into()),
        }),
        merged: Some(MergeInfo {
            count: 2,
            shards: vec![1],
            missing: vec![2],
            partial: true,
            memory_from: Some(1),
            start_spread_s: Some(0.0),
        }),
        notes: vec!["n".into()],
        no_memory: true,
    }
}

#[test]
fn the_docs_field_table_matches_the_serializer() {
    let doc = doc();
    let documented = documented_fields(&doc);
    let mut written = BTreeSet::new();
    flatten(
        "",
        &serde_json::to_value(fully_populated()).unwrap(),
        &mut written,
    );
    let undocumented: Vec<_> = written.difference(&documented).collect();
    let unwritten: Vec<_> = documented.difference(&written).collect();
    assert!(
        undocumented.is_empty() && unwritten.is_empty(),
        "docs/run-folder.md and RunSummary disagree.\n  written but not in the doc's table: {undocumented:?}\n  in the doc's table but never written: {unwritten:?}"
    );
}

#[test]
fn the_docs_example_reads_as_a_run_summary() {
    let doc = doc();
    let section = summary_section(&doc);
    let start = section.find("```json\n").expect("a json example") + 8;
    let end = start + section[start..].find("```").unwrap();
    let example: RunSummary = serde_json::from_str(&section[start..end])
        .unwrap_or_else(|e| panic!("the doc's example is not a RunSummary: {e}"));
    assert_eq!(example.schema_version, SCHEMA_VERSION);
    assert_eq!(example.concurrent_users, 100);
    assert_eq!(example.server.exit.map(|e| e.shell_code), Some(Some(137)));
}

#[test]
fn the_table_parser_sees_what_it_should() {
    // The check above is only as good as this parse: a doc with a missing
    // row must be caught.
    let doc = doc().replace("| `memory.plateau` |", "| memory.plateau |");
    assert!(!documented_fields(&doc).contains("memory.plateau"));
    assert!(documented_fields(&self::doc()).contains("memory.plateau"));
    assert!(documented_fields(&self::doc()).contains("server.exit.oom_killed"));
    assert!(!documented_fields(&self::doc()).contains("server.exit"));
}

/// The samples.csv header the doc shows is the one the writer writes.
#[test]
fn the_docs_samples_header_is_the_writers() {
    let doc = doc();
    let start = doc
        .find("## samples.csv")
        .expect("a `## samples.csv` section");
    let section = &doc[start..];
    let header = section
        .lines()
        .find(|l| l.starts_with("t_s,"))
        .expect("the header line in the samples.csv section");
    assert_eq!(header, SAMPLES_HEADER.join(","));
    for column in SAMPLES_HEADER {
        assert!(
            section.contains(&format!("`{column}`")),
            "docs/run-folder.md does not describe samples.csv's `{column}`"
        );
    }
}
