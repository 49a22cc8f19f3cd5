//! Detected people: keypoints with confidences, in one coordinate frame.

use serde::{Deserialize, Serialize};

use super::affine::Affine2;

/// One detected joint: position (pixel-index coordinates, `(x, y)`) and confidence.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Keypoint {
    pub x: f32,
    pub y: f32,
    pub score: f32,
}

/// One person: a slot per joint of the model's joint set (in its order), `None` where the
/// joint was not found, and an overall score.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Person {
    pub score: f32,
    pub keypoints: Vec<Option<Keypoint>>,
}

impl Person {
    /// The same person with every keypoint moved through `t` (e.g. map → image pixels).
    pub fn transformed(&self, t: &Affine2) -> Person {
        Person {
            score: self.score,
            keypoints: self
                .keypoints
                .iter()
                .map(|k| {
                    k.map(|k| {
                        let (x, y) = t.apply(f64::from(k.x), f64::from(k.y));
                        Keypoint {
                            x: x as f32,
                            y: y as f32,
                            score: k.score,
                        }
                    })
                })
                .collect(),
        }
    }

    /// Number of joints found.
    pub fn joint_count(&self) -> usize {
        self.keypoints.iter().flatten().count()
    }
}
