//! Proof files: one record's self-contained evidence (the signed record, its leaf in the
//! record log, the inclusion proof to a signed checkpoint, and where the chain anchored the
//! checkpoint and the record), and their verification.
//!
//! Verification is split in two so that it needs no I/O here and runs in the browser too:
//!
//! 1. [`ProofBundle::verify_offline`] checks everything the file can prove by itself: the
//!    author's signature over the initial transaction, that its commitment is the logged
//!    leaf, that the inclusion proof leads from that leaf to the checkpoint's root, the
//!    relay's signature over the checkpoint, and that the checkpoint's origin names the
//!    chain and registry the file claims.
//!    With the content, it also checks that the file's template is the record's and that
//!    the record's on-chain values can be computed under it.
//! 2. The caller reads the few facts it needs from an Ethereum node ([`ChainFacts`]: the
//!    chain id, the `CheckpointAnchored` event in the stated transaction, the root the
//!    registry computes from the proof, whether the registry marks the tid's ticket used in
//!    the file's log, the tid's `RecordAnchored` event of that log wherever it is, and the
//!    registry's `templateInfo` of the event's template handle) and [`Report::check_chain`]
//!    compares them with the file.
//!
//! `docs/PROOFS.md` specifies the JSON format field by field.
//!
//! # Security notes
//! - Nothing in the file is trusted by itself: the tree size and root are taken from the
//!   signed checkpoint (never from the inclusion proof, see [`crate::merkle`]), and the
//!   checkpoint counts only when the chain's registry logged the same size and root.
//! - The registry, the chain id, and the author's and the relay's public keys travel in the
//!   file. Whoever deploys a registry enrols its relays, so a file that names its own
//!   registry proves only that it is consistent with *that* contract: a verifier pins the
//!   registry (and the chain id, the relay key) it trusts from elsewhere ([`Pinned`]), and
//!   the report records what was pinned ([`Report::pinned`]) so the output can say so.
//!   Given the registry, the chain, not the relay's key, is what makes a checkpoint
//!   binding: the registry only accepts checkpoints from enrolled relays.
//! - The chain's record of the tid is always read, whether or not the file carries the
//!   record's acknowledgement: the registry's `ticketUsed(log, ticket)` and the tid's
//!   `RecordAnchored` event of the file's log, found by a log filter on the tid (the
//!   registry logs at most one per ticket and log). When the chain anchored the tid, its
//!   commitment must be the file's and the chain's verdict is reported
//!   ([`Report::chain_verdict`]); when it did not, the file proves nothing about the tid or
//!   a verdict, only that the commitment is in the anchored log, and a file that claims an
//!   acknowledgement fails. A ticket marked used with no event for this tid (or the
//!   reverse) fails too.
//! - A verdict counts only for the values it judged: the event's `valuesHash` must be the
//!   [`values_hash`] of the record's on-chain values under the file's template, and that
//!   template must be the one the registry holds under the event's handle (its id, version
//!   and keccak256). Otherwise the chain judged other values than the record's
//!   ([`ProofFailure::RecordValuesMismatch`], [`ProofFailure::TemplateMismatch`]).
//! - A file may withhold the record's content (`record.content` absent): then the
//!   signature, the commitment and the values cannot be checked, and the file proves only
//!   that this commitment is in the anchored log (and, when the chain anchored the tid, that
//!   it was anchored under this transaction id with the reported verdict); the report says
//!   so.

use serde::{Deserialize, Serialize};

use crate::checkpoint::SignedCheckpoint;
use crate::encoding::Canonical as _;
use crate::error::ProofError;
use crate::generator::{on_chain_values, values_hash};
use crate::hash::{Hash32, keccak256};
use crate::ids::{ChainHash, Commitment, EthAddress, TxId, UserId};
use crate::merkle::{InclusionProof, Keccak256Tree, TreeHasher, hex_serde};
use crate::record::SignedInitialTransaction;
use crate::template::Template;
use crate::validated::{Ack, Verdict};

/// The `format` field of every proof file.
pub const PROOF_FORMAT: &str = "mediblock-proof";
/// The version of the format this crate writes and reads.
pub const PROOF_VERSION: u32 = 2;

/// The origin (log name) of the record log `log` of the registry `registry` on chain
/// `chain_id`: `mediblock/<chain id>/0x<registry, 40 lowercase hex digits>/<log id>`, the
/// numbers in decimal. Putting the chain, the registry and the log in the signed checkpoint
/// binds the relay's signature to one log of one registry on one chain.
pub fn log_origin(chain_id: u64, registry: &EthAddress, log: u16) -> String {
    format!("mediblock/{chain_id}/0x{}/{log}", registry.to_hex())
}

/// The `format` and `version` of a proof file, and nothing else of it: read before the
/// whole file, so that a file of another format or version is refused as such
/// (`unsupported_format`) instead of failing to parse as this version's shape (a version 1
/// file has no `chain.log`). Other fields are ignored here, on purpose.
#[derive(Clone, PartialEq, Eq, Debug, Deserialize)]
pub struct ProofHeader {
    /// The file's `format`.
    pub format: String,
    /// The file's `version`.
    pub version: u32,
}

impl ProofHeader {
    /// `Ok` for [`PROOF_FORMAT`] version [`PROOF_VERSION`], else
    /// [`ProofFailure::Unsupported`].
    pub fn check(&self) -> Result<(), ProofFailure> {
        if self.format == PROOF_FORMAT && self.version == PROOF_VERSION {
            return Ok(());
        }
        Err(ProofFailure::Unsupported(format!(
            "format {:?} version {}, this verifier reads {PROOF_FORMAT:?} version {PROOF_VERSION}",
            self.format, self.version
        )))
    }
}

/// Which chain, registry and log anchored the record.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainRef {
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// The registry contract.
    pub registry: EthAddress,
    /// The relay's log on the registry (`logOf(relay)`): its checkpoints, tickets and
    /// record events are per log.
    pub log: u16,
}

/// Where an event sits on chain.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainPosition {
    /// The transaction that emitted it.
    pub tx_hash: ChainHash,
    /// Its block.
    pub block_number: u64,
    /// That block's hash.
    pub block_hash: ChainHash,
    /// The event's index in the block.
    pub log_index: u64,
}

/// The author of a record, as the relay enrolled them.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Author {
    /// User id (also inside the signed TI).
    pub uid: UserId,
    /// Ed25519 public key, 32 bytes as hex.
    #[serde(with = "hex_serde")]
    pub ed25519: [u8; 32],
}

/// The record's content: the signed initial transaction, its template and its author's key.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Content {
    /// The canonical signed TI (`docs/PROTOCOL.md` §4) as hex.
    #[serde(with = "hex_bytes")]
    pub signed_ti: Vec<u8>,
    /// The canonical template the TI names (`docs/PROTOCOL.md` §5,
    /// [`Template::to_canonical_bytes`](crate::encoding::Canonical::to_canonical_bytes)) as
    /// hex: what the record's on-chain values are computed under.
    #[serde(with = "hex_bytes")]
    pub template: Vec<u8>,
    /// Who signed it.
    pub author: Author,
}

impl Content {
    /// The signed TI, the template and the on-chain values they give (without the rules:
    /// the chain may have rejected the record). The signature is not checked here.
    ///
    /// # Errors
    /// [`ProofFailure::RecordMalformed`] when the TI does not decode or its on-chain values
    /// cannot be computed, [`ProofFailure::TemplateMismatch`] when the template does not
    /// decode or is not the TI's.
    pub fn on_chain_values(
        &self,
    ) -> Result<(SignedInitialTransaction, Template, Vec<i64>), ProofFailure> {
        let signed = SignedInitialTransaction::from_canonical_bytes(&self.signed_ti)
            .map_err(|e| ProofFailure::RecordMalformed(e.to_string()))?;
        let expected = signed.ti().template.to_string();
        let template = Template::from_canonical_bytes(&self.template).map_err(|e| {
            ProofFailure::TemplateMismatch {
                what: "the file's template",
                got: format!("bytes that do not decode as a template ({e})"),
                expected: format!("the canonical template {expected} the record names"),
            }
        })?;
        let got = template.reference().to_string();
        if got != expected {
            return Err(ProofFailure::TemplateMismatch {
                what: "the file's template",
                got,
                expected: format!("{expected}, the record's"),
            });
        }
        let values = on_chain_values(&signed, &template)
            .map_err(|e| ProofFailure::RecordMalformed(format!("no on-chain values: {e}")))?;
        Ok((signed, template, values))
    }
}

/// The record the file is about.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordPart {
    /// Transaction id.
    pub tid: TxId,
    /// The record's commitment: the leaf data in the log.
    pub commitment: Commitment,
    /// The signed record; absent when withheld (or lawfully erased). Left out of the JSON
    /// when `None`; `null` is refused.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::json::present"
    )]
    pub content: Option<Content>,
}

