//! Top-down HRNet: Sun, Xiao, Liu, Wang, "Deep High-Resolution Representation Learning for
//! Human Pose Estimation", CVPR 2019. Runs on one person crop and gives one heatmap per
//! joint at 1/4 of the crop's resolution.
//!
//! Built as in the official code `leoxiaobin/deep-high-resolution-net.pytorch`
//! (`lib/models/pose_hrnet.py`, `experiments/coco/hrnet/w{32,48}_{256x192,384x288}_*.yaml`),
//! with the parameter names of its `state_dict`, so `final_state.pth` loads as it is:
//!
//! | part | keys | what it does |
//! |---|---|---|
//! | stem | `conv1`, `bn1`, `conv2`, `bn2` | 3×3 s2 conv + BN + ReLU, twice (64 ch, stride 4) |
//! | `layer1.{0..3}` | `conv1..3`, `bn1..3`, `layer1.0.downsample.{0,1}` | 4 Bottlenecks, 64 → 256 ch |
//! | `transition{t}.{i}` | `.0` conv / `.1` BN, or `.{j}.0` / `.{j}.1` for a new branch | see [`crate::models::blocks::hrnet_backbone`] |
//! | `stage{s}.{m}.branches.{b}.{k}` | `conv1`, `bn1`, `conv2`, `bn2` | BasicBlocks, 4 per branch |
//! | `stage{s}.{m}.fuse_layers.{i}.{j}` | as in HigherHRNet | `out_i = ReLU(Σ_j f_ij(x_j))` (nearest up-sampling) |
//! | `final_layer` | `weight`, `bias` (1×1 conv) | `joints` heatmaps at 1/4 |
//!
//! The backbone is the one of [`crate::models::nets::higher_hrnet`] ([`crate::models::blocks::hrnet_backbone`]): stages
//! 2, 3, 4 with 1, 4, 3 modules of widths `[w, 2w]`, `[w, 2w, 4w]`, `[w, 2w, 4w, 8w]`; the
//! last module keeps only the highest resolution. BatchNorm (eval mode, eps 1e-5) is folded
//! into the convolutions at load time.
//!
//! Input: `[N, 3, H, W]`, R,G,B (`COLOR_RGB: true`), `(u8 / 255 − mean) / std` with the
//! ImageNet mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225); the standard crops
//! are 256×192 and 384×288 (H × W). `H` and `W` must be multiples of 32.

use candle_core::{Device, Result as CResult, Tensor};
use candle_nn::VarBuilder;

use crate::models::blocks::folded::Conv;
use crate::models::blocks::hrnet_backbone::{Backbone, StageConfig, INPUT_MULTIPLE};
use crate::models::checkpoint_shapes;
use crate::models::features;
use crate::models::info::{Architecture, Loaded, Loader};
use crate::models::net::{input_hw, PoseNet, RunOptions, RunOutput, RunTensors, StageTensors};
use crate::models::{ModelInfo, StepClock, StepTime};
use crate::weights::TensorStore;

/// A top-down HRNet configuration (the `MODEL` part of the official yaml).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `MODEL.NUM_JOINTS`.
    pub joints: usize,
    /// `MODEL.IMAGE_SIZE` as `(height, width)`: the crop the model was trained on.
    pub input_size: (usize, usize),
    /// Bottlenecks of `layer1` (`STAGE1.NUM_BLOCKS`, 4).
    pub layer1_blocks: usize,
    /// Stages 2, 3 and 4.
    pub stages: [StageConfig; 3],
    /// `EXTRA.FINAL_CONV_KERNEL`: 1 or 3.
    pub final_kernel: usize,
}

impl Config {
    /// `w32_256x192_adam_lr1e-3.yaml`.
    pub fn w32_256x192() -> Self {
        Self::with_width(32, (256, 192))
    }

    /// `w32_384x288_adam_lr1e-3.yaml`.
    pub fn w32_384x288() -> Self {
        Self::with_width(32, (384, 288))
    }

    /// `w48_256x192_adam_lr1e-3.yaml`.
    pub fn w48_256x192() -> Self {
        Self::with_width(48, (256, 192))
    }

    /// `w48_384x288_adam_lr1e-3.yaml`.
    pub fn w48_384x288() -> Self {
        Self::with_width(48, (384, 288))
    }

    /// The official COCO layout with branch widths `w, 2w, 4w, 8w`: 17 joints, 1/4/3
    /// modules of 4 BasicBlocks, a 1×1 final convolution.
    pub fn with_width(w: usize, input_size: (usize, usize)) -> Self {
        let stage = |modules: usize, branches: usize| StageConfig {
            modules,
            blocks: 4,
            channels: (0..branches).map(|b| w << b).collect(),
        };
        Self {
            joints: 17,
            input_size,
            layer1_blocks: 4,
            stages: [stage(1, 2), stage(4, 3), stage(3, 4)],
            final_kernel: 1,
        }
    }

