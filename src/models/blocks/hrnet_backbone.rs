//! The HRNet backbone of Sun, Xiao, Liu, Wang, "Deep High-Resolution Representation
//! Learning for Human Pose Estimation", CVPR 2019, shared by the top-down HRNet
//! ([`crate::models::nets::hrnet`]) and HigherHRNet ([`crate::models::nets::higher_hrnet`]): the stem, `layer1`, the
//! transitions and the high-resolution stages, with the official parameter names
//! (`conv1`, `bn1`, `conv2`, `bn2`, `layer1.*`, `transition{1,2,3}.*`, `stage{2,3,4}.*`).
//! BatchNorm is folded into the preceding convolution at load time.

use candle_core::{Result as CResult, Tensor};
use candle_nn::VarBuilder;

use crate::kernels::bias_act;
use crate::models::blocks::folded::{Bottleneck, Conv, BOTTLENECK_EXPANSION};
use crate::models::StepClock;

/// Width of the stem convolutions (fixed in the official code).
pub const STEM_CHANNELS: usize = 64;
/// Bottleneck width of `layer1` (its output is 4× this, 256; fixed in the official code).
pub const LAYER1_PLANES: usize = 64;
/// The input sides must be multiples of this (the stride of the lowest branch).
pub const INPUT_MULTIPLE: usize = 32;

/// One HRNet stage (`MODEL.EXTRA.STAGE{2,3,4}`), made of BasicBlocks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageConfig {
    /// `NUM_MODULES`: high-resolution modules in a row.
    pub modules: usize,
    /// `NUM_BLOCKS`: BasicBlocks per branch (the same for every branch).
    pub blocks: usize,
    /// `NUM_CHANNELS`: width of each branch, highest resolution first.
    pub channels: Vec<usize>,
}

/// HRNet's BasicBlock: `ReLU(bn2(conv2(ReLU(bn1(conv1(x))))) + x)` (3×3 convs, no
/// downsample: every block here keeps its width).
#[derive(Clone, Debug)]
pub(crate) struct BasicBlock {
    conv1: Conv,
    conv2: Conv,
}

impl BasicBlock {
    pub(crate) fn load(vb: &VarBuilder, channels: usize) -> CResult<Self> {
        let c = (channels, channels);
        Ok(Self {
            conv1: Conv::with_bn(vb, "conv1", "bn1", c, 3, 1, true)?,
            conv2: Conv::with_bn(vb, "conv2", "bn2", c, 3, 1, false)?,
        })
    }

    pub(crate) fn forward(&self, x: &Tensor) -> CResult<Tensor> {
        let y = self.conv2.forward(&self.conv1.forward(x)?)?;
        bias_act::add_relu(y, x)
    }
}

/// One entry of a transition layer.
#[derive(Clone, Debug)]
pub(crate) enum Transition {
    /// The branch passes through unchanged.
    Keep,
    /// An existing branch changes width (3×3 s1 conv + BN + ReLU on the same branch).
    Reshape(Conv),
    /// A new branch: 3×3 s2 convs (+ BN + ReLU) from the previous stage's lowest branch.
    New(Vec<Conv>),
}

pub(crate) fn load_transition(
    vb: &VarBuilder,
    pre: &[usize],
    cur: &[usize],
) -> CResult<Vec<Transition>> {
    let last = pre.last().copied().unwrap_or(0);
    cur.iter()
        .enumerate()
        .map(|(i, &c)| {
            let vb = vb.pp(i.to_string());
            match pre.get(i) {
                Some(&p) if p == c => Ok(Transition::Keep),
                Some(&p) => Ok(Transition::Reshape(Conv::with_bn(
                    &vb,
                    "0",
                    "1",
                    (p, c),
                    3,
                    1,
                    true,
                )?)),
                None => {
                    let steps = i + 1 - pre.len();
                    (0..steps)
                        .map(|j| {
                            let out = if j + 1 == steps { c } else { last };
                            let vb = vb.pp(j.to_string());
                            Conv::with_bn(&vb, "0", "1", (last, out), 3, 2, true)
                        })
                        .collect::<CResult<Vec<_>>>()
                        .map(Transition::New)
                }
            }
        })
        .collect()
}

pub(crate) fn transition_forward(transition: &[Transition], xs: &[Tensor]) -> CResult<Vec<Tensor>> {
    let Some(lowest) = xs.last() else {
        candle_core::bail!("HRNet: a transition got no branches");
    };
    transition
        .iter()
        .enumerate()
        .map(|(i, t)| match t {
            Transition::Keep => xs
                .get(i)
                .cloned()
                .ok_or_else(|| candle_core::Error::Msg(format!("no branch {i}"))),
            Transition::Reshape(conv) => match xs.get(i) {
                Some(x) => conv.forward(x),
                None => candle_core::bail!("no branch {i}"),
            },
            Transition::New(convs) => convs.iter().try_fold(lowest.clone(), |h, c| c.forward(&h)),
        })
        .collect()
}

