//! `https://` targets, end to end in-process: clw-cli against the real
//! clw-auth serving TLS with a certificate rcgen makes for the test (no
//! private key is committed). Every load is 1-2 s and a handful of users.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::common;
use crate::common::{server_count, summary, LoadTest, SESSIONS};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A self-signed certificate for localhost and 127.0.0.1, its PEM files
/// in a directory that lives as long as it does.
struct Cert {
    der: CertificateDer<'static>,
    dir: tempfile::TempDir,
}

impl Cert {
    fn new() -> Cert {
        Cert::for_names(&["localhost", "127.0.0.1"])
    }

    fn for_names(names: &[&str]) -> Cert {
        let names = names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let c = rcgen::generate_simple_self_signed(names).unwrap();
        Cert::written(&c.cert, &c.key_pair)
    }

    /// Self-signed and marked CA:TRUE, as `openssl req -x509 -newkey
    /// rsa:2048 -nodes -subj /CN=localhost -addext
    /// subjectAltName=IP:127.0.0.1` makes it (the usual way).
    fn self_signed_ca() -> Cert {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "localhost");
        Cert::written(&params.self_signed(&key).unwrap(), &key)
    }

    fn written(cert: &rcgen::Certificate, key: &rcgen::KeyPair) -> Cert {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).unwrap();
        Cert {
            der: cert.der().clone(),
            dir,
        }
    }

    fn pem(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }
}

/// clw-auth serving HTTPS with `cert` on 127.0.0.1:0.
async fn start_tls_auth(cert: &Cert) -> clw_auth::ServerHandle {
    let mut cfg = clw_auth::Config::for_tests();
    cfg.service.tls.cert = Some(cert.pem());
    cfg.service.tls.key = Some(cert.dir.path().join("key.pem"));
    clw_auth::Server::bind(cfg).await.unwrap().spawn()
}

