//! The live pipeline as a reusable runner: capture → prepare → network, each on its own
//! thread, always working on the newest frame.
//!
//! - The **capture** thread pulls frames from the source as fast as it delivers them (a
//!   camera, or a video paced by [`crate::source::Paced`]), stamps each with the instant it
//!   arrived, and puts it in a newest-frame-wins [`LatestSlot`]: frames the rest of the
//!   pipeline has no time for are replaced there and counted as dropped.
//! - The **prepare** thread resizes and lays out the newest frame for the network
//!   ([`Pipeline::prepare_whole`]) while the network still runs on the previous one. It
//!   starts just in time, when the network is expected to finish minus the preparation's
//!   own time (medians of the last few frames), so the frame it takes is as fresh as
//!   possible and no frame is prepared only to be dropped.
//! - The **inference** thread runs the network and the decoding on the prepared input
//!   ([`Pipeline::run_ahead`]) and reports every result with its latency: the result's
//!   instant minus the frame's capture instant.
//!
//! With [`LiveOptions::workers`] above 1 (the default on a machine with two cores or more),
//! several inference threads each take the newest frame, prepare it and run the network on
//! it, started a fraction of the network's time apart: frame-level parallelism keeps every
//! core busy through the network's serial parts, which splitting one forward pass over the
//! cores cannot. A result older than one already reported (a later frame finished first) is
//! dropped, so results still arrive in capture order. Temporal models (UniPose-LSTM, whose
//! state runs from frame to frame) always get one worker.
//!
//! [`LiveRun`] is an iterator of results; it ends when the source ends, after
//! [`LiveOptions::max_frames`] results, or when a [`StopHandle`] says stop.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::worker::{worker_pool, Pacer, Recent};
use super::{LatestSlot, Pipeline, PipelineError, WholeInput};
use crate::inspection::Inspection;
use crate::source::{Frame, FrameSource, SourceError};

mod stats;
use stats::Samples;
pub use stats::{LiveStats, StageMedian};

/// How a live run is organised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveOptions {
    /// Prepare the next frame on its own thread while the network runs (default). Off: the
    /// inference thread prepares each frame itself, as [`Pipeline::run`] does.
    pub overlap: bool,
    /// Stop after this many results (frames processed or failed).
    pub max_frames: Option<u64>,
    /// Inference threads working on successive frames at once (see the module docs). With
    /// more than one, each prepares its own frame and `overlap` does not apply.
    pub workers: usize,
}

impl Default for LiveOptions {
    fn default() -> Self {
        Self {
            overlap: true,
            max_frames: None,
            workers: default_workers(),
        }
    }
}

/// Two inference workers on a machine with two cores or more, else one.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(2))
}

