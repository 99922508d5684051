//! The signed manifest (`vault/manifest.json` + `vault/manifest.json.sig`): one entry per
//! certificate, signed with Ed25519 over a domain prefix and the SHA-256 of the file's exact
//! bytes (prehashed, as minisign does for large files: Ed25519 hashes its whole message with
//! SHA-512, about 330 MB/s here, where SHA-256 runs at 1.4 GB/s, and a million-entry
//! manifest must be trusted within two seconds).
//!
//! The format is described in `docs/manifest.md`. This module is the one place that knows
//! it: the build writes it, `hosho verify` and the daemon read it. It depends on ring and
//! serde only. Whoever reads a manifest holds public keys alone, and the signature is
//! checked before anything is parsed.

use std::num::NonZeroU32;
use std::path::Path;

use ring::rand::SecureRandom;
use ring::{digest, pbkdf2, signature};
use serde::{Deserialize, Serialize};

pub use crate::common::certificate::{Kind, Status};
use crate::common::config::DEFAULT_KDF_ITERATIONS;
use crate::common::files::{read_capped, ReadCapped};
use crate::common::hex::{from_hex, is_hex_of, to_hex};
use crate::trust::layout::{MANIFEST_FILE, MAX_SIGNATURE_BYTES, SIGNATURE_FILE};

/// Format version written and accepted.
pub const FORMAT: u32 = 1;
/// Signed before the manifest's SHA-256, so a signature over anything else never verifies here.
pub const SIGNATURE_DOMAIN: &[u8] = b"hosho manifest v2\n";
/// The signature file's algorithm: Ed25519 over the domain and the manifest's SHA-256.
pub const SIGNATURE_ALGORITHM: &str = "ed25519-sha256";
/// The key derivation recorded in the manifest.
pub const KDF_ALGORITHM: &str = "pbkdf2-hmac-sha256";
pub const VERIFIER_LEN: usize = 32;
pub const SALT_LEN: usize = 16;
/// Readers refuse larger manifests without reading them whole.
pub const DEFAULT_MAX_BYTES: u64 = 512 * 1024 * 1024;
pub const DEFAULT_MAX_ENTRIES: usize = 2_000_000;

/// The key derivation parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kdf {
    pub algorithm: String,
    pub iterations: u32,
    pub length: usize,
}

/// One certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// 保証契約番号
    pub number: String,
    /// 区分
    pub kind: Kind,
    pub status: Status,
    /// SHA-256 of the certificate PDF, hex.
    pub pdf_sha256: String,
    /// SHA-256 of the certificate record (`records/<number>.json`), hex.
    pub record_sha256: String,
    /// Per-entry random salt, hex.
    pub salt: String,
    /// PBKDF2 of the normalised 認証キー, hex.
    pub verifier: String,
}

/// A manifest as the build writes it. Readers hold a [`Catalog`] instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Manifest {
    #[serde(flatten)]
    pub header: Header,
    /// Sorted by number.
    pub entries: Vec<Entry>,
}

/// The detached signature file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureFile {
    pub algorithm: String,
    pub key_id: String,
    /// Hex.
    pub signature: String,
}

/// A public key a reader accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub id: String,
    pub bytes: Vec<u8>,
}

impl PublicKey {
    /// The key id: the first 8 bytes of SHA-256 of the raw public key, hex.
    pub fn from_bytes(bytes: Vec<u8>) -> PublicKey {
        let id = to_hex(&digest::digest(&digest::SHA256, &bytes).as_ref()[..8]);
        PublicKey { id, bytes }
    }
}

/// Why a manifest is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestError {
    TooLarge { bytes: u64, max: u64 },
    TooManyEntries { entries: usize, max: usize },
    BadSignatureFile(String),
    UnknownKey(String),
    BadSignature,
    Malformed(String),
    UnsupportedFormat(u32),
    KeyIdMismatch,
    Unsorted,
    WeakKdf { iterations: u32, floor: u32 },
}

