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
//! The kernel transform is done once per weight (in f64) and kept in a [`WinogradCache`].
//! Errors are a few times those of a direct f32 sum (the interpolation points are small
//! integers); the posegen parity tests run through this path.

use std::sync::{Arc, OnceLock};

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Output tile side.
const M: usize = 3;
/// Input tile side (`M + 3 − 1`).
const N: usize = 5;
/// Transform positions per tile.
const XI: usize = N * N;

/// `Bᵀ` for the points 0, 1, −1, 2, ∞, its rows scaled by 2, 2, 6, 6, 1 to integers (the
/// scales are divided out of `G`).
const BT: [[f32; N]; N] = [
    [2.0, -1.0, -2.0, 1.0, 0.0],
    [0.0, 2.0, 1.0, -1.0, 0.0],
    [0.0, -2.0, 3.0, -1.0, 0.0],
    [0.0, -1.0, 0.0, 1.0, 0.0],
    [0.0, 2.0, -1.0, -2.0, 1.0],
];

/// `G` (5×3) for the same points, divided by the row scales of [`BT`].
const G: [[f64; 3]; N] = [
    [0.5, 0.0, 0.0],
    [0.5, 0.5, 0.5],
    [1.0 / 6.0, -1.0 / 6.0, 1.0 / 6.0],
    [1.0 / 6.0, 2.0 / 6.0, 4.0 / 6.0],
    [0.0, 0.0, 1.0],
];

/// `Aᵀ` (3×5).
const AT: [[f32; N]; M] = [
    [1.0, 1.0, 1.0, 1.0, 0.0],
    [0.0, 1.0, -1.0, 2.0, 0.0],
    [0.0, 1.0, 1.0, 4.0, 1.0],
];

/// A `[O, C, K, K]` kernel in the transform domain: `u[((ξ·S² + block)·O + o)·C + c]`.
#[derive(Debug)]
pub struct WinogradKernel {
    out_channels: usize,
    in_channels: usize,
    kernel: usize,
    blocks: usize,
    u: Vec<f32>,
}

impl WinogradKernel {
    /// Transforms `weight` (`[O, C, K, K]`, any float dtype, any device).
    pub fn new(weight: &Tensor) -> Result<Self> {
        let (o, c, kh, kw) = weight.dims4()?;
        if kh != kw || kh == 0 {
            candle_core::bail!("winograd: kernel {kh}x{kw} is not square");
        }
        let k = kh;
        let s = k.div_ceil(3);
        let w: Vec<f64> = weight
            .to_dtype(candle_core::DType::F64)?
            .flatten_all()?
            .to_vec1()?;
        let mut u = vec![0f32; XI * s * s * o * c];
        let tap = |oc: usize, ic: usize, y: usize, x: usize| -> f64 {
            if y < k && x < k {
                w[((oc * c + ic) * k + y) * k + x]
            } else {
                0.0
            }
        };
        for oc in 0..o {
            for ic in 0..c {
                for a in 0..s {
                    for b in 0..s {
                        let block = a * s + b;
                        // t = G · g  (5×3), then G · g · Gᵀ (5×5).
                        let mut t = [[0f64; 3]; N];
                        for (i, row) in t.iter_mut().enumerate() {
                            for (x, v) in row.iter_mut().enumerate() {
                                *v = (0..3)
                                    .map(|y| G[i][y] * tap(oc, ic, 3 * a + y, 3 * b + x))
                                    .sum();
                            }
                        }
                        for i in 0..N {
                            for j in 0..N {
                                let v: f64 = (0..3).map(|x| t[i][x] * G[j][x]).sum();
                                let xi = i * N + j;
                                u[((xi * s * s + block) * o + oc) * c + ic] = v as f32;
                            }
                        }
                    }
                }
            }
        }
        Ok(Self {
            out_channels: o,
            in_channels: c,
            kernel: k,
            blocks: s,
            u,
        })
    }
}