/// What can go wrong in a live run. Errors of one frame are reported and the run goes on;
/// a fatal source error ends it.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("live source: {0}")]
    Source(#[from] SourceError),
    #[error("live pipeline: {0}")]
    Pipeline(#[from] PipelineError),
    #[error("cannot start the live {stage} thread: {source}")]
    Spawn {
        stage: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// One processed frame.
#[derive(Debug)]
pub struct LiveResult {
    pub inspection: Inspection,
    /// When the source delivered the frame.
    pub captured_at: Instant,
    /// From the frame's delivery to its result.
    pub latency: Duration,
}

impl LiveResult {
    /// The processed frame (its image copied out of the inspection) and the inspection.
    pub fn into_parts(self) -> (Frame, Inspection) {
        let i = &self.inspection;
        let frame = Frame {
            index: i.frame.index,
            timestamp: i.frame.timestamp,
            image: (*i.image).clone(),
            path: i.frame.path.clone(),
            output_stem: i.frame.output_stem.clone(),
        };
        (frame, self.inspection)
    }
}

/// A frame as delivered.
struct Captured {
    frame: Frame,
    at: Instant,
}

/// A frame ready for the network.
struct Ready {
    frame: Frame,
    input: Option<WholeInput>,
    captured_at: Instant,
    /// Waiting for the prepare thread, and preparing.
    waited: Duration,
    prepare: Duration,
    ready_at: Instant,
}

/// State shared by the three threads and the handles.
struct Shared {
    stop: AtomicBool,
    captured: LatestSlot<Captured>,
    ready: LatestSlot<Ready>,
    delivered: AtomicU64,
    errors: AtomicU64,
    clock: Clock,
    samples: Mutex<Samples>,
    started: Instant,
    finished: Mutex<Option<Instant>>,
    /// Several workers: their turns.
    pace: Pacer,
    /// Several workers: the capture instant of the newest frame reported, and how many
    /// results were reported (checked and updated together, so results stay in order).
    reported: Mutex<Reported>,
    /// Results dropped because a newer frame had already been reported.
    late: AtomicU64,
    /// Several workers: how many are still running.
    working: AtomicUsize,
}

#[derive(Default)]
struct Reported {
    newest: Option<Instant>,
    count: u64,
}

/// When the network took its current input, and how long the stages take: the prepare
/// thread's schedule.
#[derive(Default)]
struct Clock {
    state: Mutex<ClockState>,
    changed: Condvar,
}

#[derive(Default)]
struct ClockState {
    /// Inputs the network has taken, and when it took the last.
    taken: u64,
    taken_at: Option<Instant>,
    infer: Recent,
    prepare: Recent,
}

/// Starting a preparation this much earlier than strictly needed absorbs jitter.
const PREPARE_MARGIN: Duration = Duration::from_millis(2);

impl Clock {
    fn lock(&self) -> std::sync::MutexGuard<'_, ClockState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn taken(&self, at: Instant) {
        let mut s = self.lock();
        s.taken += 1;
        s.taken_at = Some(at);
        self.changed.notify_all();
    }

    fn record(&self, infer: Option<Duration>, prepare: Option<Duration>) {
        let mut s = self.lock();
        if let Some(d) = infer {
            s.infer.push(d);
        }
        if let Some(d) = prepare {
            s.prepare.push(d);
        }
    }

    /// Waits until the network has taken `puts` inputs, then until the instant a new
    /// preparation should start. Returns early when `stop` is set.
    fn wait_turn(&self, puts: u64, stop: &AtomicBool) {
        let mut s = self.lock();
        while s.taken < puts && !stop.load(Ordering::Relaxed) {
            s = self.changed.wait(s).unwrap_or_else(|p| p.into_inner());
        }
        let due = match (s.taken_at, s.infer.median(), s.prepare.median()) {
            (Some(at), Some(infer), Some(prepare)) => {
                at + infer.saturating_sub(prepare + PREPARE_MARGIN)
            }
            _ => return,
        };
        drop(s);
        let now = Instant::now();
        if due > now && !stop.load(Ordering::Relaxed) {
            thread::sleep(due - now);
        }
    }
}

impl Shared {
    fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        self.captured.close();
        self.ready.close();
        let _guard = self.clock.lock();
        self.clock.changed.notify_all();
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn stats(&self) -> LiveStats {
        let end = self
            .finished
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .unwrap_or_else(Instant::now);
        let samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        samples.stats(stats::Counts {
            delivered: self.delivered.load(Ordering::Relaxed),
            dropped: self.captured.dropped()
                + self.ready.dropped()
                + self.late.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            wall: end.saturating_duration_since(self.started),
        })
    }
}

/// Stops a [`LiveRun`] from any thread: no new frame is taken; the run's iterator ends
/// once the frame in progress (if any) is reported.
#[derive(Clone)]
pub struct StopHandle(Arc<Shared>);

impl StopHandle {
    pub fn stop(&self) {
        self.0.stop();
    }

    pub fn is_stopped(&self) -> bool {
        self.0.stopped()
    }
}

impl std::fmt::Debug for StopHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StopHandle")
            .field("stopped", &self.0.stopped())
            .finish()
    }
}

/// A running live pipeline: iterate it for results (see the module docs).
pub struct LiveRun {
    shared: Arc<Shared>,
    results: mpsc::Receiver<Result<LiveResult, LiveError>>,
    threads: Vec<thread::JoinHandle<()>>,
}

type Results = mpsc::Sender<Result<LiveResult, LiveError>>;

