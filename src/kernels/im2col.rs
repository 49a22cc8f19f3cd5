//! Convolution as im2col + one matrix product on the CPU.
//!
//! candle's CPU `conv2d` (0.11) runs 3×3 kernels through a tiled im2col at roughly a
//! tenth of its matmul speed. [`Im2Col`] unfolds an NCHW input into the
//! `[N, C·KH·KW, HO·WO]` column matrix (rows in `(c, ky, kx)` order, matching a
//! `[O, C, KH, KW]` weight flattened to `[O, C·KH·KW]`), so the convolution becomes one
//! `[O, C·K·K] × [C·K·K, HO·WO]` product per image through candle's gemm. Zero padding is
//! symmetric (`pad` on every side), as in PyTorch's `Conv2d(padding=pad)`. Large inputs are
//! unfolded in bands of output rows whose columns fit in about an L2 cache. Transposed
//! convolutions ([`conv_transpose2d`]) are one product followed by a fold (col2im). Other
//! devices keep candle's own kernels (the functions pick).

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// The unfold op for a square `kernel`, `stride` and zero `pad`, producing the columns of
/// output rows `rows.0..rows.1` only (a band), so that large inputs are processed in pieces
/// that stay in cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Im2Col {
    pub kernel: usize,
    pub stride: usize,
    pub pad: usize,
    /// Output rows `[start, end)`.
    pub rows: (usize, usize),
}

/// Column-matrix elements per band (1 MiB of f32: about an L2 cache).
const BAND_ELEMENTS: usize = 1 << 18;

impl Im2Col {
    /// Output size along an axis of `size` input cells.
    pub fn out_size(&self, size: usize) -> Option<usize> {
        (size + 2 * self.pad)
            .checked_sub(self.kernel)
            .map(|d| d / self.stride.max(1) + 1)
    }
}

/// Output cells `o` in `0..out` whose input cell `o · s + j − pad` lies in `0..size`.
fn valid_range(size: usize, out: usize, s: usize, j: usize, pad: usize) -> (usize, usize) {
    let lo = pad.saturating_sub(j).div_ceil(s);
    let hi = if size + pad > j {
        (size - 1 + pad - j) / s + 1
    } else {
        0
    };
    (lo.min(out), hi.min(out))
}

impl CustomOp1 for Im2Col {
    fn name(&self) -> &'static str {
        "im2col"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        crate::kernels::enter("im2col")?;
        let (n, c, h, w) = layout.shape().dims4()?;
        let x = crate::kernels::cpu_util::f32_input(storage, layout, "im2col")?;
        let (k, s, p) = (self.kernel, self.stride.max(1), self.pad);
        let (Some(ho), Some(wo)) = (self.out_size(h), self.out_size(w)) else {
            candle_core::bail!("im2col: kernel {k} larger than the padded input {h}x{w}");
        };
        let (r0, r1) = (self.rows.0.min(ho), self.rows.1.min(ho));
        let plane = r1.saturating_sub(r0) * wo;
        let mut out = crate::kernels::cpu_util::zeros(n * c * k * k * plane);
        if plane > 0 && h * w > 0 {
            out.par_chunks_mut(plane).enumerate().for_each(|(row, o)| {
                // row = ((b · C + ch) · K + i) · K + j
                let bc = row / (k * k);
                if let Some(xin) = x.get(bc * h * w..(bc + 1) * h * w) {
                    let g = Unfold {
                        size: (h, w),
                        out_size: (ho, wo),
                        stride: s,
                        pad: (p, p),
                        rows: (r0, r1),
                    };
                    g.row(xin, ((row / k) % k, row % k), o);
                }
            });
        }
        Ok((CpuStorage::F32(out), Shape::from((n, c * k * k, plane))))
    }
}

/// The geometry of an unfold: input and output sizes, stride, the top and
/// left zero padding, and the band of output rows `[rows.0, rows.1)` to unfold.
#[derive(Clone, Copy, Debug)]
struct Unfold {
    size: (usize, usize),
    out_size: (usize, usize),
    stride: usize,
    pad: (usize, usize),
    rows: (usize, usize),
}

