//! `hosho`: wiring only. Exit codes: 0 success, 1 the input is wrong, 2 usage.

use std::process::ExitCode;

use clap::Parser;
use hosho::cli::{Cli, Command};
use hosho::diagnostics::InputErrors;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = if cli.verbose {
        "hosho=debug"
    } else {
        "hosho=info"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter)),
        )
        .with_writer(std::io::stderr)
        .without_time()
        .init();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(&e);
            ExitCode::from(1)
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Build { root, out } => {
            let out = hosho::build::default_out(&root.root, out.as_deref());
            let s = hosho::build::build(&root.root, &out)?;
            println!(
                "{} に {} ページ（{} ファイル）を書き出しました（{:.2} 秒）",
                s.out.display(),
                s.pages,
                s.files,
                s.elapsed.as_secs_f64()
            );
        }
        Command::Check { root } => {
            let s = hosho::build::check(&root.root)?;
            println!(
                "問題はありません: {} ページ、導入発注者一覧 {} 件（{} 団体）、Q&A {} 件",
                s.pages, s.tables, s.adopters, s.qa
            );
        }
    }
    Ok(())
}

/// Input errors one per line; anything else with its whole cause chain.
fn report(e: &anyhow::Error) {
    if let Some(input) = e.downcast_ref::<InputErrors>() {
        eprintln!("{input}");
        return;
    }
    eprintln!("エラー: {e}");
    for cause in e.chain().skip(1) {
        eprintln!("  原因: {cause}");
    }
}
