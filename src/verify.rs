//! `hosho verify NUMBER KEY`: the offline check an auditor or a clerk runs against a vault
//! and a public key, with the same rules as the daemon.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::authkey;
use crate::manifest::{self, Limits, Manifest, PublicKey, Status};
use crate::vault;

/// A certificate that checked out.
#[derive(Debug, Clone)]
pub struct Verified {
    pub number: String,
    pub kind: String,
    pub status: Status,
    pub pdf: std::path::PathBuf,
    pub pdf_sha256: String,
    pub seq: u64,
    pub expires_at: u64,
}

/// Why a certificate is not shown as valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotValid {
    /// The manifest itself is refused (unsigned, wrong key, tampered, malformed, too large).
    Manifest(String),
    Expired,
    /// Unknown number or wrong key: deliberately the same answer.
    NoMatch,
    /// The PDF is missing or its SHA-256 differs from the signed manifest.
    PdfTampered,
}

impl std::fmt::Display for NotValid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotValid::Manifest(e) => write!(f, "マニフェストを信頼できません: {e}"),
            NotValid::Expired => write!(
                f,
                "マニフェストの有効期限が切れています。最新のマニフェストで確認してください"
            ),
            NotValid::NoMatch => write!(
                f,
                "保証契約番号と認証キーの組み合わせに一致する電子証書はありません"
            ),
            NotValid::PdfTampered => write!(
                f,
                "証書の PDF がマニフェストの記録と一致しません（改変されているか、ありません）"
            ),
        }
    }
}

impl std::error::Error for NotValid {}

/// Checks `number` and `key` (as typed) against the signed manifest in `vault_dir`.
pub fn verify(
    vault_dir: &Path,
    trusted: &[PublicKey],
    number: &str,
    key: &str,
) -> Result<Verified, NotValid> {
    let manifest: Manifest = manifest::read_verified(vault_dir, trusted, Limits::default())
        .map_err(|e| NotValid::Manifest(e.to_string()))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if now > manifest.expires_at {
        return Err(NotValid::Expired);
    }
    let (Ok(number), Ok(key)) = (
        authkey::normalise_number(number),
        authkey::normalise_key(key),
    ) else {
        return Err(NotValid::NoMatch);
    };
    let entry = manifest.entry(&number).ok_or(NotValid::NoMatch)?;
    if !manifest.key_matches(entry, &key) {
        return Err(NotValid::NoMatch);
    }
    let pdf = vault_dir.join(vault::certificate_file(&number));
    let bytes = std::fs::read(&pdf).map_err(|_| NotValid::PdfTampered)?;
    if manifest::sha256_hex(&bytes) != entry.pdf_sha256 {
        return Err(NotValid::PdfTampered);
    }
    Ok(Verified {
        number,
        kind: entry.kind.clone(),
        status: entry.status,
        pdf,
        pdf_sha256: entry.pdf_sha256.clone(),
        seq: manifest.seq,
        expires_at: manifest.expires_at,
    })
}

/// 有効 / （変更） / 解除
pub fn status_label(status: Status) -> &'static str {
    match status {
        Status::Valid => "有効",
        Status::Changed => "有効（変更あり）",
        Status::Cancelled => "解除（保証の効力はありません）",
    }
}
