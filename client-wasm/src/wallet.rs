//! The wallet path (EIP-1193 `window.ethereum`): connect, show a readable summary of the
//! relay's co-signed record, check the network, and send the transaction — with clear
//! messages for a missing wallet, a refusal and a wrong network.
//!
//! The summary is decoded from the calldata the wallet will actually send (not only from
//! the relay's description of it), and the two must agree. The calldata must also be for
//! the record this browser sealed (its transaction id and commitment) and go to the registry
//! and chain the page expects: a relay cannot get a clinician's wallet to anchor, and pay
//! for, someone else's record.

use mediblock_protocol::ids::{Commitment, EthAddress, TxId};
use mediblock_protocol::template::{AttributeKind, Template};
use mediblock_protocol::value::{Date, Value};
use serde::Deserialize;
use serde_json::json;
use wasm_bindgen::prelude::*;

use crate::error::{ClientError, Result};
use crate::form::template_from_js;
use crate::js::{self, await_promise, from_js, get, get_f64, to_js};
use crate::open::display_value;

/// `OP_ANCHOR_COSIGNED`, the first calldata byte of a co-signed anchor.
pub const OP_ANCHOR_COSIGNED: u8 = 0x02;

/// The `wallet` field of `POST /api/v1/submissions/wallet`'s answer.
#[derive(Clone, Debug, Deserialize)]
pub struct WalletTransaction {
    /// The registry (0x-prefixed).
    pub to: String,
    /// The packed co-signed calldata (0x-prefixed hex).
    pub data: String,
    /// The chain the wallet must be on.
    pub chain_id: u64,
    /// Unix seconds after which the co-signature expires.
    pub deadline: u64,
    /// The EIP-712 record the relay signed.
    pub record: CosignedRecord,
}

/// The EIP-712 `Record` as the relay describes it.
#[derive(Clone, Debug, Deserialize)]
pub struct CosignedRecord {
    /// bytes16, 0x-prefixed.
    pub tid: String,
    /// bytes32, 0x-prefixed.
    pub commitment: String,
    /// The registry's template handle.
    pub template: u16,
    /// On-chain values, in template order.
    pub values: Vec<i64>,
    /// Unix seconds.
    pub deadline: u64,
    /// The wallet that must send it.
    pub submitter: String,
}

/// The co-signed anchor decoded from its packed calldata.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CosignedAnchor {
    /// Transaction id.
    pub tid: TxId,
    /// Commitment.
    pub commitment: Commitment,
    /// Template handle.
    pub handle: u16,
    /// Unix seconds.
    pub deadline: u64,
    /// On-chain values.
    pub values: Vec<i64>,
}

fn mismatch(what: &str) -> ClientError {
    ClientError::new(
        "wallet_mismatch",
        format!(
            "The transaction the relay prepared does not match its own description ({what}); \
             do not send it."
        ),
    )
}

/// What the browser itself expects of the wallet transaction: the record it sealed
/// (`Identity.seal`'s `tid` and `commitment`) and the registry and chain of the page's
/// settings. JavaScript passes `{ tid, commitment, registry, chainId }`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Expected {
    /// The sealed record's transaction id.
    pub tid: TxId,
    /// The sealed record's commitment.
    pub commitment: Commitment,
    /// The registry contract the page uses.
    pub registry: EthAddress,
    /// The chain that registry is on.
    pub chain_id: u64,
}

