//! The memory of a container that runs elsewhere (Docker, Podman), read
//! from its cgroup the way `docker stats` shows it: usage less the inactive
//! file cache, which the kernel reclaims before it OOM-kills anyone.
//!
//! - cgroup v2: `memory.current` − `inactive_file` (memory.stat), limit
//!   `memory.max`;
//! - cgroup v1: `memory.usage_in_bytes` − `total_inactive_file`
//!   (memory.stat), limit `memory.limit_in_bytes`.
//!
//! [`find_container`] turns a container ID (or a unique prefix of one) into
//! its cgroup directory by searching the layouts the engines use; a name
//! needs the engine, asked through its `docker` or `podman` CLI.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cgroup::{keyed_value, Version as CgroupVersion};

/// The cgroup file system's usual mount point.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// v1's "no limit" is a page-rounded i64::MAX; anything this large is none.
const UNLIMITED: u64 = 1 << 62;

/// How long `docker inspect` / `podman inspect` may take.
const ENGINE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("{}: not a memory cgroup (neither memory.current, cgroup v2, nor memory.usage_in_bytes, cgroup v1, is there)", .0.display())]
    NotACgroup(PathBuf),
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("container `{id}` matches several cgroups: {}", list(.found))]
    Ambiguous { id: String, found: Vec<PathBuf> },
    #[error("no cgroup found for container `{name}` under {} (searched docker-ID.scope, libpod-ID.scope, docker/ID, ... as an ID){}", root.display(), engine_note(.engines))]
    NotFound {
        name: String,
        root: PathBuf,
        /// Why each engine CLI could not resolve it as a name.
        engines: Vec<String>,
    },
}

fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn engine_note(engines: &[String]) -> String {
    if engines.is_empty() {
        String::new()
    } else {
        format!("; as a name: {}", engines.join("; "))
    }
}

/// One reading of a cgroup's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CgroupReading {
    /// Usage less the inactive file cache: `docker stats`' MEM USAGE.
    pub working_set: u64,
    /// The raw usage, file cache included.
    pub usage: u64,
    /// memory.stat's inactive file cache (v2 `inactive_file`, v1
    /// `total_inactive_file`); `None` when memory.stat could not be read,
    /// and `working_set` is then the raw usage.
    pub inactive_file: Option<u64>,
    /// The limit; `None` when unlimited.
    pub limit: Option<u64>,
}

/// An existing memory cgroup, read on demand.
#[derive(Debug, Clone)]
pub struct CgroupMemory {
    dir: PathBuf,
    version: CgroupVersion,
}

