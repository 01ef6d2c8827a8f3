//! `clw-cli dhat FILE`: the top allocation sites of a dhat heap profile, at
//! the heap's peak and at exit. The reader is clw-run's
//! ([`clw_run::heap::dhat`]), with the pprof one; this is the command.

use crate::opts::DhatOpts;
use crate::outcome::{usage, Error, Outcome};
use clw_run::heap::dhat::HeapSites;

/// `clw-cli dhat FILE`: an unreadable or foreign file is bad input (exit 2).
pub(crate) fn dhat(opts: &DhatOpts) -> Result<Outcome, Error> {
    let sites = HeapSites::read(&opts.file, opts.top).map_err(usage)?;
    println!("{}", opts.file.display());
    print!("{}", sites.render());
    Ok(Outcome {
        exit_code: 0,
        out_dir: None,
        passed: true,
    })
}

#[cfg(test)]
mod tests {
    /// `clw-cli dhat` on a missing or foreign file: bad input, exit 2.
    #[tokio::test]
    async fn the_command_exits_2_on_a_file_it_cannot_read() {
        use clap::Parser;
        let dir = tempfile::tempdir().unwrap();
        let not_dhat = dir.path().join("summary.json");
        std::fs::write(&not_dhat, "{\"memory\": {}}").unwrap();
        for file in [dir.path().join("missing.json"), not_dhat] {
            let opts =
                crate::Opts::try_parse_from(["clw-cli", "dhat", file.to_str().unwrap()]).unwrap();
            let err = crate::run(opts).await.unwrap_err();
            assert_eq!(err.exit_code(), 2, "{err}");
            assert!(err.to_string().contains(file.to_str().unwrap()), "{err}");
        }
    }
}
