//! The layout of a vault (`vault/`, see `docs/vault.md`): where the build writes each file
//! and where `hosho verify` and the daemon look for it. Files are always found by the
//! manifest's number, never by what a person typed. The vault holds no 認証キー: the
//! notices are written to an output of their own, which never leaves the build host.

/// The manifest: one entry per certificate.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The detached Ed25519 signature of the manifest.
pub const SIGNATURE_FILE: &str = "manifest.json.sig";
/// The build's reuse cache (authenticated, never trusted by readers).
pub const CACHE_FILE: &str = "cache.json";
/// Certificate records, `records/<number>.json`.
pub const RECORDS_DIR: &str = "records";
/// Certificate PDFs, `certificates/<number>.pdf`.
pub const CERTIFICATES_DIR: &str = "certificates";

/// Readers refuse a certificate PDF larger than this (they are about 40 KiB).
pub const MAX_PDF_BYTES: u64 = 16 * 1024 * 1024;
/// Readers refuse a record larger than this (records are about 2 KiB).
pub const MAX_RECORD_BYTES: u64 = 256 * 1024;
/// Signature files are about 200 bytes.
pub const MAX_SIGNATURE_BYTES: u64 = 4096;

/// `records/<number>.json`
pub fn record_file(number: &str) -> String {
    format!("{RECORDS_DIR}/{number}.json")
}

/// `certificates/<number>.pdf`
pub fn certificate_file(number: &str) -> String {
    format!("{CERTIFICATES_DIR}/{number}.pdf")
}
