//! The reaper: the one part of the harness that outlives it.
//!
//! A harness that is SIGKILLed (or aborts) runs no destructor. The child's
//! parent-death signal then kills the process clw-limit started, and only
//! that one: a wrapper that does not `exec` its server (`sh -c 'server &
//! wait'`, `npm start`, a JVM launcher script) leaves the real server
//! running, reparented to init, holding its port and its memory.
//!
//! So once the child runs, [`Reaper::arm`] forks a small process that does
//! nothing but block reading a pipe whose only write end the harness holds.
//! The kernel closes that end however the harness dies, so the reaper's read
//! returns end-of-file exactly then. It kills the child's process group and
//! every task left in its memory cgroup, removes the cgroup, says so on
//! stderr, and exits. A harness that cleaned up by itself disarms it first
//! with one byte: the reaper exits touching nothing.
//!
//! The reaper is forked, not exec'd. A library has no binary of its own to
//! exec, and clw-limit also runs inside other programs (clw-cli's tests run
//! it in-process). Between fork and `_exit` the reaper therefore makes only
//! async-signal-safe system calls on memory prepared before the fork: no
//! allocation, no lock, nothing of the runtime it was forked from.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::proc_stat::parse_stat;

/// How long the reaper keeps killing and retrying the cgroup's removal: the
/// tasks it kills leave the cgroup asynchronously.
const REMOVE_ROUNDS: u32 = 100;
const ROUND_NANOS: libc::c_long = 20_000_000;

/// A forked reaper watching this process for the child's process group
/// `group` and (if any) its memory cgroup. Dropping it without
/// [`Reaper::disarm`] makes it reap now, as the harness's death would.
#[derive(Debug)]
pub(crate) struct Reaper {
    pid: libc::pid_t,
    pipe: Option<OwnedFd>,
}

/// Everything the forked reaper uses, built before the fork.
struct Plan {
    group: libc::pid_t,
    /// The group leader's start time (clock ticks after boot, field 22 of
    /// /proc/PID/stat) when armed: a process that has this PID later but
    /// another start time is not ours, so its group is left alone.
    leader_start: Option<u64>,
    stat_path: CString,
    cgroup: Option<CgroupPaths>,
    /// The line written to stderr when it reaps.
    message: Vec<u8>,
}

struct CgroupPaths {
    dir: CString,
    procs: CString,
    /// cgroup v2's `cgroup.kill` (Linux 5.14): kills every task at once.
    kill: CString,
}

impl Reaper {
    /// Fork a reaper for the process group `group` (the child is its
    /// leader) and the memory cgroup at `cgroup`. Err only when the pipe or
    /// the fork fails; the caller runs on without one, saying so.
    pub(crate) fn arm(group: u32, cgroup: Option<&Path>) -> io::Result<Reaper> {
        let group =
            libc::pid_t::try_from(group).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        let plan = Plan::new(group, cgroup);
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills the two fds; O_CLOEXEC keeps the write end out
        // of every program a later spawn execs.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both fds were just created and are owned here only.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: the child runs `reaper_main`, which only makes
        // async-signal-safe calls on memory prepared above and never returns.
        match unsafe { libc::fork() } {
            -1 => Err(io::Error::last_os_error()),
            0 => unsafe { reaper_main(&plan, read.as_raw_fd(), write.as_raw_fd()) },
            pid => {
                drop(read);
                Ok(Reaper {
                    pid,
                    pipe: Some(write),
                })
            }
        }
    }

    /// The harness cleaned up by itself: the reaper exits touching nothing.
    pub(crate) fn disarm(mut self) {
        if let Some(pipe) = self.pipe.take() {
            // SAFETY: a one-byte write to our own pipe.
            unsafe { libc::write(pipe.as_raw_fd(), b"d".as_ptr().cast(), 1) };
        }
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        // Closing the write end without the byte is the harness's death as
        // the reaper sees it; either way, wait for it so no zombie is left.
        drop(self.pipe.take());
        let mut status = 0;
        // SAFETY: waitpid on the reaper we forked, which nothing else reaps.
        while unsafe { libc::waitpid(self.pid, &mut status, 0) } == -1
            && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
        {}
    }
}

impl Plan {
    fn new(group: libc::pid_t, cgroup: Option<&Path>) -> Plan {
        let stat = format!("/proc/{group}/stat");
        let leader_start = std::fs::read(&stat)
            .ok()
            .and_then(|s| parse_stat(&s))
            .map(|s| s.start_time);
        let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).expect("paths hold no NUL");
        let message = match cgroup {
            Some(dir) => format!(
                "clw-limit: the harness ended without cleaning up; killed the server's process group {group} and every task in its memory cgroup {}\n",
                dir.display()
            ),
            None => format!(
                "clw-limit: the harness ended without cleaning up; killed the server's process group {group}\n"
            ),
        };
        Plan {
            group,
            leader_start,
            stat_path: CString::new(stat).expect("no NUL"),
            cgroup: cgroup.map(|dir| CgroupPaths {
                dir: c(dir),
                procs: c(&dir.join("cgroup.procs")),
                kill: c(&dir.join("cgroup.kill")),
            }),
            message: message.into_bytes(),
        }
    }
}

