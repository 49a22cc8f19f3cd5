//! The associative-embedding section of the side panel (HigherHRNet): test-time options,
//! live regrouping with new thresholds, and the "tag lanes" plot.

use eframe::egui;

use crate::inspection::Inspection;
use crate::render::PERSON_COLORS;

/// Test scale presets (`TEST.SCALE_FACTOR`).
const SCALE_PRESETS: &[&[f64]] = &[&[1.0], &[1.0, 0.5], &[2.0, 1.0], &[2.0, 1.0, 0.5]];

fn scales_text(scales: &[f64]) -> String {
    scales
        .iter()
        .map(|s| format!("{s}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the caller does after the section changed a setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AeAction {
    /// Nothing changed.
    None,
    /// Flip test or scales changed: the worker must run the network again.
    Rerun,
    /// Grouping parameters changed: regroup the current maps (no new forward pass).
    Regroup,
}

/// The section for bottom-up associative-embedding models: test-time settings, grouping
/// parameters (`ae`, the app's settings), and the current frame's grouping.
pub fn ae_section(
    ui: &mut egui::Ui,
    ae_settings: &mut crate::pipeline::AeConfig,
    ins: Option<&Inspection>,
    person_colors: bool,
) -> AeAction {
    let mut action = AeAction::None;
    ui.heading("Associative embedding");
    let mut rerun = false;
    ui.horizontal(|ui| {
        rerun |= ui
            .checkbox(&mut ae_settings.flip, "flip test")
            .on_hover_text("Also run the mirrored image and average, as the official test")
            .changed();
        egui::ComboBox::from_label("scales")
            .selected_text(scales_text(&ae_settings.scales))
            .show_ui(ui, |ui| {
                for preset in SCALE_PRESETS {
                    let on = ae_settings.scales == *preset;
                    if ui.selectable_label(on, scales_text(preset)).clicked() && !on {
                        ae_settings.scales = preset.to_vec();
                        rerun = true;
                    }
                }
            })
            .response
            .on_hover_text(
                "Multi-scale test: heatmaps averaged over the scales, tags from scale 1",
            );
    });
    if rerun {
        action = AeAction::Rerun;
    }

    let mut p = ae_settings.params.clone();
    ui.add(
        egui::Slider::new(&mut p.detection_threshold, 0.01..=1.0)
            .logarithmic(true)
            .text("detection threshold"),
    )
    .on_hover_text("Peaks need a heatmap value above this to be grouped (official 0.1)");
    ui.add(
        egui::Slider::new(&mut p.tag_threshold, 0.05..=10.0)
            .logarithmic(true)
            .text("tag threshold"),
    )
    .on_hover_text(
        "A joint joins a person when its tag is closer than this to the person's mean tag; \
         otherwise it starts a new person (official 1.0)",
    );
    ui.horizontal(|ui| {
        ui.checkbox(&mut p.adjust, "quarter offset")
            .on_hover_text("Move each joint ¼ pixel towards its larger neighbour");
        ui.checkbox(&mut p.refine, "refine")
            .on_hover_text("Fill missing joints from the person's mean tag");
    });
    if p != ae_settings.params {
        ae_settings.params = p;
        if action == AeAction::None {
            action = AeAction::Regroup;
        }
    }
    let Some(ins) = ins else {
        return action;
    };
    let Some(ae) = &ins.grouping else {
        return action;
    };
    let grouped = ae
        .grouping
        .candidates
        .iter()
        .filter(|c| c.person.is_some())
        .count();
    ui.label(format!(
        "{} people; {} of {} peaks grouped",
        ae.grouping.people.len(),
        grouped,
        ae.grouping.candidates.len()
    ));
    tag_lanes(ui, ins, person_colors);
    action
}

/// Per joint (one lane each), the first tag value of every candidate peak, coloured by the
/// person it was assigned to (grey rings: not grouped). Each person's mean tag is a faint
/// vertical line. People whose tags sit in one column belong together; a joint whose dots
/// stray from its person's line shows a grouping mistake.
fn tag_lanes(ui: &mut egui::Ui, ins: &Inspection, person_colors: bool) {
    let Some(ae) = &ins.grouping else {
        return;
    };
    let cands = &ae.grouping.candidates;
    if cands.is_empty() {
        ui.label("No peaks above the detection threshold.");
        return;
    }
    let k = ins.joints.len().max(1);
    let (lo, hi) = cands
        .iter()
        .filter_map(|c| c.tag.first().copied())
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), t| {
            (lo.min(t), hi.max(t))
        });
    let pad = 0.08 * (hi - lo).max(0.5);
    let (lo, hi) = (lo - pad, hi + pad);
    let lane = 11.0;
    let label_w = 86.0;
    let (rect, response) = ui.allocate_exact_size(
        egui::vec2(ui.available_width(), lane * k as f32 + 16.0),
        egui::Sense::hover(),
    );
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 2.0, egui::Color32::from_gray(30));
    let plot_x0 = rect.min.x + label_w;
    let x_of = |t: f32| plot_x0 + (rect.max.x - 6.0 - plot_x0) * ((t - lo) / (hi - lo));
    let y_of = |j: usize| rect.min.y + 4.0 + lane * (j as f32 + 0.5);
    let color = |p: usize| {
        let [r, g, b] = PERSON_COLORS[p % PERSON_COLORS.len()];
        egui::Color32::from_rgb(r, g, b)
    };
    for (j, name) in ins.joints.joints.iter().enumerate() {
        painter.text(
            egui::pos2(rect.min.x + 4.0, y_of(j)),
            egui::Align2::LEFT_CENTER,
            *name,
            egui::FontId::proportional(9.5),
            egui::Color32::GRAY,
        );
        painter.line_segment(
            [
                egui::pos2(plot_x0, y_of(j)),
                egui::pos2(rect.max.x, y_of(j)),
            ],
            egui::Stroke::new(0.5, egui::Color32::from_gray(50)),
        );
    }
    // Each person's mean tag over its grouped joints.
    for (p, person) in ae.grouping.people.iter().enumerate() {
        let tags: Vec<f32> = person
            .keypoints
            .iter()
            .flatten()
            .filter(|kp| !kp.refined)
            .filter_map(|kp| kp.tag.first().copied())
            .collect();
        if tags.is_empty() {
            continue;
        }
        let mean = tags.iter().sum::<f32>() / tags.len() as f32;
        painter.line_segment(
            [
                egui::pos2(x_of(mean), rect.min.y + 2.0),
                egui::pos2(x_of(mean), rect.max.y - 12.0),
            ],
            egui::Stroke::new(1.0, color(p).gamma_multiply(0.45)),
        );
    }
    let mut hovered: Option<(f32, String)> = None;
    let pointer = response.hover_pos();
    for c in cands {
        let Some(&t) = c.tag.first() else { continue };
        let pos = egui::pos2(x_of(t), y_of(c.joint));
        let r = 1.5 + 3.0 * c.value.clamp(0.0, 1.0);
        match c.person {
            Some(p) => {
                painter.circle_filled(pos, r, color(p));
            }
            None => {
                painter.circle_stroke(pos, r, egui::Stroke::new(1.0, egui::Color32::GRAY));
            }
        }
        if let Some(ptr) = pointer {
            let d = ptr.distance(pos);
            if d < 6.0 && hovered.as_ref().is_none_or(|(bd, _)| d < *bd) {
                let name = ins.joints.joints.get(c.joint).copied().unwrap_or("?");
                let who = c
                    .person
                    .map_or("not grouped".to_string(), |p| format!("person {}", p + 1));
                hovered = Some((
                    d,
                    format!(
                        "{name}: tag {t:.3}, value {:.2}, at ({}, {}): {who}",
                        c.value, c.x, c.y
                    ),
                ));
            }
        }
    }
    painter.text(
        egui::pos2(plot_x0, rect.max.y - 1.0),
        egui::Align2::LEFT_BOTTOM,
        format!("{lo:.2}"),
        egui::FontId::monospace(9.0),
        egui::Color32::GRAY,
    );
    painter.text(
        egui::pos2(rect.max.x - 4.0, rect.max.y - 1.0),
        egui::Align2::RIGHT_BOTTOM,
        format!("tag {hi:.2}"),
        egui::FontId::monospace(9.0),
        egui::Color32::GRAY,
    );
    if let Some((_, text)) = hovered {
        response.on_hover_text(text);
    }
    if !person_colors {
        ui.small("Dots take the people's colours; turn on \"colour by person\" to match.");
    }
}
