//! Signed checkpoints of the Merkle log, in the spirit of C2SP `tlog-checkpoint`.
//!
//! A [`Checkpoint`] names a log (its origin), a tree size and the keccak256 Merkle root of
//! that many leaves ([`crate::merkle::Keccak256Tree`]). The relay signs checkpoints with
//! ed25519; a client that holds two signed checkpoints of the same origin and a
//! [`ConsistencyProof`] between them knows the log was only appended to in between.
//!
//! # What is signed
//!
//! The signature covers, for domain separation, the canonical encoding (see
//! `docs/PROTOCOL.md`) of the tag [`TAG_CHECKPOINT_SIGNATURE`] followed by the checkpoint's
//! own canonical bytes:
//!
//! ```text
//! tag("mediblock/checkpoint-signature/v1")
//! tag("mediblock/checkpoint/v1") || str(origin) || u64(size) || root[32]
//! ```
//!
//! where `tag` and `str` are a u32 big-endian length then the bytes. So a checkpoint
//! signature can never be replayed as a signature over any other MediBlock message, nor the
//! reverse. [`Checkpoint::body`] gives the C2SP note text of the same checkpoint, for
//! display and for tools that speak that format; it is not what is signed.

use core::fmt;

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::encoding::{Canonical, Reader, Writer};
use crate::error::{Error, ProofError, Result};
use crate::hash::Hash32;
use crate::merkle::{ConsistencyProof, Keccak256Tree, TreeHasher, hex_serde};

/// Tag of a checkpoint's canonical encoding.
pub const TAG_CHECKPOINT: &str = "mediblock/checkpoint/v1";
/// Tag prefixed to a checkpoint's canonical encoding before ed25519 signing.
pub const TAG_CHECKPOINT_SIGNATURE: &str = "mediblock/checkpoint-signature/v1";

/// Longest accepted origin, in bytes.
pub const MAX_ORIGIN_LEN: usize = 128;

/// Checks an origin: 1..=128 bytes of printable ASCII (`0x20..=0x7e`, so no newline).
fn check_origin(origin: &str) -> Result<()> {
    if origin.is_empty() || origin.len() > MAX_ORIGIN_LEN {
        return Err(Error::invalid(
            "checkpoint origin",
            format!("must be 1 to {MAX_ORIGIN_LEN} characters"),
        ));
    }
    if !origin.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err(Error::invalid(
            "checkpoint origin",
            "only printable ASCII is allowed",
        ));
    }
    Ok(())
}

/// A log's state: its origin, its size and the Merkle root of its first `size` leaves.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawCheckpoint", into = "RawCheckpoint")]
pub struct Checkpoint {
    origin: String,
    size: u64,
    root: Hash32,
}

/// The serde shape of a [`Checkpoint`], before its origin is checked.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheckpoint {
    origin: String,
    size: u64,
    #[serde(with = "hex_serde")]
    root: Hash32,
}

impl TryFrom<RawCheckpoint> for Checkpoint {
    type Error = Error;
    fn try_from(raw: RawCheckpoint) -> Result<Self> {
        Self::new(raw.origin, raw.size, raw.root)
    }
}

impl From<Checkpoint> for RawCheckpoint {
    fn from(c: Checkpoint) -> Self {
        Self {
            origin: c.origin,
            size: c.size,
            root: c.root,
        }
    }
}

impl Checkpoint {
    /// Validates the origin (1..=128 printable ASCII bytes) and builds the checkpoint.
    pub fn new(origin: impl Into<String>, size: u64, root: Hash32) -> Result<Self> {
        let origin = origin.into();
        check_origin(&origin)?;
        Ok(Self { origin, size, root })
    }

    /// The log's name.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The keccak256 Merkle root of the first `size` leaves.
    pub fn root(&self) -> &Hash32 {
        &self.root
    }

    /// The C2SP `tlog-checkpoint` note body: `"{origin}\n{size}\n{base64(root)}\n"`, with
    /// standard, padded base64.
    pub fn body(&self) -> Vec<u8> {
        format!("{}\n{}\n{}\n", self.origin, self.size, base64(&self.root)).into_bytes()
    }

    /// The bytes an ed25519 signature covers: the signature tag, then
    /// [`Canonical::to_canonical_bytes`] of `self`.
    pub fn signed_message(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.tag(TAG_CHECKPOINT_SIGNATURE);
        self.encode(&mut w);
        w.into_bytes()
    }

    /// Signs the checkpoint (see the [module docs](self) for what is signed).
    pub fn sign(&self, key: &SigningKey) -> SignedCheckpoint {
        SignedCheckpoint {
            checkpoint: self.clone(),
            signature: key.sign(&self.signed_message()).to_bytes(),
        }
    }
}

impl fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checkpoint")
            .field("origin", &self.origin)
            .field("size", &self.size)
            .field("root", &hex::encode(self.root))
            .finish()
    }
}

impl Canonical for Checkpoint {
    /// Tag `mediblock/checkpoint/v1`, origin string, size u64, root (32 bytes).
    fn encode(&self, w: &mut Writer) {
        w.tag(TAG_CHECKPOINT);
        w.str(&self.origin);
        w.u64(self.size);
        w.fixed(&self.root);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        r.expect_tag(TAG_CHECKPOINT)?;
        let origin = r.str_limited(MAX_ORIGIN_LEN as u32)?;
        let size = r.u64()?;
        let root = r.array()?;
        Self::new(origin, size, root)
    }
}

