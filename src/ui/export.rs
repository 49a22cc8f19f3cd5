//! "Save frame" and "Export stages": what the view shows, rendered by the same GPU path
//! at the frame's native resolution, plus the core's JSON and maps files. Existing files
//! are never replaced: a free name is chosen (`stem`, `stem-1`, `stem-2`, …).

use std::path::{Path, PathBuf};

use image::RgbaImage;

use super::app::PosescopeApp;
use super::overlay;
use super::settings::{Compare, JointView, SaveExtent};
use crate::export::{atomic, json, maps};
use eframe::egui;

/// A stem whose files (for every suffix) do not exist yet in `dir`.
pub fn free_stem(dir: &Path, stem: &str, suffixes: &[&str]) -> String {
    let taken = |s: &str| {
        suffixes
            .iter()
            .any(|x| dir.join(format!("{s}{x}")).exists())
    };
    if !taken(stem) {
        return stem.to_string();
    }
    (1..)
        .map(|i| format!("{stem}-{i}"))
        .find(|s| !taken(s))
        .unwrap_or_else(|| stem.to_string())
}

fn render(
    app: &mut PosescopeApp,
    joint: Option<usize>,
    skeleton: bool,
) -> Result<RgbaImage, String> {
    let scene =
        super::viewport::scene(app, app.stage, joint, skeleton).ok_or("nothing to export yet")?;
    let rs = app
        .render_state
        .clone()
        .ok_or("GPU rendering is not available in this session")?;
    crate::render::egui_bridge::export_scene(&rs, &scene).map_err(|e| e.to_string())
}

fn png(img: &RgbaImage) -> Result<Vec<u8>, String> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .map_err(|e| format!("PNG encoding: {e}"))?;
    Ok(out.into_inner())
}

/// The stage `stage` rendered as [`render`] does, the selected stage restored afterwards.
fn render_stage(
    app: &mut PosescopeApp,
    stage: usize,
    joint: Option<usize>,
    skeleton: bool,
) -> Result<RgbaImage, String> {
    let saved = app.stage;
    app.stage = stage;
    let out = render(app, joint, skeleton);
    app.stage = saved;
    out
}

/// What the central panel shows, at the frame's resolution: the joint grid (every joint's
/// view at the selected stage, laid out as on screen, the whole grid the frame's size), the
/// selected stage and the compared one side by side (left, right), or one view (also in
/// flicker mode: the selected stage). With [`SaveExtent::View`] each view is cut to the part
/// of the frame a zoomed or panned view shows (the grid is never zoomed).
pub fn render_view(app: &mut PosescopeApp) -> Result<RgbaImage, String> {
    let ins = app.inspection.clone().ok_or("nothing to export yet")?;
    if app.settings.joint_view == JointView::Grid {
        let n = ins.joints.len().max(1);
        let cols = (n as f32).sqrt().ceil().max(1.0) as u32;
        let rows = (n as u32).div_ceil(cols);
        let (w, h) = (ins.frame.width.max(1), ins.frame.height.max(1));
        let (cw, ch) = ((w / cols).max(1), (h / rows).max(1));
        let mut grid = RgbaImage::from_pixel(cw * cols, ch * rows, image::Rgba([0, 0, 0, 255]));
        for j in 0..ins.joints.len() {
            let cell = render(app, Some(j), false)?;
            let cell =
                image::imageops::resize(&cell, cw, ch, image::imageops::FilterType::Triangle);
            let (r, c) = (j as u32 / cols, j as u32 % cols);
            image::imageops::overlay(&mut grid, &cell, i64::from(c * cw), i64::from(r * ch));
        }
        return Ok(grid);
    }
    let joint = overlay::selected_joint(app.settings.joint_view);
    // "view": only the part of the frame the (first) view shows; every view of a comparison
    // has the same size, zoom and pan, so the same part.
    let region = match app.settings.save_extent {
        SaveExtent::WholeFrame => None,
        SaveExtent::View => app.view_rects().first().and_then(|r| {
            let size = egui::vec2(ins.frame.width as f32, ins.frame.height as f32);
            super::viewport::visible_region(*r, size, &app.view)
        }),
    };
    let cut = |img: RgbaImage| match region {
        Some([x0, y0, x1, y1]) => {
            image::imageops::crop_imm(&img, x0, y0, x1 - x0, y1 - y0).to_image()
        }
        None => img,
    };
    let first = cut(render(app, joint, true)?);
    if app.settings.compare != Compare::SideBySide {
        return Ok(first);
    }
    let other = app
        .settings
        .compare_stage
        .min(app.stage_count().saturating_sub(1));
    let second = cut(render_stage(app, other, joint, true)?);
    let mut both = RgbaImage::from_pixel(
        first.width() + second.width(),
        first.height().max(second.height()),
        image::Rgba([0, 0, 0, 255]),
    );
    image::imageops::overlay(&mut both, &first, 0, 0);
    image::imageops::overlay(&mut both, &second, i64::from(first.width()), 0);
    Ok(both)
}

