//! Mobile Convolutional Pose Machine of edvardHua/PoseEstimationForMobile
//! (`training/src/network_mv2_cpm.py`, released `release/cpm_model/model.tflite`), after
//! Wei et al., "Convolutional Pose Machines", CVPR 2016, on a MobileNetV2 trunk (Sandler et
//! al., 2018). The release is the "tiny" width variant; [`Config::released`] holds its widths.
//!
//! Structure (NCHW here; the original runs NHWC), see [`crate::models::blocks::mobile`] for the
//! activation quirks:
//! - stem `Conv2d_0`: 3×3 s2 conv → ReLU6 (16 ch, stride 2);
//! - `MobilenetV2_part_0..4`: inverted bottlenecks, widths 8, 12, 16, 32, 48 at strides
//!   2, 4, 8, 16, 32;
//! - `MobilenetV2/concat` at stride 8: `[maxpool 4×4 s4(part 0), maxpool 2×2 s2(part 1),
//!   part 2, bilinear ×2(part 3), bilinear ×4(part 4)]` = 116 ch (legacy TF resize);
//! - 6 stages at stride 8; stage 0 reads the concat, stage k > 0 reads
//!   concat(backbone, stage k−1's maps) = 130 ch. Each: 3 inverted bottlenecks (expansion 2
//!   then 3, depthwise 3×3 in stage 0 and 7×7 after, 24 ch), then two "mv1" blocks with 1×1
//!   depthwise kernels (to 256 ch in stage 0 / 64 after, then to 14 ch). Every stage map is
//!   ReLU6 → in `[0, 6]`;
//! - `stage_5_out`: the last stage's maps resized ×4 (legacy bilinear) to stride 2.
//!
//! TF `SAME` padding is computed from the actual size (asymmetric on the stride-2 ops), and
//! resize targets follow the stride-8 map, so input sizes that are multiples of 32 work
//! (the release runs 192×192). Parameter names are the `.tflite` tensor names; load them
//! with [`crate::weights::tflite::load_tflite`]. Input: `[N, 3, H, W]`, B,G,R, 0..255.
//! Output channels: head_top, neck, r_shoulder, r_elbow, r_wrist, l_shoulder, l_elbow,
//! l_wrist, r_hip, r_knee, r_ankle, l_hip, l_knee, l_ankle.

use candle_core::{Device, Module, Result as CResult, Tensor};

use crate::kernels::bias_act::Act;
use crate::kernels::padding::same_padding;
use crate::kernels::resize::resize_bilinear_legacy;
use crate::models::blocks::mobile::{
    group_specs, largest_field, BottleneckGroup, BottleneckSpec, ScaleSeparable,
};
use crate::models::blocks::ops::{max_pool_same, ConvSame};
use crate::models::info::{Architecture, Loader};
use crate::models::net::{
    edited_input, numbered_stages, stage_label, PoseNet, Resumable, RunOptions, RunOutput,
    RunTensors, StageContext, StageEdit, StageOutput, StageTensors,
};
use crate::models::receptive::RfLayer;
use crate::models::{ModelError, ModelInfo, ReceptiveField, StepClock, StepTime};
use crate::weights::{TensorStore, WeightsError};

/// One backbone part: a run of inverted bottlenecks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartSpec {
    pub blocks: usize,
    pub channels: usize,
    pub expansion: usize,
    /// Stride of the first block.
    pub stride: usize,
}

/// Widths and wiring of the network.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub stem_channels: usize,
    pub parts: Vec<PartSpec>,
    /// The part whose resolution the backbone concat takes (stride 8 in the release).
    pub concat_part: usize,
    pub stages: usize,
    /// Width of every stage's inverted bottlenecks.
    pub stage_channels: usize,
    pub stage_blocks: usize,
    /// Expansion of a stage's first block, and of the others.
    pub stage_expansion: (usize, usize),
    /// Depthwise kernel of stage 0, and of later stages.
    pub stage_kernel: (usize, usize),
    /// Width of the first "mv1" block in stage 0, and in later stages.
    pub stage_hidden: (usize, usize),
    pub keypoints: usize,
    /// Upsampling of the last stage's maps into `stage_5_out`.
    pub output_upsample: usize,
}

