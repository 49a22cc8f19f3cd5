//! Checkpoint readers: Caffe `.caffemodel` and PyTorch `.pth` files the tests write
//! themselves (so every field variant is covered), the real HigherHRNet-W8 `.pth` fixture
//! (bit-identical to its safetensors twin), bad files, and the VarBuilder over a store.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::io::{Cursor, Write};
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use posescope::weights::caffe::{load_caffemodel, CaffeNet, LayerFormat};
use posescope::weights::pth::{load_pth, PthOptions};
use posescope::weights::varbuilder::var_builder;
use posescope::weights::{load_checkpoint, TensorStore, WeightsError};

// ---------------------------------------------------------------------------------------
// A tiny protobuf encoder for the test's own caffemodels.

fn varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn tag(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, u64::from(field) << 3 | u64::from(wire));
}

fn f_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    tag(out, field, 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn f_varint(out: &mut Vec<u8>, field: u32, v: u64) {
    tag(out, field, 0);
    varint(out, v);
}

/// How a blob writes its shape and data.
#[derive(Clone, Copy)]
enum Enc {
    /// BlobShape with packed dims, packed floats.
    Packed,
    /// BlobShape with unpacked dims, unpacked floats (one fixed32 tag each).
    Unpacked,
    /// Legacy num/channels/height/width (shape must be 4-d), packed floats.
    Legacy,
    /// BlobShape, values in packed double_data.
    Double,
}

fn blob(shape: &[i64], data: &[f32], enc: Enc) -> Vec<u8> {
    let mut b = Vec::new();
    match enc {
        Enc::Legacy => {
            for (i, &d) in shape.iter().enumerate() {
                f_varint(&mut b, i as u32 + 1, d as u64);
            }
        }
        Enc::Packed | Enc::Double => {
            let mut dims = Vec::new();
            for &d in shape {
                varint(&mut dims, d as u64);
            }
            let mut s = Vec::new();
            f_bytes(&mut s, 1, &dims);
            f_bytes(&mut b, 7, &s);
        }
        Enc::Unpacked => {
            let mut s = Vec::new();
            for &d in shape {
                f_varint(&mut s, 1, d as u64);
            }
            f_bytes(&mut b, 7, &s);
        }
    }
    match enc {
        Enc::Packed | Enc::Legacy => {
            let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
            f_bytes(&mut b, 5, &bytes);
        }
        Enc::Unpacked => {
            for v in data {
                tag(&mut b, 5, 5);
                b.extend_from_slice(&v.to_le_bytes());
            }
        }
        Enc::Double => {
            let bytes: Vec<u8> = data
                .iter()
                .flat_map(|&v| f64::from(v).to_le_bytes())
                .collect();
            f_bytes(&mut b, 8, &bytes);
        }
    }
    b
}

/// A `LayerParameter` (V2): name=1, type=2, bottom=3, blobs=7.
fn layer_v2(name: &str, kind: &str, blobs: &[Vec<u8>]) -> Vec<u8> {
    let mut l = Vec::new();
    f_bytes(&mut l, 1, name.as_bytes());
    f_bytes(&mut l, 2, kind.as_bytes());
    f_bytes(&mut l, 3, b"data"); // a field the reader ignores
    for b in blobs {
        f_bytes(&mut l, 7, b);
    }
    l
}

/// A `V1LayerParameter`: bottom=2, name=4, type=5 (enum), blobs=6.
fn layer_v1(name: &str, kind: u64, blobs: &[Vec<u8>]) -> Vec<u8> {
    let mut l = Vec::new();
    f_bytes(&mut l, 2, b"data");
    f_bytes(&mut l, 4, name.as_bytes());
    f_varint(&mut l, 5, kind);
    for b in blobs {
        f_bytes(&mut l, 6, b);
    }
    l
}

/// A `NetParameter` with `name` and layers in field 100 (V2) or 2 (V1).
fn net(name: &str, layer_field: u32, layers: &[Vec<u8>]) -> Vec<u8> {
    let mut n = Vec::new();
    f_bytes(&mut n, 1, name.as_bytes());
    for l in layers {
        f_bytes(&mut n, layer_field, l);
    }
    n
}

fn seq(n: usize, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|i| (i as f32 - n as f32 / 2.0) * scale)
        .collect()
}

