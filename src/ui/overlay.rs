//! Which map the overlay shows, computed from an [`Inspection`] on the CPU (tiny: `[H, W]`
//! at the network's output resolution). Pure functions, no egui or wgpu.

use crate::inspection::{FieldAt, Inspection};
use crate::pose::{JointSet, Maps};
use crate::render::Segment;

use super::settings::{JointView, MapKind, RangeMode, Settings};

/// One `[height, width]` map ready for the GPU, with the value range to colour it with.
#[derive(Clone, Debug, PartialEq)]
pub struct OverlayMap {
    pub values: Vec<f32>,
    pub width: u32,
    pub height: u32,
    pub range: (f32, f32),
    /// A signed map (stage difference): drawn with a diverging colormap around zero.
    pub diverging: bool,
}

/// The joints a map selection covers (without OpenPose's background channel).
fn joint_channels(ins: &Inspection, joint: Option<usize>) -> std::ops::Range<usize> {
    let n = ins.joints.len();
    match joint {
        Some(j) if j < n => j..j + 1,
        _ => 0..n,
    }
}

fn belief(maps: &Maps, channels: std::ops::Range<usize>) -> Vec<f32> {
    maps.max_over(channels)
}

fn min_max(v: &[f32]) -> (f32, f32) {
    let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
    for &x in v.iter().filter(|x| x.is_finite()) {
        lo = lo.min(x);
        hi = hi.max(x);
    }
    if lo > hi {
        (0.0, 1.0)
    } else if lo == hi {
        (lo, lo + 1e-6)
    } else {
        (lo, hi)
    }
}

/// The map of `stage` (0-based) for `joint` (`None` = max over joints), as the settings ask.
pub fn overlay_map(
    ins: &Inspection,
    stage: usize,
    joint: Option<usize>,
    settings: &Settings,
) -> Option<OverlayMap> {
    // The feature view; the belief map when the model exposes no such feature.
    if settings.map_kind == MapKind::Features {
        if let Some(m) = feature_map(ins, settings.feature) {
            return Some(m);
        }
    }
    let maps = &ins.stages.get(stage)?.heatmaps;
    let channels = joint_channels(ins, joint);
    if settings.map_kind == MapKind::Tags {
        if let Some(m) = tag_map(ins, stage, joint) {
            return Some(m);
        }
    }
    let current = belief(maps, channels.clone());
    let (values, range, diverging) = match settings.map_kind {
        MapKind::Belief | MapKind::Tags | MapKind::Features => {
            let range = match settings.range_mode {
                RangeMode::Fixed => settings.fixed_range,
                RangeMode::Auto => min_max(&current),
                RangeMode::SharedAcrossStages => {
                    let all: Vec<f32> = ins
                        .stages
                        .iter()
                        .flat_map(|s| belief(&s.heatmaps, channels.clone()))
                        .collect();
                    min_max(&all)
                }
            };
            (current, range, false)
        }
        MapKind::Difference => {
            let previous = match stage.checked_sub(1).and_then(|s| ins.stages.get(s)) {
                Some(p) if p.heatmaps.shape() == maps.shape() => {
                    belief(&p.heatmaps, channels.clone())
                }
                _ => vec![0.0; current.len()],
            };
            let diff: Vec<f32> = current.iter().zip(&previous).map(|(a, b)| a - b).collect();
            let m = diff.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
            (diff, (-m, m), true)
        }
    };
    Some(OverlayMap {
        values,
        width: maps.width() as u32,
        height: maps.height() as u32,
        range,
        diverging,
    })
}

/// The training target `spec` of a joint annotated at image pixel `gt`, in `stage`'s map grid
/// (coloured over `0..1`); `None` without such a stage or when the grid has no inverse.
pub fn target_map(
    ins: &Inspection,
    stage: usize,
    gt: (f64, f64),
    spec: &crate::pose::target::TargetSpec,
) -> Option<OverlayMap> {
    let maps = &ins.stages.get(stage)?.heatmaps;
    let (w, h) = (maps.width(), maps.height());
    let at = ins.stage_to_image(stage).inverse()?.apply(gt.0, gt.1);
    let sigma = spec.sigma_cells(ins.input_size.0, w);
    Some(OverlayMap {
        values: spec.render(w, h, at, sigma),
        width: w as u32,
        height: h as u32,
        range: (0.0, 1.0),
        diverging: false,
    })
}