impl std::fmt::Display for ManifestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ManifestError::TooLarge { bytes, max } => {
                write!(f, "マニフェストが大きすぎます（{bytes}バイト、上限 {max}）")
            }
            ManifestError::TooManyEntries { entries, max } => write!(
                f,
                "マニフェストの件数が多すぎます（{entries}件、上限 {max}）"
            ),
            ManifestError::BadSignatureFile(e) => write!(f, "署名ファイルが読めません: {e}"),
            ManifestError::UnknownKey(id) => {
                write!(f, "署名の鍵 {id} は信頼する公開鍵にありません")
            }
            ManifestError::BadSignature => write!(
                f,
                "署名が正しくありません（マニフェストか署名が改変されています）"
            ),
            ManifestError::Malformed(e) => write!(f, "マニフェストの形式が正しくありません: {e}"),
            ManifestError::UnsupportedFormat(v) => {
                write!(f, "マニフェストの形式 {v} には対応していません")
            }
            ManifestError::KeyIdMismatch => write!(f, "マニフェストと署名の鍵 ID が一致しません"),
            ManifestError::Unsorted => write!(
                f,
                "マニフェストの項目が番号順に並んでいないか、重複しています"
            ),
            ManifestError::WeakKdf { iterations, floor } => {
                write!(
                    f,
                    "鍵導出の反復回数 {iterations} が下限 {floor} を下回っています"
                )
            }
        }
    }
}

impl std::error::Error for ManifestError {}

/// A fresh random salt.
pub fn new_salt(rng: &dyn SecureRandom) -> Result<[u8; SALT_LEN], ring::error::Unspecified> {
    let mut salt = [0u8; SALT_LEN];
    rng.fill(&mut salt)?;
    Ok(salt)
}

fn iterations(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
}

/// The verifier of a normalised key: PBKDF2-HMAC-SHA256(key, salt, iterations), 32 bytes.
pub fn make_verifier(normalised_key: &str, salt: &[u8], kdf_iterations: u32) -> [u8; VERIFIER_LEN] {
    let mut out = [0u8; VERIFIER_LEN];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations(kdf_iterations),
        salt,
        normalised_key.as_bytes(),
        &mut out,
    );
    out
}

impl Manifest {
    /// The canonical bytes of the manifest file: one JSON object whose entries stand one per
    /// line, compact, so a manifest diffs line by line and a million entries stay small.
    pub fn to_bytes(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut out = serde_json::to_vec(&self.header)?;
        out.pop(); // the closing brace; the entries follow inside the same object
        out.extend_from_slice(b",\"entries\":[");
        for (i, entry) in self.entries.iter().enumerate() {
            out.extend_from_slice(if i == 0 { b"\n" } else { b",\n" });
            serde_json::to_writer(&mut out, entry)?;
        }
        out.extend_from_slice(b"\n]}\n");
        Ok(out)
    }
}

/// The fixed part of a manifest, before its entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub format: u32,
    /// Rises with every build; readers refuse to go below the highest they have seen.
    pub seq: u64,
    /// Unix seconds (UTC).
    pub issued_at: u64,
    /// Unix seconds (UTC); past this, verification answers "unavailable".
    pub expires_at: u64,
    /// Id of the signing key.
    pub key_id: String,
    pub kdf: Kdf,
}

/// A verified manifest as readers hold it: the signed bytes themselves and an index by
/// number into them. A million entries cost the file's size plus 16 bytes each; an entry is
/// parsed from its slice when it is looked up.
pub struct Catalog {
    header: Header,
    /// The manifest file's bytes.
    bytes: Vec<u8>,
    index: Vec<Slot>,
    sha256: String,
    /// The Ed25519 signature that checked out.
    signature: Vec<u8>,
}

/// Where one entry's JSON lies in the bytes.
#[derive(Debug, Clone, Copy)]
struct Slot {
    number: u64,
    start: u32,
    len: u32,
}

/// What a reader parses after the signature checked out.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document<'a> {
    format: u32,
    seq: u64,
    issued_at: u64,
    expires_at: u64,
    key_id: String,
    kdf: Kdf,
    #[serde(borrow)]
    entries: Vec<&'a serde_json::value::RawValue>,
}

/// One entry, borrowed from the bytes, to check it at load time without allocating.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryRef<'a> {
    #[serde(borrow)]
    number: std::borrow::Cow<'a, str>,
    #[allow(dead_code)]
    kind: Kind,
    #[allow(dead_code)]
    status: Status,
    #[serde(borrow)]
    pdf_sha256: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    record_sha256: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    salt: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    verifier: std::borrow::Cow<'a, str>,
}

