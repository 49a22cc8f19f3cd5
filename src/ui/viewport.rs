//! The central view: the frame with its GPU overlays (heatmap, skeleton), zoom and pan,
//! the pixel probe, and the small-multiples grid of joints.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use eframe::egui;

use super::app::PosescopeApp;
use super::overlay::{self, OverlayMap};
use super::settings::{Compare, JointView, MapKind, Settings};
use crate::colormap::Colormap;
use crate::inspection::Inspection;
use crate::render::{HeatmapLayer, OverlayStyle, Scene, SkeletonLayer, VectorLayer};

/// Zoom, pan and mirroring of the main view. Zoom 1 fits the image into the panel.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ViewState {
    pub zoom: f32,
    pub pan: egui::Vec2,
    /// Shown mirrored left to right (selfie view). Only the display is mirrored: the
    /// network sees the camera's picture, so left and right joints keep their names.
    pub mirror: bool,
}

impl Default for ViewState {
    fn default() -> Self {
        Self {
            zoom: 1.0,
            pan: egui::Vec2::ZERO,
            mirror: false,
        }
    }
}

impl ViewState {
    /// Back to fitting the image, keeping the mirroring.
    pub fn fit(self) -> Self {
        Self {
            mirror: self.mirror,
            ..Self::default()
        }
    }
}

/// Where an image of `size` pixels lands inside `panel` for this view state. When the view
/// is mirrored the rect is flipped (`min.x > max.x`): the image's left edge is at `min.x`,
/// so every mapping between image and screen written as `min + rel * size` mirrors with it.
pub fn image_rect(panel: egui::Rect, size: egui::Vec2, view: &ViewState) -> egui::Rect {
    let fit = (panel.width() / size.x)
        .min(panel.height() / size.y)
        .max(1e-6);
    let scale = fit * view.zoom;
    let rect = egui::Rect::from_center_size(panel.center() + view.pan, size * scale);
    if view.mirror {
        egui::Rect::from_min_max(
            egui::pos2(rect.max.x, rect.min.y),
            egui::pos2(rect.min.x, rect.max.y),
        )
    } else {
        rect
    }
}

/// The part of an image of `size` pixels that `view_rect` shows for this view state, as
/// whole-pixel bounds `[x0, y0, x1, y1]` (the end exclusive; partly shown pixels included),
/// in the image's own (unmirrored) coordinates; `None` when none of it is on screen.
pub fn visible_region(
    view_rect: egui::Rect,
    size: egui::Vec2,
    view: &ViewState,
) -> Option<[u32; 4]> {
    let rect = image_rect(view_rect, size, view);
    let shown = egui::Rect::from_two_pos(rect.min, rect.max).intersect(view_rect);
    if !shown.is_positive() {
        return None;
    }
    // Edges in image units (0 = the image's left/top edge), whichever way it is mirrored.
    // Float error is snapped away so an exact pixel edge stays exact.
    let snap = |v: f32| {
        if (v - v.round()).abs() < 1e-3 {
            v.round()
        } else {
            v
        }
    };
    let edge = |p: egui::Pos2| {
        let e = (p - rect.min) / rect.size() * size;
        egui::vec2(snap(e.x), snap(e.y))
    };
    let (a, b) = (edge(shown.min), edge(shown.max));
    let lo = |u: f32, v: f32, n: f32| u.min(v).clamp(0.0, n).floor() as u32;
    let hi = |u: f32, v: f32, n: f32| u.max(v).clamp(0.0, n).ceil() as u32;
    let r = [
        lo(a.x, b.x, size.x),
        lo(a.y, b.y, size.y),
        hi(a.x, b.x, size.x),
        hi(a.y, b.y, size.y),
    ];
    (r[2] > r[0] && r[3] > r[1]).then_some(r)
}

fn key_of(parts: impl Hash) -> u64 {
    let mut h = DefaultHasher::new();
    parts.hash(&mut h);
    h.finish()
}

