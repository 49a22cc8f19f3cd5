//! The Model-vs-model window: a second model (B) runs in the background on the frame the main
//! model (A) showed last; both side by side with their skeletons, or A - B of a shared joint's
//! final map in image space (coolwarm), and the keypoint-distance table.
//!
//! B is loaded and run on background threads ([`crate::experiments::versus`]); the window
//! only polls channels. Each new inspection of A is compared once B is free (newest wins).

use std::sync::{mpsc, Arc};

use eframe::egui;

use crate::experiments::versus::{run_against, Comparison};
use crate::export::versus as pictures;
use crate::inspection::Inspection;
use crate::models::Model;
use crate::pipeline::{PersonMode, Pipeline, PipelineConfig};

/// What the window shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    SideBySide,
    Difference,
}

/// The window's state (not persisted).
pub struct VersusState {
    pub open: bool,
    /// Model B as typed or picked: a catalogue id or a weights file (empty: at the first
    /// opening, the first catalogue model with weights here other than A).
    pub model_b: String,
    /// How a single-person B runs (top-down crops by default, to be comparable with a
    /// multi-person A).
    pub person_b: PersonMode,
    pub view: View,
    /// Index into the comparison's shared channels.
    pub joint: usize,
    /// Keypoints below this score are left out of the table.
    pub min_score: f32,
    /// Scale each model's map to its own peak before subtracting.
    pub normalize: bool,
    loading: Option<(String, mpsc::Receiver<Result<Model, String>>)>,
    /// The loaded model B.
    pub model: Option<Model>,
    running: Option<mpsc::Receiver<Result<Comparison, String>>>,
    /// The inspection serial last sent to B.
    compared_serial: Option<u64>,
    pub comparison: Option<Arc<Comparison>>,
    /// The largest |A - B| of the shown difference.
    pub difference_max: Option<f32>,
    pub error: Option<String>,
    /// Where the pictures were drawn (screen points), for tests.
    pub picture_rects: Vec<egui::Rect>,
    serial: u64,
    textures: Option<(u64, Vec<egui::TextureHandle>)>,
}

impl Default for VersusState {
    fn default() -> Self {
        Self {
            open: false,
            model_b: String::new(),
            person_b: PersonMode::TopDown,
            view: View::SideBySide,
            joint: 0,
            min_score: 0.1,
            normalize: true,
            loading: None,
            model: None,
            running: None,
            compared_serial: None,
            comparison: None,
            difference_max: None,
            error: None,
            picture_rects: Vec::new(),
            serial: 0,
            textures: None,
        }
    }
}

impl VersusState {
    /// Whether a load or a run is in flight.
    pub fn busy(&self) -> bool {
        self.loading.is_some() || self.running.is_some()
    }

    /// Starts loading [`VersusState::model_b`] on `device` in the background.
    pub fn load(&mut self, device: &str, ctx: &egui::Context) {
        let (tx, rx) = mpsc::channel();
        let (name, device, ctx2) = (
            self.model_b.trim().to_string(),
            device.to_string(),
            ctx.clone(),
        );
        self.loading = Some((name.clone(), rx));
        self.error = None;
        std::thread::spawn(move || {
            let r = device
                .parse::<crate::device::DeviceSpec>()
                .map_err(|e| e.to_string())
                .and_then(|spec| spec.open().map_err(|e| e.to_string()))
                .and_then(|dev| {
                    Model::load(&name, &dev).map_err(|e| format!("model B '{name}': {e}"))
                });
            let _ = tx.send(r);
            ctx2.request_repaint();
        });
    }

    /// Compares the current inspection again (after B or its options changed).
    pub fn rerun(&mut self) {
        self.compared_serial = None;
    }

