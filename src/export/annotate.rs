//! CPU annotation of exported frames: colormapped heatmap overlays and skeletons, drawn
//! anti-aliased onto an [`RgbImage`].
//!
//! # Coordinates
//!
//! Everything uses the crate's *pixel-index* convention (see [`crate::pose::maps`]):
//! integers are pixel centres, pixel `(x, y)` covers `[x - 0.5, x + 0.5) × [y - 0.5, y + 0.5)`,
//! points are `(x, y)` with y pointing down. Keypoints given to [`draw_people`] must already be
//! in *image* pixels (map them with [`Person::transformed`]); a heatmap is placed with a
//! `map → image` [`Affine2`], e.g. `Affine2::resample(8.0, 8.0)` for a stride-8 map that
//! covers the whole image, composed with a letterbox transform where there is one.
//!
//! Colours are blended in 8-bit sRGB, as the rest of the export pipeline stores them.

use std::ops::Range;

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::pose::{Affine2, JointSet, Person};

/// Why a heatmap could not be blended.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum AnnotateError {
    /// The map slice does not hold `width * height` values.
    #[error("heatmap has {len} values, expected {width}x{height}")]
    MapShape {
        len: usize,
        width: usize,
        height: usize,
    },
    /// The map → image transform cannot be inverted (or is not finite).
    #[error("map-to-image transform is singular or not finite: {0:?}")]
    SingularTransform(Affine2),
}

pub use crate::colormap::OverlayStyle;

const LUT_SIZE: usize = 1024;

/// Value → premultiplied colour table, with the blend weight in 1/256 units.
struct Lut {
    lo: f32,
    scale: f32,
    keep: u32,
    color_times_alpha: Vec<[u32; 3]>,
}

impl Lut {
    fn new(style: &OverlayStyle, map: &[f32], alpha: f32) -> Self {
        let (lo, hi) = style.resolved_range(finite_min_max(map).unwrap_or((0.0, 1.0)));
        let scale = if hi != lo { 1.0 / (hi - lo) } else { 0.0 };
        let scale = if scale.is_finite() { scale } else { 0.0 };
        let gamma = style.effective_gamma();
        let a = ((alpha * 256.0).round() as u32).min(256); // alpha in [0, 1]
        let color_times_alpha = (0..LUT_SIZE)
            .map(|i| {
                let t = (i as f32 / (LUT_SIZE - 1) as f32).powf(gamma);
                style.colormap.rgb(t).map(|c| u32::from(c) * a + 128)
            })
            .collect();
        Self {
            lo,
            scale,
            keep: 256 - a,
            color_times_alpha,
        }
    }

    #[inline]
    fn blend(&self, px: &mut [u8], v: f32) {
        let t = ((v - self.lo) * self.scale).clamp(0.0, 1.0);
        // NaN (from a NaN value) casts to 0.
        let i = ((t * (LUT_SIZE - 1) as f32 + 0.5) as usize).min(LUT_SIZE - 1);
        if let Some(ca) = self.color_times_alpha.get(i) {
            for (d, s) in px.iter_mut().zip(ca) {
                *d = ((u32::from(*d) * self.keep + s) >> 8).min(255) as u8;
            }
        }
    }
}

