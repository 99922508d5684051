//! The manifest's format: what a manifest holds (header, entries, KDF), its canonical
//! bytes, the key derivation its verifiers use, and the limits and errors of reading one.
//! Described in `docs/manifest.md`.

use std::num::NonZeroU32;

use ring::pbkdf2;
use ring::rand::SecureRandom;
use serde::{Deserialize, Serialize};

pub use crate::common::certificate::{Kind, Status};
use crate::common::config::DEFAULT_KDF_ITERATIONS;

/// Format version written: the entries are the leaves of a Merkle tree whose head is signed.
pub const FORMAT: u32 = 3;
/// The format written before the tree (`"format":1`, its file signed as `hosho manifest
/// v2`): still read, so that a vault built before an upgrade keeps serving.
pub const FORMAT_WITHOUT_TREE: u32 = 1;
/// Signed before the manifest's SHA-256, so a signature over anything else never verifies here.
pub const SIGNATURE_DOMAIN: &[u8] = b"hosho manifest v2\n";
/// The first line of a leaf's bytes.
pub const LEAF_DOMAIN: &str = "hosho leaf v3\n";
/// The first line of a signed tree head's bytes.
pub const TREE_HEAD_DOMAIN: &str = "hosho tree head v3\n";
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

/// PBKDF2's iteration count (at least 1).
pub(super) fn iterations(n: u32) -> NonZeroU32 {
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
    /// A format-3 manifest of `entries` (sorted by number): `header` gains their count and
    /// the root of their tree.
    pub fn new(mut header: Header, entries: Vec<Entry>) -> Manifest {
        let leaves = entries
            .iter()
            .map(|e| {
                let bytes = e.leaf().map(|l| l.bytes()).unwrap_or_default();
                crate::trust::merkle::leaf_hash(&bytes)
            })
            .collect();
        let tree = crate::trust::merkle::Tree::new(leaves);
        header.format = FORMAT;
        header.size = Some(entries.len() as u64);
        header.root = Some(crate::common::hex::to_hex(&tree.root()));
        Manifest { header, entries }
    }

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
    /// Format 3: the number of entries (leaves of the tree).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Format 3: the root of the entries' Merkle tree, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
}

impl Header {
    /// The header a build writes: this format, signed by `key_id`, valid from `issued_at`
    /// to `expires_at` (Unix seconds), verifiers made with `iterations` of PBKDF2.
    pub fn new(seq: u64, issued_at: u64, expires_at: u64, key_id: &str, iterations: u32) -> Header {
        Header {
            format: FORMAT,
            seq,
            issued_at,
            expires_at,
            key_id: key_id.to_owned(),
            kdf: Kdf {
                algorithm: KDF_ALGORITHM.to_owned(),
                iterations,
                length: VERIFIER_LEN,
            },
            size: None,
            root: None,
        }
    }

    /// The tree head this header carries (format 3), which its signature covers.
    pub fn tree_head(&self) -> Option<TreeHead> {
        Some(TreeHead {
            key_id: self.key_id.clone(),
            seq: self.seq,
            issued_at: self.issued_at,
            expires_at: self.expires_at,
            kdf: self.kdf.clone(),
            size: self.size?,
            root: self.root.clone()?,
        })
    }
}

/// What the leaf of one certificate commits to: its public fields, and its salt and
/// verifier only through their hash, so that a proof of inclusion reveals neither.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Leaf {
    /// 保証契約番号
    pub number: String,
    /// 区分
    pub kind: Kind,
    pub status: Status,
    /// SHA-256 of the record file, hex.
    pub record_sha256: String,
    /// SHA-256 of the certificate PDF, hex.
    pub pdf_sha256: String,
    /// SHA-256 of the salt's bytes followed by the verifier's, hex.
    pub secret_sha256: String,
}

impl Leaf {
    /// The leaf's exact bytes (docs/manifest.md): its domain line, then one field a line.
    pub fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(320);
        write_leaf(
            &mut out,
            [
                &self.number,
                self.kind.label(),
                self.status.code(),
                &self.record_sha256,
                &self.pdf_sha256,
            ],
            self.secret_sha256.as_bytes(),
        );
        out
    }
}

/// A leaf's bytes into `out`: the domain, then number, kind, status, record SHA-256, PDF
/// SHA-256 and the secret's SHA-256 (`secret_hex`), each followed by a newline.
pub(super) fn write_leaf(out: &mut Vec<u8>, fields: [&str; 5], secret_hex: &[u8]) {
    out.extend_from_slice(LEAF_DOMAIN.as_bytes());
    for field in fields.iter().map(|f| f.as_bytes()).chain([secret_hex]) {
        out.extend_from_slice(field);
        out.push(b'\n');
    }
}

/// The hash that stands for a salt and a verifier (raw bytes) in a leaf, hex.
pub fn secret_sha256(salt: &[u8], verifier: &[u8]) -> String {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    context.update(salt);
    context.update(verifier);
    crate::common::hex::to_hex(context.finish().as_ref())
}

impl Entry {
    /// The entry's leaf; `None` when its salt or verifier is not hex.
    pub fn leaf(&self) -> Option<Leaf> {
        let salt = crate::common::hex::from_hex(&self.salt)?;
        let verifier = crate::common::hex::from_hex(&self.verifier)?;
        Some(Leaf {
            number: self.number.clone(),
            kind: self.kind,
            status: self.status,
            record_sha256: self.record_sha256.clone(),
            pdf_sha256: self.pdf_sha256.clone(),
            secret_sha256: secret_sha256(&salt, &verifier),
        })
    }
}

/// The signed tree head of a format-3 manifest: what its key signed about the whole tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreeHead {
    pub key_id: String,
    pub seq: u64,
    pub issued_at: u64,
    pub expires_at: u64,
    pub kdf: Kdf,
    /// The number of leaves.
    pub size: u64,
    /// The tree's root, hex.
    pub root: String,
}

impl TreeHead {
    /// The exact bytes the signature covers (docs/manifest.md).
    pub fn bytes(&self) -> Vec<u8> {
        format!(
            "{TREE_HEAD_DOMAIN}key_id {}\nseq {}\nissued_at {}\nexpires_at {}\nkdf {} {} {}\nsize {}\nroot {}\n",
            self.key_id,
            self.seq,
            self.issued_at,
            self.expires_at,
            self.kdf.algorithm,
            self.kdf.iterations,
            self.kdf.length,
            self.size,
            self.root
        )
        .into_bytes()
    }
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
    pub(super) fn check_size(&self, bytes: u64) -> Result<(), ManifestError> {
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
