//! One function per request (`docs/http.md`): [`route`] matches method and path, every
//! answer goes through `http::response`, so each carries the security headers, and every
//! verification outcome maps to its status and `Retry-After` in one place
//! ([`Outcome::refusal`]), whether the form or the API asked.
//!
//! `route` is generic over the request body, so tests call it in memory with a `Full` body.

use std::net::IpAddr;
use std::sync::Arc;

use hyper::header;
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;

use super::app::App;
use super::audit::{self, Line};
use super::http::{self, Body, RequestBody};
use super::limits::Limited;
use super::pages::{self, Message, STYLE_CSS, VERIFY_CSS};
use crate::preview::live;
use crate::trust::authkey;
use crate::trust::layout::certificate_file;
use crate::trust::verify::{self, unix_now, NotValid, Verified};

/// Request bodies: two short fields fit in far less.
pub(crate) const MAX_BODY: usize = 4 * 1024;

/// Answers `req`, which came over a connection from `peer`.
pub(crate) async fn route<B: RequestBody>(
    app: Arc<App>,
    req: Request<B>,
    peer: IpAddr,
) -> Response<Body> {
    if app.live.is_some() && !live::host_is_local(req.headers().get(header::HOST), app.listen) {
        // The building mode previews an unpublished site and rebuilds on request: a page
        // on another site that points its name at 127.0.0.1 (DNS rebinding) must not read it.
        return http::html(
            StatusCode::MISDIRECTED_REQUEST,
            app.pages.load().message(Message::NotFound),
        );
    }
    let client = app.proxies.client(peer, req.headers());
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let read = matches!(method, Method::GET | Method::HEAD);
    match path.as_str() {
        "/healthz" if read => healthz(&app),
        "/verify" if read => http::redirect("/verify/"),
        "/verify/" if read => {
            let number = prefilled_number(req.uri().query());
            http::html(
                StatusCode::OK,
                app.pages.load().form(false, number.as_deref()),
            )
        }
        "/verify/" if method == Method::POST => verify_form(&app, req, client).await,
        "/verify/" => not_allowed_page(&app, "GET, HEAD, POST"),
        "/api/verify" if method == Method::POST => verify_api(&app, req, client).await,
        "/api/verify" => http::with_header(
            http::json_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            header::ALLOW,
            "POST",
        ),
        "/verify/assets/style.css" if read => {
            http::response(StatusCode::OK, "text/css; charset=utf-8", STYLE_CSS)
        }
        "/verify/assets/verify.css" if read => {
            http::response(StatusCode::OK, "text/css; charset=utf-8", VERIFY_CSS)
        }
        p if read && p.starts_with("/certificates/") => certificate_pdf(&app, p).await,
        p if read && app.live.is_some() && p.starts_with(live::PREFIX) => live_route(&app, p),
        p if read => preview(&app, p).await,
        _ => not_allowed_page(&app, "GET, HEAD"),
    }
}

/// The live preview's script, style and event stream (building mode only).
fn live_route(app: &App, path: &str) -> Response<Body> {
    let Some(live) = &app.live else {
        return http::html(
            StatusCode::NOT_FOUND,
            app.pages.load().message(Message::NotFound),
        );
    };
    match &path[live::PREFIX.len()..] {
        "live.js" => http::preview_response(
            StatusCode::OK,
            "text/javascript; charset=utf-8",
            live::LIVE_JS,
        ),
        "live.css" => {
            http::preview_response(StatusCode::OK, "text/css; charset=utf-8", live::LIVE_CSS)
        }
        "events" => match live.subscribe() {
            Some(stream) => http::event_stream(stream),
            None => http::with_header(
                http::html(
                    StatusCode::SERVICE_UNAVAILABLE,
                    app.pages.load().message(Message::Busy),
                ),
                header::RETRY_AFTER,
                "5",
            ),
        },
        _ => http::html(
            StatusCode::NOT_FOUND,
            app.pages.load().message(Message::NotFound),
        ),
    }
}

