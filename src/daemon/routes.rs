//! One function per request: `route` matches method and path, and every answer goes through
//! `http::response`, so each carries the security headers.

use std::net::IpAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header;
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;

use super::audit::{self, Line};
use super::http::{self, Body, BodyError};
use super::limits::Limited;
use super::pages::{self, Message, STYLE_CSS, VERIFY_CSS};
use super::App;
use crate::manifest::Status;
use crate::verify::{self, unix_now, NotValid, Verified};
use crate::{authkey, vault};

/// Request bodies: two short fields fit in far less.
pub(crate) const MAX_BODY: usize = 4 * 1024;

pub(crate) async fn route(app: Arc<App>, req: Request<Incoming>, client: IpAddr) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let read = matches!(method, Method::GET | Method::HEAD);
    match path.as_str() {
        "/healthz" if read => healthz(&app),
        "/verify" if read => http::redirect("/verify/"),
        "/verify/" if read => http::html(StatusCode::OK, app.pages.form(false)),
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
        p if read => match &app.preview {
            Some(preview) => {
                let preview = Arc::clone(preview);
                let p = p.to_owned();
                tokio::task::spawn_blocking(move || preview.serve(&p))
                    .await
                    .unwrap_or_else(|_| {
                        http::json_error(StatusCode::INTERNAL_SERVER_ERROR, "internal")
                    })
            }
            None => http::html(StatusCode::NOT_FOUND, app.pages.message(Message::NotFound)),
        },
        _ => not_allowed_page(&app, "GET, HEAD"),
    }
}

fn not_allowed_page(app: &App, allow: &str) -> Response<Body> {
    let page = http::html(
        StatusCode::METHOD_NOT_ALLOWED,
        app.pages.message(Message::MethodNotAllowed),
    );
    http::with_header(page, header::ALLOW, allow)
}

