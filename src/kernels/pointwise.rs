//! A direct CPU kernel for 1×1 convolutions with the bias, the activation and an optional
//! residual sum applied as the outputs are stored.
//!
//! A 1×1 convolution over NCHW is the product `W [O, I] · X [I, H·W]`, and each input row
//! is already contiguous along the pixels, so the product needs no packing of `X`: a tile
//! of `OB` output channels by `V` vectors of pixels sums `I` rank-1 updates in registers
//! (one vector load per input row and pixel vector, one broadcast per weight) and is
//! stored once, finished. candle's matrix product instead zeroes a fresh output, packs
//! both operands, and leaves the bias, activation and residual to further passes; with the
//! small channel counts of mobile networks (8 to 64 inputs at 48×48 to 96×96) those
//! passes cost as much as the arithmetic.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape};
use rayon::prelude::*;

use crate::kernels::bias_act::Act;
use crate::kernels::cpu_util::{copy_row, load, store};

/// Output channels per register tile.
pub(crate) const OB: usize = 6;

/// The op: weights packed for the tiles, a per-channel bias and an activation.
#[derive(Clone, Debug)]
pub struct PointwiseCpu {
    /// `[ceil(O / OB)][I][OB]`: each block of `OB` output channels' weights, input-row
    /// major, the last block zero-padded.
    pub(crate) packed: Vec<f32>,
    pub(crate) cin: usize,
    pub(crate) cout: usize,
    /// One value per output channel (zeros without a bias).
    pub(crate) bias: Vec<f32>,
    pub(crate) act: Act,
}

impl PointwiseCpu {
    /// `weight` holds `cout * cin` values, `[O, I]` row-major; `bias` is empty or has
    /// `cout` values.
    pub fn new(weight: &[f32], cout: usize, cin: usize, bias: &[f32], act: Act) -> Result<Self> {
        if weight.len() != cout * cin || cout == 0 || cin == 0 {
            candle_core::bail!(
                "1x1 conv weight has {} values, expected {cout}x{cin}",
                weight.len()
            );
        }
        if !bias.is_empty() && bias.len() != cout {
            candle_core::bail!("1x1 conv bias has {} values, expected {cout}", bias.len());
        }
        let packed = pack_weights(weight, cout, cin);
        let bias = if bias.is_empty() {
            vec![0f32; cout]
        } else {
            bias.to_vec()
        };
        Ok(Self {
            packed,
            cin,
            cout,
            bias,
            act,
        })
    }

    /// `act(W · x + b) (+ residual)` for `x` `[N, I, H, W]` (contiguous f32 values), or
    /// for the channel concatenation of `x` `[N, I₁, H, W]` and `x2` `[N, I − I₁, H, W]`
    /// (read in place).
    fn run(
        &self,
        (x, x2): (&[f32], Option<&[f32]>),
        (n, hw): (usize, usize),
        residual: Option<&[f32]>,
    ) -> Result<Vec<f32>> {
        let (ci, co) = (self.cin, self.cout);
        let per_image =
            |len: usize| (n * hw > 0 && len.is_multiple_of(n * hw)).then(|| len / (n * hw));
        let c1 = per_image(x.len()).unwrap_or(usize::MAX);
        let c2 = x2
            .map_or(Some(0), |x2| per_image(x2.len()))
            .unwrap_or(usize::MAX);
        if n * hw > 0 && c1.checked_add(c2) != Some(ci) {
            candle_core::bail!(
                "1x1 conv: inputs have {} + {} values, expected {n}x{ci}x{hw} in all",
                x.len(),
                x2.map_or(0, <[f32]>::len)
            );
        }
        if let Some(r) = residual {
            if r.len() != n * co * hw {
                candle_core::bail!(
                    "1x1 conv: residual has {} values, expected {n}x{co}x{hw}",
                    r.len()
                );
            }
        }
        if hw == 0 || n == 0 {
            return Ok(Vec::new());
        }
        // Groups of output channels share out the threads; a group walks the pixels tile
        // by tile, so that a tile's input rows stay in cache across its channel blocks.
        // On large maps, where each group copies every strip of the input it reads, one
        // group per thread (2 threads, interleaved: HigherHRNet-W32 645 against 763 ms,
        // MobileNet-thin 141 against 166, medians of 5 and 6 rounds on a busy machine).
        let threads = rayon::current_num_threads().max(1);
        let group = if threads == 1 {
            co
        } else if hw >= PACK_STRIDE {
            co.div_ceil(threads).div_ceil(OB) * OB
        } else {
            co.div_ceil(2 * threads).div_ceil(OB) * OB
        };
        // Every tile stores all its rows and columns (the panel covers the whole output),
        // so the buffer is not zeroed first.
        crate::kernels::cpu_util::fully_written(n * co * hw, |out| {
            out.par_chunks_mut(co * hw)
                .enumerate()
                .try_for_each(|(img, out)| {
                    let x1 = &x[img * c1 * hw..(img + 1) * c1 * hw];
                    let x2 = x2.map_or(&[][..], |x2| &x2[img * c2 * hw..(img + 1) * c2 * hw]);
                    out.par_chunks_mut(group * hw)
                        .enumerate()
                        .try_for_each(|(g, out)| {
                            let o0 = g * group;
                            let res = residual.map(|r| {
                                let at = (img * co + o0) * hw;
                                &r[at..at + out.len()]
                            });
                            let rows = out.len() / hw;
                            panel_product(Panel {
                                out,
                                out_stride: hw,
                                rows,
                                cols: hw,
                                x: x1,
                                x_stride: hw,
                                k: c1,
                                x2,
                                k2: c2,
                                packed: &self.packed[o0 * ci..],
                                w_stride: ci * OB,
                                part: Part::Whole,
                                bias: &self.bias[o0..],
                                act: self.act,
                                res,
                            })
                        })
                })
        })
    }
}