/// The built site, when one is previewed.
async fn preview(app: &App, path: &str) -> Response<Body> {
    let Some(preview) = &app.preview else {
        return http::html(
            StatusCode::NOT_FOUND,
            app.pages.load().message(Message::NotFound),
        );
    };
    let (preview, path) = (Arc::clone(preview), path.to_owned());
    let live = app.live.clone();
    tokio::task::spawn_blocking(move || preview.serve(&path, live.as_deref()))
        .await
        .unwrap_or_else(|_| http::json_error(StatusCode::INTERNAL_SERVER_ERROR, "internal"))
}

fn not_allowed_page(app: &App, allow: &str) -> Response<Body> {
    let page = http::html(
        StatusCode::METHOD_NOT_ALLOWED,
        app.pages.load().message(Message::MethodNotAllowed),
    );
    http::with_header(page, header::ALLOW, allow)
}

/// The public health: status, seq and expiry, nothing that tells an outsider what others
/// are doing (the details are on the admin listener).
fn healthz(app: &App) -> Response<Body> {
    let catalog = app.catalog();
    let (expired, status) = super::gate::health(&catalog);
    let body = serde_json::json!({
        "status": if expired { "expired" } else { "ok" },
        "seq": catalog.seq(),
        "expires_at": super::gate::rfc3339(catalog.expires_at()),
    });
    http::json(status, &body)
}

/// How one verification attempt ended.
enum Outcome {
    Found(Box<Verified>, String),
    NotFound,
    Limited(Limited),
    Busy,
    Expired,
    Damaged,
}

/// How an attempt that showed no certificate is answered, by the form and the API alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Refusal {
    status: StatusCode,
    /// Seconds for `Retry-After`.
    retry_after: Option<u64>,
    /// The API's `{"error": …}`.
    code: &'static str,
}

impl Outcome {
    fn audit_label(&self) -> &'static str {
        match self {
            Outcome::Found(v, _) => v.status.code(),
            Outcome::NotFound => "not_found",
            Outcome::Limited(Limited::Address(_)) => "rate_limited_address",
            Outcome::Limited(Limited::Number(_)) => "rate_limited_number",
            Outcome::Limited(Limited::Full) => "busy",
            Outcome::Busy => "busy",
            Outcome::Expired => "expired",
            Outcome::Damaged => "damaged",
        }
    }

    /// Status, retry delay and error code of every outcome but a certificate found.
    fn refusal(&self) -> Option<Refusal> {
        let (status, retry_after, code) = match self {
            Outcome::Found(..) => return None,
            Outcome::NotFound => (StatusCode::NOT_FOUND, None, "not_found"),
            Outcome::Limited(l) => (
                StatusCode::TOO_MANY_REQUESTS,
                Some(l.retry_after()),
                "rate_limited",
            ),
            Outcome::Busy => (StatusCode::SERVICE_UNAVAILABLE, Some(1), "busy"),
            Outcome::Expired => (StatusCode::SERVICE_UNAVAILABLE, None, "manifest_expired"),
            Outcome::Damaged => (StatusCode::SERVICE_UNAVAILABLE, None, "unavailable"),
        };
        Some(Refusal {
            status,
            retry_after,
            code,
        })
    }
}

/// `r` with `Retry-After` when the refusal has one.
fn with_retry(r: Response<Body>, refusal: Refusal) -> Response<Body> {
    match refusal.retry_after {
        Some(seconds) => http::with_header(r, header::RETRY_AFTER, &seconds.to_string()),
        None => r,
    }
}

/// A client whose attempts are spent is refused before its body is read: the refusal
/// depends on its address alone, so a flood costs the daemon no body and no parse. Counted
/// and tallied as [`attempt`] does.
fn refused_at_once(app: &App, client: IpAddr) -> Option<Outcome> {
    let started = std::time::Instant::now();
    let limited = app.limiter.attempts_spent(client)?;
    let outcome = Outcome::Limited(limited);
    let label = outcome.audit_label();
    app.metrics.observe(label, started.elapsed());
    app.audit.tally(client, label);
    Some(outcome)
}

