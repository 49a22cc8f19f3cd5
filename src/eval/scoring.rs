//! The scoring half of an evaluation: the checks on the dataset, the metric's threshold, and
//! every stage's PCK/PCKh or COCO AP of a set of predictions, wherever they came from (a model
//! run, [`super::run_with`], or a results file, [`super::external`]).

use super::{
    coco, datasets, failures, metrics, Comparison, Counts, Dataset, EvalConfig, EvalError,
    JointScore, Metric, Norm, Predictions, StageScore,
};
use crate::pose::skeleton::{self, JointSet};
use crate::pose::Person;

/// The annotated person's joints, the stage predictions, and what the metric needs per
/// stage: PCK accumulators or COCO images.
pub(super) enum Scores {
    Pck(Vec<metrics::PckAccumulator>),
    Oks(Vec<Vec<coco::CocoImage>>),
}

/// The images to evaluate (the first `limit`), after checking that the dataset suits the
/// metric.
pub(super) fn checked_images<'a>(
    dataset: &'a Dataset,
    config: &EvalConfig,
) -> Result<Vec<&'a datasets::ImageAnn>, EvalError> {
    if config.metric == Metric::OksAp && dataset.joints.id != skeleton::COCO17.id {
        return Err(EvalError::Config(format!(
            "oks-ap needs COCO-17 annotations (OKS sigmas are defined for COCO's keypoints); \
             '{}' has {} joints",
            dataset.path.display(),
            dataset.joints.id
        )));
    }
    let images: Vec<&datasets::ImageAnn> = dataset
        .images
        .iter()
        .take(config.limit.unwrap_or(usize::MAX))
        .collect();
    if images.is_empty() {
        return Err(EvalError::NoImages(dataset.path.display().to_string()));
    }
    if config.metric == Metric::OksAp {
        let incomplete = images
            .iter()
            .find(|i| i.people.iter().any(|p| p.to_coco().is_none()));
        if let Some(img) = incomplete {
            return Err(EvalError::Config(format!(
                "'{}', image '{}': oks-ap needs 'bbox' and 'area' on every annotation",
                dataset.path.display(),
                img.file_name
            )));
        }
    }
    Ok(images)
}

/// The metric's threshold (`None` for OKS AP) and how distances meet it.
pub(super) fn threshold(
    config: &EvalConfig,
) -> Result<(Option<f64>, Option<Comparison>), EvalError> {
    let alpha = match config.metric {
        Metric::OksAp => None,
        m => {
            let a = config.alpha.or(m.default_alpha()).unwrap_or(0.2);
            if !(a.is_finite() && a > 0.0) {
                return Err(EvalError::Config(format!(
                    "alpha must be a positive number, not {a}"
                )));
            }
            Some(a)
        }
    };
    let comparison = match config.metric {
        Metric::Pck => Some(Comparison::Strict),
        Metric::Pckh => Some(Comparison::Inclusive),
        Metric::OksAp => None,
    };
    Ok((alpha, comparison))
}

/// Scores every stage of the predictions once the number of stages is known (an image may
/// have had no prediction at all, e.g. box mode without a usable person); fills `counts`
/// (people, skipped, joints). Also returns each image's per-joint errors (PCK/PCKh).
pub(super) fn score_stages(
    dataset: &Dataset,
    config: &EvalConfig,
    (alpha, comparison): (Option<f64>, Option<Comparison>),
    counted: &[bool],
    evaluated: &[(&datasets::ImageAnn, Predictions)],
    stage_labels: &[String],
    counts: &mut Counts,
) -> Result<(Vec<StageScore>, Vec<failures::ImageErrors>), EvalError> {
    let sigmas = coco::coco_sigmas();
    let n_stages = stage_labels.len();
    let last = n_stages.saturating_sub(1);
    let mut per_image = Vec::new();
    let scores = match config.metric {
        _ if n_stages == 0 => None,
        Metric::OksAp => {
            let mut per_stage = vec![Vec::with_capacity(evaluated.len()); n_stages];
            for (img, preds) in evaluated {
                for (t, imgs) in per_stage.iter_mut().enumerate() {
                    imgs.push(coco_image(img, preds, t)?);
                }
            }
            Some(Scores::Oks(per_stage))
        }
        Metric::Pck | Metric::Pckh => {
            let mut accs = vec![
                metrics::PckAccumulator::new(
                    dataset.joints.len(),
                    alpha.unwrap_or(0.2),
                    comparison.unwrap_or(Comparison::Strict),
                );
                n_stages
            ];
            for (img, preds) in evaluated {
                let refs: Vec<Option<f64>> = img
                    .people
                    .iter()
                    .map(|p| reference(p, dataset.joints, config.metric, config.norm))
                    .collect();
                let mut people: Vec<failures::PersonErrors> = Vec::new();
                for (t, acc) in accs.iter_mut().enumerate() {
                    let mut errors = Vec::new();
                    let c = score_pck(acc, img, &refs, counted, preds, t, &mut errors);
                    for e in errors {
                        match people.iter_mut().find(|p| p.person == e.person) {
                            Some(p) => p.stages.extend(e.stages),
                            None => people.push(e),
                        }
                    }
                    if t == last {
                        counts.people += c.0;
                        counts.people_skipped += c.1;
                        counts.head_from_segment += c.2;
                    }
                }
                per_image.push(failures::ImageErrors {
                    image_id: img.id,
                    file_name: img.file_name.clone(),
                    people,
                });
            }
            Some(Scores::Pck(accs))
        }
    };
    match &scores {
        Some(Scores::Pck(accs)) => {
            counts.joints = accs.last().map_or(0, metrics::PckAccumulator::count);
        }
        Some(Scores::Oks(_)) => {
            for p in evaluated.iter().flat_map(|(img, _)| &img.people) {
                if p.iscrowd || p.num_keypoints == 0 {
                    counts.people_skipped += 1;
                } else {
                    counts.people += 1;
                    counts.joints += p.annotated_count() as u64;
                }
            }
        }
        None => counts.people_skipped = evaluated.iter().map(|(i, _)| i.people.len()).sum(),
    }

    let joint_names = dataset.joints.joints;
    let stages: Vec<StageScore> = match &scores {
        Some(Scores::Pck(accs)) => accs
            .iter()
            .enumerate()
            .map(|(t, acc)| {
                pck_stage(
                    label(stage_labels, t),
                    acc,
                    joint_names,
                    config.metric,
                    dataset.joints,
                )
            })
            .collect(),
        Some(Scores::Oks(per_stage)) => per_stage
            .iter()
            .enumerate()
            .map(|(t, imgs)| {
                let stats = coco::evaluate(imgs, &sigmas);
                StageScore {
                    stage: label(stage_labels, t),
                    value: (stats.ap >= 0.0).then_some(stats.ap),
                    pooled: None,
                    per_joint: Vec::new(),
                    coco: Some(stats),
                }
            })
            .collect(),
        None => Vec::new(),
    };
    Ok((stages, per_image))
}

