//! The inference pipeline: frame → preprocess → model → decode → [`Inspection`], and a
//! worker thread that always works on the newest frame (older ones are dropped, never
//! queued).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Instant;

use candle_core::Tensor;

use crate::inspection::{FrameInfo, Inspection, Timings};
use crate::models::{Architecture, Model, ModelError};
use crate::pose::paf::{self, PafParams};
use crate::pose::Affine2;
use crate::preprocess::{self, PreprocessConfig, PreprocessError, ResizeMode};
use crate::source::Frame;

/// Everything that can fail while processing one frame.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("frame '{frame}': {source}")]
    Preprocess {
        frame: String,
        #[source]
        source: PreprocessError,
    },
    #[error("frame '{frame}': cannot build the input tensor: {source}")]
    Input {
        frame: String,
        #[source]
        source: Box<candle_core::Error>,
    },
    #[error("frame '{frame}': {source}")]
    Model {
        frame: String,
        #[source]
        source: ModelError,
    },
    #[error("frame '{frame}': decoding: {message}")]
    Decode { frame: String, message: String },
}

/// Pipeline settings.
#[derive(Clone, Debug, PartialEq)]
pub struct PipelineConfig {
    pub preprocess: PreprocessConfig,
    /// Grouping settings for PAF models.
    pub paf: PafParams,
}

impl PipelineConfig {
    /// The model's default input size, aspect-preserving fit, published decoding defaults.
    pub fn for_model(model: &Model) -> Self {
        Self {
            preprocess: PreprocessConfig {
                size: model.info().input_size,
                mode: ResizeMode::Fit,
                stride: model.info().stride,
            },
            paf: PafParams::default(),
        }
    }
}

/// A model with its pre- and post-processing.
#[derive(Clone, Debug)]
pub struct Pipeline {
    model: Model,
    config: PipelineConfig,
}

impl Pipeline {
    pub fn new(model: Model, config: PipelineConfig) -> Self {
        Self { model, config }
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    pub fn config(&self) -> &PipelineConfig {
        &self.config
    }

    /// Processes one frame.
    pub fn run(&self, frame: Frame) -> Result<Inspection, PipelineError> {
        let start = Instant::now();
        let name = frame.output_stem.clone();
        let prepared =
            preprocess::prepare(&frame.image, &self.config.preprocess).map_err(|source| {
                PipelineError::Preprocess {
                    frame: name.clone(),
                    source,
                }
            })?;
        let input = Tensor::from_vec(
            prepared.data,
            (1, 3, prepared.height as usize, prepared.width as usize),
            self.model.device(),
        )
        .map_err(|source| PipelineError::Input {
            frame: name.clone(),
            source: Box::new(source),
        })?;
        let t_pre = start.elapsed();

        let t0 = Instant::now();
        let (stages, steps) = self
            .model
            .run(&input)
            .map_err(|source| PipelineError::Model {
                frame: name.clone(),
                source,
            })?;
        let t_forward = t0.elapsed();

        let t0 = Instant::now();
        // Map pixel → input pixel: each map cell covers `stride × stride` input pixels (TF
        // `SAME` convolutions round up, so a partial last cell still starts at a multiple).
        let stride = f64::from(self.model.info().stride);
        let (fx, fy) = (stride, stride);
        let map_to_image = prepared.image_from_input.after(&Affine2::resample(fx, fy));
        let joints = self.model.joints();
        let people = match (self.model.info().architecture, stages.last()) {
            (Architecture::OpenPoseMobileNetThin, Some(last)) => match &last.pafs {
                Some(pafs) => paf::decode(
                    &last.heatmaps,
                    pafs,
                    joints.len(),
                    paf::OPENPOSE_COCO18_LIMBS,
                    &self.config.paf,
                )
                .map_err(|e| PipelineError::Decode {
                    frame: name.clone(),
                    message: e.to_string(),
                })?,
                None => Vec::new(),
            },
            (_, None) => Vec::new(),
        };
        let people = people
            .iter()
            .map(|p| p.transformed(&map_to_image))
            .collect();
        let t_decode = t0.elapsed();

        let (width, height) = frame.image.dimensions();
        Ok(Inspection {
            model_id: self.model.id().to_string(),
            joints,
            frame: FrameInfo {
                index: frame.index,
                timestamp: frame.timestamp,
                path: frame.path,
                output_stem: frame.output_stem,
                width,
                height,
            },
            image: Arc::new(frame.image),
            input_size: (prepared.width, prepared.height),
            map_to_image,
            stages,
            people,
            timings: Timings {
                preprocess: t_pre,
                steps,
                forward: t_forward,
                decode: t_decode,
                total: start.elapsed(),
            },
        })
    }
}

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
