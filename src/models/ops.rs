//! Building blocks shared by TensorFlow-trained networks, on candle tensors in NCHW layout.
//!
//! TensorFlow's `SAME` padding is asymmetric: when the total padding is odd, the extra
//! row/column goes to the bottom/right, and the amount depends on the input size. These
//! helpers compute it per call from the actual input, so any input size works.

use candle_core::{DType, Module, Result, Tensor, D};

/// TF `SAME` padding `(before, after)` along one axis for an input of `size`, kernel `k`
/// and stride `s`: output `ceil(size / s)`, total `max((out - 1) * s + k - size, 0)`,
/// `before = total / 2`.
/// Checks that `x` is an image batch `[N, 3, H, W]` with `H` and `W` non-zero multiples of
/// `multiple` and returns it as f32; the error names `network`.
pub fn image_batch(x: &Tensor, multiple: usize, network: &str) -> Result<Tensor> {
    let (_, c, h, w) = x.dims4()?;
    if c != 3 || h % multiple != 0 || w % multiple != 0 || h == 0 || w == 0 {
        candle_core::bail!(
            "{network} expects an input [N, 3, H, W] with H and W multiples of {multiple}, got {:?}",
            x.dims()
        );
    }
    x.to_dtype(DType::F32)
}

pub fn same_padding(size: usize, k: usize, s: usize) -> (usize, usize) {
    let s = s.max(1);
    let out = size.div_ceil(s);
    let total = ((out.saturating_sub(1)) * s + k).saturating_sub(size);
    (total / 2, total - total / 2)
}

/// Pads the last two dims of an NCHW tensor with `value`: `(top, bottom)`, `(left, right)`.
pub fn pad_hw(
    x: &Tensor,
    (t, b): (usize, usize),
    (l, r): (usize, usize),
    value: f32,
) -> Result<Tensor> {
    if value == 0.0 {
        return x
            .pad_with_zeros(D::Minus2, t, b)?
            .pad_with_zeros(D::Minus1, l, r);
    }
    let pad_dim = |x: Tensor, dim: usize, before: usize, after: usize| -> Result<Tensor> {
        if before == 0 && after == 0 {
            return Ok(x);
        }
        let mut dims = x.dims().to_vec();
        let mut parts = Vec::with_capacity(3);
        if before > 0 {
            dims[dim] = before;
            parts.push(Tensor::full(value, dims.as_slice(), x.device())?.to_dtype(x.dtype())?);
        }
        parts.push(x.clone());
        if after > 0 {
            dims[dim] = after;
            parts.push(Tensor::full(value, dims.as_slice(), x.device())?.to_dtype(x.dtype())?);
        }
        Tensor::cat(&parts, dim)
    };
    let x = pad_dim(x.clone(), 2, t, b)?;
    pad_dim(x, 3, l, r)
}

/// A regular convolution with TF `SAME` padding, `[O, I, KH, KW]` kernel, optional bias.
#[derive(Clone, Debug)]
pub struct ConvSame {
    weight: Tensor,
    bias: Option<Tensor>,
    stride: usize,
    /// Applied after the bias.
    act: super::bias_act::Act,
    /// The fused CPU path for shallow kernels (a first layer on RGB).
    small: Option<std::sync::Arc<super::im2col_cpu::SmallConv>>,
}

impl ConvSame {
    /// `weight` is OIHW; `bias` is `[O]`.
    pub fn new(weight: Tensor, bias: Option<Tensor>, stride: usize) -> Self {
        Self {
            weight,
            bias,
            stride,
            act: super::bias_act::Act::None,
            small: None,
        }
    }

    /// The same convolution followed by `act` (fused on the CPU for shallow kernels).
    pub fn with_act(self, act: super::bias_act::Act) -> Result<Self> {
        let small =
            super::im2col_cpu::SmallConv::new(&self.weight, self.bias.as_ref(), self.stride, act)?
                .map(std::sync::Arc::new);
        Ok(Self { act, small, ..self })
    }
}

impl Module for ConvSame {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (_, _, kh, kw) = self.weight.dims4()?;
        let (_, _, h, w) = x.dims4()?;
        let ph = same_padding(h, kh, self.stride);
        let pw = same_padding(w, kw, self.stride);
        if let Some(small) = &self.small {
            if x.device().is_cpu() && x.dtype() == DType::F32 {
                return small.forward(x, (ph, pw));
            }
        }
        let x = pad_hw(x, ph, pw, 0.0)?;
        let y = if kh == kw {
            super::im2col_cpu::conv2d(&x, &self.weight, self.stride, 0)?
        } else {
            let y = x.conv2d(&self.weight, 0, self.stride, 1, 1)?;
            super::flops::add_conv(y.elem_count(), self.weight.dim(1)?, kh, kw);
            y
        };
        let y = match &self.bias {
            Some(b) => y.broadcast_add(&b.reshape((1, (), 1, 1))?)?,
            None => y,
        };
        self.act.tensor(y)
    }
}