    fn start_run(&mut self, a: Arc<Inspection>, serial: u64, ctx: &egui::Context) {
        let Some(model) = self.model.clone() else {
            return;
        };
        let mut config = PipelineConfig::for_model(&model);
        config.person = self.person_b;
        let pipeline = Pipeline::new(model, config);
        let (tx, rx) = mpsc::channel();
        let (min_score, ctx) = (self.min_score, ctx.clone());
        std::thread::spawn(move || {
            let _ = tx.send(run_against(a, &pipeline, min_score).map_err(|e| e.to_string()));
            ctx.request_repaint();
        });
        self.running = Some(rx);
        self.compared_serial = Some(serial);
    }

    /// Collects finished background work and starts comparing the newest inspection.
    pub fn poll(&mut self, ctx: &egui::Context, serial: u64, a: Option<&Arc<Inspection>>) {
        if let Some((name, rx)) = &self.loading {
            match rx.try_recv() {
                Ok(Ok(m)) => {
                    self.model = Some(m);
                    self.loading = None;
                    self.rerun();
                }
                Ok(Err(e)) => {
                    self.error = Some(e);
                    self.loading = None;
                }
                Err(mpsc::TryRecvError::Empty) => {}
                Err(mpsc::TryRecvError::Disconnected) => {
                    self.error = Some(format!("loading '{name}' stopped"));
                    self.loading = None;
                }
            }
        }
        if let Some(rx) = &self.running {
            match rx.try_recv() {
                Ok(r) => {
                    match r {
                        Ok(c) => {
                            self.joint = self.joint.min(c.shared.len().saturating_sub(1));
                            self.comparison = Some(Arc::new(c));
                            self.error = None;
                        }
                        Err(e) => self.error = Some(e),
                    }
                    self.running = None;
                    self.serial += 1;
                }
                Err(mpsc::TryRecvError::Empty) => {}
                Err(mpsc::TryRecvError::Disconnected) => self.running = None,
            }
        }
        if self.open && self.running.is_none() && self.compared_serial != Some(serial) {
            if let Some(a) = a {
                self.start_run(a.clone(), serial, ctx);
            }
        }
    }

    /// Sets the table's score threshold (recomputed on the current comparison).
    pub fn set_min_score(&mut self, min_score: f32) {
        self.min_score = min_score;
        if let Some(c) = &self.comparison {
            match c.with_min_score(min_score) {
                Ok(c) => self.comparison = Some(Arc::new(c)),
                Err(e) => self.error = Some(e.to_string()),
            }
            self.serial += 1;
        }
    }
}

/// The window. `a` is the main view's inspection (serial `serial`).
pub fn window(
    ctx: &egui::Context,
    state: &mut VersusState,
    serial: u64,
    a: Option<&Arc<Inspection>>,
    device: &str,
) {
    if state.open && state.model.is_none() && state.loading.is_none() && state.error.is_none() {
        if state.model_b.trim().is_empty() {
            let a_id = a.map(|a| a.model_id.as_str()).unwrap_or("");
            let ids = available_models();
            state.model_b = ids
                .iter()
                .find(|id| **id != a_id)
                .or(ids.first())
                .map_or_else(String::new, |id| (*id).to_string());
        }
        if !state.model_b.is_empty() {
            state.load(device, ctx);
        }
    }
    state.poll(ctx, serial, a);
    if !state.open {
        return;
    }
    let mut open = state.open;
    egui::Window::new("Model vs model")
        .open(&mut open)
        .default_width(900.0)
        .show(ctx, |ui| contents(ui, state, device));
    state.open = open;
    if state.busy() {
        ctx.request_repaint_after(std::time::Duration::from_millis(50));
    }
}

/// Catalogue models whose weights are here (embedded or found on disk).
fn available_models() -> Vec<&'static str> {
    crate::models::catalog::CATALOG
        .iter()
        .filter(|m| m.locate().is_some())
        .map(|m| m.id)
        .collect()
}

