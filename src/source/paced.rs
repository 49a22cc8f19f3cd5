//! [`Paced`]: a frame source that delivers each frame at its own time, as a camera would.
//!
//! A video file decodes as fast as the CPU allows; a camera hands over frame `n` at its
//! capture time. `Paced` wraps any [`FrameSource`] and holds each frame back until
//! `start + (timestamp - first timestamp)` in wall-clock time (`start` is the first call of
//! [`FrameSource::next_frame`]). A frame the inner source delivers late (slow decoding) is
//! passed on at once: frames are never skipped and never early. Optionally the source is
//! played again from the start (by [`FrameSource::seek`]`(0)` or by reopening it) so that a
//! short clip can feed a longer live run.

use std::thread;
use std::time::{Duration, Instant};

use super::{Frame, FrameSource, SourceError};

/// Opens the source again for another pass (used when [`FrameSource::seek`] cannot go back).
pub type Reopen<S> = Box<dyn FnMut() -> Result<S, SourceError> + Send>;

/// Frame step assumed after the last frame of a pass when the pass had a single frame.
const DEFAULT_STEP: Duration = Duration::from_millis(40);

/// Looping settings of a [`Paced`] source.
struct Looping<S> {
    reopen: Option<Reopen<S>>,
    /// Wall time after which no frame is delivered; `None`: loop until dropped.
    until: Option<Duration>,
}

/// A [`FrameSource`] whose frames arrive no earlier than their timestamps say (see the
/// module docs). Looped passes continue the frame indices and timestamps, so both keep
/// increasing; `output_stem` and `path` stay those of the inner source.
pub struct Paced<S> {
    inner: S,
    looping: Option<Looping<S>>,
    start: Option<Instant>,
    /// Timestamp of the first frame of the first pass.
    first: Option<Duration>,
    /// Added to the inner timestamps and indices of the current pass.
    offset: Duration,
    index_offset: u64,
    /// The last delivered frame's (timestamp, index) after the offsets, and the step before it.
    last: Option<(Duration, u64)>,
    step: Duration,
    /// True once a pass delivered a frame (an empty pass ends the loop).
    pass_had_frames: bool,
}

impl<S: FrameSource> Paced<S> {
    /// Delivers the frames of `inner` once, each at its time.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            looping: None,
            start: None,
            first: None,
            offset: Duration::ZERO,
            index_offset: 0,
            last: None,
            step: DEFAULT_STEP,
            pass_had_frames: false,
        }
    }

    /// Plays the source again from its start when it ends, until `until` of wall time has
    /// passed since the first frame (`None`: until the source is dropped). Goes back with
    /// [`FrameSource::seek`]`(0)`, else with `reopen`; without either the run ends with the
    /// first pass.
    pub fn looping(mut self, reopen: Option<Reopen<S>>, until: Option<Duration>) -> Self {
        self.looping = Some(Looping { reopen, until });
        self
    }

    /// The wrapped source.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Restarts the inner source for another pass; false when the run is over.
    fn restart(&mut self) -> Result<bool, SourceError> {
        if self.looping.is_none() || !self.pass_had_frames || self.past_deadline() {
            return Ok(false);
        }
        if !self.inner.seek(0) {
            match self.looping.as_mut().and_then(|l| l.reopen.as_mut()) {
                Some(reopen) => self.inner = reopen()?,
                None => return Ok(false),
            }
        }
        if let Some((ts, index)) = self.last {
            self.offset = ts + self.step;
            self.index_offset = index + 1;
        }
        self.pass_had_frames = false;
        Ok(true)
    }

    fn past_deadline(&self) -> bool {
        let until = self.looping.as_ref().and_then(|l| l.until);
        match (until, self.start) {
            (Some(until), Some(start)) => start.elapsed() >= until,
            _ => false,
        }
    }

    /// True when a looping run's deadline has passed or comes before the frame is due.
    fn due_after_deadline(&self, frame: &Frame) -> bool {
        let Some(until) = self.looping.as_ref().and_then(|l| l.until) else {
            return false;
        };
        let first = self.first.unwrap_or(frame.timestamp);
        frame.timestamp.saturating_sub(first) >= until || self.past_deadline()
    }

    /// Shifts a frame of the current pass onto the run's timeline.
    fn shift(&mut self, mut frame: Frame) -> Frame {
        let first = *self.first.get_or_insert(frame.timestamp);
        let ts = if self.index_offset == 0 {
            frame.timestamp
        } else {
            // Later passes start where the previous ended, one step after its last frame.
            self.offset + frame.timestamp.saturating_sub(first)
        };
        frame.timestamp = ts;
        frame.index += self.index_offset;
        if let Some((prev, _)) = self.last {
            if ts > prev {
                self.step = ts - prev;
            }
        }
        self.last = Some((ts, frame.index));
        self.pass_had_frames = true;
        frame
    }

    /// Sleeps until the frame's time (relative to the first frame) has come.
    fn wait_for(&mut self, frame: &Frame) {
        let start = *self.start.get_or_insert_with(Instant::now);
        let first = self.first.unwrap_or(frame.timestamp);
        let due = start + frame.timestamp.saturating_sub(first);
        let now = Instant::now();
        if due > now {
            thread::sleep(due - now);
        }
    }
}

