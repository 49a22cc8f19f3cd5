//! Stacked Hourglass: Newell, Yang, Deng, "Stacked Hourglass Networks for Human Pose
//! Estimation", ECCV 2016. A top-down model: a stem to 1/4 of the crop, then `nstack`
//! hourglasses (recursive down/up-sampling with skip paths), each predicting one heatmap
//! per joint and feeding its prediction back into the next.
//!
//! Built as in the authors' lab's PyTorch code `princeton-vl/pytorch_stacked_hourglass`
//! (`models/posenet.py`, `models/layers.py`, `task/pose.py`: `PoseNet(nstack=8,
//! inp_dim=256, oup_dim=16)`), with the parameter names of its `state_dict` (the trained
//! checkpoint adds a `model.module.` prefix):
//!
//! | part | keys | what it does |
//! |---|---|---|
//! | `pre.0` | `conv.{weight,bias}`, `bn` | 7×7 s2 conv + BN + ReLU (64 ch) |
//! | `pre.{1,3,4}` | Residual | 64 → 128, (`pre.2` max-pool 2), 128 → 128, 128 → `inp_dim` |
//! | `hgs.{i}.0` | `up1`, `low1`, `low2` (recursive, 4 levels: `low2.low2.low2.low2`), `low3` | `up1(x) + nearest×2(low3(low2(low1(maxpool2(x)))))` |
//! | `features.{i}` | `.0` Residual, `.1` 1×1 conv + BN + ReLU | |
//! | `outs.{i}` | `conv` (1×1 with bias) | stack `i`'s heatmaps |
//! | `merge_preds.{i}`, `merge_features.{i}` | `conv.conv` (1×1 with bias) | `x ← x + merge_preds(preds) + merge_features(features)` |
//!
//! A Residual (`layers.py`) is pre-activation: `bn1` → ReLU → `conv1` (1×1, C/2) → `bn2` →
//! ReLU → `conv2` (3×3) → `bn3` → ReLU → `conv3` (1×1), plus the input, with no ReLU after
//! the sum. Every conv has a bias. Its `skip_layer` (1×1) exists in every Residual but is
//! applied only when the width changes (`pre.1`, `pre.4`); the others are never read. Each
//! BN that follows a conv is folded into it at load time (eval mode, eps 1e-5); `bn1`
//! follows no conv and stays a per-channel affine map.
//!
//! Input: `[N, 3, H, W]` R,G,B, `u8 / 255`, no mean or std. The official `forward` takes
//! NHWC and permutes; this one takes NCHW like the other models (permute an NHWC tensor
//! with `permute((0, 3, 1, 2))`). The standard input is 256×256; `H` and `W` must be
//! multiples of 64.

use candle_core::{Device, Result as CResult, Tensor};
use candle_nn::VarBuilder;

use crate::models::blocks::folded::{Affine, Conv};
use crate::models::info::{Architecture, Loaded, Loader};
use crate::models::net::{
    edited_input, numbered_stages, PoseNet, Resumable, RunOptions, RunOutput, RunTensors,
    StageContext, StageEdit, StageOutput, StageTensors,
};
use crate::models::{ModelInfo, StepClock, StepTime};
use crate::weights::TensorStore;

/// Width of the stem conv (fixed in the official code).
const STEM_CHANNELS: usize = 64;
/// Width of the stem Residuals before the last one (fixed in the official code).
const STEM_RESIDUAL_CHANNELS: usize = 128;

/// A Stacked Hourglass configuration (`PoseNet`'s arguments).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `nstack`: hourglasses in a row.
    pub stacks: usize,
    /// `inp_dim`: feature width.
    pub features: usize,
    /// `oup_dim`: heatmaps (joints).
    pub joints: usize,
    /// Levels of each hourglass (4 in `PoseNet`).
    pub depth: usize,
    /// `(height, width)` of the standard input.
    pub input_size: (usize, usize),
}

impl Config {
    /// `PoseNet(nstack=8, inp_dim=256, oup_dim=16)` on 256×256 MPII crops (`task/pose.py`).
    pub fn mpii_8stack() -> Self {
        Self::mpii(8)
    }

    /// `PoseNet(nstack=stacks, inp_dim=256, oup_dim=16)`, e.g. the 2-stack model.
    pub fn mpii(stacks: usize) -> Self {
        Self {
            stacks,
            features: 256,
            joints: 16,
            depth: 4,
            input_size: (256, 256),
        }
    }