impl Expected {
    /// Reads `{ tid, commitment, registry, chainId }`; `invalid_input` when a field is
    /// missing or malformed (the page always knows all four on the wallet path).
    pub fn from_js(v: &JsValue) -> Result<Self> {
        if !v.is_object() {
            return Err(ClientError::invalid(
                "The record expected on the wallet path ({ tid, commitment, registry, chainId }) \
                 is missing.",
            ));
        }
        fn field<T: core::str::FromStr>(v: &JsValue, key: &str, what: &str) -> Result<T> {
            let s = js::get_str(v, key)
                .ok_or_else(|| ClientError::invalid(format!("The expected {what} is missing.")))?;
            s.parse().map_err(|_| {
                ClientError::invalid(format!("The expected {what} “{s}” is not valid."))
            })
        }
        let chain = get(v, "chainId");
        let chain_id = chain
            .as_f64()
            .and_then(js::as_u64)
            .or_else(|| {
                chain
                    .as_string()
                    .and_then(|s| match s.trim().strip_prefix("0x") {
                        Some(h) => u64::from_str_radix(h, 16).ok(),
                        None => s.trim().parse().ok(),
                    })
            })
            .ok_or_else(|| {
                ClientError::invalid("The expected chain id is missing or not valid.")
            })?;
        Ok(Self {
            tid: field(v, "tid", "transaction id")?,
            commitment: field(v, "commitment", "commitment")?,
            registry: field(v, "registry", "registry address")?,
            chain_id,
        })
    }
}

fn not_yours(what: &str) -> ClientError {
    ClientError::new(
        "wallet_mismatch",
        format!(
            "The transaction the relay prepared is not for the record you signed ({what}); \
             do not send it. Nothing was sent from your wallet."
        ),
    )
}

fn not_this_registry(what: &str) -> ClientError {
    ClientError::new(
        "wallet_mismatch",
        format!(
            "The transaction the relay prepared is not for this site's record registry \
             ({what}); do not send it. Nothing was sent from your wallet."
        ),
    )
}

/// Checks the calldata against what this browser sealed and the registry and chain it
/// expects: `wallet_mismatch` when the transaction id, the commitment, the contract or the
/// chain differ.
pub fn check_expected(
    wallet: &WalletTransaction,
    anchor: &CosignedAnchor,
    expected: &Expected,
) -> Result<()> {
    if anchor.tid != expected.tid {
        return Err(not_yours(&format!(
            "its transaction id is 0x{}, yours is 0x{}",
            anchor.tid.to_hex(),
            expected.tid.to_hex()
        )));
    }
    if anchor.commitment != expected.commitment {
        return Err(not_yours(&format!(
            "it anchors commitment 0x{}, yours is 0x{}",
            anchor.commitment.to_hex(),
            expected.commitment.to_hex()
        )));
    }
    if wallet.to.parse::<EthAddress>().ok() != Some(expected.registry) {
        return Err(not_this_registry(&format!(
            "it would be sent to contract {}, not to the registry 0x{}",
            wallet.to,
            expected.registry.to_hex()
        )));
    }
    if wallet.chain_id != expected.chain_id {
        return Err(not_this_registry(&format!(
            "it is for {}, but the registry is on {}",
            chain_name(wallet.chain_id),
            chain_name(expected.chain_id)
        )));
    }
    Ok(())
}

/// Decodes the calldata and checks it against the relay's description of it.
fn consistent(wallet: &WalletTransaction) -> Result<CosignedAnchor> {
    let data = hex::decode(wallet.data.strip_prefix("0x").unwrap_or(&wallet.data))
        .map_err(|_| mismatch("the calldata is not hex"))?;
    let anchor = decode_cosigned(&data)?;
    let rec = &wallet.record;
    if rec.tid.parse::<TxId>().ok() != Some(anchor.tid) {
        return Err(mismatch("transaction id"));
    }
    if rec.commitment.parse::<Commitment>().ok() != Some(anchor.commitment) {
        return Err(mismatch("commitment"));
    }
    if rec.template != anchor.handle {
        return Err(mismatch("template"));
    }
    if rec.deadline != anchor.deadline || wallet.deadline != anchor.deadline {
        return Err(mismatch("deadline"));
    }
    if rec.values != anchor.values {
        return Err(mismatch("values"));
    }
    Ok(anchor)
}

