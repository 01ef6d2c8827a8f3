//! A heap profile as live bytes per symbolized stack: what a diff compares.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::pprof::Profile;
use super::HeapError;

/// One symbolized frame. An address the profile could not name becomes
/// function `0x<address>` with no file and line 0.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Frame {
    pub function: String,
    pub file: String,
    pub line: i64,
}

impl Frame {
    /// `function (dir/file.rs:line)`: the file's last two components, or
    /// just the function when no file is known.
    pub fn short_label(&self) -> String {
        let mut parts = self.file.rsplit('/');
        let file = match (parts.next(), parts.next()) {
            (Some(name), Some(dir)) if !dir.is_empty() => format!("{dir}/{name}"),
            (Some(name), _) => name.to_string(),
            (None, _) => String::new(),
        };
        match (file.is_empty(), self.line > 0) {
            (true, _) => self.function.clone(),
            (false, true) => format!("{} ({file}:{})", self.function, self.line),
            (false, false) => format!("{} ({file})", self.function),
        }
    }
}

/// Live bytes by stack (frames leaf first; inlined frames expanded).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HeapProfile {
    pub stacks: BTreeMap<Vec<Frame>, i64>,
}

impl HeapProfile {
    /// Decodes a `.pb.gz` (or plain `.pb`) heap profile.
    pub fn decode(body: &[u8]) -> Result<HeapProfile, HeapError> {
        HeapProfile::from_pprof(&Profile::decode_bytes(body)?)
    }

    /// Reads a profile file; errors name the file.
    pub fn read(path: &Path) -> Result<HeapProfile, HeapError> {
        let body = super::read_profile_file(path)?;
        HeapProfile::decode(&body).map_err(|e| e.at(path))
    }

    /// Sums samples by stack, in the byte-valued column: `inuse_space` when
    /// present (Go and jemalloc_pprof), else the first column in bytes.
    pub fn from_pprof(p: &Profile) -> Result<HeapProfile, HeapError> {
        let column = p
            .sample_type
            .iter()
            .position(|t| p.string(t.r#type) == "inuse_space")
            .or_else(|| {
                p.sample_type
                    .iter()
                    .position(|t| p.string(t.unit) == "bytes")
            })
            .ok_or_else(|| {
                HeapError::Format(format!(
                    "no sample type in bytes (types: {})",
                    p.sample_type
                        .iter()
                        .map(|t| format!("{}/{}", p.string(t.r#type), p.string(t.unit)))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
        let functions: HashMap<u64, _> = p.function.iter().map(|f| (f.id, f)).collect();
        let locations: HashMap<u64, _> = p.location.iter().map(|l| (l.id, l)).collect();
        let mut stacks = BTreeMap::new();
        for sample in &p.sample {
            let bytes = sample.value.get(column).copied().unwrap_or(0);
            let mut stack = Vec::new();
            for id in &sample.location_id {
                let loc = locations.get(id).ok_or_else(|| {
                    HeapError::Format(format!(
                        "a sample names location {id}, which is not in the profile"
                    ))
                })?;
                let named: Vec<Frame> = loc
                    .line
                    .iter()
                    .filter_map(|l| functions.get(&l.function_id).map(|f| (f, l.line)))
                    .map(|(f, line)| Frame {
                        function: p.string(f.name).to_string(),
                        file: p.string(f.filename).to_string(),
                        line,
                    })
                    .collect();
                if named.is_empty() {
                    stack.push(Frame {
                        function: format!("0x{:x}", loc.address),
                        file: String::new(),
                        line: 0,
                    });
                }
                stack.extend(named);
            }
            *stacks.entry(stack).or_insert(0) += bytes;
        }
        Ok(HeapProfile { stacks })
    }

    /// Live bytes over all stacks.
    pub fn total_bytes(&self) -> i64 {
        self.stacks.values().sum()
    }
}
