//! Convolutional Pose Machines: Wei, Ramakrishna, Kanade, Sheikh, "Convolutional Pose
//! Machines", CVPR 2016. Single-person: the input is a person-centred crop and a Gaussian
//! centre map; every stage outputs `joints + 1` belief maps (stride 8) and stage `t ≥ 2`
//! refines the beliefs of stage `t − 1` from image features and the pooled centre map.
//!
//! Two official models, chosen by [`Config`]:
//!
//! - [`Config::lsp`]: the LSP model of the paper as in the official PyTorch port
//!   `namedBen/Convolutional-Pose-Machines-Pytorch` @ 540d161 (`cpm_model.py`, `CPM(k=14)`).
//!   Stage 1: `conv1..3_stage1` (9×9, 128, ReLU, each followed by MaxPool2d(3, 2, pad 1)),
//!   `conv4_stage1` (5×5, 32), `conv5_stage1` (9×9, 512), `conv6_stage1` (1×1, 512),
//!   `conv7_stage1` (1×1, k+1, no ReLU). Stages ≥ 2 share one image trunk
//!   `conv1..3_stage2` + pools (`pool3_stage2`, 128 channels); stage 2 applies
//!   `conv4_stage2` and stage `t ≥ 3` applies `conv1_stage{t}` (5×5, 32) to it, then reads
//!   `cat(those 32 features, beliefs of stage t−1, pool_center)` (48 channels) into
//!   `Mconv1..3_stage{t}` (11×11, 128), `Mconv4` (1×1, 128), `Mconv5` (1×1, k+1, no ReLU).
//!   `pool_center` = AvgPool2d(9, stride 8, pad 1, count_include_pad) of the centre map.
//!   Max pools pad with −inf; PyTorch floors the output size.
//! - [`Config::mpii`]: the MPII model of the original Caffe release
//!   `shihenw/convolutional-pose-machines-release` (`model/_trained_MPI/`,
//!   `pose_deploy_centerMap.prototxt`, weights `pose_iter_630000` / `pose_iter_985000_addLEEDS`).
//!   A VGG-19-like trunk `conv1_1 … conv4_2` (3×3, pad 1, ReLU; 2×2 s2 max pools
//!   `pool1..3_stage1`), then `conv4_3_CPM … conv4_6_CPM` (3×3, 256), `conv4_7_CPM`
//!   (3×3, 128): the features every stage reads. Stage 1 is `conv5_1_CPM` (1×1, 512, ReLU),
//!   `conv5_2_CPM` (1×1, 15, no ReLU); stage `t ≥ 2` reads
//!   `cat(beliefs of stage t−1, conv4_7_CPM, pool_center_lower)` (144 channels) into
//!   `Mconv1..5_stage{t}` (7×7, pad 3, 128, ReLU), `Mconv6` (1×1, 128, ReLU), `Mconv7`
//!   (1×1, 15, no ReLU). `pool_center_lower` = Caffe AVE pooling 9, stride 8, no pad. Caffe
//!   pools round the output size up and average over the cells inside the input.
//!   The layer list was checked against `pose_deploy_resize.prototxt` of the same folder
//!   (the index holds that file; it has the same 6-stage layer list and concat order).
//!
//! Parameter names are the checkpoint keys: `{layer}.weight` (`[O, I, K, K]`) and
//! `{layer}.bias` (`[O]`), read through a `candle_nn::VarBuilder`.
//!
//! Input: the image `[N, 3, H, W]` in B,G,R order with `x = (u8 − 128) / 256`, and the centre
//! map `[N, 1, H, W]` ([`center_map`]). The official size is 368 × 368 (maps 46 × 46).

use candle_core::{DType, Device, Result as CResult, Tensor};
use candle_nn::VarBuilder;

use crate::kernels::bias_act::{Act, Bias};
use crate::kernels::winograd::{self, WinogradWeight};
use crate::models::blocks::ops::pad_hw;
use crate::models::info::{Architecture, Loaded, Loader};
use crate::models::net::{
    input_hw, numbered_stages, square_fields, stage_label, PoseNet, Resumable, RunOptions,
    RunOutput, RunTensors,
};
use crate::models::receptive::{ReceptiveField, RfLayer};
use crate::models::{Background, ModelInfo, StepClock, StepTime};
use crate::weights::TensorStore;

/// Which official model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// The LSP model (PyTorch port of the paper's network).
    Lsp,
    /// The MPII model of the Caffe release (VGG trunk).
    Mpii,
}

