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
