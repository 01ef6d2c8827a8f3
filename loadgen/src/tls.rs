//! The client side of `https://` targets: one rustls configuration per run
//! (ring as the crypto provider, TLS 1.3 and 1.2, ALPN `http/1.1`), built
//! from `--cacert`, `--insecure` and the client certificate of `--cert` and
//! `--key` (for a service that requires mutual TLS), and shared by every connection clw-cli
//! opens to an https URL (the virtual users, the setup check, the metrics
//! scrape, heap profiles).
//!
//! Trust: the operating system's roots, read with `rustls-native-certs`
//! (the same files curl and OpenSSL read: a company CA installed in the
//! system, or in a container's ca-certificates, is trusted as curl would
//! trust it; a compiled-in Mozilla list such as `webpki-roots` would not
//! know it, and would go stale with the binary), plus the PEM certificates
//! of `--cacert`, which may also be the server's own self-signed
//! certificate, even one marked CA:TRUE as `openssl req -x509` makes it
//! ([`verifier`]). `--insecure` turns verification off, and every output
//! of the run says so ([`INSECURE_WARNING`]).

mod verifier;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use clw_units::pem::pem_reason;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Said on the console, in summary.json (`tls.warning`) and in the
/// report's banner when `--insecure` is on.
pub(crate) const INSECURE_WARNING: &str =
    "WARNING: TLS certificate verification is off (--insecure): the target's identity was not checked";

/// Why the TLS client could not be set up (a usage error: exit 2).
#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsError {
    #[error("--cacert {}: {reason}", path.display())]
    CaCert { path: PathBuf, reason: String },
    #[error("no trusted CA certificates: the system store has none ({reason}); pass --cacert FILE with the CA that signed the target's certificate, or --insecure")]
    NoRoots { reason: String },
    #[error("{flag} {}: {reason}", path.display())]
    ClientCert {
        flag: &'static str,
        path: PathBuf,
        reason: String,
    },
}

/// The client certificate chain and its key (`--cert`, `--key`), presented
/// to a server that asks for one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Identity<'a> {
    pub(crate) cert: &'a Path,
    pub(crate) key: &'a Path,
}

/// The TLS client settings of a run; cheap to clone.
#[derive(Clone)]
pub(crate) struct ClientTls {
    connector: TlsConnector,
    /// Verification off (`--insecure`).
    pub(crate) insecure: bool,
    /// The `--cacert` file, if any.
    pub(crate) cacert: Option<PathBuf>,
    /// The `--cert` file presented to the server, if any.
    pub(crate) client_cert: Option<PathBuf>,
    /// Handshakes completed through this configuration, by every clone.
    handshakes: Arc<AtomicU64>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("insecure", &self.insecure)
            .field("cacert", &self.cacert)
            .finish()
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl ClientTls {
    /// System roots plus `cacert`, or no verification with `insecure`; no
    /// client certificate.
    pub(crate) fn new(cacert: Option<&Path>, insecure: bool) -> Result<ClientTls, TlsError> {
        ClientTls::with_identity(cacert, insecure, None)
    }

    /// As [`ClientTls::new`], presenting `identity` to a server that asks
    /// for a client certificate (mutual TLS).
    pub(crate) fn with_identity(
        cacert: Option<&Path>,
        insecure: bool,
        identity: Option<Identity<'_>>,
    ) -> Result<ClientTls, TlsError> {
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions");
        let builder = if insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerification(provider())))
        } else {
            let (roots, pinned) = roots(cacert)?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier::CacertVerifier::new(
                    roots,
                    pinned,
                    provider(),
                )))
        };
        let mut config = match identity {
            None => builder.with_no_client_auth(),
            Some(id) => {
                let (chain, key) = read_identity(id)?;
                // Checks that the key's public half is the leaf's.
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| TlsError::ClientCert {
                        flag: "--key",
                        path: id.key.to_path_buf(),
                        reason: format!(
                            "does not go with the certificate {}: {e}",
                            id.cert.display()
                        ),
                    })?
            }
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(ClientTls {
            connector: TlsConnector::from(Arc::new(config)),
            insecure,
            cacert: cacert.map(Path::to_path_buf),
            client_cert: identity.map(|id| id.cert.to_path_buf()),
            handshakes: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Runs the client handshake on `tcp` for `name`, counting it once
    /// complete.
    pub(crate) async fn connect(
        &self,
        name: ServerName<'static>,
        tcp: TcpStream,
    ) -> std::io::Result<TlsStream<TcpStream>> {
        let stream = self.connector.connect(name, tcp).await?;
        self.handshakes.fetch_add(1, Ordering::Relaxed);
        Ok(stream)
    }

    /// Handshakes completed so far (summary.json `tls.handshakes`).
    pub(crate) fn handshakes(&self) -> u64 {
        self.handshakes.load(Ordering::Relaxed)
    }

    /// summary.json's `tls` object, with the handshakes so far.
    pub(crate) fn summary(&self) -> clw_run::TlsSummary {
        clw_run::TlsSummary {
            handshakes: self.handshakes(),
            // The load's own figure, filled in at the end of the run.
            handshake_ms: None,
            verified: !self.insecure,
            cacert: self.cacert.as_ref().map(|p| p.display().to_string()),
            client_cert: self.client_cert.as_ref().map(|p| p.display().to_string()),
            warning: self.insecure.then(|| INSECURE_WARNING.to_string()),
        }
    }
}

/// The TLS flags of a run (`--cacert`, `--insecure`, `--cert`/`--key`) and
/// the URLs it talks to (the target, `--metrics-url`,
/// `--heap-profile-url`), as given.
pub(crate) struct TlsFlags<'a> {
    pub(crate) urls: Vec<&'a str>,
    pub(crate) cacert: Option<&'a Path>,
    pub(crate) insecure: bool,
    pub(crate) cert: Option<&'a Path>,
    pub(crate) key: Option<&'a Path>,
}