impl Config {
    /// The released "tiny" model (`release/cpm_model/model.tflite`).
    pub fn released() -> Self {
        let part = |blocks, channels, expansion, stride| PartSpec {
            blocks,
            channels,
            expansion,
            stride,
        };
        Self {
            stem_channels: 16,
            parts: vec![
                part(2, 8, 1, 1),
                part(5, 12, 4, 2),
                part(5, 16, 4, 2),
                part(5, 32, 4, 2),
                part(5, 48, 4, 2),
            ],
            concat_part: 2,
            stages: 6,
            stage_channels: 24,
            stage_blocks: 3,
            stage_expansion: (2, 3),
            stage_kernel: (3, 7),
            stage_hidden: (256, 64),
            keypoints: 14,
            output_upsample: 4,
        }
    }

    /// Channels of the backbone concat.
    pub fn backbone_channels(&self) -> usize {
        self.parts.iter().map(|p| p.channels).sum()
    }

    /// Cumulative stride after each part.
    fn part_strides(&self) -> Vec<usize> {
        let mut s = 2;
        self.parts
            .iter()
            .map(|p| {
                s *= p.stride.max(1);
                s
            })
            .collect()
    }

    fn stage_specs(&self, stage: usize) -> Vec<BottleneckSpec> {
        let cin = if stage == 0 {
            self.backbone_channels()
        } else {
            self.backbone_channels() + self.keypoints
        };
        let kernel = if stage == 0 {
            self.stage_kernel.0
        } else {
            self.stage_kernel.1
        };
        let c = self.stage_channels;
        let mut specs = group_specs(
            self.stage_blocks,
            c,
            c,
            c,
            self.stage_expansion.1,
            kernel,
            1,
        );
        if let Some(first) = specs.first_mut() {
            first.cin = cin;
            first.expansion = self.stage_expansion.0;
        }
        specs
    }
}

/// How a part reaches the concat resolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ToConcat {
    Identity,
    /// Max pool `k×k` stride `k`.
    Pool(usize),
    /// Legacy bilinear resize up by this factor.
    Upsample(usize),
}

/// Every stage's maps.
#[derive(Clone, Debug)]
pub struct Output {
    /// `MobilenetV2/concat`, `[N, 116, H/8, W/8]`.
    pub backbone: Tensor,
    /// Each stage's belief maps `[N, 14, H/8, W/8]` (`stage_k_mv1_2_pointwise/Relu`), stage 0
    /// first.
    pub stages: Vec<Tensor>,
    /// `stage_5_out`: the last stage resized ×4, `[N, 14, H/2, W/2]`.
    pub upsampled: Tensor,
}

#[derive(Clone, Debug)]
struct Stage {
    blocks: BottleneckGroup,
    heads: Vec<ScaleSeparable>,
}

impl Stage {
    /// The stage on `x`, or on the channel concatenation of `x` and `prev` (the previous
    /// stage's maps), which its first block reads in place.
    fn forward_on(&self, x: &Tensor, prev: Option<&Tensor>) -> CResult<Tensor> {
        let h = match prev {
            Some(p) => self.blocks.forward_cat(x, p)?,
            None => self.blocks.forward(x)?,
        };
        self.heads.iter().try_fold(h, |h, m| m.forward(&h))
    }
}

/// The loaded network.
#[derive(Clone, Debug)]
pub struct PefmCpm {
    config: Config,
    stem: ConvSame,
    parts: Vec<BottleneckGroup>,
    to_concat: Vec<ToConcat>,
    stages: Vec<Stage>,
    device: Device,
}

