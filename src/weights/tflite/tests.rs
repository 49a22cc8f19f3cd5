//! Tests of [`super`] (`weights/tflite.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;

/// A field value for the test's own FlatBuffer writer.
enum Val {
    U8(u8),
    I32(i32),
    U32(u32),
    Str(&'static str),
    Bytes(Vec<u8>),
    I32s(Vec<i32>),
    Table(Obj),
    Tables(Vec<Obj>),
}

/// A table: `(field id, value)` pairs.
struct Obj(Vec<(usize, Val)>);

fn align(buf: &mut Vec<u8>, to: usize) {
    while !buf.len().is_multiple_of(to) {
        buf.push(0);
    }
}

fn patch(buf: &mut [u8], at: usize, target: usize) {
    let off = u32::try_from(target - at).unwrap();
    buf[at..at + 4].copy_from_slice(&off.to_le_bytes());
}

/// Writes a table (vtable first, children after it, so every uoffset points forward)
/// and returns its position.
fn write_table(buf: &mut Vec<u8>, obj: &Obj) -> usize {
    let max_id = obj.0.iter().map(|f| f.0).max().map_or(0, |m| m + 1);
    // Inline layout: soffset, then one 4-byte slot per field (scalars padded to 4).
    let table_len = 4 + 4 * obj.0.len();
    align(buf, 2);
    let vtable = buf.len();
    buf.extend_from_slice(&u16::try_from(4 + 2 * max_id).unwrap().to_le_bytes());
    buf.extend_from_slice(&u16::try_from(table_len).unwrap().to_le_bytes());
    let mut slots = vec![0u16; max_id];
    for (k, (id, _)) in obj.0.iter().enumerate() {
        slots[*id] = u16::try_from(4 + 4 * k).unwrap();
    }
    for s in slots {
        buf.extend_from_slice(&s.to_le_bytes());
    }
    align(buf, 4);
    let table = buf.len();
    buf.extend_from_slice(&i32::try_from(table - vtable).unwrap().to_le_bytes());
    for (_, v) in &obj.0 {
        let mut slot = [0u8; 4];
        match v {
            Val::U8(x) => slot[0] = *x,
            Val::I32(x) => slot = x.to_le_bytes(),
            Val::U32(x) => slot = x.to_le_bytes(),
            _ => {}
        }
        buf.extend_from_slice(&slot);
    }
    for (k, (_, v)) in obj.0.iter().enumerate() {
        let field = table + 4 + 4 * k;
        align(buf, 4);
        match v {
            Val::Str(s) => {
                let at = buf.len();
                buf.extend_from_slice(&u32::try_from(s.len()).unwrap().to_le_bytes());
                buf.extend_from_slice(s.as_bytes());
                buf.push(0);
                patch(buf, field, at);
            }
            Val::Bytes(b) => {
                let at = buf.len();
                buf.extend_from_slice(&u32::try_from(b.len()).unwrap().to_le_bytes());
                buf.extend_from_slice(b);
                patch(buf, field, at);
            }
            Val::I32s(xs) => {
                let at = buf.len();
                buf.extend_from_slice(&u32::try_from(xs.len()).unwrap().to_le_bytes());
                for x in xs {
                    buf.extend_from_slice(&x.to_le_bytes());
                }
                patch(buf, field, at);
            }
            Val::Table(t) => {
                let at = write_table(buf, t);
                patch(buf, field, at);
            }
            Val::Tables(ts) => {
                let at = buf.len();
                buf.extend_from_slice(&u32::try_from(ts.len()).unwrap().to_le_bytes());
                buf.resize(buf.len() + 4 * ts.len(), 0);
                patch(buf, field, at);
                for (i, t) in ts.iter().enumerate() {
                    let pos = write_table(buf, t);
                    patch(buf, at + 4 + 4 * i, pos);
                }
            }
            _ => {}
        }
    }
    table
}

fn finish(root: &Obj) -> Vec<u8> {
    let mut buf = vec![0u8; 8];
    buf[4..8].copy_from_slice(FILE_IDENTIFIER);
    let pos = write_table(&mut buf, root);
    patch(&mut buf, 0, pos);
    buf
}

fn tensor(name: &'static str, shape: Vec<i32>, dtype: u8, buffer: u32) -> Obj {
    Obj(vec![
        (0, Val::I32s(shape)),
        (1, Val::U8(dtype)),
        (2, Val::U32(buffer)),
        (3, Val::Str(name)),
    ])
}

/// A model with a 3×3 depthwise conv (f32 filter, f16 bias) on a [1,4,4,2] input,
/// then a resize; the second opcode uses the new `builtin_code` field.
fn tiny_model() -> Vec<u8> {
    let filter: Vec<u8> = (0..18)
        .flat_map(|i| (i as f32 * 0.5).to_le_bytes())
        .collect();
    // f16: 1.0, -2.0 (bias), 0.5, 65504, 2^-24 (smallest subnormal), -0.0.
    let half: Vec<u8> = [0x3C00u16, 0xC000, 0x3800, 0x7BFF, 0x0001, 0x8000]
        .iter()
        .flat_map(|h| h.to_le_bytes())
        .collect();
    let size: Vec<u8> = [8i32, 8].iter().flat_map(|v| v.to_le_bytes()).collect();
    let subgraph = Obj(vec![
        (
            0,
            Val::Tables(vec![
                tensor("input", vec![1, 4, 4, 2], 0, 0),
                tensor("dw/weights", vec![1, 3, 3, 2], 0, 1),
                tensor("dw/bias_f16", vec![2], 1, 2),
                tensor("dw/out", vec![1, 2, 2, 2], 0, 0),
                tensor("size", vec![2], 2, 3),
                tensor("up", vec![1, 8, 8, 2], 0, 0),
                tensor("more_f16", vec![4], 1, 4),
            ]),
        ),
        (1, Val::I32s(vec![0])),
        (2, Val::I32s(vec![5])),
        (
            3,
            Val::Tables(vec![
                Obj(vec![
                    (0, Val::U32(0)),
                    (1, Val::I32s(vec![0, 1, 2])),
                    (2, Val::I32s(vec![3])),
                    (3, Val::U8(2)),
                    (
                        4,
                        Val::Table(Obj(vec![
                            (1, Val::I32(2)),
                            (2, Val::I32(2)),
                            (3, Val::I32(1)),
                            (4, Val::U8(3)),
                        ])),
                    ),
                ]),
                Obj(vec![
                    (0, Val::U32(1)),
                    (1, Val::I32s(vec![3, 4])),
                    (2, Val::I32s(vec![5])),
                    (3, Val::U8(15)),
                    (4, Val::Table(Obj(vec![(3, Val::U8(1))]))),
                ]),
                Obj(vec![
                    (0, Val::U32(2)),
                    (1, Val::I32s(vec![5])),
                    (2, Val::I32s(vec![5])),
                ]),
            ]),
        ),
    ]);
    finish(&Obj(vec![
        (0, Val::U32(3)),
        (
            1,
            Val::Tables(vec![
                // Old style (TOCO): only the deprecated byte.
                Obj(vec![(0, Val::U8(4))]),
                // New style without the byte (default 0): the int holds the code.
                Obj(vec![(2, Val::I32(2)), (3, Val::I32(23))]),
                // A code past 127: the byte saturates at 127 (placeholder).
                Obj(vec![(0, Val::U8(127)), (3, Val::I32(150))]),
            ]),
        ),
        (2, Val::Tables(vec![subgraph])),
        (3, Val::Str("test model")),
        (
            4,
            Val::Tables(vec![
                Obj(vec![]),
                Obj(vec![(0, Val::Bytes(filter))]),
                Obj(vec![(0, Val::Bytes(half[..4].to_vec()))]),
                Obj(vec![(0, Val::Bytes(size))]),
                Obj(vec![(0, Val::Bytes(half[4..].to_vec()))]),
            ]),
        ),
    ]))
}

#[test]
fn parses_a_tiny_model() {
    let bytes = tiny_model();
    let m = TfliteModel::parse(&bytes).unwrap();
    assert_eq!(m.version, 3);
    assert_eq!(m.description.as_deref(), Some("test model"));
    assert_eq!(m.tensors.len(), 7);
    assert_eq!(m.tensors[1].name, "dw/weights");
    assert_eq!(m.tensors[1].shape, vec![1, 3, 3, 2]);
    assert_eq!(m.tensors[2].dtype, TensorType::Float16);
    assert_eq!(m.inputs, vec![0]);
    assert_eq!(m.outputs, vec![5]);
    assert_eq!(m.operators.len(), 3);
    assert_eq!(m.operators[2].code, 150, "saturated byte: the int wins");
    assert_eq!(m.operators[2].options, Options::None);
    let dw = &m.operators[0];
    assert_eq!(dw.code, builtin::DEPTHWISE_CONV_2D);
    assert_eq!(dw.inputs, vec![0, 1, 2]);
    assert_eq!(
        dw.options,
        Options::DepthwiseConv2D {
            padding: Padding::Same,
            stride: (2, 2),
            dilation: (1, 1),
            depth_multiplier: 1,
            activation: Activation::Relu6,
        }
    );
    let up = &m.operators[1];
    assert_eq!(
        up.code,
        builtin::RESIZE_BILINEAR,
        "builtin_code without the byte"
    );
    assert_eq!(up.version, 2);
    assert_eq!(
        up.options,
        Options::Resize {
            align_corners: false,
            half_pixel_centers: true
        }
    );
}

#[test]
fn loads_f32_and_widens_f16() {
    let bytes = tiny_model();
    let store = load_tflite(&bytes, "tiny.tflite", &Device::Cpu).unwrap();
    assert_eq!(store.len(), 3, "int32 and activation tensors are skipped");
    let w: Vec<f32> = store
        .get("dw/weights", &[1, 3, 3, 2])
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    assert_eq!(w[0], 0.0);
    assert_eq!(w[17], 8.5);
    let b: Vec<f32> = store.get("dw/bias_f16", &[2]).unwrap().to_vec1().unwrap();
    assert_eq!(b, vec![1.0, -2.0]);
    let more: Vec<f32> = store.get("more_f16", &[4]).unwrap().to_vec1().unwrap();
    assert_eq!(more[0], 0.5);
    assert_eq!(more[1], 65504.0);
    assert_eq!(more[2], 2f32.powi(-24));
    assert!(more[3] == 0.0 && more[3].is_sign_negative());
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    let bytes = tiny_model();
    for len in 0..bytes.len() {
        let r = load_tflite(&bytes[..len], "cut.tflite", &Device::Cpu);
        // Cutting only trailing padding may still parse; it must never panic.
        if let Err(e) = r {
            let msg = e.to_string();
            assert!(msg.contains("cut.tflite"), "{msg}");
        }
    }
    assert!(load_tflite(&bytes[..bytes.len() / 2], "cut.tflite", &Device::Cpu).is_err());
}

#[test]
fn corrupt_bytes_never_panic() {
    let bytes = tiny_model();
    // Flip each byte in turn (keeping the identifier): errors or a model, no panic.
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0xA5;
        let _ = TfliteModel::parse(&b);
        let _ = load_tflite(&b, "flip.tflite", &Device::Cpu);
    }
}