fn values(store: &TensorStore, name: &str, shape: &[usize]) -> Vec<f32> {
    store
        .get(name, shape)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
}

// ---------------------------------------------------------------------------------------
// Caffe

#[test]
fn caffe_v2_layers_with_blob_shapes_packed_and_unpacked() {
    let w = seq(4 * 3 * 3 * 3, 0.01);
    let b = vec![0.5, -0.25, 1.0, 2.0];
    let ip_w = seq(2 * 4, 0.5);
    let scale = vec![1.5, 2.5];
    let bytes = net(
        "tiny",
        100,
        &[
            layer_v2("data", "Input", &[]),
            layer_v2(
                "conv1",
                "Convolution",
                &[
                    blob(&[4, 3, 3, 3], &w, Enc::Packed),
                    blob(&[4], &b, Enc::Unpacked),
                ],
            ),
            layer_v2("relu1", "ReLU", &[]),
            layer_v2(
                "fc",
                "InnerProduct",
                &[
                    blob(&[2, 4], &ip_w, Enc::Double),
                    blob(&[2], &scale, Enc::Packed),
                    blob(&[1], &[7.0], Enc::Unpacked),
                ],
            ),
        ],
    );
    let net_parsed = CaffeNet::parse(&bytes).unwrap();
    assert_eq!(net_parsed.name.as_deref(), Some("tiny"));
    let infos = net_parsed.layer_infos();
    assert_eq!(infos.len(), 4);
    assert_eq!(infos[1].name, "conv1");
    assert_eq!(infos[1].kind, "Convolution");
    assert_eq!(infos[1].format, LayerFormat::V2);
    assert_eq!(infos[1].blob_shapes, vec![vec![4, 3, 3, 3], vec![4]]);
    assert!(infos[2].blob_shapes.is_empty());

    let (store, layers) = load_caffemodel(&bytes, "tiny.caffemodel", &Device::Cpu).unwrap();
    assert_eq!(layers, infos);
    assert_eq!(store.len(), 5);
    assert_eq!(values(&store, "conv1.weight", &[4, 3, 3, 3]), w);
    assert_eq!(values(&store, "conv1.bias", &[4]), b);
    assert_eq!(values(&store, "fc.weight", &[2, 4]), ip_w);
    assert_eq!(values(&store, "fc.bias", &[2]), scale);
    assert_eq!(values(&store, "fc.blob2", &[1]), vec![7.0]);
}

#[test]
fn caffe_v1_layers_with_legacy_shapes() {
    let w = seq(2 * 3 * 2 * 2, 0.1);
    let b = vec![0.125, -8.0];
    let ip_w = seq(3 * 5, 0.2);
    let ip_b = vec![1.0, 2.0, 3.0];
    let bytes = net(
        "old",
        2,
        &[
            layer_v1(
                "conv",
                4, // CONVOLUTION
                &[
                    blob(&[2, 3, 2, 2], &w, Enc::Legacy),
                    blob(&[1, 1, 1, 2], &b, Enc::Legacy),
                ],
            ),
            layer_v1("relu", 18, &[]), // RELU
            layer_v1(
                "ip",
                14, // INNER_PRODUCT
                &[
                    blob(&[1, 1, 3, 5], &ip_w, Enc::Legacy),
                    blob(&[1, 1, 1, 3], &ip_b, Enc::Legacy),
                ],
            ),
            layer_v1("odd", 99, &[]),
        ],
    );
    let parsed = CaffeNet::parse(&bytes).unwrap();
    let kinds: Vec<_> = parsed.layers.iter().map(|l| l.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["Convolution", "ReLU", "InnerProduct", "V1LayerType(99)"]
    );
    assert!(parsed.layers.iter().all(|l| l.format == LayerFormat::V1));
    let conv = parsed.layer("conv").unwrap();
    assert!(conv.blobs.iter().all(|b| b.legacy_shape));

    let (store, layers) = load_caffemodel(&bytes, "old.caffemodel", &Device::Cpu).unwrap();
    // Conv weights stay 4-d; legacy biases and inner-product weights lose the leading 1s.
    assert_eq!(layers[0].blob_shapes, vec![vec![2, 3, 2, 2], vec![2]]);
    assert_eq!(layers[2].blob_shapes, vec![vec![3, 5], vec![3]]);
    assert_eq!(values(&store, "conv.weight", &[2, 3, 2, 2]), w);
    assert_eq!(values(&store, "conv.bias", &[2]), b);
    assert_eq!(values(&store, "ip.weight", &[3, 5]), ip_w);
    assert_eq!(values(&store, "ip.bias", &[3]), ip_b);
}

