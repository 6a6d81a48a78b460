//! The chain side of the handshaker: the registry contract's bindings and calldata
//! (`registry`), a local anvil for the embedded default and tests (`anvil`), and `Chain`,
//! the relay's client: send an anchoring transaction, find a record's anchoring event, read
//! receipts and blocks.

pub mod anvil;
pub mod registry;
pub mod setup;

use alloy::primitives::{Address, B256, FixedBytes};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::{Filter, TransactionReceipt, TransactionRequest};
use alloy::sol_types::SolEvent as _;

use registry::{Anchor, AnchoredRecord, MediBlockRegistry};

/// The calldata of a version-1 registry's `ticketUsed(uint64)` for ticket 0: how
/// [`Chain::connect`] tells an old registry from no registry at all.
fn v1_ticket_used_call() -> Vec<u8> {
    let mut call = mediblock_protocol::hash::keccak256(b"ticketUsed(uint64)")[..4].to_vec();
    call.extend_from_slice(&[0; 32]);
    call
}

/// Why a chain operation failed. Every variant is transient from the worker's point of view
/// (it retries later) except [`ChainError::Reverted`].
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The node could not be reached or answered an error.
    #[error("chain unavailable: {0}")]
    Rpc(String),
    /// The transaction reverted (e.g. an unknown template or a duplicate tid).
    #[error("transaction reverted: {0}")]
    Reverted(String),
}

/// Blocks per `eth_getLogs` request: hosted JSON-RPC providers refuse much wider ranges.
pub const LOG_RANGE: u64 = 2_000;

/// Template handles by (template id hash, version).
type Handles = std::collections::HashMap<([u8; 32], u32), u16>;

/// The relay's view of the chain: a signing provider, the registry's address and the
/// relay's log on it.
#[derive(Debug, Clone)]
pub struct Chain {
    provider: DynProvider,
    registry: Address,
    chain_id: u64,
    confirmations: u64,
    cosigner: Option<alloy::signers::local::PrivateKeySigner>,
    rpc_url: Option<String>,
    deploy_block: Option<u64>,
    /// The relay's log on the registry (its checkpoints and ticket space); 0 until bound.
    log: u16,
    /// Template handles found so far, by (id hash, version): they never change.
    handles: std::sync::Arc<std::sync::Mutex<Handles>>,
    /// Serialises this relay's sends (the anchoring worker and the checkpointer share one
    /// account): the nonce is asked from the node, so two sends at once could get the same.
    send_lock: std::sync::Arc<tokio::sync::Mutex<()>>,
}

/// Where and how a record was anchored: the event, its transaction and block.
#[derive(Debug, Clone)]
pub struct Anchored {
    /// The decoded `RecordAnchored` event.
    pub record: AnchoredRecord,
    /// The anchoring transaction.
    pub tx_hash: [u8; 32],
    /// Its block.
    pub block_number: u64,
    /// That block's hash.
    pub block_hash: [u8; 32],
    /// The event's index in the block.
    pub log_index: u64,
    /// Gas used by the anchoring transaction.
    pub gas_used: u64,
}

fn rpc(e: impl std::fmt::Display) -> ChainError {
    ChainError::Rpc(e.to_string())
}

impl Chain {
    /// A client of the registry at `registry`, waiting for `confirmations` blocks. Refuses a
    /// contract that is not a MediBlock registry of [`registry::REGISTRY_VERSION`] (no
    /// registry, or one deployed by an older MediBlock, whose verdicts are not bound to their
    /// values and whose relays share one log). Bind it to a log with [`Chain::for_relay`] or
    /// [`Chain::with_log`] before reading or writing tickets and checkpoints.
    pub async fn connect(
        provider: DynProvider,
        registry: Address,
        confirmations: u64,
    ) -> Result<Self, ChainError> {
        let chain_id = provider.get_chain_id().await.map_err(rpc)?;
        let refuse = |what: String| {
            Err(ChainError::Reverted(format!(
                "the contract at {registry} {what}, not a MediBlock registry of version {} \
                 (verdicts bound to their values, a log per relay). Its records stay \
                 verifiable with the MediBlock that wrote them; for this one deploy a new \
                 registry (`mediblock deploy`), or start the embedded default with a fresh \
                 --data-dir",
                registry::REGISTRY_VERSION
            )))
        };
        let contract = MediBlockRegistry::new(registry, provider.clone());
        match contract.registryVersion().call().await {
            Ok(registry::REGISTRY_VERSION) => {}
            Ok(other) => return refuse(format!("is a MediBlock registry of version {other}")),
            Err(e)
                if e.as_revert_data().is_some()
                    || matches!(e, alloy::contract::Error::ZeroData(..)) =>
            {
                // A version-1 registry answers `ticketUsed(uint64)`; nothing else does.
                let v1 = provider
                    .call(
                        TransactionRequest::default()
                            .to(registry)
                            .input(v1_ticket_used_call().into()),
                    )
                    .await
                    .is_ok_and(|out| out.len() == 32);
                return refuse(if v1 {
                    "is a MediBlock registry of version 1 (from before bound verdicts and \
                     per-relay logs)"
                        .into()
                } else {
                    "is no MediBlock registry".into()
                });
            }
            Err(e) => return Err(rpc(e)),
        }
        Ok(Self {
            provider,
            registry,
            chain_id,
            confirmations: confirmations.max(1),
            cosigner: None,
            rpc_url: None,
            deploy_block: None,
            log: 0,
            handles: Default::default(),
            send_lock: Default::default(),
        })
    }

