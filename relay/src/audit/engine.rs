//! The audit's decisions: open every row (in parallel), then compare the store, the log and
//! the chain, one rule at a time. No I/O. The rules, in the order they are applied (the
//! first finding about a record wins, so one change yields one finding), are
//! `docs/AUDIT.md`'s.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};

use mediblock_protocol::encoding::Canonical as _;
use mediblock_protocol::envelope::Envelope;
use mediblock_protocol::hash::keccak256;
use mediblock_protocol::ids::{AttrName, Role};
use mediblock_protocol::keys::SymmetricKey;
use mediblock_protocol::merkle::{Frontier, Keccak256Tree, TreeHasher as _};
use mediblock_protocol::record::SignedInitialTransaction;
use mediblock_protocol::validated::ValidatedTransaction;
use mediblock_protocol::value::Value;

use super::gather::{ChainAnchor, Inputs};
use super::{Counts, Finding, Kind, Progress, Scope, Severity};
use crate::chain::registry::Verdict;
use crate::keys::RelayKeys;

/// The reserved template of lawful erasure records (`relay/templates/erasure.json`).
pub const ERASURE_TEMPLATE: &str = "erasure";
use crate::erasure::ERASED_TID;
/// The erasure template's attribute giving the legal reason (an enum code).
pub(crate) const REASON: &str = "reason";

/// What a sealed row turned out to hold.
#[derive(Debug)]
pub(super) enum Content {
    /// The envelope does not decode or does not open under the row's transaction id.
    NotOpen,
    /// It opens but holds neither a validated nor a signed initial transaction.
    Garbled,
    /// A validated transaction (signed TI and ACK): what `records` and the chain's
    /// rejections hold.
    Validated(Box<ValidatedTransaction>),
    /// A signed TI: what the relay's own refusals (and the queue) hold.
    Signed(Box<SignedInitialTransaction>),
}

/// One opened row.
#[derive(Debug)]
pub(super) struct RowOpen {
    pub(super) content: Content,
    /// The commitment of the signed TI inside, when it opened.
    pub(super) commitment: Option<[u8; 32]>,
    /// Whether the author's signature verifies against the enrolled key.
    pub(super) signature_ok: bool,
}

/// The opened rows of `records` and `rejected`, by position; `None` outside the scope.
#[derive(Debug, Default)]
pub(super) struct Opened {
    pub(super) records: Vec<Option<RowOpen>>,
    pub(super) rejected: Vec<Option<RowOpen>>,
}

fn t16(b: &[u8]) -> Option<[u8; 16]> {
    b.try_into().ok()
}

fn c32(b: &[u8]) -> Option<[u8; 32]> {
    b.try_into().ok()
}

fn hex(b: &[u8]) -> String {
    hex::encode(b)
}

fn ms(v: i64) -> Option<u64> {
    u64::try_from(v).ok()
}

/// Opens `envelope` as sealed for transaction id `tid`.
pub(super) fn open_as(envelope: &[u8], key: &SymmetricKey, tid: &[u8; 16]) -> Content {
    let Ok(env) = Envelope::from_canonical_bytes(envelope) else {
        return Content::NotOpen;
    };
    let Ok(plain) = env.open(key, tid) else {
        return Content::NotOpen;
    };
    if let Ok(vt) = ValidatedTransaction::from_canonical_bytes(&plain) {
        Content::Validated(Box::new(vt))
    } else if let Ok(s) = SignedInitialTransaction::from_canonical_bytes(&plain) {
        Content::Signed(Box::new(s))
    } else {
        Content::Garbled
    }
}

fn open_row(
    envelope: &[u8],
    tid: &[u8],
    key: &SymmetricKey,
    users: &HashMap<String, (Role, mediblock_protocol::keys::PublicKeys)>,
) -> RowOpen {
    let content = match t16(tid) {
        Some(tid) => open_as(envelope, key, &tid),
        None => Content::NotOpen,
    };
    let signed = match &content {
        Content::Validated(vt) => Some(&vt.signed),
        Content::Signed(s) => Some(s.as_ref()),
        _ => None,
    };
    let commitment = signed.map(|s| *s.commitment().as_bytes());
    let signature_ok = signed.is_some_and(|s| {
        users
            .get(s.ti().uid.as_str())
            .is_some_and(|(_, keys)| s.verify(keys).is_ok())
    });
    RowOpen {
        content,
        commitment,
        signature_ok,
    }
}

/// Which rows the scope covers: the row's patient or its submission's patient, and its time.
struct ScopeIndex<'a> {
    sub_pid: HashMap<&'a [u8], &'a [u8]>,
}

impl<'a> ScopeIndex<'a> {
    fn new(inputs: &'a Inputs) -> Self {
        Self {
            sub_pid: inputs
                .submissions
                .iter()
                .map(|s| (s.tid.as_slice(), s.pid.as_slice()))
                .collect(),
        }
    }

    fn covers(&self, scope: &Scope, tid: &[u8], pid: &[u8], at: i64) -> bool {
        if let Some(p) = &scope.patient {
            let p = p.as_bytes().as_slice();
            if pid != p && self.sub_pid.get(tid).is_none_or(|s| *s != p) {
                return false;
            }
        }
        scope.in_time(ms(at))
    }
}

