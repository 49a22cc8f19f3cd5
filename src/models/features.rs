//! Intermediate activations worth seeing ([`FeatureMap`]): a network's branch, backbone or
//! decoder outputs, reduced to one "energy" map each so that the app can draw them over the
//! image like the stage maps.
//!
//! The energy of a feature tensor `[N, C, h, w]` is the root mean square over its channels,
//! `e[y, x] = sqrt(Σ_c f[c, y, x]² / C)`, computed on the model's device
//! ([`energy`]) and copied to the CPU as `[1, h, w]` maps. Each grid spans the whole network
//! input (`input / grid` input pixels per cell), the same mapping as the stage maps; grids
//! may be coarser than the heatmaps (1/16, 1/32) or a single cell (image pooling).

use candle_core::{Result as CResult, Tensor};

use super::receptive::ReceptiveField;
use crate::kernels::energy::energy;
use crate::pose::Maps;

/// What the cells of a feature grid see of the input.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CellField {
    /// Not described by the model.
    Unknown,
    /// The theoretical receptive field of a cell, `(along x, along y)`, network-input pixels.
    Local(ReceptiveField, ReceptiveField),
    /// Every cell depends on the whole input (global pooling).
    WholeInput,
}

/// One intermediate activation of a forward pass, on the CPU.
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureMap {
    /// The name in the maps file (`features.{key}`), e.g. `stage4.branch2`, `wasp.aspp1`.
    pub key: String,
    /// What the UI calls it, e.g. `branch 2 (1/8)`.
    pub label: String,
    /// Per-cell RMS over the channels, `[1, h, w]`.
    pub energy: Maps,
    /// The number of channels the energy summarises.
    pub channels: usize,
    /// What one cell sees of the input.
    pub field: CellField,
}

/// One intermediate activation's energy map still on the network's device, `[1, 1, h, w]`;
/// `RunTensors::fetch` reads it into a [`FeatureMap`] with the run's other maps.
#[derive(Clone, Debug)]
pub struct FeatureTensor {
    pub key: String,
    pub label: String,
    pub energy: Tensor,
    pub channels: usize,
    pub field: CellField,
}

impl FeatureTensor {
    /// Reduces `t` (`[N, C, h, w]`; the first item is kept) to its energy map, on its device.
    pub fn new(
        key: impl Into<String>,
        label: impl Into<String>,
        t: &Tensor,
        field: CellField,
    ) -> CResult<Self> {
        let (_, c, _, _) = t.dims4()?;
        Ok(Self {
            key: key.into(),
            label: label.into(),
            energy: energy(&t.narrow(0, 0, 1)?)?,
            channels: c,
            field,
        })
    }
}

impl FeatureMap {
    /// `(height, width)` of the grid.
    pub fn size(&self) -> (usize, usize) {
        (self.energy.height(), self.energy.width())
    }

    /// The label with the grid size (rows×columns) and channel count, e.g.
    /// `branch 2 (1/8), 32×24, 64 ch`.
    pub fn summary(&self) -> String {
        let (h, w) = self.size();
        format!("{}, {h}×{w}, {} ch", self.label, self.channels)
    }
}

/// A label with the grid's fraction of the input, `{name} (1/8)`, from the network input
/// `(height, width)` and the tensor `t` (`[N, C, h, w]`); the bare name when the grid is
/// not a whole fraction.
pub fn with_stride(name: &str, input: (usize, usize), t: &Tensor) -> CResult<String> {
    let (_, _, h, _) = t.dims4()?;
    Ok(match stride_label(input.0, h) {
        Some(s) => format!("{name} ({s})"),
        None => name.to_string(),
    })
}

/// The energy maps of a list of tensors keyed `{prefix}{i + 1}` and labelled
/// `{name} {i + 1} (1/s)`.
pub fn numbered(
    prefix: &str,
    name: &str,
    input: (usize, usize),
    tensors: &[Tensor],
) -> CResult<Vec<FeatureTensor>> {
    tensors
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let label = with_stride(&format!("{name} {}", i + 1), input, t)?;
            FeatureTensor::new(format!("{prefix}{}", i + 1), label, t, CellField::Unknown)
        })
        .collect()
}

/// The fraction of the input a grid of `cells` covers along one side, as a label
/// (`1/8`), from the input side `input`; `None` when it is not a whole divisor.
pub fn stride_label(input: usize, cells: usize) -> Option<String> {
    (cells > 0 && input.is_multiple_of(cells)).then(|| format!("1/{}", input / cells))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn cpu_energy_matches_the_tensor_formulation() {
        let t = Tensor::randn(0f32, 1.0, (2, 5, 3, 7), &Device::Cpu).unwrap();
        let want = t.sqr().unwrap().mean_keepdim(1).unwrap().sqrt().unwrap();
        let got = energy(&t).unwrap();
        assert_eq!(got.dims(), want.dims());
        let d = crate::kernels::cpu_util::max_abs_diff(&got, &want);
        assert!(d < 1e-5, "{d}");
    }

    #[test]
    fn energy_is_the_rms_over_channels() {
        // Two channels of a 1×2 grid: (3, 4) → 5/√2 ; (0, 0) → 0.
        let t = Tensor::from_vec(vec![3f32, 0.0, 4.0, 0.0], (1, 2, 1, 2), &Device::Cpu).unwrap();
        let f = FeatureTensor::new("k", "l", &t, CellField::Unknown).unwrap();
        let f = crate::models::net::RunTensors {
            features: vec![f],
            ..Default::default()
        }
        .fetch()
        .unwrap()
        .features
        .remove(0);
        assert_eq!(f.energy.shape(), [1, 1, 2]);
        assert_eq!(f.channels, 2);
        let e = f.energy.as_slice();
        assert!((e[0] - 5.0 / 2f32.sqrt()).abs() < 1e-6);
        assert_eq!(e[1], 0.0);
        assert_eq!(f.summary(), "l, 1×2, 2 ch");
        assert_eq!(stride_label(256, 32), Some("1/8".into()));
        assert_eq!(stride_label(10, 3), None);
    }
}
