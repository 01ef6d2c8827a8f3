//! `clw-cli merge DIR... --out DIR`: one run folder from the folders of a
//! sharded run (`--shard I/N`). The merging itself is clw-run's
//! (`clw_run::merge`, pure functions over the run folder's types); this is
//! the command around it: read, refuse what is not one run (exit 2),
//! write, judge the thresholds on the whole, render the report.

use std::path::Path;

use clw_run::merge::{self, ShardRun};

use crate::opts::MergeOpts;
use crate::outcome::{run_file, usage, Error, Outcome};
use crate::results::summary;

pub(crate) fn merge(opts: &MergeOpts) -> Result<Outcome, Error> {
    let shards: Vec<ShardRun> = opts
        .runs
        .iter()
        .map(|dir| merge::load(dir))
        .collect::<Result<_, _>>()
        .map_err(usage)?;
    let info = merge::check(&shards, opts.allow_partial).map_err(usage)?;
    if opts.runs.iter().any(|r| same_dir(r, &opts.out)) {
        return Err(usage(format!(
            "--out {} is one of the shards' folders: merge into a new one",
            opts.out.display()
        )));
    }
    let _lock = crate::outcome::lock_folder(&opts.out)?;
    // One shard's latency.hlog in memory at a time.
    let mut sum = merge::IntervalSum::default();
    for shard in &shards {
        sum.add(&merge::read_intervals(shard).map_err(usage)?);
    }
    let intervals = sum.finish();
    let mut merged = merge::merge_summary(&shards, &info, &intervals);
    let steps: Vec<String> = merged.steps.keys().cloned().collect();
    let open = merged.model == clw_run::Model::Open;
    merge::write_files(&opts.out, &shards, &info, &intervals, &steps, open).map_err(run_file)?;
    // Stage figures again, from the merged latency (and the sampling
    // shard's samples): the base shard's were its own load only.
    summary::set_stage_figures(&mut merged, &opts.out);
    summary::evaluate(&mut merged, &merge::thresholds(&shards));
    if info.partial {
        merged.failures.push(merge::partial_failure(&info));
        merged.passed = Some(false);
    }
    // The console first (below), then the outputs, each failure kept.
    let path = opts.out.join(clw_run::files::SUMMARY);
    let mut unwritten = Vec::new();
    if let Err(e) = merged.write_atomic(&path) {
        unwritten.push(e.to_string());
    }
    if !opts.no_report && unwritten.is_empty() {
        if let Err(e) = clw_report::render_run(&opts.out) {
            unwritten.push(format!("the HTML report: {e}"));
        }
    }
    if !opts.quiet {
        eprintln!(
            "merged shards {:?} of {}{}",
            info.shards,
            info.count,
            if info.partial { " (PARTIAL)" } else { "" }
        );
    }
    print!("{}", crate::results::console::render(&merged, &opts.out));
    if !unwritten.is_empty() {
        return Err(Error::Output(unwritten.join("; ")));
    }
    let passed = merged.passed.unwrap_or(false);
    Ok(Outcome {
        exit_code: if passed { 0 } else { 1 },
        out_dir: Some(opts.out.clone()),
        passed,
    })
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
