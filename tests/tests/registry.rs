//! The registry contract against a real anvil chain: deployment, submitters, templates,
//! per-record anchoring with on-chain rule checks, verdicts, events, and admin guards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use alloy::primitives::{Address, B256, FixedBytes, U256};
use alloy::providers::Provider;
use alloy::sol_types::SolEvent;
use mediblock_e2e::anvil::AnvilOptions;
use mediblock_e2e::fixture::{
    Chain, RELAY, RELAY_B, RELAY_NEW_KEY, TICKET_BASE, anchored, call_revert_of,
    packed_values_hash, revert_of, send_mined,
};
use mediblock_e2e::registry::{
    self, Anchor, AnchorPath, AnchoredRecord, MediBlockRegistry, RegistryError, Rule, Verdict,
};
use mediblock_protocol::ids::TxId;
use mediblock_protocol::template::Template;

/// The ticket of an anchor's tid.
fn ticket_of(anchor: &Anchor) -> u64 {
    TxId::from_bytes(anchor.tid).ticket()
}

#[tokio::test]
async fn deploys_with_admin_relay_wallet_and_template() {
    let chain = Chain::start().await.unwrap();
    let r = &chain.admin;
    assert_eq!(r.owner().call().await.unwrap(), chain.anvil.address(0));
    assert_eq!(r.pendingOwner().call().await.unwrap(), Address::ZERO);
    assert_eq!(
        r.roleOf(chain.relay_address()).call().await.unwrap(),
        registry::ROLE_RELAY
    );
    assert_eq!(
        r.roleOf(chain.wallet_address()).call().await.unwrap(),
        registry::ROLE_WALLET
    );
    assert_eq!(r.roleOf(chain.stranger_address()).call().await.unwrap(), 0);
    assert_eq!(
        r.relays().call().await.unwrap(),
        vec![chain.relay_address()]
    );
    // Version 2, and the relay writes the first log.
    assert_eq!(
        r.registryVersion().call().await.unwrap(),
        registry::REGISTRY_VERSION
    );
    assert_eq!(r.logCount().call().await.unwrap(), 1);
    assert_eq!(chain.log, 1);
    assert_eq!(r.logOf(chain.relay_address()).call().await.unwrap(), 1);
    assert_eq!(r.logWriter(1).call().await.unwrap(), chain.relay_address());
    assert_eq!(r.logOf(chain.wallet_address()).call().await.unwrap(), 0);
    assert_eq!(r.logWriter(2).call().await.unwrap(), Address::ZERO);
    assert_eq!(r.templateCount().call().await.unwrap(), 1);
    assert_eq!(chain.handle, 1);
    assert_eq!(r.activeTemplates().call().await.unwrap(), vec![1u16]);

    let info = r.templateInfo(chain.handle).call().await.unwrap();
    let reference = chain.template.reference();
    assert_eq!(info.id.0, reference.id.chain_id());
    assert_eq!(info.version, 1);
    assert_eq!(info.templateHash.0, chain.template.hash());
    assert_eq!(info.validator, Address::ZERO);
    assert!(info.active);
    assert_eq!(info.attributes, 3);
    // The rules come back exactly as published.
    assert_eq!(
        r.templateRules(chain.handle).call().await.unwrap(),
        registry::rules_for(&chain.template)
    );
    assert!(
        r.canAnchor(chain.relay_address(), chain.handle)
            .call()
            .await
            .unwrap()
    );
    assert!(
        !r.canAnchor(chain.wallet_address(), chain.handle)
            .call()
            .await
            .unwrap()
    );

    // The deployed runtime code is the committed artifact's (immutables aside, which the
    // artifact leaves zeroed): compare lengths, which immutables do not change.
    let code = r.provider().get_code_at(chain.address()).await.unwrap();
    let artifact = registry::MediBlockRegistry::DEPLOYED_BYTECODE.clone();
    assert_eq!(code.len(), artifact.len());
}