/// A 保証契約番号 as the index key: exactly 10 ASCII digits.
fn number_key(number: &str) -> Option<u64> {
    (number.len() == 10 && number.bytes().all(|b| b.is_ascii_digit()))
        .then(|| number.parse().ok())
        .flatten()
}

impl EntryRef<'_> {
    fn check(&self) -> Result<u64, String> {
        let number = number_key(&self.number)
            .ok_or_else(|| format!("保証契約番号「{}」が10桁の数字ではありません", self.number))?;
        let hex_ok = is_hex_of(&self.pdf_sha256, 32)
            && is_hex_of(&self.record_sha256, 32)
            && is_hex_of(&self.salt, SALT_LEN)
            && is_hex_of(&self.verifier, VERIFIER_LEN);
        if !hex_ok {
            return Err(format!("{} の項目の値が正しくありません", self.number));
        }
        Ok(number)
    }
}

/// Checks and indexes a run of entries; `base` is the address of the manifest's first byte.
fn index_part(
    entries: &[&serde_json::value::RawValue],
    base: usize,
) -> Result<Vec<Slot>, ManifestError> {
    let malformed = |e: String| ManifestError::Malformed(e);
    let mut index: Vec<Slot> = Vec::with_capacity(entries.len());
    for raw in entries {
        let text = raw.get();
        let entry: EntryRef<'_> =
            serde_json::from_str(text).map_err(|e| malformed(e.to_string()))?;
        let number = entry.check().map_err(malformed)?;
        if index.last().is_some_and(|last| last.number >= number) {
            return Err(ManifestError::Unsorted);
        }
        let (start, len) = (text.as_ptr() as usize - base, text.len());
        let (Ok(start), Ok(len)) = (u32::try_from(start), u32::try_from(len)) else {
            return Err(ManifestError::TooLarge {
                bytes: (start + len) as u64,
                max: u64::from(u32::MAX),
            });
        };
        index.push(Slot { number, start, len });
    }
    Ok(index)
}

/// Refuses a KDF other than the one hosho writes, or weaker than `limits` allow.
fn check_kdf(kdf: &Kdf, limits: Limits) -> Result<(), ManifestError> {
    if kdf.algorithm != KDF_ALGORITHM || kdf.length != VERIFIER_LEN {
        return Err(ManifestError::Malformed(format!("kdf {}", kdf.algorithm)));
    }
    if kdf.iterations < limits.min_iterations {
        return Err(ManifestError::WeakKdf {
            iterations: kdf.iterations,
            floor: limits.min_iterations,
        });
    }
    Ok(())
}

/// Checks and indexes every entry, a part per core, and joins the parts in order.
fn index_entries(
    entries: &[&serde_json::value::RawValue],
    base: usize,
) -> Result<Vec<Slot>, ManifestError> {
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    let chunk = entries.len().div_ceil(workers).max(1);
    let parts: Vec<Result<Vec<Slot>, ManifestError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = entries
            .chunks(chunk)
            .map(|part| scope.spawn(move || index_part(part, base)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(ManifestError::Malformed("索引を作れません".into())))
            })
            .collect()
    });
    let mut index: Vec<Slot> = Vec::with_capacity(entries.len());
    for part in parts {
        let part = part?;
        // Each part is sorted; so is the whole when the parts join in order.
        if let (Some(last), Some(first)) = (index.last(), part.first()) {
            if last.number >= first.number {
                return Err(ManifestError::Unsorted);
            }
        }
        index.extend(part);
    }
    Ok(index)
}