impl CgroupMemory {
    /// The cgroup at `dir`, its version told by the files it has.
    pub fn open(dir: &Path) -> Result<CgroupMemory, ContainerError> {
        let version = [CgroupVersion::V2, CgroupVersion::V1]
            .into_iter()
            .find(|v| dir.join(v.usage_file()).is_file())
            .ok_or_else(|| ContainerError::NotACgroup(dir.to_path_buf()))?;
        Ok(CgroupMemory {
            dir: dir.to_path_buf(),
            version,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn version(&self) -> CgroupVersion {
        self.version
    }

    pub fn read(&self) -> Result<CgroupReading, ContainerError> {
        let read = |name: &str| {
            let path = self.dir.join(name);
            fs::read_to_string(&path).map_err(|source| ContainerError::Read { path, source })
        };
        let usage_text = read(self.version.usage_file())?;
        let usage = usage_text
            .trim()
            .parse::<u64>()
            .map_err(|e| ContainerError::Read {
                path: self.dir.join(self.version.usage_file()),
                source: io::Error::new(io::ErrorKind::InvalidData, e),
            })?;
        // A cgroup without memory.stat (none seen in practice) counts its
        // file cache as used rather than failing the sample.
        let inactive_file = read("memory.stat")
            .ok()
            .and_then(|stat| keyed_value(&stat, self.version.inactive_file_key()));
        let inactive = inactive_file.unwrap_or(0);
        let limit = read(self.version.limit_file())
            .ok()
            .and_then(|text| text.trim().parse::<u64>().ok())
            .filter(|l| *l < UNLIMITED);
        Ok(CgroupReading {
            working_set: usage.saturating_sub(inactive),
            usage,
            inactive_file,
            limit,
        })
    }
}

/// The cgroup directory of a Docker or Podman container given by ID (or
/// unique ID prefix) or, through the engine's CLI, by name.
pub fn find_container(name_or_id: &str) -> Result<PathBuf, ContainerError> {
    let root = Path::new(CGROUP_ROOT);
    match find_container_in(root, name_or_id) {
        Err(ContainerError::NotFound { .. }) => {}
        found => return found,
    }
    let mut engines = Vec::new();
    for engine in ["docker", "podman"] {
        match engine_id(engine, name_or_id) {
            Ok(id) => match find_container_in(root, &id) {
                Err(ContainerError::NotFound { .. }) => engines.push(format!(
                    "{engine} says its ID is {id}, and no cgroup has that ID"
                )),
                found => return found,
            },
            Err(why) => engines.push(format!("{engine}: {why}")),
        }
    }
    Err(ContainerError::NotFound {
        name: name_or_id.to_string(),
        root: root.to_path_buf(),
        engines,
    })
}

/// [`find_container`]'s search for an ID under `root` (a cgroup mount:
/// v1's memory hierarchy is `root/memory`).
pub fn find_container_in(root: &Path, id: &str) -> Result<PathBuf, ContainerError> {
    let not_found = || ContainerError::NotFound {
        name: id.to_string(),
        root: root.to_path_buf(),
        engines: Vec::new(),
    };
    let id = id.trim().to_ascii_lowercase();
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(not_found());
    }
    let v1 = root.join("memory");
    let base = if v1.join("memory.usage_in_bytes").is_file() {
        v1
    } else {
        root.to_path_buf()
    };
    let mut found = Vec::new();
    walk(&base, 0, &id, &mut found);
    found.sort();
    match found.len() {
        0 => Err(not_found()),
        1 => Ok(found.remove(0)),
        _ => Err(ContainerError::Ambiguous { id, found }),
    }
}

/// Deep enough for rootless Podman's
/// user.slice/user-1000.slice/user@1000.service/user.slice/libpod-ID.scope.
const MAX_DEPTH: usize = 6;

fn walk(dir: &Path, depth: usize, id: &str, found: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if names_container(&name, id) {
            found.push(entry.path());
        } else if depth < MAX_DEPTH {
            walk(&entry.path(), depth + 1, id, found);
        }
    }
}

/// Does a cgroup directory name hold the container whose ID starts with
/// `id`? `docker-ID.scope` (systemd driver), `libpod-ID.scope` (Podman),
/// `cri-containerd-ID.scope`, `crio-ID.scope`, or the bare 64-hex ID
/// (cgroupfs driver: docker/ID, libpod_parent/libpod-ID).
fn names_container(name: &str, id: &str) -> bool {
    let bare = name.strip_suffix(".scope").unwrap_or(name);
    let full = ["docker-", "libpod-", "cri-containerd-", "crio-"]
        .iter()
        .find_map(|p| bare.strip_prefix(p))
        .unwrap_or(bare);
    full.len() == 64 && full.bytes().all(|b| b.is_ascii_hexdigit()) && full.starts_with(id)
}

/// The full ID the engine gives a container name, by `ENGINE inspect`.
fn engine_id(engine: &str, name: &str) -> Result<String, String> {
    let mut child = Command::new(engine)
        .args(["inspect", "--format", "{{.Id}}", name])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => "not installed".to_string(),
            _ => format!("cannot run it: {e}"),
        })?;
    let started = Instant::now();
    while child.try_wait().map_err(|e| e.to_string())?.is_none() {
        if started.elapsed() > ENGINE_TIMEOUT {
            // Ours: spawned just above, killed by its handle.
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("`{engine} inspect` took over {ENGINE_TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if out.status.success() && !stdout.is_empty() {
        return Ok(stdout);
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let why = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    Err(format!("`{engine} inspect {name}` failed: {}", why.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f1c2b9e8d7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c";

    fn write(dir: &Path, files: &[(&str, &str)]) {
        fs::create_dir_all(dir).unwrap();
        for (name, text) in files {
            fs::write(dir.join(name), text).unwrap();
        }
    }

    fn v2_files(current: &str, max: &str) -> Vec<(&'static str, String)> {
        vec![
            ("memory.current", current.to_string()),
            ("memory.max", max.to_string()),
            (
                "memory.stat",
                "anon 104857600\nfile 73400320\nactive_file 10485760\ninactive_file 62914560\n"
                    .to_string(),
            ),
        ]
    }

    #[test]
    fn v2_working_set_is_current_less_inactive_file_and_max_is_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let files = v2_files("178257920\n", "268435456\n");
        let refs: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
        write(dir.path(), &refs);
        let cg = CgroupMemory::open(dir.path()).unwrap();
        assert_eq!(cg.version(), CgroupVersion::V2);
        assert_eq!(
            cg.read().unwrap(),
            CgroupReading {
                working_set: 178257920 - 62914560,
                usage: 178257920,
                inactive_file: Some(62914560),
                limit: Some(268435456),
            }
        );
        fs::write(dir.path().join("memory.max"), "max\n").unwrap();
        assert_eq!(cg.read().unwrap().limit, None);
    }

    #[test]
    fn v1_uses_total_inactive_file_and_a_huge_limit_is_none() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            &[
                ("memory.usage_in_bytes", "50000000\n"),
                ("memory.limit_in_bytes", "9223372036854771712\n"),
                (
                    "memory.stat",
                    "cache 30000000\ninactive_file 1\ntotal_inactive_file 20000000\n",
                ),
            ],
        );
        let cg = CgroupMemory::open(dir.path()).unwrap();
        assert_eq!(cg.version(), CgroupVersion::V1);
        let r = cg.read().unwrap();
        assert_eq!(
            (r.working_set, r.usage, r.limit),
            (30000000, 50000000, None)
        );
    }

    #[test]
    fn a_directory_without_usage_is_not_a_cgroup() {
        let dir = tempfile::tempdir().unwrap();
        let err = CgroupMemory::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("not a memory cgroup"), "{err}");
    }

    #[test]
    fn ids_are_found_in_the_engines_layouts() {
        let layouts = [
            format!("system.slice/docker-{ID}.scope"),
            format!("machine.slice/libpod-{ID}.scope"),
            format!("user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope"),
            format!("docker/{ID}"),
            format!("memory/docker/{ID}"),
            format!("memory/machine.slice/libpod-{ID}.scope"),
        ];
        for layout in &layouts {
            let root = tempfile::tempdir().unwrap();
            if layout.starts_with("memory/") {
                write(
                    &root.path().join("memory"),
                    &[("memory.usage_in_bytes", "1")],
                );
            }
            write(&root.path().join(layout), &[("memory.current", "1")]);
            // Conmon's scope is not the container's.
            write(
                &root
                    .path()
                    .join(format!("machine.slice/libpod-conmon-{ID}.scope")),
                &[],
            );
            for id in [ID, &ID[..12], &ID[..12].to_uppercase()] {
                let found = find_container_in(root.path(), id)
                    .unwrap_or_else(|e| panic!("{layout} by {id}: {e}"));
                assert_eq!(found, root.path().join(layout), "{layout}");
            }
            let err = find_container_in(root.path(), "0000aaaa").unwrap_err();
            assert!(matches!(err, ContainerError::NotFound { .. }), "{err}");
            assert!(find_container_in(root.path(), "auth-server").is_err());
        }
    }

    #[test]
    fn a_prefix_of_two_ids_is_ambiguous() {
        let root = tempfile::tempdir().unwrap();
        let other = format!("{}0", &ID[..63]);
        write(&root.path().join(format!("docker/{ID}")), &[]);
        write(&root.path().join(format!("docker/{other}")), &[]);
        let err = find_container_in(root.path(), &ID[..12]).unwrap_err();
        assert!(
            matches!(err, ContainerError::Ambiguous { ref found, .. } if found.len() == 2),
            "{err}"
        );
    }

    #[test]
    fn a_name_without_an_engine_says_what_each_engine_said() {
        let err = find_container("no-such-container-clw")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no cgroup found for container `no-such-container-clw`")
                && err.contains("docker")
                && err.contains("podman"),
            "{err}"
        );
    }
}
