//! HigherHRNet checkpoints through `Model`: the W8 fixture under official names, the same
//! tensors written by the test as MMPose checkpoints (a `{"meta", "state_dict"}` `.pth` with
//! `backbone.` / `keypoint_head.` names, and a safetensors file), `--weights` on the CLI,
//! and clear errors for missing weights, missing or mis-shaped tensors and broken files.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::io::{Cursor, Write};
use std::path::Path;
use std::process::Command;

use candle_core::{Device, Tensor};
use posescope::models::{Model, RunOptions, StageOutput};

const REL_TOLERANCE: f32 = 5e-4;

/// The W8 fixture's official-name tensors (float only), by name.
fn w8_tensors(dir: &Path) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(dir.join("weights.safetensors"), &Device::Cpu)
        .unwrap()
        .into_iter()
        .filter(|(_, t)| t.dtype().is_float())
        .collect()
}

/// The MMPose name of an official HigherHRNet key.
fn mmpose_name(official: &str) -> String {
    if official.starts_with("final_layers.") || official.starts_with("deconv_layers.") {
        format!("keypoint_head.{official}")
    } else {
        format!("backbone.{official}")
    }
}

// ---------------------------------------------------------------------------------------
// A minimal torch.save writer: pickle protocol 2 in a stored zip, one FloatStorage per
// contiguous f32 tensor, as mmcv's `save_checkpoint` lays out `{"meta": …, "state_dict": …}`.

struct Pickle(Vec<u8>);

impl Pickle {
    fn string(&mut self, s: &str) {
        self.0.push(b'X');
        self.0.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.0.extend_from_slice(s.as_bytes());
    }
    fn int(&mut self, v: u32) {
        self.0.push(b'J');
        self.0.extend_from_slice(&(v as i32).to_le_bytes());
    }
    fn global(&mut self, module: &str, name: &str) {
        self.0.push(b'c');
        self.0
            .extend_from_slice(format!("{module}\n{name}\n").as_bytes());
    }
    fn tuple(&mut self, vs: &[usize]) {
        self.0.push(b'(');
        for &v in vs {
            self.int(v as u32);
        }
        self.0.push(b't');
    }
    fn ordered_dict(&mut self) {
        self.global("collections", "OrderedDict");
        self.0.extend_from_slice(b")R");
    }
    fn tensor(&mut self, key: usize, dims: &[usize]) {
        let numel: usize = dims.iter().product();
        let mut strides = vec![1usize; dims.len()];
        for i in (0..dims.len().saturating_sub(1)).rev() {
            strides[i] = strides[i + 1] * dims[i + 1];
        }
        self.global("torch._utils", "_rebuild_tensor_v2");
        self.0.push(b'(');
        self.0.push(b'(');
        self.string("storage");
        self.global("torch", "FloatStorage");
        self.string(&key.to_string());
        self.string("cpu");
        self.int(numel as u32);
        self.0.extend_from_slice(b"tQ"); // tuple, BINPERSID
        self.int(0);
        self.tuple(dims);
        self.tuple(&strides);
        self.0.push(0x89); // requires_grad = False
        self.ordered_dict(); // backward hooks
        self.0.extend_from_slice(b"tR");
    }
}

/// `{"meta": {"epoch": 300, "mmpose_version": "0.x"}, "state_dict": OrderedDict(tensors)}`
/// as a PyTorch zip checkpoint.
fn mmcv_checkpoint(tensors: &[(String, Tensor)]) -> Vec<u8> {
    let mut p = Pickle(vec![0x80, 0x02]);
    p.0.extend_from_slice(b"}(");
    p.string("meta");
    p.0.extend_from_slice(b"}(");
    p.string("epoch");
    p.int(300);
    p.string("mmpose_version");
    p.string("0.x");
    p.0.push(b'u');
    p.string("state_dict");
    p.ordered_dict();
    p.0.push(b'(');
    for (i, (name, t)) in tensors.iter().enumerate() {
        p.string(name);
        p.tensor(i, t.dims());
    }
    p.0.extend_from_slice(b"uu.");

    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    w.start_file("archive/data.pkl", opts).unwrap();
    w.write_all(&p.0).unwrap();
    w.start_file("archive/byteorder", opts).unwrap();
    w.write_all(b"little").unwrap();
    for (i, (_, t)) in tensors.iter().enumerate() {
        w.start_file(format!("archive/data/{i}"), opts).unwrap();
        let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        w.write_all(&bytes).unwrap();
    }
    w.start_file("archive/version", opts).unwrap();
    w.write_all(b"3\n").unwrap();
    w.finish().unwrap().into_inner()
}

fn run(model: &Model, input: &Tensor) -> Vec<StageOutput> {
    model.run(input, &RunOptions::default()).unwrap().stages
}

