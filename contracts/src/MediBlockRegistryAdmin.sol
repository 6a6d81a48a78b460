// SPDX-License-Identifier: Apache-2.0
// MediBlockRegistryAdmin: the admin functions and views of the MediBlock registry. The
// registry deploys one at construction and DELEGATECALLs into it for every ABI call, so this
// code runs on the registry's storage and its events come from the registry's address.
// Called directly, it has no owner and every admin function refuses.
pragma solidity 0.8.37;

import {MerkleLog} from "./MerkleLog.sol";
import {RangeRules} from "./RangeRules.sol";
import {RegistryStorage} from "./RegistryStorage.sol";

/// @title Admin functions and views of the MediBlock registry (call them at the registry).
contract MediBlockRegistryAdmin is RegistryStorage {
    /// @dev This module's own address, to refuse state changes outside a DELEGATECALL.
    address private immutable _self = address(this);

    modifier onlyOwner() {
        if (address(this) == _self) revert NotDelegated();
        if (msg.sender != _owner) revert NotOwner(msg.sender);
        _;
    }

    // ---------------------------------------------------------------- version

    /// @notice 2: verdicts bound to their values (`RecordAnchored.valuesHash`), frozen
    /// validators, and a log per relay (checkpoints and tickets). Version 1 had none of
    /// these and no such function.
    function registryVersion() external pure returns (uint32) {
        return REGISTRY_VERSION;
    }

    // ---------------------------------------------------------------- ownership

    /// @notice The current administrator.
    function owner() external view returns (address) {
        return _owner;
    }

    /// @notice The proposed administrator, or zero when no transfer is pending.
    function pendingOwner() external view returns (address) {
        return _pendingOwner;
    }

    /// @notice Proposes `newOwner` as the next administrator (zero cancels a proposal).
    /// Nothing changes until `newOwner` calls `acceptOwnership`.
    function transferOwnership(address newOwner) external onlyOwner {
        _pendingOwner = newOwner;
        emit OwnershipTransferStarted(msg.sender, newOwner);
    }

    /// @notice Completes a transfer; only the pending administrator may call it.
    function acceptOwnership() external {
        if (address(this) == _self) revert NotDelegated();
        if (msg.sender != _pendingOwner || msg.sender == address(0)) revert NotPendingOwner(msg.sender);
        address previous = _owner;
        _owner = msg.sender;
        delete _pendingOwner;
        emit OwnershipTransferred(previous, msg.sender);
    }

    // ---------------------------------------------------------------- submitters

    /// @notice Makes `relay` a relay: it may anchor records of every active template and
    /// checkpoints, and co-sign records for enrolled wallets. It gets a new log of its own:
    /// its checkpoints and the ticket space of its records, which no other relay can touch.
    function addRelay(address relay) external onlyOwner {
        _checkNewSubmitter(relay);
        if (_relays.length == MAX_RELAYS) revert LimitReached(MAX_RELAYS);
        if (_logCount == MAX_LOGS) revert LimitReached(MAX_LOGS);
        uint16 log = ++_logCount;
        _roleOf[relay] = ROLE_RELAY;
        _relays.push(relay);
        _bindLog(relay, log);
        emit SubmitterAdded(relay, ROLE_RELAY);
    }

    /// @notice Rotates a relay's Ethereum key: `newRelay` takes `oldRelay`'s place, its log
    /// (checkpoints go on growing from the same size, tickets go on in the same space) and
    /// its grants; from the next transaction `oldRelay` can do nothing.
    function replaceRelay(address oldRelay, address newRelay) external onlyOwner {
        if (_roleOf[oldRelay] != ROLE_RELAY) revert Unauthorized(oldRelay);
        _checkNewSubmitter(newRelay);
        uint16 log = _logOf[oldRelay];
        _dropRelay(oldRelay);
        _roleOf[newRelay] = ROLE_RELAY;
        _relays.push(newRelay);
        emit SubmitterRemoved(oldRelay, ROLE_RELAY);
        _bindLog(newRelay, log);
        emit SubmitterAdded(newRelay, ROLE_RELAY);
    }

    /// @notice Removes a relay: from the next transaction on it can neither anchor records
    /// or checkpoints nor co-sign. Its log is frozen: its checkpoints and used tickets stay
    /// readable, and nobody writes it again (the same address added again gets a new log).
    function removeRelay(address relay) external onlyOwner {
        if (_roleOf[relay] != ROLE_RELAY) revert Unauthorized(relay);
        uint16 log = _logOf[relay];
        _dropRelay(relay);
        delete _logWriter[log];
        emit LogWriterChanged(log, address(0));
        emit SubmitterRemoved(relay, ROLE_RELAY);
    }

    /// @dev Makes `relay` the writer of `log` and grants it every active template.
    function _bindLog(address relay, uint16 log) private {
        _logOf[relay] = log;
        _logWriter[log] = relay;
        uint256 logBits = uint256(log) << GRANT_LOG_SHIFT;
        uint256 count = _active.length;
        for (uint256 i; i < count; ++i) {
            uint256 handle = _active[i];
            _grants[_grantKey(relay, handle)] = _templates[handle].hot | logBits;
        }
        emit LogWriterChanged(log, relay);
    }

    /// @dev Takes away a relay's role, place, log binding and grants.
    function _dropRelay(address relay) private {
        delete _roleOf[relay];
        delete _logOf[relay];
        uint256 last = _relays.length - 1;
        for (uint256 i; i <= last; ++i) {
            if (_relays[i] == relay) {
                _relays[i] = _relays[last];
                _relays.pop();
                break;
            }
        }
        uint256 count = _active.length;
        for (uint256 i; i < count; ++i) {
            delete _grants[_grantKey(relay, _active[i])];
        }
    }

    /// @notice Enrols a wallet: it may anchor records that a relay co-signed for it.
    function enrollWallet(address wallet) external onlyOwner {
        _checkNewSubmitter(wallet);
        _roleOf[wallet] = ROLE_WALLET;
        emit SubmitterAdded(wallet, ROLE_WALLET);
    }

    /// @notice Removes an enrolled wallet.
    function removeWallet(address wallet) external onlyOwner {
        if (_roleOf[wallet] != ROLE_WALLET) revert Unauthorized(wallet);
        delete _roleOf[wallet];
        emit SubmitterRemoved(wallet, ROLE_WALLET);
    }

    /// @notice The role of `account`: 0 none, 1 relay, 2 enrolled wallet.
    function roleOf(address account) external view returns (uint8) {
        return _roleOf[account];
    }

    /// @notice The current relays.
    function relays() external view returns (address[] memory) {
        return _relays;
    }

    /// @notice The log of `relay` (zero when it is not a relay now).
    function logOf(address relay) external view returns (uint16) {
        return _logOf[relay];
    }

    /// @notice Logs created so far: ids 1..logCount, one per relay ever added.
    function logCount() external view returns (uint16) {
        return _logCount;
    }

    /// @notice The relay that writes `log` now (zero: unknown, or frozen by `removeRelay`).
    function logWriter(uint16 log) external view returns (address) {
        return _logWriter[log];
    }

    /// @notice Whether `relay` may anchor (and co-sign) records of template `handle` now.
    function canAnchor(address relay, uint16 handle) external view returns (bool) {
        return _grants[_grantKey(relay, handle)] != 0;
    }

    function _checkNewSubmitter(address account) private view {
        if (account == address(0)) revert ZeroAddress();
        uint8 role = _roleOf[account];
        if (role != ROLE_NONE) revert AlreadySubmitter(account, role);
    }

    // ---------------------------------------------------------------- templates

    /// @notice Publishes a template version with the range validator's rules (one per
    /// on-chain attribute, in template order) and an optional extra validator. It starts
    /// active. A published template never changes; a new version gets a new handle.
    /// @param id keccak256 of the template id's UTF-8 bytes (protocol `TemplateId::chain_id`).
    /// @param version The template version, from 1.
    /// @param templateHash keccak256 of the template's canonical encoding (`Template::hash`).
    /// @param rules One rule per on-chain value; `rules.length` is the number of values.
    /// @param validator An IRecordValidator that must also accept each record, or address(0).
    /// @return handle The template's handle in this registry, from 1.
    function registerTemplate(
        bytes32 id,
        uint32 version,
        bytes32 templateHash,
        RangeRules.Rule[] calldata rules,
        address validator
    ) external onlyOwner returns (uint16 handle) {
        if (id == 0 || version == 0 || templateHash == 0) revert InvalidTemplate();
        bytes32 validatorCodeHash;
        if (validator != address(0)) {
            if (validator.code.length == 0) revert InvalidTemplate();
            _checkPure(validator);
            validatorCodeHash = validator.codehash;
        }
        bytes32 ref = keccak256(abi.encode(id, version));
        if (_handleByRef[ref] != 0) revert TemplateExists(_handleByRef[ref]);
        (uint256 hot, uint256[4] memory spill, uint256[16] memory wide) =
            RangeRules.encode(rules, validator != address(0));
        handle = ++_templateCount;
        _handleByRef[ref] = handle;
        Template storage t = _templates[handle];
        t.id = id;
        t.templateHash = templateHash;
        t.hot = hot;
        t.validator = validator;
        t.version = version;
        t.validatorCodeHash = validatorCodeHash;
        for (uint256 j; j < 4; ++j) {
            if (spill[j] != 0) _spill[(uint256(handle) << 8) | j] = spill[j];
        }
        for (uint256 i; i < 16; ++i) {
            if (wide[i] != 0) _spill[(uint256(handle) << 8) | RangeRules.WIDE | i] = wide[i];
        }
        emit TemplateRegistered(handle, id, version, templateHash, validator);
        _activate(handle);
    }

    /// @dev Opcodes a validator's runtime code may not contain, as a bitmap: writes
    /// (SSTORE, TSTORE), TLOAD, calls and creations, SELFDESTRUCT, and every read of the
    /// environment that can differ between two calls (balances, other accounts' code, the
    /// caller and origin, gas, block and transaction facts). With none of them, a validator's
    /// code cannot change (EIP-6780) nor its storage (only its constructor could have written
    /// it), so its verdict depends on its code and the record's values alone.
    uint256 private constant IMPURE = (1 << 0x31) | (1 << 0x32) | (1 << 0x33) | (1 << 0x3a) | (1 << 0x3b)
        | (1 << 0x3c) | (1 << 0x3f) | (((1 << 11) - 1) << 0x40) | (1 << 0x55) | (1 << 0x5a) | (1 << 0x5c)
        | (1 << 0x5d) | (1 << 0xf0) | (1 << 0xf1) | (1 << 0xf2) | (1 << 0xf4) | (1 << 0xf5) | (1 << 0xfa)
        | (1 << 0xff);

    /// @dev Refuses a validator whose verdicts could change after registration: an EIP-7702
    /// delegation (code 0xef0100 || address, which its owner can re-point), or code with an
    /// IMPURE opcode outside PUSH data. A data section that happens to hold such a byte is
    /// refused too: on the safe side.
    function _checkPure(address validator) private view {
        bytes memory code = validator.code;
        if (uint8(code[0]) == 0xef) revert ImpureValidator(validator, 0, 0xef);
        uint256 length = code.length;
        uint256 pc;
        while (pc < length) {
            uint256 op = uint8(code[pc]);
            if ((IMPURE >> op) & 1 != 0) revert ImpureValidator(validator, pc, uint8(op));
            // PUSH1..PUSH32 (0x60..0x7f) carry 1..32 bytes of data.
            pc += op >= 0x60 && op <= 0x7f ? op - 0x5e : 1;
        }
    }

    /// @notice Activates or deactivates a template; records of an inactive template are refused.
    function setTemplateActive(uint16 handle, bool active) external onlyOwner {
        if (handle == 0 || handle > _templateCount) revert UnknownTemplate(handle);
        bool current = _templates[handle].activePos != 0;
        if (current == active) revert TemplateStatusUnchanged(handle, active);
        if (active) {
            _activate(handle);
        } else {
            _deactivate(handle);
        }
    }

    function _activate(uint16 handle) private {
        if (_active.length == MAX_ACTIVE_TEMPLATES) revert LimitReached(MAX_ACTIVE_TEMPLATES);
        _active.push(handle);
        Template storage t = _templates[handle];
        t.activePos = uint16(_active.length);
        uint256 hot = t.hot;
        uint256 count = _relays.length;
        for (uint256 i; i < count; ++i) {
            address relay = _relays[i];
            _grants[_grantKey(relay, handle)] = hot | (uint256(_logOf[relay]) << GRANT_LOG_SHIFT);
        }
        emit TemplateStatusChanged(handle, true);
    }

    function _deactivate(uint16 handle) private {
        Template storage t = _templates[handle];
        uint256 pos = t.activePos - 1;
        uint256 last = _active.length - 1;
        if (pos != last) {
            uint16 moved = _active[last];
            _active[pos] = moved;
            _templates[moved].activePos = uint16(pos + 1);
        }
        _active.pop();
        t.activePos = 0;
        uint256 count = _relays.length;
        for (uint256 i; i < count; ++i) {
            delete _grants[_grantKey(_relays[i], handle)];
        }
        emit TemplateStatusChanged(handle, false);
    }

    /// @notice Number of templates registered; handles are 1..templateCount.
    function templateCount() external view returns (uint16) {
        return _templateCount;
    }

    /// @notice A template's public description. Reverts for an unknown handle.
    function templateInfo(uint16 handle)
        external
        view
        returns (bytes32 id, uint32 version, bytes32 templateHash, address validator, bool active, uint8 attributes)
    {
        if (handle == 0 || handle > _templateCount) revert UnknownTemplate(handle);
        Template storage t = _templates[handle];
        return (t.id, t.version, t.templateHash, t.validator, t.activePos != 0, uint8(t.hot));
    }

    /// @notice A template's external validator and its EXTCODEHASH when it was registered
    /// (both zero when it has none). Registration refuses validators whose verdicts could
    /// change, so this code hash, with the values, determines every verdict it gives.
    function templateValidator(uint16 handle) external view returns (address validator, bytes32 codeHash) {
        if (handle == 0 || handle > _templateCount) revert UnknownTemplate(handle);
        Template storage t = _templates[handle];
        return (t.validator, t.validatorCodeHash);
    }

    /// @notice The range validator's rules of a template, as stored (a `Range` whose bounds
    /// fit in int32 comes back exactly as published, and so does every other rule).
    function templateRules(uint16 handle) external view returns (RangeRules.Rule[] memory) {
        if (handle == 0 || handle > _templateCount) revert UnknownTemplate(handle);
        return RangeRules.decode(_templates[handle].hot, _spill, handle);
    }

    /// @notice The handle of (template id, version), or 0 when not registered.
    function handleOf(bytes32 id, uint32 version) external view returns (uint16) {
        return _handleByRef[keccak256(abi.encode(id, version))];
    }

    /// @notice The handles of the active templates, in no particular order.
    function activeTemplates() external view returns (uint16[] memory) {
        return _active;
    }

    /// @notice The verdict the template's rules give `values` (0 valid, 1 + i rejected at
    /// attribute i, 255 rejected by its external validator), exactly as an anchor would
    /// record it. Works for inactive templates too, so past verdicts can be re-checked.
    function verdictFor(uint16 handle, int64[] calldata values) external view returns (uint8) {
        if (handle == 0 || handle > _templateCount) revert UnknownTemplate(handle);
        uint256 hot = _templates[handle].hot;
        uint256 n = hot & 0xff;
        if (values.length != n) revert BadLength(values.length, n);
        uint256 offset;
        uint256 spillSlot;
        assembly {
            offset := values.offset
            spillSlot := _spill.slot
        }
        uint256 verdict = RangeRules.check(hot, spillSlot, handle, offset, 32);
        if (verdict == 0 && hot & RangeRules.EXTERNAL != 0) verdict = _external(handle, n, offset, 32);
        return uint8(verdict);
    }

    // ---------------------------------------------------------------- records

    /// @notice Whether a record of `log` whose tid carries `ticket` (the tid's first 8
    /// bytes, big-endian) has been anchored. At most one has: its commitment, values hash,
    /// template, verdict, path and submitter are in its RecordAnchored event, found by a log
    /// filter on the tid (keep the events whose `info` names this log).
    function ticketUsed(uint16 log, uint64 ticket) external view returns (bool) {
        return (_usedTickets[(uint256(log) << 56) | (ticket >> 8)] >> (ticket & 0xff)) & 1 != 0;
    }

    /// @notice The used-ticket bits of `log`'s tickets `256 * word` to `256 * word + 255`:
    /// bit `i` is `ticketUsed(log, 256 * word + i)`. A relay checks its next tickets in one
    /// call. Zero for a word no ticket has (`word` ≥ 2^56).
    function ticketWord(uint16 log, uint64 word) external view returns (uint256) {
        if (word >> 56 != 0) return 0;
        return _usedTickets[(uint256(log) << 56) | word];
    }

    /// @notice The EIP-712 digest a relay signs to co-sign `submitter`'s record.
    function cosignDigest(
        bytes16 tid,
        bytes32 commitment,
        uint16 template,
        int64[] calldata values,
        uint64 deadline,
        address submitter
    ) external view returns (bytes32) {
        uint256 offset;
        assembly {
            offset := values.offset
        }
        return _recordDigest(
            _buildDomainSeparator(),
            uint256(bytes32(tid)),
            uint256(commitment),
            template,
            offset,
            32,
            values.length,
            deadline,
            submitter
        );
    }

    /// @notice The EIP-712 domain separator (name "MediBlock Registry", version "1", this
    /// chain, the registry's address).
    function domainSeparator() external view returns (bytes32) {
        return _buildDomainSeparator();
    }

    /// @notice EIP-5267: the fields and values of the EIP-712 domain.
    function eip712Domain()
        external
        view
        returns (
            bytes1 fields,
            string memory name,
            string memory version,
            uint256 chainId,
            address verifyingContract,
            bytes32 salt,
            uint256[] memory extensions
        )
    {
        return (hex"0f", DOMAIN_NAME, DOMAIN_VERSION, block.chainid, address(this), bytes32(0), new uint256[](0));
    }

    // ---------------------------------------------------------------- checkpoints

    /// @notice The latest anchored checkpoint of `log`: its size, root, the block that
    /// anchored it and how many checkpoints the log has. All zero before its first.
    function latestCheckpoint(uint16 log)
        external
        view
        returns (uint64 size, bytes32 root, uint64 blockNumber, uint64 count)
    {
        uint256 head = _checkpointHead[log];
        return (uint64(head), _checkpointRoot[log], uint64(head >> 64), uint64(head >> 128));
    }

    /// @notice Whether `path` proves that the leaf with hash `leafHash` (keccak256(0x00 ||
    /// data)) is at `index` of `log`'s latest anchored checkpoint, whose size must be `size`.
    /// Malformed and tampered proofs give false.
    function verifyInclusion(uint16 log, bytes32 leafHash, uint64 index, uint64 size, bytes32[] calldata path)
        external
        view
        returns (bool)
    {
        if (size == 0 || size != uint64(_checkpointHead[log])) return false;
        (bytes32 root, bool ok) = MerkleLog.rootFromInclusionProof(leafHash, index, size, path);
        return ok && root == _checkpointRoot[log];
    }

    /// @notice The root an inclusion proof leads to (RFC 9162 section 2.1.3.2), to compare
    /// with the root of any CheckpointAnchored event. Reverts with InvalidProof when the
    /// proof does not fit the tree shape.
    function rootFromInclusionProof(bytes32 leafHash, uint64 index, uint64 size, bytes32[] calldata path)
        external
        pure
        returns (bytes32 root)
    {
        bool ok;
        (root, ok) = MerkleLog.rootFromInclusionProof(leafHash, index, size, path);
        if (!ok) revert InvalidProof();
    }

    /// @notice Whether `path` proves that the log of `oldSize` leaves with root `oldRoot` is
    /// a prefix of the log of `newSize` leaves with root `newRoot` (RFC 9162 section 2.1.4.2).
    function verifyConsistency(
        uint64 oldSize,
        uint64 newSize,
        bytes32 oldRoot,
        bytes32 newRoot,
        bytes32[] calldata path
    ) external pure returns (bool) {
        return MerkleLog.verifyConsistency(oldSize, newSize, oldRoot, newRoot, path);
    }
}
