//! A minimal, safe decoder for the protobuf wire format.
//!
//! No schema, no code generation: callers walk a message with [`Fields`], match on field
//! numbers and read each [`Field`] with the accessor that fits its declared type. Unknown
//! fields are simply ignored by the caller. Every malformed input (truncated varint, a
//! length running past the end, a varint wider than 64 bits, a field number of 0, the
//! deprecated group wire types 3/4) yields a [`ProtobufError`] carrying the byte offset
//! where decoding failed; nothing here panics on any input.
//!
//! Offsets are absolute within the outermost buffer: [`Field::as_message`] hands out a
//! [`Fields`] iterator that knows where its bytes started.
//!
//! Repeated scalar fields may arrive packed (one length-delimited blob) or unpacked (one
//! tag per value); the `extend_*` helpers on [`Field`] accept both, as protobuf parsers
//! must.

use thiserror::Error;

/// Why a byte buffer is not valid protobuf wire format.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtobufError {
    /// The buffer ended in the middle of a varint.
    #[error("truncated varint at byte offset {offset}")]
    TruncatedVarint { offset: usize },
    /// A varint had more than 64 significant bits.
    #[error("varint wider than 64 bits at byte offset {offset}")]
    VarintOverflow { offset: usize },
    /// A fixed-width value or a length-delimited payload runs past the end of the buffer.
    #[error("{what} at byte offset {offset} needs {needed} bytes but only {available} remain")]
    Truncated {
        what: &'static str,
        offset: usize,
        needed: u64,
        available: usize,
    },
    /// Wire types 3 and 4 (groups) and 6/7 (undefined) are not supported.
    #[error("unsupported wire type {wire_type} for field {field} at byte offset {offset}")]
    UnsupportedWireType {
        wire_type: u8,
        field: u64,
        offset: usize,
    },
    /// Field number 0 or above 2^29 - 1.
    #[error("invalid field number {field} at byte offset {offset}")]
    InvalidFieldNumber { field: u64, offset: usize },
    /// A field was encoded with a wire type that does not fit its declared type.
    #[error("field {field} at byte offset {offset} has wire type {found}, expected {expected}")]
    UnexpectedWireType {
        field: u32,
        offset: usize,
        expected: &'static str,
        found: &'static str,
    },
    /// A packed fixed-width field whose byte length is not a multiple of the element size.
    #[error(
        "packed field {field} at byte offset {offset} has {len} bytes, \
         not a multiple of {elem_size}"
    )]
    RaggedPacked {
        field: u32,
        offset: usize,
        len: usize,
        elem_size: usize,
    },
    /// A string field that is not valid UTF-8.
    #[error("string field {field} at byte offset {offset} is not valid UTF-8")]
    InvalidUtf8 { field: u32, offset: usize },
    /// Messages nested deeper than a reader's limit (guards recursive schemas).
    #[error("messages nested deeper than {limit} levels at byte offset {offset}")]
    TooDeep { limit: usize, offset: usize },
}

/// Decodes a base-128 varint at the start of `buf`, returning the value and the number of
/// bytes it took. Error offsets are relative to `buf`.
pub fn decode_varint(buf: &[u8]) -> Result<(u64, usize), ProtobufError> {
    let mut value: u64 = 0;
    for (i, &byte) in buf.iter().enumerate().take(10) {
        if i == 9 && byte > 1 {
            // The tenth byte may only contribute bit 63 and must end the varint.
            return Err(ProtobufError::VarintOverflow { offset: 0 });
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    Err(ProtobufError::TruncatedVarint { offset: 0 })
}

/// A decoded field value, still in its wire representation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WireValue<'a> {
    /// Wire type 0: int32/64, uint32/64, sint32/64, bool, enum.
    Varint(u64),
    /// Wire type 1: fixed64, sfixed64, double.
    Fixed64(u64),
    /// Wire type 2: bytes, string, embedded message, packed repeated scalars.
    LengthDelimited(&'a [u8]),
    /// Wire type 5: fixed32, sfixed32, float.
    Fixed32(u32),
}

impl WireValue<'_> {
    /// The wire type's name, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            WireValue::Varint(_) => "varint",
            WireValue::Fixed64(_) => "fixed64",
            WireValue::LengthDelimited(_) => "length-delimited",
            WireValue::Fixed32(_) => "fixed32",
        }
    }
}

