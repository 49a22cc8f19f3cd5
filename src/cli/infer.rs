//! `posescope infer`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};

use std::ops::Range;
use std::path::{Path, PathBuf};

use super::{InferArgs, MergeCocoArgs};
use crate::export::atomic::write_atomic;
use crate::export::formats::{coco, coco::ImageIds, FormatOptions, FormatWriter, FrameRecord};
use crate::export::resume::Resume;
use crate::export::{self, ExportError, ExportOptions, FrameFiles, PngOptions};
use crate::inspection::Inspection;
use crate::pipeline::{Pipeline, PipelineConfig};
use crate::shard::{FrameSpan, Shard};
use crate::source::{self, FrameSource};

/// Loads the model named in `args` on its device and builds the pipeline.
pub(super) fn build_pipeline(args: &super::ModelArgs) -> anyhow::Result<Pipeline> {
    let spec: crate::device::DeviceSpec = args.device.parse()?;
    let device = spec.open()?;
    if args.portable {
        crate::kernels::force_portable(true);
    }
    let model = match &args.weights {
        Some(weights) => crate::models::Model::load_with_weights(&args.model, weights, &device)
            .with_context(|| {
                format!(
                    "loading model '{}' with weights '{}'",
                    args.model,
                    weights.display()
                )
            })?,
        None => crate::models::Model::load(&args.model, &device)
            .with_context(|| format!("loading model '{}'", args.model))?,
    };
    let unused = model.unused_keys();
    if !unused.is_empty() {
        let shown: Vec<&str> = unused.iter().take(8).map(String::as_str).collect();
        tracing::warn!(
            "{} checkpoint tensor(s) not used by model '{}': {}{}",
            unused.len(),
            model.id(),
            shown.join(", "),
            if unused.len() > shown.len() {
                ", …"
            } else {
                ""
            }
        );
    }
    let mut config = PipelineConfig::for_model(&model);
    if let Some(size) = args.size {
        config.preprocess.size = size;
    }
    if let Some(mode) = args.resize {
        config.preprocess.mode = mode;
    }
    if let Some(filter) = args.filter {
        config.preprocess.filter = filter;
    }
    config.person = args.person;
    config.center = args.center;
    Ok(Pipeline::new(model, config))
}

/// What one run goes through.
enum Plan {
    /// One source, or frames `range` of it (`None`: all its frames).
    One(Box<dyn FrameSource>, Option<Range<u64>>),
    /// Videos of a folder of videos (this part's), each whole or its `--frames`.
    Videos(Vec<PathBuf>),
}

/// Opens the input and works out which of its frames this run takes (`--shard`,
/// `--frames`).
fn plan(args: &InferArgs, live: bool, shard: Option<Shard>) -> anyhow::Result<Plan> {
    if live {
        if shard.is_some() || args.frames.is_some() || args.resume {
            bail!("--shard, --frames and --resume need a file or folder input, not a camera");
        }
        return Ok(Plan::One(source::open_input(&args.input)?, None));
    }
    let src: Box<dyn FrameSource> = if args.input.is_dir() {
        match source::FolderSource::open(&args.input) {
            Ok(folder) => Box::new(folder),
            Err(e @ source::SourceError::EmptyFolder { .. }) => {
                let videos = source::list_videos(&args.input)?;
                if videos.is_empty() {
                    bail!(
                        "{e}, nor videos (looked for {})",
                        source::VIDEO_EXTENSIONS.join(", ")
                    );
                }
                let n = videos.len() as u64;
                let part = shard.map_or(0..n, |s| s.range(n));
                if let Some(s) = shard {
                    tracing::info!(
                        "part {s}: videos {}..{} of the {n} in '{}' (counted from 0)",
                        part.start,
                        part.end,
                        args.input.display()
                    );
                }
                let (a, b) = (usize::try_from(part.start)?, usize::try_from(part.end)?);
                return Ok(Plan::Videos(videos.get(a..b).unwrap_or_default().to_vec()));
            }
            Err(e) => return Err(e.into()),
        }
    } else {
        source::open_input(&args.input)?
    };
    if shard.is_none() && args.frames.is_none() {
        return Ok(Plan::One(src, None));
    }
    let base = match (src.len_hint(), args.frames) {
        (Some(n), frames) => frames.map_or(0..n, |f| f.within(n)),
        (
            None,
            Some(FrameSpan {
                start,
                end: Some(end),
            }),
        ) => start..end,
        (None, Some(f)) if shard.is_none() => f.start..u64::MAX,
        (None, _) => bail!(
            "--shard: the number of frames of '{}' is unknown (its container does not record \
             it); give the range to split with --frames A..B",
            args.input.display()
        ),
    };
    let range = shard.map_or(base.clone(), |s| s.sub_range(&base));
    match shard {
        Some(s) => tracing::info!(
            "part {s}: frames {}..{} of '{}'",
            range.start,
            range.end,
            args.input.display()
        ),
        None => tracing::debug!("frames {}..{}", range.start, range.end),
    }
    Ok(Plan::One(src, Some(range)))
}

