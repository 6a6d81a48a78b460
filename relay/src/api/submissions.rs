//! Submitting records (the handshaker's front door) and following their state.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use mediblock_protocol::encoding::Canonical as _;
use mediblock_protocol::envelope::Envelope;
use mediblock_protocol::ids::{Role, TxId};
use mediblock_protocol::record::{SealedTransaction, SignedInitialTransaction};
use serde::Serialize;
use serde_json::json;

use super::auth::Caller;
use super::{hex, json_body};
use crate::error::ApiError;
use crate::handshaker::{Refusal, admit};
use crate::metrics::SubmitOutcome;
use crate::store::StoreError;
use crate::store::submissions::{Accepted, Mode, NewSubmission, State as SubState};
use crate::{AppState, now};

/// Roles that author records.
pub const AUTHORS: [Role; 3] = [Role::Doctor, Role::Nurse, Role::Pathologist];

/// Answer of `POST /api/v1/submissions` and `GET /api/v1/submissions/{tid}`.
#[derive(Debug, Serialize)]
pub struct SubmissionView {
    /// Transaction id.
    pub tid: TxId,
    /// Current state.
    pub state: SubState,
    /// Leaf index in the record log.
    pub leaf_index: u64,
    /// Where to follow the state.
    pub status_url: String,
    /// Anchoring transaction hash, once sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tx_hash: Option<String>,
    /// Block number, once anchored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block_number: Option<u64>,
    /// Rejection reasons (JSON), when rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
}

fn status_url(tid: &TxId) -> String {
    format!("/api/v1/submissions/{tid}")
}

/// `POST /api/v1/submissions`: accepts a sealed initial transaction. Opens and verifies it,
/// checks the author's role and the template's rules, appends its commitment to the log and
/// queues it durably, then answers `202` with a status URL. Rule violations answer `422
/// rule_violation` with every violation, and are kept in the rejected-records audit (using
/// the record's ticket). Refused before anything is read or written: `429 rate_limited`
/// past the caller's rate, `503 queue_full` while the anchoring queue is full.
pub async fn submit(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<SubmissionView>), ApiError> {
    let view = accept(&state, &caller, body, Mode::PerRecord).await?;
    Ok((StatusCode::ACCEPTED, Json(view)))
}

/// What `POST /api/v1/submissions/wallet` returns: the submission and what the wallet sends.
#[derive(Debug, Serialize)]
pub struct WalletSubmission {
    /// The accepted submission (state `awaiting_wallet`).
    #[serde(flatten)]
    pub submission: SubmissionView,
    /// The transaction the author's wallet sends with `eth_sendTransaction`.
    pub wallet: WalletTransaction,
}

/// The co-signed transaction for the wallet, and the typed data it carries (for a readable
/// summary before the person signs).
#[derive(Debug, Serialize)]
pub struct WalletTransaction {
    /// The registry's address.
    pub to: String,
    /// Packed calldata of the co-signed anchor (hex, 0x-prefixed).
    pub data: String,
    /// EIP-155 chain id the wallet must be on.
    pub chain_id: u64,
    /// Unix seconds after which the co-signature expires.
    pub deadline: u64,
    /// The EIP-712 `Record` the relay signed: tid, commitment, template handle, values,
    /// deadline, submitter.
    pub record: serde_json::Value,
}

/// How long a co-signature stays valid.
const COSIGNATURE_TTL_SECS: u64 = 15 * 60;

