//! Server certificate verification for a verified run: webpki against the
//! system's roots and `--cacert`'s certificates, and one case more, as curl
//! (OpenSSL) has it: the server's certificate is itself one of the
//! `--cacert` certificates.
//!
//! That is the certificate `openssl req -x509 -newkey ... -subj /CN=localhost`
//! makes, which marks itself `CA:TRUE`: webpki refuses any CA certificate
//! as a server's own (`CaUsedAsEndEntity`), even one the user pinned with
//! `--cacert`. Such a certificate is accepted only when it is, byte for byte,
//! one the user gave, names the host the run dials (DNS name or IP address,
//! as webpki checks it), is inside its validity period and, when it limits
//! its key's use, allows server authentication. Every other refusal
//! (unknown issuer, wrong name, expired) is webpki's, unchanged. The
//! handshake's signatures are always checked with the provider's
//! algorithms, so the server must hold the certificate's key.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_name, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

/// webpki's verification, then a `--cacert` certificate accepted as the
/// server's own (see the module's doc).
#[derive(Debug)]
pub(super) struct CacertVerifier {
    webpki: Arc<WebPkiServerVerifier>,
    /// `--cacert`'s certificates, as DER.
    pinned: Vec<CertificateDer<'static>>,
}

impl CacertVerifier {
    /// Over `roots` (never empty: [`super::roots`] refuses that), with
    /// `pinned` the certificates of `--cacert`.
    pub(super) fn new(
        roots: RootCertStore,
        pinned: Vec<CertificateDer<'static>>,
        provider: Arc<CryptoProvider>,
    ) -> CacertVerifier {
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .expect("the roots hold at least one certificate");
        CacertVerifier { webpki, pinned }
    }
}

impl ServerCertVerifier for CacertVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let refused = match self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(verified) => return Ok(verified),
            Err(e) => e,
        };
        let pinned = self
            .pinned
            .iter()
            .any(|c| c.as_ref() == end_entity.as_ref());
        if is_ca_used_as_end_entity(&refused) && pinned {
            accept_pinned(end_entity, server_name, now)
        } else {
            Err(refused)
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// webpki refused a CA certificate as the server's own certificate.
pub(super) fn is_ca_used_as_end_entity(e: &rustls::Error) -> bool {
    match e {
        rustls::Error::InvalidCertificate(CertificateError::Other(other)) => matches!(
            other.0.downcast_ref::<webpki::Error>(),
            Some(webpki::Error::CaUsedAsEndEntity)
        ),
        _ => false,
    }
}

/// The checks webpki would have made of a server certificate that is one
/// of `--cacert`'s: the name, the validity period, the key's purpose.
/// (webpki checks the period before the CA flag today, so an expired one
/// is refused as expired before it comes here; this does not rely on it.)
fn accept_pinned(
    end_entity: &CertificateDer<'_>,
    server_name: &ServerName<'_>,
    now: UnixTime,
) -> Result<ServerCertVerified, rustls::Error> {
    let parsed = ParsedCertificate::try_from(end_entity)?;
    verify_server_name(&parsed, server_name)?;
    let (_, cert) = x509_parser::parse_x509_certificate(end_entity.as_ref())
        .map_err(|_| CertificateError::BadEncoding)?;
    let at = |t: &x509_parser::time::ASN1Time| {
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(
            u64::try_from(t.timestamp()).unwrap_or(0),
        ))
    };
    let validity = cert.validity();
    let (not_before, not_after) = (at(&validity.not_before), at(&validity.not_after));
    if now < not_before {
        return Err(CertificateError::NotValidYetContext {
            time: now,
            not_before,
        }
        .into());
    }
    if now > not_after {
        return Err(CertificateError::ExpiredContext {
            time: now,
            not_after,
        }
        .into());
    }
    let eku = cert
        .extended_key_usage()
        .map_err(|_| CertificateError::BadEncoding)?;
    if eku.is_some_and(|e| !e.value.any && !e.value.server_auth) {
        return Err(CertificateError::InvalidPurpose.into());
    }
    Ok(ServerCertVerified::assertion())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed CA:TRUE certificate for `names`, valid from the
    /// start of year `from` to the start of year `to`, with `eku` purposes
    /// (none: no EKU extension).
    fn ca_cert(
        names: &[&str],
        (from, to): (i32, i32),
        eku: Vec<rcgen::ExtendedKeyUsagePurpose>,
    ) -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().unwrap();
        let names = names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let mut params = rcgen::CertificateParams::new(names).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.not_before = rcgen::date_time_ymd(from, 1, 1);
        params.not_after = rcgen::date_time_ymd(to, 1, 1);
        params.extended_key_usages = eku;
        params.self_signed(&key).unwrap().der().clone()
    }

    fn verifier(pinned: &[&CertificateDer<'static>]) -> CacertVerifier {
        let mut roots = RootCertStore::empty();
        for cert in pinned {
            roots.add((*cert).clone()).unwrap();
        }
        CacertVerifier::new(
            roots,
            pinned.iter().map(|c| (*c).clone()).collect(),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
    }

    /// Valid now (and until 2090).
    const CURRENT: (i32, i32) = (2020, 2090);

    fn name(host: &str) -> ServerName<'static> {
        ServerName::try_from(host.to_string()).unwrap()
    }

    fn verify(v: &CacertVerifier, cert: &CertificateDer<'_>, host: &str) -> Result<(), String> {
        v.verify_server_cert(cert, &[], &name(host), &[], UnixTime::now())
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_pinned_ca_certificate_is_the_servers_own_for_its_names() {
        let cert = ca_cert(&["localhost", "127.0.0.1"], CURRENT, vec![]);
        let v = verifier(&[&cert]);
        assert_eq!(verify(&v, &cert, "localhost"), Ok(()));
        assert_eq!(verify(&v, &cert, "127.0.0.1"), Ok(()));
        let wrong = verify(&v, &cert, "auth.example").unwrap_err();
        assert!(wrong.contains("not valid for name"), "{wrong}");
    }

    #[test]
    fn a_ca_certificate_that_is_not_pinned_is_refused_as_webpki_does() {
        let served = ca_cert(&["localhost"], CURRENT, vec![]);
        let other = ca_cert(&["localhost"], CURRENT, vec![]);
        let err = verify(&verifier(&[&other]), &served, "localhost").unwrap_err();
        assert!(err.contains("CaUsedAsEndEntity"), "{err}");
    }

    #[test]
    fn a_pinned_ca_certificate_out_of_its_period_or_purpose_is_refused() {
        let client_only = ca_cert(
            &["localhost"],
            CURRENT,
            vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth],
        );
        let err = verify(&verifier(&[&client_only]), &client_only, "localhost").unwrap_err();
        assert!(err.contains("InvalidPurpose"), "{err}");
        for (period, says) in [((2000, 2001), "expired"), ((2090, 2091), "not valid yet")] {
            let cert = ca_cert(&["localhost"], period, vec![]);
            // Through the verifier (webpki checks the period first today)
            // and through the pinned path alone, which does not rely on
            // that order.
            let err = verify(&verifier(&[&cert]), &cert, "localhost").unwrap_err();
            assert!(err.contains(says), "{err}");
            let err = accept_pinned(&cert, &name("localhost"), UnixTime::now()).unwrap_err();
            assert!(err.to_string().contains(says), "{err}");
        }
    }
}
