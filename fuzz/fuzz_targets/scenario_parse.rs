//! The scenario compiler (clw-cli): any text gives a compiled scenario or a
//! positioned error, never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return; // scenario files are read as UTF-8 text; other bytes fail before parsing
    };
    match clw_cli::check_str(text, Path::new("fuzz.toml")) {
        Ok(summary) => {
            let _ = summary.to_string();
        }
        Err(e) => {
            // An error that claims a position must point inside the text.
            if let Some((line, col)) = e.position() {
                assert!(
                    line >= 1 && col >= 1,
                    "position {line}:{col} is not 1-based: {e}"
                );
                assert!(
                    line <= text.lines().count().max(1) + 1,
                    "line {line} is past the end of the text: {e}"
                );
            }
            let _ = e.to_string();
        }
    }
});
