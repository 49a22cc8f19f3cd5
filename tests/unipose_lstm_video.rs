//! UniPose-LSTM on video: checkpoint detection, the state carried by `Model::run`, and the
//! pipeline resetting it at a seek. Weights are posegen-v1 (G = 0.65 for every key; the
//! values only need to be the same on both sides), inputs 96×96 (heatmaps 12×12).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use posescope::models::nets::unipose_lstm::{self, UniposeLstm};
use posescope::models::{cpm, Memory, Model, RunOptions};
use posescope::pipeline::{MemoryStatus, Pipeline, PipelineConfig, ResetReason};
use posescope::source::Frame;
use posescope::weights::posegen;

const SIDE: usize = 96;
const GAIN: f64 = 0.65;

/// Every float tensor UniPose-LSTM reads, from posegen-v1.
fn state_dict() -> HashMap<String, Tensor> {
    let (vb, recorder) = posegen::var_builder(GAIN, &Device::Cpu);
    UniposeLstm::load(vb, unipose_lstm::Config::penn_action()).unwrap();
    recorder
        .requests()
        .into_iter()
        .filter_map(|(name, shape)| {
            let t = posegen::tensor(&name, &shape, GAIN, &Device::Cpu).unwrap();
            t.dtype().is_float().then_some((name, t))
        })
        .collect()
}

/// Frame `t` of a made-up clip, `[1, 3, 96, 96]`.
fn frame(t: usize) -> Tensor {
    let v: Vec<f32> = (0..3 * SIDE * SIDE)
        .map(|i| (((i + 7 * t) * 37 % 101) as f32 / 101.0) - 0.5)
        .collect();
    Tensor::from_vec(v, (1, 3, SIDE, SIDE), &Device::Cpu).unwrap()
}

/// The checkpoint as `module.`-prefixed safetensors with an extra key and the decoder's
/// never-applied `conv2`, loaded through `Model::load` (detection by keys).
fn load_model(tensors: &HashMap<String, Tensor>, dir: &std::path::Path) -> Model {
    let mut out: HashMap<String, Tensor> = tensors
        .iter()
        .map(|(k, t)| (format!("module.{k}"), t.clone()))
        .collect();
    out.insert(
        "module.extra_head.weight".into(),
        Tensor::ones((2, 2), DType::F32, &Device::Cpu).unwrap(),
    );
    out.insert(
        "module.decoder.conv2.weight".into(),
        Tensor::zeros((48, 256, 1, 1), DType::F32, &Device::Cpu).unwrap(),
    );
    let path = dir.join("UniPose_LSTM_Penn.safetensors");
    candle_core::safetensors::save(&out, &path).unwrap();
    Model::load(path.to_str().unwrap(), &Device::Cpu).unwrap()
}

