//! The on-chain rule check (the generic range validator and an external validator) against
//! a Rust reference, the mapping from protocol templates to published rules, and the purity
//! scan that keeps an external validator's rules frozen: every refused opcode, PUSH data,
//! EIP-7702 delegations, and the code hash recorded at registration.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use alloy::eips::eip7702::Authorization;
use alloy::primitives::{Address, B256, Bytes, FixedBytes, U256};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;
use alloy::signers::SignerSync;
use mediblock_e2e::fixture::{
    Chain, STRANGER, anchored, call_revert_of, deploy_code, init_code, register,
};
use mediblock_e2e::registry::{self, OrderValidator, RegistryError, Rule, Verdict};
use mediblock_protocol::hash::keccak256;
use mediblock_protocol::template::Template;

/// The first rule a value breaks, computed in Rust from the same rules, as a reference for
/// the contract's packed encoding.
fn reference_verdict(rules: &[Rule], values: &[i64]) -> u8 {
    for (i, (rule, &v)) in rules.iter().zip(values).enumerate() {
        let ok = match rule.kind {
            registry::RULE_RANGE => rule.min <= v && v <= rule.max,
            registry::RULE_SET => (0..64).contains(&v) && (rule.allowed >> v) & 1 == 1,
            _ => true,
        };
        if !ok {
            return i as u8 + 1;
        }
    }
    0
}

/// Values that probe a rule from every side: both bounds and their neighbours, the int64
/// extremes, and for sets every index below 64 plus values just above (whose bit would
/// fall into the next attribute's rule word if the contract forgot the `< 64` check).
fn probes(rule: &Rule) -> Vec<i64> {
    let mut out = vec![i64::MIN, -1, 0, 1, i64::MAX];
    match rule.kind {
        registry::RULE_RANGE => {
            out.extend([
                rule.min,
                rule.max,
                rule.min.saturating_sub(1),
                rule.max.saturating_add(1),
            ]);
        }
        registry::RULE_SET => out.extend((0..64).chain([64, 65, 66, 67, 96, 127, 128, 255])),
        _ => {}
    }
    out
}

/// Registers `rules` as a template, then checks the contract's verdicts against
/// [`reference_verdict`] for every probe of every attribute (the others valid): all of them
/// through the `verdictFor` view, the boundary ones through real anchors too.
async fn check_rules_against_reference(chain: &Chain, rules: &[Rule], salt: u8) {
    let id = FixedBytes([salt; 32]);
    chain
        .admin
        .registerTemplate(id, 1, FixedBytes([salt; 32]), rules.to_vec(), Address::ZERO)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let handle = chain.admin.handleOf(id, 1).call().await.unwrap();
    assert_eq!(
        chain.admin.templateRules(handle).call().await.unwrap(),
        rules
    );

    let valid: Vec<i64> = rules
        .iter()
        .map(|r| match r.kind {
            registry::RULE_RANGE => r.min / 2 + r.max / 2,
            registry::RULE_SET => i64::from(r.allowed.trailing_zeros()),
            _ => -7,
        })
        .collect();
    assert_eq!(reference_verdict(rules, &valid), 0);
    let mut seed = u64::from(salt) << 32;
    let mut rejected = 0;
    for (i, rule) in rules.iter().enumerate() {
        for (k, v) in probes(rule).into_iter().enumerate() {
            let mut values = valid.clone();
            values[i] = v;
            let expected = reference_verdict(rules, &values);
            rejected += usize::from(expected != 0);
            let view = chain
                .admin
                .verdictFor(handle, values.clone())
                .call()
                .await
                .unwrap();
            assert_eq!(view, expected, "verdictFor, attribute {i} = {v}");
            // Anchor the boundary probes: a range's bounds and neighbours (probes 5..9),
            // a set's first indices and the two just past 63.
            if (5..9).contains(&k) || v == 64 || v == 65 {
                seed += 1;
                let mut anchor = chain.anchor(seed, &values);
                anchor.handle = handle;
                let event = anchored(chain, &chain.relay_anchors(&anchor).await.unwrap());
                assert_eq!(
                    event.verdict,
                    Verdict::from_byte(expected),
                    "anchor, attribute {i} = {v}"
                );
            }
        }
    }
    assert!(rejected > rules.len(), "the probes must reject something");
}

