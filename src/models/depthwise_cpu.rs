//! A direct CPU kernel for depthwise convolution (channel multiplier 1, TF `SAME` padding).
//!
//! candle has no depthwise fast path: its grouped convolution runs one convolution per
//! channel. This kernel pads each channel's plane once (split by column phase for strides
//! above 1) and sums every tap of a vector of outputs in a register. Other devices use the
//! tensor formulation in [`super::ops::DepthwiseSame`].

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape};
use rayon::prelude::*;

use super::cpu_util::{load, store};

use super::ops::same_padding;

/// The op: per-channel kernels `[C, KH, KW]`, stride.
#[derive(Clone, Debug)]
pub struct DepthwiseCpu {
    weight: Vec<f32>,
    channels: usize,
    kh: usize,
    kw: usize,
    stride: usize,
}

impl DepthwiseCpu {
    /// `weight` holds `channels * kh * kw` values, `[C, KH, KW]` row-major.
    pub fn new(
        weight: Vec<f32>,
        channels: usize,
        kh: usize,
        kw: usize,
        stride: usize,
    ) -> Result<Self> {
        if weight.len() != channels * kh * kw || kh == 0 || kw == 0 {
            candle_core::bail!(
                "depthwise kernel has {} values, expected {channels}x{kh}x{kw}",
                weight.len()
            );
        }
        Ok(Self {
            weight,
            channels,
            kh,
            kw,
            stride: stride.max(1),
        })
    }
}

/// One channel's plane, run through [`pulp`]'s dispatch so the loops are compiled for the
/// CPU's widest vectors (AVX-512 / AVX2); everything it calls is inlined into that context.
///
/// The plane is first copied into a zero-padded buffer split by column phase (`stride`
/// phases: `padded[q][r][i]` = padded input at row `r`, column `stride·i + q`), so that the
/// taps of a run of consecutive outputs are consecutive values. Each vector of outputs then
/// sums all `KH·KW` taps in a register and is stored once.
struct Plane<'a> {
    out: &'a mut [f32],
    input: &'a [f32],
    kernel: &'a [f32],
    kh: usize,
    kw: usize,
    stride: usize,
    size: (usize, usize),
    out_size: (usize, usize),
    /// Top and left SAME padding.
    pad: (usize, usize),
    /// The padded, phase-split plane (scratch).
    padded: &'a mut Vec<f32>,
}

impl pulp::WithSimd for Plane<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        let Plane {
            out,
            input,
            kernel,
            kh,
            kw,
            stride: s,
            size: (h, w),
            out_size: (ho, wo),
            pad: (pt, pl),
            padded,
        } = self;
        let lanes = S::F32_LANES;
        // Padded rows, and the width of one phase row: the outputs (at least one vector's
        // worth, so that every load is a whole vector) plus the taps' reach.
        let rows = (ho - 1) * s + kh;
        let pw = wo.max(lanes) + (kw - 1) / s + 1;
        let phase_len = rows * pw;
        padded.clear();
        padded.resize(s * phase_len, 0.0);
        for (y, row) in input.chunks_exact(w).take(h).enumerate() {
            let r = y + pt;
            if r >= rows {
                break;
            }
            if s == 1 {
                let at = r * pw + pl;
                let n = w.min(pw - pl);
                padded[at..at + n].copy_from_slice(&row[..n]);
            } else {
                // Input column x sits at padded column x + pl = s·i + q.
                for q in 0..s {
                    let first = (q + s - pl % s) % s;
                    let i0 = (first + pl) / s;
                    if i0 >= pw {
                        continue;
                    }
                    let dst =
                        &mut padded[q * phase_len + r * pw + i0..q * phase_len + (r + 1) * pw];
                    for (d, v) in dst.iter_mut().zip(row.iter().skip(first).step_by(s)) {
                        *d = *v;
                    }
                }
            }
        }
        let taps: Vec<S::f32s> = kernel.iter().map(|&k| simd.splat_f32s(k)).collect();
        // Vector starts: whole vectors, the last one moved back to end at `wo` (recomputing
        // a few outputs) so that no partial vector is needed unless the row is short.
        let starts = (0..wo.div_ceil(lanes)).map(|v| (v * lanes).min(wo.saturating_sub(lanes)));
        // Eight output rows at a time: eight independent chains of multiply-adds. A last
        // block of fewer rows computes the missing ones from the last padded row and drops
        // them, so that the inner loops have a fixed shape.
        const ROWS: usize = 8;
        let reach = (kw - 1) / s;
        for (block, out_rows) in out[..ho * wo].chunks_mut(ROWS * wo).enumerate() {
            let n = out_rows.len() / wo;
            for x0 in starts.clone() {
                let mut acc = [simd.splat_f32s(0.0); ROWS];
                for i in 0..kh {
                    for q in 0..s.min(kw) {
                        let row = |b: usize| {
                            let r = ((block * ROWS + b) * s + i).min(rows - 1);
                            let at = q * phase_len + r * pw + x0;
                            &padded[at..at + lanes + reach]
                        };
                        let src: [&[f32]; ROWS] = std::array::from_fn(row);
                        for j in (q..kw).step_by(s) {
                            let tap = taps[i * kw + j];
                            let o = j / s;
                            for (a, r) in acc.iter_mut().zip(src) {
                                *a = simd.mul_add_f32s(tap, load(simd, &r[o..o + lanes]), *a);
                            }
                        }
                    }
                }
                let len = lanes.min(wo - x0);
                for (b, a) in acc.iter().enumerate().take(n) {
                    let o = b * wo + x0;
                    store(simd, &mut out_rows[o..o + len], *a);
                }
            }
        }
    }
}

impl CustomOp1 for DepthwiseCpu {
    fn name(&self) -> &'static str {
        "depthwise-conv2d-same"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let (n, c, h, w) = layout.shape().dims4()?;
        if c != self.channels {
            candle_core::bail!(
                "depthwise: input has {c} channels, kernel {}",
                self.channels
            );
        }
        let x = super::cpu_util::f32_input(storage, layout, "depthwise")?;
        let s = self.stride;
        let (ho, wo) = (h.div_ceil(s), w.div_ceil(s));
        let (pt, _) = same_padding(h, self.kh, s);
        let (pl, _) = same_padding(w, self.kw, s);
        let (kh, kw) = (self.kh, self.kw);
        let mut out = vec![0f32; n * c * ho * wo];
        if ho * wo > 0 && h * w > 0 {
            let arch = pulp::Arch::new();
            out.par_chunks_mut(ho * wo)
                .zip(x.par_chunks(h * w))
                .enumerate()
                .for_each_init(Vec::new, |padded, (nc, (o, xin))| {
                    let ch = nc % c;
                    arch.dispatch(Plane {
                        out: o,
                        input: xin,
                        kernel: &self.weight[ch * kh * kw..(ch + 1) * kh * kw],
                        kh,
                        kw,
                        stride: s,
                        size: (h, w),
                        out_size: (ho, wo),
                        pad: (pt, pl),
                        padded,
                    })
                });
        }
        Ok((CpuStorage::F32(out), Shape::from((n, c, ho, wo))))
    }
}
