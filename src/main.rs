//! `hosho`: wiring only. Each command lives in `cmd/`; exit codes: 0 success, 1 the input
//! is wrong, 2 usage.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    hosho::cmd::run(hosho::cli::Cli::parse())
}
