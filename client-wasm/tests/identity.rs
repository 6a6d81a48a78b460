//! Headless-Chromium tests of the identity exports: keystore, sign-in, sealing and the
//! form's rules, each checked with the protocol's own verification (the relay's side).
#![cfg(target_arch = "wasm32")]

use mediblock_client_wasm::identity::{self, Identity};
use mediblock_client_wasm::{form, keystore};
use mediblock_protocol::auth::sign_in_message;
use mediblock_protocol::ids::UserId;
use mediblock_protocol::keys::{Keypair, PublicKeys};
use mediblock_protocol::record::SealedTransaction;
use mediblock_protocol::value::Value;
use rand_core::UnwrapErr;
use serde_json::json;
use wasm_bindgen::{JsCast as _, JsValue};
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

const VITALS: &str = include_str!("../../relay/templates/vital-signs.json");

/// A JSON value as a plain JS object, through the browser's own `JSON.parse`.
fn js(v: &serde_json::Value) -> JsValue {
    js_sys::JSON::parse(&v.to_string()).expect("JSON.parse")
}

fn prop(v: &JsValue, key: &str) -> JsValue {
    js_sys::Reflect::get(v, &JsValue::from_str(key)).expect("property")
}

fn prop_str(v: &JsValue, key: &str) -> String {
    prop(v, key)
        .as_string()
        .unwrap_or_else(|| panic!("{key} is not a string"))
}

fn template() -> serde_json::Value {
    serde_json::from_str(VITALS).expect("template JSON")
}

fn relay_info(relay: &Keypair) -> serde_json::Value {
    json!({"version": "0.1.0", "protocol": "v1", "relay_keys": relay.public(), "chain_id": 31337})
}

fn rng() -> UnwrapErr<getrandom::SysRng> {
    UnwrapErr(getrandom::SysRng)
}

#[wasm_bindgen_test]
fn keystore_round_trip_wrong_passphrase_and_storage() {
    let id = Identity::generate("dr.ada").expect("generate");
    let text = id.to_keystore("correct horse battery").expect("keystore");
    let file = keystore::read(&text).expect("header");
    assert!(file.kdf.memory_kib >= 19 * 1024 && file.kdf.iterations >= 2);
    assert_eq!(file.kdf.algorithm, "argon2id");
    assert_eq!(file.cipher.algorithm, "aes-256-gcm");

    let again = Identity::from_keystore(&text, "correct horse battery").expect("opens");
    assert_eq!(again.uid(), "dr.ada");
    assert_eq!(again.keys().public(), id.keys().public());

    let err = Identity::from_keystore(&text, "correct horse battery?").expect_err("wrong");
    assert_eq!(err.code(), "wrong_passphrase");
    let thrown = JsValue::from(err);
    assert!(thrown.is_instance_of::<js_sys::Error>());
    assert_eq!(prop_str(&thrown, "code"), "wrong_passphrase");
    assert!(prop_str(&thrown, "message").contains("passphrase"));

    let err = Identity::from_keystore("{\"format\":\"x\"}", "p").expect_err("bad file");
    assert_eq!(err.code(), "bad_keystore");

    identity::save_keystore(&text).expect("saved");
    assert_eq!(
        identity::load_keystore()
            .expect("loaded")
            .as_string()
            .as_deref(),
        Some(text.as_str())
    );
    let stored = web_sys::window()
        .and_then(|w| w.local_storage().ok().flatten())
        .and_then(|s| s.get_item("mediblock.keystore").ok().flatten());
    assert_eq!(stored.as_deref(), Some(text.as_str()));
    assert_eq!(
        identity::save_keystore("not a keystore")
            .expect_err("refused")
            .code(),
        "bad_keystore"
    );
}

/// A key file of the relay's command line (`mediblock keys-new`, `data/admin.key`) becomes
/// the same identity in the browser; anything else is refused with `bad_key_file`.
#[wasm_bindgen_test]
fn key_file_of_the_command_line_is_taken_over() {
    let keys = Keypair::generate(&mut rng());
    let file = format!("{}\n", hex::encode(keys.to_seeds().as_ref()));
    let id = Identity::from_key_file("admin", &file).expect("key file");
    assert_eq!(id.uid(), "admin");
    assert_eq!(id.keys().public(), keys.public());
    for bad in ["", "zz", &hex::encode([7u8; 32])] {
        let err = Identity::from_key_file("admin", bad).expect_err("refused");
        assert_eq!(err.code(), "bad_key_file");
    }
}

