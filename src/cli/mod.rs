//! Command-line interface: argument definitions and the commands.

mod bench;
mod bench_live;
mod eval;
mod experiments;
mod fetch;
mod infer;
mod models;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::models::DEFAULT_MODEL;

/// Exit status of a run that finished with some frames written and some failed.
pub const EXIT_FRAMES_FAILED: u8 = 3;

const INFER_EXIT_STATUS: &str = "\
Exit status:
  0  every frame was written
  1  nothing was written: the input, model or output directory cannot be used (a single image
     that is truncated or cannot be decoded, a video ffprobe cannot open), an output cannot be
     written, or every frame failed
  2  the command line is wrong
  3  some frames failed, the others were written: an image in a folder that is truncated or
     cannot be decoded (skipped with a warning naming it), a video or camera that breaks off
     mid-stream, a frame whose outputs exist (without --overwrite); the summary line counts them";

/// A run that went to its end with some frames failed (see [`EXIT_FRAMES_FAILED`]).
#[derive(Debug, thiserror::Error)]
#[error("{failed} of {frames} frames failed; first: {first}")]
pub struct FramesFailed {
    /// Frames of the run, failed ones included.
    pub frames: u64,
    /// Frames that failed (or that a source which broke off never delivered).
    pub failed: u64,
    /// The first failure's message.
    pub first: String,
}

/// The one-line text of an error returned by [`run`]: the error and its causes joined by
/// `: ` (as `{:#}` does), each cause by its first line only (candle appends a backtrace
/// when `RUST_BACKTRACE` is set), leaving out a cause whose text the line already holds
/// (most error types in this crate name their source in their own message as well).
pub fn error_text(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let c = cause.to_string();
        let c = c.lines().next().unwrap_or_default().trim_end();
        if !c.is_empty() && !text.contains(c) {
            text.push_str(": ");
            text.push_str(c);
        }
    }
    text
}

/// The process exit status for an error returned by [`run`]: [`EXIT_FRAMES_FAILED`] when
/// some frames failed and the others were written, 1 otherwise.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    if error.downcast_ref::<FramesFailed>().is_some() {
        EXIT_FRAMES_FAILED
    } else {
        1
    }
}

/// Run 2D human-pose networks on images, folders, videos and webcams, and see what happens
/// inside them.
#[derive(Debug, Parser)]
#[command(name = "posescope", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// More log output on stderr (-v: debug, -vv: trace). `RUST_LOG` (e.g.
    /// `RUST_LOG=posescope=debug`) overrides both flags.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr (progress bars stay).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

impl Cli {
    /// Installs the log subscriber: messages of the library (`tracing`) go to stderr at the
    /// level the flags say (default: info), unless `RUST_LOG` is set.
    pub fn init_logging(&self) {
        let level = match (self.quiet, self.verbose) {
            (true, _) => "error",
            (false, 0) => "info",
            (false, 1) => "debug",
            (false, _) => "trace",
        };
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
        // A second call (tests) leaves the first subscriber in place.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_target(false)
            .without_time()
            .try_init();
    }
}

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Open the desktop app (the default when no command is given).
    Gui(GuiArgs),
    /// Run a model on an image, a folder of images or a video; write annotated PNGs, JSON
    /// keypoints and every stage's maps.
    #[command(after_help = INFER_EXIT_STATUS)]
    Infer(InferArgs),
    /// List the known models.
    Models(ModelsArgs),
    /// Download a model's published weights file into the model cache directory
    /// (~/.cache/posescope/models), checking its SHA-256.
    Fetch(FetchArgs),
    /// Time the network's forward pass, or (with --input VIDEO) the whole live pipeline on
    /// a video delivered at its frame rate, as from a camera.
    Bench(BenchArgs),
    /// Measure a model's accuracy on an annotated dataset (PCK, PCKh or COCO OKS AP, per
    /// stage) and write a JSON report and a PNG chart.
    Eval(EvalArgs),
    /// Edit a stage's belief maps (erase a joint, paint a peak, move CPM's centre) and re-run
    /// the later stages on the edit; writes both runs (JSON, one maps file) and a picture.
    Intervene(InterveneArgs),
    /// Slide a grey patch over the image and record, per stage, how much a joint's belief at
    /// its peak drops; writes the drop maps (safetensors) and a picture.
    Occlusion(OcclusionArgs),
    /// Run two models on the same image: the distance between their keypoints per joint
    /// (joints matched by name, people one to one) as JSON, and both side by side as PNG.
    Versus(VersusArgs),
    /// List the cameras with their formats, sizes and frame rates.
    Cameras,
    /// Merge the `--write-coco` files of the parts of a `infer --shard K/N` run into the
    /// file one run over the whole input writes.
    MergeCoco(MergeCocoArgs),
}

