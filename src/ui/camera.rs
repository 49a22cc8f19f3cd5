//! The Camera menu: the system's cameras by name, each with its formats, sizes and frame
//! rates; the selfie mirror; a video played as a live camera. It keeps only its own state
//! (the cached device list) and returns what the user chose.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use eframe::egui;

use crate::source::{list_cameras, CameraId, CameraInfo, CameraMode};

/// How long a device listing is reused while the menu is open.
const LIST_TTL: Duration = Duration::from_secs(2);

/// What the user chose in the menu.
#[derive(Clone, Debug, PartialEq)]
pub enum CameraAction {
    /// Open this camera (in its default mode when `mode` is `None`) and play it.
    Open {
        id: CameraId,
        mode: Option<CameraMode>,
    },
    /// Play this video as a live camera would deliver it (real time, newest frame wins).
    Simulate(PathBuf),
    /// Mirror the view on or off.
    Mirror(bool),
}

/// State of the Camera menu.
#[derive(Default)]
pub struct CameraMenu {
    listed: Option<(Instant, Result<Vec<CameraInfo>, String>)>,
}

impl CameraMenu {
    /// The cameras, listed again when the last listing is older than [`LIST_TTL`].
    fn cameras(&mut self) -> Result<Vec<CameraInfo>, String> {
        match &self.listed {
            Some((at, list)) if at.elapsed() <= LIST_TTL => list.clone(),
            _ => {
                let list = list_cameras().map_err(|e| e.to_string());
                self.listed = Some((Instant::now(), list.clone()));
                list
            }
        }
    }

    /// The menu button and its contents. `mirror` is the view's current mirroring.
    pub fn ui(&mut self, ui: &mut egui::Ui, mirror: bool) -> Option<CameraAction> {
        let mut action = None;
        ui.menu_button("Camera", |ui| {
            let mut m = mirror;
            if ui
                .checkbox(&mut m, "Mirror (selfie view)")
                .on_hover_text("Shift+M. Only the display is mirrored; joint names stay right.")
                .changed()
            {
                action = Some(CameraAction::Mirror(m));
            }
            ui.separator();
            match self.cameras() {
                Ok(cams) if cams.is_empty() => {
                    ui.label("No camera found.");
                }
                Ok(cams) => {
                    for cam in cams {
                        if let Some(a) = camera_entry(ui, &cam) {
                            action = Some(a);
                        }
                    }
                }
                Err(e) => {
                    ui.label(format!("Cannot list cameras: {e}"));
                }
            }
            ui.separator();
            if ui
                .button("Play a video as a live camera…")
                .on_hover_text(
                    "Frames arrive in real time; while the model is busy the newest frame wins, \
                     as with a camera",
                )
                .clicked()
            {
                if let Some(p) = rfd::FileDialog::new().pick_file() {
                    action = Some(CameraAction::Simulate(p));
                }
                ui.close();
            }
        });
        if matches!(action, Some(CameraAction::Open { .. })) {
            // The list is refreshed next time (the device may have changed).
            self.listed = None;
        }
        action
    }
}

/// One camera: a submenu with its default and every mode.
fn camera_entry(ui: &mut egui::Ui, cam: &CameraInfo) -> Option<CameraAction> {
    let mut action = None;
    let open = |mode: Option<CameraMode>| CameraAction::Open {
        id: CameraId::Device(cam.index),
        mode,
    };
    let label = format!("{}: {}", cam.index, cam.name);
    if cam.modes.is_empty() {
        if ui.button(label).on_hover_text(&cam.device).clicked() {
            action = Some(open(None));
            ui.close();
        }
        return action;
    }
    ui.menu_button(label, |ui| {
        let default = crate::source::camera::default_mode(&cam.modes);
        if let Some(d) = &default {
            if ui.button(format!("Default: {d}")).clicked() {
                action = Some(open(None));
                ui.close();
            }
            ui.separator();
        }
        egui::ScrollArea::vertical()
            .max_height(360.0)
            .show(ui, |ui| {
                for m in &cam.modes {
                    if ui.button(m.to_string()).clicked() {
                        action = Some(open(Some(m.clone())));
                        ui.close();
                    }
                }
            });
    });
    action
}
