//! profiles/deploy/loadtest/: the Kubernetes Indexed Job that runs one
//! shard per pod, and the merge Job. Rendered for several N by the same
//! render.sh users run, every pod's command line is expanded as its shell
//! would (JOB_COMPLETION_INDEX, the env the manifest sets) and parsed by
//! clw-cli's own clap parser, so a renamed flag or an unset variable fails
//! here, not in a cluster.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use clap::{CommandFactory, Parser};
use yaml_rust2::{Yaml, YamlLoader};

use crate::common;

const START_AT: &str = "2030-01-01T12:00:00Z";

fn dir() -> std::path::PathBuf {
    common::workspace().join("profiles/deploy/loadtest")
}

fn render(shards: u32) -> Yaml {
    let out = std::process::Command::new("bash")
        .arg(dir().join("render.sh"))
        .args([&shards.to_string(), "300", "5m", START_AT])
        .output()
        .expect("bash runs render.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        !text.contains("__"),
        "a placeholder left unrendered:\n{text}"
    );
    YamlLoader::load_from_str(&text).unwrap().remove(0)
}

/// The one container's `sh -c` script and its env.
fn container(job: &Yaml) -> (String, BTreeMap<String, String>) {
    let c = &job["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["command"][0].as_str(), Some("sh"));
    assert_eq!(c["command"][1].as_str(), Some("-c"));
    let script = c["args"][0].as_str().expect("a script").to_string();
    let env = c["env"]
        .as_vec()
        .map(|env| {
            env.iter()
                .map(|e| {
                    let name = e["name"].as_str().unwrap().to_string();
                    let value = e["value"].as_str().expect("literal env values").to_string();
                    (name, value)
                })
                .collect()
        })
        .unwrap_or_default();
    (script, env)
}

/// The script as the pod's shell runs it: `$((JOB_COMPLETION_INDEX + 1))`
/// and `$NAME` expanded, `exec` dropped, split into argv. Every variable
/// must be one the manifest (or Kubernetes) sets.
fn expand(script: &str, env: &BTreeMap<String, String>, index: u32) -> Vec<String> {
    let mut text = script.replace("$((JOB_COMPLETION_INDEX + 1))", &(index + 1).to_string());
    for (name, value) in env {
        text = text.replace(&format!("${name}"), value);
    }
    assert!(
        !text.contains('$'),
        "a variable the manifest does not set: {text}"
    );
    let mut argv = shlex::split(&text).expect("the script splits like a shell line");
    assert_eq!(argv.remove(0), "exec");
    argv
}

/// Every `--flag` of every clw-cli subcommand, and the env variables clap
/// reads.
fn known_envs() -> Vec<String> {
    fn walk(c: &clap::Command, out: &mut Vec<String>) {
        for a in c.get_arguments() {
            if let Some(env) = a.get_env() {
                out.push(env.to_string_lossy().into_owned());
            }
        }
        for s in c.get_subcommands() {
            walk(s, out);
        }
    }
    let mut out = Vec::new();
    walk(&clw_cli::Opts::command(), &mut out);
    out
}

#[test]
fn every_pod_runs_its_shard_with_flags_clw_cli_parses() {
    let start_at = humantime::parse_rfc3339(START_AT).unwrap();
    for shards in [1u32, 3, 8] {
        let job = render(shards);
        let spec = &job["spec"];
        assert_eq!(spec["completionMode"].as_str(), Some("Indexed"));
        assert_eq!(spec["completions"].as_i64(), Some(i64::from(shards)));
        assert_eq!(spec["parallelism"].as_i64(), Some(i64::from(shards)));
        let c = &spec["template"]["spec"]["containers"][0];
        for what in ["requests", "limits"] {
            assert!(c["resources"][what]["cpu"].as_str().is_some(), "{what}.cpu");
            assert!(
                c["resources"][what]["memory"].as_str().is_some(),
                "{what}.memory"
            );
        }
        let (script, env) = container(&job);
        let clap_envs = known_envs();
        for name in env.keys() {
            assert!(
                script.contains(&format!("${name}")) || clap_envs.contains(name),
                "{name} is set but neither the script nor clw-cli reads it"
            );
        }
        let mut outs = Vec::new();
        for index in 0..shards {
            let argv = expand(&script, &env, index);
            assert_eq!(argv[0], "clw-cli");
            let opts = clw_cli::Opts::try_parse_from(&argv)
                .unwrap_or_else(|e| panic!("pod {index}: {argv:?}\n{e}"));
            let clw_cli::Command::Auth {
                command: clw_cli::AuthCommand::LoadTest(lt),
            } = opts.command
            else {
                panic!("pod {index} does not run a load test: {argv:?}");
            };
            assert_eq!(
                lt.shard,
                Some(clw_cli::shard::Shard {
                    index: index + 1,
                    count: shards
                })
            );
            assert_eq!(lt.start_at, Some(start_at));
            assert_eq!(lt.concurrent_users, Some(300));
            // Live metrics on the port Prometheus is told to scrape, kept
            // up for one last scrape after the load.
            let listen = lt.metrics_listen.expect("--metrics-listen");
            let annotations = &spec["template"]["metadata"]["annotations"];
            assert_eq!(annotations["prometheus.io/scrape"].as_str(), Some("true"));
            assert_eq!(
                annotations["prometheus.io/port"].as_str(),
                Some(listen.port().to_string().as_str())
            );
            assert_eq!(
                c["ports"][0]["containerPort"].as_i64(),
                Some(i64::from(listen.port()))
            );
            assert!(lt.metrics_linger >= Duration::from_secs(15));
            // The TLS target is verified with the CA the pod mounts.
            assert!(lt.target.starts_with("https://"), "{}", lt.target);
            let cacert = lt.cacert.clone().expect("--cacert for the https target");
            let ca_mount = &c["volumeMounts"][1];
            assert!(cacert.starts_with(ca_mount["mountPath"].as_str().unwrap()));
            assert_eq!(
                spec["template"]["spec"]["volumes"][1]["secret"]["secretName"].as_str(),
                Some("clw-auth-ca")
            );
            assert_eq!(lt.duration, Some(Duration::from_secs(300)));
            outs.push(lt.out.expect("each shard names its folder"));
        }
        outs.dedup();
        assert_eq!(outs.len(), shards as usize, "one folder per shard");
        let mount = &c["volumeMounts"][0]["mountPath"];
        assert!(outs.iter().all(|o| o.starts_with(mount.as_str().unwrap())));
    }
    assert!(start_at > SystemTime::UNIX_EPOCH);
}

#[test]
fn the_merge_job_merges_every_shard_folder() {
    let text = std::fs::read_to_string(dir().join("merge.yaml")).unwrap();
    let job = YamlLoader::load_from_str(&text).unwrap().remove(0);
    let (script, env) = container(&job);
    let shards = render(3);
    let shard_claim =
        &shards["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"];
    let merge_claim =
        &job["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"];
    assert_eq!(shard_claim, merge_claim, "the same volume");
    // The shell's glob, as it expands over three shards' folders.
    let script = script.replace("/runs/shard-*", "/runs/shard-1 /runs/shard-2 /runs/shard-3");
    let argv = expand(&script, &env, 0);
    let opts = clw_cli::Opts::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?}\n{e}"));
    let clw_cli::Command::Merge(m) = opts.command else {
        panic!("not a merge: {argv:?}");
    };
    assert_eq!(m.runs.len(), 3);
    assert!(!m.allow_partial, "a missing shard fails the merge Job");
}
