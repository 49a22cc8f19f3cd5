//! Keyboard shortcuts (listed in the help window).

use eframe::egui::{self, Key, Modifiers};

use super::app::PosescopeApp;
use super::settings::{JointView, MapKind};
use crate::player::PlayerCommand;

pub fn handle(app: &mut PosescopeApp, ctx: &egui::Context) {
    if ctx.egui_wants_keyboard_input() {
        return;
    }
    let n_stages = app.stage_count();
    let n_joints = app.inspection.as_ref().map_or(0, |i| i.joints.len());
    let pressed = |k: Key| ctx.input_mut(|i| i.consume_key(Modifiers::NONE, k));
    let shift = |k: Key| ctx.input_mut(|i| i.consume_key(Modifiers::SHIFT, k));
    if pressed(Key::ArrowLeft) {
        app.stage = app.stage.saturating_sub(1);
        app.stage_play = None;
    }
    if pressed(Key::ArrowRight) && n_stages > 0 {
        app.stage = (app.stage + 1).min(n_stages - 1);
        app.stage_play = None;
    }
    if pressed(Key::P) {
        app.stage_play = match app.stage_play {
            Some(_) => None,
            None => Some(std::time::Instant::now()),
        };
    }
    if pressed(Key::Space) {
        let playing = app.source.as_ref().is_some_and(|s| s.playing);
        app.player_command(if playing {
            PlayerCommand::Pause
        } else {
            PlayerCommand::Play
        });
    }
    if pressed(Key::Comma) {
        app.player_command(PlayerCommand::Step(-1));
    }
    if pressed(Key::Period) {
        app.player_command(PlayerCommand::Step(1));
    }
    if n_joints > 0 {
        // Shift+J before J: a plain-key match ignores Shift.
        if shift(Key::J) {
            app.settings.joint_view = match app.settings.joint_view {
                JointView::Joint(j) => JointView::Joint((j + n_joints - 1) % n_joints),
                _ => JointView::Joint(n_joints - 1),
            };
        }
        if pressed(Key::J) {
            app.settings.joint_view = match app.settings.joint_view {
                JointView::Joint(j) => JointView::Joint((j + 1) % n_joints),
                _ => JointView::Joint(0),
            };
        }
    }
    // Shift+M before M: a plain-key match ignores Shift.
    if shift(Key::M) {
        app.view.mirror = !app.view.mirror;
    } else if pressed(Key::M) {
        app.settings.joint_view = JointView::Max;
    }
    if pressed(Key::G) {
        app.settings.joint_view = JointView::Grid;
    }
    if pressed(Key::D) {
        app.settings.map_kind = match app.settings.map_kind {
            MapKind::Belief => MapKind::Difference,
            MapKind::Difference | MapKind::Tags | MapKind::Features => MapKind::Belief,
        };
    }
    if pressed(Key::E) {
        app.settings.map_kind = match app.settings.map_kind {
            MapKind::Tags => MapKind::Belief,
            _ => MapKind::Tags,
        };
    }
    let n_features = app.inspection.as_ref().map_or(0, |i| i.features.len());
    if pressed(Key::I) {
        app.settings.map_kind = match app.settings.map_kind {
            MapKind::Features => MapKind::Belief,
            _ => MapKind::Features,
        };
    }
    if n_features > 0 {
        if pressed(Key::OpenBracket) {
            app.settings.feature =
                (app.settings.feature.min(n_features - 1) + n_features - 1) % n_features;
        }
        if pressed(Key::CloseBracket) {
            app.settings.feature = (app.settings.feature + 1) % n_features;
        }
    }
    if pressed(Key::X) {
        use super::settings::Compare;
        app.settings.compare = match app.settings.compare {
            Compare::Off => Compare::SideBySide,
            Compare::SideBySide => Compare::Flicker,
            Compare::Flicker => Compare::Off,
        };
        if app.settings.compare != Compare::Off && app.settings.compare_stage == app.stage {
            // Something to compare with: the previous stage, else the next.
            app.settings.compare_stage = if app.stage > 0 {
                app.stage - 1
            } else {
                (app.stage + 1).min(n_stages.saturating_sub(1))
            };
        }
    }
    if pressed(Key::H) {
        app.settings.show_heatmap = !app.settings.show_heatmap;
    }
    if pressed(Key::V) {
        app.settings.show_pafs = !app.settings.show_pafs;
    }
    if pressed(Key::R) {
        app.settings.show_receptive_field = !app.settings.show_receptive_field;
    }
    if pressed(Key::A) {
        app.settings.show_trajectory = !app.settings.show_trajectory;
    }
    if pressed(Key::C) && app.settings.center.is_some() {
        app.set_person_center(None);
    }
    // Shift+B before B: a plain-key match ignores Shift.
    if shift(Key::B) {
        app.clear_person_box();
    }
    if pressed(Key::B) {
        app.toggle_person_mode();
    }
    if pressed(Key::L) {
        app.set_without_memory(!app.settings.without_memory);
    }
    if pressed(Key::K) {
        app.settings.show_skeleton = !app.settings.show_skeleton;
    }
    if pressed(Key::T) {
        app.settings.show_hud = !app.settings.show_hud;
    }
    if pressed(Key::F) {
        app.view = app.view.fit();
    }
    if pressed(Key::O) {
        super::panels::open_file_dialog(app);
    }
    if ctx.input_mut(|i| i.consume_key(Modifiers::COMMAND, Key::E)) {
        app.eval.open = !app.eval.open;
    }
    if ctx.input_mut(|i| i.consume_key(Modifiers::COMMAND, Key::S)) {
        super::export::save_frame_dialog(app);
    }
    if pressed(Key::F1) {
        app.settings.show_help = !app.settings.show_help;
    }
}