#[test]
fn caffe_v0_layer_inside_v1() {
    // V1LayerParameter { layer (1) = V0LayerParameter { name=1, type=2, blobs=50 } }
    let mut v0 = Vec::new();
    f_bytes(&mut v0, 1, b"conv0");
    f_bytes(&mut v0, 2, b"conv");
    f_bytes(
        &mut v0,
        50,
        &blob(&[1, 1, 2, 2], &[1.0, 2.0, 3.0, 4.0], Enc::Legacy),
    );
    let mut v1 = Vec::new();
    f_bytes(&mut v1, 1, &v0);
    let bytes = net("v0", 2, &[v1]);
    let (store, layers) = load_caffemodel(&bytes, "v0.caffemodel", &Device::Cpu).unwrap();
    assert_eq!(layers[0].name, "conv0");
    assert_eq!(layers[0].kind, "Convolution");
    assert_eq!(layers[0].format, LayerFormat::V0);
    assert_eq!(
        values(&store, "conv0.weight", &[1, 1, 2, 2]),
        vec![1.0, 2.0, 3.0, 4.0]
    );
}

/// The CPM LSP model's first layers: `conv1_stage1` 9×9 from RGB to 128 channels.
fn cpm_like_caffemodel() -> (Vec<u8>, Vec<f32>, Vec<f32>) {
    let w = seq(128 * 3 * 9 * 9, 1e-4);
    let b = seq(128, 1e-2);
    let bytes = net(
        "CPM",
        100,
        &[
            layer_v2("data", "Input", &[]),
            layer_v2(
                "conv1_stage1",
                "Convolution",
                &[
                    blob(&[128, 3, 9, 9], &w, Enc::Packed),
                    blob(&[128], &b, Enc::Packed),
                ],
            ),
            layer_v2("relu1_stage1", "ReLU", &[]),
            layer_v2("pool1_stage1", "Pooling", &[]),
            layer_v2(
                "conv2_stage1",
                "Convolution",
                &[
                    blob(&[128, 128, 9, 9], &vec![0.0; 128 * 128 * 81], Enc::Packed),
                    blob(&[128], &[0.0; 128], Enc::Packed),
                ],
            ),
        ],
    );
    (bytes, w, b)
}

#[test]
fn caffe_cpm_first_layers_load_into_a_model() {
    let (bytes, w, b) = cpm_like_caffemodel();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pose_iter_320000.caffemodel");
    std::fs::write(&path, &bytes).unwrap();
    let store = load_checkpoint(&path, &Device::Cpu).unwrap();
    assert_eq!(store.len(), 4);
    assert_eq!(values(&store, "conv1_stage1.weight", &[128, 3, 9, 9]), w);

    // A model built through the VarBuilder finds the layer under PyTorch's names.
    let (vb, usage) = var_builder(store, DType::F32, &Device::Cpu);
    let cfg = candle_nn::Conv2dConfig {
        padding: 4,
        ..Default::default()
    };
    let conv = candle_nn::conv2d(3, 128, 9, cfg, vb.pp("conv1_stage1")).unwrap();
    assert_eq!(conv.weight().dims(), [128, 3, 9, 9]);
    assert_eq!(conv.bias().unwrap().to_vec1::<f32>().unwrap(), b);
    assert_eq!(
        usage.unused_keys(),
        ["conv2_stage1.bias", "conv2_stage1.weight"]
    );
    assert_eq!(
        usage.used_keys(),
        ["conv1_stage1.bias", "conv1_stage1.weight"]
    );
}