fn finite_min_max(map: &[f32]) -> Option<(f32, f32)> {
    map.iter()
        .filter(|v| v.is_finite())
        .fold(None, |acc, &v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

/// Alpha-blends a colormapped `map_w × map_h` map (row-major) over `img`.
///
/// `map_to_image` takes map pixel-index coordinates to image pixel-index coordinates. Every
/// image pixel centre is mapped back into the map and the map is sampled bilinearly (clamped
/// at its border); pixels whose map position lies more than half a map pixel outside the map
/// (e.g. letterbox bars) are left untouched, all others get the colour blended at
/// `style.opacity`. Axis-aligned transforms take a fast separable path.
pub fn blend_heatmap(
    img: &mut RgbImage,
    map: &[f32],
    map_w: usize,
    map_h: usize,
    map_to_image: &Affine2,
    style: &OverlayStyle,
) -> Result<(), AnnotateError> {
    if map_w.checked_mul(map_h) != Some(map.len()) {
        return Err(AnnotateError::MapShape {
            len: map.len(),
            width: map_w,
            height: map_h,
        });
    }
    let inv = map_to_image
        .inverse()
        .filter(|t| t.m.iter().all(|v| v.is_finite()))
        .ok_or(AnnotateError::SingularTransform(*map_to_image))?;
    let alpha = if style.opacity.is_nan() {
        0.0
    } else {
        style.opacity.clamp(0.0, 1.0)
    };
    if map.is_empty() || alpha == 0.0 || img.width() == 0 || img.height() == 0 {
        return Ok(());
    }
    let lut = Lut::new(style, map, alpha);
    let grid = Grid { map, map_w, map_h };
    if inv.m[1] == 0.0 && inv.m[3] == 0.0 {
        blend_separable(img, &grid, &inv, &lut);
    } else {
        blend_general(img, &grid, &inv, &lut);
    }
    Ok(())
}

/// A validated, non-empty map (`map.len() == map_w * map_h`).
struct Grid<'a> {
    map: &'a [f32],
    map_w: usize,
    map_h: usize,
}

/// Bilinear tap along one axis: `(i0, i1, weight of i1)`, `None` outside the map.
type Tap = Option<(usize, usize, f32)>;

fn tap(m: f64, n: usize) -> Tap {
    if !(m >= -0.5 && m < n as f64 - 0.5) {
        return None;
    }
    let mc = m.clamp(0.0, (n - 1) as f64);
    let i0 = (mc.floor() as usize).min(n - 1);
    Some((i0, (i0 + 1).min(n - 1), (mc - i0 as f64) as f32))
}

impl Grid<'_> {
    fn at(&self, x: usize, y: usize) -> f32 {
        self.map.get(y * self.map_w + x).copied().unwrap_or(0.0)
    }

    fn sample(&self, (x0, x1, fx): (usize, usize, f32), (y0, y1, fy): (usize, usize, f32)) -> f32 {
        let top = self.at(x0, y0) + (self.at(x1, y0) - self.at(x0, y0)) * fx;
        let bottom = self.at(x0, y1) + (self.at(x1, y1) - self.at(x0, y1)) * fx;
        top + (bottom - top) * fy
    }

    /// Row `y` of the map resampled at every image column (`taps`), into `out`.
    fn resample_row(&self, y: usize, taps: &[Tap], out: &mut [f32]) {
        let row = self
            .map
            .get(y * self.map_w..(y + 1) * self.map_w)
            .unwrap_or(&[]);
        for (o, t) in out.iter_mut().zip(taps) {
            if let Some((x0, x1, fx)) = *t {
                let a = row.get(x0).copied().unwrap_or(0.0);
                let b = row.get(x1).copied().unwrap_or(0.0);
                *o = a + (b - a) * fx;
            }
        }
    }
}

/// Axis-aligned `inv`: per-column and per-row taps, map rows resampled once per map row pair.
fn blend_separable(img: &mut RgbImage, grid: &Grid, inv: &Affine2, lut: &Lut) {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let [sx, _, tx, _, sy, ty] = inv.m;
    let xs: Vec<Tap> = (0..w)
        .map(|x| tap(sx * x as f64 + tx, grid.map_w))
        .collect();
    let ys: Vec<Tap> = (0..h)
        .map(|y| tap(sy * y as f64 + ty, grid.map_h))
        .collect();
    let (mut top, mut bottom) = (vec![0.0f32; w], vec![0.0f32; w]);
    let mut cached = None;
    for (row, ty) in img.chunks_exact_mut(w * 3).zip(&ys) {
        let Some((y0, y1, fy)) = *ty else { continue };
        if cached != Some((y0, y1)) {
            grid.resample_row(y0, &xs, &mut top);
            grid.resample_row(y1, &xs, &mut bottom);
            cached = Some((y0, y1));
        }
        let values = top.iter().zip(&bottom);
        for ((px, tx), (t, b)) in row.chunks_exact_mut(3).zip(&xs).zip(values) {
            if tx.is_some() {
                lut.blend(px, t + (b - t) * fy);
            }
        }
    }
}

