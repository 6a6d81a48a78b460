//! Lawful erasure (a patient's right to be forgotten, a court order): an administrator signs
//! an erasure record — a TI of the reserved `erasure` template naming the erased record's
//! transaction id and a reason code, nothing personal — and submits it with
//! `POST /api/v1/records/{tid}/erasure`. It is anchored and stored like any record. Once it
//! is stored, [`apply_pending`] destroys the erased record's content (its sealed validated
//! transaction, and the sealed TI its submission kept), keeping its id, commitment and leaf:
//! the log stays dense and every other proof still verifies. The audit reports the record
//! as `erased`, and an erased mark without such an erasure record as `deleted`.

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use mediblock_protocol::encoding::Canonical as _;
use mediblock_protocol::envelope::Envelope;
use mediblock_protocol::ids::{AttrName, Role, TxId};
use mediblock_protocol::validated::ValidatedTransaction;
use mediblock_protocol::value::Value;

use crate::api::auth::Caller;
use crate::api::submissions::SubmissionView;
use crate::audit::ERASURE_TEMPLATE;
use crate::error::ApiError;
use crate::handshaker::{Refusal, admit};
use crate::store::submissions::{Accepted, Mode, NewSubmission, State as SubState};
use crate::{AppState, now};

/// The erasure template's attribute naming the erased record.
pub const ERASED_TID: &str = "erased_tid";

/// The reserved erasure template as shipped (`relay/templates/erasure.json`).
pub const TEMPLATE_JSON: &str = include_str!("../templates/erasure.json");

fn bad(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::client(StatusCode::BAD_REQUEST, code, message)
}

/// `POST /api/v1/records/{tid}/erasure` (admin): accepts the administrator's sealed erasure
/// record of stored record `tid` and queues it for anchoring; `202` with its status URL.
/// The content of `tid` is destroyed once the erasure record is anchored and stored.
///
/// Refusals: `403 forbidden` (not an admin, or not the signer), `400 invalid_input` (not an
/// erasure record, or it names another record or patient), `404 not_found` (no such stored
/// record), `409 already_erased`; `429 rate_limited` and `503 queue_full` as for
/// submissions.
pub async fn request(
    State(state): State<AppState>,
    caller: Caller,
    Path(tid): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<SubmissionView>), ApiError> {
    caller.require(&[Role::Admin])?;
    state
        .limits
        .check_user(&caller.0.uid, std::time::Instant::now())?;
    crate::limits::ensure_queue_room(&state).await?;
    let target: TxId = tid.parse()?;
    let signed = crate::api::submissions::open_own(&state, &caller, body).await?;
    let ti = signed.ti();
    if ti.template.id.as_str() != ERASURE_TEMPLATE {
        return Err(bad(
            "invalid_input",
            format!("an erasure record uses the {ERASURE_TEMPLATE} template"),
        ));
    }
    let named = AttrName::new(ERASED_TID)
        .ok()
        .and_then(|n| match ti.attributes.get(&n) {
            Some(Value::Text(t)) => Some(t.clone()),
            _ => None,
        });
    if named.as_deref() != Some(target.to_hex().as_str()) {
        return Err(bad(
            "invalid_input",
            format!("the erasure record must name {target} in {ERASED_TID}"),
        ));
    }
    let row = state
        .store
        .audit_record(target.as_bytes())
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| {
            ApiError::client(StatusCode::NOT_FOUND, "not_found", "no such stored record")
        })?;
    if row.erased_by.is_some() {
        return Err(ApiError::client(
            StatusCode::CONFLICT,
            "already_erased",
            "the record is erased already",
        ));
    }
    if row.pid != ti.pid.as_bytes() {
        return Err(bad(
            "invalid_input",
            "the erasure record must be about the erased record's patient",
        ));
    }
    // An erasure record is the evidence that makes an erasure lawful: it is never erased.
    if row.template_id == ERASURE_TEMPLATE {
        return Err(ApiError::client(
            StatusCode::CONFLICT,
            "erasure_not_erasable",
            "an erasure record cannot itself be erased",
        ));
    }
    let template = state
        .store
        .template(&ti.template.id, ti.template.version)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| {
            bad(
                "template_unknown",
                format!("no published template {}", ti.template),
            )
        })?;
    // The values stay in the sealed TI: the worker derives them when it anchors.
    match admit(&signed, &caller.0, &template) {
        Ok(_) => {}
        Err(Refusal::Forbidden(why)) => {
            return Err(ApiError::client(StatusCode::FORBIDDEN, "forbidden", why));
        }
        Err(Refusal::Protocol(e)) => return Err(e.into()),
        Err(Refusal::Rules(violations)) => {
            let details = serde_json::to_value(&violations).map_err(ApiError::internal)?;
            return Err(ApiError::client(
                StatusCode::UNPROCESSABLE_ENTITY,
                "rule_violation",
                format!("{} rule violation(s)", violations.len()),
            )
            .with_details(details));
        }
    };
    let sealed_at_rest = Envelope::seal(
        &state.keys.at_rest,
        ti.tid.as_bytes(),
        &zeroize::Zeroizing::new(signed.to_canonical_bytes()),
        &mut state.rng(),
    )?
    .to_canonical_bytes();
    let new = NewSubmission {
        tid: ti.tid,
        uid: ti.uid.clone(),
        pid: ti.pid,
        template: ti.template.clone(),
        commitment: signed.commitment(),
        mode: Mode::PerRecord,
        sealed_ti: sealed_at_rest,
        now: now(),
    };
    let accepted = crate::api::submissions::append(&state, &new).await?;
    let (leaf_index, sub_state) = match accepted {
        Accepted::New { leaf_index } => {
            state.wake_worker.notify_one();
            tracing::info!(tid = %new.tid, leaf_index, "erasure record accepted");
            (leaf_index, SubState::Queued)
        }
        Accepted::Existing { leaf_index, state } => (leaf_index, state),
    };
    Ok((
        StatusCode::ACCEPTED,
        Json(SubmissionView {
            tid: new.tid,
            state: sub_state,
            leaf_index,
            status_url: format!("/api/v1/submissions/{}", new.tid),
            tx_hash: None,
            block_number: None,
            detail: None,
        }),
    ))
}