/// How a pooling layer rounds its output size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolRounding {
    /// PyTorch: `floor((H + 2p − k) / s) + 1`; an average counts the zero padding.
    Floor,
    /// Caffe: `ceil((H + 2p − k) / s) + 1` (minus one if the last window would start past
    /// `H + p`); an average divides by the window's cells inside `[−p, H + p)`.
    Ceil,
}

/// What one layer does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerKind {
    /// Stride-1 convolution with bias, `out` channels, square `kernel`, zero `pad`.
    Conv {
        out: usize,
        kernel: usize,
        pad: usize,
        relu: bool,
    },
    /// Max pooling; padding never wins.
    MaxPool {
        kernel: usize,
        stride: usize,
        pad: usize,
        rounding: PoolRounding,
    },
    /// Average pooling.
    AvgPool {
        kernel: usize,
        stride: usize,
        pad: usize,
        rounding: PoolRounding,
    },
}

/// One named layer of the description the network is built from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerSpec {
    /// The layer's name (its parameters are `{name}.weight` / `{name}.bias`).
    pub name: String,
    pub kind: LayerKind,
}

impl LayerSpec {
    fn conv(name: impl Into<String>, out: usize, kernel: usize, relu: bool) -> Self {
        Self {
            name: name.into(),
            kind: LayerKind::Conv {
                out,
                kernel,
                pad: kernel / 2,
                relu,
            },
        }
    }

    fn max_pool(
        name: impl Into<String>,
        kernel: usize,
        stride: usize,
        pad: usize,
        rounding: PoolRounding,
    ) -> Self {
        Self {
            name: name.into(),
            kind: LayerKind::MaxPool {
                kernel,
                stride,
                pad,
                rounding,
            },
        }
    }

    /// The layer as a receptive-field step.
    pub fn rf_layer(&self) -> RfLayer {
        match self.kind {
            LayerKind::Conv { kernel, pad, .. } => RfLayer::window(&self.name, kernel, 1, 1, pad),
            LayerKind::MaxPool {
                kernel,
                stride,
                pad,
                ..
            }
            | LayerKind::AvgPool {
                kernel,
                stride,
                pad,
                ..
            } => RfLayer::window(&self.name, kernel, stride, 1, pad),
        }
    }
}

/// One of the three inputs concatenated (along channels) before a later stage's head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The image features after the stage's own `pre` layers.
    Features,
    /// The previous stage's beliefs.
    Beliefs,
    /// The pooled centre map.
    Center,
}

/// Where the image features of stages ≥ 2 come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FeatureSource {
    /// The output of the stage-1 layer with this name (a trunk shared with stage 1).
    Stage1Layer(String),
    /// A separate trunk run on the image.
    Trunk(Vec<LayerSpec>),
}

/// A stage `t ≥ 2`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaterStage {
    /// Layers applied to the shared features before the concatenation.
    pub pre: Vec<LayerSpec>,
    /// Concatenation order.
    pub concat: [Part; 3],
    /// Layers from the concatenation to the stage's beliefs.
    pub head: Vec<LayerSpec>,
}

/// A configuration's complete layer list: the network and its receptive-field chains use it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Pools the centre map to the belief resolution.
    pub center_pool: LayerSpec,
    /// Image → stage-1 beliefs.
    pub stage1: Vec<LayerSpec>,
    /// The stage-1 layer whose output is reported as [`Output::pool3_stage1`].
    pub pool3_stage1: String,
    pub features: FeatureSource,
    /// Stages 2, 3, … in order.
    pub later: Vec<LaterStage>,
}

/// A CPM configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub variant: Variant,
    /// Number of joints; every stage outputs `joints + 1` maps.
    pub joints: usize,
    pub stages: usize,
    /// The side of the square input the model was trained at.
    pub input_size: usize,
    /// The centre map's Gaussian sigma (pixels) used by the official test code.
    pub center_sigma: f64,
}

impl Config {
    /// The official LSP model (`CPM(k=14)`, 6 stages, 368 × 368, centre sigma 3 as in
    /// `cpm_test.py`). Channel 0 of every stage is the background, 1–14 the LSP joints.
    pub fn lsp() -> Self {
        Self {
            variant: Variant::Lsp,
            joints: 14,
            stages: 6,
            input_size: 368,
            center_sigma: 3.0,
        }
    }

