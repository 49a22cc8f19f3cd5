//! Reader for TensorFlow Lite models (`.tflite`, a FlatBuffer with file identifier `TFL3`).
//!
//! Hand-written against `tensorflow/lite/schema/schema.fbs` (no generated code): the reader
//! walks FlatBuffer tables through their vtables and checks every offset, vector length and
//! read against the buffer (reads copy bytes, so alignment does not matter), so a truncated
//! or garbage file gives a [`TfliteError`], never a panic. It reads what a port needs:
//!
//! - `Model`: `version`, `operator_codes`, `subgraphs` (only subgraph 0 is decoded),
//!   `description`, `buffers` (inline `data`, or the `offset`/`size` pair of models larger
//!   than 2 GB whose data follows the FlatBuffer);
//! - `SubGraph`: `tensors` (name, shape, type, buffer index), `inputs`, `outputs`,
//!   `operators` (operator code, inputs, outputs, builtin options);
//! - `OperatorCode`: the builtin code is `max(deprecated_builtin_code, builtin_code)`: old
//!   converters (TOCO) wrote only the `deprecated_builtin_code` byte, new ones write both
//!   (the byte saturates at 127, `PLACEHOLDER_FOR_GREATER_OP_CODES`);
//! - builtin options of `CONV_2D`, `DEPTHWISE_CONV_2D`, the 2-D pools, `CONCATENATION`,
//!   `ADD`/`MUL`/`SUB`, `RESIZE_BILINEAR` and `RESIZE_NEAREST_NEIGHBOR`.
//!
//! Layouts are TFLite's own (see [`load_tflite`]): activations NHWC; `CONV_2D` filters OHWI
//! `[O, KH, KW, I]`; `DEPTHWISE_CONV_2D` filters `[1, KH, KW, C * multiplier]`; biases `[O]`.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use thiserror::Error;

use super::{TensorStore, WeightsError};

/// The FlatBuffer file identifier of TFLite models (bytes 4..8).
pub const FILE_IDENTIFIER: &[u8; 4] = b"TFL3";

/// What can go wrong while decoding a TFLite FlatBuffer.
#[derive(Debug, Error)]
pub enum TfliteError {
    /// An offset, length or vtable points outside the buffer or is inconsistent.
    #[error("malformed FlatBuffer at {context}: {message}")]
    Malformed { context: String, message: String },
    /// The buffer is not a TFLite model at all.
    #[error("{0}")]
    NotTflite(String),
}

fn malformed(context: &str, message: impl Into<String>) -> TfliteError {
    TfliteError::Malformed {
        context: context.to_string(),
        message: message.into(),
    }
}

// ---------------------------------------------------------------------------------------
// FlatBuffer primitives (little-endian, bounds-checked)
// ---------------------------------------------------------------------------------------

fn bytes_at<const N: usize>(buf: &[u8], pos: usize, ctx: &str) -> Result<[u8; N], TfliteError> {
    let end = pos
        .checked_add(N)
        .ok_or_else(|| malformed(ctx, "offset overflows"))?;
    let slice = buf.get(pos..end).ok_or_else(|| {
        malformed(
            ctx,
            format!(
                "read of {N} bytes at {pos} past the end ({} bytes)",
                buf.len()
            ),
        )
    })?;
    let mut out = [0u8; N];
    out.copy_from_slice(slice);
    Ok(out)
}

fn read_u8(buf: &[u8], pos: usize, ctx: &str) -> Result<u8, TfliteError> {
    Ok(bytes_at::<1>(buf, pos, ctx)?[0])
}

fn read_u16(buf: &[u8], pos: usize, ctx: &str) -> Result<u16, TfliteError> {
    Ok(u16::from_le_bytes(bytes_at(buf, pos, ctx)?))
}

fn read_u32(buf: &[u8], pos: usize, ctx: &str) -> Result<u32, TfliteError> {
    Ok(u32::from_le_bytes(bytes_at(buf, pos, ctx)?))
}

fn read_i32(buf: &[u8], pos: usize, ctx: &str) -> Result<i32, TfliteError> {
    Ok(i32::from_le_bytes(bytes_at(buf, pos, ctx)?))
}

fn read_u64(buf: &[u8], pos: usize, ctx: &str) -> Result<u64, TfliteError> {
    Ok(u64::from_le_bytes(bytes_at(buf, pos, ctx)?))
}

