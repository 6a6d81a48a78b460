//! Domain identifiers as newtypes with fallible constructors, so invalid ids never travel.
//!
//! Random ids (transaction, patient) are 128-bit values drawn by the caller's CSPRNG and
//! shown as 32 lowercase hex digits; they carry no meaning, so they may appear on chain.
//! Names (user, template, attribute) are short lowercase slugs.

use core::fmt;
use core::str::FromStr;

use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};

use crate::encoding::{Canonical, Reader, Writer};
use crate::error::{Error, Result};

/// Defines a fixed-size byte id shown as lowercase hex.
macro_rules! hex_id {
    ($(#[$doc:meta])* $name:ident, $len:expr, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name([u8; $len]);

        impl $name {
            /// Length in bytes.
            pub const LEN: usize = $len;

            /// Wraps raw bytes.
            pub const fn from_bytes(bytes: [u8; $len]) -> Self {
                Self(bytes)
            }

            /// The raw bytes.
            pub const fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            /// Lowercase hex, no prefix. Parsing accepts either case and an optional `0x`
            /// (not `0X`), as everywhere in the crate's JSON.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                let s = crate::json::hex_digits(s);
                if s.len() != 2 * $len {
                    return Err(Error::invalid(
                        $what,
                        concat!("expected ", stringify!($len), " bytes as hex"),
                    ));
                }
                let mut out = [0u8; $len];
                hex::decode_to_slice(s, &mut out)
                    .map_err(|_| Error::invalid($what, "not hex"))?;
                Ok(Self(out))
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(s: String) -> Result<Self> {
                s.parse()
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.to_hex()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.to_hex())
            }
        }

        impl Canonical for $name {
            fn encode(&self, w: &mut Writer) {
                w.fixed(&self.0);
            }
            fn decode(r: &mut Reader<'_>) -> Result<Self> {
                Ok(Self(r.array()?))
            }
        }
    };
}

hex_id!(
    /// A transaction id: 128 random bits chosen by the client for each initial transaction.
    TxId, 16, "transaction id"
);
hex_id!(
    /// A patient id: 128 random bits, carrying nothing about the person.
    PatientId, 16, "patient id"
);
hex_id!(
    /// A record commitment: keccak256 over a domain tag and the signed initial transaction.
    Commitment, 32, "commitment"
);
hex_id!(
    /// An Ethereum account or contract address.
    EthAddress, 20, "Ethereum address"
);
hex_id!(
    /// A 32-byte chain hash: a transaction hash or a block hash.
    ChainHash, 32, "chain hash"
);
hex_id!(
    /// The public identifier of a symmetric key: the first 8 bytes of
    /// SHA-256(tag ‖ key). Lets a reader pick the right key after a rotation.
    KeyId, 8, "key id"
);
hex_id!(
    /// A per-record random salt, so a commitment cannot be confirmed by guessing the content.
    Salt, 32, "salt"
);

impl TxId {
    /// A fully random transaction id: a ticket nobody issued, what a forger would make.
    /// A relay refuses it (`ticket_unknown`); tests use it to forge rows.
    pub fn random(rng: &mut impl CryptoRng) -> Self {
        let mut b = [0u8; 16];
        rng.fill_bytes(&mut b);
        Self(b)
    }

    /// A transaction id for a relay-issued ticket: the ticket number (big-endian u64) in the
    /// first 8 bytes, then 8 random bytes.
    ///
    /// The registry marks each ticket used in a bitmap (256 tickets per storage word) instead
    /// of a fresh storage slot per tid, which is what keeps a per-record anchor under its gas
    /// budget; a ticket is used once, so a tid is anchored once (docs/PROTOCOL.md, "Tickets").
    /// The random half keeps a tid unguessable from the ticket sequence.
    pub fn for_ticket(ticket: u64, rng: &mut impl CryptoRng) -> Self {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&ticket.to_be_bytes());
        rng.fill_bytes(&mut b[8..]);
        Self(b)
    }

    /// The ticket number: the first 8 bytes, big-endian.
    pub fn ticket(&self) -> u64 {
        let mut t = [0u8; 8];
        t.copy_from_slice(&self.0[..8]);
        u64::from_be_bytes(t)
    }
}

impl PatientId {
    /// A fresh random patient id.
    pub fn random(rng: &mut impl CryptoRng) -> Self {
        let mut b = [0u8; 16];
        rng.fill_bytes(&mut b);
        Self(b)
    }
}

