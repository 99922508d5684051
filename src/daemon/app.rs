//! What every request shares: the guarantors and their manifests (each swapped whole on
//! reload), the limiters,
//! the KDF pool, PDF tokens, the audit log and the pages. Built from [`Options`] without a
//! socket, so the routes can be tested in-process.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use arc_swap::ArcSwap;

use super::audit::AUDIT_FILE;
use super::clients::TrustedProxies;
use super::metrics::{IssuerState, Metrics, Snapshot};
use super::options::Options;
use super::platform::Platform;
use super::{audit, limits, pages, pool, receipts, site_files, tokens};
use crate::trust::keys::{self, SERVICE_PRIVATE_KEY_FILE};
use crate::trust::verify::unix_now;

pub(crate) struct App {
    /// Every guarantor served, and its manifest.
    pub(crate) platform: Platform,
    pub(crate) limiter: limits::Limiter,
    pub(crate) pool: pool::KdfPool,
    pub(crate) tokens: tokens::Tokens,
    pub(crate) audit: audit::Audit,
    /// The daemon's own pages; the live preview loads them again after each rebuild.
    pub(crate) pages: ArcSwap<pages::Pages>,
    pub(crate) preview: Option<Arc<site_files::SiteFiles>>,
    /// The live preview, in building mode only.
    pub(crate) live: Option<Arc<crate::preview::live::Live>>,
    pub(crate) body_timeout: Duration,
    pub(crate) proxies: TrustedProxies,
    /// The address the daemon listens on (a `Host` the building mode answers).
    pub(crate) listen: std::net::IpAddr,
    pub(crate) metrics: Metrics,
    /// Signs a receipt of each successful check, when the service has a key.
    pub(crate) receipts: Option<receipts::Receipts>,
}

impl App {
    /// Admits each guarantor's manifest (see [`Platform::open`] for what a failure stops)
    /// and opens what the requests share.
    pub(crate) fn new(options: &Options) -> Result<App> {
        let platform = Platform::open(options)?;
        let pages = pages::Pages::load(&options.paths.root)?.on_platform(platform.named);
        let receipts = receipt_signer(options, &pages)?;
        let preview = match options.paths.out.is_dir() {
            true => {
                site_files::check_site(&options.paths.out)?;
                let base_path = &pages.config().base_path;
                Some(Arc::new(site_files::SiteFiles::new(
                    options.paths.out.clone(),
                    base_path,
                )))
            }
            false => None,
        };
        Ok(App {
            platform,
            limiter: limits::Limiter::new(options.abuse.clone(), options.limits.as_ref())?,
            pool: pool::KdfPool::new(options.kdf_workers, options.kdf_queue),
            tokens: link_tokens(options)?,
            audit: audit::Audit::open(&options.state_dir.join(AUDIT_FILE))?,
            pages: ArcSwap::from_pointee(pages),
            live: (options.build && preview.is_some()).then(Default::default),
            preview,
            body_timeout: options.request_timeout,
            proxies: options.trusted_proxies.clone(),
            listen: options.listen.ip(),
            metrics: Metrics::new(),
            receipts,
        })
    }

    /// What `/metrics` reports, read now.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let now = unix_now();
        let issuers = self
            .platform
            .gates()
            .iter()
            .map(|gate| {
                let served = gate.served();
                IssuerState {
                    id: gate.issuer.id.clone(),
                    in_service: served.as_ref().is_some_and(|s| !s.expired(now)),
                    manifest: served.map(|s| (s.seq(), s.expires_at(), s.len())),
                }
            })
            .collect();
        Snapshot {
            kdf_workers: self.pool.workers(),
            kdf_in_use: self.pool.in_use(),
            limiter: self.limiter.stats(),
            issuers,
            audit_dropped: self.audit.dropped(),
            audit_write_errors: self.audit.write_errors(),
        }
    }

    /// Flushes the audit log.
    pub(crate) fn close(&self) {
        self.audit.close();
    }
}

/// The service's receipt signer: `--receipt-key`, else `service.pk8` in the keys
/// directory when there is one, else none (no receipts).
pub(crate) fn receipt_signer(
    options: &Options,
    pages: &pages::Pages,
) -> Result<Option<receipts::Receipts>> {
    let default = options.paths.keys.join(SERVICE_PRIVATE_KEY_FILE);
    let path = match &options.receipt_key {
        Some(path) => path.clone(),
        None if default.is_file() => default,
        None => return Ok(None),
    };
    let key = keys::load_service(&path)
        .with_context(|| "確認記録に署名する鍵を読めないため起動しません".to_owned())?;
    Ok(Some(receipts::Receipts::new(
        key,
        pages.config().verify_url(),
    )))
}

/// PDF links sealed with the shared link key, or with a key of this process alone.
pub(crate) fn link_tokens(options: &Options) -> Result<tokens::Tokens> {
    match &options.link_key {
        Some(path) => tokens::Tokens::new(options.pdf_link_ttl, &tokens::read_link_key(path)?),
        None => tokens::Tokens::ephemeral(options.pdf_link_ttl),
    }
}
