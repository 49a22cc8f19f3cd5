//! Reader for Caffe weights files (`.caffemodel`, a serialized `NetParameter` protobuf).
//!
//! No `protoc` and no generated code: the few messages that carry weights are walked with
//! the wire decoder in [`super::protobuf`]. Field numbers follow BVLC Caffe's
//! `src/caffe/proto/caffe.proto`:
//!
//! - `NetParameter { name = 1; layers = 2 (V1LayerParameter, deprecated); layer = 100 }`
//! - `LayerParameter { name = 1; type = 2 (string); blobs = 7 }`
//! - `V1LayerParameter { layer = 1 (V0LayerParameter); name = 4; type = 5 (enum LayerType);
//!   blobs = 6 }`
//! - `V0LayerParameter { name = 1; type = 2 (string); blobs = 50 }`
//! - `BlobProto { num = 1; channels = 2; height = 3; width = 4 (legacy 4-d shape);
//!   data = 5 (float, packed); double_data = 8 (double, packed); shape = 7 (BlobShape) }`
//! - `BlobShape { dim = 1 (int64, packed) }`
//!
//! Repeated scalars are accepted packed or unpacked, as protobuf requires.
//!
//! Blobs keep Caffe's layout, which for convolutions (`[out, in, kh, kw]`, OIHW) and inner
//! products (`[out, in]`) is PyTorch's. Old files describe shapes with the legacy
//! `num/channels/height/width` quadruple; for `Convolution`, `Deconvolution` and
//! `InnerProduct` layers a legacy bias `[1, 1, 1, n]` becomes `[n]` and a legacy
//! inner-product weight `[1, 1, out, in]` becomes `[out, in]`, which is how Caffe itself
//! reshapes them when it loads such a blob. Other legacy blobs stay 4-d.
//!
//! [`load_caffemodel`] names blob 0 of layer `L` `L.weight`, blob 1 `L.bias` and any
//! further blob `i` `L.blob{i}` (PyTorch's naming), so a model that asks a
//! [`TensorStore`] for `conv1_stage1.weight` finds CPM's first convolution.

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use thiserror::Error;

use super::protobuf::{Field, Fields, ProtobufError};
use super::{TensorStore, WeightsError};

/// The name of this format in error messages.
pub const FORMAT: &str = "Caffe model (.caffemodel)";

/// What can go wrong while decoding a `.caffemodel`.
#[derive(Debug, Error)]
pub enum CaffeError {
    /// The bytes are not a valid protobuf encoding of a `NetParameter`.
    #[error("malformed protobuf in {context}: {source}")]
    Malformed {
        /// Where: the top-level message or `layer #i 'name'`.
        context: String,
        #[source]
        source: ProtobufError,
    },
    /// A blob whose shape cannot describe an array.
    #[error("layer '{layer}' blob {blob}: invalid shape {dims:?}: {reason}")]
    InvalidShape {
        layer: String,
        blob: usize,
        dims: Vec<i64>,
        reason: &'static str,
    },
    /// A blob whose data does not fill its shape.
    #[error(
        "layer '{layer}' blob {blob}: shape {shape:?} needs {expected} values \
         but the blob holds {found}"
    )]
    DataLength {
        layer: String,
        blob: usize,
        shape: Vec<usize>,
        expected: usize,
        found: usize,
    },
    /// Two layers with weights map to the same tensor name.
    #[error("two layers named '{layer}' both carry weights")]
    DuplicateLayer { layer: String },
}

/// Which message a layer was stored in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerFormat {
    /// `NetParameter.layer` (field 100): `LayerParameter`, the current format.
    V2,
    /// `NetParameter.layers` (field 2): `V1LayerParameter`, type as an enum.
    V1,
    /// A `V0LayerParameter` nested in a `V1LayerParameter` (very old files).
    V0,
}

/// One blob: its shape (after the legacy-shape normalisation described in the module
/// docs) and its values, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct CaffeBlob {
    pub shape: Vec<usize>,
    /// True when the file gave the legacy `num/channels/height/width` shape.
    pub legacy_shape: bool,
    pub data: Vec<f32>,
}

