//! Theoretical receptive fields, computed from a network's layer list.
//!
//! Each network describes, per stage, the longest chain of spatial layers from the input
//! image to that stage's output maps ([`RfLayer`]s in order). The receptive field of an
//! output cell follows from the usual recurrences (Araujo et al., "Computing Receptive Fields
//! of Convolutional Neural Networks", Distill 2019), in input pixels:
//!
//! - `size_out = size_in + (k_eff − 1) · jump_in`, with `k_eff = dilation · (k − 1) + 1`;
//! - `jump_out = jump_in · stride`;
//! - `start_out = start_in + ((k_eff − 1) / 2 − pad_before) · jump_in` (centre of the first
//!   output cell's field).
//!
//! Upsampling by an integer factor `f` (nearest or bilinear) divides the jump; bilinear
//! interpolation also reads the next input cell, which grows the field by one input jump.
//! Where a stage concatenates several paths (e.g. image features and the previous stage's
//! beliefs), the chain is the path with the largest field, which for multi-stage networks
//! is the path through every earlier stage.
//!
//! Coordinates are network-input pixel indices (pixel centres are integers), `(x, y)`.

/// One spatial layer of a chain. Padding is the amount added before the first row/column
/// (TF `SAME` padding depends on the input size; callers compute it for the size they run).
#[derive(Clone, Debug, PartialEq)]
pub struct RfLayer {
    /// The layer's parameter-name prefix, for display.
    pub name: String,
    pub kind: RfKind,
}

/// What a layer does to the field.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RfKind {
    /// Convolution or pooling window.
    Window {
        kernel: usize,
        stride: usize,
        dilation: usize,
        pad_before: usize,
    },
    /// Upsampling by an integer factor; `taps` is how many input cells one output reads
    /// along an axis (1 for nearest, 2 for bilinear).
    Upsample { factor: usize, taps: usize },
}

impl RfLayer {
    /// A convolution or pooling window.
    pub fn window(
        name: impl Into<String>,
        kernel: usize,
        stride: usize,
        dilation: usize,
        pad_before: usize,
    ) -> Self {
        Self {
            name: name.into(),
            kind: RfKind::Window {
                kernel,
                stride,
                dilation,
                pad_before,
            },
        }
    }

    /// An upsampling by `factor` (bilinear when `bilinear`).
    pub fn upsample(name: impl Into<String>, factor: usize, bilinear: bool) -> Self {
        Self {
            name: name.into(),
            kind: RfKind::Upsample {
                factor,
                taps: if bilinear { 2 } else { 1 },
            },
        }
    }
}

/// The receptive field of the cells of one output map, in input pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReceptiveField {
    /// Side length of the field (pixels).
    pub size: f64,
    /// Distance between the fields of neighbouring output cells (pixels).
    pub jump: f64,
    /// Centre of output cell (0, 0)'s field.
    pub start: f64,
}

impl ReceptiveField {
    /// The field of the input itself: one pixel.
    pub const PIXEL: ReceptiveField = ReceptiveField {
        size: 1.0,
        jump: 1.0,
        start: 0.0,
    };

    /// Applies one layer.
    pub fn then(self, layer: &RfLayer) -> ReceptiveField {
        match layer.kind {
            RfKind::Window {
                kernel,
                stride,
                dilation,
                pad_before,
            } => {
                let k_eff = (dilation.max(1) * (kernel.max(1) - 1) + 1) as f64;
                ReceptiveField {
                    size: self.size + (k_eff - 1.0) * self.jump,
                    jump: self.jump * stride.max(1) as f64,
                    start: self.start + ((k_eff - 1.0) / 2.0 - pad_before as f64) * self.jump,
                }
            }
            RfKind::Upsample { factor, taps } => {
                let f = factor.max(1) as f64;
                ReceptiveField {
                    size: self.size + (taps.max(1) - 1) as f64 * self.jump,
                    jump: self.jump / f,
                    start: self.start,
                }
            }
        }
    }

    /// The field after a chain of layers, starting from the input pixels.
    pub fn of_chain(layers: &[RfLayer]) -> ReceptiveField {
        layers.iter().fold(Self::PIXEL, |rf, l| rf.then(l))
    }

    /// The field of output cell `(x, y)`: `(centre_x, centre_y, size)` in input pixels. The
    /// field may extend beyond the input (into padding).
    pub fn cell(&self, x: f64, y: f64) -> (f64, f64, f64) {
        (
            self.start + x * self.jump,
            self.start + y * self.jump,
            self.size,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_conv_and_pool() {
        // A 3×3 conv with padding 1 sees 3 pixels centred on the cell.
        let rf = ReceptiveField::of_chain(&[RfLayer::window("c", 3, 1, 1, 1)]);
        assert_eq!((rf.size, rf.jump, rf.start), (3.0, 1.0, 0.0));
        // A 2×2 s2 pool without padding: cell 0 covers pixels 0..1, centre 0.5.
        let rf = ReceptiveField::of_chain(&[RfLayer::window("p", 2, 2, 1, 0)]);
        assert_eq!((rf.size, rf.jump, rf.start), (2.0, 2.0, 0.5));
    }

    #[test]
    fn vgg_like_chain_matches_the_hand_computation() {
        // conv3 p1, conv3 p1, pool2 s2, conv3 p1: sizes 3, 5, 6, 10; jump 2.
        let chain = [
            RfLayer::window("c1", 3, 1, 1, 1),
            RfLayer::window("c2", 3, 1, 1, 1),
            RfLayer::window("p1", 2, 2, 1, 0),
            RfLayer::window("c3", 3, 1, 1, 1),
        ];
        let rf = ReceptiveField::of_chain(&chain);
        assert_eq!(rf.size, 10.0);
        assert_eq!(rf.jump, 2.0);
        assert_eq!(rf.start, 0.5);
        assert_eq!(rf.cell(3.0, 1.0), (6.5, 2.5, 10.0));
    }

    #[test]
    fn dilation_and_upsampling() {
        // A dilated 3×3 (d = 2) acts as a 5×5.
        let rf = ReceptiveField::of_chain(&[RfLayer::window("d", 3, 1, 2, 2)]);
        assert_eq!(rf.size, 5.0);
        // Stride 2 then bilinear ×2: jump back to 1, one more input cell read.
        let rf = ReceptiveField::of_chain(&[
            RfLayer::window("s", 3, 2, 1, 1),
            RfLayer::upsample("up", 2, true),
        ]);
        assert_eq!((rf.size, rf.jump), (5.0, 1.0));
    }
}
