//! 2-D affine transforms between coordinate frames (image, network input, output maps).
//!
//! All frames use pixel-index coordinates: integers are pixel centres, `(x, y)` order.
//! A transform maps a point `p` to `M * [x, y, 1]^T` with `M` a 2×3 row-major matrix.

use serde::{Deserialize, Serialize};

/// Where a network's output-map cells sit on its input, as its training targets put them
/// (a property of the original training code, not of the layers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum GridAlign {
    /// Cell `i` is the centre of the input pixels it covers: input `(i + 0.5)·s − 0.5` for
    /// a grid `s` times coarser ([`Affine2::resample`]).
    #[default]
    Centre,
    /// Cell `i` is input pixel `i·s`: targets drawn at `keypoint / s`, and TF's legacy
    /// resize (`align_corners=False`, no half-pixel centres), which samples output pixel `u`
    /// at input `u / s`, keeps it. The PoseEstimationForMobile models are decoded this way
    /// by their own code (`x = ix·W/96` on the ×4-upsampled map).
    Corner,
}

impl GridAlign {
    /// Grid cell → input pixel for a grid `fx`, `fy` times coarser than the input.
    pub fn grid_to_input(self, fx: f64, fy: f64) -> Affine2 {
        match self {
            GridAlign::Centre => Affine2::resample(fx, fy),
            GridAlign::Corner => Affine2::scale_translate(fx, fy, 0.0, 0.0),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            GridAlign::Centre => "centre",
            GridAlign::Corner => "corner",
        }
    }
}

impl std::str::FromStr for GridAlign {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "centre" | "center" => Ok(GridAlign::Centre),
            "corner" => Ok(GridAlign::Corner),
            _ => Err(format!(
                "unknown grid alignment '{s}': use centre or corner"
            )),
        }
    }
}

/// A 2×3 affine transform `[[a, b, tx], [c, d, ty]]`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Affine2 {
    /// Row-major `[a, b, tx, c, d, ty]`.
    pub m: [f64; 6],
}

impl Affine2 {
    pub const IDENTITY: Self = Self {
        m: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
    };

    /// `x' = sx * x + tx`, `y' = sy * y + ty`.
    pub fn scale_translate(sx: f64, sy: f64, tx: f64, ty: f64) -> Self {
        Self {
            m: [sx, 0.0, tx, 0.0, sy, ty],
        }
    }

    /// The transform taking pixel centres of a grid to the pixel centres of the same region
    /// resampled by `factor` (factor > 1 upsamples). A pixel `i` of the coarse grid covers
    /// `[i - 0.5, i + 0.5)`, so its centre maps to `(i + 0.5) * factor - 0.5`.
    pub fn resample(fx: f64, fy: f64) -> Self {
        Self::scale_translate(fx, fy, 0.5 * fx - 0.5, 0.5 * fy - 0.5)
    }

    pub fn apply(&self, x: f64, y: f64) -> (f64, f64) {
        let m = &self.m;
        (m[0] * x + m[1] * y + m[2], m[3] * x + m[4] * y + m[5])
    }

    /// `self` after `first`: `self.then_after(first).apply(p) == self.apply(first.apply(p))`.
    pub fn after(&self, first: &Affine2) -> Affine2 {
        let a = &self.m;
        let b = &first.m;
        Affine2 {
            m: [
                a[0] * b[0] + a[1] * b[3],
                a[0] * b[1] + a[1] * b[4],
                a[0] * b[2] + a[1] * b[5] + a[2],
                a[3] * b[0] + a[4] * b[3],
                a[3] * b[1] + a[4] * b[4],
                a[3] * b[2] + a[4] * b[5] + a[5],
            ],
        }
    }

    /// The inverse transform; `None` when the matrix is singular.
    pub fn inverse(&self) -> Option<Affine2> {
        let [a, b, tx, c, d, ty] = self.m;
        let det = a * d - b * c;
        if det.abs() < 1e-12 || !det.is_finite() {
            return None;
        }
        let ia = d / det;
        let ib = -b / det;
        let ic = -c / det;
        let id = a / det;
        Some(Affine2 {
            m: [ia, ib, -(ia * tx + ib * ty), ic, id, -(ic * tx + id * ty)],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resample_maps_centres() {
        // A stride-8 map: map pixel 0 covers image pixels 0..8, centre 3.5.
        let t = Affine2::resample(8.0, 8.0);
        assert_eq!(t.apply(0.0, 0.0), (3.5, 3.5));
        assert_eq!(t.apply(1.0, 2.0), (11.5, 19.5));
    }

    #[test]
    fn compose_and_invert() {
        let a = Affine2::scale_translate(2.0, 3.0, 1.0, -1.0);
        let b = Affine2::resample(8.0, 8.0);
        let ab = a.after(&b);
        let p = ab.apply(1.5, 2.5);
        let q = b.apply(1.5, 2.5);
        assert_eq!(p, a.apply(q.0, q.1));
        let inv = ab.inverse().unwrap();
        let back = inv.apply(p.0, p.1);
        assert!((back.0 - 1.5).abs() < 1e-12 && (back.1 - 2.5).abs() < 1e-12);
        assert!(Affine2::scale_translate(0.0, 1.0, 0.0, 0.0)
            .inverse()
            .is_none());
    }
}
