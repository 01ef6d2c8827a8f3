//! The start-server phase: the run folder, the server (when asked to start
//! one), a target that answers and the heap-profile endpoint. Its failures
//! are setup failures (exit 3); an interruption here stops a server it
//! started.

use std::net::SocketAddr;
use std::time::Duration;

use super::config::RunConfig;
use crate::outcome::{setup, Error};
use crate::server::{self, Spawned};
use crate::signals::Interrupts;
use crate::target::Target;

/// The server side of a run, once its target answers.
pub(super) struct Started {
    pub(super) addr: SocketAddr,
    /// The server clw-cli started (`--spawn-server`), if any.
    pub(super) spawned: Option<Spawned>,
    /// The process whose memory is sampled: the one started, or
    /// `--server-pid`.
    pub(super) server_pid: Option<u32>,
    /// Sample `server_pid` with its descendants: one of them holds the
    /// target's listening socket (see [`crate::proctree`]).
    pub(super) pid_tree: bool,
    /// The run folder's lock, held until the run ends (dropped with this).
    pub(super) _lock: clw_run::lock::FolderLock,
    /// What the port check found worth saying in summary.json.
    pub(super) notes: Vec<String>,
}

/// Where heap profiles come from (None: no capture) and what the probe
/// found worth saying in summary.json.
pub(super) struct HeapEndpoint {
    pub(super) target: Option<Target>,
    pub(super) notes: Vec<String>,
}

/// Create the run folder and bring the target up. A folder made for a run
/// that never started is removed again; one holding the server's log (named
/// in the error) stays.
pub(super) async fn start_server(
    cfg: &RunConfig,
    interrupts: &mut Interrupts,
) -> Result<(Started, HeapEndpoint), Error> {
    let existed = cfg.out.exists();
    // One run per folder: a second run on it is refused before anything
    // is written there (the folder is the other run's: not removed).
    let lock = crate::outcome::lock_folder(&cfg.out)?;
    let started = tokio::select! {
        started = start_target(cfg) => started,
        // Dropping start_target's future stops a server it started.
        signal = interrupts.recv() => Err(Error::Interrupted(signal.name(), signal.exit_code())),
    };
    let (addr, spawned, tree_note) = match started {
        Ok(started) => started,
        Err(e) => {
            if !existed {
                let _ = std::fs::remove_dir(&cfg.out);
            }
            return Err(e);
        }
    };
    let server_pid = spawned.as_ref().map(|s| s.child.pid()).or(cfg.server_pid);
    let (pid_tree, process_note) = match &spawned {
        Some(s) => crate::proctree::spawned_scope(s.child.pid(), addr.port()),
        None => (tree_note.is_some(), tree_note),
    };
    // Before summary.json and the clock: the first dump loads the server's
    // debug info, which must neither delay t_s = 0 nor count as growth.
    let mut notes = Vec::new();
    // A shard that does not sample memory takes no heap profiles either.
    let target = match cfg.part.samples_memory && cfg.measure_memory {
        true => {
            crate::memory::heap_profiles::endpoint(&cfg.heap, &cfg.target, &cfg.reach, &mut notes)
                .await
                .map_err(setup)?
        }
        false => None,
    };
    let started = Started {
        addr,
        spawned,
        server_pid,
        pid_tree,
        notes: process_note.into_iter().collect(),
        _lock: lock,
    };
    Ok((started, HeapEndpoint { target, notes }))
}

/// Resolve the target, start the server (when asked) and check that the
/// target answers, and that a `--server-pid` serves it (with a note when
/// through a descendant, whose tree is then measured).
async fn start_target(
    cfg: &RunConfig,
) -> Result<(SocketAddr, Option<Spawned>, Option<String>), Error> {
    let addr = cfg.target.resolve().await.map_err(setup)?;
    let Some(spawn) = &cfg.spawn else {
        check_reachable(addr, &cfg.target).await?;
        if cfg.target.dial().is_none() {
            refuse_a_tls_port(addr, &cfg.target).await?;
        }
        if let Some(dial) = cfg.target.dial() {
            dial.check(addr, &cfg.target.url, &cfg.target.authority)
                .await
                .map_err(setup)?;
        }
        let tree = match cfg.server_pid {
            Some(pid) => crate::proctree::check_server_pid(pid, addr.port()).map_err(setup)?,
            None => None,
        };
        return Ok((addr, None, tree));
    };
    // A server an earlier, killed run left in its cgroup would hold the
    // port: its cgroup is removed, and the server with it.
    for dir in clw_limit::sweep_leftover_cgroups() {
        eprintln!(
            "note: removed {}, left by an earlier run that was killed, and every process in it",
            dir.display()
        );
    }
    if tokio::net::TcpStream::connect(addr).await.is_ok() {
        // Something already answers there: the server we start could not
        // bind, and the other process would be load-tested and sampled.
        return Err(setup(format!(
            "{addr} is already in use by another process; stop it or point --target and the server at a free port"
        )));
    }
    let log = cfg.out.join("server.log");
    let mut spawned = server::spawn(&spawn.command, spawn.limit_bytes, &log).map_err(setup)?;
    spawned
        .wait_ready(
            &spawn.readiness,
            addr,
            &cfg.target,
            spawn.ready_timeout,
            &log,
        )
        .await
        .map_err(setup)?;
    if let (server::Readiness::Tcp, None) = (&spawn.readiness, cfg.target.dial()) {
        refuse_a_tls_port(addr, &cfg.target).await?;
    }
    // An HTTP readiness poll over https has checked the handshake; a TCP
    // one has not.
    if let (server::Readiness::Tcp, Some(dial)) = (&spawn.readiness, cfg.target.dial()) {
        dial.check(addr, &cfg.target.url, &cfg.target.authority)
            .await
            .map_err(setup)?;
    }
    Ok((addr, Some(spawned), None))
}

/// Exit 3 early when an `http://` target's port speaks TLS: every request
/// of the load would be a protocol error. Asked in TLS (a ClientHello that
/// a TLS server answers, see [`crate::tls::speaks_tls`]) rather than with a
/// plain request, so that a plain HTTP service sees no request it would
/// route, count or log as one: only bytes it refuses to parse.
async fn refuse_a_tls_port(addr: SocketAddr, target: &Target) -> Result<(), Error> {
    if crate::tls::speaks_tls(addr).await {
        return Err(setup(format!(
            "target {} ({addr}): this port speaks TLS: use https://{}",
            target.url, target.authority
        )));
    }
    Ok(())
}

/// Exit 3 early, with the reason, when nothing listens at the target.
async fn check_reachable(addr: SocketAddr, target: &Target) -> Result<(), Error> {
    match tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(setup(format!(
            "target {} ({addr}) is unreachable: {e}",
            target.url
        ))),
        Err(_) => Err(setup(format!(
            "target {} ({addr}) did not accept a connection within 5s",
            target.url
        ))),
    }
}
