//! `posescope eval`: accuracy of a model on an annotated dataset (see [`crate::eval`]).

use std::ops::ControlFlow;
use std::path::PathBuf;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use super::EvalArgs;
use crate::eval::{self, EvalConfig, Report};
use crate::export::atomic::write_atomic;

/// The chart's path: `--chart`, else the report's path with a `.png` extension.
fn chart_path(args: &EvalArgs) -> Option<PathBuf> {
    if args.no_chart {
        return None;
    }
    args.chart
        .clone()
        .or_else(|| args.out.as_ref().map(|o| o.with_extension("png")))
}

pub(super) fn run(args: &EvalArgs) -> anyhow::Result<()> {
    let config = EvalConfig {
        model: args.model.model.clone(),
        device: args.model.device.clone(),
        annotations: args.annotations.clone(),
        images: args.images.clone(),
        metric: args.metric,
        alpha: args.alpha,
        norm: args.norm,
        person: args.person,
        limit: args.limit,
        input_size: args.model.size,
        grid: args.model.grid,
        resize: args.model.resize,
        filter: args.model.filter,
    };
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} images ({per_sec}, eta {eta}) {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    if let Some(results) = &args.score {
        let report = eval::external::score_file(results, &config)?;
        return write_report(&report, args);
    }
    let report = eval::run(&config, &mut |p| {
        bar.set_length(p.total as u64);
        bar.set_position(p.done as u64);
        bar.set_message(p.image.to_string());
        ControlFlow::Continue(())
    });
    bar.finish_and_clear();
    let report = report?;
    write_report(&report, args)
}

/// Writes the report, the chart and the predictions and prints the summary.
fn write_report(report: &Report, args: &EvalArgs) -> anyhow::Result<()> {
    let json = serde_json::to_vec_pretty(report).context("serialising the report")?;
    match &args.out {
        Some(out) => write_atomic(out, &json, true)?,
        None => println!("{}", String::from_utf8_lossy(&json)),
    }
    if let Some(chart) = chart_path(args) {
        eval::chart::write_png(report, &chart)?;
    }
    if let Some(path) = &args.predictions {
        let json = crate::export::formats::coco::to_bytes(&report.coco_results());
        write_atomic(path, &json, true)?;
    }
    print_summary(report, args);
    Ok(())
}

fn print_summary(r: &Report, args: &EvalArgs) {
    let pct = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.1}", 100.0 * v));
    eprintln!(
        "{} on {} ({} images, {} people, {} joints, {} skipped) in {:.1} s",
        r.settings.model_id,
        r.settings.annotations,
        r.counts.images,
        r.counts.people,
        r.counts.joints,
        r.counts.people_skipped,
        r.elapsed_s
    );
    eprintln!("{}", r.definition);
    for s in &r.stages {
        eprintln!("  {:<18} {:>6}", s.stage, pct(s.value));
    }
    if let Some(c) = &r.coco {
        eprintln!(
            "  AP {:.3} AP50 {:.3} AP75 {:.3} APm {:.3} APl {:.3} | AR {:.3} AR50 {:.3} AR75 {:.3} ARm {:.3} ARl {:.3}",
            c.ap, c.ap50, c.ap75, c.ap_medium, c.ap_large, c.ar, c.ar50, c.ar75, c.ar_medium, c.ar_large
        );
    }
    let joints: Vec<String> = r
        .per_joint
        .iter()
        .filter(|j| j.total > 0)
        .map(|j| format!("{} {}", j.joint, pct(j.value)))
        .collect();
    if !joints.is_empty() {
        eprintln!("  per joint: {}", joints.join(", "));
    }
    if let Some(out) = &args.out {
        eprintln!("report written to '{}'", out.display());
    }
    if let Some(chart) = chart_path(args) {
        eprintln!("chart written to '{}'", chart.display());
    }
}