pub(super) fn run(args: &InferArgs) -> anyhow::Result<()> {
    // Open the input first: a missing or unreadable input fails before the model loads.
    let live = source::camera_input(&args.input).is_some();
    let shard = match &args.shard {
        Some(spec) => Some(spec.resolve(|k| std::env::var(k).ok())?),
        None => None,
    };
    let plan = plan(args, live, shard)?;
    if let (true, Plan::One(src, _)) = (live, &plan) {
        tracing::info!("recording {} (Ctrl-C stops)", src.describe());
    }
    // The annotation file too, before the model loads.
    let image_ids = match &args.annotations {
        Some(path) => {
            let dataset = crate::eval::datasets::read(path).context("--annotations")?;
            ImageIds::from_images(
                path,
                dataset.images.iter().map(|i| (i.file_name.as_str(), i.id)),
            )
        }
        None => ImageIds::default(),
    };
    let stop = stop_on_ctrl_c();
    let mut pipeline = build_pipeline(&args.model)?;
    {
        let mut config = pipeline.config().clone();
        if let Some(t) = args.peak_threshold {
            config.paf.peak_threshold = t;
        }
        if let Some(b) = args.person_box {
            let info = pipeline.model().info();
            if info.decoding != crate::models::Decoding::SinglePerson {
                bail!(
                    "--box needs a single-person model (e.g. pefm-cpm, the CPMs, top-down HRNet, \
                     SimpleBaseline, Stacked Hourglass, UniPose); '{}' finds every person in the \
                     frame itself",
                    pipeline.model().id()
                );
            }
            config.person = crate::pipeline::PersonMode::Box;
            config.user_box = Some(b);
        }
        if args.without_memory && !pipeline.model().is_temporal() {
            bail!(
                "--without-memory needs a temporal model (unipose-lstm-penn); '{}' keeps no \
                 state between frames",
                pipeline.model().id()
            );
        }
        config.without_memory = args.without_memory;
        config.ae.flip = !args.no_flip;
        config.dark = args.dark;
        if let Some(grid) = args.grid {
            config.grid = grid;
        }
        if let Some(scales) = &args.scales {
            if scales.is_empty() || scales.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
                bail!("--scales: expected positive numbers such as 2,1,0.5, got {scales:?}");
            }
            config.ae.scales = scales.clone();
        }
        if let Some(t) = args.detection_threshold {
            config.ae.params.detection_threshold = t;
        }
        if let Some(t) = args.tag_threshold {
            config.ae.params.tag_threshold = t;
        }
        if config != *pipeline.config() {
            pipeline = Pipeline::new(pipeline.model().clone(), config);
        }
    }
    let formats = format_writer(args, image_ids, pipeline.model().joints())?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create output directory '{}'", args.out.display()))?;
    let resume = if args.resume {
        Some(Resume::new(
            &args.out,
            args.write_coco.is_some(),
            args.write_csv.is_some(),
        )?)
    } else {
        None
    };

    let total = match &plan {
        Plan::One(src, range) => {
            let n = match range {
                Some(r) => Some(r.end.saturating_sub(r.start)).filter(|_| r.end != u64::MAX),
                None => src.len_hint(),
            };
            match (n, args.max_frames) {
                (Some(n), Some(m)) if !args.resume => Some(n.min(m)),
                (n, m) => n.or(m),
            }
        }
        Plan::Videos(_) => None,
    };
    let bar = match (total, &plan) {
        (_, Plan::Videos(_)) => ProgressBar::new(0),
        (Some(n), _) if n > 1 => ProgressBar::new(n),
        (Some(_), _) => ProgressBar::hidden(),
        (None, _) => ProgressBar::new_spinner(),
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} frames ({per_sec}, eta {eta}) {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let opts = ExportOptions {
        png: PngOptions {
            heatmap: !args.no_heatmap,
            // Single-person decoding reports every joint, however weak; PAF grouping has
            // already dropped weak ones.
            min_score: if pipeline.model().info().decoding == crate::models::Decoding::SinglePerson
            {
                0.1
            } else {
                0.0
            },
            ..PngOptions::default()
        },
        maps: !args.no_maps,
        overwrite: args.overwrite,
    };

    let mut run = Run {
        args,
        pipeline: &pipeline,
        formats,
        resume,
        opts,
        stop: &stop,
        bar,
        single: total == Some(1),
        done: 0,
        ok: 0,
        resumed: 0,
        failures: Vec::new(),
        broke_off: None,
        run_error: None,
        forward_ms: Vec::new(),
        last_index: None,
        missed: 0,
    };
    match plan {
        Plan::One(mut src, range) => {
            run.source(src.as_mut(), range);
        }
        Plan::Videos(videos) => {
            for video in videos {
                let mut src = match source::VideoSource::open(&video) {
                    Ok(s) => s,
                    Err(e) => {
                        run.bar.suspend(|| tracing::error!("{e}"));
                        run.failures.push(e.to_string());
                        continue;
                    }
                };
                let range = match (src.len_hint(), args.frames) {
                    (Some(n), f) => f.map_or(0..n, |f| f.within(n)),
                    (None, Some(f)) => f.start..f.end.unwrap_or(u64::MAX),
                    (None, None) => 0..u64::MAX,
                };
                if range.end != u64::MAX {
                    run.bar.inc_length(range.end - range.start);
                }
                tracing::debug!("{}", src.describe());
                if run.source(&mut src, Some(range)) == Flow::Stop {
                    break;
                }
            }
        }
    }
    let Run {
        formats,
        bar,
        done,
        ok,
        resumed,
        failures,
        broke_off,
        run_error,
        mut forward_ms,
        missed,
        ..
    } = run;
    bar.finish_and_clear();
    // What was completed is written, also after a failure or Ctrl-C.
    if let Some(w) = formats {
        let frames = w.frames();
        for path in w.finish()? {
            tracing::info!("'{}' written ({frames} frames)", path.display());
        }
    }
    if let Some(e) = run_error {
        return Err(e);
    }
    // Frames the source announced but never delivered count as failed (at least one).
    let mut failed = failures.len() as u64;
    if broke_off.is_some() {
        let seen = ok + failed + resumed;
        failed += total.map_or(1, |t| t.saturating_sub(seen)).max(1);
    }
    let frames = ok + failed;
    forward_ms.sort_by(f64::total_cmp);
    let median = forward_ms.get(forward_ms.len() / 2).copied().unwrap_or(0.0);
    let out = args.out.display();
    if failed == 0 {
        tracing::info!("{ok} frames written to '{out}' (median forward {median:.1} ms)");
    } else {
        tracing::info!(
            "{frames} frames, {failed} failed: {ok} written to '{out}' (median forward \
             {median:.1} ms)"
        );
    }
    if args.resume {
        tracing::info!("{resumed} frames were already written (--resume), not run again");
    }
    if live {
        tracing::info!(
            "the camera delivered {missed} more frames while frames were processed (the newest \
             is always taken)"
        );
    }
    if stop.load(Ordering::SeqCst) {
        tracing::info!("stopped by Ctrl-C; every frame written is complete");
    }
    if let Some(first) = broke_off.or_else(|| failures.first().cloned()) {
        let failed = super::FramesFailed {
            frames,
            failed,
            first,
        };
        if ok + resumed == 0 {
            // Nothing was written: the run failed (status 1), not partly.
            bail!("{failed}");
        }
        return Err(failed.into());
    }
    if done + resumed == 0 {
        if shard.is_some() {
            tracing::info!("this part of the input is empty (more parts than items)");
        } else {
            bail!("'{}' produced no frames", args.input.display());
        }
    }
    Ok(())
}

