//! The newest-frame-wins mailbox and the inference workers built on it: one thread, or
//! several working on successive frames at once (see [`crate::pipeline::live`] for why),
//! with results kept in submission order.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::{Pipeline, PipelineError};
use crate::inspection::Inspection;
use crate::source::Frame;

/// A one-item mailbox: `put` replaces whatever is waiting (the replaced item is dropped and
/// counted), `take` waits for an item. Used so that a slow consumer always gets the newest
/// frame.
#[derive(Debug)]
pub struct LatestSlot<T> {
    state: Mutex<SlotState<T>>,
    ready: Condvar,
    dropped: AtomicU64,
}

#[derive(Debug)]
struct SlotState<T> {
    item: Option<T>,
    closed: bool,
}

impl<T> Default for SlotState<T> {
    fn default() -> Self {
        Self {
            item: None,
            closed: false,
        }
    }
}

impl<T> Default for LatestSlot<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> LatestSlot<T> {
    pub fn new() -> Self {
        Self {
            state: Mutex::new(SlotState::default()),
            ready: Condvar::new(),
            dropped: AtomicU64::new(0),
        }
    }

    /// Offers an item, replacing any item not yet taken.
    pub fn put(&self, item: T) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.item.replace(item).is_some() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        self.ready.notify_one();
    }

    /// Waits for the newest item; `None` once the slot is closed and empty.
    pub fn take(&self) -> Option<T> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(item) = s.item.take() {
                return Some(item);
            }
            if s.closed {
                return None;
            }
            s = self.ready.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Wakes the consumer and makes `take` return `None` once empty.
    pub fn close(&self) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.closed = true;
        self.ready.notify_all();
    }

    /// How many items were replaced before being taken.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Runs a [`Pipeline`] on its own thread, or on several (see [`Worker::spawn_parallel`]).
/// Frames submitted while every thread is busy replace each other; results arrive on
/// [`Worker::results`].
#[derive(Debug)]
pub struct Worker {
    inbox: Arc<Inbox>,
    results: mpsc::Receiver<Result<Inspection, PipelineError>>,
    handles: Vec<thread::JoinHandle<()>>,
}

/// The mailbox with submission numbers, and the state the threads share.
#[derive(Debug, Default)]
struct Inbox {
    slot: LatestSlot<(u64, Frame)>,
    submitted: AtomicU64,
    /// The newest submission reported, and results dropped as older than it.
    reported: Mutex<Option<u64>>,
    late: AtomicU64,
    /// Frames a thread took and finished (delivered or dropped as late).
    finished: AtomicU64,
    pace: Pacer,
}

impl Inbox {
    fn submit(&self, frame: Frame) {
        let n = self.submitted.fetch_add(1, Ordering::Relaxed);
        self.slot.put((n, frame));
    }
}

impl Worker {
    /// One inference thread.
    pub fn spawn(pipeline: Pipeline) -> Self {
        Self::spawn_parallel(pipeline, 1)
    }

    /// `workers` inference threads (1 for temporal models, whose state runs from frame to
    /// frame), each taking the newest frame in turn; with more than one, each runs its CPU
    /// kernels on its own share of the cores. A result older than one already delivered
    /// (a later frame finished first) is dropped and counted in [`Worker::dropped`].
    pub fn spawn_parallel(pipeline: Pipeline, workers: usize) -> Self {
        let workers = if pipeline.model().is_temporal() {
            1
        } else {
            workers.max(1)
        };
        let inbox = Arc::new(Inbox::default());
        let (tx, results) = mpsc::channel();
        let handles = (0..workers)
            .filter_map(|k| {
                let (inbox, tx, pipeline) = (Arc::clone(&inbox), tx.clone(), pipeline.clone());
                thread::Builder::new()
                    .name(format!("posescope-inference-{k}"))
                    .spawn(move || work(&pipeline, &inbox, &tx, workers))
                    .ok()
            })
            .collect();
        Self {
            inbox,
            results,
            handles,
        }
    }

    /// Submits a frame (replacing one still waiting).
    pub fn submit(&self, frame: Frame) {
        self.inbox.submit(frame);
    }

    /// Finished frames, in submission order.
    pub fn results(&self) -> &mpsc::Receiver<Result<Inspection, PipelineError>> {
        &self.results
    }

    /// Frames replaced before a thread got to them, or finished after a newer one.
    pub fn dropped(&self) -> u64 {
        self.inbox.slot.dropped() + self.inbox.late.load(Ordering::Relaxed)
    }

    /// True when every submitted frame has been run (its result, if not dropped, is on
    /// [`Worker::results`]) or replaced: nothing waits and no thread is working.
    pub fn idle(&self) -> bool {
        let finished = self.inbox.finished.load(Ordering::Acquire);
        let replaced = self.inbox.slot.dropped();
        self.inbox.submitted.load(Ordering::Acquire) == finished + replaced
    }

    /// How many inference threads run.
    pub fn threads(&self) -> usize {
        self.handles.len()
    }
}

