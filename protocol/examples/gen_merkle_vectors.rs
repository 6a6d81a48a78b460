//! Prints the golden vectors `protocol/testdata/merkle.json` and `checkpoint.json`.
//!
//! ```text
//! cargo run -p mediblock-protocol --example gen_merkle_vectors -- merkle > protocol/testdata/merkle.json
//! cargo run -p mediblock-protocol --example gen_merkle_vectors -- checkpoint > protocol/testdata/checkpoint.json
//! ```
//!
//! `tests/merkle.rs` includes this file as a module, checks that the committed files are
//! exactly what it prints, and then checks every vector on its own.
//!
//! Every attack's expected error is derived here from the tree shape alone (the length a
//! correct proof has, the sizes involved), never by asking the verifier; the verifier is
//! only run afterwards as a sanity check, and generation stops if it disagrees.
//!
//! The RFC 6962 SHA-256 section is not generated: it is the data published with
//! transparency-dev/merkle (`proof/verify_test.go`, the Certificate Transparency test
//! vectors), copied as literals.

use ed25519_dalek::SigningKey;
use mediblock_protocol::checkpoint::{Checkpoint, SignedCheckpoint};
use mediblock_protocol::encoding::Canonical;
use mediblock_protocol::hash::Hash32;
use mediblock_protocol::merkle::{
    ConsistencyProof, InclusionProof, Keccak256Tree, TreeHasher, consistency_proof,
    inclusion_proof, root,
};
use mediblock_protocol::{Error, ProofError};
use serde_json::{Value as Json, json};

/// Tree sizes with keccak256 vectors.
pub(crate) const SIZES: [u64; 9] = [1, 2, 3, 5, 7, 8, 16, 17, 1000];
/// Trees up to this size list their leaf hashes in the JSON.
const LIST_LEAVES_UP_TO: u64 = 17;
/// Seed of the checkpoint signing key.
pub(crate) const CHECKPOINT_SEED: [u8; 32] = [7; 32];
/// Seed of the "wrong key" in the checkpoint attacks.
const OTHER_SEED: [u8; 32] = [8; 32];
/// The checkpoint vectors' log name.
pub(crate) const ORIGIN: &str = "mediblock.example/log";

/// The leaf rule, in words, as written into the JSON.
pub(crate) const LEAF_RULE: &str = "leaf i (0-based) has the 8-byte big-endian encoding of i \
     as its data; its leaf hash is keccak256(0x00 || data)";

/// The leaf hashes of the keccak256 vectors' tree of `n` leaves (see [`LEAF_RULE`]).
pub(crate) fn leaf_hashes(n: u64) -> Vec<Hash32> {
    (0..n)
        .map(|i| Keccak256Tree::hash_leaf(&i.to_be_bytes()))
        .collect()
}