/// The scene for one view of the current inspection: the frame, the overlay of `joint`
/// (`None` = max over joints) at `stage`, the skeletons, and (main view) the receptive
/// field of the hovered cell.
pub fn scene(
    app: &mut PosescopeApp,
    stage: usize,
    joint: Option<usize>,
    with_skeleton: bool,
) -> Option<Scene> {
    let (image_key, image) = app.frame_rgba()?;
    let ins = app.inspection.clone()?;
    // The hovered cell's field: with the receptive-field option, and always in the feature
    // view (what a branch sees is the point of it).
    let hover = if with_skeleton
        && (app.settings.show_receptive_field || app.settings.map_kind == MapKind::Features)
    {
        app.hover_image_px
    } else {
        None
    };
    let mut scene = build_scene(
        &ins,
        image,
        image_key,
        stage,
        joint,
        &app.settings,
        with_skeleton,
        hover,
    );
    if let Some(layer) = target_layer(app, &ins, stage, image_key) {
        scene.heatmap = Some(layer);
    }
    Some(scene)
}

/// The failure browser's training target of its chosen joint at `stage`, when it is asked
/// for and `ins` is the browsed image: drawn in place of the heatmap, through the same layer.
fn target_layer(
    app: &PosescopeApp,
    ins: &Inspection,
    stage: usize,
    image_key: u64,
) -> Option<HeatmapLayer> {
    let f = &app.eval.failures;
    if !f.show_target || !app.settings.show_heatmap {
        return None;
    }
    let spec = f.target.as_ref()?;
    let joint = f.joint?;
    let shown = f.shown.as_ref().filter(|s| s.matches(ins))?;
    let gt = shown
        .errors()?
        .people
        .iter()
        .filter_map(|p| p.stages.first())
        .flatten()
        .find(|e| e.joint == joint)?
        .gt;
    let m = overlay::target_map(ins, stage, (gt[0], gt[1]), spec)?;
    let s = &app.settings;
    Some(HeatmapLayer {
        values: Arc::new(m.values),
        width: m.width,
        height: m.height,
        key: key_of((
            "target",
            image_key,
            stage,
            joint,
            gt[0].to_bits(),
            gt[1].to_bits(),
        )),
        map_to_image: ins.stage_to_image(stage),
        style: OverlayStyle {
            colormap: s.colormap,
            opacity: s.opacity,
            range: m.range,
            gamma: s.gamma,
        },
    })
}

/// The scene for `ins` at `stage` as the settings ask (shared by the views and the batch
/// exporter, so both draw the same thing).
#[allow(clippy::too_many_arguments)]
pub fn build_scene(
    ins: &Inspection,
    image: Arc<image::RgbaImage>,
    image_key: u64,
    stage: usize,
    joint: Option<usize>,
    s: &Settings,
    with_skeleton: bool,
    hover: Option<(f64, f64)>,
) -> Scene {
    let heatmap = if s.show_heatmap {
        overlay::overlay_map(ins, stage, joint, s).map(|m: OverlayMap| {
            let key = key_of((
                image_key,
                stage,
                joint,
                s.map_kind,
                s.feature,
                format!("{:?}{:?}", s.range_mode, s.fixed_range),
            ));
            let map_to_image = match s.map_kind {
                MapKind::Features => ins.feature_to_image(s.feature),
                _ => None,
            }
            .unwrap_or_else(|| ins.stage_to_image(stage));
            HeatmapLayer {
                values: Arc::new(m.values),
                width: m.width,
                height: m.height,
                key,
                map_to_image,
                style: OverlayStyle {
                    colormap: if m.diverging {
                        Colormap::Coolwarm
                    } else {
                        s.colormap
                    },
                    opacity: s.opacity,
                    range: m.range,
                    gamma: s.gamma,
                },
            }
        })
    } else {
        None
    };
    let skeleton = (with_skeleton && s.show_skeleton).then(|| SkeletonLayer {
        people: Arc::new(ins.people.clone()),
        joints: ins.joints,
        line_width: if s.line_width > 0.0 {
            s.line_width
        } else {
            (ins.frame.width.min(ins.frame.height) as f32 / 200.0).max(2.0)
        },
        min_score: s.min_score,
        highlight_joint: joint,
        person_colors: s.person_colors,
    });
    let mut segments = Vec::new();
    if with_skeleton {
        if s.show_pafs {
            segments.extend(overlay::paf_segments(ins, stage, s.paf_limb));
        }
        if s.show_trajectory {
            segments.extend(overlay::trajectory_segments(
                ins,
                &overlay::trajectories(ins, joint),
            ));
        }
        if s.show_skeleton {
            segments.extend(overlay::person_segments(ins));
        }
        if let Some(p) = hover {
            segments.extend(if s.map_kind == MapKind::Features {
                overlay::feature_field_segments(ins, s.feature, p)
            } else {
                overlay::receptive_segments(ins, stage, p)
            });
        }
    }
    let vectors = (!segments.is_empty()).then(|| VectorLayer {
        segments: Arc::new(segments),
        width: (ins.frame.width.min(ins.frame.height) as f32 / 320.0).max(1.0),
    });
    Scene {
        image,
        image_key,
        heatmap,
        vectors,
        skeleton,
    }
}

