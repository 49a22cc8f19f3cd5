//! Toolbar, side panel (model, overlay, stages, joints, probe) and status bar with the HUD.

use std::time::Instant;

use eframe::egui;

use super::app::PosescopeApp;
use super::overlay;
use super::settings::{JointView, MapKind, RangeMode};
use crate::colormap::Colormap;
use crate::inspection::FieldAt;
use crate::models::CATALOG;
use crate::player::{PlayerCommand, PlayerInput};
use crate::preprocess::{ResizeFilter, ResizeMode};

/// Open-file dialogs (native, via the XDG portal on Linux).
fn pick_file(app: &PosescopeApp) -> Option<std::path::PathBuf> {
    let mut d = rfd::FileDialog::new()
        .add_filter(
            "images and videos",
            &[
                "png", "jpg", "jpeg", "bmp", "tif", "tiff", "webp", "gif", "mp4", "mov", "avi",
                "mkv", "webm",
            ],
        )
        .add_filter("all files", &["*"]);
    if let Some(dir) = &app.settings.last_dir {
        d = d.set_directory(dir);
    }
    d.pick_file()
}

pub fn top_bar(app: &mut PosescopeApp, ui: &mut egui::Ui) {
    // Two rows: the input and its player (the description takes what is left, truncated),
    // then what to do with the result. Fixed rows keep every button whole at any width.
    egui::Panel::top("toolbar").show(ui, |ui| {
        ui.horizontal(|ui| {
            if ui
                .button("Open…")
                .on_hover_text("Open an image or a video (O)")
                .clicked()
            {
                open_file_dialog(app);
            }
            if ui
                .button("Folder…")
                .on_hover_text("Open a folder of images")
                .clicked()
            {
                let mut d = rfd::FileDialog::new();
                if let Some(dir) = &app.settings.last_dir {
                    d = d.set_directory(dir);
                }
                if let Some(p) = d.pick_folder() {
                    app.open_input(PlayerInput::Path(p));
                }
            }
            ui.menu_button("Sample", |ui| {
                if ui
                    .button("Sample clip")
                    .on_hover_text("The bundled clip: two people, 4 s (press Play)")
                    .clicked()
                {
                    app.open_input(PlayerInput::SampleClip);
                    ui.close();
                }
                if ui
                    .button("Sample photo")
                    .on_hover_text("The bundled photo: two people, full body")
                    .clicked()
                {
                    app.open_input(PlayerInput::Sample);
                    ui.close();
                }
            });
            camera_menu(app, ui);
            ui.separator();
            player_controls(app, ui);
        });
        ui.horizontal(|ui| {
            if ui
                .button("Save frame")
                .on_hover_text("Save what the view shows, plus JSON and maps (Ctrl+S)")
                .clicked()
            {
                super::export::save_frame_dialog(app);
            }
            super::export::save_extent_picker(app, ui);
            if ui
                .button("Export stages")
                .on_hover_text("A montage PNG: stages × joints")
                .clicked()
            {
                super::export::export_stages_dialog(app);
            }
            batch_controls(app, ui);
            if ui
                .button("Evaluate…")
                .on_hover_text(
                    "Accuracy of the current model on an annotated dataset: PCK, PCKh or COCO \
                     AP, per stage and per joint (Ctrl+E)",
                )
                .clicked()
            {
                app.eval.open = !app.eval.open;
            }
            if ui
                .button("Experiments…")
                .on_hover_text(
                    "Edit a stage's belief maps and re-run the later stages; occlusion \
                     sensitivity per stage",
                )
                .clicked()
            {
                app.experiments.open = !app.experiments.open;
            }
            if ui.button("Versus…").on_hover_text("A second model on the same frame: side by side, difference of maps, keypoint distances").clicked() {
                app.versus.open = !app.versus.open;
            }
            if ui.button("Jitter…").on_hover_text("Per-stage jitter of each joint over the open video").clicked() {
                app.jitter.open = !app.jitter.open;
            }
            ui.separator();
            if ui.button("Help").on_hover_text("Shortcuts (F1)").clicked() {
                app.settings.show_help = !app.settings.show_help;
            }
        });
    });
}

