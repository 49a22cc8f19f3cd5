//! Reader for TensorFlow frozen graphs (`GraphDef` protobuf, usually a `.pb` file).
//!
//! A frozen graph is a flat list of [`NodeDef`]s; the trained weights are `Const` nodes
//! whose `value` attr holds a `TensorProto`. [`GraphDef::parse`] decodes every node with
//! its attrs (checking that each `Const` has a usable tensor) and
//! [`GraphDef::constants`] hands the weights out as [`ConstTensor`]s, which convert to
//! `f32` with [`ConstTensor::to_f32`]. Fields this reader does not model (the function
//! `library`, debug info, complex/resource/variant tensor values) are skipped.
//!
//! Tensors are kept in TensorFlow's own layouts; callers convert when they load:
//! - `Conv2D` kernels are HWIO: `[kh, kw, in_channels, out_channels]`;
//! - `DepthwiseConv2dNative` kernels are `[kh, kw, in_channels, channel_multiplier]`;
//! - activations are NHWC unless a node's `data_format` attr says `NCHW`;
//! - `tensor_content` holds the values row-major (last dimension fastest), little-endian.
//!
//! Field numbers follow `tensorflow/core/framework/{graph,node_def,attr_value,tensor,
//! tensor_shape,types,versions}.proto`.

use std::collections::BTreeMap;
use std::fmt;

use thiserror::Error;

use super::protobuf::{Field, Fields, ProtobufError};

/// How deeply `func` attrs (which contain attrs) may nest before parsing gives up.
const MAX_ATTR_DEPTH: usize = 32;

/// Most elements a "splat" (one stored value filling a larger shape) may expand to: 16 M,
/// far above any splat a frozen graph holds, and it stops a 60-byte file from asking for
/// gigabytes.
const MAX_SPLAT_ELEMENTS: usize = 1 << 24;

/// What can go wrong while reading a frozen graph.
#[derive(Debug, Error)]
pub enum GraphDefError {
    /// The bytes are not a valid protobuf encoding of a `GraphDef`.
    #[error("malformed GraphDef protobuf in {context}: {source}")]
    Malformed {
        /// Where in the graph: the top-level message, `GraphDef.versions` or `node #i 'name'`.
        context: String,
        #[source]
        source: ProtobufError,
    },
    /// A `Const` node without a tensor-valued `value` attr.
    #[error("Const node '{node}' has no tensor-valued 'value' attr")]
    MissingValue { node: String },
    /// A tensor whose shape cannot describe a constant.
    #[error("tensor '{tensor}' has an invalid shape {dims:?}: {reason}")]
    InvalidShape {
        tensor: String,
        dims: Vec<i64>,
        reason: &'static str,
    },
    /// A dtype the requested conversion does not handle.
    #[error("tensor '{tensor}' has dtype {dtype}, which cannot be converted to {target}")]
    UnsupportedDtype {
        tensor: String,
        dtype: DataType,
        target: &'static str,
    },
    /// The stored values do not fill the shape.
    #[error(
        "tensor '{tensor}' has shape {shape:?} ({expected} elements) \
         but its {source_field} holds {found} values"
    )]
    ElementCountMismatch {
        tensor: String,
        shape: Vec<usize>,
        expected: usize,
        found: usize,
        source_field: &'static str,
    },
    /// One stored value would fill more than [`MAX_SPLAT_ELEMENTS`] elements.
    #[error(
        "tensor '{tensor}' has shape {shape:?} ({elements} elements) filled from one stored \
         value; refusing to expand more than {limit} elements"
    )]
    SplatTooLarge {
        tensor: String,
        shape: Vec<usize>,
        elements: usize,
        limit: usize,
    },
    /// `tensor_content` is not a whole number of elements.
    #[error(
        "tensor '{tensor}' has {bytes} bytes of tensor_content, \
         not a multiple of the {elem_size}-byte {dtype} element"
    )]
    RaggedContent {
        tensor: String,
        dtype: DataType,
        bytes: usize,
        elem_size: usize,
    },
}

/// TensorFlow's `DataType` enum; values without a variant are kept as `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataType {
    Float,
    Double,
    Int32,
    UInt8,
    Int16,
    Int8,
    String,
    Int64,
    Bool,
    BFloat16,
    Half,
    /// Any other enum value (including 0, `DT_INVALID`, and the `*_REF` types).
    Other(i32),
}

