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
use super::gate::{Gate, Served};
use super::http::{self, Body, RequestBody};
use super::limits::Limited;
use super::pages::{self, Message, RECEIPT_JS, STYLE_CSS, VERIFY_CSS};
use super::receipts::Made;
use crate::preview::live;
use crate::trust::authkey;
use crate::trust::issuers::Issuer;
use crate::trust::layout::certificate_file;
use crate::trust::verify::{self, unix_now, NotValid, Typed, Verified};

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
        "/verify/assets/receipt.js" if read => {
            http::response(StatusCode::OK, "text/javascript; charset=utf-8", RECEIPT_JS)
        }
        "/" | "/receipt/" if read && app.platform.named => platform_page(&app, &path),
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

/// A platform's front page (its guarantors, their keys) or its receipt page.
fn platform_page(app: &App, path: &str) -> Response<Body> {
    let service = app.receipts.as_ref().map(|r| r.public());
    let view = app.platform.view(service, unix_now());
    match path == "/receipt/" {
        true => http::html_with_script(StatusCode::OK, app.pages.load().platform(&view, true)),
        false => http::html(StatusCode::OK, app.pages.load().platform(&view, false)),
    }
}

fn not_allowed_page(app: &App, allow: &str) -> Response<Body> {
    let page = http::html(
        StatusCode::METHOD_NOT_ALLOWED,
        app.pages.load().message(Message::MethodNotAllowed),
    );
    http::with_header(page, header::ALLOW, allow)
}

/// The public health: status, seq and expiry (each guarantor's on a platform), nothing that
/// tells an outsider what others are doing (the details are on the admin listener).
fn healthz(app: &App) -> Response<Body> {
    let (status, body) = super::admin::health_of(app, false);
    http::json(status, &body)
}

/// A certificate shown: what checked out, against which guarantor's manifest, its PDF
/// link's token, and its receipt.
struct Shown {
    verified: Verified,
    gate: Arc<Gate>,
    served: Arc<Served>,
    token: String,
    receipt: Option<Made>,
}

/// How one verification attempt ended; a guarantor's outage names the guarantor.
enum Outcome {
    Found(Box<Shown>),
    NotFound,
    Limited(Limited),
    Busy,
    Expired(Arc<Gate>),
    /// The guarantor has no manifest in service (its start failed closed).
    OutOfService(Arc<Gate>),
    Damaged(Arc<Gate>),
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
            Outcome::Found(shown) => shown.verified.status.code(),
            Outcome::NotFound => "not_found",
            Outcome::Limited(Limited::Address(_)) => "rate_limited_address",
            Outcome::Limited(Limited::Number(_)) => "rate_limited_number",
            Outcome::Limited(Limited::Full) => "busy",
            Outcome::Busy => "busy",
            Outcome::Expired(..) => "expired",
            Outcome::OutOfService(..) => "out_of_service",
            Outcome::Damaged(..) => "damaged",
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
            Outcome::Expired(..) => (StatusCode::SERVICE_UNAVAILABLE, None, "manifest_expired"),
            Outcome::OutOfService(..) => (StatusCode::SERVICE_UNAVAILABLE, None, "out_of_service"),
            Outcome::Damaged(..) => (StatusCode::SERVICE_UNAVAILABLE, None, "unavailable"),
        };
        Some(Refusal {
            status,
            retry_after,
            code,
        })
    }

    /// The guarantor an outage belongs to.
    fn gate(&self) -> Option<&Gate> {
        match self {
            Outcome::Expired(g) | Outcome::OutOfService(g) | Outcome::Damaged(g) => Some(g),
            Outcome::Found(shown) => Some(&shown.gate),
            _ => None,
        }
    }
}

/// The guarantor as the pages and answers name it: on a platform only (a daemon of one
/// guarantor speaks as that guarantor, 「当社」).
fn named<'g>(app: &App, gate: Option<&'g Gate>) -> Option<&'g Issuer> {
    gate.filter(|_| app.platform.named).map(|g| &g.issuer)
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
async fn attempt(app: &Arc<App>, client: IpAddr, typed: Typed) -> Outcome {
    let started = std::time::Instant::now();
    let number = typed.number.clone();
    let (outcome, checked) = decide(app, client, typed).await;
    let label = outcome.audit_label();
    app.metrics.observe(label, started.elapsed());
    if checked {
        app.audit.record(&Line {
            time: audit::now_rfc3339(),
            client: client.to_canonical().to_string(),
            number: number.as_deref(),
            outcome: label,
        });
    } else {
        app.audit.tally(client, label);
    }
    outcome
}