impl<S: FrameSource> FrameSource for Paced<S> {
    fn next_frame(&mut self) -> Option<Result<Frame, SourceError>> {
        self.start.get_or_insert_with(Instant::now);
        loop {
            match self.inner.next_frame() {
                Some(Ok(frame)) => {
                    let frame = self.shift(frame);
                    if self.looping.is_some() && self.due_after_deadline(&frame) {
                        return None;
                    }
                    self.wait_for(&frame);
                    return Some(Ok(frame));
                }
                Some(Err(e)) => return Some(Err(e)),
                None => match self.restart() {
                    Ok(true) => continue,
                    Ok(false) => return None,
                    Err(e) => {
                        self.looping = None;
                        return Some(Err(e));
                    }
                },
            }
        }
    }

    fn len_hint(&self) -> Option<u64> {
        match self.looping {
            Some(_) => None,
            None => self.inner.len_hint(),
        }
    }

    fn describe(&self) -> String {
        let looped = if self.looping.is_some() {
            ", looped"
        } else {
            ""
        };
        format!("{} (paced{looped})", self.inner.describe())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// `count` tiny frames 40 ms apart, decoded instantly; `seek(0)` restarts it.
    struct Synthetic {
        next: u64,
        count: u64,
    }

    impl FrameSource for Synthetic {
        fn next_frame(&mut self) -> Option<Result<Frame, SourceError>> {
            if self.next >= self.count {
                return None;
            }
            let index = self.next;
            self.next += 1;
            Some(Ok(Frame {
                index,
                timestamp: Duration::from_millis(40 * index),
                image: image::RgbImage::new(4, 4),
                path: None,
                output_stem: format!("synthetic_{index:06}"),
            }))
        }
        fn len_hint(&self) -> Option<u64> {
            Some(self.count)
        }
        fn describe(&self) -> String {
            "synthetic".into()
        }
        fn seek(&mut self, index: u64) -> bool {
            self.next = index;
            true
        }
    }

    /// Delivery offsets from the first call, with the frames.
    fn deliveries(src: &mut dyn FrameSource) -> Vec<(Duration, Frame)> {
        let start = Instant::now();
        let mut out = Vec::new();
        while let Some(f) = src.next_frame() {
            out.push((start.elapsed(), f.unwrap()));
        }
        out
    }

    #[test]
    fn frames_arrive_at_their_timestamps_never_early() {
        let mut src = Paced::new(Synthetic { next: 0, count: 6 });
        let got = deliveries(&mut src);
        assert_eq!(got.len(), 6);
        for (at, f) in &got {
            assert!(*at >= f.timestamp, "frame {} early: {at:?}", f.index);
            assert!(
                *at < f.timestamp + Duration::from_millis(25),
                "frame {} late: {at:?} for {:?}",
                f.index,
                f.timestamp
            );
        }
        assert_eq!(src.len_hint(), Some(6));
    }

    #[test]
    fn looping_continues_indices_and_timestamps_until_the_deadline() {
        let mut src = Paced::new(Synthetic { next: 0, count: 3 })
            .looping(None, Some(Duration::from_millis(300)));
        let got = deliveries(&mut src);
        // Frames due at 0, 40, ..., 280 ms: 8 frames, then the deadline ends the run.
        assert!((7..=8).contains(&got.len()), "{} frames", got.len());
        for (i, (at, f)) in got.iter().enumerate() {
            assert_eq!(f.index, i as u64);
            assert_eq!(f.timestamp, Duration::from_millis(40 * i as u64));
            assert!(*at >= f.timestamp, "frame {i} early: {at:?}");
        }
        assert_eq!(src.len_hint(), None);
    }

    #[test]
    fn a_source_that_cannot_seek_is_reopened() {
        struct NoSeek(Synthetic);
        impl FrameSource for NoSeek {
            fn next_frame(&mut self) -> Option<Result<Frame, SourceError>> {
                self.0.next_frame()
            }
            fn len_hint(&self) -> Option<u64> {
                None
            }
            fn describe(&self) -> String {
                "no seek".into()
            }
        }
        let reopen: Reopen<NoSeek> = Box::new(|| Ok(NoSeek(Synthetic { next: 0, count: 2 })));
        let mut src = Paced::new(NoSeek(Synthetic { next: 0, count: 2 }))
            .looping(Some(reopen), Some(Duration::from_millis(150)));
        let got = deliveries(&mut src);
        let idx: Vec<u64> = got.iter().map(|(_, f)| f.index).collect();
        assert_eq!(idx, vec![0, 1, 2, 3]);
        // Without seek or reopen a looping source ends with its first pass.
        let mut once = Paced::new(NoSeek(Synthetic { next: 0, count: 2 })).looping(None, None);
        assert_eq!(deliveries(&mut once).len(), 2);
    }
}
