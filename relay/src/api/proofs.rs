//! `GET /api/v1/records/{tid}/proof`: one record's proof file (format in `docs/PROOFS.md`),
//! for the roles that may read records; every export is written to the access log.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use mediblock_protocol::ids::TxId;
use mediblock_protocol::proof::ProofBundle;
use serde::Deserialize;

use super::auth::Caller;
use super::records::READERS;
use crate::error::ApiError;
use crate::proof::{ExportError, export};
use crate::{AppState, now};

/// Query of the proof endpoint.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofQuery {
    /// `included` (default) or `withheld`: leave the signed record out of the file.
    pub content: Option<String>,
}

/// `GET /api/v1/records/{tid}/proof[?content=withheld]`.
pub async fn proof(
    State(state): State<AppState>,
    caller: Caller,
    Path(tid): Path<String>,
    query: Result<Query<ProofQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ProofBundle>, ApiError> {
    caller.require(&READERS)?;
    let tid: TxId = tid.parse()?;
    let Query(query) = query
        .map_err(|e| ApiError::client(StatusCode::BAD_REQUEST, "invalid_input", e.body_text()))?;
    let withhold = match query.content.as_deref() {
        None | Some("included") => false,
        Some("withheld") => true,
        Some(other) => {
            return Err(ApiError::client(
                StatusCode::BAD_REQUEST,
                "invalid_input",
                format!("content: expected included or withheld, got {other:?}"),
            ));
        }
    };
    let exported = export(&state, &tid, withhold).await.map_err(|e| match e {
        ExportError::NotFound => {
            ApiError::client(StatusCode::NOT_FOUND, "not_found", e.to_string())
        }
        ExportError::NotCheckpointed => {
            ApiError::client(StatusCode::CONFLICT, "not_checkpointed", e.to_string())
        }
        ExportError::Unreadable => {
            ApiError::client(StatusCode::CONFLICT, "record_unreadable", e.to_string())
        }
        ExportError::Inconsistent(_) => {
            ApiError::client(StatusCode::CONFLICT, "store_inconsistent", e.to_string())
        }
        ExportError::NoChain => ApiError::client(
            StatusCode::SERVICE_UNAVAILABLE,
            "chain_unavailable",
            e.to_string(),
        ),
        ExportError::Internal(cause) => ApiError::internal(cause),
    })?;
    state
        .store
        .log_access(
            &caller.0.uid,
            "export_proof",
            Some(&exported.pid),
            Some(&tid),
            now(),
        )
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(exported.bundle))
}
