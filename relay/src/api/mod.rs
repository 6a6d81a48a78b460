//! HTTP handlers, one module per resource. Each handler has one shape: extract (and
//! authenticate), load, call the pure core, persist, respond.

pub mod audit;
pub mod auth;
pub mod chain_rpc;
pub mod events;
pub mod ops;
pub mod proofs;
pub mod records;
pub mod submissions;
pub mod templates;
pub mod tickets;
pub mod users;

use axum::body::{Bytes, HttpBody as _};
use axum::extract::Request;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Parses a JSON body, mapping a refused or unreadable body to the API's error shape:
/// `413 payload_too_large`, `400 malformed_json` or `400 invalid_input`.
pub(crate) fn json_body<T: DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let body = body.map_err(body_error)?;
    serde_json::from_slice(&body).map_err(|e| {
        let code = if e.is_data() {
            "invalid_input"
        } else {
            "malformed_json"
        };
        ApiError::client(StatusCode::BAD_REQUEST, code, e.to_string())
    })
}

/// Maps a refused body (too large, too slow, unreadable) to the API's error shape.
pub(crate) fn body_error(rejection: BytesRejection) -> ApiError {
    if timed_out(&rejection) {
        ApiError::client(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "the request body did not arrive in time",
        )
    } else if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::client(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "request bodies are limited to {} bytes",
                crate::MAX_BODY_BYTES
            ),
        )
    } else {
        ApiError::client(rejection.status(), "bad_request", rejection.body_text())
    }
}

/// Whether a body failed because the listener's body deadline passed
/// ([`crate::listener::BodyTimedOut`] somewhere in its chain of causes).
fn timed_out(rejection: &BytesRejection) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(rejection);
    while let Some(e) = cause {
        if e.is::<crate::listener::BodyTimedOut>() {
            return true;
        }
        cause = e.source();
    }
    false
}

/// Whether `headers` say the body is JSON (`application/json`, any parameters).
pub(crate) fn says_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// `415 unsupported_media_type`.
pub(crate) fn unsupported_media_type() -> ApiError {
    ApiError::client(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "send the body as JSON, with Content-Type: application/json",
    )
}

/// Middleware of the endpoints that take a JSON body: `415 unsupported_media_type` unless
/// the request says `Content-Type: application/json`, before the body is read.
pub(crate) async fn require_json(req: Request, next: Next) -> Response {
    if says_json(req.headers()) {
        next.run(req).await
    } else {
        unsupported_media_type().into_response()
    }
}

/// Gives the empty `404` and `405` answers of routing and of the static files the API's
/// error shape (`not_found`, `method_not_allowed`, keeping `Allow`). A handler's own
/// answers have a body and a content type, and pass unchanged.
pub(crate) async fn json_error_bodies(res: Response) -> Response {
    let (code, message) = match res.status() {
        StatusCode::NOT_FOUND => ("not_found", "no such resource"),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this resource does not take this method (see the Allow header)",
        ),
        _ => return res,
    };
    if res.headers().contains_key(header::CONTENT_TYPE) || res.body().size_hint().exact() != Some(0)
    {
        return res;
    }
    let mut answer = ApiError::client(res.status(), code, message).into_response();
    if let Some(allow) = res.headers().get(header::ALLOW) {
        answer.headers_mut().insert(header::ALLOW, allow.clone());
    }
    answer
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}
