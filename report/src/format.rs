//! Human units for pages and legends; `None` (unknown) shows as a dash.

use crate::chart::MIB;

/// "256 MiB", "1.5 GiB": for legends and labels.
pub(crate) fn format_bytes(bytes: f64) -> String {
    let mib = bytes * MIB;
    if mib >= 1024.0 {
        format!("{:.2} GiB", mib / 1024.0)
    } else if mib >= 10.0 {
        format!("{mib:.0} MiB")
    } else {
        format!("{mib:.1} MiB")
    }
}

/// "41.2 s", "3 min 20 s", "2 h 05 min".
pub(crate) fn format_duration(s: f64) -> String {
    if s < 60.0 {
        format!("{s:.1} s")
    } else if s < 3600.0 {
        let r = s.round() as u64;
        format!("{} min {:02} s", r / 60, r % 60)
    } else {
        let m = (s / 60.0).round() as u64;
        format!("{} h {:02} min", m / 60, m % 60)
    }
}

/// "12.3 ms"; unknown is a dash.
pub(crate) fn ms(v: Option<f64>) -> String {
    match v {
        Some(v) if v >= 100.0 => format!("{v:.0} ms"),
        Some(v) => format!("{v:.1} ms"),
        None => DASH.into(),
    }
}

/// "12,345" for counts; unknown is a dash.
pub(crate) fn count(v: Option<f64>) -> String {
    let Some(v) = v else { return DASH.into() };
    let digits = format!("{:.0}", v.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0.0 {
        out.insert(0, '-');
    }
    out
}

/// "45%" / "45.3%"; unknown is a dash.
pub(crate) fn percent(v: Option<f64>) -> String {
    match v {
        Some(v) if v >= 10.0 => format!("{v:.0}%"),
        Some(v) => format!("{v:.1}%"),
        None => DASH.into(),
    }
}

pub(crate) fn bytes(v: Option<f64>) -> String {
    v.map(format_bytes).unwrap_or_else(|| DASH.into())
}

pub(crate) fn duration(v: Option<f64>) -> String {
    v.map(format_duration).unwrap_or_else(|| DASH.into())
}

pub(crate) const DASH: &str = "\u{2014}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_units() {
        assert_eq!(format_bytes(256.0 * 1024.0 * 1024.0), "256 MiB");
        assert_eq!(format_bytes(1.5 * 1024.0 * 1024.0), "1.5 MiB");
        assert_eq!(format_bytes(3.0 * 1024.0 * 1024.0 * 1024.0), "3.00 GiB");
        assert_eq!(format_duration(41.24), "41.2 s");
        assert_eq!(format_duration(200.0), "3 min 20 s");
        assert_eq!(format_duration(7500.0), "2 h 05 min");
    }

    #[test]
    fn counts_and_unknowns() {
        assert_eq!(count(Some(1234567.0)), "1,234,567");
        assert_eq!(count(Some(12.0)), "12");
        assert_eq!(count(None), DASH);
        assert_eq!(ms(Some(3.0625)), "3.1 ms");
        assert_eq!(percent(Some(95.4)), "95%");
    }
}