/// A 1×1 convolution computed as one matrix product: `[O, I] x [I, H*W]`.
#[derive(Clone, Debug)]
pub struct Pointwise {
    /// `[O, I]`.
    weight: Tensor,
    bias: Option<super::bias_act::Bias>,
    /// Applied after the bias (fused on the CPU).
    act: super::bias_act::Act,
    /// The direct kernel used for f32 CPU inputs (bias and activation fused); shared, as
    /// it holds a packed copy of the weights.
    cpu: Option<std::sync::Arc<super::pointwise_cpu::PointwiseCpu>>,
}

impl Pointwise {
    /// `weight` is `[O, I]`; `bias` is `[O]`.
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Result<Self> {
        let bias = bias.as_ref().map(super::bias_act::Bias::new).transpose()?;
        let mut op = Self {
            weight,
            bias,
            act: super::bias_act::Act::None,
            cpu: None,
        };
        op.cpu = op.cpu_op()?;
        Ok(op)
    }

    /// The same product followed by `act`.
    pub fn with_act(self, act: super::bias_act::Act) -> Result<Self> {
        let mut op = Self { act, ..self };
        op.cpu = op.cpu_op()?;
        Ok(op)
    }

    /// The direct CPU kernel for f32 weights on the CPU.
    fn cpu_op(&self) -> Result<Option<std::sync::Arc<super::pointwise_cpu::PointwiseCpu>>> {
        if !self.weight.device().is_cpu() || self.weight.dtype() != DType::F32 {
            return Ok(None);
        }
        let (o, i) = self.weight.dims2()?;
        let values: Vec<f32> = self.weight.flatten_all()?.to_vec1()?;
        let bias = self.bias.as_ref().map_or(&[][..], |b| b.values());
        super::pointwise_cpu::PointwiseCpu::new(&values, o, i, bias, self.act)
            .map(|op| Some(std::sync::Arc::new(op)))
    }

    /// `self.forward(&Tensor::cat(&[a, b], 1)?)`, reading `a` and `b` in place on the CPU.
    pub fn forward_cat(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        match &self.cpu {
            Some(op) if a.device().is_cpu() && a.dtype() == DType::F32 => {
                let (_, c, _, _) = a.dims4()?;
                let (_, c2, _, _) = b.dims4()?;
                let y = a
                    .contiguous()?
                    .apply_op2_no_bwd(&b.contiguous()?, &super::pointwise_cpu::OnConcat(op))?;
                super::flops::add_conv(y.elem_count(), c + c2, 1, 1);
                Ok(y)
            }
            _ => self.forward(&Tensor::cat(&[a, b], 1)?),
        }
    }

    /// `self.forward(x) + residual`, the sum fused into the CPU kernel.
    pub fn forward_add(&self, x: &Tensor, residual: &Tensor) -> Result<Tensor> {
        match &self.cpu {
            Some(op) if x.device().is_cpu() && x.dtype() == DType::F32 => {
                let (_, c, _, _) = x.dims4()?;
                let y = x.contiguous()?.apply_op2_no_bwd(
                    &residual.contiguous()?,
                    &super::pointwise_cpu::WithResidual(op),
                )?;
                super::flops::add_conv(y.elem_count(), c, 1, 1);
                Ok(y)
            }
            _ => self.forward(x)? + residual,
        }
    }
}

impl Module for Pointwise {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (n, c, h, w) = x.dims4()?;
        if let Some(op) = &self.cpu {
            if x.device().is_cpu() && x.dtype() == DType::F32 {
                let y = x.contiguous()?.apply_op1_no_bwd(op.as_ref())?;
                super::flops::add_conv(y.elem_count(), c, 1, 1);
                return Ok(y);
            }
        }
        let o = self.weight.dim(0)?;
        let x = x.reshape((n, c, h * w))?;
        let y = self.weight.broadcast_matmul(&x)?;
        super::flops::add_conv(y.elem_count(), c, 1, 1);
        super::bias_act::bias_act(y.reshape((n, o, h, w))?, self.bias.as_ref(), self.act)
    }
}

/// A depthwise convolution (channel multiplier 1) with TF `SAME` padding, optionally
/// followed by a per-channel bias and an activation ([`DepthwiseSame::with_bias_act`]; fused
/// into the CPU kernel).
///
/// candle's grouped convolution runs one convolution per channel, so this computes the
/// sum over kernel taps of shifted input windows times per-channel weights instead; it runs
/// on every device. A 1×1 depthwise kernel is a per-channel scale.
#[derive(Clone, Debug)]
pub struct DepthwiseSame {
    /// `[KH * KW]` tensors of shape `[1, C, 1, 1]`, row-major over the kernel.
    taps: Vec<Tensor>,
    /// The direct kernel used for CPU inputs (kernels larger than 1×1).
    cpu: Option<super::depthwise_cpu::DepthwiseCpu>,
    kh: usize,
    kw: usize,
    stride: usize,
    bias: Option<super::bias_act::Bias>,
    act: super::bias_act::Act,
}