fn format_message(e: &WeightsError) -> String {
    e.to_string()
}

#[test]
fn caffe_truncated_and_garbage_files_are_format_errors() {
    let (bytes, _, _) = cpm_like_caffemodel();
    for cut in [bytes.len() / 2, 3, bytes.len() - 1] {
        let err = load_caffemodel(&bytes[..cut], "cut.caffemodel", &Device::Cpu).unwrap_err();
        assert!(matches!(err, WeightsError::Format { .. }), "{err:?}");
        let msg = format_message(&err);
        assert!(msg.contains("cut.caffemodel"), "{msg}");
    }
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let err = load_caffemodel(&garbage, "noise.caffemodel", &Device::Cpu).unwrap_err();
    assert!(err.to_string().contains("noise.caffemodel"), "{err}");
    // An empty net (or a prototxt) has no weights.
    let err = load_caffemodel(&net("empty", 100, &[]), "e.caffemodel", &Device::Cpu).unwrap_err();
    assert!(
        err.to_string().contains("no layer carries weights"),
        "{err}"
    );
}

#[test]
fn caffe_blob_length_mismatch_names_the_layer() {
    let bytes = net(
        "bad",
        100,
        &[layer_v2(
            "conv1_stage1",
            "Convolution",
            &[blob(&[4, 3, 3, 3], &seq(100, 1.0), Enc::Packed)],
        )],
    );
    let err = load_caffemodel(&bytes, "bad.caffemodel", &Device::Cpu).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("bad.caffemodel"), "{msg}");
    assert!(msg.contains("conv1_stage1"), "{msg}");
    assert!(msg.contains("108") && msg.contains("100"), "{msg}");

    // Negative dimension.
    let bytes = net(
        "neg",
        100,
        &[layer_v2(
            "c",
            "Convolution",
            &[blob(&[-1, 2], &[], Enc::Packed)],
        )],
    );
    let err = load_caffemodel(&bytes, "neg.caffemodel", &Device::Cpu).unwrap_err();
    assert!(err.to_string().contains("negative"), "{err}");
}

// ---------------------------------------------------------------------------------------
// PyTorch: a hand-assembled protocol-2 pickle in a zip, as torch.save writes it.

/// One tensor of a test checkpoint.
struct PtTensor {
    name: &'static str,
    storage_class: &'static str,
    key: &'static str,
    storage_numel: u32,
    offset: u32,
    size: Vec<u32>,
    stride: Vec<u32>,
}

struct Pickler {
    out: Vec<u8>,
    memo: u8,
}

