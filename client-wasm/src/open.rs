//! Opening a record the relay returns (`GET /api/v1/patients/{pid}/records`): check the
//! author's signature and the commitment in the browser, so a database or relay that
//! changed a record is caught here, and compute what the chain must have judged for it —
//! the hash of its on-chain values under its template, and that template's id, version and
//! hash. (The anchor itself, and that its verdict is about these values, is checked by
//! `verifyOnChain`.)

use mediblock_protocol::generator::{on_chain_values, values_hash};
use mediblock_protocol::ids::Commitment;
use mediblock_protocol::keys::PublicKeys;
use mediblock_protocol::template::{AttributeKind, Template};
use mediblock_protocol::validated::{ValidatedTransaction, Verdict};
use mediblock_protocol::value::{Value, format_fixed};
use serde::Deserialize;
use serde_json::{Map, json};
use wasm_bindgen::prelude::*;

use crate::error::Result;
use crate::js::{from_js, to_js};

/// One element of `GET /api/v1/patients/{pid}/records`.
#[derive(Clone, Debug, Deserialize)]
pub struct RecordRow {
    /// Transaction id, as the row claims it.
    pub tid: String,
    /// Leaf index in the log.
    #[serde(default)]
    pub leaf_index: Option<u64>,
    /// Commitment, as the row claims it.
    pub commitment: String,
    /// The decrypted validated transaction, absent when the row does not open.
    #[serde(default)]
    pub validated: Option<ValidatedTransaction>,
    /// Why the row does not open.
    #[serde(default)]
    pub problem: Option<String>,
}

fn value_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Integer(i) => json!(i),
        Value::Text(s) | Value::Enum(s) => json!(s),
        Value::Date(d) => json!(d.to_string()),
        Value::Boolean(b) => json!(b),
    }
}

/// A value as a person reads it: fixed-point numbers as decimals with their unit, booleans
/// as yes/no.
pub fn display_value(v: &Value, kind: Option<&AttributeKind>, unit: Option<&str>) -> String {
    let text = match (v, kind) {
        (Value::Integer(i), Some(AttributeKind::Integer { scale, .. })) => format_fixed(*i, *scale),
        (Value::Integer(i), _) => i.to_string(),
        (Value::Text(s) | Value::Enum(s), _) => s.clone(),
        (Value::Date(d), _) => d.to_string(),
        (Value::Boolean(true), _) => "yes".into(),
        (Value::Boolean(false), _) => "no".into(),
    };
    match (unit, v) {
        (Some(u), Value::Integer(_)) => format!("{text} {u}"),
        _ => text,
    }
}

