//! Typed attribute values of a record, and the text forms a clinician types them in.
//!
//! Numbers are fixed-point integers: the template gives each integer attribute a `scale`
//! (digits after the decimal point), and the value is stored as the integer mantissa, so
//! `36.6` °C at scale 1 is `366`. No floating point crosses the protocol.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::encoding::{Canonical, Reader, Writer};
use crate::error::{DecodeError, Error, Result};
use crate::ids::AttrName;

/// Longest text value the encoding accepts, in bytes (templates set tighter limits).
pub const MAX_TEXT_LEN: u32 = 16 * 1024;
/// Largest fixed-point scale a template may use.
pub const MAX_SCALE: u8 = 9;
/// Most attributes a record may carry.
pub const MAX_ATTRIBUTES: usize = 64;

/// One attribute value.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(
    tag = "type",
    content = "value",
    rename_all = "snake_case",
    deny_unknown_fields
)]
pub enum Value {
    /// A fixed-point number's mantissa (the template gives the scale).
    Integer(i64),
    /// Free text. Never goes on chain.
    Text(String),
    /// One of the template's allowed values.
    Enum(String),
    /// A calendar date.
    Date(Date),
    /// Yes or no.
    Boolean(bool),
}

impl Value {
    /// The value's type name, as templates and error messages spell it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Integer(_) => "integer",
            Value::Text(_) => "text",
            Value::Enum(_) => "enum",
            Value::Date(_) => "date",
            Value::Boolean(_) => "boolean",
        }
    }
}

impl Canonical for Value {
    fn encode(&self, w: &mut Writer) {
        match self {
            Value::Integer(v) => {
                w.u8(1);
                w.i64(*v);
            }
            Value::Text(s) => {
                w.u8(2);
                w.str(s);
            }
            Value::Enum(s) => {
                w.u8(3);
                w.str(s);
            }
            Value::Date(d) => {
                w.u8(4);
                w.i64(i64::from(d.days));
            }
            Value::Boolean(b) => {
                w.u8(5);
                w.bool(*b);
            }
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        match r.u8()? {
            1 => Ok(Value::Integer(r.i64()?)),
            2 => Ok(Value::Text(r.str_limited(MAX_TEXT_LEN)?.to_owned())),
            3 => Ok(Value::Enum(r.str_limited(MAX_TEXT_LEN)?.to_owned())),
            4 => {
                let days = i32::try_from(r.i64()?)
                    .map_err(|_| DecodeError::NonCanonical("date out of range"))?;
                Ok(Value::Date(Date::from_days(days)?))
            }
            5 => Ok(Value::Boolean(r.bool()?)),
            got => Err(DecodeError::UnknownDiscriminant { what: "value", got }.into()),
        }
    }
}

/// A record's attribute values, keyed by name. Canonically ordered by name (byte order).
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Attributes(BTreeMap<AttrName, Value>);

impl Attributes {
    /// No attributes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `name` to `value`, returning the previous value.
    pub fn insert(&mut self, name: AttrName, value: Value) -> Option<Value> {
        self.0.insert(name, value)
    }

    /// The value of `name`.
    pub fn get(&self, name: &AttrName) -> Option<&Value> {
        self.0.get(name)
    }

    /// Name–value pairs in canonical order.
    pub fn iter(&self) -> impl Iterator<Item = (&AttrName, &Value)> {
        self.0.iter()
    }

