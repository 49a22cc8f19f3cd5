//! The Stability window: the main model runs on every frame of the open video in the
//! background (progress, cancel) and each joint's jitter per stage is plotted
//! ([`crate::experiments::stability::video_jitter`], the measure `bench --input` reports):
//! x = stage, y = jitter in image pixels, a thin line per joint and a thick one for the mean,
//! so one sees whether the refinement stages steady the skeleton.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};

use eframe::egui;

use crate::experiments::stability::{video_jitter, VideoJitter};
use crate::pipeline::Pipeline;

/// A running measurement.
pub struct JitterJob {
    pub done: Arc<AtomicU64>,
    pub total: Arc<AtomicU64>,
    cancel: Arc<AtomicBool>,
    result: mpsc::Receiver<Result<Option<VideoJitter>, String>>,
}

/// The window's state (not persisted).
#[derive(Default)]
pub struct JitterState {
    pub open: bool,
    /// At most this many frames from the start (0: all).
    pub max_frames: u64,
    /// Draw a line per joint besides the mean.
    pub hide_joints: bool,
    pub job: Option<JitterJob>,
    pub result: Option<Arc<VideoJitter>>,
    pub error: Option<String>,
    /// Run was clicked: the app hands over a pipeline and the input.
    requested: bool,
    /// Where the plot was drawn (screen points), for tests.
    pub plot_rect: Option<egui::Rect>,
}

impl JitterState {
    /// Whether the window waits for a pipeline and the open input ([`window`]'s `input`).
    pub fn wants_input(&self) -> bool {
        self.requested
    }

    /// Asks for a run (the app hands over the input at the next frame).
    pub fn request_run(&mut self) {
        if self.job.is_none() {
            self.requested = true;
        }
    }

    fn start(&mut self, pipeline: Pipeline, path: PathBuf, ctx: &egui::Context) {
        let done = Arc::new(AtomicU64::new(0));
        let total = Arc::new(AtomicU64::new(0));
        let cancel = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let (d, t, c, ctx) = (done.clone(), total.clone(), cancel.clone(), ctx.clone());
        let max = (self.max_frames > 0).then_some(self.max_frames);
        std::thread::spawn(move || {
            let r = crate::source::open(&path)
                .map_err(|e| e.to_string())
                .and_then(|mut src| {
                    video_jitter(&pipeline, src.as_mut(), max, &mut |n, of| {
                        d.store(n, Ordering::Relaxed);
                        t.store(of, Ordering::Relaxed);
                        ctx.request_repaint();
                        if c.load(Ordering::Relaxed) {
                            ControlFlow::Break(())
                        } else {
                            ControlFlow::Continue(())
                        }
                    })
                    .map_err(|e| e.to_string())
                });
            let _ = tx.send(r);
            ctx.request_repaint();
        });
        self.error = None;
        self.job = Some(JitterJob {
            done,
            total,
            cancel,
            result: rx,
        });
    }

    fn poll(&mut self) {
        let Some(job) = &self.job else { return };
        match job.result.try_recv() {
            Ok(r) => {
                match r {
                    Ok(Some(v)) if v.triples == 0 => {
                        self.error = Some(format!(
                            "{} frame(s): jitter needs a video (three frames or more)",
                            v.frames
                        ));
                    }
                    Ok(Some(v)) => self.result = Some(Arc::new(v)),
                    Ok(None) => {}
                    Err(e) => self.error = Some(e),
                }
                self.job = None;
            }
            Err(mpsc::TryRecvError::Empty) => {}
            Err(mpsc::TryRecvError::Disconnected) => self.job = None,
        }
    }
}

/// The window. `input` answers [`JitterState::wants_input`]: the main model's pipeline and
/// the open input's path, or why there is none.
pub fn window(
    ctx: &egui::Context,
    state: &mut JitterState,
    input: Option<Result<(Pipeline, PathBuf), String>>,
) {
    if let Some(input) = input {
        state.requested = false;
        match input {
            Ok((pipeline, path)) => state.start(pipeline, path, ctx),
            Err(e) => state.error = Some(e),
        }
    }
    state.poll();
    if !state.open {
        return;
    }
    let mut open = state.open;
    egui::Window::new("Stability over video")
        .open(&mut open)
        .default_width(720.0)
        .show(ctx, |ui| contents(ui, state));
    state.open = open;
    if state.job.is_some() {
        ctx.request_repaint_after(std::time::Duration::from_millis(100));
    }
}

