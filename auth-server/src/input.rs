//! Strictness checks on request input that serde does not make.
//!
//! `serde_json` validates claims as JSON syntax only (they are kept as raw
//! text, spliced into /auth/validate answers unparsed), and JSON syntax
//! allows `\ud800`, a UTF-16 surrogate that encodes no character: echoed
//! back, it breaks strict clients and can smuggle text past filters. The
//! scan below is allocation-free and runs once per login with claims; a
//! full parse into `serde_json::Value` would reject the same input but
//! allocate every node of the claims on the login path.

/// The byte offset of the first `\uXXXX` escape in `json` that is a lone
/// surrogate (a high one not followed by a low one, or a low one alone).
/// `json` must be valid JSON, where a backslash only starts an escape.
pub(crate) fn lone_surrogate(json: &str) -> Option<usize> {
    let b = json.as_bytes();
    let hex4 = |at: usize| -> Option<u32> {
        let digits = std::str::from_utf8(b.get(at..at + 4)?).ok()?;
        u32::from_str_radix(digits, 16).ok()
    };
    let mut i = 0;
    while let Some(off) = b[i..].iter().position(|&c| c == b'\\') {
        let at = i + off;
        if b.get(at + 1) != Some(&b'u') {
            i = at + 2; // `\\`, `\"`, `\n`...: skip the escaped byte
            continue;
        }
        match hex4(at + 2) {
            Some(0xD800..=0xDBFF) => {
                let paired = b.get(at + 6..at + 8) == Some(b"\\u".as_slice())
                    && matches!(hex4(at + 8), Some(0xDC00..=0xDFFF));
                if !paired {
                    return Some(at);
                }
                i = at + 12;
            }
            Some(0xDC00..=0xDFFF) | None => return Some(at),
            Some(_) => i = at + 6,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::lone_surrogate;

    #[test]
    fn finds_lone_surrogates_only() {
        assert_eq!(lone_surrogate(r#"{"x":"\ud800"}"#), Some(6));
        assert_eq!(lone_surrogate(r#"{"x":"\udc00"}"#), Some(6));
        assert_eq!(lone_surrogate(r#"{"x":"\ud800\u0041"}"#), Some(6));
        assert_eq!(lone_surrogate(r#"{"x":"\ud83d\ude00\ud800"}"#), Some(18));
        assert_eq!(lone_surrogate(r#"{"x":"\ud83d\ude00"}"#), None);
        assert_eq!(lone_surrogate(r#"{"x":"\\ud800","y":"\n\u00e9"}"#), None);
        assert_eq!(lone_surrogate(r#"{"x":"\\\ud800"}"#), Some(8));
        assert_eq!(lone_surrogate("{}"), None);
    }
}
