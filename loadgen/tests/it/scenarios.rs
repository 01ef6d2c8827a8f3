//! The shipped scenario files parse, and a broken one is reported with
//! file:line:column.

use std::path::{Path, PathBuf};

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

#[test]
fn every_shipped_scenario_parses() {
    let expected = [
        "login-storm",
        "steady-sessions",
        "large-claims",
        "session-churn",
        "expiry",
        "ready-only",
    ];
    for name in expected {
        let path = scenarios_dir().join(format!("{name}.toml"));
        let summary = clw_cli::check_file(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(summary.name, name);
        assert!(!summary.flows.is_empty(), "{name} has no flow");
    }
}

#[test]
fn errors_point_at_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "name = \"bad\"\n\n[[steps]]\nmethod = \"GET\"\npath = \"/auth/validate\"\nheaders = { authorization = \"Bearer {tokn}\" }\n",
    )
    .unwrap();
    let err = clw_cli::check_file(&path).unwrap_err().to_string();
    assert!(err.starts_with(&format!("{}:6:", path.display())), "{err}");
    assert!(err.contains("tokn"), "{err}");

    std::fs::write(&path, "name = \"bad\"\nusers_typo = 3\n").unwrap();
    let err = clw_cli::check_file(&path).unwrap_err().to_string();
    assert!(err.starts_with(&format!("{}:2:1", path.display())), "{err}");
}

#[test]
fn shipped_scenarios_are_built_in_for_use_outside_a_checkout() {
    let elsewhere = tempfile::tempdir().unwrap();
    for name in [
        "login-storm",
        "scenarios/ready-only.toml",
        "large-claims.toml",
    ] {
        // Relative to a folder without scenarios/: the built-in one is used.
        let path = elsewhere
            .path()
            .join("scenarios")
            .join(Path::new(name).file_name().unwrap());
        let summary = clw_cli::check_file(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!summary.flows.is_empty());
    }
    let err = clw_cli::check_file(Path::new("login-strom"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("no built-in scenario `login-strom`"), "{err}");
    assert!(err.contains("login-storm, steady-sessions"), "{err}");
    // A path in some other folder is never silently replaced.
    let err = clw_cli::check_file(&elsewhere.path().join("ready-only.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("no such scenario file"), "{err}");
}
