//! Headless-Chromium tests of the transport: what `api`, `followStatus` and the JSON-RPC
//! check put on the wire (method, headers, body) and how every answer — success, the
//! relay's error shape, a broken node, no network — becomes a value or a `ClientError`.
//!
//! `window.fetch` is replaced by a stub that records each request (read back through the
//! standard `Request` object, whichever way it was called) and answers it; the stub is put
//! back before each test ends. The tests of this file run one after the other.
#![cfg(target_arch = "wasm32")]

use mediblock_client_wasm::{chain, net};
use serde_json::json;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

const RELAY: &str = "https://relay.test";
const RPC: &str = "https://node.test/rpc";

fn js(v: &serde_json::Value) -> JsValue {
    js_sys::JSON::parse(&v.to_string()).expect("JSON.parse")
}

fn back(v: &JsValue) -> serde_json::Value {
    if v.is_undefined() {
        return serde_json::Value::Null;
    }
    let text = String::from(js_sys::JSON::stringify(v).expect("stringify"));
    serde_json::from_str(&text).expect("JSON")
}

fn eval(script: &str) -> JsValue {
    js_sys::Function::new_no_args(script)
        .call0(&JsValue::NULL)
        .expect("script runs")
}

/// Replaces `window.fetch`: `handler` is the body of `async (req, body) => Response`, `req`
/// the standard `Request`, `body` its text. Every request is kept in `window.seen`.
fn stub_fetch(handler: &str) {
    eval(&format!(
        "window.realFetch = window.realFetch || window.fetch; window.seen = []; \
         const handle = async (req, body) => {{ {handler} }}; \
         window.fetch = async (input, init) => {{ \
             const req = new Request(input, init); \
             const body = await req.clone().text(); \
             window.seen.push({{ url: req.url, method: req.method, \
                 auth: req.headers.get('authorization'), \
                 type: req.headers.get('content-type'), body }}); \
             return handle(req, body); \
         }};"
    ));
}

fn unstub_fetch() {
    eval("if (window.realFetch) { window.fetch = window.realFetch; } window.seen = [];");
}

fn seen() -> serde_json::Value {
    back(&eval("return window.seen;"))
}

#[wasm_bindgen_test]
async fn api_sends_the_token_and_body_and_reads_every_answer() {
    stub_fetch(
        "const p = new URL(req.url).pathname; \
         const json = (status, v) => new Response(JSON.stringify(v), \
             { status, headers: { 'content-type': 'application/json' } }); \
         if (p === '/json') return json(200, { echoed: body }); \
         if (p === '/empty') return new Response(null, { status: 204 }); \
         if (p === '/text') return new Response('plain words', { status: 200 }); \
         if (p === '/conflict') return json(409, { code: 'conflict', message: 'already stored' }); \
         if (p === '/bare') return new Response('', { status: 418 }); \
         if (p === '/down') return json(503, { code: 'unavailable', message: 'chain is down' }); \
         if (p === '/silent') return json(502, { code: 'bad_gateway' }); \
         if (p === '/auth') return json(401, { code: 'unauthenticated', message: 'x' }); \
         if (p === '/internal') return json(500, { code: 'internal', message: 'x' }); \
         if (p === '/details') return json(400, { code: 'bad_request', message: 'no', details: { field: 'a' } }); \
         throw new TypeError('Failed to fetch');",
    );

    let answer = net::api(
        format!("{RELAY}/"),
        Some("tok".into()),
        "POST".into(),
        "/json".into(),
        js(&json!({"x": 1})),
    )
    .await
    .expect("json answer");
    assert_eq!(back(&answer), json!({"echoed": "{\"x\":1}"}));

    let bytes = js_sys::Uint8Array::from(&b"sealed"[..]);
    let answer = net::api(
        RELAY.into(),
        None,
        "PUT".into(),
        "/json".into(),
        bytes.into(),
    )
    .await
    .expect("bytes answer");
    assert_eq!(back(&answer), json!({"echoed": "sealed"}));

    let answer = net::api(
        RELAY.into(),
        Some("tok".into()),
        "GET".into(),
        "/empty".into(),
        JsValue::UNDEFINED,
    )
    .await
    .expect("empty answer");
    assert!(answer.is_null());

    let answer = net::api(
        RELAY.into(),
        None,
        "delete".into(),
        "/text".into(),
        JsValue::NULL,
    )
    .await
    .expect("text answer");
    assert_eq!(answer.as_string().as_deref(), Some("plain words"));

    assert_eq!(
        seen(),
        json!([
            {"url": "https://relay.test/json", "method": "POST", "auth": "Bearer tok",
             "type": "application/json", "body": "{\"x\":1}"},
            {"url": "https://relay.test/json", "method": "PUT", "auth": null,
             "type": "application/json", "body": "sealed"},
            {"url": "https://relay.test/empty", "method": "GET", "auth": "Bearer tok",
             "type": null, "body": ""},
            {"url": "https://relay.test/text", "method": "DELETE", "auth": null,
             "type": null, "body": ""},
        ])
    );

    let cases: [(&str, &str, Option<u16>, &str); 9] = [
        (
            "/conflict",
            "conflict",
            Some(409),
            "The relay refused the request: Already stored.",
        ),
        (
            "/bare",
            "relay_error",
            Some(418),
            "The relay refused the request (HTTP 418).",
        ),
        (
            "/down",
            "unavailable",
            Some(503),
            "The relay cannot do this now (chain is down). Try again later.",
        ),
        (
            "/silent",
            "bad_gateway",
            Some(502),
            "The relay cannot do this now (no reason given). Try again later.",
        ),
        (
            "/auth",
            "unauthenticated",
            Some(401),
            "Sign-in failed or your session has ended; please sign in again.",
        ),
        (
            "/internal",
            "internal",
            Some(500),
            "The relay had an internal error; try again later.",
        ),
        (
            "/details",
            "bad_request",
            Some(400),
            "The relay refused the request: No.",
        ),
        (
            "/offline",
            "relay_unreachable",
            None,
            "The relay cannot be reached. Check the network connection and try again.",
        ),
        // A token that cannot be a header value fails like the network, before any request.
        (
            "/never-sent",
            "relay_unreachable",
            None,
            "The relay cannot be reached. Check the network connection and try again.",
        ),
    ];
    for (path, code, status, message) in cases {
        let token = if path == "/never-sent" {
            "line\nbreak"
        } else {
            "tok"
        };
        let err = net::api(
            RELAY.into(),
            Some(token.into()),
            "GET".into(),
            path.into(),
            JsValue::UNDEFINED,
        )
        .await
        .expect_err(path);
        assert_eq!(
            (err.code(), err.status(), err.message()),
            (code, status, message),
            "{path}"
        );
        let thrown = JsValue::from(err);
        if path == "/details" {
            assert_eq!(
                back(&js_sys::Reflect::get(&thrown, &"details".into()).expect("details")),
                json!({"field": "a"})
            );
        }
    }
    let paths: Vec<String> = seen()
        .as_array()
        .expect("seen")
        .iter()
        .map(|r| r["url"].as_str().expect("url").to_owned())
        .collect();
    assert!(
        !paths.iter().any(|p| p.ends_with("/never-sent")),
        "{paths:?}"
    );
    assert!(paths.iter().any(|p| p.ends_with("/offline")), "{paths:?}");
    unstub_fetch();
}

