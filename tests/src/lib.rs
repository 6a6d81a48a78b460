//! Shared helpers for MediBlock's end-to-end tests (started anvil nodes, relays, databases).
//!
//! - [`anvil`]: a real local chain per test, on a free port, killed on drop.
//! - [`registry`]: the registry contract from Rust — bindings from the committed artifacts,
//!   packed anchoring calldata, the relay's EIP-712 co-signature, event decoding.
//! - [`fixture`]: a deployed registry with a relay, a wallet and a template, for tests.

use std::path::{Path, PathBuf};

pub mod fixture;

/// The relay's anvil harness (also what `mediblock serve` starts for the embedded default).
pub use mediblock_relay::chain::anvil;
/// The registry's Rust side, shared with the relay's anchoring worker.
pub use mediblock_relay::chain::registry;

/// The repository root (the workspace directory that holds `tests/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}
