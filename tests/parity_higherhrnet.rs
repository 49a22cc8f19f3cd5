//! Parity of the HigherHRNet port with the official PyTorch code
//! (HRNet/HigherHRNet-Human-Pose-Estimation @ aa23881, `pose_higher_hrnet.py`) on the
//! posegen-v1 fixtures (G = 0.45): outputs and every stored intermediate within
//! 5e-4 · std(ref) (fixture README §4), the W32 / W48 parameter lists against their
//! `keys.txt`, and the stored W8 checkpoint (`weights.pth`, `weights.safetensors`) loaded
//! through the real checkpoint readers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::parity::{check, header, keys_of, load};

use std::collections::HashMap;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use posescope::models::nets::higher_hrnet::{Config, HigherHrnet, HigherHrnetOutputs};
use posescope::weights::{self, posegen, varbuilder};

/// Every fixture tensor of `outputs` and `inter` against the matching output.
fn check_all(
    out: &HigherHrnetOutputs,
    outputs: &HashMap<String, Tensor>,
    inter: &HashMap<String, Tensor>,
) -> Vec<String> {
    header();
    let ours = |key: &str| -> Option<&Tensor> {
        let list = |v: &'static str, l: &'_ [Tensor]| -> Option<usize> {
            key.strip_prefix(v)
                .and_then(|r| r.strip_prefix('['))
                .and_then(|r| r.strip_suffix(']'))
                .and_then(|i| i.parse().ok())
                .filter(|&i: &usize| i < l.len())
        };
        match key {
            "output_0" => Some(&out.output_0),
            "output_1" => Some(&out.output_1),
            "bn2" => Some(&out.bn2),
            "layer1" => Some(&out.layer1),
            "deconv_layers.0.0" => Some(&out.deconv_upsampled),
            "deconv_layers.0" => Some(&out.deconv),
            k if k.starts_with("stage2[") => list("stage2", &out.stage2).map(|i| &out.stage2[i]),
            k if k.starts_with("stage3[") => list("stage3", &out.stage3).map(|i| &out.stage3[i]),
            k if k.starts_with("stage4[") => list("stage4", &out.stage4).map(|i| &out.stage4[i]),
            _ => None,
        }
    };
    let mut failures = Vec::new();
    let mut keys: Vec<&String> = outputs.keys().chain(inter.keys()).collect();
    keys.sort();
    for key in keys {
        let reference = outputs.get(key).or_else(|| inter.get(key)).unwrap();
        match ours(key) {
            Some(t) => failures.extend(check(key, t, reference)),
            None => failures.push(format!("{key}: no matching output")),
        }
    }
    failures
}

#[test]
fn w32_matches_the_official_code_on_outputs_and_intermediates() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let dir = shared.join("fixtures/posegen/higherhrnet_w32_256");
    let dev = Device::Cpu;
    let (vb, recorder) = posegen::var_builder(posegen::GAIN_HIGHERHRNET, &dev);
    let net = HigherHrnet::load(vb, Config::w32()).unwrap();
    let problems = recorder.mismatches(&keys_of(&dir));
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    let input = load(&dir.join("input.safetensors"));
    let t0 = Instant::now();
    let (out, times) = net.forward_profiled(&input["input"]).unwrap();
    println!("W32 256×256 forward: {:.2?}", t0.elapsed());
    for s in &times {
        println!("  {:>10}: {:.2?}", s.name, s.time);
    }
    let failures = check_all(
        &out,
        &load(&dir.join("outputs.safetensors")),
        &load(&dir.join("intermediates.safetensors")),
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn w32_512_and_w48_640_request_every_official_key_once_with_its_shape() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    for (folder, config) in [
        ("higherhrnet_w32_512_keys", Config::w32()),
        ("higherhrnet_w48_640_keys", Config::w48()),
    ] {
        let dir = shared.join("fixtures/posegen").join(folder);
        let keys = keys_of(&dir);
        assert_eq!(keys.len(), 1810, "{folder}");
        let (vb, recorder) = posegen::var_builder(posegen::GAIN_HIGHERHRNET, &Device::Cpu);
        HigherHrnet::load(vb, config.clone()).unwrap();
        let problems = recorder.mismatches(&keys);
        assert!(problems.is_empty(), "{folder}:\n{}", problems.join("\n"));
        assert_eq!(recorder.requests().len(), 1810 - 301, "{folder}");
        // The shapes alone give back the configuration.
        let shapes: HashMap<String, Vec<usize>> = keys.into_iter().collect();
        assert_eq!(
            Config::from_shapes(|k| shapes.get(k).cloned()).unwrap(),
            config,
            "{folder}"
        );
    }
}

