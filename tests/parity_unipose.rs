//! Parity of UniPose and UniPose-LSTM with the official PyTorch code (bmartacho/UniPose @
//! bf53632) on the posegen-v1 fixtures of `fixtures/posegen-topdown` (README there): every
//! stored output and intermediate within 5e-4 · std(ref) (§4), and every `keys.txt` entry
//! (except `num_batches_tracked` and the unused `decoder.conv2` / `decoder.bn2`, §5)
//! requested exactly once with its shape.
//!
//! * UniPose LSP 368×368: `num_classes=14`, output stride 16, G = 0.65.
//! * UniPose-LSTM Penn Action, 3 frames of 368×368: `num_classes=13`; G = 0.65 for
//!   `backbone.` / `wasp.` / `decoder.` keys and 1.5 for the rest (README §1).
//!
//! The `#[ignore]`d `timing_*` tests print forward times at 368×368; run them in release
//! with `RAYON_NUM_THREADS=1 cargo test --release --test parity_unipose -- --ignored
//! --nocapture`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::parity::{check_fixture, keys_of, load, median_time};

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::VarBuilder;
use posescope::models::nets::unipose::{self, Unipose};
use posescope::models::nets::unipose_lstm::{self, UniposeLstm};
use posescope::weights::posegen::{self, PosegenBackend, Recorder};

fn fixture(shared: &Path, name: &str) -> PathBuf {
    shared.join("fixtures/posegen-topdown").join(name)
}

/// The keys the forward pass reads: all but the unused `decoder.conv2` / `decoder.bn2`.
fn used_by_unipose(key: &str) -> bool {
    !key.starts_with("decoder.conv2.") && !key.starts_with("decoder.bn2.")
}

fn used_keys(dir: &Path) -> Vec<posegen::Request> {
    keys_of(dir)
        .into_iter()
        .filter(|(k, _)| used_by_unipose(k))
        .collect()
}

fn is_body(key: &str) -> bool {
    posegen::gain_unipose_lstm(key) == posegen::GAIN_UNIPOSE_LSTM_BODY
}

/// posegen-v1 with the UniPose-LSTM prefix rule: body keys from one backend (G = 0.65),
/// head keys from another (G = 1.5), each with its own recorder.
#[derive(Clone)]
struct LstmBackend {
    body: PosegenBackend,
    head: PosegenBackend,
}

impl SimpleBackend for LstmBackend {
    fn get(
        &self,
        s: Shape,
        name: &str,
        h: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        if is_body(name) {
            self.body.get(s, name, h, dtype, dev)
        } else {
            self.head.get(s, name, h, dtype, dev)
        }
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        self.body.get_unchecked(name, dtype, dev)
    }

    fn contains_tensor(&self, _name: &str) -> bool {
        true
    }
}

fn lstm_var_builder() -> (VarBuilder<'static>, Recorder, Recorder) {
    let backend = LstmBackend {
        body: PosegenBackend::new(posegen::GAIN_UNIPOSE_LSTM_BODY),
        head: PosegenBackend::new(posegen::GAIN_UNIPOSE_LSTM_HEAD),
    };
    let (rb, rh) = (backend.body.recorder(), backend.head.recorder());
    let vb = VarBuilder::from_backend(Box::new(backend), DType::F32, Device::Cpu);
    (vb, rb, rh)
}

#[test]
fn gain_rule_matches_the_readme_vectors() {
    let first3 = |name: &str, shape: &[usize]| -> Vec<u32> {
        posegen::values(name, shape, posegen::gain_unipose_lstm(name)).unwrap()[..3]
            .iter()
            .map(|v| v.to_bits())
            .collect()
    };
    assert_eq!(
        first3("wasp.global_avg_pool.1.weight", &[256, 2048, 1, 1]),
        [0xbc360958, 0x3ceb6e40, 0xbcb760d6]
    );
    assert_eq!(
        first3("lstm.conv_fh_lstm.weight", &[15, 15, 3, 3]),
        [0xbd8b61d1, 0x3e7bead4, 0x3e280d58]
    );
    assert_eq!(
        first3("conv5.weight", &[14, 128, 1, 1]),
        [0x3e3a79c3, 0xbe72c1da, 0x3c88b24d]
    );
    let u: Vec<u32> = posegen::values(
        "wasp.conv2.weight",
        &[256, 256, 1, 1],
        posegen::GAIN_UNIPOSE,
    )
    .unwrap()[..3]
        .iter()
        .map(|v| v.to_bits())
        .collect();
    assert_eq!(u, [0x3dba8175, 0xbd8ebd92, 0xbc9161bb]);
}