impl Pickler {
    fn new() -> Self {
        Self {
            out: vec![0x80, 0x02], // PROTO 2
            memo: 0,
        }
    }
    fn op(&mut self, b: u8) {
        self.out.push(b);
    }
    fn global(&mut self, module: &str, name: &str) {
        self.op(b'c');
        self.out.extend_from_slice(module.as_bytes());
        self.op(b'\n');
        self.out.extend_from_slice(name.as_bytes());
        self.op(b'\n');
    }
    fn put(&mut self) {
        self.op(b'q'); // BINPUT
        self.op(self.memo);
        self.memo += 1;
    }
    fn string(&mut self, s: &str) {
        self.op(b'X'); // BINUNICODE
        self.out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.out.extend_from_slice(s.as_bytes());
    }
    fn int(&mut self, v: u32) {
        if v < 256 {
            self.op(b'K');
            self.op(v as u8);
        } else if v < 65536 {
            self.op(b'M');
            self.out.extend_from_slice(&(v as u16).to_le_bytes());
        } else {
            self.op(b'J');
            self.out.extend_from_slice(&(v as i32).to_le_bytes());
        }
    }
    fn int_tuple(&mut self, vs: &[u32]) {
        if vs.is_empty() {
            self.op(b')');
            return;
        }
        self.op(b'(');
        for &v in vs {
            self.int(v);
        }
        self.op(b't');
    }
    fn ordered_dict(&mut self) {
        self.global("collections", "OrderedDict");
        self.op(b')');
        self.op(b'R');
        self.put();
    }
    fn tensor(&mut self, t: &PtTensor) {
        self.global("torch._utils", "_rebuild_tensor_v2");
        self.op(b'(');
        // storage persistent id
        self.op(b'(');
        self.string("storage");
        self.global("torch", t.storage_class);
        self.string(t.key);
        self.string("cpu");
        self.int(t.storage_numel);
        self.op(b't');
        self.op(b'Q'); // BINPERSID
        self.int(t.offset);
        self.int_tuple(&t.size);
        self.int_tuple(&t.stride);
        self.op(0x89); // NEWFALSE: requires_grad
        self.ordered_dict(); // backward_hooks
        self.op(b't');
        self.op(b'R');
    }
    /// `OrderedDict` of the tensors, with `_metadata` set by BUILD as torch does.
    fn state_dict(&mut self, tensors: &[PtTensor]) {
        self.ordered_dict();
        self.op(b'(');
        for t in tensors {
            self.string(t.name);
            self.tensor(t);
        }
        self.op(b'u'); // SETITEMS
        self.op(b'}');
        self.string("_metadata");
        self.ordered_dict();
        self.op(b's');
        self.op(b'b'); // BUILD
    }
    fn finish(mut self) -> Vec<u8> {
        self.op(b'.');
        self.out
    }
}

fn stored() -> zip::write::SimpleFileOptions {
    zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored)
}

