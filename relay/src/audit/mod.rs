//! The tamper audit: one implementation behind `mediblock audit`, `GET /api/v1/audit` and
//! the audit page. It reads the store (every table as the database holds it), opens each
//! stored record with the relay's at-rest key, and compares it with the chain (every
//! `RecordAnchored` and `CheckpointAnchored` event of the registry) and with the dense
//! Merkle log. `docs/AUDIT.md` says which database change produces which finding and why.
//!
//! - `gather` reads the store and the chain (I/O);
//! - `engine` opens the rows (in parallel, no I/O) and decides the findings (pure);
//! - `render` prints the human table.

pub mod cli;
mod engine;
mod gather;
pub mod render;

use std::collections::BTreeMap;
use std::sync::Arc;

use mediblock_protocol::ids::{PatientId, UnixMillis};
use serde::Serialize;

use crate::chain::Chain;
use crate::keys::RelayKeys;
use crate::store::Store;

pub use engine::ERASURE_TEMPLATE;

/// What a finding says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A stored record's bytes, columns, signature or ACK were changed.
    Modified,
    /// Anchored on chain or present in the log, but missing from the store (or its content
    /// destroyed without a lawful erasure).
    Deleted,
    /// In the store but never anchored, or anchored with another commitment.
    Forged,
    /// Attached to another patient than the one its author signed.
    Moved,
    /// Another record's content held under this transaction id.
    Replayed,
    /// A patient's newer record replaced by one of their older records.
    RolledBack,
    /// Stored as valid while the chain rejected it, or the reverse.
    VerdictFlipped,
    /// Anchored with other on-chain values, or under another template, than the signed
    /// record's: the chain's verdict is not about this record.
    ValuesMismatch,
    /// The store's log disagrees with the chain (a leaf's commitment, or an anchored root).
    LogRewritten,
    /// The record's anchoring block is no longer on the canonical chain (a reorganisation),
    /// not a change of the database.
    Reorged,
    /// Lawfully erased by an anchored, admin-signed erasure record: information only.
    Erased,
}

impl Kind {
    /// The snake_case name used in JSON and in the table.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Modified => "modified",
            Kind::Deleted => "deleted",
            Kind::Forged => "forged",
            Kind::Moved => "moved",
            Kind::Replayed => "replayed",
            Kind::RolledBack => "rolled_back",
            Kind::VerdictFlipped => "verdict_flipped",
            Kind::ValuesMismatch => "values_mismatch",
            Kind::LogRewritten => "log_rewritten",
            Kind::Reorged => "reorged",
            Kind::Erased => "erased",
        }
    }

    /// How serious it is.
    pub fn severity(self) -> Severity {
        match self {
            Kind::Erased => Severity::Info,
            Kind::Reorged => Severity::Problem,
            _ => Severity::Tampering,
        }
    }
}

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Someone changed the store (or the log) behind the relay's back.
    Tampering,
    /// Not a change of the store, but a record is no longer proven (a chain reorg).
    Problem,
    /// Information (a lawful erasure).
    Info,
}

/// One finding: what, which record, and the evidence (what the store says against what the
/// chain or the log says).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What happened.
    pub kind: Kind,
    /// How serious it is.
    pub severity: Severity,
    /// The record's transaction id (hex), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tid: Option<String>,
    /// The record's leaf in the log, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leaf_index: Option<u64>,
    /// The patient (hex id), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
    /// One sentence.
    pub summary: String,
    /// Named values: `store_commitment`, `chain_commitment`, `block_number`, `tx_hash`, …
    pub evidence: BTreeMap<&'static str, String>,
}

/// Which records an audit reports on.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Scope {
    /// Only this patient's records.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patient: Option<PatientId>,
    /// Only records stored (or anchored) at or after this time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<UnixMillis>,
    /// Only records stored (or anchored) at or before this time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<UnixMillis>,
}

impl Scope {
    /// Whether the audit covers everything (log-level findings are reported only then or
    /// with a time range alone).
    pub fn is_whole(&self) -> bool {
        self.patient.is_none() && self.since.is_none() && self.until.is_none()
    }

    pub(crate) fn in_time(&self, at: Option<u64>) -> bool {
        // Something whose time is unknown is reported (never hide a finding).
        let Some(at) = at else { return true };
        self.since.is_none_or(|s| at >= s.0) && self.until.is_none_or(|u| at <= u.0)
    }
}

/// What the audit looked at.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    /// Rows of `records` in scope.
    pub records: u64,
    /// Rows of `rejected` in scope.
    pub rejected: u64,
    /// Stored records whose content opened and checked out.
    pub verified: u64,
    /// Lawfully erased records in scope.
    pub erased: u64,
    /// Submissions accepted and not finished yet (queued, sent, awaiting a wallet).
    pub in_flight: u64,
    /// `log_head.size`.
    pub log_size: u64,
    /// Rows of `log_leaves`.
    pub leaves: u64,
    /// `RecordAnchored` events of the registry.
    pub anchors: u64,
    /// `CheckpointAnchored` events of the registry.
    pub checkpoints: u64,
}

