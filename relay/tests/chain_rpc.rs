//! The chain's read-only proxy for browsers (`POST /api/v1/chain`), on a real anvil whose
//! first account is the relay's, unlocked — the embedded default. Everything a browser or
//! `mediblock verify` reads is forwarded, node errors included; everything that would act
//! as the relay or rewind the chain is refused before the node is asked, and the chain is
//! unchanged afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/http.rs"]
mod http;

#[path = "support/relay.rs"]
mod support;

use axum::http::StatusCode;
use mediblock_protocol::template::Template;
use mediblock_relay::chain::anvil::Anvil;
use mediblock_relay::chain::registry;
use mediblock_relay::store::Store;
use serde_json::{Value as Json, json};

const TEMPLATES: &str = include_str!("../../protocol/testdata/templates.json");

async fn rpc(app: &axum::Router, body: Json) -> (StatusCode, Json) {
    http::call(app, http::post("/api/v1/chain", None, body.to_string())).await
}

fn call(method: &str, params: Json) -> Json {
    json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsers_read_the_chain_and_cannot_act_as_the_relay() {
    let anvil = Anvil::start().unwrap();
    let file: Json = serde_json::from_str(TEMPLATES).unwrap();
    let template: Template = serde_json::from_value(file["template"].clone()).unwrap();
    let rules = registry::rules_for(&template);
    let chain = support::registry_with(&anvil, 0, &template, rules).await;
    let registry = format!("0x{}", hex::encode(chain.registry().0.0));
    let db = std::env::temp_dir().join(format!("mediblock-chain-rpc-{}.db", std::process::id()));
    let store = Store::open(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let (_, keys) = support::relay_keys(5);
    let app = mediblock_relay::app(support::state(store, keys, Some(chain.clone())));

    // Reads are forwarded, with the caller's id.
    let (status, body) = rpc(&app, call("eth_chainId", json!([]))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], 7);
    assert_eq!(body["result"], format!("0x{:x}", chain.chain_id()));
    let (_, body) = rpc(&app, call("eth_blockNumber", json!([]))).await;
    let head = body["result"].clone();
    assert!(head.is_string(), "{body}");
    // A reverting call reads as the node's error, revert data included (templateInfo(999)).
    let mut data = mediblock_protocol::hash::keccak256(b"templateInfo(uint16)")[..4].to_vec();
    data.extend_from_slice(&[0; 30]);
    data.extend_from_slice(&999u16.to_be_bytes());
    let (status, body) = rpc(
        &app,
        call(
            "eth_call",
            json!([{"to": registry, "data": format!("0x{}", hex::encode(&data))}, "latest"]),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["error"]["data"].as_str().is_some_and(|d| d.len() > 2),
        "{body}"
    );

    // What would act as the relay (its unlocked account), rewind or rewrite the chain, or
    // tell who is unlocked: refused, and the node is not asked.
    let relay = anvil.address(0).to_string();
    for (method, params) in [
        (
            "eth_sendTransaction",
            json!([{"from": relay, "to": registry, "data": "0x03"}]),
        ),
        ("eth_sendRawTransaction", json!(["0x02"])),
        ("eth_sign", json!([relay, "0x00"])),
        ("personal_sign", json!(["0x00", relay])),
        ("eth_accounts", json!([])),
        ("evm_snapshot", json!([])),
        ("evm_revert", json!(["0x1"])),
        ("evm_mine", json!([])),
        ("anvil_setCode", json!([registry, "0x00"])),
        ("anvil_reset", json!([])),
        ("debug_traceTransaction", json!(["0x00"])),
    ] {
        let (status, body) = rpc(&app, call(method, params)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method}: {body}");
        assert_eq!(body["code"], "rpc_method_not_allowed", "{method}: {body}");
    }
    let (_, body) = rpc(&app, call("eth_blockNumber", json!([]))).await;
    assert_eq!(body["result"], head, "the chain moved");

    // Not a single JSON-RPC 2.0 request: a batch, another version, params that are no array.
    for bad in [
        json!([call("eth_chainId", json!([]))]),
        json!({"jsonrpc": "1.0", "id": 1, "method": "eth_chainId"}),
        json!({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": {"a": 1}}),
        json!({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "extra": 1}),
    ] {
        let (status, body) = rpc(&app, bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["code"], "invalid_input", "{bad}: {body}");
    }
}
