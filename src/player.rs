//! Playback of a frame source on its own thread: play, pause, step and seek, feeding the
//! inference [`Worker`](crate::pipeline::Worker) through its newest-frame-wins mailbox.
//!
//! The UI sends [`PlayerCommand`]s and reads [`PlayerEvent`]s; it never touches the source
//! itself, so opening or decoding a video never blocks it.

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

use crate::pipeline::Submitter;
use crate::source::{self, FrameSource, SourceError};

/// What the player is asked to do.
#[derive(Clone, Debug)]
pub enum PlayerCommand {
    Play,
    Pause,
    /// Move by this many frames (negative steps back) and pause there.
    Step(i64),
    /// Jump to this frame and pause there.
    Seek(u64),
    /// Send frames to another worker from now on (the model or its settings changed); the
    /// source, its position and the play state are kept.
    Retarget(Submitter),
}

/// What the player reports.
#[derive(Clone, Debug, PartialEq)]
pub enum PlayerEvent {
    /// The source is open.
    Opened {
        description: String,
        frames: Option<u64>,
    },
    /// This frame was handed to the worker.
    Position(u64),
    Playing(bool),
    /// The end of the source was reached.
    Ended,
    /// A frame or the source failed (already formatted for people).
    Error(String),
    /// The camera was lost (unplugged, silent); the player keeps trying to reopen it and
    /// reports [`PlayerEvent::Opened`] when it is back.
    Disconnected(String),
}

/// Where frames come from.
#[derive(Clone, Debug, PartialEq)]
pub enum PlayerInput {
    Path(PathBuf),
    /// The bundled sample photo.
    Sample,
    /// The bundled sample clip (what the app opens on first start).
    SampleClip,
    /// A camera, in this mode (its default mode when `None`).
    Camera {
        id: crate::source::CameraId,
        mode: Option<crate::source::CameraMode>,
    },
}

/// A running player.
#[derive(Debug)]
pub struct Player {
    commands: Sender<PlayerCommand>,
    events: Receiver<PlayerEvent>,
}

/// Frame interval while playing sources that have no frame rate (folders, webcams).
const DEFAULT_INTERVAL: Duration = Duration::from_millis(100);

impl Player {
    /// Opens `input` on a new thread and shows its first frame. `wake` is called after every
    /// event (e.g. to request a UI repaint).
    pub fn spawn(input: PlayerInput, submit: Submitter, wake: impl Fn() + Send + 'static) -> Self {
        let (commands, cmd_rx) = mpsc::channel();
        let (ev_tx, events) = mpsc::channel();
        let spawned = thread::Builder::new()
            .name("posescope-player".into())
            .spawn(move || {
                let mut state = PlayerThread {
                    input,
                    source: None,
                    next: 0,
                    submit,
                    events: ev_tx,
                    wake: Box::new(wake),
                    last_timestamp: None,
                    interval: DEFAULT_INTERVAL,
                    lost: false,
                };
                state.run(cmd_rx);
            });
        if let Err(e) = spawned {
            let (tx, rx) = mpsc::channel();
            let _ = tx.send(PlayerEvent::Error(format!(
                "cannot start the player thread: {e}"
            )));
            return Self {
                commands,
                events: rx,
            };
        }
        Self { commands, events }
    }

    pub fn send(&self, cmd: PlayerCommand) {
        let _ = self.commands.send(cmd);
    }

    /// Events since the last call.
    pub fn poll(&self) -> Vec<PlayerEvent> {
        self.events.try_iter().collect()
    }
}

struct PlayerThread {
    input: PlayerInput,
    source: Option<Box<dyn FrameSource>>,
    /// Index of the next frame the source will yield.
    next: u64,
    submit: Submitter,
    events: Sender<PlayerEvent>,
    wake: Box<dyn Fn() + Send>,
    /// Timestamp of the last frame handed out, to pace playback at the source's rate.
    last_timestamp: Option<Duration>,
    /// Time between the last two frames (the playback interval).
    interval: Duration,
    /// The camera was lost; it is reopened every [`RECONNECT_INTERVAL`] while playing.
    lost: bool,
}

/// How often a lost camera is looked for.
pub const RECONNECT_INTERVAL: Duration = Duration::from_millis(500);

impl PlayerThread {
    fn emit(&self, ev: PlayerEvent) -> bool {
        let ok = self.events.send(ev).is_ok();
        (self.wake)();
        ok
    }

    fn open(&mut self) -> Result<(), SourceError> {
        let src: Box<dyn FrameSource> = match &self.input {
            PlayerInput::Path(p) => source::open(p)?,
            PlayerInput::Sample => Box::new(source::SampleImageSource::new()?),
            PlayerInput::SampleClip => {
                match source::SampleClipSource::open() {
                    Ok(clip) => Box::new(clip),
                    Err(e) => {
                        // Without ffmpeg (or a writable cache) the photo still shows a result.
                        self.emit(PlayerEvent::Error(format!(
                            "cannot play the sample clip ({e}); showing the sample photo"
                        )));
                        Box::new(source::SampleImageSource::new()?)
                    }
                }
            }
            PlayerInput::Camera { id, mode } => {
                Box::new(source::CameraSource::open(id, mode.as_ref())?)
            }
        };
        self.source = Some(src);
        self.next = 0;
        Ok(())
    }

