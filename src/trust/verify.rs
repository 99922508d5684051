//! Checking a 保証契約番号 and 認証キー against a trusted manifest: the rules `hosho verify`
//! (offline, for an auditor or a clerk) and the daemon share (see `docs/vault.md`).

use std::path::{Path, PathBuf};

use crate::common::certificate::{Record, Status};
use crate::common::files::read_capped;
use crate::common::hex::sha256_hex;
use crate::trust::authkey;
use crate::trust::keys::TrustedKeys;
use crate::trust::layout::{certificate_file, record_file, MAX_PDF_BYTES, MAX_RECORD_BYTES};
use crate::trust::manifest::{self, Catalog, Entry, Limits};

/// A certificate that checked out.
#[derive(Debug, Clone)]
pub struct Verified {
    /// 保証契約番号 (normalised)
    pub number: String,
    pub status: Status,
    /// Everything the certificate shows, hash-checked against the manifest.
    pub record: Record,
    /// The record file's exact bytes (what a receipt carries).
    pub record_bytes: Vec<u8>,
    pub pdf: PathBuf,
    pub pdf_sha256: String,
    pub seq: u64,
    /// SHA-256 of the manifest it was checked against (hex).
    pub manifest_sha256: String,
    /// When that manifest was signed (Unix seconds).
    pub issued_at: u64,
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

pub use crate::common::era::unix_now;

/// A 保証契約番号 and 認証キー as typed, read once into their canonical forms
/// ([`authkey::normalise_number`], [`authkey::normalise_key`]); `None` where what was
/// typed is not one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Typed {
    pub number: Option<String>,
    pub key: Option<String>,
}

impl Typed {
    pub fn read(number: &str, key: &str) -> Typed {
        Typed {
            number: authkey::normalise_number(number).ok(),
            key: authkey::normalise_key(key).ok(),
        }
    }

    /// Both, when both are well formed: only then can they match a certificate.
    pub fn both(&self) -> Option<(&str, &str)> {
        Some((self.number.as_deref()?, self.key.as_deref()?))
    }
}

/// Checks `number` and `key` (as typed) against the signed manifest in `vault_dir`.
pub fn verify(
    vault_dir: &Path,
    trusted: &TrustedKeys,
    number: &str,
    key: &str,
) -> Result<Verified, NotValid> {
    let catalog = manifest::read_verified(vault_dir, trusted.as_slice(), Limits::default())
        .map_err(|e| NotValid::Manifest(e.to_string()))?;
    if catalog.expired(unix_now()) {
        return Err(NotValid::Expired);
    }
    check(&catalog, vault_dir, &Typed::read(number, key))
}

/// The checks once the manifest is trusted and known not to have expired: the key's
/// verifier (PBKDF2, the same work for an unknown number), then the record and the PDF
/// re-hashed against the manifest. Files are found by the manifest's number, never by what
/// was typed.
pub fn check(catalog: &Catalog, vault_dir: &Path, typed: &Typed) -> Result<Verified, NotValid> {
    let Some((number, key)) = typed.both() else {
        return Err(NotValid::NoMatch);
    };
    let entry = catalog.entry(number);
    if !catalog.key_matches(entry.as_ref(), key) {
        return Err(NotValid::NoMatch);
    }
    let entry = entry.ok_or(NotValid::NoMatch)?;
    let (record, record_bytes) =
        read_record(vault_dir, &entry, true).map_err(|_| NotValid::Tampered)?;
    check_pdf(vault_dir, &entry, true).map_err(|_| NotValid::Tampered)?;
    let pdf = vault_dir.join(certificate_file(&entry.number));
    Ok(Verified {
        number: entry.number,
        status: entry.status,
        record,
        record_bytes,
        pdf,
        pdf_sha256: entry.pdf_sha256,
        seq: catalog.seq(),
        manifest_sha256: catalog.sha256().to_owned(),
        issued_at: catalog.header().issued_at,
        expires_at: catalog.expires_at(),
    })
}

/// The bytes of a certificate PDF when its SHA-256 is `sha256` (hex), else `None`.
pub fn read_pdf(path: &Path, sha256: &str) -> Option<Vec<u8>> {
    pdf_bytes(path, sha256, true).ok()
}

/// The bytes of the PDF at `path` when its SHA-256 is `sha256` (hex).
fn pdf_bytes(path: &Path, sha256: &str, follow_links: bool) -> Result<Vec<u8>, FileFault> {
    let bytes =
        read_capped(path, MAX_PDF_BYTES, follow_links).map_err(|_| FileFault::Unreadable)?;
    match sha256_hex(&bytes) == sha256 {
        true => Ok(bytes),
        false => Err(FileFault::Hash),
    }
}

/// What is wrong with a file of a manifest entry. `hosho verify` and the daemon answer all
/// of these alike (the vault does not match the manifest); `hosho vault check` names each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFault {
    /// Missing, not a file (or a symlink, where links are not followed), or too large.
    Unreadable,
    /// Its SHA-256 is not the one the manifest gives.
    Hash,
    /// The record cannot be read as one.
    NotARecord,
    /// The record's number, kind or status differ from the manifest's.
    Fields,
}

