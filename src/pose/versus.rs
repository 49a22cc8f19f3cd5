//! Model against model on the same frame: which joints two joint sets share, their final
//! maps resampled into image space (so maps of different strides, input sizes and resize
//! modes line up), and the distance between the two models' keypoints per matched person.
//!
//! Joints are matched by name through [`JointMap`] (model B's set expressed in model A's):
//! - maps: only joints B has a channel for (same name or a stand-in, e.g. MPII `upper_neck`
//!   for `neck`); a derived joint has no map;
//! - keypoints: every joint of A that B can give, derived ones included (e.g. a COCO-17
//!   model's neck at the midpoint of its shoulders).
//!
//! People are matched one to one by the Hungarian method on the mean distance over the
//! joints both have; pairs with no joint in common are left unmatched.

use serde::Serialize;

use super::affine::Affine2;
use super::joint_map::{JointMap, JointSource};
use super::munkres;
use super::person::{Keypoint, Person};
use super::skeleton::JointSet;

/// Why a comparison could not be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VersusError {
    #[error("map '{what}' has {len} values, expected {width}x{height}")]
    MapShape {
        what: String,
        len: usize,
        width: usize,
        height: usize,
    },
    #[error("map '{what}': its map-to-image transform {0:?} cannot be inverted", .transform)]
    Singular { what: String, transform: Affine2 },
    #[error("matching people: {0}")]
    Assign(#[from] munkres::MunkresError),
}

/// A joint both models have a map channel for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SharedChannel {
    /// The joint's name in model A's set.
    pub joint: &'static str,
    /// Channel in A's maps.
    pub a: usize,
    /// Channel in B's maps.
    pub b: usize,
}

/// The joints of `a` that `b` has a map channel for (same name or stand-in), in `a`'s order.
pub fn shared_channels(a: &'static JointSet, b: &'static JointSet) -> Vec<SharedChannel> {
    let map = JointMap::new(b, a);
    a.joints
        .iter()
        .zip(&map.sources)
        .enumerate()
        .filter_map(|(j, (name, s))| match *s {
            JointSource::Same(i) | JointSource::StandIn(i) => Some(SharedChannel {
                joint: name,
                a: j,
                b: i,
            }),
            _ => None,
        })
        .collect()
}

/// A sampling grid over the image: cell `(u, v)` lies at image point `to_image(u, v)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ImageGrid {
    pub width: usize,
    pub height: usize,
    pub to_image: Affine2,
}

impl ImageGrid {
    /// A grid covering an image of `width × height` pixels with at most `max_side` cells
    /// along its longer side (the image's own pixels when it is smaller).
    pub fn fit(width: u32, height: u32, max_side: u32) -> ImageGrid {
        let long = width.max(height).max(1);
        let f = (f64::from(long) / f64::from(max_side.max(1))).max(1.0);
        let gw = ((f64::from(width) / f).round() as usize).max(1);
        let gh = ((f64::from(height) / f).round() as usize).max(1);
        let (fx, fy) = (f64::from(width) / gw as f64, f64::from(height) / gh as f64);
        ImageGrid {
            width: gw,
            height: gh,
            to_image: Affine2::resample(fx, fy),
        }
    }
}

