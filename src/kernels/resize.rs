//! Two-tap bilinear resizes as the reference frameworks compute them: TensorFlow's legacy
//! `ResizeBilinear` and PyTorch's `align_corners=True` interpolation. One CPU pass per plane
//! (a custom op); the tensor formulation on other devices.

use candle_core::{Result, Tensor};

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
        crate::kernels::enter("resize-bilinear")?;
        use rayon::prelude::*;
        let (n, c, h, w) = layout.shape().dims4()?;
        let x = crate::kernels::cpu_util::f32_input(storage, layout, "resize")?;
        let (ho, wo) = (self.rows.0.len(), self.cols.0.len());
        let in_range = |t: &Taps, size: usize| t.0.iter().chain(&t.1).all(|&i| (i as usize) < size);
        if !in_range(&self.rows, h) || !in_range(&self.cols, w) {
            candle_core::bail!("resize: taps outside the {h}x{w} input");
        }
        let mut out = crate::kernels::cpu_util::zeros(n * c * ho * wo);
        if ho * wo > 0 && h * w > 0 {
            let dispatcher = crate::kernels::cpu_util::Dispatcher::new();
            out.par_chunks_mut(ho * wo)
                .zip(x.par_chunks(h * w))
                .for_each_init(Vec::new, |row, (o, input)| {
                    dispatcher.run(ResizePlane {
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
    if !super::custom_cpu(x) {
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
        let d = crate::kernels::cpu_util::max_abs_diff(&ours, &candle);
        assert!(d > 1.0);
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
                let d = crate::kernels::cpu_util::max_abs_diff(&cpu, &reference);
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