/// One record's proof file (format [`PROOF_FORMAT`], version [`PROOF_VERSION`]).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofBundle {
    /// Always [`PROOF_FORMAT`].
    pub format: String,
    /// Always [`PROOF_VERSION`] for this crate.
    pub version: u32,
    /// The chain and registry.
    pub chain: ChainRef,
    /// The record.
    pub record: RecordPart,
    /// The record's leaf index and the proof of its inclusion in the checkpoint's tree.
    pub inclusion: InclusionProof,
    /// The checkpoint and the relay's ed25519 signature.
    pub checkpoint: SignedCheckpoint,
    /// The ed25519 public key that signed the checkpoint, 32 bytes as hex.
    #[serde(with = "hex_serde")]
    pub relay_key: [u8; 32],
    /// Where the registry logged `CheckpointAnchored` for this checkpoint.
    pub checkpoint_anchor: ChainPosition,
    /// The record's own acknowledgement (per-record anchoring); absent when the record was
    /// anchored only through the checkpoint (batch mode). Left out of the JSON when `None`;
    /// `null` is refused.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::json::present"
    )]
    pub record_anchor: Option<Ack>,
}

/// Facts a verifier knows from elsewhere and requires the file to use. Whatever is `None`
/// is taken from the file, and the result only shows consistency with it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pinned {
    /// The relay's ed25519 public key.
    pub relay_key: Option<[u8; 32]>,
    /// The `MediBlockRegistry` contract.
    pub registry: Option<EthAddress>,
    /// The EIP-155 chain id.
    pub chain_id: Option<u64>,
}

/// Why a proof file does not verify. Each variant has a stable [`code`](Self::code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofFailure {
    /// Another format or an unknown version.
    #[error("not a supported proof file: {0}")]
    Unsupported(String),
    /// The signed TI bytes are not a canonical signed TI, or the author key is invalid.
    #[error("the signed record does not decode: {0}")]
    RecordMalformed(String),
    /// The signed TI names another transaction id or author than the file.
    #[error("the signed record says {what} {got}, the file says {expected}")]
    RecordMismatch {
        /// `tid` or `uid`.
        what: &'static str,
        /// Inside the signed TI.
        got: String,
        /// In the file.
        expected: String,
    },
    /// The author's signature over the TI does not verify.
    #[error("the author's signature over the record does not verify")]
    RecordSignature,
    /// The signed TI's commitment is not the logged leaf.
    #[error("the record's commitment is {got}, the logged leaf is {expected}")]
    CommitmentMismatch {
        /// Computed from the signed TI.
        got: Commitment,
        /// In the file.
        expected: Commitment,
    },
    /// The inclusion proof does not lead from the leaf to the checkpoint's root.
    #[error("the inclusion proof does not lead to the checkpoint: {0}")]
    Inclusion(String),
    /// The checkpoint's signature does not verify, or was made by another key than pinned.
    #[error("the checkpoint's signature does not verify: {0}")]
    CheckpointSignature(&'static str),
    /// The checkpoint names another log than the chain and registry of the file.
    #[error("the checkpoint's origin is {got:?}, expected {expected:?}")]
    OriginMismatch {
        /// In the checkpoint.
        got: String,
        /// From the file's chain.
        expected: String,
    },
    /// The file names another registry than the pinned one.
    #[error("the file names registry 0x{} but 0x{} is pinned", got.to_hex(), pinned.to_hex())]
    PinnedRegistryMismatch {
        /// In the file.
        got: EthAddress,
        /// Pinned by the verifier.
        pinned: EthAddress,
    },
    /// The file names another chain than the pinned one.
    #[error("the file names chain {got} but chain {pinned} is pinned")]
    PinnedChainMismatch {
        /// In the file.
        got: u64,
        /// Pinned by the verifier.
        pinned: u64,
    },
    /// The checkpoint was signed by another relay key than the pinned one.
    #[error(
        "the checkpoint is signed by relay key {} but {} is pinned",
        hex::encode(got),
        hex::encode(pinned)
    )]
    PinnedRelayKeyMismatch {
        /// In the file.
        got: [u8; 32],
        /// Pinned by the verifier.
        pinned: [u8; 32],
    },
    /// The record's acknowledgement names another chain or registry than the file.
    #[error("the record's acknowledgement does not match the file: {0}")]
    AckMismatch(String),
    /// The node is on another chain than the file.
    #[error("the node is on chain {got}, the file is for chain {expected}")]
    WrongChain {
        /// The node's chain id.
        got: u64,
        /// The file's.
        expected: u64,
    },
    /// The registry has no matching `CheckpointAnchored` event where the file says.
    #[error("the checkpoint is not anchored on chain as stated: {0}")]
    CheckpointNotAnchored(String),
    /// The file carries the record's acknowledgement, but the registry has never anchored
    /// the transaction id.
    #[error(
        "the file carries an acknowledgement, but the registry has no anchor for this transaction id"
    )]
    RecordNotAnchored,
    /// The registry anchored the transaction id differently than the file says.
    #[error("the record's anchor on chain differs: {0}")]
    RecordAnchorMismatch(String),
    /// The file's template is not the one the record names, or not the one the registry
    /// holds under the template handle of the tid's event (another template, another
    /// version, or other bytes).
    #[error("{what} is {got}, expected {expected}")]
    TemplateMismatch {
        /// Whose template: the file's or the registry's.
        what: &'static str,
        /// What it is.
        got: String,
        /// What it must be.
        expected: String,
    },
    /// The chain judged other values than the record's: the tid's event holds another
    /// values hash than the record's on-chain values give.
    #[error(
        "the chain judged other values than the record's: the registry's event holds values \
         hash {}, the record's on-chain values hash to {}",
        hex::encode(got),
        hex::encode(expected)
    )]
    RecordValuesMismatch {
        /// The event's `valuesHash`.
        got: Hash32,
        /// [`values_hash`] of the record's on-chain values under the file's template.
        expected: Hash32,
    },
}

impl ProofFailure {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unsupported(_) => "unsupported_format",
            Self::RecordMalformed(_) => "record_malformed",
            Self::RecordMismatch { .. } => "record_mismatch",
            Self::RecordSignature => "record_signature_invalid",
            Self::CommitmentMismatch { .. } => "commitment_mismatch",
            Self::Inclusion(_) => "inclusion_invalid",
            Self::CheckpointSignature(_) => "checkpoint_signature_invalid",
            Self::OriginMismatch { .. } => "origin_mismatch",
            Self::PinnedRegistryMismatch { .. } => "pinned_registry_mismatch",
            Self::PinnedChainMismatch { .. } => "pinned_chain_mismatch",
            Self::PinnedRelayKeyMismatch { .. } => "pinned_relay_key_mismatch",
            Self::AckMismatch(_) => "ack_mismatch",
            Self::WrongChain { .. } => "wrong_chain",
            Self::CheckpointNotAnchored(_) => "checkpoint_not_anchored",
            Self::RecordNotAnchored => "record_not_anchored",
            Self::RecordAnchorMismatch(_) => "record_anchor_mismatch",
            Self::TemplateMismatch { .. } => "template_mismatch",
            Self::RecordValuesMismatch { .. } => "record_values_mismatch",
        }
    }
}

/// One named check and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked, e.g. `record_signature`.
    pub check: &'static str,
    /// `None` when it passed.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "failure_json"
    )]
    pub failure: Option<ProofFailure>,
    /// What passed, or why it failed, in words.
    pub detail: String,
}

fn failure_json<S: serde::Serializer>(f: &Option<ProofFailure>, s: S) -> Result<S::Ok, S::Error> {
    match f {
        Some(f) => s.serialize_some(f.code()),
        None => s.serialize_none(),
    }
}

/// The outcome of every check, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Every check that ran.
    pub checks: Vec<Check>,
    /// Whether the record's content was in the file (signature and commitment checked).
    pub content_checked: bool,
    /// What the verifier pinned; anything not pinned was taken from the file.
    #[serde(skip)]
    pub pinned: Pinned,
    /// The registry's verdict on the record, from the tid's event, once the chain checks
    /// found the tid anchored in the file's log with the file's commitment and (with the
    /// content) the record's values (`values_bound`). `None` before the chain checks, when
    /// `record_anchored` or `values_bound` failed, or when the chain has no anchor for the
    /// tid (then nothing about the tid or a verdict is proven).
    pub chain_verdict: Option<Verdict>,
}

impl Report {
    fn pass(&mut self, check: &'static str, detail: impl Into<String>) {
        self.checks.push(Check {
            check,
            failure: None,
            detail: detail.into(),
        });
    }

    fn fail(&mut self, check: &'static str, failure: ProofFailure) {
        self.checks.push(Check {
            check,
            detail: failure.to_string(),
            failure: Some(failure),
        });
    }

    fn record(&mut self, check: &'static str, outcome: Result<String, ProofFailure>) {
        match outcome {
            Ok(detail) => self.pass(check, detail),
            Err(f) => self.fail(check, f),
        }
    }

