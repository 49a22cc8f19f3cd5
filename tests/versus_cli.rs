//! `posescope versus` end to end on the real mobile models: the distance table (JSON) and the
//! side-by-side picture, a model against itself, and bad input.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

fn sample() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/samples/two_people.jpg")
}

fn versus(shared: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_posescope"))
        .env("POSESCOPE_MODELS", shared.join("models"))
        .arg("versus")
        .args(args)
        .output()
        .unwrap()
}

fn report(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("versus.json")).unwrap()).unwrap()
}

#[test]
fn versus_writes_the_distance_table_and_the_picture() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let img = sample();
    let img = img.to_str().unwrap();
    let out = tmp.path().join("thin_cpm");
    let o = versus(
        &shared,
        &[
            "--model-b",
            "pefm-cpm",
            "--input",
            img,
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", common::stderr(&o));
    let r = report(&out);
    assert_eq!(r["format"], "posescope-versus/1");
    assert_eq!(r["model_a"], "openpose-mobilenet-thin");
    assert_eq!(r["model_b"], "pefm-cpm");
    assert_eq!(r["joints"].as_array().unwrap().len(), 13);
    assert_eq!(r["pairs"].as_array().unwrap().len(), 2);
    let mean = r["mean_px"].as_f64().unwrap();
    assert!(mean > 0.5 && mean < 40.0, "{mean}");
    let png = image::open(out.join("versus.png")).unwrap();
    assert_eq!((png.width(), png.height()), (2 * 1280 + 4, 720));

    // Against itself: every distance 0.
    let out = tmp.path().join("self");
    let o = versus(
        &shared,
        &[
            "--model",
            "pefm-cpm",
            "--model-b",
            "pefm-cpm",
            "--person",
            "top-down",
            "--input",
            img,
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", common::stderr(&o));
    let r = report(&out);
    assert_eq!(r["joints"].as_array().unwrap().len(), 14);
    assert_eq!(r["mean_px"].as_f64(), Some(0.0));

    // An unknown model B: a clear error naming it, nothing written.
    let out = tmp.path().join("bad");
    let o = versus(
        &shared,
        &[
            "--model-b",
            "no-such-model",
            "--input",
            img,
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(!o.status.success());
    let err = common::stderr(&o);
    assert!(err.contains("no-such-model"), "{err}");
    assert!(!out.exists());
}
