//! Mapping people between joint sets: what a model predicts (its [`JointSet`]) expressed in a
//! dataset's joint set, for evaluation.
//!
//! Joint sets (see [`skeleton`](super::skeleton)): COCO-17 (`coco17`), OpenPose COCO-18
//! (`openpose-coco18`), AI Challenger-14 in its native annotation order (`aic14`), the PEFM
//! models' head-neck order of the same 14 joints (`head-neck-14`), LSP-14 (`lsp14`) and
//! MPII-16 (`mpii16`). Right/left are always the person's own.
//!
//! A target joint is taken, in this order of preference:
//!
//! 1. **Same**: the source joint of the same name. Joint names are shared across sets, so
//!    e.g. every shoulder, elbow, wrist, hip, knee and ankle maps one to one between all six
//!    sets, and `head_top` between LSP, AIC, head-neck and MPII.
//! 2. **Stand-in** (a joint with a slightly different definition, used as is):
//!    - `neck` ← MPII `upper_neck` (MPII's neck point lies where LSP/AIC annotate theirs;
//!      CPM's MPII model is trained this way);
//!    - `upper_neck` ← `neck` of LSP, AIC, head-neck or OpenPose.
//! 3. **Derived** (midpoint of two source joints, present only when both are):
//!    - `neck` ← mid(`left_shoulder`, `right_shoulder`) for COCO-17 sources (COCO has no
//!      neck; OpenPose's neck is defined the same way for its COCO training data);
//!    - `thorax` ← mid(`left_shoulder`, `right_shoulder`) (MPII's thorax sits between the
//!      shoulders);
//!    - `pelvis` ← mid(`left_hip`, `right_hip`).
//! 4. **Absent** otherwise, notably: `head_top` from COCO-17 and OpenPose-18 (COCO has no
//!    head top), `upper_neck` from COCO-17, and `nose`, eyes and ears from LSP, AIC,
//!    head-neck and MPII (they annotate no face points).
//!
//! | target ← source | COCO-17 | OpenPose-18 | AIC / head-neck / LSP | MPII-16 |
//! |---|---|---|---|---|
//! | nose, eyes, ears | same | same | absent | absent |
//! | neck | mid-shoulder | same | same | `upper_neck` |
//! | head_top | absent | absent | same | same |
//! | upper_neck | absent | `neck` | `neck` | same |
//! | thorax | mid-shoulder | mid-shoulder | mid-shoulder | same |
//! | pelvis | mid-hip | mid-hip | mid-hip | same |
//! | limbs (shoulder … ankle) | same | same | same | same |
//!
//! Evaluation counts only target joints that are not [`JointSource::Absent`]: a model is
//! not charged for joints it cannot predict (the report lists them).

use serde::Serialize;

use super::person::{Keypoint, Person};
use super::skeleton::JointSet;

/// Where one joint of the target set comes from in the source set (indices into the
/// source's joint list).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JointSource {
    /// The source joint of the same name.
    Same(usize),
    /// A source joint with a slightly different definition, used as is.
    StandIn(usize),
    /// The midpoint of two source joints; present only when both are.
    Midpoint(usize, usize),
    /// The source set has nothing for this joint.
    Absent,
}

/// Stand-ins: (target joint, source joint).
const STAND_INS: &[(&str, &str)] = &[("neck", "upper_neck"), ("upper_neck", "neck")];

/// Derived joints: (target joint, the two source joints whose midpoint it is).
const MIDPOINTS: &[(&str, &str, &str)] = &[
    ("neck", "left_shoulder", "right_shoulder"),
    ("thorax", "left_shoulder", "right_shoulder"),
    ("pelvis", "left_hip", "right_hip"),
];

/// How every joint of `to` is obtained from a person in `from`'s joint order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JointMap {
    pub from: &'static JointSet,
    pub to: &'static JointSet,
    /// One entry per joint of `to`, in its order.
    pub sources: Vec<JointSource>,
}

/// One line of a mapping's description, for reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct JointMapEntry {
    /// The target joint.
    pub joint: String,
    /// `same`, `stand-in`, `derived` or `absent`.
    pub kind: String,
    /// The source expression, e.g. `right_ankle`, `mid(left_shoulder, right_shoulder)`;
    /// `None` when absent.
    pub from: Option<String>,
}

