//! Accuracy evaluation of a model on an annotated dataset: PCK@α, PCKh@α or COCO OKS AP,
//! for every stage of multi-stage networks.
//!
//! [`run`] reads the annotations ([`datasets`]), loads the model, runs it on every image
//! and scores the predictions ([`metrics`], [`coco`]); [`run_with`] does the same with an
//! already built [`Pipeline`]. A progress callback sees every image and may cancel.
//! [`external::score_file`] scores a results file made by another program the same way.
//!
//! How predictions are made:
//! - **Single-person models** ([`Decoding::SinglePerson`]) run on the whole image
//!   ([`PersonInput::Whole`]: the model's own resize mode, the person centre at the image
//!   centre for models that take one) or on each annotated person's box
//!   ([`PersonInput::Box`]: the box around the annotated joints, widened to the network
//!   input's aspect ratio and enlarged by [`BOX_PADDING`], sampled like the top-down crops of
//!   [`Pipeline`]; people with fewer than two annotated joints get no prediction).
//! - **Multi-person models** ([`Decoding::Paf`], [`Decoding::AssociativeEmbedding`]) run on
//!   the whole image.
//! - Every stage's maps are decoded on their own (single-person: [`single::decode`]; PAF:
//!   [`paf::decode`] on that stage's heatmaps and PAFs) and mapped to image pixels, then to
//!   the dataset's joint set with [`JointMap`]; joints the model cannot predict are left out
//!   of the scores.
//!
//! How predictions meet annotations: for OKS AP, every predicted person is a detection
//! (score = the person's score) and COCOeval matches them. For PCK/PCKh, in box mode each
//! annotated person has its own prediction; otherwise predictions are assigned to annotated
//! people by [`metrics::assign_predictions`] (most joints correct first, then nearest), and
//! an annotated person without a prediction counts all its joints as wrong. Crowd
//! annotations and people without annotated joints are not scored for PCK.

pub mod chart;
pub mod coco;
pub mod datasets;
pub mod external;
pub mod failures;
pub mod metrics;
mod scoring;

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::models::{Decoding, Model};
use crate::pipeline::{person_box, Pipeline, PipelineConfig};
use crate::pose::decode::{self, DecodeParams};
use crate::pose::joint_map::{JointMap, JointMapEntry, JointSource};
use crate::pose::Person;
use crate::source::{FrameSource, ImageSource};

use scoring::{checked_images, definition, headline, score_stages, threshold};

pub use crate::export::formats::coco::CocoResult;
pub use datasets::{Dataset, DatasetError, Format};
pub use metrics::Comparison;

/// Padding of annotated-person boxes ([`PersonInput::Box`]): the usual 1.25 of top-down
/// evaluation.
pub const BOX_PADDING: f64 = 1.25;

/// The score computed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Metric {
    /// PCK@α, torso or bounding-box normalised (MMPose `keypoint_pck_accuracy`).
    #[default]
    Pck,
    /// PCKh@α, head-size normalised (the MPII toolkit).
    Pckh,
    /// COCO keypoint AP/AR over OKS (pycocotools COCOeval).
    OksAp,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::Pck => "pck",
            Metric::Pckh => "pckh",
            Metric::OksAp => "oks-ap",
        }
    }

    /// α when none is given: 0.2 for PCK, 0.5 for PCKh (none for OKS AP).
    pub fn default_alpha(self) -> Option<f64> {
        match self {
            Metric::Pck => Some(0.2),
            Metric::Pckh => Some(0.5),
            Metric::OksAp => None,
        }
    }
}

impl std::str::FromStr for Metric {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "pck" => Ok(Metric::Pck),
            "pckh" => Ok(Metric::Pckh),
            "oks-ap" | "oks" | "ap" | "coco" => Ok(Metric::OksAp),
            _ => Err(format!("unknown metric '{s}': use pck, pckh or oks-ap")),
        }
    }
}

/// PCK's reference length (see [`metrics`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Norm {
    #[default]
    Torso,
    Bbox,
}

impl std::str::FromStr for Norm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "torso" => Ok(Norm::Torso),
            "bbox" | "box" => Ok(Norm::Bbox),
            _ => Err(format!("unknown normalisation '{s}': use torso or bbox")),
        }
    }
}

/// What single-person models see.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PersonInput {
    /// The whole image.
    #[default]
    Whole,
    /// A crop around each annotated person.
    Box,
}

