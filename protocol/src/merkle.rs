//! The RFC 6962 / RFC 9162 Merkle log: roots, inclusion and consistency proofs, compact ranges.
//!
//! The relay appends one leaf per record commitment to an append-only log and anchors the
//! log's root on chain; clients check that their record is in the log ([`InclusionProof`])
//! and that a later log extends an earlier one without rewriting it ([`ConsistencyProof`]).
//!
//! The tree is exactly the one of RFC 6962 §2.1 (and RFC 9162 §2.1): a leaf hashes as
//! `H(0x00 || data)`, an interior node as `H(0x01 || left || right)`, the empty tree as
//! `H("")`, and a tree of `n > 1` leaves splits at the largest power of two below `n`. The
//! hash is a parameter ([`TreeHasher`]): [`Keccak256Tree`] is what the chain uses,
//! [`Sha256Tree`] exists so the published Certificate Transparency vectors can be checked.
//!
//! Functions here take *leaf hashes* (the output of [`TreeHasher::hash_leaf`]), never raw
//! leaf data.
//!
//! # Security notes
//!
//! - **Second preimages.** The `0x00` / `0x01` prefixes make a leaf hash and an interior
//!   node hash come from disjoint input sets, so an interior node can never be presented as
//!   a leaf (nor a leaf as a node) to forge a proof for data that was never logged.
//! - **Proof shape first.** Verification computes, from the leaf index (or the old size)
//!   and the tree size alone, the exact number of hashes the tree shape requires, and
//!   refuses a proof of any other length ([`ProofError::WrongLength`]) before hashing
//!   anything. Truncated, padded or re-shaped proofs are therefore refused outright, and a
//!   hostile proof cannot make the verifier do unbounded work.
//! - **Sizes are part of the claim.** A root only means something together with its tree
//!   size: the hashing does not bind the size, so a proof can also check out against the
//!   same root under another claimed size of the same shape (leaf 0 of a 3-leaf tree, say,
//!   "verifies" as leaf 0 of 4 leaves). Always take the size and the root from the same
//!   signed [`Checkpoint`](crate::checkpoint::Checkpoint), never the size from the proof.
//! - **Constant-time comparison.** The computed root is compared with the expected one
//!   with [`subtle::ConstantTimeEq`].

use core::fmt;
use core::marker::PhantomData;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::encoding::{Canonical, Reader, Writer};
use crate::error::{ProofError, Result};
use crate::hash::{Hash32, keccak256, sha256};

/// Most hashes an inclusion proof can need: a tree of fewer than 2^64 leaves is at most 64
/// levels deep.
pub const MAX_INCLUSION_PATH: usize = 64;

/// Most hashes a consistency proof can need: the (at most 64-hash) inclusion path of the
/// old tree's last leaf, plus the old tree's own seed node when its size is not a power of
/// two.
pub const MAX_CONSISTENCY_PATH: usize = 65;

/// Prefix of a leaf hash's preimage.
const LEAF_PREFIX: u8 = 0x00;
/// Prefix of an interior node hash's preimage.
const NODE_PREFIX: u8 = 0x01;

/// The hash function of a Merkle tree, with RFC 6962's domain separation.
pub trait TreeHasher {
    /// `H(0x00 || data)`.
    fn hash_leaf(data: &[u8]) -> Hash32;
    /// `H(0x01 || left || right)`.
    fn hash_children(left: &Hash32, right: &Hash32) -> Hash32;
    /// The root of the empty tree, `H("")`.
    fn empty_root() -> Hash32;
}

/// The interior node preimage `0x01 || left || right`.
fn node_preimage(left: &Hash32, right: &Hash32) -> [u8; 65] {
    let mut buf = [0u8; 65];
    buf[0] = NODE_PREFIX;
    buf[1..33].copy_from_slice(left);
    buf[33..].copy_from_slice(right);
    buf
}

/// The log's tree over keccak256, as the contracts and the relay compute it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Keccak256Tree;

impl TreeHasher for Keccak256Tree {
    fn hash_leaf(data: &[u8]) -> Hash32 {
        use sha3::Digest as _;
        sha3::Keccak256::new()
            .chain_update([LEAF_PREFIX])
            .chain_update(data)
            .finalize()
            .into()
    }

    fn hash_children(left: &Hash32, right: &Hash32) -> Hash32 {
        keccak256(&node_preimage(left, right))
    }

