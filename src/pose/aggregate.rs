//! Test-time aggregation of bottom-up outputs, as HigherHRNet does it (`lib/core/inference.py`
//! `get_multi_stage_outputs` / `aggregate_results`, `lib/utils/transforms.py`
//! `get_multi_scale_size` / `get_affine_transform`): bilinear resizing, horizontal flipping
//! with a joint permutation, averaging, and the aspect-preserving network input size with
//! the affine transform from image pixels to network-input pixels.
//!
//! Maps are `[K, H, W]` ([`Maps`]); coordinates are pixel-index `(x, y)` (integers are pixel
//! centres), the convention OpenCV's `warpAffine` also uses.

use super::affine::Affine2;
use super::maps::Maps;

/// The COCO-17 left/right swap (`FLIP_CONFIG['COCO']` in HigherHRNet's
/// `lib/dataset/transforms/build.py`): nose stays, each left joint trades with its right one.
pub const COCO17_FLIP_INDEX: [usize; 17] =
    [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15];

/// Why an aggregation step could not run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AggregateError {
    #[error("maps have shape {got:?}, expected {expected:?}")]
    ShapeMismatch {
        expected: [usize; 3],
        got: [usize; 3],
    },
    #[error("nothing to average")]
    Empty,
    #[error("cannot resize {from:?} maps to {width}x{height}")]
    BadSize {
        from: [usize; 3],
        width: usize,
        height: usize,
    },
    #[error("flip index has {len} entries for {channels} channels")]
    FlipIndexLength { len: usize, channels: usize },
    #[error("flip index entry {position} is {value}, but there are only {channels} channels")]
    FlipIndexRange {
        position: usize,
        value: usize,
        channels: usize,
    },
    #[error("invalid input size: {0}")]
    BadInputSize(String),
}

/// Source index and weights of one output coordinate, as PyTorch's CPU bilinear kernel
/// computes them with `align_corners=False`: `src = (dst + 0.5) · in/out − 0.5` in `f32`,
/// clamped at 0; `i0 = min(⌊src⌋, in − 1)`, `i1 = i0 + 1` unless `i0` is the last index;
/// `λ1 = clamp(src − i0, 0, 1)`, `λ0 = 1 − λ1`.
fn linear_taps(input: usize, output: usize) -> Vec<(usize, usize, f32, f32)> {
    let ratio = input as f32 / output as f32;
    (0..output)
        .map(|d| {
            let src = (ratio * (d as f32 + 0.5) - 0.5).max(0.0);
            let i0 = (src.floor() as usize).min(input - 1);
            let i1 = if i0 + 1 < input { i0 + 1 } else { i0 };
            let l1 = (src - i0 as f32).clamp(0.0, 1.0);
            (i0, i1, 1.0 - l1, l1)
        })
        .collect()
}

/// Every channel resized to `width × height` exactly as
/// `torch.nn.functional.interpolate(maps, size=(height, width), mode='bilinear',
/// align_corners=False)` (no antialiasing): half-pixel centres, source positions clamped
/// at the first pixel, the last pixel repeated past the far edge. Output value
/// `λ0ʸ·(λ0ˣ·a + λ1ˣ·b) + λ1ʸ·(λ0ˣ·c + λ1ˣ·d)`, the kernel's order of operations.
pub fn resize_bilinear(maps: &Maps, width: usize, height: usize) -> Result<Maps, AggregateError> {
    let [k, h, w] = maps.shape();
    if width == 0 || height == 0 || h == 0 || w == 0 {
        return Err(AggregateError::BadSize {
            from: maps.shape(),
            width,
            height,
        });
    }
    let xs = linear_taps(w, width);
    let ys = linear_taps(h, height);
    let src = maps.as_slice();
    let mut out = Vec::with_capacity(k * width * height);
    for ch in src.chunks_exact(h * w) {
        for &(y0, y1, ly0, ly1) in &ys {
            let (r0, r1) = (&ch[y0 * w..(y0 + 1) * w], &ch[y1 * w..(y1 + 1) * w]);
            for &(x0, x1, lx0, lx1) in &xs {
                out.push(ly0 * (lx0 * r0[x0] + lx1 * r0[x1]) + ly1 * (lx0 * r1[x0] + lx1 * r1[x1]));
            }
        }
    }
    Maps::new(out, k, height, width).map_err(|_| AggregateError::BadSize {
        from: maps.shape(),
        width,
        height,
    })
}

