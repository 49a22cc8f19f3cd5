//! A convolution's weight in the Winograd transform domain: the transform itself (once per
//! weight, in f64), its inverse, and [`WinogradWeight`], which holds a weight and replaces it
//! with its transform once that is built.

use std::sync::{Arc, OnceLock};

use candle_core::{Result, Tensor};

use super::{N, XI};

/// `G` (5×3) for the same points, divided by the row scales of `BT` (in the parent module).
const G: [[f64; 3]; N] = [
    [0.5, 0.0, 0.0],
    [0.5, 0.5, 0.5],
    [1.0 / 6.0, -1.0 / 6.0, 1.0 / 6.0],
    [1.0 / 6.0, 2.0 / 6.0, 4.0 / 6.0],
    [0.0, 0.0, 1.0],
];

/// A `[O, C, K, K]` kernel in the transform domain: `u[((ξ·S² + block)·O + o)·C + c]`.
#[derive(Debug)]
pub struct WinogradKernel {
    pub(super) out_channels: usize,
    pub(super) in_channels: usize,
    pub(super) kernel: usize,
    pub(super) blocks: usize,
    pub(super) u: Vec<f32>,
}

impl WinogradKernel {
    /// Transforms `weight` (`[O, C, K, K]`, any float dtype, any device).
    pub fn new(weight: &Tensor) -> Result<Self> {
        let (o, c, kh, kw) = weight.dims4()?;
        if kh != kw || kh == 0 {
            candle_core::bail!("winograd: kernel {kh}x{kw} is not square");
        }
        let k = kh;
        let s = k.div_ceil(3);
        let w: Vec<f64> = weight
            .to_dtype(candle_core::DType::F64)?
            .flatten_all()?
            .to_vec1()?;
        let mut u = vec![0f32; XI * s * s * o * c];
        let tap = |oc: usize, ic: usize, y: usize, x: usize| -> f64 {
            if y < k && x < k {
                w[((oc * c + ic) * k + y) * k + x]
            } else {
                0.0
            }
        };
        for oc in 0..o {
            for ic in 0..c {
                for a in 0..s {
                    for b in 0..s {
                        let block = a * s + b;
                        // t = G · g  (5×3), then G · g · Gᵀ (5×5).
                        let mut t = [[0f64; 3]; N];
                        for (i, row) in t.iter_mut().enumerate() {
                            for (x, v) in row.iter_mut().enumerate() {
                                *v = (0..3)
                                    .map(|y| G[i][y] * tap(oc, ic, 3 * a + y, 3 * b + x))
                                    .sum();
                            }
                        }
                        for (i, ti) in t.iter().enumerate() {
                            for (j, gj) in G.iter().enumerate() {
                                let v: f64 = ti.iter().zip(gj).map(|(t, g)| t * g).sum();
                                let xi = i * N + j;
                                u[((xi * s * s + block) * o + oc) * c + ic] = v as f32;
                            }
                        }
                    }
                }
            }
        }
        Ok(Self {
            out_channels: o,
            in_channels: c,
            kernel: k,
            blocks: s,
            u,
        })
    }
}