impl std::str::FromStr for PersonInput {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "whole" | "image" => Ok(PersonInput::Whole),
            "box" | "crop" => Ok(PersonInput::Box),
            _ => Err(format!("unknown person input '{s}': use whole or box")),
        }
    }
}

/// Everything an evaluation needs.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalConfig {
    /// Catalogue id or weights file.
    pub model: String,
    /// Compute device (`cpu`, `cuda:N`, `metal`).
    pub device: String,
    pub annotations: PathBuf,
    /// Directory the annotations' file names are relative to.
    pub images: PathBuf,
    pub metric: Metric,
    /// Threshold; `None` = the metric's default.
    pub alpha: Option<f64>,
    /// PCK reference length (PCK only).
    pub norm: Norm,
    pub person: PersonInput,
    /// Evaluate only the first N images.
    pub limit: Option<usize>,
    /// Network input `(width, height)`; `None` = the model's own.
    pub input_size: Option<(u32, u32)>,
    /// Where map cells sit on the input; `None` = the network's own convention.
    pub grid: Option<crate::pose::GridAlign>,
    /// How whole images are fitted to the input box; `None` = the model's own.
    pub resize: Option<crate::preprocess::ResizeMode>,
    /// The resize filter; `None` = the model's own.
    pub filter: Option<crate::preprocess::ResizeFilter>,
}

impl EvalConfig {
    /// Defaults for a model and a dataset: PCK@0.2, torso, whole image, all images.
    pub fn new(model: &str, annotations: &Path, images: &Path) -> Self {
        Self {
            model: model.to_string(),
            device: "cpu".into(),
            annotations: annotations.to_path_buf(),
            images: images.to_path_buf(),
            metric: Metric::Pck,
            alpha: None,
            norm: Norm::Torso,
            person: PersonInput::Whole,
            limit: None,
            input_size: None,
            grid: None,
            resize: None,
            filter: None,
        }
    }
}

/// Why an evaluation failed.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error("loading model '{name}': {source}")]
    Model {
        name: String,
        #[source]
        source: crate::models::ModelError,
    },
    #[error("device '{0}': {1}")]
    Device(String, String),
    #[error("{0}")]
    Config(String),
    #[error("image '{path}': {message}")]
    Image { path: String, message: String },
    #[error(transparent)]
    Source(#[from] crate::source::SourceError),
    #[error("{0}")]
    Pipeline(#[from] crate::pipeline::PipelineError),
    #[error("'{0}' lists no images")]
    NoImages(String),
    #[error("evaluation cancelled")]
    Cancelled,
}

/// Where an evaluation is, for the progress callback.
#[derive(Clone, Copy, Debug)]
pub struct Progress<'a> {
    /// Images finished so far.
    pub done: usize,
    pub total: usize,
    /// The image just finished.
    pub image: &'a str,
}

/// Every setting an evaluation used.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Settings {
    /// The model as asked for (id or path).
    pub model: String,
    /// The model's id (catalogue id or weights file stem).
    pub model_id: String,
    pub model_joints: String,
    /// `paf` or `single-person`.
    pub decoding: String,
    pub device: String,
    pub metric: Metric,
    /// The threshold (PCK/PCKh); `None` for OKS AP.
    pub alpha: Option<f64>,
    /// PCK's reference (PCK only).
    pub norm: Option<Norm>,
    /// How distances meet the threshold (`strict`: `<`, `inclusive`: `≤`).
    pub comparison: Option<Comparison>,
    pub person: PersonInput,
    /// Box padding in box mode.
    pub box_padding: Option<f64>,
    /// Network input `[width, height]`.
    pub input_size: [u32; 2],
    /// The model's resize mode for whole images.
    pub resize: String,
    /// The resize filter (`antialiased`, `cv-cubic`).
    #[serde(default)]
    pub filter: String,
    /// Where map cells sit on the input (`centre`, `corner`).
    pub grid: String,
    pub annotations: String,
    pub images: String,
    pub format: Format,
    pub dataset_joints: String,
    pub limit: Option<usize>,
    /// How each dataset joint is obtained from the model's joints.
    pub joint_mapping: Vec<JointMapEntry>,
}