/// The maps mirrored left–right (`torch.flip(output, [3])`), and with `flip_index` the
/// channels permuted as `output[:, flip_index]`: `out[k] = mirrored(in[flip_index[k]])`.
/// This undoes a flipped input: the network's "left wrist" on the mirrored image is the
/// right wrist of the original. `flip_index` must have one entry per channel, each a valid
/// channel (it need not be a permutation).
pub fn flip_horizontal(maps: &Maps, flip_index: Option<&[usize]>) -> Result<Maps, AggregateError> {
    let [k, h, w] = maps.shape();
    if let Some(idx) = flip_index {
        if idx.len() != k {
            return Err(AggregateError::FlipIndexLength {
                len: idx.len(),
                channels: k,
            });
        }
        if let Some((position, &value)) = idx.iter().enumerate().find(|(_, &v)| v >= k) {
            return Err(AggregateError::FlipIndexRange {
                position,
                value,
                channels: k,
            });
        }
    }
    let mut out = Vec::with_capacity(k * h * w);
    for c in 0..k {
        let from = flip_index.and_then(|idx| idx.get(c).copied()).unwrap_or(c);
        let Some(ch) = maps.channel(from) else {
            continue;
        };
        for row in ch.chunks_exact(w.max(1)) {
            out.extend(row.iter().rev());
        }
    }
    Maps::new(out, k, h, w).map_err(|_| AggregateError::ShapeMismatch {
        expected: [k, h, w],
        got: [k, h, w],
    })
}

/// `acc += other`, element-wise; the shapes must match.
pub fn add_assign(acc: &mut Maps, other: &Maps) -> Result<(), AggregateError> {
    check_same(acc, other)?;
    acc.as_mut_slice()
        .iter_mut()
        .zip(other.as_slice())
        .for_each(|(a, b)| *a += b);
    Ok(())
}

/// `maps *= factor`, element-wise.
pub fn scale_in_place(maps: &mut Maps, factor: f32) {
    maps.as_mut_slice().iter_mut().for_each(|v| *v *= factor);
}

/// The element-wise mean of equally shaped maps: summed in order, then divided by the
/// count (as `(h0 + h1) / 2.0` and the `heatmaps_avg += …; heatmaps_avg / n` loops of the
/// official inference code).
pub fn average(maps: &[Maps]) -> Result<Maps, AggregateError> {
    let (first, rest) = maps.split_first().ok_or(AggregateError::Empty)?;
    let mut acc = first.clone();
    for m in rest {
        add_assign(&mut acc, m)?;
    }
    let n = maps.len() as f32;
    acc.as_mut_slice().iter_mut().for_each(|v| *v /= n);
    Ok(acc)
}

fn check_same(a: &Maps, b: &Maps) -> Result<(), AggregateError> {
    if a.shape() != b.shape() {
        return Err(AggregateError::ShapeMismatch {
            expected: a.shape(),
            got: b.shape(),
        });
    }
    Ok(())
}

/// The network input geometry for one test scale, as `get_multi_scale_size` returns it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MultiScaleSize {
    /// Network input `(width, height)` in pixels, multiples of 64 at the minimum scale.
    pub size: (usize, usize),
    /// Image centre `(int(w/2 + 0.5), int(h/2 + 0.5))`, image pixels.
    pub center: (f64, f64),
    /// Region size in units of 200 image pixels, `(scale_w, scale_h)`.
    pub scale: (f64, f64),
}

