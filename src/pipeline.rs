//! The inference pipeline: frame → preprocess → model → decode → [`Inspection`], and a
//! worker thread that always works on the newest frame (older ones are dropped, never
//! queued).

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use crate::inspection::{FrameInfo, Inspection, PersonCrop, Timings};
use crate::models::{
    Decoding, Memory, Model, ModelError, RunOptions, DEFAULT_MODEL, TOPDOWN_BOX_PADDING,
};
use crate::pose::decode::{self, DecodeParams};
use crate::pose::paf::PafParams;
use crate::pose::{single, Affine2, GridAlign};
use crate::preprocess::{self, Prepared, PreprocessConfig, PreprocessError};
use crate::source::Frame;

mod ae;
pub mod live;
mod temporal;
mod worker;
pub use crate::inspection::{MemoryStatus, ResetReason};
pub use ae::{flip_index, people_in_image, regroup, AeConfig};
pub use live::{
    default_workers, LiveError, LiveOptions, LiveResult, LiveRun, LiveStats, StopHandle,
};
pub use worker::{LatestSlot, Submitter, Worker};

/// Everything that can fail while processing one frame.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("frame '{frame}': {source}")]
    Preprocess {
        frame: String,
        #[source]
        source: PreprocessError,
    },
    #[error("frame '{frame}': cannot build the input tensor: {source}")]
    Input {
        frame: String,
        #[source]
        source: Box<candle_core::Error>,
    },
    #[error("frame '{frame}': {source}")]
    Model {
        frame: String,
        #[source]
        source: ModelError,
    },
    #[error("frame '{frame}': decoding: {message}")]
    Decode { frame: String, message: String },
    #[error("frame '{frame}': {source}")]
    PersonBox {
        frame: String,
        #[source]
        source: BoxError,
    },
}

/// A person box the user gave (dragged in the app, `--box` in the CLI) that cannot be used.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum BoxError {
    #[error("person box {0:?}: every coordinate must be a finite number")]
    NotFinite([f64; 4]),
    #[error(
        "person box ({x0:.1}, {y0:.1})-({x1:.1}, {y1:.1}) is {w:.1}x{h:.1} px inside the \
         {width}x{height} image; it needs at least {min} px on each side",
        min = MIN_BOX_SIDE
    )]
    TooSmall {
        x0: f64,
        y0: f64,
        x1: f64,
        y1: f64,
        w: f64,
        h: f64,
        width: u32,
        height: u32,
    },
}

/// The smallest side, in image pixels, of a usable user box (after clamping to the image).
pub const MIN_BOX_SIDE: f64 = 4.0;

/// A user's person box made usable: corners ordered, clamped to the `width`×`height` image
/// (whose pixels span `-0.5..width-0.5`, pixel centres at integers), as `(x0, y0, x1, y1)`.
/// Refused when a coordinate is not finite or the clamped box is narrower or lower than
/// [`MIN_BOX_SIDE`] (e.g. a box outside the image).
pub fn clamp_box(b: [f64; 4], width: u32, height: u32) -> Result<[f64; 4], BoxError> {
    if b.iter().any(|v| !v.is_finite()) {
        return Err(BoxError::NotFinite(b));
    }
    let (xmax, ymax) = (f64::from(width) - 0.5, f64::from(height) - 0.5);
    let x0 = b[0].min(b[2]).clamp(-0.5, xmax);
    let x1 = b[0].max(b[2]).clamp(-0.5, xmax);
    let y0 = b[1].min(b[3]).clamp(-0.5, ymax);
    let y1 = b[1].max(b[3]).clamp(-0.5, ymax);
    let (w, h) = (x1 - x0, y1 - y0);
    if w < MIN_BOX_SIDE || h < MIN_BOX_SIDE {
        return Err(BoxError::TooSmall {
            x0,
            y0,
            x1,
            y1,
            w,
            h,
            width,
            height,
        });
    }
    Ok([x0, y0, x1, y1])
}