/// Writes `<stem>.png` (the view as shown, see [`render_view`]; mirrored when the selfie
/// mirror is on), `<stem>.json` and `<stem>.maps.safetensors` (image coordinates, never
/// mirrored).
pub fn save_frame_to(app: &mut PosescopeApp, dir: &Path) -> Result<Vec<PathBuf>, String> {
    let ins = app.inspection.clone().ok_or("nothing to save yet")?;
    let mut image = render_view(app)?;
    if app.view.mirror {
        image::imageops::flip_horizontal_in_place(&mut image);
    }
    let stem_base = format!("{}_stage{}", ins.frame.output_stem, app.stage + 1);
    let suffixes = [".png", ".json", ".maps.safetensors"];
    let stem = free_stem(dir, &stem_base, &suffixes);
    let files: Vec<PathBuf> = suffixes
        .iter()
        .map(|s| dir.join(format!("{stem}{s}")))
        .collect();
    let contents = [
        png(&image)?,
        json::to_bytes(&ins),
        maps::to_bytes(&ins).map_err(|e| e.to_string())?,
    ];
    for (path, bytes) in files.iter().zip(contents) {
        atomic::write_atomic(path, &bytes, false).map_err(|e| e.to_string())?;
    }
    Ok(files)
}

/// A montage: one row per selected joint, one column per stage, each cell the view of that
/// stage and joint, scaled to `cell_width` pixels wide.
pub fn export_stages_to(
    app: &mut PosescopeApp,
    dir: &Path,
    cell_width: u32,
) -> Result<PathBuf, String> {
    let ins = app.inspection.clone().ok_or("nothing to export yet")?;
    let joints: Vec<Option<usize>> = match app.settings.joint_view {
        JointView::Max => vec![None],
        JointView::Joint(j) => vec![Some(j)],
        JointView::Grid => (0..ins.joints.len()).map(Some).collect(),
    };
    let stages = ins.stages.len();
    let saved_stage = app.stage;
    let aspect = ins.frame.height as f32 / ins.frame.width.max(1) as f32;
    let cell_h = ((cell_width as f32) * aspect).round().max(1.0) as u32;
    let mut montage = RgbaImage::from_pixel(
        cell_width * stages as u32,
        cell_h * joints.len() as u32,
        image::Rgba([0, 0, 0, 255]),
    );
    let mut result = Ok(());
    'rows: for (r, joint) in joints.iter().enumerate() {
        for t in 0..stages {
            app.stage = t;
            match render(app, *joint, false) {
                Ok(img) => {
                    let cell = image::imageops::resize(
                        &img,
                        cell_width,
                        cell_h,
                        image::imageops::FilterType::Triangle,
                    );
                    image::imageops::overlay(
                        &mut montage,
                        &cell,
                        i64::from(cell_width) * t as i64,
                        i64::from(cell_h) * r as i64,
                    );
                }
                Err(e) => {
                    result = Err(e);
                    break 'rows;
                }
            }
        }
    }
    app.stage = saved_stage;
    result?;
    let stem = free_stem(dir, &format!("{}_stages", ins.frame.output_stem), &[".png"]);
    let path = dir.join(format!("{stem}.png"));
    atomic::write_atomic(&path, &png(&montage)?, false).map_err(|e| e.to_string())?;
    Ok(path)
}

fn pick_dir(app: &PosescopeApp) -> Option<PathBuf> {
    let mut d = rfd::FileDialog::new().set_title("Export to folder");
    if let Some(dir) = app.export_dir.as_ref().or(app.settings.last_dir.as_ref()) {
        d = d.set_directory(dir);
    }
    d.pick_folder()
}

/// Whether Save frame writes the whole frame or only the zoomed view's part of it.
pub(super) fn save_extent_picker(app: &mut PosescopeApp, ui: &mut egui::Ui) {
    let text = |e: SaveExtent| match e {
        SaveExtent::WholeFrame => "whole frame",
        SaveExtent::View => "view",
    };
    egui::ComboBox::from_id_salt("save_extent")
        .width(90.0)
        .selected_text(text(app.settings.save_extent))
        .show_ui(ui, |ui| {
            for e in [SaveExtent::WholeFrame, SaveExtent::View] {
                ui.selectable_value(&mut app.settings.save_extent, e, text(e));
            }
        })
        .response
        .on_hover_text(
            "What Save frame writes when the view is zoomed or panned: the whole frame, \
             or only the part the view shows (both at the frame's own resolution)",
        );
}

pub fn save_frame_dialog(app: &mut PosescopeApp) {
    let Some(dir) = pick_dir(app) else { return };
    app.export_dir = Some(dir.clone());
    match save_frame_to(app, &dir) {
        Ok(files) => {
            let first = files
                .first()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            app.notify(format!("saved {first} (+ JSON and maps)"), false);
        }
        Err(e) => app.notify(format!("save frame: {e}"), true),
    }
}

pub fn export_stages_dialog(app: &mut PosescopeApp) {
    let Some(dir) = pick_dir(app) else { return };
    app.export_dir = Some(dir.clone());
    match export_stages_to(app, &dir, 320) {
        Ok(p) => app.notify(format!("saved {}", p.display()), false),
        Err(e) => app.notify(format!("export stages: {e}"), true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_stem_never_reuses_a_name() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(free_stem(dir.path(), "a", &[".png", ".json"]), "a");
        std::fs::write(dir.path().join("a.json"), b"x").unwrap();
        assert_eq!(free_stem(dir.path(), "a", &[".png", ".json"]), "a-1");
        std::fs::write(dir.path().join("a-1.png"), b"x").unwrap();
        assert_eq!(free_stem(dir.path(), "a", &[".png", ".json"]), "a-2");
    }
}