pub(super) fn label(labels: &[String], t: usize) -> String {
    labels
        .get(t)
        .cloned()
        .unwrap_or_else(|| format!("stage {}", t + 1))
}

pub(super) fn definition(metric: Metric, alpha: Option<f64>, norm: Norm) -> String {
    let a = alpha.unwrap_or(0.0);
    match metric {
        Metric::Pck => format!(
            "PCK@{a}: mean over joints of the fraction of annotated joints with \
             distance / {} < {a} (MMPose keypoint_pck_accuracy)",
            match norm {
                Norm::Torso =>
                    "torso (right shoulder to left hip, else left shoulder to right hip)",
                Norm::Bbox =>
                    "max(w, h) of the person box (annotation bbox, else the annotated joints' box)",
            }
        ),
        Metric::Pckh => format!(
            "PCKh@{a}: fraction of annotated joints (pelvis and thorax excluded) with \
             distance / head size <= {a}; head size = 0.6 x head box diagonal, or the head \
             segment (head top to neck) without a head box (MPII toolkit)"
        ),
        Metric::OksAp => "COCO keypoint AP: mean precision over OKS thresholds .50:.05:.95 and \
                          101 recall points, maxDets 20 (pycocotools COCOeval)"
            .into(),
    }
}

/// The PCK/PCKh reference length of an annotated person, `None` when it has none.
pub(super) fn reference(
    p: &datasets::PersonAnn,
    set: &JointSet,
    metric: Metric,
    norm: Norm,
) -> Option<f64> {
    if p.iscrowd {
        return None;
    }
    let gt = p.annotated();
    match metric {
        Metric::Pck => match norm {
            Norm::Torso => metrics::torso_size(&gt, set),
            Norm::Bbox => p
                .bbox
                .and_then(metrics::box_size)
                .or_else(|| metrics::joints_box_size(&gt)),
        },
        Metric::Pckh => p
            .head_size
            .filter(|h| h.is_finite() && *h > 0.0)
            .or_else(|| metrics::head_segment(&gt, set)),
        Metric::OksAp => None,
    }
}

/// Joint positions, `None` where absent.
pub(super) type Points = Vec<Option<(f64, f64)>>;

pub(super) fn xy(p: &Person) -> Points {
    p.keypoints
        .iter()
        .map(|k| k.map(|k| (f64::from(k.x), f64::from(k.y))))
        .collect()
}