/// The central panel.
pub fn central(app: &mut PosescopeApp, ui: &mut egui::Ui) {
    egui::CentralPanel::default()
        .frame(egui::Frame::NONE.fill(egui::Color32::from_gray(24)))
        .show(ui, |ui| {
            let Some(ins) = app.inspection.clone() else {
                ui.centered_and_justified(|ui| {
                    ui.label(format!(
                        "{}\n\nOpen an image, a folder or a video (toolbar, or drop a file here).",
                        app.model_status()
                    ));
                });
                return;
            };
            if app.settings.joint_view == JointView::Grid {
                app.image_screen_rect = None;
                grid(app, ui);
                return;
            }
            let panel = ui.available_rect_before_wrap();
            let response = ui.allocate_rect(panel, egui::Sense::click_and_drag());
            let size = egui::vec2(ins.frame.width as f32, ins.frame.height as f32);
            // Zoom about the pointer, pan by dragging, double-click to fit.
            if response.hovered() {
                let scroll = ui.input(|i| i.smooth_scroll_delta.y);
                if scroll != 0.0 {
                    let before = image_rect(panel, size, &app.view);
                    let factor = (scroll / 200.0).exp();
                    app.view.zoom = (app.view.zoom * factor).clamp(0.1, 64.0);
                    if let Some(p) = response.hover_pos() {
                        let after = image_rect(panel, size, &app.view);
                        let rel = (p - before.min) / before.size();
                        let moved = after.min + rel * after.size();
                        app.view.pan += p - moved;
                    }
                }
            }
            // Shift+drag draws a person box; a plain drag pans.
            if response.drag_started_by(egui::PointerButton::Primary)
                && ui.input(|i| i.modifiers.shift)
            {
                app.box_drag = ui
                    .input(|i| i.pointer.press_origin())
                    .or(response.interact_pointer_pos());
            }
            if response.dragged() && app.box_drag.is_none() {
                app.view.pan += response.drag_delta();
            }
            if response.double_clicked() {
                app.view = app.view.fit();
            }
            let joint = overlay::selected_joint(app.settings.joint_view);
            let views = compare_views(app, ui, panel);
            let mut hover = None;
            let mut main_rect = None;
            for (i, (view_rect, stage)) in views.iter().enumerate() {
                let rect = image_rect(*view_rect, size, &app.view);
                if let Some(scene) = scene(app, *stage, joint, true) {
                    ui.painter().add(crate::render::egui_bridge::paint_callback(
                        if i == 0 { 0 } else { 100 + i as u64 },
                        *view_rect,
                        rect,
                        scene,
                    ));
                }
                if views.len() > 1 || app.settings.compare == Compare::Flicker {
                    stage_caption(ui, &ins, *view_rect, *stage);
                }
                if let Some(p) = response.hover_pos().filter(|p| view_rect.contains(*p)) {
                    hover = Some(screen_to_image(rect, size, p));
                    main_rect = Some(rect);
                }
            }
            app.hover_image_px = hover;
            if response.clicked() && app.single_person() {
                if let Some(p) = app.hover_image_px {
                    app.set_person_center(Some(p));
                }
            }
            app.image_screen_rect = views.first().map(|(r, _)| image_rect(*r, size, &app.view));
            app.view_rects = views.iter().map(|(r, _)| *r).collect();
            for (view_rect, _) in &views {
                let rect = image_rect(*view_rect, size, &app.view);
                draw_person_box(
                    app,
                    &ins,
                    &ui.painter().with_clip_rect(*view_rect),
                    rect,
                    size,
                );
            }
            if let Some(shown) = app
                .eval
                .failures
                .shown
                .as_ref()
                .filter(|s| app.eval.failures.show_gt && s.matches(&ins))
            {
                for (view_rect, stage) in &views {
                    let rect = image_rect(*view_rect, size, &app.view);
                    super::failures::draw_ground_truth(
                        &ui.painter().with_clip_rect(*view_rect),
                        *view_rect,
                        shown,
                        *stage,
                        app.eval.failures.joint,
                        |p| image_to_screen(rect, size, p),
                    );
                }
            }
            box_drag(app, ui, &response, &views, size);
            if let Some(rect) =
                main_rect.or_else(|| views.first().map(|(r, _)| image_rect(*r, size, &app.view)))
            {
                hover_joint_names(app, ui, rect, size);
            }
            disconnected_banner(app, ui, panel);
        });
}