/// Follows a `uoffset_t` stored at `pos` (relative to `pos`).
fn follow(buf: &[u8], pos: usize, ctx: &str) -> Result<usize, TfliteError> {
    let off = read_u32(buf, pos, ctx)? as usize;
    let target = pos
        .checked_add(off)
        .ok_or_else(|| malformed(ctx, "offset overflows"))?;
    if target >= buf.len() {
        return Err(malformed(
            ctx,
            format!(
                "offset {off} at {pos} points past the end ({} bytes)",
                buf.len()
            ),
        ));
    }
    Ok(target)
}

/// A table: its position and its vtable.
#[derive(Clone, Copy)]
struct Table<'a> {
    buf: &'a [u8],
    pos: usize,
    vtable: usize,
    vtable_len: usize,
}

impl<'a> Table<'a> {
    fn at(buf: &'a [u8], pos: usize, ctx: &str) -> Result<Self, TfliteError> {
        let soff = i64::from(read_i32(buf, pos, ctx)?);
        let vtable = pos as i64 - soff;
        if vtable < 0 || vtable as u64 >= buf.len() as u64 {
            return Err(malformed(
                ctx,
                format!("vtable offset {soff} at {pos} is out of range"),
            ));
        }
        let vtable = vtable as usize;
        let vtable_len = usize::from(read_u16(buf, vtable, ctx)?);
        let table_len = usize::from(read_u16(buf, vtable + 2, ctx)?);
        if vtable_len < 4 || vtable_len % 2 != 0 {
            return Err(malformed(
                ctx,
                format!("vtable length {vtable_len} is invalid"),
            ));
        }
        if vtable
            .checked_add(vtable_len)
            .is_none_or(|end| end > buf.len())
            || pos.checked_add(table_len).is_none_or(|end| end > buf.len())
        {
            return Err(malformed(ctx, "table or vtable extends past the end"));
        }
        Ok(Self {
            buf,
            pos,
            vtable,
            vtable_len,
        })
    }

    /// Absolute position of field `id`, or `None` when absent (default value).
    fn field(&self, id: usize, ctx: &str) -> Result<Option<usize>, TfliteError> {
        let slot = 4 + 2 * id;
        if slot + 2 > self.vtable_len {
            return Ok(None);
        }
        let off = usize::from(read_u16(self.buf, self.vtable + slot, ctx)?);
        if off == 0 {
            return Ok(None);
        }
        Ok(Some(self.pos + off))
    }

    fn u8(&self, id: usize, default: u8, ctx: &str) -> Result<u8, TfliteError> {
        match self.field(id, ctx)? {
            Some(p) => read_u8(self.buf, p, ctx),
            None => Ok(default),
        }
    }

    fn i8(&self, id: usize, default: i8, ctx: &str) -> Result<i8, TfliteError> {
        Ok(self.u8(id, default as u8, ctx)? as i8)
    }

    fn bool(&self, id: usize, ctx: &str) -> Result<bool, TfliteError> {
        Ok(self.u8(id, 0, ctx)? != 0)
    }

    fn i32(&self, id: usize, default: i32, ctx: &str) -> Result<i32, TfliteError> {
        match self.field(id, ctx)? {
            Some(p) => read_i32(self.buf, p, ctx),
            None => Ok(default),
        }
    }

    fn u32(&self, id: usize, default: u32, ctx: &str) -> Result<u32, TfliteError> {
        match self.field(id, ctx)? {
            Some(p) => read_u32(self.buf, p, ctx),
            None => Ok(default),
        }
    }

    fn u64(&self, id: usize, default: u64, ctx: &str) -> Result<u64, TfliteError> {
        match self.field(id, ctx)? {
            Some(p) => read_u64(self.buf, p, ctx),
            None => Ok(default),
        }
    }

