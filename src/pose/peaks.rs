//! Heatmap peak finding for bottom-up decoding ([`super::paf`]): 3×3 non-maximum
//! suppression with plateau handling and sub-pixel refinement ([`find_peaks`]), and the
//! OpenPose / tf-pose-estimation pipeline around it (bilinear upsampling, Gaussian
//! smoothing, peaks mapped back to the input map) used by [`super::paf::decode`].
//!
//! Maps are `[H, W]` row-major `f32` slices; positions are `(x, y)` in pixel-index
//! coordinates (integers are pixel centres, see [`super::maps`]).

/// A local maximum: position `(x, y)` in pixel-index coordinates of the map it was found in,
/// and the map's value there.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Peak {
    /// Column position (pixel-index coordinates, sub-pixel).
    pub x: f32,
    /// Row position (pixel-index coordinates, sub-pixel).
    pub y: f32,
    /// The map's value at the peak.
    pub score: f32,
}

/// Local maxima of one `[H, W]` row-major map (`map.len()` must equal `width * height`,
/// otherwise nothing is found).
///
/// A pixel is a peak when its value is strictly greater than `threshold` and no pixel of its
/// 3×3 neighbourhood (clipped at the border, so border pixels qualify) is greater. Ties: a
/// connected (8-neighbour) plateau of equal values counts once, as a single peak at the
/// plateau's centroid, and only when no pixel around the plateau is greater. NaN values
/// never become peaks and never suppress a neighbour.
///
/// Sub-pixel refinement: an isolated peak is moved, per axis, to the vertex of the parabola
/// through it and its two neighbours (skipped at the border or without negative curvature),
/// at most half a pixel. `score` is the map value at the peak's pixel (for a plateau, the
/// plateau's value). Peaks come in row-major order.
pub fn find_peaks(map: &[f32], width: usize, height: usize, threshold: f32) -> Vec<Peak> {
    peaks_impl(map, width, height, threshold, true)
}

/// [`find_peaks`], with the sub-pixel refinement optional (plateaus still give centroids).
pub(super) fn peaks_impl(
    map: &[f32],
    w: usize,
    h: usize,
    threshold: f32,
    refine: bool,
) -> Vec<Peak> {
    let mut out = Vec::new();
    if w.checked_mul(h) != Some(map.len()) || map.is_empty() {
        return out;
    }
    let at = |x: usize, y: usize| (x < w && y < h).then(|| map.get(y * w + x).copied())?;
    // Neighbour coordinates of (x, y) inside the map.
    let around = move |x: usize, y: usize| {
        (y.saturating_sub(1)..=(y + 1).min(h - 1))
            .flat_map(move |ny| (x.saturating_sub(1)..=(x + 1).min(w - 1)).map(move |nx| (nx, ny)))
            .filter(move |&p| p != (x, y))
    };
    let mut visited: Option<Vec<bool>> = None;
    for (i, &v) in map.iter().enumerate() {
        let above = v > threshold; // false for NaN values and a NaN threshold
        if !above {
            continue;
        }
        let (x, y) = (i % w, i / w);
        let mut tie = false;
        let mut beaten = false;
        for (nx, ny) in around(x, y) {
            let n = at(nx, ny).unwrap_or(f32::NAN);
            beaten |= n > v;
            tie |= n == v;
        }
        if beaten {
            continue;
        }
        if !tie {
            let (mut px, mut py) = (x as f32, y as f32);
            if refine {
                let l = x.checked_sub(1).and_then(|lx| at(lx, y));
                let t = y.checked_sub(1).and_then(|ty| at(x, ty));
                px += parabola_offset(l, v, at(x + 1, y));
                py += parabola_offset(t, v, at(x, y + 1));
            }
            out.push(Peak {
                x: px,
                y: py,
                score: v,
            });
            continue;
        }
        // Plateau: flood-fill it once, emit its centroid if nothing around it is higher.
        let seen = visited.get_or_insert_with(|| vec![false; map.len()]);
        if seen.get(i).copied().unwrap_or(true) {
            continue;
        }
        let (mut sx, mut sy, mut count) = (0.0f64, 0.0f64, 0usize);
        let mut stack = vec![i];
        if let Some(s) = seen.get_mut(i) {
            *s = true;
        }
        while let Some(j) = stack.pop() {
            let (x, y) = (j % w, j / w);
            sx += x as f64;
            sy += y as f64;
            count += 1;
            for (nx, ny) in around(x, y) {
                let n = at(nx, ny).unwrap_or(f32::NAN);
                beaten |= n > v;
                let k = ny * w + nx;
                if n == v {
                    if let Some(s) = seen.get_mut(k).filter(|s| !**s) {
                        *s = true;
                        stack.push(k);
                    }
                }
            }
        }
        if !beaten && count > 0 {
            out.push(Peak {
                x: (sx / count as f64) as f32,
                y: (sy / count as f64) as f32,
                score: v,
            });
        }
    }
    out
}

