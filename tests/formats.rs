//! `infer --write-coco / --write-openpose / --write-csv` end to end: the default model on the
//! annotated COCO images, each file read back by its consumer's rules (COCO results through
//! the crate's `loadRes`-like reader and COCOeval, OpenPose's schema, a CSV round trip);
//! refusals, id lookup, and runs that fail or are stopped by Ctrl-C.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::stderr;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use posescope::eval::{coco, datasets};
use posescope::pose::skeleton::OPENPOSE_COCO18;

const COCO_IDS: [u64; 4] = [785, 40083, 196141, 197388];

fn posescope() -> Command {
    Command::new(env!("CARGO_BIN_EXE_posescope"))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn read_json(p: &Path) -> Value {
    let bytes = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// `infer` with the default model at 256x224 (fast), no maps, writing all three formats
/// into `dir` (`results.json`, `openpose/`, `keypoints.csv`).
fn infer_formats(input: &str, dir: &Path, extra: &[&str]) -> Output {
    posescope()
        .args(["infer", "--size", "256x224", "--no-maps", "--input", input])
        .args(["--out", s(&dir.join("out"))])
        .args(["--write-coco", s(&dir.join("results.json"))])
        .args(["--write-openpose", s(&dir.join("openpose"))])
        .args(["--write-csv", s(&dir.join("keypoints.csv"))])
        .args(extra)
        .output()
        .unwrap()
}

/// One parsed CSV row.
#[derive(Debug, PartialEq)]
struct Row {
    frame: u64,
    time: f64,
    person: usize,
    joint: usize,
    xys: Option<[f64; 3]>,
}

/// Parses a `--write-csv` file: the header, then every row (panics on any bad row).
fn read_csv(p: &Path) -> Vec<Row> {
    let text = std::fs::read_to_string(p).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("frame,time,person,joint,x,y,score"));
    lines
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!(f.len(), 7, "{line}");
            let num = |v: &str| v.parse::<f64>().unwrap_or_else(|e| panic!("{line}: {e}"));
            Row {
                frame: f[0].parse().unwrap(),
                time: num(f[1]),
                person: f[2].parse().unwrap(),
                joint: OPENPOSE_COCO18
                    .index_of(f[3])
                    .unwrap_or_else(|| panic!("{line}")),
                xys: match (f[4], f[5], f[6]) {
                    ("", "", "") => None,
                    (x, y, c) => Some([num(x), num(y), num(c)]),
                },
            }
        })
        .collect()
}

/// Checks one OpenPose file against OpenPose's format; returns its people's keypoints.
fn read_openpose(p: &Path) -> Vec<Vec<f64>> {
    let doc = read_json(p);
    let top: BTreeSet<&str> = doc
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        top,
        BTreeSet::from(["version", "people"]),
        "{}",
        p.display()
    );
    assert_eq!(doc["version"].as_f64(), Some(1.3));
    let lists = [
        "pose_keypoints_2d",
        "face_keypoints_2d",
        "hand_left_keypoints_2d",
        "hand_right_keypoints_2d",
        "pose_keypoints_3d",
        "face_keypoints_3d",
        "hand_left_keypoints_3d",
        "hand_right_keypoints_3d",
    ];
    let people = doc["people"].as_array().unwrap();
    people
        .iter()
        .map(|person| {
            let keys: BTreeSet<&str> = person
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            let mut want: BTreeSet<&str> = lists.into();
            want.insert("person_id");
            assert_eq!(keys, want);
            assert_eq!(person["person_id"], serde_json::json!([-1]));
            for l in &lists[1..] {
                assert_eq!(person[*l], serde_json::json!([]), "{l}");
            }
            let kps: Vec<f64> = person["pose_keypoints_2d"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            assert_eq!(kps.len(), 3 * 18);
            kps
        })
        .collect()
}

/// The per-frame `.json` people as flat `[x, y, score]` triples, `0, 0, 0` where null.
fn frame_people(doc: &Value) -> Vec<Vec<f64>> {
    doc["people"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            p["keypoints"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|k| match k.as_array() {
                    Some(k) => k.iter().map(|v| v.as_f64().unwrap()).collect(),
                    None => vec![0.0; 3],
                })
                .collect()
        })
        .collect()
}

fn coco_dir() -> Option<PathBuf> {
    Some(common::shared_dir()?.join("data/mmpose_testdata/coco"))
}