/// Over the last frame of a lost camera: what happened, and that it is being looked for.
fn disconnected_banner(app: &PosescopeApp, ui: &egui::Ui, panel: egui::Rect) {
    let Some(src) = &app.source else { return };
    let Some(why) = &src.disconnected else { return };
    let secs = src.disconnected_at.map_or(0, |t| t.elapsed().as_secs());
    let text = format!("{why}\nreconnecting when it comes back… ({secs} s)");
    let galley = ui.painter().layout(
        text,
        egui::FontId::proportional(18.0),
        egui::Color32::WHITE,
        panel.width() - 40.0,
    );
    let pos = egui::pos2(panel.center().x - galley.size().x / 2.0, panel.min.y + 20.0);
    ui.painter().rect_filled(
        egui::Rect::from_min_size(pos, galley.size()).expand(8.0),
        6.0,
        egui::Color32::from_rgba_unmultiplied(140, 30, 20, 220),
    );
    ui.painter().galley(pos, galley, egui::Color32::WHITE);
    // Keep the seconds counting while nothing else repaints.
    ui.ctx()
        .request_repaint_after(std::time::Duration::from_millis(500));
}

/// Image pixel `(x, y)` (pixel centres at integers) under the screen point `p` of an image
/// drawn in `rect`.
fn screen_to_image(rect: egui::Rect, size: egui::Vec2, p: egui::Pos2) -> (f64, f64) {
    let rel = (p - rect.min) / rect.size();
    (
        f64::from(rel.x * size.x) - 0.5,
        f64::from(rel.y * size.y) - 0.5,
    )
}

/// The screen point of image pixel `(x, y)` of an image drawn in `rect`.
fn image_to_screen(rect: egui::Rect, size: egui::Vec2, (x, y): (f64, f64)) -> egui::Pos2 {
    rect.min + egui::vec2((x as f32 + 0.5) / size.x, (y as f32 + 0.5) / size.y) * rect.size()
}

/// Drags shorter than this (screen points) stay clicks.
const MIN_DRAG: f32 = 4.0;

/// The Shift+drag of a person box: the rectangle while dragging; on release the box is set
/// (box mode, the frame re-run), or a tiny drag sets the person centre as a click does.
fn box_drag(
    app: &mut PosescopeApp,
    ui: &egui::Ui,
    response: &egui::Response,
    views: &[(egui::Rect, usize)],
    size: egui::Vec2,
) {
    let Some(start) = app.box_drag else {
        return;
    };
    // The view the drag started in maps both corners.
    let Some(rect) = views
        .iter()
        .find(|(r, _)| r.contains(start))
        .or(views.first())
        .map(|(r, _)| image_rect(*r, size, &app.view))
    else {
        app.box_drag = None;
        return;
    };
    let end = response
        .interact_pointer_pos()
        .or_else(|| ui.input(|i| i.pointer.latest_pos()))
        .unwrap_or(start);
    if response.drag_stopped() {
        app.box_drag = None;
        let a = screen_to_image(rect, size, start);
        if start.distance(end) < MIN_DRAG {
            if app.single_person() {
                app.set_person_center(Some(a));
            }
        } else {
            app.set_person_box(a, screen_to_image(rect, size, end));
        }
    } else if response.dragged() {
        let stroke = egui::Stroke::new(1.5, egui::Color32::from_rgb(255, 220, 0));
        ui.painter().rect_stroke(
            egui::Rect::from_two_pos(start, end),
            0.0,
            stroke,
            egui::StrokeKind::Middle,
        );
    } else {
        // The drag ended without a release here (e.g. the window lost the pointer).
        app.box_drag = None;
    }
}

