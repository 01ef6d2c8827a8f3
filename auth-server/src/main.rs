//! The clw-auth binary: flags, logging, signals, and the global allocator.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use clw_auth::config::{self, LogFormat, Sources};
#[cfg(not(feature = "dhat-heap"))]
use clw_auth::oom::OomAware;
use clw_auth::Server;

// jemalloc is set here and only here: its statistics (allocated, active,
// resident, ...) are what /health, /metrics and the leak tests measure, and
// its purge/decay is what `memory.gc_frequency` drives. The library leaves
// the choice to whoever embeds it. The wrapper prints the field guide's
// FATAL line if an allocation ever fails.
#[cfg(not(feature = "dhat-heap"))]
#[global_allocator]
static GLOBAL: OomAware<tikv_jemallocator::Jemalloc> = OomAware(tikv_jemallocator::Jemalloc);

// jemalloc reads its options once, when it initialises, long before the
// config is loaded: heap profiling is armed here but inactive, and
// start-up activates it (or not) from authentication.memory.heap_profile.
#[cfg(not(feature = "dhat-heap"))]
clw_auth::heap_profiling_malloc_conf!();

// With `--features dhat-heap`, dhat's allocator instead: it records every
// allocation's stack (slowly) and the profiler writes dhat-heap.json when
// main returns after a graceful shutdown (`make profile-heap`).
#[cfg(feature = "dhat-heap")]
#[global_allocator]
static GLOBAL: dhat::Alloc = dhat::Alloc;

/// An authentication service whose session cache can reproduce clw-auth-oom
/// (`leaky`) or stay bounded (`fixed`).
///
/// Configuration precedence: built-in defaults < --config FILE < CLAW_*
/// environment variables < flags. Every key of the field guide's JSON schema
/// has a CLAW_* variable (e.g. CLAW_AUTH_PORT, CLAW_SESSION_CACHE_MAX_SIZE).
#[derive(Debug, Parser)]
#[command(name = "clw-auth", version)]
struct Cli {
    /// JSON config file in the field guide's schema (`{"authentication": ...}`).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on (authentication.service.host).
    #[arg(long)]
    host: Option<String>,
    /// Port to listen on; 0 picks a free one (authentication.service.port).
    #[arg(long)]
    port: Option<String>,
    /// Session cache mode: fixed or leaky (authentication.session.cache.mode).
    #[arg(long, value_name = "MODE")]
    cache_mode: Option<String>,
    /// Leak to reproduce in leaky mode (authentication.session.cache.leak):
    /// unbounded, expired-retained, payload-duplication, arc-cycle, handle-accumulation.
    #[arg(long, value_name = "KIND")]
    leak: Option<String>,
    /// Log format: text or json (authentication.log.format).
    #[arg(long, value_name = "FORMAT")]
    log_format: Option<String>,
    /// Print the effective configuration built from FILE (plus the
    /// environment and flags) as JSON and exit: 0 if valid, 2 if not.
    /// Secrets (service.admin_token) print as "<redacted>".
    #[arg(long, value_name = "FILE")]
    check_config: Option<PathBuf>,
    /// Where dhat's heap profile is written on shutdown (built with the
    /// dhat-heap feature only).
    #[cfg(feature = "dhat-heap")]
    #[arg(long, value_name = "FILE", default_value = "dhat-heap.json")]
    dhat_file: PathBuf,
}

impl Cli {
    fn sources(&self) -> Sources {
        let mut sources =
            Sources::from_process_env(self.check_config.clone().or_else(|| self.config.clone()));
        let flags = [
            ("service.host", &self.host, "--host"),
            ("service.port", &self.port, "--port"),
            ("session.cache.mode", &self.cache_mode, "--cache-mode"),
            ("session.cache.leak", &self.leak, "--leak"),
            ("log.format", &self.log_format, "--log-format"),
        ];
        for (key, value, flag) in flags {
            if let Some(v) = value {
                sources.flags.push((key.into(), v.clone(), flag.into()));
            }
        }
        sources
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let cfg = match config::load(&cli.sources()) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("clw-auth: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.check_config.is_some() {
        let effective = serde_json::json!({ "authentication": cfg });
        println!(
            "{}",
            serde_json::to_string_pretty(&effective).expect("serializable")
        );
        return ExitCode::SUCCESS;
    }
    init_logging(&cfg.log.format, &cfg.log.level);
    // Dropped when main returns, after the graceful shutdown: that is when
    // dhat writes the file, with the heap's peak and what was left at exit.
    #[cfg(feature = "dhat-heap")]
    let _dhat = {
        tracing::info!(
            "dhat heap profiling: {} is written on shutdown",
            cli.dhat_file.display()
        );
        dhat::Profiler::builder().file_name(&cli.dhat_file).build()
    };
    match serve(cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("clw-auth: {e:#}");
            // A config the start-up checks refuse is bad usage, as in load().
            let config = matches!(e.downcast_ref(), Some(clw_auth::ServerError::Config(_)));
            ExitCode::from(if config { 2 } else { 1 })
        }
    }
}

fn init_logging(format: &LogFormat, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

#[tokio::main]
async fn serve(cfg: clw_auth::Config) -> anyhow::Result<()> {
    let shutdown = shutdown_signal();
    let server = Server::bind(cfg).await.context("start-up failed")?;
    server.run_until(shutdown).await?;
    Ok(())
}

/// Resolves on SIGTERM (what Docker and Kubernetes send) or SIGINT.
///
/// The handlers are installed here, before the server binds, not on the
/// future's first poll: the accept loop's `select!` may serve the first
/// connections (a readiness probe) without polling the shutdown branch,
/// and a SIGTERM arriving then would take the default action and kill the
/// process instead of draining it.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
    }
}
