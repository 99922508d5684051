//! Everything the commands print, in one place: results on standard output, warnings and
//! errors on standard error, in Japanese for the maintainer or clerk at the terminal.

use std::path::Path;
use std::process::ExitCode;

use crate::build::{BuildSummary, CheckSummary, Paths};
use crate::common::diagnostics::{Diagnostic, InputErrors};
use crate::daemon::Ready;
use crate::preview::rebuild::SiteUpdate;
use crate::trust::keys::{
    KeyError, AUTH_SECRET_FILE, PRIVATE_KEY_FILE, PUBLIC_KEY_FILE, SERVICE_PRIVATE_KEY_FILE,
    SERVICE_PUBLIC_KEY_FILE,
};
use crate::trust::receipt;
use crate::trust::verify::{NotValid, Verified};

const BANNER: &str =
    "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!";

fn warnings(warnings: &[Diagnostic]) {
    for w in warnings {
        eprintln!("{w}");
    }
}

/// What a build wrote, with a loud warning when it created development keys.
pub(super) fn built(paths: &Paths, s: &BuildSummary) {
    warnings(&s.warnings);
    if let Some(id) = &s.created_keys {
        eprintln!("{BANNER}");
        eprintln!(
            "警告: 鍵がなかったため、開発用の鍵ペア（鍵 ID {id}）を {} に作りました。",
            paths.keys.display()
        );
        eprintln!("本番では hosho keygen で作った鍵を安全に保管して使ってください。この鍵で署名した証書を本番に出さないでください。");
        eprintln!("{BANNER}");
    }
    let v = &s.vault_report;
    println!(
        "{} に{}ページ（{}ファイル）を書き出しました",
        s.out.display(),
        s.pages,
        s.files
    );
    println!(
        "{} に証書{}件を書き出しました（組版{}件、前回から再利用{}件）。マニフェスト #{}、SHA-256 {}、鍵 ID {}",
        s.vault.display(),
        v.certificates,
        v.typeset,
        v.reused,
        v.seq,
        v.manifest_sha256,
        v.key_id
    );
    println!(
        "{} に認証キーのお知らせ{}件を書き出しました（認証キーが書かれています。このホストから出さないでください）",
        s.notices.display(),
        v.certificates
    );
    let st = &s.statements;
    if st.statements > 0 {
        println!(
            "{} に保証料計算書{}通を書き出しました（組版{}通、前回から再利用{}通）",
            s.notices
                .join(crate::certificates::statements::STATEMENTS_DIR)
                .display(),
            st.statements,
            st.typeset,
            st.reused
        );
    }
    println!("所要時間{:.2}秒", s.elapsed.as_secs_f64());
}

/// What a rebuild of the live preview that changed only the site wrote.
pub(super) fn site_updated(u: &SiteUpdate) {
    println!(
        "{} を更新しました: 変更{}ファイル（全{}ページ、{}ファイル）。証書・お知らせ・保証料計算書は変わりません。所要時間{:.3}秒",
        u.out.display(),
        u.written,
        u.pages,
        u.files,
        u.elapsed.as_secs_f64()
    );
}

pub(super) fn checked(s: &CheckSummary) {
    warnings(&s.warnings);
    let statements = if s.statements > 0 {
        format!("、保証料計算書{}通", s.statements)
    } else {
        String::new()
    };
    println!(
        "問題はありません: {}ページ、導入発注者一覧{}件（{}団体）、Q&A {}件、保証の記録{}件{statements}",
        s.pages, s.tables, s.adopters, s.qa, s.certificates
    );
}

pub(super) fn keys_created(dir: &Path, id: &str) {
    println!("鍵を作りました（鍵 ID {id}）");
    println!(
        "  秘密鍵        {}（0600）",
        dir.join(PRIVATE_KEY_FILE).display()
    );
    println!(
        "  認証キーの秘密値 {}（0600）",
        dir.join(AUTH_SECRET_FILE).display()
    );
    println!("  公開鍵        {}", dir.join(PUBLIC_KEY_FILE).display());
    println!("秘密鍵と秘密値はバックアップし、リポジトリに入れないでください。");
}

pub(super) fn service_key_created(dir: &Path, id: &str) {
    println!("確認サービスの鍵を作りました（鍵 ID {id}）");
    println!(
        "  秘密鍵  {}（0600）: 確認サービスのホストに置き、hosho serve --receipt-key で渡します",
        dir.join(SERVICE_PRIVATE_KEY_FILE).display()
    );
    println!(
        "  公開鍵  {}: サイトをビルドするホストの鍵の置き場所に置くと、サイトに公開されます",
        dir.join(SERVICE_PUBLIC_KEY_FILE).display()
    );
}

pub(super) fn verified(v: &Verified) {
    println!("有効な電子証書です");
    println!("  保証契約番号  {}", v.number);
    println!("  区分          {}", v.record.kind);
    println!("  状態          {}", v.status.label());
    println!("  証書 PDF      {}", v.pdf.display());
    println!("  PDF SHA-256   {}", v.pdf_sha256);
    println!("  マニフェスト  #{}", v.seq);
}

