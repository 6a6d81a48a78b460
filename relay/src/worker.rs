//! The anchoring worker (the paper's transaction validator, TV): takes queued submissions,
//! anchors each on chain, waits for the chain's verdict, and stores the validated
//! transaction — exactly once, across relay crashes, RPC outages and several relays.
//!
//! Why exactly once: the registry refuses a second anchor of a tid, so a record is anchored
//! at most once whatever the relay does; before sending, the worker looks for an existing
//! anchoring event of the tid (a crash may have happened after sending), and it records the
//! transaction hash before waiting. Completion writes the record and the queue state in one
//! database transaction that only succeeds if the submission was still open.

use std::sync::Arc;
use std::time::Duration;

use mediblock_protocol::encoding::Canonical as _;
use mediblock_protocol::envelope::Envelope;
use mediblock_protocol::generator::BlockchainTransaction;
use mediblock_protocol::ids::{ChainHash, EthAddress, TemplateRef, TemplateVersion};
use mediblock_protocol::record::SignedInitialTransaction;
use mediblock_protocol::validated::{Ack, ValidatedTransaction, Verdict};
use tokio::sync::Notify;

use crate::AppState;
use crate::api::events::StateChange;
use crate::chain::registry::{Anchor, Verdict as ChainVerdict};
use crate::chain::{Chain, ChainError};
use crate::now;
use crate::store::submissions::{Mode, Outcome, Submission};

/// How long a claimed submission stays leased to this worker.
const LEASE: Duration = Duration::from_secs(60);
/// How long the worker waits for new work or a receipt before looking again.
const IDLE: Duration = Duration::from_millis(250);
/// How long a submission waiting for confirmations is left alone, so the worker sends the
/// ones queued behind it meanwhile.
const WAIT_RETRY: Duration = Duration::from_millis(500);
/// Longest single pause while looking again for the receipt of a transaction just sent
/// (5, 10, … 160 ms: about 0.3 s in all).
const JUST_SENT_PATIENCE: Duration = Duration::from_millis(160);
/// How long a submission whose step failed (RPC down, …) is left alone before a retry.
const FAIL_RETRY: Duration = Duration::from_secs(2);
/// How long the node may not know a sent anchoring transaction (neither pending nor mined)
/// before the worker sends the anchor again: a hosted node behind a load balancer may not
/// show a transaction it just took on every backend at once.
pub const RESEND_AFTER: Duration = Duration::from_secs(30);

/// The worker's handle: `notify` wakes it when a submission was accepted.
#[derive(Debug, Clone)]
pub struct Worker {
    state: AppState,
    chain: Chain,
    owner: String,
    /// Wakes the worker.
    pub notify: Arc<Notify>,
    /// Whether the last transaction this worker sent was mined at once (a local chain): only
    /// then is it worth waiting a moment for the next one's receipt. On a chain with real
    /// block times the wait would only hold up the records queued behind.
    mines_at_once: Arc<std::sync::atomic::AtomicBool>,
    /// Since when the node has not known each sent transaction that has no receipt.
    lost: Arc<std::sync::Mutex<LostSince>>,
    /// [`RESEND_AFTER`], or what a test sets.
    resend_after: Duration,
}

/// When the worker first found the node not knowing a sent transaction, by record.
type LostSince = std::collections::HashMap<mediblock_protocol::ids::TxId, std::time::Instant>;

/// What happened to one claimed submission.
#[derive(Debug)]
enum Step {
    /// Stored or rejected: done.
    Done,
    /// Sent or waiting for confirmations: look again soon.
    Waiting,
}

impl Worker {
    /// A worker for `state` on `chain`; `owner` names it in leases.
    pub fn new(state: AppState, chain: Chain, owner: String) -> Self {
        Self {
            state,
            chain,
            owner,
            notify: Arc::new(Notify::new()),
            mines_at_once: Arc::new(std::sync::atomic::AtomicBool::new(true)),
            lost: Default::default(),
            resend_after: RESEND_AFTER,
        }
    }

    /// Sends an anchor again once the node has not known its transaction for `after`
    /// ([`RESEND_AFTER`] by default).
    pub fn with_resend_after(mut self, after: Duration) -> Self {
        self.resend_after = after;
        self
    }