/// A zip checkpoint under folder `archive/`, with the given pickle and storages.
fn pth_zip(pickle: &[u8], storages: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    w.start_file("archive/data.pkl", stored()).unwrap();
    w.write_all(pickle).unwrap();
    w.start_file("archive/byteorder", stored()).unwrap();
    w.write_all(b"little").unwrap();
    for (key, bytes) in storages {
        w.start_file(format!("archive/data/{key}"), stored())
            .unwrap();
        w.write_all(bytes).unwrap();
    }
    w.start_file("archive/version", stored()).unwrap();
    w.write_all(b"3\n").unwrap();
    w.finish().unwrap().into_inner()
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Tensors covering dtypes, a shared storage with an offset, a transposed view and an
/// int64 `num_batches_tracked`; names carry DataParallel's `module.` prefix.
fn small_tensors() -> (Vec<PtTensor>, Vec<(&'static str, Vec<u8>)>) {
    let shared: Vec<f32> = (0..10).map(|i| i as f32 * 0.5).collect();
    let half: Vec<u8> = [1.5f32, -2.0, 0.25]
        .iter()
        .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
        .collect();
    let bf: Vec<u8> = [3.0f32, -0.5]
        .iter()
        .flat_map(|&v| half::bf16::from_f32(v).to_le_bytes())
        .collect();
    let dbl: Vec<u8> = [0.1f64, 1e3].iter().flat_map(|v| v.to_le_bytes()).collect();
    let tensors = vec![
        PtTensor {
            name: "module.conv.weight",
            storage_class: "FloatStorage",
            key: "0",
            storage_numel: 10,
            offset: 0,
            size: vec![2, 3],
            stride: vec![3, 1],
        },
        PtTensor {
            // Elements 6..10 of the same storage.
            name: "module.conv.bias",
            storage_class: "FloatStorage",
            key: "0",
            storage_numel: 10,
            offset: 6,
            size: vec![4],
            stride: vec![1],
        },
        PtTensor {
            // The transpose of conv.weight: a [3, 2] view with strides (1, 3).
            name: "module.conv.weight_t",
            storage_class: "FloatStorage",
            key: "0",
            storage_numel: 10,
            offset: 0,
            size: vec![3, 2],
            stride: vec![1, 3],
        },
        PtTensor {
            name: "module.bn.weight",
            storage_class: "HalfStorage",
            key: "1",
            storage_numel: 3,
            offset: 0,
            size: vec![3],
            stride: vec![1],
        },
        PtTensor {
            name: "module.bn.bias",
            storage_class: "BFloat16Storage",
            key: "2",
            storage_numel: 2,
            offset: 0,
            size: vec![2],
            stride: vec![1],
        },
        PtTensor {
            name: "module.bn.running_mean",
            storage_class: "DoubleStorage",
            key: "3",
            storage_numel: 2,
            offset: 0,
            size: vec![2],
            stride: vec![1],
        },
        PtTensor {
            name: "module.bn.num_batches_tracked",
            storage_class: "LongStorage",
            key: "4",
            storage_numel: 1,
            offset: 0,
            size: vec![],
            stride: vec![],
        },
    ];
    let storages = vec![
        ("0", f32_bytes(&shared)),
        ("1", half),
        ("2", bf),
        ("3", dbl),
        ("4", 123i64.to_le_bytes().to_vec()),
    ];
    (tensors, storages)
}

fn check_small_store(store: &TensorStore) {
    assert_eq!(store.len(), 6, "{:?}", store.names().collect::<Vec<_>>());
    assert!(store.names().all(|n| !n.starts_with("module.")));
    assert_eq!(
        values(store, "conv.weight", &[2, 3]),
        vec![0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    );
    assert_eq!(values(store, "conv.bias", &[4]), vec![3.0, 3.5, 4.0, 4.5]);
    assert_eq!(
        values(store, "conv.weight_t", &[3, 2]),
        vec![0.0, 1.5, 0.5, 2.0, 1.0, 2.5]
    );
    assert_eq!(values(store, "bn.weight", &[3]), vec![1.5, -2.0, 0.25]);
    assert_eq!(values(store, "bn.bias", &[2]), vec![3.0, -0.5]);
    assert_eq!(
        values(store, "bn.running_mean", &[2]),
        vec![0.1f64 as f32, 1000.0]
    );
    assert!(!store.contains("bn.num_batches_tracked"));
    assert!(store
        .names()
        .all(|n| store.get_any(n).unwrap().dtype() == DType::F32));
}

#[test]
fn pth_hand_written_state_dict_with_module_prefix() {
    let (tensors, storages) = small_tensors();
    let mut p = Pickler::new();
    p.state_dict(&tensors);
    let bytes = pth_zip(&p.finish(), &storages);
    let ckpt = load_pth(&bytes, "small.pth", &PthOptions::default(), &Device::Cpu).unwrap();
    check_small_store(&ckpt.store);
    assert!(ckpt.wrapper_path.is_empty());
    let skipped: Vec<_> = ckpt.skipped.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(skipped, ["module.bn.num_batches_tracked", "_metadata"]);

    // Without prefix stripping the names stay as saved.
    let keep = PthOptions {
        strip_prefixes: vec![],
        ..PthOptions::default()
    };
    let ckpt = load_pth(&bytes, "small.pth", &keep, &Device::Cpu).unwrap();
    assert!(ckpt.store.contains("module.conv.weight"));
}

#[test]
fn pth_state_dict_wrapped_in_a_dict() {
    let (tensors, storages) = small_tensors();
    let mut p = Pickler::new();
    // {"epoch": 7, "state_dict": OrderedDict(...)}
    p.op(b'}');
    p.put();
    p.op(b'(');
    p.string("epoch");
    p.int(7);
    p.string("state_dict");
    p.state_dict(&tensors);
    p.op(b'u');
    let bytes = pth_zip(&p.finish(), &storages);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("checkpoint.pth.tar");
    std::fs::write(&path, &bytes).unwrap();
    let ckpt = load_pth(&bytes, "w.pth.tar", &PthOptions::default(), &Device::Cpu).unwrap();
    assert_eq!(ckpt.wrapper_path, ["state_dict"]);
    check_small_store(&ckpt.store);
    // load_checkpoint recognises the zip by content.
    check_small_store(&load_checkpoint(&path, &Device::Cpu).unwrap());

    // A wrapper key the options do not list: a clear error listing the keys.
    let opts = PthOptions {
        wrapper_keys: vec!["model".into()],
        ..PthOptions::default()
    };
    let err = load_pth(&bytes, "w.pth.tar", &opts, &Device::Cpu).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("w.pth.tar") && msg.contains("state_dict"),
        "{msg}"
    );
}

#[test]
fn pth_bad_files_give_clear_errors() {
    let (tensors, storages) = small_tensors();
    let mut p = Pickler::new();
    p.state_dict(&tensors);
    let pickle = p.finish();
    let good = pth_zip(&pickle, &storages);

    // Truncated archive.
    for cut in [good.len() / 2, good.len() - 10, 10] {
        let err = load_pth(
            &good[..cut],
            "cut.pth",
            &PthOptions::default(),
            &Device::Cpu,
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("cut.pth"), "{msg}");
    }
    // Not a zip at all, under a .pth name, through load_checkpoint.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.pth");
    std::fs::write(&path, b"this is not a checkpoint").unwrap();
    let err = load_checkpoint(&path, &Device::Cpu).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("model.pth") && msg.contains("not a zip"),
        "{msg}"
    );
    // The legacy torch.save format is recognised.
    let mut legacy = vec![0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20];
    legacy.extend_from_slice(&[0x6a, 0xa8, 0x50, 0x19, b'.']);
    let err = load_pth(&legacy, "old.pth", &PthOptions::default(), &Device::Cpu).unwrap_err();
    assert!(err.to_string().contains("legacy"), "{err}");
    // A storage shorter than the pickle says: names the tensor.
    let mut short = storages.clone();
    short[1].1.truncate(2);
    let bytes = pth_zip(&pickle, &short);
    let err = load_pth(&bytes, "short.pth", &PthOptions::default(), &Device::Cpu).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("short.pth") && msg.contains("module.bn.weight"),
        "{msg}"
    );
    // A truncated pickle.
    let bytes = pth_zip(&pickle[..pickle.len() / 2], &storages);
    let err = load_pth(&bytes, "pkl.pth", &PthOptions::default(), &Device::Cpu).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("pkl.pth") && msg.contains("data.pkl"), "{msg}");
    // A zip without data.pkl.
    let bytes = pth_zip(b"", &[]);
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    w.start_file("readme.txt", stored()).unwrap();
    w.write_all(b"hi").unwrap();
    let other = w.finish().unwrap().into_inner();
    let err = load_pth(&other, "x.pth", &PthOptions::default(), &Device::Cpu).unwrap_err();
    assert!(err.to_string().contains("no data.pkl"), "{err}");
    let err = load_pth(&bytes, "y.pth", &PthOptions::default(), &Device::Cpu).unwrap_err();
    assert!(err.to_string().contains("y.pth"), "{err}");
}

