//! Mobile stacked hourglass of edvardHua/PoseEstimationForMobile
//! (`training/src/network_mv2_hourglass.py`, released `release/hourglass_model/model.tflite`),
//! after Newell et al., "Stacked Hourglass Networks for Human Pose Estimation", ECCV 2016,
//! built from MobileNetV2 inverted bottlenecks (Sandler et al., 2018). The release is the
//! "tiny" width variant; [`Config::released`] holds its widths.
//!
//! Structure (NCHW here; the original runs NHWC), see [`crate::models::blocks::mobile`] for the
//! activation quirks:
//! - stem `Conv2d_0`: 3×3 s2 conv → ReLU6 (16 ch); `Conv2d_1`: 2 bottlenecks (16 ch);
//!   `Conv2d_2`: 5 bottlenecks, the first stride 2 (24 ch, stride 4: 48×48 at 192);
//! - front path: `hourglass_front_4..1`, each a 2×2 s2 max pool then 5 bottlenecks (24 ch):
//!   48 → 24 → 12 → 6 → 3; `hourglass_mid_0`: 1 bottleneck at the bottom;
//! - back path, level k = 0..3: `hourglass_back_k` (a bottleneck to 14 ch; k ≥ 1 reads the
//!   previous output and is residual) → legacy bilinear resize to the next scale
//!   (`hourglass_upsample_k`), plus `hourglass_branch_jump_k` (5 bottlenecks, the last to
//!   14 ch) applied to the front feature of that scale: `hourglass_out_k` at 6, 12, 24, 48 px.
//!   `hourglass_out_0` is identically zero in the release (a dead ReLU).
//!
//! TF `SAME` padding is computed from the actual size, and every resize goes to the size of
//! the skip feature it is added to: input sizes that are multiples of 64 give exact ×2
//! pyramids (the release runs 192×192); other multiples of 32 also run (e.g. 224: the 7×7
//! level pools to 4×4 and resizes back to 7×7, which the frozen TF graph could not do). Parameter names are the `.tflite` tensor names; load
//! them with [`crate::weights::tflite::load_tflite`]. Input: `[N, 3, H, W]`, B,G,R, 0..255.
//! Output channels as for [`crate::models::nets::pefm_cpm`].

use candle_core::{Device, Module, Result as CResult, Tensor};

use crate::kernels::bias_act::Act;
use crate::kernels::padding::same_padding;
use crate::kernels::resize::resize_bilinear_legacy;
use crate::models::blocks::mobile::{
    group_specs, largest_field, BottleneckGroup, BottleneckSpec, InvertedBottleneck,
};
use crate::models::blocks::ops::{max_pool_same, ConvSame};
use crate::models::info::{Architecture, Loader};
use crate::models::net::{
    edited_input, numbered_stages, PoseNet, Resumable, RunOptions, RunOutput, RunTensors,
    StageContext, StageEdit, StageOutput, StageTensors,
};
use crate::models::receptive::RfLayer;
use crate::models::{ModelError, ModelInfo, ReceptiveField, StepClock, StepTime};
use crate::weights::{TensorStore, WeightsError};

/// Widths and wiring of the network.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub stem_channels: usize,
    /// `Conv2d_1`: blocks, expansion (stride 1, width `stem_channels`).
    pub conv1: (usize, usize),
    /// `Conv2d_2`: blocks, expansion (first block stride 2, width `width`).
    pub conv2: (usize, usize),
    /// Number of pools on the front path = number of outputs.
    pub depth: usize,
    /// Width of the hourglass bottlenecks.
    pub width: usize,
    pub expansion: usize,
    /// Bottlenecks per front / branch-jump unit.
    pub unit_blocks: usize,
    pub keypoints: usize,
}

impl Config {
    /// The released "tiny" model (`release/hourglass_model/model.tflite`).
    pub fn released() -> Self {
        Self {
            stem_channels: 16,
            conv1: (2, 1),
            conv2: (5, 6),
            depth: 4,
            width: 24,
            expansion: 6,
            unit_blocks: 5,
            keypoints: 14,
        }
    }

    fn unit(&self, last_cout: usize) -> Vec<BottleneckSpec> {
        group_specs(
            self.unit_blocks,
            self.width,
            self.width,
            last_cout,
            self.expansion,
            3,
            1,
        )
    }

