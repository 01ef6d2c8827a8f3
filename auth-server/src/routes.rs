//! Request routing and the handlers. Every response is JSON (but
//! /metrics); every error carries a stable code (see [`crate::error`]).

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::cache::{InsertError, Lookup};
use crate::error::{error_response, ErrorCode};
use crate::memory::alloc_stats;
use crate::state::{Phase, State};
use crate::token::{self, TokenDigest};

type Resp = Response<Full<Bytes>>;

/// The client's address, which the server puts in each request's
/// extensions for the handlers (the login throttle keys on it; the heap
/// profile answers loopback without a token). It lives here, with its readers,
/// so the server depends on the routes and not the other way round.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientAddr(pub(crate) IpAddr);

/// A refusal found before the handler's main work: small to pass around,
/// turned into a response at the end.
struct Reject(ErrorCode, String);

impl From<Reject> for Resp {
    fn from(r: Reject) -> Resp {
        error_response(r.0, &r.1)
    }
}

/// Routes a request and counts it under its route.
pub(crate) async fn handle(req: Request<Incoming>, state: Arc<State>) -> Resp {
    let started = Instant::now();
    let method = req.method().clone();
    let (route, resp) = match (req.uri().path(), &method) {
        ("/auth/login", &Method::POST) => ("/auth/login", login(req, &state).await),
        ("/auth/validate", &Method::GET) => ("/auth/validate", validate(&req, &state)),
        ("/auth/refresh", &Method::POST) => ("/auth/refresh", refresh(&req, &state)),
        ("/auth/logout", &Method::POST) => ("/auth/logout", logout(&req, &state)),
        ("/health", &Method::GET) => ("/health", health(&state)),
        ("/ready", &Method::GET) => ("/ready", ready(&state)),
        ("/metrics", &Method::GET) => ("/metrics", metrics(&state)),
        ("/debug/pprof/heap", &Method::GET) => {
            let peer = req.extensions().get::<ClientAddr>().map(|a| a.0);
            (
                "/debug/pprof/heap",
                crate::admin::heap_profile(peer, req.headers(), &state).await,
            )
        }
        (path, _) => match route_of(path) {
            "other" => (
                "other",
                error_response(ErrorCode::NotFound, "no such route"),
            ),
            known => (
                known,
                error_response(
                    ErrorCode::MethodNotAllowed,
                    "method not allowed on this route",
                ),
            ),
        },
    };
    state
        .metrics
        .observe(route, &method, resp.status(), started.elapsed());
    resp
}

/// The metrics label for a path.
pub(crate) fn route_of(path: &str) -> &'static str {
    crate::metrics::ROUTES
        .iter()
        .find(|r| **r == path)
        .copied()
        .unwrap_or("other")
}

fn json(status: StatusCode, body: Vec<u8>) -> Resp {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

#[derive(Deserialize)]
struct LoginRequest<'a> {
    #[serde(borrow)]
    username: Cow<'a, str>,
    #[serde(borrow)]
    password: Cow<'a, str>,
    #[serde(borrow, default)]
    claims: Option<&'a RawValue>,
}

