//! The failure browser of the Evaluation window: the evaluated images worst first at a chosen
//! stage ([`crate::eval::failures::rank_worst`]), each image's joint errors per stage, and a
//! click that opens the image in the viewer at that stage with the ground truth drawn next to
//! the predictions ([`draw_ground_truth`]) and, on request, the training target of the chosen
//! joint (drawn by the viewer through the heatmap overlay).

use std::path::PathBuf;
use std::sync::Arc;

use eframe::egui;

use crate::eval::failures::{rank_worst, ImageErrors};
use crate::eval::Report;
use crate::inspection::Inspection;
use crate::pose::target::TargetSpec;

/// Rows listed at most.
const MAX_ROWS: usize = 200;

/// Ground-truth ring colour.
pub const GT_COLOR: egui::Color32 = egui::Color32::from_rgb(40, 230, 255);
/// Line and dot of a correct prediction.
pub const CORRECT_COLOR: egui::Color32 = egui::Color32::from_rgb(90, 230, 90);
/// Line and dot of a missed prediction.
pub const MISSED_COLOR: egui::Color32 = egui::Color32::from_rgb(255, 70, 70);
/// Ring of the chosen joint.
pub const CHOSEN_COLOR: egui::Color32 = egui::Color32::from_rgb(255, 220, 40);

/// An image of a report opened in the viewer.
#[derive(Clone)]
pub struct Shown {
    pub report: Arc<Report>,
    /// Index into `report.per_image`.
    pub image: usize,
    /// The file opened.
    pub path: PathBuf,
    /// The stage it was opened at (0-based).
    pub stage: usize,
}

impl Shown {
    pub fn errors(&self) -> Option<&ImageErrors> {
        self.report.per_image.get(self.image)
    }

    /// Whether `ins` is this image's inspection.
    pub fn matches(&self, ins: &Inspection) -> bool {
        ins.frame.path.as_deref() == Some(self.path.as_path())
    }
}

/// The browser's state.
pub struct FailureBrowser {
    /// The window shows the browser (else the summary).
    pub tab: bool,
    /// The stage ranked and opened (0-based); `None` = the final stage.
    pub stage: Option<usize>,
    /// The image whose joint table is shown (index into `report.per_image`).
    pub selected: Option<usize>,
    /// The chosen joint (dataset joint index): highlighted, its map and target shown.
    pub joint: Option<usize>,
    /// The joint was chosen in the table (the app then shows its map).
    pub joint_changed: bool,
    /// Draw the ground truth over the viewer.
    pub show_gt: bool,
    /// Replace the viewer's heatmap by the chosen joint's training target.
    pub show_target: bool,
    /// The loaded model's training target (set by the app every frame).
    pub target: Option<TargetSpec>,
    /// The order of the listed images at the last frame (indices into `per_image`).
    pub order: Vec<usize>,
    /// A click asked the viewer to open this image (taken by the app).
    pub open_request: Option<Shown>,
    /// What the viewer shows.
    pub shown: Option<Shown>,
}

impl Default for FailureBrowser {
    fn default() -> Self {
        Self {
            tab: false,
            stage: None,
            selected: None,
            joint: None,
            joint_changed: false,
            show_gt: true,
            show_target: false,
            target: None,
            order: Vec::new(),
            open_request: None,
            shown: None,
        }
    }
}

impl FailureBrowser {
    /// The stage in use for a report with `n` stages.
    pub fn stage_of(&self, n: usize) -> usize {
        self.stage.unwrap_or(usize::MAX).min(n.saturating_sub(1))
    }

    /// Asks the viewer to open image `image` of `report` at the browser's stage.
    pub fn request_open(&mut self, report: &Arc<Report>, image: usize) {
        let Some(img) = report.per_image.get(image) else {
            return;
        };
        let stage = self.stage_of(report.stages.len());
        self.selected = Some(image);
        self.joint = img.summary(stage).worst.map(|w| w.1);
        self.open_request = Some(Shown {
            report: report.clone(),
            image,
            path: PathBuf::from(&report.settings.images).join(&img.file_name),
            stage,
        });
    }
}

fn joint_name(r: &Report, j: usize) -> &str {
    r.per_joint.get(j).map_or("?", |s| s.joint.as_str())
}

fn pct(v: Option<f64>) -> String {
    v.map_or("—".into(), |v| format!("{:.0}%", 100.0 * v))
}