    fn table(&self, id: usize, ctx: &str) -> Result<Option<Table<'a>>, TfliteError> {
        match self.field(id, ctx)? {
            Some(p) => Ok(Some(Table::at(self.buf, follow(self.buf, p, ctx)?, ctx)?)),
            None => Ok(None),
        }
    }

    /// A vector of `elem_size`-byte elements: `(start of the first element, length)`.
    fn vector(
        &self,
        id: usize,
        elem_size: usize,
        ctx: &str,
    ) -> Result<Option<Vector<'a>>, TfliteError> {
        let Some(p) = self.field(id, ctx)? else {
            return Ok(None);
        };
        let at = follow(self.buf, p, ctx)?;
        let len = read_u32(self.buf, at, ctx)? as usize;
        let start = at + 4;
        let end = len
            .checked_mul(elem_size)
            .and_then(|n| start.checked_add(n))
            .ok_or_else(|| malformed(ctx, "vector length overflows"))?;
        if end > self.buf.len() {
            return Err(malformed(
                ctx,
                format!("vector of {len} x {elem_size} bytes at {at} runs past the end"),
            ));
        }
        Ok(Some(Vector {
            buf: self.buf,
            start,
            len,
        }))
    }

    fn bytes(&self, id: usize, ctx: &str) -> Result<Option<&'a [u8]>, TfliteError> {
        Ok(self
            .vector(id, 1, ctx)?
            .and_then(|v| v.buf.get(v.start..v.start + v.len)))
    }

    fn string(&self, id: usize, ctx: &str) -> Result<Option<String>, TfliteError> {
        Ok(self
            .bytes(id, ctx)?
            .map(|b| String::from_utf8_lossy(b).into_owned()))
    }

    fn i32s(&self, id: usize, ctx: &str) -> Result<Vec<i32>, TfliteError> {
        match self.vector(id, 4, ctx)? {
            Some(v) => (0..v.len)
                .map(|i| read_i32(v.buf, v.start + 4 * i, ctx))
                .collect(),
            None => Ok(Vec::new()),
        }
    }

    fn tables(&self, id: usize, ctx: &str) -> Result<Vec<Table<'a>>, TfliteError> {
        match self.vector(id, 4, ctx)? {
            Some(v) => (0..v.len)
                .map(|i| {
                    let slot = v.start + 4 * i;
                    Table::at(v.buf, follow(v.buf, slot, ctx)?, ctx)
                })
                .collect(),
            None => Ok(Vec::new()),
        }
    }
}

#[derive(Clone, Copy)]
struct Vector<'a> {
    buf: &'a [u8],
    start: usize,
    len: usize,
}

// ---------------------------------------------------------------------------------------
// Typed model
// ---------------------------------------------------------------------------------------

/// `BuiltinOperator` codes this crate names (schema.fbs); others keep their number.
pub mod builtin {
    pub const ADD: i32 = 0;
    pub const AVERAGE_POOL_2D: i32 = 1;
    pub const CONCATENATION: i32 = 2;
    pub const CONV_2D: i32 = 3;
    pub const DEPTHWISE_CONV_2D: i32 = 4;
    pub const DEQUANTIZE: i32 = 6;
    pub const FULLY_CONNECTED: i32 = 9;
    pub const LOGISTIC: i32 = 14;
    pub const MAX_POOL_2D: i32 = 17;
    pub const MUL: i32 = 18;
    pub const RELU: i32 = 19;
    pub const RELU6: i32 = 21;
    pub const RESHAPE: i32 = 22;
    pub const RESIZE_BILINEAR: i32 = 23;
    pub const PAD: i32 = 34;
    pub const SUB: i32 = 41;
    pub const TRANSPOSE_CONV: i32 = 67;
    pub const RESIZE_NEAREST_NEIGHBOR: i32 = 97;
}

/// A readable name of a builtin operator code.
pub fn builtin_name(code: i32) -> String {
    let name = match code {
        builtin::ADD => "ADD",
        builtin::AVERAGE_POOL_2D => "AVERAGE_POOL_2D",
        builtin::CONCATENATION => "CONCATENATION",
        builtin::CONV_2D => "CONV_2D",
        builtin::DEPTHWISE_CONV_2D => "DEPTHWISE_CONV_2D",
        builtin::DEQUANTIZE => "DEQUANTIZE",
        builtin::FULLY_CONNECTED => "FULLY_CONNECTED",
        builtin::LOGISTIC => "LOGISTIC",
        builtin::MAX_POOL_2D => "MAX_POOL_2D",
        builtin::MUL => "MUL",
        builtin::RELU => "RELU",
        builtin::RELU6 => "RELU6",
        builtin::RESHAPE => "RESHAPE",
        builtin::RESIZE_BILINEAR => "RESIZE_BILINEAR",
        builtin::PAD => "PAD",
        builtin::SUB => "SUB",
        builtin::TRANSPOSE_CONV => "TRANSPOSE_CONV",
        builtin::RESIZE_NEAREST_NEIGHBOR => "RESIZE_NEAREST_NEIGHBOR",
        other => return format!("BUILTIN_{other}"),
    };
    name.to_string()
}