/// Decodes `0x02 · tid[16] · commitment[32] · handle u16 · deadline u64 · r[32] · s[32] ·
/// v u8 · n × int64`.
pub fn decode_cosigned(data: &[u8]) -> Result<CosignedAnchor> {
    const HEAD: usize = 124;
    if data.len() < HEAD || !(data.len() - HEAD).is_multiple_of(8) || data[0] != OP_ANCHOR_COSIGNED
    {
        return Err(mismatch("the calldata is not a co-signed anchor"));
    }
    let array = |r: core::ops::Range<usize>| data[r].to_vec();
    let mut tid = [0u8; 16];
    tid.copy_from_slice(&array(1..17));
    let mut commitment = [0u8; 32];
    commitment.copy_from_slice(&array(17..49));
    let handle = u16::from_be_bytes([data[49], data[50]]);
    let mut deadline = [0u8; 8];
    deadline.copy_from_slice(&array(51..59));
    let values = data[HEAD..]
        .chunks_exact(8)
        .map(|c| {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            i64::from_be_bytes(b)
        })
        .collect();
    Ok(CosignedAnchor {
        tid: TxId::from_bytes(tid),
        commitment: Commitment::from_bytes(commitment),
        handle,
        deadline: u64::from_be_bytes(deadline),
        values,
    })
}

/// A chain id in words.
pub fn chain_name(id: u64) -> String {
    match id {
        1 => "Ethereum mainnet (chain 1)".into(),
        11_155_111 => "the Sepolia test network (chain 11155111)".into(),
        17_000 => "the Holesky test network (chain 17000)".into(),
        560_048 => "the Hoodi test network (chain 560048)".into(),
        31_337 => "a local development chain (chain 31337)".into(),
        other => format!("chain {other}"),
    }
}

/// `wrong_network`, naming both chains.
pub fn wrong_network(actual: u64, expected: u64) -> ClientError {
    ClientError::new(
        "wrong_network",
        format!(
            "Your wallet is on {}, but this record must be sent on {}. Switch the network in \
             your wallet and try again.",
            chain_name(actual),
            chain_name(expected)
        ),
    )
}

/// Unix seconds as `YYYY-MM-DD hh:mm UTC`.
pub fn format_utc(seconds: u64) -> String {
    let days = i32::try_from(seconds / 86_400)
        .ok()
        .and_then(|d| Date::from_days(d).ok());
    let rest = seconds % 86_400;
    match days {
        Some(d) => format!("{d} {:02}:{:02} UTC", rest / 3600, rest % 3600 / 60),
        None => format!("{seconds} (Unix time)"),
    }
}

fn on_chain_value(kind: &AttributeKind, unit: Option<&str>, v: i64) -> String {
    match kind {
        AttributeKind::Enum { values } => usize::try_from(v)
            .ok()
            .and_then(|i| values.get(i))
            .cloned()
            .unwrap_or_else(|| format!("#{v} (not a choice of this form)")),
        AttributeKind::Boolean => match v {
            0 => "no".into(),
            1 => "yes".into(),
            other => format!("{other} (not yes or no)"),
        },
        _ => display_value(&Value::Integer(v), Some(kind), unit),
    }
}

