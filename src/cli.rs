//! The command line (`hosho build`, `check`, `keygen`, `new`, `serve`, `verify`, `receipt`,
//! `vault`, `completions`, and the hidden `man`); each command's
//! arguments are one struct, which its file in `cmd/` takes.

use std::path::PathBuf;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

/// `hosho -V`: the version and the commit.
pub const SHORT_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("HOSHO_COMMIT"),
    ")"
);

/// `hosho --version`: the version, the commit, and the formats this hosho reads and writes.
pub fn long_version() -> String {
    use crate::trust::manifest::{FORMAT, FORMAT_WITHOUT_TREE};
    format!(
        "{SHORT_VERSION}\n\
         manifest: writes format {FORMAT}, reads {FORMAT_WITHOUT_TREE} and {FORMAT} (docs/manifest.md)\n\
         receipt: {} (docs/receipt.md)\n\
         certificate record: format {} (docs/vault.md)\n\
         vault cache: format {} (an older one is not read: the next build typesets everything once)",
        crate::trust::receipt::FORMAT,
        crate::common::certificate::RECORD_FORMAT,
        crate::certificates::vault::CACHE_FORMAT,
    )
}

/// The command line as given, with `--version` saying what [`long_version`] says; exits with
/// clap's message and code on a usage error (2), or after `--help` and `--version` (0).
pub fn parse() -> Cli {
    let matches = command().get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// The whole command line with its versions: what [`parse`] reads, and what the man pages
/// and the shell completions are made from.
pub fn command() -> clap::Command {
    let long: &'static str = Box::leak(long_version().into_boxed_str());
    Cli::command().version(SHORT_VERSION).long_version(long)
}

fn parse_rate(text: &str) -> Result<crate::daemon::Rate, String> {
    crate::daemon::Rate::parse(text)
}

fn parse_network_rate(text: &str) -> Result<crate::daemon::NetworkRate, String> {
    crate::daemon::NetworkRate::parse(text)
}

/// `192.0.2.0/24`, `2001:db8::/32`, or one address (`127.0.0.1` is `127.0.0.1/32`).
fn parse_network(text: &str) -> Result<ipnet::IpNet, String> {
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("「{text}」は 192.0.2.0/24 や 2001:db8::/32 のように書いてください"))
}

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
    /// ログの形式: text（既定。確認サービスでは時刻つき、端末でなければ色なし）か json（1行に1つの JSON オブジェクト。journald やログ収集向け）
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, value_name = "FORMAT")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One line of text each; colours only on a terminal.
    Text,
    /// One JSON object a line: `timestamp`, `level`, `target`, `message` and the fields.
    Json,
}

/// The site root every command works on.
#[derive(Debug, Clone, Args)]
pub struct RootArg {
    /// サイトのルート（hosho.toml のあるディレクトリ）
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub root: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// すべてを検査し、サイトを site-out/ に、証書と署名付きマニフェストを vault/ に書き出します（失敗したときは何も変えません）
    Build(BuildArgs),
    /// すべてを検査します。何も書き込みません
    Check(CheckArgs),
    /// 署名用の鍵ペアと認証キーの秘密値を作ります（既存の鍵は上書きしません）
    Keygen(KeygenArgs),
    /// ページ・お知らせ・導入発注者一覧のひな形を、各項目の説明つきで作ります（既存のファイルは上書きしません）
    New(NewArgs),
    /// 確認サービスを起動します（既定では先にビルドし、サイトのプレビューも表示します）
    Serve(Box<ServeArgs>),
    /// 保証契約番号と認証キーで、署名付きマニフェストと証書 PDF を照合します（有効なら 0、そうでなければ 1）
    Verify(VerifyArgs),
    /// 確認記録（電子ファイル）を扱います
    Receipt(ReceiptArgs),
    /// vault を扱います
    Vault(VaultArgs),
    /// シェルの補完スクリプトを標準出力に書きます（例: hosho completions bash > /usr/share/bash-completion/completions/hosho）
    Completions(CompletionsArgs),
    /// man ページ（hosho(1) と各コマンドの hosho-serve(1) など）を DIR に書きます。パッケージを作るときに使います
    #[command(hide = true)]
    Man(ManArgs),
}

