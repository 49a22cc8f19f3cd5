//! HigherHRNet: Cheng, Xiao, Wang, Shi, Huang, Zhang, "HigherHRNet: Scale-Aware
//! Representation Learning for Bottom-Up Human Pose Estimation", CVPR 2020, on the HRNet
//! backbone of Sun, Xiao, Liu, Wang, "Deep High-Resolution Representation Learning for Human
//! Pose Estimation", CVPR 2019. Bottom-up: one pass over the whole image gives per-joint
//! heatmaps at 1/4 and 1/2 of the input resolution and associative-embedding tag maps at 1/4,
//! which a grouping step turns into people.
//!
//! Built as in the official code `HRNet/HigherHRNet-Human-Pose-Estimation`
//! (`lib/models/pose_higher_hrnet.py`, `experiments/coco/higher_hrnet/*.yaml`), with the
//! parameter names of its `state_dict`, so an official checkpoint loads as it is:
//!
//! | part | keys | what it does |
//! |---|---|---|
//! | stem | `conv1`, `bn1`, `conv2`, `bn2` | 3×3 s2 conv + BN + ReLU, twice (64 ch, stride 4) |
//! | `layer1.{0..3}` | `conv1..3`, `bn1..3`, `layer1.0.downsample.{0,1}` | 4 Bottlenecks, 64 → 256 ch |
//! | `transition{t}.{i}` | `.0` conv / `.1` BN, or `.{j}.0` / `.{j}.1` for a new branch | channel change (3×3 s1) of an existing branch, or 3×3 s2 convs from the lowest branch to a new one |
//! | `stage{s}.{m}.branches.{b}.{k}` | `conv1`, `bn1`, `conv2`, `bn2` | BasicBlocks, 4 per branch |
//! | `stage{s}.{m}.fuse_layers.{i}.{j}` | `j > i`: `.0` 1×1 conv, `.1` BN, then nearest ×2^(j−i); `j < i`: `.{k}.0` 3×3 s2 conv, `.{k}.1` BN (+ ReLU but the last) | exchange between resolutions: `out_i = ReLU(Σ_j f_ij(x_j))` |
//! | `final_layers.0` | `weight`, `bias` (1×1 conv) | `output_0` at 1/4: `joints` heatmaps then the tag maps |
//! | `deconv_layers.0.0` | `.0` ConvTranspose2d k4 s2 p1 (no bias, `[in, out, kh, kw]`), `.1` BN, ReLU | reads `cat(stage4[0], output_0)` |
//! | `deconv_layers.0.{1..4}.0` | `conv1`, `bn1`, `conv2`, `bn2` | BasicBlocks at 1/2 |
//! | `final_layers.1` | `weight`, `bias` | `output_1` at 1/2: `joints` heatmaps |
//!
//! Stages 2, 3, 4 have 2, 3, 4 branches of widths `[w, 2w]`, `[w, 2w, 4w]`, `[w, 2w, 4w, 8w]`
//! and 1, 4, 3 modules (`FUSE_METHOD: SUM`); the last module of stage 4 keeps only the
//! highest-resolution output. The stem (64) and `layer1` (256) widths are fixed in the
//! official code. BatchNorm runs in eval mode (running statistics, eps 1e-5) and is folded
//! into the preceding convolution when the network is loaded (in f64, then rounded to f32).
//!
//! Input: `[N, 3, H, W]`, R,G,B, `(u8 / 255 − mean) / std` with the ImageNet mean
//! (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225). `H` and `W` must be multiples of 32
//! (the lowest branch is at 1/32); the official test code resizes to multiples of 64.
//! Outputs: see [`HigherHrnetOutputs`].

use candle_core::{Device, Result as CResult, Tensor};
use candle_nn::VarBuilder;

pub use crate::models::blocks::folded::BN_EPS;
use crate::models::blocks::folded::{bn_affine, fold, Conv};
use crate::models::blocks::hrnet_backbone::{Backbone, BasicBlock};
pub use crate::models::blocks::hrnet_backbone::{
    StageConfig, INPUT_MULTIPLE, LAYER1_PLANES, STEM_CHANNELS,
};
use crate::models::checkpoint_shapes;
use crate::models::features::{self, CellField, FeatureTensor};
use crate::models::info::{Architecture, Loaded, Loader};
use crate::models::net::{input_hw, PoseNet, RunOptions, RunOutput, RunTensors, StageTensors};
use crate::models::{ModelInfo, StepClock, StepTime};
use crate::weights::{mmpose, TensorStore};

