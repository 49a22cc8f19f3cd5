//! Reading a network's configuration from a checkpoint's tensor shapes (HRNet, HigherHRNet,
//! SimpleBaseline): counting numbered keys and reading convolution weight shapes.

use candle_core::Result as CResult;

/// The most numbered entries (blocks, modules, branches) counted.
pub(crate) const MAX_COUNT: usize = 256;

/// How many of the keys `key(0)`, `key(1)`, … are present, stopping at the first absent one.
pub(crate) fn count_present(
    shape: &dyn Fn(&str) -> Option<Vec<usize>>,
    key: &dyn Fn(usize) -> String,
) -> usize {
    (0..MAX_COUNT)
        .take_while(|&i| shape(&key(i)).is_some())
        .count()
}

/// The shape of the 4-d convolution weight `key`; the error names the key and, when it is
/// absent, the `family` of checkpoint expected.
pub(crate) fn conv4(
    shape: &dyn Fn(&str) -> Option<Vec<usize>>,
    key: &str,
    family: &str,
) -> CResult<[usize; 4]> {
    let s = shape(key).ok_or_else(|| {
        candle_core::Error::Msg(format!(
            "no tensor '{key}' (not a {family} checkpoint, or a truncated one)"
        ))
    })?;
    <[usize; 4]>::try_from(s.as_slice()).map_err(|_| {
        candle_core::Error::Msg(format!(
            "tensor '{key}' has shape {s:?}, expected a 4-d convolution weight"
        ))
    })
}