#[test]
fn garbage_and_wrong_identifier_are_format_errors() {
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
    let e = load_tflite(&garbage, "noise.bin", &Device::Cpu).unwrap_err();
    assert!(matches!(e, WeightsError::Format { .. }), "{e}");
    assert!(e.to_string().contains("noise.bin"), "{e}");
    let mut bytes = tiny_model();
    bytes[4..8].copy_from_slice(b"XXXX");
    let e = load_tflite(&bytes, "other.fb", &Device::Cpu).unwrap_err();
    assert!(e.to_string().contains("TFL3"), "{e}");
    // A vtable offset pointing outside the file.
    let mut bytes = tiny_model();
    let root = u32::from_le_bytes(bytes[0..4].try_into().unwrap()) as usize;
    bytes[root..root + 4].copy_from_slice(&i32::MIN.to_le_bytes());
    let e = load_tflite(&bytes, "bad.tflite", &Device::Cpu).unwrap_err();
    assert!(e.to_string().contains("vtable"), "{e}");
}

#[test]
fn a_buffer_that_does_not_fill_its_shape_is_named() {
    // Same model, but the filter tensor claims a larger shape.
    let bytes = tiny_model();
    let m = TfliteModel::parse(&bytes).unwrap();
    let mut m2 = m.clone();
    m2.tensors[1].shape = vec![1, 3, 3, 3];
    let e = m2.float_constants().unwrap_err();
    assert!(e.to_string().contains("dw/weights"), "{e}");
}
