//! 確認記録 (receipts) end to end: made by the daemon at a check (the form's page and the
//! API), then verified offline with the guarantor's and the service's public keys only.

use std::fs;
use std::path::Path;

use base64::Engine as _;
use hosho::trust::keys::load_public;
use hosho::trust::receipt::{self, Invalid};

use crate::daemon::{api, form, Daemon, Root};

/// The receipt file the certificate page offers: its `download` name and its bytes.
fn offered(page: &str) -> (String, Vec<u8>) {
    let name_at = page.find("download=\"").expect("a download link") + 10;
    let name = &page[name_at..name_at + page[name_at..].find('"').expect("end")];
    let data_at = page
        .find("data:application/json;base64,")
        .expect("a data URL")
        + 29;
    let data = &page[data_at..data_at + page[data_at..].find('"').expect("end")];
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .expect("base64");
    (name.to_owned(), bytes)
}

fn verify(root: &Path, bytes: &[u8]) -> Result<receipt::Checked, Invalid> {
    let signing = load_public(&root.join("keys/signing.pub")).expect("signing.pub");
    let service = load_public(&root.join("keys/service.pub")).expect("service.pub");
    receipt::verify(bytes, &[signing], &[service])
}

#[test]
fn the_page_and_the_api_hand_over_a_receipt_that_verifies_offline() {
    let root = Root::new();
    let d = Daemon::start(&root, &[]);
    let page = form(&d, "2070004426", "332 E1E 7K9Q");
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(html.contains("確認記録（電子ファイル）を保存"), "{html}");
    let (name, bytes) = offered(&html);
    assert!(
        name.starts_with("receipt-2070004426-") && name.ends_with(".json") && name.len() == 39,
        "{name}"
    );
    let checked = verify(&root.path, &bytes).expect("the page's receipt verifies");
    assert_eq!(checked.record.number, "2070004426");
    // The printed page carries the file's fingerprint.
    assert!(html.contains(&receipt::fingerprint(&bytes)), "{html}");
    // Never the key, a salt or a verifier.
    let text = String::from_utf8(bytes.clone()).expect("utf-8");
    let manifest = fs::read_to_string(root.path.join("vault/manifest.json")).expect("manifest");
    assert!(
        !text.contains("332E1E7K9Q") && !text.contains("\"salt\"") && !text.contains("verifier\"")
    );
    for line in manifest.lines().filter(|l| l.contains("\"salt\"")) {
        let entry: serde_json::Value =
            serde_json::from_str(line.trim_end_matches(',')).expect("entry");
        for field in ["salt", "verifier"] {
            assert!(
                !text.contains(entry[field].as_str().expect(field)),
                "a {field}"
            );
        }
    }
    // The API returns the same kind of receipt, for the same check.
    let reply = api(&d, "2070004426", "332E1E7K9Q");
    assert_eq!(reply.status, 200);
    let json = reply.json();
    let from_api = serde_json::to_vec(&json["receipt"]).expect("json");
    verify(&root.path, &from_api).expect("the API's receipt verifies");
    assert!(json["receipt_file_name"]
        .as_str()
        .is_some_and(|n| n.starts_with("receipt-2070004426-")));
    // The command verifies the saved file offline and says as of when; an altered one is
    // refused with the reason.
    let saved = root.path.join(&name);
    fs::write(&saved, &bytes).expect("save");
    let run = hosho(&root.path, &["receipt", "verify"], &saved);
    assert_eq!(run.0, 0, "{run:?}");
    assert!(
        run.1.contains("有効な確認記録です") && run.1.contains("2070004426"),
        "{run:?}"
    );
    assert!(
        run.1
            .contains("現在の状態は「電子証書の確認」で確かめてください"),
        "{run:?}"
    );
    let receipt: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
    for (what, altered, reason) in alterations(&receipt) {
        fs::write(&saved, serde_json::to_vec_pretty(&altered).expect("json")).expect("alter");
        let run = hosho(&root.path, &["receipt", "verify"], &saved);
        assert_eq!(run.0, 1, "{what}: {run:?}");
        assert!(
            run.2.contains("有効ではありません") && run.2.contains(reason),
            "{what}: {run:?}"
        );
    }
    // The API's receipt, saved, verifies with the command too.
    fs::write(&saved, &from_api).expect("save");
    let run = hosho(&root.path, &["receipt", "verify"], &saved);
    assert_eq!(run.0, 0, "{run:?}");
}