impl Catalog {
    /// Indexes `manifest`, whose signature checked out: every entry is checked once here,
    /// on all cores.
    fn index(
        manifest: &[u8],
        sig_key_id: &str,
        limits: Limits,
    ) -> Result<(Header, Vec<Slot>), ManifestError> {
        let malformed = |e: String| ManifestError::Malformed(e);
        let document: Document<'_> =
            serde_json::from_slice(manifest).map_err(|e| malformed(e.to_string()))?;
        if document.format != FORMAT {
            return Err(ManifestError::UnsupportedFormat(document.format));
        }
        if document.key_id != sig_key_id {
            return Err(ManifestError::KeyIdMismatch);
        }
        if document.entries.len() > limits.max_entries {
            return Err(ManifestError::TooManyEntries {
                entries: document.entries.len(),
                max: limits.max_entries,
            });
        }
        check_kdf(&document.kdf, limits)?;
        let index = index_entries(&document.entries, manifest.as_ptr() as usize)?;
        let header = Header {
            format: document.format,
            seq: document.seq,
            issued_at: document.issued_at,
            expires_at: document.expires_at,
            key_id: document.key_id,
            kdf: document.kdf,
        };
        Ok((header, index))
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn seq(&self) -> u64 {
        self.header.seq
    }

    pub fn expires_at(&self) -> u64 {
        self.header.expires_at
    }

    /// The one expiry rule: past `expires_at`, the manifest is no longer served (503).
    pub fn expired(&self, now_unix: u64) -> bool {
        now_unix > self.header.expires_at
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// SHA-256 of the manifest file, hex (the fingerprint shown to orderers).
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The signature this manifest was accepted with. Ed25519 signatures are deterministic,
    /// so an unchanged signature file means an unchanged manifest (or a tampered one, which
    /// would be refused anyway).
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// Size of the manifest file in bytes.
    pub fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    /// The entry of a number, if it is in the manifest.
    pub fn entry(&self, number: &str) -> Option<Entry> {
        let key = number_key(number)?;
        let at = self.index.binary_search_by_key(&key, |s| s.number).ok()?;
        self.entry_at(at)
    }

    fn entry_at(&self, at: usize) -> Option<Entry> {
        let slot = self.index.get(at)?;
        let start = slot.start as usize;
        let bytes = self.bytes.get(start..start + slot.len as usize)?;
        serde_json::from_slice(bytes).ok()
    }

    /// Every entry, in number order.
    pub fn entries(&self) -> impl Iterator<Item = Entry> + '_ {
        (0..self.index.len()).filter_map(|i| self.entry_at(i))
    }

    /// Whether `normalised_key` is the key of `entry`, compared in constant time by ring.
    /// With no entry (an unknown number) the same PBKDF2 work is done against a dummy
    /// verifier, so both refusals cost the same.
    pub fn key_matches(&self, entry: Option<&Entry>, normalised_key: &str) -> bool {
        const DUMMY_SALT: [u8; SALT_LEN] = [0x5a; SALT_LEN];
        const DUMMY_VERIFIER: [u8; VERIFIER_LEN] = [0; VERIFIER_LEN];
        let decoded = entry.and_then(|e| Some((from_hex(&e.salt)?, from_hex(&e.verifier)?)));
        let (salt, verifier): (&[u8], &[u8]) = match &decoded {
            Some((s, v)) => (s, v),
            None => (&DUMMY_SALT, &DUMMY_VERIFIER),
        };
        let matched = pbkdf2::verify(
            pbkdf2::PBKDF2_HMAC_SHA256,
            iterations(self.header.kdf.iterations),
            salt,
            normalised_key.as_bytes(),
            verifier,
        )
        .is_ok();
        matched && decoded.is_some()
    }
}

/// What is signed: the domain, then the manifest's SHA-256.
fn signed_message(manifest_sha256: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(SIGNATURE_DOMAIN.len() + manifest_sha256.len());
    message.extend_from_slice(SIGNATURE_DOMAIN);
    message.extend_from_slice(manifest_sha256);
    message
}

/// Signs the exact bytes of a manifest file.
pub fn sign(
    manifest_bytes: &[u8],
    key_pair: &signature::Ed25519KeyPair,
    key_id: &str,
) -> Result<Vec<u8>, serde_json::Error> {
    let digest = digest::digest(&digest::SHA256, manifest_bytes);
    let signature = key_pair.sign(&signed_message(digest.as_ref()));
    let file = SignatureFile {
        algorithm: SIGNATURE_ALGORITHM.to_owned(),
        key_id: key_id.to_owned(),
        signature: to_hex(signature.as_ref()),
    };
    let mut bytes = serde_json::to_vec_pretty(&file)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Limits a reader applies.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bytes: u64,
    pub max_entries: usize,
    /// The lowest PBKDF2 iteration count accepted.
    pub min_iterations: u32,
}

impl Limits {
    /// `Err(TooLarge)` when a manifest of `bytes` is over the byte cap.
    fn check_size(&self, bytes: u64) -> Result<(), ManifestError> {
        if bytes > self.max_bytes {
            return Err(ManifestError::TooLarge {
                bytes,
                max: self.max_bytes,
            });
        }
        Ok(())
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: DEFAULT_MAX_BYTES,
            max_entries: DEFAULT_MAX_ENTRIES,
            min_iterations: DEFAULT_KDF_ITERATIONS,
        }
    }
}