/// Model and device options shared by commands.
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// Catalogue id (see `posescope models`) or a weights file.
    #[arg(long, short, default_value = DEFAULT_MODEL)]
    pub model: String,
    /// A weights file for the architecture of `--model` (a catalogue id), used instead of
    /// the model's own file: e.g. `--model higherhrnet-w32-512 --weights my.pth` (any
    /// HigherHRNet width, official or MMPose names).
    #[arg(long, value_name = "FILE")]
    pub weights: Option<PathBuf>,
    /// Compute device: cpu, cuda, cuda:N or metal.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Run candle's own ops on the CPU instead of the custom CPU kernels: the portable path
    /// that CUDA and Metal get (slower; for checking that path). Same as
    /// POSESCOPE_PORTABLE=1.
    #[arg(long)]
    pub portable: bool,
    /// Network input box WxH (default: the model's own, e.g. 432x368).
    #[arg(long, value_parser = parse_size)]
    pub size: Option<(u32, u32)>,
    /// How the image is fitted to the input box: fit (keep aspect, pad to the stride),
    /// letterbox (keep aspect, centre in the box) or stretch (squash, as tf-pose and the
    /// mobile CPM were trained). Default: the model's own.
    #[arg(long)]
    pub resize: Option<crate::preprocess::ResizeMode>,
    /// The resize filter: antialiased (Catmull-Rom, prefiltered when shrinking) or cv-cubic
    /// (OpenCV's INTER_CUBIC, tf-pose's). Default: the model's own.
    #[arg(long)]
    pub filter: Option<crate::preprocess::ResizeFilter>,
    /// Single-person models (CPM, mobile CPM/hourglass): `centre` runs on the whole frame
    /// centred on the image centre (or --center); `top-down` finds people with the default
    /// bottom-up model and runs on a crop around each. (`infer --box` runs on one given box
    /// instead.)
    #[arg(long, default_value = "centre", value_parser = parse_person_mode)]
    pub person: crate::pipeline::PersonMode,
    /// Single-person models: the person's centre `X,Y` in image pixels.
    #[arg(long, value_parser = parse_point)]
    pub center: Option<(f64, f64)>,
}

/// `centre` / `center` or `top-down` / `topdown`.
pub fn parse_person_mode(s: &str) -> Result<crate::pipeline::PersonMode, String> {
    match s.to_ascii_lowercase().as_str() {
        "centre" | "center" => Ok(crate::pipeline::PersonMode::Centre),
        "top-down" | "topdown" => Ok(crate::pipeline::PersonMode::TopDown),
        _ => Err(format!("unknown person mode '{s}': use centre or top-down")),
    }
}

/// `X,Y` (pixels, decimals allowed).
pub fn parse_point(s: &str) -> Result<(f64, f64), String> {
    let bad = || format!("point '{s}' must look like 320,240");
    let (x, y) = s.split_once(',').ok_or_else(bad)?;
    let x: f64 = x.trim().parse().map_err(|_| bad())?;
    let y: f64 = y.trim().parse().map_err(|_| bad())?;
    if !(x.is_finite() && y.is_finite()) {
        return Err(bad());
    }
    Ok((x, y))
}