    /// Infers the configuration from a checkpoint's tensor shapes (`shape(key)` is the
    /// shape of tensor `key` under its official name, `None` if absent): branch widths from
    /// `stage{s}.0.branches.{b}.0.conv1.weight`, module and block counts by counting keys,
    /// joints and the final kernel from `final_layer.weight`. The input size is not in the
    /// checkpoint; `input_size` (`(height, width)`) is taken as given.
    pub fn from_shapes(
        shape: impl Fn(&str) -> Option<Vec<usize>>,
        input_size: (usize, usize),
    ) -> CResult<Self> {
        let count = |f: &dyn Fn(usize) -> String| checkpoint_shapes::count_present(&shape, f);
        let conv4 = |key: &str| checkpoint_shapes::conv4(&shape, key, "top-down HRNet");
        let layer1_blocks = count(&|b| format!("layer1.{b}.conv1.weight"));
        let mut stages = Vec::with_capacity(3);
        for s in 2..=4 {
            let branches = count(&|b| format!("stage{s}.0.branches.{b}.0.conv1.weight"));
            let channels = (0..branches.max(1))
                .map(|b| conv4(&format!("stage{s}.0.branches.{b}.0.conv1.weight")).map(|d| d[0]))
                .collect::<CResult<Vec<_>>>()?;
            stages.push(StageConfig {
                modules: count(&|m| format!("stage{s}.{m}.branches.0.0.conv1.weight")),
                blocks: count(&|k| format!("stage{s}.0.branches.0.{k}.conv1.weight")),
                channels,
            });
        }
        let stages: [StageConfig; 3] = stages
            .try_into()
            .map_err(|_| candle_core::Error::Msg("HRNet: not three stages".into()))?;
        let fin = conv4("final_layer.weight")?;
        let config = Self {
            joints: fin[0],
            input_size,
            layer1_blocks,
            stages,
            final_kernel: fin[2],
        };
        config.validate()?;
        Ok(config)
    }

    /// Width of the highest-resolution branch (the input of `final_layer`).
    pub fn head_channels(&self) -> usize {
        self.stages[2].channels.first().copied().unwrap_or(0)
    }

    /// `(height, width)` of the heatmaps for the standard input (1/4 of it).
    pub fn heatmap_size(&self) -> (usize, usize) {
        (self.input_size.0 / 4, self.input_size.1 / 4)
    }

    fn validate(&self) -> CResult<()> {
        let mut prev = 1;
        for (i, s) in self.stages.iter().enumerate() {
            if s.channels.len() < prev || s.modules == 0 || s.blocks == 0 || s.channels.contains(&0)
            {
                candle_core::bail!(
                    "HRNet stage{}: needs ≥ {prev} branches of non-zero width, ≥ 1 module and \
                     ≥ 1 block, got {s:?}",
                    i + 2
                );
            }
            prev = s.channels.len();
        }
        if !matches!(self.final_kernel, 1 | 3) {
            candle_core::bail!(
                "HRNet: final conv kernel {} (1 or 3 supported)",
                self.final_kernel
            );
        }
        if self.joints == 0 || self.layer1_blocks == 0 {
            candle_core::bail!("HRNet: zero joints or layer1 blocks");
        }
        Ok(())
    }
}

/// Every output and intermediate of one forward pass, `[N, C, h, w]`, for an input of
/// `H × W`.
#[derive(Clone, Debug)]
pub struct HrnetOutputs {
    /// `final_layer`: one heatmap per joint at `H/4 × W/4`.
    pub heatmaps: Tensor,
    /// The stem's second BatchNorm, before its ReLU (64 ch, `H/4`).
    pub bn2: Tensor,
    /// `layer1` (256 ch, `H/4`).
    pub layer1: Tensor,
    /// Stage 2's outputs after fuse and ReLU, highest resolution first (`H/4`, `H/8`).
    pub stage2: Vec<Tensor>,
    /// Stage 3's outputs (`H/4`, `H/8`, `H/16`).
    pub stage3: Vec<Tensor>,
    /// Stage 4's output: only the highest resolution (`H/4`), the input of `final_layer`.
    pub stage4: Vec<Tensor>,
    /// Each branch of the last stage-4 module after its BasicBlocks and before the fuse
    /// (`H/4`, `H/8`, `H/16`, `H/32`).
    pub stage4_branches: Vec<Tensor>,
}

/// A top-down HRNet with its weights (BatchNorm folded) on a device.
#[derive(Clone, Debug)]
pub struct Hrnet {
    config: Config,
    backbone: Backbone,
    final_layer: Conv,
    device: Device,
}

