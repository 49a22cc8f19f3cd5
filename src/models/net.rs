//! What the rest of the program asks of a network ([`PoseNet`]), what a run returns
//! ([`RunOutput`]: typed stages, features, step times), and how a catalogue entry builds a
//! network from its weights is in [`super::info`].
//!
//! Each network file in [`super::nets`] implements [`PoseNet`] and exports one
//! `pub static ARCHITECTURE` (or one per variant) that the catalogue entries point to.
//! Nothing outside the network's file needs to know its type.

use candle_core::Tensor;

use super::features::{FeatureMap, FeatureTensor};
use super::receptive::ReceptiveField;
use super::timing::StepTime;
use crate::pose::Maps;

/// One stage's maps on the CPU, `[K, H, W]`. Stages of one model may differ in resolution
/// (e.g. the levels of an hourglass); each map grid spans the whole network input.
#[derive(Clone, Debug, PartialEq)]
pub struct StageOutput {
    /// What the stage is called in the model (e.g. `stage 3`, `hourglass_out_1`).
    pub label: String,
    /// The stage's name in the maps file (`{key}.heatmaps`, `{key}.pafs`, `{key}.tags`):
    /// `stage{t}` (1-based) for staged networks, `res0` / `res1` / `aggregated` for
    /// HigherHRNet's resolutions.
    pub key: String,
    /// Joint confidence maps: the joints in the model's [`crate::pose::JointSet`] order
    /// first, then any background channel (moved there from wherever the network puts it).
    pub heatmaps: Maps,
    /// Part affinity fields, for PAF models.
    pub pafs: Option<Maps>,
    /// Associative-embedding tag maps `[K, H, W]` (one tag per joint), for bottom-up AE
    /// models (HigherHRNet); with flip test or several scales, the tag dimensions are
    /// stacked as `K × L` channels, dimension-major (`l * K + k`).
    pub tags: Option<Maps>,
}

impl StageOutput {
    /// A heatmaps-only stage.
    pub fn heatmaps(label: impl Into<String>, key: impl Into<String>, heatmaps: Maps) -> Self {
        Self {
            label: label.into(),
            key: key.into(),
            heatmaps,
            pafs: None,
            tags: None,
        }
    }
}

/// What a run returns: every stage's maps, the intermediate activations the model exposes
/// (empty for most), and the time of each step.
#[derive(Clone, Debug, Default)]
pub struct RunOutput {
    pub stages: Vec<StageOutput>,
    pub features: Vec<FeatureMap>,
    pub steps: Vec<StepTime>,
}

impl RunOutput {
    /// Stages without features.
    pub fn stages(stages: Vec<StageOutput>, steps: Vec<StepTime>) -> Self {
        Self {
            stages,
            features: Vec::new(),
            steps,
        }
    }
}

/// One stage's maps still on the network's device, `[N, K, H, W]` (the first item is
/// kept); [`RunTensors::fetch`] reads them into a [`StageOutput`].
#[derive(Clone, Debug)]
pub struct StageTensors {
    pub label: String,
    pub key: String,
    pub heatmaps: Tensor,
    pub pafs: Option<Tensor>,
    pub tags: Option<Tensor>,
}

impl StageTensors {
    /// A heatmaps-only stage.
    pub fn heatmaps(label: impl Into<String>, key: impl Into<String>, heatmaps: &Tensor) -> Self {
        Self {
            label: label.into(),
            key: key.into(),
            heatmaps: heatmaps.clone(),
            pafs: None,
            tags: None,
        }
    }
}

/// A run's outputs still on the network's device. [`RunTensors::fetch`] reads every map
/// (stages, PAFs, tags, feature energies) to the host in ONE device→host copy: on a GPU
/// each copy waits for the device, so a frame pays that once, however many stages it has.
#[derive(Clone, Debug, Default)]
pub struct RunTensors {
    pub stages: Vec<StageTensors>,
    pub features: Vec<FeatureTensor>,
    pub steps: Vec<StepTime>,
}

