//! The application state and its frame loop. Panels live in their own files; this file
//! wires the model, the worker thread, the player and the GPU views together.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eframe::egui;

use crate::inspection::Inspection;
use crate::models::Model;
use crate::pipeline::{Pipeline, PipelineConfig, Worker};
use crate::player::{Player, PlayerCommand, PlayerEvent, PlayerInput};
use crate::preprocess::PreprocessConfig;

use super::settings::{Settings, STORAGE_KEY};

/// How the app was started.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StartOptions {
    /// Model id or weights path; `None` keeps the saved choice.
    pub model: Option<String>,
    /// Input to open; `None` opens the bundled sample photo.
    pub input: Option<PathBuf>,
    pub device: Option<String>,
}

/// A message shown in the status line.
#[derive(Clone, Debug, PartialEq)]
pub struct Notice {
    pub text: String,
    pub error: bool,
}

/// What the open source is doing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SourceState {
    pub description: String,
    pub frames: Option<u64>,
    pub position: u64,
    pub playing: bool,
    /// The camera was lost (why); the player is looking for it again.
    pub disconnected: Option<String>,
    /// When it was lost.
    pub disconnected_at: Option<Instant>,
}

enum ModelSlot {
    Loading(Receiver<Result<Model, String>>, String),
    Ready(Box<Model>),
    Failed(String),
}

/// Rolling frame-rate counter.
#[derive(Debug, Default)]
pub struct Rate {
    times: VecDeque<Instant>,
}

impl Rate {
    pub fn tick(&mut self, now: Instant) {
        self.times.push_back(now);
        while self
            .times
            .front()
            .is_some_and(|t| now.duration_since(*t) > Duration::from_secs(2))
        {
            self.times.pop_front();
        }
    }
    /// Events per second over the last two seconds.
    pub fn per_second(&self) -> f64 {
        match (self.times.front(), self.times.back()) {
            (Some(a), Some(b)) if self.times.len() > 1 => {
                (self.times.len() - 1) as f64 / b.duration_since(*a).as_secs_f64().max(1e-6)
            }
            _ => 0.0,
        }
    }
}

/// The posescope app.
pub struct PosescopeApp {
    pub settings: Settings,
    model: ModelSlot,
    worker: Option<Worker>,
    player: Option<Player>,
    /// Input waiting for the model to be ready.
    pending_input: Option<PlayerInput>,
    pub source: Option<SourceState>,
    pub inspection: Option<Arc<Inspection>>,
    /// Bumped for every new inspection (texture keys derive from it).
    pub inspection_serial: u64,
    /// Selected stage, 0-based.
    pub stage: usize,
    pub view: super::viewport::ViewState,
    pub notices: Vec<Notice>,
    pub display_rate: Rate,
    pub inference_rate: Rate,
    pub(super) render_state: Option<eframe::egui_wgpu::RenderState>,
    pub(super) rgba: Option<(u64, Arc<image::RgbaImage>)>,
    pub(super) hover_image_px: Option<(f64, f64)>,
    /// A person box being dragged (Shift+drag): where the drag started, screen points.
    pub(super) box_drag: Option<egui::Pos2>,
    /// Where the frame was last drawn in the (first) main view, screen points.
    pub(super) image_screen_rect: Option<egui::Rect>,
    /// The views of the last frame (two side by side when comparing), screen points.
    pub(super) view_rects: Vec<egui::Rect>,
    /// Stage play-through: advance the stage slider every this often.
    pub(super) stage_play: Option<Instant>,
    pub(super) export_dir: Option<PathBuf>,
    /// A running batch export.
    pub batch: Option<super::batch::BatchJob>,
    /// The path of the open input, for batch export.
    pub(super) input_path: Option<PathBuf>,
    /// The model being loaded was chosen now: adopt its input size and resize mode.
    adopt_model_defaults: bool,
    /// The Evaluation window and its background job.
    pub eval: super::eval_panel::EvalState,
    /// The Experiments window (intervention, occlusion) and its background runs.
    pub experiments: super::experiments_panel::ExperimentsState,
    /// The Model-vs-model window: a second model on the same frame.
    pub versus: super::versus_panel::VersusState,
    /// The Stability window: per-stage jitter over the open video.
    pub jitter: super::jitter_panel::JitterState,
    /// The weights download offered for a model whose weights are absent.
    pub download: super::download::DownloadState,
    /// The Camera menu's device list.
    pub(super) camera_menu: super::camera::CameraMenu,
    /// The open input is a camera (it runs at the live input size).
    live: bool,
    ctx: egui::Context,
}

