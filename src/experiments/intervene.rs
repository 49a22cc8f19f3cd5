//! Intervention: edit stage `t`'s belief maps and re-run stages `t + 1 … T` on the edit.
//!
//! A [`Session`] runs the network once on the whole frame, keeping what the later stages
//! read ([`crate::models::StageContext`]); each edit then costs only the later stages. The
//! edited run is an [`Inspection`] like any other (the edited stage's maps replaced, the later
//! stages re-run, the people decoded again from the last stage), so the views and exporters
//! take it unchanged. Edits are in image coordinates, mapped through the stage's affine into
//! its map grid ([`crate::pose::edit`]).

use candle_core::Tensor;

use super::{whole_input, ExperimentError};
use crate::inspection::Inspection;
use crate::models::{RunOptions, StageContext};
use crate::pipeline::Pipeline;
use crate::pose::decode::{self, StageMaps};
use crate::pose::{edit, Maps};
use crate::source::Frame;

/// Width of a painted peak in map cells (about the Gaussian CPM and the mobile models were
/// trained on at stride 8).
pub const PAINT_SIGMA: f64 = 1.5;

/// One intervention, as the CLI gives it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Intervention {
    /// The edited stage, 0-based.
    pub stage: usize,
    /// The channel whose map is erased (joints first, then any background channel).
    pub erase: Option<usize>,
    /// A channel and an image point `(x, y)` where a peak is painted, as high as the
    /// channel's maximum before the edit (at least 1 for an empty map).
    pub paint: Option<(usize, (f64, f64))>,
    /// Networks with a centre map (CPM): the centre moved to this image point.
    pub center: Option<(f64, f64)>,
}

/// One network run kept for edits.
#[derive(Clone, Debug)]
pub struct Session {
    pipeline: Pipeline,
    context: StageContext,
    /// The run without edits.
    pub original: Inspection,
}

impl Session {
    /// Runs `pipeline`'s network on `frame` (whole frame), keeping its stage context. An error
    /// naming the model when its stages cannot be re-run.
    pub fn start(pipeline: Pipeline, frame: Frame) -> Result<Session, ExperimentError> {
        let model = pipeline.model();
        if !model.can_resume() {
            return Err(crate::models::ModelError::NotResumable {
                id: model.id().to_string(),
                name: model.info().architecture.name.to_string(),
            }
            .into());
        }
        let whole = whole_input(&pipeline, &frame)?;
        let p = whole.prepared();
        let input = Tensor::from_slice(
            &p.data,
            (1, 3, p.height as usize, p.width as usize),
            model.device(),
        )
        .map_err(ExperimentError::tensor("the network input"))?;
        let options = RunOptions {
            center: whole.center_input(),
            ..RunOptions::default()
        };
        let (_, context) = model.run_keeping_context(&input, &options)?;
        let original = pipeline.run_ahead(frame, Some(whole))?;
        Ok(Session {
            pipeline,
            context,
            original,
        })
    }

    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// Number of stages.
    pub fn stages(&self) -> usize {
        self.original.stages.len()
    }

    fn check_stage(&self, stage: usize) -> Result<&Maps, ExperimentError> {
        self.original
            .stages
            .get(stage)
            .map(|s| &s.heatmaps)
            .ok_or_else(|| ExperimentError::Stage {
                model: self.original.model_id.clone(),
                stage: stage + 1,
                stages: self.stages(),
            })
    }

    /// Stage `iv.stage`'s maps after the intervention's erase and paint.
    pub fn edited_maps(&self, iv: &Intervention) -> Result<Maps, ExperimentError> {
        let mut maps = self.check_stage(iv.stage)?.clone();
        if let Some(k) = iv.erase {
            edit::erase(&mut maps, k)?;
        }
        if let Some((k, at)) = iv.paint {
            let peak = self
                .check_stage(iv.stage)
                .ok()
                .and_then(|m| edit::channel_max(m, k))
                .unwrap_or(1.0)
                .max(1.0);
            let cell = edit::image_to_map(&self.original.stage_to_image(iv.stage), at)?;
            edit::paint_peak(&mut maps, k, cell, PAINT_SIGMA, peak)?;
        }
        Ok(maps)
    }

