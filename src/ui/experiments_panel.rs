//! The Experiments window: intervention (erase a joint's map, paint a peak with the brush,
//! move CPM's centre at stage t, and see stages t+1…T re-run, before and after side by side
//! with each joint's movement as an arrow) and occlusion sensitivity (a grey patch slid over
//! the image in the background, with progress; the drop per stage drawn over the image).
//!
//! Every network run happens on a background thread ([`crate::experiments`]); the window
//! only polls channels, so the UI never waits. Panels are small CPU-drawn pictures
//! ([`crate::export::experiments`]), redrawn when an edit's result arrives, not per frame.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

use eframe::egui;

use crate::experiments::intervene::{movements, Session};
use crate::experiments::occlusion::{self, OcclusionParams, OcclusionResult};
use crate::export::experiments as pictures;
use crate::inspection::Inspection;
use crate::pipeline::Pipeline;
use crate::pose::{edit, Maps};
use crate::source::Frame;

/// Which experiment the window shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Intervene,
    Occlusion,
}

/// What a stroke on the edit panel does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    /// Zero the joint's map under the brush.
    Erase,
    /// Paint a Gaussian peak where clicked.
    Paint,
    /// Move CPM's centre map (networks with one).
    Center,
}

/// A running occlusion run.
pub struct OcclusionJob {
    pub done: Arc<AtomicUsize>,
    pub total: Arc<AtomicUsize>,
    cancel: Arc<AtomicBool>,
    result: mpsc::Receiver<Result<Option<OcclusionResult>, String>>,
}

/// The window's state (not persisted).
pub struct ExperimentsState {
    pub open: bool,
    pub mode: Mode,
    /// The edited stage, 0-based.
    pub stage: usize,
    /// The stage shown before / after, 0-based (`usize::MAX`: the last).
    pub view_stage: usize,
    pub joint: usize,
    pub tool: Tool,
    /// Erasing brush radius, map cells.
    pub brush: f64,
    pub session: Option<Arc<Session>>,
    starting: Option<mpsc::Receiver<Result<Session, String>>>,
    /// The inspection serial the session was started on.
    session_serial: Option<u64>,
    /// The edited stage's maps and the moved centre (image pixels).
    pub edited_maps: Option<Maps>,
    pub center: Option<(f64, f64)>,
    /// The edit changed since the last re-run was started.
    dirty: bool,
    resuming: Option<mpsc::Receiver<Result<Inspection, String>>>,
    /// The re-run on the current edit.
    pub edited: Option<Arc<Inspection>>,
    pub patch: u32,
    pub stride: u32,
    pub occlusion_job: Option<OcclusionJob>,
    pub occlusion: Option<Arc<OcclusionResult>>,
    pub error: Option<String>,
    /// Where the edit panel was drawn (screen points), for tests.
    pub edit_rect: Option<egui::Rect>,
    serial: u64,
    textures: Option<(u64, Vec<egui::TextureHandle>)>,
}

impl Default for ExperimentsState {
    fn default() -> Self {
        Self {
            open: false,
            mode: Mode::Intervene,
            stage: 0,
            view_stage: usize::MAX,
            joint: 0,
            tool: Tool::Erase,
            brush: 1.5,
            session: None,
            starting: None,
            session_serial: None,
            edited_maps: None,
            center: None,
            dirty: false,
            resuming: None,
            edited: None,
            patch: 16,
            stride: 8,
            occlusion_job: None,
            occlusion: None,
            error: None,
            edit_rect: None,
            serial: 0,
            textures: None,
        }
    }
}

impl ExperimentsState {
    /// Whether the window needs the current frame and pipeline (open, and no session on the
    /// frame `serial` yet).
    pub fn needs_input(&self, serial: u64) -> bool {
        self.open && self.starting.is_none() && self.session_serial != Some(serial)
    }

    /// Whether a background run is in flight.
    pub fn busy(&self) -> bool {
        self.starting.is_some() || self.resuming.is_some() || self.occlusion_job.is_some()
    }