impl PosescopeApp {
    /// Creates the app (also used by tests with egui_kittest's eframe harness).
    pub fn new(cc: &eframe::CreationContext<'_>, start: StartOptions) -> Self {
        let mut settings: Settings = cc
            .storage
            .and_then(|s| eframe::get_value(s, STORAGE_KEY))
            .unwrap_or_default();
        let mut adopt_model_defaults = false;
        if let Some(m) = start.model {
            adopt_model_defaults = m != settings.model;
            settings.model = m;
        }
        if let Some(d) = start.device {
            settings.device = d;
        }
        let render_state = cc.wgpu_render_state.clone();
        if let Some(rs) = &render_state {
            crate::render::egui_bridge::install(rs);
        }
        let input = match start.input {
            Some(p) => match crate::source::camera_input(&p) {
                Some(id) => PlayerInput::Camera { id, mode: None },
                None => PlayerInput::Path(p),
            },
            None => PlayerInput::SampleClip,
        };
        let mut app = Self {
            settings,
            model: ModelSlot::Failed(String::new()),
            worker: None,
            player: None,
            pending_input: Some(input),
            source: None,
            inspection: None,
            inspection_serial: 0,
            stage: usize::MAX,
            view: super::viewport::ViewState::default(),
            notices: Vec::new(),
            display_rate: Rate::default(),
            inference_rate: Rate::default(),
            render_state,
            rgba: None,
            hover_image_px: None,
            box_drag: None,
            image_screen_rect: None,
            view_rects: Vec::new(),
            stage_play: None,
            export_dir: None,
            batch: None,
            input_path: None,
            adopt_model_defaults,
            eval: Default::default(),
            experiments: Default::default(),
            versus: Default::default(),
            jitter: Default::default(),
            download: Default::default(),
            camera_menu: Default::default(),
            live: false,
            ctx: cc.egui_ctx.clone(),
        };
        app.load_model();
        app
    }

    /// Loads the model the user just chose: its own input size and resize mode replace the
    /// previous model's once it is loaded.
    pub fn choose_model(&mut self, name: String) {
        self.settings.model = name;
        self.adopt_model_defaults = true;
        self.load_model();
    }

    /// Starts loading the model named in the settings on a background thread.
    pub fn load_model(&mut self) {
        let (tx, rx) = mpsc::channel();
        let name = self.settings.model.clone();
        let device = self.settings.device.clone();
        let ctx = self.ctx.clone();
        let label = name.clone();
        std::thread::spawn(move || {
            let result = device
                .parse::<crate::device::DeviceSpec>()
                .map_err(|e| e.to_string())
                .and_then(|spec| spec.open().map_err(|e| e.to_string()))
                .and_then(|dev| Model::load(&name, &dev).map_err(|e| e.to_string()));
            let _ = tx.send(result);
            ctx.request_repaint();
        });
        self.model = ModelSlot::Loading(rx, label);
    }

    /// GPU textures alive in this window's wgpu instance (`None` without GPU rendering):
    /// for leak checks.
    pub fn gpu_textures_alive(&self) -> Option<usize> {
        let report = self.render_state.as_ref()?.instance.generate_report()?;
        Some(report.hub_report().textures.num_kept_from_user)
    }

    /// The loaded model, if any.
    pub fn model(&self) -> Option<&Model> {
        match &self.model {
            ModelSlot::Ready(m) => Some(m),
            _ => None,
        }
    }

