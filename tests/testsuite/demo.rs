//! The repository's own demo site: every page the flyers call for, built and read back.

use crate::support::{attrs, count, feed_titles, snapshot, texts, SiteDir};

#[test]
fn demo_builds_every_page() {
    let site = SiteDir::demo();
    let run = site.build();
    assert!(run.stdout.contains("ページ"), "{run:?}");
    for page in [
        "index.html",
        "about/index.html",
        "flow/index.html",
        "enet/index.html",
        "qa/index.html",
        "adopters/index.html",
        "adopters/kumamoto/index.html",
        "adopters/national/index.html",
        "adopters/ehime/index.html",
        "notices/index.html",
        "notices/niihama/index.html",
        "notices/kumamoto-2025/index.html",
        "accessibility/index.html",
        "accessibility-results/index.html",
        "fees/index.html",
        "adopters/kumamoto/kumamoto-pref/index.html",
        "adopters/kumamoto/kamiamakusa/index.html",
        "adopters/kumamoto/arao/index.html",
        "404.html",
        "atom.xml",
        "sitemap.xml",
        "data/adopters.json",
        "data/adopters.csv",
        "assets/css/style.css",
        "assets/js/table-filter.js",
    ] {
        assert!(site.out().join(page).is_file(), "missing {page}");
    }
}

#[test]
fn every_built_page_leads_an_orderer_to_the_verification_page() {
    let site = SiteDir::demo();
    site.build();
    let pages: Vec<String> = snapshot(&site.out())
        .into_keys()
        .filter(|path| path.ends_with(".html"))
        .collect();
    assert!(pages.len() >= 18, "{pages:?}");
    for path in &pages {
        let doc = site.page(path);
        let nav = attrs(&doc, ".site-nav .nav-verify a", "href");
        assert_eq!(nav, ["/verify/"], "{path}: the navigation's way in");
        let label = texts(&doc, ".site-nav .nav-verify a");
        assert_eq!(label, ["発注者の方：電子証書の確認"], "{path}");
        crate::support::assert_japanese_spacing(&site.read(path), path);
    }
    // The home page, 404 and every orderer's page say it in their content too.
    let orderers = pages.iter().filter(|p| p.matches('/').count() == 3);
    let called_out = ["index.html", "404.html"].into_iter().map(str::to_owned);
    for path in called_out.chain(orderers.cloned()) {
        let doc = site.page(&path);
        let links = attrs(&doc, "main .verify-callout a.button", "href");
        assert_eq!(links, ["/verify/"], "{path}: the call in the page");
    }
}

#[test]
fn kumamoto_table_has_all_19_rows_in_era_form() {
    let site = SiteDir::demo();
    site.build();
    let doc = site.page("adopters/kumamoto/index.html");
    assert_eq!(count(&doc, "table#table-kumamoto tbody tr"), 19);
    assert_eq!(
        texts(&doc, "table#table-kumamoto caption"),
        ["熊本県下自治体 （令和7年2月1日現在・19団体）"]
    );
    assert_eq!(
        texts(&doc, "table#table-kumamoto thead th"),
        ["区分", "発注者名", "運用開始日", "業務委託への適用"]
    );
    assert_eq!(
        attrs(&doc, "table#table-kumamoto thead th", "scope"),
        ["col"; 4]
    );
    let rows = texts(&doc, "table#table-kumamoto tbody tr");
    assert_eq!(rows[0], "県 熊本県 令和5年4月1日 ○ 適用あり");
    assert_eq!(rows[1], "政令市 熊本市 令和6年10月1日 ○ 適用あり");
    assert_eq!(rows[2], "市町村 上天草市 令和4年9月9日 ○ 適用あり");
    assert_eq!(rows[18], "市町村 錦町 令和7年2月1日 ○ 適用あり");
    let dates = texts(&doc, "table#table-kumamoto tbody time");
    assert_eq!(dates.len(), 19);
    assert!(dates.iter().all(|d| d.starts_with("令和")), "{dates:?}");
    assert_eq!(
        attrs(&doc, "table#table-kumamoto tbody time", "datetime")[2],
        "2022-09-09"
    );
    let notes = texts(&doc, "p.table-note");
    assert_eq!(
        notes[0],
        "※上記以外の市町村については、未導入または導入検討中"
    );
    // The flyers give the basis for 新居浜市 only: the other tables do not claim one.
    assert!(notes[1].contains("発注者ごとに異なります"), "{notes:?}");
    assert!(!notes[1].contains("契約締結日を基準"), "{notes:?}");
    assert_eq!(
        texts(&doc, "p.table-counts"),
        ["区分別の団体数：県1団体、政令市1団体、市町村17団体（合計19団体）"]
    );
}

