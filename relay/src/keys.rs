//! The relay's own key material: its ed25519/X25519 keypair (sealing with clinicians,
//! signing checkpoints) and the store key holder's keypair that yields SK(relay, store).
//!
//! Each lives in a file of 64 secret bytes as hex (`relay.key`, `store.key` in the data
//! folder by default), created with mode 0600 on first run. Contents are never logged.

use std::io::Write as _;
use std::path::Path;

use mediblock_protocol::keys::{Keypair, Purpose, SymmetricKey};
use rand_core::CryptoRng;
use zeroize::Zeroizing;

/// The relay's keys, ready for use.
#[derive(Debug)]
pub struct RelayKeys {
    /// The relay's keypair (SK(user, relay) agreement, checkpoint signatures).
    pub relay: Keypair,
    /// SK(relay, store): seals validated transactions at rest.
    pub at_rest: SymmetricKey,
}

impl RelayKeys {
    /// Keys from two keypairs.
    pub fn new(relay: Keypair, store: &Keypair) -> Result<Self, String> {
        let at_rest = relay
            .agree(&store.public(), Purpose::RelayStore)
            .map_err(|e| format!("cannot derive the at-rest key: {e}"))?;
        Ok(Self { relay, at_rest })
    }
}

/// Reads a keypair file, or creates it with fresh keys when it does not exist.
pub fn load_or_create(path: &Path, rng: &mut impl CryptoRng) -> Result<Keypair, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let text = Zeroizing::new(text);
            let mut seeds = Zeroizing::new([0u8; 64]);
            hex::decode_to_slice(text.trim(), seeds.as_mut())
                .map_err(|_| format!("{}: expected 64 bytes as hex", path.display()))?;
            Ok(Keypair::from_seeds(&seeds))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let keys = Keypair::generate(rng);
            write_secret(path, &Zeroizing::new(hex::encode(keys.to_seeds().as_ref())))?;
            Ok(keys)
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

fn write_secret(path: &Path, text: &str) -> Result<(), String> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}