/// `X0,Y0,X1,Y1` (pixels, decimals allowed): a box's top-left and bottom-right corners.
pub fn parse_box(s: &str) -> Result<[f64; 4], String> {
    let bad = || format!("box '{s}' must look like 40,20,200,380 (x0,y0,x1,y1 in image pixels)");
    let v: Vec<f64> = s
        .split(',')
        .map(|p| p.trim().parse::<f64>().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let &[x0, y0, x1, y1] = v.as_slice() else {
        return Err(bad());
    };
    if v.iter().any(|c| !c.is_finite()) {
        return Err(bad());
    }
    if x1 <= x0 || y1 <= y0 {
        return Err(format!(
            "box '{s}': x1 must be greater than x0 and y1 greater than y0 (top-left corner first)"
        ));
    }
    Ok([x0, y0, x1, y1])
}

#[derive(Debug, Args)]
pub struct InferArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// An image, a folder of images, a video file, or `camera:N` (a live camera; see
    /// `posescope cameras`; record until Ctrl-C or `--max-frames`), in a mode of its own with
    /// `camera:N@WxH` or `camera:N@WxH@FPS`. `sim-camera:VIDEO` plays VIDEO as a live camera
    /// would.
    #[arg(long, short)]
    pub input: PathBuf,
    /// Output directory (created if needed).
    #[arg(long, short)]
    pub out: PathBuf,
    /// Do not blend the heatmap into the PNG.
    #[arg(long)]
    pub no_heatmap: bool,
    /// Do not write the `.maps.safetensors` files.
    #[arg(long)]
    pub no_maps: bool,
    /// Replace existing output files (otherwise they are kept and reported).
    #[arg(long)]
    pub overwrite: bool,
    /// Process at most this many frames.
    #[arg(long)]
    pub max_frames: Option<u64>,
    /// Heatmap peak threshold for grouping (default 0.05, tf-pose's `THRESH_HEAT`).
    #[arg(long)]
    pub peak_threshold: Option<f32>,
    /// Associative-embedding models (HigherHRNet): skip the flip test (on by default, as
    /// the official test).
    #[arg(long)]
    pub no_flip: bool,
    /// Single-person models: DARK decoding (Gaussian-smoothed log-heatmap, second-order
    /// Taylor offset at the maximum) instead of the quarter-cell rule.
    #[arg(long)]
    pub dark: bool,
    /// Where map cells sit on the network input: centre ((i + 0.5)·stride − 0.5) or corner
    /// (i·stride). Default: the network's own convention (`posescope models` lists it).
    #[arg(long)]
    pub grid: Option<crate::pose::GridAlign>,
    /// Temporal models (UniPose-LSTM): run every video frame as the first frame of a clip,
    /// carrying no state, to compare with single-frame UniPose on the same frames.
    #[arg(long)]
    pub without_memory: bool,
    /// Single-person models: run on this person box `X0,Y0,X1,Y1` (image pixels, clamped
    /// to each frame) instead of the whole frame, cropped as top-down crops are (widened to
    /// the input's aspect ratio, enlarged by the crop padding, flip test where the model
    /// has one).
    #[arg(long = "box", value_name = "X0,Y0,X1,Y1", value_parser = parse_box, conflicts_with = "person")]
    pub person_box: Option<[f64; 4]>,
    /// Associative-embedding models: test scales, e.g. `2,1,0.5` (default `1`).
    #[arg(long, value_delimiter = ',')]
    pub scales: Option<Vec<f64>>,
    /// Associative-embedding models: heatmap value a peak needs to be grouped (official 0.1).
    #[arg(long)]
    pub detection_threshold: Option<f64>,
    /// Associative-embedding models: largest tag distance at which a joint joins a person
    /// (official 1.0).
    #[arg(long)]
    pub tag_threshold: Option<f64>,
    /// Also write every frame's people as one COCO keypoint results list (pycocotools'
    /// `loadRes` input; COCO-17 joints, OpenPose COCO-18 converted, other joint sets
    /// refused), written when the run ends, also when it fails or is stopped.
    #[arg(long, value_name = "FILE")]
    pub write_coco: Option<PathBuf>,
    /// With --write-coco: take each image's `image_id` from this COCO annotation file, by
    /// file name (default: the number in the image's file name, COCO's convention).
    #[arg(long, value_name = "FILE", requires = "write_coco")]
    pub annotations: Option<PathBuf>,
    /// Also write `<stem>_keypoints.json` per frame into DIR, in OpenPose's format (the
    /// model's joint order; joints not found are 0, 0, 0).
    #[arg(long, value_name = "DIR")]
    pub write_openpose: Option<PathBuf>,
    /// Also write one CSV row per frame, person and joint (frame, time, person, joint, x,
    /// y, score), written when the run ends.
    #[arg(long, value_name = "FILE")]
    pub write_csv: Option<PathBuf>,
    /// Run only part K of N of the input, K counted from 0 (`0/4` .. `3/4`): contiguous,
    /// balanced parts; a folder of images is split by file, a folder of videos by video,
    /// one video by frame range. `auto` reads the part from a Slurm job array
    /// (SLURM_ARRAY_TASK_ID minus SLURM_ARRAY_TASK_MIN, of SLURM_ARRAY_TASK_COUNT); `auto/N`
    /// also from a Kubernetes Indexed Job (JOB_COMPLETION_INDEX of N). Give each part its
    /// own --write-coco / --write-csv file and join them with `posescope merge-coco`; see
    /// docs/cluster.md.
    #[arg(long, value_name = "K/N|auto|auto/N")]
    pub shard: Option<crate::shard::ShardSpec>,
    /// Only frames A to B-1 (counted from 0; `A..` to the end) of a video, or of each video
    /// of a folder of videos, or images A to B-1 of a folder. With --shard, the part is
    /// taken of this range.
    #[arg(long, value_name = "A..B")]
    pub frames: Option<crate::shard::FrameSpan>,
    /// Skip the frames whose output files an earlier run of the same command wrote, and
    /// write the rest: a killed or preempted run re-run with --resume completes the job,
    /// nothing duplicated (the --write-coco / --write-csv files hold each frame once). Keeps
    /// each frame's share of those files in OUT/.posescope-resume/.
    #[arg(long, conflicts_with = "overwrite")]
    pub resume: bool,
}