#[wasm_bindgen_test]
async fn follow_status_reads_the_stream_with_the_bearer_token() {
    let tid = "00112233445566778899aabbccddeeff";
    stub_fetch(
        "const p = new URL(req.url).pathname; \
         const enc = new TextEncoder(); \
         if (p.endsWith('/events')) { \
             const parts = ['event: state\\ndata: {\"state\":\"queued\"}\\n\\n: keep-alive\\n\\nevent: sta', \
                            'te\\ndata: {\"state\":\"stored\",\"tx_hash\":\"0xbb\"}\\n\\n']; \
             return new Response(new ReadableStream({ start(c) { \
                 for (const part of parts) c.enqueue(enc.encode(part)); } }), \
                 { status: 200, headers: { 'content-type': 'text/event-stream' } }); \
         } \
         return new Response(JSON.stringify({ code: 'not_found', message: 'no such submission' }), \
             { status: 404 });",
    );
    eval("window.updates = [];");
    let on_update = js_sys::Function::new_with_args("view", "window.updates.push(view);");
    let last = net::follow_status(RELAY.into(), "tok".into(), tid.into(), on_update)
        .await
        .expect("final state");
    assert_eq!(back(&last), json!({"state": "stored", "tx_hash": "0xbb"}));
    assert_eq!(
        back(&eval("return window.updates;")),
        json!([{"state": "queued"}, {"state": "stored", "tx_hash": "0xbb"}])
    );
    assert_eq!(
        seen(),
        json!([{"url": format!("{RELAY}/api/v1/submissions/{tid}/events"), "method": "GET",
                "auth": "Bearer tok", "type": null, "body": ""}])
    );

    // A relay error on the stream is the relay's error, not a retry.
    stub_fetch(
        "return new Response(JSON.stringify({ code: 'not_found', message: 'no such submission' }), \
             { status: 404 });",
    );
    let err = net::follow_status(
        RELAY.into(),
        "tok".into(),
        tid.into(),
        js_sys::Function::new_no_args(""),
    )
    .await
    .expect_err("404");
    assert_eq!(
        (err.code(), err.status(), err.message()),
        (
            "not_found",
            Some(404),
            "The relay refused the request: No such submission."
        )
    );
    unstub_fetch();
}

/// The registry, as the requests name it.
const REGISTRY: &str = "0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
/// The registry as the fake node writes it in logs: mixed case, as a checksummed address.
const REGISTRY_IN_LOGS: &str = "0xaAaAaAaAaAaAaAaAaAaAaAaAaAaAaAaAaAaAaAaA";
/// The fake node's head block.
const HEAD: u64 = 5_500;

/// The log the checks below are about (the relay's log on the fake registry).
const LOG: u16 = 1;
/// The values hash the fake node's events hold unless a test says otherwise.
const VALUES: &str = "56565656565656565656565656565656565656565656565656565656565656ff";