impl RunTensors {
    /// Stages without features.
    pub fn stages(stages: Vec<StageTensors>, steps: Vec<StepTime>) -> Self {
        Self {
            stages,
            features: Vec::new(),
            steps,
        }
    }

    /// Every map on the host, in one copy (see [`fetch_maps`]).
    pub fn fetch(self) -> candle_core::Result<RunOutput> {
        let mut all: Vec<&Tensor> = Vec::new();
        for s in &self.stages {
            all.push(&s.heatmaps);
            all.extend(s.pafs.as_ref());
            all.extend(s.tags.as_ref());
        }
        all.extend(self.features.iter().map(|f| &f.energy));
        let mut maps = fetch_maps(&all)?.into_iter();
        let mut next = || {
            maps.next()
                .ok_or_else(|| candle_core::Error::Msg("fetch_maps returned too few maps".into()))
        };
        let mut stages = Vec::with_capacity(self.stages.len());
        for s in self.stages {
            let heatmaps = next()?;
            let pafs = s.pafs.map(|_| next()).transpose()?;
            let tags = s.tags.map(|_| next()).transpose()?;
            stages.push(StageOutput {
                label: s.label,
                key: s.key,
                heatmaps,
                pafs,
                tags,
            });
        }
        let mut features = Vec::with_capacity(self.features.len());
        for f in self.features {
            features.push(FeatureMap {
                key: f.key,
                label: f.label,
                energy: next()?,
                channels: f.channels,
                field: f.field,
            });
        }
        Ok(RunOutput {
            stages,
            features,
            steps: self.steps,
        })
    }
}

/// Per-frame inputs of a run besides the image.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RunOptions {
    /// The person's centre in network-input pixels, for single-person models that take a
    /// centre map (CPM, UniPose-LSTM); `None` = the centre of the input.
    pub center: Option<(f64, f64)>,
    /// Temporal models (UniPose-LSTM): whether this frame continues the clip of the
    /// previous run or starts a new one. Ignored by the other models.
    pub memory: Memory,
}

impl RunOptions {
    /// The centre in network-input pixels for an input of `(width, height)`: the one given,
    /// else the middle of the input.
    pub fn center_or_middle(&self, (w, h): (usize, usize)) -> (f64, f64) {
        self.center
            .unwrap_or(((w as f64 - 1.0) / 2.0, (h as f64 - 1.0) / 2.0))
    }
}

/// How a temporal model ([`PoseNet::is_temporal`]) treats its recurrent state on a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Memory {
    /// The frame follows the previous run's frame: the state kept from that run is fed in
    /// (a first frame when there is none yet), and the new state is kept.
    #[default]
    Carry,
    /// The frame is the first of a clip (after a seek, on a new source, or always for the
    /// "without memory" comparison): the stored state is dropped, the first-frame cell is
    /// used, and the new state is kept for the next [`Memory::Carry`] run.
    Reset,
}

/// A network ready to run on a device.
///
/// `run` hands back every stage's maps in the network's own channel order; the model handle
/// moves a leading background channel last ([`super::Background::First`]).
pub trait PoseNet: std::fmt::Debug + Send + Sync {
    /// Runs the network on `input` (`[1, 3, H, W]` as the model expects it) and returns
    /// every stage's maps and the exposed features on the CPU, with the time of each step.
    fn run(&self, input: &Tensor, options: &RunOptions) -> candle_core::Result<RunOutput>;

    /// The theoretical receptive field of every stage's map cells for an input of
    /// `(width, height)` pixels, `(along x, along y)`, from the network's layer list; empty
    /// where it is not computed (multi-branch or recursive graphs, or maps that depend on
    /// the whole input).
    fn receptive_fields(&self, _input: (usize, usize)) -> Vec<(ReceptiveField, ReceptiveField)> {
        Vec::new()
    }

    /// Whether the network takes a person-centre map (CPM, UniPose-LSTM).
    fn takes_center(&self) -> bool {
        false
    }

    /// Whether the network carries a recurrent state from frame to frame (see
    /// [`RunOptions::memory`]).
    fn is_temporal(&self) -> bool {
        false
    }