/// GET `path` over TLS trusting `cert` (one connection, then closed).
async fn https_get(addr: SocketAddr, cert: &Cert, path: &str) -> String {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der.clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut text = Vec::new();
    // rustls reports the peer's close without close_notify as an error
    // after the bytes; the response is complete by then.
    let _ = tls.read_to_end(&mut text).await;
    String::from_utf8_lossy(&text).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_over_tls_counts_what_the_server_counts() {
    let cert = Cert::new();
    let server = start_tls_auth(&cert).await;
    let addr = server.addr();
    let test = LoadTest::with_scenario_text(format!("https://localhost:{}", addr.port()), SESSIONS);
    let flags = format!(
        "--concurrent-users 4 --duration 2s --sample-interval 200ms --cacert {}",
        cert.pem().display()
    );
    let outcome = clw_cli::run(test.opts(&flags)).await.expect("run succeeds");
    assert_eq!(outcome.exit_code, 0);
    let s = summary(&test.out);
    assert_eq!(s["target"], format!("https://localhost:{}", addr.port()));
    assert_eq!(s["requests"]["failed"], 0, "{s}");
    let tls = &s["tls"];
    assert_eq!(tls["verified"], true, "{s}");
    assert_eq!(tls["cacert"], cert.pem().display().to_string());
    assert!(tls["warning"].is_null(), "{s}");
    assert_eq!(
        s["connections_opened"], 4,
        "one keep-alive connection per user"
    );
    // Every handshake clw-cli made (setup check, 4 users, the metrics
    // scraper) is one the server completed, and no other.
    let server_handshakes = server.state().metrics.tls_handshakes_total();
    assert_eq!(
        tls["handshakes"].as_u64().unwrap(),
        server_handshakes,
        "{s}"
    );
    assert!(server_handshakes >= 6, "setup + 4 users + scraper: {s}");
    // The 4 users' handshakes, each inside its first request's latency.
    let took = &tls["handshake_ms"];
    let max = took["max"].as_f64().expect("handshake figures");
    assert!(took["p50"].as_f64().unwrap() > 0.0, "{s}");
    assert!(
        max <= s["latency_ms"]["max"].as_f64().unwrap(),
        "a handshake longer than every request that contains one: {s}"
    );
    // The memory sampler read the target's /metrics over https.
    assert!(s["memory"]["samples"].as_u64().unwrap() >= 3, "{s}");
    assert_eq!(s["memory"]["sources"]["rss"], "metrics", "{s}");

    let metrics = https_get(addr, &cert, "/metrics").await;
    let login = server_count(&metrics, "route=\"/auth/login\"");
    let validate = server_count(&metrics, "route=\"/auth/validate\"");
    assert!(login > 0, "{metrics}");
    assert_eq!(s["steps"]["login"]["requests"].as_u64().unwrap(), login);
    assert_eq!(
        s["steps"]["validate"]["requests"].as_u64().unwrap(),
        validate
    );
    assert_eq!(s["requests"]["total"].as_u64().unwrap(), login + validate);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_skips_verification_and_says_so_in_every_output() {
    let cert = Cert::new();
    let server = start_tls_auth(&cert).await;
    let addr = server.addr();
    let test = LoadTest::with_scenario_text(format!("https://127.0.0.1:{}", addr.port()), SESSIONS);
    let outcome =
        clw_cli::run(test.opts("--concurrent-users 2 --duration 1s --no-memory --insecure"))
            .await
            .expect("run succeeds without any CA");
    assert_eq!(outcome.exit_code, 0);
    let s = summary(&test.out);
    assert_eq!(s["requests"]["failed"], 0, "{s}");
    assert_eq!(s["tls"]["verified"], false);
    let warning = s["tls"]["warning"]
        .as_str()
        .expect("a warning in summary.json");
    assert!(warning.contains("--insecure"), "{warning}");
    // The report's banner repeats it.
    let rendered = clw_report::render_run(&test.out).unwrap();
    let html = std::fs::read_to_string(&rendered.page).unwrap();
    let banner = &html[html.find("id=\"verdict\"").unwrap()..];
    let banner = &banner[..banner.find("</section>").unwrap()];
    assert!(banner.contains("--insecure"), "{banner}");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_another_ca_stops_the_run_before_the_load() {
    let cert = Cert::new();
    let other = Cert::new();
    let server = start_tls_auth(&cert).await;
    let test = LoadTest::with_scenario_text(
        format!("https://localhost:{}", server.addr().port()),
        SESSIONS,
    );
    let flags = format!("--duration 1s --cacert {}", other.pem().display());
    let err = clw_cli::run(test.opts(&flags)).await.unwrap_err();
    assert_eq!(err.exit_code(), 3, "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("TLS handshake with https://localhost:"),
        "{msg}"
    );
    assert!(
        msg.contains("certificate") && msg.contains("--cacert"),
        "{msg}"
    );
    assert_eq!(server.state().metrics.tls_handshakes_total(), 0);
    server.shutdown().await.unwrap();
}

/// A self-signed CA:TRUE certificate passed with `--cacert` is trusted as
/// the server's own, as curl trusts it (webpki alone refuses it as
/// `CaUsedAsEndEntity`); another such certificate is still refused, saying
/// why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_signed_ca_certificate_in_cacert_is_the_servers_own() {
    let cert = Cert::self_signed_ca();
    let server = start_tls_auth(&cert).await;
    let port = server.addr().port();
    for host in ["127.0.0.1", "localhost"] {
        let test = LoadTest::new(
            format!("https://{host}:{port}"),
            "scenarios/ready-only.toml",
        );
        let flags = format!(
            "--concurrent-users 2 --duration 1s --sample-interval 200ms --cacert {}",
            cert.pem().display()
        );
        let outcome = clw_cli::run(test.opts(&flags)).await.expect("run succeeds");
        let s = summary(&test.out);
        assert_eq!(outcome.exit_code, 0, "{s}");
        assert_eq!(s["requests"]["failed"], 0, "{s}");
        assert!(s["requests"]["ok"].as_u64().unwrap() > 0, "{s}");
        assert_eq!(s["tls"]["verified"], true, "{s}");
    }
    let handshakes = server.state().metrics.tls_handshakes_total();
    assert!(handshakes > 0);

    let other = Cert::self_signed_ca();
    let test = LoadTest::new(
        format!("https://127.0.0.1:{port}"),
        "scenarios/ready-only.toml",
    );
    let flags = format!("--duration 1s --cacert {}", other.pem().display());
    let err = clw_cli::run(test.opts(&flags)).await.unwrap_err();
    assert_eq!(err.exit_code(), 3, "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("is a CA certificate (CA:TRUE) and not one of those in --cacert")
            && msg.contains(&other.pem().display().to_string()),
        "{msg}"
    );
    assert_eq!(
        server.state().metrics.tls_handshakes_total(),
        handshakes,
        "no handshake completed with the refused certificate"
    );
    // The right certificate for another name is refused for the name.
    let test = LoadTest::new(
        format!("https://auth.invalid:{port}"),
        "scenarios/ready-only.toml",
    );
    let flags = format!(
        "--duration 1s --cacert {} --connect-to auth.invalid:{port}:127.0.0.1:{port}",
        cert.pem().display()
    );
    let err = clw_cli::run(test.opts(&flags)).await.unwrap_err();
    assert_eq!(err.exit_code(), 3, "{err}");
    assert!(
        err.to_string()
            .contains("the certificate does not name the host"),
        "{err}"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_unusable_cacert_is_a_usage_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("ca.pem");
    std::fs::write(&junk, "hello\n").unwrap();
    let cut = dir.path().join("cut.pem");
    std::fs::write(&cut, "-----BEGIN CERTIFICATE-----\nMIIB\n").unwrap();
    let missing = dir.path().join("missing.pem");
    for (file, why) in [
        (&junk, "no `-----BEGIN CERTIFICATE-----` block"),
        (&cut, "no `-----END CERTIFICATE-----` line"),
        (&missing, "cannot read it"),
    ] {
        let test = LoadTest::with_scenario_text("https://127.0.0.1:1".into(), SESSIONS);
        let flags = format!("--duration 1s --cacert {}", file.display());
        let err = clw_cli::run(test.opts(&flags)).await.unwrap_err();
        assert_eq!(err.exit_code(), 2, "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("--cacert {}", file.display())),
            "{msg}"
        );
        assert!(msg.contains(why), "{msg}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spawned_tls_server_is_polled_ready_and_scraped_over_https() {
    let cert = Cert::new();
    let (port, command) = common::clw_auth_command("fixed.json");
    // `env` execs clw-auth in place: the pid clw-cli watches is the server's.
    let command = format!(
        "env CLAW_AUTH_TLS_CERT='{}' CLAW_AUTH_TLS_KEY='{}' {command}",
        cert.pem().display(),
        cert.dir.path().join("key.pem").display()
    );
    let test = LoadTest::new(
        format!("https://localhost:{port}"),
        "scenarios/ready-only.toml",
    );
    let flags = format!(
        "--concurrent-users 2 --duration 2s --sample-interval 200ms --memory-limit 512M --cacert {}",
        cert.pem().display()
    );
    let outcome = clw_cli::run(test.spawn_opts(&command, &flags))
        .await
        .expect("the run completes");
    let s = summary(&test.out);
    assert_eq!(outcome.exit_code, 0, "{s}");
    assert_eq!(s["requests"]["failed"], 0, "{s}");
    assert!(s["requests"]["ok"].as_u64().unwrap() > 0, "{s}");
    // The allocator figures only come from /metrics, scraped over https.
    assert_eq!(s["memory"]["sources"]["allocator"], "metrics", "{s}");
    // At least one readiness poll, the two users and the scraper.
    assert!(s["tls"]["handshakes"].as_u64().unwrap() >= 4, "{s}");
}

/// An https `--heap-profile-url` beside a plain-http target trusts the
/// run's `--cacert`, as the target would: before, it trusted the system's
/// roots only and the run stopped at the probe (exit 3).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_heap_profile_url_beside_a_plain_target_trusts_the_cacert() {
    let cert = Cert::new();
    let target = common::start_auth().await;
    // The profiles come from a clw-auth binary (jemalloc profiling is set
    // in its main) serving TLS.
    let port = common::free_port();
    let mut profiled = std::process::Command::new(common::clw_auth_binary())
        .arg("--config")
        .arg(common::workspace().join("profiles/fixed.json"))
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .env("CLAW_AUTH_TLS_CERT", cert.pem())
        .env("CLAW_AUTH_TLS_KEY", cert.dir.path().join("key.pem"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start clw-auth");
    common::wait_until(
        std::time::Duration::from_secs(30),
        "the TLS clw-auth listens",
        || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
    );
    let test = LoadTest::new(
        format!("http://{}", target.addr()),
        "scenarios/ready-only.toml",
    );
    let flags = format!(
        "--concurrent-users 2 --duration 2s --sample-interval 200ms \
         --heap-profile-url https://localhost:{port}/debug/pprof/heap --cacert {}",
        cert.pem().display()
    );
    let outcome = clw_cli::run(test.opts(&flags)).await;
    // Ours, ended by its pid.
    let _ = profiled.kill();
    let _ = profiled.wait();
    let outcome = outcome.expect("the run completes");
    let s = summary(&test.out);
    assert_eq!(outcome.exit_code, 0, "{s}");
    assert!(s["tls"].is_null(), "the target is plain http: {s}");
    let profiles = std::fs::read_dir(test.out.join("heap")).map_or(0, |d| d.count());
    assert!(profiles >= 1, "no heap profile over https: {s}");
    target.shutdown().await.unwrap();
}

/// `--connect-to` sends a staging name's connections to 127.0.0.1 while
/// the certificate is still checked against the name (never looked up:
/// `.invalid` has no DNS), for the load and the /metrics scrape alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_to_dials_another_address_and_verifies_the_name() {
    let name = "auth.staging.invalid";
    let cert = Cert::for_names(&[name]);
    let server = start_tls_auth(&cert).await;
    let port = server.addr().port();
    let test = LoadTest::new(format!("https://{name}"), "scenarios/ready-only.toml");
    let flags = format!(
        "--concurrent-users 2 --duration 2s --sample-interval 200ms --cacert {} \
         --connect-to {name}:443:127.0.0.1:{port}",
        cert.pem().display()
    );
    let outcome = clw_cli::run(test.opts(&flags)).await.expect("run succeeds");
    let s = summary(&test.out);
    assert_eq!(outcome.exit_code, 0, "{s}");
    assert_eq!(s["requests"]["failed"], 0, "{s}");
    assert!(s["requests"]["ok"].as_u64().unwrap() > 0, "{s}");
    assert_eq!(s["tls"]["verified"], true, "{s}");
    assert_eq!(
        s["tls"]["handshakes"].as_u64().unwrap(),
        server.state().metrics.tls_handshakes_total(),
        "every handshake reached this server: {s}"
    );
    assert!(s["memory"]["samples"].as_u64().unwrap() >= 3, "{s}");
    let note = format!("connections for {name} go to 127.0.0.1:{port} (--connect-to)");
    assert!(
        s["notes"].as_array().unwrap().iter().any(|n| n == &note),
        "{s}"
    );
    // A certificate for another name is refused through the rule too.
    let other = Cert::for_names(&["elsewhere.invalid"]);
    let wrong = start_tls_auth(&other).await;
    let test = LoadTest::new(format!("https://{name}"), "scenarios/ready-only.toml");
    let flags = format!(
        "--concurrent-users 1 --duration 1s --cacert {} --connect-to {name}:443:127.0.0.1:{}",
        other.pem().display(),
        wrong.addr().port()
    );
    let err = clw_cli::run(test.opts(&flags)).await.unwrap_err();
    assert_eq!(err.exit_code(), 3, "{err}");
    server.shutdown().await.unwrap();
    wrong.shutdown().await.unwrap();
}

/// A CA, a client certificate it signed (PEM files in `dir`), and the
/// paths: ca.pem, client.pem, client.key.
fn client_identity(dir: &std::path::Path, cn: &str) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("{cn} CA"));
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let client = params.signed_by(&key, &ca, &ca_key).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("client.pem"), client.pem()).unwrap();
    std::fs::write(dir.join("client.key"), key.serialize_pem()).unwrap();
}

/// A service that requires mutual TLS: clw-cli presents --cert/--key and
/// the load runs; without them, or with a certificate of another CA, the
/// setup check stops the run (exit 3) saying what to pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_presents_the_client_certificate() {
    let cert = Cert::new();
    let ours = tempfile::tempdir().unwrap();
    client_identity(ours.path(), "clw-cli");
    let theirs = tempfile::tempdir().unwrap();
    client_identity(theirs.path(), "stranger");
    // Rogue: a CA with our CA's very name but another key, so the server
    // finds the issuer and the signature fails (a decrypt_error alert).
    let rogue = tempfile::tempdir().unwrap();
    client_identity(rogue.path(), "clw-cli");
    let mut cfg = clw_auth::Config::for_tests();
    cfg.service.tls.cert = Some(cert.pem());
    cfg.service.tls.key = Some(cert.dir.path().join("key.pem"));
    cfg.service.tls.client_ca = Some(ours.path().join("ca.pem"));
    let server = clw_auth::Server::bind(cfg).await.unwrap().spawn();
    let port = server.addr().port();
    let run = |identity: Option<&std::path::Path>| {
        let test = LoadTest::new(
            format!("https://localhost:{port}"),
            "scenarios/ready-only.toml",
        );
        let mut flags = format!(
            "--concurrent-users 2 --duration 1s --sample-interval 200ms --cacert {}",
            cert.pem().display()
        );
        if let Some(dir) = identity {
            flags += &format!(
                " --cert {} --key {}",
                dir.join("client.pem").display(),
                dir.join("client.key").display()
            );
        }
        (test, flags)
    };

    let (test, flags) = run(Some(ours.path()));
    let outcome = clw_cli::run(test.opts(&flags)).await.expect("run succeeds");
    let s = summary(&test.out);
    assert_eq!(outcome.exit_code, 0, "{s}");
    assert_eq!(s["requests"]["failed"], 0, "{s}");
    assert!(s["requests"]["ok"].as_u64().unwrap() > 0, "{s}");
    assert_eq!(
        s["tls"]["client_cert"],
        ours.path().join("client.pem").display().to_string()
    );
    assert_eq!(
        s["tls"]["handshakes"].as_u64().unwrap(),
        server.state().metrics.tls_handshakes_total(),
        "{s}"
    );

    for (identity, says) in [
        (None, "pass --cert FILE --key FILE"),
        (Some(theirs.path()), "refused the client certificate"),
        (Some(rogue.path()), "refused the client certificate"),
    ] {
        let (test, flags) = run(identity);
        let err = clw_cli::run(test.opts(&flags)).await.unwrap_err();
        assert_eq!(err.exit_code(), 3, "{err}");
        assert!(err.to_string().contains(says), "{err}");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_key_that_is_not_the_certificates_is_a_usage_error() {
    let ours = tempfile::tempdir().unwrap();
    client_identity(ours.path(), "clw-cli");
    let other = tempfile::tempdir().unwrap();
    client_identity(other.path(), "other");
    let test = LoadTest::new("https://127.0.0.1:1".into(), "scenarios/ready-only.toml");
    let flags = format!(
        "--duration 1s --cert {} --key {}",
        ours.path().join("client.pem").display(),
        other.path().join("client.key").display()
    );
    let err = clw_cli::run(test.opts(&flags)).await.unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("--key") && text.contains("does not go with the certificate"),
        "{text}"
    );
}

/// An `http://` target on a TLS port stops at start (exit 3) saying to use
/// https://, instead of a whole load of protocol errors: against clw-auth's
/// rustls and against OpenSSL's own `s_server`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_target_on_a_tls_port_is_told_to_use_https() {
    let cert = Cert::new();
    let server = start_tls_auth(&cert).await;
    let mut ports = vec![(server.addr().port(), "rustls")];
    let openssl_port = common::free_port();
    let openssl = std::process::Command::new("openssl")
        .args(["s_server", "-quiet", "-www", "-accept"])
        .arg(format!("127.0.0.1:{openssl_port}"))
        .arg("-cert")
        .arg(cert.pem())
        .arg("-key")
        .arg(cert.dir.path().join("key.pem"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    let mut openssl = match openssl {
        Ok(child) => Some(child),
        Err(e) => {
            println!("SKIPPED the OpenSSL half of an_http_target_on_a_tls_port_is_told_to_use_https: {e}");
            None
        }
    };
    if openssl.is_some() {
        let port = openssl_port;
        common::wait_until(
            std::time::Duration::from_secs(10),
            "s_server listens",
            || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
        );
        ports.push((port, "openssl s_server"));
    }
    for (port, who) in ports {
        let test = LoadTest::new(
            format!("http://localhost:{port}"),
            "scenarios/ready-only.toml",
        );
        let err = clw_cli::run(test.opts("--duration 1s --no-memory"))
            .await
            .expect_err(who);
        assert_eq!(err.exit_code(), 3, "{who}: {err}");
        assert!(
            err.to_string().contains(&format!(
                "this port speaks TLS: use https://localhost:{port}"
            )),
            "{who}: {err}"
        );
    }
    if let Some(child) = openssl.as_mut() {
        let _ = child.kill();
        let _ = child.wait();
    }
    server.shutdown().await.unwrap();
}
