//! The test-time procedure of bottom-up associative-embedding models (HigherHRNet), as the
//! official `tools/valid.py` with `lib/core/inference.py` runs it:
//!
//! 1. For every test scale `s` (largest first): the image warped, aspect preserved, to
//!    [`multi_scale_size`] (the short side to `input · s / min_scale`, the long side rounded
//!    up to a multiple of 64 at the smallest scale; `resize_align_multi_scale`).
//! 2. One forward pass (and with flip test, a second on the mirrored input):
//!    output_0's heatmaps (1/4 resolution) bilinearly upsampled to output_1's size (1/2) and
//!    averaged with output_1's; output_0's tags upsampled likewise. The mirrored pass's maps
//!    are mirrored back and their joints swapped with the flip index
//!    (`get_multi_stage_outputs`).
//! 3. Heatmaps and tags projected (bilinear) to the network input size of scale 1
//!    (`PROJECT2IMAGE`); the heatmaps of the passes averaged, then summed over the scales and
//!    divided by their number; the tags of scale 1 (or of the only scale) kept, one tag
//!    dimension per pass (`aggregate_results`).
//! 4. Grouping by [`associative::parse`] on the aggregated maps, and the keypoints taken back
//!    to the image through the inverse input affine (`get_final_preds`).
//!
//! The stages handed on are the raw maps of the scale-1 pass (`res0`: 1/4 resolution
//! heatmaps and tags; `res1`: 1/2 resolution heatmaps) and `aggregated` (the grouping's
//! heatmaps and every tag dimension at the input resolution).

use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::{Pipeline, PipelineError};
use crate::inspection::AeGrouping;
use crate::models::{Memory, StageOutput, StepTime};
use crate::pose::aggregate::{self, multi_scale_size, MultiScaleSize};
use crate::pose::associative::{self, AeCoords, AeParams};
use crate::pose::{Affine2, JointSet, Maps, Person};
use crate::preprocess::{self, Prepared};
use crate::source::Frame;

/// Test-time settings of associative-embedding models. The defaults are the official COCO
/// test configuration (`w32_512_adam_lr1e-3.yaml`): flip test on, one scale.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AeConfig {
    /// Also run the mirrored image and average (`TEST.FLIP_TEST`).
    pub flip: bool,
    /// Test scales (`TEST.SCALE_FACTOR`), e.g. `[2, 1, 0.5]`.
    pub scales: Vec<f64>,
    /// Grouping parameters.
    pub params: AeParams,
}

impl Default for AeConfig {
    fn default() -> Self {
        Self {
            flip: true,
            scales: vec![1.0],
            params: AeParams::default(),
        }
    }
}

/// What [`run`] produced.
pub(super) struct AeRun {
    /// The input of the scale-1 pass (its transform maps every stage's grid to the image).
    pub prepared: Prepared,
    /// `res0`, `res1`, `aggregated`.
    pub stages: Vec<StageOutput>,
    /// The scale-1 pass's features.
    pub features: Vec<crate::models::FeatureMap>,
    pub steps: Vec<StepTime>,
    /// People in image pixels.
    pub people: Vec<Person>,
    pub grouping: AeGrouping,
}

/// The flip index of a joint set from its names: each `left…`/`l_…` joint trades with its
/// `right…`/`r_…` twin, others stay (for COCO-17 this is the official `FLIP_CONFIG['COCO']`).
pub fn flip_index(joints: &JointSet) -> Vec<usize> {
    let twin = |name: &str| -> Option<String> {
        for (a, b) in [
            ("left", "right"),
            ("right", "left"),
            ("l_", "r_"),
            ("r_", "l_"),
        ] {
            if let Some(rest) = name.strip_prefix(a) {
                return Some(format!("{b}{rest}"));
            }
        }
        None
    };
    (0..joints.len())
        .map(|j| {
            joints
                .joints
                .get(j)
                .and_then(|n| twin(n))
                .and_then(|t| joints.index_of(&t))
                .unwrap_or(j)
        })
        .collect()
}

/// The prepared input mirrored left–right.
fn mirrored(p: &Prepared) -> Prepared {
    let w = p.width as usize;
    let mut data = p.data.clone();
    for row in data.chunks_exact_mut(w.max(1)) {
        row.reverse();
    }
    Prepared {
        data,
        width: p.width,
        height: p.height,
        image_from_input: p.image_from_input,
    }
}

fn decode_err(name: &str, what: &str, e: impl std::fmt::Display) -> PipelineError {
    PipelineError::Decode {
        frame: name.to_string(),
        message: format!("{what}: {e}"),
    }
}

/// One pass's maps: `(res0 heatmaps, res0 tags, res1 heatmaps)`.
fn pass_maps(stages: &[StageOutput], name: &str) -> Result<(Maps, Maps, Maps), PipelineError> {
    match stages {
        [res0, res1, ..] => {
            let tags = res0.tags.clone().ok_or_else(|| {
                decode_err(name, "associative embedding", "the model gave no tag maps")
            })?;
            Ok((res0.heatmaps.clone(), tags, res1.heatmaps.clone()))
        }
        _ => Err(decode_err(
            name,
            "associative embedding",
            "the model gave fewer than two resolutions",
        )),
    }
}

