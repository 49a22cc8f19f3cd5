//! Tests of [`super`] (`weights/tf_graphdef.rs`).

#![allow(clippy::unwrap_used)]
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

/// Found by the `tf_graphdef` fuzz target (fuzz/regressions/tf_graphdef/): a 62-byte graph
/// whose one `float_val` splats over a [65536, 65536] shape made the loader allocate 16 GiB.
#[test]
fn a_splat_is_bounded_but_fills_up_to_the_limit() {
    let at_limit = MAX_SPLAT_ELEMENTS as i64;
    let g = single_const(
        "ok",
        DT_FLOAT,
        tensor(DT_FLOAT, &[at_limit]).packed_f32(5, &[0.25]),
    );
    let values = g.constant("ok").unwrap().to_f32().unwrap();
    assert_eq!(values.len(), MAX_SPLAT_ELEMENTS);
    assert!(values.iter().all(|&v| v == 0.25));

    let g = single_const(
        "big",
        DT_FLOAT,
        tensor(DT_FLOAT, &[65536, 65536]).packed_f32(5, &[1.0]),
    );
    let err = g.constant("big").unwrap().to_f32().unwrap_err();
    assert!(matches!(err, GraphDefError::SplatTooLarge { elements, .. } if elements == 1 << 32));
    assert!(err.to_string().contains("'big'"), "{err}");
    // The same for the integer path (`Reshape` shapes and other int constants).
    let g = single_const(
        "ints",
        DT_INT32,
        tensor(DT_INT32, &[at_limit + 1]).packed_varint(7, &[3]),
    );
    let err = g.constant("ints").unwrap().to_i64().unwrap_err();
    assert!(matches!(err, GraphDefError::SplatTooLarge { .. }), "{err}");
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