/// How single-person models find their person.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PersonMode {
    /// The whole frame, centred on the image centre or on [`PipelineConfig::center`].
    #[default]
    Centre,
    /// Top-down: the bottom-up default model finds people; the model runs on a crop around
    /// each.
    TopDown,
    /// Top-down on one box the user gave ([`PipelineConfig::user_box`]: dragged in the app,
    /// `--box` in the CLI), cropped as a detected person's box. Without a box: the whole
    /// frame, as [`PersonMode::Centre`].
    Box,
}

/// Pipeline settings.
#[derive(Clone, Debug, PartialEq)]
pub struct PipelineConfig {
    pub preprocess: PreprocessConfig,
    /// Grouping settings for PAF models.
    pub paf: PafParams,
    /// Single-person models: whole frame or top-down crops.
    pub person: PersonMode,
    /// Single-person models: the person's centre in image pixels (a click in the app); in
    /// top-down mode it picks the person whose maps are kept. `None` = image centre /
    /// largest person.
    pub center: Option<(f64, f64)>,
    /// Single-person models in [`PersonMode::Box`]: the person's box `(x0, y0, x1, y1)` in
    /// image pixels as the user gave it (any corner order; clamped to each frame, see
    /// [`clamp_box`]), before it is widened to the input's aspect ratio and enlarged by
    /// `crop_padding`.
    pub user_box: Option<[f64; 4]>,
    /// Bottom-up associative-embedding models (HigherHRNet): flip test, scales, grouping.
    pub ae: AeConfig,
    /// Top-down crops: also run the mirrored crop and average its maps, mirrored back with
    /// the joint set's [`flip_index`], into the last stage (the official test of top-down
    /// HRNet, SimpleBaseline and the Stacked Hourglass; HRNet and SimpleBaseline also shift
    /// the mirrored-back maps one cell right, see [`single::flip_back`]). On by default for
    /// those families.
    pub topdown_flip: bool,
    /// Single-person models: DARK decoding ([`single::decode_dark`]) instead of the
    /// quarter-cell rule. Off by default.
    pub dark: bool,
    /// Temporal models (UniPose-LSTM): run every frame as the first of a clip, i.e. the
    /// single-frame model on the same frames ("without memory"). Off by default: the state
    /// is carried across consecutive frames of one source (see [`MemoryStatus`]).
    pub without_memory: bool,
    /// Top-down and box modes: how much the box around a detected person's keypoints (or the
    /// user's box) is enlarged before cropping. [`TOPDOWN_BOX_PADDING`] (1.25, the official recipe) for the
    /// top-down families (HRNet, SimpleBaseline, Stacked Hourglass);
    /// [`KEYPOINT_BOX_PADDING`] (1.4) for the other single-person models (CPM), whose crops
    /// keep the earlier, looser box.
    pub crop_padding: f64,
    /// Where the output maps' cells sit on the input: the network's own convention
    /// ([`crate::models::Architecture::grid`]) unless overridden (`--grid`).
    pub grid: GridAlign,
}

impl PipelineConfig {
    /// The model's default input size, resize mode and normalisation, published decoding
    /// defaults.
    pub fn for_model(model: &Model) -> Self {
        let info = model.info();
        Self {
            preprocess: PreprocessConfig {
                size: info.input_size,
                mode: info.resize,
                stride: info.stride,
                norm: info.norm,
                filter: info.filter,
            },
            paf: PafParams::default(),
            person: PersonMode::Centre,
            center: None,
            user_box: None,
            ae: AeConfig::default(),
            topdown_flip: info.architecture.is_top_down(),
            dark: false,
            without_memory: false,
            crop_padding: if info.architecture.is_top_down() {
                TOPDOWN_BOX_PADDING
            } else {
                KEYPOINT_BOX_PADDING
            },
            grid: info.architecture.grid,
        }
    }
}

impl PipelineConfig {
    /// [`PipelineConfig::for_model`] with the model's live input box and resize mode
    /// ([`crate::models::catalog::live_input`]): for the camera view and the live
    /// benchmark, never for infer or eval.
    pub fn for_live(model: &Model) -> Self {
        let mut config = Self::for_model(model);
        (config.preprocess.size, config.preprocess.mode) =
            crate::models::catalog::live_input(model.info());
        config
    }
}

