//! SimpleBaseline: Xiao, Wu, Wei, "Simple Baselines for Human Pose Estimation and Tracking",
//! ECCV 2018. A top-down model: a ResNet on one person crop, three stride-2 transposed
//! convolutions back up to 1/4 of the crop, and a 1×1 convolution to one heatmap per joint.
//!
//! Built as in the official code `leoxiaobin/deep-high-resolution-net.pytorch`
//! (`lib/models/pose_resnet.py`, `experiments/coco/resnet/res{50,101,152}_*_d256x3_*.yaml`),
//! with the parameter names of its `state_dict`:
//!
//! | part | keys | what it does |
//! |---|---|---|
//! | stem | `conv1`, `bn1` | 7×7 s2 p3 conv + BN + ReLU, then max-pool 3×3 s2 p1 (64 ch, stride 4) |
//! | `layer{1..4}.{b}` | `conv1..3`, `bn1..3`, `downsample.{0,1}` in block 0 | Bottlenecks (stride on the 3×3 conv), 256/512/1024/2048 ch at stride 4/8/16/32 |
//! | `deconv_layers.{0,3,6}` / `.{1,4,7}` | ConvTranspose2d `[in, out, 4, 4]` (no bias) / BN | k4 s2 p1 + BN + ReLU, three times, 256 ch |
//! | `final_layer` | `weight`, `bias` | 1×1 conv to `joints` heatmaps at 1/4 |
//!
//! BatchNorm (eval mode, eps 1e-5) is folded into the convolutions at load time.
//!
//! Input: `[N, 3, H, W]` in **B,G,R** order (the official yamls set `COLOR_RGB: false`),
//! `(u8 / 255 − mean_c) / std_c` with the ImageNet lists applied by position: channel 0 (B)
//! uses mean 0.485 and std 0.229, and so on. The standard crops are 256×192 and 384×288
//! (H × W); `H` and `W` must be multiples of 32.

use candle_core::{Device, Result as CResult, Tensor};
use candle_nn::VarBuilder;

use crate::models::blocks::folded::{Bottleneck, Conv, BOTTLENECK_EXPANSION};
use crate::models::checkpoint_shapes;
use crate::models::features::{self, CellField, FeatureTensor};
use crate::models::info::{Architecture, Loaded, Loader};
use crate::models::net::{input_hw, PoseNet, RunOptions, RunOutput, RunTensors, StageTensors};
use crate::models::{ModelInfo, StepClock, StepTime};
use crate::weights::TensorStore;

/// Width of the stem (fixed in the official code).
const STEM_CHANNELS: usize = 64;
/// The input sides must be multiples of this (the stride of `layer4`).
pub const INPUT_MULTIPLE: usize = 32;

/// A SimpleBaseline configuration (the `MODEL` part of the official yaml).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `MODEL.NUM_JOINTS`.
    pub joints: usize,
    /// `MODEL.IMAGE_SIZE` as `(height, width)`.
    pub input_size: (usize, usize),
    /// Bottlenecks per ResNet layer (`EXTRA.NUM_LAYERS` 50 → `[3, 4, 6, 3]`).
    pub layers: [usize; 4],
    /// `EXTRA.NUM_DECONV_FILTERS` (one entry per deconvolution).
    pub deconv_channels: Vec<usize>,
    /// `EXTRA.NUM_DECONV_KERNELS`: 4, 3 or 2 (the same for every deconvolution).
    pub deconv_kernel: usize,
    /// `EXTRA.FINAL_CONV_KERNEL`: 1 or 3.
    pub final_kernel: usize,
}

impl Config {
    /// `res50_256x192_d256x3_adam_lr1e-3.yaml`.
    pub fn res50_256x192() -> Self {
        Self::resnet(50, (256, 192))
    }

    /// `res50_384x288_d256x3_adam_lr1e-3.yaml`.
    pub fn res50_384x288() -> Self {
        Self::resnet(50, (384, 288))
    }

