//! Proof files on the relay's side: export one record's bundle from the store (the API and
//! `mediblock proof`), and `mediblock verify`: check a bundle with nothing but an Ethereum
//! JSON-RPC endpoint. The format and its pure checks are `mediblock_protocol::proof`;
//! `docs/PROOFS.md` documents them.

use std::fmt::Write as _;
use std::path::Path;

use alloy::primitives::{Address, B256, FixedBytes};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent as _;
use mediblock_protocol::encoding::Canonical as _;
use mediblock_protocol::envelope::Envelope;
use mediblock_protocol::ids::{ChainHash, Commitment, EthAddress, PatientId, TxId, UserId};
use mediblock_protocol::merkle::{self, Keccak256Tree, TreeHasher as _};
use mediblock_protocol::proof::{
    Author, ChainFacts, ChainPosition, ChainRef, CheckpointEvent, Content, PROOF_FORMAT,
    PROOF_VERSION, Pinned, ProofBundle, RecordEvent, RecordPart, Report, TemplateInfo,
    describe_verdict,
};
use mediblock_protocol::validated::{Ack, ValidatedTransaction, Verdict};

use crate::AppState;
use crate::chain::registry::{self, AnchoredRecord, MediBlockRegistry, Verdict as ChainVerdict};
use crate::chain::{AnchoredCheckpoint, Chain};
use crate::store::StoreError;

/// Why a record's proof file cannot be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// No stored or chain-rejected record has this transaction id.
    #[error("no logged record has this transaction id")]
    NotFound,
    /// No anchored checkpoint covers the record's leaf yet.
    #[error("no anchored checkpoint covers this record yet; try again shortly")]
    NotCheckpointed,
    /// The stored record does not open under the relay's at-rest key.
    #[error("the stored record does not open: it was changed in the store")]
    Unreadable,
    /// The store's log, the record and the checkpoint disagree (tampering; run the audit).
    #[error("the store is inconsistent: {0}")]
    Inconsistent(String),
    /// The relay has no chain client.
    #[error("the relay has no chain")]
    NoChain,
    /// The store or the chain failed.
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for ExportError {
    /// A row that does not decode was changed outside the relay: that is an inconsistent
    /// store (`409 store_inconsistent`), not a failure of the relay.
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Corrupt(why) => Self::Inconsistent(format!("corrupt row: {why}")),
            e => Self::Internal(e.to_string()),
        }
    }
}

/// The exported bundle and the record's patient (for the access log).
#[derive(Debug)]
pub struct Exported {
    /// The proof file.
    pub bundle: ProofBundle,
    /// Whose record it is.
    pub pid: PatientId,
}

