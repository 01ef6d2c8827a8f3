//! A run whose server died mid-load: the throughput and errors charts
//! integrate to the key figures, and the requests sent after the death are
//! named apart, in no line.

use std::path::Path;

use super::run::specs;
use crate::loaded::LoadedRun;

/// A 4 s load whose server died at 2.5 s: 100 requests/s while it lived
/// (2 resets at the death), then 5000 refusals, counted apart.
fn killed_run(dir: &Path) {
    std::fs::write(
        dir.join("latency.csv"),
        "t_s,step,count,p50_ms,p90_ms,p99_ms,max_ms,cp50_ms,cp90_ms,cp99_ms,cmax_ms,users\n\
         1.000,all,100,20,25,30,40,,,,,10\n2.000,all,100,20,25,30,40,,,,,10\n\
         3.000,all,52,20,25,30,40,,,,,10\n4.200,all,0,,,,,,,,,10\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("errors.csv"),
        "t_s,kind,errors,after_death\n1.000,all,1,0\n1.000,clw-session-evicted,1,0\n\
         2.000,all,0,0\n3.000,all,2,3000\n3.000,connect,0,3000\n3.000,reset,2,0\n\
         4.200,all,0,2000\n4.200,connect,0,2000\n",
    )
    .unwrap();
    let summary = serde_json::json!({
        "complete": true, "scenario": "s", "model": "closed", "elapsed_s": 4.2,
        "requests": {"total": 252, "ok": 249, "failed": 3,
                     "by_status": {"200": 249}, "by_error": {"reset": 2, "clw-session-evicted": 1}},
        "after_death": {"from_s": 2.5, "requests": 5000, "failed": 5000, "by_error": {"connect": 5000}},
        "throughput_rps": 252.0 / 2.5,
        "latency_ms": {"p50": 20.0, "p90": 25.0, "p99": 30.0, "p999": 40.0, "max": 40.0},
        "server": {"pid": 7, "limit_enforcement": "none",
                   "exit": {"signal": 9, "shell_code": 137, "at_s": 2.5, "oom_killed": false}}
    });
    std::fs::write(dir.join("summary.json"), summary.to_string()).unwrap();
}

/// The area under a line: each value over the span since the previous time.
fn integral(t: &[f64], values: &[Option<f64>]) -> f64 {
    let mut start = 0.0;
    t.iter()
        .zip(values)
        .map(|(t, v)| {
            let area = v.unwrap_or(0.0) * (t - start);
            start = *t;
            area
        })
        .sum()
}

#[test]
fn the_charts_integrate_to_the_key_figures_and_the_dead_are_apart() {
    let dir = tempfile::tempdir().unwrap();
    killed_run(dir.path());
    let run = LoadedRun::load(dir.path()).unwrap();
    let specs = specs(&run);
    let chart = specs.iter().find(|s| s.name == "throughput").unwrap();
    let [throughput, errors] = &chart.panels[..] else {
        panic!("two panels")
    };
    let s = run.finished().unwrap();
    let life = s.life_s().unwrap();
    assert_eq!(life, 2.5);
    let rps = &throughput.lines[0];
    let served = integral(rps.t, rps.values);
    assert!((served - 252.0).abs() < 1e-9, "{served}");
    assert_eq!(s.throughput_rps, Some(served / life));

    let kinds: Vec<&str> = errors.lines.iter().map(|l| l.label.as_str()).collect();
    assert_eq!(
        kinds,
        ["reset", "clw-session-evicted"],
        "no line for the dead"
    );
    let failed: f64 = errors
        .lines
        .iter()
        .flat_map(|l| l.values.iter().flatten())
        .sum();
    assert_eq!(failed, s.requests.failed as f64);
    for line in &errors.lines {
        let sum: f64 = line.values.iter().flatten().sum();
        assert_eq!(
            sum, s.requests.by_error[&line.label] as f64,
            "{}",
            line.label
        );
    }
    assert_eq!(
        errors.caption,
        "Errors by kind; after death: 5,000 requests failed, not counted"
    );
    for panel in [throughput, errors] {
        assert_eq!(panel.markers[0].label, "server died at 2.5 s");
    }

    let view = crate::view::RunView::new(&run, Vec::new(), None, Vec::new());
    let card = |label: &str| view.figures.iter().find(|f| f.label == label).unwrap();
    assert_eq!(card("Requests").value, "252");
    assert_eq!(
        card("Requests").note,
        "3 failed (1.2%); after death: 5,000 more sent, 5,000 failed, not counted"
    );
    assert_eq!(card("Throughput").value, "101 req/s");
    assert_eq!(card("Throughput").note, "over the server's life, 2.5 s");
    assert!(view
        .errors_by
        .contains(&("connect after death (not counted)".into(), "5,000".into())));
}

#[test]
fn an_old_run_folder_without_errors_csv_draws_errors_from_samples() {
    let dir = tempfile::tempdir().unwrap();
    crate::fixtures::leak_oom(dir.path()).unwrap();
    assert!(!dir.path().join("errors.csv").exists());
    let run = LoadedRun::load(dir.path()).unwrap();
    let specs = specs(&run);
    let chart = specs.iter().find(|s| s.name == "throughput").unwrap();
    let errors = &chart.panels[1];
    assert_eq!(errors.lines.len(), 1);
    assert_eq!(errors.lines[0].values, &run.samples.errors);
    assert_eq!(chart.panels[0].lines[0].values, &run.latency.rps);
}
