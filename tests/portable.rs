//! The portable switch (`posescope::kernels::force_portable`, `POSESCOPE_PORTABLE`): with it
//! on, a network runs no custom CPU kernel (the custom ops count their runs) and gives the
//! same maps as the custom kernels. One test, as the switch is global to the process.
//! Each parity test binary re-runs its fixture checks on this path
//! (`parity_holds_on_the_portable_path`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use candle_core::{Device, Tensor};
use posescope::kernels::{custom_op_runs, force_portable, portable};
use posescope::models::nets::cpm::{self, Config, Cpm};
use posescope::weights::posegen;

#[test]
fn the_portable_path_runs_no_custom_kernel_and_gives_the_same_maps() {
    let dev = Device::Cpu;
    let (vb, _) = posegen::var_builder(posegen::GAIN_CPM, &dev);
    let model = Cpm::load(vb, Config::lsp()).unwrap();
    let image = Tensor::randn(0f32, 1.0, (1, 3, 64, 64), &dev).unwrap();
    let center = cpm::center_map_tensor(64, 64, 32.0, 32.0, 3.0, &dev).unwrap();

    force_portable(false);
    let before = custom_op_runs();
    let custom = model.forward(&image, &center).unwrap();
    let custom_runs = custom_op_runs() - before;
    assert!(
        custom_runs > 20,
        "{custom_runs} custom kernels ran on the custom path"
    );

    force_portable(true);
    assert!(portable());
    let before = custom_op_runs();
    let device_path = model.forward(&image, &center).unwrap();
    assert_eq!(
        custom_op_runs(),
        before,
        "a custom CPU kernel ran on the portable path"
    );
    force_portable(false);

    for (a, b) in custom.stages.iter().zip(&device_path.stages) {
        let diff = max_abs(&(a - b).unwrap());
        let scale = max_abs(a);
        assert!(diff <= 1e-3 * scale.max(1e-6), "max-abs {diff} of {scale}");
    }
    println!("custom path: {custom_runs} custom kernel runs; portable path: none");
}

/// The largest absolute value of `t`.
fn max_abs(t: &Tensor) -> f32 {
    t.abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}
