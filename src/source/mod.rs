//! Frame sources: one image, a folder of images, a video file, a webcam (feature `webcam`).
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
