//! Stability over video: each frame's joint peaks per stage, fed to
//! [`crate::pose::jitter::JitterMeter`] (`bench --input` reports the jitter per stage).

use crate::inspection::Inspection;
use crate::pose::edit;
use crate::pose::jitter::StagePositions;

/// A peak below this value is "not found" (the joint is not in view).
pub const MIN_PEAK: f32 = 0.1;

/// Every stage's joint peaks of `ins` (the argmax of each joint's map, image pixels; `None`
/// below [`MIN_PEAK`]). For multi-person models this is the strongest person's joint.
pub fn stage_positions(ins: &Inspection) -> StagePositions {
    let joints = ins.joints.len();
    ins.stages
        .iter()
        .enumerate()
        .map(|(t, s)| {
            let to_image = ins.stage_to_image(t);
            (0..joints)
                .map(|j| {
                    let (x, y) = edit::argmax(&s.heatmaps, j)?;
                    let v = s.heatmaps.get(j, y, x)?;
                    (v >= MIN_PEAK).then(|| to_image.apply(x as f64, y as f64))
                })
                .collect()
        })
        .collect()
}
