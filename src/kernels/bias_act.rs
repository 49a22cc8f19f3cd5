//! Per-channel bias plus activation, fused and in place on the CPU.
//!
//! A convolution computed as a matrix product leaves a fresh `[N, C, H, W]` tensor; adding
//! its bias and applying ReLU as candle tensor ops walks it twice more and allocates two
//! more tensors. [`bias_act`] does both in one pass over the product's own storage on the
//! CPU (the tensor is fresh, so nobody else sees the change) and falls back to the tensor
//! ops on other devices and dtypes.

use candle_core::{CpuStorage, InplaceOp1, InplaceOp2, Layout, Result, Tensor};
use rayon::prelude::*;

/// The activation after the bias.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    None,
    Relu,
    /// `min(max(x, 0), 6)` (MobileNet).
    Relu6,
}

impl Act {
    /// `dst[i] = act(src[i] · scale + shift)`, a loop per activation so each vectorises
    /// (a scale of 1 leaves `src[i]` exact, so this is also the plain bias).
    #[inline(always)]
    pub fn scale_shift_into(self, dst: &mut [f32], src: &[f32], scale: f32, shift: f32) {
        let pairs = dst.iter_mut().zip(src);
        match self {
            Act::None => pairs.for_each(|(d, s)| *d = *s * scale + shift),
            Act::Relu => pairs.for_each(|(d, s)| *d = (*s * scale + shift).max(0.0)),
            Act::Relu6 => pairs.for_each(|(d, s)| *d = (*s * scale + shift).clamp(0.0, 6.0)),
        }
    }

    /// The activation of one vector.
    #[inline(always)]
    pub(crate) fn simd<S: pulp::Simd>(self, simd: S, a: S::f32s) -> S::f32s {
        let zero = simd.splat_f32s(0.0);
        match self {
            Act::None => a,
            Act::Relu => simd.max_f32s(a, zero),
            Act::Relu6 => simd.min_f32s(simd.max_f32s(a, zero), simd.splat_f32s(6.0)),
        }
    }

    /// The activation as tensor ops.
    pub fn tensor(self, x: Tensor) -> Result<Tensor> {
        match self {
            Act::None => Ok(x),
            Act::Relu => x.relu(),
            Act::Relu6 => x.clamp(0f32, 6f32),
        }
    }
}

/// Per-channel bias values (`[C]`, f32 on the CPU) for [`bias_act`], with the tensor form
/// for other devices.
#[derive(Clone, Debug)]
pub struct Bias {
    values: Vec<f32>,
    /// `[1, C, 1, 1]`.
    tensor: Tensor,
}

impl Bias {
    /// `bias` is `[C]` (any device).
    pub fn new(bias: &Tensor) -> Result<Self> {
        let c = bias.dims1()?;
        Ok(Self {
            values: bias.to_dtype(candle_core::DType::F32)?.to_vec1()?,
            tensor: bias.reshape((1, c, 1, 1))?,
        })
    }

    /// The values, one per channel.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// The `[1, C, 1, 1]` tensor.
    pub fn tensor(&self) -> &Tensor {
        &self.tensor
    }
}

/// The loop of [`InPlace`], run through [`pulp`]'s dispatch so it is compiled for the CPU's
/// widest vectors (AVX-512 / AVX2).
struct BiasActLoop<'a> {
    data: &'a mut [f32],
    plane: usize,
    planes: usize,
    /// The index of `data`'s first plane in the whole tensor (for its channel).
    first: usize,
    channels: usize,
    bias: Option<&'a [f32]>,
    act: Act,
}

impl pulp::WithSimd for BiasActLoop<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let act = self.act;
        for (i, chunk) in self
            .data
            .chunks_mut(self.plane)
            .enumerate()
            .take(self.planes)
        {
            let b = self
                .bias
                .map_or(0.0, |b| b[(self.first + i) % self.channels]);
            // Separate loops so each vectorises without a branch inside.
            match act {
                Act::None => chunk.iter_mut().for_each(|v| *v += b),
                Act::Relu => chunk.iter_mut().for_each(|v| *v = (*v + b).max(0.0)),
                Act::Relu6 => chunk.iter_mut().for_each(|v| *v = (*v + b).clamp(0.0, 6.0)),
            }
        }
    }
}

struct InPlace<'a> {
    bias: Option<&'a [f32]>,
    act: Act,
}

