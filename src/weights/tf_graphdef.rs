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
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::protobuf::test_encoder::Enc;
    use super::*;

    const DT_FLOAT: u64 = 1;
    const DT_DOUBLE: u64 = 2;
    const DT_INT32: u64 = 3;
    const DT_HALF: u64 = 19;

    fn shape(dims: &[i64]) -> Enc {
        dims.iter().fold(Enc::new(), |e, &d| {
            e.msg(2, &Enc::new().varint(1, d as u64))
        })
    }

    fn tensor(dtype: u64, dims: &[i64]) -> Enc {
        Enc::new().varint(1, dtype).msg(2, &shape(dims))
    }

    fn node(name: &str, op: &str, inputs: &[&str], attrs: &[(&str, Enc)]) -> Enc {
        let mut e = Enc::new().bytes(1, name.as_bytes()).bytes(2, op.as_bytes());
        for i in inputs {
            e = e.bytes(3, i.as_bytes());
        }
        for (key, value) in attrs {
            e = e.msg(5, &Enc::new().bytes(1, key.as_bytes()).msg(2, value));
        }
        e
    }

    fn const_node(name: &str, dtype: u64, tensor: Enc) -> Enc {
        node(
            name,
            "Const",
            &[],
            &[
                ("dtype", Enc::new().varint(6, dtype)),
                ("value", Enc::new().msg(8, &tensor)),
            ],
        )
    }

    fn graph(nodes: &[Enc]) -> Vec<u8> {
        nodes.iter().fold(Enc::new(), |g, n| g.msg(1, n)).0
    }

    fn single_const(name: &str, dtype: u64, tensor: Enc) -> GraphDef {
        GraphDef::parse(&graph(&[const_node(name, dtype, tensor)])).unwrap()
    }

    #[test]
    fn const_with_tensor_content() {
        let vals = [1.0f32, -2.0, 3.5, 0.0, 1e-3, 7.25];
        let bytes: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
        let g = single_const("w", DT_FLOAT, tensor(DT_FLOAT, &[2, 3]).bytes(4, &bytes));
        let consts: Vec<_> = g.constants().collect();
        assert_eq!(consts.len(), 1);
        let c = &consts[0];
        assert_eq!(c.name, "w");
        assert_eq!(c.dtype, DataType::Float);
        assert!(c.dtype.is_float());
        assert_eq!(c.shape, [2, 3]);
        assert_eq!(c.to_f32().unwrap(), vals);
        assert_eq!(
            g.nodes()[0].attr("dtype").unwrap().as_type(),
            Some(DataType::Float)
        );
    }

    #[test]
    fn const_with_packed_and_splat_float_val() {
        let g = single_const(
            "b",
            DT_FLOAT,
            tensor(DT_FLOAT, &[3]).packed_f32(5, &[1.0, 2.0, 3.0]),
        );
        assert_eq!(g.constant("b").unwrap().to_f32().unwrap(), [1.0, 2.0, 3.0]);

        let g = single_const(
            "s",
            DT_FLOAT,
            tensor(DT_FLOAT, &[2, 2, 3]).packed_f32(5, &[0.5]),
        );
        let c = g.constant("s").unwrap();
        assert_eq!(c.shape, [2, 2, 3]);
        assert_eq!(c.to_f32().unwrap(), vec![0.5; 12]);

        // A scalar: empty shape, one value.
        let g = single_const(
            "eps",
            DT_FLOAT,
            tensor(DT_FLOAT, &[]).fixed32(5, 1e-3f32.to_bits()),
        );
        let c = g.constant("eps").unwrap();
        assert!(c.shape.is_empty());
        assert_eq!(c.to_f32().unwrap(), [1e-3]);
    }

    #[test]
    fn const_with_half_val() {
        // 1.0, -2.0, 0.5, 65504 (max), smallest subnormal, -0.0, +inf
        let bits = [0x3c00u64, 0xc000, 0x3800, 0x7bff, 0x0001, 0x8000, 0x7c00];
        let g = single_const("h", DT_HALF, tensor(DT_HALF, &[7]).packed_varint(13, &bits));
        let v = g.constant("h").unwrap().to_f32().unwrap();
        assert_eq!(v[..4], [1.0, -2.0, 0.5, 65504.0]);
        assert_eq!(v[4], 2f32.powi(-24));
        assert!(v[5] == 0.0 && v[5].is_sign_negative());
        assert_eq!(v[6], f32::INFINITY);
        assert!(f16_to_f32(0x7e00).is_nan());
        assert_eq!(bf16_to_f32(0x3f80), 1.0);
        assert_eq!(bf16_to_f32(0xc040), -3.0);
        // Half values in tensor_content are 2 bytes each.
        let g = single_const(
            "hc",
            DT_HALF,
            tensor(DT_HALF, &[2]).bytes(4, &[0x00, 0x3c, 0x00, 0xc0]),
        );
        assert_eq!(g.constant("hc").unwrap().to_f32().unwrap(), [1.0, -2.0]);
    }

    #[test]
    fn data_type_numbers_and_names() {
        for v in -1..130 {
            assert_eq!(DataType::from_i32(v).to_i32(), v);
        }
        assert_eq!(DataType::from_i32(19), DataType::Half);
        assert_eq!(DataType::from_i32(14), DataType::BFloat16);
        assert_eq!(DataType::Half.to_string(), "DT_HALF");
        assert_eq!(DataType::Other(0).to_string(), "DT_INVALID");
        assert_eq!(DataType::Other(101).to_string(), "DataType(101)");
    }

    #[test]
    fn double_and_int_consts() {
        let g = single_const(
            "d",
            DT_DOUBLE,
            tensor(DT_DOUBLE, &[2]).packed_f64(6, &[0.25, -8.0]),
        );
        assert_eq!(g.constant("d").unwrap().to_f32().unwrap(), [0.25, -8.0]);
        let g = single_const(
            "shape",
            DT_INT32,
            tensor(DT_INT32, &[4]).packed_varint(7, &[1, u64::MAX, 46, 19]),
        );
        let c = g.constant("shape").unwrap();
        assert!(!c.dtype.is_float());
        assert_eq!(c.to_i64().unwrap(), [1, -1, 46, 19]);
        assert_eq!(c.to_f32().unwrap(), [1.0, -1.0, 46.0, 19.0]);
        let content: Vec<u8> = [3i32, -4].iter().flat_map(|v| v.to_le_bytes()).collect();
        let g = single_const("ic", DT_INT32, tensor(DT_INT32, &[2]).bytes(4, &content));
        assert_eq!(g.constant("ic").unwrap().to_i64().unwrap(), [3, -4]);
        let g = single_const("f", DT_FLOAT, tensor(DT_FLOAT, &[1]).packed_f32(5, &[1.0]));
        assert!(matches!(
            g.constant("f").unwrap().to_i64(),
            Err(GraphDefError::UnsupportedDtype { .. })
        ));
    }

    #[test]
    fn element_count_mismatch_names_the_tensor() {
        let g = single_const(
            "net/w",
            DT_FLOAT,
            tensor(DT_FLOAT, &[2, 2]).packed_f32(5, &[1., 2., 3.]),
        );
        let err = g.constant("net/w").unwrap().to_f32().unwrap_err();
        assert!(matches!(
            err,
            GraphDefError::ElementCountMismatch {
                expected: 4,
                found: 3,
                ..
            }
        ));
        let msg = err.to_string();
        assert!(
            msg.contains("net/w") && msg.contains('4') && msg.contains('3'),
            "{msg}"
        );

        let g = single_const("c", DT_FLOAT, tensor(DT_FLOAT, &[3]).bytes(4, &[0; 8]));
        let err = g.constant("c").unwrap().to_f32().unwrap_err();
        assert!(matches!(
            err,
            GraphDefError::ElementCountMismatch {
                expected: 3,
                found: 2,
                ..
            }
        ));
        assert!(err.to_string().contains("tensor_content"));

        let g = single_const("r", DT_FLOAT, tensor(DT_FLOAT, &[1]).bytes(4, &[0; 5]));
        let err = g.constant("r").unwrap().to_f32().unwrap_err();
        assert!(matches!(err, GraphDefError::RaggedContent { bytes: 5, .. }));

        // No values at all for a non-empty shape.
        let g = single_const("e", DT_FLOAT, tensor(DT_FLOAT, &[2]));
        assert!(g.constant("e").unwrap().to_f32().is_err());
    }

    #[test]
    fn invalid_consts_fail_at_parse() {
        let no_value = graph(&[node(
            "k",
            "Const",
            &[],
            &[("dtype", Enc::new().varint(6, 1))],
        )]);
        let err = GraphDef::parse(&no_value).unwrap_err();
        assert!(matches!(&err, GraphDefError::MissingValue { node } if node == "k"));

        let negative = graph(&[const_node("neg", DT_FLOAT, tensor(DT_FLOAT, &[-1, 3]))]);
        let err = GraphDef::parse(&negative).unwrap_err();
        assert!(matches!(&err, GraphDefError::InvalidShape { tensor, .. } if tensor == "neg"));

        let huge = graph(&[const_node(
            "big",
            DT_FLOAT,
            tensor(DT_FLOAT, &[1 << 40, 1 << 40]),
        )]);
        assert!(matches!(
            GraphDef::parse(&huge),
            Err(GraphDefError::InvalidShape { .. })
        ));

        let string = tensor(7, &[1]).bytes(8, b"x");
        let g = single_const("str", 7, string);
        assert!(matches!(
            g.constant("str").unwrap().to_f32(),
            Err(GraphDefError::UnsupportedDtype {
                dtype: DataType::String,
                ..
            })
        ));
    }

    fn conv_node() -> Enc {
        let strides = Enc::new().msg(1, &Enc::new().packed_varint(3, &[1, 2, 2, 1]));
        // Unpacked list(int) must be accepted too.
        let dilations = Enc::new().msg(
            1,
            &Enc::new()
                .varint(3, 1)
                .varint(3, 1)
                .varint(3, 1)
                .varint(3, 1),
        );
        node(
            "net/conv",
            "DepthwiseConv2dNative",
            &["net/input", "net/w:0", "^net/init"],
            &[
                ("T", Enc::new().varint(6, DT_FLOAT)),
                ("strides", strides),
                ("dilations", dilations),
                ("padding", Enc::new().bytes(2, b"SAME")),
                ("data_format", Enc::new().bytes(2, b"NHWC")),
                ("alpha", Enc::new().fixed32(4, 0.25f32.to_bits())),
                ("flag", Enc::new().varint(5, 1)),
                ("n", Enc::new().varint(3, u64::MAX)),
                ("shape", Enc::new().msg(7, &shape(&[-1, 368, 432, 3]))),
                ("fn", Enc::new().msg(10, &Enc::new().bytes(1, b"f"))),
                ("unset", Enc::new()),
            ],
        )
    }

    #[test]
    fn node_attrs_are_decoded() {
        let bytes = Enc::new()
            .msg(1, &conv_node())
            .msg(2, &Enc::new().bytes(1, b"library is skipped"))
            .msg(4, &Enc::new().varint(1, 26).varint(2, 12))
            .fixed64(99, 0)
            .0;
        let g = GraphDef::parse(&bytes).unwrap();
        assert_eq!(g.producer(), Some(26));
        let n = g.node("net/conv").unwrap();
        assert_eq!(n.op, "DepthwiseConv2dNative");
        assert_eq!(n.inputs, ["net/input", "net/w:0", "^net/init"]);
        assert_eq!(n.attr("T").unwrap().as_type(), Some(DataType::Float));
        assert_eq!(
            n.attr("strides").unwrap().as_ints(),
            Some(&[1, 2, 2, 1][..])
        );
        assert_eq!(
            n.attr("dilations").unwrap().as_ints(),
            Some(&[1, 1, 1, 1][..])
        );
        assert_eq!(n.attr("padding").unwrap().as_str(), Some("SAME"));
        assert_eq!(
            n.attr("data_format").unwrap().as_bytes(),
            Some(&b"NHWC"[..])
        );
        assert_eq!(n.attr("alpha").unwrap().as_float(), Some(0.25));
        assert_eq!(n.attr("flag").unwrap().as_bool(), Some(true));
        assert_eq!(n.attr("n").unwrap().as_int(), Some(-1));
        assert_eq!(
            n.attr("shape").unwrap().as_shape().unwrap().dims,
            [-1, 368, 432, 3]
        );
        assert!(matches!(n.attr("fn"), Some(AttrValue::Func(f)) if f.name == "f"));
        assert_eq!(n.attr("unset"), Some(&AttrValue::Unset));
        assert_eq!(g.constants().count(), 0);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let content: Vec<u8> = [1.0f32, 2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        for n in [
            conv_node(),
            const_node("w", DT_FLOAT, tensor(DT_FLOAT, &[2]).bytes(4, &content)),
            const_node(
                "h",
                DT_HALF,
                tensor(DT_HALF, &[2]).packed_varint(13, &[0x3c00, 1]),
            ),
        ] {
            // A GraphDef with one node is one top-level field, so every strict,
            // non-empty prefix cuts a length-delimited field short.
            let bytes = graph(&[n]);
            assert!(GraphDef::parse(&bytes).is_ok());
            for cut in 1..bytes.len() {
                match GraphDef::parse(&bytes[..cut]) {
                    Err(GraphDefError::Malformed { .. }) => {}
                    other => panic!("cut at {cut}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn malformed_node_errors_name_the_node() {
        let bad = node("net/bad", "Const", &[], &[]).bytes(5, &[0x0a, 0x09, b'x']);
        let err = GraphDef::parse(&graph(&[bad])).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("node #0 'net/bad'"), "{msg}");
        assert!(msg.contains("byte offset"), "{msg}");
        let not_utf8 = Enc::new().bytes(1, &[0xff]);
        let err = GraphDef::parse(&graph(&[not_utf8])).unwrap_err();
        assert!(err.to_string().contains("UTF-8"), "{err}");
    }

    #[test]
    fn deeply_nested_funcs_are_rejected() {
        let mut value = Enc::new().varint(3, 1);
        for _ in 0..200 {
            let attrs = Enc::new()
                .bytes(1, b"f")
                .msg(2, &Enc::new().bytes(1, b"k").msg(2, &value));
            value = Enc::new().msg(10, &attrs);
        }
        let bytes = graph(&[node("deep", "Call", &[], &[("f", value)])]);
        let err = GraphDef::parse(&bytes).unwrap_err();
        assert!(err.to_string().contains("nested deeper"), "{err}");
    }

    #[test]
    fn corrupted_bytes_never_panic() {
        let content: Vec<u8> = [1.0f32, 2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let base = graph(&[
            conv_node(),
            const_node("w", DT_FLOAT, tensor(DT_FLOAT, &[2]).bytes(4, &content)),
            const_node(
                "s",
                DT_FLOAT,
                tensor(DT_FLOAT, &[2, 2]).packed_f32(5, &[1.0]),
            ),
        ]);
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..5000 {
            let mut bytes = base.clone();
            for _ in 0..1 + next() % 4 {
                let i = (next() % bytes.len() as u64) as usize;
                bytes[i] = next() as u8;
            }
            if let Ok(g) = GraphDef::parse(&bytes) {
                for c in g.constants() {
                    let _ = c.to_f32();
                    let _ = c.to_i64();
                }
            }
        }
    }

    fn shared_dir() -> std::path::PathBuf {
        std::env::var_os("POSESCOPE_SHARED")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../shared").into())
    }

    #[test]
    fn reads_tfpose_mobilenet_thin() {
        let path = shared_dir().join("models/tfpose_mobilenet_thin.pb");
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if std::env::var_os("CI").is_some() => {
                panic!("CI is set but {} cannot be read: {e}", path.display())
            }
            Err(e) => {
                eprintln!("skipping: cannot read {}: {e}", path.display());
                return;
            }
        };
        let start = std::time::Instant::now();
        let g = GraphDef::parse(&bytes).unwrap();
        eprintln!("parsed {} nodes in {:?}", g.nodes().len(), start.elapsed());

        let consts: Vec<_> = g.constants().collect();
        assert_eq!(consts.len(), 222);
        let floats: Vec<_> = consts
            .iter()
            .filter(|c| c.dtype == DataType::Float)
            .collect();
        assert_eq!(floats.len(), 215);
        assert_eq!(
            consts.iter().filter(|c| c.dtype == DataType::Int32).count(),
            7
        );
        let mut total = 0;
        for c in &floats {
            let v = c.to_f32().unwrap();
            assert_eq!(v.len(), c.element_count().unwrap());
            assert!(v.iter().all(|x| x.is_finite()), "{}", c.name);
            total += v.len();
        }
        assert_eq!(total, 1_930_872);
        for c in consts.iter().filter(|c| c.dtype == DataType::Int32) {
            c.to_i64().unwrap();
        }

        let shape_of = |name: &str| g.constant(name).unwrap().shape;
        assert_eq!(shape_of("MobilenetV1/Conv2d_0/weights"), [3, 3, 3, 24]);
        assert_eq!(
            shape_of("Openpose/MConv_Stage6_L2_5_pointwise/weights"),
            [1, 1, 64, 19]
        );

        let count = |op: &str| g.nodes().iter().filter(|n| n.op == op).count();
        assert_eq!(count("Conv2D"), 72);
        assert_eq!(count("DepthwiseConv2dNative"), 71);

        let dw = g.node("MobilenetV1/Conv2d_2_depthwise/depthwise").unwrap();
        assert_eq!(dw.op, "DepthwiseConv2dNative");
        assert_eq!(
            dw.attr("strides").unwrap().as_ints(),
            Some(&[1, 2, 2, 1][..])
        );
        assert_eq!(dw.attr("padding").unwrap().as_str(), Some("SAME"));
    }
}