/// The readable summary of a co-signed record: decoded from the calldata, checked against
/// the record this browser sealed, the registry and chain it expects, the relay's
/// description and the template.
pub fn summary(
    wallet: &WalletTransaction,
    template: &Template,
    expected: &Expected,
) -> Result<serde_json::Value> {
    let anchor = consistent(wallet)?;
    check_expected(wallet, &anchor, expected)?;
    let rec = &wallet.record;
    let attrs: Vec<_> = template.on_chain_attributes().collect();
    if attrs.len() != anchor.values.len() {
        return Err(mismatch("the number of values differs from the template's"));
    }
    let spec = template.spec();
    let mut lines = vec![json!({
        "label": "Template",
        "value": format!("{} ({}, version {})", spec.title, spec.id, spec.version),
    })];
    for (a, v) in attrs.iter().zip(&anchor.values) {
        lines.push(json!({
            "label": a.label,
            "value": on_chain_value(&a.kind, a.unit.as_deref(), *v),
        }));
    }
    lines
        .push(json!({"label": "Commitment", "value": format!("0x{}", anchor.commitment.to_hex())}));
    lines.push(json!({"label": "Transaction id", "value": format!("0x{}", anchor.tid.to_hex())}));
    lines.push(json!({"label": "Valid until", "value": format_utc(anchor.deadline)}));
    lines.push(json!({"label": "Network", "value": chain_name(wallet.chain_id)}));
    lines.push(json!({"label": "Registry contract", "value": wallet.to}));
    lines.push(json!({"label": "Sent by", "value": rec.submitter}));
    Ok(json!({
        "title": format!("Anchor a “{}” record on chain", spec.title),
        "lines": lines,
    }))
}

/// `walletSummary(wallet, template, expected)`: `{ title, lines: [{label, value}] }` — the
/// template, the on-chain values by attribute label, the commitment, the deadline as a date,
/// the chain and the contract. `expected` is `{ tid, commitment, registry, chainId }`: the
/// tid and commitment of `Identity.seal`'s result, the registry and chain of the page's
/// settings. Throws `wallet_mismatch` when the calldata is not for that record, registry or
/// chain, or when it and the relay's description disagree; `invalid_input` without
/// `expected`.
#[wasm_bindgen(js_name = walletSummary)]
pub fn wallet_summary(wallet: JsValue, template: JsValue, expected: JsValue) -> Result<JsValue> {
    let expected = Expected::from_js(&expected)?;
    let wallet: WalletTransaction = from_js(wallet, "The wallet transaction")?;
    let template = template_from_js(template)?;
    to_js(&summary(&wallet, &template, &expected)?)
}

/// `window.ethereum`, or `no_wallet`.
pub(crate) fn provider() -> Result<JsValue> {
    let window = js::window()?;
    let eth =
        js_sys::Reflect::get(&window, &JsValue::from_str("ethereum")).unwrap_or(JsValue::UNDEFINED);
    if eth.is_object() {
        Ok(eth)
    } else {
        Err(ClientError::new(
            "no_wallet",
            "No Ethereum wallet was found in this browser. Install or enable one (for \
             example MetaMask), then reload the page.",
        ))
    }
}

/// Maps an EIP-1193 error to a clear one.
fn wallet_error(err: &JsValue, method: &str) -> ClientError {
    let code = get_f64(err, "code").map(|c| c as i64);
    match code {
        Some(4001) => ClientError::new(
            "wallet_rejected",
            "You declined the request in your wallet; nothing was sent.",
        ),
        Some(4100) => ClientError::new(
            "wallet_rejected",
            "Your wallet did not allow this app to use your account. Connect the wallet first.",
        ),
        Some(-32002) => ClientError::new(
            "wallet_busy",
            "Your wallet is already showing a request from this page; open the wallet to \
             answer it.",
        ),
        Some(4900 | 4901) => ClientError::new(
            "wrong_network",
            "Your wallet is not connected to the network; check its network setting.",
        ),
        _ => ClientError::new(
            "wallet_error",
            format!(
                "Your wallet could not do {method}: {}",
                crate::error::capitalise(&js::message_of(err))
            ),
        ),
    }
}

/// `provider.request({ method, params })`.
pub(crate) async fn request(provider: &JsValue, method: &str, params: &JsValue) -> Result<JsValue> {
    let req = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&req, &"method".into(), &JsValue::from_str(method));
    let _ = js_sys::Reflect::set(&req, &"params".into(), params);
    let f: js_sys::Function = get(provider, "request").dyn_into().map_err(|_| {
        ClientError::new(
            "no_wallet",
            "The wallet in this browser does not support EIP-1193.",
        )
    })?;
    let promise = f
        .call1(provider, &req)
        .map_err(|e| wallet_error(&e, method))?;
    let promise: js_sys::Promise = match promise.dyn_into() {
        Ok(p) => p,
        Err(v) => js_sys::Promise::resolve(&v),
    };
    await_promise(promise)
        .await
        .map_err(|e| wallet_error(&e, method))
}

