//! Counting the floating-point work of a forward pass, for `posescope bench`'s GFLOP/s.
//!
//! Every convolution and matrix product the networks run goes through a few functions
//! ([`crate::kernels::im2col`], [`crate::models::blocks::folded`], [`crate::models::blocks::ops`]); each adds its multiply-adds
//! (counted as 2 FLOPs, the usual convention of ONNX Runtime and PyTorch profilers) to a
//! per-thread counter. [`count`] reads the work done by one closure on the calling thread.
//! Element-wise work (bias, ReLU, pooling, resizes) is not counted: it is a small share of
//! these networks and not what GFLOP/s figures usually include.

use std::cell::Cell;

thread_local! {
    static FLOPS: Cell<u64> = const { Cell::new(0) };
}

/// Adds `multiply_adds` (2 FLOPs each) to the calling thread's counter.
pub fn add_multiply_adds(multiply_adds: usize) {
    FLOPS.with(|f| f.set(f.get().saturating_add(2 * multiply_adds as u64)));
}

/// Adds `flops` counted elsewhere (on another thread) to the calling thread's counter.
pub fn add_flops(flops: u64) {
    FLOPS.with(|f| f.set(f.get().saturating_add(flops)));
}

/// A convolution producing `out_elements` outputs, each a dot product of `cin_per_group ×
/// kh × kw` terms.
pub fn add_conv(out_elements: usize, cin_per_group: usize, kh: usize, kw: usize) {
    add_multiply_adds(out_elements.saturating_mul(cin_per_group * kh * kw));
}

/// Runs `f` and returns its result with the FLOPs it counted on this thread.
pub fn count<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let before = FLOPS.with(Cell::get);
    let out = f();
    let after = FLOPS.with(Cell::get);
    (out, after.saturating_sub(before))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_only_inside_the_closure() {
        add_conv(10, 3, 3, 3);
        let ((), n) = count(|| {
            add_conv(4, 2, 3, 3); // 4 · 18 multiply-adds
            add_multiply_adds(5);
        });
        assert_eq!(n, 2 * (4 * 18 + 5));
    }
}
