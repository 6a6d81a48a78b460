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

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
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

/// Maps a refused body (too large, unreadable) to the API's error shape.
fn body_error(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
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

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}