/// One layer of the net, with its parameter blobs (often none).
#[derive(Debug, Clone, PartialEq)]
pub struct CaffeLayer {
    pub name: String,
    /// The layer type as Caffe's current string names it (`"Convolution"`); V1 enum values
    /// are translated, unknown ones become `"V1LayerType(n)"`.
    pub kind: String,
    pub format: LayerFormat,
    pub blobs: Vec<CaffeBlob>,
}

/// A layer's name, type and blob shapes, for diagnostics (no data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaffeLayerInfo {
    pub name: String,
    pub kind: String,
    pub format: LayerFormat,
    pub blob_shapes: Vec<Vec<usize>>,
}

/// A decoded `.caffemodel`: the net's name and its layers in file order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CaffeNet {
    pub name: Option<String>,
    pub layers: Vec<CaffeLayer>,
}

impl CaffeNet {
    /// Decodes a serialized `NetParameter`, checking every blob's data against its shape.
    pub fn parse(bytes: &[u8]) -> Result<CaffeNet, CaffeError> {
        let top = |source| CaffeError::Malformed {
            context: "the top-level NetParameter".into(),
            source,
        };
        let mut net = CaffeNet::default();
        for field in Fields::new(bytes) {
            let field = field.map_err(top)?;
            match field.number {
                1 => net.name = Some(field.as_str().map_err(top)?.to_string()),
                100 | 2 => {
                    let index = net.layers.len();
                    let mut raw = RawLayer::default();
                    let parsed = if field.number == 100 {
                        parse_layer_v2(&field, &mut raw)
                    } else {
                        parse_layer_v1(&field, &mut raw)
                    };
                    parsed.map_err(|source| CaffeError::Malformed {
                        context: if raw.name.is_empty() {
                            format!("layer #{index}")
                        } else {
                            format!("layer #{index} '{}'", raw.name)
                        },
                        source,
                    })?;
                    net.layers.push(raw.finish()?);
                }
                _ => {} // input, input_shape, state, debug_info, ...
            }
        }
        Ok(net)
    }

    /// The first layer called `name`.
    pub fn layer(&self, name: &str) -> Option<&CaffeLayer> {
        self.layers.iter().find(|l| l.name == name)
    }

    /// Name, type and blob shapes of every layer, in file order.
    pub fn layer_infos(&self) -> Vec<CaffeLayerInfo> {
        self.layers
            .iter()
            .map(|l| CaffeLayerInfo {
                name: l.name.clone(),
                kind: l.kind.clone(),
                format: l.format,
                blob_shapes: l.blobs.iter().map(|b| b.shape.clone()).collect(),
            })
            .collect()
    }

    /// The tensor name of blob `index` of `layer`: `weight`, `bias`, then `blob{i}`.
    pub fn tensor_name(layer: &str, index: usize) -> String {
        match index {
            0 => format!("{layer}.weight"),
            1 => format!("{layer}.bias"),
            i => format!("{layer}.blob{i}"),
        }
    }
}

/// Reads a `.caffemodel` into a [`TensorStore`] on `device` (keys as in
/// [`CaffeNet::tensor_name`]) and the list of its layers. `file` names the source in errors.
pub fn load_caffemodel(
    bytes: &[u8],
    file: &str,
    device: &Device,
) -> Result<(TensorStore, Vec<CaffeLayerInfo>), WeightsError> {
    let format_err = |message: String| WeightsError::Format {
        file: file.to_string(),
        format: FORMAT,
        message,
    };
    let net = CaffeNet::parse(bytes).map_err(|e| format_err(e.to_string()))?;
    let infos = net.layer_infos();
    let mut tensors = HashMap::new();
    for layer in net.layers {
        for (i, blob) in layer.blobs.into_iter().enumerate() {
            let name = CaffeNet::tensor_name(&layer.name, i);
            if tensors.contains_key(&name) {
                return Err(format_err(
                    CaffeError::DuplicateLayer {
                        layer: layer.name.clone(),
                    }
                    .to_string(),
                ));
            }
            let t =
                Tensor::from_vec(blob.data, blob.shape.as_slice(), device).map_err(|source| {
                    WeightsError::Tensor {
                        file: file.to_string(),
                        name: name.clone(),
                        source: Box::new(source),
                    }
                })?;
            tensors.insert(name, t);
        }
    }
    if tensors.is_empty() {
        return Err(format_err(
            "no layer carries weights (is this a .prototxt or an empty net?)".into(),
        ));
    }
    Ok((TensorStore::new(file, tensors), infos))
}