impl LiveRun {
    /// Starts the capture, prepare and inference threads on `source`.
    pub fn start(
        pipeline: Pipeline,
        source: Box<dyn FrameSource>,
        options: LiveOptions,
    ) -> Result<Self, LiveError> {
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            captured: LatestSlot::new(),
            ready: LatestSlot::new(),
            delivered: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            clock: Clock::default(),
            samples: Mutex::new(Samples::default()),
            started: Instant::now(),
            finished: Mutex::new(None),
            pace: Pacer::default(),
            reported: Mutex::new(Reported::default()),
            late: AtomicU64::new(0),
            working: AtomicUsize::new(0),
        });
        let workers = if pipeline.model().is_temporal() {
            1
        } else {
            options.workers.max(1)
        };
        let (tx, results) = mpsc::channel();
        let mut run = Self {
            shared,
            results,
            threads: Vec::new(),
        };
        let (s, t) = (Arc::clone(&run.shared), tx.clone());
        run.spawn("capture", move || capture(source, &s, &t))?;
        if workers > 1 {
            run.shared.working.store(workers, Ordering::Release);
            for _ in 0..workers {
                let (s, t, p) = (Arc::clone(&run.shared), tx.clone(), pipeline.clone());
                run.spawn("inference", move || {
                    infer_parallel(&p, &s, &t, options.max_frames, workers)
                })?;
            }
            return Ok(run);
        }
        if options.overlap {
            let (s, t, p) = (Arc::clone(&run.shared), tx.clone(), pipeline.clone());
            run.spawn("prepare", move || prepare(&p, &s, &t))?;
        }
        let s = Arc::clone(&run.shared);
        run.spawn("inference", move || infer(&pipeline, &s, &tx, options))?;
        Ok(run)
    }

    fn spawn(
        &mut self,
        stage: &'static str,
        f: impl FnOnce() + Send + 'static,
    ) -> Result<(), LiveError> {
        let handle = thread::Builder::new()
            .name(format!("posescope-live-{stage}"))
            .spawn(f)
            .map_err(|source| {
                self.shared.stop();
                LiveError::Spawn { stage, source }
            })?;
        self.threads.push(handle);
        Ok(())
    }

    /// A handle that stops this run from another thread.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle(Arc::clone(&self.shared))
    }

    /// The statistics so far.
    pub fn stats(&self) -> LiveStats {
        self.shared.stats()
    }

    /// Stops the run, waits for its threads and returns the final statistics. Results not
    /// yet taken from the iterator are discarded.
    pub fn finish(mut self) -> LiveStats {
        self.shared.stop();
        for h in self.threads.drain(..) {
            let _ = h.join();
        }
        self.shared.stats()
    }
}

impl Iterator for LiveRun {
    type Item = Result<LiveResult, LiveError>;

    /// The next result, in processing order (frame indices only increase); `None` once
    /// every thread has ended.
    fn next(&mut self) -> Option<Self::Item> {
        self.results.recv().ok()
    }
}

impl Drop for LiveRun {
    /// Stops the threads without waiting for them (a camera read may block a little).
    fn drop(&mut self) {
        self.shared.stop();
    }
}

/// The capture thread: every delivered frame goes into the newest-frame-wins slot.
fn capture(mut source: Box<dyn FrameSource>, shared: &Shared, results: &Results) {
    while !shared.stopped() {
        match source.next_frame() {
            Some(Ok(frame)) => {
                let at = Instant::now();
                shared.delivered.fetch_add(1, Ordering::Relaxed);
                shared.captured.put(Captured { frame, at });
            }
            Some(Err(e)) => {
                let fatal = e.is_fatal();
                shared.errors.fetch_add(1, Ordering::Relaxed);
                if results.send(Err(e.into())).is_err() || fatal {
                    break;
                }
            }
            None => break,
        }
    }
    shared.captured.close();
}

/// The prepare thread: just in time for the network, the newest frame, prepared.
fn prepare(pipeline: &Pipeline, shared: &Shared, results: &Results) {
    let mut puts = 0;
    loop {
        shared.clock.wait_turn(puts, &shared.stop);
        let t0 = Instant::now();
        let Some(c) = shared.captured.take() else {
            break;
        };
        if shared.stopped() {
            break;
        }
        let t1 = Instant::now();
        match pipeline.prepare_whole(&c.frame) {
            Ok(input) => {
                let prepare = t1.elapsed();
                shared.clock.record(None, Some(prepare));
                shared.ready.put(Ready {
                    frame: c.frame,
                    input,
                    captured_at: c.at,
                    waited: t0.saturating_duration_since(c.at),
                    prepare,
                    ready_at: Instant::now(),
                });
                puts += 1;
            }
            Err(e) => {
                shared.errors.fetch_add(1, Ordering::Relaxed);
                if results.send(Err(e.into())).is_err() {
                    break;
                }
            }
        }
    }
    shared.ready.close();
}

