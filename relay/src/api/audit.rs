//! `GET /api/v1/audit` (admin, auditor): the tamper audit's report as JSON, the same one
//! `mediblock audit --json` prints. Every run is written to the access log.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use mediblock_protocol::ids::{PatientId, Role};
use serde::Deserialize;

use super::auth::Caller;
use crate::audit::{Report, Scope, parse_time};
use crate::error::ApiError;
use crate::{AppState, now};

/// The query: `?patient=&since=&until=` (times as RFC 3339 or Unix milliseconds).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only this patient's records (32 hex digits).
    pub patient: Option<String>,
    /// Only records stored at or after this time.
    pub since: Option<String>,
    /// Only records stored at or before this time.
    pub until: Option<String>,
}

fn invalid(message: String) -> ApiError {
    ApiError::client(StatusCode::BAD_REQUEST, "invalid_input", message)
}

/// `GET /api/v1/audit`: runs the audit and answers its report (`200` whatever it finds;
/// `clean` says whether anything is wrong). `503 chain_unavailable` without a chain.
pub async fn audit(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Report>, ApiError> {
    caller.require(&[Role::Admin, Role::Auditor])?;
    let Query(q) = query.map_err(|e| invalid(e.body_text()))?;
    let patient: Option<PatientId> = q
        .patient
        .as_deref()
        .filter(|p| !p.is_empty())
        .map(str::parse)
        .transpose()?;
    let time = |t: Option<&str>, name: &str| {
        t.filter(|s| !s.is_empty())
            .map(|s| parse_time(s).map_err(|e| invalid(format!("{name}: {e}"))))
            .transpose()
    };
    let scope = Scope {
        patient,
        since: time(q.since.as_deref(), "since")?,
        until: time(q.until.as_deref(), "until")?,
    };
    let Some(chain) = state.chain.clone() else {
        return Err(ApiError::client(
            StatusCode::SERVICE_UNAVAILABLE,
            "chain_unavailable",
            "this relay has no chain to audit against",
        ));
    };
    // An audit reads every record and uses every core: one at a time per relay.
    let Ok(_running) = state.audit_slot.try_lock() else {
        return Err(ApiError::client(
            StatusCode::TOO_MANY_REQUESTS,
            "audit_running",
            "an audit is already running on this relay; try again when it has finished",
        ));
    };
    state
        .store
        .log_access(&caller.0.uid, "audit", scope.patient.as_ref(), None, now())
        .await
        .map_err(ApiError::internal)?;
    let report = crate::audit::run(&state.store, &chain, state.keys.clone(), scope, None)
        .await
        .map_err(|e| match e {
            crate::audit::AuditError::Chain(why) => {
                tracing::warn!(error = %why, "audit: chain unavailable");
                ApiError::client(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "chain_unavailable",
                    "the chain cannot be reached; try again",
                )
            }
            other => ApiError::internal(other),
        })?;
    Ok(Json(report))
}
