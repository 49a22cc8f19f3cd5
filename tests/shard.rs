//! `infer --shard K/N` / `--resume` and `merge-coco` end to end (docs/cluster.md): parts run
//! as separate processes and merged equal one run; a part killed mid-way and rerun with
//! `--resume` completes with nothing duplicated; the video paths (one video by frame range,
//! a folder of videos by video).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Six real photos (four multi-person COCO images, two others), in this order by name.
const IMAGES: [&str; 6] = [
    "COCO_val2014_000000000192.jpg",
    "COCO_val2014_000000000241.jpg",
    "COCO_val2014_000000000257.jpg",
    "COCO_val2014_000000000294.jpg",
    "COCO_val2014_000000000328.jpg",
    "messi5.jpg",
];

const SHARD_VARS: [&str; 4] = [
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_COUNT",
    "SLURM_ARRAY_TASK_MIN",
    "JOB_COMPLETION_INDEX",
];

fn posescope() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_posescope"));
    // The tests set these themselves; a test run inside a Slurm job must not see its own.
    for v in SHARD_VARS {
        c.env_remove(v);
    }
    // The tests read the info lines.
    c.env_remove("RUST_LOG");
    c
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn check(o: &Output, what: &str) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{what} failed: {err}");
    err
}

/// `infer` with the default model at 256x224 (fast), no maps, all three formats, files
/// named with `tag` in `dir` (`coco<tag>.json`, `keypoints<tag>.csv`), frames in `out`.
fn infer(input: &Path, out: &Path, dir: &Path, tag: &str) -> Command {
    let mut c = posescope();
    c.args([
        "infer",
        "--size",
        "256x224",
        "--no-maps",
        "--input",
        s(input),
    ])
    .args(["--out", s(out)])
    .args(["--write-coco", s(&dir.join(format!("coco{tag}.json")))])
    .args(["--write-csv", s(&dir.join(format!("keypoints{tag}.csv")))])
    .args(["--write-openpose", s(&out.join("openpose"))]);
    c
}

/// The files of a folder, recursively, as relative paths, without temporary files
/// (`.posescope-*.part`) and the --resume shares.
fn listing(dir: &Path) -> BTreeSet<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with(".posescope-") {
                continue;
            }
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(p.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(dir, dir, &mut out);
    out
}

/// The folder of six images, and one run over it (the reference), made once for all tests.
struct Single {
    images: PathBuf,
    out: PathBuf,
    dir: PathBuf,
}

