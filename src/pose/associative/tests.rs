//! Grouping cases on synthetic maps: single-pixel peaks (neighbours 0) with chosen tags.

use super::*;

/// Tag value away from every peak: far from every person's tag, so refinement never
/// picks background pixels.
const BACKGROUND_TAG: f32 = 100.0;

struct Scene {
    heat: Maps,
    tags: Vec<Maps>,
}

impl Scene {
    fn new(joints: usize, height: usize, width: usize, dims: usize) -> Self {
        let tag = Maps::new(
            vec![BACKGROUND_TAG; joints * height * width],
            joints,
            height,
            width,
        )
        .unwrap();
        Scene {
            heat: Maps::zeros(joints, height, width),
            tags: vec![tag; dims],
        }
    }

    fn idx(&self, joint: usize, x: usize, y: usize) -> usize {
        (joint * self.heat.height() + y) * self.heat.width() + x
    }

    /// Heat only (a neighbour shaping the quarter offset).
    fn heat_at(&mut self, joint: usize, x: usize, y: usize, value: f32) {
        let i = self.idx(joint, x, y);
        self.heat.as_mut_slice()[i] = value;
    }

    /// A peak with its tag vector.
    fn put(&mut self, joint: usize, x: usize, y: usize, value: f32, tag: &[f32]) {
        self.heat_at(joint, x, y, value);
        let i = self.idx(joint, x, y);
        for (t, &v) in self.tags.iter_mut().zip(tag) {
            t.as_mut_slice()[i] = v;
        }
    }

    fn parse(&self, params: &AeParams) -> Grouping {
        parse(&self.heat, &self.tags, params).unwrap()
    }
}

fn no_refine() -> AeParams {
    AeParams {
        refine: false,
        ..AeParams::default()
    }
}

/// Joints present in a person.
fn joints_of(p: &AePerson) -> Vec<usize> {
    p.keypoints
        .iter()
        .enumerate()
        .filter_map(|(j, k)| k.as_ref().map(|_| j))
        .collect()
}

fn pos(p: &AePerson, j: usize) -> (f32, f32) {
    let k = p.keypoints[j].as_ref().unwrap();
    (k.x, k.y)
}

