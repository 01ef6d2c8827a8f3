//! The run page's heap growth section: a table of the sites that grew and
//! an inline flame graph, from two heap profiles in the run folder, or the
//! table alone from summary.json's `memory.growth_sites`.

use crate::common::*;
use clw_report::{fixtures, render_run};
use clw_run::heap::{self, ProfileBuilder};

const ALLOC: (&str, &str, i64) = ("__rustc::__rust_alloc", "/app/src/main.rs", 1);
const INSERT: (&str, &str, i64) = ("app::cache::Cache::insert", "/app/src/cache.rs", 42);
const LOGIN: (&str, &str, i64) = ("app::routes::login", "/app/src/routes.rs", 7);
const DECODE: (&str, &str, i64) = ("app::routes::decode", "/app/src/routes.rs", 30);
const VALIDATE: (&str, &str, i64) = ("app::routes::validate", "/app/src/routes.rs", 60);
const HANDLE: (&str, &str, i64) = ("app::routes::handle", "/app/src/routes.rs", 3);
const SERVE: (&str, &str, i64) = ("app::server::serve", "/app/src/server.rs", 9);

fn write_profiles(dir: &std::path::Path) {
    let heap_dir = dir.join(heap::HEAP_DIR);
    std::fs::create_dir_all(&heap_dir).unwrap();
    // Growth: insert 96 MiB (75%), decode 24 MiB, validate 8 MiB.
    let first = ProfileBuilder::new()
        .sample(&[ALLOC, INSERT, LOGIN, HANDLE, SERVE], 1 << 20)
        .sample(&[ALLOC, DECODE, LOGIN, HANDLE, SERVE], 1 << 20);
    let last = ProfileBuilder::new()
        .sample(&[ALLOC, INSERT, LOGIN, HANDLE, SERVE], 97 << 20)
        .sample(&[ALLOC, DECODE, LOGIN, HANDLE, SERVE], 25 << 20)
        .sample(&[ALLOC, VALIDATE, HANDLE, SERVE], 8 << 20);
    for (t, p) in [(10.0, first), (40.0, last)] {
        std::fs::write(
            heap_dir.join(heap::profile_file_name(t)),
            p.build().to_gzip(),
        )
        .unwrap();
    }
}

#[test]
fn two_profiles_render_a_table_and_a_flame_graph() {
    let (_root, dir) = run(fixtures::leak_oom);
    write_profiles(&dir);
    let rendered = render_run(&dir).unwrap();
    assert!(rendered.notices.is_empty(), "{:?}", rendered.notices);
    let html = page(&dir);
    // The four charts plus the flame graph, every one valid SVG, no script.
    assert_eq!(assert_self_contained(&html), 5);
    assert!(html.contains(r#"<h2 id="heap-growth">"#));
    let table = &html[html.find("growth-sites").unwrap()..];
    let first = table.find("app::cache::Cache::insert").expect("cache row");
    let second = table.find("app::routes::decode").expect("decode row");
    assert!(first < second, "ranked by bytes grown");
    for cell in ["/app/src/cache.rs:42", "96 MiB", "75%", "24 MiB", "8.0 MiB"] {
        assert!(table.contains(cell), "{cell} missing from the table");
    }
    let flame = std::fs::read_to_string(dir.join("charts/heap-growth.svg")).unwrap();
    assert!(rendered.files.contains(&dir.join("charts/heap-growth.svg")));
    assert!(flame.contains("app::cache::Cache::insert (src/cache.rs:42)"));
    let inline_at = html
        .find("<svg font-family=\"monospace\"")
        .expect("inline flame graph");
    let end = inline_at + html[inline_at..].find("</svg></div>").unwrap() + 6;
    let inline = &html[inline_at..end];
    parse_svg(inline, "inline flame graph");
    let doc = roxmltree::Document::parse(inline).unwrap();
    let labels: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .collect();
    assert!(
        labels
            .iter()
            .any(|l| l.starts_with("app::cache::Cache::insert")),
        "no readable frame text: {labels:?}"
    );
    assert!(doc.descendants().any(|n| n.has_tag_name("rect")));
}

#[test]
fn growth_sites_from_summary_render_without_profiles() {
    let (_root, dir) = run(fixtures::leak_oom);
    let path = dir.join("summary.json");
    let mut summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    summary["memory"]["growth_sites"] = serde_json::json!([{
        "function": "app::cache::Cache::insert", "file": "/app/src/cache.rs", "line": 42,
        "bytes_grown": 100663296u64, "share_percent": 100.0
    }]);
    std::fs::write(&path, summary.to_string()).unwrap();
    render_run(&dir).unwrap();
    let html = page(&dir);
    assert!(html.contains(r#"<h2 id="heap-growth">"#));
    assert!(html.contains("/app/src/cache.rs:42") && html.contains("96 MiB"));
    assert!(html.contains("memory.growth_sites"));
    assert_eq!(
        assert_self_contained(&html),
        4,
        "no flame graph without profiles"
    );
}

#[test]
fn no_profiles_no_section_and_a_corrupt_one_is_a_notice() {
    let (_root, dir) = run(fixtures::leak_oom);
    render_run(&dir).unwrap();
    assert!(!page(&dir).contains("heap-growth"));
    write_profiles(&dir);
    std::fs::write(
        dir.join("heap").join(heap::profile_file_name(40.0)),
        b"\x1f\x8bjunk",
    )
    .unwrap();
    let rendered = render_run(&dir).unwrap();
    assert!(
        rendered
            .notices
            .iter()
            .any(|n| n.contains("heap profiles unreadable") && n.contains("40.000.pb.gz")),
        "{:?}",
        rendered.notices
    );
}
