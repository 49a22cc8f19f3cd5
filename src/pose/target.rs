//! Training targets: the Gaussian heatmap a network was trained to output for a joint, in
//! the map's own grid (pixel-index coordinates, cell centres at integers).

/// How a recipe states its σ.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SigmaUnit {
    /// Pixels of the network input (the target is drawn at input resolution, then resized
    /// to the map).
    InputPixels,
    /// Cells of the output map.
    MapCells,
}

/// A training recipe's heatmap target: `exp(−d² / 2σ²)` around the joint, zero beyond a
/// cut-off.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TargetSpec {
    pub sigma: f64,
    pub unit: SigmaUnit,
    /// Cells with `d² / 2σ² > cutoff` are 0 (`None`: nowhere cut).
    pub cutoff: Option<f64>,
    /// Where the recipe comes from, in a line.
    pub source: &'static str,
}

impl TargetSpec {
    /// σ in map cells for a map `map_width` cells wide over an input `input_width` pixels
    /// wide.
    pub fn sigma_cells(&self, input_width: u32, map_width: usize) -> f64 {
        match self.unit {
            SigmaUnit::MapCells => self.sigma,
            SigmaUnit::InputPixels => self.sigma * map_width as f64 / f64::from(input_width.max(1)),
        }
    }

    /// The target map `[height, width]` (row-major) for a joint at `(x, y)` map cells.
    pub fn render(
        &self,
        width: usize,
        height: usize,
        at: (f64, f64),
        sigma_cells: f64,
    ) -> Vec<f32> {
        gaussian(width, height, at, sigma_cells, self.cutoff)
    }
}

/// `exp(−d² / 2σ²)` over a `width × height` grid around `(x, y)` (cells; sub-cell positions
/// allowed), 0 where `d² / 2σ² > cutoff`. A σ that is not a positive finite number gives an
/// all-zero map.
pub fn gaussian(
    width: usize,
    height: usize,
    (x, y): (f64, f64),
    sigma: f64,
    cutoff: Option<f64>,
) -> Vec<f32> {
    let mut out = vec![0.0f32; width * height];
    if !(sigma.is_finite() && sigma > 0.0 && x.is_finite() && y.is_finite()) {
        return out;
    }
    let s2 = 2.0 * sigma * sigma;
    for (i, v) in out.iter_mut().enumerate() {
        let (cx, cy) = ((i % width) as f64, (i / width) as f64);
        let e = ((cx - x).powi(2) + (cy - y).powi(2)) / s2;
        if cutoff.is_none_or(|c| e <= c) {
            *v = (-e).exp() as f32;
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn gaussian_by_hand() {
        let g = gaussian(5, 4, (2.0, 1.0), 1.0, None);
        assert_eq!(g.len(), 20);
        assert_eq!(g[5 + 2], 1.0);
        // One cell away: exp(-1/2); diagonal: exp(-1).
        assert!((g[5 + 3] - (-0.5f32).exp()).abs() < 1e-6);
        assert!((g[2 * 5 + 3] - (-1.0f32).exp()).abs() < 1e-6);
        // The cut-off at d²/2σ² = 1.0052 (PEFM) keeps the cell at d = 1.41 and drops d = 2.
        let c = gaussian(5, 4, (2.0, 1.0), 1.0, Some(1.0052));
        assert!(c[2 * 5 + 3] > 0.0);
        assert_eq!(c[3 * 5 + 2], 0.0);
        assert!(g[3 * 5 + 2] > 0.0);
        assert!(gaussian(3, 3, (1.0, 1.0), 0.0, None)
            .iter()
            .all(|&v| v == 0.0));
        let spec = TargetSpec {
            sigma: 6.0,
            unit: SigmaUnit::InputPixels,
            cutoff: None,
            source: "",
        };
        assert_eq!(spec.sigma_cells(192, 96), 3.0);
        let cells = TargetSpec {
            unit: SigmaUnit::MapCells,
            sigma: 2.0,
            ..spec
        };
        assert_eq!(cells.sigma_cells(192, 96), 2.0);
    }
}
