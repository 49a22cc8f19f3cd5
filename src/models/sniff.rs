//! Telling a weights file's network from its contents, for files opened by path: a
//! checkpoint by its keys (HigherHRNet in official or MMPose names, the top-down families,
//! UniPose, UniPose-LSTM, else the CPM port), a TFLite file and a Caffe model by their
//! layer names. The configuration itself (width, depth, stacks) is read from the shapes by
//! each network's loader.

use super::catalog::{self, CATALOG, DEFAULT_MODEL};
use super::info::ModelInfo;
use crate::weights::{self, TensorStore};

/// The catalogue entry for a weights file opened by path with extension `ext` (lower
/// case): `None` when the format is not one of ours.
pub fn entry_for_file(ext: Option<&str>, bytes: &[u8]) -> Option<&'static ModelInfo> {
    match ext {
        Some("pb") => catalog::find(DEFAULT_MODEL),
        Some("tflite") => Some(guess_tflite(bytes)),
        Some("caffemodel") => Some(guess_cpm_caffe(bytes)),
        _ => None,
    }
}

/// Whether files with extension `ext` (lower case) are PyTorch-side checkpoints whose
/// network is told by their keys ([`entry_for_checkpoint`]).
pub fn is_checkpoint_extension(ext: Option<&str>) -> bool {
    matches!(ext, Some("pth" | "pt" | "tar" | "bin" | "safetensors"))
}

/// The catalogue entry of a PyTorch / safetensors checkpoint by its keys. MMPose
/// checkpoints (`backbone.` / `keypoint_head.` names) get the MMPose entries, whose test-time
/// settings (RGB input for SimpleBaseline) are MMPose's.
pub fn entry_for_checkpoint(store: &TensorStore) -> Option<&'static ModelInfo> {
    let mmpose = weights::mmpose::is_mmpose(store.names());
    if let Some(info) = mmpose_only_entry(store) {
        Some(info)
    } else if higher_hrnet_keys(store) {
        higher_hrnet_entry(store, mmpose)
    } else if mmpose {
        let official: std::collections::HashMap<String, candle_core::Tensor> = store
            .names()
            .filter_map(|k| {
                let t = store.get_any(k).ok()?;
                Some((weights::mmpose::official_name(k)?.to_string(), t))
            })
            .collect();
        let official = TensorStore::new(store.file(), official);
        top_down_entry(&official).and_then(|info| catalog::find(&format!("{}-mmpose", info.id)))
    } else if let Some(info) = top_down_entry(store) {
        Some(info)
    } else if let Some(info) = unipose_entry(store) {
        Some(info)
    } else if unipose_lstm_keys(store) {
        catalog::find("unipose-lstm-penn")
    } else {
        catalog::find("cpm-lsp-pytorch")
    }
}

/// MMPose's own networks, which have no official-code counterpart: its CPM
/// (`backbone.cpm_stages.*`, `backbone.middle.*`; MPII for 16 joints, else COCO 256×192) and
/// its Hourglass-52 (`backbone.hourglass_modules.*`, COCO 256²).
fn mmpose_only_entry(store: &TensorStore) -> Option<&'static ModelInfo> {
    let any = |prefix: &str| store.names().any(|k| k.starts_with(prefix));
    if any("backbone.cpm_stages.") && any("backbone.middle.") {
        let joints = store
            .get_any("backbone.stem.9.conv.weight")
            .ok()
            .and_then(|t| t.dims().first().copied());
        return catalog::find(if joints == Some(16) {
            "cpm-mmpose-mpii-368"
        } else {
            "cpm-mmpose-coco-256x192"
        });
    }
    if any("backbone.hourglass_modules.") {
        return catalog::find("hourglass52-mmpose-coco-256");
    }
    None
}

/// Whether a checkpoint (official or MMPose names) holds a HigherHRNet: the 1/2-resolution
/// final layer and the deconvolution.
fn higher_hrnet_keys(store: &TensorStore) -> bool {
    let has = |k: &str| {
        store.contains(k) || store.contains(&format!("{}{k}", weights::mmpose::HEAD_PREFIX))
    };
    has("final_layers.1.weight") && has("deconv_layers.0.0.0.weight")
}

/// The catalogue entry closest to a HigherHRNet checkpoint: official names: W48 →
/// `higherhrnet-w48-640`, else `higherhrnet-w32-512-official`; MMPose names: W48 →
/// `higherhrnet-w48-512-mmpose`, else `higherhrnet-w32-512` (the configuration itself comes
/// from the shapes).
fn higher_hrnet_entry(store: &TensorStore, mmpose: bool) -> Option<&'static ModelInfo> {
    let key = "transition1.0.0.weight";
    let width = store
        .get_any(key)
        .or_else(|_| store.get_any(&format!("{}{key}", weights::mmpose::BACKBONE_PREFIX)))
        .ok()
        .and_then(|t| t.dims().first().copied());
    catalog::find(match (width == Some(48), mmpose) {
        (true, false) => "higherhrnet-w48-640",
        (false, false) => "higherhrnet-w32-512-official",
        (true, true) => "higherhrnet-w48-512-mmpose",
        (false, true) => "higherhrnet-w32-512",
    })
}

