//! `--target` and `--metrics-url`: `http://` or `https://host[:port][/base]`
//! URLs, resolved once before the load starts so name lookups never sit on
//! the request path.

use std::net::SocketAddr;

use rustls_pki_types::ServerName;

use crate::connect_to::ConnectTo;
use crate::tls::{ClientTls, TlsDial};

/// A URL that is not usable as a target.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TargetError {
    #[error("bad URL `{url}`: {reason}")]
    Bad { url: String, reason: String },
    #[error("cannot resolve `{host}` (from `{url}`): {reason}")]
    Resolve {
        url: String,
        host: String,
        reason: String,
    },
}

/// A parsed `http://` or `https://` URL.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// As the user wrote it, without a trailing slash.
    pub(crate) url: String,
    /// `https://`: connections to it speak TLS (see [`crate::tls`]).
    pub(crate) https: bool,
    /// How to dial it when `https`; set by [`Target::with_tls`].
    tls: Option<TlsDial>,
    /// Host header value: `host[:port]` as written.
    pub(crate) authority: String,
    pub(crate) host: String,
    pub(crate) port: u16,
    /// Path prefix (`/api` in `http://h/api`), empty for the root; scenario
    /// paths are appended to it.
    pub(crate) base_path: String,
    /// Where connections really go when a `--connect-to` rule names this
    /// host and port; the Host header and TLS name stay `host`.
    dial_to: Option<(String, u16)>,
}

/// How the run reaches each of its URLs (the target, `--metrics-url`,
/// `--prometheus-url`, `--heap-profile-url`): its TLS settings and its
/// `--connect-to` rules, applied alike to all of them, as curl does.
#[derive(Debug, Clone, Default)]
pub(crate) struct Reach {
    /// `None` for an all-plain run ([`crate::tls::for_urls`]).
    pub(crate) tls: Option<ClientTls>,
    pub(crate) connect_to: Vec<ConnectTo>,
}

impl Reach {
    /// `url` parsed, with the run's TLS settings and connect-to rule.
    pub(crate) fn url(&self, url: &str) -> Result<Target, TargetError> {
        self.target(Target::parse(url)?)
    }

    /// `target` with the run's TLS settings and connect-to rule.
    pub(crate) fn target(&self, target: Target) -> Result<Target, TargetError> {
        Ok(target
            .with_tls(self.tls.as_ref())?
            .connect_to(&self.connect_to))
    }
}

impl Target {
    /// Parse `http[s]://host[:port][/path]` (port 80 or 443 by default).
    pub(crate) fn parse(url: &str) -> Result<Target, TargetError> {
        // The URL is shown in the error: never with its credentials.
        let bad = |reason: &str| TargetError::Bad {
            url: crate::redact::url(url),
            reason: reason.to_string(),
        };
        let trimmed = url.trim();
        let (https, rest) = if let Some(rest) = trimmed.strip_prefix("http://") {
            (false, rest)
        } else if let Some(rest) = trimmed.strip_prefix("https://") {
            (true, rest)
        } else {
            return Err(bad("expected http://host[:port][/path] or https://..."));
        };
        let (authority, path) = match rest.find(['/', '?', '#']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if path.contains(['?', '#']) {
            return Err(bad(
                "a URL here may not carry a query or fragment: a token there would be recorded; pass it with -H 'Name: value'",
            ));
        }
        if authority.is_empty() {
            return Err(bad("no host"));
        }
        if authority.contains('@') {
            return Err(bad(
                "user info in the URL is not supported (it would be recorded): pass credentials with -H 'Authorization: ...'",
            ));
        }
        let default_port = if https { 443 } else { 80 };
        let (host, port) =
            split_host_port(authority, default_port).ok_or_else(|| bad("bad port"))?;
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let scheme = if https { "https" } else { "http" };
        Ok(Target {
            url: format!("{scheme}://{authority}{}", path.trim_end_matches('/')),
            https,
            tls: None,
            authority: authority.to_string(),
            host: host.to_string(),
            port,
            base_path: path.trim_end_matches('/').to_string(),
            dial_to: None,
        })
    }

    /// Apply the first `--connect-to` rule for this host and port (host
    /// names compared without case), if any.
    pub(crate) fn connect_to(mut self, rules: &[ConnectTo]) -> Target {
        self.dial_to = rules
            .iter()
            .find(|r| r.port == self.port && r.host.eq_ignore_ascii_case(&self.host))
            .map(|r| (r.to_host.clone(), r.to_port));
        self
    }

    /// `host:port` as connections dial it, when a `--connect-to` rule
    /// changed it (for the run's notes).
    pub(crate) fn redirected(&self) -> Option<String> {
        self.dial_to.as_ref().map(|(h, p)| format!("{h}:{p}"))
    }

    /// The URL of `path` (starting with `/`) on this target.
    pub(crate) fn join(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// Attach the run's TLS settings (for an `https://` URL; nothing to do
    /// for `http://`). Without settings an https URL trusts the system's
    /// roots only.
    pub(crate) fn with_tls(mut self, tls: Option<&ClientTls>) -> Result<Target, TargetError> {
        if !self.https {
            return Ok(self);
        }
        let tls = match tls {
            Some(tls) => tls.clone(),
            None => ClientTls::new(None, false).map_err(|e| TargetError::Bad {
                url: self.url.clone(),
                reason: e.to_string(),
            })?,
        };
        let name = self.server_name()?;
        self.tls = Some(TlsDial { tls, name });
        Ok(self)
    }

    /// How connections to this URL speak TLS: `None` for `http://`.
    pub(crate) fn dial(&self) -> Option<TlsDial> {
        self.tls.clone()
    }

    /// The name the server's certificate must carry: the host as written
    /// (an IP address is checked against the certificate's IP entries).
    pub(crate) fn server_name(&self) -> Result<ServerName<'static>, TargetError> {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        ServerName::try_from(host.to_string()).map_err(|e| TargetError::Bad {
            url: self.url.clone(),
            reason: format!("`{host}` is not a valid TLS server name: {e}"),
        })
    }

    /// Resolve the host (or the `--connect-to` host in its place); IPv4
    /// first, as `localhost` often resolves to ::1 first while servers
    /// commonly listen on 0.0.0.0 only.
    pub(crate) async fn resolve(&self) -> Result<SocketAddr, TargetError> {
        let (host, port) = match &self.dial_to {
            Some((host, port)) => (host, *port),
            None => (&self.host, self.port),
        };
        let err = |reason: String| TargetError::Resolve {
            url: self.url.clone(),
            host: host.clone(),
            reason,
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| err(e.to_string()))?
            .collect();
        addrs
            .iter()
            .find(|a| a.is_ipv4())
            .or_else(|| addrs.first())
            .copied()
            .ok_or_else(|| err("no addresses".into()))
    }
}

