//! `POST /api/v1/tickets`: the number a record's tid starts with ([`crate::store::tickets`]).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use mediblock_protocol::ids::Role;
use serde::Serialize;

use crate::api::auth::Caller;
use crate::api::submissions::AUTHORS;
use crate::api::{body_error, json_body, says_json, unsupported_media_type};
use crate::error::ApiError;
use crate::store::tickets::{MAX_OPEN_TICKETS, TicketProblem};
use crate::{AppState, now};

/// Answer of `POST /api/v1/tickets`.
#[derive(Debug, Serialize)]
pub struct TicketView {
    /// The ticket number as a decimal string (it may exceed JavaScript's safe integers).
    pub ticket: String,
    /// Unix milliseconds after which it can no longer be used.
    pub expires_at: u64,
}

/// Issues a ticket to the caller (authors, and administrators for erasure records):
/// `201 {ticket, expires_at}`, or `429 too_many_tickets` (with `Retry-After`) when the
/// caller already holds [`MAX_OPEN_TICKETS`] unused ones, `429 rate_limited` past the
/// caller's rate. It takes no body, or `{}` as JSON: another body is `400 invalid_input`
/// (`malformed_json` when it is not JSON), a body or content type other than JSON `415
/// unsupported_media_type`.
pub async fn issue(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<TicketView>), ApiError> {
    let mut allowed = AUTHORS.to_vec();
    allowed.push(Role::Admin);
    caller.require(&allowed)?;
    state
        .limits
        .check_user(&caller.0.uid, std::time::Instant::now())?;
    let body = body.map_err(body_error)?;
    let typed = headers.contains_key(header::CONTENT_TYPE);
    if (typed || !body.is_empty()) && !says_json(&headers) {
        return Err(unsupported_media_type());
    }
    if !body.is_empty() {
        let value: serde_json::Value = json_body(Ok(body))?;
        if value.as_object().is_none_or(|fields| !fields.is_empty()) {
            return Err(ApiError::client(
                StatusCode::BAD_REQUEST,
                "invalid_input",
                "POST /api/v1/tickets takes no body, or {}",
            ));
        }
    }
    let at = now();
    let Some(ticket) = state
        .store
        .issue_ticket(&caller.0.uid, at)
        .await
        .map_err(ApiError::internal)?
    else {
        let free_at = state
            .store
            .next_ticket_room(&caller.0.uid, at)
            .await
            .map_err(ApiError::internal)?;
        let wait_ms = free_at.map_or(0, |t| t.0.saturating_sub(at.0));
        return Err(ApiError::client(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_tickets",
            format!(
                "you hold {MAX_OPEN_TICKETS} unused tickets; use them, or wait until the oldest \
                 lapses"
            ),
        )
        .with_retry_after(wait_ms.div_ceil(1000)));
    };
    Ok((
        StatusCode::CREATED,
        Json(TicketView {
            ticket: ticket.number.to_string(),
            expires_at: ticket.expires_at.0,
        }),
    ))
}

/// The API error for a ticket the submission path cannot bind.
pub(crate) fn refused(problem: TicketProblem, ticket: u64) -> ApiError {
    match problem {
        TicketProblem::Unknown => ApiError::client(
            StatusCode::UNPROCESSABLE_ENTITY,
            "ticket_unknown",
            format!(
                "ticket {ticket} (the transaction id's first 8 bytes) was not issued to you; \
                 get one with POST /api/v1/tickets"
            ),
        ),
        TicketProblem::Expired => ApiError::client(
            StatusCode::UNPROCESSABLE_ENTITY,
            "ticket_expired",
            format!("ticket {ticket} has expired; get a new one and seal the record again"),
        ),
        TicketProblem::Used => ApiError::client(
            StatusCode::CONFLICT,
            "ticket_used",
            format!(
                "ticket {ticket} was already used for another record; get a new one and seal \
                 the record again"
            ),
        ),
    }
}