/// `hosho completions SHELL`
#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// 補完を使うシェル
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `hosho man --out DIR`
#[derive(Debug, Clone, Args)]
pub struct ManArgs {
    /// man ページを書き出すディレクトリ（なければ作ります）
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// `hosho build`
#[derive(Debug, Clone, Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub root: RootArg,
    /// 公開用の書き出し先（既定: ROOT/site-out）
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// 確認サービスに渡す非公開の書き出し先: 証書・記録・署名付きマニフェスト（既定: ROOT/vault）
    #[arg(long, value_name = "DIR")]
    pub vault: Option<PathBuf>,
    /// ビルドするホストから出さない非公開の書き出し先: 認証キーのお知らせ（既定: ROOT/notices）
    #[arg(long, value_name = "DIR")]
    pub notices: Option<PathBuf>,
    /// 鍵のディレクトリ（既定: ROOT/keys）
    #[arg(long, value_name = "DIR")]
    pub keys: Option<PathBuf>,
}

/// `hosho new`
#[derive(Debug, Clone, Args)]
pub struct NewArgs {
    #[command(flatten)]
    pub root: RootArg,
    /// 作るもの: page（content/NAME.md）、notice（content/notices/NAME.md）、adopters（data/adopters/NAME.yaml）
    #[arg(value_enum)]
    pub kind: crate::scaffold::Kind,
    /// 名前: URL の一部になります（半角の英小文字・数字・-・_）
    pub name: String,
}

/// `hosho check`
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub root: RootArg,
}

/// `hosho keygen`
#[derive(Debug, Clone, Args)]
pub struct KeygenArgs {
    #[command(flatten)]
    pub root: RootArg,
    /// 鍵の置き場所（既定: ROOT/keys）
    #[arg(long, value_name = "DIR")]
    pub keys: Option<PathBuf>,
    /// 確認サービスが確認記録に署名する鍵ペア（service.pk8 と service.pub）だけを作ります
    #[arg(long)]
    pub service: bool,
}