#[derive(Debug, Args)]
pub struct MergeCocoArgs {
    /// The merged results file.
    pub out: PathBuf,
    /// The shards' `--write-coco` files. They are taken in the natural order of their
    /// paths (`coco-2.json` before `coco-10.json`), so name them by shard number.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Replace OUT if it exists.
    #[arg(long)]
    pub overwrite: bool,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub model: EvalModelArgs,
    /// Annotation file: LSP-style annotations.json, MPII json (MMPose format) or COCO
    /// keypoints json.
    #[arg(long, short)]
    pub annotations: PathBuf,
    /// Directory the annotations' image file names are relative to.
    #[arg(long, short)]
    pub images: PathBuf,
    /// pck (PCK@alpha, MMPose's definition), pckh (PCKh@alpha, the MPII toolkit's) or
    /// oks-ap (COCO keypoint AP/AR, pycocotools' COCOeval; COCO-17 annotations).
    #[arg(long, default_value = "pck")]
    pub metric: crate::eval::Metric,
    /// Threshold (default 0.2 for pck, 0.5 for pckh).
    #[arg(long)]
    pub alpha: Option<f64>,
    /// PCK reference length: torso (right shoulder to left hip) or bbox (max side of the
    /// person box).
    #[arg(long, default_value = "torso")]
    pub norm: crate::eval::Norm,
    /// Single-person models: whole (the whole image) or box (a crop around each annotated
    /// person: the annotated joints' box at the model's aspect, enlarged 1.25x).
    #[arg(long, default_value = "whole")]
    pub person: crate::eval::PersonInput,
    /// Evaluate only the first N images.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Write the JSON report here (atomically); without it the report goes to stdout.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Write the chart here (default: the report's path with .png).
    #[arg(long)]
    pub chart: Option<PathBuf>,
    /// Do not write a chart.
    #[arg(long, conflicts_with = "chart")]
    pub no_chart: bool,
    /// Also write the final stage's predictions as a COCO keypoint results file (dataset
    /// joint order; joints not predicted are 0, 0, 0).
    #[arg(long)]
    pub predictions: Option<PathBuf>,
    /// Score this COCO keypoint results file instead of running a model: keypoints in the
    /// annotations' joint order, image pixels, `0, 0, 0` for joints not predicted; image_id
    /// = COCO's id, else the image's 0-based position in the annotation file (e.g. a
    /// reference program's output, see scripts/original_pipelines/).
    #[arg(long, value_name = "RESULTS")]
    pub score: Option<PathBuf>,
}