    /// The official Caffe MPII model (6 stages, 368 × 368, 14 joints then the background
    /// at channel 14). The release's MATLAB test code (`testing/src/applyModel.m`,
    /// `produceCenterLabelMap`) builds the centre map with sigma 21 on a 1-based grid, centred
    /// at `boxsize / 2` (1-based, i.e. pixel 183 here), and neither clamps nor thresholds it:
    /// [`center_map`] with `cx = cy = 183.0`, `sigma = 21` differs only by that threshold.
    pub fn mpii() -> Self {
        Self {
            variant: Variant::Mpii,
            joints: 14,
            stages: 6,
            input_size: 368,
            center_sigma: 21.0,
        }
    }

    /// Maps per stage.
    pub fn output_channels(&self) -> usize {
        self.joints + 1
    }

    /// The layer description of this configuration.
    pub fn layout(&self) -> Layout {
        let k = self.output_channels();
        match self.variant {
            Variant::Lsp => {
                let pool = |name: String| LayerSpec::max_pool(name, 3, 2, 1, PoolRounding::Floor);
                let trunk = |s: usize| -> Vec<LayerSpec> {
                    (1..=3)
                        .flat_map(|i| {
                            [
                                LayerSpec::conv(format!("conv{i}_stage{s}"), 128, 9, true),
                                pool(format!("pool{i}_stage{s}")),
                            ]
                        })
                        .collect()
                };
                let mut stage1 = trunk(1);
                stage1.extend([
                    LayerSpec::conv("conv4_stage1", 32, 5, true),
                    LayerSpec::conv("conv5_stage1", 512, 9, true),
                    LayerSpec::conv("conv6_stage1", 512, 1, true),
                    LayerSpec::conv("conv7_stage1", k, 1, false),
                ]);
                let later = (2..=self.stages)
                    .map(|t| LaterStage {
                        pre: vec![LayerSpec::conv(
                            if t == 2 {
                                "conv4_stage2".to_string()
                            } else {
                                format!("conv1_stage{t}")
                            },
                            32,
                            5,
                            true,
                        )],
                        concat: [Part::Features, Part::Beliefs, Part::Center],
                        head: vec![
                            LayerSpec::conv(format!("Mconv1_stage{t}"), 128, 11, true),
                            LayerSpec::conv(format!("Mconv2_stage{t}"), 128, 11, true),
                            LayerSpec::conv(format!("Mconv3_stage{t}"), 128, 11, true),
                            LayerSpec::conv(format!("Mconv4_stage{t}"), 128, 1, true),
                            LayerSpec::conv(format!("Mconv5_stage{t}"), k, 1, false),
                        ],
                    })
                    .collect();
                Layout {
                    center_pool: LayerSpec {
                        name: "pool_center".into(),
                        kind: LayerKind::AvgPool {
                            kernel: 9,
                            stride: 8,
                            pad: 1,
                            rounding: PoolRounding::Floor,
                        },
                    },
                    stage1,
                    pool3_stage1: "pool3_stage1".into(),
                    features: FeatureSource::Trunk(trunk(2)),
                    later,
                }
            }
            Variant::Mpii => {
                let pool = |i: usize| {
                    LayerSpec::max_pool(format!("pool{i}_stage1"), 2, 2, 0, PoolRounding::Ceil)
                };
                let c = |name: &str, out: usize| LayerSpec::conv(name, out, 3, true);
                let stage1 = vec![
                    c("conv1_1", 64),
                    c("conv1_2", 64),
                    pool(1),
                    c("conv2_1", 128),
                    c("conv2_2", 128),
                    pool(2),
                    c("conv3_1", 256),
                    c("conv3_2", 256),
                    c("conv3_3", 256),
                    c("conv3_4", 256),
                    pool(3),
                    c("conv4_1", 512),
                    c("conv4_2", 512),
                    c("conv4_3_CPM", 256),
                    c("conv4_4_CPM", 256),
                    c("conv4_5_CPM", 256),
                    c("conv4_6_CPM", 256),
                    c("conv4_7_CPM", 128),
                    LayerSpec::conv("conv5_1_CPM", 512, 1, true),
                    LayerSpec::conv("conv5_2_CPM", k, 1, false),
                ];
                let later = (2..=self.stages)
                    .map(|t| {
                        let mut head: Vec<LayerSpec> = (1..=5)
                            .map(|i| LayerSpec::conv(format!("Mconv{i}_stage{t}"), 128, 7, true))
                            .collect();
                        head.push(LayerSpec::conv(format!("Mconv6_stage{t}"), 128, 1, true));
                        head.push(LayerSpec::conv(format!("Mconv7_stage{t}"), k, 1, false));
                        LaterStage {
                            pre: Vec::new(),
                            concat: [Part::Beliefs, Part::Features, Part::Center],
                            head,
                        }
                    })
                    .collect();
                Layout {
                    center_pool: LayerSpec {
                        name: "pool_center_lower".into(),
                        kind: LayerKind::AvgPool {
                            kernel: 9,
                            stride: 8,
                            pad: 0,
                            rounding: PoolRounding::Ceil,
                        },
                    },
                    stage1,
                    pool3_stage1: "pool3_stage1".into(),
                    features: FeatureSource::Stage1Layer("conv4_7_CPM".into()),
                    later,
                }
            }
        }
    }