/// A lazily built [`WinogradKernel`] beside a convolution's weight, shared by clones.
#[derive(Clone, Debug, Default)]
pub struct WinogradCache(Arc<OnceLock<std::result::Result<WinogradKernel, String>>>);

impl WinogradCache {
    fn get(&self, weight: &Tensor) -> Result<&WinogradKernel> {
        self.0
            .get_or_init(|| WinogradKernel::new(weight).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| candle_core::Error::Msg(format!("winograd kernel: {e}")))
    }
}

/// Whether a stride-1 `k×k` convolution from `c` to `o` channels is worth the Winograd path
/// (small channel counts keep im2col: the transforms would dominate).
pub fn worthwhile(k: usize, c: usize, o: usize) -> bool {
    k >= 3 && c >= 16 && o >= 16
}

/// `x` (`[N, C, H, W]`) convolved with `weight` (`[O, C, K, K]`) at `stride` with zero `pad`,
/// no bias, on the fastest path for its shape: Winograd on the CPU for stride-1 kernels of
/// 3×3 and larger with enough channels ([`worthwhile`]), otherwise
/// [`super::im2col_cpu::conv2d`] (im2col + matmul on the CPU, candle's kernels elsewhere).
/// The FLOP counter gets the direct convolution's count either way.
pub fn conv2d_auto(
    x: &Tensor,
    weight: &Tensor,
    stride: usize,
    pad: usize,
    cache: &WinogradCache,
) -> Result<Tensor> {
    let (o, c, kh, kw) = weight.dims4()?;
    let fast = x.device().is_cpu()
        && x.dtype() == candle_core::DType::F32
        && stride == 1
        && kh == kw
        && x.dim(1)? == c
        && worthwhile(kh, c, o)
        && std::env::var_os("PS_NO_WINOGRAD").is_none();
    if !fast {
        return super::im2col_cpu::conv2d(x, weight, stride, pad);
    }
    let y = conv2d(x, weight, pad, cache)?;
    super::flops::add_conv(y.elem_count(), c, kh, kw);
    Ok(y)
}

/// `x` (`[N, C, H, W]`, f32, CPU) convolved with the cached transform of `weight`
/// (`[O, C, K, K]`), stride 1, zero `pad` on every side; no bias.
pub fn conv2d(x: &Tensor, weight: &Tensor, pad: usize, cache: &WinogradCache) -> Result<Tensor> {
    let kernel = cache.get(weight)?;
    x.contiguous()?
        .apply_op1_no_bwd(&WinogradOp { kernel, pad })
}

struct WinogradOp<'a> {
    kernel: &'a WinogradKernel,
    pad: usize,
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
    /// Output tiles per column / row.
    ty: usize,
    tx: usize,
    /// Columns from one tile row to the next in `V` and the products: the `tx + S − 1`
    /// input tiles of a row plus one spare.
    ws: usize,
    /// Input tile rows (`ty + S − 1`).
    typ: usize,
}

/// `acc[i] += c · src[i]`.
#[inline(always)]
fn axpy(acc: &mut [f32], c: f32, src: &[f32]) {
    for (a, s) in acc.iter_mut().zip(src) {
        *a += c * *s;
    }
}

/// `dst = Σ coef[t] · src(t)` over the non-zero coefficients (`dst` zero if none).
#[inline(always)]
fn combine<'s>(dst: &mut [f32], coef: &[f32; N], src: impl Fn(usize) -> &'s [f32]) {
    let mut first = true;
    for (t, &c) in coef.iter().enumerate() {
        if c == 0.0 {
            continue;
        }
        let s = src(t);
        if first {
            for (d, v) in dst.iter_mut().zip(s) {
                *d = c * *v;
            }
            first = false;
        } else {
            axpy(dst, c, s);
        }
    }
    if first {
        dst.fill(0.0);
    }
}