/// Reads the body within `body_limit`, or answers 413.
async fn read_body(req: Request<Incoming>, state: &State) -> Result<Bytes, Reject> {
    let limit = state.config.service.body_limit;
    let too_large = || {
        Reject(
            ErrorCode::PayloadTooLarge,
            format!("request body exceeds authentication.service.body_limit ({limit} bytes)"),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    match Limited::new(req.into_body(), limit as usize)
        .collect()
        .await
    {
        Ok(body) => Ok(body.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(e) => Err(Reject(
            ErrorCode::BadRequest,
            format!("cannot read body: {e}"),
        )),
    }
}

// Long: the login path in the order its rules need (body shape, throttle
// before the password, failures charged, session stored), kept in one place
// so that order stays visible.
async fn login(req: Request<Incoming>, state: &Arc<State>) -> Resp {
    state.cache.on_request();
    let client = req
        .extensions()
        .get::<ClientAddr>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.0);
    let body = match read_body(req, state).await {
        Ok(b) => b,
        Err(reject) => return reject.into(),
    };
    // serde also reads a struct from its sequence form (`["user","pw"]`):
    // an accident of the derive, not an API, so it is refused up front.
    if body.trim_ascii_start().first() != Some(&b'{') {
        return error_response(
            ErrorCode::BadRequest,
            "the login body must be a JSON object {\"username\",\"password\",\"claims\"?}",
        );
    }
    let parsed: LoginRequest<'_> = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => {
            return error_response(
                ErrorCode::BadRequest,
                &format!("expected {{\"username\",\"password\",\"claims\"?}}: {e}"),
            )
        }
    };
    let claims: Box<str> = match parsed.claims.map(RawValue::get) {
        None | Some("null") => "".into(),
        Some(raw) if !raw.starts_with('{') => {
            return error_response(ErrorCode::BadRequest, "claims must be a JSON object");
        }
        Some(raw) if raw.len() as u64 > state.config.session.max_claims_size => {
            return error_response(
                ErrorCode::PayloadTooLarge,
                &format!(
                    "claims are {} bytes, over authentication.session.max_claims_size ({})",
                    raw.len(),
                    state.config.session.max_claims_size
                ),
            );
        }
        Some(raw) => match crate::input::lone_surrogate(raw) {
            Some(at) => {
                return error_response(
                    ErrorCode::BadRequest,
                    &format!(
                        "claims hold a lone UTF-16 surrogate escape at byte {at}: not a character"
                    ),
                )
            }
            None => raw.into(),
        },
    };
    if state.config.sheds_on_pressure() && state.under_pressure() {
        return error_response(
            ErrorCode::MemoryPressure,
            "memory is above the pressure threshold; new sessions are refused until it falls",
        );
    }
    // Before the password check, whatever the password: a throttled
    // guesser must learn nothing, not even that a guess was right.
    if let Err(t) = state.throttle.check(&parsed.username, client) {
        state.metrics.throttled(t.scope);
        return throttled_response(t.retry_after);
    }
    let user = if state.inline_hashing {
        state.users.verify(&parsed.username, &parsed.password)
    } else {
        let (s, u, p) = (
            state.clone(),
            // Copies: the name is still needed to charge a failure.
            parsed.username.to_string(),
            parsed.password.to_string(),
        );
        tokio::task::spawn_blocking(move || s.users.verify(&u, &p))
            .await
            .unwrap_or(None)
    };
    let Some(user) = user else {
        state.metrics.login_failures.inc();
        state.throttle.failed(&parsed.username, client);
        return error_response(
            ErrorCode::InvalidCredentials,
            "unknown user or wrong password",
        );
    };
    let (token, digest) = token::issue();
    match state.cache.insert(digest, user, claims) {
        Ok(expires_in) => {
            state.metrics.logins.inc();
            token_response(&token, expires_in)
        }
        Err(InsertError::Overflow) => error_response(
            ErrorCode::SessionOverflow,
            "session cache is full and eviction_policy is reject",
        ),
        Err(InsertError::TooLarge { weight, max_bytes }) => error_response(
            ErrorCode::SessionTooLarge,
            &format!(
                "this session weighs {weight} bytes (claims plus {} bytes of entry), more than the whole cache may hold (authentication.session.cache.max_bytes = {max_bytes})",
                crate::cache::ENTRY_OVERHEAD
            ),
        ),
        Err(InsertError::Disabled) => error_response(
            ErrorCode::Unavailable,
            "session cache is disabled (authentication.session.cache.enabled=false)",
        ),
    }
}

/// 429 `clw-auth-throttled` with `Retry-After` in whole seconds (at least 1).
fn throttled_response(retry_after: std::time::Duration) -> Resp {
    let secs = retry_after.as_millis().div_ceil(1000).max(1) as u64;
    let mut resp = error_response(
        ErrorCode::Throttled,
        &format!("too many failed logins for this user or from this address; retry in {secs} s"),
    );
    let mut buf = itoa::Buffer::new();
    resp.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_str(buf.format(secs)).expect("digits are a valid header value"),
    );
    resp
}

fn token_response(token: &str, expires_in: u64) -> Resp {
    let body = serde_json::to_vec(&serde_json::json!({ "token": token, "expires_in": expires_in }))
        .expect("serializable");
    json(StatusCode::OK, body)
}

/// The session digest from `Authorization: Bearer TOKEN`.
fn bearer(req: &Request<Incoming>) -> Result<TokenDigest, Reject> {
    let unknown = |why: &str| Reject(ErrorCode::SessionUnknown, why.to_string());
    let mut values = req.headers().get_all(header::AUTHORIZATION).iter();
    let first = values.next();
    if values.next().is_some() {
        // Which one a proxy or the next hop would pick is anyone's guess.
        return Err(Reject(
            ErrorCode::BadRequest,
            "more than one Authorization header".into(),
        ));
    }
    let value = first
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| unknown("missing Authorization: Bearer token"))?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(unknown("expected Authorization: Bearer TOKEN"));
    }
    Ok(TokenDigest::of(token.trim()))
}

fn lookup_error<T>(lookup: Lookup<T>) -> Resp {
    match lookup {
        Lookup::Expired => error_response(ErrorCode::SessionExpired, "session expired"),
        Lookup::Evicted => error_response(
            ErrorCode::SessionEvicted,
            "session was evicted from the cache",
        ),
        _ => error_response(ErrorCode::SessionUnknown, "no such session"),
    }
}

