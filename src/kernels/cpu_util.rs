//! Small pieces shared by the CPU kernels (custom candle ops): reading an op's input as a
//! contiguous f32 slice, and whole-vector loads and stores for [`pulp`] code.

#[cfg(test)]
use candle_core::Tensor;
use candle_core::{CpuStorage, Layout, Result};

/// The f32 values of a contiguous input `layout` over `storage`; `op` names the operation
/// in the errors.
pub(crate) fn f32_input<'s>(
    storage: &'s CpuStorage,
    layout: &Layout,
    op: &str,
) -> Result<&'s [f32]> {
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("{op}: input must be contiguous");
    };
    storage
        .as_slice::<f32>()?
        .get(start..end)
        .ok_or_else(|| candle_core::Error::Msg(format!("{op}: storage too short")))
}

/// One vector from `src` (`S::F32_LANES` values or fewer): a plain unaligned load when full
/// (pulp's partial load goes through a table of masks).
#[inline(always)]
pub(crate) fn load<S: pulp::Simd>(simd: S, src: &[f32]) -> S::f32s {
    match S::as_simd_f32s(src).0.first() {
        Some(&v) => v,
        None => simd.partial_load_f32s(src),
    }
}

/// Stores `value` into `dst` (`S::F32_LANES` values or fewer), like [`load`].
#[inline(always)]
pub(crate) fn store<S: pulp::Simd>(simd: S, dst: &mut [f32], value: S::f32s) {
    match S::as_mut_simd_f32s(dst).0.first_mut() {
        Some(v) => *v = value,
        None => simd.partial_store_f32s(dst, value),
    }
}

/// `dst.copy_from_slice(src)` (the shorter length of the two) as whole-vector moves: rows
/// here are a few vectors long, where a call to `memcpy` per row costs more than the copy.
/// A row of at least one vector that does not end on a whole vector ends with a vector
/// moved back to end at its end (its values are copied twice) instead of a partial one,
/// whose masked load and store go through function pointers: 23 % of a depthwise
/// convolution's samples went to such copies of 54-wide rows.
#[inline(always)]
pub(crate) fn copy_row<S: pulp::Simd>(simd: S, dst: &mut [f32], src: &[f32]) {
    let lanes = S::F32_LANES;
    let n = dst.len().min(src.len());
    let (dst, src) = (&mut dst[..n], &src[..n]);
    if n < lanes || n.is_multiple_of(lanes) {
        for (d, v) in dst.chunks_mut(lanes).zip(src.chunks(lanes)) {
            store(simd, d, load(simd, v));
        }
        return;
    }
    for (d, v) in dst.chunks_exact_mut(lanes).zip(src.chunks_exact(lanes)) {
        store(simd, d, load(simd, v));
    }
    let last = n - lanes;
    store(simd, &mut dst[last..], load(simd, &src[last..]));
}

/// Runs `op` with the widest vectors the CPU has, or, where `narrow` is better, with 8-lane
/// (256-bit) vectors compiled for the same AVX-512 context (EVEX encodings, 32 registers).
///
/// `narrow(lanes_wide)` says whether 8-lane vectors pay for this op; it is only asked on a
/// CPU whose 512-bit operations run as two 256-bit halves ([`avx512_is_split`]), where a
/// 256-bit operation costs half as much and a row of 24 values takes three half-cost
/// vectors instead of two full-cost ones (a quarter of them wasted).
#[inline(always)]
pub(crate) fn dispatch_narrow_if<Op: pulp::WithSimd>(
    op: Op,
    narrow: impl FnOnce(usize) -> bool,
) -> Op::Output {
    let forced = forced_level();
    if forced != Level::Detected {
        return dispatch_at(forced, op);
    }
    #[cfg(target_arch = "x86_64")]
    if let Some(v4) = pulp::x86::V4::try_new() {
        if avx512_is_split() && narrow(16) {
            return pulp::Simd::vectorize(v4, Narrow { op, v3: *v4 });
        }
    }
    // Elsewhere no CPU runs its widest vectors at half rate.
    #[cfg(not(target_arch = "x86_64"))]
    let _ = narrow;
    pulp::Arch::new().dispatch(op)
}