/// The receipt with each field of the list altered in turn, and the words the
/// command and the page use to name what failed.
fn alterations(
    receipt: &serde_json::Value,
) -> Vec<(&'static str, serde_json::Value, &'static str)> {
    let certificate = receipt["certificate"].as_str().expect("text").to_owned();
    let change = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut r = receipt.clone();
        f(&mut r);
        r
    };
    vec![
        (
            "an amount",
            change(&|r| r["certificate"] = certificate.replacen("40000000", "90000000", 1).into()),
            "証書の内容（certificate）",
        ),
        (
            "a date",
            change(&|r| {
                r["certificate"] = certificate.replacen("2023-03-31", "2024-03-31", 1).into()
            }),
            "証書の内容（certificate）",
        ),
        (
            "the status",
            change(&|r| r["leaf"]["status"] = "cancelled".into()),
            "状態（status）",
        ),
        (
            "a proof hash",
            change(&|r| r["proof"]["path"][0] = "00".repeat(32).into()),
            "包含証明（proof）",
        ),
        (
            "the seq",
            change(&|r| r["tree_head"]["seq"] = 1.into()),
            "保証会社の署名が一致しません",
        ),
        (
            "the time",
            change(&|r| r["checked_at"] = (r["checked_at"].as_u64().unwrap_or(0) + 1).into()),
            "確認サービスの署名が一致しません",
        ),
        (
            "the guarantor's name",
            change(&|r| r["guarantor"] = "別の保証株式会社".into()),
            "保証会社名（guarantor）",
        ),
    ]
}

/// `hosho ARGS --root ROOT FILE`: exit code, stdout, stderr.
fn hosho(root: &Path, args: &[&str], file: &Path) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hosho"))
        .args(args)
        .arg("--root")
        .arg(root)
        .arg(file)
        .output()
        .expect("run hosho");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Chooses `file` in the page's file input, as a person does in the file dialog.
pub(crate) fn choose_file(b: &mut crate::cdp::Browser, file: &Path) {
    let document = b.call("DOM.getDocument", serde_json::json!({}));
    let input = b.call(
        "DOM.querySelector",
        serde_json::json!({"nodeId": document["root"]["nodeId"], "selector": "#receipt-file"}),
    );
    b.call(
        "DOM.setFileInputFiles",
        serde_json::json!({"files": [file.to_string_lossy()], "nodeId": input["nodeId"]}),
    );
}