#[tokio::test]
async fn anchors_a_valid_record_and_logs_it() {
    let chain = Chain::start().await.unwrap();
    let anchor = chain.anchor(1, &[72, 368, 1]);
    let receipt = chain.relay_anchors(&anchor).await.unwrap();
    let event = anchored(&chain, &receipt);
    assert_eq!(
        event,
        AnchoredRecord {
            tid: anchor.tid,
            commitment: anchor.commitment,
            values_hash: packed_values_hash(&[72, 368, 1]),
            log: chain.log,
            submitter: chain.relay_address(),
            handle: chain.handle,
            verdict: Verdict::Valid,
            path: AnchorPath::Relay,
        }
    );
    // The tid is the event's indexed topic, so a relay can find it with a log filter.
    let log = &receipt.inner.logs()[0];
    assert_eq!(
        log.topics()[0],
        MediBlockRegistry::RecordAnchored::SIGNATURE_HASH
    );
    assert_eq!(&log.topics()[1].0[..16], &anchor.tid);
    assert_eq!(&log.topics()[1].0[16..], &[0u8; 16]);

    // The registry keeps only the ticket, used; the record is the event, which a log
    // filter on the tid topic finds.
    let ticket = ticket_of(&anchor);
    assert_eq!(ticket, TICKET_BASE + 1);
    assert!(chain.ticket_used(ticket).await.unwrap());
    assert_eq!(chain.records_of(&anchor.tid).await.unwrap(), vec![event]);

    // Its neighbours, in the same bitmap word, were never used.
    for unused in [TICKET_BASE, TICKET_BASE + 2, TICKET_BASE + 255] {
        assert!(!chain.ticket_used(unused).await.unwrap(), "ticket {unused}");
    }
    assert!(chain.records_of(&[9u8; 16]).await.unwrap().is_empty());
}

#[tokio::test]
async fn anchors_out_of_range_records_as_rejected_with_the_first_failing_attribute() {
    let chain = Chain::start().await.unwrap();
    // (values, expected verdict): bounds are inclusive; the first failing attribute wins.
    let cases: &[(&[i64], Verdict)] = &[
        (&[20, 300, 0], Verdict::Valid),
        (&[250, 450, 1], Verdict::Valid),
        (&[19, 368, 1], Verdict::Rejected { index: 0 }),
        (&[251, 368, 1], Verdict::Rejected { index: 0 }),
        (&[-72, 368, 1], Verdict::Rejected { index: 0 }),
        (&[72, 299, 1], Verdict::Rejected { index: 1 }),
        (&[72, 451, 1], Verdict::Rejected { index: 1 }),
        (&[72, 368, 2], Verdict::Rejected { index: 2 }),
        (&[72, 368, -1], Verdict::Rejected { index: 2 }),
        (&[72, 368, 64], Verdict::Rejected { index: 2 }),
        (
            &[i64::MIN, i64::MAX, i64::MAX],
            Verdict::Rejected { index: 0 },
        ),
        (&[72, i64::MIN, 5], Verdict::Rejected { index: 1 }),
    ];
    for (seed, (values, verdict)) in cases.iter().enumerate() {
        let anchor = chain.anchor(seed as u64, values);
        // The view gives the same verdict as the anchor records.
        let view = chain
            .admin
            .verdictFor(chain.handle, values.to_vec())
            .call()
            .await
            .unwrap();
        assert_eq!(Verdict::from_byte(view), *verdict, "verdictFor {values:?}");
        let receipt = chain.relay_anchors(&anchor).await.unwrap();
        let event = anchored(&chain, &receipt);
        assert_eq!(event.verdict, *verdict, "values {values:?}");
        assert_eq!(event.tid, anchor.tid);
        // Valid or rejected, the event names the values that verdict is about.
        assert_eq!(
            event.values_hash,
            packed_values_hash(values),
            "values {values:?}"
        );
        assert_eq!(event.values_hash, anchor.values_hash());
        assert_eq!(event.log, chain.log);
        // A rejected record uses its ticket too: it is anchored, not reverted.
        assert!(chain.ticket_used(ticket_of(&anchor)).await.unwrap());
        assert_eq!(chain.records_of(&anchor.tid).await.unwrap(), vec![event]);
    }
}

