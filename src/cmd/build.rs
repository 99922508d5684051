//! `hosho build`: validate, typeset and sign into the vault, render the site, swap both in.

use std::process::ExitCode;

use anyhow::Result;

use super::console;
use crate::build::{self, Paths};
use crate::cli::BuildArgs;

pub(super) fn run(args: &BuildArgs) -> Result<ExitCode> {
    let paths = Paths::new(
        &args.root.root,
        args.out.as_deref(),
        args.vault.as_deref(),
        args.notices.as_deref(),
        args.keys.as_deref(),
    );
    let summary = build::build(&paths)?;
    console::built(&paths, &summary);
    console::example(summary.example.as_ref());
    Ok(ExitCode::SUCCESS)
}
