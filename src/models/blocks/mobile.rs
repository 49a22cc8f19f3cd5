//! Building blocks of edvardHua/PoseEstimationForMobile's networks (mobile CPM and mobile
//! hourglass), loaded from the released `.tflite` files (BatchNorm already folded into
//! conv weights + bias). NCHW here; TFLite runs NHWC.
//!
//! The activations follow the released graphs, which differ from textbook MobileNetV2:
//! - expand 1×1 conv: bias → ReLU6 (the graph adds a ReLU after it, a no-op);
//! - depthwise conv: bias (all zero in the releases) → ReLU, unbounded;
//! - projection 1×1 conv: bias → **ReLU6** (not linear);
//! - residual add (when input and output widths match and the stride is 1): no activation.
//!
//! The "mv1" separable block of the CPM heads has a **1×1** depthwise kernel: a per-channel
//! scale + bias → ReLU (it cannot be folded into the pointwise conv across the ReLU), then a
//! pointwise conv → ReLU6 (+ a no-op ReLU).

use candle_core::{Module, Result as CResult, Tensor};

use crate::kernels::bias_act::{scale_shift_act, Act, Bias};
use crate::kernels::padding::same_padding;
use crate::models::blocks::ops::{DepthwiseSame, Pointwise};
use crate::models::receptive::RfLayer;
use crate::weights::{TensorStore, WeightsError};

/// A 1×1 conv from a TFLite OHWI filter `[O, 1, 1, I]` and bias `[O]`, followed by ReLU6
/// (fused; every pointwise conv of these blocks has one).
pub fn load_pointwise_relu6(
    w: &TensorStore,
    prefix: &str,
    cin: usize,
    cout: usize,
) -> Result<Pointwise, WeightsError> {
    let name = format!("{prefix}/weights");
    let k = w.get(&name, &[cout, 1, 1, cin])?;
    let b = w.get(&format!("{prefix}/Conv2D_bias"), &[cout])?;
    w.convert(&name, k, |k| {
        Pointwise::new(k.reshape((cout, cin))?, Some(b))?.with_act(Act::Relu6)
    })
}

/// A depthwise conv from a TFLite filter `[1, K, K, C]` and bias `[C]`, followed by ReLU
/// (fused).
#[derive(Clone, Debug)]
pub struct Depthwise {
    conv: DepthwiseSame,
    pub kernel: usize,
    pub stride: usize,
}

impl Depthwise {
    pub fn load(
        w: &TensorStore,
        prefix: &str,
        channels: usize,
        kernel: usize,
        stride: usize,
    ) -> Result<Self, WeightsError> {
        let name = format!("{prefix}/depthwise_weights");
        let k = w.get(&name, &[1, kernel, kernel, channels])?;
        let bias_name = format!("{prefix}/depthwise_bias");
        let b = w.get(&bias_name, &[channels])?;
        let conv = w.convert(&name, k, |k| {
            DepthwiseSame::new(&k.permute((3, 0, 1, 2))?.contiguous()?, stride)?
                .with_bias_act(Some(&b), Act::Relu)
        })?;
        Ok(Self {
            conv,
            kernel,
            stride,
        })
    }
}

impl Module for Depthwise {
    /// Depthwise conv + bias → ReLU.
    fn forward(&self, x: &Tensor) -> CResult<Tensor> {
        self.conv.forward(x)
    }
}

/// Shape of one inverted bottleneck.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BottleneckSpec {
    pub cin: usize,
    pub cout: usize,
    /// Expansion ratio: the expand conv has `cin * expansion` outputs.
    pub expansion: usize,
    pub kernel: usize,
    pub stride: usize,
}

impl BottleneckSpec {
    /// A residual add follows when the shape is unchanged.
    pub fn residual(&self) -> bool {
        self.cin == self.cout && self.stride == 1
    }
}

/// `{scope}inverted_bottleneck_{name}/{name}_{up_pointwise|depthwise|pointwise}`.
#[derive(Clone, Debug)]
pub struct InvertedBottleneck {
    pub name: String,
    pub spec: BottleneckSpec,
    expand: Pointwise,
    depthwise: Depthwise,
    project: Pointwise,
}