    /// The longest chain of spatial layers from the image to the maps of `stage`
    /// (1-based), from [`Config::layout`]. At a concatenation the path with the largest
    /// receptive field is kept (for these models, the path through every earlier stage).
    /// Empty when `stage` is 0 or past the last stage.
    pub fn receptive_chain(&self, stage: usize) -> Vec<RfLayer> {
        let layout = self.layout();
        if stage == 0 || stage > self.stages {
            return Vec::new();
        }
        let rf = |specs: &[LayerSpec]| -> Vec<RfLayer> {
            specs.iter().map(LayerSpec::rf_layer).collect()
        };
        let mut chain = rf(&layout.stage1);
        let features: Vec<RfLayer> = match &layout.features {
            FeatureSource::Trunk(specs) => rf(specs),
            FeatureSource::Stage1Layer(name) => {
                let end = layout
                    .stage1
                    .iter()
                    .position(|s| &s.name == name)
                    .map_or(layout.stage1.len(), |i| i + 1);
                rf(layout.stage1.get(..end).unwrap_or(&layout.stage1))
            }
        };
        for st in layout.later.iter().take(stage - 1) {
            let head = rf(&st.head);
            let mut from_features = features.clone();
            from_features.extend(rf(&st.pre));
            let candidates = [
                chain.clone(),
                from_features,
                vec![layout.center_pool.rf_layer()],
            ];
            let best = candidates
                .into_iter()
                .fold(None::<(f64, Vec<RfLayer>)>, |best, c| {
                    let size = ReceptiveField::of_chain(&c).size;
                    match best {
                        Some((s, b)) if s >= size => Some((s, b)),
                        _ => Some((size, c)),
                    }
                })
                .map(|(_, c)| c)
                .unwrap_or_default();
            chain = best;
            chain.extend(head);
        }
        chain
    }
}

/// The centre map of `cpm_test.py`, `[height * width]` row-major: in f64,
/// `exp(−((x − cx)² + (y − cy)²) / 2 / σ / σ)` at integer pixel `(x, y)`; values above 1
/// become 1 and values below 0.0099 become 0; then cast to f32.
pub fn center_map(width: usize, height: usize, cx: f64, cy: f64, sigma: f64) -> Vec<f32> {
    let mut out = Vec::with_capacity(width * height);
    for y in 0..height {
        for x in 0..width {
            let d2 = (x as f64 - cx).powi(2) + (y as f64 - cy).powi(2);
            let mut v = (-(d2 / 2.0 / sigma / sigma)).exp();
            if v > 1.0 {
                v = 1.0;
            }
            if v < 0.0099 {
                v = 0.0;
            }
            out.push(v as f32);
        }
    }
    out
}

/// [`center_map`] as a `[1, 1, height, width]` tensor.
pub fn center_map_tensor(
    width: usize,
    height: usize,
    cx: f64,
    cy: f64,
    sigma: f64,
    device: &Device,
) -> CResult<Tensor> {
    crate::device::upload(
        center_map(width, height, cx, cy, sigma),
        (1, 1, height, width),
        device,
    )
}

/// The last centre map a network uploaded, reused while the input size, the centre and σ
/// stay the same: a video or a camera with the default centre uploads it once, not once per
/// frame. A clone starts empty.
#[derive(Debug, Default)]
pub struct CenterCache(std::sync::Mutex<Option<(CenterKey, Tensor)>>);

type CenterKey = (usize, usize, u64, u64, u64);

