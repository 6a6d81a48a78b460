// SPDX-License-Identifier: Apache-2.0
// OrderValidator: an IRecordValidator (one of the paper's sc2..scw) for rules that relate
// two attributes of the same record, e.g. "systolic pressure above diastolic pressure",
// which per-attribute ranges cannot express. Immutable: its pairs are fixed when it is
// deployed, so a template that points at it keeps its rules for good.
pragma solidity 0.8.37;

import {IRecordValidator} from "./IRecordValidator.sol";

/// @title Ordering rules between on-chain attributes, fixed at deployment.
/// @notice A list of pairs (greater, lesser) of on-chain attribute indices; a record is
/// valid when `values[greater] > values[lesser]` for every pair. The verdict of a failing
/// pair is `1 + greater`. There is no owner and no setter: another rule set is another
/// deployment (and, in the registry, another template version). The code reads no storage
/// and no environment, as the registry requires of a validator.
contract OrderValidator is IRecordValidator {
    /// @notice Most pairs (two bytes each, plus a count byte, in one word).
    uint256 public constant MAX_PAIRS = 15;

    /// @dev Pair p in bits 16p..16p+15 (greater in the high byte), the count in bits 248..255.
    uint256 private immutable _packed;

    /// @notice A pair is malformed (indices equal or not below 16) or there are too many.
    error InvalidPairs();

    /// @param rules The (greater, lesser) pairs; an empty list accepts everything.
    constructor(uint8[2][] memory rules) {
        if (rules.length > MAX_PAIRS) revert InvalidPairs();
        uint256 packed = rules.length << 248;
        for (uint256 p; p < rules.length; ++p) {
            (uint8 greater, uint8 lesser) = (rules[p][0], rules[p][1]);
            if (greater == lesser || greater >= 16 || lesser >= 16) revert InvalidPairs();
            packed |= ((uint256(greater) << 8) | lesser) << (16 * p);
        }
        _packed = packed;
    }

    /// @notice The pairs, as deployed.
    function pairs() external view returns (uint8[2][] memory out) {
        uint256 packed = _packed;
        out = new uint8[2][](packed >> 248);
        for (uint256 p; p < out.length; ++p) {
            out[p] = [uint8(packed >> (16 * p + 8)), uint8(packed >> (16 * p))];
        }
    }

    /// @inheritdoc IRecordValidator
    /// @dev The same pairs for every template that points at this deployment.
    function validate(uint16, int64[] calldata values) external view returns (uint8) {
        uint256 packed = _packed;
        uint256 count = packed >> 248;
        for (uint256 p; p < count; ++p) {
            uint256 greater = uint8(packed >> (16 * p + 8));
            uint256 lesser = uint8(packed >> (16 * p));
            if (greater >= values.length || lesser >= values.length) return 255;
            if (values[greater] <= values[lesser]) return uint8(greater + 1);
        }
        return 0;
    }
}
