//! Single-person decoding: one keypoint per joint channel at the channel's maximum.
//!
//! Maps are `[K, H, W]`; coordinates are map pixel indices `(x, y)`. The maximum cell is
//! refined by a quarter cell towards the larger neighbour on each axis (the usual
//! SimpleBaseline / HRNet / CPM test-time rule), which halves the quantisation error of a
//! plain argmax on smooth peaks.
//!
//! [`decode_dark`] is the distribution-aware alternative (DARK), and [`flip_back`] /
//! [`average`] are the pure-math half of the top-down flip test.

use super::maps::Maps;
use super::person::{Keypoint, Person};

/// The maximum of one `[height, width]` map: `(x, y, value)` with the quarter-cell
/// refinement, or `None` for an empty map or one without a finite value.
pub fn refined_peak(map: &[f32], width: usize, height: usize) -> Option<(f32, f32, f32)> {
    let (x, y, value) = argmax(map, width, height)?;
    let at = |x: usize, y: usize| map.get(y * width + x).copied().unwrap_or(f32::NAN);
    let nudge = |lo: Option<f32>, hi: Option<f32>| match (lo, hi) {
        (Some(l), Some(h)) if h.is_finite() && l.is_finite() && h != l => 0.25 * (h - l).signum(),
        _ => 0.0,
    };
    let dx = nudge(
        x.checked_sub(1).map(|xl| at(xl, y)),
        (x + 1 < width).then(|| at(x + 1, y)),
    );
    let dy = nudge(
        y.checked_sub(1).map(|yl| at(x, yl)),
        (y + 1 < height).then(|| at(x, y + 1)),
    );
    Some((x as f32 + dx, y as f32 + dy, value))
}

/// One person from the first `joints` channels of `maps` (any background channel after
/// them is ignored). Every joint gets its refined maximum with the map value as score;
/// the person's score is the mean joint score.
pub fn decode(maps: &Maps, joints: usize) -> Person {
    let (w, h) = (maps.width(), maps.height());
    let keypoints: Vec<Option<Keypoint>> = (0..joints.min(maps.channels()))
        .map(|k| {
            let (x, y, score) = refined_peak(maps.channel(k)?, w, h)?;
            Some(Keypoint { x, y, score })
        })
        .collect();
    let found: Vec<f32> = keypoints.iter().flatten().map(|k| k.score).collect();
    let score = if found.is_empty() {
        0.0
    } else {
        found.iter().sum::<f32>() / found.len() as f32
    };
    Person { score, keypoints }
}

/// The heatmap sigma (in map cells) of the standard top-down training recipe (COCO
/// 256×192 HRNet / SimpleBaseline, `MODEL.SIGMA: 2`), the default of [`decode_dark`].
pub const DARK_SIGMA: f32 = 2.0;

/// DARK decoding (Zhang, Zhu, Dai, Ye, Zhu, "Distribution-Aware Coordinate Representation
/// for Human Pose Estimation", CVPR 2020) with the training sigma [`DARK_SIGMA`]; see
/// [`decode_dark_with_sigma`].
pub fn decode_dark(maps: &Maps, joints: usize) -> Person {
    decode_dark_with_sigma(maps, joints, DARK_SIGMA)
}

