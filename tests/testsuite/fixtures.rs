//! Small fixture sites: the built-in theme, a base path, sections, drafts, captions.

use crate::support::{attrs, count, feed_titles, texts, SiteDir};

#[test]
fn minimal_site_uses_the_built_in_theme() {
    let site = SiteDir::fixture("minimal");
    site.build();
    let doc = site.page("index.html");
    assert_eq!(texts(&doc, "h1"), ["最小のサイト"]);
    assert_eq!(
        attrs(&doc, "link[rel=stylesheet]", "href"),
        ["/assets/css/style.css"]
    );
    assert!(site.out().join("assets/css/style.css").is_file());
    assert!(
        !site.out().join("adopters").exists(),
        "no tables, no adopters pages"
    );
    let feed = site.read("atom.xml");
    assert!(feed.contains("<updated>1970-01-01T00:00:00Z</updated>"));
    assert_eq!(feed.matches("<entry>").count(), 0);
    let json: serde_json::Value =
        serde_json::from_str(&site.read("data/adopters.json")).expect("json");
    assert_eq!(json["adopters"].as_array().map(Vec::len), Some(0));
}

#[test]
fn base_path_prefixes_every_internal_link() {
    let site = SiteDir::fixture("small");
    site.build();
    let doc = site.page("guide/index.html");
    let hrefs = attrs(&doc, "main a", "href");
    assert_eq!(hrefs, ["/denshi/adopters/kyushu/", "/denshi/qa/#q2"]);
    let nav = attrs(&doc, "nav.site-nav a", "href");
    assert_eq!(
        nav,
        [
            "/denshi/",
            "/denshi/guide/",
            "/denshi/qa/",
            "/denshi/notices/",
            // The daemon's page, at /verify/ on the host whatever the base path, where
            // deploy.md's nginx sends it.
            "/verify/"
        ]
    );
    assert_eq!(
        attrs(&doc, "link[rel=stylesheet]", "href"),
        ["/denshi/assets/css/style.css"]
    );
}

#[test]
fn markdown_tables_get_captions_and_header_cells() {
    let site = SiteDir::fixture("small");
    site.build();
    let doc = site.page("guide/index.html");
    assert_eq!(texts(&doc, "main table caption"), ["対象となる保証証書"]);
    assert_eq!(attrs(&doc, "main table thead th", "scope"), ["col", "col"]);
    assert_eq!(
        attrs(&doc, "main table thead th", "class"),
        ["align-left", "align-center"]
    );
    assert_eq!(count(&doc, "main table tbody tr"), 2);
    assert_eq!(attrs(&doc, "main h2", "id"), ["対象の保証"]);
}

#[test]
fn rows_follow_category_order_with_counts_and_planned_dates() {
    let site = SiteDir::fixture("small");
    site.build();
    let doc = site.page("adopters/kyushu/index.html");
    assert_eq!(
        texts(&doc, "table#table-kyushu tbody tr"),
        [
            "県 福岡県 令和5年4月1日 ○ 適用あり",
            "政令市 北九州市 平成31年4月30日 × 適用なし",
            "政令市 福岡市 令和元年5月1日 ○ 適用あり",
            "市町村 糸島市 令和7年4月1日 （予定） ―",
        ]
    );
    assert_eq!(
        texts(&doc, "p.table-counts"),
        ["区分別の団体数：県1団体、政令市2団体、市町村1団体（合計4団体）"]
    );
    let notes = texts(&doc, "p.table-note").join(" ");
    assert!(
        notes.contains("「（予定）」は令和7年2月1日の時点で予定されている日です"),
        "{notes}"
    );
    let national = site.page("adopters/national/index.html");
    assert!(
        texts(&national, "p.table-note").is_empty()
            || !texts(&national, "p.table-note")
                .join("")
                .contains("入札公告日を基準"),
        "no start dates, so no basis note"
    );
    let csv = site.read("data/adopters.csv");
    assert!(csv.contains("国・独立行政法人等,2025-01-20,独立行政法人等,\"都市再生機構, 本社\",,,,,入札公告日,,,,,\r\n"), "{csv}");
    assert!(csv.contains(
        "九州の自治体,2025-02-01,市町村,糸島市,2025-04-01,令和7年4月1日,予定,,契約締結日,,,,,\r\n"
    ));
}

#[test]
fn sections_list_pages_newest_first_and_drafts_stay_out() {
    let site = SiteDir::fixture("small");
    site.build();
    let doc = site.page("notices/index.html");
    assert_eq!(
        texts(&doc, "ul.page-list li"),
        [
            "福岡市で運用開始 （ 令和元年5月1日 ） 令和元年の最初のお知らせ",
            "北九州市で運用開始 （ 平成31年4月30日 ）"
        ]
    );
    assert!(
        !site.out().join("notices/wip").exists(),
        "drafts are not built"
    );
    assert!(!site.read("sitemap.xml").contains("wip"));
}

#[test]
fn feed_entries_are_sorted_and_planned_ones_say_so() {
    let site = SiteDir::fixture("small");
    site.build();
    let feed = site.read("atom.xml");
    let titles = feed_titles(&feed);
    assert_eq!(
        titles,
        [
            "糸島市が電子保証の運用を始める予定です",
            "福岡県が電子保証の運用を始めました",
            "福岡市が電子保証の運用を始めました",
            "福岡市で運用開始",
            "北九州市が電子保証の運用を始めました",
            "北九州市で運用開始",
        ]
    );
    assert!(feed.contains("<id>https://example.jp/denshi/adopters/kyushu/#福岡県</id>"));
    assert!(feed.contains("<updated>2025-04-01T00:00:00+09:00</updated>\n  <author>"));
}

#[test]
fn qa_page_numbers_questions_and_renders_markdown() {
    let site = SiteDir::fixture("small");
    site.build();
    let doc = site.page("qa/index.html");
    assert_eq!(attrs(&doc, "section.qa", "id"), ["q1", "q2"]);
    assert_eq!(texts(&doc, "#q2 .qa-answer strong"), ["かかりません"]);
}

#[test]
fn open_data_cells_a_spreadsheet_would_run_are_neutralised() {
    let site = SiteDir::fixture("small");
    let file = site.root.join("data/adopters/national.yaml");
    let text = std::fs::read_to_string(&file).expect("read");
    let text = text.replace(
        "{name: 国土交通省, category: 国}",
        "{name: \"=HYPERLINK(\\\"https://evil.example/\\\")\", category: 国}",
    );
    std::fs::write(&file, text).expect("write");
    site.build();
    let csv = site.read("data/adopters.csv");
    assert!(
        csv.contains(",国,\"'=HYPERLINK(\"\"https://evil.example/\"\")\",,,,,入札公告日,,,,,\r\n"),
        "{csv}"
    );
    // The JSON keeps the name as written: it is data, not a spreadsheet.
    assert!(site.read("data/adopters.json").contains("\"=HYPERLINK("));
}
