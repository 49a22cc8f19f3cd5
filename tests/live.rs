//! The live runner on the real default model: frames the network has no time for are
//! dropped, results only move forward in the stream, latency is measured, and a stop
//! handle ends the run; the preparation done ahead changes no result.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::thread;
use std::time::{Duration, Instant};

use posescope::models::Model;
use posescope::pipeline::{LiveOptions, LiveRun, Pipeline, PipelineConfig, Worker};
use posescope::source::{Frame, FrameSource, SourceError};

/// `count` frames (`None`: endless) of the bundled photo, one every `every`, as fast as a
/// camera far quicker than the network.
struct Burst {
    image: image::RgbImage,
    next: u64,
    count: Option<u64>,
    every: Duration,
}

impl Burst {
    fn new(count: Option<u64>, every: Duration) -> Self {
        let image = image::load_from_memory(posescope::SAMPLE_IMAGE)
            .unwrap()
            .resize_exact(160, 120, image::imageops::FilterType::Triangle)
            .to_rgb8();
        Self {
            image,
            next: 0,
            count,
            every,
        }
    }
}

impl FrameSource for Burst {
    fn next_frame(&mut self) -> Option<Result<Frame, SourceError>> {
        if self.count.is_some_and(|n| self.next >= n) {
            return None;
        }
        thread::sleep(self.every);
        let index = self.next;
        self.next += 1;
        Some(Ok(Frame {
            index,
            timestamp: self.every * index as u32,
            image: self.image.clone(),
            path: None,
            output_stem: format!("burst_{index:06}"),
        }))
    }
    fn len_hint(&self) -> Option<u64> {
        self.count
    }
    fn describe(&self) -> String {
        "burst".into()
    }
}

fn pipeline() -> Pipeline {
    let model = Model::load("openpose-mobilenet-thin", &candle_core::Device::Cpu).unwrap();
    let mut config = PipelineConfig::for_model(&model);
    config.preprocess.size = (96, 72);
    Pipeline::new(model, config)
}

#[test]
fn slow_inference_drops_frames_and_results_only_move_forward() {
    for workers in [1, 2] {
        slow_inference_drops_frames(workers);
    }
}

fn slow_inference_drops_frames(workers: usize) {
    let source = Burst::new(Some(150), Duration::from_millis(1));
    let options = LiveOptions {
        workers,
        ..LiveOptions::default()
    };
    let mut run = LiveRun::start(pipeline(), Box::new(source), options).unwrap();
    let mut indices = Vec::new();
    for r in run.by_ref() {
        let r = r.unwrap();
        assert!(r.latency > Duration::ZERO);
        assert!(r.latency >= r.inspection.timings.forward);
        indices.push(r.inspection.frame.index);
    }
    let stats = run.finish();
    assert!(!indices.is_empty());
    assert!(
        indices.windows(2).all(|w| w[0] < w[1]),
        "an older frame came after a newer one: {indices:?}"
    );
    // The source's last frame is never dropped: nothing newer replaces it.
    assert_eq!(indices.last(), Some(&149));
    assert_eq!(stats.delivered, 150);
    assert_eq!(stats.processed, indices.len() as u64);
    assert!(stats.dropped > 0, "{stats:?}");
    assert_eq!(
        stats.processed + stats.dropped + stats.errors,
        150,
        "{stats:?}"
    );
    assert!(stats.latency_median_ms > 0.0 && stats.latency_p90_ms >= stats.latency_median_ms);
    assert!(stats.fps > 0.0);
    let names: Vec<&str> = stats.stages.iter().map(|s| s.name).collect();
    assert_eq!(
        names,
        [
            "capture wait",
            "prepare",
            "ready wait",
            "forward",
            "grouping"
        ]
    );
}

#[test]
fn a_stop_handle_ends_an_endless_run() {
    for (overlap, workers) in [(true, 1), (false, 1), (true, 2)] {
        let source = Burst::new(None, Duration::from_millis(3));
        let options = LiveOptions {
            overlap,
            max_frames: None,
            workers,
        };
        let mut run = LiveRun::start(pipeline(), Box::new(source), options).unwrap();
        let stop = run.stop_handle();
        let mut seen = 0;
        let t0 = Instant::now();
        for r in run.by_ref() {
            r.unwrap();
            seen += 1;
            if seen == 3 {
                stop.stop();
            }
            assert!(
                t0.elapsed() < Duration::from_secs(120),
                "the run did not stop"
            );
        }
        // At most the frame in progress is reported after the stop.
        assert!(
            (3..=4).contains(&seen),
            "{seen} results ({workers} workers)"
        );
        let stats = run.finish();
        assert!(stop.is_stopped());
        assert_eq!(stats.processed, seen);
        assert!(stats.delivered >= seen);
    }
}