fn single() -> Option<&'static Single> {
    static SINGLE: OnceLock<Option<Single>> = OnceLock::new();
    SINGLE
        .get_or_init(|| {
            let shared = common::shared_dir()?;
            let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("shard-single");
            let _ = std::fs::remove_dir_all(&root);
            let images = root.join("people");
            std::fs::create_dir_all(&images).unwrap();
            for name in IMAGES {
                std::fs::copy(shared.join("data/images").join(name), images.join(name)).unwrap();
            }
            let out = root.join("out");
            let o = infer(&images, &out, &root, "").output().unwrap();
            check(&o, "the single run");
            Some(Single {
                images,
                out,
                dir: root,
            })
        })
        .as_ref()
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn three_parts_as_separate_processes_merge_into_the_single_run() {
    let Some(one) = single() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    // Part 0 by K/N, part 1 from a Slurm array (ids 2..4), part 2 from a Kubernetes
    // Indexed Job; all three at once, into one output folder.
    let mut p0 = infer(&one.images, &out, tmp.path(), "-0");
    p0.args(["--shard", "0/3"]);
    let mut p1 = infer(&one.images, &out, tmp.path(), "-1");
    p1.args(["--shard", "auto"])
        .env("SLURM_ARRAY_TASK_ID", "3")
        .env("SLURM_ARRAY_TASK_MIN", "2")
        .env("SLURM_ARRAY_TASK_COUNT", "3");
    let mut p2 = infer(&one.images, &out, tmp.path(), "-2");
    p2.args(["--shard", "auto/3"])
        .env("JOB_COMPLETION_INDEX", "2");
    let children: Vec<_> = [p0, p1, p2]
        .iter_mut()
        .map(|c| c.stderr(Stdio::piped()).spawn().unwrap())
        .collect();
    for (k, child) in children.into_iter().enumerate() {
        let o = child.wait_with_output().unwrap();
        let err = check(&o, &format!("part {k}"));
        assert!(err.contains(&format!("part {k}/3")), "{err}");
        // Two images per part.
        let coco: serde_json::Value =
            serde_json::from_slice(&read(&tmp.path().join(format!("coco-{k}.json")))).unwrap();
        let names: BTreeSet<&str> = coco
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["file_name"].as_str().unwrap())
            .collect();
        assert!(
            names.iter().all(|n| IMAGES[2 * k..2 * k + 2].contains(n)),
            "part {k}: {names:?}"
        );
    }
    // The inputs in any order: merge-coco orders them by name.
    let merged = tmp.path().join("coco.json");
    let o = posescope()
        .args(["merge-coco", s(&merged)])
        .args(["2", "0", "1"].map(|k| tmp.path().join(format!("coco-{k}.json"))))
        .output()
        .unwrap();
    check(&o, "merge-coco");
    let want = read(&one.dir.join("coco.json"));
    assert!(want.len() > 100, "the single run found people");
    assert_eq!(
        String::from_utf8(read(&merged)).unwrap(),
        String::from_utf8(want).unwrap(),
        "merged parts differ from the single run (byte for byte)"
    );
    // The per-frame files are the single run's (one folder for all parts).
    assert_eq!(listing(&out), listing(&one.out));
    for f in listing(&one.out)
        .iter()
        .filter(|f| f.starts_with("openpose"))
    {
        assert_eq!(
            read(&out.join(f)),
            read(&one.out.join(f)),
            "{}",
            f.display()
        );
    }
    // The CSV parts, concatenated without their headers, are the single run's file.
    let mut csv = String::new();
    for k in 0..3 {
        let text = String::from_utf8(read(&tmp.path().join(format!("keypoints-{k}.csv")))).unwrap();
        let (header, rows) = text.split_once('\n').unwrap();
        if k == 0 {
            csv.push_str(header);
            csv.push('\n');
        }
        csv.push_str(rows);
    }
    assert_eq!(
        csv,
        String::from_utf8(read(&one.dir.join("keypoints.csv"))).unwrap()
    );
    // Merging a part twice is refused.
    let o = posescope()
        .args(["merge-coco", s(&tmp.path().join("twice.json"))])
        .args(["0", "0"].map(|k| tmp.path().join(format!("coco-{k}.json"))))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("overlap"), "{err}");
    assert!(!tmp.path().join("twice.json").exists());
}

