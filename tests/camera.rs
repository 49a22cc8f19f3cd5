//! Cameras without a camera: the simulated camera (a real video delivered in real time, that
//! can be unplugged, replugged and made busy) drives the camera source, the player's
//! reconnection, and `posescope infer --input camera:…` with `--max-frames` and Ctrl-C.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use posescope::models::Model;
use posescope::pipeline::{Pipeline, PipelineConfig, Worker};
use posescope::player::{Player, PlayerEvent, PlayerInput};
use posescope::source::{CameraId, CameraSource, FrameSource, SimCamera, SourceError};

/// A 25 fps, 320×180, 2 s clip cut from the shared street video (people walking), made
/// once per test in `dir`.
fn clip(dir: &Path) -> Option<PathBuf> {
    common::street_clip(dir)
}

fn sim(dir: &Path) -> Option<SimCamera> {
    Some(SimCamera::new(3, "test camera", &clip(dir)?))
}

#[test]
fn frames_arrive_at_the_cameras_pace() {
    let dir = tempfile::tempdir().unwrap();
    let Some(cam) = sim(dir.path()) else { return };
    let mut src = CameraSource::open(&CameraId::Simulated(cam), None).unwrap();
    assert!(
        src.describe().contains("320x180 @ 25 fps"),
        "{}",
        src.describe()
    );
    let t0 = Instant::now();
    let mut indices = Vec::new();
    for _ in 0..20 {
        indices.push(src.next_frame().unwrap().unwrap().index);
    }
    let elapsed = t0.elapsed().as_secs_f64();
    println!("20 frames in {elapsed:.3} s: {indices:?}");
    // 20 frames at 25 fps take 0.76 s after the first; never faster than the camera.
    assert!(
        elapsed >= 0.72,
        "frames came faster than 25 fps: {elapsed:.3} s"
    );
    assert!(
        elapsed < 2.5,
        "frames came far slower than 25 fps: {elapsed:.3} s"
    );
    assert_eq!(indices[0], 0);
}

#[test]
fn a_slow_reader_gets_the_newest_frame() {
    let dir = tempfile::tempdir().unwrap();
    let Some(cam) = sim(dir.path()) else { return };
    let mut src = CameraSource::open(&CameraId::Simulated(cam.clone()), None).unwrap();
    // The camera's clock starts with its first frame.
    let first = src.next_frame().unwrap().unwrap().index;
    assert_eq!(first, 0);
    let t0 = Instant::now();
    // Each read's frame index and time (seconds from `t0`).
    let mut reads = Vec::new();
    for _ in 0..6 {
        let f = src.next_frame().unwrap().unwrap();
        let at = t0.elapsed().as_secs_f64();
        // The camera delivers at 25 fps; the frame is the one due now, not a backlog.
        let due = (at * 25.0) as i64;
        assert!(
            (f.index as i64 - due).abs() <= 3,
            "frame {} handed out at frame time {due}",
            f.index
        );
        reads.push((f.index as i64, at));
        std::thread::sleep(Duration::from_millis(200));
    }
    println!("(frame, seconds) read every 200 ms or more: {reads:?}");
    for w in reads.windows(2) {
        let ((i0, ta), (i1, tb)) = (w[0], w[1]);
        assert!(i1 > i0, "an older frame after a newer one: {reads:?}");
        // The reader slept at least 200 ms (5 frame times; longer when the machine is
        // busy), and every frame that came meanwhile is skipped: the gap is the time
        // between the reads in frames, not one frame of a backlog.
        let expected = (tb - ta) * 25.0;
        assert!(
            i1 - i0 >= 3 && ((i1 - i0) as f64 - expected).abs() <= 3.5,
            "expected a gap of {expected:.1} frames between reads: {reads:?}"
        );
    }
    assert_eq!(cam.delivered(), 7);
}

