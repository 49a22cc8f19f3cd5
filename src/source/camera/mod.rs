//! Live cameras, in every build: Video4Linux2 on Linux (written against the kernel ABI, no
//! system library), nokhwa's native backends on macOS and Windows (AVFoundation, Media
//! Foundation; or on Linux with the `nokhwa` feature), and a simulated camera that plays a
//! video at its own pace and can be unplugged, for tests and demos without a camera.
//!
//! A camera is a [`FrameSource`] like a video: [`CameraSource::open`] gives one. Frames carry
//! the camera's sequence number as their index (a gap means the camera delivered frames the
//! reader was too slow for: the newest frame always wins), the time since the stream opened,
//! no path, and `camera_<index:06>` as their output stem.

use std::fmt;
use std::time::Duration;

use super::{Frame, FrameSource, SourceError};

pub mod convert;
#[cfg(any(feature = "nokhwa", not(target_os = "linux")))]
mod nokhwa_backend;
mod sim;
#[cfg(all(target_os = "linux", not(feature = "nokhwa")))]
mod v4l2;

pub use sim::SimCamera;

/// One way a camera can deliver pictures: pixel format, size and frame rate.
#[derive(Clone, Debug, PartialEq)]
pub struct CameraMode {
    /// The pixel format's four-character code (`MJPG`, `YUYV`, ...), little-endian.
    pub fourcc: u32,
    pub width: u32,
    pub height: u32,
    /// Frames per second, when the camera says.
    pub fps: Option<f64>,
}

impl CameraMode {
    pub fn new(fourcc: u32, width: u32, height: u32, fps: Option<f64>) -> Self {
        Self {
            fourcc,
            width,
            height,
            fps,
        }
    }

    /// The pixel format as text, e.g. `MJPG`.
    pub fn pixel_format(&self) -> String {
        fourcc_text(self.fourcc)
    }
}

impl fmt::Display for CameraMode {
    /// `1280x720 @ 30 fps (MJPG)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.width, self.height)?;
        if let Some(fps) = self.fps {
            write!(f, " @ {} fps", trim_rate(fps))?;
        }
        write!(f, " ({})", self.pixel_format())
    }
}

fn trim_rate(fps: f64) -> String {
    if (fps - fps.round()).abs() < 0.01 {
        format!("{}", fps.round())
    } else {
        format!("{fps:.2}")
    }
}

/// A four-character code as text (`?` for unprintable bytes).
pub fn fourcc_text(code: u32) -> String {
    code.to_le_bytes()
        .iter()
        .map(|&b| if b.is_ascii_graphic() { b as char } else { '?' })
        .collect()
}

/// A camera found on the system.
#[derive(Clone, Debug, PartialEq)]
pub struct CameraInfo {
    /// The number to open it by (`camera:N` on the command line; `/dev/videoN` on Linux).
    pub index: u32,
    /// Human-readable name, e.g. `HD Pro Webcam C920`.
    pub name: String,
    /// The device node or backend identifier.
    pub device: String,
    /// Formats, sizes and rates it offers (empty when the backend cannot say without
    /// opening it).
    pub modes: Vec<CameraMode>,
}

impl fmt::Display for CameraInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} ({})", self.index, self.name, self.device)
    }
}

/// The mode a camera opens in when the user picks none: the largest picture up to 1280×720
/// at 24 fps or more, cheaper-to-decode formats first; else the fastest mode at the largest
/// size up to 1280×720; else the first. The live view downsizes to the network's input
/// anyway, so more than 720p costs decoding time and shows nothing more.
pub fn default_mode(modes: &[CameraMode]) -> Option<CameraMode> {
    let fits = |m: &&CameraMode| m.width * m.height <= 1280 * 720;
    let fluent = |m: &&CameraMode| m.fps.is_none_or(|f| f >= 23.9);
    let key = |m: &&CameraMode| {
        (
            m.width * m.height,
            std::cmp::Reverse(convert::decode_cost(m.fourcc)),
            (m.fps.unwrap_or(0.0) * 100.0) as u64,
        )
    };
    modes
        .iter()
        .filter(fits)
        .filter(fluent)
        .max_by_key(key)
        .or_else(|| modes.iter().filter(fits).max_by_key(key))
        .or(modes.first())
        .cloned()
}

