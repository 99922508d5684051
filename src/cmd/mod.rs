//! One file per command, as Zola's `cmd/`: each turns its arguments into calls of the
//! library and its results into console output (all of which is in `console`). Exit codes:
//! 0 success, 1 the input is wrong (or a check refused), 2 usage.

mod build;
mod check;
mod completions;
mod console;
mod keygen;
mod man;
mod new;
mod receipt;
mod serve;
mod vault;
mod verify;

use std::process::ExitCode;

use crate::certificates::vault::WORKER_STACK;
use crate::cli::{Cli, Command, LogFormat};

/// Runs the command `cli` names and reports how it ended.
pub fn run(cli: Cli) -> ExitCode {
    // Typst's layout recurses deeply, inside rayon's threads too.
    if let Err(e) = rayon::ThreadPoolBuilder::new()
        .stack_size(WORKER_STACK)
        .build_global()
    {
        eprintln!("エラー: 作業用スレッドを用意できません: {e}");
        return ExitCode::from(1);
    }
    let daemon = matches!(cli.command, Command::Serve(_));
    init_tracing(cli.verbose, cli.log_format, daemon);
    let result = match cli.command {
        Command::Build(args) => build::run(&args),
        Command::Check(args) => check::run(&args),
        Command::Keygen(args) => keygen::run(&args),
        Command::New(args) => new::run(&args),
        Command::Serve(args) => serve::run(*args),
        Command::Verify(args) => verify::run(&args),
        Command::Receipt(args) => receipt::run(&args),
        Command::Vault(args) => vault::run(&args),
        Command::Completions(args) => completions::run(&args),
        Command::Man(args) => man::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => console::report(&e),
    }
}

/// Log lines on standard error: stage timings with `-v`, or what `RUST_LOG` asks for; as
/// text (with the time for the daemon, whose lines are a log; colours only on a terminal) or
/// one JSON object a line (`--log-format json`).
fn init_tracing(verbose: bool, format: LogFormat, daemon: bool) {
    use std::io::IsTerminal as _;
    let level = if verbose { "hosho=debug" } else { "hosho=info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match (format, daemon) {
        (LogFormat::Json, _) => builder.json().flatten_event(true).init(),
        (LogFormat::Text, true) => builder.init(),
        (LogFormat::Text, false) => builder.without_time().init(),
    }
}