#[test]
fn unipose_lsp_368_matches_the_official_code() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let dir = fixture(&shared, "unipose_lsp_368");
    let (vb, recorder) = posegen::var_builder(posegen::GAIN_UNIPOSE, &Device::Cpu);
    let net = Unipose::load(vb, unipose::Config::lsp()).unwrap();
    assert_eq!(keys_of(&dir).len(), 687);
    let keys = used_keys(&dir);
    assert_eq!(keys.len(), 687 - 6);
    let problems = recorder.mismatches(&keys);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // 114 num_batches_tracked, of which one (decoder.bn2) is among the unused six.
    assert_eq!(recorder.requests().len(), 687 - 6 - 113);

    let input = load(&dir.join("input.safetensors"));
    let (out, times) = net.forward_profiled(&input["image"]).unwrap();
    for s in &times {
        println!("  {:>8}: {:.2?}", s.name, s.time);
    }
    let mut ours: HashMap<String, Tensor> = HashMap::new();
    ours.insert("heatmaps".into(), out.heatmaps.clone());
    for (i, a) in out.aspp.iter().enumerate() {
        ours.insert(format!("wasp.aspp{}", i + 1), a.clone());
    }
    ours.insert("wasp.global_avg_pool".into(), out.global_pool.clone());
    ours.insert("wasp".into(), out.wasp.clone());
    ours.insert("decoder.maxpool".into(), out.decoder_maxpool.clone());
    let failures = check_fixture(&dir, |k| ours.get(k).cloned());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn unipose_lstm_penn_368x3_matches_the_official_code() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let dir = fixture(&shared, "unipose_lstm_penn_368x3");
    let (vb, body_rec, head_rec) = lstm_var_builder();
    let mut net = UniposeLstm::load(vb, unipose_lstm::Config::penn_action()).unwrap();
    assert_eq!(keys_of(&dir).len(), 714);
    let keys = used_keys(&dir);
    assert_eq!(keys.len(), 714 - 6);
    let (body_keys, head_keys): (Vec<_>, Vec<_>) = keys.into_iter().partition(|(k, _)| is_body(k));
    let mut problems = body_rec.mismatches(&body_keys);
    problems.extend(head_rec.mismatches(&head_keys));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // 113 num_batches_tracked, one of them (decoder.bn2) among the unused six.
    assert_eq!(
        body_rec.requests().len() + head_rec.requests().len(),
        714 - 6 - 112
    );

    let input = load(&dir.join("input.safetensors"));
    let frames = &input["frames"];
    let center = &input["center_map"];
    let mut ours: HashMap<String, Tensor> = HashMap::new();
    for t in 0..3 {
        let frame = frames.narrow(1, t, 1).unwrap().squeeze(1).unwrap();
        let (out, times) = net.forward_profiled(&frame, center).unwrap();
        assert_eq!(out.first_frame, t == 0);
        for s in &times {
            println!("  t{t} {:>8}: {:.2?}", s.name, s.time);
        }
        ours.insert(format!("heatmaps_t{t}"), out.heatmaps);
        ours.insert(format!("cell_t{t}"), out.cell);
        ours.insert(format!("hide_t{t}"), out.hide);
        ours.insert(format!("decoder_t{t}"), out.body.heatmaps);
        if t == 0 {
            ours.insert("pool_center".into(), out.pool_center);
        }
    }
    let failures = check_fixture(&dir, |k| ours.get(k).cloned());
    // A reset makes the next frame a first frame again.
    net.reset();
    assert!(net.state().is_none());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
#[ignore = "timing; run in release with RAYON_NUM_THREADS=1"]
fn timing_unipose_368() {
    let (vb, _) = posegen::var_builder(posegen::GAIN_UNIPOSE, &Device::Cpu);
    let net = Unipose::load(vb, unipose::Config::lsp()).unwrap();
    let x = Tensor::zeros((1, 3, 368, 368), DType::F32, &Device::Cpu).unwrap();
    let t = median_time(3, || {
        net.forward(&x).unwrap();
    });
    println!("UniPose LSP 368×368 forward (median of 3): {t:.2?}");
    let (_, times) = net.forward_profiled(&x).unwrap();
    for s in &times {
        println!("  {:>8}: {:.2?}", s.name, s.time);
    }
}

#[test]
#[ignore = "timing; run in release with RAYON_NUM_THREADS=1"]
fn timing_unipose_lstm_368() {
    let (vb, _, _) = lstm_var_builder();
    let mut net = UniposeLstm::load(vb, unipose_lstm::Config::penn_action()).unwrap();
    let x = Tensor::zeros((1, 3, 368, 368), DType::F32, &Device::Cpu).unwrap();
    let c = Tensor::zeros((1, 1, 368, 368), DType::F32, &Device::Cpu).unwrap();
    net.forward(&x, &c).unwrap();
    let t = median_time(3, || {
        net.forward(&x, &c).unwrap();
    });
    println!("UniPose-LSTM Penn 368×368 forward, one later frame (median of 3): {t:.2?}");
    let (_, times) = net.forward_profiled(&x, &c).unwrap();
    for s in &times {
        println!("  {:>8}: {:.2?}", s.name, s.time);
    }
}

/// The parity tests above again in a child process on the portable path (candle's own ops,
/// what CUDA and Metal run; every custom CPU kernel fails if entered), same tolerances.
#[test]
fn parity_holds_on_the_portable_path() {
    common::rerun_portable(&["_matches_the_official_code"], 2);
}
