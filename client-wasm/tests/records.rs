//! Headless-Chromium tests of opening records, the ABI of the on-chain check, the wallet
//! path and the relay/RPC error objects.
#![cfg(target_arch = "wasm32")]

use mediblock_client_wasm::{chain, net, open, wallet};
use mediblock_protocol::hash::keccak256;
use mediblock_protocol::ids::{
    AttrName, ChainHash, EthAddress, PatientId, Salt, TemplateRef, TxId, UnixMillis, UserId,
};
use mediblock_protocol::keys::Keypair;
use mediblock_protocol::record::InitialTransaction;
use mediblock_protocol::template::Template;
use mediblock_protocol::validated::{Ack, ValidatedTransaction, Verdict};
use mediblock_protocol::value::{Attributes, Value};
use rand_core::UnwrapErr;
use serde_json::json;
use wasm_bindgen::{JsCast as _, JsValue};
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

const VITALS: &str = include_str!("../../relay/templates/vital-signs.json");

fn js(v: &serde_json::Value) -> JsValue {
    js_sys::JSON::parse(&v.to_string()).expect("JSON.parse")
}

fn back(v: &JsValue) -> serde_json::Value {
    let text = String::from(js_sys::JSON::stringify(v).expect("stringify"));
    serde_json::from_str(&text).expect("JSON")
}

fn prop_str(v: &JsValue, key: &str) -> String {
    js_sys::Reflect::get(v, &JsValue::from_str(key))
        .expect("property")
        .as_string()
        .unwrap_or_else(|| panic!("{key} is not a string"))
}

fn rng() -> UnwrapErr<getrandom::SysRng> {
    UnwrapErr(getrandom::SysRng)
}

fn validated(author: &Keypair, verdict: Verdict) -> ValidatedTransaction {
    let mut rng = rng();
    let attributes: Attributes = [
        ("heart_rate", Value::Integer(72)),
        ("systolic", Value::Integer(120)),
        ("temperature", Value::Integer(366)),
        ("smoker", Value::Boolean(true)),
    ]
    .into_iter()
    .map(|(k, v)| (AttrName::new(k).expect("name"), v))
    .collect();
    let ti = InitialTransaction {
        tid: TxId::for_ticket(7, &mut rng),
        uid: UserId::new("dr.ada").expect("uid"),
        pid: PatientId::random(&mut rng),
        template: TemplateRef {
            id: "vital-signs".parse().expect("id"),
            version: 1.try_into().expect("version"),
        },
        attributes,
        created_at: UnixMillis(1_790_000_000_000),
        salt: Salt::random(&mut rng),
        prev: None,
    };
    ValidatedTransaction {
        signed: ti.sign(author),
        ack: Ack {
            verdict,
            chain_id: 31337,
            contract: EthAddress::from_bytes([0xaa; 20]),
            tx_hash: ChainHash::from_bytes([0xbb; 32]),
            block_number: 12,
            block_hash: ChainHash::from_bytes([0xcc; 32]),
            log_index: 0,
            batch: None,
        },
    }
}

fn row(v: &ValidatedTransaction) -> serde_json::Value {
    json!({
        "tid": v.signed.ti().tid,
        "leaf_index": 4,
        "commitment": v.signed.commitment(),
        "validated": v,
    })
}

fn author_keys(k: &Keypair) -> JsValue {
    js(&json!(k.public()))
}

