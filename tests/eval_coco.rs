#![allow(clippy::unwrap_used, clippy::expect_used)]
//! COCO keypoint AP/AR against pycocotools: three small synthetic cases (several images with
//! ids out of order, several people, unlabelled and occluded keypoints, a crowd region, an
//! annotation without keypoints, small/medium/large people, duplicate detections, false
//! positives, an image without detections, one with more than 20, tied scores) and the ten
//! `COCOeval.stats` pycocotools gives for them (`scripts/coco_eval_reference.py`, run once
//! at development time; the numbers are committed in `tests/data/eval/coco_expected.json`).

mod common;

use std::path::PathBuf;

use posescope::eval::coco::{self, CocoStats};
use posescope::eval::datasets;

fn data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/eval")
}

#[test]
fn keypoint_ap_matches_pycocotools() {
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data().join("coco_expected.json")).unwrap()).unwrap();
    let cases = expected["cases"].as_object().unwrap();
    assert_eq!(cases.len(), 3);
    for (name, case) in cases {
        let gt = datasets::read(&data().join(format!("coco_{name}_gt.json"))).unwrap();
        let results =
            datasets::read_coco_results(&data().join(format!("coco_{name}_dt.json"))).unwrap();
        assert_eq!(results.len() as u64, case["detections"].as_u64().unwrap());
        assert_eq!(gt.people() as u64, case["annotations"].as_u64().unwrap());
        let images = gt.coco_images(results).unwrap();
        let got = coco::evaluate(&images, &coco::coco_sigmas());
        let want = &case["stats"];
        let keys = STAT_KEYS;
        println!("case {name}:");
        for (k, g) in keys.iter().zip(got.to_array()) {
            let w = want[k].as_f64().unwrap();
            println!(
                "  {k:<10} rust {g:.17} pycocotools {w:.17} diff {:.1e}",
                g - w
            );
            assert!((g - w).abs() <= 1e-9, "case {name} {k}: {g} vs {w}");
        }
    }
}

#[test]
fn results_for_unknown_images_are_an_error() {
    let gt = datasets::read(&data().join("coco_a_gt.json")).unwrap();
    let det = coco::Detection::from_triples(&[1.0; 51], 0.5);
    let e = gt.coco_images(vec![(123_456, det)]).unwrap_err();
    assert!(e.to_string().contains("123456"), "{e}");
    assert!(e.to_string().contains("coco_a_gt.json"), "{e}");
    // Stats of the right shape even with no detections at all.
    let s: CocoStats = coco::evaluate(&gt.coco_images(Vec::new()).unwrap(), &coco::coco_sigmas());
    assert_eq!(s.ap, 0.0);
    assert_eq!(s.ar, 0.0);
}

/// Real predictions (the default model's `posescope eval --predictions` on the COCO and
/// OCHuman images of `../shared`: crowds and overlapping people, 25 and 15 joints not
/// predicted, medium and large people) scored as pycocotools scores the same file (plain
/// `loadRes`; `scripts/coco_eval_reference.py --check`, numbers committed beside them).
#[test]
fn real_predictions_with_missing_joints_score_as_pycocotools() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    for name in ["coco", "ochuman"] {
        let gt_path = shared.join(format!("data/mmpose_testdata/{name}/test_{name}.json"));
        let gt = datasets::read(&gt_path).unwrap();
        let results =
            datasets::read_coco_results(&data().join(format!("real_{name}_dt.json"))).unwrap();
        let expected: serde_json::Value = serde_json::from_slice(
            &std::fs::read(data().join(format!("real_{name}_expected.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(
            results.len() as u64,
            expected["detections"].as_u64().unwrap()
        );
        let got = coco::evaluate(&gt.coco_images(results).unwrap(), &coco::coco_sigmas());
        let want = &expected["stats"];
        for (k, g) in STAT_KEYS.iter().zip(got.to_array()) {
            let w = want[k].as_f64().unwrap();
            println!("{name} {k:<10} rust {g:.17} pycocotools {w:.17}");
            assert!((g - w).abs() <= 1e-12, "{name} {k}: {g} vs {w}");
        }
    }
}

const STAT_KEYS: [&str; 10] = [
    "ap",
    "ap50",
    "ap75",
    "ap_medium",
    "ap_large",
    "ar",
    "ar50",
    "ar75",
    "ar_medium",
    "ar_large",
];
