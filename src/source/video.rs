//! Video files, decoded by driving the `ffmpeg` command-line tool.
//!
//! Why the CLI and not libav bindings: no bindgen / libav version coupling, the user's own
//! ffmpeg build (codecs, hardware) is used as is, and the command line is stable.
//!
//! `ffprobe` first reads the stream geometry, rate and frame count; then
//! `ffmpeg -i FILE -map 0:v:0 -vf showinfo=checksum=0 -fps_mode passthrough -f rawvideo -pix_fmt rgb24 pipe:1`
//! writes frames of exactly `width * height * 3` bytes to stdout (no row padding), while the
//! `showinfo` filter logs one line per frame on stderr. A thread reads stderr, sends each
//! frame's number, `pts_time` and size over a channel and keeps ffmpeg's last error lines.
//! Requires ffmpeg 5.1 or newer (`-fps_mode`).

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;

use super::{Frame, FrameSource, SourceError};

/// Largest accepted frame: 1 GiB of RGB.
const MAX_FRAME_BYTES: u64 = 1 << 30;
/// How many of ffmpeg's last warning/error lines to keep for error messages.
const KEPT_STDERR_LINES: usize = 4;
/// ffprobe's arguments, before `file:<path>`.
const FFPROBE_ARGS: &str = "-v error -select_streams v:0 -show_entries \
    stream=width,height,avg_frame_rate,r_frame_rate,nb_frames,duration\
    :stream_side_data=rotation:stream_tags=rotate:format=duration -of json -i";
/// ffmpeg's arguments before `file:<path>`: info level (for `showinfo`) with level tags.
const FFMPEG_ARGS_BEFORE_INPUT: &str = "-hide_banner -nostdin -nostats -loglevel level+info -i";
/// ffmpeg's arguments after the input: first video stream, one log line per frame (without
/// the per-plane checksums, a third of ffmpeg's time on a 720p video), no frame dropping or
/// duplication, packed RGB to stdout.
const FFMPEG_ARGS_AFTER_INPUT: &str = "-map 0:v:0 -vf showinfo=checksum=0 -fps_mode passthrough \
     -f rawvideo -pix_fmt rgb24 pipe:1";

/// What ffprobe says about a video's first video stream.
#[derive(Clone, Debug, PartialEq)]
pub struct VideoInfo {
    /// Width of the decoded frames in pixels (after applying the rotation metadata).
    pub width: u32,
    /// Height of the decoded frames in pixels (after applying the rotation metadata).
    pub height: u32,
    /// Average frame rate (`avg_frame_rate`, else `r_frame_rate`), when known.
    pub fps: Option<f64>,
    /// Number of frames (`nb_frames`), when the container records it.
    pub frame_count: Option<u64>,
    /// Stream duration (else container duration), when known.
    pub duration: Option<Duration>,
}

/// One frame's entry from ffmpeg's `showinfo` log.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct FrameMeta {
    n: u64,
    pts_time: Option<f64>,
    size: Option<(u32, u32)>,
}

/// A video file decoded frame by frame by an `ffmpeg` child process.
///
/// Frames carry `path` = the video, `output_stem` = `<video stem>_<index:06>` and the
/// presentation time reported by ffmpeg (falling back to `index / fps`). A stream that ends
/// early, an ffmpeg failure, or fewer frames than ffprobe announced end the iteration with a
/// [`SourceError::Truncated`] item. Dropping the source kills and reaps ffmpeg.
#[derive(Debug)]
pub struct VideoSource {
    path: PathBuf,
    stem: String,
    info: VideoInfo,
    frame_bytes: usize,
    child: Option<Child>,
    stdout: Option<ChildStdout>,
    meta_rx: Option<Receiver<FrameMeta>>,
    pending_meta: Option<FrameMeta>,
    meta_timeout: Duration,
    stderr_thread: Option<JoinHandle<StderrSummary>>,
    last_secs: f64,
    next_index: u64,
    done: bool,
}

/// `file:` + path, so that names with a `:` or a leading `-` are never read as a protocol or an option.
fn ffmpeg_input(path: &Path) -> OsString {
    let mut arg = OsString::from("file:");
    arg.push(path.as_os_str());
    arg
}

