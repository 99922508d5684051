//! `hosho check`: validate everything and write nothing.

use std::process::ExitCode;

use anyhow::Result;

use super::console;
use crate::build;
use crate::cli::CheckArgs;

pub(super) fn run(args: &CheckArgs) -> Result<ExitCode> {
    console::checked(&build::check(&args.root.root)?);
    Ok(ExitCode::SUCCESS)
}
