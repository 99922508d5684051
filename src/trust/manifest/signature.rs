//! Signing a manifest and reading one back: the detached Ed25519 signature over a domain
//! and the manifest's SHA-256, checked against trusted public keys before a byte of the
//! manifest is parsed.

use std::path::Path;

use ring::{digest, signature};
use serde::{Deserialize, Serialize};

use super::catalog::Catalog;
use super::format::{
    Header, Limits, Manifest, ManifestError, SIGNATURE_ALGORITHM, SIGNATURE_DOMAIN,
};
use crate::common::files::{read_capped, ReadCapped};
use crate::common::hex::{from_hex, to_hex};
use crate::trust::layout::{MANIFEST_FILE, MAX_SIGNATURE_BYTES, SIGNATURE_FILE};
use crate::trust::merkle::Tree;

/// The detached signature file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureFile {
    pub algorithm: String,
    pub key_id: String,
    /// Hex.
    pub signature: String,
    /// Format 3: Ed25519 over the tree head's bytes ([`super::TreeHead::bytes`]), hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree_head_signature: Option<String>,
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

/// What is signed: the domain, then the manifest's SHA-256.
pub(super) fn signed_message(manifest_sha256: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(SIGNATURE_DOMAIN.len() + manifest_sha256.len());
    message.extend_from_slice(SIGNATURE_DOMAIN);
    message.extend_from_slice(manifest_sha256);
    message
}

/// A manifest's two files, as the build writes them into the vault.
pub struct SignedFiles {
    /// `manifest.json`
    pub manifest: Vec<u8>,
    /// `manifest.json.sig`
    pub signature: Vec<u8>,
    /// SHA-256 of `manifest`, hex.
    pub sha256: String,
}

impl Manifest {
    /// The manifest's canonical bytes and their signature by `key_pair` (id `key_id`).
    pub fn signed(
        &self,
        key_pair: &signature::Ed25519KeyPair,
        key_id: &str,
    ) -> Result<SignedFiles, serde_json::Error> {
        let manifest = self.to_bytes()?;
        let tree_head = self.header.tree_head().map(|h| h.bytes());
        let signature = sign_file(&manifest, tree_head.as_deref(), key_pair, key_id)?;
        let sha256 = to_hex(digest::digest(&digest::SHA256, &manifest).as_ref());
        Ok(SignedFiles {
            manifest,
            signature,
            sha256,
        })
    }
}

/// Signs the exact bytes of a manifest file (format 1: no tree head).
pub fn sign(
    manifest_bytes: &[u8],
    key_pair: &signature::Ed25519KeyPair,
    key_id: &str,
) -> Result<Vec<u8>, serde_json::Error> {
    sign_file(manifest_bytes, None, key_pair, key_id)
}

/// The signature file of a manifest: its bytes signed, and its tree head's when it has one.
fn sign_file(
    manifest_bytes: &[u8],
    tree_head: Option<&[u8]>,
    key_pair: &signature::Ed25519KeyPair,
    key_id: &str,
) -> Result<Vec<u8>, serde_json::Error> {
    let digest = digest::digest(&digest::SHA256, manifest_bytes);
    let signature = key_pair.sign(&signed_message(digest.as_ref()));
    let file = SignatureFile {
        algorithm: SIGNATURE_ALGORITHM.to_owned(),
        key_id: key_id.to_owned(),
        signature: to_hex(signature.as_ref()),
        tree_head_signature: tree_head.map(|bytes| to_hex(key_pair.sign(bytes).as_ref())),
    };
    let mut bytes = serde_json::to_vec_pretty(&file)?;
    bytes.push(b'\n');
    Ok(bytes)
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
    // The manifest is read once into a buffer of its size, freed once it is indexed.
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

/// [`verify`] on the bytes read, without a copy.
fn verify_owned(
    manifest: Vec<u8>,
    signature_file: &[u8],
    trusted: &[PublicKey],
    limits: Limits,
) -> Result<Catalog, ManifestError> {
    let checked = check_signature(&manifest, signature_file, trusted, limits)?;
    // Only a correctly signed manifest is parsed.
    let (header, index, tree) = Catalog::index(&manifest, &checked.key_id, limits)?;
    check_tree_head(&header, tree.as_ref(), &checked)?;
    Ok(Catalog {
        header,
        index,
        sha256: checked.sha256,
        signature: checked.signature,
        tree,
        tree_head_signature: checked.tree_head_signature,
    })
}

/// Format 3: the root of the entries is the header's, and the tree head's signature checks
/// out with the key that signed the file. Format 1 has neither.
fn check_tree_head(
    header: &Header,
    tree: Option<&Tree>,
    checked: &Checked,
) -> Result<(), ManifestError> {
    let (Some(head), Some(tree)) = (header.tree_head(), tree) else {
        return match checked.tree_head_signature {
            None => Ok(()),
            Some(_) => Err(ManifestError::Malformed(
                "木構造のないマニフェストに木の署名があります".into(),
            )),
        };
    };
    if head.size != tree.size() as u64 || head.root != to_hex(&tree.root()) {
        return Err(ManifestError::Malformed(
            "項目から計算した木の根がヘッダーの root と一致しません".into(),
        ));
    }
    let signature = checked.tree_head_signature.as_deref().ok_or_else(|| {
        ManifestError::BadSignatureFile("tree_head_signature がありません".into())
    })?;
    signature::UnparsedPublicKey::new(&signature::ED25519, &checked.key.bytes)
        .verify(&head.bytes(), signature)
        .map_err(|_| ManifestError::BadSignature)
}

/// A signature that checked out over a manifest.
struct Checked {
    key_id: String,
    /// The trusted key it checked out with.
    key: PublicKey,
    signature: Vec<u8>,
    /// SHA-256 of the manifest, hex.
    sha256: String,
    /// Format 3: the tree head's signature, not yet checked.
    tree_head_signature: Option<Vec<u8>>,
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
    let tree_head_signature = match &sig.tree_head_signature {
        Some(hex) => Some(from_hex(hex).ok_or(ManifestError::BadSignature)?),
        None => None,
    };
    let digest = digest::digest(&digest::SHA256, manifest);
    signature::UnparsedPublicKey::new(&signature::ED25519, &key.bytes)
        .verify(&signed_message(digest.as_ref()), &signature)
        .map_err(|_| ManifestError::BadSignature)?;
    Ok(Checked {
        key_id: sig.key_id,
        key: key.clone(),
        signature,
        sha256: to_hex(digest.as_ref()),
        tree_head_signature,
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
