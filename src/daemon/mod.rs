//! `hosho serve`: the verification daemon (hyper 1.x over tokio), its HTTP interface in
//! `docs/http.md`. It holds the vault and public keys only, and fails closed: no manifest is
//! served before every check passed.
//!
//! - `app`: what every request shares, built without a socket (tests build it in-process).
//! - `platform`: the guarantors served; `gate`: which manifest is served for each, its
//!   high-water mark, reloads.
//! - `routes`: the HTTP interface; `pages`: the orderer's HTML pages.
//! - `limits`, `pool`: abuse limits before any KDF work, and the bounded KDF pool.
//! - `tokens`: short-lived PDF links; `audit`: the JSON-lines audit log; `preview`: the site.

mod admin;
mod app;
mod audit;
mod clients;
mod connections;
mod gate;
mod http;
mod latency;
mod limits;
mod metrics;
mod options;
mod pages;
mod platform;
mod pool;
mod preflight;
mod receipts;
mod routes;
mod site_files;
mod tokens;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use app::App;
pub use audit::AUDIT_FILE;
pub use clients::{ClientHeader, TrustedProxies};
pub use gate::HIGH_WATER_FILE;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
pub use limits::{AbuseLimits, LimitsRedis, NetworkRate, Rate};
pub use options::Options;
pub use platform::ISSUERS_STATE_DIR;
pub use preflight::{check as preflight, Checked as Preflight};
pub(crate) use routes::{api_fields, form_fields, prefilled_number};
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};

/// What `run` reports once it listens.
pub struct Ready {
    pub addr: SocketAddr,
    /// The admin listener's address, when there is one.
    pub admin: Option<SocketAddr>,
    /// Every guarantor served (one without `--issuers`), in the order served.
    pub issuers: Vec<ReadyIssuer>,
    pub audit_log: PathBuf,
    /// The id of the key that signs 確認記録, when the service makes them.
    pub receipt_key_id: Option<String>,
    /// The live preview (building mode): tell it about each rebuild.
    pub(crate) live: Option<Arc<crate::preview::live::Live>>,
}

/// One guarantor at start.
pub struct ReadyIssuer {
    /// Its id in issuers.toml (`default` without one).
    pub id: String,
    /// 保証事業会社名 (empty without issuers.toml).
    pub name: String,
    /// The manifest admitted (seq, entries), or why its numbers are out of service.
    pub manifest: std::result::Result<(u64, usize), String>,
}

impl Ready {
    /// The manifest of the first guarantor in service: (seq, entries).
    pub fn first_manifest(&self) -> Option<(u64, usize)> {
        self.issuers
            .iter()
            .find_map(|i| i.manifest.as_ref().ok().copied())
    }
}

/// Checks every guarantor's manifest (see `Platform::open` for which failure refuses the
/// start), listens, and serves until SIGTERM or Ctrl-C, then lets in-flight requests finish.
pub fn run(options: Options, on_ready: impl FnOnce(&Ready)) -> Result<()> {
    let app = Arc::new(App::new(&options)?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("非同期ランタイムを起動できません")?;
    let result = runtime.block_on(serve(Arc::clone(&app), &options, |addr, admin| {
        let issuers = app
            .platform
            .gates()
            .iter()
            .map(|gate| ReadyIssuer {
                id: gate.issuer.id.clone(),
                name: gate.issuer.name.clone(),
                manifest: match gate.served() {
                    Some(served) => Ok((served.seq(), served.len())),
                    None => Err(gate.refused().unwrap_or_default()),
                },
            })
            .collect();
        on_ready(&Ready {
            addr,
            admin,
            issuers,
            audit_log: options.state_dir.join(AUDIT_FILE),
            receipt_key_id: app.receipts.as_ref().map(|r| r.key_id().to_owned()),
            live: app.live.clone(),
        });
    }));
    app.close();
    result
}

async fn serve(
    app: Arc<App>,
    options: &Options,
    on_ready: impl FnOnce(SocketAddr, Option<SocketAddr>),
) -> Result<()> {
    let listener = bind(options.listen).await?;
    let mut terminate = signal(SignalKind::terminate()).context("SIGTERM を受け取れません")?;
    let mut hangup = signal(SignalKind::hangup()).context("SIGHUP を受け取れません")?;
    let mut rotate = signal(SignalKind::user_defined1()).context("SIGUSR1 を受け取れません")?;
    let admin = start_tasks(&app, options).await?;
    on_ready(
        listener
            .local_addr()
            .context("待ち受けアドレスを得られません")?,
        admin,
    );
    let http = http_builder(options);
    let graceful = GracefulShutdown::new();
    let connections = connection_slots(options);
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
                serve_connection(stream, peer, &app, &http, &graceful, &connections);
            }
            _ = hangup.recv() => reload_all(&app),
            _ = rotate.recv() => app.audit.reopen(),
            _ = terminate.recv() => break,
            _ = &mut ctrl_c => break,
        }
    }
    drop(listener);
    drain(graceful, options.drain).await;
    Ok(())
}

