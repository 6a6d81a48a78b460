//! The checkpointer: signs checkpoints of the record log as it grows and anchors them on
//! chain, exactly once, across restarts and several relays sharing one store.
//!
//! A checkpoint is due when the log holds `every_leaves` leaves more than the chain's latest
//! checkpoint, or when the oldest leaf no checkpoint covers was accepted `max_delay` ago.
//! Before signing, the checkpointer recomputes the root of the stored leaves and checks that
//! their prefix still has the root the chain anchored last: a relay never signs a log that
//! does not extend what it anchored before (the audit reports such a store as rewritten).
//!
//! Each checkpoint re-reads and re-hashes the stored log (O(n) leaves, a fraction of a
//! second for 100,000), so a rewritten leaf anywhere is noticed at the next checkpoint, and
//! a restarted relay behaves exactly like a running one.
//!
//! Why exactly once: the registry refuses a size that does not grow, so a size is anchored
//! at most once whatever the relays do. A checkpoint row is leased to one relay while it
//! anchors it; the transaction hash is recorded before waiting for confirmations; after a
//! crash, or when the send reverts because another relay was first, the checkpointer looks
//! the size up in the registry's `CheckpointAnchored` events and records that anchoring
//! instead of sending again. A row whose size the chain has overtaken is deleted.

use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::B256;
use alloy::providers::Provider as _;
use mediblock_protocol::checkpoint::Checkpoint;
use mediblock_protocol::ids::{EthAddress, UnixMillis};
use mediblock_protocol::merkle::{Frontier, Keccak256Tree, TreeHasher as _};
use mediblock_protocol::proof::log_origin;
use tokio::sync::Notify;

use crate::chain::{AnchoredCheckpoint, Chain, ChainError};
use crate::store::checkpoints::{CheckpointAnchoring, StoredCheckpoint};
use crate::{AppState, now};

/// How long a checkpoint row stays leased to the relay anchoring it.
const LEASE: Duration = Duration::from_secs(60);
/// The longest pause between two looks at the log.
const POLL: Duration = Duration::from_millis(500);

/// When to sign and anchor a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointPolicy {
    /// Sign once this many leaves are not covered by the chain's latest checkpoint.
    pub every_leaves: u64,
    /// Sign once the oldest uncovered leaf is this old.
    pub max_delay: Duration,
}

impl Default for CheckpointPolicy {
    fn default() -> Self {
        Self {
            every_leaves: 256,
            max_delay: Duration::from_secs(30),
        }
    }
}

/// What one [`Checkpointer::tick`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    /// Nothing was due.
    Idle,
    /// A checkpoint of this size is sent (or leased by another relay) and not yet confirmed.
    Waiting(u64),
    /// The checkpoint of this size is now recorded as anchored.
    Anchored(u64),
}

/// The checkpointer's handle.
#[derive(Debug, Clone)]
pub struct Checkpointer {
    state: AppState,
    chain: Chain,
    policy: CheckpointPolicy,
    owner: String,
    /// Wakes the checkpointer early (e.g. when a submission was accepted).
    pub notify: Arc<Notify>,
}

impl Checkpointer {
    /// A checkpointer for `state` on `chain`; `owner` names it in leases.
    pub fn new(state: AppState, chain: Chain, policy: CheckpointPolicy, owner: String) -> Self {
        Self {
            state,
            chain,
            policy,
            owner,
            notify: Arc::new(Notify::new()),
        }
    }

    /// The log's origin: its chain, registry and log id (see [`log_origin`]).
    pub fn origin(&self) -> String {
        log_origin(
            self.chain.chain_id(),
            &EthAddress::from_bytes(self.chain.registry().0.0),
            self.chain.log(),
        )
    }