impl JointMap {
    /// The mapping from `from` to `to` by the rules in the module documentation.
    pub fn new(from: &'static JointSet, to: &'static JointSet) -> JointMap {
        let sources = to.joints.iter().map(|name| source_of(from, name)).collect();
        JointMap { from, to, sources }
    }

    /// Whether target joint `j` can be predicted at all.
    pub fn is_present(&self, j: usize) -> bool {
        !matches!(self.sources.get(j), None | Some(JointSource::Absent))
    }

    /// The keypoints of a person in `from`'s order, in `to`'s order: same and stand-in joints
    /// copied, derived joints at the midpoint with the lower of the two scores, absent joints
    /// (and derived ones missing an end) `None`. Missing source slots count as `None`.
    pub fn map_keypoints(&self, keypoints: &[Option<Keypoint>]) -> Vec<Option<Keypoint>> {
        let at = |i: usize| keypoints.get(i).copied().flatten();
        self.sources
            .iter()
            .map(|s| match *s {
                JointSource::Same(i) | JointSource::StandIn(i) => at(i),
                JointSource::Midpoint(a, b) => {
                    let (a, b) = (at(a)?, at(b)?);
                    Some(Keypoint {
                        x: (a.x + b.x) / 2.0,
                        y: (a.y + b.y) / 2.0,
                        score: a.score.min(b.score),
                    })
                }
                JointSource::Absent => None,
            })
            .collect()
    }

    /// The person with its keypoints mapped (see [`JointMap::map_keypoints`]); the score is
    /// kept.
    pub fn map_person(&self, person: &Person) -> Person {
        Person {
            score: person.score,
            keypoints: self.map_keypoints(&person.keypoints),
        }
    }

    /// A readable description of every target joint's source.
    pub fn describe(&self) -> Vec<JointMapEntry> {
        let name = |i: usize| self.from.joints.get(i).copied().unwrap_or("?").to_string();
        self.to
            .joints
            .iter()
            .zip(&self.sources)
            .map(|(joint, s)| {
                let (kind, from) = match *s {
                    JointSource::Same(i) => ("same", Some(name(i))),
                    JointSource::StandIn(i) => ("stand-in", Some(name(i))),
                    JointSource::Midpoint(a, b) => {
                        ("derived", Some(format!("mid({}, {})", name(a), name(b))))
                    }
                    JointSource::Absent => ("absent", None),
                };
                JointMapEntry {
                    joint: (*joint).to_string(),
                    kind: kind.to_string(),
                    from,
                }
            })
            .collect()
    }
}

