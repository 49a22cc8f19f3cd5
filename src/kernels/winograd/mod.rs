//! Winograd convolution on the CPU: F(3×3, 3×3) tiles, with larger kernels split into 3×3
//! blocks, for stride-1 convolutions of pose networks (HigherHRNet's and HRNet's 3×3
//! residual convolutions, CPM's 5×5, 9×9 and 11×11 stage convolutions).
//!
//! Each 3×3 output tile comes from a 5×5 input tile: `Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A`, 25
//! products per 9 outputs instead of 81 (Lavin & Gray 2016; interpolation points 0, 1, −1,
//! 2, ∞). A `k×k` kernel is zero-padded to `3S×3S` (`S = ⌈k/3⌉`) and split into `S²` blocks
//! of 3×3; block `(a, b)` reads the input tile `(a, b)` tiles further on, because blocks are
//! 3 apart like the tiles. So the whole convolution is, per transform position `ξ` (25 of
//! them), `S²` accumulated matrix products `U[ξ, a, b] (O×C) · V[ξ] (C × tiles)`, where the
//! block's shift is an offset into the columns of `V` (tile rows are laid out with `S − 1`
//! spare columns so that the shift stays inside the row). Multiplies per output: `25·S²/9`
//! against `k²` (3×3: 2.8 vs 9; 11×11: 44 vs 121).
//!
//! The kernel transform is done once per weight (in f64) and kept in the [`WinogradWeight`]
//! that holds the weight; from then on the original weight is dropped on the CPU (rebuilt
//! from the transform if another path ever needs it), so a network holds each kernel once.
//! Errors are a few times those of a direct f32 sum (the interpolation points are small
//! integers); the posegen parity tests run through this path.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};

use crate::kernels::bias_act::{bias_act, Act, Bias};
use rayon::prelude::*;

use crate::kernels::cpu_util::{load, store};

mod weight;
pub use weight::{WinogradKernel, WinogradWeight};

/// Output tile side.
const M: usize = 3;
/// Input tile side (`M + 3 − 1`).
const N: usize = 5;
/// Transform positions per tile.
const XI: usize = N * N;

/// `Bᵀ` for the points 0, 1, −1, 2, ∞, its rows scaled by 2, 2, 6, 6, 1 to integers (the
/// scales are divided out of `G`). Written out in [`bt5`]; the tests check the two agree.
#[cfg(test)]
const BT: [[f32; N]; N] = [
    [2.0, -1.0, -2.0, 1.0, 0.0],
    [0.0, 2.0, 1.0, -1.0, 0.0],
    [0.0, -2.0, 3.0, -1.0, 0.0],
    [0.0, -1.0, 0.0, 1.0, 0.0],
    [0.0, 2.0, -1.0, -2.0, 1.0],
];

/// `Aᵀ` (3×5), written out in [`at5`].
#[cfg(test)]
const AT: [[f32; N]; M] = [
    [1.0, 1.0, 1.0, 1.0, 0.0],
    [0.0, 1.0, -1.0, 2.0, 0.0],
    [0.0, 1.0, 1.0, 4.0, 1.0],
];

/// Whether a stride-1 `k×k` convolution from `c` to `o` channels is worth the Winograd path
/// (small channel counts keep im2col: the transforms would dominate).
pub fn worthwhile(k: usize, c: usize, o: usize) -> bool {
    k >= 3 && c >= 16 && o >= 16
}

/// The most transformed-kernel bytes per output tile for which a convolution takes the
/// Winograd path; above it, it keeps im2col + matmul. The transformed kernel is kept for the
/// life of the network at 25/9 of the weight's size, so a wide kernel on a small map holds
/// a lot of memory for little work. HigherHRNet-W32 at 512²: its 16×16 branch (256
/// channels: 6.6 MB of transformed kernel for 36 tiles, 24 convolutions) runs 40–60 ms of
/// 950 slower through im2col, and the process's peak resident memory falls from 567 to
/// 405 MB (`posescope bench`, 1 thread). Its 32×32 branch (128 channels, 121 tiles: 14 KB a
/// tile) and CPM's 11×11 kernels at 368² (26 MB for 256 tiles) stay on Winograd.
pub const MAX_KERNEL_BYTES_PER_TILE: usize = 128 << 10;

