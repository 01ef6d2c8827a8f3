//! The shipped configuration: every profile in profiles/ loads through the
//! real config loader, and the deploy manifests name only `CLAW_*`
//! variables the server reads and probe paths it serves.

use std::path::{Path, PathBuf};

use clw_auth::config::{self, Sources, ENV_KEYS};
use clw_auth::metrics::ROUTES;
use clw_auth::CacheMode;

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

fn load(path: &Path) -> clw_auth::Config {
    config::load(&Sources {
        file: Some(path.to_path_buf()),
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn every_profile_loads_through_the_config_loader() {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(repo("profiles")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            load(&path);
            names.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    names.sort();
    assert_eq!(names, ["fixed-bytes.json", "fixed.json", "leaky.json"]);
}

/// Pitfall 4: a count does not bound memory when claims are large. In
/// fixed-bytes.json the byte bound is the one that binds: `max_size`
/// sessions of the largest claims would weigh far more than `max_bytes`.
#[test]
fn fixed_bytes_is_bounded_by_bytes() {
    let cfg = load(&repo("profiles/fixed-bytes.json"));
    let cache = &cfg.session.cache;
    assert_eq!(cache.mode, CacheMode::Fixed);
    let by_count = cache.max_size as u64 * cfg.session.max_claims_size;
    assert!(
        cache.max_bytes * 10 <= by_count,
        "max_bytes {} does not bind before max_size x max_claims_size = {by_count}",
        cache.max_bytes
    );
    assert!(cache.max_bytes < cfg.memory.max_heap_size.unwrap());
}

/// Every `CLAW_*` name in a manifest (the word after `name:` or before
/// `=`), and every probe `path:`.
fn manifest_names(text: &str) -> (Vec<String>, Vec<String>) {
    let mut vars = Vec::new();
    let mut paths = Vec::new();
    for line in text.lines() {
        let line = line.trim().trim_start_matches("- ");
        if line.starts_with('#') {
            continue;
        }
        for word in line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if word.starts_with("CLAW_") {
                vars.push(word.to_string());
            }
        }
        if let Some(p) = line.strip_prefix("path:") {
            paths.push(p.trim().trim_matches('"').to_string());
        }
    }
    (vars, paths)
}

#[test]
fn manifests_name_only_variables_the_server_reads_and_paths_it_serves() {
    let known: Vec<&str> = ENV_KEYS.iter().map(|(name, _)| *name).collect();
    let served = &ROUTES[..ROUTES.len() - 1];
    let mut all_vars = Vec::new();
    for file in ["kubernetes.yaml", "docker-compose.yml"] {
        let text = std::fs::read_to_string(repo("profiles/deploy").join(file)).unwrap();
        let (vars, paths) = manifest_names(&text);
        for v in &vars {
            assert!(
                known.contains(&v.as_str()),
                "{file}: {v} is not a variable clw-auth reads"
            );
        }
        for p in &paths {
            assert!(
                served.contains(&p.as_str()),
                "{file}: probe path {p} is not served"
            );
        }
        all_vars.extend(vars);
        if file == "kubernetes.yaml" {
            assert_eq!(paths, ["/health", "/ready"], "the guide's probes");
        }
    }
    // The heap-profile endpoint is on, and its token comes from a Secret.
    let k8s = std::fs::read_to_string(repo("profiles/deploy/kubernetes.yaml")).unwrap();
    assert!(all_vars.iter().any(|v| v == "CLAW_MEMORY_HEAP_PROFILE"));
    let token_at = k8s
        .find("name: CLAW_AUTH_ADMIN_TOKEN")
        .expect("admin token set");
    let after = &k8s[token_at..];
    let next_env = after[1..].find("- name:").map_or(after.len(), |i| i + 1);
    assert!(
        after[..next_env].contains("secretKeyRef"),
        "CLAW_AUTH_ADMIN_TOKEN must come from a Secret: {}",
        &after[..next_env]
    );
    assert!(k8s.contains("kind: Secret"));
    // TLS on 8443: the cert and key are files of the mounted tls Secret,
    // and both probes speak HTTPS.
    let mount = "mountPath: /etc/clw-auth/tls";
    assert!(k8s.contains(mount), "the tls Secret is mounted");
    assert!(k8s.contains("secretName: clw-auth-tls"));
    for (var, file) in [
        ("CLAW_AUTH_TLS_CERT", "tls.crt"),
        ("CLAW_AUTH_TLS_KEY", "tls.key"),
    ] {
        let at = k8s.find(&format!("name: {var}")).expect(var);
        let value = k8s[at..].lines().nth(1).unwrap_or_default();
        assert_eq!(
            value.trim(),
            format!("value: /etc/clw-auth/tls/{file}"),
            "{var} names a file of the mounted Secret"
        );
    }
    assert_eq!(k8s.matches("scheme: HTTPS").count(), 2, "both probes");
}

#[test]
fn the_manifest_scan_finds_what_it_should() {
    let (vars, paths) = manifest_names(
        "env:\n  - name: CLAW_X_Y\n# - name: CLAW_COMMENTED\n  - CLAW_Z=1\nhttpGet:\n  path: /nope\n",
    );
    assert_eq!(vars, ["CLAW_X_Y", "CLAW_Z"]);
    assert_eq!(paths, ["/nope"]);
}
