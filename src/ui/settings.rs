//! Settings that persist between runs (eframe storage), separate from GPU-owning state.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::colormap::Colormap;
use crate::models::DEFAULT_MODEL;
use crate::preprocess::{ResizeFilter, ResizeMode};

/// Which joints the heatmap overlay shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JointView {
    /// Per-pixel maximum over all joints.
    Max,
    /// One joint's map.
    Joint(usize),
    /// Every joint as a small-multiples grid.
    Grid,
}

/// How the overlay's value range is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RangeMode {
    /// The fixed range below.
    Fixed,
    /// Minimum..maximum of the map shown.
    Auto,
    /// Minimum..maximum over all stages of the selected joint(s), so stages compare.
    SharedAcrossStages,
}

/// What map is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MapKind {
    /// The stage's belief map.
    Belief,
    /// `map_t - map_{t-1}`, diverging colormap (stage 1 against zero).
    Difference,
    /// Associative-embedding tag map (HigherHRNet): the selected joint's tag, or with "max
    /// over joints" the tag of the strongest joint at each pixel; diverging colormap around
    /// the middle of the detected people's tags.
    Tags,
    /// An intermediate activation's energy (per-cell RMS over channels) at its own
    /// resolution: the feature `Settings::feature` (branches, backbone, decoder outputs).
    Features,
}

/// What "Save frame" writes of a zoomed or panned view.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SaveExtent {
    /// The whole frame at its native resolution, whatever the zoom.
    #[default]
    WholeFrame,
    /// Only the part of the frame the view shows (the zoomed-in region, still at the
    /// frame's native resolution).
    View,
}

/// Comparing two stages (e.g. HigherHRNet's 1/4 and 1/2 resolution heatmaps).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Compare {
    /// One view of the selected stage.
    #[default]
    Off,
    /// The selected stage and the comparison stage next to each other.
    SideBySide,
    /// One view alternating between the selected and the comparison stage.
    Flicker,
}

/// Everything the user chose that should survive a restart.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub model: String,
    pub device: String,
    pub input_size: (u32, u32),
    /// Cameras run at the model's live input size (faster, less accurate; "Live speed" in
    /// docs/performance.md); off: cameras use `input_size` as files do.
    pub live_size: bool,
    pub resize: ResizeMode,
    /// The resize filter (the model's own unless changed).
    pub filter: ResizeFilter,
    pub show_heatmap: bool,
    pub show_skeleton: bool,
    pub colormap: Colormap,
    pub opacity: f32,
    pub gamma: f32,
    pub range_mode: RangeMode,
    pub fixed_range: (f32, f32),
    pub joint_view: JointView,
    pub map_kind: MapKind,
    pub min_score: f32,
    pub line_width: f32,
    pub last_dir: Option<PathBuf>,
    pub show_help: bool,
    /// Frame rates and timings in the status bar.
    pub show_hud: bool,
    /// One colour per person instead of per limb.
    pub person_colors: bool,
    /// Part-affinity fields as vector glyphs (PAF models).
    pub show_pafs: bool,
    /// The limb whose field is drawn; `None` = the strongest limb at each cell.
    pub paf_limb: Option<usize>,
    /// The feature shown by [`MapKind::Features`] (index into `Inspection::features`).
    pub feature: usize,
    /// The receptive field of the map cell under the pointer, at the selected stage.
    pub show_receptive_field: bool,
    /// Each joint's peak across the stages (where the argmax moves, how it grows).
    pub show_trajectory: bool,
    /// Single-person models: whole frame (centre), top-down crops or the dragged box.
    pub person_mode: crate::pipeline::PersonMode,
    /// Single-person models in box mode: the person box dragged on the image (Shift+drag),
    /// `(x0, y0, x1, y1)` in image pixels, clamped to the image (not kept between runs:
    /// it belongs to one input; kept across the frames of a video or webcam).
    #[serde(skip)]
    pub person_box: Option<[f64; 4]>,
    /// Single-person models: the clicked person centre, image pixels (not kept between
    /// runs: it belongs to one input).
    #[serde(skip)]
    pub center: Option<(f64, f64)>,
    /// Side-by-side or flicker comparison of the selected stage with `compare_stage`.
    pub compare: Compare,
    /// The stage compared with the selected one (0-based).
    pub compare_stage: usize,
    /// Flicker period (each view is shown this long), milliseconds.
    pub flicker_ms: u64,
    /// Save frame: the whole frame or only what the zoomed view shows.
    pub save_extent: SaveExtent,
    /// Associative-embedding models (HigherHRNet): flip test, scales, grouping thresholds.
    pub ae: crate::pipeline::AeConfig,
    /// Temporal models (UniPose-LSTM): run every frame as a first frame, to compare with
    /// the single-frame model on the same frames.
    pub without_memory: bool,
}

impl Default for Settings {
    fn default() -> Self {
        // The default model's own input box, resize mode and filter.
        let (input_size, resize, filter) = crate::models::catalog::find(DEFAULT_MODEL).map_or(
            ((432, 368), ResizeMode::Stretch, ResizeFilter::CvCubic),
            |m| (m.input_size, m.resize, m.filter),
        );
        Self {
            model: DEFAULT_MODEL.to_string(),
            device: "cpu".to_string(),
            input_size,
            live_size: true,
            resize,
            filter,
            show_heatmap: true,
            show_skeleton: true,
            colormap: Colormap::Turbo,
            opacity: 0.55,
            gamma: 1.0,
            range_mode: RangeMode::Fixed,
            fixed_range: (0.0, 1.0),
            joint_view: JointView::Max,
            map_kind: MapKind::Belief,
            min_score: 0.1,
            line_width: 0.0,
            last_dir: None,
            show_help: false,
            show_hud: true,
            person_colors: false,
            show_pafs: false,
            paf_limb: None,
            feature: 0,
            show_receptive_field: false,
            show_trajectory: false,
            person_mode: crate::pipeline::PersonMode::Centre,
            center: None,
            person_box: None,
            compare: Compare::Off,
            compare_stage: 0,
            flicker_ms: 500,
            save_extent: SaveExtent::WholeFrame,
            ae: crate::pipeline::AeConfig::default(),
            without_memory: false,
        }
    }
}

/// The eframe storage key.
pub const STORAGE_KEY: &str = "posescope-settings";