/// Builds the proof file of `tid` against the latest anchored checkpoint. With
/// `withhold_content` (or for a lawfully erased record) the signed TI is left out.
pub async fn export(
    state: &AppState,
    tid: &TxId,
    withhold_content: bool,
) -> Result<Exported, ExportError> {
    let chain = state.chain.as_ref().ok_or(ExportError::NoChain)?;
    let store = &state.store;
    let rec = store
        .logged_record(tid)
        .await?
        .ok_or(ExportError::NotFound)?;
    let cp = store
        .latest_anchored_checkpoint()
        .await?
        .filter(|c| c.size() > rec.leaf_index)
        .ok_or(ExportError::NotCheckpointed)?;
    let anchoring = cp.anchoring.ok_or(ExportError::NotCheckpointed)?;
    let leaves = store.log_prefix(cp.size()).await?;
    if leaves.len() as u64 != cp.size() || leaves.iter().enumerate().any(|(i, l)| l.0 != i as u64) {
        return Err(ExportError::Inconsistent(
            "the log has holes below the checkpoint".into(),
        ));
    }
    let hashes: Vec<_> = leaves
        .iter()
        .map(|(_, data)| Keccak256Tree::hash_leaf(data))
        .collect();
    if merkle::root::<Keccak256Tree>(&hashes) != *cp.root() {
        return Err(ExportError::Inconsistent(
            "the log does not have the anchored checkpoint's root".into(),
        ));
    }
    let index = usize::try_from(rec.leaf_index).map_err(|_| ExportError::NotCheckpointed)?;
    if leaves.get(index).map(|l| l.1) != Some(*rec.commitment.as_bytes()) {
        return Err(ExportError::Inconsistent(
            "the record's commitment is not its leaf".into(),
        ));
    }
    let inclusion = merkle::inclusion_proof::<Keccak256Tree>(&hashes, rec.leaf_index)
        .map_err(|e| ExportError::Internal(e.to_string()))?;

    let validated = if rec.erased {
        None
    } else {
        let envelope =
            Envelope::from_canonical_bytes(&rec.envelope).map_err(|_| ExportError::Unreadable)?;
        let v = ValidatedTransaction::open_at_rest(&envelope, &state.keys.at_rest, tid)
            .map_err(|_| ExportError::Unreadable)?;
        if v.signed.commitment() != rec.commitment || v.signed.ti().tid != *tid {
            return Err(ExportError::Inconsistent(
                "the sealed record is not the row's record".into(),
            ));
        }
        Some(v)
    };
    let content = match (&validated, withhold_content) {
        (Some(v), false) => {
            let uid = &v.signed.ti().uid;
            let author = store
                .user(uid)
                .await?
                .ok_or_else(|| ExportError::Inconsistent(format!("the author {uid} is unknown")))?;
            if v.signed.verify(&author.keys).is_err() {
                return Err(ExportError::Inconsistent(
                    "the author's enrolled key does not verify the record".into(),
                ));
            }
            let reference = &v.signed.ti().template;
            let template = store
                .template(&reference.id, reference.version)
                .await?
                .ok_or_else(|| {
                    ExportError::Inconsistent(format!(
                        "the record's template {reference} is unknown"
                    ))
                })?;
            Some(Content {
                signed_ti: v.signed.to_canonical_bytes(),
                template: template.to_canonical_bytes(),
                author: Author {
                    uid: uid.clone(),
                    ed25519: author.keys.signing_bytes(),
                },
            })
        }
        _ => None,
    };
    let record_anchor = match validated {
        Some(v) => Some(v.ack),
        None => ack_from_chain(chain, tid).await?,
    };
    let bundle = ProofBundle {
        format: PROOF_FORMAT.into(),
        version: PROOF_VERSION,
        chain: ChainRef {
            chain_id: chain.chain_id(),
            registry: EthAddress::from_bytes(chain.registry().0.0),
            log: chain.log(),
        },
        record: RecordPart {
            tid: *tid,
            commitment: rec.commitment,
            content,
        },
        inclusion,
        checkpoint: cp.signed.clone(),
        relay_key: cp.signer,
        checkpoint_anchor: ChainPosition {
            tx_hash: ChainHash::from_bytes(anchoring.tx_hash),
            block_number: anchoring.block_number,
            block_hash: ChainHash::from_bytes(anchoring.block_hash),
            log_index: anchoring.log_index,
        },
        record_anchor,
    };
    Ok(Exported {
        bundle,
        pid: rec.pid,
    })
}

/// The ACK of a record whose sealed copy is gone (erased), rebuilt from its anchoring event.
async fn ack_from_chain(chain: &Chain, tid: &TxId) -> Result<Option<Ack>, ExportError> {
    let internal = |e: crate::chain::ChainError| ExportError::Internal(e.to_string());
    let Some(tx_hash) = chain.find_anchor(tid.as_bytes()).await.map_err(internal)? else {
        return Ok(None);
    };
    let Some(receipt) = chain.confirmed_receipt(&tx_hash).await.map_err(internal)? else {
        return Ok(None);
    };
    Ok(chain.anchored_in(&receipt, tid.as_bytes()).map(|a| Ack {
        verdict: verdict_of(a.record.verdict),
        chain_id: chain.chain_id(),
        contract: EthAddress::from_bytes(chain.registry().0.0),
        tx_hash: ChainHash::from_bytes(a.tx_hash),
        block_number: a.block_number,
        block_hash: ChainHash::from_bytes(a.block_hash),
        log_index: a.log_index,
        batch: None,
    }))
}

/// The ACK's verdict for the registry's (as the worker maps it).
fn verdict_of(v: ChainVerdict) -> Verdict {
    match v {
        ChainVerdict::Valid => Verdict::Valid,
        ChainVerdict::Rejected { index } => Verdict::Rejected {
            attribute_index: u16::from(index),
        },
        ChainVerdict::RejectedByValidator => Verdict::Rejected {
            attribute_index: u16::MAX,
        },
    }
}

