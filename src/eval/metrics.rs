//! PCK-family metrics: PCK@α with torso or bounding-box normalisation (MMPose's
//! `keypoint_pck_accuracy`), PCKh@α (the MPII toolkit), and the assignment of predicted
//! people to annotated ones for multi-person predictions.
//!
//! Conventions: coordinates are pixel-index `(x, y)`; an annotated joint is `Some((x, y))`
//! (COCO/AIC visibility `v > 0`, LSP/MPII visible flag 1), a joint without annotation
//! `None`. A prediction missing a joint counts as wrong for that joint.
//!
//! **PCK@α** (as MMPose computes it, `keypoint_pck_accuracy`): a joint is correct when
//! `‖pred − gt‖ / ref < α` (strict). Per joint, PCK = correct / annotated. The overall
//! number is the *mean of the per-joint PCKs* over joints annotated at least once (MMPose's
//! `avg_acc`); the pooled ratio (all correct / all annotated) is reported beside it. People
//! whose reference length is not a positive finite number are skipped (MMPose masks them).
//! The reference `ref` is one of
//! - **torso**: `‖right_shoulder − left_hip‖` (the LSP/CPM protocol), or
//!   `‖left_shoulder − right_hip‖` when one of those is not annotated; both ends annotated;
//! - **bbox**: `max(w, h)` of the person's box — the annotation's `bbox` where the file has
//!   one (COCO-style json; MMPose's `PCKAccuracy(norm_item='bbox')` uses
//!   `max(x2 − x1, y2 − y1)` of it), otherwise the tight box around the annotated joints.
//!
//! **PCKh@α** (the MPII toolkit, `evaluatePCKh` / MMPose 0.x `evaluate` of MPII): a joint
//! is correct when `‖pred − gt‖ / head ≤ α` (inclusive), with `head = 0.6 · ‖head box
//! diagonal‖` (`SC_BIAS = 0.6`); mmpose-style json may carry it precomputed as `head_size`.
//! Annotations without a head box use the head segment `‖head_top − neck‖` (`upper_neck`
//! for MPII), the usual PCKh reference for LSP. The overall PCKh is pooled over all counted
//! joints except MPII's `pelvis` and `thorax` (the toolkit's total), i.e.
//! `Σ PCKh_j · n_j / Σ n_j` over the other joints.

use crate::pose::skeleton::JointSet;

/// MPII's head-size factor: head size = 0.6 × the head box diagonal (`SC_BIAS`).
pub const MPII_HEAD_SCALE: f64 = 0.6;

/// How a distance is compared with `α · ref`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Comparison {
    /// `d / ref < α` (MMPose `keypoint_pck_accuracy`).
    Strict,
    /// `d / ref ≤ α` (the MPII toolkit's PCKh).
    Inclusive,
}

impl Comparison {
    /// Whether a distance `d` normalised by `reference` passes `alpha`.
    pub fn passes(self, d: f64, reference: f64, alpha: f64) -> bool {
        let n = d / reference;
        match self {
            Comparison::Strict => n < alpha,
            Comparison::Inclusive => n <= alpha,
        }
    }
}

/// Correct and counted joints, per joint of the dataset's joint set.
#[derive(Clone, Debug, PartialEq)]
pub struct PckAccumulator {
    pub alpha: f64,
    pub comparison: Comparison,
    pub correct: Vec<u64>,
    pub total: Vec<u64>,
}

impl PckAccumulator {
    pub fn new(joints: usize, alpha: f64, comparison: Comparison) -> Self {
        Self {
            alpha,
            comparison,
            correct: vec![0; joints],
            total: vec![0; joints],
        }
    }

    /// Whether one predicted joint is correct.
    pub fn is_correct(&self, pred: Option<(f64, f64)>, gt: (f64, f64), reference: f64) -> bool {
        pred.is_some_and(|p| {
            self.comparison
                .passes((p.0 - gt.0).hypot(p.1 - gt.1), reference, self.alpha)
        })
    }