/// Known `DataType` values: variant, enum number, protobuf name.
const DATA_TYPES: [(DataType, i32, &str); 11] = [
    (DataType::Float, 1, "DT_FLOAT"),
    (DataType::Double, 2, "DT_DOUBLE"),
    (DataType::Int32, 3, "DT_INT32"),
    (DataType::UInt8, 4, "DT_UINT8"),
    (DataType::Int16, 5, "DT_INT16"),
    (DataType::Int8, 6, "DT_INT8"),
    (DataType::String, 7, "DT_STRING"),
    (DataType::Int64, 9, "DT_INT64"),
    (DataType::Bool, 10, "DT_BOOL"),
    (DataType::BFloat16, 14, "DT_BFLOAT16"),
    (DataType::Half, 19, "DT_HALF"),
];

impl DataType {
    /// Maps the protobuf enum value.
    pub fn from_i32(v: i32) -> Self {
        DATA_TYPES
            .iter()
            .find(|e| e.1 == v)
            .map_or(Self::Other(v), |e| e.0)
    }

    /// The protobuf enum value.
    pub fn to_i32(self) -> i32 {
        match self {
            Self::Other(v) => v,
            known => DATA_TYPES.iter().find(|e| e.0 == known).map_or(0, |e| e.1),
        }
    }

    /// Whether this is a floating-point type [`ConstTensor::to_f32`] reads without casting.
    pub fn is_float(self) -> bool {
        matches!(
            self,
            Self::Float | Self::Double | Self::Half | Self::BFloat16
        )
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self, DATA_TYPES.iter().find(|e| e.0 == *self)) {
            (_, Some(e)) => f.write_str(e.2),
            (Self::Other(0), None) => f.write_str("DT_INVALID"),
            (_, None) => write!(f, "DataType({})", self.to_i32()),
        }
    }
}

/// A `TensorShapeProto`: sizes outermost first; `-1` means unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TensorShape {
    pub dims: Vec<i64>,
    pub unknown_rank: bool,
}

/// A `TensorProto`: dtype, shape and the values in one of several encodings.
///
/// Values live either in `tensor_content` (raw little-endian bytes) or in the typed
/// repeated field for the dtype; `half_val` holds the bit patterns of `DT_HALF` and
/// `DT_BFLOAT16` values in the low 16 bits.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorProto {
    pub dtype: DataType,
    pub shape: TensorShape,
    pub version_number: i32,
    pub tensor_content: Vec<u8>,
    pub half_val: Vec<i32>,
    pub float_val: Vec<f32>,
    pub double_val: Vec<f64>,
    pub int_val: Vec<i32>,
    pub string_val: Vec<Vec<u8>>,
    pub int64_val: Vec<i64>,
    pub bool_val: Vec<bool>,
}

impl Default for TensorProto {
    fn default() -> Self {
        Self {
            dtype: DataType::Other(0),
            shape: TensorShape::default(),
            version_number: 0,
            tensor_content: Vec::new(),
            half_val: Vec::new(),
            float_val: Vec::new(),
            double_val: Vec::new(),
            int_val: Vec::new(),
            string_val: Vec::new(),
            int64_val: Vec::new(),
            bool_val: Vec::new(),
        }
    }
}

/// `AttrValue.ListValue`: the value of a `list(...)` attr.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListValue {
    pub s: Vec<Vec<u8>>,
    pub i: Vec<i64>,
    pub f: Vec<f32>,
    pub b: Vec<bool>,
    pub types: Vec<DataType>,
    pub shapes: Vec<TensorShape>,
    pub tensors: Vec<TensorProto>,
    pub funcs: Vec<NameAttrList>,
}

/// `NameAttrList`: a function name with attrs (the value of `func` attrs).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NameAttrList {
    pub name: String,
    pub attrs: BTreeMap<String, AttrValue>,
}

/// One attr value of a node (`AttrValue`'s oneof).
#[derive(Debug, Clone, Default, PartialEq)]
pub enum AttrValue {
    /// No member of the oneof was set.
    #[default]
    Unset,
    List(ListValue),
    S(Vec<u8>),
    I(i64),
    F(f32),
    B(bool),
    Type(DataType),
    Shape(TensorShape),
    Tensor(Box<TensorProto>),
    Placeholder(String),
    Func(NameAttrList),
}

