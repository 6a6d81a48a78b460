//! `POST /api/v1/chain`: the chain's read methods, for browsers (and `mediblock verify`)
//! that check anchors themselves. The relay forwards a JSON-RPC request to its node only
//! when the method reads: a browser must never reach the relay's signing node directly —
//! on the embedded chain that node holds the relay's unlocked account (`eth_sendTransaction`
//! would act as the relay) and answers `evm_snapshot`/`evm_revert` (anyone could rewind the
//! chain). Everything else is refused with `403 rpc_method_not_allowed`, before the node
//! is asked.
//!
//! A proxy is the relay's word about the chain, so it is what `/api/v1/info` announces only
//! for the embedded chain, which the relay runs anyway; a relay on a public chain announces
//! the operator's `browser_rpc_url` (a node the relay does not control), and a person can
//! always set a node of their own in the browser.

use std::borrow::Cow;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;

/// Where the proxy is served, as `GET /api/v1/info` announces it for the embedded chain
/// (relative: the browser resolves it against the page's origin).
pub const PATH: &str = "/api/v1/chain";

/// How many times the other limited routes' rate and burst each client address gets for
/// chain reads (its own bucket: a browser checking a chart makes a few reads per record, and
/// must not use up the budget of sign-in and submissions).
pub const CHAIN_READS_FACTOR: u32 = 50;

/// The methods forwarded: what the browser's check (`eth_chainId`, `eth_blockNumber`,
/// `eth_call`, `eth_getLogs`) and `mediblock verify` (receipts, blocks) read. None of them
/// changes the chain or uses an account.
pub const READ_METHODS: [&str; 10] = [
    "eth_chainId",
    "net_version",
    "eth_blockNumber",
    "eth_call",
    "eth_getLogs",
    "eth_getCode",
    "eth_getTransactionReceipt",
    "eth_getTransactionByHash",
    "eth_getBlockByNumber",
    "eth_getBlockByHash",
];

/// One JSON-RPC 2.0 request (batches are refused).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RpcRequest {
    /// Always `"2.0"`.
    jsonrpc: String,
    /// The method.
    method: String,
    /// Its parameters (an array; absent for none).
    #[serde(default)]
    params: Option<Value>,
    /// The caller's id, echoed back.
    #[serde(default)]
    id: Value,
}

/// `POST /api/v1/chain`: forwards a read method to the relay's node and answers as a
/// JSON-RPC server does (`result`, or the node's `error` with its code, message and data,
/// so that a reverted `eth_call` reads as one).
pub async fn proxy(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    // A batch (a JSON array) is not a request: `invalid_input`, like any other shape.
    let req: RpcRequest = super::json_body(body)?;
    if req.jsonrpc != "2.0" {
        return Err(ApiError::client(
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "jsonrpc must be \"2.0\"",
        ));
    }
    if !READ_METHODS.contains(&req.method.as_str()) {
        return Err(ApiError::client(
            StatusCode::FORBIDDEN,
            "rpc_method_not_allowed",
            format!(
                "{:?} is not one of the chain's read methods this relay forwards ({})",
                req.method,
                READ_METHODS.join(", ")
            ),
        ));
    }
    let params = match req.params {
        None => json!([]),
        Some(p @ Value::Array(_)) => p,
        Some(_) => {
            return Err(ApiError::client(
                StatusCode::BAD_REQUEST,
                "invalid_input",
                "params must be an array",
            ));
        }
    };
    let chain = state.chain.as_ref().ok_or_else(|| {
        ApiError::client(
            StatusCode::SERVICE_UNAVAILABLE,
            "chain_unavailable",
            "this relay does not anchor on a chain",
        )
    })?;
    use alloy::providers::Provider as _;
    let answer: Result<Value, _> = chain
        .provider()
        .raw_request(Cow::Owned(req.method), params)
        .await;
    match answer {
        Ok(result) => Ok(Json(
            json!({"jsonrpc": "2.0", "id": req.id, "result": result}),
        )),
        Err(e) => match e.as_error_resp() {
            Some(err) => Ok(Json(json!({
                "jsonrpc": "2.0",
                "id": req.id,
                "error": {"code": err.code, "message": err.message, "data": err.data},
            }))),
            None => {
                tracing::warn!(error = %e, "the chain's node did not answer a forwarded read");
                Err(ApiError::client(
                    StatusCode::BAD_GATEWAY,
                    "chain_unavailable",
                    "the chain's node did not answer",
                ))
            }
        },
    }
}
