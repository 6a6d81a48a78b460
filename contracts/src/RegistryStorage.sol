// SPDX-License-Identifier: Apache-2.0
// RegistryStorage: the single storage layout, events, errors and shared helpers of the
// MediBlock registry. Both halves of the registry inherit it -- MediBlockRegistry (the
// deployed contract: hot paths) and MediBlockRegistryAdmin (its admin and view module,
// reached by DELEGATECALL) -- so their storage layouts are identical by construction.
pragma solidity 0.8.37;

import {IRecordValidator} from "./IRecordValidator.sol";

/// @title Storage, events and errors of the MediBlock registry.
/// @notice Declares no external function: everything here is shared by the two halves.
abstract contract RegistryStorage {
    // ---------------------------------------------------------------- constants

    /// @dev `_roleOf` of an account that may not submit.
    uint8 internal constant ROLE_NONE = 0;
    /// @dev `_roleOf` of a relay: anchors records and checkpoints, co-signs wallet records.
    uint8 internal constant ROLE_RELAY = 1;
    /// @dev `_roleOf` of an enrolled wallet: anchors records a relay co-signed for it.
    uint8 internal constant ROLE_WALLET = 2;

    /// @dev Record path (low byte of the record metadata): sent by a relay.
    uint256 internal constant PATH_RELAY = 1;
    /// @dev Record path: sent by an enrolled wallet with a relay's co-signature.
    uint256 internal constant PATH_WALLET = 2;

    /// @dev Verdict of a record an external validator rejected without an attribute index.
    uint256 internal constant VERDICT_REJECTED = 255;

    /// @dev Most relays at once (bounds the admin loops that maintain grants).
    uint256 internal constant MAX_RELAYS = 8;
    /// @dev Most active templates at once (bounds the same loops).
    uint256 internal constant MAX_ACTIVE_TEMPLATES = 256;
    /// @dev Most logs ever created (log ids are uint16, counted from 1).
    uint256 internal constant MAX_LOGS = 65535;
    /// @dev `registryVersion()`: 2 binds verdicts to values and keeps a log per relay.
    uint32 internal constant REGISTRY_VERSION = 2;
    /// @dev Bit position of the relay's log id in a grant word (bits 48..63 of a hot word
    /// are unused by RangeRules).
    uint256 internal constant GRANT_LOG_SHIFT = 48;

    /// @dev EIP-712 type of the relay's co-signature over a wallet-submitted record.
    bytes32 internal constant RECORD_TYPEHASH = keccak256(
        "Record(bytes16 tid,bytes32 commitment,uint16 template,int64[] values,uint64 deadline,address submitter)"
    );
    bytes32 internal constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    string internal constant DOMAIN_NAME = "MediBlock Registry";
    string internal constant DOMAIN_VERSION = "1";

    // ---------------------------------------------------------------- storage
    // Append only: the deployed registry and its module must agree slot for slot.

    /// @dev A published template. Immutable once registered except `activePos`.
    struct Template {
        bytes32 id; // keccak256 of the template id's UTF-8 bytes
        bytes32 templateHash; // keccak256 of the template's canonical encoding
        uint256 hot; // packed rules, see RangeRules
        address validator; // optional IRecordValidator, zero when none
        uint32 version;
        uint16 activePos; // 1-based position in _active; 0 when inactive
        bytes32 validatorCodeHash; // the validator's EXTCODEHASH at registration, zero when none
    }

    address internal _owner;
    address internal _pendingOwner;

    mapping(address account => uint8 role) internal _roleOf;
    address[] internal _relays;

    uint16 internal _templateCount;
    mapping(uint256 handle => Template) internal _templates;
    mapping(bytes32 ref => uint16 handle) internal _handleByRef;
    /// @dev Rule words that do not fit in a template's hot word, keyed `handle << 8 | j`.
    mapping(uint256 key => uint256 words) internal _spill;
    uint16[] internal _active;

    /// @dev `_grants[relay << 16 | handle]` is the template's hot word with the relay's log
    /// id in bits 48..63 while `relay` is a relay and the template is active, and zero
    /// otherwise: one cold read on the hot path answers "may this relay anchor (or co-sign)
    /// this template, by which rules, and into which log?".
    mapping(uint256 key => uint256 grant) internal _grants;

    /// @dev The ticket bitmaps, one per log: bit `ticket & 0xff` of
    /// `_usedTickets[log << 56 | ticket >> 8]` is set once a record of that log whose tid
    /// carries `ticket` (the tid's first 8 bytes, big-endian) is anchored, and never cleared.
    /// 256 tickets share a word, so only the first of a word pays for a fresh slot. The
    /// records themselves are in their RecordAnchored events.
    mapping(uint256 key => uint256 bits) internal _usedTickets;

    /// @dev The log id of each current relay (zero for every other account).
    mapping(address relay => uint16 log) internal _logOf;
    /// @dev Logs created so far; ids are 1.._logCount.
    uint16 internal _logCount;
    /// @dev The relay that writes each log now; zero once its relay was removed (frozen).
    mapping(uint256 log => address writer) internal _logWriter;
    /// @dev Root of each log's latest anchored checkpoint.
    mapping(uint256 log => bytes32 root) internal _checkpointRoot;
    /// @dev Per log: size (bits 0..63) | block number (64..127) | number of checkpoints (128..191).
    mapping(uint256 log => uint256 head) internal _checkpointHead;

    // ---------------------------------------------------------------- events

    /// @notice A record was anchored. `valuesHash` is keccak256 of exactly the values the
    /// rules judged (int64 big-endian each, concatenated), which binds the verdict to the
    /// record: anyone holding the signed record recomputes them. `info` = submitter (bits
    /// 96..255) | log (bits 32..47) | template handle (bits 16..31) | verdict (bits 8..15:
    /// 0 valid, 1 + i rejected at on-chain attribute i, 255 rejected by an external
    /// validator) | path (bits 0..7: 1 relay, 2 wallet).
    event RecordAnchored(bytes16 indexed tid, bytes32 commitment, bytes32 valuesHash, uint256 info);
    /// @notice A checkpoint (tree size, root) of log `log` was anchored by its relay.
    event CheckpointAnchored(uint16 indexed log, uint64 indexed size, bytes32 root, address submitter);
    /// @notice `writer` now writes log `log` (zero: the log is frozen, its relay removed).
    event LogWriterChanged(uint16 indexed log, address indexed writer);
    /// @notice `account` was given `role` (1 relay, 2 wallet).
    event SubmitterAdded(address indexed account, uint8 role);
    /// @notice `account` lost `role`.
    event SubmitterRemoved(address indexed account, uint8 role);
    /// @notice A template version was published under `handle`.
    event TemplateRegistered(
        uint16 indexed handle, bytes32 indexed id, uint32 version, bytes32 templateHash, address validator
    );
    /// @notice Template `handle` was activated or deactivated.
    event TemplateStatusChanged(uint16 indexed handle, bool active);
    /// @notice A transfer of the admin role to `newOwner` was proposed (zero: cancelled).
    event OwnershipTransferStarted(address indexed previousOwner, address indexed newOwner);
    /// @notice `newOwner` is now the admin.
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);

    // ---------------------------------------------------------------- errors

    /// @notice `account` may not do this (wrong role, or not a submitter at all).
    error Unauthorized(address account);
    /// @notice The caller is not the admin.
    error NotOwner(address caller);
    /// @notice The caller is not the pending admin.
    error NotPendingOwner(address caller);
    /// @notice A zero address was given where an account is required.
    error ZeroAddress();
    /// @notice No template has this handle.
    error UnknownTemplate(uint256 handle);
    /// @notice The template exists but is not active.
    error TemplateInactive(uint256 handle);
    /// @notice This (template id, version) is already registered under `handle`.
    error TemplateExists(uint16 handle);
    /// @notice The template id, version or hash is zero, or the validator is not a contract.
    error InvalidTemplate();
    /// @notice The template is already in the requested state.
    error TemplateStatusUnchanged(uint16 handle, bool active);
    /// @notice A record whose tid carries the same ticket (the tid's first 8 bytes) was
    /// already anchored in the same log: this tid itself, or another with the same ticket.
    error AlreadyAnchored(bytes16 tid);
    /// @notice Calldata or a value list has the wrong length for the operation or template.
    error BadLength(uint256 got, uint256 expected);
    /// @notice The co-signature's deadline has passed.
    error Expired(uint64 deadline);
    /// @notice The co-signature is malformed, or not from a relay allowed for the template.
    error BadCosignature();
    /// @notice A checkpoint must be larger than the latest one of the same log.
    error CheckpointNotGrowing(uint64 size, uint64 latest);
    /// @notice The account already has a role.
    error AlreadySubmitter(address account, uint8 role);
    /// @notice Too many relays or active templates.
    error LimitReached(uint256 limit);
    /// @notice An external validator reverted or returned garbage.
    error ValidatorFailed(address validator);
    /// @notice A validator's runtime code could change its verdicts later: at `pc` it has
    /// `opcode` (a state write, a call, an environment read, SELFDESTRUCT), or it is an
    /// EIP-7702 delegation (`pc` 0, `opcode` 0xef). Published rules must never change.
    error ImpureValidator(address validator, uint256 pc, uint8 opcode);
    /// @notice An inclusion proof does not fit the tree shape.
    error InvalidProof();
    /// @notice The admin module was called directly instead of through the registry.
    error NotDelegated();

    // ---------------------------------------------------------------- shared helpers

    /// @dev Key of `_grants`.
    function _grantKey(address relay, uint256 handle) internal pure returns (uint256) {
        return (uint256(uint160(relay)) << 16) | handle;
    }

    /// @dev Explains, with the right error, why `account` has no grant for `handle`.
    /// Only runs on a failure path.
    function _refuse(address account, uint256 handle, bool cosigner) internal view {
        if (_roleOf[account] != ROLE_RELAY) {
            if (cosigner) revert BadCosignature();
            revert Unauthorized(account);
        }
        if (handle == 0 || handle > _templateCount) revert UnknownTemplate(handle);
        revert TemplateInactive(handle);
    }

    /// @dev Asks the template's IRecordValidator (by STATICCALL) about the n values read
    /// from calldata at `offset + i * stride` (as RangeRules.check reads them).
    function _external(uint256 handle, uint256 n, uint256 offset, uint256 stride)
        internal
        view
        returns (uint256 verdict)
    {
        int64[] memory values = new int64[](n);
        for (uint256 i; i < n; ++i) {
            int64 v;
            assembly {
                v := signextend(7, shr(sub(256, shl(3, stride)), calldataload(add(offset, mul(i, stride)))))
            }
            values[i] = v;
        }
        address validator = _templates[handle].validator;
        (bool ok, bytes memory ret) =
            validator.staticcall(abi.encodeCall(IRecordValidator.validate, (uint16(handle), values)));
        if (!ok || ret.length != 32) revert ValidatorFailed(validator);
        verdict = abi.decode(ret, (uint256));
        if (verdict > n) verdict = VERDICT_REJECTED;
    }

    /// @dev The EIP-712 digest of a Record whose n values are read from calldata at
    /// `offset + i * stride` (as RangeRules.check reads them).
    function _recordDigest(
        bytes32 separator,
        uint256 tid,
        uint256 commitment,
        uint256 handle,
        uint256 offset,
        uint256 stride,
        uint256 n,
        uint256 deadline,
        address submitter
    ) internal pure returns (bytes32 digest) {
        bytes32 typehash = RECORD_TYPEHASH;
        assembly ("memory-safe") {
            // Scratch memory past the free memory pointer; nothing is allocated.
            let m := mload(0x40)
            let shift := sub(256, shl(3, stride))
            for { let i := 0 } lt(i, n) { i := add(i, 1) } {
                mstore(add(m, shl(5, i)), signextend(7, shr(shift, calldataload(add(offset, mul(i, stride))))))
            }
            let valuesHash := keccak256(m, shl(5, n))
            mstore(m, typehash)
            mstore(add(m, 0x20), tid)
            mstore(add(m, 0x40), commitment)
            mstore(add(m, 0x60), handle)
            mstore(add(m, 0x80), valuesHash)
            mstore(add(m, 0xa0), deadline)
            mstore(add(m, 0xc0), submitter)
            let structHash := keccak256(m, 0xe0)
            mstore(m, shl(240, 0x1901))
            mstore(add(m, 0x02), separator)
            mstore(add(m, 0x22), structHash)
            digest := keccak256(m, 0x42)
        }
    }

    /// @dev The EIP-712 domain separator for this chain and address.
    function _buildDomainSeparator() internal view returns (bytes32) {
        return keccak256(
            abi.encode(
                DOMAIN_TYPEHASH,
                keccak256(bytes(DOMAIN_NAME)),
                keccak256(bytes(DOMAIN_VERSION)),
                block.chainid,
                address(this)
            )
        );
    }
}
