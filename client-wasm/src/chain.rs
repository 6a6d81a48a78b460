//! Checking a record's anchor on chain from the browser: the registry's `recordOf(bytes16)`
//! view (`eth_call`) and its `RecordAnchored` log (`eth_getLogs`, topic = tid), over a
//! JSON-RPC URL with `fetch` or through the wallet (EIP-1193). The relay and its database
//! are not asked, so a lying relay or an edited database is caught here.
//!
//! ABI encoding and decoding use alloy's `sol!` types; the transport is the browser's.

use alloy_primitives::{B256, FixedBytes};
use alloy_sol_types::{SolCall as _, SolEvent as _};
use mediblock_protocol::ids::{ChainHash, Commitment, EthAddress, TxId};
use serde_json::{Value as Json, json};
use wasm_bindgen::prelude::*;

use crate::error::{ClientError, Result};
use crate::js::{self, get_str, to_js};

#[allow(missing_docs, unreachable_pub, clippy::pub_underscore_fields)]
mod abi {
    alloy_sol_types::sol! {
        function recordOf(bytes16 tid) external view returns (uint16 template, uint8 verdict, uint8 path, bytes28 commitmentPrefix);
        event RecordAnchored(bytes16 indexed tid, bytes32 commitment, uint256 info);
    }
}

/// What the registry's `recordOf(tid)` view returns.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct OnChainRecord {
    /// The template's handle; 0 when the tid was never anchored.
    pub handle: u16,
    /// 0 valid, 1 + i rejected at on-chain attribute i, 255 rejected by a validator.
    pub verdict: u8,
    /// 1 relay, 2 wallet.
    pub path: u8,
    /// The first 28 bytes of the commitment.
    pub commitment_prefix: [u8; 28],
}

/// A decoded `RecordAnchored` event.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct AnchoredEvent {
    /// The full commitment.
    pub commitment: [u8; 32],
    /// Who sent the anchoring transaction.
    pub submitter: [u8; 20],
    /// Template handle.
    pub handle: u16,
    /// The verdict byte.
    pub verdict: u8,
    /// 1 relay, 2 wallet.
    pub path: u8,
}

/// Calldata of `recordOf(tid)`.
pub fn record_of_calldata(tid: &TxId) -> Vec<u8> {
    abi::recordOfCall {
        tid: FixedBytes(*tid.as_bytes()),
    }
    .abi_encode()
}