    fn start_session(
        &mut self,
        pipeline: Pipeline,
        frame: Frame,
        serial: u64,
        ctx: &egui::Context,
    ) {
        let (tx, rx) = mpsc::channel();
        let ctx = ctx.clone();
        std::thread::spawn(move || {
            let _ = tx.send(Session::start(pipeline, frame).map_err(|e| e.to_string()));
            ctx.request_repaint();
        });
        self.starting = Some(rx);
        self.session_serial = Some(serial);
        self.occlusion = None;
        self.reset_edit();
    }

    /// Drops the edit (the edited run shows the original again).
    pub fn reset_edit(&mut self) {
        self.edited_maps = None;
        self.center = None;
        self.edited = None;
        self.dirty = false;
        self.serial += 1;
    }

    /// The edited stage's maps, starting from the original run's.
    fn maps_mut(&mut self) -> Option<&mut Maps> {
        if self.edited_maps.is_none() {
            let s = self.session.as_ref()?;
            self.edited_maps = Some(s.original.stages.get(self.stage)?.heatmaps.clone());
        }
        self.edited_maps.as_mut()
    }

    /// Erases the selected joint's whole map at the edited stage.
    pub fn erase_joint(&mut self) {
        let joint = self.joint;
        if let Some(m) = self.maps_mut() {
            if let Err(e) = edit::erase(m, joint) {
                self.error = Some(e.to_string());
            }
            self.dirty = true;
        }
    }