impl AttrValue {
    /// The bytes of an `s` attr.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Self::S(s) => Some(s),
            _ => None,
        }
    }

    /// An `s` attr as text (e.g. `padding`, `data_format`), if it is UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        self.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
    }

    /// An `i` attr.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Self::I(v) => Some(*v),
            _ => None,
        }
    }

    /// An `f` attr.
    pub fn as_float(&self) -> Option<f32> {
        match self {
            Self::F(v) => Some(*v),
            _ => None,
        }
    }

    /// A `b` attr.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Self::B(v) => Some(*v),
            _ => None,
        }
    }

    /// A `type` attr (e.g. `T`, `dtype`).
    pub fn as_type(&self) -> Option<DataType> {
        match self {
            Self::Type(v) => Some(*v),
            _ => None,
        }
    }

    /// A `shape` attr.
    pub fn as_shape(&self) -> Option<&TensorShape> {
        match self {
            Self::Shape(v) => Some(v),
            _ => None,
        }
    }

    /// A `tensor` attr (e.g. a `Const` node's `value`).
    pub fn as_tensor(&self) -> Option<&TensorProto> {
        match self {
            Self::Tensor(v) => Some(v),
            _ => None,
        }
    }

    /// A `list(...)` attr.
    pub fn as_list(&self) -> Option<&ListValue> {
        match self {
            Self::List(v) => Some(v),
            _ => None,
        }
    }

    /// The integers of a `list(int)` attr (e.g. `strides`, `dilations`, `ksize`).
    pub fn as_ints(&self) -> Option<&[i64]> {
        self.as_list().map(|l| l.i.as_slice())
    }
}

/// One operation of the graph.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeDef {
    /// Unique node name, e.g. `MobilenetV1/Conv2d_0/weights`.
    pub name: String,
    /// Operation type, e.g. `Conv2D`.
    pub op: String,
    /// Inputs as `node`, `node:output_index` or `^control_dependency`.
    pub inputs: Vec<String>,
    /// Requested device (usually empty in frozen graphs).
    pub device: String,
    /// Attrs by name.
    pub attrs: BTreeMap<String, AttrValue>,
}

impl NodeDef {
    /// The attr `key`, if present.
    pub fn attr(&self, key: &str) -> Option<&AttrValue> {
        self.attrs.get(key)
    }
}

/// A decoded frozen graph.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GraphDef {
    nodes: Vec<NodeDef>,
    producer: Option<i32>,
}

impl GraphDef {
    /// Decodes a serialized `GraphDef` and checks that every `Const` node carries a
    /// tensor with a fully known, non-negative shape.
    pub fn parse(bytes: &[u8]) -> Result<GraphDef, GraphDefError> {
        let mut graph = GraphDef::default();
        for field in Fields::new(bytes) {
            let field = field.map_err(malformed("the top-level message"))?;
            match field.number {
                1 => {
                    let mut node = NodeDef::default();
                    parse_node(&field, &mut node).map_err(|source| {
                        let index = graph.nodes.len();
                        let context = if node.name.is_empty() {
                            format!("node #{index}")
                        } else {
                            format!("node #{index} '{}'", node.name)
                        };
                        GraphDefError::Malformed { context, source }
                    })?;
                    graph.nodes.push(node);
                }
                4 => {
                    // VersionDef { producer = 1, min_consumer = 2, bad_consumers = 3 }
                    for f in field.as_message().map_err(malformed("GraphDef.versions"))? {
                        let f = f.map_err(malformed("GraphDef.versions"))?;
                        if f.number == 1 {
                            graph.producer =
                                Some(f.as_i32().map_err(malformed("GraphDef.versions"))?);
                        }
                    }
                }
                _ => {} // library (2), deprecated version (3), future fields.
            }
        }
        for node in graph.nodes.iter().filter(|n| n.op == "Const") {
            ConstTensor::from_node(node)?;
        }
        Ok(graph)
    }

    /// All nodes in file order.
    pub fn nodes(&self) -> &[NodeDef] {
        &self.nodes
    }

    /// The node called `name` (linear search).
    pub fn node(&self, name: &str) -> Option<&NodeDef> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The `producer` version of the TensorFlow that wrote the graph, if recorded.
    pub fn producer(&self) -> Option<i32> {
        self.producer
    }

    /// Every `Const` node's tensor, in file order. [`GraphDef::parse`] already validated
    /// them, so none is skipped.
    pub fn constants(&self) -> impl Iterator<Item = ConstTensor<'_>> + '_ {
        self.nodes
            .iter()
            .filter(|n| n.op == "Const")
            .filter_map(|n| ConstTensor::from_node(n).ok())
    }

    /// The `Const` node called `name` as a tensor.
    pub fn constant(&self, name: &str) -> Option<ConstTensor<'_>> {
        self.node(name)
            .filter(|n| n.op == "Const")
            .and_then(|n| ConstTensor::from_node(n).ok())
    }
}