    /// Runs forever: follow the chain's events, claim, anchor, complete.
    pub async fn run(self) {
        loop {
            if let Err(e) = self.follow_events().await {
                tracing::warn!(error = %e, "following the registry's events");
            }
            match self.tick().await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "anchoring worker"),
            }
            let _ = tokio::time::timeout(IDLE, self.notify.notified()).await;
        }
    }

    /// Claims and advances one submission; `Ok(true)` when one was finished.
    pub async fn tick(&self) -> Result<bool, String> {
        let t = now();
        let lease_until = mediblock_protocol::ids::UnixMillis(t.0 + LEASE.as_millis() as u64);
        let Some(sub) = self
            .state
            .store
            .claim(&self.owner, t, lease_until)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(false);
        };
        match self.advance(&sub).await {
            Ok(Step::Done) => Ok(true),
            Ok(Step::Waiting) => {
                self.release(&sub, "waiting for confirmations", WAIT_RETRY)
                    .await;
                Ok(false)
            }
            Err(e) => {
                self.release(&sub, &e, FAIL_RETRY).await;
                Err(e)
            }
        }
    }

    /// Reads the registry's `RecordAnchored` events from the persisted block cursor to the
    /// head, notes the transaction hash of every wallet submission of ours they anchor (the
    /// wallet, not the relay, sent them), and moves the cursor. Several relays may follow at
    /// once: noting a hash twice is harmless.
    pub async fn follow_events(&self) -> Result<(), String> {
        const CURSOR: &str = "event_cursor";
        const CHUNK: u64 = crate::chain::LOG_RANGE;
        let store = &self.state.store;
        let from: u64 = match store.meta(CURSOR).await.map_err(|e| e.to_string())? {
            Some(text) => text
                .parse()
                .map_err(|_| "meta.event_cursor is not a block number")?,
            None => 0,
        };
        let head = self.chain.head().await.map_err(|e| e.to_string())?;
        let mut start = from;
        while start <= head {
            let end = head.min(start + CHUNK - 1);
            let events = self
                .chain
                .anchored_between(start, end)
                .await
                .map_err(|e| e.to_string())?;
            for (tid, tx_hash) in events {
                let tid = mediblock_protocol::ids::TxId::from_bytes(tid);
                let Some(sub) = store.submission(&tid).await.map_err(|e| e.to_string())? else {
                    continue;
                };
                if sub.mode == Mode::Wallet && sub.tx_hash.is_none() {
                    store
                        .mark_sent(&tid, &tx_hash, now())
                        .await
                        .map_err(|e| e.to_string())?;
                    let _ = self.state.events.send(StateChange { tid });
                }
            }
            store
                .set_meta(CURSOR, &(end + 1).to_string())
                .await
                .map_err(|e| e.to_string())?;
            start = end + 1;
        }
        self.expire_wallet_submissions(head).await
    }

    /// Marks expired every wallet submission whose co-signature's deadline is older than the
    /// timestamp of block `head`, up to which the events were just followed. None of them
    /// was anchored up to `head` (its event would have marked it sent), and none can be
    /// later: the registry refuses a co-signature whose deadline is before the block's time.
    async fn expire_wallet_submissions(&self, head: u64) -> Result<(), String> {
        use alloy::providers::Provider as _;
        let store = &self.state.store;
        if !store
            .has_awaiting_wallet()
            .await
            .map_err(|e| e.to_string())?
        {
            return Ok(());
        }
        let Some(block) = self
            .chain
            .provider()
            .get_block_by_number(head.into())
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(());
        };
        for tid in store
            .expired_wallet_submissions(block.header.timestamp)
            .await
            .map_err(|e| e.to_string())?
        {
            if store.expire(&tid, now()).await.map_err(|e| e.to_string())? {
                tracing::info!(%tid, "wallet submission expired unsent");
                let _ = self.state.events.send(StateChange { tid });
            }
        }
        Ok(())
    }

    async fn release(&self, sub: &Submission, detail: &str, after: Duration) {
        let t = now();
        let retry_at = mediblock_protocol::ids::UnixMillis(t.0 + after.as_millis() as u64);
        if let Err(e) = self
            .state
            .store
            .release(&sub.tid, detail, t, retry_at)
            .await
        {
            tracing::warn!(error = %e, tid = %sub.tid, "cannot release a lease");
        }
    }

    /// After a reverted anchor with no event of this tid: when the registry marks the
    /// tid's ticket used, another tid took it (a store restored from a backup or cloned
    /// issued it again), and the registry will refuse this record for good — fail it, so it
    /// is not retried forever, and say so loudly. Otherwise the revert is an error to retry.
    async fn ticket_taken_or(&self, sub: &Submission, why: String) -> Result<Step, String> {
        let taken = self
            .chain
            .ticket_used(sub.tid.ticket())
            .await
            .map_err(|e| e.to_string())?;
        if !taken {
            return Err(format!("anchoring reverted: {why}"));
        }
        tracing::error!(
            tid = %sub.tid,
            ticket = sub.tid.ticket(),
            "another record took this record's ticket on chain: it can never be anchored"
        );
        let detail = serde_json::json!({
            "code": "ticket_taken",
            "message": "another record took this record's ticket on chain, so it can never be \
                        anchored; seal it again with a new ticket",
        });
        self.state
            .store
            .fail(&sub.tid, &detail.to_string(), now())
            .await
            .map_err(|e| e.to_string())?;
        let _ = self.state.events.send(StateChange { tid: sub.tid });
        Ok(Step::Done)
    }

    async fn advance(&self, sub: &Submission) -> Result<Step, String> {
        let tid = *sub.tid.as_bytes();
        let tx_hash = match sub.tx_hash {
            Some(hash) => Some(hash),
            // Wallet submissions learn their hash from the event follower.
            None if sub.mode == Mode::Wallet => None,
            // A retried claim may follow a crash between sending and recording the hash.
            None if sub.attempts > 1 => self
                .chain
                .find_anchor(&tid)
                .await
                .map_err(|e| e.to_string())?,
            None => None,
        };
        let mut just_sent = false;
        // The anchor this record must have (built once: it asks the chain for the handle).
        let mut expected = None;
        let tx_hash = match tx_hash {
            Some(hash) => hash,
            // The wallet sends its own transaction; until its event shows, keep waiting.
            None if sub.mode == Mode::Wallet => return Ok(Step::Waiting),
            None => {
                just_sent = true;
                let anchor = expected.insert(self.anchor_of(sub).await?);
                match self.chain.send_anchor(anchor).await {
                    Ok(hash) => hash,
                    Err(ChainError::Reverted(why)) => {
                        // Perhaps another relay anchored it meanwhile; otherwise retry later.
                        match self
                            .chain
                            .find_anchor(&tid)
                            .await
                            .map_err(|e| e.to_string())?
                        {
                            Some(hash) => hash,
                            None => return self.ticket_taken_or(sub, why).await,
                        }
                    }
                    Err(e) => return Err(e.to_string()),
                }
            }
        };
        if sub.tx_hash != Some(tx_hash) {
            self.state
                .store
                .mark_sent(&sub.tid, &tx_hash, now())
                .await
                .map_err(|e| e.to_string())?;
            let _ = self.state.events.send(StateChange { tid: sub.tid });
        }
        let mut receipt = self
            .chain
            .confirmed_receipt(&tx_hash)
            .await
            .map_err(|e| e.to_string())?;
        // On a chain that mines at once, a transaction sent a moment ago is mined a moment
        // later: look again briefly before leaving it for WAIT_RETRY.
        use std::sync::atomic::Ordering::Relaxed;
        let patient = just_sent && self.mines_at_once.load(Relaxed);
        let mut pause = Duration::from_millis(5);
        while receipt.is_none() && patient && pause <= JUST_SENT_PATIENCE {
            tokio::time::sleep(pause).await;
            pause *= 2;
            receipt = self
                .chain
                .confirmed_receipt(&tx_hash)
                .await
                .map_err(|e| e.to_string())?;
        }
        if just_sent {
            self.mines_at_once.store(receipt.is_some(), Relaxed);
        }
        let Some(receipt) = receipt else {
            if sub.mode == Mode::PerRecord && !just_sent {
                return self.resend_if_lost(sub, &tx_hash).await;
            }
            return Ok(Step::Waiting);
        };
        let anchored = self
            .chain
            .anchored_in(&receipt, &tid)
            .ok_or("the anchoring transaction has no event for this record")?;
        let expected = match expected {
            Some(anchor) => anchor,
            None => self.anchor_of(sub).await?,
        };
        if anchored.record.commitment != expected.commitment
            || anchored.record.values_hash != expected.values_hash()
            || anchored.record.handle != expected.handle
        {
            return self.anchored_otherwise(sub, &anchored).await;
        }
        self.complete(sub, &anchored).await?;
        Ok(Step::Done)
    }

    /// The tid is anchored in this relay's log, but with another commitment, other values or
    /// under another template than the record's: something else holding this relay's key
    /// sent it. The chain's verdict is not about this record, and the ticket is used, so the
    /// record can never be anchored as signed: fail it (never store it with that anchor),
    /// and say so loudly.
    async fn anchored_otherwise(
        &self,
        sub: &Submission,
        anchored: &crate::chain::Anchored,
    ) -> Result<Step, String> {
        tracing::error!(
            tid = %sub.tid,
            tx = %alloy::primitives::B256::from(anchored.tx_hash),
            "this record's transaction id is anchored with another commitment or other values, \
             sent with this relay's key: the relay's Ethereum key may be compromised"
        );
        let detail = serde_json::json!({
            "code": "anchored_otherwise",
            "message": "the chain holds an anchor of this transaction id with another \
                        commitment or other values than the record's, so its verdict is not \
                        about this record; seal it again with a new ticket",
        });
        self.state
            .store
            .fail(&sub.tid, &detail.to_string(), now())
            .await
            .map_err(|e| e.to_string())?;
        let _ = self.state.events.send(StateChange { tid: sub.tid });
        Ok(Step::Done)
    }

    /// A sent anchor without a receipt. While the node knows its transaction (pending, or
    /// mined without enough confirmations yet) it waits. When the node has not known it for
    /// `resend_after` — dropped from its pool, or lost with blocks a chain rolled back — the
    /// anchor is sent again, as a new transaction, unless its ticket turns out used (then
    /// the event decides, as after a crash). Never for the wallet path: the wallet sends.
    async fn resend_if_lost(&self, sub: &Submission, tx_hash: &[u8; 32]) -> Result<Step, String> {
        if self
            .chain
            .knows_transaction(tx_hash)
            .await
            .map_err(|e| e.to_string())?
        {
            self.lost().remove(&sub.tid);
            return Ok(Step::Waiting);
        }
        let since = *self
            .lost()
            .entry(sub.tid)
            .or_insert_with(std::time::Instant::now);
        if since.elapsed() < self.resend_after {
            return Ok(Step::Waiting);
        }
        self.lost().remove(&sub.tid);
        let tid = *sub.tid.as_bytes();
        let hash = if self
            .chain
            .ticket_used(sub.tid.ticket())
            .await
            .map_err(|e| e.to_string())?
        {
            match self
                .chain
                .find_anchor(&tid)
                .await
                .map_err(|e| e.to_string())?
            {
                Some(hash) => hash,
                None => {
                    return self
                        .ticket_taken_or(sub, "the ticket is used, by no event of this tid".into())
                        .await;
                }
            }
        } else {
            tracing::warn!(
                tid = %sub.tid,
                lost = %alloy::primitives::B256::from(*tx_hash),
                "the node no longer knows this record's anchoring transaction: sending it again"
            );
            let anchor = self.anchor_of(sub).await?;
            self.chain
                .send_anchor(&anchor)
                .await
                .map_err(|e| e.to_string())?
        };
        self.state
            .store
            .mark_sent(&sub.tid, &hash, now())
            .await
            .map_err(|e| e.to_string())?;
        let _ = self.state.events.send(StateChange { tid: sub.tid });
        Ok(Step::Waiting)
    }

    /// Since when the node has not known each lost transaction (never held across an await).
    fn lost(&self) -> std::sync::MutexGuard<'_, LostSince> {
        self.lost
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The registry calldata of a submission: its commitment, template handle and values.
    async fn anchor_of(&self, sub: &Submission) -> Result<Anchor, String> {
        anchor_of(&self.state, &self.chain, sub).await
    }
}

