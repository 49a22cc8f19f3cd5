//! One decoding path from a stage's maps to people, for every model kind: the pipeline, the
//! evaluation and the UI all go through [`Decoding`] and [`decode`].
//!
//! Coordinates of the returned people are map pixels (pixel-index convention, see
//! [`super::maps`]); callers map them to the image with the stage's affine.

use super::associative::{self, AeCoords, AeParams};
use super::paf::{self, PafLimb, PafParams};
use super::{single, Maps, Person};

/// How a model's maps become people. Part of a model's catalogue description.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoding {
    /// Bottom-up: heatmap peaks grouped by part affinity fields (any number of people),
    /// along these limbs (their order is the assembly order).
    Paf(&'static [PafLimb]),
    /// One person per input: each joint at its channel's maximum. The person is chosen by
    /// a centre (image centre or a click) or by crops around detected people (top-down).
    SinglePerson,
    /// Bottom-up: heatmap peaks grouped into people by their associative-embedding tags
    /// (HigherHRNet: heatmaps at several resolutions, tag maps at 1/4).
    AssociativeEmbedding,
}

impl Decoding {
    /// The part-affinity-field limbs (empty for the other kinds).
    pub fn paf_limbs(self) -> &'static [PafLimb] {
        match self {
            Decoding::Paf(limbs) => limbs,
            _ => &[],
        }
    }

    /// A short name for reports: `paf`, `single-person`, `associative-embedding`.
    pub fn name(self) -> &'static str {
        match self {
            Decoding::Paf(_) => "paf",
            Decoding::SinglePerson => "single-person",
            Decoding::AssociativeEmbedding => "associative-embedding",
        }
    }
}

/// The settings of every decoder; each kind reads its own.
#[derive(Clone, Copy, Debug)]
pub struct DecodeParams<'a> {
    pub paf: &'a PafParams,
    pub ae: &'a AeParams,
    /// Single-person models: DARK (distribution-aware) sub-pixel refinement instead of the
    /// quarter offset.
    pub dark: bool,
}

/// The maps of one stage that a decoder reads (`[K, H, W]` each).
#[derive(Clone, Copy, Debug)]
pub struct StageMaps<'a> {
    pub heatmaps: &'a Maps,
    pub pafs: Option<&'a Maps>,
    /// Associative-embedding tags, resized to the heatmaps' grid (a HigherHRNet
    /// 1/2-resolution stage is grouped with the 1/4 tags).
    pub tags: Option<&'a Maps>,
}

/// Why a stage could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error(transparent)]
    Paf(#[from] paf::PafError),
    #[error("grouping by tags: {0}")]
    Associative(String),
}

/// Decodes one stage into people in map pixels, in the model's joint order (`joints` joint
/// channels come first in the heatmaps). A PAF or AE stage without its fields or tags gives
/// no people.
pub fn decode(
    decoding: Decoding,
    maps: StageMaps<'_>,
    joints: usize,
    params: &DecodeParams<'_>,
) -> Result<Vec<Person>, DecodeError> {
    Ok(match decoding {
        Decoding::SinglePerson if params.dark => vec![single::decode_dark(maps.heatmaps, joints)],
        Decoding::SinglePerson => vec![single::decode(maps.heatmaps, joints)],
        Decoding::Paf(limbs) => match maps.pafs {
            Some(pafs) => paf::decode(maps.heatmaps, pafs, joints, limbs, params.paf)?,
            None => Vec::new(),
        },
        Decoding::AssociativeEmbedding => match maps.tags {
            Some(tags) => {
                // Resized to the heatmaps' grid (the identity when they match).
                let [_, h, w] = maps.heatmaps.shape();
                let tags = super::aggregate::resize_bilinear(tags, w, h)
                    .map_err(|e| DecodeError::Associative(e.to_string()))?;
                associative::parse(maps.heatmaps, &[tags], params.ae)
                    .map_err(|e| DecodeError::Associative(e.to_string()))?
                    .to_people(AeCoords::PixelCentre)
            }
            None => Vec::new(),
        },
    })
}
