//! Edits of belief maps for intervention experiments (erase a joint's map, paint a peak, brush
//! strokes), and naming a joint on the command line. Pure math on [`Maps`] (`[K, H, W]`,
//! pixel-index coordinates: integers are cell centres, `(x, y)` order).
//!
//! Image coordinates are brought into a stage's map grid through the inverse of that stage's
//! map → image affine ([`image_to_map`]).

use super::{Affine2, JointSet, Maps};

/// Why an edit or a joint name cannot be used.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EditError {
    #[error(
        "unknown joint '{given}': give a joint name ({names}) or a channel index 0..{channels}"
    )]
    UnknownJoint {
        given: String,
        names: String,
        channels: usize,
    },
    #[error("channel {channel} is out of range: the maps have {channels} channels")]
    Channel { channel: usize, channels: usize },
    #[error("the map-to-image transform {0:?} cannot be inverted")]
    Singular(Affine2),
}

/// A joint given as its name in `joints` (case-insensitive; `-` and `_` alike) or as its
/// 0-based channel index in the model's maps (`channels` of them: the joints, then any
/// background channel).
pub fn parse_joint(spec: &str, joints: &JointSet, channels: usize) -> Result<usize, EditError> {
    let s = spec.trim();
    if let Ok(i) = s.parse::<usize>() {
        if i < channels {
            return Ok(i);
        }
    }
    let norm = |n: &str| n.to_ascii_lowercase().replace('-', "_");
    let wanted = norm(s);
    joints
        .joints
        .iter()
        .position(|n| norm(n) == wanted)
        .ok_or_else(|| EditError::UnknownJoint {
            given: s.to_string(),
            names: joints.joints.join(", "),
            channels,
        })
}

/// An image point in the map grid of a stage whose map → image transform is `map_to_image`.
pub fn image_to_map(map_to_image: &Affine2, (x, y): (f64, f64)) -> Result<(f64, f64), EditError> {
    let inv = map_to_image
        .inverse()
        .filter(|t| t.m.iter().all(|v| v.is_finite()))
        .ok_or(EditError::Singular(*map_to_image))?;
    Ok(inv.apply(x, y))
}

fn channel_mut(maps: &mut Maps, k: usize) -> Result<&mut [f32], EditError> {
    let channels = maps.channels();
    maps.channel_mut(k).ok_or(EditError::Channel {
        channel: k,
        channels,
    })
}

/// Sets channel `k` to zero everywhere.
pub fn erase(maps: &mut Maps, k: usize) -> Result<(), EditError> {
    channel_mut(maps, k)?.fill(0.0);
    Ok(())
}

/// Zeroes channel `k` inside the disc of `radius` cells around `(x, y)` (map cells): an erasing
/// brush stroke.
pub fn erase_disc(
    maps: &mut Maps,
    k: usize,
    (x, y): (f64, f64),
    radius: f64,
) -> Result<(), EditError> {
    let w = maps.width();
    let c = channel_mut(maps, k)?;
    for (i, v) in c.iter_mut().enumerate() {
        let (cx, cy) = ((i % w.max(1)) as f64, (i / w.max(1)) as f64);
        if (cx - x).powi(2) + (cy - y).powi(2) <= radius * radius {
            *v = 0.0;
        }
    }
    Ok(())
}

/// Paints a Gaussian peak `amplitude · exp(−d² / 2σ²)` centred at `(x, y)` (map cells,
/// sub-cell positions allowed) into channel `k`, keeping the larger of the old and the new
/// value at every cell (painting never lowers a map).
pub fn paint_peak(
    maps: &mut Maps,
    k: usize,
    (x, y): (f64, f64),
    sigma: f64,
    amplitude: f32,
) -> Result<(), EditError> {
    let w = maps.width();
    let c = channel_mut(maps, k)?;
    let s2 = 2.0 * sigma.max(1e-6).powi(2);
    for (i, v) in c.iter_mut().enumerate() {
        let (cx, cy) = ((i % w.max(1)) as f64, (i / w.max(1)) as f64);
        let g = amplitude * (-((cx - x).powi(2) + (cy - y).powi(2)) / s2).exp() as f32;
        if g > *v {
            *v = g;
        }
    }
    Ok(())
}