fn spawn_error(program: &'static str, path: &Path, source: std::io::Error) -> SourceError {
    if source.kind() == std::io::ErrorKind::NotFound {
        SourceError::FfmpegNotFound { program }
    } else {
        SourceError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Runs ffprobe on `path` and parses its answer.
fn probe(path: &Path) -> Result<VideoInfo, SourceError> {
    let out = Command::new("ffprobe")
        .args(FFPROBE_ARGS.split_whitespace())
        .arg(ffmpeg_input(path))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| spawn_error("ffprobe", path, e))?;
    let probe_err = |message: String| SourceError::Probe {
        path: path.to_path_buf(),
        message,
    };
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let prefix = format!("{}: ", ffmpeg_input(path).to_string_lossy());
        let lines: Vec<String> = stderr
            .lines()
            .map(|l| strip_address(l.trim().trim_start_matches(prefix.as_str())))
            .filter(|l| !l.is_empty())
            .collect();
        let msg = lines[lines.len().saturating_sub(KEPT_STDERR_LINES)..].join("; ");
        return Err(probe_err(format!("ffprobe failed ({}): {msg}", out.status)));
    }
    parse_probe(&String::from_utf8_lossy(&out.stdout)).map_err(probe_err)
}

/// Parses ffprobe's JSON (see [`probe`]); the error is a message for [`SourceError::Probe`].
pub(crate) fn parse_probe(json: &str) -> Result<VideoInfo, String> {
    let root: Value =
        serde_json::from_str(json).map_err(|e| format!("unreadable ffprobe output: {e}"))?;
    let stream = root
        .get("streams")
        .and_then(|s| s.get(0))
        .ok_or("no video stream in the file")?;
    let dim = |key: &str| {
        stream
            .get(key)
            .and_then(Value::as_u64)
            .and_then(|v| u32::try_from(v).ok())
            .filter(|&v| v > 0)
    };
    let (Some(mut width), Some(mut height)) = (dim("width"), dim("height")) else {
        return Err("the video stream has no frame size".to_string());
    };
    let rotation = stream
        .get("side_data_list")
        .and_then(Value::as_array)
        .and_then(|l| l.iter().find_map(|d| d.get("rotation")?.as_f64()))
        .or_else(|| num_field(stream.get("tags")?, "rotate"));
    if rotation.is_some_and(|r| (r.round() as i64).rem_euclid(180) == 90) {
        std::mem::swap(&mut width, &mut height);
    }
    if u64::from(width) * u64::from(height) * 3 > MAX_FRAME_BYTES {
        return Err(format!("frame size {width}x{height} is too large"));
    }
    let fps = ["avg_frame_rate", "r_frame_rate"]
        .iter()
        .find_map(|k| parse_rate(stream.get(k)?.as_str()?));
    let frame_count = stream
        .get("nb_frames")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|&n| n > 0);
    let duration = num_field(stream, "duration")
        .or_else(|| num_field(root.get("format")?, "duration"))
        .and_then(|s| Duration::try_from_secs_f64(s).ok());
    Ok(VideoInfo {
        width,
        height,
        fps,
        frame_count,
        duration,
    })
}

/// A number stored as a JSON number or string (`"4.1"`); `None` for `"N/A"`.
fn num_field(obj: &Value, key: &str) -> Option<f64> {
    let v = obj.get(key)?;
    v.as_f64()
        .or_else(|| v.as_str()?.trim().parse::<f64>().ok())
        .filter(|x| x.is_finite())
}

/// `"30000/1001"` → 29.97; `None` for `0/0` or garbage.
fn parse_rate(s: &str) -> Option<f64> {
    let (num, den) = s.split_once('/').unwrap_or((s, "1"));
    let (num, den) = (
        num.trim().parse::<f64>().ok()?,
        den.trim().parse::<f64>().ok()?,
    );
    Some(num / den).filter(|r| r.is_finite() && *r > 0.0)
}

