//! The signed manifest (`vault/manifest.json` + `vault/manifest.json.sig`): one entry per
//! certificate, signed with Ed25519 over a domain prefix and the file's exact bytes.
//!
//! This module is the one place that knows the format; the build writes it and `hosho
//! verify` and the daemon read it. It depends on ring and serde only. Whoever reads a
//! manifest holds public keys alone, and the signature is checked before anything is parsed.

use ring::rand::SecureRandom;
use ring::{digest, pbkdf2, signature};
use serde::{Deserialize, Serialize};
use std::num::NonZeroU32;

/// Format version written and accepted.
pub const FORMAT: u32 = 1;
/// Signed before the manifest bytes, so a signature over anything else never verifies here.
pub const SIGNATURE_DOMAIN: &[u8] = b"hosho manifest v1\n";
/// The key derivation recorded in the manifest.
pub const KDF_ALGORITHM: &str = "pbkdf2-hmac-sha256";
/// Default PBKDF2 iterations (hosho.toml can raise them).
pub const DEFAULT_ITERATIONS: u32 = 100_000;
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

/// 状態 of a certificate as an orderer sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// 有効
    Valid,
    /// （変更）: valid, with a change history.
    Changed,
    /// 解除
    Cancelled,
}

/// One certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// 保証契約番号
    pub number: String,
    /// 区分 (前払金保証 …)
    pub kind: String,
    pub status: Status,
    /// SHA-256 of the certificate PDF, hex.
    pub pdf_sha256: String,
    /// Per-entry random salt, hex.
    pub salt: String,
    /// PBKDF2 of the normalised 認証キー, hex.
    pub verifier: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
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
            ManifestError::TooLarge { bytes, max } => write!(
                f,
                "マニフェストが大きすぎます（{bytes} バイト、上限 {max}）"
            ),
            ManifestError::TooManyEntries { entries, max } => write!(
                f,
                "マニフェストの件数が多すぎます（{entries} 件、上限 {max}）"
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

pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    to_hex(digest::digest(&digest::SHA256, bytes).as_ref())
}

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
    /// The canonical bytes of the manifest file (pretty JSON, one trailing newline).
    pub fn to_bytes(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut bytes = serde_json::to_vec_pretty(self)?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    /// The entry of a number (entries are sorted).
    pub fn entry(&self, number: &str) -> Option<&Entry> {
        self.entries
            .binary_search_by(|e| e.number.as_str().cmp(number))
            .ok()
            .map(|i| &self.entries[i])
    }

    /// Whether `normalised_key` is the key of `entry` (constant-time comparison in ring).
    pub fn key_matches(&self, entry: &Entry, normalised_key: &str) -> bool {
        let (Some(salt), Some(verifier)) = (from_hex(&entry.salt), from_hex(&entry.verifier))
        else {
            return false;
        };
        pbkdf2::verify(
            pbkdf2::PBKDF2_HMAC_SHA256,
            iterations(self.kdf.iterations),
            &salt,
            normalised_key.as_bytes(),
            &verifier,
        )
        .is_ok()
    }
}

fn signed_message(manifest_bytes: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(SIGNATURE_DOMAIN.len() + manifest_bytes.len());
    message.extend_from_slice(SIGNATURE_DOMAIN);
    message.extend_from_slice(manifest_bytes);
    message
}

/// Signs the exact bytes of a manifest file.
pub fn sign(
    manifest_bytes: &[u8],
    key_pair: &signature::Ed25519KeyPair,
    key_id: &str,
) -> Result<Vec<u8>, serde_json::Error> {
    let signature = key_pair.sign(&signed_message(manifest_bytes));
    let file = SignatureFile {
        algorithm: "ed25519".to_owned(),
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

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: DEFAULT_MAX_BYTES,
            max_entries: DEFAULT_MAX_ENTRIES,
            min_iterations: DEFAULT_ITERATIONS,
        }
    }
}

