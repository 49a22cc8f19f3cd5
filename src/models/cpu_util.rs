//! Small pieces shared by the CPU kernels (custom candle ops): reading an op's input as a
//! contiguous f32 slice, and whole-vector loads and stores for [`pulp`] code.

#[cfg(test)]
use candle_core::Tensor;
use candle_core::{CpuStorage, Layout, Result};

/// The f32 values of a contiguous input `layout` over `storage`; `op` names the operation
/// in the errors.
pub(crate) fn f32_input<'s>(
    storage: &'s CpuStorage,
    layout: &Layout,
    op: &str,
) -> Result<&'s [f32]> {
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("{op}: input must be contiguous");
    };
    storage
        .as_slice::<f32>()?
        .get(start..end)
        .ok_or_else(|| candle_core::Error::Msg(format!("{op}: storage too short")))
}

/// One vector from `src` (`S::F32_LANES` values or fewer): a plain unaligned load when full
/// (pulp's partial load goes through a table of masks).
#[inline(always)]
pub(crate) fn load<S: pulp::Simd>(simd: S, src: &[f32]) -> S::f32s {
    match S::as_simd_f32s(src).0.first() {
        Some(&v) => v,
        None => simd.partial_load_f32s(src),
    }
}

/// Stores `value` into `dst` (`S::F32_LANES` values or fewer), like [`load`].
#[inline(always)]
pub(crate) fn store<S: pulp::Simd>(simd: S, dst: &mut [f32], value: S::f32s) {
    match S::as_mut_simd_f32s(dst).0.first_mut() {
        Some(v) => *v = value,
        None => simd.partial_store_f32s(dst, value),
    }
}

/// The largest absolute difference of two f32 tensors of one shape (for tests).
#[cfg(test)]
#[allow(clippy::expect_used)]
pub(crate) fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    (a - b)
        .and_then(|d| d.abs())
        .and_then(|d| d.max_all())
        .and_then(|d| d.to_scalar::<f32>())
        .expect("difference of two f32 tensors")
}