/// Model options of `eval` (the person mode has its own meaning there).
#[derive(Debug, Args)]
pub struct EvalModelArgs {
    /// Catalogue id (see `posescope models`) or a weights file.
    #[arg(long, short, default_value = DEFAULT_MODEL)]
    pub model: String,
    /// Compute device: cpu, cuda, cuda:N or metal.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Network input box WxH (default: the model's own).
    #[arg(long, value_parser = parse_size)]
    pub size: Option<(u32, u32)>,
    /// Where map cells sit on the network input: centre or corner (default: the network's
    /// own convention).
    #[arg(long)]
    pub grid: Option<crate::pose::GridAlign>,
    /// How whole images are fitted to the input box: fit, letterbox or stretch (default: the
    /// model's own).
    #[arg(long)]
    pub resize: Option<crate::preprocess::ResizeMode>,
    /// The resize filter: antialiased or cv-cubic (default: the model's own).
    #[arg(long)]
    pub filter: Option<crate::preprocess::ResizeFilter>,
}

#[derive(Debug, Args)]
pub struct GuiArgs {
    /// Catalogue id or weights file (default: the last one used, or the embedded model).
    #[arg(long, short)]
    pub model: Option<String>,
    /// An image, a folder of images, or a video (default: the bundled sample photo).
    #[arg(long, short)]
    pub input: Option<PathBuf>,
    /// Compute device: cpu, cuda, cuda:N or metal.
    #[arg(long)]
    pub device: Option<String>,
}

#[derive(Debug, Args)]
pub struct ModelsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct FetchArgs {
    /// Catalogue id or alias (see `posescope models`).
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub id: Option<String>,
    /// Fetch every downloadable model that is not present yet.
    #[arg(long)]
    pub all: bool,
    /// Save into this directory instead of the cache directory (created if needed).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Download again even when a verified copy is present.
    #[arg(long)]
    pub force: bool,
    /// Download from this URL instead of the published one (a mirror, or a copy of weights
    /// that have no published URL); the SHA-256 is checked all the same. For mirrors of all
    /// files set POSESCOPE_FETCH_BASE_URL (files are fetched from `$BASE/<file name>`).
    #[arg(long, conflicts_with = "all")]
    pub url: Option<String>,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Threads for candle's CPU kernels (sets RAYON_NUM_THREADS).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Timed runs after 2 warm-up runs.
    #[arg(long, default_value_t = 10)]
    pub runs: usize,
    /// Print one JSON object (times, medians, GFLOP, per-step medians) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Live mode: a video file, delivered at its frame rate (looped) to the live pipeline
    /// (capture, preparation overlapped with the network, decoding, frames dropped while
    /// busy); reports processed frames per second and frame-to-result latency. The input
    /// size is the model's live size unless --size is given.
    #[arg(long, value_name = "VIDEO")]
    pub input: Option<PathBuf>,
    /// Live mode: how long to run, seconds (default 10 unless --max-frames is given).
    #[arg(long, requires = "input")]
    pub seconds: Option<f64>,
    /// Live mode: stop after this many processed frames.
    #[arg(long, requires = "input")]
    pub max_frames: Option<u64>,
    /// Live mode: prepare each frame on the inference thread instead of overlapping the
    /// preparation with the network (for comparison).
    #[arg(long, requires = "input")]
    pub serial: bool,
    /// Live mode: inference threads working on successive frames at once (default: 2 on a
    /// machine with two cores or more, as the app's live view runs; 1 for temporal models).
    /// With 2, each prepares its own frame.
    #[arg(long, requires = "input", value_parser = clap::value_parser!(u16).range(1..=16))]
    pub workers: Option<u16>,
}