/// `W` `[O, I]` (`O`, `I` ≥ 1) packed for [`panel_product`]: blocks of [`OB`] output
/// channels, each `[I][OB]`, the last zero-padded.
pub(crate) fn pack_weights(weight: &[f32], cout: usize, cin: usize) -> Vec<f32> {
    let mut packed = vec![0f32; cout.div_ceil(OB) * cin * OB];
    for (o, row) in weight.chunks_exact(cin).enumerate().take(cout) {
        let (b, r) = (o / OB, o % OB);
        for (k, &v) in row.iter().enumerate() {
            packed[(b * cin + k) * OB + r] = v;
        }
    }
    packed
}

/// One matrix product `out = act(W · X + b) (+ res)` over row-major panels: `out` has
/// `rows` rows `out_stride` apart of which the first `cols` columns are written, `X` has
/// `k` rows `x_stride` apart (the same `cols` columns used), `W` is [`pack_weights`]'s
/// form (its first `rows.div_ceil(OB)` blocks are used).
pub(crate) struct Panel<'a> {
    pub out: &'a mut [f32],
    pub out_stride: usize,
    pub rows: usize,
    pub cols: usize,
    pub x: &'a [f32],
    pub x_stride: usize,
    pub k: usize,
    /// A second source of `k2` more rows (`x_stride` apart), as if concatenated below
    /// `x`'s (empty and 0: none).
    pub x2: &'a [f32],
    pub k2: usize,
    pub packed: &'a [f32],
    /// Values from one block of `OB` rows' weights to the next in `packed` (`(k + k2)·OB`
    /// for [`pack_weights`]' form; more when the panel uses a slice of the input rows).
    pub w_stride: usize,
    /// Which part of a sum split along `k` this panel is (see [`Part`]).
    pub part: Part,
    /// One value per row, or empty (no bias).
    pub bias: &'a [f32],
    pub act: Act,
    /// Added after the activation, laid out like `out`.
    pub res: Option<&'a [f32]>,
}

/// A product split along its depth `k` into panels over successive row ranges of the
/// input: the first starts from the bias, the others from the values already in `out`,
/// and the activation and residual are applied by the last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Part {
    Whole,
    First,
    Middle,
    Last,
}

impl Part {
    fn starts_from_out(self) -> bool {
        matches!(self, Part::Middle | Part::Last)
    }
    fn finishes(self) -> bool {
        matches!(self, Part::Whole | Part::Last)
    }
}