    fn empty_root() -> Hash32 {
        keccak256(b"")
    }
}

/// The RFC 6962 tree over SHA-256, as Certificate Transparency computes it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Sha256Tree;

impl TreeHasher for Sha256Tree {
    fn hash_leaf(data: &[u8]) -> Hash32 {
        use sha2::Digest as _;
        sha2::Sha256::new()
            .chain_update([LEAF_PREFIX])
            .chain_update(data)
            .finalize()
            .into()
    }

    fn hash_children(left: &Hash32, right: &Hash32) -> Hash32 {
        sha256(&node_preimage(left, right))
    }

    fn empty_root() -> Hash32 {
        sha256(b"")
    }
}

/// The largest power of two strictly below `n`; `n >= 2`.
fn split(n: usize) -> usize {
    1 << (n - 1).ilog2()
}

/// `MTH(D[n])`, the Merkle Tree Hash of RFC 6962 §2.1, over already-hashed leaves.
///
/// `n - 1` interior hashes for `n` leaves; the recursion is `log2(n)` deep.
pub fn root<H: TreeHasher>(leaf_hashes: &[Hash32]) -> Hash32 {
    match leaf_hashes {
        [] => H::empty_root(),
        leaves => subtree_root::<H>(leaves),
    }
}

/// `MTH` of a non-empty slice of leaf hashes.
fn subtree_root<H: TreeHasher>(leaves: &[Hash32]) -> Hash32 {
    match leaves {
        [leaf] => *leaf,
        [left, right] => H::hash_children(left, right),
        _ => {
            let (left, right) = leaves.split_at(split(leaves.len()));
            H::hash_children(&subtree_root::<H>(left), &subtree_root::<H>(right))
        }
    }
}

/// The inclusion proof of leaf `index` in the tree over `leaf_hashes`: RFC 6962's
/// `PATH(m, D[n])`, ordered from the leaf's sibling up to the root's child.
pub fn inclusion_proof<H: TreeHasher>(
    leaf_hashes: &[Hash32],
    index: u64,
) -> Result<InclusionProof, ProofError> {
    let tree_size = leaf_hashes.len() as u64;
    let mut m = usize::try_from(index)
        .ok()
        .filter(|&m| m < leaf_hashes.len())
        .ok_or(ProofError::IndexOutOfRange {
            index,
            size: tree_size,
        })?;
    // Walk down from the root, collecting the sibling subtree at each level.
    let mut path = Vec::new();
    let mut leaves = leaf_hashes;
    while leaves.len() > 1 {
        let k = split(leaves.len());
        let (left, right) = leaves.split_at(k);
        if m < k {
            path.push(subtree_root::<H>(right));
            leaves = left;
        } else {
            path.push(subtree_root::<H>(left));
            leaves = right;
            m -= k;
        }
    }
    path.reverse();
    Ok(InclusionProof {
        leaf_index: index,
        tree_size,
        path,
    })
}

/// The consistency proof between the first `old_size` leaves and all of `leaf_hashes`:
/// RFC 6962's `PROOF(m, D[n]) = SUBPROOF(m, D[n], true)`, for `0 < old_size <= n`.
///
/// `old_size == n` gives the empty proof.
pub fn consistency_proof<H: TreeHasher>(
    leaf_hashes: &[Hash32],
    old_size: u64,
) -> Result<ConsistencyProof, ProofError> {
    let new_size = leaf_hashes.len() as u64;
    let bad = ProofError::BadSizes {
        old: old_size,
        new: new_size,
    };
    if old_size == 0 || old_size > new_size {
        return Err(bad);
    }
    let mut m = usize::try_from(old_size).map_err(|_| bad)?;
    // Walk down from the root; `complete` is SUBPROOF's `b`: whether the subtree we are in
    // is still a prefix of the old tree whose root the verifier already knows.
    let mut path = Vec::new();
    let mut leaves = leaf_hashes;
    let mut complete = true;
    loop {
        if m == leaves.len() {
            if !complete {
                path.push(subtree_root::<H>(leaves));
            }
            break;
        }
        // Here 0 < m < leaves.len(), so there are at least two leaves.
        let k = split(leaves.len());
        let (left, right) = leaves.split_at(k);
        if m <= k {
            path.push(subtree_root::<H>(right));
            leaves = left;
        } else {
            path.push(subtree_root::<H>(left));
            leaves = right;
            m -= k;
            complete = false;
        }
    }
    path.reverse();
    Ok(ConsistencyProof {
        old_size,
        new_size,
        path,
    })
}

