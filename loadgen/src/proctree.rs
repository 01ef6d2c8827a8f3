//! The server's processes as /proc shows them: which process holds the
//! target port's listening socket, and a process with its descendants.
//!
//! A server is often started through a wrapper (`sh -c`, `npm start`, a
//! supervisor): the PID a user knows, or the one `--spawn-server` started,
//! is then not the process that serves, and its RSS says nothing of the
//! server's. The listening socket tells them apart: /proc/net/tcp and tcp6
//! give the socket's inode, and the process whose /proc/PID/fd holds
//! `socket:[inode]` is the one that accepts connections.

use std::collections::{HashMap, HashSet};

use clw_limit::ProcMemory;
use procfs::net::TcpState;
use procfs::process::{FDTarget, Process};

/// Who holds the port's listening socket, as seen from a given process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PortOwner {
    /// The process itself holds it, and none of its descendants does.
    Itself,
    /// A descendant holds it (the process is a wrapper, or a master whose
    /// workers share the socket): the tree is the server.
    Descendant { holder: u32 },
    /// Another process, not in the tree.
    Other { pid: u32, comm: Option<String> },
    /// A socket listens, but no process whose fds can be read holds it
    /// (another user's, or another PID namespace).
    Unreadable,
    /// No socket listens on the port on this host.
    Nothing,
}

/// Who holds the listening socket of TCP `port` (IPv4 or IPv6), as seen
/// from `pid` and its descendants.
pub(crate) fn port_owner(pid: u32, port: u16) -> PortOwner {
    let inodes = listening_inodes(port);
    if inodes.is_empty() {
        return PortOwner::Nothing;
    }
    let tree = tree(pid);
    let holders: Vec<u32> = tree
        .iter()
        .copied()
        .filter(|p| holds(*p, &inodes))
        .collect();
    if let Some(holder) = holders.iter().copied().find(|p| *p != pid) {
        return PortOwner::Descendant { holder };
    }
    if !holders.is_empty() {
        return PortOwner::Itself;
    }
    let mut pids = procfs::process::all_processes()
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|p| u32::try_from(p.pid()).ok());
    match pids.find(|p| holds(*p, &inodes)) {
        Some(other) => PortOwner::Other {
            pid: other,
            comm: comm(other),
        },
        None => PortOwner::Unreadable,
    }
}

/// `--server-pid PID` checked against the target's `port`: Ok(Some(note))
/// when a descendant holds the listening socket (the tree is then
/// measured, the note says why), Ok(None) when the process itself does,
/// else why not, naming what listens there (a setup failure: exit 3).
pub(crate) fn check_server_pid(pid: u32, port: u16) -> Result<Option<String>, String> {
    let given = named(pid, comm(pid));
    match port_owner(pid, port) {
        PortOwner::Itself => Ok(None),
        PortOwner::Descendant { holder } => Ok(Some(tree_note(pid, holder, port))),
        PortOwner::Other { pid: other, comm } => Err(format!(
            "--server-pid {pid}: the target's port {port} is held by {}, not by {given} nor any process it started; pass --server-pid {other}",
            named(other, comm)
        )),
        PortOwner::Unreadable => Err(format!(
            "--server-pid {pid}: port {port} listens, but not in {given} nor any process it started, and its owner cannot be read (another user's process?)"
        )),
        PortOwner::Nothing => Err(format!(
            "--server-pid {pid}: nothing listens on port {port} on this host (the target's port): the pid must be the local process serving the target"
        )),
    }
}

/// For a server clw-cli started: whether its tree is to be measured (a
/// descendant holds the port: the command was a wrapper such as `sh -c` or
/// `npm start`), and a note when the port's holder is outside the tree.
pub(crate) fn spawned_scope(pid: u32, port: u16) -> (bool, Option<String>) {
    match port_owner(pid, port) {
        PortOwner::Itself | PortOwner::Nothing | PortOwner::Unreadable => (false, None),
        PortOwner::Descendant { holder } => (true, Some(tree_note(pid, holder, port))),
        PortOwner::Other { pid: other, comm } => (
            false,
            Some(format!(
                "port {port} is held by pid {other} ({}), not by the started server (pid {pid}) nor a process it started: its memory is the started process's alone",
                comm.as_deref().unwrap_or("?")
            )),
        ),
    }
}

/// `pid 42 (python3)`, or `pid 42` when its name cannot be read.
fn named(pid: u32, comm: Option<String>) -> String {
    match comm {
        Some(c) => format!("pid {pid} ({c})"),
        None => format!("pid {pid}"),
    }
}

/// Why the tree of `pid` is measured.
fn tree_note(pid: u32, holder: u32, port: u16) -> String {
    format!(
        "memory is the process tree of {pid}: port {port} is held by its descendant {}",
        named(holder, comm(holder))
    )
}