/// The HTTP/1 settings of every connection.
fn http_builder(options: &Options) -> http1::Builder {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(options.request_timeout)
        .max_buf_size(64 * 1024)
        // Answers are a few hundred bytes: one flattened write beats a vectored one.
        .writev(false);
    http
}

/// Serves one accepted connection on a task of its own, if a connection slot is free for
/// its address; otherwise it is closed at once.
fn serve_connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    app: &Arc<App>,
    http: &http1::Builder,
    graceful: &GracefulShutdown,
    connections: &connections::Connections,
) {
    let permit = match connections.admit(peer.ip()) {
        Ok(slot) => slot,
        Err(connections::Full::All) => {
            tracing::warn!(client = %peer.ip(), "接続数が上限に達しているため切断しました");
            return;
        }
        Err(connections::Full::Address) => {
            tracing::debug!(client = %peer.ip(), "この接続元からの接続数が上限に達しているため切断しました");
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    let app = Arc::clone(app);
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

/// The connection slots: `--max-connections`, kept below the open-file limit (raised to its
/// hard limit first), and `--max-connections-per-address`.
fn connection_slots(options: &Options) -> connections::Connections {
    let (total, lowered) = connections::fit_to_open_files(options.max_connections);
    if let Some(files) = lowered {
        tracing::warn!(
            "開けるファイル数の上限が {files} のため、同時接続の上限を {total} にしました（ファイル用に {} を残します）",
            connections::RESERVED_FILES
        );
    }
    let per_address = options.max_connections_per_address;
    connections::Connections::new(total, per_address, options.trusted_proxies.clone())
}

async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("{addr} で待ち受けられません"))
}

/// Asks every guarantor's watch to read its manifest now.
fn reload_all(app: &App) {
    for gate in app.platform.gates() {
        gate.reload.notify_one();
    }
}

/// Starts what runs beside the requests: the manifest watches, the limiter sweep and the
/// admin listener (whose address is returned); warns of a forgotten proxy.
async fn start_tasks(app: &Arc<App>, options: &Options) -> Result<Option<SocketAddr>> {
    if let Some(live) = app.live.clone() {
        // A rebuild of the live preview wrote a new manifest: read it now, not at the next
        // look; and the daemon's own pages may have changed with the templates.
        let (app, root) = (Arc::clone(app), options.paths.root.clone());
        tokio::spawn(async move {
            loop {
                live.manifest_changed.notified().await;
                reload_all(&app);
                // Reading and parsing templates blocks: off the runtime's threads.
                let root = root.clone();
                let loaded = tokio::task::spawn_blocking(move || pages::Pages::load(&root)).await;
                match loaded.map_err(anyhow::Error::from).and_then(|pages| pages) {
                    Ok(pages) => app.pages.store(Arc::new(pages)),
                    Err(e) => {
                        tracing::warn!(error = %format!("{e:#}"), "確認サービスのページを読み込み直せません")
                    }
                }
            }
        });
    }
    let reloads = Arc::new(gate::reload_pool()?);
    for gate in app.platform.gates() {
        let watching = watch(Arc::clone(gate), Arc::clone(&reloads), options.watch_every);
        tokio::spawn(watching);
    }
    tokio::spawn(sweep_limiters(Arc::clone(app)));
    // In production (no build first) on loopback, a proxy on the same host is the rule.
    if !options.build && options.listen.ip().is_loopback() && options.trusted_proxies.is_empty() {
        tracing::warn!(
            "{} で待ち受けていますが、信頼するプロキシ（--trusted-proxy）の指定がありません。\
             同じホストのプロキシの後ろで動かすなら --trusted-proxy 127.0.0.1/32 を指定してください。\
             指定がないと、すべての利用者がプロキシのアドレスとして数えられ、制限を共有します",
            options.listen
        );
    }
    if options.build && !options.listen.ip().is_loopback() {
        tracing::warn!(
            "{} で待ち受けています。ビルドするモード（プレビュー）は、まだ公開していないサイトを表示し、\
             保存のたびにビルドします。このコンピューターの外に公開しないでください（本番は --no-build）",
            options.listen
        );
    }
    let Some(admin) = options.admin_listen else {
        return Ok(None);
    };
    let listener = bind(admin).await?;
    let addr = listener
        .local_addr()
        .context("管理用の待ち受けアドレスを得られません")?;
    tokio::spawn(admin::serve(listener, Arc::clone(app)));
    Ok(Some(addr))
}

/// Lets requests in flight finish, for at most `limit`.
async fn drain(graceful: GracefulShutdown, limit: Duration) {
    tracing::info!("終了します。処理中の確認が終わるのを待っています");
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("処理中の確認がすべて終わりました"),
        () = tokio::time::sleep(limit) => {
            tracing::warn!("{}秒待っても終わらない接続を打ち切りました", limit.as_secs());
        }
    }
}

