//! `hosho serve`: build first (unless `--no-build`), then run the verification daemon.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;

use super::console;
use crate::cli::ServeArgs;
use crate::common::root::{Paths, STATE_DIR};
use crate::daemon::{self, AbuseLimits, LimitsRedis, Options, TrustedProxies};
use crate::preview::rebuild::{Rebuilder, Rebuilt};
use crate::preview::watch;

/// Opens `url` in the desktop's browser (`xdg-open` and the like), without waiting for it.
fn open_browser(url: &str) {
    if let Err(e) = open::that_detached(url) {
        tracing::warn!(error = %e, "ブラウザを開けませんでした。{url} を開いてください");
    }
}

pub(super) fn run(args: ServeArgs) -> Result<ExitCode> {
    let (open, check) = (args.open, args.check);
    let options = daemon::Options::from(args);
    if check {
        return Ok(preflight(&options));
    }
    let paths = options.paths.clone();
    let mut rebuilder = options.build.then(|| Rebuilder::new(paths.clone()));
    let example = match rebuilder.as_mut() {
        Some(rebuilder) => {
            let summary = rebuilder.build()?;
            console::built(&paths, &summary);
            summary.example.clone()
        }
        None => None,
    };
    let preview = options.build;
    daemon::run(options, |ready| {
        // Watching before saying so: an edit right after the banner is rebuilt.
        let live = ready.live.as_ref().zip(rebuilder.take());
        let watching = live.is_some_and(|(live, rebuilder)| {
            let started = watch::start(rebuilder, std::sync::Arc::clone(live), move |r| {
                match r {
                    Ok(Rebuilt::Full(summary)) => console::built(&paths, summary),
                    Ok(Rebuilt::Site(update)) => console::site_updated(update),
                    Err(e) => {
                        console::report(e);
                        console::keeps_serving();
                    }
                }
            });
            started
                .inspect_err(|e| tracing::warn!(error = %e, "ファイルの変更を監視できないため、自動の再ビルドはしません"))
                .is_ok()
        });
        console::serving(ready, preview, example.as_ref(), watching);
        if open {
            open_browser(&format!("http://{}/", ready.addr));
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `hosho serve --check`: every problem on a line of its own (exit 1), or what a start
/// would serve (exit 0).
fn preflight(options: &Options) -> ExitCode {
    match daemon::preflight(options) {
        Ok(checked) => {
            for line in &checked.guarantors {
                println!("{line}");
            }
            println!("問題はありません。この設定で確認サービスを起動できます");
            ExitCode::SUCCESS
        }
        Err(problems) => {
            for problem in &problems {
                eprintln!("{problem}");
            }
            ExitCode::from(1)
        }
    }
}

impl From<ServeArgs> for Options {
    /// Each default is worked out after the values it depends on: the paths after the root,
    /// the KDF queue after the number of KDF workers (16 waiting per worker).
    fn from(args: ServeArgs) -> Options {
        let root = args.root.root;
        let paths = Paths::new(
            &root,
            args.site.as_deref(),
            args.vault.as_deref(),
            args.notices.as_deref(),
            args.keys.as_deref(),
        );
        let kdf_workers = args
            .kdf_workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from))
            .max(1);
        let defaults = AbuseLimits::default();
        Options {
            build: !args.no_build,
            listen: args.listen,
            admin_listen: args.admin_listen,
            state_dir: args.state.unwrap_or_else(|| root.join(STATE_DIR)),
            paths,
            public_keys: args.public_key,
            issuers: args.issuers,
            min_kdf_iterations: args.min_kdf_iterations,
            abuse: AbuseLimits {
                per_address: args.limit_address.unwrap_or(defaults.per_address),
                failures_per_network: args.limit_failures.unwrap_or(defaults.failures_per_network),
                failures_per_number: args.limit_number.unwrap_or(defaults.failures_per_number),
                networks: args.limit_network,
                ..defaults
            },
            trusted_proxies: TrustedProxies::with_header(args.trusted_proxy, args.client_header),
            limits: args
                .limits
                .filter(|url| url != "memory")
                .map(|url| LimitsRedis {
                    url,
                    password_file: args.limits_password_file,
                }),
            kdf_workers,
            kdf_queue: args.kdf_queue.unwrap_or(kdf_workers * 16),
            max_connections: args.max_connections.max(1),
            max_connections_per_address: args.max_connections_per_address.max(1),
            request_timeout: Duration::from_secs(args.request_timeout.max(1)),
            pdf_link_ttl: Duration::from_secs(600),
            link_key: args.link_key,
            receipt_key: args.receipt_key,
            watch_every: Duration::from_secs(2),
            drain: Duration::from_secs(30),
        }
    }
}
