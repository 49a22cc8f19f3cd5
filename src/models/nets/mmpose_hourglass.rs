//! MMPose's Hourglass-52: the `HourglassNet` backbone of MMPose 0.x
//! (`mmpose/models/backbones/hourglass.py`, after CornerNet: Law, Deng, "CornerNet:
//! Detecting Objects as Paired Keypoints", ECCV 2018, itself after Newell, Yang, Deng,
//! "Stacked Hourglass Networks", ECCV 2016) with one stack, and the
//! `TopdownHeatmapMultiStageHead` (`mmpose/models/heads/topdown_heatmap_multi_stage_head.py`),
//! as configured in `configs/body/2d_kpt_sview_rgb_img/topdown_heatmap/coco/hourglass52_coco_{256x256,384x384}.py`
//! (open-mmlab/mmpose, Apache-2.0). A top-down model: a stem to 1/4 of the crop, one
//! five-level hourglass, a 3×3 conv and a 1×1 conv to one heatmap per joint at 1/4.
//!
//! **Not** the princeton-vl Stacked Hourglass of [`super::stacked_hourglass`]: the blocks
//! are post-activation BasicBlocks (no 1×1 bottlenecks, no conv bias), the widths grow with
//! depth, and each level downsamples with a strided block instead of a max-pool.
//!
//! Parameter names are those of the MMPose `state_dict`, prefixes included (a published
//! checkpoint is `{"meta", "state_dict"}`; the reader unwraps it):
//!
//! | part | keys | what it does |
//! |---|---|---|
//! | `backbone.stem.0` | `conv.weight`, `bn.*` | ConvModule 7×7 s2 p3, 3 → 128, BN + ReLU |
//! | `backbone.stem.1.0` | `conv1`, `bn1`, `conv2`, `bn2`, `downsample.{0,1}` | BasicBlock 128 → 256, stride 2 (1×1 s2 conv + BN skip): the hourglass input at 1/4 |
//! | `backbone.hourglass_modules.0` | `up1`, `low1`, `low2` (recursive: `low2.low2.low2.low2.low2` is the innermost), `low3` | `up1(x) + nearest×2(low3(low2(low1(x))))` |
//! | `backbone.out_convs.0` | `conv.weight`, `bn.*` | ConvModule 3×3, 256 → 256, BN + ReLU |
//! | `keypoint_head.multi_final_layers.0` | `weight`, `bias` | 1×1 conv to `joints` heatmaps |
//! | `backbone.inters.0` | BasicBlock | built even with one stack, used only between stacks: never read |
//!
//! A BasicBlock (`mmpose/models/backbones/resnet.py`) is `ReLU(bn2(conv2(ReLU(bn1(conv1(x)))))
//! + skip(x))` with 3×3 convs, the stride on `conv1`, and `downsample` (1×1 conv with the
//! stride + BN) as the skip when the stride or the width changes. A `ResLayer` is a row of
//! them: the first block changes the width and stride (`downsample_first=True`), or, in
//! `low3` (`downsample_first=False`), the last block changes the width.
//!
//! An `HourglassModule` of depth `d` with widths `(c, n, …)` and block counts `(b, b', …)`:
//! `up1 = ResLayer(b, c → c)`; `low1 = ResLayer(b, c → n, stride 2)`; `low2` the module of
//! depth `d − 1` on `(n, …)`, or at depth 1 `ResLayer(b', n → n)`; `low3 = ResLayer(b,
//! n → c, downsample_first=False)`; the output is `up1 + up2(low3)` with `up2` a nearest ×2
//! upsample and **no ReLU after the sum**. Hourglass-52 has depth 5, widths
//! `(256, 256, 384, 384, 384, 512)` and blocks `(2, 2, 2, 2, 2, 4)`; the configuration is
//! read from the checkpoint's shapes ([`Config::from_shapes`]).
//!
//! Every BatchNorm (eval mode, eps 1e-5) is folded into its convolution at load time.
//!
//! Input: `[N, 3, H, W]` R,G,B, `(u8 / 255 − mean_c) / std_c` with the ImageNet mean and std
//! (`LoadImageFromFile` is RGB, then `NormalizeTensor`). The published crops are 256×256 and
//! 384×384; `H` and `W` must be multiples of 128 (stride 4 of the stem, then five halvings).