fn contents(ui: &mut egui::Ui, st: &mut JitterState) {
    ui.horizontal(|ui| {
        ui.add(
            egui::DragValue::new(&mut st.max_frames)
                .range(0..=100_000)
                .prefix("frames ")
                .custom_formatter(|v, _| {
                    if v == 0.0 {
                        "all".into()
                    } else {
                        format!("{v}")
                    }
                }),
        );
        if let Some(job) = &st.job {
            let (d, t) = (
                job.done.load(Ordering::Relaxed),
                job.total.load(Ordering::Relaxed),
            );
            let frac = if t > 0 { d as f32 / t as f32 } else { 0.0 };
            ui.add(
                egui::ProgressBar::new(frac)
                    .text(if t > 0 {
                        format!("{d}/{t} frames")
                    } else {
                        format!("{d} frames")
                    })
                    .desired_width(220.0),
            );
            if ui.button("Cancel").clicked() {
                job.cancel.store(true, Ordering::Relaxed);
            }
        } else if ui
            .button("Measure jitter")
            .on_hover_text(
                "Run the model on every frame of the open video and measure how much each \
                 joint's peak jitters at each stage",
            )
            .clicked()
        {
            st.request_run();
        }
        ui.checkbox(&mut st.hide_joints, "mean only");
    });
    if let Some(e) = &st.error {
        ui.colored_label(egui::Color32::LIGHT_RED, e);
    }
    let Some(r) = st.result.clone() else {
        ui.label(
            "jitter of a joint at frame b: its distance from the straight line between its \
             positions at the frames before and after (image pixels); steady motion gives 0",
        );
        return;
    };
    ui.label(format!(
        "{}: {} frames, {} triples, {:.1} s",
        r.model,
        r.frames,
        r.triples,
        r.elapsed.as_secs_f64()
    ));
    st.plot_rect = Some(plot(ui, &r, !st.hide_joints));
    ui.horizontal_wrapped(|ui| {
        ui.label("mean per stage (px):");
        for (t, v) in r.per_stage.iter().enumerate() {
            ui.monospace(format!(
                "{}: {}",
                t + 1,
                v.map_or_else(|| "-".into(), |v| format!("{v:.2}"))
            ));
        }
    });
    if let (Some(Some(first)), Some(Some(last))) = (r.per_stage.first(), r.per_stage.last()) {
        if *first > 0.0 {
            ui.label(format!(
                "the last stage jitters {:.0} % {} than the first",
                ((last / first) - 1.0).abs() * 100.0,
                if last <= first { "less" } else { "more" }
            ));
        }
    }
}

/// A colour per joint, spread around the hue circle.
fn joint_color(j: usize, n: usize) -> egui::Color32 {
    let h = j as f32 / n.max(1) as f32;
    egui::ecolor::Hsva::new(h, 0.65, 0.9, 1.0).into()
}