/// A file of the vault in `dir`, at most `max` bytes; an oversized manifest is a refusal.
fn read_file(dir: &Path, name: &str, max: u64) -> Result<Vec<u8>, ReadError> {
    let path = dir.join(name);
    read_capped(&path, max, true).map_err(|e| match e {
        ReadCapped::TooLarge { bytes, max } if name == MANIFEST_FILE => {
            ReadError::Refused(ManifestError::TooLarge { bytes, max })
        }
        e => ReadError::Io(path.display().to_string(), e.to_string()),
    })
}

/// Reads `manifest.json` and its signature from `dir`: size cap first, then the signature
/// against `trusted` keys, and only then the JSON.
pub fn read_verified(
    dir: &Path,
    trusted: &[PublicKey],
    limits: Limits,
) -> Result<Catalog, ReadError> {
    // The manifest is read once into a buffer of its size, which the catalog keeps.
    let bytes = read_file(dir, MANIFEST_FILE, limits.max_bytes)?;
    let sig = read_file(dir, SIGNATURE_FILE, MAX_SIGNATURE_BYTES)?;
    Ok(verify_owned(bytes, &sig, trusted, limits)?)
}

/// Checks `signature_file` over `manifest_bytes`, then parses, checks and indexes the
/// manifest.
pub fn verify(
    manifest_bytes: &[u8],
    signature_file: &[u8],
    trusted: &[PublicKey],
    limits: Limits,
) -> Result<Catalog, ManifestError> {
    // Checked before the copy, so an oversized slice is never duplicated.
    limits.check_size(manifest_bytes.len() as u64)?;
    verify_owned(manifest_bytes.to_vec(), signature_file, trusted, limits)
}

/// [`verify`], keeping `manifest` in the catalog rather than a copy.
fn verify_owned(
    manifest: Vec<u8>,
    signature_file: &[u8],
    trusted: &[PublicKey],
    limits: Limits,
) -> Result<Catalog, ManifestError> {
    let checked = check_signature(&manifest, signature_file, trusted, limits)?;
    // Only a correctly signed manifest is parsed.
    let (header, index) = Catalog::index(&manifest, &checked.key_id, limits)?;
    Ok(Catalog {
        header,
        bytes: manifest,
        index,
        sha256: checked.sha256,
        signature: checked.signature,
    })
}

/// A signature that checked out over a manifest.
struct Checked {
    key_id: String,
    signature: Vec<u8>,
    /// SHA-256 of the manifest, hex.
    sha256: String,
}

/// Size caps, the signature file, a trusted key and the Ed25519 signature over the domain
/// and the manifest's SHA-256: everything before a byte of the manifest is parsed.
fn check_signature(
    manifest: &[u8],
    signature_file: &[u8],
    trusted: &[PublicKey],
    limits: Limits,
) -> Result<Checked, ManifestError> {
    limits.check_size(manifest.len() as u64)?;
    if signature_file.len() as u64 > MAX_SIGNATURE_BYTES {
        return Err(ManifestError::BadSignatureFile("too large".into()));
    }
    let sig: SignatureFile = serde_json::from_slice(signature_file)
        .map_err(|e| ManifestError::BadSignatureFile(e.to_string()))?;
    if sig.algorithm != SIGNATURE_ALGORITHM {
        return Err(ManifestError::BadSignatureFile(format!(
            "algorithm {}",
            sig.algorithm
        )));
    }
    let key = trusted
        .iter()
        .find(|k| k.id == sig.key_id)
        .ok_or_else(|| ManifestError::UnknownKey(sig.key_id.clone()))?;
    let signature = from_hex(&sig.signature).ok_or(ManifestError::BadSignature)?;
    let digest = digest::digest(&digest::SHA256, manifest);
    signature::UnparsedPublicKey::new(&signature::ED25519, &key.bytes)
        .verify(&signed_message(digest.as_ref()), &signature)
        .map_err(|_| ManifestError::BadSignature)?;
    Ok(Checked {
        key_id: sig.key_id,
        signature,
        sha256: to_hex(digest.as_ref()),
    })
}