#[wasm_bindgen_test]
fn a_good_record_opens_with_its_checks_passed() {
    let author = Keypair::generate(&mut rng());
    let v = validated(&author, Verdict::Valid);
    let template = js(&serde_json::from_str::<serde_json::Value>(VITALS).expect("template"));
    let out = back(
        &open::open_record(js(&row(&v)), author_keys(&author), Some(template)).expect("opens"),
    );
    let ti = v.signed.ti();
    assert_eq!(out["tid"], ti.tid.to_hex());
    assert_eq!(out["pid"], ti.pid.to_hex());
    assert_eq!(out["uid"], "dr.ada");
    assert_eq!(out["template"], "vital-signs");
    assert_eq!(out["version"], 1);
    assert_eq!(out["timestamp"], 1_790_000_000_000u64);
    assert_eq!(out["values"]["temperature"], 366);
    assert_eq!(out["values"]["smoker"], true);
    assert_eq!(out["display"]["temperature"], "36.6 °C");
    assert_eq!(out["display"]["smoker"], "yes");
    assert_eq!(out["previous"], serde_json::Value::Null);
    assert_eq!(out["commitment"], v.signed.commitment().to_hex());
    assert_eq!(out["signatureOk"], true);
    assert_eq!(out["commitmentOk"], true);
    assert_eq!(out["problem"], serde_json::Value::Null);
    assert_eq!(out["verdict"], "valid");
    assert_eq!(out["ack"]["chainId"], 31337);
    assert_eq!(out["ack"]["contract"], format!("0x{}", "aa".repeat(20)));
    assert_eq!(out["ack"]["txHash"], format!("0x{}", "bb".repeat(32)));
    assert_eq!(out["ack"]["blockNumber"], 12);
    // What the chain must have judged: heart rate, systolic and temperature (the on-chain
    // attributes, in template order), as 8-byte big-endian words, hashed; and the template.
    let mut words = Vec::new();
    for v in [72i64, 120, 366] {
        words.extend_from_slice(&v.to_be_bytes());
    }
    assert_eq!(out["valuesHash"], hex::encode(keccak256(&words)));
    let vitals: Template = serde_json::from_str(VITALS).expect("template");
    assert_eq!(out["templateHash"], hex::encode(vitals.hash()));
    assert_eq!(
        out["templateChainId"],
        hex::encode(keccak256(b"vital-signs"))
    );
    assert_eq!(out["templateVersion"], 1);
    assert_eq!(out["valuesProblem"], serde_json::Value::Null);

    let rejected = validated(&author, Verdict::Rejected { attribute_index: 2 });
    let out =
        back(&open::open_record(js(&row(&rejected)), author_keys(&author), None).expect("opens"));
    assert_eq!(out["verdict"], "rejected");
    assert_eq!(out["rejectedAttribute"], 2);
    assert_eq!(out["display"]["temperature"], "366");
    // Without the template there are no values to bind the verdict to.
    for key in [
        "valuesHash",
        "templateHash",
        "templateChainId",
        "templateVersion",
    ] {
        assert_eq!(out[key], serde_json::Value::Null, "{key}");
    }
    assert_eq!(out["problem"], serde_json::Value::Null);
}

#[wasm_bindgen_test]
fn a_record_without_on_chain_values_is_a_problem() {
    // Signed by its author, but without its on-chain heart rate: under its template no
    // on-chain values exist, so no verdict of the chain can be about it.
    let author = Keypair::generate(&mut rng());
    let mut v = validated(&author, Verdict::Valid);
    let mut ti = v.signed.ti().clone();
    ti.attributes = ti
        .attributes
        .iter()
        .filter(|(name, _)| name.as_str() != "heart_rate")
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect();
    v.signed = ti.sign(&author);
    let template = js(&serde_json::from_str::<serde_json::Value>(VITALS).expect("template"));
    let out = back(
        &open::open_record(js(&row(&v)), author_keys(&author), Some(template)).expect("opens"),
    );
    assert_eq!(out["signatureOk"], true);
    assert_eq!(out["commitmentOk"], true);
    assert_eq!(out["problem"], "no_on_chain_values");
    let why = out["valuesProblem"].as_str().expect("a sentence");
    assert!(why.contains("heart_rate"), "{why}");
    assert_eq!(out["valuesHash"], serde_json::Value::Null);

    // Another template than the record's is not used for its values.
    let mut other: serde_json::Value = serde_json::from_str(VITALS).expect("template");
    other["version"] = json!(2);
    let out = back(
        &open::open_record(js(&row(&v)), author_keys(&author), Some(js(&other))).expect("opens"),
    );
    assert_eq!(out["problem"], serde_json::Value::Null);
    assert_eq!(out["valuesHash"], serde_json::Value::Null);
}

