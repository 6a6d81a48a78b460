// SPDX-License-Identifier: Apache-2.0
// Owned2Step: a single administrator with two-step ownership transfer, for MediBlock's
// validator contracts (the registry keeps the same logic in its admin module, over its
// own storage layout). See docs/CONTRACTS.md, "Roles".
pragma solidity 0.8.37;

/// @title Single owner, two-step transfer.
/// @notice The owner proposes a successor with `transferOwnership`; nothing changes until the
/// successor calls `acceptOwnership`, so a typo in an address cannot lock the admin out.
/// There is deliberately no `renounceOwnership`: a contract without an admin could never
/// be corrected.
abstract contract Owned2Step {
    /// @notice The current administrator.
    address public owner;
    /// @notice The proposed administrator, or the zero address when no transfer is pending.
    address public pendingOwner;

    /// @notice A transfer to `newOwner` was proposed (or cancelled when it is zero).
    event OwnershipTransferStarted(address indexed previousOwner, address indexed newOwner);
    /// @notice `newOwner` accepted and is now the administrator.
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);

    /// @notice The caller is not the owner.
    error NotOwner(address caller);
    /// @notice The caller is not the pending owner.
    error NotPendingOwner(address caller);
    /// @notice A zero address was given where an account is required.
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

    /// @notice Proposes `newOwner` as the next administrator; the zero address cancels a
    /// pending proposal.
    function transferOwnership(address newOwner) external onlyOwner {
        pendingOwner = newOwner;
        emit OwnershipTransferStarted(msg.sender, newOwner);
    }

    /// @notice Completes a transfer; only the pending owner may call it.
    function acceptOwnership() external {
        if (msg.sender != pendingOwner || msg.sender == address(0)) revert NotPendingOwner(msg.sender);
        address previous = owner;
        owner = msg.sender;
        delete pendingOwner;
        emit OwnershipTransferred(previous, msg.sender);
    }
}