/// How branch `j` reaches output `i` in a fuse layer.
#[derive(Clone, Debug)]
pub(crate) enum Fuse {
    /// `i == j`.
    Identity,
    /// `j > i`: 1×1 conv + BN, then nearest up-sampling by `factor`.
    Up { conv: Conv, factor: usize },
    /// `j < i`: `i − j` 3×3 s2 convs + BN (ReLU on all but the last).
    Down(Vec<Conv>),
}

impl Fuse {
    pub(crate) fn forward(&self, x: &Tensor) -> CResult<Tensor> {
        match self {
            Fuse::Identity => Ok(x.clone()),
            Fuse::Up { conv, factor } => {
                let (_, _, h, w) = x.dims4()?;
                conv.forward(x)?.upsample_nearest2d(h * factor, w * factor)
            }
            Fuse::Down(convs) => convs.iter().try_fold(x.clone(), |h, c| c.forward(&h)),
        }
    }
}

/// `relu(Σ_j fuse_j(y_j))`, summed in place into the first freshly computed term (the
/// identity term is never written to; up-sampled terms are added without materialising
/// them).
fn fuse_sum(row: &[Fuse], ys: &[Tensor]) -> CResult<Tensor> {
    let mut acc: Option<Tensor> = None;
    let mut identity: Option<&Tensor> = None;
    let add = |acc: Option<Tensor>, t: Tensor, factor: usize| -> CResult<Tensor> {
        match acc {
            Some(a) => bias_act::add_upsampled(a, &t, factor, false),
            None if factor > 1 => bias_act::upsampled(&t, factor),
            None => Ok(t),
        }
    };
    for (f, y) in row.iter().zip(ys) {
        acc = Some(match f {
            Fuse::Identity => {
                identity = Some(y);
                continue;
            }
            Fuse::Up { conv, factor } => add(acc, conv.forward(y)?, *factor)?,
            Fuse::Down(_) => add(acc, f.forward(y)?, 1)?,
        });
    }
    match (acc, identity) {
        (Some(a), Some(x)) => bias_act::add_relu(a, x),
        (Some(a), None) => bias_act::bias_act(a, None, bias_act::Act::Relu),
        (None, Some(x)) => x.relu(),
        (None, None) => candle_core::bail!("HRNet: an empty fuse layer"),
    }
}

/// One high-resolution module: parallel branches of BasicBlocks, then the fuse layers.
#[derive(Clone, Debug)]
pub(crate) struct HrModule {
    branches: Vec<Vec<BasicBlock>>,
    /// `fuse[i][j]`; empty for a single branch.
    fuse: Vec<Vec<Fuse>>,
}

impl HrModule {
    pub(crate) fn load(
        vb: &VarBuilder,
        channels: &[usize],
        blocks: usize,
        multi_scale_output: bool,
    ) -> CResult<Self> {
        let branches = channels
            .iter()
            .enumerate()
            .map(|(b, &c)| {
                (0..blocks)
                    .map(|k| BasicBlock::load(&vb.pp(format!("branches.{b}.{k}")), c))
                    .collect::<CResult<Vec<_>>>()
            })
            .collect::<CResult<Vec<_>>>()?;
        let n = channels.len();
        let outputs = if n == 1 {
            0
        } else if multi_scale_output {
            n
        } else {
            1
        };
        let mut fuse = Vec::with_capacity(outputs);
        for (i, &ci) in channels.iter().enumerate().take(outputs) {
            let mut row = Vec::with_capacity(n);
            for (j, &cj) in channels.iter().enumerate() {
                let vb = vb.pp(format!("fuse_layers.{i}.{j}"));
                row.push(if j == i {
                    Fuse::Identity
                } else if j > i {
                    Fuse::Up {
                        conv: Conv::with_bn(&vb, "0", "1", (cj, ci), 1, 1, false)?,
                        factor: 1 << (j - i),
                    }
                } else {
                    let steps = i - j;
                    Fuse::Down(
                        (0..steps)
                            .map(|k| {
                                let last = k + 1 == steps;
                                let out = if last { ci } else { cj };
                                let vb = vb.pp(k.to_string());
                                Conv::with_bn(&vb, "0", "1", (cj, out), 3, 2, !last)
                            })
                            .collect::<CResult<Vec<_>>>()?,
                    )
                });
            }
            fuse.push(row);
        }
        Ok(Self { branches, fuse })
    }

    /// The branch outputs before the fuse layers, and the module's outputs after them.
    pub(crate) fn forward_parts(&self, xs: &[Tensor]) -> CResult<(Vec<Tensor>, Vec<Tensor>)> {
        if xs.len() != self.branches.len() {
            candle_core::bail!(
                "HRNet: a module with {} branches got {} inputs",
                self.branches.len(),
                xs.len()
            );
        }
        let ys = self
            .branches
            .iter()
            .zip(xs)
            .map(|(blocks, x)| blocks.iter().try_fold(x.clone(), |h, b| b.forward(&h)))
            .collect::<CResult<Vec<_>>>()?;
        if self.fuse.is_empty() {
            return Ok((ys.clone(), ys));
        }
        let fused = self
            .fuse
            .iter()
            .map(|row| fuse_sum(row, &ys))
            .collect::<CResult<Vec<_>>>()?;
        Ok((ys, fused))
    }
}

