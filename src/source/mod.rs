//! Frame sources: one image, a folder of images, a video file, a camera.
//!
//! Every source yields [`Frame`]s in order; each carries its index, its timestamp and the
//! stem that exporters use to name output files.

use std::path::PathBuf;
use std::time::Duration;

/// One decoded frame, 8-bit RGB.
#[derive(Clone, Debug)]
pub struct Frame {
    /// 0-based position in its source.
    pub index: u64,
    /// Presentation time from the start of the source (zero for still images).
    pub timestamp: Duration,
    /// The pixels, RGB, 8 bits per channel.
    pub image: image::RgbImage,
    /// File the frame came from (the image itself, or the video file); `None` for a webcam.
    pub path: Option<PathBuf>,
    /// Base name for outputs of this frame: `<stem>` for a single image,
    /// `<stem>_<index:06>` for folder and video frames (stem of the folder or video file).
    pub output_stem: String,
}

pub mod camera;
mod complete;
mod folder;
mod paced;
pub mod sample;
// A single still image (not named `image`, which would shadow the `image` crate).
mod still;
// `pub(crate)` for the ffprobe and showinfo fuzz entries (`crate::fuzzing`).
pub(crate) mod video;

pub use camera::{list_cameras, CameraId, CameraInfo, CameraMode, CameraSource, SimCamera};
pub use folder::{list_videos, natural_cmp, FolderSource};
pub use paced::{Paced, Reopen};
pub use sample::{
    sample_clip_path, SampleClipSource, SampleImageSource, SAMPLE_CLIP, SAMPLE_IMAGE,
};
pub use still::ImageSource;
pub use video::{VideoInfo, VideoSource};

use std::fmt;
use std::path::Path;

/// File extensions (lower case) that are decoded as still images.
pub const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "bmp", "tif", "tiff", "webp", "gif"];

/// File extensions (lower case) that a folder of videos is looked for by (`infer` on a
/// folder without images; see [`list_videos`]). A single video file needs no known
/// extension.
pub const VIDEO_EXTENSIONS: &[&str] = &[
    "mp4", "mov", "avi", "mkv", "webm", "m4v", "mpg", "mpeg", "wmv", "flv", "ts", "mts",
];

/// Everything that can go wrong while opening or reading a frame source.
///
/// Every message names the file, folder or device concerned and says what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The input path does not exist.
    #[error("input '{}' does not exist", .path.display())]
    NotFound {
        /// The missing path.
        path: PathBuf,
    },
    /// An I/O error while reading a file or folder (or talking to ffmpeg about it).
    #[error("cannot read '{}': {source}", .path.display())]
    Io {
        /// The file or folder concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A still image could not be decoded (corrupt or unsupported).
    #[error("cannot decode image '{}': {error}", .path.display())]
    Decode {
        /// The image file.
        path: PathBuf,
        /// The decoder's error (shown in the message, so not also a `source`: `{:#}` would
        /// print it twice).
        error: ::image::ImageError,
    },
    /// A still image file ends early: a JPEG cut before its end-of-image marker, a PNG
    /// without its `IEND` chunk. Decoders would fill in the rest silently.
    #[error("image '{}' is truncated: {reason}", .path.display())]
    TruncatedImage {
        /// The image file.
        path: PathBuf,
        /// What is missing, e.g. "the data ends inside the image data, before the JPEG
        /// end-of-image marker".
        reason: String,
    },
    /// A folder holds no image files.
    #[error("folder '{}' contains no images (looked for {})", .path.display(), IMAGE_EXTENSIONS.join(", "))]
    EmptyFolder {
        /// The folder.
        path: PathBuf,
    },
    /// `ffmpeg` or `ffprobe` could not be started because it is not installed.
    #[error("{program} not found on PATH: install the ffmpeg package")]
    FfmpegNotFound {
        /// `"ffmpeg"` or `"ffprobe"`.
        program: &'static str,
    },
    /// `ffprobe` rejected the file: not a video, corrupt, or missing its index (moov atom).
    #[error("cannot open video '{}': {message}", .path.display())]
    Probe {
        /// The video file.
        path: PathBuf,
        /// What ffprobe (or the parsing of its answer) reported.
        message: String,
    },
    /// The video stopped early or failed to decode.
    #[error("video '{}' is truncated or corrupt: {reason}{}", .path.display(), fmt_detail(.detail))]
    Truncated {
        /// The video file.
        path: PathBuf,
        /// What was observed, e.g. "ffprobe reported 205 frames, decoded 120".
        reason: String,
        /// The last error lines ffmpeg printed (may be empty).
        detail: String,
    },
    /// No camera is connected (or none can be enumerated).
    #[error("no camera found")]
    NoCamera,
    /// A camera could not be listed, opened, configured or read (the stream is over).
    #[error("camera {index}: {message}")]
    Camera {
        /// The camera index.
        index: u32,
        /// What went wrong.
        message: String,
    },
    /// Another program holds the camera.
    #[error(
        "camera {index} ('{name}') is busy: another program is using it (a video call, another \
         posescope, a browser tab); close it and try again"
    )]
    CameraBusy {
        /// The camera index.
        index: u32,
        /// Its name.
        name: String,
    },
    /// A streaming camera stopped: unplugged, or silent for too long.
    #[error("camera {index} lost: {message}")]
    CameraLost {
        /// The camera index.
        index: u32,
        /// What happened.
        message: String,
    },
    /// The system's cameras could not be listed (no backend, no permission).
    #[error("cannot list cameras: {message}")]
    CameraList {
        /// What went wrong.
        message: String,
    },
    /// One camera frame could not be decoded; the stream goes on.
    #[error("camera {index}: cannot decode frame: {message}")]
    CameraFrame {
        /// The camera index.
        index: u32,
        /// The decoder's message.
        message: String,
    },
}