/// The header of the manifest in `dir` once its signature checked out against `trusted`;
/// the entries are skipped, not checked. What a build needs of the manifest it replaces.
pub fn read_header(dir: &Path, trusted: &[PublicKey]) -> Result<Header, ReadError> {
    #[derive(Deserialize)]
    struct HeaderOnly {
        #[serde(flatten)]
        header: Header,
        #[allow(dead_code)]
        entries: serde::de::IgnoredAny,
    }
    let limits = Limits::default();
    let manifest = read_file(dir, MANIFEST_FILE, limits.max_bytes)?;
    let signature = read_file(dir, SIGNATURE_FILE, MAX_SIGNATURE_BYTES)?;
    let checked = check_signature(&manifest, &signature, trusted, limits)?;
    let parsed: HeaderOnly =
        serde_json::from_slice(&manifest).map_err(|e| ManifestError::Malformed(e.to_string()))?;
    if parsed.header.key_id != checked.key_id {
        return Err(ManifestError::KeyIdMismatch.into());
    }
    Ok(parsed.header)
}

/// The signature a signature file carries, if it can be read (no check is made).
pub fn signature_of(signature_file: &[u8]) -> Option<Vec<u8>> {
    let sig: SignatureFile = serde_json::from_slice(signature_file).ok()?;
    from_hex(&sig.signature)
}

/// A manifest that could not be read, or was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    Io(String, String),
    Refused(ManifestError),
}

