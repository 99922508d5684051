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
use super::http::{self, Body};

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

/// Every detail: the manifest, the KDF pool, the limiters, the audit log.
fn health(app: &App) -> Response<Body> {
    let catalog = app.catalog();
    let limiter = app.limiter.stats();
    let (expired, status) = super::gate::health(&catalog);
    let body = serde_json::json!({
        "status": if expired { "expired" } else if limiter.redis_up == Some(false) { "degraded" } else { "ok" },
        "limits": match limiter.redis_up {
            None => "memory",
            Some(true) => "redis",
            Some(false) => "memory (redis unreachable)",
        },
        "seq": catalog.seq(),
        "entries": catalog.len(),
        "expires_at": super::gate::rfc3339(catalog.expires_at()),
        "manifest_sha256": catalog.sha256(),
        "kdf_pool": {"workers": app.pool.workers(), "in_use": app.pool.in_use()},
        "limiter": {
            "keys": limiter.keys,
            "full_refusals": limiter.full_refusals,
            "ceiling_refusals": limiter.ceiling_refusals,
        },
        "audit_dropped": app.audit.dropped(),
    });
    http::json(status, &body)
}