fn batch_controls(app: &mut PosescopeApp, ui: &mut egui::Ui) {
    if let Some(job) = &app.batch {
        let done = job.done.load(std::sync::atomic::Ordering::Relaxed);
        let progress = job.total.map_or(0.0, |t| done as f32 / t.max(1) as f32);
        ui.add(
            egui::ProgressBar::new(progress)
                .desired_width(160.0)
                .text(match job.total {
                    Some(t) => format!("exporting {done}/{t}"),
                    None => format!("exporting {done}"),
                }),
        );
        if ui.button("Cancel").clicked() {
            job.cancel();
        }
        return;
    }
    let multi = app
        .source
        .as_ref()
        .is_some_and(|s| s.frames.is_none_or(|n| n > 1));
    ui.add_enabled_ui(multi && app.input_path.is_some(), |ui| {
        ui.menu_button("Export all…", |ui| {
            for (label, video) in [
                ("frames (PNG, JSON, maps)", false),
                ("frames + annotated video (MP4)", true),
            ] {
                if ui.button(label).clicked() {
                    ui.close();
                    let mut d = rfd::FileDialog::new().set_title("Export into folder");
                    if let Some(dir) = app.export_dir.as_ref().or(app.settings.last_dir.as_ref()) {
                        d = d.set_directory(dir);
                    }
                    if let Some(dir) = d.pick_folder() {
                        app.export_dir = Some(dir.clone());
                        if let Err(e) = app.start_batch(dir, video) {
                            app.notify(format!("export: {e}"), true);
                        }
                    }
                }
            }
        });
    });
}

pub(super) fn open_file_dialog(app: &mut PosescopeApp) {
    if let Some(p) = pick_file(app) {
        app.open_input(PlayerInput::Path(p));
    }
}

fn camera_menu(app: &mut PosescopeApp, ui: &mut egui::Ui) {
    if let Some(action) = app.camera_menu.ui(ui, app.view.mirror) {
        app.camera_action(action);
    }
}

fn player_controls(app: &mut PosescopeApp, ui: &mut egui::Ui) {
    let Some(src) = app.source.clone() else {
        ui.label("no input");
        return;
    };
    let multi = src.frames.is_none_or(|n| n > 1);
    ui.add_enabled_ui(multi, |ui| {
        if ui
            .button("|<")
            .on_hover_text("Previous frame (,)")
            .clicked()
        {
            app.player_command(PlayerCommand::Step(-1));
        }
        let label = if src.playing { "Pause" } else { "Play" };
        if ui
            .button(label)
            .on_hover_text("Play / pause (Space)")
            .clicked()
        {
            app.player_command(if src.playing {
                PlayerCommand::Pause
            } else {
                PlayerCommand::Play
            });
        }
        if ui.button(">|").on_hover_text("Next frame (.)").clicked() {
            app.player_command(PlayerCommand::Step(1));
        }
        if let Some(n) = src.frames.filter(|n| *n > 1) {
            let mut pos = src.position;
            let r = ui.add(egui::Slider::new(&mut pos, 0..=n - 1).text("frame"));
            if r.drag_stopped() || (r.changed() && !r.dragged()) {
                app.player_command(PlayerCommand::Seek(pos));
            }
        }
    });
    ui.add(egui::Label::new(&src.description).truncate())
        .on_hover_text(&src.description);
}

pub fn side_panel(app: &mut PosescopeApp, ui: &mut egui::Ui) {
    egui::Panel::left("controls")
        .resizable(true)
        .default_size(280.0)
        .show(ui, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| {
                model_section(app, ui);
                ui.separator();
                stage_section(app, ui);
                ui.separator();
                if app.associative() {
                    let ins = app.inspection.clone();
                    let action = super::ae_panel::ae_section(
                        ui,
                        &mut app.settings.ae,
                        ins.as_deref(),
                        app.settings.person_colors,
                    );
                    match action {
                        super::ae_panel::AeAction::Rerun => app.rebuild_worker(),
                        super::ae_panel::AeAction::Regroup => app.regroup(),
                        super::ae_panel::AeAction::None => {}
                    }
                    ui.separator();
                }
                if app.single_person() {
                    person_section(app, ui);
                    ui.separator();
                }
                if app.temporal() {
                    memory_section(app, ui);
                    ui.separator();
                }
                cpm_section(app, ui);
                ui.separator();
                overlay_section(app, ui);
                ui.separator();
                probe_section(app, ui);
            });
        });
}