fn healthz(app: &App) -> Response<Body> {
    let catalog = app.catalog.load();
    let tracked = app.limiter.tracked();
    let expired = unix_now() > catalog.expires_at();
    let body = serde_json::json!({
        "status": if expired { "expired" } else { "ok" },
        "seq": catalog.seq(),
        "entries": catalog.len(),
        "expires_at": super::trust::rfc3339(catalog.expires_at()),
        "manifest_sha256": catalog.sha256(),
        "kdf_pool": {"workers": app.pool.workers(), "in_use": app.pool.in_use()},
        "limiter": {"addresses": tracked.0, "numbers": tracked.1},
        "audit_dropped": app.audit.dropped(),
    });
    let status = if expired {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
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

impl Outcome {
    fn audit_label(&self) -> &'static str {
        match self {
            Outcome::Found(v, _) => match v.status {
                Status::Valid => "valid",
                Status::Changed => "changed",
                Status::Cancelled => "cancelled",
            },
            Outcome::NotFound => "not_found",
            Outcome::Limited(Limited::Address(_)) => "rate_limited_address",
            Outcome::Limited(Limited::Number(_)) => "rate_limited_number",
            Outcome::Busy => "busy",
            Outcome::Expired => "expired",
            Outcome::Damaged => "damaged",
        }
    }
}

/// Limits first, then the KDF on the pool; every attempt is audited (never the key).
async fn attempt(app: &Arc<App>, client: IpAddr, number: &str, key: &str) -> Outcome {
    let normalised = authkey::normalise_number(number).ok();
    let outcome = decide(app, client, normalised.as_deref(), number, key).await;
    app.audit.record(&Line {
        time: audit::now_rfc3339(),
        client: client.to_canonical().to_string(),
        number: normalised.as_deref(),
        outcome: outcome.audit_label(),
    });
    outcome
}

async fn decide(
    app: &Arc<App>,
    client: IpAddr,
    normalised: Option<&str>,
    number: &str,
    key: &str,
) -> Outcome {
    let now = unix_now();
    if now > app.catalog.load().expires_at() {
        return Outcome::Expired;
    }
    if let Err(limited) = app.limiter.check_address(client) {
        return Outcome::Limited(limited);
    }
    let Some(normalised) = normalised else {
        return Outcome::NotFound;
    };
    if let Err(limited) = app.limiter.check_number(normalised) {
        return Outcome::Limited(limited);
    }
    // The manifest this attempt is checked against, held until it is done.
    let catalog = app.catalog.load_full();
    let (vault, number, key) = (app.vault.clone(), number.to_owned(), key.to_owned());
    let job = move || verify::check(&catalog, &vault, &number, &key, now);
    match app.pool.run(job).await {
        Err(_) => Outcome::Busy,
        Ok(Ok(v)) => match app.tokens.issue(&v.number) {
            Some(token) => Outcome::Found(Box::new(v), token),
            None => Outcome::Busy,
        },
        Ok(Err(NotValid::NoMatch)) => Outcome::NotFound,
        Ok(Err(NotValid::Expired)) => Outcome::Expired,
        Ok(Err(e @ (NotValid::Tampered | NotValid::Manifest(_)))) => {
            tracing::error!(number = normalised, error = %e, "vault のファイルが署名付きマニフェストと一致しません");
            Outcome::Damaged
        }
    }
}

fn pdf_url(token: &str) -> String {
    format!("/certificates/{token}")
}

fn retry_after(r: Response<Body>, limited: Limited) -> Response<Body> {
    http::with_header(r, header::RETRY_AFTER, &limited.retry_after().to_string())
}

#[derive(Deserialize)]
struct ApiRequest {
    number: String,
    key: String,
}

async fn verify_api(app: &Arc<App>, req: Request<Incoming>, client: IpAddr) -> Response<Body> {
    if !http::content_type_is(&req, "application/json") {
        return http::json_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type");
    }
    let body = match http::read_body(req, MAX_BODY, app.body_timeout).await {
        Ok(b) => b,
        Err(e) => return http::json_error(e.status(), e.code()),
    };
    let Ok(request) = serde_json::from_slice::<ApiRequest>(&body) else {
        return http::json_error(StatusCode::BAD_REQUEST, "bad_request");
    };
    match attempt(app, client, &request.number, &request.key).await {
        Outcome::Found(v, token) => {
            let mut certificate = serde_json::to_value(&v.record).unwrap_or_default();
            if let Some(fields) = certificate.as_object_mut() {
                fields.remove("format");
                let ended = v.record.period_ended(pages::today_in_japan());
                fields.insert("period_ended".into(), ended.into());
            }
            let body = serde_json::json!({
                "status": v.status,
                "certificate": certificate,
                "pdf": pdf_url(&token),
                "manifest": {"seq": v.seq, "sha256": app.catalog.load().sha256()},
            });
            http::json(StatusCode::OK, &body)
        }
        Outcome::NotFound => http::json_error(StatusCode::NOT_FOUND, "not_found"),
        Outcome::Limited(l) => retry_after(
            http::json(
                StatusCode::TOO_MANY_REQUESTS,
                &serde_json::json!({"error": "rate_limited", "retry_after": l.retry_after()}),
            ),
            l,
        ),
        Outcome::Busy => retry_after(
            http::json_error(StatusCode::SERVICE_UNAVAILABLE, "busy"),
            Limited::Address(std::time::Duration::from_secs(1)),
        ),
        Outcome::Expired => http::json_error(StatusCode::SERVICE_UNAVAILABLE, "manifest_expired"),
        Outcome::Damaged => http::json_error(StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
    }
}

async fn verify_form(app: &Arc<App>, req: Request<Incoming>, client: IpAddr) -> Response<Body> {
    let bad = |status: StatusCode| http::html(status, app.pages.message(Message::BadRequest));
    if !http::content_type_is(&req, "application/x-www-form-urlencoded") {
        return bad(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
    let body = match http::read_body(req, MAX_BODY, app.body_timeout).await {
        Ok(b) => b,
        Err(e @ (BodyError::TooLarge | BodyError::Timeout | BodyError::Broken)) => {
            return bad(e.status())
        }
    };
    let (mut number, mut key) = (String::new(), String::new());
    for (name, value) in form_urlencoded::parse(&body) {
        match name.as_ref() {
            "number" => number = value.into_owned(),
            "key" => key = value.into_owned(),
            _ => {}
        }
    }
    match attempt(app, client, &number, &key).await {
        Outcome::Found(v, token) => {
            let page = app.pages.certificate(
                &v,
                &pdf_url(&token),
                app.tokens.ttl().as_secs().div_ceil(60),
                pages::today_in_japan(),
                &pages::now_in_japan_text(),
            );
            http::html(StatusCode::OK, page)
        }
        Outcome::NotFound => http::html(StatusCode::NOT_FOUND, app.pages.form(true)),
        Outcome::Limited(l) => retry_after(
            http::html(
                StatusCode::TOO_MANY_REQUESTS,
                app.pages
                    .message(Message::RateLimited(l.retry_after().div_ceil(60))),
            ),
            l,
        ),
        Outcome::Busy => retry_after(
            http::html(
                StatusCode::SERVICE_UNAVAILABLE,
                app.pages.message(Message::Busy),
            ),
            Limited::Address(std::time::Duration::from_secs(1)),
        ),
        Outcome::Expired => http::html(
            StatusCode::SERVICE_UNAVAILABLE,
            app.pages.message(Message::Expired),
        ),
        Outcome::Damaged => http::html(
            StatusCode::SERVICE_UNAVAILABLE,
            app.pages.message(Message::Damaged),
        ),
    }
}

/// `GET /certificates/<token>`: the PDF of the number the token was issued for, re-hashed
/// against the current manifest before a byte is sent.
async fn certificate_pdf(app: &Arc<App>, path: &str) -> Response<Body> {
    let gone = || {
        http::html(
            StatusCode::NOT_FOUND,
            app.pages.message(Message::LinkExpired),
        )
    };
    let token = path.trim_start_matches("/certificates/");
    let Some(number) = app.tokens.number(token) else {
        return gone();
    };
    let catalog = app.catalog.load_full();
    if unix_now() > catalog.expires_at() {
        return http::html(
            StatusCode::SERVICE_UNAVAILABLE,
            app.pages.message(Message::Expired),
        );
    }
    let Some(entry) = catalog.entry(&number) else {
        return gone();
    };
    let file = app.vault.join(vault::certificate_file(&entry.number));
    let sha256 = entry.pdf_sha256.clone();
    let bytes = tokio::task::spawn_blocking(move || verify::read_pdf(&file, &sha256))
        .await
        .ok()
        .flatten();
    match bytes {
        Some(bytes) => {
            let r = http::response(StatusCode::OK, "application/pdf", bytes);
            let disposition = format!("inline; filename=\"certificate-{}.pdf\"", entry.number);
            http::with_header(r, header::CONTENT_DISPOSITION, &disposition)
        }
        None => {
            tracing::error!(number = %entry.number, "証書の PDF が署名付きマニフェストと一致しないため、送りませんでした");
            http::html(
                StatusCode::SERVICE_UNAVAILABLE,
                app.pages.message(Message::Damaged),
            )
        }
    }
}