/// Why the proof file at `path` is of another format or version than this verifier's
/// (`unsupported_format`), read from its `format` and `version` alone; `None` when they are
/// this verifier's, or when the file has no such fields (then [`read_bundle`] says why).
pub fn unsupported(path: &Path) -> Result<Option<mediblock_protocol::proof::ProofFailure>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(
        serde_json::from_str::<mediblock_protocol::proof::ProofHeader>(&text)
            .ok()
            .and_then(|header| header.check().err()),
    )
}

/// Reads a proof file (JSON).
pub fn read_bundle(path: &Path) -> Result<ProofBundle, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{} is not a proof file: {e}", path.display()))
}

/// `mediblock verify`: every offline check, then the chain's facts read from `rpc_url`.
/// `Err` only when the node cannot be asked (the file's verdict is then unknown). Whatever
/// `pinned` leaves out is taken from the file; the report records it
/// ([`Report::pinned`]) and [`render`] says so.
pub async fn verify(
    bundle: &ProofBundle,
    rpc_url: &str,
    pinned: &Pinned,
) -> Result<Report, String> {
    let mut report = bundle.verify_offline(pinned);
    if report.checks.first().is_some_and(|c| c.failure.is_some()) {
        return Ok(report);
    }
    let url = rpc_url
        .parse()
        .map_err(|e| format!("--rpc: not a URL ({e})"))?;
    let provider = ProviderBuilder::new().connect_http(url).erased();
    let facts = chain_facts(bundle, &provider).await?;
    report.check_chain(bundle, &facts);
    Ok(report)
}

fn position(c: &AnchoredCheckpoint) -> ChainPosition {
    ChainPosition {
        tx_hash: ChainHash::from_bytes(c.tx_hash),
        block_number: c.block_number,
        block_hash: ChainHash::from_bytes(c.block_hash),
        log_index: c.log_index,
    }
}

/// Reads from the node what [`Report::check_chain`] compares with the file.
async fn chain_facts(bundle: &ProofBundle, provider: &DynProvider) -> Result<ChainFacts, String> {
    let rpc = |e: &dyn std::fmt::Display| format!("the node at --rpc failed: {e}");
    let chain_id = provider.get_chain_id().await.map_err(|e| rpc(&e))?;
    let mut facts = ChainFacts {
        chain_id,
        ..ChainFacts::default()
    };
    if chain_id != bundle.chain.chain_id {
        return Ok(facts);
    }
    let registry_address = Address::from(*bundle.chain.registry.as_bytes());
    let size = bundle.checkpoint.checkpoint.size();
    if let Some(receipt) = provider
        .get_transaction_receipt(B256::from(*bundle.checkpoint_anchor.tx_hash.as_bytes()))
        .await
        .map_err(|e| rpc(&e))?
        && receipt.status()
    {
        facts.checkpoint_event = receipt
            .inner
            .logs()
            .iter()
            .filter_map(|log| AnchoredCheckpoint::from_log(log, registry_address))
            .find(|c| c.size == size)
            .map(|c| CheckpointEvent {
                log: c.log,
                size: c.size,
                root: c.root,
                submitter: EthAddress::from_bytes(c.submitter.0.0),
                position: position(&c),
            });
    }
    let contract = MediBlockRegistry::new(registry_address, provider.clone());
    let path: Vec<B256> = bundle
        .inclusion
        .path
        .iter()
        .map(|h| B256::from(*h))
        .collect();
    facts.contract_root = match contract
        .rootFromInclusionProof(
            B256::from(bundle.leaf_hash()),
            bundle.inclusion.leaf_index,
            bundle.inclusion.tree_size,
            path,
        )
        .call()
        .await
    {
        Ok(root) => Some(root.0),
        // A revert (the proof does not fit the tree shape, or no contract there) is a
        // finding; anything else means the node could not be asked.
        Err(e) if e.as_revert_data().is_some() || registry::registry_error(&e).is_some() => None,
        Err(alloy::contract::Error::ZeroData(..)) => None,
        Err(e) => return Err(rpc(&e)),
    };
    // The chain's record of the tid is read whether or not the file carries the
    // acknowledgement: a file stripped of it must still show the chain's verdict, and must
    // not borrow a tid. The ticket is state; the event is found by its tid topic.
    let tid = FixedBytes::<16>(*bundle.record.tid.as_bytes());
    // Tickets, and so tids, are per log: the file's log is the one that counts.
    let log = bundle.chain.log;
    facts.ticket_used = match contract
        .ticketUsed(log, bundle.record.tid.ticket())
        .call()
        .await
    {
        Ok(used) => used,
        Err(alloy::contract::Error::ZeroData(..)) => false,
        Err(e) if e.as_revert_data().is_some() => false,
        Err(e) => return Err(rpc(&e)),
    };
    // An unused ticket means no event can exist: the search over the whole chain is skipped.
    if facts.ticket_used {
        let hint = bundle.record_anchor.as_ref().map(|a| a.block_number);
        facts.record_event = record_event(provider, registry_address, tid, log, hint)
            .await
            .map_err(|e| rpc(&e))?;
    }
    // What the registry published under the handle the event names: the verifier checks
    // that it is the record's template, and derives the values the verdict must be about.
    if let Some(event) = &facts.record_event {
        facts.template_info = match contract.templateInfo(event.handle).call().await {
            Ok(info) => Some(TemplateInfo {
                id: info.id.0,
                version: info.version,
                template_hash: info.templateHash.0,
            }),
            Err(e) if e.as_revert_data().is_some() => None,
            Err(e) => return Err(rpc(&e)),
        };
    }
    Ok(facts)
}