fn model_section(app: &mut PosescopeApp, ui: &mut egui::Ui) {
    ui.heading("Model");
    let mut changed_model = false;
    let mut chosen = None;
    egui::ComboBox::from_label("model")
        .selected_text(app.settings.model.clone())
        .show_ui(ui, |ui| {
            for m in CATALOG {
                let present = m.locate().is_some();
                let text = if present {
                    m.id.to_string()
                } else {
                    format!("{} (weights not present)", m.id)
                };
                if ui
                    .selectable_label(app.settings.model == m.id, text)
                    .on_hover_text(format!(
                        "{}\n{}\n{}",
                        m.architecture.name(),
                        m.source,
                        m.licence
                    ))
                    .clicked()
                {
                    chosen = Some(m.id.to_string());
                }
            }
        });
    // A catalogue model whose weights are absent: offer the published download.
    if let Some(info) = crate::models::catalog::find(&app.settings.model)
        .filter(|m| app.download.running() || m.locate().is_none())
    {
        let ctx = app.context();
        if let Some(super::download::DownloadEvent::Ready(id)) =
            app.download.ui(ui, info, move || ctx.request_repaint())
        {
            if id == info.id {
                app.notify(format!("weights of '{id}' downloaded and verified"), false);
                changed_model = true;
            }
        }
    }
    if ui.button("Open weights…").clicked() {
        if let Some(p) = rfd::FileDialog::new()
            .add_filter(
                "weights (TensorFlow .pb, TFLite, Caffe, PyTorch, safetensors)",
                &[
                    "pb",
                    "tflite",
                    "caffemodel",
                    "pth",
                    "pt",
                    "tar",
                    "safetensors",
                ],
            )
            .add_filter("all files", &["*"])
            .pick_file()
        {
            chosen = Some(p.display().to_string());
        }
    }
    egui::ComboBox::from_label("device")
        .selected_text(app.settings.device.clone())
        .show_ui(ui, |ui| {
            for d in crate::device::DeviceSpec::compiled() {
                if ui.selectable_label(app.settings.device == d, d).clicked() {
                    app.settings.device = d.to_string();
                    changed_model = true;
                }
            }
        });
    let mut changed_pre = false;
    ui.horizontal(|ui| {
        ui.label("Input");
        let (mut w, mut h) = app.settings.input_size;
        let rw = ui.add(
            egui::DragValue::new(&mut w)
                .range(64..=2048)
                .speed(8)
                .prefix("w "),
        );
        let rh = ui.add(
            egui::DragValue::new(&mut h)
                .range(64..=2048)
                .speed(8)
                .prefix("h "),
        );
        app.settings.input_size = (w, h);
        // Re-run once the value settles (not on every drag step).
        let settled = |r: &egui::Response| r.drag_stopped() || (r.changed() && !r.dragged());
        changed_pre |= settled(&rw) || settled(&rh);
    });
    if let Some(((lw, lh), mode)) = app
        .model()
        .map(|m| crate::models::catalog::live_input(m.info()))
    {
        let live_differs = (lw, lh) != app.settings.input_size || mode != app.settings.resize;
        if live_differs || app.is_live() {
            changed_pre |= ui
                .checkbox(
                    &mut app.settings.live_size,
                    format!("cameras at the live size {lw}×{lh} ({})", mode.name()),
                )
                .on_hover_text(
                    "Faster, so the live view keeps up; it costs accuracy (docs/performance.md: Live speed). \
                     Files always run at the input size above.",
                )
                .changed();
        }
    }
    ui.horizontal(|ui| {
        for mode in [ResizeMode::Fit, ResizeMode::Letterbox, ResizeMode::Stretch] {
            changed_pre |= ui
                .radio_value(&mut app.settings.resize, mode, mode.name())
                .changed();
        }
    });
    ui.horizontal(|ui| {
        for f in [ResizeFilter::Antialiased, ResizeFilter::CvCubic] {
            changed_pre |= ui
                .radio_value(&mut app.settings.filter, f, f.name())
                .on_hover_text(f.describe())
                .changed();
        }
        ui.label("filter");
    });
    ui.label(app.model_status());
    if let Some(name) = chosen {
        app.choose_model(name);
    } else if changed_model {
        app.load_model();
    } else if changed_pre {
        app.rebuild_worker();
    }
}