#[test]
fn the_clip_loops_like_an_endless_camera() {
    let dir = tempfile::tempdir().unwrap();
    let Some(cam) = sim(dir.path()) else { return };
    let mut src = CameraSource::open(&CameraId::Simulated(cam), None).unwrap();
    let mut last = None;
    let t0 = Instant::now();
    // 2 s of clip; read 2.6 s worth.
    while t0.elapsed() < Duration::from_millis(2600) {
        let f = src.next_frame().unwrap().unwrap();
        if let Some(prev) = last {
            assert!(f.index > prev, "{} after {prev}", f.index);
        }
        last = Some(f.index);
    }
    assert!(
        last.unwrap() >= 55,
        "the clip did not go on past its end: {last:?}"
    );
}

#[test]
fn unplug_ends_the_stream_and_replug_opens_again() {
    let dir = tempfile::tempdir().unwrap();
    let Some(cam) = sim(dir.path()) else { return };
    let id = CameraId::Simulated(cam.clone());
    let mut src = CameraSource::open(&id, None).unwrap();
    src.next_frame().unwrap().unwrap();
    cam.unplug();
    let err = src.next_frame().unwrap().unwrap_err();
    assert!(
        matches!(err, SourceError::CameraLost { index: 3, .. }),
        "{err}"
    );
    assert!(err.is_fatal());
    assert!(err.to_string().contains("camera 3 lost"), "{err}");
    assert!(
        src.next_frame().is_none(),
        "the stream goes on after a loss"
    );
    let err = CameraSource::open(&id, None).unwrap_err();
    assert!(err.to_string().contains("unplugged"), "{err}");
    cam.replug();
    let mut src = CameraSource::open(&id, None).unwrap();
    assert!(src.next_frame().unwrap().is_ok());
}

#[test]
fn a_busy_camera_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let Some(cam) = sim(dir.path()) else { return };
    cam.set_busy(true);
    let err = CameraSource::open(&CameraId::Simulated(cam), None).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, SourceError::CameraBusy { .. }), "{msg}");
    assert!(
        msg.contains("busy") && msg.contains("another program") && msg.contains("test camera"),
        "{msg}"
    );
}

/// The player shows a lost camera, keeps looking for it, and plays on when it is back.
#[test]
fn the_player_reconnects_when_the_camera_returns() {
    let dir = tempfile::tempdir().unwrap();
    let Some(cam) = sim(dir.path()) else { return };
    let model = Model::load("openpose-mobilenet-thin", &candle_core::Device::Cpu).unwrap();
    let mut config = PipelineConfig::for_model(&model);
    config.preprocess.size = (128, 96);
    let worker = Worker::spawn(Pipeline::new(model, config));
    let player = Player::spawn(
        PlayerInput::Camera {
            id: CameraId::Simulated(cam.clone()),
            mode: None,
        },
        worker.submitter(),
        || {},
    );
    let mut events = Vec::new();
    let mut wait_for = |what: &str, pred: &dyn Fn(&PlayerEvent) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            for ev in player.poll() {
                let hit = pred(&ev);
                events.push(ev);
                if hit {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "no {what}; events: {events:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    wait_for("opened", &|e| matches!(e, PlayerEvent::Opened { .. }));
    wait_for("playing", &|e| *e == PlayerEvent::Playing(true));
    wait_for(
        "frame 5",
        &|e| matches!(e, PlayerEvent::Position(i) if *i >= 5),
    );
    cam.unplug();
    wait_for("disconnect", &|e| matches!(e, PlayerEvent::Disconnected(_)));
    std::thread::sleep(Duration::from_millis(1200));
    let during: Vec<PlayerEvent> = player.poll();
    assert!(
        !during.iter().any(|e| matches!(e, PlayerEvent::Position(_))),
        "frames while unplugged: {during:?}"
    );
    cam.replug();
    wait_for("reopened", &|e| matches!(e, PlayerEvent::Opened { .. }));
    wait_for("frames again", &|e| matches!(e, PlayerEvent::Position(_)));
    assert!(
        !events.iter().any(|e| matches!(e, PlayerEvent::Error(_))),
        "{events:?}"
    );
    // The worker ran the newest frames, dropping what came while it was busy.
    let results: Vec<_> = worker.results().try_iter().collect();
    assert!(!results.is_empty());
    let mut last = None;
    for r in results {
        let ins = r.unwrap();
        if let Some(prev) = last {
            assert!(ins.frame.index != prev, "a frame ran twice");
        }
        last = Some(ins.frame.index);
    }
}

fn posescope() -> Command {
    Command::new(env!("CARGO_BIN_EXE_posescope"))
}

fn outputs(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(ext))
        .collect();
    v.sort();
    v
}

fn no_temporaries(dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            name.starts_with("camera_"),
            "a file that is not a finished output: {name}"
        );
    }
}

