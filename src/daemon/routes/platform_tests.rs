//! The routes of a platform (`--issuers`) called in-process: three guarantors, each with its
//! own vault, key and number space. The same with the real binary, two replicas, Redis and
//! nginx is in `tests/testsuite/platform.rs`.

use std::path::Path;

use super::tests::{api, options, send, Answer};
use super::*;
use crate::common::certificate::Status;
use crate::trust::testing::Signer;

const FORM: &str = "application/x-www-form-urlencoded";

/// (id, name, number prefix, certificates)
type Guarantor = (
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str, Status)],
);

const HIGASHI: Guarantor = (
    "higashi",
    "東方みほん建設保証（架空）",
    "10",
    &[
        ("1070000001", "K7M2P9QRS4", Status::Valid),
        ("1070000002", "X3Y4Z5W6V7", Status::Changed),
    ],
);
const NISHI: Guarantor = (
    "nishi",
    "西方みほん建設保証（架空）",
    "20",
    &crate::trust::testing::CERTIFICATES,
);
const KITA: Guarantor = (
    "kita",
    "北方みほん建設保証（架空）",
    "30",
    &[("3070000001", "Q9W8E7R6T5", Status::Valid)],
);

/// Writes each guarantor's vault (its certificates, signed by its own key, expiring at
/// `expires_at`) and `issuers.toml`; returns the signers by id.
fn write_platform(root: &Path, guarantors: &[Guarantor], expires_at: u64) -> Vec<Signer> {
    let mut toml = String::new();
    let mut signers = Vec::new();
    for (id, name, prefix, certificates) in guarantors {
        let signer = Signer::new();
        let dir = root.join("issuers").join(id);
        signer.write_vault_of(&dir.join("vault"), &dir, (3, expires_at), certificates);
        toml.push_str(&format!(
            "[[issuer]]\nid = \"{id}\"\nname = \"{name}\"\nvault = \"issuers/{id}/vault\"\n\
             public_keys = [\"issuers/{id}/signing.pub\"]\nnumbers = [\"{prefix}\"]\n\
             contact = \"https://{id}.example.jp/contact/\"\nkeys_page = \"https://{id}.example.jp/keys/\"\n\n"
        ));
        signers.push(signer);
    }
    std::fs::write(root.join("issuers.toml"), toml).expect("issuers.toml");
    // The platform's own key, which signs receipts.
    if !root.join("keys").exists() {
        crate::trust::keys::generate_service(&root.join("keys")).expect("service key");
    }
    signers
}

fn platform_options(root: &Path) -> crate::daemon::Options {
    let file = root.join("issuers.toml");
    options(root, &["--issuers", &file.to_string_lossy()])
}

fn platform(root: &Path) -> Arc<App> {
    Arc::new(App::new(&platform_options(root)).expect("platform"))
}

async fn form(app: &Arc<App>, number: &str, key: &str) -> Answer {
    let body = format!("number={number}&key={key}");
    send(app, Method::POST, "/verify/", Some((FORM, &body))).await
}