/// Parses a `showinfo` frame line: `[Parsed_showinfo_0 @ 0x..] [info] n:   3 pts: 6144 pts_time:0.6 ... s:960x540 ...`.
fn parse_showinfo(line: &str) -> Option<FrameMeta> {
    if !line.contains("Parsed_showinfo") {
        return None;
    }
    let field = |key: &str| {
        let start = line.find(key)? + key.len();
        line[start..].split_whitespace().next()
    };
    let n = field(" n:")?.parse::<u64>().ok()?;
    let pts_time = field(" pts_time:")?
        .parse::<f64>()
        .ok()
        .filter(|t| t.is_finite());
    let size = field(" s:").and_then(|s| {
        let (w, h) = s.split_once('x')?;
        Some((w.parse().ok()?, h.parse().ok()?))
    });
    Some(FrameMeta { n, pts_time, size })
}

/// A warning or error line from `-loglevel level+info` output, without the level tag and
/// the context address; `None` for info lines.
fn problem_line(line: &str) -> Option<String> {
    let tag = ["[error] ", "[fatal] ", "[panic] ", "[warning] "]
        .into_iter()
        .find(|t| line.contains(t))?;
    Some(strip_address(&line.replacen(tag, "", 1)))
}

/// `[h264 @ 0x55d1] msg` → `[h264] msg`.
fn strip_address(line: &str) -> String {
    let mut text = line.trim().to_string();
    if let Some(at) = text.find(" @ 0x") {
        if let Some(end) = text[at..].find(']') {
            text.replace_range(at..at + end, "");
        }
    }
    text
}

/// What the stderr thread saw besides the showinfo lines.
#[derive(Debug, Default)]
pub(crate) struct StderrSummary {
    /// The last warning/error lines.
    lines: Vec<String>,
    /// How many error (or worse) lines ffmpeg printed.
    errors: usize,
}

/// Body of the stderr thread: forwards showinfo entries, returns the last problem lines.
pub(crate) fn read_stderr(stderr: impl Read, tx: Sender<FrameMeta>) -> StderrSummary {
    let mut reader = BufReader::new(stderr);
    let mut kept: VecDeque<String> = VecDeque::new();
    let mut errors = 0;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        for line in String::from_utf8_lossy(&buf).split('\r') {
            if let Some(meta) = parse_showinfo(line) {
                // The receiver may be gone (source dropped): keep draining so ffmpeg never blocks.
                let _ = tx.send(meta);
            } else if let Some(problem) = problem_line(line) {
                if !line.contains("[warning] ") {
                    errors += 1;
                }
                if kept.len() == KEPT_STDERR_LINES {
                    kept.pop_front();
                }
                kept.push_back(problem);
            }
        }
    }
    StderrSummary {
        lines: kept.into(),
        errors,
    }
}

