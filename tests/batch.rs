//! Batch export of a video: every frame rendered by the GPU compositor (lavapipe here) and
//! written with its JSON and maps, plus an annotated MP4; cancel stops it.

#![cfg(feature = "gui")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use eframe::wgpu;
use posescope::models::Model;
use posescope::pipeline::{Pipeline, PipelineConfig};
use posescope::render::offscreen::headless_device;
use posescope::ui::batch::{run_blocking, BatchRequest};
use posescope::ui::settings::Settings;

/// The headless GPU, or `None` (skipped, said) outside CI; under CI a missing one fails.
fn device() -> Option<(wgpu::Device, wgpu::Queue)> {
    match headless_device() {
        Ok(d) => Some(d),
        Err(e) if std::env::var_os("CI").is_none() => {
            eprintln!("SKIPPED: no GPU adapter: {e}");
            None
        }
        Err(e) => panic!("no GPU adapter under CI: {e}"),
    }
}

/// A batch export of a shared video with the default model at a small input size, into a
/// temporary folder (kept alive by `out`).
struct Setup {
    device: wgpu::Device,
    queue: wgpu::Queue,
    model: Model,
    config: PipelineConfig,
    request: BatchRequest,
    out: tempfile::TempDir,
}

impl Setup {
    fn new(video: &str, size: (u32, u32)) -> Option<Setup> {
        let shared = common::shared_dir()?;
        let (device, queue) = device()?;
        let model = Model::load("openpose-mobilenet-thin", &candle_core::Device::Cpu).unwrap();
        let mut config = PipelineConfig::for_model(&model);
        config.preprocess.size = size;
        let out = tempfile::tempdir().unwrap();
        let request = BatchRequest {
            input: shared.join("data/videos").join(video),
            out_dir: out.path().to_path_buf(),
            stage: 5,
            joint: None,
            settings: Settings::default(),
            maps: true,
            video: true,
        };
        Some(Setup {
            device,
            queue,
            model,
            config,
            request,
            out,
        })
    }
}

#[test]
fn a_video_exports_every_frame_and_an_annotated_mp4() {
    let Some(setup) = Setup::new("mmpose_demo.mp4", (192, 112)) else {
        return;
    };
    let Setup {
        device,
        queue,
        model,
        config,
        request,
        out: _out,
    } = setup;
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

/// Cancelled mid-way, an export leaves only complete frames (PNG, JSON and maps each) and no
/// temporary file, and no half-encoded video.
#[test]
fn a_cancelled_export_leaves_only_complete_frames() {
    // 205 frames: far more than are done before the cancel.
    let Some(setup) = Setup::new("street_crowd.mp4", (128, 72)) else {
        return;
    };
    let Setup {
        device,
        queue,
        model,
        config,
        request,
        out: _out,
    } = setup;
    let job =
        posescope::ui::batch::spawn(request, Pipeline::new(model, config), device, queue, || {})
            .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while job.done.load(std::sync::atomic::Ordering::Relaxed) < 3 {
        assert!(std::time::Instant::now() < deadline, "no frames exported");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    job.cancel();
    let report = loop {
        if let Some(r) = job.finished() {
            break r.unwrap();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the cancel did not stop it"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    assert!(report.cancelled, "{report:?}");
    assert!(report.frames >= 3 && report.frames < 205, "{report:?}");
    assert_eq!(report.video, None);
    let all: Vec<String> = std::fs::read_dir(&report.folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    println!("cancelled after {} frames: {all:?}", report.frames);
    // The run-wide files of what was exported (COCO, CSV, OpenPose folder), and the frames.
    for run_wide in [
        "street_crowd_coco.json",
        "street_crowd_keypoints.csv",
        "openpose",
    ] {
        assert!(
            all.iter().any(|n| n == run_wide),
            "{run_wide} missing: {all:?}"
        );
    }
    let names: Vec<String> = all
        .iter()
        .filter(|n| n.starts_with("street_crowd_0"))
        .cloned()
        .collect();
    assert_eq!(names.len() as u64, 3 * report.frames, "{all:?}");
    let openpose = std::fs::read_dir(report.folder.join("openpose"))
        .unwrap()
        .count() as u64;
    assert_eq!(openpose, report.frames);
    for i in 0..report.frames {
        for ext in ["png", "json", "maps.safetensors"] {
            let n = format!("street_crowd_{i:06}.{ext}");
            assert!(names.contains(&n), "{n} missing: {names:?}");
        }
        let json = std::fs::read(report.folder.join(format!("street_crowd_{i:06}.json"))).unwrap();
        serde_json::from_slice::<serde_json::Value>(&json).unwrap();
    }
    assert!(
        !all.iter()
            .any(|n| n.ends_with(".part") || n.ends_with(".mp4")),
        "{all:?}"
    );
}