impl Unfold {
    /// Writes the column-matrix row of kernel tap `(i, j)` for one input plane `xin` into
    /// `o` (`(rows.1 − rows.0) · WO` values); cells that read the padding are left as
    /// they are (zero in a fresh buffer).
    fn row(&self, xin: &[f32], (i, j): (usize, usize), o: &mut [f32]) {
        let ((h, w), (ho, wo)) = (self.size, self.out_size);
        let (s, (pt, pl), (r0, r1)) = (self.stride, self.pad, self.rows);
        let (lo, hi) = valid_range(w, wo, s, j, pl);
        if lo >= hi {
            return;
        }
        let (ylo, yhi) = valid_range(h, ho, s, i, pt);
        for oy in ylo.max(r0)..yhi.min(r1) {
            let iy = oy * s + i - pt;
            let in_row = &xin[iy * w..(iy + 1) * w];
            let at = (oy - r0) * wo;
            let out_row = &mut o[at + lo..at + hi];
            let x0 = lo * s + j - pl;
            if s == 1 {
                out_row.copy_from_slice(&in_row[x0..x0 + (hi - lo)]);
            } else if s == 2 {
                // Every other value, as pairs (vectorises as shuffles; a strided iterator
                // stays scalar): `hi − lo − 1` whole pairs, then the last value alone.
                let n = hi - lo;
                let src = &in_row[x0..x0 + 2 * n - 1];
                let pairs = src.chunks_exact(2);
                let last = pairs.remainder().first().copied();
                let (body, tail) = out_row.split_at_mut(n - 1);
                for (ov, pair) in body.iter_mut().zip(pairs) {
                    *ov = pair[0];
                }
                if let (Some(o), Some(v)) = (tail.first_mut(), last) {
                    *o = v;
                }
            } else {
                for (ov, iv) in out_row.iter_mut().zip(in_row[x0..].iter().step_by(s)) {
                    *ov = *iv;
                }
            }
        }
    }
}

/// The largest `C·K·K` for which [`SmallConv`] replaces im2col + gemm: its register tiles
/// read the column matrix directly, which pays while a tile's `C·K·K` rows stay in the
/// first-level cache.
pub const SMALL_CONV_MAX_DEPTH: usize = 256;

/// A convolution with few input channels (`C·K·K` ≤ [`SMALL_CONV_MAX_DEPTH`], e.g. a
/// network's first 3×3 conv on RGB, 27), its bias and activation: band by band, the
/// band's column matrix is unfolded into a scratch buffer and multiplied straight into the
/// output by [`crate::kernels::pointwise::panel_product`] (no gemm packing, no separate bias
/// pass, no concatenation of bands). Padding may differ on the two sides (TF `SAME`).
#[derive(Clone, Debug)]
pub struct SmallConv {
    /// `[O, C·K·K]` packed for the panel product.
    packed: Vec<f32>,
    out_channels: usize,
    in_channels: usize,
    kernel: usize,
    stride: usize,
    /// One value per output channel (empty: none).
    bias: Vec<f32>,
    act: crate::kernels::bias_act::Act,
}

impl SmallConv {
    /// `weight` is `[O, C, K, K]` on the CPU (f32); `bias` `[O]`. `None` when the kernel
    /// is not square or too deep for this path.
    pub fn new(
        weight: &Tensor,
        bias: Option<&Tensor>,
        stride: usize,
        act: crate::kernels::bias_act::Act,
    ) -> Result<Option<Self>> {
        let (o, c, kh, kw) = weight.dims4()?;
        let depth = c * kh * kw;
        if kh != kw
            || depth == 0
            || depth > SMALL_CONV_MAX_DEPTH
            || o == 0
            || !super::custom_cpu(weight)
        {
            return Ok(None);
        }
        let values: Vec<f32> = weight.flatten_all()?.to_vec1()?;
        let bias = match bias {
            Some(b) => b.to_dtype(candle_core::DType::F32)?.to_vec1()?,
            None => Vec::new(),
        };
        if !bias.is_empty() && bias.len() != o {
            candle_core::bail!("conv: {} bias values for {o} output channels", bias.len());
        }
        Ok(Some(Self {
            packed: crate::kernels::pointwise::pack_weights(&values, o, depth),
            out_channels: o,
            in_channels: c,
            kernel: kh,
            stride: stride.max(1),
            bias,
            act,
        }))
    }

