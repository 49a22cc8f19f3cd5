//! `posescope bench`: forward-pass timing on a real image.

use std::time::Instant;

use anyhow::Context;

use super::BenchArgs;
use crate::preprocess;

pub(super) fn run(args: &BenchArgs) -> anyhow::Result<()> {
    if let Some(n) = args.threads {
        // candle sizes its CPU thread pools from this variable on first use.
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
    if let Some(input) = &args.input {
        return super::bench_live::run(args, input);
    }
    let pipeline = super::infer::build_pipeline(&args.model)?;
    let mut cfg = pipeline.config().preprocess;
    if args.model.resize.is_none() {
        // Time exactly the requested box (the default fit would keep the sample's aspect).
        cfg.mode = preprocess::ResizeMode::Stretch;
    }
    // A real photo (the bundled sample) so activations are realistic.
    let img = image::load_from_memory(crate::SAMPLE_IMAGE)
        .context("decoding the bundled sample image")?
        .to_rgb8();
    let prepared = preprocess::prepare(&img, &cfg)?;
    let (w, h) = (prepared.width as usize, prepared.height as usize);
    let model = pipeline.model();
    let input = crate::device::upload(prepared.data.clone(), (1, 3, h, w), model.device())?;
    // Warm-up; the first run also counts the network's FLOPs.
    let (first, flop) =
        crate::kernels::flops::count(|| model.run(&input, &crate::models::RunOptions::default()));
    first?;
    model.run(&input, &crate::models::RunOptions::default())?;
    let mut times = Vec::with_capacity(args.runs);
    let mut cpu_times = Vec::with_capacity(args.runs);
    let mut steps: Vec<Vec<f64>> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    let copies0 = crate::device::Copies::now();
    for _ in 0..args.runs.max(1) {
        // Each run is a frame: its input is uploaded (outside the timing, as the pipeline
        // prepares and uploads while the previous frame runs) and its maps read back.
        let input = crate::device::upload(prepared.data.clone(), (1, 3, h, w), model.device())?;
        let (t0, c0) = (Instant::now(), super::bench_live::process_cpu_ms());
        let st = model
            .run(&input, &crate::models::RunOptions::default())?
            .steps;
        times.push(t0.elapsed().as_secs_f64() * 1e3);
        if let (Some(c0), Some(c1)) = (c0, super::bench_live::process_cpu_ms()) {
            cpu_times.push(c1 - c0);
        }
        if steps.is_empty() {
            steps = vec![Vec::new(); st.len()];
            names = st.iter().map(|s| s.name.clone()).collect();
        }
        for (acc, s) in steps.iter_mut().zip(&st) {
            acc.push(s.time.as_secs_f64() * 1e3);
        }
    }
    let copies = super::bench_live::CopiesPerFrame::of(
        crate::device::Copies::now().since(copies0),
        args.runs.max(1) as u64,
    );
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all".into());
    let min = times.iter().copied().fold(f64::INFINITY, f64::min);
    let max = times.iter().copied().fold(0.0, f64::max);
    let raw_times = times.clone();
    let raw_cpu = cpu_times.clone();
    let median_ms = median(&mut times);
    let median_cpu_ms = (!cpu_times.is_empty()).then(|| median(&mut cpu_times));
    let gflop = flop as f64 / 1e9;
    let gflops_per_s = gflop / (median_ms / 1e3);
    let step_medians: Vec<(String, f64)> = names
        .iter()
        .cloned()
        .zip(steps)
        .map(|(name, mut v)| (name, median(&mut v)))
        .collect();
    if args.json {
        let report = serde_json::json!({
            "model": model.id(),
            "width": w,
            "height": h,
            "device": args.model.device,
            "threads": threads,
            "runs": raw_times.len(),
            "times_ms": raw_times,
            "median_ms": median_ms,
            "cpu_times_ms": raw_cpu,
            "median_cpu_ms": median_cpu_ms,
            "min_ms": min,
            "max_ms": max,
            "gflop": gflop,
            "gflops_per_s": gflops_per_s,
            "copies_per_frame": copies,
            "steps": step_medians
                .iter()
                .map(|(name, ms)| serde_json::json!({"name": name, "median_ms": ms}))
                .collect::<Vec<_>>(),
        });
        println!("{report}");
        return Ok(());
    }
    println!(
        "model {} at {w}x{h} on {}, threads {threads}, {} runs",
        model.id(),
        args.model.device,
        raw_times.len()
    );
    println!("forward: median {median_ms:.1} ms, min {min:.1} ms, max {max:.1} ms");
    if let Some(cpu) = median_cpu_ms {
        println!("process CPU time: median {cpu:.1} ms per forward (less sensitive to other load)");
    }
    println!(
        "work: {gflop:.2} GFLOP (convolutions and matrix products) = {gflops_per_s:.1} GFLOP/s at the median"
    );
    println!(
        "host<->device copies per frame: {:.2} uploads, {:.2} downloads, {:.0} bytes",
        copies.uploads, copies.downloads, copies.bytes
    );
    for (name, ms) in &step_medians {
        println!("  {name:<10} median {ms:.1} ms");
    }
    Ok(())
}