/// Crop boxes derived from keypoints are enlarged by this factor: the usual 1.25 box
/// padding of top-down pose models, times ~1.12 because keypoint extents miss the head top
/// and the feet.
pub const KEYPOINT_BOX_PADDING: f64 = 1.4;

/// The bottom-up detector of top-down mode, loaded on first use.
type Detector = Arc<OnceLock<Result<Box<Pipeline>, String>>>;

/// A model with its pre- and post-processing.
#[derive(Clone, Debug)]
pub struct Pipeline {
    model: Model,
    config: PipelineConfig,
    detector: Detector,
    /// The last frame a temporal model's state came from (copied with the pipeline, like
    /// the model's state).
    track: temporal::TrackCell,
}

/// A whole frame prepared for the network ahead of [`Pipeline::run_ahead`] (see
/// [`Pipeline::prepare_whole`]).
#[derive(Clone, Debug)]
pub struct WholeInput {
    prepared: Prepared,
    /// Single-person models: the person's centre in input pixels.
    center_input: Option<(f64, f64)>,
}

impl WholeInput {
    /// The network input.
    pub fn prepared(&self) -> &Prepared {
        &self.prepared
    }

    /// Single-person models with a centre map: the person's centre in input pixels.
    pub fn center_input(&self) -> Option<(f64, f64)> {
        self.center_input
    }
}

/// One run of the network on one prepared input.
struct Run {
    prepared: Prepared,
    stages: Vec<crate::models::StageOutput>,
    features: Vec<crate::models::FeatureMap>,
    steps: Vec<crate::models::StepTime>,
    center_input: Option<(f64, f64)>,
}

impl Pipeline {
    pub fn new(model: Model, config: PipelineConfig) -> Self {
        Self {
            model,
            config,
            detector: Arc::new(OnceLock::new()),
            track: temporal::TrackCell::default(),
        }
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    pub fn config(&self) -> &PipelineConfig {
        &self.config
    }

    /// The decoders' settings from this pipeline's configuration.
    pub fn decode_params(&self) -> DecodeParams<'_> {
        DecodeParams {
            paf: &self.config.paf,
            ae: &self.config.ae.params,
            dark: self.config.dark,
        }
    }

    fn run_prepared(
        &self,
        prepared: Prepared,
        center_input: Option<(f64, f64)>,
        memory: Memory,
        name: &str,
    ) -> Result<Run, PipelineError> {
        let input = crate::device::upload(
            prepared.data.clone(),
            (1, 3, prepared.height as usize, prepared.width as usize),
            self.model.device(),
        )
        .map_err(|source| PipelineError::Input {
            frame: name.to_string(),
            source: Box::new(source),
        })?;
        let options = RunOptions {
            center: center_input,
            memory,
        };
        let out = self
            .model
            .run(&input, &options)
            .map_err(|source| PipelineError::Model {
                frame: name.to_string(),
                source,
            })?;
        Ok(Run {
            prepared,
            stages: out.stages,
            features: out.features,
            steps: out.steps,
            center_input,
        })
    }

    /// The whole frame, prepared as configured (or as [`Pipeline::prepare_whole`] prepared
    /// it ahead); single-person models get the centre.
    fn run_whole(
        &self,
        frame: &Frame,
        memory: Memory,
        name: &str,
        ahead: Option<WholeInput>,
    ) -> Result<Run, PipelineError> {
        let input = match ahead {
            Some(input) => input,
            None => self.whole_input(frame, name)?,
        };
        self.run_prepared(input.prepared, input.center_input, memory, name)
    }