    /// `act(x ⋆ W + b)` for `x` `[N, C, H, W]` (f32, CPU) with `pad` = (top, bottom) and
    /// (left, right) zero padding.
    pub fn forward(&self, x: &Tensor, pad: ((usize, usize), (usize, usize))) -> Result<Tensor> {
        let y = x
            .contiguous()?
            .apply_op1_no_bwd(&SmallConvOp { conv: self, pad })?;
        crate::kernels::flops::add_conv(y.elem_count(), self.in_channels, self.kernel, self.kernel);
        Ok(y)
    }
}

struct SmallConvOp<'a> {
    conv: &'a SmallConv,
    pad: ((usize, usize), (usize, usize)),
}

impl CustomOp1 for SmallConvOp<'_> {
    fn name(&self) -> &'static str {
        "small-conv"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        crate::kernels::enter("small-conv")?;
        let cv = self.conv;
        let (n, c, h, w) = layout.shape().dims4()?;
        if c != cv.in_channels {
            candle_core::bail!(
                "conv: input has {c} channels, the kernel {}",
                cv.in_channels
            );
        }
        let x = crate::kernels::cpu_util::f32_input(storage, layout, "conv")?;
        let (k, s, o) = (cv.kernel, cv.stride, cv.out_channels);
        let ((pt, pb), (pl, pr)) = self.pad;
        let (Some(ho), Some(wo)) = (
            (h + pt + pb).checked_sub(k).map(|d| d / s + 1),
            (w + pl + pr).checked_sub(k).map(|d| d / s + 1),
        ) else {
            candle_core::bail!("conv: kernel {k} larger than the padded input {h}x{w}");
        };
        let mut out = crate::kernels::cpu_util::zeros(n * o * ho * wo);
        if out.is_empty() {
            return Ok((CpuStorage::F32(out), Shape::from((n, o, ho, wo))));
        }
        let depth = c * k * k;
        // Output rows per band: the band's column matrix about an L2 cache.
        let band = (BAND_ELEMENTS / (depth * wo)).clamp(1, ho);
        let mut cols = Vec::new();
        for (b, out_image) in out.chunks_mut(o * ho * wo).enumerate() {
            let image = &x[b * c * h * w..(b + 1) * c * h * w];
            for r0 in (0..ho).step_by(band) {
                let r1 = (r0 + band).min(ho);
                let plane = (r1 - r0) * wo;
                cols.clear();
                cols.resize(depth * plane, 0f32);
                let g = Unfold {
                    size: (h, w),
                    out_size: (ho, wo),
                    stride: s,
                    pad: (pt, pl),
                    rows: (r0, r1),
                };
                cols.par_chunks_mut(plane)
                    .enumerate()
                    .for_each(|(row, dst)| {
                        let ch = row / (k * k);
                        g.row(
                            &image[ch * h * w..(ch + 1) * h * w],
                            ((row / k) % k, row % k),
                            dst,
                        );
                    });
                // Output channels in groups that share out the threads.
                let threads = rayon::current_num_threads().max(1);
                let tile = crate::kernels::pointwise::OB;
                let group = o.div_ceil(threads).div_ceil(tile) * tile;
                let packed_group = group * depth;
                out_image
                    .par_chunks_mut(group * ho * wo)
                    .enumerate()
                    .try_for_each(|(gi, dst)| {
                        let rows = dst.len() / (ho * wo);
                        let o0 = gi * group;
                        crate::kernels::pointwise::panel_product(crate::kernels::pointwise::Panel {
                            out: &mut dst[r0 * wo..],
                            out_stride: ho * wo,
                            rows,
                            cols: plane,
                            x: &cols,
                            x_stride: plane,
                            k: depth,
                            x2: &[],
                            k2: 0,
                            packed: &cv.packed[gi * packed_group..],
                            w_stride: depth * tile,
                            part: crate::kernels::pointwise::Part::Whole,
                            bias: cv.bias.get(o0..).unwrap_or(&[]),
                            act: cv.act,
                            res: None,
                        })
                    })?;
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((n, o, ho, wo))))
    }
}

