//! The desktop app, driven headless with egui_kittest and its wgpu renderer (Mesa lavapipe
//! on machines without a GPU).

#![cfg(feature = "gui")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use eframe::egui;

use egui_kittest::Harness;
use posescope::ui::settings::JointView;
use posescope::ui::{PosescopeApp, StartOptions};

fn harness(input: Option<PathBuf>) -> Harness<'static, PosescopeApp> {
    harness_with("openpose-mobilenet-thin", (256, 224), input)
}

fn harness_with(
    model: &str,
    input_size: (u32, u32),
    input: Option<PathBuf>,
) -> Harness<'static, PosescopeApp> {
    let model = model.to_string();
    let mut h = Harness::builder()
        .with_size(egui::vec2(1100.0, 720.0))
        .wgpu()
        .build_eframe(move |cc| {
            PosescopeApp::new(
                cc,
                StartOptions {
                    model: Some(model),
                    input,
                    device: Some("cpu".into()),
                },
            )
        });
    // Small, fast input for tests.
    h.state_mut().settings.input_size = input_size;
    let deadline = Instant::now() + Duration::from_secs(180);
    while h.state().inspection.is_none() {
        assert!(Instant::now() < deadline, "no inspection arrived");
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    h.run_steps(3);
    h
}

fn diff(a: &image::RgbaImage, b: &image::RgbaImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let total: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    total as f64 / a.as_raw().len() as f64
}

#[test]
fn the_stage_slider_changes_the_overlay() {
    let mut h = harness(None);
    assert_eq!(h.state().stage_count(), 6);
    h.state_mut().stage = 0;
    h.run_steps(2);
    let first = h.render().unwrap();
    // The → key moves the stage slider.
    for _ in 0..5 {
        h.key_press(egui::Key::ArrowRight);
    }
    h.run_steps(2);
    assert_eq!(h.state().stage, 5);
    let last = h.render().unwrap();
    let d = diff(&first, &last);
    println!("mean abs pixel difference stage 1 vs stage 6: {d:.3}");
    assert!(d > 0.2, "the overlay did not change between stages ({d})");
    // Without the heatmap the stage does not matter.
    h.state_mut().settings.show_heatmap = false;
    h.state_mut().stage = 0;
    h.run_steps(2);
    let a = h.render().unwrap();
    h.state_mut().stage = 5;
    h.run_steps(2);
    let b = h.render().unwrap();
    assert!(
        diff(&a, &b) < 0.05,
        "stage changed the view without a heatmap"
    );
}

#[test]
fn the_joint_picker_changes_the_overlay() {
    let mut h = harness(None);
    h.state_mut().settings.joint_view = JointView::Max;
    h.run_steps(2);
    let all = h.render().unwrap();
    h.state_mut().settings.joint_view = JointView::Joint(0);
    h.run_steps(2);
    let nose = h.render().unwrap();
    let d = diff(&all, &nose);
    println!("mean abs pixel difference max-over-joints vs nose: {d:.3}");
    assert!(d > 0.2, "picking a joint did not change the overlay ({d})");
    h.state_mut().settings.joint_view = JointView::Grid;
    h.run_steps(2);
    let grid = h.render().unwrap();
    assert!(diff(&grid, &nose) > 0.5);
    // J / Shift+J step through the joints both ways.
    h.state_mut().settings.joint_view = JointView::Joint(3);
    h.key_press(egui::Key::J);
    h.run_steps(1);
    assert_eq!(h.state().settings.joint_view, JointView::Joint(4));
    h.key_press_modifiers(egui::Modifiers::SHIFT, egui::Key::J);
    h.key_press_modifiers(egui::Modifiers::SHIFT, egui::Key::J);
    h.run_steps(1);
    assert_eq!(h.state().settings.joint_view, JointView::Joint(2));
}

#[test]
fn save_frame_writes_the_view_json_and_maps_without_overwriting() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let mut h = harness(Some(shared.join("data/images/messi5.jpg")));
    let dir = tempfile::tempdir().unwrap();
    let files = posescope::ui::save_frame_to(h.state_mut(), dir.path()).unwrap();
    assert_eq!(files.len(), 3);
    let png = image::open(&files[0]).unwrap();
    // Native resolution of the frame.
    assert_eq!((png.width(), png.height()), (548, 342));
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&files[1]).unwrap()).unwrap();
    assert_eq!(doc["image"]["width"], 548);
    assert!(files[2].to_str().unwrap().ends_with(".maps.safetensors"));
    // A second save picks new names.
    let again = posescope::ui::save_frame_to(h.state_mut(), dir.path()).unwrap();
    assert_ne!(again[0], files[0]);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 6);
    let montage = posescope::ui::export_stages_to(h.state_mut(), dir.path(), 160).unwrap();
    let m = image::open(montage).unwrap();
    assert_eq!(m.width(), 160 * 6);
}

