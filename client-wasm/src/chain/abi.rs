//! The registry's ABI as the browser needs it: the calldata of the `ticketUsed(log, ticket)`
//! and `templateInfo(handle)` views and their answers, and the `RecordAnchored` event (its
//! tid topic and its three data words: commitment, values hash, `info`), decoded with
//! alloy's `sol!` types.

use alloy_primitives::B256;
use alloy_sol_types::{SolCall as _, SolEvent as _};
use mediblock_protocol::hash::Hash32;
use mediblock_protocol::ids::TxId;
use mediblock_protocol::proof::TemplateInfo;

use super::rpc_error;
use crate::error::Result;

#[allow(missing_docs, unreachable_pub, clippy::pub_underscore_fields)]
mod sol {
    alloy_sol_types::sol! {
        function ticketUsed(uint16 log, uint64 ticket) external view returns (bool);
        function templateInfo(uint16 handle) external view returns (
            bytes32 id,
            uint32 version,
            bytes32 templateHash,
            address validator,
            bool active,
            uint8 attributes
        );
        event RecordAnchored(
            bytes16 indexed tid,
            bytes32 commitment,
            bytes32 valuesHash,
            uint256 info
        );
    }
}

/// A decoded `RecordAnchored` event.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct AnchoredEvent {
    /// The record's tid (the indexed topic).
    pub tid: [u8; 16],
    /// The full commitment.
    pub commitment: [u8; 32],
    /// keccak256 of the on-chain values the registry judged (`values_hash`).
    pub values_hash: Hash32,
    /// Who sent the anchoring transaction.
    pub submitter: [u8; 20],
    /// The log (a relay's ticket space) the record was anchored in.
    pub log: u16,
    /// Template handle.
    pub handle: u16,
    /// The verdict byte: 0 valid, 1 + i rejected at on-chain attribute i, 255 rejected by
    /// a validator.
    pub verdict: u8,
    /// 1 relay, 2 wallet.
    pub path: u8,
}

/// Calldata of `ticketUsed(log, ticket)`.
pub fn ticket_used_calldata(log: u16, ticket: u64) -> Vec<u8> {
    sol::ticketUsedCall { log, ticket }.abi_encode()
}

/// Decodes the answer of `ticketUsed`.
pub fn decode_ticket_used(data: &[u8]) -> Result<bool> {
    sol::ticketUsedCall::abi_decode_returns_validate(data).map_err(|_| {
        rpc_error("The registry's answer to ticketUsed cannot be read (is this the registry?)")
    })
}

/// Calldata of `templateInfo(handle)`.
pub fn template_info_calldata(handle: u16) -> Vec<u8> {
    sol::templateInfoCall { handle }.abi_encode()
}

/// Decodes the answer of `templateInfo`: the template's id hash, version and hash (its
/// validator, state and attribute count are not needed to bind a verdict to a record).
pub fn decode_template_info(data: &[u8]) -> Result<TemplateInfo> {
    let info = sol::templateInfoCall::abi_decode_returns_validate(data).map_err(|_| {
        rpc_error("The registry's answer to templateInfo cannot be read (is this the registry?)")
    })?;
    Ok(TemplateInfo {
        id: info.id.0,
        version: info.version,
        template_hash: info.templateHash.0,
    })
}

/// `topics[0]` of `RecordAnchored`: keccak256 of its signature.
pub fn record_anchored_topic() -> [u8; 32] {
    sol::RecordAnchored::SIGNATURE_HASH.0
}

/// The topic of an indexed `bytes16` tid: the tid left-aligned in 32 bytes.
pub fn tid_topic(tid: &TxId) -> [u8; 32] {
    let mut out = [0u8; 32];
    out[..16].copy_from_slice(tid.as_bytes());
    out
}