/// The largest value of channel `k` (0 for an empty map).
pub fn channel_max(maps: &Maps, k: usize) -> Option<f32> {
    maps.channel(k)
        .map(|c| c.iter().copied().fold(0.0f32, f32::max))
}

/// The cell `(x, y)` of channel `k`'s largest value (the first one on ties).
pub fn argmax(maps: &Maps, k: usize) -> Option<(usize, usize)> {
    let w = maps.width().max(1);
    let c = maps.channel(k)?;
    let mut best: Option<(usize, f32)> = None;
    for (i, &v) in c.iter().enumerate() {
        if best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    best.map(|(i, _)| (i % w, i / w))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::pose::skeleton::LSP14;

    #[test]
    fn joints_by_name_or_index() {
        assert_eq!(parse_joint("right_knee", &LSP14, 14), Ok(1));
        assert_eq!(parse_joint("Right-Knee", &LSP14, 14), Ok(1));
        assert_eq!(parse_joint("13", &LSP14, 15), Ok(13));
        // The background channel by index.
        assert_eq!(parse_joint("14", &LSP14, 15), Ok(14));
        let e = parse_joint("15", &LSP14, 15).unwrap_err();
        assert!(e.to_string().contains("head_top"), "{e}");
        assert!(parse_joint("elbow", &LSP14, 14).is_err());
    }

    #[test]
    fn erase_zeroes_one_channel_only() {
        let mut m = Maps::new(vec![1.0; 2 * 3 * 4], 2, 3, 4).unwrap();
        erase(&mut m, 1).unwrap();
        assert!(m.channel(0).unwrap().iter().all(|&v| v == 1.0));
        assert!(m.channel(1).unwrap().iter().all(|&v| v == 0.0));
        assert!(erase(&mut m, 2).is_err());
    }

    #[test]
    fn erase_disc_keeps_what_is_outside() {
        let mut m = Maps::new(vec![1.0; 9 * 9], 1, 9, 9).unwrap();
        erase_disc(&mut m, 0, (4.0, 4.0), 1.0).unwrap();
        assert_eq!(m.get(0, 4, 4), Some(0.0));
        assert_eq!(m.get(0, 3, 4), Some(0.0));
        assert_eq!(m.get(0, 3, 3), Some(1.0));
        assert_eq!(m.get(0, 0, 0), Some(1.0));
    }

    #[test]
    fn painted_peak_decodes_where_it_was_painted() {
        // An image point through an affine (map cell = 8 px, half-cell offset) to the map,
        // painted, and its argmax mapped back lands within half a cell.
        let to_image = Affine2::resample(8.0, 8.0);
        let (px, py) = (100.0, 60.0);
        let (mx, my) = image_to_map(&to_image, (px, py)).unwrap();
        assert!((mx - 12.0625).abs() < 1e-9 && (my - 7.0625).abs() < 1e-9);
        let mut m = Maps::zeros(2, 24, 24);
        paint_peak(&mut m, 1, (mx, my), 1.5, 2.0).unwrap();
        assert_eq!(argmax(&m, 1), Some((12, 7)));
        let back = to_image.apply(12.0, 7.0);
        assert!((back.0 - px).abs() <= 4.0 && (back.1 - py).abs() <= 4.0);
        assert!((channel_max(&m, 1).unwrap() - 2.0).abs() < 0.2);
        assert_eq!(channel_max(&m, 0), Some(0.0));
        // Painting never lowers a value.
        let mut ones = Maps::new(vec![3.0; 24 * 24], 1, 24, 24).unwrap();
        paint_peak(&mut ones, 0, (mx, my), 1.5, 2.0).unwrap();
        assert!(ones.as_slice().iter().all(|&v| v == 3.0));
    }

    #[test]
    fn singular_transform_is_an_error() {
        let flat = Affine2::scale_translate(0.0, 1.0, 0.0, 0.0);
        assert!(image_to_map(&flat, (1.0, 1.0)).is_err());
    }
}