/// Opens every row in scope (and every erasure record, which erased rows need), on all
/// cores.
pub(super) fn open_all(
    inputs: &Inputs,
    keys: &RelayKeys,
    scope: &Scope,
    progress: &Progress,
) -> Opened {
    let index = ScopeIndex::new(inputs);
    let key = &keys.at_rest;
    let wanted_records: Vec<usize> = inputs
        .records
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            r.erased_by.is_none()
                && (r.template_id == ERASURE_TEMPLATE
                    || index.covers(scope, &r.tid, &r.pid, r.stored_at))
        })
        .map(|(i, _)| i)
        .collect();
    let wanted_rejected: Vec<usize> = inputs
        .rejected
        .iter()
        .enumerate()
        .filter(|(_, r)| index.covers(scope, &r.tid, &r.pid, r.rejected_at))
        .map(|(i, _)| i)
        .collect();
    let total = (wanted_records.len() + wanted_rejected.len()) as u64;
    let done = AtomicU64::new(0);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let tick = |n: u64| {
        let now = done.fetch_add(n, Ordering::Relaxed) + n;
        progress("opening records", now, total);
    };
    let run = |jobs: &[(bool, usize)]| -> Vec<(bool, usize, RowOpen)> {
        let mut out = Vec::with_capacity(jobs.len());
        for (k, &(is_record, i)) in jobs.iter().enumerate() {
            let opened = if is_record {
                let r = &inputs.records[i];
                open_row(&r.envelope, &r.tid, key, &inputs.users)
            } else {
                let r = &inputs.rejected[i];
                open_row(&r.envelope, &r.tid, key, &inputs.users)
            };
            out.push((is_record, i, opened));
            if k % 512 == 511 {
                tick(512);
            }
        }
        tick((jobs.len() % 512) as u64);
        out
    };
    let jobs: Vec<(bool, usize)> = wanted_records
        .iter()
        .map(|&i| (true, i))
        .chain(wanted_rejected.iter().map(|&i| (false, i)))
        .collect();
    let chunk = jobs.len().div_ceil(threads).max(1);
    let results: Vec<Vec<(bool, usize, RowOpen)>> = std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .chunks(chunk)
            .map(|part| s.spawn(move || run(part)))
            .collect();
        // A worker that panicked must fail the audit (the caller's task sees the panic and
        // reports an internal error), never silently leave its rows unchecked.
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let mut opened = Opened {
        records: (0..inputs.records.len()).map(|_| None).collect(),
        rejected: (0..inputs.rejected.len()).map(|_| None).collect(),
    };
    for (is_record, i, row) in results.into_iter().flatten() {
        if is_record {
            opened.records[i] = Some(row);
        } else {
            opened.rejected[i] = Some(row);
        }
    }
    opened
}

/// The blocks whose canonical hash the audit needs: those named by the ACK of a record that
/// opens but has no anchoring event (a reorganisation, or a forgery).
pub(super) fn blocks_to_check(inputs: &Inputs, opened: &Opened) -> Vec<u64> {
    let mut out: Vec<u64> = inputs
        .records
        .iter()
        .map(|r| &r.tid)
        .zip(&opened.records)
        .chain(inputs.rejected.iter().map(|r| &r.tid).zip(&opened.rejected))
        .filter_map(|(tid, o)| match (&o.as_ref()?.content, t16(tid)) {
            (Content::Validated(vt), Some(t)) if !inputs.anchors.contains_key(&t) => {
                Some(vt.ack.block_number)
            }
            _ => None,
        })
        .filter(|n| *n <= inputs.head)
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Which table a row is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    Records,
    Rejected,
}

/// A `records` or `rejected` row, seen the same way.
struct Row<'a> {
    table: Table,
    tid: &'a [u8],
    pid: &'a [u8],
    uid: &'a str,
    template_id: &'a str,
    version: i64,
    commitment: &'a [u8],
    leaf_index: Option<i64>,
    envelope: &'a [u8],
    source: Option<&'a str>,
}

/// The findings so far: the first about a record (by tid, else by leaf) wins.
#[derive(Default)]
struct Out {
    findings: Vec<Finding>,
    tids: HashSet<String>,
    leaves: HashSet<u64>,
}

impl Out {
    fn push(&mut self, f: Finding) {
        if let Some(t) = &f.tid {
            if !self.tids.insert(t.clone()) {
                return;
            }
        } else if let Some(l) = f.leaf_index
            && self.leaves.contains(&l)
        {
            return;
        }
        if let Some(l) = f.leaf_index {
            self.leaves.insert(l);
        }
        self.findings.push(f);
    }
}

fn finding(
    kind: Kind,
    tid: Option<&[u8]>,
    leaf: Option<i64>,
    patient: Option<&[u8]>,
    summary: impl Into<String>,
) -> Finding {
    Finding {
        kind,
        severity: kind.severity(),
        tid: tid.map(hex),
        leaf_index: leaf.and_then(|l| u64::try_from(l).ok()),
        patient: patient.map(hex),
        summary: summary.into(),
        evidence: BTreeMap::new(),
    }
}

trait With {
    fn with(self, key: &'static str, value: impl Into<String>) -> Self;
    fn chain(self, ev: &ChainAnchor) -> Self;
}

impl With for Finding {
    fn with(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.evidence.insert(key, value.into());
        self
    }

    fn chain(self, ev: &ChainAnchor) -> Self {
        self.with("chain_commitment", hex(&ev.commitment))
            .with("chain_verdict", verdict_name(ev.verdict))
            .with("block_number", ev.block_number.to_string())
            .with("tx_hash", hex(&ev.tx_hash))
    }
}

fn verdict_name(v: Verdict) -> String {
    match v {
        Verdict::Valid => "valid".into(),
        Verdict::Rejected { index } => format!("rejected (attribute {index})"),
        Verdict::RejectedByValidator => "rejected (validator)".into(),
    }
}

fn in_flight(state: &str) -> bool {
    matches!(state, "queued" | "sent" | "awaiting_wallet")
}

/// Why a verdict is not about its record: the finding's kind, summary and evidence.
type Unbound = (Kind, &'static str, Vec<(&'static str, String)>);

