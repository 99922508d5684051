//! `hosho serve`: the verification daemon (hyper 1.x over tokio). It holds the vault and
//! public keys only, and fails closed: no manifest is served before every check passed.
//!
//! - `trust`: which manifest is served, the high-water mark, reloads.
//! - `routes`: the HTTP interface of DESIGN.md; `pages`: the orderer's HTML pages.
//! - `limits`, `pool`: abuse limits before any KDF work, and the bounded KDF pool.
//! - `tokens`: short-lived PDF links; `audit`: the JSON-lines audit log; `preview`: the site.

mod audit;
mod http;
mod limits;
mod pages;
mod pool;
mod preview;
mod routes;
mod tokens;
mod trust;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};
use arc_swap::ArcSwap;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{Notify, Semaphore};

use crate::manifest::{self, Catalog, PublicKey};
pub use limits::{AbuseLimits, Rate};
pub use trust::HIGH_WATER_FILE;

/// The audit log's file name in the state directory.
pub const AUDIT_FILE: &str = "audit.jsonl";

/// Everything `hosho serve` is told.
#[derive(Debug, Clone)]
pub struct Options {
    pub listen: SocketAddr,
    /// The site root: hosho.toml and templates for the pages' look, when present.
    pub root: PathBuf,
    pub vault: PathBuf,
    /// The built site to preview, if any.
    pub site: Option<PathBuf>,
    /// At most two (old and new during a key rotation).
    pub trusted: Vec<PublicKey>,
    /// High-water mark and audit log.
    pub state_dir: PathBuf,
    /// The lowest PBKDF2 iteration count accepted in a manifest.
    pub min_kdf_iterations: u32,
    pub abuse: AbuseLimits,
    pub kdf_workers: usize,
    pub kdf_queue: usize,
    pub max_connections: usize,
    /// Header read and body read, each.
    pub request_timeout: Duration,
    pub pdf_link_ttl: Duration,
    /// How often the manifest files are looked at for a new build.
    pub watch_every: Duration,
    /// How long in-flight requests get at shutdown.
    pub drain: Duration,
}

impl Options {
    /// Defaults for everything but the paths and keys.
    pub fn new(root: PathBuf, vault: PathBuf, trusted: Vec<PublicKey>) -> Options {
        let workers = std::thread::available_parallelism().map_or(2, usize::from);
        Options {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            state_dir: root.join("state"),
            root,
            vault,
            site: None,
            trusted,
            min_kdf_iterations: manifest::DEFAULT_ITERATIONS,
            abuse: AbuseLimits::default(),
            kdf_workers: workers,
            kdf_queue: workers * 16,
            max_connections: 1024,
            request_timeout: Duration::from_secs(10),
            pdf_link_ttl: Duration::from_secs(600),
            watch_every: Duration::from_secs(2),
            drain: Duration::from_secs(30),
        }
    }
}

/// What every request shares.
struct App {
    catalog: ArcSwap<Catalog>,
    vault: PathBuf,
    limiter: limits::Limiter,
    pool: pool::KdfPool,
    tokens: tokens::Tokens,
    audit: audit::Audit,
    pages: pages::Pages,
    preview: Option<Arc<preview::Preview>>,
    body_timeout: Duration,
}

/// What `run` reports once it listens.
pub struct Ready {
    pub addr: SocketAddr,
    pub seq: u64,
    pub entries: usize,
    pub audit_log: PathBuf,
}