fn validate(req: &Request<Incoming>, state: &State) -> Resp {
    state.cache.on_request();
    let digest = match bearer(req) {
        Ok(d) => d,
        Err(reject) => return reject.into(),
    };
    let found = state.cache.with_session(&digest, |s| {
        // Claims are stored as validated JSON text; splice them in rather
        // than parse them again.
        let mut body = Vec::with_capacity(48 + s.user.len() + s.claims.len());
        body.extend_from_slice(b"{\"user\":");
        serde_json::to_writer(&mut body, s.user).expect("string serializes");
        body.extend_from_slice(b",\"claims\":");
        body.extend_from_slice(if s.claims.is_empty() {
            b"null"
        } else {
            s.claims.as_bytes()
        });
        body.extend_from_slice(format!(",\"expires_in\":{}}}", s.expires_in).as_bytes());
        body
    });
    match found {
        Lookup::Found(body) => json(StatusCode::OK, body),
        other => lookup_error(other),
    }
}

fn refresh(req: &Request<Incoming>, state: &State) -> Resp {
    state.cache.on_request();
    let old = match bearer(req) {
        Ok(d) => d,
        Err(reject) => return reject.into(),
    };
    let (token, digest) = token::issue();
    match state.cache.rotate(&old, digest) {
        Lookup::Found(expires_in) => token_response(&token, expires_in),
        other => lookup_error(other),
    }
}

fn logout(req: &Request<Incoming>, state: &State) -> Resp {
    state.cache.on_request();
    let digest = match bearer(req) {
        Ok(d) => d,
        Err(reject) => return reject.into(),
    };
    if state.cache.remove(&digest) {
        let mut resp = Response::new(Full::new(Bytes::new()));
        *resp.status_mut() = StatusCode::NO_CONTENT;
        resp
    } else {
        lookup_error(state.cache.with_session(&digest, |_| ()))
    }
}

fn health(state: &State) -> Resp {
    let rss = crate::memory::rss_bytes().unwrap_or_else(|| state.last_rss());
    let alloc = alloc_stats();
    let stats = state.cache.stats();
    let limit = state.limit.bytes;
    let percent = if limit > 0 {
        rss as f64 * 100.0 / limit as f64
    } else {
        0.0
    };
    let pressure = state.pressure();
    let status = match state.phase() {
        Phase::Starting => "starting",
        Phase::Draining => "draining",
        Phase::Serving if !pressure.causes.is_empty() => "degraded",
        Phase::Serving => "healthy",
    };
    let evictions: serde_json::Map<String, serde_json::Value> = crate::cache::EvictionCause::ALL
        .iter()
        .zip(stats.evictions)
        .map(|(c, n)| (c.as_str().to_string(), n.into()))
        .collect();
    let cache_cfg = &state.config.session.cache;
    let body = serde_json::json!({
        "status": status,
        "memory_usage": {
            "used_mb": rss >> 20,
            "limit_mb": limit >> 20,
            "percent": (percent * 100.0).round() / 100.0,
            "used_bytes": rss,
            "limit_bytes": limit,
            "limit_source": state.limit.source,
            "pressure_threshold_percent": state.config.memory.pressure_threshold,
        },
        "session_cache": {
            "active_sessions": stats.entries,
            "max_capacity": stats.max_capacity,
            "memory_bytes": stats.bytes,
            "max_bytes": cache_cfg.max_bytes,
            "evictions": evictions,
        },
        "mode": cache_cfg.mode,
        "leak": state.cache.leak().map(|k| k.as_str()),
        "leaked_bytes": stats.leaked_bytes,
        "allocator": alloc,
        "pressure": pressure,
    });
    json(
        StatusCode::OK,
        serde_json::to_vec(&body).expect("serializable"),
    )
}

fn ready(state: &State) -> Resp {
    let pressure = state.pressure();
    match state.phase() {
        Phase::Serving if !pressure.causes.is_empty() => {
            let why: Vec<String> = pressure
                .causes
                .iter()
                .map(|c| format!("{}: {}", c.cause, c.message))
                .collect();
            error_response(
                ErrorCode::MemoryPressure,
                &format!(
                    "memory pressure ({}); not taking new traffic",
                    why.join("; ")
                ),
            )
        }
        Phase::Serving => json(StatusCode::OK, br#"{"ready":true}"#.to_vec()),
        Phase::Starting => error_response(ErrorCode::Unavailable, "starting"),
        Phase::Draining => error_response(ErrorCode::Unavailable, "draining: shutting down"),
    }
}

fn metrics(state: &State) -> Resp {
    let body = state.metrics.render(
        &state.cache.stats(),
        &alloc_stats(),
        state.limit.bytes,
        (state.under_pressure(), state.heap.outside_cache().is_some()),
    );
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}