fn within(name: &str, got: &[f32], want: &[f32]) {
    let (max_abs, rel_rms) = common::compare(got, want);
    let n = want.len() as f64;
    let mean = want.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let std = (want
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / n)
        .sqrt();
    let tol = REL_TOLERANCE * std as f32;
    println!("{name}: max-abs {max_abs:.3e} (limit {tol:.3e}), rms/std {rel_rms:.3e}");
    assert!(max_abs <= tol, "{name}: {max_abs} > {tol}");
}

fn channels(t: &Tensor, start: usize, len: usize) -> Vec<f32> {
    t.get(0)
        .unwrap()
        .narrow(0, start, len)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

#[test]
fn mmpose_checkpoints_load_and_give_the_official_outputs() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let dir = shared.join("fixtures/posegen/higherhrnet_w8_pth");
    let dev = Device::Cpu;
    let input = candle_core::safetensors::load(dir.join("input.safetensors"), &dev).unwrap();
    let input = &input["input"];
    let outputs = candle_core::safetensors::load(dir.join("outputs.safetensors"), &dev).unwrap();

    // The official-name checkpoint, detected as HigherHRNet by its keys.
    let official = Model::load(dir.join("weights.pth").to_str().unwrap(), &dev).unwrap();
    assert_eq!(
        official.info().architecture,
        &posescope::models::higher_hrnet::ARCHITECTURE
    );
    assert_eq!(official.joints().id, "coco17");
    let reference = run(&official, input);
    let keys: Vec<(&str, &str)> = reference
        .iter()
        .map(|s| (s.key.as_str(), s.label.as_str()))
        .collect();
    assert_eq!(
        keys,
        [
            ("res0", "1/4 resolution (output_0)"),
            ("res1", "1/2 resolution (output_1)")
        ]
    );
    // Model::run hands out output_0 split into heatmaps and tags, and output_1.
    let (res0, res1) = (&reference[0], &reference[1]);
    assert_eq!((res0.heatmaps.channels(), res0.heatmaps.height()), (17, 32));
    let tags = res0.tags.as_ref().expect("res0 tags");
    assert_eq!((tags.channels(), tags.width()), (17, 32));
    assert!(res1.tags.is_none() && res1.pafs.is_none());
    assert_eq!((res1.heatmaps.channels(), res1.heatmaps.width()), (17, 64));
    let out0 = &outputs["output_0"];
    within(
        "res0.heatmaps",
        res0.heatmaps.as_slice(),
        &channels(out0, 0, 17),
    );
    within("res0.tags", tags.as_slice(), &channels(out0, 17, 17));
    within(
        "res1.heatmaps",
        res1.heatmaps.as_slice(),
        &channels(&outputs["output_1"], 0, 17),
    );

    // The same tensors under MMPose's names, as a .pth with meta/state_dict and as a
    // safetensors file.
    let mut renamed: Vec<(String, Tensor)> = w8_tensors(&dir)
        .into_iter()
        .map(|(k, t)| (mmpose_name(&k), t))
        .collect();
    renamed.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(renamed
        .iter()
        .any(|(k, _)| k == "keypoint_head.deconv_layers.0.0.0.weight"));
    let tmp = tempfile::tempdir().unwrap();
    let pth = tmp.path().join("higher_hrnet8_coco_128x128.pth");
    std::fs::write(&pth, mmcv_checkpoint(&renamed)).unwrap();
    let st = tmp.path().join("higher_hrnet8_mmpose.safetensors");
    let map: HashMap<String, Tensor> = renamed.iter().cloned().collect();
    candle_core::safetensors::save(&map, &st).unwrap();

    for path in [&pth, &st] {
        let model = Model::load(path.to_str().unwrap(), &dev).unwrap();
        assert_eq!(
            model.info().architecture,
            &posescope::models::higher_hrnet::ARCHITECTURE
        );
        assert_eq!(run(&model, input), reference, "{}", path.display());
    }
    let model = Model::load_with_weights("higherhrnet-w32-512", &pth, &dev).unwrap();
    assert_eq!(model.id(), "higherhrnet-w32-512");
    assert_eq!(run(&model, input), reference);
}

