//! MMPose's CPM: the `CPM` backbone of MMPose 0.x (`mmpose/models/backbones/cpm.py`) with
//! `TopdownHeatmapMultiStageHead` (the identity here: no keys). It follows Wei, Ramakrishna,
//! Kanade, Sheikh, "Convolutional Pose Machines", CVPR 2016, but is **not** the paper's
//! network of [`super::cpm`]: it has no centre map, every convolution but the heatmap ones is
//! followed by BatchNorm, and it is a top-down model trained on person crops (MMPose
//! configs `configs/body/2d_kpt_sview_rgb_img/topdown_heatmap/{mpii,coco}/cpm_*.py`).
//!
//! Built as in MMPose 0.29.0 (the 2020-08 checkpoints have the same module tree), with the
//! parameter names of its `state_dict` under `backbone.`:
//!
//! | part | keys | what it does |
//! |---|---|---|
//! | `stem` (stage 1) | `stem.{0,2,4}`, `stem.6`, `stem.7`, `stem.8` ConvModules; `stem.9` conv with bias | 9×9 (128) → pool → 9×9 → pool → 9×9 → pool → 5×5 (32) → 9×9 (512) → 1×1 (512) → 1×1 (K, no BN, no ReLU) |
//! | `middle` | `middle.{0,2,4}` ConvModules | 9×9 (128) → pool, three times: the image features every later stage reads, computed once |
//! | `middle_conv.{i}.0` | ConvModule | 5×5, 128 → 32, stage `i + 2`'s own view of `middle` |
//! | `cpm_stages.{i}.model.{0,1,2}` | ConvModules | 11×11 (128) ×3 on `cat(stage i + 1's heatmaps (K), middle_conv (32))`: **heatmaps first** |
//! | `out_convs.{i}.0` / `.1` | ConvModule / conv with bias | 1×1 (128) + BN + ReLU, then 1×1 (K): stage `i + 2`'s heatmaps |
//!
//! A ConvModule (mmcv) is `conv` (no bias) → `bn` → ReLU, with keys `{m}.conv.weight` and
//! `{m}.bn.{weight,bias,running_mean,running_var}`; the heatmap convolutions have no norm and
//! keep `{m}.conv.bias`. Every pool is `MaxPool2d(3, stride 2, padding 1)` (floor), so a side
//! of `n` becomes `ceil(n / 2)` and the output stride is 8 (368 → 46, 256×192 → 32×24). Every
//! convolution is stride 1 with "same" padding `(k − 1) / 2`. BatchNorm (eval mode, eps
//! 1e-5) is folded into the convolutions at load time.
//!
//! Input: `[N, 3, H, W]` in **R,G,B** order, `(u8 / 255 − mean_c) / std_c` with the ImageNet
//! mean and std (MMPose's `LoadImageFromFile` + `NormalizeTensor`). Any `H`, `W` run; the
//! standard crops are 368×368 (MPII) and 256×192 / 384×288 (COCO, H × W).

use candle_core::{DType, Device, Result as CResult, Tensor};
use candle_nn::VarBuilder;

use crate::models::blocks::folded::Conv;
use crate::models::checkpoint_shapes;
use crate::models::features::{self, CellField, FeatureTensor};
use crate::models::info::{Architecture, Loaded, Loader};
use crate::models::net::{
    edited_input, input_hw, numbered_stages, square_fields, stage_label, PoseNet, Resumable,
    RunOptions, RunOutput, RunTensors, StageContext, StageEdit, StageOutput, StageTensors,
};
use crate::models::receptive::{ReceptiveField, RfLayer};
use crate::models::{ModelInfo, StepClock, StepTime};
use crate::weights::TensorStore;

/// Width of the stem's 9×9 and first 1×1 convolutions (`stem.7`, `stem.8`; fixed in code).
const STEM_WIDE_CHANNELS: usize = 512;
/// The prefix MMPose puts before the backbone's keys.
pub const BACKBONE_PREFIX: &str = "backbone";

