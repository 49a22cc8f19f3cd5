//! Occlusion sensitivity: a grey patch slid over the network input, and per stage how much one
//! joint's belief drops.
//!
//! Grid: the input (`W × H` network-input pixels) is divided into `ceil(W / S) × ceil(H / S)`
//! cells of `S` (the stride) pixels; for the cell `(i, j)` a `P × P` patch (`P`, the patch
//! size) centred on the cell's centre `((i + ½)·S − ½, (j + ½)·S − ½)` (clipped to the input) is
//! set to grey (RGB 128, 128, 128 through the model's input normalisation).
//!
//! Drop, per stage `t`: the value of the joint's stage-`t` map **at the cell where the
//! unoccluded run peaks** (its argmax at that stage), unoccluded minus occluded. Positive
//! where hiding the patch lowers the belief at the place the network chose; negative where it
//! raises it. (Not the map maximum: a patch that moves the peak elsewhere would otherwise
//! look harmless.)
//!
//! The occluded inputs run in batches of [`OcclusionParams::batch`] through
//! [`crate::models::Model::heatmaps_batch`] (one image at a time for networks without it).

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use candle_core::Tensor;

use super::{whole_input, ExperimentError};
use crate::models::RunOptions;
use crate::pipeline::Pipeline;
use crate::pose::{edit, Affine2, Maps};
use crate::source::Frame;

/// What to occlude.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OcclusionParams {
    /// The joint (its channel, joints first).
    pub joint: usize,
    /// Patch side, network-input pixels.
    pub patch: u32,
    /// Distance between patch centres, network-input pixels.
    pub stride: u32,
    /// Occluded images per forward pass.
    pub batch: usize,
}

impl Default for OcclusionParams {
    fn default() -> Self {
        Self {
            joint: 0,
            patch: 16,
            stride: 8,
            batch: 32,
        }
    }
}

/// The drop maps of one occlusion run.
#[derive(Clone, Debug)]
pub struct OcclusionResult {
    pub params: OcclusionParams,
    /// Grid `(columns, rows)`.
    pub grid: (usize, usize),
    /// Per stage, the drop `[1, rows, columns]` (stage 1 first).
    pub drops: Vec<Maps>,
    /// Per stage, the unoccluded peak cell `(x, y)` in that stage's map and its value.
    pub peaks: Vec<((usize, usize), f32)>,
    /// Grid cell (pixel-index) → image pixel.
    pub cell_to_image: Affine2,
    /// Per stage, the stage's map cell → image pixel (to draw the peak).
    pub stage_to_image: Vec<Affine2>,
    /// Wall time of the occluded runs.
    pub elapsed: Duration,
    /// Forward passes made (batches).
    pub passes: usize,
}

/// The patch grid `(columns, rows)` for an input of `(w, h)`.
pub fn grid_size((w, h): (u32, u32), stride: u32) -> (usize, usize) {
    let s = stride.max(1);
    (w.div_ceil(s) as usize, h.div_ceil(s) as usize)
}

/// The input pixels `[x0, x1) × [y0, y1)` the patch of cell `(i, j)` covers.
pub fn patch_rect(
    (i, j): (usize, usize),
    (w, h): (u32, u32),
    patch: u32,
    stride: u32,
) -> (usize, usize, usize, usize) {
    let span = |c: usize, len: u32| {
        let centre = (c as f64 + 0.5) * f64::from(stride) - 0.5;
        let lo = (centre - f64::from(patch) / 2.0 + 0.5).floor();
        let hi = lo + f64::from(patch);
        (
            lo.clamp(0.0, f64::from(len)) as usize,
            hi.clamp(0.0, f64::from(len)) as usize,
        )
    };
    let (x0, x1) = span(i, w);
    let (y0, y1) = span(j, h);
    (x0, x1, y0, y1)
}

