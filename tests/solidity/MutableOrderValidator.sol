// SPDX-License-Identifier: Apache-2.0
// MutableOrderValidator: registry v1's OrderValidator, kept only as an attacker's contract for
// tests/tests/attacks.rs (issue 12, attack 2). Its owner -- whoever deployed it -- rewrites
// the pairs of any (registry, template) whenever it likes, so a verdict it gave yesterday is
// not the verdict `verdictFor` gives today. Registry v2 must refuse to register it. The code
// is v1's OrderValidator and Owned2Step (contracts/src at fd1969a^), folded into one file.
pragma solidity 0.8.37;

interface IRecordValidator {
    function validate(uint16 template, int64[] calldata values) external view returns (uint8 verdict);
}

contract MutableOrderValidator is IRecordValidator {
    uint256 public constant MAX_PAIRS = 15;

    address public owner;
    address public pendingOwner;

    /// @dev pairs[registry][template]: pair p in bits 16p..16p+15 (greater in the high
    /// byte), the count in bits 248..255.
    mapping(address registry => mapping(uint16 template => uint256 packed)) private _pairs;

    event PairsSet(address indexed registry, uint16 indexed template, uint8[2][] pairs);
    event OwnershipTransferStarted(address indexed previousOwner, address indexed newOwner);
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);

    error InvalidPairs();
    error NotOwner(address caller);
    error NotPendingOwner(address caller);
    error ZeroAddress();

    constructor(address initialOwner) {
        if (initialOwner == address(0)) revert ZeroAddress();
        owner = initialOwner;
        emit OwnershipTransferred(address(0), initialOwner);
    }

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        _;
    }

    function transferOwnership(address newOwner) external onlyOwner {
        pendingOwner = newOwner;
        emit OwnershipTransferStarted(msg.sender, newOwner);
    }

    function acceptOwnership() external {
        if (msg.sender != pendingOwner || msg.sender == address(0)) revert NotPendingOwner(msg.sender);
        address previous = owner;
        owner = msg.sender;
        delete pendingOwner;
        emit OwnershipTransferred(previous, msg.sender);
    }

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

    function pairsOf(address registry, uint16 template) external view returns (uint8[2][] memory pairs) {
        uint256 packed = _pairs[registry][template];
        pairs = new uint8[2][](packed >> 248);
        for (uint256 p; p < pairs.length; ++p) {
            pairs[p] = [uint8(packed >> (16 * p + 8)), uint8(packed >> (16 * p))];
        }
    }

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
