//! loadgen/src has no import cycle: between its top-level modules (the
//! stages: load, memory, results, ... and load_test.rs, opts.rs ...) and between
//! the files of one stage, no module reaches back to a module that reaches
//! it. A parent using its own children (and children their parent's
//! re-exports) is not a cycle. Read from the source text: `crate::a::b`
//! and `super::x` paths outside comments and `#[cfg(test)]` code.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module path of every file: `load/vu.rs` -> `load::vu`, `memory/mod.rs`
/// -> `memory`, `lib.rs` -> `` (the crate root).
/// With each its text and whether it is a `mod.rs` / `lib.rs` (whose
/// `super` is its parent's parent).
fn modules(src: &Path) -> BTreeMap<String, (String, bool)> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            // main.rs is the binary's root, not a module of the library.
            if path.extension().is_none_or(|e| e != "rs") || path.ends_with("src/main.rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap().with_extension("");
            let mut parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            let is_mod_rs = matches!(parts.last().map(String::as_str), Some("mod" | "lib"));
            if is_mod_rs {
                parts.pop();
            }
            let text = std::fs::read_to_string(&path).unwrap();
            out.insert(parts.join("::"), (text, is_mod_rs));
        }
    }
    out
}

/// The modules `text` (module `this`) refers to, as known module paths.
fn references(
    this: &str,
    is_mod_rs: bool,
    text: &str,
    known: &BTreeSet<String>,
) -> BTreeSet<String> {
    // Comments (doc links such as [`crate::run`]) import nothing.
    let code: String = text
        .split("#[cfg(test)]")
        .next()
        .unwrap()
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let code = code.as_str();
    let parent: Vec<&str> = if is_mod_rs || this.is_empty() {
        this.split("::").filter(|s| !s.is_empty()).collect()
    } else {
        let mut p: Vec<&str> = this.split("::").collect();
        p.pop();
        p
    };
    let mut refs = BTreeSet::new();
    let bytes = code.as_bytes();
    for (prefix, base) in [("crate::", Vec::new()), ("super::", parent)] {
        for (at, _) in code.match_indices(prefix) {
            if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
                continue;
            }
            let rest = &code[at + prefix.len()..];
            let path: Vec<&str> = rest
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .next()
                .unwrap()
                .split("::")
                .filter(|s| !s.is_empty())
                .collect();
            // The longest prefix that names a module.
            let mut full: Vec<&str> = base.clone();
            let mut best = None;
            for seg in path {
                full.push(seg);
                let name = full.join("::");
                if known.contains(&name) {
                    best = Some(name);
                }
            }
            if let Some(m) = best {
                refs.insert(m);
            }
        }
    }
    refs
}

fn related(a: &str, b: &str) -> bool {
    a.is_empty()
        || b.is_empty()
        || a == b
        || a.starts_with(&format!("{b}::"))
        || b.starts_with(&format!("{a}::"))
}

/// A cycle in `graph`, if any, as the modules along it.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[i..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(c) = visit(node, graph, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

#[test]
fn loadgen_src_has_no_import_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = modules(&src);
    let known: BTreeSet<String> = files.keys().cloned().collect();
    let mut by_file: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut by_stage: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, (text, is_mod_rs)) in &files {
        for target in references(module, *is_mod_rs, text, &known) {
            if related(module, &target) {
                continue;
            }
            by_file
                .entry(module.clone())
                .or_default()
                .insert(target.clone());
            let (a, b) = (
                module.split("::").next().unwrap(),
                target.split("::").next().unwrap(),
            );
            if a != b {
                by_stage
                    .entry(a.to_string())
                    .or_default()
                    .insert(b.to_string());
            }
        }
    }
    assert!(
        by_file.contains_key("load::vu"),
        "the scan found no imports: {by_file:?}"
    );
    assert_eq!(
        find_cycle(&by_stage),
        None,
        "import cycle between top-level modules"
    );
    assert_eq!(find_cycle(&by_file), None, "import cycle between modules");
}