    /// `res101_256x192_d256x3_adam_lr1e-3.yaml`.
    pub fn res101_256x192() -> Self {
        Self::resnet(101, (256, 192))
    }

    /// `res101_384x288_d256x3_adam_lr1e-3.yaml`.
    pub fn res101_384x288() -> Self {
        Self::resnet(101, (384, 288))
    }

    /// `res152_256x192_d256x3_adam_lr1e-3.yaml`.
    pub fn res152_256x192() -> Self {
        Self::resnet(152, (256, 192))
    }

    /// `res152_384x288_d256x3_adam_lr1e-3.yaml`.
    pub fn res152_384x288() -> Self {
        Self::resnet(152, (384, 288))
    }

    /// ResNet-`depth` (50, 101 or 152; any other depth falls back to 50) with the official
    /// head: three 4×4 deconvolutions of 256 channels, a 1×1 final conv, 17 joints.
    fn resnet(depth: usize, input_size: (usize, usize)) -> Self {
        let layers = match depth {
            101 => [3, 4, 23, 3],
            152 => [3, 8, 36, 3],
            _ => [3, 4, 6, 3],
        };
        Self {
            joints: 17,
            input_size,
            layers,
            deconv_channels: vec![256; 3],
            deconv_kernel: 4,
            final_kernel: 1,
        }
    }

    /// Infers the configuration from a checkpoint's tensor shapes (`shape(key)` is the
    /// shape of tensor `key` under its official name, `None` if absent): the ResNet depth
    /// from the number of `layer{l}.{b}` blocks (`[3, 4, 6, 3]` is ResNet-50), the
    /// deconvolutions from `deconv_layers.{3i}.weight` (`[in, out, k, k]`), joints and the
    /// final kernel from `final_layer.weight`. `input_size` (`(height, width)`) is taken as
    /// given.
    pub fn from_shapes(
        shape: impl Fn(&str) -> Option<Vec<usize>>,
        input_size: (usize, usize),
    ) -> CResult<Self> {
        let count = |f: &dyn Fn(usize) -> String| checkpoint_shapes::count_present(&shape, f);
        let conv4 = |key: &str| checkpoint_shapes::conv4(&shape, key, "SimpleBaseline");
        let layers: [usize; 4] =
            std::array::from_fn(|l| count(&|b| format!("layer{}.{b}.conv1.weight", l + 1)));
        let deconvs = count(&|i| format!("deconv_layers.{}.weight", 3 * i));
        let deconv = (0..deconvs)
            .map(|i| conv4(&format!("deconv_layers.{}.weight", 3 * i)))
            .collect::<CResult<Vec<_>>>()?;
        let fin = conv4("final_layer.weight")?;
        let config = Self {
            joints: fin[0],
            input_size,
            layers,
            deconv_channels: deconv.iter().map(|d| d[1]).collect(),
            deconv_kernel: deconv.first().map_or(4, |d| d[2]),
            final_kernel: fin[2],
        };
        config.validate()?;
        Ok(config)
    }

    /// The ResNet depth of `layers` (50, 101, 152), or `None` for a non-standard layout.
    pub fn depth(&self) -> Option<usize> {
        match self.layers {
            [3, 4, 6, 3] => Some(50),
            [3, 4, 23, 3] => Some(101),
            [3, 8, 36, 3] => Some(152),
            _ => None,
        }
    }

    /// `(height, width)` of the heatmaps for the standard input (1/4 of it with three
    /// deconvolutions).
    pub fn heatmap_size(&self) -> (usize, usize) {
        let f = 32 >> self.deconv_channels.len().min(5);
        (self.input_size.0 / f, self.input_size.1 / f)
    }