/// Which camera to open.
#[derive(Clone, Debug, PartialEq)]
pub enum CameraId {
    /// A system camera by index (see [`list_cameras`]).
    Device(u32),
    /// A simulated camera (a video played at its own pace).
    Simulated(SimCamera),
}

impl CameraId {
    /// The index shown in messages.
    pub fn index(&self) -> u32 {
        match self {
            CameraId::Device(i) => *i,
            CameraId::Simulated(s) => s.index(),
        }
    }
}

impl fmt::Display for CameraId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CameraId::Device(i) => write!(f, "camera {i}"),
            CameraId::Simulated(s) => write!(f, "simulated camera '{}'", s.name()),
        }
    }
}

/// Parses `camera:N` (or `camera`, meaning camera 0) as used by `--input`, with an
/// optional mode: `camera:N@WxH` or `camera:N@WxH@FPS` (see [`choose_mode`]).
pub fn parse_camera_input(text: &str) -> Option<u32> {
    parse_camera_spec(text).map(|(index, _)| index)
}

/// A capture mode asked for by `camera:N@WxH[@FPS]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ModeRequest {
    pub width: u32,
    pub height: u32,
    pub fps: Option<f64>,
}

/// `camera[:N][@WxH[@FPS]]` → the index and the mode asked for, if any.
pub fn parse_camera_spec(text: &str) -> Option<(u32, Option<ModeRequest>)> {
    let rest = text.strip_prefix("camera")?;
    let (index, mode) = match rest.split_once('@') {
        Some((i, m)) => (i, Some(m)),
        None => (rest, None),
    };
    let index = if index.is_empty() {
        0
    } else {
        index.strip_prefix(':')?.parse().ok()?
    };
    let mode = match mode {
        None => None,
        Some(m) => {
            let (size, fps) = match m.split_once('@') {
                Some((s, f)) => {
                    let f: f64 = f.trim_end_matches("fps").parse().ok()?;
                    (s, (f.is_finite() && f > 0.0).then_some(f).map(Some)?)
                }
                None => (m, None),
            };
            let (w, h) = size.split_once(['x', 'X'])?;
            let (width, height) = (w.parse().ok()?, h.parse().ok()?);
            if width == 0 || height == 0 {
                return None;
            }
            Some(ModeRequest { width, height, fps })
        }
    };
    Some((index, mode))
}

/// The camera mode matching `req`: that size, and the frame rate closest to the one asked
/// for (or the highest), the cheapest pixel format to decode among equals. The error lists
/// what the camera offers.
pub fn choose_mode(modes: &[CameraMode], req: &ModeRequest) -> Result<CameraMode, String> {
    let sized: Vec<&CameraMode> = modes
        .iter()
        .filter(|m| (m.width, m.height) == (req.width, req.height))
        .collect();
    let fps_err = |m: &CameraMode| match (req.fps, m.fps) {
        (Some(want), Some(have)) => (want - have).abs(),
        (Some(_), None) => f64::INFINITY,
        (None, have) => -have.unwrap_or(0.0),
    };
    let best = sized.into_iter().min_by(|a, b| {
        fps_err(a)
            .total_cmp(&fps_err(b))
            .then(convert::decode_cost(a.fourcc).cmp(&convert::decode_cost(b.fourcc)))
    });
    match best {
        Some(m)
            if req
                .fps
                .is_none_or(|want| m.fps.is_some_and(|have| (want - have).abs() < 0.5)) =>
        {
            Ok(m.clone())
        }
        _ => {
            let offered: Vec<String> = modes.iter().map(ToString::to_string).collect();
            let wanted = match req.fps {
                Some(f) => format!("{}x{} at {f} fps", req.width, req.height),
                None => format!("{}x{}", req.width, req.height),
            };
            Err(format!(
                "the camera has no {wanted} mode; it offers: {}",
                if offered.is_empty() {
                    "none listed".to_string()
                } else {
                    offered.join(", ")
                }
            ))
        }
    }
}

/// Lists the system's cameras (an empty list when there are none).
///
/// # Errors
/// [`SourceError::CameraList`] when the system cannot be asked (no backend, no permission).
pub fn list_cameras() -> Result<Vec<CameraInfo>, SourceError> {
    #[cfg(all(target_os = "linux", not(feature = "nokhwa")))]
    {
        v4l2::list().map_err(|e| SourceError::CameraList {
            message: e.to_string(),
        })
    }
    #[cfg(any(feature = "nokhwa", not(target_os = "linux")))]
    {
        nokhwa_backend::list()
    }
}

