//! `hosho serve`: build first (unless `--no-build`), then run the verification daemon.

use std::process::ExitCode;

use anyhow::Result;

use super::console;
use crate::build;
use crate::cli::ServeArgs;
use crate::daemon;

pub(super) fn run(args: ServeArgs) -> Result<ExitCode> {
    let options = daemon::Options::from(args);
    let example = if options.build {
        let paths = options.paths();
        let summary = build::build(&paths)?;
        console::built(&paths, &summary);
        summary.example
    } else {
        None
    };
    let preview = options.build;
    daemon::run(options, |ready| {
        console::serving(ready, preview, example.as_ref());
    })?;
    Ok(ExitCode::SUCCESS)
}
