//! The transaction generator's pure half (paper's TG): from a signed initial transaction
//! and its template to the blockchain transaction's content — the commitment, the template
//! reference and the de-identified on-chain values. Choosing nonce, gas and fees, and
//! sending, is the relay's shell's job.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ids::{Commitment, TemplateRef, TxId};
use crate::record::SignedInitialTransaction;
use crate::template::{AttributeKind, Template};
use crate::value::Value;

/// The content of the paper's TC: what goes on chain for one record, and nothing more.
///
/// No names, no free text, no patient id: the random transaction id, the commitment, the
/// template reference and the integers of the template's on-chain attributes.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct BlockchainTransaction {
    /// The record's random transaction id.
    pub tid: TxId,
    /// keccak256 commitment of the signed TI.
    pub commitment: Commitment,
    /// Template and version.
    pub template: TemplateRef,
    /// The on-chain attribute values, in template order: integers as their fixed-point
    /// mantissa, enums as the index of the value, booleans as 0 or 1.
    pub values: Vec<i64>,
}

/// Builds the blockchain transaction for `signed` under `template`.
///
/// Refuses a record of another template or version ([`Error::TemplateMismatch`]) and a
/// record that breaks any rule ([`Error::Rules`], listing every violation). The signature
/// is *not* checked here; [`crate::record::SealedTransaction::open`] does that.
pub fn generate(
    signed: &SignedInitialTransaction,
    template: &Template,
) -> Result<BlockchainTransaction> {
    let ti = signed.ti();
    let expected = template.reference();
    if ti.template != expected {
        return Err(Error::TemplateMismatch {
            got: ti.template.to_string(),
            expected: expected.to_string(),
        });
    }
    template.check(&ti.attributes).map_err(Error::Rules)?;
    let values = on_chain_values(signed, template)?;
    Ok(BlockchainTransaction {
        tid: ti.tid,
        commitment: signed.commitment(),
        template: expected,
        values,
    })
}

/// The on-chain integers of a record that already passed the rules.
fn on_chain_values(signed: &SignedInitialTransaction, template: &Template) -> Result<Vec<i64>> {
    let attrs = &signed.ti().attributes;
    template
        .on_chain_attributes()
        .map(|spec| {
            let value = attrs.get(&spec.name);
            match (&spec.kind, value) {
                (AttributeKind::Integer { .. }, Some(Value::Integer(v))) => Ok(*v),
                (AttributeKind::Boolean, Some(Value::Boolean(b))) => Ok(i64::from(*b)),
                (AttributeKind::Enum { values }, Some(Value::Enum(s))) => values
                    .iter()
                    .position(|v| v == s)
                    .map(|i| i as i64)
                    .ok_or_else(|| Error::invalid("record", "enum value not allowed")),
                _ => Err(Error::invalid(
                    "record",
                    format!("on-chain attribute {} is missing or mistyped", spec.name),
                )),
            }
        })
        .collect()
}