/// First start (no input given): the bundled clip of two people, paused on its first frame
/// with a result, and Space plays it.
#[test]
fn first_start_shows_the_bundled_clip_and_space_plays_it() {
    // The model's own input size: the people in the 640×360 clip are small.
    let mut h = harness_with("openpose-mobilenet-thin", (432, 368), None);
    let src = h.state().source.as_ref().expect("a source is open");
    println!(
        "first-start source: {} ({:?} frames)",
        src.description, src.frames
    );
    assert!(
        src.description.starts_with("sample clip"),
        "{}",
        src.description
    );
    assert_eq!(src.frames, Some(126));
    assert!(!src.playing);
    let people = h.state().inspection.as_ref().unwrap().people.len();
    println!("people found on the first frame: {people}");
    assert_eq!(people, 2, "the clip shows two people");
    h.key_press(egui::Key::Space);
    let deadline = Instant::now() + Duration::from_secs(120);
    while h.state().inspection.as_ref().unwrap().frame.index < 3 {
        assert!(Instant::now() < deadline, "the clip did not play");
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    let src = h.state().source.as_ref().unwrap();
    println!(
        "after Space: frame {} of {:?}, playing {}",
        src.position, src.frames, src.playing
    );
    // The player runs at the clip's rate (it may have reached the end by now).
    assert!(src.position >= 3, "{}", src.position);
}

#[test]
fn snapshot_of_the_main_window() {
    let mut h = harness_with("openpose-mobilenet-thin", (432, 368), None);
    h.state_mut().stage = 5;
    // Timings and frame rates change from run to run.
    h.state_mut().settings.show_hud = false;
    h.run_steps(3);
    h.snapshot("main_window_sample_stage6");
}

#[test]
fn the_paf_view_draws_vector_glyphs() {
    let mut h = harness(None);
    h.state_mut().settings.show_heatmap = false;
    h.run_steps(2);
    let plain = h.render().unwrap();
    h.state_mut().settings.show_pafs = true;
    h.run_steps(2);
    let with_pafs = h.render().unwrap();
    let d = diff(&plain, &with_pafs);
    println!("mean abs pixel difference without vs with PAF glyphs: {d:.3}");
    assert!(d > 0.05, "PAF glyphs did not show ({d})");
    let ins = h.state().inspection.clone().unwrap();
    let segments = posescope::ui::overlay::paf_segments(&ins, 5, None);
    assert!(!segments.is_empty());
    let (w, h) = (ins.frame.width as f32, ins.frame.height as f32);
    for s in &segments {
        for p in [s.a, s.b] {
            assert!(p[0] > -16.0 && p[0] < w + 16.0 && p[1] > -16.0 && p[1] < h + 16.0);
        }
    }
    // A single limb's field is a subset of the strongest-limb view's cells.
    let neck_nose = posescope::ui::overlay::paf_segments(&ins, 5, Some(12));
    assert!(neck_nose.len() <= segments.len());
}

#[test]
fn compare_shows_two_stages_side_by_side_or_flickering() {
    use posescope::ui::settings::Compare;
    let mut h = harness(None);
    h.state_mut().settings.show_hud = false;
    h.state_mut().stage = 5;
    h.state_mut().settings.compare_stage = 0;
    h.run_steps(2);
    let single = h.render().unwrap();
    // X: side by side (stage 6 next to stage 1).
    h.key_press(egui::Key::X);
    h.run_steps(2);
    assert_eq!(h.state().settings.compare, Compare::SideBySide);
    let views = h.state().view_rects().to_vec();
    assert_eq!(views.len(), 2, "side by side draws two views");
    let ppp = single.width() as f32 / 1100.0;
    let other = h.render().unwrap();
    // Comparing a stage with itself draws the same overlay twice: the two views match (same
    // size, placement and caption; up to resampling, as the two views start at different
    // fractions of a pixel: a mean difference of 0.3 here, against 3.4 for another stage;
    // shifting one view by a whole pixel gives 1.8 or more).
    h.state_mut().settings.compare_stage = 5;
    h.run_steps(2);
    let same = h.render().unwrap();
    let (left, right) = (crop(&same, views[0], ppp), crop(&same, views[1], ppp));
    let halves_same = diff(&left, &right);
    // Stage 6 against stage 1: the right view changes, the left one does not.
    let right_other = crop(&other, views[1], ppp);
    let left_other = crop(&other, views[0], ppp);
    let right_changed = diff(&right, &right_other);
    let left_changed = diff(&left, &left_other);
    println!(
        "views stage 6 | stage 6: {halves_same:.3}; right view stage 6 vs stage 1: \
         {right_changed:.3}; left view: {left_changed:.3}"
    );
    assert!(
        halves_same < 0.6 && halves_same * 5.0 < right_changed,
        "the two views of one stage differ ({halves_same})"
    );
    assert!(
        right_changed > 0.5,
        "the compared stage is not drawn ({right_changed})"
    );
    assert!(
        left_changed < 0.05,
        "the selected stage's view changed ({left_changed})"
    );

    // X again: flicker, one view alternating between the two stages over time.
    h.key_press(egui::Key::X);
    h.run_steps(1);
    assert_eq!(h.state().settings.compare, Compare::Flicker);
    // Each step is 0.25 s of UI time; with a 500 ms period the view changes every 2 steps.
    h.state_mut().settings.flicker_ms = 500;
    let frame = |h: &mut Harness<'static, PosescopeApp>| {
        h.step();
        assert_eq!(h.state().view_rects().len(), 1, "flicker draws one view");
        let r = h.state().view_rects()[0];
        crop(&h.render().unwrap(), r, ppp)
    };
    // References: the flicker view of stage 6 with itself, and of stage 1 with itself.
    h.state_mut().settings.compare_stage = 5;
    let stage6 = frame(&mut h);
    h.state_mut().stage = 0;
    h.state_mut().settings.compare_stage = 0;
    let stage1 = frame(&mut h);
    assert!(diff(&stage6, &stage1) > 0.5);
    h.state_mut().stage = 5;
    let shown: Vec<usize> = (0..8)
        .map(|_| {
            let f = frame(&mut h);
            let (d6, d1) = (diff(&f, &stage6), diff(&f, &stage1));
            assert!(
                d6.min(d1) < 0.05,
                "a flicker frame is neither stage ({d6:.3}, {d1:.3})"
            );
            if d6 < d1 {
                6
            } else {
                1
            }
        })
        .collect();
    println!("flicker frames, every 0.25 s: stages {shown:?}");
    let changes = shown.windows(2).filter(|w| w[0] != w[1]).count();
    assert!(
        (3..=4).contains(&changes),
        "a 500 ms flicker over 2 s changes 3 or 4 times: {shown:?}"
    );
    h.key_press(egui::Key::X);
    h.run_steps(1);
    assert_eq!(h.state().settings.compare, Compare::Off);
}