#[test]
fn defaults_are_the_official_coco_test_settings() {
    let p = AeParams::default();
    assert_eq!(p.detection_threshold, 0.1);
    assert_eq!(p.tag_threshold, 1.0);
    assert_eq!(p.max_num_people, 30);
    assert_eq!((p.nms_kernel, p.nms_padding), (5, 2));
    assert!(p.use_detection_val && !p.ignore_too_much && p.adjust && p.refine);
    assert_eq!(p.order_for(17), COCO17_JOINT_ORDER.to_vec());
    assert_eq!(p.order_for(3), vec![0, 1, 2]);
    // Partial configs deserialize onto the defaults.
    let q: AeParams = serde_json::from_str(r#"{"tag_threshold": 2.0}"#).unwrap();
    assert_eq!(q.tag_threshold, 2.0);
    assert_eq!(q.nms_kernel, 5);
}

#[test]
fn two_people_with_well_separated_tags() {
    let mut s = Scene::new(17, 48, 48, 1);
    for j in 0..17 {
        s.put(j, 5 + 2 * j, 10, 0.9, &[0.0]);
        s.put(j, 6 + 2 * j, 30, 0.8, &[5.0]);
    }
    let g = s.parse(&AeParams::default());
    assert_eq!(g.people.len(), 2);
    assert_eq!(g.candidates.len(), 34);
    let (a, b) = (&g.people[0], &g.people[1]);
    assert_eq!(joints_of(a), (0..17).collect::<Vec<_>>());
    assert_eq!(joints_of(b), (0..17).collect::<Vec<_>>());
    for j in 0..17 {
        // Isolated peak: both neighbours equal (0) → −¼ on each axis, then +½.
        assert_eq!(pos(a, j), ((5 + 2 * j) as f32 + 0.25, 10.25), "joint {j}");
        assert_eq!(pos(b, j), ((6 + 2 * j) as f32 + 0.25, 30.25), "joint {j}");
        assert!(!a.keypoints[j].as_ref().unwrap().refined);
    }
    assert!((a.score - 0.9).abs() < 1e-6 && (b.score - 0.8).abs() < 1e-6);
    // Candidates: joint-major, rank order, each assigned to its person.
    assert_eq!((g.candidates[0].joint, g.candidates[0].rank), (0, 0));
    assert_eq!((g.candidates[0].x, g.candidates[0].y), (5, 10));
    for c in &g.candidates {
        assert_eq!(c.person, Some(if c.y == 10 { 0 } else { 1 }), "{c:?}");
    }
    // Person conversion in both conventions.
    let official = a.to_person(AeCoords::Official);
    let centre = a.to_person(AeCoords::PixelCentre);
    let (ko, kc) = (official.keypoints[3].unwrap(), centre.keypoints[3].unwrap());
    assert_eq!((ko.x, ko.y, ko.score), (11.25, 10.25, 0.9));
    assert_eq!((kc.x, kc.y), (10.75, 9.75));
    assert_eq!(g.to_people(AeCoords::Official).len(), 2);
}

#[test]
fn three_people_with_two_tag_dimensions_in_nose_value_order() {
    // Tags as a flip test stacks them: two dimensions. (Distinct first components: the
    // official code keys people by them.)
    let tags = [[0.0, 0.0], [3.0, 0.0], [1.0, 3.0]];
    let rows = [8, 20, 32];
    let value = |p: usize, j: usize| 0.5 + 0.1 * ((p + j) % 3) as f32;
    let mut s = Scene::new(17, 40, 40, 2);
    for j in 0..17 {
        for p in 0..3 {
            s.put(j, 3 + 2 * j, rows[p], value(p, j), &tags[p]);
        }
    }
    let g = s.parse(&AeParams::default());
    assert_eq!(g.people.len(), 3);
    // Nose values: p0 0.5, p1 0.6, p2 0.7 → created in the order p2, p1, p0.
    for (person, p) in g.people.iter().zip([2, 1, 0]) {
        assert_eq!(joints_of(person).len(), 17);
        for j in 0..17 {
            let k = person.keypoints[j].as_ref().unwrap();
            assert_eq!((k.column, k.row), (3 + 2 * j, rows[p]), "joint {j}");
            assert_eq!(k.tag, tags[p].to_vec());
        }
        let mean = (0..17).map(|j| value(p, j)).sum::<f32>() / 17.0;
        assert!((person.score - mean).abs() < 1e-6);
    }
}

#[test]
fn nearly_equal_tags_merge_below_the_threshold_and_split_above() {
    for (tag, people) in [(0.9f32, 1), (1.1, 2)] {
        let mut s = Scene::new(17, 32, 32, 1);
        s.put(0, 5, 5, 0.9, &[0.0]);
        s.put(1, 20, 20, 0.8, &[tag]);
        let g = s.parse(&no_refine());
        assert_eq!(g.people.len(), people, "tag {tag}");
        if people == 1 {
            assert_eq!(joints_of(&g.people[0]), vec![0, 1]);
        } else {
            assert_eq!(joints_of(&g.people[0]), vec![0]);
            assert_eq!(joints_of(&g.people[1]), vec![1]);
            assert_eq!(g.candidates[1].person, Some(1));
        }
    }
}

#[test]
fn regrouping_reuses_the_top_k() {
    let mut s = Scene::new(17, 32, 32, 1);
    s.put(0, 5, 5, 0.9, &[0.0]);
    s.put(1, 20, 20, 0.8, &[1.1]);
    s.put(2, 25, 25, 0.15, &[0.1]);
    let params = no_refine();
    let topk = TopK::from_maps(&s.heat, &s.tags, &params).unwrap();
    let g = group(&topk, &s.heat, &s.tags, &params).unwrap();
    assert_eq!(g.people.len(), 2);
    assert_eq!(joints_of(&g.people[0]), vec![0, 2]);
    // A looser tag threshold merges; a higher detection threshold drops the weak eye.
    let loose = AeParams {
        tag_threshold: 2.0,
        detection_threshold: 0.2,
        ..params.clone()
    };
    let g = group(&topk, &s.heat, &s.tags, &loose).unwrap();
    assert_eq!(g.people.len(), 1);
    assert_eq!(joints_of(&g.people[0]), vec![0, 1]);
    assert_eq!(g.candidates.len(), 2);
    // Other NMS / k needs a new top-k.
    let other = AeParams {
        max_num_people: 5,
        ..params
    };
    assert!(!topk.matches(&other));
    assert!(matches!(
        group(&topk, &s.heat, &s.tags, &other),
        Err(AeError::StaleTopK(_))
    ));
}

#[test]
fn refinement_fills_a_missing_joint_from_the_mean_tag() {
    let mut s = Scene::new(17, 48, 48, 1);
    for j in 0..16 {
        s.put(j, 4 + 2 * j, 10, 0.9, &[0.1 * (j % 3) as f32]);
    }
    // Right ankle below the detection threshold: a weak peak near the person's tag and a
    // stronger one with a far tag (distance 3 costs 3 > 0.08 − 0.05).
    s.put(16, 10, 40, 0.05, &[0.2]);
    s.put(16, 30, 40, 0.08, &[3.0]);
    let g = s.parse(&AeParams::default());
    assert_eq!(g.people.len(), 1);
    let p = &g.people[0];
    let k = p.keypoints[16].as_ref().unwrap();
    assert!(k.refined && k.candidate.is_none());
    assert_eq!((k.column, k.row, k.value), (10, 40, 0.05));
    assert_eq!((k.x, k.y), (10.25, 40.25));
    assert_eq!(k.pixel_centre(), (9.75, 39.75));
    assert_eq!(k.tag, vec![0.2]);
    // The score is taken before refinement: 16 joints of 0.9 over 17.
    assert!((p.score - 16.0 * 0.9 / 17.0).abs() < 1e-6);
    assert!(g.candidates.iter().all(|c| c.joint != 16));
    // Without refinement the ankle stays missing.
    let g = s.parse(&no_refine());
    assert!(g.people[0].keypoints[16].is_none());
}

#[test]
fn refinement_may_take_another_persons_joint_as_the_official_code_does() {
    let mut s = Scene::new(17, 32, 32, 1);
    s.put(0, 5, 5, 0.9, &[0.0]);
    s.put(1, 20, 20, 0.8, &[1.1]);
    let g = s.parse(&AeParams::default());
    assert_eq!(g.people.len(), 2);
    // Person 0 (tag 0) gets the eye at distance round(1.1) = 1 (0.8 − 1 beats the
    // background's 0 − 100), person 1 the nose likewise.
    let eye = g.people[0].keypoints[1].as_ref().unwrap();
    assert!(eye.refined && (eye.column, eye.row) == (20, 20));
    let nose = g.people[1].keypoints[0].as_ref().unwrap();
    assert!(nose.refined && (nose.column, nose.row) == (5, 5));
}

#[test]
fn joints_are_matched_in_the_official_order() {
    // Nose tag 0, left hip (11) tag 0.8, left elbow (7) tag 1.3. Official order takes the
    // hip before the elbow: hip joins (0.8 < 1), the mean becomes 0.4, the elbow joins
    // (0.9 < 1).
    let mut s = Scene::new(17, 32, 32, 1);
    s.put(0, 5, 5, 0.9, &[0.0]);
    s.put(11, 10, 20, 0.8, &[0.8]);
    s.put(7, 20, 10, 0.7, &[1.3]);
    let g = s.parse(&no_refine());
    assert_eq!(g.people.len(), 1);
    assert_eq!(joints_of(&g.people[0]), vec![0, 7, 11]);
    // In plain index order the elbow (1.3 from tag 0) starts a person first, and the hip
    // then matches it (distance 0.5 rounds to 0, half to even, cost 0 − 0.8 beats 100 − 0.8).
    let natural = AeParams {
        joint_order: Some((0..17).collect()),
        ..no_refine()
    };
    let g = s.parse(&natural);
    assert_eq!(g.people.len(), 2);
    assert_eq!(joints_of(&g.people[0]), vec![0]);
    assert_eq!(joints_of(&g.people[1]), vec![7, 11]);
}

#[test]
fn the_first_joint_with_candidates_seeds_people() {
    // No nose: the left eyes seed two people, the right eye joins the nearer tag.
    let mut s = Scene::new(17, 32, 32, 1);
    s.put(1, 5, 5, 0.9, &[0.0]);
    s.put(1, 20, 5, 0.8, &[4.0]);
    s.put(2, 21, 6, 0.7, &[3.8]);
    let g = s.parse(&no_refine());
    assert_eq!(g.people.len(), 2);
    assert_eq!(joints_of(&g.people[0]), vec![1]);
    assert_eq!(joints_of(&g.people[1]), vec![1, 2]);
}

#[test]
fn adjust_moves_a_quarter_towards_the_larger_neighbour() {
    let mut s = Scene::new(17, 24, 24, 1);
    s.put(0, 10, 10, 1.0, &[0.0]);
    s.heat_at(0, 11, 10, 0.5); // right > left → +¼ in x
    s.heat_at(0, 9, 10, 0.2);
    s.heat_at(0, 10, 9, 0.6); // up > down → −¼ in y
    s.heat_at(0, 10, 11, 0.1);
    // Left border: the "left neighbour" is the pixel itself, larger than the right → −¼.
    s.put(1, 0, 20, 0.9, &[0.0]);
    // Right border: the "right neighbour" is the pixel itself → +¼.
    s.put(2, 23, 3, 0.9, &[0.0]);
    s.heat_at(2, 22, 3, 0.3);
    let g = s.parse(&no_refine());
    assert_eq!(g.people.len(), 1);
    let p = &g.people[0];
    assert_eq!(pos(p, 0), (10.75, 10.25));
    assert_eq!(
        p.keypoints[0].as_ref().unwrap().pixel_centre(),
        (10.25, 9.75)
    );
    assert_eq!(pos(p, 1), (0.25, 20.25));
    assert_eq!(pos(p, 2), (23.75, 3.25));
    // Without adjust: integer pixel indices, no +½.
    let plain = AeParams {
        adjust: false,
        ..no_refine()
    };
    let g = s.parse(&plain);
    assert_eq!(pos(&g.people[0], 0), (10.0, 10.0));
    assert_eq!(
        g.people[0].keypoints[0].as_ref().unwrap().pixel_centre(),
        (10.0, 10.0)
    );
}

#[test]
fn only_the_first_max_num_people_groups_are_matched() {
    let mut s = Scene::new(17, 32, 32, 1);
    s.put(0, 5, 5, 0.9, &[0.0]);
    s.put(0, 20, 5, 0.8, &[10.0]);
    s.put(1, 5, 20, 0.9, &[20.0]);
    s.put(1, 20, 20, 0.8, &[30.0]);
    s.put(2, 12, 28, 0.7, &[20.2]);
    let capped = AeParams {
        max_num_people: 2,
        ..no_refine()
    };
    let g = s.parse(&capped);
    // Eyes start people 2 and 3; the right eye only sees people 0 and 1 → person 4.
    assert_eq!(g.people.len(), 5);
    assert_eq!(joints_of(&g.people[2]), vec![1]);
    assert_eq!(joints_of(&g.people[4]), vec![2]);
    assert_eq!(g.people[2].keypoints[1].as_ref().unwrap().tag, vec![20.0]);
    // Uncapped, the right eye joins the tag-20 person.
    let g = s.parse(&no_refine());
    assert_eq!(g.people.len(), 4);
    assert_eq!(joints_of(&g.people[2]), vec![1, 2]);
    // ignore_too_much: once two people exist, later joints are skipped entirely.
    let skip = AeParams {
        ignore_too_much: true,
        ..capped
    };
    let g = s.parse(&skip);
    assert_eq!(g.people.len(), 2);
    assert!(g
        .candidates
        .iter()
        .filter(|c| c.joint > 0)
        .all(|c| c.person.is_none()));
}

#[test]
fn top_k_keeps_the_largest_peaks_with_deterministic_ties() {
    let mut s = Scene::new(1, 16, 16, 1);
    s.put(0, 2, 2, 0.5, &[0.0]);
    s.put(0, 12, 2, 0.5, &[1.0]);
    s.put(0, 7, 12, 0.9, &[2.0]);
    let params = AeParams {
        max_num_people: 2,
        ..AeParams::default()
    };
    let topk = TopK::from_maps(&s.heat, &s.tags, &params).unwrap();
    let got: Vec<(usize, usize, f32)> = topk.peaks[0].iter().map(|p| (p.x, p.y, p.value)).collect();
    assert_eq!(got, vec![(7, 12, 0.9), (2, 2, 0.5)]);
    assert_eq!(topk.peaks[0][1].tag, vec![0.0]);
}

#[test]
fn nms_keeps_window_maxima_and_plateaus() {
    let row = [0.0, 1.0, 0.0, 0.5, 0.0, 0.0, 0.8, 0.8];
    // Kernel 5: 0.5 is two pixels from 1.0 → suppressed; the 0.8 plateau survives twice.
    assert_eq!(
        max_pool_nms(&row, 8, 1, 2),
        vec![0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.8, 0.8]
    );
    // Kernel 3 (the default.py setting): 0.5 survives.
    assert_eq!(
        max_pool_nms(&row, 8, 1, 1),
        vec![0.0, 1.0, 0.0, 0.5, 0.0, 0.0, 0.8, 0.8]
    );
    // Vertical neighbours suppress too.
    let col = [0.3, 0.0, 0.4];
    assert_eq!(max_pool_nms(&col, 1, 3, 2), vec![0.0, 0.0, 0.4]);
}

#[test]
fn nms_matches_a_naive_window_maximum() {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        // Few distinct values, so plateaus and ties are common.
        (state % 5) as f32 * 0.25 - 0.25
    };
    let cases: [(usize, usize, usize); 7] = [
        (1, 1, 2),
        (7, 1, 2),
        (1, 6, 1),
        (9, 8, 2),
        (13, 11, 1),
        (6, 6, 0),
        (5, 9, 3),
    ];
    for (w, h, p) in cases {
        let map: Vec<f32> = (0..w * h).map(|_| next()).collect();
        let naive: Vec<f32> = (0..w * h)
            .map(|i| {
                let (x, y) = (i % w, i / w);
                let mut m = f32::NEG_INFINITY;
                for yy in y.saturating_sub(p)..=(y + p).min(h - 1) {
                    for xx in x.saturating_sub(p)..=(x + p).min(w - 1) {
                        m = m.max(map[yy * w + xx]);
                    }
                }
                if map[i] == m {
                    map[i]
                } else {
                    0.0
                }
            })
            .collect();
        assert_eq!(max_pool_nms(&map, w, h, p), naive, "{w}x{h} p {p}");
    }
}