/// Whether a stride-1 `k×k` convolution from `c` to `o` channels with zero `pad` on an
/// `h×w` map does enough work for its transformed kernel ([`MAX_KERNEL_BYTES_PER_TILE`]).
pub fn enough_tiles(k: usize, (c, o): (usize, usize), (h, w): (usize, usize), pad: usize) -> bool {
    let out = |n: usize| (n + 2 * pad + 1).saturating_sub(k);
    let tiles = out(h).div_ceil(M) * out(w).div_ceil(M);
    let s = k.div_ceil(3);
    let bytes = XI * s * s * o * c * std::mem::size_of::<f32>();
    tiles > 0 && bytes <= tiles * MAX_KERNEL_BYTES_PER_TILE
}

/// `act(x ⋆ weight + bias)` for `x` (`[N, C, H, W]`) and `weight` (`[O, C, K, K]`) at
/// `stride` with zero `pad`, on the fastest path for its shape: Winograd on the CPU for
/// stride-1 kernels of 3×3 and larger with enough channels ([`worthwhile`]) on maps large
/// enough for their transformed kernel ([`enough_tiles`]) or once it exists, bias and
/// activation applied as the output is written; otherwise [`crate::kernels::im2col::conv2d`] (im2col + matmul on the CPU, candle's
/// kernels elsewhere) and [`bias_act`]. The FLOP counter gets the direct convolution's
/// count either way.
pub fn conv2d_auto(
    x: &Tensor,
    weight: &WinogradWeight,
    (stride, pad): (usize, usize),
    bias: &Bias,
    act: Act,
) -> Result<Tensor> {
    let (o, c, kh, kw) = weight.dims();
    let (_, xc, h, w) = x.dims4()?;
    // A transform built on a larger map serves the small ones too (it is already paid for).
    let fast = super::custom_cpu(x)
        && stride == 1
        && kh == kw
        && xc == c
        && worthwhile(kh, c, o)
        && (weight.transformed() || enough_tiles(kh, (c, o), (h, w), pad));
    if !fast {
        let y = crate::kernels::im2col::conv2d(x, &weight.original()?, stride, pad)?;
        return bias_act(y, Some(bias), act);
    }
    let y = conv2d(x, weight, pad, Some(bias.values()), act)?;
    crate::kernels::flops::add_conv(y.elem_count(), c, kh, kw);
    Ok(y)
}

/// `act(x ⋆ weight + bias)` for `x` (`[N, C, H, W]`, f32, CPU) through the transform of
/// `weight` (built on first use), stride 1, zero `pad` on every side; `bias` holds one value
/// per output channel (none: zero).
pub fn conv2d(
    x: &Tensor,
    weight: &WinogradWeight,
    pad: usize,
    bias: Option<&[f32]>,
    act: Act,
) -> Result<Tensor> {
    let kernel = weight.kernel()?;
    if let Some(b) = bias {
        if b.len() != kernel.out_channels {
            candle_core::bail!(
                "winograd: {} bias values for {} output channels",
                b.len(),
                kernel.out_channels
            );
        }
    }
    x.contiguous()?.apply_op1_no_bwd(&WinogradOp {
        kernel,
        pad,
        bias,
        act,
    })
}

struct WinogradOp<'a> {
    kernel: &'a WinogradKernel,
    pad: usize,
    bias: Option<&'a [f32]>,
    act: Act,
}

/// The geometry of one call.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    /// Input `(H, W)`.
    h: usize,
    w: usize,
    /// Output `(HO, WO)`.
    ho: usize,
    wo: usize,
    pad: usize,
    /// Output tiles per row.
    tx: usize,
    /// Columns from one tile row to the next in `V` and the products: the `tx + S − 1`
    /// input tiles of a row plus one spare.
    ws: usize,
}

/// A band of output tile rows `ty0..ty0 + rows` and the `rows + S − 1` input tile rows it
/// reads.
#[derive(Clone, Copy, Debug)]
struct Band {
    ty0: usize,
    rows: usize,
    in_rows: usize,
}

