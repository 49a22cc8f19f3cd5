//! Batch export of a video: every frame rendered by the GPU compositor (lavapipe here) and
//! written with its JSON and maps, plus an annotated MP4; cancel stops it.

#![cfg(feature = "gui")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use posescope::models::Model;
use posescope::pipeline::{Pipeline, PipelineConfig};
use posescope::render::offscreen::headless_device;
use posescope::ui::batch::{run_blocking, BatchRequest};
use posescope::ui::settings::Settings;

#[test]
fn a_video_exports_every_frame_and_an_annotated_mp4() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let (device, queue) = match headless_device() {
        Ok(d) => d,
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("SKIPPED: no GPU adapter: {e}");
            return;
        }
        Err(e) => panic!("no GPU adapter under CI: {e}"),
    };
    let model = Model::load("openpose-mobilenet-thin", &candle_core::Device::Cpu).unwrap();
    let mut config = PipelineConfig::for_model(&model);
    config.preprocess.size = (192, 112);
    let out = tempfile::tempdir().unwrap();
    let request = BatchRequest {
        input: shared.join("data/videos/mmpose_demo.mp4"),
        out_dir: out.path().to_path_buf(),
        stage: 5,
        joint: None,
        settings: Settings::default(),
        maps: true,
        video: true,
    };
    let report = run_blocking(
        request.clone(),
        Pipeline::new(model.clone(), config.clone()),
        device.clone(),
        queue.clone(),
    )
    .unwrap();
    assert_eq!(report.frames, 5, "{report:?}");
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let mut names: Vec<String> = std::fs::read_dir(&report.folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    // 5 × (PNG, JSON, maps), the video, and the formats: COCO, CSV, the OpenPose folder.
    assert_eq!(names.len(), 19, "{names:?}");
    assert!(names.contains(&"mmpose_demo_000004.png".to_string()));
    for f in [
        "mmpose_demo_coco.json",
        "mmpose_demo_keypoints.csv",
        "openpose",
    ] {
        assert!(names.contains(&f.to_string()), "{f}: {names:?}");
    }
    assert_eq!(
        std::fs::read_dir(report.folder.join("openpose"))
            .unwrap()
            .count(),
        5
    );
    let csv = std::fs::read_to_string(report.folder.join("mmpose_demo_keypoints.csv")).unwrap();
    assert!(csv.starts_with("frame,time,person,joint,x,y,score\n"));
    let coco: serde_json::Value = serde_json::from_slice(
        &std::fs::read(report.folder.join("mmpose_demo_coco.json")).unwrap(),
    )
    .unwrap();
    // Video frames: the image id is the frame index.
    assert!(coco
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["image_id"].as_u64().unwrap() < 5));
    let png = image::open(report.folder.join("mmpose_demo_000000.png")).unwrap();
    assert_eq!((png.width(), png.height()), (960, 540));
    // The annotated video has every frame.
    let video = report.video.clone().unwrap();
    let probe = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args([
            "-show_entries",
            "stream=nb_read_frames,width,height",
            "-of",
            "csv=p=0",
        ])
        .arg(&video)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&probe.stdout);
    assert_eq!(text.trim(), "960,540,5", "{text}");
    // A second export never reuses the folder.
    let again = run_blocking(request, Pipeline::new(model, config), device, queue).unwrap();
    assert_ne!(again.folder, report.folder);
}