    /// Decodes the next frame and hands it to the worker. `false` at the end or on a fatal
    /// error.
    fn advance(&mut self) -> bool {
        let Some(src) = self.source.as_mut() else {
            return false;
        };
        match src.next_frame() {
            None => {
                self.emit(PlayerEvent::Ended);
                false
            }
            Some(Ok(frame)) => {
                let index = frame.index;
                self.next = index + 1;
                if let Some(prev) = self.last_timestamp {
                    let dt = frame.timestamp.saturating_sub(prev);
                    self.interval = if dt > Duration::ZERO && dt < Duration::from_secs(2) {
                        dt
                    } else {
                        DEFAULT_INTERVAL
                    };
                }
                self.last_timestamp = Some(frame.timestamp);
                self.submit.submit(frame);
                self.emit(PlayerEvent::Position(index))
            }
            Some(Err(e)) => {
                self.next += 1;
                let fatal = e.is_fatal();
                if fatal && matches!(self.input, PlayerInput::Camera { .. }) {
                    // Keep playing: the camera is reopened when it comes back.
                    self.source = None;
                    self.lost = true;
                    return self.emit(PlayerEvent::Disconnected(e.to_string()));
                }
                self.emit(PlayerEvent::Error(e.to_string()));
                !fatal
            }
        }
    }

    fn seek(&mut self, index: u64) -> bool {
        let direct = self.source.as_mut().is_some_and(|s| s.seek(index));
        if !direct {
            // Reopen and skip (videos): correct for any source, slower for long jumps.
            if index < self.next || self.source.is_none() {
                if let Err(e) = self.open() {
                    self.emit(PlayerEvent::Error(e.to_string()));
                    return false;
                }
            }
            while self.next < index {
                match self.source.as_mut().and_then(|s| s.next_frame()) {
                    Some(Ok(f)) => self.next = f.index + 1,
                    Some(Err(_)) => self.next += 1,
                    None => break,
                }
            }
        } else {
            self.next = index;
        }
        self.advance()
    }

    /// Tells the UI what is open.
    fn announce(&self) -> bool {
        let (description, frames) = match &self.source {
            Some(s) => (s.describe(), s.len_hint()),
            None => return false,
        };
        self.emit(PlayerEvent::Opened {
            description,
            frames,
        })
    }

    /// Tries to reopen a lost camera; true when it is back.
    fn reconnect(&mut self) -> bool {
        if self.open().is_err() {
            return false;
        }
        self.lost = false;
        self.last_timestamp = None;
        self.announce()
    }

    fn run(&mut self, commands: Receiver<PlayerCommand>) {
        if let Err(e) = self.open() {
            self.emit(PlayerEvent::Error(e.to_string()));
            return;
        }
        if !self.announce() {
            return;
        }
        self.advance();
        // A camera plays as soon as it is open.
        let mut playing = matches!(self.input, PlayerInput::Camera { .. });
        if playing {
            self.emit(PlayerEvent::Playing(true));
        }
        let mut due = Instant::now();
        loop {
            let cmd = if playing {
                match commands.recv_timeout(due.saturating_duration_since(Instant::now())) {
                    Ok(c) => Some(c),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            } else {
                match commands.recv() {
                    Ok(c) => Some(c),
                    Err(_) => return,
                }
            };
            match cmd {
                None if self.lost => {
                    due = Instant::now() + RECONNECT_INTERVAL;
                    if self.reconnect() {
                        due = Instant::now();
                    }
                }
                None => {
                    due += self.interval;
                    if due < Instant::now() {
                        due = Instant::now();
                    }
                    if !self.advance() {
                        playing = false;
                        self.emit(PlayerEvent::Playing(false));
                    }
                }
                Some(PlayerCommand::Play) => {
                    playing = true;
                    due = Instant::now();
                    self.emit(PlayerEvent::Playing(true));
                }
                Some(PlayerCommand::Pause) => {
                    playing = false;
                    self.emit(PlayerEvent::Playing(false));
                }
                Some(PlayerCommand::Step(delta)) => {
                    playing = false;
                    self.emit(PlayerEvent::Playing(false));
                    let current = self.next.saturating_sub(1);
                    let target = if delta >= 0 {
                        current.saturating_add(delta.unsigned_abs())
                    } else {
                        current.saturating_sub(delta.unsigned_abs())
                    };
                    if target == self.next {
                        self.advance();
                    } else {
                        self.seek(target);
                    }
                }
                Some(PlayerCommand::Retarget(submit)) => {
                    self.submit = submit;
                }
                Some(PlayerCommand::Seek(i)) => {
                    playing = false;
                    self.emit(PlayerEvent::Playing(false));
                    self.seek(i);
                }
            }
        }
    }
}
