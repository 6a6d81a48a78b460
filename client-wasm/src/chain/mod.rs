//! Checking a record's anchor on chain from the browser, in the log the browser trusts: the
//! registry's `ticketUsed(uint16 log, uint64 ticket)` view (`eth_call`, the ticket being the
//! tid's first 8 bytes), the record's `RecordAnchored` log of that log (`eth_getLogs`,
//! topic = tid) and, when the record's content is checked, `templateInfo(handle)` of the
//! event's template handle, over a JSON-RPC URL with `fetch` or through the wallet
//! (EIP-1193). The relay and its database are not asked, so a lying relay or an edited
//! database is caught here.
//!
//! The registry keeps no per-record storage: it marks each ticket used once per log and logs
//! the record (commitment, the hash of the values it judged, and `info` = submitter · log ·
//! template · verdict · path) in its `RecordAnchored` event, at most one per ticket and log.
//! So the event of the tid whose `info` names the log is the record's anchor, and the
//! ticket's bit tells "never anchored" (unused) from "the ticket went to another tid" (used,
//! but no event for this tid). A tid is unique only within a log: another relay may anchor a
//! copy of it in its own log, and that event is not this record's anchor.
//!
//! A verdict is about the values it judged: the event's `valuesHash` must be the
//! `values_hash` of the record's own on-chain values, and the template under the event's
//! handle must be the record's (id, version and keccak256 of the template), or the chain's
//! verdict is not about this record (`docs/PROTOCOL.md` §5).
//!
//! `abi.rs` encodes and decodes the registry's calls and event with alloy's `sol!` types,
//! `judge.rs` decides (no I/O), and this module is the transport (the browser's `fetch` or
//! the wallet) and the `verifyOnChain` entry point.

mod abi;
mod judge;

pub use abi::{
    AnchoredEvent, decode_record_anchored, decode_template_info, decode_ticket_used,
    record_anchored_topic, template_info_calldata, ticket_used_calldata, tid_topic,
};
pub use judge::{Claim, Claimed, Finding, FoundLog, OTHER_VALUES, RecordContent, Seen, judge};

use mediblock_protocol::hash::Hash32;
use mediblock_protocol::ids::{ChainHash, Commitment, EthAddress, TemplateId, TxId};
use mediblock_protocol::proof::TemplateInfo;
use serde_json::{Value as Json, json};
use wasm_bindgen::prelude::*;

use crate::error::{ClientError, Result};
use crate::js::{self, get_str, to_js};

fn rpc_error(message: impl Into<String>) -> ClientError {
    ClientError::new("rpc_error", crate::error::capitalise(&message.into()))
}

/// Where JSON-RPC requests go.
#[derive(Debug)]
pub(crate) enum Endpoint {
    /// A JSON-RPC URL, over `fetch`.
    Url(String),
    /// The wallet's EIP-1193 provider (`window.ethereum`).
    Wallet(JsValue),
}

impl Endpoint {
    /// One JSON-RPC call.
    pub(crate) async fn call(&self, method: &str, params: Json) -> Result<Json> {
        match self {
            Endpoint::Url(url) => rpc_over_fetch(url, method, params).await,
            Endpoint::Wallet(provider) => {
                let params = to_js(&params)?;
                let answer = crate::wallet::request(provider, method, &params).await?;
                serde_wasm_bindgen::from_value(answer).map_err(|_| {
                    rpc_error(format!("The wallet's answer to {method} cannot be read"))
                })
            }
        }
    }
}

async fn rpc_over_fetch(url: &str, method: &str, params: Json) -> Result<Json> {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let unreachable = |_| {
        rpc_error(format!(
            "The Ethereum node at {url} cannot be reached, so the anchor cannot be checked"
        ))
    };
    let response = gloo_net::http::Request::post(url)
        .json(&body)
        .map_err(unreachable)?
        .send()
        .await
        .map_err(unreachable)?;
    let answer: Json = response.json().await.map_err(|e| match e {
        gloo_net::Error::SerdeError(_) => rpc_error(format!(
            "The Ethereum node at {url} did not answer JSON-RPC"
        )),
        // The body could not be read: the connection broke during the answer.
        _ => crate::net::unreachable_relay(),
    })?;
    if let Some(err) = answer.get("error") {
        let message = err["message"].as_str().unwrap_or("unknown error");
        return Err(rpc_error(format!(
            "The Ethereum node refused {method}: {message}"
        )));
    }
    answer.get("result").cloned().ok_or_else(|| {
        rpc_error(format!(
            "The Ethereum node's answer to {method} has no result"
        ))
    })
}