/// `x` (`[N, C, H, W]`, f32) convolved with `weight` (`[O, C, K, K]`) at `stride` with zero
/// `pad`: im2col + matmul on the CPU, candle's `conv2d` elsewhere. No bias.
pub fn conv2d(x: &Tensor, weight: &Tensor, stride: usize, pad: usize) -> Result<Tensor> {
    let y = conv2d_uncounted(x, weight, stride, pad)?;
    let (_, c, kh, kw) = weight.dims4()?;
    crate::kernels::flops::add_conv(y.elem_count(), c, kh, kw);
    Ok(y)
}

fn conv2d_uncounted(x: &Tensor, weight: &Tensor, stride: usize, pad: usize) -> Result<Tensor> {
    if !super::custom_cpu(x) {
        return x.conv2d(weight, pad, stride, 1, 1);
    }
    let (o, c, kh, kw) = weight.dims4()?;
    let (n, xc, h, w) = x.dims4()?;
    if kh != kw || c != xc {
        return x.conv2d(weight, pad, stride, 1, 1);
    }
    let whole = Im2Col {
        kernel: kh,
        stride,
        pad,
        rows: (0, usize::MAX),
    };
    let (Some(ho), Some(wo)) = (whole.out_size(h), whole.out_size(w)) else {
        candle_core::bail!("conv2d: kernel {kh} larger than the padded input {h}x{w}");
    };
    let x = x.contiguous()?;
    let w2 = weight.reshape((o, c * kh * kw))?;
    // Output rows per band, so that one band's columns stay about cache-sized.
    let band = (BAND_ELEMENTS / (c * kh * kw * wo).max(1)).max(1);
    if band >= ho {
        let cols = x.apply_op1_no_bwd(&whole)?;
        return w2.broadcast_matmul(&cols)?.reshape((n, o, ho, wo));
    }
    let parts = (0..ho)
        .step_by(band)
        .map(|r0| {
            let op = Im2Col {
                rows: (r0, (r0 + band).min(ho)),
                ..whole
            };
            w2.broadcast_matmul(&x.apply_op1_no_bwd(&op)?)
        })
        .collect::<Result<Vec<_>>>()?;
    Tensor::cat(&parts, 2)?.reshape((n, o, ho, wo))
}

/// The fold (col2im) op of a transposed convolution: sums the `[N, O·K·K, H·W]` products
/// of every input cell and kernel tap into the `[N, O, HO, WO]` output,
/// `out[o, y·s + i − pad, x·s + j − pad] += cols[(o·K + i)·K + j, y·W + x]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Col2Im {
    out_channels: usize,
    kernel: usize,
    stride: usize,
    pad: usize,
    /// Input `(H, W)`.
    input: (usize, usize),
    /// Output `(HO, WO)`.
    output: (usize, usize),
}