/// Runs the occlusion experiment on `frame` (whole frame). `progress(done, total)` is called
/// after every batch; [`ControlFlow::Break`] cancels (then `Ok(None)`).
pub fn run(
    pipeline: &Pipeline,
    frame: &Frame,
    params: &OcclusionParams,
    progress: &mut dyn FnMut(usize, usize) -> ControlFlow<()>,
) -> Result<Option<OcclusionResult>, ExperimentError> {
    if params.patch == 0 || params.stride == 0 {
        return Err(ExperimentError::Invalid(
            "the patch size and the stride must be at least 1 pixel".into(),
        ));
    }
    let model = pipeline.model();
    let whole = whole_input(pipeline, frame)?;
    let p = whole.prepared();
    let (w, h) = (p.width, p.height);
    let options = RunOptions {
        center: whole.center_input(),
        ..RunOptions::default()
    };
    let what = ExperimentError::tensor;
    let device = model.device();
    let plane = (w * h) as usize;

    // The unoccluded run: each stage's peak cell.
    let clean = Tensor::from_slice(&p.data, (1, 3, h as usize, w as usize), device)
        .map_err(what("the network input"))?;
    let stages = joint_values(model, &clean, &options, params.joint)?;
    let mut peaks = Vec::with_capacity(stages.len());
    for (t, m) in stages.iter().enumerate() {
        let at = edit::argmax(m, 0).ok_or_else(|| ExperimentError::Stage {
            model: model.id().to_string(),
            stage: t + 1,
            stages: stages.len(),
        })?;
        peaks.push((at, m.get(0, at.1, at.0).unwrap_or(0.0)));
    }

    let grey = model.info().norm.apply([128, 128, 128]);
    let (cols, rows) = grid_size((w, h), params.stride);
    let total = cols * rows;
    let mut drops: Vec<Vec<f32>> = vec![vec![0.0; total]; stages.len()];
    let batch = params.batch.max(1);
    let t0 = Instant::now();
    let mut passes = 0;
    let mut done = 0;
    while done < total {
        let n = batch.min(total - done);
        let mut data = Vec::with_capacity(n * p.data.len());
        for cell in done..done + n {
            let start = data.len();
            data.extend_from_slice(&p.data);
            let (x0, x1, y0, y1) = patch_rect(
                (cell % cols, cell / cols),
                (w, h),
                params.patch,
                params.stride,
            );
            for (c, g) in grey.iter().enumerate() {
                for y in y0..y1 {
                    let row = start + c * plane + y * w as usize;
                    if let Some(px) = data.get_mut(row + x0..row + x1) {
                        px.fill(*g);
                    }
                }
            }
        }
        let input = Tensor::from_vec(data, (n, 3, h as usize, w as usize), device)
            .map_err(what("the occluded inputs"))?;
        let values = joint_values(model, &input, &options, params.joint)?;
        passes += 1;
        for (t, m) in values.iter().enumerate() {
            let ((px, py), v0) = peaks.get(t).copied().unwrap_or(((0, 0), 0.0));
            for item in 0..n {
                let v = m.get(item, py, px).unwrap_or(v0);
                if let Some(d) = drops.get_mut(t).and_then(|d| d.get_mut(done + item)) {
                    *d = v0 - v;
                }
            }
        }
        done += n;
        if progress(done, total).is_break() {
            return Ok(None);
        }
    }
    let elapsed = t0.elapsed();
    let drops = drops
        .into_iter()
        .map(|d| Maps::new(d, 1, rows, cols))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ExperimentError::Invalid(e.to_string()))?;
    let image_from_input = p.image_from_input;
    let stride = f64::from(params.stride);
    let stage_to_image = stages
        .iter()
        .map(|m| {
            image_from_input.after(&Affine2::resample(
                f64::from(w) / m.width() as f64,
                f64::from(h) / m.height() as f64,
            ))
        })
        .collect();
    Ok(Some(OcclusionResult {
        params: *params,
        grid: (cols, rows),
        drops,
        peaks,
        cell_to_image: image_from_input.after(&Affine2::resample(stride, stride)),
        stage_to_image,
        elapsed,
        passes,
    }))
}

/// Each stage's map of `joint` for every item of `input` (`[N, 3, H, W]`), as `[N, h, w]`
/// maps (items as channels).
fn joint_values(
    model: &crate::models::Model,
    input: &Tensor,
    options: &RunOptions,
    joint: usize,
) -> Result<Vec<Maps>, ExperimentError> {
    let what = ExperimentError::tensor("the joint's maps");
    let n = input.dim(0).map_err(&what)?;
    if let Some(stages) = model.heatmaps_batch(input, options)? {
        return stages
            .iter()
            .map(|t| {
                let (_, k, mh, mw) = t.dims4().map_err(&what)?;
                if joint >= k {
                    return Err(ExperimentError::Invalid(format!(
                        "channel {joint} is out of range: the maps have {k} channels"
                    )));
                }
                let v: Vec<f32> = t
                    .narrow(1, joint, 1)
                    .and_then(|c| c.to_dtype(candle_core::DType::F32))
                    .and_then(|c| c.flatten_all())
                    .and_then(|c| c.to_vec1())
                    .map_err(&what)?;
                Maps::new(v, n, mh, mw).map_err(|e| ExperimentError::Invalid(e.to_string()))
            })
            .collect();
    }
    // One image at a time.
    let mut per_stage: Vec<(Vec<f32>, usize, usize)> = Vec::new();
    for item in 0..n {
        let one = input.narrow(0, item, 1).map_err(&what)?;
        let out = model.run(&one, options)?;
        per_stage.resize(out.stages.len(), (Vec::new(), 0, 0));
        for (acc, s) in per_stage.iter_mut().zip(&out.stages) {
            let c = s.heatmaps.channel(joint).ok_or(ExperimentError::Edit(
                edit::EditError::Channel {
                    channel: joint,
                    channels: s.heatmaps.channels(),
                },
            ))?;
            acc.0.extend_from_slice(c);
            acc.1 = s.heatmaps.height();
            acc.2 = s.heatmaps.width();
        }
    }
    per_stage
        .into_iter()
        .map(|(v, mh, mw)| {
            Maps::new(v, n, mh, mw).map_err(|e| ExperimentError::Invalid(e.to_string()))
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn grid_and_patches_cover_the_input() {
        assert_eq!(grid_size((192, 192), 8), (24, 24));
        assert_eq!(grid_size((200, 100), 8), (25, 13));
        // Cell 0: centre 3.5, a 16-px patch covers [-4, 12) clipped to [0, 12).
        assert_eq!(patch_rect((0, 0), (192, 192), 16, 8), (0, 12, 0, 12));
        // Cell 10: centre 83.5 -> [76, 92).
        assert_eq!(patch_rect((10, 3), (192, 192), 16, 8), (76, 92, 20, 36));
        // The last cell is clipped at the border.
        assert_eq!(
            patch_rect((23, 23), (192, 192), 16, 8),
            (180, 192, 180, 192)
        );
        // An odd patch is centred on the cell: centre 83.5, 5 px -> [81, 86).
        assert_eq!(patch_rect((10, 10), (192, 192), 5, 8).0, 81);
    }
}
