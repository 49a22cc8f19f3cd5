//! Parity checks against the posegen fixtures: every tensor within `5e-4·std(ref)` of the
//! reference, with a printed table row (max-abs, limit, rms(diff)/std, max-abs/std).

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use candle_core::{Device, Tensor};
use posescope::weights::posegen;

/// The fixtures' recommended tolerance, relative to the reference's standard deviation.
pub const REL_TOLERANCE: f32 = 5e-4;

pub fn std_of(v: &[f32]) -> f32 {
    let n = v.len().max(1) as f64;
    let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
    let var = v
        .iter()
        .map(|&x| (f64::from(x) - mean).powi(2))
        .sum::<f64>()
        / n;
    var.sqrt() as f32
}

/// Prints the header of the table [`check`] prints rows of.
pub fn header() {
    println!("| tensor | max-abs | limit 5e-4·std | rms(diff)/std | max-abs/std |");
    println!("|---|---|---|---|---|");
}

/// Compares `ours` with `reference`; prints one table row and returns a failure line if out
/// of tolerance (or of another shape).
pub fn check(name: &str, ours: &Tensor, reference: &Tensor) -> Option<String> {
    if ours.dims() != reference.dims() {
        return Some(format!(
            "{name}: shape {:?}, reference {:?}",
            ours.dims(),
            reference.dims()
        ));
    }
    let got: Vec<f32> = ours.flatten_all().unwrap().to_vec1().unwrap();
    let want: Vec<f32> = reference.flatten_all().unwrap().to_vec1().unwrap();
    let (max_abs, rel_rms) = super::compare(&got, &want);
    let std = std_of(&want);
    let tol = REL_TOLERANCE * std;
    println!(
        "| {name:<22} | {max_abs:.3e} | {tol:.3e} | {rel_rms:.3e} | {:.3e} |",
        max_abs / std
    );
    (max_abs > tol).then(|| format!("{name}: max-abs {max_abs:.3e} > {tol:.3e}"))
}

/// Checks every tensor of the fixture's `outputs` and `intermediates` against `ours(name)`;
/// a fixture tensor without a match is a failure.
pub fn check_fixture(dir: &Path, ours: impl Fn(&str) -> Option<Tensor>) -> Vec<String> {
    let outputs = load(&dir.join("outputs.safetensors"));
    let inter = load(&dir.join("intermediates.safetensors"));
    header();
    let mut failures = Vec::new();
    let mut keys: Vec<&String> = outputs.keys().chain(inter.keys()).collect();
    keys.sort();
    for key in keys {
        let reference = outputs.get(key).or_else(|| inter.get(key)).unwrap();
        match ours(key) {
            Some(t) => failures.extend(check(key, &t, reference)),
            None => failures.push(format!("{key}: no matching output")),
        }
    }
    failures
}

pub fn load(path: &Path) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(path, &Device::Cpu).unwrap()
}

pub fn keys_of(dir: &Path) -> Vec<posegen::Request> {
    posegen::parse_keys(&std::fs::read_to_string(dir.join("keys.txt")).unwrap()).unwrap()
}

/// Median of `runs` calls of `f` after one warm-up call.
pub fn median_time(runs: usize, mut f: impl FnMut()) -> Duration {
    f();
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}