fn split_host_port(authority: &str, default_port: u16) -> Option<(&str, u16)> {
    if let Some(end) = authority.strip_prefix('[').and_then(|r| r.find(']')) {
        // [v6]:port
        let host = &authority[..end + 2];
        return match &authority[end + 2..] {
            "" => Some((host, default_port)),
            p => Some((host, p.strip_prefix(':')?.parse().ok()?)),
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host, port.parse().ok()?)),
        None => Some((authority, default_port)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_ports_and_base_paths() {
        let t = Target::parse("http://localhost:8443").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.base_path.as_str()),
            ("localhost", 8443, "")
        );
        assert_eq!(t.join("/metrics"), "http://localhost:8443/metrics");
        let t = Target::parse("http://example.com/api/").unwrap();
        assert_eq!(
            (t.authority.as_str(), t.port, t.base_path.as_str()),
            ("example.com", 80, "/api")
        );
        let t = Target::parse("http://[::1]:9000").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("[::1]", 9000));
        assert!(!t.https);
    }

    #[test]
    fn https_urls_default_to_443_and_name_the_server() {
        let t = Target::parse("https://auth.internal/api/").unwrap();
        assert!(t.https);
        assert_eq!((t.port, t.url.as_str()), (443, "https://auth.internal/api"));
        assert_eq!(t.join("/metrics"), "https://auth.internal/api/metrics");
        assert_eq!(
            t.server_name().unwrap(),
            ServerName::try_from("auth.internal").unwrap()
        );
        let t = Target::parse("https://[::1]:8443").unwrap();
        assert_eq!(t.port, 8443);
        assert!(matches!(t.server_name().unwrap(), ServerName::IpAddress(_)));
    }

    #[test]
    fn refuses_what_it_cannot_speak() {
        for (url, why) in [
            ("ftp://x", "expected http://"),
            ("localhost:8443", "expected http://"),
            ("http://:80", "no host"),
            ("http://x:99999", "bad port"),
            ("http://x/?a=1", "query"),
            ("http://u:pw@x", "user info"),
        ] {
            let err = Target::parse(url).unwrap_err().to_string();
            // Quoted as shown: user info and query values redacted.
            let shown = crate::redact::url(url);
            assert!(err.contains(why) && err.contains(&shown), "{url}: {err}");
        }
        let err = Target::parse("http://u:pw@x/?token=t0k")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("pw") && !err.contains("t0k"), "{err}");
    }

    #[tokio::test]
    async fn a_connect_to_rule_changes_where_connections_go_not_the_name() {
        let rules: Vec<ConnectTo> = vec![
            "other:443:127.0.0.2:1".parse().unwrap(),
            "Auth.Staging.invalid:8443:127.0.0.1:9001".parse().unwrap(),
        ];
        // Never looked up: the rule's address is used in its place.
        let t = Target::parse("https://auth.staging.invalid:8443/api")
            .unwrap()
            .connect_to(&rules);
        assert_eq!(
            t.resolve().await.unwrap(),
            "127.0.0.1:9001".parse().unwrap()
        );
        assert_eq!(t.authority, "auth.staging.invalid:8443");
        assert_eq!(
            t.server_name().unwrap(),
            ServerName::try_from("auth.staging.invalid").unwrap()
        );
        assert_eq!(t.redirected().as_deref(), Some("127.0.0.1:9001"));
        // Another port of the same host is not redirected.
        let t = Target::parse("http://auth.staging.invalid:80")
            .unwrap()
            .connect_to(&rules);
        assert_eq!(t.redirected(), None);
    }

    #[tokio::test]
    async fn localhost_resolves_to_ipv4_first() {
        let t = Target::parse("http://localhost:1").unwrap();
        let addr = t.resolve().await.unwrap();
        assert!(addr.is_ipv4() || addr.ip().is_loopback(), "{addr}");
    }
}
