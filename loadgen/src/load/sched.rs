//! How the load threads share the CPU with a server on the same machine.
//!
//! A load worker sleeps in `epoll_wait` whenever all of its users wait for
//! responses, and each response wakes it. Under the default policy
//! (`SCHED_OTHER`) that wake-up preempts whatever runs on the core, which on
//! a laptop or a CI runner is the server under test: both sides then switch
//! at nearly every response and each wake-up finds only a few responses to
//! read. wrk's threads rarely sleep, so they escape this; clw-cli's lean
//! loop did not. Over https on 2 cores, clw-cli's workers slept 4x as often
//! as wrk's and reached 0.91x wrk's requests/s.
//!
//! `SCHED_BATCH` keeps the worker's fair share of the CPU but drops the
//! wake-up preemption: a woken worker runs when the running thread's slice
//! ends or it sleeps, and then reads every response that has arrived. In
//! the same run (make bench-tls, docs/loadgen.md) clw-cli's CPU per https
//! request fell from 6.3 to 4.6 µs (wrk: 6.2), its p99 from 1.9 to 0.9 ms,
//! and its requests/s rose to 1.00x wrk's. Where the load has cores of its
//! own nothing is preempted, so nothing changes. Latency is still measured
//! on the worker's clock, from the request's write to the response's last
//! byte, so a wait for the CPU stays in the figure rather than hidden.

use std::io;

/// Put the calling thread under `SCHED_BATCH` (Linux). Only the calling
/// thread changes: the workers call it first thing, so a server clw-cli
/// spawns from the main thread keeps the default policy.
pub(crate) fn batch_current_thread() -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: `param` is a valid sched_param for the call; pid 0 is the
        // calling thread.
        if unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn policy() -> i32 {
        // SAFETY: no arguments beyond the pid (0: the calling thread).
        unsafe { libc::sched_getscheduler(0) }
    }

    #[test]
    fn only_the_calling_thread_becomes_batch() {
        let before = policy();
        assert_eq!(
            before,
            libc::SCHED_OTHER,
            "the test thread starts as SCHED_OTHER"
        );
        let worker = std::thread::spawn(|| {
            batch_current_thread().expect("SCHED_BATCH needs no privilege");
            // A thread the worker starts inherits the policy.
            let child = std::thread::spawn(policy).join().unwrap();
            (policy(), child)
        })
        .join()
        .unwrap();
        assert_eq!(worker, (libc::SCHED_BATCH, libc::SCHED_BATCH));
        assert_eq!(policy(), before, "the spawning thread is unchanged");
    }
}
