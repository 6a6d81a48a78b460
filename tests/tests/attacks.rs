//! The four attacks of issue 12, each performed as an outside adversary would, on a real
//! anvil against the real contracts, and each shown refused (a revert) or detected (a value
//! on chain that a verifier holding the signed record compares):
//!
//! 1. **A verdict about other values.** A sender puts values other than the record's in
//!    calldata: the event's `valuesHash` is keccak256 of exactly the values judged, so the
//!    mismatch shows; a copy of a relay's record by another relay lands in that relay's log.
//! 2. **Rules changed after publication.** A validator whose deployer can rewrite its rules
//!    is refused at registration; the frozen `OrderValidator` has no way to change.
//! 3. **One relay stopping every relay's checkpoints.** Each relay checkpoints its own log.
//! 4. **One relay burning another's tickets.** Each log has its own ticket space.
//!
//! The purity scan itself (every refused opcode, PUSH data, EIP-7702 delegations, the code
//! hash) is tested opcode by opcode in `rules.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use alloy::consensus::Transaction as _;
use alloy::primitives::{Address, B256, Bytes, FixedBytes, U256};
use alloy::providers::Provider;
use alloy::rpc::types::{Filter, TransactionReceipt};
use alloy::sol;
use alloy::sol_types::{SolCall, SolEvent};
use mediblock_e2e::fixture::{
    self, Chain, RELAY, RELAY_B, RELAY_NEW_KEY, STRANGER, TICKET_BASE, anchored, call_revert_of,
    packed_values_hash, revert_of, send_mined,
};
use mediblock_e2e::registry::{
    self, Anchor, AnchorPath, AnchoredRecord, MediBlockRegistry, OrderValidator, RegistryError,
    Rule, Verdict,
};
use mediblock_protocol::ids::TxId;

sol! {
    /// Registry v1's OrderValidator (tests/solidity/MutableOrderValidator.sol): its owner
    /// rewrites the pairs of any (registry, template) at any time.
    #[sol(rpc)]
    interface MutableOrderValidator {
        function owner() external view returns (address);
        function setPairs(address registry, uint16 template, uint8[2][] calldata pairs) external;
        function pairsOf(address registry, uint16 template) external view returns (uint8[2][] memory);
        function validate(uint16 template, int64[] calldata values) external view returns (uint8);
    }
}

/// The on-chain value bytes of an anchoring transaction, read back from the chain: its
/// input from byte 51 (OP_ANCHOR) or 124 (OP_ANCHOR_COSIGNED) on, exactly what the rules
/// read.
async fn values_in_calldata(chain: &Chain, receipt: &TransactionReceipt) -> Vec<u8> {
    let tx = chain
        .admin
        .provider()
        .get_transaction_by_hash(receipt.transaction_hash)
        .await
        .unwrap()
        .expect("the transaction is on chain");
    let input = tx.input();
    let offset = match input[0] {
        registry::OP_ANCHOR => 51,
        registry::OP_ANCHOR_COSIGNED => 124,
        op => panic!("not an anchor: op {op}"),
    };
    input[offset..].to_vec()
}

/// What a verifier holding the signed record (its true on-chain values) and knowing its
/// log checks of an event: the log, then that the verdict is about these values.
fn verifier_accepts(event: &AnchoredRecord, log: u16, true_values: &[i64]) -> bool {
    event.log == log && event.values_hash == packed_values_hash(true_values)
}

/// Who puts a record on chain: a relay itself, or the wallet with a relay's co-signature.
#[derive(Debug, Clone, Copy)]
enum Path {
    Relay(usize),
    WalletCosignedBy(usize),
}

impl Path {
    async fn anchor(
        self,
        chain: &Chain,
        anchor: &Anchor,
    ) -> Result<TransactionReceipt, registry::SendError> {
        match self {
            Self::Relay(account) => chain.anchor_as(account, anchor).await,
            Self::WalletCosignedBy(relay) => {
                let deadline = chain.now().await.unwrap() + 600;
                let cosignature = chain.cosign_by(anchor, deadline, relay, chain.wallet_address());
                chain.wallet_anchors(anchor, &cosignature).await
            }
        }
    }
}