/// Limits first, then the KDF on the pool. Every attempt is audited (never the key): one
/// that reached the KDF on a line of its own, one refused before it counted per minute.
async fn attempt(app: &Arc<App>, client: IpAddr, number: &str, key: &str) -> Outcome {
    let started = std::time::Instant::now();
    let normalised = authkey::normalise_number(number).ok();
    let (outcome, checked) = decide(app, client, normalised.as_deref(), number, key).await;
    let label = outcome.audit_label();
    app.metrics.observe(label, started.elapsed());
    if checked {
        app.audit.record(&Line {
            time: audit::now_rfc3339(),
            client: client.to_canonical().to_string(),
            number: normalised.as_deref(),
            outcome: label,
        });
    } else {
        app.audit.tally(client, label);
    }
    outcome
}

/// How the attempt ended, and whether a key was checked (the KDF ran).
async fn decide(
    app: &Arc<App>,
    client: IpAddr,
    normalised: Option<&str>,
    number: &str,
    key: &str,
) -> (Outcome, bool) {
    let now = unix_now();
    // The manifest this attempt is checked against, held until it is done.
    let catalog = app.catalog();
    if catalog.expired(now) {
        return (Outcome::Expired, false);
    }
    // A key that is no key cannot be right: it spends an attempt, reserves no failure, and
    // never reaches the KDF.
    let key_is_well_formed = authkey::normalise_key(key).is_ok();
    let counted = normalised.filter(|_| key_is_well_formed);
    let admission = match app.limiter.admit(client, counted).await {
        Ok(admission) => admission,
        Err(Limited::Full) => return (Outcome::Busy, false),
        Err(limited) => return (Outcome::Limited(limited), false),
    };
    if counted.is_none() {
        return (Outcome::NotFound, false);
    }
    let (number, key) = (number.to_owned(), key.to_owned());
    let (for_job, attempt) = (Arc::clone(app), admission.clone());
    // Checked only in time: once the attempt's hold has run out, the network may have been
    // let in again (docs/http.md, "Limits"), and this would be a second guess.
    let job = move || {
        let in_time = for_job.limiter.in_time(&attempt);
        in_time.then(|| verify::check(&catalog, &catalog.dir, &number, &key, now))
    };
    let checked = app.pool.run(job).await.ok().flatten();
    if matches!(checked, Some(Err(NotValid::NoMatch))) {
        app.limiter.failed(&admission).await;
    } else {
        app.limiter.release(&admission).await;
    }
    let Some(checked) = checked else {
        return (Outcome::Busy, false);
    };
    let outcome = match checked {
        Ok(v) => match app.tokens.issue(&v.number) {
            Some(token) => Outcome::Found(Box::new(v), token),
            None => Outcome::Busy,
        },
        Err(NotValid::NoMatch) => Outcome::NotFound,
        Err(NotValid::Expired) => Outcome::Expired,
        Err(e @ (NotValid::Tampered | NotValid::Manifest(_))) => {
            tracing::error!(number = normalised, error = %e, "vault のファイルが署名付きマニフェストと一致しません");
            Outcome::Damaged
        }
    };
    (outcome, true)
}

fn pdf_url(token: &str) -> String {
    format!("/certificates/{token}")
}

#[derive(Deserialize)]
pub(crate) struct ApiRequest<'a> {
    #[serde(borrow)]
    pub(crate) number: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    pub(crate) key: std::borrow::Cow<'a, str>,
}

async fn verify_api<B: RequestBody>(
    app: &Arc<App>,
    req: Request<B>,
    client: IpAddr,
) -> Response<Body> {
    if !http::content_type_is(&req, "application/json") {
        return http::json_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    }
    let outcome = match refused_at_once(app, client) {
        Some(outcome) => outcome,
        None => {
            let body = match http::read_body(req, MAX_BODY, app.body_timeout).await {
                Ok(b) => b,
                Err(e) => return http::json_error(e.status(), e.code()),
            };
            let Some(request) = api_fields(&body) else {
                return http::json_error(StatusCode::BAD_REQUEST, "bad_request");
            };
            attempt(app, client, &request.number, &request.key).await
        }
    };
    let Some(refusal) = outcome.refusal() else {
        let Outcome::Found(v, token) = outcome else {
            return http::json_error(StatusCode::INTERNAL_SERVER_ERROR, "internal");
        };
        return http::json(StatusCode::OK, &api_certificate(app, &v, &token));
    };
    // Written out rather than through serde_json: a flood of refusals is the hot path.
    let body = match refusal.retry_after {
        Some(seconds) if refusal.status == StatusCode::TOO_MANY_REQUESTS => {
            format!(
                "{{\"error\":\"{}\",\"retry_after\":{seconds}}}\n",
                refusal.code
            )
        }
        _ => format!("{{\"error\":\"{}\"}}\n", refusal.code),
    };
    let answer = http::response(refusal.status, "application/json", body);
    with_retry(answer, refusal)
}