/// The record of `entry` in `vault_dir` (`records/<number>.json`), checked against it: the
/// record and its exact bytes.
pub fn read_record(
    vault_dir: &Path,
    entry: &Entry,
    follow_links: bool,
) -> Result<(Record, Vec<u8>), FileFault> {
    let path = vault_dir.join(record_file(&entry.number));
    let bytes =
        read_capped(&path, MAX_RECORD_BYTES, follow_links).map_err(|_| FileFault::Unreadable)?;
    if sha256_hex(&bytes) != entry.record_sha256 {
        return Err(FileFault::Hash);
    }
    let record: Record = serde_json::from_slice(&bytes).map_err(|_| FileFault::NotARecord)?;
    if record.number != entry.number || record.status != entry.status || record.kind != entry.kind {
        return Err(FileFault::Fields);
    }
    Ok((record, bytes))
}

/// Whether the certificate PDF of `entry` in `vault_dir` (`certificates/<number>.pdf`) is
/// the one the manifest names.
pub fn check_pdf(vault_dir: &Path, entry: &Entry, follow_links: bool) -> Result<(), FileFault> {
    let path = vault_dir.join(certificate_file(&entry.number));
    let bytes =
        read_capped(&path, MAX_PDF_BYTES, follow_links).map_err(|_| FileFault::Unreadable)?;
    match sha256_hex(&bytes) == entry.pdf_sha256 {
        true => Ok(()),
        false => Err(FileFault::Hash),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::keys::TrustedKeys;
    use crate::trust::testing::{write_vault, CERTIFICATES, ITERATIONS};

    fn vault() -> (tempfile::TempDir, Catalog) {
        let dir = tempfile::tempdir().expect("tempdir");
        let public = write_vault(
            &dir.path().join("vault"),
            &dir.path().join("keys"),
            7,
            2_000_000_000,
        );
        let trusted = TrustedKeys::new(vec![public]).expect("one key");
        let limits = Limits {
            min_iterations: ITERATIONS,
            ..Limits::default()
        };
        let catalog =
            manifest::read_verified(&dir.path().join("vault"), trusted.as_slice(), limits)
                .expect("trusted");
        (dir, catalog)
    }

    #[test]
    fn a_number_and_its_key_show_the_hash_checked_record() {
        let (dir, catalog) = vault();
        let vault = dir.path().join("vault");
        for (number, key, status) in CERTIFICATES {
            let v = check(&catalog, &vault, &Typed::read(number, key)).expect("valid");
            assert_eq!((v.number.as_str(), v.status, v.seq), (number, status, 7));
            assert_eq!(v.record.number, number);
        }
        // As a clerk types it: 全角, spaces, lower case.
        let v = check(
            &catalog,
            &vault,
            &Typed::read("２０７０００４４２６", "332 e1e 7k9q"),
        )
        .expect("typed");
        assert_eq!(v.number, "2070004426");
    }

    #[test]
    fn a_wrong_key_and_an_unknown_number_get_the_same_refusal() {
        let (dir, catalog) = vault();
        let vault = dir.path().join("vault");
        let wrong = check(&catalog, &vault, &Typed::read("2070004426", "332E1E7K9R"));
        let unknown = check(&catalog, &vault, &Typed::read("2070009999", "332E1E7K9Q"));
        let garbage = check(&catalog, &vault, &Typed::read("20700", "key"));
        assert_eq!(wrong.err(), Some(NotValid::NoMatch));
        assert_eq!(unknown.err(), Some(NotValid::NoMatch));
        assert_eq!(garbage.err(), Some(NotValid::NoMatch));
    }

    #[test]
    fn altered_files_are_refused_and_manifests_expire() {
        let (dir, catalog) = vault();
        let vault = dir.path().join("vault");
        assert!(!catalog.expired(2_000_000_000) && catalog.expired(2_000_000_001));
        std::fs::write(vault.join(certificate_file("2070004426")), b"%PDF-forged").expect("write");
        let forged = check(&catalog, &vault, &Typed::read("2070004426", "332E1E7K9Q"));
        assert_eq!(forged.err(), Some(NotValid::Tampered));
        let record = vault.join(record_file("2070004427"));
        let text = std::fs::read_to_string(&record).expect("read");
        std::fs::write(&record, text.replace("テスト市長", "別の市長")).expect("write");
        let altered = check(&catalog, &vault, &Typed::read("2070004427", "7M4K2P9QRS"));
        assert_eq!(altered.err(), Some(NotValid::Tampered));
        std::fs::remove_file(vault.join(record_file("2070004428"))).expect("rm");
        let missing = check(&catalog, &vault, &Typed::read("2070004428", "A1B2C3D4E5"));
        assert_eq!(missing.err(), Some(NotValid::Tampered));
    }

    #[test]
    fn verify_reads_the_vault_with_the_trusted_keys_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (vault, keys) = (dir.path().join("vault"), dir.path().join("keys"));
        write_vault(&vault, &keys, 1, 2_000_000_000);
        let trusted = TrustedKeys::load(&keys, &[]).expect("signing.pub");
        // The test vault's KDF count is below the default floor `hosho verify` applies.
        let refused = verify(&vault, &trusted, "2070004426", "332E1E7K9Q");
        assert!(matches!(refused, Err(NotValid::Manifest(_))), "{refused:?}");
        let other = dir.path().join("other");
        write_vault(&dir.path().join("vault2"), &other, 1, 2_000_000_000);
        let untrusted = TrustedKeys::load(&other, &[]).expect("other key");
        let refused = verify(&vault, &untrusted, "2070004426", "332E1E7K9Q");
        assert!(
            matches!(refused, Err(NotValid::Manifest(m)) if m.contains("信頼する公開鍵にありません"))
        );
    }
}