#[test]
fn w8_matches_on_posegen_weights_and_on_its_pth_and_safetensors_checkpoints() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let dir = shared.join("fixtures/posegen/higherhrnet_w8_pth");
    let dev = Device::Cpu;
    let input = load(&dir.join("input.safetensors"));
    let outputs = load(&dir.join("outputs.safetensors"));
    let inter = load(&dir.join("intermediates.safetensors"));

    println!("## W8, posegen-v1 weights");
    let (vb, recorder) = posegen::var_builder(posegen::GAIN_HIGHERHRNET, &dev);
    let net = HigherHrnet::load(vb, Config::with_width(8)).unwrap();
    let problems = recorder.mismatches(&keys_of(&dir));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let reference = net.forward(&input["input"]).unwrap();
    let mut failures = check_all(&reference, &outputs, &inter);

    for file in ["weights.pth", "weights.safetensors"] {
        println!("## W8, {file}");
        let store = weights::load_checkpoint(&dir.join(file), &dev).unwrap();
        // Every float tensor; num_batches_tracked (int64) is skipped by the reader.
        assert_eq!(store.len(), 1810 - 301, "{file}");
        // The stored weights are posegen-v1 bit for bit.
        let mut differing = Vec::new();
        for name in store.names() {
            let t = store.get_any(name).unwrap();
            let want = posegen::values(name, t.dims(), posegen::GAIN_HIGHERHRNET).unwrap();
            let got: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
            if got
                .iter()
                .zip(&want)
                .any(|(a, b)| a.to_bits() != b.to_bits())
            {
                differing.push(name.to_string());
            }
        }
        assert!(
            differing.is_empty(),
            "{file}: not posegen-v1: {differing:?}"
        );
        let config =
            Config::from_shapes(|k| store.get_any(k).ok().map(|t| t.dims().to_vec())).unwrap();
        assert_eq!(config, Config::with_width(8), "{file}");
        let (vb, usage) = varbuilder::var_builder(store, DType::F32, &dev);
        let net = HigherHrnet::load(vb, config).unwrap();
        assert_eq!(usage.unused_keys(), Vec::<String>::new(), "{file}");
        let out = net.forward(&input["input"]).unwrap();
        failures.extend(check_all(&out, &outputs, &inter));
        // Same weights, same code: the same numbers as the posegen build.
        for (a, b) in [
            (&out.output_0, &reference.output_0),
            (&out.output_1, &reference.output_1),
        ] {
            let d = (a - b).unwrap().abs().unwrap().max_all().unwrap();
            assert_eq!(d.to_scalar::<f32>().unwrap(), 0.0, "{file}");
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Writes HigherHRNet-W32 posegen-v1 weights under the official names to
/// `$POSESCOPE_POSEGEN_OUT` (default: `higherhrnet_w32_posegen.safetensors` in the temp
/// directory), the input of the forward-pass benchmark, which is the `bench` command:
///
/// ```text
/// cargo build --release --no-default-features
/// RAYON_NUM_THREADS=1 target/release/posescope bench --model higherhrnet-w32-512 \
///     --weights FILE --size 512x512 --resize stretch --threads 1 --runs 5
/// ```
#[test]
#[ignore = "writes a 115 MB weights file for benchmarking; run by hand"]
fn write_w32_posegen_checkpoint_for_the_benchmark() {
    let path = std::env::var_os("POSESCOPE_POSEGEN_OUT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("higherhrnet_w32_posegen.safetensors"));
    let dev = Device::Cpu;
    let (vb, recorder) = posegen::var_builder(posegen::GAIN_HIGHERHRNET, &dev);
    HigherHrnet::load(vb, Config::w32()).unwrap();
    let tensors: HashMap<String, Tensor> = recorder
        .requests()
        .into_iter()
        .map(|(name, shape)| {
            let t = posegen::tensor(&name, &shape, posegen::GAIN_HIGHERHRNET, &dev).unwrap();
            (name, t)
        })
        .collect();
    assert_eq!(tensors.len(), 1810 - 301);
    candle_core::safetensors::save(&tensors, &path).unwrap();
    println!("wrote {}", path.display());
}

/// The parity tests above again in a child process on the portable path (candle's own ops,
/// what CUDA and Metal run; every custom CPU kernel fails if entered), same tolerances.
#[test]
fn parity_holds_on_the_portable_path() {
    common::rerun_portable(&["w32_matches", "w8_matches"], 2);
}