fn stage_section(app: &mut PosescopeApp, ui: &mut egui::Ui) {
    ui.heading("Stages");
    let n = app.stage_count();
    if n == 0 {
        ui.label("—");
        return;
    }
    ui.horizontal(|ui| {
        let mut t = app.stage.min(n - 1) + 1;
        ui.add(egui::Slider::new(&mut t, 1..=n).text("stage"))
            .on_hover_text("Left / Right arrow keys step through the stages");
        app.stage = t - 1;
        if let Some(label) = app
            .inspection
            .as_ref()
            .and_then(|i| i.stages.get(app.stage))
            .map(|s| {
                format!(
                    "{} ({}×{})",
                    s.label,
                    s.heatmaps.width(),
                    s.heatmaps.height()
                )
            })
        {
            ui.label(label);
        }
        let playing = app.stage_play.is_some();
        if ui
            .button(if playing { "Stop" } else { "Play" })
            .on_hover_text("Play through the stages (P)")
            .clicked()
        {
            app.stage_play = if playing { None } else { Some(Instant::now()) };
        }
    });
    let has_tags = app
        .inspection
        .as_ref()
        .is_some_and(|i| i.stages.iter().any(|s| s.tags.is_some()));
    let has_features = app
        .inspection
        .as_ref()
        .is_some_and(|i| !i.features.is_empty());
    ui.horizontal(|ui| {
        ui.radio_value(&mut app.settings.map_kind, MapKind::Belief, "belief map");
        ui.radio_value(
            &mut app.settings.map_kind,
            MapKind::Difference,
            "stage difference",
        )
        .on_hover_text("map(t) − map(t−1), diverging colours (D)");
        if has_tags {
            ui.radio_value(&mut app.settings.map_kind, MapKind::Tags, "tag map")
                .on_hover_text(
                    "Associative-embedding tags (E): the selected joint's tag, or the tag of \
                     the strongest joint at each pixel; people separate by colour",
                );
        }
        if has_features {
            ui.radio_value(&mut app.settings.map_kind, MapKind::Features, "features")
                .on_hover_text(
                    "Energy (RMS over channels) of an intermediate activation: a branch,                      backbone or decoder output, at its own resolution (I)",
                );
        }
    });
    if has_features && app.settings.map_kind == MapKind::Features {
        feature_controls(app, ui);
    }
    compare_controls(app, ui, n);
    let joints = app.inspection.as_ref().map(|i| i.joints);
    if let Some(js) = joints {
        let current = match app.settings.joint_view {
            JointView::Max => "max over joints".to_string(),
            JointView::Grid => "all joints (grid)".to_string(),
            JointView::Joint(j) => js.joints.get(j).copied().unwrap_or("?").to_string(),
        };
        egui::ComboBox::from_label("joint")
            .selected_text(current)
            .show_ui(ui, |ui| {
                ui.selectable_value(
                    &mut app.settings.joint_view,
                    JointView::Max,
                    "max over joints",
                );
                ui.selectable_value(
                    &mut app.settings.joint_view,
                    JointView::Grid,
                    "all joints (grid)",
                );
                for (j, name) in js.joints.iter().enumerate() {
                    ui.selectable_value(&mut app.settings.joint_view, JointView::Joint(j), *name);
                }
            });
    }
}

/// Side-by-side / flicker comparison of the selected stage with another one.
fn compare_controls(app: &mut PosescopeApp, ui: &mut egui::Ui, n: usize) {
    use super::settings::Compare;
    ui.horizontal(|ui| {
        ui.label("compare");
        ui.radio_value(&mut app.settings.compare, Compare::Off, "off");
        ui.radio_value(
            &mut app.settings.compare,
            Compare::SideBySide,
            "side by side",
        )
        .on_hover_text("The selected stage next to the comparison stage (X cycles)");
        ui.radio_value(&mut app.settings.compare, Compare::Flicker, "flicker")
            .on_hover_text("Alternate between the two in one view (X cycles)");
    });
    if app.settings.compare == super::settings::Compare::Off {
        return;
    }
    let label = |t: usize| {
        app.inspection
            .as_ref()
            .and_then(|i| i.stages.get(t))
            .map_or(format!("stage {}", t + 1), |s| s.label.clone())
    };
    let mut b = app.settings.compare_stage.min(n.saturating_sub(1));
    egui::ComboBox::from_label("with")
        .selected_text(label(b))
        .show_ui(ui, |ui| {
            for t in 0..n {
                ui.selectable_value(&mut b, t, label(t));
            }
        });
    app.settings.compare_stage = b;
    if app.settings.compare == super::settings::Compare::Flicker {
        let mut ms = app.settings.flicker_ms as f64;
        ui.add(
            egui::Slider::new(&mut ms, 100.0..=2000.0)
                .logarithmic(true)
                .suffix(" ms")
                .text("period"),
        );
        app.settings.flicker_ms = ms.round() as u64;
    }
}