    /// How many attributes are set.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no attribute is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<(AttrName, Value)> for Attributes {
    fn from_iter<I: IntoIterator<Item = (AttrName, Value)>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl Canonical for Attributes {
    fn encode(&self, w: &mut Writer) {
        w.len(self.0.len());
        for (name, value) in &self.0 {
            name.encode(w);
            value.encode(w);
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let n = r.len(MAX_ATTRIBUTES as u32)?;
        let mut map = BTreeMap::new();
        let mut last: Option<AttrName> = None;
        for _ in 0..n {
            let name = AttrName::decode(r)?;
            if last.as_ref().is_some_and(|l| *l >= name) {
                return Err(
                    DecodeError::NonCanonical("attribute names not strictly ascending").into(),
                );
            }
            let value = Value::decode(r)?;
            last = Some(name.clone());
            map.insert(name, value);
        }
        Ok(Self(map))
    }
}

/// A calendar date (proleptic Gregorian), stored as days since 1970-01-01.
/// Its text form is ISO 8601 `YYYY-MM-DD` with a four-digit year.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Date {
    days: i32,
}

/// Days from 1970-01-01 to 0001-01-01 and to 9999-12-31: the range of four-digit years.
const MIN_DAYS: i32 = -719_162;
const MAX_DAYS: i32 = 2_932_896;

impl Date {
    /// The date `days` days after 1970-01-01 (negative: before), within years 1..=9999.
    pub fn from_days(days: i32) -> Result<Self> {
        if !(MIN_DAYS..=MAX_DAYS).contains(&days) {
            return Err(Error::invalid("date", "year must be between 1 and 9999"));
        }
        Ok(Self { days })
    }

    /// Days since 1970-01-01.
    pub fn days(self) -> i32 {
        self.days
    }

    /// The date of a year, month (1–12) and day (1–31), checked.
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Result<Self> {
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return Err(Error::invalid("date", "no such day"));
        }
        Self::from_days(days_from_civil(year, month, day))
    }

    /// Year, month, day.
    pub fn ymd(self) -> (i32, u32, u32) {
        civil_from_days(self.days)
    }
}

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's `days_from_civil` / `civil_from_days` (public domain algorithms).
fn days_from_civil(y: i32, m: u32, d: u32) -> i32 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400) as u32;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe as i32 - 719_468
}

fn civil_from_days(z: i32) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097) as u32;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe as i32 + era * 400 + i32::from(m <= 2);
    (y, m, d)
}

impl FromStr for Date {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::invalid("date", "expected YYYY-MM-DD");
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return Err(bad());
        }
        let digits = |r: core::ops::Range<usize>| -> Result<u32> {
            let part = &s[r];
            if !part.bytes().all(|c| c.is_ascii_digit()) {
                return Err(bad());
            }
            part.parse().map_err(|_| bad())
        };
        let year = i32::try_from(digits(0..4)?).map_err(|_| bad())?;
        Self::from_ymd(year, digits(5..7)?, digits(8..10)?)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

impl fmt::Debug for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Date({self})")
    }
}