#[test]
fn infer_writes_coco_openpose_and_csv_that_read_back() {
    let Some(data) = coco_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    let o = infer_formats(s(&data), dir.path(), &[]);
    assert!(o.status.success(), "{}", stderr(&o));

    // Per frame: the OpenPose file holds the people of the frame's own JSON.
    let mut people_per_frame = Vec::new();
    for i in 0..4 {
        let stem = format!("coco_{i:06}");
        let doc = read_json(&dir.path().join(format!("out/{stem}.json")));
        let want = frame_people(&doc);
        let got = read_openpose(&dir.path().join(format!("openpose/{stem}_keypoints.json")));
        assert_eq!(got, want, "{stem}");
        people_per_frame.push((doc, want));
    }
    let total: usize = people_per_frame.iter().map(|(_, p)| p.len()).sum();
    assert!(
        total >= 4,
        "the four COCO images hold 12 annotated people; found {total}"
    );

    // CSV: every row parses; frames × people × joints rows, the same numbers.
    let rows = read_csv(&dir.path().join("keypoints.csv"));
    assert_eq!(rows.len(), total * 18);
    let mut k = 0;
    for (frame, (doc, people)) in people_per_frame.iter().enumerate() {
        for (p, kps) in people.iter().enumerate() {
            for j in 0..18 {
                let r = &rows[k];
                k += 1;
                assert_eq!((r.frame, r.person, r.joint), (frame as u64, p, j));
                assert_eq!(r.time, doc["frame"]["timestamp_s"].as_f64().unwrap());
                let want = &kps[3 * j..3 * j + 3];
                let got = r.xys.unwrap_or([0.0; 3]);
                assert_eq!(got, want, "{r:?}");
            }
        }
    }

    // COCO: one result per person with ids from the file names, read and scored as
    // pycocotools' loadRes + COCOeval would.
    let results = read_json(&dir.path().join("results.json"));
    let list = results.as_array().unwrap();
    assert_eq!(list.len(), total);
    for (r, id) in list.iter().zip(
        people_per_frame
            .iter()
            .enumerate()
            .flat_map(|(i, (_, p))| std::iter::repeat_n(COCO_IDS[i], p.len())),
    ) {
        assert_eq!(r["image_id"].as_u64(), Some(id));
        assert_eq!(r["category_id"].as_u64(), Some(1));
        assert_eq!(r["keypoints"].as_array().unwrap().len(), 51);
        assert!(r["score"].as_f64().is_some());
    }
    let gt = datasets::read(&data.join("test_coco.json")).unwrap();
    let dets = datasets::read_coco_results(&dir.path().join("results.json")).unwrap();
    let stats = coco::evaluate(&gt.coco_images(dets).unwrap(), &coco::coco_sigmas());
    println!("COCO AP of the written results at 256x224: {stats:?}");
    assert!(stats.ap50 > 0.2, "{stats:?}");
}

#[test]
fn coco_ids_come_from_annotations_by_file_name() {
    let Some(data) = coco_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    // A name without a number: refused unless --annotations gives its id.
    let img = dir.path().join("renamed.jpg");
    std::fs::copy(data.join("000000000785.jpg"), &img).unwrap();
    let o = infer_formats(s(&img), dir.path(), &[]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("renamed.jpg") && err.contains("--annotations"),
        "{err}"
    );

    let ann = dir.path().join("ann.json");
    let categories = read_json(&data.join("test_coco.json"))["categories"].clone();
    let doc = serde_json::json!({
        "images": [{"id": 9, "file_name": "val/other.jpg"}, {"id": 7, "file_name": "val/renamed.jpg"}],
        "annotations": [],
        "categories": categories,
    });
    std::fs::write(&ann, serde_json::to_vec(&doc).unwrap()).unwrap();
    let o = infer_formats(
        s(&img),
        dir.path(),
        &["--overwrite", "--annotations", s(&ann)],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let results = read_json(&dir.path().join("results.json"));
    let list = results.as_array().unwrap();
    assert!(!list.is_empty());
    assert!(list.iter().all(|r| r["image_id"] == 7), "{results}");
    assert!(list.iter().all(|r| r["file_name"] == "renamed.jpg"));
}

#[test]
fn write_coco_refuses_a_model_without_the_coco_joints() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let img = shared.join("data/mmpose_testdata/coco/000000000785.jpg");
    let o = posescope()
        .env("POSESCOPE_MODELS", shared.join("models"))
        .args(["infer", "--model", "pefm-cpm", "--input", s(&img)])
        .args(["--out", s(&dir.path().join("out"))])
        .args(["--write-coco", s(&dir.path().join("results.json"))])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("'head-neck-14' has no nose, left_eye, right_eye, left_ear, right_ear"),
        "{err}"
    );
    // Refused before any frame: nothing written.
    assert!(!dir.path().join("results.json").exists());
    assert!(std::fs::read_dir(dir.path().join("out")).map_or(true, |mut d| d.next().is_none()));
    // The other formats take any joint set.
    let o = posescope()
        .env("POSESCOPE_MODELS", shared.join("models"))
        .args([
            "infer",
            "--model",
            "pefm-cpm",
            "--no-maps",
            "--input",
            s(&img),
        ])
        .args(["--out", s(&dir.path().join("out"))])
        .args(["--write-csv", s(&dir.path().join("k.csv"))])
        .args(["--write-openpose", s(dir.path())])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(dir.path().join("k.csv")).unwrap();
    assert_eq!(text.lines().count(), 1 + 14);
    assert!(text.contains(",0,head_top,"), "{text}");
    let doc = read_json(&dir.path().join("000000000785_keypoints.json"));
    assert_eq!(
        doc["people"][0]["pose_keypoints_2d"]
            .as_array()
            .unwrap()
            .len(),
        3 * 14
    );
}

