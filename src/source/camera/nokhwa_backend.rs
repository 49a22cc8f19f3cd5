//! Cameras through nokhwa's native backends: AVFoundation on macOS, Media Foundation on
//! Windows, and on Linux with the `nokhwa` feature (its V4L2 bindings need libclang).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;

use image::RgbImage;

use nokhwa::pixel_format::RgbFormat;
use nokhwa::utils::{ApiBackend, CameraIndex, RequestedFormat, RequestedFormatType, Resolution};
use nokhwa::Camera;

use super::{CameraInfo, CameraMode, CameraStream};
use crate::source::SourceError;

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
pub(super) fn list() -> Result<Vec<CameraInfo>, SourceError> {
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
            device: cam.description().to_string(),
            modes: Vec::new(),
        })
        .collect())
}

/// One capture from the camera thread: the frame and its sequence number, or an error and
/// whether the stream is over.
type Capture = Result<(u64, RgbImage), (SourceError, bool)>;

/// A nokhwa camera. Its `Camera` is not `Send`, so it lives on a thread of its own for its
/// whole life; [`CameraStream::capture`] asks that thread for one frame and waits for it.
pub(super) struct NokhwaStream {
    index: u32,
    name: String,
    mode: Option<CameraMode>,
    requests: Option<Sender<()>>,
    captures: Receiver<Capture>,
    thread: Option<JoinHandle<()>>,
}

/// What the camera thread reports once the camera is open.
type Opened = Result<(String, Option<CameraMode>), SourceError>;

/// Opens the camera on the current (camera) thread.
fn open_camera(
    index: u32,
    mode: Option<&CameraMode>,
) -> Result<(Camera, String, Option<CameraMode>), SourceError> {
    let (kind, what) = match mode {
        Some(m) => (
            RequestedFormatType::HighestResolution(Resolution::new(m.width, m.height)),
            format!("cannot open it at {}x{}", m.width, m.height),
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
    let fourcc = u32::from_le_bytes(
        format!("{:<4}", format.format().to_string())
            .as_bytes()
            .get(..4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .unwrap_or(*b"????"),
    );
    let chosen = CameraMode::new(
        fourcc,
        format.width(),
        format.height(),
        Some(f64::from(format.frame_rate())),
    );
    let name = camera.info().human_name();
    Ok((camera, name, Some(chosen)))
}

/// One frame from an open camera.
fn capture(index: u32, camera: &mut Camera, sequence: u64) -> Capture {
    let buffer = on_camera(index, "camera lost or stopped delivering frames", || {
        camera.frame()
    })
    .map_err(|e| {
        let message = e.to_string();
        (SourceError::CameraLost { index, message }, true)
    })?;
    let image = guarded(|| buffer.decode_image::<RgbFormat>())
        .map_err(|message| (SourceError::CameraFrame { index, message }, false))?;
    Ok((sequence, image))
}

/// Body of the camera thread: open, report, then serve one capture per request until the
/// request channel closes (the stream was dropped) or the answer cannot be delivered.
fn camera_thread(
    index: u32,
    mode: Option<CameraMode>,
    opened: Sender<Opened>,
    requests: Receiver<()>,
    captures: Sender<Capture>,
) {
    let mut camera = match open_camera(index, mode.as_ref()) {
        Ok((camera, name, chosen)) => {
            if opened.send(Ok((name, chosen))).is_err() {
                return;
            }
            camera
        }
        Err(e) => {
            let _ = opened.send(Err(e));
            return;
        }
    };
    for (sequence, ()) in (0u64..).zip(requests) {
        if captures
            .send(capture(index, &mut camera, sequence))
            .is_err()
        {
            break;
        }
    }
}

impl NokhwaStream {
    /// Opens camera `index` at `mode`'s size when given (highest frame rate at that size),
    /// else at the camera's highest frame rate.
    pub(super) fn open(index: u32, mode: Option<&CameraMode>) -> Result<NokhwaStream, SourceError> {
        // An empty list means no camera; a failed query is not conclusive, so try anyway.
        if list().is_ok_and(|cams| cams.is_empty()) {
            return Err(SourceError::NoCamera);
        }
        let (opened_tx, opened_rx) = mpsc::channel();
        let (req_tx, req_rx) = mpsc::channel();
        let (cap_tx, cap_rx) = mpsc::channel();
        let wanted = mode.cloned();
        let thread = std::thread::Builder::new()
            .name(format!("camera-{index}"))
            .spawn(move || camera_thread(index, wanted, opened_tx, req_rx, cap_tx))
            .map_err(|e| SourceError::Camera {
                index,
                message: format!("cannot start the capture thread: {e}"),
            })?;
        let (name, chosen) = match opened_rx.recv() {
            Ok(Ok(opened)) => opened,
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
        Ok(NokhwaStream {
            index,
            name,
            mode: chosen,
            requests: Some(req_tx),
            captures: cap_rx,
            thread: Some(thread),
        })
    }
}

impl CameraStream for NokhwaStream {
    fn capture(&mut self) -> Capture {
        let answer = match self.requests.as_ref().map(|r| r.send(())) {
            Some(Ok(())) => self.captures.recv().ok(),
            _ => None,
        };
        answer.unwrap_or_else(|| {
            Err((
                SourceError::CameraLost {
                    index: self.index,
                    message: "the capture thread stopped".to_string(),
                },
                true,
            ))
        })
    }

    fn mode(&self) -> Option<CameraMode> {
        self.mode.clone()
    }

    fn name(&self) -> String {
        self.name.clone()
    }
}

impl Drop for NokhwaStream {
    fn drop(&mut self) {
        // Closing the request channel ends the thread, which drops (and closes) the camera.
        self.requests = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