    /// The whole frame resized and laid out for the network, with the single-person centre
    /// in input pixels.
    fn whole_input(&self, frame: &Frame, name: &str) -> Result<WholeInput, PipelineError> {
        let prepared =
            preprocess::prepare(&frame.image, &self.config.preprocess).map_err(|source| {
                PipelineError::Preprocess {
                    frame: name.to_string(),
                    source,
                }
            })?;
        let center_input = if self.model.takes_center() {
            let (w, h) = frame.image.dimensions();
            let c = self
                .config
                .center
                .unwrap_or((f64::from(w) / 2.0 - 0.5, f64::from(h) / 2.0 - 0.5));
            prepared
                .image_from_input
                .inverse()
                .map(|inv| inv.apply(c.0, c.1))
        } else {
            None
        };
        Ok(WholeInput {
            prepared,
            center_input,
        })
    }

    /// True when [`Pipeline::run`] feeds the network the whole frame, prepared once: not
    /// for associative-embedding models (several scales and a flip, prepared inside) nor for
    /// single-person models on detected people or a user's box (crops).
    pub fn runs_whole_frame(&self) -> bool {
        match self.model.info().decoding {
            Decoding::AssociativeEmbedding => false,
            Decoding::SinglePerson => match self.config.person {
                PersonMode::Centre => true,
                PersonMode::Box => self.config.user_box.is_none(),
                PersonMode::TopDown => false,
            },
            _ => true,
        }
    }

    /// The first step of [`Pipeline::run`] on its own, so that it can run on another thread
    /// while the network works on the previous frame: the whole frame resized and laid out
    /// for the network. `Ok(None)` when this pipeline does not run on the whole frame (see
    /// [`Pipeline::runs_whole_frame`]); [`Pipeline::run_ahead`] then does all the work.
    pub fn prepare_whole(&self, frame: &Frame) -> Result<Option<WholeInput>, PipelineError> {
        if !self.runs_whole_frame() {
            return Ok(None);
        }
        self.whole_input(frame, &frame.output_stem).map(Some)
    }

    /// [`Pipeline::run`] on an input [`Pipeline::prepare_whole`] made from this `frame` with
    /// this pipeline's settings: the same result, without the preprocessing. With `None`,
    /// or when the pipeline does not run on the whole frame, exactly [`Pipeline::run`].
    pub fn run_ahead(
        &self,
        frame: Frame,
        ahead: Option<WholeInput>,
    ) -> Result<Inspection, PipelineError> {
        match ahead {
            Some(input) if self.runs_whole_frame() => {
                self.run_on(frame, Vec::new(), None, Instant::now(), Some(input))
            }
            _ => self.run(frame),
        }
    }

    /// The detector pipeline (the embedded bottom-up model on the same device).
    fn detector(&self) -> Result<&Pipeline, String> {
        let d = self.detector.get_or_init(|| {
            let model = Model::load(DEFAULT_MODEL, self.model.device())
                .map_err(|e| format!("cannot load the person detector '{DEFAULT_MODEL}': {e}"))?;
            let config = PipelineConfig::for_model(&model);
            Ok(Box::new(Pipeline::new(model, config)))
        });
        d.as_deref().map_err(Clone::clone)
    }

    /// Top-down: the people the detector finds, one crop each (largest first).
    fn crops(&self, frame: &Frame, name: &str) -> Result<Vec<PersonCrop>, PipelineError> {
        let detector = self.detector().map_err(|message| PipelineError::Decode {
            frame: name.to_string(),
            message,
        })?;
        let found = detector.run(frame.clone())?;
        let (w, h) = self.config.preprocess.size;
        let aspect = f64::from(w) / f64::from(h.max(1));
        let mut crops: Vec<PersonCrop> = found
            .people
            .iter()
            .filter(|p| p.joint_count() >= 4)
            .filter_map(|p| {
                let pts: Vec<(f64, f64)> = p
                    .keypoints
                    .iter()
                    .flatten()
                    .map(|k| (f64::from(k.x), f64::from(k.y)))
                    .collect();
                Some(PersonCrop {
                    bbox: person_box(&pts, aspect, self.config.crop_padding)?,
                    score: p.score,
                })
            })
            .collect();
        let area = |c: &PersonCrop| (c.bbox[2] - c.bbox[0]) * (c.bbox[3] - c.bbox[1]);
        crops.sort_by(|a, b| area(b).total_cmp(&area(a)));
        Ok(crops)
    }

