//! Accuracy metrics on annotated keypoints.
//!
//! PCK@α (percentage of correct keypoints): a predicted joint is correct when its distance
//! to the annotation is at most `α · reference`, where the reference length is chosen per
//! person (e.g. the torso: right shoulder to left hip, as in the LSP protocol used by CPM).
//! Only annotated, visible joints count.

use super::skeleton::JointSet;

/// For each joint of `to`, the index of the same-named joint in `from` (`None` where `from`
/// has no such joint).
pub fn joint_mapping(from: &JointSet, to: &JointSet) -> Vec<Option<usize>> {
    to.joints.iter().map(|name| from.index_of(name)).collect()
}

/// Correct and counted joints, per joint.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PckCounts {
    pub correct: Vec<u64>,
    pub total: Vec<u64>,
}

impl PckCounts {
    pub fn new(joints: usize) -> Self {
        Self {
            correct: vec![0; joints],
            total: vec![0; joints],
        }
    }

    /// Adds one person: `pred[j]` the predicted `(x, y)` (or `None`), `gt[j]` the annotation
    /// `(x, y, visible)`, `reference` the normalising length. People whose reference is not
    /// a positive finite number are skipped (returns false).
    pub fn add(
        &mut self,
        pred: &[Option<(f64, f64)>],
        gt: &[(f64, f64, bool)],
        reference: f64,
        alpha: f64,
    ) -> bool {
        if !(reference.is_finite() && reference > 0.0) {
            return false;
        }
        let limit = alpha * reference;
        for (j, g) in gt.iter().enumerate() {
            if !g.2 {
                continue;
            }
            let (Some(total), Some(correct)) = (self.total.get_mut(j), self.correct.get_mut(j))
            else {
                continue;
            };
            *total += 1;
            if let Some(Some((x, y))) = pred.get(j) {
                if (x - g.0).hypot(y - g.1) <= limit {
                    *correct += 1;
                }
            }
        }
        true
    }

    /// PCK of one joint (`None` when it was never counted).
    pub fn joint(&self, j: usize) -> Option<f64> {
        let t = *self.total.get(j)?;
        (t > 0).then(|| *self.correct.get(j).unwrap_or(&0) as f64 / t as f64)
    }

    /// PCK over all counted joints.
    pub fn overall(&self) -> Option<f64> {
        let t: u64 = self.total.iter().sum();
        (t > 0).then(|| self.correct.iter().sum::<u64>() as f64 / t as f64)
    }
}

/// Distance between two annotated joints, when both are annotated (visibility is not
/// required: the LSP torso is defined on annotated positions).
pub fn distance(a: (f64, f64, bool), b: (f64, f64, bool)) -> f64 {
    (a.0 - b.0).hypot(a.1 - b.1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pose::skeleton::{HEAD_NECK_14, LSP14, OPENPOSE_COCO18};

    #[test]
    fn mapping_by_name() {
        let m = joint_mapping(&HEAD_NECK_14, &LSP14);
        // LSP's right ankle is channel 10 of the head-neck order; its head top channel 0.
        assert_eq!(m[0], Some(10));
        assert_eq!(m[13], Some(0));
        assert!(m.iter().all(Option::is_some));
        // OpenPose has no head top.
        let m = joint_mapping(&OPENPOSE_COCO18, &LSP14);
        assert_eq!(m[13], None);
        assert_eq!(m[12], Some(1));
    }

    #[test]
    fn pck_counts_visible_joints_within_the_threshold() {
        let mut c = PckCounts::new(3);
        let gt = [(0.0, 0.0, true), (10.0, 0.0, true), (5.0, 5.0, false)];
        let pred = [Some((1.0, 1.0)), Some((13.0, 0.0)), None];
        // Reference 10, alpha 0.2: limit 2. Joint 0 at distance 1.41 is correct, joint 1 at
        // 3 is not, joint 2 is invisible and not counted.
        assert!(c.add(&pred, &gt, 10.0, 0.2));
        assert_eq!(c.correct, vec![1, 0, 0]);
        assert_eq!(c.total, vec![1, 1, 0]);
        assert_eq!(c.overall(), Some(0.5));
        assert_eq!(c.joint(2), None);
        // A missing prediction counts as wrong; a degenerate reference skips the person.
        assert!(c.add(&[None, None, None], &gt, 10.0, 0.2));
        assert_eq!(c.overall(), Some(0.25));
        assert!(!c.add(&pred, &gt, 0.0, 0.2));
        assert_eq!(c.total, vec![2, 2, 0]);
    }
}