#[wasm_bindgen_test]
fn tampering_is_caught_in_the_browser() {
    let author = Keypair::generate(&mut rng());
    let v = validated(&author, Verdict::Valid);

    // A flipped signature byte.
    let mut r = row(&v);
    let sig = r["validated"]["signed"]["signature"]
        .as_str()
        .expect("sig")
        .to_owned();
    let flipped = format!(
        "{}{}",
        if &sig[..2] == "00" { "01" } else { "00" },
        &sig[2..]
    );
    r["validated"]["signed"]["signature"] = json!(flipped);
    let out = back(&open::open_record(js(&r), author_keys(&author), None).expect("opens"));
    assert_eq!(out["signatureOk"], false);
    assert_eq!(out["commitmentOk"], false);
    assert_eq!(out["problem"], "signature_invalid");

    // A changed value: the signature no longer covers it.
    let mut r = row(&v);
    r["validated"]["signed"]["ti"]["attributes"]["heart_rate"]["value"] = json!(40);
    let out = back(&open::open_record(js(&r), author_keys(&author), None).expect("opens"));
    assert_eq!(out["values"]["heart_rate"], 40);
    assert_eq!(out["signatureOk"], false);
    assert_eq!(out["problem"], "signature_invalid");

    // The row claims another commitment than its content has.
    let mut r = row(&v);
    r["commitment"] = json!("11".repeat(32));
    let out = back(&open::open_record(js(&r), author_keys(&author), None).expect("opens"));
    assert_eq!(out["signatureOk"], true);
    assert_eq!(out["commitmentOk"], false);
    assert_eq!(out["problem"], "commitment_mismatch");

    // Signed by someone else than the claimed author.
    let other = Keypair::generate(&mut rng());
    let out = back(&open::open_record(js(&row(&v)), author_keys(&other), None).expect("opens"));
    assert_eq!(out["signatureOk"], false);

    // A row that does not open at the relay.
    let r = json!({"tid": v.signed.ti().tid, "leaf_index": 4, "commitment": v.signed.commitment(),
                   "validated": null, "problem": "does_not_open"});
    let out = back(&open::open_record(js(&r), author_keys(&author), None).expect("opens"));
    assert_eq!(out["problem"], "does_not_open");
    assert_eq!(out["signatureOk"], false);
    assert_eq!(out["commitmentOk"], false);
    assert_eq!(out["ack"], serde_json::Value::Null);

    let err = open::open_record(js(&json!({"tid": 1})), author_keys(&author), None)
        .expect_err("not a record");
    assert_eq!(err.code(), "invalid_input");
}

#[wasm_bindgen_test]
fn on_chain_check_abi_matches_independent_values() {
    let tid: TxId = "0f1e2d3c4b5a69788796a5b4c3d2e1f0".parse().expect("tid");
    // ticketUsed(uint16,uint64) of log 7 and the tid's ticket, its first 8 bytes: the
    // selector, then the log and the ticket right-aligned in one word each.
    assert_eq!(tid.ticket(), 0x0f1e_2d3c_4b5a_6978);
    let data = chain::ticket_used_calldata(7, tid.ticket());
    assert_eq!(
        hex::encode(&data[..4]),
        hex::encode(&keccak256(b"ticketUsed(uint16,uint64)")[..4])
    );
    assert_eq!(data.len(), 4 + 64);
    assert!(data[4..35].iter().all(|b| *b == 0));
    assert_eq!(data[35], 7);
    assert!(data[36..60].iter().all(|b| *b == 0));
    assert_eq!(&data[60..], &tid.as_bytes()[..8]);
    let info = chain::template_info_calldata(0x0102);
    assert_eq!(info[..4], keccak256(b"templateInfo(uint16)")[..4]);
    assert_eq!(info[34..], [1, 2]);
    assert_eq!(
        chain::record_anchored_topic(),
        keccak256(b"RecordAnchored(bytes16,bytes32,bytes32,uint256)")
    );
    let mut topic = [0u8; 32];
    topic[..16].copy_from_slice(tid.as_bytes());
    assert_eq!(chain::tid_topic(&tid), topic);

    let mut answer = [0u8; 32];
    assert!(!chain::decode_ticket_used(&answer).expect("decodes"));
    answer[31] = 1;
    assert!(chain::decode_ticket_used(&answer).expect("decodes"));
    assert_eq!(
        chain::decode_ticket_used(&answer[..20])
            .expect_err("short")
            .code(),
        "rpc_error"
    );

    // commitment | valuesHash | info (submitter · log · handle · verdict · path).
    let mut log_data = [0u8; 96];
    log_data[..32].copy_from_slice(&[0x99; 32]);
    log_data[32..64].copy_from_slice(&[0x77; 32]);
    log_data[64..84].copy_from_slice(&[0x12; 20]);
    log_data[91] = 9;
    log_data[93] = 5;
    log_data[94] = 3;
    log_data[95] = 1;
    let e = chain::decode_record_anchored(&[chain::record_anchored_topic(), topic], &log_data)
        .expect("decodes");
    assert_eq!((e.log, e.handle, e.verdict, e.path), (9, 5, 3, 1));
    assert_eq!(e.submitter, [0x12; 20]);
    assert_eq!(e.tid, *tid.as_bytes());
    assert_eq!(e.commitment, [0x99; 32]);
    assert_eq!(e.values_hash, [0x77; 32]);
}