/// What was counted.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Counts {
    pub images: usize,
    /// People scored (PCK/PCKh: annotated people with a reference length and annotated
    /// joints; OKS: non-ignored annotations).
    pub people: usize,
    /// Annotated people not scored (crowds, no annotated joints, no reference length).
    pub people_skipped: usize,
    /// Joints scored (PCK/PCKh: annotated joints the model can predict, final stage; OKS:
    /// labelled keypoints of non-ignored annotations).
    pub joints: u64,
    /// PCKh: people whose head size came from the head segment (no head box in the file).
    pub head_from_segment: usize,
    /// Predicted people (final stage).
    pub predictions: usize,
}

/// One joint's score.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JointScore {
    pub joint: String,
    /// PCK of the joint; `None` when never counted.
    pub value: Option<f64>,
    pub correct: u64,
    pub total: u64,
}

/// One stage's scores.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StageScore {
    /// The model's label for the stage (e.g. `stage 3`).
    pub stage: String,
    /// The headline number: PCK mean of joints, PCKh total, or AP.
    pub value: Option<f64>,
    /// PCK/PCKh: all correct / all counted joints.
    pub pooled: Option<f64>,
    /// PCK/PCKh per dataset joint (empty for OKS AP).
    pub per_joint: Vec<JointScore>,
    /// OKS AP/AR (OKS only).
    pub coco: Option<coco::CocoStats>,
}

/// The result of an evaluation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub posescope_version: String,
    pub settings: Settings,
    pub counts: Counts,
    /// How the headline number is defined.
    pub definition: String,
    /// The final stage's headline number (= `stages.last().value`).
    pub overall: Option<f64>,
    /// The final stage's per-joint scores.
    pub per_joint: Vec<JointScore>,
    /// The final stage's COCO stats (OKS only).
    pub coco: Option<coco::CocoStats>,
    /// Every stage, first to last.
    pub stages: Vec<StageScore>,
    pub elapsed_s: f64,
    /// Median time per image of the model runs (every crop in box mode) and the decoding
    /// of every stage (image decoding excluded).
    pub image_ms_median: f64,
    /// The final stage's predicted people of every image, in the dataset's joint order and
    /// image pixels (not part of the JSON report; see [`Report::coco_results`]).
    #[serde(skip)]
    pub predictions: Vec<ImagePredictions>,
    /// PCK/PCKh: every image's errors per stage, person and scored joint (the failure
    /// browser; empty for OKS AP). See [`failures`].
    pub per_image: Vec<failures::ImageErrors>,
    /// The model's heatmap channel of each dataset joint (`None` where the joint is derived
    /// or absent), to show a joint's maps.
    #[serde(skip)]
    pub model_channels: Vec<Option<usize>>,
}

/// One image's predicted people.
#[derive(Clone, Debug, PartialEq)]
pub struct ImagePredictions {
    /// The dataset's image id (COCO), else the image's position in the file.
    pub image_id: u64,
    pub file_name: String,
    pub people: Vec<Person>,
}

impl Report {
    /// The final stage's predictions as a COCO keypoint results list (the input of
    /// pycocotools' `loadRes`). `posescope eval --metric oks-ap` scores exactly these
    /// triples as `loadRes` reads them (area from all keypoints, `0, 0` ones included), so
    /// pycocotools on this list gives the same numbers.
    pub fn coco_results(&self) -> Vec<CocoResult> {
        self.predictions
            .iter()
            .flat_map(|img| {
                img.people
                    .iter()
                    .map(|p| crate::export::formats::coco::result(img.image_id, &img.file_name, p))
            })
            .collect()
    }
}

/// Reads the annotations, loads the model and evaluates it (see the module docs).
pub fn run(
    config: &EvalConfig,
    progress: &mut dyn FnMut(&Progress) -> ControlFlow<()>,
) -> Result<Report, EvalError> {
    // The annotations first: a bad file fails before the model loads.
    let dataset = datasets::read(&config.annotations)?;
    let spec: crate::device::DeviceSpec =
        config
            .device
            .parse()
            .map_err(|e: crate::device::DeviceError| {
                EvalError::Device(config.device.clone(), e.to_string())
            })?;
    let device = spec
        .open()
        .map_err(|e| EvalError::Device(config.device.clone(), e.to_string()))?;
    let model = Model::load(&config.model, &device).map_err(|source| EvalError::Model {
        name: config.model.clone(),
        source,
    })?;
    let mut pc = PipelineConfig::for_model(&model);
    if let Some(size) = config.input_size {
        pc.preprocess.size = size;
    }
    if let Some(grid) = config.grid {
        pc.grid = grid;
    }
    if let Some(mode) = config.resize {
        pc.preprocess.mode = mode;
    }
    if let Some(filter) = config.filter {
        pc.preprocess.filter = filter;
    }
    let pipeline = Pipeline::new(model, pc);
    run_with(&pipeline, &dataset, config, progress)
}