    /// Processes one frame.
    pub fn run(&self, frame: Frame) -> Result<Inspection, PipelineError> {
        if self.model.info().decoding == Decoding::AssociativeEmbedding {
            return self.run_associative(frame);
        }
        let start = Instant::now();
        let name = frame.output_stem.clone();
        let single = self.model.info().decoding == Decoding::SinglePerson;
        let mode = if single {
            self.config.person
        } else {
            PersonMode::Centre
        };

        let mut crops = Vec::new();
        let mut detector_time = None;
        match (mode, self.config.user_box) {
            (PersonMode::TopDown, _) => {
                let t0 = Instant::now();
                crops = self.crops(&frame, &name)?;
                detector_time = Some(t0.elapsed());
            }
            (PersonMode::Box, Some(b)) => {
                let (w, h) = frame.image.dimensions();
                let b = clamp_box(b, w, h).map_err(|source| PipelineError::PersonBox {
                    frame: name,
                    source,
                })?;
                crops.push(PersonCrop {
                    bbox: self.crop_box(b),
                    score: 1.0,
                });
            }
            // No box yet: the whole frame.
            (PersonMode::Box, None) | (PersonMode::Centre, _) => {}
        }
        self.run_on(frame, crops, detector_time, start, None)
    }

    /// The crop actually sampled for a person box `(x0, y0, x1, y1)` (a user's box, in
    /// image pixels): widened to the network input's aspect ratio about its centre and
    /// enlarged by [`PipelineConfig::crop_padding`], as the boxes of detected people.
    pub fn crop_box(&self, b: [f64; 4]) -> [f64; 4] {
        let (w, h) = self.config.preprocess.size;
        let aspect = f64::from(w) / f64::from(h.max(1));
        let corners = [(b[0], b[1]), (b[2], b[3])];
        person_box(&corners, aspect, self.config.crop_padding).unwrap_or(b)
    }

    /// Runs the model on one given person box instead of the whole frame or detected people
    /// (single-person models; e.g. an annotated person's box in evaluation). `bbox` is
    /// `(x0, y0, x1, y1)` in image pixels and should have the network input's aspect ratio
    /// (see [`person_box`]); the crop is sampled as in top-down mode.
    pub fn run_crop(&self, frame: Frame, bbox: [f64; 4]) -> Result<Inspection, PipelineError> {
        let crop = PersonCrop { bbox, score: 1.0 };
        self.run_on(frame, vec![crop], None, Instant::now(), None)
    }