/// The registry anchor of a submission (also what the wallet path co-signs): its values
/// come from the sealed record itself under its template — the store keeps no health
/// values in clear text.
pub async fn anchor_of(
    state: &AppState,
    chain: &Chain,
    sub: &Submission,
) -> Result<Anchor, String> {
    let template = TemplateRef {
        id: sub.template_id.parse().map_err(|e| format!("{e}"))?,
        version: TemplateVersion::new(sub.version).map_err(|e| format!("{e}"))?,
    };
    let handle = chain
        .template_handle(template.id.chain_id(), sub.version)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("template {template} is not registered on chain"))?;
    let spec = state
        .store
        .template(&template.id, template.version)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("template {template} is not in the store"))?;
    let envelope = Envelope::from_canonical_bytes(&sub.sealed_ti).map_err(|e| e.to_string())?;
    let plain = zeroize::Zeroizing::new(
        envelope
            .open(&state.keys.at_rest, sub.tid.as_bytes())
            .map_err(|e| format!("sealed TI does not open: {e}"))?,
    );
    let signed =
        SignedInitialTransaction::from_canonical_bytes(&plain).map_err(|e| e.to_string())?;
    let values = mediblock_protocol::generator::on_chain_values(&signed, &spec)
        .map_err(|e| e.to_string())?;
    let tc = BlockchainTransaction {
        tid: sub.tid,
        commitment: sub.commitment,
        template,
        values,
    };
    Ok(Anchor::new(&tc, handle))
}