/// The run's TLS settings when any URL it talks to is https; `None` for an
/// all-plain run, which then never reads the system's roots. A `--cacert`
/// that cannot be used is an error either way.
pub(crate) fn for_urls(opts: &TlsFlags<'_>) -> Result<Option<ClientTls>, TlsError> {
    let https = |url: &&str| url.trim_start().starts_with("https://");
    let any = opts.urls.iter().any(https);
    let identity = match (opts.cert, opts.key) {
        (Some(cert), Some(key)) => Some(Identity { cert, key }),
        _ => None,
    };
    if !any {
        if let Some(path) = opts.cacert {
            roots(Some(path))?;
        }
        if let Some(id) = identity {
            read_identity(id)?;
        }
        return Ok(None);
    }
    let tls = ClientTls::with_identity(opts.cacert, opts.insecure, identity)?;
    if tls.insecure {
        eprintln!("{INSECURE_WARNING}");
    }
    Ok(Some(tls))
}

/// What a connection needs to dial one https URL: the run's settings and
/// the name the certificate must carry.
#[derive(Debug, Clone)]
pub(crate) struct TlsDial {
    pub(crate) tls: ClientTls,
    pub(crate) name: ServerName<'static>,
}

impl TlsDial {
    /// The client handshake on `tcp`.
    pub(crate) async fn connect(&self, tcp: TcpStream) -> std::io::Result<TlsStream<TcpStream>> {
        self.tls.connect(self.name.clone(), tcp).await
    }

