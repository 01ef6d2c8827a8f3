//! Following a redirect as a browser does: where the next request goes
//! and with which method.
//!
//! A form login answers `302 Found` with `Location: /me`; a client that
//! counted that as an error, or never went on to `/me` with the new
//! session cookie, would not be driving the service the way its users do.
//! The next request stays on the target's origin; another origin is an
//! error (a load test must not wander off to an identity provider nobody
//! asked it to load) unless a `--connect-to` rule sends that origin to the
//! same address, in which case it goes over the same connection with that
//! origin's Host header.

use url::{Origin, Url};

/// Whether `status` is a redirect with a `Location` to follow.
pub(crate) fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// The request a redirect leads to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Hop {
    /// `GET` after a 303, and after a 301/302 answering a POST (what
    /// browsers do); the same method after a 307/308.
    pub(crate) method: &'static str,
    /// Whether the body goes again (307/308 only).
    pub(crate) keep_body: bool,
    /// Path and query, from `/`.
    pub(crate) path: Vec<u8>,
    /// The origin's URL when it is not the target's (a `--connect-to`
    /// rule covers it); its `host:port` is the Host header.
    pub(crate) origin: Option<Url>,
}

impl Hop {
    /// The Host header for the hop, when it is not the target's.
    pub(crate) fn authority(&self) -> Option<String> {
        let o = self.origin.as_ref()?;
        let host = o.host_str()?;
        Some(match o.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        })
    }
}

/// Why a redirect could not be followed; the names are `by_error` kinds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RedirectError {
    #[error("redirect-without-location")]
    NoLocation,
    #[error("redirect-bad-location")]
    BadLocation,
    /// To an origin no `--connect-to` rule sends to the target's address.
    #[error("redirect-off-origin")]
    OffOrigin,
}

impl RedirectError {
    /// The `by_error` kind.
    pub(crate) fn as_str(&self) -> &'static str {
        match self {
            RedirectError::NoLocation => "redirect-without-location",
            RedirectError::BadLocation => "redirect-bad-location",
            RedirectError::OffOrigin => "redirect-off-origin",
        }
    }
}

/// Where a redirect answering `method current` with `status` and
/// `location` leads. `base` is the origin the current request went to;
/// `target` the run's; `also` the origins `--connect-to` sends to the
/// target's address.
pub(crate) fn next_hop(
    base: &Url,
    target: &Url,
    also: &[Origin],
    current: &[u8],
    method: &'static str,
    status: u16,
    location: Option<&[u8]>,
) -> Result<Hop, RedirectError> {
    let location = location.ok_or(RedirectError::NoLocation)?;
    let location = std::str::from_utf8(location)
        .map_err(|_| RedirectError::BadLocation)?
        .trim();
    let here = base
        .join(&String::from_utf8_lossy(current))
        .map_err(|_| RedirectError::BadLocation)?;
    let next = here
        .join(location)
        .map_err(|_| RedirectError::BadLocation)?;
    let origin = next.origin();
    let origin = if origin == target.origin() {
        None
    } else if also.contains(&origin) {
        Some(next.clone())
    } else {
        return Err(RedirectError::OffOrigin);
    };
    let path = path_and_query(&next);
    let to_get =
        status == 303 && method != "HEAD" || matches!(status, 301 | 302) && method == "POST";
    Ok(Hop {
        method: if to_get { "GET" } else { method },
        keep_body: !to_get && matches!(status, 307 | 308),
        path,
        origin,
    })
}

/// `url`'s path and query, as a request line carries them.
pub(crate) fn path_and_query(url: &Url) -> Vec<u8> {
    let mut path = url.path().as_bytes().to_vec();
    if let Some(q) = url.query() {
        path.push(b'?');
        path.extend_from_slice(q.as_bytes());
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn hop(location: &str, method: &'static str, status: u16) -> Result<Hop, RedirectError> {
        let t = url("http://127.0.0.1:3000/");
        let also = [url("http://auth.local:80/").origin()];
        next_hop(
            &t,
            &t,
            &also,
            b"/app/login?x=1",
            method,
            status,
            Some(location.as_bytes()),
        )
    }

    #[test]
    fn relative_and_absolute_locations_on_the_same_origin() {
        let h = hop("/me", "POST", 302).unwrap();
        assert_eq!(
            (h.method, h.keep_body, &h.path[..], h.origin),
            ("GET", false, &b"/me"[..], None)
        );
        assert_eq!(
            hop("home?tab=2", "GET", 301).unwrap().path,
            b"/app/home?tab=2"
        );
        assert_eq!(
            hop("http://127.0.0.1:3000/x", "GET", 302).unwrap().path,
            b"/x"
        );
        let h = hop("/retry", "POST", 307).unwrap();
        assert_eq!((h.method, h.keep_body), ("POST", true));
        assert_eq!(hop("/done", "PUT", 303).unwrap().method, "GET");
    }

    #[test]
    fn other_origins_need_a_connect_to_rule() {
        assert_eq!(
            hop("http://evil.example/", "GET", 302),
            Err(RedirectError::OffOrigin)
        );
        assert_eq!(
            hop("https://127.0.0.1:3000/", "GET", 302),
            Err(RedirectError::OffOrigin)
        );
        let h = hop("http://auth.local/cb?code=1", "GET", 302).unwrap();
        assert_eq!(h.authority().as_deref(), Some("auth.local"));
        assert_eq!(h.path, b"/cb?code=1");
        let t = url("http://127.0.0.1:3000/");
        assert_eq!(
            next_hop(&t, &t, &[], b"/", "GET", 302, None),
            Err(RedirectError::NoLocation)
        );
    }
}