impl WinogradKernel {
    /// The `[O, C, K, K]` weight this transform was made from, rebuilt from it: `G` has the
    /// rows `[½, 0, 0]`, `[½, ½, ½]` and `[0, 0, 1]` (points 0, 1, ∞), so along each axis
    /// `g₀ = 2u₀`, `g₂ = u₄` and `g₁ = 2u₁ − g₀ − g₂`. Within a few f32 roundings of the
    /// original (the transform was rounded to f32 once).
    fn original(&self) -> Vec<f32> {
        let (o, c, k, s) = (
            self.out_channels,
            self.in_channels,
            self.kernel,
            self.blocks,
        );
        let mut w = vec![0f32; o * c * k * k];
        let inv = |u: [f64; N]| [2.0 * u[0], 2.0 * u[1] - 2.0 * u[0] - u[4], u[4]];
        for oc in 0..o {
            for ic in 0..c {
                for block in 0..s * s {
                    let (a, b) = (block / s, block % s);
                    let u = |xi: usize| f64::from(self.u[((xi * s * s + block) * o + oc) * c + ic]);
                    // Columns first (rows 0, 1 and 4 of U), then rows.
                    let rows: [[f64; 3]; 3] =
                        [0, 1, 4].map(|i| inv(std::array::from_fn(|j| u(i * N + j))));
                    let [r0, r1, r4] = rows;
                    for (x, ((g0, g1), g4)) in r0.into_iter().zip(r1).zip(r4).enumerate() {
                        let col = inv([g0, g1, 0.0, 0.0, g4]);
                        for (y, v) in col.into_iter().enumerate() {
                            let (ky, kx) = (3 * a + y, 3 * b + x);
                            if ky < k && kx < k {
                                w[((oc * c + ic) * k + ky) * k + kx] = v as f32;
                            }
                        }
                    }
                }
            }
        }
        w
    }
}

/// A convolution's `[O, C, K, K]` weight and its Winograd transform, built on first use on
/// the CPU. Once the transform exists, the original weight is dropped (it was 9/25 of the
/// transform's memory again): the Winograd path serves every later call on the CPU, and a
/// path that needs the original (the portable switch turned on later) gets it rebuilt from
/// the transform. Shared by clones.
#[derive(Clone, Debug)]
pub struct WinogradWeight(Arc<WeightSlot>);

#[derive(Debug)]
struct WeightSlot {
    dims: (usize, usize, usize, usize),
    original: std::sync::RwLock<Option<Tensor>>,
    kernel: OnceLock<std::result::Result<WinogradKernel, String>>,
}

impl WinogradWeight {
    /// Holds `weight` (`[O, C, K, K]`); nothing is transformed yet.
    pub fn new(weight: Tensor) -> Result<Self> {
        let dims = weight.dims4()?;
        Ok(Self(Arc::new(WeightSlot {
            dims,
            original: std::sync::RwLock::new(Some(weight)),
            kernel: OnceLock::new(),
        })))
    }

    /// `(O, C, K, K)`.
    pub fn dims(&self) -> (usize, usize, usize, usize) {
        self.0.dims
    }

    /// Whether the transform has been built (the original is then no longer held).
    pub fn transformed(&self) -> bool {
        self.0.kernel.get().is_some_and(|k| k.is_ok())
    }

    /// The original weight: the one held, or (after the transform) rebuilt from the
    /// transform on the CPU and held again.
    pub fn original(&self) -> Result<Tensor> {
        if let Some(w) = self.read_original() {
            return Ok(w);
        }
        let kernel = self.kernel()?;
        let (o, c, k, _) = self.0.dims;
        let w = Tensor::from_vec(kernel.original(), (o, c, k, k), &candle_core::Device::Cpu)?;
        if let Ok(mut slot) = self.0.original.write() {
            *slot = Some(w.clone());
        }
        Ok(w)
    }

    pub(super) fn read_original(&self) -> Option<Tensor> {
        self.0.original.read().ok().and_then(|w| w.clone())
    }

    /// The transform, built from the original on first use; the original is then dropped.
    pub(super) fn kernel(&self) -> Result<&WinogradKernel> {
        self.0
            .kernel
            .get_or_init(|| {
                let built = match self.read_original() {
                    Some(w) => WinogradKernel::new(&w).map_err(|e| e.to_string()),
                    None => Err("the original weight is gone".to_string()),
                };
                if built.is_ok() {
                    if let Ok(mut slot) = self.0.original.write() {
                        *slot = None;
                    }
                    // The original's pages sit between others on the heap, where the
                    // larger activations cannot reuse them: hand them back.
                    crate::memory::release_freed_memory();
                }
                built
            })
            .as_ref()
            .map_err(|e| candle_core::Error::Msg(format!("winograd kernel: {e}")))
    }
}