fn parse_chain_id(v: &JsValue) -> Result<u64> {
    if let Some(s) = v.as_string() {
        let s = s.trim();
        let parsed = match s.strip_prefix("0x") {
            Some(h) => u64::from_str_radix(h, 16).ok(),
            None => s.parse().ok(),
        };
        return parsed.ok_or_else(|| {
            ClientError::new("wallet_error", "The wallet's chain id cannot be read.")
        });
    }
    v.as_f64()
        .and_then(js::as_u64)
        .ok_or_else(|| ClientError::new("wallet_error", "The wallet's chain id cannot be read."))
}

async fn accounts(eth: &JsValue, method: &str) -> Result<Vec<String>> {
    let answer = request(eth, method, &js_sys::Array::new()).await?;
    let list: Vec<String> = js_sys::Array::from(&answer)
        .iter()
        .filter_map(|a| a.as_string())
        .map(|a| a.to_ascii_lowercase())
        .collect();
    Ok(list)
}

/// `connectWallet()`: asks the wallet for an account (`eth_requestAccounts`) and its chain
/// (`eth_chainId`): `{ address, chainId }`. `no_wallet`, `wallet_rejected`.
#[wasm_bindgen(js_name = connectWallet)]
pub async fn connect_wallet() -> Result<JsValue> {
    let eth = provider()?;
    let address = accounts(&eth, "eth_requestAccounts")
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| {
            ClientError::new(
                "wallet_rejected",
                "Your wallet did not share an account with this app.",
            )
        })?;
    let chain_id = parse_chain_id(&request(&eth, "eth_chainId", &js_sys::Array::new()).await?)?;
    to_js(&json!({"address": address, "chainId": chain_id}))
}

