#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Accuracy of the real mobile CPM (`pefm-cpm`) on real annotated data, through the
//! evaluation library: PCK@0.2 per stage on all 500 LSP-extended development images
//! (whole image, squashed to 192×192 as the original benchmark does; no crop), PEFM joints
//! mapped to LSP by name, torso = right shoulder to left hip with both ends annotated,
//! annotated joints only (MMPose's `keypoint_pck_accuracy`: distance / torso < 0.2, mean
//! over joints).

mod common;

use std::ops::ControlFlow;

use posescope::eval::{self, EvalConfig, Metric, PersonInput};

#[test]
fn pefm_cpm_pck_per_stage_on_lspet_dev() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    std::env::set_var("POSESCOPE_MODELS", shared.join("models"));
    let data = shared.join("data/lspet_dev");
    let mut config = EvalConfig::new(
        "pefm-cpm",
        &data.join("annotations.json"),
        &data.join("images"),
    );
    config.metric = Metric::Pck;
    config.person = PersonInput::Whole;
    let report = eval::run(&config, &mut |_| ControlFlow::Continue(())).unwrap();
    println!(
        "pefm-cpm on lspet_dev: {} images, {} people ({} without an annotated torso skipped), {} joints",
        report.counts.images, report.counts.people, report.counts.people_skipped, report.counts.joints
    );
    let stages: Vec<f64> = report.stages.iter().map(|s| s.value.unwrap()).collect();
    for (t, s) in report.stages.iter().enumerate() {
        println!(
            "stage {}: PCK@0.2 {:.4} (pooled {:.4})",
            t + 1,
            stages[t],
            s.pooled.unwrap_or(f64::NAN)
        );
    }
    let joints: Vec<String> = report
        .per_joint
        .iter()
        .map(|j| format!("{}={:.3}", j.joint, j.value.unwrap_or(f64::NAN)))
        .collect();
    println!("final stage per joint: {}", joints.join(" "));
    assert_eq!(report.counts.images, 500);
    assert_eq!(stages.len(), 6);
    let (first, last) = (stages[0], stages[5]);
    // Measured 0.280 at stage 6 (0.261 at stage 1): LSPET is parkour and gymnastics, often
    // upside down, and this tiny model was trained on upright AI Challenger people. A wrong
    // joint order or coordinate mapping drops it to a few percent.
    assert!(last > 0.25, "final-stage PCK@0.2 {last:.3}");
    assert!(
        last >= first - 0.02,
        "stage 6 {last:.3} vs stage 1 {first:.3}"
    );
}