#[test]
fn top_k_takes_positives_then_zeros_in_index_order_then_negatives() {
    let nms = [0.0, -0.5, 0.3, 0.0, -0.2, 0.3, 0.7];
    assert_eq!(top_k(&nms, 2), vec![(0.7, 6), (0.3, 2)]);
    assert_eq!(
        top_k(&nms, 6),
        vec![(0.7, 6), (0.3, 2), (0.3, 5), (0.0, 0), (0.0, 3), (-0.2, 4)]
    );
    assert_eq!(top_k(&nms, 9).len(), 7);
}

#[test]
fn identical_first_tag_components_collide_like_the_official_dictionary() {
    // Two noses with the same tag: the official dict key is tag[0], so the second
    // overwrites the first's slot and there is one person.
    let mut s = Scene::new(17, 32, 32, 1);
    s.put(0, 5, 5, 0.9, &[1.0]);
    s.put(0, 20, 5, 0.8, &[1.0]);
    let g = s.parse(&no_refine());
    assert_eq!(g.people.len(), 1);
    assert_eq!(g.people[0].keypoints[0].as_ref().unwrap().column, 20);
    assert_eq!(g.candidates[0].person, None);
    assert_eq!(g.candidates[1].person, Some(0));
}

#[test]
fn a_single_tag_channel_is_shared_by_all_joints() {
    let mut s = Scene::new(17, 32, 32, 1);
    let mut shared = Maps::new(vec![BACKGROUND_TAG; 32 * 32], 1, 32, 32).unwrap();
    for j in 0..3 {
        s.heat_at(j, 3 + 3 * j, 5, 0.9);
        s.heat_at(j, 3 + 3 * j, 20, 0.8);
        shared.as_mut_slice()[5 * 32 + 3 + 3 * j] = 0.0;
        shared.as_mut_slice()[20 * 32 + 3 + 3 * j] = 5.0;
    }
    let g = parse(&s.heat, &[shared], &no_refine()).unwrap();
    assert_eq!(g.people.len(), 2);
    assert_eq!(joints_of(&g.people[0]), vec![0, 1, 2]);
    assert!(g.people[0].keypoints.iter().flatten().all(|k| k.row == 5));
}

