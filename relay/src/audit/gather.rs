//! The audit's I/O: every table of the store as it is, and the registry's events.

use std::collections::HashMap;

use alloy::eips::BlockNumberOrTag;
use alloy::providers::Provider as _;
use alloy::rpc::types::Filter;
use alloy::sol_types::SolEvent as _;
use mediblock_protocol::ids::Role;
use mediblock_protocol::keys::PublicKeys;
use mediblock_protocol::template::Template;

use super::AuditError;
use crate::chain::registry::{AnchoredRecord, MediBlockRegistry, Verdict};
use crate::chain::{AnchoredCheckpoint, Chain, TemplateInfo};
use crate::store::Store;
use crate::store::audit::{LeafRow, RecordRow, RejectedRow, SubmissionRow};

/// Blocks per `eth_getLogs` request.
const CHUNK: u64 = crate::chain::LOG_RANGE;

/// A `RecordAnchored` event and where it is.
#[derive(Debug, Clone)]
pub(super) struct ChainAnchor {
    pub(super) commitment: [u8; 32],
    /// keccak256 of the values the registry judged.
    pub(super) values_hash: [u8; 32],
    /// The template handle it judged them under.
    pub(super) handle: u16,
    pub(super) verdict: Verdict,
    pub(super) tx_hash: [u8; 32],
    pub(super) block_number: u64,
    pub(super) block_hash: [u8; 32],
    pub(super) log_index: u64,
    pub(super) block_timestamp: Option<u64>,
}

/// Everything the audit reads.
#[derive(Debug)]
pub(super) struct Inputs {
    pub(super) records: Vec<RecordRow>,
    pub(super) rejected: Vec<RejectedRow>,
    pub(super) submissions: Vec<SubmissionRow>,
    pub(super) log_size: i64,
    pub(super) leaves: Vec<LeafRow>,
    pub(super) users: HashMap<String, (Role, PublicKeys)>,
    pub(super) anchors: HashMap<[u8; 16], ChainAnchor>,
    /// The store's templates, by template hash (a changed row has another hash).
    pub(super) templates: HashMap<[u8; 32], Template>,
    /// What the registry publishes for each handle an anchor names (`templateInfo`).
    pub(super) chain_templates: HashMap<u16, TemplateInfo>,
    pub(super) checkpoints: Vec<AnchoredCheckpoint>,
    /// The relay's own signed checkpoints (`checkpoints` table): `(size, root)`, or why the
    /// table does not decode.
    pub(super) stored_checkpoints: Result<Vec<(u64, [u8; 32])>, String>,
    /// Canonical block hashes of the blocks that unanchored records' ACKs name.
    pub(super) canonical: HashMap<u64, Option<[u8; 32]>>,
    pub(super) chain_id: u64,
    pub(super) registry: String,
    pub(super) head: u64,
    /// The chain's head read just before the store's snapshot: an anchor above it may
    /// belong to a submission accepted after the snapshot began (in flight, not deleted).
    pub(super) head_before_snapshot: u64,
}

fn rpc(e: impl std::fmt::Display) -> AuditError {
    AuditError::Chain(e.to_string())
}

