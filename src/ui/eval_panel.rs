//! The Evaluation window: runs [`crate::eval::run`] on an annotated dataset with the current
//! model in the background (progress, cancel), and shows accuracy per stage and per joint
//! (the quantitative face of refinement across stages); the report and the chart can be
//! saved. Under the report, the failure browser ([`super::failures`]) lists the images worst
//! first and opens one in the viewer.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

use eframe::egui;

use crate::eval::{self, EvalConfig, Metric, Norm, PersonInput, Report};

/// A running evaluation.
pub struct EvalJob {
    done: Arc<AtomicUsize>,
    total: Arc<AtomicUsize>,
    cancel: Arc<AtomicBool>,
    result: mpsc::Receiver<Result<Report, String>>,
}

/// The window's state (not persisted).
pub struct EvalState {
    pub open: bool,
    pub annotations: Option<PathBuf>,
    pub images: Option<PathBuf>,
    pub metric: Metric,
    pub norm: Norm,
    pub person: PersonInput,
    /// Evaluate only the first N images (0 = all).
    pub limit: usize,
    pub job: Option<EvalJob>,
    pub report: Option<Arc<Report>>,
    pub error: Option<String>,
    /// The worst-images browser of the report.
    pub failures: super::failures::FailureBrowser,
}

impl Default for EvalState {
    fn default() -> Self {
        Self {
            open: false,
            annotations: None,
            images: None,
            metric: Metric::Pck,
            norm: Norm::Torso,
            person: PersonInput::Whole,
            limit: 0,
            job: None,
            report: None,
            error: None,
            failures: Default::default(),
        }
    }
}

impl EvalState {
    /// Collects a finished job's result.
    pub fn poll(&mut self) {
        let Some(job) = &self.job else {
            return;
        };
        match job.result.try_recv() {
            Ok(Ok(report)) => {
                self.report = Some(Arc::new(report));
                self.failures.selected = None;
                self.failures.joint = None;
                self.error = None;
                self.job = None;
            }
            Ok(Err(e)) => {
                self.error = Some(e);
                self.job = None;
            }
            Err(mpsc::TryRecvError::Empty) => {}
            Err(mpsc::TryRecvError::Disconnected) => {
                self.error = Some("the evaluation stopped unexpectedly".into());
                self.job = None;
            }
        }
    }
}

