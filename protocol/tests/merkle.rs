//! The Merkle log and signed checkpoints: the published RFC 6962 SHA-256 vectors, the
//! keccak256 golden vectors in `testdata/merkle.json` and `testdata/checkpoint.json` (attack
//! cases included, each refused with the error the file names), and property tests.
//! Everything but the property tests runs natively and on wasm32.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ed25519_dalek::SigningKey;
use mediblock_protocol::checkpoint::{Checkpoint, SignedCheckpoint};
use mediblock_protocol::encoding::{Canonical, Writer};
use mediblock_protocol::hash::Hash32;
use mediblock_protocol::merkle::{
    ConsistencyProof, Frontier, InclusionProof, Keccak256Tree, MAX_CONSISTENCY_PATH,
    MAX_INCLUSION_PATH, Sha256Tree, TreeHasher, consistency_proof, inclusion_proof, root,
};
use mediblock_protocol::{DecodeError, Error, ProofError};
use serde_json::{Value as Json, json};

/// The vector generator, compiled into this test so the committed files can be compared
/// with what it prints.
#[allow(dead_code, unreachable_pub)]
#[path = "../examples/gen_merkle_vectors.rs"]
mod gen_vectors;

const MERKLE: &str = include_str!("../testdata/merkle.json");
const CHECKPOINT: &str = include_str!("../testdata/checkpoint.json");

fn parse(text: &str) -> Json {
    serde_json::from_str(text).expect("vector file is JSON")
}

fn h32(v: &Json) -> Hash32 {
    let mut out = [0u8; 32];
    hex::decode_to_slice(v.as_str().expect("hex string"), &mut out).expect("32 bytes of hex");
    out
}

fn unhex(v: &Json) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("valid hex")
}

fn hashes(v: &Json) -> Vec<Hash32> {
    v.as_array()
        .expect("array of hashes")
        .iter()
        .map(h32)
        .collect()
}

fn from_json<T: serde::de::DeserializeOwned>(v: &Json) -> T {
    serde_json::from_value(v.clone()).expect("vector deserializes")
}

/// Asserts that `result` failed with the attack's expected proof error.
fn assert_refused(result: Result<(), ProofError>, attack: &Json, context: &str) {
    let name = attack["name"].as_str().unwrap();
    let err = result.expect_err(&format!("{context}: attack {name:?} was accepted"));
    assert_eq!(
        gen_vectors::error_json(&err),
        attack["error"],
        "{context}: attack {name:?}"
    );
}

/// Flips one bit of one hash of `path`, in every position.
fn every_single_flip(path: &[Hash32]) -> impl Iterator<Item = Vec<Hash32>> + '_ {
    (0..path.len()).map(move |i| {
        let mut p = path.to_vec();
        p[i][(i * 7) % 32] ^= 0x08;
        p
    })
}