#[tokio::test]
async fn refuses_unknown_and_inactive_templates() {
    let chain = Chain::start().await.unwrap();
    let mut anchor = chain.anchor(1, &[72, 368, 1]);
    for handle in [0u16, 2, 65535] {
        anchor.handle = handle;
        match revert_of(chain.relay_anchors(&anchor).await) {
            RegistryError::UnknownTemplate(e) => {
                assert_eq!(e.handle, alloy::primitives::U256::from(handle))
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    anchor.handle = chain.handle;

    let receipt = chain
        .admin
        .setTemplateActive(chain.handle, false)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let status = receipt
        .decoded_log::<MediBlockRegistry::TemplateStatusChanged>()
        .unwrap();
    assert_eq!((status.handle, status.active), (chain.handle, false));
    assert!(
        !chain
            .admin
            .canAnchor(chain.relay_address(), chain.handle)
            .call()
            .await
            .unwrap()
    );
    assert!(
        chain
            .admin
            .activeTemplates()
            .call()
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        revert_of(chain.relay_anchors(&anchor).await),
        RegistryError::TemplateInactive(_)
    ));
    // Re-checking past verdicts still works on an inactive template.
    assert_eq!(
        chain
            .admin
            .verdictFor(chain.handle, vec![72, 368, 1])
            .call()
            .await
            .unwrap(),
        0
    );
    assert!(matches!(
        call_revert_of(
            chain
                .admin
                .setTemplateActive(chain.handle, false)
                .send()
                .await
        ),
        RegistryError::TemplateStatusUnchanged(_)
    ));

    chain
        .admin
        .setTemplateActive(chain.handle, true)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let event = anchored(&chain, &chain.relay_anchors(&anchor).await.unwrap());
    assert_eq!(event.verdict, Verdict::Valid);
}

#[tokio::test]
async fn refuses_senders_that_are_not_relays() {
    let chain = Chain::start().await.unwrap();
    let anchor = chain.anchor(1, &[72, 368, 1]);
    // A stranger and an enrolled wallet may not use the relay's operation.
    for (provider, who) in [
        (chain.stranger.provider(), chain.stranger_address()),
        (chain.wallet.provider(), chain.wallet_address()),
    ] {
        let result = registry::send_raw(provider, chain.address(), anchor.calldata()).await;
        match revert_of(result) {
            RegistryError::Unauthorized(e) => assert_eq!(e.account, who),
            other => panic!("unexpected {other:?}"),
        }
        let result = registry::send_raw(
            provider,
            chain.address(),
            registry::checkpoint_calldata(1, &[1; 32]),
        )
        .await;
        assert!(matches!(revert_of(result), RegistryError::Unauthorized(_)));
    }

    // A removed relay loses both operations at once.
    let receipt = chain
        .admin
        .removeRelay(chain.relay_address())
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let removed = receipt
        .decoded_log::<MediBlockRegistry::SubmitterRemoved>()
        .unwrap();
    assert_eq!(
        (removed.account, removed.role),
        (chain.relay_address(), registry::ROLE_RELAY)
    );
    assert!(matches!(
        revert_of(chain.relay_anchors(&anchor).await),
        RegistryError::Unauthorized(_)
    ));
    assert!(matches!(
        revert_of(chain.relay_checkpoints(1, &[1; 32]).await),
        RegistryError::Unauthorized(_)
    ));
    assert!(chain.admin.relays().call().await.unwrap().is_empty());
    // Its log is frozen: nobody writes it any more.
    let frozen = receipt
        .decoded_log::<MediBlockRegistry::LogWriterChanged>()
        .unwrap();
    assert_eq!((frozen.log, frozen.writer), (chain.log, Address::ZERO));
    assert_eq!(
        chain
            .admin
            .logOf(chain.relay_address())
            .call()
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        chain.admin.logWriter(chain.log).call().await.unwrap(),
        Address::ZERO
    );

    // Added back, it may anchor again (its grants are rebuilt for every active template),
    // into a new log of its own.
    let log = chain.add_relay(RELAY).await.unwrap();
    assert_eq!(log, chain.log + 1);
    let event = anchored(&chain, &chain.relay_anchors(&anchor).await.unwrap());
    assert_eq!((event.verdict, event.log), (Verdict::Valid, log));
    let ticket = ticket_of(&anchor);
    assert!(chain.ticket_used_in(log, ticket).await.unwrap());
    assert!(
        !chain.ticket_used(ticket).await.unwrap(),
        "the frozen log is untouched"
    );
}

#[tokio::test]
async fn refuses_a_second_anchor_of_the_same_tid() {
    let chain = Chain::start().await.unwrap();
    let anchor = chain.anchor(1, &[72, 368, 1]);
    chain.relay_anchors(&anchor).await.unwrap();
    match revert_of(chain.relay_anchors(&anchor).await) {
        RegistryError::AlreadyAnchored(e) => assert_eq!(e.tid.0, anchor.tid),
        other => panic!("unexpected {other:?}"),
    }
    // Same tid, other content: still refused, whatever the verdict would be.
    let mut other = chain.anchor(2, &[300, 1, 7]);
    other.tid = anchor.tid;
    assert!(matches!(
        revert_of(chain.relay_anchors(&other).await),
        RegistryError::AlreadyAnchored(_)
    ));
    // And through the wallet path with the same relay's co-signature: the record goes to
    // that relay's log, where the tid's ticket is used.
    let now = chain.now().await.unwrap();
    let cosignature = chain.cosign(&other, now + 600);
    assert!(matches!(
        revert_of(chain.wallet_anchors(&other, &cosignature).await),
        RegistryError::AlreadyAnchored(_)
    ));
    // The record is still the first one, alone.
    let records = chain.records_of(&anchor.tid).await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].commitment, anchor.commitment);
    assert_eq!(records[0].path, AnchorPath::Relay);
}

