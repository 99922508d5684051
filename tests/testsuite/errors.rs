//! Invalid site roots: every problem in one run, at `path:line:column`, exit 1, nothing written.

use crate::support::SiteDir;

fn check_fails_with(fixture: &str, expected: &[&str]) {
    let site = SiteDir::fixture(fixture);
    for command in ["check", "build"] {
        let run = site.hosho(&[command]);
        assert_eq!(run.code, 1, "{command}: {run:?}");
        let lines: Vec<&str> = run.stderr.lines().collect();
        let (summary, problems) = lines.split_last().expect("output");
        assert_eq!(problems, expected, "{command}");
        assert_eq!(
            *summary,
            format!(
                "{}件の問題が見つかりました。何も書き込んでいません。",
                expected.len()
            )
        );
        assert!(run.stdout.is_empty(), "{command}: {run:?}");
        assert!(!site.out().exists(), "{command} wrote site-out");
        assert!(!site.root.join("vault").exists(), "{command} wrote vault");
        assert!(!site.root.join("keys").exists(), "{command} created keys");
        let leftovers: Vec<_> = std::fs::read_dir(&site.root)
            .expect("read root")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "{command} left {leftovers:?}");
    }
}

#[test]
fn every_data_and_content_problem_in_one_run() {
    check_fails_with(
        "invalid",
        &[
            "content/Notice.md:1:1: ファイル名・ディレクトリ名「Notice」は URL になるので、半角の英小文字・数字・-・_ だけで付けてください",
            "content/_index.md:5:9: リンク「/missing/」: リンク先のページがありません",
            "content/bad-front.md:3:7: date（日付） の日付「2024-02-30」が読めません。YYYY-MM-DD の形の実在する日付で書いてください（例: 2024-04-01）",
            "content/bad-front.md:4:1: 知らないキー `colour` があります。使えるキー: title（表題）, date（日付）, weight（並び順）, draft（下書き）, template（テンプレート）, description（説明）",
            "content/bad-front.md:5:9: weight（並び順） は整数で書いてください（文字列になっています）",
            "content/emphasis.md:4:1: 強調の ** が閉じられず、そのまま表示されます。句読点やかっこは ** の外に出してください（例: **かかりません**。／「**電子交付**」を）。記号として表示するなら \\*\\* と書きます",
            "content/no-front.md:1:1: 先頭に front matter がありません。1行目を --- にし、title: などを書いて --- の行で閉じてください",
            "data/adopters/rows.yaml:8:15: 区分「政令市」は hosho.toml の [adopters] categories にありません。使える区分: 県、市町村",
            "data/adopters/rows.yaml:10:5: 必須の項目 name（発注者名） がありません",
            "data/adopters/rows.yaml:14:12: start（運用開始日） の日付「2024-4-1」が読めません。YYYY-MM-DD の形の実在する日付で書いてください（例: 2024-04-01）",
            "data/adopters/rows.yaml:15:5: 知らないキー `servises` があります。使えるキー: name（発注者名）, category（区分）, start（運用開始日）, services（業務委託への適用）, submission（お知らせの提出方法）",
            "data/adopters/rows.yaml:16:11: 発注者名「熊本県」がこのファイルに二度あります（4行目にもあります）。一行にまとめてください",
            "data/adopters/rows.yaml:18:15: services（業務委託への適用） は true（○）か false（×）で書いてください（文字列になっています）",
            "data/adopters/syntax.yaml:5:5: YAML の書き方に誤りがあります: did not find expected ',' or '}', while parsing a flow mapping（4行5列目から）",
            "data/qa.yaml:3:3: 必須の項目 q（質問） がありません",
            "data/qa.yaml:5:6: リンク「/nowhere/」: リンク先のページがありません",
        ],
    );
}

#[test]
fn template_problems_point_into_the_template() {
    check_fails_with(
        "invalid-template",
        &[
            "content/page.md:3:11: テンプレート「missing.html」が templates/ にも組み込みにもありません",
            "templates/page.html:3:19: テンプレートの書き方に誤りがあります: expected `or`, `and`, `not`, `<=`, `>=`, `<`, `>`, `==`, `!=`, `+`, `-`, `*`, `/`, `%`, a filter, or a variable end (`}}`)",
        ],
    );
}

#[test]
fn certificate_records_are_checked_across_files() {
    check_fails_with(
        "invalid-certificates",
        &[
            "data/certificates/b.yaml:1:11: 保証契約番号 2070000001 は data/certificates/a.yaml:1:11 にもあります。番号はすべてのファイルを通して一つだけにしてください",
            "data/certificates/b.yaml:11:9: 区分「契約保証予約」は電子保証の対象外です。予約証書を紙で発行してください",
            "data/certificates/b.yaml:29:17: 解除日は解除された保証（status: cancelled）にだけ書けます",
            "data/certificates/b.yaml:35:11: 発行店「大阪支店」がありません。hosho.toml の [[guarantor.offices]] に name（支店名）と address（所在地）を書いてください",
            "data/certificates/b.yaml:43:7: 保証金額 40,000,000円 が請負金額（対象額） 30,000,000円 を超えています",
            "data/certificates/b.yaml:44:7: 請負金額（対象額） 310,000,000円 が請負金額（総額） 300,000,000円 を超えています",
        ],
    );
}