/// One image's predictions per stage, in the dataset's joint set: either free-standing
/// people (whole-image runs) or one slot per annotated person (box mode).
enum Predictions {
    Free(Vec<Vec<Person>>),
    PerPerson(Vec<Vec<Option<Person>>>),
}

/// Evaluates `pipeline` on `dataset` (the pipeline's preprocessing is used as is; `config`
/// supplies the metric, threshold, person input, limit and the names for the report).
pub fn run_with(
    pipeline: &Pipeline,
    dataset: &Dataset,
    config: &EvalConfig,
    progress: &mut dyn FnMut(&Progress) -> ControlFlow<()>,
) -> Result<Report, EvalError> {
    let start = Instant::now();
    let model = pipeline.model();
    let info = model.info();
    let single_person = info.decoding == Decoding::SinglePerson;
    if config.person == PersonInput::Box && !single_person {
        return Err(EvalError::Config(format!(
            "--person box is for single-person models; '{}' finds people itself and runs on \
             the whole image",
            model.id()
        )));
    }
    let images = checked_images(dataset, config)?;
    let (alpha, comparison) = threshold(config)?;
    let map = JointMap::new(model.joints(), dataset.joints);
    let counted: Vec<bool> = (0..dataset.joints.len())
        .map(|j| map.is_present(j))
        .collect();
    let (w, h) = pipeline.config().preprocess.size;
    let aspect = f64::from(w) / f64::from(h.max(1));

    let mut evaluated: Vec<(&datasets::ImageAnn, Predictions)> = Vec::with_capacity(images.len());
    let mut stage_labels: Vec<String> = Vec::new();
    let mut counts = Counts::default();
    let mut forward_ms = Vec::with_capacity(images.len());
    let mut predictions = Vec::with_capacity(images.len());

    for (done, img) in images.iter().enumerate() {
        let path = config.images.join(&img.file_name);
        let mut frame =
            ImageSource::open(&path)?
                .next_frame()
                .ok_or_else(|| EvalError::Image {
                    path: path.display().to_string(),
                    message: "no frame".into(),
                })??;
        frame.index = done as u64;
        let t0 = Instant::now();
        let (preds, labels) = match config.person {
            PersonInput::Whole => {
                let ins = pipeline.run(frame)?;
                let stages = decode_stages(pipeline, &ins, &img.file_name)?;
                let labels = ins.stages.iter().map(|s| s.label.clone()).collect();
                let mapped = stages
                    .iter()
                    .map(|people| people.iter().map(|p| map.map_person(p)).collect())
                    .collect();
                (Predictions::Free(mapped), labels)
            }
            PersonInput::Box => {
                let mut per_stage: Vec<Vec<Option<Person>>> = Vec::new();
                let mut labels = Vec::new();
                for (k, person) in img.people.iter().enumerate() {
                    let pts: Vec<(f64, f64)> = person.annotated().into_iter().flatten().collect();
                    let bbox = (pts.len() >= 2 && !person.iscrowd)
                        .then(|| person_box(&pts, aspect, BOX_PADDING))
                        .flatten();
                    let Some(bbox) = bbox else { continue };
                    let ins = pipeline.run_crop(frame.clone(), bbox)?;
                    let stages = decode_stages(pipeline, &ins, &img.file_name)?;
                    if per_stage.is_empty() {
                        per_stage = vec![vec![None; img.people.len()]; stages.len()];
                        labels = ins.stages.iter().map(|s| s.label.clone()).collect();
                    }
                    for (t, people) in stages.iter().enumerate() {
                        if let (Some(slot), Some(p)) = (
                            per_stage.get_mut(t).and_then(|s| s.get_mut(k)),
                            people.first(),
                        ) {
                            *slot = Some(map.map_person(p));
                        }
                    }
                }
                (Predictions::PerPerson(per_stage), labels)
            }
        };
        forward_ms.push(t0.elapsed().as_secs_f64() * 1e3);
        if labels.len() > stage_labels.len() {
            stage_labels = labels;
        }
        let final_people: Vec<Person> = match &preds {
            Predictions::Free(s) => s.last().cloned().unwrap_or_default(),
            Predictions::PerPerson(s) => s
                .last()
                .map(|v| v.iter().flatten().cloned().collect())
                .unwrap_or_default(),
        };
        counts.predictions += final_people.len();
        predictions.push(ImagePredictions {
            image_id: img.id,
            file_name: img.file_name.clone(),
            people: final_people,
        });
        evaluated.push((*img, preds));
        counts.images += 1;
        if progress(&Progress {
            done: done + 1,
            total: images.len(),
            image: &img.file_name,
        })
        .is_break()
        {
            return Err(EvalError::Cancelled);
        }
    }

    let (stages, per_image) = score_stages(
        dataset,
        config,
        (alpha, comparison),
        &counted,
        &evaluated,
        &stage_labels,
        &mut counts,
    )?;
    let (overall, per_joint, coco) = headline(&stages);
    forward_ms.sort_by(f64::total_cmp);
    let settings = Settings {
        model: config.model.clone(),
        model_id: model.id().to_string(),
        model_joints: model.joints().id.to_string(),
        decoding: info.decoding.name().into(),
        device: config.device.clone(),
        metric: config.metric,
        alpha,
        norm: (config.metric == Metric::Pck).then_some(config.norm),
        comparison,
        person: config.person,
        box_padding: (config.person == PersonInput::Box).then_some(BOX_PADDING),
        input_size: [w, h],
        resize: pipeline.config().preprocess.mode.name().into(),
        filter: pipeline.config().preprocess.filter.name().into(),
        grid: pipeline.config().grid.name().into(),
        annotations: config.annotations.display().to_string(),
        images: config.images.display().to_string(),
        format: dataset.format,
        dataset_joints: dataset.joints.id.to_string(),
        limit: config.limit,
        joint_mapping: map.describe(),
    };
    Ok(Report {
        posescope_version: env!("CARGO_PKG_VERSION").to_string(),
        settings,
        counts,
        definition: definition(config.metric, alpha, config.norm),
        overall,
        per_joint,
        coco,
        stages,
        elapsed_s: start.elapsed().as_secs_f64(),
        image_ms_median: forward_ms.get(forward_ms.len() / 2).copied().unwrap_or(0.0),
        predictions,
        per_image,
        model_channels: map
            .sources
            .iter()
            .map(|s| match s {
                JointSource::Same(i) | JointSource::StandIn(i) => Some(*i),
                JointSource::Midpoint(..) | JointSource::Absent => None,
            })
            .collect(),
    })
}

