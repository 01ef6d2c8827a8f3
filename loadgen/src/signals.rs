//! SIGINT (Ctrl-C) and SIGTERM during a load test. The first stops the load:
//! everything measured so far is still written, the spawned server is
//! stopped, the run is marked interrupted and clw-cli exits 128 + the
//! signal (130, 143). A second signal ends the process at once with that
//! code; a spawned server then dies with it (clw-limit's parent-death
//! signal) and its cgroup is cleaned up by the next run.

use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::{oneshot, watch};

/// The signals that interrupt a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interrupt {
    Int,
    Term,
}

impl Interrupt {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Interrupt::Int => "SIGINT",
            Interrupt::Term => "SIGTERM",
        }
    }

    /// 128 + the signal number, as a shell reports a process it ended.
    pub(crate) fn exit_code(self) -> i32 {
        128 + match self {
            Interrupt::Int => libc::SIGINT,
            Interrupt::Term => libc::SIGTERM,
        }
    }
}

async fn next(int: &mut Signal, term: &mut Signal) -> Interrupt {
    tokio::select! {
        _ = int.recv() => Interrupt::Int,
        _ = term.recv() => Interrupt::Term,
    }
}

/// The listener for the length of one load test. It runs on a thread of its
/// own, so a second signal ends the process even while the run's own thread
/// is busy (joining the load's workers, rendering the report). Dropping it
/// stops listening (the signals are then caught and ignored).
pub(crate) struct Interrupts {
    first: watch::Receiver<Option<Interrupt>>,
    stop: Option<oneshot::Sender<()>>,
}

impl Interrupts {
    /// Catch SIGINT and SIGTERM from now on (once this returns Ok).
    pub(crate) fn install() -> std::io::Result<Interrupts> {
        let (tx, first) = watch::channel(None);
        let (stop, mut stopped) = oneshot::channel::<()>();
        let (ready_tx, ready) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("clw-cli-signals".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let registered = signal(SignalKind::interrupt())
                        .and_then(|int| Ok((int, signal(SignalKind::terminate())?)));
                    let (mut int, mut term) = match registered {
                        Ok(pair) => {
                            let _ = ready_tx.send(Ok(()));
                            pair
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    tokio::select! {
                        first = next(&mut int, &mut term) => { let _ = tx.send(Some(first)); }
                        _ = &mut stopped => return,
                    }
                    tokio::select! {
                        second = next(&mut int, &mut term) => {
                            eprintln!("{} again: exiting now", second.name());
                            std::process::exit(second.exit_code());
                        }
                        _ = &mut stopped => {}
                    }
                });
            })?;
        ready
            .recv()
            .unwrap_or_else(|_| Err(std::io::Error::other("the signal thread ended early")))?;
        Ok(Interrupts {
            first,
            stop: Some(stop),
        })
    }

    /// Wait for the first signal.
    pub(crate) async fn recv(&mut self) -> Interrupt {
        // The guard wait_for returns must not live across an await.
        let first = self
            .first
            .wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|signal| *signal);
        match first {
            Some(signal) => signal,
            // The thread ended without a signal (stopped): none will come.
            None => std::future::pending().await,
        }
    }
}

impl Drop for Interrupts {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