/// The registry's `RecordAnchored` event of `tid` in log `log`: looked for first in block
/// `hint` (the acknowledgement's), then over the whole chain in ranges of
/// [`crate::chain::LOG_RANGE`] blocks. The registry logs at most one per ticket of a log, so
/// the first found is the one; events of the same tid in other logs (another relay's) are
/// not this record's and are skipped.
async fn record_event(
    provider: &DynProvider,
    registry: Address,
    tid: FixedBytes<16>,
    log: u16,
    hint: Option<u64>,
) -> Result<Option<RecordEvent>, alloy::transports::TransportError> {
    let mut topic = [0u8; 32];
    topic[..16].copy_from_slice(&tid.0);
    let filter = Filter::new()
        .address(registry)
        .event_signature(MediBlockRegistry::RecordAnchored::SIGNATURE_HASH)
        .topic1(B256::from(topic));
    let head = provider.get_block_number().await?;
    let mut ranges: Vec<(u64, u64)> = hint
        .filter(|h| *h <= head)
        .map(|h| (h, h))
        .into_iter()
        .collect();
    let step = crate::chain::LOG_RANGE;
    ranges.extend((0..=head / step).map(|i| (i * step, head.min(i * step + step - 1))));
    for (from, to) in ranges {
        let logs = provider
            .get_logs(&filter.clone().from_block(from).to_block(to))
            .await?;
        let found = logs.iter().filter(|l| !l.removed).find_map(|entry| {
            if entry.address() != registry {
                return None;
            }
            let e = MediBlockRegistry::RecordAnchored::decode_log_data(entry.data()).ok()?;
            let r = AnchoredRecord::from_event(&e)?;
            (r.tid == tid.0 && r.log == log).then_some(())?;
            // info: submitter · log · handle · verdict (byte 30) · path.
            let verdict = e.info.to_be_bytes::<32>()[30];
            Some(RecordEvent {
                commitment: Commitment::from_bytes(r.commitment),
                values_hash: r.values_hash,
                verdict,
                handle: r.handle,
                log: r.log,
                submitter: EthAddress::from_bytes(r.submitter.0.0),
                position: ChainPosition {
                    tx_hash: ChainHash::from_bytes(entry.transaction_hash?.0),
                    block_number: entry.block_number?,
                    block_hash: ChainHash::from_bytes(entry.block_hash?.0),
                    log_index: entry.log_index?,
                },
            })
        });
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

/// The human-readable result of `mediblock verify`.
pub fn render(bundle: &ProofBundle, report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "MediBlock proof file: record {} (leaf {} of {}), chain {} registry 0x{}",
        bundle.record.tid,
        bundle.inclusion.leaf_index,
        bundle.checkpoint.checkpoint.size(),
        bundle.chain.chain_id,
        bundle.chain.registry.to_hex()
    );
    for c in &report.checks {
        let mark = if c.failure.is_none() { "ok  " } else { "FAIL" };
        let _ = writeln!(out, "  {mark} {:<22} {}", c.check, c.detail);
    }
    let Some(f) = report.first_failure() else {
        if report.pinned.registry.is_none() {
            let _ = writeln!(
                out,
                "REGISTRY NOT PINNED: the file named its own registry (0x{} on chain {}). Anyone \
                 can deploy a registry and enrol themselves as its relay, so this result only \
                 proves the file is consistent with that contract. Pass --registry with the \
                 address you trust to check it is the right one.",
                bundle.chain.registry.to_hex(),
                bundle.chain.chain_id
            );
        }
        let _ = writeln!(out, "{}", verified_line(report));
        return out;
    };
    let _ = writeln!(out, "NOT VERIFIED ({}): {f}", f.code());
    out
}

/// The final line of a verified file: what was proven, with the chain's verdict.
fn verified_line(report: &Report) -> String {
    match (report.content_checked, report.chain_verdict) {
        (true, Some(v)) => format!(
            "VERIFIED: this record is exactly what its author signed, and the chain anchored it \
             under this transaction id as {}.",
            describe_verdict(v)
        ),
        (false, Some(v)) => format!(
            "VERIFIED (content withheld): the chain anchored this commitment under this \
             transaction id as {}, and it is in the anchored log.",
            describe_verdict(v)
        ),
        (true, None) => "VERIFIED (no record anchor): this record is exactly what its author \
             signed and its commitment is in the anchored log; the chain holds no anchor for \
             this transaction id, so no verdict is proven."
            .into(),
        (false, None) => "VERIFIED (content withheld, no record anchor): this commitment is in \
             the anchored log. Nothing is proven about the transaction id or a verdict: the \
             chain holds no anchor for this transaction id."
            .into(),
    }
}

/// The JSON result of `mediblock verify --json`. `pinned` holds what the verifier pinned
/// (`null` for what was taken from the file); `chain_verdict` the registry's verdict for the
/// tid (`null` when not verified or the chain has no anchor for the tid).
pub fn render_json(bundle: &ProofBundle, report: &Report) -> serde_json::Value {
    let pinned = &report.pinned;
    serde_json::json!({
        "verified": report.ok(),
        "tid": bundle.record.tid,
        "leaf_index": bundle.inclusion.leaf_index,
        "checkpoint_size": bundle.checkpoint.checkpoint.size(),
        "content_checked": report.content_checked,
        "registry": bundle.chain.registry,
        "chain_id": bundle.chain.chain_id,
        "pinned": {
            "registry": pinned.registry,
            "chain_id": pinned.chain_id,
            "relay_key": pinned.relay_key.map(hex::encode),
        },
        "tid_anchored": report.tid_anchored(),
        "chain_verdict": if report.ok() { report.chain_verdict } else { None },
        "failure": report.first_failure().map(|f| serde_json::json!({"code": f.code(), "message": f.to_string()})),
        "checks": report.checks,
    })
}

/// `mediblock proof`: signs in as `uid` with `key_file` and downloads the proof file of
/// `tid` to `out`.
pub async fn download(
    base: &str,
    key_file: &Path,
    uid: &UserId,
    tid: &TxId,
    withhold_content: bool,
    out: &Path,
) -> Result<ProofBundle, String> {
    let keys = crate::client::read_keys(key_file)?;
    let session = crate::client::Session::sign_in(base, uid, &keys).await?;
    let query = if withhold_content {
        "?content=withheld"
    } else {
        ""
    };
    let body = session
        .get(&format!("/api/v1/records/{tid}/proof{query}"))
        .await?;
    let bundle: ProofBundle = serde_json::from_value(body).map_err(|e| e.to_string())?;
    let text = serde_json::to_string_pretty(&bundle).map_err(|e| e.to_string())?;
    std::fs::write(out, text + "\n").map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    Ok(bundle)
}
