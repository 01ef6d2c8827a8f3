//! The free-space floor: a run refuses to start where its outputs could not
//! be written. A load that runs for minutes and then cannot write its
//! summary.json measured for nothing; better to say so before the first
//! request, with the figure and the folder.

use std::path::Path;

use clw_units::format_size as format_bytes;

/// Why a run may not start where its outputs go (a setup failure, exit 3).
#[derive(Debug, thiserror::Error)]
pub(crate) enum DiskError {
    #[error("cannot tell the free space of {}: {source}", dir.display())]
    Unknown {
        dir: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "only {} free on the filesystem of {} (at least {} needed for the run's outputs; \
         free some space, choose another --out, or lower --min-free-space)",
        format_bytes(*free),
        dir.display(),
        format_bytes(*floor)
    )]
    TooLittle {
        dir: std::path::PathBuf,
        free: u64,
        floor: u64,
    },
}

/// Refuses when the filesystem that will hold `out` has less than `floor`
/// bytes available to this user. `out` need not exist yet: its nearest
/// existing ancestor is asked. The floor is `--min-free-space` (64 MiB by
/// default: room for a long run's CSVs, histograms, heap profiles and
/// report, with a margin).
pub(crate) fn check_floor(out: &Path, floor: u64) -> Result<(), DiskError> {
    if floor == 0 {
        return Ok(());
    }
    let existing = out
        .ancestors()
        .find(|a| !a.as_os_str().is_empty() && a.exists())
        .unwrap_or(Path::new("."));
    let free = free_bytes(existing).map_err(|source| DiskError::Unknown {
        dir: existing.to_path_buf(),
        source,
    })?;
    if free < floor {
        return Err(DiskError::TooLittle {
            dir: existing.to_path_buf(),
            free,
            floor,
        });
    }
    Ok(())
}

/// Bytes available to an unprivileged writer on `path`'s filesystem.
fn free_bytes(path: &Path) -> std::io::Result<u64> {
    let st = rustix::fs::statvfs(path)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_floor_above_the_free_space_is_refused_naming_both() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("not/yet/made");
        check_floor(&out, 1).expect("one byte is free");
        let err = check_floor(&out, u64::MAX).unwrap_err().to_string();
        assert!(err.starts_with("only "), "{err}");
        assert!(err.contains(&dir.path().display().to_string()), "{err}");
        assert!(err.contains("--min-free-space"), "{err}");
        check_floor(&out, 0).expect("0 turns the check off");
    }
}