/// Bit length of `x` (0 for 0).
fn bit_len(x: u64) -> u32 {
    u64::BITS - x.leading_zeros()
}

/// The number of hashes in the inclusion proof of `index` in a tree of `size`;
/// requires `index < size`.
///
/// The path has one hash per level below the point where the paths to `index` and to the
/// last leaf diverge (`inner`), plus one per left sibling above it (`border`).
fn inclusion_path_len(index: u64, size: u64) -> usize {
    let inner = bit_len(index ^ (size - 1));
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    (inner + border) as usize
}

/// The number of hashes in the consistency proof from `old` to `new`; requires
/// `0 < old < new`.
fn consistency_path_len(old: u64, new: u64) -> usize {
    let last = old - 1;
    let inner = bit_len(last ^ (new - 1));
    let border = last.checked_shr(inner).unwrap_or(0).count_ones();
    // The lowest `shift` levels lie inside the old tree's last perfect subtree, whose root
    // is either the old root itself (old a power of two) or the proof's first hash.
    let shift = old.trailing_zeros();
    let seed = u32::from(!old.is_power_of_two());
    (seed + inner.saturating_sub(shift) + border) as usize
}

/// `Ok` when `a == b`, compared in constant time.
fn roots_match(a: &Hash32, b: &Hash32) -> Result<(), ProofError> {
    if bool::from(a.ct_eq(b)) {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// Proof that a leaf is in a tree of a given size (RFC 9162 `inclusion_proof_v2`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionProof {
    /// The leaf's 0-based position.
    pub leaf_index: u64,
    /// The size of the tree whose root the proof leads to.
    pub tree_size: u64,
    /// Sibling hashes from the leaf level up, as lowercase hex in JSON.
    #[serde(with = "hex_serde::inclusion_path")]
    pub path: Vec<Hash32>,
}

impl InclusionProof {
    /// The root the path leads to from `leaf_hash`: RFC 9162 §2.1.3.2, after refusing an
    /// out-of-range index and a path whose length does not fit the tree shape.
    pub fn root_from<H: TreeHasher>(&self, leaf_hash: &Hash32) -> Result<Hash32, ProofError> {
        let (index, size) = (self.leaf_index, self.tree_size);
        // 1. leaf_index < tree_size.
        if index >= size {
            return Err(ProofError::IndexOutOfRange { index, size });
        }
        let expected = inclusion_path_len(index, size);
        if self.path.len() != expected {
            return Err(ProofError::WrongLength {
                got: self.path.len(),
                expected,
            });
        }
        let wrong_length = ProofError::WrongLength {
            got: self.path.len(),
            expected,
        };
        // 2.-4.
        let (mut fnode, mut snode) = (index, size - 1);
        let mut r = *leaf_hash;
        for p in &self.path {
            if snode == 0 {
                return Err(wrong_length);
            }
            if fnode & 1 == 1 || fnode == snode {
                r = H::hash_children(p, &r);
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            } else {
                r = H::hash_children(&r, p);
            }
            fnode >>= 1;
            snode >>= 1;
        }
        // 5. (the root itself is compared by the caller)
        if snode != 0 {
            return Err(wrong_length);
        }
        Ok(r)
    }

    /// Checks that `leaf_hash` is leaf `leaf_index` of the tree of `tree_size` leaves
    /// whose root is `root` (RFC 9162 §2.1.3.2).
    ///
    /// # Errors
    /// [`ProofError::IndexOutOfRange`] when `leaf_index >= tree_size`,
    /// [`ProofError::WrongLength`] when the path does not have the length the tree shape
    /// requires (checked before any hashing), [`ProofError::RootMismatch`] otherwise.
    pub fn verify<H: TreeHasher>(
        &self,
        leaf_hash: &Hash32,
        root: &Hash32,
    ) -> Result<(), ProofError> {
        roots_match(&self.root_from::<H>(leaf_hash)?, root)
    }
}

impl Canonical for InclusionProof {
    /// `tree_size` u64, `leaf_index` u64, a u32 count, then the 32-byte hashes.
    fn encode(&self, w: &mut Writer) {
        w.u64(self.tree_size);
        w.u64(self.leaf_index);
        encode_path(w, &self.path);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let tree_size = r.u64()?;
        let leaf_index = r.u64()?;
        let path = decode_path(r, MAX_INCLUSION_PATH)?;
        Ok(Self {
            leaf_index,
            tree_size,
            path,
        })
    }
}

/// Proof that a tree of `new_size` leaves extends the tree of its first `old_size` leaves
/// (RFC 9162 `consistency_proof_v2`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyProof {
    /// The size of the older tree.
    pub old_size: u64,
    /// The size of the newer tree.
    pub new_size: u64,
    /// The proof's hashes, as lowercase hex in JSON.
    #[serde(with = "hex_serde::consistency_path")]
    pub path: Vec<Hash32>,
}