/// Elements of work below which an element-wise pass stays on the calling thread: handing
/// it to the pool costs more than it saves.
pub(crate) const PAR_MIN_ELEMENTS: usize = 1 << 15;

/// How many of `planes` planes of `plane` elements one parallel task takes (at least
/// [`PAR_MIN_ELEMENTS`] elements' worth; all of them on a pool of one thread). Between 1
/// and `planes.max(1)`, so that a multiple of it by any plane size stays in range.
pub(crate) fn planes_per_task(plane: usize, planes: usize) -> usize {
    let per = if rayon::current_num_threads() == 1 {
        planes
    } else {
        PAR_MIN_ELEMENTS.div_ceil(plane.max(1))
    };
    per.clamp(1, planes.max(1))
}

/// A zeroed buffer of `len` values, written by the pool's threads when it is large. The
/// custom ops whose kernels do not store every output value (or add into it) allocate their
/// outputs this way, the others with [`fully_written`]. A serial memset of a 16 MB
/// activation (with its page faults) was a twentieth of a 2-thread HigherHRNet-W32 forward,
/// and the mobile CPM's outputs (most of 64K to 300K values) a tenth of its forward
/// thread's samples. One thread (or a buffer under 256 KB) keeps the plain `vec!`, one
/// memset.
#[allow(unsafe_code)]
pub(crate) fn zeros(len: usize) -> Vec<f32> {
    use rayon::prelude::*;
    if len < 2 * PAR_MIN_ELEMENTS || rayon::current_num_threads() == 1 {
        return vec![0f32; len];
    }
    let mut v = Vec::with_capacity(len);
    v.spare_capacity_mut()
        .par_chunks_mut(PAR_MIN_ELEMENTS)
        .for_each(|chunk| chunk.fill(std::mem::MaybeUninit::new(0.0)));
    // SAFETY: the capacity is at least `len`, and every one of its first `len` elements was
    // initialised just above (the chunks cover the whole spare capacity).
    unsafe { v.set_len(len) };
    v
}

/// The output of an op that writes every one of its `len` values: `fill` gets the buffer
/// and must store each value before anything reads it. Release builds skip zeroing it:
/// with [`zeros`], a memset of each depthwise and 1×1 output was 4.8 % of the samples of a
/// one-thread MobileNet-thin forward, and with two threads each such op handed its zeroing
/// to the pool once more (the mobile CPM, 2 threads: 5.69 → 4.90 ms per forward; medians
/// of 6 interleaved rounds, Zen 4). Debug builds (the tests) fill it with NaN first, so a
/// value `fill` leaves unwritten shows up in every comparison with a reference.
#[allow(unsafe_code)]
pub(crate) fn fully_written(
    len: usize,
    fill: impl FnOnce(&mut [f32]) -> Result<()>,
) -> Result<Vec<f32>> {
    if cfg!(debug_assertions) {
        let mut v = vec![f32::NAN; len];
        fill(&mut v)?;
        return Ok(v);
    }
    let mut v: Vec<f32> = Vec::with_capacity(len);
    let spare = &mut v.spare_capacity_mut()[..len];
    // SAFETY: the `len` values of the spare capacity, viewed as f32 (same layout; f32 has
    // no invalid bit patterns and no destructor). `fill` stores every one of them before
    // any is read (its callers' contract, checked by the NaN fill of the debug builds that
    // the tests run), so they are all initialised when `set_len` below takes them in.
    let buf = unsafe { &mut *(std::ptr::from_mut(spare) as *mut [f32]) };
    fill(buf)?;
    // SAFETY: the capacity is at least `len` and `fill` initialised all of it (above).
    unsafe { v.set_len(len) };
    Ok(v)
}

/// Runs `op` with the widest vectors this CPU has (or the level forced by
/// [`force_level`]).
#[inline(always)]
pub(crate) fn dispatch<Op: pulp::WithSimd>(op: Op) -> Op::Output {
    Dispatcher::new().run(op)
}

/// The dispatch decision of one operation, taken once (the CPU's features, any forced
/// level) and reused for each of its many inner calls: detecting per call and counting
/// every call measured as a slowdown in the Winograd transforms.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dispatcher {
    arch: pulp::Arch,
    forced: Level,
}

