//! PEM parse errors in words, for every clw crate that reads certificates
//! or keys (clw-auth's `[tls]` files, clw-cli's `--cacert`, `--cert` and
//! `--key`): rustls-pki-types' own text prints byte arrays. Behind the `pem`
//! feature, so crates that read no PEM do not build rustls-pki-types.

use rustls_pki_types::pem::Error;

/// A PEM parse error in words (the crate's own text prints byte arrays).
pub fn pem_reason(e: &Error) -> String {
    match e {
        Error::MissingSectionEnd { end_marker } => format!(
            "a PEM section never ends (no `-----END {}-----` line)",
            String::from_utf8_lossy(end_marker)
        ),
        Error::IllegalSectionStart { line } => {
            format!("bad PEM line `{}`", String::from_utf8_lossy(line))
        }
        Error::Base64Decode(why) => format!("bad base64 in a PEM section: {why}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_said_in_words_not_bytes() {
        let end = Error::MissingSectionEnd {
            end_marker: b"CERTIFICATE".to_vec(),
        };
        assert_eq!(
            pem_reason(&end),
            "a PEM section never ends (no `-----END CERTIFICATE-----` line)"
        );
        let start = Error::IllegalSectionStart {
            line: b"-----BEGIN X".to_vec(),
        };
        assert_eq!(pem_reason(&start), "bad PEM line `-----BEGIN X`");
        let base64 = Error::Base64Decode("invalid symbol".into());
        assert_eq!(
            pem_reason(&base64),
            "bad base64 in a PEM section: invalid symbol"
        );
    }
}
