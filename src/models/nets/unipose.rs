//! UniPose: Artacho, Savakis, "UniPose: Unified Human Pose Estimation in Single Images and
//! Videos", CVPR 2020. A single-person model: a dilated ResNet-101, the Waterfall Atrous
//! Spatial Pooling module (WASP) and a DeepLab-style decoder that adds the stride-4
//! low-level features, giving one heatmap per joint plus a background map at stride 8.
//!
//! Built as in the official code `bmartacho/UniPose` (`model/unipose.py`,
//! `model/modules/{wasp,decoder}.py`, `model/modules/backbone/resnet.py`), with the parameter
//! names of its `state_dict`:
//!
//! | part | keys | what it does |
//! |---|---|---|
//! | stem | `backbone.conv1`, `backbone.bn1` | 7×7 s2 p3 + BN + ReLU, max-pool 3×3 s2 p1 |
//! | `backbone.layer{1,2,3}.{b}` | `conv1..3`, `bn1..3`, `downsample.{0,1}` | 3/4/23 Bottlenecks, strides 1/2/2 (output stride 16) |
//! | `backbone.layer4.{0,1,2}` | the same | multi-grid unit: stride 1, 3×3 dilations 2·(1, 2, 4) |
//! | `wasp.aspp{1..4}` | `atrous_conv`, `bn` | the waterfall: 1×1, then 3×3 with dilation 18, 12, 6, each fed by the previous branch |
//! | `wasp.conv2` | `weight` | one shared 1×1 conv, applied **twice** to every branch |
//! | `wasp.global_avg_pool.{1,2}` | conv, BN (no BN in the video variant) | image pooling + 1×1 + BN + ReLU, broadcast back |
//! | `wasp.conv1`, `wasp.bn1` | | concat (1280 ch) → 1×1 + BN + ReLU → 256 ch |
//! | `decoder.conv1`, `decoder.bn1` | | layer1 → 1×1 48 + BN + ReLU → max-pool 3×3 s2 p1 |
//! | `decoder.last_conv.{0,1,4,5,8}` | | concat(upsampled WASP, low-level) → 2 × (3×3 + BN + ReLU) → 1×1 with bias |
//!
//! `decoder.conv2` and `decoder.bn2` exist in the `state_dict` but are never used (their call
//! is commented out in the official code); they are not read. Every upsampling is bilinear
//! with `align_corners=True`. BatchNorm (eval mode, eps 1e-5) is folded into the
//! convolutions at load time.
//!
//! Input: `[N, 3, H, W]` in **B,G,R** order (`cv2.imread`), `(u8 − 128) / 256`. The
//! standard size is 368×368 (heatmaps 46×46); `H` and `W` must be multiples of 16.

use candle_core::{DType, Device, Result as CResult, Tensor};
use candle_nn::VarBuilder;

use crate::kernels::resize::resize_bilinear_align_corners;
use crate::models::blocks::folded::{Bottleneck, Conv, BOTTLENECK_EXPANSION};
use crate::models::features::{CellField, FeatureTensor};
use crate::models::info::{Architecture, Loaded, Loader};
use crate::models::net::{PoseNet, RunOptions, RunOutput, RunTensors, StageTensors};
use crate::models::receptive::RfLayer;
use crate::models::{ModelInfo, ReceptiveField, StepClock, StepTime};
use crate::weights::TensorStore;

/// Bottlenecks in ResNet-101's layer1 … layer3 (layer4 is the 3-block multi-grid unit).
const RESNET101_LAYERS: [usize; 3] = [3, 4, 23];
/// Multi-grid factors of layer4 (`blocks = [1, 2, 4]`).
const MULTI_GRID: [usize; 3] = [1, 2, 4];
/// Width of WASP and of each of its branches.
const WASP_CHANNELS: usize = 256;
/// Width of the decoder's low-level projection.
const LOW_LEVEL_CHANNELS: usize = 48;
/// The input sides must be multiples of this.
pub const INPUT_MULTIPLE: usize = 16;

/// A UniPose configuration (the constructor arguments of the official `unipose`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The official `num_classes`: the joints. The decoder emits `num_classes + 1` maps,
    /// channel 0 being the background.
    pub num_classes: usize,
    /// `output_stride` of the backbone: 16 (the published models) or 8.
    pub output_stride: usize,
    /// Whether WASP's image-pooling branch has a BatchNorm (`wasp.py`: yes; the video
    /// variant `waspVideo.py`: no).
    pub global_bn: bool,
    /// The standard input `(height, width)`.
    pub input_size: (usize, usize),
}