impl Hrnet {
    /// Builds the network from `vb` (official parameter names under `vb`'s prefix). Every
    /// `state_dict` tensor except `num_batches_tracked` is read exactly once.
    pub fn load(vb: VarBuilder, config: Config) -> CResult<Self> {
        config.validate()?;
        let backbone = Backbone::load(&vb, config.layer1_blocks, &config.stages)?;
        let final_layer = Conv::with_bias(
            &vb,
            "final_layer",
            (config.head_channels(), config.joints),
            config.final_kernel,
        )?;
        Ok(Self {
            config,
            backbone,
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
    pub fn forward(&self, x: &Tensor) -> CResult<HrnetOutputs> {
        self.forward_steps(x, None)
    }

    /// [`Hrnet::forward`] with the wall time of each step: `stem`, `layer1`, `stage2`,
    /// `stage3`, `stage4` (each with its transition), `final`.
    pub fn forward_profiled(&self, x: &Tensor) -> CResult<(HrnetOutputs, Vec<StepTime>)> {
        let mut times = Vec::with_capacity(6);
        let out = self.forward_steps(x, Some(&mut times))?;
        Ok((out, times))
    }

    fn forward_steps(
        &self,
        x: &Tensor,
        times: Option<&mut Vec<StepTime>>,
    ) -> CResult<HrnetOutputs> {
        let x = crate::models::blocks::ops::image_batch(x, INPUT_MULTIPLE, "HRNet")?;
        let mut clock = StepClock::new(&self.device, times);
        let backbone = self.backbone.forward(&x, &mut clock)?;
        let [stage2, stage3, stage4] = backbone.stages;
        let Some(top) = stage4.first() else {
            candle_core::bail!("HRNet: stage 4 produced no output");
        };
        let heatmaps = self.final_layer.forward(top)?;
        clock.lap("final")?;
        Ok(HrnetOutputs {
            heatmaps,
            bn2: backbone.bn2,
            layer1: backbone.layer1,
            stage2,
            stage3,
            stage4,
            stage4_branches: backbone.last_branches,
        })
    }
}

/// The top-down HRNet (official `pose_hrnet.py` names); width and input size from the
/// checkpoint's shapes and the catalogue entry.
pub static ARCHITECTURE: Architecture = Architecture {
    id: "hrnet-top-down",
    name: "HRNet (top-down, heatmaps at 1/4 of the crop)",
    top_down: true,
    flip_shifts_heatmap: true,
    grid: crate::pose::GridAlign::Centre,
    loader: Loader::Checkpoint(load_checkpoint),
};

fn load_checkpoint(
    info: &'static ModelInfo,
    store: TensorStore,
    device: &Device,
) -> CResult<Loaded> {
    // MMPose checkpoints hold the same modules under `backbone.` / `keypoint_head.`.
    let store = crate::weights::mmpose::to_official(store);
    let (h, w) = (info.input_size.1 as usize, info.input_size.0 as usize);
    let config = Config::from_shapes(|k| store.get_any(k).ok().map(|t| t.dims().to_vec()), (h, w))?;
    let (vb, usage) =
        crate::weights::varbuilder::var_builder(store, candle_core::DType::F32, device);
    let net = Hrnet::load(vb, config)?;
    Ok(Loaded {
        net: Box::new(net),
        unused_keys: usage.unused_keys(),
    })
}

impl PoseNet for Hrnet {
    fn run(&self, input: &Tensor, _options: &RunOptions) -> CResult<RunOutput> {
        let size = input_hw(input)?;
        let (out, times) = self.forward_profiled(input)?;
        let stage = StageTensors::heatmaps("heatmaps", "heatmaps", &out.heatmaps);
        // The last stage-4 module's branches, each at its own resolution.
        let features = features::numbered("stage4.branch", "branch", size, &out.stage4_branches)?;
        RunTensors {
            stages: vec![stage],
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
    fn standard_variants_follow_the_official_yaml() {
        let c = Config::w48_384x288();
        assert_eq!(c.stages[2].channels, [48, 96, 192, 384]);
        assert_eq!(c.heatmap_size(), (96, 72));
        assert_eq!(Config::w32_256x192().stages[1].channels, [32, 64, 128]);
        assert_eq!(Config::w32_384x288().input_size, (384, 288));
        assert_eq!(Config::w48_256x192().head_channels(), 48);
    }

    #[test]
    fn runs_small_widths_and_rejects_bad_sizes() {
        let dev = Device::Cpu;
        let (vb, _) = posegen::var_builder(posegen::GAIN_HIGHERHRNET, &dev);
        let net = Hrnet::load(vb, Config::with_width(4, (64, 32))).unwrap();
        let x = Tensor::zeros((1, 3, 64, 32), candle_core::DType::F32, &dev).unwrap();
        let (out, times) = net.forward_profiled(&x).unwrap();
        assert_eq!(out.heatmaps.dims(), &[1, 17, 16, 8]);
        assert_eq!(out.stage4_branches.len(), 4);
        assert_eq!(out.stage4_branches[3].dims(), &[1, 32, 2, 1]);
        let names: Vec<&str> = times.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            ["stem", "layer1", "stage2", "stage3", "stage4", "final"]
        );
        let bad = Tensor::zeros((1, 3, 64, 40), candle_core::DType::F32, &dev).unwrap();
        assert!(net.forward(&bad).is_err());
    }
}
