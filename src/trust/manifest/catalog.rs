//! The reader's index of a verified manifest ([`Catalog`]): the signed bytes kept whole, each
//! entry checked once and found by number, and the key checked against an entry's verifier.

use ring::pbkdf2;
use serde::Deserialize;

use super::format::{
    iterations, write_leaf, Entry, Header, Kdf, Kind, Leaf, Limits, ManifestError, Status,
    TreeHead, FORMAT, FORMAT_WITHOUT_TREE, KDF_ALGORITHM, SALT_LEN, VERIFIER_LEN,
};
use crate::common::hex::{decode_into, encode_into, from_hex, is_hex_of};
use crate::trust::merkle::{leaf_hash, Hash, Tree};

/// A verified manifest as readers hold it: the signed bytes themselves and an index by
/// number into them. A million entries cost the file's size plus 16 bytes each; an entry is
/// parsed from its slice when it is looked up.
pub struct Catalog {
    pub(super) header: Header,
    /// The manifest file's bytes.
    pub(super) bytes: Vec<u8>,
    pub(super) index: Vec<Slot>,
    pub(super) sha256: String,
    /// The Ed25519 signature that checked out.
    pub(super) signature: Vec<u8>,
    /// Format 3: the entries' Merkle tree, every level.
    pub(super) tree: Option<Tree>,
    /// Format 3: the tree head's signature, which checked out.
    pub(super) tree_head_signature: Option<Vec<u8>>,
}

/// The proof that one certificate's leaf is in a signed tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inclusion {
    pub leaf: Leaf,
    /// Its place among the leaves (0-based, in number order).
    pub index: u64,
    /// The hashes from the leaf up to the root (RFC 9162 `PATH`).
    pub path: Vec<Hash>,
    pub tree_head: TreeHead,
    /// Ed25519 over [`TreeHead::bytes`].
    pub tree_head_signature: Vec<u8>,
}

/// Where one entry's JSON lies in the bytes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Slot {
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
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    root: Option<String>,
    #[serde(borrow)]
    entries: Vec<&'a serde_json::value::RawValue>,
}

/// One entry, borrowed from the bytes, to check it at load time without allocating.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryRef<'a> {
    #[serde(borrow)]
    number: std::borrow::Cow<'a, str>,
    kind: Kind,
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

    /// The hash of its leaf (once [`EntryRef::check`] passed: the hex is well formed), its
    /// bytes built in `buffer` without another allocation.
    fn leaf_hash(&self, buffer: &mut Vec<u8>) -> Hash {
        let mut secret = [0u8; SALT_LEN + VERIFIER_LEN];
        let (salt, verifier) = secret.split_at_mut(SALT_LEN);
        decode_into(&self.salt, salt);
        decode_into(&self.verifier, verifier);
        let secret = ring::digest::digest(&ring::digest::SHA256, &secret);
        let mut secret_hex = [0u8; 64];
        encode_into(secret.as_ref(), &mut secret_hex);
        buffer.clear();
        write_leaf(
            buffer,
            [
                &self.number,
                self.kind.label(),
                self.status.code(),
                &self.record_sha256,
                &self.pdf_sha256,
            ],
            &secret_hex,
        );
        leaf_hash(buffer)
    }
}

/// The index of a run of entries, and their leaf hashes when the manifest has a tree.
type Part = (Vec<Slot>, Vec<Hash>);

/// Checks and indexes a run of entries, hashing their leaves when `tree`; `base` is the
/// address of the manifest's first byte.
fn index_part(
    entries: &[&serde_json::value::RawValue],
    base: usize,
    tree: bool,
) -> Result<Part, ManifestError> {
    let malformed = |e: String| ManifestError::Malformed(e);
    let mut index: Vec<Slot> = Vec::with_capacity(entries.len());
    let mut leaves: Vec<Hash> = Vec::with_capacity(if tree { entries.len() } else { 0 });
    let mut buffer = Vec::with_capacity(320);
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
        if tree {
            leaves.push(entry.leaf_hash(&mut buffer));
        }
    }
    Ok((index, leaves))
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

/// Checks and indexes every entry (and hashes its leaf when `tree`), a part per core, and
/// joins the parts in order.
fn index_entries(
    entries: &[&serde_json::value::RawValue],
    base: usize,
    tree: bool,
) -> Result<Part, ManifestError> {
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    let chunk = entries.len().div_ceil(workers).max(1);
    let parts: Vec<Result<Part, ManifestError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = entries
            .chunks(chunk)
            .map(|part| scope.spawn(move || index_part(part, base, tree)))
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
    let mut leaves: Vec<Hash> = Vec::with_capacity(if tree { entries.len() } else { 0 });
    for part in parts {
        let (part, part_leaves) = part?;
        // Each part is sorted; so is the whole when the parts join in order.
        if let (Some(last), Some(first)) = (index.last(), part.first()) {
            if last.number >= first.number {
                return Err(ManifestError::Unsorted);
            }
        }
        index.extend(part);
        leaves.extend(part_leaves);
    }
    Ok((index, leaves))
}

impl Catalog {
    /// Indexes `manifest`, whose signature checked out: every entry is checked once here,
    /// on all cores, and in format 3 hashed into the tree (its root is checked against the
    /// header's by the caller, with the tree head's signature).
    pub(super) fn index(
        manifest: &[u8],
        sig_key_id: &str,
        limits: Limits,
    ) -> Result<(Header, Vec<Slot>, Option<Tree>), ManifestError> {
        let malformed = |e: String| ManifestError::Malformed(e);
        let document: Document<'_> =
            serde_json::from_slice(manifest).map_err(|e| malformed(e.to_string()))?;
        let tree = match (document.format, &document.size, &document.root) {
            (FORMAT, Some(_), Some(_)) => true,
            (FORMAT_WITHOUT_TREE, None, None) => false,
            (FORMAT | FORMAT_WITHOUT_TREE, _, _) => {
                return Err(malformed(format!(
                    "形式 {} のマニフェストの size と root が正しくありません",
                    document.format
                )))
            }
            (other, _, _) => return Err(ManifestError::UnsupportedFormat(other)),
        };
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
        let (index, leaves) = index_entries(&document.entries, manifest.as_ptr() as usize, tree)?;
        let header = Header {
            format: document.format,
            seq: document.seq,
            issued_at: document.issued_at,
            expires_at: document.expires_at,
            key_id: document.key_id,
            kdf: document.kdf,
            size: document.size,
            root: document.root,
        };
        Ok((header, index, tree.then(|| Tree::new(leaves))))
    }

    /// The signed tree head and the proof that `number`'s leaf is in it; `None` for a
    /// number not in the manifest, or a manifest without a tree (format 1).
    pub fn inclusion(&self, number: &str) -> Option<Inclusion> {
        let tree = self.tree.as_ref()?;
        let key = number_key(number)?;
        let at = self.index.binary_search_by_key(&key, |s| s.number).ok()?;
        Some(Inclusion {
            leaf: self.entry_at(at)?.leaf()?,
            index: at as u64,
            path: tree.proof(at)?,
            tree_head: self.header.tree_head()?,
            tree_head_signature: self.tree_head_signature.clone()?,
        })
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

    /// Every number, in order, read from the index (no entry is parsed).
    pub fn numbers(&self) -> impl Iterator<Item = String> + '_ {
        self.index.iter().map(|slot| format!("{:010}", slot.number))
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