#[tokio::test]
async fn checks_rules_of_three_attributes_exactly_like_the_reference() {
    let chain = Chain::start().await.unwrap();
    // The unrolled fast path: a set first, so a value of 64 or 65 would read the next
    // rule word (-5 = 0x...fffb has bits 0 and 1 set) if the contract did not bound it.
    check_rules_against_reference(
        &chain,
        &[Rule::set(0b101), Rule::range(-5, 5), Rule::set(0b11)],
        0x31,
    )
    .await;
    check_rules_against_reference(
        &chain,
        &[
            Rule::range(i64::MIN, i64::MAX),
            Rule::any(),
            Rule::set(1 << 63),
        ],
        0x32,
    )
    .await;
    check_rules_against_reference(
        &chain,
        &[Rule::range(i32::MIN.into(), i32::MAX.into())],
        0x33,
    )
    .await;
    check_rules_against_reference(
        &chain,
        &[Rule::range(-(1 << 31) - 1, 0), Rule::set(u64::MAX)],
        0x34,
    )
    .await;
}

#[tokio::test]
async fn checks_sixteen_attributes_with_wide_ranges_and_sets() {
    let chain = Chain::start().await.unwrap();
    // Every kind of rule at every position: sets, narrow and wide ranges (below and above
    // int32), no rule; 16 attributes, so the rule words spill out of the hot word into
    // three more slots and the wide bounds into slots of their own. Each set is followed by
    // a narrow range whose word has its low bits set.
    let rules: Vec<Rule> = (0..16)
        .map(|i| match i % 5 {
            0 => Rule::set(0b1011 << (i % 7)),
            1 => Rule::range(-100 - i, 100 + i),
            2 => Rule::range(i64::MIN + i, -(1 << 40)),
            3 => Rule::any(),
            _ => Rule::range(1 << 33, i64::MAX - i),
        })
        .collect();
    check_rules_against_reference(&chain, &rules, 0x42).await;
}

#[tokio::test]
async fn an_external_validator_adds_rules_ranges_cannot_express() {
    let chain = Chain::start().await.unwrap();
    // Blood pressure: systolic 70..=250, diastolic 40..=150, and systolic > diastolic. The
    // pair is fixed when the validator is deployed.
    let validator = OrderValidator::deploy(chain.admin.provider().clone(), vec![[0u8, 1]])
        .await
        .unwrap();
    assert_eq!(validator.pairs().call().await.unwrap(), vec![[0u8, 1]]);
    let id = FixedBytes([0x51; 32]);
    let rules = vec![Rule::range(70, 250), Rule::range(40, 150)];
    chain
        .admin
        .registerTemplate(id, 1, FixedBytes([0x52; 32]), rules, *validator.address())
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let handle = chain.admin.handleOf(id, 1).call().await.unwrap();
    let info = chain.admin.templateInfo(handle).call().await.unwrap();
    assert_eq!(info.validator, *validator.address());

    for (seed, values, verdict) in [
        (1u64, vec![120i64, 80], Verdict::Valid),
        (2, vec![90, 95], Verdict::Rejected { index: 0 }),
        (3, vec![60, 95], Verdict::Rejected { index: 0 }),
        (4, vec![120, 160], Verdict::Rejected { index: 1 }),
        (5, vec![80, 80], Verdict::Rejected { index: 0 }),
    ] {
        assert_eq!(
            Verdict::from_byte(
                chain
                    .admin
                    .verdictFor(handle, values.clone())
                    .call()
                    .await
                    .unwrap()
            ),
            verdict
        );
        let mut anchor = chain.anchor(seed, &values);
        anchor.handle = handle;
        let event = anchored(&chain, &chain.relay_anchors(&anchor).await.unwrap());
        assert_eq!(event.verdict, verdict, "values {values:?}");
        assert_eq!(event.values_hash, anchor.values_hash());
    }
    // The validator itself gives the same verdicts to anyone, for any template argument.
    for template in [handle, 0, 999] {
        assert_eq!(
            validator
                .validate(template, vec![90, 95])
                .call()
                .await
                .unwrap(),
            1
        );
    }
}

#[tokio::test]
async fn order_validator_refuses_malformed_pairs_at_deployment() {
    let chain = Chain::start().await.unwrap();
    let provider = chain.admin.provider().clone();
    for pairs in [
        vec![[3u8, 3]],
        vec![[16, 0]],
        vec![[0, 16]],
        vec![[0, 1]; 16],
    ] {
        let err = OrderValidator::deploy(provider.clone(), pairs.clone())
            .await
            .expect_err("malformed pairs");
        assert!(
            matches!(
                err.as_decoded_interface_error::<OrderValidator::OrderValidatorErrors>(),
                Some(OrderValidator::OrderValidatorErrors::InvalidPairs(_))
            ),
            "{pairs:?}: {err}"
        );
    }
    // Fifteen pairs fit, and come back in order.
    let pairs: Vec<[u8; 2]> = (0..15).map(|p| [p + 1, p]).collect();
    let validator = OrderValidator::deploy(provider, pairs.clone())
        .await
        .unwrap();
    assert_eq!(validator.pairs().call().await.unwrap(), pairs);
    let increasing: Vec<i64> = (0..16).collect();
    assert_eq!(validator.validate(1, increasing).call().await.unwrap(), 0);
    let mut dip: Vec<i64> = (0..16).collect();
    dip[7] = 5;
    // Pair (7, 6) fails first: 5 <= 6.
    assert_eq!(validator.validate(1, dip).call().await.unwrap(), 8);
    // Too few values for a pair's index (pair (2, 1) of two values, after (1, 0) passed):
    // rejected without an index.
    assert_eq!(validator.validate(1, vec![0, 1]).call().await.unwrap(), 255);
}