// ---------------------------------------------------------------------------------------
// The committed files are the generator's output.

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn merkle_json_is_what_the_generator_prints() {
    assert!(
        MERKLE.replace("\r\n", "\n") == gen_vectors::merkle_vectors(),
        "testdata/merkle.json is stale: regenerate it with \
         `cargo run -p mediblock-protocol --example gen_merkle_vectors -- merkle`"
    );
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn checkpoint_json_is_what_the_generator_prints() {
    assert!(
        CHECKPOINT.replace("\r\n", "\n") == gen_vectors::checkpoint_vectors(),
        "testdata/checkpoint.json is stale: regenerate it with \
         `cargo run -p mediblock-protocol --example gen_merkle_vectors -- checkpoint`"
    );
}

// ---------------------------------------------------------------------------------------
// RFC 6962 over SHA-256: the published Certificate Transparency vectors.

fn published() -> (Json, Vec<Hash32>) {
    let v = parse(MERKLE)["rfc6962_sha256"].clone();
    let leaves = v["leaves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| Sha256Tree::hash_leaf(&unhex(d)))
        .collect();
    (v, leaves)
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn rfc6962_published_roots() {
    let (v, leaves) = published();
    assert_eq!(leaves.len(), 8);
    assert_eq!(root::<Sha256Tree>(&[]), h32(&v["empty_root"]));
    assert_eq!(Sha256Tree::empty_root(), h32(&v["empty_root"]));
    let roots = hashes(&v["roots"]);
    assert_eq!(roots.len(), 8);
    let mut frontier = Frontier::<Sha256Tree>::new();
    for (n, expected) in (1..=8).zip(&roots) {
        assert_eq!(&root::<Sha256Tree>(&leaves[..n]), expected, "size {n}");
        frontier.push(leaves[n - 1]);
        assert_eq!(&frontier.root(), expected, "frontier at size {n}");
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn rfc6962_published_inclusion_proofs() {
    let (v, leaves) = published();
    let roots = hashes(&v["roots"]);
    let vectors = v["inclusion"].as_array().unwrap();
    assert_eq!(vectors.len(), 5);
    for vector in vectors {
        let proof: InclusionProof = from_json(vector);
        let n = proof.tree_size as usize;
        let i = proof.leaf_index as usize;
        let tree_root = roots[n - 1];
        // Our generator produces exactly the published path, and the path verifies.
        assert_eq!(
            inclusion_proof::<Sha256Tree>(&leaves[..n], proof.leaf_index).unwrap(),
            proof
        );
        proof
            .verify::<Sha256Tree>(&leaves[i], &tree_root)
            .unwrap_or_else(|e| panic!("{i}/{n}: {e}"));
        for path in every_single_flip(&proof.path) {
            let bad = InclusionProof {
                path,
                ..proof.clone()
            };
            assert_eq!(
                bad.verify::<Sha256Tree>(&leaves[i], &tree_root),
                Err(ProofError::RootMismatch)
            );
        }
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn rfc6962_published_consistency_proofs() {
    let (v, leaves) = published();
    let roots = hashes(&v["roots"]);
    let vectors = v["consistency"].as_array().unwrap();
    assert_eq!(vectors.len(), 5);
    for vector in vectors {
        let proof: ConsistencyProof = from_json(vector);
        let (m, n) = (proof.old_size as usize, proof.new_size as usize);
        assert_eq!(
            consistency_proof::<Sha256Tree>(&leaves[..n], proof.old_size).unwrap(),
            proof
        );
        proof
            .verify::<Sha256Tree>(&roots[m - 1], &roots[n - 1])
            .unwrap_or_else(|e| panic!("{m}->{n}: {e}"));
        for path in every_single_flip(&proof.path) {
            let bad = ConsistencyProof {
                path,
                ..proof.clone()
            };
            assert_eq!(
                bad.verify::<Sha256Tree>(&roots[m - 1], &roots[n - 1]),
                Err(ProofError::RootMismatch)
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// keccak256 golden vectors.

fn keccak_trees() -> Vec<Json> {
    let v = parse(MERKLE);
    assert_eq!(v["keccak256"]["leaf_rule"], gen_vectors::LEAF_RULE);
    let trees = v["keccak256"]["trees"].as_array().unwrap().clone();
    let sizes: Vec<u64> = trees.iter().map(|t| t["size"].as_u64().unwrap()).collect();
    assert_eq!(sizes, gen_vectors::SIZES);
    trees
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn keccak_roots() {
    let v = parse(MERKLE);
    let empty = h32(&v["keccak256"]["empty_root"]);
    assert_eq!(
        hex::encode(empty),
        "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    );
    assert_eq!(root::<Keccak256Tree>(&[]), empty);
    assert_eq!(Frontier::<Keccak256Tree>::new().root(), empty);
    for tree in keccak_trees() {
        let n = tree["size"].as_u64().unwrap();
        let leaves = gen_vectors::leaf_hashes(n);
        if let Some(listed) = tree.get("leaf_hashes") {
            assert_eq!(hashes(listed), leaves, "size {n}: leaf rule");
        }
        // Leaf 0's hash, spelled out: keccak256(0x00 || 00 00 00 00 00 00 00 00).
        assert_eq!(
            leaves[0],
            mediblock_protocol::hash::keccak256(&[0u8; 9]),
            "leaf 0"
        );
        let expected = h32(&tree["root"]);
        assert_eq!(root::<Keccak256Tree>(&leaves), expected, "size {n}");
        let mut frontier = Frontier::<Keccak256Tree>::default();
        frontier.extend(leaves.iter().copied());
        assert_eq!(frontier.size(), n);
        assert_eq!(frontier.root(), expected, "frontier, size {n}");
    }
}

/// Checks a vector's attacks: each is a JSON Merge Patch (RFC 7386) over the vector's
/// inputs, and must be refused with exactly the error it names.
fn check_attacks(
    vector: &Json,
    context: &str,
    check: impl Fn(&Json) -> Result<(), ProofError>,
) -> usize {
    let attacks = vector["attacks"].as_array().unwrap();
    for attack in attacks {
        let inputs = gen_vectors::apply_patch(&vector["inputs"], &attack["patch"]);
        assert_ne!(
            inputs, vector["inputs"],
            "{context}: attack changes nothing"
        );
        assert_refused(check(&inputs), attack, context);
    }
    attacks.len()
}

fn check_inclusion(inputs: &Json) -> Result<(), ProofError> {
    let proof: InclusionProof = from_json(&inputs["proof"]);
    proof.verify::<Keccak256Tree>(&h32(&inputs["leaf_hash"]), &h32(&inputs["root"]))
}

fn check_consistency(inputs: &Json) -> Result<(), ProofError> {
    let proof: ConsistencyProof = from_json(&inputs["proof"]);
    proof.verify::<Keccak256Tree>(&h32(&inputs["old_root"]), &h32(&inputs["new_root"]))
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn keccak_inclusion_vectors() {
    let (mut proofs, mut attacks) = (0, 0);
    for tree in keccak_trees() {
        let n = tree["size"].as_u64().unwrap();
        let leaves = gen_vectors::leaf_hashes(n);
        for vector in tree["inclusion"].as_array().unwrap() {
            let inputs = &vector["inputs"];
            let proof: InclusionProof = from_json(&inputs["proof"]);
            let context = format!("inclusion {}/{n}", proof.leaf_index);
            assert_eq!(proof.tree_size, n, "{context}");
            assert_eq!(inputs["root"], tree["root"], "{context}");
            assert_eq!(
                h32(&inputs["leaf_hash"]),
                leaves[proof.leaf_index as usize],
                "{context}"
            );
            assert_eq!(
                inclusion_proof::<Keccak256Tree>(&leaves, proof.leaf_index).unwrap(),
                proof,
                "{context}: regenerated"
            );
            check_inclusion(inputs).unwrap_or_else(|e| panic!("{context}: {e}"));
            assert_eq!(
                InclusionProof::from_canonical_bytes(&proof.to_canonical_bytes()).unwrap(),
                proof
            );
            proofs += 1;
            attacks += check_attacks(vector, &context, check_inclusion);
        }
    }
    assert!(
        proofs >= 20 && attacks >= 200,
        "{proofs} proofs, {attacks} attacks"
    );
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn keccak_consistency_vectors() {
    let (mut proofs, mut attacks) = (0, 0);
    for tree in keccak_trees() {
        let n = tree["size"].as_u64().unwrap();
        let leaves = gen_vectors::leaf_hashes(n);
        for vector in tree["consistency"].as_array().unwrap() {
            let inputs = &vector["inputs"];
            let proof: ConsistencyProof = from_json(&inputs["proof"]);
            let context = format!("consistency {}->{n}", proof.old_size);
            assert_eq!(proof.new_size, n, "{context}");
            assert_eq!(inputs["new_root"], tree["root"], "{context}");
            assert_eq!(
                h32(&inputs["old_root"]),
                root::<Keccak256Tree>(&leaves[..proof.old_size as usize]),
                "{context}"
            );
            assert_eq!(
                consistency_proof::<Keccak256Tree>(&leaves, proof.old_size).unwrap(),
                proof,
                "{context}: regenerated"
            );
            check_consistency(inputs).unwrap_or_else(|e| panic!("{context}: {e}"));
            assert_eq!(
                ConsistencyProof::from_canonical_bytes(&proof.to_canonical_bytes()).unwrap(),
                proof
            );
            proofs += 1;
            attacks += check_attacks(vector, &context, check_consistency);
        }
    }
    assert!(
        proofs >= 30 && attacks >= 300,
        "{proofs} proofs, {attacks} attacks"
    );
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn every_attack_kind_is_exercised() {
    let mut kinds = std::collections::BTreeSet::new();
    for tree in keccak_trees() {
        for section in ["inclusion", "consistency"] {
            for vector in tree[section].as_array().unwrap() {
                for attack in vector["attacks"].as_array().unwrap() {
                    kinds.insert(attack["error"]["kind"].as_str().unwrap().to_owned());
                }
            }
        }
    }
    let kinds: Vec<&str> = kinds.iter().map(String::as_str).collect();
    assert_eq!(
        kinds,
        [
            "bad_sizes",
            "index_out_of_range",
            "root_mismatch",
            "wrong_length"
        ]
    );
}

// ---------------------------------------------------------------------------------------
// Proof formats.

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn proof_json_is_lowercase_hex_and_strict() {
    let leaves = gen_vectors::leaf_hashes(5);
    let proof = inclusion_proof::<Keccak256Tree>(&leaves, 4).unwrap();
    let v = serde_json::to_value(&proof).unwrap();
    assert_eq!(
        v,
        json!({
            "leaf_index": 4,
            "tree_size": 5,
            "path": [hex::encode(root::<Keccak256Tree>(&leaves[..4]))],
        })
    );
    let upper = json!({ "leaf_index": 4, "tree_size": 5,
        "path": [hex::encode_upper(proof.path[0])] });
    assert_eq!(from_json::<InclusionProof>(&upper), proof);

    let bad = [
        json!({ "leaf_index": 4, "tree_size": 5, "path": ["abcd"] }),
        json!({ "leaf_index": 4, "tree_size": 5, "path": ["zz".repeat(32)] }),
        json!({ "leaf_index": 4, "tree_size": 5, "path": [], "extra": 1 }),
        json!({ "leaf_index": 4, "path": [] }),
        json!({ "leaf_index": 0, "tree_size": 1,
                "path": vec!["00".repeat(32); MAX_INCLUSION_PATH + 1] }),
    ];
    for v in bad {
        assert!(
            serde_json::from_value::<InclusionProof>(v.clone()).is_err(),
            "{v}"
        );
    }
    let at_limit = json!({ "old_size": 1, "new_size": 2,
        "path": vec!["00".repeat(32); MAX_CONSISTENCY_PATH] });
    assert!(serde_json::from_value::<ConsistencyProof>(at_limit).is_ok());
    let over = json!({ "old_size": 1, "new_size": 2,
        "path": vec!["00".repeat(32); MAX_CONSISTENCY_PATH + 1] });
    assert!(serde_json::from_value::<ConsistencyProof>(over).is_err());
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn proof_canonical_encoding_is_exact_and_bounded() {
    let leaves = gen_vectors::leaf_hashes(7);
    let proof = inclusion_proof::<Keccak256Tree>(&leaves, 2).unwrap();
    let mut expected = Vec::new();
    expected.extend_from_slice(&7u64.to_be_bytes());
    expected.extend_from_slice(&2u64.to_be_bytes());
    expected.extend_from_slice(&(proof.path.len() as u32).to_be_bytes());
    for h in &proof.path {
        expected.extend_from_slice(h);
    }
    assert_eq!(proof.to_canonical_bytes(), expected);

    let cons = consistency_proof::<Keccak256Tree>(&leaves, 3).unwrap();
    let bytes = cons.to_canonical_bytes();
    assert_eq!(&bytes[..8], &3u64.to_be_bytes());
    assert_eq!(&bytes[8..16], &7u64.to_be_bytes());

    let decode_error = |r: mediblock_protocol::Result<InclusionProof>| match r {
        Err(Error::Decode(d)) => d,
        other => panic!("expected a decode error, got {other:?}"),
    };
    let mut trailing = expected.clone();
    trailing.push(0);
    assert_eq!(
        decode_error(InclusionProof::from_canonical_bytes(&trailing)),
        DecodeError::TrailingBytes { count: 1 }
    );
    assert_eq!(
        decode_error(InclusionProof::from_canonical_bytes(
            &expected[..expected.len() - 1]
        )),
        DecodeError::UnexpectedEnd
    );
    let mut w = Writer::new();
    w.u64(1);
    w.u64(0);
    w.u32(u32::MAX);
    assert_eq!(
        decode_error(InclusionProof::from_canonical_bytes(&w.into_bytes())),
        DecodeError::TooLong {
            got: u64::from(u32::MAX),
            limit: MAX_INCLUSION_PATH as u64
        }
    );
    let mut w = Writer::new();
    w.u64(1);
    w.u64(2);
    w.u32(MAX_CONSISTENCY_PATH as u32 + 1);
    assert!(matches!(
        ConsistencyProof::from_canonical_bytes(&w.into_bytes()),
        Err(Error::Decode(DecodeError::TooLong { .. }))
    ));
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn proofs_are_refused_before_hashing_when_oversized() {
    // A proof of absurd length fails on its length alone.
    let proof = InclusionProof {
        leaf_index: 0,
        tree_size: 2,
        path: vec![[0; 32]; 10_000],
    };
    assert_eq!(
        proof.verify::<Keccak256Tree>(&[0; 32], &[0; 32]),
        Err(ProofError::WrongLength {
            got: 10_000,
            expected: 1
        })
    );
    let proof = ConsistencyProof {
        old_size: 3,
        new_size: 4,
        path: Vec::new(),
    };
    assert_eq!(
        proof.verify::<Keccak256Tree>(&[0; 32], &[0; 32]),
        Err(ProofError::WrongLength {
            got: 0,
            expected: 3
        })
    );
}

// ---------------------------------------------------------------------------------------
// Signed checkpoints.

fn checkpoint_vectors() -> Json {
    parse(CHECKPOINT)
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn checkpoint_vector() {
    let v = checkpoint_vectors();
    let seed: [u8; 32] = unhex(&v["seed"]).try_into().unwrap();
    let key = SigningKey::from_bytes(&seed);
    assert_eq!(unhex(&v["public_key"]), key.verifying_key().as_bytes());

    let checkpoint: Checkpoint = from_json(&v["checkpoint"]);
    assert_eq!(checkpoint.origin(), "mediblock.example/log");
    assert_eq!(checkpoint.size(), 1000);
    assert_eq!(
        checkpoint.root(),
        &root::<Keccak256Tree>(&gen_vectors::leaf_hashes(1000))
    );

    let body = v["body"].as_str().unwrap();
    assert_eq!(checkpoint.body(), body.as_bytes());
    let lines: Vec<&str> = body.split('\n').collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(
        (lines[0], lines[1], lines[3]),
        ("mediblock.example/log", "1000", "")
    );
    assert_eq!(lines[2].len(), 44);
    assert!(lines[2].ends_with('='));

    let canonical = unhex(&v["canonical"]);
    assert_eq!(checkpoint.to_canonical_bytes(), canonical);
    assert_eq!(
        Checkpoint::from_canonical_bytes(&canonical).unwrap(),
        checkpoint
    );
    let mut by_hand = Writer::new();
    by_hand.tag("mediblock/checkpoint/v1");
    by_hand.str("mediblock.example/log");
    by_hand.u64(1000);
    by_hand.fixed(checkpoint.root());
    assert_eq!(by_hand.into_bytes(), canonical);

    let signed_message = unhex(&v["signed_message"]);
    assert_eq!(checkpoint.signed_message(), signed_message);
    let mut by_hand = Writer::new();
    by_hand.tag("mediblock/checkpoint-signature/v1");
    by_hand.fixed(&canonical);
    assert_eq!(by_hand.into_bytes(), signed_message);

    // ed25519 is deterministic: signing again gives the committed signature.
    let signed = checkpoint.sign(&key);
    assert_eq!(signed.signature.as_slice(), unhex(&v["signature"]));
    signed.verify(&key.verifying_key()).unwrap();
    let from_file: SignedCheckpoint = from_json(&v["signed"]);
    assert_eq!(from_file, signed);
    assert_eq!(serde_json::to_value(&signed).unwrap(), v["signed"]);
    assert_eq!(v["signed"]["signature"], v["signature"]);
    assert_eq!(
        v["signed"]["checkpoint"]["root"],
        json!(hex::encode(checkpoint.root()))
    );
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn checkpoint_signature_attacks() {
    let v = checkpoint_vectors();
    let attacks = v["signature_attacks"].as_array().unwrap();
    assert!(attacks.len() >= 8);
    for attack in attacks {
        let name = attack["name"].as_str().unwrap();
        let signed: SignedCheckpoint = from_json(&attack["signed"]);
        let key_bytes: [u8; 32] = unhex(&attack["public_key"]).try_into().unwrap();
        let key = ed25519_dalek::VerifyingKey::from_bytes(&key_bytes).unwrap();
        let err = signed.verify(&key).expect_err(name);
        assert_eq!(err, Error::Signature, "{name}");
        assert_eq!(err.code(), attack["error"].as_str().unwrap(), "{name}");
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn checkpoint_decode_attacks() {
    let v = checkpoint_vectors();
    let attacks = v["decode_attacks"].as_array().unwrap();
    assert!(attacks.len() >= 5);
    for attack in attacks {
        let name = attack["name"].as_str().unwrap();
        let err = Checkpoint::from_canonical_bytes(&unhex(&attack["bytes"])).expect_err(name);
        assert_eq!(
            err.code(),
            attack["error"].as_str().unwrap(),
            "{name}: {err:?}"
        );
        match (&err, attack.get("decode")) {
            (Error::Decode(d), Some(code)) => assert_eq!(d.code(), code, "{name}"),
            (Error::Decode(d), None) => panic!("{name}: unexpected decode error {d:?}"),
            (_, Some(_)) => panic!("{name}: expected a decode error, got {err:?}"),
            (_, None) => {}
        }
    }
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn checkpoint_json_refuses_bad_origins_and_fields() {
    let root = hex::encode([1u8; 32]);
    for origin in [
        String::new(),
        "a\nb".into(),
        "x".repeat(129),
        "caf\u{e9}".into(),
    ] {
        let v = json!({ "origin": origin, "size": 1, "root": root });
        assert!(
            serde_json::from_value::<Checkpoint>(v).is_err(),
            "{origin:?}"
        );
    }
    let v = json!({ "origin": "o", "size": 1, "root": root, "extra": true });
    assert!(serde_json::from_value::<Checkpoint>(v).is_err());
    let v = json!({ "origin": "o", "size": 1, "root": "00" });
    assert!(serde_json::from_value::<Checkpoint>(v).is_err());
    let v = json!({ "checkpoint": { "origin": "o", "size": 1, "root": root },
                    "signature": "00".repeat(63) });
    assert!(serde_json::from_value::<SignedCheckpoint>(v).is_err());
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
fn checkpoints_prove_append_only() {
    let v = checkpoint_vectors();
    let key = SigningKey::from_bytes(&gen_vectors::CHECKPOINT_SEED);
    let newer: SignedCheckpoint = from_json(&v["signed"]);
    let older: SignedCheckpoint = from_json(&v["older"]);
    let proof: ConsistencyProof = from_json(&v["consistency_proof"]);
    older.verify(&key.verifying_key()).unwrap();
    newer.verify(&key.verifying_key()).unwrap();
    older.verify_consistent_with(&newer, &proof).unwrap();

    // The proof goes one way only.
    let reversed = ConsistencyProof {
        old_size: proof.new_size,
        new_size: proof.old_size,
        path: proof.path.clone(),
    };
    assert!(newer.verify_consistent_with(&older, &reversed).is_err());
    // Sizes in the proof must be the checkpoints' sizes.
    let other_sizes = ConsistencyProof {
        old_size: 16,
        ..proof.clone()
    };
    assert_eq!(
        older
            .verify_consistent_with(&newer, &other_sizes)
            .unwrap_err()
            .code(),
        "invalid_input"
    );
    // Another log's checkpoint is not a continuation, whatever the proof.
    let foreign = Checkpoint::new(
        "mediblock.example/other",
        newer.checkpoint.size(),
        *newer.checkpoint.root(),
    )
    .unwrap()
    .sign(&key);
    assert_eq!(
        older
            .verify_consistent_with(&foreign, &proof)
            .unwrap_err()
            .code(),
        "invalid_input"
    );
    // A rewritten history does not verify.
    let mut leaves = gen_vectors::leaf_hashes(1000);
    leaves[3] = Keccak256Tree::hash_leaf(b"rewritten");
    let forked = Checkpoint::new(gen_vectors::ORIGIN, 1000, root::<Keccak256Tree>(&leaves))
        .unwrap()
        .sign(&key);
    let fork_proof = consistency_proof::<Keccak256Tree>(&leaves, 17).unwrap();
    assert_eq!(
        older.verify_consistent_with(&forked, &fork_proof),
        Err(Error::Proof(ProofError::RootMismatch))
    );
    let mut tampered = proof.clone();
    tampered.path[0][0] ^= 1;
    assert_eq!(
        older.verify_consistent_with(&newer, &tampered),
        Err(Error::Proof(ProofError::RootMismatch))
    );
    // A checkpoint is consistent with itself (empty proof) ...
    let same = ConsistencyProof {
        old_size: 1000,
        new_size: 1000,
        path: Vec::new(),
    };
    newer.verify_consistent_with(&newer, &same).unwrap();
    // ... and every log extends the empty log.
    let empty = Checkpoint::new(gen_vectors::ORIGIN, 0, Keccak256Tree::empty_root())
        .unwrap()
        .sign(&key);
    let from_empty = ConsistencyProof {
        old_size: 0,
        new_size: 1000,
        path: Vec::new(),
    };
    empty.verify_consistent_with(&newer, &from_empty).unwrap();
    let bogus_empty = Checkpoint::new(gen_vectors::ORIGIN, 0, [0; 32])
        .unwrap()
        .sign(&key);
    assert_eq!(
        bogus_empty.verify_consistent_with(&newer, &from_empty),
        Err(Error::Proof(ProofError::RootMismatch))
    );
}

// ---------------------------------------------------------------------------------------
// Property tests (native only: proptest seeds itself from the OS).

#[cfg(not(target_arch = "wasm32"))]
mod properties {
    use super::*;
    use proptest::prelude::*;
    use proptest::sample::Index;

    /// A tree of `n` leaves that depends on `seed`.
    fn tree(n: usize, seed: u64) -> Vec<Hash32> {
        (0..n as u64)
            .map(|i| Keccak256Tree::hash_leaf(&[seed.to_be_bytes(), i.to_be_bytes()].concat()))
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn every_inclusion_proof_verifies(n in 1usize..=300, seed: u64) {
            let leaves = tree(n, seed);
            let r = root::<Keccak256Tree>(&leaves);
            for (i, leaf) in leaves.iter().enumerate() {
                let proof = inclusion_proof::<Keccak256Tree>(&leaves, i as u64).unwrap();
                prop_assert_eq!(proof.verify::<Keccak256Tree>(leaf, &r), Ok(()));
            }
        }

        #[test]
        fn frontier_equals_root_for_every_prefix(n in 0usize..=300, seed: u64) {
            let leaves = tree(n, seed);
            let mut frontier = Frontier::<Keccak256Tree>::new();
            prop_assert_eq!(frontier.root(), root::<Keccak256Tree>(&[]));
            for i in 0..n {
                frontier.push(leaves[i]);
                prop_assert_eq!(frontier.root(), root::<Keccak256Tree>(&leaves[..=i]));
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn consistency_between_random_sizes_verifies(
            n in 1usize..=300, a: Index, b: Index, seed: u64,
        ) {
            let leaves = tree(n, seed);
            let (x, y) = (a.index(n) + 1, b.index(n) + 1);
            let (old, new) = (x.min(y), x.max(y));
            let proof = consistency_proof::<Keccak256Tree>(&leaves[..new], old as u64).unwrap();
            prop_assert_eq!(
                proof.verify::<Keccak256Tree>(
                    &root::<Keccak256Tree>(&leaves[..old]),
                    &root::<Keccak256Tree>(&leaves[..new]),
                ),
                Ok(())
            );
        }

        #[test]
        fn a_flipped_bit_in_an_inclusion_path_is_refused(
            n in 2usize..=300, leaf: Index, pos: Index, bit in 0usize..256, seed: u64,
        ) {
            let leaves = tree(n, seed);
            let i = leaf.index(n);
            let mut proof = inclusion_proof::<Keccak256Tree>(&leaves, i as u64).unwrap();
            let p = pos.index(proof.path.len());
            proof.path[p][bit / 8] ^= 1 << (bit % 8);
            prop_assert_eq!(
                proof.verify::<Keccak256Tree>(&leaves[i], &root::<Keccak256Tree>(&leaves)),
                Err(ProofError::RootMismatch)
            );
        }

        #[test]
        fn a_flipped_bit_in_a_consistency_path_is_refused(
            n in 2usize..=300, old: Index, pos: Index, bit in 0usize..256, seed: u64,
        ) {
            let leaves = tree(n, seed);
            let m = old.index(n - 1) + 1; // 1..n, so the proof is not empty
            let mut proof = consistency_proof::<Keccak256Tree>(&leaves, m as u64).unwrap();
            let p = pos.index(proof.path.len());
            proof.path[p][bit / 8] ^= 1 << (bit % 8);
            prop_assert_eq!(
                proof.verify::<Keccak256Tree>(
                    &root::<Keccak256Tree>(&leaves[..m]),
                    &root::<Keccak256Tree>(&leaves),
                ),
                Err(ProofError::RootMismatch)
            );
        }

        #[test]
        fn a_wrong_length_is_refused_as_such(
            n in 1usize..=300, leaf: Index, extra in 1usize..3, cut: bool, seed: u64,
        ) {
            let leaves = tree(n, seed);
            let i = leaf.index(n);
            let mut proof = inclusion_proof::<Keccak256Tree>(&leaves, i as u64).unwrap();
            let expected = proof.path.len();
            if cut && expected > 0 {
                proof.path.pop();
            } else {
                proof.path.extend(std::iter::repeat_n([0u8; 32], extra));
            }
            let got = proof.path.len();
            prop_assert_eq!(
                proof.verify::<Keccak256Tree>(&leaves[i], &root::<Keccak256Tree>(&leaves)),
                Err(ProofError::WrongLength { got, expected })
            );
        }
    }
}