/// One field of a message: its number, value and where it sits in the buffer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Field<'a> {
    /// The field number from the tag.
    pub number: u32,
    /// The value in its wire representation.
    pub value: WireValue<'a>,
    /// Absolute byte offset of the field's tag.
    pub offset: usize,
    /// Absolute byte offset of the value (for length-delimited fields, of the payload).
    pub data_offset: usize,
}

impl<'a> Field<'a> {
    fn unexpected(&self, expected: &'static str) -> ProtobufError {
        ProtobufError::UnexpectedWireType {
            field: self.number,
            offset: self.offset,
            expected,
            found: self.value.kind(),
        }
    }

    /// The raw varint (uint64 / uint32 fields).
    pub fn as_varint(&self) -> Result<u64, ProtobufError> {
        match self.value {
            WireValue::Varint(v) => Ok(v),
            _ => Err(self.unexpected("varint")),
        }
    }

    /// An `int64` field (two's complement in the varint).
    pub fn as_i64(&self) -> Result<i64, ProtobufError> {
        self.as_varint().map(|v| v as i64)
    }

    /// An `int32` or enum field; like protobuf itself, keeps the low 32 bits.
    pub fn as_i32(&self) -> Result<i32, ProtobufError> {
        self.as_varint().map(|v| v as i32)
    }

    /// A `bool` field (any non-zero varint is true).
    pub fn as_bool(&self) -> Result<bool, ProtobufError> {
        self.as_varint().map(|v| v != 0)
    }

    /// A `float` field.
    pub fn as_f32(&self) -> Result<f32, ProtobufError> {
        match self.value {
            WireValue::Fixed32(v) => Ok(f32::from_bits(v)),
            _ => Err(self.unexpected("fixed32")),
        }
    }

    /// A `double` field.
    pub fn as_f64(&self) -> Result<f64, ProtobufError> {
        match self.value {
            WireValue::Fixed64(v) => Ok(f64::from_bits(v)),
            _ => Err(self.unexpected("fixed64")),
        }
    }

    /// A `bytes` field (or any length-delimited payload).
    pub fn as_bytes(&self) -> Result<&'a [u8], ProtobufError> {
        match self.value {
            WireValue::LengthDelimited(b) => Ok(b),
            _ => Err(self.unexpected("length-delimited")),
        }
    }

    /// A `string` field, which must be UTF-8.
    pub fn as_str(&self) -> Result<&'a str, ProtobufError> {
        let bytes = self.as_bytes()?;
        std::str::from_utf8(bytes).map_err(|_| ProtobufError::InvalidUtf8 {
            field: self.number,
            offset: self.data_offset,
        })
    }

    /// An embedded message, as an iterator over its fields with absolute offsets.
    pub fn as_message(&self) -> Result<Fields<'a>, ProtobufError> {
        let bytes = self.as_bytes()?;
        Ok(Fields::with_base(bytes, self.data_offset))
    }

    /// Appends a repeated `float` field (packed or one unpacked value) to `out`.
    pub fn extend_f32(&self, out: &mut Vec<f32>) -> Result<(), ProtobufError> {
        match self.value {
            WireValue::Fixed32(v) => {
                out.push(f32::from_bits(v));
                Ok(())
            }
            WireValue::LengthDelimited(b) => {
                self.check_multiple(b, 4)?;
                out.extend(b.chunks_exact(4).map(|c| f32::from_le_bytes(le_array(c))));
                Ok(())
            }
            _ => Err(self.unexpected("fixed32 or packed")),
        }
    }

    /// Appends a repeated `double` field (packed or one unpacked value) to `out`.
    pub fn extend_f64(&self, out: &mut Vec<f64>) -> Result<(), ProtobufError> {
        match self.value {
            WireValue::Fixed64(v) => {
                out.push(f64::from_bits(v));
                Ok(())
            }
            WireValue::LengthDelimited(b) => {
                self.check_multiple(b, 8)?;
                out.extend(b.chunks_exact(8).map(|c| f64::from_le_bytes(le_array(c))));
                Ok(())
            }
            _ => Err(self.unexpected("fixed64 or packed")),
        }
    }

    /// Appends a repeated varint field (packed or one unpacked value), converting each
    /// raw value with `convert`.
    pub fn extend_varints<T>(
        &self,
        out: &mut Vec<T>,
        convert: impl Fn(u64) -> T,
    ) -> Result<(), ProtobufError> {
        match self.value {
            WireValue::Varint(v) => {
                out.push(convert(v));
                Ok(())
            }
            WireValue::LengthDelimited(b) => {
                for v in PackedVarints::with_base(b, self.data_offset) {
                    out.push(convert(v?));
                }
                Ok(())
            }
            _ => Err(self.unexpected("varint or packed")),
        }
    }

    /// Appends a repeated `int64` field.
    pub fn extend_i64(&self, out: &mut Vec<i64>) -> Result<(), ProtobufError> {
        self.extend_varints(out, |v| v as i64)
    }

    /// Appends a repeated `int32` or enum field (low 32 bits of each varint).
    pub fn extend_i32(&self, out: &mut Vec<i32>) -> Result<(), ProtobufError> {
        self.extend_varints(out, |v| v as i32)
    }

    /// Appends a repeated `bool` field.
    pub fn extend_bool(&self, out: &mut Vec<bool>) -> Result<(), ProtobufError> {
        self.extend_varints(out, |v| v != 0)
    }

    fn check_multiple(&self, b: &[u8], elem_size: usize) -> Result<(), ProtobufError> {
        if b.len().is_multiple_of(elem_size) {
            Ok(())
        } else {
            Err(ProtobufError::RaggedPacked {
                field: self.number,
                offset: self.offset,
                len: b.len(),
                elem_size,
            })
        }
    }
}

