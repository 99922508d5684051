//! Accessibility, tested: axe-core (from npm, `tests/a11y`, installed by scripts/test) is
//! injected into every built page and every page of the daemon (the verification form, a
//! certificate, the refusal and the 429 page) in headless Chromium, and must find nothing
//! across WCAG 2.0/2.1/2.2 A and AA and axe's best practices.
//!
//! With `HOSHO_ACCESSIBILITY_REPORT=PATH` the test also writes the results as the
//! アクセシビリティ試験結果 page (`scripts/accessibility-report` does this for the demo).

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::browser::chromium;
use crate::cdp::Browser;
use crate::daemon::{Daemon, Root};
use crate::support::repo_root;

/// The rule sets run, as axe names their tags.
const TAGS: [&str; 6] = [
    "wcag2a",
    "wcag2aa",
    "wcag21a",
    "wcag21aa",
    "wcag22aa",
    "best-practice",
];

/// axe-core's browser build.
pub(crate) fn axe_source() -> String {
    let path = repo_root().join("tests/a11y/node_modules/axe-core/axe.min.js");
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{} ({e}): run scripts/test, which installs axe-core with npm ci --prefix tests/a11y",
            path.display()
        )
    })
}

/// One page's result.
pub(crate) struct Audit {
    /// What was tested, as a reader names it.
    pub(crate) name: String,
    url: String,
    /// `rule-id (impact): help — selectors` per violation.
    pub(crate) violations: Vec<String>,
    pub(crate) passes: u64,
}

/// Runs axe on the page the browser shows.
pub(crate) fn audit(b: &mut Browser, axe: &str, name: &str) -> Audit {
    if b.eval("typeof axe") != "object" {
        b.eval(&format!("{axe}\n;'loaded'"));
    }
    let tags = serde_json::to_string(&TAGS).unwrap_or_default();
    let result = b.eval(&format!(
        "axe.run(document, {{runOnly: {{type: 'tag', values: {tags}}}}}).then(r => ({{\
            passes: r.passes.length,\
            violations: r.violations.map(v => v.id + ' (' + v.impact + '): ' + v.help + ' — ' +\
                v.nodes.map(n => n.target.join(' ')).join(', '))}}))"
    ));
    let url = b
        .eval("location.href")
        .as_str()
        .unwrap_or_default()
        .to_owned();
    Audit {
        name: name.to_owned(),
        url,
        violations: result["violations"]
            .as_array()
            .map(|v| {
                v.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        passes: result["passes"].as_u64().unwrap_or(0),
    }
}

/// Every HTML page of the built site, as site paths (`/qa/`), sorted.
fn built_pages(out: &Path) -> Vec<String> {
    let mut pages: Vec<String> = walkdir::WalkDir::new(out)
        .sort_by_file_name()
        .into_iter()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "html"))
        .filter_map(|e| {
            let rel = e
                .path()
                .strip_prefix(out)
                .ok()?
                .to_string_lossy()
                .into_owned();
            Some(format!("/{}", rel.trim_end_matches("index.html")))
        })
        .collect();
    pages.sort();
    pages
}

/// Fills the form with `number` and `key` and sends it, as a person does.
pub(crate) fn submit(b: &mut Browser, number: &str, key: &str) {
    b.eval(&format!(
        "document.getElementById('number').value = '{number}';\
         document.getElementById('key').value = '{key}'; 'filled'"
    ));
    b.clear_events();
    b.eval("document.querySelector('form.verify-form').requestSubmit(); 'sent'");
    b.wait_for("Page.loadEventFired");
}