impl DepthwiseSame {
    /// `weight` is `[C, 1, KH, KW]` (candle's grouped layout).
    pub fn new(weight: &Tensor, stride: usize) -> Result<Self> {
        let (c, m, kh, kw) = weight.dims4()?;
        if m != 1 {
            candle_core::bail!(
                "depthwise weight must have shape [C, 1, KH, KW], got {:?}",
                weight.dims()
            );
        }
        let mut taps = Vec::with_capacity(kh * kw);
        for i in 0..kh {
            for j in 0..kw {
                let tap = weight
                    .narrow(2, i, 1)?
                    .narrow(3, j, 1)?
                    .reshape((1, c, 1, 1))?;
                taps.push(tap.contiguous()?);
            }
        }
        let cpu = if kh * kw > 1 {
            let values: Vec<f32> = weight
                .to_dtype(candle_core::DType::F32)?
                .flatten_all()?
                .to_vec1()?;
            Some(super::depthwise_cpu::DepthwiseCpu::new(
                values, c, kh, kw, stride,
            )?)
        } else {
            None
        };
        Ok(Self {
            taps,
            cpu,
            kh,
            kw,
            stride: stride.max(1),
            bias: None,
            act: super::bias_act::Act::None,
        })
    }

    /// The same convolution followed by `+ bias` (`[C]`) and `act`.
    pub fn with_bias_act(self, bias: Option<&Tensor>, act: super::bias_act::Act) -> Result<Self> {
        let bias = bias.map(super::bias_act::Bias::new).transpose()?;
        let cpu = self
            .cpu
            .map(|op| op.with_bias_act(bias.as_ref().map(|b| b.values().to_vec()), act))
            .transpose()?;
        Ok(Self {
            cpu,
            bias,
            act,
            ..self
        })
    }
}

impl Module for DepthwiseSame {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = match &self.cpu {
            Some(op) if x.device().is_cpu() && x.dtype() == DType::F32 => {
                x.contiguous()?.apply_op1_no_bwd(op)?
            }
            _ => super::bias_act::bias_act(self.forward_tensors(x)?, self.bias.as_ref(), self.act)?,
        };
        super::flops::add_conv(y.elem_count(), 1, self.kh, self.kw);
        Ok(y)
    }
}

impl DepthwiseSame {
    /// The convolution of the concatenation of `sources` along the channels: read in
    /// place on the CPU ([`super::depthwise_cpu::DepthwiseOnConcat`], one to three
    /// sources), otherwise concatenated first.
    pub fn forward_cat(&self, sources: &[&Tensor]) -> Result<Tensor> {
        let on_cpu = sources
            .iter()
            .all(|x| x.device().is_cpu() && x.dtype() == DType::F32);
        if let (Some(cpu), true) = (&self.cpu, on_cpu) {
            let op = super::depthwise_cpu::DepthwiseOnConcat(cpu);
            let x: Vec<Tensor> = sources
                .iter()
                .map(|x| x.contiguous())
                .collect::<Result<_>>()?;
            let y = match x.as_slice() {
                [x] => Some(x.apply_op1_no_bwd(&op)?),
                [x, y] => Some(x.apply_op2_no_bwd(y, &op)?),
                [x, y, z] => Some(x.apply_op3_no_bwd(y, z, &op)?),
                _ => None,
            };
            if let Some(y) = y {
                super::flops::add_conv(y.elem_count(), 1, self.kh, self.kw);
                return Ok(y);
            }
        }
        self.forward(&Tensor::cat(sources, 1)?)
    }

    /// The tensor formulation (sum of shifted windows times per-channel weights), used on
    /// GPUs and for 1×1 kernels everywhere.
    pub fn forward_tensors(&self, x: &Tensor) -> Result<Tensor> {
        let (n, c, h, w) = x.dims4()?;
        let s = self.stride;
        let (ho, wo) = (h.div_ceil(s), w.div_ceil(s));
        let (pt, pb) = same_padding(h, self.kh, s);
        let (pl, pr) = same_padding(w, self.kw, s);
        // Extra zero rows/columns so every tap can take `s * out` rows and subsample.
        let need_h = self.kh - 1 + s * ho;
        let need_w = self.kw - 1 + s * wo;
        let pb = pb + need_h.saturating_sub(h + pt + pb);
        let pr = pr + need_w.saturating_sub(w + pl + pr);
        let xp = pad_hw(x, (pt, pb), (pl, pr), 0.0)?;
        let mut acc: Option<Tensor> = None;
        for i in 0..self.kh {
            for j in 0..self.kw {
                let win = if s == 1 {
                    xp.narrow(2, i, ho)?.narrow(3, j, wo)?
                } else {
                    xp.narrow(2, i, s * ho)?
                        .narrow(3, j, s * wo)?
                        .contiguous()?
                        .reshape((n, c, ho, s, wo, s))?
                        .narrow(3, 0, 1)?
                        .narrow(5, 0, 1)?
                        .reshape((n, c, ho, wo))?
                };
                let term = win.broadcast_mul(&self.taps[i * self.kw + j])?;
                acc = Some(match acc {
                    Some(a) => (a + term)?,
                    None => term,
                });
            }
        }
        match acc {
            Some(a) => Ok(a),
            None => Tensor::zeros((n, c, ho, wo), x.dtype(), x.device()),
        }
    }
}

