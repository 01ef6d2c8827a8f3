//! The clw-auth configuration loader: a JSON file's text plus `CLAW_*`
//! environment pairs give a validated config or an error naming the key,
//! never a panic.
//!
//! Input layout: the file text, then optionally a line `---` followed by
//! `NAME=VALUE` lines (the environment layer).
#![no_main]

use std::io::Write;
use std::sync::LazyLock;

use clw_auth::config::{self, Sources};
use libfuzzer_sys::fuzz_target;

/// One scratch file per fuzzing process, rewritten for every input: the
/// loader reads the file layer from a path, as `--config` does.
static FILE: LazyLock<tempfile::NamedTempFile> =
    LazyLock::new(|| tempfile::NamedTempFile::new().expect("temp file"));

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return; // process environment is UTF-8 only (std::env::vars); files are checked below
    };
    let (file_text, env_text) = match text.split_once("\n---\n") {
        Some((f, e)) => (f, e),
        None => (text, ""),
    };
    let env: Vec<(String, String)> = env_text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut f = FILE.reopen().expect("reopen temp file");
    f.set_len(0).expect("truncate");
    f.write_all(file_text.as_bytes()).expect("write");
    let sources = Sources {
        file: Some(FILE.path().to_path_buf()),
        env,
        flags: Vec::new(),
    };
    match config::load(&sources) {
        Ok(cfg) => round_trip(&cfg),
        Err(e) => {
            let _ = e.to_string();
        }
    }
});

/// What `--check-config` prints is itself a config file that loads to the
/// same configuration: what the server reports is what it runs with.
fn round_trip(cfg: &clw_auth::Config) {
    let printed = serde_json::to_string_pretty(&serde_json::json!({ "authentication": cfg }))
        .expect("the effective config serializes");
    let mut f = FILE.reopen().expect("reopen temp file");
    f.set_len(0).expect("truncate");
    f.write_all(printed.as_bytes()).expect("write");
    let again = config::load(&Sources {
        file: Some(FILE.path().to_path_buf()),
        env: Vec::new(),
        flags: Vec::new(),
    })
    .unwrap_or_else(|e| panic!("--check-config output does not load: {e}\n{printed}"));
    let reprinted = serde_json::to_string_pretty(&serde_json::json!({ "authentication": again }))
        .expect("serializes");
    assert_eq!(printed, reprinted, "the effective config changed on reload");
}