/// An MMPose CPM configuration (the `CPM` backbone's arguments).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `out_channels`: one heatmap per joint.
    pub joints: usize,
    /// `num_stages`.
    pub stages: usize,
    /// `feat_channels` (128).
    pub feat_channels: usize,
    /// `middle_channels` (32).
    pub middle_channels: usize,
    /// `(height, width)` of the standard input (`image_size`, W×H in the config, swapped).
    pub input_size: (usize, usize),
}

impl Config {
    /// `cpm_mpii_368x368.py`: 16 MPII joints, 6 stages, 368×368.
    pub fn mpii_368() -> Self {
        Self::standard(16, (368, 368))
    }

    /// `cpm_coco_256x192.py`: 17 COCO joints, 6 stages, H 256 × W 192.
    pub fn coco_256x192() -> Self {
        Self::standard(17, (256, 192))
    }

    /// `cpm_coco_384x288.py`: 17 COCO joints, 6 stages, H 384 × W 288.
    pub fn coco_384x288() -> Self {
        Self::standard(17, (384, 288))
    }

    fn standard(joints: usize, input_size: (usize, usize)) -> Self {
        Self {
            joints,
            stages: 6,
            feat_channels: 128,
            middle_channels: 32,
            input_size,
        }
    }

    /// Infers the configuration from a checkpoint's tensor shapes (`shape(key)` is the shape
    /// of tensor `key` without the `backbone.` prefix, `None` if absent): joints from
    /// `stem.9.conv.weight` (`[K, 512, 1, 1]`), `feat_channels` from `stem.0.conv.weight`,
    /// `middle_channels` from `stem.6.conv.weight`, the stages from the number of
    /// `out_convs.{i}` plus one. `input_size` (`(height, width)`) is taken as given.
    pub fn from_shapes(
        shape: impl Fn(&str) -> Option<Vec<usize>>,
        input_size: (usize, usize),
    ) -> CResult<Self> {
        let conv4 = |key: &str| checkpoint_shapes::conv4(&shape, key, "MMPose CPM");
        let later =
            checkpoint_shapes::count_present(&shape, &|i| format!("out_convs.{i}.1.conv.weight"));
        let config = Self {
            joints: conv4("stem.9.conv.weight")?[0],
            stages: later + 1,
            feat_channels: conv4("stem.0.conv.weight")?[0],
            middle_channels: conv4("stem.6.conv.weight")?[0],
            input_size,
        };
        config.validate()?;
        Ok(config)
    }

    /// `(height, width)` of the heatmaps for the standard input: each of the three pools
    /// rounds a side `n` to `ceil(n / 2)`.
    pub fn heatmap_size(&self) -> (usize, usize) {
        let down = |n: usize| (0..3).fold(n, |n, _| n.div_ceil(2));
        (down(self.input_size.0), down(self.input_size.1))
    }

    fn validate(&self) -> CResult<()> {
        if self.joints == 0 || self.stages == 0 || self.feat_channels == 0 {
            candle_core::bail!("MMPose CPM: invalid configuration {self:?}");
        }
        if self.middle_channels == 0 {
            candle_core::bail!("MMPose CPM: zero middle channels");
        }
        Ok(())
    }

    /// The spatial layers of `stem` (stage 1), in order.
    pub fn stem_chain(&self) -> Vec<RfLayer> {
        vec![
            conv_rf("stem.0", 9),
            pool_rf("stem.1"),
            conv_rf("stem.2", 9),
            pool_rf("stem.3"),
            conv_rf("stem.4", 9),
            pool_rf("stem.5"),
            conv_rf("stem.6", 5),
            conv_rf("stem.7", 9),
            conv_rf("stem.8", 1),
            conv_rf("stem.9", 1),
        ]
    }

    /// The spatial layers of `middle`, in order.
    pub fn middle_chain(&self) -> Vec<RfLayer> {
        vec![
            conv_rf("middle.0", 9),
            pool_rf("middle.1"),
            conv_rf("middle.2", 9),
            pool_rf("middle.3"),
            conv_rf("middle.4", 9),
            pool_rf("middle.5"),
        ]
    }