#[test]
fn every_page_has_no_accessibility_violations() {
    let Some(chromium) = chromium() else {
        eprintln!("HOSHO_SKIP_BROWSER=1: accessibility test skipped");
        return;
    };
    let axe = axe_source();
    let root = Root::new();
    let daemon = Daemon::start(&root, &[]);
    let limited = Daemon::start(&root, &["--limit-address", "1/day+1"]);
    let mut b = Browser::launch(&chromium);
    let mut audits = Vec::new();
    for page in built_pages(&root.path.join("site-out")) {
        b.navigate(&daemon.url(&page));
        let title = b
            .eval("document.title")
            .as_str()
            .unwrap_or_default()
            .to_owned();
        audits.push(audit(&mut b, &axe, &title));
    }
    b.navigate(&daemon.url("/verify/"));
    audits.push(audit(&mut b, &axe, "電子証書の確認（入力画面）"));
    b.navigate(&daemon.url("/verify/?number=2070004426"));
    audits.push(audit(
        &mut b,
        &axe,
        "電子証書の確認（QRコードから開いた入力画面）",
    ));
    submit(&mut b, "2070004426", &root.key_of("2070004426"));
    audits.push(audit(&mut b, &axe, "電子証書（閲覧用）の表示"));
    b.navigate(&daemon.url("/verify/"));
    submit(&mut b, "2070004426", "0000000000");
    audits.push(audit(&mut b, &axe, "確認できなかったときの画面"));
    for _ in 0..3 {
        b.navigate(&limited.url("/verify/"));
        submit(&mut b, "2070004427", "0000000000");
    }
    let heading = b.eval("document.querySelector('h1').innerText");
    assert_eq!(heading, "しばらく時間をおいてからお試しください");
    audits.push(audit(&mut b, &axe, "確認を一時的に止めている画面（429）"));

    let version = b
        .eval("axe.version")
        .as_str()
        .unwrap_or_default()
        .to_owned();
    // Not in the report (the demo's pages are): two adoption tables with one title on the
    // overview must not make two landmarks of one name.
    let twins = twin_tables_overview(&mut b, &axe);
    if let Some(path) = std::env::var_os("HOSHO_ACCESSIBILITY_REPORT") {
        let chromium_version = b.call("Browser.getVersion", serde_json::json!({}));
        let product = chromium_version["product"].as_str().unwrap_or_default();
        write_report(&PathBuf::from(path), &audits, &version, product);
    }
    let failed: Vec<String> = audits
        .iter()
        .chain(std::iter::once(&twins))
        .filter(|a| !a.violations.is_empty())
        .map(|a| format!("{} ({}):\n  {}", a.name, a.url, a.violations.join("\n  ")))
        .collect();
    assert!(audits.len() >= 18, "{} pages tested", audits.len());
    assert!(audits.iter().all(|a| a.passes > 0), "axe ran on every page");
    assert!(
        failed.is_empty(),
        "axe-core {version}:\n{}",
        failed.join("\n")
    );
}

/// The overview of a fixture whose two adoption files share a title, audited.
fn twin_tables_overview(b: &mut Browser, axe: &str) -> Audit {
    let site = crate::support::SiteDir::fixture("small");
    let kyushu = site.root.join("data/adopters/kyushu.yaml");
    let text = std::fs::read_to_string(&kyushu).expect("read");
    std::fs::write(site.root.join("data/adopters/kyushu2.yaml"), &text).expect("write");
    site.build();
    let base = crate::browser::serve(&site.out());
    b.navigate(&format!("{base}/adopters/"));
    let twins = "Array.from(document.querySelectorAll('h2'))\
        .filter(h => h.textContent === '九州の自治体').length";
    assert_eq!(b.eval(twins), 2);
    audit(b, axe, "二つの一覧が同じ表題の導入発注者一覧")
}

/// The アクセシビリティ試験結果 page: what was tested, with what, when, and the result.
fn write_report(path: &Path, audits: &[Audit], axe_version: &str, browser: &str) {
    let today = chrono::Utc::now() + chrono::TimeDelta::hours(9);
    let date = hosho::common::era::full_date(today.date_naive());
    let clean = audits.iter().filter(|a| a.violations.is_empty()).count();
    let mut page = format!(
        "---\ntitle: アクセシビリティ試験結果\nweight: 91\ndescription: このサイトのページをアクセシビリティの自動試験で確認した結果です。\n---\n\
このサイトのページを、自動試験ツールで確認した結果です。[アクセシビリティ方針](/accessibility/)に沿って、ページを更新したときに試験しています。\n\n\
## 試験の概要\n\n\
- 試験日：{date}\n\
- 試験ツール：axe-core {axe_version}（{browser}で実行）\n\
- 試験した基準：WCAG 2.0・2.1・2.2のレベルAとAA（JIS X 8341-3:2016の適合レベルAAに相当する達成基準を含みます）、およびaxe-coreの推奨事項（best-practice）\n\
- 試験したページ：{}ページ（このサイトのすべてのページと、電子証書の確認の画面）\n\
- 結果：{}ページで問題は見つかりませんでした\n\n\
自動試験で確かめられるのは達成基準の一部です。キーボードだけでの操作や読み上げソフトでの聞こえ方は、この結果には含まれていません。\n\n\
## ページごとの結果\n\n\
| ページ | アドレス | 結果 |\n|---|---|---|\n",
        audits.len(),
        clean
    );
    for a in audits {
        // The QR link's number is a certificate's: it is not for the public site.
        let address = url_path(&a.url).split_once("?number=").map_or_else(
            || url_path(&a.url).to_owned(),
            |(path, _)| format!("{path}?number=（保証契約番号）"),
        );
        let result = if a.violations.is_empty() {
            "問題なし".to_owned()
        } else {
            format!("問題{}件", a.violations.len())
        };
        // Page titles end in the site's name (`…｜電子保証のご案内`).
        let name = a.name.split('｜').next().unwrap_or(&a.name);
        page.push_str(&format!("| {name} | `{address}` | {result} |\n"));
    }
    std::fs::write(path, page).expect("write the report page");
}

/// The path and query of a test URL (the host is a loopback port of the test).
fn url_path(url: &str) -> &str {
    url.split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or(url)
}
