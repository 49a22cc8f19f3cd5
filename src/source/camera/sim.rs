//! A simulated camera: a video file played in real time at its own frame rate, looping, that
//! can be unplugged, replugged and made busy. It behaves as a webcam does towards its
//! reader: frames come at the camera's pace whatever the reader does, a slow reader gets
//! the newest frame (the ones in between are lost, visible as gaps in the frame index), an
//! unplug ends the stream with [`SourceError::CameraLost`], and opening it while unplugged
//! or busy fails as a real camera would.
//!
//! Tests of the live view and the CLI drive it; `--input sim-camera:VIDEO` uses it for demos
//! on a machine without a camera.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use image::RgbImage;

use super::{convert, CameraMode, CameraStream};
use crate::source::{FrameSource, SourceError, VideoSource};

/// Handle to a simulated camera; clones control the same camera.
#[derive(Clone)]
pub struct SimCamera {
    inner: Arc<Inner>,
}

struct Inner {
    index: u32,
    name: String,
    video: PathBuf,
    plugged: AtomicBool,
    busy: AtomicBool,
    /// Incremented by every unplug; a stream opened before an unplug is lost.
    unplugs: AtomicU64,
    /// Frames delivered by all its streams (to tell how many the reader missed).
    delivered: AtomicU64,
}

impl std::fmt::Debug for SimCamera {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimCamera")
            .field("name", &self.inner.name)
            .field("video", &self.inner.video)
            .finish()
    }
}

impl PartialEq for SimCamera {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl SimCamera {
    /// A plugged-in camera numbered `index` that shows `video`.
    pub fn new(index: u32, name: &str, video: &Path) -> SimCamera {
        SimCamera {
            inner: Arc::new(Inner {
                index,
                name: name.to_string(),
                video: video.to_path_buf(),
                plugged: AtomicBool::new(true),
                busy: AtomicBool::new(false),
                unplugs: AtomicU64::new(0),
                delivered: AtomicU64::new(0),
            }),
        }
    }

    pub fn index(&self) -> u32 {
        self.inner.index
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Pulls the cable: open streams end with [`SourceError::CameraLost`]; opening fails.
    pub fn unplug(&self) {
        self.inner.unplugs.fetch_add(1, Ordering::SeqCst);
        self.inner.plugged.store(false, Ordering::SeqCst);
    }

    /// Plugs it back in.
    pub fn replug(&self) {
        self.inner.plugged.store(true, Ordering::SeqCst);
    }

    pub fn is_plugged(&self) -> bool {
        self.inner.plugged.load(Ordering::SeqCst)
    }

    /// Another program holds the camera (`true`): opening fails with
    /// [`SourceError::CameraBusy`].
    pub fn set_busy(&self, busy: bool) {
        self.inner.busy.store(busy, Ordering::SeqCst);
    }

    /// Frames the camera has delivered to readers so far.
    pub fn delivered(&self) -> u64 {
        self.inner.delivered.load(Ordering::SeqCst)
    }

    pub(super) fn open(&self) -> Result<SimStream, SourceError> {
        let index = self.inner.index;
        if !self.is_plugged() {
            return Err(SourceError::Camera {
                index,
                message: format!("'{}' is gone (unplugged?)", self.inner.name),
            });
        }
        if self.inner.busy.load(Ordering::SeqCst) {
            return Err(SourceError::CameraBusy {
                index,
                name: self.inner.name.clone(),
            });
        }
        let video = VideoSource::open(&self.inner.video)?;
        let info = video.info();
        let mode = CameraMode::new(convert::RGB3, info.width, info.height, info.fps);
        let interval = Duration::from_secs_f64(1.0 / info.fps.unwrap_or(25.0).max(1.0));
        Ok(SimStream {
            camera: self.clone(),
            generation: self.inner.unplugs.load(Ordering::SeqCst),
            video,
            mode,
            interval,
            started: None,
            loop_offset: Duration::ZERO,
            loop_base: 0,
            last_in_loop: (0, Duration::ZERO),
            ahead: None,
        })
    }
}

/// A frame read ahead: its sequence number, its due time from the stream start, its pixels.
type Ahead = (u64, Duration, RgbImage);

pub(crate) struct SimStream {
    camera: SimCamera,
    generation: u64,
    video: VideoSource,
    mode: CameraMode,
    interval: Duration,
    /// When the first frame was read (the camera's clock starts streaming then, as a real
    /// camera's first frame comes after it has started up).
    started: Option<Instant>,
    /// Due time of the current loop's first frame.
    loop_offset: Duration,
    /// Sequence number of the current loop's first frame.
    loop_base: u64,
    /// Index and timestamp of the last frame read in this loop.
    last_in_loop: (u64, Duration),
    ahead: Option<Ahead>,
}

impl SimStream {
    fn lost(&self) -> bool {
        self.camera.inner.unplugs.load(Ordering::SeqCst) != self.generation
    }

    /// The next frame of the looping video, with its sequence number and due time.
    fn read(&mut self) -> Result<Ahead, SourceError> {
        for _ in 0..2 {
            match self.video.next_frame() {
                Some(Ok(f)) => {
                    self.last_in_loop = (f.index, f.timestamp);
                    return Ok((
                        self.loop_base + f.index,
                        self.loop_offset + f.timestamp,
                        f.image,
                    ));
                }
                Some(Err(e)) => return Err(e),
                None => {
                    // Loop: the next pass starts one frame interval after the last frame.
                    let (last, ts) = self.last_in_loop;
                    self.loop_base += last + 1;
                    self.loop_offset += ts + self.interval;
                    self.video = VideoSource::open(&self.camera.inner.video)?;
                }
            }
        }
        Err(SourceError::CameraLost {
            index: self.camera.index(),
            message: "the simulated camera's video has no frames".into(),
        })
    }
}

impl CameraStream for SimStream {
    fn capture(&mut self) -> Result<(u64, RgbImage), (SourceError, bool)> {
        let index = self.camera.index();
        let lost = || {
            (
                SourceError::CameraLost {
                    index,
                    message: "unplugged".into(),
                },
                true,
            )
        };
        let fatal = |e: SourceError| (e, true);
        let mut due: Option<Ahead> = None;
        loop {
            if self.lost() {
                return Err(lost());
            }
            let next = match self.ahead.take() {
                Some(a) => a,
                None => self.read().map_err(fatal)?,
            };
            let now = self.started.get_or_insert_with(Instant::now).elapsed();
            if next.1 <= now {
                // Due already: it replaces any older due frame (the newest wins).
                due = Some(next);
                continue;
            }
            if let Some((seq, _, img)) = due {
                self.ahead = Some(next);
                self.camera.inner.delivered.fetch_add(1, Ordering::SeqCst);
                return Ok((seq, img));
            }
            // Nothing due yet: wait for this one, watching the cable.
            let wait = next.1 - now;
            std::thread::sleep(wait.min(Duration::from_millis(10)));
            self.ahead = Some(next);
        }
    }

    fn mode(&self) -> Option<CameraMode> {
        Some(self.mode.clone())
    }

    fn name(&self) -> String {
        self.camera.name().to_string()
    }
}
