//! Operations endpoints: liveness, readiness and version facts.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

use crate::AppState;

/// `GET /healthz`: the process is up.
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: the store answers, and the chain's node answers when the relay anchors.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    if let Err(e) = state.store.ping().await {
        tracing::warn!(error = %e, "store not ready");
        return (StatusCode::SERVICE_UNAVAILABLE, "store unavailable");
    }
    if let Some(chain) = &state.chain
        && let Err(e) = chain.ping().await
    {
        tracing::warn!(error = %e, "chain not ready");
        return (StatusCode::SERVICE_UNAVAILABLE, "chain unavailable");
    }
    (StatusCode::OK, "ready")
}

/// What `GET /api/v1/info` returns.
#[derive(Debug, Serialize)]
pub struct Info {
    /// The relay's version.
    pub version: &'static str,
    /// The protocol version its formats follow (`docs/PROTOCOL.md`).
    pub protocol: &'static str,
    /// The relay's public keys: clinicians seal initial transactions to the X25519 one.
    pub relay_keys: mediblock_protocol::keys::PublicKeys,
    /// EIP-155 chain id of the chain the relay anchors on (absent when it does not anchor).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain_id: Option<u64>,
    /// The block the registry was deployed in, when the relay knows it (it deployed it):
    /// where a browser's search for a record's event may start.
    pub registry_block: Option<u64>,
    /// The registry contract's address (0x-prefixed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    /// The relay's log on the registry: its records' events carry it, and a record's
    /// transaction id is unique only within it (absent when the relay does not anchor).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<u16>,
    /// The JSON-RPC URL the relay was configured with, for browsers that check anchors on
    /// chain themselves (absent when unknown; a browser may use its wallet instead).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpc_url: Option<String>,
}

/// `GET /api/v1/info`: what a client needs before talking to the relay.
pub async fn info(State(state): State<AppState>) -> Json<Info> {
    Json(Info {
        version: env!("CARGO_PKG_VERSION"),
        protocol: "v1",
        relay_keys: state.keys.relay.public(),
        chain_id: state.chain.as_ref().map(crate::chain::Chain::chain_id),
        registry: state.chain.as_ref().map(|c| c.registry().to_string()),
        log: state.chain.as_ref().map(crate::chain::Chain::log),
        registry_block: state
            .chain
            .as_ref()
            .and_then(crate::chain::Chain::deploy_block),
        rpc_url: state
            .chain
            .as_ref()
            .and_then(|c| c.rpc_url().map(str::to_owned)),
    })
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(
    State(state): State<AppState>,
) -> Result<([(axum::http::HeaderName, &'static str); 1], String), crate::error::ApiError> {
    let depth = state
        .store
        .queue_depth()
        .await
        .map_err(crate::error::ApiError::internal)?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        state.metrics.render(depth),
    ))
}

/// The OpenAPI document of this API (`relay/openapi/openapi.json`).
pub const OPENAPI: &str = include_str!("../../openapi/openapi.json");

/// `GET /api/v1/openapi.json`.
pub async fn openapi() -> ([(axum::http::HeaderName, &'static str); 1], &'static str) {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
}