/// Reads the store and the chain.
pub(super) async fn gather(store: &Store, chain: &Chain) -> Result<Inputs, AuditError> {
    // The store first, in one snapshot; then the chain: everything the snapshot holds as
    // stored was confirmed before, so its event is at or below the head read now. The head
    // read before the snapshot bounds the other direction: a submission row is written before
    // its anchor is sent, so an anchor at or below it has its row in the snapshot.
    let head_before_snapshot = chain.head().await.map_err(rpc)?;
    let snapshot = store.audit_snapshot().await?;
    let head = chain.head().await.map_err(rpc)?;
    let users = store
        .users()
        .await?
        .into_iter()
        .map(|u| (u.uid.as_str().to_owned(), (u.role, u.keys)))
        .collect();
    let stored_checkpoints = match store.checkpoints().await {
        Ok(list) => Ok(list.iter().map(|c| (c.size(), *c.root())).collect()),
        Err(crate::store::StoreError::Corrupt(why)) => Err(why),
        Err(e) => return Err(e.into()),
    };
    let anchors = anchors(chain, head).await?;
    // A template row that no longer parses was changed: the records that need it then find
    // no template of the registered hash, and say so.
    let templates = match store.templates().await {
        Ok(list) => list.into_iter().map(|t| (t.hash(), t)).collect(),
        Err(crate::store::StoreError::Corrupt(_)) => HashMap::new(),
        Err(e) => return Err(e.into()),
    };
    let mut chain_templates = HashMap::new();
    for handle in anchors.values().map(|a| a.handle) {
        if let std::collections::hash_map::Entry::Vacant(slot) = chain_templates.entry(handle)
            && let Some(info) = chain.template_info(handle).await.map_err(rpc)?
        {
            slot.insert(info);
        }
    }
    let checkpoints = chain
        .anchored_checkpoints(0)
        .await
        .map_err(rpc)?
        .into_iter()
        .filter(|c| c.block_number <= head)
        .collect();
    Ok(Inputs {
        records: snapshot.records,
        rejected: snapshot.rejected,
        submissions: snapshot.submissions,
        log_size: snapshot.log_size,
        leaves: snapshot.leaves,
        users,
        anchors,
        templates,
        chain_templates,
        checkpoints,
        stored_checkpoints,
        canonical: HashMap::new(),
        chain_id: chain.chain_id(),
        registry: chain.registry().to_string(),
        head,
        head_before_snapshot,
    })
}

/// Every `RecordAnchored` event of the relay's log up to `head`, by transaction id (other
/// relays' records, in other logs, are not this store's).
async fn anchors(chain: &Chain, head: u64) -> Result<HashMap<[u8; 16], ChainAnchor>, AuditError> {
    let mut out = HashMap::new();
    let mut start = 0u64;
    while start <= head {
        let end = head.min(start + CHUNK - 1);
        let filter = Filter::new()
            .address(chain.registry())
            .event_signature(MediBlockRegistry::RecordAnchored::SIGNATURE_HASH)
            .from_block(start)
            .to_block(end);
        let logs = chain.provider().get_logs(&filter).await.map_err(rpc)?;
        for log in &logs {
            let Ok(event) = MediBlockRegistry::RecordAnchored::decode_log_data(log.data()) else {
                continue;
            };
            let Some(record) = AnchoredRecord::from_event(&event) else {
                continue;
            };
            if record.log != chain.log() || log.address() != chain.registry() {
                continue;
            }
            let (Some(tx), Some(number), Some(hash), Some(index)) = (
                log.transaction_hash,
                log.block_number,
                log.block_hash,
                log.log_index,
            ) else {
                continue;
            };
            // The registry refuses a second anchor of a tid in a log: the first is the one.
            out.entry(record.tid).or_insert(ChainAnchor {
                commitment: record.commitment,
                values_hash: record.values_hash,
                handle: record.handle,
                verdict: record.verdict,
                tx_hash: tx.0,
                block_number: number,
                block_hash: hash.0,
                log_index: index,
                block_timestamp: log.block_timestamp,
            });
        }
        start = end + 1;
    }
    Ok(out)
}

/// The canonical hash of each block in `numbers` (`None` past the head).
pub(super) async fn block_hashes(
    chain: &Chain,
    numbers: &[u64],
) -> Result<HashMap<u64, Option<[u8; 32]>>, AuditError> {
    let mut out = HashMap::new();
    for &n in numbers {
        let block = chain
            .provider()
            .get_block_by_number(BlockNumberOrTag::Number(n))
            .await
            .map_err(rpc)?;
        out.insert(n, block.map(|b| b.header.hash.0));
    }
    Ok(out)
}
