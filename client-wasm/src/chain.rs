//! Checking a record's anchor on chain from the browser: the registry's
//! `ticketUsed(uint64)` view (`eth_call`, the ticket being the tid's first 8 bytes) and the
//! record's `RecordAnchored` log (`eth_getLogs`, topic = tid), over a JSON-RPC URL with
//! `fetch` or through the wallet (EIP-1193). The relay and its database are not asked, so a
//! lying relay or an edited database is caught here.
//!
//! The registry keeps no per-record storage: it marks each ticket used once and logs the
//! record (commitment, and `info` = submitter · template · verdict · path) in its
//! `RecordAnchored` event, at most one per ticket. So the event is the record's anchor, and
//! the ticket's bit tells "never anchored" (unused) from "the ticket went to another tid"
//! (used, but no event for this tid).
//!
//! ABI encoding and decoding use alloy's `sol!` types; the transport is the browser's.

use alloy_primitives::B256;
use alloy_sol_types::{SolCall as _, SolEvent as _};
use mediblock_protocol::ids::{ChainHash, Commitment, EthAddress, TxId};
use serde_json::{Value as Json, json};
use wasm_bindgen::prelude::*;

use crate::error::{ClientError, Result};
use crate::js::{self, get_str, to_js};

#[allow(missing_docs, unreachable_pub, clippy::pub_underscore_fields)]
mod abi {
    alloy_sol_types::sol! {
        function ticketUsed(uint64 ticket) external view returns (bool);
        event RecordAnchored(bytes16 indexed tid, bytes32 commitment, uint256 info);
    }
}

/// A decoded `RecordAnchored` event.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct AnchoredEvent {
    /// The record's tid (the indexed topic).
    pub tid: [u8; 16],
    /// The full commitment.
    pub commitment: [u8; 32],
    /// Who sent the anchoring transaction.
    pub submitter: [u8; 20],
    /// Template handle.
    pub handle: u16,
    /// The verdict byte: 0 valid, 1 + i rejected at on-chain attribute i, 255 rejected by
    /// a validator.
    pub verdict: u8,
    /// 1 relay, 2 wallet.
    pub path: u8,
}

/// Calldata of `ticketUsed(ticket)`.
pub fn ticket_used_calldata(ticket: u64) -> Vec<u8> {
    abi::ticketUsedCall { ticket }.abi_encode()
}

/// Decodes the answer of `ticketUsed`.
pub fn decode_ticket_used(data: &[u8]) -> Result<bool> {
    abi::ticketUsedCall::abi_decode_returns_validate(data).map_err(|_| {
        rpc_error("The registry's answer to ticketUsed cannot be read (is this the registry?)")
    })
}

/// `topics[0]` of `RecordAnchored`: keccak256 of its signature.
pub fn record_anchored_topic() -> [u8; 32] {
    abi::RecordAnchored::SIGNATURE_HASH.0
}

/// The topic of an indexed `bytes16` tid: the tid left-aligned in 32 bytes.
pub fn tid_topic(tid: &TxId) -> [u8; 32] {
    let mut out = [0u8; 32];
    out[..16].copy_from_slice(tid.as_bytes());
    out
}

/// Decodes a `RecordAnchored` log (its topics and data), unpacking `info` =
/// submitter (bits 96..255) · handle (16..31) · verdict (8..15) · path (0..7).
pub fn decode_record_anchored(topics: &[[u8; 32]], data: &[u8]) -> Result<AnchoredEvent> {
    let event = abi::RecordAnchored::decode_raw_log(topics.iter().map(|t| B256::from(*t)), data)
        .map_err(|_| rpc_error("A RecordAnchored log cannot be read"))?;
    let info = event.info.to_be_bytes::<32>();
    let mut submitter = [0u8; 20];
    submitter.copy_from_slice(&info[..20]);
    Ok(AnchoredEvent {
        tid: event.tid.0,
        commitment: event.commitment.0,
        submitter,
        handle: u16::from_be_bytes([info[28], info[29]]),
        verdict: info[30],
        path: info[31],
    })
}

fn rpc_error(message: impl Into<String>) -> ClientError {
    ClientError::new("rpc_error", crate::error::capitalise(&message.into()))
}

/// The verdict the record claims.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Claimed {
    /// Accepted on chain.
    Valid,
    /// Rejected on chain.
    Rejected,
}

/// What the check concluded.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Finding {
    /// `verified`, `missing` or `mismatch`.
    pub status: &'static str,
    /// The anchoring block, from the chain's log.
    pub block_number: Option<u64>,
    /// The anchoring transaction, from the chain's log (0x-prefixed).
    pub tx_hash: Option<String>,
    /// What was found, in words.
    pub detail: String,
}

