//! A process's resident memory from /proc/PID/status, cheap enough to read
//! every few milliseconds (the watchdog) or every sample (the sampler).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Resident set size now and its high-water mark, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcMem {
    /// VmRSS.
    pub rss_bytes: u64,
    /// VmHWM: the peak RSS since the process started.
    pub hwm_bytes: u64,
}

/// Keeps /proc/PID/status open and re-reads it with pread, so a sample costs
/// one syscall and no path lookup, and a PID reused by another process after
/// exit cannot be read by mistake (the open file refers to the old process
/// and its reads fail with ESRCH once that process is gone).
#[derive(Debug)]
pub struct ProcMemory {
    pid: u32,
    file: File,
    buf: Vec<u8>,
}

impl ProcMemory {
    pub fn open(pid: u32) -> io::Result<ProcMemory> {
        let file = File::open(format!("/proc/{pid}/status"))?;
        Ok(ProcMemory {
            pid,
            file,
            buf: vec![0; 4096],
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Current VmRSS and VmHWM. Fails once the process has exited.
    pub fn read(&mut self) -> io::Result<ProcMem> {
        let mut len = 0;
        loop {
            if len == self.buf.len() {
                self.buf.resize(self.buf.len() * 2, 0);
            }
            let n = self.file.read_at(&mut self.buf[len..], len as u64)?;
            if n == 0 {
                break;
            }
            len += n;
        }
        parse_status(&self.buf[..len]).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "/proc/{}/status has no VmRSS/VmHWM (a zombie or kernel thread?)",
                    self.pid
                ),
            )
        })
    }
}

/// VmRSS and VmHWM from the text of /proc/PID/status (values are in kB).
fn parse_status(text: &[u8]) -> Option<ProcMem> {
    let text = std::str::from_utf8(text).ok()?;
    let mut rss = None;
    let mut hwm = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("VmRSS:") {
            rss = parse_kb(rest);
        } else if let Some(rest) = line.strip_prefix("VmHWM:") {
            hwm = parse_kb(rest);
        }
    }
    Some(ProcMem {
        rss_bytes: rss?,
        hwm_bytes: hwm?,
    })
}

fn parse_kb(field: &str) -> Option<u64> {
    let mut parts = field.split_whitespace();
    let value: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") | None => Some(value * 1024),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_text() {
        let text =
            b"Name:\tclw-auth\nVmPeak:\t  100 kB\nVmHWM:\t    2048 kB\nVmRSS:\t    1024 kB\n";
        assert_eq!(
            parse_status(text),
            Some(ProcMem {
                rss_bytes: 1 << 20,
                hwm_bytes: 2 << 20
            })
        );
        assert_eq!(parse_status(b"Name:\tkthreadd\nState:\tS\n"), None);
    }

    #[test]
    fn reads_own_process_repeatedly() {
        let mut mem = ProcMemory::open(std::process::id()).unwrap();
        let first = mem.read().unwrap();
        assert!(first.rss_bytes > 0 && first.hwm_bytes >= first.rss_bytes);
        // Touch 16 MiB so the re-read must see the rise.
        let block = std::hint::black_box(vec![1u8; 16 << 20]);
        let second = mem.read().unwrap();
        assert!(
            second.rss_bytes >= first.rss_bytes + (8 << 20),
            "{first:?} -> {second:?}"
        );
        drop(block);
    }
}
