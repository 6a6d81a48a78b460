//! Writes the golden vectors under `protocol/testdata/` (records, envelopes, templates, values).
//!
//! Everything is derived from fixed seeds, so running it again reproduces the committed
//! files byte for byte; `tests/vectors.rs` checks each vector independently of this program.
//! Run: `cargo run -p mediblock-protocol --example gen_vectors`.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::collections::BTreeMap;
use std::path::Path;

use mediblock_protocol::encoding::Canonical;
use mediblock_protocol::envelope::Envelope;
use mediblock_protocol::generator::{on_chain_values, values_hash};
use mediblock_protocol::ids::{
    AttrName, PatientId, Salt, TemplateRef, TemplateVersion, TxId, UnixMillis, UserId,
};
use mediblock_protocol::keys::{Keypair, Purpose};
use mediblock_protocol::record::{InitialTransaction, SignedInitialTransaction};
use mediblock_protocol::template::Template;
use mediblock_protocol::value::{Attributes, Value};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::{Value as Json, json};

fn seeds(byte: u8) -> [u8; 64] {
    let mut s = [0u8; 64];
    for (i, b) in s.iter_mut().enumerate() {
        *b = byte.wrapping_add(i as u8);
    }
    s
}

fn template_json() -> Json {
    json!({
        "id": "vital-signs",
        "version": 1,
        "title": "Vital signs",
        "attributes": [
            {"name": "heart_rate", "label": "Heart rate", "kind": {"type": "integer", "scale": 0, "min": 20, "max": 250}, "unit": "bpm", "required": true, "on_chain": true},
            {"name": "systolic", "label": "Systolic blood pressure", "kind": {"type": "integer", "scale": 0, "min": 50, "max": 260}, "unit": "mmHg", "required": true, "on_chain": true},
            {"name": "temperature", "label": "Body temperature", "kind": {"type": "integer", "scale": 1, "min": 300, "max": 450}, "unit": "°C", "required": true, "on_chain": true},
            {"name": "triage", "label": "Triage colour", "kind": {"type": "enum", "values": ["green", "yellow", "red"]}, "required": false, "on_chain": false},
            {"name": "smoker", "label": "Smoker", "kind": {"type": "boolean"}},
            {"name": "measured_on", "label": "Measured on", "kind": {"type": "date", "min": "2000-01-01"}},
            {"name": "notes", "label": "Notes", "kind": {"type": "text", "max_len": 200}}
        ],
        "roles": ["doctor", "nurse"]
    })
}

fn sample_ti(rng: &mut ChaCha20Rng, prev: bool) -> InitialTransaction {
    let name = |s: &str| AttrName::new(s).unwrap();
    let attributes: Attributes = [
        (name("heart_rate"), Value::Integer(72)),
        (name("systolic"), Value::Integer(128)),
        (name("temperature"), Value::Integer(366)),
        (name("triage"), Value::Enum("yellow".into())),
        (name("smoker"), Value::Boolean(false)),
        (
            name("measured_on"),
            Value::Date("2026-11-24".parse().unwrap()),
        ),
        (
            name("notes"),
            Value::Text("Patient rested, pulse steady. Café.".into()),
        ),
    ]
    .into_iter()
    .collect();
    InitialTransaction {
        tid: TxId::for_ticket(1, rng),
        uid: UserId::new("dr.ada").unwrap(),
        pid: PatientId::random(rng),
        template: TemplateRef {
            id: "vital-signs".parse().unwrap(),
            version: TemplateVersion::new(1).unwrap(),
        },
        attributes,
        created_at: UnixMillis(1_795_996_800_000),
        salt: Salt::random(rng),
        prev: prev.then(|| mediblock_protocol::ids::Commitment::from_bytes([0xab; 32])),
    }
}

fn flip(bytes: &[u8], index: usize) -> String {
    let mut b = bytes.to_vec();
    b[index] ^= 0x01;
    hex::encode(b)
}

