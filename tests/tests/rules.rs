//! The on-chain rule check (the generic range validator and an external validator) against
//! a Rust reference, and the mapping from protocol templates to published rules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use alloy::primitives::{Address, FixedBytes};
use mediblock_e2e::fixture::{Chain, register};
use mediblock_e2e::registry::{self, AnchoredRecord, OrderValidator, RegistryError, Rule, Verdict};
use mediblock_protocol::template::Template;

/// The single RecordAnchored event of a receipt.
fn anchored(chain: &Chain, receipt: &alloy::rpc::types::TransactionReceipt) -> AnchoredRecord {
    assert!(receipt.status(), "transaction failed");
    let mut events = AnchoredRecord::from_receipt(receipt, chain.address());
    assert_eq!(events.len(), 1, "exactly one RecordAnchored event");
    events.remove(0)
}

/// The registry error a failed contract call reverted with.
fn call_revert_of<T: std::fmt::Debug>(result: Result<T, alloy::contract::Error>) -> RegistryError {
    let err = result.expect_err("the call should revert");
    registry::registry_error(&err).unwrap_or_else(|| panic!("not a registry revert: {err}"))
}

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
    let admin = chain.anvil.address(0);
    let validator = OrderValidator::deploy(chain.admin.provider().clone(), admin)
        .await
        .unwrap();
    // Blood pressure: systolic 70..=250, diastolic 40..=150, and systolic > diastolic.
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
    validator
        .setPairs(chain.address(), handle, vec![[0, 1]])
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert_eq!(
        validator
            .pairsOf(chain.address(), handle)
            .call()
            .await
            .unwrap(),
        vec![[0u8, 1]]
    );
    let info = chain.admin.templateInfo(handle).call().await.unwrap();
    assert_eq!(info.validator, *validator.address());

    for (seed, values, verdict) in [
        (1u64, vec![120i64, 80], Verdict::Valid),
        (2, vec![90, 95], Verdict::Rejected { index: 0 }),
        (3, vec![60, 95], Verdict::Rejected { index: 0 }),
        (4, vec![120, 160], Verdict::Rejected { index: 1 }),
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
    }
    // Only the validator's owner configures it.
    let as_stranger = OrderValidator::new(*validator.address(), chain.stranger.provider().clone());
    assert!(
        as_stranger
            .setPairs(chain.address(), handle, vec![])
            .send()
            .await
            .is_err()
    );
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