impl Salt {
    /// A fresh random salt.
    pub fn random(rng: &mut impl CryptoRng) -> Self {
        let mut b = [0u8; 32];
        rng.fill_bytes(&mut b);
        Self(b)
    }
}

/// Checks a slug: 1..=`max` bytes of `[a-z0-9]` and inner `.`, `_`, `-`.
fn check_slug(what: &'static str, s: &str, max: usize) -> Result<()> {
    if s.is_empty() || s.len() > max {
        return Err(Error::invalid(
            what,
            format!("must be 1 to {max} characters"),
        ));
    }
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c);
    if !s.chars().all(ok_char) {
        return Err(Error::invalid(
            what,
            "only lowercase letters, digits, '.', '_' and '-' are allowed",
        ));
    }
    let first_last_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !first_last_ok(s.chars().next()) || !first_last_ok(s.chars().last()) {
        return Err(Error::invalid(
            what,
            "must start and end with a letter or digit",
        ));
    }
    Ok(())
}

/// Defines a slug-shaped name.
macro_rules! slug {
    ($(#[$doc:meta])* $name:ident, $max:expr, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Longest accepted value, in bytes.
            pub const MAX_LEN: usize = $max;

            /// Validates and wraps `s`.
            pub fn new(s: impl Into<String>) -> Result<Self> {
                let s = s.into();
                check_slug($what, &s, $max)?;
                Ok(Self(s))
            }

            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(s: String) -> Result<Self> {
                Self::new(s)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({:?})"), self.0)
            }
        }

        impl Canonical for $name {
            fn encode(&self, w: &mut Writer) {
                w.str(&self.0);
            }
            fn decode(r: &mut Reader<'_>) -> Result<Self> {
                Self::new(r.str_limited($max as u32)?)
            }
        }
    };
}

slug!(
    /// A user id chosen by the administrator at enrolment, e.g. `dr.ada`.
    UserId, 64, "user id"
);
slug!(
    /// A template id, e.g. `vital-signs`.
    TemplateId, 64, "template id"
);
slug!(
    /// The name of an attribute inside a template, e.g. `heart_rate`.
    AttrName, 64, "attribute name"
);

impl TemplateId {
    /// The template id as the contracts key it: keccak256 of its UTF-8 bytes.
    pub fn chain_id(&self) -> [u8; 32] {
        crate::hash::keccak256(self.0.as_bytes())
    }
}

/// A template version: published versions count up from 1 and never change.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct TemplateVersion(u32);

impl TemplateVersion {
    /// Versions start at 1.
    pub fn new(v: u32) -> Result<Self> {
        if v == 0 {
            return Err(Error::invalid("template version", "versions start at 1"));
        }
        Ok(Self(v))
    }

    /// The number.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for TemplateVersion {
    type Error = Error;
    fn try_from(v: u32) -> Result<Self> {
        Self::new(v)
    }
}

impl From<TemplateVersion> for u32 {
    fn from(v: TemplateVersion) -> u32 {
        v.0
    }
}

impl fmt::Debug for TemplateVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

impl fmt::Display for TemplateVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A template and the version a record was built against.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateRef {
    /// Which template.
    pub id: TemplateId,
    /// Which published version of it.
    pub version: TemplateVersion,
}

impl fmt::Display for TemplateRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.id, self.version)
    }
}

impl Canonical for TemplateRef {
    fn encode(&self, w: &mut Writer) {
        self.id.encode(w);
        w.u32(self.version.0);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let id = TemplateId::decode(r)?;
        let version = TemplateVersion::new(r.u32()?)?;
        Ok(Self { id, version })
    }
}

/// What a user may do. Encoded as one byte (the discriminant below).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Enrols users, publishes templates, reads the audit.
    Admin = 1,
    /// A physician.
    Doctor = 2,
    /// A nurse.
    Nurse = 3,
    /// A pathologist.
    Pathologist = 4,
    /// Reads and verifies records; submits nothing.
    Auditor = 5,
}

impl Role {
    /// Every role, in discriminant order.
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Doctor,
        Role::Nurse,
        Role::Pathologist,
        Role::Auditor,
    ];

    /// The role's one-byte code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The role with this code.
    pub fn from_code(code: u8) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|r| r.code() == code)
            .ok_or_else(|| Error::invalid("role", format!("unknown role code {code}")))
    }

    /// The role's lowercase name, as in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Doctor => "doctor",
            Role::Nurse => "nurse",
            Role::Pathologist => "pathologist",
            Role::Auditor => "auditor",
        }
    }
}

