//! Every kernel test at every SIMD level this CPU can run: the unit tests of the kernels and
//! the blocks that call them run again in a child process with `POSESCOPE_SIMD` forcing
//! AVX-512, AVX-512 with 256-bit vectors, AVX2 and the scalar fallback in turn.

use super::bias_act::{bias_act, Act, Bias};
use super::cpu_util::{dispatch_count, forced_level, Level};
use candle_core::{Device, Tensor};

/// The forced level (if any) is the one the kernels run at.
#[test]
#[allow(clippy::unwrap_used)]
fn forced_level_is_the_one_that_runs() {
    let level = forced_level();
    let before = dispatch_count(level);
    let y = Tensor::arange(-8f32, 8.0, &Device::Cpu)
        .unwrap()
        .reshape((1, 2, 2, 4))
        .unwrap();
    let bias = Bias::new(&Tensor::new(&[1f32, -1.0], &Device::Cpu).unwrap()).unwrap();
    let out = bias_act(y, Some(&bias), Act::Relu).unwrap();
    let v: Vec<f32> = out.flatten_all().unwrap().to_vec1().unwrap();
    let want: Vec<f32> = (0..16)
        .map(|i| (i as f32 - 8.0 + if i < 8 { 1.0 } else { -1.0 }).max(0.0))
        .collect();
    assert_eq!(v, want);
    let expected = if level.is_available() {
        level
    } else {
        Level::Scalar
    };
    assert!(
        dispatch_count(expected) > before || level == Level::Detected,
        "the kernels did not run at the forced level {level:?}"
    );
}

/// Runs the kernel and block tests again in a child process at each level.
#[test]
#[allow(clippy::unwrap_used)]
fn kernel_tests_pass_at_every_simd_level() {
    if std::env::var_os("POSESCOPE_SIMD").is_some() {
        return; // the child itself
    }
    let exe = std::env::current_exe().unwrap();
    let mut ran = Vec::new();
    for name in ["avx512", "avx512-narrow", "avx2", "scalar"] {
        let level = Level::parse(name).unwrap();
        if !level.is_available() {
            println!("{name}: this CPU lacks it, not run here");
            continue;
        }
        let out = std::process::Command::new(&exe)
            .args(["kernels::", "models::blocks::", "--test-threads=2"])
            .env("POSESCOPE_SIMD", name)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "kernel tests at {name} failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let passed: usize = stdout
            .lines()
            .filter_map(|l| l.strip_prefix("test result: ok. "))
            .filter_map(|l| l.split_whitespace().next()?.parse::<usize>().ok())
            .sum();
        assert!(
            passed >= 20 && stdout.contains("forced_level_is_the_one_that_runs ... ok"),
            "too few kernel tests ran at {name} ({passed}):\n{stdout}"
        );
        println!("{name}: {passed} kernel and block tests passed");
        ran.push(name);
    }
    // The scalar fallback runs on every CPU; x86-64 machines here all have AVX2.
    assert!(ran.contains(&"scalar"), "levels run: {ran:?}");
}
