//! Channel-first stacks of 2-D maps (`[K, H, W]`, row-major), the currency of decoding.
//!
//! Coordinates: a map value at row `y`, column `x` belongs to the pixel whose centre is at
//! `(x, y)` in *pixel-index* coordinates (integers are pixel centres, the pixel covers
//! `[x - 0.5, x + 0.5)`). Every type in `pose` uses this convention and `(x, y)` order.

/// An owned `[K, H, W]` stack of `f32` maps.
#[derive(Clone, Debug, PartialEq)]
pub struct Maps {
    data: Vec<f32>,
    channels: usize,
    height: usize,
    width: usize,
}

/// Shape mismatch when building a [`Maps`].
#[derive(Debug, thiserror::Error)]
#[error("map data has {len} values, expected {channels}x{height}x{width}")]
pub struct MapsShapeError {
    pub len: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl Maps {
    /// Wraps `data` laid out as `[channels, height, width]`.
    pub fn new(
        data: Vec<f32>,
        channels: usize,
        height: usize,
        width: usize,
    ) -> Result<Self, MapsShapeError> {
        if data.len() != channels * height * width {
            return Err(MapsShapeError {
                len: data.len(),
                channels,
                height,
                width,
            });
        }
        Ok(Self {
            data,
            channels,
            height,
            width,
        })
    }

    /// All-zero maps.
    pub fn zeros(channels: usize, height: usize, width: usize) -> Self {
        Self {
            data: vec![0.0; channels * height * width],
            channels,
            height,
            width,
        }
    }

    pub fn channels(&self) -> usize {
        self.channels
    }
    pub fn height(&self) -> usize {
        self.height
    }
    pub fn width(&self) -> usize {
        self.width
    }
    /// `[K, H, W]`.
    pub fn shape(&self) -> [usize; 3] {
        [self.channels, self.height, self.width]
    }
    /// The whole stack, `[K, H, W]` row-major.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }
    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut self.data
    }
    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }

    /// One channel as an `H * W` row-major slice; `None` when `k` is out of range.
    pub fn channel(&self, k: usize) -> Option<&[f32]> {
        let n = self.height * self.width;
        self.data.get(k * n..(k + 1) * n)
    }

    pub fn channel_mut(&mut self, k: usize) -> Option<&mut [f32]> {
        let n = self.height * self.width;
        self.data.get_mut(k * n..(k + 1) * n)
    }

    /// Value at channel `k`, row `y`, column `x`; `None` outside the stack.
    pub fn get(&self, k: usize, y: usize, x: usize) -> Option<f32> {
        if k >= self.channels || y >= self.height || x >= self.width {
            return None;
        }
        self.data
            .get((k * self.height + y) * self.width + x)
            .copied()
    }

    /// Bilinear sample of channel `k` at a continuous pixel-index position, clamped to the
    /// map's border. `None` when `k` is out of range or the map is empty.
    pub fn sample_bilinear(&self, k: usize, x: f32, y: f32) -> Option<f32> {
        let ch = self.channel(k)?;
        if self.width == 0 || self.height == 0 {
            return None;
        }
        let xm = (self.width - 1) as f32;
        let ym = (self.height - 1) as f32;
        let x = x.clamp(0.0, xm);
        let y = y.clamp(0.0, ym);
        let x0 = x.floor() as usize;
        let y0 = y.floor() as usize;
        let x1 = (x0 + 1).min(self.width - 1);
        let y1 = (y0 + 1).min(self.height - 1);
        let fx = x - x0 as f32;
        let fy = y - y0 as f32;
        let at = |yy: usize, xx: usize| ch[yy * self.width + xx];
        let top = at(y0, x0) * (1.0 - fx) + at(y0, x1) * fx;
        let bottom = at(y1, x0) * (1.0 - fx) + at(y1, x1) * fx;
        Some(top * (1.0 - fy) + bottom * fy)
    }

    /// Per-pixel maximum over the channels in `range` (e.g. all joints, without a background
    /// channel), as a single `[H, W]` map. Empty range gives zeros.
    pub fn max_over(&self, range: std::ops::Range<usize>) -> Vec<f32> {
        let n = self.height * self.width;
        let mut out = vec![f32::NEG_INFINITY; n];
        let mut any = false;
        for k in range {
            if let Some(ch) = self.channel(k) {
                any = true;
                for (o, v) in out.iter_mut().zip(ch) {
                    *o = o.max(*v);
                }
            }
        }
        if !any {
            out.iter_mut().for_each(|v| *v = 0.0);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_is_checked() {
        assert!(Maps::new(vec![0.0; 5], 1, 2, 3).is_err());
        let m = Maps::new((0..6).map(|v| v as f32).collect(), 1, 2, 3).unwrap();
        assert_eq!(m.get(0, 1, 2), Some(5.0));
        assert_eq!(m.get(0, 2, 0), None);
    }

    #[test]
    fn bilinear_interpolates_between_centres() {
        let m = Maps::new(vec![0.0, 1.0, 2.0, 3.0], 1, 2, 2).unwrap();
        assert_eq!(m.sample_bilinear(0, 0.5, 0.0), Some(0.5));
        assert_eq!(m.sample_bilinear(0, 0.5, 0.5), Some(1.5));
        assert_eq!(m.sample_bilinear(0, -3.0, 9.0), Some(2.0));
    }

    #[test]
    fn max_over_channels() {
        let m = Maps::new(vec![0.0, 5.0, 2.0, 1.0], 2, 1, 2).unwrap();
        assert_eq!(m.max_over(0..2), vec![2.0, 5.0]);
        assert_eq!(m.max_over(0..0), vec![0.0, 0.0]);
    }
}
