//! Scoring predictions made elsewhere: `posescope eval --score FILE`.
//!
//! The file is a COCO keypoint results list (what `eval --predictions` and
//! `infer --write-coco` write, and what pycocotools' `loadRes` reads) whose keypoints are in
//! the **dataset's** joint order, image pixels: `[{"image_id", "keypoints": [x, y, c, ...],
//! "score"}, ...]`. A triple `0, 0, 0` is a joint not predicted (the convention of those
//! writers); every other triple is a prediction. Image ids are the dataset's: COCO's own ids,
//! else the image's 0-based position in the annotation file.
//!
//! The predictions then go through exactly the scoring of a model run ([`super::run_with`]):
//! for PCK/PCKh each image's predicted people are assigned to its annotated people by
//! [`super::metrics::assign_predictions`], for OKS AP every result is a detection. Joints
//! that no result in the file predicts are left out of the PCK scores, as joints a model
//! cannot predict are. This is how a reference program's output (e.g.
//! `scripts/original_pipelines/`) is scored by the same code as posescope's own.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use super::{
    checked_images, datasets, definition, headline, score_stages, threshold, Counts, Dataset,
    EvalConfig, EvalError, ImagePredictions, Predictions, Report, Settings,
};
use crate::export::formats::coco::{read_results, CocoResult};
use crate::pose::joint_map::JointMap;
use crate::pose::{Keypoint, Person};

/// The stage label of a results file's one set of predictions.
const LABEL: &str = "results file";

/// Reads the annotations and the results file and scores the results (see the module docs).
pub fn score_file(results: &Path, config: &EvalConfig) -> Result<Report, EvalError> {
    let dataset = datasets::read(&config.annotations)?;
    let list = read_results(results).map_err(EvalError::Config)?;
    score_results(&dataset, results, &list, config)
}

/// Scores `list` (read from `path`, which names it in errors and the report) on `dataset`.
pub fn score_results(
    dataset: &Dataset,
    path: &Path,
    list: &[CocoResult],
    config: &EvalConfig,
) -> Result<Report, EvalError> {
    let start = Instant::now();
    let images = checked_images(dataset, config)?;
    let (alpha, comparison) = threshold(config)?;
    let joints = dataset.joints.len();
    let name = path.display().to_string();

    // Every image of the dataset by id (a result for an image the dataset lacks is an
    // error, as in `loadRes`); only the evaluated ones (`limit`) get people.
    let in_dataset: BTreeMap<u64, ()> = dataset.images.iter().map(|i| (i.id, ())).collect();
    let slot: BTreeMap<u64, usize> = images.iter().enumerate().map(|(k, i)| (i.id, k)).collect();
    let mut people: Vec<Vec<Person>> = vec![Vec::new(); images.len()];
    let mut counted = vec![false; joints];
    for (i, r) in list.iter().enumerate() {
        if !in_dataset.contains_key(&r.image_id) {
            return Err(EvalError::Config(format!(
                "'{name}', result [{i}]: image_id {} is not in '{}'",
                r.image_id,
                dataset.path.display()
            )));
        }
        if r.keypoints.len() != 3 * joints {
            return Err(EvalError::Config(format!(
                "'{name}', result [{i}]: {} keypoint values, but '{}' has {joints} joints \
                 ({}): expected {} (x, y, c per joint, in the dataset's order)",
                r.keypoints.len(),
                dataset.path.display(),
                dataset.joints.id,
                3 * joints
            )));
        }
        if !r.keypoints.iter().all(|v| v.is_finite()) || !r.score.is_finite() {
            return Err(EvalError::Config(format!(
                "'{name}', result [{i}]: a keypoint or the score is not a finite number"
            )));
        }
        let Some(&k) = slot.get(&r.image_id) else {
            continue;
        };
        let keypoints: Vec<Option<Keypoint>> = r
            .keypoints
            .chunks_exact(3)
            .map(|t| {
                (t != [0.0, 0.0, 0.0]).then_some(Keypoint {
                    x: t[0] as f32,
                    y: t[1] as f32,
                    score: t[2] as f32,
                })
            })
            .collect();
        for (c, kp) in counted.iter_mut().zip(&keypoints) {
            *c |= kp.is_some();
        }
        people[k].push(Person {
            score: r.score as f32,
            keypoints,
        });
    }
    if !counted.iter().any(|&c| c) {
        return Err(EvalError::Config(format!(
            "'{name}' predicts no joint of the first {} images of '{}'",
            images.len(),
            dataset.path.display()
        )));
    }

    let mut counts = Counts {
        images: images.len(),
        predictions: people.iter().map(Vec::len).sum(),
        ..Counts::default()
    };
    let predictions: Vec<ImagePredictions> = images
        .iter()
        .zip(&people)
        .map(|(img, p)| ImagePredictions {
            image_id: img.id,
            file_name: img.file_name.clone(),
            people: p.clone(),
        })
        .collect();
    let evaluated: Vec<(&datasets::ImageAnn, Predictions)> = images
        .iter()
        .zip(people)
        .map(|(img, p)| (*img, Predictions::Free(vec![p])))
        .collect();
    let labels = [LABEL.to_string()];
    let (stages, per_image) = score_stages(
        dataset,
        config,
        (alpha, comparison),
        &counted,
        &evaluated,
        &labels,
        &mut counts,
    )?;
    let (overall, per_joint, coco) = headline(&stages);
    let stem = path
        .file_name()
        .map_or_else(|| name.clone(), |s| s.to_string_lossy().into_owned());
    let settings = Settings {
        model: name.clone(),
        model_id: format!("results:{stem}"),
        model_joints: dataset.joints.id.to_string(),
        decoding: LABEL.into(),
        device: "-".into(),
        metric: config.metric,
        alpha,
        norm: (config.metric == super::Metric::Pck).then_some(config.norm),
        comparison,
        person: config.person,
        box_padding: None,
        input_size: [0, 0],
        resize: "-".into(),
        filter: "-".into(),
        grid: "-".into(),
        annotations: config.annotations.display().to_string(),
        images: config.images.display().to_string(),
        format: dataset.format,
        dataset_joints: dataset.joints.id.to_string(),
        limit: config.limit,
        joint_mapping: JointMap::new(dataset.joints, dataset.joints).describe(),
    };
    Ok(Report {
        posescope_version: env!("CARGO_PKG_VERSION").to_string(),
        settings,
        counts,
        definition: definition(config.metric, alpha, config.norm),
        overall,
        per_joint,
        coco,
        stages,
        elapsed_s: start.elapsed().as_secs_f64(),
        image_ms_median: 0.0,
        predictions,
        per_image,
        // No model: no heatmap channel behind any joint.
        model_channels: vec![None; joints],
    })
}
