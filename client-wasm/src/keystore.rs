//! The keystore: a user's secret keys encrypted under their passphrase, as a JSON text that
//! lives in the browser's storage and can be downloaded as a file and imported again.
//!
//! Format (version 1):
//!
//! ```json
//! { "format": "mediblock-keystore", "version": 1, "uid": "dr.ada",
//!   "public": { "ed25519": "<hex>", "x25519": "<hex>" },
//!   "kdf": { "algorithm": "argon2id", "version": 19, "memory_kib": 19456,
//!            "iterations": 2, "parallelism": 1, "salt": "<16 bytes hex>" },
//!   "cipher": { "algorithm": "aes-256-gcm", "nonce": "<12 bytes hex>" },
//!   "ciphertext": "<64 secret bytes + 16-byte tag, hex>" }
//! ```
//!
//! # Security notes
//! - The key is Argon2id (RFC 9106) over the passphrase with a fresh random salt, at least
//!   19 MiB and 2 passes (OWASP's minimum for Argon2id); the secret is sealed with
//!   AES-256-GCM under a fresh nonce.
//! - The associated data binds the format tag, the uid, both public keys and every KDF
//!   parameter, so a file whose header was edited (another uid, weaker parameters) does not
//!   open. After decryption the public keys are recomputed and must equal the header's.
//! - Reading refuses parameters below the minimum or absurdly large ones (a file must not
//!   make the page allocate gigabytes).
//! - A wrong passphrase and a damaged ciphertext are the same error: the tag does not verify.
//! - The derived key and the decrypted secret are zeroized after use.

use aes_gcm::aead::{Aead as _, KeyInit as _, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use mediblock_protocol::encoding::{Canonical as _, Writer};
use mediblock_protocol::ids::UserId;
use mediblock_protocol::keys::{Keypair, PublicKeys};
use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{ClientError, Result};

/// The `format` field's value.
pub const FORMAT: &str = "mediblock-keystore";
/// The only keystore version so far.
pub const VERSION: u32 = 1;
/// Argon2id memory cost of new keystores, in KiB (19 MiB).
pub const MEMORY_KIB: u32 = 19 * 1024;
/// Argon2id passes of new keystores.
pub const ITERATIONS: u32 = 2;
/// Shortest passphrase accepted for a new keystore, in characters.
pub const MIN_PASSPHRASE_CHARS: usize = 8;

const MAX_MEMORY_KIB: u32 = 256 * 1024;
const MAX_ITERATIONS: u32 = 16;
const MAX_PARALLELISM: u32 = 4;
const SALT_LEN: usize = 16;
const TAG_KEYSTORE: &str = "mediblock/keystore/v1";
const SECRET_LEN: usize = 64;

/// Argon2id parameters as written in the file.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KdfParams {
    /// Always `argon2id`.
    pub algorithm: String,
    /// Argon2 version, 19 (0x13).
    pub version: u32,
    /// Memory cost in KiB.
    pub memory_kib: u32,
    /// Passes.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
    /// Random salt, hex.
    pub salt: String,
}

/// Cipher parameters as written in the file.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CipherParams {
    /// Always `aes-256-gcm`.
    pub algorithm: String,
    /// 96-bit nonce, hex.
    pub nonce: String,
}

/// The keystore file.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeystoreFile {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`VERSION`].
    pub version: u32,
    /// Whose keys these are.
    pub uid: UserId,
    /// The public keys (readable without the passphrase).
    pub public: PublicKeys,
    /// How the key is derived from the passphrase.
    pub kdf: KdfParams,
    /// How the secret is encrypted.
    pub cipher: CipherParams,
    /// The sealed 64 secret bytes and the tag, hex.
    pub ciphertext: String,
}

fn bad(why: &str) -> ClientError {
    ClientError::new(
        "bad_keystore",
        format!("This file is not a usable MediBlock keystore: {why}."),
    )
}

fn wrong_passphrase() -> ClientError {
    ClientError::new(
        "wrong_passphrase",
        "The passphrase does not open this keystore. Check it and try again.",
    )
}

fn associated_data(uid: &UserId, public: &PublicKeys, kdf: &KdfParams, salt: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    w.tag(TAG_KEYSTORE);
    uid.encode(&mut w);
    w.fixed(&public.signing_bytes());
    w.fixed(&public.agreement_bytes());
    w.u32(kdf.version);
    w.u32(kdf.memory_kib);
    w.u32(kdf.iterations);
    w.u32(kdf.parallelism);
    w.bytes(salt);
    w.into_bytes()
}

fn derive_key(passphrase: &str, kdf: &KdfParams, salt: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
    let params = argon2::Params::new(kdf.memory_kib, kdf.iterations, kdf.parallelism, Some(32))
        .map_err(|_| bad("its key-derivation parameters are invalid"))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut key = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(passphrase.as_bytes(), salt, key.as_mut())
        .map_err(|_| {
            ClientError::new(
                "keystore_failed",
                "The keystore's key could not be derived (not enough memory?).",
            )
        })?;
    Ok(key)
}

