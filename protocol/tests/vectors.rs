//! Checks every golden vector under `protocol/testdata/` — records, envelopes, templates and
//! on-chain values, attack cases included — by recomputing it from its inputs. Runs natively and on wasm32.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use mediblock_protocol::encoding::Canonical;
use mediblock_protocol::envelope::Envelope;
use mediblock_protocol::generator::{generate, on_chain_values, values_hash};
use mediblock_protocol::keys::{Keypair, PublicKeys, Purpose};
use mediblock_protocol::record::{InitialTransaction, SignedInitialTransaction};
use mediblock_protocol::rules::Violation;
use mediblock_protocol::template::Template;
use mediblock_protocol::value::Attributes;
use mediblock_protocol::{Error, Result};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::Value as Json;

const RECORDS: &str = include_str!("../testdata/records.json");
const ENVELOPES: &str = include_str!("../testdata/envelopes.json");
const TEMPLATES: &str = include_str!("../testdata/templates.json");
const VALUES: &str = include_str!("../testdata/values.json");

fn unhex(v: &Json) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("valid hex")
}

fn seeds(v: &Json) -> [u8; 64] {
    unhex(v).try_into().expect("64 seed bytes")
}

/// Asserts that `result` failed with the vector's error code (and decode code, if given).
fn assert_error<T: std::fmt::Debug>(result: Result<T>, attack: &Json) {
    let name = attack["name"].as_str().unwrap();
    let err = result.expect_err(name);
    assert_eq!(
        err.code(),
        attack["error"].as_str().unwrap(),
        "{name}: {err:?}"
    );
    if let Some(decode) = attack.get("decode") {
        match &err {
            Error::Decode(d) => assert_eq!(d.code(), decode.as_str().unwrap(), "{name}"),
            other => panic!("{name}: expected a decode error, got {other:?}"),
        }
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn record_vectors() {
    let file: Json = serde_json::from_str(RECORDS).unwrap();
    let vectors = file["vectors"].as_array().unwrap();
    assert!(vectors.len() >= 2);
    for v in vectors {
        let author = Keypair::from_seeds(&seeds(&v["signer_seeds_hex"]));
        let public: PublicKeys = serde_json::from_value(v["signer_public"].clone()).unwrap();
        assert_eq!(author.public(), public);

        let ti: InitialTransaction = serde_json::from_value(v["ti"].clone()).unwrap();
        assert_eq!(ti.to_canonical_bytes(), unhex(&v["ti_canonical_hex"]));
        assert_eq!(
            InitialTransaction::from_canonical_bytes(&unhex(&v["ti_canonical_hex"])).unwrap(),
            ti
        );
        assert_eq!(ti.signing_message(), unhex(&v["signing_message_hex"]));

        let signed = ti.clone().sign(&author);
        assert_eq!(signed.signature().as_slice(), unhex(&v["signature_hex"]));
        assert_eq!(
            signed.to_canonical_bytes(),
            unhex(&v["signed_canonical_hex"])
        );
        assert_eq!(
            signed.commitment().to_hex(),
            v["commitment_hex"].as_str().unwrap()
        );
        signed.verify(&public).unwrap();

        let attacks = v["attacks"].as_array().unwrap();
        assert!(attacks.len() >= 8);
        for attack in attacks {
            let key = match attack.get("signer_seeds_hex") {
                Some(s) => Keypair::from_seeds(&seeds(s)).public(),
                None => public,
            };
            let result =
                SignedInitialTransaction::from_canonical_bytes(&unhex(&attack["signed_hex"]))
                    .and_then(|s| s.verify(&key));
            assert_error(result, attack);
        }
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn envelope_vectors() {
    let file: Json = serde_json::from_str(ENVELOPES).unwrap();
    let vectors = file["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 2);
    for v in vectors {
        let purpose: Purpose = serde_json::from_value(v["purpose"].clone()).unwrap();
        let user = Keypair::from_seeds(&seeds(&v["user_seeds_hex"]));
        let relay = Keypair::from_seeds(&seeds(&v["relay_seeds_hex"]));
        // Both sides derive the same key, identified by the vector's key id.
        let key = user.agree(&relay.public(), purpose).unwrap();
        let key_back = relay.agree(&user.public(), purpose).unwrap();
        assert_eq!(key.id().to_hex(), v["key_id_hex"].as_str().unwrap());
        assert_eq!(key_back.id(), key.id());

        let context = unhex(&v["context_hex"]);
        let plaintext = unhex(&v["plaintext_hex"]);
        let seed = u8::try_from(v["rng_seed_byte"].as_u64().unwrap()).unwrap();
        let mut rng = ChaCha20Rng::from_seed([seed; 32]);
        let sealed = Envelope::seal(&key, &context, &plaintext, &mut rng).unwrap();
        assert_eq!(sealed.to_canonical_bytes(), unhex(&v["envelope_hex"]));
        let opened = Envelope::from_canonical_bytes(&unhex(&v["envelope_hex"]))
            .unwrap()
            .open(&key_back, &context)
            .unwrap();
        assert_eq!(opened.as_slice(), plaintext.as_slice());

        for attack in v["attacks"].as_array().unwrap() {
            let key = match attack.get("stranger_seeds_hex") {
                Some(s) => Keypair::from_seeds(&seeds(s))
                    .agree(&relay.public(), purpose)
                    .unwrap(),
                None => relay.agree(&user.public(), purpose).unwrap(),
            };
            let ctx = attack
                .get("context_hex")
                .map(unhex)
                .unwrap_or_else(|| context.clone());
            let result = Envelope::from_canonical_bytes(&unhex(&attack["envelope_hex"]))
                .and_then(|e| e.open(&key, &ctx).map(|p| p.to_vec()));
            assert_error(result, attack);
        }
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn template_vectors() {
    let file: Json = serde_json::from_str(TEMPLATES).unwrap();
    let template: Template = serde_json::from_value(file["template"].clone()).unwrap();
    assert_eq!(template.to_canonical_bytes(), unhex(&file["canonical_hex"]));
    assert_eq!(
        hex::encode(template.hash()),
        file["hash_hex"].as_str().unwrap()
    );
    assert_eq!(
        hex::encode(template.reference().id.chain_id()),
        file["chain_id_hex"].as_str().unwrap()
    );
    assert_eq!(
        Template::from_canonical_bytes(&unhex(&file["canonical_hex"])).unwrap(),
        template
    );
    let mut trailing = unhex(&file["canonical_hex"]);
    trailing.push(0);
    assert!(matches!(
        Template::from_canonical_bytes(&trailing),
        Err(Error::Decode(_))
    ));

    let invalid = file["invalid"].as_array().unwrap();
    assert!(invalid.len() >= 8);
    for case in invalid {
        let name = case["name"].as_str().unwrap();
        let spec = serde_json::from_value(case["template"].clone());
        let result = match spec {
            Ok(spec) => Template::new(spec),
            // Field-level refusals (e.g. version 0) already fail in deserialization.
            Err(_) => Err(mediblock_protocol::Error::Invalid {
                what: "template",
                reason: "refused while parsing".into(),
            }),
        };
        assert_eq!(
            result.expect_err(name).code(),
            case["error"].as_str().unwrap(),
            "{name}"
        );
    }

    for case in file["form_checks"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let form: BTreeMap<String, String> = serde_json::from_value(case["form"].clone()).unwrap();
        let expected: Vec<Violation> = serde_json::from_value(case["violations"].clone()).unwrap();
        match template.map_form(&form) {
            Ok(attrs) => {
                assert!(expected.is_empty(), "{name}: expected violations");
                let want: Attributes = serde_json::from_value(case["attributes"].clone()).unwrap();
                assert_eq!(attrs, want, "{name}");
            }
            Err(got) => assert_eq!(got, expected, "{name}"),
        }
    }
}

/// A vector's decimal-string values.
fn decimals(v: &Json) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().parse().unwrap())
        .collect()
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn values_vectors() {
    let file: Json = serde_json::from_str(VALUES).unwrap();
    let template: Template = serde_json::from_value(file["template"].clone()).unwrap();
    let canonical = unhex(&file["template_canonical_hex"]);
    assert_eq!(template.to_canonical_bytes(), canonical);
    assert_eq!(
        Template::from_canonical_bytes(&canonical).unwrap(),
        template
    );
    assert_eq!(
        hex::encode(template.hash()),
        file["template_hash_hex"].as_str().unwrap()
    );
    assert_eq!(
        hex::encode(template.reference().id.chain_id()),
        file["template_chain_id_hex"].as_str().unwrap()
    );

    let hashes = file["hashes"].as_array().unwrap();
    assert_eq!(hashes.len(), 3);
    for v in hashes {
        let values = decimals(&v["values"]);
        let bytes: Vec<u8> = values.iter().flat_map(|x| x.to_be_bytes()).collect();
        assert_eq!(bytes, unhex(&v["values_bytes_hex"]), "{}", v["name"]);
        assert_eq!(
            hex::encode(values_hash(&values)),
            v["values_hash_hex"].as_str().unwrap(),
            "{}",
            v["name"]
        );
    }
    assert_eq!(
        hashes[0]["values_hash_hex"].as_str().unwrap(),
        hex::encode(mediblock_protocol::hash::keccak256(b"")),
        "no values hash to keccak256 of nothing"
    );

    let records = file["records"].as_array().unwrap();
    assert_eq!(records.len(), 3);
    for v in records {
        let name = v["name"].as_str().unwrap();
        let signed =
            SignedInitialTransaction::from_canonical_bytes(&unhex(&v["signed_canonical_hex"]))
                .unwrap();
        let values = on_chain_values(&signed, &template).unwrap();
        assert_eq!(values, decimals(&v["on_chain_values"]), "{name}");
        let bytes: Vec<u8> = values.iter().flat_map(|x| x.to_be_bytes()).collect();
        assert_eq!(bytes, unhex(&v["values_bytes_hex"]), "{name}");
        assert_eq!(
            hex::encode(values_hash(&values)),
            v["values_hash_hex"].as_str().unwrap(),
            "{name}"
        );
        // The generator hashes the same values for a record that passes its rules.
        match generate(&signed, &template) {
            Ok(tc) => {
                assert!(v["passes_rules"].as_bool().unwrap(), "{name}");
                assert_eq!(tc.values_hash(), values_hash(&values), "{name}");
            }
            Err(e) => {
                assert!(!v["passes_rules"].as_bool().unwrap(), "{name}");
                assert_eq!(e.code(), "rule_violation", "{name}");
            }
        }
    }

    let attacks = file["attacks"].as_array().unwrap();
    assert_eq!(attacks.len(), 4);
    for attack in attacks {
        let result =
            SignedInitialTransaction::from_canonical_bytes(&unhex(&attack["signed_canonical_hex"]))
                .and_then(|s| on_chain_values(&s, &template));
        assert_error(result, attack);
    }
}