#[wasm_bindgen_test]
async fn verify_on_chain_reports_an_unreachable_node_as_rpc_error() {
    let req = js(
        &json!({"rpc": "http://127.0.0.1:9/", "registry": format!("0x{}", "aa".repeat(20)),
                "log": 1, "tid": "00".repeat(16), "commitment": "11".repeat(32),
                "verdict": "valid"}),
    );
    let err = chain::verify_on_chain(req).await.expect_err("unreachable");
    assert_eq!(err.code(), "rpc_error");
    let thrown = JsValue::from(err);
    assert_eq!(prop_str(&thrown, "code"), "rpc_error");
    let bad = js(
        &json!({"rpc": "http://127.0.0.1:9/", "registry": "nope", "log": 1, "tid": "00",
                "commitment": ""}),
    );
    assert_eq!(
        chain::verify_on_chain(bad).await.expect_err("bad").code(),
        "invalid_input"
    );
}

fn wallet_fixture(values: &[i64]) -> serde_json::Value {
    let tid = [0x11u8; 16];
    let commitment = [0x22u8; 32];
    // 2100-01-01: the co-signature is still valid whenever the test runs.
    let deadline: u64 = 4_102_444_800;
    let mut data = vec![wallet::OP_ANCHOR_COSIGNED];
    data.extend(tid);
    data.extend(commitment);
    data.extend(3u16.to_be_bytes());
    data.extend(deadline.to_be_bytes());
    data.extend([0x44; 65]);
    for v in values {
        data.extend(v.to_be_bytes());
    }
    json!({
        "to": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
        "data": format!("0x{}", hex::encode(&data)),
        "chain_id": 31337,
        "deadline": deadline,
        "record": {
            "tid": format!("0x{}", hex::encode(tid)),
            "commitment": format!("0x{}", hex::encode(commitment)),
            "template": 3,
            "values": values,
            "deadline": deadline,
            "submitter": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        }
    })
}

/// What the browser expects for `wallet_fixture`: the tid and commitment it sealed, the
/// registry and chain of its settings (the address in another case than the relay's).
fn expected() -> serde_json::Value {
    json!({
        "tid": "11".repeat(16),
        "commitment": "22".repeat(32),
        "registry": "0x5fbdb2315678afecb367f032d93f642f64180aa3",
        "chainId": 31337,
    })
}