#[test]
fn a_part_killed_mid_way_and_resumed_completes_with_nothing_duplicated() {
    let Some(one) = single() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    // The last file the first frame writes (after its PNG, JSON and OpenPose file).
    let first_frame = out.join(".posescope-resume/people_000000.csv");
    let mut child = infer(&one.images, &out, tmp.path(), "")
        .arg("--resume")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    while !first_frame.exists() {
        assert!(Instant::now() < deadline, "no frame written");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL: no handler runs, nothing is finished.
    child.wait().unwrap();
    // Killed before the end: no run-wide files, and not every frame.
    assert!(!tmp.path().join("coco.json").exists());
    assert!(!tmp.path().join("keypoints.csv").exists());
    let jsons = |dir: &Path| {
        listing(dir)
            .iter()
            .filter(|p| {
                p.extension().is_some_and(|e| e == "json") && p.parent() == Some(Path::new(""))
            })
            .count()
    };
    let before = jsons(&out);
    assert!(
        (1..6).contains(&before),
        "{before} frames written before the kill"
    );

    let o = infer(&one.images, &out, tmp.path(), "")
        .arg("--resume")
        .output()
        .unwrap();
    let err = check(&o, "the resumed run");
    // The frames finished before the kill were skipped (one whose files the kill cut
    // between two of them counts as not finished and is run again).
    let skipped: u64 = err
        .split(" frames were already written")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{err}"));
    assert!(skipped >= 1 && skipped as usize <= before, "{err}");
    assert!(
        err.contains(&format!("{} frames written to", 6 - skipped)),
        "{err}"
    );
    // Exactly the uninterrupted run's outputs, each frame once.
    for name in ["coco.json", "keypoints.csv"] {
        assert_eq!(
            String::from_utf8(read(&tmp.path().join(name))).unwrap(),
            String::from_utf8(read(&one.dir.join(name))).unwrap(),
            "{name}"
        );
    }
    assert_eq!(listing(&out), listing(&one.out));
    for f in listing(&one.out)
        .iter()
        .filter(|f| f.starts_with("openpose"))
    {
        assert_eq!(
            read(&out.join(f)),
            read(&one.out.join(f)),
            "{}",
            f.display()
        );
    }
    // A rerun of the finished part skips everything and writes the same files again.
    let o = infer(&one.images, &out, tmp.path(), "")
        .arg("--resume")
        .output()
        .unwrap();
    let err = check(&o, "the second resumed run");
    assert!(err.contains("6 frames were already written"), "{err}");
    assert_eq!(
        read(&tmp.path().join("coco.json")),
        read(&one.dir.join("coco.json"))
    );
}

#[test]
fn one_video_by_frame_range_and_a_folder_of_videos_by_video() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let video = shared.join("data/videos/mmpose_demo.mp4"); // 5 frames
                                                            // One run over frames 1..5, then the same range in two parts.
    let o = infer(&video, &tmp.path().join("one"), tmp.path(), "")
        .args(["--frames", "1..5"])
        .output()
        .unwrap();
    check(&o, "frames 1..5");
    let frames: BTreeSet<PathBuf> = listing(&tmp.path().join("one"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    let want: BTreeSet<PathBuf> = (1..5)
        .map(|i| PathBuf::from(format!("mmpose_demo_{i:06}.png")))
        .collect();
    assert_eq!(frames, want);
    for k in 0..2 {
        let o = infer(
            &video,
            &tmp.path().join("parts"),
            tmp.path(),
            &format!("-{k}"),
        )
        .args(["--frames", "1..5", "--shard", &format!("{k}/2")])
        .output()
        .unwrap();
        let err = check(&o, "a part of frames 1..5");
        let range = if k == 0 { "1..3" } else { "3..5" };
        assert!(err.contains(&format!("frames {range}")), "{err}");
    }
    let merged = tmp.path().join("coco-merged.json");
    let o = posescope()
        .args(["merge-coco", s(&merged)])
        .args(["0", "1"].map(|k| tmp.path().join(format!("coco-{k}.json"))))
        .output()
        .unwrap();
    check(&o, "merge-coco");
    assert_eq!(read(&merged), read(&tmp.path().join("coco.json")));
    assert_eq!(
        listing(&tmp.path().join("parts")),
        listing(&tmp.path().join("one"))
    );

    // A folder of two videos, in two parts: one video each.
    let videos = tmp.path().join("videos");
    std::fs::create_dir(&videos).unwrap();
    for name in ["b.mp4", "a.mp4"] {
        std::fs::copy(&video, videos.join(name)).unwrap();
    }
    for k in 0..2 {
        let out = tmp.path().join(format!("videos-{k}"));
        let o = infer(&videos, &out, tmp.path(), &format!("-v{k}"))
            .args(["--frames", "0..2", "--shard", &format!("{k}/2")])
            .output()
            .unwrap();
        check(&o, "a part of the folder of videos");
        let pngs: Vec<PathBuf> = listing(&out)
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "png"))
            .collect();
        let stem = ["a", "b"][k];
        assert_eq!(
            pngs,
            [0, 1].map(|i| PathBuf::from(format!("{stem}_{i:06}.png"))),
            "part {k}"
        );
    }
}

#[test]
fn bad_shard_values_and_missing_variables_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("x.png");
    std::fs::write(&img, posescope::SAMPLE_IMAGE).unwrap();
    let run = |shard: &str, env: &[(&str, &str)]| {
        let mut c = posescope();
        c.args([
            "infer",
            "--input",
            s(&img),
            "--out",
            s(&tmp.path().join("o")),
        ])
        .args(["--shard", shard]);
        for (k, v) in env {
            c.env(k, v);
        }
        let o = c.output().unwrap();
        assert!(!o.status.success(), "--shard {shard} was accepted");
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    assert!(run("3/3", &[]).contains("0 to 2"));
    assert!(run("1-3", &[]).contains("K/N"));
    assert!(run("auto", &[]).contains("SLURM_ARRAY_TASK_ID"));
    assert!(run("auto", &[("JOB_COMPLETION_INDEX", "1")]).contains("auto/N"));
    assert!(run("auto", &[("SLURM_ARRAY_TASK_ID", "1")]).contains("SLURM_ARRAY_TASK_COUNT"));
    // Nothing was written.
    assert!(!tmp.path().join("o").exists());
}
