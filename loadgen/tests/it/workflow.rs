//! The CI workflow users copy (.github/workflows/memory-gate.yml) and the
//! Makefile's `gate` recipe use only make targets, make variables and
//! clw-cli flags that exist: a renamed flag fails here, not in a user's CI.

use std::collections::BTreeSet;

use clap::CommandFactory;
use yaml_rust2::{Yaml, YamlLoader};

fn repo_file(path: &str) -> String {
    let full = format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// Every `run:` command of every step of every job.
fn run_commands(workflow: &Yaml) -> Vec<String> {
    let jobs = workflow["jobs"].as_hash().expect("jobs");
    jobs.values()
        .flat_map(|job| job["steps"].as_vec().expect("steps").clone())
        .filter_map(|step| step["run"].as_str().map(str::to_string))
        .collect()
}

/// Targets defined in the Makefile (`name:` at the start of a line).
fn make_targets(makefile: &str) -> BTreeSet<String> {
    makefile
        .lines()
        .filter(|l| !l.starts_with(['\t', '#', '.', ' ']))
        .filter_map(|l| l.split_once(':'))
        .filter(|(_, rest)| !rest.starts_with('='))
        .flat_map(|(t, _)| t.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .collect()
}

/// Variables the Makefile defines (`NAME ?=`, `NAME =`, `NAME :=`).
fn make_variables(makefile: &str) -> BTreeSet<String> {
    makefile
        .lines()
        .filter_map(|l| {
            let (name, _) = l.split_once('=')?;
            let name = name.trim_end_matches(['?', ':', '+']).trim();
            (!name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
                .then(|| name.to_string())
        })
        .collect()
}

/// The long flags of `clw-cli auth load-test` and `clw-cli gate`.
fn cli_flags() -> BTreeSet<String> {
    let cmd = clw_cli::Opts::command();
    let load_test = cmd
        .find_subcommand("auth")
        .and_then(|a| a.find_subcommand("load-test"))
        .expect("auth load-test");
    let gate = cmd.find_subcommand("gate").expect("gate");
    [load_test, gate]
        .into_iter()
        .flat_map(|c| {
            c.get_arguments()
                .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
        })
        .collect()
}

fn flags_in(text: &str) -> BTreeSet<String> {
    text.split(|c: char| c.is_whitespace() || c == '"' || c == '\'')
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(|w| w.split('=').next().unwrap().to_string())
        .collect()
}

#[test]
fn the_workflow_uses_only_make_targets_and_variables_that_exist() {
    let docs = YamlLoader::load_from_str(&repo_file(".github/workflows/memory-gate.yml"))
        .expect("the workflow is valid YAML");
    let workflow = &docs[0];
    assert!(
        workflow["on"].as_hash().is_some(),
        "the workflow has triggers"
    );
    let makefile = repo_file("Makefile");
    let (targets, variables) = (make_targets(&makefile), make_variables(&makefile));
    let commands = run_commands(workflow);
    let mut used_make = false;
    for command in &commands {
        let words: Vec<&str> = command.split_whitespace().collect();
        for (i, w) in words.iter().enumerate() {
            if *w != "make" {
                continue;
            }
            used_make = true;
            for arg in &words[i + 1..] {
                match arg.split_once('=') {
                    Some((var, _)) => assert!(
                        variables.contains(var),
                        "make variable {var} is not in the Makefile ({command})"
                    ),
                    None if arg.starts_with('-') => {}
                    None => assert!(
                        targets.contains(*arg),
                        "make target {arg} is not in the Makefile ({command})"
                    ),
                }
            }
        }
    }
    assert!(used_make, "the workflow runs make: {commands:?}");
    assert!(
        targets.contains("gate") && targets.contains("test"),
        "{targets:?}"
    );
}

#[test]
fn the_gate_recipe_uses_only_clw_cli_flags_that_exist() {
    let makefile = repo_file("Makefile");
    let start = makefile
        .find("# --- the CI memory gate ---")
        .expect("gate section");
    let section = &makefile[start..];
    let section = &section[..section[1..]
        .find("\n# ---")
        .map_or(section.len(), |i| i + 1)];
    // Only what is handed to clw-cli: the GATE_LOAD definition and the
    // lines that run $(GATE_CLI) or $(GATE_LOAD), with their continuations.
    let mut clw_text = String::new();
    let mut taking = false;
    for line in section.lines() {
        if line.contains("GATE_LOAD =")
            || line.contains("$(GATE_CLI)")
            || line.contains("$(GATE_LOAD)")
        {
            taking = true;
        }
        if taking {
            clw_text.push_str(line.split("--spawn-server").next().unwrap_or(line));
            clw_text.push('\n');
            if line.contains("--spawn-server") {
                clw_text.push_str("--spawn-server\n");
            }
        }
        taking = taking && line.trim_end().ends_with('\\');
    }
    let known = cli_flags();
    let used = flags_in(&clw_text);
    assert!(
        used.contains("--abort-on-fail") && used.contains("--baseline"),
        "{used:?}"
    );
    let unknown: Vec<_> = used.difference(&known).collect();
    assert!(
        unknown.is_empty(),
        "flags the gate recipe passes that clw-cli does not have: {unknown:?}"
    );
}