fn source_of(from: &JointSet, name: &str) -> JointSource {
    if let Some(i) = from.index_of(name) {
        return JointSource::Same(i);
    }
    for &(target, source) in STAND_INS {
        if target == name {
            if let Some(i) = from.index_of(source) {
                return JointSource::StandIn(i);
            }
        }
    }
    for &(target, a, b) in MIDPOINTS {
        if target == name {
            if let (Some(a), Some(b)) = (from.index_of(a), from.index_of(b)) {
                return JointSource::Midpoint(a, b);
            }
        }
    }
    JointSource::Absent
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::pose::skeleton::{AIC14, ALL, COCO17, HEAD_NECK_14, LSP14, MPII16, OPENPOSE_COCO18};

    fn kp(x: f32, y: f32, score: f32) -> Option<Keypoint> {
        Some(Keypoint { x, y, score })
    }

    fn src(map: &JointMap, joint: &str) -> JointSource {
        map.sources[map.to.index_of(joint).unwrap()]
    }

    #[test]
    fn identical_sets_map_one_to_one() {
        for set in ALL {
            let m = JointMap::new(set, set);
            for (j, s) in m.sources.iter().enumerate() {
                assert_eq!(*s, JointSource::Same(j), "{}", set.id);
            }
        }
    }

    #[test]
    fn coco_to_openpose_and_lsp_derive_the_neck() {
        let m = JointMap::new(&COCO17, &OPENPOSE_COCO18);
        assert_eq!(src(&m, "neck"), JointSource::Midpoint(5, 6));
        // Every other OpenPose joint is a COCO joint.
        assert_eq!(m.sources.iter().filter(|s| m_absent(s)).count(), 0);
        let m = JointMap::new(&COCO17, &LSP14);
        assert_eq!(src(&m, "neck"), JointSource::Midpoint(5, 6));
        assert_eq!(src(&m, "head_top"), JointSource::Absent);
        assert_eq!(src(&m, "right_ankle"), JointSource::Same(16));
        let present = (0..14).filter(|&j| m.is_present(j)).count();
        assert_eq!(present, 13);
    }

    fn m_absent(s: &JointSource) -> bool {
        *s == JointSource::Absent
    }

    #[test]
    fn head_neck_to_native_aic_order() {
        // The PEFM output order and AI Challenger's annotation order name the same joints.
        let m = JointMap::new(&HEAD_NECK_14, &AIC14);
        let expect = [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 0, 1];
        for (j, &i) in expect.iter().enumerate() {
            assert_eq!(m.sources[j], JointSource::Same(i), "{}", AIC14.joints[j]);
        }
    }

    #[test]
    fn mpii_stand_ins_and_midpoints() {
        let to_mpii = JointMap::new(&HEAD_NECK_14, &MPII16);
        assert_eq!(src(&to_mpii, "upper_neck"), JointSource::StandIn(1));
        assert_eq!(src(&to_mpii, "thorax"), JointSource::Midpoint(5, 2));
        assert_eq!(src(&to_mpii, "pelvis"), JointSource::Midpoint(11, 8));
        assert_eq!(src(&to_mpii, "head_top"), JointSource::Same(0));
        let from_mpii = JointMap::new(&MPII16, &LSP14);
        assert_eq!(src(&from_mpii, "neck"), JointSource::StandIn(8));
        let coco_to_mpii = JointMap::new(&COCO17, &MPII16);
        assert_eq!(src(&coco_to_mpii, "upper_neck"), JointSource::Absent);
        assert_eq!(src(&coco_to_mpii, "head_top"), JointSource::Absent);
        let mpii_to_coco = JointMap::new(&MPII16, &COCO17);
        for face in ["nose", "left_eye", "right_eye", "left_ear", "right_ear"] {
            assert_eq!(src(&mpii_to_coco, face), JointSource::Absent);
        }
        let openpose_to_lsp = JointMap::new(&OPENPOSE_COCO18, &LSP14);
        assert_eq!(src(&openpose_to_lsp, "neck"), JointSource::Same(1));
        assert_eq!(src(&openpose_to_lsp, "head_top"), JointSource::Absent);
    }

    #[test]
    fn mapping_a_person_computes_derived_joints() {
        let m = JointMap::new(&COCO17, &OPENPOSE_COCO18);
        let mut keypoints = vec![None; 17];
        keypoints[0] = kp(5.0, 1.0, 0.9);
        keypoints[5] = kp(10.0, 20.0, 0.8); // left shoulder
        keypoints[6] = kp(30.0, 22.0, 0.6); // right shoulder
        let p = m.map_person(&Person {
            score: 0.5,
            keypoints,
        });
        assert_eq!(p.keypoints.len(), 18);
        assert_eq!(p.score, 0.5);
        assert_eq!(p.keypoints[0], kp(5.0, 1.0, 0.9));
        assert_eq!(p.keypoints[1], kp(20.0, 21.0, 0.6));
        assert_eq!(p.keypoints[2], kp(30.0, 22.0, 0.6));
        assert_eq!(p.keypoints[5], kp(10.0, 20.0, 0.8));
        assert_eq!(p.keypoints[3], None);
        // A derived joint needs both ends.
        let mut keypoints = vec![None; 17];
        keypoints[5] = kp(10.0, 20.0, 0.8);
        assert_eq!(m.map_keypoints(&keypoints)[1], None);
        // Short input: missing slots are None, never a panic.
        assert_eq!(m.map_keypoints(&[]).len(), 18);
    }

    #[test]
    fn description_names_sources() {
        let d = JointMap::new(&COCO17, &LSP14).describe();
        assert_eq!(d.len(), 14);
        assert_eq!(d[12].joint, "neck");
        assert_eq!(d[12].kind, "derived");
        assert_eq!(
            d[12].from.as_deref(),
            Some("mid(left_shoulder, right_shoulder)")
        );
        assert_eq!(d[13].kind, "absent");
        assert_eq!(d[13].from, None);
        assert_eq!(d[0].from.as_deref(), Some("right_ankle"));
    }
}
