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
    /// checkpoints, and co-sign records for enrolled wallets.
    function addRelay(address relay) external onlyOwner {
        _checkNewSubmitter(relay);
        if (_relays.length == MAX_RELAYS) revert LimitReached(MAX_RELAYS);
        _roleOf[relay] = ROLE_RELAY;
        _relays.push(relay);
        uint256 count = _active.length;
        for (uint256 i; i < count; ++i) {
            uint256 handle = _active[i];
            _grants[_grantKey(relay, handle)] = _templates[handle].hot;
        }
        emit SubmitterAdded(relay, ROLE_RELAY);
    }

    /// @notice Removes a relay: from the next transaction on it can neither anchor records
    /// or checkpoints nor co-sign.
    function removeRelay(address relay) external onlyOwner {
        if (_roleOf[relay] != ROLE_RELAY) revert Unauthorized(relay);
        delete _roleOf[relay];
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
        emit SubmitterRemoved(relay, ROLE_RELAY);
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
        if (validator != address(0) && validator.code.length == 0) revert InvalidTemplate();
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
        for (uint256 j; j < 4; ++j) {
            if (spill[j] != 0) _spill[(uint256(handle) << 8) | j] = spill[j];
        }
        for (uint256 i; i < 16; ++i) {
            if (wide[i] != 0) _spill[(uint256(handle) << 8) | RangeRules.WIDE | i] = wide[i];
        }
        emit TemplateRegistered(handle, id, version, templateHash, validator);
        _activate(handle);
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
            _grants[_grantKey(_relays[i], handle)] = hot;
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

    /// @notice Whether a record whose tid carries `ticket` (the tid's first 8 bytes,
    /// big-endian) has been anchored. At most one has: its commitment, template, verdict,
    /// path and submitter are in its RecordAnchored event, found by a log filter on the tid.
    function ticketUsed(uint64 ticket) external view returns (bool) {
        return (_usedTickets[ticket >> 8] >> (ticket & 0xff)) & 1 != 0;
    }

    /// @notice The used-ticket bits of tickets `256 * word` to `256 * word + 255`: bit `i` is
    /// `ticketUsed(256 * word + i)`. A relay checks its next tickets in one call.
    function ticketWord(uint64 word) external view returns (uint256) {
        return _usedTickets[word];
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

    /// @notice The latest anchored checkpoint: its size, root, the block that anchored it and
    /// how many checkpoints were anchored so far. All zero before the first.
    function latestCheckpoint() external view returns (uint64 size, bytes32 root, uint64 blockNumber, uint64 count) {
        uint256 head = _checkpointHead;
        return (uint64(head), _checkpointRoot, uint64(head >> 64), uint64(head >> 128));
    }

    /// @notice Whether `path` proves that the leaf with hash `leafHash` (keccak256(0x00 ||
    /// data)) is at `index` of the latest anchored checkpoint, whose size must be `size`.
    /// Malformed and tampered proofs give false.
    function verifyInclusion(bytes32 leafHash, uint64 index, uint64 size, bytes32[] calldata path)
        external
        view
        returns (bool)
    {
        if (size == 0 || size != uint64(_checkpointHead)) return false;
        (bytes32 root, bool ok) = MerkleLog.rootFromInclusionProof(leafHash, index, size, path);
        return ok && root == _checkpointRoot;
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
