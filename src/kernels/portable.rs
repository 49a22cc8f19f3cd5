//! The portable switch: whether the CPU runs the custom kernels of this module or candle's
//! own tensor ops, the path CUDA and Metal get (none of the custom ops here has a CUDA or
//! Metal form). With the switch on, the CPU runs exactly the device path, so the parity
//! tests check it on any machine (`tests/common/mod.rs`, `rerun_portable`).
//!
//! The switch is [`force_portable`], or the environment variable `POSESCOPE_PORTABLE=1`
//! read at first use. Every custom op counts its runs ([`custom_op_runs`]) and fails with
//! an error when it is entered while the switch is on, as it would fail on a GPU.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

use candle_core::{DType, Device, Result, Tensor};

const UNSET: u8 = 0;
const OFF: u8 = 1;
const ON: u8 = 2;

static PORTABLE: AtomicU8 = AtomicU8::new(UNSET);
static CUSTOM_RUNS: AtomicU64 = AtomicU64::new(0);

/// From now on in this process, the CPU runs candle's own ops (`true`) or the custom
/// kernels where they apply (`false`, the default). Overrides `POSESCOPE_PORTABLE`. Meant to
/// be set once, before any inference (a network loaded before keeps working either way).
pub fn force_portable(on: bool) {
    PORTABLE.store(if on { ON } else { OFF }, Ordering::Relaxed);
}

/// Whether the portable path is forced: [`force_portable`], else `POSESCOPE_PORTABLE`
/// (`1`, `true`, `yes` or `on`) read once.
#[inline]
pub fn portable() -> bool {
    match PORTABLE.load(Ordering::Relaxed) {
        UNSET => {
            let on = std::env::var("POSESCOPE_PORTABLE").is_ok_and(|v| {
                matches!(
                    v.trim().to_ascii_lowercase().as_str(),
                    "1" | "true" | "yes" | "on"
                )
            });
            // A concurrent `force_portable` wins over the environment.
            let _ = PORTABLE.compare_exchange(
                UNSET,
                if on { ON } else { OFF },
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            PORTABLE.load(Ordering::Relaxed) == ON
        }
        v => v == ON,
    }
}

/// Whether the custom CPU kernels apply to `t`: a CPU f32 tensor, with the portable switch
/// off. Every call site that picks a custom kernel asks this.
#[inline]
pub fn custom_cpu(t: &Tensor) -> bool {
    custom_cpu_for(t.device(), t.dtype())
}

/// [`custom_cpu`] for a tensor of `dtype` on `device`.
#[inline]
pub fn custom_cpu_for(device: &Device, dtype: DType) -> bool {
    device.is_cpu() && dtype == DType::F32 && !portable()
}

/// How many custom ops have run in this process (all threads).
pub fn custom_op_runs() -> u64 {
    CUSTOM_RUNS.load(Ordering::Relaxed)
}

/// Called first by every custom op's `cpu_fwd`: counts the run, and fails when the
/// portable path is forced (a custom op on the portable path is a bug: on a GPU it would
/// have no implementation).
#[inline]
pub(crate) fn enter(op: &str) -> Result<()> {
    CUSTOM_RUNS.fetch_add(1, Ordering::Relaxed);
    if portable() {
        candle_core::bail!(
            "{op}: a custom CPU kernel ran on the portable path (POSESCOPE_PORTABLE); \
             it has no CUDA or Metal form"
        );
    }
    Ok(())
}