fn person_section(app: &mut PosescopeApp, ui: &mut egui::Ui) {
    use crate::pipeline::PersonMode;
    ui.heading("Person");
    let mut mode = app.settings.person_mode;
    ui.horizontal(|ui| {
        ui.radio_value(&mut mode, PersonMode::Centre, "whole frame")
            .on_hover_text("One person: the one at the centre (click the image to move it)");
        ui.radio_value(&mut mode, PersonMode::TopDown, "top-down")
            .on_hover_text(
            "The default bottom-up model finds people; the model runs on a crop around each (B)",
        );
        ui.radio_value(&mut mode, PersonMode::Box, "box")
            .on_hover_text(
                "The model runs on the box you draw with Shift+drag on the image, cropped as \
             top-down crops are (B cycles the modes, Shift+B clears the box)",
            );
    });
    if mode != app.settings.person_mode {
        app.set_person_mode(mode);
    }
    let text = match (app.settings.person_mode, app.settings.center) {
        (PersonMode::Centre, None) => "centre: image centre (click to set)".to_string(),
        (PersonMode::Centre, Some((x, y))) => format!("centre: ({x:.0}, {y:.0})"),
        (PersonMode::TopDown, None) => "maps of: largest person (click a person)".to_string(),
        (PersonMode::TopDown, Some((x, y))) => format!("maps of: person at ({x:.0}, {y:.0})"),
        (PersonMode::Box, _) => match app.settings.person_box {
            Some(b) => format!("box: ({:.0}, {:.0})-({:.0}, {:.0})", b[0], b[1], b[2], b[3]),
            None => "no box yet: whole frame (Shift+drag on the image)".to_string(),
        },
    };
    ui.horizontal(|ui| {
        ui.label(text);
        if app.settings.person_mode != PersonMode::Box
            && app.settings.center.is_some()
            && ui.button("Reset").on_hover_text("(C)").clicked()
        {
            app.set_person_center(None);
        }
        if app.settings.person_mode == PersonMode::Box
            && app.settings.person_box.is_some()
            && ui.button("Clear").on_hover_text("(Shift+B)").clicked()
        {
            app.clear_person_box();
        }
    });
    if let Some(ins) = &app.inspection {
        if app.settings.person_mode == PersonMode::TopDown {
            ui.label(format!("{} people found", ins.crops.len()));
        }
    }
}

/// The feature picker of the feature view and what the hovered cell sees.
fn feature_controls(app: &mut PosescopeApp, ui: &mut egui::Ui) {
    let Some(ins) = app.inspection.clone() else {
        return;
    };
    let n = ins.features.len();
    if n == 0 {
        return;
    }
    app.settings.feature = app.settings.feature.min(n - 1);
    let current = ins
        .features
        .get(app.settings.feature)
        .map(|f| f.summary())
        .unwrap_or_default();
    egui::ComboBox::from_label("feature")
        .selected_text(current)
        .width(ui.available_width() * 0.75)
        .show_ui(ui, |ui| {
            for (i, f) in ins.features.iter().enumerate() {
                ui.selectable_value(&mut app.settings.feature, i, f.summary());
            }
        })
        .response
        .on_hover_text("Previous / next feature: [ / ]");
    let Some(p) = app.hover_image_px else {
        return;
    };
    match ins.feature_field_at(app.settings.feature, p) {
        Some(((cx, cy), FieldAt::Rect(r))) => {
            ui.monospace(format!(
                "cell ({cx}, {cy}) sees x {:.0}..{:.0}, y {:.0}..{:.0} (image px)",
                r[0], r[2], r[1], r[3]
            ));
        }
        Some(((cx, cy), FieldAt::WholeInput)) => {
            ui.monospace(format!(
                "cell ({cx}, {cy}) sees the whole image (global pooling)"
            ));
        }
        Some(((cx, cy), FieldAt::Unknown)) => {
            ui.monospace(format!("cell ({cx}, {cy})"));
        }
        None => {}
    }
}