    /// Binds the client to the log of relay account `relay` (`logOf`): refuses an account
    /// that is not a relay of the registry now.
    pub async fn for_relay(mut self, relay: Address) -> Result<Self, ChainError> {
        let log = MediBlockRegistry::new(self.registry, self.provider.clone())
            .logOf(relay)
            .call()
            .await
            .map_err(rpc)?;
        if log == 0 {
            return Err(ChainError::Reverted(format!(
                "account {relay} is not a relay of the registry at {}: its administrator must \
                 add it (addRelay, or replaceRelay to rotate a relay's key)",
                self.registry
            )));
        }
        self.log = log;
        Ok(self)
    }

    /// Binds the client to log `log` (read-only tools: the log a store recorded).
    pub fn with_log(mut self, log: u16) -> Self {
        self.log = log;
        self
    }

    /// The relay's log on the registry (0 when unbound).
    pub fn log(&self) -> u16 {
        self.log
    }

    /// The JSON-RPC URL that `GET /api/v1/info` hands to browsers so they check anchors on
    /// chain themselves: the embedded anvil's, or the operator's `browser_rpc_url` (never the
    /// relay's own URL, which may carry a provider's API key).
    pub fn with_rpc_url(mut self, url: impl Into<String>) -> Self {
        self.rpc_url = Some(url.into());
        self
    }

    /// The block the registry was deployed in, when known (the embedded chain records it):
    /// log searches start there, and `GET /api/v1/info` publishes it for browsers.
    pub fn with_deploy_block(mut self, block: Option<u64>) -> Self {
        self.deploy_block = block;
        self
    }

    /// The registry's deployment block, when known.
    pub fn deploy_block(&self) -> Option<u64> {
        self.deploy_block
    }

    /// Whether the registry marks `ticket` used in this client's log (a record of the log
    /// with it is anchored).
    pub async fn ticket_used(&self, ticket: u64) -> Result<bool, ChainError> {
        MediBlockRegistry::new(self.registry, self.provider.clone())
            .ticketUsed(self.log, ticket)
            .call()
            .await
            .map_err(rpc)
    }

    /// The JSON-RPC URL published to browsers, if any.
    pub fn rpc_url(&self) -> Option<&str> {
        self.rpc_url.as_deref()
    }

    /// The relay's Ethereum key, used to co-sign records that wallets send (the wallet path).
    pub fn with_cosigner(mut self, signer: alloy::signers::local::PrivateKeySigner) -> Self {
        self.cosigner = Some(signer);
        self
    }

    /// The relay's EIP-712 co-signature of `anchor` for `submitter`, valid until `deadline`
    /// (Unix seconds); `None` when the relay has no co-signing key.
    pub fn cosign(
        &self,
        anchor: &Anchor,
        deadline: u64,
        submitter: Address,
    ) -> Option<Result<registry::Cosignature, ChainError>> {
        let signer = self.cosigner.as_ref()?;
        let domain = registry::domain(self.chain_id, self.registry);
        Some(
            anchor
                .cosign(signer, &domain, deadline, submitter)
                .map_err(|e| ChainError::Rpc(e.to_string())),
        )
    }

    /// Enrols a wallet address as a submitter unless it is one (needs the owner's key).
    pub async fn enroll_wallet(&self, wallet: Address) -> Result<(), ChainError> {
        let contract = MediBlockRegistry::new(self.registry, self.provider.clone());
        let role = contract.roleOf(wallet).call().await.map_err(rpc)?;
        if role == registry::ROLE_WALLET {
            return Ok(());
        }
        contract
            .enrollWallet(wallet)
            .send()
            .await
            .map_err(rpc)?
            .get_receipt()
            .await
            .map_err(rpc)?;
        Ok(())
    }