    fn conv1_specs(&self) -> Vec<BottleneckSpec> {
        let c = self.stem_channels;
        group_specs(self.conv1.0, c, c, c, self.conv1.1, 3, 1)
    }

    fn conv2_specs(&self) -> Vec<BottleneckSpec> {
        let c = self.width;
        group_specs(self.conv2.0, self.stem_channels, c, c, self.conv2.1, 3, 2)
    }

    fn single(&self, cin: usize, cout: usize) -> BottleneckSpec {
        BottleneckSpec {
            cin,
            cout,
            expansion: self.expansion,
            kernel: 3,
            stride: 1,
        }
    }
}

/// The hourglass outputs.
#[derive(Clone, Debug)]
pub struct Output {
    /// `hourglass_out_0..depth-1`, coarsest first: `[N, 14, H/32, W/32]`, then ×2 each up to
    /// `[N, 14, H/4, W/4]` (6, 12, 24, 48 px at 192).
    pub outputs: Vec<Tensor>,
}

/// One back-path level.
#[derive(Clone, Debug)]
struct Level {
    back: InvertedBottleneck,
    jump: BottleneckGroup,
}

/// The loaded network.
#[derive(Clone, Debug)]
pub struct PefmHourglass {
    config: Config,
    stem: ConvSame,
    conv1: BottleneckGroup,
    conv2: BottleneckGroup,
    /// `hourglass_front_{depth}..1`, finest first.
    fronts: Vec<BottleneckGroup>,
    mid: InvertedBottleneck,
    levels: Vec<Level>,
    device: Device,
}

