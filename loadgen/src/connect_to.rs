//! `--connect-to HOST:PORT:TO_HOST:TO_PORT`: the rule itself, parsed from
//! the command line. [`crate::target::Target::connect_to`] applies it. A
//! module of its own so that the options depend on nothing that depends on
//! them.

/// `--connect-to HOST:PORT:TO_HOST:TO_PORT`, curl's and oha's syntax (k6's
/// `hosts`): connections for HOST:PORT go to TO_HOST:TO_PORT, while the
/// Host header and the name the certificate must carry stay HOST. For a
/// staging name that DNS does not point at the instance under test, one
/// pod behind a Service, or a port-forward. IPv6 hosts go in brackets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectTo {
    pub host: String,
    pub port: u16,
    pub to_host: String,
    pub to_port: u16,
}

impl std::str::FromStr for ConnectTo {
    type Err = String;

    fn from_str(text: &str) -> Result<ConnectTo, String> {
        let bad = |why: &str| {
            format!("`{text}` is not HOST:PORT:TO_HOST:TO_PORT ({why}), e.g. auth.staging:443:127.0.0.1:8443")
        };
        let (host, rest) = take_host(text).ok_or_else(|| bad("no host"))?;
        let (port, rest) = rest.split_once(':').ok_or_else(|| bad("no TO_HOST"))?;
        let (to_host, to_port) = take_host(rest).ok_or_else(|| match rest {
            "" => bad("no TO_HOST"),
            _ => bad("no TO_PORT"),
        })?;
        let number = |p: &str, what| p.parse::<u16>().map_err(|_| bad(what));
        Ok(ConnectTo {
            host: host.to_string(),
            port: number(port, "bad PORT")?,
            to_host: to_host.to_string(),
            to_port: number(to_port, "bad TO_PORT")?,
        })
    }
}

impl std::fmt::Display for ConnectTo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}:{}",
            self.host, self.port, self.to_host, self.to_port
        )
    }
}

/// A non-empty host (`[v6]` whole) and what follows its `:`.
fn take_host(text: &str) -> Option<(&str, &str)> {
    let end = if text.starts_with('[') {
        text.find(']')? + 1
    } else {
        text.find(':')?
    };
    let rest = text[end..].strip_prefix(':')?;
    (end > 0).then(|| (&text[..end], rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_to_rules_parse_as_curl_writes_them() {
        let r: ConnectTo = "auth.staging:443:127.0.0.1:8443".parse().unwrap();
        assert_eq!(
            (r.host.as_str(), r.port, r.to_host.as_str(), r.to_port),
            ("auth.staging", 443, "127.0.0.1", 8443)
        );
        assert_eq!(r.to_string(), "auth.staging:443:127.0.0.1:8443");
        let r: ConnectTo = "[::1]:443:[::1]:8443".parse().unwrap();
        assert_eq!((r.host.as_str(), r.to_host.as_str()), ("[::1]", "[::1]"));
        for (text, why) in [
            ("auth:443", "no TO_HOST"),
            (":443:127.0.0.1:1", "no host"),
            ("auth:x:127.0.0.1:1", "bad PORT"),
            ("auth:443:127.0.0.1:70000", "bad TO_PORT"),
            ("auth:443:127.0.0.1", "no TO_PORT"),
        ] {
            let err = text.parse::<ConnectTo>().unwrap_err();
            assert!(err.contains(why) && err.contains(text), "{text}: {err}");
        }
    }
}