/// `map` (`map_w × map_h`, row-major) resampled onto `grid`: each cell takes the map's
/// bilinear value at the image point it covers (through the inverse of `map_to_image`);
/// cells whose point lies outside the map's extent (beyond half a cell from its border
/// centres) are 0, as the model says nothing there.
pub fn resample_to_image(
    what: &str,
    map: &[f32],
    map_w: usize,
    map_h: usize,
    map_to_image: &Affine2,
    grid: &ImageGrid,
) -> Result<Vec<f32>, VersusError> {
    if map_w.checked_mul(map_h) != Some(map.len()) {
        return Err(VersusError::MapShape {
            what: what.to_string(),
            len: map.len(),
            width: map_w,
            height: map_h,
        });
    }
    let inv = map_to_image
        .inverse()
        .filter(|t| t.m.iter().all(|v| v.is_finite()))
        .ok_or_else(|| VersusError::Singular {
            what: what.to_string(),
            transform: *map_to_image,
        })?;
    let to_map = inv.after(&grid.to_image);
    let mut out = vec![0.0f32; grid.width * grid.height];
    if map.is_empty() {
        return Ok(out);
    }
    let (xm, ym) = ((map_w - 1) as f64, (map_h - 1) as f64);
    for v in 0..grid.height {
        for u in 0..grid.width {
            let (x, y) = to_map.apply(u as f64, v as f64);
            if !(-0.5..=xm + 0.5).contains(&x) || !(-0.5..=ym + 0.5).contains(&y) {
                continue;
            }
            let (x, y) = (x.clamp(0.0, xm), y.clamp(0.0, ym));
            let (x0, y0) = (x.floor() as usize, y.floor() as usize);
            let (x1, y1) = ((x0 + 1).min(map_w - 1), (y0 + 1).min(map_h - 1));
            let (fx, fy) = ((x - x0 as f64) as f32, (y - y0 as f64) as f32);
            let at = |yy: usize, xx: usize| map[yy * map_w + xx];
            let top = at(y0, x0) * (1.0 - fx) + at(y0, x1) * fx;
            let bottom = at(y1, x0) * (1.0 - fx) + at(y1, x1) * fx;
            out[v * grid.width + u] = top * (1.0 - fy) + bottom * fy;
        }
    }
    Ok(out)
}

/// One model's map of one joint: values, size, and the map → image transform.
#[derive(Clone, Copy, Debug)]
pub struct PlacedMap<'a> {
    pub values: &'a [f32],
    pub width: usize,
    pub height: usize,
    pub to_image: Affine2,
}

/// A − B on `grid`, both resampled into image space ([`resample_to_image`]). With
/// `normalize`, each resampled map is first divided by its own maximum (when positive), so
/// that models whose maps peak at different heights compare by shape and place.
pub fn map_difference(
    a: PlacedMap<'_>,
    b: PlacedMap<'_>,
    grid: &ImageGrid,
    normalize: bool,
) -> Result<Vec<f32>, VersusError> {
    let scaled = |mut v: Vec<f32>| {
        let top = v.iter().copied().fold(0.0f32, f32::max);
        if normalize && top > 0.0 {
            v.iter_mut().for_each(|x| *x /= top);
        }
        v
    };
    let ra = scaled(resample_to_image(
        "A",
        a.values,
        a.width,
        a.height,
        &a.to_image,
        grid,
    )?);
    let rb = scaled(resample_to_image(
        "B",
        b.values,
        b.width,
        b.height,
        &b.to_image,
        grid,
    )?);
    Ok(ra.iter().zip(&rb).map(|(x, y)| x - y).collect())
}

/// One matched pair of people and their keypoints' distances.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PersonPair {
    /// Index into A's people.
    pub a: usize,
    /// Index into B's people.
    pub b: usize,
    /// Per compared joint ([`KeypointDistances::joints`]), image pixels; `None` where either
    /// model has no keypoint.
    pub distances: Vec<Option<f64>>,
    /// Mean over the joints both have.
    pub mean: f64,
}

/// The keypoint-distance table of two models on one frame.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KeypointDistances {
    /// The compared joints: A's joints that B can give (by the joint-set mapping).
    pub joints: Vec<&'static str>,
    /// Their indices in A's set.
    #[serde(skip)]
    pub joint_index: Vec<usize>,
    pub pairs: Vec<PersonPair>,
    /// Per compared joint, the mean over the pairs that have it.
    pub per_joint: Vec<Option<f64>>,
    /// The mean over every (pair, joint) distance.
    pub mean: Option<f64>,
    /// People of A and of B left unmatched.
    pub unmatched_a: usize,
    pub unmatched_b: usize,
}

