//! Key pairs (ed25519 for signatures, X25519 for agreement) and the symmetric keys derived
//! from them: SK(user, relay) and SK(relay, store) of the paper.
//!
//! # Security notes
//! - A shared key is HKDF-SHA256 over the X25519 secret, salted with both public keys in
//!   byte order (so both sides derive the same key without agreeing on who is "first") and
//!   labelled with its [`Purpose`], so a key for one purpose is useless for the other.
//! - A non-contributory X25519 result (a low-order peer key) is refused.
//! - Secret material is zeroized on drop and never appears in `Debug` output.
//! - Ed25519 verification is `verify_strict` (no malleable or small-order signatures), and
//!   weak (small-order) ed25519 public keys are refused when parsed.

use core::fmt;

use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use hkdf::Hkdf;
use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use x25519_dalek::{PublicKey as XPublic, StaticSecret};
use zeroize::Zeroizing;

use crate::encoding::Writer;
use crate::error::{Error, Result};
use crate::hash::{LABEL_RELAY_STORE, LABEL_USER_RELAY, TAG_KEY_ID, sha256};
use crate::ids::KeyId;

/// What a derived symmetric key is for. Part of the HKDF label and of every envelope.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// SK(user, relay): seals initial transactions on their way to the relay.
    UserRelay = 1,
    /// SK(relay, store): seals validated transactions at rest in the cloud store.
    RelayStore = 2,
}

impl Purpose {
    /// One-byte code used in envelopes.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The purpose with this code.
    pub fn from_code(code: u8) -> Result<Self> {
        match code {
            1 => Ok(Purpose::UserRelay),
            2 => Ok(Purpose::RelayStore),
            _ => Err(Error::Crypto),
        }
    }

    /// The HKDF `info` label.
    pub fn label(self) -> &'static str {
        match self {
            Purpose::UserRelay => LABEL_USER_RELAY,
            Purpose::RelayStore => LABEL_RELAY_STORE,
        }
    }
}

/// The public half of a [`Keypair`]: what the administrator enrols.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKeys {
    signing: VerifyingKey,
    agreement: XPublic,
}

impl PublicKeys {
    /// Parses both public keys, refusing invalid or weak ed25519 keys.
    pub fn from_bytes(signing: &[u8; 32], agreement: &[u8; 32]) -> Result<Self> {
        let signing = VerifyingKey::from_bytes(signing)
            .map_err(|_| Error::invalid("ed25519 public key", "not a valid curve point"))?;
        if signing.is_weak() {
            return Err(Error::invalid(
                "ed25519 public key",
                "weak (small-order) key",
            ));
        }
        Ok(Self {
            signing,
            agreement: XPublic::from(*agreement),
        })
    }

    /// The ed25519 verifying key.
    pub fn signing(&self) -> &VerifyingKey {
        &self.signing
    }

    /// The ed25519 key's 32 bytes.
    pub fn signing_bytes(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// The X25519 key's 32 bytes.
    pub fn agreement_bytes(&self) -> [u8; 32] {
        *self.agreement.as_bytes()
    }

    /// Verifies an ed25519 signature strictly; failures are opaque.
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> Result<()> {
        let sig = ed25519_dalek::Signature::from_bytes(signature);
        self.signing
            .verify_strict(message, &sig)
            .map_err(|_| Error::Signature)
    }
}

impl fmt::Debug for PublicKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKeys")
            .field("ed25519", &hex::encode(self.signing_bytes()))
            .field("x25519", &hex::encode(self.agreement_bytes()))
            .finish()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PublicKeysJson {
    ed25519: String,
    x25519: String,
}

impl Serialize for PublicKeys {
    fn serialize<S: serde::Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        PublicKeysJson {
            ed25519: hex::encode(self.signing_bytes()),
            x25519: hex::encode(self.agreement_bytes()),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for PublicKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let raw = PublicKeysJson::deserialize(d)?;
        let key = |s: &str| -> core::result::Result<[u8; 32], D::Error> {
            let mut out = [0u8; 32];
            hex::decode_to_slice(crate::json::hex_digits(s), &mut out)
                .map_err(|_| D::Error::custom("expected 32 bytes as hex"))?;
            Ok(out)
        };
        Self::from_bytes(&key(&raw.ed25519)?, &key(&raw.x25519)?).map_err(D::Error::custom)
    }
}

/// A party's secret keys: an ed25519 signing key and an X25519 agreement key.
/// Used by users, by the relay and by the store's key holder alike.
pub struct Keypair {
    signing: SigningKey,
    agreement: StaticSecret,
}

impl Keypair {
    /// Fresh random keys.
    pub fn generate(rng: &mut impl CryptoRng) -> Self {
        let mut seeds = Zeroizing::new([0u8; 64]);
        rng.fill_bytes(seeds.as_mut());
        Self::from_seeds(&seeds)
    }

    /// Keys from 64 secret bytes: the ed25519 seed, then the X25519 secret.
    pub fn from_seeds(seeds: &[u8; 64]) -> Self {
        let mut signing = Zeroizing::new([0u8; 32]);
        let mut agreement = Zeroizing::new([0u8; 32]);
        signing.copy_from_slice(&seeds[..32]);
        agreement.copy_from_slice(&seeds[32..]);
        Self {
            signing: SigningKey::from_bytes(&signing),
            agreement: StaticSecret::from(*agreement),
        }
    }