/// A `RecordAnchored` log as the fake node returns it.
#[derive(Clone, Copy)]
struct Log<'a> {
    tid: &'a str,
    commitment: &'a str,
    /// The values hash (hex) the registry logged.
    values: &'a str,
    verdict: u8,
    /// The registry log (`info` bits 32..47) the event is in.
    log: u16,
    block: u64,
    /// The contract that emitted it.
    address: &'a str,
    /// Whether a reorganisation took its block off the chain.
    removed: bool,
}

impl<'a> Log<'a> {
    /// The registry's live log, in log [`LOG`], with the values hash [`VALUES`].
    fn at(tid: &'a str, commitment: &'a str, verdict: u8, block: u64) -> Self {
        Log {
            tid,
            commitment,
            values: VALUES,
            verdict,
            log: LOG,
            block,
            address: REGISTRY_IN_LOGS,
            removed: false,
        }
    }
}

/// What the fake registry answers to `templateInfo(3)`: id hash, version, template hash.
#[derive(Clone, Copy)]
struct Registered<'a> {
    id: &'a str,
    version: u32,
    hash: &'a str,
}

/// The template the fake registry holds under handle 3, unless a test says otherwise.
const REGISTERED: Registered<'static> = Registered {
    id: "2121212121212121212121212121212121212121212121212121212121212121",
    version: 1,
    hash: "4343434343434343434343434343434343434343434343434343434343434343",
};