/// A second record with the same ticket and another random half, sent after `first` was
/// anchored, through the relay and through the wallet: both revert `AlreadyAnchored` with
/// the second tid, and the ticket keeps exactly the first record.
async fn assert_ticket_taken(chain: &Chain, first: &Anchor, first_path: AnchorPath) {
    let ticket = ticket_of(first);
    let twin = chain.ticketed_anchor(ticket, 0x7717, &[80, 370, 0]);
    assert_eq!(ticket_of(&twin), ticket);
    assert_ne!(twin.tid, first.tid, "a different random half");
    match revert_of(chain.relay_anchors(&twin).await) {
        RegistryError::AlreadyAnchored(e) => assert_eq!(e.tid.0, twin.tid),
        other => panic!("unexpected {other:?}"),
    }
    let now = chain.now().await.unwrap();
    let cosignature = chain.cosign(&twin, now + 600);
    match revert_of(chain.wallet_anchors(&twin, &cosignature).await) {
        RegistryError::AlreadyAnchored(e) => assert_eq!(e.tid.0, twin.tid),
        other => panic!("unexpected {other:?}"),
    }
    assert!(chain.ticket_used(ticket).await.unwrap());
    assert!(chain.records_of(&twin.tid).await.unwrap().is_empty());
    let records = chain.records_of(&first.tid).await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].commitment, first.commitment);
    assert_eq!(records[0].path, first_path);
}

#[tokio::test]
async fn a_ticket_is_used_once_whatever_the_random_half_and_the_path() {
    let chain = Chain::start().await.unwrap();
    // Relay first, then the twin by either path.
    let by_relay = chain.anchor(3, &[72, 368, 1]);
    assert!(!chain.ticket_used(ticket_of(&by_relay)).await.unwrap());
    anchored(&chain, &chain.relay_anchors(&by_relay).await.unwrap());
    assert_ticket_taken(&chain, &by_relay, AnchorPath::Relay).await;

    // Wallet first (the next ticket, same bitmap word), then the twin by either path.
    let by_wallet = chain.anchor(4, &[72, 368, 0]);
    assert!(!chain.ticket_used(ticket_of(&by_wallet)).await.unwrap());
    let now = chain.now().await.unwrap();
    let cosignature = chain.cosign(&by_wallet, now + 600);
    let event = anchored(
        &chain,
        &chain
            .wallet_anchors(&by_wallet, &cosignature)
            .await
            .unwrap(),
    );
    assert_eq!(event.path, AnchorPath::Wallet);
    assert_ticket_taken(&chain, &by_wallet, AnchorPath::Wallet).await;

    // Neither touched the tickets around them.
    for unused in [TICKET_BASE + 2, TICKET_BASE + 5] {
        assert!(!chain.ticket_used(unused).await.unwrap(), "ticket {unused}");
    }
}

#[tokio::test]
async fn tickets_at_word_boundaries_and_the_extremes() {
    let chain = Chain::start().await.unwrap();
    // 255 is the last bit of word 0 and 256 the first of word 1; 0 and u64::MAX are the
    // first and last tickets of all (u64::MAX is bit 255 of word 2^56 - 1).
    let word = TICKET_BASE;
    let tickets = [0, 255, 256, word + 255, word + 256, u64::MAX];
    let deadline = chain.now().await.unwrap() + 600;
    for (i, ticket) in tickets.into_iter().enumerate() {
        // Free before, used after (by the relay and the wallet in turn), then refused.
        let anchor = chain.ticketed_anchor(ticket, 100 + i as u64, &[72, 368, 1]);
        assert_eq!(ticket_of(&anchor), ticket);
        assert!(!chain.ticket_used(ticket).await.unwrap(), "ticket {ticket}");
        let receipt = if i % 2 == 0 {
            chain.relay_anchors(&anchor).await
        } else {
            let cosignature = chain.cosign(&anchor, deadline);
            chain.wallet_anchors(&anchor, &cosignature).await
        };
        let event = anchored(&chain, &receipt.unwrap());
        assert_eq!(event.tid, anchor.tid);
        assert_eq!(chain.records_of(&anchor.tid).await.unwrap(), vec![event]);
        assert!(chain.ticket_used(ticket).await.unwrap(), "ticket {ticket}");
        match revert_of(chain.relay_anchors(&anchor).await) {
            RegistryError::AlreadyAnchored(e) => assert_eq!(e.tid.0, anchor.tid),
            other => panic!("unexpected {other:?}"),
        }
    }
    // Exactly those bits are set: every neighbour of each stays unused.
    for ticket in tickets {
        for neighbour in [ticket.wrapping_sub(1), ticket.wrapping_add(1)] {
            let used = chain.ticket_used(neighbour).await.unwrap();
            assert_eq!(used, tickets.contains(&neighbour), "ticket {neighbour}");
        }
    }
    for unused in [
        1,
        254,
        257,
        511,
        512,
        word,
        u64::MAX - 1,
        u64::MAX - 255,
        1 << 63,
    ] {
        assert!(!chain.ticket_used(unused).await.unwrap(), "ticket {unused}");
    }
    // `ticketWord` shows the same bits, 256 tickets at a time; words past 2^56 - 1 hold
    // no ticket.
    let bits = |i: &[u32]| {
        i.iter()
            .fold(U256::ZERO, |acc, &b| acc | (U256::from(1) << b))
    };
    for (w, expected) in [
        (0u64, bits(&[0, 255])),
        (1, bits(&[0])),
        (word >> 8, bits(&[255])),
        ((word >> 8) + 1, bits(&[0])),
        (u64::MAX >> 8, bits(&[255])),
        (2, U256::ZERO),
        (1 << 56, U256::ZERO),
        (u64::MAX, U256::ZERO),
    ] {
        let got = chain.admin.ticketWord(chain.log, w).call().await.unwrap();
        assert_eq!(got, expected, "word {w}");
    }
}

