//! The newest-frame-wins mailbox and the inference worker thread built on it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;

use super::{Pipeline, PipelineError};
use crate::inspection::Inspection;
use crate::source::Frame;

/// A one-item mailbox: `put` replaces whatever is waiting (the replaced item is dropped and
/// counted), `take` waits for an item. Used so that a slow consumer always gets the newest
/// frame.
#[derive(Debug, Default)]
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

/// Runs a [`Pipeline`] on its own thread. Frames submitted while it is busy replace each
/// other; results arrive on [`Worker::results`].
#[derive(Debug)]
pub struct Worker {
    slot: Arc<LatestSlot<Frame>>,
    results: mpsc::Receiver<Result<Inspection, PipelineError>>,
    handle: Option<thread::JoinHandle<()>>,
}

impl Worker {
    pub fn spawn(pipeline: Pipeline) -> Self {
        let slot = Arc::new(LatestSlot::new());
        let (tx, results) = mpsc::channel();
        let inbox = Arc::clone(&slot);
        let handle = thread::Builder::new()
            .name("posescope-inference".into())
            .spawn(move || {
                while let Some(frame) = inbox.take() {
                    if tx.send(pipeline.run(frame)).is_err() {
                        break;
                    }
                }
            })
            .ok();
        Self {
            slot,
            results,
            handle,
        }
    }

    /// Submits a frame (replacing one still waiting).
    pub fn submit(&self, frame: Frame) {
        self.slot.put(frame);
    }

    /// Finished frames, in completion order.
    pub fn results(&self) -> &mpsc::Receiver<Result<Inspection, PipelineError>> {
        &self.results
    }

    /// Frames replaced before the worker got to them.
    pub fn dropped(&self) -> u64 {
        self.slot.dropped()
    }
}

/// A cloneable handle that feeds frames to a [`Worker`] (e.g. from a decoding thread).
#[derive(Clone, Debug)]
pub struct Submitter(Arc<LatestSlot<Frame>>);

impl Submitter {
    /// Offers a frame, replacing one still waiting.
    pub fn submit(&self, frame: Frame) {
        self.0.put(frame);
    }
}

impl Worker {
    /// A handle for other threads to submit frames.
    pub fn submitter(&self) -> Submitter {
        Submitter(Arc::clone(&self.slot))
    }

    /// Stops the worker and waits for the frame in progress (if any) to finish.
    pub fn join(mut self) {
        self.slot.close();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Worker {
    /// Closes the mailbox without waiting: the thread finishes its current frame and exits,
    /// so dropping a worker never blocks a UI thread.
    fn drop(&mut self) {
        self.slot.close();
        self.handle.take();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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