use candle_core::{Device, Result as CResult, Tensor};
use candle_nn::VarBuilder;

use crate::kernels::bias_act;
use crate::models::blocks::folded::Conv;
use crate::models::checkpoint_shapes::{conv4, count_present};
use crate::models::features::{self, CellField, FeatureTensor};
use crate::models::info::{Architecture, Loaded, Loader};
use crate::models::net::{input_hw, numbered_stages, PoseNet, RunOptions, RunOutput, RunTensors};
use crate::models::{ModelInfo, StepClock, StepTime};
use crate::weights::TensorStore;

/// The network's name in errors.
const NAME: &str = "MMPose Hourglass";
/// The module path of the first (and only) hourglass.
const HOURGLASS: &str = "backbone.hourglass_modules.0";
/// The keys of `HourglassNet.inters`: with `num_stacks = 1` the `ResLayer` of
/// `num_stacks − 1 = 0` blocks still builds its first block, which only the merge between
/// stacks would use; its tensors are in every checkpoint and never read.
pub const UNUSED_INTERS_PREFIX: &str = "backbone.inters.";
/// The most hourglass levels accepted.
const MAX_DEPTH: usize = 8;

/// An MMPose `HourglassNet` (one stack) + `TopdownHeatmapMultiStageHead` configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The head's `out_channels`: heatmaps (joints).
    pub joints: usize,
    /// Width of the stem's 7×7 conv (`stage_channels[0] // 2` in MMPose).
    pub stem_channels: usize,
    /// `stage_channels`: the hourglass width at each level, outermost first; one more entry
    /// than levels (the last is the width of the innermost `ResLayer`).
    pub stage_channels: Vec<usize>,
    /// `stage_blocks`: BasicBlocks per `ResLayer` at each level, the same indexing.
    pub stage_blocks: Vec<usize>,
    /// `feat_channel`: the width of `out_convs.0`, the head's input.
    pub feat_channels: usize,
    /// The head's `final_conv_kernel` (1 in the configs).
    pub final_kernel: usize,
    /// `(height, width)` of the standard input.
    pub input_size: (usize, usize),
}

impl Config {
    /// `hourglass52_coco_256x256.py`.
    pub fn hourglass52_coco_256() -> Self {
        Self::hourglass52((256, 256))
    }

    /// `hourglass52_coco_384x384.py` (the same network, a larger crop).
    pub fn hourglass52_coco_384() -> Self {
        Self::hourglass52((384, 384))
    }

    /// `HourglassNet(num_stacks=1)` with its defaults (`downsample_times=5`,
    /// `stage_channels=(256, 256, 384, 384, 384, 512)`, `stage_blocks=(2, 2, 2, 2, 2, 4)`,
    /// `feat_channel=256`) and 17 COCO joints.
    fn hourglass52(input_size: (usize, usize)) -> Self {
        Self {
            joints: 17,
            stem_channels: 128,
            stage_channels: vec![256, 256, 384, 384, 384, 512],
            stage_blocks: vec![2, 2, 2, 2, 2, 4],
            feat_channels: 256,
            final_kernel: 1,
            input_size,
        }
    }

    /// Hourglass levels (`downsample_times`).
    pub fn depth(&self) -> usize {
        self.stage_channels.len().saturating_sub(1)
    }

    /// The input sides must be multiples of this (stride 4 of the stem, then one halving
    /// per level).
    pub fn input_multiple(&self) -> usize {
        4 << self.depth()
    }

