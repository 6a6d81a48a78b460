// SPDX-License-Identifier: Apache-2.0
// MerkleLog: verification of inclusion and consistency proofs of the relay's append-only
// record log, an RFC 6962 / RFC 9162 Merkle tree over keccak256 (leaf = H(0x00 || data),
// node = H(0x01 || left || right)) -- exactly the tree of protocol/src/merkle.rs.
pragma solidity 0.8.37;

/// @title RFC 9162 proof verification over keccak256.
/// @notice Both algorithms are transcribed step by step from RFC 9162: inclusion from
/// section 2.1.3.2, consistency from section 2.1.4.2. The step numbers are the RFC's.
library MerkleLog {
    /// @notice keccak256(0x00 || data): the hash of a leaf of the log.
    function leafHash(bytes memory data) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(bytes1(0x00), data));
    }

    /// @notice keccak256(0x01 || left || right): the hash of an interior node.
    function nodeHash(bytes32 left, bytes32 right) internal pure returns (bytes32 h) {
        assembly ("memory-safe") {
            // Scratch memory past the free memory pointer; nothing is allocated.
            let m := mload(0x40)
            mstore8(m, 0x01)
            mstore(add(m, 1), left)
            mstore(add(m, 33), right)
            h := keccak256(m, 65)
        }
    }

    /// @notice The root that `path` leads to from leaf `index` of a tree of `size` leaves
    /// whose leaf hash is `leaf` (RFC 9162 section 2.1.3.2, steps 1-5 without the final
    /// root comparison). `ok` is false when the proof does not fit the tree shape.
    function rootFromInclusionProof(bytes32 leaf, uint256 index, uint256 size, bytes32[] calldata path)
        internal
        pure
        returns (bytes32 root, bool ok)
    {
        // 1. leaf_index must be below tree_size.
        if (index >= size) return (0, false);
        // 2. fn = leaf_index, sn = tree_size - 1.
        uint256 fn = index;
        uint256 sn = size - 1;
        // 3. r = hash.
        bytes32 r = leaf;
        // 4. For each value p in the inclusion_path array:
        for (uint256 i; i < path.length; ++i) {
            // a. If sn is 0, fail.
            if (sn == 0) return (0, false);
            bytes32 p = path[i];
            // b. If LSB(fn) is set, or if fn is equal to sn:
            if (fn & 1 == 1 || fn == sn) {
                // i. r = HASH(0x01 || p || r)
                r = nodeHash(p, r);
                // ii. If LSB(fn) is not set, right-shift fn and sn equally until either
                //     LSB(fn) is set or fn is 0.
                while (fn & 1 == 0 && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
            } else {
                // Otherwise: r = HASH(0x01 || r || p)
                r = nodeHash(r, p);
            }
            // c. Right-shift both fn and sn one time.
            fn >>= 1;
            sn >>= 1;
        }
        // 5. sn must be 0 (the caller compares r with the root).
        if (sn != 0) return (0, false);
        return (r, true);
    }

    /// @notice Whether `path` proves that the tree of `first` leaves with root `firstRoot`
    /// is a prefix of the tree of `second` leaves with root `secondRoot` (RFC 9162 section
    /// 2.1.4.2). Equal sizes need an empty proof and equal roots; `first` must not be 0.
    function verifyConsistency(
        uint256 first,
        uint256 second,
        bytes32 firstRoot,
        bytes32 secondRoot,
        bytes32[] calldata path
    ) internal pure returns (bool) {
        if (first == 0 || first > second) return false;
        if (first == second) return path.length == 0 && firstRoot == secondRoot;
        // 1. An empty consistency_path fails.
        if (path.length == 0) return false;
        // 2. If first is an exact power of 2, prepend first_hash to the path: we start from
        //    it as the seed instead of from path[0].
        bool seeded = first & (first - 1) == 0;
        // 3. fn = first - 1, sn = second - 1.
        uint256 fn = first - 1;
        uint256 sn = second - 1;
        // 4. If LSB(fn) is set, right-shift fn and sn equally until LSB(fn) is not set.
        while (fn & 1 == 1) {
            fn >>= 1;
            sn >>= 1;
        }
        // 5. fr = sr = the first value of the (possibly prepended) path.
        bytes32 fr = seeded ? firstRoot : path[0];
        bytes32 sr = fr;
        // 6. For each subsequent value c in the path:
        for (uint256 i = seeded ? 0 : 1; i < path.length; ++i) {
            // a. If sn is 0, fail.
            if (sn == 0) return false;
            bytes32 c = path[i];
            // b. If LSB(fn) is set, or if fn is equal to sn:
            if (fn & 1 == 1 || fn == sn) {
                // i. fr = HASH(0x01 || c || fr), sr = HASH(0x01 || c || sr)
                fr = nodeHash(c, fr);
                sr = nodeHash(c, sr);
                // ii. If LSB(fn) is not set, right-shift fn and sn equally until either
                //     LSB(fn) is set or fn is 0.
                while (fn & 1 == 0 && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
            } else {
                // Otherwise: sr = HASH(0x01 || sr || c)
                sr = nodeHash(sr, c);
            }
            // c. Right-shift both fn and sn one time.
            fn >>= 1;
            sn >>= 1;
        }
        // 7. fr == first_hash, sr == second_hash and sn == 0.
        return sn == 0 && fr == firstRoot && sr == secondRoot;
    }
}