    /// A copy (for a second pipeline on the same weights); a temporal network's copy
    /// continues from the same state and evolves independently afterwards.
    fn clone_box(&self) -> Box<dyn PoseNet>;

    /// The network's stages can be re-run from an edited stage (see [`Resumable`]): `None`
    /// for networks whose stages do not read the previous stage's maps.
    fn resumable(&self) -> Option<&dyn Resumable> {
        None
    }

    /// Every stage's heatmaps for a batch `[N, 3, H, W]` (all items with the same
    /// `options`), `[N, K, h, w]` each on the device in the network's own channel order;
    /// `Ok(None)` where the network runs one image at a time only.
    fn heatmaps_batch(
        &self,
        _input: &Tensor,
        _options: &RunOptions,
    ) -> candle_core::Result<Option<Vec<Tensor>>> {
        Ok(None)
    }
}

/// What a multi-stage network's later stages read besides the previous stage's maps, kept
/// from one run ([`Resumable::run_keeping_context`]) so that they can be re-run on edited maps.
#[derive(Clone, Debug)]
pub struct StageContext {
    /// The shared inputs of the later stages on the device, in an order the network defines
    /// (the backbone features, an hourglass's skip features, CPM's features and pooled
    /// centre map).
    pub features: Vec<Tensor>,
    /// Per stage, what the next stage reads from it besides its heatmaps (OpenPose: the
    /// PAFs, `[1, 2L, h, w]`); empty for heatmap-only networks.
    pub companions: Vec<Tensor>,
    /// Networks with a centre map: the centre of the run, network-input pixels.
    pub center: Option<(f64, f64)>,
    /// The network input `(height, width)`.
    pub input_hw: (usize, usize),
    /// Each stage's heatmap tensor shape `[1, K, h, w]` (network channel order).
    pub shapes: Vec<Vec<usize>>,
}

impl StageContext {
    /// A context of `features` with each stage's heatmap shape taken from `stages`.
    pub fn new(features: Vec<Tensor>, stages: &[Tensor], input_hw: (usize, usize)) -> Self {
        Self {
            features,
            companions: Vec::new(),
            center: None,
            input_hw,
            shapes: stages.iter().map(|t| t.dims().to_vec()).collect(),
        }
    }

    /// Shared feature `i`, or an error naming what is missing.
    pub fn feature(&self, i: usize) -> candle_core::Result<&Tensor> {
        self.features
            .get(i)
            .ok_or_else(|| candle_core::Error::Msg(format!("stage context has no feature {i}")))
    }
}

/// An edit of one stage's maps to re-run the later stages on.
#[derive(Clone, Copy, Debug)]
pub struct StageEdit<'a> {
    /// The edited stage, 0-based.
    pub stage: usize,
    /// Its heatmaps after the edit, in the network's own channel order (what the next stage
    /// reads), the stage's own grid.
    pub heatmaps: &'a Maps,
    /// Networks with a centre map (CPM): the centre moved to these network-input pixels for
    /// the later stages; `None` keeps the run's centre.
    pub center: Option<(f64, f64)>,
}

/// A multi-stage network whose stages read the previous stage's maps: it can run keeping what
/// the later stages read, and re-run stages `t + 1 … T` on edited stage-`t` maps (CPM's claim
/// that later stages use the earlier beliefs as spatial context, made testable).
/// Re-running on the unedited maps reproduces the run's later stages.
pub trait Resumable: Send + Sync {
    /// [`PoseNet::run`], also keeping the later stages' inputs.
    fn run_keeping_context(
        &self,
        input: &Tensor,
        options: &RunOptions,
    ) -> candle_core::Result<(RunOutput, StageContext)>;

    /// Stages `edit.stage + 1 …` re-run on the edit, as [`PoseNet::run`] labels and keys them
    /// (empty when the edited stage is the last).
    fn resume_from(
        &self,
        context: &StageContext,
        edit: &StageEdit<'_>,
    ) -> candle_core::Result<Vec<StageOutput>>;

