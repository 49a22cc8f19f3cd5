//! `posescope bench`: forward-pass timing on a real image.

use std::time::Instant;

use anyhow::Context;
use candle_core::Tensor;

use super::BenchArgs;
use crate::preprocess;

pub(super) fn run(args: &BenchArgs) -> anyhow::Result<()> {
    if let Some(n) = args.threads {
        // candle sizes its CPU thread pools from this variable on first use.
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
    let pipeline = super::infer::build_pipeline(&args.model)?;
    let cfg = pipeline.config().preprocess;
    // A real photo (the bundled sample) so activations are realistic.
    let img = image::load_from_memory(crate::SAMPLE_IMAGE)
        .context("decoding the bundled sample image")?
        .to_rgb8();
    let prepared = preprocess::prepare(&img, &cfg)?;
    let (w, h) = (prepared.width as usize, prepared.height as usize);
    let model = pipeline.model();
    let input = Tensor::from_vec(prepared.data, (1, 3, h, w), model.device())?;
    for _ in 0..2 {
        model.run(&input, &crate::models::RunOptions::default())?;
    }
    let mut times = Vec::with_capacity(args.runs);
    let mut steps: Vec<Vec<f64>> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for _ in 0..args.runs.max(1) {
        let t0 = Instant::now();
        let st = model
            .run(&input, &crate::models::RunOptions::default())?
            .steps;
        times.push(t0.elapsed().as_secs_f64() * 1e3);
        if steps.is_empty() {
            steps = vec![Vec::new(); st.len()];
            names = st.iter().map(|s| s.name.clone()).collect();
        }
        for (acc, s) in steps.iter_mut().zip(&st) {
            acc.push(s.time.as_secs_f64() * 1e3);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all".into());
    println!(
        "model {} at {w}x{h} on {}, threads {threads}, {} runs",
        model.id(),
        args.model.device,
        times.len()
    );
    let min = times.iter().copied().fold(f64::INFINITY, f64::min);
    let max = times.iter().copied().fold(0.0, f64::max);
    println!(
        "forward: median {:.1} ms, min {min:.1} ms, max {max:.1} ms",
        median(&mut times)
    );
    for (name, mut v) in names.iter().zip(steps) {
        println!("  {name:<10} median {:.1} ms", median(&mut v));
    }
    Ok(())
}