impl Clone for CenterCache {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl CenterCache {
    /// [`center_map_tensor`], uploaded only when it differs from the last one.
    pub fn get(
        &self,
        width: usize,
        height: usize,
        (cx, cy): (f64, f64),
        sigma: f64,
        device: &Device,
    ) -> CResult<Tensor> {
        let key = (width, height, cx.to_bits(), cy.to_bits(), sigma.to_bits());
        // A panic while holding the lock leaves at worst no or an old, whole entry.
        let mut last = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((k, t)) = last.as_ref() {
            if *k == key && t.device().same_device(device) {
                return Ok(t.clone());
            }
        }
        let t = center_map_tensor(width, height, cx, cy, sigma, device)?;
        *last = Some((key, t.clone()));
        Ok(t)
    }
}

/// Every stage's beliefs and the intermediates the fixtures check.
#[derive(Clone, Debug)]
pub struct Output {
    /// `[N, joints + 1, H/8, W/8]` per stage, stage 1 first (LSP: `conv7_stage1`,
    /// `Mconv5_stage2..`; MPII: `conv5_2_CPM`, `Mconv7_stage2..`).
    pub stages: Vec<Tensor>,
    /// The pooled centre map `[N, 1, H/8, W/8]` (LSP `pool_center`, MPII
    /// `pool_center_lower`).
    pub pool_center: Tensor,
    /// The output of layer `pool3_stage1` (LSP: `[N, 128, H/8, W/8]`; MPII: the third VGG
    /// pool, `[N, 256, H/8, W/8]`).
    pub pool3_stage1: Tensor,
    /// The image features every stage ≥ 2 reads: LSP `pool3_stage2` `[N, 128, H/8, W/8]`;
    /// MPII (which has no `pool3_stage2`) `conv4_7_CPM`, `[N, 128, H/8, W/8]`.
    pub pool3_stage2: Tensor,
}

#[derive(Clone, Debug)]
struct Conv {
    /// The weight, and its Winograd transform once built on the CPU.
    weight: WinogradWeight,
    bias: Bias,
    pad: usize,
    relu: bool,
}

impl Conv {
    fn load(
        vb: &VarBuilder,
        name: &str,
        cin: usize,
        out: usize,
        kernel: usize,
        pad: usize,
        relu: bool,
    ) -> CResult<Self> {
        let vb = vb.pp(name);
        let weight = vb.get((out, cin, kernel, kernel), "weight")?;
        let bias = Bias::new(&vb.get(out, "bias")?)?;
        Ok(Self {
            weight: WinogradWeight::new(weight)?,
            bias,
            pad,
            relu,
        })
    }

    fn forward(&self, x: &Tensor) -> CResult<Tensor> {
        let act = if self.relu { Act::Relu } else { Act::None };
        winograd::conv2d_auto(x, &self.weight, (1, self.pad), &self.bias, act)
    }
}

/// Output size and the extra bottom/right cells a pooling layer reads past `size + pad`.
fn pool_geometry(
    size: usize,
    kernel: usize,
    stride: usize,
    pad: usize,
    rounding: PoolRounding,
) -> CResult<(usize, usize)> {
    let padded = size + 2 * pad;
    if padded < kernel {
        candle_core::bail!("pooling window {kernel} is larger than the padded input {padded}");
    }
    let s = stride.max(1);
    let out = match rounding {
        PoolRounding::Floor => (padded - kernel) / s + 1,
        PoolRounding::Ceil => {
            let mut out = (padded - kernel).div_ceil(s) + 1;
            if pad > 0 && (out - 1) * s >= size + pad {
                out -= 1;
            }
            out
        }
    };
    let extra = ((out - 1) * s + kernel).saturating_sub(padded);
    Ok((out, extra))
}

fn pool(x: &Tensor, kind: LayerKind) -> CResult<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    match kind {
        LayerKind::MaxPool {
            kernel,
            stride,
            pad,
            rounding,
        } => {
            let (_, eh) = pool_geometry(h, kernel, stride, pad, rounding)?;
            let (_, ew) = pool_geometry(w, kernel, stride, pad, rounding)?;
            pad_hw(x, (pad, pad + eh), (pad, pad + ew), f32::NEG_INFINITY)?
                .max_pool2d_with_stride(kernel, stride)
        }
        LayerKind::AvgPool {
            kernel,
            stride,
            pad,
            rounding,
        } => {
            let (_, eh) = pool_geometry(h, kernel, stride, pad, rounding)?;
            let (_, ew) = pool_geometry(w, kernel, stride, pad, rounding)?;
            let sum = pad_hw(x, (pad, pad + eh), (pad, pad + ew), 0.0)?
                .avg_pool2d_with_stride(kernel, stride)?;
            if eh == 0 && ew == 0 {
                return Ok(sum);
            }
            // Caffe divides by the window's cells inside [−pad, size + pad).
            let ones = Tensor::ones((1, 1, h + 2 * pad, w + 2 * pad), x.dtype(), x.device())?;
            let count =
                pad_hw(&ones, (0, eh), (0, ew), 0.0)?.avg_pool2d_with_stride(kernel, stride)?;
            sum.broadcast_div(&count)
        }
        LayerKind::Conv { .. } => candle_core::bail!("pool called on a convolution"),
    }
}

