//! HTTP handlers. Each has one shape: extract, call the pure core, respond.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use serde::Serialize;

use crate::error::ApiError;
use mediblock_protocol::template::Template;

/// `GET /healthz`: the process is up.
pub async fn healthz() -> &'static str {
    "ok"
}

/// What `GET /api/v1/info` returns.
#[derive(Debug, Serialize)]
pub struct Info {
    /// The relay's version.
    pub version: &'static str,
    /// The protocol version its formats follow (`docs/PROTOCOL.md`).
    pub protocol: &'static str,
}

/// `GET /api/v1/info`: version facts a client checks before talking to the relay.
pub async fn info() -> Json<Info> {
    Json(Info {
        version: env!("CARGO_PKG_VERSION"),
        protocol: "v1",
    })
}

/// What `POST /api/v1/templates/check` returns for a valid template.
#[derive(Debug, Serialize)]
pub struct TemplateCheck {
    /// `id@version`.
    pub reference: String,
    /// keccak256 of the canonical encoding: what publication anchors on chain.
    pub hash: String,
    /// keccak256 of the template id: the contracts' key for it.
    pub chain_id: String,
    /// Names of the attributes that go on chain, in on-chain order.
    pub on_chain: Vec<String>,
}

/// `POST /api/v1/templates/check`: the template manager's pure check of a template (JSON),
/// answering its hash, or `400` with the first invariant it breaks. Stores nothing.
pub async fn check_template(
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<TemplateCheck>, ApiError> {
    let body = body.map_err(body_error)?;
    let template: Template = serde_json::from_slice(&body).map_err(|e| {
        let code = if e.is_data() {
            "invalid_input"
        } else {
            "malformed_json"
        };
        ApiError::client(StatusCode::BAD_REQUEST, code, e.to_string())
    })?;
    Ok(Json(TemplateCheck {
        reference: template.reference().to_string(),
        hash: hex(&template.hash()),
        chain_id: hex(&template.reference().id.chain_id()),
        on_chain: template
            .on_chain_attributes()
            .map(|a| a.name.to_string())
            .collect(),
    }))
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