/// Checks the manifest (refusing to start on any failure), listens, and serves until SIGTERM
/// or Ctrl-C, then lets in-flight requests finish.
pub fn run(options: Options, on_ready: impl FnOnce(&Ready)) -> Result<()> {
    if options.trusted.is_empty() || options.trusted.len() > 2 {
        return Err(anyhow!("信頼する公開鍵は 1 つか 2 つにしてください"));
    }
    let trust = Arc::new(trust::Trust {
        vault: options.vault.clone(),
        trusted: options.trusted.clone(),
        limits: manifest::Limits {
            min_iterations: options.min_kdf_iterations,
            ..manifest::Limits::default()
        },
        state_dir: options.state_dir.clone(),
    });
    let catalog = trust
        .load(0)
        .map_err(|e| anyhow!("マニフェストを受け付けられないため起動しません: {e}"))?;
    trust
        .save_high_water(catalog.seq())
        .context("最高シーケンス番号を保存できないため起動しません")?;
    let pages = pages::Pages::load(&options.root)?;
    let preview = options
        .site
        .as_ref()
        .filter(|s| s.is_dir())
        .map(|s| Arc::new(preview::Preview::new(s.clone(), &pages.config().base_path)));
    let audit_log = options.state_dir.join(AUDIT_FILE);
    let app = Arc::new(App {
        catalog: ArcSwap::from_pointee(catalog),
        vault: options.vault.clone(),
        limiter: limits::Limiter::new(options.abuse),
        pool: pool::KdfPool::new(options.kdf_workers, options.kdf_queue),
        tokens: tokens::Tokens::new(options.pdf_link_ttl, 100_000),
        audit: audit::Audit::open(&audit_log)?,
        pages,
        preview,
        body_timeout: options.request_timeout,
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("非同期ランタイムを起動できません")?;
    let result = runtime.block_on(serve(Arc::clone(&app), trust, &options, |addr| {
        let catalog = app.catalog.load();
        on_ready(&Ready {
            addr,
            seq: catalog.seq(),
            entries: catalog.len(),
            audit_log: audit_log.clone(),
        });
    }));
    app.audit.close();
    result
}

async fn serve(
    app: Arc<App>,
    trust: Arc<trust::Trust>,
    options: &Options,
    on_ready: impl FnOnce(SocketAddr),
) -> Result<()> {
    let listener = TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("{} で待ち受けられません", options.listen))?;
    let mut terminate = signal(SignalKind::terminate()).context("SIGTERM を受け取れません")?;
    let mut hangup = signal(SignalKind::hangup()).context("SIGHUP を受け取れません")?;
    let reload = Arc::new(Notify::new());
    tokio::spawn(watch(
        Arc::clone(&app),
        trust,
        Arc::clone(&reload),
        options.watch_every,
    ));
    tokio::spawn(sweep_limiters(Arc::clone(&app)));
    on_ready(
        listener
            .local_addr()
            .context("待ち受けアドレスを得られません")?,
    );

    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(options.request_timeout)
        .max_buf_size(64 * 1024);
    let graceful = GracefulShutdown::new();
    let connections = Arc::new(Semaphore::new(options.max_connections));
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: wait a little, go on.
                        tracing::warn!(error = %e, "接続を受け付けられません");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else {
                    tracing::warn!(client = %peer.ip(), "接続数が上限に達しているため切断しました");
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let app = Arc::clone(&app);
                let service = service_fn(move |req| {
                    let app = Arc::clone(&app);
                    async move { Ok::<_, Infallible>(routes::route(app, req, peer.ip()).await) }
                });
                let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::debug!(client = %peer.ip(), error = %e, "接続が切れました");
                    }
                    drop(permit);
                });
            }
            _ = hangup.recv() => reload.notify_one(),
            _ = terminate.recv() => break,
            _ = &mut ctrl_c => break,
        }
    }
    drop(listener);
    tracing::info!("終了します。処理中の確認が終わるのを待っています");
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("処理中の確認がすべて終わりました"),
        () = tokio::time::sleep(options.drain) => {
            tracing::warn!("{} 秒待っても終わらない接続を打ち切りました", options.drain.as_secs());
        }
    }
    Ok(())
}

/// Reloads the manifest when its files change (looked at every `every`) or on SIGHUP. A new
/// manifest is swapped in only after every check passed and the high-water mark was saved;
/// otherwise the last good one keeps serving.
async fn watch(app: Arc<App>, trust: Arc<trust::Trust>, reload: Arc<Notify>, every: Duration) {
    let mut seen = trust.stamp();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let forced = tokio::select! {
            _ = tick.tick() => false,
            () = reload.notified() => true,
        };
        let stamp = trust.stamp();
        if !forced && stamp == seen {
            continue;
        }
        seen = stamp;
        let current = app.catalog.load_full();
        if !forced && trust.unchanged(&current) {
            continue;
        }
        let trust = Arc::clone(&trust);
        let floor = current.seq();
        let started = std::time::Instant::now();
        let loaded = tokio::task::spawn_blocking(move || {
            let catalog = trust.load(floor)?;
            trust.save_high_water(catalog.seq()).map_err(|e| {
                trust::Refusal::HighWater(format!("最高シーケンス番号を保存できません: {e:#}"))
            })?;
            Ok::<_, trust::Refusal>(catalog)
        })
        .await;
        match loaded {
            Ok(Ok(catalog)) if catalog.sha256() == current.sha256() => {}
            Ok(Ok(catalog)) => {
                tracing::info!(
                    seq = catalog.seq(),
                    entries = catalog.len(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "新しいマニフェストに切り替えました"
                );
                app.catalog.store(Arc::new(catalog));
            }
            Ok(Err(e)) => tracing::warn!(
                seq = current.seq(),
                "新しいマニフェストを受け付けず、これまでのものを使い続けます: {e}"
            ),
            Err(e) => tracing::error!(error = %e, "マニフェストの読み込みが異常終了しました"),
        }
    }
}

async fn sweep_limiters(app: Arc<App>) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        app.limiter.sweep();
    }
}