/// `Bᵀ · d` for one column of five vectors (the rows of [`BT`] written out).
#[inline(always)]
fn bt5<S: pulp::Simd>(s: S, d: [S::f32s; N]) -> [S::f32s; N] {
    let two = s.splat_f32s(2.0);
    // r3 = d3 − d1
    let r3 = s.sub_f32s(d[3], d[1]);
    // r0 = 2d0 − d1 − 2d2 + d3
    let r0 = s.mul_add_f32s(two, s.sub_f32s(d[0], d[2]), r3);
    // r1 = 2d1 + d2 − d3
    let r1 = s.sub_f32s(s.add_f32s(d[1], d[2]), r3);
    // r2 = −2d1 + 3d2 − d3
    let r2 = s.mul_add_f32s(two, s.sub_f32s(d[2], d[1]), s.sub_f32s(d[2], d[3]));
    // r4 = 2d1 − d2 − 2d3 + d4
    let r4 = s.sub_f32s(s.sub_f32s(d[4], d[2]), s.add_f32s(r3, r3));
    [r0, r1, r2, r3, r4]
}

/// `Aᵀ · m` for one column of five vectors (the rows of [`AT`] written out).
#[inline(always)]
fn at5<S: pulp::Simd>(s: S, m: [S::f32s; N]) -> [S::f32s; M] {
    let sum = s.add_f32s(m[1], m[2]);
    let dif = s.sub_f32s(m[1], m[2]);
    // y0 = m0 + m1 + m2 + m3, y1 = m1 − m2 + 2m3, y2 = m1 + m2 + 4m3 + m4
    let y0 = s.add_f32s(s.add_f32s(m[0], sum), m[3]);
    let y1 = s.mul_add_f32s(s.splat_f32s(2.0), m[3], dif);
    let y2 = s.mul_add_f32s(s.splat_f32s(4.0), m[3], s.add_f32s(sum, m[4]));
    [y0, y1, y2]
}

/// The five vectors of `src` that start at `at`, `len` values each (one column of a tile
/// in the transform domain or out of it).
#[inline(always)]
fn load5<S: pulp::Simd>(simd: S, src: &[f32], at: [usize; N], len: usize) -> [S::f32s; N] {
    [
        load(simd, &src[at[0]..at[0] + len]),
        load(simd, &src[at[1]..at[1] + len]),
        load(simd, &src[at[2]..at[2] + len]),
        load(simd, &src[at[3]..at[3] + len]),
        load(simd, &src[at[4]..at[4] + len]),
    ]
}

/// The scratch buffer of one thread: the phase-split input rows of a channel, or the
/// transformed outputs of one.
type Scratch = Vec<f32>;

thread_local! {
    /// This thread's [`Scratch`], kept from call to call: a fresh buffer per parallel
    /// split meant an allocation and a memset each time.
    static SCRATCH: std::cell::RefCell<Scratch> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's scratch buffer (a fresh one if it is in use further up
/// this thread's stack).
fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|s| match s.try_borrow_mut() {
        Ok(mut s) => f(&mut s),
        Err(_) => f(&mut Vec::new()),
    })
}

/// The input transform of one channel over one band:
/// 1. `P[qc][qr][r'·ws + i]` = padded input at row `3(ty0 + r') + qr`, column `3i + qc`
///    (the band split by row and column phase), so that the `d[u][v]` of consecutive
///    tiles are consecutive: `d[u][v]` of tile `k = iy·ws + ix` is
///    `P[v mod 3][u mod 3][k + (u div 3)·ws + v div 3]`;
/// 2. for a vector of tiles at a time, `V = Bᵀ d B` in registers.
struct InputTransform<'a> {
    plane: &'a [f32],
    /// This channel's `[25][columns]` block of `V`.
    v: &'a mut [f32],
    columns: usize,
    scratch: &'a mut Scratch,
    g: Geometry,
    band: Band,
}