/// Copies a chunk from `chunks_exact(N)` into an array (the length always matches).
fn le_array<const N: usize>(chunk: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(chunk);
    a
}

/// Iterator over the fields of one message. Yields `Err` once on malformed input and then
/// stops.
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
    done: bool,
}

impl<'a> Fields<'a> {
    /// Fields of a top-level message; offsets count from the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self::with_base(buf, 0)
    }

    /// Fields of a message whose first byte sits at absolute offset `base`.
    pub fn with_base(buf: &'a [u8], base: usize) -> Self {
        Self {
            buf,
            pos: 0,
            base,
            done: false,
        }
    }

    /// Absolute offset of the next byte to be read.
    pub fn offset(&self) -> usize {
        self.base.saturating_add(self.pos)
    }

    fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }

    fn varint(&mut self) -> Result<u64, ProtobufError> {
        let offset = self.offset();
        let (v, n) = decode_varint(self.rest()).map_err(|e| with_offset(e, offset))?;
        self.pos += n;
        Ok(v)
    }

    fn take(&mut self, what: &'static str, needed: u64) -> Result<&'a [u8], ProtobufError> {
        let rest = self.rest();
        let err = || ProtobufError::Truncated {
            what,
            offset: self.offset(),
            needed,
            available: rest.len(),
        };
        let n = usize::try_from(needed).map_err(|_| err())?;
        let bytes = rest.get(..n).ok_or_else(err)?;
        self.pos += n;
        Ok(bytes)
    }

    fn read_field(&mut self) -> Result<Field<'a>, ProtobufError> {
        let offset = self.offset();
        let tag = self.varint()?;
        let number = tag >> 3;
        let number = match u32::try_from(number) {
            Ok(n) if (1..=0x1fff_ffff).contains(&n) => n,
            _ => {
                return Err(ProtobufError::InvalidFieldNumber {
                    field: number,
                    offset,
                })
            }
        };
        let data_offset = self.offset();
        let value = match tag & 7 {
            0 => WireValue::Varint(self.varint()?),
            1 => WireValue::Fixed64(u64::from_le_bytes(le_array(self.take("fixed64", 8)?))),
            2 => {
                let len = self.varint()?;
                let payload_offset = self.offset();
                let payload = self.take("length-delimited field", len)?;
                return Ok(Field {
                    number,
                    value: WireValue::LengthDelimited(payload),
                    offset,
                    data_offset: payload_offset,
                });
            }
            5 => WireValue::Fixed32(u32::from_le_bytes(le_array(self.take("fixed32", 4)?))),
            wire_type => {
                return Err(ProtobufError::UnsupportedWireType {
                    wire_type: wire_type as u8,
                    field: u64::from(number),
                    offset,
                })
            }
        };
        Ok(Field {
            number,
            value,
            offset,
            data_offset,
        })
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<Field<'a>, ProtobufError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.buf.len() {
            return None;
        }
        let field = self.read_field();
        if field.is_err() {
            self.done = true;
        }
        Some(field)
    }
}

