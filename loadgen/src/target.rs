//! `--target` and `--metrics-url`: plain `http://host[:port][/base]` URLs,
//! resolved once before the load starts so name lookups never sit on the
//! request path.

use std::net::SocketAddr;

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

/// A parsed, resolved `http://` URL.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// As the user wrote it, without a trailing slash.
    pub(crate) url: String,
    /// Host header value: `host[:port]` as written.
    pub(crate) authority: String,
    pub(crate) host: String,
    pub(crate) port: u16,
    /// Path prefix (`/api` in `http://h/api`), empty for the root; scenario
    /// paths are appended to it.
    pub(crate) base_path: String,
}

impl Target {
    /// Parse `http://host[:port][/path]`. https is refused with a clear
    /// reason: the lean client speaks plain HTTP/1.1 only.
    pub(crate) fn parse(url: &str) -> Result<Target, TargetError> {
        let bad = |reason: &str| TargetError::Bad {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let trimmed = url.trim();
        let rest = if let Some(rest) = trimmed.strip_prefix("http://") {
            rest
        } else if trimmed.starts_with("https://") {
            return Err(bad("https is not supported; clw-cli speaks plain HTTP/1.1 (put a TLS-terminating proxy in front, or target the service's plain port)"));
        } else {
            return Err(bad("expected http://host[:port][/path]"));
        };
        let (authority, path) = match rest.find(['/', '?', '#']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if path.contains(['?', '#']) {
            return Err(bad("a target may not carry a query or fragment"));
        }
        if authority.is_empty() {
            return Err(bad("no host"));
        }
        if authority.contains('@') {
            return Err(bad("user info in the URL is not supported"));
        }
        let (host, port) = split_host_port(authority).ok_or_else(|| bad("bad port"))?;
        if host.is_empty() {
            return Err(bad("no host"));
        }
        Ok(Target {
            url: format!("http://{authority}{}", path.trim_end_matches('/')),
            authority: authority.to_string(),
            host: host.to_string(),
            port,
            base_path: path.trim_end_matches('/').to_string(),
        })
    }

    /// The URL of `path` (starting with `/`) on this target.
    pub(crate) fn join(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// Resolve the host; IPv4 first, as `localhost` often resolves to ::1
    /// first while servers commonly listen on 0.0.0.0 only.
    pub(crate) async fn resolve(&self) -> Result<SocketAddr, TargetError> {
        let err = |reason: String| TargetError::Resolve {
            url: self.url.clone(),
            host: self.host.clone(),
            reason,
        };
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, self.port))
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

fn split_host_port(authority: &str) -> Option<(&str, u16)> {
    if let Some(end) = authority.strip_prefix('[').and_then(|r| r.find(']')) {
        // [v6]:port
        let host = &authority[..end + 2];
        return match &authority[end + 2..] {
            "" => Some((host, 80)),
            p => Some((host, p.strip_prefix(':')?.parse().ok()?)),
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host, port.parse().ok()?)),
        None => Some((authority, 80)),
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
    }

    #[test]
    fn refuses_what_it_cannot_speak() {
        for (url, why) in [
            ("https://x", "https is not supported"),
            ("localhost:8443", "expected http://"),
            ("http://:80", "no host"),
            ("http://x:99999", "bad port"),
            ("http://x/?a=1", "query"),
        ] {
            let err = Target::parse(url).unwrap_err().to_string();
            assert!(err.contains(why) && err.contains(url), "{url}: {err}");
        }
    }

    #[tokio::test]
    async fn localhost_resolves_to_ipv4_first() {
        let t = Target::parse("http://localhost:1").unwrap();
        let addr = t.resolve().await.unwrap();
        assert!(addr.is_ipv4() || addr.ip().is_loopback(), "{addr}");
    }
}