/// `hosho serve`
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub root: RootArg,
    /// 待ち受けるアドレス
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: std::net::SocketAddr,
    /// vault の場所（既定: ROOT/vault）
    #[arg(long, value_name = "DIR")]
    pub vault: Option<PathBuf>,
    /// ビルドするときの認証キーのお知らせの書き出し先（既定: ROOT/notices）。確認サービスは読みません
    #[arg(long, value_name = "DIR")]
    pub notices: Option<PathBuf>,
    /// プレビューするサイト（既定: ROOT/site-out）
    #[arg(long, value_name = "DIR")]
    pub site: Option<PathBuf>,
    /// 鍵のディレクトリ: ビルドに使い、--public-key がなければその signing.pub を信頼します（既定: ROOT/keys）
    #[arg(long, value_name = "DIR")]
    pub keys: Option<PathBuf>,
    /// 信頼する公開鍵（既定: ROOT/keys/signing.pub）。鍵の切り替え中は2つ指定できます
    #[arg(long = "public-key", value_name = "FILE", num_args = 1, action = clap::ArgAction::Append)]
    pub public_key: Vec<PathBuf>,
    /// 最高シーケンス番号と監査ログの置き場所（既定: ROOT/state）
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// ビルドせず、vault と公開鍵だけで動かします（本番）
    #[arg(long)]
    pub no_build: bool,
    /// 複数の保証事業会社の電子証書を一つの確認サービスで確認します: 各社の id・名前・vault・公開鍵・番号の範囲・問い合わせ先を書いた issuers.toml（docs/platform.md）。--no-build と使い、--vault と --public-key とは使えません
    #[arg(long, value_name = "FILE", requires = "no_build", conflicts_with_all = ["vault", "public_key"])]
    pub issuers: Option<PathBuf>,
    /// 待ち受けずに、起動に必要なもの（保証事業会社ごとの鍵とマニフェスト、ページ、確認記録と PDF リンクの鍵、状態ディレクトリへの書き込み、Redis）を確かめて終わります。何も書き込みません（問題がなければ 0、あれば1件1行で示して 1）
    #[arg(long, requires = "no_build")]
    pub check: bool,
    /// 起動したら、サイトのプレビューをブラウザで開きます
    #[arg(long, conflicts_with = "no_build")]
    pub open: bool,
    /// 運用者向けの待ち受けアドレス: Prometheus の /metrics と詳しい /healthz（例: 127.0.0.1:9090）。利用者に公開しないでください
    #[arg(long, value_name = "ADDR")]
    pub admin_listen: Option<std::net::SocketAddr>,
    /// 制限の回数を数える場所: memory（既定）、redis://HOST:PORT/DB、または Redis Sentinel の redis+sentinel://HOST:PORT,HOST:PORT,HOST:PORT/SERVICE[/DB]。複数の複製で数えを共有するには Redis を指定します
    #[arg(long, value_name = "URL")]
    pub limits: Option<String>,
    /// --limits の Redis（Sentinel なら Redis と Sentinel の両方）のパスワード（requirepass）を1行目に書いたファイル（chmod 400）。パスワードは URL には書けません（プロセスの一覧とログに出るため）
    #[arg(long, value_name = "FILE", requires = "limits")]
    pub limits_password_file: Option<PathBuf>,
    /// 信頼するプロキシのネットワーク（例: 127.0.0.1/32）。ここからの接続に限り、--client-header で選んだヘッダーの右端の信頼しないアドレスを利用者とみなします。複数指定できます
    #[arg(long = "trusted-proxy", value_name = "CIDR", value_parser = parse_network, action = clap::ArgAction::Append)]
    pub trusted_proxy: Vec<ipnet::IpNet>,
    /// 信頼するプロキシが利用者のアドレスを書くヘッダー。もう一方のヘッダーは読みません
    #[arg(long, value_enum, default_value_t = crate::daemon::ClientHeader::XForwardedFor, value_name = "HEADER")]
    pub client_header: crate::daemon::ClientHeader,
    /// 接続元アドレスごとの確認回数の上限（例: 20/min、60/hour+20）
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub limit_address: Option<crate::daemon::Rate>,
    /// 保証契約番号と接続元ネットワークの組ごとの、認証キー誤りの上限（既定: 5回まで、その後72分に1回）
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub limit_failures: Option<crate::daemon::Rate>,
    /// 保証契約番号ごとの、すべての接続元を合わせた認証キー誤りの上限（既定: 1000/day+100）。超えても、誤りのない接続元は確認できます
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub limit_number: Option<crate::daemon::Rate>,
    /// 名前を付けたネットワークの接続元アドレスごとの確認回数の上限（例: 203.0.113.0/24=600/hour+60）。複数指定できます
    #[arg(long, value_name = "CIDR=RATE", value_parser = parse_network_rate, action = clap::ArgAction::Append)]
    pub limit_network: Vec<crate::daemon::NetworkRate>,
    /// PDF のリンクを封じる鍵のファイル（16進64文字、chmod 400）。複製を並べるときは、すべてに同じファイルを渡します（既定: 起動ごとの乱数で、その複製だけが読めます）
    #[arg(long, value_name = "FILE")]
    pub link_key: Option<PathBuf>,
    /// 確認記録（電子ファイル）に署名する確認サービスの秘密鍵（hosho keygen --service で作る service.pk8、chmod 400）。既定: KEYS/service.pk8 があればそれを使い、なければ確認記録を出しません
    #[arg(long, value_name = "FILE")]
    pub receipt_key: Option<PathBuf>,
    /// 鍵導出（PBKDF2）を同時に行う数（既定: CPU の数）
    #[arg(long, value_name = "N")]
    pub kdf_workers: Option<usize>,
    /// 鍵導出の順番待ちの上限。超えた分はすぐ 503 で断ります（既定: 同時数の16倍）
    #[arg(long, value_name = "N")]
    pub kdf_queue: Option<usize>,
    /// 同時に受け付ける接続の上限
    #[arg(long, default_value_t = 1024, value_name = "N")]
    pub max_connections: usize,
    /// 一つの接続元アドレス（IPv6 は /64）が同時に持てる接続の上限。信頼するプロキシには適用しません
    #[arg(long, default_value_t = 64, value_name = "N")]
    pub max_connections_per_address: usize,
    /// ヘッダーと本文それぞれを受け取る時間の上限（秒）
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub request_timeout: u64,
    /// マニフェストに求める PBKDF2 反復回数の下限
    #[arg(long, default_value_t = crate::common::config::DEFAULT_KDF_ITERATIONS, value_name = "N")]
    pub min_kdf_iterations: u32,
}

