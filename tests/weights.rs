//! Bad weights files: a frozen graph missing a tensor, with a mis-shaped tensor, truncated,
//! or not a graph at all, must give a clear error naming the file and the tensor.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use posescope::weights::tf_graphdef::GraphDef;

/// Minimal protobuf writer for the test's own graphs.
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

fn field_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    varint(out, u64::from(field) << 3 | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn field_varint(out: &mut Vec<u8>, field: u32, v: u64) {
    varint(out, u64::from(field) << 3);
    varint(out, v);
}

/// A GraphDef holding one float Const node per `(name, shape, values)`.
fn graph(tensors: &[(String, Vec<usize>, Vec<f32>)]) -> Vec<u8> {
    let mut g = Vec::new();
    for (name, shape, values) in tensors {
        let mut shape_msg = Vec::new();
        for &d in shape {
            let mut dim = Vec::new();
            field_varint(&mut dim, 1, d as u64);
            field_bytes(&mut shape_msg, 2, &dim);
        }
        let mut tensor = Vec::new();
        field_varint(&mut tensor, 1, 1); // DT_FLOAT
        field_bytes(&mut tensor, 2, &shape_msg);
        let content: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        field_bytes(&mut tensor, 4, &content);
        let mut attr_value = Vec::new();
        field_bytes(&mut attr_value, 8, &tensor);
        let mut entry = Vec::new();
        field_bytes(&mut entry, 1, b"value");
        field_bytes(&mut entry, 2, &attr_value);
        let mut node = Vec::new();
        field_bytes(&mut node, 1, name.as_bytes());
        field_bytes(&mut node, 2, b"Const");
        field_bytes(&mut node, 5, &entry);
        field_bytes(&mut g, 1, &node);
    }
    g
}

fn real_tensors() -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let g = GraphDef::parse(posescope::models::catalog::TFPOSE_MOBILENET_THIN_PB).unwrap();
    g.constants()
        .filter(|c| c.dtype.is_float())
        .map(|c| (c.name.clone(), c.shape.clone(), c.to_f32().unwrap()))
        .collect()
}

fn load_error(dir: &std::path::Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let e = posescope::models::Model::load(path.to_str().unwrap(), &candle_core::Device::Cpu)
        .expect_err("loading must fail");
    e.to_string()
}

#[test]
fn reencoded_graph_loads() {
    // The test's encoder and the reader agree: the re-encoded real weights load.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ok.pb");
    std::fs::write(&path, graph(&real_tensors())).unwrap();
    posescope::models::Model::load(path.to_str().unwrap(), &candle_core::Device::Cpu).unwrap();
}

#[test]
fn missing_tensor_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = real_tensors();
    let victim = "Openpose/MConv_Stage3_L2_2_pointwise/weights";
    t.retain(|(n, _, _)| n != victim);
    let e = load_error(dir.path(), "missing.pb", &graph(&t));
    assert!(e.contains(victim) && e.contains("missing.pb"), "{e}");
}

#[test]
fn misshaped_tensor_is_named_with_both_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = real_tensors();
    let victim = "MobilenetV1/Conv2d_5_pointwise/Conv2D_bn_offset";
    for (n, s, v) in t.iter_mut() {
        if n == victim {
            *s = vec![191];
            v.truncate(191);
        }
    }
    let e = load_error(dir.path(), "shape.pb", &graph(&t));
    assert!(
        e.contains(victim) && e.contains("[191]") && e.contains("[192]"),
        "{e}"
    );
}

#[test]
fn truncated_and_garbage_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = posescope::models::catalog::TFPOSE_MOBILENET_THIN_PB;
    let e = load_error(dir.path(), "cut.pb", &bytes[..bytes.len() / 3]);
    assert!(e.contains("cut.pb"), "{e}");
    let e = load_error(dir.path(), "junk.pb", b"\xff\xff\xff\xff not protobuf");
    assert!(e.contains("junk.pb"), "{e}");
    let e = load_error(dir.path(), "weights.bin", b"whatever");
    assert!(e.contains("weights.bin"), "{e}");
}