/// The input transform of one channel of one image, over the whole plane at once so that
/// every step is a long vector operation:
/// 1. `P[qc][qr][r'·ws + i]` = padded input at row `3r' + qr`, column `3i + qc` (the
///    plane split by row and column phase);
/// 2. horizontal: `H[j][qr][·] = Σ_x Bᵀ[j][x] · P[x mod 3][qr][· + x div 3]`;
/// 3. vertical: `V[i·5 + j][iy·ws + ix] = Σ_u Bᵀ[i][u] · H[j][u mod 3][(iy + u div 3)·ws + ix]`.
struct InputTransform<'a> {
    plane: &'a [f32],
    /// This channel's `[25][columns]` block of `V`, from this image's first column.
    v: &'a mut [f32],
    columns: usize,
    phases: &'a mut Vec<f32>,
    horizontal: &'a mut Vec<f32>,
    g: Geometry,
}

impl pulp::WithSimd for InputTransform<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let Self {
            plane,
            v,
            columns,
            phases,
            horizontal,
            g,
        } = self;
        let ws = g.ws;
        // Tile rows plus one (a tile reaches 4 rows into the next tile row).
        let rows = g.typ + 1;
        let hlen = rows * ws;
        // One spare element: the last entry reads one phase cell further.
        let plen = hlen + 1;
        phases.clear();
        phases.resize(9 * plen, 0.0);
        for y in 0..g.h {
            let py = y + g.pad;
            let (r, qr) = (py / 3, py % 3);
            if r >= rows {
                break;
            }
            for (x, &val) in plane[y * g.w..(y + 1) * g.w].iter().enumerate() {
                let px = x + g.pad;
                let (i, qc) = (px / 3, px % 3);
                if i < ws {
                    phases[(qc * 3 + qr) * plen + r * ws + i] = val;
                }
            }
        }
        horizontal.clear();
        horizontal.resize(N * 3 * hlen, 0.0);
        for (j, bt) in BT.iter().enumerate() {
            for qr in 0..3 {
                let dst = &mut horizontal[(j * 3 + qr) * hlen..(j * 3 + qr + 1) * hlen];
                combine(dst, bt, |x| {
                    let at = ((x % 3) * 3 + qr) * plen + x / 3;
                    &phases[at..at + hlen]
                });
            }
        }
        let vlen = g.typ * ws;
        for (i, bt) in BT.iter().enumerate() {
            for j in 0..N {
                let dst = &mut v[(i * N + j) * columns..(i * N + j) * columns + vlen];
                let horizontal = &horizontal[..];
                combine(dst, bt, |u| {
                    let at = (j * 3 + u % 3) * hlen + (u / 3) * ws;
                    &horizontal[at..at + vlen]
                });
            }
        }
    }
}

/// The output transform of one output channel of one image, over all tiles at once:
/// vertical `T[u][j] = Σ_r Aᵀ[u][r] · m[r·5 + j]`, horizontal `R[u][v] = Σ_j Aᵀ[v][j] · T[u][j]`,
/// then `out[3ty + u][3tx + v] = R[u][v][ty·ws + tx]`.
struct OutputTransform<'a> {
    products: &'a [f32],
    /// Offset of `ξ = 0`'s row for this channel and image; `ξ` rows are `stride` apart.
    base: usize,
    stride: usize,
    out: &'a mut [f32],
    vertical: &'a mut Vec<f32>,
    result: &'a mut Vec<f32>,
    g: Geometry,
}

