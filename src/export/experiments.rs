//! Files of the experiments ([`crate::experiments`]), shared by the app and the CLI.
//!
//! Intervention (`posescope intervene`), in one folder:
//! - `original.json`, `edited.json`: both runs as [`super::json`] writes a frame;
//! - `intervene.safetensors`: a maps file ([`super::maps`] layout) holding every stage of both
//!   runs, `original.stage{t}.heatmaps` and `edited.stage{t}.heatmaps` (and `.pafs`), with
//!   the edit in the metadata (`edit`, JSON);
//! - `intervention.json`: the edit, and each joint's final-stage peak before and after
//!   (image pixels) with the distance it moved;
//! - `intervene.png`: the original (left) and the edited run (right), with arrows from each
//!   joint's peak before to its peak after on the right.
//!
//! Occlusion (`posescope occlusion`):
//! - `occlusion.safetensors`: `stage{t}` `[1, rows, columns]` per stage, the drop of the
//!   joint's value at its unoccluded peak (see [`crate::experiments::occlusion`]), metadata
//!   with the joint, patch, stride, grid → image affine and each stage's peak;
//! - `occlusion.png`: one panel per stage, the drop over the image (red: the belief drops),
//!   the unoccluded peak marked.

use std::collections::HashMap;

use image::RgbImage;
use serde_json::json;

use super::{annotate, annotated_image, json, maps, png_bytes, ExportError, PngOptions};
use crate::colormap::{Colormap, OverlayStyle};
use crate::experiments::intervene::{movements, Intervention, JointMove};
use crate::experiments::occlusion::OcclusionResult;
use crate::inspection::Inspection;
use crate::pose::Maps;

/// The intervention's files, encoded: `(file name, bytes)`.
pub fn intervention_files(
    original: &Inspection,
    edited: &Inspection,
    iv: &Intervention,
) -> Result<Vec<(&'static str, Vec<u8>)>, ExportError> {
    let last = original.stages.len().saturating_sub(1);
    let moves = movements(original, edited, last);
    let edit = edit_json(original, iv);
    let mut named = maps::named_maps(original, "original.");
    named.extend(maps::named_maps(edited, "edited."));
    let mut md = maps::metadata(original);
    md.insert("edit".into(), edit.to_string());
    let summary = json!({
        "format": "posescope-intervention/1",
        "model": original.model_id,
        "edit": edit,
        "final_stage": last + 1,
        "joints": moves.iter().map(|m| move_json(original, m)).collect::<Vec<_>>(),
    });
    let summary = serde_json::to_vec_pretty(&summary)
        .map_err(|e| ExportError::Encode(format!("intervention.json: {e}")))?;
    Ok(vec![
        ("original.json", json::to_bytes(original)),
        ("edited.json", json::to_bytes(edited)),
        ("intervene.safetensors", maps::named_to_bytes(&named, md)?),
        ("intervention.json", summary),
        (
            "intervene.png",
            png_bytes(&side_by_side(original, edited, &moves)?)?,
        ),
    ])
}

fn edit_json(ins: &Inspection, iv: &Intervention) -> serde_json::Value {
    let name = |k: usize| ins.joints.joints.get(k).copied().unwrap_or("background");
    json!({
        "stage": iv.stage + 1,
        "erase": iv.erase.map(|k| json!({"channel": k, "joint": name(k)})),
        "paint": iv.paint.map(|(k, (x, y))| json!({"channel": k, "joint": name(k), "at": [x, y]})),
        "center": iv.center.map(|(x, y)| [x, y]),
    })
}

fn move_json(ins: &Inspection, m: &JointMove) -> serde_json::Value {
    json!({
        "joint": ins.joints.joints.get(m.joint).copied().unwrap_or(""),
        "from": [m.from.0, m.from.1],
        "to": [m.to.0, m.to.1],
        "moved_px": m.distance(),
        "value_from": m.value_from,
        "value_to": m.value_to,
    })
}

/// The original run (left) and the edited run (right) with the joints' movement as arrows.
pub fn side_by_side(
    original: &Inspection,
    edited: &Inspection,
    moves: &[JointMove],
) -> Result<RgbImage, ExportError> {
    let opts = PngOptions::default();
    let left = annotated_image(original, &opts)?;
    let mut right = annotated_image(edited, &opts)?;
    let width = f64::from(right.width().max(right.height())) / 200.0 + 1.0;
    for m in moves.iter().filter(|m| m.distance() >= 1.0) {
        annotate::draw_arrow(&mut right, m.from, m.to, width, [255, 255, 255]);
    }
    Ok(hstack(&[left, right]))
}

pub(crate) fn hstack(panels: &[RgbImage]) -> RgbImage {
    let gap = 4;
    let w = panels.iter().map(RgbImage::width).sum::<u32>()
        + gap * panels.len().saturating_sub(1) as u32;
    let h = panels.iter().map(RgbImage::height).max().unwrap_or(0);
    let mut out = RgbImage::from_pixel(w, h, image::Rgb([0, 0, 0]));
    let mut x = 0;
    for p in panels {
        image::imageops::replace(&mut out, p, i64::from(x), 0);
        x += p.width() + gap;
    }
    out
}

