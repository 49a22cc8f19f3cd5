//! The Evaluation window's failure browser (issue 23), driven headless with egui_kittest on
//! the real mobile CPM and the first lspet_dev images: the list is the ranking, a click opens
//! the worst image at the chosen stage with the ground truth drawn (checked in the rendered
//! pixels), and the training-target toggle draws the joint's Gaussian in the heatmap layer.
//! Writes `docs/eval_failures.png` under `POSESCOPE_WRITE_DOCS=1`.

#![cfg(feature = "gui")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use eframe::egui;
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use posescope::eval::failures::rank_worst;
use posescope::ui::{PosescopeApp, StartOptions};

/// Images evaluated (small, so the test stays quick in debug builds).
const IMAGES: usize = 10;

fn harness(model: PathBuf, input: PathBuf) -> Harness<'static, PosescopeApp> {
    let mut h = Harness::builder()
        .with_size(egui::vec2(1400.0, 900.0))
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
    wait(&mut h, "an inspection", |a| a.inspection.is_some());
    h
}

fn wait(h: &mut Harness<'static, PosescopeApp>, what: &str, done: impl Fn(&PosescopeApp) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(180);
    while !done(h.state()) {
        assert!(h.state().eval.error.is_none(), "{:?}", h.state().eval.error);
        assert!(Instant::now() < deadline, "no {what}");
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    h.run_steps(3);
}

/// The start of the list's row at `rank` (0-based).
fn row(rank: usize, file: &str) -> String {
    format!("{:>3}. {file}", rank + 1)
}

/// Pixels within `tol` of `c` in the annulus `r0..r1` (pixels) around `p` (pixels).
fn count_near(img: &image::RgbaImage, p: (f32, f32), r0: f32, r1: f32, c: egui::Color32) -> usize {
    let mut n = 0;
    let (x0, x1) = ((p.0 - r1).floor() as i64, (p.0 + r1).ceil() as i64);
    let (y0, y1) = ((p.1 - r1).floor() as i64, (p.1 + r1).ceil() as i64);
    for y in y0.max(0)..=y1.min(img.height() as i64 - 1) {
        for x in x0.max(0)..=x1.min(img.width() as i64 - 1) {
            let d = ((x as f32 - p.0).powi(2) + (y as f32 - p.1).powi(2)).sqrt();
            if d < r0 || d > r1 {
                continue;
            }
            let px = img.get_pixel(x as u32, y as u32).0;
            let close = (0..3).all(|k| (i32::from(px[k]) - i32::from(c[k])).abs() <= 40);
            n += usize::from(close);
        }
    }
    n
}

#[test]
fn failure_browser_lists_worst_first_and_opens_the_image_with_its_ground_truth() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let data = shared.join("data/lspet_dev");
    let mut h = harness(
        shared.join("models/pefm_cpm.tflite"),
        // Not one of the evaluated images: opening the worst one must change the view.
        data.join("images/im08100.jpg"),
    );
    h.get_by_label("Evaluate…").click();
    h.run_steps(2);
    {
        let e = &mut h.state_mut().eval;
        assert!(e.open);
        e.annotations = Some(data.join("annotations.json"));
        e.images = Some(data.join("images"));
        e.limit = IMAGES;
    }
    h.run_steps(1);
    h.get_by_label("Run evaluation").click();
    h.run_steps(1);
    assert!(h.state().eval.job.is_some(), "runs in the background");
    wait(&mut h, "report", |a| a.eval.report.is_some());
    h.get_by_label("Worst images").click();
    h.run_steps(3);
    assert!(h.state().eval.failures.tab);
    let report = h.state().eval.report.clone().unwrap();
    assert_eq!(report.stages.len(), 6);
    assert_eq!(report.per_image.len(), IMAGES);

    // The per-image errors are the report's numbers: summed over the images, every stage's
    // correct and counted joints per joint are the accumulator's.
    for (t, stage) in report.stages.iter().enumerate() {
        for (j, js) in stage.per_joint.iter().enumerate() {
            let (mut c, mut n) = (0u64, 0u64);
            for e in report
                .per_image
                .iter()
                .flat_map(|i| &i.people)
                .filter_map(|p| p.stages.get(t))
                .flatten()
                .filter(|e| e.joint == j)
            {
                n += 1;
                c += u64::from(e.correct);
                // PCK@0.2, strict; a joint without a prediction is wrong.
                assert_eq!(e.correct, e.normalised.is_some_and(|d| d < 0.2), "{e:?}");
                assert_eq!(e.pred.is_some(), e.distance.is_some());
            }
            assert_eq!((c, n), (js.correct, js.total), "stage {t} joint {j}");
        }
    }

    // The list is the ranking at the final stage, worst first, in screen order.
    let last = 5;
    let order = rank_worst(&report.per_image, last);
    assert_eq!(h.state().eval.failures.order, order);
    let missed: Vec<f64> = order
        .iter()
        .map(|&i| report.per_image[i].summary(last).missed().unwrap_or(0.0))
        .collect();
    assert!(missed.windows(2).all(|w| w[0] >= w[1]), "{missed:?}");
    h.get_by_label_contains(&row(0, &report.per_image[order[0]].file_name))
        .scroll_to_me();
    h.run_steps(3);
    let ys: Vec<f32> = order
        .iter()
        .take(5)
        .enumerate()
        .map(|(rank, &i)| {
            h.get_by_label_contains(&row(rank, &report.per_image[i].file_name))
                .rect()
                .center()
                .y
        })
        .collect();
    assert!(
        ys.windows(2).all(|w| w[0] < w[1]),
        "rows out of order: {ys:?}"
    );
    let worst = order[0];
    let worst_img = &report.per_image[worst];
    for &i in &order {
        let s = report.per_image[i].summary(last);
        println!(
            "  {}: PCK {:?} ({}/{}), mean normalised distance {:?}, worst {:?}",
            report.per_image[i].file_name,
            s.pck(),
            s.correct,
            s.total,
            s.mean_normalised,
            s.worst
        );
    }
    let s = worst_img.summary(last);
    println!(
        "worst of the first {IMAGES} lspet_dev images for pefm-cpm at stage 6: {} PCK {:.1}% \
         ({}/{}), mean normalised distance {:?}",
        worst_img.file_name,
        100.0 * s.pck().unwrap(),
        s.correct,
        s.total,
        s.mean_normalised
    );

    // Clicking it opens the image at that stage with its worst joint's map.
    h.get_by_label_contains(&row(0, &worst_img.file_name))
        .click();
    let path = data.join("images").join(&worst_img.file_name);
    let expected = path.clone();
    wait(&mut h, "the worst image in the viewer", move |a| {
        a.inspection
            .as_ref()
            .is_some_and(|i| i.frame.path.as_deref() == Some(expected.as_path()))
    });
    h.run_steps(3);
    assert_eq!(h.state().stage, last);
    let f = &h.state().eval.failures;
    assert_eq!(
        f.shown.as_ref().map(|s| (s.image, s.stage)),
        Some((worst, last))
    );
    let chosen = f.joint.unwrap();
    assert_eq!(Some(chosen), s.worst.map(|w| w.1));
    let channel = report.model_channels[chosen].unwrap();
    assert_eq!(
        h.state().settings.joint_view,
        posescope::ui::settings::JointView::Joint(channel)
    );

    // The ground-truth rings are drawn at the annotations: the ring colour around every
    // joint's annotation with the overlay, (almost) none without it.
    let rect = h.state().image_screen_rect().unwrap();
    let ins = h.state().inspection.clone().unwrap();
    let size = egui::vec2(ins.frame.width as f32, ins.frame.height as f32);
    let rings = |h: &mut Harness<'static, PosescopeApp>| {
        let img = h.render().unwrap();
        let ppp = img.width() as f32 / 1400.0;
        let mut with = 0;
        let joints = &worst_img.people[0].stages[last];
        for e in joints.iter().filter(|e| e.joint != chosen) {
            let p = rect.min
                + egui::vec2(
                    (e.gt[0] as f32 + 0.5) / size.x,
                    (e.gt[1] as f32 + 0.5) / size.y,
                ) * rect.size();
            let n = count_near(
                &img,
                (p.x * ppp, p.y * ppp),
                4.5 * ppp,
                7.5 * ppp,
                posescope::ui::failures::GT_COLOR,
            );
            with += usize::from(n >= 6);
        }
        (with, joints.len() - 1, img)
    };
    let (on, of, img) = rings(&mut h);
    println!("ground-truth rings found at {on} of {of} joints");
    assert!(on * 10 >= of * 8, "{on} of {of}");
    h.state_mut().eval.failures.show_gt = false;
    h.run_steps(2);
    let (off, _, _) = rings(&mut h);
    assert!(
        off * 10 <= of * 2,
        "rings without the overlay: {off} of {of}"
    );
    h.state_mut().eval.failures.show_gt = true;
    h.run_steps(2);

    // The training target replaces the joint's map by its Gaussian at the annotation: the
    // picture changes around the annotation of the chosen joint, not in the far corner.
    assert!(h.state().eval.failures.target.is_some());
    h.get_by_label_contains("training target").click();
    h.run_steps(3);
    assert!(h.state().eval.failures.show_target);
    let target = h.render().unwrap();
    let ppp = img.width() as f32 / 1400.0;
    let gt = worst_img.people[0].stages[last]
        .iter()
        .find(|e| e.joint == chosen)
        .unwrap()
        .gt;
    let p = rect.min
        + egui::vec2((gt[0] as f32 + 0.5) / size.x, (gt[1] as f32 + 0.5) / size.y) * rect.size();
    let diff = |a: &image::RgbaImage, b: &image::RgbaImage, c: egui::Pos2, r: f32| {
        let mut n = 0;
        for y in ((c.y - r) * ppp) as u32..((c.y + r) * ppp) as u32 {
            for x in ((c.x - r) * ppp) as u32..((c.x + r) * ppp) as u32 {
                if x < a.width() && y < a.height() && a.get_pixel(x, y) != b.get_pixel(x, y) {
                    n += 1;
                }
            }
        }
        n
    };
    let near = diff(&img, &target, p, 12.0);
    println!("training target: {near} pixels changed within 12 points of the annotation");
    assert!(near > 50, "{near}");
    // Choose the joint annotated farthest from it: the picture changes around both
    // annotations (the Gaussian moved) and nowhere far from both (the target is 0 there in
    // both pictures, coloured over the same fixed range).
    let gts: Vec<(usize, [f64; 2])> = worst_img.people[0].stages[last]
        .iter()
        .map(|e| (e.joint, e.gt))
        .collect();
    let dist = |a: [f64; 2], b: [f64; 2]| (a[0] - b[0]).hypot(a[1] - b[1]);
    let (other, other_gt) = *gts
        .iter()
        .max_by(|a, b| dist(a.1, gt).total_cmp(&dist(b.1, gt)))
        .unwrap();
    // Without the ground-truth overlay (its chosen ring moves too).
    h.state_mut().eval.failures.show_gt = false;
    h.run_steps(2);
    let target = h.render().unwrap();
    h.state_mut().eval.failures.joint = Some(other);
    h.state_mut().eval.failures.joint_changed = true;
    h.run_steps(3);
    let moved = h.render().unwrap();
    let q = rect.min
        + egui::vec2(
            (other_gt[0] as f32 + 0.5) / size.x,
            (other_gt[1] as f32 + 0.5) / size.y,
        ) * rect.size();
    // The image corner farthest from both annotations (and from the legend, top left).
    let corners = [
        (0.0f64, f64::from(ins.frame.height) - 1.0),
        (
            f64::from(ins.frame.width) - 1.0,
            f64::from(ins.frame.height) - 1.0,
        ),
        (f64::from(ins.frame.width) - 1.0, 0.0),
    ];
    let corner = corners
        .iter()
        .copied()
        .max_by(|a, b| {
            let m = |c: (f64, f64)| dist([c.0, c.1], gt).min(dist([c.0, c.1], other_gt));
            m(*a).total_cmp(&m(*b))
        })
        .unwrap();
    let far = rect.min
        + egui::vec2(
            (corner.0 as f32 + 0.5) / size.x,
            (corner.1 as f32 + 0.5) / size.y,
        ) * rect.size();
    let far = far + (rect.center() - far).normalized() * 8.0;
    let (at_a, at_b, at_far) = (
        diff(&target, &moved, p, 4.0),
        diff(&target, &moved, q, 4.0),
        diff(&target, &moved, far, 4.0),
    );
    println!("target moved to joint {other}: {at_a} / {at_b} / {at_far} pixels changed");
    assert!(at_a > 0 && at_b > 0, "{at_a} {at_b}");
    assert_eq!(at_far, 0, "the target reaches the far corner");

    // The picture for the docs: the worst image that has predictions, opened from the list
    // (its worst joint's predicted map at stage 6 under the ground truth).
    {
        let f = &mut h.state_mut().eval.failures;
        f.show_gt = true;
        f.show_target = false;
    }
    let (rank, &pick) = order
        .iter()
        .enumerate()
        .find(|(_, &i)| report.per_image[i].summary(last).mean_normalised.is_some())
        .unwrap();
    let label = row(rank, &report.per_image[pick].file_name);
    h.get_by_label_contains(&label).scroll_to_me();
    h.run_steps(2);
    h.get_by_label_contains(&label).click();
    let expected = data.join("images").join(&report.per_image[pick].file_name);
    wait(&mut h, "the picked image in the viewer", move |a| {
        a.inspection
            .as_ref()
            .is_some_and(|i| i.frame.path.as_deref() == Some(expected.as_path()))
    });
    h.run_steps(4);
    assert_eq!(
        h.state().eval.failures.shown.as_ref().map(|s| s.image),
        Some(pick)
    );
    h.render()
        .unwrap()
        .save(common::screenshot_path("eval_failures.png"))
        .unwrap();
}