/// Whether the run goes on after a source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

/// The state of a run over its sources.
struct Run<'a> {
    args: &'a InferArgs,
    pipeline: &'a Pipeline,
    formats: Option<FormatWriter>,
    resume: Option<Resume>,
    opts: ExportOptions,
    stop: &'a AtomicBool,
    bar: ProgressBar,
    /// One image: its result is logged.
    single: bool,
    /// Frames taken from the sources and run (not those resumed).
    done: u64,
    /// Frames written.
    ok: u64,
    /// Frames an earlier run had finished (--resume).
    resumed: u64,
    /// Frames that failed alone (an undecodable image in a folder, a frame whose outputs
    /// exist).
    failures: Vec<String>,
    /// A source broke off (a truncated video, a lost camera): the frames after it are lost.
    broke_off: Option<String>,
    /// An error that ends the run itself (an output that cannot be written).
    run_error: Option<anyhow::Error>,
    forward_ms: Vec<f64>,
    // Live sources: camera frames that came while a frame was processed (index gaps).
    last_index: Option<u64>,
    missed: u64,
}

impl Run<'_> {
    fn fail(&mut self, e: &anyhow::Error) {
        self.bar.suspend(|| tracing::error!("{e:#}"));
        self.failures.push(format!("{e:#}"));
    }

    /// A source that broke off mid-stream (the first such message is kept).
    fn broken(&mut self, e: &source::SourceError) {
        self.bar.suspend(|| tracing::error!("{e}"));
        self.broke_off.get_or_insert_with(|| e.to_string());
    }

    /// Runs frames `range` of `src` (all with `None`).
    fn source(&mut self, src: &mut dyn FrameSource, range: Option<Range<u64>>) -> Flow {
        let (start, end) = range.map_or((0, u64::MAX), |r| (r.start, r.end));
        // The index of the frame `src` yields next.
        let mut pos = 0u64;
        if start > 0 {
            if src.seek(start) {
                pos = start;
            }
            // Sources that cannot jump (a video) are read up to the start.
            while pos < start {
                match src.next_frame() {
                    None => return Flow::Continue,
                    Some(Ok(f)) => pos = f.index + 1,
                    Some(Err(e)) if e.is_fatal() => {
                        self.broken(&e);
                        return Flow::Continue;
                    }
                    Some(Err(_)) => pos += 1,
                }
            }
        }
        while pos < end {
            if self.args.max_frames.is_some_and(|m| self.done >= m)
                || self.stop.load(Ordering::SeqCst)
            {
                return Flow::Stop;
            }
            let Some(frame) = src.next_frame() else { break };
            let f = match frame {
                Ok(f) => f,
                Err(e) if e.is_fatal() => {
                    // The source yields nothing more; a folder of videos goes on with the
                    // next.
                    self.broken(&e);
                    break;
                }
                Err(e) => {
                    pos += 1;
                    self.done += 1;
                    self.bar.inc(1);
                    self.bar.suspend(|| tracing::warn!("skipped: {e}"));
                    self.failures.push(e.to_string());
                    continue;
                }
            };
            if f.index >= end {
                break;
            }
            pos = f.index + 1;
            if let Some(prev) = self.last_index {
                self.missed += f.index.saturating_sub(prev + 1);
            }
            self.last_index = Some(f.index);
            if let Some(resume) = &self.resume {
                let files = FrameFiles::new(&self.args.out, &f.output_stem);
                let mut outputs = files.selected(self.opts.maps);
                let openpose = self
                    .formats
                    .as_ref()
                    .and_then(|w| w.openpose_path(&f.output_stem));
                outputs.extend(openpose.as_deref());
                match resume.finished(&f.output_stem, &outputs) {
                    Ok(Some(parts)) => {
                        if let Some(w) = self.formats.as_mut() {
                            w.add_parts(&parts);
                        }
                        self.resumed += 1;
                        self.bar.inc(1);
                        continue;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        self.fail(&e.into());
                        return Flow::Stop;
                    }
                }
            }
            self.done += 1;
            self.bar.inc(1);
            let result = self
                .pipeline
                .run(f)
                .map_err(anyhow::Error::from)
                .and_then(|ins| {
                    self.forward_ms
                        .push(ins.timings.forward.as_secs_f64() * 1e3);
                    self.bar.set_message(format!("{} people", ins.people.len()));
                    self.write(&ins).map(|files| (ins.people.len(), files))
                });
            match result {
                Ok((people, files)) => {
                    self.ok += 1;
                    if self.single {
                        tracing::info!("{}: {people} people", files.png.display());
                    }
                }
                Err(e) => {
                    // An existing output (without --overwrite) fails this frame only; any
                    // other write error (disk full, no permission) ends the run.
                    let fatal = e
                        .downcast_ref::<ExportError>()
                        .is_some_and(|e| !matches!(e, ExportError::Exists(_)));
                    if fatal {
                        self.run_error = Some(e);
                        return Flow::Stop;
                    }
                    self.bar.suspend(|| tracing::warn!("frame failed: {e:#}"));
                    self.failures.push(format!("{e:#}"));
                }
            }
        }
        Flow::Continue
    }

    /// Writes a frame's files and adds it to the run-wide formats. With --resume
    /// everything the frame writes (its share of the run-wide files included) is written
    /// together, replacing what an interrupted run left of it.
    fn write(&mut self, ins: &Inspection) -> anyhow::Result<FrameFiles> {
        let rec = FrameRecord::from_inspection(ins);
        let Some(resume) = &self.resume else {
            if let Some(w) = self.formats.as_mut() {
                w.add(&rec)?;
            }
            return Ok(export::write_frame(ins, &self.args.out, &self.opts)?);
        };
        let files = FrameFiles::new(&self.args.out, &ins.frame.output_stem);
        let mut all = export::encode_frame(ins, &files, &self.opts)?;
        let parts = match &self.formats {
            Some(w) => {
                all.extend(w.openpose_file(&rec));
                let parts = w.parts(&rec)?;
                all.extend(resume.encode(&rec.stem, &parts));
                Some(parts)
            }
            None => None,
        };
        let refs: Vec<(&Path, &[u8])> = all
            .iter()
            .map(|(p, b)| (p.as_path(), b.as_slice()))
            .collect();
        export::write_together(&refs, true)?;
        if let (Some(w), Some(parts)) = (self.formats.as_mut(), parts) {
            w.add_parts(&parts);
        }
        Ok(files)
    }
}

