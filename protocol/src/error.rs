//! The protocol crate's one error type.

use crate::rules::Violation;

/// Result alias used across the protocol crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// Everything that can go wrong in the pure protocol core.
///
/// Cryptographic failures are deliberately opaque ([`Error::Crypto`],
/// [`Error::Signature`]): they never say which byte or which step failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A value does not satisfy its type's invariant (bad id, empty name, …).
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// The kind of value, e.g. `"user id"`.
        what: &'static str,
        /// Why it was refused, in words.
        reason: String,
    },
    /// Bytes that are not the canonical encoding of a value.
    #[error("malformed encoding: {0}")]
    Decode(#[from] DecodeError),
    /// An ed25519 signature did not verify (strict verification).
    #[error("signature verification failed")]
    Signature,
    /// Decryption, authentication or key agreement failed. Opaque on purpose.
    #[error("cryptographic operation failed")]
    Crypto,
    /// A record names another template (or version) than the one supplied.
    #[error("template mismatch: got {got}, expected {expected}")]
    TemplateMismatch {
        /// The template reference the record carries.
        got: String,
        /// The template reference it was checked against.
        expected: String,
    },
    /// The record breaks one or more of its template's rules; every violation is listed.
    #[error("{} rule violation(s)", .0.len())]
    Rules(Vec<Violation>),
    /// A Merkle inclusion or consistency proof, or a checkpoint, is invalid.
    #[error("invalid proof: {0}")]
    Proof(#[from] ProofError),
}

impl Error {
    /// A stable, machine-readable code for the error's kind (used by the relay's API and
    /// by the golden vectors). Codes never change once published.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Invalid { .. } => "invalid_input",
            Error::Decode(_) => "malformed",
            Error::Signature => "signature_invalid",
            Error::Crypto => "decrypt_failed",
            Error::TemplateMismatch { .. } => "template_mismatch",
            Error::Rules(_) => "rule_violation",
            Error::Proof(_) => "proof_invalid",
        }
    }

    pub(crate) fn invalid(what: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            what,
            reason: reason.into(),
        }
    }
}

impl DecodeError {
    /// A stable, machine-readable code for the decoding failure.
    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::UnexpectedEnd => "unexpected_end",
            DecodeError::TrailingBytes { .. } => "trailing_bytes",
            DecodeError::WrongTag { .. } => "wrong_tag",
            DecodeError::InvalidUtf8 => "invalid_utf8",
            DecodeError::TooLong { .. } => "too_long",
            DecodeError::UnknownDiscriminant { .. } => "unknown_discriminant",
            DecodeError::NonCanonical(_) => "non_canonical",
        }
    }
}

/// Why a byte string is not a canonical encoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ended before the value did.
    #[error("unexpected end of input")]
    UnexpectedEnd,
    /// Bytes were left after a complete value.
    #[error("{count} trailing byte(s) after the value")]
    TrailingBytes {
        /// How many bytes were left over.
        count: usize,
    },
    /// The domain tag at the start is not the expected one.
    #[error("wrong domain tag: got {got:?}, expected {expected:?}")]
    WrongTag {
        /// The tag found (lossy UTF-8).
        got: String,
        /// The tag required here.
        expected: &'static str,
    },
    /// A text field is not valid UTF-8.
    #[error("text is not valid UTF-8")]
    InvalidUtf8,
    /// A length prefix exceeds what the field allows or what is left.
    #[error("length {got} exceeds the limit {limit}")]
    TooLong {
        /// The length found.
        got: u64,
        /// The largest length allowed.
        limit: u64,
    },
    /// A discriminant byte (bool, option, enum) has no meaning.
    #[error("unknown {what} discriminant {got}")]
    UnknownDiscriminant {
        /// What was being decoded.
        what: &'static str,
        /// The byte found.
        got: u8,
    },
    /// Well-formed bytes that a canonical encoder would never produce
    /// (unsorted or duplicate map keys, and similar).
    #[error("non-canonical encoding: {0}")]
    NonCanonical(&'static str),
}

impl ProofError {
    /// A stable, machine-readable code for the proof failure (as in `testdata/merkle.json`).
    pub fn code(&self) -> &'static str {
        match self {
            ProofError::WrongLength { .. } => "wrong_length",
            ProofError::IndexOutOfRange { .. } => "index_out_of_range",
            ProofError::BadSizes { .. } => "bad_sizes",
            ProofError::RootMismatch => "root_mismatch",
        }
    }
}

/// Why a Merkle proof or checkpoint was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The proof has the wrong number of hashes for this index and tree size.
    #[error("proof has {got} hashes, expected {expected}")]
    WrongLength {
        /// Hashes supplied.
        got: usize,
        /// Hashes the tree shape requires.
        expected: usize,
    },
    /// The leaf index is not inside the tree.
    #[error("leaf index {index} is outside a tree of size {size}")]
    IndexOutOfRange {
        /// The index asked for.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// The sizes of a consistency proof are not `0 < old <= new`.
    #[error("invalid tree sizes: old {old}, new {new}")]
    BadSizes {
        /// The older tree size.
        old: u64,
        /// The newer tree size.
        new: u64,
    },
    /// The proof is well-shaped but leads to another root.
    #[error("computed root does not match")]
    RootMismatch,
}