/// The plot: x = stage, y = jitter (px); returns where it was drawn.
fn plot(ui: &mut egui::Ui, r: &VideoJitter, joints: bool) -> egui::Rect {
    let width = ui.available_width().clamp(300.0, 900.0);
    let (rect, response) = ui.allocate_exact_size(egui::vec2(width, 300.0), egui::Sense::hover());
    let p = ui.painter_at(rect);
    let visuals = ui.visuals();
    p.rect_filled(rect, 4.0, visuals.extreme_bg_color);
    let stages = r.per_stage.len();
    let shown = |v: &Option<f64>| v.filter(|v| v.is_finite());
    let top = r
        .per_joint
        .iter()
        .flat_map(|s| s.iter().filter_map(shown))
        .filter(|_| joints)
        .chain(r.per_stage.iter().filter_map(shown))
        .fold(0.0f64, f64::max);
    let top = nice_ceiling(top.max(1e-3));
    let plot = egui::Rect::from_min_max(
        rect.min + egui::vec2(52.0, 26.0),
        rect.max - egui::vec2(120.0, 34.0),
    );
    let x_of = |t: usize| {
        if stages <= 1 {
            plot.center().x
        } else {
            plot.left() + plot.width() * t as f32 / (stages - 1) as f32
        }
    };
    let y_of = |v: f64| plot.bottom() - plot.height() * (v / top) as f32;
    let text = visuals.text_color();
    let grid = egui::Stroke::new(1.0, visuals.weak_text_color().gamma_multiply(0.4));
    let font = egui::FontId::proportional(12.0);
    for k in 0..=4 {
        let v = top * f64::from(k) / 4.0;
        let y = y_of(v);
        p.line_segment(
            [egui::pos2(plot.left(), y), egui::pos2(plot.right(), y)],
            grid,
        );
        p.text(
            egui::pos2(plot.left() - 6.0, y),
            egui::Align2::RIGHT_CENTER,
            format!("{v:.1}"),
            font.clone(),
            text,
        );
    }
    for t in 0..stages {
        let x = x_of(t);
        p.line_segment(
            [egui::pos2(x, plot.top()), egui::pos2(x, plot.bottom())],
            grid,
        );
        p.text(
            egui::pos2(x, plot.bottom() + 4.0),
            egui::Align2::CENTER_TOP,
            format!("{}", t + 1),
            font.clone(),
            text,
        );
    }
    p.text(
        egui::pos2(plot.center().x, rect.bottom() - 4.0),
        egui::Align2::CENTER_BOTTOM,
        "stage",
        font.clone(),
        text,
    );
    p.text(
        egui::pos2(rect.left() + 4.0, rect.top() + 2.0),
        egui::Align2::LEFT_TOP,
        "jitter px",
        font.clone(),
        text,
    );
    let line = |values: &mut dyn Iterator<Item = (usize, Option<f64>)>, stroke: egui::Stroke| {
        let pts: Vec<egui::Pos2> = values
            .filter_map(|(t, v)| Some(egui::pos2(x_of(t), y_of(shown(&v)?))))
            .collect();
        for w in pts.windows(2) {
            p.line_segment([w[0], w[1]], stroke);
        }
        for q in &pts {
            p.circle_filled(*q, stroke.width + 1.0, stroke.color);
        }
    };
    let n = r.joints.len();
    let hover = response.hover_pos();
    let mut nearest: Option<(f32, usize)> = None;
    if joints {
        for j in 0..n {
            let color = joint_color(j, n);
            line(
                &mut (0..stages).map(|t| (t, r.per_joint[t].get(j).copied().flatten())),
                egui::Stroke::new(1.2, color.gamma_multiply(0.8)),
            );
            if let Some(h) = hover {
                for t in 0..stages {
                    if let Some(v) = shown(&r.per_joint[t].get(j).copied().flatten()) {
                        let d = egui::pos2(x_of(t), y_of(v)).distance(h);
                        if nearest.is_none_or(|(b, _)| d < b) {
                            nearest = Some((d, j));
                        }
                    }
                }
            }
        }
    }
    let mean = egui::Color32::from_rgb(255, 255, 255);
    let mean = if visuals.dark_mode {
        mean
    } else {
        egui::Color32::BLACK
    };
    line(
        &mut r.per_stage.iter().copied().enumerate(),
        egui::Stroke::new(3.0, mean),
    );
    // The mean's values on a dark backing, kept inside the plot.
    for (t, v) in r.per_stage.iter().enumerate() {
        if let Some(v) = shown(v) {
            let galley = p.layout_no_wrap(format!("{v:.2}"), font.clone(), mean);
            let size = galley.size();
            let x = (x_of(t) - size.x / 2.0).clamp(plot.left() + 3.0, plot.right() - size.x - 3.0);
            let at = egui::pos2(x, y_of(v) - size.y - 7.0);
            let backing = egui::Rect::from_min_size(at, size).expand(2.0);
            p.rect_filled(backing, 3.0, visuals.extreme_bg_color.gamma_multiply(0.85));
            p.galley(at, galley, mean);
        }
    }
    // Legend, right of the plot.
    let mut y = plot.top();
    let lx = plot.right() + 14.0;
    p.line_segment(
        [egui::pos2(lx, y + 6.0), egui::pos2(lx + 14.0, y + 6.0)],
        egui::Stroke::new(3.0, mean),
    );
    p.text(
        egui::pos2(lx + 18.0, y),
        egui::Align2::LEFT_TOP,
        "mean",
        font.clone(),
        text,
    );
    if joints {
        let step = ((plot.height() + 20.0) / (n + 1) as f32).min(14.0);
        let small = egui::FontId::proportional(10.0);
        for j in 0..n {
            y += step;
            let c = joint_color(j, n);
            p.line_segment(
                [egui::pos2(lx, y + 5.0), egui::pos2(lx + 14.0, y + 5.0)],
                egui::Stroke::new(2.0, c),
            );
            p.text(
                egui::pos2(lx + 18.0, y),
                egui::Align2::LEFT_TOP,
                r.joints.joints.get(j).copied().unwrap_or("?"),
                small.clone(),
                text,
            );
        }
    }
    if let Some((d, j)) = nearest.filter(|(d, _)| *d < 12.0) {
        let _ = d;
        let vals: Vec<String> = (0..stages)
            .map(|t| {
                r.per_joint[t]
                    .get(j)
                    .copied()
                    .flatten()
                    .map_or_else(|| "-".into(), |v| format!("{v:.1}"))
            })
            .collect();
        response.on_hover_text(format!(
            "{}: {}",
            r.joints.joints.get(j).copied().unwrap_or("?"),
            vals.join(", ")
        ));
    }
    rect
}

/// The smallest round number (1, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a power of ten) at
/// least `v`.
fn nice_ceiling(v: f64) -> f64 {
    let e = 10f64.powf(v.log10().floor());
    [1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0]
        .into_iter()
        .map(|m| m * e)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * e)
}