/// A log found for the tid, with where it is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FoundLog {
    /// The event.
    pub event: AnchoredEvent,
    /// Its block.
    pub block_number: u64,
    /// Its transaction.
    pub tx_hash: [u8; 32],
}

/// The pure decision: compares what the record claims with what the chain holds —
/// whether the tid's ticket is used (`ticket_used`, the registry's view) and this tid's
/// `RecordAnchored` event (`log`, found by its tid topic).
///
/// - no event and the ticket unused: `missing` (never anchored on this registry);
/// - no event but the ticket used: `mismatch` (another tid took the ticket, so this record
///   can never be anchored);
/// - an event whose commitment or verdict differs from the record's, or anchored by another
///   transaction than the one the relay names: `mismatch`;
/// - otherwise `verified`, with the event's block and transaction.
pub fn judge(
    commitment: &Commitment,
    claimed: Claimed,
    claimed_tx: Option<&ChainHash>,
    ticket_used: bool,
    log: Option<&FoundLog>,
) -> Finding {
    let block_number = log.map(|l| l.block_number);
    let tx_hash = log.map(|l| format!("0x{}", hex::encode(l.tx_hash)));
    let finding = |status, detail: String| Finding {
        status,
        block_number,
        tx_hash: tx_hash.clone(),
        detail,
    };
    let Some(l) = log else {
        return if ticket_used {
            finding(
                "mismatch",
                "The chain has no anchor for this record, and its ticket was used by another \
                 record: this record was never anchored and can no longer be, whatever the \
                 relay says."
                    .into(),
            )
        } else {
            finding(
                "missing",
                "The chain has no anchor for this record: it was never anchored on this \
                 registry, whatever the relay says."
                    .into(),
            )
        };
    };
    if l.event.commitment != *commitment.as_bytes() {
        return finding(
            "mismatch",
            "The chain's anchoring event carries a different commitment: the record was \
             changed after it was anchored."
                .into(),
        );
    }
    let valid_on_chain = l.event.verdict == 0;
    if valid_on_chain != (claimed == Claimed::Valid) {
        let said = if valid_on_chain { "valid" } else { "rejected" };
        return finding(
            "mismatch",
            format!("The chain recorded this record as {said}, which is not what the relay says."),
        );
    }
    if let Some(claimed) = claimed_tx
        && claimed.as_bytes() != &l.tx_hash
    {
        return finding(
            "mismatch",
            "The record was anchored by another transaction than the one the relay names.".into(),
        );
    }
    finding(
        "verified",
        format!(
            "The chain holds this record's commitment and verdict (block {}).",
            l.block_number
        ),
    )
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

/// Finds the `RecordAnchored` log of `tid`: first in the hint block when given (and not
/// before `search.from`), then from `search.from` to the head in ranges of at most [`LOG_RANGE`]
/// blocks, stopping at the first range that holds it.
///
/// The hint comes from the relay's ACK, so it is only a shortcut: a wrong one, or a node
/// refusing it (a block past its head, say), leads to the scan, never to a verdict or an
/// error. A node that refuses the scan is an `rpc_error`: without the event (the registry
/// keeps nothing else per record) the anchor cannot be checked.
async fn find_log(
    endpoint: &Endpoint,
    registry: &EthAddress,
    tid: &TxId,
    search: Search,
) -> Result<Option<FoundLog>> {
    let Search { hint, from } = search;
    if let Some(b) = hint.filter(|b| *b >= from)
        && let Ok(Some(found)) = logs_in(endpoint, registry, tid, b, b).await
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
        if let Some(found) = logs_in(endpoint, registry, tid, start, end).await? {
            return Ok(Some(found));
        }
        let Some(next) = end.checked_add(1) else {
            break;
        };
        start = next;
    }
    Ok(None)
}

