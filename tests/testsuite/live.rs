//! The live preview: a real `hosho serve` (building mode) on a temporary copy of the demo;
//! files edited on disk show up over HTTP, a broken file keeps the last good site and lists
//! its problems in the page, fixing it clears them, and an open page in Chromium reloads by
//! itself.

use std::fs;
use std::time::{Duration, Instant};

use crate::daemon::{get, Daemon};
use crate::support::SiteDir;

/// Polls `url` until its body satisfies `ready`, for at most `limit`; the time it took.
fn until(url: &str, limit: Duration, ready: impl Fn(&str) -> bool) -> Duration {
    let started = Instant::now();
    loop {
        let body = get(url).text();
        if ready(&body) {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "not within {limit:?}: {body}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn edit(site: &SiteDir, rel: &str, from: &str, to: &str) {
    let path = site.root.join(rel);
    let text = fs::read_to_string(&path).expect("read");
    assert!(text.contains(from), "{rel} has no {from}");
    fs::write(&path, text.replacen(from, to, 1)).expect("write");
}

#[test]
fn edits_are_served_within_a_second_and_problems_shown_until_fixed() {
    let site = SiteDir::demo();
    let daemon = Daemon::launch(&site.root, &[]);
    assert!(daemon
        .banner
        .iter()
        .any(|l| l.contains("ファイルを保存すると自動で再ビルド")));
    let second = Duration::from_secs(1);
    // A page.
    edit(
        &site,
        "content/about.md",
        "title: 電子保証とは",
        "title: 電子保証とは（改訂）",
    );
    until(&daemon.url("/about/"), second, |b| {
        b.contains("<h1>電子保証とは（改訂）</h1>")
    });
    // An adoption table.
    edit(
        &site,
        "data/adopters/kumamoto.yaml",
        "{name: 錦町,",
        "{name: 錦町役場,",
    );
    until(&daemon.url("/adopters/kumamoto/"), second, |b| {
        b.contains("錦町役場")
    });
    // A broken file: the last good page, with the problem where it is.
    edit(
        &site,
        "data/adopters/kumamoto.yaml",
        "{name: 錦町役場, category: 市町村",
        "{name: 錦町役場, category: 村町",
    );
    let page = daemon.url("/adopters/kumamoto/");
    until(&page, second, |b| b.contains("hosho-problems\""));
    let body = get(&page).text();
    assert!(
        body.contains("錦町役場"),
        "the last good site is still served"
    );
    assert!(
        body.contains("<li>data/adopters/kumamoto.yaml:64:28: 区分「村町」は hosho.toml の [adopters] categories にありません。"),
        "{body}"
    );
    assert!(
        until(&daemon.url("/qa/"), second, |b| b
            .contains("再ビルドできませんでした"))
            < second
    );
    // Fixed: the problems are gone.
    edit(
        &site,
        "data/adopters/kumamoto.yaml",
        "category: 村町",
        "category: 市町村",
    );
    until(&page, second, |b| {
        !b.contains("hosho-problems\"") && b.contains("錦町役場")
    });
    // The verification pages never carry the live script.
    let form = get(&daemon.url("/verify/")).text();
    assert!(!form.contains("live.js"));
}

#[test]
fn the_daemons_own_pages_follow_their_templates() {
    let site = SiteDir::demo();
    let daemon = Daemon::launch(&site.root, &[]);
    let form = daemon.url("/verify/");
    assert!(get(&form).text().contains("<h1>電子証書の確認</h1>"));
    edit(
        &site,
        "templates/verify.html",
        "<h1>電子証書の確認</h1>",
        "<h1>電子証書の確認（試験）</h1>",
    );
    // A template change is a full build, certificates reused.
    until(&form, Duration::from_secs(10), |b| {
        b.contains("<h1>電子証書の確認（試験）</h1>")
    });
}

#[test]
fn an_open_page_reloads_itself_after_an_edit() {
    let Some(chromium) = crate::browser::chromium() else {
        eprintln!("HOSHO_SKIP_BROWSER=1: browser test skipped");
        return;
    };
    let site = SiteDir::demo();
    let daemon = Daemon::launch(&site.root, &[]);
    let mut b = crate::cdp::Browser::launch(&chromium);
    b.navigate(&daemon.url("/flow/"));
    // Marks this page: a reload forgets it.
    b.eval("window.hoshoMark = 1; 'marked'");
    // Let the page's event stream open before the edit.
    std::thread::sleep(Duration::from_millis(300));
    edit(
        &site,
        "content/flow.md",
        "title: お申込の流れ",
        "title: お申込の流れ（新）",
    );
    let started = Instant::now();
    loop {
        let h1 =
            b.eval("document.querySelector('h1') ? document.querySelector('h1').textContent : ''");
        let marked = b.eval("window.hoshoMark === 1");
        if h1 == "お申込の流れ（新）" && marked == false {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the page did not reload: {h1}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn serve_open_opens_the_preview_in_the_browser() {
    let site = SiteDir::demo();
    // The desktop's opener, replaced by one that writes down what it was asked to open.
    let bin = tempfile::tempdir().expect("tempdir");
    let opened = bin.path().join("opened");
    let opener = bin.path().join("xdg-open");
    fs::write(
        &opener,
        format!("#!/bin/sh\necho \"$1\" > {}\n", opened.display()),
    )
    .expect("write");
    fs::set_permissions(&opener, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_hosho"));
    command
        .args(["serve", "--open", "--listen", "127.0.0.1:0", "--root"])
        .arg(&site.root)
        .env("PATH", path);
    let daemon = Daemon::spawn(command);
    let started = Instant::now();
    while !opened.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "nothing was opened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(50));
    let url = fs::read_to_string(&opened).expect("read");
    assert_eq!(url.trim(), daemon.url("/"));
}

#[test]
fn new_files_are_scaffolded_once_and_pass_check() {
    let site = SiteDir::demo();
    for (kind, name, file) in [
        ("page", "guide", "content/guide.md"),
        ("notice", "winter-2026", "content/notices/winter-2026.md"),
        ("adopters", "fukuoka", "data/adopters/fukuoka.yaml"),
    ] {
        let run = site.hosho(&["new", kind, name]);
        assert_eq!(run.code, 0, "{run:?}");
        assert!(
            run.stdout.starts_with(&format!("{file} を作りました")),
            "{}",
            run.stdout
        );
        let text = fs::read_to_string(site.root.join(file)).expect("read");
        assert!(text.contains(&format!("title: {name}")), "{text}");
        assert!(
            text.lines().filter(|l| l.starts_with('#')).count() >= 4,
            "a comment per field: {text}"
        );
        let again = site.hosho(&["new", kind, name]);
        assert_eq!(again.code, 1, "{again:?}");
        assert!(again.stderr.contains("上書きしません"), "{}", again.stderr);
    }
    let check = site.hosho(&["check"]);
    assert_eq!(check.code, 0, "{check:?}");
    // Drafts are not built until the maintainer publishes them.
    site.build();
    assert!(!site.out().join("guide/index.html").exists());
    assert!(site.out().join("adopters/fukuoka/index.html").exists());
    let bad = site.hosho(&["new", "page", "Guide"]);
    assert_eq!(bad.code, 1);
    assert!(
        bad.stderr.contains("半角の英小文字・数字・-・_"),
        "{}",
        bad.stderr
    );
    let usage = site.hosho(&["new", "chapter", "x"]);
    assert_eq!(usage.code, 2, "{usage:?}");
}