    /// EIP-155 chain id.
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// The registry's address.
    pub fn registry(&self) -> Address {
        self.registry
    }

    /// The signing provider.
    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    /// Whether the node answers.
    pub async fn ping(&self) -> Result<u64, ChainError> {
        self.provider.get_block_number().await.map_err(rpc)
    }

    /// Sends the anchoring transaction of `anchor`; returns its hash once the node took it.
    /// A revert found while estimating gas (duplicate tid, unknown template) is `Reverted`.
    pub async fn send_anchor(&self, anchor: &Anchor) -> Result<[u8; 32], ChainError> {
        let tx = TransactionRequest::default()
            .to(self.registry)
            .input(anchor.calldata().into());
        let _one_at_a_time = self.send_lock.lock().await;
        match self.provider.send_transaction(tx).await {
            Ok(pending) => Ok(pending.tx_hash().0),
            Err(e) => match e.as_error_resp() {
                Some(resp) => Err(ChainError::Reverted(resp.message.to_string())),
                None => Err(rpc(e)),
            },
        }
    }

    /// Whether the node knows transaction `tx_hash` at all: pending in its pool, or mined.
    pub async fn knows_transaction(&self, tx_hash: &[u8; 32]) -> Result<bool, ChainError> {
        Ok(self
            .provider
            .get_transaction_by_hash(B256::from(*tx_hash))
            .await
            .map_err(rpc)?
            .is_some())
    }

    /// The receipt of `tx_hash` once it has the configured confirmations; `None` while it
    /// is unknown, pending or not yet confirmed deeply enough.
    pub async fn confirmed_receipt(
        &self,
        tx_hash: &[u8; 32],
    ) -> Result<Option<TransactionReceipt>, ChainError> {
        let Some(receipt) = self
            .provider
            .get_transaction_receipt(B256::from(*tx_hash))
            .await
            .map_err(rpc)?
        else {
            return Ok(None);
        };
        let Some(mined) = receipt.block_number else {
            return Ok(None);
        };
        let head = self.provider.get_block_number().await.map_err(rpc)?;
        Ok((head + 1 >= mined + self.confirmations).then_some(receipt))
    }

    /// The `RecordAnchored` event of `tid` in this client's log in a confirmed receipt.
    pub fn anchored_in(&self, receipt: &TransactionReceipt, tid: &[u8; 16]) -> Option<Anchored> {
        let (log, record) = receipt.inner.logs().iter().find_map(|log| {
            let record = self.record_of(log)?;
            (record.tid == *tid).then_some((log, record))
        })?;
        Some(Anchored {
            record,
            tx_hash: receipt.transaction_hash.0,
            block_number: receipt.block_number?,
            block_hash: receipt.block_hash?.0,
            log_index: log.log_index?,
            gas_used: receipt.gas_used,
        })
    }

    /// A `RecordAnchored` event of this registry in this client's log, decoded.
    fn record_of(&self, log: &alloy::rpc::types::Log) -> Option<AnchoredRecord> {
        if log.address() != self.registry {
            return None;
        }
        let event = MediBlockRegistry::RecordAnchored::decode_log_data(log.data()).ok()?;
        AnchoredRecord::from_event(&event).filter(|r| r.log == self.log)
    }

    /// Finds the anchoring transaction of `tid` in this client's log from the chain's logs
    /// (after a crash between sending and recording the hash, or when the tid turns out to
    /// be anchored already). Another relay's record with the same tid is in another log and
    /// is not this one.
    pub async fn find_anchor(&self, tid: &[u8; 16]) -> Result<Option<[u8; 32]>, ChainError> {
        // The ticket first (one call): when it is unused, no event can exist, and the
        // search over the whole chain is skipped.
        let mut ticket = [0u8; 8];
        ticket.copy_from_slice(&tid[..8]);
        if !self.ticket_used(u64::from_be_bytes(ticket)).await? {
            return Ok(None);
        }
        let mut topic = [0u8; 32];
        topic[..16].copy_from_slice(tid);
        let filter = Filter::new()
            .address(self.registry)
            .event_signature(MediBlockRegistry::RecordAnchored::SIGNATURE_HASH)
            .topic1(B256::from(topic));
        let logs = self
            .first_logs_since(filter, self.deploy_block.unwrap_or(0), |l| {
                self.record_of(l).is_some()
            })
            .await?;
        Ok(logs.first().and_then(|l| l.transaction_hash).map(|h| h.0))
    }