/// A `Const` node's tensor with its shape resolved to sizes.
#[derive(Debug, Clone, PartialEq)]
pub struct ConstTensor<'a> {
    /// The node name, which is how TF checkpoints name weights.
    pub name: String,
    /// Element type of the stored values.
    pub dtype: DataType,
    /// Sizes, outermost first (empty for a scalar).
    pub shape: Vec<usize>,
    /// The tensor as stored in the graph.
    pub data: &'a TensorProto,
}

impl<'a> ConstTensor<'a> {
    /// Reads the `value` attr of a `Const` node.
    pub fn from_node(node: &'a NodeDef) -> Result<Self, GraphDefError> {
        let data = node
            .attr("value")
            .and_then(AttrValue::as_tensor)
            .ok_or_else(|| GraphDefError::MissingValue {
                node: node.name.clone(),
            })?;
        let invalid = |reason| GraphDefError::InvalidShape {
            tensor: node.name.clone(),
            dims: data.shape.dims.clone(),
            reason,
        };
        if data.shape.unknown_rank {
            return Err(invalid("unknown rank"));
        }
        let shape = data
            .shape
            .dims
            .iter()
            .map(|&d| usize::try_from(d).map_err(|_| invalid("negative or unknown dimension")))
            .collect::<Result<Vec<_>, _>>()?;
        let tensor = ConstTensor {
            name: node.name.clone(),
            dtype: data.dtype,
            shape,
            data,
        };
        tensor.element_count()?;
        Ok(tensor)
    }

    /// Number of elements the shape describes (1 for a scalar).
    pub fn element_count(&self) -> Result<usize, GraphDefError> {
        self.shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .ok_or_else(|| GraphDefError::InvalidShape {
                tensor: self.name.clone(),
                dims: self.data.shape.dims.clone(),
                reason: "element count overflows usize",
            })
    }

    /// The values as `f32` (float, double and half/bfloat16 are converted, integers cast).
    ///
    /// Reads `tensor_content` when present, else the typed repeated field; a single
    /// repeated value with a larger shape is TF's "splat" and fills every element. Any
    /// other count that differs from the shape's element count is an error (TF would pad
    /// with the last value; frozen graphs do not rely on that).
    pub fn to_f32(&self) -> Result<Vec<f32>, GraphDefError> {
        let t = self.data;
        match self.dtype {
            DataType::Float => self.decode(f32::from_le_bytes, "float_val", &t.float_val, |v| v),
            DataType::Double => self.decode(
                |b: [u8; 8]| f64::from_le_bytes(b) as f32,
                "double_val",
                &t.double_val,
                |v| v as f32,
            ),
            DataType::Half => self.decode(
                |b| f16_to_f32(u16::from_le_bytes(b)),
                "half_val",
                &t.half_val,
                |v| f16_to_f32(v as u16),
            ),
            DataType::BFloat16 => self.decode(
                |b| bf16_to_f32(u16::from_le_bytes(b)),
                "half_val",
                &t.half_val,
                |v| bf16_to_f32(v as u16),
            ),
            DataType::Int32
            | DataType::Int64
            | DataType::Int16
            | DataType::Int8
            | DataType::UInt8 => Ok(self.to_i64()?.into_iter().map(|v| v as f32).collect()),
            other => Err(self.unsupported(other, "f32")),
        }
    }

    /// The values of an integer tensor (int32/int64/int16/int8/uint8) as `i64`, e.g. the
    /// shape operand of a `Reshape`. Same encodings and splat rule as [`Self::to_f32`].
    pub fn to_i64(&self) -> Result<Vec<i64>, GraphDefError> {
        let t = self.data;
        match self.dtype {
            DataType::Int32 => self.decode(
                |b| i64::from(i32::from_le_bytes(b)),
                "int_val",
                &t.int_val,
                i64::from,
            ),
            DataType::Int64 => self.decode(i64::from_le_bytes, "int64_val", &t.int64_val, |v| v),
            DataType::Int16 => self.decode(
                |b| i64::from(i16::from_le_bytes(b)),
                "int_val",
                &t.int_val,
                i64::from,
            ),
            DataType::Int8 => self.decode(
                |b| i64::from(i8::from_le_bytes(b)),
                "int_val",
                &t.int_val,
                i64::from,
            ),
            DataType::UInt8 => self.decode(
                |b| i64::from(u8::from_le_bytes(b)),
                "int_val",
                &t.int_val,
                i64::from,
            ),
            other => Err(self.unsupported(other, "i64")),
        }
    }

