//! `posescope intervene`, `posescope occlusion` and `posescope versus`: the experiments of
//! [`crate::experiments`] on one image, written by [`crate::export::experiments`] and
//! [`crate::export::versus`].

use std::ops::ControlFlow;
use std::path::Path;

use anyhow::Context;

use super::{InterveneArgs, OcclusionArgs, VersusArgs};
use crate::experiments::intervene::{self, Intervention, Session};
use crate::experiments::occlusion::{self, OcclusionParams};
use crate::export::{self, experiments as files};
use crate::pipeline::Pipeline;
use crate::pose::edit::parse_joint;
use crate::source::{self, Frame};

/// The image at `path` as a frame.
fn read_frame(path: &Path) -> anyhow::Result<Frame> {
    let mut src = source::ImageSource::open(path)?;
    use crate::source::FrameSource;
    src.next_frame()
        .transpose()?
        .with_context(|| format!("'{}' holds no image", path.display()))
}

/// Joint `spec` of `pipeline`'s model: its name or channel index.
fn joint(pipeline: &Pipeline, spec: &str, channels: usize) -> anyhow::Result<usize> {
    parse_joint(spec, pipeline.model().joints(), channels)
        .with_context(|| format!("model '{}'", pipeline.model().id()))
}

/// Writes `parts` into `out` (created), all or nothing.
fn write_all(out: &Path, parts: &[(&'static str, Vec<u8>)]) -> anyhow::Result<()> {
    std::fs::create_dir_all(out)
        .with_context(|| format!("creating the output folder '{}'", out.display()))?;
    let paths: Vec<_> = parts.iter().map(|(n, _)| out.join(n)).collect();
    let refs: Vec<(&Path, &[u8])> = paths
        .iter()
        .zip(parts)
        .map(|(p, (_, b))| (p.as_path(), b.as_slice()))
        .collect();
    export::write_together(&refs, true)?;
    Ok(())
}

pub(super) fn intervene(args: &InterveneArgs) -> anyhow::Result<()> {
    let pipeline = super::infer::build_pipeline(&args.model)?;
    if !pipeline.model().can_resume() {
        // The model's own error names it and says which networks can.
        return Err(crate::models::ModelError::NotResumable {
            id: pipeline.model().id().to_string(),
            name: pipeline.model().info().architecture.name.to_string(),
        }
        .into());
    }
    if args.erase_joint.is_none() && args.paint_joint.is_none() && args.move_center.is_none() {
        anyhow::bail!(
            "nothing to edit: give --erase-joint, --paint-joint with --at, or --move-center"
        );
    }
    if args.move_center.is_some() && !pipeline.model().moves_center() {
        anyhow::bail!(
            "model '{}' has no centre map to move (--move-center is for CPM)",
            pipeline.model().id()
        );
    }
    let frame = read_frame(&args.input)?;
    let session = Session::start(pipeline, frame)?;
    let stages = session.stages();
    if args.stage == 0 || args.stage > stages {
        anyhow::bail!(
            "--stage {}: model '{}' has stages 1..{stages}",
            args.stage,
            session.original.model_id
        );
    }
    let channels = session
        .original
        .stages
        .get(args.stage - 1)
        .map_or(0, |s| s.heatmaps.channels());
    let p = session.pipeline();
    let iv = Intervention {
        stage: args.stage - 1,
        erase: args
            .erase_joint
            .as_deref()
            .map(|j| joint(p, j, channels))
            .transpose()?,
        paint: match (&args.paint_joint, args.at) {
            (Some(j), Some(at)) => Some((joint(p, j, channels)?, at)),
            _ => None,
        },
        center: args.move_center,
    };
    let edited = session.apply(&iv)?;
    let parts = files::intervention_files(&session.original, &edited, &iv)?;
    write_all(&args.out, &parts)?;
    let last = stages - 1;
    let moved = intervene::movements(&session.original, &edited, last);
    let change = intervene::max_abs_difference(&session.original, &edited, args.stage);
    println!(
        "{}: edited stage {} of {stages}; later stages changed by up to {change:.4}",
        session.original.model_id, args.stage
    );
    for m in moved.iter().filter(|m| m.distance() >= 0.5) {
        println!(
            "  {:<14} moved {:6.1} px  ({:.0},{:.0}) -> ({:.0},{:.0}), peak {:.3} -> {:.3}",
            session
                .original
                .joints
                .joints
                .get(m.joint)
                .copied()
                .unwrap_or(""),
            m.distance(),
            m.from.0,
            m.from.1,
            m.to.0,
            m.to.1,
            m.value_from,
            m.value_to
        );
    }
    println!("wrote {}", args.out.display());
    Ok(())
}

pub(super) fn occlusion(args: &OcclusionArgs) -> anyhow::Result<()> {
    let pipeline = super::infer::build_pipeline(&args.model)?;
    let frame = read_frame(&args.input)?;
    let ins = pipeline.run(frame.clone())?;
    let channels = ins.stages.first().map_or(0, |s| s.heatmaps.channels());
    let params = OcclusionParams {
        joint: joint(&pipeline, &args.joint, channels)?,
        patch: args.patch,
        stride: args.stride,
        batch: args.batch,
    };
    let quiet_progress = !std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut progress = |done: usize, total: usize| {
        if !quiet_progress {
            eprint!("\r{done}/{total} positions");
        }
        ControlFlow::Continue(())
    };
    let result = occlusion::run(&pipeline, &frame, &params, &mut progress)?
        .context("the occlusion run was cancelled")?;
    if !quiet_progress {
        eprintln!();
    }
    let parts = files::occlusion_files(&ins, &result)?;
    write_all(&args.out, &parts)?;
    let (cols, rows) = result.grid;
    println!(
        "{}: joint {} ({}), {cols}x{rows} positions (patch {}, stride {}) in {:.2} s, {} passes of up to {}",
        ins.model_id,
        ins.joints.joints.get(params.joint).copied().unwrap_or("background"),
        params.joint,
        params.patch,
        params.stride,
        result.elapsed.as_secs_f64(),
        result.passes,
        params.batch
    );
    for (t, (d, (_, v))) in result.drops.iter().zip(&result.peaks).enumerate() {
        let max = d.as_slice().iter().copied().fold(f32::MIN, f32::max);
        println!(
            "  stage {}: peak value {v:.3}, largest drop {max:.3}",
            t + 1
        );
    }
    println!("wrote {}", args.out.display());
    Ok(())
}

pub(super) fn versus(args: &VersusArgs) -> anyhow::Result<()> {
    let a = super::infer::build_pipeline(&args.model)?;
    let device = args
        .model
        .device
        .parse::<crate::device::DeviceSpec>()?
        .open()?;
    let model_b = crate::models::Model::load(&args.model_b, &device)
        .with_context(|| format!("loading model B '{}'", args.model_b))?;
    let mut config = crate::pipeline::PipelineConfig::for_model(&model_b);
    config.person = args.person_b;
    let b = Pipeline::new(model_b, config);
    let frame = read_frame(&args.input)?;
    let ins = std::sync::Arc::new(a.run(frame)?);
    let cmp = crate::experiments::versus::run_against(ins, &b, args.min_score)?;
    write_all(&args.out, &files_versus(&cmp)?)?;
    let t = &cmp.table;
    println!(
        "{} vs {}: {} matched people, {} joints compared, mean keypoint distance {} \
         (people unmatched: {} of A, {} of B)",
        cmp.a.model_id,
        cmp.b.model_id,
        t.pairs.len(),
        t.joints.len(),
        t.mean.map_or_else(|| "-".into(), |m| format!("{m:.1} px")),
        t.unmatched_a,
        t.unmatched_b,
    );
    println!("wrote versus.json and versus.png to {}", args.out.display());
    Ok(())
}

fn files_versus(
    cmp: &crate::experiments::versus::Comparison,
) -> anyhow::Result<Vec<(&'static str, Vec<u8>)>> {
    Ok(export::versus::files(cmp)?)
}