/// `posescope merge-coco`.
pub(super) fn merge_coco(args: &MergeCocoArgs) -> anyhow::Result<()> {
    let mut inputs: Vec<&Path> = args.inputs.iter().map(PathBuf::as_path).collect();
    inputs.sort_by(|a, b| source::natural_cmp(&a.to_string_lossy(), &b.to_string_lossy()));
    let merged = coco::merge(&inputs).map_err(anyhow::Error::msg)?;
    write_atomic(&args.out, &coco::to_bytes(&merged), args.overwrite)?;
    tracing::info!(
        "'{}' written: {} results from {} files",
        args.out.display(),
        merged.len(),
        inputs.len()
    );
    Ok(())
}

/// The writer of the `--write-*` formats, its checks done before the first frame (a joint
/// set COCO cannot take, an existing file); `None` when no format is asked for.
fn format_writer(
    args: &InferArgs,
    image_ids: ImageIds,
    joints: &'static crate::pose::JointSet,
) -> anyhow::Result<Option<FormatWriter>> {
    let opts = FormatOptions {
        coco: args.write_coco.clone(),
        image_ids,
        openpose: args.write_openpose.clone(),
        csv: args.write_csv.clone(),
        // --resume rebuilds the run-wide files from every frame's share.
        overwrite: args.overwrite || args.resume,
    };
    if !opts.any() {
        return Ok(None);
    }
    Ok(Some(FormatWriter::new(opts, joints)?))
}

/// A flag that Ctrl-C sets: the frame in progress is finished and written, then the run
/// ends normally. A second Ctrl-C exits at once (status 130); outputs are written to a
/// temporary file and renamed, so none is left half-written either way.
fn stop_on_ctrl_c() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let installed = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
    });
    if let Err(e) = installed {
        tracing::debug!("Ctrl-C handler not installed: {e}");
    }
    stop
}
