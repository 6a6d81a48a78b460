//! Checkpoint anchoring and on-chain Merkle proof verification: the contract must accept
//! exactly the proofs the protocol crate's RFC 6962 tree produces, and nothing else.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use alloy::primitives::{B256, FixedBytes};
use mediblock_e2e::fixture::Chain;
use mediblock_e2e::registry::{self, MediBlockRegistry, RegistryError};
use mediblock_protocol::hash::Hash32;
use mediblock_protocol::merkle::{self, Keccak256Tree, TreeHasher};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

fn b256s(path: &[Hash32]) -> Vec<B256> {
    path.iter().map(|h| B256::from(*h)).collect()
}

/// `count` random leaf hashes, as the relay's log would hold them.
fn random_leaves(rng: &mut ChaCha20Rng, count: usize) -> Vec<Hash32> {
    (0..count)
        .map(|_| {
            let mut data = [0u8; 32];
            rng.fill_bytes(&mut data);
            Keccak256Tree::hash_leaf(&data)
        })
        .collect()
}

#[tokio::test]
async fn accepts_only_growing_checkpoints() {
    let chain = Chain::start().await.unwrap();
    let before = chain
        .admin
        .latestCheckpoint(chain.log)
        .call()
        .await
        .unwrap();
    assert_eq!((before.size, before.root, before.count), (0, B256::ZERO, 0));
    // Size 0 is not growth.
    match chain
        .relay_checkpoints(0, &[1; 32])
        .await
        .map_err(|e| e.registry_error())
    {
        Err(Some(RegistryError::CheckpointNotGrowing(e))) => assert_eq!((e.size, e.latest), (0, 0)),
        other => panic!("unexpected {other:?}"),
    }

    let receipt = chain.relay_checkpoints(10, &[0xaa; 32]).await.unwrap();
    let event = receipt
        .decoded_log::<MediBlockRegistry::CheckpointAnchored>()
        .unwrap();
    assert_eq!(event.address, chain.address());
    assert_eq!(
        (event.log, event.size, event.root, event.submitter),
        (chain.log, 10, B256::from([0xaa; 32]), chain.relay_address())
    );
    let latest = chain
        .admin
        .latestCheckpoint(chain.log)
        .call()
        .await
        .unwrap();
    assert_eq!(
        (latest.size, latest.root, latest.count),
        (10, B256::from([0xaa; 32]), 1)
    );
    assert_eq!(latest.blockNumber, receipt.block_number.unwrap());

    for size in [10u64, 9, 1] {
        match chain
            .relay_checkpoints(size, &[0xbb; 32])
            .await
            .map_err(|e| e.registry_error())
        {
            Err(Some(RegistryError::CheckpointNotGrowing(e))) => {
                assert_eq!((e.size, e.latest), (size, 10))
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    chain.relay_checkpoints(11, &[0xcc; 32]).await.unwrap();
    chain
        .relay_checkpoints(u64::MAX, &[0xdd; 32])
        .await
        .unwrap();
    let latest = chain
        .admin
        .latestCheckpoint(chain.log)
        .call()
        .await
        .unwrap();
    assert_eq!(
        (latest.size, latest.root, latest.count),
        (u64::MAX, B256::from([0xdd; 32]), 3)
    );
    assert!(
        chain
            .relay_checkpoints(u64::MAX, &[0xee; 32])
            .await
            .is_err()
    );
}

#[tokio::test]
async fn inclusion_and_consistency_proofs_of_the_protocol_crate_verify_on_chain() {
    let chain = Chain::start().await.unwrap();
    let reg = &chain.admin;
    let log = chain.log;
    let mut rng = ChaCha20Rng::seed_from_u64(0x6d65_6469);
    let leaves = random_leaves(&mut rng, 700);

    // A growing log: checkpoints at the sizes below, each checked with proofs for random
    // leaves, then tampered proofs; consecutive checkpoints with consistency proofs.
    let mut sizes: Vec<usize> = vec![
        1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 31, 32, 33, 64, 100, 127, 128, 129, 255, 256, 257, 500,
        512, 700,
    ];
    for _ in 0..6 {
        sizes.push(1 + (rng.next_u64() % 700) as usize);
    }
    sizes.sort_unstable();
    sizes.dedup();

    let mut previous: Option<(usize, Hash32)> = None;
    let mut proofs_checked = 0;
    for &size in &sizes {
        let tree = &leaves[..size];
        let root = merkle::root::<Keccak256Tree>(tree);
        chain.relay_checkpoints(size as u64, &root).await.unwrap();

        let mut indices = vec![0, size - 1, size / 2];
        for _ in 0..3 {
            indices.push((rng.next_u64() % size as u64) as usize);
        }
        for index in indices {
            let proof = merkle::inclusion_proof::<Keccak256Tree>(tree, index as u64).unwrap();
            // The protocol crate agrees with itself...
            proof.verify::<Keccak256Tree>(&tree[index], &root).unwrap();
            let leaf = B256::from(tree[index]);
            let (i, n, path) = (index as u64, size as u64, b256s(&proof.path));
            // ...and the contract agrees with it.
            assert!(
                reg.verifyInclusion(log, leaf, i, n, path.clone())
                    .call()
                    .await
                    .unwrap(),
                "{index}/{size}"
            );
            assert_eq!(
                reg.rootFromInclusionProof(leaf, i, n, path.clone())
                    .call()
                    .await
                    .unwrap(),
                B256::from(root)
            );
            proofs_checked += 1;
            // The same proof says nothing about another log (log 2 has no checkpoint).
            assert!(
                !reg.verifyInclusion(log + 1, leaf, i, n, path.clone())
                    .call()
                    .await
                    .unwrap()
            );

            // Tampered proofs are refused.
            let mut bad = Vec::new();
            bad.push((leaf ^ B256::with_last_byte(1), i, n, path.clone()));
            if size > 1 {
                bad.push((leaf, (i + 1) % n, n, path.clone()));
                let mut flipped = path.clone();
                let k = (rng.next_u64() % flipped.len() as u64) as usize;
                flipped[k].0[(rng.next_u64() % 32) as usize] ^= 1 << (rng.next_u64() % 8);
                bad.push((leaf, i, n, flipped));
                bad.push((leaf, i, n, path[..path.len() - 1].to_vec()));
                let mut swapped = path.clone();
                swapped.reverse();
                if swapped != path {
                    bad.push((leaf, i, n, swapped));
                }
            }
            let mut longer = path.clone();
            longer.push(B256::from(root));
            bad.push((leaf, i, n, longer));
            bad.push((leaf, n, n, path.clone()));
            // Right proof, wrong tree size: not the anchored checkpoint.
            bad.push((leaf, i, n + 1, path.clone()));
            for (l, i, n, p) in bad {
                assert!(
                    !reg.verifyInclusion(log, l, i, n, p).call().await.unwrap(),
                    "tampered {index}/{size}"
                );
            }
            // A malformed shape is an explicit error of the pure function.
            if size > 1 {
                let short = path[..path.len() - 1].to_vec();
                let err = reg
                    .rootFromInclusionProof(leaf, i, n, short)
                    .call()
                    .await
                    .expect_err("shape");
                assert!(matches!(
                    registry::registry_error(&err),
                    Some(RegistryError::InvalidProof(_))
                ));
            }
        }

        if let Some((old, old_root)) = previous {
            let proof = merkle::consistency_proof::<Keccak256Tree>(tree, old as u64).unwrap();
            let (o, n) = (old as u64, size as u64);
            let (or, nr) = (B256::from(old_root), B256::from(root));
            let path = b256s(&proof.path);
            assert!(
                reg.verifyConsistency(o, n, or, nr, path.clone())
                    .call()
                    .await
                    .unwrap(),
                "{old}->{size}"
            );
            assert!(
                !reg.verifyConsistency(o, n, nr, or, path.clone())
                    .call()
                    .await
                    .unwrap()
            );
            assert!(
                !reg.verifyConsistency(o + 1, n, or, nr, path.clone())
                    .call()
                    .await
                    .unwrap()
            );
            if !path.is_empty() {
                let mut flipped = path.clone();
                flipped[0].0[0] ^= 0x80;
                assert!(
                    !reg.verifyConsistency(o, n, or, nr, flipped)
                        .call()
                        .await
                        .unwrap()
                );
                assert!(
                    !reg.verifyConsistency(o, n, or, nr, path[1..].to_vec())
                        .call()
                        .await
                        .unwrap()
                );
            }
        }
        // An older checkpoint's proof is checked against that checkpoint's root (from its
        // event) with the pure function; the view only knows the latest root.
        if let Some((old, old_root)) = previous {
            let proof = merkle::inclusion_proof::<Keccak256Tree>(&leaves[..old], 0).unwrap();
            let leaf = B256::from(leaves[0]);
            assert!(
                !reg.verifyInclusion(log, leaf, 0, old as u64, b256s(&proof.path))
                    .call()
                    .await
                    .unwrap()
            );
            let computed = reg
                .rootFromInclusionProof(leaf, 0, old as u64, b256s(&proof.path))
                .call()
                .await
                .unwrap();
            assert_eq!(computed, B256::from(old_root));
        }
        previous = Some((size, root));
    }
    assert!(proofs_checked >= 6 * 24);
    // Equal sizes: only the empty proof and equal roots.
    let r = FixedBytes([7u8; 32]);
    assert!(
        reg.verifyConsistency(5, 5, r, r, vec![])
            .call()
            .await
            .unwrap()
    );
    assert!(
        !reg.verifyConsistency(5, 5, r, FixedBytes([8u8; 32]), vec![])
            .call()
            .await
            .unwrap()
    );
    assert!(
        !reg.verifyConsistency(0, 5, r, r, vec![r])
            .call()
            .await
            .unwrap()
    );
    assert!(
        !reg.verifyConsistency(6, 5, r, r, vec![r])
            .call()
            .await
            .unwrap()
    );
}