struct Ctx<'a> {
    inputs: &'a Inputs,
    opened: &'a Opened,
    scope: &'a Scope,
    key: &'a SymmetricKey,
    by_commitment: HashMap<[u8; 32], [u8; 16]>,
    subs: HashMap<&'a [u8], &'a crate::store::audit::SubmissionRow>,
    subs_by_leaf: HashMap<i64, &'a crate::store::audit::SubmissionRow>,
    leaf_by_tid: HashMap<&'a [u8], i64>,
    records_by_tid: HashMap<&'a [u8], usize>,
    rejected_by_tid: HashMap<&'a [u8], usize>,
    envelopes: HashMap<[u8; 32], Vec<&'a [u8]>>,
}

/// Compares everything and returns what the audit looked at and what it found.
pub(super) fn evaluate(
    inputs: &Inputs,
    opened: &Opened,
    scope: &Scope,
    keys: &RelayKeys,
) -> (Counts, Vec<Finding>) {
    let mut envelopes: HashMap<[u8; 32], Vec<&[u8]>> = HashMap::new();
    for (tid, env) in inputs
        .records
        .iter()
        .map(|r| (&r.tid, &r.envelope))
        .chain(inputs.rejected.iter().map(|r| (&r.tid, &r.envelope)))
        .filter(|(_, e)| !e.is_empty())
    {
        envelopes.entry(keccak256(env)).or_default().push(tid);
    }
    let ctx = Ctx {
        inputs,
        opened,
        scope,
        key: &keys.at_rest,
        by_commitment: inputs
            .anchors
            .iter()
            .map(|(t, a)| (a.commitment, *t))
            .collect(),
        subs: inputs
            .submissions
            .iter()
            .map(|s| (s.tid.as_slice(), s))
            .collect(),
        subs_by_leaf: inputs
            .submissions
            .iter()
            .map(|s| (s.leaf_index, s))
            .collect(),
        leaf_by_tid: inputs
            .leaves
            .iter()
            .filter_map(|l| Some((l.tid.as_deref()?, l.leaf_index)))
            .collect(),
        records_by_tid: inputs
            .records
            .iter()
            .enumerate()
            .map(|(i, r)| (r.tid.as_slice(), i))
            .collect(),
        rejected_by_tid: inputs
            .rejected
            .iter()
            .enumerate()
            .map(|(i, r)| (r.tid.as_slice(), i))
            .collect(),
        envelopes,
    };
    let mut out = Out::default();
    let mut counts = Counts {
        log_size: u64::try_from(inputs.log_size).unwrap_or(0),
        leaves: inputs.leaves.len() as u64,
        anchors: inputs.anchors.len() as u64,
        checkpoints: inputs.checkpoints.len() as u64,
        ..Counts::default()
    };
    let index = ScopeIndex::new(inputs);

    // 1. Every row of `records` and `rejected` in scope.
    for (i, r) in inputs.records.iter().enumerate() {
        if !index.covers(scope, &r.tid, &r.pid, r.stored_at) {
            continue;
        }
        counts.records += 1;
        if r.erased_by.is_some() {
            if ctx.check_erased(&mut out, r) {
                counts.erased += 1;
            }
            continue;
        }
        let row = Row {
            table: Table::Records,
            tid: &r.tid,
            pid: &r.pid,
            uid: &r.uid,
            template_id: &r.template_id,
            version: r.version,
            commitment: &r.commitment,
            leaf_index: Some(r.leaf_index),
            envelope: &r.envelope,
            source: None,
        };
        if let Some(open) = &opened.records[i]
            && ctx.check_row(&mut out, &row, open)
        {
            counts.verified += 1;
        }
    }
    for (i, r) in inputs.rejected.iter().enumerate() {
        if !index.covers(scope, &r.tid, &r.pid, r.rejected_at) {
            continue;
        }
        counts.rejected += 1;
        let row = Row {
            table: Table::Rejected,
            tid: &r.tid,
            pid: &r.pid,
            uid: &r.uid,
            template_id: &r.template_id,
            version: r.version,
            commitment: &r.commitment,
            leaf_index: r.leaf_index,
            envelope: &r.envelope,
            source: Some(&r.source),
        };
        if let Some(open) = &opened.rejected[i] {
            ctx.check_row(&mut out, &row, open);
        }
    }
    counts.in_flight = inputs
        .submissions
        .iter()
        .filter(|s| in_flight(&s.state) && index.covers(scope, &s.tid, &s.pid, s.created_at))
        .count() as u64;

    // 2. Every anchor on chain must be in the store (or still in flight).
    let mut anchored: Vec<(&[u8; 16], &ChainAnchor)> = inputs.anchors.iter().collect();
    anchored.sort_by_key(|(_, a)| (a.block_number, a.log_index));
    for (tid, ev) in anchored {
        let sub = ctx.subs.get(tid.as_slice()).copied();
        if let Some(p) = &scope.patient
            && sub.is_none_or(|s| s.pid != p.as_bytes())
        {
            continue;
        }
        let at = sub
            .and_then(|s| ms(s.created_at))
            .or(ev.block_timestamp.map(|t| t * 1000));
        if !scope.in_time(at) {
            continue;
        }
        ctx.check_anchor_stored(
            &mut out,
            tid,
            ev,
            "anchored on chain but missing from the store",
        );
    }

    // 3. The log. A patient's audit keeps only the findings about that patient's leaves
    //    (by their submission's patient) and skips the checkpoints, which cover everyone.
    ctx.check_log(&mut out);
    if scope.patient.is_none() {
        ctx.check_checkpoints(&mut out);
    }

    // 4. Gaps in a patient's previous-record chain: a previous record that is anchored but
    //    gone from the store (this finds deletions a patient's audit cannot see otherwise).
    for (i, r) in inputs.records.iter().enumerate() {
        let Some(RowOpen {
            content: Content::Validated(vt),
            ..
        }) = &opened.records[i]
        else {
            continue;
        };
        if !index.covers(scope, &r.tid, &r.pid, r.stored_at) {
            continue;
        }
        let Some(prev) = vt.signed.ti().prev else {
            continue;
        };
        if let Some(u) = ctx.by_commitment.get(prev.as_bytes())
            && let Some(ev) = inputs.anchors.get(u)
        {
            ctx.check_anchor_stored(
                &mut out,
                u,
                ev,
                "the previous record of a patient's stored record is gone from the store",
            );
        }
    }

    let mut findings = out.findings;
    findings.sort_by_key(|f| {
        (
            match f.severity {
                Severity::Tampering => 0,
                Severity::Problem => 1,
                Severity::Info => 2,
            },
            f.leaf_index.unwrap_or(u64::MAX),
            f.tid.clone(),
        )
    });
    (counts, findings)
}