impl InvertedBottleneck {
    /// `scope` is the enclosing name scope with a trailing `/` (or empty); `name` the block's.
    pub fn load(
        w: &TensorStore,
        scope: &str,
        name: &str,
        spec: BottleneckSpec,
    ) -> Result<Self, WeightsError> {
        let base = format!("{scope}inverted_bottleneck_{name}/{name}");
        let hidden = spec.cin * spec.expansion;
        Ok(Self {
            name: format!("{scope}inverted_bottleneck_{name}"),
            spec,
            expand: load_pointwise_relu6(w, &format!("{base}_up_pointwise"), spec.cin, hidden)?,
            depthwise: Depthwise::load(
                w,
                &format!("{base}_depthwise"),
                hidden,
                spec.kernel,
                spec.stride,
            )?,
            project: load_pointwise_relu6(w, &format!("{base}_pointwise"), hidden, spec.cout)?,
        })
    }

    /// The block's one spatial layer (its depthwise conv) for an input of `size` rows.
    pub fn rf_layer(&self, size: usize) -> RfLayer {
        let (k, s) = (self.spec.kernel, self.spec.stride);
        RfLayer::window(
            format!("{}/depthwise", self.name),
            k,
            s,
            1,
            same_padding(size, k, s).0,
        )
    }
}

impl InvertedBottleneck {
    /// The block on the channel concatenation of `a` and `b`, which the expand conv reads
    /// in place (the block has no residual: its input is wider than its output).
    pub fn forward_cat(&self, a: &Tensor, b: &Tensor) -> CResult<Tensor> {
        if self.spec.residual() {
            return self.forward(&Tensor::cat(&[a, b], 1)?);
        }
        let h = self.expand.forward_cat(a, b)?;
        let h = self.depthwise.forward(&h)?;
        self.project.forward(&h)
    }
}

impl Module for InvertedBottleneck {
    fn forward(&self, x: &Tensor) -> CResult<Tensor> {
        let h = self.expand.forward(x)?;
        let h = self.depthwise.forward(&h)?;
        if self.spec.residual() {
            self.project.forward_add(&h, x)
        } else {
            self.project.forward(&h)
        }
    }
}

/// A run of inverted bottlenecks named `{scope}inverted_bottleneck_{prefix}_{1..}`, the
/// first with `first` and the rest `cout → cout` with `stride 1`.
#[derive(Clone, Debug)]
pub struct BottleneckGroup {
    pub blocks: Vec<InvertedBottleneck>,
}