fn records() -> Json {
    let mut rng = ChaCha20Rng::from_seed([42; 32]);
    let author = Keypair::from_seeds(&seeds(1));
    let other = Keypair::from_seeds(&seeds(2));
    let mut vectors = Vec::new();
    for (name, prev) in [
        ("first record of a patient", false),
        ("record with a previous record", true),
    ] {
        let ti = sample_ti(&mut rng, prev);
        let signed = ti.clone().sign(&author);
        let bytes = signed.to_canonical_bytes();
        let sig_off = bytes.len() - 64;
        let body_len = sig_off;
        let mut trailing = bytes.clone();
        trailing.push(0);
        let mut altered_ti = ti.clone();
        altered_ti
            .attributes
            .insert(AttrName::new("heart_rate").unwrap(), Value::Integer(73));
        let forged = SignedInitialTransaction::from_parts(altered_ti, *signed.signature());
        let mut b = bytes.clone();
        b[body_len - if prev { 33 } else { 1 }] = 2;
        let bad_option = hex::encode(b);
        let attacks = json!([
            {"name": "flipped bit in signature", "signed_hex": flip(&bytes, sig_off + 5), "error": "signature_invalid"},
            {"name": "flipped bit in body", "signed_hex": flip(&bytes, body_len - 40), "error": "signature_invalid"},
            {"name": "value changed after signing", "signed_hex": hex::encode(forged.to_canonical_bytes()), "error": "signature_invalid"},
            {"name": "verified with the wrong key", "signed_hex": hex::encode(&bytes), "signer_seeds_hex": hex::encode(seeds(2)), "error": "signature_invalid"},
            {"name": "truncated signature", "signed_hex": hex::encode(&bytes[..bytes.len() - 1]), "error": "malformed", "decode": "unexpected_end"},
            {"name": "trailing byte", "signed_hex": hex::encode(&trailing), "error": "malformed", "decode": "trailing_bytes"},
            {"name": "wrong domain tag", "signed_hex": flip(&bytes, 6), "error": "malformed", "decode": "wrong_tag"},
            {"name": "option flag 2", "signed_hex": bad_option, "error": "malformed", "decode": "unknown_discriminant"}
        ]);
        let _ = other.public();
        vectors.push(json!({
            "name": name,
            "signer_seeds_hex": hex::encode(seeds(1)),
            "signer_public": author.public(),
            "ti": ti,
            "ti_canonical_hex": hex::encode(ti.to_canonical_bytes()),
            "signing_message_hex": hex::encode(ti.signing_message()),
            "signature_hex": hex::encode(signed.signature()),
            "signed_canonical_hex": hex::encode(&bytes),
            "commitment_hex": signed.commitment().to_hex(),
            "attacks": attacks,
        }));
    }
    json!({"description": "Initial transactions: canonical encoding, ed25519 signature (verify_strict) and keccak256 commitment. Attacks must fail with the named error code.", "vectors": vectors})
}

