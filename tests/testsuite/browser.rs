//! The built pages in a real browser: headless Chromium loads them over HTTP from
//! 127.0.0.1, the test reads the rendered DOM, and screenshots go to target/screenshots/.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;

use scraper::Html;

use crate::support::{attrs, count, pdftotext, repo_root, texts, SiteDir};

/// Debian's `chromium`, or `HOSHO_CHROMIUM`. Missing is a failure unless
/// `HOSHO_SKIP_BROWSER=1` says so explicitly (`scripts/test` installs it).
pub(crate) fn chromium() -> Option<PathBuf> {
    if std::env::var_os("HOSHO_SKIP_BROWSER").is_some_and(|v| v == "1") {
        return None;
    }
    let candidate = std::env::var_os("HOSHO_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        candidate.is_file(),
        "Chromium not found at {}: run scripts/test (it installs it) or set HOSHO_SKIP_BROWSER=1",
        candidate.display()
    );
    Some(candidate)
}

/// Serves `dir` on 127.0.0.1 (GET only, `/x/` → `x/index.html`) from a background thread.
pub(crate) fn serve(dir: &Path) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("addr");
    let dir = dir.to_path_buf();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let dir = dir.clone();
            std::thread::spawn(move || answer(stream, &dir));
        }
    });
    format!("http://{addr}")
}

fn answer(mut stream: TcpStream, dir: &Path) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
        line.clear();
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("/");
    let path = path.split(['?', '#']).next().unwrap_or("/");
    let mut file = dir.join(path.trim_start_matches('/'));
    if path.ends_with('/') {
        file = file.join("index.html");
    }
    let (status, body, kind) = match (path.contains(".."), std::fs::read(&file)) {
        (false, Ok(body)) => {
            let kind = match file.extension().and_then(|e| e.to_str()) {
                Some("html") => "text/html; charset=utf-8",
                Some("css") => "text/css",
                Some("js") => "text/javascript",
                Some("xml") => "application/xml",
                _ => "application/octet-stream",
            };
            ("200 OK", body, kind)
        }
        _ => ("404 Not Found", b"not found".to_vec(), "text/plain"),
    };
    let head = format!("HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body);
}

/// Headless, and quiet on this machine's closed network.
pub(crate) const CHROMIUM_FLAGS: [&str; 8] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
];

fn chromium_command(chromium: &Path, profile: &Path) -> Command {
    let mut c = Command::new(chromium);
    c.args(CHROMIUM_FLAGS)
        .arg("--virtual-time-budget=3000")
        .arg(format!("--user-data-dir={}", profile.display()));
    c
}

pub(crate) fn screenshots_dir() -> PathBuf {
    let dir = repo_root().join("target/screenshots");
    std::fs::create_dir_all(&dir).expect("create target/screenshots");
    dir
}

/// Chromium, and the demo built and served on a loopback port; `None` when browser tests
/// are skipped (`HOSHO_SKIP_BROWSER=1`).
fn demo_for_chromium() -> Option<(std::path::PathBuf, SiteDir, String)> {
    let Some(chromium) = chromium() else {
        eprintln!("HOSHO_SKIP_BROWSER=1: browser test skipped");
        return None;
    };
    let site = SiteDir::demo();
    site.build();
    let base = serve(&site.out());
    Some((chromium, site, base))
}

