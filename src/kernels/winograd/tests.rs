//! Tests of the Winograd convolution and its weights.

use super::*;
use candle_core::{DType, Device};

/// Max-abs difference to candle's conv2d computed in f64, relative to the output's RMS.
fn check(n: usize, c: usize, o: usize, k: usize, pad: usize, h: usize, w: usize) -> f64 {
    let dev = Device::Cpu;
    let x = Tensor::randn(0f32, 1.0, (n, c, h, w), &dev).unwrap();
    let wt = Tensor::randn(0f32, 1.0, (o, c, k, k), &dev).unwrap();
    let want = x
        .to_dtype(DType::F64)
        .unwrap()
        .conv2d(&wt.to_dtype(DType::F64).unwrap(), pad, 1, 1, 1)
        .unwrap();
    let got = conv2d(
        &x,
        &WinogradWeight::new(wt.clone()).unwrap(),
        pad,
        None,
        Act::None,
    )
    .unwrap();
    assert_eq!(got.dims(), want.dims(), "k{k} p{pad} {h}x{w}");
    let got = got.to_dtype(DType::F64).unwrap();
    let rms = want
        .sqr()
        .unwrap()
        .mean_all()
        .unwrap()
        .to_scalar::<f64>()
        .unwrap();
    let d = (got - &want)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f64>()
        .unwrap();
    d / rms.sqrt()
}

#[test]
fn matches_direct_convolution() {
    for (n, c, o, k, pad, h, w) in [
        (1, 4, 5, 3, 1, 7, 9),
        (2, 3, 2, 3, 1, 1, 1),
        (2, 6, 3, 3, 0, 8, 5),
        (1, 5, 4, 5, 2, 11, 6),
        (1, 3, 4, 9, 4, 13, 10),
        (2, 4, 3, 11, 5, 12, 14),
        (1, 2, 3, 7, 3, 3, 4),
        (1, 17, 19, 3, 1, 40, 37),
        // Rows of 16 tiles and more: the AVX-512 phase split and merge, with the last
        // block moved back, padded and unpadded, widths not a multiple of 3.
        (1, 3, 4, 3, 1, 7, 100),
        (1, 2, 3, 3, 0, 5, 131),
        (2, 3, 2, 5, 2, 6, 149),
        (1, 2, 2, 9, 4, 5, 70),
        (1, 2, 2, 3, 1, 4, 48),
    ] {
        // One thread, and two (the products split in halves of the output channels,
        // odd counts included).
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let err = pool.install(|| check(n, c, o, k, pad, h, w));
            assert!(
                err < 2e-5,
                "n{n} c{c} o{o} k{k} p{pad} {h}x{w}, {threads} threads: {err:.3e}"
            );
        }
    }
}

#[test]
fn bias_and_activation_are_applied_to_every_output() {
    let dev = Device::Cpu;
    let (c, o, k, pad) = (5, 3, 3, 1);
    let x = Tensor::randn(0f32, 1.0, (2, c, 8, 11), &dev).unwrap();
    let wt = Tensor::randn(0f32, 1.0, (o, c, k, k), &dev).unwrap();
    let bias = [0.5f32, -1.0, 2.0];
    let got = conv2d(
        &x,
        &WinogradWeight::new(wt.clone()).unwrap(),
        pad,
        Some(&bias),
        Act::Relu,
    )
    .unwrap()
    .flatten_all()
    .unwrap()
    .to_vec1::<f32>()
    .unwrap();
    let b = Tensor::new(&bias, &dev)
        .unwrap()
        .reshape((1, o, 1, 1))
        .unwrap();
    let want = x
        .conv2d(&wt, pad, 1, 1, 1)
        .unwrap()
        .broadcast_add(&b)
        .unwrap()
        .relu()
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert_eq!(got.len(), want.len());
    assert!(want.contains(&0.0) && want.iter().any(|&v| v > 0.0));
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() < 1e-4, "{g} vs {w}");
    }
}

#[test]
fn written_out_transforms_match_the_matrices() {
    let s = pulp::Scalar::new();
    for col in 0..N {
        let mut d = [0f32; N];
        d[col] = 1.0;
        let bt = bt5(s, d);
        let at = at5(s, d);
        for i in 0..N {
            assert_eq!(bt[i], BT[i][col], "Bt[{i}][{col}]");
        }
        for i in 0..M {
            assert_eq!(at[i], AT[i][col], "At[{i}][{col}]");
        }
    }
}