/// Save frame writes what the view shows: side by side both stages (left the selected one,
/// right the compared one), flicker the selected stage, the joint grid every joint's view in
/// the on-screen layout.
#[test]
fn save_frame_exports_what_the_view_shows() {
    use posescope::ui::settings::{Compare, JointView};
    let mut h = harness(None);
    h.state_mut().settings.show_hud = false;
    h.run_steps(2);
    let one = |h: &mut Harness<'static, PosescopeApp>, stage: usize| {
        let saved = (h.state().stage, h.state().settings.compare);
        h.state_mut().stage = stage;
        h.state_mut().settings.compare = Compare::Off;
        let img = posescope::ui::render_view(h.state_mut()).unwrap();
        (h.state_mut().stage, h.state_mut().settings.compare) = saved;
        img
    };
    let (s6, s1) = (one(&mut h, 5), one(&mut h, 0));
    assert_ne!(s6, s1, "stages 6 and 1 render alike");
    let (w, ht) = s6.dimensions();
    h.state_mut().stage = 5;
    h.state_mut().settings.compare_stage = 0;
    h.state_mut().settings.compare = Compare::SideBySide;
    let both = posescope::ui::render_view(h.state_mut()).unwrap();
    assert_eq!(both.dimensions(), (2 * w, ht));
    assert_eq!(image::imageops::crop_imm(&both, 0, 0, w, ht).to_image(), s6);
    assert_eq!(image::imageops::crop_imm(&both, w, 0, w, ht).to_image(), s1);
    assert_eq!(h.state().stage, 5, "the export changed the selected stage");
    h.state_mut().settings.compare = Compare::Flicker;
    assert_eq!(posescope::ui::render_view(h.state_mut()).unwrap(), s6);
    // The grid: every joint's cell, as on screen (columns = ceil(sqrt(joints))).
    h.state_mut().settings.compare = Compare::Off;
    h.state_mut().settings.joint_view = JointView::Grid;
    let grid = posescope::ui::render_view(h.state_mut()).unwrap();
    let n = h.state().inspection.as_ref().unwrap().joints.len() as u32;
    let cols = (n as f32).sqrt().ceil() as u32;
    let rows = n.div_ceil(cols);
    assert_eq!(grid.dimensions(), ((w / cols) * cols, (ht / rows) * rows));
    // Each cell shows its own joint: the first two cells differ.
    let (cw, ch) = (w / cols, ht / rows);
    let c0 = image::imageops::crop_imm(&grid, 0, 0, cw, ch).to_image();
    let c1 = image::imageops::crop_imm(&grid, cw, 0, cw, ch).to_image();
    assert!(diff(&c0, &c1) > 0.5, "the grid's cells are alike");
    // Save frame writes that image.
    let dir = tempfile::tempdir().unwrap();
    let files = posescope::ui::save_frame_to(h.state_mut(), dir.path()).unwrap();
    assert_eq!(image::open(&files[0]).unwrap().to_rgba8(), grid);
}