/// HigherHRNet's aspect-preserving input size (`get_multi_scale_size` in
/// `lib/utils/transforms.py`) for an `image_w × image_h` image, base `input_size` (512),
/// test scale `scale` and the smallest test scale `min_scale`:
///
/// - `min_input = int((min_scale·input_size + 63) // 64 · 64)`;
/// - the shorter image side maps to `int(min_input · scale / min_scale)`; the longer to
///   `int(int((min_input / short · long + 63) // 64 · 64) · scale / min_scale)`, i.e. rounded
///   *up* to a multiple of 64 at the minimum scale (so the image is padded, never cropped);
/// - `center = (int(w/2 + 0.5), int(h/2 + 0.5))`;
/// - the short side's scale is `short / 200`, the long side's
///   `long_resized / short_resized · short / 200` (the padded extent, in 200-px units).
///
/// Landscape and square images take the height as the short side (`w < h` decides).
/// Example: 640×480 at 512 → 704×512 (`512/480·640 = 682.7` rounded up to 704), centre
/// (320, 240), scale (3.3, 2.4).
pub fn multi_scale_size(
    image_w: usize,
    image_h: usize,
    input_size: usize,
    scale: f64,
    min_scale: f64,
) -> Result<MultiScaleSize, AggregateError> {
    if image_w == 0 || image_h == 0 || input_size == 0 {
        return Err(AggregateError::BadInputSize(format!(
            "image {image_w}x{image_h}, input size {input_size}"
        )));
    }
    if !(scale.is_finite() && min_scale.is_finite() && scale > 0.0 && min_scale > 0.0) {
        return Err(AggregateError::BadInputSize(format!(
            "scale {scale} and min_scale {min_scale} must be positive"
        )));
    }
    let round64 = |v: f64| ((v + 63.0) / 64.0).floor() * 64.0;
    let (w, h) = (image_w as f64, image_h as f64);
    let center = ((w / 2.0 + 0.5).trunc(), (h / 2.0 + 0.5).trunc());
    let min_input = round64(min_scale * input_size as f64).trunc();
    let grow = scale / min_scale;
    let (size, sc) = if image_w < image_h {
        let w_r = (min_input * grow).trunc();
        let h_r = (round64(min_input / w * h).trunc() * grow).trunc();
        ((w_r, h_r), (w / 200.0, h_r / w_r * w / 200.0))
    } else {
        let h_r = (min_input * grow).trunc();
        let w_r = (round64(min_input / h * w).trunc() * grow).trunc();
        ((w_r, h_r), (w_r / h_r * h / 200.0, h / 200.0))
    };
    if !(size.0 >= 1.0 && size.1 >= 1.0 && size.0 < 1e9 && size.1 < 1e9) {
        return Err(AggregateError::BadInputSize(format!(
            "input size {}x{} out of range",
            size.0, size.1
        )));
    }
    Ok(MultiScaleSize {
        size: (size.0 as usize, size.1 as usize),
        center,
        scale: sc,
    })
}

impl MultiScaleSize {
    /// Image pixels → network-input pixels: `get_affine_transform(center, scale, 0, size)`,
    /// the matrix `resize_align_multi_scale` warps the image with.
    pub fn input_affine(&self) -> Affine2 {
        center_scale_affine(self.center, self.scale, self.size, false)
    }

    /// Image pixels → pixels of an output grid of `size = (width, height)` covering the
    /// same region (e.g. the heatmaps); `.inverse()`-free counterpart:
    /// [`MultiScaleSize::output_to_image`].
    pub fn image_to_output(&self, size: (usize, usize)) -> Affine2 {
        center_scale_affine(self.center, self.scale, size, false)
    }

    /// Output-grid pixels → image pixels: `get_affine_transform(center, scale, 0, size,
    /// inv=1)` as `transform_preds` / `get_final_preds` use it to bring keypoints found on a
    /// `size = (width, height)` heatmap back to the image.
    pub fn output_to_image(&self, size: (usize, usize)) -> Affine2 {
        center_scale_affine(self.center, self.scale, size, true)
    }
}