/// How long a camera may stay silent before it counts as lost.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(3);

/// What a backend stream gives: a frame's pixels as RGB, with the camera's sequence number.
pub(crate) trait CameraStream: Send {
    /// The next (newest) picture. `Err((error, fatal))`: fatal means the camera is gone.
    fn capture(&mut self) -> Result<(u64, image::RgbImage), (SourceError, bool)>;
    /// The mode in force.
    fn mode(&self) -> Option<CameraMode>;
    /// The camera's name.
    fn name(&self) -> String;
}

/// Frames from a live (or simulated) camera.
pub struct CameraSource {
    id: CameraId,
    stream: Box<dyn CameraStream>,
    started: std::time::Instant,
    first_sequence: Option<u64>,
    failed: bool,
}

impl fmt::Debug for CameraSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CameraSource")
            .field("id", &self.id)
            .finish()
    }
}

impl CameraSource {
    /// Opens `id` in `mode` (the camera's [`default_mode`] when `None`).
    ///
    /// # Errors
    /// [`SourceError::NoCamera`] when the system has no camera at all,
    /// [`SourceError::CameraBusy`] when another program holds it, [`SourceError::Camera`] when
    /// it is missing, refuses the mode or will not stream.
    pub fn open(id: &CameraId, mode: Option<&CameraMode>) -> Result<CameraSource, SourceError> {
        let stream: Box<dyn CameraStream> = match id {
            CameraId::Simulated(sim) => Box::new(sim.open()?),
            CameraId::Device(index) => open_device(*index, mode)?,
        };
        Ok(CameraSource {
            id: id.clone(),
            stream,
            started: std::time::Instant::now(),
            first_sequence: None,
            failed: false,
        })
    }

    /// The camera this source reads.
    pub fn id(&self) -> &CameraId {
        &self.id
    }
}

#[cfg(all(target_os = "linux", not(feature = "nokhwa")))]
fn open_device(
    index: u32,
    mode: Option<&CameraMode>,
) -> Result<Box<dyn CameraStream>, SourceError> {
    let cams = list_cameras()?;
    let Some(info) = cams.iter().find(|c| c.index == index) else {
        if cams.is_empty() {
            return Err(SourceError::NoCamera);
        }
        let have: Vec<String> = cams.iter().map(|c| c.index.to_string()).collect();
        return Err(SourceError::Camera {
            index,
            message: format!("no such camera (cameras here: {})", have.join(", ")),
        });
    };
    let mode = match mode.cloned().or_else(|| default_mode(&info.modes)) {
        Some(m) => m,
        None => {
            return Err(SourceError::Camera {
                index,
                message: format!(
                    "'{}' offers no pixel format posescope can decode (MJPG, YUYV, UYVY, NV12, \
                     RGB3, BGR3, GREY)",
                    info.name
                ),
            })
        }
    };
    Ok(Box::new(v4l2_stream::V4l2Stream::open(
        index, &info.name, &mode,
    )?))
}

#[cfg(any(feature = "nokhwa", not(target_os = "linux")))]
fn open_device(
    index: u32,
    mode: Option<&CameraMode>,
) -> Result<Box<dyn CameraStream>, SourceError> {
    Ok(Box::new(nokhwa_backend::NokhwaStream::open(index, mode)?))
}

#[cfg(all(target_os = "linux", not(feature = "nokhwa")))]
mod v4l2_stream {
    use super::v4l2::{device_path, Device, DeviceError};
    use super::{convert, CameraMode, CameraStream, FRAME_TIMEOUT};
    use crate::source::SourceError;

    pub(super) struct V4l2Stream {
        index: u32,
        name: String,
        device: Device,
    }