/// Computes `panel` on this thread with the CPU's widest vectors.
pub(crate) fn panel_product(panel: Panel<'_>) -> Result<()> {
    let Panel {
        rows,
        cols,
        k,
        out_stride,
        x_stride,
        ..
    } = panel;
    if rows == 0 || cols == 0 {
        return Ok(());
    }
    let fits = cols <= out_stride
        && (rows - 1) * out_stride + cols <= panel.out.len()
        && k >= 1
        && (k - 1) * x_stride + cols <= panel.x.len()
        && (panel.k2 == 0 || (panel.k2 - 1) * x_stride + cols <= panel.x2.len())
        && panel.w_stride >= (k + panel.k2) * OB
        && panel.packed.len() >= (rows.div_ceil(OB) - 1) * panel.w_stride + (k + panel.k2) * OB
        && (panel.bias.is_empty() || panel.bias.len() >= rows)
        && panel
            .res
            .is_none_or(|r| (rows - 1) * out_stride + cols <= r.len());
    if !fits {
        candle_core::bail!(
            "matrix panel {rows}x{cols} (k {k}, strides {out_stride}/{x_stride}) does not fit its buffers"
        );
    }
    crate::kernels::cpu_util::dispatch(Tiles(panel));
    Ok(())
}

/// Input rows at least this far apart (f32 values, 4 KiB) are copied strip by strip before
/// the blocks of channels read them ([`Tiles::walk`]). HigherHRNet-W32's 1×1 convolutions
/// on 128×128 maps (64 KiB rows) ran at 26–36 GFLOP/s reading in place (AVX2, 1 thread).
const PACK_STRIDE: usize = 1024;

/// Where a tile reads its input: `k` rows of `x`, then `k2` of `x2`, `stride` apart,
/// from column `p0`.
struct Src<'a> {
    x: &'a [f32],
    x2: &'a [f32],
    stride: usize,
    p0: usize,
}

/// [`Panel`] run through [`pulp`]'s dispatch; everything it calls is inlined into that
/// context.
struct Tiles<'a>(Panel<'a>);

impl pulp::WithSimd for Tiles<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        let lanes = S::F32_LANES;
        // Four vectors of pixels by six channels fill 24 of 32 registers; with 16
        // registers (AVX2) two vectors.
        if lanes == 8 {
            self.walk::<S, 2>(simd);
        } else {
            self.walk::<S, 4>(simd);
        }
    }
}