    /// The setup check before the load: one handshake with `addr` and one
    /// `HEAD /` over it, so an untrusted certificate, a plain-HTTP port or
    /// a client certificate the server refuses is one clear error (exit 3)
    /// rather than every request failing. The request is needed for the
    /// last: in TLS 1.3 the client's handshake is over before the server
    /// has judged its certificate, and the refusal comes as the first read.
    pub(crate) async fn check(
        &self,
        addr: SocketAddr,
        url: &str,
        authority: &str,
    ) -> Result<(), String> {
        let fail = |why: String| format!("TLS handshake with {url} ({addr}) failed: {why}");
        let client_cert = self.tls.client_cert.as_deref();
        let hint = |e: &std::io::Error| hint(e, self.tls.cacert.as_deref(), client_cert);
        let exchange = async {
            let tcp = TcpStream::connect(addr)
                .await
                .map_err(|e| fail(format!("cannot connect: {e}")))?;
            let mut tls = self
                .connect(tcp)
                .await
                .map_err(|e| fail(format!("{e}{}", hint(&e))))?;
            let head = format!("HEAD / HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
            let mut first = [0u8; 16];
            let answered = match tls.write_all(head.as_bytes()).await {
                Ok(()) => tls.read(&mut first).await,
                Err(e) => Err(e),
            };
            match answered {
                Ok(_) => Ok(()),
                Err(e) => Err(fail(format!("{e}{}", hint(&e)))),
            }
        };
        match tokio::time::timeout(std::time::Duration::from_secs(5), exchange).await {
            Ok(result) => result,
            Err(_) => Err(fail("no answer within 5s; is it an https port?".into())),
        }
    }
}

/// Whether the server at `addr` answers a TLS ClientHello as TLS: the
/// handshake completes (nothing verified: only the protocol is asked), or
/// the server ends it with a TLS alert (it wants a client certificate, say).
/// A plain HTTP server answers with bytes that are no TLS record (hyper,
/// nginx: a 400 at once) or waits for more (then 1 s is the bound).
pub(crate) async fn speaks_tls(addr: std::net::SocketAddr) -> bool {
    let Ok(tls) = ClientTls::new(None, true) else {
        return false;
    };
    let attempt = async {
        let tcp = TcpStream::connect(addr).await.ok()?;
        let name = ServerName::try_from("localhost").ok()?;
        Some(match tls.connect(name, tcp).await {
            Ok(_) => true,
            Err(e) => matches!(
                e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()),
                Some(rustls::Error::AlertReceived(_))
            ),
        })
    };
    tokio::time::timeout(std::time::Duration::from_secs(1), attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

/// What to do about a failed handshake, after rustls' reason: told by the
/// error's kind when rustls gave one, else by its text.
fn hint(e: &std::io::Error, cacert: Option<&Path>, client_cert: Option<&Path>) -> String {
    use rustls::{AlertDescription as A, CertificateError as C, Error as R};
    let rustls = e.get_ref().and_then(|e| e.downcast_ref::<R>());
    let issuer = match cacert {
        Some(path) => format!(
            "its issuer is neither one of the system's CAs nor in --cacert {}: pass the CA that signed it, or --insecure to skip verification",
            path.display()
        ),
        None => "pass --cacert FILE with the CA that signed the server's certificate, or --insecure to skip verification".into(),
    };
    let why = match rustls {
        Some(R::AlertReceived(A::CertificateRequired)) => {
            "the server asks for a client certificate: pass --cert FILE --key FILE".into()
        }
        Some(R::AlertReceived(A::BadCertificate | A::UnknownCA)) => {
            "the server refused the client certificate (--cert): is it signed by a CA the server trusts?".into()
        }
        // A client certificate the server could not verify (its signature,
        // or a chain it does not accept) ends in decrypt_error, not in a
        // sign that the port is not TLS.
        Some(R::AlertReceived(A::DecryptError | A::AccessDenied | A::CertificateUnknown))
            if client_cert.is_some() =>
        {
            format!(
                "the server refused the client certificate (--cert {}): it could not verify it; is --key that certificate's key, and is it signed by a CA the server trusts?",
                client_cert.map(Path::display).map(|d| d.to_string()).unwrap_or_default()
            )
        }
        Some(R::InvalidCertificate(C::UnknownIssuer)) => issuer,
        Some(R::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. })) => {
            "the certificate does not name the host the URL has: use a name (or IP address) it carries, with --connect-to to dial another address".into()
        }
        Some(R::InvalidCertificate(
            C::Expired | C::ExpiredContext { .. } | C::NotValidYet | C::NotValidYetContext { .. },
        )) => "the server's certificate is outside its validity period (or this machine's clock is off)".into(),
        Some(R::InvalidCertificate(C::InvalidPurpose | C::InvalidPurposeContext { .. })) => {
            "the server's certificate does not allow server authentication (extended key usage)".into()
        }
        Some(e) if verifier::is_ca_used_as_end_entity(e) => match cacert {
            Some(path) => format!(
                "the server's certificate is a CA certificate (CA:TRUE) and not one of those in --cacert {}: such a certificate is trusted only when --cacert holds that very certificate",
                path.display()
            ),
            None => "the server's certificate is a CA certificate (CA:TRUE): pass it with --cacert FILE to trust it, or --insecure to skip verification".into(),
        },
        Some(R::InvalidCertificate(_)) => issuer,
        _ if e.to_string().contains("certificate") => issuer,
        _ => "is it an https port?".into(),
    };
    format!("; {why}")
}