impl InplaceOp1 for InPlace<'_> {
    fn name(&self) -> &'static str {
        "bias-act"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> Result<()> {
        crate::kernels::enter("bias-act")?;
        let (n, c, h, w) = layout.shape().dims4()?;
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("bias-act: tensor must be contiguous");
        };
        let CpuStorage::F32(data) = storage else {
            candle_core::bail!("bias-act: tensor must be f32");
        };
        let data = data
            .get_mut(start..end)
            .ok_or_else(|| candle_core::Error::Msg("bias-act: storage too short".into()))?;
        if let Some(b) = self.bias {
            if b.len() != c {
                candle_core::bail!("bias-act: {} bias values for {c} channels", b.len());
            }
        }
        let plane = h * w;
        if plane == 0 {
            return Ok(());
        }
        // Groups of whole planes, one per task of the pool.
        let k = crate::kernels::cpu_util::planes_per_task(plane, n * c);
        let dispatcher = crate::kernels::cpu_util::Dispatcher::new();
        let data = &mut data[..(n * c * plane).min(end - start)];
        // The planes of `chunk`, the first being plane `first` of the tensor.
        let run = |chunk: &mut [f32], first: usize| {
            dispatcher.run(BiasActLoop {
                planes: chunk.len() / plane,
                data: chunk,
                plane,
                first,
                channels: c,
                bias: self.bias,
                act: self.act,
            })
        };
        if data.len() <= k.saturating_mul(plane) {
            run(data, 0);
        } else {
            data.par_chunks_mut(k * plane)
                .enumerate()
                .for_each(|(t, chunk)| run(chunk, t * k));
        }
        Ok(())
    }
}

/// `act(y + bias)` for a freshly computed `[N, C, H, W]` tensor `y` (a convolution's
/// output that no other tensor shares): in place on the CPU for contiguous f32 tensors,
/// tensor ops otherwise.
pub fn bias_act(y: Tensor, bias: Option<&Bias>, act: Act) -> Result<Tensor> {
    let fast = super::custom_cpu(&y) && y.is_contiguous() && y.rank() == 4;
    if fast {
        y.inplace_op1(&InPlace {
            bias: bias.map(|b| b.values.as_slice()),
            act,
        })?;
        return Ok(y);
    }
    let y = match bias {
        Some(b) => y.broadcast_add(&b.tensor)?,
        None => y,
    };
    act.tensor(y)
}

/// `dst += nearest_upsample(src, factor)` and optionally ReLU, in place (`factor` 1 is a
/// plain sum).
struct AddInPlace {
    factor: usize,
    relu: bool,
}

impl InplaceOp2 for AddInPlace {
    fn name(&self) -> &'static str {
        "add-in-place"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        crate::kernels::enter("add-in-place")?;
        let (Some((a0, a1)), Some((b0, b1))) = (l1.contiguous_offsets(), l2.contiguous_offsets())
        else {
            candle_core::bail!("add: tensors must be contiguous");
        };
        let (CpuStorage::F32(dst), CpuStorage::F32(src)) = (s1, s2) else {
            candle_core::bail!("add: tensors must be f32");
        };
        let (Some(dst), Some(src)) = (dst.get_mut(a0..a1), src.get(b0..b1)) else {
            candle_core::bail!("add: storage too short");
        };
        let (n, c, h, w) = l1.shape().dims4()?;
        let (sn, sc, sh, sw) = l2.shape().dims4()?;
        let f = self.factor.max(1);
        if (sn, sc, sh * f, sw * f) != (n, c, h, w) {
            candle_core::bail!(
                "add: {:?} upsampled by {f} does not match {:?}",
                l2.shape().dims(),
                l1.shape().dims()
            );
        }
        if w == 0 {
            return Ok(());
        }
        // Groups of whole planes, one per task of the pool.
        let k = crate::kernels::cpu_util::planes_per_task(h * w, n * c);
        let dispatcher = crate::kernels::cpu_util::Dispatcher::new();
        let run = |dst: &mut [f32], src: &[f32]| {
            dispatcher.run(AddLoop {
                dst,
                src,
                factor: f,
                relu: self.relu,
                rows: (h, w),
                src_rows: (sh, sw),
            })
        };
        if dst.len() <= k.saturating_mul(h * w) {
            run(dst, src);
        } else {
            dst.par_chunks_mut(k * h * w)
                .zip(src.par_chunks(k * sh * sw))
                .for_each(|(dst, src)| run(dst, src));
        }
        Ok(())
    }
}

/// The loop of [`AddInPlace`], run through [`pulp`]'s dispatch (widest vectors).
struct AddLoop<'a> {
    dst: &'a mut [f32],
    src: &'a [f32],
    factor: usize,
    relu: bool,
    /// Destination `(H, W)` per plane.
    rows: (usize, usize),
    /// Source `(H, W)` per plane.
    src_rows: (usize, usize),
}

