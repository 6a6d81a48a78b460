//! The transaction generator's pure half (paper's TG): from a signed initial transaction
//! and its template to the blockchain transaction's content — the commitment, the template
//! reference and the de-identified on-chain values, and the values hash the registry logs
//! with its verdict. Choosing nonce, gas and fees, and sending, is the relay's shell's job.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::hash::Hash32;
use crate::ids::{Commitment, TemplateRef, TxId};
use crate::record::SignedInitialTransaction;
use crate::template::{AttributeKind, Template};
use crate::value::Value;

/// The content of the paper's TC: what goes on chain for one record, and nothing more.
///
/// No names, no free text, no patient id: the random transaction id, the commitment, the
/// template reference and the integers of the template's on-chain attributes.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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

impl BlockchainTransaction {
    /// [`values_hash`] of [`values`](Self::values): what the registry's `RecordAnchored`
    /// event carries as `valuesHash`.
    pub fn values_hash(&self) -> Hash32 {
        values_hash(&self.values)
    }
}

/// The registry's `valuesHash` of on-chain values: keccak256 of the values, each as 8 bytes
/// of big-endian two's complement, concatenated (`docs/PROTOCOL.md` §5, "Values hash").
/// No values hash to keccak256 of nothing.
///
/// These are the bytes the registry's calldata carries and its rules judge, so the hash in
/// its event binds the verdict to exactly these values.
pub fn values_hash(values: &[i64]) -> Hash32 {
    use sha3::Digest as _;
    let mut hasher = sha3::Keccak256::new();
    for v in values {
        hasher.update(v.to_be_bytes());
    }
    hasher.finalize().into()
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
    check_reference(signed, template)?;
    template.check(&ti.attributes).map_err(Error::Rules)?;
    let values = on_chain_values(signed, template)?;
    Ok(BlockchainTransaction {
        tid: ti.tid,
        commitment: signed.commitment(),
        template: template.reference(),
        values,
    })
}

/// The record names `template`'s id and version.
fn check_reference(signed: &SignedInitialTransaction, template: &Template) -> Result<()> {
    let got = &signed.ti().template;
    let expected = template.reference();
    if *got != expected {
        return Err(Error::TemplateMismatch {
            got: got.to_string(),
            expected: expected.to_string(),
        });
    }
    Ok(())
}