    /// A human-readable model status for the panel.
    pub fn model_status(&self) -> String {
        match &self.model {
            ModelSlot::Loading(_, name) => format!("loading '{name}'…"),
            ModelSlot::Ready(m) => format!("{} on {}", m.id(), self.settings.device),
            ModelSlot::Failed(e) if e.is_empty() => "no model".into(),
            ModelSlot::Failed(e) => format!("failed: {e}"),
        }
    }

    /// The egui context (to wake the UI from worker threads).
    pub fn context(&self) -> egui::Context {
        self.ctx.clone()
    }

    pub fn notify(&mut self, text: impl Into<String>, error: bool) {
        let text = text.into();
        if error {
            log_error(&text);
        }
        self.notices.push(Notice { text, error });
        if self.notices.len() > 50 {
            self.notices.remove(0);
        }
    }

    fn pipeline_config(&self, model: &Model) -> PipelineConfig {
        let mut c = PipelineConfig::for_model(model);
        let (size, mode) = self.input_for(model);
        c.preprocess = PreprocessConfig {
            size,
            mode,
            filter: self.settings.filter,
            ..c.preprocess
        };
        c.person = self.settings.person_mode;
        c.center = self.settings.center;
        c.user_box = self.settings.person_box;
        c.ae = self.settings.ae.clone();
        c.without_memory = self.settings.without_memory;
        c
    }

    /// The input size and resize mode the worker runs at: the model's live ones for a
    /// camera (unless the user turned that off), else the chosen ones.
    pub fn input_for(&self, model: &Model) -> ((u32, u32), crate::preprocess::ResizeMode) {
        if self.live && self.settings.live_size {
            crate::models::catalog::live_input(model.info())
        } else {
            (self.settings.input_size, self.settings.resize)
        }
    }

    /// Whether the open input is a camera.
    pub fn is_live(&self) -> bool {
        self.live
    }

    /// Whether the loaded model carries a state from frame to frame (UniPose-LSTM).
    pub fn temporal(&self) -> bool {
        self.model().is_some_and(Model::is_temporal)
    }

    /// Switches a temporal model between carrying its state and running every frame as a
    /// first frame ("without memory"), and re-runs the frame (the state starts afresh).
    pub fn set_without_memory(&mut self, without: bool) {
        if !self.temporal() || without == self.settings.without_memory {
            return;
        }
        self.settings.without_memory = without;
        self.rebuild_worker();
    }

    /// Whether the loaded model is a bottom-up associative-embedding model (HigherHRNet).
    pub fn associative(&self) -> bool {
        self.model()
            .is_some_and(|m| m.info().decoding == crate::models::Decoding::AssociativeEmbedding)
    }

    /// Regroups the current frame with the grouping parameters in the settings (no new
    /// forward pass), and hands them to the worker for the next frames.
    pub fn regroup(&mut self) {
        if let Some(ins) = &mut self.inspection {
            let ins = Arc::make_mut(ins);
            if let Err(e) = crate::pipeline::regroup(ins, &self.settings.ae.params) {
                self.notify(format!("regrouping: {e}"), true);
            }
        }
        self.spawn_worker();
    }

    /// Whether the loaded model finds one person per input (centre / top-down applies).
    pub fn single_person(&self) -> bool {
        self.model()
            .is_some_and(|m| m.info().decoding == crate::models::Decoding::SinglePerson)
    }

    /// Sets (or clears) the single-person centre and re-runs the frame.
    pub fn set_person_center(&mut self, center: Option<(f64, f64)>) {
        if !self.single_person() {
            return;
        }
        self.settings.center = center;
        self.rebuild_worker();
    }

    /// Switches single-person models to `mode` (whole frame, top-down crops, the dragged
    /// box) and re-runs the frame.
    pub fn set_person_mode(&mut self, mode: crate::pipeline::PersonMode) {
        if !self.single_person() || mode == self.settings.person_mode {
            return;
        }
        self.settings.person_mode = mode;
        self.rebuild_worker();
    }

    /// Cycles single-person models through whole frame, top-down crops and the dragged box.
    pub fn toggle_person_mode(&mut self) {
        use crate::pipeline::PersonMode;
        self.set_person_mode(match self.settings.person_mode {
            PersonMode::Centre => PersonMode::TopDown,
            PersonMode::TopDown => PersonMode::Box,
            PersonMode::Box => PersonMode::Centre,
        });
    }