fn hex_bytes(v: &Json, what: &str) -> Result<Vec<u8>> {
    let s = v
        .as_str()
        .ok_or_else(|| rpc_error(format!("{what} is not a hex string")))?;
    hex::decode(s.strip_prefix("0x").unwrap_or(s))
        .map_err(|_| rpc_error(format!("{what} is not hex")))
}

fn hex_u64(v: &Json, what: &str) -> Result<u64> {
    let s = v
        .as_str()
        .ok_or_else(|| rpc_error(format!("{what} is not a hex number")))?;
    u64::from_str_radix(s.strip_prefix("0x").unwrap_or(s), 16)
        .map_err(|_| rpc_error(format!("{what} is not a hex number")))
}

fn word(v: &Json, what: &str) -> Result<[u8; 32]> {
    hex_bytes(v, what)?
        .try_into()
        .map_err(|_| rpc_error(format!("{what} is not 32 bytes")))
}

/// The chain id the endpoint is on.
pub(crate) async fn chain_id(endpoint: &Endpoint) -> Result<u64> {
    hex_u64(
        &endpoint.call("eth_chainId", json!([])).await?,
        "The chain id",
    )
}

/// The most blocks one `eth_getLogs` asks for, as the relay does (`LOG_RANGE` there): hosted
/// nodes refuse a request over a whole chain.
pub const LOG_RANGE: u64 = 2_000;

/// Where to look for a record's `RecordAnchored` log.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub(crate) struct Search {
    /// The block the relay's ACK names: looked at first, but only a hint.
    pub(crate) hint: Option<u64>,
    /// The first block that can hold the log (the registry's deployment block, else 0).
    pub(crate) from: u64,
}

/// Finds the `RecordAnchored` log of `tid` in log `log`: first in the hint block when given
/// (and not before `search.from`), then from `search.from` to the head in ranges of at most
/// [`LOG_RANGE`] blocks, stopping at the first range that holds it.
///
/// The hint comes from the relay's ACK, so it is only a shortcut: a wrong one, or a node
/// refusing it (a block past its head, say), leads to the scan, never to a verdict or an
/// error. A node that refuses the scan is an `rpc_error`: without the event (the registry
/// keeps nothing else per record) the anchor cannot be checked.
async fn find_log(
    endpoint: &Endpoint,
    registry: &EthAddress,
    tid: &TxId,
    log: u16,
    search: Search,
) -> Result<Option<FoundLog>> {
    let Search { hint, from } = search;
    if let Some(b) = hint.filter(|b| *b >= from)
        && let Ok(Some(found)) = logs_in(endpoint, registry, tid, log, b, b).await
    {
        return Ok(Some(found));
    }
    let head = hex_u64(
        &endpoint.call("eth_blockNumber", json!([])).await?,
        "The head block number",
    )?;
    let mut start = from;
    while start <= head {
        let end = head.min(start.saturating_add(LOG_RANGE - 1));
        if let Some(found) = logs_in(endpoint, registry, tid, log, start, end).await? {
            return Ok(Some(found));
        }
        let Some(next) = end.checked_add(1) else {
            break;
        };
        start = next;
    }
    Ok(None)
}

/// This tid's `RecordAnchored` log of log `log` in blocks `from..=to`, if the node lists one
/// (see [`pick_log`] for which logs count).
async fn logs_in(
    endpoint: &Endpoint,
    registry: &EthAddress,
    tid: &TxId,
    log: u16,
    from: u64,
    to: u64,
) -> Result<Option<FoundLog>> {
    let filter = json!([{
        "address": format!("0x{}", registry.to_hex()),
        "topics": [
            format!("0x{}", hex::encode(record_anchored_topic())),
            format!("0x{}", hex::encode(tid_topic(tid))),
        ],
        "fromBlock": format!("0x{from:x}"),
        "toBlock": format!("0x{to:x}"),
    }]);
    let logs = endpoint.call("eth_getLogs", filter).await?;
    pick_log(&logs, registry, tid, log)
}