/// A layer as read, before its blobs are checked.
#[derive(Default)]
struct RawLayer {
    name: String,
    kind: String,
    format: Option<LayerFormat>,
    blobs: Vec<RawBlob>,
}

#[derive(Default)]
struct RawBlob {
    /// `BlobShape.dim`, if the blob has a `shape` field.
    dims: Option<Vec<i64>>,
    /// Legacy num, channels, height, width (each `None` when absent).
    legacy: [Option<i32>; 4],
    data: Vec<f32>,
    double_data: Vec<f64>,
}

fn parse_layer_v2(field: &Field<'_>, out: &mut RawLayer) -> Result<(), ProtobufError> {
    out.format = Some(LayerFormat::V2);
    for f in field.as_message()? {
        let f = f?;
        match f.number {
            1 => out.name = f.as_str()?.to_string(),
            2 => out.kind = f.as_str()?.to_string(),
            7 => out.blobs.push(parse_blob(&f)?),
            _ => {}
        }
    }
    Ok(())
}

fn parse_layer_v1(field: &Field<'_>, out: &mut RawLayer) -> Result<(), ProtobufError> {
    out.format = Some(LayerFormat::V1);
    let mut v0: Option<RawLayer> = None;
    for f in field.as_message()? {
        let f = f?;
        match f.number {
            1 => {
                let mut inner = RawLayer::default();
                parse_layer_v0(&f, &mut inner)?;
                v0 = Some(inner);
            }
            4 => out.name = f.as_str()?.to_string(),
            5 => out.kind = v1_type_name(f.as_i32()?),
            6 => out.blobs.push(parse_blob(&f)?),
            _ => {}
        }
    }
    // Caffe upgrades a V1 layer that only wraps a V0 layer from the V0 fields.
    if let Some(inner) = v0 {
        if out.name.is_empty() && out.kind.is_empty() && out.blobs.is_empty() {
            *out = inner;
        }
    }
    Ok(())
}

fn parse_layer_v0(field: &Field<'_>, out: &mut RawLayer) -> Result<(), ProtobufError> {
    out.format = Some(LayerFormat::V0);
    for f in field.as_message()? {
        let f = f?;
        match f.number {
            1 => out.name = f.as_str()?.to_string(),
            2 => out.kind = v0_type_name(f.as_str()?),
            50 => out.blobs.push(parse_blob(&f)?),
            _ => {}
        }
    }
    Ok(())
}

fn parse_blob(field: &Field<'_>) -> Result<RawBlob, ProtobufError> {
    let mut blob = RawBlob::default();
    for f in field.as_message()? {
        let f = f?;
        match f.number {
            n @ 1..=4 => {
                if let Some(slot) = blob.legacy.get_mut(n as usize - 1) {
                    *slot = Some(f.as_i32()?);
                }
            }
            5 => f.extend_f32(&mut blob.data)?,
            8 => f.extend_f64(&mut blob.double_data)?,
            7 => {
                // BlobShape; repeated fields of a repeated embedded message merge.
                let dims = blob.dims.get_or_insert_with(Vec::new);
                for d in f.as_message()? {
                    let d = d?;
                    if d.number == 1 {
                        d.extend_i64(dims)?;
                    }
                }
            }
            _ => {} // diff (6), double_diff (9)
        }
    }
    Ok(blob)
}

impl RawLayer {
    fn finish(self) -> Result<CaffeLayer, CaffeError> {
        let mut blobs = Vec::with_capacity(self.blobs.len());
        for (i, raw) in self.blobs.into_iter().enumerate() {
            blobs.push(finish_blob(&self.name, &self.kind, i, raw)?);
        }
        Ok(CaffeLayer {
            name: self.name,
            kind: self.kind,
            format: self.format.unwrap_or(LayerFormat::V2),
            blobs,
        })
    }
}