    /// The longest chain of spatial layers from the image to the maps of `stage` (1-based).
    /// At each later stage's concatenation the input with the larger receptive field is
    /// kept: the previous stage's heatmaps (stage 1 already sees 167 pixels, `middle` +
    /// `middle_conv` 103). Empty when `stage` is 0 or past the last stage.
    pub fn receptive_chain(&self, stage: usize) -> Vec<RfLayer> {
        if stage == 0 || stage > self.stages {
            return Vec::new();
        }
        let mut chain = self.stem_chain();
        for i in 0..stage - 1 {
            let mut features = self.middle_chain();
            features.push(conv_rf(&format!("middle_conv.{i}.0"), 5));
            let size = |c: &[RfLayer]| ReceptiveField::of_chain(c).size;
            if size(&features) > size(&chain) {
                chain = features;
            }
            chain.extend([
                conv_rf(&format!("cpm_stages.{i}.model.0"), 11),
                conv_rf(&format!("cpm_stages.{i}.model.1"), 11),
                conv_rf(&format!("cpm_stages.{i}.model.2"), 11),
                conv_rf(&format!("out_convs.{i}.0"), 1),
                conv_rf(&format!("out_convs.{i}.1"), 1),
            ]);
        }
        chain
    }
}

/// A stride-1 "same" convolution with a square `kernel`.
fn conv_rf(name: &str, kernel: usize) -> RfLayer {
    RfLayer::window(name, kernel, 1, 1, (kernel - 1) / 2)
}

/// `MaxPool2d(3, 2, padding=1)`.
fn pool_rf(name: &str) -> RfLayer {
    RfLayer::window(name, 3, 2, 1, 1)
}

/// `MaxPool2d(3, stride 2, padding 1)` (floor) of a ReLU output: the input is ≥ 0, so zero
/// padding never wins over a real value and equals PyTorch's −∞ padding.
fn max_pool(x: &Tensor) -> CResult<Tensor> {
    x.pad_with_zeros(2, 1, 1)?
        .pad_with_zeros(3, 1, 1)?
        .max_pool2d_with_stride(3, 2)
}

/// A ConvModule `{name}.conv` (no bias) + `{name}.bn` + ReLU, BN folded, stride 1.
fn conv_module(vb: &VarBuilder, name: &str, io: (usize, usize), kernel: usize) -> CResult<Conv> {
    Conv::with_bn(
        vb,
        &format!("{name}.conv"),
        &format!("{name}.bn"),
        io,
        kernel,
        1,
        true,
    )
}

/// Stage `t ≥ 2`: `cpm_stages.{i}`, `middle_conv.{i}`, `out_convs.{i}`.
#[derive(Clone, Debug)]
struct LaterStage {
    /// `middle_conv.{i}.0`: 5×5 on `middle`.
    middle_conv: Conv,
    /// `cpm_stages.{i}.model.{0,1,2}`: three 11×11.
    blocks: [Conv; 3],
    /// `out_convs.{i}.0`: 1×1 + BN + ReLU.
    out0: Conv,
    /// `out_convs.{i}.1`: 1×1 with bias, no activation.
    out1: Conv,
}

/// Every output and intermediate of one forward pass, `[N, C, h, w]`, for an input of
/// `H × W` (`h = ceil(ceil(ceil(H / 2) / 2) / 2)`, likewise `w`).
#[derive(Clone, Debug)]
pub struct MmposeCpmOutputs {
    /// Each stage's heatmaps `[N, K, h, w]`, stage 1 (`stem`) first, then `out_convs.{i}`.
    pub stages: Vec<Tensor>,
    /// `stem.6`: the 5×5 ConvModule after the stem's third pool, `[N, 32, h, w]`.
    pub stem6: Tensor,
    /// `middle`: the shared trunk after its third pool, `[N, 128, h, w]`.
    pub middle: Tensor,
    /// `middle_conv.{i}` for each later stage, `[N, 32, h, w]`.
    pub middle_conv: Vec<Tensor>,
    /// `cpm_stages.{i}` for each later stage (after the three 11×11, before `out_convs`),
    /// `[N, 128, h, w]`.
    pub cpm_stages: Vec<Tensor>,
}