    /// Sets the person box from a drag between two image points (pixels): clamped to the
    /// frame, the mode switched to box, and the frame re-run. A box too small or outside
    /// the image, or a model that finds every person itself, is refused with a notice.
    pub fn set_person_box(&mut self, a: (f64, f64), b: (f64, f64)) {
        if !self.single_person() {
            self.notify(
                "a person box needs a single-person model (CPM, mobile CPM / hourglass, \
                 top-down HRNet, SimpleBaseline, ...); this model finds every person itself",
                true,
            );
            return;
        }
        let Some(ins) = &self.inspection else {
            return;
        };
        let (w, h) = (ins.frame.width, ins.frame.height);
        match crate::pipeline::clamp_box([a.0, a.1, b.0, b.1], w, h) {
            Ok(b) => {
                self.settings.person_box = Some(b);
                self.settings.person_mode = crate::pipeline::PersonMode::Box;
                self.rebuild_worker();
                self.notify(
                    format!(
                        "person box ({:.0}, {:.0})-({:.0}, {:.0})",
                        b[0], b[1], b[2], b[3]
                    ),
                    false,
                );
            }
            Err(e) => self.notify(format!("box not used: {e}"), true),
        }
    }

    /// Clears the dragged person box (box mode then runs on the whole frame) and re-runs
    /// the frame.
    pub fn clear_person_box(&mut self) {
        if self.settings.person_box.take().is_some() {
            self.rebuild_worker();
        }
    }

    /// Rebuilds the worker (model or preprocessing changed) and re-runs the current frame.
    pub fn rebuild_worker(&mut self) {
        if !self.spawn_worker() {
            return;
        }
        if let Some(input) = self.pending_input.take() {
            self.open_input(input);
        } else {
            self.resubmit_current();
        }
    }

    /// A new worker with the current settings; the open source plays into it. `false`
    /// without a model.
    fn spawn_worker(&mut self) -> bool {
        let Some(model) = self.model().cloned() else {
            return false;
        };
        let worker = self.new_worker(&model);
        if let Some(player) = &self.player {
            player.send(PlayerCommand::Retarget(worker.submitter()));
        }
        self.worker = Some(worker);
        true
    }

    /// A worker for `model` with the current settings: for a camera, as many inference
    /// threads as [`crate::pipeline::default_workers`] says (frame-level parallelism, for
    /// frames per second); otherwise one, using every core (for the latency of one frame).
    fn new_worker(&self, model: &Model) -> Worker {
        let pipeline = Pipeline::new(model.clone(), self.pipeline_config(model));
        let workers = if self.live {
            crate::pipeline::default_workers()
        } else {
            1
        };
        Worker::spawn_parallel(pipeline, workers)
    }

    /// Runs the current frame again (after a settings change).
    pub fn resubmit_current(&mut self) {
        let (Some(worker), Some(ins)) = (&self.worker, &self.inspection) else {
            return;
        };
        worker.submit(crate::source::Frame {
            index: ins.frame.index,
            timestamp: ins.frame.timestamp,
            image: (*ins.image).clone(),
            path: ins.frame.path.clone(),
            output_stem: ins.frame.output_stem.clone(),
        });
    }

    /// Opens an image, folder, video or camera.
    pub fn open_input(&mut self, input: PlayerInput) {
        if self.worker.is_none() {
            self.pending_input = Some(input);
            return;
        }
        self.input_path = match &input {
            PlayerInput::Path(p) => {
                self.settings.last_dir = p.parent().map(Path::to_path_buf);
                Some(p.clone())
            }
            _ => None,
        };
        let had_center = self.settings.center.take().is_some();
        let had_box = self.settings.person_box.take().is_some();
        let live = matches!(input, PlayerInput::Camera { .. });
        // A camera runs at the live size and on several workers.
        let live_changed = live != self.live;
        self.live = live;
        if had_center || had_box || live_changed {
            // The clicked centre and the dragged box belonged to the previous input.
            if let Some(model) = self.model().cloned() {
                self.worker = Some(self.new_worker(&model));
            }
        }
        let Some(worker) = &self.worker else {
            return;
        };
        let ctx = self.ctx.clone();
        self.source = None;
        self.player = Some(Player::spawn(input, worker.submitter(), move || {
            ctx.request_repaint()
        }));
    }