/// Receptive field and peak trajectories: what each stage sees and how its answer moves.
/// Temporal models (UniPose-LSTM): the "without memory" switch and what the state did.
fn memory_section(app: &mut PosescopeApp, ui: &mut egui::Ui) {
    ui.heading("Memory (video)");
    let mut without = app.settings.without_memory;
    ui.checkbox(&mut without, "without memory (L)")
        .on_hover_text(
            "Run every frame as the first frame of a clip: the single-frame model on the same \
         frames, to compare with the LSTM that carries its cell and hidden maps from frame to \
         frame. The state also starts afresh at a seek, on a new source and on each image.",
        );
    if without != app.settings.without_memory {
        app.set_without_memory(without);
    }
    let text = app
        .inspection
        .as_ref()
        .and_then(|i| i.memory)
        .map_or_else(|| "memory: no frame yet".to_string(), |m| m.describe());
    ui.label(text);
    ui.label("The LSTM's cell and hidden maps are feature maps (I, [ / ]).");
}

fn cpm_section(app: &mut PosescopeApp, ui: &mut egui::Ui) {
    ui.heading("Inside the stages");
    ui.checkbox(
        &mut app.settings.show_receptive_field,
        "receptive field under the pointer (R)",
    )
    .on_hover_text(
        "The input region the hovered map cell of the selected stage can see, computed from the \
         network's layer list (kernel sizes, strides, dilations, padding)",
    );
    let Some(ins) = app.inspection.clone() else {
        return;
    };
    if app.settings.show_receptive_field {
        match ins
            .receptive_fields
            .get(app.stage.min(ins.stages.len().saturating_sub(1)))
        {
            Some((rx, ry)) => {
                ui.monospace(format!(
                    "stage {}: {:.0}×{:.0} px of the input, step {:.0} px",
                    app.stage + 1,
                    rx.size,
                    ry.size,
                    rx.jump
                ));
                if let Some(((cx, cy), r)) = app
                    .hover_image_px
                    .and_then(|p| ins.receptive_field_at(app.stage, p))
                {
                    ui.monospace(format!(
                        "cell ({cx}, {cy}) sees x {:.0}..{:.0}, y {:.0}..{:.0} (image px)",
                        r[0], r[2], r[1], r[3]
                    ));
                }
            }
            None if ins
                .features
                .iter()
                .any(|f| matches!(f.field, crate::models::CellField::Local(..))) =>
            {
                ui.label(
                    "The heatmaps depend on the whole image (global pooling); the feature \
                     view (I) draws each branch's field at the pointer.",
                );
            }
            None => {
                ui.label("This model does not describe its layers.");
            }
        }
    }
    ui.checkbox(
        &mut app.settings.show_trajectory,
        "peak trajectory across stages (A)",
    )
    .on_hover_text(
        "Where each joint's maximum is at every stage (line), and how large it is (cross size)",
    );
    if !app.settings.show_trajectory || ins.stages.len() < 2 {
        return;
    }
    let joint = overlay::selected_joint(app.settings.joint_view);
    let trs = overlay::trajectories(&ins, joint);
    // Peak value per stage, one line per joint in the joint's colour.
    let (rect, _) =
        ui.allocate_exact_size(egui::vec2(ui.available_width(), 90.0), egui::Sense::hover());
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 2.0, egui::Color32::from_gray(30));
    let top = trs
        .iter()
        .flat_map(|t| t.points.iter().map(|p| p.1))
        .fold(1e-6f32, f32::max);
    let n = ins.stages.len();
    let x_of = |t: usize| rect.min.x + 8.0 + (rect.width() - 16.0) * t as f32 / (n - 1) as f32;
    let y_of = |v: f32| rect.max.y - 12.0 - (rect.height() - 20.0) * (v / top).clamp(0.0, 1.0);
    for tr in &trs {
        let [r, g, b] = ins.joints.joint_color(tr.joint);
        let pts: Vec<egui::Pos2> = tr
            .points
            .iter()
            .enumerate()
            .map(|(t, p)| egui::pos2(x_of(t), y_of(p.1)))
            .collect();
        painter.add(egui::Shape::line(
            pts,
            egui::Stroke::new(1.5, egui::Color32::from_rgb(r, g, b)),
        ));
    }
    painter.line_segment(
        [
            egui::pos2(x_of(app.stage.min(n - 1)), rect.min.y),
            egui::pos2(x_of(app.stage.min(n - 1)), rect.max.y - 12.0),
        ],
        egui::Stroke::new(1.0, egui::Color32::from_rgb(250, 200, 60)),
    );
    for t in 0..n {
        painter.text(
            egui::pos2(x_of(t), rect.max.y - 1.0),
            egui::Align2::CENTER_BOTTOM,
            format!("{}", t + 1),
            egui::FontId::monospace(9.0),
            egui::Color32::GRAY,
        );
    }
    painter.text(
        rect.min + egui::vec2(4.0, 2.0),
        egui::Align2::LEFT_TOP,
        format!("peak value (max {top:.2})"),
        egui::FontId::proportional(10.0),
        egui::Color32::GRAY,
    );
    // How far the peak moved from the previous stage, for a single joint.
    if let [tr] = trs.as_slice() {
        let moves: Vec<String> = tr
            .points
            .windows(2)
            .map(|w| match w {
                [a, b] => format!("{:.0}", (b.0 .0 - a.0 .0).hypot(b.0 .1 - a.0 .1)),
                _ => String::new(),
            })
            .collect();
        ui.monospace(format!("peak moved (px): {}", moves.join(" -> ")))
            .on_hover_text("distance between consecutive stages' maxima, image pixels");
    }
}