    /// Adds one person: `pred[j]` the predicted position or `None`, `gt[j]` the annotation
    /// or `None`, `counted[j]` whether joint `j` is evaluated at all (false for joints the
    /// model cannot predict), `reference` the normalising length. A person whose reference
    /// is not a positive finite number is skipped (returns false). Slots beyond any of the
    /// slices count as missing.
    pub fn add(
        &mut self,
        pred: &[Option<(f64, f64)>],
        gt: &[Option<(f64, f64)>],
        counted: &[bool],
        reference: f64,
    ) -> bool {
        if !(reference.is_finite() && reference > 0.0) {
            return false;
        }
        for j in 0..self.total.len() {
            let Some(Some(g)) = gt.get(j) else { continue };
            if !counted.get(j).copied().unwrap_or(false) {
                continue;
            }
            let ok = self.is_correct(pred.get(j).copied().flatten(), *g, reference);
            if let (Some(t), Some(c)) = (self.total.get_mut(j), self.correct.get_mut(j)) {
                *t += 1;
                *c += u64::from(ok);
            }
        }
        true
    }

    /// PCK of every joint (`None` for joints never counted).
    pub fn per_joint(&self) -> Vec<Option<f64>> {
        self.correct
            .iter()
            .zip(&self.total)
            .map(|(&c, &t)| (t > 0).then(|| c as f64 / t as f64))
            .collect()
    }

    /// The mean of the per-joint PCKs over joints counted at least once (MMPose's
    /// `avg_acc`); `None` when nothing was counted.
    pub fn mean_of_joints(&self) -> Option<f64> {
        let v: Vec<f64> = self.per_joint().into_iter().flatten().collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    }

    /// All correct joints over all counted joints, leaving out the joints in `exclude`.
    pub fn pooled(&self, exclude: &[usize]) -> Option<f64> {
        let (mut c, mut t) = (0u64, 0u64);
        for j in (0..self.total.len()).filter(|j| !exclude.contains(j)) {
            c += self.correct.get(j).copied().unwrap_or(0);
            t += self.total.get(j).copied().unwrap_or(0);
        }
        (t > 0).then(|| c as f64 / t as f64)
    }

    /// How many joints were counted.
    pub fn count(&self) -> u64 {
        self.total.iter().sum()
    }
}

fn dist(a: Option<(f64, f64)>, b: Option<(f64, f64)>) -> Option<f64> {
    let (a, b) = (a?, b?);
    Some((a.0 - b.0).hypot(a.1 - b.1))
}

fn joint(gt: &[Option<(f64, f64)>], set: &JointSet, name: &str) -> Option<(f64, f64)> {
    set.index_of(name)
        .and_then(|j| gt.get(j).copied().flatten())
}

fn positive(v: f64) -> Option<f64> {
    (v.is_finite() && v > 0.0).then_some(v)
}

/// The torso length: `‖right_shoulder − left_hip‖`, or `‖left_shoulder − right_hip‖` when
/// the first pair is not annotated; `None` when neither pair is or the length is 0.
pub fn torso_size(gt: &[Option<(f64, f64)>], set: &JointSet) -> Option<f64> {
    let d = |a: &str, b: &str| dist(joint(gt, set, a), joint(gt, set, b)).and_then(positive);
    d("right_shoulder", "left_hip").or_else(|| d("left_shoulder", "right_hip"))
}

/// `max(w, h)` of the tight box around the annotated joints; `None` when it is 0 (fewer
/// than two distinct joints).
pub fn joints_box_size(gt: &[Option<(f64, f64)>]) -> Option<f64> {
    let mut it = gt.iter().flatten();
    let first = it.next()?;
    let (mut x0, mut y0, mut x1, mut y1) = (first.0, first.1, first.0, first.1);
    for &(x, y) in it {
        x0 = x0.min(x);
        y0 = y0.min(y);
        x1 = x1.max(x);
        y1 = y1.max(y);
    }
    positive((x1 - x0).max(y1 - y0))
}

/// `max(w, h)` of an `[x, y, w, h]` box.
pub fn box_size(xywh: [f64; 4]) -> Option<f64> {
    positive(xywh[2].max(xywh[3]))
}

/// The head segment `‖head_top − neck‖` (`upper_neck` where the set has no `neck`).
pub fn head_segment(gt: &[Option<(f64, f64)>], set: &JointSet) -> Option<f64> {
    let neck = joint(gt, set, "neck").or_else(|| joint(gt, set, "upper_neck"));
    dist(joint(gt, set, "head_top"), neck).and_then(positive)
}

/// MPII's head size from a head box `[x1, y1, x2, y2]`: `0.6 · ‖(x2 − x1, y2 − y1)‖`.
pub fn mpii_head_size(headbox: [f64; 4]) -> Option<f64> {
    positive(MPII_HEAD_SCALE * (headbox[2] - headbox[0]).hypot(headbox[3] - headbox[1]))
}