/// Vertex offset of the parabola through `(-1, l), (0, c), (1, r)`, in `[-0.5, 0.5]`.
fn parabola_offset(l: Option<f32>, c: f32, r: Option<f32>) -> f32 {
    let (Some(l), Some(r)) = (l, r) else {
        return 0.0;
    };
    let curvature = l - 2.0 * c + r;
    let d = 0.5 * (l - r) / curvature;
    if curvature < 0.0 && d.is_finite() {
        d.clamp(-0.5, 0.5)
    } else {
        0.0
    }
}

/// Non-finite map values are read as 0 throughout decoding.
pub(super) fn finite(v: f32) -> f32 {
    if v.is_finite() {
        v
    } else {
        0.0
    }
}

/// Bilinear sample of an `[H, W]` map at a pixel-index position, clamped to the border.
pub(super) fn bilinear(map: &[f32], w: usize, h: usize, x: f32, y: f32) -> f32 {
    if w == 0 || h == 0 || !x.is_finite() || !y.is_finite() {
        return 0.0;
    }
    let x = x.clamp(0.0, (w - 1) as f32);
    let y = y.clamp(0.0, (h - 1) as f32);
    let (x0, y0) = (x.floor() as usize, y.floor() as usize);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let at = |xx: usize, yy: usize| finite(map.get(yy * w + xx).copied().unwrap_or(0.0));
    let top = at(x0, y0) + (at(x1, y0) - at(x0, y0)) * fx;
    let bottom = at(x0, y1) + (at(x1, y1) - at(x0, y1)) * fx;
    top + (bottom - top) * fy
}

/// Source index pair and weight for each destination index of a 1-D bilinear upsampling.
fn upsample_taps(n: usize, f: usize) -> Vec<(usize, usize, f32)> {
    let last = n.saturating_sub(1);
    (0..n * f)
        .map(|d| {
            let s = ((d as f32 + 0.5) / f as f32 - 0.5).clamp(0.0, last as f32);
            let i0 = (s.floor() as usize).min(last);
            (i0, (i0 + 1).min(last), s - i0 as f32)
        })
        .collect()
}

/// Reusable buffers for the per-joint peak search on an `[H, W]` map upsampled by `f`.
///
/// Upsampling and blurring are both separable and linear, so the work is reordered without
/// changing the result: rows are upsampled and blurred horizontally at the input's row count,
/// then each output row is one weighted sum of those rows (vertical interpolation and
/// vertical blur folded together).
pub(super) struct PeakScratch {
    w: usize,
    h: usize,
    f: usize,
    xtaps: Vec<(usize, usize, f32)>,
    ytaps: Vec<(usize, usize, f32)>,
    /// Normalised Gaussian, `2r + 1` taps (`[1.0]` without smoothing).
    kernel: Vec<f32>,
    rows: Vec<f32>,
    up: Vec<f32>,
    pad: Vec<f32>,
    coefs: Vec<f32>,
}

