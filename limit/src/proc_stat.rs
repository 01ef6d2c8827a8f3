//! The two fields of /proc/PID/stat that tell one process from another
//! that later got its PID: its state (field 3) and its start time (field
//! 22, clock ticks after boot). Parsed without allocating, so the forked
//! reaper (see `reaper`) can use it between fork and exit.

/// Field 3 and field 22 of a /proc/PID/stat line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// `R`, `S`, `Z` (a zombie: exited, not reaped), `X` (dead), ...
    pub state: u8,
    pub start_time: u64,
}

impl ProcStat {
    /// Exited: a zombie or dead.
    pub fn is_dead(&self) -> bool {
        matches!(self.state, b'Z' | b'X' | b'x')
    }
}

/// Parses a /proc/PID/stat line. Fields are counted after the last ')',
/// since the command name (field 2) may hold spaces and ')'.
pub fn parse_stat(stat: &[u8]) -> Option<ProcStat> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    let mut fields = stat[close + 1..]
        .split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty());
    // After ") " comes field 3; field 22 is the 20th from there.
    let state = *fields.next()?.first()?;
    let field = fields.nth(18)?;
    let mut start_time: u64 = 0;
    for &b in field {
        let digit = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        start_time = start_time.checked_mul(10)?.checked_add(u64::from(digit))?;
    }
    Some(ProcStat { state, start_time })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_22_even_with_spaces_and_parens_in_the_name() {
        let stat = b"4242 (a b) c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 12345 67 18446744073709551615\n";
        assert_eq!(
            parse_stat(stat),
            Some(ProcStat {
                state: b'S',
                start_time: 987_654
            })
        );
        let line = b"4242 (clw auth) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 9 0 123456 1000 50 18446744073709551615";
        assert_eq!(
            parse_stat(line).map(|s| (s.state, s.start_time)),
            Some((b'S', 123456))
        );
        assert_eq!(parse_stat(b"garbage"), None);
        assert_eq!(parse_stat(b"4242 (short) S 1"), None);
        assert_eq!(parse_stat(b"no paren at all"), None);
        let own = std::fs::read("/proc/self/stat").unwrap();
        let own = parse_stat(&own).unwrap();
        assert!(own.start_time > 0 && !own.is_dead());
    }
}