    /// The 64 secret bytes, for a passphrase-encrypted keystore. Handle with care.
    pub fn to_seeds(&self) -> Zeroizing<[u8; 64]> {
        let mut out = Zeroizing::new([0u8; 64]);
        out[..32].copy_from_slice(&self.signing.to_bytes());
        out[32..].copy_from_slice(&self.agreement.to_bytes());
        out
    }

    /// The public halves.
    pub fn public(&self) -> PublicKeys {
        PublicKeys {
            signing: self.signing.verifying_key(),
            agreement: XPublic::from(&self.agreement),
        }
    }

    /// An ed25519 signature over `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.signing.sign(message).to_bytes()
    }

    /// The ed25519 signing key (for checkpoint signing and similar).
    pub fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    /// Derives the symmetric key shared with `peer` for `purpose`.
    pub fn agree(&self, peer: &PublicKeys, purpose: Purpose) -> Result<SymmetricKey> {
        let shared = self.agreement.diffie_hellman(&peer.agreement);
        if !shared.was_contributory() {
            return Err(Error::Crypto);
        }
        let own = self.public().agreement_bytes();
        let theirs = peer.agreement_bytes();
        let (a, b) = if own <= theirs {
            (own, theirs)
        } else {
            (theirs, own)
        };
        let mut salt = [0u8; 64];
        salt[..32].copy_from_slice(&a);
        salt[32..].copy_from_slice(&b);
        let hk = Hkdf::<Sha256>::new(Some(&salt), shared.as_bytes());
        let mut okm = Zeroizing::new([0u8; 32]);
        hk.expand(purpose.label().as_bytes(), okm.as_mut())
            .map_err(|_| Error::Crypto)?;
        Ok(SymmetricKey::from_bytes(purpose, &okm))
    }
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keypair")
            .field("public", &self.public())
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// A 256-bit AES-GCM key bound to one [`Purpose`], with its public [`KeyId`].
pub struct SymmetricKey {
    purpose: Purpose,
    id: KeyId,
    key: Zeroizing<[u8; 32]>,
}

impl SymmetricKey {
    /// Wraps raw key bytes (derived, or configured by an operator).
    pub fn from_bytes(purpose: Purpose, key: &[u8; 32]) -> Self {
        let mut w = Writer::new();
        w.tag(TAG_KEY_ID);
        w.fixed(key);
        let tagged = Zeroizing::new(w.into_bytes());
        let digest = sha256(&tagged);
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest[..8]);
        Self {
            purpose,
            id: KeyId::from_bytes(id),
            key: Zeroizing::new(*key),
        }
    }

    /// What the key is for.
    pub fn purpose(&self) -> Purpose {
        self.purpose
    }

    /// The key's public identifier.
    pub fn id(&self) -> KeyId {
        self.id
    }

    pub(crate) fn expose(&self) -> &[u8; 32] {
        &self.key
    }
}

impl fmt::Debug for SymmetricKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SymmetricKey")
            .field("purpose", &self.purpose)
            .field("id", &self.id)
            .field("key", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn both_sides_derive_the_same_key_per_purpose() {
        let mut rng = ChaCha20Rng::from_seed([1; 32]);
        let user = Keypair::generate(&mut rng);
        let relay = Keypair::generate(&mut rng);
        let a = user.agree(&relay.public(), Purpose::UserRelay).unwrap();
        let b = relay.agree(&user.public(), Purpose::UserRelay).unwrap();
        assert_eq!(a.expose(), b.expose());
        assert_eq!(a.id(), b.id());
        let c = user.agree(&relay.public(), Purpose::RelayStore).unwrap();
        assert_ne!(a.expose(), c.expose());
    }

    #[test]
    fn low_order_peer_key_is_refused() {
        let mut rng = ChaCha20Rng::from_seed([2; 32]);
        let user = Keypair::generate(&mut rng);
        let ed = user.public().signing_bytes();
        let zero_peer = PublicKeys::from_bytes(&ed, &[0u8; 32]).unwrap();
        assert!(matches!(
            user.agree(&zero_peer, Purpose::UserRelay),
            Err(Error::Crypto)
        ));
    }

    #[test]
    fn secrets_are_not_in_debug_output() {
        let mut rng = ChaCha20Rng::from_seed([3; 32]);
        let kp = Keypair::generate(&mut rng);
        let seeds = kp.to_seeds();
        let dbg = format!("{kp:?}");
        assert!(!dbg.contains(&hex::encode(&seeds[..32])));
        assert!(!dbg.contains(&hex::encode(&seeds[32..])));
        assert!(dbg.contains("<redacted>"));
        let key = kp
            .agree(&Keypair::generate(&mut rng).public(), Purpose::UserRelay)
            .unwrap();
        assert!(!format!("{key:?}").contains(&hex::encode(key.expose())));
    }

    #[test]
    fn seeds_round_trip() {
        let mut rng = ChaCha20Rng::from_seed([4; 32]);
        let kp = Keypair::generate(&mut rng);
        let again = Keypair::from_seeds(&kp.to_seeds());
        assert_eq!(kp.public(), again.public());
    }

    #[test]
    fn public_keys_json_round_trip_and_refuse_weak_keys() {
        let mut rng = ChaCha20Rng::from_seed([5; 32]);
        let public = Keypair::generate(&mut rng).public();
        let json = serde_json::to_string(&public).unwrap();
        assert_eq!(serde_json::from_str::<PublicKeys>(&json).unwrap(), public);
        // The identity point is a valid encoding but of small order.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(PublicKeys::from_bytes(&identity, &[9; 32]).is_err());
    }
}