    /// Infers the configuration from a checkpoint's tensor shapes (`shape(key)` is the
    /// shape of tensor `key` under its official name, `None` if absent): the stack count by
    /// counting `outs.{i}.conv.weight`, joints and features from `outs.0.conv.weight`
    /// (`[joints, features, 1, 1]`), the depth from the nesting of `hgs.0.0.low2…`.
    /// `input_size` (`(height, width)`) is taken as given.
    pub fn from_shapes(
        shape: impl Fn(&str) -> Option<Vec<usize>>,
        input_size: (usize, usize),
    ) -> CResult<Self> {
        let stacks = (0..256)
            .take_while(|i| shape(&format!("outs.{i}.conv.weight")).is_some())
            .count();
        let key = "outs.0.conv.weight";
        let out = shape(key).ok_or_else(|| {
            candle_core::Error::Msg(format!(
                "no tensor '{key}' (not a Stacked Hourglass checkpoint, or a truncated one)"
            ))
        })?;
        let [joints, features, _, _] = <[usize; 4]>::try_from(out.as_slice()).map_err(|_| {
            candle_core::Error::Msg(format!(
                "tensor '{key}' has shape {out:?}, expected [joints, features, 1, 1]"
            ))
        })?;
        // Level n has `low2` = another level while n > 1, a Residual at n = 1.
        let mut depth = 1;
        let mut prefix = "hgs.0.0".to_string();
        while depth < 16 && shape(&format!("{prefix}.low2.up1.conv1.conv.weight")).is_some() {
            prefix.push_str(".low2");
            depth += 1;
        }
        let config = Self {
            stacks,
            features,
            joints,
            depth,
            input_size,
        };
        config.validate()?;
        Ok(config)
    }

    /// The input sides must be multiples of this (stride 4 of the stem, then `depth`
    /// halvings).
    pub fn input_multiple(&self) -> usize {
        4 << self.depth
    }

    fn validate(&self) -> CResult<()> {
        if self.stacks == 0 || self.features < 2 || self.joints == 0 || self.depth == 0 {
            candle_core::bail!("Stacked Hourglass: invalid configuration {self:?}");
        }
        if self.depth > 10 {
            candle_core::bail!("Stacked Hourglass: depth {} (at most 10)", self.depth);
        }
        Ok(())
    }
}

/// The pre-activation Residual of `layers.py`.
#[derive(Clone, Debug)]
struct Residual {
    bn1: Affine,
    /// `conv1` with `bn2` folded in, then ReLU.
    conv1: Conv,
    /// `conv2` with `bn3` folded in, then ReLU.
    conv2: Conv,
    conv3: Conv,
    /// `skip_layer`, only when `cin != cout`.
    skip: Option<Conv>,
}

impl Residual {
    fn load(vb: &VarBuilder, cin: usize, cout: usize) -> CResult<Self> {
        let mid = cout / 2;
        let skip = if cin != cout {
            Some(Conv::with_bias(vb, "skip_layer.conv", (cin, cout), 1)?)
        } else {
            None
        };
        Ok(Self {
            bn1: Affine::batch_norm(&vb.pp("bn1"), cin)?,
            conv1: Conv::with_bias_bn(vb, "conv1.conv", "bn2", (cin, mid), 1, 1, true)?,
            conv2: Conv::with_bias_bn(vb, "conv2.conv", "bn3", (mid, mid), 3, 1, true)?,
            conv3: Conv::with_bias(vb, "conv3.conv", (mid, cout), 1)?,
            skip,
        })
    }

    fn forward(&self, x: &Tensor) -> CResult<Tensor> {
        let h = self.bn1.forward(x)?.relu()?;
        let h = self
            .conv3
            .forward(&self.conv2.forward(&self.conv1.forward(&h)?)?)?;
        match &self.skip {
            Some(s) => h + s.forward(x)?,
            None => h + x,
        }
    }
}

/// The innermost part of an hourglass level.
#[derive(Clone, Debug)]
enum Inner {
    Hourglass(Box<Hourglass>),
    Residual(Box<Residual>),
}

/// One hourglass level (`Hourglass(n, f)`, `increase = 0`).
#[derive(Clone, Debug)]
struct Hourglass {
    up1: Residual,
    low1: Residual,
    low2: Inner,
    low3: Residual,
}

