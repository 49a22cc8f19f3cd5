//! [`Inspection`]: everything one frame produced, the unit handed to exporters and the UI.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use image::RgbImage;

use crate::models::{CellField, FeatureMap, ReceptiveField, StageOutput, StepTime};
use crate::pose::associative::{AeParams, Grouping, TopK};
use crate::pose::{Affine2, Decoding, GridAlign, JointSet, Person};

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

/// A person crop of top-down mode: the box in image pixels `(x0, y0, x1, y1)` (pixel-index
/// coordinates of its corners) and the detector's score for the person.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PersonCrop {
    pub bbox: [f64; 4],
    pub score: f32,
}

/// The associative-embedding grouping of a bottom-up AE model (HigherHRNet): what
/// [`crate::pipeline::regroup`] needs to regroup with new thresholds, and every candidate
/// peak with its tag and person (the app's "tag lanes").
#[derive(Clone, Debug, PartialEq)]
pub struct AeGrouping {
    /// The parameters the grouping ran with.
    pub params: AeParams,
    /// People (official heatmap coordinates) and candidates.
    pub grouping: Grouping,
    /// NMS and top-k of the aggregated maps, kept so that new thresholds regroup without
    /// redoing them.
    pub topk: std::sync::Arc<TopK>,
    /// The stage holding the aggregated heatmaps and tags (`aggregated`).
    pub stage: usize,
    /// Aggregated-map coordinates (official, +½) → image pixels.
    pub to_image: Affine2,
}

/// Why a temporal model started a new clip at a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResetReason {
    /// The first frame of the source (or of this pipeline: a new model or settings), a
    /// still image, or a frame after a failed one.
    NewClip,
    /// A video frame that does not follow the previous one.
    Seek,
    /// The "without memory" setting: every frame is a first frame.
    WithoutMemory,
    /// Several people in the frame: each crop runs as a first frame.
    SeveralPeople,
}

/// What a temporal model's state did on a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryStatus {
    /// The state of the previous frame was fed in; it has now been carried through
    /// `frames` frames since the clip's first.
    Carried { frames: u64 },
    /// This frame was run as the first of a clip.
    Reset(ResetReason),
}

impl MemoryStatus {
    /// Whether the state after this frame may be carried to the next one.
    pub fn keeps_state(self) -> bool {
        !matches!(
            self,
            MemoryStatus::Reset(ResetReason::WithoutMemory | ResetReason::SeveralPeople)
        )
    }

    /// Frames the state has been carried through (0 on a reset).
    pub fn carried_frames(self) -> u64 {
        match self {
            MemoryStatus::Carried { frames } => frames,
            MemoryStatus::Reset(_) => 0,
        }
    }

    /// A short line for the side panel and the HUD (ASCII).
    pub fn describe(self) -> String {
        match self {
            MemoryStatus::Carried { frames: 1 } => "memory: 1 frame".into(),
            MemoryStatus::Carried { frames } => format!("memory: {frames} frames"),
            MemoryStatus::Reset(ResetReason::NewClip) => "memory: reset (new clip)".into(),
            MemoryStatus::Reset(ResetReason::Seek) => "memory: reset at seek".into(),
            MemoryStatus::Reset(ResetReason::WithoutMemory) => "without memory".into(),
            MemoryStatus::Reset(ResetReason::SeveralPeople) => {
                "memory: reset (several people)".into()
            }
        }
    }
}

/// One frame's results.
///
/// Coordinates: maps are `[K, H, W]` at each stage's output resolution; `map_to_image`
/// takes the final stage's map pixel-index coordinates `(x, y)` to original-image
/// pixel-index coordinates (integers are pixel centres), [`Inspection::stage_to_image`] any
/// stage's. `people` are already in image coordinates. In top-down mode the maps are those
/// of one person's crop (`focus`), and `image_from_input` is that crop's transform.
#[derive(Clone, Debug)]
pub struct Inspection {
    pub model_id: String,
    pub joints: &'static JointSet,
    /// How the model's maps become people (with the PAF limbs for PAF models).
    pub decoding: Decoding,
    pub frame: FrameInfo,
    pub image: Arc<RgbImage>,
    /// Network input `(width, height)`.
    pub input_size: (u32, u32),
    pub map_to_image: Affine2,
    /// Where map cells sit on the input ([`GridAlign`]): every grid's transform uses it.
    pub grid: GridAlign,
    /// Network-input pixel → image pixel.
    pub image_from_input: Affine2,
    /// Every stage's maps, stage 1 first.
    pub stages: Vec<StageOutput>,
    /// Intermediate activations the model exposes (energy maps; empty for most models),
    /// each grid spanning the network input like the stage maps.
    pub features: Vec<FeatureMap>,
    /// Theoretical receptive field of each stage's map cells, `(along x, along y)`, in
    /// network-input pixels (empty when the model does not describe its layers).
    pub receptive_fields: Vec<(ReceptiveField, ReceptiveField)>,
    /// Single-person models: the person centre given to the network, image pixels.
    pub center: Option<(f64, f64)>,
    /// Top-down mode: every person crop, and which one the maps belong to.
    pub crops: Vec<PersonCrop>,
    pub focus: Option<usize>,
    pub people: Vec<Person>,
    /// Bottom-up associative-embedding models: the grouping behind `people`.
    pub grouping: Option<AeGrouping>,
    /// Temporal models (UniPose-LSTM): whether this frame's state was carried from the
    /// previous frame, and for how long, or why it was reset. `None` for other models.
    pub memory: Option<MemoryStatus>,
    pub timings: Timings,
}