#[test]
fn fee_problems_are_reported_at_their_line() {
    check_fails_with(
        "invalid-fees",
        &[
            "data/certificates/fees.yaml:6:8: 保証料は0円以上の整数で書いてください（-3000 になっています）",
            "data/certificates/fees.yaml:17:13: 顧客コード「C0009」は data/customers.yaml にありません。一括納付のお客様として先に登録してください",
            "data/certificates/fees.yaml:34:11: 解除された保証に保証料 2,000円 がありますが、返還の記録がありません。変更履歴に解除の日付と fee_returned（返還保証料）を書いてください",
            "data/certificates/fees.yaml:43:11: 前払金保証の保証料がありません。fee に書くか、hosho.toml の [fees.rates.\"前払金保証\"] に料率を設定してください",
            "data/certificates/fees.yaml:58:5: 返還保証料の合計 5,000円 が、保証料（割引後）と追加保証料の合計 2,600円 を超えています",
            "data/certificates/fees.yaml:70:56: 一つの変更に fee_added と fee_returned の両方は書けません。日付を分けて書いてください",
        ],
    );
}

#[test]
fn fee_rules_that_cannot_be_read_point_into_hosho_toml() {
    let site = SiteDir::fixture("minimal");
    let config = std::fs::read_to_string(site.root.join("hosho.toml")).expect("read");
    std::fs::write(
        site.root.join("hosho.toml"),
        format!(
            "{config}\n[fees.rates.\"前払金保証\"]\nbands = [{{up_to = 100, rate = \"0.2\"}}]\n"
        ),
    )
    .expect("write");
    let run = site.hosho(&["check"]);
    assert_eq!(run.code, 1);
    let first = run.stderr.lines().next().expect("a line");
    assert!(
        first.contains(
            "料率「0.2」は \"0.065%\" のように、小数点以下6桁までの百分率で書いてください"
        ),
        "{first}"
    );
    assert!(first.starts_with("hosho.toml:"), "{first}");
}

#[test]
fn payment_rules_that_cannot_be_paid_from_point_at_their_line() {
    let site = SiteDir::fixture("minimal");
    let config = std::fs::read_to_string(site.root.join("hosho.toml")).expect("read");
    let line = config.lines().count() + 2;
    for (section, expected) in [
        (
            "[fees]\ndue = \"来月末日\"\n",
            format!("hosho.toml:{}:7: 設定に誤りがあります: 期日「来月末日」は「翌月末日」「翌月25日」のように、当月・翌月・翌々月と末日または日（1〜28日）で書いてください", line + 1),
        ),
        (
            "[fees.account]\nbank = \"b\"\nbranch = \"c\"\ntype = \"普通\"\nnumber = \"12345\"\nholder = \"h\"\n",
            format!("hosho.toml:{line}:1: [fees.account] の number「12345」は半角数字7桁で書いてください"),
        ),
        (
            "[[fees.discounts]]\nname = \"n\"\nkinds = [\"保証\"]\napplied_via = \"e-Net\"\nyen = 200\n",
            format!("hosho.toml:{line}:1: [[fees.discounts]]「n」の kinds の「保証」は区分ではありません"),
        ),
        (
            "[[guarantor.offices]]\nname = \"大阪支店\"\naddress = \"a\"\n[[guarantor.offices]]\nname = \"大阪支店\"\naddress = \"b\"\n",
            format!("hosho.toml:{line}:1: [[guarantor.offices]] の「大阪支店」が二つあります。支店名は一つずつ書いてください"),
        ),
    ] {
        std::fs::write(site.root.join("hosho.toml"), format!("{config}\n{section}"))
            .expect("write");
        let run = site.hosho(&["check"]);
        assert_eq!(run.code, 1, "{section}");
        assert_eq!(run.stderr.lines().next(), Some(expected.as_str()), "{}", run.stderr);
    }
}

#[test]
fn typst_template_problems_point_into_the_template() {
    check_fails_with(
        "invalid-typst",
        &["templates/certificate.typ:4:4: 組版できません: dictionary does not contain key \"numbr\""],
    );
}

#[test]
fn config_problems_point_into_hosho_toml() {
    let site = SiteDir::fixture("minimal");
    let config = std::fs::read_to_string(site.root.join("hosho.toml")).expect("read");
    std::fs::write(
        site.root.join("hosho.toml"),
        config.replace("[adopters]", "[adopter]"),
    )
    .expect("write");
    let run = site.hosho(&["check"]);
    assert_eq!(run.code, 1);
    let first = run.stderr.lines().next().expect("a line");
    assert_eq!(first, "hosho.toml:8:2: 設定に誤りがあります: unknown field `adopter`, expected one of `title`, `description`, `base_url`, `banner`, `guarantor`, `adopters`, `certificates`, `markdown`, `fees`");
}

#[test]
fn a_missing_site_root_is_named() {
    let site = SiteDir::fixture("minimal");
    std::fs::remove_file(site.root.join("hosho.toml")).expect("rm");
    let run = site.hosho(&["check"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .starts_with("hosho.toml:1:1: 設定ファイルを読めません"),
        "{run:?}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let site = SiteDir::fixture("minimal");
    let run = site.hosho(&["build", "--no-such-flag"]);
    assert_eq!(run.code, 2, "{run:?}");
}

#[test]
fn a_key_written_twice_is_a_yaml_error() {
    let site = SiteDir::fixture("minimal");
    let dir = site.root.join("data/adopters");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(
        dir.join("twice.yaml"),
        "title: 二重\nas_of: 2025-02-01\nadopters:\n  - name: 熊本県\n    category: 県\n    category: 県\n",
    )
    .expect("write");
    let run = site.hosho(&["check"]);
    assert_eq!(run.code, 1);
    let first = run.stderr.lines().next().expect("a line");
    assert!(first.starts_with("data/adopters/twice.yaml:"), "{first}");
    assert!(first.contains("category"), "{first}");
}