/// The dragged person box (solid) and, in box mode, the padded crop the network actually
/// saw (dashed) over the image drawn in `rect`.
fn draw_person_box(
    app: &PosescopeApp,
    ins: &Inspection,
    painter: &egui::Painter,
    rect: egui::Rect,
    size: egui::Vec2,
) {
    if !app.single_person() {
        return;
    }
    let Some(b) = app.settings.person_box else {
        return;
    };
    let boxed = app.settings.person_mode == crate::pipeline::PersonMode::Box;
    let colour = if boxed {
        egui::Color32::from_rgb(255, 220, 0)
    } else {
        egui::Color32::from_rgba_unmultiplied(255, 220, 0, 110)
    };
    let screen = |b: [f64; 4]| {
        egui::Rect::from_two_pos(
            image_to_screen(rect, size, (b[0], b[1])),
            image_to_screen(rect, size, (b[2], b[3])),
        )
    };
    painter.rect_stroke(
        screen(b),
        0.0,
        egui::Stroke::new(2.0, colour),
        egui::StrokeKind::Middle,
    );
    if !boxed {
        return;
    }
    if let [crop] = ins.crops.as_slice() {
        let r = screen(crop.bbox);
        let corners = [
            r.left_top(),
            r.right_top(),
            r.right_bottom(),
            r.left_bottom(),
            r.left_top(),
        ];
        painter.extend(egui::Shape::dashed_line(
            &corners,
            egui::Stroke::new(1.0, colour),
            6.0,
            4.0,
        ));
    }
}

/// The views of the central panel as `(rect, stage)`: one view of the selected stage, two
/// side by side (the selected stage and the comparison stage; left/right on wide panels,
/// top/bottom on tall ones), or one view flickering between the two.
fn compare_views(app: &PosescopeApp, ui: &egui::Ui, panel: egui::Rect) -> Vec<(egui::Rect, usize)> {
    let n = app.stage_count();
    let a = app.stage.min(n.saturating_sub(1));
    let b = app.settings.compare_stage.min(n.saturating_sub(1));
    match app.settings.compare {
        Compare::Off => vec![(panel, a)],
        Compare::SideBySide => {
            let (first, second) = if panel.width() >= panel.height() {
                let mid = panel.center().x;
                (
                    egui::Rect::from_min_max(panel.min, egui::pos2(mid - 1.0, panel.max.y)),
                    egui::Rect::from_min_max(egui::pos2(mid + 1.0, panel.min.y), panel.max),
                )
            } else {
                let mid = panel.center().y;
                (
                    egui::Rect::from_min_max(panel.min, egui::pos2(panel.max.x, mid - 1.0)),
                    egui::Rect::from_min_max(egui::pos2(panel.min.x, mid + 1.0), panel.max),
                )
            };
            vec![(first, a), (second, b)]
        }
        Compare::Flicker => {
            let period = app.settings.flicker_ms.clamp(50, 5000);
            let now = ui.input(|i| i.time);
            let phase = (now * 1000.0 / period as f64) as u64;
            let left = period - ((now * 1000.0) as u64 % period);
            ui.ctx()
                .request_repaint_after(std::time::Duration::from_millis(left.max(10)));
            vec![(panel, if phase.is_multiple_of(2) { a } else { b })]
        }
    }
}

/// The stage's label in the top-left corner of a view.
fn stage_caption(ui: &egui::Ui, ins: &Inspection, rect: egui::Rect, stage: usize) {
    let Some(s) = ins.stages.get(stage) else {
        return;
    };
    let text = format!(
        "{} ({}×{})",
        s.label,
        s.heatmaps.width(),
        s.heatmaps.height()
    );
    let pos = rect.min + egui::vec2(6.0, 6.0);
    let galley =
        ui.painter()
            .layout_no_wrap(text, egui::FontId::proportional(14.0), egui::Color32::WHITE);
    ui.painter().rect_filled(
        egui::Rect::from_min_size(pos, galley.size()).expand(3.0),
        3.0,
        egui::Color32::from_black_alpha(170),
    );
    ui.painter().galley(pos, galley, egui::Color32::WHITE);
}