#[test]
fn missing_or_misshaped_tensors_and_broken_files_are_named_in_the_error() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let dir = shared.join("fixtures/posegen/higherhrnet_w8_pth");
    let dev = Device::Cpu;
    let tmp = tempfile::tempdir().unwrap();
    let base = w8_tensors(&dir);

    let missing_key = "stage3.1.branches.2.3.conv2.weight";
    let mut missing = base.clone();
    missing.remove(missing_key);
    let missing_path = tmp.path().join("missing.safetensors");
    candle_core::safetensors::save(&missing, &missing_path).unwrap();

    let bad_key = "deconv_layers.0.2.0.bn1.running_var";
    let mut misshaped = base.clone();
    misshaped.insert(
        bad_key.to_string(),
        Tensor::ones(9, candle_core::DType::F32, &dev).unwrap(),
    );
    let misshaped_path = tmp.path().join("misshaped.safetensors");
    candle_core::safetensors::save(&misshaped, &misshaped_path).unwrap();

    // The same under MMPose names: the error names the tensor (official name) and the file.
    let mm: HashMap<String, Tensor> = missing
        .iter()
        .map(|(k, t)| (mmpose_name(k), t.clone()))
        .collect();
    let mm_path = tmp.path().join("mm_missing.safetensors");
    candle_core::safetensors::save(&mm, &mm_path).unwrap();

    for (path, key) in [
        (&missing_path, missing_key),
        (&misshaped_path, bad_key),
        (&mm_path, missing_key),
    ] {
        let p = path.to_str().unwrap();
        let e = Model::load(p, &dev).unwrap_err().to_string();
        println!("{e}");
        assert!(e.contains(key) && e.contains(p), "{e}");
        let e = Model::load_with_weights("higherhrnet-w48-640", path, &dev)
            .unwrap_err()
            .to_string();
        assert!(e.contains(key) && e.contains(p), "{e}");
    }
    let e = Model::load(mm_path.to_str().unwrap(), &dev)
        .unwrap_err()
        .to_string();
    assert!(e.contains("MMPose") && e.contains("backbone."), "{e}");
    let e = Model::load(misshaped_path.to_str().unwrap(), &dev)
        .unwrap_err()
        .to_string();
    assert!(e.contains("[9]") && e.contains("[8]"), "{e}");

    // Truncated: half of the real .pth.
    let bytes = std::fs::read(dir.join("weights.pth")).unwrap();
    let truncated = tmp.path().join("truncated.pth");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let e = Model::load_with_weights("higherhrnet-w32-512", &truncated, &dev)
        .unwrap_err()
        .to_string();
    assert!(e.contains(truncated.to_str().unwrap()), "{e}");
    // A checkpoint of something else entirely.
    let other = tmp.path().join("other.safetensors");
    let t = Tensor::ones((2, 2), candle_core::DType::F32, &dev).unwrap();
    candle_core::safetensors::save(&HashMap::from([("fc.weight".to_string(), t)]), &other).unwrap();
    let e = Model::load_with_weights("higherhrnet-w32-512", &other, &dev)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("other.safetensors") && e.contains("layer1.0.conv1.weight"),
        "{e}"
    );
}

fn posescope(args: &[&str], models: &Path, cache: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_posescope"))
        .args(args)
        .env("POSESCOPE_MODELS", models)
        .env("XDG_CACHE_HOME", cache)
        .output()
        .expect("run posescope")
}

fn small_image(dir: &Path) -> std::path::PathBuf {
    let img = image::RgbImage::from_fn(96, 80, |x, y| {
        image::Rgb([(x * 2) as u8, (y * 3) as u8, 90])
    });
    let path = dir.join("small.png");
    img.save(&path).unwrap();
    path
}

#[test]
fn cli_without_the_weights_file_says_how_to_supply_it() {
    let tmp = tempfile::tempdir().unwrap();
    let models = tmp.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    let input = small_image(tmp.path());
    let out = tmp.path().join("out");
    let o = posescope(
        &[
            "infer",
            "--model",
            "higherhrnet-w32-512-official",
            "--input",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &models,
        tmp.path(),
    );
    assert!(!o.status.success());
    let e = String::from_utf8_lossy(&o.stderr);
    println!("{e}");
    for needle in [
        "no trained weights are present",
        "higherhrnet-w32-512-official",
        "pose_higher_hrnet_w32_512.pth",
        "--weights",
        "Open weights",
        "POSESCOPE_MODELS",
    ] {
        assert!(e.contains(needle), "missing '{needle}' in: {e}");
    }
    assert!(!out.exists() || std::fs::read_dir(&out).unwrap().next().is_none());
}

#[test]
fn cli_weights_option_runs_a_higherhrnet_checkpoint() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let weights = shared.join("fixtures/posegen/higherhrnet_w8_pth/weights.safetensors");
    let tmp = tempfile::tempdir().unwrap();
    let input = small_image(tmp.path());
    let out = tmp.path().join("out");
    let o = posescope(
        &[
            "infer",
            "--model",
            "higherhrnet-w32-512",
            "--weights",
            weights.to_str().unwrap(),
            "--size",
            "128x128",
            "--input",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &tmp.path().join("none"),
        tmp.path(),
    );
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{e}");
    let maps = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(|f| f.ok())
        .map(|f| f.path())
        .find(|p| p.to_string_lossy().ends_with(".maps.safetensors"))
        .expect("a maps file");
    let t = candle_core::safetensors::load(&maps, &Device::Cpu).unwrap();
    let mut names: Vec<&str> = t.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "aggregated.heatmaps",
            "aggregated.tags",
            "features.deconv",
            "features.stage4.branch1",
            "features.stage4.branch2",
            "features.stage4.branch3",
            "features.stage4.branch4",
            "res0.heatmaps",
            "res0.tags",
            "res1.heatmaps"
        ]
    );
}