/// Attack 1 on one path: for records whose true values are valid or rejected, relay B (or
/// a wallet it co-signs for) anchors the record's tid and commitment with other values,
/// valid or rejected; then relay A (or the wallet it co-signs for) anchors the true record.
async fn other_values_are_named_by_the_values_hash(
    adversary: Path,
    honest: Path,
    expected_path: AnchorPath,
) {
    let chain = Chain::start().await.unwrap();
    let log_a = chain.log;
    let log_b = chain.add_relay(RELAY_B).await.unwrap();
    assert_ne!(log_a, log_b);
    // (the record's true values, the values the adversary puts in calldata instead)
    let cases: [([i64; 3], [i64; 3]); 3] = [
        // A valid record smeared as rejected.
        ([72, 368, 1], [19, 368, 1]),
        // A rejected record whitewashed as valid.
        ([72, 368, 2], [72, 368, 1]),
        // A valid record, valid other values: the verdict agrees, the values do not.
        ([72, 368, 1], [73, 369, 0]),
    ];
    for (i, (truth, forged)) in cases.into_iter().enumerate() {
        let record = chain.anchor(10 + i as u64, &truth);
        let mut forgery = record.clone();
        forgery.values = forged.to_vec();

        let receipt = adversary.anchor(&chain, &forgery).await.unwrap();
        let event = anchored(&chain, &receipt);
        // The same tid and commitment, the verdict the rules give the forged values...
        assert_eq!(
            (event.tid, event.commitment),
            (record.tid, record.commitment)
        );
        let verdict = chain
            .admin
            .verdictFor(chain.handle, forged.to_vec())
            .call()
            .await
            .unwrap();
        assert_eq!(event.verdict, Verdict::from_byte(verdict), "case {i}");
        assert_eq!(event.path, expected_path);
        // ...and the hash of exactly the calldata values that verdict judged.
        let calldata = values_in_calldata(&chain, &receipt).await;
        assert_eq!(calldata.len(), 24);
        assert_eq!(
            event.values_hash,
            mediblock_protocol::hash::keccak256(&calldata)
        );
        assert_eq!(event.values_hash, packed_values_hash(&forged));
        assert_eq!(event.values_hash, forgery.values_hash());
        assert_ne!(event.values_hash, packed_values_hash(&truth));
        // In the adversary's log, so a verifier of the record sees it is not the record's;
        // and were it looked at anyway, the values hash gives it away.
        assert_eq!(event.log, log_b);
        assert!(!verifier_accepts(&event, log_a, &truth));
        assert!(!verifier_accepts(&event, log_b, &truth));

        // The honest anchor of the same record still goes through, in A's log.
        let receipt = honest.anchor(&chain, &record).await.unwrap();
        let honest_event = anchored(&chain, &receipt);
        assert_eq!(honest_event.log, log_a);
        assert_eq!(
            honest_event.values_hash,
            mediblock_protocol::hash::keccak256(&values_in_calldata(&chain, &receipt).await)
        );
        assert!(verifier_accepts(&honest_event, log_a, &truth));
        let truth_verdict = chain
            .admin
            .verdictFor(chain.handle, truth.to_vec())
            .call()
            .await
            .unwrap();
        assert_eq!(honest_event.verdict, Verdict::from_byte(truth_verdict));

        // A reader filtering the tid finds both; the one of the record's log is the record.
        let records = chain.records_of(&record.tid).await.unwrap();
        assert_eq!(records, vec![event, honest_event.clone()]);
        let mine: Vec<_> = records.iter().filter(|r| r.log == log_a).collect();
        assert_eq!(mine, vec![&honest_event]);

        // Within one log the tid stays anchored once: neither relay can add a second
        // verdict to its own log, with any values.
        for (path, values) in [(adversary, truth), (honest, forged)] {
            let mut again = record.clone();
            again.values = values.to_vec();
            match revert_of(path.anchor(&chain, &again).await) {
                RegistryError::AlreadyAnchored(e) => assert_eq!(e.tid.0, record.tid),
                other => panic!("unexpected {other:?} ({path:?})"),
            }
        }
    }
}

#[tokio::test]
async fn attack1_other_values_on_the_relay_path_are_named_by_the_values_hash() {
    other_values_are_named_by_the_values_hash(
        Path::Relay(RELAY_B),
        Path::Relay(RELAY),
        AnchorPath::Relay,
    )
    .await;
}

#[tokio::test]
async fn attack1_other_values_on_the_wallet_path_are_named_by_the_values_hash() {
    other_values_are_named_by_the_values_hash(
        Path::WalletCosignedBy(RELAY_B),
        Path::WalletCosignedBy(RELAY),
        AnchorPath::Wallet,
    )
    .await;
}