/// The browser (under the report in the Evaluation window).
pub fn browser(ui: &mut egui::Ui, report: &Arc<Report>, st: &mut FailureBrowser) {
    if report.per_image.is_empty() {
        return;
    }
    let n = report.stages.len();
    let stage = st.stage_of(n);
    ui.horizontal(|ui| {
        egui::ComboBox::from_id_salt("failure_stage")
            .selected_text(
                report
                    .stages
                    .get(stage)
                    .map_or("stage".into(), |s| s.stage.clone()),
            )
            .show_ui(ui, |ui| {
                for (t, s) in report.stages.iter().enumerate() {
                    if ui.selectable_label(t == stage, &s.stage).clicked() {
                        st.stage = Some(t);
                    }
                }
            });
        ui.checkbox(&mut st.show_gt, "ground truth");
        let target_label = match &st.target {
            Some(t) => format!("training target (σ {} {})", t.sigma, unit(t)),
            None => "training target (unknown for this model)".into(),
        };
        ui.add_enabled(
            st.target.is_some(),
            egui::Checkbox::new(&mut st.show_target, target_label),
        );
    });
    ui.small(
        "sorted by the fraction of the image's joints missed at this stage, then by the mean \
         normalised distance; click to open it in the viewer",
    );
    let stage = st.stage_of(n);
    st.order = rank_worst(&report.per_image, stage);
    let mut clicked = None;
    egui::ScrollArea::vertical()
        .id_salt("failure_list")
        .max_height(200.0)
        .show(ui, |ui| {
            for (rank, &i) in st.order.iter().take(MAX_ROWS).enumerate() {
                let Some(img) = report.per_image.get(i) else {
                    continue;
                };
                let s = img.summary(stage);
                let worst = s.worst.map_or("—".into(), |(_, j, d)| {
                    format!(
                        "{} {}",
                        joint_name(report, j),
                        d.map_or("none".into(), |d| format!("{d:.2}"))
                    )
                });
                let text = format!(
                    "{:>3}. {}   PCK {} ({}/{})   worst: {worst}",
                    rank + 1,
                    img.file_name,
                    pct(s.pck()),
                    s.correct,
                    s.total
                );
                let row = ui.selectable_label(
                    st.selected == Some(i),
                    egui::RichText::new(text).monospace().size(11.0),
                );
                if row.clicked() {
                    clicked = Some(i);
                }
            }
        });
    if let Some(i) = clicked {
        st.request_open(report, i);
    }
    if let Some(img) = st.selected.and_then(|i| report.per_image.get(i)) {
        joint_table(ui, report, img, stage, st);
    }
}

fn unit(t: &TargetSpec) -> &'static str {
    match t.unit {
        crate::pose::target::SigmaUnit::InputPixels => "input px",
        crate::pose::target::SigmaUnit::MapCells => "map cells",
    }
}

/// Each scored joint's normalised distance at every stage (green correct, red missed); a
/// click on a joint chooses it.
fn joint_table(
    ui: &mut egui::Ui,
    report: &Report,
    img: &ImageErrors,
    stage: usize,
    st: &mut FailureBrowser,
) {
    let n = report.stages.len();
    ui.label(format!(
        "{}: normalised distance per joint and stage (PCK threshold {})",
        img.file_name,
        report.settings.alpha.map_or("—".into(), |a| format!("{a}"))
    ));
    egui::ScrollArea::vertical()
        .id_salt("failure_joints")
        .max_height(260.0)
        .show(ui, |ui| {
            egui::Grid::new("failure_joint_grid")
                .striped(true)
                .spacing(egui::vec2(8.0, 1.0))
                .show(ui, |ui| {
                    ui.small("joint");
                    for t in 0..n {
                        let text = egui::RichText::new(format!("{}", t + 1)).small();
                        ui.label(if t == stage { text.strong() } else { text });
                    }
                    ui.end_row();
                    for p in &img.people {
                        let joints: Vec<usize> = p
                            .stages
                            .first()
                            .map(|s| s.iter().map(|e| e.joint).collect())
                            .unwrap_or_default();
                        for j in joints {
                            let mut name = joint_name(report, j).to_string();
                            if img.people.len() > 1 {
                                name = format!("{} · person {}", name, p.person + 1);
                            }
                            if ui
                                .selectable_label(
                                    st.joint == Some(j),
                                    egui::RichText::new(name).small(),
                                )
                                .clicked()
                            {
                                st.joint = Some(j);
                                st.joint_changed = true;
                            }
                            for e in img.joint_over_stages(p.person, j) {
                                let (text, color) = match e {
                                    Some(e) => (
                                        e.normalised.map_or("none".into(), |d| format!("{d:.2}")),
                                        if e.correct {
                                            CORRECT_COLOR
                                        } else {
                                            MISSED_COLOR
                                        },
                                    ),
                                    None => ("—".into(), egui::Color32::GRAY),
                                };
                                ui.label(
                                    egui::RichText::new(text)
                                        .monospace()
                                        .size(10.5)
                                        .color(color),
                                );
                            }
                            ui.end_row();
                        }
                    }
                });
        });
}