#[tokio::test]
async fn each_number_goes_to_its_guarantor_and_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let signers = write_platform(dir.path(), &[HIGASHI, NISHI, KITA], 2_000_000_000);
    let app = platform(dir.path());
    let keys: Vec<_> = signers.iter().map(|s| s.public.clone()).collect();
    let service = app.receipts.as_ref().expect("receipts").public().clone();
    for (i, (id, name, _, certificates)) in [HIGASHI, NISHI, KITA].into_iter().enumerate() {
        let (number, key, _) = certificates[0];
        let page = form(&app, number, key).await;
        assert_eq!(page.status, StatusCode::OK, "{id}: {}", page.body);
        assert!(
            page.body.contains(&format!("{name}の公開鍵")),
            "{}",
            page.body
        );
        let answer = api(&app, number, key).await;
        let json: serde_json::Value = serde_json::from_str(&answer.body).expect("json");
        assert_eq!(
            (
                json["issuer"]["id"].as_str(),
                json["issuer"]["name"].as_str()
            ),
            (Some(id), Some(name))
        );
        // The receipt carries that guarantor's tree head: it verifies against that
        // guarantor's key and no other's.
        let receipt = serde_json::to_vec(&json["receipt"]).expect("receipt");
        for (j, key) in keys.iter().enumerate() {
            let checked = crate::trust::receipt::verify(
                &receipt,
                std::slice::from_ref(key),
                std::slice::from_ref(&service),
            );
            assert_eq!(
                checked.is_ok(),
                i == j,
                "{id}'s receipt against key {j}: {checked:?}"
            );
        }
    }
    // Another guarantor's key for a number: refused like any wrong key.
    let (number, _, _) = HIGASHI.3[0];
    let (_, other_key, _) = KITA.3[0];
    assert_eq!(
        api(&app, number, other_key).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_refusal_is_one_answer_whichever_space_the_number_falls_in() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_platform(dir.path(), &[HIGASHI, NISHI, KITA], 2_000_000_000);
    let app = platform(dir.path());
    // A wrong key for a number of each guarantor, an unknown number in a guarantor's
    // space, and a number in no guarantor's space.
    let numbers = [
        "1070000001",
        "2070004426",
        "3070000001",
        "1099999999",
        "4070000001",
    ];
    let mut forms = Vec::new();
    let mut apis = Vec::new();
    for number in numbers {
        let page = form(&app, number, "AAAAAAAAAA").await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{number}");
        forms.push(page.body.replace(number, "NUMBER"));
        let answer = api(&app, number, "AAAAAAAAAA").await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND);
        apis.push(answer.body);
    }
    forms.dedup();
    apis.dedup();
    assert_eq!((forms.len(), apis.len()), (1, 1), "{forms:?} {apis:?}");
    assert_eq!(apis[0], "{\"error\":\"not_found\"}\n");
    // Whom to ask names no guarantor (and never the platform's operator).
    assert!(
        forms[0].contains("電子証書を発行した保証事業会社にお問い合わせください"),
        "{}",
        forms[0]
    );
}

#[tokio::test]
async fn a_guarantor_whose_manifest_fails_takes_out_only_its_own_numbers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let signers = write_platform(root, &[HIGASHI, NISHI, KITA], 2_000_000_000);
    // kita's directory holds a manifest signed by higashi's key.
    let kita = root.join("issuers/kita");
    signers[0].write_vault_of(
        &kita.join("vault"),
        &root.join("elsewhere"),
        (3, 2_000_000_000),
        KITA.3,
    );
    let app = platform(root);
    let (number, key, _) = KITA.3[0];
    let page = form(&app, number, key).await;
    assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE);
    for words in [
        "ただいま北方みほん建設保証（架空）の電子証書を確認できません",
        "https://kita.example.jp/contact/",
        "ほかの保証事業会社の電子証書は、これまでどおり確認できます",
    ] {
        assert!(page.body.contains(words), "{words} in {}", page.body);
    }
    let answer = api(&app, number, key).await;
    assert_eq!(
        answer.body,
        "{\"error\":\"out_of_service\",\"issuer\":\"kita\"}\n"
    );
    for (_, _, _, certificates) in [HIGASHI, NISHI] {
        let (number, key, _) = certificates[0];
        assert_eq!(api(&app, number, key).await.status, StatusCode::OK);
    }
    let health = send(&app, Method::GET, "/healthz", None).await;
    assert_eq!(health.status, StatusCode::OK);
    let json: serde_json::Value = serde_json::from_str(&health.body).expect("json");
    assert_eq!(json["status"], "degraded");
    let statuses: Vec<_> = json["issuers"]
        .as_array()
        .expect("issuers")
        .iter()
        .map(|i| (i["id"].as_str(), i["status"].as_str()))
        .collect();
    assert_eq!(
        statuses,
        [
            (Some("higashi"), Some("ok")),
            (Some("nishi"), Some("ok")),
            (Some("kita"), Some("out_of_service"))
        ]
    );
    let detail = crate::daemon::admin::health_of(&app, true).1;
    let why = detail["issuers"][2]["refused"].as_str().expect("reason");
    assert!(why.contains("署名"), "{why}");
}

#[tokio::test]
async fn a_manifest_with_a_number_outside_its_space_is_refused_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let signers = write_platform(root, &[HIGASHI, NISHI, KITA], 2_000_000_000);
    // kita signs a manifest that also holds one of higashi's numbers.
    let mut stray = vec![("1070000001", "ZZZZZZZZZZ", Status::Valid)];
    stray.extend_from_slice(KITA.3);
    let kita = root.join("issuers/kita");
    signers[2].write_vault_of(&kita.join("vault"), &kita, (3, 2_000_000_000), &stray);
    let app = platform(root);
    // higashi's number still answers higashi's key only, and kita is out of service.
    assert_eq!(
        api(&app, "1070000001", "K7M2P9QRS4").await.status,
        StatusCode::OK
    );
    assert_eq!(
        api(&app, "1070000001", "ZZZZZZZZZZ").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api(&app, "3070000001", "Q9W8E7R6T5").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let detail = crate::daemon::admin::health_of(&app, true).1;
    let why = detail["issuers"][2]["refused"].as_str().expect("reason");
    assert!(why.contains("1070000001"), "{why}");
}

