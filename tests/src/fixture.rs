//! A deployed registry on a fresh anvil chain, with a relay, an enrolled wallet and a
//! "vital signs" template whose three on-chain attributes are a heart rate, a temperature and
//! a smoker flag — the shared starting point of the contract tests and gas measurements.
//!
//! Its records carry ticketed tids (`TxId::for_ticket`) as the relay issues them: by default
//! consecutive tickets from [`TICKET_BASE`], a base aligned to 256 like a store's, so that
//! records share a word of the registry's ticket bitmap.
//!
//! Tests that need more relays (a second relay as an adversary, a relay's rotated key) add
//! them with [`Chain::add_relay`] from the dev accounts [`RELAY_B`] and [`RELAY_NEW_KEY`], and
//! act as any dev account with [`Chain::registry_as`], [`Chain::anchor_as`] and
//! [`Chain::checkpoint_as`].

use alloy::primitives::{Address, B256, Bytes, FixedBytes};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::{Filter, TransactionReceipt, TransactionRequest};
use alloy::sol_types::SolEvent;
use mediblock_protocol::generator::BlockchainTransaction;
use mediblock_protocol::ids::{Commitment, TxId};
use mediblock_protocol::template::Template;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use crate::anvil::{Anvil, AnvilError, AnvilOptions};
use crate::registry::{
    self, Anchor, AnchoredRecord, Cosignature, RegistryError, RegistryInstance, SendError,
};

/// The ticket of [`Chain::anchor`]'s seed 0: aligned to 256 (its low byte is 0), like the
/// random base of a store's tickets, and with no other zero byte (worst case for calldata).
pub const TICKET_BASE: u64 = 0x3a3c_91e4_5b6d_f200;

/// Dev account of the admin.
pub const ADMIN: usize = 0;
/// Dev account of the fixture's relay ("relay A").
pub const RELAY: usize = 1;
/// Dev account of the enrolled wallet.
pub const WALLET: usize = 2;
/// Dev account with no role.
pub const STRANGER: usize = 3;
/// Dev account of a second relay ("relay B"), not a relay until a test adds it.
pub const RELAY_B: usize = 5;
/// Dev account a relay's Ethereum key is rotated to (`replaceRelay`), no role at start.
pub const RELAY_NEW_KEY: usize = 6;

/// The test template: three on-chain attributes (heart rate 20..=250 bpm, temperature
/// 30.0..=45.0 °C as a scale-1 mantissa, smoker yes/no) and one free-text comment that
/// never goes on chain.
pub const VITAL_SIGNS: &str = r#"{
  "id": "vital-signs",
  "version": 1,
  "title": "Vital signs",
  "attributes": [
    {"name": "heart_rate", "label": "Heart rate", "unit": "bpm", "required": true, "on_chain": true,
     "kind": {"type": "integer", "scale": 0, "min": 20, "max": 250}},
    {"name": "temperature", "label": "Temperature", "unit": "°C", "required": true, "on_chain": true,
     "kind": {"type": "integer", "scale": 1, "min": 300, "max": 450}},
    {"name": "smoker", "label": "Smoker", "required": true, "on_chain": true,
     "kind": {"type": "boolean"}},
    {"name": "comment", "label": "Comment", "kind": {"type": "text", "max_len": 500}}
  ],
  "roles": ["doctor", "nurse"]
}"#;