fn usable(k: Option<Keypoint>, min_score: f32) -> Option<(f64, f64)> {
    let k = k?;
    (k.score >= min_score && k.x.is_finite() && k.y.is_finite())
        .then(|| (f64::from(k.x), f64::from(k.y)))
}

/// Compares A's and B's people (image pixels, each in its model's joint order): B's people
/// are expressed in A's joint set, keypoints below `min_score` are ignored, people are
/// matched one to one by the smallest mean distance.
pub fn keypoint_distances(
    a_set: &'static JointSet,
    a_people: &[Person],
    b_set: &'static JointSet,
    b_people: &[Person],
    min_score: f32,
) -> Result<KeypointDistances, VersusError> {
    let map = JointMap::new(b_set, a_set);
    let joint_index: Vec<usize> = (0..a_set.len()).filter(|&j| map.is_present(j)).collect();
    let b_mapped: Vec<Vec<Option<Keypoint>>> = b_people
        .iter()
        .map(|p| map.map_keypoints(&p.keypoints))
        .collect();
    let dist = |pa: &Person, pb: &[Option<Keypoint>]| -> Vec<Option<f64>> {
        joint_index
            .iter()
            .map(|&j| {
                let p = usable(pa.keypoints.get(j).copied().flatten(), min_score)?;
                let q = usable(pb.get(j).copied().flatten(), min_score)?;
                Some((p.0 - q.0).hypot(p.1 - q.1))
            })
            .collect()
    };
    let mean = |d: &[Option<f64>]| {
        let (s, n) = d.iter().flatten().fold((0.0, 0), |a, v| (a.0 + v, a.1 + 1));
        (n > 0).then(|| s / f64::from(n))
    };
    let (rows, cols) = (a_people.len(), b_mapped.len());
    let mut table = Vec::with_capacity(rows * cols);
    let mut cost = Vec::with_capacity(rows * cols);
    for pa in a_people {
        for pb in &b_mapped {
            let d = dist(pa, pb);
            // No joint in common: a cost above any real one, dropped after the assignment.
            cost.push(mean(&d).unwrap_or(1e12));
            table.push(d);
        }
    }
    let mut pairs = Vec::new();
    if rows > 0 && cols > 0 {
        for (r, c) in munkres::assign(&cost, rows, cols)? {
            let d = &table[r * cols + c];
            if let Some(m) = mean(d) {
                pairs.push(PersonPair {
                    a: r,
                    b: c,
                    distances: d.clone(),
                    mean: m,
                });
            }
        }
    }
    let per_joint = (0..joint_index.len())
        .map(|k| {
            let d: Vec<Option<f64>> = pairs.iter().map(|p| p.distances[k]).collect();
            mean(&d)
        })
        .collect();
    let all: Vec<Option<f64>> = pairs
        .iter()
        .flat_map(|p| p.distances.iter().copied())
        .collect();
    Ok(KeypointDistances {
        joints: joint_index.iter().map(|&j| a_set.joints[j]).collect(),
        unmatched_a: rows - pairs.len(),
        unmatched_b: cols - pairs.len(),
        joint_index,
        pairs,
        per_joint,
        mean: mean(&all),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::pose::skeleton::{COCO17, HEAD_NECK_14, OPENPOSE_COCO18};

    fn person(set: &JointSet, at: impl Fn(&str) -> Option<(f32, f32)>) -> Person {
        Person {
            score: 1.0,
            keypoints: set
                .joints
                .iter()
                .map(|n| at(n).map(|(x, y)| Keypoint { x, y, score: 0.9 }))
                .collect(),
        }
    }

    #[test]
    fn shared_channels_match_by_name() {
        let s = shared_channels(&OPENPOSE_COCO18, &HEAD_NECK_14);
        // OpenPose-18 and the head-neck set share the neck and the 12 limb joints.
        assert_eq!(s.len(), 13);
        assert_eq!(s[0].joint, "neck");
        assert_eq!((s[0].a, s[0].b), (1, 1));
        let rs = s.iter().find(|c| c.joint == "right_shoulder").unwrap();
        assert_eq!((rs.a, rs.b), (2, 2));
        // COCO-17 has no neck channel: a derived neck is not a map.
        let s = shared_channels(&OPENPOSE_COCO18, &COCO17);
        assert!(s.iter().all(|c| c.joint != "neck"));
        assert_eq!(s.len(), 17);
        let same = shared_channels(&HEAD_NECK_14, &HEAD_NECK_14);
        assert!(same.iter().enumerate().all(|(i, c)| c.a == i && c.b == i));
    }

    #[test]
    fn identical_maps_give_zero_difference() {
        let map: Vec<f32> = (0..24 * 24).map(|i| (i % 7) as f32 / 7.0).collect();
        let to_image = Affine2::resample(8.0, 8.0);
        let p = PlacedMap {
            values: &map,
            width: 24,
            height: 24,
            to_image,
        };
        let grid = ImageGrid::fit(192, 192, 96);
        assert_eq!((grid.width, grid.height), (96, 96));
        for normalize in [false, true] {
            let d = map_difference(p, p, &grid, normalize).unwrap();
            assert!(d.iter().all(|&v| v == 0.0));
        }
        // Normalised: the same map at half the height differs by nothing.
        let half: Vec<f32> = map.iter().map(|v| v / 2.0).collect();
        let q = PlacedMap { values: &half, ..p };
        let d = map_difference(p, q, &grid, true).unwrap();
        assert!(d.iter().all(|v| v.abs() < 1e-6));
        let d = map_difference(p, q, &grid, false).unwrap();
        assert!(d.iter().any(|v| v.abs() > 0.1));
    }

    #[test]
    fn resampling_follows_the_affine() {
        // One peak at map cell (3, 2) of a stride-8 map: its centre is image (27.5, 19.5).
        let mut map = vec![0.0f32; 8 * 6];
        map[2 * 8 + 3] = 1.0;
        let grid = ImageGrid::fit(64, 48, 64);
        assert_eq!(
            grid.to_image,
            Affine2::IDENTITY.after(&Affine2::resample(1.0, 1.0))
        );
        let t = Affine2::resample(8.0, 8.0);
        let r = resample_to_image("m", &map, 8, 6, &t, &grid).unwrap();
        let argmax = |r: &[f32]| {
            r.iter()
                .enumerate()
                .fold((0, f32::MIN), |b, (i, &v)| if v > b.1 { (i, v) } else { b })
        };
        let (i, v) = argmax(&r);
        // Image pixels 27 and 28 straddle the centre 27.5: both get 15/16 of the peak.
        assert_eq!((i % 64, i / 64), (27, 19));
        assert!(
            (v - (1.0 - 0.5 / 8.0) * (1.0 - 0.5 / 8.0)).abs() < 1e-6,
            "{v}"
        );
        // The same map placed 16 pixels further right (a known affine shift) peaks 16
        // pixels further right; A − B is +peak at A's peak and −peak at B's.
        let shifted = Affine2::scale_translate(1.0, 1.0, 16.0, 0.0).after(&t);
        let r2 = resample_to_image("m", &map, 8, 6, &shifted, &grid).unwrap();
        assert_eq!(argmax(&r2).0, i + 16);
        let placed = |to_image| PlacedMap {
            values: &map,
            width: 8,
            height: 6,
            to_image,
        };
        let d = map_difference(placed(t), placed(shifted), &grid, false).unwrap();
        assert!((d[i] - v).abs() < 1e-6 && (d[i + 16] + v).abs() < 1e-6);
        // Outside the map's extent (x beyond 8 cells * 8 px): zero, not the clamped border.
        let mut ones = vec![1.0f32; 8 * 6];
        ones[0] = 1.0;
        let g = ImageGrid::fit(128, 48, 128);
        let r = resample_to_image("m", &ones, 8, 6, &t, &g).unwrap();
        assert_eq!(r[63], 1.0);
        assert_eq!(r[64], 0.0);
    }

    #[test]
    fn bad_maps_are_errors() {
        let g = ImageGrid::fit(10, 10, 10);
        let e = resample_to_image("A", &[0.0; 5], 2, 2, &Affine2::IDENTITY, &g).unwrap_err();
        assert!(e.to_string().contains("'A' has 5 values"), "{e}");
        let flat = Affine2::scale_translate(0.0, 1.0, 0.0, 0.0);
        let e = resample_to_image("B", &[0.0; 4], 2, 2, &flat, &g).unwrap_err();
        assert!(matches!(e, VersusError::Singular { .. }));
    }

    #[test]
    fn keypoint_distances_match_people_and_joints() {
        // A: OpenPose-18, two people; B: head-neck-14, the same two people in the other
        // order, one of them moved by (3, 4) px.
        let pos = |x0: f32| {
            move |n: &str| {
                let i = HEAD_NECK_14.index_of(n)? as f32;
                Some((x0 + i, 10.0 * i))
            }
        };
        let a = vec![
            person(&OPENPOSE_COCO18, pos(0.0)),
            person(&OPENPOSE_COCO18, pos(500.0)),
        ];
        let moved = |n: &str| pos(500.0)(n).map(|(x, y)| (x + 3.0, y + 4.0));
        let b = vec![
            person(&HEAD_NECK_14, moved),
            person(&HEAD_NECK_14, pos(0.0)),
        ];
        let t = keypoint_distances(&OPENPOSE_COCO18, &a, &HEAD_NECK_14, &b, 0.1).unwrap();
        assert_eq!(t.joints.len(), 13);
        assert!(!t.joints.contains(&"nose") && !t.joints.contains(&"head_top"));
        assert_eq!(t.pairs.len(), 2);
        assert_eq!((t.pairs[0].a, t.pairs[0].b), (0, 1));
        assert_eq!(t.pairs[0].mean, 0.0);
        assert_eq!((t.pairs[1].a, t.pairs[1].b), (1, 0));
        assert!((t.pairs[1].mean - 5.0).abs() < 1e-9);
        assert!(t.per_joint.iter().all(|d| (d.unwrap() - 2.5).abs() < 1e-9));
        assert!((t.mean.unwrap() - 2.5).abs() < 1e-9);
        assert_eq!((t.unmatched_a, t.unmatched_b), (0, 0));

        // A model against itself: every distance 0.
        let t = keypoint_distances(&OPENPOSE_COCO18, &a, &OPENPOSE_COCO18, &a, 0.1).unwrap();
        assert_eq!(t.joints.len(), 18);
        assert_eq!(t.mean, Some(0.0));

        // One person in B: one pair, the other A person unmatched; low scores ignored.
        let mut lone = person(&HEAD_NECK_14, pos(0.0));
        for k in lone.keypoints.iter_mut().skip(2).flatten() {
            k.score = 0.05;
        }
        let t = keypoint_distances(&OPENPOSE_COCO18, &a, &HEAD_NECK_14, &[lone], 0.1).unwrap();
        assert_eq!(t.pairs.len(), 1);
        assert_eq!(t.pairs[0].a, 0);
        assert_eq!(t.pairs[0].distances.iter().flatten().count(), 1); // the neck
        assert_eq!((t.unmatched_a, t.unmatched_b), (1, 0));
        // Nobody: an empty table, no mean.
        let t = keypoint_distances(&OPENPOSE_COCO18, &[], &HEAD_NECK_14, &b, 0.1).unwrap();
        assert!(t.pairs.is_empty() && t.mean.is_none() && t.unmatched_b == 2);
    }
}
