// SPDX-License-Identifier: Apache-2.0
// MediBlockRegistry: the MediBlock registry contract, the address everyone uses. It keeps
// who may submit (relays and enrolled wallets), the transaction templates with their
// frozen on-chain rules, and, per relay, a log: the tickets its records have used and the
// latest checkpoint of its Merkle log. Every anchored record, with its verdict and the hash
// of the values that verdict judged, is in its RecordAnchored event. This file holds the
// three operations relays and wallets send; the admin functions and views live in
// MediBlockRegistryAdmin, reached through the fallback.
// docs/CONTRACTS.md explains every function, event and invariant.
pragma solidity 0.8.37;

import {MediBlockRegistryAdmin} from "./MediBlockRegistryAdmin.sol";
import {RangeRules} from "./RangeRules.sol";
import {RegistryStorage} from "./RegistryStorage.sol";

/// @title MediBlock registry: submitters, templates, records and checkpoints.
/// @notice Nothing personal is stored or logged here: records are 128-bit ids (a relay's
/// ticket number, then 64 random bits), keccak256 commitments, template handles and
/// verdicts. The de-identified on-chain values are checked from calldata and never stored;
/// their hash is logged with the verdict, so the verdict is bound to the record. A ticket is
/// used at most once per log, hence a tid is anchored at most once in a log.
///
/// The contract has no named functions, only a fallback, so that the three operations
/// senders pay for skip Solidity's function dispatcher. The first calldata byte selects:
///
///   0x01 OP_ANCHOR, sent by a relay (51 + 8n bytes):
///     0x01 | tid[16] | commitment[32] | template handle u16 | n values, int64 each
///   0x02 OP_ANCHOR_COSIGNED, sent by an enrolled wallet (124 + 8n bytes):
///     0x02 | tid[16] | commitment[32] | template handle u16 | deadline u64
///     | r[32] | s[32] | v u8 | n values, int64 each
///   0x03 OP_CHECKPOINT, sent by a relay (41 bytes):
///     0x03 | tree size u64 | root[32]
///
/// (big-endian throughout; a tid is a relay-issued ticket u64 then 8 random bytes, and the
/// registry marks each ticket used once in the ticket space of the relay's log: the
/// sender's on OP_ANCHOR, the co-signer's on OP_ANCHOR_COSIGNED). Any other calldata is a
/// standard ABI call of the admin module (MediBlockRegistryAdmin), executed here by
/// DELEGATECALL on this contract's storage; the artifact's ABI is that module's ABI. No
/// module function selector starts with 0x01, 0x02 or 0x03 (the build script checks), so
/// an ABI call never reaches an operation.
contract MediBlockRegistry is RegistryStorage {
    uint256 private constant OP_ANCHOR = 0x01;
    uint256 private constant OP_ANCHOR_COSIGNED = 0x02;
    uint256 private constant OP_CHECKPOINT = 0x03;
    uint256 private constant ANCHOR_HEADER = 51;
    uint256 private constant COSIGNED_HEADER = 124;
    uint256 private constant CHECKPOINT_LENGTH = 41;
    uint256 private constant TID_MASK = 0xffffffffffffffffffffffffffffffff00000000000000000000000000000000;
    /// @dev secp256k1n / 2: signatures with a larger s are refused (EIP-2).
    uint256 private constant HALF_N = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;

    /// @dev The admin and view module, deployed by the constructor.
    address private immutable _module;
    bytes32 private immutable _cachedDomainSeparator;
    uint256 private immutable _cachedChainId;

    /// @param admin The first administrator.
    constructor(address admin) {
        if (admin == address(0)) revert ZeroAddress();
        _owner = admin;
        emit OwnershipTransferred(address(0), admin);
        _module = address(new MediBlockRegistryAdmin());
        _cachedChainId = block.chainid;
        _cachedDomainSeparator = _buildDomainSeparator();
    }

    /// @notice The three packed operations, and every ABI call of the admin module.
    fallback() external {
        uint256 op;
        assembly {
            op := shr(248, calldataload(0))
        }
        if (op == OP_ANCHOR) {
            _anchor();
        } else if (op == OP_ANCHOR_COSIGNED) {
            _anchorCosigned();
        } else if (op == OP_CHECKPOINT) {
            _checkpoint();
        } else {
            _delegate();
        }
    }

    /// @dev OP_ANCHOR: a relay anchors one record.
    function _anchor() private {
        uint256 handle;
        uint256 hot;
        assembly ("memory-safe") {
            handle := shr(240, calldataload(49))
            mstore(0x00, or(shl(16, caller()), handle))
            mstore(0x20, _grants.slot)
            hot := sload(keccak256(0x00, 0x40))
        }
        // No grant: not a relay, or an unknown or inactive template.
        if (hot == 0) _refuse(msg.sender, handle, false);
        uint256 expected;
        unchecked {
            expected = ANCHOR_HEADER + ((hot & 0xff) << 3);
        }
        if (msg.data.length != expected) revert BadLength(msg.data.length, expected);
        _store(hot, (handle << 16) | (_verdict(hot, handle, ANCHOR_HEADER) << 8) | PATH_RELAY, ANCHOR_HEADER);
    }

    /// @dev OP_ANCHOR_COSIGNED: an enrolled wallet anchors a record a relay co-signed for it.
    function _anchorCosigned() private {
        if (_roleOf[msg.sender] != ROLE_WALLET) revert Unauthorized(msg.sender);
        uint256 length = msg.data.length;
        uint256 n;
        unchecked {
            n = (length - COSIGNED_HEADER) >> 3;
            if (length < COSIGNED_HEADER || length != COSIGNED_HEADER + (n << 3)) {
                revert BadLength(length, COSIGNED_HEADER);
            }
        }
        uint256 tid;
        uint256 commitment;
        uint256 handle;
        uint256 deadline;
        assembly {
            tid := and(calldataload(1), TID_MASK)
            commitment := calldataload(17)
            handle := shr(240, calldataload(49))
            deadline := shr(192, calldataload(51))
        }
        if (block.timestamp > deadline) revert Expired(uint64(deadline));
        bytes32 separator = block.chainid == _cachedChainId ? _cachedDomainSeparator : _buildDomainSeparator();
        address signer = _recover(
            _recordDigest(separator, tid, commitment, handle, COSIGNED_HEADER, 8, n, deadline, msg.sender)
        );
        uint256 hot;
        assembly ("memory-safe") {
            mstore(0x00, or(shl(16, signer), handle))
            mstore(0x20, _grants.slot)
            hot := sload(keccak256(0x00, 0x40))
        }
        // No grant: the signer is not a relay, or an unknown or inactive template.
        if (hot == 0) _refuse(signer, handle, true);
        if (hot & 0xff != n) revert BadLength(length, COSIGNED_HEADER + ((hot & 0xff) << 3));
        // The ticket is the co-signing relay's: its log is in the signer's grant.
        _store(hot, (handle << 16) | (_verdict(hot, handle, COSIGNED_HEADER) << 8) | PATH_WALLET, COSIGNED_HEADER);
    }

    /// @dev The template's range rules, then its external validator if it has one.
    function _verdict(uint256 hot, uint256 handle, uint256 offset) private view returns (uint256 verdict) {
        uint256 spillSlot;
        assembly {
            spillSlot := _spill.slot
        }
        verdict = RangeRules.check(hot, spillSlot, handle, offset, 8);
        if (verdict == 0 && hot & RangeRules.EXTERNAL != 0) {
            verdict = _external(handle, hot & 0xff, offset, 8);
        }
    }

    /// @dev Marks the ticket of the calldata's tid (bytes 1..17; the ticket is its first 8
    /// bytes) used, once, in the ticket space of the log named by `grant` (bits 48..63), and
    /// logs the record: the tid, the commitment (bytes 17..49), the hash of the n values at
    /// `valuesAt` (exactly the bytes the rules judged), and `meta` (handle | verdict | path)
    /// with the log and the sender.
    function _store(uint256 grant, uint256 meta, uint256 valuesAt) private {
        bytes32 topic = RecordAnchored.selector;
        uint256 tid;
        bool duplicate;
        assembly ("memory-safe") {
            let log := and(shr(GRANT_LOG_SHIFT, grant), 0xffff)
            tid := and(calldataload(1), TID_MASK)
            let ticket := shr(192, tid)
            mstore(0x00, or(shl(56, log), shr(8, ticket)))
            mstore(0x20, _usedTickets.slot)
            let slot := keccak256(0x00, 0x40)
            let bits := sload(slot)
            let bit := shl(and(ticket, 0xff), 1)
            duplicate := iszero(iszero(and(bits, bit)))
            if iszero(duplicate) {
                sstore(slot, or(bits, bit))
                // Scratch memory past the free memory pointer; nothing is allocated.
                let m := mload(0x40)
                let size := shl(3, and(grant, 0xff))
                calldatacopy(add(m, 0x60), valuesAt, size)
                mstore(add(m, 0x20), keccak256(add(m, 0x60), size))
                mstore(m, calldataload(17))
                mstore(add(m, 0x40), or(or(shl(96, caller()), shl(32, log)), meta))
                log2(m, 0x60, topic, tid)
            }
        }
        if (duplicate) revert AlreadyAnchored(bytes16(bytes32(tid)));
    }

    /// @dev ecrecover of the packed (r, s, v) at calldata 59..124. Refuses a high s, a v
    /// other than 27 or 28, and a signature that recovers to nobody.
    function _recover(bytes32 digest) private view returns (address signer) {
        bool malformed;
        assembly ("memory-safe") {
            let r := calldataload(59)
            let s := calldataload(91)
            let v := shr(248, calldataload(123))
            malformed := or(gt(s, HALF_N), iszero(or(eq(v, 27), eq(v, 28))))
            if iszero(malformed) {
                let m := mload(0x40)
                mstore(m, digest)
                mstore(add(m, 0x20), v)
                mstore(add(m, 0x40), r)
                mstore(add(m, 0x60), s)
                // The precompile returns nothing for a bad signature: clear the output first.
                mstore(0x00, 0)
                pop(staticcall(gas(), 0x01, m, 0x80, 0x00, 0x20))
                signer := mload(0x00)
            }
        }
        if (signer == address(0)) revert BadCosignature();
    }

    /// @dev OP_CHECKPOINT: a relay anchors (size, root) of its own log; the size must grow.
    function _checkpoint() private {
        uint256 log = _logOf[msg.sender];
        if (log == 0) revert Unauthorized(msg.sender);
        if (msg.data.length != CHECKPOINT_LENGTH) revert BadLength(msg.data.length, CHECKPOINT_LENGTH);
        uint256 size;
        bytes32 root;
        assembly {
            size := shr(192, calldataload(1))
            root := calldataload(9)
        }
        uint256 head = _checkpointHead[log];
        uint64 latest = uint64(head);
        if (size <= latest) revert CheckpointNotGrowing(uint64(size), latest);
        _checkpointRoot[log] = root;
        unchecked {
            _checkpointHead[log] = size | (block.number << 64) | (((head >> 128) + 1) << 128);
        }
        emit CheckpointAnchored(uint16(log), uint64(size), root, msg.sender);
    }

    /// @dev Runs the admin module's code on this contract's storage and returns its result.
    function _delegate() private {
        address module = _module;
        assembly {
            calldatacopy(0, 0, calldatasize())
            let ok := delegatecall(gas(), module, 0, calldatasize(), 0, 0)
            returndatacopy(0, 0, returndatasize())
            if iszero(ok) { revert(0, returndatasize()) }
            return(0, returndatasize())
        }
    }
}