/// Reloads one guarantor's manifest when its files change (looked at every `every`) or
/// when asked (SIGHUP), on the low-priority `reloads` threads. A new manifest is swapped in only after every check passed and the
/// high-water mark was saved; otherwise the last good one keeps serving, and a guarantor that
/// has none stays out of service until its files change to a manifest that passes.
async fn watch(gate: Arc<gate::Gate>, reloads: Arc<rayon::ThreadPool>, every: Duration) {
    let mut seen = gate.stamp();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let forced = tokio::select! {
            _ = tick.tick() => false,
            () = gate.reload.notified() => true,
        };
        let stamp = gate.stamp();
        if !forced && stamp == seen {
            continue;
        }
        seen = stamp;
        let current = gate.served();
        if !forced && current.as_ref().is_some_and(|c| gate.unchanged(c)) {
            continue;
        }
        let floor = current.as_ref().map_or(0, |c| c.seq());
        let started = std::time::Instant::now();
        let (admitting, pool) = (Arc::clone(&gate), Arc::clone(&reloads));
        let loaded =
            tokio::task::spawn_blocking(move || pool.install(|| admitting.admit(floor))).await;
        let issuer = gate.issuer.id.as_str();
        match (loaded, current) {
            (Ok(Ok(served)), Some(current)) if served.sha256() == current.sha256() => {}
            (Ok(Ok(served)), _) => {
                tracing::info!(
                    issuer,
                    seq = served.seq(),
                    entries = served.len(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "新しいマニフェストに切り替えました"
                );
                gate.serve(served);
            }
            (Ok(Err(e)), Some(current)) => tracing::warn!(
                issuer,
                seq = current.seq(),
                "新しいマニフェストを受け付けず、これまでのものを使い続けます: {e}"
            ),
            (Ok(Err(e)), None) => {
                tracing::warn!(issuer, "マニフェストを受け付けられません。この保証事業会社の番号の確認は止めたままです: {e}");
                gate.refuse(&e);
            }
            (Err(e), _) => {
                tracing::error!(issuer, error = %e, "マニフェストの読み込みが異常終了しました")
            }
        }
    }
}

/// Every minute, forgets budgets that are whole again; every second, looks for Redis when
/// it was down.
async fn sweep_limiters(app: Arc<App>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    for second in 0u64.. {
        tick.tick().await;
        app.limiter.probe().await;
        if second % 60 == 59 {
            app.limiter.sweep();
        }
    }
}