impl ConsistencyProof {
    /// Checks that the tree of `new_size` leaves with root `new_root` extends the tree of
    /// `old_size` leaves with root `old_root` (RFC 9162 §2.1.4.2).
    ///
    /// `old_size == new_size` requires an empty path and equal roots.
    ///
    /// # Errors
    /// [`ProofError::BadSizes`] unless `0 < old_size <= new_size`,
    /// [`ProofError::WrongLength`] when the path does not have the length the two sizes
    /// require (checked before any hashing), [`ProofError::RootMismatch`] when either root
    /// does not match.
    pub fn verify<H: TreeHasher>(
        &self,
        old_root: &Hash32,
        new_root: &Hash32,
    ) -> Result<(), ProofError> {
        let (old, new) = (self.old_size, self.new_size);
        if old == 0 || old > new {
            return Err(ProofError::BadSizes { old, new });
        }
        if old == new {
            if !self.path.is_empty() {
                return Err(ProofError::WrongLength {
                    got: self.path.len(),
                    expected: 0,
                });
            }
            return roots_match(old_root, new_root);
        }
        let expected = consistency_path_len(old, new);
        let wrong_length = ProofError::WrongLength {
            got: self.path.len(),
            expected,
        };
        if self.path.len() != expected {
            return Err(wrong_length);
        }
        // 1.-2. The first hash is the old root when `old` is a power of two, otherwise the
        // proof's first element.
        let (seed, rest) = if old.is_power_of_two() {
            (old_root, self.path.as_slice())
        } else {
            match self.path.split_first() {
                Some((first, rest)) => (first, rest),
                None => return Err(wrong_length),
            }
        };
        // 3.-4.
        let (mut fnode, mut snode) = (old - 1, new - 1);
        while fnode & 1 == 1 {
            fnode >>= 1;
            snode >>= 1;
        }
        // 5.-6.
        let (mut fr, mut sr) = (*seed, *seed);
        for c in rest {
            if snode == 0 {
                return Err(wrong_length);
            }
            if fnode & 1 == 1 || fnode == snode {
                fr = H::hash_children(c, &fr);
                sr = H::hash_children(c, &sr);
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            } else {
                sr = H::hash_children(&sr, c);
            }
            fnode >>= 1;
            snode >>= 1;
        }
        // 7.
        if snode != 0 {
            return Err(wrong_length);
        }
        if bool::from(fr.ct_eq(old_root) & sr.ct_eq(new_root)) {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        }
    }
}

impl Canonical for ConsistencyProof {
    /// `old_size` u64, `new_size` u64, a u32 count, then the 32-byte hashes.
    fn encode(&self, w: &mut Writer) {
        w.u64(self.old_size);
        w.u64(self.new_size);
        encode_path(w, &self.path);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let old_size = r.u64()?;
        let new_size = r.u64()?;
        let path = decode_path(r, MAX_CONSISTENCY_PATH)?;
        Ok(Self {
            old_size,
            new_size,
            path,
        })
    }
}

/// A u32 count, then the hashes.
///
/// # Panics
/// If the path has more than [`crate::encoding::MAX_FIELD_LEN`] hashes; proofs built by
/// this module or decoded have at most [`MAX_CONSISTENCY_PATH`].
fn encode_path(w: &mut Writer, path: &[Hash32]) {
    w.len(path.len());
    for h in path {
        w.fixed(h);
    }
}

/// A u32 count of at most `limit`, then that many hashes.
fn decode_path(r: &mut Reader<'_>, limit: usize) -> Result<Vec<Hash32>> {
    let n = r.len(limit as u32)?;
    let mut path = Vec::with_capacity(n);
    for _ in 0..n {
        path.push(r.array()?);
    }
    Ok(path)
}

