//! The wallet path: an enrolled wallet sends a record that a relay co-signed with EIP-712;
//! expired deadlines, wrong signers, replays and tampering are refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use alloy::primitives::{B256, U256};
use alloy::sol_types::SolStruct;
use mediblock_e2e::fixture::{Chain, revert_of};
use mediblock_e2e::registry::{
    self, AnchorPath, AnchoredRecord, Cosignature, Record, RegistryError, Verdict,
};
use mediblock_protocol::ids::TxId;

const SECOND_WALLET: usize = 4;
const STRANGER: usize = 3;
const RELAY: usize = 1;
const WALLET: usize = 2;

#[tokio::test]
async fn an_enrolled_wallet_anchors_a_co_signed_record() {
    let chain = Chain::start().await.unwrap();
    let now = chain.now().await.unwrap();
    for (seed, values, verdict) in [
        (1u64, [72i64, 368, 0], Verdict::Valid),
        (2, [72, 470, 0], Verdict::Rejected { index: 1 }),
    ] {
        let anchor = chain.anchor(seed, &values);
        let cosignature = chain.cosign(&anchor, now + 600);
        let receipt = chain.wallet_anchors(&anchor, &cosignature).await.unwrap();
        assert!(receipt.status());
        let events = AnchoredRecord::from_receipt(&receipt, chain.address());
        // The event names the values the verdict judged, and the co-signing relay's log.
        let packed: Vec<u8> = values.iter().flat_map(|v| v.to_be_bytes()).collect();
        let expected = vec![AnchoredRecord {
            tid: anchor.tid,
            commitment: anchor.commitment,
            values_hash: mediblock_protocol::hash::keccak256(&packed),
            log: chain.log,
            submitter: chain.wallet_address(),
            handle: chain.handle,
            verdict,
            path: AnchorPath::Wallet,
        }];
        assert_eq!(events, expected);
        // The ticket is used, and a log filter on the tid finds the same record.
        assert!(
            chain
                .ticket_used(TxId::from_bytes(anchor.tid).ticket())
                .await
                .unwrap()
        );
        assert_eq!(chain.records_of(&anchor.tid).await.unwrap(), expected);
    }
}

#[tokio::test]
async fn the_contract_and_alloy_agree_on_the_eip712_digest() {
    let chain = Chain::start().await.unwrap();
    let domain = registry::domain(chain.anvil.chain_id(), chain.address());
    assert_eq!(
        chain.admin.domainSeparator().call().await.unwrap(),
        domain.separator()
    );
    let d = chain.admin.eip712Domain().call().await.unwrap();
    assert_eq!(d.fields.0, [0x0f]);
    assert_eq!(
        (d.name.as_str(), d.version.as_str()),
        (registry::DOMAIN_NAME, registry::DOMAIN_VERSION)
    );
    assert_eq!(
        (d.chainId, d.verifyingContract),
        (U256::from(31337), chain.address())
    );

    let anchor = chain.anchor(5, &[-3, i64::MAX, i64::MIN]);
    let record = anchor.record(1_900_000_000, chain.wallet_address());
    let on_chain = chain
        .admin
        .cosignDigest(
            record.tid,
            record.commitment,
            record.template,
            record.values.clone(),
            record.deadline,
            record.submitter,
        )
        .call()
        .await
        .unwrap();
    assert_eq!(on_chain, record.eip712_signing_hash(&domain));
    // The struct's type string is the one the contract hashes.
    assert_eq!(
        Record::eip712_encode_type(),
        "Record(bytes16 tid,bytes32 commitment,uint16 template,int64[] values,uint64 deadline,address submitter)"
    );
}

#[tokio::test]
async fn refuses_an_expired_co_signature() {
    let chain = Chain::start().await.unwrap();
    let now = chain.now().await.unwrap();
    let anchor = chain.anchor(1, &[72, 368, 0]);
    let expired = chain.cosign(&anchor, now - 1);
    match revert_of(chain.wallet_anchors(&anchor, &expired).await) {
        RegistryError::Expired(e) => assert_eq!(e.deadline, now - 1),
        other => panic!("unexpected {other:?}"),
    }
    // The same record with a live deadline goes through.
    let live = chain.cosign(&anchor, now + 60);
    assert!(chain.wallet_anchors(&anchor, &live).await.unwrap().status());
}

#[tokio::test]
async fn refuses_co_signatures_not_from_a_relay() {
    let chain = Chain::start().await.unwrap();
    let now = chain.now().await.unwrap();
    let anchor = chain.anchor(1, &[72, 368, 0]);
    // Signed by a stranger, or by the wallet itself.
    for signer in [STRANGER, WALLET] {
        let cosignature = chain.cosign_by(&anchor, now + 600, signer, chain.wallet_address());
        assert!(matches!(
            revert_of(chain.wallet_anchors(&anchor, &cosignature).await),
            RegistryError::BadCosignature(_)
        ));
    }
    // Signed by a relay that has since been removed.
    let cosignature = chain.cosign(&anchor, now + 600);
    chain
        .admin
        .removeRelay(chain.relay_address())
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(matches!(
        revert_of(chain.wallet_anchors(&anchor, &cosignature).await),
        RegistryError::BadCosignature(_)
    ));
    // A relay signature over an inactive template is refused for that reason.
    let log = chain.add_relay(RELAY).await.unwrap();
    chain
        .admin
        .setTemplateActive(chain.handle, false)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(matches!(
        revert_of(chain.wallet_anchors(&anchor, &cosignature).await),
        RegistryError::TemplateInactive(_)
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
    // The relay added back co-signs into its new log.
    let receipt = chain.wallet_anchors(&anchor, &cosignature).await.unwrap();
    let events = AnchoredRecord::from_receipt(&receipt, chain.address());
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].log, events[0].path), (log, AnchorPath::Wallet));
    assert_ne!(log, chain.log);
}