#[test]
fn infer_records_a_camera_for_max_frames() {
    let dir = tempfile::tempdir().unwrap();
    let Some(video) = clip(dir.path()) else {
        return;
    };
    let out = dir.path().join("rec");
    let o = posescope()
        .args([
            "infer",
            "--size",
            "128x96",
            "--no-maps",
            "--max-frames",
            "4",
            "--input",
        ])
        .arg(format!("sim-camera:{}", video.display()))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("recording simulated camera"), "{err}");
    let json = outputs(&out, ".json");
    assert_eq!(json.len(), 4, "{json:?}\n{err}");
    assert_eq!(outputs(&out, ".png").len(), 4);
    for j in &json {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(j).unwrap()).unwrap();
        assert!(v.get("people").is_some(), "{}", j.display());
    }
    no_temporaries(&out);
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_a_recording_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let Some(video) = clip(dir.path()) else {
        return;
    };
    let out = dir.path().join("rec");
    let child = posescope()
        .args(["infer", "--size", "128x96", "--input"])
        .arg(format!("sim-camera:{}", video.display()))
        .arg("--out")
        .arg(&out)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let o = common::interrupt_when(child, || out.is_dir() && outputs(&out, ".json").len() >= 2);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "status {:?}: {err}", o.status);
    assert!(err.contains("stopped by Ctrl-C"), "{err}");
    let json = outputs(&out, ".json");
    assert!(json.len() >= 2);
    assert_eq!(outputs(&out, ".png").len(), json.len());
    assert_eq!(outputs(&out, ".maps.safetensors").len(), json.len());
    for j in &json {
        serde_json::from_slice::<serde_json::Value>(&std::fs::read(j).unwrap())
            .unwrap_or_else(|e| panic!("{} is not complete JSON: {e}", j.display()));
    }
    no_temporaries(&out);
}