    /// Frames the worker replaced before running them (newest frame wins), when one runs.
    pub fn frames_dropped(&self) -> Option<u64> {
        self.worker.as_ref().map(Worker::dropped)
    }

    /// True when the inference threads have run (or dropped) every frame given to them; the
    /// results are then on their way to the next update.
    pub fn inference_idle(&self) -> bool {
        self.worker.as_ref().is_none_or(Worker::idle)
    }

    /// Carries out what the Camera menu chose.
    pub fn camera_action(&mut self, action: super::camera::CameraAction) {
        use super::camera::CameraAction;
        match action {
            CameraAction::Open { id, mode } => self.open_input(PlayerInput::Camera { id, mode }),
            CameraAction::Simulate(video) => {
                let name = video
                    .file_name()
                    .map_or_else(|| "video".into(), |n| n.to_string_lossy().into_owned());
                let sim = crate::source::SimCamera::new(0, &name, &video);
                self.open_input(PlayerInput::Camera {
                    id: crate::source::CameraId::Simulated(sim),
                    mode: None,
                });
            }
            CameraAction::Mirror(on) => self.view.mirror = on,
        }
    }

    pub fn player_command(&mut self, cmd: PlayerCommand) {
        if let Some(p) = &self.player {
            p.send(cmd);
        }
    }

    /// Number of stages of the current inspection.
    pub fn stage_count(&self) -> usize {
        self.inspection.as_ref().map_or(0, |i| i.stages.len())
    }

    /// Collects finished work from the model loader, the player and the worker.
    fn poll(&mut self) {
        self.poll_batch();
        if let ModelSlot::Loading(rx, _) = &self.model {
            match rx.try_recv() {
                Ok(Ok(model)) => {
                    if std::mem::take(&mut self.adopt_model_defaults) {
                        self.settings.input_size = model.info().input_size;
                        self.settings.resize = model.info().resize;
                        self.settings.filter = model.info().filter;
                        self.settings.center = None;
                    }
                    self.model = ModelSlot::Ready(Box::new(model));
                    self.rebuild_worker();
                }
                Ok(Err(e)) => {
                    self.notify(format!("cannot load model: {e}"), true);
                    self.model = ModelSlot::Failed(e);
                }
                Err(mpsc::TryRecvError::Empty) => {}
                Err(mpsc::TryRecvError::Disconnected) => {
                    self.model = ModelSlot::Failed("the loader stopped".into());
                }
            }
        }
        let events = self.player.as_ref().map(Player::poll).unwrap_or_default();
        for ev in events {
            match ev {
                PlayerEvent::Opened {
                    description,
                    frames,
                } => {
                    // A camera back after a loss goes on playing.
                    let playing = self
                        .source
                        .as_ref()
                        .is_some_and(|s| s.playing && s.disconnected.is_some());
                    if playing {
                        self.notify(format!("reconnected: {description}"), false);
                    }
                    self.source = Some(SourceState {
                        description,
                        frames,
                        playing,
                        ..SourceState::default()
                    });
                }
                PlayerEvent::Disconnected(e) => {
                    if let Some(s) = &mut self.source {
                        s.disconnected = Some(e.clone());
                        s.disconnected_at = Some(Instant::now());
                    }
                    self.notify(format!("{e}; waiting for it to come back"), true);
                }
                PlayerEvent::Position(i) => {
                    if let Some(s) = &mut self.source {
                        s.position = i;
                    }
                }
                PlayerEvent::Playing(p) => {
                    if let Some(s) = &mut self.source {
                        s.playing = p;
                    }
                }
                PlayerEvent::Ended => {
                    if let Some(s) = &mut self.source {
                        s.playing = false;
                    }
                }
                PlayerEvent::Error(e) => self.notify(e, true),
            }
        }
        let mut results = Vec::new();
        if let Some(w) = &self.worker {
            results.extend(w.results().try_iter());
        }
        for r in results {
            match r {
                Ok(ins) => {
                    let n = ins.stages.len();
                    if self.stage >= n {
                        self.stage = n.saturating_sub(1);
                    }
                    self.inspection = Some(Arc::new(ins));
                    self.inspection_serial += 1;
                    self.inference_rate.tick(Instant::now());
                }
                Err(e) => self.notify(e.to_string(), true),
            }
        }
    }