impl Hourglass {
    fn load(vb: &VarBuilder, n: usize, f: usize) -> CResult<Self> {
        let low2 = if n > 1 {
            Inner::Hourglass(Box::new(Self::load(&vb.pp("low2"), n - 1, f)?))
        } else {
            Inner::Residual(Box::new(Residual::load(&vb.pp("low2"), f, f)?))
        };
        Ok(Self {
            up1: Residual::load(&vb.pp("up1"), f, f)?,
            low1: Residual::load(&vb.pp("low1"), f, f)?,
            low2,
            low3: Residual::load(&vb.pp("low3"), f, f)?,
        })
    }

    fn forward(&self, x: &Tensor) -> CResult<Tensor> {
        let up1 = self.up1.forward(x)?;
        let low1 = self.low1.forward(&x.max_pool2d(2)?)?;
        let low2 = match &self.low2 {
            Inner::Hourglass(h) => h.forward(&low1)?,
            Inner::Residual(r) => r.forward(&low1)?,
        };
        let low3 = self.low3.forward(&low2)?;
        let (_, _, h, w) = low3.dims4()?;
        up1 + low3.upsample_nearest2d(2 * h, 2 * w)?
    }
}

/// One stack: hourglass, features, prediction and (but for the last) the merges.
#[derive(Clone, Debug)]
struct Stack {
    hourglass: Hourglass,
    residual: Residual,
    feature: Conv,
    out: Conv,
    /// `(merge_preds, merge_features)`; `None` for the last stack.
    merge: Option<(Conv, Conv)>,
}

/// Every output and intermediate of one forward pass, `[N, C, h, w]`, for an input of
/// `H × W`.
#[derive(Clone, Debug)]
pub struct StackedHourglassOutputs {
    /// Each stack's heatmaps at `H/4 × W/4`, first to last; the last is the prediction
    /// (the official forward returns them stacked on dim 1).
    pub stacks: Vec<Tensor>,
    /// The stem output (`inp_dim` ch at `H/4`), the input of `hgs.0`.
    pub pre: Tensor,
    /// Each stack's input (the first is `pre`).
    pub inputs: Vec<Tensor>,
    /// Each stack's features (`features.i`), merged into the next stack's input.
    pub features: Vec<Tensor>,
}

impl StackedHourglassOutputs {
    /// The last stack's heatmaps (the one the official test uses).
    pub fn heatmaps(&self) -> Option<&Tensor> {
        self.stacks.last()
    }
}

/// A Stacked Hourglass with its weights on a device.
#[derive(Clone, Debug)]
pub struct StackedHourglass {
    config: Config,
    stem: Conv,
    /// `pre.1`, `pre.3`, `pre.4` (`pre.2` is the max-pool after the first).
    pre: [Residual; 3],
    stacks: Vec<Stack>,
    device: Device,
}

