//! The paper's three transactions end to end, without I/O: a clinician seals a TI, the relay
//! opens it, generates the blockchain transaction, and stores the validated transaction
//! sealed at rest. Runs natively and on wasm32.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mediblock_protocol::Error;
use mediblock_protocol::checkpoint::Checkpoint;
use mediblock_protocol::encoding::Canonical;
use mediblock_protocol::generator::generate;
use mediblock_protocol::ids::{
    AttrName, ChainHash, EthAddress, LeafIndex, PatientId, Salt, TemplateRef, TemplateVersion,
    TxId, UnixMillis, UserId,
};
use mediblock_protocol::keys::{Keypair, Purpose};
use mediblock_protocol::merkle::{Keccak256Tree, TreeHasher, inclusion_proof, root};
use mediblock_protocol::record::InitialTransaction;
use mediblock_protocol::rules::Rule;
use mediblock_protocol::template::Template;
use mediblock_protocol::validated::{Ack, BatchAnchor, ValidatedTransaction, Verdict};
use mediblock_protocol::value::{Attributes, Value};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const TEMPLATES: &str = include_str!("../testdata/templates.json");

fn template() -> Template {
    let file: serde_json::Value = serde_json::from_str(TEMPLATES).unwrap();
    serde_json::from_value(file["template"].clone()).unwrap()
}