/// Checks one record row against its author's keys (and formats it with `template` when
/// given). Returns the `OpenedRecord` object of the JS API.
pub fn open_row(
    row: &RecordRow,
    author: &PublicKeys,
    template: Option<&Template>,
) -> serde_json::Value {
    let Some(v) = &row.validated else {
        return json!({
            "tid": row.tid, "pid": null, "uid": null, "template": null, "version": null,
            "timestamp": null, "values": {}, "previous": null, "commitment": row.commitment,
            "leafIndex": row.leaf_index, "signatureOk": false, "commitmentOk": false,
            "problem": row.problem.clone().unwrap_or_else(|| "does_not_open".into()),
            "verdict": null, "ack": null, "valuesHash": null, "templateHash": null,
            "templateChainId": null, "templateVersion": null,
        });
    };
    let ti = v.signed.ti();
    let signature_ok = v.signed.verify(author).is_ok();
    let computed = v.signed.commitment();
    let claimed: Option<Commitment> = row.commitment.parse().ok();
    let commitment_ok = claimed == Some(computed);
    let template = template.filter(|t| t.reference() == ti.template);
    // What the chain must have judged: the record's own on-chain values under its template
    // (without the rules, since the chain may have rejected them). A signed record whose
    // values cannot be computed under its template was never anchored as signed.
    let on_chain = template.map(|t| on_chain_values(&v.signed, t).map(|values| (t, values)));
    let values_problem = match &on_chain {
        Some(Err(e)) => Some(crate::error::capitalise(&e.to_string())),
        _ => None,
    };
    let problem = row.problem.clone().or_else(|| {
        if ti.tid.to_hex() != row.tid.to_ascii_lowercase() {
            Some("tid_mismatch".into())
        } else if !signature_ok {
            Some("signature_invalid".into())
        } else if !commitment_ok {
            Some("commitment_mismatch".into())
        } else if values_problem.is_some() {
            Some("no_on_chain_values".into())
        } else {
            None
        }
    });
    let mut values = Map::new();
    let mut display = Map::new();
    for (name, value) in ti.attributes.iter() {
        values.insert(name.to_string(), value_json(value));
        let spec = template.and_then(|t| t.attributes().iter().find(|a| &a.name == name));
        display.insert(
            name.to_string(),
            json!(display_value(
                value,
                spec.map(|s| &s.kind),
                spec.and_then(|s| s.unit.as_deref())
            )),
        );
    }
    let ack = &v.ack;
    let (verdict, rejected) = match ack.verdict {
        Verdict::Valid => ("valid", None),
        Verdict::Rejected { attribute_index } => ("rejected", Some(attribute_index)),
    };
    let mut out = json!({
        "tid": ti.tid,
        "pid": ti.pid,
        "uid": ti.uid,
        "template": ti.template.id,
        "version": ti.template.version.get(),
        "timestamp": ti.created_at.0,
        "values": values,
        "display": display,
        "previous": ti.prev,
        "commitment": computed,
        "leafIndex": row.leaf_index,
        "signatureOk": signature_ok,
        "commitmentOk": commitment_ok,
        "problem": problem,
        "verdict": verdict,
        "ack": {
            "chainId": ack.chain_id,
            "contract": format!("0x{}", ack.contract.to_hex()),
            "txHash": format!("0x{}", ack.tx_hash.to_hex()),
            "blockNumber": ack.block_number,
            "blockHash": format!("0x{}", ack.block_hash.to_hex()),
            "logIndex": ack.log_index,
            "batch": ack.batch.is_some(),
        },
    });
    if let Some(index) = rejected {
        out["rejectedAttribute"] = json!(index);
    }
    let (values_hash, template_hash, template_chain_id, template_version) = match &on_chain {
        Some(Ok((t, values))) => (
            json!(hex::encode(values_hash(values))),
            json!(hex::encode(t.hash())),
            json!(hex::encode(ti.template.id.chain_id())),
            json!(ti.template.version.get()),
        ),
        _ => (json!(null), json!(null), json!(null), json!(null)),
    };
    out["valuesHash"] = values_hash;
    out["templateHash"] = template_hash;
    out["templateChainId"] = template_chain_id;
    out["templateVersion"] = template_version;
    if let Some(why) = values_problem {
        out["valuesProblem"] = json!(why);
    }
    out
}

/// `openRecord(record, author, template?)`: decrypted by the relay, checked here — the
/// author's signature (`signatureOk`), the commitment the row claims against the one
/// recomputed from the signed content (`commitmentOk`), and the tid. `author` is
/// `{ ed25519, x25519 }` (hex). With the record's template, `display` holds the values as a
/// person reads them (`36.6 °C`); `values` always holds the raw typed values (fixed-point
/// numbers as their integer mantissa).
///
/// With the record's template (the one the record names; another is ignored), it also
/// gives what `verifyOnChain` binds the chain's verdict to: `valuesHash` (hex `values_hash`
/// of the record's on-chain values, `protocol::generator::on_chain_values`), `templateHash`
/// (keccak256 of the canonical template), `templateChainId` (keccak256 of its id) and
/// `templateVersion`; these are `null` without the template. When the on-chain values
/// cannot be computed (an on-chain attribute missing or of another kind), `problem` is
/// `no_on_chain_values` and `valuesProblem` says why.
#[wasm_bindgen(js_name = openRecord)]
pub fn open_record(record: JsValue, author: JsValue, template: Option<JsValue>) -> Result<JsValue> {
    let row: RecordRow = from_js(record, "The record")?;
    let author: PublicKeys = from_js(author, "The author's public keys")?;
    let template: Option<Template> = match template {
        Some(t) if t.is_object() => Some(from_js(t, "The template")?),
        _ => None,
    };
    to_js(&open_row(&row, &author, template.as_ref()))
}