impl PeakScratch {
    /// Buffers for `[H, W]` maps upsampled by `f` and blurred with `sigma` (upsampled
    /// pixels; `<= 0` or NaN: no blur). `None` if `f` is 0 or the upsampled size overflows.
    pub(super) fn new(w: usize, h: usize, f: usize, sigma: f32) -> Option<Self> {
        let (uw, uh) = (w.checked_mul(f)?, h.checked_mul(f)?);
        uw.checked_mul(uh).filter(|_| f > 0)?;
        let mut kernel = vec![1.0];
        // Wider than the map only repeats edge values; too narrow to matter is no blur.
        let sigma = sigma.min(uw.max(uh) as f32);
        let two_var = 2.0 * sigma * sigma;
        if sigma > 0.0 && two_var.is_normal() {
            // 4 sigma each side, as tf-pose's 25-tap kernel for sigma 3.
            let r = ((4.0 * sigma).ceil() as usize).max(1);
            kernel = (0..=2 * r)
                .map(|k| (-((k as f32 - r as f32).powi(2)) / two_var).exp())
                .collect();
            let sum: f32 = kernel.iter().sum();
            kernel.iter_mut().for_each(|k| *k /= sum);
        }
        Some(Self {
            w,
            h,
            f,
            xtaps: upsample_taps(w, f),
            ytaps: upsample_taps(h, f),
            kernel,
            rows: Vec::new(),
            up: Vec::new(),
            pad: Vec::new(),
            coefs: Vec::new(),
        })
    }

    /// Peaks of one `[H, W]` channel (smoothed value `> threshold`), in the channel's
    /// pixel-index coordinates, strongest first, at most `max_peaks`; `subpixel` enables the
    /// parabola refinement of [`find_peaks`]. A peak's score is the unsmoothed channel,
    /// bilinearly read at its position (the references read the upsampled map at the peak).
    ///
    /// Only a crop around the pixels above the threshold is upsampled, smoothed and searched.
    /// Interpolation and the normalised blur are convex combinations, so a smoothed value
    /// (or a neighbour it is compared with) can exceed the threshold only within
    /// `2r + 1 + f` upsampled pixels of such a pixel; with that margin the crop gives exactly
    /// the full-map result.
    pub(super) fn peaks(
        &mut self,
        channel: &[f32],
        threshold: f32,
        subpixel: bool,
        max_peaks: usize,
    ) -> Vec<Peak> {
        let (w, h, f) = (self.w, self.h, self.f);
        if w == 0 || h == 0 || w.checked_mul(h) != Some(channel.len()) {
            return Vec::new();
        }
        let mut bbox: Option<[usize; 4]> = None;
        for (i, &v) in channel.iter().enumerate() {
            if finite(v) > threshold {
                let (x, y) = (i % w, i / w);
                let b = bbox.get_or_insert([x, x, y, y]);
                *b = [b[0].min(x), b[1].max(x), b[2].min(y), b[3].max(y)];
            }
        }
        let Some([x0, x1, y0, y1]) = bbox else {
            return Vec::new();
        };
        let r = self.kernel.len() / 2;
        let m = (2 * r + 1 + f).div_ceil(f) + 1;
        let (x0, x1) = (x0.saturating_sub(m), (x1 + m).min(w - 1));
        let (y0, y1) = (y0.saturating_sub(m), (y1 + m).min(h - 1));
        // Crop in upsampled pixels: columns [ux0, ux0 + cw), rows [uy0, uy0 + ch).
        let (ux0, cw, uy0, ch) = (x0 * f, (x1 + 1 - x0) * f, y0 * f, (y1 + 1 - y0) * f);
        let (Some(xtaps), Some(ytaps)) =
            (self.xtaps.get(ux0..ux0 + cw), self.ytaps.get(uy0..uy0 + ch))
        else {
            return Vec::new();
        };
        // Input rows the crop reads, upsampled and blurred horizontally.
        let ry0 = y0.saturating_sub(1);
        let nrows = (y1 + 1).min(h - 1) + 1 - ry0;
        self.rows.resize(nrows * cw, 0.0);
        let src_rows = channel.chunks_exact(w).skip(ry0);
        for (src, dst) in src_rows.zip(self.rows.chunks_exact_mut(cw)) {
            for (d, &(i0, i1, t)) in dst.iter_mut().zip(xtaps) {
                let a = finite(src.get(i0).copied().unwrap_or(0.0));
                let b = finite(src.get(i1).copied().unwrap_or(0.0));
                *d = a + (b - a) * t;
            }
            if r > 0 {
                let (first, last) = (dst.first().copied(), dst.last().copied());
                self.pad.clear();
                self.pad
                    .extend(std::iter::repeat_n(first.unwrap_or(0.0), r));
                self.pad.extend_from_slice(dst);
                self.pad.extend(std::iter::repeat_n(last.unwrap_or(0.0), r));
                let pad = &self.pad;
                weighted_sum(dst, &self.kernel, |k| pad.get(k..k + cw));
            }
        }
        // Each output row: blur taps over clamped upsampled rows, each a lerp of two inputs.
        self.up.resize(cw * ch, 0.0);
        for (y, dst) in self.up.chunks_exact_mut(cw).enumerate() {
            self.coefs.clear();
            self.coefs.resize(nrows, 0.0);
            for (k, &wk) in self.kernel.iter().enumerate() {
                let sy = (y + k).saturating_sub(r).min(ch - 1);
                if let Some(&(i0, i1, t)) = ytaps.get(sy) {
                    for (i, c) in [(i0, wk * (1.0 - t)), (i1, wk * t)] {
                        if let Some(slot) = self.coefs.get_mut(i.saturating_sub(ry0)) {
                            *slot += c;
                        }
                    }
                }
            }
            let lo = self.coefs.iter().position(|&c| c != 0.0).unwrap_or(0);
            let rows = &self.rows;
            let coefs = self.coefs.get(lo..).unwrap_or_default();
            weighted_sum(dst, coefs, |k| rows.get((lo + k) * cw..(lo + k + 1) * cw));
        }
        let mut peaks = peaks_impl(&self.up, cw, ch, threshold, subpixel);
        peaks.sort_by(|a, b| b.score.total_cmp(&a.score));
        peaks.truncate(max_peaks);
        let back = |u: f32, origin: usize| (u + origin as f32 + 0.5) / f as f32 - 0.5;
        for p in &mut peaks {
            p.x = back(p.x, ux0);
            p.y = back(p.y, uy0);
            p.score = bilinear(channel, w, h, p.x, p.y);
        }
        peaks
    }
}