/// Applies every stored erasure record not applied yet: checks it (it opens, its author is
/// an administrator whose signature verifies, it names a stored record of the same patient)
/// and destroys that record's content. Idempotent; returns how many records it erased.
pub async fn apply_pending(state: &AppState) -> Result<usize, String> {
    let pending = state
        .store
        .stored_erasure_records(ERASURE_TEMPLATE)
        .await
        .map_err(|e| e.to_string())?;
    let users = state.store.users().await.map_err(|e| e.to_string())?;
    let mut erased = 0;
    for (tid, envelope) in pending {
        let Ok(e) = <[u8; 16]>::try_from(tid.as_slice()) else {
            continue;
        };
        let opened = Envelope::from_canonical_bytes(&envelope).and_then(|env| {
            ValidatedTransaction::open_at_rest(&env, &state.keys.at_rest, &TxId::from_bytes(e))
        });
        let Ok(vt) = opened else {
            tracing::warn!(tid = %hex::encode(e), "an erasure record does not open; not applied");
            continue;
        };
        let ti = vt.signed.ti();
        let author_ok = users
            .iter()
            .any(|u| u.uid == ti.uid && u.role == Role::Admin && vt.signed.verify(&u.keys).is_ok());
        let target = AttrName::new(ERASED_TID)
            .ok()
            .and_then(|n| match ti.attributes.get(&n) {
                Some(Value::Text(t)) => t.parse::<TxId>().ok(),
                _ => None,
            });
        let (true, Some(target), true) = (author_ok, target, vt.ack.verdict.is_valid()) else {
            tracing::warn!(tid = %hex::encode(e), "an erasure record is not an admin's valid erasure; not applied");
            continue;
        };
        let Some(row) = state
            .store
            .audit_record(target.as_bytes())
            .await
            .map_err(|e| e.to_string())?
        else {
            continue;
        };
        if row.pid != ti.pid.as_bytes() {
            tracing::warn!(tid = %hex::encode(e), "an erasure record names another patient's record; not applied");
            continue;
        }
        if row.template_id == ERASURE_TEMPLATE {
            tracing::warn!(tid = %hex::encode(e), "an erasure record names another erasure record; not applied");
            continue;
        }
        let at = i64::try_from(now().0).unwrap_or(i64::MAX);
        if state
            .store
            .erase(target.as_bytes(), &e, at)
            .await
            .map_err(|e| e.to_string())?
        {
            tracing::info!(erased = %target, by = %hex::encode(e), "record erased");
            erased += 1;
        }
    }
    Ok(erased)
}

/// Runs forever: applies pending erasures whenever a submission changes state, and every
/// few seconds (after a restart, or a missed event).
pub async fn run(state: AppState) {
    let mut events = state.events.subscribe();
    loop {
        if let Err(e) = apply_pending(&state).await {
            tracing::warn!(error = %e, "applying erasures");
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), events.recv()).await;
    }
}
