//! Credentials in URLs stay out of every output (docs/loadgen.md,
//! "Secrets"): a URL flag carrying user info or a query is refused (exit 2)
//! with a pointer to -H, and the refusal shows the URL with its secrets
//! replaced; nothing is written to the run folder.

use std::process::{Command, Stdio};

#[test]
fn url_credentials_are_refused_and_never_echoed() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let cases: [(&str, &str, &str); 5] = [
        (
            "--target",
            "http://u:s3cr3t@127.0.0.1:1",
            "-H 'Authorization",
        ),
        (
            "--target",
            "http://127.0.0.1:1/api?token=s3cr3t",
            "pass it with -H",
        ),
        (
            "--metrics-url",
            "http://u:s3cr3t@127.0.0.1:1/metrics",
            "-H 'Authorization",
        ),
        (
            "--metrics-url",
            "http://127.0.0.1:1/metrics?token=s3cr3t",
            "pass it with -H",
        ),
        (
            "--heap-profile-url",
            "http://s3cr3t@127.0.0.1:1/debug/pprof/heap",
            "-H 'Authorization",
        ),
    ];
    for (flag, url, hint) in cases {
        let mut args = vec![
            "auth",
            "load-test",
            "--duration",
            "1s",
            "--ramp-up",
            "0s",
            "--out",
            out.to_str().unwrap(),
        ];
        if flag != "--target" {
            args.extend(["--target", "http://127.0.0.1:1"]);
        }
        args.extend([flag, url]);
        let run = Command::new(env!("CARGO_BIN_EXE_clw-cli"))
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        );
        assert!(
            matches!(run.status.code(), Some(2 | 3)),
            "{flag} {url}: {text}"
        );
        assert!(!text.contains("s3cr3t"), "{flag} {url}: {text}");
        assert!(text.contains("REDACTED"), "{flag} {url}: {text}");
        assert!(text.contains(hint), "{flag} {url}: {text}");
        assert!(
            !out.join("summary.json").exists(),
            "{flag}: nothing recorded"
        );
    }
}
