//! HTTPS for the listener: `authentication.service.tls.{cert,key}` read
//! into a rustls server configuration (ring as the crypto provider,
//! TLS 1.3 and 1.2, ALPN `http/1.1`), and the handshake each accepted
//! connection goes through before hyper sees it.
//!
//! The files are read and paired by [`acceptor`] at start-up and by
//! `--check-config` (the same call), so a missing, unreadable or
//! mismatched certificate or key is a configuration error naming the key
//! and the file, not a failure at the first client's handshake.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use clw_units::pem::pem_reason;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::config::{Invalid, TlsConfig};

const CERT_KEY: &str = "authentication.service.tls.cert";
const KEY_KEY: &str = "authentication.service.tls.key";
const CLIENT_CA_KEY: &str = "authentication.service.tls.client_ca";

fn invalid(key: &str, reason: impl Into<String>) -> Invalid {
    Invalid {
        key: key.to_string(),
        reason: reason.into(),
    }
}

/// The acceptor for `cfg`, or `None` when TLS is off (neither file set).
/// Both files must be set, readable PEM, and the key must be the one the
/// leaf certificate was issued for.
pub(crate) fn acceptor(cfg: &TlsConfig) -> Result<Option<TlsAcceptor>, Invalid> {
    let (cert_path, key_path) = match (&cfg.cert, &cfg.key) {
        (None, None) if cfg.client_ca.is_some() => {
            return Err(invalid(
                CLIENT_CA_KEY,
                "client certificates need TLS: set tls.cert and tls.key as well",
            ))
        }
        (None, None) => return Ok(None),
        (Some(c), Some(k)) => (c, k),
        (Some(_), None) => {
            return Err(invalid(
                KEY_KEY,
                "a certificate is set (tls.cert) but no private key: set both, or neither for plain HTTP",
            ))
        }
        (None, Some(_)) => {
            return Err(invalid(
                CERT_KEY,
                "a private key is set (tls.key) but no certificate: set both, or neither for plain HTTP",
            ))
        }
    };
    let chain = read_pem_certs(cert_path, CERT_KEY)?;
    let key = read_key(key_path)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(CERT_KEY, format!("TLS set-up failed: {e}")))?;
    let builder = match &cfg.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => builder.with_client_cert_verifier(client_verifier(path, provider)?),
    };
    let mut config = builder
        // Checks that the key's public half is the leaf certificate's.
        .with_single_cert(chain, key)
        .map_err(|e| {
            invalid(
                KEY_KEY,
                format!(
                    "{} does not go with the certificate {}: {e}",
                    key_path.display(),
                    cert_path.display()
                ),
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(TlsAcceptor::from(Arc::new(config))))
}

/// Requires a client certificate signed by one of `path`'s CAs.
fn client_verifier(
    path: &Path,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, Invalid> {
    let bad = |why: String| invalid(CLIENT_CA_KEY, format!("{}: {why}", path.display()));
    let mut roots = rustls::RootCertStore::empty();
    for ca in read_pem_certs(path, CLIENT_CA_KEY)? {
        roots
            .add(ca)
            .map_err(|e| bad(format!("not a usable CA certificate: {e}")))?;
    }
    rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| bad(format!("cannot verify clients with it: {e}")))
}

/// The certificates of the PEM file `path`, named by config `key` in errors.
fn read_pem_certs(path: &Path, key: &str) -> Result<Vec<CertificateDer<'static>>, Invalid> {
    let bad = |why: String| invalid(key, format!("{}: {why}", path.display()));
    // Opened first so "cannot read" is told apart from "not PEM".
    std::fs::File::open(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| bad(format!("not a PEM certificate chain: {}", pem_reason(&e))))?;
    if chain.is_empty() {
        return Err(bad("no `BEGIN CERTIFICATE` block in it".into()));
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, Invalid> {
    let bad = |why: String| invalid(KEY_KEY, format!("{}: {why}", path.display()));
    std::fs::File::open(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
    PrivateKeyDer::from_pem_file(path).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => {
            bad("no PEM private key (PKCS#8, PKCS#1 or SEC1) in it".into())
        }
        e => bad(format!("not a PEM private key: {}", pem_reason(&e))),
    })
}

/// How a handshake ended (the `outcome` label of
/// `clw_tls_handshakes_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handshake {
    Ok,
    /// Not TLS (plain HTTP to the TLS port), a bad record, or the client
    /// gave up (for instance it does not trust the certificate).
    Failed,
    /// Not complete within `service.header_read_timeout`.
    Timeout,
}

