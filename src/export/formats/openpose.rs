//! OpenPose's per-frame JSON (`--write_json`, format version 1.3): `<stem>_keypoints.json`.
//!
//! ```json
//! {"version":1.3,"people":[{"person_id":[-1],"pose_keypoints_2d":[x,y,c, ...],
//!   "face_keypoints_2d":[],"hand_left_keypoints_2d":[],"hand_right_keypoints_2d":[],
//!   "pose_keypoints_3d":[],"face_keypoints_3d":[],"hand_left_keypoints_3d":[],
//!   "hand_right_keypoints_3d":[]}]}
//! ```
//!
//! `pose_keypoints_2d` holds one `x, y, score` triple per joint of the model's joint set, in
//! its order (for the OpenPose models that is OpenPose's own COCO-18 order: nose, neck,
//! r_shoulder, r_elbow, r_wrist, l_shoulder, l_elbow, l_wrist, r_hip, r_knee, r_ankle, l_hip,
//! l_knee, l_ankle, r_eye, l_eye, r_ear, l_ear); joints not found are `0, 0, 0`, as OpenPose
//! writes them. Coordinates are image pixels (pixel-index: integers are pixel centres, as in
//! OpenPose). `person_id` is always `[-1]` (no tracking), the face, hand and 3-D lists are
//! empty.

use serde::{Deserialize, Serialize};

use super::triples;
use crate::pose::Person;

/// OpenPose's JSON format version written.
pub const VERSION: f64 = 1.3;

/// One frame's file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpenPoseFrame {
    pub version: f64,
    pub people: Vec<OpenPosePerson>,
}

/// One person, with every list OpenPose writes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpenPosePerson {
    pub person_id: Vec<i64>,
    pub pose_keypoints_2d: Vec<f64>,
    pub face_keypoints_2d: Vec<f64>,
    pub hand_left_keypoints_2d: Vec<f64>,
    pub hand_right_keypoints_2d: Vec<f64>,
    pub pose_keypoints_3d: Vec<f64>,
    pub face_keypoints_3d: Vec<f64>,
    pub hand_left_keypoints_3d: Vec<f64>,
    pub hand_right_keypoints_3d: Vec<f64>,
}

/// `<stem>_keypoints.json`, OpenPose's file name.
pub fn file_name(stem: &str) -> String {
    format!("{stem}_keypoints.json")
}

/// The frame's people in OpenPose's structure.
pub fn frame(people: &[Person]) -> OpenPoseFrame {
    OpenPoseFrame {
        version: VERSION,
        people: people.iter().map(person).collect(),
    }
}

fn person(p: &Person) -> OpenPosePerson {
    OpenPosePerson {
        person_id: vec![-1],
        pose_keypoints_2d: triples(&p.keypoints),
        face_keypoints_2d: Vec::new(),
        hand_left_keypoints_2d: Vec::new(),
        hand_right_keypoints_2d: Vec::new(),
        pose_keypoints_3d: Vec::new(),
        face_keypoints_3d: Vec::new(),
        hand_left_keypoints_3d: Vec::new(),
        hand_right_keypoints_3d: Vec::new(),
    }
}

/// The file's bytes: compact JSON on one line, as OpenPose writes it.
pub fn to_bytes(people: &[Person]) -> Vec<u8> {
    // Serialising numbers into memory cannot fail.
    let mut out = serde_json::to_vec(&frame(people)).unwrap_or_default();
    out.push(b'\n');
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::test_data;
    use super::*;

    #[test]
    fn exact_text_of_a_frame() {
        let rec = test_data::frame();
        let text = String::from_utf8(to_bytes(&rec.people[1..])).unwrap();
        let mut kps = vec!["10.25,20.0,0.9", "11.0,30.0,0.8"];
        kps.extend(["0.0,0.0,0.0"; 13]);
        kps.push("12.0,18.0,0.7");
        kps.extend(["0.0,0.0,0.0"; 2]);
        assert_eq!(
            text,
            format!(
                "{{\"version\":1.3,\"people\":[{{\"person_id\":[-1],\"pose_keypoints_2d\":[{}],\
                 \"face_keypoints_2d\":[],\"hand_left_keypoints_2d\":[],\
                 \"hand_right_keypoints_2d\":[],\"pose_keypoints_3d\":[],\
                 \"face_keypoints_3d\":[],\"hand_left_keypoints_3d\":[],\
                 \"hand_right_keypoints_3d\":[]}}]}}\n",
                kps.join(",")
            )
        );
        assert_eq!(file_name("clip_000007"), "clip_000007_keypoints.json");
    }

    #[test]
    fn no_people_and_round_trip() {
        assert_eq!(to_bytes(&[]), b"{\"version\":1.3,\"people\":[]}\n");
        let rec = test_data::frame();
        let back: OpenPoseFrame = serde_json::from_slice(&to_bytes(&rec.people)).unwrap();
        assert_eq!(back, frame(&rec.people));
        assert_eq!(back.people[0].pose_keypoints_2d.len(), 3 * 18);
    }
}
