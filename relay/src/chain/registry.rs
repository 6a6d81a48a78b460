//! The MediBlock registry contract from Rust: alloy bindings generated from the committed
//! artifacts in `contracts/out/`, the packed calldata of the two record-anchoring
//! operations, the relay's EIP-712 co-signature, the template → on-chain rules mapping, and
//! decoders for what the contract stores and logs (a record's event carries its log and the
//! hash of the values its verdict judged). docs/CONTRACTS.md specifies all of it.

use alloy::dyn_abi::Eip712Domain;
use alloy::network::EthereumWallet;
use alloy::primitives::{Address, Bytes, FixedBytes, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol;
use alloy::sol_types::{SolEvent, SolStruct};
use alloy::transports::http::reqwest::Url;
use alloy::transports::{RpcError, TransportErrorKind};
use mediblock_protocol::generator::BlockchainTransaction;
use mediblock_protocol::template::{AttributeKind, Template};

sol!(
    /// The registry: submitters, templates, records and checkpoints.
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    MediBlockRegistry,
    "../contracts/out/MediBlockRegistry.json"
);

sol!(
    /// An external validator: ordering rules between two on-chain attributes.
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    OrderValidator,
    "../contracts/out/OrderValidator.json"
);

sol! {
    /// The EIP-712 struct the relay signs to co-sign a record an enrolled wallet sends.
    #[derive(Debug, PartialEq, Eq)]
    struct Record {
        bytes16 tid;
        bytes32 commitment;
        uint16 template;
        int64[] values;
        uint64 deadline;
        address submitter;
    }
}

pub use MediBlockRegistry::MediBlockRegistryErrors as RegistryError;
pub use MediBlockRegistry::MediBlockRegistryInstance as RegistryInstance;
pub use RangeRules::Rule;

/// `Rule::kind` of "no rule" (the ABI carries the Solidity enum `RuleKind` as a uint8).
pub const RULE_ANY: u8 = 0;
/// `Rule::kind` of an inclusive `min..=max` range.
pub const RULE_RANGE: u8 = 1;
/// `Rule::kind` of a set of allowed indices.
pub const RULE_SET: u8 = 2;
/// First calldata byte of a record anchored by a relay.
pub const OP_ANCHOR: u8 = 0x01;
/// First calldata byte of a record anchored by an enrolled wallet with a co-signature.
pub const OP_ANCHOR_COSIGNED: u8 = 0x02;
/// First calldata byte of a checkpoint anchored by a relay.
pub const OP_CHECKPOINT: u8 = 0x03;
/// `roleOf` of a relay.
pub const ROLE_RELAY: u8 = 1;
/// `roleOf` of an enrolled wallet.
pub const ROLE_WALLET: u8 = 2;
/// The EIP-712 domain name.
pub const DOMAIN_NAME: &str = "MediBlock Registry";
/// The EIP-712 domain version.
pub const DOMAIN_VERSION: &str = "1";
/// `registryVersion()` of the registry this code speaks to: verdicts bound to their values,
/// frozen validators, a log per relay. Version 1 had no such function.
pub const REGISTRY_VERSION: u32 = 2;

/// A provider that signs with `signer` and talks to `url`.
///
/// It asks the node for the nonce of every transaction instead of caching it: alloy's
/// cached nonce manager hands out a nonce even when gas estimation then fails on a revert,
/// which would leave a gap that stalls the account's next transaction. Tests send one
/// transaction at a time per account, so asking is both correct and cheap.
pub fn provider(url: Url, signer: PrivateKeySigner) -> DynProvider {
    ProviderBuilder::new()
        .disable_recommended_fillers()
        .with_gas_estimation()
        .with_simple_nonce_management()
        .fetch_chain_id()
        .wallet(EthereumWallet::from(signer))
        .connect_http(url)
        .erased()
}

/// Deploys a registry administered by `admin`; returns it bound to `provider`.
pub async fn deploy(
    provider: &DynProvider,
    admin: Address,
) -> Result<RegistryInstance<DynProvider>, alloy::contract::Error> {
    MediBlockRegistry::deploy(provider.clone(), admin).await
}

/// What the contract records for one record: the content of the paper's TC with the
/// registry's handle in place of the template reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    /// Random transaction id.
    pub tid: [u8; 16],
    /// keccak256 commitment of the signed TI.
    pub commitment: [u8; 32],
    /// The template's handle in this registry (see `handleOf`).
    pub handle: u16,
    /// On-chain values, in template order.
    pub values: Vec<i64>,
}

impl Anchor {
    /// The anchor of a blockchain transaction whose template has `handle` in the registry.
    pub fn new(tc: &BlockchainTransaction, handle: u16) -> Self {
        Self {
            tid: *tc.tid.as_bytes(),
            commitment: *tc.commitment.as_bytes(),
            handle,
            values: tc.values.clone(),
        }
    }