/// Save frame with "view": a zoomed and panned view writes only the part of the frame it
/// shows, at the frame's resolution, and that part looks like the view on screen; "whole
/// frame" (the default) ignores the zoom.
#[test]
fn save_frame_of_a_zoomed_view_writes_the_part_the_view_shows() {
    use posescope::ui::settings::SaveExtent;
    let mut h = harness(None);
    h.state_mut().settings.show_hud = false;
    h.state_mut().stage = 5;
    h.run_steps(2);
    let whole = posescope::ui::render_view(h.state_mut()).unwrap();
    let (w, ht) = whole.dimensions();
    h.state_mut().view.zoom = 3.0;
    h.state_mut().view.pan = egui::vec2(60.0, -20.0);
    h.run_steps(2);
    assert_eq!(posescope::ui::render_view(h.state_mut()).unwrap(), whole);
    h.state_mut().settings.save_extent = SaveExtent::View;
    let part = posescope::ui::render_view(h.state_mut()).unwrap();
    let view_rect = h.state().view_rects()[0];
    let size = egui::vec2(w as f32, ht as f32);
    let [x0, y0, x1, y1] =
        posescope::ui::viewport::visible_region(view_rect, size, &h.state().view).unwrap();
    println!("frame {w}x{ht}; the zoomed view shows x {x0}..{x1}, y {y0}..{y1}");
    assert!(
        (x1 - x0) * (y1 - y0) < w * ht / 4,
        "zoomed 3×, the view shows more than a quarter of the frame"
    );
    assert_eq!(
        part,
        image::imageops::crop_imm(&whole, x0, y0, x1 - x0, y1 - y0).to_image()
    );
    // Like the screen: the view on screen against the export scaled to it, and against the
    // whole frame scaled to it.
    let shot = h.render().unwrap();
    let ppp = shot.width() as f32 / 1100.0;
    let screen = crop(&shot, view_rect, ppp);
    let fit = |img: &image::RgbaImage| {
        image::imageops::resize(
            img,
            screen.width(),
            screen.height(),
            image::imageops::FilterType::Triangle,
        )
    };
    let (d_part, d_whole) = (diff(&screen, &fit(&part)), diff(&screen, &fit(&whole)));
    println!("screen vs exported view: {d_part:.2}; vs the whole frame: {d_whole:.2}");
    assert!(d_part * 3.0 < d_whole, "the export is not the view");
    // Save frame writes that part.
    let dir = tempfile::tempdir().unwrap();
    let files = posescope::ui::save_frame_to(h.state_mut(), dir.path()).unwrap();
    assert_eq!(image::open(&files[0]).unwrap().to_rgba8(), part);
}

/// The part of a screenshot under `rect` (screen points at `ppp` pixels per point).
fn crop(img: &image::RgbaImage, rect: egui::Rect, ppp: f32) -> image::RgbaImage {
    let x = (rect.min.x * ppp).round() as u32;
    let y = (rect.min.y * ppp).round() as u32;
    let w = ((rect.width() * ppp).round() as u32).min(img.width() - x);
    let h = ((rect.height() * ppp).round() as u32).min(img.height() - y);
    image::imageops::crop_imm(img, x, y, w, h).to_image()
}

#[test]
fn higherhrnet_tag_map_and_live_regrouping() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    // The reduced W8 network of the parity fixtures (posegen weights: the views' plumbing,
    // not a demo).
    let pth = shared.join("fixtures/posegen/higherhrnet_w8_pth/weights.pth");
    let mut h = harness_with(
        pth.to_str().unwrap(),
        (128, 128),
        Some(shared.join("data/images/basketball1.png")),
    );
    assert!(h.state().associative());
    let ins = h.state().inspection.clone().unwrap();
    let keys: Vec<&str> = ins.stages.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(keys, ["res0", "res1", "aggregated"]);
    assert!(ins.grouping.is_some());
    h.state_mut().settings.show_hud = false;
    h.state_mut().stage = 2;
    h.run_steps(2);
    let belief = h.render().unwrap();
    // E: the tag map.
    h.key_press(egui::Key::E);
    h.run_steps(2);
    assert_eq!(
        h.state().settings.map_kind,
        posescope::ui::settings::MapKind::Tags
    );
    let tags = h.render().unwrap();
    let d = diff(&belief, &tags);
    println!("belief vs tag map: {d:.3}");
    assert!(d > 0.2, "the tag map did not show ({d})");
    // A huge tag threshold merges people; the frame is regrouped without a new run.
    let before = h.state().inspection.as_ref().unwrap().people.len();
    let serial = h.state().inspection_serial;
    h.state_mut().settings.ae.params.tag_threshold = 1e6;
    h.state_mut().regroup();
    h.run_steps(2);
    let after = h.state().inspection.as_ref().unwrap().people.len();
    println!("people: {before} at the official threshold, {after} at 1e6");
    assert!(after < before, "{after} vs {before}");
    assert_eq!(
        h.state().inspection_serial,
        serial,
        "regrouping must not re-run"
    );
}

#[test]
fn the_feature_view_shows_each_branch_at_its_resolution() {
    use posescope::ui::settings::MapKind;
    let Some(shared) = common::shared_dir() else {
        return;
    };
    // HigherHRNet W8 (posegen weights): its stage-4 branches and deconvolution as features.
    let pth = shared.join("fixtures/posegen/higherhrnet_w8_pth/weights.pth");
    let mut h = harness_with(
        pth.to_str().unwrap(),
        (128, 128),
        Some(shared.join("data/images/basketball1.png")),
    );
    let ins = h.state().inspection.clone().unwrap();
    let keys: Vec<&str> = ins.features.iter().map(|f| f.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "stage4.branch1",
            "stage4.branch2",
            "stage4.branch3",
            "stage4.branch4",
            "deconv"
        ]
    );
    // Each branch at its own resolution: 1/4 … 1/32 of the input.
    let sides: Vec<usize> = ins.features[..4].iter().map(|f| f.size().0).collect();
    let input = ins.input_size.1 as usize;
    assert_eq!(sides, [input / 4, input / 8, input / 16, input / 32]);
    h.state_mut().settings.show_hud = false;
    h.run_steps(2);
    let belief = h.render().unwrap();
    // I: the feature view, first feature.
    h.key_press(egui::Key::I);
    h.run_steps(2);
    assert_eq!(h.state().settings.map_kind, MapKind::Features);
    h.state_mut().settings.feature = 0;
    h.run_steps(2);
    let branch1 = h.render().unwrap();
    let d = diff(&belief, &branch1);
    println!("belief vs branch 1 energy: {d:.3}");
    assert!(d > 0.2, "the feature map did not show ({d})");
    // ] three times: the 1/32 branch, a coarser grid over the same region.
    for _ in 0..3 {
        h.key_press(egui::Key::CloseBracket);
        h.run_steps(1);
    }
    assert_eq!(h.state().settings.feature, 3);
    h.run_steps(2);
    let branch4 = h.render().unwrap();
    let d = diff(&branch1, &branch4);
    println!("branch 1 vs branch 4: {d:.3}");
    assert!(
        d > 0.2,
        "switching features did not change the overlay ({d})"
    );
    // [ steps back; I returns to the belief maps.
    h.key_press(egui::Key::OpenBracket);
    h.run_steps(1);
    assert_eq!(h.state().settings.feature, 2);
    h.key_press(egui::Key::I);
    h.run_steps(1);
    assert_eq!(h.state().settings.map_kind, MapKind::Belief);
}

