//! Pictures and the report of a model-against-model comparison
//! ([`crate::experiments::versus`]), shared by the app and `posescope versus`:
//! - `versus.png`: model A (left) and model B (right) on the same frame, each with its
//!   final-stage max-over-joints map and its skeletons;
//! - `versus.json`: the keypoint-distance table (`posescope-versus/1`).

use image::RgbImage;
use serde_json::json;

use super::experiments::hstack;
use super::{annotate, annotated_image, png_bytes, ExportError, PngOptions};
use crate::colormap::Colormap;
use crate::experiments::versus::Comparison;
use crate::pose::versus::SharedChannel;

/// Colour of model A's keypoints in the difference view (the red end: A − B > 0).
pub const A_COLOR: [u8; 3] = [255, 96, 64];
/// Colour of model B's keypoints (the blue end: A − B < 0).
pub const B_COLOR: [u8; 3] = [64, 150, 255];

/// Model A (left) and model B (right), each with its map and skeletons.
pub fn side_by_side(cmp: &Comparison) -> Result<RgbImage, ExportError> {
    Ok(hstack(&panels(cmp)?))
}

/// The two panels of [`side_by_side`].
pub fn panels(cmp: &Comparison) -> Result<[RgbImage; 2], ExportError> {
    let opts = PngOptions::default();
    Ok([
        annotated_image(&cmp.a, &opts)?,
        annotated_image(&cmp.b, &opts)?,
    ])
}

/// A − B of `channel`'s final maps in image space ([`Comparison::difference`], at most
/// `max_side` pixels along the longer side, the picture's size) over the frame in dimmed
/// grey: coolwarm, symmetric range ±the largest magnitude, red where A believes more, blue
/// where B does, more opaque the larger the difference; A's keypoints of that joint marked in
/// [`A_COLOR`], B's in [`B_COLOR`]. Also returns the largest magnitude.
pub fn difference_panel(
    cmp: &Comparison,
    channel: &SharedChannel,
    max_side: u32,
    normalize: bool,
) -> Result<(RgbImage, f32), ExportError> {
    let (grid, diff) = cmp
        .difference(channel, max_side, normalize)
        .map_err(|e| ExportError::Draw(e.to_string()))?;
    let top = diff.iter().map(|v| v.abs()).fold(0.0f32, f32::max);
    let (w, h) = (grid.width as u32, grid.height as u32);
    let small = image::imageops::resize(&*cmp.a.image, w, h, image::imageops::FilterType::Triangle);
    let mut img = RgbImage::from_fn(w, h, |x, y| {
        let p = small.get_pixel(x, y).0;
        let g =
            (0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2])) * 0.55;
        let d = diff[(y * w + x) as usize];
        let t = if top > 0.0 { d / top } else { 0.0 };
        let c = Colormap::Coolwarm.rgb_unit(0.5 + 0.5 * t);
        let a = t.abs().sqrt().min(1.0) * 0.9;
        image::Rgb(c.map(|c| (g * (1.0 - a) + c * 255.0 * a).round().clamp(0.0, 255.0) as u8))
    });
    let to_panel = grid
        .to_image
        .inverse()
        .ok_or_else(|| ExportError::Draw("the difference grid cannot be inverted".into()))?;
    let r = f64::from(w.max(h)) / 110.0 + 2.0;
    for (ins, k, color) in [(&cmp.a, channel.a, A_COLOR), (&cmp.b, channel.b, B_COLOR)] {
        for p in &ins.people {
            if let Some(kp) = p.keypoints.get(k).copied().flatten() {
                if kp.score >= cmp.min_score {
                    let at = to_panel.apply(f64::from(kp.x), f64::from(kp.y));
                    annotate::draw_marker(&mut img, at, r, color);
                }
            }
        }
    }
    Ok((img, top))
}

/// The comparison as JSON: both models, the matched people and the distance table.
pub fn report(cmp: &Comparison) -> serde_json::Value {
    let t = &cmp.table;
    json!({
        "format": "posescope-versus/1",
        "model_a": cmp.a.model_id,
        "model_b": cmp.b.model_id,
        "image_size": [cmp.a.frame.width, cmp.a.frame.height],
        "people_a": cmp.a.people.len(),
        "people_b": cmp.b.people.len(),
        "min_score": cmp.min_score,
        "definition": "distance in image pixels between model A's keypoint and model B's \
            keypoint of the same joint (B's joints expressed in A's joint set by name), \
            people matched one to one by the smallest mean distance",
        "joints": t.joints,
        "pairs": t.pairs.iter().map(|p| json!({
            "person_a": p.a,
            "person_b": p.b,
            "distances_px": p.distances,
            "mean_px": p.mean,
        })).collect::<Vec<_>>(),
        "per_joint_px": t.joints.iter().zip(&t.per_joint)
            .map(|(j, d)| json!({"joint": j, "mean_px": d}))
            .collect::<Vec<_>>(),
        "mean_px": t.mean,
        "unmatched_a": t.unmatched_a,
        "unmatched_b": t.unmatched_b,
        "shared_map_channels": cmp.shared.iter().map(|c| c.joint).collect::<Vec<_>>(),
    })
}

/// The comparison's files, encoded: `(file name, bytes)`.
pub fn files(cmp: &Comparison) -> Result<Vec<(&'static str, Vec<u8>)>, ExportError> {
    let json = serde_json::to_vec_pretty(&report(cmp))
        .map_err(|e| ExportError::Encode(format!("versus.json: {e}")))?;
    Ok(vec![
        ("versus.json", json),
        ("versus.png", png_bytes(&side_by_side(cmp)?)?),
    ])
}
