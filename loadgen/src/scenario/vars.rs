//! Captured variables: the per-virtual-user store, and extraction of a
//! captured value from a JSON response body.
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

/// "Put the response's field at `pointer` into variable `slot`".
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Capture {
    /// Where the value goes.
    pub(crate) slot: Slot,
    /// The variable's name, for error messages.
    pub(crate) name: String,
    /// RFC 6901 JSON pointer into the response body. A scenario's bare
    /// field name `token` is normalised to `/token`.
    pub(crate) pointer: String,
}

/// Why a capture failed; the engine counts it as a failed request.
#[derive(Debug, thiserror::Error, PartialEq)]
pub(crate) enum CaptureError {
    #[error("response body is not JSON ({0}); cannot capture `{1}`")]
    NotJson(String, String),
    #[error("response has no `{pointer}` to capture into `{name}`")]
    Missing { name: String, pointer: String },
}

/// Parse `body` once and store every capture's value into `vars`.
///
/// Strings are stored without quotes; numbers and booleans as their JSON
/// text; objects, arrays and null as their JSON text too (rarely useful, but
/// never silently empty). Call only when the step has captures: it parses
/// the whole body.
pub(crate) fn capture_into(
    captures: &[Capture],
    body: &[u8],
    vars: &mut VarStore,
) -> Result<(), CaptureError> {
    if captures.is_empty() {
        return Ok(());
    }
    let doc: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| CaptureError::NotJson(e.to_string(), captures[0].name.clone()))?;
    for c in captures {
        match doc.pointer(&c.pointer) {
            Some(serde_json::Value::String(s)) => vars.set(c.slot, s.as_bytes()),
            Some(other) => vars.set(c.slot, other.to_string().as_bytes()),
            None => {
                return Err(CaptureError::Missing {
                    name: c.name.clone(),
                    pointer: c.pointer.clone(),
                })
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cap(slot: u16, name: &str, pointer: &str) -> Capture {
        Capture {
            slot: Slot(slot),
            name: name.into(),
            pointer: pointer.into(),
        }
    }

    #[test]
    fn captures_top_level_and_nested_fields() {
        let mut vars = VarStore::new(2);
        let body = br#"{"token":"abc","data":{"n":5}}"#;
        capture_into(
            &[cap(0, "token", "/token"), cap(1, "n", "/data/n")],
            body,
            &mut vars,
        )
        .unwrap();
        assert_eq!(vars.get(Slot(0)), Some(&b"abc"[..]));
        assert_eq!(vars.get(Slot(1)), Some(&b"5"[..]));
    }

    #[test]
    fn missing_field_and_non_json_are_errors() {
        let mut vars = VarStore::new(1);
        let e = capture_into(&[cap(0, "token", "/token")], br#"{"code":"x"}"#, &mut vars);
        assert_eq!(
            e,
            Err(CaptureError::Missing {
                name: "token".into(),
                pointer: "/token".into()
            })
        );
        assert!(matches!(
            capture_into(&[cap(0, "token", "/token")], b"<html>", &mut vars),
            Err(CaptureError::NotJson(..))
        ));
        assert_eq!(vars.get(Slot(0)), None);
    }

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
