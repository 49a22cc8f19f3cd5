//! CPU kernels as candle custom ops: the convolutions (Winograd, 1×1 panel, depthwise,
//! im2col and small-depth direct), fused bias and activation, bilinear resizes, feature
//! energy, TF `SAME` padding, and the work counter behind `posescope bench`'s GFLOP/s.
//!
//! Nothing here knows a network: the blocks in [`crate::models::blocks`] pick a kernel per
//! layer. Each op runs only on CPU f32 tensors; the callers keep candle's own ops for other
//! devices (the portable path that CUDA and Metal get), and [`custom_cpu`] is the one test
//! every call site asks; [`force_portable`] (or `POSESCOPE_PORTABLE=1`) makes the CPU take
//! the portable path too. The SIMD loops go through
//! [`cpu_util::dispatch`], which picks AVX-512, AVX2 or scalar code at run time, or the
//! level forced by [`cpu_util::force_level`] (tests run every level on any machine).

pub mod bias_act;
pub mod cpu_util;
pub mod cv_cubic;
pub mod depthwise;
pub mod energy;
pub mod flops;
pub mod im2col;
pub mod padding;
pub mod pointwise;
pub mod pool;
mod portable;
pub mod resample;
pub mod resize;
pub mod separable;
pub mod winograd;

pub(crate) use portable::enter;
pub use portable::{custom_cpu, custom_cpu_for, custom_op_runs, force_portable, portable};

#[cfg(test)]
mod tests;
