//! End-to-end rendering of the synthetic run folders in `clw_report::fixtures`:
//! every chart exists and is valid SVG, pages are self-contained, and damaged
//! input renders with a notice.

use std::path::{Path, PathBuf};

use clw_report::{fixtures, render_comparison, render_index, render_run, ReportError};

const CHARTS: [&str; 4] = ["memory", "cache", "throughput", "latency"];

use crate::common::*;

/// Every chart file exists, is valid SVG, and has its PNG twin.
fn assert_charts(dir: &Path, names: &[&str]) {
    for name in names {
        let svg = dir.join("charts").join(format!("{name}.svg"));
        let text =
            std::fs::read_to_string(&svg).unwrap_or_else(|e| panic!("{}: {e}", svg.display()));
        parse_svg(&text, &svg.display().to_string());
        let png = std::fs::read(dir.join("charts").join(format!("{name}.png"))).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{name}.png is not a PNG");
    }
}

#[test]
fn leak_with_oom_kill_gets_a_red_banner_and_all_charts() {
    let (_root, dir) = run(fixtures::leak_oom);
    let rendered = render_run(&dir).unwrap();
    assert!(rendered.notices.is_empty(), "{:?}", rendered.notices);
    assert_eq!(rendered.page, dir.join("index.html"));
    assert_eq!(
        rendered.files.len(),
        CHARTS.len() * 2 + 1,
        "{:?}",
        rendered.files
    );
    assert!(rendered.files.iter().all(|f| f.exists()));
    assert_charts(&dir, &CHARTS);
    let html = page(&dir);
    assert_eq!(assert_self_contained(&html), CHARTS.len());
    assert!(html.contains(r#"class="banner leak""#));
    assert!(
        html.contains("OOM-killed by the kernel at 41.5 s"),
        "kill time missing"
    );
    assert!(html.contains("96%"), "peak % missing");
    assert!(html.contains("256 MiB"), "limit missing");
    let memory = std::fs::read_to_string(dir.join("charts/memory.svg")).unwrap();
    for label in [
        "limit 256 MiB",
        "80% of limit",
        "OOM kill at 41.5 s",
        "ramp-up",
        "RSS (from proc)",
        "jemalloc allocated (from metrics)",
        "cgroup usage",
    ] {
        assert!(memory.contains(label), "memory chart lacks {label}");
    }
    for step in ["login", "validate", "all steps"] {
        assert!(
            html.contains(&format!("<td>{step}</td>")),
            "step row {step} missing"
        );
    }
    assert!(
        html.contains("peak_rss_percent") && html.contains("FAIL"),
        "thresholds missing"
    );
    assert!(
        html.contains("cgroup-v2") && html.contains("profiles/leaky.json"),
        "setup missing"
    );
}

#[test]
fn bounded_sawtooth_gets_a_green_banner() {
    let (_root, dir) = run(fixtures::bounded_sawtooth);
    render_run(&dir).unwrap();
    assert_charts(&dir, &CHARTS);
    let html = page(&dir);
    assert_eq!(assert_self_contained(&html), CHARTS.len());
    assert!(html.contains(r#"class="banner bounded""#));
    assert!(html.contains("BOUNDED"));
    assert!(html.contains("48%"), "peak % missing");
    assert!(!html.contains("OOM-killed"));
}

#[test]
fn samples_cut_mid_write_still_render_with_a_notice() {
    let (_root, dir) = run(fixtures::partial_samples);
    let text = std::fs::read_to_string(dir.join("samples.csv")).unwrap();
    assert!(!text.ends_with('\n'), "fixture should end mid-row");
    let rendered = render_run(&dir).unwrap();
    let notice = "samples.csv truncated: last row ignored";
    assert!(
        rendered.notices.iter().any(|n| n == notice),
        "{:?}",
        rendered.notices
    );
    assert_charts(&dir, &CHARTS);
    let html = page(&dir);
    assert_eq!(assert_self_contained(&html), CHARTS.len());
    assert!(html.contains(notice), "notice not shown on the page");
    // The run was killed before its verdict: the report recomputes it from
    // samples.csv (a steady climb: leak) and says so.
    assert!(
        html.contains(r#"class="banner leak""#),
        "verdict not recomputed"
    );
    assert!(
        html.contains("verdict recomputed from samples.csv (the run did not finish)"),
        "recomputation not said"
    );
}

/// summary.json rewritten by `edit`, then the page rendered.
fn render_edited(
    write: fn(&Path) -> std::io::Result<()>,
    edit: impl FnOnce(&mut serde_json::Value),
) -> (tempfile::TempDir, PathBuf, String) {
    let (root, dir) = run(write);
    let path = dir.join("summary.json");
    let mut summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut summary);
    std::fs::write(&path, summary.to_string()).unwrap();
    render_run(&dir).unwrap();
    let html = page(&dir);
    (root, dir, html)
}

#[test]
fn summary_without_a_memory_block_gets_a_recomputed_verdict() {
    let (_root, _dir, html) = render_edited(fixtures::bounded_sawtooth, |s| {
        s.as_object_mut().unwrap().remove("memory");
    });
    assert!(html.contains(r#"class="banner bounded""#), "not recomputed");
    assert!(html.contains("verdict recomputed from samples.csv (summary.json has none)"));
    assert!(
        html.contains("memory levelled off"),
        "no recomputed evidence"
    );
}

#[test]
fn summary_without_a_verdict_gets_a_recomputed_one() {
    let (_root, _dir, html) = render_edited(fixtures::leak_oom, |s| {
        s["memory"]["verdict"] = serde_json::Value::Null;
    });
    assert!(html.contains(r#"class="banner leak""#) && html.contains("LEAK"));
    assert!(html.contains("verdict recomputed from samples.csv (summary.json has none)"));
}

#[test]
fn a_leak_never_shows_a_plateau_even_from_an_old_summary() {
    // clw-cli before the plateau fix wrote `plateau: true` beside `leak` for
    // a step-shaped climb that the OOM killer ended.
    let (_root, _dir, html) = render_edited(fixtures::leak_oom, |s| {
        s["memory"]["plateau"] = true.into();
    });
    assert!(html.contains(r#"class="banner leak""#));
    assert!(!html.contains("reached a plateau"), "a leak with a plateau");
    let (_root, _dir, html) = render_edited(fixtures::bounded_sawtooth, |_| {});
    assert!(
        html.contains("memory reached a plateau"),
        "bounded plateau not said"
    );
}

#[test]
fn run_without_memory_figures_or_server_renders_inconclusive() {
    let (_root, dir) = run(fixtures::no_server);
    render_run(&dir).unwrap();
    // No session or eviction counts: the session-cache chart is left out,
    // and the page says why.
    let charts: Vec<&str> = CHARTS.into_iter().filter(|c| *c != "cache").collect();
    assert_eq!(charts.len(), CHARTS.len() - 1);
    assert_charts(&dir, &charts);
    assert!(!dir.join("charts/cache.svg").exists());
    let html = page(&dir);
    assert_eq!(assert_self_contained(&html), charts.len());
    assert!(html.contains("The session cache chart is left out because this service exported no session-cache metrics"));
    assert!(html.contains(r#"class="banner inconclusive""#));
    assert!(html.contains("no memory figures recorded"));
    assert!(html.contains("not spawned by clw-cli"));
    let memory = std::fs::read_to_string(dir.join("charts/memory.svg")).unwrap();
    assert!(memory.contains("no memory samples in samples.csv"));
}

#[test]
fn rendering_twice_gives_the_same_page() {
    let (_root, dir) = run(fixtures::bounded_sawtooth);
    render_run(&dir).unwrap();
    let first = page(&dir);
    render_run(&dir).unwrap();
    assert_eq!(first, page(&dir));
}

#[test]
fn user_text_is_escaped() {
    let (_root, dir) = run(fixtures::bounded_sawtooth);
    let path = dir.join("summary.json");
    let mut summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    summary["scenario"] = "<script>alert(1)</script>".into();
    std::fs::write(&path, summary.to_string()).unwrap();
    render_run(&dir).unwrap();
    let html = page(&dir);
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert_eq!(assert_self_contained(&html), CHARTS.len());
}

#[test]
fn folder_without_run_files_is_refused() {
    let root = tempfile::tempdir().unwrap();
    match render_run(root.path()) {
        Err(ReportError::NotARunFolder(p)) => assert_eq!(p, root.path()),
        other => panic!("expected NotARunFolder, got {other:?}"),
    }
    assert!(matches!(
        render_run(&root.path().join("missing")),
        Err(ReportError::Io { .. })
    ));
}

#[test]
fn garbage_before_the_last_line_is_an_error_naming_the_line() {
    let (_root, dir) = run(fixtures::bounded_sawtooth);
    let path = dir.join("samples.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    let broken = text.replacen("\n0.500,", "\n0.500,lots,", 1);
    std::fs::write(&path, broken).unwrap();
    let err = render_run(&dir).unwrap_err().to_string();
    assert!(err.contains("samples.csv:3"), "{err}");
}

#[test]
fn comparison_overlays_runs_and_index_lists_everything() {
    let root = tempfile::tempdir().unwrap();
    let leak = root.path().join("leak-repro");
    let fixed = root.path().join("fix-verify");
    fixtures::leak_oom(&leak).unwrap();
    fixtures::bounded_sawtooth(&fixed).unwrap();
    render_run(&leak).unwrap();
    render_run(&fixed).unwrap();
    let out = root.path().join("compare");
    let rendered = render_comparison(&[leak.clone(), fixed.clone()], &out).unwrap();
    assert!(rendered.files.iter().all(|f| f.exists()));
    assert_charts(&out, &["memory", "throughput", "latency"]);
    let html = page(&out);
    assert_eq!(assert_self_contained(&html), 3);
    assert!(html.contains("leak-repro") && html.contains("fix-verify"));
    assert!(html.contains(r#"href="../leak-repro/index.html""#));
    assert!(html.contains(r#"class="banner leak""#) && html.contains(r#"class="banner bounded""#));
    let memory = std::fs::read_to_string(out.join("charts/memory.svg")).unwrap();
    assert!(memory.contains("leak-repro RSS") && memory.contains("fix-verify RSS"));

    // A plain folder that is not a run is left out; a broken run is listed as such.
    std::fs::create_dir(root.path().join("not-a-run")).unwrap();
    let broken = root.path().join("broken");
    std::fs::create_dir(&broken).unwrap();
    std::fs::write(broken.join("samples.csv"), "t_s,rss_bytes\nx,1\n2,3\n").unwrap();
    let index = render_index(root.path()).unwrap();
    assert_eq!(index, root.path().join("index.html"));
    let html = std::fs::read_to_string(&index).unwrap();
    assert_eq!(assert_self_contained(&html), 0);
    assert!(html.contains(r#"href="./leak-repro/index.html""#));
    assert!(html.contains(r#"href="./fix-verify/index.html""#));
    assert!(html.contains(r#"href="./compare/index.html""#));
    assert!(html.contains("leak-repro vs fix-verify"));
    assert!(!html.contains("not-a-run"));
    assert!(
        html.contains("broken: ") && html.contains("samples.csv:2"),
        "broken run not reported"
    );
}

#[test]
fn comparison_needs_runs() {
    let root = tempfile::tempdir().unwrap();
    assert!(matches!(
        render_comparison(&[], root.path()),
        Err(ReportError::NoRuns)
    ));
}

#[test]
fn bounded_verdict_with_an_oom_kill_still_shows_red() {
    let (_root, dir) = run(fixtures::bounded_sawtooth);
    let path = dir.join("summary.json");
    let mut summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    summary["server"]["exit"] = serde_json::json!({"code": null, "signal": 9, "at_s": 12.5, "oom_killed": true, "emulated": true});
    std::fs::write(&path, summary.to_string()).unwrap();
    render_run(&dir).unwrap();
    let html = page(&dir);
    assert!(html.contains(r#"class="banner leak""#));
    assert!(html.contains("OOM-KILLED"));
    assert!(
        html.contains("emulated OOM kill) at 12.5 s"),
        "emulated kill not said"
    );
    let memory = std::fs::read_to_string(dir.join("charts/memory.svg")).unwrap();
    assert!(memory.contains("OOM kill (emulated) at 12.5 s"));
}

/// A run that failed whatever its thresholds (its server died, it was
/// interrupted) says so and why on its page, and its watched server's
/// disappearance is named.
#[test]
fn run_failures_and_interruption_are_on_the_page() {
    let (_root, dir) = run(fixtures::bounded_sawtooth);
    let path = dir.join("summary.json");
    let mut s: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    s["passed"] = serde_json::json!(false);
    s["failures"] = serde_json::json!([
        "the watched server (pid 4242) vanished at 3.0s (its exit status is unknown)",
        "interrupted by SIGINT before the full duration"
    ]);
    s["interrupted"] = serde_json::json!(true);
    s["server"]["exit"] = serde_json::json!({"code": null, "signal": null, "shell_code": null,
        "at_s": 3.0, "oom_killed": false, "emulated": false, "vanished": true});
    std::fs::write(&path, serde_json::to_vec(&s).unwrap()).unwrap();
    render_run(&dir).unwrap();
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    for expected in [
        "run FAILED: the watched server (pid 4242) vanished at 3.0s",
        "run FAILED: interrupted by SIGINT",
        "INTERRUPTED before the full duration",
        "the watched process vanished (exit status unknown)",
    ] {
        assert!(html.contains(expected), "page lacks {expected:?}");
    }
}

/// A folder's name is never a scheme in a link: `report --index` over a
/// folder named `javascript:alert(document.domain)` links to it by a
/// relative, percent-encoded path.
#[test]
fn index_links_are_relative_encoded_paths_never_a_scheme() {
    let root = tempfile::tempdir().unwrap();
    let hostile = root.path().join("javascript:alert(document.domain)");
    fixtures::bounded_sawtooth(&hostile).unwrap();
    render_run(&hostile).unwrap();
    let html = std::fs::read_to_string(render_index(root.path()).unwrap()).unwrap();
    assert!(!html.contains(r#"href="javascript:"#), "{html}");
    assert!(
        html.contains(r#"href="./javascript%3Aalert%28document.domain%29/index.html""#),
        "{html}"
    );
}
