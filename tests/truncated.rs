//! `posescope infer` on inputs that end early: truncated JPEG and PNG files (alone and in a
//! folder among good ones) and a video cut mid-stream. The broken files are made at test time
//! by cutting real ones from the shared data.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{files_in, stderr};

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The exit status of a run with some frames written and some failed.
const FRAMES_FAILED: i32 = 3;

fn infer(input: &Path, out: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_posescope"))
        .args(["infer", "--size", "160x120", "--no-maps", "--input"])
        .arg(input)
        .arg("--out")
        .arg(out)
        .output()
        .expect("run posescope")
}

/// The first `len` bytes of `from`, written to `to`.
fn cut(from: &Path, to: &Path, len: impl FnOnce(usize) -> usize) -> PathBuf {
    let bytes = std::fs::read(from).unwrap();
    std::fs::write(to, &bytes[..len(bytes.len())]).unwrap();
    to.to_path_buf()
}

const JPEG_CUT: &str = "the data ends inside the image data, before the JPEG end-of-image marker";

#[test]
fn a_truncated_jpeg_alone_is_an_error_naming_it_with_no_output() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let messi = shared.join("data/images/messi5.jpg");
    // Cut in the scan data, and only the end-of-image marker missing.
    let n = std::fs::read(&messi).unwrap().len();
    for (name, len) in [("cut.jpg", n * 2 / 3), ("noeoi.jpg", n - 2)] {
        let input = cut(&messi, &dir.path().join(name), |_| len);
        let out = dir.path().join(format!("out-{name}"));
        let o = infer(&input, &out);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{name}: {e}");
        assert!(
            e.contains(&format!(
                "error: image '{}' is truncated: {JPEG_CUT}",
                input.display()
            )),
            "{name}: {e}"
        );
        assert_eq!(files_in(&out), Vec::<String>::new(), "{name}");
    }
}

#[test]
fn a_truncated_png_alone_is_an_error_naming_it_with_no_output() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let astronaut = shared.join("data/images/astronaut.png");
    let half = cut(&astronaut, &dir.path().join("half.png"), |n| n / 2);
    let noiend = cut(&astronaut, &dir.path().join("noiend.png"), |n| n - 12);
    for (input, reason) in [
        (
            &half,
            "the file ends inside the IDAT chunk, before the PNG IEND chunk",
        ),
        (&noiend, "before the PNG IEND chunk"),
    ] {
        let out = dir.path().join("out");
        let o = infer(input, &out);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{e}");
        let head = format!("error: image '{}' is truncated: ", input.display());
        let line = e
            .lines()
            .find(|l| l.starts_with(&head))
            .unwrap_or_else(|| panic!("{e}"));
        assert!(line.ends_with(reason), "{line}");
        assert_eq!(files_in(&out), Vec::<String>::new());
    }
}

#[test]
fn a_truncated_image_in_a_folder_is_skipped_counted_and_exits_3() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("shots");
    std::fs::create_dir(&folder).unwrap();
    let images = shared.join("data/images");
    std::fs::copy(images.join("messi5.jpg"), folder.join("a1.jpg")).unwrap();
    let bad = cut(&images.join("messi5.jpg"), &folder.join("a2.jpg"), |n| {
        n / 2
    });
    std::fs::copy(images.join("basketball1.png"), folder.join("a3.png")).unwrap();
    let out = tmp.path().join("out");
    let o = infer(&folder, &out);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(FRAMES_FAILED), "{e}");
    let skipped = format!(
        "skipped: image '{}' is truncated: {JPEG_CUT}",
        bad.display()
    );
    let warn = e
        .lines()
        .find(|l| l.contains(&skipped))
        .unwrap_or_else(|| panic!("{e}"));
    assert!(warn.contains("WARN"), "{warn}");
    assert!(
        e.contains(&format!(
            "3 frames, 1 failed: 2 written to '{}'",
            out.display()
        )),
        "{e}"
    );
    assert!(
        e.contains(&format!(
            "error: 1 of 3 frames failed; first: image '{}' is truncated",
            bad.display()
        )),
        "{e}"
    );
    // Outputs for the good frames only (frame 1 is the bad file).
    assert_eq!(
        files_in(&out),
        [
            "shots_000000.json",
            "shots_000000.png",
            "shots_000002.json",
            "shots_000002.png"
        ]
    );

    // Every image bad: nothing written, a plain failure.
    let all_bad = tmp.path().join("all_bad");
    std::fs::create_dir(&all_bad).unwrap();
    cut(&images.join("messi5.jpg"), &all_bad.join("b1.jpg"), |n| {
        n - 2
    });
    cut(
        &images.join("astronaut.png"),
        &all_bad.join("b2.png"),
        |n| n / 3,
    );
    let out = tmp.path().join("out-all-bad");
    let o = infer(&all_bad, &out);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains("2 frames, 2 failed: 0 written"), "{e}");
    assert!(
        e.contains("error: 2 of 2 frames failed; first: image '"),
        "{e}"
    );
    assert!(files_in(&out).is_empty(), "{:?}", files_in(&out));
}

fn have_ffmpeg() -> bool {
    let ok = Command::new("ffmpeg")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok || std::env::var_os("CI").is_none(),
        "ffmpeg is required in CI"
    );
    ok
}

#[test]
fn a_video_cut_mid_stream_writes_its_whole_frames_and_exits_3() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    if !have_ffmpeg() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let demo = shared.join("data/videos/mmpose_demo.mp4");

    // The demo keeps its index (moov) at the end: cut, it cannot even be opened.
    let headless = cut(&demo, &tmp.path().join("headless.mp4"), |n| n * 6 / 10);
    let o = infer(&headless, &tmp.path().join("out-headless"));
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(
        e.contains(&format!(
            "error: cannot open video '{}'",
            headless.display()
        )),
        "{e}"
    );

    // Index first (as cameras and streaming encoders write it), then cut inside the third
    // of its five frames: the first frames decode, then the stream breaks off.
    let fast = tmp.path().join("fast.mp4");
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-y", "-i"])
        .arg(&demo)
        .args(["-c", "copy", "-movflags", "+faststart"])
        .arg(&fast)
        .status()
        .unwrap();
    assert!(status.success());
    let video = cut(&fast, &tmp.path().join("cut.mp4"), |n| n * 65 / 100);
    let out = tmp.path().join("out");
    let o = infer(&video, &out);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(FRAMES_FAILED), "{e}");
    let broke = format!(
        "video '{}' is truncated or corrupt: ffprobe reported 5 frames, decoded ",
        video.display()
    );
    let line = e
        .lines()
        .find(|l| l.contains(&broke))
        .unwrap_or_else(|| panic!("{e}"));
    let decoded: u64 = line[line.find(&broke).unwrap() + broke.len()..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // The two whole frames, and at most the cut one concealed by ffmpeg.
    assert!((2..=3).contains(&decoded), "{line}");
    assert!(
        e.contains(&format!(
            "5 frames, {} failed: {decoded} written to '{}'",
            5 - decoded,
            out.display()
        )),
        "{e}"
    );
    assert!(
        e.contains(&format!(
            "error: {} of 5 frames failed; first: {broke}{decoded}",
            5 - decoded
        )),
        "{e}"
    );
    let want: Vec<String> = (0..decoded)
        .flat_map(|i| [format!("cut_{i:06}.json"), format!("cut_{i:06}.png")])
        .collect();
    assert_eq!(files_in(&out), want);
}