fn envelopes() -> Json {
    let user = Keypair::from_seeds(&seeds(1));
    let relay = Keypair::from_seeds(&seeds(3));
    let stranger = Keypair::from_seeds(&seeds(4));
    let mut vectors = Vec::new();
    for (purpose, rng_seed, context, plaintext) in [
        (
            Purpose::UserRelay,
            7u8,
            b"tid+uid".to_vec(),
            b"a sealed initial transaction".to_vec(),
        ),
        (
            Purpose::RelayStore,
            8u8,
            vec![0u8; 16],
            b"{\"validated\":true}".to_vec(),
        ),
    ] {
        let key = user.agree(&relay.public(), purpose).unwrap();
        let mut rng = ChaCha20Rng::from_seed([rng_seed; 32]);
        let env = Envelope::seal(&key, &context, &plaintext, &mut rng).unwrap();
        let bytes = env.to_canonical_bytes();
        let mut trailing = bytes.clone();
        trailing.push(0);
        let mut bad_version = bytes.clone();
        bad_version[0] = 2;
        let mut b = bytes.clone();
        b[1] = if purpose == Purpose::UserRelay { 2 } else { 1 };
        let other_purpose = hex::encode(b);
        let attacks = json!([
            {"name": "flipped bit in ciphertext", "envelope_hex": flip(&bytes, 30), "error": "decrypt_failed"},
            {"name": "flipped bit in tag", "envelope_hex": flip(&bytes, bytes.len() - 1), "error": "decrypt_failed"},
            {"name": "flipped bit in nonce", "envelope_hex": flip(&bytes, 12), "error": "decrypt_failed"},
            {"name": "flipped bit in key id", "envelope_hex": flip(&bytes, 3), "error": "decrypt_failed"},
            {"name": "other purpose byte", "envelope_hex": other_purpose, "error": "decrypt_failed"},
            {"name": "wrong context", "envelope_hex": hex::encode(&bytes), "context_hex": hex::encode(b"other"), "error": "decrypt_failed"},
            {"name": "wrong key (a stranger's agreement)", "envelope_hex": hex::encode(&bytes), "stranger_seeds_hex": hex::encode(seeds(4)), "error": "decrypt_failed"},
            {"name": "truncated", "envelope_hex": hex::encode(&bytes[..bytes.len() - 1]), "error": "malformed", "decode": "unexpected_end"},
            {"name": "trailing byte", "envelope_hex": hex::encode(&trailing), "error": "malformed", "decode": "trailing_bytes"},
            {"name": "unknown version", "envelope_hex": hex::encode(&bad_version), "error": "malformed", "decode": "unknown_discriminant"}
        ]);
        let _ = stranger.public();
        vectors.push(json!({
            "purpose": purpose,
            "user_seeds_hex": hex::encode(seeds(1)),
            "relay_seeds_hex": hex::encode(seeds(3)),
            "key_id_hex": key.id().to_hex(),
            "rng_seed_byte": rng_seed,
            "context_hex": hex::encode(&context),
            "plaintext_hex": hex::encode(&plaintext),
            "envelope_hex": hex::encode(&bytes),
            "attacks": attacks,
        }));
    }
    json!({"description": "X25519 + HKDF-SHA256 key agreement and the AES-256-GCM envelope. The nonce comes from ChaCha20Rng seeded with 32 copies of rng_seed_byte. Attacks must fail with the named error code.", "vectors": vectors})
}

fn templates() -> Json {
    let spec = template_json();
    let template: Template = serde_json::from_value(spec.clone()).unwrap();
    let with = |path: &[&str], v: Json| -> Json {
        let mut t = spec.clone();
        let mut cur = &mut t;
        for p in &path[..path.len() - 1] {
            cur = match p.parse::<usize>() {
                Ok(i) => &mut cur[i],
                Err(_) => &mut cur[*p],
            };
        }
        cur[path[path.len() - 1]] = v;
        t
    };
    let invalid = json!([
        {"name": "text on chain", "template": with(&["attributes", "6", "on_chain"], json!(true)), "error": "invalid_input"},
        {"name": "optional on-chain attribute", "template": with(&["attributes", "0", "required"], json!(false)), "error": "invalid_input"},
        {"name": "min above max", "template": with(&["attributes", "0", "kind", "min"], json!(300)), "error": "invalid_input"},
        {"name": "no roles", "template": with(&["roles"], json!([])), "error": "invalid_input"},
        {"name": "duplicate attribute", "template": with(&["attributes", "1", "name"], json!("heart_rate")), "error": "invalid_input"},
        {"name": "duplicate enum value", "template": with(&["attributes", "3", "kind", "values"], json!(["red", "red"])), "error": "invalid_input"},
        {"name": "version zero", "template": with(&["version"], json!(0)), "error": "invalid_input"},
        {"name": "scale too large", "template": with(&["attributes", "2", "kind", "scale"], json!(10)), "error": "invalid_input"}
    ]);
    let form = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let mut checks = Vec::new();
    for (name, fields) in [
        (
            "all fine",
            form(&[
                ("heart_rate", "72"),
                ("systolic", "120"),
                ("temperature", "36.6"),
                ("triage", "green"),
                ("smoker", "no"),
            ]),
        ),
        (
            "every kind of violation",
            form(&[
                ("heart_rate", "300"),
                ("temperature", "36.66"),
                ("triage", "purple"),
                ("smoker", "maybe"),
                ("measured_on", "1999-12-31"),
                ("notes", &"x".repeat(201)),
                ("weight", "80"),
            ]),
        ),
        (
            "below minimum and a missing field",
            form(&[("heart_rate", "10"), ("temperature", "29.9")]),
        ),
    ] {
        let result = template.map_form(&fields);
        checks.push(match result {
            Ok(attrs) => {
                json!({"name": name, "form": fields, "attributes": attrs, "violations": []})
            }
            Err(v) => json!({"name": name, "form": fields, "violations": v}),
        });
    }
    json!({
        "description": "Templates: JSON form, canonical encoding, keccak256 hash, invalid templates, and form mapping with every rule violation reported.",
        "template": spec,
        "canonical_hex": hex::encode(template.to_canonical_bytes()),
        "hash_hex": hex::encode(template.hash()),
        "chain_id_hex": hex::encode(template.reference().id.chain_id()),
        "invalid": invalid,
        "form_checks": checks,
    })
}