/// Reads `manifest.json` and its signature from `dir`: size cap first, then the signature
/// against `trusted` keys, and only then the JSON.
pub fn read_verified(
    dir: &std::path::Path,
    trusted: &[PublicKey],
    limits: Limits,
) -> Result<Manifest, ReadError> {
    use std::io::Read;
    let path = dir.join("manifest.json");
    let file = std::fs::File::open(&path)
        .map_err(|e| ReadError::Io(path.display().to_string(), e.to_string()))?;
    let size = file
        .metadata()
        .map_err(|e| ReadError::Io(path.display().to_string(), e.to_string()))?
        .len();
    if size > limits.max_bytes {
        return Err(ManifestError::TooLarge {
            bytes: size,
            max: limits.max_bytes,
        }
        .into());
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(limits.max_bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ReadError::Io(path.display().to_string(), e.to_string()))?;
    let sig_path = dir.join("manifest.json.sig");
    let sig = std::fs::read(&sig_path)
        .map_err(|e| ReadError::Io(sig_path.display().to_string(), e.to_string()))?;
    Ok(verify(&bytes, &sig, trusted, limits)?)
}

/// Checks `signature_file` over `manifest_bytes`, then parses and checks the manifest.
pub fn verify(
    manifest_bytes: &[u8],
    signature_file: &[u8],
    trusted: &[PublicKey],
    limits: Limits,
) -> Result<Manifest, ManifestError> {
    if manifest_bytes.len() as u64 > limits.max_bytes {
        return Err(ManifestError::TooLarge {
            bytes: manifest_bytes.len() as u64,
            max: limits.max_bytes,
        });
    }
    if signature_file.len() > 4096 {
        return Err(ManifestError::BadSignatureFile("too large".into()));
    }
    let sig: SignatureFile = serde_json::from_slice(signature_file)
        .map_err(|e| ManifestError::BadSignatureFile(e.to_string()))?;
    if sig.algorithm != "ed25519" {
        return Err(ManifestError::BadSignatureFile(format!(
            "algorithm {}",
            sig.algorithm
        )));
    }
    let key = trusted
        .iter()
        .find(|k| k.id == sig.key_id)
        .ok_or_else(|| ManifestError::UnknownKey(sig.key_id.clone()))?;
    let signature_bytes = from_hex(&sig.signature).ok_or(ManifestError::BadSignature)?;
    signature::UnparsedPublicKey::new(&signature::ED25519, &key.bytes)
        .verify(&signed_message(manifest_bytes), &signature_bytes)
        .map_err(|_| ManifestError::BadSignature)?;
    // Only a correctly signed manifest is parsed.
    let manifest: Manifest = serde_json::from_slice(manifest_bytes)
        .map_err(|e| ManifestError::Malformed(e.to_string()))?;
    if manifest.format != FORMAT {
        return Err(ManifestError::UnsupportedFormat(manifest.format));
    }
    if manifest.key_id != sig.key_id {
        return Err(ManifestError::KeyIdMismatch);
    }
    if manifest.entries.len() > limits.max_entries {
        return Err(ManifestError::TooManyEntries {
            entries: manifest.entries.len(),
            max: limits.max_entries,
        });
    }
    if manifest.kdf.algorithm != KDF_ALGORITHM || manifest.kdf.length != VERIFIER_LEN {
        return Err(ManifestError::Malformed(format!(
            "kdf {}",
            manifest.kdf.algorithm
        )));
    }
    if manifest.kdf.iterations < limits.min_iterations {
        return Err(ManifestError::WeakKdf {
            iterations: manifest.kdf.iterations,
            floor: limits.min_iterations,
        });
    }
    if manifest
        .entries
        .windows(2)
        .any(|w| w[0].number >= w[1].number)
    {
        return Err(ManifestError::Unsorted);
    }
    Ok(manifest)
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
            entries: vec![Entry {
                number: "2070004426".to_owned(),
                kind: "前払金保証".to_owned(),
                status: Status::Valid,
                pdf_sha256: sha256_hex(b"pdf"),
                salt: to_hex(&salt),
                verifier: to_hex(&make_verifier("332E1E7K9Q", &salt, iterations)),
            }],
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
        assert!(m.key_matches(entry, "332E1E7K9Q"));
        assert!(!m.key_matches(entry, "332E1E7K9R"));
        assert!(m.entry("2070004427").is_none());
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
                verify(&tampered, &sig, std::slice::from_ref(&public), limits(1000)),
                Err(ManifestError::BadSignature),
                "byte {i}"
            );
        }
        let text = String::from_utf8(sig.clone()).expect("utf-8");
        let at = text.find("\"signature\": \"").expect("field") + 14;
        let mut tampered = sig.clone();
        tampered[at] = if tampered[at] == b'0' { b'1' } else { b'0' };
        assert_eq!(
            verify(&bytes, &tampered, &[public], limits(1000)),
            Err(ManifestError::BadSignature)
        );
    }

    #[test]
    fn other_keys_and_weak_kdfs_are_refused() {
        let (pair, public) = key_pair();
        let (_, other) = key_pair();
        let bytes = sample(&public.id, 1000).to_bytes().expect("json");
        let sig = sign(&bytes, &pair, &public.id).expect("sign");
        assert_eq!(
            verify(&bytes, &sig, std::slice::from_ref(&other), limits(1000)),
            Err(ManifestError::UnknownKey(public.id.clone()))
        );
        // A signature by another key under the trusted key's id fails.
        let (impostor, _) = key_pair();
        let forged = sign(&bytes, &impostor, &public.id).expect("sign");
        assert_eq!(
            verify(&bytes, &forged, std::slice::from_ref(&public), limits(1000)),
            Err(ManifestError::BadSignature)
        );
        assert_eq!(
            verify(&bytes, &sig, &[public], limits(5000)),
            Err(ManifestError::WeakKdf {
                iterations: 1000,
                floor: 5000
            })
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
            verify(&big, b"{}", &[public], tiny),
            Err(ManifestError::TooLarge {
                bytes: 100,
                max: 10
            })
        );
    }

    #[test]
    fn hex_round_trip() {
        assert_eq!(to_hex(&[0, 15, 255]), "000fff");
        assert_eq!(from_hex("000fff"), Some(vec![0, 15, 255]));
        assert_eq!(from_hex("0g"), None);
        assert_eq!(from_hex("abc"), None);
    }
}
