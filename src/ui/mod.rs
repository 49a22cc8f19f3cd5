//! The desktop app (eframe/egui, wgpu renderer). UI code only: panels read and change the
//! app state; GPU work lives in [`crate::render`], inference in [`crate::pipeline`].

mod ae_panel;
pub mod app;
pub mod batch;
pub mod camera;
pub mod download;
pub mod eval_panel;
pub mod experiments_panel;
mod export;
pub mod failures;
mod help;
pub mod jitter_panel;
mod keys;
pub mod overlay;
mod panels;
pub mod settings;
mod shortcuts;
pub mod versus_panel;
pub mod viewport;

pub use app::{PosescopeApp, StartOptions};
pub use export::{export_stages_to, free_stem, render_view, save_frame_to};

/// Opens the app window and runs until it is closed.
pub fn run(start: StartOptions) -> anyhow::Result<()> {
    let options = eframe::NativeOptions {
        viewport: eframe::egui::ViewportBuilder::default()
            .with_title("posescope")
            .with_inner_size([1280.0, 800.0])
            .with_drag_and_drop(true),
        renderer: eframe::Renderer::Wgpu,
        persist_window: true,
        ..Default::default()
    };
    eframe::run_native(
        "posescope",
        options,
        Box::new(move |cc| Ok(Box::new(PosescopeApp::new(cc, start)))),
    )
    .map_err(|e| anyhow::anyhow!("cannot open the window: {e}"))
}