/// The first of `logs` (an `eth_getLogs` answer) that is this tid's `RecordAnchored` event of
/// log `log`. Logs the filter should not have let through are skipped: another contract's
/// (whatever it logs, only the registry's event anchors), another tid's or event's, those
/// of a block that left the chain (`removed`), and the events of this tid in another log
/// (another relay's copy of the tid is not this record's anchor).
pub fn pick_log(
    logs: &Json,
    registry: &EthAddress,
    tid: &TxId,
    log: u16,
) -> Result<Option<FoundLog>> {
    let topic0 = record_anchored_topic();
    let topic1 = tid_topic(tid);
    for entry in logs.as_array().into_iter().flatten() {
        if entry["removed"].as_bool() == Some(true) {
            continue;
        }
        let from_registry = entry["address"].as_str().is_some_and(|a| {
            let a = a
                .strip_prefix("0x")
                .or_else(|| a.strip_prefix("0X"))
                .unwrap_or(a);
            a.eq_ignore_ascii_case(&registry.to_hex())
        });
        if !from_registry {
            continue;
        }
        let topics: Vec<[u8; 32]> = entry["topics"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| word(t, "A log topic"))
            .collect::<Result<_>>()?;
        if topics.first() != Some(&topic0) || topics.get(1) != Some(&topic1) {
            continue;
        }
        let event = decode_record_anchored(&topics, &hex_bytes(&entry["data"], "Log data")?)?;
        if event.log != log {
            continue;
        }
        return Ok(Some(FoundLog {
            event,
            block_number: hex_u64(&entry["blockNumber"], "The log's block number")?,
            tx_hash: word(&entry["transactionHash"], "The log's transaction hash")?,
        }));
    }
    Ok(None)
}

/// One `eth_call` of the registry's view with `data` at the latest block: the answer bytes.
async fn view(
    endpoint: &Endpoint,
    registry: &EthAddress,
    data: &[u8],
    what: &str,
) -> Result<Vec<u8>> {
    let call = json!([
        {"to": format!("0x{}", registry.to_hex()), "data": format!("0x{}", hex::encode(data))},
        "latest"
    ]);
    hex_bytes(&endpoint.call("eth_call", call).await?, what)
}

/// Checks the anchor of the claim's tid on chain, in the claim's log:
/// `ticketUsed(log, tid.ticket())` first; an unused ticket means no anchor (the registry
/// logs a record only when it marks its ticket), otherwise the tid's `RecordAnchored` log
/// of that log and, when the content is checked, `templateInfo` of its handle decide
/// ([`judge`]).
pub(crate) async fn verify(
    endpoint: &Endpoint,
    registry: &EthAddress,
    tid: &TxId,
    claim: &Claim,
    search: Search,
) -> Result<Finding> {
    let answer = view(
        endpoint,
        registry,
        &ticket_used_calldata(claim.log, tid.ticket()),
        "The answer to ticketUsed",
    )
    .await?;
    let ticket_used = decode_ticket_used(&answer)?;
    let log = if ticket_used {
        find_log(endpoint, registry, tid, claim.log, search).await?
    } else {
        None
    };
    let template = match (&log, &claim.content) {
        (Some(l), Some(_)) => {
            let answer = view(
                endpoint,
                registry,
                &template_info_calldata(l.event.handle),
                "The answer to templateInfo",
            )
            .await?;
            Some(decode_template_info(&answer)?)
        }
        _ => None,
    };
    Ok(judge(
        claim,
        &Seen {
            ticket_used,
            log,
            template,
        },
    ))
}

fn parse<T: core::str::FromStr>(req: &JsValue, key: &str, what: &str) -> Result<T> {
    let s = get_str(req, key).ok_or_else(|| ClientError::invalid(format!("{what} is missing.")))?;
    s.parse()
        .map_err(|_| ClientError::invalid(format!("{what} “{s}” is not valid.")))
}

/// A 32-byte hash given as hex (an optional `0x`), when `key` is present.
fn hash_param(req: &JsValue, key: &str, what: &str) -> Result<Option<Hash32>> {
    let Some(s) = get_str(req, key).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let digits = s.strip_prefix("0x").unwrap_or(&s);
    let mut out = [0u8; 32];
    hex::decode_to_slice(digits, &mut out).map_err(|_| {
        ClientError::invalid(format!("{what} “{s}” is not 32 bytes of hexadecimal."))
    })?;
    Ok(Some(out))
}