/// `TensorType` (schema.fbs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TensorType {
    Float32,
    Float16,
    Int32,
    UInt8,
    Int64,
    Int8,
    /// Any other type, by its schema number.
    Other(i8),
}

impl TensorType {
    fn from_i8(v: i8) -> Self {
        match v {
            0 => Self::Float32,
            1 => Self::Float16,
            2 => Self::Int32,
            3 => Self::UInt8,
            4 => Self::Int64,
            9 => Self::Int8,
            other => Self::Other(other),
        }
    }

    /// Bytes per element, where known.
    pub fn size(self) -> Option<usize> {
        match self {
            Self::Float32 | Self::Int32 => Some(4),
            Self::Float16 => Some(2),
            Self::UInt8 | Self::Int8 => Some(1),
            Self::Int64 => Some(8),
            Self::Other(_) => None,
        }
    }
}

/// `Padding` of convolutions and pools.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    Same,
    Valid,
}

/// `ActivationFunctionType`, fused into an op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    None,
    Relu,
    ReluN1To1,
    Relu6,
    Tanh,
    SignBit,
    Other(i8),
}

impl Activation {
    fn from_i8(v: i8) -> Self {
        match v {
            0 => Self::None,
            1 => Self::Relu,
            2 => Self::ReluN1To1,
            3 => Self::Relu6,
            4 => Self::Tanh,
            5 => Self::SignBit,
            other => Self::Other(other),
        }
    }
}

/// The builtin options this reader decodes; strides and sizes are `(h, w)`.
#[derive(Clone, Debug, PartialEq)]
pub enum Options {
    None,
    Conv2D {
        padding: Padding,
        stride: (usize, usize),
        dilation: (usize, usize),
        activation: Activation,
    },
    DepthwiseConv2D {
        padding: Padding,
        stride: (usize, usize),
        dilation: (usize, usize),
        depth_multiplier: usize,
        activation: Activation,
    },
    Pool2D {
        padding: Padding,
        stride: (usize, usize),
        filter: (usize, usize),
        activation: Activation,
    },
    Concatenation {
        axis: i32,
        activation: Activation,
    },
    /// `ADD`, `MUL` or `SUB`.
    Elementwise {
        activation: Activation,
    },
    /// `RESIZE_BILINEAR` or `RESIZE_NEAREST_NEIGHBOR`.
    Resize {
        align_corners: bool,
        half_pixel_centers: bool,
    },
    /// Options of another kind, by its `BuiltinOptions` union type number.
    Other(u8),
}

/// One tensor of subgraph 0.
#[derive(Clone, Debug, PartialEq)]
pub struct TfliteTensor {
    pub name: String,
    /// Static shape (`-1` dims, which only dynamic inputs use, are kept as 0).
    pub shape: Vec<usize>,
    pub dtype: TensorType,
    /// Index into the model's buffers; buffer 0 is the empty sentinel.
    pub buffer: usize,
}

/// One operator of subgraph 0.
#[derive(Clone, Debug, PartialEq)]
pub struct TfliteOperator {
    /// Builtin operator code ([`builtin`]); custom ops have code 32 (`CUSTOM`).
    pub code: i32,
    pub version: i32,
    pub custom_code: Option<String>,
    /// Tensor indices; `-1` marks an omitted optional input.
    pub inputs: Vec<i32>,
    pub outputs: Vec<i32>,
    pub options: Options,
}

/// The decoded model (subgraph 0), borrowing constant data from the file's bytes.
#[derive(Clone, Debug)]
pub struct TfliteModel<'a> {
    pub version: u32,
    pub description: Option<String>,
    pub subgraph_count: usize,
    pub tensors: Vec<TfliteTensor>,
    pub operators: Vec<TfliteOperator>,
    pub inputs: Vec<i32>,
    pub outputs: Vec<i32>,
    /// Raw bytes of each buffer (empty for buffers without data).
    pub buffers: Vec<&'a [u8]>,
}

