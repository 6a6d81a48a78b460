// SPDX-License-Identifier: Apache-2.0
// IRecordValidator: the interface of a rule contract (one of the paper's SC = {sc1..scw})
// that a MediBlock template may point at, for rules that the registry's built-in range and
// set checks cannot express. See docs/CONTRACTS.md, "Validators".
pragma solidity 0.8.37;

/// @title A rule contract a template can point at.
/// @notice The registry calls `validate` with STATICCALL after its own range and set rules
/// passed, so a validator can neither change state nor re-enter the registry.
interface IRecordValidator {
    /// @notice Checks the on-chain values of one record.
    /// @param template The template handle in the calling registry (`msg.sender`).
    /// @param values The record's on-chain attribute values, in template order.
    /// @return verdict 0 when the record is valid; `1 + i` when on-chain attribute `i` is the
    /// first one that breaks a rule; 255 when the record is rejected without an attribute
    /// index. The registry stores any other value as 255.
    function validate(uint16 template, int64[] calldata values) external view returns (uint8 verdict);
}
