//! Single-person decoding: one keypoint per joint channel at the channel's maximum.
//!
//! Maps are `[K, H, W]`; coordinates are map pixel indices `(x, y)`. The maximum cell is
//! refined by a quarter cell towards the larger neighbour on each axis (the usual
//! SimpleBaseline / HRNet / CPM test-time rule), which halves the quantisation error of a
//! plain argmax on smooth peaks.

use super::maps::Maps;
use super::person::{Keypoint, Person};

/// The maximum of one `[height, width]` map: `(x, y, value)` with the quarter-cell
/// refinement, or `None` for an empty map or one without a finite value.
pub fn refined_peak(map: &[f32], width: usize, height: usize) -> Option<(f32, f32, f32)> {
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
    let (x, y) = (best % width, best / width);
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

#[cfg(test)]
mod tests {
    use super::*;

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