#[wasm_bindgen_test]
fn wallet_summary_reads_the_calldata_and_checks_it() {
    let template: serde_json::Value = serde_json::from_str(VITALS).expect("template");
    let t: Template = serde_json::from_value(template.clone()).expect("template");
    assert_eq!(t.on_chain_attributes().count(), 3);
    let s = back(
        &wallet::wallet_summary(
            js(&wallet_fixture(&[72, 120, 366])),
            js(&template),
            js(&expected()),
        )
        .expect("summary"),
    );
    assert_eq!(s["title"], "Anchor a “Vital signs” record on chain");
    let lines: Vec<(String, String)> = s["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| {
            (
                l["label"].as_str().expect("label").to_owned(),
                l["value"].as_str().expect("value").to_owned(),
            )
        })
        .collect();
    let find = |label: &str| {
        lines
            .iter()
            .find(|(l, _)| l == label)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no line {label}"))
    };
    assert_eq!(find("Template"), "Vital signs (vital-signs, version 1)");
    assert_eq!(find("Heart rate"), "72 bpm");
    assert_eq!(find("Systolic blood pressure"), "120 mmHg");
    assert_eq!(find("Body temperature"), "36.6 °C");
    assert_eq!(find("Commitment"), format!("0x{}", "22".repeat(32)));
    assert_eq!(find("Valid until"), "2100-01-01 00:00 UTC");
    assert_eq!(find("Network"), "a local development chain (chain 31337)");
    assert_eq!(
        find("Registry contract"),
        "0x5FbDB2315678afecb367f032d93F642f64180aa3"
    );

    // The relay's description must match the calldata the wallet sends.
    let mut lying = wallet_fixture(&[72, 120, 366]);
    lying["record"]["values"] = json!([72, 120, 370]);
    let err =
        wallet::wallet_summary(js(&lying), js(&template), js(&expected())).expect_err("mismatch");
    assert_eq!(err.code(), "wallet_mismatch");
    let short = wallet_fixture(&[72, 120]);
    assert_eq!(
        wallet::wallet_summary(js(&short), js(&template), js(&expected()))
            .expect_err("count")
            .code(),
        "wallet_mismatch"
    );
}

/// A relay that prepares a well-formed, self-consistent transaction for another record,
/// another registry or another chain than the browser expects.
fn mismatches() -> Vec<(&'static str, serde_json::Value, serde_json::Value)> {
    let good = wallet_fixture(&[72, 120, 366]);
    let mut out = Vec::new();

    // Someone else's record: the calldata and the relay's description both carry another
    // tid; the browser sealed 0x11…
    let mut e = expected();
    e["tid"] = json!("99".repeat(16));
    out.push(("wrong tid", good.clone(), e));

    // Someone else's commitment.
    let mut e = expected();
    e["commitment"] = json!(format!("0x{}", "98".repeat(32)));
    out.push(("wrong commitment", good.clone(), e));

    // Another contract than the page's registry.
    let mut w = good.clone();
    w["to"] = json!(format!("0x{}", "ab".repeat(20)));
    out.push(("wrong registry", w, expected()));

    // Another chain than the page's.
    let mut e = expected();
    e["chainId"] = json!(11_155_111);
    out.push(("wrong chain", good, e));
    out
}