/// The number's guarantor (none for a number in no guarantor's space) and the manifest the
/// key is checked against.
type Destination = (Option<Arc<Gate>>, Option<Arc<Served>>);

/// The guarantor an attempt goes to and the manifest its key is checked against: the
/// number's guarantor (an outage of it ends the attempt here); for a number in no
/// guarantor's space, any manifest in service, so that the answer costs what a wrong key
/// costs.
fn destination(app: &App, typed: &Typed, now: u64) -> Result<Destination, Outcome> {
    let gate = match typed.number.as_deref() {
        Some(number) => app.platform.gate_of(number),
        None => app.platform.single(),
    };
    let Some(gate) = gate else {
        let any = app.platform.any_served().filter(|s| !s.expired(now));
        return Ok((None, any));
    };
    match gate.served() {
        None => Err(Outcome::OutOfService(Arc::clone(gate))),
        Some(served) if served.expired(now) => Err(Outcome::Expired(Arc::clone(gate))),
        Some(served) => Ok((Some(Arc::clone(gate)), Some(served))),
    }
}

/// How the attempt ended, and whether a key was checked (the KDF ran).
async fn decide(app: &Arc<App>, client: IpAddr, typed: Typed) -> (Outcome, bool) {
    let now = unix_now();
    // The manifest this attempt is checked against, held until it is done.
    let (gate, served) = match destination(app, &typed, now) {
        Ok(found) => found,
        Err(outage) => return (outage, false),
    };
    // A key that is no key cannot be right: it spends an attempt, reserves no failure, and
    // never reaches the KDF.
    let counted = typed.both().map(|(number, _)| number);
    let admission = match app.limiter.admit(client, counted).await {
        Ok(admission) => admission,
        Err(Limited::Full) => return (Outcome::Busy, false),
        Err(limited) => return (Outcome::Limited(limited), false),
    };
    if counted.is_none() {
        return (Outcome::NotFound, false);
    }
    let number = typed.number.clone();
    let (for_job, attempt, catalog) = (Arc::clone(app), admission.clone(), served.clone());
    // Checked only in time: once the attempt's hold has run out, the network may have been
    // let in again (docs/http.md, "Limits"), and this would be a second guess.
    let job = move || {
        let in_time = for_job.limiter.in_time(&attempt);
        in_time.then(|| match &catalog {
            Some(catalog) => verify::check(catalog, &catalog.dir, &typed),
            None => Err(NotValid::NoMatch),
        })
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
    let outcome = match (checked, gate.zip(served)) {
        (Ok(v), Some((gate, served))) => found(app, v, gate, served, now),
        (Err(NotValid::Expired), Some((gate, _))) => Outcome::Expired(gate),
        (Err(e @ (NotValid::Tampered | NotValid::Manifest(_))), Some((gate, _))) => {
            tracing::error!(issuer = %gate.issuer.id, number = number.as_deref(), error = %e, "vault のファイルが署名付きマニフェストと一致しません");
            Outcome::Damaged(gate)
        }
        _ => Outcome::NotFound,
    };
    (outcome, true)
}

/// A certificate that checked out: its PDF link and its receipt.
fn found(app: &App, v: Verified, gate: Arc<Gate>, served: Arc<Served>, now: u64) -> Outcome {
    let Some(token) = app.tokens.issue(&v.number) else {
        return Outcome::Busy;
    };
    let receipt = app.receipts.as_ref().and_then(|r| r.make(&served, &v, now));
    Outcome::Found(Box::new(Shown {
        verified: v,
        gate,
        served,
        token,
        receipt,
    }))
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
            attempt(app, client, Typed::read(&request.number, &request.key)).await
        }
    };
    let Some(refusal) = outcome.refusal() else {
        let Outcome::Found(shown) = outcome else {
            return http::json_error(StatusCode::INTERNAL_SERVER_ERROR, "internal");
        };
        return http::json(StatusCode::OK, &api_certificate(app, &shown));
    };
    // Written out rather than through serde_json: a flood of refusals is the hot path. An
    // id is lower-case ASCII letters, digits and hyphens: nothing to escape.
    let body = match (refusal.retry_after, named(app, outcome.gate())) {
        (Some(seconds), _) if refusal.status == StatusCode::TOO_MANY_REQUESTS => {
            format!(
                "{{\"error\":\"{}\",\"retry_after\":{seconds}}}\n",
                refusal.code
            )
        }
        (_, Some(issuer)) => format!(
            "{{\"error\":\"{}\",\"issuer\":\"{}\"}}\n",
            refusal.code, issuer.id
        ),
        _ => format!("{{\"error\":\"{}\"}}\n", refusal.code),
    };
    let answer = http::response(refusal.status, "application/json", body);
    with_retry(answer, refusal)
}