/// A constant float tensor: its index, storage type and raw data.
type FloatConstant<'a> = (usize, DType, &'a [u8]);

fn to_usize(v: i32, what: &str, ctx: &str) -> Result<usize, TfliteError> {
    usize::try_from(v).map_err(|_| malformed(ctx, format!("{what} {v} is negative")))
}

fn padding(v: i8) -> Padding {
    if v == 1 {
        Padding::Valid
    } else {
        Padding::Same
    }
}

fn decode_options(
    code: i32,
    t: Option<Table<'_>>,
    union_type: u8,
    ctx: &str,
) -> Result<Options, TfliteError> {
    let Some(t) = t else {
        return Ok(Options::None);
    };
    let pos = |v: i32, what: &str| -> Result<usize, TfliteError> { to_usize(v, what, ctx) };
    Ok(match code {
        builtin::CONV_2D => Options::Conv2D {
            padding: padding(t.i8(0, 0, ctx)?),
            stride: (
                pos(t.i32(2, 1, ctx)?, "stride_h")?,
                pos(t.i32(1, 1, ctx)?, "stride_w")?,
            ),
            activation: Activation::from_i8(t.i8(3, 0, ctx)?),
            dilation: (
                pos(t.i32(5, 1, ctx)?, "dilation_h")?,
                pos(t.i32(4, 1, ctx)?, "dilation_w")?,
            ),
        },
        builtin::DEPTHWISE_CONV_2D => Options::DepthwiseConv2D {
            padding: padding(t.i8(0, 0, ctx)?),
            stride: (
                pos(t.i32(2, 1, ctx)?, "stride_h")?,
                pos(t.i32(1, 1, ctx)?, "stride_w")?,
            ),
            depth_multiplier: pos(t.i32(3, 1, ctx)?, "depth_multiplier")?,
            activation: Activation::from_i8(t.i8(4, 0, ctx)?),
            dilation: (
                pos(t.i32(6, 1, ctx)?, "dilation_h")?,
                pos(t.i32(5, 1, ctx)?, "dilation_w")?,
            ),
        },
        builtin::AVERAGE_POOL_2D | builtin::MAX_POOL_2D => Options::Pool2D {
            padding: padding(t.i8(0, 0, ctx)?),
            stride: (
                pos(t.i32(2, 1, ctx)?, "stride_h")?,
                pos(t.i32(1, 1, ctx)?, "stride_w")?,
            ),
            filter: (
                pos(t.i32(4, 1, ctx)?, "filter_h")?,
                pos(t.i32(3, 1, ctx)?, "filter_w")?,
            ),
            activation: Activation::from_i8(t.i8(5, 0, ctx)?),
        },
        builtin::CONCATENATION => Options::Concatenation {
            axis: t.i32(0, 0, ctx)?,
            activation: Activation::from_i8(t.i8(1, 0, ctx)?),
        },
        builtin::ADD | builtin::MUL | builtin::SUB => Options::Elementwise {
            activation: Activation::from_i8(t.i8(0, 0, ctx)?),
        },
        // ResizeBilinearOptions: new_height, new_width (deprecated), align_corners,
        // half_pixel_centers. ResizeNearestNeighborOptions: align_corners, half_pixel_centers.
        builtin::RESIZE_BILINEAR => Options::Resize {
            align_corners: t.bool(2, ctx)?,
            half_pixel_centers: t.bool(3, ctx)?,
        },
        builtin::RESIZE_NEAREST_NEIGHBOR => Options::Resize {
            align_corners: t.bool(0, ctx)?,
            half_pixel_centers: t.bool(1, ctx)?,
        },
        _ => Options::Other(union_type),
    })
}

impl<'a> TfliteModel<'a> {
    /// Decodes `bytes`; checks the `TFL3` identifier and every offset.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, TfliteError> {
        if bytes.len() < 8 {
            return Err(TfliteError::NotTflite(format!(
                "{} bytes is too short for a TFLite model",
                bytes.len()
            )));
        }
        if bytes.get(4..8) != Some(FILE_IDENTIFIER.as_slice()) {
            return Err(TfliteError::NotTflite(
                "no 'TFL3' FlatBuffer identifier at bytes 4..8".into(),
            ));
        }
        let model = Table::at(bytes, follow(bytes, 0, "root")?, "Model")?;
        let version = model.u32(0, 0, "Model.version")?;
        let description = model.string(3, "Model.description")?;