impl pulp::WithSimd for OutputTransform<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let Self {
            products,
            base,
            stride,
            out,
            vertical,
            result,
            g,
        } = self;
        let ws = g.ws;
        let vlen = g.ty * ws;
        vertical.clear();
        vertical.resize(M * N * vlen, 0.0);
        result.clear();
        result.resize(M * M * vlen, 0.0);
        for (u, at) in AT.iter().enumerate() {
            for j in 0..N {
                let dst = &mut vertical[(u * N + j) * vlen..(u * N + j + 1) * vlen];
                combine(dst, at, |r| {
                    let from = base + (r * N + j) * stride;
                    &products[from..from + vlen]
                });
            }
        }
        for u in 0..M {
            for (v, at) in AT.iter().enumerate() {
                let dst = &mut result[(u * M + v) * vlen..(u * M + v + 1) * vlen];
                let vertical = &vertical[..];
                combine(dst, at, |j| {
                    &vertical[(u * N + j) * vlen..(u * N + j + 1) * vlen]
                });
            }
        }
        for (oy, row) in out.chunks_mut(g.wo).take(g.ho).enumerate() {
            let (ty, u) = (oy / M, oy % M);
            for v in 0..M {
                let from = (u * M + v) * vlen + ty * ws;
                let src = &result[from..from + g.tx];
                for (o, s) in row.iter_mut().skip(v).step_by(M).zip(src) {
                    *o = *s;
                }
            }
        }
    }
}

/// Output columns per matrix product, so that the accumulated block stays in cache.
fn column_block(out_channels: usize) -> usize {
    ((1usize << 16) / out_channels.max(1)).clamp(64, 2048)
}

impl CustomOp1 for WinogradOp<'_> {
    fn name(&self) -> &'static str {
        "winograd-conv"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let kn = self.kernel;
        let (n, c, h, w) = layout.shape().dims4()?;
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("winograd: input must be contiguous");
        };
        let x = storage
            .as_slice::<f32>()?
            .get(start..end)
            .ok_or_else(|| candle_core::Error::Msg("winograd: storage too short".into()))?;
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
        if n * o * ho * wo == 0 || c == 0 {
            return Ok((
                CpuStorage::F32(vec![0f32; n * o * ho * wo]),
                Shape::from((n, o, ho, wo)),
            ));
        }
        let (ty, tx) = (ho.div_ceil(M), wo.div_ceil(M));
        let (typ, ws) = (ty + s - 1, tx + s);
        let per_image = typ * ws + s - 1;
        let g = Geometry {
            h,
            w,
            ho,
            wo,
            pad: p,
            ty,
            tx,
            ws,
            typ,
        };
        let columns = n * per_image;
        let arch = pulp::Arch::new();

        // V: [C][25][columns]; the spare columns after each image stay zero.
        let mut v = vec![0f32; c * XI * columns];
        v.par_chunks_mut(XI * columns)
            .enumerate()
            .for_each_init(
                || (Vec::new(), Vec::new()),
                |(phases, horizontal), (ch, vc)| {
                    for b in 0..n {
                        let plane = &x[(b * c + ch) * h * w..(b * c + ch + 1) * h * w];
                        arch.dispatch(InputTransform {
                            plane,
                            v: &mut vc[b * per_image..],
                            columns,
                            phases,
                            horizontal,
                            g,
                        });
                    }
                },
            );

        // Products: [25][O][used] with used = the columns any output tile reads.
        let used = (n - 1) * per_image + ty * ws;
        let mut prod = vec![0f32; XI * o * used];
        let block = column_block(o);
        // Every read of V below is at `xi·columns + shift + ch·25·columns + col` with
        // shift ≤ (S−1)(ws+1) and col < used, inside V by construction of per_image.
        let max_shift = (s - 1) * (ws + 1);
        if max_shift + used > columns || kn.u.len() != XI * s * s * o * c {
            candle_core::bail!("winograd: inconsistent geometry");
        }
        prod.par_chunks_mut(o * used)
            .enumerate()
            .for_each(|(xi, dst)| {
                for c0 in (0..used).step_by(block) {
                    let nb = block.min(used - c0);
                    for blk in 0..s * s {
                        let (a, bb) = (blk / s, blk % s);
                        let lhs = &kn.u[(xi * s * s + blk) * o * c..(xi * s * s + blk + 1) * o * c];
                        let first = xi * columns + a * ws + bb + c0;
                        let rhs = &v[first..first + (c - 1) * XI * columns + nb];
                        gemm_into(dst, used, c0, nb, lhs, rhs, XI * columns, o, c, blk > 0);
                    }
                }
            });

        let mut out = vec![0f32; n * o * ho * wo];
        out.par_chunks_mut(ho * wo)
            .enumerate()
            .for_each_init(
                || (Vec::new(), Vec::new()),
                |(vertical, result), (bo, plane)| {
                    let (b, oc) = (bo / o, bo % o);
                    arch.dispatch(OutputTransform {
                        products: &prod,
                        base: oc * used + b * per_image,
                        stride: o * used,
                        out: plane,
                        vertical,
                        result,
                        g,
                    });
                },
            );
        Ok((CpuStorage::F32(out), Shape::from((n, o, ho, wo))))
    }
}