    /// The whole frame (no crops) or every crop, decoded; the focused crop's maps are kept.
    fn run_on(
        &self,
        frame: Frame,
        crops: Vec<PersonCrop>,
        detector_time: Option<std::time::Duration>,
        start: Instant,
        ahead: Option<WholeInput>,
    ) -> Result<Inspection, PipelineError> {
        let name = frame.output_stem.clone();
        let t_pre = start.elapsed();

        let t0 = Instant::now();
        // Temporal models: carry the state from the previous frame or start a clip. With
        // several people every crop starts its own clip (one state cannot follow them all).
        let temporal = self.model.is_temporal();
        let (memory, status) = if temporal {
            let (m, s) = self.track.decide(
                frame.path.as_deref(),
                frame.index,
                self.config.without_memory,
                crops.len() > 1,
            );
            (m, Some(s))
        } else {
            (Memory::Carry, None)
        };
        let ran = self.run_all(&frame, &crops, memory, &name, ahead);
        if temporal {
            let keeps = ran.is_ok() && status.is_some_and(|s| s.keeps_state());
            let carried = status.map_or(0, |s| s.carried_frames());
            self.track
                .finish(frame.path.as_deref(), frame.index, keeps, carried);
        }
        let mut runs = ran?;
        let t_forward = t0.elapsed();

        let t0 = Instant::now();
        let focus = if crops.is_empty() {
            None
        } else {
            Some(focus_crop(&crops, self.config.center))
        };
        let joints = self.model.joints();
        let mut people = Vec::new();
        for run in &runs {
            let Some(last) = run.stages.last() else {
                continue;
            };
            let to_image = stage_to_image(&run.prepared, last, self.config.grid);
            // Bottom-up AE models are grouped by `run_associative` (aggregated resolutions).
            let decoding = self.model.info().decoding;
            let found = if decoding == Decoding::AssociativeEmbedding {
                Vec::new()
            } else {
                decode::decode(
                    decoding,
                    decode::StageMaps {
                        heatmaps: &last.heatmaps,
                        pafs: last.pafs.as_ref(),
                        tags: last.tags.as_ref(),
                    },
                    joints.len(),
                    &self.decode_params(),
                )
                .map_err(|e| PipelineError::Decode {
                    frame: name.clone(),
                    message: e.to_string(),
                })?
            };
            people.extend(found.iter().map(|p| p.transformed(&to_image)));
        }
        let t_decode = t0.elapsed();

        let kept = focus.unwrap_or(0);
        let run = if kept < runs.len() {
            runs.swap_remove(kept)
        } else {
            return Err(PipelineError::Decode {
                frame: name,
                message: "the network produced no output".into(),
            });
        };
        let map_to_image = match run.stages.last() {
            Some(last) => stage_to_image(&run.prepared, last, self.config.grid),
            None => run.prepared.image_from_input,
        };
        let input_size = (run.prepared.width, run.prepared.height);
        let mut steps = run.steps;
        if let Some(t) = detector_time {
            steps.insert(
                0,
                crate::models::StepTime {
                    name: "detector".into(),
                    time: t,
                },
            );
        }
        let center = run
            .center_input
            .map(|(x, y)| run.prepared.image_from_input.apply(x, y));
        let (width, height) = frame.image.dimensions();
        Ok(Inspection {
            model_id: self.model.id().to_string(),
            decoding: self.model.info().decoding,
            joints,
            frame: FrameInfo {
                index: frame.index,
                timestamp: frame.timestamp,
                path: frame.path,
                output_stem: frame.output_stem,
                width,
                height,
            },
            image: Arc::new(frame.image),
            input_size,
            map_to_image,
            grid: self.config.grid,
            image_from_input: run.prepared.image_from_input,
            receptive_fields: self.model.receptive_fields(input_size),
            stages: run.stages,
            features: run.features,
            people,
            grouping: None,
            center,
            crops,
            focus,
            memory: status,
            timings: Timings {
                preprocess: t_pre,
                steps,
                forward: t_forward,
                decode: t_decode,
                total: start.elapsed(),
            },
        })
    }
}

impl Pipeline {
    /// Runs the model on the whole frame (no crops) or on every crop.
    fn run_all(
        &self,
        frame: &Frame,
        crops: &[PersonCrop],
        memory: Memory,
        name: &str,
        ahead: Option<WholeInput>,
    ) -> Result<Vec<Run>, PipelineError> {
        if crops.is_empty() {
            return Ok(vec![self.run_whole(frame, memory, name, ahead)?]);
        }
        let mut runs = Vec::with_capacity(crops.len());
        let (w, h) = self.config.preprocess.size;
        for c in crops {
            let s = (c.bbox[2] - c.bbox[0]) / f64::from(w);
            let image_from_input = Affine2::scale_translate(
                s,
                s,
                (c.bbox[0] + c.bbox[2]) / 2.0 - (f64::from(w) - 1.0) / 2.0 * s,
                (c.bbox[1] + c.bbox[3]) / 2.0 - (f64::from(h) - 1.0) / 2.0 * s,
            );
            let prepared = preprocess::prepare_affine(
                &frame.image,
                image_from_input,
                (w, h),
                self.config.preprocess.norm,
            )
            .map_err(|source| PipelineError::Preprocess {
                frame: name.to_string(),
                source,
            })?;
            let center = self
                .model
                .takes_center()
                .then_some(((f64::from(w) - 1.0) / 2.0, (f64::from(h) - 1.0) / 2.0));
            // A mirrored pass would step a temporal model's state: no flip test there.
            let flipped = if self.config.topdown_flip && !self.model.is_temporal() {
                Some(self.run_prepared(mirrored(&prepared), center, memory, name)?)
            } else {
                None
            };
            let mut run = self.run_prepared(prepared, center, memory, name)?;
            if let Some(flipped) = flipped {
                self.merge_flipped(&mut run, flipped);
            }
            runs.push(run);
        }
        Ok(runs)
    }
}