/// The log id `log`: a number from 1 to 65535 (a registry numbers its logs from 1).
fn log_param(req: &JsValue) -> Result<u16> {
    let n = js::get(req, "log");
    if n.is_undefined() || n.is_null() {
        return Err(ClientError::invalid(
            "The registry log to check in (log) is missing.",
        ));
    }
    n.as_f64()
        .and_then(js::as_u64)
        .and_then(|n| u16::try_from(n).ok())
        .filter(|n| *n >= 1)
        .ok_or_else(|| {
            ClientError::invalid("The registry log (log) is not a whole number from 1 to 65535.")
        })
}

/// The record's content to bind the verdict to: `valuesHash`, `templateHash`, `templateId`
/// (or `templateChainId`, keccak256 of the id) and `templateVersion`, all or none.
fn content_params(req: &JsValue) -> Result<Option<RecordContent>> {
    let values_hash = hash_param(req, "valuesHash", "The values hash")?;
    let template_hash = hash_param(req, "templateHash", "The template hash")?;
    let by_name = match get_str(req, "templateId").filter(|s| !s.is_empty()) {
        Some(s) => Some(
            s.parse::<TemplateId>()
                .map_err(|_| ClientError::invalid(format!("The template id “{s}” is not valid.")))?
                .chain_id(),
        ),
        None => None,
    };
    let by_hash = hash_param(req, "templateChainId", "The template's chain id")?;
    let id = match (by_name, by_hash) {
        (Some(a), Some(b)) if a != b => {
            return Err(ClientError::invalid(
                "The template id and the template's chain id name different templates.",
            ));
        }
        (a, b) => a.or(b),
    };
    let version = js::get(req, "templateVersion");
    let version = if version.is_undefined() || version.is_null() {
        None
    } else {
        Some(
            version
                .as_f64()
                .and_then(js::as_u64)
                .and_then(|v| u32::try_from(v).ok())
                .filter(|v| *v >= 1)
                .ok_or_else(|| {
                    ClientError::invalid("The template version is not a whole number from 1.")
                })?,
        )
    };
    match (values_hash, template_hash, id, version) {
        (None, None, None, None) => Ok(None),
        (Some(values_hash), Some(template_hash), Some(id), Some(version)) => {
            Ok(Some(RecordContent {
                values_hash,
                template: TemplateInfo {
                    id,
                    version,
                    template_hash,
                },
            }))
        }
        (values, hash, id, version) => {
            let missing: Vec<&str> = [
                (values.is_none(), "valuesHash"),
                (hash.is_none(), "templateHash"),
                (id.is_none(), "templateId"),
                (version.is_none(), "templateVersion"),
            ]
            .into_iter()
            .filter_map(|(gone, name)| gone.then_some(name))
            .collect();
            Err(ClientError::invalid(format!(
                "To check the values the chain judged, the record's values hash, template \
                 hash, template id and version are all needed; missing: {}.",
                missing.join(", ")
            )))
        }
    }
}