/// Scores one image's people at stage `t`; returns (people scored, people skipped, people
/// whose head size came from the head segment), and puts each scored person's joint errors
/// at this stage (one stage in `stages`) into `errors`.
pub(super) fn score_pck(
    acc: &mut metrics::PckAccumulator,
    img: &datasets::ImageAnn,
    refs: &[Option<f64>],
    counted: &[bool],
    preds: &Predictions,
    t: usize,
    errors: &mut Vec<failures::PersonErrors>,
) -> (usize, usize, usize) {
    let gts: Vec<Vec<Option<(f64, f64)>>> = img.people.iter().map(|p| p.annotated()).collect();
    let assigned: Vec<Option<Points>> = match preds {
        Predictions::PerPerson(stages) => (0..img.people.len())
            .map(|k| {
                stages
                    .get(t)
                    .and_then(|s| s.get(k))
                    .and_then(Option::as_ref)
                    .map(xy)
            })
            .collect(),
        Predictions::Free(stages) => {
            let people: Vec<Vec<Option<(f64, f64)>>> = stages
                .get(t)
                .map(|s| s.iter().map(xy).collect())
                .unwrap_or_default();
            metrics::assign_predictions(acc, &gts, refs, counted, &people)
                .into_iter()
                .map(|a| a.and_then(|i| people.get(i).cloned()))
                .collect()
        }
    };
    let (mut scored, mut skipped, mut from_segment) = (0, 0, 0);
    for (k, person) in img.people.iter().enumerate() {
        let gt = &gts[k];
        let has_counted = gt.iter().zip(counted).any(|(g, &c)| g.is_some() && c);
        let Some(reference) = refs.get(k).copied().flatten() else {
            skipped += 1;
            continue;
        };
        if !has_counted {
            skipped += 1;
            continue;
        }
        let pred = assigned.get(k).cloned().flatten().unwrap_or_default();
        if acc.add(&pred, gt, counted, reference) {
            scored += 1;
            let joints = gt
                .iter()
                .enumerate()
                .filter(|(j, _)| counted.get(*j).copied().unwrap_or(false))
                .filter_map(|(j, g)| {
                    let g = (*g)?;
                    let p = pred.get(j).copied().flatten();
                    let distance = p.map(|p| (p.0 - g.0).hypot(p.1 - g.1));
                    Some(failures::JointError {
                        joint: j,
                        gt: [g.0, g.1],
                        pred: p.map(|p| [p.0, p.1]),
                        distance,
                        normalised: distance.map(|d| d / reference),
                        correct: acc.is_correct(p, g, reference),
                    })
                })
                .collect();
            errors.push(failures::PersonErrors {
                person: k,
                reference,
                stages: vec![joints],
            });
            if acc.comparison == Comparison::Inclusive && person.head_size.is_none() {
                from_segment += 1;
            }
        } else {
            skipped += 1;
        }
    }
    (scored, skipped, from_segment)
}

pub(super) fn pck_stage(
    stage: String,
    acc: &metrics::PckAccumulator,
    names: &[&str],
    metric: Metric,
    set: &JointSet,
) -> StageScore {
    let per_joint: Vec<JointScore> = acc
        .per_joint()
        .into_iter()
        .enumerate()
        .map(|(j, value)| JointScore {
            joint: names.get(j).copied().unwrap_or("?").to_string(),
            value,
            correct: acc.correct.get(j).copied().unwrap_or(0),
            total: acc.total.get(j).copied().unwrap_or(0),
        })
        .collect();
    let (value, pooled) = match metric {
        Metric::Pckh => {
            // The MPII total leaves out pelvis and thorax.
            let exclude: Vec<usize> = if set.id == skeleton::MPII16.id {
                ["pelvis", "thorax"]
                    .iter()
                    .filter_map(|n| set.index_of(n))
                    .collect()
            } else {
                Vec::new()
            };
            let total = acc.pooled(&exclude);
            (total, acc.pooled(&[]))
        }
        _ => (acc.mean_of_joints(), acc.pooled(&[])),
    };
    StageScore {
        stage,
        value,
        pooled,
        per_joint,
        coco: None,
    }
}

/// One image as COCOeval sees it at stage `t`.
pub(super) fn coco_image(
    img: &datasets::ImageAnn,
    preds: &Predictions,
    t: usize,
) -> Result<coco::CocoImage, EvalError> {
    let mut gts = Vec::with_capacity(img.people.len());
    for p in &img.people {
        gts.push(p.to_coco().ok_or_else(|| {
            EvalError::Config(format!(
                "image '{}': oks-ap needs 'bbox' and 'area' on every annotation",
                img.file_name
            ))
        })?);
    }
    let people: Vec<&Person> = match preds {
        Predictions::Free(stages) => stages
            .get(t)
            .map(|s| s.iter().collect())
            .unwrap_or_default(),
        Predictions::PerPerson(stages) => stages
            .get(t)
            .map(|s| s.iter().flatten().collect())
            .unwrap_or_default(),
    };
    // Exactly what `--predictions` writes, read as pycocotools' `loadRes` reads it: joints not
    // predicted are `0, 0`, in the OKS and in the detection's area (its keypoints' box).
    let dets = people
        .into_iter()
        .map(|p| {
            let r = crate::export::formats::coco::result(img.id, &img.file_name, p);
            coco::Detection::from_triples(&r.keypoints, r.score)
        })
        .collect();
    Ok(coco::CocoImage {
        image_id: img.id,
        gts,
        dets,
    })
}

/// A report's headline numbers: its last stage's value, per-joint scores and COCO stats.
pub(super) fn headline(
    stages: &[StageScore],
) -> (Option<f64>, Vec<JointScore>, Option<coco::CocoStats>) {
    let last = stages.last();
    (
        last.and_then(|s| s.value),
        last.map(|s| s.per_joint.clone()).unwrap_or_default(),
        last.and_then(|s| s.coco),
    )
}