/// `--cert`'s chain and `--key`'s key, each a clear error naming its flag
/// and file when it cannot be used.
fn read_identity(
    id: Identity<'_>,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let bad = |flag, path: &Path, reason: String| TlsError::ClientCert {
        flag,
        path: path.to_path_buf(),
        reason,
    };
    let chain = pem_certs(id.cert, "no `-----BEGIN CERTIFICATE-----` block in it")
        .map_err(|reason| bad("--cert", id.cert, reason))?;
    std::fs::File::open(id.key)
        .map_err(|e| bad("--key", id.key, format!("cannot read it: {e}")))?;
    let key = PrivateKeyDer::from_pem_file(id.key).map_err(|e| {
        bad(
            "--key",
            id.key,
            format!(
                "no usable PEM private key (PKCS#8, PKCS#1 or SEC1): {}",
                pem_reason(&e)
            ),
        )
    })?;
    Ok((chain, key))
}

/// The certificates of the PEM file `path` (`--cacert`, `--cert`), at
/// least one, or why not: unreadable, not PEM, or `empty` when it holds no
/// certificate.
fn pem_certs(path: &Path, empty: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    // Opened first so "cannot read" is told apart from "not PEM".
    std::fs::File::open(path).map_err(|e| format!("cannot read it: {e}"))?;
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("not a PEM certificate file: {}", pem_reason(&e)))?;
    if certs.is_empty() {
        return Err(empty.into());
    }
    Ok(certs)
}

/// The system's roots, then `cacert`'s certificates (also returned alone,
/// for the verifier). A `--cacert` file that cannot be used is an error of
/// its own, whatever the system has.
fn roots(cacert: Option<&Path>) -> Result<(RootCertStore, Vec<CertificateDer<'static>>), TlsError> {
    let mut store = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (added, _ignored) = store.add_parsable_certificates(native.certs);
    if let Some(path) = cacert {
        let bad = |reason: String| TlsError::CaCert {
            path: path.to_path_buf(),
            reason,
        };
        let certs = pem_certs(
            path,
            "no `-----BEGIN CERTIFICATE-----` block in it (a PEM CA certificate is expected)",
        )
        .map_err(bad)?;
        for cert in &certs {
            store
                .add(cert.clone())
                .map_err(|e| bad(format!("not a usable CA certificate: {e}")))?;
        }
        return Ok((store, certs));
    }
    if added == 0 {
        let reason = match native.errors.first() {
            Some(e) => e.to_string(),
            None => "no certificate found".into(),
        };
        return Err(TlsError::NoRoots { reason });
    }
    Ok((store, Vec::new()))
}

/// `--insecure`: any certificate is accepted; signatures are still checked
/// (so the handshake is a real one, as curl -k does).
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_cacert_names_the_file_and_why() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let missing = dir.path().join("missing.pem");
        for (path, why) in [
            (&junk, "no `-----BEGIN CERTIFICATE-----` block"),
            (&missing, "cannot read it"),
        ] {
            let err = ClientTls::new(Some(path), false).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("--cacert {}: ", path.display())) && err.contains(why),
                "{err}"
            );
        }
    }

    #[test]
    fn a_generated_ca_is_accepted_and_insecure_needs_no_roots() {
        let dir = tempfile::tempdir().unwrap();
        let ca = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, ca.cert.pem()).unwrap();
        let tls = ClientTls::new(Some(&path), false).unwrap();
        assert!(!tls.insecure);
        assert_eq!(tls.cacert.as_deref(), Some(path.as_path()));
        assert!(ClientTls::new(None, true).unwrap().insecure);
    }
}
