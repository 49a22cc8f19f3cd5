//! The Model-vs-model and Stability windows (issue 23, items 4 and 5), driven headless with
//! egui_kittest on the real mobile models: MobileNet-thin against the mobile CPM on the sample
//! photo (and against itself), and the mobile CPM's per-stage jitter over the sample clip.
//! Screenshots go to `docs/` only with `POSESCOPE_WRITE_DOCS=1` (else a temporary folder).

#![cfg(feature = "gui")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use eframe::egui;
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use posescope::experiments::stability::stage_positions;
use posescope::pipeline::{Pipeline, PipelineConfig};
use posescope::pose::jitter::JitterMeter;
use posescope::source::FrameSource;
use posescope::ui::versus_panel::View;
use posescope::ui::{PosescopeApp, StartOptions};

fn harness(model: String, input: PathBuf) -> Harness<'static, PosescopeApp> {
    let mut h = Harness::builder()
        .with_size(egui::vec2(1280.0, 900.0))
        .wgpu()
        .build_eframe(move |cc| {
            PosescopeApp::new(
                cc,
                StartOptions {
                    model: Some(model),
                    input: Some(input),
                    device: Some("cpu".into()),
                },
            )
        });
    wait(&mut h, "an inspection", |a| a.inspection.is_some());
    h
}

fn wait(h: &mut Harness<'static, PosescopeApp>, what: &str, done: impl Fn(&PosescopeApp) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(600);
    while !done(h.state()) {
        for e in [&h.state().versus.error, &h.state().jitter.error] {
            assert!(e.is_none(), "{e:?}");
        }
        assert!(Instant::now() < deadline, "no {what}");
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    h.run_steps(3);
}

/// `docs/` with `POSESCOPE_WRITE_DOCS=1`, else a temporary folder kept for the test's run.
fn pictures() -> (PathBuf, Option<tempfile::TempDir>) {
    if std::env::var_os("POSESCOPE_WRITE_DOCS").is_some_and(|v| v == "1") {
        let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs");
        std::fs::create_dir_all(&d).unwrap();
        (d, None)
    } else {
        let t = tempfile::tempdir().unwrap();
        (t.path().to_path_buf(), Some(t))
    }
}

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("assets/samples")
        .join(name)
}

#[test]
fn mobilenet_thin_against_mobile_cpm_and_against_itself() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let (dir, _keep) = pictures();
    let mut h = harness("openpose-mobilenet-thin".into(), sample("two_people.jpg"));
    assert_eq!(h.state().inspection.as_ref().unwrap().people.len(), 2);
    // B: the mobile CPM (single-person, run on top-down crops by default).
    h.state_mut().versus.model_b = shared
        .join("models/pefm_cpm.tflite")
        .to_string_lossy()
        .into_owned();
    h.get_by_label("Versus…").click();
    h.run_steps(1);
    assert!(h.state().versus.open);
    wait(&mut h, "comparison", |a| {
        a.versus
            .comparison
            .as_ref()
            .is_some_and(|c| c.b.joints.id == "head-neck-14")
    });
    let cmp = h.state().versus.comparison.clone().unwrap();
    let t = &cmp.table;
    // OpenPose-18 and the PEFM set share the neck and the 12 limb joints (no face points, no
    // head top).
    assert_eq!(t.joints.len(), 13, "{:?}", t.joints);
    assert!(t.joints.contains(&"neck") && !t.joints.contains(&"nose"));
    assert_eq!(cmp.b.people.len(), 2, "one crop per person");
    assert_eq!(t.pairs.len(), 2);
    let mean = t.mean.unwrap();
    println!(
        "MobileNet-thin vs mobile CPM (top-down) on two_people.jpg: mean {mean:.1} px, per pair {:?}, per joint {:?}",
        t.pairs.iter().map(|p| p.mean).collect::<Vec<_>>(),
        t.joints.iter().zip(&t.per_joint).map(|(j, d)| format!("{j} {:.1}", d.unwrap_or(f64::NAN))).collect::<Vec<_>>()
    );
    // Two different networks: not the same points, but the same people (a person is ~450 px
    // tall here; a different person would be hundreds of pixels off).
    assert!(mean > 0.5 && mean < 40.0, "{mean}");
    // Each pair matched its own person: A's and B's people overlap.
    for p in &t.pairs {
        assert!(p.mean < 60.0, "{p:?}");
    }
    // The pointer off the window for the picture.
    h.hover_at(egui::pos2(1270.0, 600.0));
    h.run_steps(3);
    h.render().unwrap().save(dir.join("versus.png")).unwrap();

    // The difference of a shared joint's maps in image space.
    h.state_mut().versus.view = View::Difference;
    let knee = cmp
        .shared
        .iter()
        .position(|c| c.joint == "right_knee")
        .unwrap();
    h.state_mut().versus.joint = knee;
    h.run_steps(3);
    let top = h.state().versus.difference_max.unwrap();
    assert!(top > 0.05, "{top}");
    for normalize in [false, true] {
        let (grid, d) = cmp.difference(&cmp.shared[knee], 320, normalize).unwrap();
        assert_eq!((grid.width, grid.height), (320, 180));
        // The models' knee peaks lie a few pixels apart: A − B has both signs.
        assert!(
            d.iter().any(|&v| v > 0.05) && d.iter().any(|&v| v < -0.05),
            "normalize {normalize}"
        );
    }
    h.render()
        .unwrap()
        .save(dir.join("versus_difference.png"))
        .unwrap();

    // The same model against itself: distance 0, a zero difference map.
    h.state_mut().versus.model_b = "openpose-mobilenet-thin".into();
    let ctx = h.ctx.clone();
    h.state_mut().versus.load("cpu", &ctx);
    wait(&mut h, "self comparison", |a| {
        a.versus
            .comparison
            .as_ref()
            .is_some_and(|c| c.b.model_id == "openpose-mobilenet-thin")
    });
    let cmp = h.state().versus.comparison.clone().unwrap();
    assert_eq!(cmp.table.joints.len(), 18);
    assert_eq!(cmp.table.pairs.len(), 2);
    assert_eq!(cmp.table.mean, Some(0.0));
    for c in &cmp.shared {
        for normalize in [false, true] {
            let (_, d) = cmp.difference(c, 320, normalize).unwrap();
            assert!(d.iter().all(|&v| v == 0.0), "{}", c.joint);
        }
    }
    h.run_steps(3);
    assert_eq!(h.state().versus.difference_max, Some(0.0));
}