/// `get_affine_transform(center, scale, rot=0, output_size)` (`inv` swaps source and
/// destination). The official function maps three `float32` points — the centre, a point
/// half the region width above it, and one half a width up and left — onto the output's
/// centre and the corresponding points, which makes it isotropic with the factor
/// `output_w / (200·scale_w)` (the height scale is not used):
/// `x' = k·(x − cx) + out_w/2`, `y' = k·(y − cy) + out_h/2`.
/// Here the same `f32`-rounded points are solved in `f64` (as `cv2.getAffineTransform`
/// does), so the matrix agrees with OpenCV's to double rounding.
pub fn center_scale_affine(
    center: (f64, f64),
    scale: (f64, f64),
    output_size: (usize, usize),
    inv: bool,
) -> Affine2 {
    let f = |v: f64| f64::from(v as f32);
    let src_w = scale.0 * 200.0;
    let (dw, dh) = (output_size.0 as f64, output_size.1 as f64);
    let (cx, cy) = (f(center.0), f(center.1));
    let src = [
        (cx, cy),
        (cx, f(center.1 - src_w * 0.5)),
        (0.0, 0.0), // third point below
    ];
    let dst0 = (f(dw * 0.5), f(dh * 0.5));
    let dst1 = (dst0.0, f(dh * 0.5 - dw * 0.5));
    // get_3rd_point(a, b) = b + rot90(a − b), computed in float32.
    let third = |a: (f64, f64), b: (f64, f64)| {
        let d = (f(a.0 - b.0), f(a.1 - b.1));
        (f(b.0 - d.1), f(b.1 + d.0))
    };
    let src = [src[0], src[1], third(src[0], src[1])];
    let dst = [dst0, dst1, third(dst0, dst1)];
    if inv {
        solve_affine(&dst, &src)
    } else {
        solve_affine(&src, &dst)
    }
}