/// The compact range `[0, size)` of a growing log: the roots of its perfect subtrees, one
/// per set bit of `size`, so appending and computing the root need only `O(log n)` memory.
///
/// The relay keeps one to maintain the log's root incrementally; for every size its
/// [`root`](Self::root) equals [`root`](fn@root) over the same leaves.
pub struct Frontier<H> {
    size: u64,
    /// Perfect subtree roots, largest (leftmost) first.
    subtrees: Vec<Hash32>,
    hasher: PhantomData<fn() -> H>,
}

impl<H: TreeHasher> Frontier<H> {
    /// The empty log.
    pub fn new() -> Self {
        Self {
            size: 0,
            subtrees: Vec::new(),
            hasher: PhantomData,
        }
    }

    /// Restores a frontier saved with [`subtree_roots`](Self::subtree_roots).
    ///
    /// # Errors
    /// [`ProofError::WrongLength`] unless there is exactly one root per set bit of `size`.
    pub fn from_subtree_roots(size: u64, subtrees: Vec<Hash32>) -> Result<Self, ProofError> {
        let expected = size.count_ones() as usize;
        if subtrees.len() != expected {
            return Err(ProofError::WrongLength {
                got: subtrees.len(),
                expected,
            });
        }
        Ok(Self {
            size,
            subtrees,
            hasher: PhantomData,
        })
    }

    /// Number of leaves appended so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The perfect subtree roots, largest (leftmost) first: one per set bit of
    /// [`size`](Self::size), from the most significant.
    pub fn subtree_roots(&self) -> &[Hash32] {
        &self.subtrees
    }

    /// Appends one leaf hash (the output of [`TreeHasher::hash_leaf`]).
    pub fn push(&mut self, leaf_hash: Hash32) {
        let mut node = leaf_hash;
        let mut size = self.size;
        // Every trailing set bit of `size` is a perfect subtree of the same height as
        // `node` that now has a right sibling: merge them.
        while size & 1 == 1 {
            let Some(left) = self.subtrees.pop() else {
                break;
            };
            node = H::hash_children(&left, &node);
            size >>= 1;
        }
        self.subtrees.push(node);
        self.size += 1;
    }

    /// The root of the log so far; [`TreeHasher::empty_root`] when empty.
    pub fn root(&self) -> Hash32 {
        let mut subtrees = self.subtrees.iter().rev();
        let Some(&last) = subtrees.next() else {
            return H::empty_root();
        };
        subtrees.fold(last, |acc, left| H::hash_children(left, &acc))
    }
}

impl<H: TreeHasher> Default for Frontier<H> {
    fn default() -> Self {
        Self::new()
    }
}

impl<H> Clone for Frontier<H> {
    fn clone(&self) -> Self {
        Self {
            size: self.size,
            subtrees: self.subtrees.clone(),
            hasher: PhantomData,
        }
    }
}