/// Any invertible `inv` (rotation, shear): one inverse mapping per pixel.
fn blend_general(img: &mut RgbImage, grid: &Grid, inv: &Affine2, lut: &Lut) {
    let w = img.width() as usize;
    for (y, row) in img.chunks_exact_mut(w * 3).enumerate() {
        for (x, px) in row.chunks_exact_mut(3).enumerate() {
            let (mx, my) = inv.apply(x as f64, y as f64);
            if let (Some(tx), Some(ty)) = (tap(mx, grid.map_w), tap(my, grid.map_h)) {
                lut.blend(px, grid.sample(tx, ty));
            }
        }
    }
}

/// How [`draw_people`] draws skeletons. Sizes are in image pixels.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SkeletonStyle {
    /// Limb thickness. `0` (the default), negative or non-finite means automatic:
    /// `max(2, min(width, height) / 200)`.
    pub line_width: f32,
    /// Joint disc radius. `0` (the default), negative or non-finite means the line width.
    pub joint_radius: f32,
    /// Keypoints scoring below this (or NaN) are not drawn, nor are limbs touching them.
    pub min_score: f32,
    /// Draw a dark halo under each person's limbs so skeletons stand out on any background.
    pub person_outline: bool,
}

impl Default for SkeletonStyle {
    fn default() -> Self {
        Self {
            line_width: 0.0,
            joint_radius: 0.0,
            min_score: 0.1,
            person_outline: true,
        }
    }
}

impl SkeletonStyle {
    /// The default style with sizes resolved for a `width × height` image.
    pub fn for_image(width: u32, height: u32) -> Self {
        let (line_width, joint_radius) = Self::default().sizes(width, height);
        Self {
            line_width: line_width as f32,
            joint_radius: joint_radius as f32,
            ..Self::default()
        }
    }

    /// `(line_width, joint_radius)` with automatic values resolved.
    fn sizes(&self, width: u32, height: u32) -> (f64, f64) {
        let given = |v: f32| (v.is_finite() && v > 0.0).then_some(f64::from(v));
        let auto = (f64::from(width.min(height)) / 200.0).max(2.0);
        let line = given(self.line_width).unwrap_or(auto);
        (line, given(self.joint_radius).unwrap_or(line))
    }
}

const RIM: [u8; 3] = [20, 20, 20];
const OUTLINE: [u8; 3] = [0, 0, 0];
const OUTLINE_ALPHA: f32 = 0.6;

/// Draws every person's limbs (anti-aliased capsules in the joint set's limb colours), then
/// their joints (filled discs with a thin dark rim), person by person. Keypoints are in image
/// pixel-index coordinates; missing, low-scoring or non-finite ones are skipped, and anything
/// outside the image is clipped.
pub fn draw_people(
    img: &mut RgbImage,
    people: &[Person],
    joints: &JointSet,
    style: &SkeletonStyle,
) {
    let (line, radius) = style.sizes(img.width(), img.height());
    let mut canvas = Canvas::new(img);
    let half = line / 2.0;
    for person in people {
        let point = |j: usize| {
            let k = person.keypoints.get(j).copied().flatten()?;
            let ok = k.score >= style.min_score && k.x.is_finite() && k.y.is_finite();
            ok.then_some((f64::from(k.x), f64::from(k.y)))
        };
        let limbs: Vec<_> = joints
            .limbs
            .iter()
            .zip(joints.limb_colors)
            .filter_map(|(&(a, b), &color)| Some((point(a)?, point(b)?, color)))
            .collect();
        if style.person_outline {
            let halo = half + (line * 0.25).max(1.0);
            for &(a, b, _) in &limbs {
                canvas.capsule(a, b, halo, OUTLINE, OUTLINE_ALPHA);
            }
        }
        for &(a, b, color) in &limbs {
            canvas.capsule(a, b, half, color, 1.0);
        }
        for j in 0..joints.len() {
            if let Some(p) = point(j) {
                canvas.joint(p, radius, joints.joint_color(j));
            }
        }
    }
}