    /// Whether an edit may move the centre map (CPM).
    fn moves_center(&self) -> bool {
        false
    }
}

/// CPU maps `[K, H, W]` as a `[1, K, H, W]` tensor on `device`.
pub fn from_maps(maps: &Maps, device: &candle_core::Device) -> candle_core::Result<Tensor> {
    Tensor::from_slice(
        maps.as_slice(),
        (1, maps.channels(), maps.height(), maps.width()),
        device,
    )
}

/// The edited stage's maps as the next stage's input on `device`: the stage must exist and
/// the maps must have the shape the run gave that stage, so a wrong-sized edit is an error,
/// not a crash.
pub fn edited_input(
    context: &StageContext,
    edit: &StageEdit<'_>,
    device: &candle_core::Device,
) -> candle_core::Result<Tensor> {
    let Some(shape) = context.shapes.get(edit.stage) else {
        candle_core::bail!(
            "stage {} does not exist: the network has {}",
            edit.stage + 1,
            context.shapes.len()
        );
    };
    let t = from_maps(edit.heatmaps, device)?;
    if t.dims() != shape.as_slice() {
        candle_core::bail!(
            "the edited stage {} maps are {:?}, the stage gives {:?}",
            edit.stage + 1,
            t.dims(),
            shape
        );
    }
    Ok(t)
}

impl Clone for Box<dyn PoseNet> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}

/// Copies the first item of an `[N, K, H, W]` tensor to CPU maps (one counted copy).
pub fn to_maps(t: &Tensor) -> candle_core::Result<Maps> {
    let mut maps = fetch_maps(&[t])?;
    maps.pop()
        .ok_or_else(|| candle_core::Error::Msg("fetch_maps returned no map".into()))
}

/// The first item of each `[N, K, H, W]` tensor (any float type, all on one device) as f32
/// maps on the host, read in one device→host copy: on a device the items are flattened and
/// concatenated there and read at once, then split. On the CPU's own kernel path each map is
/// read where it lies (the concatenation would only add a copy), and it counts as the one
/// copy a device makes; the portable path (`POSESCOPE_PORTABLE`) takes the device's way.
pub fn fetch_maps(tensors: &[&Tensor]) -> candle_core::Result<Vec<Maps>> {
    let Some(first) = tensors.first() else {
        return Ok(Vec::new());
    };
    let mut shapes = Vec::with_capacity(tensors.len());
    let mut items = Vec::with_capacity(tensors.len());
    for t in tensors {
        let (_, k, h, w) = t.dims4()?;
        shapes.push((k, h, w));
        items.push(t.get(0)?.to_dtype(candle_core::DType::F32)?.flatten_all()?);
    }
    let total: usize = shapes.iter().map(|&(k, h, w)| k * h * w).sum();
    let to_maps = |data: Vec<f32>, (k, h, w): (usize, usize, usize)| {
        Maps::new(data, k, h, w).map_err(|e| candle_core::Error::Msg(e.to_string()))
    };
    let maps = if crate::kernels::custom_cpu_for(first.device(), candle_core::DType::F32) {
        items
            .iter()
            .zip(&shapes)
            .map(|(t, &s)| to_maps(t.to_vec1()?, s))
            .collect::<candle_core::Result<Vec<_>>>()?
    } else {
        let all = if items.len() == 1 {
            items.swap_remove(0)
        } else {
            Tensor::cat(&items, 0)?
        };
        let mut data: Vec<f32> = all.to_vec1()?;
        let mut maps = Vec::with_capacity(shapes.len());
        // Split from the back: each map takes its tail of the one buffer.
        for &s in shapes.iter().rev() {
            let rest = data.len() - s.0 * s.1 * s.2;
            let tail = data.split_off(rest);
            maps.push(to_maps(tail, s)?);
        }
        maps.reverse();
        maps
    };
    crate::device::note_download((total * std::mem::size_of::<f32>()) as u64);
    Ok(maps)
}