impl Tiles<'_> {
    /// Tiles of `V` vectors along the columns, then of two (when `V` is 4), then single
    /// vectors, the last moved back to end at `cols` (recomputing a few outputs) unless the
    /// row is shorter than a vector or the panel adds to its output (a later [`Part`]).
    #[inline(always)]
    fn walk<S: pulp::Simd, const V: usize>(mut self, simd: S) {
        let lanes = S::F32_LANES;
        let (cols, blocks) = (self.0.cols, self.0.rows.div_ceil(OB));
        // Rows of a large map are far apart, and a strip of `V` vectors read down all of
        // them falls into a few cache sets (every row in the same one when the row is a
        // multiple of 4 KiB): each block of channels read it again from L3. Such strips
        // are first copied together, then read by every block from L1.
        let pack = blocks > 1 && self.0.x_stride >= PACK_STRIDE;
        let mut strip = if pack {
            vec![0f32; (self.0.k + self.0.k2) * V * lanes]
        } else {
            Vec::new()
        };
        let mut p = 0;
        while p + V * lanes <= cols {
            self.strip::<S, V>(simd, &mut strip, p, lanes);
            p += V * lanes;
        }
        if V > 2 && p + 2 * lanes <= cols {
            self.strip::<S, 2>(simd, &mut strip, p, lanes);
            p += 2 * lanes;
        }
        while p < cols {
            // (A later part of a split sum adds to what is stored, so it must not compute
            // an output twice: its last vector is a partial one.)
            let (p0, len) = if cols - p >= lanes || cols < lanes || self.0.part != Part::Whole {
                (p, lanes.min(cols - p))
            } else {
                (cols - lanes, lanes)
            };
            self.strip::<S, 1>(simd, &mut strip, p0, len);
            p = p0 + len;
        }
    }

    /// Every block of rows at columns `p0 .. p0 + (V−1)·lanes + len`, reading the input
    /// in place or (when `strip` is not empty) from a copy of these columns in `strip`.
    #[inline(always)]
    fn strip<S: pulp::Simd, const V: usize>(
        &mut self,
        simd: S,
        strip: &mut [f32],
        p0: usize,
        len: usize,
    ) {
        let lanes = S::F32_LANES;
        let span = (V - 1) * lanes + if V > 1 { lanes } else { len };
        let blocks = self.0.rows.div_ceil(OB);
        let (x, x2, xs, k, k2) = (self.0.x, self.0.x2, self.0.x_stride, self.0.k, self.0.k2);
        if strip.is_empty() {
            let src = Src {
                x,
                x2,
                stride: xs,
                p0,
            };
            for b in 0..blocks {
                self.block::<S, V>(simd, b, &src, p0, len);
            }
            return;
        }
        let (s1, s2) = strip[..(k + k2) * span].split_at_mut(k * span);
        for (d, kk) in s1.chunks_exact_mut(span).zip(0..k) {
            copy_row(simd, d, &x[kk * xs + p0..kk * xs + p0 + span]);
        }
        for (d, kk) in s2.chunks_exact_mut(span).zip(0..k2) {
            copy_row(simd, d, &x2[kk * xs + p0..kk * xs + p0 + span]);
        }
        let src = Src {
            x: s1,
            x2: s2,
            stride: span,
            p0: 0,
        };
        for b in 0..blocks {
            self.block::<S, V>(simd, b, &src, p0, len);
        }
    }

    /// Rows `OB·b ..` (those that exist) at columns `p0 .. p0 + (V−1)·lanes + len`, where
    /// `len` < lanes only when `V` is 1.
    #[inline(always)]
    fn block<S: pulp::Simd, const V: usize>(
        &mut self,
        simd: S,
        b: usize,
        src: &Src<'_>,
        p0: usize,
        len: usize,
    ) {
        let lanes = S::F32_LANES;
        let len = if V > 1 { lanes } else { len };
        let span = (V - 1) * lanes + len;
        let acc = self.products::<S, V>(simd, b, src, (p0, span));
        let p = &mut self.0;
        let finish = p.part.finishes();
        let rows = (p.rows - b * OB).min(OB);
        // A loop of constant length with a test inside (not `take(rows)`), so that it
        // unrolls and `acc` stays in registers through the main loop.
        for (o, a) in acc.iter().enumerate() {
            if o >= rows {
                break;
            }
            let at = (b * OB + o) * p.out_stride + p0;
            for (v, &a) in a.iter().enumerate() {
                let (s, e) = (at + v * lanes, at + (v * lanes + lanes).min(span));
                let a = if finish { p.act.simd(simd, a) } else { a };
                let a = match p.res {
                    Some(r) if finish => simd.add_f32s(a, load(simd, &r[s..e])),
                    _ => a,
                };
                store(simd, &mut p.out[s..e], a);
            }
        }
    }

    /// The tile's sums at output columns `p0 .. p0 + span`, bias included (or the values
    /// already in the output, for a later [`Part`]), returned by value so that they live
    /// in registers (every index below is a constant once the fixed-count loops unroll).
    #[inline(always)]
    fn products<S: pulp::Simd, const V: usize>(
        &self,
        simd: S,
        b: usize,
        src: &Src<'_>,
        (out_p0, span): (usize, usize),
    ) -> [[S::f32s; V]; OB] {
        let lanes = S::F32_LANES;
        let p = &self.0;
        let (depth, xs, p0) = (p.k + p.k2, src.stride, src.p0);
        let w = &p.packed[b * p.w_stride..b * p.w_stride + depth * OB];
        let (w1, w2) = w.split_at(p.k * OB);
        let mut acc = [[simd.splat_f32s(0.0); V]; OB];
        if p.part.starts_from_out() {
            let rows = p.rows - b * OB;
            for (o, a) in acc.iter_mut().enumerate() {
                if o >= rows {
                    break;
                }
                let at = (b * OB + o) * p.out_stride + out_p0;
                for (v, a) in a.iter_mut().enumerate() {
                    *a = load(
                        simd,
                        &p.out[at + v * lanes..at + (v * lanes + lanes).min(span)],
                    );
                }
            }
        } else {
            for (o, a) in acc.iter_mut().enumerate() {
                let bias = simd.splat_f32s(p.bias.get(b * OB + o).copied().unwrap_or(0.0));
                for a in a.iter_mut() {
                    *a = bias;
                }
            }
        }
        // The rows of `x`, then those of `x2`, against their blocks of weights.
        for (x, w) in [(src.x, w1), (src.x2, w2)] {
            for (kk, wk) in w.chunks_exact(OB).enumerate() {
                let row = &x[kk * xs + p0..kk * xs + p0 + span];
                let mut xv = [simd.splat_f32s(0.0); V];
                for (v, d) in xv.iter_mut().enumerate() {
                    *d = load(simd, &row[v * lanes..(v * lanes + lanes).min(span)]);
                }
                for (o, a) in acc.iter_mut().enumerate() {
                    let wv = simd.splat_f32s(wk[o]);
                    for (a, xv) in a.iter_mut().zip(xv) {
                        *a = simd.mul_add_f32s(wv, xv, *a);
                    }
                }
            }
        }
        acc
    }
}