#[tokio::test]
async fn attack1_a_second_relay_copying_a_record_lands_in_its_own_log() {
    let chain = Chain::start().await.unwrap();
    let log_b = chain.add_relay(RELAY_B).await.unwrap();
    // Relay B sees relay A's record (in the mempool, or in A's earlier attempt) and anchors
    // a copy first: the same tid and commitment, values of its own choosing.
    let record = chain.anchor(1, &[72, 368, 1]);
    let ticket = TxId::from_bytes(record.tid).ticket();
    let mut copy = record.clone();
    copy.values = vec![250, 450, 0];
    let copied = anchored(&chain, &chain.anchor_as(RELAY_B, &copy).await.unwrap());
    assert_eq!(
        (copied.tid, copied.commitment, copied.log, copied.submitter),
        (
            record.tid,
            record.commitment,
            log_b,
            chain.anvil.address(RELAY_B)
        )
    );
    assert_eq!(copied.values_hash, packed_values_hash(&[250, 450, 0]));
    assert!(chain.ticket_used_in(log_b, ticket).await.unwrap());
    // A's log is untouched, and A's own anchor of the tid succeeds.
    assert!(!chain.ticket_used(ticket).await.unwrap());
    let own = anchored(&chain, &chain.relay_anchors(&record).await.unwrap());
    assert_eq!(
        (own.tid, own.log, own.submitter, own.verdict),
        (record.tid, chain.log, chain.relay_address(), Verdict::Valid)
    );
    assert_eq!(own.values_hash, packed_values_hash(&[72, 368, 1]));
    assert!(chain.ticket_used(ticket).await.unwrap());
    // An exact copy (the true values too) is just as harmless: it is in B's log.
    let exact = chain.anchor(2, &[72, 368, 1]);
    let event = anchored(&chain, &chain.anchor_as(RELAY_B, &exact).await.unwrap());
    assert_eq!(event.log, log_b);
    assert_eq!(
        anchored(&chain, &chain.relay_anchors(&exact).await.unwrap()).log,
        chain.log
    );
    let logs: Vec<u16> = chain
        .records_of(&exact.tid)
        .await
        .unwrap()
        .iter()
        .map(|r| r.log)
        .collect();
    assert_eq!(logs, vec![log_b, chain.log]);
}

#[tokio::test]
async fn attack1_the_records_own_relay_anchoring_other_values_is_detected() {
    let chain = Chain::start().await.unwrap();
    // The record's own relay lies: a rejected record (temperature 47.1 °C) anchored, in
    // the record's own log, with values that pass, by the relay and through the wallet.
    let deadline = chain.now().await.unwrap() + 600;
    for (seed, by_wallet) in [(1u64, false), (2, true)] {
        let truth = [72i64, 471, 0];
        let record = chain.anchor(seed, &truth);
        let mut lie = record.clone();
        lie.values = vec![72, 371, 0];
        let receipt = if by_wallet {
            let c = chain.cosign(&lie, deadline);
            chain.wallet_anchors(&lie, &c).await.unwrap()
        } else {
            chain.relay_anchors(&lie).await.unwrap()
        };
        let event = anchored(&chain, &receipt);
        // The chain says "valid", in the right log, for the right tid and commitment...
        assert_eq!(
            (event.tid, event.commitment, event.log, event.verdict),
            (record.tid, record.commitment, chain.log, Verdict::Valid)
        );
        // ...about values that are not the record's: the verifier refuses the verdict.
        assert_eq!(event.values_hash, packed_values_hash(&lie.values));
        assert!(!verifier_accepts(&event, chain.log, &truth));
        // The true values can no longer be anchored in that log: the record has no valid
        // chain verdict at all, and the lie is on chain for good.
        assert!(matches!(
            revert_of(chain.relay_anchors(&record).await),
            RegistryError::AlreadyAnchored(_)
        ));
        assert_eq!(chain.records_of(&record.tid).await.unwrap(), vec![event]);
    }
}

