//! Captured variables: the per-virtual-user store (captures themselves are
//! in `capture.rs`; `[users] file` columns live here too, set per
//! iteration).
//!
//! Variable names are resolved to slot numbers when the scenario is
//! compiled, so a request touches a `Vec` by index instead of hashing a
//! name per placeholder.

/// Index of a captured variable in a [`VarStore`]; the name behind it is
/// `Scenario::vars[slot.index()]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Slot(pub(crate) u16);

impl Slot {
    /// Position of this variable in `Scenario::vars` and in a `VarStore`.
    pub(crate) fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// One virtual user's captured values. Buffers are reused across
/// iterations, so capturing a new token does not allocate once warmed up.
#[derive(Debug, Clone, Default)]
pub(crate) struct VarStore {
    values: Vec<Vec<u8>>,
    set: Vec<bool>,
}

impl VarStore {
    /// A store with room for `count` variables (`Scenario::vars.len()`),
    /// all unset.
    pub(crate) fn new(count: usize) -> VarStore {
        VarStore {
            values: vec![Vec::new(); count],
            set: vec![false; count],
        }
    }

    /// The value of `slot`, or `None` if nothing was captured into it yet
    /// (or since the last [`VarStore::clear`]).
    pub(crate) fn get(&self, slot: Slot) -> Option<&[u8]> {
        let i = slot.index();
        if *self.set.get(i)? {
            Some(&self.values[i])
        } else {
            None
        }
    }

    /// Store `value` into `slot`, reusing the slot's buffer.
    pub(crate) fn set(&mut self, slot: Slot, value: &[u8]) {
        let i = slot.index();
        if i >= self.values.len() {
            self.values.resize_with(i + 1, Vec::new);
            self.set.resize(i + 1, false);
        }
        self.values[i].clear();
        self.values[i].extend_from_slice(value);
        self.set[i] = true;
    }

    #[cfg(test)]
    /// Forget every value (keeps the buffers).
    pub(crate) fn clear(&mut self) {
        self.set.iter_mut().for_each(|s| *s = false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_overwrites_and_clear_unsets() {
        let mut vars = VarStore::new(1);
        vars.set(Slot(0), b"first-long-value");
        vars.set(Slot(0), b"2nd");
        assert_eq!(vars.get(Slot(0)), Some(&b"2nd"[..]));
        vars.clear();
        assert_eq!(vars.get(Slot(0)), None);
    }
}