impl SourceError {
    /// For an error item from [`FrameSource::next_frame`]: true when the source yields nothing
    /// more after it (a truncated video, a lost camera), false for an error confined to one
    /// frame (an unreadable image in a folder, an undecodable camera frame). Errors from
    /// opening a source stop the run whatever this says.
    pub fn is_fatal(&self) -> bool {
        !matches!(
            self,
            SourceError::Io { .. }
                | SourceError::Decode { .. }
                | SourceError::TruncatedImage { .. }
                | SourceError::CameraFrame { .. }
        )
    }
}

fn fmt_detail(detail: &str) -> String {
    if detail.trim().is_empty() {
        String::new()
    } else {
        format!(" (ffmpeg said: {})", detail.trim())
    }
}

/// A sequence of frames: a still image, a folder of images, a video or a webcam.
pub trait FrameSource: Send {
    /// The next frame, `Some(Err(..))` for a frame that could not be read, `None` at the end.
    ///
    /// After a fatal error (a truncated video, a lost camera) the source returns `None`.
    fn next_frame(&mut self) -> Option<Result<Frame, SourceError>>;
    /// Number of frames, when known in advance.
    fn len_hint(&self) -> Option<u64>;
    /// A one-line human description, e.g. `video 'a.mp4' (960x540, 5 fps, 5 frames)`.
    fn describe(&self) -> String;
    /// Makes the next frame be frame `index`, when the source can jump there directly.
    /// Returns `false` when it cannot (the caller may reopen the source and skip instead).
    fn seek(&mut self, _index: u64) -> bool {
        false
    }
}

/// The kind of an input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InputKind {
    /// A single still image.
    Image,
    /// A folder of still images.
    Folder,
    /// A video file decoded by ffmpeg.
    Video,
    /// A live camera.
    Webcam,
}

impl InputKind {
    /// What [`open`] would treat `path` as: a folder, an image (by extension) or a video
    /// (anything else that exists). Never returns [`InputKind::Webcam`].
    ///
    /// # Errors
    /// [`SourceError::NotFound`] when the path does not exist, [`SourceError::Io`] when it
    /// cannot be inspected.
    pub fn of(path: &Path) -> Result<InputKind, SourceError> {
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => Ok(InputKind::Folder),
            Ok(_) if is_image_path(path) => Ok(InputKind::Image),
            Ok(_) => Ok(InputKind::Video),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(SourceError::NotFound {
                path: path.to_path_buf(),
            }),
            Err(source) => Err(SourceError::Io {
                path: path.to_path_buf(),
                source,
            }),
        }
    }
}

impl fmt::Display for InputKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InputKind::Image => "image",
            InputKind::Folder => "folder",
            InputKind::Video => "video",
            InputKind::Webcam => "webcam",
        })
    }
}

/// True when the path's extension is a known still-image extension (case-insensitive).
pub fn is_image_path(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|k| e.eq_ignore_ascii_case(k)))
}

