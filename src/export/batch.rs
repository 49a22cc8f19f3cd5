//! Batch export of a whole video or folder: every frame through the pipeline, rendered
//! offscreen by the same GPU compositor as the app's view, written as PNG + JSON + maps into
//! a fresh folder with the keypoints in other tools' formats ([`super::formats`]: COCO
//! results where the joint set has COCO's joints, OpenPose files, CSV), and optionally
//! encoded into an annotated video ([`super::video`]). Runs
//! on its own thread with progress and cancel; what each frame looks like is the caller's
//! [`SceneFn`] (the app passes its view settings).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::Duration;

use eframe::wgpu;

use super::formats::{coco, FormatOptions, FormatWriter, FrameRecord};
use super::video::VideoWriter;
use super::{json, maps};
use crate::inspection::Inspection;
use crate::pipeline::Pipeline;
use crate::render::compositor::Compositor;
use crate::render::offscreen::render_scene;
use crate::render::Scene;
use crate::source;

/// What a frame looks like: the scene drawn for an inspection, its RGBA image and the
/// image's cache key.
pub type SceneFn = Arc<dyn Fn(&Inspection, Arc<image::RgbaImage>, u64) -> Scene + Send + Sync>;

/// What to export.
#[derive(Clone)]
pub struct BatchRequest {
    pub input: PathBuf,
    /// A new folder is created inside this one (never reusing an existing name).
    pub out_dir: PathBuf,
    pub scene: SceneFn,
    pub maps: bool,
    pub video: bool,
}

impl std::fmt::Debug for BatchRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchRequest")
            .field("input", &self.input)
            .field("out_dir", &self.out_dir)
            .field("maps", &self.maps)
            .field("video", &self.video)
            .finish_non_exhaustive()
    }
}

/// What a finished batch wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchReport {
    pub folder: PathBuf,
    pub frames: u64,
    pub video: Option<PathBuf>,
    pub cancelled: bool,
    /// Frames that failed (the rest were written).
    pub errors: Vec<String>,
}

/// A running batch.
#[derive(Debug)]
pub struct BatchJob {
    pub done: Arc<AtomicU64>,
    pub total: Option<u64>,
    cancel: Arc<AtomicBool>,
    result: Receiver<Result<BatchReport, String>>,
}

impl BatchJob {
    /// Starts the export on a new thread.
    pub fn spawn(
        request: BatchRequest,
        pipeline: Pipeline,
        device: wgpu::Device,
        queue: wgpu::Queue,
        wake: impl Fn() + Send + 'static,
    ) -> Result<BatchJob, String> {
        let src = source::open(&request.input).map_err(|e| e.to_string())?;
        let total = src.len_hint();
        let done = Arc::new(AtomicU64::new(0));
        let cancel = Arc::new(AtomicBool::new(false));
        let (tx, result) = mpsc::channel();
        let (d, c) = (Arc::clone(&done), Arc::clone(&cancel));
        std::thread::Builder::new()
            .name("posescope-batch".into())
            .spawn(move || {
                let r = run(src, &request, &pipeline, &device, &queue, &d, &c, &wake);
                let _ = tx.send(r);
                wake();
            })
            .map_err(|e| format!("cannot start the export thread: {e}"))?;
        Ok(BatchJob {
            done,
            total,
            cancel,
            result,
        })
    }

    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    /// The outcome, once finished.
    pub fn finished(&self) -> Option<Result<BatchReport, String>> {
        self.result.try_recv().ok()
    }
}

/// A folder name inside `dir` that does not exist yet: `stem`, `stem-1`, ….
fn fresh_folder(dir: &Path, stem: &str) -> PathBuf {
    let candidate = dir.join(stem);
    if !candidate.exists() {
        return candidate;
    }
    (1..)
        .map(|i| dir.join(format!("{stem}-{i}")))
        .find(|p| !p.exists())
        .unwrap_or(candidate)
}