/// DARK decoding of the first `joints` channels of `maps`, for heatmaps trained with
/// Gaussians of `sigma` map cells.
///
/// A heatmap trained on a Gaussian target is, near its peak, a Gaussian whose logarithm is a
/// quadratic; DARK recovers the sub-pixel centre of that quadratic instead of nudging the
/// argmax by a quarter cell:
///
/// 1. the integer argmax `m` of the raw map (its value is the joint score);
/// 2. the map is smoothed with a Gaussian kernel of the training `sigma` (radius ⌈3σ⌉, edges
///    replicated), which removes the multi-modal ripples of a real network output and keeps
///    the peak Gaussian-shaped, then rescaled so its maximum equals the raw maximum;
/// 3. `L = ln(max(map, 1e-10))`;
/// 4. a second-order Taylor expansion of `L` at `m`, with central differences: gradient
///    `g = (∂x, ∂y)`, Hessian `H = [[∂xx, ∂xy], [∂xy, ∂yy]]`; the maximum of the quadratic
///    is `m − H⁻¹ g`.
///
/// For an exact Gaussian the log is exactly quadratic, so the centre is recovered to
/// rounding. The offset is applied only when `H` is negative definite (a true maximum) and
/// moves the point by less than one cell on each axis, and only away from the border (one
/// cell on each side is needed for the differences); otherwise the plain argmax is kept.
pub fn decode_dark_with_sigma(maps: &Maps, joints: usize, sigma: f32) -> Person {
    let (w, h) = (maps.width(), maps.height());
    let keypoints: Vec<Option<Keypoint>> = (0..joints.min(maps.channels()))
        .map(|k| {
            let (x, y, score) = dark_peak(maps.channel(k)?, w, h, sigma)?;
            Some(Keypoint { x, y, score })
        })
        .collect();
    let found: Vec<f32> = keypoints.iter().flatten().map(|k| k.score).collect();
    let score = if found.is_empty() {
        0.0
    } else {
        found.iter().sum::<f32>() / found.len() as f32
    };
    Person { score, keypoints }
}

/// The integer argmax of a `[height, width]` map: `(x, y, value)`.
fn argmax(map: &[f32], width: usize, height: usize) -> Option<(usize, usize, f32)> {
    if width == 0 || height == 0 || map.len() < width * height {
        return None;
    }
    let (best, value) = map
        .iter()
        .take(width * height)
        .enumerate()
        .filter(|(_, v)| v.is_finite())
        .fold(None::<(usize, f32)>, |acc, (i, &v)| match acc {
            Some((_, bv)) if bv >= v => acc,
            _ => Some((i, v)),
        })?;
    Some((best % width, best / width, value))
}

/// One map's DARK peak (see [`decode_dark_with_sigma`]).
pub fn dark_peak(map: &[f32], width: usize, height: usize, sigma: f32) -> Option<(f32, f32, f32)> {
    let (x, y, value) = argmax(map, width, height)?;
    let plain = Some((x as f32, y as f32, value));
    if x == 0 || y == 0 || x + 1 >= width || y + 1 >= height {
        return plain;
    }
    let mut blurred = gaussian_blur(&map[..width * height], width, height, sigma);
    let peak = blurred.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if peak.is_finite() && peak > 0.0 && value > 0.0 {
        let s = value / peak;
        blurred.iter_mut().for_each(|v| *v *= s);
    }
    let at = |xx: usize, yy: usize| f64::from(blurred[yy * width + xx].max(1e-10)).ln();
    let c = at(x, y);
    let dx = 0.5 * (at(x + 1, y) - at(x - 1, y));
    let dy = 0.5 * (at(x, y + 1) - at(x, y - 1));
    let dxx = at(x + 1, y) - 2.0 * c + at(x - 1, y);
    let dyy = at(x, y + 1) - 2.0 * c + at(x, y - 1);
    let dxy = 0.25 * (at(x + 1, y + 1) - at(x + 1, y - 1) - at(x - 1, y + 1) + at(x - 1, y - 1));
    let det = dxx * dyy - dxy * dxy;
    let is_maximum = dxx < 0.0 && det > 0.0;
    if !is_maximum {
        return plain;
    }
    let ox = -(dyy * dx - dxy * dy) / det;
    let oy = -(dxx * dy - dxy * dx) / det;
    let small = ox.is_finite() && oy.is_finite() && ox.abs() < 1.0 && oy.abs() < 1.0;
    if !small {
        return plain;
    }
    Some((x as f32 + ox as f32, y as f32 + oy as f32, value))
}

