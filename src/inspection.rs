//! [`Inspection`]: everything one frame produced, the unit handed to exporters and the UI.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use image::RgbImage;

use crate::models::{StageOutput, StepTime};
use crate::pose::{Affine2, JointSet, Person};

/// Where a frame came from.
#[derive(Clone, Debug, PartialEq)]
pub struct FrameInfo {
    pub index: u64,
    pub timestamp: Duration,
    pub path: Option<PathBuf>,
    /// Base name for this frame's output files.
    pub output_stem: String,
    pub width: u32,
    pub height: u32,
}

/// Wall times of one frame's processing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Timings {
    pub preprocess: Duration,
    /// Network steps (backbone, each stage), in order.
    pub steps: Vec<StepTime>,
    /// Whole network forward, including the copy of the maps to the CPU.
    pub forward: Duration,
    pub decode: Duration,
    pub total: Duration,
}

/// One frame's results.
///
/// Coordinates: maps are `[K, H, W]` at the network's output resolution; `map_to_image`
/// takes map pixel-index coordinates `(x, y)` to original-image pixel-index coordinates
/// (integers are pixel centres). `people` are already in image coordinates.
#[derive(Clone, Debug)]
pub struct Inspection {
    pub model_id: String,
    pub joints: &'static JointSet,
    pub frame: FrameInfo,
    pub image: Arc<RgbImage>,
    /// Network input `(width, height)`.
    pub input_size: (u32, u32),
    pub map_to_image: Affine2,
    /// Every stage's maps, stage 1 first.
    pub stages: Vec<StageOutput>,
    pub people: Vec<Person>,
    pub timings: Timings,
}

impl Inspection {
    /// The last stage (the network's final output).
    pub fn last_stage(&self) -> Option<&StageOutput> {
        self.stages.last()
    }
}