/// Decodes every stage of an inspection into people in image pixels, in the model's joint
/// order.
fn decode_stages(
    pipeline: &Pipeline,
    ins: &crate::inspection::Inspection,
    name: &str,
) -> Result<Vec<Vec<Person>>, EvalError> {
    let joints = pipeline.model().joints().len();
    let decoding = pipeline.model().info().decoding;
    let last = ins.stages.len().saturating_sub(1);
    ins.stages
        .iter()
        .enumerate()
        .map(|(t, stage)| {
            let to_image = ins.stage_to_image(t);
            // The final stage of the bottom-up models is what the pipeline decoded already
            // (PAF; AE on the aggregated maps). Every other stage is decoded here, each AE
            // resolution with output_0's tags resized to it, in this crate's pixel-centre
            // convention; single-person stages with the plain argmax.
            let bottom_up = decoding != Decoding::SinglePerson;
            if bottom_up && t == last {
                return Ok(ins.people.clone());
            }
            let tags = match decoding {
                Decoding::AssociativeEmbedding => ins.stages.first().and_then(|s| s.tags.as_ref()),
                _ => stage.tags.as_ref(),
            };
            let params = DecodeParams {
                dark: false,
                ..pipeline.decode_params()
            };
            let people = decode::decode(
                decoding,
                decode::StageMaps {
                    heatmaps: &stage.heatmaps,
                    pafs: stage.pafs.as_ref(),
                    tags,
                },
                joints,
                &params,
            )
            .map_err(|e| EvalError::Image {
                path: name.to_string(),
                message: format!("decoding {}: {e}", stage.label),
            })?;
            Ok(people.iter().map(|p| p.transformed(&to_image)).collect())
        })
        .collect()
}
