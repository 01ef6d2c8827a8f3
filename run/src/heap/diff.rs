//! The growth between two heap profiles: by stack, then by allocation site.

use std::collections::{BTreeMap, HashMap};

use super::profile::{Frame, HeapProfile};
use super::{site, GrowthSite};

/// Bytes gained (or lost, negative) per stack from `first` to `last`,
/// leaving out the profiler's own allocations.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HeapDiff {
    pub stacks: BTreeMap<Vec<Frame>, i64>,
}

impl HeapDiff {
    pub fn between(first: &HeapProfile, last: &HeapProfile) -> HeapDiff {
        let mut stacks: BTreeMap<Vec<Frame>, i64> = BTreeMap::new();
        for (stack, bytes) in &last.stacks {
            *stacks.entry(stack.clone()).or_insert(0) += bytes;
        }
        for (stack, bytes) in &first.stacks {
            *stacks.entry(stack.clone()).or_insert(0) -= bytes;
        }
        stacks.retain(|stack, delta| *delta != 0 && !site::is_profiler(stack));
        HeapDiff { stacks }
    }

    /// Net change over every stack (negative when the heap shrank).
    pub fn net_bytes(&self) -> i64 {
        self.stacks.values().sum()
    }

    /// Sites by net bytes grown, largest first, at most `limit`; only sites
    /// that grew. `share_percent` is the site's part of the growth of all
    /// growing sites, so the shares of every growing site add up to 100.
    pub fn growth_sites(&self, limit: usize) -> Vec<GrowthSite> {
        let mut by_site: HashMap<&Frame, i64> = HashMap::new();
        for (stack, delta) in &self.stacks {
            if let Some(frame) = site::site(stack) {
                *by_site.entry(frame).or_insert(0) += delta;
            }
        }
        let mut grown: Vec<(&Frame, i64)> = by_site.into_iter().filter(|(_, d)| *d > 0).collect();
        let total: i64 = grown.iter().map(|(_, d)| d).sum();
        grown.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        grown
            .into_iter()
            .take(limit)
            .map(|(frame, bytes)| GrowthSite {
                function: frame.function.clone(),
                file: (!frame.file.is_empty()).then(|| frame.file.clone()),
                line: (frame.line > 0).then_some(frame.line),
                bytes_grown: bytes as u64,
                share_percent: 100.0 * bytes as f64 / total as f64,
            })
            .collect()
    }

    /// The growth as folded stacks for a flame graph, one line per stack
    /// that grew: `outer;...;site bytes`. Frames below the site (allocator
    /// machinery) are cut, so the tips are the sites of the table, and so
    /// are the runtime frames above the program's outermost frame (thread
    /// start, the async runtime) when the program is on the stack. Labels
    /// are `function (file:line)` with the file's last two components; `;`
    /// inside a name (`[u8; 32]`) becomes `,`.
    pub fn folded(&self) -> Vec<String> {
        let mut merged: BTreeMap<String, i64> = BTreeMap::new();
        for (stack, delta) in self.stacks.iter().filter(|(_, d)| **d > 0) {
            let at = site::site(stack).map_or(0, |s| {
                stack.iter().position(|f| std::ptr::eq(f, s)).unwrap_or(0)
            });
            let outer = stack
                .iter()
                .rposition(site::is_program)
                .filter(|o| *o >= at)
                .unwrap_or(stack.len().saturating_sub(1));
            let line = stack[at..=outer.min(stack.len().saturating_sub(1)).max(at)]
                .iter()
                .rev()
                .map(|f| f.short_label().replace(';', ","))
                .collect::<Vec<_>>()
                .join(";");
            *merged.entry(line).or_insert(0) += delta;
        }
        merged
            .into_iter()
            .map(|(stack, bytes)| format!("{stack} {bytes}"))
            .collect()
    }
}
