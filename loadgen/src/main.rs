//! The `clw-cli` binary: parse, run, map the result to an exit code
//! (0 pass, 1 run failed, 2 bad usage or input, 3 target or setup failure,
//! 130 / 143 interrupted by SIGINT / SIGTERM; docs/loadgen.md).

use clap::Parser;

fn main() {
    let opts = clw_cli::Opts::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("CLW_LOG"))
        .with_writer(std::io::stderr)
        .init();
    // The load runs on its own worker threads; this runtime only hosts the
    // collector, sampler and progress, so one thread is enough.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = match runtime.block_on(clw_cli::run(opts)) {
        Ok(outcome) => outcome.exit_code,
        Err(err) => {
            eprintln!("error: {err}");
            err.exit_code()
        }
    };
    std::process::exit(code);
}