/// A separable Gaussian blur of a `[height, width]` map (radius ⌈3σ⌉, normalised kernel,
/// edges replicated). `sigma ≤ 0` returns the map unchanged.
pub fn gaussian_blur(map: &[f32], width: usize, height: usize, sigma: f32) -> Vec<f32> {
    if sigma.is_nan() || sigma <= 0.0 || width == 0 || height == 0 {
        return map.to_vec();
    }
    let r = (3.0 * sigma).ceil() as isize;
    let mut kernel: Vec<f64> = (-r..=r)
        .map(|i| (-(i * i) as f64 / (2.0 * f64::from(sigma).powi(2))).exp())
        .collect();
    let sum: f64 = kernel.iter().sum();
    kernel.iter_mut().for_each(|k| *k /= sum);
    let clamp = |i: isize, n: usize| i.clamp(0, n as isize - 1) as usize;
    let pass = |src: &[f32], horizontal: bool| -> Vec<f32> {
        let mut out = vec![0.0; width * height];
        for y in 0..height {
            for x in 0..width {
                let mut acc = 0.0f64;
                for (t, k) in kernel.iter().enumerate() {
                    let d = t as isize - r;
                    let (sx, sy) = if horizontal {
                        (clamp(x as isize + d, width), y)
                    } else {
                        (x, clamp(y as isize + d, height))
                    };
                    acc += k * f64::from(src[sy * width + sx]);
                }
                out[y * width + x] = acc as f32;
            }
        }
        out
    };
    pass(&pass(map, true), false)
}

/// The top-down flip test's second half: the maps of the mirrored crop brought back to the
/// original orientation. Each row is reversed, channel `j` is taken from the mirrored map's
/// channel `flip_index[j]` (left ↔ right joints; channels past `flip_index` stay in place),
/// and with `shift_right` every row moves one cell right (the first column keeps its
/// value), as the official HRNet / SimpleBaseline test does (`TEST.SHIFT_HEATMAP`): a
/// stride-4 map of a mirrored input is mirrored about a point that lies a fraction of a
/// cell off the map's own centre, and the shift compensates it.
pub fn flip_back(maps: &Maps, flip_index: &[usize], shift_right: bool) -> Maps {
    let (k, h, w) = (maps.channels(), maps.height(), maps.width());
    let mut out = Vec::with_capacity(k * h * w);
    for c in 0..k {
        let src = flip_index.get(c).copied().filter(|&s| s < k).unwrap_or(c);
        let plane = maps.channel(src).unwrap_or(&[]);
        for row in plane.chunks_exact(w.max(1)) {
            let mut mirrored: Vec<f32> = row.iter().rev().copied().collect();
            if shift_right && w > 1 {
                mirrored.copy_within(0..w - 1, 1);
            }
            out.extend(mirrored);
        }
    }
    Maps::new(out, k, h, w).unwrap_or_else(|_| maps.clone())
}