    /// What the registry logs as `valuesHash` when it judges these values: keccak256 of
    /// the values as int64 big-endian, concatenated (`protocol::generator::values_hash`).
    pub fn values_hash(&self) -> [u8; 32] {
        mediblock_protocol::generator::values_hash(&self.values)
    }

    /// The packed calldata of OP_ANCHOR:
    /// `0x01 | tid[16] | commitment[32] | handle u16 | values int64[n]`, big-endian.
    pub fn calldata(&self) -> Bytes {
        let mut out = Vec::with_capacity(51 + 8 * self.values.len());
        out.push(OP_ANCHOR);
        out.extend_from_slice(&self.tid);
        out.extend_from_slice(&self.commitment);
        out.extend_from_slice(&self.handle.to_be_bytes());
        for v in &self.values {
            out.extend_from_slice(&v.to_be_bytes());
        }
        out.into()
    }

    /// The EIP-712 struct the relay signs so that `submitter` may send this record.
    pub fn record(&self, deadline: u64, submitter: Address) -> Record {
        Record {
            tid: FixedBytes(self.tid),
            commitment: FixedBytes(self.commitment),
            template: self.handle,
            values: self.values.clone(),
            deadline,
            submitter,
        }
    }

    /// The relay's co-signature: its EIP-712 signature over [`Anchor::record`].
    pub fn cosign(
        &self,
        relay: &PrivateKeySigner,
        domain: &Eip712Domain,
        deadline: u64,
        submitter: Address,
    ) -> Result<Cosignature, alloy::signers::Error> {
        let hash = self.record(deadline, submitter).eip712_signing_hash(domain);
        let sig = relay.sign_hash_sync(&hash)?;
        Ok(Cosignature {
            deadline,
            r: sig.r().to_be_bytes(),
            s: sig.s().to_be_bytes(),
            v: 27 + u8::from(sig.v()),
        })
    }

    /// The packed calldata of OP_ANCHOR_COSIGNED:
    /// `0x02 | tid[16] | commitment[32] | handle u16 | deadline u64 | r[32] | s[32] | v u8
    /// | values int64[n]`, big-endian.
    pub fn cosigned_calldata(&self, cosignature: &Cosignature) -> Bytes {
        let mut out = Vec::with_capacity(124 + 8 * self.values.len());
        out.push(OP_ANCHOR_COSIGNED);
        out.extend_from_slice(&self.tid);
        out.extend_from_slice(&self.commitment);
        out.extend_from_slice(&self.handle.to_be_bytes());
        out.extend_from_slice(&cosignature.deadline.to_be_bytes());
        out.extend_from_slice(&cosignature.r);
        out.extend_from_slice(&cosignature.s);
        out.push(cosignature.v);
        for v in &self.values {
            out.extend_from_slice(&v.to_be_bytes());
        }
        out.into()
    }
}

/// The packed calldata of OP_CHECKPOINT: `0x03 | size u64 | root[32]`, big-endian.
pub fn checkpoint_calldata(size: u64, root: &[u8; 32]) -> Bytes {
    let mut out = Vec::with_capacity(41);
    out.push(OP_CHECKPOINT);
    out.extend_from_slice(&size.to_be_bytes());
    out.extend_from_slice(root);
    out.into()
}

/// A relay's co-signature of a wallet's record, in the packed (r, s, v) form the contract reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cosignature {
    /// Unix seconds after which the contract refuses it.
    pub deadline: u64,
    /// Signature r.
    pub r: [u8; 32],
    /// Signature s (low half, as alloy signs).
    pub s: [u8; 32],
    /// 27 or 28.
    pub v: u8,
}

/// The registry's EIP-712 domain on `chain_id` at `registry`.
pub fn domain(chain_id: u64, registry: Address) -> Eip712Domain {
    Eip712Domain::new(
        Some(DOMAIN_NAME.into()),
        Some(DOMAIN_VERSION.into()),
        Some(U256::from(chain_id)),
        Some(registry),
        None,
    )
}

/// The range validator's rules for `template`'s on-chain attributes, in on-chain order:
/// integer bounds as inclusive ranges (a missing bound is the int64 limit; no bounds at all
/// is `Any`), enums as the set of their indices, booleans as {0, 1}.
pub fn rules_for(template: &Template) -> Vec<Rule> {
    template
        .on_chain_attributes()
        .map(|a| match &a.kind {
            AttributeKind::Integer {
                min: None,
                max: None,
                ..
            } => Rule::any(),
            AttributeKind::Integer { min, max, .. } => {
                Rule::range(min.unwrap_or(i64::MIN), max.unwrap_or(i64::MAX))
            }
            AttributeKind::Enum { values } => Rule::set(if values.len() >= 64 {
                u64::MAX
            } else {
                (1u64 << values.len()) - 1
            }),
            AttributeKind::Boolean => Rule::set(0b11),
            // Template::new refuses text and dates on chain.
            AttributeKind::Text { .. } | AttributeKind::Date { .. } => Rule::any(),
        })
        .collect()
}

