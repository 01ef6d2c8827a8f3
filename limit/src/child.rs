//! The limited child: spawn it with the chosen method, watch for its exit,
//! signal it safely, tell an OOM kill from any other death.
//!
//! A waiter thread blocks in `waitid(WNOWAIT)` until the child is a zombie,
//! then reaps it under the same lock that guards every signal we send, so a
//! signal can never reach a recycled PID.

use std::fs::File;
use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::cgroup::{Cgroup, UsageProbe, Version};
use crate::proc_mem::ProcMemory;
use crate::reaper::Reaper;
use crate::{systemd, Enforcement, ExitInfo, LimitError, SpawnSpec};

/// How often the watchdog reads the child's RSS.
const WATCHDOG_PERIOD: Duration = Duration::from_millis(5);

/// A running (or finished) child under a memory limit. Dropping it kills a
/// still-running child and removes the cgroup.
#[derive(Debug)]
pub struct Limited {
    pid: u32,
    enforcement: Enforcement,
    limit_bytes: u64,
    cgroup: Option<Arc<Cgroup>>,
    shared: Arc<Shared>,
    exit_rx: watch::Receiver<Option<ExitInfo>>,
    waiter: Option<JoinHandle<()>>,
    /// Kills the child's process group and cgroup if this process dies
    /// without dropping us (see [`crate::reaper`]).
    reaper: Option<Reaper>,
    notes: Vec<String>,
}

#[derive(Debug)]
struct Shared {
    pid: u32,
    /// True once the child has been reaped; signals are sent only while false.
    reaped: Mutex<bool>,
    watchdog_fired: AtomicBool,
}

impl Shared {
    /// Send `signal` to the child unless it has been reaped already.
    fn signal(&self, signal: i32) -> bool {
        let reaped = self.reaped.lock().unwrap_or_else(|e| e.into_inner());
        if *reaped {
            return false;
        }
        // SAFETY: plain syscall on the PID we started; it cannot have been
        // recycled because it is not reaped while we hold the lock.
        unsafe { libc::kill(self.pid as i32, signal) == 0 }
    }
}

impl Limited {
    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn enforcement(&self) -> Enforcement {
        self.enforcement
    }

    pub fn limit_bytes(&self) -> u64 {
        self.limit_bytes
    }

    /// Why the methods tried before [`Limited::enforcement`] were skipped.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    pub(crate) fn set_notes(&mut self, notes: Vec<String>) {
        self.notes = notes;
    }

    /// Bytes charged to the cgroup now (None for the watchdog).
    pub fn cgroup_usage_bytes(&self) -> Option<u64> {
        self.usage_probe()?.read()
    }

    /// The memory cgroup the child runs in (None for the watchdog).
    pub fn cgroup_dir(&self) -> Option<&Path> {
        self.cgroup.as_deref().map(Cgroup::dir)
    }

    /// A handle the sampler can keep and read from another task.
    pub fn usage_probe(&self) -> Option<UsageProbe> {
        self.cgroup.as_ref()?.usage_probe()
    }

    /// How many times the kernel OOM-killed a process in the cgroup.
    pub fn oom_kill_count(&self) -> Option<u64> {
        self.cgroup.as_ref()?.oom_kill_count()
    }

    /// The exit, if the child has ended; never blocks.
    pub fn try_exit(&mut self) -> Option<ExitInfo> {
        self.exit_rx.borrow().clone()
    }

    /// Wait until the child ends.
    pub async fn wait_exit(&mut self) -> ExitInfo {
        let mut rx = self.exit_rx.clone();
        let result = rx.wait_for(Option::is_some).await;
        match result {
            Ok(exit) => exit.clone().expect("wait_for checked is_some"),
            // The waiter thread always sends before it ends; this is only
            // reachable if it panicked.
            Err(_) => panic!("clw-limit waiter thread ended without reporting the exit"),
        }
    }

    /// SIGTERM, then SIGKILL if the child is still alive after `grace`.
    pub async fn terminate(&mut self, grace: Duration) -> ExitInfo {
        if let Some(exit) = self.try_exit() {
            return exit;
        }
        self.shared.signal(libc::SIGTERM);
        if let Ok(exit) = tokio::time::timeout(grace, self.wait_exit()).await {
            return exit;
        }
        self.shared.signal(libc::SIGKILL);
        self.wait_exit().await
    }
}

