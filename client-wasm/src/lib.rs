//! MediBlock's browser client, compiled to WebAssembly: the clinician's keys and their
//! passphrase-encrypted keystore, the enrolment request and sign-in, building and sealing
//! initial transactions with every rule checked first, talking to the relay, opening and
//! checking the records it returns (signature, commitment, and the anchor on chain itself),
//! and the wallet path (EIP-1193).
//!
//! Everything about formats and cryptography is `mediblock-protocol`'s; this crate is the
//! browser's shell around it. The JavaScript API (names, shapes, error codes) is the
//! contract with `web/`:
//!
//! - [`identity::Identity`] (`generate`, `fromKeystore`, `toKeystore`, `uid`, `publicKeys`,
//!   `enrolmentRequest`, `signIn`, `seal`), `saveKeystore`, `loadKeystore`;
//! - `checkForm` ([`form`]), `openRecord` ([`open`]), `verifyOnChain` ([`chain`]);
//! - `api`, `followStatus` ([`net`]);
//! - `connectWallet`, `walletSummary`, `sendWalletTransaction` ([`wallet`]);
//! - `templateHash`.
//!
//! Every function that fails throws an `Error` with a readable `message` and a stable
//! `code` ([`error::ClientError`]).

pub mod chain;
pub mod error;
pub mod form;
pub mod identity;
mod js;
pub mod keystore;
pub mod net;
pub mod open;
pub mod wallet;

use mediblock_protocol::template::Template;
use wasm_bindgen::prelude::*;

pub use error::{ClientError, ViolationView};
pub use identity::Identity;

/// The keccak256 hash of a template given as JSON, as lowercase hex; the error names the
/// first invariant the template breaks.
#[wasm_bindgen(js_name = templateHash)]
pub fn template_hash(template_json: &str) -> Result<String, ClientError> {
    let template: Template = serde_json::from_str(template_json)
        .map_err(|e| ClientError::invalid(format!("The template is not valid: {e}.")))?;
    Ok(hex::encode(template.hash()))
}