/// Decodes a `RecordAnchored` log (its topics and its three data words: commitment,
/// valuesHash, info), unpacking `info` = submitter (bits 96..255) · log (32..47) ·
/// handle (16..31) · verdict (8..15) · path (0..7).
pub fn decode_record_anchored(topics: &[[u8; 32]], data: &[u8]) -> Result<AnchoredEvent> {
    let event = sol::RecordAnchored::decode_raw_log(topics.iter().map(|t| B256::from(*t)), data)
        .map_err(|_| rpc_error("A RecordAnchored log cannot be read"))?;
    let info = event.info.to_be_bytes::<32>();
    let mut submitter = [0u8; 20];
    submitter.copy_from_slice(&info[..20]);
    Ok(AnchoredEvent {
        tid: event.tid.0,
        commitment: event.commitment.0,
        values_hash: event.valuesHash.0,
        submitter,
        log: u16::from_be_bytes([info[26], info[27]]),
        handle: u16::from_be_bytes([info[28], info[29]]),
        verdict: info[30],
        path: info[31],
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use mediblock_protocol::hash::keccak256;

    fn tid() -> TxId {
        "00112233445566778899aabbccddeeff".parse().expect("tid")
    }

    /// The data of a `RecordAnchored` log: commitment, values hash, then `info`.
    pub(crate) fn event_data(
        commitment: [u8; 32],
        values_hash: [u8; 32],
        log: u16,
        handle: u16,
    ) -> Vec<u8> {
        let mut data = vec![0u8; 96];
        data[..32].copy_from_slice(&commitment);
        data[32..64].copy_from_slice(&values_hash);
        data[64..84].copy_from_slice(&[0x11; 20]);
        data[90..92].copy_from_slice(&log.to_be_bytes());
        data[92..94].copy_from_slice(&handle.to_be_bytes());
        data[94] = 0;
        data[95] = 2;
        data
    }

    #[test]
    fn ticket_used_calldata_is_selector_log_and_right_aligned_ticket() {
        let data = ticket_used_calldata(0x0102, 0x0011_2233_4455_6677);
        assert_eq!(data.len(), 4 + 64);
        assert_eq!(data[..4], keccak256(b"ticketUsed(uint16,uint64)")[..4]);
        assert!(data[4..34].iter().all(|b| *b == 0));
        assert_eq!(data[34..36], [0x01, 0x02]);
        assert!(data[36..60].iter().all(|b| *b == 0));
        assert_eq!(data[60..], [0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77]);
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
    fn template_info_calldata_and_answer() {
        let data = template_info_calldata(0x0203);
        assert_eq!(data.len(), 4 + 32);
        assert_eq!(data[..4], keccak256(b"templateInfo(uint16)")[..4]);
        assert!(data[4..34].iter().all(|b| *b == 0));
        assert_eq!(data[34..], [0x02, 0x03]);

        // (id, version, templateHash, validator, active, attributes), one word each.
        let mut answer = vec![0u8; 6 * 32];
        answer[..32].copy_from_slice(&[0x21; 32]);
        answer[60..64].copy_from_slice(&7u32.to_be_bytes());
        answer[64..96].copy_from_slice(&[0x43; 32]);
        answer[108..128].copy_from_slice(&[0x65; 20]);
        answer[159] = 1;
        answer[191] = 3;
        let info = decode_template_info(&answer).expect("decodes");
        assert_eq!(
            info,
            TemplateInfo {
                id: [0x21; 32],
                version: 7,
                template_hash: [0x43; 32],
            }
        );
        // Short, or a version word over 32 bits: not the registry's answer.
        assert_eq!(
            decode_template_info(&answer[..160]).unwrap_err().code(),
            "rpc_error"
        );
        let mut wide = answer.clone();
        wide[59] = 1;
        assert!(decode_template_info(&wide).is_err());
    }

    #[test]
    fn record_anchored_log_decodes_three_words_and_unpacks_info() {
        assert_eq!(
            record_anchored_topic(),
            keccak256(b"RecordAnchored(bytes16,bytes32,bytes32,uint256)")
        );
        let data = event_data([0xcd; 32], [0xef; 32], 0x0102, 3);
        let e = decode_record_anchored(&[record_anchored_topic(), tid_topic(&tid())], &data)
            .expect("decodes");
        assert_eq!(e.tid, *tid().as_bytes());
        assert_eq!(e.commitment, [0xcd; 32]);
        assert_eq!(e.values_hash, [0xef; 32]);
        assert_eq!(e.submitter, [0x11; 20]);
        assert_eq!((e.log, e.handle, e.verdict, e.path), (0x0102, 3, 0, 2));
        assert!(decode_record_anchored(&[[0u8; 32], tid_topic(&tid())], &data).is_err());
        // The previous event's two words are not this event.
        assert!(
            decode_record_anchored(&[record_anchored_topic(), tid_topic(&tid())], &data[..64])
                .is_err()
        );
    }
}