fn ti(rng: &mut ChaCha20Rng, heart_rate: i64, triage: Option<&str>) -> InitialTransaction {
    let name = |s: &str| AttrName::new(s).unwrap();
    let mut attributes: Attributes = [
        (name("heart_rate"), Value::Integer(heart_rate)),
        (name("systolic"), Value::Integer(120)),
        (name("temperature"), Value::Integer(371)),
    ]
    .into_iter()
    .collect();
    if let Some(t) = triage {
        attributes.insert(name("triage"), Value::Enum(t.into()));
    }
    InitialTransaction {
        tid: TxId::for_ticket(1, rng),
        uid: UserId::new("nurse.bo").unwrap(),
        pid: PatientId::random(rng),
        template: TemplateRef {
            id: "vital-signs".parse().unwrap(),
            version: TemplateVersion::new(1).unwrap(),
        },
        attributes,
        created_at: UnixMillis(1_795_996_800_000),
        salt: Salt::random(rng),
        prev: None,
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn seal_open_generate_store() {
    let mut rng = ChaCha20Rng::from_seed([11; 32]);
    let nurse = Keypair::generate(&mut rng);
    let relay = Keypair::generate(&mut rng);
    let store = Keypair::generate(&mut rng);
    let template = template();

    let signed = ti(&mut rng, 72, Some("red")).sign(&nurse);
    let sealed = signed.seal(&nurse, &relay.public(), &mut rng).unwrap();
    // The wire form survives JSON.
    let sealed = serde_json::from_str(&serde_json::to_string(&sealed).unwrap()).unwrap();
    let opened =
        mediblock_protocol::record::SealedTransaction::open(&sealed, &relay, &nurse.public())
            .unwrap();
    assert_eq!(opened, signed);

    let tc = generate(&opened, &template).unwrap();
    assert_eq!(tc.tid, signed.ti().tid);
    assert_eq!(tc.commitment, signed.commitment());
    // heart_rate, systolic, temperature: the on-chain attributes, in template order.
    assert_eq!(tc.values, vec![72, 120, 371]);

    // The validated transaction, with a batch anchor whose proof really verifies.
    let leaves: Vec<_> = (0u8..5)
        .map(|i| Keccak256Tree::hash_leaf(&[i]))
        .chain([Keccak256Tree::hash_leaf(tc.commitment.as_bytes())])
        .collect();
    let tree_root = root::<Keccak256Tree>(&leaves);
    let proof = inclusion_proof::<Keccak256Tree>(&leaves, 5).unwrap();
    proof
        .verify::<Keccak256Tree>(&leaves[5], &tree_root)
        .unwrap();
    let checkpoint = Checkpoint::new("mediblock.test/log", 6, tree_root)
        .unwrap()
        .sign(relay.signing_key());
    let vt = ValidatedTransaction {
        signed: opened,
        ack: Ack {
            verdict: Verdict::Valid,
            chain_id: 31337,
            contract: EthAddress::from_bytes([0x5f; 20]),
            tx_hash: ChainHash::from_bytes([1; 32]),
            block_number: 42,
            block_hash: ChainHash::from_bytes([2; 32]),
            log_index: 0,
            batch: Some(BatchAnchor {
                leaf_index: LeafIndex(5),
                checkpoint,
                inclusion: proof,
            }),
        },
    };
    let bytes = vt.to_canonical_bytes();
    assert_eq!(
        ValidatedTransaction::from_canonical_bytes(&bytes).unwrap(),
        vt
    );

    let at_rest = relay.agree(&store.public(), Purpose::RelayStore).unwrap();
    let envelope = vt.seal_at_rest(&at_rest, &mut rng).unwrap();
    let tid = vt.signed.ti().tid;
    assert_eq!(
        ValidatedTransaction::open_at_rest(&envelope, &at_rest, &tid).unwrap(),
        vt
    );
    // Moved to another record id: refused.
    let other = TxId::for_ticket(2, &mut rng);
    assert_eq!(
        ValidatedTransaction::open_at_rest(&envelope, &at_rest, &other),
        Err(Error::Crypto)
    );
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn relay_refuses_wrong_author_and_moved_ids() {
    let mut rng = ChaCha20Rng::from_seed([12; 32]);
    let nurse = Keypair::generate(&mut rng);
    let impostor = Keypair::generate(&mut rng);
    let relay = Keypair::generate(&mut rng);
    let signed = ti(&mut rng, 72, None).sign(&nurse);
    let sealed = signed.seal(&nurse, &relay.public(), &mut rng).unwrap();

    // Opened as if it came from someone else: the key agreement differs, so it fails to decrypt.
    assert_eq!(sealed.open(&relay, &impostor.public()), Err(Error::Crypto));

    // Outer ids changed: the associated data no longer matches.
    let mut moved = sealed.clone();
    moved.tid = TxId::for_ticket(3, &mut rng);
    assert_eq!(moved.open(&relay, &nurse.public()), Err(Error::Crypto));
    let mut moved = sealed.clone();
    moved.uid = UserId::new("dr.mallory").unwrap();
    assert_eq!(moved.open(&relay, &nurse.public()), Err(Error::Crypto));

    // Signed by an impostor but sealed with the nurse's agreement key: the signature fails.
    let forged = ti(&mut rng, 72, None).sign(&impostor);
    let sealed = forged.seal(&nurse, &relay.public(), &mut rng).unwrap();
    assert_eq!(sealed.open(&relay, &nurse.public()), Err(Error::Signature));
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn generator_refuses_broken_rules_and_other_templates() {
    let mut rng = ChaCha20Rng::from_seed([13; 32]);
    let nurse = Keypair::generate(&mut rng);
    let template = template();

    let signed = ti(&mut rng, 300, Some("purple")).sign(&nurse);
    match generate(&signed, &template) {
        Err(Error::Rules(v)) => {
            let rules: Vec<_> = v
                .iter()
                .map(|v| (v.attribute.as_str(), v.rule.clone()))
                .collect();
            assert_eq!(rules.len(), 2, "{rules:?}");
            assert!(matches!(&rules[0], ("heart_rate", Rule::AboveMax { .. })));
            assert!(matches!(&rules[1], ("triage", Rule::NotAllowed { .. })));
        }
        other => panic!("expected rule violations, got {other:?}"),
    }

    let mut other = ti(&mut rng, 72, None);
    other.template.version = TemplateVersion::new(2).unwrap();
    let signed = other.sign(&nurse);
    assert_eq!(
        generate(&signed, &template).unwrap_err().code(),
        "template_mismatch"
    );
}