/// The energy map of feature `feature` (0-based), coloured over its own minimum..maximum
/// (energies are unbounded, so the fixed range does not apply); `None` for no such feature.
pub fn feature_map(ins: &Inspection, feature: usize) -> Option<OverlayMap> {
    let f = ins.features.get(feature)?;
    let values = f.energy.as_slice().to_vec();
    let range = min_max(&values);
    Some(OverlayMap {
        values,
        width: f.energy.width() as u32,
        height: f.energy.height() as u32,
        range,
        diverging: false,
    })
}

/// The field of feature `feature`'s hovered cell: the field's outline (none for a whole-input
/// or undescribed field) and the cell's own outline, in image pixels.
pub fn feature_field_segments(
    ins: &Inspection,
    feature: usize,
    image_xy: (f64, f64),
) -> Vec<Segment> {
    let (Some(((cx, cy), field)), Some(t)) = (
        ins.feature_field_at(feature, image_xy),
        ins.feature_to_image(feature),
    ) else {
        return Vec::new();
    };
    let a = t.apply(cx as f64 - 0.5, cy as f64 - 0.5);
    let b = t.apply(cx as f64 + 0.5, cy as f64 + 0.5);
    let mut out = match field {
        FieldAt::Rect(r) => rectangle(r, [255, 255, 255], 1.0).to_vec(),
        FieldAt::Unknown | FieldAt::WholeInput => Vec::new(),
    };
    out.extend(rectangle([a.0, a.1, b.0, b.1], [255, 220, 0], 1.0));
    out
}

/// The tag map of `stage` (first tag dimension): joint `joint`'s tags, or for `None` the
/// tag of the joint with the highest heatmap value at each pixel. The colour range spans the
/// tags where the heatmap is strong (at least half its maximum), widened by a tenth, so the
/// people's tags spread over the diverging colormap; `None` when the stage has no tags.
pub fn tag_map(ins: &Inspection, stage: usize, joint: Option<usize>) -> Option<OverlayMap> {
    let s = ins.stages.get(stage)?;
    let tags = s.tags.as_ref()?;
    let heat = &s.heatmaps;
    let k = ins.joints.len();
    let (w, h) = (tags.width(), tags.height());
    if heat.width() != w || heat.height() != h || tags.channels() < k || heat.channels() < k {
        return None;
    }
    let plane = w * h;
    let mut values = vec![0f32; plane];
    let mut strength = vec![f32::NEG_INFINITY; plane];
    let joints: Vec<usize> = match joint {
        Some(j) if j < k => vec![j],
        _ => (0..k).collect(),
    };
    for &j in &joints {
        let (Some(hm), Some(tg)) = (heat.channel(j), tags.channel(j)) else {
            continue;
        };
        for i in 0..plane {
            if hm[i] > strength[i] {
                strength[i] = hm[i];
                values[i] = tg[i];
            }
        }
    }
    let top = strength.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let strong: Vec<f32> = values
        .iter()
        .zip(&strength)
        .filter(|(_, &st)| top > 0.0 && st >= 0.5 * top)
        .map(|(&v, _)| v)
        .collect();
    let (lo, hi) = if strong.is_empty() {
        min_max(&values)
    } else {
        min_max(&strong)
    };
    let pad = 0.1 * (hi - lo).max(1e-3);
    Some(OverlayMap {
        values,
        width: w as u32,
        height: h as u32,
        range: (lo - pad, hi + pad),
        diverging: true,
    })
}

/// The selected joint for a [`JointView`] (`None` = all joints).
pub fn selected_joint(view: JointView) -> Option<usize> {
    match view {
        JointView::Joint(j) => Some(j),
        JointView::Max | JointView::Grid => None,
    }
}