#[tokio::test]
async fn a_reverted_anchor_leaves_its_ticket_unused() {
    let chain = Chain::start().await.unwrap();
    let anchor = chain.anchor(7, &[72, 368, 1]);
    let ticket = ticket_of(&anchor);

    // Mined and reverted on chain (a fixed gas limit skips the estimation that would refuse
    // them before they are sent): an expired co-signature, a stranger's anchor, a bad length.
    let now = chain.now().await.unwrap();
    let expired = chain.cosign(&anchor, now - 1);
    let receipts = [
        send_mined(
            chain.wallet.provider(),
            chain.address(),
            anchor.cosigned_calldata(&expired),
        )
        .await,
        send_mined(
            chain.stranger.provider(),
            chain.address(),
            anchor.calldata(),
        )
        .await,
        send_mined(
            chain.relay.provider(),
            chain.address(),
            [&anchor.calldata()[..], &[0u8; 8]].concat().into(),
        )
        .await,
    ];
    for receipt in &receipts {
        assert!(!receipt.status(), "the transaction reverted");
        assert!(receipt.inner.logs().is_empty());
    }
    assert!(!chain.ticket_used(ticket).await.unwrap());
    assert!(chain.records_of(&anchor.tid).await.unwrap().is_empty());

    // The ticket is still good.
    anchored(&chain, &chain.relay_anchors(&anchor).await.unwrap());
    assert!(chain.ticket_used(ticket).await.unwrap());

    // The AlreadyAnchored revert, mined, changes nothing either.
    let twin = chain.ticketed_anchor(ticket, 0x7718, &[72, 368, 1]);
    let receipt = send_mined(chain.relay.provider(), chain.address(), twin.calldata()).await;
    assert!(!receipt.status());
    assert_eq!(chain.records_of(&anchor.tid).await.unwrap().len(), 1);
    assert!(chain.records_of(&twin.tid).await.unwrap().is_empty());
    assert!(!chain.ticket_used(ticket + 1).await.unwrap());
}

