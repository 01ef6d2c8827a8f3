//! Helpers shared by the rendering tests: run folders from fixtures, SVG
//! and self-containment checks.
use std::path::{Path, PathBuf};

pub fn run(write: fn(&Path) -> std::io::Result<()>) -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("run");
    write(&dir).unwrap();
    (root, dir)
}

pub fn parse_svg(text: &str, what: &str) {
    let doc =
        roxmltree::Document::parse(text).unwrap_or_else(|e| panic!("{what} is not valid XML: {e}"));
    assert_eq!(doc.root_element().tag_name().name(), "svg", "{what}");
    assert!(
        doc.root_element().attribute("viewBox").is_some(),
        "{what} has no viewBox"
    );
    let drawn = doc.descendants().filter(|n| n.is_element()).count();
    assert!(drawn > 20, "{what} has only {drawn} elements");
}

/// The page loads nothing: no script, stylesheet, image or frame; links are
/// relative or in-page; the only URLs are loopback targets shown as text.
/// Returns the number of inline charts, each checked to be valid SVG.
pub fn assert_self_contained(html: &str) -> usize {
    let lower = html.to_ascii_lowercase();
    for banned in [
        "<script", "<link", "<img", "<iframe", "<object", "<embed", "@import", "url(",
    ] {
        assert!(!lower.contains(banned), "page contains {banned}");
    }
    for attr in ["href=\"", "src=\"", "xlink:href=\""] {
        for (at, _) in lower.match_indices(attr) {
            let value: String = lower[at + attr.len()..]
                .chars()
                .take_while(|c| *c != '"')
                .collect();
            assert!(
                !value.contains(':') && !value.starts_with("//"),
                "{attr}{value}\" points outside the page folder"
            );
        }
    }
    for (at, _) in lower.match_indices("://") {
        let host = &lower[at + 3..];
        assert!(
            host.starts_with("127.0.0.1")
                || host.starts_with("localhost")
                || host.starts_with("[::1]"),
            "external URL in page: {}",
            &html[at.saturating_sub(10)..(at + 40).min(html.len())]
        );
    }
    // The inline charts are well-formed too. An SVG may nest others (the
    // flame graph's frames): each top-level one ends at its matching close.
    let mut inline = 0;
    let mut from = 0;
    while let Some(at) = html[from..].find("<svg") {
        let start = from + at;
        let (mut depth, mut pos) = (0usize, start);
        let end = loop {
            let open = html[pos..].find("<svg").map(|i| pos + i);
            let close = html[pos..].find("</svg>").map(|i| pos + i);
            match (open, close) {
                (Some(o), Some(c)) if o < c => {
                    depth += 1;
                    pos = o + 4;
                }
                (_, Some(c)) => {
                    depth -= 1;
                    pos = c + 6;
                    if depth == 0 {
                        break pos;
                    }
                }
                _ => panic!("unterminated inline svg"),
            }
        };
        parse_svg(&html[start..end], "inline svg");
        inline += 1;
        from = end;
    }
    inline
}

pub fn page(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("index.html")).unwrap()
}
