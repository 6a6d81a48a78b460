//! The validated transaction (T'I, paper §3.3): the signed initial transaction plus the
//! chain's acknowledgement (ACK). This is what the relay stores, sealed under
//! SK(relay, store), in `records` (valid) or in the audit of rejected records.

use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::checkpoint::{Checkpoint, SignedCheckpoint};
use crate::encoding::{Canonical, Reader, Writer};
use crate::envelope::Envelope;
use crate::error::{DecodeError, Result};
use crate::hash::TAG_VALIDATED;
use crate::ids::{ChainHash, EthAddress, LeafIndex};
use crate::keys::SymmetricKey;
use crate::merkle::InclusionProof;
use crate::record::SignedInitialTransaction;

/// The chain's verdict on a record's on-chain values.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Every on-chain rule held.
    Valid,
    /// The validator refused the record; it is anchored as rejected.
    Rejected {
        /// Index (in on-chain order) of the first attribute that broke its rule.
        attribute_index: u16,
    },
}

impl Verdict {
    /// Whether the record was accepted.
    pub fn is_valid(self) -> bool {
        matches!(self, Verdict::Valid)
    }
}

/// Where a record sits in a batch: its leaf, the checkpoint that covers it, and the proof.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct BatchAnchor {
    /// The record's leaf in the Merkle log.
    pub leaf_index: LeafIndex,
    /// The signed checkpoint anchored on chain.
    pub checkpoint: SignedCheckpoint,
    /// Inclusion proof of the leaf in the checkpoint's tree.
    pub inclusion: InclusionProof,
}

/// The chain's acknowledgement of a record.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Ack {
    /// Valid or rejected (with the failing attribute).
    pub verdict: Verdict,
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// The registry contract.
    pub contract: EthAddress,
    /// Hash of the anchoring transaction.
    pub tx_hash: ChainHash,
    /// Block that included it.
    pub block_number: u64,
    /// Hash of that block (detects a reorg).
    pub block_hash: ChainHash,
    /// Index of the anchoring event in the block.
    pub log_index: u64,
    /// Present when the record was anchored through a checkpoint (batch mode).
    pub batch: Option<BatchAnchor>,
}

/// A signed initial transaction with its ACK.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ValidatedTransaction {
    /// What the author signed.
    pub signed: SignedInitialTransaction,
    /// What the chain said.
    pub ack: Ack,
}

impl ValidatedTransaction {
    /// Seals for the store under SK(relay, store), bound to the transaction id.
    pub fn seal_at_rest(&self, key: &SymmetricKey, rng: &mut impl CryptoRng) -> Result<Envelope> {
        let plain = Zeroizing::new(self.to_canonical_bytes());
        Envelope::seal(key, self.signed.ti().tid.as_bytes(), &plain, rng)
    }

    /// Opens a sealed validated transaction; `tid` must be the one it was sealed for.
    pub fn open_at_rest(
        envelope: &Envelope,
        key: &SymmetricKey,
        tid: &crate::ids::TxId,
    ) -> Result<Self> {
        let plain = envelope.open(key, tid.as_bytes())?;
        Self::from_canonical_bytes(&plain)
    }
}

impl Canonical for Verdict {
    fn encode(&self, w: &mut Writer) {
        match self {
            Verdict::Valid => w.u8(1),
            Verdict::Rejected { attribute_index } => {
                w.u8(2);
                w.u16(*attribute_index);
            }
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        match r.u8()? {
            1 => Ok(Verdict::Valid),
            2 => Ok(Verdict::Rejected {
                attribute_index: r.u16()?,
            }),
            got => Err(DecodeError::UnknownDiscriminant {
                what: "verdict",
                got,
            }
            .into()),
        }
    }
}

impl Canonical for BatchAnchor {
    fn encode(&self, w: &mut Writer) {
        w.u64(self.leaf_index.0);
        self.checkpoint.checkpoint.encode(w);
        w.fixed(&self.checkpoint.signature);
        self.inclusion.encode(w);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            leaf_index: LeafIndex(r.u64()?),
            checkpoint: SignedCheckpoint {
                checkpoint: Checkpoint::decode(r)?,
                signature: r.array()?,
            },
            inclusion: InclusionProof::decode(r)?,
        })
    }
}

impl Canonical for Ack {
    fn encode(&self, w: &mut Writer) {
        self.verdict.encode(w);
        w.u64(self.chain_id);
        self.contract.encode(w);
        self.tx_hash.encode(w);
        w.u64(self.block_number);
        self.block_hash.encode(w);
        w.u64(self.log_index);
        w.option(self.batch.as_ref(), |w, b| b.encode(w));
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            verdict: Verdict::decode(r)?,
            chain_id: r.u64()?,
            contract: EthAddress::decode(r)?,
            tx_hash: ChainHash::decode(r)?,
            block_number: r.u64()?,
            block_hash: ChainHash::decode(r)?,
            log_index: r.u64()?,
            batch: r.option(BatchAnchor::decode)?,
        })
    }
}

impl Canonical for ValidatedTransaction {
    fn encode(&self, w: &mut Writer) {
        w.tag(TAG_VALIDATED);
        self.signed.encode(w);
        self.ack.encode(w);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        r.expect_tag(TAG_VALIDATED)?;
        Ok(Self {
            signed: SignedInitialTransaction::decode(r)?,
            ack: Ack::decode(r)?,
        })
    }
}
