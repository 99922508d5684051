//! `hosho new page|notice|adopters NAME`: a scaffold with a comment on every field.

use std::process::ExitCode;

use anyhow::Result;

use super::console;
use crate::cli::NewArgs;
use crate::scaffold;

pub(super) fn run(args: &NewArgs) -> Result<ExitCode> {
    let today = crate::common::era::today_in_japan();
    let (file, url) = scaffold::create(&args.root.root, args.kind, &args.name, today)?;
    console::scaffolded(&file, &url);
    Ok(ExitCode::SUCCESS)
}