/// Decodes the answer of `recordOf`.
pub fn decode_record_of(data: &[u8]) -> Result<OnChainRecord> {
    let r = abi::recordOfCall::abi_decode_returns(data).map_err(|_| {
        rpc_error("The registry's answer to recordOf cannot be read (is this the registry?)")
    })?;
    Ok(OnChainRecord {
        handle: r.template,
        verdict: r.verdict,
        path: r.path,
        commitment_prefix: r.commitmentPrefix.0,
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

/// The pure decision: compares what the record claims with what the chain holds.
pub fn judge(
    commitment: &Commitment,
    claimed: Claimed,
    claimed_tx: Option<&ChainHash>,
    on_chain: &OnChainRecord,
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
    if on_chain.handle == 0 {
        return finding(
            "missing",
            "The chain has no anchor for this record: it was never anchored on this \
             registry, whatever the relay says."
                .into(),
        );
    }
    if on_chain.commitment_prefix[..] != commitment.as_bytes()[..28] {
        return finding(
            "mismatch",
            "The chain anchors a different commitment for this record: its content was \
             changed after it was anchored."
                .into(),
        );
    }
    if let Some(l) = log
        && l.event.commitment != *commitment.as_bytes()
    {
        return finding(
            "mismatch",
            "The chain's anchoring event carries a different commitment: the record was \
             changed after it was anchored."
                .into(),
        );
    }
    let valid_on_chain = on_chain.verdict == 0;
    if valid_on_chain != (claimed == Claimed::Valid) {
        let said = if valid_on_chain { "valid" } else { "rejected" };
        return finding(
            "mismatch",
            format!("The chain recorded this record as {said}, which is not what the relay says."),
        );
    }
    if let (Some(claimed), Some(l)) = (claimed_tx, log)
        && claimed.as_bytes() != &l.tx_hash
    {
        return finding(
            "mismatch",
            "The record was anchored by another transaction than the one the relay names.".into(),
        );
    }
    match log {
        Some(l) => finding(
            "verified",
            format!(
                "The chain holds this record's commitment and verdict (block {}).",
                l.block_number
            ),
        ),
        None => finding(
            "verified",
            "The registry holds this record's commitment and verdict (its anchoring event \
             was not found by the node, so block and transaction are not shown)."
                .into(),
        ),
    }
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

/// Finds the `RecordAnchored` log of `tid`, first in `hint_block` when given.
async fn find_log(
    endpoint: &Endpoint,
    registry: &EthAddress,
    tid: &TxId,
    hint_block: Option<u64>,
) -> Result<Option<FoundLog>> {
    let topics = json!([
        format!("0x{}", hex::encode(record_anchored_topic())),
        format!("0x{}", hex::encode(tid_topic(tid))),
    ]);
    let address = format!("0x{}", registry.to_hex());
    let mut ranges = Vec::new();
    if let Some(b) = hint_block {
        ranges.push((format!("0x{b:x}"), format!("0x{b:x}")));
    }
    ranges.push(("0x0".to_owned(), "latest".to_owned()));
    for (from, to) in ranges {
        let filter =
            json!([{"address": address, "topics": topics, "fromBlock": from, "toBlock": to}]);
        let logs = match endpoint.call("eth_getLogs", filter).await {
            Ok(l) => l,
            // Some nodes refuse a whole-chain range; the view alone still decides.
            Err(_) if to == "latest" => return Ok(None),
            Err(e) => return Err(e),
        };
        for log in logs.as_array().into_iter().flatten() {
            if log["removed"].as_bool() == Some(true) {
                continue;
            }
            let topics: Vec<[u8; 32]> = log["topics"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| word(t, "A log topic"))
                .collect::<Result<_>>()?;
            let event = decode_record_anchored(&topics, &hex_bytes(&log["data"], "Log data")?)?;
            return Ok(Some(FoundLog {
                event,
                block_number: hex_u64(&log["blockNumber"], "The log's block number")?,
                tx_hash: word(&log["transactionHash"], "The log's transaction hash")?,
            }));
        }
    }
    Ok(None)
}

/// Checks the anchor of `tid` with `commitment` on chain.
pub(crate) async fn verify(
    endpoint: &Endpoint,
    registry: &EthAddress,
    tid: &TxId,
    commitment: &Commitment,
    claimed: Claimed,
    claimed_tx: Option<&ChainHash>,
    hint_block: Option<u64>,
) -> Result<Finding> {
    let call = json!([
        {"to": format!("0x{}", registry.to_hex()),
         "data": format!("0x{}", hex::encode(record_of_calldata(tid)))},
        "latest"
    ]);
    let answer = endpoint.call("eth_call", call).await?;
    let on_chain = decode_record_of(&hex_bytes(&answer, "The answer to recordOf")?)?;
    let log = if on_chain.handle == 0 {
        None
    } else {
        find_log(endpoint, registry, tid, hint_block).await?
    };
    Ok(judge(
        commitment,
        claimed,
        claimed_tx,
        &on_chain,
        log.as_ref(),
    ))
}

fn parse<T: core::str::FromStr>(req: &JsValue, key: &str, what: &str) -> Result<T> {
    let s = get_str(req, key).ok_or_else(|| ClientError::invalid(format!("{what} is missing.")))?;
    s.parse()
        .map_err(|_| ClientError::invalid(format!("{what} “{s}” is not valid.")))
}

/// `verifyOnChain({ rpc, registry, tid, commitment, verdict, blockNumber?, txHash?, chainId? })`:
/// reads the registry's `recordOf(tid)` and the `RecordAnchored` log itself (`rpc` is a
/// JSON-RPC URL, or `"wallet"` for `window.ethereum`) and resolves with
/// `{ status: "verified" | "missing" | "mismatch", blockNumber, txHash, detail }`. With
/// `chainId`, a node on another chain is refused with `wrong_network`.
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
    let hint_block = js::get_f64(&req, "blockNumber").and_then(js::as_u64);
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
        hint_block,
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
    fn record_of_calldata_is_selector_and_left_aligned_tid() {
        let data = record_of_calldata(&tid());
        assert_eq!(data.len(), 36);
        assert_eq!(data[..4], keccak256(b"recordOf(bytes16)")[..4]);
        assert_eq!(&data[4..20], tid().as_bytes());
        assert!(data[20..].iter().all(|b| *b == 0));
    }

    #[test]
    fn record_of_answer_decodes() {
        let mut answer = vec![0u8; 128];
        answer[30..32].copy_from_slice(&7u16.to_be_bytes());
        answer[63] = 2;
        answer[95] = 1;
        answer[96..124].copy_from_slice(&[0xab; 28]);
        let r = decode_record_of(&answer).expect("decodes");
        assert_eq!(
            r,
            OnChainRecord {
                handle: 7,
                verdict: 2,
                path: 1,
                commitment_prefix: [0xab; 28]
            }
        );
        assert_eq!(
            decode_record_of(&answer[..100])
                .map(|_| ())
                .unwrap_err()
                .code(),
            "rpc_error"
        );
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
        assert_eq!(e.commitment, [0xcd; 32]);
        assert_eq!(e.submitter, [0x11; 20]);
        assert_eq!((e.handle, e.verdict, e.path), (3, 0, 2));
        assert!(decode_record_anchored(&[[0u8; 32], tid_topic(&tid())], &data).is_err());
    }

    #[test]
    fn judge_tells_verified_missing_and_mismatch() {
        let c = Commitment::from_bytes([0x42; 32]);
        let mut prefix = [0u8; 28];
        prefix.copy_from_slice(&c.as_bytes()[..28]);
        let rec = OnChainRecord {
            handle: 1,
            verdict: 0,
            path: 1,
            commitment_prefix: prefix,
        };
        let log = FoundLog {
            event: AnchoredEvent {
                commitment: *c.as_bytes(),
                submitter: [1; 20],
                handle: 1,
                verdict: 0,
                path: 1,
            },
            block_number: 9,
            tx_hash: [7; 32],
        };
        let ok = judge(&c, Claimed::Valid, None, &rec, Some(&log));
        assert_eq!((ok.status, ok.block_number), ("verified", Some(9)));
        assert_eq!(
            ok.tx_hash.as_deref(),
            Some(&*format!("0x{}", "07".repeat(32)))
        );
        let missing = OnChainRecord { handle: 0, ..rec };
        assert_eq!(
            judge(&c, Claimed::Valid, None, &missing, None).status,
            "missing"
        );
        let other = Commitment::from_bytes([0x43; 32]);
        assert_eq!(
            judge(&other, Claimed::Valid, None, &rec, Some(&log)).status,
            "mismatch"
        );
        assert_eq!(
            judge(&c, Claimed::Rejected, None, &rec, Some(&log)).status,
            "mismatch"
        );
        let wrong_tx = ChainHash::from_bytes([8; 32]);
        assert_eq!(
            judge(&c, Claimed::Valid, Some(&wrong_tx), &rec, Some(&log)).status,
            "mismatch"
        );
        assert_eq!(
            judge(&c, Claimed::Valid, None, &rec, None).status,
            "verified"
        );
    }
}
