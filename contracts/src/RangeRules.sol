// SPDX-License-Identifier: Apache-2.0
// RangeRules: the generic range validator (the paper's sc1). Per on-chain attribute of a
// template: a min/max range, a set of allowed enum indices, or no rule; packed so that the
// rules of up to three attributes live in the one storage word the registry reads anyway.
pragma solidity 0.8.37;

/// @title The generic range validator: encoding and checking of packed rules.
/// @notice A template's rules are packed into a "hot word" (256 bits) and, when they do not
/// fit, a few "spill" slots of the registry's `_spill` mapping:
///
///   hot bits   0..7    n, the number of on-chain attributes (0..16)
///   hot bit    8       EXTERNAL: an IRecordValidator must also accept the record
///   hot bit    9       PRESENT: always 1, so a hot word is never zero
///   hot bits  16..47   the 2-bit rule code of attribute i at bits 16+2i
///   hot bits  64..255  the 64-bit rule words of attributes 0, 1, 2 (attribute i at 64+64i)
///   spill[handle << 8 | j]         rule words of attributes 3+4j .. 6+4j (64 bits each)
///   spill[handle << 8 | 0x80 | i]  the bounds of attribute i when its code is RANGE64
///
/// Rule codes and their 64-bit rule word:
///   0 ANY      any value is accepted; the word is unused
///   1 RANGE32  min in bits 0..31 and max in bits 32..63 (int32, inclusive)
///   2 RANGE64  the word is unused; min (bits 0..63) and max (64..127) are int64 in their
///              own spill slot, for bounds that do not fit in int32
///   3 SET      a bitmask: value v is allowed iff 0 <= v < 64 and bit v is set
library RangeRules {
    /// @notice What the administrator publishes for one on-chain attribute.
    enum RuleKind {
        Any,
        Range,
        Set
    }

    /// @notice One attribute's rule. `min`/`max` (inclusive) are used by `Range`; `allowed`
    /// (bit i = enum index i is allowed; booleans are 0b11) by `Set`.
    struct Rule {
        RuleKind kind;
        int64 min;
        int64 max;
        uint64 allowed;
    }

    /// @notice Most on-chain attributes of one template (protocol `template::MAX_ON_CHAIN`).
    uint256 internal constant MAX_ATTRIBUTES = 16;
    uint256 internal constant EXTERNAL = 1 << 8;
    uint256 internal constant PRESENT = 1 << 9;
    /// @notice Attributes whose rule word is in the hot word.
    uint256 internal constant HOT_ATTRIBUTES = 3;
    /// @notice Spill key offset of the RANGE64 bounds of an attribute.
    uint256 internal constant WIDE = 0x80;

    uint256 private constant ANY = 0;
    uint256 private constant RANGE32 = 1;
    uint256 private constant RANGE64 = 2;
    uint256 private constant SET = 3;
    uint256 private constant MASK64 = 0xffffffffffffffff;

    /// @notice Rule `index` is malformed (min above max, or an empty set).
    error InvalidRule(uint256 index);
    /// @notice More than MAX_ATTRIBUTES rules.
    error TooManyAttributes(uint256 count);

    /// @notice Packs `rules`: the hot word, the spill slots j = 0..3 of the attributes past
    /// the third, and the RANGE64 bounds per attribute (zero entries need not be stored).
    function encode(Rule[] calldata rules, bool external_)
        internal
        pure
        returns (uint256 hot, uint256[4] memory spill, uint256[16] memory wide)
    {
        uint256 n = rules.length;
        if (n > MAX_ATTRIBUTES) revert TooManyAttributes(n);
        hot = n | PRESENT;
        if (external_) hot |= EXTERNAL;
        for (uint256 i; i < n; ++i) {
            Rule calldata r = rules[i];
            uint256 code;
            uint256 word;
            if (r.kind == RuleKind.Range) {
                if (r.min > r.max) revert InvalidRule(i);
                if (r.min >= type(int32).min && r.max <= type(int32).max) {
                    code = RANGE32;
                    word = uint256(uint32(int32(r.min))) | (uint256(uint32(int32(r.max))) << 32);
                } else {
                    code = RANGE64;
                    wide[i] = uint256(uint64(r.min)) | (uint256(uint64(r.max)) << 64);
                }
            } else if (r.kind == RuleKind.Set) {
                if (r.allowed == 0) revert InvalidRule(i);
                code = SET;
                word = r.allowed;
            }
            hot |= code << (16 + 2 * i);
            if (i < HOT_ATTRIBUTES) {
                hot |= word << (64 + 64 * i);
            } else {
                spill[(i - HOT_ATTRIBUTES) / 4] |= word << (64 * ((i - HOT_ATTRIBUTES) % 4));
            }
        }
    }

    /// @notice Unpacks the rules of a template, for views.
    function decode(uint256 hot, mapping(uint256 => uint256) storage spill, uint256 handle)
        internal
        view
        returns (Rule[] memory rules)
    {
        uint256 n = hot & 0xff;
        rules = new Rule[](n);
        for (uint256 i; i < n; ++i) {
            uint256 code = (hot >> (16 + 2 * i)) & 3;
            uint256 word = i < HOT_ATTRIBUTES
                ? (hot >> (64 + 64 * i)) & MASK64
                : (spill[(handle << 8) | ((i - HOT_ATTRIBUTES) / 4)] >> (64 * ((i - HOT_ATTRIBUTES) % 4))) & MASK64;
            if (code == RANGE32) {
                rules[i] = Rule(RuleKind.Range, int32(uint32(word)), int32(uint32(word >> 32)), 0);
            } else if (code == RANGE64) {
                uint256 bounds = spill[(handle << 8) | WIDE | i];
                rules[i] = Rule(RuleKind.Range, int64(uint64(bounds)), int64(uint64(bounds >> 64)), 0);
            } else if (code == SET) {
                rules[i] = Rule(RuleKind.Set, 0, 0, uint64(word));
            }
        }
    }

    /// @notice Checks the values against the rules: 0 when all pass, else 1 + the index of
    /// the first attribute that fails.
    /// @dev Value i is read from calldata at `offset + i * stride` as
    /// `signextend(7, word >> (256 - 8 * stride))`: stride 8 for the registry's packed int64
    /// encoding, stride 32 for ABI-encoded int64 arrays. The caller has checked that
    /// exactly n values are present. `spillSlot` is the storage slot of the spill mapping.
    /// Written in assembly because it runs on every anchor; `decode` is the readable
    /// counterpart and reads the same layout.
    function check(uint256 hot, uint256 spillSlot, uint256 handle, uint256 offset, uint256 stride)
        internal
        view
        returns (uint256 verdict)
    {
        assembly ("memory-safe") {
            // spill[key], with scratch word 0x20 holding the mapping's slot.
            function spilled(key) -> w {
                mstore(0x00, key)
                w := sload(keccak256(0x00, 0x40))
            }
            // Whether v breaks rule code c (1 RANGE32 or 3 SET; 0 ANY never breaks) with
            // rule word w in its low 64 bits. Branch-free: both checks are computed.
            function breaks(c, v, w) -> bad {
                let lo := signextend(3, w)
                bad := or(
                    // RANGE32: as unsigned numbers, v - min <= max - min iff min <= v <= max.
                    and(eq(c, 1), gt(sub(v, lo), sub(signextend(3, shr(32, w)), lo))),
                    // SET: 0 <= v < 64 and bit v set (a negative v is huge unsigned).
                    and(eq(c, 3), iszero(and(lt(v, 64), and(shr(v, w), 1))))
                )
            }
            // The common case, unrolled: at most three attributes, none RANGE64, so every
            // rule word is in the hot word.
            function runHot(h, from, step) -> result {
                let n := and(h, 0xff)
                let shift := sub(256, shl(3, step))
                if iszero(n) { leave }
                if breaks(and(shr(16, h), 3), signextend(7, shr(shift, calldataload(from))), shr(64, h)) {
                    result := 1
                    leave
                }
                if lt(n, 2) { leave }
                let v1 := signextend(7, shr(shift, calldataload(add(from, step))))
                if breaks(and(shr(18, h), 3), v1, shr(128, h)) {
                    result := 2
                    leave
                }
                if lt(n, 3) { leave }
                let v2 := signextend(7, shr(shift, calldataload(add(from, shl(1, step)))))
                if breaks(and(shr(20, h), 3), v2, shr(192, h)) { result := 3 }
            }
            // The first failing attribute (1-based), or 0. `codes` and `words` are shift
            // registers: the current attribute's code and rule word are in their low bits.
            function run(h, base, from, step) -> result {
                let shift := sub(256, shl(3, step))
                let end := add(from, mul(and(h, 0xff), step))
                let codes := shr(16, h)
                let words := shr(64, h)
                let refill := add(from, mul(3, step))
                for { let p := from } lt(p, end) { p := add(p, step) } {
                    if eq(p, refill) {
                        // Attributes 3+4j..6+4j: their rule words are in spill slot j.
                        words := spilled(or(base, div(sub(p, from), shl(2, step))))
                        refill := add(refill, shl(2, step))
                    }
                    let c := and(codes, 3)
                    if c {
                        let v := signextend(7, shr(shift, calldataload(p)))
                        let bad := 0
                        switch c
                        case 1 {
                            // RANGE32: min = bits 0..31, max = bits 32..63. As unsigned
                            // numbers, v - min <= max - min exactly when min <= v <= max.
                            let lo := signextend(3, words)
                            bad := gt(sub(v, lo), sub(signextend(3, shr(32, words)), lo))
                        }
                        case 3 {
                            // SET: 0 <= v < 64 and bit v set (a negative v is huge unsigned).
                            bad := iszero(and(lt(v, 64), and(shr(v, words), 1)))
                        }
                        default {
                            // RANGE64: int64 min and max in the attribute's own spill slot.
                            let b := spilled(or(base, or(0x80, div(sub(p, from), step))))
                            let lo := signextend(7, b)
                            bad := gt(sub(v, lo), sub(signextend(7, shr(64, b)), lo))
                        }
                        if bad {
                            result := add(div(sub(p, from), step), 1)
                            leave
                        }
                    }
                    codes := shr(2, codes)
                    words := shr(64, words)
                }
            }
            // RANGE64 codes (binary 10) among attributes 0..2, if any.
            let wide := and(and(shr(17, hot), 0x15), not(shr(16, hot)))
            switch and(lt(and(hot, 0xff), 4), iszero(wide))
            case 1 { verdict := runHot(hot, offset, stride) }
            default {
                mstore(0x20, spillSlot)
                verdict := run(hot, shl(8, handle), offset, stride)
            }
        }
    }
}