impl VideoSource {
    /// Probes `path` with ffprobe and starts ffmpeg decoding it.
    ///
    /// # Errors
    /// [`SourceError::NotFound`] for a missing file, [`SourceError::FfmpegNotFound`] when
    /// ffprobe/ffmpeg are not installed, [`SourceError::Probe`] when the file is not a
    /// readable video (ffprobe's message included).
    pub fn open(path: &Path) -> Result<VideoSource, SourceError> {
        if !path.exists() {
            return Err(SourceError::NotFound {
                path: path.to_path_buf(),
            });
        }
        let info = probe(path)?;
        let frame_bytes = usize::try_from(u64::from(info.width) * u64::from(info.height) * 3)
            .map_err(|_| SourceError::Probe {
                path: path.to_path_buf(),
                message: "frame size too large for this platform".to_string(),
            })?;
        let mut child = Command::new("ffmpeg")
            .args(FFMPEG_ARGS_BEFORE_INPUT.split_whitespace())
            .arg(ffmpeg_input(path))
            .args(FFMPEG_ARGS_AFTER_INPUT.split_whitespace())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| spawn_error("ffmpeg", path, e))?;
        let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
        let (tx, rx) = mpsc::channel();
        let stderr_thread = match stderr {
            Some(stderr) => std::thread::Builder::new()
                .name("ffmpeg-stderr".to_string())
                .spawn(move || read_stderr(stderr, tx))
                .ok(),
            None => None,
        };
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "video".to_string());
        Ok(VideoSource {
            path: path.to_path_buf(),
            stem,
            info,
            frame_bytes,
            child: Some(child),
            stdout,
            meta_rx: Some(rx),
            pending_meta: None,
            meta_timeout: Duration::from_secs(2),
            stderr_thread,
            last_secs: 0.0,
            next_index: 0,
            done: false,
        })
    }

    /// What ffprobe reported.
    pub fn info(&self) -> &VideoInfo {
        &self.info
    }

    #[cfg(test)]
    fn child_id(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The showinfo entry for frame `index`, if it arrives in time.
    fn meta_for(&mut self, index: u64) -> Option<FrameMeta> {
        if let Some(m) = self.pending_meta {
            if m.n > index {
                return None;
            }
            self.pending_meta = None;
            if m.n == index {
                return Some(m);
            }
        }
        let rx = self.meta_rx.as_ref()?;
        loop {
            match rx.recv_timeout(self.meta_timeout) {
                Ok(m) if m.n < index => continue,
                Ok(m) if m.n == index => return Some(m),
                Ok(m) => {
                    self.pending_meta = Some(m);
                    return None;
                }
                Err(RecvTimeoutError::Timeout) => {
                    // The log is late or unparseable: don't stall on every frame.
                    self.meta_timeout = Duration::from_millis(20);
                    return None;
                }
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// Stops ffmpeg (killing it if asked), reaps it, and returns its exit status and what it
    /// printed.
    fn stop(&mut self, kill: bool) -> (Option<std::process::ExitStatus>, StderrSummary) {
        self.stdout = None;
        self.meta_rx = None;
        let mut status = None;
        if let Some(mut child) = self.child.take() {
            if kill {
                let _ = child.kill();
            }
            status = child.wait().ok();
        }
        let summary = self
            .stderr_thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default();
        (status, summary)
    }

    fn truncated(&self, reason: String, detail: String) -> SourceError {
        SourceError::Truncated {
            path: self.path.clone(),
            reason,
            detail,
        }
    }

    /// Reads the next frame; `Ok(None)` at a clean end of the stream.
    fn read_frame(&mut self) -> Result<Option<Frame>, SourceError> {
        let Some(stdout) = self.stdout.as_mut() else {
            return Ok(None);
        };
        let index = self.next_index;
        let mut buf = vec![0u8; self.frame_bytes];
        let mut filled = 0;
        while filled < buf.len() {
            match stdout.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let reason = format!("cannot read ffmpeg's output: {e}");
                    return Err(self.truncated(reason, String::new()));
                }
            }
        }
        if filled == 0 {
            return Ok(None);
        }
        if filled < buf.len() {
            let detail = self.stop(false).1.lines.join("; ");
            let reason = format!(
                "the stream ended inside frame {index} ({filled} of {} bytes)",
                buf.len()
            );
            return Err(self.truncated(reason, detail));
        }
        let (w, h) = (self.info.width, self.info.height);
        let meta = self.meta_for(index);
        if let Some((mw, mh)) = meta.and_then(|m| m.size) {
            if (mw, mh) != (w, h) {
                let reason = format!("frame {index} is {mw}x{mh} but the video is {w}x{h}; size changes are not supported");
                return Err(self.truncated(reason, String::new()));
            }
        }
        let fallback = self.info.fps.map_or(0.0, |fps| index as f64 / fps);
        let secs = meta.and_then(|m| m.pts_time).unwrap_or(fallback).max(0.0);
        self.last_secs = secs;
        let image = ::image::RgbImage::from_raw(w, h, buf).ok_or_else(|| {
            self.truncated(format!("frame {index} has the wrong size"), String::new())
        })?;
        self.next_index += 1;
        Ok(Some(Frame {
            index,
            timestamp: Duration::try_from_secs_f64(secs).unwrap_or_default(),
            image,
            path: Some(self.path.clone()),
            output_stem: format!("{}_{index:06}", self.stem),
        }))
    }

    /// After a clean end of stdout: checks ffmpeg's exit status and the frame count.
    ///
    /// Fewer frames than ffprobe's `nb_frames` is an error, except when ffmpeg reported no
    /// error and the frames reach the stream's end: an edit list (a clip cut with `-c copy`)
    /// legitimately hides samples that `nb_frames` still counts. Without `nb_frames` (mkv,
    /// webm), decode errors plus frames that stop short of the duration are an error.
    fn finish(&mut self) -> Result<(), SourceError> {
        let (status, summary) = self.stop(false);
        let detail = summary.lines.join("; ");
        let decoded = self.next_index;
        if let Some(status) = status.filter(|s| !s.success()) {
            let reason = format!("ffmpeg exited with {status} after {decoded} frames");
            return Err(self.truncated(reason, detail));
        }
        if decoded == 0 {
            return Err(self.truncated("no frame could be decoded".to_string(), detail));
        }
        let step = self.info.fps.map_or(0.0, |fps| 1.0 / fps);
        let end = self.last_secs + step;
        let reaches_end = (self.info.duration).map(|d| {
            (
                d.as_secs_f64(),
                end >= d.as_secs_f64() - (2.0 * step).max(0.1),
            )
        });
        let clean = summary.errors == 0;
        let reason = match (self.info.frame_count, reaches_end) {
            (Some(n), Some((_, true))) if decoded < n && clean => return Ok(()),
            (Some(n), _) if decoded < n => {
                format!("ffprobe reported {n} frames, decoded {decoded}")
            }
            (None, Some((dur, false))) if !clean => {
                format!("decoded {decoded} frames, up to {end:.2} s of {dur:.2} s")
            }
            _ => return Ok(()),
        };
        Err(self.truncated(reason, detail))
    }
}

impl FrameSource for VideoSource {
    fn next_frame(&mut self) -> Option<Result<Frame, SourceError>> {
        if self.done {
            return None;
        }
        match self.read_frame() {
            Ok(Some(frame)) => Some(Ok(frame)),
            Ok(None) => {
                self.done = true;
                self.finish().err().map(Err)
            }
            Err(e) => {
                self.done = true;
                self.stop(true);
                Some(Err(e))
            }
        }
    }

    fn len_hint(&self) -> Option<u64> {
        self.info.frame_count
    }

    fn describe(&self) -> String {
        let mut s = format!(
            "video '{}' ({}x{}",
            self.path.display(),
            self.info.width,
            self.info.height
        );
        if let Some(fps) = self.info.fps {
            s.push_str(&format!(", {fps:.2} fps"));
        }
        if let Some(n) = self.info.frame_count {
            s.push_str(&format!(", {n} frames"));
        }
        s.push(')');
        s
    }
}

impl Drop for VideoSource {
    fn drop(&mut self) {
        self.stop(true);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// True when ffmpeg is usable; a missing ffmpeg fails in CI and skips the test elsewhere.
    fn have_ffmpeg() -> bool {
        let ok = Command::new("ffmpeg").arg("-version").output();
        let ok = ok.is_ok_and(|o| o.status.success());
        assert!(
            ok || std::env::var_os("CI").is_none(),
            "ffmpeg is required in CI"
        );
        if !ok {
            eprintln!("skipping: ffmpeg not found on PATH");
        }
        ok
    }

    /// `<shared>/data/videos/<name>`, `<shared>` = `$POSESCOPE_SHARED` or `../shared` beside
    /// the crate. Missing: fails in CI, else skips.
    fn shared_video(name: &str) -> Option<PathBuf> {
        let base = std::env::var_os("POSESCOPE_SHARED").map(PathBuf::from);
        let base = base.unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../shared").into());
        let path = base.join("data/videos").join(name);
        if path.is_file() && have_ffmpeg() {
            return Some(path);
        }
        assert!(
            std::env::var_os("CI").is_none(),
            "missing {}",
            path.display()
        );
        eprintln!(
            "skipping: {} not found (set POSESCOPE_SHARED)",
            path.display()
        );
        None
    }

    /// Runs `ffmpeg ARGS OUT` (test-video generation).
    fn ffmpeg_ok(args: &[&str], out: &Path) {
        let mut cmd = Command::new("ffmpeg");
        let status = cmd.args(["-v", "error", "-nostdin", "-y"]).args(args);
        let status = status.arg(ffmpeg_input(out)).status().unwrap();
        assert!(status.success(), "ffmpeg {args:?}");
    }

    /// All frames, then the error that ended the stream (nothing may follow it).
    fn drain(src: &mut VideoSource) -> (Vec<Frame>, Option<SourceError>) {
        let mut frames = Vec::new();
        while let Some(item) = src.next_frame() {
            match item {
                Ok(f) => frames.push(f),
                Err(e) => {
                    assert!(src.next_frame().is_none(), "items after an error");
                    return (frames, Some(e));
                }
            }
        }
        (frames, None)
    }

    #[test]
    fn parses_ffmpeg_output() {
        assert_eq!(parse_rate("5/1"), Some(5.0));
        assert_eq!(parse_rate("0/0"), None);
        assert!((parse_rate("30000/1001").unwrap() - 29.97).abs() < 0.01);
        let line = "[Parsed_showinfo_0 @ 0x55d1] [info] n:  12 pts:   2048 pts_time:0.2     pos: 145819 fmt:yuv420p sar:1/1 s:540x960 i:P";
        let m = parse_showinfo(line).unwrap();
        assert_eq!((m.n, m.pts_time, m.size), (12, Some(0.2), Some((540, 960))));
        let nopts = "[Parsed_showinfo_0 @ 0x1] [info] n:   0 pts:NOPTS pts_time:NOPTS pos: 1 s:2x2";
        assert_eq!(parse_showinfo(nopts).unwrap().pts_time, None);
        assert!(
            parse_showinfo("[Parsed_showinfo_0 @ 0x1] [info] config in time_base: 1/50").is_none()
        );
        let err = "[h264 @ 0x55924bd7aec0] [error] Invalid NAL unit size (2266 > 112).";
        assert_eq!(
            problem_line(err).unwrap(),
            "[h264] Invalid NAL unit size (2266 > 112)."
        );
        assert!(problem_line("[info] Stream mapping:").is_none());

        let json = r#"{"streams":[{"width":960,"height":540,"r_frame_rate":"5/1","avg_frame_rate":"0/0",
            "duration":"1.000000","nb_frames":"5","side_data_list":[{"rotation":-90}]}],"format":{"duration":"1.0"}}"#;
        let info = parse_probe(json).unwrap();
        assert_eq!((info.width, info.height, info.fps), (540, 960, Some(5.0)));
        assert_eq!(
            (info.frame_count, info.duration),
            (Some(5), Some(Duration::from_secs(1)))
        );
        let bare = r#"{"streams":[{"width":7,"height":3}],"format":{"duration":"N/A"}}"#;
        let bare = parse_probe(bare).unwrap();
        assert_eq!(
            (bare.fps, bare.frame_count, bare.duration),
            (None, None, None)
        );
        assert!(parse_probe(r#"{"streams":[]}"#)
            .unwrap_err()
            .contains("no video stream"));
        assert!(parse_probe("garbage").is_err());
        assert!(parse_probe(r#"{"streams":[{"width":0,"height":3}]}"#).is_err());
    }

    #[test]
    fn decodes_demo_video() {
        let Some(path) = shared_video("mmpose_demo.mp4") else {
            return;
        };
        let mut src = VideoSource::open(&path).unwrap();
        assert_eq!((src.info().width, src.info().height), (960, 540));
        assert_eq!(src.len_hint(), Some(5));
        let (frames, err) = drain(&mut src);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(frames.len(), 5);
        for (i, f) in frames.iter().enumerate() {
            assert_eq!(f.index, i as u64);
            assert_eq!(f.image.dimensions(), (960, 540));
            assert_eq!(f.output_stem, format!("mmpose_demo_{i:06}"));
            assert_eq!(f.path.as_deref(), Some(path.as_path()));
        }
        assert!(frames.windows(2).all(|w| w[0].timestamp < w[1].timestamp));
        assert_eq!(frames[1].timestamp, Duration::from_millis(200));
    }

    #[test]
    fn truncated_mp4_ends_in_an_error() {
        let Some(path) = shared_video("street_crowd.mp4") else {
            return;
        };
        let bytes = std::fs::read(&path).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cut = dir.path().join("street_cut.mp4");
        std::fs::write(&cut, &bytes[..bytes.len() * 2 / 5]).unwrap();
        let err = match VideoSource::open(&cut) {
            Err(e) => e,
            Ok(mut src) => {
                let (frames, err) = drain(&mut src);
                assert!(frames.len() < 205);
                err.expect("a truncated video must end in an error")
            }
        };
        let msg = err.to_string();
        assert!(msg.contains("street_cut.mp4"), "{msg}");
        assert!(
            msg.contains("truncated") || msg.contains("cannot open"),
            "{msg}"
        );
    }

    #[test]
    fn text_file_named_mp4_is_a_clear_error() {
        if !have_ffmpeg() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("notes.mp4");
        std::fs::write(&p, "these are my notes, not a video\n").unwrap();
        let err = super::super::open(&p).err().unwrap();
        assert!(matches!(err, SourceError::Probe { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("cannot open video") && msg.contains("notes.mp4"),
            "{msg}"
        );
        assert!(msg.contains("Invalid data"), "{msg}");
    }

    #[test]
    fn odd_size_mkv_without_frame_count_and_its_truncation() {
        if !have_ffmpeg() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("odd:name.mkv");
        let src = "testsrc=size=33x17:rate=10:duration=3";
        ffmpeg_ok(&["-f", "lavfi", "-i", src, "-c:v", "ffv1"], &p);
        let mut src = VideoSource::open(&p).unwrap();
        assert_eq!((src.info().width, src.info().height), (33, 17));
        assert_eq!(src.len_hint(), None);
        let (frames, err) = drain(&mut src);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(frames.len(), 30);
        assert!(frames.iter().all(|f| f.image.dimensions() == (33, 17)));
        assert_eq!(frames[3].timestamp, Duration::from_millis(300));
        assert_eq!(frames[6].output_stem, "odd:name_000006");

        let bytes = std::fs::read(&p).unwrap();
        let cut = dir.path().join("cut.mkv");
        std::fs::write(&cut, &bytes[..bytes.len() * 2 / 5]).unwrap();
        let (frames, err) = drain(&mut VideoSource::open(&cut).unwrap());
        assert!(frames.len() < 30);
        let msg = err
            .expect("a truncated mkv must end in an error")
            .to_string();
        assert!(
            msg.contains("cut.mkv") && msg.contains("truncated"),
            "{msg}"
        );
    }

    #[test]
    fn stream_copied_cut_and_rotation() {
        if !have_ffmpeg() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let [full, cut, rot] = ["gop.mp4", "cut.mp4", "rot.mp4"].map(|n| dir.path().join(n));
        let src = "testsrc=size=64x48:rate=10:duration=3";
        ffmpeg_ok(
            &[
                "-f", "lavfi", "-i", src, "-c:v", "mpeg4", "-g", "30", "-bf", "2",
            ],
            &full,
        );
        let full_arg = ffmpeg_input(&full).to_string_lossy().into_owned();
        // An edit list hides frames that nb_frames still counts: not a truncation.
        ffmpeg_ok(&["-ss", "1.45", "-i", &full_arg, "-c", "copy"], &cut);
        let mut src = VideoSource::open(&cut).unwrap();
        let (frames, err) = drain(&mut src);
        assert!(err.is_none(), "{err:?}");
        assert!(!frames.is_empty() && (frames.len() as u64) < src.info().frame_count.unwrap());
        // Rotation metadata: frames come out upright, with the size info() reports.
        ffmpeg_ok(
            &[
                "-i",
                &full_arg,
                "-c",
                "copy",
                "-metadata:s:v:0",
                "rotate=90",
            ],
            &rot,
        );
        let mut src = VideoSource::open(&rot).unwrap();
        let (w, h) = (src.info().width, src.info().height);
        assert!((w, h) == (48, 64) || (w, h) == (64, 48)); // newer ffmpeg ignores `rotate=`
        let (frames, err) = drain(&mut src);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(frames.len(), 30);
        assert!(frames.iter().all(|f| f.image.dimensions() == (w, h)));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn drop_mid_stream_reaps_ffmpeg() {
        let Some(path) = shared_video("street_crowd.mp4") else {
            return;
        };
        let mut src = VideoSource::open(&path).unwrap();
        assert!(src.next_frame().unwrap().is_ok());
        let proc_dir = PathBuf::from(format!("/proc/{}", src.child_id().unwrap()));
        assert!(proc_dir.exists());
        drop(src);
        assert!(!proc_dir.exists(), "ffmpeg not reaped");
    }
}