/// Encrypts `keys` of `uid` under `passphrase` and returns the keystore's JSON text.
pub fn seal(
    uid: &UserId,
    keys: &Keypair,
    passphrase: &str,
    rng: &mut impl CryptoRng,
) -> Result<String> {
    if passphrase.chars().count() < MIN_PASSPHRASE_CHARS {
        return Err(ClientError::new(
            "weak_passphrase",
            format!("Choose a passphrase of at least {MIN_PASSPHRASE_CHARS} characters."),
        ));
    }
    let mut salt = [0u8; SALT_LEN];
    rng.fill_bytes(&mut salt);
    let mut nonce = [0u8; 12];
    rng.fill_bytes(&mut nonce);
    let kdf = KdfParams {
        algorithm: "argon2id".into(),
        version: 0x13,
        memory_kib: MEMORY_KIB,
        iterations: ITERATIONS,
        parallelism: 1,
        salt: hex::encode(salt),
    };
    let public = keys.public();
    let key = derive_key(passphrase, &kdf, &salt)?;
    let aad = associated_data(uid, &public, &kdf, &salt);
    let seeds = keys.to_seeds();
    let ciphertext = Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key))
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: seeds.as_ref(),
                aad: &aad,
            },
        )
        .map_err(|_| ClientError::new("keystore_failed", "The keystore could not be sealed."))?;
    let file = KeystoreFile {
        format: FORMAT.into(),
        version: VERSION,
        uid: uid.clone(),
        public,
        kdf,
        cipher: CipherParams {
            algorithm: "aes-256-gcm".into(),
            nonce: hex::encode(nonce),
        },
        ciphertext: hex::encode(ciphertext),
    };
    serde_json::to_string_pretty(&file)
        .map_err(|_| ClientError::new("keystore_failed", "The keystore could not be written."))
}

/// Reads a keystore's header without the passphrase (who it belongs to, its public keys).
pub fn read(text: &str) -> Result<KeystoreFile> {
    let file: KeystoreFile = serde_json::from_str(text).map_err(|_| bad("it is not valid"))?;
    if file.format != FORMAT {
        return Err(bad("it is not a keystore"));
    }
    if file.version != VERSION {
        return Err(bad(&format!(
            "its version {} is not supported (this app reads version {VERSION})",
            file.version
        )));
    }
    let k = &file.kdf;
    if k.algorithm != "argon2id" || k.version != 0x13 {
        return Err(bad("it uses an unknown key derivation"));
    }
    if !(MEMORY_KIB..=MAX_MEMORY_KIB).contains(&k.memory_kib)
        || !(ITERATIONS..=MAX_ITERATIONS).contains(&k.iterations)
        || !(1..=MAX_PARALLELISM).contains(&k.parallelism)
    {
        return Err(bad("its key-derivation parameters are out of range"));
    }
    if file.cipher.algorithm != "aes-256-gcm" {
        return Err(bad("it uses an unknown cipher"));
    }
    Ok(file)
}

/// Opens a keystore with `passphrase`: the user id and the keys.
pub fn open(text: &str, passphrase: &str) -> Result<(UserId, Keypair)> {
    let file = read(text)?;
    let salt = hex::decode(&file.kdf.salt).map_err(|_| bad("its salt is not hex"))?;
    if !(SALT_LEN..=64).contains(&salt.len()) {
        return Err(bad("its salt has the wrong length"));
    }
    let mut nonce = [0u8; 12];
    hex::decode_to_slice(&file.cipher.nonce, &mut nonce)
        .map_err(|_| bad("its nonce is not 12 bytes of hex"))?;
    let ciphertext = hex::decode(&file.ciphertext).map_err(|_| bad("its ciphertext is not hex"))?;
    if ciphertext.len() != SECRET_LEN + 16 {
        return Err(bad("its ciphertext has the wrong length"));
    }
    let key = derive_key(passphrase, &file.kdf, &salt)?;
    let aad = associated_data(&file.uid, &file.public, &file.kdf, &salt);
    let plain = Zeroizing::new(
        Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key))
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| wrong_passphrase())?,
    );
    let mut seeds = Zeroizing::new([0u8; SECRET_LEN]);
    if plain.len() != SECRET_LEN {
        return Err(bad("its secret has the wrong length"));
    }
    seeds.copy_from_slice(&plain);
    let keys = Keypair::from_seeds(&seeds);
    if keys.public() != file.public {
        return Err(bad("its secret does not match its public keys"));
    }
    Ok((file.uid, keys))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::UnwrapErr;

    fn rng() -> UnwrapErr<getrandom::SysRng> {
        UnwrapErr(getrandom::SysRng)
    }

    #[test]
    fn round_trip_and_wrong_passphrase() {
        let uid = UserId::new("dr.ada").expect("uid");
        let keys = Keypair::generate(&mut rng());
        let text = seal(&uid, &keys, "correct horse battery", &mut rng()).expect("seal");
        let file = read(&text).expect("header");
        assert_eq!(file.kdf.memory_kib, MEMORY_KIB);
        assert_eq!(file.public, keys.public());
        let (again_uid, again) = open(&text, "correct horse battery").expect("open");
        assert_eq!(again_uid, uid);
        assert_eq!(again.public(), keys.public());
        assert_eq!(
            open(&text, "correct horse battery!")
                .map(|_| ())
                .unwrap_err()
                .code(),
            "wrong_passphrase"
        );
    }

    #[test]
    fn edited_headers_and_weak_inputs_are_refused() {
        let uid = UserId::new("dr.ada").expect("uid");
        let keys = Keypair::generate(&mut rng());
        let text = seal(&uid, &keys, "correct horse battery", &mut rng()).expect("seal");
        let other = text.replace("\"dr.ada\"", "\"dr.eve\"");
        assert_eq!(
            open(&other, "correct horse battery")
                .map(|_| ())
                .unwrap_err()
                .code(),
            "wrong_passphrase"
        );
        let weaker = text.replace("\"iterations\": 2", "\"iterations\": 1");
        assert_eq!(
            open(&weaker, "x").map(|_| ()).unwrap_err().code(),
            "bad_keystore"
        );
        assert_eq!(
            open("{}", "x").map(|_| ()).unwrap_err().code(),
            "bad_keystore"
        );
        assert_eq!(
            seal(&uid, &keys, "short", &mut rng()).unwrap_err().code(),
            "weak_passphrase"
        );
    }
}