impl pulp::WithSimd for AddLoop<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let AddLoop {
            dst,
            src,
            factor: f,
            relu,
            rows: (h, w),
            src_rows: (sh, sw),
        } = self;
        match (f, relu) {
            (1, true) => dst
                .iter_mut()
                .zip(src)
                .for_each(|(d, s)| *d = (*d + *s).max(0.0)),
            (1, false) => dst.iter_mut().zip(src).for_each(|(d, s)| *d += *s),
            _ => {
                for (r, row) in dst.chunks_mut(w).enumerate() {
                    // Output row r of plane p reads source row (r mod h) / f of plane p.
                    let (p, y) = (r / h, r % h);
                    let s = &src[(p * sh + y / f) * sw..(p * sh + y / f + 1) * sw];
                    for (d, v) in row.chunks_mut(f).zip(s) {
                        if relu {
                            d.iter_mut().for_each(|d| *d = (*d + *v).max(0.0));
                        } else {
                            d.iter_mut().for_each(|d| *d += *v);
                        }
                    }
                }
            }
        }
    }
}

fn in_place_ok(y: &Tensor, other: &Tensor) -> bool {
    super::custom_cpu(y)
        && super::custom_cpu(other)
        && y.rank() == 4
        && other.rank() == 4
        && y.is_contiguous()
        && other.is_contiguous()
}

/// `relu(y + residual)` for a freshly computed `y` (a residual block's last convolution,
/// shared with no other tensor): in place on the CPU, tensor ops otherwise.
pub fn add_relu(y: Tensor, residual: &Tensor) -> Result<Tensor> {
    add_upsampled(y, residual, 1, true)
}

/// `y + nearest_upsample(src, factor)` (then ReLU if `relu`) for a fresh `y` (see
/// [`add_relu`]): HRNet's fuse sums without materialising the up-sampled branch.
pub fn add_upsampled(y: Tensor, src: &Tensor, factor: usize, relu: bool) -> Result<Tensor> {
    if in_place_ok(&y, src) {
        y.inplace_op2(src, &AddInPlace { factor, relu })?;
        return Ok(y);
    }
    let src = if factor > 1 {
        let (_, _, h, w) = src.dims4()?;
        src.upsample_nearest2d(h * factor, w * factor)?
    } else {
        src.clone()
    };
    let sum = (y + src)?;
    if relu {
        sum.relu()
    } else {
        Ok(sum)
    }
}

/// `nearest_upsample(src, factor)` as a new tensor: on the CPU a zeroed map and one
/// [`add_upsampled`] pass, both in parallel (candle's `upsample_nearest2d` runs on one
/// thread), tensor ops otherwise.
pub fn upsampled(src: &Tensor, factor: usize) -> Result<Tensor> {
    let (n, c, h, w) = src.dims4()?;
    let (ho, wo) = (h * factor, w * factor);
    if !(super::custom_cpu(src) && src.is_contiguous()) {
        return src.upsample_nearest2d(ho, wo);
    }
    let zero = Tensor::from_vec(
        crate::kernels::cpu_util::zeros(n * c * ho * wo),
        (n, c, ho, wo),
        src.device(),
    )?;
    add_upsampled(zero, src, factor, false)
}

/// `act(x · scale[c] + shift[c])` into a new tensor, one pass.
struct ScaleShift<'a> {
    scale: &'a [f32],
    shift: &'a [f32],
    act: Act,
}

/// The loop of [`ScaleShift`], run through [`pulp`]'s dispatch (widest vectors).
struct ScaleShiftLoop<'a> {
    out: &'a mut [f32],
    x: &'a [f32],
    plane: usize,
    scale: &'a [f32],
    shift: &'a [f32],
    act: Act,
}

impl pulp::WithSimd for ScaleShiftLoop<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let channels = self.scale.len();
        for (i, (o, x)) in self
            .out
            .chunks_mut(self.plane)
            .zip(self.x.chunks(self.plane))
            .enumerate()
        {
            let (a, b) = (self.scale[i % channels], self.shift[i % channels]);
            self.act.scale_shift_into(o, x, a, b);
        }
    }
}