/// Max pooling with TF `SAME` padding: padded cells never win (they are `-inf`).
pub fn max_pool_same(x: &Tensor, k: usize, s: usize) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let x = if x.dtype() == DType::F32 {
        pad_hw(
            x,
            same_padding(h, k, s),
            same_padding(w, k, s),
            f32::NEG_INFINITY,
        )?
    } else {
        candle_core::bail!("max_pool_same supports f32 only, got {:?}", x.dtype())
    };
    x.max_pool2d_with_stride(k, s)
}

/// `min(max(x, 0), 6)`, TensorFlow's `Relu6`.
pub fn relu6(x: &Tensor) -> Result<Tensor> {
    x.clamp(0f32, 6f32)
}

/// Source rows of TF's legacy bilinear resize along one axis (`align_corners=false`,
/// `half_pixel_centers=false`): `src = dst · in / out`, `lo = floor(src)`,
/// `hi = min(lo + 1, in − 1)`, weight `src − lo`. Returns `(lo, hi, weight)`.
pub fn legacy_bilinear_taps(input: usize, output: usize) -> (Vec<u32>, Vec<u32>, Vec<f32>) {
    let scale = input as f32 / output.max(1) as f32;
    let last = input.saturating_sub(1);
    let mut lo = Vec::with_capacity(output);
    let mut hi = Vec::with_capacity(output);
    let mut weight = Vec::with_capacity(output);
    for d in 0..output {
        let src = d as f32 * scale;
        let l = (src.floor() as usize).min(last);
        lo.push(l as u32);
        hi.push((l + 1).min(last) as u32);
        weight.push(src - l as f32);
    }
    (lo, hi, weight)
}

/// TensorFlow's legacy `ResizeBilinear` (TF1 default, TFLite `align_corners=false,
/// half_pixel_centers=false`) of an NCHW tensor to `(out_h, out_w)`. For an exact ×2:
/// `out[2k] = in[k]`, `out[2k+1] = (in[k] + in[k+1]) / 2`, and the last row/column repeats
/// `in[n−1]`. This is not candle's `upsample_bilinear2d` (half-pixel centres).
pub fn resize_bilinear_legacy(x: &Tensor, out_h: usize, out_w: usize) -> Result<Tensor> {
    resize_two_tap(x, Blend::Legacy, legacy_bilinear_taps, (out_h, out_w))
}

/// Source taps of PyTorch's bilinear interpolation with `align_corners=True` along one
/// axis: `src = dst · (in − 1) / (out − 1)` (0 when `out == 1`), `lo = floor(src)`,
/// `hi = min(lo + 1, in − 1)`, weight `src − lo`. Returns `(lo, hi, weight)`.
pub fn align_corners_taps(input: usize, output: usize) -> (Vec<u32>, Vec<u32>, Vec<f32>) {
    let scale = if output > 1 {
        input.saturating_sub(1) as f32 / (output - 1) as f32
    } else {
        0.0
    };
    let last = input.saturating_sub(1);
    let mut lo = Vec::with_capacity(output);
    let mut hi = Vec::with_capacity(output);
    let mut weight = Vec::with_capacity(output);
    for d in 0..output {
        let src = scale * d as f32;
        let l = (src.floor() as usize).min(last);
        lo.push(l as u32);
        hi.push((l + 1).min(last) as u32);
        weight.push((src - l as f32).max(0.0));
    }
    (lo, hi, weight)
}

/// PyTorch's `F.interpolate(x, size, mode="bilinear", align_corners=True)` of an NCHW
/// tensor to `(out_h, out_w)`: the corner pixels of input and output coincide. candle's
/// `upsample_bilinear2d` uses half-pixel centres instead. A `1 × 1` input is broadcast.
pub fn resize_bilinear_align_corners(x: &Tensor, out_h: usize, out_w: usize) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    if h == 1 && w == 1 {
        return x.broadcast_as((n, c, out_h, out_w))?.contiguous();
    }
    resize_two_tap(x, Blend::Lerp, align_corners_taps, (out_h, out_w))
}

/// How two taps `a` (low) and `b` (high) with weight `t` are blended, as the reference
/// computes it (the float rounding differs slightly).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Blend {
    /// `a + (b − a)·t` (TensorFlow's legacy resize).
    Legacy,
    /// `a·(1 − t) + b·t` (PyTorch).
    Lerp,
}

impl Blend {
    #[inline(always)]
    fn apply(self, a: f32, b: f32, t: f32) -> f32 {
        match self {
            Blend::Legacy => a + (b - a) * t,
            Blend::Lerp => a * (1.0 - t) + b * t,
        }
    }
}

/// Per-axis taps `(lo, hi, weight)` of an output axis.
type Taps = (Vec<u32>, Vec<u32>, Vec<f32>);

/// A separable two-tap resize on the CPU: rows first, then columns, each blended with
/// `blend`; one pass per plane instead of candle's gathers and broadcasts.
struct Resize {
    blend: Blend,
    rows: Taps,
    cols: Taps,
}

/// One plane of [`Resize`], through [`pulp`]'s dispatch (the row blend vectorises).
struct ResizePlane<'a> {
    op: &'a Resize,
    input: &'a [f32],
    width: usize,
    out: &'a mut [f32],
    row: &'a mut Vec<f32>,
}