/// Starts an evaluation of `model` on the chosen dataset on a background thread.
fn start(state: &mut EvalState, model: String, device: String, ctx: egui::Context) {
    let (Some(annotations), Some(images)) = (state.annotations.clone(), state.images.clone())
    else {
        state.error = Some("choose an annotation file and an image folder first".into());
        return;
    };
    let mut config = EvalConfig::new(&model, &annotations, &images);
    config.device = device;
    config.metric = state.metric;
    config.norm = state.norm;
    config.person = state.person;
    config.limit = (state.limit > 0).then_some(state.limit);
    let done = Arc::new(AtomicUsize::new(0));
    let total = Arc::new(AtomicUsize::new(0));
    let cancel = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let (d, t, c) = (done.clone(), total.clone(), cancel.clone());
    std::thread::spawn(move || {
        let result = eval::run(&config, &mut |p| {
            d.store(p.done, Ordering::Relaxed);
            t.store(p.total, Ordering::Relaxed);
            ctx.request_repaint();
            if c.load(Ordering::Relaxed) {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        let _ = tx.send(result.map_err(|e| e.to_string()));
        ctx.request_repaint();
    });
    state.error = None;
    state.job = Some(EvalJob {
        done,
        total,
        cancel,
        result: rx,
    });
}

/// The Evaluation window (toolbar "Evaluate…") for the model `model` on `device` (the
/// app's current choice).
pub fn window(ctx: &egui::Context, state: &mut EvalState, model: &str, device: &str) {
    state.poll();
    if !state.open {
        return;
    }
    let mut open = state.open;
    egui::Window::new("Evaluation")
        .open(&mut open)
        .default_width(460.0)
        .show(ctx, |ui| {
            let st = &mut *state;
            ui.label(format!("model: {model}"));
            ui.horizontal(|ui| {
                if ui.button("Annotations…").clicked() {
                    if let Some(p) = rfd::FileDialog::new()
                        .add_filter("annotations (LSP, MPII, COCO json)", &["json"])
                        .pick_file()
                    {
                        if st.images.is_none() {
                            st.images = p.parent().map(PathBuf::from);
                        }
                        st.annotations = Some(p);
                    }
                }
                ui.label(
                    st.annotations
                        .as_ref()
                        .map_or("none".into(), |p| p.display().to_string()),
                );
            });
            ui.horizontal(|ui| {
                if ui.button("Images…").clicked() {
                    if let Some(p) = rfd::FileDialog::new().pick_folder() {
                        st.images = Some(p);
                    }
                }
                ui.label(
                    st.images
                        .as_ref()
                        .map_or("none".into(), |p| p.display().to_string()),
                );
            });
            ui.horizontal(|ui| {
                ui.label("metric");
                ui.radio_value(&mut st.metric, Metric::Pck, "PCK@0.2");
                ui.radio_value(&mut st.metric, Metric::Pckh, "PCKh@0.5");
                ui.radio_value(&mut st.metric, Metric::OksAp, "COCO AP");
            });
            if st.metric == Metric::Pck {
                ui.horizontal(|ui| {
                    ui.label("normalised by");
                    ui.radio_value(&mut st.norm, Norm::Torso, "torso");
                    ui.radio_value(&mut st.norm, Norm::Bbox, "box");
                });
            }
            ui.horizontal(|ui| {
                ui.label("single-person models see");
                ui.radio_value(&mut st.person, PersonInput::Whole, "whole image");
                ui.radio_value(&mut st.person, PersonInput::Box, "annotated box");
            });
            ui.add(
                egui::DragValue::new(&mut st.limit)
                    .range(0..=1_000_000)
                    .prefix("first ")
                    .suffix(" images (0 = all)"),
            );
            match &st.job {
                Some(job) => {
                    let (d, t) = (
                        job.done.load(Ordering::Relaxed),
                        job.total.load(Ordering::Relaxed),
                    );
                    ui.horizontal(|ui| {
                        ui.add(
                            egui::ProgressBar::new(d as f32 / t.max(1) as f32)
                                .desired_width(260.0)
                                .text(format!("{d}/{t} images")),
                        );
                        if ui.button("Cancel").clicked() {
                            job.cancel.store(true, Ordering::Relaxed);
                        }
                    });
                }
                None => {
                    if ui.button("Run evaluation").clicked() {
                        start(st, model.to_string(), device.to_string(), ctx.clone());
                    }
                }
            }
            if let Some(e) = &st.error {
                ui.colored_label(egui::Color32::from_rgb(255, 120, 100), e);
            }
            if let Some(report) = st.report.clone() {
                ui.separator();
                let browse = !report.per_image.is_empty();
                if browse {
                    ui.horizontal(|ui| {
                        ui.selectable_value(&mut st.failures.tab, false, "Summary");
                        ui.selectable_value(&mut st.failures.tab, true, "Worst images");
                    });
                }
                if browse && st.failures.tab {
                    super::failures::browser(ui, &report, &mut st.failures);
                } else {
                    results(ui, &report);
                }
            }
        });
    state.open = open;
}

/// Saves the report JSON or the chart PNG next to each other, chosen by a dialog.
fn save_buttons(ui: &mut egui::Ui, report: &Report) {
    ui.horizontal(|ui| {
        if ui.button("Save report…").clicked() {
            if let Some(p) = rfd::FileDialog::new()
                .set_file_name("report.json")
                .add_filter("JSON", &["json"])
                .save_file()
            {
                let saved = serde_json::to_vec_pretty(report)
                    .map_err(|e| e.to_string())
                    .and_then(|json| {
                        crate::export::atomic::write_atomic(&p, &json, true)
                            .map_err(|e| e.to_string())
                    });
                if let Err(e) = saved {
                    ui.colored_label(egui::Color32::RED, e);
                }
            }
        }
        if ui.button("Save chart…").clicked() {
            if let Some(p) = rfd::FileDialog::new()
                .set_file_name("report.png")
                .add_filter("PNG", &["png"])
                .save_file()
            {
                if let Err(e) = eval::chart::write_png(report, &p) {
                    ui.colored_label(egui::Color32::RED, e.to_string());
                }
            }
        }
    });
}

/// The report: headline, accuracy per stage (line) and per joint (bars).
pub fn results(ui: &mut egui::Ui, r: &Report) {
    let pct = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{:.1}%", 100.0 * v));
    ui.strong(format!(
        "{}: {}   ({} images, {} people, {} joints, {:.0} s)",
        r.settings.metric.name(),
        pct(r.overall),
        r.counts.images,
        r.counts.people,
        r.counts.joints,
        r.elapsed_s
    ));
    if let Some(c) = &r.coco {
        ui.monospace(format!(
            "AP {:.3}  AP50 {:.3}  AP75 {:.3}  APm {:.3}  APl {:.3}  AR {:.3}",
            c.ap, c.ap50, c.ap75, c.ap_medium, c.ap_large, c.ar
        ));
    }
    ui.small(&r.definition);
    if r.stages.len() > 1 {
        ui.label("accuracy by stage");
        stage_plot(ui, r);
    }
    ui.label("final stage, per joint");
    joint_bars(ui, r);
    save_buttons(ui, r);
}

fn stage_plot(ui: &mut egui::Ui, r: &Report) {
    let values: Vec<Option<f64>> = r.stages.iter().map(|s| s.value).collect();
    let (rect, resp) = ui.allocate_exact_size(
        egui::vec2(ui.available_width(), 110.0),
        egui::Sense::hover(),
    );
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 2.0, egui::Color32::from_gray(30));
    let known: Vec<f64> = values.iter().flatten().copied().collect();
    let (lo, hi) = known
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(*v), b.max(*v))
        });
    if known.is_empty() {
        return;
    }
    let pad = ((hi - lo) * 0.15).max(0.01);
    let (lo, hi) = ((lo - pad).max(0.0), (hi + pad).min(1.0));
    let n = values.len();
    let x_of =
        |t: usize| rect.min.x + 30.0 + (rect.width() - 40.0) * t as f32 / (n.max(2) - 1) as f32;
    let y_of = |v: f64| rect.max.y - 16.0 - (rect.height() - 26.0) * ((v - lo) / (hi - lo)) as f32;
    let pts: Vec<egui::Pos2> = values
        .iter()
        .enumerate()
        .filter_map(|(t, v)| v.map(|v| egui::pos2(x_of(t), y_of(v))))
        .collect();
    painter.add(egui::Shape::line(
        pts.clone(),
        egui::Stroke::new(2.0, egui::Color32::from_rgb(90, 170, 240)),
    ));
    for p in &pts {
        painter.circle_filled(*p, 3.0, egui::Color32::from_rgb(250, 200, 60));
    }
    for (t, s) in r.stages.iter().enumerate() {
        painter.text(
            egui::pos2(x_of(t), rect.max.y - 2.0),
            egui::Align2::CENTER_BOTTOM,
            format!("{}", t + 1),
            egui::FontId::monospace(9.0),
            egui::Color32::GRAY,
        );
        if resp
            .hover_pos()
            .is_some_and(|p| (p.x - x_of(t)).abs() < 8.0)
        {
            painter.text(
                rect.min + egui::vec2(34.0, 2.0),
                egui::Align2::LEFT_TOP,
                format!(
                    "{}: {}",
                    s.stage,
                    s.value.map_or("—".into(), |v| format!("{:.1}%", 100.0 * v))
                ),
                egui::FontId::proportional(11.0),
                egui::Color32::WHITE,
            );
        }
    }
    for v in [lo, hi] {
        painter.text(
            egui::pos2(rect.min.x + 2.0, y_of(v)),
            egui::Align2::LEFT_CENTER,
            format!("{:.0}%", 100.0 * v),
            egui::FontId::monospace(9.0),
            egui::Color32::GRAY,
        );
    }
}