/// `pid` first, then its descendants (children before grandchildren), as
/// /proc shows them now; just `pid` when it has none (or /proc cannot be
/// listed).
pub(crate) fn tree(pid: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for process in procfs::process::all_processes()
        .into_iter()
        .flatten()
        .flatten()
    {
        if let (Ok(stat), Ok(child)) = (process.stat(), u32::try_from(process.pid())) {
            if let Ok(parent) = u32::try_from(stat.ppid) {
                children.entry(parent).or_default().push(child);
            }
        }
    }
    let mut all = vec![pid];
    let mut i = 0;
    while let Some(p) = all.get(i).copied() {
        for child in children.get(&p).into_iter().flatten() {
            if !all.contains(child) {
                all.push(*child);
            }
        }
        i += 1;
    }
    all
}

/// The RSS of a process and its descendants, summed (each one's VmRSS, as
/// for one process: pages shared between them count once per process), the
/// tree listed again at every read, since a server's workers come and go.
#[derive(Debug)]
pub(crate) struct TreeMemory {
    root: ProcMemory,
    /// The fewest and most processes one read summed.
    counted: Option<(usize, usize)>,
}

impl TreeMemory {
    pub(crate) fn open(pid: u32) -> std::io::Result<TreeMemory> {
        Ok(TreeMemory {
            root: ProcMemory::open(pid)?,
            counted: None,
        })
    }

    /// The tree's summed RSS now. Fails once the root process is gone; a
    /// descendant gone between the listing and its read is left out.
    pub(crate) fn read(&mut self) -> std::io::Result<u64> {
        let mut rss = self.root.read()?.rss_bytes;
        let mut count = 1;
        for pid in tree(self.root.pid()).into_iter().skip(1) {
            if let Ok(mem) = ProcMemory::open(pid).and_then(|mut p| p.read()) {
                rss += mem.rss_bytes;
                count += 1;
            }
        }
        self.counted = Some(match self.counted {
            Some((fewest, most)) => (fewest.min(count), most.max(count)),
            None => (count, count),
        });
        Ok(rss)
    }

    /// What was measured, for the outputs: `process tree of PID (N
    /// processes)`, with the range when the count changed.
    pub(crate) fn scope(&self) -> String {
        let pid = self.root.pid();
        match self.counted {
            Some((n, m)) if n == m => format!("process tree of {pid} ({n} processes)"),
            Some((n, m)) => format!("process tree of {pid} ({n} to {m} processes)"),
            None => format!("process tree of {pid}"),
        }
    }
}

/// The command name of `pid` (/proc/PID/stat), if readable.
pub(crate) fn comm(pid: u32) -> Option<String> {
    Some(process(pid)?.stat().ok()?.comm)
}

/// Inodes of the sockets listening on `port`, IPv4 and IPv6.
fn listening_inodes(port: u16) -> HashSet<u64> {
    let v4 = procfs::net::tcp().unwrap_or_default();
    let v6 = procfs::net::tcp6().unwrap_or_default();
    v4.into_iter()
        .chain(v6)
        .filter(|e| e.state == TcpState::Listen && e.local_address.port() == port)
        .map(|e| e.inode)
        .collect()
}

/// Whether one of `pid`'s open fds is a socket in `inodes`.
fn holds(pid: u32, inodes: &HashSet<u64>) -> bool {
    let Some(fds) = process(pid).and_then(|p| p.fd().ok()) else {
        return false;
    };
    fds.flatten()
        .any(|fd| matches!(fd.target, FDTarget::Socket(inode) if inodes.contains(&inode)))
}

fn process(pid: u32) -> Option<Process> {
    Process::new(i32::try_from(pid).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listener_in_this_process_is_its_own() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert_eq!(port_owner(std::process::id(), port), PortOwner::Itself);
        drop(listener);
        assert_eq!(port_owner(std::process::id(), port), PortOwner::Nothing);
    }

    #[test]
    fn a_child_is_in_the_tree_and_this_process_is_not_in_its() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let me = std::process::id();
        let tree_of_me = tree(me);
        assert_eq!(tree_of_me[0], me);
        assert!(tree_of_me.contains(&child.id()), "{tree_of_me:?}");
        assert_eq!(tree(child.id()), vec![child.id()]);
        assert_eq!(comm(child.id()).as_deref(), Some("sleep"));
        // Ours, ended by its pid.
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn a_tree_sums_the_rss_of_its_processes() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let mut tree = TreeMemory::open(std::process::id()).unwrap();
        let summed = tree.read().unwrap();
        let mine = ProcMemory::open(std::process::id())
            .unwrap()
            .read()
            .unwrap()
            .rss_bytes;
        let sleeps = ProcMemory::open(child.id())
            .unwrap()
            .read()
            .unwrap()
            .rss_bytes;
        child.kill().unwrap();
        child.wait().unwrap();
        // Other tests' children may be in the tree too; this one is.
        assert!(summed >= sleeps + mine / 2, "{summed} {mine} {sleeps}");
        assert!(tree
            .scope()
            .starts_with(&format!("process tree of {} (", std::process::id())));
        assert!(tree.scope().ends_with(" processes)"), "{}", tree.scope());
    }

    #[test]
    fn a_listener_of_another_process_names_it() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let owner = port_owner(child.id(), port);
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(
            owner,
            PortOwner::Other {
                pid: std::process::id(),
                comm: comm(std::process::id()),
            }
        );
    }
}