/// Opens an input as given on the command line: `camera:N` (or `camera`) is camera N,
/// `sim-camera:VIDEO` a [`SimCamera`] playing VIDEO in real time; anything else is a path
/// for [`open`]. An existing file of that name wins over the camera meaning.
///
/// # Errors
/// As [`open`] and [`CameraSource::open`].
pub fn open_input(input: &Path) -> Result<Box<dyn FrameSource>, SourceError> {
    let Some(id) = camera_input(input) else {
        return open(input);
    };
    // `camera:N@WxH[@FPS]`: that mode of the camera's.
    let request = input
        .to_str()
        .and_then(camera::parse_camera_spec)
        .and_then(|(_, mode)| mode);
    let mode = match (&id, request) {
        (CameraId::Device(index), Some(req)) => {
            let cameras = camera::list_cameras()?;
            let info =
                cameras
                    .iter()
                    .find(|c| c.index == *index)
                    .ok_or_else(|| SourceError::Camera {
                        index: *index,
                        message: "no such camera (see `posescope cameras`)".into(),
                    })?;
            let mode =
                camera::choose_mode(&info.modes, &req).map_err(|message| SourceError::Camera {
                    index: *index,
                    message,
                })?;
            Some(mode)
        }
        _ => None,
    };
    Ok(Box::new(CameraSource::open(&id, mode.as_ref())?))
}

/// The camera an `--input` names, if it names one (see [`open_input`]).
pub fn camera_input(input: &Path) -> Option<CameraId> {
    if input.exists() {
        return None;
    }
    let text = input.to_str()?;
    if let Some(video) = text.strip_prefix("sim-camera:") {
        let video = Path::new(video);
        let name = video.file_name().map_or_else(
            || video.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        return Some(CameraId::Simulated(SimCamera::new(0, &name, video)));
    }
    camera::parse_camera_input(text).map(CameraId::Device)
}

/// Opens `path` as a frame source: a directory becomes a [`FolderSource`], a file with an
/// image extension an [`ImageSource`], any other existing file a [`VideoSource`] (probed
/// with ffprobe).
///
/// # Errors
/// A missing path, an unreadable file, an empty folder, or a file ffprobe cannot open.
pub fn open(path: &Path) -> Result<Box<dyn FrameSource>, SourceError> {
    Ok(match InputKind::of(path)? {
        InputKind::Folder => Box::new(FolderSource::open(path)?),
        InputKind::Image => Box::new(ImageSource::open(path)?),
        InputKind::Video | InputKind::Webcam => Box::new(VideoSource::open(path)?),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn image_extensions_are_case_insensitive() {
        assert!(is_image_path(Path::new("a/b.PNG")));
        assert!(is_image_path(Path::new("x.Jpeg")));
        assert!(is_image_path(Path::new("x.tif")));
        assert!(!is_image_path(Path::new("x.mp4")));
        assert!(!is_image_path(Path::new("png")));
        assert!(!is_image_path(Path::new("x.")));
    }

    #[test]
    fn missing_path_is_a_clear_error() {
        let err = open(Path::new("/definitely/not/here.png")).err().unwrap();
        assert!(matches!(err, SourceError::NotFound { .. }));
        let msg = err.to_string();
        assert!(msg.contains("/definitely/not/here.png"), "{msg}");
        assert!(msg.contains("does not exist"), "{msg}");
    }

    #[test]
    fn fatal_errors() {
        let path = PathBuf::from("x.png");
        let io = std::io::Error::other("boom");
        assert!(!SourceError::Io {
            path: path.clone(),
            source: io
        }
        .is_fatal());
        let truncated = SourceError::Truncated {
            path,
            reason: "r".into(),
            detail: String::new(),
        };
        assert!(truncated.is_fatal());
        assert!(SourceError::NoCamera.is_fatal());
        let frame = SourceError::CameraFrame {
            index: 0,
            message: "bad jpeg".into(),
        };
        assert!(!frame.is_fatal());
    }

    #[test]
    fn kinds() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(InputKind::of(dir.path()).unwrap(), InputKind::Folder);
        let f = dir.path().join("clip.MOV");
        std::fs::write(&f, b"x").unwrap();
        assert_eq!(InputKind::of(&f).unwrap(), InputKind::Video);
        let g = dir.path().join("pic.Png");
        std::fs::write(&g, b"x").unwrap();
        assert_eq!(InputKind::of(&g).unwrap(), InputKind::Image);
    }
}