impl CustomOp1 for Col2Im {
    fn name(&self) -> &'static str {
        "col2im"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        crate::kernels::enter("col2im")?;
        let (n, rows, cells) = layout.shape().dims3()?;
        let (o, k, s, p) = (self.out_channels, self.kernel, self.stride.max(1), self.pad);
        let ((h, w), (ho, wo)) = (self.input, self.output);
        if rows != o * k * k || cells != h * w {
            candle_core::bail!("col2im: columns {rows}x{cells} for {o}x{k}x{k} and {h}x{w}");
        }
        let cols = crate::kernels::cpu_util::f32_input(storage, layout, "col2im")?;
        let mut out = crate::kernels::cpu_util::zeros(n * o * ho * wo);
        if ho * wo > 0 && cells > 0 {
            out.par_chunks_mut(ho * wo)
                .enumerate()
                .for_each(|(bo, plane)| {
                    let taps = k * k * cells;
                    let Some(src) = cols.get(bo * taps..(bo + 1) * taps) else {
                        return;
                    };
                    for i in 0..k {
                        // Input rows y with 0 ≤ y·s + i − p < HO.
                        let (ylo, yhi) = valid_range(ho, h, s, i, p);
                        for j in 0..k {
                            let (xlo, xhi) = valid_range(wo, w, s, j, p);
                            if xlo >= xhi {
                                continue;
                            }
                            let tap = &src[(i * k + j) * cells..(i * k + j + 1) * cells];
                            for y in ylo..yhi {
                                let oy = y * s + i - p;
                                let row = &tap[y * w + xlo..y * w + xhi];
                                let x0 = xlo * s + j - p;
                                let dst = &mut plane[oy * wo + x0..(oy + 1) * wo];
                                for (d, v) in dst.iter_mut().step_by(s).zip(row) {
                                    *d += *v;
                                }
                            }
                        }
                    }
                });
        }
        Ok((CpuStorage::F32(out), Shape::from((n, o, ho, wo))))
    }
}