#[test]
fn pth_higherhrnet_w8_fixture_is_bit_identical_to_safetensors() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let dir = shared.join("fixtures/posegen/higherhrnet_w8_pth");
    let pth_path = dir.join("weights.pth");
    let st_path = dir.join("weights.safetensors");

    let bytes = std::fs::read(&pth_path).unwrap();
    let ckpt = load_pth(
        &bytes,
        &pth_path.display().to_string(),
        &PthOptions::default(),
        &Device::Cpu,
    )
    .unwrap();
    let reference: HashMap<String, Tensor> =
        candle_core::safetensors::load(&st_path, &Device::Cpu).unwrap();
    assert_eq!(reference.len(), 1810);
    let skipped: Vec<_> = ckpt
        .skipped
        .iter()
        .filter(|(n, _)| n.ends_with("num_batches_tracked"))
        .collect();
    assert_eq!(skipped.len(), 301);
    assert_eq!(ckpt.store.len(), 1810 - 301);
    println!(
        "weights.pth: {} float tensors, {} skipped ({} num_batches_tracked)",
        ckpt.store.len(),
        ckpt.skipped.len(),
        skipped.len()
    );

    let mut floats = 0usize;
    for (name, want) in &reference {
        if want.dtype() == DType::I64 {
            assert!(name.ends_with("num_batches_tracked"), "{name}");
            assert!(!ckpt.store.contains(name));
            continue;
        }
        let got = ckpt.store.get(name, want.dims()).unwrap();
        let got: Vec<u32> = got
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect();
        let want: Vec<u32> = want
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect();
        assert!(got == want, "tensor {name} differs");
        floats += got.len();
    }
    assert_eq!(floats, 2_166_347);
    println!("all 1509 float tensors bit-identical ({floats} values)");

    // The same through load_checkpoint, for both files.
    let via_dispatch = load_checkpoint(&pth_path, &Device::Cpu).unwrap();
    assert_eq!(via_dispatch.len(), 1509);
    let st = load_checkpoint(&st_path, &Device::Cpu).unwrap();
    assert_eq!(st.len(), 1509);

    // A truncated copy of the real file.
    let err = load_pth(
        &bytes[..bytes.len() * 3 / 4],
        "weights_cut.pth",
        &PthOptions::default(),
        &Device::Cpu,
    )
    .unwrap_err();
    assert!(err.to_string().contains("weights_cut.pth"), "{err}");
}

