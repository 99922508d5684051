//! Certificates, notices and the signed manifest: built from the demo records, read back as
//! text, verified offline, tampered with.

use std::fs;
use std::path::Path;

use crate::support::{snapshot, SiteDir};

const NUMBERS: [&str; 12] = [
    "2070004426",
    "2070004427",
    "2070202096",
    "2070310001",
    "2070310002",
    "2070310003",
    "2070310004",
    "2070310005",
    "2070310006",
    "2070310007",
    "2070410001",
    "2070410002",
];

/// The text of a PDF (pdftotext, installed by scripts/test), whitespace collapsed.
fn pdf_text(path: &Path) -> String {
    crate::support::pdftotext(path, &[])
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn vault(site: &SiteDir) -> std::path::PathBuf {
    site.root.join("vault")
}

/// The notice of `number`, in the notices output (never in the vault).
fn notice(site: &SiteDir, number: &str) -> std::path::PathBuf {
    site.root.join(format!("notices/{number}.pdf"))
}

fn certificate(site: &SiteDir, number: &str) -> String {
    pdf_text(&vault(site).join(format!("certificates/{number}.pdf")))
}

/// The 約款 sentence a certificate of `kind` ends with, read across its line breaks.
fn assert_terms_sentence(text: &str, kind: &str) {
    let joined: String = text.split_whitespace().collect();
    let sentence =
        format!("当会社は、{kind}約款に基づき上記のとおり{kind}契約を締結し、その責に任じます。");
    assert!(
        joined.contains(&sentence),
        "{kind}: no 「{sentence}」 in {text}"
    );
}

fn assert_contains(text: &str, facts: &[&str], what: &str) {
    for fact in facts {
        assert!(text.contains(fact), "{what}: missing {fact:?} in {text}");
    }
}

#[test]
fn demo_build_typesets_every_certificate_and_notice() {
    let site = SiteDir::demo();
    let run = site.build();
    assert!(
        run.stdout
            .contains("証書12件を書き出しました（組版12件、前回から再利用0件）"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr
            .contains("警告: 鍵がなかったため、開発用の鍵ペア"),
        "{}",
        run.stderr
    );
    for n in NUMBERS {
        for path in [
            vault(&site).join(format!("certificates/{n}.pdf")),
            notice(&site, n),
        ] {
            let pdf = fs::read(&path).expect("pdf written");
            assert!(pdf.starts_with(b"%PDF-"), "{}", path.display());
        }
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(vault(&site).join("manifest.json")).expect("manifest"))
            .expect("json");
    let numbers: Vec<&str> = manifest["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["number"].as_str())
        .collect();
    assert_eq!(numbers, NUMBERS, "sorted by number");
    let statuses: Vec<&str> = manifest["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["status"].as_str())
        .collect();
    assert_eq!(
        statuses,
        [
            "valid",
            "valid",
            "valid",
            "valid",
            "changed",
            "valid",
            "cancelled",
            "changed",
            "changed",
            "cancelled",
            "valid",
            "changed",
        ]
    );
    assert_eq!(manifest["kdf"]["iterations"], 100_000);
}

#[test]
fn certificates_show_every_field_for_each_kind() {
    let site = SiteDir::demo();
    site.build();
    let advance = certificate(&site, "2070004426");
    assert_contains(
        &advance,
        &[
            "保証証書",
            "（前払金保証）",
            "電子証書（閲覧用）",
            "保証契約番号",
            "2070004426",
            "大阪府大阪市北区みほん町一丁目1番1号",
            "株式会社みほん建設 様",
            "支出負担行為担当官 近畿地方整備局長 様",
            "40,000,000円",
            "令和4年5月10日から令和5年3月31日まで",
            "みほん道路改良工事",
            "大阪府みほん市地内",
            "100,000,000円",
            "みほん銀行 梅田支店",
            "発行日 令和4年5月10日",
            "工期 令和4年5月10日から令和5年3月31日まで",
            "【注】1. 保証金額の増減などの変更があったときは（変更）と表示し",
            "2. 契約保証は工期の変更に合わせて保証期間が変わるため、工期の変更だけでは変更の保証証書を発行しません。",
            "3. 請負金額だけの変更では、変更の保証証書を発行しません。",
            "記名押印に代えて、当会社が電子署名した記録で内容を確かめられるようにしています。",
            "西日本建設業保証株式会社",
            "西日本建設業保証株式会社",
            "保証証書の原本ではありません",
            "https://denshi-hosho.example.jp/verify/",
        ],
        "前払金保証",
    );
    assert_terms_sentence(&advance, "前払金保証");
    // The branch on a line of its own, under the head office's address (not as if it
    // were at that address).
    let laid_out = crate::support::pdftotext(
        &vault(&site).join("certificates/2070004426.pdf"),
        &["-layout"],
    );
    // 2070004426 was issued by 大阪支店 (`office:`): the office's own address and numbers,
    // as on the flyer's sample; one without `office:` is [guarantor]'s 熊本支店.
    assert_eq!(
        line_with(&laid_out, "本社"),
        "本社 大阪府大阪市西区立売堀二丁目1番2号"
    );
    assert_eq!(
        line_with(&laid_out, "大阪支店"),
        "大阪支店 大阪府大阪市西区立売堀二丁目1番2号"
    );
    assert_eq!(
        line_with(&laid_out, "TEL"),
        "TEL 06-6543-2711 FAX 0120-504660"
    );
    let kumamoto = crate::support::pdftotext(
        &vault(&site).join("certificates/2070310002.pdf"),
        &["-layout"],
    );
    assert_eq!(
        line_with(&kumamoto, "TEL"),
        "熊本支店 TEL 096-364-1155 FAX 0120-504178"
    );
    let niihama = crate::support::pdftotext(
        &vault(&site).join("certificates/2070310003.pdf"),
        &["-layout"],
    );
    assert_eq!(
        line_with(&niihama, "愛媛支店"),
        "愛媛支店 愛媛県松山市見本町一丁目2番3号"
    );
    let record: serde_json::Value = serde_json::from_slice(
        &fs::read(vault(&site).join("records/2070310003.json")).expect("record"),
    )
    .expect("json");
    assert_eq!(record["guarantor"]["branch"], "愛媛支店");
    // A multi-year contract: 請負金額（総額） and （対象額）.
    let multi_year = certificate(&site, "2070410001");
    assert_contains(
        &multi_year,
        &[
            "請負金額（総額） 330,000,000円",
            "請負金額（対象額） 120,000,000円",
            "保証金額 48,000,000円",
        ],
        "multi-year",
    );
    assert!(!advance.contains("（総額）"), "{advance}");
    assert!(
        !advance.contains("（前払金保証） （変更）"),
        "an unchanged certificate is not marked"
    );
    let contract = certificate(&site, "2070202096");
    assert_contains(
        &contract,
        &[
            "（契約保証）",
            "10,000,000円",
            "工期 令和4年5月10日から令和5年3月31日まで",
            "【注】1.",
        ],
        "契約保証",
    );
    assert_terms_sentence(&contract, "契約保証");
    assert!(
        !contract.contains("預託金融機関"),
        "no bank line for 契約保証"
    );
    let interim = certificate(&site, "2070310001");
    assert_contains(
        &interim,
        &[
            "（中間前払金保証）",
            "16,940,000円",
            "熊本県知事 様",
            "みほん信用金庫 本店営業部",
            "工期 令和6年10月15日から令和7年3月25日まで",
            "【注】1.",
        ],
        "中間前払金保証",
    );
    assert_terms_sentence(&interim, "中間前払金保証");
}

#[test]
fn changed_and_cancelled_certificates_are_marked() {
    let site = SiteDir::demo();
    site.build();
    let changed = certificate(&site, "2070310002");
    assert_contains(
        &changed,
        &[
            "保証証書 （前払金保証） （変更）",
            "工期の終期：令和6年12月20日 → 令和7年2月28日",
            "13,200,000円",
            "33,000,000円",
            "令和6年6月3日から令和7年2月28日まで",
            "変更の履歴",
            "令和6年9月2日",
            "保証金額：12,100,000円 → 13,200,000円（増額）",
            "請負金額：30,250,000円 → 33,000,000円",
            "令和6年12月10日",
            "保証期間の終期：令和6年12月20日 → 令和7年2月28日（期限変更）",
        ],
        "changed",
    );
    // The dates beside the title, each on its own line (as laid out on the page).
    let laid_out = crate::support::pdftotext(
        &vault(&site).join("certificates/2070310002.pdf"),
        &["-layout"],
    );
    assert!(
        line_with(&laid_out, "発行日")
            .trim_end()
            .ends_with("令和6年6月3日"),
        "{laid_out}"
    );
    assert!(
        line_with(&laid_out, "変更日")
            .trim_end()
            .ends_with("令和6年12月10日"),
        "{laid_out}"
    );
    let cancelled = certificate(&site, "2070310004");
    assert_contains(
        &cancelled,
        &["解 除 この保証契約は令和6年9月30日に解除されています。保証の効力はありません。"],
        "cancelled",
    );
    let joined: String = cancelled.split_whitespace().collect();
    assert!(
        joined.contains(
            "前払金保証契約を締結しましたが、この保証契約は令和6年9月30日に解除されています。"
        ),
        "{cancelled}"
    );
    // The 解除 whose fee was returned: its date is the certificate's 解除日.
    let laid_out = crate::support::pdftotext(
        &vault(&site).join("certificates/2070310007.pdf"),
        &["-layout"],
    );
    assert!(
        line_with(&laid_out, "解除日")
            .trim_end()
            .ends_with("令和6年10月25日"),
        "{laid_out}"
    );
    let reiwa = certificate(&site, "2070310005");
    assert_contains(
        &reiwa,
        &[
            "発行日 平成31年4月26日",
            "令和元年5月1日から令和2年3月31日まで",
            "（減額）",
            "5,500,000円",
        ],
        "era boundary",
    );
}

#[test]
fn notices_carry_the_grouped_key_and_how_to_submit() {
    let site = SiteDir::demo();
    site.build();
    let text = pdf_text(&notice(&site, "2070004426"));
    assert_contains(
        &text,
        &[
            "電子証書閲覧用「認証キー」等のお知らせ",
            "前払金保証",
            "2070004426",
            "332 E1E 7K9Q",
            "みほん道路改良工事",
            "支出負担行為担当官 近畿地方整備局長",
            "西日本建設業保証株式会社",
            "電子契約システムへの登録（アップロード）",
            "電子メールへの添付",
            "印刷・保存したものは提出書類になりません",
            "https://denshi-hosho.example.jp/verify/",
        ],
        "notice",
    );
    // A derived key is printed in the same grouped form.
    let secret = fs::read(site.root.join("keys/authkey.secret")).expect("secret");
    let key = hosho::trust::authkey::derive_key(&secret, "2070004427");
    let derived = pdf_text(&notice(&site, "2070004427"));
    assert!(
        derived.contains(&hosho::trust::authkey::group(&key)),
        "{derived}"
    );
}

/// The QR codes of a PDF's first page: `pdftoppm` draws it at 200 dpi, `zbarimg` (Debian's
/// zbar-tools, installed by scripts/test) reads it.
fn qr_codes(pdf: &Path) -> Vec<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let image = dir.path().join("page");
    let drawn = std::process::Command::new("pdftoppm")
        .args(["-r", "200", "-png", "-singlefile", "-f", "1", "-l", "1"])
        .arg(pdf)
        .arg(&image)
        .status()
        .expect("pdftoppm (poppler-utils)");
    assert!(drawn.success());
    let read = std::process::Command::new("zbarimg")
        .args(["--quiet", "--raw"])
        .arg(image.with_extension("png"))
        .output()
        .expect("zbarimg (zbar-tools) is installed by scripts/test");
    assert!(
        read.status.success(),
        "no QR code found in {}",
        pdf.display()
    );
    String::from_utf8_lossy(&read.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_notice_has_an_issue_date_and_a_qr_code_with_the_number_only() {
    let site = SiteDir::demo();
    site.build();
    let notice = notice(&site, "2070310002");
    assert_eq!(
        qr_codes(&notice),
        ["https://denshi-hosho.example.jp/verify/?number=2070310002"]
    );
    let text = pdf_text(&notice);
    assert_contains(&text, &["発行日", "令和6年6月3日"], "notice");
    // The QR code is drawn, not pasted as a picture.
    let images = std::process::Command::new("pdfimages")
        .arg("-list")
        .arg(&notice)
        .output()
        .expect("pdfimages (poppler-utils)");
    let listing = String::from_utf8_lossy(&images.stdout);
    assert_eq!(listing.lines().count(), 2, "no raster images: {listing}");
}

/// A statement's text, one string per line as pdftotext lays it out.
fn statement(site: &SiteDir, file: &str) -> String {
    let path = site.root.join("notices/statements").join(file);
    crate::support::pdftotext(&path, &["-layout"])
}

/// Every era date and yen amount of `layout` (pdftotext -layout) stands on one line: no line
/// ends inside `令和6年10月15日` or begins with the `円` of an amount.
pub(crate) fn assert_dates_and_amounts_whole(layout: &str, what: &str) {
    for line in layout.lines() {
        let trimmed = line.trim();
        assert!(
            !trimmed.starts_with('円'),
            "{what}: a line begins inside a date or amount: {line}\n{layout}"
        );
        for token in trimmed.split_whitespace() {
            assert!(!token.ends_with(','), "{what}: amount broken: {line}");
        }
        for (at, _) in trimmed.match_indices("令和") {
            assert!(
                whole_date(&trimmed[at + "令和".len()..]),
                "{what}: date broken: {line}\n{layout}"
            );
        }
    }
}

/// Whether `rest` (what follows 令和) goes on to a whole date, month or year on its line.
fn whole_date(rest: &str) -> bool {
    let mut chars = rest.chars().peekable();
    let digits = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| {
        let mut n = 0;
        while chars
            .peek()
            .is_some_and(|c| c.is_ascii_digit() || *c == '元')
        {
            chars.next();
            n += 1;
        }
        n > 0
    };
    if !digits(&mut chars) || chars.next() != Some('年') {
        return false;
    }
    if chars.peek() == Some(&'度') {
        return true;
    }
    if !digits(&mut chars) || chars.next() != Some('月') {
        return false;
    }
    match chars.peek() {
        Some(c) if c.is_ascii_digit() => digits(&mut chars) && chars.next() == Some('日'),
        Some(_) => true,
        None => false,
    }
}

/// The words of the line of `text` that holds `needle`, from `needle` on, spaces collapsed.
fn from(text: &str, needle: &str) -> String {
    let line = line_with(text, needle);
    line[line.find(needle).unwrap_or(0)..].to_owned()
}

/// The words of a line of `text` that holds `needle`, spaces collapsed.
fn line_with(text: &str, needle: &str) -> String {
    let line = text
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle} in {text}"));
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn fee_statements_list_every_line_and_add_up() {
    let site = SiteDir::demo();
    let run = site.build();
    assert!(
        run.stdout
            .contains("保証料計算書4通を書き出しました（組版4通、前回から再利用0通）"),
        "{}",
        run.stdout
    );
    let files: Vec<String> = snapshot(&site.root.join("notices/statements"))
        .into_keys()
        .collect();
    assert_eq!(
        files,
        [
            "C0001/2024-06.pdf",
            "C0001/2024-09.pdf",
            "C0001/2024-10-return.pdf",
            "C0001/2024-10.pdf",
            "cache.json"
        ]
    );
    let october = statement(&site, "C0001/2024-10.pdf");
    let flat = pdf_text(&site.root.join("notices/statements/C0001/2024-10.pdf"));
    assert_contains(
        &flat,
        &[
            "保証料計算書",
            "顧客コード C0001",
            "見本工業株式会社 御中",
            "令和6年10月分（令和6年10月1日から令和6年10月31日まで）",
            "西日本建設業保証株式会社",
            // What a company pays from: the due date, the account, the tax note.
            "お支払期限 令和6年11月30日",
            "お振込先 みほん銀行 本店営業部 普通預金 0123456 ニシニホンケンセツギヨウホシヨウ（カ",
            "振込手数料はお客様のご負担となります。",
            "保証料は消費税の非課税取引のため、消費税はかかりません。",
        ],
        "statement",
    );
    // One 発行日 on the page: the statement's own.
    assert_eq!(flat.matches("発行日").count(), 1, "{flat}");
    assert!(line_with(&october, "発行日").ends_with("発行日 令和6年10月31日"));
    assert_eq!(
        line_with(&october, "熊本支店"),
        "熊本支店 電話 096-364-1155"
    );
    // One line per guarantee issued in the month, by date, with its 保証期間: the fee as
    // written, less the e-Net discount (前払金保証, 300万円 or more), and the
    // 中間前払金保証's computed at 0.065% (16,940,000 × 0.065% = 11,011).
    for (number, words) in [
        (
            "2070310006",
            "令和6年10月1日 2070310006 上天草市長 令和6年10月1日から 8,800,000円 35,200円 200円 e-Net保証割引",
        ),
        (
            "2070310007",
            "令和6年10月7日 2070310007 熊本県知事 令和6年10月7日から 990,000円 9,900円",
        ),
        (
            "2070310001",
            "令和6年10月15日 2070310001 熊本県知事 令和6年10月15日から 16,940,000円 11,011円",
        ),
    ] {
        assert_eq!(line_with(&october, number), words);
    }
    assert_contains(
        &flat,
        &[
            "令和7年3月19日まで",
            "令和7年2月28日まで",
            "令和7年3月25日まで",
        ],
        "each line's 保証期間",
    );
    let order: Vec<usize> = ["2070310006", "2070310007", "2070310001"]
        .iter()
        .map(|n| october.find(n).expect("listed"))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "by date: {october}");
    assert_eq!(from(&october, "保証料の合計"), "保証料の合計 56,111円");
    assert_eq!(from(&october, "割引額の合計"), "割引額の合計 200円");
    assert_eq!(from(&october, "追加保証料の合計"), "追加保証料の合計 0円");
    assert_eq!(from(&october, "ご請求額"), "ご請求額 55,911円");
    // June: the e-Net discount on 2070310002 (48,400 − 200).
    let june = statement(&site, "C0001/2024-06.pdf");
    assert!(
        line_with(&june, "2070310002").ends_with("12,100,000円 48,400円 200円 e-Net保証割引"),
        "{june}"
    );
    assert_eq!(from(&june, "ご請求額"), "ご請求額 48,200円");
    // The change that added a fee is billed in its own month, with what it changed.
    let september = statement(&site, "C0001/2024-09.pdf");
    assert!(
        line_with(&september, "2070310002").contains("12,100,000円 4,400円 保証金額の増額"),
        "{september}"
    );
    assert!(
        pdf_text(&site.root.join("notices/statements/C0001/2024-09.pdf"))
            .contains("→ 13,200,000円"),
        "{september}"
    );
    assert_eq!(from(&september, "ご請求額"), "ご請求額 4,400円");
    // Returns, for a decrease and for a 解除, on a statement of their own: what was paid,
    // what is returned, why, and when it is paid back.
    let returns = statement(&site, "C0001/2024-10-return.pdf");
    let returns_flat = pdf_text(
        &site
            .root
            .join("notices/statements/C0001/2024-10-return.pdf"),
    );
    assert!(returns.contains("保証料返還計算書"), "{returns}");
    assert!(
        line_with(&returns, "2070310007")
            .contains("990,000円 9,900円 6,600円 令和6年10月25日に解除。"),
        "{returns}"
    );
    assert!(
        line_with(&returns, "2070310006")
            .contains("8,800,000円 35,000円 7,040円 保証金額の減額（8,800,000円から"),
        "{returns}"
    );
    assert_contains(
        &returns_flat,
        &[
            "（解除）",
            "保証期間の残りは 令和6年10月26日から令和7年2月28日までの 126日",
            "→ 7,040,000円",
            "保証金額の減額（8,800,000円から 7,040,000円へ）",
            "返還保証料は、令和6年11月30日までに、お届けの口座へお振り込みします。",
        ],
        "return statement",
    );
    assert_eq!(
        from(&returns, "返還保証料の合計"),
        "返還保証料の合計 13,640円"
    );
    for file in [
        "C0001/2024-06.pdf",
        "C0001/2024-09.pdf",
        "C0001/2024-10.pdf",
        "C0001/2024-10-return.pdf",
    ] {
        assert_dates_and_amounts_whole(&statement(&site, file), file);
    }
    // Fees never reach the vault or the site.
    for dir in [vault(&site), site.out()] {
        for (name, bytes) in snapshot(&dir) {
            let text = String::from_utf8_lossy(&bytes);
            assert!(!text.contains("35200") && !text.contains("C0001"), "{name}");
        }
    }
}

#[test]
fn notices_print_the_orderers_own_rules_with_the_subject_filled_in() {
    let site = SiteDir::demo();
    site.build();
    // 上天草市長 is 上天草市 of the adoption table: its rules, this number and project.
    let text = pdf_text(&notice(&site, "2070310006"));
    assert_contains(
        &text,
        &[
            "提出方法 メール",
            "提出先 会計課（kaikei@kamiamakusa.example.jp）",
            "メールの件名 【電子保証】（工事番号） 市道みほん港線道路改良工事",
            "前払金請求書とは別に提出してください。",
            "件名の工事番号には、市からお知らせした番号を書いてください。",
        ],
        "notice for 上天草市",
    );
    // The demo's rules are an example, and the notice says so.
    let joined: String = text.split_whitespace().collect();
    assert!(
        joined.contains("この提出方法は見本の例です。実際の方法は上天草市の案内でご確認ください"),
        "{text}"
    );
    // 熊本県知事 → 熊本県, with no subject line.
    let text = pdf_text(&notice(&site, "2070310001"));
    assert_contains(
        &text,
        &[
            "電子契約システム・メール",
            "前払金請求書と一緒に提出できます。",
        ],
        "notice for 熊本県",
    );
    let joined: String = text.split_whitespace().collect();
    assert!(
        joined.contains("実際の方法は熊本県の案内でご確認ください"),
        "{text}"
    );
    assert!(!text.contains("メールの件名"), "{text}");
    // An orderer without rules: the general instructions.
    let text = pdf_text(&notice(&site, "2070004426"));
    assert_contains(&text, &["電子メールへの添付"], "general notice");
}

#[test]
fn rebuilds_reuse_and_same_input_gives_same_pdfs() {
    let first = SiteDir::demo();
    first.build();
    let again = first.build();
    assert!(
        again.stdout.contains("（組版0件、前回から再利用12件）")
            && again
                .stdout
                .contains("保証料計算書4通を書き出しました（組版0通、前回から再利用4通）"),
        "{}",
        again.stdout
    );
    // Another checkout with the same keys typesets byte-identical PDFs.
    let second = SiteDir::demo();
    crate::support::copy_dir(&first.root.join("keys"), &second.root.join("keys"));
    second.build();
    let (a, b) = (snapshot(&vault(&first)), snapshot(&vault(&second)));
    let (c, d) = (
        snapshot(&first.root.join("notices")),
        snapshot(&second.root.join("notices")),
    );
    for n in NUMBERS {
        let file = format!("certificates/{n}.pdf");
        assert!(a[&file] == b[&file], "{file} differs between checkouts");
        let file = format!("{n}.pdf");
        assert!(
            c[&file] == d[&file],
            "notice {file} differs between checkouts"
        );
    }
    let statements: Vec<&String> = c.keys().filter(|f| f.starts_with("statements/")).collect();
    assert_eq!(statements.len(), 5, "{statements:?}");
    for file in statements {
        assert!(c[file] == d[file], "{file} differs between checkouts");
    }
    // One changed record: one typesetting, one KDF.
    let data = first.root.join("data/certificates/demo.yaml");
    let text = fs::read_to_string(&data).expect("read");
    fs::write(
        &data,
        text.replacen("amount: 20000000", "amount: 21000000", 1),
    )
    .expect("write");
    let run = first.build();
    assert!(
        run.stdout.contains("（組版1件、前回から再利用11件）"),
        "{}",
        run.stdout
    );
}

fn verify(site: &SiteDir, args: &[&str]) -> crate::support::Run {
    let mut all = vec!["verify"];
    all.extend_from_slice(args);
    site.hosho(&all)
}

#[test]
fn verify_accepts_the_right_key_in_any_form() {
    let site = SiteDir::demo();
    site.build();
    for (number, key) in [
        ("2070004426", "332E1E7K9Q"),
        ("２０７０００４４２６", "３３２　Ｅ１Ｅ　７Ｋ９Ｑ"),
        ("207-000-4426", "332-e1e-7k9q"),
    ] {
        let run = verify(&site, &[number, key]);
        assert_eq!(run.code, 0, "{number} {key}: {run:?}");
        assert!(run.stdout.contains("有効な電子証書です"), "{run:?}");
        assert!(run.stdout.contains("区分          前払金保証"), "{run:?}");
    }
    let secret = fs::read(site.root.join("keys/authkey.secret")).expect("secret");
    let key = hosho::trust::authkey::derive_key(&secret, "2070310004");
    let run = verify(&site, &["2070310004", &key]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("解除"), "{run:?}");
}

#[test]
fn wrong_key_and_unknown_number_get_the_same_refusal() {
    let site = SiteDir::demo();
    site.build();
    let wrong = verify(&site, &["2070004426", "332E1E7K9R"]);
    let unknown = verify(&site, &["2070009999", "332E1E7K9Q"]);
    let malformed = verify(&site, &["12", "x"]);
    for run in [&wrong, &unknown, &malformed] {
        assert_eq!(run.code, 1, "{run:?}");
        assert_eq!(
            run.stderr,
            "確認できません: 保証契約番号と認証キーの組み合わせに一致する電子証書はありません\n"
        );
    }
}

#[test]
fn tampering_is_detected() {
    let site = SiteDir::demo();
    site.build();
    let flip = |rel: &str, at: usize| {
        let path = vault(&site).join(rel);
        let mut bytes = fs::read(&path).expect("read");
        let i = at.min(bytes.len() - 2);
        bytes[i] ^= 0x01;
        fs::write(&path, bytes).expect("write");
        path
    };
    let ok = ["2070004426", "332E1E7K9Q"];
    for (rel, at, expected) in [
        ("manifest.json", 200, "署名が正しくありません"),
        ("manifest.json.sig", 60, "署名"),
        (
            "certificates/2070004426.pdf",
            4000,
            "証書の PDF または記録がマニフェストの記録と一致しません",
        ),
        (
            "records/2070004426.json",
            40,
            "証書の PDF または記録がマニフェストの記録と一致しません",
        ),
    ] {
        let path = flip(rel, at);
        let run = verify(&site, &ok);
        assert_eq!(run.code, 1, "{rel}: {run:?}");
        assert!(run.stderr.contains(expected), "{rel}: {}", run.stderr);
        // Undo, and it verifies again.
        let mut bytes = fs::read(&path).expect("read");
        let i = at.min(bytes.len() - 2);
        bytes[i] ^= 0x01;
        fs::write(&path, bytes).expect("write");
        assert_eq!(verify(&site, &ok).code, 0, "{rel} restored");
    }
}

#[test]
fn a_manifest_signed_by_another_key_is_refused() {
    let site = SiteDir::demo();
    site.build();
    let other = tempfile::tempdir().expect("tempdir");
    let run = site.hosho(&[
        "keygen",
        "--keys",
        other.path().join("k").to_str().expect("utf-8"),
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    let pubkey = other.path().join("k/signing.pub");
    let run = verify(
        &site,
        &[
            "--public-key",
            pubkey.to_str().expect("utf-8"),
            "2070004426",
            "332E1E7K9Q",
        ],
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("信頼する公開鍵にありません"),
        "{}",
        run.stderr
    );
    // Both keys during a rotation: the right one among them is enough.
    let own = site.root.join("keys/signing.pub");
    let run = verify(
        &site,
        &[
            "--public-key",
            pubkey.to_str().expect("utf-8"),
            "--public-key",
            own.to_str().expect("utf-8"),
            "2070004426",
            "332E1E7K9Q",
        ],
    );
    assert_eq!(run.code, 0, "{run:?}");
}

#[test]
fn nothing_private_reaches_the_public_site() {
    let site = SiteDir::demo();
    site.build();
    let secret = fs::read(site.root.join("keys/authkey.secret")).expect("secret");
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(vault(&site).join("manifest.json")).expect("manifest"))
            .expect("json");
    let mut secrets: Vec<String> = Vec::new();
    for n in NUMBERS {
        let key = if n == "2070004426" {
            "332E1E7K9Q".to_owned()
        } else {
            hosho::trust::authkey::derive_key(&secret, n)
        };
        secrets.push(hosho::trust::authkey::group(&key));
        secrets.push(key);
    }
    for e in manifest["entries"].as_array().expect("entries") {
        secrets.push(e["salt"].as_str().expect("salt").to_owned());
        secrets.push(e["verifier"].as_str().expect("verifier").to_owned());
    }
    for (path, bytes) in snapshot(&site.out()) {
        assert!(!bytes.starts_with(b"%PDF"), "a PDF in site-out: {path}");
        assert!(
            !path.ends_with(".pdf") && !path.contains("manifest") && !path.contains("cache.json"),
            "{path}"
        );
        let text = String::from_utf8_lossy(&bytes);
        for s in &secrets {
            assert!(
                !text.contains(s.as_str()),
                "{s} leaked into site-out/{path}"
            );
        }
        assert!(
            !text.contains("2070004426"),
            "a contract number leaked into site-out/{path}"
        );
    }
    // The public site shows the key id and the manifest fingerprint.
    let home = site.read("index.html");
    let sha = hosho::common::hex::sha256_hex(
        &fs::read(vault(&site).join("manifest.json")).expect("manifest"),
    );
    assert!(home.contains(&sha), "manifest SHA-256 on the home page");
    assert!(home.contains(manifest["key_id"].as_str().expect("key id")));
    // No key (plain or grouped) appears anywhere in the vault the daemon host receives:
    // the notices are written apart.
    let keys = &secrets[..NUMBERS.len() * 2];
    assert!(!vault(&site).join("notices").exists());
    for (path, bytes) in snapshot(&vault(&site)) {
        let text = if path.ends_with(".pdf") {
            pdf_text(&vault(&site).join(&path))
        } else {
            String::from_utf8_lossy(&bytes).into_owned()
        };
        for key in keys {
            assert!(!text.contains(key.as_str()), "key {key} in vault/{path}");
        }
    }
}

#[test]
fn the_vault_holds_no_hash_of_a_notice() {
    // A notice holds its key: with the notice's hash in the vault, typesetting a notice with
    // a guessed key and comparing hashes would confirm a guess without PBKDF2.
    let site = SiteDir::demo();
    assert_eq!(site.build().code, 0);
    let rebuilt = site.build();
    assert_eq!(rebuilt.code, 0, "{}", rebuilt.stderr);
    let mut digests = Vec::new();
    for n in NUMBERS {
        let bytes = fs::read(notice(&site, n)).expect("notice");
        digests.push(hosho::common::hex::sha256_hex(&bytes));
        digests.push(hosho::common::hex::sha256_hex(&bytes).to_uppercase());
    }
    for (path, bytes) in snapshot(&vault(&site)) {
        let text = String::from_utf8_lossy(&bytes);
        for digest in &digests {
            assert!(
                !text.contains(digest.as_str()),
                "a notice's SHA-256 in vault/{path}"
            );
        }
        // Nor as raw bytes.
        for n in NUMBERS {
            let raw = ring::digest::digest(
                &ring::digest::SHA256,
                &fs::read(notice(&site, n)).expect("notice"),
            );
            assert!(
                !bytes.windows(32).any(|w| w == raw.as_ref()),
                "raw digest in vault/{path}"
            );
        }
    }
}

#[test]
fn keygen_refuses_to_overwrite() {
    let site = SiteDir::fixture("minimal");
    let first = site.hosho(&["keygen"]);
    assert_eq!(first.code, 0, "{first:?}");
    let before = fs::read(site.root.join("keys/signing.pk8")).expect("key");
    let second = site.hosho(&["keygen"]);
    assert_eq!(second.code, 1, "{second:?}");
    assert!(
        second.stderr.contains("すでにあります"),
        "{}",
        second.stderr
    );
    assert_eq!(
        fs::read(site.root.join("keys/signing.pk8")).expect("key"),
        before
    );
}

#[test]
fn private_outputs_are_for_their_owner_and_the_site_for_everyone() {
    use std::os::unix::fs::PermissionsExt;
    let site = SiteDir::demo();
    site.build();
    let mode = |p: &Path| fs::metadata(p).expect("meta").permissions().mode() & 0o777;
    for (dir, dir_mode, file_mode) in [
        ("vault", 0o700, 0o600),
        ("notices", 0o700, 0o600),
        ("site-out", 0o755, 0o644),
    ] {
        let root = site.root.join(dir);
        assert_eq!(mode(&root), dir_mode, "{dir}/");
        for rel in snapshot(&root).keys() {
            let path = root.join(rel);
            assert_eq!(mode(&path), file_mode, "{dir}/{rel}");
            let parent = path.parent().expect("parent");
            assert_eq!(mode(parent), dir_mode, "{}", parent.display());
        }
    }
}

#[test]
fn a_bad_imported_key_is_reported_without_being_shown() {
    let site = SiteDir::demo();
    let data = site.root.join("data/certificates/demo.yaml");
    let text = fs::read_to_string(&data).expect("read");
    fs::write(
        &data,
        text.replacen("auth_key: 332E1E7K9Q", "auth_key: 332E1E7K9U", 1),
    )
    .expect("write");
    let run = site.hosho(&["build"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("認証キーが正しくありません（10文字目に使えない文字があります）"),
        "{}",
        run.stderr
    );
    for shown in ["332E1E7K9", "332 E1E", "E1E7K9"] {
        assert!(
            !run.stderr.contains(shown),
            "the key was echoed: {}",
            run.stderr
        );
        assert!(
            !run.stdout.contains(shown),
            "the key was echoed: {}",
            run.stdout
        );
    }
}

#[test]
fn no_date_or_amount_breaks_across_lines_in_any_document() {
    let site = SiteDir::demo();
    site.build();
    let mut pdfs: Vec<std::path::PathBuf> = Vec::new();
    for dir in [site.root.join("notices"), vault(&site)] {
        for (name, _) in snapshot(&dir) {
            if name.ends_with(".pdf") {
                pdfs.push(dir.join(name));
            }
        }
    }
    assert!(
        pdfs.len() >= 28,
        "certificates, notices and statements: {pdfs:?}"
    );
    for pdf in pdfs {
        let layout = crate::support::pdftotext(&pdf, &["-layout"]);
        assert_dates_and_amounts_whole(&layout, &pdf.display().to_string());
    }
    // The notice's sentences break between phrases, never inside a word
    // (「ご提出く／ださい」, 「構／いません」).
    for number in NUMBERS {
        let layout = crate::support::pdftotext(&notice(&site, number), &["-layout"]);
        let flat: String = layout.split_whitespace().collect();
        for phrase in [
            "ご提出ください。",
            "どちらでも構いません。",
            "確認の画面が開きます。",
            "ご入力ください。",
        ] {
            let whole: usize = layout.lines().map(|l| l.matches(phrase).count()).sum();
            assert!(
                whole > 0 && whole == flat.matches(phrase).count(),
                "{number}: 「{phrase}」 broken across lines:\n{layout}"
            );
        }
    }
}