/// Anti-aliased primitives on an RGB8 buffer. Coverage of a pixel is
/// `clamp(radius + 0.5 - distance, 0, 1)`: a one-pixel soft edge centred on the boundary.
struct Canvas<'a> {
    buf: &'a mut [u8],
    w: usize,
    h: usize,
}

impl<'a> Canvas<'a> {
    fn new(img: &'a mut RgbImage) -> Self {
        let (w, h) = (img.width() as usize, img.height() as usize);
        Self {
            buf: img.as_mut(),
            w,
            h,
        }
    }

    fn blend(&mut self, x: usize, y: usize, color: [u8; 3], alpha: f32) {
        let i = (y * self.w + x) * 3;
        if let Some(px) = self.buf.get_mut(i..i + 3) {
            for (d, s) in px.iter_mut().zip(color) {
                let v = f32::from(*d) + (f32::from(s) - f32::from(*d)) * alpha;
                *d = v.round().clamp(0.0, 255.0) as u8;
            }
        }
    }

    /// Image rows meeting `[lo, hi]`.
    fn rows(&self, lo: f64, hi: f64) -> Range<usize> {
        pixels_within(lo, hi, self.h)
    }

    /// Image columns meeting `[lo, hi]`.
    fn cols(&self, lo: f64, hi: f64) -> Range<usize> {
        pixels_within(lo, hi, self.w)
    }

    /// The segment `a`–`b` thickened by `radius` (round caps).
    fn capsule(&mut self, a: (f64, f64), b: (f64, f64), radius: f64, color: [u8; 3], alpha: f32) {
        let reach = radius + 0.5;
        if reach.is_nan() || reach <= 0.0 {
            return;
        }
        for y in self.rows(a.1.min(b.1) - reach, a.1.max(b.1) + reach) {
            let yf = y as f64;
            let Some((lo, hi)) = capsule_span(a, b, reach, yf) else {
                continue;
            };
            for x in self.cols(lo, hi) {
                let d = segment_distance((x as f64, yf), a, b);
                let cov = (reach - d).clamp(0.0, 1.0) as f32;
                if cov > 0.0 {
                    self.blend(x, y, color, alpha * cov);
                }
            }
        }
    }

    /// A filled disc of `fill` with a thin dark rim.
    fn joint(&mut self, c: (f64, f64), radius: f64, fill: [u8; 3]) {
        let reach = radius + 0.5;
        let inner = radius - (radius * 0.2).max(0.75);
        for y in self.rows(c.1 - reach, c.1 + reach) {
            let dy = y as f64 - c.1;
            let half = (reach * reach - dy * dy).max(0.0).sqrt();
            for x in self.cols(c.0 - half, c.0 + half) {
                let d = (x as f64 - c.0).hypot(dy);
                let cov = (reach - d).clamp(0.0, 1.0) as f32;
                let f = (inner + 0.5 - d).clamp(0.0, 1.0);
                let color = [0, 1, 2].map(|i| {
                    let v = f64::from(RIM[i]) + (f64::from(fill[i]) - f64::from(RIM[i])) * f;
                    v.round() as u8
                });
                if cov > 0.0 {
                    self.blend(x, y, color, cov);
                }
            }
        }
    }
}

/// Indices `i < n` with `lo <= i <= hi` (NaN bounds give nothing).
fn pixels_within(lo: f64, hi: f64, n: usize) -> Range<usize> {
    let first = lo.ceil().max(0.0); // `max`/`min` drop a NaN operand
    let last = hi.floor().min(n as f64 - 1.0);
    if lo.is_nan() || hi.is_nan() || first > last {
        return 0..0;
    }
    first as usize..last as usize + 1
}

