//! The app's batch export ("Export all…"): the view's settings turned into the scene of
//! every frame, handed to the runner in [`crate::export::batch`].

use std::path::PathBuf;
use std::sync::Arc;

use eframe::wgpu;

use super::settings::Settings;
pub use crate::export::batch::{BatchJob, BatchReport};
use crate::pipeline::Pipeline;

/// What to export, as the view shows it.
#[derive(Clone, Debug)]
pub struct BatchRequest {
    pub input: PathBuf,
    /// A new folder is created inside this one (never reusing an existing name).
    pub out_dir: PathBuf,
    pub stage: usize,
    pub joint: Option<usize>,
    pub settings: Settings,
    pub maps: bool,
    pub video: bool,
}

impl BatchRequest {
    /// The runner's request: every frame drawn with these view settings at this stage and
    /// joint (the last stage where a frame has fewer), with the skeleton.
    pub fn into_export(self) -> crate::export::batch::BatchRequest {
        let BatchRequest {
            input,
            out_dir,
            stage,
            joint,
            settings,
            maps,
            video,
        } = self;
        crate::export::batch::BatchRequest {
            input,
            out_dir,
            scene: Arc::new(move |ins, rgba, key| {
                super::viewport::build_scene(
                    ins,
                    rgba,
                    key,
                    stage.min(ins.stages.len().saturating_sub(1)),
                    joint,
                    &settings,
                    true,
                    None,
                )
            }),
            maps,
            video,
        }
    }
}

/// Starts the export on a new thread.
pub fn spawn(
    request: BatchRequest,
    pipeline: Pipeline,
    device: wgpu::Device,
    queue: wgpu::Queue,
    wake: impl Fn() + Send + 'static,
) -> Result<BatchJob, String> {
    BatchJob::spawn(request.into_export(), pipeline, device, queue, wake)
}

/// Runs a batch to the end on the calling thread (tests).
pub fn run_blocking(
    request: BatchRequest,
    pipeline: Pipeline,
    device: wgpu::Device,
    queue: wgpu::Queue,
) -> Result<BatchReport, String> {
    crate::export::batch::run_blocking(request.into_export(), pipeline, device, queue)
}