impl FromStr for Role {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| Error::invalid("role", format!("unknown role {s:?}")))
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Canonical for Role {
    fn encode(&self, w: &mut Writer) {
        w.u8(self.code());
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Self::from_code(r.u8()?)
    }
}

/// A point in time: milliseconds since the Unix epoch, UTC. Supplied by the caller's clock.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UnixMillis(pub u64);

impl Canonical for UnixMillis {
    fn encode(&self, w: &mut Writer) {
        w.u64(self.0);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self(r.u64()?))
    }
}

/// The position of a leaf in the relay's append-only Merkle log.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LeafIndex(pub u64);

impl fmt::Display for LeafIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_ref_refuses_unknown_fields() {
        let good = r#"{"id":"vital-signs","version":1}"#;
        let r: TemplateRef = serde_json::from_str(good).unwrap();
        assert_eq!(r.to_string(), "vital-signs@1");
        let err = serde_json::from_str::<TemplateRef>(r#"{"id":"vital-signs","version":1,"x":1}"#)
            .unwrap_err();
        assert!(err.to_string().contains("unknown field `x`"), "{err}");
    }

    #[test]
    fn hex_ids_take_an_optional_lowercase_0x() {
        let id: EthAddress = "5FbDB2315678afecb367f032d93F642f64180aa3".parse().unwrap();
        assert_eq!(id.to_hex(), "5fbdb2315678afecb367f032d93f642f64180aa3");
        assert_eq!(
            "0x5fbdb2315678afecb367f032d93f642f64180aa3"
                .parse::<EthAddress>()
                .unwrap(),
            id
        );
        assert!(
            "0X5fbdb2315678afecb367f032d93f642f64180aa3"
                .parse::<EthAddress>()
                .is_err()
        );
        assert!(
            "0x0x5fbdb2315678afecb367f032d93f642f64180a"
                .parse::<EthAddress>()
                .is_err()
        );
    }

    #[test]
    fn a_tid_carries_its_ticket_in_front() {
        use rand_core::SeedableRng;
        let mut rng = rand_chacha::ChaCha20Rng::from_seed([7; 32]);
        let ticket = 0x0102_0304_0506_0708;
        let a = TxId::for_ticket(ticket, &mut rng);
        let b = TxId::for_ticket(ticket, &mut rng);
        assert_eq!(a.ticket(), ticket);
        assert_eq!(a.as_bytes()[..8], [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_ne!(a, b, "the random half differs");
        assert_eq!(TxId::for_ticket(u64::MAX, &mut rng).ticket(), u64::MAX);
    }

    #[test]
    fn hex_ids_round_trip_and_refuse_bad_text() {
        let id: TxId = "00112233445566778899aabbccddeeff".parse().unwrap();
        assert_eq!(id.to_string(), "00112233445566778899aabbccddeeff");
        assert_eq!(
            "0x00112233445566778899aabbccddeeff"
                .parse::<TxId>()
                .unwrap(),
            id
        );
        assert!("00112233".parse::<TxId>().is_err());
        assert_eq!(
            "00112233445566778899AABBCCDDEEFF".parse::<TxId>().unwrap(),
            id
        );
        assert!("zz112233445566778899aabbccddeeff".parse::<TxId>().is_err());
    }

    #[test]
    fn slugs_are_checked() {
        assert!(UserId::new("dr.ada").is_ok());
        assert!(UserId::new("").is_err());
        assert!(UserId::new("Dr.Ada").is_err());
        assert!(UserId::new("-ada").is_err());
        assert!(UserId::new("ada.").is_err());
        assert!(UserId::new("a".repeat(65)).is_err());
        assert!(TemplateId::new("vital signs").is_err());
    }

    #[test]
    fn version_zero_is_refused() {
        assert!(TemplateVersion::new(0).is_err());
        assert_eq!(TemplateVersion::new(3).unwrap().get(), 3);
    }

    #[test]
    fn roles_round_trip() {
        for role in Role::ALL {
            assert_eq!(Role::from_code(role.code()).unwrap(), role);
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert!(Role::from_code(0).is_err());
        assert!("surgeon".parse::<Role>().is_err());
    }

    #[test]
    fn serde_uses_text_forms() {
        let id: PatientId = "ffeeddccbbaa99887766554433221100".parse().unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"ffeeddccbbaa99887766554433221100\"");
        assert!(serde_json::from_str::<UserId>("\"BAD ID\"").is_err());
        assert_eq!(serde_json::to_string(&Role::Nurse).unwrap(), "\"nurse\"");
    }
}