impl Rule {
    /// No rule.
    pub fn any() -> Self {
        Self {
            kind: RULE_ANY,
            min: 0,
            max: 0,
            allowed: 0,
        }
    }

    /// `min <= value <= max`.
    pub fn range(min: i64, max: i64) -> Self {
        Self {
            kind: RULE_RANGE,
            min,
            max,
            allowed: 0,
        }
    }

    /// `value` is an index whose bit is set in `allowed`.
    pub fn set(allowed: u64) -> Self {
        Self {
            kind: RULE_SET,
            min: 0,
            max: 0,
            allowed,
        }
    }
}

/// A record's verdict, as stored and logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every rule passed.
    Valid,
    /// On-chain attribute `index` (0-based) was the first to break a rule.
    Rejected {
        /// The failing attribute's position among the on-chain attributes.
        index: u8,
    },
    /// An external validator rejected the record without naming an attribute.
    RejectedByValidator,
}

impl Verdict {
    /// Decodes the verdict byte: 0 valid, 1 + i rejected at i, 255 rejected by a validator.
    pub fn from_byte(b: u8) -> Self {
        match b {
            0 => Self::Valid,
            255 => Self::RejectedByValidator,
            b => Self::Rejected { index: b - 1 },
        }
    }
}

/// Which path anchored a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnchorPath {
    /// A relay sent it.
    Relay,
    /// An enrolled wallet sent it with the relay's co-signature.
    Wallet,
}

/// A decoded `RecordAnchored` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnchoredRecord {
    /// Transaction id.
    pub tid: [u8; 16],
    /// Full commitment.
    pub commitment: [u8; 32],
    /// keccak256 of the values the registry judged (see [`Anchor::values_hash`]).
    pub values_hash: [u8; 32],
    /// The log (the relay's ticket space) the record was anchored in.
    pub log: u16,
    /// Who sent the transaction (the relay, or the wallet).
    pub submitter: Address,
    /// Template handle.
    pub handle: u16,
    /// The contract's verdict.
    pub verdict: Verdict,
    /// The path.
    pub path: AnchorPath,
}

impl AnchoredRecord {
    /// Unpacks the event's `info` word: submitter (bits 96..255) | log (32..47) |
    /// handle (16..31) | verdict (8..15) | path (0..7).
    pub fn from_event(e: &MediBlockRegistry::RecordAnchored) -> Option<Self> {
        let info = e.info.to_be_bytes::<32>();
        let path = match info[31] {
            1 => AnchorPath::Relay,
            2 => AnchorPath::Wallet,
            _ => return None,
        };
        Some(Self {
            tid: e.tid.0,
            commitment: e.commitment.0,
            values_hash: e.valuesHash.0,
            log: u16::from_be_bytes([info[26], info[27]]),
            submitter: Address::from_slice(&info[..20]),
            handle: u16::from_be_bytes([info[28], info[29]]),
            verdict: Verdict::from_byte(info[30]),
            path,
        })
    }

    /// Every `RecordAnchored` event of `registry` in `receipt`.
    pub fn from_receipt(receipt: &TransactionReceipt, registry: Address) -> Vec<Self> {
        receipt
            .inner
            .logs()
            .iter()
            .filter(|log| log.address() == registry)
            .filter_map(|log| MediBlockRegistry::RecordAnchored::decode_log_data(log.data()).ok())
            .filter_map(|e| Self::from_event(&e))
            .collect()
    }
}

/// Sends raw calldata to `to` and waits for the receipt.
pub async fn send_raw(
    provider: &DynProvider,
    to: Address,
    calldata: Bytes,
) -> Result<TransactionReceipt, SendError> {
    let tx = TransactionRequest::default().to(to).input(calldata.into());
    let pending = provider.send_transaction(tx).await?;
    Ok(pending.get_receipt().await?)
}

/// Why a transaction could not be sent or did not complete.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The node refused it, e.g. because gas estimation hit a revert.
    #[error(transparent)]
    Rpc(#[from] RpcError<TransportErrorKind>),
    /// Waiting for the receipt failed.
    #[error(transparent)]
    Pending(#[from] alloy::providers::PendingTransactionError),
}

impl SendError {
    /// The registry's custom error the transaction reverted with, if that is what happened.
    pub fn registry_error(&self) -> Option<RegistryError> {
        match self {
            Self::Rpc(e) => e.as_error_resp()?.as_decoded_interface_error(),
            Self::Pending(_) => None,
        }
    }
}

/// The registry's custom error of a failed contract call, if that is what happened.
pub fn registry_error(e: &alloy::contract::Error) -> Option<RegistryError> {
    e.as_decoded_interface_error()
}