// ---------------------------------------------------------------------------------------
// VarBuilder over a store, and dispatch

fn small_store() -> TensorStore {
    let mut m = HashMap::new();
    m.insert(
        "a.weight".to_string(),
        Tensor::from_vec(seq(6, 1.0), (2, 3), &Device::Cpu).unwrap(),
    );
    m.insert(
        "a.bias".to_string(),
        Tensor::from_vec(seq(2, 1.0), 2, &Device::Cpu).unwrap(),
    );
    m.insert(
        "extra.scale".to_string(),
        Tensor::from_vec(seq(1, 1.0), 1, &Device::Cpu).unwrap(),
    );
    TensorStore::new("small.safetensors", m)
}

#[test]
fn varbuilder_errors_name_file_tensor_and_shapes() {
    let (vb, usage) = var_builder(small_store(), DType::F32, &Device::Cpu);
    let w = vb.pp("a").get((2, 3), "weight").unwrap();
    assert_eq!(w.dims(), [2, 3]);

    let err = vb.pp("a").get((3, 2), "bias").unwrap_err().to_string();
    assert!(err.contains("small.safetensors"), "{err}");
    assert!(err.contains("a.bias"), "{err}");
    assert!(err.contains("[3, 2]") && err.contains("[2]"), "{err}");

    let err = vb.pp("b").get(4, "weight").unwrap_err().to_string();
    assert!(
        err.contains("small.safetensors") && err.contains("b.weight"),
        "{err}"
    );

    // Failed loads do not count as used.
    assert_eq!(usage.used_keys(), ["a.weight"]);
    assert_eq!(usage.unused_keys(), ["a.bias", "extra.scale"]);
    assert_eq!(usage.file(), "small.safetensors");

    // A linear layer takes the rest of `a`; dtype conversion happens on the way out.
    let (vb16, usage16) = var_builder(small_store(), DType::F16, &Device::Cpu);
    let lin = candle_nn::linear(3, 2, vb16.pp("a")).unwrap();
    assert_eq!(lin.weight().dtype(), DType::F16);
    assert_eq!(usage16.unused_keys(), ["extra.scale"]);
    assert!(vb16.contains_tensor("extra.scale"));
}

#[test]
fn load_checkpoint_unknown_format_lists_accepted_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weights.h5");
    std::fs::write(&path, b"\x89HDF\r\n\x1a\n").unwrap();
    let err = load_checkpoint(&path, &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(err.contains("weights.h5"), "{err}");
    assert!(err.contains(".caffemodel") && err.contains(".pth"), "{err}");

    let missing = load_checkpoint(Path::new("/nonexistent/x.pth"), &Device::Cpu).unwrap_err();
    assert!(matches!(missing, WeightsError::Io { .. }));
}