/// Heatmaps (output_0 upsampled and averaged with output_1) and tags (output_0's
/// upsampled) of one pass at output_1's resolution, mirrored back for a flipped pass.
fn combine(
    (h0, t0, h1): &(Maps, Maps, Maps),
    flip: Option<&[usize]>,
    name: &str,
) -> Result<(Maps, Maps), PipelineError> {
    let err = |e| decode_err(name, "aggregating resolutions", e);
    let (w, h) = (h1.width(), h1.height());
    let up = aggregate::resize_bilinear(h0, w, h).map_err(err)?;
    let mut heat = aggregate::average(&[up, h1.clone()]).map_err(err)?;
    let mut tags = aggregate::resize_bilinear(t0, w, h).map_err(err)?;
    if let Some(index) = flip {
        heat = aggregate::flip_horizontal(&heat, Some(index)).map_err(err)?;
        tags = if tags.channels() == index.len() {
            aggregate::flip_horizontal(&tags, Some(index)).map_err(err)?
        } else {
            aggregate::flip_horizontal(&tags, None).map_err(err)?
        };
    }
    Ok((heat, tags))
}

/// Stacks `[K, H, W]` tag maps into one `K·L`-channel map, dimension-major.
fn stack(tags: &[Maps]) -> Option<Maps> {
    let first = tags.first()?;
    let [k, h, w] = first.shape();
    let mut data = Vec::with_capacity(k * h * w * tags.len());
    for t in tags {
        data.extend_from_slice(t.as_slice());
    }
    Maps::new(data, k * tags.len(), h, w).ok()
}

/// The pass whose raw maps are shown: its scale, input, stages and features.
type ShownPass = (
    f64,
    Prepared,
    Vec<StageOutput>,
    Vec<crate::models::FeatureMap>,
);

/// Runs the test-time procedure on one frame (see the module docs).
pub(super) fn run(pipe: &Pipeline, frame: &Frame, name: &str) -> Result<AeRun, PipelineError> {
    let ae = &pipe.config.ae;
    let mut scales: Vec<f64> = ae
        .scales
        .iter()
        .copied()
        .filter(|s| s.is_finite() && *s > 0.0)
        .collect();
    if scales.is_empty() {
        scales.push(1.0);
    }
    scales.sort_by(|a, b| b.total_cmp(a));
    let min_scale = scales.iter().copied().fold(f64::INFINITY, f64::min);
    let (iw, ih) = frame.image.dimensions();
    let (bw, bh) = pipe.config.preprocess.size;
    let input = bw.min(bh) as usize;
    let geometry = |s: f64| -> Result<MultiScaleSize, PipelineError> {
        multi_scale_size(iw as usize, ih as usize, input, s, min_scale)
            .map_err(|e| decode_err(name, "input size", e))
    };
    let base = geometry(1.0)?;
    let joints = pipe.model.joints();
    let flip_index = flip_index(joints);

    let mut steps = Vec::new();
    let mut total_heat: Option<Maps> = None;
    let mut tag_dims: Vec<Maps> = Vec::new();
    let mut shown: Option<ShownPass> = None;
    for &s in &scales {
        let g = geometry(s)?;
        let image_from_input = g.input_affine().inverse().ok_or_else(|| {
            decode_err(
                name,
                "input transform",
                "the input affine is not invertible",
            )
        })?;
        let prepared = preprocess::prepare_affine(
            &frame.image,
            image_from_input,
            (g.size.0 as u32, g.size.1 as u32),
            pipe.config.preprocess.norm,
        )
        .map_err(|source| PipelineError::Preprocess {
            frame: name.to_string(),
            source,
        })?;
        let flipped = ae.flip.then(|| mirrored(&prepared));
        let run = pipe.run_prepared(prepared, None, Memory::Carry, name)?;
        let label = |step: &str| {
            if scales.len() > 1 {
                format!("{step} ×{s}")
            } else {
                step.to_string()
            }
        };
        steps.extend(run.steps.iter().map(|t| StepTime {
            name: label(&t.name),
            time: t.time,
        }));
        let mut passes = vec![combine(&pass_maps(&run.stages, name)?, None, name)?];
        if let Some(f) = flipped {
            let t0 = Instant::now();
            let frun = pipe.run_prepared(f, None, Memory::Carry, name)?;
            steps.push(StepTime {
                name: label("flip pass"),
                time: t0.elapsed(),
            });
            passes.push(combine(
                &pass_maps(&frun.stages, name)?,
                Some(&flip_index),
                name,
            )?);
        }
        let t0 = Instant::now();
        let err = |e| decode_err(name, "projecting to the input size", e);
        let (pw, ph) = base.size;
        let mut heats = Vec::with_capacity(passes.len());
        for (heat, tags) in &passes {
            heats.push(aggregate::resize_bilinear(heat, pw, ph).map_err(err)?);
            if s == 1.0 || scales.len() == 1 {
                tag_dims.push(aggregate::resize_bilinear(tags, pw, ph).map_err(err)?);
            }
        }
        let avg = aggregate::average(&heats).map_err(err)?;
        match &mut total_heat {
            Some(acc) => aggregate::add_assign(acc, &avg).map_err(err)?,
            None => total_heat = Some(avg),
        }
        steps.push(StepTime {
            name: label("aggregate"),
            time: t0.elapsed(),
        });
        let closer = shown
            .as_ref()
            .is_none_or(|(best, ..)| (s.ln()).abs() < best.ln().abs());
        if closer {
            shown = Some((s, run.prepared, run.stages, run.features));
        }
    }
    let (Some(mut heat), Some((_, prepared, raw, features))) = (total_heat, shown) else {
        return Err(decode_err(name, "associative embedding", "no pass ran"));
    };
    aggregate::scale_in_place(&mut heat, 1.0 / scales.len() as f32);

    let t0 = Instant::now();
    let topk = associative::TopK::from_maps(&heat, &tag_dims, &ae.params)
        .map_err(|e| decode_err(name, "grouping", e))?;
    let grouping = associative::group(&topk, &heat, &tag_dims, &ae.params)
        .map_err(|e| decode_err(name, "grouping", e))?;
    steps.push(StepTime {
        name: "group".into(),
        time: t0.elapsed(),
    });
    let to_image = base.output_to_image(base.size);
    let people = people_in_image(&grouping, &to_image);
    let mut stages = raw;
    stages.push(StageOutput {
        label: if ae.flip {
            "aggregated (1/4 upsampled + 1/2, flip test)".into()
        } else {
            "aggregated (1/4 upsampled + 1/2)".into()
        },
        key: "aggregated".into(),
        heatmaps: heat,
        pafs: None,
        tags: stack(&tag_dims),
    });
    let stage = stages.len() - 1;
    Ok(AeRun {
        prepared,
        stages,
        features,
        steps,
        people,
        grouping: AeGrouping {
            params: ae.params.clone(),
            grouping,
            topk: Arc::new(topk),
            stage,
            to_image,
        },
    })
}