/// Renders the views described in the README to `docs/` (run by hand:
/// `cargo test --test gui docs_screenshots -- --ignored`).
#[test]
#[ignore = "writes docs/ screenshots; run by hand"]
fn docs_screenshots() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let mut h = harness(Some(
        shared.join("data/images/COCO_val2014_000000000192.jpg"),
    ));
    let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    h.state_mut().settings.show_hud = false;
    let shot = |h: &mut Harness<'static, PosescopeApp>, name: &str| {
        h.run_steps(3);
        h.render().unwrap().save(docs.join(name)).unwrap();
    };
    h.state_mut().stage = 0;
    shot(&mut h, "stage1_max.png");
    h.state_mut().stage = 5;
    shot(&mut h, "stage6_max.png");
    h.state_mut().settings.map_kind = posescope::ui::settings::MapKind::Difference;
    shot(&mut h, "stage6_difference.png");
    h.state_mut().settings.map_kind = posescope::ui::settings::MapKind::Belief;
    h.state_mut().settings.joint_view = JointView::Grid;
    shot(&mut h, "stage6_grid.png");
    h.state_mut().settings.joint_view = JointView::Max;
    h.state_mut().settings.show_heatmap = false;
    h.state_mut().settings.show_pafs = true;
    shot(&mut h, "stage6_pafs.png");
}

/// The README tour's pictures, on the bundled sample photo with the default model at its own
/// input size (`cargo test --test gui tour_screenshots -- --ignored`; writes `docs/tour_*.png`).
#[test]
#[ignore = "writes the README tour's screenshots into docs/"]
fn tour_screenshots() {
    use posescope::ui::settings::Compare;
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let mut h = harness_with("openpose-mobilenet-thin", (432, 368), None);
    h.state_mut()
        .open_input(posescope::player::PlayerInput::Sample);
    let deadline = Instant::now() + Duration::from_secs(180);
    while !h
        .state()
        .source
        .as_ref()
        .is_some_and(|s| s.description.starts_with("sample photo"))
        || h.state()
            .inspection
            .as_ref()
            .is_none_or(|i| i.people.len() != 2)
    {
        assert!(Instant::now() < deadline, "no result on the sample photo");
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs");
    h.state_mut().settings.show_hud = false;
    let shot = |h: &mut Harness<'static, PosescopeApp>, name: &str| {
        h.run_steps(3);
        h.render().unwrap().save(docs.join(name)).unwrap();
    };
    // Stages: stage 1 next to stage 6.
    h.state_mut().stage = 5;
    h.state_mut().settings.compare = Compare::SideBySide;
    h.state_mut().settings.compare_stage = 0;
    shot(&mut h, "tour_stages.png");
    h.state_mut().settings.compare = Compare::Off;
    // Part-affinity fields as glyphs.
    h.state_mut().settings.show_heatmap = false;
    h.state_mut().settings.show_pafs = true;
    shot(&mut h, "tour_pafs.png");
    h.state_mut().settings.show_pafs = false;
    h.state_mut().settings.show_heatmap = true;
    // The receptive field of the cell under the pointer (the walking person's hip).
    h.state_mut().settings.show_receptive_field = true;
    h.state_mut().stage = 2;
    h.run_steps(2);
    let rect = h.state().image_screen_rect().expect("the frame is drawn");
    h.hover_at(rect.min + egui::vec2(850.0 / 1280.0, 460.0 / 720.0) * rect.size());
    shot(&mut h, "tour_receptive_field.png");
    h.state_mut().settings.show_receptive_field = false;
    // Evaluation: the default model on the first 40 images of the LSP development split.
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::E);
    let data = shared.join("data/lspet_dev");
    h.state_mut().eval.annotations = Some(data.join("annotations.json"));
    h.state_mut().eval.images = Some(data.join("images"));
    h.state_mut().eval.limit = 40;
    h.run_steps(2);
    {
        use egui_kittest::kittest::Queryable;
        h.get_by_label("Run evaluation").click();
    }
    let deadline = Instant::now() + Duration::from_secs(900);
    while h.state().eval.report.is_none() {
        assert!(h.state().eval.error.is_none(), "{:?}", h.state().eval.error);
        assert!(Instant::now() < deadline, "no report");
        h.step();
        std::thread::sleep(Duration::from_millis(50));
    }
    shot(&mut h, "tour_evaluation.png");
}

