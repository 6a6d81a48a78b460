//! The AES-256-GCM envelope that carries initial transactions to the relay and validated
//! transactions into the store.
//!
//! Wire form (see `docs/PROTOCOL.md`): `version (1) ‖ purpose (1) ‖ key id (8) ‖ nonce (12)
//! ‖ u32 length ‖ ciphertext-and-tag`. The associated data binds the header and a
//! caller-supplied *context* (the transaction and user ids), so an envelope moved to another
//! record, purpose or key fails to open.
//!
//! # Security notes
//! - The 96-bit nonce is drawn from the caller's CSPRNG for every envelope. With random
//!   nonces a key must seal fewer than 2^32 messages; SK(user, relay) is per user, and
//!   SK(relay, store) is rotated by key id well before that.
//! - Every failure to open (wrong key, purpose, context, any flipped bit, truncation) is the
//!   same opaque [`Error::Crypto`].

use aes_gcm::aead::{Aead as _, KeyInit as _, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::encoding::{Canonical, MAX_FIELD_LEN, Reader, Writer};
use crate::error::{DecodeError, Error, Result};
use crate::hash::TAG_ENVELOPE_AAD;
use crate::ids::KeyId;
use crate::keys::{Purpose, SymmetricKey};

/// The only envelope version so far.
pub const ENVELOPE_VERSION: u8 = 1;
/// Bytes of the AES-GCM authentication tag.
pub const TAG_LEN: usize = 16;

/// An encrypted, authenticated payload.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Envelope {
    purpose: Purpose,
    key_id: KeyId,
    nonce: [u8; 12],
    ciphertext: Vec<u8>,
}

impl Envelope {
    /// Encrypts `plaintext` under `key`, bound to `context`.
    pub fn seal(
        key: &SymmetricKey,
        context: &[u8],
        plaintext: &[u8],
        rng: &mut impl CryptoRng,
    ) -> Result<Self> {
        let mut nonce = [0u8; 12];
        rng.fill_bytes(&mut nonce);
        let mut env = Self {
            purpose: key.purpose(),
            key_id: key.id(),
            nonce,
            ciphertext: Vec::new(),
        };
        let aad = env.associated_data(context);
        env.ciphertext = cipher(key)
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| Error::Crypto)?;
        Ok(env)
    }

    /// Decrypts with `key`, checking purpose, key id, context and tag. Opaque on failure.
    pub fn open(&self, key: &SymmetricKey, context: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if key.purpose() != self.purpose || key.id() != self.key_id {
            return Err(Error::Crypto);
        }
        let aad = self.associated_data(context);
        cipher(key)
            .decrypt(
                &Nonce::from(self.nonce),
                Payload {
                    msg: &self.ciphertext,
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| Error::Crypto)
    }

    /// The key id the envelope was sealed under.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The purpose of the key it was sealed under.
    pub fn purpose(&self) -> Purpose {
        self.purpose
    }

    fn associated_data(&self, context: &[u8]) -> Vec<u8> {
        let mut w = Writer::new();
        w.tag(TAG_ENVELOPE_AAD);
        w.u8(ENVELOPE_VERSION);
        w.u8(self.purpose.code());
        self.key_id.encode(&mut w);
        w.fixed(&self.nonce);
        w.bytes(context);
        w.into_bytes()
    }
}

fn cipher(key: &SymmetricKey) -> Aes256Gcm {
    Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key.expose()))
}

impl Canonical for Envelope {
    fn encode(&self, w: &mut Writer) {
        w.u8(ENVELOPE_VERSION);
        w.u8(self.purpose.code());
        self.key_id.encode(w);
        w.fixed(&self.nonce);
        w.bytes(&self.ciphertext);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let version = r.u8()?;
        if version != ENVELOPE_VERSION {
            return Err(DecodeError::UnknownDiscriminant {
                what: "envelope version",
                got: version,
            }
            .into());
        }
        let code = r.u8()?;
        let purpose = Purpose::from_code(code).map_err(|_| DecodeError::UnknownDiscriminant {
            what: "envelope purpose",
            got: code,
        })?;
        let key_id = KeyId::decode(r)?;
        let nonce = r.array()?;
        let ciphertext = r.bytes_limited(MAX_FIELD_LEN)?.to_vec();
        if ciphertext.len() < TAG_LEN {
            return Err(DecodeError::UnexpectedEnd.into());
        }
        Ok(Self {
            purpose,
            key_id,
            nonce,
            ciphertext,
        })
    }
}

impl TryFrom<String> for Envelope {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        let bytes = hex::decode(crate::json::hex_digits(&s))
            .map_err(|_| Error::invalid("envelope", "not hex"))?;
        Self::from_canonical_bytes(&bytes)
    }
}

impl From<Envelope> for String {
    fn from(e: Envelope) -> String {
        hex::encode(e.to_canonical_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn key(purpose: Purpose, byte: u8) -> SymmetricKey {
        SymmetricKey::from_bytes(purpose, &[byte; 32])
    }

    #[test]
    fn seals_and_opens() {
        let mut rng = ChaCha20Rng::from_seed([9; 32]);
        let k = key(Purpose::RelayStore, 1);
        let env = Envelope::seal(&k, b"ctx", b"hello", &mut rng).unwrap();
        assert_eq!(env.open(&k, b"ctx").unwrap().as_slice(), b"hello");
        let bytes = env.to_canonical_bytes();
        assert_eq!(Envelope::from_canonical_bytes(&bytes).unwrap(), env);
    }

    #[test]
    fn any_change_fails_opaquely() {
        let mut rng = ChaCha20Rng::from_seed([9; 32]);
        let k = key(Purpose::UserRelay, 1);
        let env = Envelope::seal(&k, b"ctx", b"hello", &mut rng).unwrap();
        assert_eq!(env.open(&k, b"other"), Err(Error::Crypto));
        assert_eq!(
            env.open(&key(Purpose::UserRelay, 2), b"ctx"),
            Err(Error::Crypto)
        );
        assert_eq!(
            env.open(&key(Purpose::RelayStore, 1), b"ctx"),
            Err(Error::Crypto)
        );
        let bytes = env.to_canonical_bytes();
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x01;
            match Envelope::from_canonical_bytes(&b) {
                Ok(e) => assert_eq!(e.open(&k, b"ctx"), Err(Error::Crypto), "byte {i}"),
                Err(Error::Decode(_)) => {}
                Err(other) => panic!("byte {i}: unexpected {other:?}"),
            }
        }
    }
}
