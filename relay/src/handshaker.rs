//! The handshaker's decisions, without I/O: may this author submit this record under this
//! template, and what goes on chain? (The paper's transaction generator, after the relay has
//! opened the sealed TI and loaded the template.)

use mediblock_protocol::Error;
use mediblock_protocol::generator::{BlockchainTransaction, generate};
use mediblock_protocol::record::SignedInitialTransaction;
use mediblock_protocol::rules::Violation;
use mediblock_protocol::template::Template;

use crate::store::users::User;

/// Why the relay refuses a record it could open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The author's role may not submit this template.
    Forbidden(String),
    /// The record breaks its template's rules (every violation listed). Kept in the audit.
    Rules(Vec<Violation>),
    /// Anything else the protocol refuses (template mismatch, …).
    Protocol(Error),
}

/// Decides whether `author` may submit `signed` under `template` and builds its blockchain
/// transaction.
pub fn admit(
    signed: &SignedInitialTransaction,
    author: &User,
    template: &Template,
) -> Result<BlockchainTransaction, Refusal> {
    if author.revoked_at.is_some() {
        return Err(Refusal::Forbidden(format!(
            "user {} is revoked",
            author.uid
        )));
    }
    if signed.ti().uid != author.uid {
        return Err(Refusal::Forbidden(
            "a record must be signed by its submitter".into(),
        ));
    }
    if !template.allows(author.role) {
        return Err(Refusal::Forbidden(format!(
            "a {} may not submit {} records",
            author.role,
            template.reference()
        )));
    }
    generate(signed, template).map_err(|e| match e {
        Error::Rules(v) => Refusal::Rules(v),
        other => Refusal::Protocol(other),
    })
}