impl pulp::WithSimd for InputTransform<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        let Self {
            plane,
            v,
            columns,
            scratch,
            g,
            band,
        } = self;
        let ws = g.ws;
        // Input tile rows plus one (a tile reaches 4 rows into the next tile row), and
        // one spare element: the last tile reads one phase cell further.
        let plen = (band.in_rows + 1) * ws + 1;
        // Every phase row is written below (zeros for rows outside the image) but the one
        // spare element per phase, which only the spare tile column at the end of the
        // last row reads; its output is dropped, so whatever an earlier use of the buffer
        // left there does no harm and the buffer needs no clearing.
        if scratch.len() < 9 * plen {
            scratch.resize(9 * plen, 0.0);
        }
        let phases = &mut scratch[..9 * plen];
        for r in 0..=band.in_rows {
            for qr in 0..3 {
                let py = 3 * (band.ty0 + r) + qr;
                let at = |qc: usize| (qc * 3 + qr) * plen + r * ws;
                let (p0, rest) = phases.split_at_mut(at(1));
                let (p1, p2) = rest.split_at_mut(at(2) - at(1));
                let dst = [&mut p0[at(0)..at(0) + ws], &mut p1[..ws], &mut p2[..ws]];
                if py < g.pad || py - g.pad >= g.h {
                    for p in dst {
                        p.fill(0.0);
                    }
                    continue;
                }
                let y = py - g.pad;
                split_phases(simd, dst, &plane[y * g.w..(y + 1) * g.w], g.pad);
            }
        }
        let lanes = S::F32_LANES;
        let vlen = band.in_rows * ws;
        for k0 in (0..vlen).step_by(lanes) {
            let len = lanes.min(vlen - k0);
            // No closures or `array::from_fn` with vector ops in them: everything here must
            // inline into pulp's target-feature function, or each vector op becomes a call.
            // Columns first: cols[x][i] = Σ_u Bᵀ[i][u] d[u][x]. Built as one array
            // expression: a zeroed array filled in a loop was zeroed by a call to memset on
            // every pass (the array lives on the stack: 25 vectors).
            let column = |x: usize| {
                let at = |u: usize| ((x % 3) * 3 + u % 3) * plen + k0 + (u / 3) * ws + x / 3;
                [at(0), at(1), at(2), at(3), at(4)]
            };
            let cols = [
                bt5(simd, load5(simd, phases, column(0), len)),
                bt5(simd, load5(simd, phases, column(1), len)),
                bt5(simd, load5(simd, phases, column(2), len)),
                bt5(simd, load5(simd, phases, column(3), len)),
                bt5(simd, load5(simd, phases, column(4), len)),
            ];
            // Then rows: V[i][j] = Σ_x Bᵀ[j][x] cols[x][i]. Each row is gathered from `cols`
            // as it is used: a transposed copy of the whole array goes through the stack
            // (LLVM emits a call to memcpy for it).
            #[allow(clippy::needless_range_loop)] // i indexes the inner arrays
            for i in 0..N {
                let row = [cols[0][i], cols[1][i], cols[2][i], cols[3][i], cols[4][i]];
                for (j, val) in bt5(simd, row).into_iter().enumerate() {
                    let at = (i * N + j) * columns + k0;
                    store(simd, &mut v[at..at + len], val);
                }
            }
        }
    }
}