/// The direct network's heatmaps in the model's order (joints first, background last).
fn reordered(t: &Tensor) -> Vec<f32> {
    let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
    let plane = v.len() / 14;
    let mut out = v[plane..].to_vec();
    out.extend_from_slice(&v[..plane]);
    out
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn unipose_lstm_checkpoint_is_detected_and_carries_its_state() {
    let tensors = state_dict();
    let tmp = tempfile::tempdir().unwrap();
    let model = load_model(&tensors, tmp.path());
    assert_eq!(
        model.info().architecture,
        &posescope::models::unipose_lstm::ARCHITECTURE
    );
    assert_eq!(model.info().id, "unipose-lstm-penn");
    assert_eq!(model.joints().id, "penn13");
    assert!(model.info().licence.contains("NON-COMMERCIAL"));
    assert!(model.is_temporal() && model.takes_center());
    assert_eq!(model.unused_keys(), ["extra_head.weight"]);
    // A copy taken before any frame: it starts with no state.
    let fresh_model = model.clone();

    let vb = VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
    let mut direct = UniposeLstm::load(vb, unipose_lstm::Config::penn_action()).unwrap();
    let c = (SIDE as f64 - 1.0) / 2.0;
    let center =
        cpm::center_map_tensor(SIDE, SIDE, c, c, unipose_lstm::CENTER_SIGMA, &Device::Cpu).unwrap();

    let carry = RunOptions::default();
    assert_eq!(carry.memory, Memory::Carry);
    for t in 0..3 {
        let out = model.run(&frame(t), &carry).unwrap();
        let want = direct.forward(&frame(t), &center).unwrap();
        let m = &out.stages[0].heatmaps;
        assert_eq!(m.shape(), [14, 12, 12]);
        assert_eq!(
            max_diff(m.as_slice(), &reordered(&want.heatmaps)),
            0.0,
            "t={t}"
        );
        // The cell and hidden maps: 15 channels' RMS energy on the 12×12 grid.
        for (key, state) in [("lstm.cell", &want.cell), ("lstm.hidden", &want.hide)] {
            let f = out.features.iter().find(|f| f.key == key).unwrap();
            assert_eq!(f.channels, 15, "{key}");
            assert_eq!(f.energy.shape(), [1, 12, 12], "{key}");
            let rms: Vec<f32> = state
                .sqr()
                .unwrap()
                .mean_keepdim(1)
                .unwrap()
                .sqrt()
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            assert!(max_diff(f.energy.as_slice(), &rms) < 1e-5, "{key} t={t}");
        }
        // The body's WASP features are there too.
        assert!(out.features.iter().any(|f| f.key == "wasp.aspp1"));
    }

    // Reset: frame 2 as the first frame of a clip, the same as a fresh model's first frame.
    let reset = RunOptions {
        memory: Memory::Reset,
        ..RunOptions::default()
    };
    let out = model.run(&frame(2), &reset).unwrap();
    let first = direct.step(&frame(2), &center, None).unwrap();
    let fresh = fresh_model.run(&frame(2), &carry).unwrap();
    assert_eq!(
        max_diff(
            out.stages[0].heatmaps.as_slice(),
            &reordered(&first.heatmaps)
        ),
        0.0
    );
    assert_eq!(out.stages[0].heatmaps, fresh.stages[0].heatmaps);
    // ... and different from frame 2 with a carried state.
    let carried = direct.step(&frame(2), &center, direct.state()).unwrap();
    assert!(max_diff(&reordered(&carried.heatmaps), &reordered(&first.heatmaps)) > 1e-6);
}

fn video_frame(index: u64, t: usize) -> Frame {
    let v: Vec<f32> = frame(t).flatten_all().unwrap().to_vec1().unwrap();
    let plane = SIDE * SIDE;
    let image = image::RgbImage::from_fn(SIDE as u32, SIDE as u32, |x, y| {
        let i = y as usize * SIDE + x as usize;
        image::Rgb([0, 1, 2].map(|c| ((v[c * plane + i] + 0.5) * 255.0) as u8))
    });
    Frame {
        index,
        timestamp: Duration::from_millis(40 * index),
        image,
        path: Some(PathBuf::from("clip.mp4")),
        output_stem: format!("clip_{index:06}"),
    }
}

#[test]
fn pipeline_carries_the_state_and_resets_it_at_a_seek() {
    let tensors = state_dict();
    let tmp = tempfile::tempdir().unwrap();
    let model = load_model(&tensors, tmp.path());
    let mut config = PipelineConfig::for_model(&model);
    config.preprocess.size = (SIDE as u32, SIDE as u32);
    let pipeline = Pipeline::new(model.clone(), config.clone());
    let (fresh_model, base) = (model.clone(), config.clone());
    let fresh = move |f: Frame| {
        let ins = Pipeline::new(fresh_model.clone(), base.clone())
            .run(f)
            .unwrap();
        assert_eq!(ins.memory, Some(MemoryStatus::Reset(ResetReason::NewClip)));
        ins.stages[0].heatmaps.clone()
    };

    let first = pipeline.run(video_frame(0, 0)).unwrap();
    assert_eq!(
        first.memory,
        Some(MemoryStatus::Reset(ResetReason::NewClip))
    );
    // Consecutive: the state of frame 0 is carried, the maps differ from a fresh run.
    let next = pipeline.run(video_frame(1, 1)).unwrap();
    assert_eq!(next.memory, Some(MemoryStatus::Carried { frames: 1 }));
    assert_ne!(next.stages[0].heatmaps, fresh(video_frame(1, 1)));
    // A seek (frame 50 after frame 1, beyond the playback gap): reset, the same maps as a
    // fresh run.
    let seek = pipeline.run(video_frame(50, 2)).unwrap();
    assert_eq!(seek.memory, Some(MemoryStatus::Reset(ResetReason::Seek)));
    assert_eq!(seek.stages[0].heatmaps, fresh(video_frame(50, 2)));

    // Without memory every frame is a first frame.
    config.without_memory = true;
    let single = Pipeline::new(model.clone(), config.clone());
    single.run(video_frame(0, 0)).unwrap();
    let ins = single.run(video_frame(1, 1)).unwrap();
    assert_eq!(
        ins.memory,
        Some(MemoryStatus::Reset(ResetReason::WithoutMemory))
    );
    assert_eq!(ins.stages[0].heatmaps, fresh(video_frame(1, 1)));
}
