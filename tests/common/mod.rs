//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod parity;

use std::path::{Path, PathBuf};

/// The names in `dir`, sorted (empty when it cannot be read).
pub fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// A finished command's standard error as text.
pub fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `../shared` beside the repository (or `$POSESCOPE_SHARED`). Missing shared data fails
/// the test under CI (`CI` set) and skips it with a printed reason elsewhere.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("POSESCOPE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    if dir.join("README.md").is_file() {
        return Some(dir);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "shared data not found at {} (CI must have it)",
            dir.display()
        );
    }
    eprintln!("SKIPPED: shared data not found at {}", dir.display());
    None
}

/// Where a test writes screenshot `name`: `docs/` when `POSESCOPE_WRITE_DOCS=1` (to refresh
/// the documentation's pictures on purpose), else a directory under the system's temporary
/// directory (tests must not change tracked files).
pub fn screenshot_path(name: &str) -> PathBuf {
    let dir = if std::env::var("POSESCOPE_WRITE_DOCS").is_ok_and(|v| v == "1") {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs")
    } else {
        std::env::temp_dir().join("posescope-screenshots")
    };
    std::fs::create_dir_all(&dir).expect("screenshot directory");
    let path = dir.join(name);
    eprintln!("screenshot: {}", path.display());
    path
}

/// A 2-second 320×180 25 fps cut of the street video (ffmpeg), in `dir`; `None` without
/// shared data.
pub fn street_clip(dir: &std::path::Path) -> Option<PathBuf> {
    let shared = shared_dir()?;
    let out = dir.join("clip.mp4");
    let status = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(shared.join("data/videos/street_crowd.mp4"))
        .args(["-t", "2", "-vf", "scale=320:180", "-r", "25", "-an"])
        .arg(&out)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success(), "ffmpeg could not cut the clip");
    Some(out)
}

/// Waits (up to 120 s) until `ready` holds, then sends SIGINT (Ctrl-C) to `child` and
/// returns its output.
#[cfg(unix)]
pub fn interrupt_when(
    child: std::process::Child,
    ready: impl Fn() -> bool,
) -> std::process::Output {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !ready() {
        assert!(std::time::Instant::now() < deadline, "no frames recorded");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let pid = child.id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill runs");
    assert!(sent.success(), "kill -INT {pid} failed");
    child.wait_with_output().expect("the child is reaped")
}

/// Max-abs difference and RMS difference relative to the reference's standard deviation.
pub fn compare(got: &[f32], want: &[f32]) -> (f32, f32) {
    assert_eq!(got.len(), want.len(), "length mismatch");
    let n = want.len().max(1) as f64;
    let mean = want.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = want
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / n;
    let mut max_abs = 0f32;
    let mut sq = 0f64;
    for (&g, &w) in got.iter().zip(want) {
        let d = (g - w).abs();
        // NaN counts as an infinite difference.
        max_abs = if d.is_nan() {
            f32::INFINITY
        } else {
            d.max(max_abs)
        };
        sq += f64::from(d) * f64::from(d);
    }
    let rms = (sq / n).sqrt();
    (max_abs, (rms / var.sqrt().max(1e-12)) as f32)
}

/// Runs this test binary's tests matching `filters` again in a child process on the
/// portable path (`POSESCOPE_PORTABLE=1`: candle's own ops, exactly what CUDA and Metal
/// run, instead of the custom CPU kernels, each of which fails if entered), and checks that
/// at least `min_passed` of them passed. Prints the child's output (the parity tables).
/// Returns at once in the child itself.
pub fn rerun_portable(filters: &[&str], min_passed: usize) {
    if std::env::var_os("POSESCOPE_PORTABLE").is_some() {
        return; // the child itself
    }
    if shared_dir().is_none() {
        return;
    }
    let started = std::time::Instant::now();
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = std::process::Command::new(exe)
        .args(filters)
        .args(["--test-threads=1", "--nocapture"])
        .env("POSESCOPE_PORTABLE", "1")
        .output()
        .expect("the test binary runs again");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "the tests failed on the portable path:\n{stdout}\n{stderr}"
    );
    let passed: usize = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("test result: ok. "))
        .filter_map(|l| l.split_whitespace().next()?.parse::<usize>().ok())
        .sum();
    assert!(
        passed >= min_passed,
        "only {passed} of {min_passed} tests ran on the portable path:\n{stdout}\n{stderr}"
    );
    println!(
        "portable path: {passed} tests passed in {:.1?}",
        started.elapsed()
    );
}