    /// Applies the tool at image point `at`.
    pub fn stroke(&mut self, at: (f64, f64)) {
        let Some(session) = self.session.clone() else {
            return;
        };
        if self.tool == Tool::Center {
            if session.pipeline().model().moves_center() {
                self.center = Some(at);
                self.dirty = true;
            }
            return;
        }
        let (stage, joint, brush, tool) = (self.stage, self.joint, self.brush, self.tool);
        let peak = session
            .original
            .stages
            .get(stage)
            .and_then(|s| edit::channel_max(&s.heatmaps, joint))
            .unwrap_or(1.0)
            .max(1.0);
        let result =
            edit::image_to_map(&session.original.stage_to_image(stage), at).and_then(|cell| {
                let Some(m) = self.maps_mut() else {
                    return Ok(());
                };
                match tool {
                    Tool::Erase => edit::erase_disc(m, joint, cell, brush),
                    _ => edit::paint_peak(
                        m,
                        joint,
                        cell,
                        crate::experiments::intervene::PAINT_SIGMA,
                        peak,
                    ),
                }
            });
        match result {
            Ok(()) => self.dirty = true,
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    /// Collects finished background work and starts the next re-run when the edit changed.
    pub fn poll(&mut self, ctx: &egui::Context) {
        if let Some(rx) = &self.starting {
            match rx.try_recv() {
                Ok(Ok(s)) => {
                    self.stage = self.stage.min(s.stages().saturating_sub(1));
                    self.session = Some(Arc::new(s));
                    self.starting = None;
                    self.error = None;
                    self.serial += 1;
                }
                Ok(Err(e)) => {
                    self.error = Some(e);
                    self.starting = None;
                }
                Err(mpsc::TryRecvError::Empty) => {}
                Err(mpsc::TryRecvError::Disconnected) => self.starting = None,
            }
        }
        if let Some(rx) = &self.resuming {
            match rx.try_recv() {
                Ok(r) => {
                    match r {
                        Ok(ins) => self.edited = Some(Arc::new(ins)),
                        Err(e) => self.error = Some(e),
                    }
                    self.resuming = None;
                    self.serial += 1;
                }
                Err(mpsc::TryRecvError::Empty) => {}
                Err(mpsc::TryRecvError::Disconnected) => self.resuming = None,
            }
        }
        if self.dirty && self.resuming.is_none() {
            if let (Some(session), Some(maps)) = (
                self.session.clone(),
                self.edited_maps.clone().or_else(|| {
                    self.session
                        .as_ref()?
                        .original
                        .stages
                        .get(self.stage)
                        .map(|s| s.heatmaps.clone())
                }),
            ) {
                let (stage, center, ctx) = (self.stage, self.center, ctx.clone());
                let (tx, rx) = mpsc::channel();
                std::thread::spawn(move || {
                    let _ = tx.send(
                        session
                            .resume(stage, maps, center)
                            .map_err(|e| e.to_string()),
                    );
                    ctx.request_repaint();
                });
                self.resuming = Some(rx);
                self.dirty = false;
                self.serial += 1;
            }
        }
        if let Some(job) = &self.occlusion_job {
            match job.result.try_recv() {
                Ok(r) => {
                    match r {
                        Ok(Some(res)) => self.occlusion = Some(Arc::new(res)),
                        Ok(None) => {}
                        Err(e) => self.error = Some(e),
                    }
                    self.occlusion_job = None;
                    self.serial += 1;
                }
                Err(mpsc::TryRecvError::Empty) => {}
                Err(mpsc::TryRecvError::Disconnected) => self.occlusion_job = None,
            }
        }
    }

    /// Starts the occlusion run on the session's frame in the background.
    pub fn start_occlusion(&mut self, ctx: &egui::Context) {
        let Some(session) = self.session.clone() else {
            return;
        };
        let params = OcclusionParams {
            joint: self.joint,
            patch: self.patch.max(1),
            stride: self.stride.max(1),
            batch: 32,
        };
        let done = Arc::new(AtomicUsize::new(0));
        let total = Arc::new(AtomicUsize::new(0));
        let cancel = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let (d, t, c, ctx) = (done.clone(), total.clone(), cancel.clone(), ctx.clone());
        std::thread::spawn(move || {
            let ins = &session.original;
            let frame = Frame {
                index: ins.frame.index,
                timestamp: ins.frame.timestamp,
                image: (*ins.image).clone(),
                path: ins.frame.path.clone(),
                output_stem: ins.frame.output_stem.clone(),
            };
            let r = occlusion::run(session.pipeline(), &frame, &params, &mut |n, of| {
                d.store(n, Ordering::Relaxed);
                t.store(of, Ordering::Relaxed);
                ctx.request_repaint();
                if c.load(Ordering::Relaxed) {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            });
            let _ = tx.send(r.map_err(|e| e.to_string()));
            ctx.request_repaint();
        });
        self.occlusion_job = Some(OcclusionJob {
            done,
            total,
            cancel,
            result: rx,
        });
    }
}

/// The window. `input` is the current frame and pipeline when
/// [`ExperimentsState::needs_input`] said so.
pub fn window(
    ctx: &egui::Context,
    state: &mut ExperimentsState,
    serial: u64,
    input: Option<(Pipeline, Frame)>,
) {
    if let Some((pipeline, frame)) = input {
        state.start_session(pipeline, frame, serial, ctx);
    }
    state.poll(ctx);
    if !state.open {
        return;
    }
    let mut open = state.open;
    egui::Window::new("Experiments")
        .open(&mut open)
        .default_width(860.0)
        .show(ctx, |ui| contents(ui, state));
    state.open = open;
    if state.busy() {
        ctx.request_repaint_after(std::time::Duration::from_millis(50));
    }
}

fn contents(ui: &mut egui::Ui, st: &mut ExperimentsState) {
    ui.horizontal(|ui| {
        ui.selectable_value(&mut st.mode, Mode::Intervene, "Intervene");
        ui.selectable_value(&mut st.mode, Mode::Occlusion, "Occlusion");
    });
    if let Some(e) = &st.error {
        ui.colored_label(egui::Color32::LIGHT_RED, e);
    }
    let Some(session) = st.session.clone() else {
        ui.label(if st.starting.is_some() {
            "running the network…"
        } else {
            "no frame yet"
        });
        return;
    };
    let ins = &session.original;
    let stages = ins.stages.len();
    let channels = ins.stages.first().map_or(0, |s| s.heatmaps.channels());
    ui.horizontal(|ui| {
        let name = |k: usize| ins.joints.joints.get(k).copied().unwrap_or("background");
        egui::ComboBox::from_label("joint")
            .selected_text(name(st.joint))
            .show_ui(ui, |ui| {
                for k in 0..channels {
                    ui.selectable_value(&mut st.joint, k, name(k));
                }
            });
        if st.mode == Mode::Intervene {
            let before = st.stage;
            ui.add(
                egui::Slider::new(&mut st.stage, 0..=stages.saturating_sub(1))
                    .custom_formatter(|v, _| format!("{}", v + 1.0))
                    .text("edit at stage"),
            );
            if st.stage != before {
                st.reset_edit();
            }
        }
    });
    match st.mode {
        Mode::Intervene => intervene_ui(ui, st, &session),
        Mode::Occlusion => occlusion_ui(ui, st, &session),
    }
}

fn texture(ui: &egui::Ui, name: &str, img: &image::RgbImage) -> egui::TextureHandle {
    let size = [img.width() as usize, img.height() as usize];
    let color = egui::ColorImage::from_rgb(size, img.as_raw());
    ui.ctx()
        .load_texture(name, color, egui::TextureOptions::LINEAR)
}

/// The panels' textures for the current serial, drawn by `draw` when it changed.
fn textures(
    ui: &egui::Ui,
    st: &mut ExperimentsState,
    key: u64,
    draw: impl FnOnce() -> Vec<image::RgbImage>,
) -> Vec<egui::TextureHandle> {
    if let Some((k, t)) = &st.textures {
        if *k == key {
            return t.clone();
        }
    }
    let t: Vec<_> = draw()
        .iter()
        .enumerate()
        .map(|(i, img)| texture(ui, &format!("experiment{i}"), img))
        .collect();
    st.textures = Some((key, t.clone()));
    t
}

fn panel_size(img: &image::RgbImage, width: f32) -> egui::Vec2 {
    egui::vec2(
        width,
        width * img.height() as f32 / img.width().max(1) as f32,
    )
}

fn intervene_ui(ui: &mut egui::Ui, st: &mut ExperimentsState, session: &Session) {
    let ins = &session.original;
    let stages = ins.stages.len();
    let last = stages.saturating_sub(1);
    let view = st.view_stage.min(last);
    ui.horizontal(|ui| {
        ui.label("brush:");
        ui.selectable_value(&mut st.tool, Tool::Erase, "erase");
        ui.selectable_value(&mut st.tool, Tool::Paint, "paint peak");
        if session.pipeline().model().moves_center() {
            ui.selectable_value(&mut st.tool, Tool::Center, "move centre");
        }
        ui.add(egui::Slider::new(&mut st.brush, 0.5..=6.0).text("radius (cells)"));
        if ui.button("Erase joint").clicked() {
            st.erase_joint();
        }
        if ui.button("Reset").clicked() {
            st.reset_edit();
        }
    });
    let mut shown = view;
    ui.add(
        egui::Slider::new(&mut shown, 0..=last)
            .custom_formatter(|v, _| format!("{}", v + 1.0))
            .text("compare at stage"),
    );
    if shown != view {
        st.view_stage = shown;
        st.serial += 1;
    }
    let edited = st.edited.clone();
    let after: &Inspection = edited.as_deref().unwrap_or(ins);
    let (stage, joint) = (st.stage, st.joint);
    // The edit panel shows the edited maps at stage t (before the re-run arrives too).
    let mut editing = after.clone();
    if let (Some(m), Some(s)) = (&st.edited_maps, editing.stages.get_mut(stage)) {
        s.heatmaps = m.clone();
    }
    let moves = movements(ins, after, shown);
    let key = st
        .serial
        .wrapping_mul(131)
        .wrapping_add((joint * 7 + stage) as u64);
    let pics = textures(ui, st, key, || {
        [
            pictures::joint_view(&editing, stage, joint),
            pictures::joint_view(ins, shown, joint),
            pictures::joint_view(after, shown, joint),
        ]
        .into_iter()
        .filter_map(Result::ok)
        .collect()
    });
    let (w, h) = (ins.image.width(), ins.image.height());
    let size = panel_size(
        &ins.image,
        (ui.available_width() / 3.0 - 8.0).clamp(120.0, 420.0),
    );
    ui.horizontal(|ui| {
        let titles = [
            format!("stage {} edited (brush here)", stage + 1),
            format!("stage {} before", shown + 1),
            format!("stage {} after", shown + 1),
        ];
        for (i, (tex, title)) in pics.iter().zip(titles).enumerate() {
            ui.vertical(|ui| {
                ui.label(title);
                let sense = if i == 0 {
                    egui::Sense::click_and_drag()
                } else {
                    egui::Sense::hover()
                };
                let r = ui.add(egui::Image::new(tex).fit_to_exact_size(size).sense(sense));
                let to_screen = |p: (f64, f64)| {
                    r.rect.min
                        + egui::vec2(
                            ((p.0 + 0.5) / f64::from(w)) as f32 * r.rect.width(),
                            ((p.1 + 0.5) / f64::from(h)) as f32 * r.rect.height(),
                        )
                };
                if i == 0 {
                    st.edit_rect = Some(r.rect);
                    if let Some(pos) = r
                        .interact_pointer_pos()
                        .filter(|_| r.clicked() || r.dragged())
                    {
                        let v = (pos - r.rect.min) / r.rect.size();
                        st.stroke((
                            f64::from(v.x) * f64::from(w) - 0.5,
                            f64::from(v.y) * f64::from(h) - 0.5,
                        ));
                    }
                    if let Some(c) = st.center.or(ins.center) {
                        ui.painter().circle_stroke(
                            to_screen(c),
                            5.0,
                            egui::Stroke::new(2.0, egui::Color32::WHITE),
                        );
                    }
                }
                if i == 2 {
                    let stroke = egui::Stroke::new(2.0, egui::Color32::WHITE);
                    for m in moves.iter().filter(|m| m.distance() >= 1.0) {
                        let (a, b) = (to_screen(m.from), to_screen(m.to));
                        ui.painter().arrow(a, b - a, stroke);
                    }
                }
            });
        }
    });
    let moved: Vec<String> = moves
        .iter()
        .filter(|m| m.distance() >= 1.0)
        .map(|m| {
            format!(
                "{} {:.0} px",
                ins.joints.joints.get(m.joint).copied().unwrap_or(""),
                m.distance()
            )
        })
        .collect();
    ui.label(if st.resuming.is_some() {
        "re-running the later stages…".to_string()
    } else if moved.is_empty() {
        "no joint peak moved".to_string()
    } else {
        format!("moved: {}", moved.join(", "))
    });
}

fn occlusion_ui(ui: &mut egui::Ui, st: &mut ExperimentsState, session: &Session) {
    let ins = &session.original;
    ui.horizontal(|ui| {
        ui.add(
            egui::DragValue::new(&mut st.patch)
                .range(1..=512)
                .prefix("patch "),
        );
        ui.add(
            egui::DragValue::new(&mut st.stride)
                .range(1..=512)
                .prefix("stride "),
        );
        ui.label("(network-input pixels)");
        if let Some(job) = &st.occlusion_job {
            let (d, t) = (
                job.done.load(Ordering::Relaxed),
                job.total.load(Ordering::Relaxed).max(1),
            );
            ui.add(
                egui::ProgressBar::new(d as f32 / t as f32)
                    .text(format!("{d}/{t} positions"))
                    .desired_width(200.0),
            );
            if ui.button("Cancel").clicked() {
                job.cancel.store(true, Ordering::Relaxed);
            }
        } else if ui.button("Run occlusion").clicked() {
            st.start_occlusion(ui.ctx());
        }
    });
    let Some(result) = st.occlusion.clone() else {
        ui.label(
            "the drop of the joint's belief at its unoccluded peak, per patch position and stage",
        );
        return;
    };
    let last = result.drops.len().saturating_sub(1);
    let mut shown = st.view_stage.min(last);
    ui.add(
        egui::Slider::new(&mut shown, 0..=last)
            .custom_formatter(|v, _| format!("{}", v + 1.0))
            .text("stage"),
    );
    if shown != st.view_stage.min(last) {
        st.view_stage = shown;
        st.serial += 1;
    }
    let key = st
        .serial
        .wrapping_mul(131)
        .wrapping_add(1_000_000 + shown as u64);
    let pics = textures(ui, st, key, || {
        pictures::occlusion_panel(&ins.image, &result, shown)
            .into_iter()
            .collect()
    });
    let size = panel_size(&ins.image, ui.available_width().clamp(120.0, 520.0));
    for tex in &pics {
        ui.add(egui::Image::new(tex).fit_to_exact_size(size));
    }
    let (cols, rows) = result.grid;
    let drop = result.drops.get(shown).map_or(0.0, |d| {
        d.as_slice().iter().copied().fold(f32::MIN, f32::max)
    });
    ui.label(format!(
        "{cols}×{rows} positions in {:.2} s; stage {}: peak {:.3}, largest drop {drop:.3}",
        result.elapsed.as_secs_f64(),
        shown + 1,
        result.peaks.get(shown).map_or(0.0, |p| p.1),
    ));
}
