//! `hosho`: wiring only. Each command lives in `cmd/`; exit codes: 0 success, 1 the input
//! is wrong, 2 usage.

use std::process::ExitCode;

/// mimalloc: the build renders, parses and frees hundreds of thousands of small strings on
/// every core, where it is faster than the system allocator (BENCHMARKS.md, issue 11).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = hosho::cli::parse();
    if matches!(cli.command, hosho::cli::Command::Serve(_)) {
        purge_freed_memory_at_once();
    }
    hosho::cmd::run(cli)
}

/// mimalloc (v3) gives memory a thread freed back to the system only once that thread works
/// in the allocator again after the purge delay (1 s). The daemon frees each manifest's file
/// buffer (334 MiB for a million entries) as soon as it is indexed, and then mostly waits: it
/// would keep that memory for good (a platform of three million-entry guarantors: 1.1 GB
/// instead of 0.6). `hosho serve` purges at once instead (BENCHMARKS.md, issue 20); the
/// build keeps mimalloc's default, which it is faster with.
#[allow(unsafe_code)]
fn purge_freed_memory_at_once() {
    /// `mi_option_purge_delay` in mimalloc v3's `mi_option_e`, and its default there: the
    /// option is set only when it reads as that default, so another mimalloc (whose list of
    /// options differs) is left as it is.
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    const V3_DEFAULT_MS: std::ffi::c_long = 1000;
    // SAFETY: mi_option_get and mi_option_set read and write one integer option of
    // mimalloc, which it reads atomically; no other thread exists yet.
    unsafe {
        if libmimalloc_sys::mi_option_get(PURGE_DELAY) == V3_DEFAULT_MS {
            libmimalloc_sys::mi_option_set(PURGE_DELAY, 0);
        }
    }
}