impl Worker {
    async fn complete(
        &self,
        sub: &Submission,
        anchored: &crate::chain::Anchored,
    ) -> Result<(), String> {
        let keys = &self.state.keys;
        let envelope = Envelope::from_canonical_bytes(&sub.sealed_ti).map_err(|e| e.to_string())?;
        let plain = envelope
            .open(&keys.at_rest, sub.tid.as_bytes())
            .map_err(|e| format!("sealed TI does not open: {e}"))?;
        let signed =
            SignedInitialTransaction::from_canonical_bytes(&plain).map_err(|e| e.to_string())?;
        let verdict = match anchored.record.verdict {
            ChainVerdict::Valid => Verdict::Valid,
            ChainVerdict::Rejected { index } => Verdict::Rejected {
                attribute_index: u16::from(index),
            },
            ChainVerdict::RejectedByValidator => Verdict::Rejected {
                attribute_index: u16::MAX,
            },
        };
        let validated = ValidatedTransaction {
            signed,
            ack: Ack {
                verdict,
                chain_id: self.chain.chain_id(),
                contract: EthAddress::from_bytes(self.chain.registry().0.0),
                tx_hash: ChainHash::from_bytes(anchored.tx_hash),
                block_number: anchored.block_number,
                block_hash: ChainHash::from_bytes(anchored.block_hash),
                log_index: anchored.log_index,
                batch: None,
            },
        };
        let sealed = validated
            .seal_at_rest(&keys.at_rest, &mut self.state.rng())
            .map_err(|e| e.to_string())?
            .to_canonical_bytes();
        let outcome = match verdict {
            Verdict::Valid => Outcome::Stored,
            Verdict::Rejected { attribute_index } => Outcome::Rejected {
                reasons: serde_json::json!({
                    "verdict": "rejected_by_chain",
                    "attribute_index": attribute_index,
                })
                .to_string(),
            },
        };
        let t = now();
        let finished = self
            .state
            .store
            .complete(
                sub,
                &outcome,
                &anchored.tx_hash,
                anchored.block_number,
                &keys.at_rest.id(),
                &sealed,
                t,
            )
            .await
            .map_err(|e| e.to_string())?;
        if finished {
            self.state.metrics.anchored(
                verdict.is_valid(),
                anchored.gas_used,
                t.0.saturating_sub(sub.created_at.0),
            );
            tracing::info!(tid = %sub.tid, block = anchored.block_number, valid = verdict.is_valid(), "record anchored and stored");
            let _ = self.state.events.send(StateChange { tid: sub.tid });
        }
        Ok(())
    }
}
