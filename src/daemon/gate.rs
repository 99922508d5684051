//! Which manifest the daemon trusts for one guarantor, and when it may change: every check
//! passes (signature by a key trusted for this guarantor, format, KDF floor, not expired,
//! every number in the guarantor's number space, not below the saved high-water sequence
//! number, and not the same sequence number with other bytes) before a manifest is served,
//! at start and on every reload. The high-water mark (sequence number and SHA-256) is saved
//! atomically, and only after all of that. A gate that has admitted nothing yet serves
//! nothing: its guarantor's numbers are out of service, and no other guarantor's.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, Result};
use arc_swap::ArcSwapOption;
use tokio::sync::Notify;

use crate::common::files::read_capped;
use crate::trust::issuers::Issuer;
use crate::trust::keys::TrustedKeys;
use crate::trust::layout::{MANIFEST_FILE, MAX_SIGNATURE_BYTES, SIGNATURE_FILE};
use crate::trust::manifest::{self, Catalog, Limits, ReadError};
use crate::trust::verify::unix_now;

pub use crate::trust::high_water::HIGH_WATER_FILE;
use crate::trust::high_water::{Behind, HighWater};

/// The scheduling priority (nice) of the threads that read a manifest on reload: the lowest,
/// so that a reload takes only what the answers leave of the cores.
const RELOAD_NICE: i32 = 19;

/// Threads that read, check and index a new manifest while the daemon answers: one per core,
/// each at [`RELOAD_NICE`]. A reload of one guarantor's manifest then does not slow the other
/// guarantors' answers (BENCHMARKS.md, issue 20). The start reads at full priority: nothing
/// is answered yet.
pub(crate) fn reload_pool() -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("hosho-reload-{i}"))
        .start_handler(|_| {
            let me = rustix::thread::gettid();
            if let Err(e) = rustix::process::setpriority_process(Some(me), RELOAD_NICE) {
                tracing::debug!(error = %e, "再読み込みのスレッドの優先度を下げられません");
            }
        })
        .build()
        .context("マニフェストを読み直すスレッドを作れません")
}

/// Why a manifest is not served.
#[derive(Debug)]
pub(crate) enum Refusal {
    Unreadable(ReadError),
    Expired {
        expires_at: u64,
    },
    /// Below the high-water mark, or at it with other bytes.
    Behind(Behind),
    HighWater(String),
    /// A number outside the guarantor's number space.
    StrayNumber {
        number: String,
    },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Unreadable(e) => e.fmt(f),
            Refusal::Expired { expires_at } => write!(
                f,
                "マニフェストの有効期限（{}）が過ぎています。新しくビルドしたマニフェストを置いてください",
                rfc3339(*expires_at)
            ),
            Refusal::Behind(behind) => behind.fmt(f),
            Refusal::HighWater(e) => write!(f, "{e}"),
            Refusal::StrayNumber { number } => write!(
                f,
                "マニフェストに、この保証事業会社の番号の範囲（issuers.toml の numbers）にない保証契約番号 {number} があります（ほかの保証事業会社の番号を答えないよう、マニフェスト全体を受け付けません）"
            ),
        }
    }
}

impl std::error::Error for Refusal {}

pub(crate) fn rfc3339(unix: u64) -> String {
    i64::try_from(unix)
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map_or_else(|| unix.to_string(), |t| t.to_rfc3339())
}

/// A manifest admitted, and the vault directory it was read from with every symlink
/// resolved. Records and PDFs are read from that directory, so a deployment that ships a new
/// vault beside the old one and swaps a symlink (`docs/deploy.md`) never mixes the two: a
/// request finishes on the vault its manifest came from.
pub(crate) struct Served {
    pub(crate) catalog: Catalog,
    pub(crate) dir: PathBuf,
}

impl std::ops::Deref for Served {
    type Target = Catalog;

    fn deref(&self) -> &Catalog {
        &self.catalog
    }
}

/// One guarantor's manifest: where it comes from, what it must pass, and the one served.
pub(crate) struct Gate {
    /// The guarantor: its vault, number space, name and contact.
    pub(crate) issuer: Issuer,
    pub(crate) trusted: TrustedKeys,
    pub(crate) limits: Limits,
    /// Where its high-water mark is kept.
    pub(crate) state_dir: PathBuf,
    /// The manifest in force (swapped whole on reload); `None` until one was admitted.
    served: ArcSwapOption<Served>,
    /// Why nothing is served, while nothing is.
    refused: Mutex<Option<String>>,
    /// Read the manifest again now (SIGHUP, a rebuild of the live preview).
    pub(crate) reload: Notify,
}