/// `dst[qc][i] = row[3i + qc − pad]`, zero where that index falls outside `row`: the three
/// column phases of a zero-padded input row. Read straight from the input: staging the
/// padded row in a buffer first made these scalar loads wait on the vector stores just
/// issued to it. With AVX-512, 16 tiles at a time are split by lane permutes.
#[inline(always)]
fn split_phases<S: pulp::Simd>(simd: S, [p0, p1, p2]: [&mut [f32]; 3], row: &[f32], pad: usize) {
    let (n, w) = (p0.len(), row.len());
    // Tiles i0..i1 read three columns inside the row; the rest, at most a few on either
    // side, meet the padding.
    let i0 = pad.div_ceil(3).min(n);
    let i1 = ((pad + w) / 3).clamp(i0, n);
    let at = |j: usize| match j.checked_sub(pad) {
        Some(x) if x < w => row[x],
        _ => 0.0,
    };
    for i in (0..i0).chain(i1..n) {
        p0[i] = at(3 * i);
        p1[i] = at(3 * i + 1);
        p2[i] = at(3 * i + 2);
    }
    let mut done = i0;
    #[cfg(target_arch = "x86_64")]
    if let Some(&v4) = (&simd as &dyn std::any::Any).downcast_ref::<pulp::x86::V4>() {
        // Blocks of 16 tiles, the last one moved back to end at i1 (rewriting a few).
        let mut i = i0;
        while i1 - i0 >= 16 && done < i1 {
            let t = i.min(i1 - 16);
            let from = 3 * t - pad;
            split3_v4(
                v4,
                &row[from..from + 48],
                [&mut p0[t..t + 16], &mut p1[t..t + 16], &mut p2[t..t + 16]],
            );
            (i, done) = (t + 16, t + 16);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = simd;
    if done < i1 {
        let inner = row[3 * done - pad..].chunks_exact(3);
        for (((c, a), b), d) in inner
            .zip(&mut p0[done..i1])
            .zip(&mut p1[done..i1])
            .zip(&mut p2[done..i1])
        {
            *a = c[0];
            *b = c[1];
            *d = c[2];
        }
    }
}

/// `_mm512_permutex2var_ps` indices that take phase `q` (`x[k] = v[3k + q]`) out of 48
/// consecutive values `v` in three vectors: the first permute picks the lanes found in the
/// first two vectors (indices 0–31), the second keeps those (indices 0–15) and fills the
/// rest from the third (16–31).
const fn split3_indices(q: usize) -> [[u32; 16]; 2] {
    let mut idx = [[0u32; 16]; 2];
    let mut k = 0;
    while k < 16 {
        let g = 3 * k + q;
        if g < 32 {
            idx[0][k] = g as u32;
            idx[1][k] = k as u32;
        } else {
            idx[1][k] = (g - 16) as u32;
        }
        k += 1;
    }
    idx
}

/// The inverse of [`split3_indices`]: lane `l` of output vector `j` is value `g = 16j + l`,
/// phase `g mod 3`'s lane `g div 3`; the first permute takes phases 0 and 1, the second
/// phase 2.
const fn merge3_indices(j: usize) -> [[u32; 16]; 2] {
    let mut idx = [[0u32; 16]; 2];
    let mut l = 0;
    while l < 16 {
        let g = 16 * j + l;
        let k = (g / 3) as u32;
        match g % 3 {
            0 => (idx[0][l], idx[1][l]) = (k, l as u32),
            1 => (idx[0][l], idx[1][l]) = (16 + k, l as u32),
            _ => idx[1][l] = 16 + k,
        }
        l += 1;
    }
    idx
}

#[cfg(target_arch = "x86_64")]
const SPLIT3: [[[u32; 16]; 2]; 3] = [split3_indices(0), split3_indices(1), split3_indices(2)];
#[cfg(target_arch = "x86_64")]
const MERGE3: [[[u32; 16]; 2]; 3] = [merge3_indices(0), merge3_indices(1), merge3_indices(2)];

/// Two lane permutes per vector with AVX-512: `x = perm(perm(a, b), c)`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn permute3(
    v4: pulp::x86::V4,
    [a, b, c]: [pulp::f32x16; 3],
    idx: &[[[u32; 16]; 2]; 3],
) -> [pulp::f32x16; 3] {
    use std::arch::x86_64::{__m512, __m512i};
    let avx = v4.avx512f;
    let (a, b, c): (__m512, __m512, __m512) = (pulp::cast(a), pulp::cast(b), pulp::cast(c));
    let mut out = [a; 3];
    for (o, [i0, i1]) in out.iter_mut().zip(idx) {
        let (i0, i1): (__m512i, __m512i) = (pulp::cast(*i0), pulp::cast(*i1));
        *o = avx._mm512_permutex2var_ps(avx._mm512_permutex2var_ps(a, i0, b), i1, c);
    }
    [pulp::cast(out[0]), pulp::cast(out[1]), pulp::cast(out[2])]
}

/// `dst[q][k] = src[3k + q]` for 16 tiles (48 values).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn split3_v4(v4: pulp::x86::V4, src: &[f32], dst: [&mut [f32]; 3]) {
    let v = [
        load(v4, &src[..16]),
        load(v4, &src[16..32]),
        load(v4, &src[32..48]),
    ];
    for (d, x) in dst.into_iter().zip(permute3(v4, v, &SPLIT3)) {
        store(v4, d, x);
    }
}

/// `dst[3k + q] = src[q][k]` for 16 tiles (48 values).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn merge3_v4(v4: pulp::x86::V4, src: [&[f32]; 3], dst: &mut [f32]) {
    let v = [load(v4, src[0]), load(v4, src[1]), load(v4, src[2])];
    for (d, x) in dst.chunks_exact_mut(16).zip(permute3(v4, v, &MERGE3)) {
        store(v4, d, x);
    }
}

/// The output transform of one output channel over one band: for a vector of tiles at a
/// time, `R = Aᵀ m A` in registers, then `out[3ty + u][3tx + v] = R[u][v][ty·ws + tx]`.
struct OutputTransform<'a> {
    products: &'a [f32],
    /// Offset of `ξ = 0`'s row for this channel; `ξ` rows are `stride` apart.
    base: usize,
    stride: usize,
    /// The channel's whole `HO×WO` plane.
    out: &'a mut [f32],
    /// Added to every output, then the activation.
    bias: f32,
    act: Act,
    scratch: &'a mut Scratch,
    g: Geometry,
    band: Band,
}