/// The grouped people in image pixels: the official keypoints (pixel index + ½ + quarter
/// offset on the aggregated grid) through `to_image`, as `get_final_preds` does.
pub fn people_in_image(grouping: &associative::Grouping, to_image: &Affine2) -> Vec<Person> {
    grouping
        .to_people(AeCoords::Official)
        .iter()
        .map(|p| p.transformed(to_image))
        .collect()
}

/// Regroups an inspection's aggregated maps with new parameters (thresholds, adjust,
/// refine) without running the network again; replaces its people and grouping.
pub fn regroup(
    ins: &mut crate::inspection::Inspection,
    params: &AeParams,
) -> Result<(), associative::AeError> {
    let Some(ae) = &ins.grouping else {
        return Ok(());
    };
    let Some(stage) = ins.stages.get(ae.stage) else {
        return Ok(());
    };
    let Some(tags) = &stage.tags else {
        return Ok(());
    };
    let dims = associative::split_tag_dims(tags, stage.heatmaps.channels())?;
    // Thresholds and switches reuse the NMS and top-k; a new NMS kernel or people cap
    // redoes them.
    let topk = if ae.topk.matches(params) {
        ae.topk.clone()
    } else {
        Arc::new(associative::TopK::from_maps(
            &stage.heatmaps,
            &dims,
            params,
        )?)
    };
    let grouping = associative::group(&topk, &stage.heatmaps, &dims, params)?;
    let to_image = ae.to_image;
    ins.people = people_in_image(&grouping, &to_image);
    ins.grouping = Some(AeGrouping {
        params: params.clone(),
        grouping,
        topk,
        stage: ae.stage,
        to_image,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pose::skeleton::COCO17;

    #[test]
    fn flip_index_of_coco_is_the_official_one() {
        assert_eq!(
            flip_index(&COCO17),
            aggregate::COCO17_FLIP_INDEX.to_vec(),
            "COCO-17 flip index from the joint names"
        );
    }

    #[test]
    fn mirrored_input_reverses_rows() {
        let p = Prepared {
            data: (0..12).map(|v| v as f32).collect(),
            width: 2,
            height: 2,
            image_from_input: Affine2::scale_translate(1.0, 1.0, 0.0, 0.0),
        };
        let m = mirrored(&p);
        assert_eq!(
            m.data,
            vec![1., 0., 3., 2., 5., 4., 7., 6., 9., 8., 11., 10.]
        );
    }

    #[test]
    fn tags_stack_dimension_major() {
        let a = Maps::new(vec![1.0, 2.0], 2, 1, 1).unwrap_or_else(|_| Maps::zeros(2, 1, 1));
        let b = Maps::new(vec![3.0, 4.0], 2, 1, 1).unwrap_or_else(|_| Maps::zeros(2, 1, 1));
        let s = stack(&[a, b]).map(|m| m.into_vec());
        assert_eq!(s, Some(vec![1.0, 2.0, 3.0, 4.0]));
    }
}