/// RFC 6962 SHA-256 vectors, as published (transparency-dev/merkle, proof/verify_test.go).
pub(crate) mod rfc6962 {
    /// The eight leaves' data, hex.
    pub(crate) const LEAVES: [&str; 8] = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];
    /// SHA-256 of the empty string: the root of the empty tree.
    pub(crate) const EMPTY_ROOT: &str =
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    /// Roots of the trees of the first 1..=8 leaves.
    pub(crate) const ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];
    /// `(leaf_index, tree_size, path)`; the source numbers leaves from 1, these from 0.
    pub(crate) const INCLUSION: [(u64, u64, &[&str]); 5] = [
        (0, 1, &[]),
        (
            0,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            8,
            &[
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            3,
            &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
        ),
        (
            1,
            5,
            &[
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];
    /// `(old_size, new_size, path)`.
    pub(crate) const CONSISTENCY: [(u64, u64, &[&str]); 5] = [
        (1, 1, &[]),
        (
            1,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            5,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
        (
            6,
            7,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
    ];
}

/// A proof error as the JSON spells it.
pub(crate) fn error_json(e: &ProofError) -> Json {
    match e {
        ProofError::WrongLength { got, expected } => {
            json!({ "kind": "wrong_length", "got": got, "expected": expected })
        }
        ProofError::IndexOutOfRange { index, size } => {
            json!({ "kind": "index_out_of_range", "index": index, "size": size })
        }
        ProofError::BadSizes { old, new } => json!({ "kind": "bad_sizes", "old": old, "new": new }),
        ProofError::RootMismatch => json!({ "kind": "root_mismatch" }),
    }
}

fn hx(h: &[u8]) -> Json {
    Json::String(hex::encode(h))
}

fn to_json<T: serde::Serialize>(v: &T) -> Json {
    serde_json::to_value(v).expect("proofs serialize")
}

/// Flips one bit of `path[pos]`, chosen from `pos`.
fn flip(path: &[Hash32], pos: usize) -> Vec<Hash32> {
    let mut out = path.to_vec();
    out[pos][pos % 32] ^= 1 << (pos % 8);
    out
}

/// First and last positions of a path of `len` hashes.
fn positions(len: usize) -> Vec<usize> {
    let mut p = vec![0, len.saturating_sub(1)];
    p.dedup();
    p.retain(|&i| i < len);
    p
}

/// The verifier's verdict must be the one derived from the tree shape.
fn sanity(name: &str, got: Result<(), ProofError>, expected: &ProofError) {
    assert_eq!(got.as_ref().err(), Some(expected), "attack {name}: {got:?}");
}

/// What an inclusion check takes.
fn inclusion_inputs(leaf_hash: &Hash32, root: &Hash32, proof: &InclusionProof) -> Json {
    json!({ "leaf_hash": hx(leaf_hash), "root": hx(root), "proof": to_json(proof) })
}

/// What a consistency check takes.
fn consistency_inputs(old_root: &Hash32, new_root: &Hash32, proof: &ConsistencyProof) -> Json {
    json!({ "old_root": hx(old_root), "new_root": hx(new_root), "proof": to_json(proof) })
}

/// The JSON Merge Patch (RFC 7386) that turns `base` into `target`; neither removes keys.
fn merge_patch(base: &Json, target: &Json) -> Json {
    match (base, target) {
        (Json::Object(b), Json::Object(t)) => Json::Object(
            t.iter()
                .filter(|(k, v)| b.get(*k) != Some(*v))
                .map(|(k, v)| {
                    let patch = match b.get(k) {
                        Some(old) => merge_patch(old, v),
                        None => v.clone(),
                    };
                    (k.clone(), patch)
                })
                .collect(),
        ),
        _ => target.clone(),
    }
}

/// Applies a JSON Merge Patch (RFC 7386) without deletions.
pub(crate) fn apply_patch(base: &Json, patch: &Json) -> Json {
    match (base, patch) {
        (Json::Object(b), Json::Object(p)) => {
            let mut out = b.clone();
            for (k, v) in p {
                let merged = match b.get(k) {
                    Some(old) => apply_patch(old, v),
                    None => v.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Json::Object(out)
        }
        _ => patch.clone(),
    }
}

/// Rewrites each attack's full inputs as a merge patch over `inputs`.
fn as_patches(inputs: &Json, attacks: Vec<Json>) -> Vec<Json> {
    attacks
        .into_iter()
        .map(|a| {
            let patch = merge_patch(inputs, &a["inputs"]);
            assert_eq!(apply_patch(inputs, &patch), a["inputs"], "patch round trip");
            json!({ "name": a["name"], "patch": patch, "error": a["error"] })
        })
        .collect()
}

fn inclusion_attack(
    name: String,
    leaf_hash: &Hash32,
    root: &Hash32,
    proof: InclusionProof,
    expected: ProofError,
) -> Json {
    sanity(
        &name,
        proof.verify::<Keccak256Tree>(leaf_hash, root),
        &expected,
    );
    json!({
        "name": name,
        "inputs": inclusion_inputs(leaf_hash, root, &proof),
        "error": error_json(&expected),
    })
}

fn consistency_attack(
    name: String,
    old_root: &Hash32,
    new_root: &Hash32,
    proof: ConsistencyProof,
    expected: ProofError,
) -> Json {
    sanity(
        &name,
        proof.verify::<Keccak256Tree>(old_root, new_root),
        &expected,
    );
    json!({
        "name": name,
        "inputs": consistency_inputs(old_root, new_root, &proof),
        "error": error_json(&expected),
    })
}

/// The largest power of two strictly below `n >= 2`, counted up the slow way.
fn rfc_split(n: u64) -> u64 {
    let mut k = 1;
    while 2 * k < n {
        k *= 2;
    }
    k
}

/// The length of RFC 6962's `PATH(m, D[n])`, following its recursive definition.
fn incl_len(m: u64, n: u64) -> usize {
    if n <= 1 {
        return 0;
    }
    let k = rfc_split(n);
    1 + if m < k {
        incl_len(m, k)
    } else {
        incl_len(m - k, n - k)
    }
}

/// The length of RFC 6962's `SUBPROOF(m, D[n], b)`, following its recursive definition.
fn subproof_len(m: u64, n: u64, b: bool) -> usize {
    if m == n {
        return usize::from(!b);
    }
    let k = rfc_split(n);
    1 + if m <= k {
        subproof_len(m, k, b)
    } else {
        subproof_len(m - k, n - k, false)
    }
}

/// `RootMismatch` when `got == expected` hashes, otherwise `WrongLength`.
fn by_length(got: usize, expected: usize) -> ProofError {
    if got == expected {
        ProofError::RootMismatch
    } else {
        ProofError::WrongLength { got, expected }
    }
}

fn inclusion_vector(leaves: &[Hash32], bigger: &[Hash32], index: u64) -> Json {
    let n = leaves.len() as u64;
    let i = index as usize;
    let r = root::<Keccak256Tree>(leaves);
    let leaf = leaves[i];
    let good = inclusion_proof::<Keccak256Tree>(leaves, index).expect("index in range");
    good.verify::<Keccak256Tree>(&leaf, &r)
        .expect("a fresh proof verifies");
    let len = good.path.len();
    assert_eq!(len, incl_len(index, n), "PATH length");
    let with_path = |path: Vec<Hash32>| InclusionProof {
        path,
        ..good.clone()
    };
    let mut attacks = Vec::new();

    for pos in positions(len) {
        attacks.push(inclusion_attack(
            format!("flipped bit in path[{pos}]"),
            &leaf,
            &r,
            with_path(flip(&good.path, pos)),
            ProofError::RootMismatch,
        ));
    }
    if len > 0 {
        attacks.push(inclusion_attack(
            "truncated path".into(),
            &leaf,
            &r,
            with_path(good.path[..len - 1].to_vec()),
            ProofError::WrongLength {
                got: len - 1,
                expected: len,
            },
        ));
    }
    let mut extra = good.path.clone();
    extra.push(r);
    attacks.push(inclusion_attack(
        "extra hash at the end".into(),
        &leaf,
        &r,
        with_path(extra),
        ProofError::WrongLength {
            got: len + 1,
            expected: len,
        },
    ));
    if len >= 2 {
        let mut swapped = good.path.clone();
        swapped.swap(0, 1);
        attacks.push(inclusion_attack(
            "reordered path".into(),
            &leaf,
            &r,
            with_path(swapped),
            ProofError::RootMismatch,
        ));
    }
    // Another index whose proof has the same length: the shape check passes, hashing fails.
    let same_shape = (0..n)
        .filter(|&j| j != index && incl_len(j, n) == len)
        .min_by_key(|&j| j.abs_diff(index));
    if let Some(j) = same_shape {
        attacks.push(inclusion_attack(
            format!("wrong leaf index {j}"),
            &leaf,
            &r,
            InclusionProof {
                leaf_index: j,
                ..good.clone()
            },
            ProofError::RootMismatch,
        ));
    }
    // Another index whose proof has another length: refused before hashing.
    if let Some(j) = (0..n).find(|&j| incl_len(j, n) != len) {
        attacks.push(inclusion_attack(
            format!("wrong leaf index {j} (other shape)"),
            &leaf,
            &r,
            InclusionProof {
                leaf_index: j,
                ..good.clone()
            },
            by_length(len, incl_len(j, n)),
        ));
    }
    for bad in [n, u64::MAX] {
        attacks.push(inclusion_attack(
            format!("leaf index {bad} not below tree size"),
            &leaf,
            &r,
            InclusionProof {
                leaf_index: bad,
                ..good.clone()
            },
            ProofError::IndexOutOfRange {
                index: bad,
                size: n,
            },
        ));
    }
    // The proof, replayed as if for the next tree size and that tree's root.
    attacks.push(inclusion_attack(
        format!("stale proof against the root of size {}", n + 1),
        &leaf,
        &root::<Keccak256Tree>(bigger),
        InclusionProof {
            tree_size: n + 1,
            ..good.clone()
        },
        by_length(len, incl_len(index, n + 1)),
    ));
    let other_leaf = if n > 1 {
        leaves[(i + 1) % leaves.len()]
    } else {
        Keccak256Tree::hash_leaf(b"not in the log")
    };
    attacks.push(inclusion_attack(
        "wrong leaf hash".into(),
        &other_leaf,
        &r,
        good.clone(),
        ProofError::RootMismatch,
    ));
    // Second-preimage attempt: present the parent of this leaf and its sibling leaf as if
    // it were a leaf, with the rest of the path. Without the shape check it would verify.
    let sibling = i ^ 1;
    if sibling < leaves.len() {
        let (l, rr) = if i.is_multiple_of(2) {
            (leaves[i], leaves[sibling])
        } else {
            (leaves[sibling], leaves[i])
        };
        attacks.push(inclusion_attack(
            "interior node presented as a leaf".into(),
            &Keccak256Tree::hash_children(&l, &rr),
            &r,
            with_path(good.path[1..].to_vec()),
            ProofError::WrongLength {
                got: len - 1,
                expected: len,
            },
        ));
    }

    let inputs = inclusion_inputs(&leaf, &r, &good);
    json!({
        "attacks": as_patches(&inputs, attacks),
        "inputs": inputs,
    })
}

fn consistency_vector(leaves: &[Hash32], bigger: &[Hash32], old: u64) -> Json {
    let n = leaves.len() as u64;
    let m = old as usize;
    let new_root = root::<Keccak256Tree>(leaves);
    let old_root = root::<Keccak256Tree>(&leaves[..m]);
    let good = consistency_proof::<Keccak256Tree>(leaves, old).expect("sizes in range");
    good.verify::<Keccak256Tree>(&old_root, &new_root)
        .expect("a fresh proof verifies");
    let len = good.path.len();
    assert_eq!(len, subproof_len(old, n, true), "PROOF length");
    let with_path = |path: Vec<Hash32>| ConsistencyProof {
        path,
        ..good.clone()
    };
    let mut attacks = Vec::new();

    for pos in positions(len) {
        attacks.push(consistency_attack(
            format!("flipped bit in path[{pos}]"),
            &old_root,
            &new_root,
            with_path(flip(&good.path, pos)),
            ProofError::RootMismatch,
        ));
    }
    if len > 0 {
        attacks.push(consistency_attack(
            "truncated path".into(),
            &old_root,
            &new_root,
            with_path(good.path[..len - 1].to_vec()),
            ProofError::WrongLength {
                got: len - 1,
                expected: len,
            },
        ));
    }
    let mut extra = good.path.clone();
    extra.push(new_root);
    attacks.push(consistency_attack(
        "extra hash at the end".into(),
        &old_root,
        &new_root,
        with_path(extra),
        ProofError::WrongLength {
            got: len + 1,
            expected: len,
        },
    ));
    if len >= 2 {
        let mut swapped = good.path.clone();
        swapped.swap(0, 1);
        attacks.push(consistency_attack(
            "reordered path".into(),
            &old_root,
            &new_root,
            with_path(swapped),
            ProofError::RootMismatch,
        ));
    }
    attacks.push(consistency_attack(
        "old size 0".into(),
        &old_root,
        &new_root,
        ConsistencyProof {
            old_size: 0,
            ..good.clone()
        },
        ProofError::BadSizes { old: 0, new: n },
    ));
    attacks.push(consistency_attack(
        "old size above new size".into(),
        &old_root,
        &new_root,
        ConsistencyProof {
            old_size: n + 1,
            ..good.clone()
        },
        ProofError::BadSizes { old: n + 1, new: n },
    ));
    attacks.push(consistency_attack(
        "new size below old size".into(),
        &old_root,
        &new_root,
        ConsistencyProof {
            new_size: old - 1,
            ..good.clone()
        },
        ProofError::BadSizes { old, new: old - 1 },
    ));
    if old < n {
        attacks.push(consistency_attack(
            format!("proof replayed from size {}", old + 1),
            &root::<Keccak256Tree>(&leaves[..m + 1]),
            &new_root,
            ConsistencyProof {
                old_size: old + 1,
                ..good.clone()
            },
            by_length(len, subproof_len(old + 1, n, true)),
        ));
        attacks.push(consistency_attack(
            "swapped roots".into(),
            &new_root,
            &old_root,
            good.clone(),
            ProofError::RootMismatch,
        ));
    } else {
        attacks.push(consistency_attack(
            "non-empty path between equal sizes".into(),
            &old_root,
            &new_root,
            with_path(vec![new_root]),
            ProofError::WrongLength {
                got: 1,
                expected: 0,
            },
        ));
    }
    attacks.push(consistency_attack(
        format!("proof replayed to size {}", n + 1),
        &old_root,
        &root::<Keccak256Tree>(bigger),
        ConsistencyProof {
            new_size: n + 1,
            ..good.clone()
        },
        by_length(len, subproof_len(old, n + 1, true)),
    ));
    let wrong_old = if m > 1 {
        root::<Keccak256Tree>(&leaves[..m - 1])
    } else {
        Keccak256Tree::hash_leaf(b"not in the log")
    };
    attacks.push(consistency_attack(
        "wrong old root".into(),
        &wrong_old,
        &new_root,
        good.clone(),
        ProofError::RootMismatch,
    ));
    attacks.push(consistency_attack(
        "wrong new root".into(),
        &old_root,
        &flip(&[new_root], 0)[0],
        good.clone(),
        ProofError::RootMismatch,
    ));

    let inputs = consistency_inputs(&old_root, &new_root, &good);
    json!({
        "attacks": as_patches(&inputs, attacks),
        "inputs": inputs,
    })
}

/// Old sizes with consistency vectors for a tree of `n` leaves.
fn old_sizes(n: u64) -> Vec<u64> {
    let mut v: Vec<u64> = [1, 3, 4, n / 2, n - 1, n]
        .into_iter()
        .filter(|&m| m >= 1 && m <= n)
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Leaf indices with inclusion vectors for a tree of `n` leaves.
fn indices(n: u64) -> Vec<u64> {
    let mut v = vec![0, n / 2, n - 1];
    v.dedup();
    v
}

/// The contents of `testdata/merkle.json`.
pub(crate) fn merkle_vectors() -> String {
    let published = json!({
        "source": "Certificate Transparency RFC 6962 test vectors as published in \
                   transparency-dev/merkle, proof/verify_test.go (leaf indices here are \
                   0-based)",
        "leaves": rfc6962::LEAVES,
        "empty_root": rfc6962::EMPTY_ROOT,
        "roots": rfc6962::ROOTS,
        "inclusion": rfc6962::INCLUSION
            .iter()
            .map(|(i, n, p)| json!({ "leaf_index": i, "tree_size": n, "path": p }))
            .collect::<Vec<_>>(),
        "consistency": rfc6962::CONSISTENCY
            .iter()
            .map(|(m, n, p)| json!({ "old_size": m, "new_size": n, "path": p }))
            .collect::<Vec<_>>(),
    });

    let trees: Vec<Json> = SIZES
        .iter()
        .map(|&n| {
            let bigger = leaf_hashes(n + 1);
            let leaves = &bigger[..n as usize];
            let mut tree = json!({
                "size": n,
                "root": hx(&root::<Keccak256Tree>(leaves)),
            });
            if n <= LIST_LEAVES_UP_TO {
                tree["leaf_hashes"] = leaves.iter().map(|h| hx(h)).collect();
            }
            tree["inclusion"] = indices(n)
                .into_iter()
                .map(|i| inclusion_vector(leaves, &bigger, i))
                .collect();
            tree["consistency"] = old_sizes(n)
                .into_iter()
                .map(|m| consistency_vector(leaves, &bigger, m))
                .collect();
            tree
        })
        .collect();

    let doc = json!({
        "description": "RFC 6962 / RFC 9162 Merkle tree vectors for mediblock_protocol::merkle. \
                        Hashes are lowercase hex. Each attack must be refused with exactly \
                        the error given.",
        "rfc6962_sha256": published,
        "keccak256": {
            "leaf_rule": LEAF_RULE,
            "empty_root": hx(&Keccak256Tree::empty_root()),
            "trees": trees,
        },
    });
    pretty(&doc)
}

/// Adds the group order ℓ to the scalar `S` (the second half of a signature), giving a
/// non-canonical `S + ℓ` that strict verification must refuse.
fn malleate(signature: &[u8; 64]) -> [u8; 64] {
    const ELL: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut out = *signature;
    let mut carry = 0u16;
    for (k, ell) in ELL.iter().enumerate() {
        let sum = u16::from(out[32 + k]) + u16::from(*ell) + carry;
        out[32 + k] = sum as u8;
        carry = sum >> 8;
    }
    out
}

fn signature_attack(name: &str, signed: &SignedCheckpoint, key: &SigningKey) -> Json {
    let got = signed.verify(&key.verifying_key());
    assert_eq!(got, Err(Error::Signature), "attack {name}");
    json!({
        "name": name,
        "signed": to_json(signed),
        "public_key": hx(key.verifying_key().as_bytes()),
        "error": "signature_invalid",
    })
}

fn decode_attack(name: &str, bytes: &[u8], decode: Option<&str>) -> Json {
    let got = Checkpoint::from_canonical_bytes(bytes).expect_err(name);
    let (error, code) = match decode {
        Some(d) => ("malformed", Some(d)),
        None => ("invalid_input", None),
    };
    assert_eq!(got.code(), error, "attack {name}: {got:?}");
    if let (Error::Decode(d), Some(code)) = (&got, code) {
        assert_eq!(d.code(), code, "attack {name}");
    }
    let mut v = json!({ "name": name, "bytes": hx(bytes), "error": error });
    if let Some(code) = code {
        v["decode"] = json!(code);
    }
    v
}

/// The contents of `testdata/checkpoint.json`.
pub(crate) fn checkpoint_vectors() -> String {
    let key = SigningKey::from_bytes(&CHECKPOINT_SEED);
    let other = SigningKey::from_bytes(&OTHER_SEED);
    let leaves = leaf_hashes(1000);
    let checkpoint =
        Checkpoint::new(ORIGIN, 1000, root::<Keccak256Tree>(&leaves)).expect("valid origin");
    let signed = checkpoint.sign(&key);
    signed
        .verify(&key.verifying_key())
        .expect("a fresh signature verifies");
    let older = Checkpoint::new(ORIGIN, 17, root::<Keccak256Tree>(&leaves[..17]))
        .expect("valid origin")
        .sign(&key);
    let proof = consistency_proof::<Keccak256Tree>(&leaves, 17).expect("17 <= 1000");
    older
        .verify_consistent_with(&signed, &proof)
        .expect("the older checkpoint is a prefix");

    let with = |c: Checkpoint| SignedCheckpoint {
        checkpoint: c,
        signature: signed.signature,
    };
    let cp = &signed.checkpoint;
    let mut flipped = signed.clone();
    flipped.signature[0] ^= 1;
    let mut flipped_s = signed.clone();
    flipped_s.signature[40] ^= 0x10;
    let signature_attacks = vec![
        signature_attack("flipped bit in R", &flipped, &key),
        signature_attack("flipped bit in S", &flipped_s, &key),
        signature_attack(
            "non-canonical S (S + l)",
            &SignedCheckpoint {
                checkpoint: cp.clone(),
                signature: malleate(&signed.signature),
            },
            &key,
        ),
        signature_attack("wrong key", &signed, &other),
        signature_attack(
            "altered size",
            &with(Checkpoint::new(ORIGIN, cp.size() + 1, *cp.root()).expect("valid")),
            &key,
        ),
        signature_attack(
            "altered root",
            &with(Checkpoint::new(ORIGIN, cp.size(), flip(&[*cp.root()], 0)[0]).expect("valid")),
            &key,
        ),
        signature_attack(
            "altered origin",
            &with(
                Checkpoint::new("mediblock.example/other", cp.size(), *cp.root()).expect("valid"),
            ),
            &key,
        ),
        signature_attack(
            "signature of another checkpoint",
            &SignedCheckpoint {
                checkpoint: cp.clone(),
                signature: older.signature,
            },
            &key,
        ),
    ];

    let canonical = cp.to_canonical_bytes();
    let mut trailing = canonical.clone();
    trailing.push(0);
    let mut bad_tag = canonical.clone();
    bad_tag[4] ^= 0x20; // "mediblock" -> "Mediblock"
    let mut newline = Checkpoint::new("a", 0, [0; 32])
        .expect("valid")
        .to_canonical_bytes();
    let at = 4 + "mediblock/checkpoint/v1".len() + 4;
    newline[at] = b'\n';
    let decode_attacks = vec![
        decode_attack("trailing byte", &trailing, Some("trailing_bytes")),
        decode_attack(
            "truncated by one byte",
            &canonical[..canonical.len() - 1],
            Some("unexpected_end"),
        ),
        decode_attack("empty input", &[], Some("unexpected_end")),
        decode_attack("wrong tag", &bad_tag, Some("wrong_tag")),
        decode_attack("newline in origin", &newline, None),
    ];

    let doc = json!({
        "description": "Signed checkpoint vectors for mediblock_protocol::checkpoint. The \
                        signature is ed25519 over tag(\"mediblock/checkpoint-signature/v1\") \
                        followed by the checkpoint's canonical bytes; verification is strict.",
        "seed": hx(&CHECKPOINT_SEED),
        "public_key": hx(key.verifying_key().as_bytes()),
        "leaf_rule": LEAF_RULE,
        "checkpoint": to_json(cp),
        "body": String::from_utf8(cp.body()).expect("ASCII body"),
        "canonical": hx(&canonical),
        "signed_message": hx(&cp.signed_message()),
        "signature": hx(&signed.signature),
        "signed": to_json(&signed),
        "older": to_json(&older),
        "consistency_proof": to_json(&proof),
        "signature_attacks": signature_attacks,
        "decode_attacks": decode_attacks,
    });
    pretty(&doc)
}

/// Two-space pretty JSON with a final newline; a value whose compact form fits the line,
/// and any array of plain values, stays on one line.
fn pretty(doc: &Json) -> String {
    const WIDTH: usize = 100;
    fn one_line(v: &Json) -> String {
        match v {
            Json::Object(map) => {
                let fields: Vec<String> = map
                    .iter()
                    .map(|(k, v)| format!("{}: {}", Json::String(k.clone()), one_line(v)))
                    .collect();
                format!("{{{}}}", fields.join(", "))
            }
            Json::Array(items) => {
                let items: Vec<String> = items.iter().map(one_line).collect();
                format!("[{}]", items.join(", "))
            }
            other => other.to_string(),
        }
    }
    fn write(out: &mut String, v: &Json, indent: usize) {
        let pad = |out: &mut String, n: usize| out.extend(std::iter::repeat_n(' ', n));
        let compact = one_line(v);
        if indent + compact.len() <= WIDTH {
            out.push_str(&compact);
            return;
        }
        match v {
            Json::Object(map) if !map.is_empty() => {
                out.push_str("{\n");
                for (k, (key, value)) in map.iter().enumerate() {
                    pad(out, indent + 2);
                    out.push_str(&Json::String(key.clone()).to_string());
                    out.push_str(": ");
                    write(out, value, indent + 2);
                    out.push_str(if k + 1 < map.len() { ",\n" } else { "\n" });
                }
                pad(out, indent);
                out.push('}');
            }
            Json::Array(items) if items.iter().any(|i| i.is_object() || i.is_array()) => {
                out.push_str("[\n");
                for (k, item) in items.iter().enumerate() {
                    pad(out, indent + 2);
                    write(out, item, indent + 2);
                    out.push_str(if k + 1 < items.len() { ",\n" } else { "\n" });
                }
                pad(out, indent);
                out.push(']');
            }
            _ => out.push_str(&compact),
        }
    }
    let mut out = String::new();
    write(&mut out, doc, 0);
    out.push('\n');
    out
}

#[allow(dead_code)]
fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("merkle") => print!("{}", merkle_vectors()),
        Some("checkpoint") => print!("{}", checkpoint_vectors()),
        _ => {
            eprintln!("usage: gen_merkle_vectors merkle|checkpoint");
            std::process::exit(2);
        }
    }
}