    /// Whether every check passed.
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.failure.is_none())
    }

    /// The first failure, if any.
    pub fn first_failure(&self) -> Option<&ProofFailure> {
        self.checks.iter().find_map(|c| c.failure.as_ref())
    }

    /// Compares what the chain says ([`ChainFacts`]) with the file, adding one check each.
    pub fn check_chain(&mut self, bundle: &ProofBundle, facts: &ChainFacts) {
        let expected = bundle.chain.chain_id;
        if facts.chain_id != expected {
            self.fail(
                "chain",
                ProofFailure::WrongChain {
                    got: facts.chain_id,
                    expected,
                },
            );
            return;
        }
        self.pass("chain", format!("the node is on chain {expected}"));
        self.record("checkpoint_anchored", check_checkpoint_event(bundle, facts));
        self.record(
            "inclusion_on_chain",
            match facts.contract_root {
                Some(root) if root == *bundle.checkpoint.checkpoint.root() => {
                    Ok("the registry computes the checkpoint's root from the proof".into())
                }
                Some(root) => Err(ProofFailure::Inclusion(format!(
                    "the registry computes root {} from the proof",
                    hex::encode(root)
                ))),
                None => Err(ProofFailure::Inclusion(
                    "the registry refuses the proof's shape".into(),
                )),
            },
        );
        let outcome = check_record_anchor(bundle, facts);
        let anchored = match &outcome {
            Ok(RecordAnchorOutcome::Anchored(event)) => Some(*event),
            _ => None,
        };
        self.record(
            "record_anchored",
            outcome.map(|o| match o {
                RecordAnchorOutcome::Anchored(event) => format!(
                    "the registry anchored this transaction id with this commitment in log \
                     {}, as {} (template handle {}, sent by 0x{})",
                    event.log,
                    describe_verdict(verdict_of_byte(event.verdict)),
                    event.handle,
                    event.submitter.to_hex()
                ),
                RecordAnchorOutcome::NotAnchored => "the registry has no anchor for this \
                     transaction id: only the commitment's place in the anchored log is \
                     proven, not the transaction id or a verdict"
                    .into(),
            }),
        );
        if let Some(event) = anchored {
            let bound = check_values(bundle, facts, &event);
            if bound.is_ok() {
                self.chain_verdict = Some(verdict_of_byte(event.verdict));
            }
            self.record("values_bound", bound);
        }
    }

    /// Whether every check passed and the chain anchored the file's tid with its commitment
    /// (so the tid and [`chain_verdict`](Self::chain_verdict) are proven).
    pub fn tid_anchored(&self) -> bool {
        self.ok() && self.chain_verdict.is_some()
    }
}

/// A verdict in words: `valid`, `rejected at attribute i` or `rejected by the external
/// validator`.
pub fn describe_verdict(v: Verdict) -> String {
    match v {
        Verdict::Valid => "valid".into(),
        Verdict::Rejected {
            attribute_index: u16::MAX,
        } => "rejected by the external validator".into(),
        Verdict::Rejected { attribute_index } => {
            format!("rejected at attribute {attribute_index}")
        }
    }
}

/// What the record check found on chain.
enum RecordAnchorOutcome {
    /// The tid's event holds the file's commitment (and, with an acknowledgement, its
    /// verdict and position).
    Anchored(RecordEvent),
    /// The registry has no anchor for the tid (and the file claims none).
    NotAnchored,
}

fn check_checkpoint_event(
    bundle: &ProofBundle,
    facts: &ChainFacts,
) -> Result<String, ProofFailure> {
    let stated = &bundle.checkpoint_anchor;
    let c = &bundle.checkpoint.checkpoint;
    let not = |why: String| Err(ProofFailure::CheckpointNotAnchored(why));
    let Some(event) = &facts.checkpoint_event else {
        return not(format!(
            "no CheckpointAnchored event of the registry in transaction {}",
            stated.tx_hash
        ));
    };
    if event.log != bundle.chain.log {
        return not(format!(
            "the transaction anchored the checkpoint in log {}, the file's log is {}",
            event.log, bundle.chain.log
        ));
    }
    if event.size != c.size() || event.root != *c.root() {
        return not(format!(
            "the transaction anchored size {} with root {}, the checkpoint says size {} with root {}",
            event.size,
            hex::encode(event.root),
            c.size(),
            hex::encode(c.root())
        ));
    }
    if event.position != *stated {
        return not(format!(
            "the event is in block {} ({}) at log {}, the file says block {} ({}) at log {}",
            event.position.block_number,
            event.position.block_hash,
            event.position.log_index,
            stated.block_number,
            stated.block_hash,
            stated.log_index
        ));
    }
    Ok(format!(
        "size {} of log {} anchored in block {} by 0x{}",
        c.size(),
        event.log,
        stated.block_number,
        event.submitter.to_hex()
    ))
}

fn check_record_anchor(
    bundle: &ProofBundle,
    facts: &ChainFacts,
) -> Result<RecordAnchorOutcome, ProofFailure> {
    let mismatch = |why: String| Err(ProofFailure::RecordAnchorMismatch(why));
    let Some(event) = &facts.record_event else {
        if facts.ticket_used {
            return mismatch(format!(
                "the registry marks ticket {} used, but no RecordAnchored event carries this \
                 transaction id: another transaction id took the ticket",
                bundle.record.tid.ticket()
            ));
        }
        return match bundle.record_anchor {
            Some(_) => Err(ProofFailure::RecordNotAnchored),
            None => Ok(RecordAnchorOutcome::NotAnchored),
        };
    };
    if event.log != bundle.chain.log {
        return mismatch(format!(
            "the node shows this transaction id's event in log {}, the file's log is {}",
            event.log, bundle.chain.log
        ));
    }
    if !facts.ticket_used {
        return mismatch(format!(
            "the node shows an event for this transaction id, but the registry says ticket {} \
             is unused",
            bundle.record.tid.ticket()
        ));
    }
    if event.commitment != bundle.record.commitment {
        return mismatch(format!(
            "the registry anchored commitment {} under this transaction id, the file's \
             commitment is {}",
            event.commitment, bundle.record.commitment
        ));
    }
    let chain_verdict = verdict_of_byte(event.verdict);
    let Some(ack) = &bundle.record_anchor else {
        return Ok(RecordAnchorOutcome::Anchored(*event));
    };
    if verdict_byte(ack.verdict) != Some(event.verdict) {
        return mismatch(format!(
            "the registry anchored verdict {} ({}), the acknowledgement says {}",
            event.verdict,
            describe_verdict(chain_verdict),
            describe_verdict(ack.verdict)
        ));
    }
    let stated = ChainPosition {
        tx_hash: ack.tx_hash,
        block_number: ack.block_number,
        block_hash: ack.block_hash,
        log_index: ack.log_index,
    };
    if event.position != stated {
        return mismatch(format!(
            "the record's event is in transaction {} (block {}, log {}), the acknowledgement \
             says transaction {} (block {}, log {})",
            event.position.tx_hash,
            event.position.block_number,
            event.position.log_index,
            stated.tx_hash,
            stated.block_number,
            stated.log_index
        ));
    }
    Ok(RecordAnchorOutcome::Anchored(*event))
}

/// The registry's event of the tid judged the record's values: the handle's template is the
/// file's, and the event's values hash is the one of the record's on-chain values.
fn check_values(
    bundle: &ProofBundle,
    facts: &ChainFacts,
    event: &RecordEvent,
) -> Result<String, ProofFailure> {
    let Some(content) = &bundle.record.content else {
        return Ok(format!(
            "content withheld: the values the chain judged (values hash {}) could not be \
             checked against the record",
            hex::encode(event.values_hash)
        ));
    };
    let (signed, template, values) = content.on_chain_values()?;
    let reference = &signed.ti().template;
    let expected = TemplateInfo {
        id: reference.id.chain_id(),
        version: reference.version.get(),
        template_hash: keccak256(&content.template),
    };
    let registered = |info: &TemplateInfo| {
        format!(
            "template id hash {}, version {}, template hash {}",
            hex::encode(info.id),
            info.version,
            hex::encode(info.template_hash)
        )
    };
    let got = match &facts.template_info {
        Some(info) if *info == expected => None,
        Some(info) => Some(format!(
            "under handle {}: {}",
            event.handle,
            registered(info)
        )),
        None => Some(format!(
            "nothing under handle {} (templateInfo reverted)",
            event.handle
        )),
    };
    if let Some(got) = got {
        return Err(ProofFailure::TemplateMismatch {
            what: "the registry's template",
            got,
            expected: format!(
                "{} (the file's template {reference})",
                registered(&expected)
            ),
        });
    }
    let expected = values_hash(&values);
    if event.values_hash != expected {
        return Err(ProofFailure::RecordValuesMismatch {
            got: event.values_hash,
            expected,
        });
    }
    Ok(format!(
        "the registry judged this record's {} on-chain value(s) (values hash {}) under \
         template {} (handle {})",
        values.len(),
        hex::encode(expected),
        template.reference(),
        event.handle
    ))
}