    /// A failed open, in words a user can act on.
    fn open_error(index: u32, name: &str, e: &DeviceError) -> SourceError {
        let path = device_path(index);
        match e.error.raw_os_error() {
            Some(libc::EBUSY) => SourceError::CameraBusy {
                index,
                name: name.to_string(),
            },
            Some(libc::EACCES) | Some(libc::EPERM) => SourceError::Camera {
                index,
                message: format!(
                    "permission denied on {}: add your user to the 'video' group \
                     (sudo usermod -aG video $USER, then log in again)",
                    path.display()
                ),
            },
            Some(libc::ENOENT) | Some(libc::ENODEV) | Some(libc::ENXIO) => SourceError::Camera {
                index,
                message: format!("{} is gone (unplugged?)", path.display()),
            },
            _ => SourceError::Camera {
                index,
                message: format!("cannot {} on {}: {}", e.step, path.display(), e.error),
            },
        }
    }

    impl V4l2Stream {
        pub(super) fn open(
            index: u32,
            name: &str,
            mode: &CameraMode,
        ) -> Result<V4l2Stream, SourceError> {
            let device =
                Device::open(&device_path(index), mode).map_err(|e| open_error(index, name, &e))?;
            Ok(V4l2Stream {
                index,
                name: name.to_string(),
                device,
            })
        }
    }

    impl CameraStream for V4l2Stream {
        fn capture(&mut self) -> Result<(u64, image::RgbImage), (SourceError, bool)> {
            let index = self.index;
            let lost = |message: String| (SourceError::CameraLost { index, message }, true);
            let (fourcc, w, h) = (
                self.device.mode.fourcc,
                self.device.mode.width,
                self.device.mode.height,
            );
            let stride = self.device.bytes_per_line();
            match self.device.next(FRAME_TIMEOUT) {
                Ok(Some(filled)) => {
                    let sequence = u64::from(filled.sequence);
                    convert::to_rgb(fourcc, w, h, stride, filled.data)
                        .map(|img| (sequence, img))
                        .map_err(|message| (SourceError::CameraFrame { index, message }, false))
                }
                Ok(None) => Err(lost(format!("no frame for {} s", FRAME_TIMEOUT.as_secs()))),
                Err(e) if e.raw_os_error() == Some(libc::ENODEV) => {
                    Err(lost("unplugged".to_string()))
                }
                Err(e) => Err(lost(e.to_string())),
            }
        }

        fn mode(&self) -> Option<CameraMode> {
            Some(self.device.mode.clone())
        }

        fn name(&self) -> String {
            if self.device.name.is_empty() {
                self.name.clone()
            } else {
                self.device.name.clone()
            }
        }
    }
}

impl FrameSource for CameraSource {
    fn next_frame(&mut self) -> Option<Result<Frame, SourceError>> {
        if self.failed {
            return None;
        }
        match self.stream.capture() {
            Ok((sequence, image)) => {
                let first = *self.first_sequence.get_or_insert(sequence);
                let index = sequence.saturating_sub(first);
                Some(Ok(Frame {
                    index,
                    timestamp: self.started.elapsed(),
                    image,
                    path: None,
                    output_stem: format!("camera_{index:06}"),
                }))
            }
            Err((e, fatal)) => {
                self.failed = fatal;
                Some(Err(e))
            }
        }
    }

    fn len_hint(&self) -> Option<u64> {
        None
    }