        // Operator codes.
        let mut codes = Vec::new();
        for (i, oc) in model.tables(1, "Model.operator_codes")?.iter().enumerate() {
            let ctx = format!("operator_codes[{i}]");
            let deprecated = i32::from(oc.i8(0, 0, &ctx)?);
            let custom = oc.string(1, &ctx)?;
            let version = oc.i32(2, 1, &ctx)?;
            let code = oc.i32(3, 0, &ctx)?;
            codes.push((deprecated.max(code), version, custom));
        }

        // Buffers.
        let mut buffers = Vec::new();
        for (i, b) in model.tables(4, "Model.buffers")?.iter().enumerate() {
            let ctx = format!("buffers[{i}]");
            let data = match b.bytes(0, &ctx)? {
                Some(d) if !d.is_empty() => d,
                _ => {
                    let offset = b.u64(1, 0, &ctx)?;
                    let size = b.u64(2, 0, &ctx)?;
                    if offset > 1 {
                        let range = usize::try_from(offset)
                            .ok()
                            .zip(usize::try_from(size).ok())
                            .and_then(|(o, s)| o.checked_add(s).map(|e| o..e));
                        range
                            .and_then(|r| bytes.get(r))
                            .ok_or_else(|| malformed(&ctx, "external data runs past the end"))?
                    } else {
                        &[]
                    }
                }
            };
            buffers.push(data);
        }

        // Subgraph 0.
        let subgraphs = model.tables(2, "Model.subgraphs")?;
        let sg = subgraphs
            .first()
            .ok_or_else(|| malformed("Model.subgraphs", "the model has no subgraph"))?;
        let mut tensors = Vec::new();
        for (i, t) in sg.tables(0, "SubGraph.tensors")?.iter().enumerate() {
            let ctx = format!("tensors[{i}]");
            let shape = t
                .i32s(0, &ctx)?
                .into_iter()
                .map(|d| usize::try_from(d).unwrap_or(0))
                .collect();
            let dtype = TensorType::from_i8(t.i8(1, 0, &ctx)?);
            let buffer = t.u32(2, 0, &ctx)? as usize;
            if buffer >= buffers.len().max(1) {
                return Err(malformed(
                    &ctx,
                    format!(
                        "buffer index {buffer} out of range ({} buffers)",
                        buffers.len()
                    ),
                ));
            }
            let name = t.string(3, &ctx)?.unwrap_or_default();
            tensors.push(TfliteTensor {
                name,
                shape,
                dtype,
                buffer,
            });
        }
        let check_indices = |v: &[i32], ctx: &str| -> Result<(), TfliteError> {
            for &i in v {
                if i < -1 || i64::from(i) >= tensors.len() as i64 {
                    return Err(malformed(ctx, format!("tensor index {i} out of range")));
                }
            }
            Ok(())
        };
        let inputs = sg.i32s(1, "SubGraph.inputs")?;
        let outputs = sg.i32s(2, "SubGraph.outputs")?;
        check_indices(&inputs, "SubGraph.inputs")?;
        check_indices(&outputs, "SubGraph.outputs")?;

        let mut operators = Vec::new();
        for (i, op) in sg.tables(3, "SubGraph.operators")?.iter().enumerate() {
            let ctx = format!("operators[{i}]");
            let index = op.u32(0, 0, &ctx)? as usize;
            let (code, version, custom_code) = codes.get(index).cloned().ok_or_else(|| {
                malformed(
                    &ctx,
                    format!("opcode index {index} out of range ({} codes)", codes.len()),
                )
            })?;
            let inputs = op.i32s(1, &ctx)?;
            let outputs = op.i32s(2, &ctx)?;
            check_indices(&inputs, &ctx)?;
            check_indices(&outputs, &ctx)?;
            let union_type = op.u8(3, 0, &ctx)?;
            let options = decode_options(code, op.table(4, &ctx)?, union_type, &ctx)?;
            operators.push(TfliteOperator {
                code,
                version,
                custom_code,
                inputs,
                outputs,
                options,
            });
        }