/// Joint name and score under the pointer.
fn hover_joint_names(app: &PosescopeApp, ui: &egui::Ui, rect: egui::Rect, size: egui::Vec2) {
    let (Some(ins), Some(pointer)) = (&app.inspection, ui.ctx().pointer_hover_pos()) else {
        return;
    };
    let to_screen = |x: f32, y: f32| {
        rect.min + egui::vec2((x + 0.5) / size.x, (y + 0.5) / size.y) * rect.size()
    };
    let mut best: Option<(f32, String)> = None;
    for (pi, p) in ins.people.iter().enumerate() {
        for (j, k) in p.keypoints.iter().enumerate() {
            let Some(k) = k else { continue };
            let d = to_screen(k.x, k.y).distance(pointer);
            if d < 8.0 && best.as_ref().is_none_or(|(bd, _)| d < *bd) {
                let name = ins.joints.joints.get(j).copied().unwrap_or("?");
                best = Some((d, format!("person {}: {name} ({:.2})", pi + 1, k.score)));
            }
        }
    }
    if let Some((_, text)) = best {
        egui::Tooltip::always_open(
            ui.ctx().clone(),
            ui.layer_id(),
            egui::Id::unique("joint-hover"),
            egui::PopupAnchor::Pointer,
        )
        .show(|ui| ui.label(text));
    }
}

/// Every joint as a small view of its own.
fn grid(app: &mut PosescopeApp, ui: &mut egui::Ui) {
    let Some(ins) = app.inspection.clone() else {
        return;
    };
    let n = ins.joints.len();
    let panel = ui.available_rect_before_wrap();
    let cols = (n as f32).sqrt().ceil().max(1.0) as usize;
    let rows = n.div_ceil(cols);
    let cell = egui::vec2(panel.width() / cols as f32, panel.height() / rows as f32);
    let size = egui::vec2(ins.frame.width as f32, ins.frame.height as f32);
    for j in 0..n {
        let (r, c) = (j / cols, j % cols);
        let cell_rect = egui::Rect::from_min_size(
            panel.min + egui::vec2(c as f32 * cell.x, r as f32 * cell.y),
            cell,
        )
        .shrink(2.0);
        let label_h = 14.0;
        let view_rect =
            egui::Rect::from_min_max(cell_rect.min + egui::vec2(0.0, label_h), cell_rect.max);
        let rect = image_rect(view_rect, size, &ViewState::default());
        if let Some(scene) = scene(app, app.stage, Some(j), false) {
            ui.painter().add(crate::render::egui_bridge::paint_callback(
                1 + j as u64,
                view_rect,
                rect,
                scene,
            ));
        }
        ui.painter().text(
            cell_rect.min,
            egui::Align2::LEFT_TOP,
            ins.joints.joints.get(j).copied().unwrap_or("?"),
            egui::FontId::proportional(12.0),
            egui::Color32::LIGHT_GRAY,
        );
    }
    ui.allocate_rect(panel, egui::Sense::hover());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_visible_region_follows_zoom_pan_and_mirror() {
        // A 640×360 image in a 640×360 panel: fitted exactly, scale 1.
        let panel = egui::Rect::from_min_size(egui::pos2(100.0, 50.0), egui::vec2(640.0, 360.0));
        let size = egui::vec2(640.0, 360.0);
        let mut view = ViewState::default();
        assert_eq!(visible_region(panel, size, &view), Some([0, 0, 640, 360]));
        // Zoomed 2× about the centre: the middle half.
        view.zoom = 2.0;
        assert_eq!(
            visible_region(panel, size, &view),
            Some([160, 90, 480, 270])
        );
        // Panned right by 100 screen px = 50 image px: the view shows 50 px further left.
        view.pan = egui::vec2(100.0, 0.0);
        assert_eq!(
            visible_region(panel, size, &view),
            Some([110, 90, 430, 270])
        );
        // Mirrored: the same image pixels seen from the other side.
        view.mirror = true;
        assert_eq!(
            visible_region(panel, size, &view),
            Some([210, 90, 530, 270])
        );
        // Zoomed out: the whole image. Panned away: nothing.
        let out = ViewState {
            zoom: 0.5,
            ..ViewState::default()
        };
        assert_eq!(visible_region(panel, size, &out), Some([0, 0, 640, 360]));
        let away = ViewState {
            pan: egui::vec2(2000.0, 0.0),
            ..ViewState::default()
        };
        assert_eq!(visible_region(panel, size, &away), None);
    }
}
