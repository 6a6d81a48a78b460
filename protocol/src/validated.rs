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
///
/// JSON: `{"verdict":"valid"}` or `{"verdict":"rejected","attribute_index":i}` with `i` a
/// u16, and no other field (`docs/PROOFS.md`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case", from = "VerdictJson")]
pub enum Verdict {
    /// Every on-chain rule held.
    Valid,
    /// The validator refused the record; it is anchored as rejected.
    Rejected {
        /// Index (in on-chain order) of the first attribute that broke its rule.
        attribute_index: u16,
    },
}

/// What a [`Verdict`] is read from. serde lets an internally tagged *unit* variant carry
/// any other fields, even under `deny_unknown_fields` (`{"verdict":"valid",
/// "attribute_index":5}` would read as valid), so `Valid` is read as an empty struct
/// variant, which refuses them.
#[derive(Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case", deny_unknown_fields)]
enum VerdictJson {
    Valid {},
    Rejected { attribute_index: u16 },
}

impl From<VerdictJson> for Verdict {
    fn from(v: VerdictJson) -> Self {
        match v {
            VerdictJson::Valid {} => Verdict::Valid,
            VerdictJson::Rejected { attribute_index } => Verdict::Rejected { attribute_index },
        }
    }
}

impl Verdict {
    /// Whether the record was accepted.
    pub fn is_valid(self) -> bool {
        matches!(self, Verdict::Valid)
    }
}

/// Where a record sits in a batch: its leaf, the checkpoint that covers it, and the proof.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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
#[serde(deny_unknown_fields)]
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
    /// Present when the record was anchored through a checkpoint (batch mode). In JSON the
    /// field is left out when `None` (`null` is refused, see `docs/PROOFS.md`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::json::present"
    )]
    pub batch: Option<BatchAnchor>,
}