impl Pipeline {
    /// The top-down flip test: the mirrored crop's last stage, mirrored back (joint pairs
    /// swapped, shifted one cell right where the official test does), averaged into `run`'s
    /// last stage; the other stages stay the plain pass's. The mirrored pass's step times
    /// are added as one `flip test` step.
    fn merge_flipped(&self, run: &mut Run, flipped: Run) {
        let index = flip_index(self.model.joints());
        let shift = self.model.info().architecture.flip_shifts_heatmap();
        if let (Some(last), Some(f)) = (run.stages.last_mut(), flipped.stages.last()) {
            let back = single::flip_back(&f.heatmaps, &index, shift);
            if let Some(avg) = single::average(&last.heatmaps, &back) {
                last.heatmaps = avg;
            }
        }
        run.steps.push(crate::models::StepTime {
            name: "flip test".into(),
            time: flipped.steps.iter().map(|s| s.time).sum(),
        });
    }

    /// Bottom-up associative-embedding models: the official test-time procedure
    /// ([`ae`]: resolutions aggregated, flip test, scales) and grouping.
    fn run_associative(&self, frame: Frame) -> Result<Inspection, PipelineError> {
        let start = Instant::now();
        let name = frame.output_stem.clone();
        let t0 = Instant::now();
        let run = ae::run(self, &frame, &name)?;
        let forward = t0.elapsed();
        let decode = run
            .steps
            .iter()
            .filter(|s| s.name.starts_with("group") || s.name.starts_with("aggregate"))
            .map(|s| s.time)
            .sum();
        let input_size = (run.prepared.width, run.prepared.height);
        let map_to_image = match run.stages.last() {
            Some(last) => stage_to_image(&run.prepared, last, self.config.grid),
            None => run.prepared.image_from_input,
        };
        let (width, height) = frame.image.dimensions();
        Ok(Inspection {
            model_id: self.model.id().to_string(),
            decoding: self.model.info().decoding,
            joints: self.model.joints(),
            frame: FrameInfo {
                index: frame.index,
                timestamp: frame.timestamp,
                path: frame.path,
                output_stem: frame.output_stem,
                width,
                height,
            },
            image: Arc::new(frame.image),
            input_size,
            map_to_image,
            grid: self.config.grid,
            image_from_input: run.prepared.image_from_input,
            receptive_fields: self.model.receptive_fields(input_size),
            stages: run.stages,
            features: run.features,
            people: run.people,
            grouping: Some(run.grouping),
            center: None,
            crops: Vec::new(),
            focus: None,
            memory: None,
            timings: Timings {
                preprocess: std::time::Duration::ZERO,
                steps: run.steps,
                forward: forward.saturating_sub(decode),
                decode,
                total: start.elapsed(),
            },
        })
    }
}

/// The prepared input mirrored left–right (same mapping to the image: the maps of the
/// mirrored pass are mirrored back before use).
fn mirrored(p: &Prepared) -> Prepared {
    let mut data = p.data.clone();
    for row in data.chunks_exact_mut((p.width as usize).max(1)) {
        row.reverse();
    }
    Prepared {
        data,
        width: p.width,
        height: p.height,
        image_from_input: p.image_from_input,
    }
}

/// Map pixel → image pixel for one stage's grid, which spans the whole network input.
fn stage_to_image(
    prepared: &Prepared,
    stage: &crate::models::StageOutput,
    grid: GridAlign,
) -> Affine2 {
    let fx = f64::from(prepared.width) / stage.heatmaps.width().max(1) as f64;
    let fy = f64::from(prepared.height) / stage.heatmaps.height().max(1) as f64;
    prepared.image_from_input.after(&grid.grid_to_input(fx, fy))
}

