//! Checking a 保証契約番号 and 認証キー against a trusted manifest: the rules `hosho verify`
//! (offline, for an auditor or a clerk) and the daemon share.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::manifest::{self, Catalog, Limits, PublicKey, Status};
use crate::record::{record_file, Record};
use crate::{authkey, vault};

/// A record file larger than this is not read (records are about 2 KiB).
const MAX_RECORD_BYTES: u64 = 256 * 1024;

/// A certificate that checked out.
#[derive(Debug, Clone)]
pub struct Verified {
    /// 保証契約番号 (normalised)
    pub number: String,
    pub status: Status,
    /// Everything the certificate shows, hash-checked against the manifest.
    pub record: Record,
    pub pdf: PathBuf,
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
    /// The PDF or the record is missing, or its SHA-256 differs from the signed manifest.
    Tampered,
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
            NotValid::Tampered => write!(
                f,
                "証書の PDF または記録がマニフェストの記録と一致しません（改変されているか、ありません）"
            ),
        }
    }
}

impl std::error::Error for NotValid {}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Checks `number` and `key` (as typed) against the signed manifest in `vault_dir`.
pub fn verify(
    vault_dir: &Path,
    trusted: &[PublicKey],
    number: &str,
    key: &str,
) -> Result<Verified, NotValid> {
    let catalog = manifest::read_verified(vault_dir, trusted, Limits::default())
        .map_err(|e| NotValid::Manifest(e.to_string()))?;
    check(&catalog, vault_dir, number, key, unix_now())
}

/// The checks once the manifest is trusted: not expired, the key's verifier (PBKDF2, the
/// same work for an unknown number), then the record and the PDF re-hashed against the
/// manifest. Files are found by the manifest's number, never by what was typed.
pub fn check(
    catalog: &Catalog,
    vault_dir: &Path,
    number: &str,
    key: &str,
    now_unix: u64,
) -> Result<Verified, NotValid> {
    if now_unix > catalog.expires_at() {
        return Err(NotValid::Expired);
    }
    let (Ok(number), Ok(key)) = (
        authkey::normalise_number(number),
        authkey::normalise_key(key),
    ) else {
        return Err(NotValid::NoMatch);
    };
    let entry = catalog.entry(&number);
    if !catalog.key_matches(entry.as_ref(), &key) {
        return Err(NotValid::NoMatch);
    }
    let entry = entry.ok_or(NotValid::NoMatch)?;
    let record_bytes = read_capped(
        &vault_dir.join(record_file(&entry.number)),
        MAX_RECORD_BYTES,
    )
    .ok_or(NotValid::Tampered)?;
    if manifest::sha256_hex(&record_bytes) != entry.record_sha256 {
        return Err(NotValid::Tampered);
    }
    let record: Record = serde_json::from_slice(&record_bytes).map_err(|_| NotValid::Tampered)?;
    if record.number != entry.number || record.status != entry.status {
        return Err(NotValid::Tampered);
    }
    let pdf = vault_dir.join(vault::certificate_file(&entry.number));
    if !pdf_matches(&pdf, &entry.pdf_sha256) {
        return Err(NotValid::Tampered);
    }
    Ok(Verified {
        number: entry.number,
        status: entry.status,
        record,
        pdf,
        pdf_sha256: entry.pdf_sha256,
        seq: catalog.seq(),
        expires_at: catalog.expires_at(),
    })
}

/// The bytes of a certificate PDF when its SHA-256 is `sha256` (hex), else `None`.
pub fn read_pdf(path: &Path, sha256: &str) -> Option<Vec<u8>> {
    let bytes = read_capped(path, vault::MAX_PDF_BYTES)?;
    (manifest::sha256_hex(&bytes) == sha256).then_some(bytes)
}

fn pdf_matches(path: &Path, sha256: &str) -> bool {
    read_pdf(path, sha256).is_some()
}

/// A file's bytes, or `None` when it is missing, not a regular file, or over `max` bytes.
fn read_capped(path: &Path, max: u64) -> Option<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path).ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.len() > max {
        return None;
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max + 1).read_to_end(&mut bytes).ok()?;
    (bytes.len() as u64 <= max).then_some(bytes)
}

/// 有効 / （変更） / 解除
pub fn status_label(status: Status) -> &'static str {
    match status {
        Status::Valid => "有効",
        Status::Changed => "有効（変更あり）",
        Status::Cancelled => "解除（保証の効力はありません）",
    }
}