/// A HigherHRNet configuration (the `MODEL` and `LOSS` parts of the official yaml that shape
/// the network; one deconvolution, `CAT_OUTPUT: [True]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `MODEL.NUM_JOINTS`: heatmaps per resolution.
    pub joints: usize,
    /// `MODEL.TAG_PER_JOINT`: one tag map per joint (else a single tag map).
    pub tag_per_joint: bool,
    /// `LOSS.WITH_AE_LOSS[0]`: `output_0` carries tag maps after the heatmaps. (`output_1`
    /// never does: `WITH_AE_LOSS[1]` is false in every official model.)
    pub tags: bool,
    /// Bottlenecks of `layer1` (`STAGE1.NUM_BLOCKS`, 4).
    pub layer1_blocks: usize,
    /// Stages 2, 3 and 4.
    pub stages: [StageConfig; 3],
    /// `DECONV.CAT_OUTPUT[0]`: the deconvolution reads `cat(stage4[0], output_0)`.
    pub cat_output: bool,
    /// `DECONV.NUM_CHANNELS[0]`.
    pub deconv_channels: usize,
    /// `DECONV.KERNEL_SIZE[0]`: 4 (padding 1), 3 (padding 1, output padding 1) or 2.
    pub deconv_kernel: usize,
    /// `DECONV.NUM_BASIC_BLOCKS`.
    pub deconv_blocks: usize,
    /// `EXTRA.FINAL_CONV_KERNEL`: 1 or 3.
    pub final_kernel: usize,
}

/// Why a configuration could not be inferred from a checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("no tensor '{0}' (not a HigherHRNet checkpoint, or a truncated one)")]
    Missing(String),
    #[error("tensor '{key}' has shape {shape:?}, expected {expected}")]
    Shape {
        key: String,
        shape: Vec<usize>,
        expected: &'static str,
    },
    #[error("unsupported HigherHRNet variant: {0}")]
    Unsupported(String),
}

impl Config {
    /// The official W32 model (`w32_512_adam_lr1e-3.yaml`, also `w32_640`): widths
    /// 32/64/128/256, deconvolution 32.
    pub fn w32() -> Self {
        Self::with_width(32)
    }

    /// The official W48 model (`w48_640_adam_lr1e-3.yaml`): widths 48/96/192/384,
    /// deconvolution 48.
    pub fn w48() -> Self {
        Self::with_width(48)
    }

    /// The official layout with branch widths `w, 2w, 4w, 8w` and `w` deconvolution
    /// channels (e.g. `with_width(8)` is the `higherhrnet_w8_pth` fixture): 17 joints, a tag
    /// per joint, 1/4/3 modules of 4 BasicBlocks, 4 BasicBlocks after the deconvolution,
    /// 1×1 final convolutions.
    pub fn with_width(w: usize) -> Self {
        let stage = |modules: usize, branches: usize| StageConfig {
            modules,
            blocks: 4,
            channels: (0..branches).map(|b| w << b).collect(),
        };
        Self {
            joints: 17,
            tag_per_joint: true,
            tags: true,
            layer1_blocks: 4,
            stages: [stage(1, 2), stage(4, 3), stage(3, 4)],
            cat_output: true,
            deconv_channels: w,
            deconv_kernel: 4,
            deconv_blocks: 4,
            final_kernel: 1,
        }
    }

    /// Tag maps in `output_0`: `joints` with a tag per joint, else 1; 0 without tags.
    pub fn tag_channels(&self) -> usize {
        match (self.tags, self.tag_per_joint) {
            (false, _) => 0,
            (true, true) => self.joints,
            (true, false) => 1,
        }
    }

    /// Channels of `output_0` (heatmaps, then tags).
    pub fn output0_channels(&self) -> usize {
        self.joints + self.tag_channels()
    }

    /// Width of the highest-resolution branch (the input of the head).
    pub fn head_channels(&self) -> usize {
        self.stages[2].channels.first().copied().unwrap_or(0)
    }

    /// Input channels of the deconvolution.
    pub fn deconv_in_channels(&self) -> usize {
        self.head_channels()
            + if self.cat_output {
                self.output0_channels()
            } else {
                0
            }
    }