impl TryFrom<String> for Date {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<Date> for String {
    fn from(d: Date) -> String {
        d.to_string()
    }
}

/// Parses a decimal such as `-36.6` into its fixed-point mantissa at `scale`.
///
/// Refuses more fractional digits than the scale allows (no silent rounding), exponents,
/// leading `+`, spaces and overflow.
pub fn parse_fixed(s: &str, scale: u8) -> Result<i64> {
    let bad = |why: &str| Error::invalid("number", why.to_owned());
    if scale > MAX_SCALE {
        return Err(bad("scale too large"));
    }
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (int_part, frac_part) = match body.split_once('.') {
        Some((i, f)) => (i, f),
        None => (body, ""),
    };
    let all_digits = |p: &str| p.bytes().all(|c| c.is_ascii_digit());
    if int_part.is_empty() || !all_digits(int_part) || !all_digits(frac_part) {
        return Err(bad("not a decimal number"));
    }
    if body.contains('.') && frac_part.is_empty() {
        return Err(bad("not a decimal number"));
    }
    if frac_part.len() > usize::from(scale) {
        return Err(bad(&format!(
            "at most {scale} digit(s) after the decimal point"
        )));
    }
    let overflow = || bad("number out of range");
    let mut mantissa: i128 = 0;
    for c in int_part.bytes().chain(frac_part.bytes()) {
        mantissa = mantissa * 10 + i128::from(c - b'0');
        if mantissa > i128::from(i64::MAX) + 1 {
            return Err(overflow());
        }
    }
    for _ in frac_part.len()..usize::from(scale) {
        mantissa *= 10;
        if mantissa > i128::from(i64::MAX) + 1 {
            return Err(overflow());
        }
    }
    let mantissa = if neg { -mantissa } else { mantissa };
    i64::try_from(mantissa).map_err(|_| overflow())
}

/// Formats a fixed-point mantissa at `scale` as a decimal, e.g. `(366, 1)` → `"36.6"`.
pub fn format_fixed(mantissa: i64, scale: u8) -> String {
    if scale == 0 {
        return mantissa.to_string();
    }
    let digits = mantissa.unsigned_abs().to_string();
    let scale = usize::from(scale);
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (i, f) = padded.split_at(padded.len() - scale);
    let sign = if mantissa < 0 { "-" } else { "" };
    format!("{sign}{i}.{f}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_refuses_unknown_fields() {
        let v: Value = serde_json::from_str(r#"{"type":"integer","value":72}"#).unwrap();
        assert_eq!(v, Value::Integer(72));
        for json in [
            r#"{"type":"integer","value":72,"unit":"bpm"}"#,
            r#"{"type":"boolean","value":true,"x":null}"#,
        ] {
            let err = serde_json::from_str::<Value>(json).unwrap_err().to_string();
            // serde's words for an unknown key of an adjacently tagged enum.
            assert!(
                err.contains(r#"expected "type" or "value""#),
                "{json}: {err}"
            );
        }
    }

    #[test]
    fn fixed_point_parses_exactly() {
        assert_eq!(parse_fixed("36.6", 1).unwrap(), 366);
        assert_eq!(parse_fixed("36", 1).unwrap(), 360);
        assert_eq!(parse_fixed("-0.05", 2).unwrap(), -5);
        assert_eq!(parse_fixed("120", 0).unwrap(), 120);
        assert!(parse_fixed("36.66", 1).is_err());
        assert!(parse_fixed("3e2", 0).is_err());
        assert!(parse_fixed("+3", 0).is_err());
        assert!(parse_fixed("", 0).is_err());
        assert!(parse_fixed(".5", 1).is_err());
        assert!(parse_fixed("5.", 1).is_err());
        assert!(parse_fixed("9223372036854775808", 0).is_err());
        assert_eq!(parse_fixed("-9223372036854775808", 0).unwrap(), i64::MIN);
    }

    #[test]
    fn fixed_point_formats() {
        assert_eq!(format_fixed(366, 1), "36.6");
        assert_eq!(format_fixed(-5, 2), "-0.05");
        assert_eq!(format_fixed(7, 0), "7");
        assert_eq!(format_fixed(i64::MIN, 3), "-9223372036854775.808");
    }

    #[test]
    fn dates_convert_both_ways() {
        assert_eq!(Date::from_ymd(1970, 1, 1).unwrap().days(), 0);
        assert_eq!(Date::from_ymd(2000, 3, 1).unwrap().days(), 11_017);
        assert_eq!(
            "2024-02-29".parse::<Date>().unwrap().to_string(),
            "2024-02-29"
        );
        assert!("2023-02-29".parse::<Date>().is_err());
        assert!("2023-2-28".parse::<Date>().is_err());
        assert!("0000-01-01".parse::<Date>().is_err());
        assert_eq!("0001-01-01".parse::<Date>().unwrap().days(), MIN_DAYS);
        assert_eq!("9999-12-31".parse::<Date>().unwrap().days(), MAX_DAYS);
        assert!(Date::from_days(MAX_DAYS + 1).is_err());
    }

    #[test]
    fn attributes_must_be_sorted_when_decoded() {
        let mut w = Writer::new();
        w.len(2);
        AttrName::new("b").unwrap().encode(&mut w);
        Value::Boolean(true).encode(&mut w);
        AttrName::new("a").unwrap().encode(&mut w);
        Value::Boolean(false).encode(&mut w);
        let bytes = w.into_bytes();
        assert!(matches!(
            Attributes::from_canonical_bytes(&bytes),
            Err(Error::Decode(DecodeError::NonCanonical(_)))
        ));
    }
}