/// The occlusion result's files, encoded: `(file name, bytes)`.
pub fn occlusion_files(
    ins: &Inspection,
    result: &OcclusionResult,
) -> Result<Vec<(&'static str, Vec<u8>)>, ExportError> {
    let named: Vec<(String, &Maps)> = result
        .drops
        .iter()
        .enumerate()
        .map(|(t, m)| (format!("stage{}", t + 1), m))
        .collect();
    let p = &result.params;
    let mut md = HashMap::new();
    md.insert("format".into(), "posescope-occlusion/1".into());
    md.insert("model".into(), ins.model_id.clone());
    md.insert(
        "joint".into(),
        ins.joints
            .joints
            .get(p.joint)
            .copied()
            .unwrap_or("background")
            .to_string(),
    );
    md.insert("channel".into(), p.joint.to_string());
    md.insert("patch".into(), p.patch.to_string());
    md.insert("stride".into(), p.stride.to_string());
    md.insert(
        "grid".into(),
        format!("{}x{}", result.grid.0, result.grid.1),
    );
    md.insert(
        "cell_to_image".into(),
        serde_json::Value::from(result.cell_to_image.m.to_vec()).to_string(),
    );
    md.insert(
        "peaks".into(),
        serde_json::Value::from(
            result
                .peaks
                .iter()
                .zip(&result.stage_to_image)
                .map(|(((x, y), v), t)| {
                    let (ix, iy) = t.apply(*x as f64, *y as f64);
                    json!({"cell": [x, y], "image": [ix, iy], "value": v})
                })
                .collect::<Vec<_>>(),
        )
        .to_string(),
    );
    md.insert(
        "definition".into(),
        "drop = value of the joint's stage map at its unoccluded peak cell, unoccluded minus occluded".into(),
    );
    md.insert(
        "image_size".into(),
        format!("{}x{}", ins.frame.width, ins.frame.height),
    );
    Ok(vec![
        ("occlusion.safetensors", maps::named_to_bytes(&named, md)?),
        (
            "occlusion.png",
            png_bytes(&occlusion_panels(&ins.image, result)?)?,
        ),
    ])
}

/// One panel per stage: the drop over the image (shared range 0 … largest drop), the
/// unoccluded peak marked.
pub fn occlusion_panels(
    image: &RgbImage,
    result: &OcclusionResult,
) -> Result<RgbImage, ExportError> {
    let panels = (0..result.drops.len())
        .map(|t| occlusion_panel(image, result, t))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(hstack(&panels))
}

/// Stage `stage`'s drop over the image (range 0 … the largest drop of any stage, inferno),
/// the unoccluded peak marked in green.
pub fn occlusion_panel(
    image: &RgbImage,
    result: &OcclusionResult,
    stage: usize,
) -> Result<RgbImage, ExportError> {
    let top = result
        .drops
        .iter()
        .flat_map(|m| m.as_slice().iter().copied())
        .fold(0.0f32, f32::max)
        .max(1e-6);
    let style = OverlayStyle {
        colormap: Colormap::Inferno,
        opacity: 0.55,
        range: (0.0, top),
        gamma: 1.0,
    };
    let mut img = image.clone();
    if let Some(drop) = result.drops.get(stage) {
        annotate::blend_heatmap(
            &mut img,
            drop.as_slice(),
            drop.width(),
            drop.height(),
            &result.cell_to_image,
            &style,
        )
        .map_err(|e| ExportError::Draw(e.to_string()))?;
    }
    if let (Some(((x, y), _)), Some(to)) =
        (result.peaks.get(stage), result.stage_to_image.get(stage))
    {
        let r = f64::from(img.width().max(img.height())) / 80.0 + 2.0;
        annotate::draw_marker(&mut img, to.apply(*x as f64, *y as f64), r, [0, 255, 128]);
    }
    Ok(img)
}

/// The frame with channel `joint` of stage `stage`'s map over it and the decoded people: the
/// experiments window's panels.
pub fn joint_view(ins: &Inspection, stage: usize, joint: usize) -> Result<RgbImage, ExportError> {
    let mut img = (*ins.image).clone();
    if let Some(s) = ins.stages.get(stage) {
        if let Some(c) = s.heatmaps.channel(joint) {
            let style = OverlayStyle {
                opacity: 0.55,
                range: (0.0, c.iter().copied().fold(0.0f32, f32::max).max(0.5)),
                ..OverlayStyle::default()
            };
            annotate::blend_heatmap(
                &mut img,
                c,
                s.heatmaps.width(),
                s.heatmaps.height(),
                &ins.stage_to_image(stage),
                &style,
            )
            .map_err(|e| ExportError::Draw(e.to_string()))?;
        }
    }
    let style = annotate::SkeletonStyle::for_image(img.width(), img.height());
    annotate::draw_people(&mut img, &ins.people, ins.joints, &style);
    Ok(img)
}