/// What the page says once it has checked the chosen file.
pub(crate) fn verdict(b: &mut crate::cdp::Browser) -> String {
    let expression = "(document.querySelector('#receipt-result .receipt-valid:not(:only-child), #receipt-result .receipt-invalid') || {}).innerText || ''";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = b.eval(expression).as_str().unwrap_or_default().to_owned();
        if !text.is_empty() || std::time::Instant::now() > deadline {
            return text;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn the_receipt_page_verifies_a_saved_receipt_in_chromium_and_names_each_alteration() {
    let Some(chromium) = crate::browser::chromium() else {
        eprintln!("HOSHO_SKIP_BROWSER=1: browser test skipped");
        return;
    };
    let root = Root::new();
    let d = Daemon::start(&root, &[]);
    let page = form(&d, "2070004426", "332E1E7K9Q");
    let (name, bytes) = offered(&page.text());
    let saved = root.path.join(&name);
    fs::write(&saved, &bytes).expect("save");
    let mut b = crate::cdp::Browser::launch(&chromium);
    b.navigate(&d.url("/receipt/"));
    assert_eq!(
        b.eval("document.getElementById('receipt-check').hidden"),
        false
    );
    assert_eq!(
        b.eval("document.querySelectorAll('label[for=receipt-file]').length"),
        1
    );
    // The browser's own request for a favicon aside, what the page has fetched.
    let fetched = "JSON.stringify(performance.getEntriesByType('resource').map(e => e.name).filter(n => !n.endsWith('/favicon.ico')))";
    let requests = b.eval(fetched);
    choose_file(&mut b, &saved);
    assert_eq!(verdict(&mut b), "有効な確認記録です。");
    // The API's receipt, saved by a program, is valid on the page too.
    let from_api = api(&d, "2070004426", "332E1E7K9Q").json()["receipt"].clone();
    let api_file = root.path.join("from-api.json");
    fs::write(&api_file, serde_json::to_vec(&from_api).expect("json")).expect("write");
    b.eval("document.getElementById('receipt-result').textContent = ''");
    choose_file(&mut b, &api_file);
    assert_eq!(verdict(&mut b), "有効な確認記録です。");
    let table = b.eval("document.querySelector('#receipt-result table').innerText");
    let table = table.as_str().unwrap_or_default();
    for fact in [
        "2070004426",
        "前払金保証",
        "40,000,000円",
        "令和4年5月10日",
        "西日本建設業保証株式会社",
    ] {
        assert!(table.contains(fact), "{fact}: {table}");
    }
    b.screenshot(&crate::browser::screenshots_dir().join("receipt-valid.png"));
    // Checked without a request: nothing was fetched after the page loaded.
    assert_eq!(b.eval(fetched), requests);
    let receipt: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
    let cases = alterations(&receipt);
    for (i, (what, altered, reason)) in cases.into_iter().enumerate() {
        let file = root.path.join(format!("altered-{i}.json"));
        fs::write(&file, serde_json::to_vec_pretty(&altered).expect("json")).expect("write");
        b.eval("document.getElementById('receipt-result').textContent = ''");
        choose_file(&mut b, &file);
        let said = verdict(&mut b);
        assert!(
            said.starts_with("この確認記録は有効ではありません"),
            "{what}: {said}"
        );
        assert!(said.contains(reason), "{what}: {said}");
    }
    b.screenshot(&crate::browser::screenshots_dir().join("receipt-invalid.png"));
    // A hostile field is shown as text: no element is made from it, no script runs.
    let hostile = "<img src=x onerror=\"document.title='pwned'\">";
    let mut altered = receipt.clone();
    altered["tree_head"]["key_id"] = hostile.into();
    let file = root.path.join("hostile.json");
    fs::write(&file, serde_json::to_vec_pretty(&altered).expect("json")).expect("write");
    b.eval("document.getElementById('receipt-result').textContent = ''");
    choose_file(&mut b, &file);
    let said = verdict(&mut b);
    assert!(said.contains(hostile), "{said}");
    assert_eq!(
        b.eval("document.querySelectorAll('#receipt-result img').length"),
        0
    );
    assert_ne!(b.eval("document.title"), "pwned");
}

#[test]
fn a_receipt_taken_before_a_change_and_a_cancellation_still_verifies_as_of_its_time() {
    let root = Root::new();
    let d = Daemon::start(&root, &[]);
    let (name, bytes) = offered(&form(&d, "2070004426", "332E1E7K9Q").text());
    drop(d);
    let saved = root.path.join(&name);
    fs::write(&saved, &bytes).expect("save");
    let file = fs::read_dir(root.path.join("data/certificates"))
        .expect("certificates")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| fs::read_to_string(p).is_ok_and(|t| t.contains("\"2070004426\"")))
        .expect("the certificate's file");
    let original = fs::read_to_string(&file).expect("read");
    let build = |text: String| {
        fs::write(&file, text).expect("write");
        let run = std::process::Command::new(env!("CARGO_BIN_EXE_hosho"))
            .args(["build", "--root"])
            .arg(&root.path)
            .output()
            .expect("hosho build");
        assert!(run.status.success(), "{run:?}");
    };
    // Changed (保証金額 raised), then cancelled: two new manifests.
    let changed = original.replacen(
        "  auth_key: 332E1E7K9Q",
        "  auth_key: 332E1E7K9Q\n  changes:\n    - {date: 2022-09-01, amount: 45000000}",
        1,
    );
    build(changed.clone());
    build(changed.replacen(
        "  auth_key: 332E1E7K9Q",
        "  auth_key: 332E1E7K9Q\n  status: cancelled\n  cancelled_on: 2022-12-01",
        1,
    ));
    let now = fs::read_to_string(root.path.join("vault/records/2070004426.json")).expect("record");
    assert!(now.contains("\"cancelled\""), "{now}");
    // The receipt still proves what was shown then, and says to check the present online.
    let run = hosho(&root.path, &["receipt", "verify"], &saved);
    assert_eq!(run.0, 0, "{run:?}");
    assert!(
        run.1.contains("状態（確認時）  有効") && run.1.contains("40,000,000円"),
        "{run:?}"
    );
    assert!(
        run.1.contains("その後の変更・解除はこの記録に現れません"),
        "{run:?}"
    );
}