    /// Infers the configuration from a checkpoint's tensor shapes (`shape(key)` is the
    /// shape of the tensor `key` under its official name, `None` if absent): branch widths
    /// and counts from `stage{s}.0.branches.{b}.0.conv1.weight`, module and block counts by
    /// counting keys, joints and tags from `final_layers.{0,1}.weight`, the deconvolution
    /// from `deconv_layers.0.0.0.weight`. A checkpoint of any width loads this way.
    pub fn from_shapes(shape: impl Fn(&str) -> Option<Vec<usize>>) -> Result<Self, ConfigError> {
        let get = |key: &str| shape(key).ok_or_else(|| ConfigError::Missing(key.to_string()));
        let count = |f: &dyn Fn(usize) -> String| checkpoint_shapes::count_present(&shape, f);
        let conv4 = |key: &str, expected: &'static str| -> Result<[usize; 4], ConfigError> {
            let s = get(key)?;
            <[usize; 4]>::try_from(s.as_slice()).map_err(|_| ConfigError::Shape {
                key: key.to_string(),
                shape: s.clone(),
                expected,
            })
        };

        let layer1_blocks = count(&|b| format!("layer1.{b}.conv1.weight"));
        if layer1_blocks == 0 {
            return Err(ConfigError::Missing("layer1.0.conv1.weight".into()));
        }
        let mut stages = Vec::with_capacity(3);
        for s in 2..=4 {
            let branches = count(&|b| format!("stage{s}.0.branches.{b}.0.conv1.weight"));
            if branches == 0 {
                return Err(ConfigError::Missing(format!(
                    "stage{s}.0.branches.0.0.conv1.weight"
                )));
            }
            let channels = (0..branches)
                .map(|b| {
                    conv4(
                        &format!("stage{s}.0.branches.{b}.0.conv1.weight"),
                        "[C, C, 3, 3]",
                    )
                    .map(|d| d[0])
                })
                .collect::<Result<Vec<_>, _>>()?;
            stages.push(StageConfig {
                modules: count(&|m| format!("stage{s}.{m}.branches.0.0.conv1.weight")),
                blocks: count(&|k| format!("stage{s}.0.branches.0.{k}.conv1.weight")),
                channels,
            });
        }
        let stages: [StageConfig; 3] = stages
            .try_into()
            .map_err(|_| ConfigError::Unsupported("not three stages".into()))?;

        let f0 = conv4("final_layers.0.weight", "[K, C, k, k]")?;
        let f1 = conv4("final_layers.1.weight", "[K, C, k, k]")?;
        if shape("final_layers.2.weight").is_some() || shape("deconv_layers.1.0.0.weight").is_some()
        {
            return Err(ConfigError::Unsupported(
                "more than one deconvolution (DECONV.NUM_DECONVS > 1)".into(),
            ));
        }
        let joints = f1[0];
        let tag_dim = f0[0].checked_sub(joints).ok_or(ConfigError::Shape {
            key: "final_layers.0.weight".into(),
            shape: f0.to_vec(),
            expected: "at least as many output channels as final_layers.1",
        })?;
        let (tags, tag_per_joint) = match tag_dim {
            0 => (false, true),
            1 => (true, joints == 1),
            t if t == joints => (true, true),
            t => {
                return Err(ConfigError::Unsupported(format!(
                    "output_0 has {t} tag channels for {joints} joints"
                )))
            }
        };
        let deconv = conv4("deconv_layers.0.0.0.weight", "[C_in, C_out, k, k]")?;
        let head = stages[2].channels[0];
        let cat_output = if deconv[0] == head + f0[0] {
            true
        } else if deconv[0] == head {
            false
        } else {
            return Err(ConfigError::Shape {
                key: "deconv_layers.0.0.0.weight".into(),
                shape: deconv.to_vec(),
                expected: "[stage4 width (+ output_0 channels), C_out, k, k]",
            });
        };
        Ok(Self {
            joints,
            tag_per_joint,
            tags,
            layer1_blocks,
            stages,
            cat_output,
            deconv_channels: deconv[1],
            deconv_kernel: deconv[2],
            deconv_blocks: count(&|k| format!("deconv_layers.0.{}.0.conv1.weight", k + 1)),
            final_kernel: f0[2],
        })
    }

    fn validate(&self) -> CResult<()> {
        let mut prev = 1;
        for (i, s) in self.stages.iter().enumerate() {
            if s.channels.len() < prev || s.modules == 0 || s.blocks == 0 {
                candle_core::bail!(
                    "HigherHRNet stage{}: needs ≥ {prev} branches, ≥ 1 module and ≥ 1 block, got {s:?}",
                    i + 2
                );
            }
            if s.channels.contains(&0) {
                candle_core::bail!("HigherHRNet stage{}: a branch of width 0", i + 2);
            }
            prev = s.channels.len();
        }
        if !matches!(self.final_kernel, 1 | 3) {
            candle_core::bail!(
                "HigherHRNet: final conv kernel {} (1 or 3 supported)",
                self.final_kernel
            );
        }
        deconv_padding(self.deconv_kernel)?;
        if self.joints == 0 || self.deconv_channels == 0 || self.layer1_blocks == 0 {
            candle_core::bail!("HigherHRNet: zero joints, deconv channels or layer1 blocks");
        }
        Ok(())
    }
}

