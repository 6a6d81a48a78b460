//! Reads of health data: a patient's records (decrypted for clinicians and auditors, every
//! read written to the access log) and the rejected-records audit (administrators).

use axum::Json;
use axum::extract::{Path, State};
use mediblock_protocol::encoding::Canonical as _;
use mediblock_protocol::envelope::Envelope;
use mediblock_protocol::ids::{PatientId, Role};
use mediblock_protocol::validated::ValidatedTransaction;
use serde::Serialize;

use super::auth::Caller;
use crate::error::ApiError;
use crate::store::submissions::StoredRecord;
use crate::{AppState, now};

/// Roles that may read a patient's records.
pub const READERS: [Role; 4] = [Role::Doctor, Role::Nurse, Role::Pathologist, Role::Auditor];

/// A stored record as the API shows it: the validated transaction (the signed TI and the
/// chain's ACK) and where it sits in the log.
///
/// A row that no longer opens under the relay's at-rest key (its bytes were changed in the
/// database) is still listed, with `validated` absent and `problem` saying why, so that a
/// reader sees the damage instead of an error for the whole patient. The browser checks
/// every record that does open against the chain itself.
#[derive(Debug, Serialize)]
pub struct RecordView {
    /// Transaction id, as the row claims it.
    pub tid: String,
    /// Leaf index in the record log.
    pub leaf_index: Option<u64>,
    /// The record's commitment, as the row claims it.
    pub commitment: String,
    /// The validated transaction, decrypted; absent when the row does not open.
    pub validated: Option<ValidatedTransaction>,
    /// Why the row does not open (`envelope_corrupt`, `does_not_open`); absent when it does
    /// or when it was lawfully erased.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<&'static str>,
    /// For a lawfully erased record (content destroyed, commitment and leaf kept): the
    /// transaction id of the erasure record, itself signed, anchored and listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub erased_by: Option<String>,
}

fn open(state: &AppState, r: &StoredRecord) -> RecordView {
    if let Some(erasure) = &r.erased_by {
        return RecordView {
            tid: r.tid.to_hex(),
            leaf_index: r.leaf_index,
            commitment: r.commitment.to_hex(),
            validated: None,
            problem: None,
            erased_by: Some(erasure.to_hex()),
        };
    }
    let opened = Envelope::from_canonical_bytes(&r.envelope)
        .map_err(|_| "envelope_corrupt")
        .and_then(|envelope| {
            ValidatedTransaction::open_at_rest(&envelope, &state.keys.at_rest, &r.tid)
                .map_err(|_| "does_not_open")
        });
    let (validated, problem) = match opened {
        Ok(v) => (Some(v), None),
        Err(problem) => {
            tracing::warn!(tid = %r.tid, problem, "a stored record does not open");
            (None, Some(problem))
        }
    };
    RecordView {
        tid: r.tid.to_hex(),
        leaf_index: r.leaf_index,
        commitment: r.commitment.to_hex(),
        validated,
        problem,
        erased_by: None,
    }
}

/// `GET /api/v1/patients/{pid}/records`: the patient's stored records, oldest first.
/// The read is written to the access log.
pub async fn of_patient(
    State(state): State<AppState>,
    caller: Caller,
    Path(pid): Path<String>,
) -> Result<Json<Vec<RecordView>>, ApiError> {
    caller.require(&READERS)?;
    let pid: PatientId = pid.parse()?;
    let rows = state
        .store
        .records_of_patient(&pid)
        .await
        .map_err(ApiError::internal)?;
    state
        .store
        .log_access(&caller.0.uid, "read_records", Some(&pid), None, now())
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(rows.iter().map(|r| open(&state, r)).collect()))
}

/// A patient in the list: ids and counts only.
#[derive(Debug, Serialize)]
pub struct PatientSummary {
    /// Patient id.
    pub pid: PatientId,
    /// How many records are stored.
    pub records: u64,
    /// When the last one was stored (Unix ms).
    pub last_stored_at: u64,
}

/// `GET /api/v1/patients` (clinicians, auditors): patients with stored records, most
/// recently updated first. Ids and counts only; names live inside the sealed records.
pub async fn patients(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<PatientSummary>>, ApiError> {
    caller.require(&READERS)?;
    let rows = state
        .store
        .patients(1000)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(
        rows.into_iter()
            .map(|(pid, records, at)| PatientSummary {
                pid,
                records,
                last_stored_at: at.0,
            })
            .collect(),
    ))
}

/// A rejected record as the audit shows it: ids, source and reasons. No health data.
#[derive(Debug, Serialize)]
pub struct RejectedView {
    /// Transaction id.
    pub tid: String,
    /// Author.
    pub uid: String,
    /// Template reference.
    pub template: String,
    /// `relay` (rules checked before anchoring) or `chain` (the contract's verdict).
    pub source: Option<String>,
    /// Why (violations or the chain's verdict).
    pub reasons: Option<serde_json::Value>,
    /// Leaf index, for chain rejections.
    pub leaf_index: Option<u64>,
    /// When (Unix ms).
    pub at: u64,
}

/// `GET /api/v1/rejected` (admin, auditor): the rejected-records audit, newest first.
pub async fn rejected(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<RejectedView>>, ApiError> {
    caller.require(&[Role::Admin, Role::Auditor])?;
    let rows = state
        .store
        .rejected_records(500)
        .await
        .map_err(ApiError::internal)?;
    state
        .store
        .log_access(&caller.0.uid, "read_rejected", None, None, now())
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(
        rows.into_iter()
            .map(|r| RejectedView {
                tid: r.tid.to_hex(),
                uid: r.uid,
                template: format!("{}@{}", r.template_id, r.version),
                source: r.source,
                reasons: r.reasons.and_then(|t| serde_json::from_str(&t).ok()),
                leaf_index: r.leaf_index,
                at: r.at.0,
            })
            .collect(),
    ))
}