#[test]
fn national_table_lists_ministries_agencies_and_universities() {
    let site = SiteDir::demo();
    site.build();
    let doc = site.page("adopters/national/index.html");
    assert_eq!(count(&doc, "table#table-national tbody tr"), 51);
    assert_eq!(
        texts(&doc, "table#table-national thead th"),
        ["区分", "発注者名"],
        "no date column without dates"
    );
    assert_eq!(
        texts(&doc, "table#table-national caption"),
        ["国・独立行政法人等 （令和7年1月20日現在・51団体）"]
    );
    let names = texts(&doc, "table#table-national tbody th");
    for name in [
        "国土交通省",
        "参議院",
        "鉄道建設・運輸施設整備支援機構",
        "東海国立大学機構（岐阜大学・名古屋大学）",
        "愛知教育大学",
    ] {
        assert!(names.iter().any(|n| n == name), "{name} missing");
    }
    assert_eq!(
        texts(&doc, "p.table-counts"),
        ["区分別の団体数：国10団体、独立行政法人等9団体、国立大学法人32団体（合計51団体）"]
    );
}

#[test]
fn pages_are_accessible_html() {
    let site = SiteDir::demo();
    site.build();
    for page in [
        "index.html",
        "about/index.html",
        "adopters/index.html",
        "qa/index.html",
        "404.html",
    ] {
        let doc = site.page(page);
        assert_eq!(attrs(&doc, "html", "lang"), ["ja"], "{page}");
        assert_eq!(attrs(&doc, "a.skip-link", "href"), ["#main"], "{page}");
        assert_eq!(count(&doc, "main#main"), 1, "{page}");
        assert_eq!(count(&doc, "header"), 1, "{page}");
        assert_eq!(count(&doc, "footer"), 1, "{page}");
        assert_eq!(
            attrs(&doc, "nav.site-nav", "aria-label"),
            ["サイト内の主なページ"],
            "{page}"
        );
        assert_eq!(count(&doc, "h1"), 1, "{page}: one h1");
        for table in doc.select(&scraper::Selector::parse("table").expect("selector")) {
            let html = table.html();
            assert!(
                html.contains("<caption>"),
                "{page}: table without caption: {html}"
            );
            assert!(
                html.contains("<th scope=\"col\""),
                "{page}: table without header cells"
            );
        }
    }
    let about = site.page("about/index.html");
    assert_eq!(
        texts(&about, "table caption"),
        ["電子保証を利用するメリット"]
    );
    assert_eq!(
        attrs(&about, "nav.site-nav a[aria-current=page]", "href"),
        ["/about/"]
    );
}

#[test]
fn guidance_pages_carry_the_flyer_facts() {
    let site = SiteDir::demo();
    site.build();
    let about = site.read("about/index.html");
    for fact in [
        "前払金保証",
        "中間前払金保証",
        "契約保証予約は電子保証の対象になりません",
        "保証契約番号",
        "認証キー",
        "e-Net保証",
    ] {
        assert!(about.contains(fact), "about: {fact}");
    }
    let flow = site.page("flow/index.html");
    let steps = texts(&flow, "main ol > li > h2");
    assert_eq!(steps.len(), 4);
    assert!(
        steps[0].starts_with("STEP 1") && steps[3].starts_with("STEP 4"),
        "{steps:?}"
    );
    let enet = site.read("enet/index.html");
    for fact in [
        "手数料はかかりません",
        "押印は不要",
        "200円",
        "300万円以上",
        "ID登録",
    ] {
        assert!(enet.contains(fact), "enet: {fact}");
    }
    // The e-Net discount the statements apply is on 保証料の目安 too, from the same rule.
    let fees = texts(&site.page("fees/index.html"), "main li").join(" ");
    assert!(
        fees.contains("e-Net保証割引 ：前払金保証をe-Netでお申込みいただくと、保証金額が3,000,000円以上のお申込み1件ごとに、保証料から200円を割り引きます。"),
        "{fees}"
    );
    let niihama = site.page("notices/niihama/index.html");
    assert_eq!(texts(&niihama, "p.page-date time"), ["令和6年4月1日"]);
    let body = texts(&niihama, "article").join(" ");
    for fact in ["令和6年4月1日", "新居浜市", "建設工事関連業務"] {
        assert!(body.contains(fact), "niihama: {fact}");
    }
}

#[test]
fn qa_covers_both_flyers() {
    let site = SiteDir::demo();
    site.build();
    let doc = site.page("qa/index.html");
    let questions = texts(&doc, "section.qa h2");
    assert_eq!(questions.len(), 7, "{questions:?}");
    assert_eq!(
        attrs(&doc, "section.qa", "id"),
        ["q1", "q2", "q3", "q4", "q5", "q6", "q7"]
    );
    assert_eq!(count(&doc, "nav.toc li a"), 7);
    let answers = texts(&doc, "section.qa .qa-answer").join("\n");
    for fact in [
        "ID登録",
        "契約保証予約は電子保証の対象外",
        "令和6年4月1日以降",
        "かかりません",
        "保証料計算書",
        "e-Net保証利用申込書",
        "利用できます",
    ] {
        assert!(answers.contains(fact), "answer missing {fact}");
    }
}