impl From<ManifestError> for ReadError {
    fn from(e: ManifestError) -> Self {
        ReadError::Refused(e)
    }
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Io(path, e) => write!(f, "{path} を読めません: {e}"),
            ReadError::Refused(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ReadError {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::hex::sha256_hex;
    use ring::rand::SystemRandom;
    use ring::signature::KeyPair;

    fn key_pair() -> (signature::Ed25519KeyPair, PublicKey) {
        let rng = SystemRandom::new();
        let pkcs8 = signature::Ed25519KeyPair::generate_pkcs8(&rng).expect("keygen");
        let pair = signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("parse");
        let public = PublicKey::from_bytes(pair.public_key().as_ref().to_vec());
        (pair, public)
    }

    fn sample(key_id: &str, iterations: u32) -> Manifest {
        let salt = [7u8; SALT_LEN];
        Manifest {
            header: Header {
                format: FORMAT,
                seq: 3,
                issued_at: 1_700_000_000,
                expires_at: 1_800_000_000,
                key_id: key_id.to_owned(),
                kdf: Kdf {
                    algorithm: KDF_ALGORITHM.to_owned(),
                    iterations,
                    length: VERIFIER_LEN,
                },
            },
            entries: vec![Entry {
                number: "2070004426".to_owned(),
                kind: Kind::Advance,
                status: Status::Valid,
                pdf_sha256: sha256_hex(b"pdf"),
                record_sha256: sha256_hex(b"record"),
                salt: to_hex(&salt),
                verifier: to_hex(&make_verifier("332E1E7K9Q", &salt, iterations)),
            }],
        }
    }

    fn refused(result: Result<Catalog, ManifestError>) -> ManifestError {
        match result {
            Ok(_) => panic!("accepted"),
            Err(e) => e,
        }
    }

    fn limits(min_iterations: u32) -> Limits {
        Limits {
            min_iterations,
            ..Limits::default()
        }
    }

    #[test]
    fn signed_manifest_round_trips_and_checks_keys() {
        let (pair, public) = key_pair();
        let bytes = sample(&public.id, 1000).to_bytes().expect("json");
        let sig = sign(&bytes, &pair, &public.id).expect("sign");
        let m = verify(&bytes, &sig, &[public], limits(1000)).expect("valid");
        let entry = m.entry("2070004426").expect("entry");
        assert!(m.key_matches(Some(&entry), "332E1E7K9Q"));
        assert!(!m.key_matches(Some(&entry), "332E1E7K9R"));
        assert!(m.entry("2070004427").is_none());
        assert!(!m.key_matches(None, "332E1E7K9Q"));
        assert_eq!(
            m.entries().collect::<Vec<_>>(),
            sample(&m.header().key_id, 1000).entries
        );
        assert_eq!(
            (m.seq(), m.len(), m.sha256()),
            (3, 1, sha256_hex(&bytes).as_str())
        );
    }

    #[test]
    fn the_signed_bytes_are_the_domain_and_the_manifest_sha256() {
        // As docs/manifest.md gives them, so a signature can be checked by hand.
        let digest = digest::digest(&digest::SHA256, b"{}");
        let message = signed_message(digest.as_ref());
        assert_eq!(message.len(), 50);
        assert_eq!(&message[..18], b"hosho manifest v2\n");
        assert_eq!(&message[18..], digest.as_ref());
    }

    #[test]
    fn any_flipped_byte_is_refused() {
        let (pair, public) = key_pair();
        let bytes = sample(&public.id, 1000).to_bytes().expect("json");
        let sig = sign(&bytes, &pair, &public.id).expect("sign");
        for i in [0, bytes.len() / 2, bytes.len() - 2] {
            let mut tampered = bytes.clone();
            tampered[i] ^= 0x01;
            assert_eq!(
                refused(verify(
                    &tampered,
                    &sig,
                    std::slice::from_ref(&public),
                    limits(1000)
                )),
                ManifestError::BadSignature,
                "byte {i}"
            );
        }
        let text = String::from_utf8(sig.clone()).expect("utf-8");
        let at = text.find("\"signature\": \"").expect("field") + 14;
        let mut tampered = sig.clone();
        tampered[at] = if tampered[at] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            refused(verify(&bytes, &tampered, &[public], limits(1000))),
            ManifestError::BadSignature
        );
    }

    #[test]
    fn other_keys_and_weak_kdfs_are_refused() {
        let (pair, public) = key_pair();
        let (_, other) = key_pair();
        let bytes = sample(&public.id, 1000).to_bytes().expect("json");
        let sig = sign(&bytes, &pair, &public.id).expect("sign");
        assert_eq!(
            refused(verify(
                &bytes,
                &sig,
                std::slice::from_ref(&other),
                limits(1000)
            )),
            ManifestError::UnknownKey(public.id.clone())
        );
        // A signature by another key under the trusted key's id fails.
        let (impostor, _) = key_pair();
        let forged = sign(&bytes, &impostor, &public.id).expect("sign");
        assert_eq!(
            refused(verify(
                &bytes,
                &forged,
                std::slice::from_ref(&public),
                limits(1000)
            )),
            ManifestError::BadSignature
        );
        assert_eq!(
            refused(verify(&bytes, &sig, &[public], limits(5000))),
            ManifestError::WeakKdf {
                iterations: 1000,
                floor: 5000
            }
        );
    }

    #[test]
    fn size_cap_is_checked_first() {
        let (_, public) = key_pair();
        let big = vec![b' '; 100];
        let tiny = Limits {
            max_bytes: 10,
            ..Limits::default()
        };
        assert_eq!(
            refused(verify(&big, b"{}", &[public], tiny)),
            ManifestError::TooLarge {
                bytes: 100,
                max: 10
            }
        );
    }

    #[test]
    fn unsorted_or_duplicate_entries_are_refused_wherever_they_are() {
        let (pair, public) = key_pair();
        let with_numbers = |numbers: &[u64]| {
            let mut m = sample(&public.id, 1000);
            let template = m.entries[0].clone();
            m.entries = numbers
                .iter()
                .map(|n| Entry {
                    number: n.to_string(),
                    ..template.clone()
                })
                .collect();
            let bytes = m.to_bytes().expect("json");
            let sig = sign(&bytes, &pair, &public.id).expect("sign");
            verify(&bytes, &sig, std::slice::from_ref(&public), limits(1000))
        };
        let base = 2_070_000_000u64;
        let sorted: Vec<u64> = (0..9).map(|i| base + i).collect();
        assert_eq!(with_numbers(&sorted).map(|c| c.len()).ok(), Some(9));
        for (a, b) in [(0, 1), (3, 4), (4, 5), (7, 8)] {
            let mut swapped = sorted.clone();
            swapped.swap(a, b);
            assert_eq!(
                refused(with_numbers(&swapped)),
                ManifestError::Unsorted,
                "{a}<->{b}"
            );
            let mut duplicate = sorted.clone();
            duplicate[b] = duplicate[a];
            assert_eq!(
                refused(with_numbers(&duplicate)),
                ManifestError::Unsorted,
                "{a}=={b}"
            );
        }
    }
}
