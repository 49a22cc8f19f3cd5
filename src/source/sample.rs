//! The bundled sample input: a photo and a short clip of two people, full body, outdoors
//! (cut from the Sports2D demo video, BSD 3-Clause; see `assets/samples/NOTICE.md`).
//!
//! The photo is decoded from memory. The clip is handed to ffmpeg like any video, so it is
//! written once to the user's cache directory (`…/posescope/samples/`) and played from there.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Frame, FrameSource, SourceError};

/// The bundled sample photo (JPEG, 1280×720).
pub static SAMPLE_IMAGE: &[u8] = include_bytes!("../../assets/samples/two_people.jpg");

/// The bundled sample clip (H.264 MP4, 640×360, 30 fps, 126 frames, 4.2 s).
pub static SAMPLE_CLIP: &[u8] = include_bytes!("../../assets/samples/two_people.mp4");

/// The clip's file name in the cache; the length in it makes a new clip a new file.
fn clip_file_name() -> String {
    format!("two_people-{}.mp4", SAMPLE_CLIP.len())
}

/// Where the sample clip is written: `samples/` in the user cache directory (see
/// [`crate::models::info::cache_dir`] for the platforms' paths), or the temporary directory
/// when no home directory is known.
pub fn sample_dir() -> PathBuf {
    directories::ProjectDirs::from("", "", "posescope")
        .map(|d| d.cache_dir().join("samples"))
        .unwrap_or_else(|| std::env::temp_dir().join("posescope-samples"))
}

/// The sample clip as a file, written into [`sample_dir`] on first use (through a temporary
/// file and a rename, so a reader never sees half a clip).
pub fn sample_clip_path() -> Result<PathBuf, SourceError> {
    materialize(&sample_dir(), &clip_file_name(), SAMPLE_CLIP)
}

/// `dir/name` holding exactly `bytes`: kept when it already does, (re)written otherwise.
fn materialize(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, SourceError> {
    let path = dir.join(name);
    if std::fs::metadata(&path).is_ok_and(|m| m.len() == bytes.len() as u64)
        && std::fs::read(&path).is_ok_and(|b| b == bytes)
    {
        return Ok(path);
    }
    let io = |source| SourceError::Io {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    // Unique per call: threads of one process may write the same clip at once.
    static SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let serial = SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}-{serial}.part", std::process::id()));
    let written = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    Ok(path)
}

/// The bundled sample clip, played by ffmpeg from its file in [`sample_dir`]; it describes
/// itself as the sample rather than by its path in the cache.
pub struct SampleClipSource {
    video: super::VideoSource,
}

impl SampleClipSource {
    pub fn open() -> Result<Self, SourceError> {
        Ok(Self {
            video: super::VideoSource::open(&sample_clip_path()?)?,
        })
    }
}

impl FrameSource for SampleClipSource {
    fn next_frame(&mut self) -> Option<Result<Frame, SourceError>> {
        // Outputs are named after the sample, not after its file in the cache.
        self.video.next_frame().map(|r| {
            r.map(|mut frame| {
                frame.output_stem = format!("two_people_{:06}", frame.index);
                frame
            })
        })
    }
    fn len_hint(&self) -> Option<u64> {
        self.video.len_hint()
    }
    fn describe(&self) -> String {
        let len = self
            .len_hint()
            .map(|n| format!(", {n} frames"))
            .unwrap_or_default();
        format!("sample clip (two people, Sports2D demo, BSD-3-Clause{len})")
    }
    fn seek(&mut self, index: u64) -> bool {
        self.video.seek(index)
    }
}

/// The bundled sample photo as a one-frame source.
pub struct SampleImageSource {
    frame: Option<Frame>,
}

impl SampleImageSource {
    pub fn new() -> Result<Self, SourceError> {
        let image = image::load_from_memory(SAMPLE_IMAGE)
            .map_err(|error| SourceError::Decode {
                path: PathBuf::from("two_people.jpg (bundled)"),
                error,
            })?
            .to_rgb8();
        Ok(Self {
            frame: Some(Frame {
                index: 0,
                timestamp: Duration::ZERO,
                image,
                path: None,
                output_stem: "two_people".into(),
            }),
        })
    }
}

impl FrameSource for SampleImageSource {
    fn next_frame(&mut self) -> Option<Result<Frame, SourceError>> {
        self.frame.take().map(Ok)
    }
    fn len_hint(&self) -> Option<u64> {
        Some(1)
    }
    fn describe(&self) -> String {
        "sample photo (two people, Sports2D demo, BSD-3-Clause)".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_photo_decodes_to_its_documented_size() {
        let mut src = SampleImageSource::new().unwrap();
        let frame = src.next_frame().unwrap().unwrap();
        assert_eq!(frame.image.dimensions(), (1280, 720));
        assert!(src.next_frame().is_none());
    }

    #[test]
    fn the_clip_is_written_once_and_rewritten_when_it_differs() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("samples");
        let p = materialize(&sub, "clip.mp4", b"abc").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"abc");
        let modified = std::fs::metadata(&p).unwrap().modified().unwrap();
        // Same content: kept as is.
        let again = materialize(&sub, "clip.mp4", b"abc").unwrap();
        assert_eq!(again, p);
        assert_eq!(std::fs::metadata(&p).unwrap().modified().unwrap(), modified);
        // A damaged copy of the same length is replaced.
        std::fs::write(&p, b"abd").unwrap();
        materialize(&sub, "clip.mp4", b"abc").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"abc");
        // No temporary files left behind.
        let names: Vec<_> = std::fs::read_dir(&sub)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("clip.mp4")]);
    }

    #[test]
    fn an_unwritable_sample_dir_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").unwrap();
        // A directory under a regular file cannot be created.
        let err = materialize(&blocker.join("samples"), "clip.mp4", b"abc").unwrap_err();
        assert!(err.to_string().contains("clip.mp4"), "{err}");
    }
}
