//! MMPose (0.x) HigherHRNet checkpoints under the official HigherHRNet names.
//!
//! MMPose builds HigherHRNet as `AssociativeEmbedding(backbone=HRNet,
//! keypoint_head=AEHigherResolutionHead)` (`mmpose/models/backbones/hrnet.py`,
//! `mmpose/models/heads/ae_higher_resolution_head.py`, configs
//! `configs/body/2d_kpt_sview_rgb_img/associative_embedding/coco/higherhrnet_w*_coco_*.py`).
//! Its checkpoints are mmcv `save_checkpoint` files, `{"meta": …, "state_dict": …,
//! ["optimizer": …]}`; the `state_dict` wrapper is followed by the PyTorch reader.
//!
//! Inside, the modules are the official ones under two prefixes: mmcv's `build_norm_layer`
//! names the BatchNorms `bn1`, `bn2`, `bn3` like the official code, the HRNet backbone
//! (stem, `layer1` Bottlenecks, `transition{1,2,3}`, `stage{2,3,4}` `HRModule`s with
//! `branches` and `fuse_layers`) has the official module tree, and the head's
//! `final_layers` / `deconv_layers` (a `deconv` upsample layer + BN + ReLU, then
//! `Sequential(BasicBlock)` × `num_basic_blocks`) are built the same way. So the mapping
//! is a prefix strip:
//!
//! | MMPose key | official key |
//! |---|---|
//! | `backbone.conv1.weight`, `backbone.bn1.*`, `backbone.conv2.weight`, `backbone.bn2.*` | `conv1.weight`, `bn1.*`, `conv2.weight`, `bn2.*` |
//! | `backbone.layer1.{b}.{conv1..3,bn1..3,downsample.0,downsample.1}.*` | `layer1.{b}.…` |
//! | `backbone.transition{t}.{i}.…` | `transition{t}.{i}.…` |
//! | `backbone.stage{s}.{m}.branches.{b}.{k}.{conv1,bn1,conv2,bn2}.*` | `stage{s}.{m}.branches.{b}.{k}.…` |
//! | `backbone.stage{s}.{m}.fuse_layers.{i}.{j}.…` | `stage{s}.{m}.fuse_layers.{i}.{j}.…` |
//! | `keypoint_head.final_layers.{0,1}.{weight,bias}` | `final_layers.{0,1}.{weight,bias}` |
//! | `keypoint_head.deconv_layers.0.0.0.weight` (ConvTranspose2d, `[in, out, 4, 4]`) | `deconv_layers.0.0.0.weight` |
//! | `keypoint_head.deconv_layers.0.0.1.*` (BN) | `deconv_layers.0.0.1.*` |
//! | `keypoint_head.deconv_layers.0.{1..4}.0.{conv1,bn1,conv2,bn2}.*` | `deconv_layers.0.{1..4}.0.…` |
//!
//! Tensor layouts are unchanged (both are PyTorch modules of the same types). The MMPose
//! model zoo publishes `higher_hrnet32_coco_512x512-8ae85183_20200713.pth`,
//! `higher_hrnet32_coco_640x640-a22fe938_20200712.pth` and
//! `higher_hrnet48_coco_512x512-60fedcbc_20200712.pth` under
//! `https://download.openmmlab.com/mmpose/bottom_up/`. MMPose 1.x has no HigherHRNet head.

use std::collections::HashMap;

use super::TensorStore;

/// MMPose's backbone prefix.
pub const BACKBONE_PREFIX: &str = "backbone.";
/// MMPose 0.x's head prefix.
pub const HEAD_PREFIX: &str = "keypoint_head.";

/// Whether `names` look like an MMPose bottom-up checkpoint: some keys under
/// [`BACKBONE_PREFIX`] and some under [`HEAD_PREFIX`].
pub fn is_mmpose<'a>(names: impl IntoIterator<Item = &'a str>) -> bool {
    let (mut backbone, mut head) = (false, false);
    for n in names {
        backbone |= n.starts_with(BACKBONE_PREFIX);
        head |= n.starts_with(HEAD_PREFIX);
        if backbone && head {
            return true;
        }
    }
    false
}

/// The official name of an MMPose key (the prefix removed), or `None` for a key under
/// neither prefix (e.g. a `data_preprocessor.*` buffer), which the network does not use.
pub fn official_name(mmpose_key: &str) -> Option<&str> {
    mmpose_key
        .strip_prefix(BACKBONE_PREFIX)
        .or_else(|| mmpose_key.strip_prefix(HEAD_PREFIX))
}

/// `store` under the official names if it is an MMPose checkpoint ([`is_mmpose`]); keys
/// outside the two prefixes are dropped. Any other store is returned unchanged. The file
/// name is kept for error messages.
pub fn to_official(store: TensorStore) -> TensorStore {
    if !is_mmpose(store.names()) {
        return store;
    }
    let file = store.file().to_string();
    let tensors: HashMap<String, _> = store
        .into_tensors()
        .into_iter()
        .filter_map(|(k, t)| official_name(&k).map(|n| (n.to_string(), t)))
        .collect();
    TensorStore::new(file, tensors)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    #[test]
    fn prefixes_are_detected_and_stripped() {
        let t = Tensor::zeros(1, candle_core::DType::F32, &Device::Cpu).unwrap();
        let names = [
            "backbone.conv1.weight",
            "keypoint_head.final_layers.0.bias",
            "keypoint_head.deconv_layers.0.1.0.bn2.running_var",
            "other.thing",
        ];
        let store = TensorStore::new(
            "m.pth",
            names.iter().map(|n| (n.to_string(), t.clone())).collect(),
        );
        assert!(is_mmpose(store.names()));
        let official = to_official(store);
        let mut got: Vec<&str> = official.names().collect();
        got.sort_unstable();
        assert_eq!(
            got,
            [
                "conv1.weight",
                "deconv_layers.0.1.0.bn2.running_var",
                "final_layers.0.bias"
            ]
        );
        assert_eq!(official.file(), "m.pth");
        // Official names are left alone.
        assert!(!is_mmpose(["conv1.weight", "final_layers.0.bias"]));
        assert!(!is_mmpose(["backbone.conv1.weight"]));
    }
}