#[tokio::test]
async fn refuses_malformed_calldata() {
    let chain = Chain::start().await.unwrap();
    let anchor = chain.anchor(1, &[72, 368, 1]);
    let good = anchor.calldata();
    for bad in [
        good[..good.len() - 1].to_vec(),
        [&good[..], &[0u8; 8]].concat(),
        good[..51].to_vec(),
    ] {
        let result =
            registry::send_raw(chain.relay.provider(), chain.address(), bad.clone().into()).await;
        match revert_of(result) {
            RegistryError::BadLength(e) => {
                assert_eq!(e.got, alloy::primitives::U256::from(bad.len()));
                assert_eq!(e.expected, alloy::primitives::U256::from(51 + 24));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    // A checkpoint of the wrong length, and an unknown first byte (which reaches the admin
    // module, where no function matches).
    let short = registry::checkpoint_calldata(5, &[1; 32]).slice(..40);
    assert!(matches!(
        revert_of(registry::send_raw(chain.relay.provider(), chain.address(), short).await),
        RegistryError::BadLength(_)
    ));
    let unknown = registry::send_raw(
        chain.relay.provider(),
        chain.address(),
        vec![0x04, 1, 2, 3, 4].into(),
    )
    .await;
    assert!(unknown.is_err());
    // Ether is refused.
    let tx = alloy::rpc::types::TransactionRequest::default()
        .to(chain.address())
        .value(alloy::primitives::U256::from(1))
        .input(good.into());
    assert!(chain.relay.provider().send_transaction(tx).await.is_err());
}

#[tokio::test]
async fn guards_every_admin_function() {
    let chain = Chain::start().await.unwrap();
    let s = &chain.stranger;
    let who = chain.stranger_address();
    let template: Template = serde_json::from_str(
        &mediblock_e2e::fixture::VITAL_SIGNS.replace("\"version\": 1", "\"version\": 2"),
    )
    .unwrap();
    let id = FixedBytes(template.reference().id.chain_id());
    let rules = registry::rules_for(&template);
    let not_owner =
        |e: RegistryError| matches!(e, RegistryError::NotOwner(ref n) if n.caller == who);
    assert!(not_owner(call_revert_of(s.addRelay(who).send().await)));
    assert!(not_owner(call_revert_of(
        s.removeRelay(chain.relay_address()).send().await
    )));
    assert!(not_owner(call_revert_of(s.enrollWallet(who).send().await)));
    assert!(not_owner(call_revert_of(
        s.removeWallet(chain.wallet_address()).send().await
    )));
    assert!(not_owner(call_revert_of(
        s.registerTemplate(
            id,
            2,
            FixedBytes(template.hash()),
            rules.clone(),
            Address::ZERO
        )
        .send()
        .await
    )));
    assert!(not_owner(call_revert_of(
        s.setTemplateActive(chain.handle, false).send().await
    )));
    assert!(not_owner(call_revert_of(
        s.transferOwnership(who).send().await
    )));
    assert!(matches!(
        call_revert_of(s.acceptOwnership().send().await),
        RegistryError::NotPendingOwner(_)
    ));
    assert!(not_owner(call_revert_of(
        s.replaceRelay(chain.relay_address(), who).send().await
    )));
    // Relays and wallets are not admins either.
    assert!(matches!(
        call_revert_of(chain.relay.addRelay(who).send().await),
        RegistryError::NotOwner(_)
    ));

    // Input checks of the admin functions.
    let a = &chain.admin;
    assert!(matches!(
        call_revert_of(a.addRelay(Address::ZERO).send().await),
        RegistryError::ZeroAddress(_)
    ));
    assert!(matches!(
        call_revert_of(a.addRelay(chain.wallet_address()).send().await),
        RegistryError::AlreadySubmitter(_)
    ));
    assert!(matches!(
        call_revert_of(a.removeWallet(chain.relay_address()).send().await),
        RegistryError::Unauthorized(_)
    ));
    // replaceRelay: the old key must be a relay, the new one a fresh account.
    let relay = chain.relay_address();
    match call_revert_of(
        a.replaceRelay(who, chain.anvil.address(RELAY_NEW_KEY))
            .send()
            .await,
    ) {
        RegistryError::Unauthorized(e) => assert_eq!(e.account, who),
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(
        call_revert_of(a.replaceRelay(relay, Address::ZERO).send().await),
        RegistryError::ZeroAddress(_)
    ));
    for taken in [relay, chain.wallet_address()] {
        match call_revert_of(a.replaceRelay(relay, taken).send().await) {
            RegistryError::AlreadySubmitter(e) => assert_eq!(e.account, taken),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(a.logOf(relay).call().await.unwrap(), chain.log);
    let reference = chain.template.reference();
    let same = a.registerTemplate(
        FixedBytes(reference.id.chain_id()),
        1,
        FixedBytes(chain.template.hash()),
        registry::rules_for(&chain.template),
        Address::ZERO,
    );
    assert!(matches!(
        call_revert_of(same.send().await),
        RegistryError::TemplateExists(_)
    ));
    let no_hash = a.registerTemplate(id, 2, FixedBytes::ZERO, rules.clone(), Address::ZERO);
    assert!(matches!(
        call_revert_of(no_hash.send().await),
        RegistryError::InvalidTemplate(_)
    ));
    let not_a_contract = a.registerTemplate(id, 2, FixedBytes(template.hash()), rules.clone(), who);
    assert!(matches!(
        call_revert_of(not_a_contract.send().await),
        RegistryError::InvalidTemplate(_)
    ));
    let inverted = a.registerTemplate(
        id,
        2,
        FixedBytes(template.hash()),
        vec![Rule::range(5, 4)],
        Address::ZERO,
    );
    assert!(matches!(
        call_revert_of(inverted.send().await),
        RegistryError::InvalidRule(_)
    ));
    let empty_set = a.registerTemplate(
        id,
        2,
        FixedBytes(template.hash()),
        vec![Rule::set(0)],
        Address::ZERO,
    );
    assert!(matches!(
        call_revert_of(empty_set.send().await),
        RegistryError::InvalidRule(_)
    ));
    let too_many = a.registerTemplate(
        id,
        2,
        FixedBytes(template.hash()),
        vec![Rule::any(); 17],
        Address::ZERO,
    );
    assert!(matches!(
        call_revert_of(too_many.send().await),
        RegistryError::TooManyAttributes(_)
    ));
    assert!(matches!(
        call_revert_of(a.setTemplateActive(7, true).send().await),
        RegistryError::UnknownTemplate(_)
    ));
}

#[tokio::test]
async fn transfers_ownership_in_two_steps() {
    let chain = Chain::start().await.unwrap();
    let admin = chain.anvil.address(0);
    let next = chain.stranger_address();
    let receipt = chain
        .admin
        .transferOwnership(next)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let started = receipt
        .decoded_log::<MediBlockRegistry::OwnershipTransferStarted>()
        .unwrap();
    assert_eq!((started.previousOwner, started.newOwner), (admin, next));
    // Nothing changes until the new owner accepts; the old owner is still in charge.
    assert_eq!(chain.admin.owner().call().await.unwrap(), admin);
    assert_eq!(chain.admin.pendingOwner().call().await.unwrap(), next);
    assert!(matches!(
        call_revert_of(chain.stranger.enrollWallet(next).send().await),
        RegistryError::NotOwner(_)
    ));
    assert!(matches!(
        call_revert_of(chain.relay.acceptOwnership().send().await),
        RegistryError::NotPendingOwner(_)
    ));
    let receipt = chain
        .stranger
        .acceptOwnership()
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let done = receipt
        .decoded_log::<MediBlockRegistry::OwnershipTransferred>()
        .unwrap();
    assert_eq!((done.previousOwner, done.newOwner), (admin, next));
    assert_eq!(chain.admin.owner().call().await.unwrap(), next);
    assert_eq!(
        chain.admin.pendingOwner().call().await.unwrap(),
        Address::ZERO
    );
    assert!(matches!(
        call_revert_of(chain.admin.enrollWallet(admin).send().await),
        RegistryError::NotOwner(_)
    ));
    chain
        .stranger
        .enrollWallet(admin)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert_eq!(
        chain.admin.roleOf(admin).call().await.unwrap(),
        registry::ROLE_WALLET
    );
}

#[tokio::test]
async fn the_admin_module_refuses_direct_calls() {
    let chain = Chain::start().await.unwrap();
    // The module is the only contract the registry created: nonce 1 of the registry.
    let module = chain.address().create(1);
    let code = chain.admin.provider().get_code_at(module).await.unwrap();
    assert!(!code.is_empty(), "module deployed by the constructor");
    let direct = MediBlockRegistry::new(module, chain.admin.provider().clone());
    assert!(matches!(
        call_revert_of(direct.addRelay(chain.stranger_address()).send().await),
        RegistryError::NotDelegated(_)
    ));
    assert!(matches!(
        call_revert_of(direct.acceptOwnership().send().await),
        RegistryError::NotDelegated(_)
    ));
}

#[tokio::test]
async fn at_most_eight_relays_and_a_key_rotation_is_not_a_ninth() {
    let chain = Chain::start_with(&AnvilOptions {
        accounts: 12,
        ..AnvilOptions::default()
    })
    .await
    .unwrap();
    // The fixture's relay and seven more: accounts 4..=10.
    let mut logs = vec![chain.log];
    for account in 4..=10 {
        logs.push(chain.add_relay(account).await.unwrap());
    }
    assert_eq!(logs, (1..=8).collect::<Vec<u16>>(), "one new log each");
    assert_eq!(chain.admin.relays().call().await.unwrap().len(), 8);
    match call_revert_of(chain.admin.addRelay(chain.anvil.address(11)).send().await) {
        RegistryError::LimitReached(e) => assert_eq!(e.limit, U256::from(8)),
        other => panic!("unexpected {other:?}"),
    }
    // Rotating a key keeps the count: the new key takes the old one's place and log.
    let old = chain.anvil.address(10);
    let new = chain.anvil.address(11);
    chain
        .admin
        .replaceRelay(old, new)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let relays = chain.admin.relays().call().await.unwrap();
    assert_eq!(relays.len(), 8);
    assert!(relays.contains(&new) && !relays.contains(&old));
    assert_eq!(chain.admin.logOf(new).call().await.unwrap(), 8);
    assert_eq!(chain.admin.logCount().call().await.unwrap(), 8);
}

#[tokio::test]
async fn log_ids_run_out_at_65535() {
    // Reaching the last log id takes 65,534 relays added and removed, which no test can
    // do on demand; so this test sets the registry's log counter directly with
    // anvil_setStorageAt (a fault injected, not a real path). `_logCount` is slot 12 of
    // RegistryStorage's layout: checked against the view before it is written.
    const LOG_COUNT_SLOT: u64 = 12;
    let chain = Chain::start().await.unwrap();
    let provider = chain.admin.provider();
    let slot = U256::from(LOG_COUNT_SLOT);
    assert_eq!(
        provider
            .get_storage_at(chain.address(), slot)
            .await
            .unwrap(),
        U256::from(chain.admin.logCount().call().await.unwrap())
    );
    provider
        .raw_request::<_, bool>(
            "anvil_setStorageAt".into(),
            (chain.address(), slot, B256::from(U256::from(65534))),
        )
        .await
        .unwrap();
    assert_eq!(chain.admin.logCount().call().await.unwrap(), 65534);

    // The last log: its id fits in full in a record's info and in the ticket key.
    let log = chain.add_relay(RELAY_B).await.unwrap();
    assert_eq!(log, u16::MAX);
    let anchor = chain.ticketed_anchor(u64::MAX, 1, &[72, 368, 1]);
    let event = anchored(&chain, &chain.anchor_as(RELAY_B, &anchor).await.unwrap());
    assert_eq!(
        (event.log, event.submitter, event.handle, event.verdict),
        (
            u16::MAX,
            chain.anvil.address(RELAY_B),
            chain.handle,
            Verdict::Valid
        )
    );
    assert!(chain.ticket_used_in(u16::MAX, u64::MAX).await.unwrap());
    for other in [0, chain.log, u16::MAX - 1] {
        assert!(
            !chain.ticket_used_in(other, u64::MAX).await.unwrap(),
            "log {other}"
        );
    }
    assert_eq!(
        chain
            .admin
            .ticketWord(u16::MAX, u64::MAX >> 8)
            .call()
            .await
            .unwrap(),
        U256::from(1) << 255
    );
    let receipt = chain.checkpoint_as(RELAY_B, 1, &[1; 32]).await.unwrap();
    let checkpoint = receipt
        .decoded_log::<MediBlockRegistry::CheckpointAnchored>()
        .unwrap();
    assert_eq!((checkpoint.log, checkpoint.size), (u16::MAX, 1));

    // No 65,536th log: a new relay is refused...
    match call_revert_of(
        chain
            .admin
            .addRelay(chain.anvil.address(RELAY_NEW_KEY))
            .send()
            .await,
    ) {
        RegistryError::LimitReached(e) => assert_eq!(e.limit, U256::from(65535)),
        other => panic!("unexpected {other:?}"),
    }
    // ...but a key rotation needs no new log.
    chain
        .admin
        .replaceRelay(
            chain.anvil.address(RELAY_B),
            chain.anvil.address(RELAY_NEW_KEY),
        )
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert_eq!(
        chain
            .admin
            .logOf(chain.anvil.address(RELAY_NEW_KEY))
            .call()
            .await
            .unwrap(),
        u16::MAX
    );
}

#[tokio::test]
async fn at_most_256_active_templates_and_the_admin_loops_fit_in_a_transaction() {
    let chain = Chain::start().await.unwrap();
    // The fixture's template and 255 more, without rules: 256 active. The admin's
    // transactions have consecutive nonces, so once the last is mined all are (the view
    // below shows they all went through).
    let mut last = None;
    for i in 1..256u32 {
        let id = FixedBytes(U256::from(i).to_be_bytes::<32>());
        let pending = chain
            .admin
            .registerTemplate(id, 1, id, vec![], Address::ZERO)
            .send()
            .await
            .unwrap();
        last = Some(pending);
    }
    assert!(last.unwrap().get_receipt().await.unwrap().status());
    assert_eq!(
        chain.admin.activeTemplates().call().await.unwrap().len(),
        256
    );
    let extra = FixedBytes([0xee; 32]);
    let register = || {
        chain
            .admin
            .registerTemplate(extra, 1, extra, vec![], Address::ZERO)
    };
    match call_revert_of(register().send().await) {
        RegistryError::LimitReached(e) => assert_eq!(e.limit, U256::from(256)),
        other => panic!("unexpected {other:?}"),
    }
    // Adding, rotating and removing a relay loop over every active template: each still
    // fits in one transaction, and leaves the grants right.
    let b = chain.anvil.address(RELAY_B);
    let new = chain.anvil.address(RELAY_NEW_KEY);
    let mut gas = Vec::new();
    for receipt in [
        chain.admin.addRelay(b).send().await.unwrap(),
        chain.admin.replaceRelay(b, new).send().await.unwrap(),
        chain.admin.removeRelay(new).send().await.unwrap(),
    ] {
        let receipt = receipt.get_receipt().await.unwrap();
        assert!(receipt.status());
        gas.push(receipt.gas_used);
    }
    println!("addRelay, replaceRelay, removeRelay with 256 active templates: {gas:?}");
    // Osaka caps a transaction's gas at 2^24 (EIP-7825).
    assert!(gas.iter().all(|&g| g < 1 << 24), "{gas:?}");
    for (who, handle) in [(b, 256u16), (new, 256), (new, 1)] {
        assert!(!chain.admin.canAnchor(who, handle).call().await.unwrap());
    }
    assert!(
        chain
            .admin
            .canAnchor(chain.relay_address(), 256)
            .call()
            .await
            .unwrap()
    );
    // A deactivated template makes room for a new one.
    chain
        .admin
        .setTemplateActive(7, false)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    register()
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert_eq!(chain.admin.handleOf(extra, 1).call().await.unwrap(), 257);
}