impl Config {
    /// LSP (and LSP-extended): 14 joints + background, 368×368.
    pub fn lsp() -> Self {
        Self::image(14)
    }

    /// MPII: 16 joints + background, 368×368.
    pub fn mpii() -> Self {
        Self::image(16)
    }

    /// The single-image model with `num_classes` joints at output stride 16.
    pub fn image(num_classes: usize) -> Self {
        Self {
            num_classes,
            output_stride: 16,
            global_bn: true,
            input_size: (368, 368),
        }
    }

    /// The per-frame body of UniPose-LSTM on Penn Action (`waspVideo.py`, no BN in the
    /// image-pooling branch): 13 joints + background.
    pub fn penn_action_body() -> Self {
        Self {
            global_bn: false,
            ..Self::image(13)
        }
    }

    /// The number of maps the decoder emits (`num_classes + 1`).
    pub fn outputs(&self) -> usize {
        self.num_classes + 1
    }

    /// `(height, width)` of the heatmaps for the standard input (stride 8).
    pub fn heatmap_size(&self) -> (usize, usize) {
        (self.input_size.0 / 8, self.input_size.1 / 8)
    }

    /// `(strides, dilations)` of layer1 … layer4 and the WASP dilations, as in the
    /// official `ResNet.__init__` and `wasp.__init__`.
    fn schedule(&self) -> CResult<([usize; 4], [usize; 4], [usize; 4])> {
        match self.output_stride {
            16 => Ok(([1, 2, 2, 1], [1, 1, 1, 2], [24, 18, 12, 6])),
            8 => Ok(([1, 2, 1, 1], [1, 1, 2, 4], [48, 36, 24, 12])),
            s => candle_core::bail!("UniPose: output stride {s} (16 or 8 supported)"),
        }
    }
}

impl Config {
    /// The spatial layers from the input to the backbone output (`layer4`), for the
    /// receptive field ([`crate::models::receptive`]): the 7×7 s2 stem, the 3×3 s2 max-pool, and each
    /// Bottleneck's 3×3 `conv2` (which carries the block's stride and dilation, padding =
    /// dilation; the 1×1 convolutions and the shorter downsample path do not widen it).
    pub fn trunk_chain(&self) -> CResult<Vec<RfLayer>> {
        let (strides, dilations, _) = self.schedule()?;
        let mut chain = vec![
            RfLayer::window("backbone.conv1", 7, 2, 1, 3),
            RfLayer::window("backbone.maxpool", 3, 2, 1, 1),
        ];
        for l in 0..4 {
            let blocks: Vec<usize> = if l < 3 {
                vec![dilations[l]; RESNET101_LAYERS[l]]
            } else {
                MULTI_GRID.iter().map(|g| g * dilations[3]).collect()
            };
            for (b, &d) in blocks.iter().enumerate() {
                let stride = if b == 0 { strides[l] } else { 1 };
                chain.push(RfLayer::window(
                    format!("backbone.layer{}.{b}.conv2", l + 1),
                    3,
                    stride,
                    d,
                    d,
                ));
            }
        }
        Ok(chain)
    }

    /// The spatial layers from the input to WASP branch `branch` (0-based, `wasp.aspp1` …
    /// `wasp.aspp4`): the trunk, then the waterfall up to that branch (each branch is fed
    /// by the previous one). `aspp1` is a 1×1 convolution (its dilation has no effect);
    /// `aspp2` … `aspp4` are 3×3 with the dilations of [`Config::wasp_dilations`]. The
    /// shared 1×1 `conv2` applied afterwards does not widen the field.
    pub fn wasp_chain(&self, branch: usize) -> CResult<Vec<RfLayer>> {
        if branch >= 4 {
            candle_core::bail!("UniPose: WASP branch {} (1 to 4)", branch + 1);
        }
        let dil = self.wasp_dilations()?;
        let mut chain = self.trunk_chain()?;
        for (i, &d) in dil.iter().enumerate().take(branch + 1) {
            let k = if i == 0 { 1 } else { 3 };
            let pad = if i == 0 { 0 } else { d };
            chain.push(RfLayer::window(format!("wasp.aspp{}", i + 1), k, 1, d, pad));
        }
        Ok(chain)
    }