/// This tid's `RecordAnchored` log in blocks `from..=to`, if the node lists one. Logs the
/// filter should not have let through are skipped: another contract's (whatever it logs,
/// only the registry's event anchors), another tid's or event's, and those of a block that
/// left the chain (`removed`).
async fn logs_in(
    endpoint: &Endpoint,
    registry: &EthAddress,
    tid: &TxId,
    from: u64,
    to: u64,
) -> Result<Option<FoundLog>> {
    let topic0 = record_anchored_topic();
    let topic1 = tid_topic(tid);
    let filter = json!([{
        "address": format!("0x{}", registry.to_hex()),
        "topics": [format!("0x{}", hex::encode(topic0)), format!("0x{}", hex::encode(topic1))],
        "fromBlock": format!("0x{from:x}"),
        "toBlock": format!("0x{to:x}"),
    }]);
    let logs = endpoint.call("eth_getLogs", filter).await?;
    for log in logs.as_array().into_iter().flatten() {
        if log["removed"].as_bool() == Some(true) {
            continue;
        }
        let from_registry = log["address"].as_str().is_some_and(|a| {
            let a = a
                .strip_prefix("0x")
                .or_else(|| a.strip_prefix("0X"))
                .unwrap_or(a);
            a.eq_ignore_ascii_case(&registry.to_hex())
        });
        if !from_registry {
            continue;
        }
        let topics: Vec<[u8; 32]> = log["topics"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| word(t, "A log topic"))
            .collect::<Result<_>>()?;
        if topics.first() != Some(&topic0) || topics.get(1) != Some(&topic1) {
            continue;
        }
        let event = decode_record_anchored(&topics, &hex_bytes(&log["data"], "Log data")?)?;
        return Ok(Some(FoundLog {
            event,
            block_number: hex_u64(&log["blockNumber"], "The log's block number")?,
            tx_hash: word(&log["transactionHash"], "The log's transaction hash")?,
        }));
    }
    Ok(None)
}

/// Checks the anchor of `tid` with `commitment` on chain: `ticketUsed(tid.ticket())` first;
/// an unused ticket means no anchor (the registry logs a record only when it marks its
/// ticket), otherwise the tid's `RecordAnchored` log decides (`judge`).
pub(crate) async fn verify(
    endpoint: &Endpoint,
    registry: &EthAddress,
    tid: &TxId,
    commitment: &Commitment,
    claimed: Claimed,
    claimed_tx: Option<&ChainHash>,
    search: Search,
) -> Result<Finding> {
    let call = json!([
        {"to": format!("0x{}", registry.to_hex()),
         "data": format!("0x{}", hex::encode(ticket_used_calldata(tid.ticket())))},
        "latest"
    ]);
    let answer = endpoint.call("eth_call", call).await?;
    let ticket_used = decode_ticket_used(&hex_bytes(&answer, "The answer to ticketUsed")?)?;
    let log = if ticket_used {
        find_log(endpoint, registry, tid, search).await?
    } else {
        None
    };
    Ok(judge(
        commitment,
        claimed,
        claimed_tx,
        ticket_used,
        log.as_ref(),
    ))
}

fn parse<T: core::str::FromStr>(req: &JsValue, key: &str, what: &str) -> Result<T> {
    let s = get_str(req, key).ok_or_else(|| ClientError::invalid(format!("{what} is missing.")))?;
    s.parse()
        .map_err(|_| ClientError::invalid(format!("{what} “{s}” is not valid.")))
}