#[derive(Debug, Args)]
pub struct InterveneArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// An image file.
    #[arg(long)]
    pub input: PathBuf,
    /// The edited stage, 1-based (stages after it are re-run on the edit).
    #[arg(long)]
    pub stage: usize,
    /// Erase this joint's map at the stage: a joint name or its 0-based channel index.
    #[arg(long, value_name = "J")]
    pub erase_joint: Option<String>,
    /// Paint a peak into this joint's map (name or channel index) at `--at`.
    #[arg(long, value_name = "J", requires = "at")]
    pub paint_joint: Option<String>,
    /// Where to paint, `X,Y` in image pixels.
    #[arg(long, value_parser = parse_point, requires = "paint_joint")]
    pub at: Option<(f64, f64)>,
    /// CPM: move the centre map to `X,Y` (image pixels) for the later stages.
    #[arg(long, value_parser = parse_point, value_name = "X,Y")]
    pub move_center: Option<(f64, f64)>,
    /// Output folder (created; files in it are replaced).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct OcclusionArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// An image file.
    #[arg(long)]
    pub input: PathBuf,
    /// The joint: a name or its 0-based channel index.
    #[arg(long, value_name = "J")]
    pub joint: String,
    /// Side of the grey patch, network-input pixels.
    #[arg(long, default_value_t = 16)]
    pub patch: u32,
    /// Distance between patch centres, network-input pixels (the grid is
    /// ceil(W/S) x ceil(H/S)).
    #[arg(long, default_value_t = 8)]
    pub stride: u32,
    /// Occluded images per forward pass.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Output folder (created; files in it are replaced).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct VersusArgs {
    /// Model A, with its options (`--model`, `--device`, `--size`, ...).
    #[command(flatten)]
    pub model: ModelArgs,
    /// Model B: catalogue id or weights file, run with its own input size and resize mode
    /// on the same device.
    #[arg(long, value_name = "MODEL")]
    pub model_b: String,
    /// Model B, if single-person: `top-down` runs it on a crop around each person the
    /// default bottom-up model finds (comparable with a multi-person A), `centre` on the
    /// whole frame.
    #[arg(long, default_value = "top-down", value_parser = parse_person_mode)]
    pub person_b: crate::pipeline::PersonMode,
    /// An image file.
    #[arg(long)]
    pub input: PathBuf,
    /// Keypoints scoring below this are left out of the distance table.
    #[arg(long, default_value_t = 0.1)]
    pub min_score: f32,
    /// Output folder (created): versus.json and versus.png.
    #[arg(long)]
    pub out: PathBuf,
}

/// Parses `WxH`.
pub fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("size '{s}' must look like 432x368"))?;
    let p = |v: &str| {
        v.trim()
            .parse::<u32>()
            .map_err(|_| format!("size '{s}' must look like 432x368"))
    };
    let (w, h) = (p(w)?, p(h)?);
    if !(8..=4096).contains(&w) || !(8..=4096).contains(&h) {
        return Err(format!("size '{s}': each side must be between 8 and 4096"));
    }
    Ok((w, h))
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Some(Command::Infer(a)) => infer::run(&a),
        Some(Command::Models(a)) => models::run(&a),
        Some(Command::Fetch(a)) => fetch::run(&a),
        Some(Command::Bench(a)) => bench::run(&a),
        Some(Command::Eval(a)) => eval::run(&a),
        Some(Command::Intervene(a)) => experiments::intervene(&a),
        Some(Command::Occlusion(a)) => experiments::occlusion(&a),
        Some(Command::Versus(a)) => experiments::versus(&a),
        Some(Command::Cameras) => models::cameras(),
        Some(Command::MergeCoco(a)) => infer::merge_coco(&a),
        Some(Command::Gui(a)) => gui(a),
        None => gui(GuiArgs {
            model: None,
            input: None,
            device: None,
        }),
    }
}