/// `(padding, output_padding)` of the official `_get_deconv_cfg`.
fn deconv_padding(kernel: usize) -> CResult<(usize, usize)> {
    match kernel {
        4 => Ok((1, 0)),
        3 => Ok((1, 1)),
        2 => Ok((0, 0)),
        k => candle_core::bail!("HigherHRNet: deconvolution kernel {k} (4, 3 or 2 supported)"),
    }
}

/// Every output and intermediate of one forward pass, `[N, C, H, W]`, for an input of
/// `H × W`.
#[derive(Clone, Debug)]
pub struct HigherHrnetOutputs {
    /// `final_layers.0` at `H/4 × W/4`: channels `0..joints` are heatmaps, then the tag
    /// maps ([`Config::tag_channels`]).
    pub output_0: Tensor,
    /// `final_layers.1` at `H/2 × W/2`: `joints` heatmaps.
    pub output_1: Tensor,
    /// The stem's second BatchNorm, before its ReLU (64 ch, `H/4`).
    pub bn2: Tensor,
    /// `layer1` (256 ch, `H/4`).
    pub layer1: Tensor,
    /// Stage 2's outputs, highest resolution first (`H/4`, `H/8`).
    pub stage2: Vec<Tensor>,
    /// Stage 3's outputs (`H/4`, `H/8`, `H/16`).
    pub stage3: Vec<Tensor>,
    /// Stage 4's output: only the highest resolution (`H/4`).
    pub stage4: Vec<Tensor>,
    /// Each branch of the last stage-4 module after its BasicBlocks and before the fuse
    /// (`H/4`, `H/8`, `H/16`, `H/32`).
    pub stage4_branches: Vec<Tensor>,
    /// `deconv_layers.0.0`: transposed conv + BN + ReLU (`H/2`).
    pub deconv_upsampled: Tensor,
    /// `deconv_layers.0`: after the BasicBlocks, the input of `final_layers.1` (`H/2`).
    pub deconv: Tensor,
}

/// A HigherHRNet with its weights (BatchNorm folded) on a device.
#[derive(Clone, Debug)]
pub struct HigherHrnet {
    config: Config,
    backbone: Backbone,
    final0: Conv,
    deconv: Conv,
    deconv_blocks: Vec<BasicBlock>,
    final1: Conv,
    device: Device,
}