pub(super) fn advance_stage_play(app: &mut PosescopeApp, started: Instant) {
    let n = app.stage_count().max(1);
    let step = (started.elapsed().as_millis() / 600) as usize;
    app.stage = step % n;
}

fn overlay_section(app: &mut PosescopeApp, ui: &mut egui::Ui) {
    ui.heading("Overlay");
    // The current model's PAF limbs and joint names (none for other decoders).
    let (limbs, joint_names) = app.model().map_or((&[][..], &[][..]), |m| {
        (m.info().decoding.paf_limbs(), m.joints().joints)
    });
    let s = &mut app.settings;
    ui.checkbox(&mut s.show_heatmap, "heatmap (H)");
    ui.horizontal(|ui| {
        ui.checkbox(&mut s.show_skeleton, "skeleton (K)");
        ui.checkbox(&mut s.person_colors, "colour by person");
    });
    ui.checkbox(&mut s.show_pafs, "part-affinity fields (V)");
    if s.show_pafs && !limbs.is_empty() {
        let name = |l: usize| {
            limbs.get(l).map_or("?".to_string(), |p| {
                format!(
                    "{} – {}",
                    joint_names.get(p.joints.0).copied().unwrap_or("?"),
                    joint_names.get(p.joints.1).copied().unwrap_or("?")
                )
            })
        };
        egui::ComboBox::from_label("limb")
            .selected_text(s.paf_limb.map_or("strongest".to_string(), name))
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut s.paf_limb, None, "strongest");
                for l in 0..limbs.len() {
                    ui.selectable_value(&mut s.paf_limb, Some(l), name(l));
                }
            });
    }
    egui::ComboBox::from_label("colormap")
        .selected_text(s.colormap.name())
        .show_ui(ui, |ui| {
            for &c in Colormap::all() {
                ui.selectable_value(&mut s.colormap, c, c.name());
            }
        });
    ui.add(egui::Slider::new(&mut s.opacity, 0.0..=1.0).text("opacity"));
    ui.add(
        egui::Slider::new(&mut s.gamma, 0.2..=3.0)
            .logarithmic(true)
            .text("gamma"),
    );
    ui.horizontal(|ui| {
        ui.label("range");
        ui.radio_value(&mut s.range_mode, RangeMode::Fixed, "fixed");
        ui.radio_value(&mut s.range_mode, RangeMode::Auto, "auto");
        ui.radio_value(&mut s.range_mode, RangeMode::SharedAcrossStages, "shared");
    });
    if s.range_mode == RangeMode::Fixed {
        ui.horizontal(|ui| {
            ui.add(
                egui::DragValue::new(&mut s.fixed_range.0)
                    .speed(0.01)
                    .prefix("min "),
            );
            ui.add(
                egui::DragValue::new(&mut s.fixed_range.1)
                    .speed(0.01)
                    .prefix("max "),
            );
        });
    }
    ui.add(egui::Slider::new(&mut s.min_score, 0.0..=1.0).text("joint threshold"));
}