fn segment_distance(p: (f64, f64), a: (f64, f64), b: (f64, f64)) -> f64 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    let s = if len2 > 0.0 {
        (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    (p.0 - (a.0 + s * dx)).hypot(p.1 - (a.1 + s * dy))
}

/// The x-interval where row `y` meets the capsule of `a`–`b` with radius `reach`: the union
/// of the chords of the two end discs and of the straight band (the capsule is convex).
fn capsule_span(a: (f64, f64), b: (f64, f64), reach: f64, y: f64) -> Option<(f64, f64)> {
    let disc = |c: (f64, f64)| {
        let dy = y - c.1;
        (dy.abs() <= reach).then(|| {
            let h = (reach * reach - dy * dy).sqrt();
            (c.0 - h, c.0 + h)
        })
    };
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len = dx.hypot(dy);
    let band = if len > 0.0 && len.is_finite() {
        // Along the segment: 0 <= ((x - ax) dx + (y - ay) dy) / len^2 <= 1.
        let along = solve(dx, (y - a.1) * dy, 0.0, len * len);
        // Across: |(x - ax) dy - (y - ay) dx| / len <= reach.
        let across = solve(dy, -(y - a.1) * dx, -reach * len, reach * len);
        along.zip(across).and_then(|(p, q)| {
            let (lo, hi) = (p.0.max(q.0), p.1.min(q.1));
            (lo <= hi).then_some((lo + a.0, hi + a.0))
        })
    } else {
        None
    };
    [disc(a), disc(b), band]
        .into_iter()
        .flatten()
        .reduce(|p, q| (p.0.min(q.0), p.1.max(q.1)))
}

/// The `u` with `lo <= k u + c <= hi`, as an interval (possibly unbounded); `None` if empty.
fn solve(k: f64, c: f64, lo: f64, hi: f64) -> Option<(f64, f64)> {
    if k == 0.0 {
        return (lo <= c && c <= hi).then_some((f64::NEG_INFINITY, f64::INFINITY));
    }
    let (u0, u1) = ((lo - c) / k, (hi - c) / k);
    Some((u0.min(u1), u0.max(u1)))
}

/// Draws an arrow from `a` to `b` (image pixels) of `width` pixels in `color`, with a dot at
/// its start: a joint's movement between two runs.
pub fn draw_arrow(img: &mut RgbImage, a: (f64, f64), b: (f64, f64), width: f64, color: [u8; 3]) {
    let mut canvas = Canvas::new(img);
    let half = (width / 2.0).max(0.5);
    canvas.joint(a, half * 1.8, color);
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len = dx.hypot(dy);
    if !len.is_finite() || len < 0.5 {
        return;
    }
    canvas.capsule(a, b, half, color, 1.0);
    let head = (width * 3.0).min(len * 0.6);
    let (ux, uy) = (dx / len, dy / len);
    for side in [-1.0, 1.0] {
        let c = (
            b.0 - head * (ux * 0.87 - side * uy * 0.5),
            b.1 - head * (uy * 0.87 + side * ux * 0.5),
        );
        canvas.capsule(b, c, half, color, 1.0);
    }
}

/// Draws a marker disc of `radius` pixels in `color` at `c` (image pixels).
pub fn draw_marker(img: &mut RgbImage, c: (f64, f64), radius: f64, color: [u8; 3]) {
    Canvas::new(img).joint(c, radius, color);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::colormap::Colormap;
    use crate::pose::skeleton::OPENPOSE_COCO18;
    use crate::pose::Keypoint;

    fn person(points: &[(usize, f32, f32)]) -> Person {
        let mut keypoints = vec![None; OPENPOSE_COCO18.len()];
        for &(j, x, y) in points {
            keypoints[j] = Some(Keypoint { x, y, score: 1.0 });
        }
        Person {
            score: 1.0,
            keypoints,
        }
    }

    fn peak_map() -> Vec<f32> {
        let mut map = vec![0.0; 8 * 6];
        map[2 * 8 + 3] = 1.0;
        map
    }

    #[test]
    fn overlay_lands_on_the_transformed_peak() {
        let mut img = RgbImage::new(64, 48);
        let t = Affine2::resample(8.0, 8.0);
        let style = OverlayStyle {
            colormap: Colormap::Inferno, // brightness grows with the value
            opacity: 1.0,
            ..OverlayStyle::default()
        };
        blend_heatmap(&mut img, &peak_map(), 8, 6, &t, &style).unwrap();
        let luma = |p: &image::Rgb<u8>| p.0.iter().map(|&c| u32::from(c)).sum::<u32>();
        let best = img.pixels().map(luma).max().unwrap();
        let hits: Vec<_> = img
            .enumerate_pixels()
            .filter(|p| luma(p.2) == best)
            .collect();
        let (px, py) = t.apply(3.0, 2.0);
        assert_eq!((px, py), (27.5, 19.5));
        for (x, y, _) in &hits {
            assert!((f64::from(*x) - px).abs() <= 1.0 && (f64::from(*y) - py).abs() <= 1.0);
        }
        assert_eq!(hits.len(), 4, "the four pixels around (27.5, 19.5) tie");
        // Far from the peak the overlay shows the colormap's t = 0 colour.
        assert_eq!(img.get_pixel(2, 2).0, Colormap::Inferno.rgb(0.0));
    }

    #[test]
    fn letterbox_bars_are_untouched_and_paths_agree() {
        let grey = image::Rgb([100u8, 100, 100]);
        // Map covers image rows [10, 58) of a 64x68 image.
        let t = Affine2::scale_translate(8.0, 8.0, 3.5, 13.5);
        let mut img = RgbImage::from_pixel(64, 68, grey);
        blend_heatmap(&mut img, &peak_map(), 8, 6, &t, &OverlayStyle::default()).unwrap();
        for (_, y, p) in img.enumerate_pixels() {
            assert_eq!(*p == grey, !(10..58).contains(&y), "row {y}");
        }
        // The per-pixel path gives the same picture as the separable one.
        let lut = Lut::new(&OverlayStyle::default(), &[], 0.5);
        let map = peak_map();
        let grid = Grid {
            map: &map,
            map_w: 8,
            map_h: 6,
        };
        let mut general = RgbImage::from_pixel(64, 68, grey);
        blend_general(&mut general, &grid, &t.inverse().unwrap(), &lut);
        assert_eq!(general, img);
    }

    #[test]
    fn auto_range_and_errors() {
        let t = Affine2::IDENTITY;
        let style = OverlayStyle {
            colormap: Colormap::Viridis,
            opacity: 1.0,
            range: OverlayStyle::AUTO_RANGE,
            gamma: 1.0,
        };
        let mut img = RgbImage::new(2, 1);
        blend_heatmap(&mut img, &[10.0, 20.0], 2, 1, &t, &style).unwrap();
        assert_eq!(img.get_pixel(0, 0).0, Colormap::Viridis.rgb(0.0));
        assert_eq!(img.get_pixel(1, 0).0, Colormap::Viridis.rgb(1.0));
        let bad = blend_heatmap(&mut img, &[0.0; 3], 2, 1, &t, &style);
        assert!(matches!(bad, Err(AnnotateError::MapShape { len: 3, .. })));
        let huge = blend_heatmap(&mut img, &[0.0; 3], usize::MAX, 2, &t, &style);
        assert!(huge.is_err());
        let singular = Affine2::scale_translate(0.0, 1.0, 0.0, 0.0);
        let bad = blend_heatmap(&mut img, &[0.0; 2], 2, 1, &singular, &style);
        assert_eq!(bad, Err(AnnotateError::SingularTransform(singular)));
        let nan = Affine2::scale_translate(1.0, 1.0, f64::NAN, 0.0);
        assert!(blend_heatmap(&mut img, &[0.0; 2], 2, 1, &nan, &style).is_err());
        let mut empty = RgbImage::new(0, 0);
        blend_heatmap(&mut empty, &[f32::NAN; 2], 2, 1, &t, &style).unwrap();
    }

    #[test]
    fn limb_is_drawn_in_its_colour_and_nothing_else() {
        let mut img = RgbImage::new(100, 100);
        // Limb 0 of COCO-18 is neck (1) -> right shoulder (2), red.
        let p = person(&[(1, 20.0, 50.0), (2, 80.0, 50.0)]);
        draw_people(&mut img, &[p], &OPENPOSE_COCO18, &SkeletonStyle::default());
        assert_eq!(img.get_pixel(50, 50).0, OPENPOSE_COCO18.limb_colors[0]);
        assert_eq!(img.get_pixel(20, 50).0, OPENPOSE_COCO18.joint_color(1));
        assert_ne!(
            img.get_pixel(50, 51).0,
            [0, 0, 0],
            "2 px line, anti-aliased edge"
        );
        for (x, y) in [(50, 10), (50, 60), (5, 50), (95, 50)] {
            assert_eq!(img.get_pixel(x, y).0, [0, 0, 0], "({x}, {y})");
        }
    }

    #[test]
    fn wild_keypoints_do_not_panic() {
        let wild = [
            1e9,
            -1e9,
            f32::NAN,
            f32::INFINITY,
            f32::MAX,
            -f32::MAX,
            0.0,
            30.0,
        ];
        let mut people = Vec::new();
        for &x in &wild {
            for &y in &wild {
                people.push(person(&[(1, 30.0, 30.0), (2, x, y), (3, x, y), (0, y, x)]));
            }
        }
        people.push(Person {
            score: 0.0,
            keypoints: vec![],
        });
        for line_width in [0.0, 1e9, f32::NAN, -1.0, 0.01] {
            let style = SkeletonStyle {
                line_width,
                ..SkeletonStyle::default()
            };
            let mut img = RgbImage::new(64, 48);
            draw_people(&mut img, &people, &OPENPOSE_COCO18, &style);
            draw_people(&mut RgbImage::new(0, 0), &people, &OPENPOSE_COCO18, &style);
        }
        // A limb towards (1e9, -1e9) is still drawn where it crosses the image.
        let mut img = RgbImage::new(64, 48);
        let p = person(&[(1, 10.0, 40.0), (2, 1e9, -1e9)]);
        draw_people(&mut img, &[p], &OPENPOSE_COCO18, &SkeletonStyle::default());
        assert_eq!(img.get_pixel(30, 20).0, OPENPOSE_COCO18.limb_colors[0]);
    }

    #[test]
    #[ignore = "writes annotate_demo.png to the temp dir for a visual check"]
    fn demo_png() {
        let (w, h, stride) = (640u32, 480u32, 8usize);
        let (mw, mh) = (w as usize / stride, h as usize / stride);
        let to_image = Affine2::resample(stride as f64, stride as f64);
        // COCO-18 joints of a stick figure, in units of `s` map pixels from the nose.
        #[rustfmt::skip]
        const POSE: [(f32, f32); 18] = [
            (0.0, 0.0), (0.0, 2.0), (-2.0, 2.2), (-3.0, 5.0), (-2.5, 7.5), (2.0, 2.2),
            (3.5, 4.5), (5.0, 3.0), (-1.2, 8.0), (-1.5, 12.0), (-1.8, 16.0), (1.2, 8.0),
            (2.5, 12.0), (3.0, 16.0), (-0.5, -0.4), (0.5, -0.4), (-1.1, -0.1), (1.1, -0.1),
        ];
        let figure = |cx: f32, s: f32| {
            let pts = (0..18).map(|j| (j, cx + POSE[j].0 * s, 15.0 + POSE[j].1 * s));
            person(&pts.collect::<Vec<_>>())
        };
        let people = [figure(25.0, 2.0), figure(56.0, 1.6)];
        let mut map = vec![0.0f32; mw * mh];
        for p in &people {
            for k in p.keypoints.iter().flatten() {
                for (i, v) in map.iter_mut().enumerate() {
                    let (dx, dy) = ((i % mw) as f32 - k.x, (i / mw) as f32 - k.y);
                    *v = v.max((-(dx * dx + dy * dy) / 2.0).exp());
                }
            }
        }
        let mut img = RgbImage::from_fn(w, h, |x, y| {
            let g = (60 + (x + y) / 16) as u8;
            image::Rgb([g, g, g.saturating_add(10)])
        });
        blend_heatmap(&mut img, &map, mw, mh, &to_image, &OverlayStyle::default()).unwrap();
        let people: Vec<_> = people.iter().map(|p| p.transformed(&to_image)).collect();
        draw_people(
            &mut img,
            &people,
            &OPENPOSE_COCO18,
            &SkeletonStyle::default(),
        );
        img.save(std::env::temp_dir().join("annotate_demo.png"))
            .unwrap();
    }
}
