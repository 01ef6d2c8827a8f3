//! The run-folder readers (clw-run) on files another job wrote: any bytes
//! as summary.json, samples.csv or latency.hlog give the figures or an
//! error naming the file, never a panic, a hang or an allocation beyond the
//! stated caps (libFuzzer's -rss_limit_mb catches that).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the file; the rest is its content.
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (name, read): (&str, fn(&std::path::Path) -> Option<String>) = match kind % 3 {
        0 => ("summary.json", |p| clw_run::RunSummary::read(p).err().map(|e| e.to_string())),
        1 => ("samples.csv", |p| clw_run::read_samples(p).err().map(|e| e.to_string())),
        _ => ("latency.hlog", |p| clw_run::read_hlog(p).err().map(|e| e.to_string())),
    };
    let path = dir.path().join(name);
    std::fs::write(&path, body).expect("write the input");
    if let Some(error) = read(&path) {
        assert!(error.contains(name), "an error names its file: {error}");
    }
});