fn joint_bars(ui: &mut egui::Ui, r: &Report) {
    let joints = &r.per_joint;
    if joints.is_empty() {
        return;
    }
    let row = 13.0;
    let (rect, _) = ui.allocate_exact_size(
        egui::vec2(ui.available_width(), row * joints.len() as f32 + 4.0),
        egui::Sense::hover(),
    );
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 2.0, egui::Color32::from_gray(30));
    let label_w = 96.0;
    let bar_w = rect.width() - label_w - 50.0;
    for (i, j) in joints.iter().enumerate() {
        let y = rect.min.y + 2.0 + row * i as f32;
        painter.text(
            egui::pos2(rect.min.x + 4.0, y + row / 2.0),
            egui::Align2::LEFT_CENTER,
            &j.joint,
            egui::FontId::proportional(10.0),
            egui::Color32::GRAY,
        );
        let text = match j.value {
            Some(v) => {
                let bar = egui::Rect::from_min_size(
                    egui::pos2(rect.min.x + label_w, y + 2.0),
                    egui::vec2(bar_w * v.clamp(0.0, 1.0) as f32, row - 4.0),
                );
                painter.rect_filled(bar, 1.0, egui::Color32::from_rgb(90, 170, 240));
                format!("{:.1}%", 100.0 * v)
            }
            None => "—".into(),
        };
        painter.text(
            egui::pos2(rect.max.x - 4.0, y + row / 2.0),
            egui::Align2::RIGHT_CENTER,
            text,
            egui::FontId::monospace(9.5),
            egui::Color32::LIGHT_GRAY,
        );
    }
}