impl pulp::WithSimd for OutputTransform<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        let Self {
            products,
            base,
            stride,
            out,
            bias,
            act,
            scratch,
            g,
            band,
        } = self;
        let ws = g.ws;
        let vlen = band.rows * ws;
        // Every element read below is written first; only the size matters. Rows start on
        // cache lines, like those of V.
        let rstride = round_to_line(vlen);
        let result = aligned(scratch, M * M * rstride);
        let bias = simd.splat_f32s(bias);
        let lanes = S::F32_LANES;
        for k0 in (0..vlen).step_by(lanes) {
            let len = lanes.min(vlen - k0);
            // As in the input transform.
            // Columns first: cols[j][u] = Σ_r Aᵀ[u][r] m[r][j]; then rows.
            let column = |j: usize| {
                let at = |r: usize| base + (r * N + j) * stride + k0;
                [at(0), at(1), at(2), at(3), at(4)]
            };
            let cols = [
                at5(simd, load5(simd, products, column(0), len)),
                at5(simd, load5(simd, products, column(1), len)),
                at5(simd, load5(simd, products, column(2), len)),
                at5(simd, load5(simd, products, column(3), len)),
                at5(simd, load5(simd, products, column(4), len)),
            ];
            #[allow(clippy::needless_range_loop)] // u indexes the inner arrays
            for u in 0..M {
                let row = [cols[0][u], cols[1][u], cols[2][u], cols[3][u], cols[4][u]];
                for (v, val) in at5(simd, row).into_iter().enumerate() {
                    let at = (u * M + v) * rstride + k0;
                    let val = act.simd(simd, simd.add_f32s(val, bias));
                    store(simd, &mut result[at..at + len], val);
                }
            }
        }
        // Each output row, interleaved from its three column phases.
        let first = M * band.ty0;
        let last = (M * (band.ty0 + band.rows)).min(g.ho);
        for oy in first..last {
            let (ty, u) = ((oy - first) / M, oy % M);
            let phase = |v: usize| {
                let from = (u * M + v) * rstride + ty * ws;
                &result[from..from + g.tx]
            };
            let orow = &mut out[oy * g.wo..(oy + 1) * g.wo];
            let mut done = 0;
            #[cfg(target_arch = "x86_64")]
            if let Some(&v4) = (&simd as &dyn std::any::Any).downcast_ref::<pulp::x86::V4>() {
                // Blocks of 16 whole tiles, the last one moved back (as in the input).
                let whole = g.wo / M;
                let mut t = 0;
                while whole >= 16 && done < whole {
                    let t0 = t.min(whole - 16);
                    let src = [
                        &phase(0)[t0..t0 + 16],
                        &phase(1)[t0..t0 + 16],
                        &phase(2)[t0..t0 + 16],
                    ];
                    merge3_v4(v4, src, &mut orow[M * t0..M * t0 + 48]);
                    (t, done) = (t0 + 16, t0 + 16);
                }
            }
            let mut chunks = orow[M * done..].chunks_exact_mut(M);
            let tail = (phase(0), phase(1), phase(2));
            let tail = (&tail.0[done..], &tail.1[done..], &tail.2[done..]);
            for (((d, a), b), c) in (&mut chunks).zip(tail.0).zip(tail.1).zip(tail.2) {
                d[0] = *a;
                d[1] = *b;
                d[2] = *c;
            }
            // The last, partial tile of a row whose width is not a multiple of 3.
            for (v, d) in chunks.into_remainder().iter_mut().enumerate() {
                *d = phase(v)[g.wo / M];
            }
        }
    }
}

/// Bytes of `V` and products one band may take. Smaller bands keep them in L2 from
/// transform to product to transform, but make the products narrow, and gemm's fixed cost
/// per call and its 64-row micro-kernels (the products are computed transposed) then cost
/// more than the cache saves. HigherHRNet-W32 (AVX-512 EPYC, 1 thread): with the first,
/// unblocked transforms 0.5 MiB bands took 2.3 s per forward, 2 MiB 1.13 s, 8 MiB 1.00 s,
/// unbounded 1.11 s; with the register transforms 4 MiB and 8 MiB were within the noise of
/// the shared machine (4 MiB ahead alone, 8 MiB ahead in the interleaved ORT benchmark: 905
/// against 950 ms), 1, 2 and 16 MiB slower. Later, pinned to one vCPU, interleaved, medians of
/// 3 forwards: quiet, 4 MiB 759–897 ms against 840–899 (8 MiB) and 809–926 (2 MiB); with a
/// neighbour streaming 64 MiB arrays on the other vCPU (which the shared L3 feels), 4 MiB
/// 785–1218 ms against 935–1550 (8 MiB) and 892–1458 (2 MiB).
const BAND_BYTES: usize = 4 << 20;