/// The catalogue entry of a top-down checkpoint, by its keys: `final_layer.weight` with
/// `stage4.*` → top-down HRNet (W48 → `hrnet-w48-256x192`, else `hrnet-w32-256x192`);
/// `deconv_layers.*`, `layer4.*` and `final_layer.weight` → SimpleBaseline (the entry of its
/// ResNet depth at 256×192); `hgs.*`, `features.*` and `outs.*` → Stacked Hourglass
/// (`hourglass-2stack-mpii` for two stacks, else the 8-stack entry). The configuration
/// itself comes from the shapes.
fn top_down_entry(store: &TensorStore) -> Option<&'static ModelInfo> {
    let any = |prefix: &str| store.names().any(|k| k.starts_with(prefix));
    let final_layer = store.contains("final_layer.weight");
    if final_layer && any("stage4.") {
        let width = store
            .get_any("transition1.0.0.weight")
            .ok()
            .and_then(|t| t.dims().first().copied());
        return catalog::find(if width == Some(48) {
            "hrnet-w48-256x192"
        } else {
            "hrnet-w32-256x192"
        });
    }
    if final_layer && any("deconv_layers.") && any("layer4.") {
        let blocks = |l: usize| {
            (0..)
                .take_while(|b| store.contains(&format!("layer{l}.{b}.conv1.weight")))
                .count()
        };
        let id = match (blocks(2), blocks(3)) {
            (_, 23) => "simplebaseline-res101-256x192",
            (8, _) | (_, 36) => "simplebaseline-res152-256x192",
            _ => "simplebaseline-res50-256x192",
        };
        return catalog::find(id);
    }
    if any("hgs.") && any("features.") && any("outs.") {
        let stacks = (0..)
            .take_while(|i| store.contains(&format!("outs.{i}.conv.weight")))
            .count();
        return catalog::find(if stacks == 2 {
            "hourglass-2stack-mpii"
        } else {
            "hourglass-8stack-mpii"
        });
    }
    None
}

/// Whether a checkpoint holds a single-image UniPose (the official `unipose` names:
/// `backbone.*`, `wasp.aspp1.*`, `decoder.last_conv.8.weight`; not the LSTM video model,
/// whose checkpoints add `lstm*` keys), and its catalogue entry: `unipose-mpii` for 16 joints
/// (17 maps), else `unipose-lsp`.
fn unipose_entry(store: &TensorStore) -> Option<&'static ModelInfo> {
    let any = |prefix: &str| store.names().any(|k| k.starts_with(prefix));
    if !(any("backbone.layer4.")
        && store.contains("wasp.aspp1.atrous_conv.weight")
        && store.contains("decoder.last_conv.8.weight"))
        || any("lstm")
    {
        return None;
    }
    let maps = store
        .get_any("decoder.last_conv.8.weight")
        .ok()
        .and_then(|t| t.dims().first().copied());
    catalog::find(if maps == Some(17) {
        "unipose-mpii"
    } else {
        "unipose-lsp"
    })
}

/// Whether a checkpoint holds a UniPose-LSTM (the official `uniposeLSTM.py` names: the
/// UniPose body's `backbone.*`, `wasp.*`, `decoder.*` plus `lstm_0.*`, `lstm.*` and the head
/// `conv1` … `conv5`).
fn unipose_lstm_keys(store: &TensorStore) -> bool {
    let any = |prefix: &str| store.names().any(|k| k.starts_with(prefix));
    any("backbone.layer4.")
        && store.contains("decoder.last_conv.8.weight")
        && store.contains("lstm_0.conv_g_lstm.weight")
        && store.contains("lstm.conv_gx_lstm.weight")
        && store.contains("conv5.weight")
}

/// The TFLite architecture of a file by its graph: the hourglass has `hourglass_out_*`
/// tensors, anything else is taken as the mobile CPM.
fn guess_tflite(bytes: &[u8]) -> &'static ModelInfo {
    let hourglass = bytes.windows(14).any(|w| w == b"hourglass_out_");
    let id = if hourglass {
        "pefm-hourglass"
    } else {
        "pefm-cpm"
    };
    catalog::find(id).unwrap_or(&CATALOG[0])
}

/// CPM's Caffe models by their layer names: the VGG trunk (`conv4_7_CPM`) is the MPII
/// layout, otherwise the LSP layout.
fn guess_cpm_caffe(bytes: &[u8]) -> &'static ModelInfo {
    let vgg = bytes.windows(11).any(|w| w == b"conv4_7_CPM");
    let id = if vgg { "cpm-mpii" } else { "cpm-lsp" };
    catalog::find(id).unwrap_or(&CATALOG[0])
}