impl std::iter::FusedIterator for Fields<'_> {}

/// Iterator over the varints of a packed repeated field's payload.
#[derive(Debug, Clone)]
pub struct PackedVarints<'a> {
    inner: Fields<'a>,
}

impl<'a> PackedVarints<'a> {
    /// Varints in `buf`, whose first byte sits at absolute offset `base`.
    pub fn with_base(buf: &'a [u8], base: usize) -> Self {
        Self {
            inner: Fields::with_base(buf, base),
        }
    }
}

impl Iterator for PackedVarints<'_> {
    type Item = Result<u64, ProtobufError>;

    fn next(&mut self) -> Option<Self::Item> {
        let it = &mut self.inner;
        if it.done || it.pos >= it.buf.len() {
            return None;
        }
        let v = it.varint();
        if v.is_err() {
            it.done = true;
        }
        Some(v)
    }
}

/// Rewrites the relative offset of a [`decode_varint`] error to an absolute one.
fn with_offset(e: ProtobufError, offset: usize) -> ProtobufError {
    match e {
        ProtobufError::TruncatedVarint { .. } => ProtobufError::TruncatedVarint { offset },
        ProtobufError::VarintOverflow { .. } => ProtobufError::VarintOverflow { offset },
        other => other,
    }
}

/// A tiny protobuf encoder for building test messages by hand.
#[cfg(test)]
pub(crate) mod test_encoder {
    /// Builder for one message's bytes.
    #[derive(Debug, Clone, Default)]
    pub(crate) struct Enc(pub(crate) Vec<u8>);

    impl Enc {
        pub(crate) fn new() -> Self {
            Self::default()
        }
        pub(crate) fn raw_varint(mut self, mut v: u64) -> Self {
            loop {
                let byte = (v & 0x7f) as u8;
                v >>= 7;
                if v == 0 {
                    self.0.push(byte);
                    return self;
                }
                self.0.push(byte | 0x80);
            }
        }
        pub(crate) fn tag(self, field: u32, wire_type: u8) -> Self {
            self.raw_varint((u64::from(field) << 3) | u64::from(wire_type))
        }
        pub(crate) fn varint(self, field: u32, v: u64) -> Self {
            self.tag(field, 0).raw_varint(v)
        }
        pub(crate) fn fixed32(mut self, field: u32, v: u32) -> Self {
            self = self.tag(field, 5);
            self.0.extend_from_slice(&v.to_le_bytes());
            self
        }
        pub(crate) fn fixed64(mut self, field: u32, v: u64) -> Self {
            self = self.tag(field, 1);
            self.0.extend_from_slice(&v.to_le_bytes());
            self
        }
        pub(crate) fn bytes(mut self, field: u32, b: &[u8]) -> Self {
            self = self.tag(field, 2).raw_varint(b.len() as u64);
            self.0.extend_from_slice(b);
            self
        }
        pub(crate) fn msg(self, field: u32, m: &Enc) -> Self {
            self.bytes(field, &m.0)
        }
        pub(crate) fn packed_f32(self, field: u32, vals: &[f32]) -> Self {
            let b: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
            self.bytes(field, &b)
        }
        pub(crate) fn packed_f64(self, field: u32, vals: &[f64]) -> Self {
            let b: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
            self.bytes(field, &b)
        }
        pub(crate) fn packed_varint(self, field: u32, vals: &[u64]) -> Self {
            let inner = vals.iter().fold(Enc::new(), |e, &v| e.raw_varint(v));
            self.bytes(field, &inner.0)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::test_encoder::Enc;
    use super::*;

    fn collect(buf: &[u8]) -> Result<Vec<Field<'_>>, ProtobufError> {
        Fields::new(buf).collect()
    }

