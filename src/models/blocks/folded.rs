//! Convolutions with their eval-mode BatchNorm folded in at load time, shared by the
//! networks that load official PyTorch `state_dict` names (HRNet, HigherHRNet,
//! SimpleBaseline, Stacked Hourglass, UniPose), and ResNet's Bottleneck built from them. On
//! the CPU, stride-1 k×k convolutions with enough channels run through Winograd
//! ([`crate::kernels::winograd`]), other undilated ones as im2col + matmul and the transposed
//! convolution as matmul + col2im ([`crate::kernels::im2col`]).

use candle_core::{DType, Device, Module, Result as CResult, Tensor};
use candle_nn::VarBuilder;

use crate::kernels::bias_act::{bias_act, Act, Bias};
use crate::kernels::im2col;
use crate::kernels::winograd::{self, WinogradWeight};
use crate::models::blocks::ops::Pointwise;

fn act_of(relu: bool) -> Act {
    if relu {
        Act::Relu
    } else {
        Act::None
    }
}

/// BatchNorm epsilon of the official code (PyTorch's default).
pub const BN_EPS: f64 = 1e-5;

/// The eval-mode BatchNorm `name` as `(scale, shift)` in f64 on the CPU:
/// `scale = γ / sqrt(var + eps)`, `shift = β − mean · scale`.
pub(crate) fn bn_affine(vb: &VarBuilder, channels: usize) -> CResult<(Tensor, Tensor)> {
    let get = |n: &str| {
        vb.get(channels, n)?
            .to_device(&Device::Cpu)?
            .to_dtype(DType::F64)
    };
    let gamma = get("weight")?;
    let beta = get("bias")?;
    let mean = get("running_mean")?;
    let var = get("running_var")?;
    let scale = gamma.div(&(var + BN_EPS)?.sqrt()?)?;
    let shift = beta.sub(&mean.mul(&scale)?)?;
    Ok((scale, shift))
}

/// How a folded convolution runs.
#[derive(Clone, Debug)]
pub(crate) enum ConvOp {
    /// A 1×1 stride-1 convolution as one matrix product.
    Pointwise(Pointwise),
    /// Any other convolution: `[O, I, K, K]` weight, `[O]` bias, padding
    /// `dilation · (K − 1) / 2`.
    Spatial {
        /// The weight, and its Winograd transform once built on the CPU (the weight is then
        /// held only in that form).
        weight: WinogradWeight,
        bias: Bias,
        stride: usize,
        dilation: usize,
        pad: usize,
        /// The fused path for shallow kernels on the CPU (a first layer on RGB), where
        /// Winograd does not apply.
        small: Option<std::sync::Arc<im2col::SmallConv>>,
    },
    /// A transposed convolution: `[I, O, K, K]` weight, `[O]` bias, stride 2.
    Transposed {
        weight: Tensor,
        bias: Bias,
        pad: usize,
        output_pad: usize,
    },
}

/// A convolution with its BatchNorm folded in (or its own bias), and an optional ReLU.
#[derive(Clone, Debug)]
pub(crate) struct Conv {
    pub(crate) op: ConvOp,
    pub(crate) relu: bool,
}

impl Conv {
    pub(crate) fn new(weight: Tensor, bias: Tensor, stride: usize, relu: bool) -> CResult<Self> {
        Self::dilated(weight, bias, stride, 1, relu)
    }

    /// [`Conv::new`] with a dilation (padding `dilation · (k − 1) / 2`, "same" at stride 1).
    pub(crate) fn dilated(
        weight: Tensor,
        bias: Tensor,
        stride: usize,
        dilation: usize,
        relu: bool,
    ) -> CResult<Self> {
        let (_, _, kh, kw) = weight.dims4()?;
        let op = if kh == 1 && kw == 1 && stride == 1 {
            ConvOp::Pointwise(
                Pointwise::new(weight.flatten_from(1)?, Some(bias))?.with_act(act_of(relu))?,
            )
        } else {
            let (o, c, _, _) = weight.dims4()?;
            let winograd = stride == 1 && winograd::worthwhile(kh, c, o);
            let small = if dilation == 1 && !winograd {
                im2col::SmallConv::new(&weight, Some(&bias), stride, act_of(relu))?
                    .map(std::sync::Arc::new)
            } else {
                None
            };
            ConvOp::Spatial {
                weight: WinogradWeight::new(weight)?,
                bias: Bias::new(&bias)?,
                stride,
                dilation,
                pad: dilation * (kh - 1) / 2,
                small,
            }
        };
        Ok(Self { op, relu })
    }