#[test]
fn small_maps_keep_im2col_until_a_transform_exists() {
    // 3×3, pad 1, 256 channels (6.6 MB transformed): 36 tiles on 16×16 are too few, 121
    // on 32×32 enough; 16 channels (26 KB) are worth it on any map with a tile.
    assert!(!enough_tiles(3, (256, 256), (16, 16), 1));
    assert!(enough_tiles(3, (256, 256), (32, 32), 1));
    assert!(enough_tiles(3, (128, 128), (32, 32), 1));
    assert!(enough_tiles(3, (16, 16), (3, 3), 1));
    // CPM's 11×11 stage kernels (128 channels) at 368² (46×46 maps), and at 184².
    assert!(enough_tiles(11, (128, 128), (46, 46), 5));
    assert!(!enough_tiles(11, (128, 128), (23, 23), 5));
    assert!(!enough_tiles(5, (16, 16), (2, 2), 0));
    let wt = Tensor::randn(0f32, 0.02, (256, 256, 3, 3), &Device::Cpu).unwrap();
    let bias = Bias::new(&Tensor::zeros(256, DType::F32, &Device::Cpu).unwrap()).unwrap();
    let max_abs = crate::kernels::cpu_util::max_abs_diff;
    let weight = WinogradWeight::new(wt.clone()).unwrap();
    let small = Tensor::randn(0f32, 1.0, (1, 256, 16, 16), &Device::Cpu).unwrap();
    let large = Tensor::randn(0f32, 1.0, (1, 256, 32, 32), &Device::Cpu).unwrap();
    // Small map first: im2col, nothing transformed, the original kept.
    let y = conv2d_auto(&small, &weight, (1, 1), &bias, Act::None).unwrap();
    assert!(!weight.transformed());
    assert!(weight.read_original().is_some());
    let direct_small = small.conv2d(&wt, 1, 1, 1, 1).unwrap();
    assert!(max_abs(&y, &direct_small) < 1e-4);
    // A large map builds the transform and drops the original...
    let y = conv2d_auto(&large, &weight, (1, 1), &bias, Act::None).unwrap();
    assert!(weight.transformed());
    assert!(weight.read_original().is_none());
    let err = max_abs(&y, &large.conv2d(&wt, 1, 1, 1, 1).unwrap());
    assert!(err < 1e-4, "32x32: max-abs {err}");
    // ...and the small map then takes the transform too.
    let y = conv2d_auto(&small, &weight, (1, 1), &bias, Act::None).unwrap();
    assert!(weight.read_original().is_none());
    let err = max_abs(&y, &direct_small);
    assert!(err < 1e-4, "16x16 after the transform: max-abs {err}");
}

#[test]
fn the_original_weight_is_rebuilt_from_the_transform() {
    for (o, c, k) in [(4, 3, 3), (2, 5, 5), (3, 2, 7), (2, 2, 11), (1, 1, 1)] {
        let wt = Tensor::randn(0f32, 1.0, (o, c, k, k), &Device::Cpu).unwrap();
        let weight = WinogradWeight::new(wt.clone()).unwrap();
        weight.kernel().unwrap();
        assert!(weight.read_original().is_none());
        let back = weight.original().unwrap();
        assert_eq!(back.dims4().unwrap(), (o, c, k, k));
        let err = crate::kernels::cpu_util::max_abs_diff(&back, &wt);
        assert!(err < 1e-5, "{o}x{c}x{k}x{k}: max-abs {err}");
        // Held again: the same tensor from now on.
        assert!(weight.read_original().is_some());
    }
}

#[test]
fn kernel_larger_than_input_is_an_error() {
    let x = Tensor::zeros((1, 2, 3, 3), DType::F32, &Device::Cpu).unwrap();
    let wt = Tensor::zeros((2, 2, 5, 5), DType::F32, &Device::Cpu).unwrap();
    assert!(conv2d(&x, &WinogradWeight::new(wt).unwrap(), 0, None, Act::None).is_err());
}