#[tokio::test]
async fn maps_protocol_templates_to_rules() {
    let template: Template = serde_json::from_str(
        r#"{
          "id": "intake", "version": 3, "title": "Intake",
          "attributes": [
            {"name": "age", "label": "Age", "required": true, "on_chain": true,
             "kind": {"type": "integer", "scale": 0, "min": 0}},
            {"name": "blood", "label": "Blood group", "required": true, "on_chain": true,
             "kind": {"type": "enum", "values": ["a", "b", "ab", "o"]}},
            {"name": "weight", "label": "Weight", "required": true, "on_chain": true,
             "kind": {"type": "integer", "scale": 1}},
            {"name": "note", "label": "Note", "kind": {"type": "text", "max_len": 10}},
            {"name": "smoker", "label": "Smoker", "required": true, "on_chain": true,
             "kind": {"type": "boolean"}}
          ],
          "roles": ["doctor"]
        }"#,
    )
    .unwrap();
    let rules = registry::rules_for(&template);
    assert_eq!(
        rules,
        vec![
            Rule::range(0, i64::MAX),
            Rule::set(0b1111),
            Rule::any(),
            Rule::set(0b11)
        ]
    );

    // Published on chain, the rules come back unchanged and a record is checked with them.
    let chain = Chain::start().await.unwrap();
    let handle = register(&chain.admin, &template, Address::ZERO)
        .await
        .unwrap();
    assert_eq!(
        chain.admin.templateRules(handle).call().await.unwrap(),
        rules
    );
    assert_eq!(
        chain
            .admin
            .verdictFor(handle, vec![40, 3, -5, 1])
            .call()
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        chain
            .admin
            .verdictFor(handle, vec![40, 4, -5, 1])
            .call()
            .await
            .unwrap(),
        2
    );
    assert!(matches!(
        call_revert_of(chain.admin.verdictFor(handle, vec![40, 3, -5]).call().await),
        RegistryError::BadLength(_)
    ));
}

/// The opcodes registration refuses in a validator's runtime code (docs/CONTRACTS.md,
/// "Frozen validators"): writes, TLOAD, calls and creations, SELFDESTRUCT, and every read
/// of the environment that can differ between two calls.
const IMPURE: [(u8, &str); 29] = [
    (0x31, "BALANCE"),
    (0x32, "ORIGIN"),
    (0x33, "CALLER"),
    (0x3a, "GASPRICE"),
    (0x3b, "EXTCODESIZE"),
    (0x3c, "EXTCODECOPY"),
    (0x3f, "EXTCODEHASH"),
    (0x40, "BLOCKHASH"),
    (0x41, "COINBASE"),
    (0x42, "TIMESTAMP"),
    (0x43, "NUMBER"),
    (0x44, "PREVRANDAO"),
    (0x45, "GASLIMIT"),
    (0x46, "CHAINID"),
    (0x47, "SELFBALANCE"),
    (0x48, "BASEFEE"),
    (0x49, "BLOBHASH"),
    (0x4a, "BLOBBASEFEE"),
    (0x55, "SSTORE"),
    (0x5a, "GAS"),
    (0x5c, "TLOAD"),
    (0x5d, "TSTORE"),
    (0xf0, "CREATE"),
    (0xf1, "CALL"),
    (0xf2, "CALLCODE"),
    (0xf4, "DELEGATECALL"),
    (0xf5, "CREATE2"),
    (0xfa, "STATICCALL"),
    (0xff, "SELFDESTRUCT"),
];

/// Dev account that delegates its code with EIP-7702.
const DELEGATOR: usize = 7;

/// PUSH32 whose 32 data bytes are every refused opcode and 0xef (then zeros): data, which
/// the EVM never executes and the scan must skip.
fn push_of_every_impure_byte() -> Vec<u8> {
    let mut code = vec![0x7f];
    code.extend(IMPURE.iter().map(|(op, _)| *op));
    code.push(0xef);
    code.resize(33, 0);
    code
}