/// `dst[x] = sum_k weights[k] * src(k)[x]` (zero weights skipped), in register-sized blocks,
/// which vectorises well.
fn weighted_sum<'a>(dst: &mut [f32], weights: &[f32], src: impl Fn(usize) -> Option<&'a [f32]>) {
    const B: usize = 16;
    for (c, block) in dst.chunks_mut(B).enumerate() {
        let (x, n) = (c * B, block.len());
        let mut acc = [0.0f32; B];
        for (k, &wk) in weights.iter().enumerate() {
            let Some(src) = src(k).filter(|_| wk != 0.0) else {
                continue;
            };
            if let Some(s) = src
                .get(x..x + B)
                .and_then(|s| <&[f32; B]>::try_from(s).ok())
            {
                acc.iter_mut().zip(s).for_each(|(a, &v)| *a += wk * v);
            } else if let Some(s) = src.get(x..x + n) {
                acc.iter_mut().zip(s).for_each(|(a, &v)| *a += wk * v);
            }
        }
        block.iter_mut().zip(acc).for_each(|(d, a)| *d = a);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pose::paf::PafParams;

    #[test]
    fn find_peaks_plateau_border_threshold() {
        // A 2x2 plateau yields one peak at its centre.
        let mut m = vec![0.0f32; 6 * 5];
        for (x, y) in [(2, 1), (3, 1), (2, 2), (3, 2)] {
            m[y * 6 + x] = 1.0;
        }
        assert_eq!(
            find_peaks(&m, 6, 5, 0.5),
            vec![Peak {
                x: 2.5,
                y: 1.5,
                score: 1.0
            }]
        );
        // A plateau next to a higher pixel is no peak; the higher pixel is.
        m[3 * 6 + 4] = 2.0;
        let peaks = find_peaks(&m, 6, 5, 0.5);
        assert_eq!(peaks.len(), 1);
        assert_eq!((peaks[0].x, peaks[0].y, peaks[0].score), (4.0, 3.0, 2.0));
        // Border and corner peaks.
        let mut b = vec![0.0f32; 5 * 4];
        b[0] = 0.7;
        b[5 * 4 - 1] = 0.9;
        b[2] = 0.6;
        let peaks = find_peaks(&b, 5, 4, 0.1);
        let at: Vec<_> = peaks.iter().map(|p| (p.x, p.y)).collect();
        assert_eq!(at, vec![(0.0, 0.0), (2.0, 0.0), (4.0, 3.0)]);
        // The threshold is strict.
        assert_eq!(find_peaks(&b, 5, 4, 0.6).len(), 2);
        assert_eq!(find_peaks(&b, 5, 4, 0.9).len(), 0);
        // A flat map, NaN values and a bad length.
        assert_eq!(find_peaks(&[0.3; 12], 4, 3, 0.1).len(), 1);
        let mut n = vec![f32::NAN; 9];
        n[4] = 1.0;
        assert_eq!(find_peaks(&n, 3, 3, 0.1).len(), 1);
        assert!(find_peaks(&b, 4, 4, 0.1).is_empty());
        assert!(find_peaks(&[], 0, 0, 0.1).is_empty());
    }

    #[test]
    fn parabola_refines_between_pixels() {
        // Samples of a parabola with its vertex at x = 2.3.
        let m: Vec<f32> = (0..5).map(|x| 4.0 - (x as f32 - 2.3).powi(2)).collect();
        let peaks = find_peaks(&m, 5, 1, 0.0);
        assert_eq!(peaks.len(), 1);
        assert!((peaks[0].x - 2.3).abs() < 1e-4 && peaks[0].y == 0.0);
    }

    #[test]
    fn upsampled_peak_round_trip() {
        let (w, h) = (24, 16);
        for (subpixel, (tx, ty)) in [
            (true, (12.3, 7.6)),
            (false, (12.3, 7.6)),
            (true, (5.81, 9.45)),
        ] {
            let blob: Vec<f32> = (0..w * h)
                .map(|i| {
                    let (x, y) = ((i % w) as f32, (i / w) as f32);
                    (-((x - tx).powi(2) + (y - ty).powi(2)) / 2.0).exp()
                })
                .collect();
            let params = PafParams {
                subpixel,
                ..PafParams::default()
            };
            let peaks = PeakScratch::new(w, h, params.upsample, params.smooth_sigma)
                .map(|mut s| s.peaks(&blob, params.peak_threshold, params.subpixel, 128))
                .unwrap_or_default();
            assert_eq!(peaks.len(), 1);
            let e = (peaks[0].x - tx).hypot(peaks[0].y - ty);
            assert!(
                e < 0.25,
                "subpixel {subpixel}: {:?} vs ({tx}, {ty})",
                peaks[0]
            );
            assert!(peaks[0].score > 0.7, "{:?}", peaks[0]);
            println!("subpixel {subpixel}: error {e:.3}");
        }
    }

    /// Upsample, blur and search the whole map, the straightforward way.
    fn naive_peaks(ch: &[f32], w: usize, h: usize, p: &PafParams) -> Vec<Peak> {
        let f = p.upsample;
        let (uw, uh) = (w * f, h * f);
        let (xt, yt) = (upsample_taps(w, f), upsample_taps(h, f));
        let mut up = vec![0.0f32; uw * uh];
        for uy in 0..uh {
            for ux in 0..uw {
                let ((x0, x1, tx), (y0, y1, ty)) = (xt[ux], yt[uy]);
                let v = |x: usize, y: usize| ch[y * w + x];
                let top = v(x0, y0) + (v(x1, y0) - v(x0, y0)) * tx;
                let bottom = v(x0, y1) + (v(x1, y1) - v(x0, y1)) * tx;
                up[uy * uw + ux] = top + (bottom - top) * ty;
            }
        }
        if p.smooth_sigma > 0.0 {
            let r = (4.0 * p.smooth_sigma).ceil() as isize;
            let g: Vec<f32> = (-r..=r)
                .map(|k| (-((k * k) as f32) / (2.0 * p.smooth_sigma.powi(2))).exp())
                .collect();
            let sum: f32 = g.iter().sum();
            let blur = |src: &[f32], dx: isize, dy: isize| {
                let mut out = vec![0.0f32; uw * uh];
                for y in 0..uh as isize {
                    for x in 0..uw as isize {
                        let mut acc = 0.0;
                        for (k, gk) in (-r..=r).zip(&g) {
                            let sx = (x + k * dx).clamp(0, uw as isize - 1) as usize;
                            let sy = (y + k * dy).clamp(0, uh as isize - 1) as usize;
                            acc += gk / sum * src[sy * uw + sx];
                        }
                        out[y as usize * uw + x as usize] = acc;
                    }
                }
                out
            };
            up = blur(&blur(&up, 1, 0), 0, 1);
        }
        let back = |u: f32| (u + 0.5) / f as f32 - 0.5;
        let peaks = peaks_impl(&up, uw, uh, p.peak_threshold, p.subpixel);
        peaks
            .into_iter()
            .map(|q| Peak {
                x: back(q.x),
                y: back(q.y),
                ..q
            })
            .collect()
    }

    #[test]
    fn cropped_fast_path_matches_naive_pipeline() {
        // Blobs in the middle (the crop is smaller than the map) and at the borders.
        type Scene<'a> = (usize, usize, &'a [(f32, f32, f32)]);
        let scenes: [Scene; 2] = [
            (
                48,
                36,
                &[(14.1, 12.3, 0.9), (18.6, 13.9, 0.7), (25.7, 17.2, 1.0)],
            ),
            (
                23,
                17,
                &[
                    (0.4, 0.3, 0.9),
                    (21.7, 9.2, 0.6),
                    (9.1, 8.8, 1.0),
                    (11.6, 9.9, 0.8),
                ],
            ),
        ];
        let settings = [
            (4, 3.0, true),
            (4, 3.0, false),
            (2, 1.5, true),
            (1, 0.0, true),
            (3, 0.0, false),
        ];
        for ((w, h, blobs), (upsample, smooth_sigma, subpixel)) in scenes
            .iter()
            .flat_map(|s| settings.iter().map(move |p| (s, p)))
        {
            let map: Vec<f32> = (0..w * h)
                .map(|i| {
                    let (x, y) = ((i % w) as f32, (i / w) as f32);
                    let ripple = 0.03 * (0.9 * x).sin() * (1.3 * y).cos();
                    blobs.iter().fold(ripple, |acc, &(bx, by, a)| {
                        acc.max(a * (-((x - bx).powi(2) + (y - by).powi(2)) / 2.0).exp())
                    })
                })
                .collect();
            let p = PafParams {
                upsample: *upsample,
                smooth_sigma: *smooth_sigma,
                subpixel: *subpixel,
                ..PafParams::default()
            };
            let key = |q: &Peak| (q.x * 1e3).round() as i64 * 100_000 + (q.y * 1e3).round() as i64;
            let mut fast = PeakScratch::new(*w, *h, p.upsample, p.smooth_sigma)
                .map(|mut s| s.peaks(&map, p.peak_threshold, p.subpixel, 128))
                .unwrap_or_default();
            let mut slow = naive_peaks(&map, *w, *h, &p);
            fast.sort_by_key(key);
            slow.sort_by_key(key);
            assert_eq!(fast.len(), slow.len(), "{p:?}: {fast:?} vs {slow:?}");
            assert!(fast.len() >= 2, "{fast:?}");
            for (a, b) in fast.iter().zip(&slow) {
                assert!(
                    (a.x - b.x).abs() < 1e-3 && (a.y - b.y).abs() < 1e-3,
                    "{a:?} vs {b:?}"
                );
            }
        }
    }
}