/// `hosho receipt`
#[derive(Debug, Clone, Args)]
pub struct ReceiptArgs {
    #[command(subcommand)]
    pub command: ReceiptCommand,
}

/// What `hosho receipt` does.
#[derive(Debug, Clone, Subcommand)]
pub enum ReceiptCommand {
    /// 確認記録を、公開鍵だけで（通信せずに）検証します（有効なら 0、そうでなければ 1）
    Verify(ReceiptVerifyArgs),
}

/// `hosho receipt verify`
#[derive(Debug, Clone, Args)]
pub struct ReceiptVerifyArgs {
    #[command(flatten)]
    pub root: RootArg,
    /// 信頼する保証会社の公開鍵（既定: ROOT/keys/signing.pub）。鍵を切り替えた後の検証には古い鍵も指定します
    #[arg(long = "public-key", value_name = "FILE", num_args = 1, action = clap::ArgAction::Append)]
    pub public_key: Vec<PathBuf>,
    /// 信頼する確認サービスの公開鍵（既定: ROOT/keys/service.pub）
    #[arg(long = "service-key", value_name = "FILE", num_args = 1, action = clap::ArgAction::Append)]
    pub service_key: Vec<PathBuf>,
    /// 確認記録のファイル（receipt-….json）
    pub file: PathBuf,
}

/// `hosho vault`
#[derive(Debug, Clone, Args)]
pub struct VaultArgs {
    #[command(subcommand)]
    pub command: VaultCommand,
}

/// What `hosho vault` does.
#[derive(Debug, Clone, Subcommand)]
pub enum VaultCommand {
    /// 確認サービスに渡す前に vault をすべて確かめます: 署名、すべての記録と PDF、足りないファイルと余分なファイル、--state があれば最高シーケンス番号（問題がなければ 0、あれば全部を示して 1）
    Check(VaultCheckArgs),
}

/// `hosho vault check`
#[derive(Debug, Clone, Args)]
pub struct VaultCheckArgs {
    #[command(flatten)]
    pub root: RootArg,
    /// 信頼する公開鍵（既定: ROOT/keys/signing.pub）。鍵の切り替え中は2つ指定できます
    #[arg(long = "public-key", value_name = "FILE", num_args = 1, action = clap::ArgAction::Append)]
    pub public_key: Vec<PathBuf>,
    /// 確認サービスの状態ディレクトリ（hosho serve の --state。複数の保証事業会社なら STATE/issuers/<id>）: その最高シーケンス番号より新しいことを確かめます
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// 確かめる vault（送り先の releases/<seq> など）
    pub dir: PathBuf,
}

/// `hosho verify`
#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub root: RootArg,
    /// vault の場所（既定: ROOT/vault）
    #[arg(long, value_name = "DIR")]
    pub vault: Option<PathBuf>,
    /// 信頼する公開鍵（既定: ROOT/keys/signing.pub）。2つまで指定できます
    #[arg(long = "public-key", value_name = "FILE", num_args = 1, action = clap::ArgAction::Append)]
    pub public_key: Vec<PathBuf>,
    /// 保証契約番号（10桁）
    pub number: String,
    /// 認証キー（10文字。全角・スペース・ハイフンがあっても構いません）
    pub key: String,
}