impl Inspection {
    /// The last stage (the network's final output).
    pub fn last_stage(&self) -> Option<&StageOutput> {
        self.stages.last()
    }

    /// Map pixel → image pixel for stage `stage` (0-based): its grid spans the network input
    /// (`input / map` input pixels per cell), then the input maps to the image.
    pub fn stage_to_image(&self, stage: usize) -> Affine2 {
        self.stages
            .get(stage)
            .and_then(|s| self.grid_to_image(s.heatmaps.width(), s.heatmaps.height()))
            .unwrap_or(self.map_to_image)
    }

    /// Grid pixel → image pixel for feature `feature` (0-based), the same mapping as
    /// [`Inspection::stage_to_image`] for its own grid; `None` for no such feature.
    pub fn feature_to_image(&self, feature: usize) -> Option<Affine2> {
        let f = self.features.get(feature)?;
        self.grid_to_image(f.energy.width(), f.energy.height())
    }

    /// The transform of a `width × height` grid spanning the network input.
    fn grid_to_image(&self, width: usize, height: usize) -> Option<Affine2> {
        if width == 0 || height == 0 {
            return None;
        }
        let fx = f64::from(self.input_size.0) / width as f64;
        let fy = f64::from(self.input_size.1) / height as f64;
        Some(
            self.image_from_input
                .after(&self.grid.grid_to_input(fx, fy)),
        )
    }

    /// What feature `feature`'s cell under image pixel `image_xy` sees: the cell `(x, y)` in
    /// grid pixels and its field. `None` when the pixel is outside the grid or there is no
    /// such feature.
    pub fn feature_field_at(
        &self,
        feature: usize,
        image_xy: (f64, f64),
    ) -> Option<((usize, usize), FieldAt)> {
        let f = self.features.get(feature)?;
        let to_image = self.feature_to_image(feature)?;
        let cell = cell_under(&to_image, f.energy.width(), f.energy.height(), image_xy)?;
        let field = match f.field {
            CellField::Unknown => FieldAt::Unknown,
            CellField::WholeInput => FieldAt::WholeInput,
            CellField::Local(rx, ry) => FieldAt::Rect(self.field_rect(&rx, &ry, cell)),
        };
        Some((cell, field))
    }

    /// The rectangle `(x0, y0, x1, y1)` in image pixels of the field of grid cell `cell`.
    fn field_rect(
        &self,
        rx: &ReceptiveField,
        ry: &ReceptiveField,
        (cx, cy): (usize, usize),
    ) -> [f64; 4] {
        let (ix, _, sx) = rx.cell(cx as f64, 0.0);
        let (_, iy, sy) = ry.cell(0.0, cy as f64);
        // Field edges in input pixel-index coordinates: centre ± (size − 1) / 2 spans `size`
        // pixels; the outer edges of those pixels are another half pixel out.
        let (x0, y0) = (ix - sx / 2.0, iy - sy / 2.0);
        let (x1, y1) = (ix + sx / 2.0, iy + sy / 2.0);
        let a = self.image_from_input.apply(x0, y0);
        let b = self.image_from_input.apply(x1, y1);
        [a.0.min(b.0), a.1.min(b.1), a.0.max(b.0), a.1.max(b.1)]
    }