impl pulp::WithSimd for ResizePlane<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let ResizePlane {
            op,
            input,
            width: w,
            out,
            row,
        } = self;
        let blend = op.blend;
        let (lo_y, hi_y, t_y) = &op.rows;
        let (lo_x, hi_x, t_x) = &op.cols;
        let wo = lo_x.len();
        let h = input.len() / w.max(1);
        if lo_y.len() >= h {
            // Upsampling: every input row is read, so each is resized along its columns
            // once (the gathers), and each output row is a vector blend of two of those
            // (columns first, as TF and PyTorch compute it).
            row.clear();
            row.resize(h * wo, 0.0);
            for (r, src) in row.chunks_exact_mut(wo).zip(input.chunks_exact(w)) {
                for (((o, &a), &b), &t) in r.iter_mut().zip(lo_x).zip(hi_x).zip(t_x) {
                    *o = blend.apply(src[a as usize], src[b as usize], t);
                }
            }
            for (((out_row, &a), &b), &t) in out.chunks_exact_mut(wo).zip(lo_y).zip(hi_y).zip(t_y) {
                let (a, b) = (a as usize, b as usize);
                let (ra, rb) = (&row[a * wo..(a + 1) * wo], &row[b * wo..(b + 1) * wo]);
                for ((o, x), y) in out_row.iter_mut().zip(ra).zip(rb) {
                    *o = blend.apply(*x, *y, t);
                }
            }
            return;
        }
        row.clear();
        row.resize(w, 0.0);
        for (oy, out_row) in out.chunks_exact_mut(wo).enumerate() {
            let (a, b, t) = (lo_y[oy] as usize, hi_y[oy] as usize, t_y[oy]);
            let (ra, rb) = (&input[a * w..(a + 1) * w], &input[b * w..(b + 1) * w]);
            for ((r, x), y) in row.iter_mut().zip(ra).zip(rb) {
                *r = blend.apply(*x, *y, t);
            }
            for (ox, o) in out_row.iter_mut().enumerate() {
                let (a, b) = (lo_x[ox] as usize, hi_x[ox] as usize);
                *o = blend.apply(row[a], row[b], t_x[ox]);
            }
        }
    }
}

impl candle_core::CustomOp1 for Resize {
    fn name(&self) -> &'static str {
        "resize-bilinear"
    }

    fn cpu_fwd(
        &self,
        storage: &candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> Result<(candle_core::CpuStorage, candle_core::Shape)> {
        use rayon::prelude::*;
        let (n, c, h, w) = layout.shape().dims4()?;
        let x = super::cpu_util::f32_input(storage, layout, "resize")?;
        let (ho, wo) = (self.rows.0.len(), self.cols.0.len());
        let in_range = |t: &Taps, size: usize| t.0.iter().chain(&t.1).all(|&i| (i as usize) < size);
        if !in_range(&self.rows, h) || !in_range(&self.cols, w) {
            candle_core::bail!("resize: taps outside the {h}x{w} input");
        }
        let mut out = vec![0f32; n * c * ho * wo];
        if ho * wo > 0 && h * w > 0 {
            let arch = pulp::Arch::new();
            out.par_chunks_mut(ho * wo)
                .zip(x.par_chunks(h * w))
                .for_each_init(Vec::new, |row, (o, input)| {
                    arch.dispatch(ResizePlane {
                        op: self,
                        input,
                        width: w,
                        out: o,
                        row,
                    })
                });
        }
        Ok((
            candle_core::CpuStorage::F32(out),
            candle_core::Shape::from((n, c, ho, wo)),
        ))
    }
}

/// [`Resize`] for a CPU f32 tensor (`None` for other devices and dtypes).
fn resize_cpu(
    x: &Tensor,
    blend: Blend,
    taps: fn(usize, usize) -> Taps,
    (out_h, out_w): (usize, usize),
) -> Result<Option<Tensor>> {
    if !x.device().is_cpu() || x.dtype() != DType::F32 {
        return Ok(None);
    }
    let (_, _, h, w) = x.dims4()?;
    let op = Resize {
        blend,
        rows: taps(h, out_h),
        cols: taps(w, out_w),
    };
    Ok(Some(x.contiguous()?.apply_op1_no_bwd(&op)?))
}

/// A separable two-tap resize: the [`Resize`] op on the CPU, [`resize_tensors`] elsewhere.
fn resize_two_tap(
    x: &Tensor,
    blend: Blend,
    taps: fn(usize, usize) -> Taps,
    out: (usize, usize),
) -> Result<Tensor> {
    match resize_cpu(x, blend, taps, out)? {
        Some(y) => Ok(y),
        None => resize_tensors(x, blend, taps, out),
    }
}

