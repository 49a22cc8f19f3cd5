//! Per-image, per-stage, per-joint errors of a PCK/PCKh evaluation (the failure browser's
//! data), and the ranking of images worst first.
//!
//! Every scored person (an annotated person with a reference length and counted joints, see
//! [`super::metrics`]) has, at every stage, one [`JointError`] per *scored* joint: a joint
//! annotated as visible in the dataset (`v > 0`; occluded or missing joints are not scored)
//! that the model can predict. Distances are in image pixels; the normalised distance is
//! the one PCK thresholds (`distance / reference`, the reference being the torso, box or
//! head size of the metric), and `correct` is exactly what the PCK accumulator counted.

use serde::Serialize;

/// One scored joint of one person at one stage.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JointError {
    /// The joint's index in the dataset's joint set.
    pub joint: usize,
    /// The annotation, image pixels.
    pub gt: [f64; 2],
    /// The prediction, image pixels; `None` when the model gave none (counted as wrong).
    pub pred: Option<[f64; 2]>,
    /// `‖pred − gt‖` in pixels.
    pub distance: Option<f64>,
    /// `distance / reference` (what PCK compares with α).
    pub normalised: Option<f64>,
    /// Counted as correct by the metric.
    pub correct: bool,
}

/// One scored person's errors.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PersonErrors {
    /// The person's index among the image's annotations.
    pub person: usize,
    /// The reference length (pixels) distances are divided by.
    pub reference: f64,
    /// `stages[t]`: the scored joints at stage `t` (0-based), in joint order.
    pub stages: Vec<Vec<JointError>>,
}

/// One image's errors.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ImageErrors {
    /// The dataset's image id (COCO), else the image's position in the file.
    pub image_id: u64,
    pub file_name: String,
    /// Scored people only.
    pub people: Vec<PersonErrors>,
}

/// One image at one stage, summed over its scored people.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StageSummary {
    pub correct: usize,
    /// Scored joints.
    pub total: usize,
    /// Mean normalised distance over the scored joints that have a prediction.
    pub mean_normalised: Option<f64>,
    /// The joint with the largest normalised distance (a joint without a prediction is the
    /// worst of all): `(person index, joint index, normalised distance or None)`.
    pub worst: Option<(usize, usize, Option<f64>)>,
}

impl StageSummary {
    /// The image's own PCK at this stage: correct / scored joints.
    pub fn pck(&self) -> Option<f64> {
        (self.total > 0).then(|| self.correct as f64 / self.total as f64)
    }

    /// The fraction of scored joints missed.
    pub fn missed(&self) -> Option<f64> {
        self.pck().map(|p| 1.0 - p)
    }
}

impl ImageErrors {
    /// The errors of stage `stage` (0-based) summed over the image's people.
    pub fn summary(&self, stage: usize) -> StageSummary {
        let (mut correct, mut total, mut sum, mut n) = (0, 0, 0.0, 0usize);
        let mut worst: Option<(usize, usize, Option<f64>)> = None;
        for p in &self.people {
            for e in p.stages.get(stage).into_iter().flatten() {
                total += 1;
                correct += usize::from(e.correct);
                if let Some(d) = e.normalised {
                    sum += d;
                    n += 1;
                }
                let worse = match (worst, e.normalised) {
                    (None, _) => true,
                    (Some((_, _, Some(w))), Some(d)) => d > w,
                    (Some((_, _, Some(_))), None) => true,
                    (Some((_, _, None)), _) => false,
                };
                if worse {
                    worst = Some((p.person, e.joint, e.normalised));
                }
            }
        }
        StageSummary {
            correct,
            total,
            mean_normalised: (n > 0).then(|| sum / n as f64),
            worst,
        }
    }

