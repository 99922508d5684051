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
    let text = String::from_utf8(bytes).expect("utf-8");
    fs::write(&saved, text.replace("\"seq\": ", "\"seq\": 1")).expect("alter");
    let run = hosho(&root.path, &["receipt", "verify"], &saved);
    assert_eq!(run.0, 1, "{run:?}");
    assert!(run.2.contains("保証会社の署名が一致しません"), "{run:?}");
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