    fn validate(&self) -> CResult<()> {
        if self.joints == 0 || self.layers.contains(&0) || self.deconv_channels.contains(&0) {
            candle_core::bail!("SimpleBaseline: zero joints, blocks or deconv channels");
        }
        if !matches!(self.final_kernel, 1 | 3) {
            candle_core::bail!(
                "SimpleBaseline: final conv kernel {} (1 or 3 supported)",
                self.final_kernel
            );
        }
        deconv_padding(self.deconv_kernel)?;
        Ok(())
    }
}

/// `(padding, output_padding)` of the official `_get_deconv_cfg`.
fn deconv_padding(kernel: usize) -> CResult<(usize, usize)> {
    match kernel {
        4 => Ok((1, 0)),
        3 => Ok((1, 1)),
        2 => Ok((0, 0)),
        k => candle_core::bail!("SimpleBaseline: deconvolution kernel {k} (4, 3 or 2 supported)"),
    }
}

/// Every output and intermediate of one forward pass, `[N, C, h, w]`, for an input of
/// `H × W`.
#[derive(Clone, Debug)]
pub struct SimpleBaselineOutputs {
    /// `final_layer`: one heatmap per joint at `H/4 × W/4`.
    pub heatmaps: Tensor,
    /// `layer1` … `layer4` (256/512/1024/2048 ch at `H/4`, `H/8`, `H/16`, `H/32`).
    pub layers: [Tensor; 4],
    /// Each deconvolution stage after its BN and ReLU (`deconv_layers.2`, `.5`, `.8`):
    /// `H/16`, `H/8`, `H/4`.
    pub deconv: Vec<Tensor>,
}

/// A SimpleBaseline with its weights (BatchNorm folded) on a device.
#[derive(Clone, Debug)]
pub struct SimpleBaseline {
    config: Config,
    stem: Conv,
    layers: [Vec<Bottleneck>; 4],
    deconv: Vec<Conv>,
    final_layer: Conv,
    device: Device,
}

