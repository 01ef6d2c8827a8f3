//! `run()`: one command from options to exit code. `auth load-test` goes
//! to [`crate::load_test`]; `report`, `gate`, `merge` and `dhat` are
//! answered here or in their own modules.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::load_test::{folder_stamp, load_test, load_tests};
use crate::opts::{AuthCommand, CapacityOpts, Command, Expect, Opts, ReportOpts, VerifyOpts};
use crate::outcome::{Error, Outcome};

/// Run the command `opts` describes.
pub async fn run(opts: Opts) -> Result<Outcome, Error> {
    match opts.command {
        Command::Auth {
            command: AuthCommand::LoadTest(lt),
        } => {
            let metrics = crate::exporter::listen(lt.metrics_listen).await?;
            let linger = lt.metrics_linger;
            let outcome = if lt.repeat > 1 {
                load_tests(*lt, metrics.as_ref()).await
            } else {
                load_test(*lt, metrics.as_ref()).await
            };
            if let Some(m) = metrics {
                m.finish(if outcome.is_ok() {
                    linger
                } else {
                    Duration::ZERO
                })
                .await;
            }
            outcome
        }
        Command::Report(r) => report(r),
        Command::Gate(g) => crate::gate::gate(g),
        Command::Merge(m) => crate::merge::merge(&m),
        Command::Dhat(d) => crate::dhat::dhat(&d),
        Command::Verify(v) => verify(&v),
        Command::Capacity(c) => capacity(&c),
    }
}

/// summary.json of `dir`: a folder without one, or one that breaks its
/// contract, is bad input (exit 2).
fn summary_of(dir: &std::path::Path) -> Result<clw_run::RunSummary, Error> {
    clw_run::RunSummary::read(&dir.join(clw_run::files::SUMMARY)).map_err(crate::outcome::run_file)
}

/// `clw-cli verify RUN_DIR --expect ...`: the rule's lines, exit 0 when
/// the run shows what it should, 1 when not.
fn verify(opts: &VerifyOpts) -> Result<Outcome, Error> {
    use clw_run::verify::Expectation;
    let summary = summary_of(&opts.run)?;
    let expect = match opts.expect {
        Expect::Leak => Expectation::Leak,
        Expect::Bounded => Expectation::Bounded,
        Expect::Soak => Expectation::Soak,
    };
    let dir = opts.run.display().to_string();
    let checked = clw_run::verify::verify(&summary, dir.trim_end_matches('/'), expect);
    let rules = clw_run::verify::SiteRules {
        top_site_in: opts.top_site_in.clone(),
        sites_within: opts.sites_within,
    };
    let site_failures = clw_run::verify::check_sites(&summary, &rules);
    for line in checked.lines.iter().chain(&site_failures) {
        println!("{}", crate::escape::printable(line));
    }
    let met = checked.met && site_failures.is_empty();
    Ok(Outcome {
        exit_code: if met { 0 } else { 1 },
        out_dir: Some(opts.run.clone()),
        passed: met,
    })
}

/// `clw-cli capacity RUN_DIR`: a line per hold and the conclusion.
fn capacity(opts: &CapacityOpts) -> Result<Outcome, Error> {
    let summary = summary_of(&opts.run)?;
    for line in clw_run::capacity::lines(&summary) {
        println!("{line}");
    }
    Ok(Outcome {
        exit_code: 0,
        out_dir: Some(opts.run.clone()),
        passed: true,
    })
}

/// `clw-cli report RUN_DIR...`: one run's page, a comparison of several,
/// and/or an index.
fn report(opts: ReportOpts) -> Result<Outcome, Error> {
    // A run killed before its summary was written still has its CSVs:
    // clw-report decides what is a run folder, and says what is missing.
    let out_dir = match &opts.runs[..] {
        [] => None,
        [run] => {
            // Not while a run (or another report) writes the folder.
            // (A path that is no folder is left to clw-report to name.)
            let _lock = match run.is_dir() {
                true => Some(
                    clw_run::lock::FolderLock::acquire(run).map_err(crate::outcome::folder_lock)?,
                ),
                false => None,
            };
            let rendered = clw_report::render_run(run).map_err(Error::from)?;
            for notice in &rendered.notices {
                eprintln!("note: {notice}");
            }
            println!("report: {}", rendered.page.display());
            Some(run.clone())
        }
        runs => {
            let out = opts.out.clone().unwrap_or_else(|| {
                PathBuf::from("reports")
                    .join(format!("compare-{}", folder_stamp(SystemTime::now())))
            });
            let _lock = crate::outcome::lock_folder(&out)?;
            let rendered = clw_report::render_comparison(runs, &out).map_err(Error::from)?;
            println!("comparison: {}", rendered.page.display());
            Some(out)
        }
    };
    if let Some(dir) = &opts.index {
        let page = clw_report::render_index(dir)?;
        println!("index: {}", page.display());
    }
    Ok(Outcome {
        exit_code: 0,
        out_dir,
        passed: true,
    })
}
