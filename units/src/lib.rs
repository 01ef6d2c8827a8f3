//! Sizes and durations as people write them in the field guide and in
//! container tooling: `1536M`, `2Gi`, `256MiB`, `30s`, `5m`, `3600`.
//!
//! One parser for every clw crate, so `memory.max_heap_size` in a server
//! config and `--memory-limit` on the command line mean the same thing.
//! Container tooling treats `M` as MiB (`mem_limit: 2048m`, Kubernetes
//! `2Gi`), so every unit here is a power of 1024: a value that meant 10^6
//! ends up 5% larger, the safe side for memory limits.
//!
//! Also the few other words more than one crate must spell alike:
//! [`Enforcement`], how a memory limit is enforced (clw-limit picks it,
//! clw-run's summary.json records it), and, with the `pem` feature,
//! [`pem::pem_reason`], the words for a PEM file that does not parse.

mod enforcement;
#[cfg(feature = "pem")]
pub mod pem;

use std::time::Duration;

pub use enforcement::Enforcement;

/// A size or duration that could not be read: the input and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` {reason}")]
pub struct UnitError {
    /// What was given.
    pub input: String,
    /// What is wrong, and what was expected.
    pub reason: String,
}

const SIZE_HINT: &str = "expected a size such as 512M, 2Gi, 256MiB or a byte count";

/// Parses a byte size: a number of bytes, or a number with a unit
/// `K|M|G|T` optionally followed by `i`, `B` or `iB` (case-insensitive).
/// Fractions are allowed (`1.5G`).
pub fn parse_size(input: &str) -> Result<u64, UnitError> {
    let err = |reason: String| UnitError {
        input: input.to_string(),
        reason,
    };
    let text = input.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    if number.is_empty() {
        return Err(err(format!("is not a size: {SIZE_HINT}")));
    }
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "ki" | "kib" => 10,
        "m" | "mb" | "mi" | "mib" => 20,
        "g" | "gb" | "gi" | "gib" => 30,
        "t" | "tb" | "ti" | "tib" => 40,
        other => {
            return Err(err(format!(
            "is not a size: unknown unit `{other}` (use K, M, G or T, optionally with i, B or iB)"
        )))
        }
    };
    if number.contains('.') {
        let value: f64 = number
            .parse()
            .map_err(|_| err(format!("is not a size: `{number}` is not a number")))?;
        let bytes = value * (1u64 << shift) as f64;
        if !bytes.is_finite() || bytes >= u64::MAX as f64 {
            return Err(err("is too large".into()));
        }
        Ok(bytes.round() as u64)
    } else {
        let value: u64 = number
            .parse()
            .map_err(|_| err(format!("is not a size: `{number}` is not a number")))?;
        value
            .checked_mul(1u64 << shift)
            .ok_or_else(|| err("is too large".into()))
    }
}

/// Parses a duration: seconds as a number (`3600`, `2.5`) or humantime
/// (`30s`, `5m`, `100ms`, `1h 30m`).
pub fn parse_duration(input: &str) -> Result<Duration, UnitError> {
    let text = input.trim();
    let err = |reason: String| UnitError {
        input: input.to_string(),
        reason,
    };
    if let Ok(secs) = text.parse::<f64>() {
        if secs < 0.0 || secs.is_nan() {
            return Err(err("must be a non-negative number of seconds".into()));
        }
        return Duration::try_from_secs_f64(secs).map_err(|_| err("is too long a duration".into()));
    }
    humantime::parse_duration(text).map_err(|e| {
        err(format!(
            "is not a duration ({e}): expected seconds such as 3600, or 30s, 5m, 100ms"
        ))
    })
}

/// Formats bytes for people, e.g. `1.5 GiB`.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_use_binary_units() {
        assert_eq!(parse_size("1536M").unwrap(), 1536 << 20);
        assert_eq!(parse_size("2Gi").unwrap(), 2 << 30);
        assert_eq!(parse_size("256MiB").unwrap(), 256 << 20);
        assert_eq!(parse_size("2048m").unwrap(), 2048 << 20);
        assert_eq!(parse_size("256 MB").unwrap(), 256 << 20);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("1.5G").unwrap(), 3 << 29);
        assert_eq!(parse_size("0").unwrap(), 0);
    }

    #[test]
    fn bad_sizes_say_why() {
        let e = parse_size("lots").unwrap_err();
        assert_eq!(e.input, "lots");
        assert!(
            e.to_string().contains("expected a size such as 512M"),
            "{e}"
        );
        assert!(parse_size("12Q")
            .unwrap_err()
            .to_string()
            .contains("unknown unit `q`"));
        assert!(parse_size("").is_err());
        assert!(parse_size("1.2.3M")
            .unwrap_err()
            .to_string()
            .contains("not a number"));
        assert!(parse_size("99999999999T")
            .unwrap_err()
            .to_string()
            .contains("too large"));
    }

    #[test]
    fn durations_accept_seconds_and_units() {
        assert_eq!(parse_duration("3600").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("2.5").unwrap(), Duration::from_millis(2500));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("100ms").unwrap(), Duration::from_millis(100));
        assert!(parse_duration("soon")
            .unwrap_err()
            .to_string()
            .contains("is not a duration"));
        assert!(parse_duration("-3")
            .unwrap_err()
            .to_string()
            .contains("non-negative"));
    }

    #[test]
    fn durations_too_long_for_duration_are_errors_not_panics() {
        for input in ["1e30", "inf", "18446744073709551616"] {
            let e = parse_duration(input).unwrap_err();
            assert!(e.to_string().contains("too long"), "{input}: {e}");
        }
        assert!(parse_duration("NaN").is_err());
    }

    #[test]
    fn sizes_format_readably() {
        assert_eq!(format_size(512), "512 B");
        assert_eq!(format_size(1536 << 20), "1.5 GiB");
    }
}
