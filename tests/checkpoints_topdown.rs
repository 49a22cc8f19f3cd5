//! Top-down checkpoints through `Model::load(path)`: the test writes small checkpoints of
//! reduced configurations itself (posegen-v1 tensors, DataParallel `module.` /
//! `model.module.` prefixes, one extra key), and checks that the family and configuration
//! are detected from the keys and shapes, that the network gives the same maps as one built
//! directly, that the extra key is reported as unused (and the hourglass's unused
//! `skip_layer`s are not), and that a missing or mis-shaped tensor is named with the file.
//! Also the CLI's plain error for a catalogue model whose weights are not present.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use candle_core::{DType, Device, Tensor};
use posescope::models::nets::hrnet::{self, Hrnet};
use posescope::models::nets::simple_baseline::{self, SimpleBaseline};
use posescope::models::nets::stacked_hourglass::{self, StackedHourglass};
use posescope::models::nets::unipose::{self, Unipose};
use posescope::models::CellField;
use posescope::models::{Model, RunOptions, StageOutput, TOPDOWN_BOX_PADDING};
use posescope::pipeline::{PersonMode, Pipeline, PipelineConfig};
use posescope::source::Frame;
use posescope::weights::posegen;

/// The tensors a network asked for while loading from a posegen var builder, with values,
/// as a state dict (float tensors only), and the maps of the directly built network.
fn state_dict(
    load: impl FnOnce(candle_nn::VarBuilder<'static>) -> Tensor,
    gain: f64,
) -> (HashMap<String, Tensor>, Tensor) {
    let (vb, recorder) = posegen::var_builder(gain, &Device::Cpu);
    let maps = load(vb);
    let tensors = recorder
        .requests()
        .into_iter()
        .filter_map(|(name, shape)| {
            let t = posegen::tensor(&name, &shape, gain, &Device::Cpu).unwrap();
            t.dtype().is_float().then_some((name, t))
        })
        .collect();
    (tensors, maps)
}

fn input(h: usize, w: usize) -> Tensor {
    let v: Vec<f32> = (0..3 * h * w)
        .map(|i| ((i * 37 % 101) as f32 / 101.0) - 0.5)
        .collect();
    Tensor::from_vec(v, (1, 3, h, w), &Device::Cpu).unwrap()
}

/// Writes `tensors` under `prefix` plus an extra key as safetensors.
fn write(dir: &Path, name: &str, tensors: &HashMap<String, Tensor>, prefix: &str) -> String {
    let mut out: HashMap<String, Tensor> = tensors
        .iter()
        .map(|(k, t)| (format!("{prefix}{k}"), t.clone()))
        .collect();
    out.insert(
        format!("{prefix}extra_head.weight"),
        Tensor::ones((2, 2), DType::F32, &Device::Cpu).unwrap(),
    );
    let path = dir.join(name);
    candle_core::safetensors::save(&out, &path).unwrap();
    path.to_str().unwrap().to_string()
}

fn run(model: &Model, x: &Tensor) -> Vec<StageOutput> {
    model.run(x, &RunOptions::default()).unwrap().stages
}

/// `(key, label, [1, h, w], channels)` of every feature a model run exposes.
fn feature_shapes(model: &Model, x: &Tensor) -> Vec<(String, String, [usize; 3], usize)> {
    model
        .run(x, &RunOptions::default())
        .unwrap()
        .features
        .into_iter()
        .map(|f| (f.key, f.label, f.energy.shape(), f.channels))
        .collect()
}

/// The per-cell RMS over channels of the first item of `t` (`[N, C, h, w]`), by hand.
fn rms_over_channels(t: &Tensor) -> Vec<f32> {
    let (_, c, h, w) = t.dims4().unwrap();
    let v = flat(&t.get(0).unwrap());
    (0..h * w)
        .map(|i| {
            let s: f64 = (0..c).map(|k| f64::from(v[k * h * w + i]).powi(2)).sum();
            (s / c as f64).sqrt() as f32
        })
        .collect()
}

fn flat(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

/// Loading fails with an error naming `key` and the file, for `tensors` without `key` and
/// for `tensors` with `key` mis-shaped.
fn check_errors(dir: &Path, stem: &str, tensors: &HashMap<String, Tensor>, key: &str) {
    let mut missing = tensors.clone();
    assert!(missing.remove(key).is_some(), "{key}");
    let path = write(
        dir,
        &format!("{stem}_missing.safetensors"),
        &missing,
        "module.",
    );
    let e = Model::load(&path, &Device::Cpu).unwrap_err().to_string();
    println!("{e}");
    assert!(e.contains(key) && e.contains(&path), "{e}");

    let mut bad = tensors.clone();
    bad.insert(
        key.to_string(),
        Tensor::ones(3, DType::F32, &Device::Cpu).unwrap(),
    );
    let path = write(
        dir,
        &format!("{stem}_misshaped.safetensors"),
        &bad,
        "module.",
    );
    let e = Model::load(&path, &Device::Cpu).unwrap_err().to_string();
    println!("{e}");
    assert!(
        e.contains(key) && e.contains(&path) && e.contains("[3]"),
        "{e}"
    );
}

#[test]
fn top_down_hrnet_checkpoint_is_detected_and_loads() {
    let config = hrnet::Config::with_width(8, (64, 64));
    let x = input(64, 64);
    let (tensors, direct) = state_dict(
        |vb| {
            let net = Hrnet::load(vb, config.clone()).unwrap();
            net.forward(&x).unwrap().heatmaps
        },
        0.45,
    );
    let tmp = tempfile::tempdir().unwrap();
    let path = write(tmp.path(), "hrnet_w8.safetensors", &tensors, "module.");
    let model = Model::load(&path, &Device::Cpu).unwrap();
    assert_eq!(
        model.info().architecture,
        &posescope::models::hrnet::ARCHITECTURE
    );
    assert_eq!(model.info().id, "hrnet-w32-256x192");
    assert_eq!(model.joints().id, "coco17");
    assert_eq!(model.unused_keys(), ["extra_head.weight"]);
    let stages = run(&model, &x);
    assert_eq!(stages.len(), 1);
    assert_eq!(
        (stages[0].label.as_str(), stages[0].key.as_str()),
        ("heatmaps", "heatmaps")
    );
    let m = &stages[0].heatmaps;
    assert_eq!((m.channels(), m.height(), m.width()), (17, 16, 16));
    assert_eq!(m.as_slice(), flat(&direct).as_slice());
    // The last stage-4 module's branches, each at its own resolution (W8: 8·2^i channels).
    let features = feature_shapes(&model, &x);
    let expected = [
        ("stage4.branch1", "branch 1 (1/4)", [1, 16, 16], 8),
        ("stage4.branch2", "branch 2 (1/8)", [1, 8, 8], 16),
        ("stage4.branch3", "branch 3 (1/16)", [1, 4, 4], 32),
        ("stage4.branch4", "branch 4 (1/32)", [1, 2, 2], 64),
    ];
    assert_eq!(features.len(), expected.len());
    for (got, want) in features.iter().zip(expected) {
        assert_eq!(
            (got.0.as_str(), got.1.as_str(), got.2, got.3),
            want,
            "{got:?}"
        );
    }
    // Pipeline defaults: the official flip test and 1.25 box padding, DARK off; DARK
    // decoding runs on the whole frame too.
    let mut config_p = PipelineConfig::for_model(&model);
    assert!(config_p.topdown_flip && !config_p.dark);
    assert_eq!(config_p.crop_padding, TOPDOWN_BOX_PADDING);
    config_p.preprocess.size = (64, 64);
    config_p.dark = true;
    let frame = Frame {
        index: 0,
        timestamp: std::time::Duration::ZERO,
        image: image::RgbImage::from_fn(80, 60, |x, y| {
            image::Rgb([(x * 3) as u8, (y * 4) as u8, 120])
        }),
        path: None,
        output_stem: "synthetic".into(),
    };
    let found = Pipeline::new(model.clone(), config_p).run(frame).unwrap();
    assert_eq!(found.people.len(), 1);
    assert_eq!(found.people[0].keypoints.len(), 17);
    // Top-down on the bundled photo: one crop per detected person, the flip test's pass
    // timed as its own step, and its maps averaged into the last stage.
    let photo = image::open(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/samples/two_people.jpg"
    ))
    .unwrap()
    .to_rgb8();
    let frame = Frame {
        index: 0,
        timestamp: std::time::Duration::ZERO,
        image: photo,
        path: None,
        output_stem: "two_people".into(),
    };
    let mut td = PipelineConfig::for_model(&model);
    td.person = PersonMode::TopDown;
    let flipped = Pipeline::new(model.clone(), td.clone())
        .run(frame.clone())
        .unwrap();
    assert!(!flipped.crops.is_empty());
    assert_eq!(flipped.people.len(), flipped.crops.len());
    assert!(flipped.timings.steps.iter().any(|s| s.name == "flip test"));
    td.topdown_flip = false;
    let plain = Pipeline::new(model.clone(), td).run(frame).unwrap();
    assert!(!plain.timings.steps.iter().any(|s| s.name == "flip test"));
    assert_eq!(plain.crops, flipped.crops);
    assert_ne!(plain.stages[0].heatmaps, flipped.stages[0].heatmaps);

    // The inferred configuration is the one written.
    let shape = |k: &str| tensors.get(k).map(|t| t.dims().to_vec());
    assert_eq!(hrnet::Config::from_shapes(shape, (64, 64)).unwrap(), config);

    check_errors(
        tmp.path(),
        "hrnet",
        &tensors,
        "stage3.1.branches.2.3.conv2.weight",
    );
}

#[test]
fn simple_baseline_checkpoint_is_detected_and_loads() {
    let config = simple_baseline::Config {
        joints: 17,
        input_size: (64, 64),
        layers: [1, 1, 2, 1],
        deconv_channels: vec![16, 16],
        deconv_kernel: 4,
        final_kernel: 1,
    };
    let x = input(64, 64);
    let (tensors, direct) = state_dict(
        |vb| {
            let net = SimpleBaseline::load(vb, config.clone()).unwrap();
            net.forward(&x).unwrap().heatmaps
        },
        0.75,
    );
    let tmp = tempfile::tempdir().unwrap();
    let path = write(
        tmp.path(),
        "pose_resnet_small.safetensors",
        &tensors,
        "module.",
    );
    let model = Model::load(&path, &Device::Cpu).unwrap();
    assert_eq!(
        model.info().architecture,
        &posescope::models::simple_baseline::ARCHITECTURE
    );
    assert_eq!(model.joints().id, "coco17");
    assert_eq!(model.unused_keys(), ["extra_head.weight"]);
    let stages = run(&model, &x);
    assert_eq!(stages.len(), 1);
    assert_eq!(stages[0].label, "heatmaps");
    let m = &stages[0].heatmaps;
    assert_eq!((m.channels(), m.height(), m.width()), (17, 8, 8));
    assert_eq!(m.as_slice(), flat(&direct).as_slice());
    // The backbone's output, then each deconvolution's.
    let features = feature_shapes(&model, &x);
    let expected = [
        ("layer4", "backbone layer4 (1/32)", [1, 2, 2], 2048),
        ("deconv1", "deconv 1 (1/16)", [1, 4, 4], 16),
        ("deconv2", "deconv 2 (1/8)", [1, 8, 8], 16),
    ];
    assert_eq!(features.len(), expected.len());
    for (got, want) in features.iter().zip(expected) {
        assert_eq!(
            (got.0.as_str(), got.1.as_str(), got.2, got.3),
            want,
            "{got:?}"
        );
    }
    let shape = |k: &str| tensors.get(k).map(|t| t.dims().to_vec());
    let inferred = simple_baseline::Config::from_shapes(shape, (64, 64)).unwrap();
    assert_eq!(inferred, config);
    assert_eq!(inferred.depth(), None);
    assert_eq!(simple_baseline::Config::res101_256x192().depth(), Some(101));

    check_errors(tmp.path(), "sb", &tensors, "layer3.1.bn2.running_var");
}

#[test]
fn stacked_hourglass_checkpoint_is_detected_and_gives_one_stage_per_stack() {
    let config = stacked_hourglass::Config {
        stacks: 2,
        features: 16,
        joints: 16,
        depth: 2,
        input_size: (64, 64),
    };
    let x = input(64, 64);
    let (mut tensors, direct) = state_dict(
        |vb| {
            let net = StackedHourglass::load(vb, config.clone()).unwrap();
            Tensor::stack(&net.forward(&x).unwrap().stacks, 0).unwrap()
        },
        0.35,
    );
    // The official state dict also holds `skip_layer`s the model never applies.
    for key in [
        "hgs.0.0.up1.skip_layer.conv.weight",
        "features.1.0.skip_layer.conv.bias",
    ] {
        tensors.insert(
            key.to_string(),
            Tensor::zeros(4, DType::F32, &Device::Cpu).unwrap(),
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let path = write(
        tmp.path(),
        "checkpoint.safetensors",
        &tensors,
        "model.module.",
    );
    let model = Model::load(&path, &Device::Cpu).unwrap();
    assert_eq!(
        model.info().architecture,
        &posescope::models::stacked_hourglass::ARCHITECTURE
    );
    assert_eq!(model.info().id, "hourglass-2stack-mpii");
    assert_eq!(model.joints().id, "mpii16");
    assert_eq!(model.unused_keys(), ["extra_head.weight"]);
    let stages = run(&model, &x);
    let labels: Vec<&str> = stages.iter().map(|s| s.label.as_str()).collect();
    assert_eq!(labels, ["stack 1", "stack 2"]);
    let got: Vec<f32> = stages
        .iter()
        .flat_map(|s| s.heatmaps.as_slice().to_vec())
        .collect();
    assert_eq!(got, flat(&direct));
    let shape = |k: &str| tensors.get(k).map(|t| t.dims().to_vec());
    assert_eq!(
        stacked_hourglass::Config::from_shapes(shape, (64, 64)).unwrap(),
        config
    );

    tensors.retain(|k, _| !k.contains("skip_layer") || k.starts_with("pre."));
    check_errors(
        tmp.path(),
        "hg",
        &tensors,
        "hgs.1.0.low2.low2.conv2.conv.weight",
    );
}

#[test]
fn unipose_checkpoint_is_detected_and_exposes_its_wasp_branches() {
    // The official LSP model (ResNet-101, 14 joints + background) from posegen-v1 weights,
    // run at 96×96: WASP grids 6×6, heatmaps 12×12.
    let x = input(96, 96);
    let (mut tensors, direct) = state_dict(
        |vb| {
            let net = Unipose::load(vb, unipose::Config::lsp()).unwrap();
            let out = net.forward(&x).unwrap();
            let mut parts: Vec<Tensor> = out.aspp.to_vec();
            parts.push(out.global_pool);
            parts.push(out.heatmaps);
            Tensor::cat(
                &parts
                    .iter()
                    .map(|t| t.flatten_all().unwrap())
                    .collect::<Vec<_>>(),
                0,
            )
            .unwrap()
        },
        0.65,
    );
    // Official checkpoints also hold the decoder's never-applied conv2 / bn2.
    tensors.insert(
        "decoder.conv2.weight".into(),
        Tensor::zeros((48, 256, 1, 1), DType::F32, &Device::Cpu).unwrap(),
    );
    let tmp = tempfile::tempdir().unwrap();
    let path = write(tmp.path(), "UniPose_LSP.safetensors", &tensors, "module.");
    let model = Model::load(&path, &Device::Cpu).unwrap();
    assert_eq!(
        model.info().architecture,
        &posescope::models::unipose::ARCHITECTURE
    );
    assert_eq!(model.info().id, "unipose-lsp");
    assert_eq!(model.joints().id, "lsp14");
    assert!(model.info().licence.contains("NON-COMMERCIAL"));
    // Only the extra key is reported: `decoder.conv2` is expected to be unused.
    assert_eq!(model.unused_keys(), ["extra_head.weight"]);

    let out = model.run(&x, &RunOptions::default()).unwrap();
    let direct = flat(&direct);
    let plane = 6 * 6;
    // Heatmaps: the joints first, the background (channel 0 of the network) last.
    let m = &out.stages[0].heatmaps;
    assert_eq!(m.shape(), [15, 12, 12]);
    let heat = &direct[4 * 256 * plane + 256..];
    assert_eq!(&m.as_slice()[..14 * 144], &heat[144..]);
    assert_eq!(&m.as_slice()[14 * 144..], &heat[..144]);

    let keys: Vec<(&str, &str, [usize; 3], usize)> = out
        .features
        .iter()
        .map(|f| {
            (
                f.key.as_str(),
                f.label.as_str(),
                f.energy.shape(),
                f.channels,
            )
        })
        .collect();
    assert_eq!(
        keys,
        [
            ("wasp.aspp1", "WASP branch 1 (1×1)", [1, 6, 6], 256),
            ("wasp.aspp2", "WASP branch 2 (dilation 18)", [1, 6, 6], 256),
            ("wasp.aspp3", "WASP branch 3 (dilation 12)", [1, 6, 6], 256),
            ("wasp.aspp4", "WASP branch 4 (dilation 6)", [1, 6, 6], 256),
            (
                "wasp.global_avg_pool",
                "WASP global branch (image pooling)",
                [1, 1, 1],
                256
            ),
            ("wasp", "WASP output (fused)", [1, 6, 6], 256),
            (
                "decoder",
                "decoder output (before the classifier)",
                [1, 12, 12],
                256
            ),
        ]
    );
    // Energy = RMS over the channels, against a direct computation on the network's own
    // branch tensors.
    for b in 0..5 {
        let len = if b < 4 { 256 * plane } else { 256 };
        let t = Tensor::from_vec(
            direct[b * 256 * plane..b * 256 * plane + len].to_vec(),
            if b < 4 {
                (1, 256, 6, 6)
            } else {
                (1, 256, 1, 1)
            },
            &Device::Cpu,
        )
        .unwrap();
        let want = rms_over_channels(&t);
        let got = out.features[b].energy.as_slice();
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() <= 1e-5 * w.abs().max(1.0), "{b}: {g} vs {w}");
        }
    }
    // Receptive fields: the cascade (branch k includes branches 1..k), the global branch
    // the whole input.
    let sizes: Vec<f64> = out.features[..4]
        .iter()
        .map(|f| match f.field {
            CellField::Local(rx, ry) => {
                assert_eq!(rx, ry);
                rx.size
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(sizes, [1259.0, 1835.0, 2219.0, 2411.0]);
    assert_eq!(out.features[4].field, CellField::WholeInput);

    // Without the official file the catalogue model says plainly that no weights are there.
    let info = posescope::models::catalog::find("unipose").unwrap();
    if info.locate().is_none() {
        let e = Model::load("unipose-lsp", &Device::Cpu)
            .unwrap_err()
            .to_string();
        println!("{e}");
        assert!(
            e.contains("no trained weights are present") && e.contains("UniPose_LSP.tar"),
            "{e}"
        );
    }

    check_errors(
        tmp.path(),
        "unipose",
        &tensors,
        "wasp.aspp3.atrous_conv.weight",
    );
}

#[test]
fn cli_without_the_hrnet_weights_says_so_plainly() {
    let tmp = tempfile::tempdir().unwrap();
    let models = tmp.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    let img = image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8, y as u8, 90]));
    let input = tmp.path().join("small.png");
    img.save(&input).unwrap();
    let out = tmp.path().join("out");
    let o = Command::new(env!("CARGO_BIN_EXE_posescope"))
        .args([
            "infer",
            "--model",
            "hrnet-w32-256x192",
            "--input",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .env("POSESCOPE_MODELS", &models)
        .env("XDG_CACHE_HOME", tmp.path())
        .output()
        .unwrap();
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    println!("{e}");
    for needle in [
        "no trained weights are present",
        "hrnet-w32-256x192",
        "pose_hrnet_w32_256x192.pth",
        "--weights",
    ] {
        assert!(e.contains(needle), "missing '{needle}' in: {e}");
    }
}