/// The first opcode of `code` that the registry's purity scan refuses, with its position,
/// found independently of the contract: PUSH1..PUSH32 data is skipped.
fn first_impure(code: &[u8]) -> Option<(usize, u8)> {
    const REFUSED: &[u8] = &[
        0x31, 0x32, 0x33, 0x3a, 0x3b, 0x3c, 0x3f, 0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47,
        0x48, 0x49, 0x4a, 0x55, 0x5a, 0x5c, 0x5d, 0xf0, 0xf1, 0xf2, 0xf4, 0xf5, 0xfa, 0xff,
    ];
    let mut pc = 0;
    while pc < code.len() {
        let op = code[pc];
        if REFUSED.contains(&op) {
            return Some((pc, op));
        }
        pc += if (0x60..=0x7f).contains(&op) {
            usize::from(op - 0x5e)
        } else {
            1
        };
    }
    None
}

#[tokio::test]
async fn attack2_a_validator_its_deployer_can_reconfigure_is_refused() {
    let chain = Chain::start().await.unwrap();
    let compiled =
        fixture::compile_test_contract("MutableOrderValidator.sol", "MutableOrderValidator")
            .unwrap();
    // Whoever deploys it owns it: here an outsider with no role in the registry, then the
    // registry's own admin.
    for deployer in [STRANGER, fixture::ADMIN] {
        let provider = registry::provider(chain.anvil.url(), chain.anvil.signer(deployer));
        let owner = chain.anvil.address(deployer);
        let mut init = compiled.bytecode.to_vec();
        init.extend_from_slice(B256::left_padding_from(owner.as_slice()).as_slice());
        let address = fixture::deploy_code(&provider, init).await.unwrap();
        let validator = MutableOrderValidator::new(address, provider);
        assert_eq!(validator.owner().call().await.unwrap(), owner);

        // The threat is real: the owner configures "systolic above diastolic" for the
        // template it expects, and a verdict the registry would read flips when it changes
        // its mind.
        let handle = chain.admin.templateCount().call().await.unwrap() + 1;
        validator
            .setPairs(chain.address(), handle, vec![[0, 1]])
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        let as_registry = |v: Vec<i64>| validator.validate(handle, v).from(chain.address());
        assert_eq!(as_registry(vec![90, 95]).call().await.unwrap(), 1);
        validator
            .setPairs(chain.address(), handle, vec![])
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap();
        assert_eq!(as_registry(vec![90, 95]).call().await.unwrap(), 0);

        // The registry refuses it, naming the first opcode that could change a verdict.
        let code = chain.admin.provider().get_code_at(address).await.unwrap();
        let (pc, op) = first_impure(&code).expect("the mutable validator is impure");
        assert!(
            [0x33, 0x55].contains(&op),
            "CALLER or SSTORE comes first, got {op:#x}"
        );
        let id = FixedBytes([0x60 + deployer as u8; 32]);
        let register = chain.admin.registerTemplate(
            id,
            1,
            FixedBytes([0x61; 32]),
            vec![Rule::range(70, 250), Rule::range(40, 150)],
            address,
        );
        match call_revert_of(register.send().await) {
            RegistryError::ImpureValidator(e) => {
                assert_eq!((e.validator, e.pc, e.opcode), (address, U256::from(pc), op));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(chain.admin.handleOf(id, 1).call().await.unwrap(), 0);
        assert_eq!(chain.admin.templateCount().call().await.unwrap(), 1);
    }
}

#[tokio::test]
async fn attack2_the_frozen_order_validator_cannot_be_reconfigured_by_its_deployer() {
    let chain = Chain::start().await.unwrap();
    // An outsider deploys the validator the admin then adopts: it is the deployer, and
    // would be the owner of a v1 validator.
    let deployer = registry::provider(chain.anvil.url(), chain.anvil.signer(STRANGER));
    let validator = OrderValidator::deploy(deployer.clone(), vec![[0u8, 1]])
        .await
        .unwrap();
    let address = *validator.address();
    let code = chain.admin.provider().get_code_at(address).await.unwrap();
    assert_eq!(
        first_impure(&code),
        None,
        "no SSTORE, no call, no environment"
    );
    let id = FixedBytes([0x62; 32]);
    chain
        .admin
        .registerTemplate(
            id,
            1,
            FixedBytes([0x63; 32]),
            vec![Rule::range(70, 250), Rule::range(40, 150)],
            address,
        )
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let handle = chain.admin.handleOf(id, 1).call().await.unwrap();
    let registered = chain.admin.templateValidator(handle).call().await.unwrap();
    assert_eq!(
        (registered.validator, registered.codeHash),
        (
            address,
            B256::from(mediblock_protocol::hash::keccak256(&code))
        )
    );

    // A record it rejects (diastolic above systolic), anchored.
    let mut record = chain.anchor(1, &[90, 95]);
    record.handle = handle;
    let event = anchored(&chain, &chain.relay_anchors(&record).await.unwrap());
    assert_eq!(event.verdict, Verdict::Rejected { index: 0 });
    let verdict = || chain.admin.verdictFor(handle, vec![90, 95]);
    assert_eq!(verdict().call().await.unwrap(), 1);

    // The deployer tries v1's setter, and every other way v1 had to change hands or rules:
    // each is mined and reverts, because the contract has no such function.
    let calls: Vec<Bytes> = vec![
        MutableOrderValidator::setPairsCall {
            registry: chain.address(),
            template: handle,
            pairs: vec![],
        }
        .abi_encode()
        .into(),
        MutableOrderValidator::setPairsCall {
            registry: Address::ZERO,
            template: 0,
            pairs: vec![[1, 0]],
        }
        .abi_encode()
        .into(),
        Bytes::new(),
    ];
    for calldata in calls {
        let receipt = send_mined(&deployer, address, calldata.clone()).await;
        assert!(!receipt.status(), "{calldata} must revert");
        assert!(receipt.inner.logs().is_empty());
    }
    // Nothing moved: the verdict, the pairs, the code and its hash.
    assert_eq!(verdict().call().await.unwrap(), 1);
    assert_eq!(validator.pairs().call().await.unwrap(), vec![[0u8, 1]]);
    let after = chain.admin.provider().get_code_at(address).await.unwrap();
    assert_eq!(after, code);
    assert_eq!(
        chain
            .admin
            .templateValidator(handle)
            .call()
            .await
            .unwrap()
            .codeHash,
        registered.codeHash
    );
    // And a new record with the same values gets the same verdict as the first.
    let mut later = chain.anchor(2, &[90, 95]);
    later.handle = handle;
    let again = anchored(&chain, &chain.relay_anchors(&later).await.unwrap());
    assert_eq!(
        (again.verdict, again.values_hash),
        (event.verdict, event.values_hash)
    );
}

/// The `CheckpointAnchored` events of `log`, found with a filter on the log topic.
async fn checkpoints_of(chain: &Chain, log: u16) -> Vec<(u64, B256, Address)> {
    let filter = Filter::new()
        .address(chain.address())
        .event_signature(MediBlockRegistry::CheckpointAnchored::SIGNATURE_HASH)
        .topic1(B256::from(U256::from(log)))
        .from_block(0);
    chain
        .admin
        .provider()
        .get_logs(&filter)
        .await
        .unwrap()
        .iter()
        .map(|l| {
            let e = MediBlockRegistry::CheckpointAnchored::decode_log_data(l.data()).unwrap();
            assert_eq!(e.log, log);
            (e.size, e.root, e.submitter)
        })
        .collect()
}

/// The size a checkpoint was refused with, and the latest size it was compared to.
fn not_growing<T: std::fmt::Debug>(result: Result<T, registry::SendError>) -> (u64, u64) {
    match revert_of(result) {
        RegistryError::CheckpointNotGrowing(e) => (e.size, e.latest),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn attack3_a_relay_cannot_stop_another_relays_checkpoints() {
    let chain = Chain::start().await.unwrap();
    let log_a = chain.log;
    let relay_b = chain.anvil.address(RELAY_B);
    let log_b = chain.add_relay(RELAY_B).await.unwrap();
    assert_ne!(log_a, log_b);
    assert_eq!(chain.admin.logWriter(log_b).call().await.unwrap(), relay_b);
    chain.relay_checkpoints(10, &[0xa1; 32]).await.unwrap();

    // Relay B anchors the largest size there is.
    let receipt = chain
        .checkpoint_as(RELAY_B, u64::MAX, &[0xbb; 32])
        .await
        .unwrap();
    let event = receipt
        .decoded_log::<MediBlockRegistry::CheckpointAnchored>()
        .unwrap();
    assert_eq!(
        (event.log, event.size, event.submitter),
        (log_b, u64::MAX, relay_b)
    );
    // Its own log can grow no more...
    assert_eq!(
        not_growing(chain.checkpoint_as(RELAY_B, u64::MAX, &[0xbc; 32]).await),
        (u64::MAX, u64::MAX)
    );
    // ...and A's goes on growing from its own latest size.
    assert_eq!(
        not_growing(chain.relay_checkpoints(10, &[0xa2; 32]).await),
        (10, 10)
    );
    let event = chain
        .relay_checkpoints(11, &[0xa2; 32])
        .await
        .unwrap()
        .decoded_log::<MediBlockRegistry::CheckpointAnchored>()
        .unwrap();
    assert_eq!((event.log, event.size), (log_a, 11));
    let a = chain.admin.latestCheckpoint(log_a).call().await.unwrap();
    assert_eq!((a.size, a.root, a.count), (11, B256::from([0xa2; 32]), 2));

    // B removed: its log is frozen, A's goes on.
    let receipt = chain
        .admin
        .removeRelay(relay_b)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let frozen = receipt
        .decoded_log::<MediBlockRegistry::LogWriterChanged>()
        .unwrap();
    assert_eq!((frozen.log, frozen.writer), (log_b, Address::ZERO));
    for size in [12u64, 13] {
        let event = chain
            .relay_checkpoints(size, &[size as u8; 32])
            .await
            .unwrap()
            .decoded_log::<MediBlockRegistry::CheckpointAnchored>()
            .unwrap();
        assert_eq!((event.log, event.size), (log_a, size));
    }
    // B can no longer checkpoint, in any log.
    match revert_of(chain.checkpoint_as(RELAY_B, 1, &[0xbd; 32]).await) {
        RegistryError::Unauthorized(e) => assert_eq!(e.account, relay_b),
        other => panic!("unexpected {other:?}"),
    }
    // Its frozen log keeps its checkpoint readable, by view and by event.
    let b = chain.admin.latestCheckpoint(log_b).call().await.unwrap();
    assert_eq!(
        (b.size, b.root, b.count),
        (u64::MAX, B256::from([0xbb; 32]), 1)
    );
    assert_eq!(
        checkpoints_of(&chain, log_b).await,
        vec![(u64::MAX, B256::from([0xbb; 32]), relay_b)]
    );
    let sizes: Vec<u64> = checkpoints_of(&chain, log_a)
        .await
        .iter()
        .map(|c| c.0)
        .collect();
    assert_eq!(sizes, vec![10, 11, 12, 13]);

    // The same address added again gets a new log, starting from nothing.
    let log_b2 = chain.add_relay(RELAY_B).await.unwrap();
    assert_eq!(log_b2, 3);
    assert_eq!(chain.admin.logCount().call().await.unwrap(), 3);
    let event = chain
        .checkpoint_as(RELAY_B, 1, &[0xbe; 32])
        .await
        .unwrap()
        .decoded_log::<MediBlockRegistry::CheckpointAnchored>()
        .unwrap();
    assert_eq!((event.log, event.size), (log_b2, 1));
    assert_eq!(
        chain.admin.logWriter(log_b).call().await.unwrap(),
        Address::ZERO
    );
    assert_eq!(
        chain
            .admin
            .latestCheckpoint(log_b)
            .call()
            .await
            .unwrap()
            .size,
        u64::MAX
    );
    chain.relay_checkpoints(14, &[14; 32]).await.unwrap();
    assert_eq!(
        chain
            .admin
            .latestCheckpoint(log_a)
            .call()
            .await
            .unwrap()
            .size,
        14
    );
}

#[tokio::test]
async fn attack3_a_rotated_relay_key_continues_its_log() {
    let chain = Chain::start().await.unwrap();
    let log = chain.log;
    let old = chain.relay_address();
    let new = chain.anvil.address(RELAY_NEW_KEY);
    let used = chain.anchor(1, &[72, 368, 1]);
    anchored(&chain, &chain.relay_anchors(&used).await.unwrap());
    chain.relay_checkpoints(5, &[5; 32]).await.unwrap();
    let deadline = chain.now().await.unwrap() + 600;
    let old_cosignature_record = chain.anchor(2, &[72, 368, 1]);
    let old_cosignature = chain.cosign(&old_cosignature_record, deadline);

    let receipt = chain
        .admin
        .replaceRelay(old, new)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let removed = receipt
        .decoded_log::<MediBlockRegistry::SubmitterRemoved>()
        .unwrap();
    let added = receipt
        .decoded_log::<MediBlockRegistry::SubmitterAdded>()
        .unwrap();
    let writer = receipt
        .decoded_log::<MediBlockRegistry::LogWriterChanged>()
        .unwrap();
    assert_eq!((removed.account, removed.role), (old, registry::ROLE_RELAY));
    assert_eq!((added.account, added.role), (new, registry::ROLE_RELAY));
    assert_eq!((writer.log, writer.writer), (log, new));
    let a = &chain.admin;
    assert_eq!(a.logOf(old).call().await.unwrap(), 0);
    assert_eq!(a.logOf(new).call().await.unwrap(), log);
    assert_eq!(a.logWriter(log).call().await.unwrap(), new);
    assert_eq!(a.logCount().call().await.unwrap(), 1, "no new log");
    assert_eq!(a.roleOf(old).call().await.unwrap(), 0);
    assert_eq!(a.relays().call().await.unwrap(), vec![new]);
    assert!(a.canAnchor(new, chain.handle).call().await.unwrap());
    assert!(!a.canAnchor(old, chain.handle).call().await.unwrap());

    // The old key can neither anchor, nor checkpoint, nor co-sign.
    let fresh = chain.anchor(3, &[72, 368, 1]);
    match revert_of(chain.relay_anchors(&fresh).await) {
        RegistryError::Unauthorized(e) => assert_eq!(e.account, old),
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(
        revert_of(chain.relay_checkpoints(6, &[6; 32]).await),
        RegistryError::Unauthorized(_)
    ));
    assert!(matches!(
        revert_of(
            chain
                .wallet_anchors(&old_cosignature_record, &old_cosignature)
                .await
        ),
        RegistryError::BadCosignature(_)
    ));

    // The new key continues the log: sizes go on growing from the old key's latest...
    for size in [5u64, 4] {
        assert_eq!(
            not_growing(chain.checkpoint_as(RELAY_NEW_KEY, size, &[7; 32]).await),
            (size, 5)
        );
    }
    let event = chain
        .checkpoint_as(RELAY_NEW_KEY, 6, &[6; 32])
        .await
        .unwrap()
        .decoded_log::<MediBlockRegistry::CheckpointAnchored>()
        .unwrap();
    assert_eq!((event.log, event.size, event.submitter), (log, 6, new));
    let latest = a.latestCheckpoint(log).call().await.unwrap();
    assert_eq!((latest.size, latest.count), (6, 2));
    // ...and tickets go on in the same space: a ticket the old key used is taken.
    let twin = chain.ticketed_anchor(TxId::from_bytes(used.tid).ticket(), 0x7719, &[80, 370, 0]);
    assert!(matches!(
        revert_of(chain.anchor_as(RELAY_NEW_KEY, &twin).await),
        RegistryError::AlreadyAnchored(_)
    ));
    let event = anchored(
        &chain,
        &chain.anchor_as(RELAY_NEW_KEY, &fresh).await.unwrap(),
    );
    assert_eq!((event.log, event.submitter), (log, new));
    assert!(
        chain
            .ticket_used(TxId::from_bytes(fresh.tid).ticket())
            .await
            .unwrap()
    );
    // Its co-signatures put the wallet's records in the same log.
    let cosignature = chain.cosign_by(
        &old_cosignature_record,
        deadline,
        RELAY_NEW_KEY,
        chain.wallet_address(),
    );
    let event = anchored(
        &chain,
        &chain
            .wallet_anchors(&old_cosignature_record, &cosignature)
            .await
            .unwrap(),
    );
    assert_eq!((event.log, event.path), (log, AnchorPath::Wallet));
}

#[tokio::test]
async fn attack4_a_relay_cannot_burn_another_relays_tickets() {
    let chain = Chain::start().await.unwrap();
    let log_a = chain.log;
    let log_b = chain.add_relay(RELAY_B).await.unwrap();
    // A's tickets are consecutive and visible: having seen TICKET_BASE anchored, B knows
    // A's next ones.
    anchored(
        &chain,
        &chain
            .relay_anchors(&chain.anchor(0, &[72, 368, 1]))
            .await
            .unwrap(),
    );
    let next = [TICKET_BASE + 1, TICKET_BASE + 2];
    // B anchors under them, itself and through a wallet it co-signs for.
    let by_b = chain.ticketed_anchor(next[0], 0xb1, &[72, 368, 1]);
    let event = anchored(&chain, &chain.anchor_as(RELAY_B, &by_b).await.unwrap());
    assert_eq!(event.log, log_b);
    let via_wallet = chain.ticketed_anchor(next[1], 0xb2, &[72, 368, 1]);
    let deadline = chain.now().await.unwrap() + 600;
    let c = chain.cosign_by(&via_wallet, deadline, RELAY_B, chain.wallet_address());
    let event = anchored(
        &chain,
        &chain.wallet_anchors(&via_wallet, &c).await.unwrap(),
    );
    assert_eq!((event.log, event.path), (log_b, AnchorPath::Wallet));
    for t in next {
        assert!(chain.ticket_used_in(log_b, t).await.unwrap());
        assert!(!chain.ticket_used_in(log_a, t).await.unwrap(), "ticket {t}");
    }

    // A's own records with those tickets still anchor, by both paths, in A's log.
    let mine = chain.ticketed_anchor(next[0], 0xa1, &[72, 368, 1]);
    let event = anchored(&chain, &chain.relay_anchors(&mine).await.unwrap());
    assert_eq!(event.log, log_a);
    let mine_via_wallet = chain.ticketed_anchor(next[1], 0xa2, &[72, 368, 0]);
    let c = chain.cosign(&mine_via_wallet, deadline);
    let event = anchored(
        &chain,
        &chain.wallet_anchors(&mine_via_wallet, &c).await.unwrap(),
    );
    assert_eq!((event.log, event.path), (log_a, AnchorPath::Wallet));

    // The two ticket spaces are independent, bit for bit.
    let word = TICKET_BASE >> 8;
    let a_bits = chain.admin.ticketWord(log_a, word).call().await.unwrap();
    let b_bits = chain.admin.ticketWord(log_b, word).call().await.unwrap();
    assert_eq!(a_bits, U256::from(0b111));
    assert_eq!(b_bits, U256::from(0b110));
    assert!(!chain.ticket_used_in(log_b, TICKET_BASE).await.unwrap());
    // In its own space each ticket is still used once.
    let b_again = chain.ticketed_anchor(next[0], 0xb3, &[72, 368, 1]);
    assert!(matches!(
        revert_of(chain.anchor_as(RELAY_B, &b_again).await),
        RegistryError::AlreadyAnchored(_)
    ));
    let a_again = chain.ticketed_anchor(next[1], 0xa3, &[72, 368, 1]);
    assert!(matches!(
        revert_of(chain.relay_anchors(&a_again).await),
        RegistryError::AlreadyAnchored(_)
    ));
}

#[tokio::test]
async fn attack4_a_wallet_cannot_use_a_relays_ticket_space_without_its_cosignature() {
    let chain = Chain::start().await.unwrap();
    let log_a = chain.log;
    let log_b = chain.add_relay(RELAY_B).await.unwrap();
    let ticket = TICKET_BASE + 1;
    let record = chain.ticketed_anchor(ticket, 1, &[72, 368, 1]);
    let deadline = chain.now().await.unwrap() + 600;

    // Signed by the wallet itself, by a stranger, by A for another submitter, or A's
    // signature over another ticket: none is A's co-signature of this record for this wallet.
    let mut other_ticket = record.clone();
    other_ticket.tid[7] ^= 1;
    let a_for_other_ticket = chain.cosign(&other_ticket, deadline);
    let refused = [
        chain.cosign_by(&record, deadline, fixture::WALLET, chain.wallet_address()),
        chain.cosign_by(&record, deadline, STRANGER, chain.wallet_address()),
        chain.cosign_by(&record, deadline, RELAY, chain.stranger_address()),
        a_for_other_ticket,
    ];
    for c in refused {
        assert!(matches!(
            revert_of(chain.wallet_anchors(&record, &c).await),
            RegistryError::BadCosignature(_)
        ));
    }
    assert!(!chain.ticket_used_in(log_a, ticket).await.unwrap());
    // With B's co-signature the record goes to B's log, not A's.
    let c = chain.cosign_by(&record, deadline, RELAY_B, chain.wallet_address());
    let event = anchored(&chain, &chain.wallet_anchors(&record, &c).await.unwrap());
    assert_eq!(event.log, log_b);
    assert!(chain.ticket_used_in(log_b, ticket).await.unwrap());
    assert!(!chain.ticket_used_in(log_a, ticket).await.unwrap());
    // Only A's co-signature writes A's space.
    let c = chain.cosign(&record, deadline);
    let event = anchored(&chain, &chain.wallet_anchors(&record, &c).await.unwrap());
    assert_eq!(event.log, log_a);
    assert!(chain.ticket_used_in(log_a, ticket).await.unwrap());
}