#[test]
fn jitter_window_measures_the_sample_clip() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let (dir, _keep) = pictures();
    let model = shared.join("models/pefm_cpm.tflite");
    let clip = sample("two_people.mp4");
    let mut h = harness(model.to_string_lossy().into_owned(), clip.clone());
    h.get_by_label("Jitter…").click();
    h.run_steps(3);
    assert!(h.state().jitter.open);
    h.get_by_label("Measure jitter").click();
    h.run_steps(2);
    assert!(h.state().jitter.job.is_some(), "runs in the background");
    let t0 = Instant::now();
    h.run_steps(3);
    assert!(t0.elapsed() < Duration::from_secs(5), "the UI waited");
    wait(&mut h, "jitter result", |a| a.jitter.result.is_some());
    let r = h.state().jitter.result.clone().unwrap();
    assert_eq!(r.joints.id, "head-neck-14");
    assert_eq!(r.per_stage.len(), 6);
    assert_eq!(r.frames, 126);
    // Every frame in order: one triple per inner frame.
    assert_eq!(r.triples, 124);
    println!(
        "mobile CPM jitter on two_people.mp4 ({} frames, {:.1} s): per stage {:?}",
        r.frames,
        r.elapsed.as_secs_f64(),
        r.per_stage
            .iter()
            .map(|v| format!("{:.2}", v.unwrap()))
            .collect::<Vec<_>>()
    );
    // The same numbers as pose::jitter on the model run frame by frame here.
    let device = posescope::device::DeviceSpec::Cpu.open().unwrap();
    let m = posescope::models::Model::load(&model.to_string_lossy(), &device).unwrap();
    let pipeline = Pipeline::new(m.clone(), PipelineConfig::for_model(&m));
    let mut src = posescope::source::VideoSource::open(&clip).unwrap();
    let mut meter = JitterMeter::new();
    while let Some(f) = src.next_frame() {
        let f = f.unwrap();
        let i = f.index;
        meter.push(i, stage_positions(&pipeline.run(f).unwrap()));
    }
    let expect = meter.per_stage();
    for (t, (a, b)) in r.per_stage.iter().zip(&expect).enumerate() {
        let (a, b) = (a.unwrap(), b.unwrap());
        assert!((a - b).abs() < 1e-6, "stage {}: {a} vs {b}", t + 1);
        assert!(a > 0.0 && a < 100.0, "{a}");
    }
    for t in 0..6 {
        assert_eq!(r.per_joint[t], meter.per_joint(t));
    }
    let rect = h.state().jitter.plot_rect.expect("the plot is drawn");
    assert!(rect.width() > 300.0 && rect.height() > 200.0);
    h.hover_at(egui::pos2(1270.0, 600.0));
    h.run_steps(3);
    h.render().unwrap().save(dir.join("jitter.png")).unwrap();
}