impl Ctx<'_> {
    fn sub_pid(&self, tid: &[u8]) -> Option<&[u8]> {
        self.subs.get(tid).map(|s| s.pid.as_slice())
    }

    fn leaf_of(&self, tid: &[u8]) -> Option<i64> {
        self.leaf_by_tid
            .get(tid)
            .copied()
            .or_else(|| self.subs.get(tid).map(|s| s.leaf_index))
    }

    /// `true` when the row checks out.
    fn check_row(&self, out: &mut Out, r: &Row<'_>, open: &RowOpen) -> bool {
        let Some(tid) = t16(r.tid) else {
            out.push(
                finding(
                    Kind::Forged,
                    Some(r.tid),
                    r.leaf_index,
                    Some(r.pid),
                    "the transaction id is malformed",
                )
                .with("store_tid", hex(r.tid)),
            );
            return false;
        };
        let ev = self.inputs.anchors.get(&tid);
        let relay_refused = r.table == Table::Rejected && r.source == Some("relay");
        let stored_as = if r.table == Table::Records {
            "valid"
        } else {
            "rejected"
        };
        if let Some(ev) = ev {
            let chain_valid = ev.verdict == Verdict::Valid;
            if chain_valid != (r.table == Table::Records) {
                out.push(
                    finding(
                        Kind::VerdictFlipped,
                        Some(r.tid),
                        self.leaf_of(r.tid),
                        Some(r.pid),
                        format!(
                            "stored as {stored_as}, but the chain's verdict is {}",
                            verdict_name(ev.verdict)
                        ),
                    )
                    .with("store_verdict", stored_as)
                    .chain(ev),
                );
                return false;
            }
            if relay_refused {
                out.push(
                    finding(
                        Kind::Modified,
                        Some(r.tid),
                        self.leaf_of(r.tid),
                        Some(r.pid),
                        "kept as refused by the relay, but it was anchored",
                    )
                    .with("store_source", "relay")
                    .chain(ev),
                );
                return false;
            }
        }
        match &open.content {
            Content::Validated(vt) if !relay_refused => {
                self.check_validated(out, r, &tid, ev, vt, open)
            }
            Content::Signed(s) if relay_refused => self.check_refused(out, r, &tid, s, open),
            Content::NotOpen => {
                self.not_open(out, r, &tid, ev, relay_refused);
                false
            }
            _ => {
                let kind = if ev.is_some() || relay_refused {
                    Kind::Modified
                } else {
                    Kind::Forged
                };
                out.push(finding(
                    kind,
                    Some(r.tid),
                    self.leaf_of(r.tid).or(r.leaf_index),
                    Some(r.pid),
                    "the row opens but does not hold what its table holds",
                ));
                false
            }
        }
    }

    /// The row does not open under its own transaction id: does it hold another record?
    fn not_open(
        &self,
        out: &mut Out,
        r: &Row<'_>,
        tid: &[u8; 16],
        ev: Option<&ChainAnchor>,
        relay_refused: bool,
    ) {
        let mut candidates: Vec<[u8; 16]> = Vec::new();
        if let Some(tids) = self.envelopes.get(&keccak256(r.envelope)) {
            candidates.extend(tids.iter().filter_map(|t| t16(t)).filter(|t| t != tid));
        }
        if let Some(u) = c32(r.commitment).and_then(|c| self.by_commitment.get(&c))
            && u != tid
        {
            candidates.push(*u);
        }
        for u in candidates {
            let (pid, commitment) = match open_as(r.envelope, self.key, &u) {
                Content::Validated(vt) => (
                    *vt.signed.ti().pid.as_bytes(),
                    *vt.signed.commitment().as_bytes(),
                ),
                Content::Signed(s) => (*s.ti().pid.as_bytes(), *s.commitment().as_bytes()),
                _ => continue,
            };
            let own_pid = self.sub_pid(r.tid).unwrap_or(r.pid);
            let older = match (ev, self.inputs.anchors.get(&u)) {
                (Some(mine), Some(theirs)) => {
                    (theirs.block_number, theirs.log_index) < (mine.block_number, mine.log_index)
                }
                _ => false,
            };
            let (kind, summary) = if ev.is_some() && pid == own_pid && older {
                (
                    Kind::RolledBack,
                    "replaced by an older record of the same patient",
                )
            } else {
                (
                    Kind::Replayed,
                    "holds another record's content under this transaction id",
                )
            };
            let mut f = finding(
                kind,
                Some(r.tid),
                self.leaf_of(r.tid).or(r.leaf_index),
                Some(own_pid),
                summary,
            )
            .with("holds_content_of", hex(&u))
            .with("content_commitment", hex(&commitment))
            .with("store_commitment", hex(r.commitment));
            if let Some(ev) = ev {
                f = f.chain(ev);
            }
            out.push(f);
            return;
        }
        let kind = if ev.is_some() || relay_refused {
            Kind::Modified
        } else {
            Kind::Forged
        };
        let summary = if ev.is_some() || relay_refused {
            "the sealed record does not open: its bytes were changed"
        } else {
            "never anchored on chain, and the sealed record does not open"
        };
        let mut f = finding(
            kind,
            Some(r.tid),
            self.leaf_of(r.tid).or(r.leaf_index),
            Some(r.pid),
            summary,
        )
        .with("store_commitment", hex(r.commitment));
        if let Some(ev) = ev {
            f = f.chain(ev);
        }
        out.push(f);
    }

    fn check_validated(
        &self,
        out: &mut Out,
        r: &Row<'_>,
        tid: &[u8; 16],
        ev: Option<&ChainAnchor>,
        vt: &ValidatedTransaction,
        open: &RowOpen,
    ) -> bool {
        let ti = vt.signed.ti();
        let leaf = self.leaf_of(r.tid).or(r.leaf_index);
        let content_pid = ti.pid.as_bytes().as_slice();
        let commitment = open.commitment.unwrap_or_default();
        let Some(ev) = ev else {
            let ack = &vt.ack;
            let canonical = self
                .inputs
                .canonical
                .get(&ack.block_number)
                .copied()
                .flatten();
            let reorged = canonical.is_some_and(|h| h != *ack.block_hash.as_bytes())
                && ack.chain_id == self.inputs.chain_id;
            let (kind, summary) = if reorged {
                (
                    Kind::Reorged,
                    "the ACK's block is no longer on the canonical chain and the record has no anchor",
                )
            } else {
                (Kind::Forged, "never anchored on chain")
            };
            out.push(
                finding(kind, Some(r.tid), leaf, Some(content_pid), summary)
                    .with("store_commitment", hex(r.commitment))
                    .with("ack_block_number", ack.block_number.to_string())
                    .with("ack_block_hash", ack.block_hash.to_hex())
                    .with(
                        "canonical_block_hash",
                        canonical.map_or_else(|| "none".into(), |h| hex(&h)),
                    ),
            );
            return false;
        };
        let base = |kind: Kind, summary: &str| {
            finding(kind, Some(r.tid), leaf, Some(content_pid), summary).chain(ev)
        };
        if ti.tid.as_bytes() != tid {
            out.push(base(
                Kind::Modified,
                "the sealed record names another transaction id",
            ));
            return false;
        }
        if commitment != ev.commitment {
            out.push(
                base(Kind::Forged, "anchored on chain with another commitment")
                    .with("content_commitment", hex(&commitment)),
            );
            return false;
        }
        if !open.signature_ok {
            out.push(
                base(Kind::Modified, "the author's signature does not verify")
                    .with("author", ti.uid.as_str()),
            );
            return false;
        }
        if let Err((kind, summary, evidence)) = self.values_bound(&vt.signed, ev) {
            let f = evidence
                .into_iter()
                .fold(base(kind, summary), |f, (k, v)| f.with(k, v));
            out.push(f);
            return false;
        }
        let ack = &vt.ack;
        if ack.tx_hash.as_bytes() == &ev.tx_hash
            && (ack.block_hash.as_bytes() != &ev.block_hash || ack.block_number != ev.block_number)
        {
            out.push(
                base(
                    Kind::Reorged,
                    "the anchoring transaction moved to another block (a reorganisation)",
                )
                .with("ack_block_number", ack.block_number.to_string())
                .with("ack_block_hash", ack.block_hash.to_hex()),
            );
            return false;
        }
        let ack_ok = ack.tx_hash.as_bytes() == &ev.tx_hash
            && ack.block_number == ev.block_number
            && ack.block_hash.as_bytes() == &ev.block_hash
            && ack.log_index == ev.log_index
            && ack.chain_id == self.inputs.chain_id
            && ack.verdict.is_valid() == (ev.verdict == Verdict::Valid)
            && format!("0x{}", ack.contract.to_hex()).eq_ignore_ascii_case(&self.inputs.registry);
        if !ack_ok {
            out.push(
                base(Kind::Modified, "the stored ACK differs from the chain")
                    .with("ack_tx_hash", ack.tx_hash.to_hex())
                    .with("ack_block_number", ack.block_number.to_string()),
            );
            return false;
        }
        if r.pid != content_pid {
            out.push(
                base(
                    Kind::Moved,
                    "attached to another patient than the one its author signed",
                )
                .with("store_patient", hex(r.pid))
                .with("signed_patient", hex(content_pid)),
            );
            return false;
        }
        let leaf_col_ok = match (r.leaf_index, self.leaf_by_tid.get(r.tid)) {
            (Some(col), Some(log)) => col == *log,
            (None, _) => false,
            (Some(_), None) => true, // a hole: the log check reports it
        };
        let column = if r.uid != ti.uid.as_str() {
            Some("uid")
        } else if r.template_id != ti.template.id.as_str()
            || r.version != i64::from(ti.template.version.get())
        {
            Some("template")
        } else if r.commitment != commitment {
            Some("commitment")
        } else if !leaf_col_ok {
            Some("leaf_index")
        } else {
            None
        };
        if let Some(column) = column {
            out.push(
                base(
                    Kind::Modified,
                    format!("the {column} column differs from the signed record").as_str(),
                )
                .with("column", column)
                .with("store_commitment", hex(r.commitment)),
            );
            return false;
        }
        true
    }

    /// Whether the chain's verdict is about this record: the anchor's handle is the
    /// record's template as the registry published it, and the values it judged are the
    /// record's own on-chain values under that template. `Err` is the finding's kind,
    /// summary and evidence.
    fn values_bound(
        &self,
        signed: &SignedInitialTransaction,
        ev: &ChainAnchor,
    ) -> Result<(), Unbound> {
        let reference = &signed.ti().template;
        let handle = ("chain_handle", ev.handle.to_string());
        let Some(info) = self.inputs.chain_templates.get(&ev.handle) else {
            return Err((
                Kind::ValuesMismatch,
                "anchored under a template handle the registry does not know",
                vec![handle],
            ));
        };
        if info.id != reference.id.chain_id() || info.version != reference.version.get() {
            return Err((
                Kind::ValuesMismatch,
                "anchored under another template than the one its author signed",
                vec![handle, ("signed_template", reference.to_string())],
            ));
        }
        let Some(template) = self.inputs.templates.get(&info.template_hash) else {
            return Err((
                Kind::Modified,
                "the store has no template with the hash the registry published for it",
                vec![("chain_template_hash", hex(&info.template_hash))],
            ));
        };
        let got = mediblock_protocol::generator::on_chain_values(signed, template)
            .map(|values| mediblock_protocol::generator::values_hash(&values));
        if got.as_ref().ok() == Some(&ev.values_hash) {
            return Ok(());
        }
        Err((
            Kind::ValuesMismatch,
            "the chain judged other values than the record's: its verdict is not about this \
             record",
            vec![
                ("chain_values_hash", hex(&ev.values_hash)),
                (
                    "record_values_hash",
                    got.map_or_else(|e| format!("none ({e})"), |h| hex(&h)),
                ),
            ],
        ))
    }

    fn check_refused(
        &self,
        out: &mut Out,
        r: &Row<'_>,
        tid: &[u8; 16],
        s: &SignedInitialTransaction,
        open: &RowOpen,
    ) -> bool {
        let ti = s.ti();
        let base = |kind: Kind, summary: &str| {
            finding(kind, Some(r.tid), None, Some(ti.pid.as_bytes()), summary)
        };
        if ti.tid.as_bytes() != tid || !open.signature_ok || r.leaf_index.is_some() {
            out.push(base(
                Kind::Modified,
                "the refused record's content or signature was changed",
            ));
            return false;
        }
        if r.pid != ti.pid.as_bytes() {
            out.push(
                base(
                    Kind::Moved,
                    "attached to another patient than the one its author signed",
                )
                .with("store_patient", hex(r.pid))
                .with("signed_patient", ti.pid.to_hex()),
            );
            return false;
        }
        if r.uid != ti.uid.as_str()
            || r.template_id != ti.template.id.as_str()
            || r.version != i64::from(ti.template.version.get())
            || Some(r.commitment) != open.commitment.as_ref().map(|c| c.as_slice())
        {
            out.push(base(
                Kind::Modified,
                "a column differs from the signed record",
            ));
            return false;
        }
        true
    }

    /// An erased row: lawful when an anchored, admin-signed erasure record names it.
    /// `true` when lawful.
    fn check_erased(&self, out: &mut Out, r: &crate::store::audit::RecordRow) -> bool {
        let leaf = self.leaf_of(&r.tid).or(Some(r.leaf_index));
        let Some(tid) = t16(&r.tid) else {
            out.push(finding(
                Kind::Forged,
                Some(&r.tid),
                leaf,
                Some(&r.pid),
                "the transaction id is malformed",
            ));
            return false;
        };
        let Some(ev) = self.inputs.anchors.get(&tid) else {
            out.push(finding(
                Kind::Forged,
                Some(&r.tid),
                leaf,
                Some(&r.pid),
                "marked erased, but never anchored on chain",
            ));
            return false;
        };
        if ev.verdict != Verdict::Valid {
            out.push(
                finding(
                    Kind::VerdictFlipped,
                    Some(&r.tid),
                    leaf,
                    Some(&r.pid),
                    "stored as valid (erased), but the chain rejected it",
                )
                .with("store_verdict", "valid")
                .chain(ev),
            );
            return false;
        }
        if r.commitment != ev.commitment {
            out.push(
                finding(
                    Kind::Modified,
                    Some(&r.tid),
                    leaf,
                    Some(&r.pid),
                    "the commitment kept after erasure differs from the chain",
                )
                .with("store_commitment", hex(&r.commitment))
                .chain(ev),
            );
            return false;
        }
        match self.lawful_erasure(r, &tid) {
            Ok((erasure, reason)) => {
                out.push(
                    finding(
                        Kind::Erased,
                        Some(&r.tid),
                        leaf,
                        Some(&r.pid),
                        "lawfully erased: content destroyed, commitment and leaf kept",
                    )
                    .with("erasure_tid", hex(&erasure))
                    .with("reason", reason)
                    .with("erased_at", r.erased_at.unwrap_or_default().to_string())
                    .chain(ev),
                );
                true
            }
            Err(why) => {
                out.push(
                    finding(
                        Kind::Deleted,
                        Some(&r.tid),
                        leaf,
                        Some(&r.pid),
                        format!("content destroyed without a lawful erasure: {why}"),
                    )
                    .with(
                        "erased_by",
                        r.erased_by.as_deref().map(hex).unwrap_or_default(),
                    )
                    .chain(ev),
                );
                false
            }
        }
    }

    /// The erasure record that `r.erased_by` names, if it is anchored as valid, stored,
    /// signed by an administrator, of the erasure template, and names this record.
    fn lawful_erasure(
        &self,
        r: &crate::store::audit::RecordRow,
        tid: &[u8; 16],
    ) -> Result<([u8; 16], String), &'static str> {
        let e = r
            .erased_by
            .as_deref()
            .and_then(t16)
            .ok_or("no erasure record named")?;
        let ev = self
            .inputs
            .anchors
            .get(&e)
            .ok_or("the erasure record is not anchored")?;
        if ev.verdict != Verdict::Valid {
            return Err("the erasure record was rejected by the chain");
        }
        let i = *self
            .records_by_tid
            .get(e.as_slice())
            .ok_or("the erasure record is not stored")?;
        let Some(RowOpen {
            content: Content::Validated(vt),
            commitment: Some(c),
            signature_ok: true,
        }) = &self.opened.records[i]
        else {
            return Err("the erasure record does not open or its signature does not verify");
        };
        if *c != ev.commitment {
            return Err("the erasure record differs from its anchor");
        }
        let ti = vt.signed.ti();
        if ti.template.id.as_str() != ERASURE_TEMPLATE {
            return Err("the named record is not an erasure record");
        }
        match self.inputs.users.get(ti.uid.as_str()) {
            Some((Role::Admin, _)) => {}
            _ => return Err("the erasure record is not signed by an administrator"),
        }
        let named = AttrName::new(ERASED_TID)
            .ok()
            .and_then(|n| match ti.attributes.get(&n) {
                Some(Value::Text(t)) => Some(t.clone()),
                _ => None,
            });
        if named.as_deref() != Some(hex(tid).as_str()) {
            return Err("the erasure record names another record");
        }
        if ti.pid.as_bytes() != r.pid.as_slice() {
            return Err("the erasure record is about another patient");
        }
        let reason = AttrName::new(REASON)
            .ok()
            .and_then(|n| match ti.attributes.get(&n) {
                Some(Value::Enum(v)) => Some(v.clone()),
                _ => None,
            })
            .unwrap_or_default();
        Ok((e, reason))
    }

    /// An anchor must be in the store: in `records` or `rejected` (whichever, the row's own
    /// check judges the verdict), or still in flight.
    fn check_anchor_stored(&self, out: &mut Out, tid: &[u8; 16], ev: &ChainAnchor, summary: &str) {
        let t = tid.as_slice();
        if self.records_by_tid.contains_key(t) || self.rejected_by_tid.contains_key(t) {
            return;
        }
        let sub = self.subs.get(t);
        if sub.is_some_and(|s| in_flight(&s.state)) {
            return;
        }
        // Anchored after the snapshot began and unknown to it: accepted meanwhile, in flight.
        if sub.is_none() && ev.block_number > self.inputs.head_before_snapshot {
            return;
        }
        // A record the relay refused to store because its tid was anchored with another
        // commitment or other values (`anchored_otherwise`): whatever the row says, the
        // signed record decides whether the anchor is its own.
        if let Some(s) = sub.filter(|s| !s.failed_sealed_ti.is_empty())
            && let Content::Signed(signed) = open_as(&s.failed_sealed_ti, self.key, tid)
            && signed.ti().tid.as_bytes() == tid
        {
            let unbound = if *signed.commitment().as_bytes() != ev.commitment {
                Some((
                    Kind::Forged,
                    "anchored with another commitment than the record the relay refused",
                    Vec::new(),
                ))
            } else {
                self.values_bound(&signed, ev).err()
            };
            if let Some((kind, why, evidence)) = unbound {
                let f = finding(kind, Some(t), self.leaf_of(t), Some(&s.pid), why)
                    .chain(ev)
                    .with("submission_state", s.state.clone());
                out.push(evidence.into_iter().fold(f, |f, (k, v)| f.with(k, v)));
                return;
            }
        }
        let mut f = finding(
            Kind::Deleted,
            Some(t),
            self.leaf_of(t),
            sub.map(|s| s.pid.as_slice()),
            summary,
        )
        .chain(ev);
        if let Some(s) = sub {
            f = f.with("submission_state", s.state.clone());
        }
        out.push(f);
    }

    /// The dense log: no holes, every leaf's commitment is its record's anchor.
    fn check_log(&self, out: &mut Out) {
        let inputs = self.inputs;
        let present: HashMap<i64, &crate::store::audit::LeafRow> =
            inputs.leaves.iter().map(|l| (l.leaf_index, l)).collect();
        let time_of = |leaf: i64| self.subs_by_leaf.get(&leaf).and_then(|s| ms(s.created_at));
        // Holes below the head, and leaves that rows refer to above it (a truncated log).
        let mut referenced: Vec<(i64, &[u8])> = inputs
            .submissions
            .iter()
            .map(|s| (s.leaf_index, s.tid.as_slice()))
            .chain(
                inputs
                    .records
                    .iter()
                    .map(|r| (r.leaf_index, r.tid.as_slice())),
            )
            .chain(
                inputs
                    .rejected
                    .iter()
                    .filter_map(|r| Some((r.leaf_index?, r.tid.as_slice()))),
            )
            .filter(|(i, _)| *i >= inputs.log_size)
            .collect();
        referenced.sort_unstable();
        referenced.dedup_by_key(|(i, _)| *i);
        let holes = (0..inputs.log_size)
            .filter(|i| !present.contains_key(i))
            .map(|i| {
                let tid = self
                    .subs_by_leaf
                    .get(&i)
                    .map(|s| s.tid.as_slice())
                    .or_else(|| {
                        inputs
                            .records
                            .iter()
                            .find(|r| r.leaf_index == i)
                            .map(|r| r.tid.as_slice())
                    });
                (i, tid)
            })
            .chain(
                referenced
                    .into_iter()
                    .filter(|(i, _)| !present.contains_key(i))
                    .map(|(i, t)| (i, Some(t))),
            );
        let mine = |tid: Option<&[u8]>| match &self.scope.patient {
            None => true,
            Some(p) => tid.and_then(|t| self.sub_pid(t)) == Some(p.as_bytes().as_slice()),
        };
        for (i, tid) in holes {
            if !self.scope.in_time(time_of(i)) || !mine(tid) {
                continue;
            }
            let mut f = finding(
                Kind::Deleted,
                tid,
                Some(i),
                tid.and_then(|t| self.sub_pid(t)),
                "a hole in the dense log: the leaf is missing",
            )
            .with("log_size", inputs.log_size.to_string());
            if let Some(ev) = tid.and_then(t16).and_then(|t| inputs.anchors.get(&t)) {
                f = f.chain(ev);
            }
            out.push(f);
        }
        for leaf in &inputs.leaves {
            let i = leaf.leaf_index;
            let tid = leaf.tid.as_deref();
            if !self.scope.in_time(time_of(i)) || !mine(tid) {
                continue;
            }
            let base = |kind: Kind, summary: &str| {
                finding(
                    kind,
                    tid,
                    Some(i),
                    tid.and_then(|t| self.sub_pid(t)),
                    summary,
                )
                .with("leaf_data", hex(&leaf.leaf_data))
            };
            if i < 0 || i >= inputs.log_size {
                out.push(
                    base(Kind::LogRewritten, "a leaf beyond the log's size")
                        .with("log_size", inputs.log_size.to_string()),
                );
                continue;
            }
            let Some(t) = tid.and_then(t16) else {
                out.push(base(
                    Kind::LogRewritten,
                    "a leaf without a valid transaction id",
                ));
                continue;
            };
            match inputs.anchors.get(&t) {
                Some(ev) => {
                    if leaf.leaf_data != ev.commitment {
                        out.push(
                            base(
                                Kind::LogRewritten,
                                "the leaf's commitment differs from the record's anchor",
                            )
                            .chain(ev),
                        );
                    }
                }
                None => {
                    // In flight, a wallet submission that expired unsent (the registry
                    // refuses it after its deadline; an anchor for it would be `deleted`), or
                    // one that failed because the chain shows another tid with its ticket.
                    let ticket_taken = || {
                        inputs
                            .anchors
                            .keys()
                            .any(|other| other[..8] == t[..8] && *other != t)
                    };
                    let ok = self.subs.get(t.as_slice()).is_some_and(|s| {
                        (in_flight(&s.state)
                            || (s.state == "expired" && s.mode == "wallet")
                            || (s.state == "failed" && ticket_taken()))
                            && s.leaf_index == i
                            && s.commitment == leaf.leaf_data
                    });
                    if !ok {
                        out.push(base(
                            Kind::Forged,
                            "a leaf whose record was never anchored and is not in flight",
                        ));
                    }
                }
            }
        }
    }

    /// The log's prefix roots against every checkpoint anchored on chain.
    fn check_checkpoints(&self, out: &mut Out) {
        let inputs = self.inputs;
        let mut checkpoints = inputs.checkpoints.clone();
        checkpoints.sort_by_key(|c| c.size);
        // The relay's own copies (proof files are built from them) must be the chain's.
        match &inputs.stored_checkpoints {
            Err(why) => out.push(
                finding(
                    Kind::LogRewritten,
                    None,
                    None,
                    None,
                    "a stored checkpoint does not decode",
                )
                .with("detail", why.clone()),
            ),
            Ok(stored) => {
                for (size, root) in stored {
                    if let Some(cp) = checkpoints.iter().find(|c| c.size == *size)
                        && cp.root != *root
                    {
                        out.push(
                            finding(
                                Kind::LogRewritten,
                                None,
                                None,
                                None,
                                "a stored checkpoint differs from the one anchored on chain",
                            )
                            .with("checkpoint_size", size.to_string())
                            .with("stored_checkpoint_root", hex(root))
                            .with("checkpoint_root", hex(&cp.root))
                            .with("tx_hash", hex(&cp.tx_hash)),
                        );
                    }
                }
            }
        }
        if checkpoints.is_empty() {
            return;
        }
        // The first leaf already reported (a hole or a rewritten leaf) explains every
        // checkpoint that covers it.
        let first_bad = out
            .findings
            .iter()
            .filter(|f| matches!(f.kind, Kind::Deleted | Kind::LogRewritten | Kind::Forged))
            .filter_map(|f| f.leaf_index)
            .min();
        let present: HashMap<i64, &[u8]> = inputs
            .leaves
            .iter()
            .map(|l| (l.leaf_index, l.leaf_data.as_slice()))
            .collect();
        let mut frontier = Frontier::<Keccak256Tree>::new();
        let mut roots: HashMap<u64, [u8; 32]> = HashMap::new();
        let wanted: HashSet<u64> = checkpoints.iter().map(|c| c.size).collect();
        let max = checkpoints.last().map_or(0, |c| c.size);
        let mut i = 0u64;
        while i < max {
            let Some(data) = i64::try_from(i).ok().and_then(|k| present.get(&k)) else {
                break;
            };
            frontier.push(Keccak256Tree::hash_leaf(data));
            i += 1;
            if wanted.contains(&i) {
                roots.insert(i, frontier.root());
            }
        }
        for cp in checkpoints {
            if first_bad.is_some_and(|b| b < cp.size) {
                continue;
            }
            let f = match roots.get(&cp.size) {
                Some(root) if *root == cp.root => continue,
                Some(root) => finding(
                    Kind::LogRewritten,
                    None,
                    None,
                    None,
                    "the log's root differs from a checkpoint anchored on chain",
                )
                .with("store_root", hex(root)),
                None => finding(
                    Kind::LogRewritten,
                    None,
                    None,
                    None,
                    "the log is shorter than a checkpoint anchored on chain",
                )
                .with("log_size", inputs.log_size.to_string()),
            };
            out.push(
                f.with("checkpoint_size", cp.size.to_string())
                    .with("checkpoint_root", hex(&cp.root))
                    .with("block_number", cp.block_number.to_string())
                    .with("tx_hash", hex(&cp.tx_hash)),
            );
        }
    }
}