/// `dst[:, c0..c0+nb] (+)= lhs · rhs` with `dst` row-major `[o][dst_stride]`, `lhs`
/// row-major `[o][k]` and `rhs` rows `rhs_stride` apart, `nb` columns each; accumulates when
/// `accumulate`.
#[allow(clippy::too_many_arguments, unsafe_code)]
fn gemm_into(
    dst: &mut [f32],
    dst_stride: usize,
    c0: usize,
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
    assert!(c0 + nb <= dst_stride && (o - 1) * dst_stride + c0 + nb <= dst.len());
    assert!(lhs.len() >= o * k);
    assert!((k - 1) * rhs_stride + nb <= rhs.len());
    // SAFETY: the asserts above keep every element gemm reads or writes inside the slices;
    // `dst` is borrowed mutably and does not overlap `lhs` or `rhs`.
    unsafe {
        gemm::gemm(
            o,
            nb,
            k,
            dst.as_mut_ptr().add(c0),
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
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    /// Max-abs difference to candle's conv2d computed in f64, relative to the output's RMS.
    fn check(n: usize, c: usize, o: usize, k: usize, pad: usize, h: usize, w: usize) -> f64 {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 1.0, (n, c, h, w), &dev).unwrap();
        let wt = Tensor::randn(0f32, 1.0, (o, c, k, k), &dev).unwrap();
        let want = x
            .to_dtype(DType::F64)
            .unwrap()
            .conv2d(&wt.to_dtype(DType::F64).unwrap(), pad, 1, 1, 1)
            .unwrap();
        let got = conv2d(&x, &wt, pad, &WinogradCache::default()).unwrap();
        assert_eq!(got.dims(), want.dims(), "k{k} p{pad} {h}x{w}");
        let got = got.to_dtype(DType::F64).unwrap();
        let rms = want.sqr().unwrap().mean_all().unwrap().to_scalar::<f64>().unwrap();
        let d = (got - &want)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        d / rms.sqrt()
    }

    #[test]
    fn matches_direct_convolution() {
        for (n, c, o, k, pad, h, w) in [
            (1, 4, 5, 3, 1, 7, 9),
            (2, 3, 2, 3, 1, 1, 1),
            (2, 6, 3, 3, 0, 8, 5),
            (1, 5, 4, 5, 2, 11, 6),
            (1, 3, 4, 9, 4, 13, 10),
            (2, 4, 3, 11, 5, 12, 14),
            (1, 2, 3, 7, 3, 3, 4),
            (1, 17, 19, 3, 1, 40, 37),
        ] {
            let err = check(n, c, o, k, pad, h, w);
            assert!(err < 2e-5, "n{n} c{c} o{o} k{k} p{pad} {h}x{w}: {err:.3e}");
        }
    }

    #[test]
    fn kernel_larger_than_input_is_an_error() {
        let x = Tensor::zeros((1, 2, 3, 3), DType::F32, &Device::Cpu).unwrap();
        let wt = Tensor::zeros((2, 2, 5, 5), DType::F32, &Device::Cpu).unwrap();
        assert!(conv2d(&x, &wt, 0, &WinogradCache::default()).is_err());
    }
}
