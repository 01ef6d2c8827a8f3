//! The start-server phase: the run folder, the server (when asked to start
//! one), a target that answers and the heap-profile endpoint. Its failures
//! are setup failures (exit 3); an interruption here stops a server it
//! started.

use std::net::SocketAddr;
use std::time::Duration;

use super::prepare::Prepared;
use crate::opts::LoadTestOpts;
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
    opts: &LoadTestOpts,
    p: &Prepared,
    interrupts: &mut Interrupts,
) -> Result<(Started, HeapEndpoint), Error> {
    let existed = p.out.exists();
    std::fs::create_dir_all(&p.out)
        .map_err(|e| setup(format!("cannot create {}: {e}", p.out.display())))?;
    let started = tokio::select! {
        started = start_target(opts, p) => started,
        // Dropping start_target's future stops a server it started.
        signal = interrupts.recv() => Err(Error::Interrupted(signal.name(), signal.exit_code())),
    };
    let (addr, spawned) = match started {
        Ok(started) => started,
        Err(e) => {
            if !existed {
                let _ = std::fs::remove_dir(&p.out);
            }
            return Err(e);
        }
    };
    let server_pid = spawned
        .as_ref()
        .map(|s| s.child.pid())
        .or(opts.server_pid.filter(|_| p.part.samples_memory));
    // Before summary.json and the clock: the first dump loads the server's
    // debug info, which must neither delay t_s = 0 nor count as growth.
    let mut notes = Vec::new();
    // A shard that does not sample memory takes no heap profiles either.
    let target = match p.part.samples_memory {
        true => crate::memory::heap_profiles::endpoint(opts, &p.target, &p.reach, &mut notes)
            .await
            .map_err(setup)?,
        false => None,
    };
    let started = Started {
        addr,
        spawned,
        server_pid,
    };
    Ok((started, HeapEndpoint { target, notes }))
}

/// Resolve the target, start the server (when asked) and check that the
/// target answers.
async fn start_target(
    opts: &LoadTestOpts,
    p: &Prepared,
) -> Result<(SocketAddr, Option<Spawned>), Error> {
    let addr = p.target.resolve().await.map_err(setup)?;
    let (Some(cmd), Some(limit)) = (&opts.spawn_server, opts.memory_limit) else {
        check_reachable(addr, &p.target).await?;
        if let Some(dial) = p.target.dial() {
            dial.check(addr, &p.target.url, &p.target.authority)
                .await
                .map_err(setup)?;
        }
        return Ok((addr, None));
    };
    if tokio::net::TcpStream::connect(addr).await.is_ok() {
        // Something already answers there: the server we start could not
        // bind, and the other process would be load-tested and sampled.
        return Err(setup(format!(
            "{addr} is already in use by another process; stop it or point --target and the server at a free port"
        )));
    }
    let log = p.out.join("server.log");
    let mut spawned = server::spawn(cmd, limit, &log).map_err(setup)?;
    spawned
        .wait_ready(
            addr,
            &p.target.authority,
            &p.target.base_path,
            p.target.dial(),
            opts.ready_timeout,
            &log,
        )
        .await
        .map_err(setup)?;
    Ok((addr, Some(spawned)))
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