impl CustomOp1 for WinogradOp<'_> {
    fn name(&self) -> &'static str {
        "winograd-conv"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        crate::kernels::enter("winograd-conv")?;
        let kn = self.kernel;
        let (n, c, h, w) = layout.shape().dims4()?;
        let x = crate::kernels::cpu_util::f32_input(storage, layout, "winograd")?;
        if c != kn.in_channels {
            candle_core::bail!(
                "winograd: input has {c} channels, the kernel {}",
                kn.in_channels
            );
        }
        let (k, s, o, p) = (kn.kernel, kn.blocks, kn.out_channels, self.pad);
        let (Some(ho), Some(wo)) = (
            (h + 2 * p).checked_sub(k).map(|d| d + 1),
            (w + 2 * p).checked_sub(k).map(|d| d + 1),
        ) else {
            candle_core::bail!("winograd: kernel {k} larger than the padded input {h}x{w}");
        };
        let len = n * o * ho * wo;
        if len == 0 || c == 0 {
            return Ok((
                CpuStorage::F32(vec![0f32; len]),
                Shape::from((n, o, ho, wo)),
            ));
        }
        if kn.u.len() != XI * s * s * o * c {
            candle_core::bail!("winograd: kernel transform of the wrong size");
        }
        let (ty, tx) = (ho.div_ceil(M), wo.div_ceil(M));
        let ws = tx + s;
        let g = Geometry {
            h,
            w,
            ho,
            wo,
            pad: p,
            tx,
            ws,
        };
        // Output tile rows per band: V (C·25 values per column, with S − 1 extra tile rows)
        // and the products (O·25 per column) within BAND_BYTES.
        let per_row = XI * (c + o) * ws * std::mem::size_of::<f32>();
        let band_rows = (BAND_BYTES / per_row).max(2 * (s - 1)).clamp(1, ty);
        let max_in_rows = band_rows + s - 1;
        // V: [C][25][columns]; a band's `in_rows · ws` columns plus S − 1 spare ones (read
        // only for the spare output columns).
        // Rounded up to whole cache lines, so that with 64-byte aligned buffers every row of
        // V and of the products starts on a line and the transforms' vector stores and loads
        // do not straddle two lines.
        let columns = round_to_line(max_in_rows * ws + s - 1);
        // Every element of V and of the products that an output reads is written before it
        // is read (the spare columns feed only dropped outputs), so buffers kept from an
        // earlier call need no clearing.
        let (mut v, mut prod) = BUFFERS
            .with(|b| b.try_borrow_mut().map(|mut b| std::mem::take(&mut *b)))
            .unwrap_or_default();
        let v_all = aligned(&mut v, c * XI * columns);
        let prod_all = aligned(&mut prod, XI * o * round_to_line(band_rows * ws));
        let dispatcher = crate::kernels::cpu_util::Dispatcher::new();
        let threads = rayon::current_num_threads();
        // The output transforms store every value of every row (all bands together), so
        // the buffer is not zeroed first.
        let out = crate::kernels::cpu_util::fully_written(len, |out| {
            for (b, out_image) in out.chunks_mut(o * ho * wo).enumerate() {
                let image = &x[b * c * h * w..(b + 1) * c * h * w];
                for ty0 in (0..ty).step_by(band_rows) {
                    let rows = band_rows.min(ty - ty0);
                    let band = Band {
                        ty0,
                        rows,
                        in_rows: rows + s - 1,
                    };
                    v_all
                        .par_chunks_mut(XI * columns)
                        .zip(image.par_chunks(h * w))
                        .for_each(|(vc, plane)| {
                            with_scratch(|scratch| {
                                dispatcher.run(InputTransform {
                                    plane,
                                    v: vc,
                                    columns,
                                    scratch,
                                    g,
                                    band,
                                })
                            });
                        });
                    // Products [25][O][used]: output tile (ty, tx) of the band is column
                    // ty·ws + tx; block (a, b) reads V's column ty·ws + tx + a·ws + b, below
                    // (rows + S − 1)·ws + S − 1 = the band's columns.
                    let used = rows * ws;
                    let pstride = round_to_line(used);
                    // With several threads each of the 25 products is split in two halves of
                    // the output channels: 25 equal tasks leave one thread a task more than
                    // the other at the end, 50 half as much.
                    let half = if threads > 1 { o.div_ceil(2) } else { o };
                    prod_all
                        .par_chunks_mut(o * pstride)
                        .take(XI)
                        .enumerate()
                        .flat_map(|(xi, dst)| {
                            dst.par_chunks_mut(half * pstride)
                                .enumerate()
                                .map(move |(h, d)| (xi, h * half, d))
                        })
                        .for_each(|(xi, o0, dst)| {
                            let rows_o = (o - o0).min(half);
                            for blk in 0..s * s {
                                let (a, bb) = (blk / s, blk % s);
                                let at = (xi * s * s + blk) * o * c + o0 * c;
                                let lhs = &kn.u[at..at + rows_o * c];
                                let first = xi * columns + a * ws + bb;
                                let rhs = &v_all[first..first + (c - 1) * XI * columns + used];
                                gemm_into(
                                    dst,
                                    pstride,
                                    used,
                                    lhs,
                                    rhs,
                                    XI * columns,
                                    rows_o,
                                    c,
                                    blk > 0,
                                );
                            }
                        });
                    let prod = &prod_all[..];
                    out_image
                        .par_chunks_mut(ho * wo)
                        .enumerate()
                        .for_each(|(oc, plane)| {
                            with_scratch(|scratch| {
                                dispatcher.run(OutputTransform {
                                    products: prod,
                                    base: oc * pstride,
                                    stride: o * pstride,
                                    out: plane,
                                    bias: self.bias.map_or(0.0, |b| b[oc]),
                                    act: self.act,
                                    scratch,
                                    g,
                                    band,
                                })
                            });
                        });
                }
            }
            Ok(())
        })?;
        BUFFERS.with(|b| {
            if let Ok(mut b) = b.try_borrow_mut() {
                *b = (v, prod);
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((n, o, ho, wo))))
    }
}

