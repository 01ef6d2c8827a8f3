//! Label values from fixed sets only, as clw-auth's own /metrics does: a
//! label grown from what a server answers would let a misbehaving target
//! grow clw-cli's memory and every scrape with it.

use crate::load::stats::ErrorKind;

/// The `code` label: a registered HTTP status (one with a canonical reason
/// phrase, a few dozen), `none` for a request that got no response, else
/// `other`.
pub(crate) fn code_label(status: u16) -> &'static str {
    if status == 0 {
        return "none";
    }
    word(STATUS_WORDS, status)
}

/// The `kind` label of an error: its name (a transport error, capture-failed,
/// one of clw-auth's codes), `http-<status>` for a registered status, else
/// `other`.
pub(crate) fn kind_label(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Named(name) => name,
        ErrorKind::Http(status) => word(HTTP_WORDS, status),
        ErrorKind::Other => "other",
    }
}

fn word(table: &[(u16, &'static str)], status: u16) -> &'static str {
    table
        .binary_search_by_key(&status, |(n, _)| *n)
        .map_or("other", |i| table[i].1)
}

/// Registered statuses as label values: `http::StatusCode`'s set (a test
/// checks), sorted.
macro_rules! statuses {
    ($($n:literal),* $(,)?) => {
        const STATUS_WORDS: &[(u16, &str)] = &[$(($n, stringify!($n))),*];
        const HTTP_WORDS: &[(u16, &str)] = &[$(($n, concat!("http-", stringify!($n)))),*];
    };
}

statuses!(
    100, 101, 102, 103, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304,
    305, 307, 308, 400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415,
    416, 417, 418, 421, 422, 423, 424, 425, 426, 428, 429, 431, 451, 500, 501, 502, 503, 504, 505,
    506, 507, 508, 510, 511,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_folds_into_a_fixed_set() {
        let registered: Vec<u16> = (100..=999)
            .filter(|n| {
                http::StatusCode::from_u16(*n)
                    .unwrap()
                    .canonical_reason()
                    .is_some()
            })
            .collect();
        // The table holds exactly the statuses `http` registers.
        let table: Vec<u16> = STATUS_WORDS.iter().map(|(n, _)| *n).collect();
        assert_eq!(table, registered);
        assert_eq!(code_label(200), "200");
        assert_eq!(code_label(429), "429");
        assert_eq!(code_label(299), "other");
        assert_eq!(code_label(999), "other");
        assert_eq!(code_label(0), "none");
        assert_eq!(code_label(65535), "other");
    }

    #[test]
    fn error_kinds_fold_into_a_fixed_set() {
        assert_eq!(kind_label(ErrorKind::Named("reset")), "reset");
        assert_eq!(kind_label(ErrorKind::Http(502)), "http-502");
        assert_eq!(kind_label(ErrorKind::Http(599)), "other");
        assert_eq!(kind_label(ErrorKind::Http(0)), "other");
        assert_eq!(kind_label(ErrorKind::Other), "other");
    }
}