/// `POST /api/v1/submissions/wallet`: the wallet path. The relay validates the sealed TI
/// exactly as for `POST /api/v1/submissions` and queues it, then answers the calldata with
/// its EIP-712 co-signature; the author's wallet sends it and pays the gas, and the relay's
/// worker completes the store push when the chain's event appears.
pub async fn submit_wallet(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<WalletSubmission>), ApiError> {
    let Some(wallet) = caller.0.eth_address else {
        return Err(ApiError::client(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the wallet path needs an enrolled wallet address",
        ));
    };
    let Some(chain) = state.chain.clone() else {
        return Err(ApiError::client(
            StatusCode::SERVICE_UNAVAILABLE,
            "chain_unavailable",
            "this relay does not anchor on a chain",
        ));
    };
    let view = accept(&state, &caller, body, Mode::Wallet).await?;
    let sub = state
        .store
        .submission(&view.tid)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(not_found)?;
    let anchor = crate::worker::anchor_of(&state, &chain, &sub)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "wallet path: no anchor");
            ApiError::client(
                StatusCode::SERVICE_UNAVAILABLE,
                "chain_unavailable",
                "the chain cannot be reached; try again",
            )
        })?;
    let deadline = now().0 / 1000 + COSIGNATURE_TTL_SECS;
    let submitter = alloy::primitives::Address::from(*wallet.as_bytes());
    let cosignature = chain
        .cosign(&anchor, deadline, submitter)
        .ok_or_else(|| {
            ApiError::client(
                StatusCode::SERVICE_UNAVAILABLE,
                "chain_unavailable",
                "this relay cannot co-sign",
            )
        })?
        .map_err(ApiError::internal)?;
    // Noted before the co-signature leaves the relay: once the chain's time passes it with
    // no anchor, the worker marks the submission expired.
    state
        .store
        .note_wallet_deadline(&view.tid, deadline)
        .await
        .map_err(ApiError::internal)?;
    let record = json!({
        "tid": format!("0x{}", hex(&anchor.tid)),
        "commitment": format!("0x{}", hex(&anchor.commitment)),
        "template": anchor.handle,
        "values": anchor.values,
        "deadline": deadline,
        "submitter": submitter.to_string(),
    });
    Ok((
        StatusCode::ACCEPTED,
        Json(WalletSubmission {
            submission: view,
            wallet: WalletTransaction {
                to: chain.registry().to_string(),
                data: format!("0x{}", hex(&anchor.cosigned_calldata(&cosignature))),
                chain_id: chain.chain_id(),
                deadline,
                record,
            },
        }),
    ))
}

/// The front door shared by both paths: open, verify, check, queue.
async fn accept(
    state: &AppState,
    caller: &Caller,
    body: Result<Bytes, BytesRejection>,
    mode: Mode,
) -> Result<SubmissionView, ApiError> {
    caller.require(&AUTHORS)?;
    state
        .limits
        .check_user(&caller.0.uid, std::time::Instant::now())?;
    // Backpressure before anything is opened or written.
    crate::limits::ensure_queue_room(state).await?;
    let signed = open_own(state, caller, body).await?;
    let ti = signed.ti();
    // The ticket before the rules: a record with a bad ticket is refused with the ticket's
    // code and leaves nothing behind, not even in the rejected-records audit.
    if let Some(problem) = state
        .store
        .ticket_problem(&ti.uid, &ti.tid, now())
        .await
        .map_err(ApiError::internal)?
    {
        return Err(crate::api::tickets::refused(problem, ti.tid.ticket()));
    }
    let template = state
        .store
        .template(&ti.template.id, ti.template.version)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| {
            ApiError::client(
                StatusCode::BAD_REQUEST,
                "template_unknown",
                format!("no published template {}", ti.template),
            )
        })?;
    let sealed_at_rest = Envelope::seal(
        &state.keys.at_rest,
        ti.tid.as_bytes(),
        &zeroize::Zeroizing::new(signed.to_canonical_bytes()),
        &mut state.rng(),
    )?
    .to_canonical_bytes();
    let verdict = admit(&signed, &caller.0, &template);
    let new = NewSubmission {
        tid: ti.tid,
        uid: ti.uid.clone(),
        pid: ti.pid,
        template: ti.template.clone(),
        commitment: signed.commitment(),
        mode,
        sealed_ti: sealed_at_rest,
        now: now(),
    };
    match verdict {
        // The values stay in the sealed TI: the worker derives them when it anchors.
        Ok(_) => {}
        Err(Refusal::Forbidden(why)) => {
            state.metrics.submission(SubmitOutcome::Refused);
            return Err(ApiError::client(StatusCode::FORBIDDEN, "forbidden", why));
        }
        Err(Refusal::Protocol(e)) => {
            state.metrics.submission(SubmitOutcome::Refused);
            return Err(e.into());
        }
        Err(Refusal::Rules(violations)) => {
            let details = serde_json::to_value(&violations).map_err(ApiError::internal)?;
            // The author sees the values they sent; the stored reasons keep only which rule
            // failed, because the column is clear text and the values are health data (they
            // stay in the sealed TI beside it). The refusal uses the record's ticket: a
            // second record with it (or a concurrent copy of this one) is refused for its
            // ticket and stores nothing.
            let reasons = without_values(details.clone());
            match state
                .store
                .reject_before_log(&new, &reasons.to_string(), &state.keys.at_rest.id())
                .await
            {
                Ok(()) | Err(StoreError::Conflict(_)) => {}
                Err(StoreError::Ticket(problem)) => {
                    state.metrics.submission(SubmitOutcome::Refused);
                    return Err(crate::api::tickets::refused(problem, ti.tid.ticket()));
                }
                Err(e) => return Err(ApiError::internal(e)),
            }
            state.metrics.submission(SubmitOutcome::RuleViolation);
            return Err(ApiError::client(
                StatusCode::UNPROCESSABLE_ENTITY,
                "rule_violation",
                format!("{} rule violation(s)", violations.len()),
            )
            .with_details(details));
        }
    }
    let accepted = append(state, &new).await?;
    let (leaf_index, state_now) = match accepted {
        Accepted::New { leaf_index } => {
            state.metrics.submission(SubmitOutcome::Accepted);
            state.wake_worker.notify_one();
            tracing::info!(tid = %new.tid, leaf_index, "submission accepted");
            let fresh = match mode {
                Mode::PerRecord => SubState::Queued,
                Mode::Wallet => SubState::AwaitingWallet,
            };
            (leaf_index, fresh)
        }
        Accepted::Existing {
            leaf_index,
            state: st,
        } => {
            state.metrics.submission(SubmitOutcome::Duplicate);
            (leaf_index, st)
        }
    };
    Ok(SubmissionView {
        tid: new.tid,
        state: state_now,
        leaf_index,
        status_url: status_url(&new.tid),
        tx_hash: None,
        block_number: None,
        detail: None,
    })
}