    /// Joint `joint` of person `person` at every stage (`None` where it is not scored).
    pub fn joint_over_stages(&self, person: usize, joint: usize) -> Vec<Option<&JointError>> {
        self.people
            .iter()
            .find(|p| p.person == person)
            .map(|p| {
                p.stages
                    .iter()
                    .map(|s| s.iter().find(|e| e.joint == joint))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The images' indices, worst first at stage `stage` (0-based): the larger fraction of
/// scored joints missed first, ties broken by the larger mean normalised distance (an image
/// without any predicted joint before one with), then by position. Images with no scored
/// joint come last.
pub fn rank_worst(images: &[ImageErrors], stage: usize) -> Vec<usize> {
    let summaries: Vec<StageSummary> = images.iter().map(|i| i.summary(stage)).collect();
    let mut order: Vec<usize> = (0..images.len()).collect();
    order.sort_by(|&a, &b| {
        let (sa, sb) = (&summaries[a], &summaries[b]);
        // Unscored images last.
        (sa.total == 0)
            .cmp(&(sb.total == 0))
            .then_with(|| {
                let (ma, mb) = (sa.missed().unwrap_or(0.0), sb.missed().unwrap_or(0.0));
                mb.total_cmp(&ma)
            })
            .then_with(|| {
                let key = |s: &StageSummary| s.mean_normalised.unwrap_or(f64::INFINITY);
                key(sb).total_cmp(&key(sa))
            })
            .then(a.cmp(&b))
    });
    order
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A joint at normalised distance `d` (reference 10, so `d · 10` pixels), correct when
    /// `d < 0.2`; `None` = no prediction.
    fn je(joint: usize, d: Option<f64>) -> JointError {
        JointError {
            joint,
            gt: [0.0, 0.0],
            pred: d.map(|d| [10.0 * d, 0.0]),
            distance: d.map(|d| 10.0 * d),
            normalised: d,
            correct: d.is_some_and(|d| d < 0.2),
        }
    }

    fn image(name: &str, stages: Vec<Vec<JointError>>) -> ImageErrors {
        ImageErrors {
            image_id: 0,
            file_name: name.into(),
            people: vec![PersonErrors {
                person: 0,
                reference: 10.0,
                stages,
            }],
        }
    }

    #[test]
    fn ranking_by_hand() {
        let images = vec![
            // a: stage 1 misses 1 of 3; stage 2 all right.
            image(
                "a",
                vec![
                    vec![je(0, Some(0.1)), je(1, Some(0.5)), je(2, Some(0.1))],
                    vec![je(0, Some(0.1)), je(1, Some(0.1)), je(2, Some(0.1))],
                ],
            ),
            // b: misses 2 of 3 at both stages.
            image(
                "b",
                vec![
                    vec![je(0, Some(0.3)), je(1, Some(0.3)), je(2, Some(0.0))],
                    vec![je(0, Some(0.3)), je(1, None), je(2, Some(0.0))],
                ],
            ),
            // c: misses 1 of 3 like a at stage 1, but farther off on average.
            image(
                "c",
                vec![
                    vec![je(0, Some(0.1)), je(1, Some(2.0)), je(2, Some(0.1))],
                    vec![je(0, Some(0.15)), je(1, Some(0.1)), je(2, Some(0.1))],
                ],
            ),
            // d: nothing scored.
            ImageErrors {
                image_id: 3,
                file_name: "d".into(),
                people: Vec::new(),
            },
            // e: all right at every stage, farther than c at stage 2.
            image("e", vec![vec![je(0, Some(0.19))], vec![je(0, Some(0.19))]]),
        ];
        // Stage 1: b (2/3 missed), then c and a (1/3 missed; c's mean 0.733 > a's 0.233),
        // then e, and d last.
        assert_eq!(rank_worst(&images, 0), vec![1, 2, 0, 4, 3]);
        // Stage 2: b (2/3), then nobody misses: e (mean 0.19), c (0.117), a (0.1), d.
        assert_eq!(rank_worst(&images, 1), vec![1, 4, 2, 0, 3]);

        let s = images[1].summary(1);
        assert_eq!((s.correct, s.total), (1, 3));
        assert!((s.pck().unwrap() - 1.0 / 3.0).abs() < 1e-12);
        // The joint without a prediction is the worst; the mean is over predicted joints.
        assert_eq!(s.worst, Some((0, 1, None)));
        assert!((s.mean_normalised.unwrap() - 0.15).abs() < 1e-12);
        let s = images[2].summary(0);
        assert_eq!(s.worst, Some((0, 1, Some(2.0))));
        assert_eq!(images[3].summary(0).pck(), None);
        // A stage beyond the data scores nothing.
        assert_eq!(images[0].summary(7).total, 0);
        let over = images[0].joint_over_stages(0, 1);
        assert_eq!(over.len(), 2);
        assert_eq!(over[0].unwrap().normalised, Some(0.5));
        assert!(over[1].unwrap().correct);
    }
}
