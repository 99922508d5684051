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
    /// Print debug timings (the same as RUST_LOG=hosho=debug).
    #[arg(short, long, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// The site root every command works on.
#[derive(Debug, Args)]
pub struct RootArg {
    /// The site root (the directory holding hosho.toml).
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub root: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate everything and build the site into site-out/.
    Build {
        #[command(flatten)]
        root: RootArg,
        /// Output directory (default: ROOT/site-out).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Validate everything; write nothing.
    Check {
        #[command(flatten)]
        root: RootArg,
    },
}
