//! The canonical byte encoding that signatures, commitments and hashes cover.
//!
//! The format is specified byte by byte in `docs/PROTOCOL.md`. In short: integers are
//! fixed-width big-endian, variable-length fields carry a `u32` big-endian length prefix,
//! `bool` is `0x00`/`0x01`, an `Option` is `0x00` or `0x01` followed by the value, and every
//! top-level structure opens with a length-prefixed ASCII domain tag.
//!
//! Every value has exactly one encoding: the [`Reader`] refuses anything a [`Writer`] would
//! not have produced (trailing bytes, unknown discriminants, bad UTF-8, unsorted maps).

use crate::error::{DecodeError, Result};

/// Upper bound on any single length prefix, so hostile input cannot ask for huge buffers.
pub const MAX_FIELD_LEN: u32 = 1 << 20;

/// A value with one canonical byte encoding.
pub trait Canonical: Sized {
    /// Appends the canonical encoding of `self`.
    fn encode(&self, w: &mut Writer);
    /// Reads one value, refusing non-canonical input.
    fn decode(r: &mut Reader<'_>) -> Result<Self>;

    /// The canonical encoding as a fresh vector.
    fn to_canonical_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.encode(&mut w);
        w.into_bytes()
    }

    /// Decodes exactly one value from `bytes`; trailing bytes are an error.
    fn from_canonical_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        let value = Self::decode(&mut r)?;
        r.finish()?;
        Ok(value)
    }
}

/// Builds a canonical encoding.
#[derive(Debug, Default, Clone)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// The bytes written so far.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// A domain tag: its ASCII bytes with a length prefix.
    pub fn tag(&mut self, tag: &str) {
        self.str(tag);
    }

    /// One byte.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    /// Two bytes, big-endian.
    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Four bytes, big-endian.
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Eight bytes, big-endian.
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Eight bytes, big-endian two's complement.
    pub fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// `0x00` or `0x01`.
    pub fn bool(&mut self, v: bool) {
        self.u8(u8::from(v));
    }

    /// Raw bytes of a fixed-size field (no length prefix).
    pub fn fixed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// A `u32` length prefix, then the bytes.
    ///
    /// # Panics
    /// If `bytes` is longer than [`MAX_FIELD_LEN`]; every type that reaches the writer has
    /// already been bounded by its constructor, so this is a programming error.
    pub fn bytes(&mut self, bytes: &[u8]) {
        self.len(bytes.len());
        self.buf.extend_from_slice(bytes);
    }

    /// A length-prefixed UTF-8 string.
    pub fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    /// A `u32` element count (for sequences).
    pub fn len(&mut self, len: usize) {
        let len = u32::try_from(len)
            .ok()
            .filter(|l| *l <= MAX_FIELD_LEN)
            .expect("field length bounded by its type's constructor");
        self.u32(len);
    }

    /// An optional value: `0x00`, or `0x01` and the value.
    pub fn option<T>(&mut self, v: Option<&T>, f: impl FnOnce(&mut Self, &T)) {
        match v {
            None => self.u8(0),
            Some(v) => {
                self.u8(1);
                f(self, v);
            }
        }
    }
}

/// Reads a canonical encoding, strictly.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`, positioned at its start.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Succeeds only when every byte has been read.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(DecodeError::TrailingBytes { count }),
        }
    }

    /// Reads `n` raw bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::UnexpectedEnd);
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// Reads a fixed-size array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// Reads and checks a domain tag.
    pub fn expect_tag(&mut self, expected: &'static str) -> Result<(), DecodeError> {
        let got = self.bytes_limited(expected.len().max(64) as u32)?;
        if got == expected.as_bytes() {
            Ok(())
        } else {
            Err(DecodeError::WrongTag {
                got: String::from_utf8_lossy(got).into_owned(),
                expected,
            })
        }
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    /// Two bytes, big-endian.
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    /// Four bytes, big-endian.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// Eight bytes, big-endian.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// Eight bytes, big-endian two's complement.
    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    /// `0x00` or `0x01`; anything else is refused.
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            got => Err(DecodeError::UnknownDiscriminant { what: "bool", got }),
        }
    }

    /// A length prefix, bounded by `limit` and by the bytes left.
    pub fn len(&mut self, limit: u32) -> Result<usize, DecodeError> {
        let got = self.u32()?;
        if got > limit.min(MAX_FIELD_LEN) {
            return Err(DecodeError::TooLong {
                got: got.into(),
                limit: limit.min(MAX_FIELD_LEN).into(),
            });
        }
        Ok(got as usize)
    }

    /// Length-prefixed bytes of at most `limit` bytes.
    pub fn bytes_limited(&mut self, limit: u32) -> Result<&'a [u8], DecodeError> {
        let n = self.len(limit)?;
        self.take(n)
    }

    /// A length-prefixed UTF-8 string of at most `limit` bytes.
    pub fn str_limited(&mut self, limit: u32) -> Result<&'a str, DecodeError> {
        core::str::from_utf8(self.bytes_limited(limit)?).map_err(|_| DecodeError::InvalidUtf8)
    }

    /// An optional value written by [`Writer::option`].
    pub fn option<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> crate::Result<T>,
    ) -> crate::Result<Option<T>> {
        match self.u8()? {
            0 => Ok(None),
            1 => f(self).map(Some),
            got => Err(DecodeError::UnknownDiscriminant {
                what: "option",
                got,
            }
            .into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_big_endian() {
        let mut w = Writer::new();
        w.u16(0x0102);
        w.u32(0x0304_0506);
        w.u64(7);
        w.i64(-1);
        assert_eq!(
            hex::encode(w.into_bytes()),
            "01020304050600000000000000 07ffffffffffffffff".replace(' ', "")
        );
    }

    #[test]
    fn strings_are_length_prefixed() {
        let mut w = Writer::new();
        w.str("ab");
        assert_eq!(w.into_bytes(), [0, 0, 0, 2, b'a', b'b']);
    }

    #[test]
    fn reader_refuses_bad_bool_and_trailing_bytes() {
        assert_eq!(
            Reader::new(&[2]).bool(),
            Err(DecodeError::UnknownDiscriminant {
                what: "bool",
                got: 2
            })
        );
        let mut r = Reader::new(&[1, 9]);
        assert_eq!(r.bool(), Ok(true));
        assert_eq!(r.finish(), Err(DecodeError::TrailingBytes { count: 1 }));
    }

    #[test]
    fn reader_refuses_lengths_beyond_limit_or_input() {
        assert!(matches!(
            Reader::new(&[0, 0, 0, 9, b'x']).bytes_limited(4),
            Err(DecodeError::TooLong { got: 9, limit: 4 })
        ));
        assert_eq!(
            Reader::new(&[0, 0, 0, 3, b'x']).bytes_limited(8),
            Err(DecodeError::UnexpectedEnd)
        );
        assert_eq!(
            Reader::new(&[0, 0, 0, 1, 0xff]).str_limited(8),
            Err(DecodeError::InvalidUtf8)
        );
    }

    #[test]
    fn wrong_tag_is_named() {
        let mut w = Writer::new();
        w.tag("other/v1");
        let bytes = w.into_bytes();
        assert!(matches!(
            Reader::new(&bytes).expect_tag("mediblock/ti/v1"),
            Err(DecodeError::WrongTag { .. })
        ));
    }
}
