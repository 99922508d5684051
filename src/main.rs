//! `hosho`: wiring only. Each command lives in `cmd/`; exit codes: 0 success, 1 the input
//! is wrong, 2 usage.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc: the build renders, parses and frees hundreds of thousands of small strings on
/// every core, where it is faster than the system allocator (BENCHMARKS.md, issue 11).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    hosho::cmd::run(hosho::cli::Cli::parse())
}