#[test]
fn split_tag_dims_is_dimension_major() {
    // K = 2, L = 2, 1x1 maps: channels [d0k0, d0k1, d1k0, d1k1].
    let m = Maps::new(vec![1.0, 2.0, 3.0, 4.0], 4, 1, 1).unwrap();
    let dims = split_tag_dims(&m, 2).unwrap();
    assert_eq!(dims.len(), 2);
    assert_eq!(dims[0].as_slice(), &[1.0, 2.0]);
    assert_eq!(dims[1].as_slice(), &[3.0, 4.0]);
    assert!(matches!(
        split_tag_dims(&m, 3),
        Err(AeError::TagChannels {
            channels: 4,
            joints: 3
        })
    ));
}

#[test]
fn bad_input_gives_clear_errors() {
    let s = Scene::new(17, 10, 10, 1);
    let p = AeParams::default();
    let wrong = Maps::zeros(17, 10, 11);
    assert!(matches!(
        parse(&s.heat, &[wrong], &p),
        Err(AeError::TagShape {
            index: 0,
            got: [17, 10, 11],
            ..
        })
    ));
    assert!(matches!(
        parse(&s.heat, &[Maps::zeros(5, 10, 10)], &p),
        Err(AeError::TagShape { .. })
    ));
    assert_eq!(parse(&s.heat, &[], &p), Err(AeError::NoTags));
    assert!(matches!(
        parse(&Maps::zeros(17, 0, 10), &s.tags, &p),
        Err(AeError::EmptyMaps { .. })
    ));
    let mut nan = s.heat.clone();
    nan.as_mut_slice()[2 * 100 + 3 * 10 + 4] = f32::NAN;
    let err = parse(&nan, &s.tags, &p).unwrap_err();
    assert!(matches!(
        err,
        AeError::NonFinite {
            what: "heatmaps",
            channel: 2,
            x: 4,
            y: 3,
            ..
        }
    ));
    assert!(err.to_string().contains("channel 2"));
    let bad_nms = AeParams {
        nms_kernel: 4,
        ..AeParams::default()
    };
    assert!(matches!(
        parse(&s.heat, &s.tags, &bad_nms),
        Err(AeError::InvalidParams(_))
    ));
    let bad_order = AeParams {
        joint_order: Some(vec![0, 0]),
        ..AeParams::default()
    };
    assert!(matches!(
        parse(&s.heat, &s.tags, &bad_order),
        Err(AeError::InvalidParams(_))
    ));
    // Nothing above the threshold: no people, no candidates.
    let g = parse(&s.heat, &s.tags, &p).unwrap();
    assert!(g.people.is_empty() && g.candidates.is_empty());
}