#[wasm_bindgen_test]
fn wallet_summary_refuses_a_transaction_for_another_record_registry_or_chain() {
    let template: serde_json::Value = serde_json::from_str(VITALS).expect("template");
    // The matching case passes (with a 0x-less tid and a hex chain id as well).
    let mut e = expected();
    e["chainId"] = json!("0x7a69");
    e["commitment"] = json!(format!("0x{}", "22".repeat(32)));
    let s = back(
        &wallet::wallet_summary(js(&wallet_fixture(&[72, 120, 366])), js(&template), js(&e))
            .expect("matching passes"),
    );
    assert_eq!(s["title"], "Anchor a “Vital signs” record on chain");

    for (case, w, e) in mismatches() {
        let err = wallet::wallet_summary(js(&w), js(&template), js(&e)).expect_err(case);
        assert_eq!(err.code(), "wallet_mismatch", "{case}: {}", err.message());
        assert!(
            err.message()
                .starts_with("The transaction the relay prepared is not for "),
            "{case}: {}",
            err.message()
        );
        assert!(
            err.message().contains("do not send it"),
            "{case}: {}",
            err.message()
        );
        // Thrown to JavaScript as an Error carrying the code.
        let thrown = JsValue::from(err);
        assert!(thrown.is_instance_of::<js_sys::Error>(), "{case}");
        assert_eq!(prop_str(&thrown, "code"), "wallet_mismatch", "{case}");
    }

    // The messages name what differs.
    let m = |i: usize| {
        let (_, w, e) = &mismatches()[i];
        wallet::wallet_summary(js(w), js(&template), js(e))
            .expect_err("refused")
            .message()
            .to_owned()
    };
    assert!(
        m(0).contains("record you signed") && m(0).contains(&"99".repeat(16)),
        "{}",
        m(0)
    );
    assert!(
        m(1).contains("record you signed") && m(1).contains(&"98".repeat(32)),
        "{}",
        m(1)
    );
    assert!(
        m(2).contains("registry") && m(2).contains(&"ab".repeat(20)),
        "{}",
        m(2)
    );
    assert!(
        m(3).contains("Sepolia") && m(3).contains("chain 31337"),
        "{}",
        m(3)
    );

    // Without `expected` (or with a field missing) nothing is summarised.
    for bad in [
        JsValue::UNDEFINED,
        JsValue::NULL,
        js(&json!({"tid": "11".repeat(16), "commitment": "22".repeat(32), "chainId": 31337})),
        js(
            &json!({"tid": "11".repeat(16), "commitment": "22".repeat(32),
                   "registry": "0x5fbdb2315678afecb367f032d93f642f64180aa3"}),
        ),
        js(&json!({"tid": "nope", "commitment": "22".repeat(32),
                   "registry": "0x5fbdb2315678afecb367f032d93f642f64180aa3", "chainId": 31337})),
    ] {
        let err = wallet::wallet_summary(js(&wallet_fixture(&[72, 120, 366])), js(&template), bad)
            .expect_err("no expected");
        assert_eq!(err.code(), "invalid_input", "{}", err.message());
    }
}

#[wasm_bindgen_test]
async fn send_wallet_transaction_refuses_a_mismatch_before_the_wallet_sees_it() {
    // A wallet on the right chain and account that would send anything it is given.
    install_provider(
        "{ sent: null, request: async ({method, params}) => { \
             if (method === 'eth_chainId') return '0x7a69'; \
             if (method === 'eth_accounts' || method === 'eth_requestAccounts') \
                 return ['0x70997970c51812dc3a010c7d01b50e0d17dc79c8']; \
             if (method === 'eth_sendTransaction') { window.ethereum.sent = params[0]; \
                 return '0x' + 'ee'.repeat(32); } \
             throw new Error('unexpected ' + method); } }",
    );
    let sent = || {
        back(
            &js_sys::Function::new_no_args("return window.ethereum.sent;")
                .call0(&JsValue::NULL)
                .expect("sent"),
        )
    };
    for (case, w, e) in mismatches() {
        let err = wallet::send_wallet_transaction(js(&w), js(&e))
            .await
            .expect_err(case);
        assert_eq!(err.code(), "wallet_mismatch", "{case}: {}", err.message());
        assert_eq!(
            sent(),
            serde_json::Value::Null,
            "{case}: nothing reaches the wallet"
        );
    }
    let err =
        wallet::send_wallet_transaction(js(&wallet_fixture(&[72, 120, 366])), JsValue::UNDEFINED)
            .await
            .expect_err("no expected");
    assert_eq!(err.code(), "invalid_input");
    assert_eq!(sent(), serde_json::Value::Null);

    // The matching transaction is sent as prepared.
    let hash =
        wallet::send_wallet_transaction(js(&wallet_fixture(&[72, 120, 366])), js(&expected()))
            .await
            .expect("sent");
    assert_eq!(hash.as_string(), Some(format!("0x{}", "ee".repeat(32))));
    let sent = sent();
    assert_eq!(sent["to"], "0x5FbDB2315678afecb367f032d93F642f64180aa3");
    assert_eq!(sent["data"], wallet_fixture(&[72, 120, 366])["data"]);
    remove_provider();
}