/// A box around `points` with the model's aspect ratio (`width / height`), enlarged by
/// `padding`, as `(x0, y0, x1, y1)`; `None` without points.
pub fn person_box(points: &[(f64, f64)], aspect: f64, padding: f64) -> Option<[f64; 4]> {
    let first = points.first()?;
    let (mut x0, mut y0, mut x1, mut y1) = (first.0, first.1, first.0, first.1);
    for &(x, y) in points {
        x0 = x0.min(x);
        y0 = y0.min(y);
        x1 = x1.max(x);
        y1 = y1.max(y);
    }
    let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
    // At least a few pixels, then widen the narrow side to the aspect ratio.
    let (mut w, mut h) = ((x1 - x0).max(8.0), (y1 - y0).max(8.0));
    if w > aspect * h {
        h = w / aspect;
    } else {
        w = h * aspect;
    }
    let (w, h) = (w * padding, h * padding);
    Some([cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0])
}

/// The crop whose box contains `point` (the nearest centre among those), else the first
/// (largest).
fn focus_crop(crops: &[PersonCrop], point: Option<(f64, f64)>) -> usize {
    let Some((px, py)) = point else {
        return 0;
    };
    crops
        .iter()
        .enumerate()
        .filter(|(_, c)| px >= c.bbox[0] && px <= c.bbox[2] && py >= c.bbox[1] && py <= c.bbox[3])
        .min_by(|(_, a), (_, b)| {
            let d = |c: &PersonCrop| {
                ((c.bbox[0] + c.bbox[2]) / 2.0 - px).hypot((c.bbox[1] + c.bbox[3]) / 2.0 - py)
            };
            d(a).total_cmp(&d(b))
        })
        .map_or(0, |(i, _)| i)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn person_box_has_the_aspect_and_padding() {
        let b = person_box(&[(10.0, 20.0), (30.0, 100.0)], 1.0, 1.5).unwrap();
        // 20 × 80 → 80 × 80 → 120 × 120 around (20, 60).
        assert_eq!(b, [-40.0, 0.0, 80.0, 120.0]);
        assert!(person_box(&[], 1.0, 1.0).is_none());
    }

    #[test]
    fn user_boxes_are_ordered_clamped_and_degenerate_ones_refused() {
        // Any corner order; clamped to the image's pixel area (-0.5..w-0.5).
        assert_eq!(
            clamp_box([50.0, 80.0, 10.0, 20.0], 100, 60),
            Ok([10.0, 20.0, 50.0, 59.5])
        );
        assert_eq!(
            clamp_box([-30.0, -5.0, 500.0, 40.0], 100, 60),
            Ok([-0.5, -0.5, 99.5, 40.0])
        );
        // Too thin, entirely outside, or not a number: refused with a message.
        let e = clamp_box([10.0, 10.0, 12.0, 50.0], 100, 60).unwrap_err();
        assert!(matches!(e, BoxError::TooSmall { .. }));
        assert!(e.to_string().contains("at least 4 px"), "{e}");
        assert!(clamp_box([200.0, 10.0, 300.0, 50.0], 100, 60).is_err());
        assert!(matches!(
            clamp_box([f64::NAN, 0.0, 10.0, 10.0], 100, 60),
            Err(BoxError::NotFinite(_))
        ));
    }

    #[test]
    fn focus_picks_the_box_under_the_point() {
        let crops = [
            PersonCrop {
                bbox: [0.0, 0.0, 100.0, 100.0],
                score: 1.0,
            },
            PersonCrop {
                bbox: [80.0, 0.0, 120.0, 50.0],
                score: 1.0,
            },
        ];
        assert_eq!(focus_crop(&crops, None), 0);
        assert_eq!(focus_crop(&crops, Some((95.0, 20.0))), 1);
        assert_eq!(focus_crop(&crops, Some((10.0, 90.0))), 0);
        assert_eq!(focus_crop(&crops, Some((500.0, 500.0))), 0);
    }
}