#[allow(clippy::too_many_arguments)]
fn run(
    mut src: Box<dyn source::FrameSource>,
    req: &BatchRequest,
    pipeline: &Pipeline,
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    done: &AtomicU64,
    cancel: &AtomicBool,
    wake: &(impl Fn() + Send),
) -> Result<BatchReport, String> {
    let stem = req
        .input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "export".into());
    let folder = fresh_folder(&req.out_dir, &format!("{stem}_posescope"));
    std::fs::create_dir_all(&folder)
        .map_err(|e| format!("cannot create '{}': {e}", folder.display()))?;
    let mut formats = batch_formats(&folder, &stem, pipeline.model().joints())?;
    let mut compositor = Compositor::new(device, queue, wgpu::TextureFormat::Rgba8Unorm)
        .map_err(|e| e.to_string())?;
    let mut report = BatchReport {
        folder: folder.clone(),
        frames: 0,
        video: None,
        cancelled: false,
        errors: Vec::new(),
    };
    // The first frame is held back until the second gives the frame rate.
    let mut pending: Option<(image::RgbaImage, Duration)> = None;
    let mut video: Option<VideoWriter> = None;
    let video_path = folder.join(format!("{stem}_annotated.mp4"));
    while let Some(item) = src.next_frame() {
        if cancel.load(Ordering::Relaxed) {
            report.cancelled = true;
            break;
        }
        let frame = match item {
            Ok(f) => f,
            Err(e) => {
                report.errors.push(e.to_string());
                if e.is_fatal() {
                    break;
                }
                continue;
            }
        };
        let ins = match pipeline.run(frame) {
            Ok(i) => i,
            Err(e) => {
                report.errors.push(e.to_string());
                continue;
            }
        };
        if let Err(e) = formats.add(&FrameRecord::from_inspection(&ins)) {
            report.errors.push(e.to_string());
        }
        let key = ins.frame.index + 1;
        let rgba = Arc::new(image::DynamicImage::ImageRgb8((*ins.image).clone()).to_rgba8());
        let scene = (req.scene)(&ins, rgba, key);
        let image =
            render_scene(device, queue, &mut compositor, &scene).map_err(|e| e.to_string())?;
        let stem = ins.frame.output_stem.clone();
        let mut png = std::io::Cursor::new(Vec::new());
        image
            .write_to(&mut png, image::ImageFormat::Png)
            .map_err(|e| format!("PNG encoding: {e}"))?;
        let path = |suffix: &str| folder.join(format!("{stem}.{suffix}"));
        let (png_path, json_path, maps_path) =
            (path("png"), path("json"), path("maps.safetensors"));
        let png = png.into_inner();
        let json = json::to_bytes(&ins);
        let maps = if req.maps {
            Some(maps::to_bytes(&ins).map_err(|e| e.to_string())?)
        } else {
            None
        };
        let mut parts: Vec<(&Path, &[u8])> = vec![(&png_path, &png), (&json_path, &json)];
        if let Some(m) = &maps {
            parts.push((&maps_path, m));
        }
        super::write_together(&parts, false).map_err(|e| e.to_string())?;
        if req.video {
            let ts = ins.frame.timestamp;
            match (&mut video, pending.take()) {
                (Some(v), _) => {
                    if let Err(e) = v.push(&image) {
                        report
                            .errors
                            .push(format!("{stem}: not added to the video: {e}"));
                    }
                }
                (None, None) => pending = Some((image, ts)),
                (None, Some((first, t0))) => {
                    let dt = ts.saturating_sub(t0).as_secs_f64();
                    let fps = if dt > 1e-3 { 1.0 / dt } else { 10.0 };
                    let mut v = VideoWriter::start(video_path.clone(), first.dimensions(), fps)?;
                    v.push(&first)?;
                    v.push(&image)?;
                    video = Some(v);
                }
            }
        }
        report.frames += 1;
        done.store(report.frames, Ordering::Relaxed);
        wake();
    }
    // The run-wide files hold every frame done, also when cancelled.
    formats.finish().map_err(|e| e.to_string())?;
    if let Some((first, _)) = pending.take() {
        let mut v = VideoWriter::start(video_path.clone(), first.dimensions(), 10.0)?;
        v.push(&first)?;
        video = Some(v);
    }
    if let Some(v) = video {
        if report.cancelled {
            v.abort();
        } else {
            report.video = Some(v.finish()?);
        }
    }
    Ok(report)
}

/// The formats written beside the per-frame files: `<stem>_coco.json` (joint sets that
/// have COCO's 17 joints; image ids from the file names, else the frame index),
/// `openpose/<frame stem>_keypoints.json`, `<stem>_keypoints.csv`.
fn batch_formats(
    folder: &Path,
    stem: &str,
    joints: &'static crate::pose::JointSet,
) -> Result<FormatWriter, String> {
    let opts = FormatOptions {
        coco: coco::to_coco17(joints)
            .is_ok()
            .then(|| folder.join(format!("{stem}_coco.json"))),
        image_ids: coco::ImageIds::FileNameOrIndex,
        openpose: Some(folder.join("openpose")),
        csv: Some(folder.join(format!("{stem}_keypoints.csv"))),
        overwrite: false,
    };
    FormatWriter::new(opts, joints).map_err(|e| e.to_string())
}

/// Runs a batch to the end on the calling thread (tests, CLI).
pub fn run_blocking(
    request: BatchRequest,
    pipeline: Pipeline,
    device: wgpu::Device,
    queue: wgpu::Queue,
) -> Result<BatchReport, String> {
    let job = BatchJob::spawn(request, pipeline, device, queue, || {})?;
    job.result
        .recv()
        .map_err(|_| "the export thread stopped unexpectedly".to_string())?
}
