//! TensorFlow's `SAME` padding, shared by the kernels and the blocks that pad explicitly.
//!
//! TF's `SAME` padding is asymmetric: when the total padding is odd, the extra row/column
//! goes to the bottom/right, and the amount depends on the input size, so it is computed per
//! call from the actual input.

/// TF `SAME` padding `(before, after)` along one axis for an input of `size`, kernel `k`
/// and stride `s`: output `ceil(size / s)`, total `max((out - 1) * s + k - size, 0)`,
/// `before = total / 2`.
pub fn same_padding(size: usize, k: usize, s: usize) -> (usize, usize) {
    let s = s.max(1);
    let out = size.div_ceil(s);
    let total = ((out.saturating_sub(1)) * s + k).saturating_sub(size);
    (total / 2, total - total / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_padding_matches_tf() {
        assert_eq!(same_padding(368, 3, 2), (0, 1));
        assert_eq!(same_padding(117, 3, 2), (1, 1));
        assert_eq!(same_padding(78, 3, 2), (0, 1));
        assert_eq!(same_padding(59, 3, 2), (1, 1));
        assert_eq!(same_padding(39, 2, 2), (0, 1));
        assert_eq!(same_padding(46, 3, 1), (1, 1));
        assert_eq!(same_padding(46, 1, 1), (0, 0));
    }
}