/// `x` (`[N, I, H, W]`, f32) through a transposed convolution with `weight`
/// (`[I, O, K, K]`, PyTorch's layout), `stride`, `pad` and `output_pad`, no bias: one
/// `[O·K·K, I] × [I, H·W]` product and a fold on the CPU, candle's `conv_transpose2d`
/// elsewhere.
pub fn conv_transpose2d(
    x: &Tensor,
    weight: &Tensor,
    stride: usize,
    pad: usize,
    output_pad: usize,
) -> Result<Tensor> {
    let (i, o, kh, kw) = weight.dims4()?;
    let (n, xc, h, w) = x.dims4()?;
    // Every input cell meets every output channel's K×K taps.
    crate::kernels::flops::add_multiply_adds(n * xc * h * w * o * kh * kw);
    if !super::custom_cpu(x) || kh != kw || i != xc {
        return x.conv_transpose2d(weight, pad, output_pad, stride, 1);
    }
    let size = |d: usize| ((d.max(1) - 1) * stride + kh + output_pad).checked_sub(2 * pad);
    let (Some(ho), Some(wo)) = (size(h), size(w)) else {
        candle_core::bail!("conv_transpose2d: padding {pad} larger than the output");
    };
    let cols = weight
        .reshape((i, o * kh * kw))?
        .t()?
        .contiguous()?
        .broadcast_matmul(&x.contiguous()?.reshape((n, i, h * w))?)?;
    cols.contiguous()?.apply_op1_no_bwd(&Col2Im {
        out_channels: o,
        kernel: kh,
        stride: stride.max(1),
        pad,
        input: (h, w),
        output: (ho, wo),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// The fused shallow convolution against candle's conv2d in f64 on an explicitly padded
    /// input: asymmetric padding, strides 1 and 2, each activation, batch 2, inputs large
    /// enough to be cut into several bands, and one or two threads.
    #[test]
    fn small_conv_matches_candle() {
        use crate::kernels::bias_act::Act;
        let dev = Device::Cpu;
        // (n, c, o, k, s, h, w, pad)
        let cases = [
            (2, 3, 16, 3, 2, 19, 23, ((0, 1), (1, 1))),
            (1, 3, 7, 3, 1, 9, 5, ((1, 1), (1, 1))),
            (1, 2, 13, 5, 2, 12, 12, ((1, 2), (2, 1))),
            // 27 rows by 128 columns per output row: several bands.
            (1, 3, 8, 3, 1, 200, 128, ((1, 1), (1, 1))),
        ];
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            for &(n, c, o, k, s, h, w, pad) in &cases {
                let x = Tensor::randn(0f32, 1.0, (n, c, h, w), &dev).unwrap();
                let wt = Tensor::randn(0f32, 1.0, (o, c, k, k), &dev).unwrap();
                let b = Tensor::randn(0f32, 1.0, o, &dev).unwrap();
                let ((pt, pb), (pl, pr)) = pad;
                let padded = x
                    .pad_with_zeros(2, pt, pb)
                    .unwrap()
                    .pad_with_zeros(3, pl, pr)
                    .unwrap()
                    .to_dtype(candle_core::DType::F64)
                    .unwrap();
                let conv = padded
                    .conv2d(&wt.to_dtype(candle_core::DType::F64).unwrap(), 0, s, 1, 1)
                    .unwrap()
                    .broadcast_add(
                        &b.to_dtype(candle_core::DType::F64)
                            .unwrap()
                            .reshape((1, o, 1, 1))
                            .unwrap(),
                    )
                    .unwrap();
                for act in [Act::None, Act::Relu, Act::Relu6] {
                    let want = match act {
                        Act::None => conv.clone(),
                        Act::Relu => conv.relu().unwrap(),
                        Act::Relu6 => conv.clamp(0f64, 6f64).unwrap(),
                    };
                    let op = SmallConv::new(&wt, Some(&b), s, act).unwrap().unwrap();
                    let got = pool.install(|| op.forward(&x, pad)).unwrap();
                    assert_eq!(got.dims(), want.dims());
                    let d = (got.to_dtype(candle_core::DType::F64).unwrap() - &want)
                        .unwrap()
                        .abs()
                        .unwrap()
                        .max_all()
                        .unwrap()
                        .to_scalar::<f64>()
                        .unwrap();
                    assert!(
                        d < 1e-4,
                        "{n}x{c}->{o} k{k} s{s} {h}x{w} {pad:?} {act:?} threads {threads}: {d}"
                    );
                }
            }
        }
        // Too deep for the path, or not square: None.
        let deep = Tensor::zeros((4, 32, 3, 3), candle_core::DType::F32, &dev).unwrap();
        assert!(SmallConv::new(&deep, None, 1, Act::None).unwrap().is_none());
        let wide = Tensor::zeros((4, 3, 1, 3), candle_core::DType::F32, &dev).unwrap();
        assert!(SmallConv::new(&wide, None, 1, Act::None).unwrap().is_none());
    }

    #[test]
    fn matches_candle_conv2d() {
        let dev = Device::Cpu;
        for (k, s, p, h, w) in [
            (3, 1, 1, 7, 9),
            (3, 2, 1, 8, 6),
            (3, 2, 1, 7, 5),
            (1, 1, 0, 4, 5),
            (5, 1, 2, 6, 6),
            // Large enough to be split into bands.
            (3, 1, 1, 130, 700),
            (3, 2, 1, 131, 701),
        ] {
            let x = Tensor::randn(0f32, 1.0, (2, 3, h, w), &dev).unwrap();
            let wt = Tensor::randn(0f32, 1.0, (4, 3, k, k), &dev).unwrap();
            let want = x.conv2d(&wt, p, s, 1, 1).unwrap();
            let got = conv2d(&x, &wt, s, p).unwrap();
            assert_eq!(got.dims(), want.dims(), "k{k} s{s} p{p}");
            let d = crate::kernels::cpu_util::max_abs_diff(&got, &want);
            assert!(d < 1e-4, "k{k} s{s} p{p}: {d}");
        }
    }

    #[test]
    fn transposed_matches_candle() {
        let dev = Device::Cpu;
        for (k, s, p, op, h, w) in [(4, 2, 1, 0, 5, 7), (3, 2, 1, 1, 4, 6), (2, 2, 0, 0, 3, 3)] {
            let x = Tensor::randn(0f32, 1.0, (2, 5, h, w), &dev).unwrap();
            let wt = Tensor::randn(0f32, 1.0, (5, 3, k, k), &dev).unwrap();
            let want = x.conv_transpose2d(&wt, p, op, s, 1).unwrap();
            let got = conv_transpose2d(&x, &wt, s, p, op).unwrap();
            assert_eq!(got.dims(), want.dims(), "k{k}");
            let d = crate::kernels::cpu_util::max_abs_diff(&got, &want);
            assert!(d < 1e-4, "k{k} s{s} p{p}: {d}");
        }
    }
}