impl<H> fmt::Debug for Frontier<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frontier")
            .field("size", &self.size)
            .field(
                "subtrees",
                &self.subtrees.iter().map(hex::encode).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl<H: TreeHasher> Extend<Hash32> for Frontier<H> {
    fn extend<I: IntoIterator<Item = Hash32>>(&mut self, leaf_hashes: I) {
        for leaf_hash in leaf_hashes {
            self.push(leaf_hash);
        }
    }
}

/// Serde helpers: fixed-size byte arrays and hash lists as lowercase hex strings (no `0x`
/// on output; an optional `0x` and either case accepted on input, see [`crate::json`]).
pub(crate) mod hex_serde {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    use super::{Hash32, MAX_CONSISTENCY_PATH, MAX_INCLUSION_PATH};

    /// Parses exactly `N` bytes of hex.
    fn parse<const N: usize>(s: &str) -> Result<[u8; N], &'static str> {
        let s = crate::json::hex_digits(s);
        if s.len() != 2 * N {
            return Err("wrong number of hex digits");
        }
        let mut out = [0u8; N];
        hex::decode_to_slice(s, &mut out).map_err(|_| "not hex")?;
        Ok(out)
    }

    /// `[u8; N]` as a hex string.
    pub(crate) fn serialize<S: Serializer, const N: usize>(
        bytes: &[u8; N],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    /// `[u8; N]` from a hex string of exactly `2N` digits.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<[u8; N], D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).map_err(D::Error::custom)
    }

    /// One hash, for deserializing a list element.
    struct HexHash(Hash32);

    impl<'de> Deserialize<'de> for HexHash {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            deserialize(d).map(HexHash)
        }
    }

    fn serialize_path<S: Serializer>(path: &[Hash32], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(path.iter().map(hex::encode))
    }

    fn deserialize_path<'de, D: Deserializer<'de>>(
        d: D,
        limit: usize,
    ) -> Result<Vec<Hash32>, D::Error> {
        let path = Vec::<HexHash>::deserialize(d)?;
        if path.len() > limit {
            return Err(D::Error::custom(format_args!(
                "proof has {} hashes, at most {limit} allowed",
                path.len()
            )));
        }
        Ok(path.into_iter().map(|h| h.0).collect())
    }

    /// An inclusion path: at most [`MAX_INCLUSION_PATH`] hex hashes.
    pub(crate) mod inclusion_path {
        use super::*;

        pub(crate) fn serialize<S: Serializer>(path: &[Hash32], s: S) -> Result<S::Ok, S::Error> {
            serialize_path(path, s)
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Vec<Hash32>, D::Error> {
            deserialize_path(d, MAX_INCLUSION_PATH)
        }
    }

    /// A consistency path: at most [`MAX_CONSISTENCY_PATH`] hex hashes.
    pub(crate) mod consistency_path {
        use super::*;

        pub(crate) fn serialize<S: Serializer>(path: &[Hash32], s: S) -> Result<S::Ok, S::Error> {
            serialize_path(path, s)
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Vec<Hash32>, D::Error> {
            deserialize_path(d, MAX_CONSISTENCY_PATH)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash32> {
        (0..n)
            .map(|i| Keccak256Tree::hash_leaf(&(i as u64).to_be_bytes()))
            .collect()
    }

    /// RFC 6962 §2.1's recursive definition, literally, as an independent reference.
    fn reference_root(leaves: &[Hash32]) -> Hash32 {
        match leaves.len() {
            0 => Keccak256Tree::empty_root(),
            1 => leaves[0],
            n => {
                let mut k = 1;
                while k * 2 < n {
                    k *= 2;
                }
                Keccak256Tree::hash_children(
                    &reference_root(&leaves[..k]),
                    &reference_root(&leaves[k..]),
                )
            }
        }
    }

    #[test]
    fn split_is_the_largest_power_of_two_below() {
        for (n, k) in [(2, 1), (3, 2), (4, 2), (5, 4), (8, 4), (9, 8), (1000, 512)] {
            assert_eq!(split(n), k, "n = {n}");
        }
    }

    #[test]
    fn root_matches_the_recursive_definition() {
        let all = leaves(70);
        for n in 0..=all.len() {
            assert_eq!(root::<Keccak256Tree>(&all[..n]), reference_root(&all[..n]));
        }
    }

    #[test]
    fn leaf_and_node_hashes_are_domain_separated() {
        let a = [1u8; 32];
        let mut concat = [0u8; 64];
        concat[..32].copy_from_slice(&a);
        concat[32..].copy_from_slice(&a);
        assert_ne!(
            Keccak256Tree::hash_children(&a, &a),
            Keccak256Tree::hash_leaf(&concat)
        );
        assert_eq!(Keccak256Tree::hash_leaf(b"x"), keccak256(&[0, b'x']));
        assert_eq!(Sha256Tree::hash_leaf(b"x"), sha256(&[0, b'x']));
    }

    #[test]
    fn predicted_lengths_match_generated_proofs() {
        let all = leaves(80);
        for n in 1..=all.len() {
            let tree = &all[..n];
            for m in 0..n {
                let p = inclusion_proof::<Keccak256Tree>(tree, m as u64).unwrap();
                assert_eq!(
                    p.path.len(),
                    inclusion_path_len(m as u64, n as u64),
                    "{m}/{n}"
                );
            }
            for m in 1..n {
                let p = consistency_proof::<Keccak256Tree>(tree, m as u64).unwrap();
                assert_eq!(
                    p.path.len(),
                    consistency_path_len(m as u64, n as u64),
                    "{m}->{n}"
                );
            }
        }
    }

    #[test]
    fn path_length_bounds_hold_for_the_largest_trees() {
        assert_eq!(inclusion_path_len(0, u64::MAX), MAX_INCLUSION_PATH);
        assert_eq!(inclusion_path_len(u64::MAX - 1, u64::MAX), 63);
        assert_eq!(consistency_path_len(3, u64::MAX), MAX_CONSISTENCY_PATH);
        let worst = (1..200u64)
            .flat_map(|old| [(old, u64::MAX), (old, u64::MAX - old), (old, 1 << 63)])
            .filter(|&(old, new)| old < new)
            .map(|(old, new)| consistency_path_len(old, new))
            .max();
        assert_eq!(worst, Some(MAX_CONSISTENCY_PATH));
    }

    #[test]
    fn every_proof_of_small_trees_verifies() {
        let all = leaves(40);
        for n in 1..=all.len() {
            let tree = &all[..n];
            let r = root::<Keccak256Tree>(tree);
            for (m, leaf) in tree.iter().enumerate() {
                let p = inclusion_proof::<Keccak256Tree>(tree, m as u64).unwrap();
                p.verify::<Keccak256Tree>(leaf, &r).unwrap();
            }
            for m in 1..=n {
                let old = root::<Keccak256Tree>(&tree[..m]);
                let p = consistency_proof::<Keccak256Tree>(tree, m as u64).unwrap();
                p.verify::<Keccak256Tree>(&old, &r).unwrap();
            }
        }
    }

    #[test]
    fn the_size_is_not_bound_by_the_hashing() {
        // Documented in the security notes: the verifier must take the size with the root.
        let tree = leaves(3);
        let r = root::<Keccak256Tree>(&tree);
        let mut p = inclusion_proof::<Keccak256Tree>(&tree, 0).unwrap();
        p.tree_size = 4;
        assert_eq!(p.verify::<Keccak256Tree>(&tree[0], &r), Ok(()));
    }

    #[test]
    fn out_of_range_requests_are_refused() {
        let tree = leaves(3);
        assert_eq!(
            inclusion_proof::<Keccak256Tree>(&tree, 3),
            Err(ProofError::IndexOutOfRange { index: 3, size: 3 })
        );
        assert_eq!(
            inclusion_proof::<Keccak256Tree>(&[], 0),
            Err(ProofError::IndexOutOfRange { index: 0, size: 0 })
        );
        assert_eq!(
            consistency_proof::<Keccak256Tree>(&tree, 0),
            Err(ProofError::BadSizes { old: 0, new: 3 })
        );
        assert_eq!(
            consistency_proof::<Keccak256Tree>(&tree, 4),
            Err(ProofError::BadSizes { old: 4, new: 3 })
        );
    }

    #[test]
    fn frontier_tracks_root_and_restores() {
        let all = leaves(100);
        let mut f = Frontier::<Keccak256Tree>::new();
        assert_eq!(f.root(), Keccak256Tree::empty_root());
        for (i, leaf) in all.iter().enumerate() {
            f.push(*leaf);
            assert_eq!(f.size(), i as u64 + 1);
            assert_eq!(f.subtree_roots().len(), f.size().count_ones() as usize);
            assert_eq!(f.root(), root::<Keccak256Tree>(&all[..=i]));
        }
        let restored =
            Frontier::<Keccak256Tree>::from_subtree_roots(f.size(), f.subtree_roots().to_vec())
                .unwrap();
        assert_eq!(restored.root(), f.root());
        assert!(Frontier::<Keccak256Tree>::from_subtree_roots(3, vec![[0; 32]]).is_err());
    }

    #[test]
    fn canonical_round_trip_and_limits() {
        let tree = leaves(11);
        let p = inclusion_proof::<Keccak256Tree>(&tree, 6).unwrap();
        let bytes = p.to_canonical_bytes();
        assert_eq!(bytes.len(), 8 + 8 + 4 + 32 * p.path.len());
        assert_eq!(&bytes[..8], &11u64.to_be_bytes());
        assert_eq!(&bytes[8..16], &6u64.to_be_bytes());
        assert_eq!(InclusionProof::from_canonical_bytes(&bytes).unwrap(), p);

        let mut long = Writer::new();
        long.u64(1);
        long.u64(0);
        long.u32(65);
        assert!(matches!(
            InclusionProof::from_canonical_bytes(&long.into_bytes()),
            Err(crate::Error::Decode(crate::DecodeError::TooLong {
                got: 65,
                limit: 64
            }))
        ));

        let c = consistency_proof::<Keccak256Tree>(&tree, 5).unwrap();
        assert_eq!(
            ConsistencyProof::from_canonical_bytes(&c.to_canonical_bytes()).unwrap(),
            c
        );
    }
}
