//! Model against model: a second model run on the frame a first one saw, their keypoints'
//! distances and the difference of their final maps in image space ([`crate::pose::versus`]).

use std::sync::Arc;

use crate::inspection::Inspection;
use crate::pipeline::Pipeline;
use crate::pose::versus::{self, ImageGrid, KeypointDistances, PlacedMap, SharedChannel};
use crate::source::Frame;

use super::ExperimentError;

/// Two models' inspections of one frame, compared.
#[derive(Clone, Debug)]
pub struct Comparison {
    pub a: Arc<Inspection>,
    pub b: Arc<Inspection>,
    /// Joints both have a map channel for.
    pub shared: Vec<SharedChannel>,
    /// Keypoints below this score were left out of the table.
    pub min_score: f32,
    pub table: KeypointDistances,
}

/// The frame an inspection was computed on.
pub fn frame_of(ins: &Inspection) -> Frame {
    Frame {
        index: ins.frame.index,
        timestamp: ins.frame.timestamp,
        image: (*ins.image).clone(),
        path: ins.frame.path.clone(),
        output_stem: ins.frame.output_stem.clone(),
    }
}

/// Runs `b` on the frame `a` was computed on and compares the two.
pub fn run_against(
    a: Arc<Inspection>,
    b: &Pipeline,
    min_score: f32,
) -> Result<Comparison, ExperimentError> {
    let other = b.run(frame_of(&a))?;
    Comparison::new(a, Arc::new(other), min_score)
}

impl Comparison {
    /// Compares two inspections of the same frame.
    pub fn new(
        a: Arc<Inspection>,
        b: Arc<Inspection>,
        min_score: f32,
    ) -> Result<Comparison, ExperimentError> {
        if (a.frame.width, a.frame.height) != (b.frame.width, b.frame.height) {
            return Err(ExperimentError::Invalid(format!(
                "the two runs saw different frames ({}x{} and {}x{})",
                a.frame.width, a.frame.height, b.frame.width, b.frame.height
            )));
        }
        let table =
            versus::keypoint_distances(a.joints, &a.people, b.joints, &b.people, min_score)?;
        Ok(Comparison {
            shared: versus::shared_channels(a.joints, b.joints),
            a,
            b,
            min_score,
            table,
        })
    }

    /// The same comparison with another score threshold for the table.
    pub fn with_min_score(&self, min_score: f32) -> Result<Comparison, ExperimentError> {
        Comparison::new(self.a.clone(), self.b.clone(), min_score)
    }

    /// A − B of the final stage's maps of `channel` on a grid over the image with at most
    /// `max_side` cells along its longer side; with `normalize`, each map scaled to its own
    /// peak first ([`versus::map_difference`]).
    pub fn difference(
        &self,
        channel: &SharedChannel,
        max_side: u32,
        normalize: bool,
    ) -> Result<(ImageGrid, Vec<f32>), ExperimentError> {
        let grid = ImageGrid::fit(self.a.frame.width, self.a.frame.height, max_side);
        let d = versus::map_difference(
            placed(&self.a, channel.a, "A", channel.joint)?,
            placed(&self.b, channel.b, "B", channel.joint)?,
            &grid,
            normalize,
        )?;
        Ok((grid, d))
    }
}

/// Channel `k` of `ins`'s final stage, placed in the image.
fn placed<'a>(
    ins: &'a Inspection,
    k: usize,
    who: &str,
    joint: &str,
) -> Result<PlacedMap<'a>, ExperimentError> {
    let last = ins.stages.len().checked_sub(1).ok_or_else(|| {
        ExperimentError::Invalid(format!("model '{}' gave no stage", ins.model_id))
    })?;
    let m = &ins.stages[last].heatmaps;
    let values = m.channel(k).ok_or_else(|| {
        ExperimentError::Invalid(format!(
            "model {who} ('{}') has no channel {k} for '{joint}'",
            ins.model_id
        ))
    })?;
    Ok(PlacedMap {
        values,
        width: m.width(),
        height: m.height(),
        to_image: ins.stage_to_image(last),
    })
}