#[wasm_bindgen_test]
fn public_keys_and_enrolment_request() {
    let id = Identity::generate("nurse.bo").expect("generate");
    let public = id.keys().public();
    let keys = id.public_keys().expect("keys");
    assert_eq!(prop_str(&keys, "uid"), "nurse.bo");
    assert_eq!(
        prop_str(&keys, "ed25519"),
        hex::encode(public.signing_bytes())
    );
    assert_eq!(
        prop_str(&keys, "x25519"),
        hex::encode(public.agreement_bytes())
    );

    let req = id
        .enrolment_request(
            "nurse",
            Some("0x00000000000000000000000000000000000000AB".into()),
        )
        .expect("request");
    let req: serde_json::Value =
        serde_json::from_str(&String::from(js_sys::JSON::stringify(&req).expect("json")))
            .expect("parse");
    assert_eq!(req["uid"], "nurse.bo");
    assert_eq!(req["role"], "nurse");
    assert_eq!(
        req["eth_address"],
        "0x00000000000000000000000000000000000000ab"
    );
    let keys: PublicKeys = serde_json::from_value(req["keys"].clone()).expect("keys");
    assert_eq!(keys, public);
    assert_eq!(
        id.enrolment_request("surgeon", None)
            .expect_err("role")
            .code(),
        "invalid_input"
    );
    assert!(Identity::generate("Not A Uid").is_err());
}

#[wasm_bindgen_test]
fn sign_in_body_verifies_against_the_public_key() {
    let id = Identity::generate("dr.ada").expect("generate");
    let nonce = [0x5a; 32];
    let challenge = js(&json!({"challenge": hex::encode(nonce), "expires_at": 1}));
    let body = id.sign_in(challenge).expect("signed");
    assert_eq!(prop_str(&body, "uid"), "dr.ada");
    assert_eq!(prop_str(&body, "challenge"), hex::encode(nonce));
    let mut sig = [0u8; 64];
    hex::decode_to_slice(prop_str(&body, "signature"), &mut sig).expect("hex");
    let uid = UserId::new("dr.ada").expect("uid");
    let public = id.keys().public();
    public
        .verify(&sign_in_message(&nonce, &uid), &sig)
        .expect("verifies");
    let other = UserId::new("dr.eve").expect("uid");
    assert!(
        public
            .verify(&sign_in_message(&nonce, &other), &sig)
            .is_err()
    );
    assert!(
        public
            .verify(&sign_in_message(&[0; 32], &uid), &sig)
            .is_err()
    );
    let bad = id
        .sign_in(js(&json!({"challenge": "zz"})))
        .expect_err("bad");
    assert_eq!(bad.code(), "invalid_input");
}