/// The API's answer for a certificate found: every field of its record, raw.
fn api_certificate(app: &App, v: &Verified, token: &str) -> serde_json::Value {
    let mut certificate = serde_json::to_value(&v.record).unwrap_or_default();
    if let Some(fields) = certificate.as_object_mut() {
        fields.remove("format");
        let ended = v.record.period_ended(pages::today_in_japan());
        fields.insert("period_ended".into(), ended.into());
    }
    serde_json::json!({
        "status": v.status,
        "certificate": certificate,
        "pdf": pdf_url(token),
        "manifest": {"seq": v.seq, "sha256": app.catalog().sha256()},
    })
}

/// The 保証契約番号 of `/verify/?number=…` (the link in the notice's QR code), normalised;
/// anything that is not a number is ignored. A key in the query is never read.
pub(crate) fn prefilled_number(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(name, _)| name == "number")
        .and_then(|(_, value)| authkey::normalise_number(&value).ok())
}

/// The number and key of a `POST /api/verify` body, borrowed from it where no escape
/// needs decoding.
pub(crate) fn api_fields(body: &[u8]) -> Option<ApiRequest<'_>> {
    serde_json::from_slice(body).ok()
}

/// The number and key of a form post (other fields are ignored).
pub(crate) fn form_fields(body: &[u8]) -> (String, String) {
    let (mut number, mut key) = (String::new(), String::new());
    for (name, value) in form_urlencoded::parse(body) {
        match name.as_ref() {
            "number" => number = value.into_owned(),
            "key" => key = value.into_owned(),
            _ => {}
        }
    }
    (number, key)
}

/// Whether a form post comes from a page of another site. Browsers say where a request
/// comes from in `Sec-Fetch-Site` (or, older ones, in `Origin`): a page elsewhere must not be
/// able to make its visitors' browsers guess keys. Programs that send neither are the API's
/// business and are let through to the same limits.
fn cross_site<B>(req: &Request<B>) -> bool {
    let headers = req.headers();
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &header::HeaderValue| v.to_str().ok())
    };
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site")) {
        return !matches!(site, "same-origin" | "none");
    }
    let Some(origin) = text(header::ORIGIN) else {
        return false;
    };
    let origin_host = origin
        .split_once("://")
        .map(|(_, rest)| rest.trim_end_matches('/'));
    origin_host.is_none() || origin_host != text(header::HOST)
}

