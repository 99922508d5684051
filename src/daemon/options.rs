//! Everything `hosho serve` is told (`cmd/serve.rs` works out the defaults from the
//! command line).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::clients::TrustedProxies;
use super::limits::{AbuseLimits, LimitsRedis};
use crate::common::root::Paths;

/// Everything `hosho serve` is told, defaults worked out.
#[derive(Debug, Clone)]
pub struct Options {
    /// Build the site root first and preview the site (not with `--no-build`).
    pub build: bool,
    pub listen: SocketAddr,
    /// Where `/metrics` and the detailed health are served (`--admin-listen`), if anywhere.
    pub admin_listen: Option<SocketAddr>,
    /// The site root (hosho.toml and templates for the pages' look, when present), the vault,
    /// the built site to preview (`--site`, not served when it is no directory), where the
    /// build before serving writes the notices (never read by the daemon), and the key
    /// material, whose `signing.pub` is trusted unless keys are given.
    pub paths: Paths,
    /// Public keys to trust (`--public-key`, at most two).
    pub public_keys: Vec<PathBuf>,
    /// The guarantors of a platform (`--issuers issuers.toml`); when `None`, one guarantor
    /// with the vault and keys above.
    pub issuers: Option<PathBuf>,
    /// High-water mark and audit log.
    pub state_dir: PathBuf,
    /// The lowest PBKDF2 iteration count accepted in a manifest.
    pub min_kdf_iterations: u32,
    pub abuse: AbuseLimits,
    /// Where budgets are shared by replicas (`--limits redis://…`, and
    /// `--limits-password-file`); in memory when `None`.
    pub limits: Option<LimitsRedis>,
    /// The proxies, and the one header (`--client-header`) in which they name the client.
    pub trusted_proxies: TrustedProxies,
    pub kdf_workers: usize,
    pub kdf_queue: usize,
    pub max_connections: usize,
    /// Connections one client address may hold (IPv6 by /64); trusted proxies are exempt.
    pub max_connections_per_address: usize,
    /// Header read and body read, each.
    pub request_timeout: Duration,
    pub pdf_link_ttl: Duration,
    /// The key PDF links are sealed with (`--link-key`), shared by replicas; a random key of
    /// the process when `None`.
    pub link_key: Option<PathBuf>,
    /// The service's private key that signs 確認記録 (`--receipt-key`); when `None`, the
    /// keys directory's `service.pk8` if there is one, else no receipts are made.
    pub receipt_key: Option<PathBuf>,
    /// How often the manifest files are looked at for a new build.
    pub watch_every: Duration,
    /// How long in-flight requests get at shutdown.
    pub drain: Duration,
}