#[derive(Clone, Debug)]
enum Op {
    Conv(Conv),
    Pool(LayerKind),
}

/// A built sequence of layers.
#[derive(Clone, Debug)]
struct Seq {
    layers: Vec<(String, Op)>,
}

impl Seq {
    /// Builds `specs` for an input with `cin` channels; returns the sequence and its output
    /// channels.
    fn load(vb: &VarBuilder, specs: &[LayerSpec], mut cin: usize) -> CResult<(Self, usize)> {
        let mut layers = Vec::with_capacity(specs.len());
        for spec in specs {
            let op = match spec.kind {
                LayerKind::Conv {
                    out,
                    kernel,
                    pad,
                    relu,
                } => {
                    let conv = Conv::load(vb, &spec.name, cin, out, kernel, pad, relu)
                        .map_err(|e| e.context(format!("CPM layer '{}'", spec.name)))?;
                    cin = out;
                    Op::Conv(conv)
                }
                kind => Op::Pool(kind),
            };
            layers.push((spec.name.clone(), op));
        }
        Ok((Self { layers }, cin))
    }

    /// Runs the sequence; also returns the output of layer `tap` if it is in it.
    fn forward(&self, x: &Tensor, tap: Option<&str>) -> CResult<(Tensor, Option<Tensor>)> {
        let mut h = x.clone();
        let mut tapped = None;
        for (name, op) in &self.layers {
            h = match op {
                Op::Conv(c) => c.forward(&h)?,
                Op::Pool(kind) => pool(&h, *kind)?,
            };
            if tap == Some(name.as_str()) {
                tapped = Some(h.clone());
            }
        }
        Ok((h, tapped))
    }
}

#[derive(Clone, Debug)]
enum Features {
    Stage1Layer(String),
    Trunk(Seq),
}

#[derive(Clone, Debug)]
struct Stage {
    pre: Seq,
    concat: [Part; 3],
    head: Seq,
}

/// A CPM network with its weights on a device.
#[derive(Clone, Debug)]
pub struct Cpm {
    config: Config,
    center_pool: LayerKind,
    stage1: Seq,
    pool3_stage1: String,
    features: Features,
    stages: Vec<Stage>,
    device: Device,
    center: CenterCache,
}