impl HigherHrnet {
    /// Builds the network from `vb` (official parameter names under `vb`'s prefix). Every
    /// `state_dict` tensor except `num_batches_tracked` is read exactly once.
    pub fn load(vb: VarBuilder, config: Config) -> CResult<Self> {
        config.validate()?;
        let backbone = Backbone::load(&vb, config.layer1_blocks, &config.stages)?;

        let head = config.head_channels();
        let k = config.final_kernel;
        let final0 = Conv::with_bias(&vb, "final_layers.0", (head, config.output0_channels()), k)?;
        let dc = config.deconv_channels;
        let dk = config.deconv_kernel;
        let (pad, output_pad) = deconv_padding(dk)?;
        let dvb = vb.pp("deconv_layers.0");
        let w = dvb
            .pp("0.0")
            .get((config.deconv_in_channels(), dc, dk, dk), "weight")?;
        let (scale, shift) = bn_affine(&dvb.pp("0.1"), dc)?;
        let (weight, bias) = fold(&w, &scale, &shift, 1, vb.device())?;
        let deconv = Conv::transposed(weight, &bias, (pad, output_pad), true)?;
        let deconv_blocks = (0..config.deconv_blocks)
            .map(|b| BasicBlock::load(&dvb.pp(format!("{}.0", b + 1)), dc))
            .collect::<CResult<Vec<_>>>()?;
        let final1 = Conv::with_bias(&vb, "final_layers.1", (dc, config.joints), k)?;
        Ok(Self {
            config,
            backbone,
            final0,
            deconv,
            deconv_blocks,
            final1,
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
    pub fn forward(&self, x: &Tensor) -> CResult<HigherHrnetOutputs> {
        self.forward_steps(x, None)
    }

    /// [`HigherHrnet::forward`] with the wall time of each step: `stem`, `layer1`,
    /// `stage2`, `stage3`, `stage4` (each with its transition), `final 1/4`, `deconv` (with
    /// its BasicBlocks), `final 1/2`.
    pub fn forward_profiled(&self, x: &Tensor) -> CResult<(HigherHrnetOutputs, Vec<StepTime>)> {
        let mut times = Vec::with_capacity(8);
        let out = self.forward_steps(x, Some(&mut times))?;
        Ok((out, times))
    }

    fn forward_steps(
        &self,
        x: &Tensor,
        times: Option<&mut Vec<StepTime>>,
    ) -> CResult<HigherHrnetOutputs> {
        let x = crate::models::blocks::ops::image_batch(x, INPUT_MULTIPLE, "HigherHRNet")?;
        let mut clock = StepClock::new(&self.device, times);

        let backbone = self.backbone.forward(&x, &mut clock)?;
        let (bn2, layer1, stage4_branches) =
            (backbone.bn2, backbone.layer1, backbone.last_branches);
        let [stage2, stage3, stage4] = backbone.stages;
        let Some(top) = stage4.first() else {
            candle_core::bail!("HigherHRNet: stage 4 produced no output");
        };

        let output_0 = self.final0.forward(top)?;
        clock.lap("final 1/4")?;
        let deconv_in = if self.config.cat_output {
            Tensor::cat(&[top, &output_0], 1)?
        } else {
            top.clone()
        };
        let deconv_upsampled = self.deconv.forward(&deconv_in)?;
        let deconv = self
            .deconv_blocks
            .iter()
            .try_fold(deconv_upsampled.clone(), |h, b| b.forward(&h))?;
        clock.lap("deconv")?;
        let output_1 = self.final1.forward(&deconv)?;
        clock.lap("final 1/2")?;
        Ok(HigherHrnetOutputs {
            output_0,
            output_1,
            bn2,
            layer1,
            stage2,
            stage3,
            stage4,
            stage4_branches,
            deconv_upsampled,
            deconv,
        })
    }
}

/// Splits `output_0` (`[N, joints + tags, H, W]`) into heatmaps and tag maps (`None` when
/// it has no tag channels).
pub fn split_output0(output_0: &Tensor, joints: usize) -> CResult<(Tensor, Option<Tensor>)> {
    let c = output_0.dim(1)?;
    if c < joints {
        candle_core::bail!("output_0 has {c} channels, fewer than the {joints} joints");
    }
    let heat = output_0.narrow(1, 0, joints)?;
    let tags = (c > joints)
        .then(|| output_0.narrow(1, joints, c - joints))
        .transpose()?;
    Ok((heat, tags))
}

/// HigherHRNet from a PyTorch checkpoint under the official names or MMPose's
/// (`backbone.` / `keypoint_head.`); the width comes from the tensor shapes.
pub static ARCHITECTURE: Architecture = Architecture {
    id: "higherhrnet",
    name: "HigherHRNet (HRNet backbone, 1/4 and 1/2 resolution heatmaps, AE tags)",
    top_down: false,
    flip_shifts_heatmap: false,
    grid: crate::pose::GridAlign::Centre,
    loader: Loader::Checkpoint(load_checkpoint),
};

fn load_checkpoint(
    _info: &'static ModelInfo,
    store: TensorStore,
    device: &Device,
) -> CResult<Loaded> {
    let is_mmpose = mmpose::is_mmpose(store.names());
    // Errors name tensors by their official names; say so for MMPose files.
    let note = |e: candle_core::Error| {
        if is_mmpose {
            e.context(
                "an MMPose checkpoint: tensor names below are the official ones, which the \
                 file has under 'backbone.' / 'keypoint_head.'",
            )
        } else {
            e
        }
    };
    let store = mmpose::to_official(store);
    let config = Config::from_shapes(|k| store.get_any(k).ok().map(|t| t.dims().to_vec()))
        .map_err(|e| note(candle_core::Error::wrap(e)))?;
    let (vb, usage) =
        crate::weights::varbuilder::var_builder(store, candle_core::DType::F32, device);
    let net = HigherHrnet::load(vb, config).map_err(note)?;
    Ok(Loaded {
        net: Box::new(net),
        unused_keys: usage.unused_keys(),
    })
}

impl PoseNet for HigherHrnet {
    /// One raw pass: no flip, no aggregation of the two resolutions (the pipeline's
    /// test-time procedure does that).
    fn run(&self, input: &Tensor, _options: &RunOptions) -> CResult<RunOutput> {
        let size = input_hw(input)?;
        let (out, times) = self.forward_profiled(input)?;
        let (heat0, tags0) = split_output0(&out.output_0, self.config.joints)?;
        let stages = vec![
            StageTensors {
                label: "1/4 resolution (output_0)".into(),
                key: "res0".into(),
                heatmaps: heat0,
                pafs: None,
                tags: tags0,
            },
            StageTensors::heatmaps("1/2 resolution (output_1)", "res1", &out.output_1),
        ];
        let mut features =
            features::numbered("stage4.branch", "branch", size, &out.stage4_branches)?;
        features.push(FeatureTensor::new(
            "deconv",
            features::with_stride("deconv", size, &out.deconv)?,
            &out.deconv,
            CellField::Unknown,
        )?);
        RunTensors {
            stages,
            features,
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

    #[test]
    fn widths_follow_the_official_yaml() {
        let c = Config::w32();
        assert_eq!(c.stages[0].channels, [32, 64]);
        assert_eq!(c.stages[1].channels, [32, 64, 128]);
        assert_eq!(c.stages[2].channels, [32, 64, 128, 256]);
        assert_eq!(
            c.stages.iter().map(|s| s.modules).collect::<Vec<_>>(),
            [1, 4, 3]
        );
        assert_eq!(c.output0_channels(), 34);
        assert_eq!(c.deconv_in_channels(), 66);
        assert_eq!(Config::w48().stages[2].channels, [48, 96, 192, 384]);
    }

    #[test]
    fn config_is_inferred_from_the_shapes_it_requests() {
        for cfg in [Config::with_width(8), Config::w48()] {
            let (vb, rec) = posegen::var_builder(posegen::GAIN_HIGHERHRNET, &Device::Cpu);
            HigherHrnet::load(vb, cfg.clone()).unwrap();
            let shapes: std::collections::HashMap<String, Vec<usize>> =
                rec.requests().into_iter().collect();
            let inferred = Config::from_shapes(|k| shapes.get(k).cloned()).unwrap();
            assert_eq!(inferred, cfg);
        }
        let err = Config::from_shapes(|_| None).unwrap_err();
        assert!(err.to_string().contains("layer1.0.conv1.weight"), "{err}");
    }

    #[test]
    fn runs_on_non_square_inputs_and_rejects_bad_sizes() {
        let dev = Device::Cpu;
        let (vb, _) = posegen::var_builder(posegen::GAIN_HIGHERHRNET, &dev);
        let net = HigherHrnet::load(vb, Config::with_width(4)).unwrap();
        let x = Tensor::zeros((1, 3, 64, 96), candle_core::DType::F32, &dev).unwrap();
        let (out, times) = net.forward_profiled(&x).unwrap();
        assert_eq!(out.output_0.dims(), &[1, 34, 16, 24]);
        assert_eq!(out.output_1.dims(), &[1, 17, 32, 48]);
        assert_eq!(out.stage3[2].dims(), &[1, 16, 4, 6]);
        let names: Vec<&str> = times.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "stem",
                "layer1",
                "stage2",
                "stage3",
                "stage4",
                "final 1/4",
                "deconv",
                "final 1/2"
            ]
        );
        let bad = Tensor::zeros((1, 3, 64, 80), candle_core::DType::F32, &dev).unwrap();
        assert!(net.forward(&bad).is_err());
        let (heat, tags) = split_output0(&out.output_0, 17).unwrap();
        assert_eq!(heat.dims(), &[1, 17, 16, 24]);
        assert_eq!(tags.unwrap().dims(), &[1, 17, 16, 24]);
    }
}