/// The tensor formulation of a separable two-tap resize (gathers of the low and high rows,
/// then columns, blended), for GPUs.
fn resize_tensors(
    x: &Tensor,
    blend: Blend,
    taps: fn(usize, usize) -> Taps,
    (out_h, out_w): (usize, usize),
) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let dev = x.device();
    let along = |x: &Tensor, dim: usize, input: usize, output: usize| -> Result<Tensor> {
        if input == output {
            return Ok(x.clone());
        }
        let (lo, hi, weight) = taps(input, output);
        let k = lo.len();
        let lo = x.index_select(&Tensor::from_vec(lo, k, dev)?, dim)?;
        let hi = x.index_select(&Tensor::from_vec(hi, k, dev)?, dim)?;
        let mut shape = [1usize; 4];
        shape[dim] = k;
        let w1 = Tensor::from_vec(weight, k, dev)?
            .to_dtype(x.dtype())?
            .reshape(shape.as_slice())?;
        match blend {
            // lo + (hi - lo) * weight, as TF computes it.
            Blend::Legacy => lo.broadcast_add(&(hi - &lo)?.broadcast_mul(&w1)?),
            Blend::Lerp => {
                let w0 = (1.0 - &w1)?;
                lo.broadcast_mul(&w0)?.add(&hi.broadcast_mul(&w1)?)
            }
        }
    };
    let y = along(x, 2, h, out_h)?;
    along(&y, 3, w, out_w)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn same_padding_matches_tf() {
        assert_eq!(same_padding(368, 3, 2), (0, 1));
        assert_eq!(same_padding(117, 3, 2), (1, 1));
        assert_eq!(same_padding(78, 3, 2), (0, 1));
        assert_eq!(same_padding(59, 3, 2), (1, 1));
        assert_eq!(same_padding(39, 2, 2), (0, 1));
        assert_eq!(same_padding(46, 3, 1), (1, 1));
        assert_eq!(same_padding(46, 1, 1), (0, 0));
    }

    /// Reference depthwise convolution by direct loops.
    fn depthwise_ref(
        x: &[f32],
        c: usize,
        h: usize,
        w: usize,
        k: &[f32],
        (kh, kw): (usize, usize),
        s: usize,
    ) -> Vec<f32> {
        let (ho, wo) = (h.div_ceil(s), w.div_ceil(s));
        let (pt, _) = same_padding(h, kh, s);
        let (pl, _) = same_padding(w, kw, s);
        let mut out = vec![0.0; c * ho * wo];
        for ch in 0..c {
            for oy in 0..ho {
                for ox in 0..wo {
                    let mut acc = 0.0;
                    for i in 0..kh {
                        for j in 0..kw {
                            let iy = (oy * s + i) as isize - pt as isize;
                            let ix = (ox * s + j) as isize - pl as isize;
                            if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                                acc += x[(ch * h + iy as usize) * w + ix as usize]
                                    * k[(ch * kh + i) * kw + j];
                            }
                        }
                    }
                    out[(ch * ho + oy) * wo + ox] = acc;
                }
            }
        }
        out
    }

    #[test]
    fn depthwise_matches_direct_loops() {
        let dev = Device::Cpu;
        // Square kernels of 3, 5 and 7 take the fixed-shape paths at strides 1 and 2; the
        // others (and stride 3) the general one.
        for &(kh, kw) in &[(3, 3), (5, 5), (7, 7), (2, 4), (3, 1)] {
            for &(h, w, s) in &[
                (7, 9, 1),
                (7, 9, 2),
                (8, 6, 2),
                (5, 5, 2),
                (1, 1, 1),
                (2, 3, 2),
                (7, 9, 3),
                // Rows longer than a vector, with a partial tail.
                (12, 40, 1),
                (13, 37, 2),
                (5, 35, 3),
                // Several blocks of rows, 24 wide (the mobile CPM's stage maps). On a CPU
                // with split AVX-512 (Zen 4) widths 24, 40, 19 and under 8 take the 8-lane
                // path and 9 and 12 the 16-lane one.
                (24, 24, 1),
                (23, 17, 2),
            ] {
                let c = 3;
                let x: Vec<f32> = (0..c * h * w)
                    .map(|v| ((v * 37 % 11) as f32) - 5.0)
                    .collect();
                let k: Vec<f32> = (0..c * kh * kw)
                    .map(|v| ((v * 13 % 7) as f32) * 0.25 - 0.5)
                    .collect();
                let xt = Tensor::from_vec(x.clone(), (1, c, h, w), &dev).unwrap();
                let kt = Tensor::from_vec(k.clone(), (c, 1, kh, kw), &dev).unwrap();
                let op = DepthwiseSame::new(&kt, s).unwrap();
                let want = depthwise_ref(&x, c, h, w, &k, (kh, kw), s);
                for y in [op.forward(&xt).unwrap(), op.forward_tensors(&xt).unwrap()] {
                    let got: Vec<f32> = y.flatten_all().unwrap().to_vec1().unwrap();
                    assert_eq!(got.len(), want.len());
                    for (a, b) in got.iter().zip(&want) {
                        assert!(
                            (a - b).abs() < 1e-4,
                            "{kh}x{kw} kernel, {h}x{w} s{s}: {a} vs {b}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn depthwise_reads_concatenated_sources_in_place() {
        let dev = Device::Cpu;
        let (h, w) = (9, 23);
        // Batch 2, so the sources' planes interleave image by image.
        let parts: Vec<Tensor> = [2usize, 3, 4]
            .iter()
            .map(|&c| Tensor::randn(0f32, 1.0, (2, c, h, w), &dev).unwrap())
            .collect();
        let kt = Tensor::randn(0f32, 1.0, (9, 1, 3, 3), &dev).unwrap();
        let op = DepthwiseSame::new(&kt, 1).unwrap();
        let refs: Vec<&Tensor> = parts.iter().collect();
        let want = op.forward(&Tensor::cat(&refs, 1).unwrap()).unwrap();
        let got = op.forward_cat(&refs).unwrap();
        assert_eq!(crate::models::cpu_util::max_abs_diff(&got, &want), 0.0);
        // Two sources, and one.
        let two = Tensor::cat(&refs[1..], 1).unwrap();
        let got = op.forward_cat(&[&parts[0], &two]).unwrap();
        assert_eq!(crate::models::cpu_util::max_abs_diff(&got, &want), 0.0);
        let all = Tensor::cat(&refs, 1).unwrap();
        assert_eq!(
            crate::models::cpu_util::max_abs_diff(&op.forward_cat(&[&all]).unwrap(), &want),
            0.0
        );
        // A source of another size, or a channel count that does not add up, is an error.
        let odd = Tensor::zeros((2, 4, h, w + 1), DType::F32, &dev).unwrap();
        assert!(op.forward_cat(&[&parts[0], &parts[1], &odd]).is_err());
        assert!(op.forward_cat(&[&parts[0], &parts[1]]).is_err());
    }

    #[test]
    fn depthwise_bias_and_activation_are_fused_on_the_cpu() {
        use crate::models::bias_act::{bias_act, Act, Bias};
        let dev = Device::Cpu;
        let (c, h, w) = (5, 11, 19);
        let x = Tensor::from_vec(
            (0..c * h * w)
                .map(|v| ((v * 29 % 13) as f32) - 6.0)
                .collect::<Vec<_>>(),
            (1, c, h, w),
            &dev,
        )
        .unwrap();
        let bias = Tensor::new(&[-3f32, 0.5, 2.0, -0.25, 7.0], &dev).unwrap();
        for (k, s) in [(3, 1), (7, 1), (3, 2), (4, 1)] {
            let kt = Tensor::from_vec(
                (0..c * k * k)
                    .map(|v| ((v * 11 % 5) as f32) * 0.5 - 1.0)
                    .collect::<Vec<_>>(),
                (c, 1, k, k),
                &dev,
            )
            .unwrap();
            for act in [Act::None, Act::Relu, Act::Relu6] {
                let op = DepthwiseSame::new(&kt, s)
                    .unwrap()
                    .with_bias_act(Some(&bias), act)
                    .unwrap();
                let plain = DepthwiseSame::new(&kt, s).unwrap();
                let want = bias_act(
                    plain.forward_tensors(&x).unwrap(),
                    Some(&Bias::new(&bias).unwrap()),
                    act,
                )
                .unwrap();
                let got = op.forward(&x).unwrap();
                let d = crate::models::cpu_util::max_abs_diff(&got, &want);
                assert!(d < 1e-4, "k{k} s{s} {act:?}: {d}");
                // The activation changed something, so the comparison sees it.
                if act != Act::None {
                    let raw = (plain.forward_tensors(&x).unwrap()
                        + bias
                            .reshape((1, c, 1, 1))
                            .unwrap()
                            .broadcast_as(got.shape())
                            .unwrap())
                    .unwrap();
                    assert!(crate::models::cpu_util::max_abs_diff(&got, &raw) > 0.1);
                }
            }
        }
    }

    #[test]
    fn max_pool_same_ignores_padding() {
        let dev = Device::Cpu;
        let x = Tensor::from_vec(
            vec![-1f32, -2., -3., -4., -5., -6., -7., -8., -9.],
            (1, 1, 3, 3),
            &dev,
        )
        .unwrap();
        let y: Vec<f32> = max_pool_same(&x, 2, 2)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(y, vec![-1., -3., -7., -9.]);
    }

    #[test]
    fn pointwise_is_a_1x1_conv() {
        use crate::models::bias_act::Act;
        let dev = Device::Cpu;
        // Batch 2, with and without bias, each activation; values that cross 0 and 6.
        let x = Tensor::arange(0f32, 48., &dev)
            .unwrap()
            .reshape((2, 2, 3, 4))
            .unwrap()
            .affine(0.25, -4.0)
            .unwrap();
        let w = Tensor::from_vec(vec![1f32, 2., -1., 0.5, 0., 3.], (3, 2), &dev).unwrap();
        let b = Tensor::from_vec(vec![0.5f32, -1., 2.], 3, &dev).unwrap();
        let conv = x
            .conv2d(&w.reshape((3, 2, 1, 1)).unwrap(), 0, 1, 1, 1)
            .unwrap();
        for bias in [None, Some(&b)] {
            for act in [Act::None, Act::Relu, Act::Relu6] {
                let op = Pointwise::new(w.clone(), bias.cloned())
                    .unwrap()
                    .with_act(act)
                    .unwrap();
                let r = match bias {
                    Some(b) => conv
                        .broadcast_add(&b.reshape((1, 3, 1, 1)).unwrap())
                        .unwrap(),
                    None => conv.clone(),
                };
                let r = act.tensor(r).unwrap();
                let y = op.forward(&x).unwrap();
                let d = crate::models::cpu_util::max_abs_diff(&y, &r);
                assert!(d < 1e-5, "bias {} {act:?}: {d}", bias.is_some());
            }
        }
    }

    #[test]
    fn legacy_resize_doubles_with_the_tf1_pattern() {
        let dev = Device::Cpu;
        // One row 0, 10, 20: out = 0, 5, 10, 15, 20, 20.
        let x = Tensor::from_vec(vec![0f32, 10., 20.], (1, 1, 1, 3), &dev).unwrap();
        let y: Vec<f32> = resize_bilinear_legacy(&x, 1, 6)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(y, vec![0., 5., 10., 15., 20., 20.]);
        // 2×2 -> 4×4: separable, last row/column repeated.
        let x = Tensor::from_vec(vec![0f32, 4., 8., 12.], (1, 1, 2, 2), &dev).unwrap();
        let y: Vec<f32> = resize_bilinear_legacy(&x, 4, 4)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        #[rustfmt::skip]
        let want = vec![
            0., 2., 4., 4.,
            4., 6., 8., 8.,
            8., 10., 12., 12.,
            8., 10., 12., 12.,
        ];
        assert_eq!(y, want);
    }

    #[test]
    fn legacy_resize_x4_and_non_integer_ratios() {
        // ×4 from 2: src = d / 4; rows past the last input repeat it.
        let (lo, hi, w) = legacy_bilinear_taps(2, 8);
        assert_eq!(lo, vec![0, 0, 0, 0, 1, 1, 1, 1]);
        assert_eq!(hi, vec![1, 1, 1, 1, 1, 1, 1, 1]);
        assert_eq!(w, vec![0., 0.25, 0.5, 0.75, 0., 0.25, 0.5, 0.75]);
        // 3 -> 2: src = 0, 1.5.
        let (lo, hi, w) = legacy_bilinear_taps(3, 2);
        assert_eq!((lo, hi, w), (vec![0, 1], vec![1, 2], vec![0., 0.5]));
        // It differs from candle's half-pixel upsampling.
        let dev = Device::Cpu;
        let x = Tensor::from_vec(vec![0f32, 10., 20.], (1, 1, 1, 3), &dev).unwrap();
        let ours = resize_bilinear_legacy(&x, 1, 6).unwrap();
        let candle = x.upsample_bilinear2d(1, 6, false).unwrap();
        let d = crate::models::cpu_util::max_abs_diff(&ours, &candle);
        assert!(d > 1.0);
    }

    #[test]
    fn relu6_clamps() {
        let dev = Device::Cpu;
        let x = Tensor::from_vec(vec![-1f32, 0.5, 7.], 3, &dev).unwrap();
        assert_eq!(
            relu6(&x).unwrap().to_vec1::<f32>().unwrap(),
            vec![0., 0.5, 6.]
        );
    }

    #[test]
    fn cpu_resize_matches_the_tensor_formulation() {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 1.0, (2, 3, 7, 5), &dev).unwrap();
        for (blend, taps) in [
            (
                Blend::Legacy,
                legacy_bilinear_taps as fn(usize, usize) -> Taps,
            ),
            (Blend::Lerp, align_corners_taps),
        ] {
            for out in [(14, 10), (28, 20), (9, 3), (7, 5), (3, 11)] {
                let cpu = resize_cpu(&x, blend, taps, out).unwrap().unwrap();
                let reference = resize_tensors(&x, blend, taps, out).unwrap();
                assert_eq!(cpu.dims(), reference.dims());
                let d = crate::models::cpu_util::max_abs_diff(&cpu, &reference);
                assert!(d < 1e-6, "{blend:?} {out:?}: {d}");
            }
        }
    }

    #[test]
    fn align_corners_resize_keeps_the_corners() {
        let (lo, hi, w) = align_corners_taps(3, 5);
        assert_eq!(lo, vec![0, 0, 1, 1, 2]);
        assert_eq!(hi, vec![1, 1, 2, 2, 2]);
        assert_eq!(w, vec![0., 0.5, 0., 0.5, 0.]);
        let dev = Device::Cpu;
        let x = Tensor::from_vec(vec![0f32, 4., 8., 12.], (1, 1, 2, 2), &dev).unwrap();
        let y: Vec<f32> = resize_bilinear_align_corners(&x, 3, 3)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(y, vec![0., 2., 4., 4., 6., 8., 8., 10., 12.]);
        let p = Tensor::from_vec(vec![1f32, 2.], (1, 2, 1, 1), &dev).unwrap();
        let b = resize_bilinear_align_corners(&p, 2, 3).unwrap();
        assert_eq!(b.dims(), &[1, 2, 2, 3]);
        assert_eq!(b.sum_all().unwrap().to_scalar::<f32>().unwrap(), 18.0);
    }
}
