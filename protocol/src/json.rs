//! The crate's JSON conventions, in one place so every type follows them: how bytes are
//! written as hex, and how an optional object is left out.
//!
//! - **Hex.** Bytes are written as lowercase hex digits without a prefix. A reader accepts
//!   an optional `0x` prefix (a lowercase `x` only: `0X` is refused) and digits of either
//!   case, mixed too (an EIP-55 checksummed address reads, its checksum unchecked). Nothing
//!   else: no whitespace, no odd number of digits.
//! - **Optional objects.** A field that may hold nothing is left out; `null` is refused.
//!   So each value has one JSON form, and a reader never has to tell `null` from absent.

use serde::{Deserialize, Deserializer};

/// The hex digits of `s`: `s` without its `0x` prefix, if it has one.
pub(crate) fn hex_digits(s: &str) -> &str {
    s.strip_prefix("0x").unwrap_or(s)
}

/// For `#[serde(default, skip_serializing_if = "Option::is_none", deserialize_with =
/// "crate::json::present")]`: an absent field is `None` (by `default`), a present one must
/// be a `T`, so `null` is refused.
pub(crate) fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde::{Deserialize, Serialize};

    use crate::ids::TxId;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Holder {
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "super::present"
        )]
        inner: Option<TxId>,
    }

    #[test]
    fn an_optional_field_is_absent_never_null() {
        let none = Holder { inner: None };
        assert_eq!(serde_json::to_string(&none).unwrap(), "{}");
        assert_eq!(serde_json::from_str::<Holder>("{}").unwrap(), none);
        let err = serde_json::from_str::<Holder>(r#"{"inner":null}"#).unwrap_err();
        assert!(err.to_string().contains("invalid type: null"), "{err}");
        let some = Holder {
            inner: Some(TxId::from_bytes([0xab; 16])),
        };
        let text = serde_json::to_string(&some).unwrap();
        assert_eq!(text, format!(r#"{{"inner":"{}"}}"#, "ab".repeat(16)));
        assert_eq!(serde_json::from_str::<Holder>(&text).unwrap(), some);
    }
}