    /// The dilations of `wasp.aspp1` … `wasp.aspp4` as built by the official `wasp.py`
    /// (`[24, 18, 12, 6]` at output stride 16: the paper's rates 6, 12, 18, 24 in the
    /// opposite order; `aspp1` is a 1×1 convolution, so its rate has no effect).
    pub fn wasp_dilations(&self) -> CResult<[usize; 4]> {
        Ok(self.schedule()?.2)
    }
}

/// Max-pool 3×3 s2 p1 of a ReLU output (≥ 0): zero padding equals PyTorch's −∞ padding.
fn max_pool_3x3_s2(x: &Tensor) -> CResult<Tensor> {
    x.pad_with_zeros(2, 1, 1)?
        .pad_with_zeros(3, 1, 1)?
        .max_pool2d_with_stride(3, 2)
}

/// Every output and intermediate of one UniPose forward pass, `[N, C, h, w]`, for an input
/// of `H × W` (at output stride 16).
#[derive(Clone, Debug)]
pub struct UniposeOutputs {
    /// The decoder output: `num_classes + 1` maps at `H/8 × W/8`, channel 0 the
    /// background (`decoder.last_conv.8`).
    pub heatmaps: Tensor,
    /// `backbone.layer1` (256 ch at `H/4`), the decoder's low-level input.
    pub low_level: Tensor,
    /// `backbone.layer4` (2048 ch at `H/16`), WASP's input.
    pub backbone: Tensor,
    /// The four waterfall branches `wasp.aspp1` … `wasp.aspp4` after their BN + ReLU and
    /// before the shared `conv2` (256 ch at `H/16`). Their dilations are 24 (a 1×1 conv,
    /// so none in effect), 18, 12 and 6.
    pub aspp: [Tensor; 4],
    /// The image-pooling branch `wasp.global_avg_pool` before its broadcast, `[N, 256, 1, 1]`.
    pub global_pool: Tensor,
    /// The WASP output (256 ch at `H/16`).
    pub wasp: Tensor,
    /// The decoder's low-level branch after its max-pool (`decoder.maxpool`, 48 ch at `H/8`).
    pub decoder_maxpool: Tensor,
    /// The decoder's features before the classifier (`decoder.last_conv.5` + ReLU, 256 ch at
    /// `H/8`), the input of `decoder.last_conv.8`.
    pub decoder: Tensor,
}

/// ResNet-101 + WASP + decoder with their weights (BatchNorm folded) on a device. Also the
/// per-frame body of [`crate::models::nets::unipose_lstm::UniposeLstm`].
#[derive(Clone, Debug)]
pub struct Unipose {
    config: Config,
    stem: Conv,
    layers: [Vec<Bottleneck>; 4],
    aspp: [Conv; 4],
    /// `wasp.conv2` (shared, no BN).
    wasp_conv2: Conv,
    /// `wasp.global_avg_pool.1` (+ `.2` folded when present) + ReLU.
    global: Conv,
    /// `wasp.conv1` + `wasp.bn1` + ReLU.
    wasp_out: Conv,
    /// `decoder.conv1` + `decoder.bn1` + ReLU.
    low_level: Conv,
    last: [Conv; 3],
    device: Device,
}

