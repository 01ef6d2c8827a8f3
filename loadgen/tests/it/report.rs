//! `clw-cli report RUN_DIR` on a run killed before its verdict: the verdict
//! is recomputed from samples.csv with the same analysis the load test runs
//! (clw_run::analysis), and the page says it was recomputed.

use clap::Parser;

fn report(dir: &std::path::Path) -> clw_cli::Outcome {
    let opts =
        clw_cli::Opts::try_parse_from(["clw-cli".as_ref(), "report".as_ref(), dir.as_os_str()])
            .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(clw_cli::run(opts)).unwrap()
}

#[test]
fn report_recomputes_a_missing_verdict_and_says_so() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("killed");
    clw_report::fixtures::leak_oom(&dir).unwrap();
    let path = dir.join("summary.json");
    let mut summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    // As a run killed before its end leaves it: partial, placeholder memory.
    summary["complete"] = false.into();
    summary["memory"] = serde_json::json!({"samples": 0, "verdict": "inconclusive",
        "evidence": ["no memory samples"], "limit_bytes": 268_435_456u64});
    std::fs::write(&path, summary.to_string()).unwrap();

    let outcome = report(&dir);
    assert_eq!(outcome.exit_code, 0);
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    assert!(
        html.contains(r#"class="banner leak""#),
        "verdict not recomputed"
    );
    assert!(
        html.contains("verdict recomputed from samples.csv (the run did not finish)"),
        "recomputation not said"
    );
    // The recomputed evidence is the analysis's own, not the placeholder's.
    assert!(!html.contains("no memory samples"));
    assert!(html.contains("never levelled off") || html.contains("no plateau"));
}
