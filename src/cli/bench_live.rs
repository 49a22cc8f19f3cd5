//! `posescope bench --input VIDEO`: the whole live pipeline on a video delivered at its frame
//! rate, as a camera would deliver it (see [`crate::pipeline::live`]).

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};

use super::BenchArgs;
use crate::pipeline::{LiveOptions, LiveRun, LiveStats, Pipeline, PipelineConfig};
use crate::source::{FrameSource, Paced, Reopen, VideoSource};

/// Run length when neither --seconds nor --max-frames is given.
const DEFAULT_SECONDS: f64 = 10.0;

pub(super) fn run(args: &BenchArgs, input: &Path) -> anyhow::Result<()> {
    if crate::source::InputKind::of(input)? != crate::source::InputKind::Video {
        bail!(
            "bench --input needs a video file; '{}' is not one",
            input.display()
        );
    }
    let video = VideoSource::open(input)?;
    let info = video.info().clone();
    let pipeline = live_pipeline(args)?;
    warm_up(&pipeline, video)?;

    let seconds = match (args.seconds, args.max_frames) {
        (Some(s), _) if !(s.is_finite() && s > 0.0) => {
            bail!("--seconds must be a positive number, got {s}")
        }
        (Some(s), _) => Some(s),
        (None, Some(_)) => None,
        (None, None) => Some(DEFAULT_SECONDS),
    };
    let path = input.to_path_buf();
    let reopen: Reopen<VideoSource> = Box::new(move || VideoSource::open(&path));
    let source = Paced::new(VideoSource::open(input)?)
        .looping(Some(reopen), seconds.map(Duration::from_secs_f64));
    let workers = if pipeline.model().is_temporal() {
        1
    } else {
        args.workers
            .map_or_else(crate::pipeline::default_workers, usize::from)
    };
    let options = LiveOptions {
        overlap: !args.serial,
        max_frames: args.max_frames,
        workers,
    };
    let box_size = pipeline.config().preprocess.size;
    let model_id = pipeline.model().id().to_string();
    let cpu0 = process_cpu_ms();
    let copies0 = crate::device::Copies::now();
    let mut run = LiveRun::start(pipeline, Box::new(source), options)?;
    let mut input_size = None;
    let mut first_error = None;
    let mut jitter = crate::pose::jitter::JitterMeter::new();
    for result in run.by_ref() {
        match result {
            Ok(r) => {
                input_size = Some(r.inspection.input_size);
                jitter.push(
                    r.inspection.frame.index,
                    crate::experiments::stability::stage_positions(&r.inspection),
                );
            }
            Err(e) => {
                tracing::warn!("{e}");
                first_error.get_or_insert(e);
            }
        }
    }
    let stats = run.finish();
    let copies = crate::device::Copies::now().since(copies0);
    // This process only (not ffmpeg): less disturbed than wall time on a shared machine.
    let cpu_ms_per_frame = match (cpu0, process_cpu_ms()) {
        (Some(a), Some(b)) if stats.processed > 0 => Some((b - a) / stats.processed as f64),
        _ => None,
    };
    if stats.processed == 0 {
        match first_error {
            Some(e) => return Err(e).context("the live run processed no frame"),
            None => bail!("the live run processed no frame"),
        }
    }
    let report = Report {
        model: &model_id,
        box_size,
        input_size: input_size.unwrap_or(box_size),
        threads: threads(args),
        source_fps: info.fps,
        source_size: (info.width, info.height),
        overlap: options.overlap && workers == 1,
        workers,
        cpu_ms_per_frame,
        copies_per_frame: CopiesPerFrame::of(copies, stats.processed as u64),
        stats: &stats,
        jitter: &jitter,
    };
    if args.json {
        println!("{}", report.json());
    } else {
        report.print();
    }
    Ok(())
}

/// The model's pipeline with its live input box, unless --size overrides it.
fn live_pipeline(args: &BenchArgs) -> anyhow::Result<Pipeline> {
    let built = super::infer::build_pipeline(&args.model)?;
    let mut config = built.config().clone();
    if args.model.size.is_none() {
        config.preprocess.size = PipelineConfig::for_live(built.model()).preprocess.size;
    }
    Ok(Pipeline::new(built.model().clone(), config))
}

/// Two runs on the video's first frame: one-time work (kernel transforms, allocations)
/// stays out of the timing.
fn warm_up(pipeline: &Pipeline, mut video: VideoSource) -> anyhow::Result<()> {
    let frame = video
        .next_frame()
        .context("the video has no frame")?
        .context("reading the video's first frame")?;
    for _ in 0..2 {
        pipeline
            .run(frame.clone())
            .context("warm-up run on the first frame")?;
    }
    Ok(())
}