/// The on-chain integers of `signed` under `template`, in on-chain order, **without** the
/// template's rules: a verifier computes them for a record the chain rejected too, since
/// the registry's `valuesHash` covers the values it judged, whatever its verdict.
///
/// Refuses a record of another template or version ([`Error::TemplateMismatch`]) and one
/// whose on-chain attribute is missing, of another kind, or an enum value the template's
/// list does not hold ([`Error::Invalid`]): for those no on-chain values exist. Range
/// rules (`min`, `max`) are not checked, nor is the signature.
pub fn on_chain_values(signed: &SignedInitialTransaction, template: &Template) -> Result<Vec<i64>> {
    check_reference(signed, template)?;
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
                    .ok_or_else(|| {
                        Error::invalid(
                            "record",
                            format!(
                                "on-chain attribute {}: enum value {s:?} is not in the template",
                                spec.name
                            ),
                        )
                    }),
                _ => Err(Error::invalid(
                    "record",
                    format!("on-chain attribute {} is missing or mistyped", spec.name),
                )),
            }
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::hash::keccak256;
    use crate::ids::{AttrName, PatientId, Salt, TemplateVersion, UnixMillis, UserId};
    use crate::keys::Keypair;
    use crate::record::InitialTransaction;
    use crate::template::{AttributeSpec, TemplateSpec};
    use crate::value::Attributes;

    fn spec(name: &str, kind: AttributeKind, on_chain: bool) -> AttributeSpec {
        AttributeSpec {
            name: AttrName::new(name).unwrap(),
            label: name.into(),
            kind,
            unit: None,
            required: on_chain,
            on_chain,
        }
    }

    /// pain (0..=10), colour (an enum), conscious (a boolean) on chain; notes off chain.
    fn template() -> Template {
        Template::new(TemplateSpec {
            id: "triage-note".parse().unwrap(),
            version: TemplateVersion::new(2).unwrap(),
            title: "Triage note".into(),
            attributes: vec![
                spec(
                    "pain",
                    AttributeKind::Integer {
                        scale: 0,
                        min: Some(0),
                        max: Some(10),
                    },
                    true,
                ),
                spec(
                    "colour",
                    AttributeKind::Enum {
                        values: vec!["green".into(), "yellow".into(), "red".into()],
                    },
                    true,
                ),
                spec("conscious", AttributeKind::Boolean, true),
                spec("notes", AttributeKind::Text { max_len: 100 }, false),
            ],
            roles: [crate::ids::Role::Nurse].into_iter().collect(),
        })
        .unwrap()
    }

    fn record(attrs: &[(&str, Value)], version: u32) -> SignedInitialTransaction {
        let attributes: Attributes = attrs
            .iter()
            .map(|(n, v)| (AttrName::new(*n).unwrap(), v.clone()))
            .collect();
        InitialTransaction {
            tid: TxId::from_bytes([1; 16]),
            uid: UserId::new("nurse.bo").unwrap(),
            pid: PatientId::from_bytes([2; 16]),
            template: TemplateRef {
                id: "triage-note".parse().unwrap(),
                version: TemplateVersion::new(version).unwrap(),
            },
            attributes,
            created_at: UnixMillis(0),
            salt: Salt::from_bytes([3; 32]),
            prev: None,
        }
        .sign(&Keypair::from_seeds(&[4; 64]))
    }

    fn good() -> Vec<(&'static str, Value)> {
        vec![
            ("pain", Value::Integer(7)),
            ("colour", Value::Enum("red".into())),
            ("conscious", Value::Boolean(true)),
            ("notes", Value::Text("calm".into())),
        ]
    }

    #[test]
    fn values_hash_is_keccak_of_big_endian_words() {
        assert_eq!(values_hash(&[]), keccak256(b""));
        let mut bytes = Vec::new();
        for v in [7i64, -1, i64::MIN, i64::MAX] {
            bytes.extend_from_slice(&v.to_be_bytes());
        }
        assert_eq!(bytes.len(), 32);
        assert_eq!(&bytes[8..16], &[0xff; 8]);
        assert_eq!(values_hash(&[7, -1, i64::MIN, i64::MAX]), keccak256(&bytes));
        assert_ne!(values_hash(&[0]), values_hash(&[]), "a zero word counts");
        assert_ne!(values_hash(&[1, 2]), values_hash(&[2, 1]), "order counts");
    }

    #[test]
    fn the_transaction_hashes_its_values() {
        let tc = generate(&record(&good(), 2), &template()).unwrap();
        assert_eq!(tc.values, vec![7, 2, 1]);
        assert_eq!(tc.values_hash(), values_hash(&[7, 2, 1]));
    }

    #[test]
    fn on_chain_values_ignore_the_range_rules() {
        let mut attrs = good();
        attrs[0].1 = Value::Integer(11);
        let signed = record(&attrs, 2);
        assert_eq!(
            generate(&signed, &template()).unwrap_err().code(),
            "rule_violation"
        );
        assert_eq!(
            on_chain_values(&signed, &template()).unwrap(),
            vec![11, 2, 1]
        );
        // An off-chain attribute may be missing or unknown: the values do not depend on it.
        let signed = record(&good()[..3], 2);
        assert_eq!(
            on_chain_values(&signed, &template()).unwrap(),
            vec![7, 2, 1]
        );
    }

    #[test]
    fn on_chain_values_need_every_on_chain_attribute_of_its_kind() {
        let err = on_chain_values(&record(&good(), 1), &template()).unwrap_err();
        assert_eq!(
            err,
            Error::TemplateMismatch {
                got: "triage-note@1".into(),
                expected: "triage-note@2".into()
            }
        );
        let cases: [(&str, Vec<(&str, Value)>); 3] = [
            ("missing", good()[1..].to_vec()),
            ("mistyped", {
                let mut a = good();
                a[2].1 = Value::Integer(1);
                a
            }),
            ("enum value not in the list", {
                let mut a = good();
                a[1].1 = Value::Enum("purple".into());
                a
            }),
        ];
        for (what, attrs) in cases {
            let err = on_chain_values(&record(&attrs, 2), &template()).unwrap_err();
            assert_eq!(err.code(), "invalid_input", "{what}: {err}");
        }
    }

    #[test]
    fn json_refuses_unknown_fields() {
        let tc = generate(&record(&good(), 2), &template()).unwrap();
        let mut json = serde_json::to_value(&tc).unwrap();
        assert_eq!(
            serde_json::from_value::<BlockchainTransaction>(json.clone()).unwrap(),
            tc
        );
        json["extra"] = serde_json::json!(1);
        assert!(serde_json::from_value::<BlockchainTransaction>(json).is_err());
    }
}