    /// `{conv}.weight` (`[cout, cin, k, k]`, no bias) followed by the BatchNorm `{bn}`,
    /// folded; both names relative to `vb`.
    pub(crate) fn with_bn(
        vb: &VarBuilder,
        conv: &str,
        bn: &str,
        (cin, cout): (usize, usize),
        kernel: usize,
        stride: usize,
        relu: bool,
    ) -> CResult<Self> {
        Self::with_bn_dilated(vb, conv, bn, (cin, cout), kernel, stride, 1, relu)
    }

    /// [`Conv::with_bn`] with a dilated kernel.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn with_bn_dilated(
        vb: &VarBuilder,
        conv: &str,
        bn: &str,
        (cin, cout): (usize, usize),
        kernel: usize,
        stride: usize,
        dilation: usize,
        relu: bool,
    ) -> CResult<Self> {
        let w = vb.pp(conv).get((cout, cin, kernel, kernel), "weight")?;
        let (scale, shift) = bn_affine(&vb.pp(bn), cout)?;
        let (weight, bias) = fold(&w, &scale, &shift, 0, vb.device())?;
        Self::dilated(weight, bias, stride, dilation, relu)
    }

    /// `{conv}.weight` (`[cout, cin, k, k]`) and `{conv}.bias`, followed by the BatchNorm
    /// `{bn}`, folded: `bias' = scale · bias + shift`.
    pub(crate) fn with_bias_bn(
        vb: &VarBuilder,
        conv: &str,
        bn: &str,
        (cin, cout): (usize, usize),
        kernel: usize,
        stride: usize,
        relu: bool,
    ) -> CResult<Self> {
        let cvb = vb.pp(conv);
        let w = cvb.get((cout, cin, kernel, kernel), "weight")?;
        let b = cvb
            .get(cout, "bias")?
            .to_device(&Device::Cpu)?
            .to_dtype(DType::F64)?;
        let (scale, shift) = bn_affine(&vb.pp(bn), cout)?;
        let shift = b.mul(&scale)?.add(&shift)?;
        let (weight, bias) = fold(&w, &scale, &shift, 0, vb.device())?;
        Self::new(weight, bias, stride, relu)
    }

    /// `{conv}.weight` of a bias-free `ConvTranspose2d` (`[cin, cout, k, k]`, stride 2,
    /// padding `pad`, output padding `output_pad`) followed by the BatchNorm `{bn}`, folded.
    pub(crate) fn transposed_with_bn(
        vb: &VarBuilder,
        conv: &str,
        bn: &str,
        (cin, cout): (usize, usize),
        kernel: usize,
        (pad, output_pad): (usize, usize),
        relu: bool,
    ) -> CResult<Self> {
        let w = vb.pp(conv).get((cin, cout, kernel, kernel), "weight")?;
        let (scale, shift) = bn_affine(&vb.pp(bn), cout)?;
        let (weight, bias) = fold(&w, &scale, &shift, 1, vb.device())?;
        Self::transposed(weight, &bias, (pad, output_pad), relu)
    }

    /// A stride-2 transposed convolution from its `[I, O, K, K]` weight and `[O]` bias.
    pub(crate) fn transposed(
        weight: Tensor,
        bias: &Tensor,
        (pad, output_pad): (usize, usize),
        relu: bool,
    ) -> CResult<Self> {
        Ok(Self {
            op: ConvOp::Transposed {
                weight,
                bias: Bias::new(bias)?,
                pad,
                output_pad,
            },
            relu,
        })
    }

    /// `{name}.weight` and `{name}.bias` of a plain convolution (the final layers).
    pub(crate) fn with_bias(
        vb: &VarBuilder,
        name: &str,
        (cin, cout): (usize, usize),
        kernel: usize,
    ) -> CResult<Self> {
        Self::with_bias_strided(vb, name, (cin, cout), kernel, 1, false)
    }

    /// [`Conv::with_bias`] with a stride and an optional ReLU.
    pub(crate) fn with_bias_strided(
        vb: &VarBuilder,
        name: &str,
        (cin, cout): (usize, usize),
        kernel: usize,
        stride: usize,
        relu: bool,
    ) -> CResult<Self> {
        let vb = vb.pp(name);
        let weight = vb.get((cout, cin, kernel, kernel), "weight")?;
        let bias = vb.get(cout, "bias")?;
        Self::new(weight, bias, stride, relu)
    }

    pub(crate) fn forward(&self, x: &Tensor) -> CResult<Tensor> {
        let act = act_of(self.relu);
        match &self.op {
            // The product applies its own bias and activation.
            ConvOp::Pointwise(p) => p.forward(x),
            ConvOp::Spatial {
                small: Some(small),
                pad,
                ..
            } if crate::kernels::custom_cpu(x) => small.forward(x, ((*pad, *pad), (*pad, *pad))),
            ConvOp::Spatial {
                weight,
                bias,
                stride,
                dilation: 1,
                pad,
                ..
            } => winograd::conv2d_auto(x, weight, (*stride, *pad), bias, act),
            ConvOp::Spatial {
                weight,
                bias,
                stride,
                dilation,
                pad,
                ..
            } => {
                let y = x.conv2d(&weight.original()?, *pad, *stride, *dilation, 1)?;
                let (_, c, kh, kw) = weight.dims();
                crate::kernels::flops::add_conv(y.elem_count(), c, kh, kw);
                bias_act(y, Some(bias), act)
            }
            ConvOp::Transposed {
                weight,
                bias,
                pad,
                output_pad,
            } => bias_act(
                im2col::conv_transpose2d(x, weight, 2, *pad, *output_pad)?,
                Some(bias),
                act,
            ),
        }
    }
}

