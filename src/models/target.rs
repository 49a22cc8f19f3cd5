//! The heatmap target each network family was trained with, where its training code says
//! it (the failure browser's "training target").

use super::info::ModelInfo;
use crate::pose::target::{SigmaUnit, TargetSpec};

/// The training target of `info`'s network, `None` where it is not known.
pub fn training_target(info: &ModelInfo) -> Option<TargetSpec> {
    match info.architecture.id {
        // PoseEstimationForMobile training/src/dataset.py: `CocoMetadata(..., sigma=6.0)`,
        // drawn on the augmented input (192×192) by `put_heatmap` (zero where
        // d²/2σ² > 1.0052), then resized to the map.
        "pefm-cpm" | "pefm-hourglass" => Some(TargetSpec {
            sigma: 6.0,
            unit: SigmaUnit::InputPixels,
            cutoff: Some(1.0052),
            source: "PoseEstimationForMobile dataset.py: sigma 6 input pixels",
        }),
        // deep-high-resolution-net.pytorch `JointsDataset.generate_target`: MODEL.SIGMA 2
        // heatmap pixels, drawn in the square of half-width 3σ (here: the disc of radius 3σ,
        // d²/2σ² ≤ 4.5).
        "hrnet-top-down" | "simplebaseline" => Some(TargetSpec {
            sigma: 2.0,
            unit: SigmaUnit::MapCells,
            cutoff: Some(4.5),
            source: "deep-high-resolution-net.pytorch: MODEL.SIGMA 2 map cells",
        }),
        _ => None,
    }
}