impl Drop for Limited {
    fn drop(&mut self) {
        if self.exit_rx.borrow().is_none() {
            self.shared.signal(libc::SIGKILL);
        }
        // Give the waiter a moment to reap, so the cgroup (whose last owner
        // is then us) is removed before the caller moves on or exits.
        let deadline = Instant::now() + Duration::from_secs(5);
        while let Some(waiter) = self.waiter.take() {
            if waiter.is_finished() {
                let _ = waiter.join();
            } else if Instant::now() < deadline {
                self.waiter = Some(waiter);
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        // Our share of the cgroup: its removal kills any straggler. Then the
        // reaper has nothing left to do, unless the child would not die
        // (the waiter still runs): it then reaps as it would on our death.
        drop(self.cgroup.take());
        if let Some(reaper) = self.reaper.take() {
            if self.waiter.is_none() {
                reaper.disarm();
            }
        }
    }
}

/// Spawn with exactly `method`; Err when it is unavailable here.
pub(crate) fn spawn_with(spec: &SpawnSpec, method: Enforcement) -> Result<Limited, LimitError> {
    let program = resolve_program(&spec.program)?;
    let unavailable = |reason: String| LimitError::Unavailable { method, reason };
    let (mut command, cgroup) = match method {
        Enforcement::CgroupV2 | Enforcement::CgroupV1 => {
            let version = if method == Enforcement::CgroupV2 {
                Version::V2
            } else {
                Version::V1
            };
            let cgroup = Cgroup::create(version, spec.limit_bytes).map_err(unavailable)?;
            let mut command = Command::new(&program);
            command.args(&spec.args);
            join_before_exec(&mut command, &cgroup);
            (command, Some(cgroup))
        }
        Enforcement::SystemdRun => {
            let mut command = Command::new("systemd-run");
            command.args(systemd::command_line(
                &program,
                &spec.args,
                spec.limit_bytes,
            ));
            (command, None)
        }
        Enforcement::Watchdog => {
            let mut command = Command::new(&program);
            command.args(&spec.args);
            (command, None)
        }
    };
    die_with_parent(&mut command);
    // Its own process group, led by the child: the unit the reaper and the
    // waiter kill, cgroup or not. Like a container's PID 1, the child's end
    // is the end of everything it started; the terminal's ^C goes to us,
    // and we stop the child as the run's shutdown says.
    command.process_group(0);
    let log = File::create(&spec.log_path).map_err(|source| LimitError::Log {
        path: spec.log_path.clone(),
        source,
    })?;
    let log_err = log.try_clone().map_err(|source| LimitError::Log {
        path: spec.log_path.clone(),
        source,
    })?;
    command
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err);
    let child = command.spawn().map_err(|source| match method {
        Enforcement::CgroupV1 | Enforcement::CgroupV2 => {
            unavailable(format!("cannot move the child into the cgroup: {source}"))
        }
        Enforcement::SystemdRun => unavailable(format!("cannot run systemd-run: {source}")),
        Enforcement::Watchdog => LimitError::Spawn {
            program: program.display().to_string(),
            source,
        },
    })?;
    let pid = child.id();
    let (exit_tx, exit_rx) = watch::channel(None);
    let shared = Arc::new(Shared {
        pid,
        reaped: Mutex::new(false),
        watchdog_fired: AtomicBool::new(false),
    });
    let mut cgroup = cgroup.map(Arc::new);
    let waiter = spawn_waiter(child, Arc::clone(&shared), cgroup.clone(), exit_tx);
    let mut limited = Limited {
        pid,
        enforcement: method,
        limit_bytes: spec.limit_bytes,
        cgroup: None,
        shared: Arc::clone(&shared),
        exit_rx,
        waiter: Some(waiter),
        reaper: None,
        notes: Vec::new(),
    };
    match method {
        Enforcement::SystemdRun => {
            let rx = limited.exit_rx.clone();
            let scope = systemd::find_scope(pid, || rx.borrow().is_some(), Duration::from_secs(5))
                .map_err(|reason| {
                    let tail = log_tail(&spec.log_path);
                    unavailable(if tail.is_empty() {
                        reason
                    } else {
                        format!("{reason}: {tail}")
                    })
                })?;
            cgroup = Some(Arc::new(scope));
        }
        Enforcement::Watchdog => spawn_watchdog(Arc::clone(&shared), spec.limit_bytes)
            .map_err(|e| unavailable(format!("cannot read the child's memory: {e}")))?,
        _ => {}
    }
    limited.reaper = match Reaper::arm(pid, cgroup.as_deref().map(Cgroup::dir)) {
        Ok(reaper) => Some(reaper),
        Err(e) => {
            tracing::warn!(pid, error = %e, "no reaper: the server's tree may outlive a killed harness");
            None
        }
    };
    limited.cgroup = cgroup;
    Ok(limited)
}

/// Have the child get SIGKILL when the process that spawned it dies, so a
/// server never outlives a harness that was SIGKILLed (no destructor runs
/// then). Linux ties the parent-death signal to the *thread* that forked:
/// spawn from a thread that lives as long as the child (a program's main
/// thread, a runtime worker), not a short-lived one. If the parent died
/// before the signal was armed, the child does not start at all.
fn die_with_parent(command: &mut Command) {
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: prctl, getppid and the error construction are async-signal-safe
    // and allocate nothing.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// Have the forked child write "0" (itself) into cgroup.procs before exec,
/// so every allocation of the new program is charged to the limited cgroup.
fn join_before_exec(command: &mut Command, cgroup: &Cgroup) {
    let procs = cgroup.procs_path();
    // SAFETY: the closure only calls async-signal-safe syscalls (open, write,
    // close) and builds io::Error from errno, which does not allocate.
    unsafe {
        command.pre_exec(move || {
            let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            let written = libc::write(fd, b"0".as_ptr().cast(), 1);
            let err = io::Error::last_os_error();
            libc::close(fd);
            if written != 1 {
                return Err(err);
            }
            Ok(())
        });
    }
}

fn spawn_waiter(
    mut child: Child,
    shared: Arc<Shared>,
    cgroup: Option<Arc<Cgroup>>,
    exit_tx: watch::Sender<Option<ExitInfo>>,
) -> JoinHandle<()> {
    let oom_before = cgroup
        .as_ref()
        .and_then(|c| c.oom_kill_count())
        .unwrap_or(0);
    std::thread::Builder::new()
        .name(format!("clw-limit-wait-{}", shared.pid))
        .spawn(move || {
            wait_until_zombie(shared.pid);
            let exited_at = Instant::now();
            // The child leads its process group; while it is an unreaped
            // zombie the group's number cannot be reused, so this reaches
            // only what it started and left behind (a wrapper's server).
            // SAFETY: plain syscall on our own child's group.
            unsafe { libc::kill(-(shared.pid as libc::pid_t), libc::SIGKILL) };
            // Read the OOM count while the zombie still pins the cgroup.
            let oom_after = cgroup.as_ref().and_then(|c| c.oom_kill_count());
            let status = {
                let mut reaped = shared.reaped.lock().unwrap_or_else(|e| e.into_inner());
                let status = child.wait();
                *reaped = true;
                status
            };
            let watchdog = shared.watchdog_fired.load(Ordering::SeqCst);
            let (code, signal) = match status {
                Ok(status) => (status.code(), status.signal()),
                Err(_) => (None, None),
            };
            let exit = ExitInfo {
                code,
                signal,
                oom_killed: watchdog || oom_after.is_some_and(|n| n > oom_before),
                emulated: watchdog,
                exited_at,
            };
            let _ = exit_tx.send(Some(exit));
            // Dropping our Arc<Cgroup> here may remove the cgroup (if the
            // Limited is gone already), after stragglers are killed.
            drop(cgroup);
        })
        .expect("spawning a thread")
}

/// Block until the child has exited, without reaping it.
fn wait_until_zombie(pid: u32) {
    loop {
        // SAFETY: zeroed siginfo_t is a valid out-parameter for waitid.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: plain syscall on our own child.
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if rc == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return;
        }
    }
}

/// Poll the child's RSS; SIGKILL it when it reaches the limit.
fn spawn_watchdog(shared: Arc<Shared>, limit: u64) -> io::Result<()> {
    let mut mem = ProcMemory::open(shared.pid)?;
    std::thread::Builder::new()
        .name(format!("clw-limit-watchdog-{}", shared.pid))
        .spawn(move || loop {
            let Ok(now) = mem.read() else { return };
            if now.rss_bytes >= limit {
                shared.watchdog_fired.store(true, Ordering::SeqCst);
                if !shared.signal(libc::SIGKILL) {
                    shared.watchdog_fired.store(false, Ordering::SeqCst);
                }
                tracing::warn!(
                    pid = shared.pid,
                    rss = now.rss_bytes,
                    limit,
                    "watchdog killed the server at its memory limit (emulated OOM kill)"
                );
                return;
            }
            std::thread::sleep(WATCHDOG_PERIOD);
        })?;
    Ok(())
}

/// A program name looked up in PATH (or a path checked to exist), so a typo
/// is reported as such rather than as every limit method failing.
fn resolve_program(program: &Path) -> Result<PathBuf, LimitError> {
    let not_found = |reason: String| LimitError::BadCommand {
        command: program.display().to_string(),
        reason,
    };
    if program.components().count() > 1 {
        return if program.is_file() {
            Ok(program.to_path_buf())
        } else {
            Err(not_found("no such file".into()))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| not_found("not found in PATH".into()))
}

/// The last line the child wrote to its log, for error messages.
fn log_tail(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string()
}