impl CustomOp1 for PointwiseCpu {
    fn name(&self) -> &'static str {
        "conv1x1-bias-act"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        crate::kernels::enter("conv1x1-bias-act")?;
        let (n, c, h, w) = layout.shape().dims4()?;
        if c != self.cin {
            candle_core::bail!("1x1 conv: input has {c} channels, weight {}", self.cin);
        }
        let x = crate::kernels::cpu_util::f32_input(storage, layout, "1x1 conv")?;
        let out = self.run((x, None), (n, h * w), None)?;
        Ok((CpuStorage::F32(out), Shape::from((n, self.cout, h, w))))
    }
}

/// [`PointwiseCpu`] on the channel concatenation of its two operands (`[N, I₁, H, W]` and
/// `[N, I − I₁, H, W]`), read where they are instead of copied into one tensor.
pub struct OnConcat<'a>(pub &'a PointwiseCpu);

impl CustomOp2 for OnConcat<'_> {
    fn name(&self) -> &'static str {
        "conv1x1-on-concat"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        crate::kernels::enter("conv1x1-on-concat")?;
        let (n, c1, h, w) = l1.shape().dims4()?;
        let (n2, c2, h2, w2) = l2.shape().dims4()?;
        let op = self.0;
        if (n2, h2, w2) != (n, h, w) || c1 + c2 != op.cin {
            candle_core::bail!(
                "1x1 conv on a concatenation: inputs {:?} and {:?}, weight for {} channels",
                l1.shape().dims(),
                l2.shape().dims(),
                op.cin
            );
        }
        let x1 = crate::kernels::cpu_util::f32_input(s1, l1, "1x1 conv")?;
        let x2 = crate::kernels::cpu_util::f32_input(s2, l2, "1x1 conv")?;
        let out = op.run((x1, Some(x2)), (n, h * w), None)?;
        Ok((CpuStorage::F32(out), Shape::from((n, op.cout, h, w))))
    }
}

/// [`PointwiseCpu`] followed by `+ residual` (the second operand, shaped like the output).
pub struct WithResidual<'a>(pub &'a PointwiseCpu);

