//! Returning freed memory to the operating system at chosen moments.
//!
//! The binary asks glibc to keep freed memory (`src/main.rs`: every allocation on the heap,
//! no automatic trimming), so a frame's activations reuse the pages of the previous frame's.
//! Loading a model frees a lot once (the file's bytes, the tensors before conversion and
//! folding), which that policy would keep for the life of the process: loading
//! HigherHRNet-W32 peaks at 360 MB and leaves 150 MB in use. [`release_freed_memory`]
//! hands the difference back after a load; measured with `bench_ort.py --rss`, the peak
//! resident memory of a HigherHRNet-W32 512² `posescope bench` fell from 744 MB to 556 MB.
//! The Winograd kernels call it too, once per convolution, when a weight's transform
//! replaces the original ([`crate::kernels::winograd::WinogradWeight`]): the originals sit
//! between other allocations, where the larger activations cannot reuse their pages.

/// Returns the heap's free pages to the operating system (glibc's `malloc_trim(0)`); a no-op
/// on other C libraries.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn release_freed_memory() {
    // SAFETY: malloc_trim only releases free memory of the allocator's own heaps; it takes
    // the allocator's locks and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Returns the heap's free pages to the operating system (glibc's `malloc_trim(0)`); a no-op
/// on other C libraries.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_freed_memory() {}