impl Cpm {
    /// Builds the network from `vb`; every parameter is read as `{layer}.weight` /
    /// `{layer}.bias` under `vb`'s prefix.
    pub fn load(vb: VarBuilder, config: Config) -> CResult<Self> {
        let layout = config.layout();
        let k = config.output_channels();
        let (stage1, c1) = Seq::load(&vb, &layout.stage1, 3)?;
        if c1 != k {
            candle_core::bail!("CPM stage 1 ends with {c1} channels, expected {k}");
        }
        let (features, feat_channels) = match &layout.features {
            FeatureSource::Trunk(specs) => {
                let (seq, c) = Seq::load(&vb, specs, 3)?;
                (Features::Trunk(seq), c)
            }
            FeatureSource::Stage1Layer(name) => {
                let c = layout
                    .stage1
                    .iter()
                    .take_while(|s| &s.name != name)
                    .chain(layout.stage1.iter().find(|s| &s.name == name))
                    .fold(3, |c, s| match s.kind {
                        LayerKind::Conv { out, .. } => out,
                        _ => c,
                    });
                (Features::Stage1Layer(name.clone()), c)
            }
        };
        let mut stages = Vec::with_capacity(layout.later.len());
        for st in &layout.later {
            let (pre, cf) = Seq::load(&vb, &st.pre, feat_channels)?;
            let cin = st
                .concat
                .iter()
                .map(|p| match p {
                    Part::Features => cf,
                    Part::Beliefs => k,
                    Part::Center => 1,
                })
                .sum();
            let (head, ch) = Seq::load(&vb, &st.head, cin)?;
            if ch != k {
                candle_core::bail!("a CPM stage ends with {ch} channels, expected {k}");
            }
            stages.push(Stage {
                pre,
                concat: st.concat,
                head,
            });
        }
        Ok(Self {
            center_pool: layout.center_pool.kind,
            stage1,
            pool3_stage1: layout.pool3_stage1,
            features,
            stages,
            device: vb.device().clone(),
            config,
            center: CenterCache::default(),
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

    /// Runs every stage. `image` is `[N, 3, H, W]` (B,G,R, `(u8 − 128) / 256`),
    /// `center_map` `[N, 1, H, W]`.
    pub fn forward(&self, image: &Tensor, center_map: &Tensor) -> CResult<Output> {
        self.forward_steps(image, center_map, None)
    }

    /// [`Cpm::forward`] with the wall time of each step (centre pool, stage 1, the
    /// features of later stages, each later stage), synchronising the device between steps.
    pub fn forward_profiled(
        &self,
        image: &Tensor,
        center_map: &Tensor,
    ) -> CResult<(Output, Vec<StepTime>)> {
        let mut times = Vec::with_capacity(self.stages.len() + 3);
        let out = self.forward_steps(image, center_map, Some(&mut times))?;
        Ok((out, times))
    }

    fn forward_steps(
        &self,
        image: &Tensor,
        center_map: &Tensor,
        times: Option<&mut Vec<StepTime>>,
    ) -> CResult<Output> {
        let (n, c, h, w) = image.dims4()?;
        let (cn, cc, ch, cw) = center_map.dims4()?;
        if c != 3 || (cn, cc, ch, cw) != (n, 1, h, w) {
            candle_core::bail!(
                "CPM expects an image [N, 3, H, W] and a centre map [N, 1, H, W], got {:?} and {:?}",
                image.dims(),
                center_map.dims()
            );
        }
        let image = image.to_dtype(DType::F32)?;
        let center_map = center_map.to_dtype(DType::F32)?;
        let mut clock = StepClock::new(&self.device, times);

        let pool_center = pool(&center_map, self.center_pool)?;
        clock.lap("pool_center")?;
        let feature_tap = match &self.features {
            Features::Stage1Layer(name) => Some(name.as_str()),
            Features::Trunk(_) => None,
        };
        let mut pool3_stage1 = None;
        let mut shared = None;
        let mut h1 = image.clone();
        for (name, op) in &self.stage1.layers {
            h1 = match op {
                Op::Conv(conv) => conv.forward(&h1)?,
                Op::Pool(kind) => pool(&h1, *kind)?,
            };
            if name == &self.pool3_stage1 {
                pool3_stage1 = Some(h1.clone());
            }
            if feature_tap == Some(name.as_str()) {
                shared = Some(h1.clone());
            }
        }
        let stage1 = h1;
        clock.lap("stage1")?;
        let features = match (&self.features, shared) {
            (Features::Trunk(seq), _) => seq.forward(&image, None)?.0,
            (Features::Stage1Layer(_), Some(f)) => f,
            (Features::Stage1Layer(name), None) => {
                candle_core::bail!("CPM: stage 1 has no layer '{name}' to take features from")
            }
        };
        let pool3_stage1 = match pool3_stage1 {
            Some(t) => t,
            None => candle_core::bail!("CPM: stage 1 has no layer '{}'", self.pool3_stage1),
        };
        clock.lap("features")?;

        let mut stages = Vec::with_capacity(self.stages.len() + 1);
        stages.push(stage1);
        for i in 0..self.stages.len() {
            let prev = match stages.last() {
                Some(p) => p.clone(),
                None => candle_core::bail!("CPM: no previous stage"),
            };
            let y = self.later_stage(i, &features, &prev, &pool_center)?;
            stages.push(y);
            clock.lap(format!("stage{}", i + 2))?;
        }
        Ok(Output {
            stages,
            pool_center,
            pool3_stage1,
            pool3_stage2: features,
        })
    }
}

impl Cpm {
    /// Stage `i + 2` on the image `features`, the previous stage's beliefs `prev` and the
    /// pooled centre map.
    fn later_stage(
        &self,
        i: usize,
        features: &Tensor,
        prev: &Tensor,
        pool_center: &Tensor,
    ) -> CResult<Tensor> {
        let Some(st) = self.stages.get(i) else {
            candle_core::bail!("CPM: no stage {}", i + 2)
        };
        let (x, _) = st.pre.forward(features, None)?;
        let parts: Vec<&Tensor> = st
            .concat
            .iter()
            .map(|p| match p {
                Part::Features => &x,
                Part::Beliefs => prev,
                Part::Center => pool_center,
            })
            .collect();
        let cat = Tensor::cat(&parts, 1)?;
        Ok(st.head.forward(&cat, None)?.0)
    }

    /// The centre map for `options` on an input of `(h, w)`, `n` copies.
    fn center_for(&self, (h, w): (usize, usize), n: usize, center: (f64, f64)) -> CResult<Tensor> {
        let map = center_map_tensor(
            w,
            h,
            center.0,
            center.1,
            self.config.center_sigma,
            &self.device,
        )?;
        if n == 1 {
            Ok(map)
        } else {
            map.repeat((n, 1, 1, 1))
        }
    }
}

/// The paper's CPM, LSP network (9×9 / 11×11 convs, 6 stages, centre map; Caffe or PyTorch).
pub static ARCHITECTURE_LSP: Architecture = Architecture {
    id: "cpm-lsp",
    name: "Convolutional Pose Machine (LSP network), 6 stages",
    top_down: false,
    flip_shifts_heatmap: false,
    grid: crate::pose::GridAlign::Centre,
    loader: Loader::Checkpoint(load_lsp),
};

/// The paper's CPM, Caffe MPII model (VGG trunk, 7×7 stage convolutions, centre map).
pub static ARCHITECTURE_MPII: Architecture = Architecture {
    id: "cpm-mpii",
    name: "Convolutional Pose Machine (VGG trunk, MPII), 6 stages",
    top_down: false,
    flip_shifts_heatmap: false,
    grid: crate::pose::GridAlign::Centre,
    loader: Loader::Checkpoint(load_mpii),
};

fn load_lsp(info: &'static ModelInfo, store: TensorStore, device: &Device) -> CResult<Loaded> {
    load_checkpoint(info, Config::lsp(), store, device)
}

fn load_mpii(info: &'static ModelInfo, store: TensorStore, device: &Device) -> CResult<Loaded> {
    load_checkpoint(info, Config::mpii(), store, device)
}

fn load_checkpoint(
    info: &'static ModelInfo,
    mut config: Config,
    store: TensorStore,
    device: &Device,
) -> CResult<Loaded> {
    config.joints = info.joints.len();
    // The Caffe release's test code uses sigma 21 for every model; the PyTorch port's
    // `cpm_test.py` (background first) uses 3.
    config.center_sigma = if info.background == Background::First {
        3.0
    } else {
        21.0
    };
    let (vb, usage) = crate::weights::varbuilder::var_builder(store, DType::F32, device);
    let net = Cpm::load(vb, config)?;
    Ok(Loaded {
        net: Box::new(net),
        unused_keys: usage.unused_keys(),
    })
}

impl PoseNet for Cpm {
    fn run(&self, input: &Tensor, options: &RunOptions) -> CResult<RunOutput> {
        let (h, w) = input_hw(input)?;
        let (cx, cy) = options.center_or_middle((w, h));
        let center = self
            .center
            .get(w, h, (cx, cy), self.config.center_sigma, input.device())?;
        let (out, times) = self.forward_profiled(input, &center)?;
        RunTensors::stages(numbered_stages(&out.stages, stage_label), times).fetch()
    }

    fn receptive_fields(&self, _size: (usize, usize)) -> Vec<(ReceptiveField, ReceptiveField)> {
        square_fields(self.config.stages, |t| self.receptive_chain(t))
    }

    fn takes_center(&self) -> bool {
        true
    }

    fn clone_box(&self) -> Box<dyn PoseNet> {
        Box::new(self.clone())
    }

    fn resumable(&self) -> Option<&dyn Resumable> {
        Some(self)
    }

    fn heatmaps_batch(&self, input: &Tensor, options: &RunOptions) -> CResult<Option<Vec<Tensor>>> {
        let (n, _, h, w) = input.dims4()?;
        let center = self.center_for((h, w), n, options.center_or_middle((w, h)))?;
        Ok(Some(self.forward(input, &center)?.stages))
    }
}

mod resume;
#[cfg(test)]
mod tests;