impl MmposeCpmOutputs {
    /// The last stage's heatmaps (the ones MMPose's test uses).
    pub fn heatmaps(&self) -> Option<&Tensor> {
        self.stages.last()
    }
}

/// MMPose's CPM with its weights (BatchNorm folded) on a device.
#[derive(Clone, Debug)]
pub struct MmposeCpm {
    config: Config,
    /// `stem.{0,2,4}` (each followed by a pool), `stem.6`, `stem.7`, `stem.8`.
    stem: [Conv; 6],
    /// `stem.9`.
    stem_out: Conv,
    /// `middle.{0,2,4}` (each followed by a pool).
    middle: [Conv; 3],
    later: Vec<LaterStage>,
    device: Device,
}

impl MmposeCpm {
    /// Builds the network from `vb`, whose prefix is the backbone (`vb.pp("backbone")` for
    /// an MMPose `state_dict`). Every `state_dict` tensor except `num_batches_tracked` is
    /// read exactly once.
    pub fn load(vb: VarBuilder, config: Config) -> CResult<Self> {
        config.validate()?;
        let (f, m, k) = (config.feat_channels, config.middle_channels, config.joints);
        let wide = STEM_WIDE_CHANNELS;
        let stem = [
            conv_module(&vb, "stem.0", (3, f), 9)?,
            conv_module(&vb, "stem.2", (f, f), 9)?,
            conv_module(&vb, "stem.4", (f, f), 9)?,
            conv_module(&vb, "stem.6", (f, m), 5)?,
            conv_module(&vb, "stem.7", (m, wide), 9)?,
            conv_module(&vb, "stem.8", (wide, wide), 1)?,
        ];
        let stem_out = Conv::with_bias(&vb, "stem.9.conv", (wide, k), 1)?;
        let middle = [
            conv_module(&vb, "middle.0", (3, f), 9)?,
            conv_module(&vb, "middle.2", (f, f), 9)?,
            conv_module(&vb, "middle.4", (f, f), 9)?,
        ];
        let later = (0..config.stages - 1)
            .map(|i| {
                let block = |j: usize, cin: usize| {
                    conv_module(&vb, &format!("cpm_stages.{i}.model.{j}"), (cin, f), 11)
                };
                Ok(LaterStage {
                    middle_conv: conv_module(&vb, &format!("middle_conv.{i}.0"), (f, m), 5)?,
                    blocks: [block(0, k + m)?, block(1, f)?, block(2, f)?],
                    out0: conv_module(&vb, &format!("out_convs.{i}.0"), (f, f), 1)?,
                    out1: Conv::with_bias(&vb, &format!("out_convs.{i}.1.conv"), (f, k), 1)?,
                })
            })
            .collect::<CResult<Vec<_>>>()?;
        Ok(Self {
            config,
            stem,
            stem_out,
            middle,
            later,
            device: vb.device().clone(),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// See [`Config::receptive_chain`].
    pub fn receptive_chain(&self, stage: usize) -> Vec<RfLayer> {
        self.config.receptive_chain(stage)
    }

    /// Runs every stage on `x` (`[N, 3, H, W]`, R,G,B, ImageNet-normalised).
    pub fn forward(&self, x: &Tensor) -> CResult<MmposeCpmOutputs> {
        self.forward_steps(x, None)
    }

    /// [`MmposeCpm::forward`] with the wall time of each step: `stage1` (the stem),
    /// `middle`, then `stage2`, `stage3`, ….
    pub fn forward_profiled(&self, x: &Tensor) -> CResult<(MmposeCpmOutputs, Vec<StepTime>)> {
        let mut times = Vec::with_capacity(self.config.stages + 1);
        let out = self.forward_steps(x, Some(&mut times))?;
        Ok((out, times))
    }

    fn forward_steps(
        &self,
        x: &Tensor,
        times: Option<&mut Vec<StepTime>>,
    ) -> CResult<MmposeCpmOutputs> {
        let x = crate::models::blocks::ops::image_batch(x, 1, "MMPose CPM")?;
        let mut clock = StepClock::new(&self.device, times);

        let [s0, s2, s4, s6, s7, s8] = &self.stem;
        let mut h = x.clone();
        for conv in [s0, s2, s4] {
            h = max_pool(&conv.forward(&h)?)?;
        }
        let stem6 = s6.forward(&h)?;
        let stage1 = self.stem_out.forward(&s8.forward(&s7.forward(&stem6)?)?)?;
        clock.lap("stage1")?;

        let mut middle = x;
        for conv in &self.middle {
            middle = max_pool(&conv.forward(&middle)?)?;
        }
        clock.lap("middle")?;

        let n = self.later.len();
        let mut stages = Vec::with_capacity(n + 1);
        let mut middle_conv = Vec::with_capacity(n);
        let mut cpm_stages = Vec::with_capacity(n);
        let mut prev = stage1;
        for i in 0..self.later.len() {
            let (heatmaps, mc, h) = self.later_stage(i, &prev, &middle)?;
            stages.push(std::mem::replace(&mut prev, heatmaps));
            middle_conv.push(mc);
            cpm_stages.push(h);
            clock.lap(format!("stage{}", i + 2))?;
        }
        stages.push(prev);
        Ok(MmposeCpmOutputs {
            stages,
            stem6,
            middle,
            middle_conv,
            cpm_stages,
        })
    }
}

impl MmposeCpm {
    /// Stage `i + 2` on the previous heatmaps and the shared `middle` features: its
    /// heatmaps, its `middle_conv` output and its last block's features.
    fn later_stage(
        &self,
        i: usize,
        prev: &Tensor,
        middle: &Tensor,
    ) -> CResult<(Tensor, Tensor, Tensor)> {
        let Some(st) = self.later.get(i) else {
            candle_core::bail!("MMPose CPM: no stage {}", i + 2)
        };
        let mc = st.middle_conv.forward(middle)?;
        // MMPose: `cat([out_feats[-1], middle_conv(middle_map)], 1)`, heatmaps first.
        let mut h = Tensor::cat(&[prev, &mc], 1)?;
        for conv in &st.blocks {
            h = conv.forward(&h)?;
        }
        let heatmaps = st.out1.forward(&st.out0.forward(&h)?)?;
        Ok((heatmaps, mc, h))
    }
}

/// Every stage ≥ 2 reads the previous heatmaps and the shared `middle` features: the context
/// is `middle` (`features[0]`).
impl Resumable for MmposeCpm {
    fn run_keeping_context(
        &self,
        input: &Tensor,
        _options: &RunOptions,
    ) -> CResult<(RunOutput, StageContext)> {
        let (out, steps) = self.forward_profiled(input)?;
        let context = StageContext::new(vec![out.middle.clone()], &out.stages, input_hw(input)?);
        Ok((self.run_output(input, out, steps)?, context))
    }

    fn resume_from(
        &self,
        context: &StageContext,
        edit: &StageEdit<'_>,
    ) -> CResult<Vec<StageOutput>> {
        let middle = context.feature(0)?;
        let mut prev = edited_input(context, edit, middle.device())?;
        let mut out = Vec::new();
        // Stage t (0-based) is stage 1 or `self.later[t - 1]`.
        for t in edit.stage + 1..=self.later.len() {
            prev = self.later_stage(t - 1, &prev, middle)?.0;
            out.push(StageTensors::heatmaps(
                stage_label(t),
                format!("stage{}", t + 1),
                &prev,
            ));
        }
        // Every re-run stage in one device→host copy.
        Ok(RunTensors::stages(out, Vec::new()).fetch()?.stages)
    }
}

/// MMPose's CPM (`backbone.` names; joints and stages from the checkpoint).
pub static ARCHITECTURE: Architecture = Architecture {
    id: "cpm-mmpose",
    name: "MMPose CPM (top-down, no centre map, BN; 6 stages of heatmaps at 1/8)",
    top_down: true,
    // MMPose's test config: `flip_test=True`, `shift_heatmap=True`.
    flip_shifts_heatmap: true,
    grid: crate::pose::GridAlign::Centre,
    loader: Loader::Checkpoint(load_checkpoint),
};

/// Builds the network from an MMPose checkpoint (keys under `backbone.`) or one saved
/// without the prefix; the joint count must match the catalogue entry's joint set.
fn load_checkpoint(
    info: &'static ModelInfo,
    store: TensorStore,
    device: &Device,
) -> CResult<Loaded> {
    let prefixed = store.contains(&format!("{BACKBONE_PREFIX}.stem.0.conv.weight"));
    let full = |k: &str| {
        if prefixed {
            format!("{BACKBONE_PREFIX}.{k}")
        } else {
            k.to_string()
        }
    };
    let (h, w) = (info.input_size.1 as usize, info.input_size.0 as usize);
    let config = Config::from_shapes(
        |k| store.get_any(&full(k)).ok().map(|t| t.dims().to_vec()),
        (h, w),
    )?;
    if config.joints != info.joints.len() {
        candle_core::bail!(
            "MMPose CPM: tensor '{}' has {} heatmaps; model '{}' needs {} ({})",
            full("stem.9.conv.weight"),
            config.joints,
            info.id,
            info.joints.len(),
            info.joints.id
        );
    }
    let (vb, usage) = crate::weights::varbuilder::var_builder(store, DType::F32, device);
    let vb = if prefixed { vb.pp(BACKBONE_PREFIX) } else { vb };
    let net = MmposeCpm::load(vb, config)?;
    Ok(Loaded {
        net: Box::new(net),
        unused_keys: usage.unused_keys(),
    })
}

impl PoseNet for MmposeCpm {
    /// Every stage's heatmaps (`stage1` … `stage6`; the last is the prediction) and the
    /// shared `middle` features.
    fn run(&self, input: &Tensor, _options: &RunOptions) -> CResult<RunOutput> {
        let (out, steps) = self.forward_profiled(input)?;
        self.run_output(input, out, steps)
    }

    fn receptive_fields(&self, _input: (usize, usize)) -> Vec<(ReceptiveField, ReceptiveField)> {
        square_fields(self.config.stages, |t| self.receptive_chain(t + 1))
    }

    fn clone_box(&self) -> Box<dyn PoseNet> {
        Box::new(self.clone())
    }

    fn resumable(&self) -> Option<&dyn Resumable> {
        Some(self)
    }

    fn heatmaps_batch(
        &self,
        input: &Tensor,
        _options: &RunOptions,
    ) -> CResult<Option<Vec<Tensor>>> {
        Ok(Some(self.forward(input)?.stages))
    }
}

impl MmposeCpm {
    /// Every stage's heatmaps (`stage1` … `stage6`) and the shared `middle` features of a
    /// forward pass on `input`.
    fn run_output(
        &self,
        input: &Tensor,
        out: MmposeCpmOutputs,
        steps: Vec<StepTime>,
    ) -> CResult<RunOutput> {
        let size = input_hw(input)?;
        let rf = ReceptiveField::of_chain(&self.config.middle_chain());
        let middle = FeatureTensor::new(
            "middle",
            features::with_stride("middle (shared image features)", size, &out.middle)?,
            &out.middle,
            CellField::Local(rf, rf),
        )?;
        RunTensors {
            stages: numbered_stages(&out.stages, stage_label),
            features: vec![middle],
            steps,
        }
        .fetch()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::weights::posegen;

    #[test]
    fn receptive_fields_by_hand() {
        let cfg = Config::mpii_368();
        let c1 = cfg.receptive_chain(1);
        assert_eq!(c1.len(), 10);
        // 1 +8 (stem.0) → 9; +2 (pool) → 11, jump 2; +16 → 27; +4 → 31, jump 4; +32 → 63;
        // +8 → 71, jump 8; +4·8 (5×5) → 103; +8·8 (9×9) → 167; the 1×1 convs add nothing.
        let rf = ReceptiveField::of_chain(&c1);
        assert_eq!((rf.size, rf.jump, rf.start), (167.0, 8.0, 0.0));
        // middle + middle_conv: 71 + 4·8 = 103 < 167, so stage 2 extends stage 1.
        let c2 = cfg.receptive_chain(2);
        assert_eq!(&c2[..c1.len()], &c1[..]);
        assert_eq!(c2.len(), c1.len() + 5);
        // Three 11×11 at jump 8: +3·10·8 = 240.
        assert_eq!(ReceptiveField::of_chain(&c2).size, 167.0 + 240.0);
        assert_eq!(cfg.receptive_chain(6).len(), c1.len() + 5 * 5);
        assert!(cfg.receptive_chain(0).is_empty());
        assert!(cfg.receptive_chain(7).is_empty());
        assert_eq!(
            ReceptiveField::of_chain(&cfg.middle_chain()).size,
            71.0,
            "middle"
        );
    }

    #[test]
    fn standard_configs() {
        assert_eq!(Config::mpii_368().heatmap_size(), (46, 46));
        assert_eq!(Config::coco_256x192().heatmap_size(), (32, 24));
        assert_eq!(Config::coco_384x288().heatmap_size(), (48, 36));
        assert_eq!(Config::coco_256x192().joints, 17);
    }

    #[test]
    fn small_network_reads_every_key_once_and_runs() {
        let dev = Device::Cpu;
        let (vb, rec) = posegen::var_builder(0.9, &dev);
        let config = Config {
            joints: 3,
            stages: 3,
            feat_channels: 8,
            middle_channels: 4,
            input_size: (30, 22),
        };
        let net = MmposeCpm::load(vb.pp(BACKBONE_PREFIX), config.clone()).unwrap();
        let requests = rec.requests();
        // Stem: 6 ConvModules (5 tensors each) + stem.9 (2); middle: 3 × 5; each of the two
        // later stages: middle_conv (5) + 3 blocks (15) + out_convs (5 + 2).
        assert_eq!(requests.len(), 6 * 5 + 2 + 3 * 5 + 2 * (5 + 15 + 7));
        let mut names: Vec<&str> = requests.iter().map(|(k, _)| k.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), requests.len(), "a key was read twice");
        assert!(names.iter().all(|k| k.starts_with("backbone.")));
        let shape = |k: &str| {
            let key = format!("backbone.{k}");
            requests
                .iter()
                .find(|(n, _)| *n == key)
                .map(|(_, s)| s.clone())
        };
        assert_eq!(
            shape("cpm_stages.1.model.0.conv.weight"),
            Some(vec![8, 3 + 4, 11, 11])
        );
        assert_eq!(Config::from_shapes(shape, (30, 22)).unwrap(), config);

        // 30 → 15 → 8 → 4 and 22 → 11 → 6 → 3 (ceil at each pool).
        let x = Tensor::zeros((1, 3, 30, 22), DType::F32, &dev).unwrap();
        let (out, times) = net.forward_profiled(&x).unwrap();
        assert_eq!(out.stages.len(), 3);
        for s in &out.stages {
            assert_eq!(s.dims(), &[1, 3, 4, 3]);
        }
        assert_eq!(out.middle.dims(), &[1, 8, 4, 3]);
        assert_eq!(out.stem6.dims(), &[1, 4, 4, 3]);
        assert_eq!(out.middle_conv.len(), 2);
        assert_eq!(out.cpm_stages[1].dims(), &[1, 8, 4, 3]);
        let names: Vec<&str> = times.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["stage1", "middle", "stage2", "stage3"]);

        let run = net.run(&x, &RunOptions::default()).unwrap();
        assert_eq!(run.stages.len(), 3);
        assert_eq!(run.stages[2].key, "stage3");
        assert_eq!(run.features.len(), 1);
        assert_eq!(run.features[0].key, "middle");
        assert_eq!(net.receptive_fields((22, 30)).len(), 3);
        // Re-running the later stages from an edited stage.
        let ramp = Tensor::arange(0f32, (3 * 30 * 22) as f32, &dev)
            .unwrap()
            .affine(1.0 / 200.0, -0.5)
            .unwrap()
            .sin()
            .unwrap()
            .reshape((1, 3, 30, 22))
            .unwrap();
        crate::models::net::resume_checks::reproduces_and_reacts(&net, &ramp);
    }
}