impl CustomOp2 for WithResidual<'_> {
    fn name(&self) -> &'static str {
        "conv1x1-bias-act-add"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        crate::kernels::enter("conv1x1-bias-act-add")?;
        let (n, c, h, w) = l1.shape().dims4()?;
        let op = self.0;
        if c != op.cin {
            candle_core::bail!("1x1 conv: input has {c} channels, weight {}", op.cin);
        }
        let want = Shape::from((n, op.cout, h, w));
        if l2.shape() != &want {
            candle_core::bail!(
                "1x1 conv: residual is {:?}, the output {:?}",
                l2.shape().dims(),
                want.dims()
            );
        }
        let x = crate::kernels::cpu_util::f32_input(s1, l1, "1x1 conv")?;
        let r = crate::kernels::cpu_util::f32_input(s2, l2, "1x1 conv residual")?;
        let out = op.run((x, None), (n, h * w), Some(r))?;
        Ok((CpuStorage::F32(out), want))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use candle_core::{Device, Tensor};

    use super::*;

    /// `act(W·x + b) (+ r)` in f64 loops.
    #[allow(clippy::too_many_arguments)]
    fn reference(
        x: &[f32],
        w: &[f32],
        b: &[f32],
        r: Option<&[f32]>,
        (n, ci, co, hw): (usize, usize, usize, usize),
        act: Act,
    ) -> Vec<f32> {
        let mut out = crate::kernels::cpu_util::zeros(n * co * hw);
        for img in 0..n {
            for o in 0..co {
                for p in 0..hw {
                    let mut s = b[o] as f64;
                    for k in 0..ci {
                        s += w[o * ci + k] as f64 * x[(img * ci + k) * hw + p] as f64;
                    }
                    let s = match act {
                        Act::None => s,
                        Act::Relu => s.max(0.0),
                        Act::Relu6 => s.clamp(0.0, 6.0),
                    };
                    let at = (img * co + o) * hw + p;
                    out[at] = (s + r.map_or(0.0, |r| r[at] as f64)) as f32;
                }
            }
        }
        out
    }

    /// Every path: whole tiles of four vectors, single vectors with the last moved back,
    /// rows shorter than a vector, channel counts that leave a partial block of six, a
    /// residual, batches, and one or two threads (channel groups split across them).
    #[test]
    fn direct_1x1_matches_f64_loops() {
        let shapes = [
            // (n, ci, co, h, w)
            (1, 3, 7, 9, 13), // 117 px: one tile of 64, then vectors (last moved back)
            (2, 5, 12, 8, 8), // 64 px: exactly one tile
            (1, 1, 1, 2, 3),  // 6 px: shorter than a vector
            (1, 16, 13, 5, 5), // 25 px: a vector and a moved-back one
            (1, 20, 6, 24, 24), // 576 px: nine tiles
            // Rows of 1024 values and more: strips copied before the blocks read them.
            (2, 4, 20, 32, 32), // 1024 px, four blocks
            (1, 9, 13, 33, 37), // 1221 px: the last vector partial
        ];
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            for &(n, ci, co, h, w) in &shapes {
                let hw = h * w;
                let x: Vec<f32> = (0..n * ci * hw)
                    .map(|v| ((v * 37 % 23) as f32) * 0.5 - 5.0)
                    .collect();
                let wt: Vec<f32> = (0..co * ci)
                    .map(|v| ((v * 13 % 11) as f32) * 0.1 - 0.5)
                    .collect();
                let b: Vec<f32> = (0..co).map(|v| v as f32 * 0.7 - 2.0).collect();
                let r: Vec<f32> = (0..n * co * hw).map(|v| (v % 5) as f32 - 2.0).collect();
                for act in [Act::None, Act::Relu, Act::Relu6] {
                    for res in [None, Some(r.as_slice())] {
                        let op = PointwiseCpu::new(&wt, co, ci, &b, act).unwrap();
                        let got = pool.install(|| op.run((&x, None), (n, hw), res)).unwrap();
                        let want = reference(&x, &wt, &b, res, (n, ci, co, hw), act);
                        if res.is_none() && ci > 1 {
                            // The same input as two tensors split after channel c1.
                            let c1 = ci / 2;
                            let (mut x1, mut x2) = (Vec::new(), Vec::new());
                            for img in x.chunks_exact(ci * hw) {
                                x1.extend_from_slice(&img[..c1 * hw]);
                                x2.extend_from_slice(&img[c1 * hw..]);
                            }
                            let split = pool
                                .install(|| op.run((&x1, Some(&x2)), (n, hw), None))
                                .unwrap();
                            assert_eq!(split, got, "{n}x{ci}->{co} {h}x{w} split at {c1}");
                        }
                        let worst = got
                            .iter()
                            .zip(&want)
                            .map(|(a, b)| (a - b).abs())
                            .fold(0f32, f32::max);
                        assert!(
                            worst < 1e-4,
                            "{n}x{ci}->{co} {h}x{w} {act:?} residual {} threads {threads}: {worst}",
                            res.is_some()
                        );
                        if act == Act::Relu6 {
                            // The activation did something on these values.
                            let plain = reference(&x, &wt, &b, res, (n, ci, co, hw), Act::None);
                            assert_ne!(plain, want);
                        }
                    }
                }
            }
        }
    }

    /// The candle ops check their operands' shapes and name the tensor.
    #[test]
    fn direct_1x1_rejects_mismatched_operands() {
        let dev = Device::Cpu;
        let op = PointwiseCpu::new(&[1.0; 6], 3, 2, &[], Act::None).unwrap();
        let x = Tensor::zeros((1, 4, 2, 2), candle_core::DType::F32, &dev).unwrap();
        let e = x.apply_op1_no_bwd(&op).unwrap_err().to_string();
        assert!(e.contains("4 channels"), "{e}");
        let x = Tensor::zeros((1, 2, 2, 2), candle_core::DType::F32, &dev).unwrap();
        let r = Tensor::zeros((1, 3, 2, 1), candle_core::DType::F32, &dev).unwrap();
        let e = x
            .apply_op2_no_bwd(&r, &WithResidual(&op))
            .unwrap_err()
            .to_string();
        assert!(e.contains("residual"), "{e}");
        let e = x
            .apply_op2_no_bwd(&x, &OnConcat(&op))
            .unwrap_err()
            .to_string();
        assert!(e.contains("concatenation"), "{e}");
        assert!(PointwiseCpu::new(&[1.0; 5], 3, 2, &[], Act::None).is_err());
        assert!(PointwiseCpu::new(&[1.0; 6], 3, 2, &[0.0; 2], Act::None).is_err());
    }
}
