//! 確認記録 (receipts) made at each successful check, signed with the service's own key
//! (`--receipt-key`). A receipt is handed in the same answer as the certificate it records
//! (the page offers it as a file to save, the API returns it), so it needs the check and
//! its limits, and nothing is kept or looked up afterwards. Format: docs/receipt.md.

use crate::trust::keys::ServiceKey;
use crate::trust::manifest::Catalog;
use crate::trust::receipt::{self, Receipt};
use crate::trust::verify::Verified;

/// The service's key and where it says the check took place.
pub(crate) struct Receipts {
    key: ServiceKey,
    service_url: String,
}

/// A receipt made for one check.
pub(crate) struct Made {
    pub(crate) receipt: Receipt,
    /// The file's exact bytes.
    pub(crate) bytes: Vec<u8>,
}

impl Made {
    /// `receipt-<number>-<YYYYMMDDTHHMMSS>.json`
    pub(crate) fn file_name(&self) -> String {
        self.receipt.file_name()
    }

    /// The first 16 hex digits of the file's SHA-256, grouped, for the printed page.
    pub(crate) fn fingerprint(&self) -> String {
        receipt::fingerprint(&self.bytes)
    }
}

impl Receipts {
    pub(crate) fn new(key: ServiceKey, service_url: String) -> Receipts {
        Receipts { key, service_url }
    }

    /// The id of the service's key.
    pub(crate) fn key_id(&self) -> &str {
        &self.key.public.id
    }

    /// The service's public key.
    pub(crate) fn public(&self) -> &crate::trust::manifest::PublicKey {
        &self.key.public
    }

    /// The receipt of `verified`, checked at `now` against `catalog`; `None` for a manifest
    /// without a tree (format 1), which proves nothing on its own.
    pub(crate) fn make(&self, catalog: &Catalog, verified: &Verified, now: u64) -> Option<Made> {
        let inclusion = catalog.inclusion(&verified.number)?;
        let made = Receipt::make(
            &inclusion,
            &verified.record_bytes,
            now,
            &self.service_url,
            (&self.key.key_pair, &self.key.public),
        );
        let receipt = match made {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(number = %verified.number, error = %e, "確認記録を作れません");
                return None;
            }
        };
        let bytes = receipt.to_bytes().ok()?;
        Some(Made { receipt, bytes })
    }
}
