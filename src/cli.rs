//! The command line (`hosho build`, `hosho check`, …), as DESIGN.md fixes it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "hosho",
    version,
    about = "電子保証の案内サイト・証書・確認サービスを作ります"
)]
pub struct Cli {
    /// 各段階の所要時間を表示します（RUST_LOG=hosho=debug と同じ）
    #[arg(short, long, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// The site root every command works on.
#[derive(Debug, Args)]
pub struct RootArg {
    /// サイトのルート（hosho.toml のあるディレクトリ）
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub root: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// すべてを検査し、サイトを site-out/ に書き出します（失敗したときは何も変えません）
    Build {
        #[command(flatten)]
        root: RootArg,
        /// 書き出し先（既定: ROOT/site-out）
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// すべてを検査します。何も書き込みません
    Check {
        #[command(flatten)]
        root: RootArg,
    },
}