/// The forked reaper. Detaches from the terminal's signals, keeps only the
/// pipe's read end and stderr, then waits for a byte (disarmed) or the end
/// of file (the harness is gone) and reaps.
///
/// # Safety
/// Only in the child of a fork: makes async-signal-safe calls only.
unsafe fn reaper_main(plan: &Plan, read: libc::c_int, write: libc::c_int) -> ! {
    libc::close(write);
    libc::prctl(libc::PR_SET_NAME, c"clw-reaper".as_ptr(), 0, 0, 0);
    // Its own session: the terminal's ^C and hangup reach the harness, which
    // then cleans up and disarms us, never us first.
    libc::setsid();
    for signal in [
        libc::SIGINT,
        libc::SIGTERM,
        libc::SIGHUP,
        libc::SIGQUIT,
        libc::SIGPIPE,
        libc::SIGTSTP,
        libc::SIGTTIN,
        libc::SIGTTOU,
        libc::SIGUSR1,
        libc::SIGUSR2,
    ] {
        libc::signal(signal, libc::SIG_IGN);
    }
    close_all_but(read, 2);
    let mut byte = 0u8;
    loop {
        match libc::read(read, (&mut byte as *mut u8).cast(), 1) {
            1 => libc::_exit(0),
            -1 if *libc::__errno_location() == libc::EINTR => continue,
            _ => break,
        }
    }
    reap(plan);
    libc::write(2, plan.message.as_ptr().cast(), plan.message.len());
    libc::_exit(0)
}

/// Close every descriptor but `keep` and `also` (listening sockets, the run
/// folder's lock, the harness's own pipes), so the reaper holds nothing the
/// next run needs.
unsafe fn close_all_but(keep: libc::c_int, also: libc::c_int) {
    let (low, high) = (i64::from(keep.min(also)), i64::from(keep.max(also)));
    let max = i64::from(libc::c_uint::MAX);
    for (first, last) in [(0, low - 1), (low + 1, high - 1), (high + 1, max)] {
        if first > last {
            continue;
        }
        if libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            last as libc::c_uint,
            0,
        ) != 0
        {
            // Before Linux 5.9: one by one, up to a generous bound.
            for fd in first..=last.min(65_535) {
                libc::close(fd as libc::c_int);
            }
        }
    }
}

/// Kill the process group (unless its leader's PID now names another
/// process) and every task in the cgroup, then remove the cgroup.
unsafe fn reap(plan: &Plan) {
    if group_is_ours(plan) {
        libc::kill(-plan.group, libc::SIGKILL);
    }
    let Some(cgroup) = &plan.cgroup else { return };
    let fd = libc::open(cgroup.kill.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
    if fd >= 0 {
        libc::write(fd, b"1".as_ptr().cast(), 1);
        libc::close(fd);
    }
    for _ in 0..REMOVE_ROUNDS {
        kill_listed(&cgroup.procs);
        if libc::rmdir(cgroup.dir.as_ptr()) == 0 || *libc::__errno_location() == libc::ENOENT {
            return;
        }
        let pause = libc::timespec {
            tv_sec: 0,
            tv_nsec: ROUND_NANOS,
        };
        libc::nanosleep(&pause, std::ptr::null_mut());
    }
}

/// True unless the leader's PID is alive with another start time than when
/// armed (the PID was reused, so a group of that number is someone else's).
/// A group outlives its leader while a member lives, and its number cannot
/// be reused until then.
unsafe fn group_is_ours(plan: &Plan) -> bool {
    let Some(armed) = plan.leader_start else {
        return true;
    };
    let mut buf = [0u8; 1024];
    let fd = libc::open(plan.stat_path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
    if fd < 0 {
        return true;
    }
    let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
    libc::close(fd);
    if n <= 0 {
        return true;
    }
    parse_stat(&buf[..n as usize]).is_none_or(|now| now.start_time == armed)
}

/// SIGKILL every PID listed in `procs` (one per line), reading it in
/// page-sized pieces.
unsafe fn kill_listed(procs: &CString) {
    let fd = libc::open(procs.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
    if fd < 0 {
        return;
    }
    let mut buf = [0u8; 4096];
    // Carried across reads: a PID may straddle two of them.
    let mut pid: libc::pid_t = 0;
    loop {
        let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
        if n <= 0 {
            break;
        }
        for &b in &buf[..n as usize] {
            match b {
                b'0'..=b'9' => {
                    pid = pid
                        .saturating_mul(10)
                        .saturating_add((b - b'0') as libc::pid_t)
                }
                b'\n' => {
                    if pid > 0 {
                        libc::kill(pid, libc::SIGKILL);
                    }
                    pid = 0;
                }
                _ => pid = 0,
            }
        }
    }
    libc::close(fd);
}

#[cfg(test)]
mod tests;