        Ok(Self {
            version,
            description,
            subgraph_count: subgraphs.len(),
            tensors,
            operators,
            inputs,
            outputs,
            buffers,
        })
    }

    /// The tensor at `index` (an operator's input/output index), if valid.
    pub fn tensor(&self, index: i32) -> Option<&TfliteTensor> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.tensors.get(i))
    }

    /// The raw constant data of `tensor` (empty for activations).
    pub fn data(&self, tensor: &TfliteTensor) -> &'a [u8] {
        if tensor.buffer == 0 {
            return &[];
        }
        self.buffers.get(tensor.buffer).copied().unwrap_or(&[])
    }

    /// The constant float tensors (`FLOAT32`, or `FLOAT16` widened to f32), by name, with
    /// the byte range of their data checked against their shape.
    fn float_constants(&self) -> Result<Vec<FloatConstant<'a>>, TfliteError> {
        let mut out = Vec::new();
        for (index, t) in self.tensors.iter().enumerate() {
            let data = self.data(t);
            if data.is_empty() {
                continue;
            }
            let (dtype, size) = match t.dtype {
                TensorType::Float32 => (DType::F32, 4usize),
                TensorType::Float16 => (DType::F16, 2),
                _ => continue,
            };
            let expected = t
                .shape
                .iter()
                .try_fold(size, |acc, &d| acc.checked_mul(d))
                .unwrap_or(usize::MAX);
            if data.len() != expected {
                return Err(malformed(
                    &format!("tensor '{}'", t.name),
                    format!(
                        "shape {:?} needs {} bytes but its buffer holds {}",
                        t.shape,
                        expected,
                        data.len()
                    ),
                ));
            }
            out.push((index, dtype, data));
        }
        Ok(out)
    }
}

/// Reads every constant float tensor of a TFLite model's subgraph 0 into a
/// [`TensorStore`] on `device`, keyed by TFLite tensor name, in TFLite's own layout:
/// `CONV_2D` filters OHWI `[O, KH, KW, I]`, `DEPTHWISE_CONV_2D` filters
/// `[1, KH, KW, C * multiplier]`, biases `[O]`. `FLOAT32` is taken as is; `FLOAT16` is
/// widened to f32, and is also stored under the output name of a `DEQUANTIZE` op that
/// widens it (the name the consuming ops refer to). `file` names the source in errors.
pub fn load_tflite(bytes: &[u8], file: &str, device: &Device) -> Result<TensorStore, WeightsError> {
    let format_err = |message: String| WeightsError::Format {
        file: file.to_string(),
        format: "TFLite model",
        message,
    };
    let model = TfliteModel::parse(bytes).map_err(|e| format_err(e.to_string()))?;
    let consts = model
        .float_constants()
        .map_err(|e| format_err(e.to_string()))?;
    let mut tensors = HashMap::new();
    let mut by_index: HashMap<usize, Tensor> = HashMap::new();
    for (index, dtype, data) in consts {
        let Some(t) = model.tensors.get(index) else {
            continue;
        };
        let tensor_err = |source: candle_core::Error| WeightsError::Tensor {
            file: file.to_string(),
            name: t.name.clone(),
            source: Box::new(source),
        };
        let value = Tensor::from_raw_buffer(data, dtype, &t.shape, &Device::Cpu)
            .and_then(|v| v.to_dtype(DType::F32))
            .and_then(|v| v.to_device(device))
            .map_err(tensor_err)?;
        by_index.insert(index, value.clone());
        tensors.insert(t.name.clone(), value);
    }
    // DEQUANTIZE of a constant: the consumers read the op's output.
    for op in &model.operators {
        if op.code != builtin::DEQUANTIZE {
            continue;
        }
        let (Some(&input), Some(&output)) = (op.inputs.first(), op.outputs.first()) else {
            continue;
        };
        let (Ok(input), Some(out)) = (usize::try_from(input), model.tensor(output)) else {
            continue;
        };
        if let Some(v) = by_index.get(&input) {
            tensors.entry(out.name.clone()).or_insert_with(|| v.clone());
        }
    }
    if tensors.is_empty() {
        return Err(format_err("the model holds no float constants".into()));
    }
    Ok(TensorStore::new(file, tensors))
}

#[cfg(test)]
mod tests;
