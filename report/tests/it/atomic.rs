//! Outputs are replaced atomically: a reader polling a page, a chart or a
//! comparison while it is rewritten sees the old file or the new one, never
//! an empty or half-written one.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clw_report::{fixtures, render_comparison, render_index, render_run};

/// Polls every file of `paths` until `stop`; returns how many reads saw an
/// empty or partial file (and the first such), and how many complete reads.
fn poll(paths: Vec<PathBuf>, stop: Arc<AtomicBool>) -> (usize, Option<String>, usize) {
    let (mut bad, mut first, mut good) = (0, None, 0);
    while !stop.load(Ordering::Relaxed) {
        for path in &paths {
            let Ok(bytes) = std::fs::read(path) else {
                continue;
            };
            if complete(path, &bytes) {
                good += 1;
            } else {
                bad += 1;
                first.get_or_insert_with(|| format!("{}: {} bytes", path.display(), bytes.len()));
            }
        }
    }
    (bad, first, good)
}

fn complete(path: &Path, bytes: &[u8]) -> bool {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => bytes.trim_ascii_end().ends_with(b"</html>"),
        Some("svg") => bytes.trim_ascii_end().ends_with(b"</svg>"),
        // A PNG ends with its IEND chunk and CRC.
        Some("png") => bytes.len() > 12 && &bytes[bytes.len() - 8..bytes.len() - 4] == b"IEND",
        Some("json") => serde_json::from_slice::<serde_json::Value>(bytes).is_ok(),
        _ => !bytes.is_empty(),
    }
}

/// Runs `rewrite` `times` times while a reader thread polls `paths`.
fn assert_never_torn(paths: Vec<PathBuf>, times: usize, mut rewrite: impl FnMut()) {
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        std::thread::spawn(move || poll(paths, stop))
    };
    for _ in 0..times {
        rewrite();
    }
    stop.store(true, Ordering::Relaxed);
    let (bad, first, good) = reader.join().unwrap();
    assert!(good > 0, "the reader never read a file");
    assert_eq!(
        bad,
        0,
        "{bad} of {} reads saw an empty or partial file, first {first:?}",
        bad + good
    );
}

#[test]
fn index_page_is_never_seen_empty_or_partial() {
    let root = tempfile::tempdir().unwrap();
    let reports = root.path().join("reports");
    fixtures::bounded_sawtooth(&reports.join("20261124T060000Z-a")).unwrap();
    fixtures::leak_oom(&reports.join("20261124T070000Z-b")).unwrap();
    render_index(&reports).unwrap();
    assert_never_torn(vec![reports.join("index.html")], 100, || {
        render_index(&reports).unwrap();
    });
}

#[test]
fn run_page_and_charts_are_never_seen_empty_or_partial() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("run");
    fixtures::leak_oom(&dir).unwrap();
    render_run(&dir).unwrap();
    let mut paths = vec![dir.join("index.html")];
    for chart in ["memory", "latency"] {
        paths.push(dir.join("charts").join(format!("{chart}.svg")));
        paths.push(dir.join("charts").join(format!("{chart}.png")));
    }
    assert_never_torn(paths, 5, || {
        render_run(&dir).unwrap();
    });
    let leftovers: Vec<_> = std::fs::read_dir(dir.join("charts"))
        .unwrap()
        .chain(std::fs::read_dir(&dir).unwrap())
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn comparison_is_never_seen_empty_or_partial() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    fixtures::leak_oom(&a).unwrap();
    fixtures::bounded_sawtooth(&b).unwrap();
    let out = root.path().join("compare");
    let runs = [a, b];
    render_comparison(&runs, &out).unwrap();
    let marker = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .expect("the comparison's marker file");
    assert_never_torn(vec![out.join("index.html"), marker], 4, || {
        render_comparison(&runs, &out).unwrap();
    });
}
