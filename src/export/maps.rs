//! The per-frame maps file (safetensors).
//!
//! Tensors, float32, channel-first `[K, H, W]` at the network's output resolution, in the
//! model's own channel order: `{key}.heatmaps` for every stage (key `stage{t}`, 1-based, for
//! staged networks; `res0`, `res1` and `aggregated` for HigherHRNet's resolutions), and
//! `{key}.pafs` (PAF models) and `{key}.tags` (associative-embedding models) where present;
//! `features.{key}` (`[1, h, w]`, the per-cell RMS over channels at the feature's own
//! resolution, its grid spanning the network input) for every intermediate activation the
//! model exposes (e.g. `features.stage4.branch2`, `features.wasp.aspp1`), with the feature's
//! label, size and channels in the metadata entry `features` (JSON list of
//! `{key, label, channels}`). Metadata (all strings): `format` = `posescope-maps/1`, `model`,
//! `joints` (JSON list), `input_size` (`"WxH"`), `map_to_image` (JSON list of the 2×3
//! affine `[a, b, tx, c, d, ty]` from map pixel-index coordinates to image pixel-index
//! coordinates), `image_size` (`"WxH"`), `frame_index`, `timestamp_s`.

use std::collections::HashMap;

use safetensors::tensor::{Dtype, TensorView};

use super::ExportError;
use crate::inspection::Inspection;
use crate::pose::Maps;

fn le_bytes(m: &Maps) -> Vec<u8> {
    m.as_slice().iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// The metadata stored with the maps.
pub fn metadata(ins: &Inspection) -> HashMap<String, String> {
    let mut md = HashMap::new();
    md.insert("format".into(), "posescope-maps/1".into());
    md.insert("model".into(), ins.model_id.clone());
    md.insert(
        "joints".into(),
        serde_json::Value::from(ins.joints.joints.to_vec()).to_string(),
    );
    md.insert(
        "input_size".into(),
        format!("{}x{}", ins.input_size.0, ins.input_size.1),
    );
    md.insert(
        "map_to_image".into(),
        serde_json::Value::from(ins.map_to_image.m.to_vec()).to_string(),
    );
    md.insert(
        "image_size".into(),
        format!("{}x{}", ins.frame.width, ins.frame.height),
    );
    md.insert(
        "features".into(),
        serde_json::Value::from(
            ins.features
                .iter()
                .map(|f| {
                    serde_json::json!({
                        "key": f.key,
                        "label": f.label,
                        "channels": f.channels,
                    })
                })
                .collect::<Vec<_>>(),
        )
        .to_string(),
    );
    md.insert("frame_index".into(), ins.frame.index.to_string());
    md.insert(
        "timestamp_s".into(),
        ins.frame.timestamp.as_secs_f64().to_string(),
    );
    md
}

/// Every stage's maps (and features) of `ins` under their maps-file names, each prefixed by
/// `prefix` (empty for the per-frame file; `original.` / `edited.` for an intervention).
pub fn named_maps<'a>(ins: &'a Inspection, prefix: &str) -> Vec<(String, &'a Maps)> {
    let mut named: Vec<(String, &Maps)> = Vec::new();
    for s in &ins.stages {
        let key = &s.key;
        named.push((format!("{prefix}{key}.heatmaps"), &s.heatmaps));
        if let Some(p) = &s.pafs {
            named.push((format!("{prefix}{key}.pafs"), p));
        }
        if let Some(t) = &s.tags {
            named.push((format!("{prefix}{key}.tags"), t));
        }
    }
    for f in &ins.features {
        named.push((format!("{prefix}features.{}", f.key), &f.energy));
    }
    named
}

/// Serialises every stage's maps to safetensors bytes.
pub fn to_bytes(ins: &Inspection) -> Result<Vec<u8>, ExportError> {
    named_to_bytes(&named_maps(ins, ""), metadata(ins))
}

/// Serialises named `[K, H, W]` maps (float32) with `metadata` to safetensors bytes.
pub fn named_to_bytes(
    named: &[(String, &Maps)],
    metadata: HashMap<String, String>,
) -> Result<Vec<u8>, ExportError> {
    let bytes: Vec<Vec<u8>> = named.iter().map(|(_, m)| le_bytes(m)).collect();
    let views = named
        .iter()
        .zip(&bytes)
        .map(|((name, m), bytes)| {
            TensorView::new(Dtype::F32, m.shape().to_vec(), bytes)
                .map(|v| (name.clone(), v))
                .map_err(|e| ExportError::Encode(format!("maps tensor '{name}': {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    safetensors::tensor::serialize(views, Some(metadata))
        .map_err(|e| ExportError::Encode(format!("maps file: {e}")))
}