impl Handshake {
    pub(crate) const ALL: [Handshake; 3] = [Handshake::Ok, Handshake::Failed, Handshake::Timeout];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Handshake::Ok => "ok",
            Handshake::Failed => "failed",
            Handshake::Timeout => "timeout",
        }
    }
}

/// Runs the server side of the handshake within `timeout`, so a client
/// that connects and never finishes it (or trickles it) cannot hold a
/// connection slot longer than a client that never sends its request head.
pub(crate) async fn handshake(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
    timeout: Duration,
) -> Result<TlsStream<TcpStream>, Handshake> {
    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => Ok(tls),
        Ok(Err(e)) => {
            tracing::debug!("TLS handshake failed: {e}");
            Err(Handshake::Failed)
        }
        Err(_) => Err(Handshake::Timeout),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn cfg(cert: Option<PathBuf>, key: Option<PathBuf>) -> TlsConfig {
        TlsConfig {
            cert,
            key,
            client_ca: None,
        }
    }

    #[test]
    fn off_without_files_and_on_with_a_matching_pair() {
        assert!(acceptor(&TlsConfig::default()).unwrap().is_none());
        let dir = tempfile::tempdir().unwrap();
        let c = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert = write(dir.path(), "cert.pem", &c.cert.pem());
        let key = write(dir.path(), "key.pem", &c.key_pair.serialize_pem());
        assert!(acceptor(&cfg(Some(cert), Some(key))).unwrap().is_some());
    }

    #[test]
    fn each_bad_pair_names_its_key_file_and_reason() {
        let dir = tempfile::tempdir().unwrap();
        let a = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let b = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert = write(dir.path(), "cert.pem", &a.cert.pem());
        let key = write(dir.path(), "key.pem", &a.key_pair.serialize_pem());
        let other_key = write(dir.path(), "other.pem", &b.key_pair.serialize_pem());
        let junk = write(dir.path(), "junk.pem", "hello\n");
        let missing = dir.path().join("missing.pem");
        let cases = [
            (cfg(Some(cert.clone()), None), KEY_KEY, "no private key"),
            (cfg(None, Some(key.clone())), CERT_KEY, "no certificate"),
            (
                cfg(Some(missing.clone()), Some(key.clone())),
                CERT_KEY,
                "missing.pem: cannot read it",
            ),
            (
                cfg(Some(cert.clone()), Some(missing)),
                KEY_KEY,
                "missing.pem: cannot read it",
            ),
            (
                cfg(Some(junk.clone()), Some(key.clone())),
                CERT_KEY,
                "junk.pem: no `BEGIN CERTIFICATE`",
            ),
            (
                cfg(Some(cert.clone()), Some(junk)),
                KEY_KEY,
                "junk.pem: no PEM private key",
            ),
            (
                cfg(Some(key.clone()), Some(key.clone())),
                CERT_KEY,
                "no `BEGIN CERTIFICATE`",
            ),
            (
                cfg(Some(cert), Some(other_key)),
                KEY_KEY,
                "other.pem does not go with the certificate",
            ),
        ];
        for (c, key, why) in cases {
            let err = acceptor(&c).err().expect("refused");
            assert_eq!(err.key, key, "{c:?}: {err}");
            assert!(err.reason.contains(why), "{c:?}: {err}");
        }
    }

    #[test]
    fn client_certificates_need_tls_and_a_usable_ca() {
        let dir = tempfile::tempdir().unwrap();
        let c = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert = write(dir.path(), "cert.pem", &c.cert.pem());
        let key = write(dir.path(), "key.pem", &c.key_pair.serialize_pem());
        let junk = write(dir.path(), "junk.pem", "hello\n");
        let with_ca = |ca: PathBuf, tls: bool| TlsConfig {
            client_ca: Some(ca),
            ..if tls {
                cfg(Some(cert.clone()), Some(key.clone()))
            } else {
                cfg(None, None)
            }
        };
        let mutual = acceptor(&with_ca(cert.clone(), true)).unwrap();
        assert!(
            mutual.is_some(),
            "a CA file: clients must present a certificate"
        );
        for (c, why) in [
            (with_ca(cert.clone(), false), "need TLS"),
            (with_ca(junk, true), "junk.pem: no `BEGIN CERTIFICATE`"),
            (
                with_ca(dir.path().join("none.pem"), true),
                "none.pem: cannot read it",
            ),
        ] {
            let err = acceptor(&c).err().expect("refused");
            assert_eq!(err.key, CLIENT_CA_KEY, "{c:?}: {err}");
            assert!(err.reason.contains(why), "{c:?}: {err}");
        }
    }
}