/// The admin publishes a template of three unconstrained attributes pointing at `validator`.
async fn register_with(
    chain: &Chain,
    validator: Address,
    salt: u8,
) -> Result<u16, alloy::contract::Error> {
    let id = FixedBytes([salt; 32]);
    chain
        .admin
        .registerTemplate(
            id,
            1,
            FixedBytes([salt; 32]),
            vec![Rule::any(); 3],
            validator,
        )
        .send()
        .await?
        .get_receipt()
        .await?;
    chain.admin.handleOf(id, 1).call().await
}

/// The scan's refusal of `validator`: (pc, opcode).
async fn refusal(chain: &Chain, validator: Address, salt: u8) -> (usize, u8) {
    match call_revert_of(register_with(chain, validator, salt).await) {
        RegistryError::ImpureValidator(e) => {
            assert_eq!(e.validator, validator);
            (e.pc.to::<usize>(), e.opcode)
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn registration_refuses_a_validator_with_any_impure_opcode() {
    let chain = Chain::start().await.unwrap();
    // A validator's author (no role in the registry) deploys, by CREATE, code that holds
    // one refused opcode after a PUSH32 carrying all of them as data.
    let author = registry::provider(chain.anvil.url(), chain.anvil.signer(STRANGER));
    for (i, (op, name)) in IMPURE.into_iter().enumerate() {
        let mut runtime = push_of_every_impure_byte();
        runtime.extend_from_slice(&[0x50, op, 0x00]); // POP, the opcode, STOP
        let validator = deploy_code(&author, init_code(&[], &runtime))
            .await
            .unwrap();
        let code = chain.admin.provider().get_code_at(validator).await.unwrap();
        assert_eq!(code.as_ref(), runtime.as_slice());
        // Refused at pc 34, past the PUSH32's data: the opcode itself, not a data byte.
        assert_eq!(
            refusal(&chain, validator, 0x80 + i as u8).await,
            (34, op),
            "{name}"
        );
    }
    assert_eq!(chain.admin.templateCount().call().await.unwrap(), 1);
}

#[tokio::test]
async fn push_data_and_reads_that_cannot_change_are_not_refused() {
    let chain = Chain::start().await.unwrap();
    // A validator whose constructor writes 3 into storage slot 0, and whose runtime code
    // has every refused byte and 0xef in PUSH data, reads that slot (SLOAD is allowed: no
    // SSTORE in the runtime code, so the slot never changes) and values that cannot change
    // between calls, and returns the slot: verdict 3, "attribute 2 rejected", forever.
    let mut runtime = push_of_every_impure_byte();
    runtime.extend_from_slice(&[
        0x50, // POP
        0x30, 0x50, // ADDRESS POP
        0x34, 0x50, // CALLVALUE POP
        0x36, 0x50, // CALLDATASIZE POP
        0x38, 0x50, // CODESIZE POP
        0x3d, 0x50, // RETURNDATASIZE POP
        0x58, 0x50, // PC POP
        0x59, 0x50, // MSIZE POP
        0x5f, 0x35, 0x50, // PUSH0 CALLDATALOAD POP
        0x5f, 0x54, // PUSH0 SLOAD
        0x5f, 0x52, // PUSH0 MSTORE
        0x60, 0x20, 0x5f, 0xf3, // PUSH1 32 PUSH0 RETURN
        0xfe, // INVALID, never reached
        0x7f, 0x55, 0xf1, // a PUSH32 cut short by the end of the code
    ]);
    let constructor = [0x60, 0x03, 0x5f, 0x55]; // PUSH1 3 PUSH0 SSTORE
    let author = registry::provider(chain.anvil.url(), chain.anvil.signer(STRANGER));
    let validator = deploy_code(&author, init_code(&constructor, &runtime))
        .await
        .unwrap();
    let provider = chain.admin.provider();
    assert_eq!(
        provider.get_code_at(validator).await.unwrap().as_ref(),
        runtime.as_slice()
    );
    assert_eq!(
        provider
            .get_storage_at(validator, U256::ZERO)
            .await
            .unwrap(),
        U256::from(3)
    );
    let handle = register_with(&chain, validator, 0x71).await.unwrap();
    assert_eq!(handle, 2);
    let registered = chain.admin.templateValidator(handle).call().await.unwrap();
    assert_eq!(
        (registered.validator, registered.codeHash),
        (validator, B256::from(keccak256(&runtime)))
    );
    // Its verdict, by view and by anchor.
    assert_eq!(
        chain
            .admin
            .verdictFor(handle, vec![1, 2, 3])
            .call()
            .await
            .unwrap(),
        3
    );
    let mut anchor = chain.anchor(1, &[1, 2, 3]);
    anchor.handle = handle;
    let event = anchored(&chain, &chain.relay_anchors(&anchor).await.unwrap());
    assert_eq!(event.verdict, Verdict::Rejected { index: 2 });
}

#[tokio::test]
async fn an_eip7702_delegation_is_refused() {
    let chain = Chain::start().await.unwrap();
    let provider = chain.admin.provider().clone();
    // A pure validator the delegations point at: "attribute 0 above attribute 1".
    let order = OrderValidator::deploy(provider.clone(), vec![[0u8, 1]])
        .await
        .unwrap();
    let mut designator = vec![0xef, 0x01, 0x00];
    designator.extend_from_slice(order.address().as_slice());

    // Code set directly (the node's anvil_setCode): the designator, and any other code
    // starting with 0xef.
    for (i, code) in [designator.clone(), vec![0xef, 0x00, 0x01, 0x00]]
        .into_iter()
        .enumerate()
    {
        let account = Address::repeat_byte(0x70 + i as u8);
        provider
            .raw_request::<_, ()>("anvil_setCode".into(), (account, Bytes::from(code.clone())))
            .await
            .unwrap();
        assert_eq!(
            provider.get_code_at(account).await.unwrap().as_ref(),
            code.as_slice()
        );
        assert_eq!(refusal(&chain, account, 0x90 + i as u8).await, (0, 0xef));
    }

    // A real EIP-7702 delegation: an account signs an authorization to run the pure
    // validator's code, and anyone sends it (here the admin's account pays).
    let owner = chain.anvil.signer(DELEGATOR);
    let delegate = |to: Address, nonce: u64| {
        let authorization = Authorization {
            chain_id: U256::from(chain.anvil.chain_id()),
            address: to,
            nonce,
        };
        let signature = owner
            .sign_hash_sync(&authorization.signature_hash())
            .unwrap();
        let mut tx = TransactionRequest::default().to(chain.anvil.address(0));
        tx.authorization_list = Some(vec![authorization.into_signed(signature)]);
        tx
    };
    let receipt = provider
        .send_transaction(delegate(*order.address(), 0))
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status());
    let account = owner.address();
    assert_eq!(
        provider.get_code_at(account).await.unwrap().as_ref(),
        designator.as_slice()
    );
    // It answers exactly like the pure validator, yet it is refused...
    let as_validator = OrderValidator::new(account, provider.clone());
    assert_eq!(
        as_validator.validate(1, vec![90, 95]).call().await.unwrap(),
        1
    );
    assert_eq!(refusal(&chain, account, 0x92).await, (0, 0xef));
    // ...because its owner re-points it whenever it likes, and its verdicts change.
    let lax = OrderValidator::deploy(provider.clone(), vec![])
        .await
        .unwrap();
    provider
        .send_transaction(delegate(*lax.address(), 1))
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert_eq!(
        as_validator.validate(1, vec![90, 95]).call().await.unwrap(),
        0
    );
    assert_eq!(chain.admin.templateCount().call().await.unwrap(), 1);
}

#[tokio::test]
async fn templates_record_their_validators_code_hash() {
    let chain = Chain::start().await.unwrap();
    let provider = chain.admin.provider().clone();
    let order = OrderValidator::deploy(provider.clone(), vec![[0u8, 1], [0, 2]])
        .await
        .unwrap();
    let handle = register_with(&chain, *order.address(), 0x73).await.unwrap();
    let registered = chain.admin.templateValidator(handle).call().await.unwrap();
    // EXTCODEHASH is keccak256 of the deployed code (immutables filled in), which is
    // also the code hash in the node's account state.
    let code = provider.get_code_at(*order.address()).await.unwrap();
    let account = provider.get_proof(*order.address(), vec![]).await.unwrap();
    assert_eq!(registered.validator, *order.address());
    assert_eq!(registered.codeHash, B256::from(keccak256(&code)));
    assert_eq!(registered.codeHash, account.code_hash);
    // The fixture's template has no validator: both zero. An unknown handle is refused.
    let none = chain
        .admin
        .templateValidator(chain.handle)
        .call()
        .await
        .unwrap();
    assert_eq!((none.validator, none.codeHash), (Address::ZERO, B256::ZERO));
    assert!(matches!(
        call_revert_of(chain.admin.templateValidator(handle + 1).call().await),
        RegistryError::UnknownTemplate(_)
    ));
}
