//! Writing an annotated video: RGBA frames piped to the `ffmpeg` CLI (the same program
//! that decodes video input, see [`crate::source::video`]), encoded as H.264 MP4 into a
//! temporary file that is renamed when complete, so a failed or cancelled export leaves no
//! partial video.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// Encodes RGBA frames into an H.264 MP4 through the ffmpeg CLI, into a temporary file that
/// is renamed when complete.
pub struct VideoWriter {
    child: Child,
    tmp: PathBuf,
    path: PathBuf,
    size: (u32, u32),
}

impl VideoWriter {
    pub fn start(path: PathBuf, size: (u32, u32), fps: f64) -> Result<Self, String> {
        let tmp = path.with_extension("part.mp4");
        let child = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
            .args(["-f", "rawvideo", "-pix_fmt", "rgba"])
            .args(["-s", &format!("{}x{}", size.0, size.1)])
            .args(["-r", &format!("{fps:.3}"), "-i", "pipe:0"])
            .args(["-c:v", "libx264", "-pix_fmt", "yuv420p"])
            // H.264 4:2:0 needs even sizes.
            .args(["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2"])
            .arg(&tmp)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start ffmpeg to write '{}': {e}", path.display()))?;
        Ok(Self {
            child,
            tmp,
            path,
            size,
        })
    }

    /// Adds a frame (the size given at the start).
    pub fn push(&mut self, frame: &image::RgbaImage) -> Result<(), String> {
        if frame.dimensions() != self.size {
            return Err("frame size changed in the middle of the video".into());
        }
        let stdin = self
            .child
            .stdin
            .as_mut()
            .ok_or("ffmpeg's input is closed")?;
        stdin
            .write_all(frame.as_raw())
            .map_err(|e| format!("writing to ffmpeg: {e}"))
    }

    /// Closes the input, waits for `ffmpeg` and moves the file into place.
    pub fn finish(mut self) -> Result<PathBuf, String> {
        drop(self.child.stdin.take());
        let out = self
            .child
            .wait_with_output()
            .map_err(|e| format!("waiting for ffmpeg: {e}"))?;
        if !out.status.success() {
            let _ = std::fs::remove_file(&self.tmp);
            return Err(format!(
                "ffmpeg failed writing '{}': {}",
                self.path.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        std::fs::rename(&self.tmp, &self.path)
            .map_err(|e| format!("cannot move the video into place: {e}"))?;
        Ok(self.path)
    }

    /// Stops `ffmpeg` and removes the partial file.
    pub fn abort(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.tmp);
    }
}
