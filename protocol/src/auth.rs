//! Sign-in: the message a user signs to answer the relay's challenge.
//!
//! The relay hands out a random 32-byte challenge for a user id; the user's browser signs
//! `tag("mediblock/sign-in/v1") ‖ challenge ‖ str(uid)` with the enrolled ed25519 key. The
//! tag keeps the signature from ever passing as a record signature, and the uid binds it to
//! one account.

use crate::encoding::{Canonical, Writer};
use crate::ids::UserId;

/// Tag of the sign-in message.
pub const TAG_SIGN_IN: &str = "mediblock/sign-in/v1";

/// The exact bytes signed to answer a sign-in challenge.
pub fn sign_in_message(challenge: &[u8; 32], uid: &UserId) -> Vec<u8> {
    let mut w = Writer::new();
    w.tag(TAG_SIGN_IN);
    w.fixed(challenge);
    uid.encode(&mut w);
    w.into_bytes()
}
