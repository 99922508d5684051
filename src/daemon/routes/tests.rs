//! The routes called in-process with built requests (the form, the API, the PDF, limits,
//! proxies and methods) against a test vault. The same over a real socket, with the real
//! binary, is in `tests/testsuite/daemon.rs`.

use std::path::Path;

use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::HeaderMap;

use super::*;
use crate::cli::{Cli, Command};
use crate::daemon::Options;
use crate::trust::testing::write_vault;

pub(super) fn options(root: &Path, extra: &[&str]) -> Options {
    let root = root.to_string_lossy().into_owned();
    let mut args = vec!["hosho", "serve", "--no-build", "--root", &root];
    args.extend(["--min-kdf-iterations", "1000"]);
    args.extend(extra);
    match Cli::try_parse_from(args).expect("arguments").command {
        Command::Serve(serve) => Options::from(*serve),
        other => panic!("not serve: {other:?}"),
    }
}

/// An app on a fresh signed test vault, as `hosho serve --no-build` builds it.
fn app(extra: &[&str]) -> (tempfile::TempDir, Arc<App>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    write_vault(&root.join("vault"), &root.join("keys"), 5, 2_000_000_000);
    let options = options(root, extra);
    let app = App::new(&options).expect("app");
    (dir, Arc::new(app))
}

pub(super) struct Answer {
    pub(super) status: StatusCode,
    pub(super) headers: HeaderMap,
    pub(super) body: String,
}

pub(super) async fn send(
    app: &Arc<App>,
    method: Method,
    path: &str,
    form: Option<(&str, &str)>,
) -> Answer {
    send_with(app, method, path, form, &[]).await
}

async fn send_with(
    app: &Arc<App>,
    method: Method,
    path: &str,
    form: Option<(&str, &str)>,
    headers: &[(&str, &str)],
) -> Answer {
    send_from(app, "192.0.2.1", method, path, form, headers).await
}

/// A request over a connection from `peer`.
async fn send_from(
    app: &Arc<App>,
    peer: &str,
    method: Method,
    path: &str,
    form: Option<(&str, &str)>,
    headers: &[(&str, &str)],
) -> Answer {
    let mut req = Request::builder().method(method).uri(path);
    let mut body = String::new();
    if let Some((content_type, text)) = form {
        req = req.header(header::CONTENT_TYPE, content_type);
        body = text.to_owned();
    }
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let req = req.body(Full::new(Bytes::from(body))).expect("request");
    let peer: IpAddr = peer.parse().expect("ip");
    let (parts, body) = route(Arc::clone(app), req, peer).await.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

pub(super) async fn api(app: &Arc<App>, number: &str, key: &str) -> Answer {
    let body = serde_json::json!({"number": number, "key": key}).to_string();
    send(
        app,
        Method::POST,
        "/api/verify",
        Some(("application/json", &body)),
    )
    .await
}

#[tokio::test]
async fn the_api_shows_a_certificate_and_its_pdf() {
    let (_dir, app) = app(&[]);
    let found = api(&app, "２０７０００４４２７", "7m4k-2p9q-rs").await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.body);
    let json: serde_json::Value = serde_json::from_str(&found.body).expect("json");
    assert_eq!(json["status"], "changed");
    assert_eq!(json["certificate"]["number"], "2070004427");
    assert_eq!(json["certificate"]["current"]["amount"], 45_000_000);
    assert_eq!(json["certificate"]["period_ended"], false);
    assert!(json["certificate"].get("format").is_none());
    assert_eq!(json["manifest"]["seq"], 5);
    let pdf = json["pdf"].as_str().expect("pdf link");
    let got = send(&app, Method::GET, pdf, None).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.headers[header::CONTENT_TYPE], "application/pdf");
    assert_eq!(got.body, "%PDF-1.7 test certificate 2070004427");
    let gone = send(&app, Method::GET, "/certificates/nosuchtoken", None).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

