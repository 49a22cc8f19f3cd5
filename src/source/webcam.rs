//! Live camera frames through nokhwa (feature `webcam`).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use image::RgbImage;

use nokhwa::pixel_format::RgbFormat;
use nokhwa::utils::{ApiBackend, CameraIndex, RequestedFormat, RequestedFormatType, Resolution};
use nokhwa::Camera;

use super::{Frame, FrameSource, SourceError};

/// A camera found on the system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CameraInfo {
    /// Index to pass to [`WebcamSource::open`].
    pub index: u32,
    /// Human-readable name.
    pub name: String,
}

/// Runs a nokhwa call; its error, or a panic inside it, becomes a message.
fn guarded<T>(f: impl FnOnce() -> Result<T, nokhwa::NokhwaError>) -> Result<T, String> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("the camera backend crashed".to_string()),
    }
}

/// [`guarded`] for camera `index`, with `what` failed as context.
fn on_camera<T>(
    index: u32,
    what: &str,
    f: impl FnOnce() -> Result<T, nokhwa::NokhwaError>,
) -> Result<T, SourceError> {
    guarded(f).map_err(|e| SourceError::Camera {
        index,
        message: format!("{what}: {e}"),
    })
}

/// Lists the cameras the native backend can see (an empty list when there are none).
///
/// # Errors
/// [`SourceError::CameraList`] when the system cannot be queried (no backend, no permission).
pub fn list_cameras() -> Result<Vec<CameraInfo>, SourceError> {
    let found = guarded(|| nokhwa::query(ApiBackend::Auto))
        .map_err(|message| SourceError::CameraList { message })?;
    Ok(found
        .iter()
        .enumerate()
        .map(|(pos, cam)| CameraInfo {
            index: cam
                .index()
                .as_index()
                .unwrap_or_else(|_| u32::try_from(pos).unwrap_or(u32::MAX)),
            name: cam.human_name(),
        })
        .collect())
}

/// One capture from the camera thread: the frame and its time, or an error and whether
/// the stream is over.
type Capture = Result<(Duration, RgbImage), (SourceError, bool)>;

/// Frames from a live camera, 8-bit RGB.
///
/// nokhwa's `Camera` is not `Send`, so it lives on a thread of its own for its whole life;
/// [`FrameSource::next_frame`] asks that thread for one frame and waits for it.
/// Frames carry their capture index, the time elapsed since the stream opened, no path, and
/// `output_stem` = `webcam_<index:06>`. A frame that fails to decode yields an `Err` item and
/// the stream goes on; a failed capture (camera unplugged) yields an `Err` item and ends it.
#[derive(Debug)]
pub struct WebcamSource {
    index: u32,
    description: String,
    requests: Option<Sender<()>>,
    captures: Receiver<Capture>,
    thread: Option<JoinHandle<()>>,
    next_index: u64,
    failed: bool,
}

/// Opens the camera on the current (camera) thread; returns it with its description.
fn open_camera(
    index: u32,
    resolution: Option<(u32, u32)>,
) -> Result<(Camera, String), SourceError> {
    let (kind, what) = match resolution {
        Some((w, h)) => (
            RequestedFormatType::HighestResolution(Resolution::new(w, h)),
            format!("cannot open it at {w}x{h}"),
        ),
        None => (
            RequestedFormatType::AbsoluteHighestFrameRate,
            "cannot open it".to_string(),
        ),
    };
    let requested = RequestedFormat::new::<RgbFormat>(kind);
    let mut camera = on_camera(index, &what, || {
        Camera::new(CameraIndex::Index(index), requested)
    })?;
    on_camera(index, "cannot start streaming", || camera.open_stream())?;
    let format = camera.camera_format();
    let description = format!(
        "webcam {index} '{}' ({}x{}, {} fps, {})",
        camera.info().human_name(),
        format.width(),
        format.height(),
        format.frame_rate(),
        format.format()
    );
    Ok((camera, description))
}

/// One frame from an open camera.
fn capture(index: u32, camera: &mut Camera, started: Instant) -> Capture {
    let buffer = on_camera(index, "camera lost or stopped delivering frames", || {
        camera.frame()
    })
    .map_err(|e| (e, true))?;
    let timestamp = started.elapsed();
    let image = guarded(|| buffer.decode_image::<RgbFormat>())
        .map_err(|message| (SourceError::CameraFrame { index, message }, false))?;
    Ok((timestamp, image))
}