    /// The receptive field of stage `stage`'s map cell under image pixel `image_xy`:
    /// `(cell (x, y) in map pixels, field rectangle (x0, y0, x1, y1) in image pixels)`.
    /// `None` when the pixel is outside the maps or the model has no layer description.
    pub fn receptive_field_at(
        &self,
        stage: usize,
        image_xy: (f64, f64),
    ) -> Option<((usize, usize), [f64; 4])> {
        let (rx, ry) = self.receptive_fields.get(stage)?;
        let maps = &self.stages.get(stage)?.heatmaps;
        let cell = cell_under(
            &self.stage_to_image(stage),
            maps.width(),
            maps.height(),
            image_xy,
        )?;
        Some((cell, self.field_rect(rx, ry, cell)))
    }
}

/// What a feature cell sees, in image pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FieldAt {
    /// The model does not describe the feature's layers.
    Unknown,
    /// The field rectangle `(x0, y0, x1, y1)`; it may extend beyond the image (padding).
    Rect([f64; 4]),
    /// The whole input (global pooling).
    WholeInput,
}

/// The cell of a `width × height` grid (mapped to the image by `to_image`) under image pixel
/// `image_xy`; `None` outside the grid.
fn cell_under(
    to_image: &Affine2,
    width: usize,
    height: usize,
    image_xy: (f64, f64),
) -> Option<(usize, usize)> {
    let (mx, my) = to_image.inverse()?.apply(image_xy.0, image_xy.1);
    let (cx, cy) = (mx.round(), my.round());
    if cx < 0.0 || cy < 0.0 || cx >= width as f64 || cy >= height as f64 {
        return None;
    }
    Some((cx as usize, cy as usize))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::pose::Maps;

    fn inspection(features: Vec<FeatureMap>) -> Inspection {
        Inspection {
            model_id: "t".into(),
            decoding: Decoding::SinglePerson,
            joints: &crate::pose::skeleton::LSP14,
            frame: FrameInfo {
                index: 0,
                timestamp: Duration::ZERO,
                path: None,
                output_stem: "t".into(),
                width: 736,
                height: 736,
            },
            image: Arc::new(RgbImage::new(736, 736)),
            input_size: (368, 368),
            map_to_image: Affine2::IDENTITY,
            grid: GridAlign::Centre,
            // The image is the input at twice the size.
            image_from_input: Affine2::resample(2.0, 2.0),
            stages: Vec::new(),
            features,
            receptive_fields: Vec::new(),
            center: None,
            crops: Vec::new(),
            focus: None,
            people: Vec::new(),
            grouping: None,
            memory: None,
            timings: Timings::default(),
        }
    }

    fn feature(side: usize, field: CellField) -> FeatureMap {
        FeatureMap {
            key: "k".into(),
            label: "l".into(),
            energy: Maps::zeros(1, side, side),
            channels: 4,
            field,
        }
    }

    #[test]
    fn feature_cells_map_to_the_image_with_their_fields() {
        let rf = ReceptiveField {
            size: 2411.0,
            jump: 16.0,
            start: 0.0,
        };
        let ins = inspection(vec![
            feature(23, CellField::Local(rf, rf)),
            feature(1, CellField::WholeInput),
        ]);
        // A 23×23 grid over 368 input pixels: 16 input pixels per cell; cell (2, 3) has its
        // centre at input (39.5, 55.5), image (79.5, 111.5).
        let t = ins.feature_to_image(0).unwrap();
        let (x, y) = t.apply(2.0, 3.0);
        assert!(
            (x - 79.5).abs() < 1e-9 && (y - 111.5).abs() < 1e-9,
            "{x} {y}"
        );
        let (cell, field) = ins.feature_field_at(0, (80.0, 110.0)).unwrap();
        assert_eq!(cell, (2, 3));
        // Field centre at input (32, 48) ± 2411 / 2, then ×2 (+0.5) into the image.
        let FieldAt::Rect(r) = field else {
            panic!("{field:?}")
        };
        let want = [
            (32.0 - 1205.5) * 2.0 + 0.5,
            (48.0 - 1205.5) * 2.0 + 0.5,
            (32.0 + 1205.5) * 2.0 + 0.5,
            (48.0 + 1205.5) * 2.0 + 0.5,
        ];
        for (a, b) in r.iter().zip(want) {
            assert!((a - b).abs() < 1e-9, "{r:?} vs {want:?}");
        }
        // The global branch: one cell over the whole input, which it sees whole.
        assert_eq!(
            ins.feature_field_at(1, (700.0, 20.0)),
            Some(((0, 0), FieldAt::WholeInput))
        );
        // Outside the image, or no such feature.
        assert_eq!(ins.feature_field_at(0, (-40.0, 10.0)), None);
        assert_eq!(ins.feature_field_at(2, (10.0, 10.0)), None);
    }
}