    /// Infers the configuration from a checkpoint's tensor shapes (`shape(key)` is the
    /// shape of tensor `key` under its MMPose name, `None` if absent): the stem width from
    /// `backbone.stem.0.conv.weight`; per level, the width from `up1.0.conv1.weight`, the
    /// block count by counting `up1.{i}`, and the next level by the nesting of `low2`;
    /// the innermost width and block count from `low1.0.conv1.weight` and `low2.{i}`; the
    /// head width, joints and kernel from `backbone.out_convs.0.conv.weight` and
    /// `keypoint_head.multi_final_layers.0.weight`. `input_size` (`(height, width)`) is
    /// taken as given. Checkpoints of more than one stack are refused.
    pub fn from_shapes(
        shape: impl Fn(&str) -> Option<Vec<usize>>,
        input_size: (usize, usize),
    ) -> CResult<Self> {
        let conv = |key: &str| conv4(&shape, key, NAME);
        let count = |f: &dyn Fn(usize) -> String| count_present(&shape, f);
        let stacks = count(&|i| format!("backbone.hourglass_modules.{i}.up1.0.conv1.weight"));
        if stacks > 1 {
            candle_core::bail!(
                "{NAME}: a checkpoint of {stacks} stacks; only one stack (num_stacks=1, the \
                 published Hourglass-52) is supported"
            );
        }
        let stem_channels = conv("backbone.stem.0.conv.weight")?[0];
        let mut stage_channels = Vec::new();
        let mut stage_blocks = Vec::new();
        let mut prefix = HOURGLASS.to_string();
        loop {
            stage_channels.push(conv(&format!("{prefix}.up1.0.conv1.weight"))?[0]);
            stage_blocks.push(count(&|i| format!("{prefix}.up1.{i}.conv1.weight")));
            let inner = format!("{prefix}.low2");
            if shape(&format!("{inner}.up1.0.conv1.weight")).is_some()
                && stage_channels.len() < MAX_DEPTH
            {
                prefix = inner;
                continue;
            }
            stage_channels.push(conv(&format!("{prefix}.low1.0.conv1.weight"))?[0]);
            stage_blocks.push(count(&|i| format!("{inner}.{i}.conv1.weight")));
            break;
        }
        let out_conv = conv("backbone.out_convs.0.conv.weight")?;
        let fin = conv("keypoint_head.multi_final_layers.0.weight")?;
        let config = Self {
            joints: fin[0],
            stem_channels,
            stage_channels,
            stage_blocks,
            feat_channels: out_conv[0],
            final_kernel: fin[2],
            input_size,
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> CResult<()> {
        let depth = self.depth();
        if depth == 0 || depth > MAX_DEPTH || self.stage_blocks.len() != depth + 1 {
            candle_core::bail!("{NAME}: invalid configuration {self:?}");
        }
        if self.joints == 0
            || self.stem_channels == 0
            || self.feat_channels == 0
            || self.stage_channels.contains(&0)
            || self.stage_blocks.contains(&0)
        {
            candle_core::bail!("{NAME}: zero joints, channels or blocks in {self:?}");
        }
        if self.final_kernel.is_multiple_of(2) {
            candle_core::bail!("{NAME}: final conv kernel {} (odd only)", self.final_kernel);
        }
        Ok(())
    }
}

/// MMPose's BasicBlock (expansion 1), BN folded.
#[derive(Clone, Debug)]
struct BasicBlock {
    /// `conv1` (3×3, the stride) + `bn1` + ReLU.
    conv1: Conv,
    /// `conv2` (3×3) + `bn2`.
    conv2: Conv,
    /// `downsample.0` (1×1, the stride) + `downsample.1`, when the stride or width changes.
    downsample: Option<Conv>,
}

impl BasicBlock {
    fn load(vb: &VarBuilder, cin: usize, cout: usize, stride: usize) -> CResult<Self> {
        let downsample = if stride != 1 || cin != cout {
            Some(Conv::with_bn(
                vb,
                "downsample.0",
                "downsample.1",
                (cin, cout),
                1,
                stride,
                false,
            )?)
        } else {
            None
        };
        Ok(Self {
            conv1: Conv::with_bn(vb, "conv1", "bn1", (cin, cout), 3, stride, true)?,
            conv2: Conv::with_bn(vb, "conv2", "bn2", (cout, cout), 3, 1, false)?,
            downsample,
        })
    }

    fn forward(&self, x: &Tensor) -> CResult<Tensor> {
        let y = self.conv2.forward(&self.conv1.forward(x)?)?;
        match &self.downsample {
            Some(d) => bias_act::add_relu(y, &d.forward(x)?),
            None => bias_act::add_relu(y, x),
        }
    }
}

/// MMPose's `ResLayer` of BasicBlocks.
#[derive(Clone, Debug)]
struct ResLayer(Vec<BasicBlock>);

impl ResLayer {
    /// `ResLayer(BasicBlock, blocks, cin, cout, stride, downsample_first)` at `vb`
    /// (blocks `vb.0`, `vb.1`, …).
    fn load(
        vb: &VarBuilder,
        blocks: usize,
        (cin, cout): (usize, usize),
        stride: usize,
        downsample_first: bool,
    ) -> CResult<Self> {
        (0..blocks)
            .map(|b| {
                let vb = vb.pp(b.to_string());
                let last = b + 1 == blocks;
                if downsample_first {
                    match b {
                        0 => BasicBlock::load(&vb, cin, cout, stride),
                        _ => BasicBlock::load(&vb, cout, cout, 1),
                    }
                } else if last {
                    BasicBlock::load(&vb, cin, cout, stride)
                } else {
                    BasicBlock::load(&vb, cin, cin, 1)
                }
            })
            .collect::<CResult<Vec<_>>>()
            .map(Self)
    }

    fn forward(&self, x: &Tensor) -> CResult<Tensor> {
        let mut blocks = self.0.iter();
        let Some(first) = blocks.next() else {
            return Ok(x.clone());
        };
        blocks.try_fold(first.forward(x)?, |h, b| b.forward(&h))
    }
}

/// What an hourglass level does between `low1` and `low3`.
#[derive(Clone, Debug)]
enum Inner {
    /// The next level.
    Module(Box<HourglassModule>),
    /// The innermost `ResLayer`.
    Layer(ResLayer),
}

/// One `HourglassModule` level.
#[derive(Clone, Debug)]
struct HourglassModule {
    up1: ResLayer,
    low1: ResLayer,
    low2: Inner,
    low3: ResLayer,
}

impl HourglassModule {
    /// The module at `vb` on `channels` / `blocks` (this level's entries first).
    fn load(vb: &VarBuilder, channels: &[usize], blocks: &[usize]) -> CResult<Self> {
        let (&[c, n, ..], &[b, b_next, ..]) = (channels, blocks) else {
            candle_core::bail!("{NAME}: fewer than two stage widths or block counts");
        };
        // In the checkpoint's order: up1, low1, low2, low3.
        let up1 = ResLayer::load(&vb.pp("up1"), b, (c, c), 1, true)?;
        let low1 = ResLayer::load(&vb.pp("low1"), b, (c, n), 2, true)?;
        let low2 = if channels.len() > 2 {
            Inner::Module(Box::new(Self::load(
                &vb.pp("low2"),
                &channels[1..],
                &blocks[1..],
            )?))
        } else {
            Inner::Layer(ResLayer::load(&vb.pp("low2"), b_next, (n, n), 1, true)?)
        };
        let low3 = ResLayer::load(&vb.pp("low3"), b, (n, c), 1, false)?;
        Ok(Self {
            up1,
            low1,
            low2,
            low3,
        })
    }

    /// The module's output; each level's `low1` output is pushed outermost first, its
    /// `low2` output innermost first.
    fn forward(
        &self,
        x: &Tensor,
        low1s: &mut Vec<Tensor>,
        low2s: &mut Vec<Tensor>,
    ) -> CResult<Tensor> {
        let up1 = self.up1.forward(x)?;
        let low1 = self.low1.forward(x)?;
        low1s.push(low1.clone());
        let low2 = match &self.low2 {
            Inner::Module(m) => m.forward(&low1, low1s, low2s)?,
            Inner::Layer(l) => l.forward(&low1)?,
        };
        low2s.push(low2.clone());
        let low3 = self.low3.forward(&low2)?;
        // `up1 + nearest×2(low3)`, no ReLU.
        bias_act::add_upsampled(up1, &low3, 2, false)
    }
}

/// Every output and intermediate of one forward pass, `[N, C, h, w]`, for an input of
/// `H × W`.
#[derive(Clone, Debug)]
pub struct MmposeHourglassOutputs {
    /// `keypoint_head.multi_final_layers.0`: one heatmap per joint at `H/4 × W/4` (MMPose's
    /// `output[0]`, the only stack).
    pub heatmaps: Tensor,
    /// `backbone.stem`: the hourglass input (256 ch at `H/4`).
    pub stem: Tensor,
    /// `low1` of each level, outermost first (`…hourglass_modules.0.low1`, `….low2.low1`,
    /// …): `H/8`, `H/16`, … `H/128`.
    pub low1: Vec<Tensor>,
    /// `low2` of each level, outermost first (`…hourglass_modules.0.low2`, `….low2.low2`,
    /// …): the inner hourglass module's output, and last the innermost `ResLayer`'s.
    pub low2: Vec<Tensor>,
    /// `backbone.hourglass_modules.0`: the hourglass output at `H/4`.
    pub hourglass: Tensor,
    /// `backbone.out_convs.0`: the head input at `H/4`.
    pub features: Tensor,
}

impl MmposeHourglassOutputs {
    /// The MMPose module path of `low2[level]`: `backbone.hourglass_modules.0.low2`, then one
    /// `.low2` more per level.
    pub fn low2_path(level: usize) -> String {
        format!("{HOURGLASS}{}", ".low2".repeat(level + 1))
    }

    /// The MMPose module path of `low1[level]`.
    pub fn low1_path(level: usize) -> String {
        format!("{HOURGLASS}{}.low1", ".low2".repeat(level))
    }
}

/// MMPose's Hourglass-52 (one stack) with its weights (BatchNorm folded) on a device.
#[derive(Clone, Debug)]
pub struct MmposeHourglass {
    config: Config,
    /// `backbone.stem.0`.
    stem_conv: Conv,
    /// `backbone.stem.1`.
    stem_layer: ResLayer,
    hourglass: HourglassModule,
    /// `backbone.out_convs.0`.
    out_conv: Conv,
    /// `keypoint_head.multi_final_layers.0`.
    final_layer: Conv,
    device: Device,
}

impl MmposeHourglass {
    /// Builds the network from `vb` (MMPose parameter names, `backbone.` / `keypoint_head.`
    /// included, under `vb`'s prefix). Every `state_dict` tensor except
    /// `num_batches_tracked` and the unused `backbone.inters.0.*` is read exactly once.
    pub fn load(vb: VarBuilder, config: Config) -> CResult<Self> {
        config.validate()?;
        let c0 = config.stage_channels[0];
        let bb = vb.pp("backbone");
        let stem_conv = Conv::with_bn(
            &bb,
            "stem.0.conv",
            "stem.0.bn",
            (3, config.stem_channels),
            7,
            2,
            true,
        )?;
        let stem_layer = ResLayer::load(&bb.pp("stem.1"), 1, (config.stem_channels, c0), 2, true)?;
        let hourglass = HourglassModule::load(
            &bb.pp("hourglass_modules.0"),
            &config.stage_channels,
            &config.stage_blocks,
        )?;
        let out_conv = Conv::with_bn(
            &bb,
            "out_convs.0.conv",
            "out_convs.0.bn",
            (c0, config.feat_channels),
            3,
            1,
            true,
        )?;
        let final_layer = Conv::with_bias(
            &vb,
            "keypoint_head.multi_final_layers.0",
            (config.feat_channels, config.joints),
            config.final_kernel,
        )?;
        Ok(Self {
            config,
            stem_conv,
            stem_layer,
            hourglass,
            out_conv,
            final_layer,
            device: vb.device().clone(),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Runs the network on `x` (`[N, 3, H, W]`, see the module docs).
    pub fn forward(&self, x: &Tensor) -> CResult<MmposeHourglassOutputs> {
        self.forward_steps(x, None)
    }

    /// [`MmposeHourglass::forward`] with the wall time of each step: `stem`, `hourglass`,
    /// `head` (`out_convs.0` and the final conv).
    pub fn forward_profiled(&self, x: &Tensor) -> CResult<(MmposeHourglassOutputs, Vec<StepTime>)> {
        let mut times = Vec::with_capacity(3);
        let out = self.forward_steps(x, Some(&mut times))?;
        Ok((out, times))
    }

    fn forward_steps(
        &self,
        x: &Tensor,
        times: Option<&mut Vec<StepTime>>,
    ) -> CResult<MmposeHourglassOutputs> {
        let x = crate::models::blocks::ops::image_batch(x, self.config.input_multiple(), NAME)?;
        let mut clock = StepClock::new(&self.device, times);
        let stem = self.stem_layer.forward(&self.stem_conv.forward(&x)?)?;
        clock.lap("stem")?;
        let depth = self.config.depth();
        let (mut low1, mut low2) = (Vec::with_capacity(depth), Vec::with_capacity(depth));
        let hourglass = self.hourglass.forward(&stem, &mut low1, &mut low2)?;
        low2.reverse();
        clock.lap("hourglass")?;
        let features = self.out_conv.forward(&hourglass)?;
        let heatmaps = self.final_layer.forward(&features)?;
        clock.lap("head")?;
        Ok(MmposeHourglassOutputs {
            heatmaps,
            stem,
            low1,
            low2,
            hourglass,
            features,
        })
    }
}

/// MMPose's Hourglass-52 (MMPose `state_dict` names); the widths and depth from the
/// checkpoint.
pub static ARCHITECTURE: Architecture = Architecture {
    id: "hourglass-mmpose",
    name: "MMPose Hourglass-52 (HourglassNet, 1 stack; top-down, heatmaps at 1/4)",
    top_down: true,
    // The configs' `test_cfg`: `flip_test=True`, `shift_heatmap=True`.
    flip_shifts_heatmap: true,
    grid: crate::pose::GridAlign::Centre,
    loader: Loader::Checkpoint(load_checkpoint),
};

fn load_checkpoint(
    info: &'static ModelInfo,
    store: TensorStore,
    device: &Device,
) -> CResult<Loaded> {
    let (h, w) = (info.input_size.1 as usize, info.input_size.0 as usize);
    let config = Config::from_shapes(|k| store.get_any(k).ok().map(|t| t.dims().to_vec()), (h, w))?;
    let (vb, usage) =
        crate::weights::varbuilder::var_builder(store, candle_core::DType::F32, device);
    let net = MmposeHourglass::load(vb, config)?;
    let mut unused_keys = usage.unused_keys();
    // `backbone.inters.0.*` is in every one-stack checkpoint but only the merge between
    // stacks would apply it (see `UNUSED_INTERS_PREFIX`): an expected leftover.
    unused_keys.retain(|k| !k.starts_with(UNUSED_INTERS_PREFIX));
    Ok(Loaded {
        net: Box::new(net),
        unused_keys,
    })
}

impl PoseNet for MmposeHourglass {
    /// One stage, the only stack (labelled like the Stacked Hourglass's stacks); features:
    /// the hourglass input, each level's `low1`, the hourglass output and the head input.
    fn run(&self, input: &Tensor, _options: &RunOptions) -> CResult<RunOutput> {
        let size = input_hw(input)?;
        let (out, times) = self.forward_profiled(input)?;
        let stages = numbered_stages(std::slice::from_ref(&out.heatmaps), |t| {
            format!("stack {}", t + 1)
        });
        let single = |key: &str, name: &str, t: &Tensor| {
            FeatureTensor::new(
                key,
                features::with_stride(name, size, t)?,
                t,
                CellField::Unknown,
            )
        };
        let mut maps = vec![single("stem", "hourglass input", &out.stem)?];
        maps.extend(features::numbered("low1.", "low1 level", size, &out.low1)?);
        maps.push(single("hourglass", "hourglass output", &out.hourglass)?);
        maps.push(single("out_conv", "head input", &out.features)?);
        RunTensors {
            stages,
            features: maps,
            steps: times,
        }
        .fetch()
    }

    fn clone_box(&self) -> Box<dyn PoseNet> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::weights::posegen;

    /// A narrow two-level network on posegen weights.
    fn small() -> (MmposeHourglass, posegen::Recorder) {
        let (vb, rec) = posegen::var_builder(0.65, &Device::Cpu);
        let config = Config {
            joints: 3,
            stem_channels: 4,
            stage_channels: vec![8, 8, 12],
            stage_blocks: vec![2, 1, 3],
            feat_channels: 6,
            final_kernel: 1,
            input_size: (32, 64),
        };
        (MmposeHourglass::load(vb, config).unwrap(), rec)
    }

    #[test]
    fn small_network_reads_the_mmpose_keys_and_runs() {
        let (net, rec) = small();
        let keys: Vec<String> = rec
            .requests()
            .into_iter()
            .map(|(k, _)| k)
            .filter(|k| k.ends_with("conv1.weight") || k.contains("downsample.0"))
            .collect();
        let hg = HOURGLASS;
        assert_eq!(
            keys,
            [
                "backbone.stem.1.0.downsample.0.weight".to_string(),
                "backbone.stem.1.0.conv1.weight".into(),
                format!("{hg}.up1.0.conv1.weight"),
                format!("{hg}.up1.1.conv1.weight"),
                // Stride 2 at the same width: a skip conv all the same.
                format!("{hg}.low1.0.downsample.0.weight"),
                format!("{hg}.low1.0.conv1.weight"),
                format!("{hg}.low1.1.conv1.weight"),
                format!("{hg}.low2.up1.0.conv1.weight"),
                format!("{hg}.low2.low1.0.downsample.0.weight"),
                format!("{hg}.low2.low1.0.conv1.weight"),
                format!("{hg}.low2.low2.0.conv1.weight"),
                format!("{hg}.low2.low2.1.conv1.weight"),
                format!("{hg}.low2.low2.2.conv1.weight"),
                // low3 changes the width on its last block.
                format!("{hg}.low2.low3.0.downsample.0.weight"),
                format!("{hg}.low2.low3.0.conv1.weight"),
                format!("{hg}.low3.0.conv1.weight"),
                format!("{hg}.low3.1.conv1.weight"),
            ]
        );
        let shapes = |k: &str| {
            rec.requests()
                .into_iter()
                .find(|(key, _)| key == k)
                .map(|(_, s)| s)
        };
        assert_eq!(
            Config::from_shapes(shapes, (32, 64)).unwrap(),
            *net.config()
        );

        let x = Tensor::zeros((1, 3, 32, 64), candle_core::DType::F32, &Device::Cpu).unwrap();
        let (out, times) = net.forward_profiled(&x).unwrap();
        assert_eq!(out.heatmaps.dims(), &[1, 3, 8, 16]);
        assert_eq!(out.stem.dims(), &[1, 8, 8, 16]);
        let dims = |v: &[Tensor]| v.iter().map(|t| t.dims().to_vec()).collect::<Vec<_>>();
        assert_eq!(dims(&out.low1), [vec![1, 8, 4, 8], vec![1, 12, 2, 4]]);
        assert_eq!(dims(&out.low2), [vec![1, 8, 4, 8], vec![1, 12, 2, 4]]);
        assert_eq!(out.features.dims(), &[1, 6, 8, 16]);
        assert_eq!(times.len(), 3);
        assert!(net
            .forward(&Tensor::zeros((1, 3, 32, 40), candle_core::DType::F32, &Device::Cpu).unwrap())
            .is_err());

        let run = net.run(&x, &RunOptions::default()).unwrap();
        assert_eq!(run.stages.len(), 1);
        assert_eq!(run.stages[0].key, "stage1");
        assert_eq!(run.stages[0].label, "stack 1");
        let keys: Vec<&str> = run.features.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(keys, ["stem", "low1.1", "low1.2", "hourglass", "out_conv"]);
    }

    #[test]
    fn hourglass52_is_the_mmpose_default() {
        let c = Config::hourglass52_coco_256();
        assert_eq!(c.depth(), 5);
        assert_eq!(c.input_multiple(), 128);
        assert_eq!(Config::hourglass52_coco_384().input_size, (384, 384));
        assert_eq!(
            MmposeHourglassOutputs::low2_path(3),
            "backbone.hourglass_modules.0.low2.low2.low2.low2"
        );
        assert_eq!(
            MmposeHourglassOutputs::low1_path(1),
            "backbone.hourglass_modules.0.low2.low1"
        );
    }
}