/// `404 not_found` for a submission the caller may not see or that does not exist.
pub(crate) fn not_found() -> ApiError {
    ApiError::client(StatusCode::NOT_FOUND, "not_found", "no such submission")
}

/// A submission's view and its author's id.
pub(crate) async fn view(
    state: &AppState,
    tid: &TxId,
) -> Result<(SubmissionView, String), ApiError> {
    let sub = state
        .store
        .submission(tid)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(not_found)?;
    Ok((
        SubmissionView {
            tid: *tid,
            state: sub.state,
            leaf_index: sub.leaf_index,
            status_url: status_url(tid),
            tx_hash: sub.tx_hash.map(|h| hex(&h)),
            block_number: sub.block_number,
            detail: sub.detail.and_then(|d| serde_json::from_str(&d).ok()),
        },
        sub.uid,
    ))
}

/// `GET /api/v1/submissions/{tid}`: a submission's state. Authors see their own;
/// administrators and auditors see any.
pub async fn status(
    State(state): State<AppState>,
    caller: Caller,
    Path(tid): Path<String>,
) -> Result<Json<SubmissionView>, ApiError> {
    let tid: TxId = tid.parse()?;
    let (view, author) = view(&state, &tid).await?;
    let privileged = matches!(caller.0.role, Role::Admin | Role::Auditor);
    if !privileged && author != caller.0.uid.as_str() {
        return Err(not_found());
    }
    Ok(Json(view))
}

/// A list of rule violations without the values that broke them (`got`): what may be kept in
/// clear text and shown to administrators.
fn without_values(mut violations: serde_json::Value) -> serde_json::Value {
    if let Some(list) = violations.as_array_mut() {
        for v in list {
            if let Some(fields) = v.as_object_mut() {
                fields.remove("got");
            }
        }
    }
    violations
}

/// Opens a sealed TI from the request body that the caller must have signed themselves
/// (`403 forbidden` otherwise; `decrypt_failed`, `signature_invalid`, `malformed_json` …):
/// decryption and the signature check run off the async threads.
pub(crate) async fn open_own(
    state: &AppState,
    caller: &Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<SignedInitialTransaction, ApiError> {
    let sealed: SealedTransaction = json_body(body)?;
    if sealed.uid != caller.0.uid {
        return Err(ApiError::client(
            StatusCode::FORBIDDEN,
            "forbidden",
            "you may only submit records you signed",
        ));
    }
    let keys = state.keys.clone();
    let author_keys = caller.0.keys;
    tokio::task::spawn_blocking(move || sealed.open(&keys.relay, &author_keys))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::from)
}

/// Appends a checked submission to the log and the queue ([`crate::store::Store::accept`]);
/// a tid already used for another record is `409 duplicate_tid`, a ticket that cannot be
/// bound to it `422 ticket_unknown`, `422 ticket_expired` or `409 ticket_used`.
pub(crate) async fn append(state: &AppState, new: &NewSubmission) -> Result<Accepted, ApiError> {
    state.store.accept(new).await.map_err(|e| match e {
        StoreError::Ticket(problem) => crate::api::tickets::refused(problem, new.tid.ticket()),
        StoreError::Conflict(_) => ApiError::client(
            StatusCode::CONFLICT,
            "duplicate_tid",
            format!(
                "transaction id {} was already used for another record",
                new.tid
            ),
        ),
        other => ApiError::internal(other),
    })
}