    fn describe(&self) -> String {
        // `camera 0 'HD Webcam' (1280x720 @ 30 fps (MJPG))`, `simulated camera 'clip.mp4' (…)`.
        let what = match &self.id {
            CameraId::Device(i) => format!("camera {i} '{}'", self.stream.name()),
            CameraId::Simulated(_) => self.id.to_string(),
        };
        match self.stream.mode() {
            Some(mode) => format!("{what} ({mode})"),
            None => what,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::convert::{MJPG, YUYV};
    use super::*;

    #[test]
    fn a_requested_mode_is_matched_by_size_then_rate_then_decoding_cost() {
        let modes = vec![
            CameraMode::new(YUYV, 1280, 720, Some(10.0)),
            CameraMode::new(MJPG, 1280, 720, Some(30.0)),
            CameraMode::new(YUYV, 640, 480, Some(30.0)),
            CameraMode::new(MJPG, 640, 480, Some(30.0)),
            CameraMode::new(YUYV, 640, 480, Some(15.0)),
        ];
        let req = |width, height, fps| ModeRequest { width, height, fps };
        assert_eq!(
            choose_mode(&modes, &req(1280, 720, None)),
            Ok(modes[1].clone())
        );
        assert_eq!(
            choose_mode(&modes, &req(1280, 720, Some(10.0))),
            Ok(modes[0].clone())
        );
        // Same size and rate: the cheaper format to decode (YUYV before MJPG).
        assert_eq!(
            choose_mode(&modes, &req(640, 480, Some(30.0))),
            Ok(modes[2].clone())
        );
        assert_eq!(
            choose_mode(&modes, &req(640, 480, Some(15.0))),
            Ok(modes[4].clone())
        );
        let e = choose_mode(&modes, &req(1920, 1080, None)).unwrap_err();
        assert!(
            e.contains("no 1920x1080 mode") && e.contains("640x480"),
            "{e}"
        );
        let e = choose_mode(&modes, &req(1280, 720, Some(60.0))).unwrap_err();
        assert!(e.contains("1280x720 at 60 fps"), "{e}");
    }

    #[test]
    fn default_mode_prefers_fluent_720p() {
        let modes = vec![
            CameraMode::new(YUYV, 1920, 1080, Some(5.0)),
            CameraMode::new(YUYV, 1280, 720, Some(10.0)),
            CameraMode::new(MJPG, 1280, 720, Some(30.0)),
            CameraMode::new(YUYV, 640, 480, Some(30.0)),
        ];
        assert_eq!(default_mode(&modes), Some(modes[2].clone()));
        // Only slow modes: the largest that fits, fastest.
        let slow = vec![
            CameraMode::new(YUYV, 1280, 720, Some(10.0)),
            CameraMode::new(YUYV, 1280, 720, Some(7.5)),
        ];
        assert_eq!(default_mode(&slow), Some(slow[0].clone()));
        // Same size and rate: the cheaper format.
        let tie = vec![
            CameraMode::new(MJPG, 640, 480, Some(30.0)),
            CameraMode::new(YUYV, 640, 480, Some(30.0)),
        ];
        assert_eq!(default_mode(&tie), Some(tie[1].clone()));
        assert_eq!(default_mode(&[]), None);
    }

    #[test]
    fn camera_inputs_parse() {
        assert_eq!(parse_camera_input("camera:2"), Some(2));
        assert_eq!(parse_camera_input("camera"), Some(0));
        assert_eq!(parse_camera_input("camera:x"), None);
        assert_eq!(parse_camera_input("cameras.mp4"), None);
        assert_eq!(parse_camera_input("clip.mp4"), None);
        assert_eq!(parse_camera_input("camera:1@640x480"), Some(1));
        let req = |w, h, fps| {
            Some(ModeRequest {
                width: w,
                height: h,
                fps,
            })
        };
        assert_eq!(
            parse_camera_spec("camera:1@640x480"),
            Some((1, req(640, 480, None)))
        );
        assert_eq!(
            parse_camera_spec("camera@1280x720@30"),
            Some((0, req(1280, 720, Some(30.0))))
        );
        assert_eq!(
            parse_camera_spec("camera:0@1280x720@30fps"),
            Some((0, req(1280, 720, Some(30.0))))
        );
        assert_eq!(parse_camera_spec("camera:0@1280"), None);
        assert_eq!(parse_camera_spec("camera:0@0x720"), None);
        assert_eq!(parse_camera_spec("camera:0@640x480@-5"), None);
        assert_eq!(parse_camera_spec("camera:0@640x480@fast"), None);
    }

    #[test]
    fn modes_read_well() {
        let m = CameraMode::new(MJPG, 1280, 720, Some(30.0));
        assert_eq!(m.to_string(), "1280x720 @ 30 fps (MJPG)");
        let m = CameraMode::new(YUYV, 640, 480, Some(7.5));
        assert_eq!(m.to_string(), "640x480 @ 7.50 fps (YUYV)");
    }

    /// Whatever this machine has: the listing is an empty list or cameras with names and at
    /// least one mode each (a capture node that offers no decodable format is left out of
    /// the default choice but still listed).
    #[test]
    fn listing_gives_named_cameras() {
        let cams = list_cameras().unwrap();
        for c in &cams {
            assert!(!c.name.trim().is_empty(), "{c:?}");
            assert!(!c.device.is_empty(), "{c:?}");
        }
        if cams.is_empty() {
            let err = CameraSource::open(&CameraId::Device(0), None)
                .err()
                .unwrap();
            assert!(matches!(err, SourceError::NoCamera), "{err}");
        }
    }
}