/// `sendWalletTransaction(wallet, expected)`: first checks, as `walletSummary` does, that
/// the calldata is for the sealed record and goes to the expected registry and chain
/// (`wallet_mismatch`; `expected` is `{ tid, commitment, registry, chainId }`), then the
/// wallet's network (`wrong_network`, naming the chain needed), the co-signature's deadline
/// (`cosignature_expired`) and the account the co-signature is for (`wrong_account`), then
/// sends `{from, to, data}` with `eth_sendTransaction`; resolves with the transaction hash.
/// Refusal: `wallet_rejected`.
#[wasm_bindgen(js_name = sendWalletTransaction)]
pub async fn send_wallet_transaction(wallet: JsValue, expected: JsValue) -> Result<JsValue> {
    let expected = Expected::from_js(&expected)?;
    let tx: WalletTransaction = from_js(wallet, "The wallet transaction")?;
    let anchor = consistent(&tx)?;
    check_expected(&tx, &anchor, &expected)?;
    let eth = provider()?;
    let chain = parse_chain_id(&request(&eth, "eth_chainId", &js_sys::Array::new()).await?)?;
    if chain != tx.chain_id {
        return Err(wrong_network(chain, tx.chain_id));
    }
    if js::now_ms() / 1000 > tx.deadline {
        return Err(ClientError::new(
            "cosignature_expired",
            "The relay's approval of this record has expired; submit the record again.",
        ));
    }
    let mut known = accounts(&eth, "eth_accounts").await?;
    if known.is_empty() {
        known = accounts(&eth, "eth_requestAccounts").await?;
    }
    let submitter = tx.record.submitter.to_ascii_lowercase();
    if !known.contains(&submitter) {
        return Err(ClientError::new(
            "wrong_account",
            format!(
                "This record may only be sent from the wallet account enrolled for you \
                 ({}). Switch to that account in your wallet.",
                tx.record.submitter
            ),
        ));
    }
    let params = to_js(&json!([{ "from": submitter, "to": tx.to, "data": tx.data }]))?;
    let hash = request(&eth, "eth_sendTransaction", &params).await?;
    hash.as_string().map(JsValue::from).ok_or_else(|| {
        ClientError::new(
            "wallet_error",
            "The wallet did not return a transaction hash.",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calldata(values: &[i64]) -> Vec<u8> {
        let mut d = vec![OP_ANCHOR_COSIGNED];
        d.extend([0x11; 16]);
        d.extend([0x22; 32]);
        d.extend(3u16.to_be_bytes());
        d.extend(1_800_000_000u64.to_be_bytes());
        d.extend([0x33; 65]);
        for v in values {
            d.extend(v.to_be_bytes());
        }
        d
    }

    #[test]
    fn cosigned_calldata_decodes() {
        let a = decode_cosigned(&calldata(&[72, -5])).expect("decodes");
        assert_eq!(a.tid, TxId::from_bytes([0x11; 16]));
        assert_eq!(a.commitment, Commitment::from_bytes([0x22; 32]));
        assert_eq!((a.handle, a.deadline), (3, 1_800_000_000));
        assert_eq!(a.values, [72, -5]);
        let mut bad = calldata(&[1]);
        bad.pop();
        assert_eq!(decode_cosigned(&bad).unwrap_err().code(), "wallet_mismatch");
    }

    fn wallet_tx() -> (WalletTransaction, Expected) {
        let data = calldata(&[72]);
        let tx = WalletTransaction {
            to: "0x5FbDB2315678afecb367f032d93F642f64180aa3".into(),
            data: format!("0x{}", hex::encode(&data)),
            chain_id: 31_337,
            deadline: 1_800_000_000,
            record: CosignedRecord {
                tid: format!("0x{}", "11".repeat(16)),
                commitment: format!("0x{}", "22".repeat(32)),
                template: 3,
                values: vec![72],
                deadline: 1_800_000_000,
                submitter: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8".into(),
            },
        };
        let expected = Expected {
            tid: TxId::from_bytes([0x11; 16]),
            commitment: Commitment::from_bytes([0x22; 32]),
            registry: "5fbdb2315678afecb367f032d93f642f64180aa3"
                .parse()
                .expect("address"),
            chain_id: 31_337,
        };
        (tx, expected)
    }

    #[test]
    fn only_the_sealed_record_on_the_expected_registry_passes() {
        let (tx, expected) = wallet_tx();
        let anchor = consistent(&tx).expect("consistent");
        check_expected(&tx, &anchor, &expected).expect("matches");
        let refused = |e: Expected| {
            check_expected(&tx, &anchor, &e)
                .expect_err("refused")
                .code()
                .to_owned()
        };
        let e = Expected {
            tid: TxId::from_bytes([0x12; 16]),
            ..expected.clone()
        };
        assert_eq!(refused(e), "wallet_mismatch");
        let e = Expected {
            commitment: Commitment::from_bytes([0x23; 32]),
            ..expected.clone()
        };
        assert_eq!(refused(e), "wallet_mismatch");
        let e = Expected {
            registry: EthAddress::from_bytes([0xaa; 20]),
            ..expected.clone()
        };
        assert_eq!(refused(e), "wallet_mismatch");
        let e = Expected {
            chain_id: 1,
            ..expected
        };
        assert_eq!(refused(e), "wallet_mismatch");
    }

    #[test]
    fn dates_and_chains_read_well() {
        assert_eq!(format_utc(1_800_000_000), "2027-01-15 08:00 UTC");
        assert_eq!(
            chain_name(31_337),
            "a local development chain (chain 31337)"
        );
        assert_eq!(wrong_network(1, 31_337).code(), "wrong_network");
    }
}
