//! When a temporal model (UniPose-LSTM) carries its state from one frame to the next and
//! when it starts a new clip.
//!
//! The state carries across consecutive frames of one source: the same video file with the
//! frame index at most [`PLAYBACK_GAP`] past the last (playback drops the frames that arrive
//! while the model is busy; that is not a seek), or a live camera (no file) with a larger
//! index. Anything else starts a clip: a seek (a video's index going back, staying, or
//! jumping more than [`PLAYBACK_GAP`] ahead), another source, a still image
//! or a folder image (each its own file, so each its own clip), a new pipeline (a model or
//! settings change), a failed frame, several people in one frame, or the "without memory"
//! setting.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::inspection::{MemoryStatus, ResetReason};
use crate::models::Memory;

/// The largest forward jump in a video's frame index that still carries the state: frames
/// the player dropped while the model was busy (about a quarter of a second at 30 fps).
pub const PLAYBACK_GAP: u64 = 8;

/// The frame the stored state came from.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Track {
    source: Option<PathBuf>,
    index: u64,
    /// Frames carried so far in this clip.
    carried: u64,
}

/// The last frame of a pipeline's temporal model, behind a lock so that `Pipeline::run`
/// (`&self`) can update it. Cloning copies it, as cloning the model copies its state.
#[derive(Debug, Default)]
pub(crate) struct TrackCell(Mutex<Option<Track>>);

impl Clone for TrackCell {
    fn clone(&self) -> Self {
        Self(Mutex::new(self.get()))
    }
}

impl TrackCell {
    fn get(&self) -> Option<Track> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set(&self, track: Option<Track>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = track;
    }

    /// How to run the frame `index` of `source` (`None`: a live camera).
    pub(crate) fn decide(
        &self,
        source: Option<&Path>,
        index: u64,
        without_memory: bool,
        several_people: bool,
    ) -> (Memory, MemoryStatus) {
        let reset = |why| (Memory::Reset, MemoryStatus::Reset(why));
        if without_memory {
            return reset(ResetReason::WithoutMemory);
        }
        if several_people {
            return reset(ResetReason::SeveralPeople);
        }
        let Some(last) = self.get() else {
            return reset(ResetReason::NewClip);
        };
        if last.source.as_deref() != source {
            return reset(ResetReason::NewClip);
        }
        let follows = match source {
            Some(_) => index > last.index && index - last.index <= PLAYBACK_GAP,
            None => index > last.index,
        };
        if follows {
            (
                Memory::Carry,
                MemoryStatus::Carried {
                    frames: last.carried + 1,
                },
            )
        } else {
            reset(ResetReason::Seek)
        }
    }

    /// Records the frame just run: its state is carried to the next frame when `keeps`
    /// (the run succeeded and kept a state that follows one clip), else the next frame
    /// starts a clip.
    pub(crate) fn finish(&self, source: Option<&Path>, index: u64, keeps: bool, carried: u64) {
        self.set(keeps.then(|| Track {
            source: source.map(Path::to_path_buf),
            index,
            carried,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(cell: &TrackCell, source: Option<&Path>, index: u64) -> MemoryStatus {
        let (_, status) = cell.decide(source, index, false, false);
        cell.finish(source, index, status.keeps_state(), status.carried_frames());
        status
    }

    #[test]
    fn consecutive_video_frames_carry_and_a_seek_resets() {
        let cell = TrackCell::default();
        let video = Some(Path::new("clip.mp4"));
        assert_eq!(
            step(&cell, video, 0),
            MemoryStatus::Reset(ResetReason::NewClip)
        );
        assert_eq!(step(&cell, video, 1), MemoryStatus::Carried { frames: 1 });
        assert_eq!(step(&cell, video, 2), MemoryStatus::Carried { frames: 2 });
        // Frames dropped during playback (a short forward gap) still carry.
        assert_eq!(
            step(&cell, video, 2 + PLAYBACK_GAP),
            MemoryStatus::Carried { frames: 3 }
        );
        let at = 2 + PLAYBACK_GAP;
        assert_eq!(
            step(&cell, video, at + PLAYBACK_GAP + 1),
            MemoryStatus::Reset(ResetReason::Seek)
        );
        let at = at + PLAYBACK_GAP + 1;
        assert_eq!(
            step(&cell, video, at + 1),
            MemoryStatus::Carried { frames: 1 }
        );
        assert_eq!(
            step(&cell, video, 3),
            MemoryStatus::Reset(ResetReason::Seek)
        );
        assert_eq!(step(&cell, video, 4), MemoryStatus::Carried { frames: 1 });
        // Back to the same frame (a re-run) is a seek too.
        assert_eq!(
            step(&cell, video, 4),
            MemoryStatus::Reset(ResetReason::Seek)
        );
        let other = Some(Path::new("other.mp4"));
        assert_eq!(
            step(&cell, other, 9),
            MemoryStatus::Reset(ResetReason::NewClip)
        );
    }

    #[test]
    fn folder_images_are_separate_clips_and_cameras_skip_frames() {
        let cell = TrackCell::default();
        let a = Some(Path::new("dir/a.jpg"));
        let b = Some(Path::new("dir/b.jpg"));
        assert_eq!(step(&cell, a, 0), MemoryStatus::Reset(ResetReason::NewClip));
        assert_eq!(step(&cell, b, 1), MemoryStatus::Reset(ResetReason::NewClip));
        assert_eq!(
            step(&cell, None, 3),
            MemoryStatus::Reset(ResetReason::NewClip)
        );
        assert_eq!(step(&cell, None, 5), MemoryStatus::Carried { frames: 1 });
        assert_eq!(step(&cell, None, 5), MemoryStatus::Reset(ResetReason::Seek));
    }

    #[test]
    fn without_memory_and_several_people_never_carry() {
        let cell = TrackCell::default();
        let video = Some(Path::new("clip.mp4"));
        step(&cell, video, 0);
        let (m, s) = cell.decide(video, 1, true, false);
        assert_eq!(
            (m, s),
            (
                Memory::Reset,
                MemoryStatus::Reset(ResetReason::WithoutMemory)
            )
        );
        cell.finish(video, 1, s.keeps_state(), 0);
        assert_eq!(
            step(&cell, video, 2),
            MemoryStatus::Reset(ResetReason::NewClip)
        );
        let (_, s) = cell.decide(video, 3, false, true);
        assert_eq!(s, MemoryStatus::Reset(ResetReason::SeveralPeople));
    }
}