/// An audit's result.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// What was asked.
    pub scope: Scope,
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// The registry's address.
    pub registry: String,
    /// The chain's head block when the audit read it.
    pub head_block: u64,
    /// When the audit started (Unix ms).
    pub started_at: u64,
    /// How long it took, in milliseconds.
    pub took_ms: u64,
    /// What it looked at.
    pub counts: Counts,
    /// Tampering and problems first, then information; in leaf order within each.
    pub findings: Vec<Finding>,
    /// No tampering and no problem (information such as lawful erasures may be present).
    pub clean: bool,
}

impl Report {
    /// How many findings of `kind`.
    pub fn count(&self, kind: Kind) -> usize {
        self.findings.iter().filter(|f| f.kind == kind).count()
    }
}

/// Why an audit could not run (as opposed to what it found).
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    /// The chain's node failed.
    #[error("chain: {0}")]
    Chain(String),
    /// A worker thread failed.
    #[error("internal: {0}")]
    Internal(String),
}

/// Reports progress: `(phase, done, total)`. Called often; keep it cheap.
pub type Progress = Arc<dyn Fn(&str, u64, u64) + Send + Sync>;

/// Runs the audit of `store` against `chain` with the relay's `keys`.
pub async fn run(
    store: &Store,
    chain: &Chain,
    keys: Arc<RelayKeys>,
    scope: Scope,
    progress: Option<Progress>,
) -> Result<Report, AuditError> {
    let started = std::time::Instant::now();
    let started_at = crate::now().0;
    let progress = progress.unwrap_or_else(|| Arc::new(|_: &str, _: u64, _: u64| {}));
    progress("reading the store", 0, 1);
    let mut inputs = gather::gather(store, chain).await?;
    progress("reading the store", 1, 1);
    let scope2 = scope.clone();
    let progress2 = progress.clone();
    let keys2 = keys.clone();
    let (inputs_back, opened) = tokio::task::spawn_blocking(move || {
        let opened = engine::open_all(&inputs, &keys2, &scope2, &progress2);
        (inputs, opened)
    })
    .await
    .map_err(|e| AuditError::Internal(e.to_string()))?;
    inputs = inputs_back;
    let wanted = engine::blocks_to_check(&inputs, &opened);
    inputs.canonical = gather::block_hashes(chain, &wanted).await?;
    progress("checking", 0, 1);
    let scope2 = scope.clone();
    let (inputs, counts, findings) = tokio::task::spawn_blocking(move || {
        let (counts, findings) = engine::evaluate(&inputs, &opened, &scope2, &keys);
        (inputs, counts, findings)
    })
    .await
    .map_err(|e| AuditError::Internal(e.to_string()))?;
    progress("checking", 1, 1);
    let clean = findings.iter().all(|f| f.severity == Severity::Info);
    Ok(Report {
        scope,
        chain_id: inputs.chain_id,
        registry: inputs.registry.clone(),
        head_block: inputs.head,
        started_at,
        took_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        counts,
        findings,
        clean,
    })
}

/// Parses a time bound: RFC 3339 (`2026-11-24T18:00:00Z`, with an optional fraction and a
/// `Z` or `±hh:mm` offset) or Unix milliseconds.
pub fn parse_time(text: &str) -> Result<UnixMillis, String> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse()
            .map(UnixMillis)
            .map_err(|_| format!("{text:?}: too large"));
    }
    let bad = || format!("{text:?}: expected RFC 3339 (2026-11-24T18:00:00Z) or Unix milliseconds");
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Result<i64, String> {
        text.get(r)
            .filter(|s| s.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
            .ok_or_else(bad)
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if b[13] != b':' || b[16] != b':' {
        return Err(bad());
    }
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if hour > 23 || minute > 59 || second > 60 {
        return Err(bad());
    }
    let mut i = 19;
    let mut millis = 0i64;
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        i = start;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return Err(bad());
        }
        let frac = &text[start..i.min(start + 3)];
        millis = frac.parse::<i64>().map_err(|_| bad())? * 10i64.pow(3 - frac.len() as u32);
    }
    let offset_min = match &text[i..] {
        "Z" | "z" => 0,
        rest if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) => {
            let h = num(i + 1..i + 3)?;
            let m = num(i + 4..i + 6)?;
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (h * 60 + m)
        }
        _ => return Err(bad()),
    };
    let date = mediblock_protocol::value::Date::from_ymd(
        i32::try_from(year).map_err(|_| bad())?,
        u32::try_from(month).map_err(|_| bad())?,
        u32::try_from(day).map_err(|_| bad())?,
    )
    .map_err(|_| bad())?;
    let secs =
        i64::from(date.days()) * 86_400 + hour * 3600 + minute * 60 + second - offset_min * 60;
    u64::try_from(secs * 1000 + millis)
        .map(UnixMillis)
        .map_err(|_| format!("{text:?}: before 1970"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_rfc3339_or_unix_millis() {
        assert_eq!(parse_time("0").unwrap(), UnixMillis(0));
        assert_eq!(
            parse_time("1764000000000").unwrap(),
            UnixMillis(1_764_000_000_000)
        );
        assert_eq!(
            parse_time("1970-01-02T00:00:00Z").unwrap(),
            UnixMillis(86_400_000)
        );
        assert_eq!(
            parse_time("2026-11-24T18:00:00.250+01:00").unwrap(),
            UnixMillis(1_795_539_600_250)
        );
        assert!(parse_time("2026-13-24T18:00:00Z").is_err());
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("2026-11-24").is_err());
    }
}