/// Everything the backbone computes that a caller may want to see, `[N, C, H, W]`.
#[derive(Clone, Debug)]
pub(crate) struct BackboneOutputs {
    /// The stem's second BatchNorm, before its ReLU (64 ch, `H/4`).
    pub bn2: Tensor,
    /// `layer1` (256 ch, `H/4`).
    pub layer1: Tensor,
    /// The outputs of stages 2, 3, 4 (after fuse and ReLU), highest resolution first.
    pub stages: [Vec<Tensor>; 3],
    /// Each branch of the last module of the last stage after its BasicBlocks, before the
    /// fuse layers, highest resolution first.
    pub last_branches: Vec<Tensor>,
}

/// Stem, `layer1`, transitions and stages 2–4, loaded from the official names.
#[derive(Clone, Debug)]
pub(crate) struct Backbone {
    conv1: Conv,
    conv2: Conv,
    layer1: Vec<Bottleneck>,
    /// `transition1..3`.
    transitions: Vec<Vec<Transition>>,
    /// `stage2..4`, each a list of modules.
    stages: Vec<Vec<HrModule>>,
}

impl Backbone {
    /// Loads the backbone; the last module of the last stage keeps only the
    /// highest-resolution output (`multi_scale_output=False`), as in both official models.
    pub(crate) fn load(
        vb: &VarBuilder,
        layer1_blocks: usize,
        stages_cfg: &[StageConfig; 3],
    ) -> CResult<Self> {
        let conv1 = Conv::with_bn(vb, "conv1", "bn1", (3, STEM_CHANNELS), 3, 2, true)?;
        // The ReLU after bn2 is applied in `forward`, which also reports the pre-ReLU value.
        let conv2 = Conv::with_bn(
            vb,
            "conv2",
            "bn2",
            (STEM_CHANNELS, STEM_CHANNELS),
            3,
            2,
            false,
        )?;
        let mut cin = STEM_CHANNELS;
        let mut layer1 = Vec::with_capacity(layer1_blocks);
        for b in 0..layer1_blocks {
            layer1.push(Bottleneck::load(
                &vb.pp(format!("layer1.{b}")),
                cin,
                LAYER1_PLANES,
                1,
                1,
            )?);
            cin = LAYER1_PLANES * BOTTLENECK_EXPANSION;
        }
        let mut pre = vec![cin];
        let mut transitions = Vec::with_capacity(3);
        let mut stages = Vec::with_capacity(3);
        for (si, stage) in stages_cfg.iter().enumerate() {
            transitions.push(load_transition(
                &vb.pp(format!("transition{}", si + 1)),
                &pre,
                &stage.channels,
            )?);
            let last_stage = si + 1 == stages_cfg.len();
            let modules = (0..stage.modules)
                .map(|m| {
                    let multi = !(last_stage && m + 1 == stage.modules);
                    HrModule::load(
                        &vb.pp(format!("stage{}.{m}", si + 2)),
                        &stage.channels,
                        stage.blocks,
                        multi,
                    )
                })
                .collect::<CResult<Vec<_>>>()?;
            stages.push(modules);
            pre.clone_from(&stage.channels);
        }
        Ok(Self {
            conv1,
            conv2,
            layer1,
            transitions,
            stages,
        })
    }

    /// Runs the backbone on `x` (`[N, 3, H, W]`, f32), with clock laps `stem`, `layer1`,
    /// `stage2`, `stage3`, `stage4` (each stage with its transition).
    pub(crate) fn forward(&self, x: &Tensor, clock: &mut StepClock) -> CResult<BackboneOutputs> {
        let bn2 = self.conv2.forward(&self.conv1.forward(x)?)?;
        clock.lap("stem")?;
        let layer1 = self
            .layer1
            .iter()
            .try_fold(bn2.relu()?, |h, b| b.forward(&h))?;
        clock.lap("layer1")?;

        let mut ys = vec![layer1.clone()];
        let mut per_stage = Vec::with_capacity(3);
        let mut last_branches = Vec::new();
        for (si, (transition, modules)) in self.transitions.iter().zip(&self.stages).enumerate() {
            ys = transition_forward(transition, &ys)?;
            for module in modules {
                let (branches, fused) = module.forward_parts(&ys)?;
                last_branches = branches;
                ys = fused;
            }
            per_stage.push(ys.clone());
            clock.lap(format!("stage{}", si + 2))?;
        }
        let stages: [Vec<Tensor>; 3] = per_stage
            .try_into()
            .map_err(|_| candle_core::Error::Msg("HRNet: not three stages".into()))?;
        Ok(BackboneOutputs {
            bn2,
            layer1,
            stages,
            last_branches,
        })
    }
}