    #[test]
    fn varints_round_trip() {
        for v in [0u64, 1, 127, 128, 300, 1 << 35, u64::MAX - 1, u64::MAX] {
            let enc = Enc::new().raw_varint(v).0;
            assert_eq!(decode_varint(&enc).unwrap(), (v, enc.len()), "value {v}");
            // Every strict prefix is truncated.
            for cut in 0..enc.len() {
                assert_eq!(
                    decode_varint(&enc[..cut]),
                    Err(ProtobufError::TruncatedVarint { offset: 0 })
                );
            }
        }
        assert_eq!(decode_varint(&[0xac, 0x02, 0xff]).unwrap(), (300, 2));
    }

    #[test]
    fn varint_overflow_is_rejected() {
        let mut too_wide = vec![0xff; 9];
        too_wide.push(0x02);
        assert!(matches!(
            decode_varint(&too_wide),
            Err(ProtobufError::VarintOverflow { .. })
        ));
        let eleven = [0x80u8; 11];
        assert!(matches!(
            decode_varint(&eleven),
            Err(ProtobufError::VarintOverflow { .. })
        ));
        // -1 as int64 is ten bytes and fits.
        let minus_one = Enc::new().raw_varint(u64::MAX).0;
        assert_eq!(minus_one.len(), 10);
        assert_eq!(decode_varint(&minus_one).unwrap().0 as i64, -1);
    }

    #[test]
    fn iterates_all_wire_types() {
        let msg = Enc::new()
            .varint(1, 150)
            .fixed64(2, 2.5f64.to_bits())
            .bytes(3, b"hi")
            .fixed32(4, 1.5f32.to_bits())
            .varint(5, u64::MAX)
            .0;
        let f = collect(&msg).unwrap();
        assert_eq!(f.len(), 5);
        assert_eq!(f[0].number, 1);
        assert_eq!(f[0].as_varint().unwrap(), 150);
        assert_eq!(f[1].as_f64().unwrap(), 2.5);
        assert_eq!(f[2].as_str().unwrap(), "hi");
        assert_eq!(f[2].data_offset, f[2].offset + 2);
        assert_eq!(f[3].as_f32().unwrap(), 1.5);
        assert_eq!(f[4].as_i64().unwrap(), -1);
        assert_eq!(f[4].as_i32().unwrap(), -1);
        assert!(matches!(
            f[0].as_bytes(),
            Err(ProtobufError::UnexpectedWireType { field: 1, .. })
        ));
    }

    #[test]
    fn nested_offsets_are_absolute() {
        let inner = Enc::new().varint(1, 7).bytes(2, &[0xff, 0xfe]);
        let outer = Enc::new().varint(9, 1).msg(3, &inner).0;
        let f = collect(&outer).unwrap();
        let nested: Vec<_> = f[1]
            .as_message()
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(nested[0].offset, f[1].data_offset);
        assert_eq!(nested[1].as_bytes().unwrap(), &[0xff, 0xfe]);
        let err = nested[1].as_str().unwrap_err();
        assert_eq!(
            err,
            ProtobufError::InvalidUtf8 {
                field: 2,
                offset: nested[1].data_offset
            }
        );
        assert_eq!(outer[nested[1].data_offset], 0xff);
    }

