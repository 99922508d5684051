//! `hosho man --out DIR` (hidden): the man pages, `hosho.1` and one a command
//! (`hosho-serve.1`, `hosho-vault-check.1` …), made from the command line's definition by
//! `scripts/package`. Undated, so the same hosho writes the same bytes.

use std::process::ExitCode;

use anyhow::{Context as _, Result};

use crate::cli::ManArgs;

pub(super) fn run(args: &ManArgs) -> Result<ExitCode> {
    let out = &args.out;
    std::fs::create_dir_all(out).with_context(|| format!("{} を作れません", out.display()))?;
    clap_mangen::generate_to(crate::cli::command(), out)
        .with_context(|| format!("{} に man ページを書けません", out.display()))?;
    Ok(ExitCode::SUCCESS)
}