/// Assigns predicted people to annotated people for PCK on multi-person predictions.
///
/// For every (annotated, predicted) pair: the number of the annotated person's counted
/// joints the prediction gets right (with that person's `references[g]`, as
/// [`PckAccumulator::is_correct`] judges), and the mean normalised distance over the joints
/// both have. Pairs are taken greedily, most correct joints first, then smallest mean
/// distance, then lowest indices; each person on either side is used once, and pairs with
/// no correct joint are never taken (the annotated person then counts every joint as
/// missed, which is what any such pairing would give). Returns, per annotated person, the
/// index of its prediction.
pub fn assign_predictions(
    acc: &PckAccumulator,
    gts: &[Vec<Option<(f64, f64)>>],
    references: &[Option<f64>],
    counted: &[bool],
    preds: &[Vec<Option<(f64, f64)>>],
) -> Vec<Option<usize>> {
    struct Pair {
        g: usize,
        p: usize,
        correct: usize,
        mean: f64,
    }
    let mut pairs = Vec::new();
    for (g, gt) in gts.iter().enumerate() {
        let Some(reference) = references.get(g).copied().flatten() else {
            continue;
        };
        for (p, pred) in preds.iter().enumerate() {
            let (mut correct, mut sum, mut n) = (0usize, 0.0, 0usize);
            for (j, gj) in gt.iter().enumerate() {
                let (Some(gj), true) = (gj, counted.get(j).copied().unwrap_or(false)) else {
                    continue;
                };
                let pj = pred.get(j).copied().flatten();
                if acc.is_correct(pj, *gj, reference) {
                    correct += 1;
                }
                if let Some(d) = dist(pj, Some(*gj)) {
                    sum += d / reference;
                    n += 1;
                }
            }
            if correct > 0 {
                pairs.push(Pair {
                    g,
                    p,
                    correct,
                    mean: sum / n.max(1) as f64,
                });
            }
        }
    }
    pairs.sort_by(|a, b| {
        b.correct
            .cmp(&a.correct)
            .then(a.mean.total_cmp(&b.mean))
            .then(a.g.cmp(&b.g))
            .then(a.p.cmp(&b.p))
    });
    let mut out = vec![None; gts.len()];
    let mut used = vec![false; preds.len()];
    for pair in pairs {
        if out.get(pair.g).is_some_and(Option::is_none)
            && !used.get(pair.p).copied().unwrap_or(true)
        {
            out[pair.g] = Some(pair.p);
            used[pair.p] = true;
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::pose::skeleton::{LSP14, MPII16};

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn pck_by_hand() {
        // Three joints, reference 10, alpha 0.2: limit 2.
        let mut acc = PckAccumulator::new(3, 0.2, Comparison::Strict);
        let gt = [Some((0.0, 0.0)), Some((10.0, 0.0)), None];
        let all = [true; 3];
        // Joint 0 at distance 1.41 correct; joint 1 at exactly 2.0 wrong under the strict
        // comparison; joint 2 not annotated.
        assert!(acc.add(
            &[Some((1.0, 1.0)), Some((12.0, 0.0)), Some((0.0, 0.0))],
            &gt,
            &all,
            10.0
        ));
        assert_eq!(acc.correct, vec![1, 0, 0]);
        assert_eq!(acc.total, vec![1, 1, 0]);
        // A second person: joint 0 missing (wrong), joint 1 right.
        assert!(acc.add(&[None, Some((10.5, 0.5))], &gt, &all, 10.0));
        assert_eq!(acc.per_joint(), vec![Some(0.5), Some(0.5), None]);
        // Third person: joint 0 right, joint 1 not counted (the model lacks it).
        assert!(acc.add(&[Some((0.0, 0.0))], &gt, &[true, false, true], 10.0));
        // Per joint 2/3 and 1/2: mean of joints (2/3 + 1/2) / 2, pooled 3/5.
        assert!(close(
            acc.mean_of_joints().unwrap(),
            (2.0 / 3.0 + 0.5) / 2.0
        ));
        assert!(close(acc.pooled(&[]).unwrap(), 0.6));
        assert!(close(acc.pooled(&[0]).unwrap(), 0.5));
        assert_eq!(acc.count(), 5);
        // Degenerate references skip the person.
        assert!(!acc.add(&[], &gt, &all, 0.0));
        assert!(!acc.add(&[], &gt, &all, f64::NAN));
        assert_eq!(acc.count(), 5);

        // Inclusive comparison: exactly at the limit is correct.
        let mut acc = PckAccumulator::new(1, 0.5, Comparison::Inclusive);
        acc.add(&[Some((3.0, 4.0))], &[Some((0.0, 0.0))], &[true], 10.0);
        assert_eq!(acc.correct, vec![1]);
    }

    #[test]
    fn references_by_hand() {
        let mut gt = vec![None; 14];
        let set = &LSP14;
        let at = |n: &str| set.index_of(n).unwrap();
        gt[at("right_shoulder")] = Some((0.0, 0.0));
        gt[at("left_hip")] = Some((30.0, 40.0));
        assert_eq!(torso_size(&gt, set), Some(50.0));
        // Falls back to the other diagonal.
        gt[at("left_hip")] = None;
        assert_eq!(torso_size(&gt, set), None);
        gt[at("left_shoulder")] = Some((10.0, 0.0));
        gt[at("right_hip")] = Some((10.0, 24.0));
        assert_eq!(torso_size(&gt, set), Some(24.0));
        // Box of the annotated joints: x 0..10, y 0..24.
        assert_eq!(joints_box_size(&gt), Some(24.0));
        assert_eq!(joints_box_size(&[Some((1.0, 1.0))]), None);
        assert_eq!(box_size([5.0, 5.0, 30.0, 12.0]), Some(30.0));
        // Head: segment, and MPII's 0.6 × box diagonal (a 30 × 40 box: 0.6 × 50 = 30).
        gt[at("head_top")] = Some((0.0, -20.0));
        gt[at("neck")] = Some((0.0, -5.0));
        assert_eq!(head_segment(&gt, set), Some(15.0));
        assert!(close(
            mpii_head_size([10.0, 10.0, 40.0, 50.0]).unwrap(),
            30.0
        ));
        let mut mpii = vec![None; 16];
        mpii[MPII16.index_of("head_top").unwrap()] = Some((0.0, 0.0));
        mpii[MPII16.index_of("upper_neck").unwrap()] = Some((0.0, 8.0));
        assert_eq!(head_segment(&mpii, &MPII16), Some(8.0));
    }

    #[test]
    fn pckh_by_hand() {
        // Two people, head sizes 30 and 12, alpha 0.5: limits 15 and 6.
        let mut acc = PckAccumulator::new(2, 0.5, Comparison::Inclusive);
        let all = [true, true];
        acc.add(
            &[Some((15.0, 0.0)), Some((0.0, 16.0))],
            &[Some((0.0, 0.0)), Some((0.0, 0.0))],
            &all,
            30.0,
        );
        acc.add(
            &[Some((3.0, 3.0)), Some((100.0, 0.0))],
            &[Some((0.0, 0.0)), Some((0.0, 0.0))],
            &all,
            12.0,
        );
        assert_eq!(acc.per_joint(), vec![Some(1.0), Some(0.0)]);
        assert_eq!(acc.pooled(&[]), Some(0.5));
    }

    #[test]
    fn assignment_prefers_most_correct_then_nearest() {
        let acc = PckAccumulator::new(3, 0.2, Comparison::Strict);
        let gts = vec![
            vec![Some((0.0, 0.0)), Some((10.0, 0.0)), Some((20.0, 0.0))],
            vec![Some((100.0, 0.0)), Some((110.0, 0.0)), None],
        ];
        let refs = [Some(10.0), Some(10.0)];
        let preds = vec![
            // Near person 1 (two joints right).
            vec![Some((100.5, 0.0)), Some((110.5, 0.0)), None],
            // Near person 0 (all three right).
            vec![Some((0.5, 0.0)), Some((10.5, 0.0)), Some((20.5, 0.0))],
            // A slightly worse copy of person 0.
            vec![Some((1.0, 0.0)), Some((11.0, 0.0)), Some((21.0, 0.0))],
            // Nowhere near anyone.
            vec![Some((500.0, 0.0)), None, None],
        ];
        let all = [true; 3];
        let a = assign_predictions(&acc, &gts, &refs, &all, &preds);
        assert_eq!(a, vec![Some(1), Some(0)]);
        // Without the good copy, the worse one takes person 0.
        let a = assign_predictions(&acc, &gts, &refs, &all, &preds[2..]);
        assert_eq!(a, vec![Some(0), None]);
        // A person without a reference is never assigned.
        let a = assign_predictions(&acc, &gts, &[None, Some(10.0)], &all, &preds);
        assert_eq!(a, vec![None, Some(0)]);
    }
}