impl Unipose {
    /// Builds the network from `vb` (official parameter names under `vb`'s prefix, e.g.
    /// `backbone.conv1.weight`). Every `state_dict` tensor except `num_batches_tracked`,
    /// `decoder.conv2.*` and `decoder.bn2.*` is read exactly once.
    pub fn load(vb: VarBuilder, config: Config) -> CResult<Self> {
        if config.num_classes == 0 {
            candle_core::bail!("UniPose: zero classes");
        }
        let (strides, dilations, wasp_dilations) = config.schedule()?;
        let bb = vb.pp("backbone");
        let stem = Conv::with_bn_dilated(&bb, "conv1", "bn1", (3, 64), 7, 2, 1, true)?;
        let mut cin = 64;
        let mut layers: Vec<Vec<Bottleneck>> = Vec::with_capacity(4);
        for l in 0..4 {
            let planes = 64 << l;
            let blocks: Vec<usize> = if l < 3 {
                vec![dilations[l]; RESNET101_LAYERS[l]]
            } else {
                MULTI_GRID.iter().map(|g| g * dilations[3]).collect()
            };
            let mut layer = Vec::with_capacity(blocks.len());
            for (b, &d) in blocks.iter().enumerate() {
                let stride = if b == 0 { strides[l] } else { 1 };
                layer.push(Bottleneck::load(
                    &bb.pp(format!("layer{}.{b}", l + 1)),
                    cin,
                    planes,
                    stride,
                    d,
                )?);
                cin = planes * BOTTLENECK_EXPANSION;
            }
            layers.push(layer);
        }
        let layers: [Vec<Bottleneck>; 4] = layers
            .try_into()
            .map_err(|_| candle_core::Error::Msg("UniPose: not four layers".into()))?;

        let wv = vb.pp("wasp");
        let c = WASP_CHANNELS;
        let branch = |i: usize, cin: usize, k: usize| {
            Conv::with_bn_dilated(
                &wv.pp(format!("aspp{}", i + 1)),
                "atrous_conv",
                "bn",
                (cin, c),
                k,
                1,
                wasp_dilations[i],
                true,
            )
        };
        let aspp = [
            branch(0, cin, 1)?,
            branch(1, c, 3)?,
            branch(2, c, 3)?,
            branch(3, c, 3)?,
        ];
        let gv = wv.pp("global_avg_pool");
        let global = if config.global_bn {
            Conv::with_bn(&gv, "1", "2", (cin, c), 1, 1, true)?
        } else {
            let w = gv.pp("1").get((c, cin, 1, 1), "weight")?;
            let bias = Tensor::zeros(c, DType::F32, vb.device())?;
            Conv::new(w, bias, 1, true)?
        };
        let wasp_out = Conv::with_bn(&wv, "conv1", "bn1", (5 * c, c), 1, 1, true)?;
        let w2 = wv.pp("conv2").get((c, c, 1, 1), "weight")?;
        let wasp_conv2 = Conv::new(w2, Tensor::zeros(c, DType::F32, vb.device())?, 1, false)?;

        let dv = vb.pp("decoder");
        let low_level = Conv::with_bn(
            &dv,
            "conv1",
            "bn1",
            (BOTTLENECK_EXPANSION * 64, LOW_LEVEL_CHANNELS),
            1,
            1,
            true,
        )?;
        let lv = dv.pp("last_conv");
        let last = [
            Conv::with_bn_dilated(&lv, "0", "1", (c + LOW_LEVEL_CHANNELS, c), 3, 1, 1, true)?,
            Conv::with_bn_dilated(&lv, "4", "5", (c, c), 3, 1, 1, true)?,
            Conv::with_bias(&lv, "8", (c, config.outputs()), 1)?,
        ];
        Ok(Self {
            config,
            stem,
            layers,
            aspp,
            wasp_conv2,
            global,
            wasp_out,
            low_level,
            last,
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
    pub fn forward(&self, x: &Tensor) -> CResult<UniposeOutputs> {
        let mut clock = StepClock::new(&self.device, None);
        self.forward_steps(x, &mut clock)
    }

    /// [`Unipose::forward`] with the wall time of each step: `stem` (with the max-pool),
    /// `layer1` … `layer4`, `wasp`, `decoder`.
    pub fn forward_profiled(&self, x: &Tensor) -> CResult<(UniposeOutputs, Vec<StepTime>)> {
        let mut times = Vec::with_capacity(7);
        let mut clock = StepClock::new(&self.device, Some(&mut times));
        let out = self.forward_steps(x, &mut clock)?;
        Ok((out, times))
    }

    /// The forward pass, lapping `clock` after each step.
    pub(crate) fn forward_steps(
        &self,
        x: &Tensor,
        clock: &mut StepClock,
    ) -> CResult<UniposeOutputs> {
        let x = crate::models::blocks::ops::image_batch(x, INPUT_MULTIPLE, "UniPose")?;
        let mut h = max_pool_3x3_s2(&self.stem.forward(&x)?)?;
        clock.lap("stem")?;
        let mut low_level = None;
        for (i, blocks) in self.layers.iter().enumerate() {
            h = blocks.iter().try_fold(h, |h, b| b.forward(&h))?;
            if i == 0 {
                low_level = Some(h.clone());
            }
            clock.lap(format!("layer{}", i + 1))?;
        }
        let low_level = low_level.unwrap_or_else(|| h.clone());
        let backbone = h;

        // WASP: the waterfall, the shared conv2 twice per branch, image pooling, fusion.
        let mut aspp = Vec::with_capacity(4);
        let mut prev = backbone.clone();
        for unit in &self.aspp {
            prev = unit.forward(&prev)?;
            aspp.push(prev.clone());
        }
        let aspp: [Tensor; 4] = aspp
            .try_into()
            .map_err(|_| candle_core::Error::Msg("UniPose: not four branches".into()))?;
        let (hb, wb) = (backbone.dim(2)?, backbone.dim(3)?);
        let pooled = backbone.mean_keepdim(3)?.mean_keepdim(2)?;
        let global_pool = self.global.forward(&pooled)?;
        let mut parts = Vec::with_capacity(5);
        for a in &aspp {
            parts.push(self.wasp_conv2.forward(&self.wasp_conv2.forward(a)?)?);
        }
        parts.push(resize_bilinear_align_corners(&global_pool, hb, wb)?);
        let wasp = self.wasp_out.forward(&Tensor::cat(&parts, 1)?)?;
        clock.lap("wasp")?;

        // Decoder.
        let decoder_maxpool = max_pool_3x3_s2(&self.low_level.forward(&low_level)?)?;
        let (hl, wl) = (decoder_maxpool.dim(2)?, decoder_maxpool.dim(3)?);
        let up = resize_bilinear_align_corners(&wasp, hl, wl)?;
        let [last0, last1, classifier] = &self.last;
        let decoder = last1.forward(&last0.forward(&Tensor::cat(&[&up, &decoder_maxpool], 1)?)?)?;
        let y = classifier.forward(&decoder)?;
        clock.lap("decoder")?;
        Ok(UniposeOutputs {
            heatmaps: y,
            low_level,
            backbone,
            aspp,
            global_pool,
            wasp,
            decoder_maxpool,
            decoder,
        })
    }
}

/// UniPose (official `unipose.py` names); the joint count from the checkpoint.
pub static ARCHITECTURE: Architecture = Architecture {
    id: "unipose",
    name: "UniPose (ResNet-101 + waterfall atrous spatial pooling + decoder, heatmaps at 1/8)",
    top_down: false,
    flip_shifts_heatmap: false,
    grid: crate::pose::GridAlign::Centre,
    loader: Loader::Checkpoint(load_checkpoint),
};

/// Keys in every official UniPose checkpoint that the network never reads: the decoder's
/// `conv2` / `bn2` (their call is commented out in the official decoder).
pub(crate) fn expected_unused(key: &str) -> bool {
    key.starts_with("decoder.conv2.") || key.starts_with("decoder.bn2.")
}

fn load_checkpoint(
    info: &'static ModelInfo,
    store: TensorStore,
    device: &Device,
) -> CResult<Loaded> {
    let config = config_of_checkpoint(&store, info)?;
    let (vb, usage) = crate::weights::varbuilder::var_builder(store, DType::F32, device);
    let net = Unipose::load(vb, config)?;
    let mut unused_keys = usage.unused_keys();
    unused_keys.retain(|k| !expected_unused(k));
    Ok(Loaded {
        net: Box::new(net),
        unused_keys,
    })
}

/// The UniPose configuration of a checkpoint for catalogue entry `info`: the joints from
/// `decoder.last_conv.8.weight` (joints + background maps), which must match the entry's
/// joint set; the image-pooling BatchNorm when `wasp.global_avg_pool.2.weight` is present.
pub fn config_of_checkpoint(store: &TensorStore, info: &ModelInfo) -> CResult<Config> {
    let key = "decoder.last_conv.8.weight";
    let maps = store.get_any(key).map_err(|_| {
        candle_core::Error::Msg(format!("UniPose: the checkpoint has no tensor '{key}'"))
    })?;
    let outputs = maps.dims().first().copied().unwrap_or(0);
    let joints = info.joints.len();
    if outputs != joints + 1 {
        candle_core::bail!(
            "UniPose: tensor '{key}' has {outputs} output maps {:?}; model '{}' needs {}              ({joints} joints + background)",
            maps.dims(),
            info.id,
            joints + 1
        );
    }
    Ok(Config {
        global_bn: store.contains("wasp.global_avg_pool.2.weight"),
        input_size: (info.input_size.1 as usize, info.input_size.0 as usize),
        ..Config::image(joints)
    })
}

/// UniPose's features: the four WASP branches (with their receptive fields), the image
/// pooling branch, the WASP output and the decoder's features before the classifier.
pub(crate) fn features(config: &Config, out: &UniposeOutputs) -> CResult<Vec<FeatureTensor>> {
    let dilations = config.wasp_dilations()?;
    let mut features = Vec::with_capacity(7);
    for (i, (t, d)) in out.aspp.iter().zip(dilations).enumerate() {
        let rf = ReceptiveField::of_chain(&config.wasp_chain(i)?);
        let what = if i == 0 {
            "1×1".to_string()
        } else {
            format!("dilation {d}")
        };
        features.push(FeatureTensor::new(
            format!("wasp.aspp{}", i + 1),
            format!("WASP branch {} ({what})", i + 1),
            t,
            CellField::Local(rf, rf),
        )?);
    }
    features.push(FeatureTensor::new(
        "wasp.global_avg_pool",
        "WASP global branch (image pooling)",
        &out.global_pool,
        CellField::WholeInput,
    )?);
    // After the fusion every cell has seen the image-pooling branch: the whole input.
    features.push(FeatureTensor::new(
        "wasp",
        "WASP output (fused)",
        &out.wasp,
        CellField::WholeInput,
    )?);
    features.push(FeatureTensor::new(
        "decoder",
        "decoder output (before the classifier)",
        &out.decoder,
        CellField::WholeInput,
    )?);
    Ok(features)
}

impl PoseNet for Unipose {
    fn run(&self, input: &Tensor, _options: &RunOptions) -> CResult<RunOutput> {
        let (out, times) = self.forward_profiled(input)?;
        let stage = StageTensors::heatmaps("heatmaps", "heatmaps", &out.heatmaps);
        RunTensors {
            stages: vec![stage],
            features: features(&self.config, &out)?,
            steps: times,
        }
        .fetch()
    }

    // UniPose's heatmaps depend on the whole input (WASP's image pooling): no receptive
    // field per stage; the WASP branches' fields are on their features.

    fn clone_box(&self) -> Box<dyn PoseNet> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn configs_follow_the_official_constructor() {
        assert_eq!(Config::lsp().outputs(), 15);
        assert_eq!(Config::mpii().outputs(), 17);
        assert_eq!(Config::lsp().heatmap_size(), (46, 46));
        let body = Config::penn_action_body();
        assert_eq!(body.outputs(), 14);
        assert!(!body.global_bn);
        let (s, d, w) = Config::lsp().schedule().unwrap();
        assert_eq!((s, d, w), ([1, 2, 2, 1], [1, 1, 1, 2], [24, 18, 12, 6]));
        assert!(Config {
            output_stride: 32,
            ..Config::lsp()
        }
        .schedule()
        .is_err());
    }

    #[test]
    fn wasp_receptive_fields_match_the_hand_computation() {
        use crate::models::ReceptiveField;
        // By hand, in input pixels (size, jump): stem 7×7 s2 → (7, 2); max-pool 3×3 s2 →
        // (11, 4); layer1, 3 blocks 3×3 → 11 + 3·2·4 = 35; layer2, first s2 then 3 at jump 8
        // → 35 + 8 + 3·16 = 91 (jump 8); layer3, first s2 then 22 at jump 16 → 91 + 16 +
        // 22·32 = 811 (jump 16); layer4 dilations 2, 4, 8 → 811 + (4 + 8 + 16)·16 = 1259.
        let c = Config::lsp();
        let trunk = ReceptiveField::of_chain(&c.trunk_chain().unwrap());
        assert_eq!((trunk.size, trunk.jump, trunk.start), (1259.0, 16.0, 0.0));
        // The waterfall: aspp1 1×1 (+0); aspp2 d18 → +36·16; aspp3 d12 → +24·16; aspp4 d6
        // → +12·16; each branch includes the ones before it.
        let sizes: Vec<f64> = (0..4)
            .map(|b| ReceptiveField::of_chain(&c.wasp_chain(b).unwrap()).size)
            .collect();
        assert_eq!(sizes, vec![1259.0, 1835.0, 2219.0, 2411.0]);
        let rf = ReceptiveField::of_chain(&c.wasp_chain(3).unwrap());
        assert_eq!((rf.jump, rf.start), (16.0, 0.0));
        assert_eq!(rf.cell(2.0, 3.0), (32.0, 48.0, 2411.0));
        assert!(c.wasp_chain(4).is_err());
    }
}