/// A template with every kind of on-chain attribute, a negative bound and an off-chain one.
fn triage_template_json() -> Json {
    json!({
        "id": "triage-note",
        "version": 2,
        "title": "Triage note",
        "attributes": [
            {"name": "pain", "label": "Pain score", "kind": {"type": "integer", "scale": 0, "min": 0, "max": 10}, "required": true, "on_chain": true},
            {"name": "base_excess", "label": "Base excess", "kind": {"type": "integer", "scale": 0, "min": -30, "max": 30}, "unit": "mmol/L", "required": true, "on_chain": true},
            {"name": "temperature", "label": "Body temperature", "kind": {"type": "integer", "scale": 1, "min": 300, "max": 450}, "unit": "°C", "required": true, "on_chain": true},
            {"name": "colour", "label": "Triage colour", "kind": {"type": "enum", "values": ["green", "yellow", "red"]}, "required": true, "on_chain": true},
            {"name": "conscious", "label": "Conscious", "kind": {"type": "boolean"}, "required": true, "on_chain": true},
            {"name": "notes", "label": "Notes", "kind": {"type": "text", "max_len": 200}}
        ],
        "roles": ["doctor", "nurse"]
    })
}

/// Decimal strings: an i64 may exceed JavaScript's safe integers.
fn decimal(values: &[i64]) -> Json {
    json!(values.iter().map(i64::to_string).collect::<Vec<_>>())
}

fn words(values: &[i64]) -> String {
    hex::encode(
        values
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect::<Vec<_>>(),
    )
}

