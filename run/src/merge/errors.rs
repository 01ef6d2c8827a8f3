//! errors.csv of a merged run: every shard's failures of each interval and
//! kind added up. Intervals are matched by their index (second since each
//! shard's load start, as latency.hlog's are); a merged row carries the
//! latest end any shard gave that interval (the last one is partial).

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::RunFileError;
use crate::errors::{read_errors, ErrorsRow, ErrorsWriter};

/// The 1 s interval (0-based) that ends at `t_ms`.
fn index(t_ms: u64) -> u64 {
    t_ms.saturating_sub(1) / 1000
}

/// Per kind: (errors, after_death).
type KindSums = BTreeMap<String, (u64, u64)>;

/// The shards' rows summed per interval and kind, `all` first in each
/// interval, as one shard's errors.csv orders them.
pub fn merge_errors(shards: &[Vec<ErrorsRow>]) -> Vec<ErrorsRow> {
    // interval -> (its latest end, the kinds' sums)
    let mut sums: BTreeMap<u64, (u64, KindSums)> = BTreeMap::new();
    for r in shards.iter().flatten() {
        let (end, kinds) = sums.entry(index(r.t_ms)).or_default();
        *end = (*end).max(r.t_ms);
        let k = kinds.entry(r.kind.clone()).or_default();
        k.0 += r.errors;
        k.1 += r.after_death;
    }
    let mut out = Vec::new();
    for (end, mut kinds) in sums.into_values() {
        let all = kinds.remove("all").unwrap_or_default();
        let rows = std::iter::once(("all".to_string(), all)).chain(kinds);
        out.extend(rows.map(|(kind, (errors, after_death))| ErrorsRow {
            t_ms: end,
            kind,
            errors,
            after_death,
        }));
    }
    out
}

/// Write `out/errors.csv` from the shards' folders; nothing when a shard
/// has none (an older clw-cli's), since a part of the failures summed would
/// disagree with summary.json.
pub(super) fn write_merged_errors(dirs: &[&Path], out: &Path) -> Result<(), RunFileError> {
    let mut shards = Vec::new();
    for dir in dirs {
        let path = dir.join(crate::files::ERRORS);
        if !path.is_file() {
            return Ok(());
        }
        shards.push(read_errors(&path)?.0);
    }
    let mut w = ErrorsWriter::create(&out.join(crate::files::ERRORS))?;
    for row in merge_errors(&shards) {
        w.write(&row)?;
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(t_ms: u64, kind: &str, errors: u64, after_death: u64) -> ErrorsRow {
        ErrorsRow {
            t_ms,
            kind: kind.into(),
            errors,
            after_death,
        }
    }

    #[test]
    fn shards_add_up_per_interval_and_kind() {
        let a = vec![
            row(1000, "all", 1, 0),
            row(1000, "reset", 1, 0),
            row(2300, "all", 0, 40),
            row(2300, "connect", 0, 40),
        ];
        let b = vec![
            row(1000, "all", 2, 0),
            row(1000, "reset", 2, 0),
            row(2000, "all", 0, 0),
            row(2450, "all", 0, 10),
            row(2450, "connect", 0, 10),
        ];
        assert_eq!(
            merge_errors(&[a, b]),
            vec![
                row(1000, "all", 3, 0),
                row(1000, "reset", 3, 0),
                row(2000, "all", 0, 0),
                row(2450, "all", 0, 50),
                row(2450, "connect", 0, 50),
            ]
        );
    }
}
