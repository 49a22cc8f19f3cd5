//! `posescope infer`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};

use super::InferArgs;
use crate::export::formats::{coco::ImageIds, FormatOptions, FormatWriter, FrameRecord};
use crate::export::{self, ExportError, ExportOptions, PngOptions};
use crate::pipeline::{Pipeline, PipelineConfig};
use crate::source;

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
    config.person = args.person;
    config.center = args.center;
    Ok(Pipeline::new(model, config))
}

pub(super) fn run(args: &InferArgs) -> anyhow::Result<()> {
    // Open the input first: a missing or unreadable input fails before the model loads.
    let live = source::camera_input(&args.input).is_some();
    let mut src = source::open_input(&args.input)?;
    if live {
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
    let mut formats = format_writer(args, image_ids, pipeline.model().joints())?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create output directory '{}'", args.out.display()))?;

    let total = match (src.len_hint(), args.max_frames) {
        (Some(n), Some(m)) => Some(n.min(m)),
        (n, m) => n.or(m),
    };
    let bar = match total {
        Some(n) if n > 1 => ProgressBar::new(n),
        Some(_) => ProgressBar::hidden(),
        None => ProgressBar::new_spinner(),
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

    let mut done = 0u64;
    let mut failures: Vec<String> = Vec::new();
    let mut forward_ms = Vec::new();
    // Live sources: camera frames that came while a frame was processed (index gaps).
    let mut last_index: Option<u64> = None;
    let mut missed = 0u64;
    while args.max_frames.is_none_or(|m| done < m) && !stop.load(Ordering::SeqCst) {
        let Some(frame) = src.next_frame() else { break };
        if let Ok(f) = &frame {
            if let Some(prev) = last_index {
                missed += f.index.saturating_sub(prev + 1);
            }
            last_index = Some(f.index);
        }
        done += 1;
        bar.inc(1);
        let result = frame
            .map_err(anyhow::Error::from)
            .and_then(|f| pipeline.run(f).map_err(anyhow::Error::from))
            .and_then(|ins| {
                forward_ms.push(ins.timings.forward.as_secs_f64() * 1e3);
                bar.set_message(format!("{} people", ins.people.len()));
                if let Some(w) = formats.as_mut() {
                    w.add(&FrameRecord::from_inspection(&ins))?;
                }
                export::write_frame(&ins, &args.out, &opts)
                    .map(|files| (ins.people.len(), files))
                    .map_err(anyhow::Error::from)
            });
        match result {
            Ok((people, files)) => {
                if total == Some(1) {
                    tracing::info!("{}: {people} people", files.png.display());
                }
            }
            Err(e) => {
                let fatal = e
                    .downcast_ref::<ExportError>()
                    .is_some_and(|e| !matches!(e, ExportError::Exists(_)))
                    || e.downcast_ref::<source::SourceError>()
                        .is_some_and(|e| e.is_fatal());
                bar.suspend(|| tracing::error!("{e:#}"));
                failures.push(format!("{e:#}"));
                if fatal {
                    break;
                }
            }
        }
    }
    bar.finish_and_clear();
    // What was completed is written, also after a failure or Ctrl-C.
    if let Some(w) = formats {
        let frames = w.frames();
        for path in w.finish()? {
            tracing::info!("'{}' written ({frames} frames)", path.display());
        }
    }
    let ok = done as usize - failures.len();
    forward_ms.sort_by(f64::total_cmp);
    let median = forward_ms.get(forward_ms.len() / 2).copied().unwrap_or(0.0);
    tracing::info!(
        "{ok} of {done} frames written to '{}' (median forward {median:.1} ms)",
        args.out.display()
    );
    if live {
        tracing::info!(
            "the camera delivered {missed} more frames while frames were processed (the newest \
             is always taken)"
        );
    }
    if stop.load(Ordering::SeqCst) {
        tracing::info!("stopped by Ctrl-C; every frame written is complete");
    }
    if let Some(first) = failures.first() {
        bail!("{} frame(s) failed; first: {first}", failures.len());
    }
    if done == 0 {
        bail!("'{}' produced no frames", args.input.display());
    }
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
        overwrite: args.overwrite,
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