    /// Starts exporting every frame of the open video or folder into `out_dir`.
    pub fn start_batch(&mut self, out_dir: PathBuf, video: bool) -> Result<(), String> {
        if self.batch.is_some() {
            return Err("an export is already running".into());
        }
        let input = self
            .input_path
            .clone()
            .ok_or("open a video or a folder first")?;
        let model = self.model().cloned().ok_or("no model is loaded")?;
        let rs = self
            .render_state
            .clone()
            .ok_or("GPU rendering is not available in this session")?;
        let pipeline = Pipeline::new(model.clone(), self.pipeline_config(&model));
        let request = super::batch::BatchRequest {
            input,
            out_dir,
            stage: self.stage,
            joint: super::overlay::selected_joint(self.settings.joint_view),
            settings: self.settings.clone(),
            maps: true,
            video,
        };
        let ctx = self.ctx.clone();
        let job = super::batch::spawn(
            request,
            pipeline,
            rs.device.clone(),
            rs.queue.clone(),
            move || ctx.request_repaint(),
        )?;
        self.batch = Some(job);
        Ok(())
    }

    fn poll_batch(&mut self) {
        let Some(job) = &self.batch else { return };
        if let Some(r) = job.finished() {
            self.batch = None;
            match r {
                Ok(rep) => {
                    let mut text = format!(
                        "{} {} frames to {}",
                        if rep.cancelled {
                            "cancelled after"
                        } else {
                            "exported"
                        },
                        rep.frames,
                        rep.folder.display()
                    );
                    if let Some(v) = &rep.video {
                        text.push_str(&format!(" and {}", v.display()));
                    }
                    if let Some(e) = rep.errors.first() {
                        text.push_str(&format!(
                            "; {} frame(s) failed, first: {e}",
                            rep.errors.len()
                        ));
                    }
                    let failed = !rep.errors.is_empty();
                    self.notify(text, failed);
                }
                Err(e) => self.notify(format!("export failed: {e}"), true),
            }
        }
    }

    /// True while something is in flight (model loading, frames being processed).
    pub fn busy(&self) -> bool {
        matches!(self.model, ModelSlot::Loading(..))
            || self.batch.is_some()
            || self.source.as_ref().is_some_and(|s| s.playing)
            || (self.player.is_some() && self.inspection.is_none())
    }

    /// Where the frame was drawn in the main view at the last update (screen points; `None`
    /// before the first frame and in the joint grid). Image pixel `(x, y)` (pixel centres at
    /// integers) lies at `min + ((x + 0.5) / width, (y + 0.5) / height) * size`.
    /// The views drawn in the last frame (one, or two when comparing side by side).
    pub fn view_rects(&self) -> &[egui::Rect] {
        &self.view_rects
    }

    pub fn image_screen_rect(&self) -> Option<egui::Rect> {
        self.image_screen_rect
    }

    /// Opens an image of the failure browser in the viewer at its stage, with the chosen
    /// joint's map and without the skeleton (the browser draws the ground truth and the
    /// evaluated predictions over it).
    pub fn open_failure(&mut self, shown: super::failures::Shown) {
        self.stage = shown.stage;
        self.stage_play = None;
        self.settings.joint_view = failure_joint_view(&self.eval.failures, &shown);
        self.settings.show_heatmap = true;
        // The browser draws the evaluated predictions; the viewer's own skeleton would
        // cover them (K brings it back).
        self.settings.show_skeleton = false;
        self.open_input(PlayerInput::Path(shown.path.clone()));
        self.eval.failures.shown = Some(shown);
    }