#[test]
fn the_ui_font_has_every_character_the_ui_and_its_messages_use() {
    // egui panics on a missing glyph; every non-ASCII character in the sources that can
    // reach the screen (labels, hover texts, error messages) must be in the UI font.
    let h = harness(None);
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut chars = std::collections::BTreeSet::new();
    let mut stack = vec![src];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                for line in std::fs::read_to_string(&p).unwrap().lines() {
                    // Doc and code comments never reach the screen.
                    let code = line.split("//").next().unwrap_or("");
                    chars.extend(code.chars().filter(|c| !c.is_ascii()));
                }
            }
        }
    }
    let font = egui::FontId::proportional(12.0);
    let missing: String = h
        .ctx
        .fonts_mut(|f| chars.iter().filter(|c| !f.has_glyph(&font, **c)).collect());
    assert!(
        missing.is_empty(),
        "characters without a glyph: {missing:?}"
    );
}

#[test]
fn the_evaluation_window_runs_in_the_background_and_shows_per_stage_accuracy() {
    use egui_kittest::kittest::Queryable;
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let mut h = harness(None);
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::E);
    h.run_steps(2);
    assert!(h.state().eval.open, "Ctrl+E opens the window");
    let data = shared.join("data/lspet_dev");
    h.state_mut().eval.annotations = Some(data.join("annotations.json"));
    h.state_mut().eval.images = Some(data.join("images"));
    h.state_mut().eval.limit = 3;
    h.run_steps(2);
    h.get_by_label("Run evaluation").click();
    h.run_steps(2);
    let deadline = Instant::now() + Duration::from_secs(300);
    while h.state().eval.report.is_none() {
        assert!(h.state().eval.error.is_none(), "{:?}", h.state().eval.error);
        assert!(Instant::now() < deadline, "no report");
        h.step();
        std::thread::sleep(Duration::from_millis(50));
    }
    h.run_steps(3);
    let report = h.state().eval.report.clone().unwrap();
    assert_eq!(report.counts.images, 3);
    assert_eq!(report.stages.len(), 6, "one PCK per stage");
    assert!(report.overall.is_some_and(|v| (0.0..=1.0).contains(&v)));
    // The results are on screen.
    h.get_by_label("Save report…");
    h.get_by_label("Save chart…");
}

#[test]
fn shift_drag_draws_a_person_box_and_runs_the_model_on_it() {
    use posescope::pipeline::PersonMode;
    let Some(shared) = common::shared_dir() else {
        return;
    };
    // The real mobile CPM (single-person) on basketball1.png (640x480).
    let model = shared.join("models/pefm_cpm.tflite");
    let mut h = harness_with(
        model.to_str().unwrap(),
        (192, 192),
        Some(shared.join("data/images/basketball1.png")),
    );
    assert!(h.state().single_person());
    assert_eq!(h.state().settings.person_mode, PersonMode::Centre);
    assert!(h.state().inspection.as_ref().unwrap().crops.is_empty());
    let rect = h.state().image_screen_rect().expect("the frame is drawn");
    let to_screen =
        |x: f32, y: f32| rect.min + egui::vec2((x + 0.5) / 640.0, (y + 0.5) / 480.0) * rect.size();
    let drag =
        |h: &mut Harness<'static, PosescopeApp>, shift: bool, a: egui::Pos2, b: egui::Pos2| {
            if shift {
                h.event(egui::Event::ModifiersChanged(egui::Modifiers::SHIFT));
            }
            h.hover_at(a);
            h.drag_at(a);
            h.hover_at(a + (b - a) * 0.5);
            h.hover_at(b);
            h.drop_at(b);
            h.event(egui::Event::ModifiersChanged(egui::Modifiers::NONE));
            h.run_steps(2);
        };

    // Shift+drag round the standing man (corner to corner, bottom-right first).
    drag(&mut h, true, to_screen(170.0, 470.0), to_screen(30.0, 75.0));
    assert_eq!(h.state().settings.person_mode, PersonMode::Box);
    let b = h.state().settings.person_box.expect("a box");
    println!("box {b:?}");
    let px = 640.0 / f64::from(rect.width());
    for (got, want) in b.iter().zip([30.0, 75.0, 170.0, 470.0]) {
        assert!((got - want).abs() <= 2.0 * px + 0.5, "{b:?}");
    }
    // The frame is re-run on the box: one crop around it.
    let deadline = Instant::now() + Duration::from_secs(180);
    while h.state().inspection.as_ref().unwrap().crops.len() != 1 {
        assert!(Instant::now() < deadline, "no box-mode inspection");
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    h.run_steps(2);
    let c = h.state().inspection.as_ref().unwrap().crops[0].bbox;
    assert!(
        c[0] < b[0] && c[1] < b[1] && c[2] > b[2] && c[3] > b[3],
        "{c:?}"
    );

    // A tiny Shift+drag stays a click; a plain drag pans; neither touches the box.
    let view = h.state().view;
    drag(
        &mut h,
        true,
        to_screen(300.0, 200.0),
        to_screen(301.0, 200.0),
    );
    assert_eq!(h.state().settings.person_box, Some(b));
    assert_eq!(h.state().view, view);
    drag(
        &mut h,
        false,
        to_screen(300.0, 200.0),
        to_screen(360.0, 240.0),
    );
    assert_eq!(h.state().settings.person_box, Some(b));
    assert_ne!(h.state().view.pan, view.pan, "a plain drag pans");
    h.state_mut().view = view;
    h.run_steps(2);

    // A box one pixel wide is refused with a message, never used.
    let errors =
        |h: &Harness<'static, PosescopeApp>| h.state().notices.iter().filter(|n| n.error).count();
    let before = errors(&h);
    drag(
        &mut h,
        true,
        to_screen(300.0, 100.0),
        to_screen(300.4, 300.0),
    );
    assert_eq!(h.state().settings.person_box, Some(b));
    assert_eq!(errors(&h), before + 1);
    let last = h.state().notices.last().unwrap().text.clone();
    assert!(last.contains("box not used"), "{last}");

    // Shift+B clears the box (box mode without a box: the whole frame).
    h.key_press_modifiers(egui::Modifiers::SHIFT, egui::Key::B);
    h.run_steps(2);
    assert_eq!(h.state().settings.person_box, None);
    assert_eq!(h.state().settings.person_mode, PersonMode::Box);

    // The box belongs to its input: opening another one clears it.
    h.state_mut().set_person_box((30.0, 75.0), (170.0, 470.0));
    assert!(h.state().settings.person_box.is_some());
    h.state_mut()
        .open_input(posescope::player::PlayerInput::Sample);
    h.run_steps(2);
    assert_eq!(h.state().settings.person_box, None);
}

