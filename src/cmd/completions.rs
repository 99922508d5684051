//! `hosho completions SHELL`: the shell's completion script for every command and flag,
//! made from the command line's definition (the Debian package installs bash's, zsh's and
//! fish's).

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::CompletionsArgs;

pub(super) fn run(args: &CompletionsArgs) -> Result<ExitCode> {
    let mut command = crate::cli::command();
    clap_complete::generate(args.shell, &mut command, "hosho", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}