/// A signed initial transaction with its ACK.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::merkle::{Keccak256Tree, TreeHasher as _, inclusion_proof};

    fn verdict(json: &str) -> core::result::Result<Verdict, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn a_verdict_has_exactly_one_json_form() {
        for (v, json) in [
            (Verdict::Valid, r#"{"verdict":"valid"}"#),
            (
                Verdict::Rejected { attribute_index: 3 },
                r#"{"verdict":"rejected","attribute_index":3}"#,
            ),
            (
                Verdict::Rejected {
                    attribute_index: u16::MAX,
                },
                r#"{"verdict":"rejected","attribute_index":65535}"#,
            ),
        ] {
            assert_eq!(serde_json::to_string(&v).unwrap(), json);
            assert_eq!(verdict(json), Ok(v));
        }
        for (json, why) in [
            (
                r#"{"verdict":"valid","attribute_index":5}"#,
                "unknown field",
            ),
            (r#"{"verdict":"valid","x":null}"#, "unknown field"),
            (
                r#"{"verdict":"rejected","attribute_index":5,"x":1}"#,
                "unknown field",
            ),
            (
                r#"{"verdict":"rejected"}"#,
                "missing field `attribute_index`",
            ),
            (
                r#"{"verdict":"rejected","attribute_index":null}"#,
                "invalid type: null",
            ),
            (
                r#"{"verdict":"rejected","attribute_index":65536}"#,
                "invalid value",
            ),
            (
                r#"{"verdict":"rejected","attribute_index":-1}"#,
                "invalid value",
            ),
            (r#"{"verdict":"Valid"}"#, "unknown variant"),
            (
                r#"{"verdict":"valid","verdict":"valid"}"#,
                "duplicate field",
            ),
            (r#"{}"#, "missing field `verdict`"),
            (r#""valid""#, "invalid type"),
        ] {
            let err = verdict(json).expect_err(json);
            assert!(err.contains(why), "{json}: {err}");
        }
    }

    fn ack(batch: Option<BatchAnchor>) -> Ack {
        Ack {
            verdict: Verdict::Valid,
            chain_id: 31337,
            contract: EthAddress::from_bytes([1; 20]),
            tx_hash: ChainHash::from_bytes([2; 32]),
            block_number: 3,
            block_hash: ChainHash::from_bytes([4; 32]),
            log_index: 5,
            batch,
        }
    }

    fn batch() -> BatchAnchor {
        let leaves: Vec<_> = (0u8..3).map(|i| Keccak256Tree::hash_leaf(&[i])).collect();
        let checkpoint = Checkpoint::new("o", 3, crate::merkle::root::<Keccak256Tree>(&leaves))
            .unwrap()
            .sign(crate::keys::Keypair::from_seeds(&[1; 64]).signing_key());
        BatchAnchor {
            leaf_index: LeafIndex(1),
            checkpoint,
            inclusion: inclusion_proof::<Keccak256Tree>(&leaves, 1).unwrap(),
        }
    }

    #[test]
    fn acks_and_batches_refuse_unknown_fields() {
        let with_batch = serde_json::to_value(ack(Some(batch()))).unwrap();
        assert_eq!(
            serde_json::from_value::<Ack>(with_batch.clone()).unwrap(),
            ack(Some(batch()))
        );
        for path in [
            &[][..],
            &["batch"],
            &["batch", "checkpoint"],
            &["batch", "inclusion"],
        ] {
            let mut v = with_batch.clone();
            let mut obj = &mut v;
            for p in path {
                obj = &mut obj[*p];
            }
            obj["zz"] = serde_json::json!(1);
            let err = serde_json::from_value::<Ack>(v).unwrap_err().to_string();
            assert!(err.contains("unknown field `zz`"), "{path:?}: {err}");
        }
        let mut v = serde_json::to_value(batch()).unwrap();
        assert_eq!(
            v.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["checkpoint", "inclusion", "leaf_index"]
        );
        v["zz"] = serde_json::json!(1);
        assert!(serde_json::from_value::<BatchAnchor>(v).is_err());
    }

    #[test]
    fn a_batch_is_absent_never_null() {
        let text = serde_json::to_string(&ack(None)).unwrap();
        assert!(!text.contains("batch"), "{text}");
        assert_eq!(serde_json::from_str::<Ack>(&text).unwrap(), ack(None));
        let mut v = serde_json::to_value(ack(None)).unwrap();
        v["batch"] = serde_json::Value::Null;
        let err = serde_json::from_value::<Ack>(v).unwrap_err().to_string();
        assert!(err.contains("invalid type: null"), "{err}");
    }

    #[test]
    fn a_validated_transaction_refuses_unknown_fields() {
        let signed = crate::record::InitialTransaction {
            tid: crate::ids::TxId::from_bytes([1; 16]),
            uid: crate::ids::UserId::new("dr.ada").unwrap(),
            pid: crate::ids::PatientId::from_bytes([2; 16]),
            template: crate::ids::TemplateRef {
                id: "vital-signs".parse().unwrap(),
                version: crate::ids::TemplateVersion::new(1).unwrap(),
            },
            attributes: crate::value::Attributes::new(),
            created_at: crate::ids::UnixMillis(0),
            salt: crate::ids::Salt::from_bytes([3; 32]),
            prev: None,
        }
        .sign(&crate::keys::Keypair::from_seeds(&[4; 64]));
        let vt = ValidatedTransaction {
            signed,
            ack: ack(None),
        };
        let good = serde_json::to_value(&vt).unwrap();
        assert_eq!(
            serde_json::from_value::<ValidatedTransaction>(good.clone()).unwrap(),
            vt
        );
        for at in [
            "",
            "/signed",
            "/signed/ti",
            "/signed/ti/template",
            "/ack",
            "/ack/verdict",
        ] {
            let mut v = good.clone();
            v.pointer_mut(at)
                .unwrap()
                .as_object_mut()
                .unwrap()
                .insert("zz".into(), serde_json::json!(1));
            let err = serde_json::from_value::<ValidatedTransaction>(v).unwrap_err();
            assert!(
                err.to_string().contains("unknown field `zz`"),
                "{at}: {err}"
            );
        }
    }
}