/// A live camera in the app (the simulated camera playing a real clip in real time): it
/// plays at once, the status bar counts frames dropped while the model was busy, a pulled
/// cable shows a banner and a notice and the last frame stays, and the camera plays on when
/// it is back. Shift+M mirrors the view (and only the view: the joints keep their names).
#[test]
fn a_live_camera_plays_drops_stale_frames_survives_unplugging_and_mirrors() {
    use egui_kittest::kittest::Queryable;
    use posescope::player::PlayerInput;
    use posescope::source::{CameraId, SimCamera};
    let dir = tempfile::tempdir().unwrap();
    let Some(clip) = common::street_clip(dir.path()) else {
        return;
    };
    let cam = SimCamera::new(0, "desk camera", &clip);
    let mut h = harness(None);
    h.state_mut().open_input(PlayerInput::Camera {
        id: CameraId::Simulated(cam.clone()),
        mode: None,
    });
    let step_until = |h: &mut Harness<'static, PosescopeApp>,
                      what: &str,
                      pred: &dyn Fn(&PosescopeApp) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !pred(h.state()) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            h.step();
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let camera_frame = |app: &PosescopeApp| {
        app.inspection
            .as_ref()
            .is_some_and(|i| i.frame.width == 320 && i.frame.height == 180)
    };
    step_until(&mut h, "a camera frame", &camera_frame);
    let src = h.state().source.clone().unwrap();
    assert!(src.playing, "a camera plays when opened");
    assert!(
        src.description.contains("desk camera"),
        "{}",
        src.description
    );
    step_until(&mut h, "dropped frames", &|a| {
        a.frames_dropped().is_some_and(|d| d > 0)
    });
    h.run_steps(2);
    h.get_by_label_contains("frames dropped while busy");

    // Unplug: banner and notice; the last frame stays on screen.
    cam.unplug();
    step_until(&mut h, "the loss", &|a| {
        a.source.as_ref().is_some_and(|s| s.disconnected.is_some())
    });
    h.run_steps(2);
    h.get_by_label_contains("waiting for it to come back");
    assert!(camera_frame(h.state()));
    let lost_at = h.state().inspection_serial;
    std::thread::sleep(Duration::from_millis(800));
    h.run_steps(3);
    // At most the frames captured before the cable went: one running on each inference
    // worker (a camera runs `default_workers()` of them, two on a machine with two cores)
    // and the newest one waiting for a worker. A view that went on running the last frame
    // would count several more in 0.8 s.
    let workers = posescope::pipeline::default_workers() as u64;
    assert!(
        h.state().inspection_serial <= lost_at + workers + 1,
        "{} inspections after the loss at {lost_at}, {workers} workers",
        h.state().inspection_serial
    );

    // Replug: it plays on by itself.
    cam.replug();
    step_until(&mut h, "the reconnection", &|a| {
        a.source
            .as_ref()
            .is_some_and(|s| s.disconnected.is_none() && s.playing)
    });
    let back_at = h.state().inspection_serial;
    step_until(&mut h, "new frames", &|a| a.inspection_serial > back_at + 1);
    h.run_steps(2);
    h.get_by_label_contains("reconnected");

    // Shift+M mirrors the drawn frame left to right; the inspection is unchanged.
    h.state_mut()
        .player_command(posescope::player::PlayerCommand::Pause);
    step_until(&mut h, "pause", &|a| {
        a.source.as_ref().is_some_and(|s| !s.playing)
    });
    // Frames the inference workers took before the pause still land after it (under load
    // seconds later): wait until the workers have finished every frame they were given,
    // then let the results land.
    step_until(&mut h, "the workers to finish", &|a| a.inference_idle());
    h.run_steps(3);
    let serial = h.state().inspection_serial;
    let plain = h.render().unwrap();
    let rect = h.state().image_screen_rect().unwrap();
    h.key_press_modifiers(egui::Modifiers::SHIFT, egui::Key::M);
    h.run_steps(3);
    assert!(h.state().view.mirror);
    assert_eq!(h.state().inspection_serial, serial);
    let mirrored = h.render().unwrap();
    let ppp = plain.width() as f32 / 1100.0;
    let (x0, x1) = (
        (rect.left().min(rect.right()) * ppp) as u32 + 2,
        (rect.left().max(rect.right()) * ppp) as u32 - 2,
    );
    let (y0, y1) = (
        (rect.top() * ppp) as u32 + 2,
        (rect.bottom() * ppp) as u32 - 2,
    );
    let mut same = 0u64;
    let mut flipped = 0u64;
    let mut n = 0u64;
    for y in (y0..y1).step_by(3) {
        for x in (x0..x1).step_by(3) {
            let p = plain.get_pixel(x, y).0;
            let m = mirrored.get_pixel(x, y).0;
            let f = mirrored.get_pixel(x0 + x1 - 1 - x, y).0;
            let d = |a: [u8; 4], b: [u8; 4]| {
                a.iter()
                    .zip(b)
                    .map(|(u, v)| u64::from(u.abs_diff(v)))
                    .sum::<u64>()
            };
            same += d(p, m);
            flipped += d(p, f);
            n += 1;
        }
    }
    let (same, flipped) = (same as f64 / n as f64, flipped as f64 / n as f64);
    println!("mean pixel difference: unmirrored {same:.2}, mirrored back {flipped:.2}");
    assert!(
        flipped < 6.0,
        "the mirrored view is not the frame flipped ({flipped:.2})"
    );
    assert!(
        same > 4.0 * flipped,
        "mirroring changed too little ({same:.2} vs {flipped:.2})"
    );
    // Save frame writes what is shown: the mirrored picture, the same joints.
    let dir = tempfile::tempdir().unwrap();
    let saved_mirrored = posescope::ui::save_frame_to(h.state_mut(), dir.path()).unwrap();
    h.key_press_modifiers(egui::Modifiers::SHIFT, egui::Key::M);
    h.run_steps(2);
    assert!(!h.state().view.mirror);
    let saved_plain = posescope::ui::save_frame_to(h.state_mut(), dir.path()).unwrap();
    let a = image::open(&saved_mirrored[0]).unwrap().to_rgba8();
    let mut b = image::open(&saved_plain[0]).unwrap().to_rgba8();
    assert_ne!(a, b, "the mirrored export is the plain one");
    image::imageops::flip_horizontal_in_place(&mut b);
    assert_eq!(a, b, "the mirrored export is not the plain one flipped");
    assert_eq!(
        std::fs::read(&saved_mirrored[1]).unwrap(),
        std::fs::read(&saved_plain[1]).unwrap(),
        "the joints' JSON changed with the mirror"
    );
}