#[tokio::test]
async fn an_expired_guarantor_is_named_and_the_others_answer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write_platform(root, &[HIGASHI, NISHI], 2_000_000_000);
    let soon = unix_now() + 2;
    write_platform(&root.join("short"), &[KITA], soon);
    let toml = std::fs::read_to_string(root.join("issuers.toml")).expect("toml")
        + &std::fs::read_to_string(root.join("short/issuers.toml"))
            .expect("toml")
            .replace("issuers/kita", "short/issuers/kita");
    std::fs::write(root.join("issuers.toml"), toml).expect("toml");
    let app = platform(root);
    let (number, key, _) = KITA.3[0];
    assert_eq!(api(&app, number, key).await.status, StatusCode::OK);
    while unix_now() <= soon {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let page = form(&app, number, key).await;
    assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        page.body
            .contains("北方みほん建設保証（架空）の署名付き記録の有効期限が過ぎているため"),
        "{}",
        page.body
    );
    assert_eq!(
        api(&app, number, key).await.body,
        "{\"error\":\"manifest_expired\",\"issuer\":\"kita\"}\n"
    );
    assert_eq!(
        api(&app, "2070004426", "332E1E7K9Q").await.status,
        StatusCode::OK
    );
    let health = send(&app, Method::GET, "/healthz", None).await;
    assert!(health.body.contains("\"expired\""), "{}", health.body);
}

#[test]
fn a_platform_none_of_whose_guarantors_passes_does_not_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write_platform(root, &[KITA], 1_000);
    let refused = App::new(&platform_options(root)).err().expect("refused");
    assert!(
        refused
            .to_string()
            .contains("どの保証事業会社のマニフェストも受け付けられないため起動しません"),
        "{refused:#}"
    );
    // Each guarantor's high-water mark lives apart: no manifest was admitted, none saved.
    assert!(!root.join("state/issuers/kita/high-water").exists());
}

#[tokio::test]
async fn the_front_page_lists_each_guarantor_and_its_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    let signers = write_platform(dir.path(), &[HIGASHI, NISHI, KITA], 2_000_000_000);
    let app = platform(dir.path());
    let front = send(&app, Method::GET, "/", None).await;
    assert_eq!(front.status, StatusCode::OK);
    let receipt = send(&app, Method::GET, "/receipt/", None).await;
    assert_eq!(receipt.status, StatusCode::OK);
    assert!(front
        .body
        .contains("<caption>確認できる保証事業会社</caption>"));
    assert!(front.body.contains("href=\"/receipt/\""));
    for ((id, name, prefix, _), signer) in [HIGASHI, NISHI, KITA].iter().zip(&signers) {
        let hex = crate::common::hex::to_hex(&signer.public.bytes);
        for fact in [
            format!("<th scope=\"row\">{name}</th><td>{prefix}</td>"),
            format!("<code>{}</code>", signer.public.id),
            format!("href=\"https://{id}.example.jp/keys/\""),
            hex.clone(),
        ] {
            assert!(front.body.contains(&fact), "{fact} in {}", front.body);
        }
        assert!(
            receipt
                .body
                .contains(&format!("{}:{hex}", signer.public.id)),
            "{}",
            receipt.body
        );
    }
    let service = app.receipts.as_ref().expect("receipts").public();
    assert!(receipt
        .body
        .contains(&format!("data-service-key-id=\"{}\"", service.id)));
    // The receipt page runs its checker; the others no script.
    let csp = |a: &Answer| {
        a.headers[hyper::header::CONTENT_SECURITY_POLICY]
            .to_str()
            .map(str::to_owned)
            .unwrap_or_default()
    };
    assert!(csp(&receipt).contains("script-src 'self'"));
    assert!(csp(&front).contains("script-src 'none'"));
    let script = send(&app, Method::GET, "/verify/assets/receipt.js", None).await;
    assert_eq!(script.status, StatusCode::OK);
}
