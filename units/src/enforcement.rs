//! How a memory limit is enforced: the words clw-limit reports and
//! summary.json records (`server.limit_enforcement`).
//!
//! The enum lives here, in the crate every clw crate shares, because two
//! crates that do not depend on each other need it: clw-limit, which picks
//! the method, and clw-run, whose summary.json records it. clw-run must not
//! pull in a process spawner (and tokio) to name a method, nor clw-limit the
//! run-folder model; each uses this one list of methods and their names.

/// How the memory limit is enforced; reported as `server.limit_enforcement`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Enforcement {
    /// A fresh cgroup v2 with `memory.max` and `memory.swap.max = 0`.
    CgroupV2,
    /// A fresh cgroup v1 memory cgroup with `memory.limit_in_bytes`.
    CgroupV1,
    /// A transient systemd scope with `MemoryMax` and `MemorySwapMax=0`.
    SystemdRun,
    /// No kernel limit: a thread polls RSS and sends SIGKILL at the limit.
    Watchdog,
}

impl Enforcement {
    /// The name used in summary.json and on the console.
    pub fn as_str(self) -> &'static str {
        match self {
            Enforcement::CgroupV2 => "cgroup-v2",
            Enforcement::CgroupV1 => "cgroup-v1",
            Enforcement::SystemdRun => "systemd-run",
            Enforcement::Watchdog => "watchdog",
        }
    }

    /// The method [`Enforcement::as_str`] names; `None` for any other word.
    pub fn parse(word: &str) -> Option<Enforcement> {
        Enforcement::ORDER.into_iter().find(|e| e.as_str() == word)
    }

    /// True when the kernel enforces the limit (its OOM killer does the kill).
    pub fn is_kernel(self) -> bool {
        !matches!(self, Enforcement::Watchdog)
    }

    /// Every method, strongest first: the order clw-limit's `spawn` tries
    /// when nothing is preferred.
    pub const ORDER: [Enforcement; 4] = [
        Enforcement::CgroupV2,
        Enforcement::CgroupV1,
        Enforcement::SystemdRun,
        Enforcement::Watchdog,
    ];
}

impl std::fmt::Display for Enforcement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_summary_json_words_and_read_back() {
        let names: Vec<&str> = Enforcement::ORDER.iter().map(|e| e.as_str()).collect();
        assert_eq!(names, ["cgroup-v2", "cgroup-v1", "systemd-run", "watchdog"]);
        for e in Enforcement::ORDER {
            assert_eq!(Enforcement::parse(e.as_str()), Some(e));
            assert_eq!(e.to_string(), e.as_str());
        }
        assert_eq!(Enforcement::parse("none"), None);
        assert_eq!(Enforcement::parse("Watchdog"), None, "the words are exact");
    }
}
