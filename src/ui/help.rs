//! The help window: what the app shows and the keyboard shortcuts.

use eframe::egui;

use super::shortcuts::SHORTCUTS;

/// The help window, shown while `open` (closing it clears the flag).
pub fn window(ctx: &egui::Context, open: &mut bool) {
    if !*open {
        return;
    }
    let mut shown = true;
    egui::Window::new("Help")
        .open(&mut shown)
        .resizable(false)
        .show(ctx, |ui| {
            ui.label(
                "posescope runs a pose network on the image and shows every stage's belief maps. \
                 Use the stage slider (Left / Right arrow keys) to watch the maps sharpen from stage to stage, pick \
                 a joint, and hover the image to probe values. Feature maps (I) show the energy \
                 (RMS over channels) of the branches and layers a model exposes, e.g. HRNet's \
                 branches at their resolutions or UniPose's WASP branches with the receptive \
                 field of the hovered cell. UniPose-LSTM carries its state across consecutive \
                 video frames (reset at a seek and on each image); L turns the memory off to \
                 compare with single-frame UniPose, and its cell and hidden maps are features.",
            );
            ui.separator();
            egui::Grid::new("shortcuts").striped(true).show(ui, |ui| {
                for (keys, what) in SHORTCUTS {
                    ui.monospace(*keys);
                    ui.label(*what);
                    ui.end_row();
                }
            });
            ui.separator();
            ui.label(
                "Scroll to zoom, drag to pan, drop files onto the window to open them. \
                 Single-person models: Shift+drag on the image draws a person box and runs the \
                 model on it as top-down models run on detected people (box mode; Shift+B \
                 clears it).",
            );
        });
    *open = shown;
}
