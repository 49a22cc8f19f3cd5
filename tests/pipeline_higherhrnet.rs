//! HigherHRNet through the pipeline: the official test-time procedure (resolutions
//! aggregated, flip test, aspect-preserving input), the maps file, the JSON, and live
//! regrouping. The network is the reduced W8 of the parity fixtures with its real `.pth`
//! (posegen weights: this checks the plumbing, not accuracy).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use posescope::models::{Decoding, Model};
use posescope::pipeline::{self, Pipeline, PipelineConfig};
use posescope::pose::aggregate;
use posescope::source::Frame;

fn setup() -> Option<(Model, Frame)> {
    let shared = common::shared_dir()?;
    let pth = shared.join("fixtures/posegen/higherhrnet_w8_pth/weights.pth");
    let model = Model::load(pth.to_str().unwrap(), &candle_core::Device::Cpu).unwrap();
    let path = shared.join("data/images/basketball1.png");
    let image = image::open(&path).unwrap().to_rgb8();
    let frame = Frame {
        index: 0,
        timestamp: Duration::ZERO,
        image,
        path: Some(path),
        output_stem: "basketball1".into(),
    };
    Some((model, frame))
}

fn config(model: &Model, flip: bool) -> PipelineConfig {
    let mut c = PipelineConfig::for_model(model);
    c.preprocess.size = (128, 128);
    c.ae.flip = flip;
    c
}

#[test]
fn resolutions_are_aggregated_as_the_official_test() {
    let Some((model, frame)) = setup() else {
        return;
    };
    assert_eq!(model.info().decoding, Decoding::AssociativeEmbedding);
    assert_eq!(model.joints().len(), 17);
    let (w, h) = frame.image.dimensions();
    let ins = Pipeline::new(model.clone(), config(&model, false))
        .run(frame.clone())
        .unwrap();
    let keys: Vec<&str> = ins.stages.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(keys, ["res0", "res1", "aggregated"]);
    // Short side 128, long side rounded up to a multiple of 64.
    let long = ((128.0 * f64::from(w.max(h)) / f64::from(w.min(h)) + 63.0) / 64.0).floor() * 64.0;
    let expect = if w >= h {
        (long as u32, 128)
    } else {
        (128, long as u32)
    };
    assert_eq!(ins.input_size, expect, "image {w}×{h}");
    let (iw, ih) = (expect.0 as usize, expect.1 as usize);
    let [res0, res1, agg] = &ins.stages[..] else {
        panic!("three stages");
    };
    assert_eq!(res0.heatmaps.shape(), [17, ih / 4, iw / 4]);
    assert_eq!(res0.tags.as_ref().unwrap().shape(), [17, ih / 4, iw / 4]);
    assert_eq!(res1.heatmaps.shape(), [17, ih / 2, iw / 2]);
    assert!(res1.tags.is_none());
    assert_eq!(agg.heatmaps.shape(), [17, ih, iw]);
    assert_eq!(agg.tags.as_ref().unwrap().shape(), [17, ih, iw], "one pass");
    // aggregated = project((upsample(res0) + res1) / 2), as get_multi_stage_outputs.
    let up = aggregate::resize_bilinear(&res0.heatmaps, iw / 2, ih / 2).unwrap();
    let half = aggregate::average(&[up, res1.heatmaps.clone()]).unwrap();
    let want = aggregate::resize_bilinear(&half, iw, ih).unwrap();
    let (max_abs, _) = common::compare(agg.heatmaps.as_slice(), want.as_slice());
    println!("aggregated vs recomputed: max-abs {max_abs:.2e}");
    assert!(max_abs < 1e-5);
    // The grid spans the input: the aggregated map's pixel centre 0 is the input's.
    let a = ins.stage_to_image(2).apply(0.0, 0.0);
    let b = ins.image_from_input.apply(0.0, 0.0);
    assert!((a.0 - b.0).abs() < 1e-9 && (a.1 - b.1).abs() < 1e-9);
}

#[test]
fn flip_test_averages_the_mirrored_pass_and_stacks_its_tags() {
    let Some((model, frame)) = setup() else {
        return;
    };
    let plain = Pipeline::new(model.clone(), config(&model, false))
        .run(frame.clone())
        .unwrap();
    let flipped = Pipeline::new(model.clone(), config(&model, true))
        .run(frame.clone())
        .unwrap();
    let (p, f) = (&plain.stages[2], &flipped.stages[2]);
    let tags = f.tags.as_ref().unwrap();
    assert_eq!(tags.channels(), 34, "two tag dimensions with flip test");
    // The first tag dimension is the unflipped pass's.
    let (max_abs, _) = common::compare(
        &tags.as_slice()[..p.tags.as_ref().unwrap().as_slice().len()],
        p.tags.as_ref().unwrap().as_slice(),
    );
    assert!(max_abs < 1e-5, "unflipped tags {max_abs}");
    // Heatmaps: (plain + mirrored pass mapped back) / 2; the mirrored pass differs from
    // the plain one (untrained weights are not symmetric), so the average must move.
    let (d, _) = common::compare(f.heatmaps.as_slice(), p.heatmaps.as_slice());
    println!("flip-test heatmaps vs plain: max-abs {d:.3}");
    assert!(d > 1e-3, "the flip pass must contribute ({d})");
    assert_eq!(
        pipeline::flip_index(model.joints()),
        aggregate::COCO17_FLIP_INDEX.to_vec()
    );
}

