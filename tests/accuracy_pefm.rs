#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Accuracy of the real mobile CPM (`pefm-cpm`) on real annotated data: PCK@0.2 per stage on
//! the 500 LSP-extended development images (whole image, squashed to 192×192 as the
//! original benchmark does; no crop), PEFM joints mapped to LSP by name, torso = right
//! shoulder to left hip, visible joints only.

mod common;

use std::path::Path;

use posescope::models::Model;
use posescope::pipeline::{Pipeline, PipelineConfig};
use posescope::pose::metrics::{distance, joint_mapping, PckCounts};
use posescope::pose::single;
use posescope::pose::skeleton::LSP14;
use posescope::source::Frame;

fn frame(path: &Path) -> Frame {
    Frame {
        index: 0,
        timestamp: std::time::Duration::ZERO,
        image: image::open(path).unwrap().to_rgb8(),
        path: Some(path.to_path_buf()),
        output_stem: path.file_stem().unwrap().to_string_lossy().into_owned(),
    }
}

#[test]
fn pefm_cpm_pck_per_stage_on_lspet_dev() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    std::env::set_var("POSESCOPE_MODELS", shared.join("models"));
    let model = Model::load("pefm-cpm", &candle_core::Device::Cpu).unwrap();
    let config = PipelineConfig::for_model(&model);
    let pipeline = Pipeline::new(model, config);
    let root = shared.join("data/lspet_dev");
    let ann: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("annotations.json")).unwrap()).unwrap();
    let images = ann["images"].as_array().unwrap();
    let to_lsp = joint_mapping(pipeline.model().joints(), &LSP14);
    let (r_sho, l_hip) = (
        LSP14.index_of("right_shoulder").unwrap(),
        LSP14.index_of("left_hip").unwrap(),
    );
    let mut per_stage: Vec<PckCounts> = Vec::new();
    let mut skipped = 0;
    for img in images {
        let file = root.join("images").join(img["file_name"].as_str().unwrap());
        let gt: Vec<(f64, f64, bool)> = img["joints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| {
                (
                    j[0].as_f64().unwrap(),
                    j[1].as_f64().unwrap(),
                    j[2].as_f64().unwrap() > 0.5,
                )
            })
            .collect();
        let torso = distance(gt[r_sho], gt[l_hip]);
        let ins = pipeline.run(frame(&file)).unwrap();
        if per_stage.is_empty() {
            per_stage = vec![PckCounts::new(LSP14.len()); ins.stages.len()];
        }
        for (t, stage) in ins.stages.iter().enumerate() {
            let person = single::decode(&stage.heatmaps, ins.joints.len())
                .transformed(&ins.stage_to_image(t));
            let pred: Vec<Option<(f64, f64)>> = to_lsp
                .iter()
                .map(|m| {
                    m.and_then(|j| person.keypoints[j])
                        .map(|k| (f64::from(k.x), f64::from(k.y)))
                })
                .collect();
            if !per_stage[t].add(&pred, &gt, torso, 0.2) && t == 0 {
                skipped += 1;
            }
        }
    }
    println!(
        "pefm-cpm on lspet_dev: {} images ({skipped} without a torso skipped)",
        images.len()
    );
    for (t, c) in per_stage.iter().enumerate() {
        let joints: Vec<String> = (0..LSP14.len())
            .map(|j| format!("{}={:.3}", LSP14.joints[j], c.joint(j).unwrap_or(f64::NAN)))
            .collect();
        println!(
            "stage {}: PCK@0.2 {:.4} ({} joints) | {}",
            t + 1,
            c.overall().unwrap(),
            c.total.iter().sum::<u64>(),
            joints.join(" ")
        );
    }
    assert_eq!(per_stage.len(), 6);
    let last = per_stage[5].overall().unwrap();
    let first = per_stage[0].overall().unwrap();
    // Measured 0.340 at stage 6 (0.320 at stage 1): LSPET is parkour and gymnastics, often
    // upside down, and this tiny model was trained on upright AI Challenger people. A wrong
    // joint order or coordinate mapping drops it to a few percent.
    assert!(last > 0.30, "final-stage PCK@0.2 {last:.3}");
    assert!(
        last >= first - 0.02,
        "stage 6 {last:.3} vs stage 1 {first:.3}"
    );
}