impl StackedHourglass {
    /// Builds the network from `vb` (official parameter names under `vb`'s prefix). Every
    /// `state_dict` tensor except `num_batches_tracked` and the unused `skip_layer`s is
    /// read exactly once.
    pub fn load(vb: VarBuilder, config: Config) -> CResult<Self> {
        config.validate()?;
        let f = config.features;
        let k = config.joints;
        let stem = Conv::with_bias_bn(
            &vb,
            "pre.0.conv",
            "pre.0.bn",
            (3, STEM_CHANNELS),
            7,
            2,
            true,
        )?;
        let r = STEM_RESIDUAL_CHANNELS;
        let pre = [
            Residual::load(&vb.pp("pre.1"), STEM_CHANNELS, r)?,
            Residual::load(&vb.pp("pre.3"), r, r)?,
            Residual::load(&vb.pp("pre.4"), r, f)?,
        ];
        let stacks = (0..config.stacks)
            .map(|i| {
                let merge = if i + 1 < config.stacks {
                    Some((
                        Conv::with_bias(&vb, &format!("merge_preds.{i}.conv.conv"), (k, f), 1)?,
                        Conv::with_bias(&vb, &format!("merge_features.{i}.conv.conv"), (f, f), 1)?,
                    ))
                } else {
                    None
                };
                let fvb = vb.pp(format!("features.{i}"));
                Ok(Stack {
                    hourglass: Hourglass::load(&vb.pp(format!("hgs.{i}.0")), config.depth, f)?,
                    residual: Residual::load(&fvb.pp("0"), f, f)?,
                    feature: Conv::with_bias_bn(&fvb, "1.conv", "1.bn", (f, f), 1, 1, true)?,
                    out: Conv::with_bias(&vb, &format!("outs.{i}.conv"), (f, k), 1)?,
                    merge,
                })
            })
            .collect::<CResult<Vec<_>>>()?;
        Ok(Self {
            config,
            stem,
            pre,
            stacks,
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
    pub fn forward(&self, x: &Tensor) -> CResult<StackedHourglassOutputs> {
        self.forward_steps(x, None)
    }

    /// [`StackedHourglass::forward`] with the wall time of each step: `pre`, then
    /// `stack0`, `stack1`, ….
    pub fn forward_profiled(
        &self,
        x: &Tensor,
    ) -> CResult<(StackedHourglassOutputs, Vec<StepTime>)> {
        let mut times = Vec::with_capacity(1 + self.stacks.len());
        let out = self.forward_steps(x, Some(&mut times))?;
        Ok((out, times))
    }

    fn forward_steps(
        &self,
        x: &Tensor,
        times: Option<&mut Vec<StepTime>>,
    ) -> CResult<StackedHourglassOutputs> {
        let x = crate::models::blocks::ops::image_batch(
            x,
            self.config.input_multiple(),
            "Stacked Hourglass",
        )?;
        let mut clock = StepClock::new(&self.device, times);
        let [pre1, pre3, pre4] = &self.pre;
        let h = pre1.forward(&self.stem.forward(&x)?)?.max_pool2d(2)?;
        let pre = pre4.forward(&pre3.forward(&h)?)?;
        clock.lap("pre")?;
        let mut x = pre.clone();
        let mut stacks = Vec::with_capacity(self.stacks.len());
        let mut inputs = Vec::with_capacity(self.stacks.len());
        let mut features = Vec::with_capacity(self.stacks.len());
        for (i, s) in self.stacks.iter().enumerate() {
            let hg = s.hourglass.forward(&x)?;
            let feature = s.feature.forward(&s.residual.forward(&hg)?)?;
            let preds = s.out.forward(&feature)?;
            inputs.push(x.clone());
            x = self.merge(i, &x, &preds, &feature)?;
            features.push(feature);
            stacks.push(preds);
            clock.lap(format!("stack{i}"))?;
        }
        Ok(StackedHourglassOutputs {
            stacks,
            pre,
            inputs,
            features,
        })
    }

    /// The input of stack `i + 1`: stack `i`'s input plus its merged predictions and
    /// features (`x` unchanged after the last stack).
    fn merge(&self, i: usize, x: &Tensor, preds: &Tensor, feature: &Tensor) -> CResult<Tensor> {
        match self.stacks.get(i).and_then(|s| s.merge.as_ref()) {
            Some((merge_preds, merge_features)) => {
                (x + merge_preds.forward(preds)?)? + merge_features.forward(feature)?
            }
            None => Ok(x.clone()),
        }
    }

    /// Stack `i`'s predictions and features on its input `x`.
    fn stack(&self, i: usize, x: &Tensor) -> CResult<(Tensor, Tensor)> {
        let Some(s) = self.stacks.get(i) else {
            candle_core::bail!("Stacked Hourglass: no stack {}", i + 1)
        };
        let hg = s.hourglass.forward(x)?;
        let feature = s.feature.forward(&s.residual.forward(&hg)?)?;
        Ok((s.out.forward(&feature)?, feature))
    }
}

fn stack_label(t: usize) -> String {
    format!("stack {}", t + 1)
}

/// Stack `t + 1` reads stack `t`'s input, its features and its predictions (merged by 1×1
/// convolutions): the context is each stack's input (`features`) and features
/// (`companions`); an edit replaces the predictions that are merged.
impl Resumable for StackedHourglass {
    fn run_keeping_context(
        &self,
        input: &Tensor,
        _options: &RunOptions,
    ) -> CResult<(RunOutput, StageContext)> {
        let (out, times) = self.forward_profiled(input)?;
        let mut context = StageContext::new(
            out.inputs,
            &out.stacks,
            crate::models::net::input_hw(input)?,
        );
        context.companions = out.features;
        let run = RunTensors::stages(numbered_stages(&out.stacks, stack_label), times).fetch()?;
        Ok((run, context))
    }

    fn resume_from(
        &self,
        context: &StageContext,
        edit: &StageEdit<'_>,
    ) -> CResult<Vec<StageOutput>> {
        let t = edit.stage;
        let x = context.feature(t)?;
        let preds = edited_input(context, edit, x.device())?;
        let Some(feature) = context.companions.get(t) else {
            candle_core::bail!("Stacked Hourglass: no features of stack {}", t + 1)
        };
        let mut x = self.merge(t, x, &preds, feature)?;
        let mut out = Vec::new();
        for i in t + 1..self.stacks.len() {
            let (preds, feature) = self.stack(i, &x)?;
            x = self.merge(i, &x, &preds, &feature)?;
            out.push(StageTensors::heatmaps(
                stack_label(i),
                format!("stage{}", i + 1),
                &preds,
            ));
        }
        // Every re-run stage in one device→host copy.
        Ok(RunTensors::stages(out, Vec::new()).fetch()?.stages)
    }
}

/// The princeton-vl Stacked Hourglass (PyTorch port names); the stack count from the
/// checkpoint.
pub static ARCHITECTURE: Architecture = Architecture {
    id: "stacked-hourglass",
    name: "Stacked Hourglass (top-down, one heatmap set per stack at 1/4)",
    top_down: true,
    flip_shifts_heatmap: false,
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
    let net = StackedHourglass::load(vb, config)?;
    let mut unused_keys = usage.unused_keys();
    // The `skip_layer`s exist in every Residual but are applied only where the width
    // changes; the unread ones are expected.
    unused_keys.retain(|k| !k.contains(".skip_layer."));
    Ok(Loaded {
        net: Box::new(net),
        unused_keys,
    })
}

impl PoseNet for StackedHourglass {
    /// One stage per stack (intermediate supervision): the stage slider steps through
    /// them; the last is the prediction.
    fn run(&self, input: &Tensor, _options: &RunOptions) -> CResult<RunOutput> {
        let (out, times) = self.forward_profiled(input)?;
        RunTensors::stages(numbered_stages(&out.stacks, stack_label), times).fetch()
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
        Ok(Some(self.forward(input)?.stacks))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::weights::posegen;

    #[test]
    fn small_network_runs_and_rejects_bad_sizes() {
        let dev = Device::Cpu;
        let (vb, rec) = posegen::var_builder(posegen::GAIN_HOURGLASS, &dev);
        let config = Config {
            stacks: 2,
            features: 8,
            joints: 3,
            depth: 2,
            input_size: (32, 48),
        };
        let net = StackedHourglass::load(vb, config).unwrap();
        // Only pre.1 and pre.4 read their skip layer.
        let skips: Vec<String> = rec
            .requests()
            .into_iter()
            .map(|(k, _)| k)
            .filter(|k| k.contains("skip_layer") && k.ends_with("weight"))
            .collect();
        assert_eq!(
            skips,
            [
                "pre.1.skip_layer.conv.weight",
                "pre.4.skip_layer.conv.weight"
            ]
        );
        let x = Tensor::zeros((1, 3, 32, 48), candle_core::DType::F32, &dev).unwrap();
        let (out, times) = net.forward_profiled(&x).unwrap();
        assert_eq!(out.stacks.len(), 2);
        assert_eq!(out.heatmaps().unwrap().dims(), &[1, 3, 8, 12]);
        assert_eq!(out.pre.dims(), &[1, 8, 8, 12]);
        assert_eq!(times.len(), 3);
        let bad = Tensor::zeros((1, 3, 32, 40), candle_core::DType::F32, &dev).unwrap();
        assert!(net.forward(&bad).is_err());
        assert_eq!(Config::mpii_8stack().input_multiple(), 64);
        // Re-running the later stacks from an edited stack's predictions.
        let ramp = Tensor::arange(0f32, (3 * 32 * 48) as f32, &dev)
            .unwrap()
            .affine(1.0 / 4608.0, -0.5)
            .unwrap()
            .sin()
            .unwrap()
            .reshape((1, 3, 32, 48))
            .unwrap();
        crate::models::net::resume_checks::reproduces_and_reacts(&net, &ramp);
    }
}
