//! A load with stages (summary.json `stages[]`): every chart marks the
//! stage boundaries and the page has a table per stage, from summary.json's
//! figures, or, for a killed run that wrote none, recomputed from
//! latency.hlog and samples.csv.

use std::path::Path;
use std::time::{Duration, SystemTime};

use clw_report::render_run;
use clw_run::{HdrLog, RunSummary, SampleRow, SamplesWriter, StageSummary};
use hdrhistogram::Histogram;

use crate::common;

const CHARTS: [&str; 4] = ["memory", "cache", "throughput", "latency"];

/// A 6 s run: up to 10 users in 2 s, hold 10 for 2 s, down to 0 in 2 s.
/// Each second has `10 * (second + 1)` requests of 2 ms (4 ms from 2 s on)
/// and a memory sample of `second` MiB.
fn write_run(dir: &Path, finished: bool) {
    std::fs::create_dir_all(dir).unwrap();
    let mut hlog = HdrLog::create(&dir.join("latency.hlog"), SystemTime::now()).unwrap();
    let mut samples = SamplesWriter::create(&dir.join("samples.csv")).unwrap();
    for second in 0..6u64 {
        let mut h = Histogram::<u64>::new(3).unwrap();
        let us = if second < 2 { 2000 } else { 4000 };
        h.record_n(us, 10 * (second + 1)).unwrap();
        let start = Duration::from_secs(second);
        hlog.write(start, Duration::from_secs(1), "login", &h)
            .unwrap();
        samples
            .write(&SampleRow {
                t_s: second as f64 + 0.5,
                rss_bytes: Some(second << 20),
                rps: Some(10.0 * (second + 1) as f64),
                // clw-auth's session count: the cache chart has data.
                sessions: Some(100 * second),
                ..SampleRow::default()
            })
            .unwrap();
    }
    hlog.flush().unwrap();
    drop(samples); // flushed row by row
    let mut stages = vec![
        StageSummary::planned(0.0, 2.0, 0.0, 10.0),
        StageSummary::planned(2.0, 4.0, 10.0, 10.0),
        StageSummary::planned(4.0, 6.0, 10.0, 0.0),
    ];
    if finished {
        for (s, requests) in stages.iter_mut().zip([30, 70, 110]) {
            s.requests = Some(requests);
            s.throughput_rps = Some(requests as f64 / 2.0);
            s.p99_ms = Some(4.0);
            s.peak_rss_bytes = Some(7 << 20);
            s.memory_slope_bytes_per_s = None;
        }
    }
    let summary = RunSummary {
        complete: finished,
        scenario: "staged".into(),
        model: clw_run::Model::Closed,
        concurrent_users: 10,
        duration_s: 6.0,
        ramp_up_s: 2.0,
        stages: Some(stages),
        ..RunSummary::default()
    };
    summary.write_atomic(&dir.join("summary.json")).unwrap();
}

/// The text of every `<text>` element of an SVG.
fn svg_text(svg: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(svg).unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| n.text().unwrap_or("").trim().to_string())
        .collect()
}

/// The rows of the page's stage table, cells as text.
fn stage_table(html: &str) -> Vec<Vec<String>> {
    let start = html
        .find("<table class=\"stages\">")
        .expect("a stage table");
    let table = &html[start..start + html[start..].find("</table>").unwrap()];
    table
        .split("<tr>")
        .skip(2)
        .map(|row| {
            row.split("<td")
                .skip(1)
                .map(|cell| {
                    let text = &cell[cell.find('>').unwrap() + 1..];
                    text[..text.find("</td>").unwrap()].to_string()
                })
                .collect()
        })
        .collect()
}

#[test]
fn every_chart_marks_the_stage_boundaries_and_the_page_has_a_stage_table() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("run");
    write_run(&dir, true);
    render_run(&dir).unwrap();
    for name in CHARTS {
        let svg = std::fs::read_to_string(dir.join(format!("charts/{name}.svg"))).unwrap();
        common::parse_svg(&svg, name);
        // The legend names them wherever a chart has a legend (one with
        // data); every chart has the lines and their labels.
        let legend = ["memory", "throughput"].contains(&name);
        for label in ["S2", "S3", "end"]
            .into_iter()
            .chain(legend.then_some("stage boundary"))
        {
            let text = svg_text(&svg);
            assert!(
                text.iter().any(|t| t == label),
                "{name}.svg lacks {label}: {text:?}"
            );
        }
    }
    let memory = svg_text(&std::fs::read_to_string(dir.join("charts/memory.svg")).unwrap());
    assert!(
        memory.iter().any(|t| t == "until peak load (not judged)"),
        "the span before the peak is shaded and named: {memory:?}"
    );
    let html = common::page(&dir);
    common::assert_self_contained(&html);
    let rows = stage_table(&html);
    assert_eq!(
        rows,
        [
            [
                "S1",
                "0.0 s – 2.0 s",
                "0 → 10 users",
                "30",
                "15.0/s",
                "4.0 ms",
                "7.0 MiB",
                "—",
                "—"
            ],
            [
                "S2",
                "2.0 s – 4.0 s",
                "hold 10 users",
                "70",
                "35.0/s",
                "4.0 ms",
                "7.0 MiB",
                "—",
                "—"
            ],
            [
                "S3",
                "4.0 s – 6.0 s",
                "10 → 0 users",
                "110",
                "55.0/s",
                "4.0 ms",
                "7.0 MiB",
                "—",
                "—"
            ],
        ]
        .map(|r| r.map(String::from).to_vec())
    );
    assert!(!html.contains("per-stage figures recomputed"));
}

#[test]
fn a_killed_run_gets_its_stage_figures_from_the_run_folder() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("run");
    write_run(&dir, false);
    let rendered = render_run(&dir).unwrap();
    assert!(
        rendered
            .notices
            .iter()
            .any(|n| n.contains("per-stage figures recomputed")),
        "{:?}",
        rendered.notices
    );
    let rows = stage_table(&common::page(&dir));
    let requests: Vec<&str> = rows.iter().map(|r| r[3].as_str()).collect();
    assert_eq!(requests, ["30", "70", "110"], "{rows:?}");
    let peaks: Vec<&str> = rows.iter().map(|r| r[6].as_str()).collect();
    assert_eq!(peaks, ["1.0 MiB", "3.0 MiB", "5.0 MiB"], "{rows:?}");
    let svg = std::fs::read_to_string(dir.join("charts/memory.svg")).unwrap();
    assert!(svg.contains("stage boundary"));
}