fn contents(ui: &mut egui::Ui, st: &mut VersusState, device: &str) {
    ui.horizontal(|ui| {
        ui.label("model B:");
        egui::ComboBox::from_id_salt("versus_model_b")
            .selected_text(st.model_b.clone())
            .show_ui(ui, |ui| {
                for id in available_models() {
                    if ui.selectable_label(st.model_b == id, id).clicked() {
                        st.model_b = id.to_string();
                        st.load(device, ui.ctx());
                    }
                }
            });
        ui.add(egui::TextEdit::singleline(&mut st.model_b).desired_width(180.0))
            .on_hover_text("a catalogue id or a weights file");
        if ui.button("Load B").clicked() {
            st.load(device, ui.ctx());
        }
        let before = st.person_b;
        egui::ComboBox::from_label("single-person B")
            .selected_text(match st.person_b {
                PersonMode::TopDown => "top-down crops",
                PersonMode::Centre => "whole frame",
                PersonMode::Box => "person box",
            })
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut st.person_b, PersonMode::TopDown, "top-down crops");
                ui.selectable_value(&mut st.person_b, PersonMode::Centre, "whole frame");
            });
        if st.person_b != before {
            st.rerun();
        }
    });
    ui.horizontal(|ui| {
        ui.selectable_value(&mut st.view, View::SideBySide, "Side by side");
        ui.selectable_value(&mut st.view, View::Difference, "Difference A - B");
        let mut s = st.min_score;
        ui.add(egui::Slider::new(&mut s, 0.0..=1.0).text("min score"));
        if s != st.min_score {
            st.set_min_score(s);
        }
        if let Some((name, _)) = &st.loading {
            ui.spinner();
            ui.label(format!("loading {name}…"));
        } else if st.running.is_some() {
            ui.spinner();
            ui.label("running B…");
        }
    });
    if let Some(e) = &st.error {
        ui.colored_label(egui::Color32::LIGHT_RED, e);
    }
    let Some(cmp) = st.comparison.clone() else {
        ui.label("no comparison yet");
        return;
    };
    if st.view == View::Difference && !cmp.shared.is_empty() {
        ui.horizontal(|ui| {
            let before = st.joint;
            egui::ComboBox::from_label("joint")
                .selected_text(cmp.shared.get(st.joint).map_or("", |c| c.joint))
                .show_ui(ui, |ui| {
                    for (i, c) in cmp.shared.iter().enumerate() {
                        ui.selectable_value(&mut st.joint, i, c.joint);
                    }
                });
            if ui
                .checkbox(&mut st.normalize, "each map to its peak")
                .on_hover_text("divide each model's map by its own maximum before subtracting")
                .changed()
                || st.joint != before
            {
                st.serial += 1;
            }
            ui.colored_label(color(pictures::A_COLOR), "A's keypoints (red: A higher)");
            ui.colored_label(color(pictures::B_COLOR), "B's keypoints (blue: B higher)");
        });
    }
    pictures_ui(ui, st, &cmp);
    if st.view == View::Difference {
        for (who, ins) in [("A", &cmp.a), ("B", &cmp.b)] {
            if ins.crops.len() > 1 {
                ui.label(format!(
                    "{who} ran on {} person crops: its maps are the focused crop's only",
                    ins.crops.len()
                ));
            }
        }
    }
    table_ui(ui, &cmp);
}

fn color(c: [u8; 3]) -> egui::Color32 {
    egui::Color32::from_rgb(c[0], c[1], c[2])
}