fn values() -> Json {
    let spec = triage_template_json();
    let template: Template = serde_json::from_value(spec.clone()).unwrap();
    let author = Keypair::from_seeds(&seeds(1));
    let mut rng = ChaCha20Rng::from_seed([43; 32]);
    let name = |s: &str| AttrName::new(s).unwrap();
    let base: Attributes = [
        (name("pain"), Value::Integer(7)),
        (name("base_excess"), Value::Integer(-4)),
        (name("temperature"), Value::Integer(366)),
        (name("colour"), Value::Enum("red".into())),
        (name("conscious"), Value::Boolean(true)),
        (
            name("notes"),
            Value::Text("Alert, pain in the left knee.".into()),
        ),
    ]
    .into_iter()
    .collect();
    let mut record = |attrs: Attributes, version: u32| {
        InitialTransaction {
            tid: TxId::for_ticket(5, &mut rng),
            uid: UserId::new("nurse.bo").unwrap(),
            pid: PatientId::random(&mut rng),
            template: TemplateRef {
                id: "triage-note".parse().unwrap(),
                version: TemplateVersion::new(version).unwrap(),
            },
            attributes: attrs,
            created_at: UnixMillis(1_795_996_800_000),
            salt: Salt::random(&mut rng),
            prev: None,
        }
        .sign(&author)
    };
    // The base record with some attributes replaced (`Some`) or left out (`None`).
    let with = |changes: &[(&str, Option<Value>)]| -> Attributes {
        let changed = |n: &AttrName| changes.iter().find(|(c, _)| *c == n.as_str());
        base.iter()
            .filter_map(|(n, v)| match changed(n) {
                Some((_, Some(new))) => Some((n.clone(), new.clone())),
                Some((_, None)) => None,
                None => Some((n.clone(), v.clone())),
            })
            .collect()
    };
    let mut records = Vec::new();
    for (what, attrs) in [
        ("a record that passes its rules", base.clone()),
        (
            "a record that breaks a range rule (pain 11 > 10): the chain rejects it, and its values still hash",
            with(&[("pain", Some(Value::Integer(11)))]),
        ),
        (
            "a record without its off-chain attribute",
            with(&[("notes", None)]),
        ),
    ] {
        let signed = record(attrs, 2);
        let values = on_chain_values(&signed, &template).unwrap();
        records.push(json!({
            "name": what,
            "signed_canonical_hex": hex::encode(signed.to_canonical_bytes()),
            "passes_rules": template.check(&signed.ti().attributes).is_ok(),
            "on_chain_values": decimal(&values),
            "values_bytes_hex": words(&values),
            "values_hash_hex": hex::encode(values_hash(&values)),
        }));
    }
    let mut attacks = Vec::new();
    for (what, signed, error) in [
        (
            "a record of another version of the template",
            record(base.clone(), 1),
            "template_mismatch",
        ),
        (
            "an on-chain attribute missing",
            record(with(&[("conscious", None)]), 2),
            "invalid_input",
        ),
        (
            "an on-chain attribute of another kind",
            record(with(&[("conscious", Some(Value::Integer(1)))]), 2),
            "invalid_input",
        ),
        (
            "an enum value the template does not list",
            record(with(&[("colour", Some(Value::Enum("purple".into())))]), 2),
            "invalid_input",
        ),
    ] {
        assert_eq!(
            on_chain_values(&signed, &template).unwrap_err().code(),
            error,
            "{what}"
        );
        attacks.push(json!({
            "name": what,
            "signed_canonical_hex": hex::encode(signed.to_canonical_bytes()),
            "error": error,
        }));
    }
    let hashes: Vec<Json> = [
        ("no values", vec![]),
        ("one zero", vec![0]),
        (
            "minus one, the smallest and the largest i64",
            vec![-1, i64::MIN, i64::MAX],
        ),
    ]
    .into_iter()
    .map(|(what, values)| {
        json!({
            "name": what,
            "values": decimal(&values),
            "values_bytes_hex": words(&values),
            "values_hash_hex": hex::encode(values_hash(&values)),
        })
    })
    .collect();
    json!({
        "description": "On-chain values of a signed TI under its template (integers as their mantissa, enums as the index of the value, booleans 0 or 1; range rules not applied) and their values hash: keccak256 of each value as 8 bytes of big-endian two's complement, concatenated. Values are decimal strings. Attacks must fail with the named error code.",
        "template": spec,
        "template_canonical_hex": hex::encode(template.to_canonical_bytes()),
        "template_hash_hex": hex::encode(template.hash()),
        "template_chain_id_hex": hex::encode(template.reference().id.chain_id()),
        "hashes": hashes,
        "records": records,
        "attacks": attacks,
    })
}

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    for (file, value) in [
        ("records.json", records()),
        ("envelopes.json", envelopes()),
        ("templates.json", templates()),
        ("values.json", values()),
    ] {
        let text = serde_json::to_string_pretty(&value).unwrap() + "\n";
        std::fs::write(dir.join(file), text).unwrap();
        println!("wrote testdata/{file}");
    }
}
