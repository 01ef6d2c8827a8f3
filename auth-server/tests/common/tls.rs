//! Test-time certificates (rcgen: nothing private is committed) and a
//! rustls client that trusts only the certificate it is given.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use clw_auth::Config;

/// A self-signed certificate for `localhost` and 127.0.0.1, written as
/// cert.pem and key.pem into a directory that lives as long as it does.
pub struct TestCert {
    pub der: CertificateDer<'static>,
    pub dir: tempfile::TempDir,
}

impl TestCert {
    pub fn new() -> TestCert {
        let c = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .expect("rcgen");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cert.pem"), c.cert.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), c.key_pair.serialize_pem()).unwrap();
        TestCert {
            der: c.cert.der().clone(),
            dir,
        }
    }

    pub fn cert_path(&self) -> std::path::PathBuf {
        self.dir.path().join("cert.pem")
    }

    pub fn key_path(&self) -> std::path::PathBuf {
        self.dir.path().join("key.pem")
    }

    /// `Config::for_tests()` serving TLS with this certificate.
    pub fn config(&self) -> Config {
        let mut cfg = Config::for_tests();
        cfg.service.tls.cert = Some(self.cert_path());
        cfg.service.tls.key = Some(self.key_path());
        cfg
    }

    /// The PEM text of the certificate (what `--cacert` reads).
    pub fn pem(&self) -> String {
        std::fs::read_to_string(self.cert_path()).unwrap()
    }
}

/// A client configuration trusting `ca` only, offering ALPN http/1.1.
pub fn client_config(ca: &CertificateDer<'static>) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone()).expect("a valid CA");
    let mut cfg =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(cfg)
}

/// A TLS connection to `addr` (server name `localhost`) trusting `ca`.
pub async fn connect(
    addr: SocketAddr,
    ca: &CertificateDer<'static>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    TlsConnector::from(client_config(ca))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
}