#[test]
fn overview_has_timeline_svg_and_its_figures() {
    let site = SiteDir::demo();
    site.build();
    let doc = site.page("adopters/index.html");
    assert_eq!(attrs(&doc, "svg.timeline", "role"), ["img"]);
    assert_eq!(
        texts(&doc, "svg.timeline > title"),
        ["電子保証の導入発注者数（累計）の推移"]
    );
    let months = texts(&doc, "details.timeline-data tbody tr");
    assert_eq!(
        months.first().map(String::as_str),
        Some("令和4年9月 上天草市 1")
    );
    assert_eq!(
        months.last().map(String::as_str),
        Some("令和7年2月 錦町 20")
    );
    assert!(
        months.contains(
            &"令和6年4月 新居浜市、八代市、玉名市、山鹿市、小国町、益城町、山都町、氷川町 16"
                .to_owned()
        ),
        "{months:?}"
    );
    assert_eq!(count(&doc, "table[data-filterable]"), 3);
}

#[test]
fn feed_lists_adoptions_and_notices_newest_first() {
    let site = SiteDir::demo();
    site.build();
    let feed = site.read("atom.xml");
    assert!(feed.starts_with(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\""
    ));
    // 20 dated adopters on 14 days (the 7 of 熊本県下 that started on 令和6年4月1日 in one
    // entry), and 2 notices.
    assert_eq!(feed.matches("<entry>").count(), 16);
    let titles = feed_titles(&feed);
    assert_eq!(
        titles[0],
        "熊本県下の導入状況を更新しました（令和7年2月1日現在）"
    );
    assert_eq!(titles[1], "錦町が電子保証の運用を始めました");
    assert!(
        titles.contains(&"八代市・玉名市など7団体が電子保証の運用を始めました"),
        "{titles:?}"
    );
    assert!(feed.contains("八代市、玉名市、山鹿市、小国町、益城町、山都町、氷川町（熊本県下自治体）は令和6年4月1日から電子保証の運用を始めました。"));
    // On the home page, a day on which many started leaves room for the 新居浜市 notice.
    let home = site.read("index.html");
    assert!(
        home.contains(">新居浜市で電子保証の運用が始まります</a>"),
        "{home}"
    );
    assert!(
        feed.contains("<updated>2025-02-27T00:00:00+09:00</updated>\n  <author>"),
        "feed updated is the newest entry"
    );
    assert!(feed.contains("<link rel=\"alternate\" type=\"text/html\" href=\"https://denshi-hosho.example.jp/notices/niihama/\"/>"));
}

#[test]
fn orderers_with_submission_rules_have_their_page() {
    let site = SiteDir::demo();
    site.build();
    let table = site.page("adopters/kumamoto/index.html");
    assert_eq!(
        attrs(&table, "table#table-kumamoto tbody th a", "href"),
        [
            "/adopters/kumamoto/kumamoto-pref/",
            "/adopters/kumamoto/kamiamakusa/",
            "/adopters/kumamoto/arao/"
        ]
    );
    let page = site.page("adopters/kumamoto/kamiamakusa/index.html");
    assert_eq!(texts(&page, "h1"), ["上天草市へのお知らせの提出方法"]);
    let rows = texts(&page, "table tbody tr");
    for fact in [
        "提出方法メール",
        "提出先（前払金保証）会計課（kaikei@kamiamakusa.example.jp）",
        "提出先（契約保証）総務課 契約係（keiyaku@kamiamakusa.example.jp）",
        "前払金請求書との同時提出できません（別にご提出ください）",
    ] {
        assert!(
            rows.iter()
                .any(|r| r.replace(char::is_whitespace, "") == fact.replace(' ', "")),
            "{fact}: {rows:?}"
        );
    }
    // The subject's placeholders read as words, explained; the rules say they are an
    // example.
    let subject = rows
        .iter()
        .find(|r| r.starts_with("メールの件名"))
        .expect("a subject row");
    assert!(
        subject.contains("【電子保証】（工事番号） （工事名）"),
        "{subject}"
    );
    assert!(
        subject.contains("（工事番号）は受注者が記入してください。"),
        "{subject}"
    );
    assert!(!subject.contains('{'), "{subject}");
    let callout = texts(&page, "p.callout");
    assert!(
        callout[0].contains("この提出方法は、このサイトの見本として作った例です。"),
        "{callout:?}"
    );
    assert_eq!(
        texts(&page, "table caption"),
        ["上天草市への提出方法（令和7年2月1日現在）"]
    );
}