/// A change stamp of the manifest and its signature, to notice a new build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp([(u64, u64, i64, i64); 2]);

impl Gate {
    pub(crate) fn new(
        issuer: Issuer,
        trusted: TrustedKeys,
        limits: Limits,
        state_dir: PathBuf,
    ) -> Gate {
        Gate {
            issuer,
            trusted,
            limits,
            state_dir,
            served: ArcSwapOption::empty(),
            refused: Mutex::new(None),
            reload: Notify::new(),
        }
    }

    /// The manifest in force and its vault, if any; a request holds them until answered.
    pub(crate) fn served(&self) -> Option<Arc<Served>> {
        self.served.load_full()
    }

    /// Serves `served` from now on (requests in flight finish on the old one).
    pub(crate) fn serve(&self, served: Served) {
        self.served.store(Some(Arc::new(served)));
        if let Ok(mut refused) = self.refused.lock() {
            *refused = None;
        }
    }

    /// Notes why nothing is served (a start that failed closed).
    pub(crate) fn refuse(&self, why: &Refusal) {
        if let Ok(mut refused) = self.refused.lock() {
            *refused = Some(why.to_string());
        }
    }

    /// Why nothing is served, while nothing is.
    pub(crate) fn refused(&self) -> Option<String> {
        self.refused.lock().ok().and_then(|r| r.clone())
    }

    /// Admits the manifest on disk at start: served, or refused with the reason kept.
    pub(crate) fn open(&self) -> Result<(), Refusal> {
        match self.admit(0) {
            Ok(served) => {
                self.serve(served);
                Ok(())
            }
            Err(why) => {
                self.refuse(&why);
                Err(why)
            }
        }
    }

    /// Reads and checks the manifest completely; does not save anything.
    pub(crate) fn load(&self, floor: u64) -> Result<Served, Refusal> {
        let started = std::time::Instant::now();
        let vault = &self.issuer.vault;
        let dir = std::fs::canonicalize(vault).map_err(|e| {
            Refusal::Unreadable(ReadError::Io(vault.display().to_string(), e.to_string()))
        })?;
        let catalog = manifest::read_verified(&dir, self.trusted.as_slice(), self.limits)
            .map_err(Refusal::Unreadable)?;
        tracing::debug!(elapsed = ?started.elapsed(), entries = catalog.len(), "read, checked and indexed the manifest");
        if let Some(number) = self.issuer.stray_number(&catalog) {
            return Err(Refusal::StrayNumber { number });
        }
        if catalog.expired(unix_now()) {
            return Err(Refusal::Expired {
                expires_at: catalog.expires_at(),
            });
        }
        let high_water = HighWater::read(&self.state_dir).map_err(Refusal::HighWater)?;
        high_water
            .admits(&catalog, floor)
            .map_err(Refusal::Behind)?;
        Ok(Served { catalog, dir })
    }

    /// Reads and checks the manifest, then saves its sequence number as the high-water mark:
    /// what a reload does before it swaps the new manifest in.
    pub(crate) fn admit(&self, floor: u64) -> Result<Served, Refusal> {
        let served = self.load(floor)?;
        HighWater::save(&self.state_dir, &served)
            .map_err(|e| Refusal::HighWater(format!("最高シーケンス番号を保存できません: {e}")))?;
        Ok(served)
    }

    /// Whether the signature file on disk is the one `catalog` was accepted with: then the
    /// files were touched but not changed, and nothing needs reading.
    pub(crate) fn unchanged(&self, catalog: &Catalog) -> bool {
        read_capped(
            &self.issuer.vault.join(SIGNATURE_FILE),
            MAX_SIGNATURE_BYTES,
            true,
        )
        .ok()
        .and_then(|bytes| manifest::signature_of(&bytes))
        .is_some_and(|sig| sig == catalog.signature())
    }

    /// The current stamp of the manifest files (zeros for a missing file).
    pub(crate) fn stamp(&self) -> Stamp {
        use std::os::unix::fs::MetadataExt;
        let one = |name: &str| -> (u64, u64, i64, i64) {
            std::fs::metadata(self.issuer.vault.join(name)).map_or((0, 0, 0, 0), |m| {
                (m.ino(), m.len(), m.mtime(), m.mtime_nsec())
            })
        };
        Stamp([one(MANIFEST_FILE), one(SIGNATURE_FILE)])
    }
}