/// Value of every stage's map for `joint` at an image pixel, and each stage's peak position
/// in image pixels: the pixel probe.
pub fn probe(
    ins: &Inspection,
    joint: Option<usize>,
    image_xy: (f64, f64),
) -> Option<Vec<(f32, (f64, f64))>> {
    let channels = joint_channels(ins, joint);
    ins.stages
        .iter()
        .enumerate()
        .map(|(t, s)| {
            let to_image = ins.stage_to_image(t);
            let (mx, my) = to_image.inverse()?.apply(image_xy.0, image_xy.1);
            let m = &s.heatmaps;
            let map = belief(m, channels.clone());
            let w = m.width();
            let sample = Maps::new(map.clone(), 1, m.height(), w)
                .ok()?
                .sample_bilinear(0, mx as f32, my as f32)?;
            let (best, _) =
                map.iter()
                    .enumerate()
                    .fold((0usize, f32::NEG_INFINITY), |acc, (i, &v)| {
                        if v > acc.1 {
                            (i, v)
                        } else {
                            acc
                        }
                    });
            let peak = to_image.apply((best % w.max(1)) as f64, (best / w.max(1)) as f64);
            Some((sample, peak))
        })
        .collect()
}

/// Colour of a PAF limb: the skeleton's colour for the same joint pair, white otherwise.
fn limb_color(joints: &JointSet, a: usize, b: usize) -> [u8; 3] {
    joints
        .limbs
        .iter()
        .zip(joints.limb_colors)
        .find(|((x, y), _)| (*x, *y) == (a, b) || (*x, *y) == (b, a))
        .map_or([255, 255, 255], |(_, c)| *c)
}

/// Part-affinity-field glyphs of `stage` (0-based) in image pixels: at every map cell, a
/// segment along the field of `limb` (`None` = the limb with the strongest field there),
/// its length proportional to the field's magnitude (a unit vector spans 0.9 cells).
/// Empty for models without PAFs.
pub fn paf_segments(ins: &Inspection, stage: usize, limb: Option<usize>) -> Vec<Segment> {
    let Some(pafs) = ins.stages.get(stage).and_then(|s| s.pafs.as_ref()) else {
        return Vec::new();
    };
    let paf_limbs = ins.decoding.paf_limbs();
    let (w, h) = (pafs.width(), pafs.height());
    let limbs: Vec<usize> = match limb {
        Some(l) if l < paf_limbs.len() => vec![l],
        _ => (0..paf_limbs.len()).collect(),
    };
    let t = &ins.stage_to_image(stage);
    // Image pixels per map cell along x.
    let cell = (t.apply(1.0, 0.0).0 - t.apply(0.0, 0.0).0).abs() as f32;
    let mut out = Vec::new();
    for y in 0..h {
        for x in 0..w {
            let mut best: Option<(f32, f32, f32, usize)> = None;
            for &l in &limbs {
                let Some(pl) = paf_limbs.get(l) else {
                    continue;
                };
                let (Some(vx), Some(vy)) = (pafs.get(pl.paf.0, y, x), pafs.get(pl.paf.1, y, x))
                else {
                    continue;
                };
                let m = vx.hypot(vy);
                if m.is_finite() && best.is_none_or(|b| m > b.2) {
                    best = Some((vx, vy, m, l));
                }
            }
            let Some((vx, vy, m, l)) = best else { continue };
            if m < 0.1 {
                continue;
            }
            let (cx, cy) = t.apply(x as f64, y as f64);
            let len = 0.9 * cell * m.min(1.0);
            let (ux, uy) = (vx / m, vy / m);
            let (cx, cy) = (cx as f32, cy as f32);
            let joints = paf_limbs.get(l).map_or((0, 0), |p| p.joints);
            out.push(Segment {
                a: [cx - ux * len / 2.0, cy - uy * len / 2.0],
                b: [cx + ux * len / 2.0, cy + uy * len / 2.0],
                color: limb_color(ins.joints, joints.0, joints.1),
                alpha: m.clamp(0.35, 1.0),
            });
        }
    }
    out
}

/// One joint's maximum at every stage: where the argmax moves and how its value grows.
#[derive(Clone, Debug, PartialEq)]
pub struct Trajectory {
    pub joint: usize,
    /// Per stage: `(x, y)` in image pixels (quarter-cell refined) and the map value there.
    pub points: Vec<((f64, f64), f32)>,
}