/// A checkpoint and the relay's ed25519 signature over it.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedCheckpoint {
    /// What was signed.
    pub checkpoint: Checkpoint,
    /// The ed25519 signature over [`Checkpoint::signed_message`], as hex in JSON.
    #[serde(with = "hex_serde")]
    pub signature: [u8; 64],
}

impl SignedCheckpoint {
    /// Checks the signature with ed25519 strict verification.
    ///
    /// # Errors
    /// [`Error::Signature`], whatever the reason.
    pub fn verify(&self, key: &VerifyingKey) -> Result<()> {
        let signature = Signature::from_bytes(&self.signature);
        key.verify_strict(&self.checkpoint.signed_message(), &signature)
            .map_err(|_| Error::Signature)
    }

    /// Checks that `newer` extends `self`: same origin, the proof's sizes are the two
    /// checkpoints' sizes, and the proof links the two roots (over [`Keccak256Tree`]).
    ///
    /// Any tree extends the empty tree: when `self` has size 0 its root must be the empty
    /// tree's and the proof must be empty (and say `old_size` 0).
    ///
    /// This does **not** check either signature: call [`verify`](Self::verify) on both
    /// first.
    ///
    /// # Errors
    /// [`Error::Invalid`] when the origins differ or the proof is for other sizes,
    /// [`Error::Proof`] when the proof does not verify.
    pub fn verify_consistent_with(
        &self,
        newer: &SignedCheckpoint,
        proof: &ConsistencyProof,
    ) -> Result<()> {
        let (old, new) = (&self.checkpoint, &newer.checkpoint);
        if old.origin != new.origin {
            return Err(Error::invalid(
                "checkpoint pair",
                format!("origins differ: {:?} and {:?}", old.origin, new.origin),
            ));
        }
        if proof.old_size != old.size || proof.new_size != new.size {
            return Err(Error::invalid(
                "consistency proof",
                format!(
                    "proof is for sizes {} -> {}, checkpoints are {} -> {}",
                    proof.old_size, proof.new_size, old.size, new.size
                ),
            ));
        }
        if old.size > new.size {
            return Err(ProofError::BadSizes {
                old: old.size,
                new: new.size,
            }
            .into());
        }
        if old.size == 0 {
            if !proof.path.is_empty() {
                return Err(ProofError::WrongLength {
                    got: proof.path.len(),
                    expected: 0,
                }
                .into());
            }
            return if old.root == Keccak256Tree::empty_root() {
                Ok(())
            } else {
                Err(ProofError::RootMismatch.into())
            };
        }
        proof.verify::<Keccak256Tree>(&old.root, &new.root)?;
        Ok(())
    }
}

impl fmt::Debug for SignedCheckpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedCheckpoint")
            .field("checkpoint", &self.checkpoint)
            .field("signature", &hex::encode(self.signature))
            .finish()
    }
}

/// Standard base64 (RFC 4648 §4) with `=` padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let sextet = |v: u32, shift: u32| char::from(ALPHABET[((v >> shift) & 0x3f) as usize]);
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = |i: usize| chunk.get(i).copied().map_or(0, u32::from);
        let v = (b(0) << 16) | (b(1) << 8) | b(2);
        out.push(sextet(v, 18));
        out.push(sextet(v, 12));
        out.push(if chunk.len() > 1 { sextet(v, 6) } else { '=' });
        out.push(if chunk.len() > 2 { sextet(v, 0) } else { '=' });
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn json_refuses_unknown_fields() {
        let signed = Checkpoint::new("o", 1, [9; 32])
            .unwrap()
            .sign(&SigningKey::from_bytes(&[1; 32]));
        let good = serde_json::to_value(&signed).unwrap();
        assert_eq!(
            serde_json::from_value::<SignedCheckpoint>(good.clone()).unwrap(),
            signed
        );
        for at in ["", "/checkpoint"] {
            let mut v = good.clone();
            v.pointer_mut(at)
                .unwrap()
                .as_object_mut()
                .unwrap()
                .insert("zz".into(), serde_json::json!(1));
            let err = serde_json::from_value::<SignedCheckpoint>(v).unwrap_err();
            assert!(
                err.to_string().contains("unknown field `zz`"),
                "{at}: {err}"
            );
        }
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, output) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), output);
        }
        assert_eq!(base64(&[0xfb, 0xff, 0xbf]), "+/+/");
    }

    #[test]
    fn origins_are_checked() {
        assert!(Checkpoint::new("example.org/log", 0, [0; 32]).is_ok());
        assert!(Checkpoint::new("", 0, [0; 32]).is_err());
        assert!(Checkpoint::new("a\nb", 0, [0; 32]).is_err());
        assert!(Checkpoint::new("caf\u{e9}", 0, [0; 32]).is_err());
        assert!(Checkpoint::new("x".repeat(128), 0, [0; 32]).is_ok());
        assert!(Checkpoint::new("x".repeat(129), 0, [0; 32]).is_err());
    }

    #[test]
    fn body_is_the_c2sp_note_text() {
        let c = Checkpoint::new("example.org/log", 5, [0; 32]).unwrap();
        assert_eq!(
            String::from_utf8(c.body()).unwrap(),
            "example.org/log\n5\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
        );
    }

    #[test]
    fn signed_message_is_tag_then_canonical_bytes() {
        let c = Checkpoint::new("o", 1, [9; 32]).unwrap();
        let msg = c.signed_message();
        let tag = TAG_CHECKPOINT_SIGNATURE.as_bytes();
        assert_eq!(&msg[..4], &(tag.len() as u32).to_be_bytes());
        assert_eq!(&msg[4..4 + tag.len()], tag);
        assert_eq!(&msg[4 + tag.len()..], c.to_canonical_bytes().as_slice());
    }
}
