//! The verdict never contradicts itself, from analysis to page: for each
//! shape of memory curve, a run folder whose summary.json has no verdict is
//! rendered (so clw-report recomputes it with clw_run::analysis), and the
//! banner, the `plateau` detail and the evidence lines must say the same
//! thing. A climb that the OOM killer ended is never a plateau.

use std::path::Path;

use clw_run::{RunSummary, SampleRow, SamplesWriter, ServerExit, ServerInfo};

const MIB: f64 = 1024.0 * 1024.0;
const LIMIT: u64 = 256 << 20;

/// A run folder with one sample per second of `rss(t)` and a finished
/// summary.json without a memory block.
fn folder(dir: &Path, seconds: u32, oom_killed: bool, rss: impl Fn(f64) -> f64) {
    std::fs::create_dir_all(dir).unwrap();
    let mut w = SamplesWriter::create(&dir.join("samples.csv")).unwrap();
    for i in 0..seconds {
        let t = f64::from(i);
        let bytes = rss(t) as u64;
        w.write(&SampleRow {
            t_s: t,
            rss_bytes: Some(bytes),
            hwm_bytes: Some(bytes),
            allocated_bytes: Some(bytes * 4 / 5),
            logins: Some(u64::from(i) * 100),
            ..SampleRow::default()
        })
        .unwrap();
    }
    let summary = RunSummary {
        complete: true,
        scenario: "shape".into(),
        memory: None,
        server: ServerInfo {
            limit_enforcement: clw_run::Enforcement::CgroupV2.into(),
            limit_bytes: Some(LIMIT),
            exit: oom_killed.then(|| ServerExit {
                signal: Some(9),
                shell_code: Some(137),
                at_s: Some(f64::from(seconds)),
                oom_killed: true,
                emulated: false,
                ..ServerExit::default()
            }),
            ..ServerInfo::default()
        },
        ..RunSummary::default()
    };
    summary.write_atomic(&dir.join("summary.json")).unwrap();
}

/// What the page says.
struct Page {
    html: String,
}

impl Page {
    fn render(seconds: u32, oom_killed: bool, rss: impl Fn(f64) -> f64) -> Page {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("run");
        folder(&dir, seconds, oom_killed, rss);
        clw_report::render_run(&dir).unwrap();
        let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
        assert!(
            html.contains("verdict recomputed from samples.csv (summary.json has none)"),
            "not recomputed"
        );
        Page { html }
    }

    fn banner(&self) -> &str {
        ["leak", "bounded", "inconclusive"]
            .into_iter()
            .find(|c| self.html.contains(&format!(r#"class="banner {c}""#)))
            .expect("a banner")
    }

    fn says(&self, text: &str) -> bool {
        self.html.contains(text)
    }

    /// The checks every case shares.
    fn agrees(&self) {
        let plateau = self.says("memory reached a plateau");
        let levelled = self.says("memory levelled off");
        assert_eq!(
            plateau, levelled,
            "banner plateau {plateau}, evidence {levelled}"
        );
        if self.says(">LEAK<") {
            assert!(!plateau, "a leak that reached a plateau");
        }
        if self.banner() == "inconclusive" {
            assert!(!plateau, "an inconclusive plateau");
        }
    }
}

#[test]
fn a_steady_climb_is_a_leak_without_a_plateau() {
    let page = Page::render(60, false, |t| 40.0 * MIB + 2.0 * MIB * t);
    page.agrees();
    assert_eq!(page.banner(), "leak");
    assert!(page.says(">LEAK<") && page.says("no plateau"));
}

#[test]
fn a_staircase_into_the_kill_is_a_leak_without_a_plateau() {
    // The session map doubles: flat stretches between steps, the last one
    // the limit could not hold (what make leak-repro showed as "plateau").
    let page = Page::render(60, true, |t| match t as u32 {
        0..=9 => 12.0 * MIB,
        10..=24 => 50.0 * MIB,
        25..=34 => 100.0 * MIB,
        _ => 190.0 * MIB,
    });
    page.agrees();
    assert_eq!(page.banner(), "leak");
    assert!(page.says(">LEAK<") && page.says("never levelled off"));
    assert!(!page.says("memory reached a plateau"));
}

#[test]
fn a_plateau_is_bounded_and_says_so_everywhere() {
    let page = Page::render(180, false, |t| {
        50.0 * MIB + 100.0 * MIB * (1.0 - (-t / 15.0).exp())
    });
    page.agrees();
    assert_eq!(page.banner(), "bounded");
    assert!(page.says("memory reached a plateau"));
}

#[test]
fn a_flat_server_killed_at_its_level_is_bounded_but_shown_killed() {
    let page = Page::render(60, true, |_| 240.0 * MIB);
    page.agrees();
    // Red for the kill, but not called a leak: the limit is too low.
    assert_eq!(page.banner(), "leak");
    assert!(page.says("OOM-KILLED") && !page.says(">LEAK<"));
    assert!(page.says("limit is too low"));
}

#[test]
fn too_few_samples_are_inconclusive_without_a_plateau() {
    let page = Page::render(5, false, |t| 50.0 * MIB + 10.0 * MIB * t);
    page.agrees();
    assert_eq!(page.banner(), "inconclusive");
    assert!(page.says("only 5"));
}
