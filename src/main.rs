//! `hosho`: wiring only. Exit codes: 0 success, 1 the input is wrong, 2 usage.

use std::process::ExitCode;

use clap::Parser;
use hosho::build::{self, Paths};
use hosho::cli::{Cli, Command};
use hosho::diagnostics::{Diagnostic, InputErrors};
use hosho::{daemon, keys, verify};

/// Stack of each worker thread. Typst's layout recurses deeply; the 2 MiB default of
/// spawned threads overflowed on real certificates.
const WORKER_STACK: usize = 16 * 1024 * 1024;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = rayon::ThreadPoolBuilder::new()
        .stack_size(WORKER_STACK)
        .build_global()
    {
        eprintln!("エラー: 作業用スレッドを用意できません: {e}");
        return ExitCode::from(1);
    }
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
        Ok(code) => code,
        Err(e) => {
            report(&e);
            ExitCode::from(1)
        }
    }
}

fn print_warnings(warnings: &[Diagnostic]) {
    for w in warnings {
        eprintln!("{w}");
    }
}

fn print_build(paths: &Paths, s: &build::BuildSummary) {
    print_warnings(&s.warnings);
    if let Some(id) = &s.created_keys {
        eprintln!(
            "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
        );
        eprintln!(
            "警告: 鍵がなかったため、開発用の鍵ペア（鍵 ID {id}）を {} に作りました。",
            paths.keys.display()
        );
        eprintln!("本番では hosho keygen で作った鍵を安全に保管して使ってください。この鍵で署名した証書を本番に出さないでください。");
        eprintln!(
            "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
        );
    }
    let v = &s.vault_report;
    println!(
        "{} に {} ページ（{} ファイル）を書き出しました",
        s.out.display(),
        s.pages,
        s.files
    );
    println!(
        "{} に証書 {} 件を書き出しました（組版 {} 件、前回から再利用 {} 件）。マニフェスト #{}、SHA-256 {}、鍵 ID {}",
        s.vault.display(),
        v.certificates,
        v.typeset,
        v.reused,
        v.seq,
        v.manifest_sha256,
        v.key_id
    );
    println!("所要時間 {:.2} 秒", s.elapsed.as_secs_f64());
}

/// The trusted public keys: those given, or `signing.pub` in the keys directory.
fn trusted_keys(
    keys_dir: &std::path::Path,
    given: Vec<std::path::PathBuf>,
) -> anyhow::Result<Vec<hosho::manifest::PublicKey>> {
    let files = if given.is_empty() {
        vec![keys_dir.join(keys::PUBLIC_KEY_FILE)]
    } else {
        given
    };
    files.iter().map(|f| keys::load_public(f)).collect()
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Build {
            root,
            out,
            vault,
            keys,
        } => {
            let paths = Paths::new(
                &root.root,
                out.as_deref(),
                vault.as_deref(),
                keys.as_deref(),
            );
            print_build(&paths, &build::build(&paths)?);
        }
        Command::Serve {
            root,
            listen,
            vault,
            site,
            keys: keys_dir,
            public_key,
            state,
            no_build,
            limit_address,
            limit_number,
            kdf_workers,
            kdf_queue,
            max_connections,
            request_timeout,
            min_kdf_iterations,
        } => {
            if public_key.len() > 2 {
                eprintln!("--public-key は 2 つまでです（鍵の切り替え中の新旧）");
                return Ok(ExitCode::from(2));
            }
            let root = root.root;
            let paths = Paths::new(
                &root,
                site.as_deref(),
                vault.as_deref(),
                keys_dir.as_deref(),
            );
            let example = if no_build {
                None
            } else {
                let summary = build::build(&paths)?;
                print_build(&paths, &summary);
                summary.example
            };
            let trusted = trusted_keys(&paths.keys, public_key)?;
            let mut options = daemon::Options::new(root.clone(), paths.vault.clone(), trusted);
            options.listen = listen;
            options.site = Some(paths.out.clone());
            if let Some(state) = state {
                options.state_dir = state;
            }
            if let Some(rate) = limit_address {
                options.abuse.per_address = rate;
            }
            if let Some(rate) = limit_number {
                options.abuse.per_number = rate;
            }
            if let Some(n) = kdf_workers {
                options.kdf_workers = n.max(1);
            }
            if let Some(n) = kdf_queue {
                options.kdf_queue = n;
            }
            options.max_connections = max_connections.max(1);
            options.request_timeout = std::time::Duration::from_secs(request_timeout.max(1));
            options.min_kdf_iterations = min_kdf_iterations;
            daemon::run(options, |ready| {
                println!(
                    "確認サービスを起動しました: http://{}/verify/ （マニフェスト #{}、{} 件）",
                    ready.addr, ready.seq, ready.entries
                );
                if !no_build {
                    println!("サイトのプレビュー: http://{}/", ready.addr);
                }
                if let Some((number, key)) = &example {
                    println!("お試しください: 保証契約番号 {number} ／ 認証キー {key}");
                }
                println!("監査ログ: {}", ready.audit_log.display());
                println!("止めるには Ctrl-C を押してください");
            })?;
        }
        Command::Check { root } => {
            let s = build::check(&root.root)?;
            print_warnings(&s.warnings);
            println!(
                "問題はありません: {} ページ、導入発注者一覧 {} 件（{} 団体）、Q&A {} 件、保証の記録 {} 件",
                s.pages, s.tables, s.adopters, s.qa, s.certificates
            );
        }
        Command::Keygen { root, keys: dir } => {
            let dir = keys::keys_dir(&root.root, dir.as_deref());
            let public = keys::generate(&dir)?;
            println!("鍵を作りました（鍵 ID {}）", public.id);
            println!(
                "  秘密鍵        {}（0600）",
                dir.join(keys::PRIVATE_KEY_FILE).display()
            );
            println!(
                "  認証キーの秘密値 {}（0600）",
                dir.join(keys::AUTH_SECRET_FILE).display()
            );
            println!(
                "  公開鍵        {}",
                dir.join(keys::PUBLIC_KEY_FILE).display()
            );
            println!("秘密鍵と秘密値はバックアップし、リポジトリに入れないでください。");
        }
        Command::Verify {
            root,
            vault,
            public_key,
            number,
            key,
        } => {
            let vault = vault.unwrap_or_else(|| root.root.join(hosho::vault::VAULT_DIR));
            if public_key.len() > 2 {
                eprintln!("--public-key は 2 つまでです（鍵の切り替え中の新旧）");
                return Ok(ExitCode::from(2));
            }
            let trusted = trusted_keys(&root.root.join(keys::KEYS_DIR), public_key)?;
            match verify::verify(&vault, &trusted, &number, &key) {
                Ok(v) => {
                    println!("有効な電子証書です");
                    println!("  保証契約番号  {}", v.number);
                    println!("  区分          {}", v.record.kind);
                    println!("  状態          {}", verify::status_label(v.status));
                    println!("  証書 PDF      {}", v.pdf.display());
                    println!("  PDF SHA-256   {}", v.pdf_sha256);
                    println!("  マニフェスト  #{}", v.seq);
                }
                Err(e) => {
                    eprintln!("確認できません: {e}");
                    return Ok(ExitCode::from(1));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
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