thread_local! {
    /// `V` and the products of the last call on this thread, reused by the next.
    static BUFFERS: std::cell::RefCell<(Vec<f32>, Vec<f32>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// f32 values per 64-byte cache line.
const LINE: usize = 16;

/// `n` rounded up to whole cache lines.
fn round_to_line(n: usize) -> usize {
    n.next_multiple_of(LINE)
}

/// A `len`-long part of `buf` that starts on a 64-byte boundary, growing `buf` as needed
/// (new elements zero; old ones kept, though they may move to other indices).
fn aligned(buf: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buf.len() < len + LINE {
        buf.resize(len + LINE, 0.0);
    }
    let at = buf.as_ptr().align_offset(64).min(LINE);
    &mut buf[at..at + len]
}

/// `dst (+)= lhs · rhs` for `dst` row-major `[o][dst_stride]` (`nb` columns used), `lhs`
/// row-major `[o][k]` and `rhs` rows `rhs_stride` apart, `nb` columns each; accumulates
/// when `accumulate`.
#[allow(clippy::too_many_arguments, unsafe_code)]
fn gemm_into(
    dst: &mut [f32],
    dst_stride: usize,
    nb: usize,
    lhs: &[f32],
    rhs: &[f32],
    rhs_stride: usize,
    o: usize,
    k: usize,
    accumulate: bool,
) {
    // The bounds every pointer below stays inside.
    assert!(o >= 1 && k >= 1 && nb >= 1);
    assert!(nb <= dst_stride && (o - 1) * dst_stride + nb <= dst.len());
    assert!(lhs.len() >= o * k);
    assert!((k - 1) * rhs_stride + nb <= rhs.len());
    // SAFETY: the asserts above keep every element gemm reads or writes inside the slices;
    // `dst` is borrowed mutably and does not overlap `lhs` or `rhs`.
    unsafe {
        gemm::gemm(
            o,
            nb,
            k,
            dst.as_mut_ptr(),
            1,
            dst_stride as isize,
            accumulate,
            lhs.as_ptr(),
            1,
            k as isize,
            rhs.as_ptr(),
            1,
            rhs_stride as isize,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