#[test]
fn pages_render_in_headless_chromium() {
    let Some((chromium, _site, base)) = demo_for_chromium() else {
        return;
    };
    let profile = tempfile::tempdir().expect("profile dir");

    let dump = chromium_command(&chromium, profile.path())
        .arg("--dump-dom")
        .arg(format!("{base}/adopters/kumamoto/"))
        .output()
        .expect("run chromium");
    assert!(
        dump.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let dom = Html::parse_document(&String::from_utf8_lossy(&dump.stdout));
    assert_eq!(count(&dom, "table#table-kumamoto tbody tr"), 19);
    let dates = texts(&dom, "table#table-kumamoto tbody td time");
    assert_eq!(dates.len(), 19);
    assert!(dates.iter().all(|d| d.starts_with("令和")), "{dates:?}");
    // The script ran: the filter field exists, with its label.
    assert_eq!(
        attrs(&dom, ".table-filter label", "for"),
        ["filter-table-kumamoto"]
    );
    assert_eq!(count(&dom, "input#filter-table-kumamoto[type=search]"), 1);
    assert_eq!(texts(&dom, "title"), ["熊本県下自治体｜電子保証のご案内"]);

    let shots = screenshots_dir();
    for (name, path, size) in [
        ("home-desktop.png", "/", "1280,1600"),
        ("kumamoto-desktop.png", "/adopters/kumamoto/", "1280,1800"),
        ("adopters-desktop.png", "/adopters/", "1280,2600"),
        ("kumamoto-phone.png", "/adopters/kumamoto/", "360,2200"),
        ("qa-phone.png", "/qa/", "360,2600"),
    ] {
        let target = shots.join(name);
        let _ = std::fs::remove_file(&target);
        let run = chromium_command(&chromium, profile.path())
            .arg(format!("--window-size={size}"))
            .arg(format!("--screenshot={}", target.display()))
            .arg(format!("{base}{path}"))
            .output()
            .expect("run chromium");
        assert!(
            run.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        let png = std::fs::read(&target).expect("screenshot written");
        assert!(png.starts_with(b"\x89PNG"), "{name} is a PNG");
    }

    // Printing hides navigation and the filter but keeps the whole table.
    let pdf = shots.join("kumamoto-print.pdf");
    let _ = std::fs::remove_file(&pdf);
    let run = chromium_command(&chromium, profile.path())
        .arg("--no-pdf-header-footer")
        .arg(format!("--print-to-pdf={}", pdf.display()))
        .arg(format!("{base}/adopters/kumamoto/"))
        .output()
        .expect("run chromium");
    assert!(
        run.status.success(),
        "print: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let text = pdftotext(&pdf, &["-layout"]);
    assert!(text.contains("熊本県下自治体"), "{text}");
    assert!(text.contains("錦町"), "last row printed: {text}");
    assert!(
        !text.contains("発注者名で絞り込む"),
        "filter hidden in print: {text}"
    );
    assert!(!text.contains("本文へ移動"), "skip link hidden in print");
    assert!(
        !text.contains("よくあるご質問"),
        "navigation hidden in print: {text}"
    );
}

/// The orderer's whole path through the daemon, at the keyboard: open the form, type a 全角
/// number and a spaced key, press Enter, read the certificate, follow the PDF link, print.
#[test]
fn an_orderer_verifies_a_certificate_in_chromium() {
    let Some(chromium) = chromium() else {
        eprintln!("HOSHO_SKIP_BROWSER=1: browser test skipped");
        return;
    };
    let root = crate::daemon::Root::new();
    let daemon = crate::daemon::Daemon::start(&root, &[]);
    let shots = screenshots_dir();
    let mut b = crate::cdp::Browser::launch(&chromium);

    b.navigate(&daemon.url("/verify/"));
    assert_eq!(b.eval("document.documentElement.lang"), "ja");
    assert_eq!(
        b.eval("document.querySelectorAll('label[for=number], label[for=key]').length"),
        2
    );
    b.screenshot(&shots.join("verify-form.png"));
    // Into the number field, then Tab to the key, as a keyboard user does; a wrong key
    // first.
    b.eval("document.getElementById('number').focus()");
    b.type_text("２０７　０００　４４２６");
    b.press_tab();
    assert_eq!(b.eval("document.activeElement.id"), "key");
    b.type_text("332 e1e 7k9r");
    b.clear_events();
    b.press_enter();
    b.wait_for("Page.loadEventFired");
    // Refused: the number stays, the key field has the focus, and the page says whom to
    // ask next.
    assert_eq!(
        b.eval("document.getElementById('number').value"),
        "2070004426"
    );
    assert_eq!(
        b.eval_until("document.activeElement.id", "key"),
        "key",
        "the key field has the focus (autofocus)"
    );
    let refusal = b.eval("document.querySelector('.form-error').innerText");
    let refusal = refusal.as_str().unwrap_or_default();
    for words in ["受注者", "熊本支店", "096-364-1155"] {
        assert!(refusal.contains(words), "{words}: {refusal}");
    }
    b.screenshot(&shots.join("verify-refused.png"));
    b.type_text("332 e1e 7k9q");
    b.clear_events();
    b.press_enter();
    b.wait_for("Page.loadEventFired");

    assert_eq!(
        b.eval("document.querySelector('h1').innerText.replace(/\\s+/g, '')"),
        "保証証書（前払金保証）"
    );
    let table = b
        .eval("document.querySelector('.certificate-table').innerText")
        .as_str()
        .unwrap_or_default()
        .to_owned();
    for fact in [
        "2070004426",
        "令和4年5月10日",
        "40,000,000円",
        "株式会社みほん建設",
        "保証期間満了",
    ] {
        assert!(table.contains(fact), "{fact}: {table}");
    }
    assert_eq!(
        b.eval("document.querySelector('.copy-mark').innerText"),
        "電子証書（閲覧用）"
    );
    b.screenshot(&shots.join("verify-certificate.png"));

    // The PDF link: followed from the page, it is the certificate PDF.
    let pdf = b.eval(
        "fetch(document.querySelector('.certificate-actions a.button').href).then(async r => [r.status, r.headers.get('content-type'), r.headers.get('cache-control'), new TextDecoder().decode((await r.arrayBuffer()).slice(0, 5))])",
    );
    assert_eq!(
        pdf,
        serde_json::json!([200, "application/pdf", "no-store", "%PDF-"])
    );

    // Printed, it reads like the paper certificate: no navigation, no buttons.
    let printed = shots.join("verify-certificate-print.pdf");
    b.print_to_pdf(&printed);
    let text = pdftotext(&printed, &["-layout"]);
    assert!(
        text.contains("保証証書") && text.contains("電子証書（閲覧用）"),
        "{text}"
    );
    assert!(text.contains("2070004426"), "{text}");
    for hidden in [
        "本文へ移動",
        "証書のPDFを開く",
        "別の電子証書を確認する",
        "確認記録（電子ファイル）を保存",
    ] {
        assert!(!text.contains(hidden), "{hidden} printed: {text}");
    }
    assert_eq!(crate::support::pdf_pages(&printed), 1, "one A4 page");
    // The print carries the saved receipt's 照合番号, to match paper and file.
    let href = b.eval("document.querySelector('a[download]').href");
    let data = href.as_str().unwrap_or_default();
    let data = data.trim_start_matches("data:application/json;base64,");
    let receipt = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, data)
        .expect("the receipt in the page");
    let fingerprint = hosho::trust::receipt::fingerprint(&receipt);
    let flat = text.split_whitespace().collect::<String>();
    assert!(
        text.contains("照合番号") && flat.contains(&fingerprint.replace(' ', "")),
        "{fingerprint}: {text}"
    );

    // The changed certificate with the longest history prints on one page too, with the
    // time of the check and who signed what it was checked against.
    b.navigate(&daemon.url("/verify/"));
    b.eval("document.getElementById('number').value = '2070310002'");
    let key = root.key_of("2070310002");
    b.eval(&format!("document.getElementById('key').value = '{key}'"));
    b.clear_events();
    b.eval("document.querySelector('form.verify-form').submit()");
    b.wait_for("Page.loadEventFired");
    let printed = shots.join("verify-changed-print.pdf");
    b.print_to_pdf(&printed);
    assert_eq!(crate::support::pdf_pages(&printed), 1, "one A4 page");
    let text = pdftotext(&printed, &[]);
    for words in [
        "変更履歴",
        "確認記録",
        "日本時間",
        "が電子署名した最新の記録",
    ] {
        assert!(text.contains(words), "{words}: {text}");
    }
}

#[test]
fn the_fee_calculator_computes_what_the_statements_compute() {
    let Some(chromium) = chromium() else {
        eprintln!("HOSHO_SKIP_BROWSER=1: browser test skipped");
        return;
    };
    let root = crate::daemon::Root::new();
    let daemon = crate::daemon::Daemon::start(&root, &[]);
    let mut b = crate::cdp::Browser::launch(&chromium);
    b.navigate(&daemon.url("/fees/"));
    // The script showed the form; without it the worked examples stand alone.
    assert_eq!(
        b.eval("document.querySelector('.fee-calculator').hidden"),
        false
    );
    let rules = hosho::common::fees::FeeRules::default();
    let kind = hosho::common::certificate::Kind::InterimAdvance;
    for amount in [1u64, 1_999, 10_000_000, 16_940_000, 123_456_789_012] {
        let expected = rules.fee(kind, amount).map(hosho::common::format::yen);
        b.eval("document.getElementById('fee-amount').focus(); document.getElementById('fee-amount').value = ''; 'cleared'");
        // Typed as a clerk might: full-width digits.
        let typed: String = amount
            .to_string()
            .chars()
            .map(|c| char::from_u32(c as u32 - '0' as u32 + '０' as u32).unwrap_or(c))
            .collect();
        b.type_text(&typed);
        let shown = b.eval("document.getElementById('fee-result').textContent");
        assert_eq!(shown.as_str(), expected.as_deref(), "{amount}");
    }
    // Every worked example in the tables is the statement function's number.
    let examples = b.eval(
        "Array.from(document.querySelectorAll('table.fee-examples tbody tr')).map(r => \
         [r.querySelector('[data-amount]').dataset.amount, r.querySelector('[data-fee]').dataset.fee])",
    );
    let examples = examples.as_array().expect("rows");
    assert_eq!(examples.len(), 5);
    for row in examples {
        let amount: u64 = row[0]
            .as_str()
            .and_then(|a| a.parse().ok())
            .expect("amount");
        let fee: u64 = row[1].as_str().and_then(|a| a.parse().ok()).expect("fee");
        assert_eq!(Some(fee), rules.fee(kind, amount));
    }
    assert_eq!(b.eval("hoshoFee('interim-advance', '10000000')"), "6500");
}

/// The dates, amounts and short row labels (a name such as 上天草市, a word such as 受注者)
/// in tables that a line break splits, and the height the navigation takes, on the page
/// open in `b`. A longer label may wrap between its words.
fn broken_and_nav(b: &mut crate::cdp::Browser) -> (Vec<String>, f64) {
    let broken = b.eval(
        "[...document.querySelectorAll('table time, table td.amount, table th[scope=row], table td:first-child')] \
           .filter(e => e.matches('time, .amount') || e.textContent.trim().length <= 8).filter(e => { \
           const r = document.createRange(); r.selectNodeContents(e); \
           return new Set([...r.getClientRects()].map(x => Math.round(x.top))).size > 1; \
         }).map(e => e.textContent)",
    );
    let broken = broken
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let nav = b.eval("document.querySelector('.site-nav').getBoundingClientRect().height");
    (broken, nav.as_f64().unwrap_or(f64::MAX))
}

#[test]
fn no_date_or_amount_breaks_inside_a_table_cell_at_390_or_1280_px() {
    let Some((chromium, _site, base)) = demo_for_chromium() else {
        return;
    };
    let mut b = crate::cdp::Browser::launch(&chromium);
    let shots = screenshots_dir();
    let root = crate::daemon::Root::new();
    let daemon = crate::daemon::Daemon::start(&root, &[]);
    let key = root.key_of("2070310002");
    let pages = [
        "/",
        "/about/",
        "/adopters/",
        "/adopters/kumamoto/",
        "/adopters/national/",
        "/fees/",
    ];
    for width in [390, 1280] {
        let metrics = serde_json::json!({"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 600});
        b.call("Emulation.setDeviceMetricsOverride", metrics);
        for path in pages {
            b.navigate(&format!("{base}{path}"));
            let (broken, nav) = broken_and_nav(&mut b);
            assert!(broken.is_empty(), "{path} at {width} px: {broken:?}");
            if width == 390 {
                assert!(nav < 120.0, "{path}: the phone menu takes {nav} px");
            }
        }
        b.navigate(&format!("{base}/about/"));
        b.screenshot(&shots.join(format!("about-{width}.png")));
        b.navigate(&format!("{base}/"));
        b.screenshot(&shots.join(format!("home-{width}.png")));
        // The verification flow at this width: the form, a refusal, then the certificate
        // with a change history, as the daemon shows them.
        b.navigate(&daemon.url("/verify/"));
        b.screenshot(&shots.join(format!("verify-form-{width}.png")));
        b.eval("document.getElementById('number').value = '2070310002'");
        b.eval("document.getElementById('key').value = 'AAAAAAAAAA'");
        b.clear_events();
        b.eval("document.querySelector('form.verify-form').submit()");
        b.wait_for("Page.loadEventFired");
        assert_eq!(
            b.eval("document.getElementById('number').value"),
            "2070310002"
        );
        b.screenshot(&shots.join(format!("verify-refused-{width}.png")));
        b.eval("document.getElementById('number').value = '2070310002'");
        b.eval(&format!("document.getElementById('key').value = '{key}'"));
        b.clear_events();
        b.eval("document.querySelector('form.verify-form').submit()");
        b.wait_for("Page.loadEventFired");
        let (broken, _) = broken_and_nav(&mut b);
        assert!(
            broken.is_empty(),
            "the certificate at {width} px: {broken:?}"
        );
        b.screenshot(&shots.join(format!("certificate-{width}.png")));
    }
}