/// Model and source switching while inference runs, a hundred times (issue 20.4): the
/// default model and the mobile CPM alternate, and so do the bundled photo and a video
/// playing; no crash, a result after the last switch, and no GPU texture left behind (the
/// count of live textures after the last switch is what it was after the first ten).
#[test]
fn switching_models_and_sources_a_hundred_times_leaks_no_gpu_texture() {
    use posescope::player::PlayerInput;
    let dir = tempfile::tempdir().unwrap();
    let (Some(clip), Some(shared)) = (common::street_clip(dir.path()), common::shared_dir()) else {
        return;
    };
    let cpm = shared.join("models/pefm_cpm.tflite");
    let mut h = harness(None);
    let mut baseline = None;
    let mut counts = Vec::new();
    let t0 = Instant::now();
    for i in 0..100 {
        match i % 4 {
            0 => h
                .state_mut()
                .choose_model(cpm.to_string_lossy().into_owned()),
            2 => h
                .state_mut()
                .choose_model("openpose-mobilenet-thin".to_string()),
            _ => {}
        }
        let input = if i % 2 == 0 {
            PlayerInput::Path(clip.clone())
        } else {
            PlayerInput::Sample
        };
        h.state_mut().open_input(input);
        h.run_steps(2);
        if i % 10 == 9 {
            // Let the pipeline catch up now and then: a fresh result after the switch.
            let serial = h.state().inspection_serial;
            let deadline = Instant::now() + Duration::from_secs(120);
            while h.state().inspection_serial == serial {
                assert!(Instant::now() < deadline, "no result after switch {i}");
                h.step();
                std::thread::sleep(Duration::from_millis(10));
            }
            h.run_steps(2);
            let n = h.state().gpu_textures_alive().expect("a wgpu report");
            counts.push(n);
            if i == 9 {
                baseline = Some(n);
            }
        }
    }
    println!(
        "live GPU textures every 10 switches: {counts:?} ({:.0} s)",
        t0.elapsed().as_secs_f64()
    );
    let (first, last) = (baseline.unwrap(), *counts.last().unwrap());
    assert!(
        last <= first + 2,
        "GPU textures grew from {first} to {last} over 100 switches: {counts:?}"
    );
    let errors: Vec<&String> = h
        .state()
        .notices
        .iter()
        .filter(|n| n.error)
        .map(|n| &n.text)
        .collect();
    assert!(errors.is_empty(), "errors while switching: {errors:?}");
}