fn pictures_ui(ui: &mut egui::Ui, st: &mut VersusState, cmp: &Comparison) {
    let key = st
        .serial
        .wrapping_mul(131)
        .wrapping_add(st.joint as u64 * 2 + u64::from(st.view == View::Difference));
    let view = st.view;
    let channel = cmp.shared.get(st.joint).cloned();
    let fresh = st.textures.as_ref().is_none_or(|(k, _)| *k != key);
    if fresh {
        let images: Result<Vec<image::RgbImage>, String> = match (view, &channel) {
            (View::SideBySide, _) => pictures::panels(cmp)
                .map(Vec::from)
                .map_err(|e| e.to_string()),
            (View::Difference, Some(c)) => pictures::difference_panel(cmp, c, 640, st.normalize)
                .map(|(img, top)| {
                    st.difference_max = Some(top);
                    vec![img]
                })
                .map_err(|e| e.to_string()),
            (View::Difference, None) => Ok(Vec::new()),
        };
        match images {
            Ok(images) => {
                let t = images
                    .iter()
                    .enumerate()
                    .map(|(i, img)| {
                        let size = [img.width() as usize, img.height() as usize];
                        let c = egui::ColorImage::from_rgb(size, img.as_raw());
                        ui.ctx()
                            .load_texture(format!("versus{i}"), c, egui::TextureOptions::LINEAR)
                    })
                    .collect();
                st.textures = Some((key, t));
            }
            Err(e) => st.error = Some(e),
        }
    }
    let textures = st
        .textures
        .as_ref()
        .map(|(_, t)| t.clone())
        .unwrap_or_default();
    let (w, h) = (
        cmp.a.image.width() as f32,
        cmp.a.image.height().max(1) as f32,
    );
    let n = textures.len().max(1) as f32;
    let widest = if view == View::Difference {
        600.0
    } else {
        720.0
    };
    let width = ((ui.available_width() - 8.0 * (n - 1.0)) / n).clamp(120.0, widest);
    let size = egui::vec2(width, width * h / w.max(1.0));
    st.picture_rects.clear();
    ui.horizontal(|ui| {
        let titles = match view {
            View::SideBySide => vec![
                format!("A: {} ({} people)", cmp.a.model_id, cmp.a.people.len()),
                format!("B: {} ({} people)", cmp.b.model_id, cmp.b.people.len()),
            ],
            View::Difference => vec![match &channel {
                Some(c) => format!(
                    "{} - {}, {}: final-stage maps in image space{}, ±{:.3}",
                    cmp.a.model_id,
                    cmp.b.model_id,
                    c.joint,
                    if st.normalize {
                        " (each to its peak)"
                    } else {
                        ""
                    },
                    st.difference_max.unwrap_or(0.0)
                ),
                None => "the two models share no joint map".into(),
            }],
        };
        for (tex, title) in textures.iter().zip(titles) {
            ui.vertical(|ui| {
                ui.label(title);
                let r = ui.add(egui::Image::new(tex).fit_to_exact_size(size));
                st.picture_rects.push(r.rect);
            });
        }
    });
}

fn table_ui(ui: &mut egui::Ui, cmp: &Comparison) {
    let t = &cmp.table;
    ui.label(format!(
        "keypoint distance (px), {} matched {} · {} joints by name · unmatched: {} of A, {} of B · mean {}",
        t.pairs.len(),
        if t.pairs.len() == 1 { "person" } else { "people" },
        t.joints.len(),
        t.unmatched_a,
        t.unmatched_b,
        t.mean.map_or_else(|| "-".into(), |m| format!("{m:.1} px")),
    ));
    let cell = |d: Option<f64>| d.map_or_else(|| "-".to_string(), |d| format!("{d:.1}"));
    egui::Grid::new("versus_table")
        .striped(true)
        .spacing([16.0, 2.0])
        .show(ui, |ui| {
            ui.strong("joint");
            for p in &t.pairs {
                ui.strong(format!("A{} & B{}", p.a + 1, p.b + 1));
            }
            ui.strong("mean");
            ui.end_row();
            for (k, j) in t.joints.iter().enumerate() {
                ui.label(*j);
                for p in &t.pairs {
                    ui.label(cell(p.distances.get(k).copied().flatten()));
                }
                ui.strong(cell(t.per_joint.get(k).copied().flatten()));
                ui.end_row();
            }
            ui.strong("all joints");
            for p in &t.pairs {
                ui.strong(format!("{:.1}", p.mean));
            }
            ui.strong(cell(t.mean));
            ui.end_row();
        });
}