#[cfg(feature = "gui")]
fn gui(args: GuiArgs) -> anyhow::Result<()> {
    if let Some(input) = &args.input {
        if !input.exists() && crate::source::camera_input(input).is_none() {
            anyhow::bail!("input '{}' does not exist", input.display());
        }
    }
    crate::ui::run(crate::ui::StartOptions {
        model: args.model,
        input: args.input,
        device: args.device,
    })
}

#[cfg(not(feature = "gui"))]
fn gui(_args: GuiArgs) -> anyhow::Result<()> {
    use clap::CommandFactory;
    Cli::command().print_help()?;
    println!();
    anyhow::bail!("this posescope was built without the desktop app (cargo feature `gui`)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_text_names_each_cause_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("reading 'a.json': {source}")]
        struct Outer {
            #[source]
            source: std::io::Error,
        }
        let io = || std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        // A source the message already holds is not repeated…
        let e = anyhow::Error::new(Outer { source: io() });
        assert_eq!(error_text(&e), "reading 'a.json': no such file");
        // …a context's cause is still appended.
        let e = anyhow::Error::new(io()).context("opening the cache");
        assert_eq!(error_text(&e), "opening the cache: no such file");
        // A cause's later lines (a backtrace) are left out.
        let bt = std::io::Error::other("driver error 34\n   0: candle_core::error::Error::bt");
        let e = anyhow::Error::new(bt).context("opening cuda:0");
        assert_eq!(error_text(&e), "opening cuda:0: driver error 34");
    }

    #[test]
    fn points_and_person_modes() {
        assert_eq!(parse_point("320, 240.5"), Ok((320.0, 240.5)));
        assert!(parse_point("320").is_err());
        assert!(parse_point("a,b").is_err());
        assert!(parse_person_mode("top-down").is_ok());
        assert!(parse_person_mode("nope").is_err());
    }

    #[test]
    fn boxes() {
        assert_eq!(
            parse_box("40, 20.5,200,380"),
            Ok([40.0, 20.5, 200.0, 380.0])
        );
        assert_eq!(parse_box("-10,-10,5,5"), Ok([-10.0, -10.0, 5.0, 5.0]));
        for bad in [
            "",
            "1,2,3",
            "1,2,3,4,5",
            "a,b,c,d",
            "1,2,3,inf",
            "1,2,NaN,4",
        ] {
            let e = parse_box(bad).unwrap_err();
            assert!(e.contains("x0,y0,x1,y1"), "{bad}: {e}");
        }
        let e = parse_box("200,20,40,380").unwrap_err();
        assert!(e.contains("greater"), "{e}");
        assert!(parse_box("40,20,40,380").is_err());
        // Through clap: `infer --box`, and not together with an explicit --person.
        let cli = Cli::try_parse_from([
            "posescope",
            "infer",
            "-i",
            "a.png",
            "-o",
            "out",
            "--box",
            "1,2,30,40",
        ])
        .unwrap();
        let Some(Command::Infer(a)) = cli.command else {
            panic!("not infer");
        };
        assert_eq!(a.person_box, Some([1.0, 2.0, 30.0, 40.0]));
        let e = Cli::try_parse_from([
            "posescope",
            "infer",
            "-i",
            "a.png",
            "-o",
            "out",
            "--box",
            "1,2,3",
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("x0,y0,x1,y1"), "{e}");
        assert!(Cli::try_parse_from([
            "posescope",
            "infer",
            "-i",
            "a.png",
            "-o",
            "out",
            "--box",
            "1,2,30,40",
            "--person",
            "top-down",
        ])
        .is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("432x368"), Ok((432, 368)));
        assert_eq!(parse_size("656X368"), Ok((656, 368)));
        assert!(parse_size("432").is_err());
        assert!(parse_size("0x5").is_err());
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