    /// The logs matching `filter` and `keep` from block `from` to the head, asked in ranges
    /// of [`LOG_RANGE`] blocks (hosted nodes refuse one request over a whole chain); stops
    /// at the first range that has any.
    async fn first_logs_since(
        &self,
        filter: Filter,
        from: u64,
        keep: impl Fn(&alloy::rpc::types::Log) -> bool,
    ) -> Result<Vec<alloy::rpc::types::Log>, ChainError> {
        self.scan_logs(filter, from, keep, true).await
    }

    /// Every log matching `filter` from block `from` to the head, in ranges of [`LOG_RANGE`].
    async fn all_logs_since(
        &self,
        filter: Filter,
        from: u64,
    ) -> Result<Vec<alloy::rpc::types::Log>, ChainError> {
        self.scan_logs(filter, from, |_| true, false).await
    }

    async fn scan_logs(
        &self,
        filter: Filter,
        from: u64,
        keep: impl Fn(&alloy::rpc::types::Log) -> bool,
        first_only: bool,
    ) -> Result<Vec<alloy::rpc::types::Log>, ChainError> {
        let head = self.head().await?;
        let mut out = Vec::new();
        let mut start = from;
        while start <= head {
            let end = head.min(start.saturating_add(LOG_RANGE - 1));
            let range = filter.clone().from_block(start).to_block(end);
            let logs = self.provider.get_logs(&range).await.map_err(rpc)?;
            out.extend(logs.into_iter().filter(|l| keep(l)));
            if first_only && !out.is_empty() {
                break;
            }
            start = end + 1;
        }
        Ok(out)
    }

    /// The current block number.
    pub async fn head(&self) -> Result<u64, ChainError> {
        self.provider.get_block_number().await.map_err(rpc)
    }

    /// Every `RecordAnchored` event of this client's log in blocks `from..=to`:
    /// `(tid, tx hash)`.
    pub async fn anchored_between(
        &self,
        from: u64,
        to: u64,
    ) -> Result<Vec<([u8; 16], [u8; 32])>, ChainError> {
        let filter = Filter::new()
            .address(self.registry)
            .event_signature(MediBlockRegistry::RecordAnchored::SIGNATURE_HASH)
            .from_block(from)
            .to_block(to);
        let logs = self.provider.get_logs(&filter).await.map_err(rpc)?;
        Ok(logs
            .iter()
            .filter_map(|log| Some((self.record_of(log)?.tid, log.transaction_hash?.0)))
            .collect())
    }

    /// What the registry publishes about template `handle` (`templateInfo`): its id hash,
    /// version and template hash; `None` for an unknown handle.
    pub async fn template_info(&self, handle: u16) -> Result<Option<TemplateInfo>, ChainError> {
        match MediBlockRegistry::new(self.registry, self.provider.clone())
            .templateInfo(handle)
            .call()
            .await
        {
            Ok(info) => Ok(Some(TemplateInfo {
                id: info.id.0,
                version: info.version,
                template_hash: info.templateHash.0,
            })),
            Err(e) if e.as_revert_data().is_some() => Ok(None),
            Err(e) => Err(rpc(e)),
        }
    }

    /// The registry handle of a template, `None` when it is not registered.
    ///
    /// A registered (id, version) keeps its handle for good (published templates never
    /// change), so found handles are remembered: the worker asks once per template, not
    /// once per record.
    pub async fn template_handle(
        &self,
        chain_id: [u8; 32],
        version: u32,
    ) -> Result<Option<u16>, ChainError> {
        let known = |c: &Self| {
            c.handles
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(&(chain_id, version))
                .copied()
        };
        if let Some(handle) = known(self) {
            return Ok(Some(handle));
        }
        let registry = MediBlockRegistry::new(self.registry, self.provider.clone());
        let handle = registry
            .handleOf(FixedBytes(chain_id), version)
            .call()
            .await
            .map_err(rpc)?;
        if handle == 0 {
            return Ok(None);
        }
        self.handles
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert((chain_id, version), handle);
        Ok(Some(handle))
    }
}

/// What `templateInfo(handle)` says of a published template, as verifiers need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemplateInfo {
    /// keccak256 of the template id (`TemplateId::chain_id`).
    pub id: [u8; 32],
    /// The template version.
    pub version: u32,
    /// keccak256 of the template's canonical encoding (`Template::hash`).
    pub template_hash: [u8; 32],
}