/// `verifyOnChain({ rpc, registry, tid, commitment, verdict, blockNumber?, txHash?, chainId?,
/// fromBlock? })`: reads the registry's `ticketUsed(ticket)` view (the ticket is the tid's
/// first 8 bytes) and the tid's `RecordAnchored` log itself (`rpc` is a JSON-RPC URL, or
/// `"wallet"` for `window.ethereum`) and resolves with
/// `{ status: "verified" | "missing" | "mismatch", blockNumber, txHash, detail }`:
/// `verified` when the event carries the record's commitment and the claimed verdict,
/// `missing` when the ticket is unused, `mismatch` when the ticket went to another tid or
/// the event differs. With `chainId`, a node on another chain is refused with
/// `wrong_network`; a node that cannot be asked, or refuses, is `rpc_error`.
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
    let tid: TxId = parse(&req, "tid", "The transaction id")?;
    let commitment: Commitment = parse(&req, "commitment", "The commitment")?;
    let claimed = match get_str(&req, "verdict").as_deref() {
        Some("valid") | None => Claimed::Valid,
        Some("rejected") => Claimed::Rejected,
        Some(other) => {
            return Err(ClientError::invalid(format!(
                "The verdict “{other}” is neither valid nor rejected."
            )));
        }
    };
    let claimed_tx: Option<ChainHash> = match get_str(&req, "txHash") {
        Some(s) if !s.is_empty() => Some(
            s.parse()
                .map_err(|_| ClientError::invalid("The transaction hash is not valid."))?,
        ),
        _ => None,
    };
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
    let f = verify(
        &endpoint,
        &registry,
        &tid,
        &commitment,
        claimed,
        claimed_tx.as_ref(),
        search,
    )
    .await?;
    to_js(&json!({
        "status": f.status,
        "blockNumber": f.block_number,
        "txHash": f.tx_hash,
        "detail": f.detail,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mediblock_protocol::hash::keccak256;

    fn tid() -> TxId {
        "00112233445566778899aabbccddeeff".parse().expect("tid")
    }

    #[test]
    fn ticket_used_calldata_is_selector_and_right_aligned_ticket() {
        let data = ticket_used_calldata(0x0011_2233_4455_6677);
        assert_eq!(data.len(), 36);
        assert_eq!(data[..4], keccak256(b"ticketUsed(uint64)")[..4]);
        assert!(data[4..28].iter().all(|b| *b == 0));
        assert_eq!(data[28..], [0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77]);
        assert_eq!(tid().ticket(), 0x0011_2233_4455_6677);
    }

    #[test]
    fn ticket_used_answer_decodes() {
        let mut answer = [0u8; 32];
        assert!(!decode_ticket_used(&answer).expect("false"));
        answer[31] = 1;
        assert!(decode_ticket_used(&answer).expect("true"));
        for bad in [&answer[..31], &[]] {
            assert_eq!(
                decode_ticket_used(bad).map(|_| ()).unwrap_err().code(),
                "rpc_error"
            );
        }
        // A bool word other than 0 or 1 is not an answer of the registry.
        answer[31] = 2;
        assert!(decode_ticket_used(&answer).is_err());
    }

    #[test]
    fn record_anchored_log_decodes_and_unpacks_info() {
        assert_eq!(
            record_anchored_topic(),
            keccak256(b"RecordAnchored(bytes16,bytes32,uint256)")
        );
        let mut data = vec![0u8; 64];
        data[..32].copy_from_slice(&[0xcd; 32]);
        data[32..52].copy_from_slice(&[0x11; 20]);
        data[60..62].copy_from_slice(&3u16.to_be_bytes());
        data[62] = 0;
        data[63] = 2;
        let e = decode_record_anchored(&[record_anchored_topic(), tid_topic(&tid())], &data)
            .expect("decodes");
        assert_eq!(e.tid, *tid().as_bytes());
        assert_eq!(e.commitment, [0xcd; 32]);
        assert_eq!(e.submitter, [0x11; 20]);
        assert_eq!((e.handle, e.verdict, e.path), (3, 0, 2));
        assert!(decode_record_anchored(&[[0u8; 32], tid_topic(&tid())], &data).is_err());
    }

    #[test]
    fn judge_tells_verified_missing_and_mismatch() {
        let c = Commitment::from_bytes([0x42; 32]);
        let log = FoundLog {
            event: AnchoredEvent {
                tid: *tid().as_bytes(),
                commitment: *c.as_bytes(),
                submitter: [1; 20],
                handle: 1,
                verdict: 0,
                path: 1,
            },
            block_number: 9,
            tx_hash: [7; 32],
        };
        let ok = judge(&c, Claimed::Valid, None, true, Some(&log));
        assert_eq!((ok.status, ok.block_number), ("verified", Some(9)));
        assert_eq!(
            ok.tx_hash.as_deref(),
            Some(&*format!("0x{}", "07".repeat(32)))
        );
        let right_tx = ChainHash::from_bytes([7; 32]);
        assert_eq!(
            judge(&c, Claimed::Valid, Some(&right_tx), true, Some(&log)).status,
            "verified"
        );

        let missing = judge(&c, Claimed::Valid, None, false, None);
        assert_eq!(
            (missing.status, missing.block_number, missing.tx_hash),
            ("missing", None, None)
        );

        // The ticket is used, but no event carries this tid: another tid took the ticket.
        let taken = judge(&c, Claimed::Valid, None, true, None);
        assert_eq!(taken.status, "mismatch");
        assert!(taken.detail.contains("ticket"), "{}", taken.detail);

        // The event's full commitment differs, even in its last 4 bytes alone.
        let mut last = *c.as_bytes();
        last[31] ^= 1;
        for other in [
            Commitment::from_bytes([0x43; 32]),
            Commitment::from_bytes(last),
        ] {
            let f = judge(&other, Claimed::Valid, None, true, Some(&log));
            assert_eq!(f.status, "mismatch");
            assert!(f.detail.contains("different commitment"), "{}", f.detail);
        }

        // The verdict differs, either way.
        assert_eq!(
            judge(&c, Claimed::Rejected, None, true, Some(&log)).status,
            "mismatch"
        );
        let rejected = FoundLog {
            event: AnchoredEvent {
                verdict: 2,
                ..log.event
            },
            ..log
        };
        assert_eq!(
            judge(&c, Claimed::Valid, None, true, Some(&rejected)).status,
            "mismatch"
        );
        assert_eq!(
            judge(&c, Claimed::Rejected, None, true, Some(&rejected)).status,
            "verified"
        );

        let wrong_tx = ChainHash::from_bytes([8; 32]);
        assert_eq!(
            judge(&c, Claimed::Valid, Some(&wrong_tx), true, Some(&log)).status,
            "mismatch"
        );
    }
}
