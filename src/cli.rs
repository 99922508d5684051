//! The command line (`hosho build`, `check`, `keygen`, `verify`), as DESIGN.md fixes it.

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
    /// すべてを検査し、サイトを site-out/ に、証書と署名付きマニフェストを vault/ に書き出します（失敗したときは何も変えません）
    Build {
        #[command(flatten)]
        root: RootArg,
        /// 公開用の書き出し先（既定: ROOT/site-out）
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// 非公開の書き出し先: 証書・お知らせ・マニフェスト（既定: ROOT/vault）
        #[arg(long, value_name = "DIR")]
        vault: Option<PathBuf>,
        /// 鍵のディレクトリ（既定: ROOT/keys）
        #[arg(long, value_name = "DIR")]
        keys: Option<PathBuf>,
    },
    /// すべてを検査します。何も書き込みません
    Check {
        #[command(flatten)]
        root: RootArg,
    },
    /// 署名用の鍵ペアと認証キーの秘密値を作ります（既存の鍵は上書きしません）
    Keygen {
        #[command(flatten)]
        root: RootArg,
        /// 鍵の置き場所（既定: ROOT/keys）
        #[arg(long, value_name = "DIR")]
        keys: Option<PathBuf>,
    },
    /// 保証契約番号と認証キーで、署名付きマニフェストと証書 PDF を照合します（有効なら 0、そうでなければ 1）
    Verify {
        #[command(flatten)]
        root: RootArg,
        /// vault の場所（既定: ROOT/vault）
        #[arg(long, value_name = "DIR")]
        vault: Option<PathBuf>,
        /// 信頼する公開鍵（既定: ROOT/keys/signing.pub）。2 つまで指定できます
        #[arg(long = "public-key", value_name = "FILE", num_args = 1, action = clap::ArgAction::Append)]
        public_key: Vec<PathBuf>,
        /// 保証契約番号（10 桁）
        number: String,
        /// 認証キー（10 文字。全角・スペース・ハイフンがあっても構いません）
        key: String,
    },
}