/// One inference thread's loop.
fn work(
    pipeline: &Pipeline,
    inbox: &Inbox,
    tx: &mpsc::Sender<Result<Inspection, PipelineError>>,
    workers: usize,
) {
    let pool = worker_pool(workers);
    let never = AtomicBool::new(false);
    loop {
        if workers > 1 {
            inbox.pace.wait_turn(workers, &never);
        }
        let Some((n, frame)) = inbox.slot.take() else {
            break;
        };
        let t0 = Instant::now();
        let out = match &pool {
            Some(pool) => pool.install(|| pipeline.run(frame)),
            None => pipeline.run(frame),
        };
        inbox.pace.record(t0.elapsed());
        let mut reported = inbox.reported.lock().unwrap_or_else(|p| p.into_inner());
        if reported.is_some_and(|r| n < r) {
            inbox.late.fetch_add(1, Ordering::Relaxed);
            inbox.finished.fetch_add(1, Ordering::Release);
            continue;
        }
        *reported = Some(n);
        let sent = tx.send(out);
        inbox.finished.fetch_add(1, Ordering::Release);
        if sent.is_err() {
            break;
        }
    }
}

/// With several workers, a rayon pool of each worker's share of the cores, so that two
/// forward passes never hand work to (or spin waiting for) each other; `None` for one
/// worker (it uses the global pool, every core).
pub(super) fn worker_pool(workers: usize) -> Option<rayon::ThreadPool> {
    if workers <= 1 {
        return None;
    }
    let cores = thread::available_parallelism().map_or(1, usize::from);
    rayon::ThreadPoolBuilder::new()
        .num_threads((cores / workers).max(1))
        .thread_name(|i| format!("posescope-kernels-{i}"))
        .build()
        .ok()
}

/// The last few durations of a stage, for scheduling.
#[derive(Debug, Default)]
pub(super) struct Recent(VecDeque<Duration>);

impl Recent {
    const LEN: usize = 9;

    pub(super) fn push(&mut self, d: Duration) {
        if self.0.len() == Self::LEN {
            self.0.pop_front();
        }
        self.0.push_back(d);
    }

    pub(super) fn median(&self) -> Option<Duration> {
        let mut v: Vec<Duration> = self.0.iter().copied().collect();
        v.sort();
        v.get(v.len() / 2).copied()
    }
}

/// Spaces several workers' starts a 1/`workers` share of a frame's time apart, so their
/// results come evenly rather than in bursts.
#[derive(Debug, Default)]
pub(super) struct Pacer(Mutex<PacerState>);

#[derive(Debug, Default)]
struct PacerState {
    next_start: Option<Instant>,
    recent: Recent,
}

impl Pacer {
    /// Waits for this worker's turn; at once while a frame's time is not known yet, or
    /// when `stop` is set.
    pub(super) fn wait_turn(&self, workers: usize, stop: &AtomicBool) {
        let now = Instant::now();
        let start = {
            let mut s = self.0.lock().unwrap_or_else(|p| p.into_inner());
            let gap = s
                .recent
                .median()
                .map_or(Duration::ZERO, |d| d / workers.max(1) as u32);
            let start = s.next_start.map_or(now, |t| t.max(now));
            s.next_start = Some(start + gap);
            start
        };
        if start > now && !stop.load(Ordering::Relaxed) {
            thread::sleep(start - now);
        }
    }

    /// Records how long a frame took.
    pub(super) fn record(&self, d: Duration) {
        let mut s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        s.recent.push(d);
    }
}

/// A cloneable handle that feeds frames to a [`Worker`] (e.g. from a decoding thread).
#[derive(Clone, Debug)]
pub struct Submitter(Arc<Inbox>);

impl Submitter {
    /// Offers a frame, replacing one still waiting.
    pub fn submit(&self, frame: Frame) {
        self.0.submit(frame);
    }
}

impl Worker {
    /// A handle for other threads to submit frames.
    pub fn submitter(&self) -> Submitter {
        Submitter(Arc::clone(&self.inbox))
    }

    /// Stops the workers and waits for the frames in progress (if any) to finish.
    pub fn join(mut self) {
        self.inbox.slot.close();
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

impl Drop for Worker {
    /// Closes the mailbox without waiting: the threads finish their current frames and
    /// exit, so dropping a worker never blocks a UI thread.
    fn drop(&mut self) {
        self.inbox.slot.close();
        self.handles.clear();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn recent_keeps_the_last_few() {
        let mut r = Recent::default();
        assert_eq!(r.median(), None);
        for ms in [100, 100, 100, 1, 1, 1, 1, 1, 1, 1, 1, 1] {
            r.push(Duration::from_millis(ms));
        }
        assert_eq!(r.median(), Some(Duration::from_millis(1)));
    }

    #[test]
    fn latest_slot_keeps_only_the_newest() {
        let slot = LatestSlot::new();
        slot.put(1);
        slot.put(2);
        slot.put(3);
        assert_eq!(slot.take(), Some(3));
        assert_eq!(slot.dropped(), 2);
        slot.close();
        assert_eq!(slot.take(), None);
    }

    #[test]
    fn latest_slot_wakes_a_waiting_consumer() {
        let slot = Arc::new(LatestSlot::new());
        let s2 = Arc::clone(&slot);
        let h = thread::spawn(move || s2.take());
        thread::sleep(std::time::Duration::from_millis(20));
        slot.put(7);
        assert_eq!(h.join().unwrap(), Some(7));
    }
}