/// The registry's verdict byte for a verdict: 0 valid, 1 + i rejected at on-chain attribute
/// i (i in 0..=253), 255 rejected by an external validator (the ACK's attribute index
/// `u16::MAX`). `None` for attribute indices 254..=65534, which no registry verdict encodes
/// (a template has at most [`MAX_ON_CHAIN`](crate::template::MAX_ON_CHAIN) on-chain
/// attributes): an acknowledgement carrying one fails (`ack_mismatch`).
pub fn verdict_byte(v: Verdict) -> Option<u8> {
    match v {
        Verdict::Valid => Some(0),
        Verdict::Rejected {
            attribute_index: u16::MAX,
        } => Some(255),
        Verdict::Rejected { attribute_index } => u8::try_from(attribute_index)
            .ok()
            .filter(|&i| i <= 253)
            .map(|i| i + 1),
    }
}

/// The verdict for a registry verdict byte (the inverse of [`verdict_byte`]): 255 is the
/// external validator's rejection, attribute index `u16::MAX` as in the ACK.
pub fn verdict_of_byte(b: u8) -> Verdict {
    match b {
        0 => Verdict::Valid,
        255 => Verdict::Rejected {
            attribute_index: u16::MAX,
        },
        b => Verdict::Rejected {
            attribute_index: u16::from(b - 1),
        },
    }
}

/// A `CheckpointAnchored` event as the node returned it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointEvent {
    /// The log it anchors a checkpoint of (its first indexed topic).
    pub log: u16,
    /// Tree size.
    pub size: u64,
    /// Root.
    pub root: Hash32,
    /// The relay account that sent it.
    pub submitter: EthAddress,
    /// Where it is.
    pub position: ChainPosition,
}

/// The registry's `RecordAnchored` event of the file's tid in the file's log, wherever it
/// is on chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordEvent {
    /// The anchored commitment.
    pub commitment: Commitment,
    /// `valuesHash`: [`values_hash`] of the values the registry judged.
    pub values_hash: Hash32,
    /// The registry's verdict byte (see [`verdict_byte`]), `info` bits 8..15.
    pub verdict: u8,
    /// The template handle the registry judged the values under, `info` bits 16..31.
    pub handle: u16,
    /// The log, `info` bits 32..47.
    pub log: u16,
    /// The account that sent the anchor, `info` bits 96..255.
    pub submitter: EthAddress,
    /// Where it is.
    pub position: ChainPosition,
}

/// What the registry's `templateInfo(handle)` returned for the record event's handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemplateInfo {
    /// keccak256 of the template id ([`TemplateId::chain_id`](crate::ids::TemplateId::chain_id)).
    pub id: Hash32,
    /// The template version.
    pub version: u32,
    /// keccak256 of the canonical template ([`Template::hash`]).
    pub template_hash: Hash32,
}

/// The facts a verifier reads from an Ethereum node for one proof file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChainFacts {
    /// The node's chain id.
    pub chain_id: u64,
    /// The registry's `CheckpointAnchored` event (of the checkpoint's size) in the
    /// transaction `checkpoint_anchor.tx_hash`, with the block the node has it in.
    pub checkpoint_event: Option<CheckpointEvent>,
    /// `rootFromInclusionProof(leaf hash, index, size, path)`; `None` when it reverted.
    pub contract_root: Option<Hash32>,
    /// The registry's `ticketUsed(log, ticket)` for the file's log and the tid's ticket,
    /// always read.
    pub ticket_used: bool,
    /// The registry's `RecordAnchored` event of the tid whose `info` names the file's log,
    /// found by a log filter on the tid (the registry logs at most one per ticket and log).
    /// `None`: not anchored in that log.
    pub record_event: Option<RecordEvent>,
    /// The registry's `templateInfo(record_event.handle)`; `None` when there is no event or
    /// the call reverted.
    pub template_info: Option<TemplateInfo>,
}

impl ProofBundle {
    /// The log's leaf hash of the record: `keccak256(0x00 ‖ commitment)`.
    pub fn leaf_hash(&self) -> Hash32 {
        Keccak256Tree::hash_leaf(self.record.commitment.as_bytes())
    }

    /// Runs every check that needs no chain (see the [module docs](self)).
    pub fn verify_offline(&self, pinned: &Pinned) -> Report {
        let mut report = Report {
            pinned: *pinned,
            ..Report::default()
        };
        let header = ProofHeader {
            format: self.format.clone(),
            version: self.version,
        };
        if let Err(f) = header.check() {
            report.fail("format", f);
            return report;
        }
        report.pass("format", format!("{PROOF_FORMAT} version {PROOF_VERSION}"));
        report.record("pinned", self.check_pinned(pinned));
        match &self.record.content {
            Some(content) => {
                report.content_checked = true;
                match self.check_content(content) {
                    Ok(signed) => {
                        report.pass("record_signature", format!("signed by {}", signed.ti().uid));
                        let got = signed.commitment();
                        report.record(
                            "commitment",
                            if got == self.record.commitment {
                                Ok(format!("commitment {got} is the logged leaf"))
                            } else {
                                Err(ProofFailure::CommitmentMismatch {
                                    got,
                                    expected: self.record.commitment,
                                })
                            },
                        );
                        report.record(
                            "template",
                            content.on_chain_values().map(|(_, template, values)| {
                                format!(
                                    "template {} (hash {}) gives {} on-chain value(s)",
                                    template.reference(),
                                    hex::encode(template.hash()),
                                    values.len()
                                )
                            }),
                        );
                    }
                    Err(f) => report.fail("record_signature", f),
                }
            }
            None => report.pass(
                "content",
                "withheld: the signature, the commitment, the template and the on-chain \
                 values were not checked",
            ),
        }
        report.record("inclusion", self.check_inclusion());
        report.record(
            "checkpoint_signature",
            self.check_checkpoint_signature(pinned),
        );
        let expected = log_origin(self.chain.chain_id, &self.chain.registry, self.chain.log);
        let got = self.checkpoint.checkpoint.origin();
        report.record(
            "origin",
            if got == expected {
                Ok(format!("log {got}"))
            } else {
                Err(ProofFailure::OriginMismatch {
                    got: got.to_owned(),
                    expected,
                })
            },
        );
        if let Some(ack) = &self.record_anchor {
            report.record("acknowledgement", self.check_ack(ack));
        }
        report
    }

    /// Decodes the signed TI, checks its ids against the file's and its signature.
    fn check_content(&self, content: &Content) -> Result<SignedInitialTransaction, ProofFailure> {
        let malformed = |e: crate::Error| ProofFailure::RecordMalformed(e.to_string());
        let signed = SignedInitialTransaction::from_canonical_bytes(&content.signed_ti)
            .map_err(malformed)?;
        let ti = signed.ti();
        if ti.tid != self.record.tid {
            return Err(ProofFailure::RecordMismatch {
                what: "tid",
                got: ti.tid.to_hex(),
                expected: self.record.tid.to_hex(),
            });
        }
        if ti.uid != content.author.uid {
            return Err(ProofFailure::RecordMismatch {
                what: "uid",
                got: ti.uid.to_string(),
                expected: content.author.uid.to_string(),
            });
        }
        let author = ed25519_dalek::VerifyingKey::from_bytes(&content.author.ed25519)
            .ok()
            .filter(|k| !k.is_weak())
            .ok_or_else(|| {
                ProofFailure::RecordMalformed("the author key is not a valid key".into())
            })?;
        let signature = ed25519_dalek::Signature::from_bytes(signed.signature());
        author
            .verify_strict(&ti.signing_message(), &signature)
            .map_err(|_| ProofFailure::RecordSignature)?;
        Ok(signed)
    }

    fn check_inclusion(&self) -> Result<String, ProofFailure> {
        let c = &self.checkpoint.checkpoint;
        if self.inclusion.tree_size != c.size() {
            return Err(ProofFailure::Inclusion(format!(
                "the proof is for a tree of {} leaves, the checkpoint has {}",
                self.inclusion.tree_size,
                c.size()
            )));
        }
        self.inclusion
            .verify::<Keccak256Tree>(&self.leaf_hash(), c.root())
            .map_err(|e: ProofError| ProofFailure::Inclusion(e.to_string()))?;
        Ok(format!(
            "leaf {} of {} leads to root {}",
            self.inclusion.leaf_index,
            c.size(),
            hex::encode(c.root())
        ))
    }