/// A decoded `CheckpointAnchored` event of the registry and where it is on chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnchoredCheckpoint {
    /// The log it extends.
    pub log: u16,
    /// The log's tree size.
    pub size: u64,
    /// Its Merkle root.
    pub root: [u8; 32],
    /// The relay account that anchored it.
    pub submitter: Address,
    /// The anchoring transaction.
    pub tx_hash: [u8; 32],
    /// Its block.
    pub block_number: u64,
    /// That block's hash.
    pub block_hash: [u8; 32],
    /// The event's index in the block.
    pub log_index: u64,
}

impl AnchoredCheckpoint {
    /// Decodes a `CheckpointAnchored` log of `registry`; `None` for any other log or a log
    /// without its block position (a pending one).
    pub fn from_log(log: &alloy::rpc::types::Log, registry: Address) -> Option<Self> {
        if log.address() != registry {
            return None;
        }
        let e = MediBlockRegistry::CheckpointAnchored::decode_log(&log.inner).ok()?;
        Some(Self {
            log: e.log,
            size: e.size,
            root: e.root.0,
            submitter: e.submitter,
            tx_hash: log.transaction_hash?.0,
            block_number: log.block_number?,
            block_hash: log.block_hash?.0,
            log_index: log.log_index?,
        })
    }
}

impl Chain {
    /// Sends the anchoring transaction of the checkpoint (`size`, `root`); returns its hash
    /// once the node took it. A size that does not grow is refused while estimating gas
    /// (`Reverted`): this relay's log already has this size or a larger one (another
    /// process of the same relay anchored it first).
    pub async fn send_checkpoint(
        &self,
        size: u64,
        root: &[u8; 32],
    ) -> Result<[u8; 32], ChainError> {
        let tx = TransactionRequest::default()
            .to(self.registry)
            .input(registry::checkpoint_calldata(size, root).into());
        let _one_at_a_time = self.send_lock.lock().await;
        match self.provider.send_transaction(tx).await {
            Ok(pending) => Ok(pending.tx_hash().0),
            Err(e) => match e.as_error_resp() {
                Some(resp) => Err(ChainError::Reverted(resp.message.to_string())),
                None => Err(rpc(e)),
            },
        }
    }

    /// The latest anchored checkpoint of this client's log: `(size, root)`, `(0, zero)`
    /// before the first.
    pub async fn latest_checkpoint(&self) -> Result<(u64, [u8; 32]), ChainError> {
        let latest = MediBlockRegistry::new(self.registry, self.provider.clone())
            .latestCheckpoint(self.log)
            .call()
            .await
            .map_err(rpc)?;
        Ok((latest.size, latest.root.0))
    }

    /// Every checkpoint of this client's log anchored from block `from_block` on, oldest
    /// first, read from its `CheckpointAnchored` events (only the latest root is in storage).
    pub async fn anchored_checkpoints(
        &self,
        from_block: u64,
    ) -> Result<Vec<AnchoredCheckpoint>, ChainError> {
        let filter = Filter::new()
            .address(self.registry)
            .event_signature(MediBlockRegistry::CheckpointAnchored::SIGNATURE_HASH)
            .topic1(self.log_topic());
        let logs = self.all_logs_since(filter, from_block).await?;
        Ok(logs
            .iter()
            .filter_map(|log| AnchoredCheckpoint::from_log(log, self.registry))
            .collect())
    }

    /// The `CheckpointAnchored` topic of this client's log.
    fn log_topic(&self) -> B256 {
        B256::from(alloy::primitives::U256::from(self.log))
    }

    /// The `CheckpointAnchored` event of tree size `size` in this client's log, if that size
    /// was anchored.
    pub async fn checkpoint_event(
        &self,
        size: u64,
    ) -> Result<Option<AnchoredCheckpoint>, ChainError> {
        let filter = Filter::new()
            .address(self.registry)
            .event_signature(MediBlockRegistry::CheckpointAnchored::SIGNATURE_HASH)
            .topic1(self.log_topic())
            .topic2(B256::from(alloy::primitives::U256::from(size)));
        let logs = self
            .first_logs_since(filter, self.deploy_block.unwrap_or(0), |_| true)
            .await?;
        Ok(logs
            .iter()
            .find_map(|log| AnchoredCheckpoint::from_log(log, self.registry)))
    }

    /// The `CheckpointAnchored` event of `size` in a receipt.
    pub fn checkpoint_in(
        &self,
        receipt: &TransactionReceipt,
        size: u64,
    ) -> Option<AnchoredCheckpoint> {
        receipt
            .inner
            .logs()
            .iter()
            .filter_map(|log| AnchoredCheckpoint::from_log(log, self.registry))
            .find(|c| c.log == self.log && c.size == size)
    }
}