/// The inference thread: the network and decoding on the newest ready frame.
fn infer(pipeline: &Pipeline, shared: &Shared, results: &Results, options: LiveOptions) {
    let mut done = 0u64;
    while let Some(r) = next_ready(shared, options.overlap) {
        if shared.stopped() {
            break;
        }
        let started = Instant::now();
        shared.clock.taken(started);
        let queued = started.saturating_duration_since(r.ready_at);
        let out = pipeline.run_ahead(r.frame, r.input);
        let finished = Instant::now();
        shared.clock.record(Some(finished - started), None);
        let before = [r.waited, r.prepare, queued];
        let sent = report(shared, results, out, r.captured_at, finished, before);
        done += 1;
        if !sent || options.max_frames.is_some_and(|n| done >= n) {
            break;
        }
    }
    *shared.finished.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    shared.stop();
}

/// One of several inference workers: in turn, the newest delivered frame, prepared and run
/// here; results older than one already reported are dropped. The run ends when the last
/// worker leaves (the source ended), or at once after `max_frames` results or when nobody
/// takes the results any more.
fn infer_parallel(
    pipeline: &Pipeline,
    shared: &Shared,
    results: &Results,
    max_frames: Option<u64>,
    workers: usize,
) {
    let pool = worker_pool(workers);
    let mut end_run = false;
    loop {
        shared.pace.wait_turn(workers, &shared.stop);
        let Some(c) = shared.captured.take() else {
            break;
        };
        if shared.stopped() {
            break;
        }
        let started = Instant::now();
        let waited = started.saturating_duration_since(c.at);
        // Prepared here (timed on its own, as the prepare thread's work is), then run.
        let mut prepare = Duration::ZERO;
        let work = || {
            let t0 = Instant::now();
            let ahead = pipeline.prepare_whole(&c.frame)?;
            prepare = t0.elapsed();
            pipeline.run_ahead(c.frame, ahead)
        };
        let out = match &pool {
            Some(pool) => pool.install(work),
            None => work(),
        };
        let finished = Instant::now();
        shared.pace.record(finished - started);
        let mut reported = lock(&shared.reported);
        if shared.stopped() {
            break;
        }
        if reported.newest.is_some_and(|newest| c.at < newest) {
            shared.late.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        reported.newest = Some(c.at);
        let before = [waited, prepare, Duration::ZERO];
        let sent = report(shared, results, out, c.at, finished, before);
        reported.count += 1;
        if !sent || max_frames.is_some_and(|n| reported.count >= n) {
            end_run = true;
            break;
        }
    }
    let last = shared.working.fetch_sub(1, Ordering::AcqRel) == 1;
    if end_run || last {
        let mut finished = lock(&shared.finished);
        if finished.is_none() {
            *finished = Some(Instant::now());
        }
        drop(finished);
        shared.stop();
    }
}

/// Sends one frame's result (its statistics recorded) or its error (counted). `before` =
/// capture wait, prepare, ready wait. `false` when nobody takes the results any more.
fn report(
    shared: &Shared,
    results: &Results,
    out: Result<Inspection, PipelineError>,
    captured_at: Instant,
    finished: Instant,
    before: [Duration; 3],
) -> bool {
    let sent = match out {
        Ok(inspection) => {
            let latency = finished.saturating_duration_since(captured_at);
            lock(&shared.samples).push(latency, before, &inspection.timings);
            results.send(Ok(LiveResult {
                inspection,
                captured_at,
                latency,
            }))
        }
        Err(e) => {
            shared.errors.fetch_add(1, Ordering::Relaxed);
            results.send(Err(e.into()))
        }
    };
    sent.is_ok()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The next frame for the network: from the prepare thread, or (no overlap) the newest
/// delivered frame, to be prepared by [`Pipeline::run`] itself.
fn next_ready(shared: &Shared, overlap: bool) -> Option<Ready> {
    if overlap {
        return shared.ready.take();
    }
    let t0 = Instant::now();
    let c = shared.captured.take()?;
    Some(Ready {
        frame: c.frame,
        input: None,
        captured_at: c.at,
        waited: t0.saturating_duration_since(c.at),
        prepare: Duration::ZERO,
        ready_at: Instant::now(),
    })
}