/// On a machine without cameras (CI), the listing says so; with cameras, each has a name
/// and its modes.
#[test]
fn cameras_lists_or_says_there_are_none() {
    let o = posescope().arg("cameras").output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let has_nodes = std::fs::read_dir("/dev")
        .map(|d| {
            d.filter_map(Result::ok)
                .any(|e| e.file_name().to_string_lossy().starts_with("video"))
        })
        .unwrap_or(false);
    if !has_nodes {
        assert_eq!(text.trim(), "no cameras found");
    } else {
        println!("{text}");
    }
    let o = posescope()
        .args(["infer", "--input", "camera:7", "--out"])
        .arg(std::env::temp_dir().join("posescope-no-camera"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("camera"), "{err}");
}

/// The V4L2 capture end to end against a fake camera (tests/data/fake_v4l2.c, compiled
/// against the real `<linux/videodev2.h>` and preloaded into posescope): listing with names
/// and modes, the default mode, streaming YUYV through mmap'd buffers, a busy device, and an
/// unplug mid-recording.
#[cfg(all(target_os = "linux", not(feature = "nokhwa")))]
mod fake_v4l2 {
    use super::*;

    /// Builds the shim; returns it and a directory holding the fake `video0`.
    fn shim(dir: &Path) -> (PathBuf, PathBuf) {
        let so = dir.join("fake_v4l2.so");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fake_v4l2.c");
        let o = Command::new("gcc")
            .args(["-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-o"])
            .arg(&so)
            .arg(&src)
            .arg("-ldl")
            .output()
            .expect("gcc runs (it is on every machine this project builds on)");
        assert!(
            o.status.success(),
            "the fake V4L2 camera does not compile: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let devdir = dir.join("dev");
        std::fs::create_dir_all(&devdir).unwrap();
        std::fs::write(devdir.join("video0"), b"").unwrap();
        (so, devdir)
    }

    fn with_fake(so: &Path, devdir: &Path) -> Command {
        let mut c = posescope();
        c.env("LD_PRELOAD", so).env("POSESCOPE_V4L2_DIR", devdir);
        c
    }

    /// Records `input` from the fake camera into `out` at 128x96 with `extra` arguments;
    /// asserts success and that the log names the fake camera in `mode`.
    fn record(so: &Path, devdir: &Path, out: &Path, extra: &[&str], input: &str, mode: &str) {
        let o = with_fake(so, devdir)
            .args(["infer", "--size", "128x96"])
            .args(extra)
            .args(["--input", input, "--out"])
            .arg(out)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{err}");
        assert!(
            err.contains(&format!("camera 0 'Fake Test Camera' {mode}")),
            "{err}"
        );
    }

    #[test]
    fn lists_the_fake_camera_with_its_modes() {
        let dir = tempfile::tempdir().unwrap();
        let (so, devdir) = shim(dir.path());
        let o = with_fake(&so, &devdir).arg("cameras").output().unwrap();
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        println!("{text}");
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        assert!(lines[0].starts_with("0: Fake Test Camera ("), "{text}");
        assert!(
            lines.contains(&"640x480 @ 30 fps (YUYV)  (default)"),
            "{text}"
        );
        for m in [
            "640x480 @ 15 fps (YUYV)",
            "320x240 @ 30 fps (YUYV)",
            "1280x720 @ 15 fps (MJPG)",
            "640x480 @ 15 fps (MJPG)",
        ] {
            assert!(lines.contains(&m), "{m} missing: {text}");
        }
        assert_eq!(lines.len(), 1 + 6 + 1, "{text}");
        assert!(lines[7].contains("camera:N@WxH@FPS"), "{text}");
    }

    #[test]
    fn a_mode_named_in_the_input_is_used_and_a_missing_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let (so, devdir) = shim(dir.path());
        let out = dir.path().join("rec");
        record(
            &so,
            &devdir,
            &out,
            &["--no-maps", "--max-frames", "2"],
            "camera:0@320x240@30",
            "(320x240 @ 30 fps (YUYV))",
        );
        let pngs = outputs(&out, ".png");
        assert_eq!(pngs.len(), 2, "{pngs:?}");
        assert_eq!(
            image::open(&pngs[0]).unwrap().to_rgb8().dimensions(),
            (320, 240)
        );
        let o = with_fake(&so, &devdir)
            .args(["infer", "--input", "camera:0@1920x1080", "--out"])
            .arg(dir.path().join("none"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success());
        assert!(
            err.contains("the camera has no 1920x1080 mode; it offers: 640x480 @ 30 fps (YUYV)"),
            "{err}"
        );
        assert!(
            !dir.path().join("none").exists(),
            "an output folder for a failed open"
        );
    }

    #[test]
    fn records_frames_streamed_through_mmap() {
        let dir = tempfile::tempdir().unwrap();
        let (so, devdir) = shim(dir.path());
        let out = dir.path().join("rec");
        record(
            &so,
            &devdir,
            &out,
            &["--no-heatmap", "--max-frames", "5"],
            "camera:0",
            "(640x480 @ 30 fps (YUYV))",
        );
        let pngs = outputs(&out, ".png");
        assert_eq!(pngs.len(), 5, "{pngs:?}");
        // Each frame is the fake camera's grey for its sequence number: luma 16 + 7k (mod 200)
        // through BT.601 limited range.
        let mut last = None;
        let mut grey = Vec::new();
        for p in &pngs {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let k: u64 = name["camera_".len()..name.len() - 4].parse().unwrap();
            if let Some(prev) = last {
                assert!(k > prev, "{pngs:?}");
            }
            last = Some(k);
            let img = image::open(p).unwrap().to_rgb8();
            assert_eq!(img.dimensions(), (640, 480));
            // The frame's grey is the most common pixel: a skeleton the model may see in a
            // flat frame is drawn over a few pixels only (one fixed pixel could be under it).
            let mut count = [0u32; 256];
            for px in img.pixels() {
                count[usize::from(px.0[0])] += 1;
            }
            let (level, n) = (0..256)
                .map(|v| (v, count[v]))
                .max_by_key(|&(_, n)| n)
                .unwrap();
            let px = img
                .pixels()
                .find(|p| usize::from(p.0[0]) == level)
                .unwrap()
                .0;
            println!("{name}: grey {level} on {n} of {} pixels", 640 * 480);
            assert!(n > 640 * 480 / 2, "no dominant grey: {level} on {n} pixels");
            assert!(px[0] == px[1] && px[1] == px[2], "not grey: {px:?}");
            grey.push((k, level as i32));
        }
        // The PNG's rendering may offset the grey level; the steps between frames are the
        // camera's: luma 16 + 7k through BT.601 limited range.
        let rgb = |k: u64| (((7 * k % 200) as i32 * 298 + 128) >> 8).min(255);
        // Each picture is the camera's grey of frame k + d for one fixed d: the file index
        // counts from the first frame the reader took (sequence − first sequence), the grey
        // encodes the sensor's absolute frame number, and d is that first sequence number.
        // The reader's first take drains the buffers the sensor filled before it and keeps
        // the newest (newest-frame-wins), so d < the buffers it queued (4): seen 1–3, more
        // under load. One d for every picture means no picture is torn or newer than its
        // sequence number. The first frame recorded is within the first 8.
        let (k0, _) = grey[0];
        assert!(k0 < 8, "the recording starts late in the stream: {grey:?}");
        let d = (0..4u64).find(|&d| grey.iter().all(|&(k, g)| (g - rgb(k + d)).abs() <= 2));
        println!("first sequence number taken (the greys' offset): {d:?}");
        assert!(
            d.is_some(),
            "the greys are not the camera's frames in order: {grey:?}"
        );
        no_temporaries(&out);
    }

    #[test]
    fn a_busy_device_and_an_unplug_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let (so, devdir) = shim(dir.path());
        let out = dir.path().join("rec");
        let o = with_fake(&so, &devdir)
            .env("FAKE_V4L2_BUSY", "1")
            .args(["infer", "--input", "camera:0", "--out"])
            .arg(&out)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success());
        assert!(
            err.contains("camera 0 ('Fake Test Camera') is busy: another program is using it"),
            "{err}"
        );
        let o = with_fake(&so, &devdir)
            .env("FAKE_V4L2_UNPLUG_MS", "1500")
            .args([
                "infer",
                "--size",
                "128x96",
                "--no-maps",
                "--input",
                "camera:0",
                "--out",
            ])
            .arg(&out)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{err}");
        assert!(err.contains("camera 0 lost: unplugged"), "{err}");
        // The frames before the loss are complete.
        let json = outputs(&out, ".json");
        assert!(json.len() >= 2, "{err}");
        assert_eq!(outputs(&out, ".png").len(), json.len());
        for j in &json {
            serde_json::from_slice::<serde_json::Value>(&std::fs::read(j).unwrap()).unwrap();
        }
        no_temporaries(&out);
    }
}