/// Heatmap-only stages `stage1`, `stage2`, … (still on the device), labelled by `label(t)`.
pub fn numbered_stages(maps: &[Tensor], label: impl Fn(usize) -> String) -> Vec<StageTensors> {
    maps.iter()
        .enumerate()
        .map(|(t, m)| StageTensors::heatmaps(label(t), format!("stage{}", t + 1), m))
        .collect()
}

/// `stage {t + 1}`, the usual stage label.
pub fn stage_label(t: usize) -> String {
    format!("stage {}", t + 1)
}

/// The network input `(height, width)` of `[N, C, H, W]`.
pub fn input_hw(input: &Tensor) -> candle_core::Result<(usize, usize)> {
    let (_, _, h, w) = input.dims4()?;
    Ok((h, w))
}

/// The same receptive field along both axes for each of `stages` (square-kernel networks
/// whose layer chain does not depend on the input size).
pub fn square_fields(
    stages: usize,
    chain: impl Fn(usize) -> Vec<super::receptive::RfLayer>,
) -> Vec<(ReceptiveField, ReceptiveField)> {
    (0..stages)
        .map(|t| {
            let rf = ReceptiveField::of_chain(&chain(t));
            (rf, rf)
        })
        .collect()
}

/// Per-axis receptive fields of each of `stages` for chains that depend on the input length
/// along the axis (TF `SAME` padding): `chain(t, len)`.
pub fn per_axis_fields(
    stages: usize,
    (w, h): (usize, usize),
    chain: impl Fn(usize, usize) -> Vec<super::receptive::RfLayer>,
) -> Vec<(ReceptiveField, ReceptiveField)> {
    (0..stages)
        .map(|t| {
            (
                ReceptiveField::of_chain(&chain(t, w)),
                ReceptiveField::of_chain(&chain(t, h)),
            )
        })
        .collect()
}

/// Checks shared by the networks' own tests.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod resume_checks {
    use super::*;

    /// Resuming `net` from every stage on that stage's own maps reproduces the later stages
    /// exactly, and erasing channel 0 of stage 1 changes them. Returns the largest
    /// reproduction error (printed).
    pub fn reproduces_and_reacts(net: &dyn PoseNet, input: &Tensor) -> f32 {
        let r = net.resumable().expect("the network can resume");
        let (run, context) = r
            .run_keeping_context(input, &RunOptions::default())
            .unwrap();
        let n = run.stages.len();
        let mut worst = 0.0f32;
        for t in 0..n {
            let edit = StageEdit {
                stage: t,
                heatmaps: &run.stages[t].heatmaps,
                center: None,
            };
            let later = r.resume_from(&context, &edit).unwrap();
            assert_eq!(later.len(), n - t - 1);
            for (a, b) in later.iter().zip(&run.stages[t + 1..]) {
                assert_eq!(a.key, b.key);
                for (x, y) in a.heatmaps.as_slice().iter().zip(b.heatmaps.as_slice()) {
                    worst = worst.max((x - y).abs());
                }
            }
        }
        println!("resume on unedited maps: max-abs {worst:.3e}");
        assert!(worst <= 1e-6, "{worst}");
        let mut erased = run.stages[0].heatmaps.clone();
        crate::pose::edit::erase(&mut erased, 0).unwrap();
        let edit = StageEdit {
            stage: 0,
            heatmaps: &erased,
            center: None,
        };
        let later = r.resume_from(&context, &edit).unwrap();
        let changed = later
            .iter()
            .zip(&run.stages[1..])
            .flat_map(|(a, b)| {
                a.heatmaps
                    .as_slice()
                    .iter()
                    .zip(b.heatmaps.as_slice())
                    .map(|(x, y)| (x - y).abs())
                    .collect::<Vec<_>>()
            })
            .fold(0.0f32, f32::max);
        println!("erasing channel 0 of stage 1 changes the later stages by {changed:.3e}");
        assert!(changed > 0.0);
        // A stage that does not exist is an error, not a panic.
        let edit = StageEdit {
            stage: n,
            heatmaps: &erased,
            center: None,
        };
        assert!(r.resume_from(&context, &edit).is_err());
        worst
    }
}