#[wasm_bindgen_test]
fn sealed_record_opens_at_the_relay_with_the_same_commitment() {
    let id = Identity::generate("dr.ada").expect("generate");
    let relay = Keypair::generate(&mut rng());
    let previous = "ab".repeat(32);
    let req = js(&json!({
        "template": template(),
        "relay": relay_info(&relay),
        "patient": null,
        "previous": previous,
        "ticket": "72623859790382856",
        "values": {"heart_rate": 72, "systolic": "120", "temperature": 36.6,
                   "triage": "green", "smoker": false, "measured_on": "2026-11-24",
                   "notes": ""},
        "now": 1_790_000_000_000u64,
    }));
    let out = id.seal(req).expect("sealed");
    let body: js_sys::Uint8Array = prop(&out, "body").dyn_into().expect("Uint8Array");
    let sealed: SealedTransaction = serde_json::from_slice(&body.to_vec()).expect("body JSON");
    // The relay's side: open with the relay's keypair and the author's enrolled keys.
    let signed = sealed
        .open(&relay, &id.keys().public())
        .expect("the relay opens it");
    let ti = signed.ti();
    assert_eq!(prop_str(&out, "tid"), ti.tid.to_hex());
    assert_eq!(prop_str(&out, "pid"), ti.pid.to_hex());
    assert_eq!(prop_str(&out, "commitment"), signed.commitment().to_hex());
    // The tid starts with the ticket (0x0102030405060708), big-endian.
    assert_eq!(ti.tid.ticket(), 72_623_859_790_382_856);
    assert!(
        ti.tid.to_hex().starts_with("0102030405060708"),
        "{}",
        ti.tid
    );
    assert_eq!(prop_str(&out, "ticket"), "72623859790382856");
    assert_eq!(ti.uid.as_str(), "dr.ada");
    assert_eq!(ti.template.to_string(), "vital-signs@1");
    assert_eq!(ti.created_at.0, 1_790_000_000_000);
    assert_eq!(ti.prev.map(|c| c.to_hex()), Some(previous));
    let get = |k: &str| {
        ti.attributes
            .iter()
            .find(|(n, _)| n.as_str() == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(get("temperature"), Some(Value::Integer(366)));
    assert_eq!(get("heart_rate"), Some(Value::Integer(72)));
    assert_eq!(get("smoker"), Some(Value::Boolean(false)));
    assert_eq!(get("notes"), None);
    assert_eq!(ti.attributes.len(), 6);

    // Another relay cannot open it; a given patient id is kept.
    let stranger = Keypair::generate(&mut rng());
    assert!(sealed.open(&stranger, &id.keys().public()).is_err());
    let pid = "00112233445566778899aabbccddeeff";
    let req = js(&json!({
        "template": template(), "relay": relay_info(&relay), "patient": pid, "previous": null,
        "ticket": 2816,
        "values": {"heart_rate": "80", "systolic": 110, "temperature": "37"},
    }));
    let out = id.seal(req).expect("sealed");
    assert_eq!(prop_str(&out, "pid"), pid);
    // A ticket given as a JS number (a safe integer) works too.
    assert!(prop_str(&out, "tid").starts_with("0000000000000b00"));
    assert_eq!(prop_str(&out, "ticket"), "2816");
}

/// The request of `seal` for a good vital-signs form, with `ticket` as given (absent when
/// `None`).
fn seal_request(relay: &Keypair, ticket: Option<serde_json::Value>) -> serde_json::Value {
    let mut req = json!({
        "template": template(), "relay": relay_info(relay), "patient": null, "previous": null,
        "values": {"heart_rate": 72, "systolic": 120, "temperature": "36.6"},
    });
    if let Some(t) = ticket {
        req["ticket"] = t;
    }
    req
}

#[wasm_bindgen_test]
fn sealing_needs_a_well_formed_ticket() {
    let id = Identity::generate("dr.ada").expect("generate");
    let relay = Keypair::generate(&mut rng());

    // No ticket (absent or null): refused in words, before anything is built — even before
    // the form's rules are checked.
    for req in [
        seal_request(&relay, None),
        seal_request(&relay, Some(json!(null))),
    ] {
        let err = id.seal(js(&req)).expect_err("no ticket");
        assert_eq!(err.code(), "invalid_input");
        assert_eq!(
            err.message(),
            "A ticket from the relay is required to seal a record (POST /api/v1/tickets); \
             none was given."
        );
    }
    let mut bad_form = seal_request(&relay, None);
    bad_form["values"]["heart_rate"] = json!(400);
    assert_eq!(
        id.seal(js(&bad_form)).expect_err("no ticket").code(),
        "invalid_input"
    );
    bad_form["ticket"] = json!("9");
    assert_eq!(
        id.seal(js(&bad_form)).expect_err("rules").code(),
        "rule_violation"
    );

    // Malformed tickets: not decimal digits, signed, spaced, too large for a u64, or a
    // number that is not a safe non-negative integer, or neither string nor number.
    let malformed = [
        json!(""),
        json!("12a"),
        json!("0x10"),
        json!("-1"),
        json!("+5"),
        json!(" 5"),
        json!("1e3"),
        json!("18446744073709551616"),
        json!(1.5),
        json!(-1),
        json!(9_007_199_254_740_992u64),
        json!(true),
        json!({"ticket": "5"}),
        json!(["5"]),
    ];
    for ticket in malformed {
        let err = id
            .seal(js(&seal_request(&relay, Some(ticket.clone()))))
            .expect_err("malformed");
        assert_eq!(err.code(), "invalid_input", "{ticket}: {}", err.message());
        assert!(
            err.message().starts_with("The ticket"),
            "{ticket}: {}",
            err.message()
        );
    }
    let err = id
        .seal(js(&seal_request(&relay, Some(json!("12a")))))
        .expect_err("malformed");
    assert_eq!(
        err.message(),
        "The ticket “12a” is not valid: it must be the decimal number the relay issued \
         (0 to 18446744073709551615)."
    );

    // The whole u64 range, as the relay's decimal strings; the tid starts with the ticket.
    for (ticket, prefix) in [
        ("0", "0000000000000000"),
        ("256", "0000000000000100"),
        ("18446744073709551615", "ffffffffffffffff"),
    ] {
        let out = id
            .seal(js(&seal_request(&relay, Some(json!(ticket)))))
            .expect("sealed");
        let tid = prop_str(&out, "tid");
        assert!(tid.starts_with(prefix), "{ticket}: {tid}");
        assert_eq!(prop_str(&out, "ticket"), ticket);
        // What the relay opens carries the same tid.
        let body: js_sys::Uint8Array = prop(&out, "body").dyn_into().expect("Uint8Array");
        let sealed: SealedTransaction = serde_json::from_slice(&body.to_vec()).expect("body");
        let signed = sealed.open(&relay, &id.keys().public()).expect("opens");
        assert_eq!(signed.ti().tid.to_hex(), tid);
        assert_eq!(signed.ti().tid.ticket().to_string(), ticket);
    }
    // Two seals with one ticket share the ticket, not the tid (the random half differs).
    let a = id
        .seal(js(&seal_request(&relay, Some(json!("77")))))
        .expect("a");
    let b = id
        .seal(js(&seal_request(&relay, Some(json!("77")))))
        .expect("b");
    assert_eq!(prop_str(&a, "tid")[..16], prop_str(&b, "tid")[..16]);
    assert_ne!(prop_str(&a, "tid"), prop_str(&b, "tid"));
}

#[wasm_bindgen_test]
fn every_rule_violation_is_reported_before_sealing() {
    let id = Identity::generate("dr.ada").expect("generate");
    let relay = Keypair::generate(&mut rng());
    let values = json!({"heart_rate": 300, "temperature": "36.66", "triage": "blue",
                        "measured_on": "1999-12-31", "height": 180});
    let req = js(&json!({"template": template(), "relay": relay_info(&relay),
                         "patient": null, "previous": null, "ticket": "1", "values": values}));
    let err = id.seal(req).expect_err("violations");
    assert_eq!(err.code(), "rule_violation");
    let expected = [
        ("heart_rate", "above_max"),
        ("systolic", "required"),
        ("temperature", "unparsable"),
        ("triage", "not_allowed"),
        ("measured_on", "below_min"),
        ("height", "unknown"),
    ];
    let got: Vec<(String, String)> = err
        .violations()
        .expect("violations")
        .iter()
        .map(|v| (v.attribute.clone(), v.code.clone()))
        .collect();
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(a, c)| ((*a).to_owned(), (*c).to_owned()))
        .collect();
    assert_eq!(got, expected);
    assert_eq!(
        err.violations().expect("violations")[0].message,
        "Heart rate must be at most 250 bpm; 300 bpm is too high."
    );

    let thrown = JsValue::from(err);
    assert_eq!(prop_str(&thrown, "code"), "rule_violation");
    let list = js_sys::Array::from(&prop(&thrown, "violations"));
    assert_eq!(list.length(), 6);
    assert_eq!(prop_str(&list.get(1), "attribute"), "systolic");
    assert_eq!(
        prop_str(&list.get(1), "message"),
        "Systolic blood pressure is required."
    );

    // checkForm gives the same list, and [] for a good form.
    let checked = form::check_form(js(&template()), js(&values)).expect("checked");
    let checked = js_sys::Array::from(&checked);
    assert_eq!(checked.length(), 6);
    assert_eq!(prop_str(&checked.get(5), "code"), "unknown");
    let good = json!({"heart_rate": 72, "systolic": 120, "temperature": "36.6", "smoker": true});
    let checked = form::check_form(js(&template()), js(&good)).expect("checked");
    assert_eq!(js_sys::Array::from(&checked).length(), 0);

    let err = form::check_form(js(&json!({"id": "x"})), js(&good)).expect_err("bad template");
    assert_eq!(err.code(), "invalid_input");
}