/// A node with 31337 as `eth_chainId` and [`HEAD`] as `eth_blockNumber`, answering
/// `eth_call` only for the registry's `ticketUsed(LOG, ticket)` of `tid`'s ticket (`used`)
/// and its `templateInfo(3)` ([`REGISTERED`]), and `eth_getLogs` with every one of `logs`
/// inside the asked block range, whatever their address, topics or log (so the client's own
/// filtering is what is tested). Like a hosted node, it refuses a log range over
/// [`chain::LOG_RANGE`] blocks, reversed, or past its head.
fn stub_node(tid: &str, used: bool, logs: &[Log<'_>]) {
    stub_node_with(tid, used, logs, REGISTERED);
}

/// [`stub_node`] with `registered` under handle 3.
fn stub_node_with(tid: &str, used: bool, logs: &[Log<'_>], registered: Registered<'_>) {
    let topic0 = hex::encode(chain::record_anchored_topic());
    let ticket = u64::from_str_radix(&tid[..16], 16).expect("ticket");
    let call = hex::encode(chain::ticket_used_calldata(LOG, ticket));
    let info_call = hex::encode(chain::template_info_calldata(3));
    // (id, version, templateHash, validator 0, active, 3 attributes)
    let info_answer = format!(
        "{}{:064x}{}{}{:064x}{:064x}",
        registered.id,
        registered.version,
        registered.hash,
        "00".repeat(32),
        1,
        3
    );
    let logs: Vec<serde_json::Value> = logs
        .iter()
        .map(|l| {
            let mut info = [0u8; 32];
            info[..20].copy_from_slice(&[0x12; 20]);
            info[26..28].copy_from_slice(&l.log.to_be_bytes());
            info[29] = 3; // template handle
            info[30] = l.verdict;
            info[31] = 1; // relay path
            json!({"removed": l.removed, "address": l.address,
                   "topics": [format!("0x{topic0}"), format!("0x{}{}", l.tid, "00".repeat(16))],
                   "data": format!("0x{}{}{}", l.commitment, l.values, hex::encode(info)),
                   "blockNumber": format!("0x{:x}", l.block),
                   "transactionHash": format!("0x{}", "bb".repeat(32))})
        })
        .collect();
    stub_fetch(&format!(
        "const rpc = JSON.parse(body); \
         const reply = (v) => new Response(JSON.stringify(Object.assign({{ jsonrpc: '2.0', id: rpc.id }}, v))); \
         const block = (b) => (b === 'latest' ? {head} : parseInt(b, 16)); \
         if (rpc.method === 'eth_chainId') return reply({{ result: '0x7a69' }}); \
         if (rpc.method === 'eth_blockNumber') return reply({{ result: '0x{head:x}' }}); \
         if (rpc.method === 'eth_call' && rpc.params[0].to === '0x{registry}' \
             && rpc.params[0].data === '0x{call}' && rpc.params[1] === 'latest') \
             return reply({{ result: '0x' + '00'.repeat(31) + '{used}' }}); \
         if (rpc.method === 'eth_call' && rpc.params[0].to === '0x{registry}' \
             && rpc.params[0].data === '0x{info_call}' && rpc.params[1] === 'latest') \
             return reply({{ result: '0x{info_answer}' }}); \
         if (rpc.method === 'eth_call') return reply({{ error: {{ code: 3, message: 'execution reverted' }} }}); \
         if (rpc.method === 'eth_getLogs') {{ \
             const f = rpc.params[0]; \
             const [from, to] = [block(f.fromBlock), block(f.toBlock)]; \
             if (!(from <= to)) return reply({{ error: {{ code: -32602, message: 'invalid block range' }} }}); \
             if (to > {head}) return reply({{ error: {{ code: -32602, message: 'block range extends beyond current head block' }} }}); \
             if (to - from + 1 > {max}) return reply({{ error: {{ code: -32005, message: 'query exceeds max block range {max}' }} }}); \
             return reply({{ result: {logs}.filter((l) => \
                 block(l.blockNumber) >= block(f.fromBlock) && block(l.blockNumber) <= block(f.toBlock)) }}); \
         }} \
         return reply({{ error: {{ code: -32601, message: 'method not found' }} }});",
        registry = "aa".repeat(20),
        head = HEAD,
        max = chain::LOG_RANGE,
        used = if used { "01" } else { "00" },
        logs = serde_json::Value::Array(logs),
    ));
}

/// The JSON-RPC methods of the calls `seen()` recorded, with their params.
fn rpc_calls() -> Vec<(String, serde_json::Value)> {
    seen()
        .as_array()
        .expect("calls")
        .iter()
        .map(|c| {
            let body: serde_json::Value =
                serde_json::from_str(c["body"].as_str().expect("body")).expect("JSON body");
            (
                body["method"].as_str().expect("method").to_owned(),
                body["params"].clone(),
            )
        })
        .collect()
}

#[wasm_bindgen_test]
async fn verify_on_chain_speaks_json_rpc_over_fetch() {
    let tid = "00112233445566778899aabbccddeeff";
    let commitment = "11".repeat(32);
    stub_node(tid, true, &[Log::at(tid, &commitment, 0, 12)]);
    let req = json!({"rpc": RPC, "registry": format!("0x{}", "aa".repeat(20)), "log": LOG,
                     "tid": tid, "commitment": commitment, "verdict": "valid", "chainId": 31337});
    let found = chain::verify_on_chain(js(&req)).await.expect("verified");
    let found = back(&found);
    assert_eq!(found["status"], "verified", "{found}");
    assert_eq!(found["blockNumber"], 12);
    assert_eq!(found["txHash"], format!("0x{}", "bb".repeat(32)));
    let calls = seen();
    let calls = calls.as_array().expect("calls");
    let methods: Vec<String> = calls
        .iter()
        .map(|c| {
            assert_eq!(
                (&c["url"], &c["method"], &c["auth"], &c["type"]),
                (
                    &json!(RPC),
                    &json!("POST"),
                    &json!(null),
                    &json!("application/json")
                ),
                "{c}"
            );
            let body: serde_json::Value =
                serde_json::from_str(c["body"].as_str().expect("body")).expect("JSON body");
            assert_eq!((&body["jsonrpc"], &body["id"]), (&json!("2.0"), &json!(1)));
            assert!(body["params"].is_array(), "{body}");
            body["method"].as_str().expect("method").to_owned()
        })
        .collect();
    assert_eq!(
        methods,
        ["eth_chainId", "eth_call", "eth_blockNumber", "eth_getLogs"]
    );
    // The log filter: the registry, RecordAnchored and the tid topic, over the first range of
    // blocks from 0 (where the log is).
    let (_, params) = &rpc_calls()[3];
    assert_eq!(
        params,
        &json!([{"address": REGISTRY,
                 "topics": [format!("0x{}", hex::encode(chain::record_anchored_topic())),
                            format!("0x{tid}{}", "00".repeat(16))],
                 "fromBlock": "0x0", "toBlock": "0x7cf"}])
    );

    let wrong_chain = json!({"rpc": RPC, "registry": format!("0x{}", "aa".repeat(20)),
                             "log": LOG, "tid": tid, "commitment": commitment, "chainId": 1});
    let err = chain::verify_on_chain(js(&wrong_chain))
        .await
        .expect_err("wrong chain");
    assert_eq!(err.code(), "wrong_network");

    let plain = json!({"rpc": RPC, "registry": format!("0x{}", "aa".repeat(20)), "log": LOG,
                       "tid": tid, "commitment": commitment});
    let faults: [(&str, String); 4] = [
        (
            "return new Response('<html>proxy error</html>', { status: 502 });",
            format!("The Ethereum node at {RPC} did not answer JSON-RPC."),
        ),
        (
            "return new Response(JSON.stringify({ jsonrpc: '2.0', id: 1, error: { code: 3, message: 'execution reverted' } }));",
            "The Ethereum node refused eth_call: execution reverted.".to_owned(),
        ),
        (
            "return new Response(JSON.stringify({ jsonrpc: '2.0', id: 1 }));",
            "The Ethereum node's answer to eth_call has no result.".to_owned(),
        ),
        (
            "throw new TypeError('Failed to fetch');",
            format!(
                "The Ethereum node at {RPC} cannot be reached, so the anchor cannot be checked."
            ),
        ),
    ];
    for (handler, message) in faults {
        stub_fetch(handler);
        let err = chain::verify_on_chain(js(&plain)).await.expect_err(handler);
        assert_eq!((err.code(), err.message()), ("rpc_error", message.as_str()));
        assert_eq!(err.status(), None);
    }
    unstub_fetch();
}

/// The block ranges `(from, to)` of the `eth_getLogs` calls among `calls`, in order.
fn log_ranges(calls: &[(String, serde_json::Value)]) -> Vec<(u64, u64)> {
    let number = |v: &serde_json::Value| {
        let s = v.as_str().expect("a hex block number");
        u64::from_str_radix(s.strip_prefix("0x").expect("0x"), 16).expect("hex")
    };
    calls
        .iter()
        .filter(|(m, _)| m == "eth_getLogs")
        .map(|(_, p)| (number(&p[0]["fromBlock"]), number(&p[0]["toBlock"])))
        .collect()
}

/// Runs `verifyOnChain` for `tid` with `commitment` against the stubbed node; the finding and
/// the JSON-RPC calls it made.
async fn verify_with(
    tid: &str,
    commitment: &str,
    extra: serde_json::Value,
) -> (serde_json::Value, Vec<(String, serde_json::Value)>) {
    let mut req = json!({"rpc": RPC, "registry": format!("0x{}", "aa".repeat(20)), "log": LOG,
                         "tid": tid, "commitment": commitment, "verdict": "valid"});
    for (k, v) in extra.as_object().expect("object") {
        req[k] = v.clone();
    }
    eval("window.seen = [];");
    let found = chain::verify_on_chain(js(&req)).await.expect("an answer");
    (back(&found), rpc_calls())
}

#[wasm_bindgen_test]
async fn verify_on_chain_judges_the_ticket_and_the_tids_event() {
    let tid = "0000000000000a01c0ffee00c0ffee00";
    let other_tid = "0000000000000a01deadbeefdeadbeef"; // the same ticket, another tid
    let commitment = "11".repeat(32);
    let methods = |calls: &[(String, serde_json::Value)]| -> Vec<String> {
        calls.iter().map(|(m, _)| m.clone()).collect()
    };

    // Ticket unused: never anchored; no log search is needed.
    stub_node(tid, false, &[]);
    let (f, calls) = verify_with(tid, &commitment, json!({})).await;
    assert_eq!(f["status"], "missing", "{f}");
    assert_eq!(
        (&f["blockNumber"], &f["txHash"]),
        (&json!(null), &json!(null))
    );
    assert_eq!(methods(&calls), ["eth_call"]);
    assert_eq!(
        calls[0].1[0]["data"],
        format!("0x{}", hex::encode(chain::ticket_used_calldata(LOG, 0xa01)))
    );

    // Ticket used, but no event for this tid: another tid took the ticket.
    stub_node(tid, true, &[]);
    let (f, calls) = verify_with(tid, &commitment, json!({})).await;
    assert_eq!(f["status"], "mismatch", "{f}");
    let detail = f["detail"].as_str().expect("detail");
    assert!(
        detail.contains("ticket was used by another record"),
        "{detail}"
    );
    // The whole chain was searched, range by range, before concluding so.
    assert_eq!(
        methods(&calls),
        [
            "eth_call",
            "eth_blockNumber",
            "eth_getLogs",
            "eth_getLogs",
            "eth_getLogs"
        ]
    );
    assert_eq!(
        log_ranges(&calls),
        [(0, 1_999), (2_000, 3_999), (4_000, HEAD)]
    );

    // A node that ignores the topic filter and returns the other tid's event: it is not
    // this record's anchor.
    let stray = [Log::at(other_tid, &commitment, 0, 12)];
    stub_node(tid, true, &stray);
    let (f, _) = verify_with(tid, &commitment, json!({})).await;
    assert_eq!(f["status"], "mismatch", "{f}");
    assert!(
        f["detail"].as_str().expect("detail").contains("ticket"),
        "{f}"
    );

    // The event carries another commitment (here only its last byte differs).
    fn ours<'a>(tid: &'a str, commitment: &'a str, verdict: u8) -> [Log<'a>; 1] {
        [Log::at(tid, commitment, verdict, 12)]
    }
    let changed = format!("{}12", "11".repeat(31));
    stub_node(tid, true, &ours(tid, &changed, 0));
    let (f, _) = verify_with(tid, &commitment, json!({})).await;
    assert_eq!(f["status"], "mismatch", "{f}");
    assert!(
        f["detail"]
            .as_str()
            .expect("detail")
            .contains("different commitment"),
        "{f}"
    );
    assert_eq!(f["blockNumber"], 12);

    // The verdict: rejected on chain (at on-chain attribute 1) is a mismatch for a record
    // claimed valid, and verified for one claimed rejected.
    stub_node(tid, true, &ours(tid, &commitment, 2));
    let (f, _) = verify_with(tid, &commitment, json!({})).await;
    assert_eq!(f["status"], "mismatch", "{f}");
    assert!(
        f["detail"].as_str().expect("detail").contains("rejected"),
        "{f}"
    );
    let (f, _) = verify_with(tid, &commitment, json!({"verdict": "rejected"})).await;
    assert_eq!(f["status"], "verified", "{f}");

    // The block hint is searched first; found there, the whole chain is not searched.
    stub_node(tid, true, &ours(tid, &commitment, 0));
    let (f, calls) = verify_with(
        tid,
        &commitment,
        json!({"blockNumber": 12, "txHash": format!("0x{}", "bb".repeat(32))}),
    )
    .await;
    assert_eq!(
        (&f["status"], &f["blockNumber"]),
        (&json!("verified"), &json!(12)),
        "{f}"
    );
    assert_eq!(methods(&calls), ["eth_call", "eth_getLogs"]);
    assert_eq!(
        (&calls[1].1[0]["fromBlock"], &calls[1].1[0]["toBlock"]),
        (&json!("0xc"), &json!("0xc"))
    );
    // A wrong hint: the chain from block 0 next (see
    // `verify_on_chain_scans_past_a_wrong_hint_in_bounded_ranges` for a longer chain).
    let (f, calls) = verify_with(tid, &commitment, json!({"blockNumber": 5})).await;
    assert_eq!(
        (&f["status"], &f["blockNumber"]),
        (&json!("verified"), &json!(12)),
        "{f}"
    );
    assert_eq!(
        methods(&calls),
        ["eth_call", "eth_getLogs", "eth_blockNumber", "eth_getLogs"]
    );
    assert_eq!(log_ranges(&calls), [(5, 5), (0, 1_999)]);
    // Anchored by another transaction than the relay names.
    let (f, _) = verify_with(
        tid,
        &commitment,
        json!({"txHash": format!("0x{}", "cc".repeat(32))}),
    )
    .await;
    assert_eq!(f["status"], "mismatch", "{f}");

    // A node that refuses the log search cannot confirm the anchor: an rpc_error, not a
    // verdict (the event is the only per-record fact on chain).
    stub_fetch(
        "const rpc = JSON.parse(body); \
         const reply = (v) => new Response(JSON.stringify(Object.assign({ jsonrpc: '2.0', id: rpc.id }, v))); \
         if (rpc.method === 'eth_call') return reply({ result: '0x' + '00'.repeat(31) + '01' }); \
         if (rpc.method === 'eth_blockNumber') return reply({ result: '0x10' }); \
         return reply({ error: { code: -32005, message: 'query returned more than 10000 results' } });",
    );
    // (With a hint: its refusal only leads to the scan, whose refusal is the error.)
    let req = json!({"rpc": RPC, "registry": format!("0x{}", "aa".repeat(20)), "log": LOG,
                     "tid": tid, "commitment": commitment, "blockNumber": 12});
    let err = chain::verify_on_chain(js(&req)).await.expect_err("refused");
    assert_eq!(
        (err.code(), err.message()),
        (
            "rpc_error",
            "The Ethereum node refused eth_getLogs: query returned more than 10000 results."
        )
    );

    // An answer to ticketUsed that is not a bool word.
    stub_fetch(
        "const rpc = JSON.parse(body); \
         return new Response(JSON.stringify({ jsonrpc: '2.0', id: rpc.id, result: '0x' + '00'.repeat(31) + '07' }));",
    );
    let err = chain::verify_on_chain(js(&req))
        .await
        .expect_err("not a bool");
    assert_eq!(
        (err.code(), err.message()),
        (
            "rpc_error",
            "The registry's answer to ticketUsed cannot be read (is this the registry?)."
        )
    );
    unstub_fetch();
}

#[wasm_bindgen_test]
async fn verify_on_chain_scans_past_a_wrong_hint_in_bounded_ranges() {
    let tid = "0000000000000b02c0ffee00c0ffee00";
    let commitment = "11".repeat(32);
    let changed = format!("{}12", "11".repeat(31));
    let anchored = 4_321;
    let status = |f: &serde_json::Value| (f["status"].clone(), f["blockNumber"].clone());
    let verified_at = |b: u64| (json!("verified"), json!(b));
    // The node refuses any range over LOG_RANGE blocks, so a check asking for the whole
    // chain at once (5,501 blocks) would end in rpc_error; every ask must stay in bounds.
    let bounded = |calls: &[(String, serde_json::Value)]| {
        for (from, to) in log_ranges(calls) {
            assert!(
                from <= to && to - from < chain::LOG_RANGE && to <= HEAD,
                "{from}..={to}"
            );
        }
    };

    // A wrong hint: the hint block, then the chain from block 0 in ranges of 2,000 blocks,
    // stopping at the range that holds the event.
    stub_node(tid, true, &[Log::at(tid, &commitment, 0, anchored)]);
    let (f, calls) = verify_with(tid, &commitment, json!({"blockNumber": 5})).await;
    assert_eq!(status(&f), verified_at(anchored), "{f}");
    assert_eq!(
        log_ranges(&calls),
        [(5, 5), (0, 1_999), (2_000, 3_999), (4_000, HEAD)]
    );
    bounded(&calls);
    // No hint at all: the same scan.
    let (f, calls) = verify_with(tid, &commitment, json!({})).await;
    assert_eq!(status(&f), verified_at(anchored), "{f}");
    assert_eq!(
        log_ranges(&calls),
        [(0, 1_999), (2_000, 3_999), (4_000, HEAD)]
    );
    // A hint past the head, which this node refuses to search: the scan, not an error.
    let (f, calls) = verify_with(tid, &commitment, json!({"blockNumber": 9_000_000})).await;
    assert_eq!(status(&f), verified_at(anchored), "{f}");
    assert_eq!(log_ranges(&calls)[0], (9_000_000, 9_000_000));
    assert_eq!(log_ranges(&calls).len(), 4);

    // A tampered record (the chain's event carries another commitment) behind a wrong hint:
    // TAMPERED, not "not checked".
    stub_node(tid, true, &[Log::at(tid, &changed, 0, anchored)]);
    let (f, calls) = verify_with(tid, &commitment, json!({"blockNumber": 5})).await;
    assert_eq!(f["status"], "mismatch", "{f}");
    assert_eq!(f["blockNumber"], anchored);
    assert!(
        f["detail"]
            .as_str()
            .expect("detail")
            .contains("different commitment"),
        "{f}"
    );
    bounded(&calls);

    // A log of this tid from another contract, and one of a block that left the chain, are
    // not the anchor, even where the hint points; the registry's own log decides.
    let (other, gone) = ("22".repeat(32), "33".repeat(32));
    let foreign = Log {
        address: "0xabababababababababababababababababababab",
        ..Log::at(tid, &other, 0, 100)
    };
    let reorged = Log {
        removed: true,
        ..Log::at(tid, &gone, 0, 2_500)
    };
    stub_node(
        tid,
        true,
        &[foreign, reorged, Log::at(tid, &commitment, 0, anchored)],
    );
    for hint in [
        json!({"blockNumber": 100}),
        json!({"blockNumber": 2_500}),
        json!({}),
    ] {
        let (f, _) = verify_with(tid, &commitment, hint.clone()).await;
        assert_eq!(status(&f), verified_at(anchored), "{hint} {f}");
    }
    // Without the registry's log, the decoys do not make an anchor: the ticket is used and
    // this tid has no event.
    stub_node(tid, true, &[foreign, reorged]);
    let (f, calls) = verify_with(tid, &commitment, json!({"blockNumber": 100})).await;
    assert_eq!(f["status"], "mismatch", "{f}");
    assert!(
        f["detail"].as_str().expect("detail").contains("ticket"),
        "{f}"
    );
    assert_eq!(
        log_ranges(&calls),
        [(100, 100), (0, 1_999), (2_000, 3_999), (4_000, HEAD)]
    );

    // fromBlock (the registry's deployment block): nothing below it is asked, not even a
    // hint below it.
    stub_node(tid, true, &[Log::at(tid, &commitment, 0, anchored)]);
    let (f, calls) = verify_with(
        tid,
        &commitment,
        json!({"blockNumber": 5, "fromBlock": 3_000}),
    )
    .await;
    assert_eq!(status(&f), verified_at(anchored), "{f}");
    assert_eq!(log_ranges(&calls), [(3_000, 4_999)]);
    // A fromBlock past the anchor (a relay lying about its deployment block) cannot make
    // the record pass: its event is not found, and the used ticket makes it a mismatch.
    let (f, calls) = verify_with(tid, &commitment, json!({"fromBlock": 4_322})).await;
    assert_eq!(f["status"], "mismatch", "{f}");
    assert_eq!(log_ranges(&calls), [(4_322, HEAD)]);
    // Past the head: nothing to search.
    let (f, calls) = verify_with(tid, &commitment, json!({"fromBlock": 6_000})).await;
    assert_eq!(f["status"], "mismatch", "{f}");
    assert!(log_ranges(&calls).is_empty());
    unstub_fetch();
}

/// The record's content as `verifyOnChain` takes it: the values hash [`VALUES`] and the
/// template [`REGISTERED`] (by its chain id).
fn content() -> serde_json::Value {
    json!({"valuesHash": VALUES, "templateHash": REGISTERED.hash,
           "templateChainId": format!("0x{}", REGISTERED.id), "templateVersion": REGISTERED.version})
}

#[wasm_bindgen_test]
async fn verify_on_chain_binds_the_verdict_to_the_records_values_template_and_log() {
    let tid = "0000000000000c03c0ffee00c0ffee00";
    let commitment = "11".repeat(32);
    let methods = |calls: &[(String, serde_json::Value)]| -> Vec<String> {
        calls.iter().map(|(m, _)| m.clone()).collect()
    };

    // The event holds the record's values hash and the handle holds its template: verified,
    // after reading templateInfo of the event's handle.
    stub_node(tid, true, &[Log::at(tid, &commitment, 0, 12)]);
    let (f, calls) = verify_with(tid, &commitment, content()).await;
    assert_eq!(
        (&f["status"], &f["blockNumber"], &f["valuesHash"]),
        (&json!("verified"), &json!(12), &json!(VALUES)),
        "{f}"
    );
    assert_eq!(
        methods(&calls),
        ["eth_call", "eth_blockNumber", "eth_getLogs", "eth_call"]
    );
    assert_eq!(
        calls[3].1,
        json!([{"to": REGISTRY,
                "data": format!("0x{}", hex::encode(chain::template_info_calldata(3)))},
               "latest"])
    );
    // The template by its id instead of its chain id: the same check (REGISTERED.id is not
    // the hash of a real id, so register that id's hash under the handle).
    let id_hash = hex::encode(mediblock_protocol::hash::keccak256(b"vital-signs"));
    stub_node_with(
        tid,
        true,
        &[Log::at(tid, &commitment, 0, 12)],
        Registered {
            id: &id_hash,
            ..REGISTERED
        },
    );
    let mut by_name = content();
    by_name["templateChainId"] = json!(null);
    by_name["templateId"] = json!("vital-signs");
    let (f, _) = verify_with(tid, &commitment, by_name).await;
    assert_eq!(f["status"], "verified", "{f}");

    // ATTACK: the chain judged other values than the record's (the relay anchored the tid
    // and commitment with values of its choosing). Valid on chain, and still not about
    // this record.
    let other = format!("{}00", &VALUES[..62]);
    let falsified = Log {
        values: &other,
        ..Log::at(tid, &commitment, 0, 12)
    };
    stub_node(tid, true, &[falsified]);
    let (f, _) = verify_with(tid, &commitment, content()).await;
    assert_eq!(
        (&f["status"], &f["detail"]),
        (&json!("mismatch"), &json!(chain::OTHER_VALUES)),
        "{f}"
    );
    assert_eq!(f["valuesHash"], json!(other));
    // Without the content (an erased record) the values cannot be compared: only the
    // commitment and verdict are, and templateInfo is not read.
    let (f, calls) = verify_with(tid, &commitment, json!({})).await;
    assert_eq!(f["status"], "verified", "{f}");
    assert_eq!(
        methods(&calls),
        ["eth_call", "eth_blockNumber", "eth_getLogs"]
    );

    // Another template (or version, or template bytes) under the event's handle.
    for registered in [
        Registered {
            id: &"22".repeat(32),
            ..REGISTERED
        },
        Registered {
            version: 2,
            ..REGISTERED
        },
        Registered {
            hash: &"44".repeat(32),
            ..REGISTERED
        },
    ] {
        stub_node_with(tid, true, &[Log::at(tid, &commitment, 0, 12)], registered);
        let (f, _) = verify_with(tid, &commitment, content()).await;
        assert_eq!(f["status"], "mismatch", "{f}");
        let detail = f["detail"].as_str().expect("detail");
        assert!(detail.contains("handle 3"), "{detail}");
        assert!(detail.contains("not about this record"), "{detail}");
    }

    // Another relay's copy of the tid in its log 2 is not this record's anchor: with the
    // ticket unused in log 1, the record is missing there; with it used, its ticket went to
    // another record. The scan does not stop at the other log's event.
    let elsewhere = Log {
        log: 2,
        ..Log::at(tid, &commitment, 0, 12)
    };
    stub_node(tid, false, &[elsewhere]);
    let (f, calls) = verify_with(tid, &commitment, content()).await;
    assert_eq!(f["status"], "missing", "{f}");
    assert_eq!(methods(&calls), ["eth_call"]);
    stub_node(tid, true, &[elsewhere]);
    let (f, calls) = verify_with(tid, &commitment, content()).await;
    assert_eq!(
        (&f["status"], &f["blockNumber"]),
        (&json!("mismatch"), &json!(null)),
        "{f}"
    );
    assert_eq!(
        log_ranges(&calls),
        [(0, 1_999), (2_000, 3_999), (4_000, HEAD)]
    );
    // Both: the event of log 1 decides, wherever the other one is.
    stub_node(tid, true, &[elsewhere, Log::at(tid, &commitment, 0, 4_100)]);
    let (f, _) = verify_with(tid, &commitment, content()).await;
    assert_eq!(
        (&f["status"], &f["blockNumber"]),
        (&json!("verified"), &json!(4_100)),
        "{f}"
    );
    // The ticket asked about is the one of log 1.
    let ticket_call = format!("0x{}", hex::encode(chain::ticket_used_calldata(LOG, 0xc03)));
    assert_eq!(
        verify_with(tid, &commitment, content()).await.1[0].1[0]["data"],
        ticket_call
    );

    // Input: the log is required and numbered from 1; the content is all four or none.
    let base = json!({"rpc": RPC, "registry": REGISTRY, "tid": tid, "commitment": commitment});
    let refused = |req: serde_json::Value| async move {
        chain::verify_on_chain(js(&req)).await.expect_err("refused")
    };
    for log in [json!(null), json!(0), json!(65_536), json!(1.5), json!("1")] {
        let mut req = base.clone();
        if !log.is_null() {
            req["log"] = log.clone();
        }
        let err = refused(req).await;
        assert_eq!(err.code(), "invalid_input", "{log}");
        assert!(err.message().contains("log"), "{}", err.message());
    }
    let mut partial = base.clone();
    partial["log"] = json!(LOG);
    partial["valuesHash"] = json!(VALUES);
    let err = refused(partial.clone()).await;
    assert_eq!(err.code(), "invalid_input");
    assert!(
        err.message()
            .contains("missing: templateHash, templateId, templateVersion"),
        "{}",
        err.message()
    );
    let mut both = partial;
    for (k, v) in content().as_object().expect("object") {
        both[k] = v.clone();
    }
    both["templateId"] = json!("vital-signs");
    assert_eq!(refused(both).await.code(), "invalid_input");
    unstub_fetch();
}