    /// Runs forever.
    pub async fn run(self) {
        let pause = POLL.min(self.policy.max_delay.max(Duration::from_millis(50)));
        loop {
            match self.tick().await {
                Ok(Tick::Anchored(size)) => {
                    tracing::info!(size, "checkpoint anchored");
                    continue;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "checkpointer"),
            }
            let _ = tokio::time::timeout(pause, self.notify.notified()).await;
        }
    }

    /// One step: finish the checkpoints that are signed but not anchored, then sign and send
    /// a new one when it is due.
    pub async fn tick(&self) -> Result<Tick, String> {
        let pending: Vec<StoredCheckpoint> = self
            .state
            .store
            .checkpoints()
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|c| c.anchoring.is_none())
            .collect();
        for p in &pending {
            match self.advance(p).await? {
                Tick::Anchored(size) => return Ok(Tick::Anchored(size)),
                Tick::Waiting(size) => return Ok(Tick::Waiting(size)),
                Tick::Idle => {}
            }
        }
        self.sign_if_due().await
    }

    /// Signs, stores and sends a checkpoint of the whole log when one is due.
    async fn sign_if_due(&self) -> Result<Tick, String> {
        let store = &self.state.store;
        let (anchored_size, anchored_root) = self
            .chain
            .latest_checkpoint()
            .await
            .map_err(|e| e.to_string())?;
        let size = store.log_size().await.map_err(|e| e.to_string())?;
        if size <= anchored_size {
            return Ok(Tick::Idle);
        }
        let due = size - anchored_size >= self.policy.every_leaves
            || match store
                .leaf_accepted_at(anchored_size)
                .await
                .map_err(|e| e.to_string())?
            {
                Some(at) => {
                    now().0.saturating_sub(at.0) >= self.policy.max_delay.as_millis() as u64
                }
                None => true,
            };
        if !due {
            return Ok(Tick::Idle);
        }
        let leaves = store.log_prefix(size).await.map_err(|e| e.to_string())?;
        let mut frontier = Frontier::<Keccak256Tree>::new();
        for (index, data) in &leaves {
            if *index != frontier.size() {
                return Err(format!(
                    "the store's log has a hole at leaf {}: not signing a checkpoint over it",
                    frontier.size()
                ));
            }
            // (Before the first checkpoint the registry reports size 0 with a zero root.)
            if anchored_size > 0
                && frontier.size() == anchored_size
                && frontier.root() != anchored_root
            {
                return Err(format!(
                    "the store's log does not extend the checkpoint of size {anchored_size} \
                     anchored on chain: not signing"
                ));
            }
            frontier.push(Keccak256Tree::hash_leaf(data));
        }
        if frontier.size() != size {
            return Err(format!(
                "the store's log has {} leaves, its head says {size}",
                frontier.size()
            ));
        }
        let checkpoint =
            Checkpoint::new(self.origin(), size, frontier.root()).map_err(|e| e.to_string())?;
        let keys = &self.state.keys.relay;
        let signed = checkpoint.sign(keys.signing_key());
        store
            .insert_checkpoint(&signed, &keys.public().signing_bytes(), now())
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(size, "checkpoint signed");
        let Some(stored) = store.checkpoint(size).await.map_err(|e| e.to_string())? else {
            return Ok(Tick::Idle);
        };
        self.advance(&stored).await
    }

    /// Moves a signed, not yet anchored checkpoint one step: send it, or wait for its
    /// receipt, or record an anchoring found on chain, or drop it when overtaken.
    async fn advance(&self, c: &StoredCheckpoint) -> Result<Tick, String> {
        let store = &self.state.store;
        let size = c.size();
        let t = now();
        let lease_until = UnixMillis(t.0 + LEASE.as_millis() as u64);
        if !store
            .claim_checkpoint(size, &self.owner, t, lease_until)
            .await
            .map_err(|e| e.to_string())?
        {
            // Another relay is anchoring it.
            return Ok(Tick::Waiting(size));
        }
        let result = self.advance_claimed(c).await;
        if !matches!(result, Ok(Tick::Anchored(_))) {
            // Keep the lease while our transaction waits for confirmations; give it up on
            // errors so that another relay (or a later tick) can carry on.
            if result.is_err()
                && let Err(e) = store.release_checkpoint(size).await
            {
                tracing::warn!(error = %e, size, "cannot release a checkpoint lease");
            }
        }
        result
    }

    async fn advance_claimed(&self, c: &StoredCheckpoint) -> Result<Tick, String> {
        let size = c.size();
        if let Some(tx_hash) = c.tx_hash {
            if let Some(receipt) = self
                .chain
                .confirmed_receipt(&tx_hash)
                .await
                .map_err(|e| e.to_string())?
            {
                if receipt.status()
                    && let Some(event) = self.chain.checkpoint_in(&receipt, size)
                {
                    return self.record(c, &event).await;
                }
                // Reverted on chain (another relay got there in the same block, say).
                return self.resolve_from_chain(c).await;
            }
            let known = self
                .chain
                .provider()
                .get_transaction_by_hash(B256::from(tx_hash))
                .await
                .map_err(|e| e.to_string())?
                .is_some();
            if known {
                return Ok(Tick::Waiting(size));
            }
            // The node forgot the transaction (dropped from its pool): look, then resend.
        }
        let (latest, _) = self
            .chain
            .latest_checkpoint()
            .await
            .map_err(|e| e.to_string())?;
        if latest >= size {
            return self.resolve_from_chain(c).await;
        }
        match self.chain.send_checkpoint(size, c.root()).await {
            Ok(tx_hash) => {
                self.state
                    .store
                    .checkpoint_sent(size, &tx_hash)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(Tick::Waiting(size))
            }
            Err(ChainError::Reverted(why)) => match self.resolve_from_chain(c).await? {
                Tick::Idle => Err(format!("anchoring checkpoint {size} reverted: {why}")),
                other => Ok(other),
            },
            Err(e) => Err(e.to_string()),
        }
    }

    /// The chain already holds this size or a larger one: record the event of this size
    /// (sent by us before a crash, or by another relay), or drop the row when the chain
    /// skipped this size.
    async fn resolve_from_chain(&self, c: &StoredCheckpoint) -> Result<Tick, String> {
        let size = c.size();
        match self
            .chain
            .checkpoint_event(size)
            .await
            .map_err(|e| e.to_string())?
        {
            Some(event) if event.root == *c.root() => {
                match self
                    .chain
                    .confirmed_receipt(&event.tx_hash)
                    .await
                    .map_err(|e| e.to_string())?
                {
                    Some(_) => self.record(c, &event).await,
                    None => Ok(Tick::Waiting(size)),
                }
            }
            Some(event) => Err(format!(
                "the chain anchored size {size} with root {}, this relay's log has root {}",
                hex::encode(event.root),
                hex::encode(c.root())
            )),
            None => {
                let (latest, _) = self
                    .chain
                    .latest_checkpoint()
                    .await
                    .map_err(|e| e.to_string())?;
                if latest >= size {
                    tracing::info!(
                        size,
                        latest,
                        "checkpoint overtaken by a larger one; dropped"
                    );
                    self.state
                        .store
                        .drop_unanchored_checkpoint(size)
                        .await
                        .map_err(|e| e.to_string())?;
                }
                Ok(Tick::Idle)
            }
        }
    }

    async fn record(
        &self,
        c: &StoredCheckpoint,
        event: &AnchoredCheckpoint,
    ) -> Result<Tick, String> {
        let size = c.size();
        self.state
            .store
            .checkpoint_anchored(
                size,
                &CheckpointAnchoring {
                    tx_hash: event.tx_hash,
                    block_number: event.block_number,
                    block_hash: event.block_hash,
                    log_index: event.log_index,
                    anchored_at: now(),
                },
            )
            .await
            .map_err(|e| e.to_string())?;
        Ok(Tick::Anchored(size))
    }
}