/// The affine transform taking the three points `p` to `q` (identity if they are
/// collinear).
fn solve_affine(p: &[(f64, f64); 3], q: &[(f64, f64); 3]) -> Affine2 {
    let (u1, u2) = (
        (p[1].0 - p[0].0, p[1].1 - p[0].1),
        (p[2].0 - p[0].0, p[2].1 - p[0].1),
    );
    let (v1, v2) = (
        (q[1].0 - q[0].0, q[1].1 - q[0].1),
        (q[2].0 - q[0].0, q[2].1 - q[0].1),
    );
    let det = u1.0 * u2.1 - u2.0 * u1.1;
    if det == 0.0 || !det.is_finite() {
        return Affine2::IDENTITY;
    }
    // M · [u1 u2] = [v1 v2]  ⇒  M = [v1 v2] · [u1 u2]⁻¹.
    let inv = [u2.1 / det, -u2.0 / det, -u1.1 / det, u1.0 / det];
    let a = v1.0 * inv[0] + v2.0 * inv[2];
    let b = v1.0 * inv[1] + v2.0 * inv[3];
    let c = v1.1 * inv[0] + v2.1 * inv[2];
    let d = v1.1 * inv[1] + v2.1 * inv[3];
    let tx = q[0].0 - (a * p[0].0 + b * p[0].1);
    let ty = q[0].1 - (c * p[0].0 + d * p[0].1);
    Affine2 {
        m: [a, b, tx, c, d, ty],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn maps(data: &[f32], k: usize, h: usize, w: usize) -> Maps {
        Maps::new(data.to_vec(), k, h, w).unwrap()
    }

    #[test]
    fn bilinear_2x2_to_4x4_uses_quarter_weights_and_clamps_edges() {
        // Source [[0, 1], [2, 3]]. Output columns sample x = -0.25 (clamped to 0), 0.25,
        // 0.75, 1.25 (i0 = 1 is the last pixel: repeated). Same for rows.
        let m = maps(&[0.0, 1.0, 2.0, 3.0], 1, 2, 2);
        let r = resize_bilinear(&m, 4, 4).unwrap();
        let row = |y: usize| r.channel(0).unwrap()[y * 4..y * 4 + 4].to_vec();
        assert_eq!(row(0), vec![0.0, 0.25, 0.75, 1.0]);
        assert_eq!(row(1), vec![0.5, 0.75, 1.25, 1.5]);
        assert_eq!(row(2), vec![1.5, 1.75, 2.25, 2.5]);
        assert_eq!(row(3), vec![2.0, 2.25, 2.75, 3.0]);
    }

    #[test]
    fn bilinear_downsampling_and_non_integer_ratios() {
        // 1x4 → 1x2: ratio 2, src = 2·(d + 0.5) − 0.5 = 0.5, 2.5 → means of pairs.
        let m = maps(&[0.0, 2.0, 4.0, 8.0], 1, 1, 4);
        let r = resize_bilinear(&m, 2, 1).unwrap();
        assert_eq!(r.as_slice(), &[1.0, 6.0]);
        // 1x3 → 1x2: ratio 1.5, src = 0.25, 1.75.
        let m = maps(&[0.0, 4.0, 8.0], 1, 1, 3);
        let r = resize_bilinear(&m, 2, 1).unwrap();
        assert_eq!(r.as_slice(), &[1.0, 7.0]);
        // Identity size is a copy; two channels stay separate.
        let m = maps(&[1.0, 2.0, 3.0, 4.0], 2, 1, 2);
        assert_eq!(resize_bilinear(&m, 2, 1).unwrap(), m);
        assert!(resize_bilinear(&m, 0, 3).is_err());
    }

    #[test]
    fn flip_mirrors_columns_and_permutes_channels() {
        // Channel 0: [1 2 3], channel 1: [4 5 6].
        let m = maps(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2, 1, 3);
        let f = flip_horizontal(&m, None).unwrap();
        assert_eq!(f.as_slice(), &[3.0, 2.0, 1.0, 6.0, 5.0, 4.0]);
        let f = flip_horizontal(&m, Some(&[1, 0])).unwrap();
        assert_eq!(f.as_slice(), &[6.0, 5.0, 4.0, 3.0, 2.0, 1.0]);
        // out[k] = in[flip_index[k]], not the inverse permutation.
        let m3 = maps(&[0.0, 1.0, 2.0], 3, 1, 1);
        let f = flip_horizontal(&m3, Some(&[2, 0, 1])).unwrap();
        assert_eq!(f.as_slice(), &[2.0, 0.0, 1.0]);
        assert!(matches!(
            flip_horizontal(&m, Some(&[0])),
            Err(AggregateError::FlipIndexLength {
                len: 1,
                channels: 2
            })
        ));
        assert!(matches!(
            flip_horizontal(&m, Some(&[0, 2])),
            Err(AggregateError::FlipIndexRange { position: 1, .. })
        ));
    }

    #[test]
    fn coco_flip_index_is_an_involution_keeping_the_nose() {
        assert_eq!(COCO17_FLIP_INDEX[0], 0);
        for (k, &f) in COCO17_FLIP_INDEX.iter().enumerate() {
            assert_eq!(COCO17_FLIP_INDEX[f], k);
        }
        // Left eye (1) ↔ right eye (2), left ankle (15) ↔ right ankle (16).
        assert_eq!((COCO17_FLIP_INDEX[1], COCO17_FLIP_INDEX[16]), (2, 15));
    }

    #[test]
    fn average_and_add_check_shapes() {
        let a = maps(&[1.0, 2.0], 1, 1, 2);
        let b = maps(&[3.0, 6.0], 1, 1, 2);
        assert_eq!(
            average(&[a.clone(), b.clone()]).unwrap().as_slice(),
            &[2.0, 4.0]
        );
        let mut acc = a.clone();
        add_assign(&mut acc, &b).unwrap();
        scale_in_place(&mut acc, 0.5);
        assert_eq!(acc.as_slice(), &[2.0, 4.0]);
        let c = maps(&[1.0, 2.0], 2, 1, 1);
        assert!(matches!(
            average(&[a.clone(), c.clone()]),
            Err(AggregateError::ShapeMismatch { .. })
        ));
        assert!(add_assign(&mut acc, &c).is_err());
        assert_eq!(average(&[]), Err(AggregateError::Empty));
    }

    fn close(a: (f64, f64), b: (f64, f64)) -> bool {
        (a.0 - b.0).abs() < 1e-6 && (a.1 - b.1).abs() < 1e-6
    }

    #[test]
    fn landscape_640x480_at_512() {
        // min_input = int((512 + 63) // 64 * 64) = 512; h → 512;
        // w → int((512/480·640 + 63) // 64 · 64) = int(745.67 // 64 · 64) = 704.
        let s = multi_scale_size(640, 480, 512, 1.0, 1.0).unwrap();
        assert_eq!(s.size, (704, 512));
        assert_eq!(s.center, (320.0, 240.0));
        assert!((s.scale.0 - 3.3).abs() < 1e-12 && (s.scale.1 - 2.4).abs() < 1e-12);
        // Isotropic factor 704 / 660 = 512 / 480; image centre → input centre.
        let t = s.input_affine();
        let k = 512.0 / 480.0;
        assert!((t.m[0] - k).abs() < 1e-6 && (t.m[4] - k).abs() < 1e-6);
        assert!(t.m[1].abs() < 1e-12 && t.m[3].abs() < 1e-12);
        assert!(close(t.apply(320.0, 240.0), (352.0, 256.0)));
        // The image's left edge lands 11 input pixels in: padding on both sides.
        assert!(close(t.apply(0.0, 240.0), (352.0 - 320.0 * k, 256.0)));
        // Back from a 1/4-resolution heatmap (176x128): its centre is the image centre.
        let back = s.output_to_image((176, 128));
        assert!(close(back.apply(88.0, 64.0), (320.0, 240.0)));
        assert!(close(back.apply(89.0, 64.0), (320.0 + 4.0 / k, 240.0)));
    }

    #[test]
    fn portrait_480x640_at_512_and_other_scales() {
        let s = multi_scale_size(480, 640, 512, 1.0, 1.0).unwrap();
        assert_eq!(s.size, (512, 704));
        assert_eq!(s.center, (240.0, 320.0));
        assert!((s.scale.0 - 2.4).abs() < 1e-12 && (s.scale.1 - 3.3).abs() < 1e-12);
        let t = s.input_affine();
        assert!(close(t.apply(240.0, 320.0), (256.0, 352.0)));
        assert!(close(t.apply(0.0, 320.0), (0.0, 352.0)));
        // Odd sizes: centre int(w/2 + 0.5); 333x500 → w_resized 512,
        // h = int((512/333·500 + 63) // 64 · 64) = int(831.78 // 64 · 64) = 768.
        let s = multi_scale_size(333, 500, 512, 1.0, 1.0).unwrap();
        assert_eq!(s.size, (512, 768));
        assert_eq!(s.center, (167.0, 250.0));
        // Multi-scale: scales (2, 1) with min 1 → twice the size; min 0.5 at scale 1:
        // min_input = int((256 + 63)//64·64) = 256, h → int(256·2) = 512,
        // w → int(int((256/480·640 + 63)//64·64)·2) = int(384·2) = 768.
        let s2 = multi_scale_size(640, 480, 512, 2.0, 1.0).unwrap();
        assert_eq!(s2.size, (1408, 1024));
        let s3 = multi_scale_size(640, 480, 512, 1.0, 0.5).unwrap();
        assert_eq!(s3.size, (768, 512));
        // Square images take the landscape branch.
        assert_eq!(
            multi_scale_size(500, 500, 512, 1.0, 1.0).unwrap().size,
            (512, 512)
        );
        assert!(multi_scale_size(0, 10, 512, 1.0, 1.0).is_err());
        assert!(multi_scale_size(10, 10, 512, f64::NAN, 1.0).is_err());
    }

    #[test]
    fn affine_inverse_round_trips() {
        let s = multi_scale_size(1000, 750, 512, 1.0, 1.0).unwrap();
        let fwd = s.image_to_output((s.size.0 / 4, s.size.1 / 4));
        let back = s.output_to_image((s.size.0 / 4, s.size.1 / 4));
        let p = back.apply(fwd.apply(123.0, 456.0).0, fwd.apply(123.0, 456.0).1);
        assert!(close(p, (123.0, 456.0)));
    }
}