/// Body of the camera thread: open, report, then serve one capture per request until the
/// request channel closes (the source was dropped) or the answer cannot be delivered.
fn camera_thread(
    index: u32,
    resolution: Option<(u32, u32)>,
    opened: Sender<Result<String, SourceError>>,
    requests: Receiver<()>,
    captures: Sender<Capture>,
) {
    let mut camera = match open_camera(index, resolution) {
        Ok((camera, description)) => {
            if opened.send(Ok(description)).is_err() {
                return;
            }
            camera
        }
        Err(e) => {
            let _ = opened.send(Err(e));
            return;
        }
    };
    let started = Instant::now();
    for () in requests {
        if captures.send(capture(index, &mut camera, started)).is_err() {
            break;
        }
    }
}

impl WebcamSource {
    /// Opens camera `index` and starts streaming, at `resolution` (width, height) when given
    /// (highest frame rate at that size), else at the camera's highest frame rate.
    ///
    /// # Errors
    /// [`SourceError::NoCamera`] when the system has no camera at all, [`SourceError::Camera`]
    /// when this one cannot be opened, does not support the resolution, or will not stream.
    pub fn open(index: u32, resolution: Option<(u32, u32)>) -> Result<WebcamSource, SourceError> {
        // An empty list means no camera; a failed query is not conclusive, so try anyway.
        if list_cameras().is_ok_and(|cams| cams.is_empty()) {
            return Err(SourceError::NoCamera);
        }
        let (opened_tx, opened_rx) = mpsc::channel();
        let (req_tx, req_rx) = mpsc::channel();
        let (cap_tx, cap_rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(format!("webcam-{index}"))
            .spawn(move || camera_thread(index, resolution, opened_tx, req_rx, cap_tx))
            .map_err(|e| SourceError::Camera {
                index,
                message: format!("cannot start the capture thread: {e}"),
            })?;
        let description = match opened_rx.recv() {
            Ok(Ok(description)) => description,
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(SourceError::Camera {
                    index,
                    message: "the capture thread stopped while opening the camera".to_string(),
                });
            }
        };
        Ok(WebcamSource {
            index,
            description,
            requests: Some(req_tx),
            captures: cap_rx,
            thread: Some(thread),
            next_index: 0,
            failed: false,
        })
    }
}

impl FrameSource for WebcamSource {
    fn next_frame(&mut self) -> Option<Result<Frame, SourceError>> {
        if self.failed {
            return None;
        }
        let answer = match self.requests.as_ref().map(|r| r.send(())) {
            Some(Ok(())) => self.captures.recv().ok(),
            _ => None,
        };
        match answer {
            Some(Ok((timestamp, image))) => {
                let index = self.next_index;
                self.next_index += 1;
                Some(Ok(Frame {
                    index,
                    timestamp,
                    image,
                    path: None,
                    output_stem: format!("webcam_{index:06}"),
                }))
            }
            Some(Err((e, fatal))) => {
                self.failed = fatal;
                Some(Err(e))
            }
            None => {
                self.failed = true;
                Some(Err(SourceError::Camera {
                    index: self.index,
                    message: "the capture thread stopped".to_string(),
                }))
            }
        }
    }

    fn len_hint(&self) -> Option<u64> {
        None
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}

impl Drop for WebcamSource {
    fn drop(&mut self) {
        // Closing the request channel ends the thread, which drops (and closes) the camera.
        self.requests = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn listing_cameras_gives_named_devices_or_a_clear_error() {
        match list_cameras() {
            Ok(cams) => {
                println!("cameras: {cams:?}");
                for c in &cams {
                    assert!(!c.name.trim().is_empty(), "a camera without a name: {c:?}");
                }
            }
            Err(e) => {
                let msg = e.to_string();
                println!("cannot list cameras: {msg}");
                assert!(msg.to_lowercase().contains("camera"), "{msg}");
            }
        }
    }

    #[test]
    fn missing_camera_is_an_error() {
        let err = WebcamSource::open(99, None).err().unwrap();
        let msg = err.to_string();
        assert!(msg.contains("camera"), "{msg}");
        eprintln!("{msg}");
        let err = WebcamSource::open(99, Some((640, 480))).err().unwrap();
        eprintln!("{err}");
    }
}