impl BottleneckGroup {
    pub fn load(
        w: &TensorStore,
        scope: &str,
        prefix: &str,
        specs: &[BottleneckSpec],
    ) -> Result<Self, WeightsError> {
        let blocks = specs
            .iter()
            .enumerate()
            .map(|(i, &spec)| {
                InvertedBottleneck::load(w, scope, &format!("{prefix}_{}", i + 1), spec)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { blocks })
    }

    /// The spatial layers for an input of `size` rows; returns the output size too.
    pub fn rf_layers(&self, mut size: usize) -> (Vec<RfLayer>, usize) {
        let mut layers = Vec::with_capacity(self.blocks.len());
        for b in &self.blocks {
            layers.push(b.rf_layer(size));
            size = size.div_ceil(b.spec.stride.max(1));
        }
        (layers, size)
    }
}

impl BottleneckGroup {
    /// The group on the channel concatenation of `a` and `b` (not materialised when the
    /// first block can read it in place).
    pub fn forward_cat(&self, a: &Tensor, b: &Tensor) -> CResult<Tensor> {
        let Some((first, rest)) = self.blocks.split_first() else {
            return Tensor::cat(&[a, b], 1);
        };
        rest.iter()
            .try_fold(first.forward_cat(a, b)?, |h, blk| blk.forward(&h))
    }
}

impl Module for BottleneckGroup {
    fn forward(&self, x: &Tensor) -> CResult<Tensor> {
        self.blocks.iter().try_fold(x.clone(), |h, b| b.forward(&h))
    }
}

/// `n` specs: the first `cin → cout` at `stride`, the rest `cout → cout` at stride 1, all
/// with `expansion` and `kernel`; the last may change width to `last_cout`.
pub fn group_specs(
    n: usize,
    cin: usize,
    cout: usize,
    last_cout: usize,
    expansion: usize,
    kernel: usize,
    stride: usize,
) -> Vec<BottleneckSpec> {
    (0..n)
        .map(|i| BottleneckSpec {
            cin: if i == 0 { cin } else { cout },
            cout: if i + 1 == n { last_cout } else { cout },
            expansion,
            kernel,
            stride: if i == 0 { stride } else { 1 },
        })
        .collect()
}

/// A separable block with a 1×1 depthwise kernel ("mv1" in PEFM): per-channel scale + bias
/// → ReLU, then a 1×1 conv + bias → ReLU6.
#[derive(Clone, Debug)]
pub struct ScaleSeparable {
    scale: Bias,
    shift: Bias,
    pointwise: Pointwise,
}

impl ScaleSeparable {
    /// Weights `{prefix}_depthwise/depthwise_{weights,bias}` and
    /// `{prefix}_pointwise/{weights,Conv2D_bias}`.
    pub fn load(
        w: &TensorStore,
        prefix: &str,
        cin: usize,
        cout: usize,
    ) -> Result<Self, WeightsError> {
        let name = format!("{prefix}_depthwise/depthwise_weights");
        let s = w.get(&name, &[1, 1, 1, cin])?;
        let scale = w.convert(&name, s, |s| Bias::new(&s.reshape(cin)?))?;
        let name = format!("{prefix}_depthwise/depthwise_bias");
        let b = w.get(&name, &[cin])?;
        let shift = w.convert(&name, b, |b| Bias::new(&b))?;
        let pointwise = load_pointwise_relu6(w, &format!("{prefix}_pointwise"), cin, cout)?;
        Ok(Self {
            scale,
            shift,
            pointwise,
        })
    }
}

impl Module for ScaleSeparable {
    fn forward(&self, x: &Tensor) -> CResult<Tensor> {
        let h = scale_shift_act(x, &self.scale, &self.shift, Act::Relu)?;
        self.pointwise.forward(&h)
    }
}

/// Of several chains, the one whose receptive field is largest (the first on ties).
pub fn largest_field(chains: Vec<Vec<RfLayer>>) -> Vec<RfLayer> {
    use crate::models::receptive::ReceptiveField;
    let mut best: Option<(f64, Vec<RfLayer>)> = None;
    for c in chains {
        let size = ReceptiveField::of_chain(&c).size;
        if best.as_ref().is_none_or(|(s, _)| size > *s) {
            best = Some((size, c));
        }
    }
    best.map(|(_, c)| c).unwrap_or_default()
}

/// Synthetic weights for unit tests of the networks built from these blocks.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod test_support {
    use std::collections::HashMap;

    use candle_core::{Device, Tensor};

    use super::BottleneckSpec;

    /// Inserts `name` with `shape`, filled with small values.
    pub fn put(t: &mut HashMap<String, Tensor>, name: String, shape: &[usize]) {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|i| ((i % 7) as f32 - 3.0) * 0.01).collect();
        t.insert(name, Tensor::from_vec(v, shape, &Device::Cpu).unwrap());
    }

    /// The six tensors of an inverted bottleneck whose names start with `base`
    /// (`{scope}inverted_bottleneck_{name}/{name}`).
    pub fn bottleneck(t: &mut HashMap<String, Tensor>, base: &str, spec: &BottleneckSpec) {
        let hid = spec.cin * spec.expansion;
        put(
            t,
            format!("{base}_up_pointwise/weights"),
            &[hid, 1, 1, spec.cin],
        );
        put(t, format!("{base}_up_pointwise/Conv2D_bias"), &[hid]);
        put(
            t,
            format!("{base}_depthwise/depthwise_weights"),
            &[1, spec.kernel, spec.kernel, hid],
        );
        put(t, format!("{base}_depthwise/depthwise_bias"), &[hid]);
        put(
            t,
            format!("{base}_pointwise/weights"),
            &[spec.cout, 1, 1, hid],
        );
        put(t, format!("{base}_pointwise/Conv2D_bias"), &[spec.cout]);
    }

    /// A group named `{scope}inverted_bottleneck_{prefix}_{i}/{prefix}_{i}`.
    pub fn group(
        t: &mut HashMap<String, Tensor>,
        scope: &str,
        prefix: &str,
        specs: &[BottleneckSpec],
    ) {
        for (i, s) in specs.iter().enumerate() {
            let n = format!("{prefix}_{}", i + 1);
            bottleneck(t, &format!("{scope}inverted_bottleneck_{n}/{n}"), s);
        }
    }
}