async fn verify_form<B: RequestBody>(
    app: &Arc<App>,
    req: Request<B>,
    client: IpAddr,
) -> Response<Body> {
    let bad =
        |status: StatusCode| http::html(status, app.pages.load().message(Message::BadRequest));
    if cross_site(&req) {
        return http::html(
            StatusCode::FORBIDDEN,
            app.pages.load().message(Message::CrossSite),
        );
    }
    if !http::content_type_is(&req, "application/x-www-form-urlencoded") {
        return bad(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
    let (outcome, number) = match refused_at_once(app, client) {
        Some(outcome) => (outcome, String::new()),
        None => {
            let body = match http::read_body(req, MAX_BODY, app.body_timeout).await {
                Ok(b) => b,
                Err(e) => return bad(e.status()),
            };
            let (number, key) = form_fields(&body);
            (attempt(app, client, &number, &key).await, number)
        }
    };
    let Some(refusal) = outcome.refusal() else {
        let Outcome::Found(v, token) = outcome else {
            return bad(StatusCode::INTERNAL_SERVER_ERROR);
        };
        let page = app.pages.load().certificate(
            &v,
            &pdf_url(&token),
            app.tokens.ttl().as_secs().div_ceil(60),
            pages::today_in_japan(),
            &pages::now_in_japan_text(),
        );
        return http::html(StatusCode::OK, page);
    };
    let page = match outcome {
        // The number stays in its field, so that only the key is typed again.
        Outcome::NotFound => app.pages.load().form(true, Some(&number_as_typed(&number))),
        Outcome::Limited(l) => app
            .pages
            .load()
            .message(Message::RateLimited(l.retry_after())),
        Outcome::Busy => app.pages.load().message(Message::Busy),
        Outcome::Expired => app.pages.load().message(Message::Expired),
        Outcome::Damaged | Outcome::Found(..) => app.pages.load().message(Message::Damaged),
    };
    with_retry(http::html(refusal.status, page), refusal)
}

/// A typed 保証契約番号 to fill the form with again: folded to its ten digits when it is one,
/// else as typed (at most the field's 40 characters).
fn number_as_typed(typed: &str) -> String {
    authkey::normalise_number(typed).unwrap_or_else(|_| typed.trim().chars().take(40).collect())
}

/// `GET /certificates/<token>`: the PDF of the number the token was issued for, re-hashed
/// against the current manifest before a byte is sent.
async fn certificate_pdf(app: &Arc<App>, path: &str) -> Response<Body> {
    let message = |status, m| http::html(status, app.pages.load().message(m));
    let token = path.trim_start_matches("/certificates/");
    let Some(number) = app.tokens.number(token) else {
        return message(StatusCode::NOT_FOUND, Message::LinkExpired);
    };
    let catalog = app.catalog();
    if catalog.expired(unix_now()) {
        return message(StatusCode::SERVICE_UNAVAILABLE, Message::Expired);
    }
    let Some(entry) = catalog.entry(&number) else {
        return message(StatusCode::NOT_FOUND, Message::LinkExpired);
    };
    let file = catalog.dir.join(certificate_file(&entry.number));
    let sha256 = entry.pdf_sha256.clone();
    let bytes = tokio::task::spawn_blocking(move || verify::read_pdf(&file, &sha256))
        .await
        .ok()
        .flatten();
    let Some(bytes) = bytes else {
        tracing::error!(number = %entry.number, "証書の PDF が署名付きマニフェストと一致しないため、送りませんでした");
        return message(StatusCode::SERVICE_UNAVAILABLE, Message::Damaged);
    };
    let r = http::response(StatusCode::OK, "application/pdf", bytes);
    let disposition = format!("inline; filename=\"certificate-{}.pdf\"", entry.number);
    http::with_header(r, header::CONTENT_DISPOSITION, &disposition)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use clap::Parser;
    use http_body_util::{BodyExt, Full};
    use hyper::body::Bytes;
    use hyper::HeaderMap;

    use super::*;
    use crate::cli::{Cli, Command};
    use crate::daemon::Options;
    use crate::trust::keys::TrustedKeys;
    use crate::trust::testing::write_vault;

    fn options(root: &Path, extra: &[&str]) -> Options {
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
        let trusted = TrustedKeys::load(&options.paths.keys, &options.public_keys).expect("keys");
        let (app, _gate) = App::new(&options, trusted).expect("app");
        (dir, Arc::new(app))
    }

    struct Answer {
        status: StatusCode,
        headers: HeaderMap,
        body: String,
    }

    async fn send(
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

    async fn api(app: &Arc<App>, number: &str, key: &str) -> Answer {
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
        let sha256 = app.catalog().catalog.sha256().to_owned();
        let seq = app.catalog().catalog.seq();
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
            "hosho_manifest_seq 5",
            "hosho_manifest_entries 3",
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
        assert_eq!(
            refusal(Outcome::Expired),
            Some((503, None, "manifest_expired"))
        );
        assert_eq!(refusal(Outcome::Damaged), Some((503, None, "unavailable")));
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
}