/// The thread count the CPU kernels use: --threads, else RAYON_NUM_THREADS, else every CPU.
fn threads(args: &BenchArgs) -> usize {
    args.threads
        .or_else(|| std::env::var("RAYON_NUM_THREADS").ok()?.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
}

struct Report<'a> {
    model: &'a str,
    box_size: (u32, u32),
    input_size: (u32, u32),
    threads: usize,
    source_fps: Option<f64>,
    source_size: (u32, u32),
    overlap: bool,
    workers: usize,
    cpu_ms_per_frame: Option<f64>,
    copies_per_frame: CopiesPerFrame,
    stats: &'a LiveStats,
    /// Per-stage jitter of the joints' peaks over the processed frames.
    jitter: &'a crate::pose::jitter::JitterMeter,
}

/// Host↔device copies per processed frame (see [`crate::device::Copies`]): what a frame
/// moves between the host and the device on a GPU (on the CPU, the same copies in memory).
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub(super) struct CopiesPerFrame {
    pub uploads: f64,
    pub downloads: f64,
    pub bytes: f64,
}

impl CopiesPerFrame {
    pub(super) fn of(c: crate::device::Copies, frames: u64) -> Self {
        let n = frames.max(1) as f64;
        Self {
            uploads: c.uploads as f64 / n,
            downloads: c.downloads as f64 / n,
            bytes: c.bytes as f64 / n,
        }
    }
}

impl Report<'_> {
    fn json(&self) -> serde_json::Value {
        let s = self.stats;
        serde_json::json!({
            "mode": "live",
            "model": self.model,
            "size": [self.box_size.0, self.box_size.1],
            "input_size": [self.input_size.0, self.input_size.1],
            "threads": self.threads,
            "overlap": self.overlap,
            "workers": self.workers,
            "source_fps": self.source_fps,
            "source_size": [self.source_size.0, self.source_size.1],
            "fps": s.fps,
            "latency_median_ms": s.latency_median_ms,
            "latency_p90_ms": s.latency_p90_ms,
            "delivered": s.delivered,
            "processed": s.processed,
            "dropped": s.dropped,
            "errors": s.errors,
            "wall_s": s.wall_s,
            "cpu_ms_per_frame": self.cpu_ms_per_frame,
            "copies_per_frame": self.copies_per_frame,
            "stages": s.stages,
            "jitter_px_per_stage": self.jitter.per_stage(),
            "jitter_triples": self.jitter.triples(),
        })
    }

    fn print(&self) {
        let s = self.stats;
        let fps = self
            .source_fps
            .map_or_else(|| "unknown".to_string(), |f| format!("{f:.2}"));
        println!(
            "live: model {} at {}x{} (input {}x{}), threads {}, {} worker(s), {} preparation; video {}x{} at {fps} fps",
            self.model,
            self.box_size.0,
            self.box_size.1,
            self.input_size.0,
            self.input_size.1,
            self.threads,
            self.workers,
            if self.overlap { "overlapped" } else { "serial" },
            self.source_size.0,
            self.source_size.1,
        );
        println!(
            "{:.1} frames/s processed over {:.1} s; latency median {:.1} ms, p90 {:.1} ms",
            s.fps, s.wall_s, s.latency_median_ms, s.latency_p90_ms
        );
        println!(
            "frames: {} delivered, {} processed, {} dropped, {} failed",
            s.delivered, s.processed, s.dropped, s.errors
        );
        if let Some(cpu) = self.cpu_ms_per_frame {
            println!("process CPU time: {cpu:.1} ms per processed frame (ffmpeg not included)");
        }
        let c = self.copies_per_frame;
        println!(
            "host<->device copies per frame: {:.2} uploads, {:.2} downloads, {:.0} bytes",
            c.uploads, c.downloads, c.bytes
        );
        for stage in &s.stages {
            println!("  {:<12} median {:.1} ms", stage.name, stage.median_ms);
        }
        let jitter: Vec<String> = self
            .jitter
            .per_stage()
            .iter()
            .enumerate()
            .map(|(t, j)| match j {
                Some(v) => format!("stage {} {v:.2}", t + 1),
                None => format!("stage {} -", t + 1),
            })
            .collect();
        println!(
            "jitter (px, each joint's peak vs the line through its neighbours, {} frame triples): {}",
            self.jitter.triples(),
            jitter.join(", ")
        );
    }
}

/// The process's CPU time so far, milliseconds (all threads), where the OS reports it.
pub(super) fn process_cpu_ms() -> Option<f64> {
    let now = cpu_time::ProcessTime::try_now().ok()?;
    Some(now.as_duration().as_secs_f64() * 1e3)
}