impl candle_core::CustomOp1 for ScaleShift<'_> {
    fn name(&self) -> &'static str {
        "scale-shift-act"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> Result<(CpuStorage, candle_core::Shape)> {
        crate::kernels::enter("scale-shift-act")?;
        let (_, c, h, w) = layout.shape().dims4()?;
        let x = crate::kernels::cpu_util::f32_input(storage, layout, "scale-shift")?;
        if self.scale.len() != c || self.shift.len() != c {
            candle_core::bail!(
                "scale-shift: {} scales and {} shifts for {c} channels",
                self.scale.len(),
                self.shift.len()
            );
        }
        // Every value is written from its input (one pass, on this thread).
        let out = crate::kernels::cpu_util::fully_written(x.len(), |out| {
            if h * w > 0 {
                crate::kernels::cpu_util::dispatch(ScaleShiftLoop {
                    out,
                    x,
                    plane: h * w,
                    scale: self.scale,
                    shift: self.shift,
                    act: self.act,
                });
            }
            Ok(())
        })?;
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

/// `act(x · scale + shift)` with per-channel `scale` and `shift` (a `[N, C, H, W]` tensor
/// `x`, kept unchanged): one pass into a new tensor on the CPU (f32), tensor ops otherwise.
pub fn scale_shift_act(x: &Tensor, scale: &Bias, shift: &Bias, act: Act) -> Result<Tensor> {
    if super::custom_cpu(x) && x.rank() == 4 {
        return x.contiguous()?.apply_op1_no_bwd(&ScaleShift {
            scale: &scale.values,
            shift: &shift.values,
            act,
        });
    }
    act.tensor(
        x.broadcast_mul(&scale.tensor)?
            .broadcast_add(&shift.tensor)?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn matches_the_tensor_ops() {
        let dev = Device::Cpu;
        let y = Tensor::arange(-20f32, 28.0, &dev)
            .unwrap()
            .affine(0.5, 0.0)
            .unwrap()
            .reshape((2, 3, 2, 4))
            .unwrap();
        let b = Tensor::new(&[0.5f32, -1.0, 3.0], &dev).unwrap();
        let bias = Bias::new(&b).unwrap();
        for act in [Act::None, Act::Relu, Act::Relu6] {
            let want = act
                .tensor(y.broadcast_add(&b.reshape((1, 3, 1, 1)).unwrap()).unwrap())
                .unwrap();
            let got = bias_act(y.copy().unwrap(), Some(&bias), act).unwrap();
            let d = crate::kernels::cpu_util::max_abs_diff(&got, &want);
            assert_eq!(d, 0.0, "{act:?}");
        }
        let r = y.affine(-0.7, 0.3).unwrap();
        let want = (&y + &r).unwrap().relu().unwrap();
        let got = add_relu(y.copy().unwrap(), &r).unwrap();
        let diff = (got - want).unwrap().abs().unwrap().max_all().unwrap();
        assert_eq!(diff.to_scalar::<f32>().unwrap(), 0.0);
        let low = r
            .narrow(2, 0, 1)
            .unwrap()
            .narrow(3, 0, 2)
            .unwrap()
            .contiguous()
            .unwrap();
        for relu in [false, true] {
            let up = low.upsample_nearest2d(2, 4).unwrap();
            let want = (&y + up).unwrap();
            let want = if relu { want.relu().unwrap() } else { want };
            let got = add_upsampled(y.copy().unwrap(), &low, 2, relu).unwrap();
            let diff = (got - want).unwrap().abs().unwrap().max_all().unwrap();
            assert_eq!(diff.to_scalar::<f32>().unwrap(), 0.0, "relu {relu}");
        }
        assert!(add_upsampled(y.copy().unwrap(), &low, 3, false).is_err());
        // Wrong channel count: an error, not a panic.
        let short = Bias::new(&Tensor::new(&[1f32, 2.0], &dev).unwrap()).unwrap();
        assert!(bias_act(y.copy().unwrap(), Some(&short), Act::Relu).is_err());
    }

    /// Large enough to be split into tasks of whole planes (several per task, channels
    /// crossing task boundaries), on a pool of two threads.
    #[test]
    fn split_over_the_pool_matches_the_tensor_ops() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        pool.install(|| {
            let dev = Device::Cpu;
            // 2·37 planes of 24×20 (480 values: 69 planes per task), and 4 of 200×200.
            for (c, h, w) in [(37, 24, 20), (2, 200, 200)] {
                let y = Tensor::randn(0f32, 1.0, (2, c, h, w), &dev).unwrap();
                let b = Tensor::randn(0f32, 1.0, c, &dev).unwrap();
                let bias = Bias::new(&b).unwrap();
                let want = y
                    .broadcast_add(&b.reshape((1, c, 1, 1)).unwrap())
                    .unwrap()
                    .relu()
                    .unwrap();
                let got = bias_act(y.copy().unwrap(), Some(&bias), Act::Relu).unwrap();
                assert_eq!(crate::kernels::cpu_util::max_abs_diff(&got, &want), 0.0);
                let low = Tensor::randn(0f32, 1.0, (2, c, h / 4, w / 4), &dev).unwrap();
                let up = low.upsample_nearest2d(h, w).unwrap();
                let got = add_upsampled(y.copy().unwrap(), &low, 4, true).unwrap();
                let want = (&y + &up).unwrap().relu().unwrap();
                assert_eq!(crate::kernels::cpu_util::max_abs_diff(&got, &want), 0.0);
                let got = upsampled(&low, 4).unwrap();
                assert_eq!(crate::kernels::cpu_util::max_abs_diff(&got, &up), 0.0);
                assert!(crate::kernels::cpu_util::zeros(2 * c * h * w)
                    .iter()
                    .all(|v| *v == 0.0));
            }
        });
    }
}