/// Installs a scripted EIP-1193 provider as `window.ethereum`. A real wallet cannot be
/// driven headless to refuse or to sit on another network on demand, so these faults are
/// injected (the real-chain path is the Playwright suite's).
fn install_provider(script: &str) {
    let f = js_sys::Function::new_no_args(&format!("window.ethereum = {script};"));
    f.call0(&JsValue::NULL).expect("installed");
}

fn remove_provider() {
    let f = js_sys::Function::new_no_args("delete window.ethereum;");
    f.call0(&JsValue::NULL).expect("removed");
}

#[wasm_bindgen_test]
async fn wallet_faults_have_clear_codes() {
    remove_provider();
    let err = wallet::connect_wallet().await.expect_err("no wallet");
    assert_eq!(err.code(), "no_wallet");

    install_provider(
        "{ request: async ({method}) => { \
             if (method === 'eth_chainId') return '0x1'; \
             if (method === 'eth_accounts') return ['0x70997970c51812dc3a010c7d01b50e0d17dc79c8']; \
             throw Object.assign(new Error('User rejected the request.'), {code: 4001}); } }",
    );
    let err = wallet::connect_wallet().await.expect_err("refused");
    assert_eq!(err.code(), "wallet_rejected");
    let err =
        wallet::send_wallet_transaction(js(&wallet_fixture(&[72, 120, 366])), js(&expected()))
            .await
            .expect_err("wrong chain");
    assert_eq!(err.code(), "wrong_network");
    assert!(
        err.message().contains("Ethereum mainnet"),
        "{}",
        err.message()
    );
    assert!(err.message().contains("chain 31337"), "{}", err.message());

    install_provider(
        "{ sent: null, request: async ({method, params}) => { \
             if (method === 'eth_chainId') return '0x7a69'; \
             if (method === 'eth_accounts' || method === 'eth_requestAccounts') \
                 return ['0x70997970c51812dc3a010c7d01b50e0d17dc79c8']; \
             if (method === 'eth_sendTransaction') { \
                 window.ethereum.sent = params[0]; \
                 throw Object.assign(new Error('User denied transaction signature.'), {code: 4001}); } \
             throw new Error('unexpected ' + method); } }",
    );
    let connected = back(&wallet::connect_wallet().await.expect("connected"));
    assert_eq!(connected["chainId"], 31337);
    assert_eq!(
        connected["address"],
        "0x70997970c51812dc3a010c7d01b50e0d17dc79c8"
    );
    let err =
        wallet::send_wallet_transaction(js(&wallet_fixture(&[72, 120, 366])), js(&expected()))
            .await
            .expect_err("refused");
    assert_eq!(err.code(), "wallet_rejected");
    let sent = js_sys::Function::new_no_args("return window.ethereum.sent;")
        .call0(&JsValue::NULL)
        .expect("sent");
    let sent = back(&sent);
    assert_eq!(sent["from"], "0x70997970c51812dc3a010c7d01b50e0d17dc79c8");
    assert_eq!(sent["to"], "0x5FbDB2315678afecb367f032d93F642f64180aa3");
    assert_eq!(sent["data"], wallet_fixture(&[72, 120, 366])["data"]);
    remove_provider();
}

#[wasm_bindgen_test]
async fn relay_errors_carry_code_and_status() {
    let origin = js_sys::Function::new_no_args("return location.origin;")
        .call0(&JsValue::NULL)
        .expect("origin")
        .as_string()
        .expect("origin string");
    let err = net::api(
        origin,
        Some("00".repeat(32)),
        "GET".into(),
        "/no/such/path".into(),
        JsValue::UNDEFINED,
    )
    .await
    .expect_err("404");
    assert_eq!(err.status(), Some(404));
    assert_eq!(err.code(), "relay_error");
    let thrown = JsValue::from(err);
    assert_eq!(
        js_sys::Reflect::get(&thrown, &"status".into())
            .expect("status")
            .as_f64(),
        Some(404.0)
    );
    let err = net::api(
        "http://127.0.0.1:9".into(),
        None,
        "GET".into(),
        "/api/v1/info".into(),
        JsValue::UNDEFINED,
    )
    .await
    .expect_err("unreachable");
    assert_eq!(err.code(), "relay_unreachable");
}