    /// The run with the intervention applied.
    pub fn apply(&self, iv: &Intervention) -> Result<Inspection, ExperimentError> {
        let maps = self.edited_maps(iv)?;
        self.resume(iv.stage, maps, iv.center)
    }

    /// The run with stage `stage`'s maps replaced by `maps` (joints first) and the later
    /// stages re-run on them; `center` moves the centre map to an image point (CPM).
    pub fn resume(
        &self,
        stage: usize,
        maps: Maps,
        center: Option<(f64, f64)>,
    ) -> Result<Inspection, ExperimentError> {
        self.check_stage(stage)?;
        let model = self.pipeline.model();
        let center_input = match center {
            Some(c) => Some(
                self.original
                    .image_from_input
                    .inverse()
                    .map(|inv| inv.apply(c.0, c.1))
                    .ok_or_else(|| {
                        ExperimentError::Invalid("the input transform cannot be inverted".into())
                    })?,
            ),
            None => None,
        };
        let later = model.resume_from(&self.context, stage, &maps, center_input)?;
        let mut ins = self.original.clone();
        if let Some(s) = ins.stages.get_mut(stage) {
            s.heatmaps = maps;
        }
        for s in later {
            if let Some(slot) = ins.stages.iter_mut().find(|o| o.key == s.key) {
                *slot = s;
            }
        }
        if center.is_some() {
            ins.center = center;
        }
        ins.people = self.decode(&ins)?;
        Ok(ins)
    }

    /// The people of `ins`'s last stage, in image pixels (the pipeline's decoder).
    fn decode(&self, ins: &Inspection) -> Result<Vec<crate::pose::Person>, ExperimentError> {
        let Some(last) = ins.stages.last() else {
            return Ok(Vec::new());
        };
        let people = decode::decode(
            ins.decoding,
            StageMaps {
                heatmaps: &last.heatmaps,
                pafs: last.pafs.as_ref(),
                tags: last.tags.as_ref(),
            },
            ins.joints.len(),
            &self.pipeline.decode_params(),
        )
        .map_err(|e| ExperimentError::Invalid(format!("decoding the edited run: {e}")))?;
        Ok(people
            .iter()
            .map(|p| p.transformed(&ins.map_to_image))
            .collect())
    }
}

/// Where one joint's peak moved between two runs, at one stage.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct JointMove {
    pub joint: usize,
    /// The peak (argmax cell) before and after, in image pixels.
    pub from: (f64, f64),
    pub to: (f64, f64),
    /// The peak value before and after.
    pub value_from: f32,
    pub value_to: f32,
}

impl JointMove {
    /// How far the peak moved, image pixels.
    pub fn distance(&self) -> f64 {
        (self.to.0 - self.from.0).hypot(self.to.1 - self.from.1)
    }
}

/// Every joint's peak at `stage` in `before` and `after` (the argmax of its map, mapped to
/// the image): the movement the edit caused, for any decoding.
pub fn movements(before: &Inspection, after: &Inspection, stage: usize) -> Vec<JointMove> {
    let (Some(a), Some(b)) = (before.stages.get(stage), after.stages.get(stage)) else {
        return Vec::new();
    };
    let (ta, tb) = (before.stage_to_image(stage), after.stage_to_image(stage));
    (0..before.joints.len())
        .filter_map(|j| {
            let (pa, pb) = (edit::argmax(&a.heatmaps, j)?, edit::argmax(&b.heatmaps, j)?);
            Some(JointMove {
                joint: j,
                from: ta.apply(pa.0 as f64, pa.1 as f64),
                to: tb.apply(pb.0 as f64, pb.1 as f64),
                value_from: a.heatmaps.get(j, pa.1, pa.0)?,
                value_to: b.heatmaps.get(j, pb.1, pb.0)?,
            })
        })
        .collect()
}

/// The largest absolute difference between two runs' maps from stage `from` on (for the
/// reproduction check: resuming on unedited maps gives the original later stages).
pub fn max_abs_difference(a: &Inspection, b: &Inspection, from: usize) -> f32 {
    a.stages
        .iter()
        .zip(&b.stages)
        .skip(from)
        .flat_map(|(x, y)| {
            x.heatmaps
                .as_slice()
                .iter()
                .zip(y.heatmaps.as_slice())
                .map(|(p, q)| (p - q).abs())
        })
        .fold(0.0, f32::max)
}
