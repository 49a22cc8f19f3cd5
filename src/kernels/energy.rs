//! Feature energy: the root mean square over the channels of an `[N, C, h, w]` activation at
//! every cell, `e[y, x] = sqrt(Σ_c f[c, y, x]² / C)` (`[N, 1, h, w]`, float32), in one pass
//! over the channels on the CPU.

use candle_core::{Result, Tensor};

/// The per-cell RMS over channels of `t` (`[N, C, h, w]` → `[N, 1, h, w]`, float32), on
/// `t`'s device.
pub fn energy(t: &Tensor) -> Result<Tensor> {
    let (_, c, _, _) = t.dims4()?;
    if c == 0 {
        candle_core::bail!("feature energy: a tensor with no channels {:?}", t.dims());
    }
    if super::custom_cpu(t) {
        return t.contiguous()?.apply_op1_no_bwd(&EnergyCpu);
    }
    t.to_dtype(candle_core::DType::F32)?
        .sqr()?
        .mean_keepdim(1)?
        .sqrt()
}

/// [`energy`] on the CPU in one pass over the channels (candle's mean over a middle
/// dimension walks the tensor with strides, after a full-size squared copy).
struct EnergyCpu;

impl candle_core::CustomOp1 for EnergyCpu {
    fn name(&self) -> &'static str {
        "feature-energy"
    }

    fn cpu_fwd(
        &self,
        storage: &candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> Result<(candle_core::CpuStorage, candle_core::Shape)> {
        crate::kernels::enter("feature-energy")?;
        let (n, c, h, w) = layout.shape().dims4()?;
        let x = super::cpu_util::f32_input(storage, layout, "feature energy")?;
        let plane = h * w;
        let mut out = crate::kernels::cpu_util::zeros(n * plane);
        if plane > 0 {
            for (o, img) in out.chunks_exact_mut(plane).zip(x.chunks_exact(c * plane)) {
                for ch in img.chunks_exact(plane) {
                    for (s, v) in o.iter_mut().zip(ch) {
                        *s += v * v;
                    }
                }
                let inv = 1.0 / c as f32;
                for s in o.iter_mut() {
                    *s = (*s * inv).sqrt();
                }
            }
        }
        Ok((
            candle_core::CpuStorage::F32(out),
            candle_core::Shape::from((n, 1, h, w)),
        ))
    }
}