#[test]
fn max_frames_ends_the_run() {
    for workers in [1, 2] {
        let source = Burst::new(None, Duration::from_millis(2));
        let options = LiveOptions {
            overlap: true,
            max_frames: Some(2),
            workers,
        };
        let run = LiveRun::start(pipeline(), Box::new(source), options).unwrap();
        let results: Vec<_> = run.map(|r| r.unwrap().into_parts()).collect();
        assert_eq!(results.len(), 2, "{workers} workers");
        let (frame, inspection) = results.last().unwrap();
        assert_eq!(frame.index, inspection.frame.index);
        assert_eq!(frame.image.dimensions(), (160, 120));
    }
}

#[test]
fn preparing_ahead_changes_no_result() {
    let p = pipeline();
    let frame = Frame {
        index: 0,
        timestamp: Duration::ZERO,
        image: image::load_from_memory(posescope::SAMPLE_IMAGE)
            .unwrap()
            .to_rgb8(),
        path: None,
        output_stem: "two_people".into(),
    };
    assert!(p.runs_whole_frame());
    let ahead = p.prepare_whole(&frame).unwrap();
    assert!(ahead.is_some());
    let a = p.run(frame.clone()).unwrap();
    let b = p.run_ahead(frame, ahead).unwrap();
    assert_eq!(a.input_size, b.input_size);
    assert_eq!(a.people, b.people);
    let (ma, mb) = (
        &a.stages.last().unwrap().heatmaps,
        &b.stages.last().unwrap().heatmaps,
    );
    assert_eq!(ma, mb);
}

/// The app's worker with two inference threads: every result it delivers is newer than the
/// one before (in submission order), each equals what one thread computes for that frame,
/// and every submitted frame is either delivered or counted as dropped.
#[test]
fn a_parallel_worker_delivers_in_order_and_changes_no_result() {
    let p = pipeline();
    let mut burst = Burst::new(Some(40), Duration::ZERO);
    let frames: Vec<Frame> = std::iter::from_fn(|| burst.next_frame())
        .map(Result::unwrap)
        .collect();
    let worker = Worker::spawn_parallel(p.clone(), 2);
    assert_eq!(worker.threads(), 2);
    let submitter = worker.submitter();
    for f in &frames {
        submitter.submit(f.clone());
        thread::sleep(Duration::from_millis(2));
    }
    let results: Vec<_> = {
        let mut got = Vec::new();
        let t0 = Instant::now();
        // The last submitted frame is never dropped: wait for it.
        while got
            .last()
            .map(|i: &posescope::inspection::Inspection| i.frame.index)
            != Some(39)
        {
            if let Ok(r) = worker.results().recv_timeout(Duration::from_millis(100)) {
                got.push(r.unwrap());
            }
            assert!(
                t0.elapsed() < Duration::from_secs(120),
                "no result for the last frame"
            );
        }
        got
    };
    let indices: Vec<u64> = results.iter().map(|i| i.frame.index).collect();
    assert!(
        indices.windows(2).all(|w| w[0] < w[1]),
        "out of order: {indices:?}"
    );
    // A frame still running when the last one was delivered is counted once it ends.
    let t0 = Instant::now();
    while indices.len() as u64 + worker.dropped() < 40 && t0.elapsed() < Duration::from_secs(30) {
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(indices.len() as u64 + worker.dropped(), 40, "{indices:?}");
    assert!(
        worker.results().try_recv().is_err(),
        "a result after the last frame's"
    );
    // Same maps as one thread on the same frame.
    let one = p.run(frames[39].clone()).unwrap();
    let last = results.last().unwrap();
    assert_eq!(one.people, last.people);
    assert_eq!(
        one.stages.last().unwrap().heatmaps,
        last.stages.last().unwrap().heatmaps
    );
}
