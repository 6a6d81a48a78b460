//! Hash functions and the domain tags that separate every hashed or signed message.
//!
//! Every signature, commitment and derived key in MediBlock covers a distinct ASCII tag,
//! so a byte string valid in one context can never be replayed as valid in another.

use sha2::Digest as _;

/// A 32-byte digest (keccak256 or SHA-256).
pub type Hash32 = [u8; 32];

/// Tag of the canonical encoding of an initial transaction (TI) body.
pub const TAG_TI: &str = "mediblock/ti/v1";
/// Tag prefixed to a TI body before ed25519 signing.
pub const TAG_TI_SIGNATURE: &str = "mediblock/ti-signature/v1";
/// Tag of a record commitment (keccak256 of the signed TI).
pub const TAG_COMMITMENT: &str = "mediblock/commitment/v1";
/// Tag of a template's canonical encoding (its hash is anchored on chain).
pub const TAG_TEMPLATE: &str = "mediblock/template/v1";
/// Tag of a validated transaction (T'I) before encryption at rest.
pub const TAG_VALIDATED: &str = "mediblock/validated/v1";
/// Tag of the associated data of an AES-GCM envelope.
pub const TAG_ENVELOPE_AAD: &str = "mediblock/envelope-aad/v1";
/// Tag of a symmetric key's public identifier.
pub const TAG_KEY_ID: &str = "mediblock/key-id/v1";
/// HKDF info label of SK(user, relay), the key that seals initial transactions.
pub const LABEL_USER_RELAY: &str = "mediblock/sk/user-relay/v1";
/// HKDF info label of SK(relay, store), the key that seals records at rest.
pub const LABEL_RELAY_STORE: &str = "mediblock/sk/relay-store/v1";

/// keccak256 of `data`, as Ethereum computes it.
pub fn keccak256(data: &[u8]) -> Hash32 {
    sha3::Keccak256::digest(data).into()
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> Hash32 {
    sha2::Sha256::digest(data).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keccak256_matches_ethereum() {
        // keccak256("") is the well-known empty hash used throughout Ethereum.
        assert_eq!(
            hex::encode(keccak256(b"")),
            "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
        );
    }

    #[test]
    fn sha256_matches_fips() {
        assert_eq!(
            hex::encode(sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