    fn unsupported(&self, dtype: DataType, target: &'static str) -> GraphDefError {
        GraphDefError::UnsupportedDtype {
            tensor: self.name.clone(),
            dtype,
            target,
        }
    }

    fn mismatch(&self, expected: usize, found: usize, field: &'static str) -> GraphDefError {
        GraphDefError::ElementCountMismatch {
            tensor: self.name.clone(),
            shape: self.shape.clone(),
            expected,
            found,
            source_field: field,
        }
    }

    /// Decodes `tensor_content` (elements of `N` bytes) if present, else `repeated`.
    fn decode<const N: usize, S: Copy, T: Clone>(
        &self,
        from_bytes: impl Fn([u8; N]) -> T,
        field: &'static str,
        repeated: &[S],
        from_repeated: impl Fn(S) -> T,
    ) -> Result<Vec<T>, GraphDefError> {
        let n = self.element_count()?;
        let content = &self.data.tensor_content;
        if !content.is_empty() {
            if !content.len().is_multiple_of(N) {
                return Err(GraphDefError::RaggedContent {
                    tensor: self.name.clone(),
                    dtype: self.dtype,
                    bytes: content.len(),
                    elem_size: N,
                });
            }
            if content.len() / N != n {
                return Err(self.mismatch(n, content.len() / N, "tensor_content"));
            }
            return Ok(content
                .chunks_exact(N)
                .map(|c| {
                    let mut a = [0u8; N];
                    a.copy_from_slice(c);
                    from_bytes(a)
                })
                .collect());
        }
        match repeated {
            [_] if n > MAX_SPLAT_ELEMENTS => Err(GraphDefError::SplatTooLarge {
                tensor: self.name.clone(),
                shape: self.shape.clone(),
                elements: n,
                limit: MAX_SPLAT_ELEMENTS,
            }),
            [single] if n > 1 => Ok(vec![from_repeated(*single); n]),
            values if values.len() == n => Ok(values.iter().map(|&v| from_repeated(v)).collect()),
            values => Err(self.mismatch(n, values.len(), field)),
        }
    }
}

/// Widens IEEE half-precision bits to `f32` (exact, including subnormals, inf and NaN).
fn f16_to_f32(bits: u16) -> f32 {
    let sign = u32::from(bits >> 15) << 31;
    let exp = u32::from((bits >> 10) & 0x1f);
    let mant = u32::from(bits & 0x3ff);
    match (exp, mant) {
        (0, 0) => f32::from_bits(sign),
        (0, _) => {
            // Subnormal: mant * 2^-24.
            let v = f32::from(bits & 0x3ff) * (1.0 / 16_777_216.0);
            if sign != 0 {
                -v
            } else {
                v
            }
        }
        (0x1f, _) => f32::from_bits(sign | 0x7f80_0000 | (mant << 13)),
        _ => f32::from_bits(sign | ((exp + 112) << 23) | (mant << 13)),
    }
}

/// Widens bfloat16 bits to `f32`.
fn bf16_to_f32(bits: u16) -> f32 {
    f32::from_bits(u32::from(bits) << 16)
}

/// Error mapper for protobuf failures outside any node.
fn malformed(context: &'static str) -> impl FnOnce(ProtobufError) -> GraphDefError {
    move |source| GraphDefError::Malformed {
        context: context.to_owned(),
        source,
    }
}

fn enter(depth: usize, field: &Field<'_>) -> Result<usize, ProtobufError> {
    if depth >= MAX_ATTR_DEPTH {
        return Err(ProtobufError::TooDeep {
            limit: MAX_ATTR_DEPTH,
            offset: field.offset,
        });
    }
    Ok(depth + 1)
}

fn parse_node(field: &Field<'_>, node: &mut NodeDef) -> Result<(), ProtobufError> {
    for f in field.as_message()? {
        let f = f?;
        match f.number {
            1 => node.name = f.as_str()?.to_owned(),
            2 => node.op = f.as_str()?.to_owned(),
            3 => node.inputs.push(f.as_str()?.to_owned()),
            4 => node.device = f.as_str()?.to_owned(),
            5 => parse_attr_entry(&f, &mut node.attrs, 0)?,
            _ => {}
        }
    }
    Ok(())
}