#[test]
fn maps_file_json_and_live_regrouping() {
    let Some((model, frame)) = setup() else {
        return;
    };
    let mut ins = Pipeline::new(model.clone(), config(&model, true))
        .run(frame.clone())
        .unwrap();
    let bytes = posescope::export::maps::to_bytes(&ins).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = st.names().into_iter().map(String::from).collect();
    names.sort();
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
    // Features at their own resolution ([1, h, w], the shown pass's input / 32 for the
    // last branch), listed in the metadata with their labels and channel counts.
    let b4 = st.tensor("features.stage4.branch4").unwrap();
    let res0 = &ins.stages[0].heatmaps;
    assert_eq!(b4.shape(), [1, res0.height() / 8, res0.width() / 8]);
    let (_, md) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let listed: serde_json::Value =
        serde_json::from_str(&md.metadata().clone().unwrap()["features"]).unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), ins.features.len());
    assert_eq!(listed[0]["key"], "stage4.branch1");
    assert_eq!(listed[0]["channels"], ins.features[0].channels);
    assert_eq!(listed[0]["label"], ins.features[0].label.as_str());
    let json = posescope::export::json::to_json(&ins);
    assert_eq!(json["grouping"]["tag_threshold"], 1.0);
    assert_eq!(json["people"].as_array().unwrap().len(), ins.people.len());
    let ae = ins.grouping.clone().unwrap();
    assert_eq!(ae.stage, 2);
    assert!(!ae.grouping.candidates.is_empty());
    // Keypoints are image pixels, inside the region the input covers (the frame plus the
    // padding to a multiple of 64; untrained weights may well put joints there).
    let (iw, ih) = (f64::from(ins.input_size.0), f64::from(ins.input_size.1));
    let lo = ins.image_from_input.apply(-0.5, -0.5);
    let hi = ins.image_from_input.apply(iw - 0.5, ih - 0.5);
    let step = ins.image_from_input.apply(1.0, 0.0).0 - ins.image_from_input.apply(0.0, 0.0).0;
    let (w, h) = frame.image.dimensions();
    // The official centre `int(w/2 + 0.5)` is half a pixel off the true centre, so the
    // region may miss up to a couple of border pixels at the far side.
    println!("input covers {lo:?}..{hi:?} of {w}×{h}");
    assert!(lo.0 <= 0.0 && lo.1 <= 0.0);
    assert!(hi.0 >= f64::from(w) - 3.0 && hi.1 >= f64::from(h) - 3.0);
    let mut count = 0;
    for p in &ins.people {
        for k in p.keypoints.iter().flatten() {
            let (x, y) = (f64::from(k.x), f64::from(k.y));
            assert!(
                x >= lo.0 - step && y >= lo.1 - step && x <= hi.0 + step && y <= hi.1 + step,
                "keypoint ({x}, {y}) outside the input region {lo:?}..{hi:?}"
            );
            count += 1;
        }
    }
    assert!(count > 0, "no keypoints");
    // A tiny tag threshold splits every candidate into its own person (up to the joints'
    // first-joint seeding); a huge one merges them into at most max_num_people.
    let mut strict = ae.params.clone();
    strict.tag_threshold = 1e-9;
    strict.refine = false;
    pipeline::regroup(&mut ins, &strict).unwrap();
    let split = ins.people.len();
    let candidates = ins.grouping.as_ref().unwrap().grouping.candidates.len();
    let mut loose = strict.clone();
    loose.tag_threshold = 1e9;
    pipeline::regroup(&mut ins, &loose).unwrap();
    let merged = ins.people.len();
    println!("{candidates} candidates: {split} people (strict) vs {merged} (loose)");
    assert!(merged <= loose.max_num_people);
    assert!(split > merged, "strict {split} vs loose {merged}");
    assert_eq!(ins.grouping.as_ref().unwrap().params, loose);
    // Back to the original parameters: the same people as the network run gave.
    let again = Pipeline::new(model.clone(), config(&model, true))
        .run(frame)
        .unwrap();
    pipeline::regroup(&mut ins, &ae.params).unwrap();
    assert_eq!(ins.people, again.people);
}