impl PefmHourglass {
    /// Builds the network from `.tflite` tensors (TFLite layouts, see the module docs).
    pub fn load(w: &TensorStore, config: Config, device: &Device) -> Result<Self, WeightsError> {
        let name = "Conv2d_0/weights";
        let k = w.get(name, &[config.stem_channels, 3, 3, 3])?;
        let b = w.get("Conv2d_0/Conv2D_bias", &[config.stem_channels])?;
        let stem = w.convert(name, k, |t| {
            ConvSame::new(t.permute((0, 3, 1, 2))?.contiguous()?, Some(b), 2).with_act(Act::Relu6)
        })?;
        let conv1 = BottleneckGroup::load(w, "Conv2d_1/", "Conv2d_1", &config.conv1_specs())?;
        let conv2 = BottleneckGroup::load(w, "Conv2d_2/", "Conv2d_2", &config.conv2_specs())?;
        let fronts = (1..=config.depth)
            .rev()
            .map(|j| {
                let n = format!("hourglass_front_{j}");
                BottleneckGroup::load(w, &format!("{n}/"), &n, &config.unit(config.width))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mid = InvertedBottleneck::load(
            w,
            "",
            "hourglass_mid_0",
            config.single(config.width, config.width),
        )?;
        let levels = (0..config.depth)
            .map(|k| {
                let cin = if k == 0 {
                    config.width
                } else {
                    config.keypoints
                };
                let back = InvertedBottleneck::load(
                    w,
                    "",
                    &format!("hourglass_back_{k}"),
                    config.single(cin, config.keypoints),
                )?;
                let n = format!("hourglass_branch_jump_{k}");
                let jump =
                    BottleneckGroup::load(w, &format!("{n}/"), &n, &config.unit(config.keypoints))?;
                Ok(Level { back, jump })
            })
            .collect::<Result<Vec<_>, WeightsError>>()?;
        Ok(Self {
            config,
            stem,
            conv1,
            conv2,
            fronts,
            mid,
            levels,
            device: device.clone(),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Every output for `x` = `[N, 3, H, W]`, B,G,R, 0..255.
    pub fn forward(&self, x: &Tensor) -> CResult<Output> {
        self.forward_steps(x, None)
    }

    /// As [`forward`](Self::forward), also timing the backbone, the front path and each
    /// output level (the device is synchronised at every step boundary).
    pub fn forward_profiled(&self, x: &Tensor) -> CResult<(Output, Vec<StepTime>)> {
        let mut times = Vec::with_capacity(self.levels.len() + 2);
        let out = self.forward_steps(x, Some(&mut times))?;
        Ok((out, times))
    }

    fn forward_steps(&self, x: &Tensor, times: Option<&mut Vec<StepTime>>) -> CResult<Output> {
        Ok(self.forward_keeping_skips(x, times)?.0)
    }

    /// The outputs and the skip features (finest first: `Conv2d_2`, `front_4`, …) the back
    /// path adds to.
    fn forward_keeping_skips(
        &self,
        x: &Tensor,
        times: Option<&mut Vec<StepTime>>,
    ) -> CResult<(Output, Vec<Tensor>)> {
        let mut clock = StepClock::new(&self.device, times);

        let h = self.stem.forward(x)?;
        let mut h = self.conv2.forward(&self.conv1.forward(&h)?)?;
        clock.lap("backbone")?;

        // skips[i]: the feature at the i-th scale from the finest (Conv2d_2, front_4, ...).
        let mut skips = Vec::with_capacity(self.fronts.len());
        for front in &self.fronts {
            skips.push(h.clone());
            h = front.forward(&max_pool_same(&h, 2, 2)?)?;
        }
        let mut prev = self.mid.forward(&h)?;
        clock.lap("front")?;

        let mut outputs = Vec::with_capacity(self.levels.len());
        for k in 0..self.levels.len() {
            let out = self.level(k, &prev, &skips)?;
            outputs.push(out.clone());
            prev = out;
            clock.lap(format!("level_{k}"))?;
        }
        Ok((Output { outputs }, skips))
    }

    /// Back-path level `k` on the previous output `prev`: `hourglass_out_k`.
    fn level(&self, k: usize, prev: &Tensor, skips: &[Tensor]) -> CResult<Tensor> {
        let level = self
            .levels
            .get(k)
            .ok_or_else(|| candle_core::Error::Msg(format!("no level {k}")))?;
        let skip = skips
            .len()
            .checked_sub(k + 1)
            .and_then(|i| skips.get(i))
            .ok_or_else(|| candle_core::Error::Msg(format!("no skip feature for level {k}")))?;
        let (_, _, sh, sw) = skip.dims4()?;
        let up = resize_bilinear_legacy(&level.back.forward(prev)?, sh, sw)?;
        up + level.jump.forward(skip)?
    }

    /// The longest chain of spatial layers (convs, depthwise convs, pools, resizes) from the
    /// image to output `level`'s map (`hourglass_out_{level}`, clamped to the last), with TF
    /// `SAME` padding for an input of `input_hw` (rows decide the padding; for sizes that
    /// are multiples of 64, columns pad the same). 1×1 layers are left out.
    pub fn receptive_chain(&self, level: usize, input_hw: (usize, usize)) -> Vec<RfLayer> {
        let mut size = input_hw.0;
        let mut chain = vec![RfLayer::window(
            "Conv2d_0",
            3,
            2,
            1,
            same_padding(size, 3, 2).0,
        )];
        size = size.div_ceil(2);
        for group in [&self.conv1, &self.conv2] {
            let (layers, out) = group.rf_layers(size);
            chain.extend(layers);
            size = out;
        }
        // (chain, size) of each skip feature, finest first.
        let mut skips = Vec::with_capacity(self.fronts.len());
        for (j, front) in self.fronts.iter().enumerate() {
            skips.push((chain.clone(), size));
            chain.push(RfLayer::window(
                format!("hourglass_downsample_{}", self.fronts.len() - j),
                2,
                2,
                1,
                same_padding(size, 2, 2).0,
            ));
            size = size.div_ceil(2);
            let (layers, out) = front.rf_layers(size);
            chain.extend(layers);
            size = out;
        }
        chain.push(self.mid.rf_layer(size));

        for (k, lvl) in self.levels.iter().enumerate().take(level.saturating_add(1)) {
            let Some((skip_chain, skip_size)) = skips
                .len()
                .checked_sub(k + 1)
                .and_then(|i| skips.get(i))
                .cloned()
            else {
                break;
            };
            let mut back = chain.clone();
            back.push(lvl.back.rf_layer(size));
            back.push(RfLayer::upsample(
                format!("hourglass_upsample_{k}"),
                (skip_size / size.max(1)).max(1),
                true,
            ));
            let mut jump = skip_chain;
            jump.extend(lvl.jump.rf_layers(skip_size).0);
            chain = largest_field(vec![back, jump]);
            size = skip_size;
        }
        chain
    }
}

/// PoseEstimationForMobile's mobile hourglass, from its released `.tflite` file.
pub static ARCHITECTURE: Architecture = Architecture {
    id: "pefm-hourglass",
    name: "mobile stacked hourglass (MobileNet-v2 blocks), 4 outputs",
    top_down: false,
    flip_shifts_heatmap: false,
    // The original decodes `hourglass_out_3` (48×48) as `x = ix·W/48`. Measured
    // (PCK@0.2): lspet_dev centre 28.1, corner 28.0 (the original program 25.6); COCO box
    // mode 52.2 / 50.8 (49.0): equal within noise, so the original's convention.
    grid: crate::pose::GridAlign::Corner,
    loader: Loader::Bytes(load_tflite),
};

fn load_tflite(
    _info: &'static ModelInfo,
    bytes: &[u8],
    label: &str,
    device: &Device,
) -> Result<Box<dyn PoseNet>, ModelError> {
    let store = crate::weights::tflite::load_tflite(bytes, label, device).map_err(Box::new)?;
    let net = PefmHourglass::load(&store, Config::released(), device).map_err(Box::new)?;
    Ok(Box::new(net))
}

fn output_label(t: usize) -> String {
    format!("hourglass_out_{t}")
}

impl PoseNet for PefmHourglass {
    fn run(&self, input: &Tensor, _options: &RunOptions) -> CResult<RunOutput> {
        let (out, times) = self.forward_profiled(input)?;
        RunTensors::stages(numbered_stages(&out.outputs, output_label), times).fetch()
    }

    fn resumable(&self) -> Option<&dyn Resumable> {
        Some(self)
    }

    fn heatmaps_batch(
        &self,
        input: &Tensor,
        _options: &RunOptions,
    ) -> CResult<Option<Vec<Tensor>>> {
        Ok(Some(self.forward(input)?.outputs))
    }

    fn receptive_fields(&self, size: (usize, usize)) -> Vec<(ReceptiveField, ReceptiveField)> {
        crate::models::net::per_axis_fields(self.config.depth, size, |t, len| {
            self.receptive_chain(t, (len, len))
        })
    }

    fn clone_box(&self) -> Box<dyn PoseNet> {
        Box::new(self.clone())
    }
}

/// Each back-path level reads the previous level's output (its maps) and the skip feature of
/// its scale: the context is the skip features, finest first.
impl Resumable for PefmHourglass {
    fn run_keeping_context(
        &self,
        input: &Tensor,
        _options: &RunOptions,
    ) -> CResult<(RunOutput, StageContext)> {
        let mut times = Vec::with_capacity(self.levels.len() + 2);
        let (out, skips) = self.forward_keeping_skips(input, Some(&mut times))?;
        let context = StageContext::new(skips, &out.outputs, crate::models::net::input_hw(input)?);
        let run = RunTensors::stages(numbered_stages(&out.outputs, output_label), times).fetch()?;
        Ok((run, context))
    }

    fn resume_from(
        &self,
        context: &StageContext,
        edit: &StageEdit<'_>,
    ) -> CResult<Vec<StageOutput>> {
        let skips = &context.features;
        let mut prev = edited_input(context, edit, context.feature(0)?.device())?;
        let mut out = Vec::new();
        for k in edit.stage + 1..self.levels.len() {
            prev = self.level(k, &prev, skips)?;
            out.push(StageTensors::heatmaps(
                output_label(k),
                format!("stage{}", k + 1),
                &prev,
            ));
        }
        // Every re-run stage in one device→host copy.
        Ok(RunTensors::stages(out, Vec::new()).fetch()?.stages)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::models::blocks::mobile::test_support::{bottleneck, group, put};
    use crate::models::receptive::{ReceptiveField, RfKind};
    use std::collections::HashMap;

    fn synthetic_store(config: &Config) -> TensorStore {
        let mut t = HashMap::new();
        put(
            &mut t,
            "Conv2d_0/weights".into(),
            &[config.stem_channels, 3, 3, 3],
        );
        put(
            &mut t,
            "Conv2d_0/Conv2D_bias".into(),
            &[config.stem_channels],
        );
        group(&mut t, "Conv2d_1/", "Conv2d_1", &config.conv1_specs());
        group(&mut t, "Conv2d_2/", "Conv2d_2", &config.conv2_specs());
        for j in 1..=config.depth {
            let n = format!("hourglass_front_{j}");
            group(&mut t, &format!("{n}/"), &n, &config.unit(config.width));
        }
        let mid = config.single(config.width, config.width);
        bottleneck(
            &mut t,
            "inverted_bottleneck_hourglass_mid_0/hourglass_mid_0",
            &mid,
        );
        for k in 0..config.depth {
            let cin = if k == 0 {
                config.width
            } else {
                config.keypoints
            };
            let n = format!("hourglass_back_{k}");
            bottleneck(
                &mut t,
                &format!("inverted_bottleneck_{n}/{n}"),
                &config.single(cin, config.keypoints),
            );
            let n = format!("hourglass_branch_jump_{k}");
            group(&mut t, &format!("{n}/"), &n, &config.unit(config.keypoints));
        }
        TensorStore::new("synthetic", t)
    }

    fn net() -> PefmHourglass {
        let config = Config::released();
        PefmHourglass::load(&synthetic_store(&config), config, &Device::Cpu).unwrap()
    }

    #[test]
    fn output0_chain_matches_a_hand_count() {
        let chain = net().receptive_chain(0, (192, 192));
        // Stem, Conv2d_1 (2), Conv2d_2 (5), 4 × (pool + 5), mid, back_0, the ×2 resize.
        assert_eq!(chain.len(), 1 + 2 + 5 + 4 * 6 + 1 + 1 + 1);
        // Conv2d_2_1: 3×3 s2 on 96 rows -> pad (0, 1); pools on even sizes: no padding.
        assert_eq!(
            chain[3].kind,
            RfKind::Window {
                kernel: 3,
                stride: 2,
                dilation: 1,
                pad_before: 0
            }
        );
        assert_eq!(
            chain[8].kind,
            RfKind::Window {
                kernel: 2,
                stride: 2,
                dilation: 1,
                pad_before: 0
            }
        );
        assert_eq!(
            chain.last().map(|l| l.kind),
            Some(RfKind::Upsample { factor: 2, taps: 2 })
        );
        // By hand: stem 3 (jump 2); Conv2d_1: 11; Conv2d_2: 15 (jump 4), 47; front_4: pool
        // 51 (jump 8), 131; front_3: 139 (16), 299; front_2: 315 (32), 635; front_1: 667
        // (64), 1307; mid 1435; back_0 1563; bilinear ×2: 1627, jump 32.
        let rf = ReceptiveField::of_chain(&chain);
        assert_eq!((rf.size, rf.jump), (1627.0, 32.0));
        // The next level goes through back_1 (+2·32) and the ×2 resize (+32).
        let rf1 = ReceptiveField::of_chain(&net().receptive_chain(1, (192, 192)));
        assert_eq!((rf1.size, rf1.jump), (1627.0 + 64.0 + 32.0, 16.0));
    }

    #[test]
    fn other_input_sizes_give_the_pyramid() {
        let x = Tensor::ones((1, 3, 256, 128), candle_core::DType::F32, &Device::Cpu).unwrap();
        let (out, times) = net().forward_profiled(&x).unwrap();
        let dims: Vec<_> = out.outputs.iter().map(|t| t.dims().to_vec()).collect();
        assert_eq!(
            dims,
            vec![
                vec![1, 14, 8, 4],
                vec![1, 14, 16, 8],
                vec![1, 14, 32, 16],
                vec![1, 14, 64, 32]
            ]
        );
        let names: Vec<_> = times.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            vec!["backbone", "front", "level_0", "level_1", "level_2", "level_3"]
        );
        // 224 = 7·32: the 7×7 front level pools to 4×4 (SAME), which resizes back to 7.
        let x = Tensor::ones((1, 3, 224, 224), candle_core::DType::F32, &Device::Cpu).unwrap();
        let out = net().forward(&x).unwrap();
        let sides: Vec<_> = out.outputs.iter().map(|t| t.dims()[2]).collect();
        assert_eq!(sides, vec![7, 14, 28, 56]);
    }

    #[test]
    fn a_missing_tensor_is_named() {
        let e = PefmHourglass::load(
            &TensorStore::new("hg.tflite", HashMap::new()),
            Config::released(),
            &Device::Cpu,
        )
        .unwrap_err();
        assert!(e.to_string().contains("hg.tflite"), "{e}");
        assert!(e.to_string().contains("Conv2d_0/weights"), "{e}");
    }
}