/// Why the fixture could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    /// Anvil did not start.
    #[error(transparent)]
    Anvil(#[from] AnvilError),
    /// A contract call failed.
    #[error(transparent)]
    Contract(#[from] alloy::contract::Error),
    /// A transaction failed.
    #[error(transparent)]
    Send(#[from] SendError),
    /// Waiting for a receipt failed.
    #[error(transparent)]
    Pending(#[from] alloy::providers::PendingTransactionError),
    /// The template JSON is invalid.
    #[error(transparent)]
    Template(#[from] serde_json::Error),
    /// `node` could not be run.
    #[error("running node: {0}")]
    Node(#[from] std::io::Error),
    /// A test-only Solidity source did not compile.
    #[error("tests/solidity/compile.mjs failed: {0}")]
    Compile(String),
    /// A deployment left no contract.
    #[error("the deployment created no contract")]
    NotDeployed,
}

/// A chain with a deployed and configured registry.
#[derive(Debug)]
pub struct Chain {
    /// The node; dropping the fixture stops it.
    pub anvil: Anvil,
    /// The registry, called by the admin.
    pub admin: RegistryInstance<DynProvider>,
    /// The registry, called by the relay.
    pub relay: RegistryInstance<DynProvider>,
    /// The registry, called by the enrolled wallet.
    pub wallet: RegistryInstance<DynProvider>,
    /// The registry, called by an account with no role.
    pub stranger: RegistryInstance<DynProvider>,
    /// The vital-signs template.
    pub template: Template,
    /// Its handle.
    pub handle: u16,
    /// The relay's log (its checkpoints and ticket space).
    pub log: u16,
    /// Gas used by the deployment transaction.
    pub deploy_gas: u64,
}

impl Chain {
    /// Starts anvil, deploys the registry, adds the relay, enrols the wallet and registers
    /// the vital-signs template.
    pub async fn start() -> Result<Self, FixtureError> {
        Self::start_with(&AnvilOptions::default()).await
    }

    /// [`Chain::start`] on an anvil started with `options`.
    pub async fn start_with(options: &AnvilOptions) -> Result<Self, FixtureError> {
        let anvil = Anvil::start_with(options)?;
        let provider = |i| registry::provider(anvil.url(), anvil.signer(i));
        let admin_provider = provider(ADMIN);
        let deploy = registry::MediBlockRegistry::deploy_builder(
            admin_provider.clone(),
            anvil.address(ADMIN),
        );
        let receipt = deploy.send().await?.get_receipt().await?;
        let address = receipt
            .contract_address
            .ok_or_else(|| alloy::contract::Error::ContractNotDeployed)?;
        let bind = |p: DynProvider| registry::MediBlockRegistry::new(address, p);
        let admin = bind(admin_provider);
        admin
            .addRelay(anvil.address(RELAY))
            .send()
            .await?
            .get_receipt()
            .await?;
        admin
            .enrollWallet(anvil.address(WALLET))
            .send()
            .await?
            .get_receipt()
            .await?;
        let template: Template = serde_json::from_str(VITAL_SIGNS)?;
        let handle = register(&admin, &template, Address::ZERO).await?;
        let log = admin.logOf(anvil.address(RELAY)).call().await?;
        Ok(Self {
            relay: bind(provider(RELAY)),
            wallet: bind(provider(WALLET)),
            stranger: bind(provider(STRANGER)),
            admin,
            template,
            handle,
            log,
            deploy_gas: receipt.gas_used,
            anvil,
        })
    }

    /// The registry's address.
    pub fn address(&self) -> Address {
        *self.admin.address()
    }

    /// The relay's address.
    pub fn relay_address(&self) -> Address {
        self.anvil.address(RELAY)
    }

    /// The wallet's address.
    pub fn wallet_address(&self) -> Address {
        self.anvil.address(WALLET)
    }

    /// The stranger's address.
    pub fn stranger_address(&self) -> Address {
        self.anvil.address(STRANGER)
    }

    /// A record of the vital-signs template with these on-chain values, ticket
    /// `TICKET_BASE + seed`, and a random half and commitment derived from `seed`.
    pub fn anchor(&self, seed: u64, values: &[i64]) -> Anchor {
        self.ticketed_anchor(TICKET_BASE.wrapping_add(seed), seed, values)
    }

    /// A record of the vital-signs template with ticket `ticket`, a tid whose random half
    /// and a commitment derived from `seed`, and these on-chain values.
    pub fn ticketed_anchor(&self, ticket: u64, seed: u64, values: &[i64]) -> Anchor {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let tc = BlockchainTransaction {
            tid: TxId::for_ticket(ticket, &mut rng),
            commitment: Commitment::from_bytes(seeded(seed, 0xc0)),
            template: self.template.reference(),
            values: values.to_vec(),
        };
        Anchor::new(&tc, self.handle)
    }

    /// The registry's `ticketUsed(log, ticket)` in the relay's log ([`Chain::log`], the log
    /// the relay got when the fixture added it).
    pub async fn ticket_used(&self, ticket: u64) -> Result<bool, FixtureError> {
        self.ticket_used_in(self.log, ticket).await
    }

    /// The registry's `ticketUsed(log, ticket)`.
    pub async fn ticket_used_in(&self, log: u16, ticket: u64) -> Result<bool, FixtureError> {
        Ok(self.admin.ticketUsed(log, ticket).call().await?)
    }

    /// The registry as dev account `account` calls it.
    pub fn registry_as(&self, account: usize) -> RegistryInstance<DynProvider> {
        registry::MediBlockRegistry::new(
            self.address(),
            registry::provider(self.anvil.url(), self.anvil.signer(account)),
        )
    }

    /// The admin makes dev account `account` a relay; returns the new log it writes.
    pub async fn add_relay(&self, account: usize) -> Result<u16, FixtureError> {
        let relay = self.anvil.address(account);
        self.admin
            .addRelay(relay)
            .send()
            .await?
            .get_receipt()
            .await?;
        Ok(self.admin.logOf(relay).call().await?)
    }

    /// Dev account `account` sends `anchor` as a relay would (OP_ANCHOR).
    pub async fn anchor_as(
        &self,
        account: usize,
        anchor: &Anchor,
    ) -> Result<TransactionReceipt, SendError> {
        let provider = registry::provider(self.anvil.url(), self.anvil.signer(account));
        registry::send_raw(&provider, self.address(), anchor.calldata()).await
    }

    /// Dev account `account` sends the checkpoint (size, root) as a relay would
    /// (OP_CHECKPOINT).
    pub async fn checkpoint_as(
        &self,
        account: usize,
        size: u64,
        root: &[u8; 32],
    ) -> Result<TransactionReceipt, SendError> {
        let provider = registry::provider(self.anvil.url(), self.anvil.signer(account));
        registry::send_raw(
            &provider,
            self.address(),
            registry::checkpoint_calldata(size, root),
        )
        .await
    }

    /// Every `RecordAnchored` event of `tid`, found as readers find a record: a log filter
    /// on the tid topic over the whole chain.
    pub async fn records_of(&self, tid: &[u8; 16]) -> Result<Vec<AnchoredRecord>, FixtureError> {
        let mut topic = [0u8; 32];
        topic[..16].copy_from_slice(tid);
        let filter = Filter::new()
            .address(self.address())
            .event_signature(registry::MediBlockRegistry::RecordAnchored::SIGNATURE_HASH)
            .topic1(B256::from(topic))
            .from_block(0);
        let logs = self
            .admin
            .provider()
            .get_logs(&filter)
            .await
            .map_err(SendError::from)?;
        Ok(logs
            .iter()
            .filter_map(|log| {
                registry::MediBlockRegistry::RecordAnchored::decode_log_data(log.data()).ok()
            })
            .filter_map(|e| AnchoredRecord::from_event(&e))
            .collect())
    }

    /// The relay anchors `anchor` (OP_ANCHOR).
    pub async fn relay_anchors(&self, anchor: &Anchor) -> Result<TransactionReceipt, SendError> {
        registry::send_raw(self.relay.provider(), self.address(), anchor.calldata()).await
    }

    /// The relay anchors the checkpoint (size, root) (OP_CHECKPOINT).
    pub async fn relay_checkpoints(
        &self,
        size: u64,
        root: &[u8; 32],
    ) -> Result<TransactionReceipt, SendError> {
        registry::send_raw(
            self.relay.provider(),
            self.address(),
            registry::checkpoint_calldata(size, root),
        )
        .await
    }

    /// The relay co-signs `anchor` for the wallet, valid until `deadline`.
    pub fn cosign(&self, anchor: &Anchor, deadline: u64) -> Cosignature {
        self.cosign_by(anchor, deadline, RELAY, self.wallet_address())
    }

    /// Dev account `signer` co-signs `anchor` for `submitter`.
    pub fn cosign_by(
        &self,
        anchor: &Anchor,
        deadline: u64,
        signer: usize,
        submitter: Address,
    ) -> Cosignature {
        let domain = registry::domain(self.anvil.chain_id(), self.address());
        match anchor.cosign(&self.anvil.signer(signer), &domain, deadline, submitter) {
            Ok(c) => c,
            Err(e) => panic!("local signing cannot fail: {e}"),
        }
    }

    /// The wallet anchors `anchor` with `cosignature` (OP_ANCHOR_COSIGNED).
    pub async fn wallet_anchors(
        &self,
        anchor: &Anchor,
        cosignature: &Cosignature,
    ) -> Result<TransactionReceipt, SendError> {
        registry::send_raw(
            self.wallet.provider(),
            self.address(),
            anchor.cosigned_calldata(cosignature),
        )
        .await
    }

    /// Timestamp of the latest block.
    pub async fn now(&self) -> Result<u64, FixtureError> {
        let block = self
            .admin
            .provider()
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await
            .map_err(SendError::from)?;
        Ok(block.map(|b| b.header.timestamp).unwrap_or_default())
    }
}

/// Registers `template` with the rules [`registry::rules_for`] derives; returns its handle.
pub async fn register(
    admin: &RegistryInstance<DynProvider>,
    template: &Template,
    validator: Address,
) -> Result<u16, FixtureError> {
    let id = FixedBytes(template.reference().id.chain_id());
    let version = template.reference().version.get();
    admin
        .registerTemplate(
            id,
            version,
            FixedBytes(template.hash()),
            registry::rules_for(template),
            validator,
        )
        .send()
        .await?
        .get_receipt()
        .await?;
    Ok(admin.handleOf(id, version).call().await?)
}

/// Deterministic "random-looking" bytes: every byte non-zero, like most bytes of real random ids.
pub fn seeded<const N: usize>(seed: u64, salt: u8) -> [u8; N] {
    let digest = mediblock_protocol::hash::keccak256(&[&seed.to_be_bytes()[..], &[salt]].concat());
    let mut out = [0u8; N];
    for (i, b) in out.iter_mut().enumerate() {
        *b = digest[i % 32] | 1;
    }
    out
}

/// A contract compiled from a test-only source in `tests/solidity/`.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// Creation code (constructor arguments go after it).
    pub bytecode: Bytes,
    /// Runtime code, as deployed (immutables zeroed).
    pub deployed_bytecode: Bytes,
}

/// Compiles contract `name` of `tests/solidity/<file>` with the pinned solc-js and the
/// settings of `contracts/build.mjs` (through `tests/solidity/compile.mjs`).
pub fn compile_test_contract(file: &str, name: &str) -> Result<Compiled, FixtureError> {
    let root = crate::repo_root();
    let out = std::process::Command::new("node")
        .arg(root.join("tests/solidity/compile.mjs"))
        .arg(root.join("tests/solidity").join(file))
        .arg(name)
        .output()?;
    if !out.status.success() {
        return Err(FixtureError::Compile(
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ));
    }
    let output: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let code = |key: &str| {
        output[key]
            .as_str()
            .and_then(|hex| hex.parse::<Bytes>().ok())
            .ok_or_else(|| FixtureError::Compile(format!("no {key} in the output")))
    };
    Ok(Compiled {
        bytecode: code("bytecode")?,
        deployed_bytecode: code("deployedBytecode")?,
    })
}

/// Init code that runs `constructor` (which must leave the stack as it found it), then
/// deploys `runtime` as the contract's code: `constructor · PUSH1 len PUSH1 offset PUSH0
/// CODECOPY PUSH1 len PUSH0 RETURN · runtime`. For hand-assembled validators.
pub fn init_code(constructor: &[u8], runtime: &[u8]) -> Vec<u8> {
    const COPY_AND_RETURN: usize = 10;
    let len = u8::try_from(runtime.len()).unwrap_or_else(|_| panic!("runtime code over 255 bytes"));
    let offset = u8::try_from(constructor.len() + COPY_AND_RETURN)
        .unwrap_or_else(|_| panic!("constructor over 245 bytes"));
    let mut code = constructor.to_vec();
    code.extend_from_slice(&[0x60, len, 0x60, offset, 0x5f, 0x39, 0x60, len, 0x5f, 0xf3]);
    code.extend_from_slice(runtime);
    code
}

/// `provider`'s account deploys `init` (creation code and its arguments) with a CREATE
/// transaction; returns the new contract's address.
pub async fn deploy_code(provider: &DynProvider, init: Vec<u8>) -> Result<Address, FixtureError> {
    use alloy::network::TransactionBuilder;
    let tx = TransactionRequest::default().with_deploy_code(init);
    let receipt = provider
        .send_transaction(tx)
        .await
        .map_err(SendError::from)?
        .get_receipt()
        .await?;
    match receipt.contract_address {
        Some(address) if receipt.status() => Ok(address),
        _ => Err(FixtureError::NotDeployed),
    }
}

/// Sends `calldata` to `to` with a fixed gas limit, skipping estimation, so that a
/// transaction that reverts is still mined: its receipt, with status false, proves the
/// revert happened on chain. Panics when the node refuses it.
pub async fn send_mined(
    provider: &DynProvider,
    to: Address,
    calldata: Bytes,
) -> TransactionReceipt {
    let tx = TransactionRequest::default()
        .to(to)
        .input(calldata.into())
        .gas_limit(300_000);
    match provider.send_transaction(tx).await {
        Ok(pending) => match pending.get_receipt().await {
            Ok(receipt) => receipt,
            Err(e) => panic!("no receipt: {e}"),
        },
        Err(e) => panic!("the node refused the transaction: {e}"),
    }
}

/// The registry error a failed raw transaction reverted with. Panics when it did not
/// revert, or not with a registry error.
pub fn revert_of<T: std::fmt::Debug>(result: Result<T, SendError>) -> RegistryError {
    let err = result.expect_err("the transaction should revert");
    err.registry_error()
        .unwrap_or_else(|| panic!("not a registry revert: {err}"))
}

/// The registry error a failed contract call or transaction reverted with. Panics when it
/// did not revert, or not with a registry error.
pub fn call_revert_of<T: std::fmt::Debug>(
    result: Result<T, alloy::contract::Error>,
) -> RegistryError {
    let err = result.expect_err("the call should revert");
    registry::registry_error(&err).unwrap_or_else(|| panic!("not a registry revert: {err}"))
}

/// The single `RecordAnchored` event of a successful receipt from `chain`'s registry.
/// Panics when the transaction failed or logged another number of records.
pub fn anchored(chain: &Chain, receipt: &TransactionReceipt) -> AnchoredRecord {
    assert!(receipt.status(), "transaction failed");
    let mut events = AnchoredRecord::from_receipt(receipt, chain.address());
    assert_eq!(events.len(), 1, "exactly one RecordAnchored event");
    events.remove(0)
}

/// keccak256 of `values` packed as the registry hashes them into `valuesHash` (each an
/// int64, big-endian, concatenated), computed here from the protocol crate's keccak256,
/// independently of the bindings' `Anchor::values_hash`.
pub fn packed_values_hash(values: &[i64]) -> [u8; 32] {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_be_bytes()).collect();
    mediblock_protocol::hash::keccak256(&bytes)
}
