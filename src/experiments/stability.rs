//! Stability over video: each frame's joint peaks per stage, fed to
//! [`crate::pose::jitter::JitterMeter`] (`bench --input` reports the jitter per stage).

use crate::inspection::Inspection;
use crate::pose::edit;
use crate::pose::jitter::StagePositions;

/// A peak below this value is "not found" (the joint is not in view).
pub const MIN_PEAK: f32 = 0.1;

/// Every stage's joint peaks of `ins` (the argmax of each joint's map, image pixels; `None`
/// below [`MIN_PEAK`]). For multi-person models this is the strongest person's joint.
pub fn stage_positions(ins: &Inspection) -> StagePositions {
    let joints = ins.joints.len();
    ins.stages
        .iter()
        .enumerate()
        .map(|(t, s)| {
            let to_image = ins.stage_to_image(t);
            (0..joints)
                .map(|j| {
                    let (x, y) = edit::argmax(&s.heatmaps, j)?;
                    let v = s.heatmaps.get(j, y, x)?;
                    (v >= MIN_PEAK).then(|| to_image.apply(x as f64, y as f64))
                })
                .collect()
        })
        .collect()
}

/// Per-stage jitter of every joint over a whole video (every frame, in order, none dropped).
#[derive(Clone, Debug)]
pub struct VideoJitter {
    pub model: String,
    pub joints: &'static crate::pose::JointSet,
    /// Frames run.
    pub frames: u64,
    /// Frame triples counted.
    pub triples: u64,
    /// `[stage]`: mean over every joint and triple (image pixels).
    pub per_stage: Vec<Option<f64>>,
    /// `[stage][joint]`: each joint's mean.
    pub per_joint: Vec<Vec<Option<f64>>>,
    pub elapsed: std::time::Duration,
}

/// Runs `pipeline` on every frame of `source` (at most `max_frames`) and measures each
/// joint's jitter per stage ([`crate::pose::jitter::JitterMeter`] on [`stage_positions`]).
/// `progress(done, total)` is called after each frame (`total` 0 when unknown) and may
/// cancel (`Ok(None)`).
pub fn video_jitter(
    pipeline: &crate::pipeline::Pipeline,
    source: &mut dyn crate::source::FrameSource,
    max_frames: Option<u64>,
    progress: &mut dyn FnMut(u64, u64) -> std::ops::ControlFlow<()>,
) -> Result<Option<VideoJitter>, super::ExperimentError> {
    let start = std::time::Instant::now();
    let total = match (source.len_hint(), max_frames) {
        (Some(n), Some(m)) => n.min(m),
        (Some(n), None) => n,
        (None, Some(m)) => m,
        (None, None) => 0,
    };
    let mut meter = crate::pose::jitter::JitterMeter::new();
    let mut frames = 0u64;
    while max_frames.is_none_or(|m| frames < m) {
        let Some(frame) = source.next_frame() else {
            break;
        };
        let frame = frame.map_err(|e| super::ExperimentError::Invalid(e.to_string()))?;
        let index = frame.index;
        let ins = pipeline.run(frame)?;
        meter.push(index, stage_positions(&ins));
        frames += 1;
        if progress(frames, total).is_break() {
            return Ok(None);
        }
    }
    if frames == 0 {
        return Err(super::ExperimentError::Invalid(
            "the video holds no frame".into(),
        ));
    }
    let per_stage = meter.per_stage();
    let per_joint = (0..per_stage.len()).map(|t| meter.per_joint(t)).collect();
    Ok(Some(VideoJitter {
        model: pipeline.model().id().to_string(),
        joints: pipeline.model().joints(),
        frames,
        triples: meter.triples(),
        per_stage,
        per_joint,
        elapsed: start.elapsed(),
    }))
}
