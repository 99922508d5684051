//! The admin listener (`--admin-listen`, for the operator's network only): `GET /metrics`
//! in the OpenMetrics text format and `GET /healthz` with every detail. Nothing here takes a
//! number or a key.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use super::app::App;
use super::gate::{rfc3339, Gate};
use super::http::{self, Body};
use crate::trust::issuers::SINGLE_ID;
use crate::trust::verify::unix_now;

/// Serves the admin endpoints on `listener` until the runtime stops.
pub(crate) async fn serve(listener: TcpListener, app: Arc<App>) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(std::time::Duration::from_secs(10));
    loop {
        let (stream, peer): (_, SocketAddr) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "管理用の接続を受け付けられません");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let app = Arc::clone(&app);
        let service = service_fn(move |req| {
            let app = Arc::clone(&app);
            async move { Ok::<_, Infallible>(route(&app, &req)) }
        });
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(client = %peer.ip(), error = %e, "管理用の接続が切れました");
            }
        });
    }
}

pub(crate) fn route<B>(app: &App, req: &Request<B>) -> Response<Body> {
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return http::with_header(
            http::json_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            hyper::header::ALLOW,
            "GET, HEAD",
        );
    }
    match req.uri().path() {
        "/metrics" => http::response(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            app.metrics.render(&app.snapshot()),
        ),
        "/healthz" => health(app),
        _ => http::json_error(StatusCode::NOT_FOUND, "not_found"),
    }
}

/// Every detail: each guarantor's manifest, the KDF pool, the limiters, the audit log.
fn health(app: &App) -> Response<Body> {
    let (status, mut body) = health_of(app, true);
    let limiter = app.limiter.stats();
    let degraded = limiter.redis_up == Some(false);
    if degraded && body["status"] == "ok" {
        body["status"] = "degraded".into();
    }
    body["limits"] = match limiter.redis_up {
        None => "memory",
        Some(true) => "redis",
        Some(false) => "memory (redis unreachable)",
    }
    .into();
    body["kdf_pool"] =
        serde_json::json!({"workers": app.pool.workers(), "in_use": app.pool.in_use()});
    body["limiter"] = serde_json::json!({
        "keys": limiter.keys,
        "full_refusals": limiter.full_refusals,
        "ceiling_refusals": limiter.ceiling_refusals,
    });
    body["audit_dropped"] = app.audit.dropped().into();
    body["build"] = serde_json::json!({
        "version": crate::common::version::VERSION,
        "commit": crate::common::version::COMMIT,
    });
    http::json(status, &body)
}

/// The health of every guarantor, and the status both health answers give: 200 while some
/// guarantor's numbers are answered, 503 once none are. A daemon of one guarantor answers
/// with that guarantor's fields at the top (`status`, `seq`, `expires_at`); a platform with
/// `ok`, `degraded` (some guarantors out of service) or `unavailable`, and one object per
/// guarantor. `detailed` adds what only the admin listener tells: entries, the manifest's
/// SHA-256 and why a guarantor is out of service.
pub(crate) fn health_of(app: &App, detailed: bool) -> (StatusCode, serde_json::Value) {
    let now = unix_now();
    let issuers: Vec<serde_json::Value> = app
        .platform
        .gates()
        .iter()
        .map(|gate| issuer_health(gate, now, detailed))
        .collect();
    let ok = issuers.iter().filter(|i| i["status"] == "ok").count();
    let status = match ok {
        0 => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::OK,
    };
    if let (Some(_), [one]) = (app.platform.single(), issuers.as_slice()) {
        return (status, one.clone());
    }
    let overall = match ok {
        0 => "unavailable",
        n if n == issuers.len() => "ok",
        _ => "degraded",
    };
    (
        status,
        serde_json::json!({"status": overall, "issuers": issuers}),
    )
}

/// One guarantor: `ok`, `expired` or `out_of_service`, and its manifest's seq and expiry.
fn issuer_health(gate: &Gate, now: u64, detailed: bool) -> serde_json::Value {
    let served = gate.served();
    let status = match &served {
        None => "out_of_service",
        Some(s) if s.expired(now) => "expired",
        Some(_) => "ok",
    };
    let mut body = serde_json::json!({"status": status});
    if gate.issuer.id != SINGLE_ID {
        body["id"] = gate.issuer.id.clone().into();
    }
    if let Some(s) = &served {
        body["seq"] = s.seq().into();
        body["expires_at"] = rfc3339(s.expires_at()).into();
        if detailed {
            body["entries"] = s.len().into();
            body["manifest_sha256"] = s.sha256().into();
        }
    }
    if detailed {
        if let Some(why) = gate.refused() {
            body["refused"] = why.into();
        }
    }
    body
}
