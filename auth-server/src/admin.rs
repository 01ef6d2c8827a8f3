//! Operator routes: `GET /debug/pprof/heap`, the live heap profile in the
//! format Go services serve at the same path.
//!
//! A heap profile names the code and its memory, so it is answered only
//! to a client on loopback (a shell in the pod, `kubectl port-forward`)
//! or one that presents `authentication.service.admin_token`; anyone else
//! gets 403 `clw-forbidden`. The token is compared in constant time and
//! never logged; the profile is never written to the logs either.

use std::net::IpAddr;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Response};
use http_body_util::Full;

use crate::config::Secret;
use crate::error::{error_response, ErrorCode};
use crate::profiling::DumpError;
use crate::state::State;

type Resp = Response<Full<Bytes>>;

/// Whether a request may read operator data: from loopback, or with
/// `Authorization: Bearer <admin token>` (exactly one such header).
pub(crate) fn allowed(peer: Option<IpAddr>, headers: &HeaderMap, token: &Secret) -> bool {
    if peer.is_some_and(|ip| ip.to_canonical().is_loopback()) {
        return true;
    }
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return false;
    };
    let Some((scheme, presented)) = value.to_str().ok().and_then(|v| v.split_once(' ')) else {
        return false;
    };
    scheme.eq_ignore_ascii_case("bearer") && token.matches(presented.trim())
}

/// `GET /debug/pprof/heap`.
pub(crate) async fn heap_profile(peer: Option<IpAddr>, headers: &HeaderMap, state: &State) -> Resp {
    if !allowed(peer, headers, &state.config.service.admin_token) {
        return error_response(
            ErrorCode::Forbidden,
            "GET /debug/pprof/heap answers only on loopback or with Authorization: Bearer <authentication.service.admin_token>",
        );
    }
    if let Some(why) = state.heap_profiling.why_not() {
        return error_response(ErrorCode::HeapProfileOff, why);
    }
    match crate::profiling::dump_pprof().await {
        Ok(pprof) => {
            let mut resp = Response::new(Full::new(Bytes::from(pprof)));
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            h.insert(
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"heap.pb.gz\""),
            );
            resp
        }
        Err(DumpError::Busy) => {
            let mut resp = error_response(ErrorCode::Unavailable, &DumpError::Busy.to_string());
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            resp
        }
        Err(e) => {
            tracing::warn!("GET /debug/pprof/heap: {e}");
            error_response(ErrorCode::HeapProfileFailed, &e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const TOKEN: &str = "an-admin-token-of-some-length";

    fn auth(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn loopback_is_allowed_without_a_token() {
        let none = HeaderMap::new();
        for ip in [
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V4(Ipv4Addr::new(127, 3, 2, 1)),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
            IpAddr::V6(Ipv4Addr::LOCALHOST.to_ipv6_mapped()),
        ] {
            assert!(allowed(Some(ip), &none, &Secret::default()), "{ip}");
        }
    }

    #[test]
    fn a_remote_peer_needs_the_exact_token() {
        let remote = Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7)));
        let token = Secret::new(TOKEN);
        assert!(!allowed(remote, &HeaderMap::new(), &token));
        assert!(!allowed(None, &HeaderMap::new(), &token));
        assert!(!allowed(
            remote,
            &auth("Bearer wrong-token-of-some-len"),
            &token
        ));
        assert!(!allowed(remote, &auth(&format!("Basic {TOKEN}")), &token));
        assert!(!allowed(remote, &auth(&format!("Bearer {TOKEN}x")), &token));
        assert!(allowed(remote, &auth(&format!("Bearer {TOKEN}")), &token));
        assert!(allowed(remote, &auth(&format!("bearer  {TOKEN}")), &token));
        // No token configured: nothing a remote client sends is enough.
        assert!(!allowed(remote, &auth("Bearer "), &Secret::default()));
        // Two Authorization headers: which one counts is ambiguous.
        let mut two = auth(&format!("Bearer {TOKEN}"));
        two.append(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        assert!(!allowed(remote, &two, &token));
    }

    /// The handler as a remote client meets it (the tests cannot connect
    /// from off loopback): 403 with a JSON code without the token; with
    /// it, past the check (to 404 here: this process has no profiler).
    #[tokio::test]
    async fn the_route_answers_a_remote_peer_403_unless_it_has_the_token() {
        use crate::config::Config;
        let mut cfg = Config::for_tests();
        cfg.service.admin_token = Secret::new(TOKEN);
        let users = crate::users::UserStore::from_config(&cfg.users).unwrap();
        let state = State::new(cfg, users, crate::memory::detect_limit(None));
        let remote = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));

        let resp = heap_profile(remote, &auth("Bearer not-the-admin-token"), &state).await;
        assert_eq!(resp.status(), http::StatusCode::FORBIDDEN);
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
        let body = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap()
            .to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["code"], "clw-forbidden");
        assert!(!body.to_string().contains(TOKEN));

        let resp = heap_profile(remote, &auth(&format!("Bearer {TOKEN}")), &state).await;
        assert_eq!(resp.status(), http::StatusCode::NOT_FOUND);
    }
}