fn finish_blob(
    layer: &str,
    kind: &str,
    index: usize,
    raw: RawBlob,
) -> Result<CaffeBlob, CaffeError> {
    let invalid = |dims: Vec<i64>, reason| CaffeError::InvalidShape {
        layer: layer.to_string(),
        blob: index,
        dims,
        reason,
    };
    // Caffe's Blob::FromProto: any legacy field present means the 4-d legacy shape.
    let legacy_shape = raw.legacy.iter().any(Option::is_some);
    let dims: Vec<i64> = if legacy_shape {
        raw.legacy
            .iter()
            .map(|d| i64::from(d.unwrap_or(0)))
            .collect()
    } else {
        raw.dims.unwrap_or_default()
    };
    let mut shape = Vec::with_capacity(dims.len());
    let mut count: usize = 1;
    for &d in &dims {
        let d_usize =
            usize::try_from(d).map_err(|_| invalid(dims.clone(), "negative dimension"))?;
        count = count
            .checked_mul(d_usize)
            .ok_or_else(|| invalid(dims.clone(), "element count overflows"))?;
        shape.push(d_usize);
    }
    let data = if !raw.data.is_empty() || raw.double_data.is_empty() {
        raw.data
    } else {
        raw.double_data.into_iter().map(|v| v as f32).collect()
    };
    if data.len() != count {
        return Err(CaffeError::DataLength {
            layer: layer.to_string(),
            blob: index,
            shape,
            expected: count,
            found: data.len(),
        });
    }
    if legacy_shape {
        shape = normalize_legacy(kind, index, shape);
    }
    Ok(CaffeBlob {
        shape,
        legacy_shape,
        data,
    })
}

/// Drops the leading 1s Caffe's legacy 4-d shapes put in front of biases and inner-product
/// weights (see the module docs).
fn normalize_legacy(kind: &str, index: usize, shape: Vec<usize>) -> Vec<usize> {
    let keep = match (kind, index) {
        ("Convolution" | "Deconvolution" | "InnerProduct", 1) => 1,
        ("InnerProduct", 0) => 2,
        _ => return shape,
    };
    let lead = shape.len().saturating_sub(keep);
    match (shape.get(..lead), shape.get(lead..)) {
        (Some(head), Some(tail)) if head.iter().all(|&d| d == 1) => tail.to_vec(),
        _ => shape,
    }
}

/// `V1LayerParameter.LayerType` values, named as Caffe's upgrade code names them.
fn v1_type_name(v: i32) -> String {
    let name = match v {
        35 => "AbsVal",
        1 => "Accuracy",
        30 => "ArgMax",
        2 => "BNLL",
        3 => "Concat",
        37 => "ContrastiveLoss",
        4 => "Convolution",
        5 => "Data",
        39 => "Deconvolution",
        6 => "Dropout",
        32 => "DummyData",
        7 => "EuclideanLoss",
        25 => "Eltwise",
        38 => "Exp",
        8 => "Flatten",
        9 => "HDF5Data",
        10 => "HDF5Output",
        28 => "HingeLoss",
        11 => "Im2col",
        12 => "ImageData",
        13 => "InfogainLoss",
        14 => "InnerProduct",
        15 => "LRN",
        29 => "MemoryData",
        16 => "MultinomialLogisticLoss",
        34 => "MVN",
        17 => "Pooling",
        26 => "Power",
        18 => "ReLU",
        19 => "Sigmoid",
        27 => "SigmoidCrossEntropyLoss",
        36 => "Silence",
        20 => "Softmax",
        21 => "SoftmaxWithLoss",
        22 => "Split",
        33 => "Slice",
        23 => "TanH",
        24 => "WindowData",
        31 => "Threshold",
        0 => "",
        other => return format!("V1LayerType({other})"),
    };
    name.to_string()
}

/// V0 layer type strings for the layers that carry weights, in current spelling.
fn v0_type_name(s: &str) -> String {
    match s {
        "conv" => "Convolution".into(),
        "innerproduct" => "InnerProduct".into(),
        other => other.to_string(),
    }
}