/// The peak trajectory of `joint` (`None` = every joint) across all stages.
pub fn trajectories(ins: &Inspection, joint: Option<usize>) -> Vec<Trajectory> {
    joint_channels(ins, joint)
        .map(|j| Trajectory {
            joint: j,
            points: ins
                .stages
                .iter()
                .enumerate()
                .filter_map(|(t, s)| {
                    let m = &s.heatmaps;
                    let (x, y, v) =
                        crate::pose::single::refined_peak(m.channel(j)?, m.width(), m.height())?;
                    let p = ins.stage_to_image(t).apply(f64::from(x), f64::from(y));
                    Some((p, v))
                })
                .collect(),
        })
        .collect()
}

fn segment(a: (f64, f64), b: (f64, f64), color: [u8; 3], alpha: f32) -> Segment {
    Segment {
        a: [a.0 as f32, a.1 as f32],
        b: [b.0 as f32, b.1 as f32],
        color,
        alpha,
    }
}

/// The outline of a rectangle `(x0, y0, x1, y1)`.
fn rectangle(r: [f64; 4], color: [u8; 3], alpha: f32) -> [Segment; 4] {
    let [x0, y0, x1, y1] = r;
    [
        segment((x0, y0), (x1, y0), color, alpha),
        segment((x1, y0), (x1, y1), color, alpha),
        segment((x1, y1), (x0, y1), color, alpha),
        segment((x0, y1), (x0, y0), color, alpha),
    ]
}

/// Trajectories as glyphs: a line through the stage peaks in the joint's colour, and at
/// each stage a cross whose size grows with the peak value (relative to the trajectory's
/// largest), the last stage's cross brightest.
pub fn trajectory_segments(ins: &Inspection, trajectories: &[Trajectory]) -> Vec<Segment> {
    let size = (ins.frame.width.min(ins.frame.height) as f64 / 40.0).max(4.0);
    let mut out = Vec::new();
    for tr in trajectories {
        let color = ins.joints.joint_color(tr.joint);
        let top = tr
            .points
            .iter()
            .map(|p| p.1)
            .fold(f32::MIN_POSITIVE, f32::max);
        for w in tr.points.windows(2) {
            if let [a, b] = w {
                out.push(segment(a.0, b.0, color, 0.9));
            }
        }
        let n = tr.points.len();
        for (t, &((x, y), v)) in tr.points.iter().enumerate() {
            let r = size * f64::from((v / top).clamp(0.15, 1.0)) / 2.0;
            let alpha = if t + 1 == n { 1.0 } else { 0.6 };
            out.push(segment((x - r, y - r), (x + r, y + r), color, alpha));
            out.push(segment((x - r, y + r), (x + r, y - r), color, alpha));
        }
    }
    out
}

/// The receptive field of the hovered cell at `stage`: the field's outline and the cell's
/// own outline, in image pixels.
pub fn receptive_segments(ins: &Inspection, stage: usize, image_xy: (f64, f64)) -> Vec<Segment> {
    let Some(((cx, cy), field)) = ins.receptive_field_at(stage, image_xy) else {
        return Vec::new();
    };
    let t = ins.stage_to_image(stage);
    let a = t.apply(cx as f64 - 0.5, cy as f64 - 0.5);
    let b = t.apply(cx as f64 + 0.5, cy as f64 + 0.5);
    let mut out = rectangle(field, [255, 255, 255], 1.0).to_vec();
    out.extend(rectangle([a.0, a.1, b.0, b.1], [255, 220, 0], 1.0));
    out
}

/// The person centre given to a single-person model (a cross) and the top-down crops
/// (boxes; the focused one brighter).
pub fn person_segments(ins: &Inspection) -> Vec<Segment> {
    let mut out = Vec::new();
    for (i, c) in ins.crops.iter().enumerate() {
        let focused = ins.focus == Some(i);
        let color = if focused {
            [0, 230, 255]
        } else {
            [120, 160, 180]
        };
        out.extend(rectangle(c.bbox, color, if focused { 1.0 } else { 0.6 }));
    }
    if let Some((x, y)) = ins.center {
        let r = (ins.frame.width.min(ins.frame.height) as f64 / 30.0).max(5.0);
        out.push(segment((x - r, y), (x + r, y), [255, 60, 60], 1.0));
        out.push(segment((x, y - r), (x, y + r), [255, 60, 60], 1.0));
    }
    out
}
