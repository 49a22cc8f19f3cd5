//! A direct CPU kernel for depthwise convolution (channel multiplier 1, TF `SAME` padding).
//!
//! candle has no depthwise fast path: its grouped convolution runs one convolution per
//! channel. This kernel walks each channel's plane once per kernel tap and accumulates whole
//! output rows (`out[y, x0..x1] += w * in[y', x0'..x1']`), which vectorises and stays in
//! cache. Other devices use the tensor formulation in [`super::ops::DepthwiseSame`].

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape};
use rayon::prelude::*;

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

/// Output columns `ox` whose input column `ox * s + j - pl` lies in `0..w`.
fn valid_cols(w: usize, wo: usize, s: usize, j: usize, pl: usize) -> (usize, usize) {
    // ox * s + j >= pl  and  ox * s + j - pl <= w - 1
    let lo = pl.saturating_sub(j).div_ceil(s);
    let hi = if w + pl > j {
        (w - 1 + pl - j) / s + 1
    } else {
        0
    };
    (lo.min(wo), hi.min(wo))
}

/// One channel's plane, run through [`pulp`]'s dispatch so the loops are compiled for the
/// CPU's widest vectors (AVX-512 / AVX2); everything it calls is inlined into that context.
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
}

impl pulp::WithSimd for Plane<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let Plane {
            out: o,
            input: xin,
            kernel: k,
            kh,
            kw,
            stride: s,
            size: (h, w),
            out_size: (ho, wo),
            pad: (pt, pl),
        } = self;
        for i in 0..kh {
            for j in 0..kw {
                let wv = k[i * kw + j];
                let (lo, hi) = valid_cols(w, wo, s, j, pl);
                if lo >= hi {
                    continue;
                }
                for oy in 0..ho {
                    let iy = oy * s + i;
                    if iy < pt || iy - pt >= h {
                        continue;
                    }
                    let in_row = &xin[(iy - pt) * w..(iy - pt + 1) * w];
                    let out_row = &mut o[oy * wo + lo..oy * wo + hi];
                    let x0 = lo * s + j - pl;
                    if s == 1 {
                        for (ov, iv) in out_row.iter_mut().zip(&in_row[x0..x0 + (hi - lo)]) {
                            *ov += wv * iv;
                        }
                    } else {
                        for (ov, iv) in out_row.iter_mut().zip(in_row[x0..].iter().step_by(s)) {
                            *ov += wv * iv;
                        }
                    }
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
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("depthwise: input must be contiguous");
        };
        let x = storage
            .as_slice::<f32>()?
            .get(start..end)
            .ok_or_else(|| candle_core::Error::Msg("depthwise: storage too short".into()))?;
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
                .for_each(|(nc, (o, xin))| {
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
                    })
                });
        }
        Ok((CpuStorage::F32(out), Shape::from((n, c, ho, wo))))
    }
}