fn probe_section(app: &mut PosescopeApp, ui: &mut egui::Ui) {
    ui.heading("Pixel probe");
    let (Some(ins), Some(px)) = (app.inspection.clone(), app.hover_image_px) else {
        ui.label("Hover over the image.");
        return;
    };
    let joint = overlay::selected_joint(app.settings.joint_view);
    let Some(values) = overlay::probe(&ins, joint, px) else {
        return;
    };
    ui.label(format!("pixel ({:.0}, {:.0})", px.0, px.1));
    // A small bar plot: value per stage.
    let (rect, _) =
        ui.allocate_exact_size(egui::vec2(ui.available_width(), 70.0), egui::Sense::hover());
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 2.0, egui::Color32::from_gray(30));
    let n = values.len().max(1) as f32;
    let w = rect.width() / n;
    for (i, (v, _)) in values.iter().enumerate() {
        let h = v.clamp(0.0, 1.0) * (rect.height() - 12.0);
        let x0 = rect.min.x + i as f32 * w + 2.0;
        let bar = egui::Rect::from_min_max(
            egui::pos2(x0, rect.max.y - 12.0 - h),
            egui::pos2(x0 + w - 4.0, rect.max.y - 12.0),
        );
        let color = if i == app.stage {
            egui::Color32::from_rgb(250, 200, 60)
        } else {
            egui::Color32::from_rgb(90, 150, 230)
        };
        painter.rect_filled(bar, 1.0, color);
        painter.text(
            egui::pos2(x0 + (w - 4.0) / 2.0, rect.max.y - 1.0),
            egui::Align2::CENTER_BOTTOM,
            format!("{}", i + 1),
            egui::FontId::monospace(9.0),
            egui::Color32::GRAY,
        );
    }
    for (i, (v, peak)) in values.iter().enumerate() {
        ui.monospace(format!(
            "{}: {:>6.3}  peak ({:.0},{:.0})",
            i + 1,
            v,
            peak.0,
            peak.1
        ))
        .on_hover_text("stage: value at the pointer, and where the stage's maximum is (image px)");
    }
}

pub fn status_bar(app: &mut PosescopeApp, ui: &mut egui::Ui) {
    egui::Panel::bottom("status").show(ui, |ui| {
        ui.horizontal_wrapped(|ui| {
            if !app.settings.show_hud {
                if let Some(ins) = &app.inspection {
                    ui.monospace(format!("{} people", ins.people.len()));
                }
                return;
            }
            ui.monospace(format!(
                "display {:>5.1} fps | inference {:>5.1} fps",
                app.display_rate.per_second(),
                app.inference_rate.per_second()
            ));
            if let Some(dropped) = app.frames_dropped().filter(|&d| d > 0) {
                ui.monospace(format!("| {dropped} frames dropped while busy"))
                    .on_hover_text(
                        "Frames that arrived while the model was busy; the newest one is run",
                    );
            }
            if let Some(ins) = &app.inspection {
                let t = &ins.timings;
                let steps: Vec<String> = t
                    .steps
                    .iter()
                    .map(|s| format!("{} {:.0}", s.name, s.time.as_secs_f64() * 1e3))
                    .collect();
                ui.monospace(format!(
                    "| forward {:.0} ms ({}) | decode {:.1} ms | {} people | input {}×{}",
                    t.forward.as_secs_f64() * 1e3,
                    steps.join(", "),
                    t.decode.as_secs_f64() * 1e3,
                    ins.people.len(),
                    ins.input_size.0,
                    ins.input_size.1,
                ));
                if let Some(m) = ins.memory {
                    ui.monospace(format!("| {}", m.describe()));
                }
            }
            if let Some(n) = app.notices.last() {
                let color = if n.error {
                    egui::Color32::from_rgb(255, 120, 100)
                } else {
                    egui::Color32::LIGHT_GREEN
                };
                ui.colored_label(color, &n.text);
            }
        });
    });
}

/// Files dropped onto the window open like "Open…".
pub fn dropped_files(app: &mut PosescopeApp, ctx: &egui::Context) {
    let dropped: Vec<_> = ctx.input(|i| {
        i.raw
            .dropped_files
            .iter()
            .map(|f| f.path().to_path_buf())
            .collect()
    });
    if let Some(p) = dropped.into_iter().next() {
        app.open_input(PlayerInput::Path(p));
    }
}
