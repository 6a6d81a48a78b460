// SPDX-License-Identifier: Apache-2.0
// OrderValidator: an IRecordValidator (one of the paper's sc2..scw) for rules that relate
// two attributes of the same record, e.g. "systolic pressure above diastolic pressure",
// which per-attribute ranges cannot express. Configured per (registry, template).
pragma solidity 0.8.37;

import {IRecordValidator} from "./IRecordValidator.sol";
import {Owned2Step} from "./Owned2Step.sol";

/// @title Ordering rules between on-chain attributes.
/// @notice For each (registry, template handle) the owner sets a list of pairs
/// (greater, lesser) of on-chain attribute indices; a record is valid when
/// `values[greater] > values[lesser]` for every pair. The verdict of a failing pair is
/// `1 + greater`.
contract OrderValidator is IRecordValidator, Owned2Step {
    /// @notice Most pairs per template (two bytes each, plus a count byte, in one word).
    uint256 public constant MAX_PAIRS = 15;

    /// @dev pairs[registry][template]: pair p in bits 16p..16p+15 (greater in the high
    /// byte), the count in bits 248..255.
    mapping(address registry => mapping(uint16 template => uint256 packed)) private _pairs;

    /// @notice The pairs of (registry, template) were replaced.
    event PairsSet(address indexed registry, uint16 indexed template, uint8[2][] pairs);

    /// @notice A pair is malformed (indices equal or not below 16) or there are too many.
    error InvalidPairs();

    constructor(address admin) Owned2Step(admin) {}

    /// @notice Replaces the pairs of (registry, template); an empty list accepts everything.
    function setPairs(address registry, uint16 template, uint8[2][] calldata pairs) external onlyOwner {
        if (pairs.length > MAX_PAIRS) revert InvalidPairs();
        uint256 packed = pairs.length << 248;
        for (uint256 p; p < pairs.length; ++p) {
            (uint8 greater, uint8 lesser) = (pairs[p][0], pairs[p][1]);
            if (greater == lesser || greater >= 16 || lesser >= 16) revert InvalidPairs();
            packed |= ((uint256(greater) << 8) | lesser) << (16 * p);
        }
        _pairs[registry][template] = packed;
        emit PairsSet(registry, template, pairs);
    }

    /// @notice The pairs of (registry, template).
    function pairsOf(address registry, uint16 template) external view returns (uint8[2][] memory pairs) {
        uint256 packed = _pairs[registry][template];
        pairs = new uint8[2][](packed >> 248);
        for (uint256 p; p < pairs.length; ++p) {
            pairs[p] = [uint8(packed >> (16 * p + 8)), uint8(packed >> (16 * p))];
        }
    }

    /// @inheritdoc IRecordValidator
    function validate(uint16 template, int64[] calldata values) external view returns (uint8) {
        uint256 packed = _pairs[msg.sender][template];
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