    #[test]
    fn malformed_inputs_are_errors() {
        // Length past end.
        let bad_len = [0x0a, 0x05, 1, 2];
        assert!(matches!(
            collect(&bad_len),
            Err(ProtobufError::Truncated {
                offset: 2,
                needed: 5,
                available: 2,
                ..
            })
        ));
        // Huge length must not overflow anything.
        let huge = Enc::new().tag(1, 2).raw_varint(u64::MAX).0;
        assert!(matches!(
            collect(&huge),
            Err(ProtobufError::Truncated { .. })
        ));
        // Groups and undefined wire types.
        for wt in [3u8, 4, 6, 7] {
            let m = Enc::new().tag(2, wt).0;
            assert!(matches!(
                collect(&m),
                Err(ProtobufError::UnsupportedWireType { wire_type, field: 2, offset: 0 })
                    if wire_type == wt
            ));
        }
        // Field number 0 and too-large field numbers.
        assert!(matches!(
            collect(&[0x00, 0x01]),
            Err(ProtobufError::InvalidFieldNumber { field: 0, .. })
        ));
        let big = Enc::new().raw_varint(1u64 << 40).0;
        assert!(matches!(
            collect(&big),
            Err(ProtobufError::InvalidFieldNumber { .. })
        ));
        // Truncated fixed-width values.
        assert!(matches!(
            collect(&[0x0d, 1, 2, 3]),
            Err(ProtobufError::Truncated {
                what: "fixed32",
                ..
            })
        ));
        assert!(matches!(
            collect(&[0x09, 1, 2, 3, 4, 5, 6, 7]),
            Err(ProtobufError::Truncated {
                what: "fixed64",
                ..
            })
        ));
    }

    #[test]
    fn every_truncation_of_a_message_errors() {
        let msg = Enc::new()
            .bytes(1, b"abcdef")
            .fixed64(2, 1)
            .fixed32(3, 1)
            .varint(4, 1 << 50)
            .0;
        let field_ends = {
            let mut ends = vec![];
            let mut it = Fields::new(&msg);
            while it.next().is_some() {
                ends.push(it.offset());
            }
            ends
        };
        for cut in 1..msg.len() {
            let r = collect(&msg[..cut]);
            assert_eq!(r.is_ok(), field_ends.contains(&cut), "cut at {cut}");
        }
    }

    #[test]
    fn iterator_stops_after_error() {
        let mut it = Fields::new(&[0x08, 0x80]);
        assert!(matches!(
            it.next(),
            Some(Err(ProtobufError::TruncatedVarint { offset: 1 }))
        ));
        assert!(it.next().is_none());
    }

    #[test]
    fn packed_and_unpacked_repeated_fields() {
        let msg = Enc::new()
            .packed_f32(1, &[1.0, -2.0, 3.5])
            .fixed32(1, 4.0f32.to_bits())
            .packed_varint(2, &[1, 300, u64::MAX])
            .varint(2, 5)
            .packed_f64(3, &[0.25])
            .fixed64(3, 8.0f64.to_bits())
            .0;
        let (mut fs, mut is, mut ds) = (vec![], vec![], vec![]);
        for f in Fields::new(&msg) {
            let f = f.unwrap();
            match f.number {
                1 => f.extend_f32(&mut fs).unwrap(),
                2 => f.extend_i64(&mut is).unwrap(),
                3 => f.extend_f64(&mut ds).unwrap(),
                _ => unreachable!(),
            }
        }
        assert_eq!(fs, [1.0, -2.0, 3.5, 4.0]);
        assert_eq!(is, [1, 300, -1, 5]);
        assert_eq!(ds, [0.25, 8.0]);
    }

    #[test]
    fn malformed_packed_fields_are_errors() {
        let ragged = Enc::new().bytes(1, &[0, 0, 128, 63, 0]).0;
        let f = collect(&ragged).unwrap();
        assert!(matches!(
            f[0].extend_f32(&mut vec![]),
            Err(ProtobufError::RaggedPacked {
                len: 5,
                elem_size: 4,
                ..
            })
        ));
        assert!(matches!(
            f[0].extend_f64(&mut vec![]),
            Err(ProtobufError::RaggedPacked { elem_size: 8, .. })
        ));
        let bad_varints = Enc::new().bytes(1, &[0x01, 0x80]).0;
        let f = collect(&bad_varints).unwrap();
        let mut out = vec![];
        assert_eq!(
            f[0].extend_i32(&mut out),
            Err(ProtobufError::TruncatedVarint { offset: 3 })
        );
        let wrong = Enc::new().fixed64(1, 0).0;
        let f = collect(&wrong).unwrap();
        assert!(f[0].extend_bool(&mut vec![]).is_err());
        assert!(f[0].extend_f32(&mut vec![]).is_err());
    }
}