/// The API's answer for a certificate found: every field of its record, raw, and its
/// receipt (`null` when the service makes none).
fn api_certificate(app: &App, shown: &Shown) -> serde_json::Value {
    let (v, token) = (&shown.verified, shown.token.as_str());
    let mut certificate = serde_json::to_value(&v.record).unwrap_or_default();
    if let Some(fields) = certificate.as_object_mut() {
        fields.remove("format");
        let ended = v.record.period_ended(pages::today_in_japan());
        fields.insert("period_ended".into(), ended.into());
    }
    let mut answer = serde_json::json!({
        "status": v.status,
        "certificate": certificate,
        "pdf": pdf_url(token),
        "manifest": {"seq": v.seq, "sha256": shown.served.sha256()},
        "receipt": shown.receipt.as_ref().map(|r| &r.receipt),
        "receipt_file_name": shown.receipt.as_ref().map(Made::file_name),
    });
    if let Some(issuer) = named(app, Some(&shown.gate)) {
        answer["issuer"] = serde_json::json!({"id": issuer.id, "name": issuer.name});
    }
    answer
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
            let typed = Typed::read(&number, &key);
            let shown = number_as_typed(&typed, &number);
            (attempt(app, client, typed).await, shown)
        }
    };
    let Some(refusal) = outcome.refusal() else {
        let Outcome::Found(shown) = outcome else {
            return bad(StatusCode::INTERNAL_SERVER_ERROR);
        };
        let page = app.pages.load().certificate(
            &shown.verified,
            named(app, Some(&shown.gate)).map(|i| (i, shown.served.header().key_id.as_str())),
            shown.receipt.as_ref(),
            &pdf_url(&shown.token),
            app.tokens.ttl().as_secs().div_ceil(60),
            pages::today_in_japan(),
            &pages::now_in_japan_text(),
        );
        return http::html(StatusCode::OK, page);
    };
    let page = refusal_page(app, &outcome, &number);
    with_retry(http::html(refusal.status, page), refusal)
}

/// The page of an attempt that showed no certificate.
fn refusal_page(app: &App, outcome: &Outcome, number: &str) -> String {
    let pages = app.pages.load();
    let whom = named(app, outcome.gate());
    match outcome {
        // The number stays in its field, so that only the key is typed again.
        Outcome::NotFound => pages.form(true, Some(number)),
        Outcome::Limited(l) => pages.message(Message::RateLimited(l.retry_after())),
        Outcome::Busy => pages.message(Message::Busy),
        Outcome::Expired(..) => pages.message(Message::Expired(whom)),
        Outcome::OutOfService(..) => pages.message(Message::OutOfService(whom)),
        Outcome::Damaged(..) | Outcome::Found(..) => pages.message(Message::Damaged(whom)),
    }
}

/// A typed 保証契約番号 to fill the form with again: folded to its ten digits when it is one,
/// else as typed (at most the field's 40 characters).
fn number_as_typed(typed: &Typed, as_typed: &str) -> String {
    typed
        .number
        .clone()
        .unwrap_or_else(|| as_typed.trim().chars().take(40).collect())
}

/// `GET /certificates/<token>`: the PDF of the number the token was issued for, re-hashed
/// against the current manifest before a byte is sent.
async fn certificate_pdf(app: &Arc<App>, path: &str) -> Response<Body> {
    let message = |status, m| http::html(status, app.pages.load().message(m));
    let token = path.trim_start_matches("/certificates/");
    let Some(number) = app.tokens.number(token) else {
        return message(StatusCode::NOT_FOUND, Message::LinkExpired);
    };
    let Some(gate) = app.platform.gate_of(&number) else {
        return message(StatusCode::NOT_FOUND, Message::LinkExpired);
    };
    let whom = named(app, Some(gate));
    let Some(catalog) = gate.served() else {
        return message(StatusCode::SERVICE_UNAVAILABLE, Message::OutOfService(whom));
    };
    if catalog.expired(unix_now()) {
        return message(StatusCode::SERVICE_UNAVAILABLE, Message::Expired(whom));
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
        tracing::error!(issuer = %gate.issuer.id, number = %entry.number, "証書の PDF が署名付きマニフェストと一致しないため、送りませんでした");
        return message(StatusCode::SERVICE_UNAVAILABLE, Message::Damaged(whom));
    };
    let r = http::response(StatusCode::OK, "application/pdf", bytes);
    let disposition = format!("inline; filename=\"certificate-{}.pdf\"", entry.number);
    http::with_header(r, header::CONTENT_DISPOSITION, &disposition)
}

#[cfg(test)]
mod platform_tests;
#[cfg(test)]
mod tests;