#[tokio::test]
async fn refuses_a_replayed_co_signed_record() {
    let chain = Chain::start().await.unwrap();
    let now = chain.now().await.unwrap();
    let anchor = chain.anchor(1, &[72, 368, 0]);
    let cosignature = chain.cosign(&anchor, now + 600);
    chain.wallet_anchors(&anchor, &cosignature).await.unwrap();
    match revert_of(chain.wallet_anchors(&anchor, &cosignature).await) {
        RegistryError::AlreadyAnchored(e) => assert_eq!(e.tid.0, anchor.tid),
        other => panic!("unexpected {other:?}"),
    }
    // Nor can the relay anchor it again directly.
    assert!(matches!(
        revert_of(chain.relay_anchors(&anchor).await),
        RegistryError::AlreadyAnchored(_)
    ));
    assert_eq!(chain.records_of(&anchor.tid).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_co_signature_binds_the_record_and_the_wallet() {
    let chain = Chain::start().await.unwrap();
    chain
        .admin
        .enrollWallet(chain.anvil.address(SECOND_WALLET))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let now = chain.now().await.unwrap();
    let anchor = chain.anchor(1, &[72, 368, 0]);
    let cosignature = chain.cosign(&anchor, now + 600);

    // Another enrolled wallet cannot use it (front-running): the signature names the first.
    let other = registry::provider(chain.anvil.url(), chain.anvil.signer(SECOND_WALLET));
    let result = registry::send_raw(
        &other,
        chain.address(),
        anchor.cosigned_calldata(&cosignature),
    )
    .await;
    assert!(matches!(
        revert_of(result),
        RegistryError::BadCosignature(_)
    ));

    // Any change to the record, the deadline or the signature breaks it.
    let mut tampered = Vec::new();
    let mut a = anchor.clone();
    a.values[0] = 73;
    tampered.push((a, cosignature));
    let mut a = anchor.clone();
    a.commitment[31] ^= 1;
    tampered.push((a, cosignature));
    let mut a = anchor.clone();
    a.tid[0] ^= 1;
    tampered.push((a, cosignature));
    tampered.push((
        anchor.clone(),
        Cosignature {
            deadline: now + 601,
            ..cosignature
        },
    ));
    tampered.push((
        anchor.clone(),
        Cosignature {
            v: 55 - cosignature.v,
            ..cosignature
        },
    ));
    let mut r = cosignature;
    r.r[5] ^= 0x10;
    tampered.push((anchor.clone(), r));
    // The high-s twin of a valid signature (EIP-2 malleability) is refused too.
    let n = U256::from_be_bytes(
        B256::from(alloy::primitives::hex!(
            "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"
        ))
        .0,
    );
    let s = U256::from_be_bytes(cosignature.s);
    tampered.push((
        anchor.clone(),
        Cosignature {
            s: (n - s).to_be_bytes(),
            v: 55 - cosignature.v,
            ..cosignature
        },
    ));
    for (a, c) in tampered {
        let err = revert_of(chain.wallet_anchors(&a, &c).await);
        assert!(matches!(err, RegistryError::BadCosignature(_)), "{err:?}");
    }
    // The untouched one still works, once.
    assert!(
        chain
            .wallet_anchors(&anchor, &cosignature)
            .await
            .unwrap()
            .status()
    );
}

#[tokio::test]
async fn only_enrolled_wallets_use_the_wallet_path() {
    let chain = Chain::start().await.unwrap();
    let now = chain.now().await.unwrap();
    let anchor = chain.anchor(1, &[72, 368, 0]);
    // The stranger and the relay itself are not enrolled wallets.
    for (i, who) in [
        (STRANGER, chain.stranger_address()),
        (RELAY, chain.relay_address()),
    ] {
        let cosignature = chain.cosign_by(&anchor, now + 600, RELAY, who);
        let provider = registry::provider(chain.anvil.url(), chain.anvil.signer(i));
        let result = registry::send_raw(
            &provider,
            chain.address(),
            anchor.cosigned_calldata(&cosignature),
        )
        .await;
        match revert_of(result) {
            RegistryError::Unauthorized(e) => assert_eq!(e.account, who),
            other => panic!("unexpected {other:?}"),
        }
    }
    // A removed wallet loses the path.
    let receipt = chain
        .admin
        .removeWallet(chain.wallet_address())
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status());
    let cosignature = chain.cosign(&anchor, now + 600);
    assert!(matches!(
        revert_of(chain.wallet_anchors(&anchor, &cosignature).await),
        RegistryError::Unauthorized(_)
    ));
    // Wrong lengths are refused before any signature work.
    chain
        .admin
        .enrollWallet(chain.wallet_address())
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let full = anchor.cosigned_calldata(&cosignature);
    for len in [1usize, 123, full.len() - 1, full.len() - 8] {
        let result =
            registry::send_raw(chain.wallet.provider(), chain.address(), full.slice(..len)).await;
        assert!(
            matches!(
                revert_of(result),
                RegistryError::BadLength(_) | RegistryError::BadCosignature(_)
            ),
            "{len}"
        );
    }
    // None of it used the ticket.
    assert!(
        !chain
            .ticket_used(TxId::from_bytes(anchor.tid).ticket())
            .await
            .unwrap()
    );
    assert!(chain.records_of(&anchor.tid).await.unwrap().is_empty());
}