impl SimpleBaseline {
    /// Builds the network from `vb` (official parameter names under `vb`'s prefix). Every
    /// `state_dict` tensor except `num_batches_tracked` is read exactly once.
    pub fn load(vb: VarBuilder, config: Config) -> CResult<Self> {
        config.validate()?;
        let stem = Conv::with_bn(&vb, "conv1", "bn1", (3, STEM_CHANNELS), 7, 2, true)?;
        let mut cin = STEM_CHANNELS;
        let mut load_layer = |l: usize| -> CResult<Vec<Bottleneck>> {
            let planes = 64 << l;
            let stride = if l == 0 { 1 } else { 2 };
            (0..config.layers[l])
                .map(|b| {
                    let block = Bottleneck::load(
                        &vb.pp(format!("layer{}.{b}", l + 1)),
                        cin,
                        planes,
                        if b == 0 { stride } else { 1 },
                        1,
                    )?;
                    cin = planes * BOTTLENECK_EXPANSION;
                    Ok(block)
                })
                .collect()
        };
        let layers = [
            load_layer(0)?,
            load_layer(1)?,
            load_layer(2)?,
            load_layer(3)?,
        ];
        let k = config.deconv_kernel;
        let pads = deconv_padding(k)?;
        let mut deconv = Vec::with_capacity(config.deconv_channels.len());
        for (i, &c) in config.deconv_channels.iter().enumerate() {
            deconv.push(Conv::transposed_with_bn(
                &vb.pp("deconv_layers"),
                &(3 * i).to_string(),
                &(3 * i + 1).to_string(),
                (cin, c),
                k,
                pads,
                true,
            )?);
            cin = c;
        }
        let final_layer = Conv::with_bias(
            &vb,
            "final_layer",
            (cin, config.joints),
            config.final_kernel,
        )?;
        Ok(Self {
            config,
            stem,
            layers,
            deconv,
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

    /// Runs the network on `x` (`[N, 3, H, W]`, B,G,R: see the module docs).
    pub fn forward(&self, x: &Tensor) -> CResult<SimpleBaselineOutputs> {
        self.forward_steps(x, None)
    }

    /// [`SimpleBaseline::forward`] with the wall time of each step: `stem` (with the
    /// max-pool), `layer1` … `layer4`, `deconv` (all three), `final`.
    pub fn forward_profiled(&self, x: &Tensor) -> CResult<(SimpleBaselineOutputs, Vec<StepTime>)> {
        let mut times = Vec::with_capacity(7);
        let out = self.forward_steps(x, Some(&mut times))?;
        Ok((out, times))
    }

    fn forward_steps(
        &self,
        x: &Tensor,
        times: Option<&mut Vec<StepTime>>,
    ) -> CResult<SimpleBaselineOutputs> {
        let x = crate::models::blocks::ops::image_batch(x, INPUT_MULTIPLE, "SimpleBaseline")?;
        let mut clock = StepClock::new(&self.device, times);
        // MaxPool 3×3 s2 p1: the input is a ReLU output (≥ 0), so zero padding never wins
        // over a real value and equals PyTorch's −∞ padding.
        let mut h = self
            .stem
            .forward(&x)?
            .pad_with_zeros(2, 1, 1)?
            .pad_with_zeros(3, 1, 1)?
            .max_pool2d_with_stride(3, 2)?;
        clock.lap("stem")?;
        let mut layers = Vec::with_capacity(4);
        for (i, blocks) in self.layers.iter().enumerate() {
            h = blocks.iter().try_fold(h, |h, b| b.forward(&h))?;
            layers.push(h.clone());
            clock.lap(format!("layer{}", i + 1))?;
        }
        let layers: [Tensor; 4] = layers
            .try_into()
            .map_err(|_| candle_core::Error::Msg("SimpleBaseline: not four layers".into()))?;
        let mut deconv = Vec::with_capacity(self.deconv.len());
        for d in &self.deconv {
            h = d.forward(&h)?;
            deconv.push(h.clone());
        }
        clock.lap("deconv")?;
        let heatmaps = self.final_layer.forward(&h)?;
        clock.lap("final")?;
        Ok(SimpleBaselineOutputs {
            heatmaps,
            layers,
            deconv,
        })
    }
}

/// SimpleBaseline (official `pose_resnet.py` names); the ResNet depth from the checkpoint.
pub static ARCHITECTURE: Architecture = Architecture {
    id: "simplebaseline",
    name: "SimpleBaseline (ResNet + 3 deconvolutions, top-down, heatmaps at 1/4)",
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
    let net = SimpleBaseline::load(vb, config)?;
    Ok(Loaded {
        net: Box::new(net),
        unused_keys: usage.unused_keys(),
    })
}

impl PoseNet for SimpleBaseline {
    fn run(&self, input: &Tensor, _options: &RunOptions) -> CResult<RunOutput> {
        let size = input_hw(input)?;
        let (out, times) = self.forward_profiled(input)?;
        let stage = StageTensors::heatmaps("heatmaps", "heatmaps", &out.heatmaps);
        // The backbone's output, then each deconvolution's.
        let [_, _, _, layer4] = &out.layers;
        let mut features = vec![FeatureTensor::new(
            "layer4",
            features::with_stride("backbone layer4", size, layer4)?,
            layer4,
            CellField::Unknown,
        )?];
        features.extend(features::numbered("deconv", "deconv", size, &out.deconv)?);
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

    #[test]
    fn standard_variants_follow_the_official_yaml() {
        assert_eq!(Config::res50_256x192().layers, [3, 4, 6, 3]);
        assert_eq!(Config::res101_384x288().layers, [3, 4, 23, 3]);
        assert_eq!(Config::res152_256x192().layers, [3, 8, 36, 3]);
        assert_eq!(Config::res50_384x288().heatmap_size(), (96, 72));
        assert_eq!(Config::res101_256x192().deconv_channels, [256, 256, 256]);
        assert_eq!(Config::res152_384x288().input_size, (384, 288));
    }
}