/// Waits until `n` jobs are admitted to the KDF pool (running or queued).
async fn pool_holds(app: &App, n: usize) {
    for _ in 0..500 {
        if app.pool.in_use() == n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the pool never held {n} jobs");
}

/// `api` for an attempt that reaches the KDF 25 s after it was let in: the pool's one
/// worker is busy meanwhile, and the limiter's clock is moved on.
async fn api_late(app: &Arc<App>, number: &str, key: &str) -> Answer {
    let (release, wait) = std::sync::mpsc::channel::<()>();
    let blocker = Arc::clone(app);
    let busy = tokio::spawn(async move { blocker.pool.run(move || wait.recv()).await });
    pool_holds(app, 1).await;
    let (asker, number, key) = (Arc::clone(app), number.to_owned(), key.to_owned());
    let late = tokio::spawn(async move { api(&asker, &number, &key).await });
    pool_holds(app, 2).await;
    app.limiter.move_clock(25_000);
    release.send(()).expect("release");
    let late = late.await.expect("answer");
    assert!(busy.await.expect("blocker").is_ok());
    late
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_checked_too_late_is_not_answered() {
    let limits = ["--kdf-workers", "1", "--limit-failures", "1/day+1"];
    let (_dir, app) = app(&limits);
    let late = api_late(&app, "2070004427", "7m4k-2p9q-rs").await;
    assert_eq!(
        late.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        late.body
    );
    assert_eq!(late.body, "{\"error\":\"busy\"}\n");
    assert_eq!(late.headers[header::RETRY_AFTER], "1");
    // Asked again, it is answered in time.
    let again = api(&app, "2070004427", "7m4k-2p9q-rs").await;
    assert_eq!(again.status, StatusCode::OK);
    // A wrong key that came too late was not checked at all: the network's one wrong
    // key a day is still whole for the next.
    let late = api_late(&app, "2070004427", "0000000000").await;
    assert_eq!(late.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        api(&app, "2070004427", "0000000000").await.status,
        StatusCode::NOT_FOUND
    );
    let spent = api(&app, "2070004427", "0000000000").await;
    assert_eq!(spent.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_wrong_key_and_an_unknown_number_look_the_same() {
    let (_dir, app) = app(&[]);
    let wrong = api(&app, "2070004426", "332E1E7K9R").await;
    let unknown = api(&app, "2070009999", "332E1E7K9Q").await;
    assert_eq!(
        (wrong.status, unknown.status),
        (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND)
    );
    assert_eq!(wrong.body, "{\"error\":\"not_found\"}\n");
    assert_eq!(wrong.body, unknown.body);
    let form = |n: &str| format!("number={n}&key=332E1E7K9R");
    let ct = "application/x-www-form-urlencoded";
    let a = send(
        &app,
        Method::POST,
        "/verify/",
        Some((ct, &form("2070004426"))),
    )
    .await;
    let b = send(
        &app,
        Method::POST,
        "/verify/",
        Some((ct, &form("2070009999"))),
    )
    .await;
    assert_eq!(
        (a.status, a.body.len()),
        (StatusCode::NOT_FOUND, b.body.len())
    );
    // One page but for the number typed, which stays in its field.
    assert_eq!(
        a.body.replace("2070004426", "…"),
        b.body.replace("2070009999", "…")
    );
}

#[tokio::test]
async fn the_form_shows_the_certificate_page() {
    let (_dir, app) = app(&[]);
    let ct = "application/x-www-form-urlencoded";
    let body = "number=2070004428&key=A1B2C3D4E5";
    let page = send(&app, Method::POST, "/verify/", Some((ct, body))).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("2070004428") && page.body.contains("解除"),
        "{}",
        page.body
    );
    let json = send(
        &app,
        Method::POST,
        "/verify/",
        Some(("application/json", "{}")),
    )
    .await;
    assert_eq!(json.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let big = "x".repeat(MAX_BODY + 1);
    let too_large = send(&app, Method::POST, "/verify/", Some((ct, &big))).await;
    assert_eq!(too_large.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn the_certificate_page_carries_a_record_of_the_check() {
    let (_dir, app) = app(&[]);
    let ct = "application/x-www-form-urlencoded";
    let body = "number=2070004428&key=A1B2C3D4E5";
    let page = send(&app, Method::POST, "/verify/", Some((ct, body))).await;
    assert_eq!(page.status, StatusCode::OK);
    let served = app.platform.gates()[0].served().expect("served");
    let (sha256, seq) = (served.sha256().to_owned(), served.seq());
    // The test vault's manifest was signed at 1,700,000,000 s: 2023-11-15 in Japan.
    for fact in [
        "確認記録",
        "（日本時間）",
        "電子署名した最新の記録（令和5年11月15日発行）と照合したもの",
        &format!("通し番号　{seq}"),
        &sha256,
        "保証証書ではありません</strong>。",
        "http://localhost/verify/",
    ] {
        assert!(page.body.contains(fact), "{fact} missing: {}", page.body);
    }
}

#[tokio::test]
async fn the_qr_link_fills_in_the_number_and_nothing_else() {
    let (_dir, app) = app(&[]);
    let input = |body: &str| {
        let start = body.find("<input id=\"number\"").expect("number field");
        body[start..]
            .split('>')
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    let page = send(&app, Method::GET, "/verify/?number=2070004426", None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        input(&page.body).contains("value=\"2070004426\""),
        "{}",
        page.body
    );
    // Full-width digits are folded as the form folds them.
    let wide = send(
        &app,
        Method::GET,
        "/verify/?number=%EF%BC%92070004426",
        None,
    )
    .await;
    assert!(input(&wide.body).contains("value=\"2070004426\""));
    // Anything else is ignored, and a key in the link is never shown.
    for query in [
        "number=%22%3E%3Cscript%3E",
        "number=20700044",
        "key=332E1E7K9Q&number=",
    ] {
        let page = send(&app, Method::GET, &format!("/verify/?{query}"), None).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(!input(&page.body).contains("value="), "{query}");
        assert!(!page.body.contains("332E1E7K9Q") && !page.body.contains("<script"));
    }
}

#[tokio::test]
async fn limits_answer_429_with_retry_after_on_both_paths() {
    let (_dir, app) = app(&["--limit-number", "2/day+2"]);
    for _ in 0..2 {
        assert_eq!(
            api(&app, "2070004426", "332E1E7K9R").await.status,
            StatusCode::NOT_FOUND
        );
    }
    let limited = api(&app, "2070004426", "332E1E7K9Q").await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = limited.headers[header::RETRY_AFTER]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(retry > 40_000 && retry <= 43_200, "{retry}");
    let json: serde_json::Value = serde_json::from_str(&limited.body).expect("json");
    assert_eq!(
        (json["error"].as_str(), json["retry_after"].as_u64()),
        (Some("rate_limited"), Some(retry))
    );
    let ct = "application/x-www-form-urlencoded";
    let page = send(
        &app,
        Method::POST,
        "/verify/",
        Some((ct, "number=2070004426&key=332E1E7K9R")),
    )
    .await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        page.headers[header::RETRY_AFTER],
        retry.to_string().as_str()
    );
    // The page says the wait Retry-After says, in hours and minutes.
    let minutes = retry.div_ceil(60);
    let wait = match minutes % 60 {
        0 => format!("約{}時間後", minutes / 60),
        m => format!("約{}時間{m}分後", minutes / 60),
    };
    assert!(page.body.contains(&wait), "{wait}: {}", page.body);
    assert!(page.body.contains("受注者"), "whom to ask next");
}

#[tokio::test]
async fn form_posts_from_other_sites_are_refused() {
    let (_dir, app) = app(&[]);
    let form = Some((
        "application/x-www-form-urlencoded",
        "number=2070004426&key=332E1E7K9Q",
    ));
    let post = |headers: &'static [(&'static str, &'static str)]| {
        send_with(&app, Method::POST, "/verify/", form, headers)
    };
    for headers in [
        &[("sec-fetch-site", "cross-site")][..],
        &[("sec-fetch-site", "same-site")],
        &[
            ("origin", "https://evil.example"),
            ("host", "hosho.example.jp"),
        ],
        &[("origin", "null"), ("host", "hosho.example.jp")],
    ] {
        let refused = post(headers).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{headers:?}");
        assert!(refused.body.contains("ほかのサイト"), "{}", refused.body);
    }
    for headers in [
        &[("sec-fetch-site", "same-origin")][..],
        &[
            ("origin", "https://hosho.example.jp"),
            ("host", "hosho.example.jp"),
        ],
        &[],
    ] {
        assert_eq!(post(headers).await.status, StatusCode::OK, "{headers:?}");
    }
    // No page of this daemon may run a script.
    let page = send(&app, Method::GET, "/verify/", None).await;
    let csp = page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .expect("ascii");
    assert!(csp.contains("script-src 'none'"), "{csp}");
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_budget() {
    let (dir, owned) = app(&["--trusted-proxy", "127.0.0.1", "--limit-address", "1/day+1"]);
    let app = &owned;
    let body = "{\"number\": \"2070004426\", \"key\": \"332E1E7K9R\"}";
    let json = Some(("application/json", body));
    let from = |peer: &'static str, forwarded: &'static str| async move {
        let headers = [("x-forwarded-for", forwarded)];
        send_from(app, peer, Method::POST, "/api/verify", json, &headers).await
    };
    assert_eq!(
        from("127.0.0.1", "198.51.100.1").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        from("127.0.0.1", "198.51.100.1").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Another client behind the same proxy: its own budget.
    assert_eq!(
        from("127.0.0.1", "198.51.100.2").await.status,
        StatusCode::NOT_FOUND
    );
    // A client that is no proxy cannot choose its address by a header.
    assert_eq!(
        from("203.0.113.9", "198.51.100.3").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        from("203.0.113.9", "198.51.100.4").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    app.close();
    let audit = std::fs::read_to_string(dir.path().join("state/audit.jsonl")).expect("audit");
    assert!(audit.contains("\"client\":\"198.51.100.1\""), "{audit}");
    assert!(audit.contains("\"client\":\"203.0.113.9\""), "{audit}");
    assert!(
        !audit.contains("198.51.100.3") && !audit.contains("\"client\":\"127.0.0.1\""),
        "{audit}"
    );
}

#[tokio::test]
async fn the_admin_listener_has_the_metrics_and_the_details() {
    let (_dir, app) = app(&[]);
    api(&app, "2070004426", "332E1E7K9R").await;
    api(&app, "2070004426", "332E1E7K9Q").await;
    let get = |path: &str| {
        let req = Request::get(path).body(()).expect("request");
        super::super::admin::route(&app, &req)
    };
    let metrics = get("/metrics");
    assert_eq!(metrics.status(), StatusCode::OK);
    let text = String::from_utf8_lossy(
        &metrics
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes(),
    )
    .into_owned();
    for line in [
        "hosho_verifications_total{outcome=\"not_found\"} 1",
        "hosho_verifications_total{outcome=\"valid\"} 1",
        "hosho_verification_seconds_count 2",
        "hosho_manifest_seq{issuer=\"default\"} 5",
        "hosho_manifest_entries{issuer=\"default\"} 3",
        "hosho_issuer_in_service{issuer=\"default\"} 1",
        "hosho_limiter_keys 4",
        "hosho_limiter_full_refusals_total 0",
        "hosho_audit_dropped_lines_total 0",
    ] {
        assert!(text.contains(line), "{line} in {text}");
    }
    let health = get("/healthz")
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&health).expect("json");
    assert_eq!(
        (
            json["entries"].as_u64(),
            json["kdf_pool"]["workers"].is_u64()
        ),
        (Some(3), true)
    );
    assert_eq!(get("/nothing").status(), StatusCode::NOT_FOUND);
}

#[test]
fn every_outcome_has_one_status_and_retry_delay() {
    let refusal = |o: Outcome| {
        o.refusal()
            .map(|r| (r.status.as_u16(), r.retry_after, r.code))
    };
    let limited = Outcome::Limited(Limited::Number(std::time::Duration::from_millis(2500)));
    assert_eq!(refusal(limited), Some((429, Some(3), "rate_limited")));
    assert_eq!(refusal(Outcome::Busy), Some((503, Some(1), "busy")));
    assert_eq!(refusal(Outcome::NotFound), Some((404, None, "not_found")));
    let (_dir, app) = app(&[]);
    let gate = || Arc::clone(&app.platform.gates()[0]);
    assert_eq!(
        refusal(Outcome::Expired(gate())),
        Some((503, None, "manifest_expired"))
    );
    assert_eq!(
        refusal(Outcome::OutOfService(gate())),
        Some((503, None, "out_of_service"))
    );
    assert_eq!(
        refusal(Outcome::Damaged(gate())),
        Some((503, None, "unavailable"))
    );
}

#[tokio::test]
async fn methods_paths_and_headers() {
    let (_dir, app) = app(&[]);
    let health = send(&app, Method::GET, "/healthz", None).await;
    assert_eq!(health.status, StatusCode::OK);
    let json: serde_json::Value = serde_json::from_str(&health.body).expect("json");
    // Status, seq and expiry only: nothing about what others are doing.
    let keys: Vec<&str> = json
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["expires_at", "seq", "status"]);
    assert_eq!(
        (json["status"].as_str(), json["seq"].as_u64()),
        (Some("ok"), Some(5))
    );
    let redirect = send(&app, Method::GET, "/verify", None).await;
    assert_eq!(redirect.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(redirect.headers[header::LOCATION], "/verify/");
    let put = send(&app, Method::PUT, "/verify/", None).await;
    assert_eq!(put.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(put.headers[header::ALLOW], "GET, HEAD, POST");
    let get_api = send(&app, Method::GET, "/api/verify", None).await;
    assert_eq!(get_api.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(get_api.headers[header::ALLOW], "POST");
    let delete = send(&app, Method::DELETE, "/", None).await;
    assert_eq!(delete.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(delete.headers[header::ALLOW], "GET, HEAD");
    // No site is previewed here: a 404 page.
    assert_eq!(
        send(&app, Method::GET, "/qa/", None).await.status,
        StatusCode::NOT_FOUND
    );
    for answer in [health, redirect, put, get_api, delete] {
        assert_eq!(answer.headers[header::CACHE_CONTROL], "no-store");
        assert_eq!(answer.headers[header::REFERRER_POLICY], "no-referrer");
        assert_eq!(answer.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(answer.headers[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(answer.headers[header::CONTENT_SECURITY_POLICY], http::CSP);
    }
}

#[test]
fn serve_options_work_out_their_defaults() {
    let root = Path::new("/srv/hosho");
    let o = options(root, &["--kdf-workers", "3"]);
    assert_eq!(
        (o.kdf_workers, o.kdf_queue),
        (3, 48),
        "16 waiting per worker"
    );
    let o = options(root, &["--kdf-workers", "3", "--kdf-queue", "5"]);
    assert_eq!((o.kdf_workers, o.kdf_queue), (3, 5));
    let o = options(root, &[]);
    assert_eq!(o.kdf_queue, o.kdf_workers * 16);
    assert_eq!(o.paths.vault, root.join("vault"));
    assert_eq!(o.paths.out, root.join("site-out"));
    assert_eq!(o.state_dir, root.join("state"));
    assert_eq!(o.paths.keys, root.join("keys"));
    assert!(!o.build);
    let o = options(root, &["--keys", "/etc/hosho", "--vault", "/var/vault"]);
    assert_eq!(
        (o.paths.keys.as_path(), o.paths.vault.as_path()),
        (Path::new("/etc/hosho"), Path::new("/var/vault"))
    );
}