/// `verifyOnChain({ rpc, registry, log, tid, commitment, verdict, blockNumber?, txHash?,
/// chainId?, fromBlock?, valuesHash?, templateHash?, templateId? | templateChainId?,
/// templateVersion? })`: reads the registry's `ticketUsed(log, ticket)` view (the ticket is
/// the tid's first 8 bytes) and the tid's `RecordAnchored` log of log `log` itself (`rpc` is
/// a JSON-RPC URL, or `"wallet"` for `window.ethereum`) and resolves with
/// `{ status: "verified" | "missing" | "mismatch", blockNumber, txHash, valuesHash, detail }`:
/// `verified` when the event carries the record's commitment and the claimed verdict,
/// `missing` when the ticket is unused in that log, `mismatch` when the ticket went to
/// another tid or the event differs. Events of the tid in other logs (another relay's copy
/// of the tid) are ignored.
///
/// With the record's content (`valuesHash`, the hex `values_hash` of its on-chain values,
/// and its template: `templateHash`, `templateId` or `templateChainId`, `templateVersion`;
/// all four or none), it also reads `templateInfo(handle)` of the event's template handle:
/// the chain's verdict counts only when the template under the handle is the record's and
/// the event's values hash is the record's; otherwise `mismatch`, the verdict being about
/// other values. Without the content (an erased record) only the commitment and verdict are
/// compared.
///
/// With `chainId`, a node on another chain is refused with `wrong_network`; a node that
/// cannot be asked, or refuses, is `rpc_error`; missing or malformed input is
/// `invalid_input`.
///
/// The log is looked for in block `blockNumber` (the ACK's, a hint) and, when not there,
/// from block `fromBlock` (the registry's deployment block; 0 when absent) to the head in
/// ranges of at most [`LOG_RANGE`] blocks, so a wrong or missing hint costs requests, not
/// the verdict.
#[wasm_bindgen(js_name = verifyOnChain)]
pub async fn verify_on_chain(req: JsValue) -> Result<JsValue> {
    let rpc = get_str(&req, "rpc")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ClientError::invalid("The JSON-RPC URL (rpc) is missing."))?;
    let registry: EthAddress = parse(&req, "registry", "The registry address")?;
    let log = log_param(&req)?;
    let tid: TxId = parse(&req, "tid", "The transaction id")?;
    let commitment: Commitment = parse(&req, "commitment", "The commitment")?;
    let verdict = match get_str(&req, "verdict").as_deref() {
        Some("valid") | None => Claimed::Valid,
        Some("rejected") => Claimed::Rejected,
        Some(other) => {
            return Err(ClientError::invalid(format!(
                "The verdict “{other}” is neither valid nor rejected."
            )));
        }
    };
    let tx: Option<ChainHash> = match get_str(&req, "txHash") {
        Some(s) if !s.is_empty() => Some(
            s.parse()
                .map_err(|_| ClientError::invalid("The transaction hash is not valid."))?,
        ),
        _ => None,
    };
    let content = content_params(&req)?;
    let search = Search {
        hint: js::get_f64(&req, "blockNumber").and_then(js::as_u64),
        from: js::get_f64(&req, "fromBlock")
            .and_then(js::as_u64)
            .unwrap_or(0),
    };
    let endpoint = if rpc == "wallet" {
        Endpoint::Wallet(crate::wallet::provider()?)
    } else {
        Endpoint::Url(rpc)
    };
    if let Some(expected) = js::get_f64(&req, "chainId").and_then(js::as_u64) {
        let actual = chain_id(&endpoint).await?;
        if actual != expected {
            return Err(crate::wallet::wrong_network(actual, expected));
        }
    }
    let claim = Claim {
        log,
        commitment,
        verdict,
        tx,
        content,
    };
    let f = verify(&endpoint, &registry, &tid, &claim, search).await?;
    to_js(&json!({
        "status": f.status,
        "blockNumber": f.block_number,
        "txHash": f.tx_hash,
        "valuesHash": f.values_hash,
        "detail": f.detail,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tid() -> TxId {
        "00112233445566778899aabbccddeeff".parse().expect("tid")
    }

    fn registry() -> EthAddress {
        EthAddress::from_bytes([0xaa; 20])
    }

    fn json_log(data: &[u8], address: &str, block: u64) -> Json {
        json!({
            "removed": false,
            "address": address,
            "topics": [format!("0x{}", hex::encode(record_anchored_topic())),
                       format!("0x{}", hex::encode(tid_topic(&tid())))],
            "data": format!("0x{}", hex::encode(data)),
            "blockNumber": format!("0x{block:x}"),
            "transactionHash": format!("0x{}", "bb".repeat(32)),
        })
    }

    #[test]
    fn only_the_logs_event_of_the_tid_is_picked() {
        let address = format!("0x{}", "AA".repeat(20));
        let other_log = json_log(
            &abi::tests::event_data([1; 32], [2; 32], 2, 3),
            &address,
            10,
        );
        let ours = json_log(
            &abi::tests::event_data([3; 32], [4; 32], 1, 3),
            &address,
            11,
        );
        let foreign = json_log(
            &abi::tests::event_data([5; 32], [6; 32], 1, 3),
            &format!("0x{}", "ab".repeat(20)),
            9,
        );
        let logs = json!([foreign, other_log, ours]);
        let found = pick_log(&logs, &registry(), &tid(), 1)
            .expect("reads")
            .expect("found");
        assert_eq!((found.block_number, found.event.log), (11, 1));
        assert_eq!(found.event.commitment, [3; 32]);
        let found = pick_log(&logs, &registry(), &tid(), 2)
            .expect("reads")
            .expect("found");
        assert_eq!((found.block_number, found.event.commitment), (10, [1; 32]));
        // Another relay's copy of the tid alone, in its log: nothing in ours.
        let only_other = json!([logs[1].clone()]);
        assert_eq!(
            pick_log(&only_other, &registry(), &tid(), 1).expect("reads"),
            None
        );
    }
}
