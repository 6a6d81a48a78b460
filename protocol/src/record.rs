//! The initial transaction (TI, paper §3.3): what a clinician's browser builds, signs with
//! ed25519 and seals for the relay; and its commitment, the value anchored on chain.
//!
//! # Security notes
//! - The signature covers a domain tag and the canonical encoding, so it cannot be replayed
//!   as any other MediBlock message; verification is `verify_strict`.
//! - The commitment is keccak256 over its own tag and the *signed* TI, including the random
//!   32-byte salt: knowing a patient's likely values does not let anyone confirm them from
//!   the chain.
//! - A sealed TI binds its transaction id and user id as associated data; the relay also
//!   checks that the ids inside equal the ids outside.

use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};

use crate::encoding::{Canonical, Reader, Writer};
use crate::envelope::Envelope;
use crate::error::{Error, Result};
use crate::hash::{TAG_COMMITMENT, TAG_TI, TAG_TI_SIGNATURE, keccak256};
use crate::ids::{Commitment, PatientId, Salt, TemplateRef, TxId, UnixMillis, UserId};
use crate::keys::{Keypair, PublicKeys, Purpose};
use crate::value::Attributes;

/// An unsigned initial transaction.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitialTransaction {
    /// Random id of this transaction, chosen by the client.
    pub tid: TxId,
    /// The author.
    pub uid: UserId,
    /// The patient the record is about.
    pub pid: PatientId,
    /// The template and version the record follows.
    pub template: TemplateRef,
    /// The typed attribute values.
    pub attributes: Attributes,
    /// When the author created it (the browser's clock).
    pub created_at: UnixMillis,
    /// Fresh random salt.
    pub salt: Salt,
    /// Commitment of the patient's previous record, `None` for the first one.
    pub prev: Option<Commitment>,
}

impl Canonical for InitialTransaction {
    fn encode(&self, w: &mut Writer) {
        w.tag(TAG_TI);
        self.tid.encode(w);
        self.uid.encode(w);
        self.pid.encode(w);
        self.template.encode(w);
        self.attributes.encode(w);
        self.created_at.encode(w);
        self.salt.encode(w);
        w.option(self.prev.as_ref(), |w, c| c.encode(w));
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        r.expect_tag(TAG_TI)?;
        Ok(Self {
            tid: TxId::decode(r)?,
            uid: UserId::decode(r)?,
            pid: PatientId::decode(r)?,
            template: TemplateRef::decode(r)?,
            attributes: Attributes::decode(r)?,
            created_at: UnixMillis::decode(r)?,
            salt: Salt::decode(r)?,
            prev: r.option(Commitment::decode)?,
        })
    }
}

impl InitialTransaction {
    /// The exact bytes the author signs: the signature tag, then the canonical encoding.
    pub fn signing_message(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.tag(TAG_TI_SIGNATURE);
        self.encode(&mut w);
        w.into_bytes()
    }

    /// Signs with the author's key.
    pub fn sign(self, author: &Keypair) -> SignedInitialTransaction {
        let signature = author.sign(&self.signing_message());
        SignedInitialTransaction {
            ti: self,
            signature,
        }
    }
}

/// An initial transaction with its author's ed25519 signature (not yet verified, unless
/// obtained from [`SealedTransaction::open`]).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedInitialTransaction {
    ti: InitialTransaction,
    #[serde(with = "hex_sig")]
    signature: [u8; 64],
}

impl SignedInitialTransaction {
    /// Reassembles a signed TI from its parts (verify before trusting it).
    pub fn from_parts(ti: InitialTransaction, signature: [u8; 64]) -> Self {
        Self { ti, signature }
    }

    /// The transaction.
    pub fn ti(&self) -> &InitialTransaction {
        &self.ti
    }

    /// The signature bytes.
    pub fn signature(&self) -> &[u8; 64] {
        &self.signature
    }

    /// Verifies the signature against the author's enrolled keys.
    pub fn verify(&self, author: &PublicKeys) -> Result<()> {
        author.verify(&self.ti.signing_message(), &self.signature)
    }

    /// keccak256(tag ‖ canonical signed TI): the value anchored on chain.
    pub fn commitment(&self) -> Commitment {
        let mut w = Writer::new();
        w.tag(TAG_COMMITMENT);
        self.encode(&mut w);
        Commitment::from_bytes(keccak256(&w.into_bytes()))
    }

    /// Signs nothing new: encrypts this signed TI for the relay under SK(author, relay).
    pub fn seal(
        &self,
        author: &Keypair,
        relay: &PublicKeys,
        rng: &mut impl CryptoRng,
    ) -> Result<SealedTransaction> {
        let key = author.agree(relay, Purpose::UserRelay)?;
        let context = sealing_context(&self.ti.tid, &self.ti.uid);
        let envelope = Envelope::seal(&key, &context, &self.to_canonical_bytes(), rng)?;
        Ok(SealedTransaction {
            tid: self.ti.tid,
            uid: self.ti.uid.clone(),
            envelope,
        })
    }
}

impl Canonical for SignedInitialTransaction {
    fn encode(&self, w: &mut Writer) {
        self.ti.encode(w);
        w.fixed(&self.signature);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            ti: InitialTransaction::decode(r)?,
            signature: r.array()?,
        })
    }
}

/// What the browser sends to the relay: the ids in clear (so the relay can find the
/// author's keys) and the sealed, signed TI.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedTransaction {
    /// Transaction id (also inside, and bound as associated data).
    pub tid: TxId,
    /// Author (also inside, and bound as associated data).
    pub uid: UserId,
    /// The sealed canonical signed TI.
    pub envelope: Envelope,
}

impl SealedTransaction {
    /// Decrypts with the relay's keys and verifies the author's signature.
    ///
    /// Fails with [`Error::Crypto`] for anything wrong with the envelope or the ids, and
    /// with [`Error::Signature`] when the signature does not verify.
    pub fn open(&self, relay: &Keypair, author: &PublicKeys) -> Result<SignedInitialTransaction> {
        let key = relay.agree(author, Purpose::UserRelay)?;
        let plain = self
            .envelope
            .open(&key, &sealing_context(&self.tid, &self.uid))?;
        let signed = SignedInitialTransaction::from_canonical_bytes(&plain)?;
        if signed.ti.tid != self.tid || signed.ti.uid != self.uid {
            return Err(Error::Crypto);
        }
        signed.verify(author)?;
        Ok(signed)
    }
}

/// Associated data of a sealed TI: the transaction id and the user id.
fn sealing_context(tid: &TxId, uid: &UserId) -> Vec<u8> {
    let mut w = Writer::new();
    tid.encode(&mut w);
    uid.encode(&mut w);
    w.into_bytes()
}

mod hex_sig {
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub(super) fn serialize<S: Serializer>(sig: &[u8; 64], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(sig))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 64], D::Error> {
        let text = String::deserialize(d)?;
        let mut out = [0u8; 64];
        hex::decode_to_slice(crate::json::hex_digits(&text), &mut out)
            .map_err(|_| D::Error::custom("expected 64 bytes as hex"))?;
        Ok(out)
    }
}
