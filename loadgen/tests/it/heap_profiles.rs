//! Heap profiles during a load test against a spawned leaky clw-auth: the
//! probe turns capture on by default, profiles land in heap/, are
//! symbolized from the server's binary after the load, and the diff names
//! the leaking code (docs/loadgen.md, "Heap profiles").

use crate::common::{clw_auth_binary, free_port, read_summary, workspace, LoadTest};

/// clw-auth with the leaky cache, sampling every 4 KiB so a short run has
/// enough samples to rank its sites (512 KiB by default).
fn leaky_command() -> (u16, String) {
    leaky_command_with("CLAW_MEMORY_HEAP_PROFILE_SAMPLE_BYTES=4K")
}

fn leaky_command_with(env: &str) -> (u16, String) {
    let bin = clw_auth_binary();
    let port = free_port();
    let command = format!(
        "env {env} '{}' --config '{}' --host 127.0.0.1 --port {port}",
        bin.display(),
        workspace().join("profiles/leaky.json").display()
    );
    (port, command)
}

/// A login-storm load test against the server on `port`.
fn login_storm(port: u16) -> LoadTest {
    LoadTest::new(
        format!("http://127.0.0.1:{port}"),
        "scenarios/login-storm.toml",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaky_server_is_profiled_and_its_cache_named() {
    let (port, command) = leaky_command();
    let test = login_storm(port);
    let opts = test.spawn_opts(
        &command,
        "--concurrent-users 8 --ramp-up 1s --duration 8s --heap-profile-every 3s --memory-limit 1G",
    );
    clw_cli::run(opts).await.expect("the run completes");
    let s = read_summary(&test.out).unwrap();
    let profiles: Vec<_> = std::fs::read_dir(test.out.join("heap"))
        .expect("a heap/ folder")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    // After ramp-up, every 3 s and at the end; a dump of the debug build
    // can take seconds on a busy machine, so only the first and the last
    // are certain.
    assert!(
        profiles.len() >= 2 && profiles.iter().all(|p| p.ends_with(".pb.gz")),
        "{profiles:?}, notes {}",
        s["notes"]
    );
    // Served as addresses; named here, after the load, from the binary.
    for name in &profiles {
        let body = std::fs::read(test.out.join("heap").join(name)).unwrap();
        let p = clw_run::heap::Profile::decode_bytes(&body).unwrap();
        assert!(
            p.comment
                .iter()
                .any(|c| p.string(*c).starts_with("symbolized from ")),
            "{name} was left unsymbolized; notes {}",
            s["notes"]
        );
    }
    let sites = s["memory"]["growth_sites"]
        .as_array()
        .unwrap_or_else(|| panic!("no growth_sites: {}", s["memory"]));
    let top = &sites[0];
    let (function, file) = (
        top["function"].as_str().unwrap(),
        top["file"].as_str().unwrap_or(""),
    );
    assert!(
        file.contains("auth-server/src/cache/") || function.starts_with("clw_auth::routes::login"),
        "top site is not the leaking cache or the login path: {sites:#?}"
    );
    assert!(top["bytes_grown"].as_u64().unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_heap_profile_never_asks_and_a_missing_endpoint_is_off() {
    let (port, command) = leaky_command();
    let test = login_storm(port);
    let opts = test.spawn_opts(
        &command,
        "--concurrent-users 2 --ramp-up 0s --duration 2s --memory-limit 1G --no-heap-profile",
    );
    clw_cli::run(opts).await.expect("the run completes");
    assert!(
        !test.out.join("heap").exists(),
        "--no-heap-profile took profiles"
    );
    let s = read_summary(&test.out).unwrap();
    assert!(s["memory"].get("growth_sites").is_none(), "{}", s["memory"]);

    // Not asked for, against a server whose profiling is off: capture is
    // off, said in a note, and the run passes.
    let (port, command) = leaky_command_with("CLAW_MEMORY_HEAP_PROFILE=false");
    let test = login_storm(port);
    let opts = test.spawn_opts(
        &command,
        "--concurrent-users 2 --ramp-up 0s --duration 2s --memory-limit 1G",
    );
    assert_eq!(
        clw_cli::run(opts)
            .await
            .expect("the run completes")
            .exit_code,
        0
    );
    assert!(!test.out.join("heap").exists(), "no profile served");
    let s = read_summary(&test.out).unwrap();
    assert!(
        s["notes"].as_array().unwrap().iter().any(|n| n
            .as_str()
            .unwrap()
            .starts_with("heap profiles off:")
            && n.as_str().unwrap().contains("404")),
        "{}",
        s["notes"]
    );

    // Symbols from another build are refused, with a note; the profiles
    // stay as served.
    let (port, command) = leaky_command();
    let test = login_storm(port);
    let opts = test.spawn_opts(
        &command,
        "--concurrent-users 2 --ramp-up 0s --duration 2s --memory-limit 1G --heap-profile-symbols /bin/sh",
    );
    clw_cli::run(opts).await.expect("the run completes");
    let s = read_summary(&test.out).unwrap();
    assert!(
        s["notes"].as_array().unwrap().iter().any(|n| {
            let n = n.as_str().unwrap();
            n.starts_with("heap profiles not symbolized:") && n.contains("/bin/sh is not the build")
        }),
        "{}",
        s["notes"]
    );

    // Asked for by URL, an endpoint that serves none is a setup error.
    let (port, command) = leaky_command();
    let test = login_storm(port);
    let flags = format!(
        "--concurrent-users 2 --ramp-up 0s --duration 2s --memory-limit 1G \
         --heap-profile-url http://127.0.0.1:{port}/no-such-profile"
    );
    let err = clw_cli::run(test.spawn_opts(&command, &flags))
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 3, "{err}");
    assert!(err.to_string().contains("404"), "{err}");
}