impl PefmCpm {
    /// Builds the network from `.tflite` tensors (TFLite layouts, see the module docs).
    pub fn load(w: &TensorStore, config: Config, device: &Device) -> Result<Self, WeightsError> {
        let name = "Conv2d_0/weights";
        let k = w.get(name, &[config.stem_channels, 3, 3, 3])?;
        let b = w.get("Conv2d_0/Conv2D_bias", &[config.stem_channels])?;
        let stem = w.convert(name, k, |t| {
            ConvSame::new(t.permute((0, 3, 1, 2))?.contiguous()?, Some(b), 2).with_act(Act::Relu6)
        })?;

        let mut parts = Vec::with_capacity(config.parts.len());
        let mut cin = config.stem_channels;
        for (p, spec) in config.parts.iter().enumerate() {
            let specs = group_specs(
                spec.blocks,
                cin,
                spec.channels,
                spec.channels,
                spec.expansion,
                3,
                spec.stride,
            );
            let scope = format!("MobilenetV2/MobilenetV2_part_{p}/");
            parts.push(BottleneckGroup::load(
                w,
                &scope,
                &format!("MobilenetV2_part_{p}"),
                &specs,
            )?);
            cin = spec.channels;
        }
        let strides = config.part_strides();
        let target = strides.get(config.concat_part).copied().unwrap_or(8);
        let to_concat = strides
            .iter()
            .map(|&s| match s.cmp(&target) {
                std::cmp::Ordering::Less => ToConcat::Pool(target / s),
                std::cmp::Ordering::Equal => ToConcat::Identity,
                std::cmp::Ordering::Greater => ToConcat::Upsample(s / target),
            })
            .collect();

        let mut stages = Vec::with_capacity(config.stages);
        for k in 0..config.stages {
            let scope = format!("Convolutional_Pose_Machine/stage_{k}_mv2/");
            let blocks = BottleneckGroup::load(
                w,
                &scope,
                &format!("stage_{k}_mv2"),
                &config.stage_specs(k),
            )?;
            let hidden = if k == 0 {
                config.stage_hidden.0
            } else {
                config.stage_hidden.1
            };
            let head =
                |i: usize| format!("Convolutional_Pose_Machine/stage_{k}_mv1/stage_{k}_mv1_{i}");
            let heads = vec![
                ScaleSeparable::load(w, &head(1), config.stage_channels, hidden)?,
                ScaleSeparable::load(w, &head(2), hidden, config.keypoints)?,
            ];
            stages.push(Stage { blocks, heads });
        }
        Ok(Self {
            config,
            stem,
            parts,
            to_concat,
            stages,
            device: device.clone(),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Every stage's maps for `x` = `[N, 3, H, W]`, B,G,R, 0..255.
    pub fn forward(&self, x: &Tensor) -> CResult<Output> {
        self.forward_steps(x, None)
    }

    /// As [`forward`](Self::forward), also timing the backbone, each stage and the final
    /// upsampling (the device is synchronised at every step boundary).
    pub fn forward_profiled(&self, x: &Tensor) -> CResult<(Output, Vec<StepTime>)> {
        let mut times = Vec::with_capacity(self.stages.len() + 2);
        let out = self.forward_steps(x, Some(&mut times))?;
        Ok((out, times))
    }

    fn forward_steps(&self, x: &Tensor, times: Option<&mut Vec<StepTime>>) -> CResult<Output> {
        let mut clock = StepClock::new(&self.device, times);

        let mut h = self.stem.forward(x)?;
        let mut outs = Vec::with_capacity(self.parts.len());
        for part in &self.parts {
            h = part.forward(&h)?;
            outs.push(h.clone());
        }
        let (_, _, th, tw) = outs
            .get(self.config.concat_part)
            .ok_or_else(|| candle_core::Error::Msg("concat part out of range".into()))?
            .dims4()?;
        let mut pieces = Vec::with_capacity(outs.len());
        for (o, how) in outs.iter().zip(&self.to_concat) {
            pieces.push(match how {
                ToConcat::Identity => o.clone(),
                ToConcat::Pool(k) => max_pool_same(o, *k, *k)?,
                ToConcat::Upsample(_) => resize_bilinear_legacy(o, th, tw)?,
            });
        }
        let backbone = Tensor::cat(&pieces, 1)?;
        clock.lap("backbone")?;

        let mut stages: Vec<Tensor> = Vec::with_capacity(self.stages.len());
        for (k, stage) in self.stages.iter().enumerate() {
            let maps = stage.forward_on(&backbone, stages.last())?;
            stages.push(maps);
            clock.lap(format!("stage_{k}"))?;
        }
        let last = stages
            .last()
            .ok_or_else(|| candle_core::Error::Msg("the network has no stage".into()))?;
        let f = self.config.output_upsample;
        let upsampled = resize_bilinear_legacy(last, th * f, tw * f)?;
        clock.lap("upsample")?;
        Ok(Output {
            backbone,
            stages,
            upsampled,
        })
    }

    /// The longest chain of spatial layers (convs, depthwise convs, pools, resizes) from the
    /// image to stage `stage`'s maps (clamped to the last stage), with TF `SAME` padding for
    /// an input of `input_hw` (rows decide the padding; for sizes that are multiples of 32,
    /// columns pad the same). 1×1 layers are left out: they do not change the field.
    pub fn receptive_chain(&self, stage: usize, input_hw: (usize, usize)) -> Vec<RfLayer> {
        let mut size = input_hw.0;
        let mut trunk = vec![RfLayer::window(
            "Conv2d_0",
            3,
            2,
            1,
            same_padding(size, 3, 2).0,
        )];
        size = size.div_ceil(2);
        let mut candidates = Vec::with_capacity(self.parts.len());
        for (part, how) in self.parts.iter().zip(&self.to_concat) {
            let (layers, out) = part.rf_layers(size);
            trunk.extend(layers);
            size = out;
            let mut chain = trunk.clone();
            let name =
                |p: &BottleneckGroup| p.blocks.first().map(|b| b.name.clone()).unwrap_or_default();
            match *how {
                ToConcat::Identity => {}
                ToConcat::Pool(k) => chain.push(RfLayer::window(
                    format!("{}/max_pool", name(part)),
                    k,
                    k,
                    1,
                    same_padding(size, k, k).0,
                )),
                ToConcat::Upsample(f) => chain.push(RfLayer::upsample(
                    format!("{}/upsample", name(part)),
                    f,
                    true,
                )),
            }
            candidates.push(chain);
        }
        let backbone = largest_field(candidates);
        let concat_size = input_hw.0.div_ceil(
            self.config
                .part_strides()
                .get(self.config.concat_part)
                .copied()
                .unwrap_or(8),
        );
        let mut chain = backbone.clone();
        for s in self.stages.iter().take(stage.saturating_add(1)) {
            let mut through_prev = chain.clone();
            through_prev.extend(s.blocks.rf_layers(concat_size).0);
            let mut direct = backbone.clone();
            direct.extend(s.blocks.rf_layers(concat_size).0);
            chain = largest_field(vec![through_prev, direct]);
        }
        chain
    }
}

/// PoseEstimationForMobile's mobile CPM, from its released `.tflite` file.
pub static ARCHITECTURE: Architecture = Architecture {
    id: "pefm-cpm",
    name: "mobile Convolutional Pose Machine (MobileNet-v2 blocks), 6 stages",
    top_down: false,
    flip_shifts_heatmap: false,
    // The original decodes `stage_5_out` (the last stage ×4, TF legacy resize) as
    // `x = ix·W/96`: cell c at input c·8. Measured on lspet_dev (PCK@0.2, stage 6): centre
    // 28.0, corner 33.5 (the original program 31.9); COCO box mode 61.8 / 65.6 (64.3).
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
    let net = PefmCpm::load(&store, Config::released(), device).map_err(Box::new)?;
    Ok(Box::new(net))
}

impl PoseNet for PefmCpm {
    fn run(&self, input: &Tensor, _options: &RunOptions) -> CResult<RunOutput> {
        let (out, times) = self.forward_profiled(input)?;
        RunTensors::stages(
            numbered_stages(&out.stages, crate::models::net::stage_label),
            times,
        )
        .fetch()
    }

    fn receptive_fields(&self, size: (usize, usize)) -> Vec<(ReceptiveField, ReceptiveField)> {
        crate::models::net::per_axis_fields(self.config.stages, size, |t, len| {
            self.receptive_chain(t, (len, len))
        })
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

/// Every stage reads the backbone concat and the previous stage's maps: the context is the
/// backbone (`features[0]`).
impl Resumable for PefmCpm {
    fn run_keeping_context(
        &self,
        input: &Tensor,
        _options: &RunOptions,
    ) -> CResult<(RunOutput, StageContext)> {
        let (out, times) = self.forward_profiled(input)?;
        let context = StageContext::new(
            vec![out.backbone.clone()],
            &out.stages,
            crate::models::net::input_hw(input)?,
        );
        let run = RunTensors::stages(numbered_stages(&out.stages, stage_label), times).fetch()?;
        Ok((run, context))
    }

    fn resume_from(
        &self,
        context: &StageContext,
        edit: &StageEdit<'_>,
    ) -> CResult<Vec<StageOutput>> {
        let backbone = context.feature(0)?;
        let mut prev = edited_input(context, edit, backbone.device())?;
        let mut out = Vec::new();
        for (k, stage) in self.stages.iter().enumerate().skip(edit.stage + 1) {
            prev = stage.forward_on(backbone, Some(&prev))?;
            out.push(StageTensors::heatmaps(
                stage_label(k),
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
    use crate::models::blocks::mobile::test_support::{group, put};
    use crate::models::receptive::{ReceptiveField, RfKind};
    use std::collections::HashMap;

    /// A store with every tensor `config` needs, filled with small values.
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
        let mut cin = config.stem_channels;
        for (p, part) in config.parts.iter().enumerate() {
            let specs = group_specs(
                part.blocks,
                cin,
                part.channels,
                part.channels,
                part.expansion,
                3,
                part.stride,
            );
            let scope = format!("MobilenetV2/MobilenetV2_part_{p}/");
            group(&mut t, &scope, &format!("MobilenetV2_part_{p}"), &specs);
            cin = part.channels;
        }
        for k in 0..config.stages {
            let scope = format!("Convolutional_Pose_Machine/stage_{k}_mv2/");
            group(
                &mut t,
                &scope,
                &format!("stage_{k}_mv2"),
                &config.stage_specs(k),
            );
            let hidden = if k == 0 {
                config.stage_hidden.0
            } else {
                config.stage_hidden.1
            };
            let widths = [(config.stage_channels, hidden), (hidden, config.keypoints)];
            for (i, (ci, co)) in widths.into_iter().enumerate() {
                let p = format!(
                    "Convolutional_Pose_Machine/stage_{k}_mv1/stage_{k}_mv1_{}",
                    i + 1
                );
                put(
                    &mut t,
                    format!("{p}_depthwise/depthwise_weights"),
                    &[1, 1, 1, ci],
                );
                put(&mut t, format!("{p}_depthwise/depthwise_bias"), &[ci]);
                put(&mut t, format!("{p}_pointwise/weights"), &[co, 1, 1, ci]);
                put(&mut t, format!("{p}_pointwise/Conv2D_bias"), &[co]);
            }
        }
        TensorStore::new("synthetic", t)
    }

    #[test]
    fn stage0_chain_matches_a_hand_count() {
        let config = Config::released();
        let net = PefmCpm::load(&synthetic_store(&config), config, &Device::Cpu).unwrap();
        let chain = net.receptive_chain(0, (192, 192));
        // Stem, part 0 (2 depthwise), parts 1..4 (5 each), the ×4 resize of part 4, and
        // stage 0's three 3×3 depthwise convs.
        assert_eq!(chain.len(), 1 + 2 + 4 * 5 + 1 + 3);
        assert_eq!(
            chain[0].kind,
            RfKind::Window {
                kernel: 3,
                stride: 2,
                dilation: 1,
                pad_before: 0
            }
        );
        // part 1's first block: 3×3 s2 on 96 rows -> pad (0, 1).
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
            chain[4].kind,
            RfKind::Window {
                kernel: 3,
                stride: 1,
                dilation: 1,
                pad_before: 1
            }
        );
        assert_eq!(chain[23].kind, RfKind::Upsample { factor: 4, taps: 2 });
        // By hand: stem 3 (jump 2); part 0: +2·2·2 = 11; part 1: +2·2, jump 4, +4·2·4 = 47;
        // part 2: +2·4, jump 8, +4·2·8 = 119; part 3: 263 (jump 16); part 4: 551 (jump 32);
        // bilinear ×4: +32 = 583, jump 8; stage 0: +3·2·8 = 631.
        let rf = ReceptiveField::of_chain(&chain);
        assert_eq!((rf.size, rf.jump), (631.0, 8.0));
        // Every later stage adds three 7×7 depthwise convs at jump 8.
        let rf1 = ReceptiveField::of_chain(&net.receptive_chain(1, (192, 192)));
        assert_eq!(rf1.size, 631.0 + 3.0 * 6.0 * 8.0);
        assert_eq!(net.receptive_chain(5, (192, 192)).len(), 27 + 5 * 3);
    }

    #[test]
    fn other_input_sizes_give_stride_8_maps() {
        let config = Config::released();
        let net = PefmCpm::load(&synthetic_store(&config), config, &Device::Cpu).unwrap();
        let x = Tensor::ones((1, 3, 256, 224), candle_core::DType::F32, &Device::Cpu).unwrap();
        let (out, times) = net.forward_profiled(&x).unwrap();
        assert_eq!(out.backbone.dims(), &[1, 116, 32, 28]);
        assert_eq!(out.stages.len(), 6);
        for s in &out.stages {
            assert_eq!(s.dims(), &[1, 14, 32, 28]);
        }
        assert_eq!(out.upsampled.dims(), &[1, 14, 128, 112]);
        let names: Vec<_> = times.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names.first(), Some(&"backbone"));
        assert_eq!(names.len(), 8);
    }

    #[test]
    fn missing_and_misshaped_tensors_are_named() {
        let config = Config::released();
        let e = PefmCpm::load(
            &TensorStore::new("x.tflite", HashMap::new()),
            config.clone(),
            &Device::Cpu,
        )
        .unwrap_err();
        assert!(e.to_string().contains("x.tflite"), "{e}");
        assert!(e.to_string().contains("Conv2d_0/weights"), "{e}");
        // A config asking for 15 keypoints meets the 14-keypoint weights.
        let store = synthetic_store(&config);
        let wrong = Config {
            keypoints: 15,
            ..config
        };
        let e = PefmCpm::load(&store, wrong, &Device::Cpu).unwrap_err();
        assert!(matches!(e, WeightsError::Shape { .. }), "{e}");
        assert!(
            e.to_string().contains("stage_0_mv1_2_pointwise/weights"),
            "{e}"
        );
    }
}