impl Dispatcher {
    #[inline(always)]
    pub(crate) fn new() -> Self {
        Self {
            arch: pulp::Arch::new(),
            forced: forced_level(),
        }
    }

    #[inline(always)]
    pub(crate) fn run<Op: pulp::WithSimd>(self, op: Op) -> Op::Output {
        if self.forced == Level::Detected {
            self.arch.dispatch(op)
        } else {
            dispatch_at(self.forced, op)
        }
    }
}

/// The instruction sets the kernels can run at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Level {
    /// The widest this CPU has (AVX-512, AVX2+FMA, …, or scalar code), as detected.
    Detected,
    /// AVX-512 with 512-bit vectors.
    Avx512,
    /// AVX-512 code generation with 256-bit vectors (what split-AVX-512 CPUs get for
    /// short rows).
    Avx512Narrow,
    /// AVX2 + FMA with 256-bit vectors.
    Avx2,
    /// No SIMD: pulp's scalar fallback.
    Scalar,
}

impl Level {
    /// Whether this CPU can run the level ([`Level::Detected`] and [`Level::Scalar`]
    /// always).
    pub fn is_available(self) -> bool {
        match self {
            Level::Detected | Level::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Level::Avx512 | Level::Avx512Narrow => pulp::x86::V4::try_new().is_some(),
            #[cfg(target_arch = "x86_64")]
            Level::Avx2 => pulp::x86::V3::try_new().is_some(),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// The level named `detected`, `avx512`, `avx512-narrow`, `avx2` or `scalar` (the
    /// values of `POSESCOPE_SIMD`).
    pub fn parse(name: &str) -> Option<Level> {
        Some(match name.trim().to_ascii_lowercase().as_str() {
            "detected" | "auto" | "" => Level::Detected,
            "avx512" => Level::Avx512,
            "avx512-narrow" => Level::Avx512Narrow,
            "avx2" => Level::Avx2,
            "scalar" => Level::Scalar,
            _ => return None,
        })
    }
}

/// The level every kernel runs at from now on in this process: [`Level::Detected`] (the
/// default) or a lower one, for tests of every code path on one machine and for A/B runs.
/// A level the CPU lacks runs the scalar code instead. Not meant for concurrent changes:
/// callers that switch levels hold [`LEVEL_LOCK`] around the switch and their runs.
pub fn force_level(level: Level) {
    FORCED.store(level.index() as u8, std::sync::atomic::Ordering::Relaxed);
}

/// Held by code that forces a level for a while (tests), so that two such runs do not
/// interleave.
pub static LEVEL_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

static FORCED: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(UNSET);

const LEVELS: [Level; 5] = [
    Level::Detected,
    Level::Avx512,
    Level::Avx512Narrow,
    Level::Avx2,
    Level::Scalar,
];

/// The level set by [`force_level`], or at first use by the environment variable
/// `POSESCOPE_SIMD` (see [`Level::parse`]; for A/B runs and the tests of every level).
#[inline(always)]
pub fn forced_level() -> Level {
    let mut index = FORCED.load(std::sync::atomic::Ordering::Relaxed);
    if index == UNSET {
        index = level_from_env();
    }
    LEVELS
        .get(index as usize)
        .copied()
        .unwrap_or(Level::Detected)
}

/// [`FORCED`] before the environment was read.
const UNSET: u8 = u8::MAX;

#[cold]
#[inline(never)]
fn level_from_env() -> u8 {
    let level = std::env::var("POSESCOPE_SIMD")
        .ok()
        .and_then(|v| Level::parse(&v))
        .unwrap_or(Level::Detected);
    let index = level.index() as u8;
    // A level forced in the meantime by `force_level` wins.
    match FORCED.compare_exchange(
        UNSET,
        index,
        std::sync::atomic::Ordering::Relaxed,
        std::sync::atomic::Ordering::Relaxed,
    ) {
        Ok(_) => index,
        Err(current) => current,
    }
}

/// How many forced dispatches ran at each level (in [`Level`] order), so that tests can
/// check that the level they forced is the one that ran (the default path counts nothing).
static RAN: [std::sync::atomic::AtomicU64; 5] = [const { std::sync::atomic::AtomicU64::new(0) }; 5];

#[inline(always)]
fn note(level: Level) {
    RAN[level.index()].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// Dispatches run so far at `level` (see [`force_level`]).
pub fn dispatch_count(level: Level) -> u64 {
    RAN[level.index()].load(std::sync::atomic::Ordering::Relaxed)
}

/// `op` at a forced `level`; the scalar code where the CPU lacks it.
#[inline(never)]
fn dispatch_at<Op: pulp::WithSimd>(level: Level, op: Op) -> Op::Output {
    #[cfg(target_arch = "x86_64")]
    match level {
        Level::Avx512 => {
            if let Some(v4) = pulp::x86::V4::try_new() {
                note(Level::Avx512);
                return pulp::Simd::vectorize(v4, op);
            }
        }
        Level::Avx512Narrow => {
            if let Some(v4) = pulp::x86::V4::try_new() {
                note(Level::Avx512Narrow);
                return pulp::Simd::vectorize(v4, Narrow { op, v3: *v4 });
            }
        }
        Level::Avx2 => {
            if let Some(v3) = pulp::x86::V3::try_new() {
                note(Level::Avx2);
                return pulp::Simd::vectorize(v3, op);
            }
        }
        Level::Detected | Level::Scalar => {}
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = level;
    note(Level::Scalar);
    pulp::Simd::vectorize(pulp::Scalar::new(), op)
}

/// `op` run with `v3` inside another context's target features (see [`dispatch_narrow_if`]).
#[cfg(target_arch = "x86_64")]
struct Narrow<Op> {
    op: Op,
    v3: pulp::x86::V3,
}

#[cfg(target_arch = "x86_64")]
impl<Op: pulp::WithSimd> pulp::WithSimd for Narrow<Op> {
    type Output = Op::Output;

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) -> Self::Output {
        self.op.with_simd(self.v3)
    }
}

/// Whether this CPU executes 512-bit vector operations as two 256-bit halves (AMD Zen 4,
/// family 19h; Zen 3, the same family, has no AVX-512 and never reaches the question).
#[cfg(target_arch = "x86_64")]
pub(crate) fn avx512_is_split() -> bool {
    static SPLIT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SPLIT.get_or_init(|| {
        let vendor = std::arch::x86_64::__cpuid(0);
        let amd = (vendor.ebx, vendor.edx, vendor.ecx) == (0x6874_7541, 0x6974_6e65, 0x444d_4163);
        let eax = std::arch::x86_64::__cpuid(1).eax;
        let family = ((eax >> 8) & 0xf) + ((eax >> 20) & 0xff);
        amd && family == 0x19
    })
}

/// Vectors of `lanes` values needed for a row of `width`, in units of 256-bit operations.
pub(crate) fn row_cost(width: usize, lanes: usize) -> usize {
    width.div_ceil(lanes) * lanes / 8
}

/// The largest absolute difference of two f32 tensors of one shape (for tests).
#[cfg(test)]
#[allow(clippy::expect_used)]
pub(crate) fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    (a - b)
        .and_then(|d| d.abs())
        .and_then(|d| d.max_all())
        .and_then(|d| d.to_scalar::<f32>())
        .expect("difference of two f32 tensors")
}

#[cfg(test)]
mod tests {
    /// `copy_row` at the level the tests run at (see `kernel_tests_pass_at_every_simd_level`)
    /// copies exactly the shorter length, whole vectors, a moved-back last one or partial
    /// ones, and writes nothing past it.
    #[test]
    fn copy_row_copies_every_length_and_nothing_more() {
        struct Copy<'a>(&'a mut [f32], &'a [f32]);
        impl pulp::WithSimd for Copy<'_> {
            type Output = ();
            #[inline(always)]
            fn with_simd<S: pulp::Simd>(self, simd: S) {
                super::copy_row(simd, self.0, self.1);
            }
        }
        let src: Vec<f32> = (0..80).map(|i| i as f32 + 0.5).collect();
        for n in 0..70 {
            for extra in [0, 3] {
                let mut dst = vec![-1f32; 80];
                super::dispatch(Copy(&mut dst[..n], &src[..n + extra]));
                assert_eq!(&dst[..n], &src[..n], "length {n}");
                assert!(
                    dst[n..].iter().all(|&v| v == -1.0),
                    "length {n}: wrote past the end"
                );
            }
        }
    }
}