/// One `map<string, AttrValue>` entry: key = 1, value = 2.
fn parse_attr_entry(
    field: &Field<'_>,
    attrs: &mut BTreeMap<String, AttrValue>,
    depth: usize,
) -> Result<(), ProtobufError> {
    let depth = enter(depth, field)?;
    let mut key = String::new();
    let mut value = AttrValue::Unset;
    for f in field.as_message()? {
        let f = f?;
        match f.number {
            1 => key = f.as_str()?.to_owned(),
            2 => value = parse_attr_value(&f, depth)?,
            _ => {}
        }
    }
    attrs.insert(key, value);
    Ok(())
}

fn parse_attr_value(field: &Field<'_>, depth: usize) -> Result<AttrValue, ProtobufError> {
    let mut value = AttrValue::Unset;
    for f in field.as_message()? {
        let f = f?;
        value = match f.number {
            1 => AttrValue::List(parse_list(&f, depth)?),
            2 => AttrValue::S(f.as_bytes()?.to_vec()),
            3 => AttrValue::I(f.as_i64()?),
            4 => AttrValue::F(f.as_f32()?),
            5 => AttrValue::B(f.as_bool()?),
            6 => AttrValue::Type(DataType::from_i32(f.as_i32()?)),
            7 => AttrValue::Shape(parse_shape(&f, TensorShape::default())?),
            8 => AttrValue::Tensor(Box::new(parse_tensor(&f)?)),
            9 => AttrValue::Placeholder(f.as_str()?.to_owned()),
            10 => AttrValue::Func(parse_name_attr_list(&f, depth)?),
            _ => continue,
        };
    }
    Ok(value)
}

fn parse_list(field: &Field<'_>, depth: usize) -> Result<ListValue, ProtobufError> {
    let mut list = ListValue::default();
    for f in field.as_message()? {
        let f = f?;
        match f.number {
            2 => list.s.push(f.as_bytes()?.to_vec()),
            3 => f.extend_i64(&mut list.i)?,
            4 => f.extend_f32(&mut list.f)?,
            5 => f.extend_bool(&mut list.b)?,
            6 => f.extend_varints(&mut list.types, |v| DataType::from_i32(v as i32))?,
            7 => list.shapes.push(parse_shape(&f, TensorShape::default())?),
            8 => list.tensors.push(parse_tensor(&f)?),
            9 => list.funcs.push(parse_name_attr_list(&f, depth)?),
            _ => {}
        }
    }
    Ok(list)
}

fn parse_name_attr_list(field: &Field<'_>, depth: usize) -> Result<NameAttrList, ProtobufError> {
    let depth = enter(depth, field)?;
    let mut out = NameAttrList::default();
    for f in field.as_message()? {
        let f = f?;
        match f.number {
            1 => out.name = f.as_str()?.to_owned(),
            2 => parse_attr_entry(&f, &mut out.attrs, depth)?,
            _ => {}
        }
    }
    Ok(out)
}

/// Parses a `TensorShapeProto`, merging into `shape` as protobuf does for repeats.
fn parse_shape(field: &Field<'_>, mut shape: TensorShape) -> Result<TensorShape, ProtobufError> {
    for f in field.as_message()? {
        let f = f?;
        match f.number {
            2 => {
                // Dim { size = 1, name = 2 }
                let mut size = 0;
                for d in f.as_message()? {
                    let d = d?;
                    if d.number == 1 {
                        size = d.as_i64()?;
                    }
                }
                shape.dims.push(size);
            }
            3 => shape.unknown_rank = f.as_bool()?,
            _ => {}
        }
    }
    Ok(shape)
}

fn parse_tensor(field: &Field<'_>) -> Result<TensorProto, ProtobufError> {
    let mut t = TensorProto::default();
    for f in field.as_message()? {
        let f = f?;
        match f.number {
            1 => t.dtype = DataType::from_i32(f.as_i32()?),
            2 => t.shape = parse_shape(&f, std::mem::take(&mut t.shape))?,
            3 => t.version_number = f.as_i32()?,
            4 => t.tensor_content = f.as_bytes()?.to_vec(),
            5 => f.extend_f32(&mut t.float_val)?,
            6 => f.extend_f64(&mut t.double_val)?,
            7 => f.extend_i32(&mut t.int_val)?,
            8 => t.string_val.push(f.as_bytes()?.to_vec()),
            10 => f.extend_i64(&mut t.int64_val)?,
            11 => f.extend_bool(&mut t.bool_val)?,
            13 => f.extend_i32(&mut t.half_val)?,
            _ => {}
        }
    }
    Ok(t)
}

#[cfg(test)]
mod tests;
