//! Memory sizes as users write them for `--memory-limit` (`256M`, `1g`, `512MiB`).

/// A size that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad memory size `{input}`: {reason} (expected e.g. 256M, 1G, 512MiB or a byte count)")]
pub struct SizeError {
    pub input: String,
    pub reason: String,
}

/// Parse a memory size. Suffixes are binary like Docker's `mem_limit` and
/// Kubernetes' `Mi`: `K`/`KB`/`KiB` = 1024, `M` = 1024², `G` = 1024³,
/// case-insensitive; no suffix or `B` means bytes. Fractions are allowed
/// (`1.5G`).
pub fn parse_size(input: &str) -> Result<u64, SizeError> {
    let err = |reason: &str| SizeError {
        input: input.to_string(),
        reason: reason.to_string(),
    };
    let text = input.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    if number.is_empty() {
        return Err(err("no number"));
    }
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" | "ki" => 1 << 10,
        "m" | "mb" | "mib" | "mi" => 1 << 20,
        "g" | "gb" | "gib" | "gi" => 1 << 30,
        "t" | "tb" | "tib" | "ti" => 1 << 40,
        _ => return Err(err(&format!("unknown unit `{}`", unit.trim()))),
    };
    let bytes = if number.contains('.') {
        let value: f64 = number.parse().map_err(|_| err("not a number"))?;
        let bytes = value * multiplier as f64;
        if !bytes.is_finite() || bytes >= u64::MAX as f64 {
            return Err(err("too large"));
        }
        bytes.round() as u64
    } else {
        let value: u64 = number.parse().map_err(|_| err("not a number"))?;
        value
            .checked_mul(multiplier)
            .ok_or_else(|| err("too large"))?
    };
    if bytes == 0 {
        return Err(err("must be above 0"));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn parses_docker_and_kubernetes_styles() {
        assert_eq!(parse_size("256M").unwrap(), 256 << 20);
        assert_eq!(parse_size("256m").unwrap(), 256 << 20);
        assert_eq!(parse_size("256MiB").unwrap(), 256 << 20);
        assert_eq!(parse_size("2Gi").unwrap(), 2 << 30);
        assert_eq!(parse_size("1.5G").unwrap(), 3 << 29);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size(" 64k ").unwrap(), 64 << 10);
    }

    #[test]
    fn rejects_garbage_with_reason() {
        let err = parse_size("12 parsecs").unwrap_err();
        assert!(err.to_string().contains("unknown unit `parsecs`"), "{err}");
        assert!(parse_size("M").unwrap_err().reason.contains("no number"));
        assert!(parse_size("0").is_err());
        assert!(parse_size("99999999999T").is_err());
    }
}