/// A valid 確認記録: what it proves, as of when.
pub(super) fn receipt_valid(c: &receipt::Checked) {
    let (r, head) = (&c.record, &c.receipt.tree_head);
    let current = &r.current;
    println!("有効な確認記録です");
    println!("  保証契約番号    {}", r.number);
    println!("  区分            {}", r.kind);
    println!("  状態（確認時）  {}", r.status.label());
    println!("  工事名          {}", current.project);
    println!(
        "  保証金額        {}",
        crate::common::format::yen(current.amount)
    );
    println!(
        "  保証期間        {}から{}まで",
        crate::common::era::full_date(current.period.from),
        crate::common::era::full_date(current.period.to)
    );
    println!("  被保証者        {}", r.beneficiary);
    println!(
        "  保証会社        {}（鍵 ID {}）",
        c.receipt.guarantor, head.key_id
    );
    let at = chrono::DateTime::from_timestamp(i64::try_from(c.receipt.checked_at).unwrap_or(0), 0)
        .map(crate::common::era::in_japan)
        .unwrap_or_default();
    println!(
        "  確認日時        {}　{}（日本時間）",
        crate::common::era::full_date(at.date()),
        at.format("%H時%M分%S秒")
    );
    println!("  確認した場所    {}", c.receipt.service_url);
    println!("  マニフェスト    #{}（{}件）", head.seq, head.size);
    println!("この記録は、確認した日時に、この内容の電子証書を保証会社が署名し、確認サービスが表示したことを示します。");
    println!("その後の変更・解除はこの記録に現れません。現在の状態は「電子証書の確認」で確かめてください。");
}

pub(super) fn receipt_invalid(file: &Path, e: &receipt::Invalid) {
    eprintln!("確認記録 {} は有効ではありません: {e}", file.display());
}

pub(super) fn not_verified(e: &NotValid) {
    eprintln!("確認できません: {e}");
}

/// The daemon listens: where, on which manifest, and (after a build) a number and key to try.
pub(super) fn serving(
    ready: &Ready,
    preview: bool,
    example: Option<&(String, String)>,
    watching: bool,
) {
    match ready.issuers.as_slice() {
        [one] if one.name.is_empty() => {
            let (seq, entries) = ready.first_manifest().unwrap_or_default();
            println!(
                "確認サービスを起動しました: http://{}/verify/ （マニフェスト #{seq}、{entries}件）",
                ready.addr
            );
        }
        issuers => {
            println!(
                "確認サービスを起動しました: http://{}/verify/ （保証事業会社 {}社）",
                ready.addr,
                issuers.len()
            );
            for issuer in issuers {
                match &issuer.manifest {
                    Ok((seq, entries)) => println!(
                        "  {}（{}）: マニフェスト #{seq}、{entries}件",
                        issuer.name, issuer.id
                    ),
                    Err(why) => println!(
                        "  {}（{}）: 確認を止めています（{why}）",
                        issuer.name, issuer.id
                    ),
                }
            }
        }
    }
    if preview {
        println!("サイトのプレビュー: http://{}/", ready.addr);
    }
    if let Some(admin) = ready.admin {
        println!("運用者向け: http://{admin}/metrics と http://{admin}/healthz");
    }
    self::example(example);
    println!("監査ログ: {}", ready.audit_log.display());
    match &ready.receipt_key_id {
        Some(id) => println!("確認記録（電子ファイル）に署名します: 確認サービスの鍵 ID {id}"),
        None => println!("確認記録（電子ファイル）は出しません（--receipt-key の指定も、鍵の置き場所の service.pk8 もありません）"),
    }
    if watching {
        println!("ファイルを保存すると自動で再ビルドし、開いているページを読み込み直します");
    }
    println!("止めるには Ctrl-C を押してください");
}

/// A number and key to try, with development keys only (nobody depends on them).
pub(super) fn example(example: Option<&(String, String)>) {
    if let Some((number, key)) = example {
        println!("お試しください: 保証契約番号 {number} ／ 認証キー {key}");
    }
}

/// After `hosho new`.
pub(super) fn scaffolded(file: &Path, url: &str) {
    println!(
        "{} を作りました（公開すると {url} になります）",
        file.display()
    );
    println!("各項目の説明はファイルの中のコメントにあります。hosho serve で開いておくと、保存するたびに確かめられます");
}

/// After a failed rebuild.
pub(super) fn keeps_serving() {
    eprintln!(
        "直前に成功したサイトを表示し続けます。ファイルを直して保存すると、もう一度ビルドします"
    );
}

/// Input errors one per line (exit 1); a usage error (exit 2); anything else with its
/// whole cause chain (exit 1).
pub(super) fn report(e: &anyhow::Error) -> ExitCode {
    if let Some(input) = e.downcast_ref::<InputErrors>() {
        eprintln!("{input}");
        return ExitCode::from(1);
    }
    if let Some(KeyError::TrustedCount(_)) = e.downcast_ref::<KeyError>() {
        eprintln!("{e}");
        return ExitCode::from(2);
    }
    eprintln!("エラー: {e}");
    for cause in e.chain().skip(1) {
        eprintln!("  原因: {cause}");
    }
    ExitCode::from(1)
}