/// The element-wise mean of two maps of the same shape (`None` if the shapes differ).
pub fn average(a: &Maps, b: &Maps) -> Option<Maps> {
    let shape = |m: &Maps| (m.channels(), m.height(), m.width());
    if shape(a) != shape(b) {
        return None;
    }
    let data = a
        .as_slice()
        .iter()
        .zip(b.as_slice())
        .map(|(x, y)| 0.5 * (x + y))
        .collect();
    Maps::new(data, a.channels(), a.height(), a.width()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dark_recovers_a_subpixel_gaussian_centre() {
        let (w, h) = (48, 64);
        for &(cx, cy) in &[(20.4_f32, 30.6_f32), (11.62, 40.38), (30.0, 20.0)] {
            let map = gaussian(w, h, cx, cy, 2.0);
            let (x, y, v) = dark_peak(&map, w, h, 2.0).unwrap();
            assert!(
                (x - cx).abs() < 0.05 && (y - cy).abs() < 0.05,
                "DARK ({x}, {y}) for ({cx}, {cy})"
            );
            assert!(v > 0.9);
        }
        // The quarter-offset rule is off by more than 0.05 on the first one.
        let map = gaussian(w, h, 20.4, 30.6, 2.0);
        let (qx, qy, _) = refined_peak(&map, w, h).unwrap();
        assert!(
            (qx - 20.4).abs() > 0.1 && (qy - 30.6).abs() > 0.1,
            "({qx}, {qy})"
        );
        let maps = Maps::new(map, 1, h, w).unwrap();
        let p = decode_dark(&maps, 1);
        let k = p.keypoints[0].unwrap();
        assert!((k.x - 20.4).abs() < 0.05 && (k.y - 30.6).abs() < 0.05);
    }

    #[test]
    fn dark_keeps_the_argmax_at_the_border_and_on_flat_maps() {
        let mut map = vec![0.0; 12];
        map[0] = 1.0;
        assert_eq!(dark_peak(&map, 4, 3, 2.0), Some((0.0, 0.0, 1.0)));
        assert_eq!(dark_peak(&[0.5; 25], 5, 5, 2.0), Some((0.0, 0.0, 0.5)));
        assert_eq!(dark_peak(&[], 0, 0, 2.0), None);
    }

    #[test]
    fn flip_back_mirrors_swaps_and_shifts() {
        // Two channels (a left/right pair), one row of 4.
        let maps = Maps::new(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], 2, 1, 4).unwrap();
        let back = flip_back(&maps, &[1, 0], false);
        assert_eq!(back.as_slice(), &[8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0]);
        let shifted = flip_back(&maps, &[1, 0], true);
        assert_eq!(
            shifted.as_slice(),
            &[8.0, 8.0, 7.0, 6.0, 4.0, 4.0, 3.0, 2.0]
        );
        // Flipping twice without shift is the identity.
        assert_eq!(flip_back(&back, &[1, 0], false), maps);
        let avg = average(&maps, &back).unwrap();
        assert_eq!(avg.as_slice()[0], 4.5);
        assert!(average(&maps, &Maps::zeros(1, 1, 4)).is_none());
    }

    fn gaussian(w: usize, h: usize, cx: f32, cy: f32, sigma: f32) -> Vec<f32> {
        (0..h)
            .flat_map(|y| {
                (0..w).map(move |x| {
                    let d2 = (x as f32 - cx).powi(2) + (y as f32 - cy).powi(2);
                    (-d2 / (2.0 * sigma * sigma)).exp()
                })
            })
            .collect()
    }

    #[test]
    fn finds_and_refines_a_gaussian_peak() {
        let map = gaussian(20, 15, 7.3, 9.8, 1.5);
        let (x, y, v) = refined_peak(&map, 20, 15).unwrap();
        // Argmax (7, 10); refined a quarter towards the larger neighbours.
        assert_eq!((x, y), (7.25, 9.75));
        assert!(v > 0.9);
        // Error after refinement is at most a quarter cell here.
        assert!((x - 7.3).abs() <= 0.25 && (y - 9.8).abs() <= 0.25);
    }

    #[test]
    fn edges_and_degenerate_maps() {
        let mut map = vec![0.0; 12];
        map[0] = 1.0;
        // A corner maximum with one neighbour each way: no out-of-bounds read.
        assert_eq!(refined_peak(&map, 4, 3), Some((0.0, 0.0, 1.0)));
        assert_eq!(refined_peak(&[], 0, 0), None);
        assert_eq!(refined_peak(&[f32::NAN; 4], 2, 2), None);
        // A flat map refines nothing.
        assert_eq!(refined_peak(&[0.5; 4], 2, 2), Some((0.0, 0.0, 0.5)));
    }

    #[test]
    fn decode_takes_one_keypoint_per_joint_and_ignores_the_background() {
        let mut data = gaussian(10, 10, 2.0, 3.0, 1.0);
        data.extend(gaussian(10, 10, 8.0, 1.0, 1.0).iter().map(|v| v * 0.5));
        data.extend(vec![1.0; 100]); // background
        let maps = Maps::new(data, 3, 10, 10).unwrap();
        let p = decode(&maps, 2);
        assert_eq!(p.keypoints.len(), 2);
        let a = p.keypoints[0].unwrap();
        let b = p.keypoints[1].unwrap();
        assert_eq!((a.x, a.y), (2.0, 3.0));
        assert_eq!((b.x, b.y), (8.0, 1.0));
        assert!((p.score - 0.75).abs() < 1e-6);
    }
}