    /// The file's registry, chain id and relay key against what the verifier pinned.
    fn check_pinned(&self, pinned: &Pinned) -> Result<String, ProofFailure> {
        if let Some(registry) = pinned.registry
            && registry != self.chain.registry
        {
            return Err(ProofFailure::PinnedRegistryMismatch {
                got: self.chain.registry,
                pinned: registry,
            });
        }
        if let Some(chain_id) = pinned.chain_id
            && chain_id != self.chain.chain_id
        {
            return Err(ProofFailure::PinnedChainMismatch {
                got: self.chain.chain_id,
                pinned: chain_id,
            });
        }
        if let Some(key) = pinned.relay_key
            && key != self.relay_key
        {
            return Err(ProofFailure::PinnedRelayKeyMismatch {
                got: self.relay_key,
                pinned: key,
            });
        }
        let mut is = Vec::new();
        let mut not = Vec::new();
        for (name, yes) in [
            ("registry", pinned.registry.is_some()),
            ("chain id", pinned.chain_id.is_some()),
            ("relay key", pinned.relay_key.is_some()),
        ] {
            if yes { is.push(name) } else { not.push(name) }
        }
        let list = |names: &[&str]| match names {
            [] => String::new(),
            [one] => (*one).to_owned(),
            [init @ .., last] => format!("{} and {last}", init.join(", ")),
        };
        Ok(match (is.is_empty(), not.is_empty()) {
            (true, _) => format!("nothing pinned: the {} come from the file", list(&not)),
            (false, true) => format!("{} pinned and matching", list(&is)),
            (false, false) => format!(
                "{} pinned and matching; the {} from the file",
                list(&is),
                list(&not)
            ),
        })
    }

    fn check_checkpoint_signature(&self, pinned: &Pinned) -> Result<String, ProofFailure> {
        let key = ed25519_dalek::VerifyingKey::from_bytes(&self.relay_key)
            .map_err(|_| ProofFailure::CheckpointSignature("the relay key is not a valid key"))?;
        self.checkpoint
            .verify(&key)
            .map_err(|_| ProofFailure::CheckpointSignature("wrong signature"))?;
        Ok(format!(
            "signed by relay key {}{}",
            hex::encode(self.relay_key),
            if pinned.relay_key.is_some() {
                " (pinned)"
            } else {
                " (from the file, not pinned)"
            }
        ))
    }

    fn check_ack(&self, ack: &Ack) -> Result<String, ProofFailure> {
        if ack.chain_id != self.chain.chain_id || ack.contract != self.chain.registry {
            return Err(ProofFailure::AckMismatch(format!(
                "it names chain {} registry 0x{}",
                ack.chain_id,
                ack.contract.to_hex()
            )));
        }
        if verdict_byte(ack.verdict).is_none() {
            return Err(ProofFailure::AckMismatch(format!(
                "its verdict, {}, is none a registry can give (attribute indices 0 to 253, \
                 or 65535 for the external validator)",
                describe_verdict(ack.verdict)
            )));
        }
        if let Some(batch) = &ack.batch
            && batch.leaf_index.0 != self.inclusion.leaf_index
        {
            return Err(ProofFailure::AckMismatch(format!(
                "its batch leaf is {}, the proof's is {}",
                batch.leaf_index, self.inclusion.leaf_index
            )));
        }
        Ok(format!(
            "{} in transaction {}",
            describe_verdict(ack.verdict),
            ack.tx_hash
        ))
    }
}

