//! The Experiments window (issue 23), driven headless with egui_kittest on the real mobile
//! CPM: erase a joint and brush a peak at stage 2, see the later stages re-run; run the
//! occlusion sweep in the background with progress. Writes the docs screenshots under
//! `POSESCOPE_WRITE_DOCS=1` (elsewhere: a temporary directory).

#![cfg(feature = "gui")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use eframe::egui;
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use posescope::experiments::intervene;
use posescope::ui::experiments_panel::{Mode, Tool};
use posescope::ui::{PosescopeApp, StartOptions};

fn harness(model: PathBuf, input: PathBuf) -> Harness<'static, PosescopeApp> {
    let mut h = Harness::builder()
        .with_size(egui::vec2(1280.0, 860.0))
        .wgpu()
        .build_eframe(move |cc| {
            PosescopeApp::new(
                cc,
                StartOptions {
                    model: Some(model.to_string_lossy().into_owned()),
                    input: Some(input),
                    device: Some("cpu".into()),
                },
            )
        });
    h.state_mut().settings.input_size = (192, 192);
    wait(&mut h, "an inspection", |a| a.inspection.is_some());
    h
}

fn wait(h: &mut Harness<'static, PosescopeApp>, what: &str, done: impl Fn(&PosescopeApp) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while !done(h.state()) {
        assert!(
            h.state().experiments.error.is_none(),
            "{:?}",
            h.state().experiments.error
        );
        assert!(Instant::now() < deadline, "no {what}");
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    h.run_steps(3);
}

#[test]
fn intervene_erase_and_brush_rerun_the_later_stages() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let mut h = harness(
        shared.join("models/pefm_cpm.tflite"),
        shared.join("data/lspet_dev/images/im08003.jpg"),
    );
    h.get_by_label("Experiments…").click();
    h.run_steps(2);
    assert!(h.state().experiments.open);
    wait(&mut h, "session", |a| a.experiments.session.is_some());
    h.state_mut().experiments.stage = 1;
    h.state_mut().experiments.joint = 0; // head_top
    h.run_steps(2);

    h.get_by_label("Erase joint").click();
    h.run_steps(2);
    wait(&mut h, "edited run", |a| a.experiments.edited.is_some());
    let (session, edited) = {
        let e = &h.state().experiments;
        (e.session.clone().unwrap(), e.edited.clone().unwrap())
    };
    assert!(edited.stages[1]
        .heatmaps
        .channel(0)
        .unwrap()
        .iter()
        .all(|&v| v == 0.0));
    let change = intervene::max_abs_difference(&session.original, &edited, 2);
    println!("GUI erase head_top at stage 2: stages 3..6 change by up to {change:.4}");
    assert!(change > 0.01, "{change}");
    // Stage 1 comes before the edit: unchanged.
    assert_eq!(
        edited.stages[0].heatmaps,
        session.original.stages[0].heatmaps
    );

    // Brush a head-top peak into the lower left of the edit panel: the edited stage-2 map
    // peaks there, and the later stages are re-run on it.
    h.state_mut().experiments.tool = Tool::Paint;
    h.run_steps(2);
    let rect = h
        .state()
        .experiments
        .edit_rect
        .expect("the edit panel is drawn");
    let at = rect.min + egui::vec2(0.2, 0.8) * rect.size();
    h.hover_at(at);
    h.drag_at(at);
    h.drop_at(at);
    h.run_steps(2);
    let before = h.state().experiments.edited.clone().unwrap();
    wait(&mut h, "re-run after the brush", |a| {
        a.experiments
            .edited
            .as_ref()
            .is_some_and(|e| !std::sync::Arc::ptr_eq(e, &before))
            && !a.experiments.busy()
    });
    let painted = h.state().experiments.edited.clone().unwrap();
    let m = &painted.stages[1].heatmaps;
    let (px, py) = posescope::pose::edit::argmax(m, 0).unwrap();
    let (ix, iy) = painted.stage_to_image(1).apply(px as f64, py as f64);
    let (w, hgt) = (
        f64::from(painted.frame.width),
        f64::from(painted.frame.height),
    );
    println!("brushed peak at image ({ix:.0}, {iy:.0}) of {w}x{hgt}");
    assert!(
        (ix / w - 0.2).abs() < 0.08 && (iy / hgt - 0.8).abs() < 0.08,
        "({ix}, {iy})"
    );
    assert!(intervene::max_abs_difference(&edited, &painted, 2) > 0.0);
    h.run_steps(3);
    h.render()
        .unwrap()
        .save(common::screenshot_path("experiments_intervene.png"))
        .unwrap();

    // Reset: the edited run is the original again.
    h.get_by_label("Reset").click();
    h.run_steps(2);
    assert!(h.state().experiments.edited.is_none());
}

#[test]
fn occlusion_runs_in_the_background_and_shows_the_drop_per_stage() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let mut h = harness(
        shared.join("models/pefm_cpm.tflite"),
        shared.join("data/lspet_dev/images/im08003.jpg"),
    );
    h.state_mut().experiments.open = true;
    h.state_mut().experiments.mode = Mode::Occlusion;
    wait(&mut h, "session", |a| a.experiments.session.is_some());
    h.state_mut().experiments.patch = 32;
    h.state_mut().experiments.stride = 16;
    h.run_steps(2);
    h.get_by_label("Run occlusion").click();
    h.run_steps(1);
    assert!(
        h.state().experiments.occlusion_job.is_some(),
        "runs in the background"
    );
    // The UI keeps running frames while the sweep works.
    let t0 = Instant::now();
    h.run_steps(3);
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "the UI waited on the sweep"
    );
    wait(&mut h, "occlusion result", |a| {
        a.experiments.occlusion.is_some()
    });
    let r = h.state().experiments.occlusion.clone().unwrap();
    assert_eq!(r.grid, (12, 12));
    assert_eq!(r.drops.len(), 6);
    // The head top's belief drops most when the head is covered (upper middle of the image).
    let best = r.drops[5]
        .as_slice()
        .iter()
        .enumerate()
        .fold((0, f32::MIN), |b, (i, &v)| if v > b.1 { (i, v) } else { b })
        .0;
    let (x, y) = (best % 12, best / 12);
    let (ix, iy) = r.cell_to_image.apply(x as f64, y as f64);
    println!(
        "stage 6: largest drop at image ({ix:.0}, {iy:.0}); run {:.2?}",
        r.elapsed
    );
    assert!(
        iy < 0.4 * f64::from(h.state().inspection.as_ref().unwrap().frame.height),
        "{iy}"
    );
    h.render()
        .unwrap()
        .save(common::screenshot_path("experiments_occlusion.png"))
        .unwrap();
}