#[test]
fn a_failing_run_still_writes_the_frames_it_completed() {
    let Some(data) = coco_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("frames");
    std::fs::create_dir(&input).unwrap();
    std::fs::write(input.join("000000000001.jpg"), b"not a jpeg").unwrap();
    for name in ["000000000785.jpg", "000000040083.jpg"] {
        std::fs::copy(data.join(name), input.join(name)).unwrap();
    }
    let o = infer_formats(s(&input), dir.path(), &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("000000000001.jpg"), "{}", stderr(&o));
    let rows = read_csv(&dir.path().join("keypoints.csv"));
    let frames: BTreeSet<u64> = rows.iter().map(|r| r.frame).collect();
    assert!(frames.is_subset(&BTreeSet::from([1, 2])), "{frames:?}");
    let results = read_json(&dir.path().join("results.json"));
    let ids: BTreeSet<u64> = results
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["image_id"].as_u64().unwrap())
        .collect();
    assert!(ids.is_subset(&BTreeSet::from([785, 40083])), "{ids:?}");
    let mut op: Vec<String> = std::fs::read_dir(dir.path().join("openpose"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    op.sort();
    assert_eq!(
        op,
        [
            "frames_000001_keypoints.json",
            "frames_000002_keypoints.json"
        ]
    );
    // Without --overwrite, a second run refuses to replace the run-wide files up front.
    let o = infer_formats(s(&input), dir.path(), &[]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("results.json' already exists"),
        "{}",
        stderr(&o)
    );
}

/// Ctrl-C ends a camera recording normally; the run-wide files hold every frame completed.
#[cfg(unix)]
#[test]
fn ctrl_c_writes_the_run_wide_files() {
    let dir = tempfile::tempdir().unwrap();
    let Some(clip) = common::street_clip(dir.path()) else {
        return;
    };
    let ops = dir.path().join("openpose");
    let child = posescope()
        .args(["infer", "--size", "128x96", "--no-maps"])
        .arg("--input")
        .arg(format!("sim-camera:{}", clip.display()))
        .args(["--out", s(&dir.path().join("out"))])
        .args(["--write-coco", s(&dir.path().join("results.json"))])
        .args(["--write-openpose", s(&ops)])
        .args(["--write-csv", s(&dir.path().join("keypoints.csv"))])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let count = |d: &Path| std::fs::read_dir(d).map_or(0, |r| r.count());
    let o = common::interrupt_when(child, || count(&ops) >= 2);
    assert!(o.status.success(), "{}", stderr(&o));
    let frames = count(&ops);
    let rows = read_csv(&dir.path().join("keypoints.csv"));
    let by_frame: BTreeMap<u64, usize> = rows.iter().fold(BTreeMap::new(), |mut m, r| {
        *m.entry(r.frame).or_default() += 1;
        m
    });
    assert!(by_frame.len() <= frames, "{by_frame:?}");
    let results = read_json(&dir.path().join("results.json"));
    let people: usize = by_frame.values().sum::<usize>() / 18;
    assert_eq!(results.as_array().unwrap().len(), people);
    // Camera frames: the image id is the frame index.
    for r in results.as_array().unwrap() {
        assert!(
            by_frame.contains_key(&r["image_id"].as_u64().unwrap()),
            "{r}"
        );
    }
}