#[test]
fn open_data_json_and_csv() {
    let site = SiteDir::demo();
    site.build();
    let json: serde_json::Value =
        serde_json::from_str(&site.read("data/adopters.json")).expect("valid JSON");
    let rows = json["adopters"].as_array().expect("adopters array");
    assert_eq!(rows.len(), 71);
    let kumamoto_city = rows.iter().find(|r| r["name"] == "熊本市").expect("熊本市");
    assert_eq!(
        kumamoto_city,
        &serde_json::json!({"table": "kumamoto", "title": "熊本県下自治体", "as_of": "2025-02-01", "category": "政令市",
            "name": "熊本市", "start": "2024-10-01", "planned": false, "services": true, "basis": null})
    );
    let csv = std::fs::read(site.out().join("data/adopters.csv")).expect("csv");
    assert_eq!(&csv[..3], b"\xEF\xBB\xBF", "UTF-8 BOM for Excel");
    let text = String::from_utf8(csv[3..].to_vec()).expect("utf-8");
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 72);
    assert_eq!(lines[0], "一覧,現在日,区分,発注者名,運用開始日,運用開始日（和暦）,予定,業務委託への適用,運用開始日の基準,お知らせの提出方法,提出先,メールの件名,前払金請求書との同時提出,提出の注意事項");
    assert!(lines.contains(&"熊本県下自治体,2025-02-01,県,熊本県,2023-04-01,令和5年4月1日,,○,,電子契約システム・メール,工事を発注した地域振興局・事務所の担当課,,可,電子契約システムで契約した工事は、お知らせのPDFをシステムに登録してください。／メールで送るときは、工事を発注した事務所の担当課あてにお送りください。"));
    assert!(lines.contains(&"熊本県下自治体,2025-02-01,市町村,上天草市,2022-09-09,令和4年9月9日,,○,,メール,前払金保証：会計課（kaikei@kamiamakusa.example.jp）／中間前払金保証：会計課（kaikei@kamiamakusa.example.jp）／契約保証：総務課 契約係（keiyaku@kamiamakusa.example.jp）,【電子保証】{工事番号} {工事名},不可,契約保証は契約を結ぶまでに、前払金保証は前払金の請求書とは別のメールでお送りください。／件名の工事番号には、市からお知らせした番号を書いてください。"));
    assert!(lines.contains(&"国・独立行政法人等,2025-01-20,国,国土交通省,,,,,,,,,,"));
    assert!(
        lines.iter().any(|l| l.starts_with(
            "愛媛県下自治体,2024-04-01,市町村,新居浜市,2024-04-01,令和6年4月1日,,○,契約締結日,"
        )),
        "{lines:?}"
    );
    // The rules in the JSON, as the adoption file gives them.
    let kamiamakusa = rows
        .iter()
        .find(|r| r["name"] == "上天草市")
        .expect("上天草市");
    assert_eq!(
        kamiamakusa["submission"]["subject"],
        "【電子保証】{工事番号} {工事名}"
    );
    assert_eq!(
        kamiamakusa["submission"]["addresses"][2]["kind"],
        "契約保証"
    );
    assert_eq!(kamiamakusa["submission"]["with_invoice"], false);
}

#[test]
fn sitemap_and_404() {
    let site = SiteDir::demo();
    site.build();
    let sitemap = site.read("sitemap.xml");
    assert_eq!(sitemap.matches("<loc>").count(), 19);
    assert!(sitemap.contains("<loc>https://denshi-hosho.example.jp/adopters/kumamoto/</loc>"));
    assert!(
        !sitemap.contains("404"),
        "the 404 page is not in the sitemap"
    );
    let doc = site.page("404.html");
    assert_eq!(texts(&doc, "h1"), ["ページが見つかりません"]);
}

#[test]
fn same_input_same_bytes() {
    let site = SiteDir::demo();
    site.build();
    let first = snapshot(&site.out());
    site.build();
    let second = snapshot(&site.out());
    assert_eq!(
        first.keys().collect::<Vec<_>>(),
        second.keys().collect::<Vec<_>>()
    );
    // The home page shows the fingerprint of the manifest, which carries its build time.
    for (path, bytes) in first.iter().filter(|(p, _)| p.as_str() != "index.html") {
        assert!(second[path] == *bytes, "{path} differs between builds");
    }
}

#[test]
fn demo_check_passes_and_writes_nothing() {
    let site = SiteDir::demo();
    let run = site.hosho(&["check"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout,
        "問題はありません: 19ページ、導入発注者一覧3件（71団体）、Q&A 7件、保証の記録12件、保証料計算書4通\n"
    );
    assert!(!site.out().exists());
}