/// Channel expansion of ResNet's Bottleneck.
pub(crate) const BOTTLENECK_EXPANSION: usize = 4;

/// ResNet's Bottleneck (`conv1`/`bn1` 1×1, `conv2`/`bn2` 3×3 with the stride and dilation,
/// `conv3`/`bn3` 1×1 to `planes · 4`, `downsample.0`/`.1` when the shape changes), as in
/// torchvision and the HRNet, SimpleBaseline and UniPose code.
#[derive(Clone, Debug)]
pub(crate) struct Bottleneck {
    conv1: Conv,
    conv2: Conv,
    conv3: Conv,
    downsample: Option<Conv>,
}

impl Bottleneck {
    pub(crate) fn load(
        vb: &VarBuilder,
        cin: usize,
        planes: usize,
        stride: usize,
        dilation: usize,
    ) -> CResult<Self> {
        let cout = planes * BOTTLENECK_EXPANSION;
        let downsample = if stride != 1 || cin != cout {
            Some(Conv::with_bn(
                vb,
                "downsample.0",
                "downsample.1",
                (cin, cout),
                1,
                stride,
                false,
            )?)
        } else {
            None
        };
        let (c2, b2) = ("conv2", "bn2");
        Ok(Self {
            conv1: Conv::with_bn(vb, "conv1", "bn1", (cin, planes), 1, 1, true)?,
            conv2: Conv::with_bn_dilated(vb, c2, b2, (planes, planes), 3, stride, dilation, true)?,
            conv3: Conv::with_bn(vb, "conv3", "bn3", (planes, cout), 1, 1, false)?,
            downsample,
        })
    }

    pub(crate) fn forward(&self, x: &Tensor) -> CResult<Tensor> {
        let y = self
            .conv3
            .forward(&self.conv2.forward(&self.conv1.forward(x)?)?)?;
        let residual = match &self.downsample {
            Some(d) => d.forward(x)?,
            None => x.clone(),
        };
        crate::kernels::bias_act::add_relu(y, &residual)
    }
}

/// Folds a BatchNorm `(scale, shift)` (f64, per output channel) into a bias-free weight
/// whose output channels are along `out_dim`; returns the f32 weight and bias on `device`.
pub(crate) fn fold(
    w: &Tensor,
    scale: &Tensor,
    shift: &Tensor,
    out_dim: usize,
    device: &Device,
) -> CResult<(Tensor, Tensor)> {
    let mut shape = vec![1; w.rank()];
    if let Some(d) = shape.get_mut(out_dim) {
        *d = scale.elem_count();
    }
    let w64 = w.to_device(&Device::Cpu)?.to_dtype(DType::F64)?;
    let weight = w64
        .broadcast_mul(&scale.reshape(shape)?)?
        .to_dtype(DType::F32)?
        .to_device(device)?;
    let bias = shift.to_dtype(DType::F32)?.to_device(device)?;
    Ok((weight, bias))
}

/// A stand-alone eval-mode BatchNorm (one not preceded by a convolution it could be folded
/// into, e.g. the first BN of a pre-activation block): `x · scale + shift` per channel.
#[derive(Clone, Debug)]
pub(crate) struct Affine {
    /// `[1, C, 1, 1]`.
    scale: Tensor,
    /// `[1, C, 1, 1]`.
    shift: Tensor,
}

impl Affine {
    /// The BatchNorm at `vb` with `channels` channels.
    pub(crate) fn batch_norm(vb: &VarBuilder, channels: usize) -> CResult<Self> {
        let (scale, shift) = bn_affine(vb, channels)?;
        let to = |t: Tensor| {
            t.to_dtype(DType::F32)?
                .to_device(vb.device())?
                .reshape((1, channels, 1, 1))
        };
        Ok(Self {
            scale: to(scale)?,
            shift: to(shift)?,
        })
    }

    pub(crate) fn forward(&self, x: &Tensor) -> CResult<Tensor> {
        x.broadcast_mul(&self.scale)?.broadcast_add(&self.shift)
    }
}