/// Draws the ground truth of the shown image at `stage` over a view: a hollow ring at every
/// scored joint's annotation and a thin line to the stage's prediction with a dot (green:
/// counted correct, red: missed), the chosen joint's ring in yellow, and a legend (top
/// right).
/// `to_screen` maps image pixels to screen points.
pub fn draw_ground_truth(
    painter: &egui::Painter,
    view: egui::Rect,
    shown: &Shown,
    stage: usize,
    chosen: Option<usize>,
    to_screen: impl Fn((f64, f64)) -> egui::Pos2,
) {
    let Some(img) = shown.errors() else {
        return;
    };
    let ring = 6.0;
    for p in &img.people {
        for e in p.stages.get(stage).into_iter().flatten() {
            let g = to_screen((e.gt[0], e.gt[1]));
            let color = if e.correct {
                CORRECT_COLOR
            } else {
                MISSED_COLOR
            };
            if let Some(q) = e.pred {
                let q = to_screen((q[0], q[1]));
                let dir = q - g;
                // The line starts at the ring, not inside it.
                if dir.length() > ring {
                    painter.line_segment(
                        [g + dir.normalized() * ring, q],
                        egui::Stroke::new(1.5, color),
                    );
                }
                painter.circle_filled(q, 2.5, color);
            }
            let (c, w) = if chosen == Some(e.joint) {
                (CHOSEN_COLOR, 3.0)
            } else {
                (GT_COLOR, 2.0)
            };
            painter.circle_stroke(g, ring, egui::Stroke::new(w, c));
        }
    }
    // Legend, top right of the view (the windows open on the left).
    let s = img.summary(stage);
    let label = shown
        .report
        .stages
        .get(stage)
        .map_or_else(|| format!("stage {}", stage + 1), |s| s.stage.clone());
    // (swatch: ring or line with dot, colour, text)
    let lines = [
        (Some(true), GT_COLOR, "ground truth".to_string()),
        (Some(false), CORRECT_COLOR, format!("{label}: correct")),
        (Some(false), MISSED_COLOR, format!("{label}: missed")),
        (
            None,
            egui::Color32::WHITE,
            format!(
                "{}: PCK {} ({}/{})",
                img.file_name,
                pct(s.pck()),
                s.correct,
                s.total
            ),
        ),
    ];
    let font = egui::FontId::proportional(12.0);
    let width = lines
        .iter()
        .map(|(_, _, t)| {
            painter
                .layout_no_wrap(t.clone(), font.clone(), egui::Color32::WHITE)
                .size()
                .x
        })
        .fold(0.0f32, f32::max);
    let origin = egui::pos2(view.max.x - width - 48.0, view.min.y + 8.0);
    painter.rect_filled(
        egui::Rect::from_min_size(origin, egui::vec2(width + 40.0, 16.0 * 4.0 + 8.0)),
        4.0,
        egui::Color32::from_black_alpha(190),
    );
    for (i, (swatch, c, t)) in lines.iter().enumerate() {
        let y = origin.y + 4.0 + 16.0 * i as f32;
        let mid = egui::pos2(origin.x + 16.0, y + 8.0);
        match swatch {
            Some(true) => {
                painter.circle_stroke(mid, 5.0, egui::Stroke::new(2.0, *c));
            }
            Some(false) => {
                painter.line_segment(
                    [mid - egui::vec2(10.0, 0.0), mid + egui::vec2(6.0, 0.0)],
                    egui::Stroke::new(1.5, *c),
                );
                painter.circle_filled(mid + egui::vec2(6.0, 0.0), 2.5, *c);
            }
            None => {}
        }
        let x = if swatch.is_some() { 34.0 } else { 6.0 };
        painter.text(
            egui::pos2(origin.x + x, y),
            egui::Align2::LEFT_TOP,
            t,
            font.clone(),
            *c,
        );
    }
}
