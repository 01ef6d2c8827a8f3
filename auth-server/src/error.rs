//! The service's error responses: a JSON object `{"code","message"}` with a
//! stable code, so clients (and clw-cli's error counts) can tell an expired
//! session from an evicted one from an overloaded service.

use bytes::Bytes;
use http::{header, Response, StatusCode};
use http_body_util::Full;
use serde::Serialize;

/// A stable error code and its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// Wrong user name or password.
    InvalidCredentials,
    /// The session's TTL or max age passed.
    SessionExpired,
    /// The cache evicted the session to stay within its bounds.
    SessionEvicted,
    /// No such session (never issued, logged out, or rotated).
    SessionUnknown,
    /// The cache is full under the `reject` policy.
    SessionOverflow,
    /// The session alone weighs more than the cache's `max_bytes`.
    SessionTooLarge,
    /// Memory is above the pressure threshold; logins are shed.
    MemoryPressure,
    /// The session cache is disabled, so no session can be created.
    Unavailable,
    /// The request took longer than `request_timeout`.
    Timeout,
    /// Too many failed logins for the user name or the client address.
    Throttled,
    /// Malformed request.
    BadRequest,
    /// Body or claims over the configured cap.
    PayloadTooLarge,
    /// No such route.
    NotFound,
    /// The route exists but not with this method.
    MethodNotAllowed,
    /// An operator route asked from off loopback without the admin token.
    Forbidden,
    /// `/debug/pprof/heap` while heap profiling is off or unavailable.
    HeapProfileOff,
    /// jemalloc could not dump the heap, or the dump could not be converted.
    HeapProfileFailed,
}

impl ErrorCode {
    /// The code as clients see it.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidCredentials => "clw-auth-invalid-credentials",
            ErrorCode::SessionExpired => "clw-session-expired",
            ErrorCode::SessionEvicted => "clw-session-evicted",
            ErrorCode::SessionUnknown => "clw-session-unknown",
            ErrorCode::SessionOverflow => "clw-session-overflow",
            ErrorCode::SessionTooLarge => "clw-session-too-large",
            ErrorCode::MemoryPressure => "clw-memory-pressure",
            ErrorCode::Unavailable => "clw-auth-503",
            ErrorCode::Timeout => "clw-auth-timeout",
            ErrorCode::Throttled => "clw-auth-throttled",
            ErrorCode::BadRequest => "clw-bad-request",
            ErrorCode::PayloadTooLarge => "clw-payload-too-large",
            ErrorCode::NotFound => "clw-not-found",
            ErrorCode::MethodNotAllowed => "clw-method-not-allowed",
            ErrorCode::Forbidden => "clw-forbidden",
            ErrorCode::HeapProfileOff => "clw-heap-profile-off",
            ErrorCode::HeapProfileFailed => "clw-heap-profile-failed",
        }
    }

    /// The HTTP status that goes with the code.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidCredentials
            | ErrorCode::SessionExpired
            | ErrorCode::SessionEvicted
            | ErrorCode::SessionUnknown => StatusCode::UNAUTHORIZED,
            ErrorCode::SessionOverflow
            | ErrorCode::MemoryPressure
            | ErrorCode::Unavailable
            | ErrorCode::Timeout => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Throttled => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
            ErrorCode::PayloadTooLarge | ErrorCode::SessionTooLarge => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ErrorCode::NotFound | ErrorCode::HeapProfileOff => StatusCode::NOT_FOUND,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::HeapProfileFailed => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: &'a str,
}

/// An error response ready to send.
pub(crate) fn error_response(code: ErrorCode, message: &str) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(&Body {
        code: code.as_str(),
        message,
    })
    .expect("serializing two strings cannot fail");
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = code.status();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    if code.status() == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
    }
    resp
}
