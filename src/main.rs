use clap::Parser;

fn main() -> std::process::ExitCode {
    keep_freed_memory();
    let cli = posescope::cli::Cli::parse();
    cli.init_logging();
    match posescope::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", posescope::cli::error_text(&e));
            std::process::ExitCode::from(posescope::cli::exit_code(&e))
        }
    }
}

/// Keeps freed memory in the process instead of returning it to the OS. The networks allocate
/// and free tens of megabytes of activations per frame; with glibc's defaults each large
/// buffer is a fresh `mmap`, page-faulted and zeroed by the kernel, then `munmap`ed (about a
/// sixth of a MobileNet-thin forward on the development machine). With every allocation on
/// the heap and no trimming, the pages are reused from the second frame on.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn keep_freed_memory() {
    // SAFETY: mallopt only changes glibc's allocation policy; it is called once, first thing
    // in main, before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}