    /// The shown frame and a pipeline with the current settings, for the Experiments window.
    fn experiment_input(&self) -> Option<(Pipeline, crate::source::Frame)> {
        let model = self.model()?;
        let ins = self.inspection.as_ref()?;
        let frame = crate::source::Frame {
            index: ins.frame.index,
            timestamp: ins.frame.timestamp,
            image: (*ins.image).clone(),
            path: ins.frame.path.clone(),
            output_stem: ins.frame.output_stem.clone(),
        };
        Some((
            Pipeline::new(model.clone(), self.pipeline_config(model)),
            frame,
        ))
    }

    /// The main model's pipeline and the open input's path, for the Stability window.
    fn jitter_input(&self) -> Result<(Pipeline, PathBuf), String> {
        let model = self.model().ok_or("no model is loaded")?;
        let path = self
            .input_path
            .clone()
            .ok_or("open a video first (File or drop one on the window)")?;
        Ok((
            Pipeline::new(model.clone(), self.pipeline_config(model)),
            path,
        ))
    }

    /// The frame as RGBA for the GPU, converted once per inspection.
    pub(super) fn frame_rgba(&mut self) -> Option<(u64, Arc<image::RgbaImage>)> {
        let ins = self.inspection.as_ref()?;
        let key = self.inspection_serial;
        if self.rgba.as_ref().map(|(k, _)| *k) != Some(key) {
            let rgba = image::DynamicImage::ImageRgb8((*ins.image).clone()).to_rgba8();
            self.rgba = Some((key, Arc::new(rgba)));
        }
        self.rgba.clone()
    }
}

/// The map of the failure browser's chosen joint (the maximum over joints when the model has
/// no channel of its own for it).
fn failure_joint_view(
    f: &super::failures::FailureBrowser,
    shown: &super::failures::Shown,
) -> super::settings::JointView {
    match f
        .joint
        .and_then(|j| shown.report.model_channels.get(j).copied().flatten())
    {
        Some(c) => super::settings::JointView::Joint(c),
        None => super::settings::JointView::Max,
    }
}

fn log_error(text: &str) {
    tracing::error!("{text}");
}

impl eframe::App for PosescopeApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.poll();
        self.display_rate.tick(Instant::now());
        super::keys::handle(self, ui.ctx());
        super::panels::top_bar(self, ui);
        super::panels::side_panel(self, ui);
        super::panels::status_bar(self, ui);
        super::viewport::central(self, ui);
        super::help::window(ui.ctx(), &mut self.settings.show_help);
        self.eval.failures.target = self
            .model()
            .and_then(|m| crate::models::target::training_target(m.info()));
        super::eval_panel::window(
            ui.ctx(),
            &mut self.eval,
            &self.settings.model,
            &self.settings.device,
        );
        if let Some(shown) = self.eval.failures.open_request.take() {
            self.open_failure(shown);
        } else if std::mem::take(&mut self.eval.failures.joint_changed) {
            if let Some(shown) = self.eval.failures.shown.clone() {
                self.settings.joint_view = failure_joint_view(&self.eval.failures, &shown);
            }
        }
        let input = if self.experiments.needs_input(self.inspection_serial) {
            self.experiment_input()
        } else {
            None
        };
        super::experiments_panel::window(
            ui.ctx(),
            &mut self.experiments,
            self.inspection_serial,
            input,
        );
        super::versus_panel::window(
            ui.ctx(),
            &mut self.versus,
            self.inspection_serial,
            self.inspection.as_ref(),
            &self.settings.device,
        );
        let input = self.jitter.wants_input().then(|| self.jitter_input());
        super::jitter_panel::window(ui.ctx(), &mut self.jitter, input);
        super::panels::dropped_files(self, ui.ctx());
        if self.busy() {
            ui.ctx().request_repaint_after(Duration::from_millis(30));
        }
        if let Some(t) = self.stage_play {
            super::panels::advance_stage_play(self, t);
            ui.ctx().request_repaint_after(Duration::from_millis(50));
        }
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, STORAGE_KEY, &self.settings);
    }
}