/// Serde helper: a byte vector as lowercase hex (an optional `0x` and either case accepted
/// on input, see [`crate::json`]).
mod hex_bytes {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Hard limit on the decoded size, so a hostile file cannot make us allocate much.
    const MAX_BYTES: usize = 1 << 20;

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        let s = crate::json::hex_digits(&s);
        if s.len() > 2 * MAX_BYTES {
            return Err(D::Error::custom("hex string too long"));
        }
        hex::decode(s).map_err(|_| D::Error::custom("not hex"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::checkpoint::Checkpoint;
    use crate::ids::{
        AttrName, LeafIndex, PatientId, Role, Salt, TemplateRef, TemplateVersion, UnixMillis,
    };
    use crate::keys::Keypair;
    use crate::merkle;
    use crate::record::InitialTransaction;
    use crate::template::{AttributeKind, AttributeSpec, TemplateSpec};
    use crate::validated::BatchAnchor;
    use crate::value::Value;

    const CHAIN: u64 = 31337;

    fn registry() -> EthAddress {
        EthAddress::from_bytes([0x5f; 20])
    }

    const LOG: u16 = 3;
    const HANDLE: u16 = 4;

    /// `id@version` with heart_rate (20..=250) on chain and free-text notes off chain.
    fn template(id: &str, version: u32) -> Template {
        let attr = |name: &str, kind, on_chain| AttributeSpec {
            name: AttrName::new(name).unwrap(),
            label: name.into(),
            kind,
            unit: None,
            required: on_chain,
            on_chain,
        };
        Template::new(TemplateSpec {
            id: id.parse().unwrap(),
            version: TemplateVersion::new(version).unwrap(),
            title: "Vital signs".into(),
            attributes: vec![
                attr(
                    "heart_rate",
                    AttributeKind::Integer {
                        scale: 0,
                        min: Some(20),
                        max: Some(250),
                    },
                    true,
                ),
                attr("notes", AttributeKind::Text { max_len: 100 }, false),
            ],
            roles: [Role::Nurse].into_iter().collect(),
        })
        .unwrap()
    }

    /// What `templateInfo` returns for `template`.
    fn info(template: &Template) -> TemplateInfo {
        TemplateInfo {
            id: template.reference().id.chain_id(),
            version: template.reference().version.get(),
            template_hash: template.hash(),
        }
    }

    /// A bundle for leaf 3 of a 7-leaf log, and the chain facts an honest node returns.
    fn fixture() -> (ProofBundle, ChainFacts, Keypair) {
        fixture_with(72)
    }

    /// [`fixture`] for a record of this heart rate.
    fn fixture_with(heart_rate: i64) -> (ProofBundle, ChainFacts, Keypair) {
        let author = Keypair::from_seeds(&[3; 64]);
        let relay = Keypair::from_seeds(&[4; 64]);
        let ti = InitialTransaction {
            tid: TxId::from_bytes([7; 16]),
            uid: UserId::new("nurse.bo").unwrap(),
            pid: PatientId::from_bytes([8; 16]),
            template: TemplateRef {
                id: "vital-signs".parse().unwrap(),
                version: TemplateVersion::new(1).unwrap(),
            },
            attributes: [(
                AttrName::new("heart_rate").unwrap(),
                Value::Integer(heart_rate),
            )]
            .into_iter()
            .collect(),
            created_at: UnixMillis(1_700_000_000_000),
            salt: Salt::from_bytes([9; 32]),
            prev: None,
        };
        let signed = ti.sign(&author);
        let commitment = signed.commitment();
        let mut leaves: Vec<Hash32> = (0u8..7)
            .map(|i| Keccak256Tree::hash_leaf(&[i; 32]))
            .collect();
        leaves[3] = Keccak256Tree::hash_leaf(commitment.as_bytes());
        let root = merkle::root::<Keccak256Tree>(&leaves);
        let template = template("vital-signs", 1);
        let checkpoint = Checkpoint::new(log_origin(CHAIN, &registry(), LOG), 7, root)
            .unwrap()
            .sign(relay.signing_key());
        let at = |n: u8, log: u64| ChainPosition {
            tx_hash: ChainHash::from_bytes([n; 32]),
            block_number: u64::from(n),
            block_hash: ChainHash::from_bytes([n + 100; 32]),
            log_index: log,
        };
        let ack = Ack {
            verdict: Verdict::Valid,
            chain_id: CHAIN,
            contract: registry(),
            tx_hash: at(5, 0).tx_hash,
            block_number: 5,
            block_hash: at(5, 0).block_hash,
            log_index: 0,
            batch: None,
        };
        let bundle = ProofBundle {
            format: PROOF_FORMAT.into(),
            version: PROOF_VERSION,
            chain: ChainRef {
                chain_id: CHAIN,
                registry: registry(),
                log: LOG,
            },
            record: RecordPart {
                tid: ti_tid(&signed),
                commitment,
                content: Some(Content {
                    signed_ti: signed.to_canonical_bytes(),
                    template: template.to_canonical_bytes(),
                    author: Author {
                        uid: UserId::new("nurse.bo").unwrap(),
                        ed25519: author.public().signing_bytes(),
                    },
                }),
            },
            inclusion: merkle::inclusion_proof::<Keccak256Tree>(&leaves, 3).unwrap(),
            checkpoint,
            relay_key: relay.public().signing_bytes(),
            checkpoint_anchor: at(9, 2),
            record_anchor: Some(ack),
        };
        let facts = ChainFacts {
            chain_id: CHAIN,
            checkpoint_event: Some(CheckpointEvent {
                log: LOG,
                size: 7,
                root,
                submitter: EthAddress::from_bytes([1; 20]),
                position: at(9, 2),
            }),
            contract_root: Some(root),
            ticket_used: true,
            record_event: Some(RecordEvent {
                commitment,
                values_hash: values_hash(&[heart_rate]),
                verdict: 0,
                handle: HANDLE,
                log: LOG,
                submitter: EthAddress::from_bytes([1; 20]),
                position: at(5, 0),
            }),
            template_info: Some(info(&template)),
        };
        (bundle, facts, relay)
    }

    /// A named change and the failure code it must produce.
    type Case<T> = (&'static str, Box<dyn Fn(&mut T)>, &'static str);

    fn content(b: &mut ProofBundle) -> &mut Content {
        b.record.content.as_mut().unwrap()
    }

    fn ti_tid(signed: &SignedInitialTransaction) -> TxId {
        signed.ti().tid
    }

    /// The first failure's code after the offline checks and the chain checks.
    fn failure(bundle: &ProofBundle, facts: &ChainFacts) -> Option<&'static str> {
        let mut report = bundle.verify_offline(&Pinned::default());
        report.check_chain(bundle, facts);
        report.first_failure().map(ProofFailure::code)
    }

    #[test]
    fn an_honest_bundle_verifies() {
        let (bundle, facts, relay) = fixture();
        let mut report = bundle.verify_offline(&Pinned {
            relay_key: Some(relay.public().signing_bytes()),
            registry: Some(registry()),
            chain_id: Some(CHAIN),
        });
        assert!(report.ok(), "{report:#?}");
        assert!(report.content_checked);
        assert_eq!(report.chain_verdict, None);
        report.check_chain(&bundle, &facts);
        assert!(report.ok(), "{report:#?}");
        assert_eq!(report.chain_verdict, Some(Verdict::Valid));
        assert!(report.tid_anchored());
        let names: Vec<_> = report.checks.iter().map(|c| c.check).collect();
        assert_eq!(
            names,
            [
                "format",
                "pinned",
                "record_signature",
                "commitment",
                "template",
                "inclusion",
                "checkpoint_signature",
                "origin",
                "acknowledgement",
                "chain",
                "checkpoint_anchored",
                "inclusion_on_chain",
                "record_anchored",
                "values_bound"
            ]
        );
    }

    #[test]
    fn json_round_trips_and_refuses_unknown_fields() {
        let (bundle, _, _) = fixture();
        let text = serde_json::to_string(&bundle).unwrap();
        assert_eq!(serde_json::from_str::<ProofBundle>(&text).unwrap(), bundle);
        let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
        value["extra"] = serde_json::json!(1);
        assert!(serde_json::from_value::<ProofBundle>(value).is_err());
        let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
        value["record"]["content"]["signed_ti"] = serde_json::json!("zz");
        assert!(serde_json::from_value::<ProofBundle>(value).is_err());
    }

    /// The fixture with a batch in its acknowledgement, so that every object a proof file
    /// can hold is in it.
    fn every_object() -> serde_json::Value {
        let (mut bundle, _, _) = fixture();
        let batch = BatchAnchor {
            leaf_index: LeafIndex(3),
            checkpoint: bundle.checkpoint.clone(),
            inclusion: bundle.inclusion.clone(),
        };
        bundle.record_anchor.as_mut().unwrap().batch = Some(batch);
        serde_json::to_value(&bundle).unwrap()
    }

    /// The JSON pointers of every object in `v` (the root is `""`), and of every string.
    fn pointers(
        v: &serde_json::Value,
        at: &str,
        objects: &mut Vec<String>,
        strings: &mut Vec<String>,
    ) {
        match v {
            serde_json::Value::Object(map) => {
                objects.push(at.to_owned());
                for (k, v) in map {
                    pointers(v, &format!("{at}/{k}"), objects, strings);
                }
            }
            serde_json::Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    pointers(v, &format!("{at}/{i}"), objects, strings);
                }
            }
            serde_json::Value::String(_) => strings.push(at.to_owned()),
            _ => {}
        }
    }

    fn parse(v: serde_json::Value) -> Result<ProofBundle, String> {
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    #[test]
    fn a_file_of_version_1_is_refused_as_unsupported_by_its_header() {
        let mut v1 = every_object();
        v1["version"] = serde_json::json!(1);
        v1["chain"].as_object_mut().unwrap().remove("log");
        v1["record"]["content"]
            .as_object_mut()
            .unwrap()
            .remove("template");
        let err = parse(v1.clone()).unwrap_err();
        assert!(err.contains("missing field `log`"), "{err}");
        let header: ProofHeader = serde_json::from_value(v1).unwrap();
        assert_eq!(header.check().unwrap_err().code(), "unsupported_format");
        let header: ProofHeader = serde_json::from_value(every_object()).unwrap();
        assert_eq!(header.check(), Ok(()));
        let other = ProofHeader {
            format: "other".into(),
            version: PROOF_VERSION,
        };
        assert_eq!(other.check().unwrap_err().code(), "unsupported_format");
    }

    #[test]
    fn an_unknown_field_is_refused_at_every_level() {
        let file = every_object();
        assert!(parse(file.clone()).is_ok());
        let (mut objects, mut strings) = (Vec::new(), Vec::new());
        pointers(&file, "", &mut objects, &mut strings);
        assert_eq!(
            objects,
            [
                "",
                "/chain",
                "/checkpoint",
                "/checkpoint/checkpoint",
                "/checkpoint_anchor",
                "/inclusion",
                "/record",
                "/record/content",
                "/record/content/author",
                "/record_anchor",
                "/record_anchor/batch",
                "/record_anchor/batch/checkpoint",
                "/record_anchor/batch/checkpoint/checkpoint",
                "/record_anchor/batch/inclusion",
                "/record_anchor/verdict",
            ]
        );
        for at in &objects {
            let mut v = file.clone();
            v.pointer_mut(at)
                .unwrap()
                .as_object_mut()
                .unwrap()
                .insert("zz_unknown".into(), serde_json::json!(5));
            let err = parse(v).expect_err(at);
            assert!(err.contains("unknown field `zz_unknown`"), "{at}: {err}");
        }
        // The case: a valid record's verdict with an attribute index.
        let mut v = file.clone();
        v["record_anchor"]["verdict"]["attribute_index"] = serde_json::json!(5);
        let err = parse(v).unwrap_err();
        assert!(err.contains("unknown field `attribute_index`"), "{err}");
    }

    #[test]
    fn duplicate_fields_and_non_integers_are_refused() {
        let text = serde_json::to_string(&every_object()).unwrap();
        assert!(serde_json::from_str::<ProofBundle>(&text).is_ok());
        let twice = text.replacen("\"version\":2", "\"version\":2,\"version\":2", 1);
        let err = serde_json::from_str::<ProofBundle>(&twice).unwrap_err();
        assert!(
            err.to_string().contains("duplicate field `version`"),
            "{err}"
        );
        let log = format!("\"log\":{LOG}");
        assert!(text.contains(&log));
        for bad in ["1.0", "1e3", "-1", "65536", "\"3\"", "null"] {
            let changed = text.replacen(&log, &format!("\"log\":{bad}"), 1);
            assert!(
                serde_json::from_str::<ProofBundle>(&changed).is_err(),
                "log {bad}"
            );
        }
    }

    #[test]
    fn optional_objects_are_absent_never_null() {
        let file = every_object();
        let strip = |path: &[&str]| {
            let mut v = file.clone();
            let (last, parents) = path.split_last().unwrap();
            let mut obj = &mut v;
            for p in parents {
                obj = &mut obj[*p];
            }
            let removed = obj.as_object_mut().unwrap().remove(*last);
            assert!(removed.is_some(), "{path:?}");
            v
        };
        for path in [
            &["record", "content"][..],
            &["record_anchor"],
            &["record_anchor", "batch"],
        ] {
            // Absent: none.
            let bundle = parse(strip(path)).unwrap();
            let none = match path {
                ["record", "content"] => bundle.record.content.is_none(),
                ["record_anchor"] => bundle.record_anchor.is_none(),
                _ => bundle.record_anchor.unwrap().batch.is_none(),
            };
            assert!(none, "{path:?}");
            // null: refused.
            let mut v = file.clone();
            let mut obj = &mut v;
            for p in path {
                obj = &mut obj[*p];
            }
            *obj = serde_json::Value::Null;
            let err = parse(v).unwrap_err();
            assert!(err.contains("invalid type: null"), "{path:?}: {err}");
        }
        // What the crate writes: the field left out.
        let (mut bundle, _, _) = fixture();
        bundle.record.content = None;
        let text = serde_json::to_string(&bundle).unwrap();
        assert!(
            !text.contains("content") && !text.contains("null"),
            "{text}"
        );
        assert!(!text.contains("batch"), "{text}");
        bundle.record_anchor = None;
        assert!(
            !serde_json::to_string(&bundle)
                .unwrap()
                .contains("record_anchor")
        );
    }

    #[test]
    fn hex_takes_an_optional_lowercase_0x_and_either_case() {
        let file = every_object();
        let good = parse(file.clone()).unwrap();
        let (mut objects, mut strings) = (Vec::new(), Vec::new());
        pointers(&file, "", &mut objects, &mut strings);
        let words = [
            "/format",
            "/record/content/author/uid",
            "/record_anchor/verdict/verdict",
        ];
        let hex: Vec<_> = strings
            .iter()
            .filter(|at| !words.contains(&at.as_str()) && !at.ends_with("checkpoint/origin"))
            .collect();
        // Every kind of hex field: ids, hashes, path entries, keys, signatures, byte strings;
        // the inclusion path twice (the file's and the batch's).
        assert_eq!(hex.len(), 16 + 2 * good.inclusion.path.len(), "{hex:?}");
        for at in hex {
            let with = |f: &dyn Fn(&str) -> String| {
                let mut v = file.clone();
                let s = v.pointer_mut(at).unwrap();
                *s = serde_json::json!(f(s.as_str().unwrap()));
                parse(v)
            };
            assert_eq!(with(&|h| format!("0x{h}")).as_ref(), Ok(&good), "{at}: 0x");
            assert_eq!(
                with(&|h| h.to_uppercase()).as_ref(),
                Ok(&good),
                "{at}: upper case"
            );
            let mixed = |h: &str| {
                h.char_indices()
                    .map(|(i, c)| {
                        if i % 2 == 0 {
                            c.to_ascii_uppercase()
                        } else {
                            c
                        }
                    })
                    .collect::<String>()
            };
            assert_eq!(with(&mixed).as_ref(), Ok(&good), "{at}: mixed case");
            assert!(with(&|h| format!("0X{h}")).is_err(), "{at}: 0X");
            assert!(with(&|h| format!(" {h}")).is_err(), "{at}: a space");
            assert!(with(&|h| format!("{h}0")).is_err(), "{at}: an odd digit");
        }
    }

    #[test]
    fn every_offline_tampering_is_named() {
        let (good, facts, _) = fixture();
        let cases: Vec<Case<ProofBundle>> = vec![
            ("version", Box::new(|b| b.version = 1), "unsupported_format"),
            (
                "a value byte of the TI",
                // The salt's last byte sits just before the option flag of `prev`.
                Box::new(|b| {
                    let ti = &mut content(b).signed_ti;
                    let at = ti.len() - 64 - 2;
                    ti[at] ^= 1;
                }),
                "record_signature_invalid",
            ),
            (
                "the TI signature",
                Box::new(|b| {
                    let ti = &mut content(b).signed_ti;
                    let last = ti.len() - 1;
                    ti[last] ^= 0x80;
                }),
                "record_signature_invalid",
            ),
            (
                "a truncated TI",
                Box::new(|b| {
                    content(b).signed_ti.pop();
                }),
                "record_malformed",
            ),
            (
                "the author's key",
                Box::new(|b| {
                    content(b).author.ed25519 =
                        Keypair::from_seeds(&[5; 64]).public().signing_bytes()
                }),
                "record_signature_invalid",
            ),
            (
                "the commitment",
                Box::new(|b| b.record.commitment = Commitment::from_bytes([1; 32])),
                "commitment_mismatch",
            ),
            (
                "the tid",
                Box::new(|b| b.record.tid = TxId::from_bytes([1; 16])),
                "record_mismatch",
            ),
            (
                "the leaf index",
                Box::new(|b| b.inclusion.leaf_index = 2),
                "inclusion_invalid",
            ),
            (
                "a path hash",
                Box::new(|b| b.inclusion.path[1][0] ^= 1),
                "inclusion_invalid",
            ),
            (
                "a truncated path",
                Box::new(|b| {
                    b.inclusion.path.pop();
                }),
                "inclusion_invalid",
            ),
            (
                "the proof's tree size",
                Box::new(|b| b.inclusion.tree_size = 8),
                "inclusion_invalid",
            ),
            (
                "the checkpoint signature",
                Box::new(|b| b.checkpoint.signature[10] ^= 1),
                "checkpoint_signature_invalid",
            ),
            (
                "a checkpoint re-signed by another key",
                Box::new(|b| {
                    let forger = Keypair::from_seeds(&[6; 64]);
                    let root = [0xee; 32];
                    b.checkpoint = Checkpoint::new(b.checkpoint.checkpoint.origin(), 7, root)
                        .unwrap()
                        .sign(forger.signing_key());
                    b.relay_key = forger.public().signing_bytes();
                }),
                "inclusion_invalid",
            ),
            (
                "the chain id",
                Box::new(|b| b.chain.chain_id = 1),
                "origin_mismatch",
            ),
            (
                "the log",
                Box::new(|b| b.chain.log = LOG + 1),
                "origin_mismatch",
            ),
            (
                "a file template of another template",
                Box::new(|b| content(b).template = template("blood-count", 1).to_canonical_bytes()),
                "template_mismatch",
            ),
            (
                "a file template of another version",
                Box::new(|b| content(b).template = template("vital-signs", 2).to_canonical_bytes()),
                "template_mismatch",
            ),
            (
                "a truncated template",
                Box::new(|b| {
                    content(b).template.pop();
                }),
                "template_mismatch",
            ),
            (
                "a template whose on-chain attribute the record lacks",
                Box::new(|b| {
                    let mut spec = template("vital-signs", 1).spec().clone();
                    spec.attributes[1].kind = AttributeKind::Boolean;
                    spec.attributes[1].on_chain = true;
                    spec.attributes[1].required = true;
                    content(b).template = Template::new(spec).unwrap().to_canonical_bytes();
                }),
                "record_malformed",
            ),
            (
                "the ACK's contract",
                Box::new(|b| {
                    b.record_anchor.as_mut().unwrap().contract = EthAddress::from_bytes([1; 20])
                }),
                "ack_mismatch",
            ),
        ];
        for (what, tamper, code) in cases {
            let mut b = good.clone();
            tamper(&mut b);
            assert_eq!(failure(&b, &facts), Some(code), "tampered {what}");
        }
    }

    #[test]
    fn pinned_facts_must_match() {
        let (bundle, _, _) = fixture();
        let other = Keypair::from_seeds(&[6; 64]).public().signing_bytes();
        for (pinned, code) in [
            (
                Pinned {
                    relay_key: Some(other),
                    ..Pinned::default()
                },
                "pinned_relay_key_mismatch",
            ),
            (
                Pinned {
                    registry: Some(EthAddress::from_bytes([0x11; 20])),
                    ..Pinned::default()
                },
                "pinned_registry_mismatch",
            ),
            (
                Pinned {
                    chain_id: Some(1),
                    ..Pinned::default()
                },
                "pinned_chain_mismatch",
            ),
        ] {
            let report = bundle.verify_offline(&pinned);
            assert_eq!(report.first_failure().map(ProofFailure::code), Some(code));
            assert_eq!(report.checks[1].check, "pinned");
            assert_eq!(report.pinned, pinned);
        }
        let report = bundle.verify_offline(&Pinned::default());
        assert!(report.ok());
        assert!(report.checks[1].detail.starts_with("nothing pinned"));
    }

    #[test]
    fn the_chain_is_read_even_without_an_acknowledgement() {
        let (mut bundle, good, _) = fixture();
        bundle.record_anchor = None;
        let verify = |bundle: &ProofBundle, facts: &ChainFacts| {
            let mut report = bundle.verify_offline(&Pinned::default());
            report.check_chain(bundle, facts);
            report
        };
        // The chain anchored the tid as rejected: the verdict is the chain's.
        let mut facts = good.clone();
        facts.record_event.as_mut().unwrap().verdict = 1;
        let report = verify(&bundle, &facts);
        assert!(report.ok(), "{report:#?}");
        assert_eq!(
            report.chain_verdict,
            Some(Verdict::Rejected { attribute_index: 0 })
        );
        facts.record_event.as_mut().unwrap().verdict = 255;
        assert_eq!(
            verify(&bundle, &facts).chain_verdict,
            Some(Verdict::Rejected {
                attribute_index: u16::MAX
            })
        );
        // The chain anchored the tid with another commitment.
        facts.record_event.as_mut().unwrap().commitment = Commitment::from_bytes([3; 32]);
        assert_eq!(
            verify(&bundle, &facts)
                .first_failure()
                .map(ProofFailure::code),
            Some("record_anchor_mismatch")
        );
        // The chain has no anchor for the tid: it verifies, but nothing about the tid.
        facts.record_event = None;
        facts.ticket_used = false;
        let report = verify(&bundle, &facts);
        assert!(report.ok(), "{report:#?}");
        assert_eq!(report.chain_verdict, None);
        assert!(!report.tid_anchored());
        let last = report.checks.last().unwrap();
        assert_eq!(last.check, "record_anchored");
        assert!(last.detail.contains("not the transaction id"), "{last:?}");
    }

    #[test]
    fn a_record_the_chain_rejected_is_bound_to_its_values() {
        // 300 breaks the template's max 250: the chain anchored it as rejected at attribute
        // 0, and the event's values hash is still the record's.
        let (mut bundle, mut facts, _) = fixture_with(300);
        bundle.record_anchor.as_mut().unwrap().verdict = Verdict::Rejected { attribute_index: 0 };
        facts.record_event.as_mut().unwrap().verdict = 1;
        let report = verify(&bundle, &facts);
        assert!(report.ok(), "{report:#?}");
        assert_eq!(
            report.chain_verdict,
            Some(Verdict::Rejected { attribute_index: 0 })
        );
        let bound = report.checks.last().unwrap();
        assert_eq!(bound.check, "values_bound");
        assert!(
            bound.detail.contains(&hex::encode(values_hash(&[300]))),
            "{bound:?}"
        );
    }

    #[test]
    fn a_verdict_on_other_values_proves_nothing() {
        let (bundle, mut facts, _) = fixture();
        facts.record_event.as_mut().unwrap().values_hash = values_hash(&[73]);
        let report = verify(&bundle, &facts);
        assert_eq!(report.chain_verdict, None);
        assert!(!report.tid_anchored());
        let failure = report.first_failure().unwrap();
        assert_eq!(
            failure,
            &ProofFailure::RecordValuesMismatch {
                got: values_hash(&[73]),
                expected: values_hash(&[72]),
            }
        );
        let message = failure.to_string();
        assert!(
            message.contains("other values than the record's"),
            "{message}"
        );
        assert!(
            message.contains(&hex::encode(values_hash(&[73]))),
            "{message}"
        );
        assert!(
            message.contains(&hex::encode(values_hash(&[72]))),
            "{message}"
        );
        // The registry's template under another handle: named with both sides.
        let (_, mut facts, _) = fixture();
        facts.template_info = Some(info(&template("vital-signs", 2)));
        let message = verify(&bundle, &facts).first_failure().unwrap().to_string();
        assert!(
            message.starts_with("the registry's template is under handle 4"),
            "{message}"
        );
        assert!(
            message.contains("version 2") && message.contains("version 1"),
            "{message}"
        );
    }

    fn verify(bundle: &ProofBundle, facts: &ChainFacts) -> Report {
        let mut report = bundle.verify_offline(&Pinned::default());
        report.check_chain(bundle, facts);
        report
    }

    #[test]
    fn verdict_bytes_round_trip() {
        for b in 0..=255u8 {
            assert_eq!(verdict_byte(verdict_of_byte(b)), Some(b));
        }
        assert_eq!(
            describe_verdict(Verdict::Rejected { attribute_index: 2 }),
            "rejected at attribute 2"
        );
    }

    #[test]
    fn withheld_content_proves_only_the_anchoring() {
        let (mut bundle, mut facts, _) = fixture();
        bundle.record.content = None;
        // Without the record, its values cannot be compared: any values hash passes.
        facts.record_event.as_mut().unwrap().values_hash = [0xee; 32];
        facts.template_info = None;
        let mut report = bundle.verify_offline(&Pinned::default());
        report.check_chain(&bundle, &facts);
        assert!(report.ok(), "{report:#?}");
        assert!(!report.content_checked);
        assert!(report.tid_anchored());
        let names: Vec<_> = report.checks.iter().map(|c| c.check).collect();
        assert_eq!(names[2], "content");
        assert!(!names.contains(&"template"));
        let bound = report.checks.last().unwrap();
        assert_eq!(bound.check, "values_bound");
        assert!(
            bound.detail.contains("could not be checked")
                && bound.detail.contains(&"ee".repeat(32)),
            "{bound:?}"
        );
        assert!(
            !serde_json::to_string(&bundle)
                .unwrap()
                .contains("signed_ti")
        );
    }

    #[test]
    fn every_chain_disagreement_is_named() {
        let (bundle, good, _) = fixture();
        let cases: Vec<Case<ChainFacts>> = vec![
            ("another chain", Box::new(|f| f.chain_id = 1), "wrong_chain"),
            (
                "no checkpoint event",
                Box::new(|f| f.checkpoint_event = None),
                "checkpoint_not_anchored",
            ),
            (
                "another root on chain",
                Box::new(|f| f.checkpoint_event.as_mut().unwrap().root = [1; 32]),
                "checkpoint_not_anchored",
            ),
            (
                "another block",
                Box::new(|f| {
                    f.checkpoint_event.as_mut().unwrap().position.block_hash =
                        ChainHash::from_bytes([1; 32])
                }),
                "checkpoint_not_anchored",
            ),
            (
                "the registry refuses the proof",
                Box::new(|f| f.contract_root = None),
                "inclusion_invalid",
            ),
            (
                "the registry computes another root",
                Box::new(|f| f.contract_root = Some([2; 32])),
                "inclusion_invalid",
            ),
            (
                "the tid was never anchored",
                Box::new(|f| {
                    f.record_event = None;
                    f.ticket_used = false;
                }),
                "record_not_anchored",
            ),
            (
                "another commitment anchored",
                Box::new(|f| {
                    f.record_event.as_mut().unwrap().commitment = Commitment::from_bytes([3; 32])
                }),
                "record_anchor_mismatch",
            ),
            (
                "the verdict flipped",
                Box::new(|f| f.record_event.as_mut().unwrap().verdict = 1),
                "record_anchor_mismatch",
            ),
            (
                "the event is in another transaction",
                Box::new(|f| {
                    f.record_event.as_mut().unwrap().position.tx_hash =
                        ChainHash::from_bytes([4; 32])
                }),
                "record_anchor_mismatch",
            ),
            (
                "another tid took the ticket",
                Box::new(|f| f.record_event = None),
                "record_anchor_mismatch",
            ),
            (
                "an event, but the ticket is unused",
                Box::new(|f| f.ticket_used = false),
                "record_anchor_mismatch",
            ),
            (
                "the checkpoint event is in another log",
                Box::new(|f| f.checkpoint_event.as_mut().unwrap().log = LOG + 1),
                "checkpoint_not_anchored",
            ),
            (
                "the record event is in another log",
                Box::new(|f| f.record_event.as_mut().unwrap().log = LOG + 1),
                "record_anchor_mismatch",
            ),
            (
                "another values hash",
                Box::new(|f| f.record_event.as_mut().unwrap().values_hash = values_hash(&[73])),
                "record_values_mismatch",
            ),
            (
                "the handle is another template's",
                Box::new(|f| f.template_info = Some(info(&template("blood-count", 1)))),
                "template_mismatch",
            ),
            (
                "the handle is another version's",
                Box::new(|f| f.template_info = Some(info(&template("vital-signs", 2)))),
                "template_mismatch",
            ),
            (
                "the handle's template has another hash",
                Box::new(|f| f.template_info.as_mut().unwrap().template_hash = [6; 32]),
                "template_mismatch",
            ),
            (
                "templateInfo reverted",
                Box::new(|f| f.template_info = None),
                "template_mismatch",
            ),
        ];
        for (what, change, code) in cases {
            let mut facts = good.clone();
            change(&mut facts);
            assert_eq!(failure(&bundle, &facts), Some(code), "{what}");
        }
    }

    #[test]
    fn verdict_bytes_are_the_registrys() {
        let rejected = |attribute_index| Verdict::Rejected { attribute_index };
        assert_eq!(verdict_byte(Verdict::Valid), Some(0));
        assert_eq!(verdict_byte(rejected(0)), Some(1));
        assert_eq!(verdict_byte(rejected(3)), Some(4));
        assert_eq!(verdict_byte(rejected(253)), Some(254));
        assert_eq!(verdict_byte(rejected(u16::MAX)), Some(255));
        for i in [254, 255, 256, 1000, u16::MAX - 1] {
            assert_eq!(verdict_byte(rejected(i)), None, "{i}");
        }
    }

    #[test]
    fn an_ack_verdict_without_a_registry_byte_fails() {
        let (good, facts, _) = fixture();
        for i in [254, 300, u16::MAX - 1] {
            let mut bundle = good.clone();
            bundle.record_anchor.as_mut().unwrap().verdict =
                Verdict::Rejected { attribute_index: i };
            let report = bundle.verify_offline(&Pinned::default());
            let failure = report.first_failure().unwrap();
            assert_eq!(failure.code(), "ack_mismatch", "{i}");
            assert!(
                failure.to_string().contains("none a registry can give"),
                "{failure}"
            );
            // Even when the chain is asked: the external validator's 255 is not index 254.
            let mut facts = facts.clone();
            facts.record_event.as_mut().unwrap().verdict = 255;
            let mut report = Report::default();
            report.check_chain(&bundle, &facts);
            assert_eq!(
                report.first_failure().map(ProofFailure::code),
                Some("record_anchor_mismatch"),
                "{i}"
            );
        }
    }

    #[test]
    fn the_origin_names_chain_registry_and_log() {
        assert_eq!(
            log_origin(31337, &registry(), 1),
            "mediblock/31337/0x5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f/1"
        );
        assert_eq!(
            log_origin(1, &EthAddress::from_bytes([0xab; 20]), 65535),
            "mediblock/1/0xabababababababababababababababababababab/65535"
        );
        // The longest origin still fits a checkpoint.
        let longest = log_origin(u64::MAX, &registry(), u16::MAX);
        assert_eq!(longest.len(), 79);
        assert!(Checkpoint::new(longest, 1, [0; 32]).is_ok());
    }
}
